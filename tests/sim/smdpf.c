/* smdpf.c -- the test SM-DPf: BPP binding, the vault, the report check; see smdpf.h and docs/es10f.md. */
#include "smdpf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bsp.h"
#include "bundle.h"
#include "hex.h"
#include "iccid.h"
#include "pir.h"
#include "testpki.h"
#include "tlv.h"

#define SMDPF_MAX_BPP (1u << 20)

/* Appends the plaintext as consecutive protected segments of `tag` (MAC only for 88), at most `max` bytes each (0: BSP's limit). */
static ifpp_err smdpf_put_segments(tlv_builder *b, bsp_ctx *c, uint8_t tag, const uint8_t *pt, size_t n, size_t max)
{
    size_t chunk = tag == 0x88 ? BSP_MAX_PLAIN_MAC_ONLY : BSP_MAX_PLAIN_ENCRYPTED;
    if (max && max < chunk)
        chunk = max;
    uint8_t seg[BSP_MAX_SEGMENT];
    size_t sl;
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        ifpp_err e = tag == 0x88 ? bsp_mac_only(c, tag, pt + off, len, seg, sizeof seg, &sl)
                                 : bsp_encrypt_and_mac(c, tag, pt + off, len, seg, sizeof seg, &sl);
        if (e != IFPP_OK)
            return e;
        if ((e = tlv_put_raw(b, seg, sl)) != IFPP_OK)
            return e;
    }
    return IFPP_OK;
}

ifpp_err smdpf_random_iccid(uint8_t iccid[10])
{
    uint8_t rnd[14];
    char digits[20] = "8949";
    ifpp_err e = crypto_random(rnd, sizeof rnd);
    if (e != IFPP_OK)
        return e;
    for (size_t i = 0; i < sizeof rnd; i++)
        digits[4 + i] = (char)('0' + rnd[i] % 10);
    digits[18] = iccid_luhn_digit(digits, 18);
    digits[19] = '\0';
    return iccid_from_digits(digits, iccid);
}

/* Bytes a TLV with a one-byte tag and n bytes of value takes. */
static size_t smdpf_tlv_size(size_t n)
{
    return 1 + (n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4) + n;
}

/* id-MF, the MF template (SAIP: {joint-iso-itu-t(2) international-organizations(23) tca(143) euicc-profile(1) templates(2) mf(1)}). */
static const uint8_t SMDPF_OID_MF[] = {0x67, 0x81, 0x0F, 0x01, 0x02, 0x01};
/* issuerID of the filler PE-NonStandard: the test SM-DP's own OID 2.999.10 (tests/tools/testpki.h). */
static const uint8_t SMDPF_OID_ISSUER[] = {0x88, 0x37, 0x0A};

/* One PE's header (PEHeader ::= SEQUENCE { mandated [0] NULL OPTIONAL, identification [1] UInt15 }). */
static void smdpf_pe_header(tlv_builder *b, unsigned id)
{
    tlv_begin(b, 0xA0);
    tlv_put_uint(b, 0x81, id);
    tlv_end(b);
}

