/*
 * testpki.c -- the throw-away test PKI; see testpki.h.
 *
 * Certificates are built with OpenSSL's X509 API directly: this is test tooling, and the
 * product only ever reads certificates (common/cert.c).
 */
#include "testpki.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

static bool pki_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return false;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1;
}

/* certificatePolicies with the role OIDs, critical as SGP.22 writes it (no config database needed). */
static bool pki_add_policies(X509 *x, cert_role role, const cert_role *more, size_t n_more)
{
    CERTIFICATEPOLICIES *pols = CERTIFICATEPOLICIES_new();
    bool ok = pols != NULL;
    for (size_t i = 0; ok && i <= n_more; i++) {
        POLICYINFO *pi = POLICYINFO_new();
        const char *oid = cert_role_oid(i == 0 ? role : more[i - 1]);
        ok = pi && oid && (pi->policyid = OBJ_txt2obj(oid, 1)) != NULL && sk_POLICYINFO_push(pols, pi);
        if (!ok)
            POLICYINFO_free(pi);
    }
    ok = ok && X509_add1_ext_i2d(x, NID_certificate_policies, pols, 1, X509V3_ADD_DEFAULT) == 1;
    CERTIFICATEPOLICIES_free(pols);
    return ok;
}

ifpp_err testpki_make_cert(const testpki_cert_spec *s, cert **out)
{
    if (!s || !s->subject_pkey || !s->cn || !out)
        return IFPP_E_ARG;
    X509 *x = X509_new();
    X509 *issuer = s->issuer ? cert_x509(s->issuer) : x;
    EVP_PKEY *signer = s->issuer_pkey ? s->issuer_pkey : s->subject_pkey;
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    BIGNUM *bn = BN_new();
    char ext[256];
    bool ok = x && serial && bn && X509_set_version(x, 2) && BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
              BN_to_ASN1_INTEGER(bn, serial) && X509_set_serialNumber(x, serial);
    X509_NAME *name = X509_get_subject_name(x);
    ok = ok && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"ifpp-station TEST", -1, -1, 0);
    if (ok && s->serial_number)
        ok = X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_UTF8, (const unsigned char *)s->serial_number,
                                        -1, -1, 0);
    ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)s->cn, -1, -1, 0);
    ok = ok && X509_set_issuer_name(x, X509_get_subject_name(issuer));
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), s->not_before) && X509_gmtime_adj(X509_getm_notAfter(x), s->not_after);
    ok = ok && X509_set_pubkey(x, s->subject_pkey);
    if (ok && s->ca) {
        if (s->path_len >= 0)
            snprintf(ext, sizeof ext, "critical,CA:TRUE,pathlen:%d", s->path_len);
        else
            snprintf(ext, sizeof ext, "critical,CA:TRUE");
        ok = pki_add_ext(x, issuer, NID_basic_constraints, ext) &&
             pki_add_ext(x, issuer, NID_key_usage, s->no_key_cert_sign ? "critical,cRLSign" : "critical,keyCertSign,cRLSign");
    } else if (ok) {
        ok = pki_add_ext(x, issuer, NID_key_usage, s->no_digital_signature ? "critical,keyAgreement" : "critical,digitalSignature");
    }
    ok = ok && pki_add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (ok && s->issuer)
        ok = pki_add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    if (ok && !s->no_policy)
        ok = pki_add_policies(x, s->role, s->more_roles, s->n_more_roles);
    if (ok && s->registered_id) { /* SGP.22 certificate profile: the SM-DP+ OID, non-critical */
        snprintf(ext, sizeof ext, "RID:%s", s->registered_id);
        ok = pki_add_ext(x, issuer, NID_subject_alt_name, ext);
    }
    ok = ok && X509_sign(x, signer, EVP_sha256()) > 0;
    BN_free(bn);
    ASN1_INTEGER_free(serial);
    if (!ok) {
        X509_free(x);
        return IFPP_E_CRYPTO;
    }
    ifpp_err e = cert_from_x509(x, out);
    X509_free(x);
    return e;
}

/* 1 + the decimal number in digits, mod 97, computed digit by digit (it has 32 digits). */
static unsigned pki_mod97(const char *digits)
{
    unsigned r = 0;
    for (const char *p = digits; *p; p++)
        r = (r * 10 + (unsigned)(*p - '0')) % 97;
    return r;
}

