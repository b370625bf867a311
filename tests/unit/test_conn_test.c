/*
 * test_conn_test.c -- EUICCF05 (issue 15 item 5): the optional connectivity test of the profile just
 * installed, end to end on the virtual backend: the slot option (conn-test=off|if-offered|required),
 * the software eUICC offering it, passing, failing, not offering it, or answering hostilely
 * (conn=MODE), the verdict (station_verdict_of), the store's record with the eUICC-signed answer,
 * the audit entry, the CSV/HTML columns; and the strict parser on hand-made answers.
 *
 * The rule under test: the test never changes the PIR's truth (the BPP stays installed, its PIR
 * recorded, whatever the test says); conn-test=required turns anything but a signed ok into a FAIL
 * that names the test; if-offered records and keeps the PIR's verdict.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "es10.h"
#include "euicc_sim.h"
#include "import.h"
#include "report_html.h"
#include "station.h"
#include "testline.h"
#include "testutil.h"

#define N_CARDS 16

static test_line T;
static station *S;
static size_t next_card;

static int setup(void **state)
{
    (void)state;
    char why[512] = "";
    test_line_opts o = {.n_cards = N_CARDS, .profile_size = 2000, .import_vault = true};
    char *dir = tu_mkdtemp("ifpp-conn");
    int rc = dir ? test_line_make(&T, dir, &o, why, sizeof why) : -1;
    free(dir);
    station_config cfg = {.store_path = T.db, .pki_dir = T.pki};
    if (rc == 0 && station_open(&cfg, STATION_NEED_STORE | STATION_NEED_DM_FPA, &S, why, sizeof why) != IFPP_OK)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "setup: %s\n", why);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    station_close(S);
    tu_rmrf(T.dir);
    test_line_free(&T);
    return 0;
}

typedef struct {
    size_t card;
    station_verdict v;
    session_result r;
    store_bpp b;
    size_t audit_entries;
} run;

/* Provisions the next fresh card through the slot "virtual:CARD<opts>" and reads back its BPP. */
static run provision(const char *opts)
{
    run x = {.card = next_card++};
    char spec[1024], why[512] = "";
    station_slot_options so;
    station_slot sl;
    assert_true(x.card < N_CARDS);
    snprintf(spec, sizeof spec, "virtual:%s%s", T.card[x.card], opts);
    assert_int_equal(station_slot_parse(spec, &so, why, sizeof why), IFPP_OK);
    assert_int_equal(station_slot_open(&so, &sl, why, sizeof why), IFPP_OK);
    char serial[32];
    snprintf(serial, sizeof serial, "DUT-%zu", x.card);
    x.v = station_provision(S, &sl, serial, NULL, 0, NULL, NULL, &x.r);
    station_slot_close(&sl);
    printf("    %s -> %s: %s\n", opts, station_verdict_name(x.v), x.r.message);
    assert_true(x.r.txid_len > 0);
    assert_int_equal(store_get_bpp(S->st, x.r.txid, x.r.txid_len, &x.b), IFPP_OK);
    assert_int_equal(store_audit_verify(S->st, &x.audit_entries, why, sizeof why), IFPP_OK);
    return x;
}

/* The PIR's truth, whatever the test said: installed, and the card holds the profile. */
static void assert_installed(const run *x)
{
    assert_true(x->r.installed);
    assert_int_equal(x->b.state, BPP_INSTALLED);
    euicc_sim *card;
    assert_int_equal(euicc_sim_open(T.card[x->card], &card), IFPP_OK);
    assert_int_equal(euicc_sim_profile_count(card), 1);
    euicc_sim_close(card);
}

static store_conn_test_row last_test(const run *x)
{
    store_conn_test_row row;
    assert_int_equal(store_last_conn_test(S->st, x->r.txid, x->r.txid_len, &row), IFPP_OK);
    return row;
}