ifpp_err smdpf_make_profile(const uint8_t iccid[10], const char *profile_type, size_t size, uint8_t **out, size_t *n)
{
    uint8_t plain[ICCID_LEN];
    tlv_builder b;
    const uint8_t *p;
    size_t len;
    ifpp_err e;
    if (!iccid || !profile_type || !out || !n || size > SMDPF_MAX_BPP / 2 || strlen(profile_type) > 100)
        return IFPP_E_ARG;
    iccid_swap_nibbles(iccid, plain);
    tlv_builder_init_dynamic(&b, SMDPF_MAX_BPP);
    /* ProfileElement header [0]: ProfileHeader, version 2.3 as EUICCInfo2's profileVersion says. */
    tlv_begin(&b, 0xA0);
    tlv_put_uint(&b, 0x80, 2);                  /* major-version */
    tlv_put_uint(&b, 0x81, 3);                  /* minor-version */
    tlv_put(&b, 0x82, profile_type, strlen(profile_type)); /* profileType */
    tlv_put(&b, 0x83, plain, sizeof plain);     /* iccid */
    tlv_put(&b, 0xA5, "", 0);                 /* eUICC-Mandatory-services: none */
    tlv_begin(&b, 0xA6);                        /* eUICC-Mandatory-GFSTEList: the MF template */
    tlv_put(&b, 0x06, SMDPF_OID_MF, sizeof SMDPF_OID_MF);
    tlv_end(&b);
    tlv_end(&b);
    /* ProfileElement mf [16]: PE-MF from its template; EF.ICCID gets the ICCID, the rest as the template says. */
    tlv_begin(&b, 0xB0);
    smdpf_pe_header(&b, 1);
    tlv_put(&b, 0x81, SMDPF_OID_MF, sizeof SMDPF_OID_MF); /* templateID */
    tlv_put(&b, 0xA2, "", 0);                 /* mf */
    tlv_begin(&b, 0xA4);                        /* ef-iccid */
    tlv_put(&b, 0x83, iccid, ICCID_LEN);        /* fillFileContent */
    tlv_end(&b);
    tlv_put(&b, 0xA5, "", 0);                 /* ef-dir */
    tlv_put(&b, 0xA6, "", 0);                 /* ef-arr */
    tlv_end(&b);
    /* ProfileElement nonStandard [9] as filler up to size, then end [10]. */
    size_t end_size = smdpf_tlv_size(smdpf_tlv_size(3)); /* AA { A0 { 81 01 03 } } */
    size_t fixed = b.len + end_size;
    size_t pe_fixed = smdpf_tlv_size(3) + smdpf_tlv_size(sizeof SMDPF_OID_ISSUER);
    size_t pad = size > fixed ? size - fixed : 0;
    while (pad > 0 && smdpf_tlv_size(pe_fixed + smdpf_tlv_size(pad)) > size - fixed)
        pad--;
    if (pad > 0 && (e = tlv_begin(&b, 0xA9)) == IFPP_OK) {
        uint8_t *filler = malloc(pad);
        if (!filler) {
            tlv_builder_free(&b);
            return IFPP_E_NOMEM;
        }
        crypto_random(filler, pad);
        smdpf_pe_header(&b, 2);
        tlv_put(&b, 0x81, SMDPF_OID_ISSUER, sizeof SMDPF_OID_ISSUER); /* issuerID */
        tlv_put(&b, 0x82, filler, pad);                                /* content */
        tlv_end(&b);
        free(filler);
    }
    tlv_begin(&b, 0xAA);
    smdpf_pe_header(&b, 3);
    tlv_end(&b);
    if ((e = tlv_builder_finish(&b, &p, &len)) != IFPP_OK) {
        tlv_builder_free(&b);
        return e;
    }
    *out = b.buf;
    *n = len;
    return IFPP_OK;
}

