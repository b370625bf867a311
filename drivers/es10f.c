/* es10f.c -- STORE DATA calls and the BPP split; see es10f.h. */
#include "es10f.h"

#include <string.h>

#include "apdu.h"
#include "tlv.h"

/* One APDU; follows 6Cxx (repeat with the right Le) and 61xx (GET RESPONSE) into resp. */
static ifpp_err es10f_exchange(es10f_transmit_fn tx, void *ctx, unsigned ch, apdu_cmd *cmd, uint8_t *resp,
                               size_t cap, size_t *resp_len, uint16_t *sw)
{
    uint8_t raw[4 + 3 + ES10F_MAX_BLOCK + 2], r[258];
    size_t rn, dl, got = 0;
    ifpp_err e;

    for (int tries = 0;; tries++) {
        if ((e = apdu_encode(cmd, cmd->nc > APDU_SHORT_MAX_LC, raw, sizeof raw, &rn)) != IFPP_OK)
            return e;
        if ((e = tx(ctx, raw, rn, r, sizeof r, &rn)) != IFPP_OK)
            return e;
        if ((e = apdu_split_response(r, rn, &dl, sw)) != IFPP_OK)
            return e;
        if ((*sw & 0xFF00) == SW_WRONG_LE && tries == 0) {
            cmd->ne = (*sw & 0xFF) ? (*sw & 0xFF) : 256;
            continue;
        }
        break;
    }
    for (;;) {
        if (dl > cap - got)
            return IFPP_E_APDU_TOO_LONG;
        memcpy(resp + got, r, dl);
        got += dl;
        if ((*sw & 0xFF00) != SW_BYTES_AVAILABLE)
            break;
        apdu_cmd gr = {.ins = APDU_INS_GET_RESPONSE, .ne = (*sw & 0xFF) ? (*sw & 0xFF) : 256};
        if ((e = apdu_cla_for_channel(0x00, ch, &gr.cla)) != IFPP_OK ||
            (e = apdu_encode(&gr, false, raw, sizeof raw, &rn)) != IFPP_OK ||
            (e = tx(ctx, raw, rn, r, sizeof r, &rn)) != IFPP_OK ||
            (e = apdu_split_response(r, rn, &dl, sw)) != IFPP_OK)
            return e;
        if (got > ES10F_MAX_RESPONSE)
            return IFPP_E_APDU_TOO_LONG;
    }
    *resp_len = got;
    return IFPP_OK;
}

ifpp_err es10f_call(es10f_transmit_fn tx, void *ctx, unsigned ch, const uint8_t *req, size_t n, uint8_t *resp,
                    size_t cap, size_t *resp_len, uint16_t *sw)
{
    return es10f_call_blocks(tx, ctx, ch, ES10F_BLOCK, req, n, resp, cap, resp_len, sw);
}

ifpp_err es10f_call_blocks(es10f_transmit_fn tx, void *ctx, unsigned ch, size_t block, const uint8_t *req, size_t n,
                           uint8_t *resp, size_t cap, size_t *resp_len, uint16_t *sw)
{
    if (!tx || !req || !n || !resp || !resp_len || !sw || block < ES10F_BLOCK || block > ES10F_MAX_BLOCK)
        return IFPP_E_ARG;
    size_t blocks = apdu_store_data_count(n, block);
    *resp_len = 0;
    for (size_t i = 0; i < blocks; i++) {
        apdu_cmd cmd;
        ifpp_err e = apdu_store_data_block(req, n, block, i, ch, &cmd);
        if (e != IFPP_OK)
            return e;
        if ((e = es10f_exchange(tx, ctx, ch, &cmd, resp, cap, resp_len, sw)) != IFPP_OK)
            return e;
        if (*sw != SW_OK)
            return IFPP_OK; /* the card refused this block: the caller reads *sw */
    }
    return IFPP_OK;
}

static ifpp_err es10f_push(es10f_bpp_command *cmds, size_t max, size_t *count, const uint8_t *p, size_t n)
{
    if (*count == max)
        return IFPP_E_RANGE;
    cmds[*count].data = p;
    cmds[*count].len = n;
    (*count)++;
    return IFPP_OK;
}

