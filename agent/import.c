/*
 * import.c -- eUICC data package and BPP vault import; see import.h and docs/ifpp.asn.
 *
 * An eUICC data package is first verified whole (signer chain and signature, one hash pass, no
 * parsing, no store lock: bundle_stream_verify), its records then checked without the write lock, and
 * written in one transaction by a third pass over the same bytes. A BPP vault is read once (issue 16):
 * each item is checked as it passes and its BPP appended to the store's data file with its row staged
 * (store_bpp_stage_add, no write lock); the signature is verified over what was read, and only then
 * are the staged rows and the vault committed in one transaction. Memory is bounded by the largest
 * record (IMPORT_MAX_RECORD), not by the bundle.
 */
#include "import.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bundle_stream.h"
#include "crypto.h"
#include "es10.h"
#include "fsutil.h"
#include "hex.h"
#include "iccid.h"
#include "label.h"
#include "tlv.h"

#define IMPORT_MAX_RECORD (8u << 20) /* one BPP (a few hundred KiB at most) or one eUICC record */

typedef struct {
    bundle_stream *bs;
    const cert *ci;
    import_summary *sum;
    char *why;
    size_t why_len;
    const cert *signer; /* the bundle's signer, verified by the first pass */
    bool dry;           /* checking pass: parse and check everything, write nothing, no write lock */
    bool checked;       /* writing pass: the checking pass checked these very bytes (digest compared at the end) */
    uint8_t checked_digest[32];
    es10f_bpp_command *cmds; /* ES10_MAX_BPP_COMMANDS, for the check that a session can load each BPP */
} import_ctx;

/* Reads version 1 and the 16-byte id at the head of the content. */
static ifpp_err import_head(import_ctx *c, uint8_t id[16])
{
    tlv f;
    uint64_t version;
    ifpp_err e;
    if ((e = bundle_stream_next(c->bs, &f)) != IFPP_OK || f.tag != 0x02 || (e = tlv_get_uint(&f, &version)) != IFPP_OK ||
        version != 1)
        return e ? e : IFPP_E_RANGE;
    if ((e = bundle_stream_next(c->bs, &f)) != IFPP_OK || f.tag != 0x04 || f.len != 16)
        return e ? e : IFPP_E_RANGE;
    memcpy(id, f.value, 16);
    return IFPP_OK;
}

/*
 * The end of a pass: the signer chain and the signature again, over what this pass read. The
 * writing pass skipped the per-record cryptography, so it must have read the very bytes the
 * checking pass checked: the digests must match, or nothing commits.
 */
static ifpp_err import_finish(import_ctx *c, cert **signer, uint8_t content_hash[32])
{
    uint8_t digest[32];
    ifpp_err e = bundle_stream_finish(c->bs, c->ci, time(NULL), signer, digest, c->why, c->why_len);
    if (e != IFPP_OK)
        return e;
    if (c->dry)
        memcpy(c->checked_digest, digest, 32);
    else if (c->checked && !crypto_equal_ct(digest, c->checked_digest, 32)) {
        if (signer) {
            cert_free(*signer);
            *signer = NULL;
        }
        err_why(c->why, c->why_len, "%s changed while it was being imported: nothing imported",
                c->sum->records ? "the bundle" : "the file");
        return IFPP_E_SIGNATURE;
    }
    if (content_hash)
        memcpy(content_hash, digest, 32);
    return IFPP_OK;
}

/* ---- eUICC data package (ESED201) -------------------------------------------------------- */