/* BF23 InitialiseSecureChannelRequest, signed; also derives the session keys into c. */
static ifpp_err smdpf_init_secure_channel(const smdpf_bpp_params *p, tlv_builder *b, bsp_ctx *c)
{
    crypto_key *otk_dp = NULL, *euicc_otpk = NULL;
    uint8_t host_id[16], dp_pub[CRYPTO_EC_PUB_LEN], tbs[512], sig[CRYPTO_SIG_RAW_LEN], shs[CRYPTO_EC_SECRET_LEN];
    size_t siglen = sizeof sig, tbs_len;
    tlv_builder t;
    const uint8_t *data;
    ifpp_err e;

    if ((e = crypto_random(host_id, sizeof host_id)) != IFPP_OK || (e = crypto_key_generate(p->curve, &otk_dp)) != IFPP_OK)
        return e;
    crypto_key_public(otk_dp, dp_pub);
    /* The signed part: 82, 80, A6, 5F49 as they will appear, then the eUICC's otPK. */
    tlv_builder_init_fixed(&t, tbs, sizeof tbs);
    tlv_put(&t, 0x82, "\x01", 1);
    tlv_put(&t, 0x80, p->transaction_id, p->transaction_id_len);
    tlv_begin(&t, 0xA6);
    tlv_put(&t, 0x80, "\x88", 1);
    tlv_put(&t, 0x81, "\x10", 1);
    tlv_put(&t, 0x84, host_id, sizeof host_id);
    tlv_end(&t);
    tlv_put(&t, 0x5F49, dp_pub, sizeof dp_pub);
    size_t body_len = t.len;
    tlv_put(&t, 0x5F49, p->euicc_otpk, CRYPTO_EC_PUB_LEN);
    if ((e = tlv_builder_finish(&t, &data, &tbs_len)) != IFPP_OK ||
        (e = crypto_ecdsa_sign(p->dpf_pb_key, tbs, tbs_len, CRYPTO_SIG_RAW, sig, &siglen)) != IFPP_OK)
        goto out;
    tlv_begin(b, 0xBF23);
    tlv_put_raw(b, tbs, body_len);
    tlv_put(b, 0x5F37, sig, siglen);
    tlv_end(b);
    /* ECKA(otSK.DP, otPK.EUICC), then the SGP.22 KDF: the otSK.DP is dropped right after (PFS). */
    if ((e = crypto_key_from_public(p->curve, p->euicc_otpk, CRYPTO_EC_PUB_LEN, &euicc_otpk)) != IFPP_OK ||
        (e = crypto_ecka(otk_dp, euicc_otpk, shs)) != IFPP_OK)
        goto out;
    e = bsp_derive_keys(shs, sizeof shs, 0x88, 0x10, host_id, sizeof host_id, p->eid, 16, c);
out:
    crypto_wipe(shs, sizeof shs);
    crypto_key_free(otk_dp);
    crypto_key_free(euicc_otpk);
    return e;
}

ifpp_err smdpf_make_bpp(const smdpf_bpp_params *p, uint8_t **bpp, size_t *n)
{
    bsp_ctx c;
    tlv_builder b, md;
    uint8_t md_buf[512];
    const uint8_t *out, *md_der;
    size_t md_len, out_len;
    uint8_t *content = NULL;
    ifpp_err e;

    if (!p || !p->dpf_pb_key || !p->euicc_otpk || !p->eid || !p->transaction_id || !p->iccid || !bpp || !n ||
        p->transaction_id_len == 0 || p->transaction_id_len > 16 || !p->service_provider || !p->profile_name ||
        p->content_len == 0 || p->content_len > SMDPF_MAX_BPP / 2)
        return IFPP_E_ARG;
    char iccid_text[ICCID_TEXT_LEN];
    if (iccid_to_text(p->iccid, iccid_text) != IFPP_OK)
        return IFPP_E_ARG; /* an SM-DP+ only binds profiles with a real ICCID */

    tlv_builder_init_dynamic(&b, SMDPF_MAX_BPP);
    tlv_begin(&b, 0xBF36);
    if ((e = smdpf_init_secure_channel(p, &b, &c)) != IFPP_OK)
        goto out;

    /* A0: ConfigureISDP, encrypted. */
    tlv_begin(&b, 0xA0);
    smdpf_put_segments(&b, &c, 0x87, (const uint8_t *)"\xbf\x24\x00", 3, 0);
    tlv_end(&b);

    /* A1: StoreMetadata, MAC only (the eUICC must read it before it can decide anything). */
    tlv_builder_init_fixed(&md, md_buf, sizeof md_buf);
    tlv_begin(&md, 0xBF25);
    tlv_put(&md, 0x5A, p->iccid, 10);
    tlv_put(&md, 0x91, p->service_provider, strlen(p->service_provider));
    tlv_put(&md, 0x92, p->profile_name, strlen(p->profile_name));
    tlv_put_uint(&md, 0x95, 2); /* operational */
    tlv_end(&md);
    if ((e = tlv_builder_finish(&md, &md_der, &md_len)) != IFPP_OK)
        goto out;
    tlv_begin(&b, 0xA1);
    smdpf_put_segments(&b, &c, 0x88, md_der, md_len, 0);
    tlv_end(&b);

    /* A2: ReplaceSessionKeys, if asked: fresh keys for the profile segments. */
    if (p->replace_session_keys) {
        uint8_t keys[48], rsk[64];
        tlv_builder kb;
        const uint8_t *rsk_der;
        size_t rsk_len;
        crypto_random(keys, sizeof keys);
        tlv_builder_init_fixed(&kb, rsk, sizeof rsk);
        tlv_begin(&kb, 0xBF26);
        tlv_put(&kb, 0x80, keys, 16);
        tlv_put(&kb, 0x81, keys + 16, 16);
        tlv_put(&kb, 0x82, keys + 32, 16);
        tlv_end(&kb);
        e = tlv_builder_finish(&kb, &rsk_der, &rsk_len);
        tlv_begin(&b, 0xA2);
        if (e == IFPP_OK)
            e = smdpf_put_segments(&b, &c, 0x87, rsk_der, rsk_len, 0);
        tlv_end(&b);
        bsp_init(&c, keys + 16, keys + 32, keys);
        crypto_wipe(keys, sizeof keys);
        crypto_wipe(rsk, sizeof rsk);
        if (e != IFPP_OK)
            goto out;
    }

    /* A3: the profile content, an Interoperable Profile, encrypted segment by segment. */
    size_t content_n;
    if ((e = smdpf_make_profile(p->profile_iccid ? p->profile_iccid : p->iccid, p->profile_name, p->content_len, &content, &content_n)) != IFPP_OK)
        goto out;
    tlv_begin(&b, 0xA3);
    smdpf_put_segments(&b, &c, 0x86, content, content_n, p->segment_plain);
    tlv_end(&b);
    tlv_end(&b);
    if ((e = tlv_builder_finish(&b, &out, &out_len)) != IFPP_OK)
        goto out;
    *bpp = b.buf;
    *n = out_len;
    b.buf = NULL;
out:
    free(content);
    bsp_wipe(&c);
    tlv_builder_free(&b);
    return e;
}

