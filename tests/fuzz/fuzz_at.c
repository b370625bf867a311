/*
 * fuzz_at.c -- libFuzzer target for the modem-line parser (drivers/at_parse.c): whatever a modem's
 * AT port sends -- split anywhere, with URCs, noise, lines that never end -- goes through the same
 * calls the at backend makes. Properties: nothing reads or writes out of bounds, every line handed
 * out fits its buffer and holds no CR/LF, a +CSIM/+CGLA reply decodes to exactly half its stated
 * hex length, a channel number parsed is one the line spells; the same lines also go through the
 * slot's USB identity parser and the sysfs interface reader.
 */
#include <stdlib.h>
#include <string.h>

#include "at_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static at_rx rx;
    static char line[AT_RX_MAX];
    static uint8_t out[AT_RX_MAX / 2];
    size_t pos = 0, small = size ? data[0] % 64 + 1 : 1; /* the first byte picks the read size */
    rx.len = 0;
    while (pos < size) {
        size_t k = size - pos < small ? size - pos : small;
        if (at_rx_feed(&rx, data + pos, k) != IFPP_OK)
            rx.len = 0; /* as the backend: a full buffer is a line too long */
        pos += k;
        for (;;) {
            size_t n = 0;
            ifpp_err e = at_rx_line(&rx, line, (size_t)(data[pos % size] % 2 ? sizeof line : 40), &n);
            if (e == IFPP_E_NOT_FOUND)
                break;
            if (e != IFPP_OK)
                continue;
            if (n == 0 || strlen(line) > n || memchr(line, '\r', n) || memchr(line, '\n', n))
                abort();
            (void)at_line_classify(line, n);
            size_t dn = 0;
            if (at_parse_hex_reply(line, n, "+CSIM:", out, sizeof out, &dn) == IFPP_OK &&
                (2 * dn + 8 > n || strtoul(line + 6, NULL, 10) != 2 * dn))
                abort(); /* the data came from the line, and its length is the one the line states */
            unsigned long id;
            if (at_parse_session_id(line, n, &id) == IFPP_OK && id > 999999999UL)
                abort();
            at_usb_id usb;
            char why[300];
            if (at_parse_usb_id(line, n, &usb, why, sizeof why) == IFPP_OK &&
                (usb.vid > 0xFFFF || usb.pid > 0xFFFF || usb.iface > 255 || strlen(usb.serial) >= sizeof usb.serial))
                abort();
            if (at_usb_interface_of_path(line) > 255)
                abort();
        }
        if (rx.len > sizeof rx.buf)
            abort();
    }
    return 0;
}
