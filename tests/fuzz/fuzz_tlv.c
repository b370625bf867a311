/*
 * fuzz_tlv.c -- libFuzzer target for the BER-TLV/DER reader (common/tlv.c).
 *
 * Feeds the input to every reading entry point in both modes, and checks two
 * properties rather than just "no crash":
 *   - whatever tlv_validate() accepts in DER mode, a reader walk accepts too, and
 *     re-encoding each object with the builder gives back the very same bytes
 *     (DER is canonical, so parse -> build must be the identity);
 *   - tlv_get_uint() on an INTEGER round-trips through tlv_put_uint().
 */
#include <stdlib.h>
#include <string.h>

#include "tlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void rebuild(tlv_builder *b, const uint8_t *p, size_t n, unsigned depth)
{
    tlv_reader r;
    tlv t;
    tlv_reader_init(&r, p, n, TLV_DER);
    while (tlv_reader_next(&r, &t) == IFPP_OK) {
        if (tlv_tag_constructed(t.tag) && depth + 1 < TLV_BUILDER_MAX_DEPTH) {
            tlv_begin(b, t.tag);
            rebuild(b, t.value, t.len, depth + 1);
            tlv_end(b);
        } else {
            tlv_put(b, t.tag, t.value, t.len);
        }
        if (t.tag == 0x02) {
            uint64_t v;
            if (tlv_get_uint(&t, &v) == IFPP_OK) {
                uint8_t enc[16];
                tlv_builder ib;
                const uint8_t *out;
                size_t on;
                tlv_builder_init_fixed(&ib, enc, sizeof enc);
                tlv_put_uint(&ib, 0x02, v);
                if (tlv_builder_finish(&ib, &out, &on) != IFPP_OK || on != t.raw_len ||
                    memcmp(out, t.raw, on) != 0)
                    abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tlv t;
    tlv_reader r, c;

    (void)tlv_parse(data, size, TLV_BER, &t);
    (void)tlv_parse_exact(data, size, TLV_DER, &t);

    tlv_reader_init(&r, data, size, TLV_BER);
    (void)tlv_reader_find(&r, 0xBF36, &t);
    while (tlv_reader_next(&r, &t) == IFPP_OK)
        if (tlv_reader_enter(&r, &t, &c) == IFPP_OK)
            (void)tlv_reader_find(&c, 0x5A, &t);

    (void)tlv_validate(data, size, TLV_BER, TLV_MAX_DEPTH);
    if (tlv_validate(data, size, TLV_DER, TLV_BUILDER_MAX_DEPTH) == IFPP_OK) {
        tlv_builder b;
        const uint8_t *out;
        size_t n;
        tlv_builder_init_dynamic(&b, size + 64);
        rebuild(&b, data, size, 0);
        if (tlv_builder_finish(&b, &out, &n) != IFPP_OK || n != size || (n && memcmp(out, data, n) != 0))
            abort();
        tlv_builder_free(&b);
    }
    return 0;
}
