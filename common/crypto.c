/*
 * crypto.c -- the crypto core over OpenSSL 3 libcrypto; the contract is in crypto.h.
 *
 * Only the EVP interfaces are used (no deprecated EC_KEY), so a provider (a PKCS#11
 * or HSM provider, GENS02 makes it optional) could stand behind the same calls.
 * Two things are done by hand, on purpose:
 *   - the X9.63 KDF, a dozen lines over SHA-256, so that the known-answer tests and the
 *     cross-check against OpenSSL's own X963KDF compare two implementations;
 *   - the DER <-> r||s signature conversion, because it parses hostile input and its
 *     strictness (minimal INTEGERs, no trailing bytes, r and s in range) is ours to state.
 * Nothing here logs, and private halves never leave an EVP_PKEY except through the
 * explicit PEM writer (SGP.41 GENS10).
 */
#define _GNU_SOURCE /* memmem */
#include "crypto.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fsutil.h"

struct crypto_key {
    EVP_PKEY *pkey;
    crypto_curve curve;
};

static const char *const curve_group[] = {"prime256v1", "brainpoolP256r1"};

/* The group orders n, for the r,s range check in crypto_sig_der_to_raw(). */
static const uint8_t curve_order[2][32] = {
    {0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
     0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51},
    {0xA9, 0xFB, 0x57, 0xDB, 0xA1, 0xEE, 0xA9, 0xBC, 0x3E, 0x66, 0x0A, 0x90, 0x9D, 0x83, 0x8D, 0x71,
     0x8C, 0x39, 0x7A, 0xA3, 0xB5, 0x61, 0xA6, 0xF7, 0x90, 0x1E, 0x0E, 0x82, 0x97, 0x48, 0x56, 0xA7},
};

const char *crypto_curve_name(crypto_curve c)
{
    switch (c) {
    case CRYPTO_CURVE_P256: return "P-256";
    case CRYPTO_CURVE_BRAINPOOLP256R1: return "brainpoolP256r1";
    }
    return NULL;
}

ifpp_err crypto_curve_parse(const char *name, crypto_curve *out)
{
    static const struct { const char *name; crypto_curve c; } names[] = {
        {"p256", CRYPTO_CURVE_P256}, {"p-256", CRYPTO_CURVE_P256}, {"prime256v1", CRYPTO_CURVE_P256},
        {"secp256r1", CRYPTO_CURVE_P256}, {"brainpool", CRYPTO_CURVE_BRAINPOOLP256R1},
        {"brainpoolp256r1", CRYPTO_CURVE_BRAINPOOLP256R1},
    };
    if (!name || !out)
        return IFPP_E_ARG;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].c;
            return IFPP_OK;
        }
    }
    return IFPP_E_BAD_CURVE;
}

/* ---- hashing, randomness, comparisons --------------------------------------------- */

ifpp_err crypto_sha256(const void *data, size_t n, uint8_t out[CRYPTO_SHA256_LEN])
{
    unsigned int len = 0;
    if ((!data && n) || !out)
        return IFPP_E_ARG;
    return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == CRYPTO_SHA256_LEN ? IFPP_OK
                                                                                            : IFPP_E_CRYPTO;
}

ifpp_err crypto_sha256_init(crypto_sha256_ctx *ctx)
{
    if (!ctx)
        return IFPP_E_ARG;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return IFPP_E_NOMEM;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return IFPP_E_CRYPTO;
    }
    ctx->md = md;
    return IFPP_OK;
}

ifpp_err crypto_sha256_update(crypto_sha256_ctx *ctx, const void *data, size_t n)
{
    if (!ctx || !ctx->md || (!data && n))
        return IFPP_E_ARG;
    return EVP_DigestUpdate(ctx->md, data, n) == 1 ? IFPP_OK : IFPP_E_CRYPTO;
}

ifpp_err crypto_sha256_final(crypto_sha256_ctx *ctx, uint8_t out[CRYPTO_SHA256_LEN])
{
    unsigned int len = 0;
    if (!ctx || !ctx->md || !out)
        return IFPP_E_ARG;
    int ok = EVP_DigestFinal_ex(ctx->md, out, &len);
    crypto_sha256_abort(ctx);
    return ok == 1 && len == CRYPTO_SHA256_LEN ? IFPP_OK : IFPP_E_CRYPTO;
}

