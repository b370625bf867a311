/* import.c -- eUICC data package and BPP vault import; see import.h and docs/ifpp.asn. */
#include "import.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bundle.h"
#include "crypto.h"
#include "hex.h"
#include "tlv.h"

typedef struct {
    const bundle_view *v;
    const cert *ci;
    import_summary *sum;
    char *why;
    size_t why_len;
    const uint8_t *bundle;
    size_t bundle_len;
} import_ctx;

/* Enters the bundle content and returns a reader positioned after version and id; id gets the id. */
static ifpp_err import_head(const bundle_view *v, tlv_reader *r, tlv *id)
{
    tlv top, f;
    tlv_reader outer;
    ifpp_err e;
    uint64_t version;
    if ((e = tlv_parse_exact(v->content, v->content_len, TLV_DER, &top)) != IFPP_OK)
        return e;
    tlv_reader_init(&outer, v->content, v->content_len, TLV_DER);
    if ((e = tlv_reader_enter(&outer, &top, r)) != IFPP_OK || (e = tlv_reader_expect(r, 0x02, &f)) != IFPP_OK ||
        (e = tlv_get_uint(&f, &version)) != IFPP_OK || (e = tlv_reader_expect(r, 0x04, id)) != IFPP_OK)
        return e;
    if (version != 1 || id->len != 16)
        return IFPP_E_RANGE;
    return IFPP_OK;
}

/* One eUICC record: certificate under the signing EUM, naming this EID; every key's proof. */
static ifpp_err import_euicc_record(store *s, import_ctx *c, const tlv_reader *parent, const tlv *rec, size_t index)
{
    tlv eid, ec, info2, keys, k, otpk, proof;
    tlv_reader r, kr, pr;
    cert *euicc = NULL;
    crypto_key *key = NULL;
    char eid_hex[33] = "?";
    ifpp_err e;

    if ((e = tlv_reader_enter(parent, rec, &r)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x5A, &eid)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x30, &ec)) != IFPP_OK || (e = tlv_reader_expect(&r, 0xBF22, &info2)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x30, &keys)) != IFPP_OK || eid.len != 16) {
        err_why(c->why, c->why_len, "eUICC record %zu: malformed (%s)", index, err_str(e ? e : IFPP_E_RANGE));
        return e ? e : IFPP_E_RANGE;
    }
    hex_encode(eid.value, 16, eid_hex, sizeof eid_hex);
    const cert *eum[1] = {c->v->signer};
    char cwhy[256] = "";
    if ((e = cert_parse_der(ec.raw, ec.raw_len, &euicc)) == IFPP_OK)
        e = cert_verify_chain(c->ci, eum, 1, euicc, CERT_ROLE_EUICC, time(NULL), cwhy, sizeof cwhy);
    if (e == IFPP_OK && (!cert_subject_serial(euicc) || strcmp(cert_subject_serial(euicc), eid_hex) != 0)) {
        snprintf(cwhy, sizeof cwhy, "the certificate names another EID");
        e = IFPP_E_CERT_ROLE;
    }
    if (e == IFPP_OK)
        e = cert_public_key(euicc, &key);
    if (e != IFPP_OK) {
        err_why(c->why, c->why_len, "eUICC %s: certificate not trusted: %s%s%s", eid_hex, err_str(e), *cwhy ? ": " : "",
                cwhy);
        goto out;
    }
    if ((e = store_add_euicc(s, eid.value, ec.raw, ec.raw_len, info2.raw, info2.raw_len)) != IFPP_OK) {
        err_why(c->why, c->why_len, "eUICC %s: already known with other data", eid_hex);
        goto out;
    }
    tlv_reader_enter(&r, &keys, &kr);
    while ((e = tlv_reader_next(&kr, &k)) == IFPP_OK) {
        uint8_t tbs[18 + 3 + CRYPTO_EC_PUB_LEN];
        if ((e = tlv_reader_enter(&kr, &k, &pr)) != IFPP_OK || (e = tlv_reader_expect(&pr, 0x5F49, &otpk)) != IFPP_OK ||
            (e = tlv_reader_expect(&pr, 0x5F37, &proof)) != IFPP_OK || otpk.len != CRYPTO_EC_PUB_LEN || proof.len != 64) {
            err_why(c->why, c->why_len, "eUICC %s: One-time Key record malformed", eid_hex);
            e = e ? e : IFPP_E_RANGE;
            goto out;
        }
        /* GENS12: the eUICC itself signed '5A 10 EID 5F49 41 otPK' */
        memcpy(tbs, eid.raw, 18);
        memcpy(tbs + 18, otpk.raw, otpk.raw_len);
        crypto_key *pt = NULL;
        if ((e = crypto_key_from_public(crypto_key_curve(key), otpk.value, otpk.len, &pt)) != IFPP_OK ||
            (e = crypto_ecdsa_verify(key, tbs, sizeof tbs, CRYPTO_SIG_RAW, proof.value, proof.len)) != IFPP_OK) {
            crypto_key_free(pt);
            err_why(c->why, c->why_len, "eUICC %s: a One-time Key's proof does not verify (GENS12): %s", eid_hex,
                    err_str(e));
            goto out;
        }
        crypto_key_free(pt);
        if ((e = store_add_otk(s, eid.value, otpk.value, proof.value)) != IFPP_OK)
            goto out;
        c->sum->keys++;
    }
    e = e == IFPP_E_TLV_END ? IFPP_OK : e;
    c->sum->added++;
