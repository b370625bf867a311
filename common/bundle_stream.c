/*
 * bundle_stream.c -- SignedBundle reading element by element; see bundle_stream.h.
 *
 * Every length read from the file is checked against the end of the element that contains
 * it (a stack of end offsets, one per level entered) before anything is read, so a hostile
 * length cannot make the reader run past its parent, its buffer or the file.
 */
#include "bundle_stream.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define BS_MAX_DEPTH 8

struct bundle_stream {
    FILE *f;
    bundle_type type;
    uint64_t pos, size;
    uint64_t content_start, content_end; /* the [0] TLV, header included */
    uint64_t end[BS_MAX_DEPTH];          /* end offset of each entered level */
    unsigned depth;
    crypto_sha256_ctx hash;
    uint8_t *buf;
    size_t cap;
};

/* Reads n bytes, hashing the ones inside [0]. */
static ifpp_err bs_read(bundle_stream *s, uint8_t *dst, size_t n)
{
    if (n > s->size - s->pos)
        return IFPP_E_TLV_TRUNCATED;
    if (fread(dst, 1, n, s->f) != n)
        return IFPP_E_IO;
    uint64_t a = s->pos, b = s->pos + n;
    if (b > s->content_start && a < s->content_end) {
        uint64_t from = a > s->content_start ? a : s->content_start;
        uint64_t to = b < s->content_end ? b : s->content_end;
        crypto_sha256_update(&s->hash, dst + (from - a), (size_t)(to - from));
    }
    s->pos = b;
    return IFPP_OK;
}

/* Reads one TLV header (tag and length bytes only) into hdr; strict DER. */
static ifpp_err bs_read_header(bundle_stream *s, uint8_t hdr[TLV_MAX_HEADER], size_t *hl, uint32_t *tag, size_t *len)
{
    size_t n = 0;
    ifpp_err e;
    /* tag: one byte, or more while the high-tag form continues */
    if ((e = bs_read(s, hdr, 1)) != IFPP_OK)
        return e;
    n = 1;
    if ((hdr[0] & 0x1F) == 0x1F) {
        do {
            if (n == 4)
                return IFPP_E_TLV_TAG_TOO_LONG;
            if ((e = bs_read(s, hdr + n, 1)) != IFPP_OK)
                return e;
            n++;
        } while (hdr[n - 1] & 0x80);
    }
    if ((e = bs_read(s, hdr + n, 1)) != IFPP_OK)
        return e;
    n++;
    if (hdr[n - 1] & 0x80) {
        size_t octets = hdr[n - 1] & 0x7F;
        if (octets == 0 || octets > 4)
            return octets ? IFPP_E_TLV_TOO_BIG : IFPP_E_TLV_INDEFINITE;
        if ((e = bs_read(s, hdr + n, octets)) != IFPP_OK)
            return e;
        n += octets;
    }
    if ((e = tlv_peek_header(hdr, n, TLV_DER, tag, hl, len)) != IFPP_OK)
        return e;
    return *hl == n ? IFPP_OK : IFPP_E_TLV_BAD_LENGTH;
}

/* The end of the innermost level (the file's end at the top). */
static uint64_t bs_limit(const bundle_stream *s)
{
    return s->depth ? s->end[s->depth - 1] : s->size;
}

