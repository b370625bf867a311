/*
 * vaultgen.c -- big BPP vaults fast (see vaultgen.h): one real BPP, n items, sealed streaming.
 */
#include "vaultgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "crypto.h"
#include "smdpf.h"
#include "store.h"
#include "testpki.h"

#define VG_KEYS_PER_EUICC 1000
#define VG_TYPE "bulk"

/* out = SHA-256(label || path || be64(i)): the generator's deterministic values. */
static void vg_derive(const char *label, const char *path, uint64_t i, uint8_t out[32])
{
    crypto_sha256_ctx c = {0};
    uint8_t be[8];
    for (int k = 0; k < 8; k++)
        be[k] = (uint8_t)(i >> (56 - 8 * k));
    crypto_sha256_init(&c);
    crypto_sha256_update(&c, label, strlen(label) + 1);
    crypto_sha256_update(&c, path, strlen(path) + 1);
    crypto_sha256_update(&c, be, 8);
    crypto_sha256_final(&c, out);
}

void vaultgen_txid(const char *path, size_t i, uint8_t txid[16])
{
    uint8_t h[32];
    vg_derive("txid", path, i, h);
    memcpy(txid, h, 16);
}

static void vg_eid(const char *path, size_t i, uint8_t eid[16])
{
    uint8_t h[32];
    vg_derive("eid", path, i / VG_KEYS_PER_EUICC, h);
    memcpy(eid, h, 16);
}

static void vg_otpk(const char *path, size_t i, uint8_t otpk[65])
{
    otpk[0] = 0x04;
    vg_derive("otpk-x", path, i, otpk + 1);
    vg_derive("otpk-y", path, i, otpk + 33);
}

uint64_t vaultgen_item_of(const uint8_t *bpp, size_t n)
{
    uint64_t v = 0;
    for (size_t k = n - 8; n >= 8 && k < n; k++)
        v = v << 8 | bpp[k];
    return v;
}

typedef struct {
    const char *path;
    size_t n;
} vg_keys;

static ifpp_err vg_keys_tx(store *s, void *arg)
{
    vg_keys *a = arg;
    static const uint8_t der[2] = {0x30, 0x00}, info2[3] = {0xBF, 0x22, 0x00};
    uint8_t eid[16], otpk[65], proof[64] = {0};
    ifpp_err e = IFPP_OK;
    for (size_t i = 0; i < a->n && e == IFPP_OK; i++) {
        vg_eid(a->path, i, eid);
        if (i % VG_KEYS_PER_EUICC == 0 && (e = store_add_euicc(s, eid, der, sizeof der, info2, sizeof info2)) != IFPP_OK)
            break;
        vg_otpk(a->path, i, otpk);
        e = store_add_otk(s, eid, otpk, proof);
    }
    return e;
}

/* A DER header: tag (1 or 2 bytes) and the length in the shortest form. */
static size_t vg_header(uint32_t tag, uint64_t len, uint8_t out[8])
{
    size_t n = 0;
    if (tag > 0xFF)
        out[n++] = (uint8_t)(tag >> 8);
    out[n++] = (uint8_t)tag;
    if (len < 0x80) {
        out[n++] = (uint8_t)len;
        return n;
    }
    int octets = len > 0xFFFFFF ? 4 : len > 0xFFFF ? 3 : len > 0xFF ? 2 : 1;
    out[n++] = (uint8_t)(0x80 | octets);
    for (int k = octets - 1; k >= 0; k--)
        out[n++] = (uint8_t)(len >> (8 * k));
    return n;
}

static uint64_t vg_tlv_size(uint32_t tag, uint64_t len)
{
    uint8_t h[8];
    return vg_header(tag, len, h) + len;
}

typedef struct {
    FILE *f;
    crypto_sha256_ctx h;
    bool hashing;
    bool failed;
} vg_out;