out:
    crypto_key_free(key);
    cert_free(euicc);
    return e;
}

static ifpp_err import_euicc_tx(store *s, void *arg)
{
    import_ctx *c = arg;
    tlv_reader r, lr;
    tlv id, list, rec;
    ifpp_err e;
    if ((e = import_head(c->v, &r, &id)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x30, &list)) != IFPP_OK ||
        (e = tlv_reader_enter(&r, &list, &lr)) != IFPP_OK) {
        err_why(c->why, c->why_len, "eUICC data package: content malformed (%s)", err_str(e));
        return e;
    }
    const uint8_t *der;
    size_t der_len;
    cert_der(c->v->signer, &der, &der_len);
    if ((e = store_add_eum_cert(s, der, der_len)) != IFPP_OK)
        return e;
    while ((e = tlv_reader_next(&lr, &rec)) == IFPP_OK)
        if ((e = import_euicc_record(s, c, &lr, &rec, ++c->sum->records)) != IFPP_OK)
            return e;
    return e == IFPP_E_TLV_END ? IFPP_OK : e;
}

ifpp_err import_euicc_data(store *s, const uint8_t *buf, size_t n, const cert *ci, import_summary *sum, char *why,
                           size_t why_len)
{
    bundle_view v;
    memset(sum, 0, sizeof *sum);
    ifpp_err e = bundle_open(buf, n, BUNDLE_EUICC_DATA, ci, time(NULL), &v, why, why_len);
    if (e != IFPP_OK)
        return e;
    import_ctx c = {.v = &v, .ci = ci, .sum = sum, .why = why, .why_len = why_len};
    e = store_transaction(s, import_euicc_tx, &c);
    bundle_view_free(&v);
    return e;
}

/* One vault item: hash, eUICC and key known, then stored available. */
static ifpp_err import_vault_item(store *s, import_ctx *c, const tlv_reader *parent, const tlv *item,
                                  const char *vault_id, size_t index)
{
    tlv tx, eid, otpk, iccid, type, hash, bpp;
    tlv_reader r;
    store_bpp b;
    uint8_t h[32];
    ifpp_err e;
    if ((e = tlv_reader_enter(parent, item, &r)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x80, &tx)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x5A, &eid)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x5F49, &otpk)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x81, &iccid)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x0C, &type)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x82, &hash)) != IFPP_OK || (e = tlv_reader_expect(&r, 0xBF36, &bpp)) != IFPP_OK ||
        tx.len == 0 || tx.len > 16 || eid.len != 16 || otpk.len != 65 || iccid.len != 10 || hash.len != 32 ||
        type.len >= sizeof b.profile_type) {
        err_why(c->why, c->why_len, "vault item %zu: malformed (%s)", index, err_str(e ? e : IFPP_E_RANGE));
        return e ? e : IFPP_E_RANGE;
    }
    if ((e = crypto_sha256(bpp.raw, bpp.raw_len, h)) != IFPP_OK || !crypto_equal_ct(h, hash.value, 32)) {
        err_why(c->why, c->why_len, "vault item %zu: the BPP does not match its hash (altered)", index);
        return IFPP_E_SIGNATURE;
    }
    if (!store_has_otk(s, eid.value, otpk.value)) {
        char eh[33];
        hex_encode(eid.value, 16, eh, sizeof eh);
        err_why(c->why, c->why_len, "vault item %zu: BPP for eUICC %s is bound to a One-time Key this station does "
                "not know (import the eUICC data package first)", index, eh);
        return IFPP_E_ARG;
    }
    memset(&b, 0, sizeof b);
    memcpy(b.transaction_id, tx.value, tx.len);
    b.transaction_id_len = tx.len;
    memcpy(b.eid, eid.value, 16);
    memcpy(b.otpk, otpk.value, 65);
    memcpy(b.iccid, iccid.value, 10);
    memcpy(b.profile_type, type.value, type.len);
    memcpy(b.bpp_hash, hash.value, 32);
    b.bpp = bpp.raw;
    b.bpp_len = bpp.raw_len;
    snprintf(b.vault_id, sizeof b.vault_id, "%s", vault_id);
    bool dup = false;
    char bwhy[256] = "";
    if ((e = store_add_bpp(s, &b, &dup, bwhy, sizeof bwhy)) != IFPP_OK) {
        err_why(c->why, c->why_len, "vault item %zu: %s", index, *bwhy ? bwhy : err_str(e));
        return e;
    }
    if (dup)
        c->sum->duplicate++;
    else
        c->sum->added++;
    return IFPP_OK;
}

