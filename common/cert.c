/*
 * cert.c -- X.509 parsing, roles and chain verification over OpenSSL 3; see cert.h.
 *
 * Chain verification runs in two passes: OpenSSL's X509_verify_cert with the root as the
 * only trust anchor, strict X.509 checks and an explicit verification time (signatures,
 * validity, basic constraints, path length); then our SGP.22 profile checks over the
 * chain OpenSSL built (algorithms, key usage, roles). Either pass names the certificate
 * that failed, because an operator has to know which file to replace.
 */
#include "cert.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "tlv.h"

#define CERT_MAX_DER 16384

struct cert {
    X509 *x;
    uint8_t *der;
    size_t der_len;
    char cn[128];
    char serial[64];
    int refs;
};

static const struct {
    const char *name;
    const char *oid;
} cert_roles[CERT_ROLE__COUNT] = {
    [CERT_ROLE_CI] = {"CI", "2.23.146.1.2.1.0"},
    [CERT_ROLE_EUM] = {"EUM", "2.23.146.1.2.1.2"},
    [CERT_ROLE_EUICC] = {"eUICC", "2.23.146.1.2.1.1"},
    [CERT_ROLE_DPF_AUTH] = {"SM-DPf auth", "2.23.146.1.2.1.4"},
    [CERT_ROLE_DPF_PB] = {"SM-DPf binding", "2.23.146.1.2.1.5"},
    [CERT_ROLE_DM_ROOT] = {"DM root", "2.25.120392306333479474166067974072028333099.1.1"},
    [CERT_ROLE_DM_FPA] = {"DM FPA authorisation", "2.25.120392306333479474166067974072028333099.1.2"},
    [CERT_ROLE_STATION] = {"station", "2.25.120392306333479474166067974072028333099.1.3"},
};

const char *cert_role_name(cert_role r)
{
    return (unsigned)r < CERT_ROLE__COUNT ? cert_roles[r].name : "unknown role";
}

const char *cert_role_oid(cert_role r)
{
    return (unsigned)r < CERT_ROLE__COUNT ? cert_roles[r].oid : NULL;
}

static void cert_read_name_entry(X509 *x, int nid, char *out, size_t cap, const char *fallback)
{
    X509_NAME *name = X509_get_subject_name(x);
    int i = name ? X509_NAME_get_index_by_NID(name, nid, -1) : -1;
    ASN1_STRING *s = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)) : NULL;
    unsigned char *utf8 = NULL;
    int len = s ? ASN1_STRING_to_UTF8(&utf8, s) : -1;
    if (len < 0) {
        snprintf(out, cap, "%s", fallback);
        return;
    }
    snprintf(out, cap, "%.*s", len, (const char *)utf8);
    for (char *p = out; *p; p++) /* names reach logs: keep them printable */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    OPENSSL_free(utf8);
}

static ifpp_err cert_wrap(X509 *x, cert **out)
{
    cert *c = calloc(1, sizeof *c);
    if (!c) {
        X509_free(x);
        return IFPP_E_NOMEM;
    }
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n <= 0) {
        X509_free(x);
        free(c);
        return IFPP_E_CERT_PARSE;
    }
    c->x = x;
    c->der = malloc((size_t)n);
    if (!c->der) {
        OPENSSL_free(der);
        X509_free(x);
        free(c);
        return IFPP_E_NOMEM;
    }
    memcpy(c->der, der, (size_t)n);
    OPENSSL_free(der);
    c->der_len = (size_t)n;
    c->refs = 1;
    cert_read_name_entry(x, NID_commonName, c->cn, sizeof c->cn, "(no CN)");
    cert_read_name_entry(x, NID_serialNumber, c->serial, sizeof c->serial, "");
    *out = c;
    return IFPP_OK;
}

