/* es10.c -- the ES10 functions the station calls, encoded and parsed strictly; see es10.h. */
#include "es10.h"

#include <stdlib.h>
#include <string.h>

#include "apdu.h"
#include "hex.h"

/* The answers the station keeps on the stack: every one fits, larger ones are refused by es10f. */
#define ES10_SMALL_RESP 512
#define ES10_REQ 4096

ifpp_err es10_call(es10_chan *k, const uint8_t *req, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    if (!k || !k->tx)
        return IFPP_E_ARG;
    k->sw = 0;
    k->result = ES10_NO_RESULT;
    ifpp_err e = es10f_call_blocks(k->tx, k->ctx, k->channel, k->block, req, n, resp, cap, rn, &k->sw);
    if (e == IFPP_OK && k->sw != SW_OK)
        e = IFPP_E_IO;
    return e;
}

/* Opens resp as exactly one constructed TLV with tag `tag`; *r walks its fields. */
static ifpp_err es10_open(const uint8_t *resp, size_t n, uint32_t tag, tlv *top, tlv_reader *r)
{
    tlv_reader outer;
    ifpp_err e;
    if (!resp)
        return IFPP_E_ARG;
    if ((e = tlv_parse_exact(resp, n, TLV_DER, top)) != IFPP_OK)
        return e;
    if (top->tag != tag)
        return IFPP_E_TLV_UNEXPECTED_TAG;
    tlv_reader_init(&outer, resp, n, TLV_DER);
    return tlv_reader_enter(&outer, top, r);
}

/*
 * An SGP.22 list answer, 'tag' { 'A0' { items } | '81' error }: IFPP_OK with items ready to read,
 * or IFPP_E_IO with *error set for the card's error code (ListNotification, RetrieveNotificationsList).
 */
static ifpp_err es10_open_list(const uint8_t *resp, size_t n, uint32_t tag, tlv_reader *items, int *error)
{
    tlv top, list;
    tlv_reader r;
    ifpp_err e;
    *error = ES10_NO_RESULT;
    if ((e = es10_open(resp, n, tag, &top, &r)) != IFPP_OK)
        return e;
    if (tlv_reader_expect(&r, 0x81, &list) == IFPP_OK) { /* the list's result error */
        uint64_t u;
        if ((e = tlv_get_uint(&list, &u)) != IFPP_OK)
            return e;
        *error = u > 255 ? 255 : (int)u;
        return tlv_reader_done(&r) ? IFPP_E_IO : IFPP_E_TLV_TRAILING;
    }
    if ((e = tlv_reader_expect(&r, 0xA0, &list)) != IFPP_OK || (e = tlv_reader_enter(&r, &list, items)) != IFPP_OK)
        return e;
    return tlv_reader_done(&r) ? IFPP_OK : IFPP_E_TLV_TRAILING;
}

/* An ES10 result code's ASN.1 name from its table (names[i] for code i), "undefinedError" for any other code. */
static const char *es10_result_name(const char *const *names, size_t n, int result)
{
    return result >= 0 && (size_t)result < n ? names[result] : "undefinedError";
}

/* The next field must be an INTEGER 0..255 under tag t. */
static ifpp_err es10_small_uint(tlv_reader *r, uint32_t t, uint8_t *v)
{
    tlv f;
    uint64_t u;
    ifpp_err e;
    if ((e = tlv_reader_expect(r, t, &f)) != IFPP_OK || (e = tlv_get_uint(&f, &u)) != IFPP_OK)
        return e;
    if (u > 255)
        return IFPP_E_RANGE;
    *v = (uint8_t)u;
    return IFPP_OK;
}

ifpp_err es10_parse_result(const uint8_t *resp, size_t n, uint32_t tag, uint32_t result_tag, uint8_t *result)
{
    tlv top;
    tlv_reader r;
    ifpp_err e;
    if (!result)
        return IFPP_E_ARG;
    if ((e = es10_open(resp, n, tag, &top, &r)) != IFPP_OK)
        return e;
    return es10_small_uint(&r, result_tag, result);
}

