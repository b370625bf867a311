/* pir.c -- ProfileInstallationResult parsing and signature check; see pir.h. */
#include "pir.h"

#include <stdio.h>
#include <string.h>

#include "hex.h"
#include "iccid.h"
#include "tlv.h"

const char *pir_error_reason_str(uint8_t r)
{
    static const char *const names[] = {
        [1] = "incorrectInputValues", [2] = "invalidSignature", [3] = "invalidTransactionId",
        [4] = "unsupportedCrtValues", [5] = "unsupportedRemoteOperationType", [6] = "unsupportedProfileClass",
        [7] = "scp03tStructureError", [8] = "scp03tSecurityError", [9] = "installFailedDueToIccidAlreadyExistsOnEuicc",
        [10] = "installFailedDueToInsufficientMemoryForProfile", [11] = "installFailedDueToInterruption",
        [12] = "installFailedDueToPEProcessingError", [13] = "installFailedDueToIccidMismatch",
        [14] = "testProfileInstallFailedDueToInvalidNaaKey", [15] = "pprNotAllowed",
    };
    if (r < sizeof names / sizeof names[0] && names[r])
        return names[r];
    return r == 127 ? "installFailedDueToUnknownError" : "unknown error reason";
}

const char *pir_command_str(uint8_t c)
{
    static const char *const names[] = {"initialiseSecureChannel", "configureISDP", "storeMetadata",
                                        "storeMetadata2", "replaceSessionKeys", "loadProfileElements"};
    return c < sizeof names / sizeof names[0] ? names[c] : "unknown command";
}

ifpp_err pir_parse_sima_response(const uint8_t *p, size_t n, size_t *count)
{
    tlv resp, list, st, f;
    tlv_reader r, er, lr, sr;
    ifpp_err e;
    size_t k = 0;
    uint64_t v;

    if (!p || !count)
        return IFPP_E_ARG;
    *count = 0;
    tlv_reader_init(&r, p, n, TLV_DER);
    while ((e = tlv_reader_next(&r, &resp)) == IFPP_OK) {
        if (resp.tag != 0x30)
            return IFPP_E_TLV_UNEXPECTED_TAG;
        /* EUICCResponse ::= SEQUENCE { peStatus [0] SEQUENCE OF PEStatus, aborted [1] NULL OPTIONAL, message [2] UTF8String OPTIONAL } */
        if ((e = tlv_reader_enter(&r, &resp, &er)) != IFPP_OK || (e = tlv_reader_expect(&er, 0xA0, &list)) != IFPP_OK ||
            (e = tlv_reader_enter(&er, &list, &lr)) != IFPP_OK)
            return e;
        while ((e = tlv_reader_next(&lr, &st)) == IFPP_OK) {
            if (st.tag != 0x30)
                return IFPP_E_TLV_UNEXPECTED_TAG;
            /* PEStatus ::= SEQUENCE { status [0] INTEGER, identification [1] UInt15 OPTIONAL, ... } */
            if ((e = tlv_reader_enter(&lr, &st, &sr)) != IFPP_OK || (e = tlv_reader_expect(&sr, 0x80, &f)) != IFPP_OK ||
                (e = tlv_get_uint(&f, &v)) != IFPP_OK)
                return e;
        }
        if (e != IFPP_E_TLV_END)
            return e;
        if (tlv_reader_expect(&er, 0x81, &f) == IFPP_OK && f.len != 0)
            return IFPP_E_TLV_BAD_LENGTH; /* profileInstallationAborted is a NULL */
        (void)tlv_reader_expect(&er, 0x82, &f); /* statusMessage */
        if (!tlv_reader_done(&er))
            return IFPP_E_TLV_TRAILING;
        k++;
    }
    if (e != IFPP_E_TLV_END)
        return e;
    if (k == 0)
        return IFPP_E_TLV_MISSING;
    *count = k;
    return IFPP_OK;
}

static ifpp_err pir_small_uint(const tlv *t, uint64_t max, uint64_t *v)
{
    ifpp_err e = tlv_get_uint(t, v);
    return e == IFPP_OK && *v > max ? IFPP_E_RANGE : e;
}