bool testpki_eid_valid(const char *eid)
{
    if (!eid || strlen(eid) != TESTPKI_EID_LEN)
        return false;
    for (const char *p = eid; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return pki_mod97(eid) == 1;
}

ifpp_err testpki_eid_random(char out[TESTPKI_EID_LEN + 1])
{
    uint8_t rnd[22];
    ifpp_err e = crypto_random(rnd, sizeof rnd);
    if (e != IFPP_OK)
        return e;
    memcpy(out, "89049032", 8);
    for (int i = 0; i < 22; i++)
        out[8 + i] = (char)('0' + rnd[i] % 10);
    /* check digits as in ISO 7064 MOD 97-10 (IBAN style): append 00, take 98 - (n mod 97) */
    out[30] = out[31] = '0';
    out[32] = '\0';
    unsigned cd = 98 - pki_mod97(out);
    out[30] = (char)('0' + cd / 10);
    out[31] = (char)('0' + cd % 10);
    return IFPP_OK;
}

static ifpp_err pki_save(const char *dir, const char *name, const cert *c, const crypto_key *k, char *why,
                         size_t why_len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.cert.pem", dir, name);
    ifpp_err e = cert_save_pem(c, path);
    if (e == IFPP_OK) {
        snprintf(path, sizeof path, "%s/%s.key.pem", dir, name);
        e = crypto_key_save_private_pem(k, path);
    }
    if (e != IFPP_OK)
        err_why(why, why_len, "cannot write %s: %s", path, err_str(e));
    return e;
}

ifpp_err testpki_load(const char *dir, const char *name, cert **c, crypto_key **key)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.cert.pem", dir, name);
    ifpp_err e = cert_load_pem(path, c);
    if (e != IFPP_OK || !key)
        return e;
    snprintf(path, sizeof path, "%s/%s.key.pem", dir, name);
    if ((e = crypto_key_load_pem(path, key)) != IFPP_OK) {
        cert_free(*c);
        *c = NULL;
    }
    return e;
}

/* One party: a fresh key, its certificate under issuer (NULL: self-signed) with role and more_roles, both written out. */
static ifpp_err pki_party_roles(const testpki_opts *o, const char *name, const char *cn, cert_role role,
                                const cert_role *more_roles, size_t n_more_roles, bool ca, int path_len,
                                const cert *issuer, const crypto_key *issuer_key, const char *serial,
                                const char *registered_id, cert **c_out, crypto_key **k_out, char *why,
                                size_t why_len)
{
    crypto_key *k = NULL;
    cert *c = NULL;
    ifpp_err e = crypto_key_generate(o->curve, &k);
    if (e == IFPP_OK) {
        testpki_cert_spec s = {
            .cn = cn, .role = role, .ca = ca, .path_len = path_len, .subject_pkey = crypto_key_evp(k),
            .issuer_pkey = issuer_key ? crypto_key_evp(issuer_key) : NULL, .issuer = issuer,
            .not_before = -3600, .not_after = (long)(o->days ? o->days : 365) * 86400, .serial_number = serial,
            .registered_id = registered_id, .more_roles = more_roles, .n_more_roles = n_more_roles,
        };
        e = testpki_make_cert(&s, &c);
    }
    if (e == IFPP_OK)
        e = pki_save(o->out_dir, name, c, k, why, why_len);
    else
        err_why(why, why_len, "cannot make the %s certificate: %s", cn, err_str(e));
    if (e == IFPP_OK && c_out) {
        *c_out = c;
        c = NULL;
    }
    if (e == IFPP_OK && k_out) {
        *k_out = k;
        k = NULL;
    }
    cert_free(c);
    crypto_key_free(k);
    return e;
}

/* pki_party_roles with one role. */
static ifpp_err pki_party(const testpki_opts *o, const char *name, const char *cn, cert_role role, bool ca,
                          int path_len, const cert *issuer, const crypto_key *issuer_key, const char *serial,
                          const char *registered_id, cert **c_out, crypto_key **k_out, char *why, size_t why_len)
{
    return pki_party_roles(o, name, cn, role, NULL, 0, ca, path_len, issuer, issuer_key, serial, registered_id, c_out,
                           k_out, why, why_len);
}

