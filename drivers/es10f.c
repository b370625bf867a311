/* es10f.c -- STORE DATA calls and the BPP split; see es10f.h. */
#include "es10f.h"

#include <string.h>

#include "apdu.h"
#include "tlv.h"

/*
 * One APDU; follows 6Cxx (one repeat with the right Le) and 61xx (GET RESPONSE) into resp.
 * A card is outside input: every GET RESPONSE must bring at least one byte (a '61 xx' with no
 * data is no progress), the chain is at most ES10F_MAX_ROUNDS long, and the bytes gathered never
 * pass cap or ES10F_MAX_RESPONSE. Any of these broken is IFPP_E_CARD_PROTOCOL (or _APDU_TOO_LONG past cap).
 */
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
    for (unsigned round = 0;; round++) {
        if (dl > cap - got || dl > ES10F_MAX_RESPONSE - got)
            return IFPP_E_APDU_TOO_LONG;
        memcpy(resp + got, r, dl);
        got += dl;
        if ((*sw & 0xFF00) != SW_BYTES_AVAILABLE)
            break;
        if (round >= ES10F_MAX_ROUNDS)
            return IFPP_E_CARD_PROTOCOL;
        apdu_cmd gr = {.ins = APDU_INS_GET_RESPONSE, .ne = (*sw & 0xFF) ? (*sw & 0xFF) : 256};
        if ((e = apdu_cla_for_channel(0x00, ch, &gr.cla)) != IFPP_OK ||
            (e = apdu_encode(&gr, false, raw, sizeof raw, &rn)) != IFPP_OK ||
            (e = tx(ctx, raw, rn, r, sizeof r, &rn)) != IFPP_OK ||
            (e = apdu_split_response(r, rn, &dl, sw)) != IFPP_OK)
            return e;
        if (dl == 0 || dl > gr.ne)
            return IFPP_E_CARD_PROTOCOL; /* no progress, or more than was asked for */
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