ifpp_err pir_parse(const uint8_t *buf, size_t n, pir_info *p)
{
    tlv top, data, f, meta, result, choice, sig;
    tlv_reader outer, r, dr, mr, rr, cr;
    uint64_t v;
    ifpp_err e;

    if (!buf || !p)
        return IFPP_E_ARG;
    memset(p, 0, sizeof *p);
    if ((e = tlv_parse_exact(buf, n, TLV_DER, &top)) != IFPP_OK)
        return e;
    if (top.tag != 0xBF37)
        return IFPP_E_TLV_UNEXPECTED_TAG;
    tlv_reader_init(&outer, buf, n, TLV_DER);
    if ((e = tlv_reader_enter(&outer, &top, &r)) != IFPP_OK || (e = tlv_reader_expect(&r, 0xBF27, &data)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x5F37, &sig)) != IFPP_OK)
        return e;
    if (!tlv_reader_done(&r))
        return IFPP_E_TLV_TRAILING;
    p->raw = buf;
    p->raw_len = n;
    p->signed_data = data.raw;
    p->signed_len = data.raw_len;
    p->signature = sig.value;
    p->signature_len = sig.len;

    if ((e = tlv_reader_enter(&r, &data, &dr)) != IFPP_OK || (e = tlv_reader_expect(&dr, 0x80, &f)) != IFPP_OK)
        return e;
    if (f.len == 0 || f.len > sizeof p->transaction_id)
        return IFPP_E_RANGE;
    memcpy(p->transaction_id, f.value, f.len);
    p->transaction_id_len = f.len;

    if ((e = tlv_reader_expect(&dr, 0xBF2F, &meta)) != IFPP_OK || (e = tlv_reader_enter(&dr, &meta, &mr)) != IFPP_OK ||
        (e = tlv_reader_expect(&mr, 0x80, &f)) != IFPP_OK || (e = pir_small_uint(&f, UINT32_MAX, &p->seq_number)) != IFPP_OK)
        return e;
    if (tlv_reader_find(&mr, 0x5A, &f) == IFPP_OK) {
        if (f.len != 10)
            return IFPP_E_RANGE;
        memcpy(p->iccid, f.value, 10);
        p->has_iccid = true;
    }
    if (tlv_reader_expect(&dr, 0x06, &f) == IFPP_OK) { /* smdpOid: optional in SGP.22 v2 */
        if (f.len == 0 || f.len > sizeof p->smdp_oid)
            return IFPP_E_RANGE;
        memcpy(p->smdp_oid, f.value, f.len);
        p->smdp_oid_len = f.len;
    }
    if ((e = tlv_reader_expect(&dr, 0xA2, &result)) != IFPP_OK || (e = tlv_reader_enter(&dr, &result, &rr)) != IFPP_OK ||
        (e = tlv_reader_next(&rr, &choice)) != IFPP_OK || (e = tlv_reader_enter(&rr, &choice, &cr)) != IFPP_OK)
        return e;
    if (choice.tag == 0xA0) {
        if ((e = tlv_reader_expect(&cr, 0x4F, &f)) != IFPP_OK)
            return e;
        if (f.len < 5 || f.len > 16)
            return IFPP_E_RANGE;
        memcpy(p->isdp_aid, f.value, f.len);
        p->isdp_aid_len = f.len;
        p->success = true;
        if ((e = tlv_reader_expect(&cr, 0x04, &f)) != IFPP_OK) /* simaResponse: mandatory here */
            return e;
        p->sima_response = f.value;
        p->sima_response_len = f.len;
    } else if (choice.tag == 0xA1) {
        if ((e = tlv_reader_expect(&cr, 0x80, &f)) != IFPP_OK || (e = pir_small_uint(&f, 255, &v)) != IFPP_OK)
            return e;
        p->bpp_command_id = (uint8_t)v;
        if ((e = tlv_reader_expect(&cr, 0x81, &f)) != IFPP_OK || (e = pir_small_uint(&f, 255, &v)) != IFPP_OK)
            return e;
        p->error_reason = (uint8_t)v;
        if (tlv_reader_expect(&cr, 0x04, &f) == IFPP_OK) { /* simaResponse: optional here */
            p->sima_response = f.value;
            p->sima_response_len = f.len;
        }
    } else {
        return IFPP_E_TLV_UNEXPECTED_TAG;
    }
    if (!tlv_reader_done(&cr) || !tlv_reader_done(&rr) || !tlv_reader_done(&dr))
        return IFPP_E_TLV_TRAILING;
    if (p->sima_response && (e = pir_parse_sima_response(p->sima_response, p->sima_response_len, &p->sima_count)) != IFPP_OK)
        return e;
    return IFPP_OK;
}