void crypto_sha256_abort(crypto_sha256_ctx *ctx)
{
    if (ctx && ctx->md) {
        EVP_MD_CTX_free(ctx->md);
        ctx->md = NULL;
    }
}

ifpp_err crypto_random(void *buf, size_t n)
{
    if (!buf && n)
        return IFPP_E_ARG;
    return n == 0 || RAND_bytes(buf, (int)n) == 1 ? IFPP_OK : IFPP_E_CRYPTO;
}

bool crypto_equal_ct(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void crypto_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

/* ---- keys --------------------------------------------------------------------------- */

static ifpp_err crypto_key_wrap(EVP_PKEY *pkey, crypto_key **out)
{
    char group[64];
    size_t glen = 0;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
        !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen)) {
        EVP_PKEY_free(pkey);
        return IFPP_E_BAD_CURVE;
    }
    crypto_curve c;
    if (strcmp(group, curve_group[0]) == 0)
        c = CRYPTO_CURVE_P256;
    else if (strcmp(group, curve_group[1]) == 0)
        c = CRYPTO_CURVE_BRAINPOOLP256R1;
    else {
        EVP_PKEY_free(pkey);
        return IFPP_E_BAD_CURVE;
    }
    crypto_key *k = calloc(1, sizeof *k);
    if (!k) {
        EVP_PKEY_free(pkey);
        return IFPP_E_NOMEM;
    }
    k->pkey = pkey;
    k->curve = c;
    *out = k;
    return IFPP_OK;
}

static ifpp_err crypto_key_from_evp_owned(void *evp_pkey, crypto_key **out);

static bool crypto_curve_valid(crypto_curve c)
{
    return c == CRYPTO_CURVE_P256 || c == CRYPTO_CURVE_BRAINPOOLP256R1;
}

ifpp_err crypto_key_generate(crypto_curve c, crypto_key **out)
{
    if (!crypto_curve_valid(c) || !out)
        return IFPP_E_ARG;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve_group[c]);
    if (!pkey)
        return IFPP_E_CRYPTO;
    return crypto_key_wrap(pkey, out);
}

/* Builds an EVP_PKEY from OSSL_PARAMs (group + public point, and optionally the private scalar). */
static ifpp_err crypto_key_fromdata(crypto_curve c, const uint8_t *pub, size_t publen, const uint8_t *priv,
                                    crypto_key **out)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *d = NULL;
    ifpp_err e = IFPP_E_CRYPTO;

    if (!bld)
        return IFPP_E_NOMEM;
    if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve_group[c], 0))
        goto out;
    if (pub && !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, publen))
        goto out;
    if (priv) {
        d = BN_secure_new();
        if (!d || !BN_bin2bn(priv, CRYPTO_EC_PRIV_LEN, d) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d))
            goto out;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1)
        goto out;
    if (EVP_PKEY_fromdata(ctx, &pkey, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1) {
        e = IFPP_E_BAD_KEY;
        goto out;
    }
    e = crypto_key_wrap(pkey, out);
    pkey = NULL;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return e;
}

/* Checks that a key's point is on its curve (and, with a private half, that they match). */
static ifpp_err crypto_key_check(crypto_key *k, bool pair)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    int ok = ctx && (pair ? EVP_PKEY_pairwise_check(ctx) : EVP_PKEY_public_check(ctx)) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok ? IFPP_OK : IFPP_E_BAD_KEY;
}

ifpp_err crypto_key_from_private(crypto_curve c, const uint8_t d[CRYPTO_EC_PRIV_LEN], crypto_key **out)
{
    if (!crypto_curve_valid(c) || !d || !out)
        return IFPP_E_ARG;
    /* Derive the public point: OpenSSL wants it alongside the scalar for a usable key pair. */
    EC_GROUP *g = EC_GROUP_new_by_curve_name(c == CRYPTO_CURVE_P256 ? NID_X9_62_prime256v1 : NID_brainpoolP256r1);
    BIGNUM *bn = BN_secure_new();
    EC_POINT *q = g ? EC_POINT_new(g) : NULL;
    uint8_t pub[CRYPTO_EC_PUB_LEN];
    ifpp_err e = IFPP_E_CRYPTO;
    if (g && bn && q && BN_bin2bn(d, CRYPTO_EC_PRIV_LEN, bn) && !BN_is_zero(bn) &&
        BN_cmp(bn, EC_GROUP_get0_order(g)) < 0 && EC_POINT_mul(g, q, bn, NULL, NULL, NULL) &&
        EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof pub, NULL) == sizeof pub)
        e = crypto_key_fromdata(c, pub, sizeof pub, d, out);
    else if (g && bn && q)
        e = IFPP_E_BAD_KEY;
    EC_POINT_free(q);
    BN_clear_free(bn);
    EC_GROUP_free(g);
    return e;
}