ifpp_err bundle_stream_open(FILE *f, size_t size, bundle_type t, size_t max_element, bundle_stream **out,
                            char *why, size_t why_len)
{
    bundle_stream *s = calloc(1, sizeof *s);
    uint8_t hdr[TLV_MAX_HEADER], oid[64];
    size_t hl, len;
    uint32_t tag;
    ifpp_err e;
    const char *name = bundle_type_name(t);
    if (!s)
        return IFPP_E_NOMEM;
    s->f = f;
    s->type = t;
    s->size = size;
    s->content_start = s->content_end = UINT64_MAX; /* nothing hashed before [0] */
    s->cap = max_element;
    if (!(s->buf = malloc(max_element)) || crypto_sha256_init(&s->hash) != IFPP_OK) {
        bundle_stream_free(s);
        return IFPP_E_NOMEM;
    }
    if ((e = bs_read_header(s, hdr, &hl, &tag, &len)) != IFPP_OK || tag != 0x30 || len != size - hl) {
        err_why(why, why_len, "%s: not one DER SEQUENCE filling the file (%s)", name,
                e ? err_str(e) : "wrong outer tag or length");
        bundle_stream_free(s);
        return e ? e : IFPP_E_TLV_TRAILING;
    }
    if ((e = bs_read_header(s, hdr, &hl, &tag, &len)) != IFPP_OK || tag != 0x06 || len > sizeof oid ||
        (e = bs_read(s, oid, len)) != IFPP_OK) {
        err_why(why, why_len, "%s: bundle type missing", name);
        bundle_stream_free(s);
        return e ? e : IFPP_E_TLV_UNEXPECTED_TAG;
    }
    if (!bundle_type_oid_matches(t, oid, len)) {
        err_why(why, why_len, "%s expected, but the file declares another bundle type", name);
        bundle_stream_free(s);
        return IFPP_E_TLV_UNEXPECTED_TAG;
    }
    s->content_start = s->pos;
    s->content_end = UINT64_MAX;
    if ((e = bs_read_header(s, hdr, &hl, &tag, &len)) != IFPP_OK || tag != 0xA0 || len > s->size - s->pos) {
        err_why(why, why_len, "%s: content [0] missing or truncated", name);
        bundle_stream_free(s);
        return e ? e : IFPP_E_TLV_TRUNCATED;
    }
    s->content_end = s->pos + len; /* the [0] header itself was hashed as it was read (end unknown until then) */
    if ((e = bs_read_header(s, hdr, &hl, &tag, &len)) != IFPP_OK || tag != 0x30 || s->pos + len != s->content_end) {
        err_why(why, why_len, "%s: content is not one DER SEQUENCE", name);
        bundle_stream_free(s);
        return e ? e : IFPP_E_TLV_UNEXPECTED_TAG;
    }
    s->end[s->depth++] = s->content_end;
    *out = s;
    return IFPP_OK;
}

/* Reads the value of an element whose header (hl bytes in hdr) was just read, into the buffer. */
static ifpp_err bs_read_value(bundle_stream *s, const uint8_t *hdr, size_t hl, uint32_t tag, size_t len, tlv *out)
{
    ifpp_err e;
    if (len > bs_limit(s) - s->pos)
        return IFPP_E_TLV_TRUNCATED;
    if (hl + len > s->cap)
        return IFPP_E_TLV_TOO_BIG;
    memcpy(s->buf, hdr, hl);
    if ((e = bs_read(s, s->buf + hl, len)) != IFPP_OK)
        return e;
    /* the element is whole: validate its inside like any DER we parse */
    if (tlv_tag_constructed(tag) && (e = tlv_validate(s->buf + hl, len, TLV_DER, TLV_MAX_DEPTH)) != IFPP_OK)
        return e;
    return tlv_parse_exact(s->buf, hl + len, TLV_DER, out);
}

/* Enters an element whose header was just read. */
static ifpp_err bs_enter(bundle_stream *s, uint32_t tag, size_t len)
{
    if (s->depth == BS_MAX_DEPTH)
        return IFPP_E_TLV_TOO_DEEP;
    if (!tlv_tag_constructed(tag))
        return IFPP_E_TLV_NOT_CONSTRUCTED;
    if (len > bs_limit(s) - s->pos)
        return IFPP_E_TLV_TRUNCATED;
    s->end[s->depth++] = s->pos + len;
    return IFPP_OK;
}

/* Reads the next header at the current level; IFPP_E_TLV_END (leaving the level) at its end. */
static ifpp_err bs_next_header(bundle_stream *s, uint8_t hdr[TLV_MAX_HEADER], size_t *hl, uint32_t *tag, size_t *len)
{
    if (s->depth == 0)
        return IFPP_E_TLV_END;
    if (s->pos == bs_limit(s)) {
        s->depth--;
        return IFPP_E_TLV_END;
    }
    return bs_read_header(s, hdr, hl, tag, len);
}

