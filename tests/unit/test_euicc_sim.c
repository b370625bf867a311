/*
 * test_euicc_sim.c -- the software eUICC against BPPs from the test SM-DPf, driven the way the
 * station drives a card: APDUs through drivers/es10f.c (STORE DATA chaining, 61xx), the ES10f
 * sequence of docs/es10f.md.
 *
 * Proves: a BPP installs and its PIR verifies against the eUICC certificate chain (DPFF06);
 * the refusals -- a bit flipped in the BPP, a BPP for another eUICC, a reused One-time Key, a
 * wrong SM-DPf chain, an unauthorised FPA call -- each with the right error and no key
 * consumed (GENS04, GENS08, EUICCF02); EUICCF03/EUICCF04; power cuts leave the card's NVM
 * whole; the EUM's data package carries provable One-time Keys (GENS12).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "apdu.h"
#include "bundle.h"
#include "cert.h"
#include "es10.h"
#include "euicc_sim.h"
#include "eum.h"
#include "iccid.h"
#include "pir.h"
#include "smdpf.h"
#include "testpki.h"
#include "testutil.h"
#include "tlv.h"

typedef struct {
    char *dir, *pki, *other_pki;
    char eid[2][TESTPKI_EID_LEN + 1];
    cert *ci, *eum, *dpf_pb, *dpf_auth, *dm_fpa, *other_dpf_pb, *other_dm_fpa;
    crypto_key *dpf_pb_key, *dm_fpa_key, *station_key, *other_dpf_pb_key, *other_dm_fpa_key;
} world;

static world W;

static int world_setup(void **state)
{
    (void)state;
    char why[256];
    W.dir = tu_mkdtemp("ifpp-sim");
    W.pki = tu_path(W.dir, "pki");
    W.other_pki = tu_path(W.dir, "other-pki");
    testpki_eid_random(W.eid[0]);
    testpki_eid_random(W.eid[1]);
    const char *eids[] = {W.eid[0], W.eid[1]};
    testpki_opts o = {.out_dir = W.pki, .curve = CRYPTO_CURVE_P256, .eids = eids, .n_eids = 2, .days = 30};
    testpki_opts other = {.out_dir = W.other_pki, .curve = CRYPTO_CURVE_P256, .n_eids = 1, .days = 30};
    if (testpki_make(&o, why, sizeof why) || testpki_make(&other, why, sizeof why)) {
        fprintf(stderr, "%s\n", why);
        return -1;
    }
    crypto_key *unused;
    if (testpki_load(W.pki, "ci", &W.ci, NULL) || testpki_load(W.pki, "eum", &W.eum, NULL) ||
        testpki_load(W.pki, "dpf-pb", &W.dpf_pb, &W.dpf_pb_key) || testpki_load(W.pki, "dpf-auth", &W.dpf_auth, &unused) ||
        testpki_load(W.pki, "dm-fpa", &W.dm_fpa, &W.dm_fpa_key) ||
        testpki_load(W.other_pki, "dpf-pb", &W.other_dpf_pb, &W.other_dpf_pb_key) ||
        testpki_load(W.other_pki, "dm-fpa", &W.other_dm_fpa, &W.other_dm_fpa_key))
        return -1;
    crypto_key_free(unused);
    cert *st;
    if (testpki_load(W.pki, "station", &st, &W.station_key))
        return -1;
    cert_free(st);
    return 0;
}

static int world_teardown(void **state)
{
    (void)state;
    tu_rmrf(W.dir);
    free(W.dir); free(W.pki); free(W.other_pki);
    cert *certs[] = {W.ci, W.eum, W.dpf_pb, W.dpf_auth, W.dm_fpa, W.other_dpf_pb, W.other_dm_fpa};
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++)
        cert_free(certs[i]);
    crypto_key *keys[] = {W.dpf_pb_key, W.dm_fpa_key, W.station_key, W.other_dpf_pb_key, W.other_dm_fpa_key};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        crypto_key_free(keys[i]);
    return 0;
}

/* ---- a card on the bench, and the station's side of the conversation ---------------------- */

typedef struct {
    euicc_sim *card;
    char *path;
    eum_card info;
} bench;

static void bench_up(bench *b, int which, size_t n_otks)
{
    static int serial;
    char name[64];
    snprintf(name, sizeof name, "card-%d-%d.der", which, serial++);
    b->path = tu_path(W.dir, name);
    assert_int_equal(eum_make_card(W.pki, W.eid[which], n_otks, b->path, &b->info), IFPP_OK);
    assert_int_equal(euicc_sim_open(b->path, &b->card), IFPP_OK);
    uint8_t atr[33];
    size_t atr_len;
    assert_int_equal(euicc_sim_reset(b->card, atr, sizeof atr, &atr_len), IFPP_OK);
    assert_int_equal(atr[0], 0x3B);
}

static void select_isdr(bench *b);
static uint8_t authorise(bench *b);

/* A card on the bench, its ISD-R selected and FPA services authorised: where most tests start. */
static void bench_ready(bench *b, int which, size_t n_otks)
{
    bench_up(b, which, n_otks);
    select_isdr(b);
    assert_int_equal(authorise(b), 0);
}

static void bench_down(bench *b)
{
    euicc_sim_close(b->card);
    free(b->path);
}

static ifpp_err tx(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    return euicc_sim_transmit(ctx, cmd, n, resp, cap, rn);
}

static void select_isdr(bench *b)
{
    /* P2 0C: no FCI wanted, so T=0 and T=1 cards both answer 9000 directly */
    static const uint8_t sel[] = {0x00, 0xA4, 0x04, 0x0C, 0x10, 0xA0, 0x00, 0x00, 0x05, 0x59, 0x10,
                                  0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00};
    uint8_t r[64];
    size_t rn;
    assert_int_equal(euicc_sim_transmit(b->card, sel, sizeof sel, r, sizeof r, &rn), IFPP_OK);
    assert_int_equal(rn, 2);
    assert_int_equal(r[0], 0x90);
}

/* One ES10 call; returns the status word, response in resp. */
static uint16_t call(bench *b, const uint8_t *req, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    uint16_t sw = 0;
    ifpp_err e = es10f_call(tx, b->card, 0, req, n, resp, cap, rn, &sw);
    return e == IFPP_OK ? sw : 0;
}