ifpp_err crypto_key_from_public(crypto_curve c, const uint8_t *pub, size_t n, crypto_key **out)
{
    if (!crypto_curve_valid(c) || !pub || !out)
        return IFPP_E_ARG;
    if (n != CRYPTO_EC_PUB_LEN || pub[0] != 0x04)
        return IFPP_E_BAD_KEY;
    crypto_key *k = NULL;
    ifpp_err e = crypto_key_fromdata(c, pub, n, NULL, &k);
    if (e == IFPP_OK && (e = crypto_key_check(k, false)) != IFPP_OK) {
        crypto_key_free(k);
        k = NULL;
    }
    if (e == IFPP_OK)
        *out = k;
    return e;
}

ifpp_err crypto_key_from_spki(const uint8_t *der, size_t n, crypto_key **out)
{
    if (!der || !out || n > 4096)
        return IFPP_E_ARG;
    const unsigned char *p = der;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)n);
    if (!pkey)
        return IFPP_E_BAD_KEY;
    if (p != der + n) {
        EVP_PKEY_free(pkey);
        return IFPP_E_BAD_KEY;
    }
    crypto_key *k;
    ifpp_err e = crypto_key_wrap(pkey, &k);
    if (e != IFPP_OK)
        return e;
    if ((e = crypto_key_check(k, false)) != IFPP_OK) {
        crypto_key_free(k);
        return e;
    }
    *out = k;
    return IFPP_OK;
}

/* Fails every passphrase request: OpenSSL's default would prompt on the terminal (a station never waits on one). */
static int crypto_no_passphrase(char *buf, int size, int rwflag, void *asked)
{
    (void)buf, (void)size, (void)rwflag;
    *(bool *)asked = true;
    return -1;
}

#define CRYPTO_MAX_PEM 65536

ifpp_err crypto_key_load_pem_why(const char *path, crypto_key **out, char *why, size_t why_len)
{
    uint8_t *pem;
    size_t n;
    if (!path || !out)
        return IFPP_E_ARG;
    char open_why[512] = "";
    ifpp_err e = fs_read_private(path, CRYPTO_MAX_PEM, &pem, &n, open_why, sizeof open_why);
    bool too_open = e == IFPP_E_ARG;
    if (too_open) /* still fine for a public key: read it again without the owner-only rule */
        e = fs_read_all_why(path, CRYPTO_MAX_PEM, &pem, &n, why, why_len);
    else if (e != IFPP_OK)
        err_why(why, why_len, "%s", open_why);
    if (e != IFPP_OK)
        return e;
    bool is_private = memmem(pem, n, "PRIVATE KEY", 11) != NULL, asked = false;
    EVP_PKEY *pkey = NULL;
    if (too_open && is_private) {
        err_why(why, why_len, "%s", open_why);
        e = IFPP_E_ARG;
    } else {
        BIO *bio = BIO_new_mem_buf(pem, (int)n);
        if (bio && is_private)
            pkey = PEM_read_bio_PrivateKey(bio, NULL, crypto_no_passphrase, &asked);
        else if (bio)
            pkey = PEM_read_bio_PUBKEY(bio, NULL, crypto_no_passphrase, &asked);
        BIO_free(bio);
        e = pkey ? IFPP_OK : IFPP_E_BAD_KEY;
        if (!pkey && asked)
            err_why(why, why_len, "%s: the key is encrypted; the station never asks for a passphrase "
                                  "(store it unencrypted, mode 0600, or behind a token)", path);
        else if (!pkey)
            err_why(why, why_len, "%s: no PEM %s key in it", path, is_private ? "private" : "public");
    }
    crypto_wipe(pem, n);
    free(pem);
    if (e != IFPP_OK)
        return e;
    if ((e = crypto_key_from_evp_owned(pkey, out)) != IFPP_OK)
        err_why(why, why_len, "%s: %s", path, err_str(e));
    return e;
}

ifpp_err crypto_key_load_pem(const char *path, crypto_key **out)
{
    return crypto_key_load_pem_why(path, out, NULL, 0);
}

