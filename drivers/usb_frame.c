/*
 * usb_frame.c -- the IFPP USB vendor protocol's frames (docs/usb-protocol.md): the one encoder and
 * the one strict parser both ends use. A frame comes from a device the station does not trust, so
 * every length is checked against what is really there before anything is read.
 */
#include "usb_frame.h"

#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

ifpp_err usbf_encode(const usbf_frame *f, uint8_t *out, size_t cap, size_t *n)
{
    *n = 0;
    if (f->len > USBF_MAX_PAYLOAD || cap < USBF_HEADER || cap - USBF_HEADER < f->len || (f->len && !f->payload))
        return IFPP_E_RANGE;
    out[0] = 'I';
    out[1] = 'F';
    out[2] = f->version;
    out[3] = f->type;
    put16(out + 4, f->seq);
    put16(out + 6, f->status);
    put32(out + 8, f->len);
    if (f->len)
        memmove(out + USBF_HEADER, f->payload, f->len);
    *n = USBF_HEADER + (size_t)f->len;
    return IFPP_OK;
}

ifpp_err usbf_parse(const uint8_t *buf, size_t n, usbf_frame *f, char *why, size_t why_len)
{
    memset(f, 0, sizeof *f);
    if (n < USBF_HEADER) {
        err_why(why, why_len, "frame of %zu bytes is shorter than its 12-byte header (short read)", n);
        return IFPP_E_CARD_PROTOCOL;
    }
    if (buf[0] != 'I' || buf[1] != 'F') {
        err_why(why, why_len, "frame magic %02X %02X is not 49 46", buf[0], buf[1]);
        return IFPP_E_CARD_PROTOCOL;
    }
    f->version = buf[2];
    f->type = buf[3];
    f->seq = get16(buf + 4);
    f->status = get16(buf + 6);
    f->len = get32(buf + 8);
    if (f->len > USBF_MAX_PAYLOAD) {
        err_why(why, why_len, "frame announces %lu payload bytes, more than the %u allowed", (unsigned long)f->len,
                USBF_MAX_PAYLOAD);
        return IFPP_E_CARD_PROTOCOL;
    }
    if (n - USBF_HEADER != f->len) {
        err_why(why, why_len, "frame announces %lu payload bytes but carries %zu (%s)", (unsigned long)f->len,
                n - USBF_HEADER, n - USBF_HEADER < f->len ? "short read" : "trailing bytes");
        return IFPP_E_CARD_PROTOCOL;
    }
    f->payload = f->len ? buf + USBF_HEADER : NULL;
    return IFPP_OK;
}

const char *usbf_status_str(uint16_t status)
{
    static const char *const names[] = {"OK",          "BAD_FRAME", "BAD_VERSION", "BAD_SEQUENCE",
                                        "UNSUPPORTED", "NO_CARD",   "CARD_IO",     "REFUSED"};
    return status < sizeof names / sizeof names[0] ? names[status] : "unknown status";
}

void usbf_encode_status(const usbf_status *s, uint8_t out[8])
{
    out[0] = s->max_version;
    out[1] = s->caps;
    out[2] = s->card;
    out[3] = 0;
    put32(out + 4, s->max_payload);
}

ifpp_err usbf_parse_status(const uint8_t *p, size_t n, usbf_status *s)
{
    memset(s, 0, sizeof *s);
    if (n != 8 || p[3] != 0 || p[2] > 1)
        return IFPP_E_CARD_PROTOCOL;
    s->max_version = p[0];
    s->caps = p[1];
    s->card = p[2];
    s->max_payload = get32(p + 4);
    return IFPP_OK;
}

/* One bpp-op field: tag(1) length(4) value. */
static ifpp_err usbf_put_field(uint8_t tag, const uint8_t *v, size_t len, uint8_t *out, size_t cap, size_t *at)
{
    if (len > USBF_MAX_PAYLOAD || (len && !v) || cap - *at < 5 || cap - *at - 5 < len)
        return IFPP_E_RANGE;
    out[*at] = tag;
    put32(out + *at + 1, (uint32_t)len);
    if (len)
        memcpy(out + *at + 5, v, len);
    *at += 5 + len;
    return IFPP_OK;
}