/* A1/A3: the header as one command, then each segment (all with `seg_tag`) as its own. */
static ifpp_err es10f_split_sequence(const tlv *seq, uint32_t seg_tag, es10f_bpp_command *cmds, size_t max,
                                     size_t *count)
{
    tlv_reader r;
    tlv seg;
    ifpp_err e = es10f_push(cmds, max, count, seq->raw, seq->raw_len - seq->len);
    if (e != IFPP_OK)
        return e;
    tlv_reader_init(&r, seq->value, seq->len, TLV_DER);
    size_t segments = 0;
    while ((e = tlv_reader_next(&r, &seg)) == IFPP_OK) {
        if (seg.tag != seg_tag)
            return IFPP_E_TLV_UNEXPECTED_TAG;
        if ((e = es10f_push(cmds, max, count, seg.raw, seg.raw_len)) != IFPP_OK)
            return e;
        segments++;
    }
    if (e != IFPP_E_TLV_END)
        return e;
    return segments ? IFPP_OK : IFPP_E_TLV_MISSING;
}

ifpp_err es10f_bpp_split(const uint8_t *bpp, size_t n, es10f_bpp_command *cmds, size_t max, size_t *count)
{
    tlv top, t;
    tlv_reader outer, r;
    ifpp_err e;

    if (!bpp || !cmds || !count)
        return IFPP_E_ARG;
    *count = 0;
    if ((e = tlv_parse_exact(bpp, n, TLV_DER, &top)) != IFPP_OK)
        return e;
    if (top.tag != 0xBF36)
        return IFPP_E_TLV_UNEXPECTED_TAG;
    tlv_reader_init(&outer, bpp, n, TLV_DER);
    if ((e = tlv_reader_enter(&outer, &top, &r)) != IFPP_OK || (e = tlv_reader_expect(&r, 0xBF23, &t)) != IFPP_OK)
        return e;
    /* First command: the BF36 header (with the whole BPP's length) and the complete BF23. */
    if ((e = es10f_push(cmds, max, count, bpp, (size_t)(t.raw + t.raw_len - bpp))) != IFPP_OK)
        return e;
    if ((e = tlv_reader_expect(&r, 0xA0, &t)) != IFPP_OK || (e = es10f_push(cmds, max, count, t.raw, t.raw_len)) != IFPP_OK)
        return e;
    if ((e = tlv_reader_expect(&r, 0xA1, &t)) != IFPP_OK || (e = es10f_split_sequence(&t, 0x88, cmds, max, count)) != IFPP_OK)
        return e;
    if (tlv_reader_expect(&r, 0xA2, &t) == IFPP_OK && (e = es10f_push(cmds, max, count, t.raw, t.raw_len)) != IFPP_OK)
        return e;
    if ((e = tlv_reader_expect(&r, 0xA3, &t)) != IFPP_OK || (e = es10f_split_sequence(&t, 0x86, cmds, max, count)) != IFPP_OK)
        return e;
    return tlv_reader_done(&r) ? IFPP_OK : IFPP_E_TLV_TRAILING;
}

ifpp_err es10f_build_authorise(const uint8_t challenge[16], const uint8_t eid[16], const crypto_key *dm_fpa_key,
                               const cert *dm_fpa_cert, uint8_t *out, size_t cap, size_t *n)
{
    uint8_t signed_part[64], sig[CRYPTO_SIG_RAW_LEN];
    size_t siglen = sizeof sig, sl;
    const uint8_t *p, *der;
    size_t der_len;
    tlv_builder b;
    if (!challenge || !eid || !dm_fpa_key || !dm_fpa_cert || !out || !n)
        return IFPP_E_ARG;
    tlv_builder_init_fixed(&b, signed_part, sizeof signed_part);
    tlv_begin(&b, 0x30);
    tlv_put(&b, 0x81, challenge, 16);
    tlv_put(&b, 0x5A, eid, 16);
    tlv_end(&b);
    ifpp_err e = tlv_builder_finish(&b, &p, &sl);
    if (e == IFPP_OK)
        e = crypto_ecdsa_sign(dm_fpa_key, signed_part, sl, CRYPTO_SIG_RAW, sig, &siglen);
    if (e != IFPP_OK)
        return e;
    cert_der(dm_fpa_cert, &der, &der_len);
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, 0xBF70);
    tlv_put_raw(&b, signed_part, sl);
    tlv_put(&b, 0x5F37, sig, siglen);
    tlv_put_raw(&b, der, der_len);
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n);
}