static uint8_t authorise_with(bench *b, const crypto_key *key, const cert *c)
{
    uint8_t resp[256], req[2048];
    size_t rn, qn;
    tlv t;
    assert_int_equal(call(b, (const uint8_t *)"\xbf\x2e\x00", 3, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(tlv_parse_exact(resp, rn, TLV_DER, &t), IFPP_OK);
    assert_int_equal(t.len, 18);
    assert_int_equal(es10_build_authorise(t.value + 2, b->info.eid, key, c, req, sizeof req, &qn), IFPP_OK);
    assert_int_equal(call(b, req, qn, resp, sizeof resp, &rn), SW_OK);
    uint8_t result = 99;
    assert_int_equal(es10_parse_result(resp, rn, 0xBF70, 0x02, &result), IFPP_OK);
    return result;
}

static uint8_t authorise(bench *b) { return authorise_with(b, W.dm_fpa_key, W.dm_fpa); }

static uint8_t prepare_with(bench *b, const uint8_t *txid, const uint8_t *otpk, const cert *dpf_pb)
{
    uint8_t req[2048], resp[64];
    size_t qn, rn;
    assert_int_equal(es10_build_prepare(txid, 16, otpk, dpf_pb, NULL, 0, req, sizeof req, &qn), IFPP_OK);
    assert_int_equal(call(b, req, qn, resp, sizeof resp, &rn), SW_OK);
    uint8_t result = 99;
    assert_int_equal(es10_parse_result(resp, rn, 0xBF71, 0x02, &result), IFPP_OK);
    return result;
}

typedef struct {
    uint8_t *der;
    size_t len;
    uint8_t txid[16];
    const uint8_t *otpk;
} bpp;

static void make_bpp_with(bpp *out, const uint8_t *otpk, const uint8_t *eid, const crypto_key *signer,
                          size_t content, bool replace)
{
    uint8_t iccid[10];
    assert_int_equal(smdpf_random_iccid(iccid), IFPP_OK);
    crypto_random(out->txid, 16);
    out->otpk = otpk;
    smdpf_bpp_params p = {
        .dpf_pb_key = signer, .euicc_otpk = otpk, .curve = CRYPTO_CURVE_P256, .eid = eid,
        .transaction_id = out->txid, .transaction_id_len = 16, .iccid = iccid,
        .service_provider = "Operator A", .profile_name = "Operator A consumer EU",
        .content_len = content, .replace_session_keys = replace,
    };
    assert_int_equal(smdpf_make_bpp(&p, &out->der, &out->len), IFPP_OK);
}

static void make_bpp(bpp *out, const bench *b, size_t otk, size_t content)
{
    make_bpp_with(out, b->info.otpk[otk], b->info.eid, W.dpf_pb_key, content, true);
}

/*
 * Sends the BPP command by command as the station does; stops at the first response with data
 * (the PIR) or a non-9000 status. Returns the status word; the PIR lands in pir.
 */
static uint16_t load(bench *b, const bpp *p, uint8_t *pir, size_t cap, size_t *pir_len)
{
    es10f_bpp_command cmds[128];
    size_t count;
    uint16_t sw = 0;
    *pir_len = 0;
    assert_int_equal(es10f_bpp_split(p->der, p->len, cmds, 128, &count), IFPP_OK);
    for (size_t i = 0; i < count; i++) {
        sw = call(b, cmds[i].data, cmds[i].len, pir, cap, pir_len);
        if (sw != SW_OK || *pir_len > 0)
            break;
    }
    return sw;
}

/* prepare + load; returns the PIR parsed (and checked against the eUICC certificate chain). */
static void install(bench *b, const bpp *p, pir_info *info, uint8_t *pir, size_t cap)
{
    size_t n;
    assert_int_equal(prepare_with(b, p->txid, p->otpk, W.dpf_pb), 0);
    assert_int_equal(load(b, p, pir, cap, &n), SW_OK);
    assert_true(n > 0);
    assert_int_equal(pir_parse(pir, n, info), IFPP_OK);
    assert_memory_equal(info->transaction_id, p->txid, 16);

    /* DPFF06: the PIR verifies with the eUICC's key, whose certificate chains to the CI via the EUM. */
    char name[64];
    cert *ec;
    crypto_key *k;
    snprintf(name, sizeof name, "euicc/%.32s", b->info.eid_text); /* an EID is 32 digits */
    assert_int_equal(testpki_load(W.pki, name, &ec, NULL), IFPP_OK);
    const cert *inter[1] = {W.eum};
    assert_int_equal(cert_verify_chain(W.ci, inter, 1, ec, CERT_ROLE_EUICC, time(NULL), NULL, 0), IFPP_OK);
    assert_int_equal(cert_public_key(ec, &k), IFPP_OK);
    assert_int_equal(pir_verify(info, k), IFPP_OK);
    crypto_key_free(k);
    cert_free(ec);
}

/* ---- the tests ------------------------------------------------------------------------------ */

static void run_install(bool t0)
{
    bench b;
    bench_up(&b, 0, 3);
    euicc_sim_set_t0(b.card, t0);
    uint8_t atr[33];
    size_t atr_len;
    assert_int_equal(euicc_sim_reset(b.card, atr, sizeof atr, &atr_len), IFPP_OK);
    select_isdr(&b);

    uint8_t resp[8192];
    size_t rn;
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x3e\x03\x5c\x01\x5a", 6, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(rn, 21);
    assert_memory_equal(resp + 5, b.info.eid, 16);
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x22\x00", 3, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(resp[0], 0xBF);
    assert_int_equal(resp[1], 0x22);
    /* uiccCapability, a named-bit BIT STRING in DER: no trailing zero bits (X.690 11.2.2). */
    assert_non_null(memmem(resp, rn, "\x85\x03\x00\x06\x7f\x88", 6));

    assert_int_equal(authorise(&b), 0);
    bpp p;
    make_bpp(&p, &b, 1, 16 * 1024);
    pir_info info;
    uint8_t pir[2048];
    install(&b, &p, &info, pir, sizeof pir);
    assert_true(info.success);
    assert_true(info.has_iccid);
    /* SGP.22: smdpOid as in CERT.DPpb (2.999.10) right after the metadata, and simaResponse holding
     * one EUICCResponse SEQUENCE whose peStatus says ok. */
    uint8_t *oid_at = memmem(pir, info.raw_len, "\x06\x03\x88\x37\x0a\xa2", 6);
    assert_non_null(oid_at);
    assert_true(tu_hex_equal(info.smdp_oid, info.smdp_oid_len, "88370A"));
    assert_non_null(memmem(pir, info.raw_len, "\x04\x09\x30\x07\xa0\x05\x30\x03\x80\x01\x00\x5f\x37", 13));
    assert_int_equal(info.sima_count, 1);
    char why[256];
    assert_int_equal(pir_match_vault(&info, info.iccid, W.dpf_pb, why, sizeof why), IFPP_OK);
    char iccid_text[ICCID_TEXT_LEN];
    assert_int_equal(iccid_to_text(info.iccid, iccid_text), IFPP_OK); /* a real ICCID, Luhn and all */
    assert_int_equal(euicc_sim_otk_count(b.card), 2);
    assert_int_equal(euicc_sim_profile_count(b.card), 1);
    assert_int_equal(euicc_sim_notification_count(b.card), 1);

    /* the card keeps the PIR until told it was received */
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x2b\x00", 3, resp, sizeof resp, &rn), SW_OK);
    assert_non_null(memmem(resp, rn, pir, info.raw_len));
    /* ListNotification (SGP.22 'BF28'): the PIR's NotificationMetadata, for all or the install bit only. */
    tlv top, meta;
    tlv_reader pr, dr;
    tlv_reader_init(&pr, pir, info.raw_len, TLV_DER);
    tlv_reader_next(&pr, &top);
    tlv_reader_enter(&pr, &top, &dr);
    tlv_reader_expect(&dr, 0xBF27, &top);
    tlv_reader_enter(&dr, &top, &pr);
    tlv_reader_next(&pr, &meta);
    assert_int_equal(tlv_reader_expect(&pr, 0xBF2F, &meta), IFPP_OK);
    static const uint8_t *const lists[] = {(const uint8_t *)"\xbf\x28\x00",
                                           (const uint8_t *)"\xbf\x28\x04\x81\x02\x07\x80"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(call(&b, lists[i], i ? 7 : 3, resp, sizeof resp, &rn), SW_OK);
        assert_int_equal(rn, 3 + 2 + meta.raw_len);
        assert_true(tu_hex_equal(resp, 2, "BF28"));
        assert_int_equal(resp[3], 0xA0);
        assert_memory_equal(resp + 5, meta.raw, meta.raw_len);
    }
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x28\x04\x81\x02\x04\x10", 7, resp, sizeof resp, &rn), SW_OK);
    assert_true(tu_hex_equal(resp, rn, "BF2802A000")); /* delete notifications only: none */
    uint8_t sent[] = {0xBF, 0x30, 0x03, 0x80, 0x01, (uint8_t)info.seq_number};
    assert_int_equal(call(&b, sent, sizeof sent, resp, sizeof resp, &rn), SW_OK);
    uint8_t result;
    assert_int_equal(es10_parse_result(resp, rn, 0xBF30, 0x80, &result), IFPP_OK);
    assert_int_equal(result, 0);
    assert_int_equal(euicc_sim_notification_count(b.card), 0);

    /* EUICCF04: no LPA services while One-time Keys remain */
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x2d\x00", 3, resp, sizeof resp, &rn), SW_CONDITIONS_NOT_SATISFIED);
    /* EUICCF03: count, delete, count again */
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x72\x00", 3, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(es10_parse_result(resp, rn, 0xBF72, 0x80, &result), IFPP_OK);
    assert_int_equal(result, 2);
    /* the list, strictly: the public halves the EUM shipped, as many as counted */
    uint8_t otpks[4][65];
    assert_int_equal(es10_parse_otk_info(resp, rn, otpks, 4, &result), IFPP_OK);
    assert_int_equal(result, 2);
    for (int k = 0; k < 2; k++) { /* each one of the keys the EUM made, none twice */
        size_t found = 0;
        for (size_t j = 0; j < b.info.n_otks; j++)
            found += memcmp(otpks[k], b.info.otpk[j], 65) == 0;
        assert_int_equal(found, 1);
    }
    assert_memory_not_equal(otpks[0], otpks[1], 65);
    /* the count now disagrees with the list: 'BF72' length '80' 01 count */
    size_t at = 2 + (resp[2] < 0x80 ? 1 : 1 + (size_t)(resp[2] & 0x7F));
    assert_int_equal(resp[at], 0x80);
    resp[at + 2] = 3;
    assert_int_equal(es10_parse_otk_info(resp, rn, otpks, 4, &result), IFPP_E_RANGE);
    resp[at + 2] = 2;
    resp[rn - 1] ^= 0xFF; /* a key byte: still well-formed, the station compares it */
    assert_int_equal(es10_parse_otk_info(resp, rn, otpks, 4, &result), IFPP_OK);
    static const uint8_t wrong_tag[] = {0xBF, 0x72, 0x05, 0x80, 0x01, 0x00, 0xA2, 0x00};
    static const uint8_t short_key[] = {0xBF, 0x72, 0x0A, 0x80, 0x01, 0x01, 0xA1, 0x05, 0x5F, 0x49, 0x02, 0x04, 0x00};
    static const uint8_t trailing[] = {0xBF, 0x72, 0x08, 0x80, 0x01, 0x00, 0xA1, 0x00, 0x81, 0x01, 0x00};
    assert_int_equal(es10_parse_otk_info(wrong_tag, sizeof wrong_tag, NULL, 0, &result), IFPP_E_TLV_UNEXPECTED_TAG);
    assert_int_not_equal(es10_parse_otk_info(short_key, sizeof short_key, NULL, 0, &result), IFPP_OK);
    assert_int_equal(es10_parse_otk_info(trailing, sizeof trailing, NULL, 0, &result), IFPP_E_TLV_TRAILING);
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x73\x00", 3, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(es10_parse_result(resp, rn, 0xBF73, 0x02, &result), IFPP_OK);
    assert_int_equal(result, 0);
    assert_int_equal(euicc_sim_otk_count(b.card), 0);
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x72\x00", 3, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(es10_parse_result(resp, rn, 0xBF72, 0x80, &result), IFPP_OK);
    assert_int_equal(result, 0);
    /* now LPA services answer, and FPA services are gone for good */
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x2d\x00", 3, resp, sizeof resp, &rn), SW_OK);
    assert_non_null(memmem(resp, rn, info.iccid, 10));
    assert_int_equal(authorise(&b), 4);

    /* the card's NVM survives a close and reopen */
    euicc_sim_close(b.card);
    assert_int_equal(euicc_sim_open(b.path, &b.card), IFPP_OK);
    assert_int_equal(euicc_sim_profile_count(b.card), 1);
    assert_int_equal(euicc_sim_otk_count(b.card), 0);
    free(p.der);
    bench_down(&b);
}

static void test_install_t1(void **state) { (void)state; run_install(false); }
static void test_install_t0(void **state) { (void)state; run_install(true); }

/* Byte offsets inside the BPP's commands where a flip must be caught, and the reason expected. */
static void test_bit_flips_refused(void **state)
{
    (void)state;
    bench b;
    bench_up(&b, 0, 2);
    select_isdr(&b);
    bpp good;
    make_bpp(&good, &b, 0, 12 * 1024);
    es10f_bpp_command cmds[64];
    size_t count;
    assert_int_equal(es10f_bpp_split(good.der, good.len, cmds, 64, &count), IFPP_OK);
    /* command 0: BF36+BF23; 1: A0; 2: A1 hdr; 3: 88; then A2, A3 hdr, 86... */
    struct { size_t cmd; size_t from_end; uint8_t reason; } flips[] = {
        {0, 10, 2},          /* inside smdpSign: invalidSignature */
        {0, 100, 2},         /* inside otPK.DP: signature covers it */
        {1, 5, 8},           /* the 87 ConfigureISDP MAC: scp03tSecurityError */
        {3, 20, 8},          /* the 88 StoreMetadata data */
        {count - 1, 30, 8},  /* the last 86 */
        {count - 5, 500, 8}, /* an 86 in the middle */
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        bpp bad = good;
        bad.der = malloc(good.len);
        memcpy(bad.der, good.der, good.len);
        size_t at = (size_t)(cmds[flips[i].cmd].data - good.der) + cmds[flips[i].cmd].len - flips[i].from_end;
        bad.der[at] ^= 0x04;
        assert_int_equal(authorise(&b), 0);
        assert_int_equal(prepare_with(&b, bad.txid, bad.otpk, W.dpf_pb), 0);
        uint8_t pir[2048];
        size_t n;
        assert_int_equal(load(&b, &bad, pir, sizeof pir, &n), SW_OK);
        pir_info info;
        assert_int_equal(pir_parse(pir, n, &info), IFPP_OK);
        assert_false(info.success);
        if (info.error_reason != flips[i].reason)
            fail_msg("flip %zu: reason %s, expected %s", i, pir_error_reason_str(info.error_reason),
                     pir_error_reason_str(flips[i].reason));
        assert_int_equal(euicc_sim_otk_count(b.card), 2); /* nothing consumed */
        assert_int_equal(euicc_sim_profile_count(b.card), 0);
        free(bad.der);
    }
    /* the untouched BPP still installs: the refusals consumed nothing */
    assert_int_equal(authorise(&b), 0);
    pir_info info;
    uint8_t pir[2048];
    install(&b, &good, &info, pir, sizeof pir);
    assert_true(info.success);
    assert_int_equal(euicc_sim_otk_count(b.card), 1);
    free(good.der);
    bench_down(&b);
}

/* A profile whose ProfileHeader names another ICCID than StoreMetadata: refused, as a real eUICC does. */
static void test_profile_iccid_mismatch(void **state)
{
    (void)state;
    bench b;
    bench_ready(&b, 0, 1);
    uint8_t iccid[10], other[10];
    assert_int_equal(smdpf_random_iccid(iccid), IFPP_OK);
    assert_int_equal(smdpf_random_iccid(other), IFPP_OK);
    bpp p;
    crypto_random(p.txid, 16);
    p.otpk = b.info.otpk[0];
    smdpf_bpp_params sp = {
        .dpf_pb_key = W.dpf_pb_key, .euicc_otpk = p.otpk, .curve = CRYPTO_CURVE_P256, .eid = b.info.eid,
        .transaction_id = p.txid, .transaction_id_len = 16, .iccid = iccid, .service_provider = "Operator A",
        .profile_name = "Operator A consumer EU", .content_len = 4096, .profile_iccid = other,
    };
    assert_int_equal(smdpf_make_bpp(&sp, &p.der, &p.len), IFPP_OK);
    assert_int_equal(prepare_with(&b, p.txid, p.otpk, W.dpf_pb), 0);
    uint8_t pir[2048];
    size_t n;
    pir_info info;
    assert_int_equal(load(&b, &p, pir, sizeof pir, &n), SW_OK);
    assert_int_equal(pir_parse(pir, n, &info), IFPP_OK);
    assert_false(info.success);
    assert_int_equal(info.bpp_command_id, 5); /* loadProfileElements */
    assert_int_equal(info.error_reason, 13);  /* installFailedDueToIccidMismatch */
    assert_memory_equal(info.iccid, iccid, 10);
    assert_int_equal(euicc_sim_profile_count(b.card), 0);
    assert_int_equal(euicc_sim_otk_count(b.card), 1); /* nothing installed: the key stays */
    free(p.der);
    bench_down(&b);
}

static void test_bpp_for_another_euicc(void **state)
{
    (void)state;
    bench a, other;
    bench_up(&a, 0, 2);
    bench_up(&other, 1, 1);
    select_isdr(&a);
    assert_int_equal(authorise(&a), 0);
    bpp p;
    make_bpp(&p, &other, 0, 8 * 1024);
    /* naming the other card's key: the card has no such key */
    assert_int_equal(prepare_with(&a, p.txid, p.otpk, W.dpf_pb), 3);
    /* naming one of its own keys for a BPP bound to the other card: smdpSign does not cover it */
    bpp lie = p;
    lie.otpk = a.info.otpk[0];
    assert_int_equal(prepare_with(&a, lie.txid, lie.otpk, W.dpf_pb), 0);
    uint8_t pir[2048];
    size_t n;
    assert_int_equal(load(&a, &lie, pir, sizeof pir, &n), SW_OK);
    pir_info info;
    assert_int_equal(pir_parse(pir, n, &info), IFPP_OK);
    assert_false(info.success);
    assert_int_equal(info.bpp_command_id, 0);
    assert_int_equal(info.error_reason, 2);
    assert_int_equal(euicc_sim_otk_count(a.card), 2);
    assert_int_equal(euicc_sim_profile_count(a.card), 0);
    free(p.der);
    bench_down(&a);
    bench_down(&other);
}

static void test_reused_one_time_key(void **state)
{
    (void)state;
    bench b;
    bench_ready(&b, 0, 2);
    bpp first, second;
    make_bpp(&first, &b, 0, 8 * 1024);
    make_bpp(&second, &b, 0, 8 * 1024); /* a second BPP bound to the same One-time Key */
    pir_info info;
    uint8_t pir[2048];
    install(&b, &first, &info, pir, sizeof pir);
    assert_true(info.success);
    assert_int_equal(prepare_with(&b, second.txid, second.otpk, W.dpf_pb), 3); /* GENS08 */
    assert_int_equal(prepare_with(&b, first.txid, first.otpk, W.dpf_pb), 3);   /* replay of the first */
    assert_int_equal(euicc_sim_otk_count(b.card), 1);
    assert_int_equal(euicc_sim_profile_count(b.card), 1);
    free(first.der);
    free(second.der);
    bench_down(&b);
}

static void test_wrong_smdpf_chain(void **state)
{
    (void)state;
    bench b;
    bench_ready(&b, 0, 2);
    bpp p;
    make_bpp(&p, &b, 0, 8 * 1024);
    assert_int_equal(prepare_with(&b, p.txid, p.otpk, W.other_dpf_pb), 2); /* another CI: ciPKUnknown */
    assert_int_equal(prepare_with(&b, p.txid, p.otpk, W.dpf_auth), 1);     /* right CI, wrong role */
    /* a BPP signed by another SM-DPf's binding key, presented with the genuine certificate */
    bpp forged;
    make_bpp_with(&forged, b.info.otpk[0], b.info.eid, W.other_dpf_pb_key, 8 * 1024, false);
    assert_int_equal(prepare_with(&b, forged.txid, forged.otpk, W.dpf_pb), 0);
    uint8_t pir[2048];
    size_t n;
    assert_int_equal(load(&b, &forged, pir, sizeof pir, &n), SW_OK);
    pir_info info;
    assert_int_equal(pir_parse(pir, n, &info), IFPP_OK);
    assert_int_equal(info.error_reason, 2);
    assert_int_equal(euicc_sim_otk_count(b.card), 2);
    free(p.der);
    free(forged.der);
    bench_down(&b);
}

static void test_unauthorised_fpa(void **state)
{
    (void)state;
    bench b;
    bench_up(&b, 0, 2);
    select_isdr(&b);
    bpp p;
    make_bpp(&p, &b, 0, 8 * 1024);
    uint8_t resp[512], result;
    size_t rn;
    assert_int_equal(prepare_with(&b, p.txid, p.otpk, W.dpf_pb), 4);             /* fpaNotAuthorised */
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x73\x00", 3, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(es10_parse_result(resp, rn, 0xBF73, 0x02, &result), IFPP_OK);
    assert_int_equal(result, 1);                                                  /* no deletion */
    size_t n;
    uint8_t pir[2048];
    assert_int_equal(load(&b, &p, pir, sizeof pir, &n), SW_CONDITIONS_NOT_SATISFIED); /* BPP without prepare */
    assert_int_equal(authorise_with(&b, W.station_key, W.dm_fpa), 2);          /* wrong key: invalidSignature */
    assert_int_equal(authorise_with(&b, W.other_dm_fpa_key, W.other_dm_fpa), 1); /* other DM root */

    /* a challenge is good once */
    uint8_t req[2048];
    size_t qn;
    tlv t;
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x2e\x00", 3, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(tlv_parse_exact(resp, rn, TLV_DER, &t), IFPP_OK);
    assert_int_equal(es10_build_authorise(t.value + 2, b.info.eid, W.dm_fpa_key, W.dm_fpa, req, sizeof req, &qn), IFPP_OK);
    assert_int_equal(call(&b, req, qn, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(es10_parse_result(resp, rn, 0xBF70, 0x02, &result), IFPP_OK);
    assert_int_equal(result, 0);
    assert_int_equal(call(&b, req, qn, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(es10_parse_result(resp, rn, 0xBF70, 0x02, &result), IFPP_OK);
    assert_int_equal(result, 3);                                                  /* challengeMismatch */
    /* the failed replay also ended the authorisation; a new SELECT ends any */
    assert_int_equal(prepare_with(&b, p.txid, p.otpk, W.dpf_pb), 4);
    assert_int_equal(authorise(&b), 0);
    select_isdr(&b);
    assert_int_equal(prepare_with(&b, p.txid, p.otpk, W.dpf_pb), 4);
    assert_int_equal(euicc_sim_otk_count(b.card), 2);
    free(p.der);
    bench_down(&b);
}

/* A DUT pulled mid-BPP, and a power cut in the card's own write: nothing half-done survives. */
static void test_tear_and_power_cut(void **state)
{
    (void)state;
    bench b;
    bench_up(&b, 0, 2);
    bpp p;
    make_bpp(&p, &b, 0, 10 * 1024);
    uint8_t pir[2048], atr[33];
    size_t n, atr_len;
    for (unsigned tear = 8; tear < 50; tear += 6) { /* the whole session is about 57 APDUs */
        select_isdr(&b);
        assert_int_equal(authorise(&b), 0);
        assert_int_equal(prepare_with(&b, p.txid, p.otpk, W.dpf_pb), 0);
        euicc_sim_faults f = {.tear_at_apdu = tear};
        euicc_sim_set_faults(b.card, &f);
        es10f_bpp_command cmds[64];
        size_t count;
        assert_int_equal(es10f_bpp_split(p.der, p.len, cmds, 64, &count), IFPP_OK);
        ifpp_err e = IFPP_OK;
        uint16_t sw;
        for (size_t i = 0; i < count && e == IFPP_OK; i++)
            e = es10f_call(tx, b.card, 0, cmds[i].data, cmds[i].len, pir, sizeof pir, &n, &sw);
        if (e != IFPP_E_IO)
            fail_msg("tear at APDU %u: the session ended with %s before it", tear, err_name(e));
        euicc_sim_set_faults(b.card, NULL);
        assert_int_equal(euicc_sim_reset(b.card, atr, sizeof atr, &atr_len), IFPP_OK);
        assert_int_equal(euicc_sim_otk_count(b.card), 2);
        assert_int_equal(euicc_sim_profile_count(b.card), 0);
    }
    /* the power goes while the card writes the installation: the NVM keeps the old state */
    select_isdr(&b);
    assert_int_equal(authorise(&b), 0);
    assert_int_equal(prepare_with(&b, p.txid, p.otpk, W.dpf_pb), 0);
    euicc_sim_faults cut = {.power_cut_in_write = true};
    euicc_sim_set_faults(b.card, &cut);
    es10f_bpp_command cmds[64];
    size_t count;
    uint16_t sw;
    ifpp_err e = IFPP_OK;
    assert_int_equal(es10f_bpp_split(p.der, p.len, cmds, 64, &count), IFPP_OK);
    for (size_t i = 0; i < count && e == IFPP_OK; i++)
        e = es10f_call(tx, b.card, 0, cmds[i].data, cmds[i].len, pir, sizeof pir, &n, &sw);
    assert_int_equal(e, IFPP_E_IO);
    /* power back on without reopening: the card comes back with its NVM, not with what it half-did */
    assert_int_equal(euicc_sim_reset(b.card, atr, sizeof atr, &atr_len), IFPP_OK);
    assert_int_equal(euicc_sim_otk_count(b.card), 2);
    assert_int_equal(euicc_sim_profile_count(b.card), 0);
    euicc_sim_close(b.card);
    assert_int_equal(euicc_sim_open(b.path, &b.card), IFPP_OK);
    assert_int_equal(euicc_sim_otk_count(b.card), 2);
    assert_int_equal(euicc_sim_profile_count(b.card), 0);
    assert_int_equal(euicc_sim_notification_count(b.card), 0);
    /* and the same BPP then installs */
    assert_int_equal(euicc_sim_reset(b.card, atr, sizeof atr, &atr_len), IFPP_OK);
    select_isdr(&b);
    assert_int_equal(authorise(&b), 0);
    pir_info info;
    install(&b, &p, &info, pir, sizeof pir);
    assert_true(info.success);
    free(p.der);
    bench_down(&b);
}

/* Use case A.4: after production, the profile is deleted and the card signs a notification. */
static void test_delete_profile_notification(void **state)
{
    (void)state;
    bench b;
    bench_ready(&b, 0, 2);
    bpp p;
    make_bpp(&p, &b, 0, 8 * 1024);
    pir_info info;
    uint8_t pir[2048], resp[8192], result;
    size_t rn;
    install(&b, &p, &info, pir, sizeof pir);
    uint8_t del[] = {0xBF, 0x33, 0x0C, 0x5A, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(del + 5, info.iccid, 10);
    /* EUICCF04: one One-time Key is left, so this LPA service is refused */
    assert_int_equal(call(&b, del, sizeof del, resp, sizeof resp, &rn), SW_CONDITIONS_NOT_SATISFIED);
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x73\x00", 3, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(euicc_sim_otk_count(b.card), 0);
    uint8_t sent[] = {0xBF, 0x30, 0x03, 0x80, 0x01, (uint8_t)info.seq_number};
    assert_int_equal(call(&b, sent, sizeof sent, resp, sizeof resp, &rn), SW_OK);

    assert_int_equal(call(&b, del, sizeof del, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(es10_parse_result(resp, rn, 0xBF33, 0x80, &result), IFPP_OK);
    assert_int_equal(result, 0);
    assert_int_equal(euicc_sim_profile_count(b.card), 0);
    assert_int_equal(euicc_sim_notification_count(b.card), 1);
    assert_int_equal(call(&b, del, sizeof del, resp, sizeof resp, &rn), SW_OK);
    assert_int_equal(es10_parse_result(resp, rn, 0xBF33, 0x80, &result), IFPP_OK);
    assert_int_equal(result, 1); /* iccidOrAidNotFound */

    /* the deletion notification: BF2B { A0 { 30 { BF2F, 5F37, CERT.EUICC, CERT.EUM } } }, signed */
    assert_int_equal(call(&b, (const uint8_t *)"\xbf\x2b\x00", 3, resp, sizeof resp, &rn), SW_OK);
    tlv top, list, n, meta, sig, ec;
    tlv_reader r0, r1, r2, r3;
    assert_int_equal(tlv_parse_exact(resp, rn, TLV_DER, &top), IFPP_OK);
    tlv_reader_init(&r0, resp, rn, TLV_DER);
    assert_int_equal(tlv_reader_enter(&r0, &top, &r1), IFPP_OK);
    assert_int_equal(tlv_reader_expect(&r1, 0xA0, &list), IFPP_OK);
    assert_int_equal(tlv_reader_enter(&r1, &list, &r2), IFPP_OK);
    assert_int_equal(tlv_reader_expect(&r2, 0x30, &n), IFPP_OK);
    assert_int_equal(tlv_reader_enter(&r2, &n, &r3), IFPP_OK);
    assert_int_equal(tlv_reader_expect(&r3, 0xBF2F, &meta), IFPP_OK);
    assert_non_null(memmem(meta.value, meta.len, info.iccid, 10));
    assert_int_equal(tlv_reader_expect(&r3, 0x5F37, &sig), IFPP_OK);
    assert_int_equal(tlv_reader_expect(&r3, 0x30, &ec), IFPP_OK);
    cert *c;
    crypto_key *k;
    assert_int_equal(cert_parse_der(ec.raw, ec.raw_len, &c), IFPP_OK);
    assert_int_equal(cert_public_key(c, &k), IFPP_OK);
    assert_int_equal(crypto_ecdsa_verify(k, meta.raw, meta.raw_len, CRYPTO_SIG_RAW, sig.value, sig.len), IFPP_OK);
    crypto_key_free(k);
    cert_free(c);
    free(p.der);
    bench_down(&b);
}

/* GENS12: the EUM's package opens against the CI, and every One-time Key's proof verifies. */
static void test_eum_data_package(void **state)
{
    (void)state;
    bench a, c;
    bench_up(&a, 0, 3);
    bench_up(&c, 1, 2);
    eum_card cards[2] = {a.info, c.info};
    const char *paths[2] = {a.path, c.path};
    uint8_t *pkg;
    size_t n;
    euicc_sim_close(a.card);
    euicc_sim_close(c.card);
    a.card = c.card = NULL;
    assert_int_equal(eum_data_package(W.pki, cards, paths, 2, &pkg, &n), IFPP_OK);
    bundle_view v;
    char why[256];
    assert_int_equal(bundle_open(pkg, n, BUNDLE_EUICC_DATA, W.ci, time(NULL), &v, why, sizeof why), IFPP_OK);
    /* walk: SEQUENCE { version, id, SEQUENCE OF EuiccRecord } */
    tlv top, f, list, rec;
    tlv_reader r0, r, lr, rr;
    tlv_parse_exact(v.content, v.content_len, TLV_DER, &top);
    tlv_reader_init(&r0, v.content, v.content_len, TLV_DER);
    tlv_reader_enter(&r0, &top, &r);
    assert_int_equal(tlv_reader_expect(&r, 0x02, &f), IFPP_OK);
    assert_int_equal(tlv_reader_expect(&r, 0x04, &f), IFPP_OK);
    assert_int_equal(tlv_reader_expect(&r, 0x30, &list), IFPP_OK);
    tlv_reader_enter(&r, &list, &lr);
    size_t records = 0, keys = 0;
    while (tlv_reader_next(&lr, &rec) == IFPP_OK) {
        tlv eid, ec, info2, otks, otk;
        tlv_reader_enter(&lr, &rec, &rr);
        assert_int_equal(tlv_reader_expect(&rr, 0x5A, &eid), IFPP_OK);
        assert_int_equal(tlv_reader_expect(&rr, 0x30, &ec), IFPP_OK);
        assert_int_equal(tlv_reader_expect(&rr, 0xBF22, &info2), IFPP_OK);
        assert_int_equal(tlv_reader_expect(&rr, 0x30, &otks), IFPP_OK);
        cert *euicc;
        crypto_key *k;
        assert_int_equal(cert_parse_der(ec.raw, ec.raw_len, &euicc), IFPP_OK);
        const cert *inter[1] = {v.signer};
        assert_int_equal(cert_verify_chain(W.ci, inter, 1, euicc, CERT_ROLE_EUICC, time(NULL), NULL, 0), IFPP_OK);
        assert_int_equal(cert_public_key(euicc, &k), IFPP_OK);
        tlv_reader kr, pr;
        tlv_reader_enter(&rr, &otks, &kr);
        while (tlv_reader_next(&kr, &otk) == IFPP_OK) {
            tlv pub, proof;
            tlv_reader_enter(&kr, &otk, &pr);
            assert_int_equal(tlv_reader_expect(&pr, 0x5F49, &pub), IFPP_OK);
            assert_int_equal(tlv_reader_expect(&pr, 0x5F37, &proof), IFPP_OK);
            uint8_t tbs[86];
            memcpy(tbs, eid.raw, 18);
            memcpy(tbs + 18, pub.raw, 68);
            assert_int_equal(crypto_ecdsa_verify(k, tbs, sizeof tbs, CRYPTO_SIG_RAW, proof.value, proof.len), IFPP_OK);
            tbs[40] ^= 1; /* a key the eUICC did not sign */
            assert_int_equal(crypto_ecdsa_verify(k, tbs, sizeof tbs, CRYPTO_SIG_RAW, proof.value, proof.len),
                             IFPP_E_SIGNATURE);
            keys++;
        }
        crypto_key_free(k);
        cert_free(euicc);
        records++;
    }
    assert_int_equal(records, 2);
    assert_int_equal(keys, 5);
    bundle_view_free(&v);

    /* the package against another root, with a flipped byte, or as the wrong bundle type */
    assert_int_equal(bundle_open(pkg, n, BUNDLE_BPP_VAULT, W.ci, time(NULL), &v, why, sizeof why),
                     IFPP_E_TLV_UNEXPECTED_TAG);
    pkg[n / 2] ^= 0x01;
    assert_int_not_equal(bundle_open(pkg, n, BUNDLE_EUICC_DATA, W.ci, time(NULL), &v, why, sizeof why), IFPP_OK);
    free(pkg);
    free(a.path);
    free(c.path);
}


/* ---- the air gap: BPP request -> vault -> loading -> report, as the station will do it ------- */

/* A station-signed bundle of one type around content. */
static uint8_t *station_seal(bundle_type t, tlv_builder *content, size_t *n)
{
    const uint8_t *der;
    size_t len;
    uint8_t *out;
    cert *st;
    crypto_key *k;
    assert_int_equal(tlv_builder_finish(content, &der, &len), IFPP_OK);
    assert_int_equal(testpki_load(W.pki, "station", &st, &k), IFPP_OK);
    const cert *chain[1] = {st};
    assert_int_equal(bundle_seal(t, der, len, k, chain, 1, &out, n), IFPP_OK);
    cert_free(st);
    crypto_key_free(k);
    return out;
}

static void put_cert(tlv_builder *b, const cert *c)
{
    const uint8_t *der;
    size_t n;
    cert_der(c, &der, &n);
    tlv_put_raw(b, der, n);
}

/* Opens a ProfileLoadingReport up to its results list (the caller adds results and closes two levels). */
static void begin_report(tlv_builder *b, const char id[16])
{
    tlv_builder_init_dynamic(b, 1 << 22);
    tlv_begin(b, 0x30);
    tlv_put_uint(b, 0x02, 1);
    tlv_put(b, 0x04, id, 16);
    tlv_put(b, 0x0C, "station-01", 10);
    tlv_put(b, 0x18, "20261125000000Z", 15);
    tlv_put(b, 0x18, "20261125235959Z", 15);
    tlv_begin(b, 0x30);
    put_cert(b, W.eum);
    tlv_end(b);
    tlv_begin(b, 0x30);
}

static cert *euicc_cert_of(const bench *b)
{
    char name[64];
    cert *c;
    snprintf(name, sizeof name, "euicc/%.32s", b->info.eid_text); /* an EID is 32 digits */
    assert_int_equal(testpki_load(W.pki, name, &c, NULL), IFPP_OK);
    return c;
}

/* BppRequest for keys [0, n) of each bench; forge > 0 spoils that many proofs. */
static uint8_t *make_request(bench *benches, size_t n_benches, size_t keys_each, int forge, size_t *len)
{
    tlv_builder b;
    uint8_t id[16] = {1};
    tlv_builder_init_dynamic(&b, 1 << 22);
    tlv_begin(&b, 0x30);
    tlv_put_uint(&b, 0x02, 1);
    tlv_put(&b, 0x04, id, 16);
    tlv_put(&b, 0x0C, "station-01", 10);
    tlv_begin(&b, 0x30);
    put_cert(&b, W.eum);
    tlv_end(&b);
    tlv_begin(&b, 0x30);
    for (size_t i = 0; i < n_benches; i++) {
        cert *ec = euicc_cert_of(&benches[i]);
        uint8_t info2[512];
        size_t info2_len;
        assert_int_equal(euicc_sim_info2(benches[i].card, info2, sizeof info2, &info2_len), IFPP_OK);
        for (size_t k = 0; k < keys_each; k++) {
            uint8_t proof[64];
            memcpy(proof, benches[i].info.proof[k], 64);
            if (forge-- > 0)
                proof[10] ^= 0x40;
            tlv_begin(&b, 0x30);
            tlv_put(&b, 0x5A, benches[i].info.eid, 16);
            put_cert(&b, ec);
            tlv_put_raw(&b, info2, info2_len);
            tlv_begin(&b, 0x30);
            tlv_put(&b, 0x5F49, benches[i].info.otpk[k], 65);
            tlv_put(&b, 0x5F37, proof, 64);
            tlv_end(&b);
            tlv_put(&b, 0x0C, "operatorA-eu", 12);
            tlv_end(&b);
        }
        cert_free(ec);
    }
    tlv_end(&b);
    tlv_end(&b);
    uint8_t *out = station_seal(BUNDLE_BPP_REQUEST, &b, len);
    tlv_builder_free(&b);
    return out;
}

static void test_vault_and_report(void **state)
{
    (void)state;
    bench benches[2];
    bench_up(&benches[0], 0, 3);
    bench_up(&benches[1], 1, 2);
    size_t req_len, vault_len;
    uint8_t *req = make_request(benches, 2, 2, 0, &req_len);
    uint8_t *vault;
    smdpf_vault_summary vs;
    char why[256] = "";
    assert_int_equal(smdpf_make_vault(W.pki, req, req_len, 9000, &vault, &vault_len, &vs, why, sizeof why), IFPP_OK);
    assert_int_equal(vs.items, 4);
    assert_int_equal(vs.bpps, 4);
    assert_int_equal(vs.refused, 0);

    /* the station opens the vault against the CI and loads every BPP into its eUICC */
    bundle_view v;
    assert_int_equal(bundle_open(vault, vault_len, BUNDLE_BPP_VAULT, W.ci, time(NULL), &v, why, sizeof why), IFPP_OK);
    tlv top, f, items, item, pb;
    tlv_reader r0, r, ir, it;
    tlv_parse_exact(v.content, v.content_len, TLV_DER, &top);
    tlv_reader_init(&r0, v.content, v.content_len, TLV_DER);
    tlv_reader_enter(&r0, &top, &r);
    tlv_reader_expect(&r, 0x02, &f);
    tlv_reader_expect(&r, 0x04, &f);
    assert_int_equal(tlv_reader_expect(&r, 0x30, &pb), IFPP_OK);
    cert *dpf_pb;
    assert_int_equal(cert_parse_der(pb.raw, pb.raw_len, &dpf_pb), IFPP_OK);
    assert_int_equal(tlv_reader_expect(&r, 0x30, &items), IFPP_OK);
    tlv_reader_enter(&r, &items, &ir);

    tlv_builder rep;
    begin_report(&rep, "report-000000001");
    size_t loaded = 0;
    uint8_t forged_pir[2048];
    size_t forged_len = 0;
    while (tlv_reader_next(&ir, &item) == IFPP_OK) {
        tlv txid, eid, otpk, hash, bpp_tlv, iccid, type;
        tlv_reader_enter(&ir, &item, &it);
        assert_int_equal(tlv_reader_expect(&it, 0x80, &txid), IFPP_OK);
        assert_int_equal(tlv_reader_expect(&it, 0x5A, &eid), IFPP_OK);
        assert_int_equal(tlv_reader_expect(&it, 0x5F49, &otpk), IFPP_OK);
        assert_int_equal(tlv_reader_expect(&it, 0x81, &iccid), IFPP_OK);
        assert_int_equal(tlv_reader_expect(&it, 0x0C, &type), IFPP_OK);
        assert_int_equal(tlv_reader_expect(&it, 0x82, &hash), IFPP_OK);
        assert_int_equal(tlv_reader_expect(&it, 0xBF36, &bpp_tlv), IFPP_OK);
        uint8_t h[32];
        crypto_sha256(bpp_tlv.raw, bpp_tlv.raw_len, h);
        assert_memory_equal(h, hash.value, 32);
        bench *b = memcmp(eid.value, benches[0].info.eid, 16) == 0 ? &benches[0] : &benches[1];
        select_isdr(b);
        assert_int_equal(authorise(b), 0);
        bpp p = {.der = (uint8_t *)bpp_tlv.raw, .len = bpp_tlv.raw_len, .otpk = otpk.value};
        memcpy(p.txid, txid.value, 16);
        assert_int_equal(prepare_with(b, p.txid, p.otpk, dpf_pb), 0);
        uint8_t pir[2048];
        size_t pn;
        assert_int_equal(load(b, &p, pir, sizeof pir, &pn), SW_OK);
        pir_info info;
        assert_int_equal(pir_parse(pir, pn, &info), IFPP_OK);
        assert_true(info.success);
        assert_memory_equal(info.iccid, iccid.value, 10);
        cert *ec = euicc_cert_of(b);
        tlv_begin(&rep, 0x30);
        tlv_put_raw(&rep, txid.raw, txid.raw_len);
        tlv_put_raw(&rep, eid.raw, eid.raw_len);
        tlv_put(&rep, 0x81, "DUT-0001", 8);
        put_cert(&rep, ec);
        tlv_put_raw(&rep, pir, pn);
        tlv_end(&rep);
        if (!forged_len) {
            memcpy(forged_pir, pir, pn);
            forged_len = pn;
        }
        cert_free(ec);
        loaded++;
    }
    assert_int_equal(loaded, 4);
    /* and one profile that produced no PIR (the DUT was scrapped) */
    tlv_begin(&rep, 0x30);
    tlv_put(&rep, 0x80, "no-pir-txid-0001", 16);
    tlv_put(&rep, 0x5A, benches[1].info.eid, 16);
    tlv_begin(&rep, 0xA2);
    tlv_put_uint(&rep, 0x02, 2);
    tlv_put(&rep, 0x0C, "eUICC damaged at fixture 3", 26);
    tlv_put(&rep, 0x18, "20261125120000Z", 15);
    tlv_end(&rep);
    tlv_end(&rep);
    tlv_end(&rep);
    tlv_end(&rep);
    size_t report_len;
    uint8_t *report = station_seal(BUNDLE_LOADING_REPORT, &rep, &report_len);
    smdpf_report_summary rs;
    assert_int_equal(smdpf_verify_report(W.pki, report, report_len, &rs, why, sizeof why), IFPP_OK);
    assert_int_equal(rs.results, 5);
    assert_int_equal(rs.pirs_ok, 4);
    assert_int_equal(rs.installed, 4);
    assert_int_equal(rs.no_result, 1);
    assert_int_equal(rs.bad, 0);
    /* the report altered after signing */
    report[report_len - 80] ^= 1;
    assert_int_not_equal(smdpf_verify_report(W.pki, report, report_len, &rs, why, sizeof why), IFPP_OK);
    free(report);
    tlv_builder_free(&rep);

    /* a station that forges a PIR and signs the report anyway: the SM-DPf still refuses the PIR */
    tlv_builder fr;
    begin_report(&fr, "report-000000002");
    pir_info fi;
    assert_int_equal(pir_parse(forged_pir, forged_len, &fi), IFPP_OK);
    forged_pir[(size_t)(fi.signed_data - forged_pir) + fi.signed_len - 3] ^= 0x01; /* inside BF27 */
    cert *ec = euicc_cert_of(&benches[0]);
    tlv_begin(&fr, 0x30);
    tlv_put(&fr, 0x80, fi.transaction_id, fi.transaction_id_len);
    tlv_put(&fr, 0x5A, benches[0].info.eid, 16);
    put_cert(&fr, ec);
    tlv_put_raw(&fr, forged_pir, forged_len);
    tlv_end(&fr);
    tlv_end(&fr);
    tlv_end(&fr);
    cert_free(ec);
    report = station_seal(BUNDLE_LOADING_REPORT, &fr, &report_len);
    assert_int_equal(smdpf_verify_report(W.pki, report, report_len, &rs, why, sizeof why), IFPP_E_SIGNATURE);
    assert_int_equal(rs.bad, 1);
    free(report);
    tlv_builder_free(&fr);

    /* a request item whose One-time Key proof is forged is refused (DPFF10, GENS12) */
    uint8_t *vault2;
    size_t vault2_len;
    free(req);
    req = make_request(benches, 2, 1, 1, &req_len);
    assert_int_equal(smdpf_make_vault(W.pki, req, req_len, 8192, &vault2, &vault2_len, &vs, why, sizeof why), IFPP_OK);
    assert_int_equal(vs.items, 2);
    assert_int_equal(vs.refused, 1);
    assert_int_equal(vs.bpps, 1);
    free(vault2);
    /* a request not signed by a station is not read at all */
    req[req_len / 3] ^= 0x01;
    assert_int_not_equal(smdpf_make_vault(W.pki, req, req_len, 8192, &vault2, &vault2_len, &vs, why, sizeof why), IFPP_OK);

    cert_free(dpf_pb);
    bundle_view_free(&v);
    free(vault);
    free(req);
    bench_down(&benches[0]);
    bench_down(&benches[1]);
}

/* The commands as the simulated line runs them: ifpp-test-sim eum / smdpf-vault / smdpf-verify-report. */
static void test_cli(void **state)
{
    (void)state;
    const char *tool = tu_tool("IFPP_TEST_SIM", "ifpp-test-sim");
    char *out = tu_path(W.dir, "cli-cards");
    char *pkg = tu_path(out, "euicc-data.der"), *req_path = tu_path(W.dir, "cli-request.der");
    char *vault_path = tu_path(W.dir, "cli-vault.der");
    char text[4096];
    assert_int_equal(mkdir(out, 0700), 0);
    char *eum[] = {(char *)tool, "eum", "--pki", W.pki, "--out", out, "--otks", "2", NULL};
    assert_int_equal(tu_run(eum, text, sizeof text), 0);
    assert_non_null(strstr(text, "2 eUICC(s)"));
    size_t n;
    uint8_t *data = tu_read_file(pkg, &n);
    assert_non_null(data);
    bundle_view v;
    assert_int_equal(bundle_open(data, n, BUNDLE_EUICC_DATA, W.ci, time(NULL), &v, NULL, 0), IFPP_OK);
    bundle_view_free(&v);
    free(data);
    /* a second run would overwrite personalised cards: refused */
    assert_int_equal(tu_run(eum, NULL, 0), 1);

    bench b;
    bench_up(&b, 0, 2);
    size_t req_len;
    uint8_t *req = make_request(&b, 1, 2, 0, &req_len);
    assert_int_equal(tu_write_file(req_path, req, req_len), 0);
    char *vault[] = {(char *)tool, "smdpf-vault", "--pki", W.pki, "--request", req_path, "--out", vault_path,
                     "--profile-size", "8192", NULL};
    assert_int_equal(tu_run(vault, text, sizeof text), 0);
    assert_non_null(strstr(text, "2 BPP(s) bound"));
    data = tu_read_file(vault_path, &n);
    assert_int_equal(bundle_open(data, n, BUNDLE_BPP_VAULT, W.ci, time(NULL), &v, NULL, 0), IFPP_OK);
    bundle_view_free(&v);
    free(data);
    /* the vault is not a report, and a missing file is named */
    char *verify[] = {(char *)tool, "smdpf-verify-report", "--pki", W.pki, "--report", vault_path, NULL};
    assert_int_equal(tu_run(verify, NULL, 0), 1);
    char *usage[] = {(char *)tool, "smdpf-vault", "--pki", W.pki, NULL};
    assert_int_equal(tu_run(usage, NULL, 0), 2);
    free(req);
    bench_down(&b);
    free(out); free(pkg); free(req_path); free(vault_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_t1),
        cmocka_unit_test(test_install_t0),
        cmocka_unit_test(test_bit_flips_refused),
        cmocka_unit_test(test_bpp_for_another_euicc),
        cmocka_unit_test(test_profile_iccid_mismatch),
        cmocka_unit_test(test_reused_one_time_key),
        cmocka_unit_test(test_wrong_smdpf_chain),
        cmocka_unit_test(test_unauthorised_fpa),
        cmocka_unit_test(test_tear_and_power_cut),
        cmocka_unit_test(test_delete_profile_notification),
        cmocka_unit_test(test_eum_data_package),
        cmocka_unit_test(test_vault_and_report),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests_name("euicc_sim", tests, world_setup, world_teardown);
}
