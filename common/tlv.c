/*
 * tlv.c -- BER-TLV / DER reader and builder; the contract is in tlv.h.
 *
 * The reader follows one rule: compare a length against what is left before adding
 * it to a pointer. Lengths are accumulated in uint64_t and refused above UINT32_MAX,
 * so no arithmetic on hostile values can wrap, on 32- or 64-bit hosts.
 */
#include "tlv.h"

#include <stdlib.h>
#include <string.h>

#define TLV_MAX_LENGTH_OCTETS 4 /* 84 xx xx xx xx: values up to 4 GiB - 1 */

bool tlv_tag_constructed(uint32_t tag)
{
    size_t shift = (tlv_tag_size(tag) - 1) * 8;
    return ((tag >> shift) & 0x20) != 0;
}

size_t tlv_tag_size(uint32_t tag)
{
    if (tag > 0xFFFFFF) return 4;
    if (tag > 0xFFFF) return 3;
    if (tag > 0xFF) return 2;
    return 1;
}

size_t tlv_length_size(size_t len)
{
    if (len < 0x80) return 1;
    if (len <= 0xFF) return 2;
    if (len <= 0xFFFF) return 3;
    if (len <= 0xFFFFFF) return 4;
    return 5;
}

size_t tlv_encode_length(size_t len, uint8_t *out)
{
    size_t n = tlv_length_size(len);
    if (n == 1) {
        out[0] = (uint8_t)len;
        return 1;
    }
    out[0] = (uint8_t)(0x80 | (n - 1));
    for (size_t i = 1; i < n; i++)
        out[i] = (uint8_t)(len >> (8 * (n - 1 - i)));
    return n;
}

/*
 * A tag is valid if its multi-byte form is well-formed (X.690 8.1.2.4): the first
 * subsequent octet is not 80 (a leading zero), the last has bit 8 clear and the
 * others set, and the high-tag form is used only for tag numbers of 31 and above.
 * These hold for BER as much as for DER, so they are checked in both modes.
 */
static ifpp_err tlv_decode_tag(const uint8_t *p, size_t n, uint32_t *tag, size_t *used)
{
    if (n < 1)
        return IFPP_E_TLV_TRUNCATED;
    uint32_t t = p[0];
    size_t i = 1;
    if ((p[0] & 0x1F) == 0x1F) {
        uint32_t number = 0;
        for (;;) {
            if (i >= n)
                return IFPP_E_TLV_TRUNCATED;
            if (i >= 4)
                return IFPP_E_TLV_TAG_TOO_LONG;
            uint8_t b = p[i];
            if (i == 1 && b == 0x80)
                return IFPP_E_TLV_BAD_TAG;
            number = number << 7 | (b & 0x7F);
            t = t << 8 | b;
            i++;
            if (!(b & 0x80))
                break;
        }
        if (number < 31)
            return IFPP_E_TLV_BAD_TAG;
    }
    *tag = t;
    *used = i;
    return IFPP_OK;
}

static ifpp_err tlv_decode_length(const uint8_t *p, size_t n, unsigned flags, uint64_t *len, size_t *used)
{
    if (n < 1)
        return IFPP_E_TLV_TRUNCATED;
    if (p[0] < 0x80) {
        *len = p[0];
        *used = 1;
        return IFPP_OK;
    }
    if (p[0] == 0x80)
        return IFPP_E_TLV_INDEFINITE;
    size_t octets = p[0] & 0x7F;
    if (octets > TLV_MAX_LENGTH_OCTETS)
        return p[0] == 0xFF ? IFPP_E_TLV_BAD_LENGTH : IFPP_E_TLV_TOO_BIG;
    if (n < 1 + octets)
        return IFPP_E_TLV_TRUNCATED;
    uint64_t v = 0;
    for (size_t i = 0; i < octets; i++)
        v = v << 8 | p[1 + i];
    /* DER (X.690 10.1): the long form only for 128 and above, in as few octets as possible. */
    if ((flags & TLV_DER) && (v < 0x80 || p[1] == 0))
        return IFPP_E_TLV_NOT_DER;
    *len = v;
    *used = 1 + octets;
    return IFPP_OK;
}