/* A one-field result answer ('BF70', 'BF71', 'BF30'): the INTEGER and nothing after it. */
static ifpp_err es10_parse_only_result(const uint8_t *resp, size_t n, uint32_t tag, uint32_t result_tag,
                                       uint8_t *result)
{
    tlv top;
    tlv_reader r;
    ifpp_err e;
    if ((e = es10_open(resp, n, tag, &top, &r)) != IFPP_OK || (e = es10_small_uint(&r, result_tag, result)) != IFPP_OK)
        return e;
    return tlv_reader_done(&r) ? IFPP_OK : IFPP_E_TLV_TRAILING;
}

/* An answer that must be 'tag' { '<field>' 16 bytes } and nothing else. */
static ifpp_err es10_parse_octet16(const uint8_t *resp, size_t n, uint32_t tag, uint32_t field, uint8_t out[16])
{
    tlv top, f;
    tlv_reader r;
    ifpp_err e;
    if ((e = es10_open(resp, n, tag, &top, &r)) != IFPP_OK || (e = tlv_reader_expect(&r, field, &f)) != IFPP_OK)
        return e;
    if (f.len != 16)
        return IFPP_E_RANGE;
    if (!tlv_reader_done(&r))
        return IFPP_E_TLV_TRAILING;
    memcpy(out, f.value, 16);
    return IFPP_OK;
}

ifpp_err es10_get_eid(es10_chan *k, uint8_t eid[16])
{
    static const uint8_t req[] = {0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A};
    uint8_t resp[ES10_SMALL_RESP];
    size_t rn;
    ifpp_err e = es10_call(k, req, sizeof req, resp, sizeof resp, &rn);
    return e == IFPP_OK ? es10_parse_octet16(resp, rn, 0xBF3E, 0x5A, eid) : e;
}

ifpp_err es10_get_euicc_info2(es10_chan *k)
{
    static const uint8_t req[] = {0xBF, 0x22, 0x00};
    uint8_t resp[4096];
    size_t rn;
    tlv top;
    tlv_reader r;
    ifpp_err e = es10_call(k, req, sizeof req, resp, sizeof resp, &rn);
    /* its content came with the EUM's package (ESED202); here only its shape matters */
    return e == IFPP_OK ? es10_open(resp, rn, 0xBF22, &top, &r) : e;
}

ifpp_err es10_get_challenge(es10_chan *k, uint8_t challenge[16])
{
    static const uint8_t req[] = {0xBF, 0x2E, 0x00};
    uint8_t resp[ES10_SMALL_RESP];
    size_t rn;
    ifpp_err e = es10_call(k, req, sizeof req, resp, sizeof resp, &rn);
    return e == IFPP_OK ? es10_parse_octet16(resp, rn, 0xBF2E, 0x80, challenge) : e;
}

/* Sends req and reads its one-field result; IFPP_OK with *result (0: ok) or the first error. */
static ifpp_err es10_result_call(es10_chan *k, const uint8_t *req, size_t qn, uint32_t tag, uint32_t result_tag,
                                 uint8_t *result)
{
    uint8_t resp[ES10_SMALL_RESP];
    size_t rn;
    ifpp_err e = es10_call(k, req, qn, resp, sizeof resp, &rn);
    if (e == IFPP_OK && (e = es10_parse_only_result(resp, rn, tag, result_tag, result)) == IFPP_OK && *result != 0)
        k->result = *result;
    return e;
}

ifpp_err es10_authorise_fpa(es10_chan *k, const uint8_t challenge[16], const uint8_t eid[16],
                            const crypto_key *dm_fpa_key, const cert *dm_fpa_cert)
{
    uint8_t req[ES10_REQ], result = 0xFF;
    size_t qn;
    ifpp_err e = es10_build_authorise(challenge, eid, dm_fpa_key, dm_fpa_cert, req, sizeof req, &qn);
    if (e == IFPP_OK)
        e = es10_result_call(k, req, qn, 0xBF70, 0x02, &result);
    return e == IFPP_OK && result != 0 ? IFPP_E_SIGNATURE : e;
}

ifpp_err es10_prepare_bpp_load(es10_chan *k, const uint8_t *txid, size_t txid_len, const uint8_t otpk[65],
                               const cert *dpf_pb, const cert *const *sub_cas, size_t n_sub)
{
    uint8_t *req = malloc(ES10F_MAX_RESPONSE), result = 0xFF;
    size_t qn;
    if (!req)
        return IFPP_E_NOMEM;
    ifpp_err e = es10_build_prepare(txid, txid_len, otpk, dpf_pb, sub_cas, n_sub, req, ES10F_MAX_RESPONSE, &qn);
    if (e == IFPP_OK)
        e = es10_result_call(k, req, qn, 0xBF71, 0x02, &result);
    free(req);
    return e == IFPP_OK && result != 0 ? IFPP_E_CERT_CHAIN : e;
}