/* The eUICC certificate's key, from the EUM's package in the store, as the session verifies with it. */
static crypto_key *euicc_key(const uint8_t eid[16])
{
    uint8_t *der;
    size_t n;
    cert *c;
    crypto_key *k;
    assert_int_equal(store_euicc_cert(S->st, eid, &der, &n), IFPP_OK);
    assert_int_equal(cert_parse_der(der, n, &c), IFPP_OK);
    assert_int_equal(cert_public_key(c, &k), IFPP_OK);
    cert_free(c);
    free(der);
    return k;
}

/* A report file as a C string. */
static char *read_text(const char *dir, const char *name)
{
    char *path = tu_path(dir, name);
    size_t n;
    uint8_t *b = tu_read_file(path, &n);
    assert_non_null(b);
    char *s = malloc(n + 1);
    memcpy(s, b, n);
    s[n] = '\0';
    free(b);
    free(path);
    return s;
}

/* Offered and passing: PASS either way; the signed answer is kept and verifies again from the store alone. */
static void test_offered_passing(void **state)
{
    (void)state;
    run x = provision(",conn-test=required");
    assert_int_equal(x.v, STATION_PASS);
    assert_installed(&x);
    assert_int_equal(x.r.conn, SESSION_CONN_PASSED);
    assert_true(x.r.conn_recorded);
    assert_non_null(strstr(x.r.message, "connectivity test (EUICCF05) passed"));
    assert_non_null(strstr(x.r.message, "PLMN 001-01"));
    store_conn_test_row row = last_test(&x);
    assert_int_equal(row.outcome, STORE_CONN_PASSED);
    assert_int_equal(row.result, 0);
    assert_true(row.has_nonce);
    assert_true(row.evidence_len > 64);
    /* evidence: the kept answer verifies with the eUICC's key, for this EID, ICCID and the kept nonce */
    es10_conn_result *res = calloc(1, sizeof *res);
    crypto_key *k = euicc_key(x.b.eid);
    char why[200] = "";
    assert_int_equal(es10_parse_conn_test(row.evidence, row.evidence_len, k, x.b.eid, x.b.iccid, row.nonce, false, res,
                                          why, sizeof why), IFPP_OK);
    assert_int_equal(res->result, ES10_CONN_OK);
    assert_false(res->left_enabled);
    crypto_key_free(k);
    free(res);
    /* if-offered on another card: the same */
    x = provision(",conn-test=if-offered");
    assert_int_equal(x.v, STATION_PASS);
    assert_int_equal(last_test(&x).outcome, STORE_CONN_PASSED);
}

/* Offered and failing: required -> FAIL naming the test, if-offered -> PASS with the failure recorded. */
static void test_offered_failing(void **state)
{
    (void)state;
    run x = provision(",conn-test=required,conn=no-network");
    assert_int_equal(x.v, STATION_DUT_FAIL);
    assert_int_equal(station_exit_code(x.v), STATION_EXIT_DUT_FAIL);
    assert_installed(&x); /* the PIR's truth is not the test's */
    assert_int_equal(x.r.failed_step, SESSION_STEP_CONN_TEST);
    assert_non_null(strstr(x.r.message, "conn-test=required"));
    assert_non_null(strstr(x.r.message, "noNetwork"));
    store_conn_test_row row = last_test(&x);
    assert_int_equal(row.outcome, STORE_CONN_FAILED);
    assert_int_equal(row.result, ES10_CONN_NO_NETWORK);
    assert_true(row.evidence_len > 0); /* a signed failure is evidence too */

    x = provision(",conn-test=if-offered,conn=attach-rejected");
    assert_int_equal(x.v, STATION_PASS);
    assert_installed(&x);
    assert_int_equal(x.r.conn, SESSION_CONN_FAILED);
    assert_non_null(strstr(x.r.message, "connectivity test (EUICCF05) failed"));
    assert_non_null(strstr(x.r.message, "attachRejected"));
    row = last_test(&x);
    assert_int_equal(row.outcome, STORE_CONN_FAILED);
    assert_int_equal(row.result, ES10_CONN_ATTACH_REJECTED);
}