/* Wraps an EVP_PKEY whose reference the caller hands over, after checking the key. */
static ifpp_err crypto_key_from_evp_owned(void *evp_pkey, crypto_key **out)
{
    crypto_key *k;
    ifpp_err e = crypto_key_wrap(evp_pkey, &k);
    if (e != IFPP_OK)
        return e;
    if ((e = crypto_key_check(k, crypto_key_has_private(k))) != IFPP_OK) {
        crypto_key_free(k);
        return e;
    }
    *out = k;
    return IFPP_OK;
}

ifpp_err crypto_key_from_evp(void *evp_pkey, crypto_key **out)
{
    if (!evp_pkey || !out)
        return IFPP_E_ARG;
    if (EVP_PKEY_up_ref(evp_pkey) != 1)
        return IFPP_E_CRYPTO;
    return crypto_key_from_evp_owned(evp_pkey, out);
}

/* Writes a key through a PEM writer into memory, then atomically to path. */
static ifpp_err crypto_key_save(const crypto_key *k, const char *path, bool private_half, mode_t mode)
{
    if (!k || !path || (private_half && !crypto_key_has_private(k)))
        return IFPP_E_ARG;
    BIO *mem = BIO_new(BIO_s_secmem());
    if (!mem)
        return IFPP_E_NOMEM;
    int ok = private_half ? PEM_write_bio_PrivateKey(mem, k->pkey, NULL, NULL, 0, NULL, NULL)
                          : PEM_write_bio_PUBKEY(mem, k->pkey);
    char *data = NULL;
    long n = BIO_get_mem_data(mem, &data);
    ifpp_err e = ok && n > 0 ? fs_write_atomic(path, data, (size_t)n, mode) : IFPP_E_CRYPTO;
    BIO_free(mem); /* secure memory: cleansed on free */
    return e;
}

ifpp_err crypto_key_save_private_pem(const crypto_key *k, const char *path)
{
    return crypto_key_save(k, path, true, 0600);
}

ifpp_err crypto_key_save_public_pem(const crypto_key *k, const char *path)
{
    return crypto_key_save(k, path, false, 0644);
}

ifpp_err crypto_key_public(const crypto_key *k, uint8_t out[CRYPTO_EC_PUB_LEN])
{
    size_t n = 0;
    if (!k || !out)
        return IFPP_E_ARG;
    if (!EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out, CRYPTO_EC_PUB_LEN, &n) ||
        n != CRYPTO_EC_PUB_LEN)
        return IFPP_E_CRYPTO;
    return IFPP_OK;
}

crypto_curve crypto_key_curve(const crypto_key *k) { return k->curve; }

bool crypto_key_has_private(const crypto_key *k)
{
    BIGNUM *d = NULL;
    if (!k || !EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d))
        return false;
    /* zero is no scalar: OpenSSL reports it for a token's key whose scalar stays in the token (agent/p11key.c) */
    bool has = !BN_is_zero(d);
    BN_clear_free(d);
    return has;
}

void *crypto_key_evp(const crypto_key *k) { return k ? k->pkey : NULL; }