ifpp_err es10_load_bpp(es10_chan *k, const uint8_t *bpp, size_t n, uint8_t *pir, size_t cap, size_t *pir_len,
                       bool *sent)
{
    es10f_bpp_command *cmds = calloc(ES10_MAX_BPP_COMMANDS, sizeof *cmds);
    size_t count = 0;
    ifpp_err e;
    *sent = false;
    *pir_len = 0;
    if (!cmds)
        return IFPP_E_NOMEM;
    if ((e = es10f_bpp_split(bpp, n, cmds, ES10_MAX_BPP_COMMANDS, &count)) == IFPP_OK) {
        for (size_t i = 0; i < count && *pir_len == 0; i++) {
            *sent = true;
            if ((e = es10_call(k, cmds[i].data, cmds[i].len, pir, cap, pir_len)) != IFPP_OK)
                break;
        }
    }
    free(cmds);
    return e;
}

ifpp_err es10_parse_notifications(const uint8_t *resp, size_t n, tlv *pirs, size_t max, size_t *count, int *error)
{
    tlv item;
    tlv_reader lr;
    ifpp_err e;
    *count = 0;
    if ((e = es10_open_list(resp, n, 0xBF2B, &lr, error)) != IFPP_OK) /* notificationsListResultError: IFPP_E_IO */
        return e;
    while ((e = tlv_reader_next(&lr, &item)) == IFPP_OK) {
        if (item.tag == 0x30)
            continue; /* otherSignedNotification: not the station's business */
        if (item.tag != 0xBF37)
            return IFPP_E_TLV_UNEXPECTED_TAG;
        if (*count == max)
            return IFPP_E_RANGE;
        pirs[(*count)++] = item;
    }
    return e == IFPP_E_TLV_END ? IFPP_OK : e;
}

ifpp_err es10_retrieve_notifications(es10_chan *k, uint8_t *buf, size_t cap, tlv *pirs, size_t max, size_t *count)
{
    static const uint8_t req[] = {0xBF, 0x2B, 0x00};
    size_t rn;
    int error;
    ifpp_err e = es10_call(k, req, sizeof req, buf, cap, &rn);
    *count = 0;
    if (e == IFPP_OK && (e = es10_parse_notifications(buf, rn, pirs, max, count, &error)) != IFPP_OK)
        k->result = error;
    return e;
}

ifpp_err es10_notification_sent(es10_chan *k, uint64_t seq)
{
    uint8_t req[16], result = 0xFF;
    const uint8_t *p;
    size_t n;
    tlv_builder b;
    tlv_builder_init_fixed(&b, req, sizeof req);
    tlv_begin(&b, 0xBF30);
    tlv_put_uint(&b, 0x80, seq);
    tlv_end(&b);
    ifpp_err e = tlv_builder_finish(&b, &p, &n);
    if (e == IFPP_OK)
        e = es10_result_call(k, req, n, 0xBF30, 0x80, &result);
    return e == IFPP_OK && result != 0 ? (result == 1 ? IFPP_E_NOT_FOUND : IFPP_E_IO) : e;
}