/* One eUICC record: certificate naming this EID, every One-time Key's proof by that eUICC (GENS12). */
static ifpp_err import_euicc_record(store *s, import_ctx *c, const tlv *rec, size_t index)
{
    tlv eid, ec, info2, keys, k, otpk, proof;
    tlv_reader top, r, kr, pr;
    cert *euicc = NULL;
    crypto_key *key = NULL;
    char eid_hex[33] = "?";
    ifpp_err e;

    tlv_reader_init(&top, rec->raw, rec->raw_len, TLV_DER);
    if (rec->tag != 0x30 || (e = tlv_reader_enter(&top, rec, &r)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x5A, &eid)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x30, &ec)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0xBF22, &info2)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x30, &keys)) != IFPP_OK ||
        eid.len != 16) {
        err_why(c->why, c->why_len, "eUICC record %zu: malformed", index);
        return IFPP_E_TLV_UNEXPECTED_TAG;
    }
    hex_encode(eid.value, 16, eid_hex, sizeof eid_hex);
    if (!c->checked) {
        char cwhy[256] = "";
        const cert *inter[1] = {c->signer};
        if ((e = cert_parse_der(ec.raw, ec.raw_len, &euicc)) == IFPP_OK &&
            (!cert_subject_serial(euicc) || strcmp(cert_subject_serial(euicc), eid_hex) != 0))
            e = IFPP_E_CERT_ROLE;
        if (e == IFPP_OK)
            e = cert_public_key(euicc, &key);
        if (e != IFPP_OK) {
            err_why(c->why, c->why_len, "eUICC %s: certificate unusable or for another EID (%s)", eid_hex, err_str(e));
            goto out;
        }
        if ((e = cert_verify_chain(c->ci, inter, 1, euicc, CERT_ROLE_EUICC, time(NULL), cwhy, sizeof cwhy)) != IFPP_OK) {
            err_why(c->why, c->why_len, "eUICC %s: certificate not issued by the package's EUM: %s%s%s", eid_hex,
                    err_str(e), *cwhy ? ": " : "", cwhy);
            goto out;
        }
    }
    if (!c->dry && (e = store_add_euicc(s, eid.value, ec.raw, ec.raw_len, info2.raw, info2.raw_len)) != IFPP_OK) {
        if (e == IFPP_E_ARG)
            err_why(c->why, c->why_len, "eUICC %s: already known with other data", eid_hex);
        else
            err_why(c->why, c->why_len, "eUICC %s: %s", eid_hex, store_errmsg(s));
        goto out;
    }
    tlv_reader_enter(&r, &keys, &kr);
    while ((e = tlv_reader_next(&kr, &k)) == IFPP_OK) {
        uint8_t tbs[18 + 3 + CRYPTO_EC_PUB_LEN];
        crypto_key *pt = NULL;
        if ((e = tlv_reader_enter(&kr, &k, &pr)) != IFPP_OK || (e = tlv_reader_expect(&pr, 0x5F49, &otpk)) != IFPP_OK ||
            (e = tlv_reader_expect(&pr, 0x5F37, &proof)) != IFPP_OK || otpk.len != CRYPTO_EC_PUB_LEN || proof.len != 64) {
            err_why(c->why, c->why_len, "eUICC %s: One-time Key record malformed", eid_hex);
            e = e ? e : IFPP_E_RANGE;
            goto out;
        }
        memcpy(tbs, eid.raw, 18);
        memcpy(tbs + 18, otpk.raw, otpk.raw_len);
        if (!c->checked && (e = crypto_key_from_public(crypto_key_curve(key), otpk.value, otpk.len, &pt)) == IFPP_OK)
            e = crypto_ecdsa_verify(key, tbs, sizeof tbs, CRYPTO_SIG_RAW, proof.value, proof.len);
        crypto_key_free(pt);
        if (e != IFPP_OK) {
            err_why(c->why, c->why_len, "eUICC %s: a One-time Key's proof does not verify (GENS12): %s", eid_hex,
                    err_str(e));
            goto out;
        }
        if (!c->dry && (e = store_add_otk(s, eid.value, otpk.value, proof.value)) != IFPP_OK) {
            err_why(c->why, c->why_len, "eUICC %s: %s", eid_hex, store_errmsg(s));
            goto out;
        }
        c->sum->keys++;
    }
    e = e == IFPP_E_TLV_END ? IFPP_OK : e;
    if (e == IFPP_OK)
        c->sum->added++;
out:
    crypto_key_free(key);
    cert_free(euicc);
    return e;
}