ifpp_err cert_parse_der(const uint8_t *der, size_t n, cert **out)
{
    if (!der || !out)
        return IFPP_E_ARG;
    if (n == 0 || n > CERT_MAX_DER)
        return IFPP_E_CERT_PARSE;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    if (!x)
        return IFPP_E_CERT_PARSE;
    if (p != der + n) {
        X509_free(x);
        return IFPP_E_CERT_PARSE;
    }
    cert *c;
    ifpp_err e = cert_wrap(x, &c);
    if (e != IFPP_OK)
        return e;
    /* OpenSSL re-encodes what it parsed: a BER certificate would not be the bytes that were signed. */
    if (c->der_len != n || memcmp(c->der, der, n) != 0) {
        cert_free(c);
        return IFPP_E_CERT_PARSE;
    }
    *out = c;
    return IFPP_OK;
}

/* OpenSSL's default PEM callback prompts on the terminal; a station must never wait on one. */
static int cert_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

ifpp_err cert_load_pem_why(const char *path, cert **out, char *why, size_t why_len)
{
    uint8_t *pem;
    size_t n;
    if (!path || !out)
        return IFPP_E_ARG;
    ifpp_err e = fs_read_all_why(path, 16 * CERT_MAX_DER, &pem, &n, why, why_len);
    if (e != IFPP_OK)
        return e;
    BIO *bio = BIO_new_mem_buf(pem, (int)n);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, cert_no_passphrase, NULL) : NULL;
    BIO_free(bio);
    free(pem);
    if (!x) {
        err_why(why, why_len, "%s: no PEM certificate in it", path);
        return IFPP_E_CERT_PARSE;
    }
    if ((e = cert_wrap(x, out)) != IFPP_OK)
        err_why(why, why_len, "%s: %s", path, err_str(e));
    return e;
}

ifpp_err cert_load_pem(const char *path, cert **out)
{
    return cert_load_pem_why(path, out, NULL, 0);
}

ifpp_err cert_save_pem(const cert *c, const char *path)
{
    if (!c || !path)
        return IFPP_E_ARG;
    BIO *mem = BIO_new(BIO_s_mem());
    if (!mem)
        return IFPP_E_NOMEM;
    char *data = NULL;
    long n = PEM_write_bio_X509(mem, c->x) ? BIO_get_mem_data(mem, &data) : 0;
    ifpp_err e = n > 0 ? fs_write_atomic(path, data, (size_t)n, 0644) : IFPP_E_CRYPTO;
    BIO_free(mem);
    return e;
}

void cert_der(const cert *c, const uint8_t **der, size_t *n)
{
    *der = c->der;
    *n = c->der_len;
}

void cert_free(cert *c)
{
    if (!c || --c->refs > 0)
        return;
    X509_free(c->x);
    free(c->der);
    free(c);
}

cert *cert_ref(cert *c)
{
    if (c)
        c->refs++;
    return c;
}

ifpp_err cert_public_key(const cert *c, crypto_key **out)
{
    if (!c || !out)
        return IFPP_E_ARG;
    EVP_PKEY *pk = X509_get0_pubkey(c->x);
    if (!pk)
        return IFPP_E_CERT_ALGORITHM;
    ifpp_err e = crypto_key_from_evp(pk, out);
    return e == IFPP_E_BAD_CURVE ? IFPP_E_CERT_ALGORITHM : e;
}