ifpp_err es10f_build_prepare(const uint8_t *txid, size_t txid_len, const uint8_t otpk[65], const cert *dpf_pb,
                             const cert *const *sub_cas, size_t n_sub, uint8_t *out, size_t cap, size_t *n)
{
    const uint8_t *p, *der;
    size_t der_len;
    tlv_builder b;
    if (!txid || !txid_len || txid_len > 16 || !otpk || !dpf_pb || (n_sub && !sub_cas) || !out || !n)
        return IFPP_E_ARG;
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, 0xBF71);
    tlv_put(&b, 0x80, txid, txid_len);
    tlv_put(&b, 0x5F49, otpk, 65);
    cert_der(dpf_pb, &der, &der_len);
    tlv_put_raw(&b, der, der_len);
    if (n_sub) {
        tlv_begin(&b, 0xA1);
        for (size_t i = 0; i < n_sub; i++) {
            cert_der(sub_cas[i], &der, &der_len);
            tlv_put_raw(&b, der, der_len);
        }
        tlv_end(&b);
    }
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n);
}

/*
 * Opens an ES10 response TLV that must carry `tag`, and reads its first field, an INTEGER of
 * 0..255 under first_tag, into *v; *r is left on the fields after it. Both parsers below use it.
 */
static ifpp_err es10f_open_response(const uint8_t *resp, size_t n, uint32_t tag, uint32_t first_tag, tlv_reader *r,
                                    uint8_t *v)
{
    tlv top, f;
    tlv_reader outer;
    uint64_t u;
    ifpp_err e;
    if (!resp || !v)
        return IFPP_E_ARG;
    if ((e = tlv_parse_exact(resp, n, TLV_DER, &top)) != IFPP_OK)
        return e;
    if (top.tag != tag)
        return IFPP_E_TLV_UNEXPECTED_TAG;
    tlv_reader_init(&outer, resp, n, TLV_DER);
    if ((e = tlv_reader_enter(&outer, &top, r)) != IFPP_OK || (e = tlv_reader_expect(r, first_tag, &f)) != IFPP_OK ||
        (e = tlv_get_uint(&f, &u)) != IFPP_OK)
        return e;
    if (u > 255)
        return IFPP_E_RANGE;
    *v = (uint8_t)u;
    return IFPP_OK;
}

ifpp_err es10f_parse_result(const uint8_t *resp, size_t n, uint32_t tag, uint32_t result_tag, uint8_t *result)
{
    tlv_reader r;
    return es10f_open_response(resp, n, tag, result_tag, &r, result);
}

ifpp_err es10f_parse_otk_info(const uint8_t *resp, size_t n, uint8_t (*otpks)[65], size_t max, uint8_t *count)
{
    tlv list, key, rest;
    tlv_reader r, lr;
    uint8_t v;
    size_t listed = 0;
    ifpp_err e;
    if (!count)
        return IFPP_E_ARG;
    if ((e = es10f_open_response(resp, n, 0xBF72, 0x80, &r, &v)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0xA1, &list)) != IFPP_OK || (e = tlv_reader_enter(&r, &list, &lr)) != IFPP_OK)
        return e;
    while ((e = tlv_reader_next(&lr, &key)) == IFPP_OK) {
        if (key.tag != 0x5F49 || key.len != 65)
            return IFPP_E_TLV_UNEXPECTED_TAG;
        if (otpks && listed < max)
            memcpy(otpks[listed], key.value, 65);
        listed++;
    }
    if (e != IFPP_E_TLV_END)
        return e;
    if (tlv_reader_next(&r, &rest) != IFPP_E_TLV_END)
        return IFPP_E_TLV_TRAILING;
    if (listed != v)
        return IFPP_E_RANGE;
    *count = v;
    return IFPP_OK;
}