ifpp_err tlv_peek_header(const uint8_t *p, size_t n, unsigned flags, uint32_t *tag, size_t *hdr_len,
                         size_t *val_len)
{
    uint32_t t;
    size_t tag_used, len_used;
    uint64_t len;
    ifpp_err e;

    if (!p && n)
        return IFPP_E_ARG;
    if ((e = tlv_decode_tag(p, n, &t, &tag_used)) != IFPP_OK)
        return e;
    if ((e = tlv_decode_length(p + tag_used, n - tag_used, flags, &len, &len_used)) != IFPP_OK)
        return e;
    if (len > UINT32_MAX || len > SIZE_MAX - (tag_used + len_used))
        return IFPP_E_TLV_TOO_BIG;
    *tag = t;
    *hdr_len = tag_used + len_used;
    *val_len = (size_t)len;
    return IFPP_OK;
}

ifpp_err tlv_decode_header(const uint8_t *p, size_t n, unsigned flags, uint32_t *tag, size_t *hdr_len,
                           size_t *val_len)
{
    ifpp_err e = tlv_peek_header(p, n, flags, tag, hdr_len, val_len);
    if (e != IFPP_OK)
        return e;
    if (*val_len > n - *hdr_len) /* hdr_len <= n is guaranteed by the decoders */
        return IFPP_E_TLV_TRUNCATED;
    return IFPP_OK;
}

ifpp_err tlv_parse(const uint8_t *p, size_t n, unsigned flags, tlv *out)
{
    uint32_t tag;
    size_t hdr, len;
    ifpp_err e = tlv_decode_header(p, n, flags, &tag, &hdr, &len);
    if (e != IFPP_OK)
        return e;
    out->tag = tag;
    out->value = p + hdr;
    out->len = len;
    out->raw = p;
    out->raw_len = hdr + len;
    return IFPP_OK;
}

ifpp_err tlv_parse_exact(const uint8_t *p, size_t n, unsigned flags, tlv *out)
{
    ifpp_err e = tlv_parse(p, n, flags, out);
    if (e != IFPP_OK)
        return e;
    return out->raw_len == n ? IFPP_OK : IFPP_E_TLV_TRAILING;
}

void tlv_reader_init(tlv_reader *r, const uint8_t *p, size_t n, unsigned flags)
{
    r->p = p;
    r->left = p ? n : 0;
    r->flags = flags;
    r->depth = 0;
}

ifpp_err tlv_reader_next(tlv_reader *r, tlv *out)
{
    if (r->left == 0)
        return IFPP_E_TLV_END;
    ifpp_err e = tlv_parse(r->p, r->left, r->flags, out);
    if (e != IFPP_OK)
        return e;
    r->p += out->raw_len;
    r->left -= out->raw_len;
    return IFPP_OK;
}

ifpp_err tlv_reader_expect(tlv_reader *r, uint32_t tag, tlv *out)
{
    tlv_reader saved = *r;
    ifpp_err e = tlv_reader_next(r, out);
    if (e == IFPP_E_TLV_END)
        return IFPP_E_TLV_MISSING;
    if (e != IFPP_OK)
        return e;
    if (out->tag != tag) {
        *r = saved;
        return IFPP_E_TLV_UNEXPECTED_TAG;
    }
    return IFPP_OK;
}

ifpp_err tlv_reader_enter(const tlv_reader *parent, const tlv *t, tlv_reader *child)
{
    if (!tlv_tag_constructed(t->tag))
        return IFPP_E_TLV_NOT_CONSTRUCTED;
    if (parent->depth + 1 >= TLV_MAX_DEPTH)
        return IFPP_E_TLV_TOO_DEEP;
    tlv_reader_init(child, t->value, t->len, parent->flags);
    child->depth = parent->depth + 1;
    return IFPP_OK;
}