ifpp_err cert_der_public_key(const uint8_t *der, size_t n, crypto_key **out)
{
    tlv top, tbs, f;
    tlv_reader r, t;
    ifpp_err e;
    if (!der || !out)
        return IFPP_E_ARG;
    if ((e = tlv_parse_exact(der, n, TLV_DER, &top)) != IFPP_OK)
        return e;
    if (top.tag != 0x30)
        return IFPP_E_TLV_UNEXPECTED_TAG;
    tlv_reader_init(&r, der, n, TLV_DER);
    tlv_reader outer;
    if ((e = tlv_reader_enter(&r, &top, &outer)) != IFPP_OK || (e = tlv_reader_expect(&outer, 0x30, &tbs)) != IFPP_OK ||
        (e = tlv_reader_enter(&outer, &tbs, &t)) != IFPP_OK || (e = tlv_reader_next(&t, &f)) != IFPP_OK)
        return e;
    if (f.tag == 0xA0 && (e = tlv_reader_next(&t, &f)) != IFPP_OK) /* [0] version, then serialNumber */
        return e;
    static const uint32_t after_serial[] = {0x30, 0x30, 0x30, 0x30}; /* signature, issuer, validity, subject */
    for (size_t i = 0; i < sizeof after_serial / sizeof after_serial[0]; i++)
        if ((e = tlv_reader_expect(&t, after_serial[i], &f)) != IFPP_OK)
            return e;
    if ((e = tlv_reader_expect(&t, 0x30, &f)) != IFPP_OK) /* subjectPublicKeyInfo */
        return e;
    /*
     * SEQUENCE { SEQUENCE { id-ecPublicKey, namedCurve }, BIT STRING 00 04 X Y }: the point goes to
     * crypto_key_from_public (on-curve check included), twice as fast as OpenSSL 3's SPKI decoder
     */
    static const uint8_t ec_public_key[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01};
    static const uint8_t p256[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
    static const uint8_t bp256r1[] = {0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07};
    tlv_reader spki, alg;
    tlv a, kind, curve, bits;
    if ((e = tlv_reader_enter(&t, &f, &spki)) != IFPP_OK || (e = tlv_reader_expect(&spki, 0x30, &a)) != IFPP_OK ||
        (e = tlv_reader_expect(&spki, 0x03, &bits)) != IFPP_OK || (e = tlv_reader_enter(&spki, &a, &alg)) != IFPP_OK ||
        (e = tlv_reader_expect(&alg, 0x06, &kind)) != IFPP_OK || (e = tlv_reader_expect(&alg, 0x06, &curve)) != IFPP_OK)
        return e;
    if (!tlv_reader_done(&spki) || !tlv_reader_done(&alg) || kind.len != sizeof ec_public_key ||
        memcmp(kind.value, ec_public_key, kind.len) != 0)
        return IFPP_E_CERT_ALGORITHM;
    crypto_curve cv;
    if (curve.len == sizeof p256 && !memcmp(curve.value, p256, sizeof p256))
        cv = CRYPTO_CURVE_P256;
    else if (curve.len == sizeof bp256r1 && !memcmp(curve.value, bp256r1, sizeof bp256r1))
        cv = CRYPTO_CURVE_BRAINPOOLP256R1;
    else
        return IFPP_E_CERT_ALGORITHM;
    if (bits.len != 1 + CRYPTO_EC_PUB_LEN || bits.value[0] != 0) /* no unused bits */
        return IFPP_E_BAD_KEY;
    return crypto_key_from_public(cv, bits.value + 1, CRYPTO_EC_PUB_LEN, out);
}

/* True if the certificate's policies contain oid (dotted text). */
static bool cert_has_policy(const cert *c, const char *oid)
{
    CERTIFICATEPOLICIES *pol = X509_get_ext_d2i(c->x, NID_certificate_policies, NULL, NULL);
    bool found = false;
    char text[128];
    for (int i = 0; pol && i < sk_POLICYINFO_num(pol) && !found; i++) {
        POLICYINFO *pi = sk_POLICYINFO_value(pol, i);
        if (OBJ_obj2txt(text, sizeof text, pi->policyid, 1) > 0 && strcmp(text, oid) == 0)
            found = true;
    }
    CERTIFICATEPOLICIES_free(pol);
    return found;
}

ifpp_err cert_role_of(const cert *c, cert_role *out)
{
    if (!c || !out)
        return IFPP_E_ARG;
    for (int r = 0; r < CERT_ROLE__COUNT; r++) {
        if (cert_has_policy(c, cert_roles[r].oid)) {
            *out = (cert_role)r;
            return IFPP_OK;
        }
    }
    return IFPP_E_CERT_ROLE;
}

ifpp_err cert_subject_key_id(const cert *c, uint8_t *out, size_t cap, size_t *n)
{
    if (!c || !out || !n)
        return IFPP_E_ARG;
    const ASN1_OCTET_STRING *id = X509_get0_subject_key_id(c->x);
    if (!id || ASN1_STRING_length(id) <= 0)
        return IFPP_E_CERT_PARSE;
    size_t len = (size_t)ASN1_STRING_length(id);
    if (len > cap)
        return IFPP_E_RANGE;
    memcpy(out, ASN1_STRING_get0_data(id), len);
    *n = len;
    return IFPP_OK;
}

const char *cert_subject_cn(const cert *c) { return c ? c->cn : "(none)"; }
const char *cert_subject_serial(const cert *c) { return c && c->serial[0] ? c->serial : NULL; }
void *cert_x509(const cert *c) { return c ? c->x : NULL; }

ifpp_err cert_from_x509(void *x509, cert **out)
{
    if (!x509 || !out || X509_up_ref(x509) != 1)
        return IFPP_E_ARG;
    return cert_wrap(x509, out);
}

/* ---- chain verification --------------------------------------------------------------- */

static ifpp_err cert_map_verify_error(int err)
{
    switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
        return IFPP_E_CERT_EXPIRED;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
        return IFPP_E_CERT_SIGNATURE;
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_INVALID_NON_CA:
    case X509_V_ERR_INVALID_PURPOSE:
        return IFPP_E_CERT_KEY_USAGE;
    case X509_V_ERR_EC_KEY_EXPLICIT_PARAMS:
    case X509_V_ERR_UNSUPPORTED_SIGNATURE_ALGORITHM:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_MD_TOO_WEAK:
        return IFPP_E_CERT_ALGORITHM;
    default:
        return IFPP_E_CERT_CHAIN;
    }
}

