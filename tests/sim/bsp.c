/*
 * bsp.c -- SGP.22 BSP segment protection; see bsp.h.
 *
 * The unprotect side works on a copy of the context and commits it only when the whole
 * segment checked out: a flipped bit leaves the chain where it was, so the caller can
 * report the error without having consumed anything.
 */
#include "bsp.h"

#include <string.h>

#include "crypto.h"
#include "tlv.h"

ifpp_err bsp_derive_keys(const uint8_t *shs, size_t shs_len, uint8_t key_type, uint8_t key_len,
                         const uint8_t *host_id, size_t host_id_len, const uint8_t *eid, size_t eid_len,
                         bsp_ctx *out)
{
    uint8_t info[2 + 5 + 255 + 5 + 255], keys[48];
    size_t n = 0;
    if (!shs || !out || (!host_id && host_id_len) || (!eid && eid_len) || host_id_len > 255 || eid_len > 255)
        return IFPP_E_ARG;
    info[n++] = key_type;
    info[n++] = key_len;
    n += tlv_encode_length(host_id_len, info + n);
    if (host_id_len) /* memcpy from NULL is undefined even for 0 bytes */
        memcpy(info + n, host_id, host_id_len);
    n += host_id_len;
    n += tlv_encode_length(eid_len, info + n);
    if (eid_len)
        memcpy(info + n, eid, eid_len);
    n += eid_len;
    ifpp_err e = crypto_kdf_x963_sha256(shs, shs_len, info, n, keys, sizeof keys);
    if (e == IFPP_OK)
        bsp_init(out, keys + 16, keys + 32, keys);
    crypto_wipe(keys, sizeof keys);
    return e;
}

void bsp_init(bsp_ctx *c, const uint8_t s_enc[16], const uint8_t s_mac[16], const uint8_t mcv[16])
{
    memcpy(c->s_enc, s_enc, 16);
    memcpy(c->s_mac, s_mac, 16);
    memcpy(c->mac_chain, mcv, 16);
    c->block_nr = 1;
}

void bsp_wipe(bsp_ctx *c)
{
    crypto_wipe(c, sizeof *c);
}

/* ICV = AES(S-ENC, block counter as a 16-byte big-endian number), SGP.22 §2.6.4.4. */
static ifpp_err bsp_icv(const bsp_ctx *c, uint8_t icv[16])
{
    uint8_t counter[16] = {0};
    counter[12] = (uint8_t)(c->block_nr >> 24);
    counter[13] = (uint8_t)(c->block_nr >> 16);
    counter[14] = (uint8_t)(c->block_nr >> 8);
    counter[15] = (uint8_t)c->block_nr;
    return crypto_aes128_encrypt_block(c->s_enc, counter, icv);
}

/*
 * C-MAC over mac_chain || tag || L || data, where L counts the MAC too (SGP.22 §2.6.4.5);
 * the full CMAC becomes the next chaining value, its first 8 bytes the C-MAC.
 */
static ifpp_err bsp_cmac(bsp_ctx *c, const uint8_t *hdr, size_t hdr_len, const uint8_t *data, size_t n,
                         uint8_t full[16])
{
    return crypto_aes128_cmac(c->s_mac, c->mac_chain, 16, hdr, hdr_len, data, n, full);
}

/* Writes tag || L(n + MAC) into hdr; returns its size. */
static size_t bsp_header(uint8_t tag, size_t n, uint8_t hdr[6])
{
    hdr[0] = tag;
    return 1 + tlv_encode_length(n + BSP_MAC_LEN, hdr + 1);
}

/* Appends header, body and MAC into out and advances the chain. */
static ifpp_err bsp_seal(bsp_ctx *c, uint8_t tag, const uint8_t *body, size_t n, uint8_t *out, size_t cap,
                         size_t *outlen)
{
    uint8_t hdr[6], full[16];
    size_t hl = bsp_header(tag, n, hdr);
    if (hl + n + BSP_MAC_LEN > BSP_MAX_SEGMENT)
        return IFPP_E_RANGE;
    if (hl + n + BSP_MAC_LEN > cap)
        return IFPP_E_RANGE;
    ifpp_err e = bsp_cmac(c, hdr, hl, body, n, full);
    if (e != IFPP_OK)
        return e;
    if (n)
        memmove(out + hl, body, n);
    memcpy(out, hdr, hl);
    memcpy(out + hl + n, full, BSP_MAC_LEN);
    memcpy(c->mac_chain, full, 16);
    c->block_nr++;
    *outlen = hl + n + BSP_MAC_LEN;
    return IFPP_OK;
}