/* ---- the vault (ESBPP01) and the report check (DPFF06) ------------------------------------ */

#define SMDPF_MAX_EUMS 8

/* Reads a SEQUENCE OF Certificate into certs (owned by the caller afterwards). */
static ifpp_err smdpf_read_certs(const tlv_reader *parent, const tlv *seq, cert **certs, size_t max, size_t *n)
{
    tlv_reader r;
    tlv t;
    ifpp_err e = tlv_reader_enter(parent, seq, &r);
    *n = 0;
    while (e == IFPP_OK && (e = tlv_reader_next(&r, &t)) == IFPP_OK) {
        if (*n == max)
            return IFPP_E_RANGE;
        if ((e = cert_parse_der(t.raw, t.raw_len, &certs[*n])) == IFPP_OK)
            (*n)++;
    }
    return e == IFPP_E_TLV_END ? IFPP_OK : e;
}

/*
 * Reads the head shared by the station's bundles -- version, id, stationId, (for a report, the
 * period), the EUM certificates -- and leaves *list over the final SEQUENCE OF items/results.
 */
static ifpp_err smdpf_read_station_head(const bundle_view *v, bool with_period, cert **eums, size_t *n_eums,
                                        tlv_reader *list)
{
    tlv top, f, eum_list, items;
    tlv_reader r0, r;
    ifpp_err e;
    if ((e = tlv_parse_exact(v->content, v->content_len, TLV_DER, &top)) != IFPP_OK)
        return e;
    tlv_reader_init(&r0, v->content, v->content_len, TLV_DER);
    if ((e = tlv_reader_enter(&r0, &top, &r)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x02, &f)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x04, &f)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x0C, &f)) != IFPP_OK)
        return e;
    if (with_period &&
        ((e = tlv_reader_expect(&r, 0x18, &f)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x18, &f)) != IFPP_OK))
        return e;
    if ((e = tlv_reader_expect(&r, 0x30, &eum_list)) != IFPP_OK ||
        (e = smdpf_read_certs(&r, &eum_list, eums, SMDPF_MAX_EUMS, n_eums)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x30, &items)) != IFPP_OK)
        return e;
    return tlv_reader_enter(&r, &items, list);
}