ifpp_err usbf_encode_bpp_op(const usbf_bpp_op *op, uint8_t *out, size_t cap, size_t *n)
{
    size_t at = 0;
    ifpp_err e;
    *n = 0;
    if (cap > USBF_MAX_PAYLOAD)
        cap = USBF_MAX_PAYLOAD;
    if ((e = usbf_put_field(1, op->chain, op->chain_len, out, cap, &at)) != IFPP_OK ||
        (e = usbf_put_field(2, op->txid, op->txid_len, out, cap, &at)) != IFPP_OK ||
        (e = usbf_put_field(3, op->otpk, 65, out, cap, &at)) != IFPP_OK ||
        (e = usbf_put_field(4, op->bpp, op->bpp_len, out, cap, &at)) != IFPP_OK)
        return e;
    *n = at;
    return IFPP_OK;
}

ifpp_err usbf_parse_bpp_op(const uint8_t *p, size_t n, usbf_bpp_op *op, char *why, size_t why_len)
{
    static const char *const names[] = {"", "SM-DPf certificate chain", "transaction id", "One-time Key", "BPP"};
    const uint8_t *val[5] = {0};
    size_t len[5] = {0}, at = 0;
    memset(op, 0, sizeof *op);
    for (uint8_t tag = 1; tag <= 4; tag++) {
        if (n - at < 5) {
            err_why(why, why_len, "LOAD_BPP: field %u (%s) missing", tag, names[tag]);
            return IFPP_E_TLV_MISSING;
        }
        if (p[at] != tag) {
            err_why(why, why_len, "LOAD_BPP: field tag %02X where %u (%s) belongs", p[at], tag, names[tag]);
            return IFPP_E_TLV_UNEXPECTED_TAG;
        }
        uint32_t l = get32(p + at + 1);
        if (l > n - at - 5) {
            err_why(why, why_len, "LOAD_BPP: field %u (%s) runs past the payload", tag, names[tag]);
            return IFPP_E_TLV_TRUNCATED;
        }
        val[tag] = p + at + 5;
        len[tag] = l;
        at += 5 + (size_t)l;
    }
    if (at != n) {
        err_why(why, why_len, "LOAD_BPP: %zu bytes after the BPP field", n - at);
        return IFPP_E_TLV_TRAILING;
    }
    if (len[1] == 0 || len[2] == 0 || len[2] > 16 || len[3] != 65 || val[3][0] != 0x04 || len[4] == 0) {
        err_why(why, why_len, "LOAD_BPP: %s has a wrong length",
                len[1] == 0 ? names[1] : (len[2] == 0 || len[2] > 16) ? names[2] : len[4] == 0 ? names[4] : names[3]);
        return IFPP_E_RANGE;
    }
    op->chain = val[1];
    op->chain_len = len[1];
    op->txid = val[2];
    op->txid_len = len[2];
    op->otpk = val[3];
    op->bpp = val[4];
    op->bpp_len = len[4];
    return IFPP_OK;
}

void usbf_encode_bpp_error(const usbf_bpp_error *e, uint8_t out[5])
{
    out[0] = e->stage;
    out[1] = e->sent;
    put16(out + 2, e->sw);
    out[4] = e->result;
}

ifpp_err usbf_parse_bpp_error(const uint8_t *p, size_t n, usbf_bpp_error *e)
{
    memset(e, 0, sizeof *e);
    if (n != 5 || p[0] < 1 || p[0] > 4 || p[1] > 1)
        return IFPP_E_CARD_PROTOCOL;
    e->stage = p[0];
    e->sent = p[1];
    e->sw = get16(p + 2);
    e->result = p[4];
    return IFPP_OK;
}