static ifpp_err import_vault_tx(store *s, void *arg)
{
    import_ctx *c = arg;
    tlv_reader r, lr;
    tlv id, pb, list, item, sub;
    char vault_id[33];
    uint8_t bundle_hash[32];
    ifpp_err e;
    if ((e = import_head(c->v, &r, &id)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x30, &pb)) != IFPP_OK) {
        err_why(c->why, c->why_len, "BPP vault: content malformed (%s)", err_str(e));
        return e;
    }
    (void)tlv_reader_expect(&r, 0xA1, &sub); /* sub-CAs: forwarded later, not needed to store */
    if ((e = tlv_reader_expect(&r, 0x30, &list)) != IFPP_OK || (e = tlv_reader_enter(&r, &list, &lr)) != IFPP_OK) {
        err_why(c->why, c->why_len, "BPP vault: item list malformed (%s)", err_str(e));
        return e;
    }
    /* The binding certificate must chain to the same CI the eUICCs trust, or no eUICC will take these BPPs. */
    cert *pbc = NULL;
    char cwhy[256] = "";
    if ((e = cert_parse_der(pb.raw, pb.raw_len, &pbc)) == IFPP_OK)
        e = cert_verify_chain(c->ci, NULL, 0, pbc, CERT_ROLE_DPF_PB, time(NULL), cwhy, sizeof cwhy);
    cert_free(pbc);
    if (e != IFPP_OK) {
        err_why(c->why, c->why_len, "BPP vault: SM-DPf binding certificate not trusted: %s%s%s", err_str(e),
                *cwhy ? ": " : "", cwhy);
        return e;
    }
    hex_encode(id.value, 16, vault_id, sizeof vault_id);
    crypto_sha256(c->bundle, c->bundle_len, bundle_hash);
    bool known = false;
    if ((e = store_add_vault(s, vault_id, pb.raw, pb.raw_len, bundle_hash, &known)) != IFPP_OK) {
        err_why(c->why, c->why_len, "BPP vault %s: a different vault with this id was imported before", vault_id);
        return e;
    }
    while ((e = tlv_reader_next(&lr, &item)) == IFPP_OK)
        if ((e = import_vault_item(s, c, &lr, &item, vault_id, ++c->sum->records)) != IFPP_OK)
            return e;
    return e == IFPP_E_TLV_END ? IFPP_OK : e;
}

ifpp_err import_vault(store *s, const uint8_t *buf, size_t n, const cert *ci, import_summary *sum, char *why,
                      size_t why_len)
{
    bundle_view v;
    memset(sum, 0, sizeof *sum);
    ifpp_err e = bundle_open(buf, n, BUNDLE_BPP_VAULT, ci, time(NULL), &v, why, why_len);
    if (e != IFPP_OK)
        return e;
    import_ctx c = {.v = &v, .ci = ci, .sum = sum, .why = why, .why_len = why_len, .bundle = buf, .bundle_len = n};
    e = store_transaction(s, import_vault_tx, &c);
    bundle_view_free(&v);
    return e;
}