ifpp_err es10_parse_otk_info(const uint8_t *resp, size_t n, uint8_t (*otpks)[65], size_t max, uint8_t *count)
{
    tlv top, list, key;
    tlv_reader r, lr;
    uint8_t v;
    size_t listed = 0;
    ifpp_err e;
    if (!count)
        return IFPP_E_ARG;
    if ((e = es10_open(resp, n, 0xBF72, &top, &r)) != IFPP_OK || (e = es10_small_uint(&r, 0x80, &v)) != IFPP_OK ||
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
    if (!tlv_reader_done(&r))
        return IFPP_E_TLV_TRAILING;
    if (listed != v)
        return IFPP_E_RANGE;
    *count = v;
    return IFPP_OK;
}

ifpp_err es10_get_otk_info(es10_chan *k, es10_otks *out)
{
    static const uint8_t req[] = {0xBF, 0x72, 0x00};
    uint8_t *resp = malloc(ES10F_MAX_RESPONSE);
    size_t rn;
    if (!resp)
        return IFPP_E_NOMEM;
    ifpp_err e = es10_call(k, req, sizeof req, resp, ES10F_MAX_RESPONSE, &rn);
    if (e == IFPP_OK)
        e = es10_parse_otk_info(resp, rn, out->keys, ES10_MAX_OTKS, &out->count);
    free(resp);
    return e;
}

bool es10_otk_present(const es10_otks *otks, const uint8_t otpk[65])
{
    for (size_t i = 0; i < otks->count; i++)
        if (memcmp(otks->keys[i], otpk, 65) == 0)
            return true;
    return false;
}

ifpp_err es10_delete_otks(es10_chan *k, uint8_t *deleted)
{
    static const uint8_t req[] = {0xBF, 0x73, 0x00};
    uint8_t resp[ES10_SMALL_RESP], result = 0xFF;
    size_t rn;
    tlv top;
    tlv_reader r;
    ifpp_err e = es10_call(k, req, sizeof req, resp, sizeof resp, &rn);
    if (e == IFPP_OK && (e = es10_open(resp, rn, 0xBF73, &top, &r)) == IFPP_OK &&
        (e = es10_small_uint(&r, 0x02, &result)) == IFPP_OK && result != 0) {
        k->result = result; /* fpaNotAuthorised(1), undefinedError(127): deletedCount may be absent */
        return IFPP_E_IO;
    }
    if (e == IFPP_OK && (e = es10_small_uint(&r, 0x80, deleted)) == IFPP_OK && !tlv_reader_done(&r))
        e = IFPP_E_TLV_TRAILING;
    return e;
}

ifpp_err es10_build_authorise(const uint8_t challenge[16], const uint8_t eid[16], const crypto_key *dm_fpa_key,
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

ifpp_err es10_build_prepare(const uint8_t *txid, size_t txid_len, const uint8_t otpk[65], const cert *dpf_pb,
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

const char *es10_authorise_result_str(int result)
{
    static const char *const names[] = {"ok", "invalidCertificate", "invalidSignature", "challengeMismatch",
                                        "fpaServicesUnavailable (no One-time Key left)"};
    return es10_result_name(names, sizeof names / sizeof names[0], result);
}

const char *es10_prepare_result_str(int result)
{
    static const char *const names[] = {"ok", "invalidCertificate", "ciPKUnknown", "oneTimeKeyUnknown",
                                        "fpaNotAuthorised"};
    return es10_result_name(names, sizeof names / sizeof names[0], result);
}

/* ---- EUICCF05: connectivity test of a loaded Profile (issue 15 item 5) ---------------------------- */

ifpp_err es10_parse_ifpp_capabilities(const uint8_t *resp, size_t n, unsigned *caps)
{
    tlv top, bits;
    tlv_reader r;
    ifpp_err e;
    if (!caps)
        return IFPP_E_ARG;
    if ((e = es10_open(resp, n, 0xBF74, &top, &r)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x80, &bits)) != IFPP_OK)
        return e;
    if (!tlv_reader_done(&r))
        return IFPP_E_TLV_TRAILING;
    /* a DER BIT STRING: the unused-bit count, then the bits; those unused must be zero (X.690 11.2.1) */
    if (bits.len < 1 || bits.value[0] > 7 || (bits.len == 1 && bits.value[0] != 0) ||
        (bits.len > 1 && (bits.value[bits.len - 1] & ((1u << bits.value[0]) - 1)) != 0))
        return IFPP_E_RANGE;
    *caps = bits.len > 1 && (bits.value[1] & 0x80) ? ES10_CAP_CONNECTIVITY_TEST : 0;
    return IFPP_OK;
}

ifpp_err es10_get_ifpp_capabilities(es10_chan *k, unsigned *caps, bool *known)
{
    static const uint8_t req[] = {0xBF, 0x74, 0x00};
    uint8_t resp[ES10_SMALL_RESP];
    size_t rn;
    if (!caps || !known)
        return IFPP_E_ARG;
    *caps = 0;
    *known = false;
    ifpp_err e = es10_call(k, req, sizeof req, resp, sizeof resp, &rn);
    if (e == IFPP_E_IO && k->sw == SW_REFERENCED_DATA_NOT_FOUND)
        return IFPP_OK; /* no such function on this eUICC: nothing offered */
    if (e == IFPP_OK && (e = es10_parse_ifpp_capabilities(resp, rn, caps)) == IFPP_OK)
        *known = true;
    return e;
}

ifpp_err es10_build_conn_test(const uint8_t iccid[10], const uint8_t nonce[16], unsigned time_limit, bool leave_enabled,
                              uint8_t *out, size_t cap, size_t *n)
{
    const uint8_t *p;
    tlv_builder b;
    if (!iccid || !nonce || time_limit < 1 || time_limit > 600 || !out || !n)
        return IFPP_E_ARG;
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, 0xBF75);
    tlv_put(&b, 0x5A, iccid, 10);
    tlv_put(&b, 0x80, nonce, 16);
    tlv_put_uint(&b, 0x81, time_limit);
    if (leave_enabled)
        tlv_put(&b, 0x82, "\xFF", 1); /* DER BOOLEAN TRUE; FALSE is the default, never encoded */
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n);
}

