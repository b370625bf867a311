/*
 * test_station.c -- the station library (agent/station.h, issue 8 item 3): typed slot options
 * with errors that name the bad option, the PASS rule as one function of a session's result, the
 * refusal of output paths that are the store, and station_open naming the file it could not load.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "station.h"
#include "testpki.h"
#include "testutil.h"

static void test_slot_options_typed(void **state)
{
    (void)state;
    station_slot_options o;
    char why[512];
    assert_int_equal(station_slot_parse("pcsc:Gemalto PC Twin#0,card-wait=5000,aid=A0000005591010FFFFFFFF8900000100,"
                                        "channel=logical,ext=off,apdu-timeout=300",
                                        &o, why, sizeof why),
                     IFPP_OK);
    assert_string_equal(o.backend, "pcsc");
    /* the station's keys are its own; transport timings and the backend's keys go on to the backend */
    assert_string_equal(o.target, "Gemalto PC Twin#0,card-wait=5000,ext=off,apdu-timeout=300");
    assert_int_equal(o.card_wait_ms, 5000);
    assert_int_equal(o.apdu_timeout_ms, 300);
    assert_true(o.logical_channel);
    assert_int_equal(o.isdr_aid_len, 16);
    assert_int_equal(o.isdr_aid[0], 0xA0);
    assert_int_equal(station_slot_parse("virtual:/x/y.card", &o, why, sizeof why), IFPP_OK);
    assert_string_equal(o.target, "/x/y.card");
    assert_int_equal(o.card_wait_ms, -1);
    assert_int_equal(o.isdr_aid_len, 0);
    assert_false(o.logical_channel);

    struct {
        const char *spec, *named;
    } bad[] = {
        {"pcsc", "BACKEND:TARGET"},
        {":reader", "BACKEND:TARGET"},
        {"pcsc:", "BACKEND:TARGET"},
        {"pcsc:,card-wait=1", "BACKEND:TARGET"},
        {"averyveryverylongbackendname:x", "BACKEND:TARGET"},
        {"pcsc:r,card-wait=-1", "'card-wait=-1'"},
        {"pcsc:r,card-wait=3600001", "'card-wait=3600001'"},
        {"pcsc:r,card-wait=5s", "'card-wait=5s'"},
        {"pcsc:r,apdu-timeout=0", "'apdu-timeout=0'"},
        {"pcsc:r,aid=A000", "'aid=A000'"},
        {"pcsc:r,aid=A0000005591010FFFFFFFF890000010000", "aid=HEX"},
        {"pcsc:r,aid=A0000005591010FFFFFFFF89000001XY", "aid=HEX"},
        {"pcsc:r,channel=2", "channel=basic|logical"},
        {"pcsc:r,card-wait", "'card-wait'"},
        {"pcsc:r,=5", "'=5'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        ifpp_err e = station_slot_parse(bad[i].spec, &o, why, sizeof why);
        if (e != IFPP_E_ARG && e != IFPP_E_RANGE)
            fail_msg("%s: accepted (%d)", bad[i].spec, e);
        if (!strstr(why, bad[i].named))
            fail_msg("%s: '%s' does not name %s", bad[i].spec, why, bad[i].named);
    }
}

static session_result result(ifpp_err e, bool installed, bpp_state st, session_step step, uint16_t sw, int card)
{
    session_result r;
    memset(&r, 0, sizeof r);
    r.err = e;
    r.installed = installed;
    r.final_state = st;
    r.failed_step = step;
    r.sw = sw;
    r.card_result = card;
    return r;
}

/* The PASS rule: one place decides, from the result's fields, not from a sentence. */
static void test_verdicts(void **state)
{
    (void)state;
    session_result r = result(IFPP_OK, true, BPP_INSTALLED, SESSION_STEP__COUNT, 0, -1);
    assert_int_equal(station_verdict_of(&r), STATION_PASS);
    r = result(IFPP_OK, false, BPP_FAILED, SESSION_STEP__COUNT, 0, 7); /* an error PIR */
    assert_int_equal(station_verdict_of(&r), STATION_DUT_FAIL);
    r = result(IFPP_E_NOT_FOUND, false, BPP_STATE__COUNT, SESSION_STEP_RESERVE, 0, -1); /* no BPP for this eUICC */
    assert_int_equal(station_verdict_of(&r), STATION_REFUSED);
    r = result(IFPP_E_IO, false, BPP_STATE__COUNT, SESSION_STEP_SELECT, 0x6A82, -1); /* the card refused SELECT */
    assert_int_equal(station_verdict_of(&r), STATION_DUT_FAIL);
    r = result(IFPP_E_TLV_TRUNCATED, false, BPP_IN_DOUBT, SESSION_STEP_LOAD, 0, -1); /* a malformed answer */
    assert_int_equal(station_verdict_of(&r), STATION_DUT_FAIL);
    r = result(IFPP_E_IO, false, BPP_STATE__COUNT, SESSION_STEP_RESERVE, 0, -1); /* the store failed */
    assert_int_equal(station_verdict_of(&r), STATION_FAILURE);
    r = result(IFPP_E_NO_READER, false, BPP_STATE__COUNT, SESSION_STEP_SELECT, 0, -1);
    assert_int_equal(station_verdict_of(&r), STATION_FAILURE);
    r = result(IFPP_OK, true, BPP_IN_DOUBT, SESSION_STEP__COUNT, 0, -1); /* never PASS without a recorded PIR */
    assert_int_equal(station_verdict_of(&r), STATION_DUT_FAIL);
    assert_int_equal(station_verdict_of(NULL), STATION_FAILURE);
    assert_int_equal(station_exit_code(STATION_PASS), 0);
    int codes[] = {station_exit_code(STATION_REFUSED), station_exit_code(STATION_DUT_FAIL),
                   station_exit_code(STATION_FAILURE), STATION_EXIT_USAGE};
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            assert_int_not_equal(codes[i], codes[j]);
}