static ifpp_err import_euicc_tx(store *s, void *arg)
{
    import_ctx *c = arg;
    uint8_t id[16];
    tlv rec;
    cert *eum = NULL;
    ifpp_err e;
    if ((e = import_head(c, id)) != IFPP_OK || (e = bundle_stream_enter(c->bs, 0x30)) != IFPP_OK) {
        err_why(c->why, c->why_len, "eUICC data package: content malformed (%s)", err_str(e));
        return e;
    }
    while ((e = bundle_stream_next(c->bs, &rec)) == IFPP_OK)
        if ((e = import_euicc_record(s, c, &rec, ++c->sum->records)) != IFPP_OK)
            return e;
    if (e != IFPP_E_TLV_END || (e = bundle_stream_next(c->bs, &rec)) != IFPP_E_TLV_END) {
        err_why(c->why, c->why_len, "eUICC data package: record %zu malformed (%s)", c->sum->records + 1,
                err_str(e == IFPP_OK ? IFPP_E_TLV_TRAILING : e));
        return e == IFPP_OK ? IFPP_E_TLV_TRAILING : e;
    }
    if ((e = import_finish(c, &eum, NULL)) != IFPP_OK)
        return e;
    if (!c->dry) {
        const uint8_t *der;
        size_t der_len;
        cert_der(eum, &der, &der_len);
        if ((e = store_add_eum_cert(s, der, der_len)) != IFPP_OK)
            err_why(c->why, c->why_len, "eUICC data package: %s", store_errmsg(s));
    }
    cert_free(eum);
    return e;
}

/* ---- BPP vault (ESBPP01) ---------------------------------------------------------------------- */

/*
 * The BPP splits into the SGP.22 ES10b.LoadBoundProfilePackage commands, and into no more of them
 * than a session sends (ES10_MAX_BPP_COMMANDS, the limit es10_load_bpp loads with): a BPP no DUT
 * could take is refused here, once, not at every DUT that reserves it.
 */
static ifpp_err import_bpp_loadable(import_ctx *c, const tlv *bpp, size_t index, const char *txid_hex)
{
    size_t count = 0;
    if (!c->cmds && !(c->cmds = calloc(ES10_MAX_BPP_COMMANDS, sizeof *c->cmds)))
        return IFPP_E_NOMEM;
    ifpp_err e = es10f_bpp_split(bpp->raw, bpp->raw_len, c->cmds, ES10_MAX_BPP_COMMANDS, &count);
    if (e == IFPP_E_RANGE)
        err_why(c->why, c->why_len, "vault item %zu (transaction %s): the BPP needs more than %d load commands, the "
                "most a session sends: no DUT could load it", index, txid_hex, ES10_MAX_BPP_COMMANDS);
    else if (e != IFPP_OK)
        err_why(c->why, c->why_len, "vault item %zu (transaction %s): the BPP is not shaped as SGP.22 "
                "LoadBoundProfilePackage needs (BF36: BF23, A0, A1 of 88, [A2], A3 of 86): %s", index, txid_hex,
                err_str(e));
    return e;
}