/* DPFF10/GENS12: the eUICC certificate chains to the CI, names this EID, and signed the otPK. */
static ifpp_err smdpf_check_item(const cert *ci, cert *const *eums, size_t n_eums, const tlv *eid, const tlv *cert_tlv,
                                 const tlv *otpk, const tlv *proof, char *why, size_t why_len)
{
    cert *ec = NULL;
    crypto_key *k = NULL;
    char eid_text[33];
    ifpp_err e = IFPP_E_CERT_CHAIN;
    if (eid->len != 16 || otpk->len != CRYPTO_EC_PUB_LEN)
        return IFPP_E_RANGE;
    hex_encode(eid->value, 16, eid_text, sizeof eid_text);
    if (cert_parse_der(cert_tlv->raw, cert_tlv->raw_len, &ec) != IFPP_OK)
        return IFPP_E_CERT_PARSE;
    for (size_t i = 0; i < n_eums && e != IFPP_OK; i++)
        e = cert_verify_chain(ci, (const cert *const *)&eums[i], 1, ec, CERT_ROLE_EUICC, time(NULL), why, why_len);
    if (e == IFPP_OK && (!cert_subject_serial(ec) || strcmp(cert_subject_serial(ec), eid_text) != 0)) {
        err_why(why, why_len, "eUICC certificate is not for EID %s", eid_text);
        e = IFPP_E_CERT_ROLE;
    }
    if (e == IFPP_OK && (e = cert_public_key(ec, &k)) == IFPP_OK) {
        uint8_t tbs[18 + 3 + CRYPTO_EC_PUB_LEN];
        memcpy(tbs, eid->raw, 18);
        memcpy(tbs + 18, otpk->raw, otpk->raw_len);
        e = crypto_ecdsa_verify(k, tbs, sizeof tbs, CRYPTO_SIG_RAW, proof->value, proof->len);
        if (e != IFPP_OK)
            err_why(why, why_len, "One-time Key proof for EID %s does not verify (GENS12)", eid_text);
    }
    crypto_key_free(k);
    cert_free(ec);
    return e;
}

ifpp_err smdpf_make_vault(const char *pki_dir, const uint8_t *request, size_t request_len, size_t content_len,
                          uint8_t **vault, size_t *vault_len, smdpf_vault_summary *sum, char *why, size_t why_len)
{
    smdpf_vault_opts o = {.pki_dir = pki_dir, .content_len = content_len};
    return smdpf_make_vault_opts(&o, request, request_len, vault, vault_len, sum, why, why_len);
}

/* The SM-DP sub-CA of the PKI in dir, if its SM-DPf hangs under one (dpf-subca, and pb not issued by the CI). */
static ifpp_err smdpf_load_sub_ca(const char *dir, const cert *ci, const cert *pb, cert **sub_ca)
{
    *sub_ca = NULL;
    if (cert_issued_by(pb, ci))
        return IFPP_OK;
    return testpki_load(dir, "dpf-subca", sub_ca, NULL);
}