/* The next field must be exactly len bytes under tag t. */
static ifpp_err es10_fixed(tlv_reader *r, uint32_t t, size_t len, tlv *f)
{
    ifpp_err e = tlv_reader_expect(r, t, f);
    return e != IFPP_OK ? e : f->len == len ? IFPP_OK : IFPP_E_RANGE;
}

ifpp_err es10_parse_conn_test(const uint8_t *resp, size_t n, const crypto_key *euicc_key, const uint8_t eid[16],
                              const uint8_t iccid[10], const uint8_t nonce[16], bool leave_enabled,
                              es10_conn_result *out, char *why, size_t why_len)
{
    tlv top, signed_part, sig, f_eid, f_iccid, f_nonce, f_net;
    tlv_reader r, sr;
    uint8_t result = 0xFF, state = 0xFF;
    char a[40], b[40];
    ifpp_err e;
    if (!resp || !euicc_key || !eid || !iccid || !nonce || !out)
        return IFPP_E_ARG;
    if (n > ES10_CONN_MAX_RESPONSE) {
        err_why(why, why_len, "ConnectivityTest answer of %zu bytes (at most %d)", n, ES10_CONN_MAX_RESPONSE);
        return IFPP_E_RANGE;
    }
    if ((e = es10_open(resp, n, 0xBF75, &top, &r)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x30, &signed_part)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x5F37, &sig)) != IFPP_OK ||
        (e = tlv_reader_done(&r) ? IFPP_OK : IFPP_E_TLV_TRAILING) != IFPP_OK || (e = tlv_reader_enter(&r, &signed_part, &sr)) != IFPP_OK || (e = es10_fixed(&sr, 0x5A, 16, &f_eid)) != IFPP_OK ||
        (e = es10_fixed(&sr, 0x80, 10, &f_iccid)) != IFPP_OK || (e = es10_fixed(&sr, 0x81, 16, &f_nonce)) != IFPP_OK ||
        (e = es10_small_uint(&sr, 0x82, &result)) != IFPP_OK || (e = es10_small_uint(&sr, 0x83, &state)) != IFPP_OK) {
        err_why(why, why_len, "ConnectivityTest answer malformed (%s)", err_str(e));
        return e;
    }
    bool has_net = tlv_reader_expect(&sr, 0x84, &f_net) == IFPP_OK;
    if ((has_net && f_net.len != 3) || !tlv_reader_done(&sr) || state > 1) {
        err_why(why, why_len, "ConnectivityTest answer malformed (%s)",
                has_net && f_net.len != 3 ? "servingNetwork not 3 bytes" : state > 1 ? "profileState not 0 or 1"
                                                                                   : "unknown field in testSigned");
        return IFPP_E_TLV_UNEXPECTED_TAG;
    }
    if (crypto_ecdsa_verify(euicc_key, signed_part.raw, signed_part.raw_len, CRYPTO_SIG_RAW, sig.value, sig.len) !=
        IFPP_OK) {
        err_why(why, why_len, "ConnectivityTest answer not signed by this eUICC's key (CERT.EUICC.ECDSA)");
        return IFPP_E_SIGNATURE;
    }
    const struct {
        const char *name;
        const tlv *got;
        const uint8_t *want;
        size_t len;
    } same[] = {{"EID", &f_eid, eid, 16}, {"ICCID", &f_iccid, iccid, 10}, {"station nonce", &f_nonce, nonce, 16}};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        if (memcmp(same[i].got->value, same[i].want, same[i].len) != 0) {
            hex_encode(same[i].got->value, same[i].len, a, sizeof a);
            hex_encode(same[i].want, same[i].len, b, sizeof b);
            err_why(why, why_len, "ConnectivityTest answer is for another %s (%s, asked for %s)", same[i].name, a, b);
            return IFPP_E_SIGNATURE;
        }
    }
    if (state == 1 && !leave_enabled) {
        err_why(why, why_len, "the eUICC says it left the Profile enabled after the test, which was not asked (GENF03)");
        return IFPP_E_RANGE;
    }
    out->result = result;
    out->left_enabled = state == 1;
    out->has_network = has_net;
    if (has_net)
        memcpy(out->network, f_net.value, 3);
    memcpy(out->evidence, resp, n);
    out->evidence_len = n;
    return IFPP_OK;
}

