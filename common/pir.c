/* pir.c -- ProfileInstallationResult parsing and signature check; see pir.h. */
#include "pir.h"

#include <stdio.h>
#include <string.h>

#include "hex.h"
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
    (void)tlv_reader_expect(&dr, 0x06, &f); /* smdpOid, optional */
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
    } else if (choice.tag == 0xA1) {
        if ((e = tlv_reader_expect(&cr, 0x80, &f)) != IFPP_OK || (e = pir_small_uint(&f, 255, &v)) != IFPP_OK)
            return e;
        p->bpp_command_id = (uint8_t)v;
        if ((e = tlv_reader_expect(&cr, 0x81, &f)) != IFPP_OK || (e = pir_small_uint(&f, 255, &v)) != IFPP_OK)
            return e;
        p->error_reason = (uint8_t)v;
    } else {
        return IFPP_E_TLV_UNEXPECTED_TAG;
    }
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
    char got[21], want[21];
    if (!pir || !iccid)
        return IFPP_E_ARG;
    (void)dpf_pb; /* smdpOid: compared once pir_info carries it (issue 10) */
    if (pir->has_iccid && memcmp(pir->iccid, iccid, 10) != 0) {
        hex_encode(pir->iccid, 10, got, sizeof got);
        hex_encode(iccid, 10, want, sizeof want);
        err_why(why, why_len, "the PIR names ICCID %s but the vault's record is for ICCID %s", got, want);
        return IFPP_E_SIGNATURE;
    }
    return IFPP_OK;
}