static void vg_emit(vg_out *o, const void *p, size_t n)
{
    if (fwrite(p, 1, n, o->f) != n)
        o->failed = true;
    if (o->hashing)
        crypto_sha256_update(&o->h, p, n);
}

static void vg_tlv_head(vg_out *o, uint32_t tag, uint64_t len)
{
    uint8_t h[8];
    vg_emit(o, h, vg_header(tag, len, h));
}

static void vg_tlv(vg_out *o, uint32_t tag, const void *v, size_t n)
{
    vg_tlv_head(o, tag, n);
    vg_emit(o, v, n);
}

int vaultgen_make(const test_line *L, size_t n, size_t profile_size, const char *path, char *why, size_t why_len)
{
    cert *pb = NULL, *auth = NULL;
    crypto_key *pb_key = NULL, *auth_key = NULL, *euicc = NULL;
    uint8_t *bpp = NULL, *item_bpp = NULL;
    size_t bpp_len = 0;
    store *s = NULL;
    vg_out o = {0};
    int rc = -1;
    ifpp_err e;
    if ((e = testpki_load(L->pki, "dpf-pb", &pb, &pb_key)) != IFPP_OK ||
        (e = testpki_load(L->pki, "dpf-auth", &auth, &auth_key)) != IFPP_OK) {
        err_why(why, why_len, "vaultgen: the line's SM-DPf PKI: %s", err_str(e));
        goto out;
    }
    /* one real BPP, bound to a throw-away key: the shape import checks, bytes no card will see */
    uint8_t otpk[65], eid[16], txid[16], iccid[10];
    if ((e = crypto_key_generate(crypto_key_curve(pb_key), &euicc)) != IFPP_OK ||
        (e = crypto_key_public(euicc, otpk)) != IFPP_OK || (e = smdpf_random_iccid(iccid)) != IFPP_OK) {
        err_why(why, why_len, "vaultgen: a key for the template BPP: %s", err_str(e));
        goto out;
    }
    vg_eid(path, 0, eid);
    vaultgen_txid(path, 0, txid);
    smdpf_bpp_params p = {.dpf_pb_key = pb_key, .euicc_otpk = otpk, .curve = crypto_key_curve(pb_key), .eid = eid,
                          .transaction_id = txid, .transaction_id_len = 16, .iccid = iccid,
                          .service_provider = "bulk", .profile_name = "bulk test profile",
                          .content_len = profile_size};
    if ((e = smdpf_make_bpp(&p, &bpp, &bpp_len)) != IFPP_OK || bpp_len < 64 || !(item_bpp = malloc(bpp_len))) {
        err_why(why, why_len, "vaultgen: binding the template BPP: %s", err_str(e ? e : IFPP_E_NOMEM));
        goto out;
    }
    memcpy(item_bpp, bpp, bpp_len);
    /* the keys, straight into the store, in one transaction */
    vg_keys k = {.path = path, .n = n};
    if ((e = store_open(L->db, &s, why, why_len)) != IFPP_OK || (e = store_transaction(s, vg_keys_tx, &k)) != IFPP_OK) {
        if (s)
            err_why(why, why_len, "vaultgen: One-time Keys into %s: %s", L->db, store_errmsg(s));
        goto out;
    }
    /* the sizes first (DER lengths come before what they measure), then one streaming pass */
    const uint8_t *pb_der, *auth_der;
    size_t pb_der_len, auth_der_len;
    cert_der(pb, &pb_der, &pb_der_len);
    cert_der(auth, &auth_der, &auth_der_len);
    uint64_t item_len = vg_tlv_size(0x80, 16) + vg_tlv_size(0x5A, 16) + vg_tlv_size(0x5F49, 65) +
                        vg_tlv_size(0x81, 10) + vg_tlv_size(0x0C, strlen(VG_TYPE)) + vg_tlv_size(0x82, 32) + bpp_len;
    uint64_t items_len = (uint64_t)n * vg_tlv_size(0x30, item_len);
    uint64_t content_len = vg_tlv_size(0x02, 1) + vg_tlv_size(0x04, 16) + pb_der_len + vg_tlv_size(0x30, items_len);
    uint64_t wrapped_len = vg_tlv_size(0x30, content_len);
    uint8_t oid[32];
    size_t oid_n = bundle_type_oid(BUNDLE_BPP_VAULT, oid, sizeof oid);
    uint64_t outer_len = vg_tlv_size(0x06, oid_n) + vg_tlv_size(0xA0, wrapped_len) + vg_tlv_size(0xA1, auth_der_len) +
                         vg_tlv_size(0x5F37, CRYPTO_SIG_RAW_LEN);
    if (!(o.f = fopen(path, "wb")) || crypto_sha256_init(&o.h) != IFPP_OK) {
        err_why(why, why_len, "vaultgen: cannot write %s", path);
        goto out;
    }
    setvbuf(o.f, NULL, _IOFBF, 1u << 20);
    vg_tlv_head(&o, 0x30, outer_len);
    vg_tlv(&o, 0x06, oid, oid_n);
    o.hashing = true; /* the signature covers the [0] TLV as written */
    vg_tlv_head(&o, 0xA0, wrapped_len);
    vg_tlv_head(&o, 0x30, content_len);
    vg_tlv(&o, 0x02, "\x01", 1);
    uint8_t vault_id[32];
    vg_derive("vault", path, 0, vault_id);
    vg_tlv(&o, 0x04, vault_id, 16);
    vg_emit(&o, pb_der, pb_der_len);
    vg_tlv_head(&o, 0x30, items_len);
    for (size_t i = 0; i < n && !o.failed; i++) {
        uint8_t h[32];
        for (int b = 0; b < 8; b++)
            item_bpp[bpp_len - 8 + (size_t)b] = (uint8_t)((uint64_t)i >> (56 - 8 * b));
        crypto_sha256(item_bpp, bpp_len, h);
        vaultgen_txid(path, i, txid);
        vg_eid(path, i, eid);
        vg_otpk(path, i, otpk);
        if ((e = smdpf_random_iccid(iccid)) != IFPP_OK)
            o.failed = true;
        vg_tlv_head(&o, 0x30, item_len);
        vg_tlv(&o, 0x80, txid, 16);
        vg_tlv(&o, 0x5A, eid, 16);
        vg_tlv(&o, 0x5F49, otpk, 65);
        vg_tlv(&o, 0x81, iccid, 10);
        vg_tlv(&o, 0x0C, VG_TYPE, strlen(VG_TYPE));
        vg_tlv(&o, 0x82, h, 32);
        vg_emit(&o, item_bpp, bpp_len);
    }
    o.hashing = false;
    uint8_t digest[32], sig[CRYPTO_SIG_RAW_LEN];
    size_t siglen = sizeof sig;
    if ((e = crypto_sha256_final(&o.h, digest)) != IFPP_OK ||
        (e = crypto_ecdsa_sign_digest(auth_key, digest, CRYPTO_SIG_RAW, sig, &siglen)) != IFPP_OK) {
        err_why(why, why_len, "vaultgen: signing: %s", err_str(e));
        goto out;
    }
    vg_tlv_head(&o, 0xA1, auth_der_len);
    vg_emit(&o, auth_der, auth_der_len);
    vg_tlv(&o, 0x5F37, sig, siglen);
    if (o.failed || fclose(o.f) != 0) {
        o.f = NULL;
        err_why(why, why_len, "vaultgen: writing %s failed", path);
        goto out;
    }
    o.f = NULL;
    rc = 0;
out:
    if (o.f)
        fclose(o.f);
    store_close(s);
    free(bpp);
    free(item_bpp);
    cert_free(pb);
    cert_free(auth);
    crypto_key_free(pb_key);
    crypto_key_free(auth_key);
    crypto_key_free(euicc);
    return rc;
}