/* Output paths that are the store or its journals, existing or not, by any spelling. */
static void test_output_not_the_store(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("ifpp-station"), why[1024];
    station s;
    memset(&s, 0, sizeof s);
    snprintf(s.store_path, sizeof s.store_path, "%s/station.db", dir);
    assert_int_equal(tu_write_file(s.store_path, (const uint8_t *)"x", 1), 0);
    char p[4200];
    const char *refused[] = {"/station.db", "/../", "/station.db-wal", "/station.db-shm", "/station.db-journal",
                             "//station.db"};
    char *base = strrchr(dir, '/') + 1;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (i == 1)
            snprintf(p, sizeof p, "%s/../%s/station.db", dir, base);
        else
            snprintf(p, sizeof p, "%s%s", dir, refused[i]);
        assert_int_equal(station_check_output(&s, p, why, sizeof why), IFPP_E_ARG);
        assert_non_null(strstr(why, "store"));
    }
    snprintf(p, sizeof p, "%s/report.der", dir);
    assert_int_equal(station_check_output(&s, p, why, sizeof why), IFPP_OK);
    snprintf(p, sizeof p, "%s/station.db.der", dir);
    assert_int_equal(station_check_output(&s, p, why, sizeof why), IFPP_OK);
    snprintf(p, sizeof p, "%s/no-such-dir/report.der", dir);
    assert_int_equal(station_check_output(&s, p, why, sizeof why), IFPP_E_IO);
    assert_non_null(strstr(why, "no-such-dir"));
    tu_rmrf(dir);
    free(dir);
}

/* station_open loads only what a command needs, names the file it cannot load, and opens no store then. */
static void test_open_names_the_file(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("ifpp-station"), why[1024] = "";
    char *pki = tu_path(dir, "pki"), *db = tu_path(dir, "station.db");
    testpki_opts po = {.out_dir = pki, .curve = CRYPTO_CURVE_P256, .n_eids = 1, .days = 30};
    assert_int_equal(testpki_make(&po, why, sizeof why), IFPP_OK);
    station *st = NULL;
    station_config cfg = {.store_path = db, .pki_dir = pki};
    assert_int_equal(station_open(&cfg, STATION_NEED_STORE | STATION_NEED_CI | STATION_NEED_DM_FPA |
                                            STATION_NEED_STATION_KEY | STATION_NEED_DM_ROOT,
                                  &st, why, sizeof why),
                     IFPP_OK);
    assert_non_null(st->ci);
    assert_non_null(st->dm_fpa_key);
    station_close(st);
    unlink(db);
    cfg.station_key = "/nonexistent/station.key.pem";
    assert_int_equal(station_open(&cfg, STATION_NEED_STORE | STATION_NEED_STATION_KEY, &st, why, sizeof why), IFPP_E_IO);
    assert_non_null(strstr(why, "--station-key"));
    assert_non_null(strstr(why, "/nonexistent/station.key.pem"));
    assert_int_equal(access(db, F_OK), -1); /* a bad key file never touches the store */
    cfg.station_key = NULL;
    cfg.pki_dir = NULL;
    assert_int_equal(station_open(&cfg, STATION_NEED_CI, &st, why, sizeof why), IFPP_E_ARG);
    assert_non_null(strstr(why, "--ci"));

    /* issue 9, items 10 and 11: a reading command opens the store read-only, never creates one */
    unsigned reads = STATION_NEED_STORE | STATION_STORE_MUST_EXIST | STATION_STORE_READONLY;
    char wal[4200], shm[4200];
    snprintf(wal, sizeof wal, "%s-wal", db);
    snprintf(shm, sizeof shm, "%s-shm", db);
    assert_int_equal(station_open(&cfg, reads, &st, why, sizeof why), IFPP_E_NOT_FOUND);
    assert_non_null(strstr(why, db));
    assert_int_equal(access(db, F_OK), -1);
    assert_int_equal(access(wal, F_OK), -1);
    assert_int_equal(access(shm, F_OK), -1);
    assert_int_equal(station_open(&cfg, STATION_NEED_STORE, &st, why, sizeof why), IFPP_OK); /* an import's open */
    station_close(st);
    assert_int_equal(station_open(&cfg, reads, &st, why, sizeof why), IFPP_OK);
    const uint8_t der[] = {0x30, 0x00};
    assert_int_equal(store_add_eum_cert(st->st, der, sizeof der), IFPP_E_ARG); /* read-only: no change possible */
    assert_non_null(strstr(store_errmsg(st->st), "read-only"));
    station_close(st);
    tu_rmrf(dir);
    free(dir);
    free(pki);
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_options_typed),
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_output_not_the_store),
        cmocka_unit_test(test_open_names_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