ifpp_err es10_conn_test(es10_chan *k, const uint8_t iccid[10], const uint8_t nonce[16], unsigned time_limit,
                        const crypto_key *euicc_key, const uint8_t eid[16], es10_conn_result *out, char *why,
                        size_t why_len)
{
    uint8_t req[64], resp[ES10_CONN_MAX_RESPONSE];
    size_t qn, rn;
    ifpp_err e = es10_build_conn_test(iccid, nonce, time_limit, false, req, sizeof req, &qn);
    if (e == IFPP_OK && (e = es10_call(k, req, qn, resp, sizeof resp, &rn)) != IFPP_OK) {
        if (k->sw && k->sw != SW_OK)
            err_why(why, why_len, "ConnectivityTest failed (%s; status word %04X)", err_str(e), k->sw);
        else
            err_why(why, why_len, "ConnectivityTest failed (%s)", err_str(e));
    }
    if (e == IFPP_OK)
        e = es10_parse_conn_test(resp, rn, euicc_key, eid, iccid, nonce, false, out, why, why_len);
    return e;
}

const char *es10_conn_result_str(int result)
{
    static const char *const names[] = {"ok", "noNetwork", "attachRejected", "timeout", "profileNotFound",
                                        "notSupported", "fpaNotAuthorised"};
    return es10_result_name(names, sizeof names / sizeof names[0], result);
}

/* ---- use case A.4: DeleteProfile and the eUICC-signed deletion notification (issue 15) ---------- */

ifpp_err es10_parse_notification_meta(const uint8_t *p, size_t n, es10_notification_meta *out)
{
    tlv top, f;
    tlv_reader r;
    ifpp_err e;
    if (!out)
        return IFPP_E_ARG;
    memset(out, 0, sizeof *out);
    if ((e = es10_open(p, n, 0xBF2F, &top, &r)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x80, &f)) != IFPP_OK ||
        (e = tlv_get_uint(&f, &out->seq)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x81, &f)) != IFPP_OK)
        return e;
    /* NotificationEvent, a DER BIT STRING of named bits: unused-bit count, then at most two bytes, no trailing 0 */
    if (f.len < 1 || f.len > 3 || f.value[0] > 7 || (f.len == 1 && f.value[0] != 0) ||
        (f.len > 1 && (f.value[f.len - 1] == 0 || (f.value[f.len - 1] & ((1u << f.value[0]) - 1)) != 0)))
        return IFPP_E_RANGE;
    for (size_t i = 1; i < f.len; i++)
        for (unsigned b = 0; b < 8; b++)
            if (f.value[i] & (0x80u >> b))
                out->events |= (uint16_t)(1u << ((i - 1) * 8 + b));
    if ((e = tlv_reader_expect(&r, 0x0C, &f)) != IFPP_OK) /* notificationAddress: for the SM-DP+, not us */
        return e;
    if (f.len > 255)
        return IFPP_E_RANGE;
    if (tlv_reader_expect(&r, 0x5A, &f) == IFPP_OK) {
        if (f.len != 10)
            return IFPP_E_RANGE;
        memcpy(out->iccid, f.value, 10);
        out->has_iccid = true;
    }
    return tlv_reader_done(&r) ? IFPP_OK : IFPP_E_TLV_TRAILING;
}