/* mkdir -p: the output directory and any missing parents. */
static ifpp_err pki_mkdir(const char *path, char *why, size_t why_len)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        char saved = *p;
        if (saved != '/' && saved != '\0')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            err_why(why, why_len, "cannot create %s: %s", buf, strerror(errno));
            return IFPP_E_IO;
        }
        *p = saved;
        if (saved == '\0')
            return IFPP_OK;
    }
}

ifpp_err testpki_make(const testpki_opts *o, char *why, size_t why_len)
{
    cert *ci = NULL, *eum = NULL, *dm = NULL, *dp_ca = NULL;
    crypto_key *ci_k = NULL, *eum_k = NULL, *dm_k = NULL, *dp_ca_k = NULL;
    static const cert_role dp_sub_ca_more[] = {CERT_ROLE_DPF_PB};
    char **eids = NULL;
    size_t n_eids = o && o->eids ? o->n_eids : (o && o->n_eids ? o->n_eids : 2);
    char path[4096];
    ifpp_err e;

    if (!o || !o->out_dir)
        return IFPP_E_ARG;
    if ((e = pki_mkdir(o->out_dir, why, why_len)) != IFPP_OK)
        return e;
    snprintf(path, sizeof path, "%s/euicc", o->out_dir);
    if ((e = pki_mkdir(path, why, why_len)) != IFPP_OK)
        return e;
    eids = calloc(n_eids ? n_eids : 1, sizeof *eids);
    if (!eids)
        return IFPP_E_NOMEM;
    for (size_t i = 0; i < n_eids; i++) {
        eids[i] = malloc(TESTPKI_EID_LEN + 1);
        if (!eids[i]) {
            e = IFPP_E_NOMEM;
            goto out;
        }
        if (o->eids) {
            if (!testpki_eid_valid(o->eids[i])) {
                err_why(why, why_len, "EID '%s' is not 32 digits with valid check digits (mod 97 = 1)", o->eids[i]);
                e = IFPP_E_ARG;
                goto out;
            }
            memcpy(eids[i], o->eids[i], TESTPKI_EID_LEN + 1);
        } else if ((e = testpki_eid_random(eids[i])) != IFPP_OK) {
            goto out;
        }
    }

    if ((e = pki_party(o, "ci", "Test CI (ifpp-station, NOT FOR PRODUCTION)", CERT_ROLE_CI, true, -1, NULL, NULL,
                       NULL, NULL, &ci, &ci_k, why, why_len)) != IFPP_OK ||
        (e = pki_party(o, "eum", "Test EUM", CERT_ROLE_EUM, true, 0, ci, ci_k, NULL, NULL, &eum, &eum_k, why, why_len)) !=
            IFPP_OK ||
        (o->dpf_sub_ca &&
         (e = pki_party_roles(o, "dpf-subca", "Test SM-DP sub-CA", CERT_ROLE_DPF_AUTH, dp_sub_ca_more, 1, true, 0, ci,
                              ci_k, NULL, NULL, &dp_ca, &dp_ca_k, why, why_len)) != IFPP_OK) ||
        (e = pki_party(o, "dpf-auth", "Test SM-DPf auth", CERT_ROLE_DPF_AUTH, false, -1, dp_ca ? dp_ca : ci,
                       dp_ca ? dp_ca_k : ci_k, NULL, TESTPKI_SMDPF_OID, NULL, NULL, why, why_len)) != IFPP_OK ||
        (e = pki_party(o, "dpf-pb", "Test SM-DPf binding", CERT_ROLE_DPF_PB, false, -1, dp_ca ? dp_ca : ci,
                       dp_ca ? dp_ca_k : ci_k, NULL, TESTPKI_SMDPF_OID, NULL, NULL, why, why_len)) != IFPP_OK ||
        (e = pki_party(o, "dm-root", "Test Device Manufacturer root", CERT_ROLE_DM_ROOT, true, 0, NULL, NULL, NULL,
                       NULL, &dm, &dm_k, why, why_len)) != IFPP_OK ||
        (e = pki_party(o, "dm-fpa", "Test DM FPA authorisation", CERT_ROLE_DM_FPA, false, -1, dm, dm_k, NULL, NULL,
                       NULL, NULL, why, why_len)) != IFPP_OK ||
        (e = pki_party(o, "station", "Test station", CERT_ROLE_STATION, false, -1, dm, dm_k, NULL, NULL, NULL, NULL, why,
                       why_len)) != IFPP_OK)
        goto out;
    if (!o->dpf_sub_ca) { /* a directory made again without the sub-CA must not keep an old one */
        snprintf(path, sizeof path, "%s/dpf-subca.cert.pem", o->out_dir);
        (void)unlink(path);
        snprintf(path, sizeof path, "%s/dpf-subca.key.pem", o->out_dir);
        (void)unlink(path);
    }
    for (size_t i = 0; i < n_eids; i++) {
        char name[64], cn[64];
        snprintf(name, sizeof name, "euicc/%s", eids[i]);
        snprintf(cn, sizeof cn, "Test eUICC %s", eids[i]);
        if ((e = pki_party(o, name, cn, CERT_ROLE_EUICC, false, -1, eum, eum_k, eids[i], NULL, NULL, NULL, why,
                           why_len)) != IFPP_OK)
            goto out;
    }

    /* pki.conf for the other test tools, and a warning for people. */
    FILE *f;
    snprintf(path, sizeof path, "%s/pki.conf", o->out_dir);
    if (!(f = fopen(path, "w"))) {
        err_why(why, why_len, "cannot write %s: %s", path, strerror(errno));
        e = IFPP_E_IO;
        goto out;
    }
    fprintf(f, "# ifpp-testpki manifest\ncurve = %s\neids = ", crypto_curve_name(o->curve));
    for (size_t i = 0; i < n_eids; i++)
        fprintf(f, "%s%s", i ? "," : "", eids[i]);
    fprintf(f, "\n");
    e = fclose(f) == 0 ? IFPP_OK : IFPP_E_IO;
    snprintf(path, sizeof path, "%s/README.txt", o->out_dir);
    static const char readme[] =
        "THROW-AWAY TEST KEYS made by ifpp-testpki.\n"
        "Every private key in this directory is for tests and demos only. Nothing in ifpp-station\n"
        "trusts these certificates unless a configuration names them; never configure them on a\n"
        "production station.\n";
    if (e == IFPP_OK)
        e = fs_write_atomic(path, readme, sizeof readme - 1, 0644);
out:
    for (size_t i = 0; i < n_eids; i++)
        free(eids[i]);
    free(eids);
    cert_free(ci);
    cert_free(eum);
    cert_free(dm);
    cert_free(dp_ca);
    crypto_key_free(dp_ca_k);
    crypto_key_free(ci_k);
    crypto_key_free(eum_k);
    crypto_key_free(dm_k);
    return e;
}