ifpp_err smdpf_make_vault_opts(const smdpf_vault_opts *o, const uint8_t *request, size_t request_len, uint8_t **vault,
                               size_t *vault_len, smdpf_vault_summary *sum, char *why, size_t why_len)
{
    cert *dm_root = NULL, *ci = NULL, *pb = NULL, *auth = NULL, *sub_ca = NULL, *eums[SMDPF_MAX_EUMS] = {NULL};
    crypto_key *pb_key = NULL, *auth_key = NULL;
    const char *pki_dir = o->pki_dir;
    size_t content_len = o->content_len;
    size_t n_eums = 0;
    bundle_view v = {0};
    tlv_builder b;
    ifpp_err e;

    memset(sum, 0, sizeof *sum);
    tlv_builder_init_dynamic(&b, 256u << 20);
    if ((e = testpki_load(pki_dir, "dm-root", &dm_root, NULL)) != IFPP_OK ||
        (e = testpki_load(pki_dir, "ci", &ci, NULL)) != IFPP_OK ||
        (e = testpki_load(pki_dir, "dpf-pb", &pb, &pb_key)) != IFPP_OK ||
        (e = testpki_load(pki_dir, "dpf-auth", &auth, &auth_key)) != IFPP_OK ||
        (e = smdpf_load_sub_ca(pki_dir, ci, pb, &sub_ca)) != IFPP_OK) {
        err_why(why, why_len, "test PKI in %s incomplete: %s", pki_dir, err_str(e));
        goto out;
    }
    if ((e = bundle_open(request, request_len, BUNDLE_BPP_REQUEST, dm_root, time(NULL), &v, why, why_len)) != IFPP_OK)
        goto out;

    tlv item;
    tlv_reader ir, it;
    if ((e = smdpf_read_station_head(&v, false, eums, &n_eums, &ir)) != IFPP_OK) {
        err_why(why, why_len, "BPP request content malformed: %s", err_str(e));
        goto out;
    }

    uint8_t vault_id[16];
    const uint8_t *der;
    size_t der_len;
    crypto_random(vault_id, sizeof vault_id);
    cert_der(pb, &der, &der_len);
    tlv_begin(&b, 0x30);
    tlv_put_uint(&b, 0x02, 1);
    tlv_put(&b, 0x04, vault_id, sizeof vault_id);
    tlv_put_raw(&b, der, der_len);
    const cert *in_vault = o->sub_ca_instead ? o->sub_ca_instead : o->omit_sub_ca ? NULL : sub_ca;
    if (in_vault) { /* smdpSubCaCertificates [1]: the issuer of CERT.DPpb first */
        cert_der(in_vault, &der, &der_len);
        tlv_begin(&b, 0xA1);
        tlv_put_raw(&b, der, der_len);
        tlv_end(&b);
    }
    tlv_begin(&b, 0x30);
    while ((e = tlv_reader_next(&ir, &item)) == IFPP_OK) {
        tlv eid, ec, info2, otk, otpk, proof, type;
        tlv_reader kr;
        sum->items++;
        if ((e = tlv_reader_enter(&ir, &item, &it)) != IFPP_OK || (e = tlv_reader_expect(&it, 0x5A, &eid)) != IFPP_OK ||
            (e = tlv_reader_expect(&it, 0x30, &ec)) != IFPP_OK || (e = tlv_reader_expect(&it, 0xBF22, &info2)) != IFPP_OK ||
            (e = tlv_reader_expect(&it, 0x30, &otk)) != IFPP_OK || (e = tlv_reader_expect(&it, 0x0C, &type)) != IFPP_OK ||
            (e = tlv_reader_enter(&it, &otk, &kr)) != IFPP_OK || (e = tlv_reader_expect(&kr, 0x5F49, &otpk)) != IFPP_OK ||
            (e = tlv_reader_expect(&kr, 0x5F37, &proof)) != IFPP_OK) {
            err_why(why, why_len, "BPP request item %zu malformed: %s", sum->items, err_str(e));
            goto out;
        }
        char item_why[256];
        if (smdpf_check_item(ci, eums, n_eums, &eid, &ec, &otpk, &proof, item_why, sizeof item_why) != IFPP_OK) {
            fprintf(stderr, "test SM-DPf: item %zu refused: %s\n", sum->items, item_why);
            sum->refused++;
            continue;
        }
        uint8_t txid[16], iccid[10], hash[32], *bpp = NULL;
        size_t bpp_len;
        char sp[33], name[65];
        if ((e = crypto_random(txid, sizeof txid)) != IFPP_OK || (e = smdpf_random_iccid(iccid)) != IFPP_OK) {
            err_why(why, why_len, "no random numbers for item %zu: %s", sum->items, err_str(e));
            goto out;
        }
        snprintf(sp, sizeof sp, "%.*s", (int)(type.len < 32 ? type.len : 32), (const char *)type.value);
        snprintf(name, sizeof name, "%s test profile", sp);
        smdpf_bpp_params p = {
            .dpf_pb_key = pb_key, .euicc_otpk = otpk.value, .curve = crypto_key_curve(pb_key), .eid = eid.value,
            .transaction_id = txid, .transaction_id_len = 16, .iccid = iccid, .service_provider = sp,
            .profile_name = name, .content_len = content_len, .replace_session_keys = sum->bpps % 2 == 1,
            .segment_plain = sum->items == o->many_segments_item ? 16 : 0,
        };
        {
            crypto_key *probe = NULL; /* the One-time Key's curve is that of the eUICC certificate */
            cert *c = NULL;
            if (cert_parse_der(ec.raw, ec.raw_len, &c) == IFPP_OK && cert_public_key(c, &probe) == IFPP_OK)
                p.curve = crypto_key_curve(probe);
            crypto_key_free(probe);
            cert_free(c);
        }
        if ((e = smdpf_make_bpp(&p, &bpp, &bpp_len)) != IFPP_OK || (e = crypto_sha256(bpp, bpp_len, hash)) != IFPP_OK) {
            free(bpp);
            err_why(why, why_len, "binding item %zu failed: %s", sum->items, err_str(e));
            goto out;
        }
        tlv_begin(&b, 0x30);
        tlv_put(&b, 0x80, txid, sizeof txid);
        tlv_put_raw(&b, eid.raw, eid.raw_len);
        tlv_put_raw(&b, otpk.raw, otpk.raw_len);
        if (sum->items == o->bad_iccid_item)
            iccid[9] ^= 0x01; /* the last digit (the Luhn digit, or the 20th): the record no longer names an ICCID */
        if (sum->items == o->other_iccid_item && (e = smdpf_random_iccid(iccid)) != IFPP_OK) {
            free(bpp);
            goto out;
        }
        tlv_put(&b, 0x81, iccid, sizeof iccid);
        tlv_put_raw(&b, type.raw, type.raw_len);
        tlv_put(&b, 0x82, hash, sizeof hash);
        tlv_put_raw(&b, bpp, bpp_len);
        tlv_end(&b);
        free(bpp);
        sum->bpps++;
    }
    if (e != IFPP_E_TLV_END) {
        err_why(why, why_len, "BPP request items malformed: %s", err_str(e));
        goto out;
    }
    tlv_end(&b);
    tlv_end(&b);
    const uint8_t *content;
    size_t content_n;
    if ((e = tlv_builder_finish(&b, &content, &content_n)) == IFPP_OK) {
        const cert *chain[2] = {auth, sub_ca}; /* the signer's chain up to (not including) the CI */
        e = bundle_seal(BUNDLE_BPP_VAULT, content, content_n, auth_key, chain, sub_ca ? 2 : 1, vault, vault_len);
    }
out:
    tlv_builder_free(&b);
    bundle_view_free(&v);
    for (size_t i = 0; i < n_eums; i++)
        cert_free(eums[i]);
    cert_free(dm_root); cert_free(ci); cert_free(pb); cert_free(auth); cert_free(sub_ca);
    crypto_key_free(pb_key);
    crypto_key_free(auth_key);
    return e;
}