/* Not offered: if-offered -> skipped and recorded as skipped; required -> FAIL naming it. */
static void test_not_offered(void **state)
{
    (void)state;
    run x = provision(",conn-test=if-offered,conn=absent");
    assert_int_equal(x.v, STATION_PASS);
    assert_int_equal(x.r.conn, SESSION_CONN_SKIPPED);
    store_conn_test_row row = last_test(&x);
    assert_int_equal(row.outcome, STORE_CONN_SKIPPED);
    assert_int_equal(row.result, -1);
    assert_int_equal(row.evidence_len, 0);
    assert_false(row.has_nonce);
    assert_non_null(strstr(row.detail, "not offered"));

    x = provision(",conn-test=required,conn=unknown"); /* no BF74 at all: 6A88 */
    assert_int_equal(x.v, STATION_DUT_FAIL);
    assert_installed(&x);
    assert_non_null(strstr(x.r.message, "connectivity test"));
    assert_non_null(strstr(x.r.message, "is not offered"));
    assert_non_null(strstr(x.r.message, "6A88"));
    assert_int_equal(last_test(&x).outcome, STORE_CONN_SKIPPED);
}

/* conn-test=off (the default): no IFPP capability asked, nothing recorded. */
static void test_off(void **state)
{
    (void)state;
    run x = provision("");
    assert_int_equal(x.v, STATION_PASS);
    assert_int_equal(x.r.conn, SESSION_CONN_NOT_RUN);
    store_conn_test_row row;
    assert_int_equal(store_last_conn_test(S->st, x.r.txid, x.r.txid_len, &row), IFPP_E_NOT_FOUND);
    assert_null(strstr(x.r.message, "connectivity"));
}

/*
 * Hostile answers: refused with a clear error, and the store holds nothing of them but the recorded
 * refusal -- no evidence, no result, one row and one audit entry more than a session without the test.
 */
static void test_hostile_answers(void **state)
{
    (void)state;
    static const struct {
        const char *mode, *words;
    } bad[] = {
        {"bad-signature", "not signed by this eUICC"},
        {"wrong-iccid", "for another ICCID"},
        {"wrong-nonce", "for another station nonce"},
        {"left-enabled", "left the Profile enabled"},
        {"overlong", "ConnectivityTest failed"},
    };
    size_t before;
    char why[256];
    assert_int_equal(store_audit_verify(S->st, &before, why, sizeof why), IFPP_OK);
    run off = provision(""); /* the audit entries one session makes without the test */
    size_t per_session = off.audit_entries - before;
    before = off.audit_entries;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char opts[128];
        snprintf(opts, sizeof opts, ",conn-test=%s,conn=%s", i % 2 ? "required" : "if-offered", bad[i].mode);
        run x = provision(opts);
        assert_installed(&x);
        assert_int_equal(x.v, i % 2 ? STATION_DUT_FAIL : STATION_PASS);
        assert_int_equal(x.r.conn, SESSION_CONN_REFUSED);
        assert_true(x.r.conn_recorded);
        assert_non_null(strstr(x.r.conn_detail, bad[i].words));
        if (i % 2)
            assert_non_null(strstr(x.r.message, bad[i].words));
        store_conn_test_row row = last_test(&x);
        assert_int_equal(row.outcome, STORE_CONN_REFUSED);
        assert_int_equal(row.result, -1);
        assert_int_equal(row.evidence_len, 0);
        assert_true(row.has_nonce);
        assert_non_null(strstr(row.detail, bad[i].words));
        assert_int_equal(x.audit_entries - before, per_session + 1); /* the refusal's entry, nothing else */
        before = x.audit_entries;
    }
}