/* One vault item: ICCID, hash, loadable shape, eUICC and key known, then stored available. */
static ifpp_err import_vault_item(store *s, import_ctx *c, const tlv *item, const char *vault_id, size_t index)
{
    tlv tx, eid, otpk, iccid, type, hash, bpp;
    tlv_reader top, r;
    store_bpp b;
    uint8_t h[32];
    char txid_hex[33], iccid_text[ICCID_TEXT_LEN];
    ifpp_err e;
    tlv_reader_init(&top, item->raw, item->raw_len, TLV_DER);
    if (item->tag != 0x30 || (e = tlv_reader_enter(&top, item, &r)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x80, &tx)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x5A, &eid)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x5F49, &otpk)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x81, &iccid)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x0C, &type)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x82, &hash)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0xBF36, &bpp)) != IFPP_OK || tx.len == 0 || tx.len > 16 || eid.len != 16 ||
        otpk.len != 65 || iccid.len != 10 || hash.len != 32 || type.len >= sizeof b.profile_type) {
        err_why(c->why, c->why_len, "vault item %zu: malformed", index);
        return IFPP_E_TLV_UNEXPECTED_TAG;
    }
    hex_encode(tx.value, tx.len, txid_hex, sizeof txid_hex);
    if (iccid_to_text(iccid.value, iccid_text) != IFPP_OK) {
        /* it goes into reports and is checked against every PIR: a record must name a real ICCID */
        err_why(c->why, c->why_len, "vault item %zu (transaction %s): ICCID %s is not an ICCID (19 or 20 decimal "
                "digits, the last a valid Luhn check digit, in EF.ICCID form)", index, txid_hex, iccid_text);
        return IFPP_E_RANGE;
    }
    if (!label_valid((const char *)type.value, type.len)) {
        /* shown to operators, stored, and used in reports: only a plain name (common/label.h) */
        err_why(c->why, c->why_len, "vault item %zu: profile type is not a plain name (1..%d of A-Z a-z 0-9 . _ -)",
                index, LABEL_MAX);
        return IFPP_E_ARG;
    }
    if ((e = crypto_sha256(bpp.raw, bpp.raw_len, h)) != IFPP_OK || !crypto_equal_ct(h, hash.value, 32)) {
        err_why(c->why, c->why_len, "vault item %zu: the BPP does not match its hash (altered)", index);
        return IFPP_E_SIGNATURE;
    }
    if ((e = import_bpp_loadable(c, &bpp, index, txid_hex)) != IFPP_OK)
        return e;
    bool known_key = false;
    if ((e = store_find_otk(s, eid.value, otpk.value, &known_key)) != IFPP_OK) {
        err_why(c->why, c->why_len, "vault item %zu: %s", index, store_errmsg(s));
        return e;
    }
    if (!known_key) {
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
    b.bpp_sha256 = h; /* hashed just above: the store need not hash it again */
    snprintf(b.vault_id, sizeof b.vault_id, "%s", vault_id);
    bool dup = false;
    char bwhy[256] = "";
    /* the bytes to the store's data file, the row staged: no write lock until the signature verified */
    if ((e = store_bpp_stage_add(s, &b, &dup, bwhy, sizeof bwhy)) != IFPP_OK) {
        err_why(c->why, c->why_len, "vault item %zu: %s", index, *bwhy ? bwhy : err_str(e));
        return e;
    }
    if (dup)
        c->sum->duplicate++;
    return IFPP_OK;
}

/*
 * The SM-DPf binding certificate's chain as the eUICC will check it (PrepareBppLoad): the vault's
 * sub-CA certificates, the issuer of CERT.DPpb first and each one's issuer after it, the last
 * issued by the CI; then cert_verify_chain over exactly these. A missing or stray sub-CA is named.
 */
static ifpp_err import_vault_chain(import_ctx *c, const cert *pb, cert *const *subs, size_t n)
{
    char cwhy[256] = "", issuer[128];
    const cert *child = pb;
    for (size_t i = 0; i < n; i++) {
        if (!cert_issued_by(child, subs[i])) {
            cert_issuer_cn(child, issuer, sizeof issuer);
            err_why(c->why, c->why_len, "BPP vault: sub-CA certificate %zu ('%s') is not the issuer of '%s' (issued by "
                    "'%s'): smdpSubCaCertificates lists the binding certificate's issuer first, then each issuer's",
                    i + 1, cert_subject_cn(subs[i]), cert_subject_cn(child), issuer);
            return IFPP_E_CERT_CHAIN;
        }
        child = subs[i];
    }
    if (!cert_issued_by(child, c->ci)) {
        cert_issuer_cn(child, issuer, sizeof issuer);
        if (n == 0)
            err_why(c->why, c->why_len, "BPP vault: the SM-DPf binding certificate '%s' is issued by '%s', not by the "
                    "CI '%s', and the vault carries no sub-CA certificate (smdpSubCaCertificates) for it",
                    cert_subject_cn(pb), issuer, cert_subject_cn(c->ci));
        else
            err_why(c->why, c->why_len, "BPP vault: sub-CA certificate %zu ('%s') is issued by '%s', not by the CI '%s'",
                    n, cert_subject_cn(child), issuer, cert_subject_cn(c->ci));
        return IFPP_E_CERT_CHAIN;
    }
    ifpp_err e = cert_verify_chain(c->ci, (const cert *const *)subs, n, pb, CERT_ROLE_DPF_PB, time(NULL), cwhy,
                                   sizeof cwhy);
    if (e != IFPP_OK)
        err_why(c->why, c->why_len, "BPP vault: SM-DPf binding certificate not trusted: %s%s%s", err_str(e),
                *cwhy ? ": " : "", cwhy);
    return e;
}