ifpp_err tlv_reader_find(const tlv_reader *r, uint32_t tag, tlv *out)
{
    tlv_reader scan = *r;
    ifpp_err e;
    while ((e = tlv_reader_next(&scan, out)) == IFPP_OK)
        if (out->tag == tag)
            return IFPP_OK;
    return e == IFPP_E_TLV_END ? IFPP_E_TLV_MISSING : e;
}

bool tlv_reader_done(const tlv_reader *r)
{
    return r->left == 0;
}

static ifpp_err tlv_validate_level(const uint8_t *p, size_t n, unsigned flags, unsigned depth,
                                   unsigned max_depth)
{
    tlv_reader r;
    tlv t;
    ifpp_err e;

    if (depth >= max_depth)
        return IFPP_E_TLV_TOO_DEEP;
    tlv_reader_init(&r, p, n, flags);
    while ((e = tlv_reader_next(&r, &t)) == IFPP_OK) {
        if (tlv_tag_constructed(t.tag) &&
            (e = tlv_validate_level(t.value, t.len, flags, depth + 1, max_depth)) != IFPP_OK)
            return e;
    }
    return e == IFPP_E_TLV_END ? IFPP_OK : e;
}

ifpp_err tlv_validate(const uint8_t *p, size_t n, unsigned flags, unsigned max_depth)
{
    if (!p && n)
        return IFPP_E_ARG;
    if (max_depth > TLV_MAX_DEPTH)
        max_depth = TLV_MAX_DEPTH;
    return tlv_validate_level(p, n, flags, 0, max_depth);
}

ifpp_err tlv_get_uint(const tlv *t, uint64_t *v)
{
    const uint8_t *p = t->value;
    size_t n = t->len;
    /* X.690 8.3: at least one octet; the first nine bits not all 0 or all 1. */
    if (n == 0 || (p[0] & 0x80))
        return IFPP_E_TLV_BAD_INTEGER;
    if (n > 1 && p[0] == 0 && !(p[1] & 0x80))
        return IFPP_E_TLV_BAD_INTEGER;
    if (p[0] == 0) {
        p++;
        n--;
    }
    if (n > 8)
        return IFPP_E_TLV_BAD_INTEGER;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | p[i];
    *v = x;
    return IFPP_OK;
}

/* ---------------------------------------------------------------------------------- */

void tlv_builder_init_fixed(tlv_builder *b, uint8_t *buf, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->buf = buf;
    b->cap = b->max = buf ? cap : 0;
}

void tlv_builder_init_dynamic(tlv_builder *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->dynamic = true;
    b->max = max;
}

/* Makes room for extra more bytes, growing a dynamic buffer geometrically up to max. */
static ifpp_err tlv_builder_reserve(tlv_builder *b, size_t extra)
{
    if (b->err != IFPP_OK)
        return b->err;
    if (extra > b->max - b->len)
        return b->err = IFPP_E_TLV_OVERFLOW;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return IFPP_OK;
    if (!b->dynamic)
        return b->err = IFPP_E_TLV_OVERFLOW;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    uint8_t *nb = realloc(b->buf, cap);
    if (!nb)
        return b->err = IFPP_E_NOMEM;
    b->buf = nb;
    b->cap = cap;
    return IFPP_OK;
}

static ifpp_err tlv_builder_append(tlv_builder *b, const void *data, size_t n)
{
    ifpp_err e = tlv_builder_reserve(b, n);
    if (e != IFPP_OK)
        return e;
    if (n)
        memcpy(b->buf + b->len, data, n);
    b->len += n;
    return IFPP_OK;
}

/* Refuses tags that tlv_decode_tag would refuse, so the builder only writes what the reader reads. */
static bool tlv_tag_well_formed(uint32_t tag)
{
    uint8_t enc[4];
    size_t n = tlv_tag_size(tag), used;
    uint32_t back;
    for (size_t i = 0; i < n; i++)
        enc[i] = (uint8_t)(tag >> (8 * (n - 1 - i)));
    return tlv_decode_tag(enc, n, &back, &used) == IFPP_OK && used == n && back == tag;
}