/* The counts for ifppctl status and the CSV/HTML columns: a failed required test is a FAIL row naming it. */
static void test_report_columns(void **state)
{
    (void)state;
    size_t counts[STORE_CONN__COUNT];
    assert_int_equal(store_conn_test_counts(S->st, NULL, counts), IFPP_OK);
    printf("    conn tests: passed %zu failed %zu skipped %zu refused %zu\n", counts[STORE_CONN_PASSED],
           counts[STORE_CONN_FAILED], counts[STORE_CONN_SKIPPED], counts[STORE_CONN_REFUSED]);
    assert_true(counts[STORE_CONN_PASSED] >= 2 && counts[STORE_CONN_FAILED] >= 2 && counts[STORE_CONN_SKIPPED] >= 2 &&
                counts[STORE_CONN_REFUSED] >= 5);
    char day[11], why[512] = "";
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    char *out = tu_path(T.dir, "report");
    assert_int_equal(mkdir(out, 0700), 0);
    int dirfd = open(out, O_RDONLY | O_DIRECTORY);
    assert_true(dirfd >= 0);
    report_tables_summary sum;
    assert_int_equal(report_write_tables(S->st, "station-01", day, dirfd, "duts.csv", "summary.html", &sum, why,
                                         sizeof why), IFPP_OK);
    close(dirfd);
    char *csv = read_text(out, "duts.csv"), *html = read_text(out, "summary.html");
    assert_non_null(csv);
    assert_non_null(html);
    assert_non_null(strstr(csv, ",transaction_id,conn_test,conn_test_detail\r\n"));
    /* DUT-2 (no-network, required): installed, yet FAIL naming the test */
    char *row = strstr(csv, "\"DUT-2\"");
    assert_non_null(row);
    char *end = strstr(row, "\r\n");
    *end = '\0';
    printf("    %s\n", row);
    assert_non_null(strstr(row, "\"FAIL\",\"installed\",\"connectivity test required: the eUICC signed noNetwork"));
    assert_non_null(strstr(row, "\"failed\",\"the eUICC signed noNetwork (result 1)\""));
    *end = '\r';
    row = strstr(csv, "\"DUT-0\"");
    end = strstr(row, "\r\n");
    *end = '\0';
    assert_non_null(strstr(row, "\"PASS\",\"installed\""));
    assert_non_null(strstr(row, "\"passed\",\"ok: attached to PLMN 001-01, signed by the eUICC\""));
    *end = '\r';
    assert_non_null(strstr(html, "Connectivity tests (EUICCF05)"));
    free(csv);
    free(html);
    free(out);
}