/* Reads smdpSubCaCertificates ('A1', each a Certificate) into subs (at most STORE_MAX_SUB_CAS). */
static ifpp_err import_sub_cas(import_ctx *c, const tlv *list, cert **subs, size_t *n)
{
    tlv_reader top, r;
    tlv t;
    ifpp_err e;
    *n = 0;
    tlv_reader_init(&top, list->raw, list->raw_len, TLV_DER);
    if ((e = tlv_reader_enter(&top, list, &r)) != IFPP_OK) {
        err_why(c->why, c->why_len, "BPP vault: sub-CA certificates malformed (%s)", err_str(e));
        return e;
    }
    while ((e = tlv_reader_next(&r, &t)) == IFPP_OK) {
        if (*n == STORE_MAX_SUB_CAS) {
            err_why(c->why, c->why_len, "BPP vault: more than %d sub-CA certificates", STORE_MAX_SUB_CAS);
            return IFPP_E_RANGE;
        }
        if ((e = cert_parse_der(t.raw, t.raw_len, &subs[*n])) != IFPP_OK) {
            err_why(c->why, c->why_len, "BPP vault: sub-CA certificate %zu unreadable (%s)", *n + 1, err_str(e));
            return e;
        }
        (*n)++;
    }
    if (e != IFPP_E_TLV_END || *n == 0) {
        err_why(c->why, c->why_len, "BPP vault: sub-CA certificates malformed (%s)",
                err_str(*n == 0 && e == IFPP_E_TLV_END ? IFPP_E_TLV_MISSING : e));
        return e == IFPP_E_TLV_END ? IFPP_E_TLV_MISSING : e;
    }
    return IFPP_OK;
}

typedef struct {
    const char *vault_id;
    const uint8_t *pb_der, *content_hash;
    size_t pb_len, n_sub;
    const store_der *sub_der;
    bool *known;
} vault_row_arg;

/* The vault's row, inside the transaction that adds its staged BPPs. */
static ifpp_err import_vault_row(store *s, void *arg)
{
    vault_row_arg *a = arg;
    return store_add_vault(s, a->vault_id, a->pb_der, a->pb_len, a->sub_der, a->n_sub, a->content_hash, a->known);
}