/* SGP.22 §4.5.2: ecdsa-with-SHA256 signatures, keys on the two curves. */
static ifpp_err cert_check_algorithms(const cert *c, char *why, size_t why_len)
{
    crypto_key *k = NULL;
    if (X509_get_signature_nid(c->x) != NID_ecdsa_with_SHA256) {
        err_why(why, why_len, "'%s': signature algorithm is not ecdsa-with-SHA256", c->cn);
        return IFPP_E_CERT_ALGORITHM;
    }
    ifpp_err e = cert_public_key(c, &k);
    crypto_key_free(k);
    if (e != IFPP_OK) {
        err_why(why, why_len, "'%s': key is not on P-256 or brainpoolP256r1", c->cn);
        return IFPP_E_CERT_ALGORITHM;
    }
    return IFPP_OK;
}

/* Issuer: a CA allowed to sign certificates. Leaf: digitalSignature, unless its role is a CA's. */
static ifpp_err cert_check_usage(X509 *x, const char *cn, bool issuer, bool leaf_is_ca_role, char *why,
                                 size_t why_len)
{
    uint32_t flags = X509_get_extension_flags(x);
    uint32_t ku = X509_get_key_usage(x);
    bool has_ku = flags & EXFLAG_KUSAGE;
    bool is_ca = X509_check_ca(x) == 1 && (flags & EXFLAG_BCONS);
    if (issuer || leaf_is_ca_role) {
        if (!is_ca || !has_ku || !(ku & KU_KEY_CERT_SIGN)) {
            err_why(why, why_len, "'%s': issues certificates but is not a CA with keyCertSign", cn);
            return IFPP_E_CERT_KEY_USAGE;
        }
        return IFPP_OK;
    }
    if (is_ca) {
        err_why(why, why_len, "'%s': an end-entity role, but the certificate is a CA", cn);
        return IFPP_E_CERT_KEY_USAGE;
    }
    if (!has_ku || !(ku & KU_DIGITAL_SIGNATURE)) {
        err_why(why, why_len, "'%s': key usage lacks digitalSignature", cn);
        return IFPP_E_CERT_KEY_USAGE;
    }
    return IFPP_OK;
}

/* Which role the root of a leaf's chain must hold, and its direct issuer (if fixed). */
static void cert_hierarchy(cert_role leaf, int *root_role, int *issuer_role)
{
    *issuer_role = -1;
    switch (leaf) {
    case CERT_ROLE_EUICC: *root_role = CERT_ROLE_CI; *issuer_role = CERT_ROLE_EUM; break;
    case CERT_ROLE_EUM: *root_role = CERT_ROLE_CI; *issuer_role = CERT_ROLE_CI; break;
    case CERT_ROLE_DPF_AUTH:
    case CERT_ROLE_DPF_PB: *root_role = CERT_ROLE_CI; *issuer_role = CERT_ROLE_CI; break; /* or a DP sub-CA; never an EUM */
    case CERT_ROLE_DM_FPA:
    case CERT_ROLE_STATION: *root_role = CERT_ROLE_DM_ROOT; *issuer_role = CERT_ROLE_DM_ROOT; break;
    case CERT_ROLE_DM_ROOT: *root_role = CERT_ROLE_DM_ROOT; break;
    default: *root_role = CERT_ROLE_CI; break;
    }
}