ifpp_err pir_verify(const pir_info *p, const crypto_key *euicc_key)
{
    if (!p || !p->signed_data || !euicc_key)
        return IFPP_E_ARG;
    return crypto_ecdsa_verify(euicc_key, p->signed_data, p->signed_len, CRYPTO_SIG_RAW, p->signature,
                               p->signature_len);
}

ifpp_err pir_check(const pir_info *pir, const cert *euicc_cert, const cert *const *eums, size_t n_eums,
                   const cert *ci, time_t now, char *why, size_t why_len)
{
    ifpp_err e = IFPP_E_CERT_CHAIN;
    crypto_key *k = NULL;
    if (!pir || !euicc_cert || (n_eums && !eums) || !ci)
        return IFPP_E_ARG;
    /* The eUICC's issuer is one of the EUMs: try each as the intermediate. */
    for (size_t i = 0; i < n_eums && e != IFPP_OK; i++)
        e = cert_verify_chain(ci, &eums[i], 1, euicc_cert, CERT_ROLE_EUICC, now, why, why_len);
    if (e != IFPP_OK)
        return e;
    if ((e = cert_public_key(euicc_cert, &k)) == IFPP_OK)
        e = pir_verify(pir, k);
    crypto_key_free(k);
    if (e != IFPP_OK && why && why_len)
        snprintf(why, why_len, "PIR signature does not verify with the key of '%s'", cert_subject_cn(euicc_cert));
    return e;
}

ifpp_err pir_match_vault(const pir_info *pir, const uint8_t iccid[10], const cert *dpf_pb, char *why, size_t why_len)
{
    char got[ICCID_TEXT_LEN], want[ICCID_TEXT_LEN], got_oid[160], want_oid[160];
    uint8_t oid[64];
    size_t oid_len = 0;
    ifpp_err e;
    if (!pir || !iccid)
        return IFPP_E_ARG;
    if (pir->has_iccid && memcmp(pir->iccid, iccid, 10) != 0) {
        iccid_to_text(pir->iccid, got);
        iccid_to_text(iccid, want);
        err_why(why, why_len, "the PIR names ICCID %s but the vault's record is for ICCID %s", got, want);
        return IFPP_E_SIGNATURE;
    }
    if (!dpf_pb)
        return IFPP_OK;
    if ((e = cert_registered_id(dpf_pb, oid, sizeof oid, &oid_len)) != IFPP_OK) {
        err_why(why, why_len, "the SM-DPf certificate '%s' names no SM-DP OID (subjectAltName registeredID): %s",
                cert_subject_cn(dpf_pb), err_str(e));
        return e == IFPP_E_NOT_FOUND ? IFPP_E_CERT_PARSE : e;
    }
    cert_oid_text(oid, oid_len, want_oid, sizeof want_oid);
    if (pir->smdp_oid_len == 0) {
        err_why(why, why_len, "the PIR carries no smdpOid but the vault's SM-DPf certificate '%s' names %s",
                cert_subject_cn(dpf_pb), want_oid);
        return IFPP_E_SIGNATURE;
    }
    if (pir->smdp_oid_len != oid_len || memcmp(pir->smdp_oid, oid, oid_len) != 0) {
        cert_oid_text(pir->smdp_oid, pir->smdp_oid_len, got_oid, sizeof got_oid);
        err_why(why, why_len, "the PIR names SM-DP OID %s but the vault's SM-DPf certificate '%s' names %s", got_oid,
                cert_subject_cn(dpf_pb), want_oid);
        return IFPP_E_SIGNATURE;
    }
    return IFPP_OK;
}