/* A vault, one pass: every item checked and staged as it passes (store_bpp_stage_add), committed at the end. */
static ifpp_err import_vault_tx(store *s, void *arg)
{
    import_ctx *c = arg;
    uint8_t id[16], content_hash[32];
    char vault_id[33];
    tlv pb, t;
    bool entered;
    cert *pbc = NULL, *subs[STORE_MAX_SUB_CAS] = {NULL};
    store_der sub_der[STORE_MAX_SUB_CAS];
    size_t n_sub = 0;
    ifpp_err e;
    if ((e = import_head(c, id)) != IFPP_OK || (e = bundle_stream_next(c->bs, &pb)) != IFPP_OK || pb.tag != 0x30) {
        err_why(c->why, c->why_len, "BPP vault: content malformed (%s)", err_str(e ? e : IFPP_E_TLV_UNEXPECTED_TAG));
        return e ? e : IFPP_E_TLV_UNEXPECTED_TAG;
    }
    /* pb lives in the stream's buffer, which the next element reuses: the parsed certificate keeps its own copy */
    if ((e = cert_parse_der(pb.raw, pb.raw_len, &pbc)) != IFPP_OK) {
        err_why(c->why, c->why_len, "BPP vault: SM-DPf binding certificate unreadable (%s)", err_str(e));
        return e;
    }
    hex_encode(id, 16, vault_id, sizeof vault_id);
    /* optional sub-CAs ([1]) before the item list */
    if ((e = bundle_stream_enter_or_next(c->bs, 0x30, &t, &entered)) == IFPP_OK && !entered) {
        if (t.tag != 0xA1)
            e = IFPP_E_TLV_UNEXPECTED_TAG;
        else if ((e = import_sub_cas(c, &t, subs, &n_sub)) == IFPP_OK)
            e = bundle_stream_enter(c->bs, 0x30);
    }
    if (e != IFPP_OK) {
        if (!*c->why)
            err_why(c->why, c->why_len, "BPP vault: content malformed after the binding certificate (%s)", err_str(e));
        goto out;
    }
    /* The binding certificate must chain to the CI the eUICCs trust, or no eUICC will take these BPPs. */
    if ((e = import_vault_chain(c, pbc, subs, n_sub)) != IFPP_OK)
        goto out;
    while (e == IFPP_OK && (e = bundle_stream_next(c->bs, &t)) == IFPP_OK)
        e = import_vault_item(s, c, &t, vault_id, ++c->sum->records);
    if (e == IFPP_E_TLV_END && (e = bundle_stream_next(c->bs, &t)) == IFPP_E_TLV_END)
        e = import_finish(c, NULL, content_hash);
    else if (e != IFPP_OK && !*c->why)
        err_why(c->why, c->why_len, "BPP vault: item %zu malformed (%s)", c->sum->records + 1,
                err_str(e == IFPP_OK || e == IFPP_E_TLV_END ? IFPP_E_TLV_TRAILING : e));
    if (e == IFPP_OK) {
        const uint8_t *pb_der;
        size_t pb_len;
        bool known = false;
        cert_der(pbc, &pb_der, &pb_len);
        for (size_t i = 0; i < n_sub; i++) {
            const uint8_t *d;
            cert_der(subs[i], &d, &sub_der[i].len);
            sub_der[i].der = (uint8_t *)d; /* borrowed: store_add_vault only reads them */
        }
        vault_row_arg va = {.vault_id = vault_id, .pb_der = pb_der, .pb_len = pb_len, .sub_der = sub_der,
                            .n_sub = n_sub, .content_hash = content_hash, .known = &known};
        size_t added = 0, dup = 0;
        char bwhy[256] = "";
        /* the staged rows and the vault's own row in one transaction, after the data file is on disk */
        if ((e = store_bpp_stage_commit(s, import_vault_row, &va, &added, &dup, bwhy, sizeof bwhy)) != IFPP_OK)
            err_why(c->why, c->why_len, "BPP vault %s: %s", vault_id,
                    e == IFPP_E_ARG && known ? "a different vault with this id was imported before"
                    : *bwhy                  ? bwhy
                                             : store_errmsg(s));
        c->sum->added = added;
        c->sum->duplicate += dup;
    }
out:
    cert_free(pbc);
    for (size_t i = 0; i < n_sub; i++)
        cert_free(subs[i]);
    return e == IFPP_E_TLV_END ? IFPP_E_TLV_TRAILING : e;
}

/* ---- entry points ---------------------------------------------------------------------------- */

/* One pass over f: the checking one (dry, no transaction) or the writing one (one transaction). */
static ifpp_err import_pass(store *s, FILE *f, size_t size, bundle_type t, import_ctx *c)
{
    if (fseek(f, 0, SEEK_SET) != 0) {
        err_why(c->why, c->why_len, "%s: cannot read it again: %s", bundle_type_name(t), strerror(errno));
        return IFPP_E_IO;
    }
    memset(c->sum, 0, sizeof *c->sum);
    ifpp_err e = bundle_stream_open(f, size, t, IMPORT_MAX_RECORD, &c->bs, c->why, c->why_len);
    if (e != IFPP_OK)
        return e;
    if (t == BUNDLE_BPP_VAULT) { /* one pass, staged: the write lock only for the commit at its end */
        if ((e = store_bpp_stage_begin(s)) == IFPP_OK && (e = import_vault_tx(s, c)) != IFPP_OK)
            store_bpp_stage_abort(s);
    } else {
        e = c->dry ? import_euicc_tx(s, c) : store_transaction(s, import_euicc_tx, c);
    }
    if (e != IFPP_OK && c->why && c->why_len && !*c->why)
        err_why(c->why, c->why_len, "%s", store_errmsg(s)); /* a store failure (busy, damaged, full), not the bundle's */
    bundle_stream_free(c->bs);
    c->bs = NULL;
    return e;
}