ifpp_err bsp_encrypt_and_mac(bsp_ctx *c, uint8_t tag, const uint8_t *pt, size_t n, uint8_t *out, size_t cap,
                             size_t *outlen)
{
    uint8_t buf[BSP_MAX_SEGMENT], icv[16];
    if (!c || (!pt && n) || !out || !outlen)
        return IFPP_E_ARG;
    if (n > BSP_MAX_PLAIN_ENCRYPTED)
        return IFPP_E_RANGE;
    /* ISO/IEC 9797-1 method 2: always 80, then 00 up to a block boundary. */
    size_t padded = (n / 16 + 1) * 16;
    if (n)
        memcpy(buf, pt, n);
    buf[n] = 0x80;
    memset(buf + n + 1, 0, padded - n - 1);
    ifpp_err e = bsp_icv(c, icv);
    if (e == IFPP_OK)
        e = crypto_aes128_cbc_encrypt(c->s_enc, icv, buf, padded, buf);
    if (e == IFPP_OK)
        e = bsp_seal(c, tag, buf, padded, out, cap, outlen);
    crypto_wipe(buf, sizeof buf);
    return e;
}

ifpp_err bsp_mac_only(bsp_ctx *c, uint8_t tag, const uint8_t *data, size_t n, uint8_t *out, size_t cap,
                      size_t *outlen)
{
    if (!c || (!data && n) || !out || !outlen)
        return IFPP_E_ARG;
    if (n > BSP_MAX_PLAIN_MAC_ONLY)
        return IFPP_E_RANGE;
    if (out + cap > data && data + n > out)
        return IFPP_E_ARG; /* bsp_seal moves the body; keep the input intact */
    return bsp_seal(c, tag, data, n, out, cap, outlen);
}

/*
 * Parses seg as one TLV with a single-byte tag and a definite length of at most 1020 bytes
 * in all, checks its MAC against a copy of the chain; body/body_len get the data before the MAC.
 */
static ifpp_err bsp_check(const bsp_ctx *c, const uint8_t *seg, size_t n, bsp_ctx *next, const uint8_t **body,
                          size_t *body_len)
{
    tlv t;
    uint8_t full[16];
    if (!seg || n > BSP_MAX_SEGMENT || tlv_parse_exact(seg, n, TLV_DER, &t) != IFPP_OK || t.tag > 0xFF ||
        t.len < BSP_MAC_LEN)
        return IFPP_E_BSP_SEGMENT;
    size_t hl = t.raw_len - t.len, dl = t.len - BSP_MAC_LEN;
    *next = *c;
    ifpp_err e = bsp_cmac(next, seg, hl, t.value, dl, full);
    if (e != IFPP_OK)
        return e;
    if (!crypto_equal_ct(full, t.value + dl, BSP_MAC_LEN))
        return IFPP_E_MAC;
    memcpy(next->mac_chain, full, 16);
    *body = t.value;
    *body_len = dl;
    return IFPP_OK;
}

ifpp_err bsp_verify_and_decrypt(bsp_ctx *c, const uint8_t *seg, size_t n, uint8_t tag, uint8_t *out, size_t cap,
                                size_t *outlen)
{
    bsp_ctx next;
    const uint8_t *body;
    size_t bl;
    uint8_t buf[BSP_MAX_SEGMENT], icv[16];
    if (!c || !out || !outlen)
        return IFPP_E_ARG;
    if (n < 1 || !seg || seg[0] != tag)
        return IFPP_E_BSP_SEGMENT;
    ifpp_err e = bsp_check(c, seg, n, &next, &body, &bl);
    if (e != IFPP_OK)
        return e;
    if (bl == 0 || bl % 16)
        return IFPP_E_BSP_SEGMENT;
    if ((e = bsp_icv(&next, icv)) != IFPP_OK || (e = crypto_aes128_cbc_decrypt(next.s_enc, icv, body, bl, buf)) != IFPP_OK)
        goto out;
    size_t len = bl;
    while (len > 0 && buf[len - 1] == 0 && bl - len < 15)
        len--;
    if (len == 0 || buf[len - 1] != 0x80) {
        e = IFPP_E_PADDING;
        goto out;
    }
    len--;
    if (len > cap) {
        e = IFPP_E_RANGE;
        goto out;
    }
    memcpy(out, buf, len);
    *outlen = len;
    next.block_nr++;
    *c = next;
out:
    crypto_wipe(buf, sizeof buf);
    bsp_wipe(&next);
    return e;
}

ifpp_err bsp_verify_mac_only(bsp_ctx *c, const uint8_t *seg, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    bsp_ctx next;
    const uint8_t *body;
    size_t bl;
    if (!c || !out || !outlen)
        return IFPP_E_ARG;
    ifpp_err e = bsp_check(c, seg, n, &next, &body, &bl);
    if (e == IFPP_OK && bl > cap)
        e = IFPP_E_RANGE;
    if (e == IFPP_OK) {
        memcpy(out, body, bl);
        *outlen = bl;
        next.block_nr++;
        *c = next;
    }
    bsp_wipe(&next);
    return e;
}