ifpp_err es10_parse_other_notification(const uint8_t *p, size_t n, es10_other_notification *out)
{
    tlv top, sig;
    tlv_reader r;
    ifpp_err e;
    if (!out)
        return IFPP_E_ARG;
    memset(out, 0, sizeof *out);
    if ((e = es10_open(p, n, 0x30, &top, &r)) != IFPP_OK || (e = tlv_reader_expect(&r, 0xBF2F, &out->tbs)) != IFPP_OK ||
        (e = es10_parse_notification_meta(out->tbs.raw, out->tbs.raw_len, &out->meta)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x5F37, &sig)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x30, &out->euicc_cert)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x30, &out->eum_cert)) != IFPP_OK)
        return e;
    if (sig.len != CRYPTO_SIG_RAW_LEN)
        return IFPP_E_RANGE;
    out->sig = sig.value;
    out->sig_len = sig.len;
    return tlv_reader_done(&r) ? IFPP_OK : IFPP_E_TLV_TRAILING;
}

ifpp_err es10_verify_delete_notification(const es10_other_notification *n, const uint8_t *euicc_cert_der,
                                         size_t euicc_cert_len, const uint8_t iccid[10], char *why, size_t why_len)
{
    cert *c = NULL;
    crypto_key *k = NULL;
    ifpp_err e;
    if (!n || !euicc_cert_der || !iccid)
        return IFPP_E_ARG;
    if (n->meta.events != (1u << ES10_EVENT_DELETE)) {
        err_why(why, why_len, "the notification is not a deletion notification (its event is not notificationDelete)");
        return IFPP_E_SIGNATURE;
    }
    if (!n->meta.has_iccid || memcmp(n->meta.iccid, iccid, 10) != 0) {
        err_why(why, why_len, "the deletion notification names %s ICCID than the profile deleted",
                n->meta.has_iccid ? "another" : "no");
        return IFPP_E_SIGNATURE;
    }
    if (n->euicc_cert.raw_len != euicc_cert_len || memcmp(n->euicc_cert.raw, euicc_cert_der, euicc_cert_len) != 0) {
        err_why(why, why_len, "the deletion notification carries another eUICC's certificate than the one the EUM "
                "delivered for this EID");
        return IFPP_E_SIGNATURE;
    }
    if ((e = cert_parse_der(euicc_cert_der, euicc_cert_len, &c)) == IFPP_OK && (e = cert_public_key(c, &k)) == IFPP_OK)
        e = crypto_ecdsa_verify(k, n->tbs.raw, n->tbs.raw_len, CRYPTO_SIG_RAW, n->sig, n->sig_len);
    if (e != IFPP_OK)
        err_why(why, why_len, "the deletion notification's signature does not verify with this eUICC's certificate (%s)",
                err_str(e));
    crypto_key_free(k);
    cert_free(c);
    return e == IFPP_OK ? IFPP_OK : IFPP_E_SIGNATURE;
}

ifpp_err es10_parse_notification_list(const uint8_t *resp, size_t n, es10_notification_meta *out, size_t max,
                                      size_t *count, int *error)
{
    tlv item;
    tlv_reader lr;
    ifpp_err e;
    if (!count || !error || (max && !out))
        return IFPP_E_ARG;
    *count = 0;
    if ((e = es10_open_list(resp, n, 0xBF28, &lr, error)) != IFPP_OK) /* listNotificationsResultError: IFPP_E_IO */
        return e;
    while ((e = tlv_reader_next(&lr, &item)) == IFPP_OK) {
        if (*count == max)
            return IFPP_E_RANGE;
        if ((e = es10_parse_notification_meta(item.raw, item.raw_len, &out[*count])) != IFPP_OK)
            return e;
        (*count)++;
    }
    return e == IFPP_E_TLV_END ? IFPP_OK : e;
}