ifpp_err bundle_stream_next(bundle_stream *s, tlv *out)
{
    uint8_t hdr[TLV_MAX_HEADER];
    size_t hl, len;
    uint32_t tag;
    ifpp_err e = bs_next_header(s, hdr, &hl, &tag, &len);
    return e == IFPP_OK ? bs_read_value(s, hdr, hl, tag, len, out) : e;
}

ifpp_err bundle_stream_enter(bundle_stream *s, uint32_t want)
{
    uint8_t hdr[TLV_MAX_HEADER];
    size_t hl, len;
    uint32_t tag;
    ifpp_err e = bs_next_header(s, hdr, &hl, &tag, &len);
    if (e == IFPP_E_TLV_END)
        return IFPP_E_TLV_MISSING;
    if (e != IFPP_OK)
        return e;
    return tag == want ? bs_enter(s, tag, len) : IFPP_E_TLV_UNEXPECTED_TAG;
}

ifpp_err bundle_stream_enter_or_next(bundle_stream *s, uint32_t enter_tag, tlv *out, bool *entered)
{
    uint8_t hdr[TLV_MAX_HEADER];
    size_t hl, len;
    uint32_t tag;
    ifpp_err e = bs_next_header(s, hdr, &hl, &tag, &len);
    *entered = false;
    if (e != IFPP_OK)
        return e;
    if (tag == enter_tag) {
        *entered = true;
        return bs_enter(s, tag, len);
    }
    return bs_read_value(s, hdr, hl, tag, len, out);
}

ifpp_err bundle_stream_finish(bundle_stream *s, const cert *root, time_t now, cert **signer, uint8_t content_hash[32],
                              char *why, size_t why_len)
{
    uint8_t digest[32];
    const char *name = bundle_type_name(s->type);
    if (s->pos != s->content_end) {
        err_why(why, why_len, "%s: content not read to its end", name);
        return IFPP_E_TLV_TRAILING;
    }
    s->depth = 0;
    crypto_sha256_final(&s->hash, digest);
    /* the rest -- [1] certificates and the signature -- is small: read it whole and reuse bundle_open's checks */
    uint64_t rest = s->size - s->pos;
    if (rest > s->cap || rest > 64 * 1024) {
        err_why(why, why_len, "%s: signer part too large", name);
        return IFPP_E_TLV_TOO_BIG;
    }
    ifpp_err e = bs_read(s, s->buf, (size_t)rest);
    if (e != IFPP_OK)
        return e;
    e = bundle_verify_trailer(s->type, s->buf, (size_t)rest, digest, root, now, signer, why, why_len);
    if (e == IFPP_OK && content_hash)
        memcpy(content_hash, digest, 32);
    return e;
}

ifpp_err bundle_stream_verify(FILE *f, size_t size, bundle_type t, const cert *root, time_t now, cert **signer,
                              uint8_t content_hash[32], char *why, size_t why_len)
{
    bundle_stream *s = NULL;
    ifpp_err e = bundle_stream_open(f, size, t, 64 * 1024, &s, why, why_len);
    if (e != IFPP_OK)
        return e;
    /* the content is hashed as it passes and not parsed: one pass of SHA-256, then the signature */
    while (e == IFPP_OK && s->pos < s->content_end) {
        uint64_t left = s->content_end - s->pos;
        e = bs_read(s, s->buf, left < s->cap ? (size_t)left : s->cap);
    }
    if (e != IFPP_OK)
        err_why(why, why_len, "%s: content unreadable (%s)", bundle_type_name(t), err_str(e));
    else
        e = bundle_stream_finish(s, root, now, signer, content_hash, why, why_len);
    bundle_stream_free(s);
    return e;
}

void bundle_stream_free(bundle_stream *s)
{
    if (!s)
        return;
    crypto_sha256_abort(&s->hash);
    free(s->buf);
    free(s);
}