ifpp_err testpki_eids(const char *dir, char (**eids)[TESTPKI_EID_LEN + 1], size_t *n)
{
    char path[4096], line[65536];
    if (!dir || !eids || !n)
        return IFPP_E_ARG;
    *eids = NULL;
    *n = 0;
    snprintf(path, sizeof path, "%s/pki.conf", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return IFPP_E_IO;
    ifpp_err e = IFPP_OK;
    while (e == IFPP_OK && fgets(line, sizeof line, f)) {
        if (strncmp(line, "eids = ", 7) != 0)
            continue;
        line[strcspn(line, "\n")] = '\0';
        for (char *tok = line + 7, *end; e == IFPP_OK && *tok; tok = *end ? end + 1 : end) {
            end = tok + strcspn(tok, ",");
            char(*grown)[TESTPKI_EID_LEN + 1] = realloc(*eids, (*n + 1) * sizeof **eids);
            if (!grown) {
                e = IFPP_E_NOMEM;
                break;
            }
            *eids = grown;
            size_t len = (size_t)(end - tok);
            if (len != TESTPKI_EID_LEN) {
                e = IFPP_E_RANGE;
                break;
            }
            memcpy((*eids)[*n], tok, len);
            (*eids)[*n][len] = '\0';
            e = testpki_eid_valid((*eids)[*n]) ? IFPP_OK : IFPP_E_RANGE;
            (*n)++;
        }
    }
    fclose(f);
    if (e == IFPP_OK && *n == 0)
        e = IFPP_E_RANGE;
    if (e != IFPP_OK) {
        free(*eids);
        *eids = NULL;
        *n = 0;
    }
    return e;
}