/* The parser on hand-made answers: every truncation, a trailing byte, a wrong tag, all refused. */
static void test_parser_strict(void **state)
{
    (void)state;
    uint8_t eid[16] = {1}, iccid[10] = {0x98}, nonce[16] = {7};
    crypto_key *k;
    assert_int_equal(crypto_key_generate(CRYPTO_CURVE_P256, &k), IFPP_OK);
    /* a well-formed answer, signed by k */
    uint8_t sp[128], resp[ES10_CONN_MAX_RESPONSE + 16], sig[CRYPTO_SIG_RAW_LEN];
    size_t sn, rn, siglen = sizeof sig;
    const uint8_t *p;
    tlv_builder b;
    tlv_builder_init_fixed(&b, sp, sizeof sp);
    tlv_begin(&b, 0x30);
    tlv_put(&b, 0x5A, eid, 16);
    tlv_put(&b, 0x80, iccid, 10);
    tlv_put(&b, 0x81, nonce, 16);
    tlv_put_uint(&b, 0x82, 0);
    tlv_put_uint(&b, 0x83, 0);
    tlv_end(&b);
    assert_int_equal(tlv_builder_finish(&b, &p, &sn), IFPP_OK);
    assert_int_equal(crypto_ecdsa_sign(k, sp, sn, CRYPTO_SIG_RAW, sig, &siglen), IFPP_OK);
    tlv_builder_init_fixed(&b, resp, sizeof resp);
    tlv_begin(&b, 0xBF75);
    tlv_put_raw(&b, sp, sn);
    tlv_put(&b, 0x5F37, sig, siglen);
    tlv_end(&b);
    assert_int_equal(tlv_builder_finish(&b, &p, &rn), IFPP_OK);
    es10_conn_result *res = calloc(1, sizeof *res);
    char why[200];
    assert_int_equal(es10_parse_conn_test(resp, rn, k, eid, iccid, nonce, false, res, why, sizeof why), IFPP_OK);
    assert_int_equal(res->evidence_len, rn);
    for (size_t cut = 0; cut < rn; cut++)
        assert_int_not_equal(es10_parse_conn_test(resp, cut, k, eid, iccid, nonce, false, res, why, sizeof why), IFPP_OK);
    resp[rn] = 0x00;
    assert_int_not_equal(es10_parse_conn_test(resp, rn + 1, k, eid, iccid, nonce, false, res, why, sizeof why), IFPP_OK);
    for (size_t i = 0; i < rn; i++) { /* every single-bit change: refused (tag, length, field or signature) */
        resp[i] ^= 0x01;
        assert_int_not_equal(es10_parse_conn_test(resp, rn, k, eid, iccid, nonce, false, res, why, sizeof why), IFPP_OK);
        resp[i] ^= 0x01;
    }
    /* longer than any ConnectivityTestResponse: refused before anything is read or copied */
    uint8_t big[ES10_CONN_MAX_RESPONSE + 1];
    memset(big, 0, sizeof big);
    assert_int_equal(es10_parse_conn_test(big, sizeof big, k, eid, iccid, nonce, false, res, why, sizeof why),
                     IFPP_E_RANGE);
    assert_non_null(strstr(why, "(at most 512)"));
    uint8_t other_eid[16] = {2};
    assert_int_equal(es10_parse_conn_test(resp, rn, k, other_eid, iccid, nonce, false, res, why, sizeof why),
                     IFPP_E_SIGNATURE);
    assert_non_null(strstr(why, "for another EID"));
    /* capabilities: the bit, no bit, and malformed BIT STRINGs */
    unsigned caps = 9;
    assert_int_equal(es10_parse_ifpp_capabilities((const uint8_t *)"\xBF\x74\x04\x80\x02\x07\x80", 7, &caps), IFPP_OK);
    assert_int_equal(caps, ES10_CAP_CONNECTIVITY_TEST);
    assert_int_equal(es10_parse_ifpp_capabilities((const uint8_t *)"\xBF\x74\x03\x80\x01\x00", 6, &caps), IFPP_OK);
    assert_int_equal(caps, 0);
    assert_int_not_equal(es10_parse_ifpp_capabilities((const uint8_t *)"\xBF\x74\x03\x80\x01\x07", 6, &caps), IFPP_OK);
    assert_int_not_equal(es10_parse_ifpp_capabilities((const uint8_t *)"\xBF\x74\x04\x80\x02\x07\x81", 7, &caps), IFPP_OK);
    assert_int_not_equal(es10_parse_ifpp_capabilities((const uint8_t *)"\xBF\x74\x02\x80\x00", 5, &caps), IFPP_OK);
    assert_int_not_equal(es10_parse_ifpp_capabilities((const uint8_t *)"\xBF\x74\x07\x80\x02\x07\x80\x81\x01\x00", 10,
                                                      &caps), IFPP_OK);
    free(res);
    crypto_key_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offered_passing), cmocka_unit_test(test_offered_failing),
        cmocka_unit_test(test_not_offered),     cmocka_unit_test(test_off),
        cmocka_unit_test(test_hostile_answers), cmocka_unit_test(test_report_columns),
        cmocka_unit_test(test_parser_strict),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