ifpp_err cert_verify_chain(const cert *root, const cert *const *intermediates, size_t n_inter, const cert *leaf,
                           cert_role leaf_role, time_t now, char *why, size_t why_len)
{
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *untrusted = NULL, *chain = NULL;
    ifpp_err e = IFPP_E_NOMEM;

    if (why && why_len)
        why[0] = '\0';
    if (!root || !leaf || (n_inter && !intermediates) || (unsigned)leaf_role >= CERT_ROLE__COUNT)
        return IFPP_E_ARG;

    /* The profile's algorithms first: OpenSSL would accept RSA or other curves. */
    if ((e = cert_check_algorithms(root, why, why_len)) != IFPP_OK ||
        (e = cert_check_algorithms(leaf, why, why_len)) != IFPP_OK)
        return e;
    for (size_t i = 0; i < n_inter; i++)
        if ((e = cert_check_algorithms(intermediates[i], why, why_len)) != IFPP_OK)
            return e;

    e = IFPP_E_NOMEM;
    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    untrusted = sk_X509_new_null();
    if (!store || !ctx || !untrusted || X509_STORE_add_cert(store, root->x) != 1)
        goto out;
    for (size_t i = 0; i < n_inter; i++)
        if (!sk_X509_push(untrusted, intermediates[i]->x))
            goto out;
    if (X509_STORE_CTX_init(ctx, store, leaf->x, untrusted) != 1)
        goto out;
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, now);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
    X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_depth(param, 4);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
        char cn[128] = "?";
        if (bad)
            X509_NAME_get_text_by_NID(X509_get_subject_name(bad), NID_commonName, cn, sizeof cn);
        err_why(why, why_len, "'%s': %s", cn, X509_verify_cert_error_string(err));
        e = cert_map_verify_error(err);
        goto out;
    }

    /* The SGP.22 profile over the chain OpenSSL built: [leaf, ..., root]. */
    chain = X509_STORE_CTX_get1_chain(ctx);
    int depth = chain ? sk_X509_num(chain) : 0;
    int root_role, issuer_role;
    cert_hierarchy(leaf_role, &root_role, &issuer_role);
    if ((leaf_role == CERT_ROLE_DPF_AUTH || leaf_role == CERT_ROLE_DPF_PB) && depth > 3) {
        err_why(why, why_len, "'%s': an SM-DPf chain is the CI, at most one SM-DP sub-CA, then the certificate",
                cert_subject_cn(leaf));
        e = IFPP_E_CERT_CHAIN;
        goto out;
    }
    bool leaf_is_ca_role = leaf_role == CERT_ROLE_CI || leaf_role == CERT_ROLE_EUM || leaf_role == CERT_ROLE_DM_ROOT;
    for (int i = 0; i < depth; i++) {
        cert *c = NULL;
        if ((e = cert_from_x509(sk_X509_value(chain, i), &c)) != IFPP_OK)
            goto out;
        e = cert_check_usage(c->x, c->cn, i > 0, i == 0 && leaf_is_ca_role, why, why_len);
        if (e == IFPP_OK && i == 0 && !cert_has_policy(c, cert_roles[leaf_role].oid)) {
            err_why(why, why_len, "'%s': not issued for the %s role (certificatePolicies)", c->cn,
                     cert_roles[leaf_role].name);
            e = IFPP_E_CERT_ROLE;
        }
        /*
         * An SM-DPf certificate under an SM-DP sub-CA (SGP.22 v3 CERT.DPSubCA, SGP.26 variant A): the sub-CA
         * is issued by the CI itself and carries the role of the certificates it issues in its own
         * certificatePolicies, so that neither an EUM nor any other CA under the CI can issue SM-DPf certificates.
         */
        bool dp_sub_ca = (leaf_role == CERT_ROLE_DPF_AUTH || leaf_role == CERT_ROLE_DPF_PB) && depth == 3 && i == 1;
        if (e == IFPP_OK && dp_sub_ca && !cert_has_policy(c, cert_roles[leaf_role].oid)) {
            err_why(why, why_len, "'%s': an SM-DP sub-CA must hold the %s role of the certificates it issues", c->cn,
                     cert_roles[leaf_role].name);
            e = IFPP_E_CERT_ROLE;
        } else if (e == IFPP_OK && i == 1 && !dp_sub_ca && issuer_role >= 0 &&
                   !cert_has_policy(c, cert_roles[issuer_role].oid)) {
            err_why(why, why_len, "'%s': the issuer of a %s certificate must hold the %s role", c->cn,
                     cert_roles[leaf_role].name, cert_roles[issuer_role].name);
            e = IFPP_E_CERT_ROLE;
        }
        if (e == IFPP_OK && i == depth - 1 && !cert_has_policy(c, cert_roles[root_role].oid)) {
            err_why(why, why_len, "'%s': the root of a %s chain must hold the %s role", c->cn, cert_roles[leaf_role].name,
                     cert_roles[root_role].name);
            e = IFPP_E_CERT_ROLE;
        }
        cert_free(c);
        if (e != IFPP_OK)
            goto out;
    }
    e = depth > 0 ? IFPP_OK : IFPP_E_CERT_CHAIN;