ifpp_err smdpf_verify_report(const char *pki_dir, const uint8_t *report, size_t report_len,
                             smdpf_report_summary *sum, char *why, size_t why_len)
{
    cert *dm_root = NULL, *ci = NULL, *pb = NULL, *eums[SMDPF_MAX_EUMS] = {NULL};
    size_t n_eums = 0, own_oid_len = 0;
    uint8_t own_oid[64];
    bundle_view v = {0};
    ifpp_err e;

    memset(sum, 0, sizeof *sum);
    if ((e = testpki_load(pki_dir, "dm-root", &dm_root, NULL)) != IFPP_OK ||
        (e = testpki_load(pki_dir, "ci", &ci, NULL)) != IFPP_OK ||
        (e = testpki_load(pki_dir, "dpf-pb", &pb, NULL)) != IFPP_OK ||
        (e = cert_registered_id(pb, own_oid, sizeof own_oid, &own_oid_len)) != IFPP_OK) {
        err_why(why, why_len, "test PKI in %s incomplete: %s", pki_dir, err_str(e));
        goto out;
    }
    if ((e = bundle_open(report, report_len, BUNDLE_LOADING_REPORT, dm_root, time(NULL), &v, why, why_len)) != IFPP_OK)
        goto out;
    tlv res;
    tlv_reader rr, lr;
    if ((e = smdpf_read_station_head(&v, true, eums, &n_eums, &rr)) != IFPP_OK) {
        err_why(why, why_len, "Profile Loading Report content malformed: %s", err_str(e));
        goto out;
    }
    while ((e = tlv_reader_next(&rr, &res)) == IFPP_OK) {
        tlv txid, eid, item, ec = {0};
        bool have_cert = false;
        sum->results++;
        if ((e = tlv_reader_enter(&rr, &res, &lr)) != IFPP_OK || (e = tlv_reader_expect(&lr, 0x80, &txid)) != IFPP_OK ||
            (e = tlv_reader_expect(&lr, 0x5A, &eid)) != IFPP_OK) {
            err_why(why, why_len, "result %zu malformed: %s", sum->results, err_str(e));
            goto out;
        }
        (void)tlv_reader_expect(&lr, 0x81, &item); /* DUT serial, optional */
        if (tlv_reader_expect(&lr, 0x30, &ec) == IFPP_OK)
            have_cert = true;
        if ((e = tlv_reader_next(&lr, &item)) != IFPP_OK) {
            err_why(why, why_len, "result %zu has no outcome", sum->results);
            goto out;
        }
        if (item.tag == 0xA2) {
            sum->no_result++;
            continue;
        }
        pir_info pir;
        cert *c = NULL;
        char pwhy[256] = "";
        ifpp_err pe = item.tag != 0xBF37 ? IFPP_E_TLV_UNEXPECTED_TAG : pir_parse(item.raw, item.raw_len, &pir);
        if (pe == IFPP_OK && (!have_cert || (pe = cert_parse_der(ec.raw, ec.raw_len, &c)) != IFPP_OK))
            pe = have_cert ? pe : IFPP_E_TLV_MISSING;
        if (pe == IFPP_OK)
            pe = pir_check(&pir, c, (const cert *const *)eums, n_eums, ci, time(NULL), pwhy, sizeof pwhy);
        if (pe == IFPP_OK && (pir.transaction_id_len != txid.len || memcmp(pir.transaction_id, txid.value, txid.len))) {
            pe = IFPP_E_SIGNATURE;
            snprintf(pwhy, sizeof pwhy, "the PIR is for another BPP than its record says");
        }
        if (pe == IFPP_OK && (pir.smdp_oid_len != own_oid_len || memcmp(pir.smdp_oid, own_oid, own_oid_len) != 0)) {
            char got[96], want[96]; /* SGP.22: smdpOid is this SM-DP's own OID, as in its CERT.DPpb */
            cert_oid_text(pir.smdp_oid, pir.smdp_oid_len, got, sizeof got);
            cert_oid_text(own_oid, own_oid_len, want, sizeof want);
            pe = IFPP_E_SIGNATURE;
            snprintf(pwhy, sizeof pwhy, "the PIR names SM-DP OID %s, not this SM-DPf's %s",
                     pir.smdp_oid_len ? got : "(none)", want);
        }
        cert_free(c);
        if (pe != IFPP_OK) {
            fprintf(stderr, "test SM-DPf: result %zu: PIR refused: %s%s%s\n", sum->results, err_str(pe),
                    *pwhy ? ": " : "", pwhy);
            sum->bad++;
            continue;
        }
        sum->pirs_ok++;
        if (pir.success)
            sum->installed++;
        else
            sum->failed++;
    }
    e = e == IFPP_E_TLV_END ? IFPP_OK : e;
    if (e == IFPP_OK && sum->bad) {
        err_why(why, why_len, "%zu PIR(s) did not verify", sum->bad);
        e = IFPP_E_SIGNATURE;
    }
out:
    bundle_view_free(&v);
    for (size_t i = 0; i < n_eums; i++)
        cert_free(eums[i]);
    cert_free(dm_root);
    cert_free(ci);
    cert_free(pb);
    return e;
}