void crypto_key_free(crypto_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

/* ---- ECDSA ----------------------------------------------------------------------- */

/*
 * Reads one DER INTEGER at *p (end bound) that must be positive, minimal and fit 32 bytes;
 * writes it left-padded into out[32].
 */
static ifpp_err crypto_der_read_uint256(const uint8_t **p, const uint8_t *end, uint8_t out[32])
{
    const uint8_t *q = *p;
    if (end - q < 2 || q[0] != 0x02)
        return IFPP_E_BAD_SIGNATURE_FORMAT;
    size_t len = q[1];
    q += 2;
    if (len == 0 || len > 33 || (size_t)(end - q) < len)
        return IFPP_E_BAD_SIGNATURE_FORMAT;
    if (q[0] & 0x80) /* negative */
        return IFPP_E_BAD_SIGNATURE_FORMAT;
    if (len > 1 && q[0] == 0 && !(q[1] & 0x80)) /* non-minimal */
        return IFPP_E_BAD_SIGNATURE_FORMAT;
    const uint8_t *v = q;
    size_t vlen = len;
    if (v[0] == 0 && vlen > 1) {
        v++;
        vlen--;
    }
    if (vlen > 32)
        return IFPP_E_BAD_SIGNATURE_FORMAT;
    memset(out, 0, 32);
    memcpy(out + 32 - vlen, v, vlen);
    *p = q + len;
    return IFPP_OK;
}

/* True if 0 < x < n (big-endian, 32 bytes). */
static bool crypto_in_range(const uint8_t x[32], const uint8_t n[32])
{
    static const uint8_t zero[32];
    return memcmp(x, zero, 32) != 0 && memcmp(x, n, 32) < 0;
}

/* Strict DER to r||s, range-checked against the largest of our two orders (the caller's key checks the rest). */
ifpp_err crypto_sig_der_to_raw(const uint8_t *der, size_t n, uint8_t raw[CRYPTO_SIG_RAW_LEN])
{
    if (!der || !raw)
        return IFPP_E_ARG;
    /* SEQUENCE with a short-form length: at most 2 + 2*35 = 72 bytes, so never long form. */
    if (n < 8 || n > CRYPTO_SIG_DER_MAX || der[0] != 0x30 || der[1] != n - 2)
        return IFPP_E_BAD_SIGNATURE_FORMAT;
    const uint8_t *p = der + 2, *end = der + n;
    uint8_t r[32], s[32];
    ifpp_err e = crypto_der_read_uint256(&p, end, r);
    if (e == IFPP_OK)
        e = crypto_der_read_uint256(&p, end, s);
    if (e != IFPP_OK)
        return e;
    if (p != end)
        return IFPP_E_BAD_SIGNATURE_FORMAT;
    /* brainpoolP256r1's order is below P-256's, so this is the loosest bound common to both. */
    if (!crypto_in_range(r, curve_order[0]) || !crypto_in_range(s, curve_order[0]))
        return IFPP_E_BAD_SIGNATURE_FORMAT;
    memcpy(raw, r, 32);
    memcpy(raw + 32, s, 32);
    return IFPP_OK;
}

static size_t crypto_der_put_uint256(const uint8_t v[32], uint8_t *out)
{
    size_t skip = 0;
    while (skip < 31 && v[skip] == 0)
        skip++;
    size_t len = 32 - skip, pad = v[skip] & 0x80 ? 1 : 0;
    out[0] = 0x02;
    out[1] = (uint8_t)(len + pad);
    out[2] = 0;
    memcpy(out + 2 + pad, v + skip, len);
    return 2 + pad + len;
}

ifpp_err crypto_sig_raw_to_der(const uint8_t raw[CRYPTO_SIG_RAW_LEN], uint8_t *der, size_t *n)
{
    uint8_t tmp[CRYPTO_SIG_DER_MAX];
    if (!raw || !der || !n)
        return IFPP_E_ARG;
    size_t len = crypto_der_put_uint256(raw, tmp + 2);
    len += crypto_der_put_uint256(raw + 32, tmp + 2 + len);
    tmp[0] = 0x30;
    tmp[1] = (uint8_t)len;
    if (len + 2 > *n)
        return IFPP_E_RANGE;
    memcpy(der, tmp, len + 2);
    *n = len + 2;
    return IFPP_OK;
}

/* A DER signature out in the caller's format. */
static ifpp_err crypto_sig_out(const uint8_t *der, size_t der_len, crypto_sig_format fmt, uint8_t *sig, size_t *siglen)
{
    if (fmt == CRYPTO_SIG_RAW) {
        if (*siglen < CRYPTO_SIG_RAW_LEN)
            return IFPP_E_RANGE;
        ifpp_err e = crypto_sig_der_to_raw(der, der_len, sig);
        if (e != IFPP_OK)
            return IFPP_E_CRYPTO;
        *siglen = CRYPTO_SIG_RAW_LEN;
        return IFPP_OK;
    }
    if (*siglen < der_len)
        return IFPP_E_RANGE;
    memcpy(sig, der, der_len);
    *siglen = der_len;
    return IFPP_OK;
}

ifpp_err crypto_ecdsa_sign(const crypto_key *k, const void *msg, size_t n, crypto_sig_format fmt, uint8_t *sig,
                           size_t *siglen)
{
    uint8_t der[CRYPTO_SIG_DER_MAX + 8];
    size_t der_len = sizeof der;
    if (!k || (!msg && n) || !sig || !siglen)
        return IFPP_E_ARG;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return IFPP_E_NOMEM;
    int ok = EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, k->pkey, NULL) == 1 &&
             EVP_DigestSign(md, der, &der_len, msg, n) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        return IFPP_E_CRYPTO;
    return crypto_sig_out(der, der_len, fmt, sig, siglen);
}