ifpp_err es10_list_notifications(es10_chan *k, unsigned event, es10_notification_meta *out, size_t max,
                                 size_t *count)
{
    uint8_t req[16], bits[2], *resp;
    const uint8_t *p;
    size_t qn, rn;
    int error;
    tlv_builder b;
    if (event > 7 || !count)
        return IFPP_E_ARG;
    *count = 0;
    bits[0] = (uint8_t)(7 - event); /* one named bit: the trailing zero bits are unused */
    bits[1] = (uint8_t)(0x80u >> event);
    tlv_builder_init_fixed(&b, req, sizeof req);
    tlv_begin(&b, 0xBF28);
    tlv_put(&b, 0x81, bits, sizeof bits);
    tlv_end(&b);
    ifpp_err e = tlv_builder_finish(&b, &p, &qn);
    if (e != IFPP_OK || !(resp = malloc(ES10F_MAX_RESPONSE)))
        return e != IFPP_OK ? e : IFPP_E_NOMEM;
    if ((e = es10_call(k, req, qn, resp, ES10F_MAX_RESPONSE, &rn)) == IFPP_OK &&
        (e = es10_parse_notification_list(resp, rn, out, max, count, &error)) != IFPP_OK)
        k->result = error;
    free(resp);
    return e;
}

ifpp_err es10_retrieve_other_notification(es10_chan *k, uint64_t seq, uint8_t *buf, size_t cap, size_t *len,
                                          es10_other_notification *out)
{
    uint8_t req[24];
    const uint8_t *p;
    size_t qn, rn;
    tlv top, list, item, more;
    tlv_reader r, lr;
    tlv_builder b;
    if (!buf || !len || !out)
        return IFPP_E_ARG;
    *len = 0;
    /* searchCriteria is an untagged CHOICE under AUTOMATIC TAGS: [0] EXPLICIT around seqNumber [0] */
    tlv_builder_init_fixed(&b, req, sizeof req);
    tlv_begin(&b, 0xBF2B);
    tlv_begin(&b, 0xA0);
    tlv_put_uint(&b, 0x80, seq);
    tlv_end(&b);
    tlv_end(&b);
    ifpp_err e = tlv_builder_finish(&b, &p, &qn);
    if (e != IFPP_OK || (e = es10_call(k, req, qn, buf, cap, &rn)) != IFPP_OK ||
        (e = es10_open(buf, rn, 0xBF2B, &top, &r)) != IFPP_OK)
        return e;
    if (tlv_reader_expect(&r, 0x81, &list) == IFPP_OK) { /* notificationsListResultError */
        uint64_t u;
        if ((e = tlv_get_uint(&list, &u)) == IFPP_OK)
            k->result = u > 255 ? 255 : (int)u;
        return e == IFPP_OK ? IFPP_E_IO : e;
    }
    if ((e = tlv_reader_expect(&r, 0xA0, &list)) != IFPP_OK || (e = tlv_reader_enter(&r, &list, &lr)) != IFPP_OK)
        return e;
    if (!tlv_reader_done(&r))
        return IFPP_E_TLV_TRAILING;
    if ((e = tlv_reader_next(&lr, &item)) == IFPP_E_TLV_END)
        return IFPP_E_NOT_FOUND;
    if (e != IFPP_OK)
        return e;
    if (item.tag != 0x30 || tlv_reader_next(&lr, &more) != IFPP_E_TLV_END)
        return IFPP_E_TLV_UNEXPECTED_TAG;
    /* the one notification, moved to the start of buf: the caller keeps exactly the eUICC's bytes */
    memmove(buf, item.raw, item.raw_len);
    *len = item.raw_len;
    if ((e = es10_parse_other_notification(buf, *len, out)) != IFPP_OK)
        return e;
    return out->meta.seq == seq ? IFPP_OK : IFPP_E_RANGE;
}

ifpp_err es10_delete_profile(es10_chan *k, const uint8_t iccid[10])
{
    uint8_t req[24], result = 0xFF;
    const uint8_t *p;
    size_t qn;
    tlv_builder b;
    if (!iccid)
        return IFPP_E_ARG;
    tlv_builder_init_fixed(&b, req, sizeof req);
    tlv_begin(&b, 0xBF33);
    tlv_put(&b, 0x5A, iccid, 10);
    tlv_end(&b);
    ifpp_err e = tlv_builder_finish(&b, &p, &qn);
    if (e == IFPP_OK)
        e = es10_result_call(k, req, qn, 0xBF33, 0x80, &result);
    return e == IFPP_OK && result != 0 ? IFPP_E_IO : e;
}

const char *es10_delete_result_str(int result)
{
    static const char *const names[] = {"ok", "iccidOrAidNotFound", "profileNotInDisabledState", "disallowedByPolicy"};
    return es10_result_name(names, sizeof names / sizeof names[0], result);
}