static ifpp_err tlv_put_tag(tlv_builder *b, uint32_t tag)
{
    if (b->err != IFPP_OK)
        return b->err;
    if (!tlv_tag_well_formed(tag))
        return b->err = IFPP_E_TLV_BAD_TAG;
    uint8_t enc[4];
    size_t n = tlv_tag_size(tag);
    for (size_t i = 0; i < n; i++)
        enc[i] = (uint8_t)(tag >> (8 * (n - 1 - i)));
    return tlv_builder_append(b, enc, n);
}

ifpp_err tlv_put(tlv_builder *b, uint32_t tag, const void *value, size_t n)
{
    uint8_t len[5];
    if (!value && n)
        return b->err = b->err ? b->err : IFPP_E_ARG;
    if (n > UINT32_MAX)
        return b->err = b->err ? b->err : IFPP_E_TLV_TOO_BIG;
    tlv_put_tag(b, tag);
    tlv_builder_append(b, len, tlv_encode_length(n, len));
    return tlv_builder_append(b, value, n);
}

ifpp_err tlv_put_uint(tlv_builder *b, uint32_t tag, uint64_t v)
{
    uint8_t enc[9];
    size_t n = 0;
    int i = 7;
    while (i > 0 && ((v >> (8 * i)) & 0xFF) == 0)
        i--;
    if ((v >> (8 * i)) & 0x80)
        enc[n++] = 0; /* keep it non-negative */
    for (; i >= 0; i--)
        enc[n++] = (uint8_t)(v >> (8 * i));
    return tlv_put(b, tag, enc, n);
}

ifpp_err tlv_put_raw(tlv_builder *b, const void *data, size_t n)
{
    if (!data && n)
        return b->err = b->err ? b->err : IFPP_E_ARG;
    return tlv_builder_append(b, data, n);
}

ifpp_err tlv_begin(tlv_builder *b, uint32_t tag)
{
    if (b->err != IFPP_OK)
        return b->err;
    if (!tlv_tag_constructed(tag))
        return b->err = IFPP_E_TLV_NOT_CONSTRUCTED;
    if (b->depth >= TLV_BUILDER_MAX_DEPTH)
        return b->err = IFPP_E_TLV_TOO_DEEP;
    if (tlv_put_tag(b, tag) != IFPP_OK)
        return b->err;
    /* One length byte for now; tlv_end() widens it once the value's size is known. */
    uint8_t zero = 0;
    if (tlv_builder_append(b, &zero, 1) != IFPP_OK)
        return b->err;
    b->open[b->depth++] = b->len - 1;
    return IFPP_OK;
}

ifpp_err tlv_end(tlv_builder *b)
{
    if (b->err != IFPP_OK)
        return b->err;
    if (b->depth == 0)
        return b->err = IFPP_E_TLV_UNBALANCED;
    size_t at = b->open[--b->depth];
    size_t value_start = at + 1;
    size_t vlen = b->len - value_start;
    if (vlen > UINT32_MAX)
        return b->err = IFPP_E_TLV_TOO_BIG;
    uint8_t len[5];
    size_t ln = tlv_encode_length(vlen, len);
    if (ln > 1) {
        if (tlv_builder_reserve(b, ln - 1) != IFPP_OK)
            return b->err;
        memmove(b->buf + value_start + ln - 1, b->buf + value_start, vlen);
        b->len += ln - 1;
    }
    memcpy(b->buf + at, len, ln);
    return IFPP_OK;
}

ifpp_err tlv_builder_finish(tlv_builder *b, const uint8_t **out, size_t *n)
{
    if (b->err == IFPP_OK && b->depth != 0)
        b->err = IFPP_E_TLV_UNBALANCED;
    if (b->err != IFPP_OK)
        return b->err;
    *out = b->buf;
    *n = b->len;
    return IFPP_OK;
}

void tlv_builder_free(tlv_builder *b)
{
    if (b->dynamic)
        free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
}