ifpp_err crypto_ecdsa_sign_digest(const crypto_key *k, const uint8_t digest[CRYPTO_SHA256_LEN], crypto_sig_format fmt,
                                  uint8_t *sig, size_t *siglen)
{
    uint8_t der[CRYPTO_SIG_DER_MAX + 8];
    size_t der_len = sizeof der;
    if (!k || !digest || !sig || !siglen)
        return IFPP_E_ARG;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(k->pkey, NULL);
    if (!pc)
        return IFPP_E_NOMEM;
    int ok = EVP_PKEY_sign_init(pc) == 1 && EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
             EVP_PKEY_sign(pc, der, &der_len, digest, CRYPTO_SHA256_LEN) == 1;
    EVP_PKEY_CTX_free(pc);
    if (!ok)
        return IFPP_E_CRYPTO;
    return crypto_sig_out(der, der_len, fmt, sig, siglen);
}

/* Normalises a signature of either form to strict DER, range-checked for k's curve. */
static ifpp_err crypto_sig_normalise(const crypto_key *k, crypto_sig_format fmt, const uint8_t *sig, size_t siglen,
                                    uint8_t der[CRYPTO_SIG_DER_MAX], size_t *der_len)
{
    uint8_t raw[CRYPTO_SIG_RAW_LEN];
    ifpp_err e;
    /* Both forms go through the strict parser: one acceptance rule for both. */
    if (fmt == CRYPTO_SIG_RAW) {
        if (siglen != CRYPTO_SIG_RAW_LEN)
            return IFPP_E_BAD_SIGNATURE_FORMAT;
        memcpy(raw, sig, sizeof raw);
    } else if ((e = crypto_sig_der_to_raw(sig, siglen, raw)) != IFPP_OK) {
        return e;
    }
    const uint8_t *order = curve_order[k->curve];
    if (!crypto_in_range(raw, order) || !crypto_in_range(raw + 32, order))
        return fmt == CRYPTO_SIG_RAW ? IFPP_E_SIGNATURE : IFPP_E_BAD_SIGNATURE_FORMAT;
    *der_len = CRYPTO_SIG_DER_MAX;
    return crypto_sig_raw_to_der(raw, der, der_len);
}

ifpp_err crypto_ecdsa_verify(const crypto_key *k, const void *msg, size_t n, crypto_sig_format fmt,
                             const uint8_t *sig, size_t siglen)
{
    uint8_t digest[CRYPTO_SHA256_LEN];
    if (!k || (!msg && n) || !sig)
        return IFPP_E_ARG;
    ifpp_err e = crypto_sha256(msg, n, digest);
    return e == IFPP_OK ? crypto_ecdsa_verify_digest(k, digest, fmt, sig, siglen) : e;
}

ifpp_err crypto_ecdsa_verify_digest(const crypto_key *k, const uint8_t digest[CRYPTO_SHA256_LEN], crypto_sig_format fmt,
                                    const uint8_t *sig, size_t siglen)
{
    uint8_t der[CRYPTO_SIG_DER_MAX];
    size_t der_len;
    if (!k || !digest || !sig)
        return IFPP_E_ARG;
    ifpp_err e = crypto_sig_normalise(k, fmt, sig, siglen, der, &der_len);
    if (e != IFPP_OK)
        return e;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    int rc = -1;
    if (ctx && EVP_PKEY_verify_init(ctx) == 1)
        rc = EVP_PKEY_verify(ctx, der, der_len, digest, CRYPTO_SHA256_LEN);
    EVP_PKEY_CTX_free(ctx);
    if (rc == 1)
        return IFPP_OK;
    return rc == 0 ? IFPP_E_SIGNATURE : IFPP_E_CRYPTO;
}

/* ---- ECKA, KDF --------------------------------------------------------------------- */

ifpp_err crypto_ecka(const crypto_key *mine, const crypto_key *peer, uint8_t shs[CRYPTO_EC_SECRET_LEN])
{
    if (!mine || !peer || !shs || !crypto_key_has_private(mine))
        return IFPP_E_ARG;
    if (mine->curve != peer->curve)
        return IFPP_E_CURVE_MISMATCH;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, mine->pkey, NULL);
    size_t len = CRYPTO_EC_SECRET_LEN;
    int ok = ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer_ex(ctx, peer->pkey, 1) == 1 &&
             EVP_PKEY_derive(ctx, shs, &len) == 1 && len == CRYPTO_EC_SECRET_LEN;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        crypto_wipe(shs, CRYPTO_EC_SECRET_LEN);
        return IFPP_E_CRYPTO;
    }
    return IFPP_OK;
}