/*
 * An eUICC data package: three passes, so that neither a bad file nor a long good one holds up a
 * running line (its records carry certificates and proofs to verify, which take far longer than the
 * bytes take to read):
 *  1. the signer chain and the signature, one hash pass, nothing parsed, no store lock;
 *  2. every record parsed and checked (certificates, GENS12 proofs) with no write lock;
 *  3. the same bytes (their digest must equal pass 2's) written in one transaction, without the
 *     per-record cryptography.
 * A BPP vault: one pass (issue 16). Its records carry no signature of their own, only bytes to hash,
 * so the whole import is bounded by the two hashes (the bundle's and each BPP's) and reading the file
 * three times would triple it. Each item is checked and written as it passes -- the BPP to the store's
 * data file, its row in the one transaction -- and the transaction commits only after the signature
 * verified at the end; a refusal anywhere rolls back the rows and cuts the data file back. The write
 * lock is held for that one pass, good file or bad (docs/store.md, "Imports").
 */
static ifpp_err import_stream(store *s, FILE *f, size_t size, bundle_type t, const cert *ci, import_summary *sum,
                              char *why, size_t why_len)
{
    import_ctx c = {.ci = ci, .sum = sum, .why = why, .why_len = why_len};
    cert *signer = NULL;
    if (!s || !f || !ci || !sum)
        return IFPP_E_ARG;
    memset(sum, 0, sizeof *sum);
    if (why && why_len)
        why[0] = '\0';
    if (t == BUNDLE_BPP_VAULT) {
        ifpp_err e = import_pass(s, f, size, t, &c);
        free(c.cmds);
        return e;
    }
    ifpp_err e = bundle_stream_verify(f, size, t, ci, time(NULL), &signer, NULL, why, why_len);
    if (e != IFPP_OK)
        return e;
    c.signer = signer;
    c.dry = true;
    if ((e = import_pass(s, f, size, t, &c)) == IFPP_OK) {
        c.dry = false;
        c.checked = true;
        e = import_pass(s, f, size, t, &c);
    }
    cert_free(signer);
    free(c.cmds);
    return e;
}

/* A bundle in memory goes through the same streaming path, so there is one reader to trust. */
static ifpp_err import_buffer(store *s, const uint8_t *buf, size_t n, bundle_type t, const cert *ci,
                              import_summary *sum, char *why, size_t why_len)
{
    if (!buf || n == 0)
        return IFPP_E_ARG;
    FILE *f = fmemopen((void *)buf, n, "rb");
    if (!f)
        return IFPP_E_NOMEM;
    ifpp_err e = import_stream(s, f, n, t, ci, sum, why, why_len);
    fclose(f);
    return e;
}

static ifpp_err import_file(store *s, const char *path, bundle_type t, const cert *ci, import_summary *sum, char *why,
                            size_t why_len)
{
    FILE *f;
    size_t size;
    ifpp_err e = fs_fopen_regular(path, &f, &size, why, why_len); /* no FIFO, device or symlink (issue 9, item 3) */
    if (e != IFPP_OK)
        return e;
    e = import_stream(s, f, size, t, ci, sum, why, why_len);
    fclose(f);
    return e;
}

ifpp_err import_euicc_data(store *s, const uint8_t *buf, size_t n, const cert *ci, import_summary *sum, char *why,
                           size_t why_len)
{
    return import_buffer(s, buf, n, BUNDLE_EUICC_DATA, ci, sum, why, why_len);
}

ifpp_err import_vault(store *s, const uint8_t *buf, size_t n, const cert *ci, import_summary *sum, char *why,
                      size_t why_len)
{
    return import_buffer(s, buf, n, BUNDLE_BPP_VAULT, ci, sum, why, why_len);
}

ifpp_err import_euicc_data_file(store *s, const char *path, const cert *ci, import_summary *sum, char *why,
                                size_t why_len)
{
    return import_file(s, path, BUNDLE_EUICC_DATA, ci, sum, why, why_len);
}

ifpp_err import_vault_file(store *s, const char *path, const cert *ci, import_summary *sum, char *why, size_t why_len)
{
    return import_file(s, path, BUNDLE_BPP_VAULT, ci, sum, why, why_len);
}
