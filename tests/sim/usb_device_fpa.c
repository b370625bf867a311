/*
 * usb_device_fpa.c -- an emulated hardware FPA's ES10f sequence (see usb_device_fpa.h). It uses the
 * station's own ES10 module for the card side, as a vendor's firmware would use its own: what is
 * under test is the USB protocol and the backend, not a second ES10 implementation.
 */
#include "usb_device_fpa.h"

#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "tlv.h"

static void hwfpa_fail(usbf_bpp_error *fail, const es10_chan *k, uint8_t stage, bool sent)
{
    fail->stage = stage;
    fail->sent = sent;
    fail->sw = k->sw;
    fail->result = k->result == ES10_NO_RESULT ? 0xFF : (uint8_t)k->result;
}

ifpp_err hwfpa_begin(hwfpa *f, es10f_transmit_fn tx, void *tx_ctx, usbf_bpp_error *fail)
{
    static const uint8_t select_isdr[] = {0x00, 0xA4, 0x04, 0x00, 0x10, 0xA0, 0x00, 0x00, 0x05, 0x59, 0x10,
                                          0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00, 0x00};
    uint8_t resp[258];
    size_t rn;
    ifpp_err e;
    memset(f, 0, sizeof *f);
    f->k = (es10_chan){.tx = tx, .ctx = tx_ctx, .channel = 0, .block = ES10F_BLOCK, .result = ES10_NO_RESULT};
    if ((e = tx(tx_ctx, select_isdr, sizeof select_isdr, resp, sizeof resp, &rn)) == IFPP_OK &&
        (rn < 2 || resp[rn - 2] != 0x90 || resp[rn - 1] != 0x00))
        e = IFPP_E_IO;
    if (e == IFPP_OK && (e = es10_get_eid(&f->k, f->eid)) == IFPP_OK)
        e = es10_get_challenge(&f->k, f->challenge);
    if (e != IFPP_OK)
        hwfpa_fail(fail, &f->k, 1, false);
    return e;
}

#define HWFPA_MAX_SUB_CAS 4

ifpp_err hwfpa_finish(hwfpa *f, const usbf_bpp_op *op, const uint8_t *bf70, size_t bf70_len, uint8_t *pir,
                      size_t cap, size_t *pir_len, usbf_bpp_error *fail)
{
    uint8_t resp[256], result = 0xFF;
    size_t rn;
    tlv first;
    cert *pb = NULL;
    bool sent = false;
    ifpp_err e = es10_call(&f->k, bf70, bf70_len, resp, sizeof resp, &rn);
    *pir_len = 0;
    if (e == IFPP_OK && (e = es10_parse_result(resp, rn, 0xBF70, 0x02, &result)) == IFPP_OK && result != 0) {
        f->k.result = result;
        e = IFPP_E_SIGNATURE;
    }
    if (e != IFPP_OK) {
        hwfpa_fail(fail, &f->k, 2, false);
        return e;
    }
    /* the chain: CERT.DPpb, then its SM-DP sub-CAs issuer first; all of it goes to the eUICC as the station sends it */
    cert *subs[HWFPA_MAX_SUB_CAS] = {NULL};
    size_t n_sub = 0, at = 0;
    if ((e = tlv_parse(op->chain, op->chain_len, 0, &first)) == IFPP_OK &&
        (e = cert_parse_der(first.raw, first.raw_len, &pb)) == IFPP_OK) {
        for (at = first.raw_len; e == IFPP_OK && at < op->chain_len; at += first.raw_len) {
            if (n_sub == HWFPA_MAX_SUB_CAS)
                e = IFPP_E_RANGE;
            else if ((e = tlv_parse(op->chain + at, op->chain_len - at, 0, &first)) == IFPP_OK)
                e = cert_parse_der(first.raw, first.raw_len, &subs[n_sub++]);
        }
    }
    if (e == IFPP_OK)
        e = es10_prepare_bpp_load(&f->k, op->txid, op->txid_len, op->otpk, pb, (const cert *const *)subs, n_sub);
    cert_free(pb);
    for (size_t i = 0; i < n_sub; i++)
        cert_free(subs[i]);
    if (e != IFPP_OK) {
        hwfpa_fail(fail, &f->k, 3, false);
        return e;
    }
    if ((e = es10_load_bpp(&f->k, op->bpp, op->bpp_len, pir, cap, pir_len, &sent)) == IFPP_OK && *pir_len == 0)
        e = IFPP_E_IO;
    if (e != IFPP_OK)
        hwfpa_fail(fail, &f->k, 4, sent);
    return e;
}