ifpp_err crypto_kdf_x963_sha256(const uint8_t *z, size_t zlen, const uint8_t *info, size_t infolen, uint8_t *out,
                                size_t outlen)
{
    if ((!z && zlen) || (!info && infolen) || (!out && outlen))
        return IFPP_E_ARG;
    if (outlen > 32u * 0xFFFFu) /* far beyond any use; keeps the counter from wrapping */
        return IFPP_E_RANGE;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return IFPP_E_NOMEM;
    ifpp_err e = IFPP_OK;
    uint8_t block[CRYPTO_SHA256_LEN];
    for (uint32_t counter = 1; outlen > 0 && e == IFPP_OK; counter++) {
        uint8_t ctr[4] = {(uint8_t)(counter >> 24), (uint8_t)(counter >> 16), (uint8_t)(counter >> 8),
                          (uint8_t)counter};
        unsigned int blen = 0;
        if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(md, z, zlen) != 1 ||
            EVP_DigestUpdate(md, ctr, 4) != 1 || EVP_DigestUpdate(md, info, infolen) != 1 ||
            EVP_DigestFinal_ex(md, block, &blen) != 1) {
            e = IFPP_E_CRYPTO;
            break;
        }
        size_t take = outlen < sizeof block ? outlen : sizeof block;
        memcpy(out, block, take);
        out += take;
        outlen -= take;
    }
    crypto_wipe(block, sizeof block);
    EVP_MD_CTX_free(md);
    return e;
}

/* ---- AES-128 -------------------------------------------------------------------- */

static ifpp_err crypto_aes128_cbc(const uint8_t key[16], const uint8_t iv[16], const uint8_t *in, size_t n,
                                  uint8_t *out, int enc)
{
    if (!key || !iv || (!in && n) || (!out && n) || n % CRYPTO_AES_BLOCK || n > INT32_MAX)
        return IFPP_E_ARG;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return IFPP_E_NOMEM;
    int len1 = 0, len2 = 0;
    int ok = EVP_CipherInit_ex2(ctx, EVP_aes_128_cbc(), key, iv, enc, NULL) == 1 &&
             EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 && EVP_CipherUpdate(ctx, out, &len1, in, (int)n) == 1 &&
             EVP_CipherFinal_ex(ctx, out + len1, &len2) == 1 && (size_t)(len1 + len2) == n;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? IFPP_OK : IFPP_E_CRYPTO;
}

ifpp_err crypto_aes128_encrypt_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    static const uint8_t zero_iv[16];
    /* CBC with a zero IV over one block is ECB over that block. */
    return crypto_aes128_cbc(key, zero_iv, in, 16, out, 1);
}

ifpp_err crypto_aes128_cbc_encrypt(const uint8_t key[16], const uint8_t iv[16], const uint8_t *in, size_t n,
                                   uint8_t *out)
{
    return crypto_aes128_cbc(key, iv, in, n, out, 1);
}

ifpp_err crypto_aes128_cbc_decrypt(const uint8_t key[16], const uint8_t iv[16], const uint8_t *in, size_t n,
                                   uint8_t *out)
{
    return crypto_aes128_cbc(key, iv, in, n, out, 0);
}

ifpp_err crypto_aes128_cmac(const uint8_t key[16], const uint8_t *p1, size_t n1, const uint8_t *p2, size_t n2,
                            const uint8_t *p3, size_t n3, uint8_t out[16])
{
    if (!key || !out || (!p1 && n1) || (!p2 && n2) || (!p3 && n3))
        return IFPP_E_ARG;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    char cipher[] = "AES-128-CBC";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0), OSSL_PARAM_END};
    size_t len = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, 16, params) == 1 && (n1 == 0 || EVP_MAC_update(ctx, p1, n1) == 1) &&
             (n2 == 0 || EVP_MAC_update(ctx, p2, n2) == 1) && (n3 == 0 || EVP_MAC_update(ctx, p3, n3) == 1) &&
             EVP_MAC_final(ctx, out, &len, 16) == 1 && len == 16;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? IFPP_OK : IFPP_E_CRYPTO;
}
