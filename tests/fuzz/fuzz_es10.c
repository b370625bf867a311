/*
 * fuzz_es10.c -- libFuzzer target for the station's parsers of what an eUICC or a vault hands
 * it: the PIR (pir_parse), the BPP split into ES10 commands (es10f_bpp_split), the single-result
 * responses (es10_parse_result), the One-time Key list (es10_parse_otk_info), and the
 * SignedBundle shell (bundle_open, which must refuse
 * without a trusted signer), and the streaming reader (bundle_stream), walked element by element
 * the way the importers walk it. Property for the split: the commands are disjoint, in order, inside
 * the BPP, and cover every segment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bundle.h"
#include "bundle_stream.h"
#include "es10.h"
#include "pir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cert *root;

static void load_root(void)
{
    /* any certificate will do as the anchor: no fuzzed bundle can be signed under it */
    static const char *paths[] = {"tests/fuzz/corpus/fuzz_cert/eum_p256.der", NULL};
    for (int i = 0; paths[i] && !root; i++) {
        FILE *f = fopen(paths[i], "rb");
        uint8_t buf[4096];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f)
            fclose(f);
        if (n)
            (void)cert_parse_der(buf, n, &root);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pir_info pir;
    if (pir_parse(data, size, &pir) == IFPP_OK) {
        if (pir.signed_data < data || pir.signed_data + pir.signed_len > data + size)
            abort();
        (void)pir_error_reason_str(pir.error_reason);
        (void)pir_command_str(pir.bpp_command_id);
    }

    es10f_bpp_command cmds[ES10_MAX_BPP_COMMANDS];
    size_t count;
    if (es10f_bpp_split(data, size, cmds, ES10_MAX_BPP_COMMANDS, &count) == IFPP_OK) {
        const uint8_t *at = data;
        for (size_t i = 0; i < count; i++) {
            if (cmds[i].data < at || cmds[i].data + cmds[i].len > data + size || cmds[i].len == 0)
                abort();
            at = cmds[i].data + cmds[i].len;
        }
        if (at != data + size)
            abort();
    }

    uint8_t result;
    (void)es10_parse_result(data, size, 0xBF70, 0x02, &result);
    /* the One-time Key list: whatever parses lists exactly as many keys as it counts */
    static uint8_t otpks[ES10_MAX_OTKS][65];
    uint8_t otk_count;
    (void)es10_parse_otk_info(data, size, otpks, ES10_MAX_OTKS, &otk_count);
    /* the notification list: every PIR it hands out lies inside the input and is a 'BF37' */
    tlv pirs[ES10_MAX_NOTIFICATIONS];
    size_t n_pirs;
    int list_error;
    if (es10_parse_notifications(data, size, pirs, ES10_MAX_NOTIFICATIONS, &n_pirs, &list_error) == IFPP_OK)
        for (size_t i = 0; i < n_pirs; i++)
            if (pirs[i].tag != 0xBF37 || pirs[i].raw < data || pirs[i].raw + pirs[i].raw_len > data + size)
                abort();

    if (!root)
        load_root();
    if (root) {
        bundle_view v;
        if (bundle_open(data, size, BUNDLE_BPP_VAULT, root, time(NULL), &v, NULL, 0) == IFPP_OK)
            abort(); /* nothing fuzzed can carry a signature under the anchor */
    }
    /* the streaming reader, walked the way the importers walk it; it must never accept either */
    FILE *f = size ? fmemopen((void *)data, size, "rb") : NULL;
    bundle_stream *bs = NULL;
    if (f && root && bundle_stream_open(f, size, BUNDLE_BPP_VAULT, 1 << 16, &bs, NULL, 0) == IFPP_OK) {
        tlv t;
        bool entered;
        int guard = 0;
        ifpp_err e = IFPP_OK;
        while (e == IFPP_OK && guard++ < 10000) {
            e = bundle_stream_enter_or_next(bs, 0x30, &t, &entered);
            if (e == IFPP_E_TLV_END)
                e = bundle_stream_next(bs, &t) == IFPP_E_TLV_END ? IFPP_E_TLV_END : IFPP_OK;
        }
        if (bundle_stream_finish(bs, root, time(NULL), NULL, NULL, NULL, 0) == IFPP_OK)
            abort();
    }
    bundle_stream_free(bs);
    if (f)
        fclose(f);
    return 0;
}