out:
    sk_X509_pop_free(chain, X509_free);
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return e;
}

bool cert_issued_by(const cert *c, const cert *issuer)
{
    return c && issuer && X509_check_issued(issuer->x, c->x) == X509_V_OK;
}

void cert_issuer_cn(const cert *c, char *out, size_t cap)
{
    if (!out || !cap)
        return;
    snprintf(out, cap, "(no CN)");
    X509_NAME *name = c ? X509_get_issuer_name(c->x) : NULL;
    int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    ASN1_STRING *s = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)) : NULL;
    unsigned char *utf8 = NULL;
    int len = s ? ASN1_STRING_to_UTF8(&utf8, s) : -1;
    if (len < 0)
        return;
    snprintf(out, cap, "%.*s", len, (const char *)utf8);
    for (char *p = out; *p; p++) /* names reach logs: keep them printable */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    OPENSSL_free(utf8);
}

ifpp_err cert_registered_id(const cert *c, uint8_t *oid, size_t cap, size_t *n)
{
    ifpp_err e = IFPP_E_NOT_FOUND;
    int crit = 0;
    if (!c || !oid || !n)
        return IFPP_E_ARG;
    GENERAL_NAMES *names = X509_get_ext_d2i(c->x, NID_subject_alt_name, &crit, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && e == IFPP_E_NOT_FOUND; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_RID)
            continue;
        size_t len = OBJ_length(g->d.registeredID);
        if (len == 0 || len > cap) {
            e = IFPP_E_RANGE;
        } else {
            memcpy(oid, OBJ_get0_data(g->d.registeredID), len);
            *n = len;
            e = IFPP_OK;
        }
    }
    GENERAL_NAMES_free(names);
    return e;
}

void cert_oid_text(const uint8_t *oid, size_t n, char *out, size_t cap)
{
    uint8_t der[2 + 127];
    if (!out || !cap)
        return;
    snprintf(out, cap, "(malformed OID)");
    if (!oid || n == 0 || n > 127)
        return;
    der[0] = 0x06;
    der[1] = (uint8_t)n;
    memcpy(der + 2, oid, n);
    const unsigned char *p = der;
    ASN1_OBJECT *o = d2i_ASN1_OBJECT(NULL, &p, (long)(n + 2));
    /* OpenSSL accepts some non-minimal arcs: only what re-encodes to what arrived is shown as an OID. */
    bool same = o && p == der + n + 2 && OBJ_length(o) == n && memcmp(OBJ_get0_data(o), oid, n) == 0;
    if (!same || OBJ_obj2txt(out, (int)cap, o, 1) <= 0)
        snprintf(out, cap, "(malformed OID)");
    ASN1_OBJECT_free(o);
}
