/*
 * fuzz_console.c -- ifpp-console's model (agent/console_model.c) against a hostile daemon: the input, split at
 * newlines, is fed as MES lines; its first line is also tried as a scan. Whatever arrives, the slot and stock
 * tables stay bounded and every string shown on the terminal stays printable ASCII (no escape reaches it).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_printable(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cm_model m;
    char out[512];
    cm_init(&m, 0);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n <= CM_MAX_LINE)
            cm_handle_line(&m, p, n);
        p += n + 1;
    }
    char scan[128];
    size_t n = size < sizeof scan - 1 ? size : sizeof scan - 1;
    memcpy(scan, data, n);
    scan[n] = 0;
    char *nl = strchr(scan, '\n');
    if (nl)
        *nl = 0;
    cm_scan(&m, scan, NULL, out, sizeof out);
    if (m.n_slots > CM_MAX_SLOTS || m.n_stock > CM_MAX_STOCK)
        abort();
    for (size_t i = 0; i < m.n_slots; i++) {
        fuzz_printable(m.slot[i].name, sizeof m.slot[i].name);
        fuzz_printable(m.slot[i].serial, sizeof m.slot[i].serial);
        fuzz_printable(m.slot[i].eid, sizeof m.slot[i].eid);
        fuzz_printable(m.slot[i].step, sizeof m.slot[i].step);
        fuzz_printable(m.slot[i].detail, sizeof m.slot[i].detail);
    }
    fuzz_printable(m.notice, sizeof m.notice);
    return 0;
}
