/*
 * tlv.h -- the BER-TLV / DER codec of ifpp-station: the one hand-written parser.
 *
 * Every structure that crosses a trust boundary -- ES10 responses from an eUICC, the
 * media bundles, certificates' outer shells -- is BER-TLV as ISO/IEC 8825-1 (X.690)
 * and ISO/IEC 7816-4 define it, and SGP.22 requires DER. So the station reads it with
 * one small reader that:
 *   - never reads past the buffer it was given (every length is checked against what
 *     is left before it is used, and lengths above 2^32-1 are refused outright);
 *   - refuses indefinite lengths always, and in TLV_DER mode also non-minimal length
 *     forms (81 05, 82 00 80) that DER forbids;
 *   - refuses malformed multi-byte tags (leading 80 octet, high-tag form for a number
 *     below 31) and tags longer than 4 bytes;
 *   - bounds nesting depth, so hostile input cannot exhaust the stack.
 *
 * Tags are held as the big-endian value of their encoded bytes, the way SGP.22 and
 * lpac write them: 0x5A, 0x80, 0xBF36, 0x9F70, 0x5F49.
 *
 * The builder writes into either a caller's fixed buffer or a heap buffer with an
 * upper bound; it never writes past its capacity. Errors are sticky: after the first
 * failure every call is a no-op that returns the same error, so a sequence of puts
 * needs one check at tlv_builder_finish().
 */
#ifndef IFPP_TLV_H
#define IFPP_TLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Parsing flags. */
#define TLV_BER 0u        /* definite lengths in any form */
#define TLV_DER (1u << 0) /* strict DER: minimal length encoding */

#define TLV_MAX_DEPTH 32         /* nesting bound for readers and tlv_validate() */
#define TLV_BUILDER_MAX_DEPTH 16 /* open constructed objects in one builder */
#define TLV_MAX_HEADER 9         /* 4 tag bytes + 5 length bytes */

/* One decoded TLV; all pointers point into the parsed buffer. */
typedef struct {
    uint32_t tag;         /* encoded tag bytes, big-endian (0xBF36) */
    const uint8_t *value; /* the value field */
    size_t len;           /* its length */
    const uint8_t *raw;   /* the whole object, header included */
    size_t raw_len;
} tlv;

/* A cursor over a sequence of sibling TLVs. */
typedef struct {
    const uint8_t *p;
    size_t left;
    unsigned flags;
    unsigned depth; /* 0 at top level */
} tlv_reader;

/* True if the tag's first byte has the constructed bit (0x20). */
bool tlv_tag_constructed(uint32_t tag);

/* Encoded size of tag in bytes (1..4). */
size_t tlv_tag_size(uint32_t tag);

/* Encoded size of a definite length field for len (1..5). */
size_t tlv_length_size(size_t len);

/* Writes len as a minimal DER length into out (>= 5 bytes); returns bytes written. */
size_t tlv_encode_length(size_t len, uint8_t *out);

/* Decodes a TLV header at p without requiring the value to follow (for streams and ES10 header-only commands). */
ifpp_err tlv_peek_header(const uint8_t *p, size_t n, unsigned flags, uint32_t *tag, size_t *hdr_len,
                         size_t *val_len);

/* Decodes one TLV header at p (n bytes available): tag, header size and value length, all checked. */
ifpp_err tlv_decode_header(const uint8_t *p, size_t n, unsigned flags, uint32_t *tag, size_t *hdr_len,
                           size_t *val_len);

/* Parses the one TLV starting at p; bytes after it are allowed (see out->raw_len). */
ifpp_err tlv_parse(const uint8_t *p, size_t n, unsigned flags, tlv *out);

/* Parses a TLV that must fill exactly n bytes (IFPP_E_TLV_TRAILING otherwise). */
ifpp_err tlv_parse_exact(const uint8_t *p, size_t n, unsigned flags, tlv *out);

/* Starts a reader over n bytes of sibling TLVs. */
void tlv_reader_init(tlv_reader *r, const uint8_t *p, size_t n, unsigned flags);

/* Reads the next sibling; IFPP_E_TLV_END when none is left. The reader does not move on error. */
ifpp_err tlv_reader_next(tlv_reader *r, tlv *out);

/* Reads the next sibling and requires it to carry tag (IFPP_E_TLV_MISSING / _UNEXPECTED_TAG). */
ifpp_err tlv_reader_expect(tlv_reader *r, uint32_t tag, tlv *out);

/* Starts child as a reader over constructed t's value, one level deeper than parent. */
ifpp_err tlv_reader_enter(const tlv_reader *parent, const tlv *t, tlv_reader *child);

/* Finds the first remaining sibling with tag without moving r; IFPP_E_TLV_MISSING if none. */
ifpp_err tlv_reader_find(const tlv_reader *r, uint32_t tag, tlv *out);

/* True if the reader has consumed everything. */
bool tlv_reader_done(const tlv_reader *r);

/* Checks that n bytes are a well-formed sequence of TLVs, descending into every constructed one. */
ifpp_err tlv_validate(const uint8_t *p, size_t n, unsigned flags, unsigned max_depth);

/* Reads a non-negative DER INTEGER value of at most 8 significant bytes into v. */
ifpp_err tlv_get_uint(const tlv *t, uint64_t *v);

/* ---------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *buf;
    size_t len, cap, max;
    bool dynamic;
    ifpp_err err; /* sticky */
    unsigned depth;
    size_t open[TLV_BUILDER_MAX_DEPTH]; /* offset of each open object's length byte */
} tlv_builder;

/* Starts a builder writing into buf[0..cap). */
void tlv_builder_init_fixed(tlv_builder *b, uint8_t *buf, size_t cap);

/* Starts a builder on the heap that may grow up to max bytes. */
void tlv_builder_init_dynamic(tlv_builder *b, size_t max);

/* Appends tag || length || value. */
ifpp_err tlv_put(tlv_builder *b, uint32_t tag, const void *value, size_t n);

/* Appends a DER INTEGER (minimal, non-negative) holding v. */
ifpp_err tlv_put_uint(tlv_builder *b, uint32_t tag, uint64_t v);

/* Appends bytes as they are (an already-encoded TLV, say). */
ifpp_err tlv_put_raw(tlv_builder *b, const void *data, size_t n);

/* Opens a constructed object; its length is fixed by the matching tlv_end(). */
ifpp_err tlv_begin(tlv_builder *b, uint32_t tag);

/* Closes the innermost open constructed object. */
ifpp_err tlv_end(tlv_builder *b);

/* Returns the first error met, or IFPP_E_TLV_UNBALANCED if objects are still open; on success the encoding. */
ifpp_err tlv_builder_finish(tlv_builder *b, const uint8_t **out, size_t *n);

/* Releases a dynamic builder's buffer (no-op for fixed builders). */
void tlv_builder_free(tlv_builder *b);

#endif
