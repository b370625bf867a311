/*
 * test_pcsc.c -- the pcsc FPA backend end to end through a real pcscd.
 *
 * The harness (tests/pcscd_harness.h) starts `pcscd --foreground` itself with a private reader
 * configuration that loads vsmartcard's vpcd driver on a free port, and `ifpp-vpcd-card`, which
 * puts a software eUICC behind that port; both are stopped by PID at the end. Then the station's
 * own session runs over PC/SC: DUTs provisioned over T=1 and T=0, with extended length and on a
 * logical channel; and the faults a fixture sees -- the DUT pulled in the middle of the BPP, the
 * reader service gone, a card answering garbage, a slow card, a second holder of the reader, a
 * card that arrives late -- each ending in the right BPP state with a message that names it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apdu.h"
#include "pcscd_harness.h"
#include "session.h"
#include "testline.h"
#include "testutil.h"

#define N_OTKS 14

static struct {
    char *dir, *run;
    const char *db, *card; /* the line's */
    test_line line;
    pcscd_harness h;
} P;

/* What went over the wire in one session: APDU count, the longest command, the channels used. */
typedef struct {
    fpa_slot inner;
    size_t apdus, longest, get_responses;
    unsigned channels; /* bit i: channel i addressed */
} wire_log;

static ifpp_err log_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    wire_log *w = ctx;
    w->apdus++;
    if (n > w->longest)
        w->longest = n;
    if (n > 0)
        w->channels |= 1u << apdu_channel_of_cla(cmd[0]);
    if (n > 1 && cmd[1] == APDU_INS_GET_RESPONSE)
        w->get_responses++;
    return fpa_transmit(&w->inner, cmd, n, resp, cap, rn);
}
static ifpp_err log_reset(void *ctx, uint8_t *atr, size_t cap, size_t *n)
{
    return fpa_reset(&((wire_log *)ctx)->inner, atr, cap, n);
}
static size_t log_max(void *ctx)
{
    return fpa_max_command_data(&((wire_log *)ctx)->inner);
}
static const char *log_last(void *ctx)
{
    return fpa_last_error(&((wire_log *)ctx)->inner);
}
static void log_close(void *ctx)
{
    (void)ctx;
}
static const fpa_ops log_ops = {.name = "log", .open = NULL, .close = log_close, .reset = log_reset,
                                .transmit = log_transmit, .max_command_data = log_max, .last_error = log_last};

static void pause_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static size_t count(bpp_state state)
{
    store *s;
    size_t n = 0;
    assert_int_equal(store_open(P.db, &s, NULL, 0), IFPP_OK);
    store_count_bpps(s, state, &n);
    store_close(s);
    return n;
}

static void insert(const char *const *args)
{
    if (pcscd_harness_insert(&P.h, P.card, args) != 0)
        fail_msg("the card did not show up in the reader (logs in %s)", P.run);
}

static void pull(void)
{
    if (pcscd_harness_pull(&P.h) != 0)
        fail_msg("pcscd did not see the card go (logs in %s)", P.run);
}

typedef struct {
    const char *target;      /* pcsc target with options; NULL: the plain reader */
    bool logical_channel;
    bool recover;
    session_step pull_at;    /* SESSION_STEP__COUNT: nothing pulled */
    bool kill_daemon;        /* at pull_at, the reader service goes instead of the card */
} run_opts;

static const run_opts *current;

static void on_step(void *arg, session_step step, const char *detail)
{
    (void)arg;
    (void)detail;
    if (!current || step != current->pull_at)
        return;
    if (current->kill_daemon)
        pcscd_harness_kill_daemon(&P.h); /* the reader's USB cable, or pcscd itself, is gone */
    else
        pcscd_harness_pull(&P.h); /* the DUT is pulled out of the fixture */
}

/* One session through the real pcscd; r (provision) or *resolved (recover) get the outcome. */
static ifpp_err run(const run_opts *o, session_result *r, size_t *resolved, wire_log *w, char *why, size_t why_len)
{
    store *s;
    wire_log local = {.apdus = 0};
    wire_log *log = w ? w : &local;
    memset(log, 0, sizeof *log);
    ifpp_err e = store_open(P.db, &s, why, why_len);
    if (e != IFPP_OK)
        return e;
    e = fpa_open("pcsc", o->target ? o->target : PCSCD_HARNESS_READER, &log->inner, why, why_len);
    if (e == IFPP_OK) {
        fpa_slot slot = {.ops = &log_ops, .ctx = log};
        session_ctx c = {.st = s, .slot = &slot, .slot_name = "pcsc:Virtual PCD", .dm_fpa_key = P.line.dm_fpa_key,
                         .dm_fpa_cert = P.line.dm_fpa, .progress = on_step, .logical_channel = o->logical_channel,
                         .additional_profile = true /* one card, provisioned again and again */};
        current = o;
        if (o->recover)
            e = session_recover(&c, resolved, why, why_len);
        else
            e = session_provision(&c, "DUT-PCSC", NULL, r);
        current = NULL;
        fpa_close(&log->inner);
    }
    store_close(s);
    return e;
}

static const run_opts plain = {.pull_at = SESSION_STEP__COUNT};

/* A DUT in the reader, and a session cut while its BPP goes: the card pulled, or pcscd killed. */
static ifpp_err interrupt_load(bool kill_daemon, session_result *r)
{
    char why[512] = "";
    run_opts o = plain;
    o.pull_at = SESSION_STEP_LOAD;
    o.kill_daemon = kill_daemon;
    insert(NULL);
    return run(&o, r, NULL, NULL, why, sizeof why);
}

/* The DUT goes back into the reader and `recover` settles the one BPP left in_doubt from its evidence. */
static void recover_with_dut_back(void)
{
    static const run_opts recover = {.recover = true, .pull_at = SESSION_STEP__COUNT};
    char why[512] = "";
    size_t resolved = 0;
    insert(NULL);
    ifpp_err e = run(&recover, NULL, &resolved, NULL, why, sizeof why);
    if (e != IFPP_OK)
        fail_msg("recover: %s: %s", err_name(e), why);
    assert_int_equal(resolved, 1);
    assert_int_equal(count(BPP_IN_DOUBT), 0);
}

static int setup(void **state)
{
    (void)state;
    char why[512] = "";
    /* card 1: a DUT seen once, for the command line (a DUT gets one profile unless asked, issue 9 item 9) */
    test_line_opts o = {.n_cards = 2, .n_otks = {N_OTKS, 2}, .profile_size = 20000, .import_vault = true};
    P.dir = tu_mkdtemp("ifpp-pcsc");
    P.run = tu_path(P.dir, "pcscd");
    if (!P.dir || !P.run || test_line_make(&P.line, P.dir, &o, why, sizeof why) != 0) {
        fprintf(stderr, "test_pcsc setup: %s\n", why);
        return -1;
    }
    P.db = P.line.db;
    P.card = P.line.card[0];
    if (pcscd_harness_start(&P.h, P.run) != 0)
        return -1;
    printf("    pcscd pid %d (%s), vpcd port %d\n", (int)P.h.pcscd,
           P.h.private_ns ? "private mount namespace" : "shared /run/pcscd", P.h.port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pcscd_harness_stop(&P.h);
    tu_rmrf(P.dir);
    test_line_free(&P.line);
    free(P.dir);
    free(P.run);
    return 0;
}

/* A DUT provisioned over T=1 through pcscd, short APDUs on the basic channel. */
static void test_provision_t1(void **state)
{
    (void)state;
    session_result r;
    wire_log w;
    char why[512] = "";
    size_t before = count(BPP_INSTALLED);
    insert(NULL);
    assert_int_equal(run(&plain, &r, NULL, &w, why, sizeof why), IFPP_OK);
    printf("    T=1: %s (%zu APDUs, longest %zu bytes)\n", r.message, w.apdus, w.longest);
    assert_true(r.installed);
    assert_int_equal(r.final_state, BPP_INSTALLED);
    assert_int_equal(count(BPP_INSTALLED), before + 1);
    assert_true(w.longest <= 4 + 1 + 255 + 1); /* short APDUs only: the vpcd reader claims nothing more */
    assert_int_equal(w.channels, 1u);
    assert_int_equal(w.get_responses, 0); /* T=1: responses come whole */
}

/* The card speaks T=0: pcscd picks T=0 from its ATR, responses come through 61xx/GET RESPONSE. */
static void test_provision_t0(void **state)
{
    (void)state;
    session_result r;
    wire_log w;
    char why[512] = "";
    size_t before = count(BPP_INSTALLED);
    const char *args[] = {"--t0", NULL};
    insert(args);
    assert_int_equal(run(&plain, &r, NULL, &w, why, sizeof why), IFPP_OK);
    printf("    T=0: %s (%zu APDUs, %zu of them GET RESPONSE)\n", r.message, w.apdus, w.get_responses);
    assert_true(r.installed);
    assert_true(w.get_responses > 0); /* the card said 61xx and the station fetched the rest */
    assert_int_equal(count(BPP_INSTALLED), before + 1);
}

/* ext=on and a logical channel: fewer, longer APDUs, all on the channel the card opened. */
static void test_extended_length_on_logical_channel(void **state)
{
    (void)state;
    session_result r;
    wire_log w_short, w_ext;
    char why[512] = "";
    size_t before = count(BPP_INSTALLED);
    insert(NULL);
    assert_int_equal(run(&plain, &r, NULL, &w_short, why, sizeof why), IFPP_OK);
    assert_true(r.installed);
    run_opts o = plain;
    o.target = PCSCD_HARNESS_READER ",ext=on";
    o.logical_channel = true;
    assert_int_equal(run(&o, &r, NULL, &w_ext, why, sizeof why), IFPP_OK);
    printf("    extended + channel: %s (%zu APDUs, longest %zu bytes; short: %zu APDUs)\n", r.message, w_ext.apdus,
           w_ext.longest, w_short.apdus);
    assert_true(r.installed);
    assert_int_equal(count(BPP_INSTALLED), before + 2);
    assert_true(w_ext.longest > 4 + 1 + 255 + 1);
    assert_true(w_ext.apdus * 2 < w_short.apdus);
    /* channel 0 for MANAGE CHANNEL open only; every ES10 call on the opened channel */
    assert_true(w_ext.channels & ~1u);
}

/* The DUT is pulled while the BPP goes: in_doubt, a clear message; back in, recover, load again. */
static void test_card_removed_then_recovered(void **state)
{
    (void)state;
    session_result r;
    char why[512] = "";
    size_t installed = count(BPP_INSTALLED);
    ifpp_err e = interrupt_load(false, &r);
    printf("    card pulled: %s (%s)\n", r.message, err_name(e));
    assert_true(e == IFPP_E_NO_CARD || e == IFPP_E_TRANSPORT);
    assert_non_null(strstr(r.message, "Virtual PCD")); /* the reader is named */
    assert_int_equal(r.final_state, BPP_IN_DOUBT);
    assert_int_equal(count(BPP_IN_DOUBT), 1);
    /* the pull left pcscd seeing an empty reader; the DUT goes back in */
    recover_with_dut_back();
    assert_int_equal(run(&plain, &r, NULL, NULL, why, sizeof why), IFPP_OK);
    assert_true(r.installed);
    assert_int_equal(count(BPP_INSTALLED), installed + 1);
}

/* A card that answers garbage in the middle of the BPP: in_doubt, and the message says what came. */
static void test_card_answers_garbage(void **state)
{
    (void)state;
    session_result r;
    char why[512] = "";
    size_t available = count(BPP_AVAILABLE);
    const char *at_select[] = {"--garbage-at", "1", NULL};
    insert(at_select);
    ifpp_err e = run(&plain, &r, NULL, NULL, why, sizeof why);
    printf("    garbage at SELECT: %s (%s)\n", r.message, err_name(e));
    assert_int_equal(e, IFPP_E_APDU_MALFORMED);
    assert_non_null(strstr(r.message, "not even a status word"));
    assert_int_equal(count(BPP_AVAILABLE), available); /* nothing reserved: the card never said who it is */

    const char *in_bpp[] = {"--garbage-at", "30", NULL};
    insert(in_bpp);
    e = run(&plain, &r, NULL, NULL, why, sizeof why);
    printf("    garbage in the BPP: %s (%s)\n", r.message, err_name(e));
    assert_int_equal(e, IFPP_E_APDU_MALFORMED);
    assert_int_equal(r.final_state, BPP_IN_DOUBT);
    recover_with_dut_back();
    assert_int_equal(count(BPP_AVAILABLE), available); /* the One-time Key was still there: available again */
}

/* A slow card: within apdu-timeout it is provisioned; beyond it the session stops with a timeout. */
static void test_slow_card(void **state)
{
    (void)state;
    session_result r;
    char why[512] = "";
    size_t available = count(BPP_AVAILABLE), installed = count(BPP_INSTALLED);
    const char *slow[] = {"--delay-ms", "40", NULL};
    insert(slow);
    run_opts o = plain;
    o.target = PCSCD_HARNESS_READER ",apdu-timeout=10";
    ifpp_err e = run(&o, &r, NULL, NULL, why, sizeof why);
    printf("    too slow: %s (%s)\n", r.message, err_name(e));
    assert_int_equal(e, IFPP_E_TIMEOUT);
    assert_non_null(strstr(r.message, "apdu-timeout=10"));
    assert_int_equal(count(BPP_AVAILABLE), available);
    const char *bit_slow[] = {"--delay-ms", "2", NULL};
    insert(bit_slow);
    o.target = PCSCD_HARNESS_READER ",apdu-timeout=2000";
    assert_int_equal(run(&o, &r, NULL, NULL, why, sizeof why), IFPP_OK);
    assert_true(r.installed);
    assert_int_equal(count(BPP_INSTALLED), installed + 1);
}

/* Exclusive access: while one session holds the reader, a second holder is refused as busy. */
static void test_reader_held_exclusively(void **state)
{
    (void)state;
    fpa_slot a, b;
    char why[512] = "";
    insert(NULL);
    assert_int_equal(fpa_open("pcsc", PCSCD_HARNESS_READER, &a, why, sizeof why), IFPP_OK);
    ifpp_err e = fpa_open("pcsc", PCSCD_HARNESS_READER, &b, why, sizeof why);
    printf("    second holder: %s (%s)\n", why, err_name(e));
    assert_int_equal(e, IFPP_E_BUSY);
    fpa_close(&a);
    assert_int_equal(fpa_open("pcsc", PCSCD_HARNESS_READER, &b, why, sizeof why), IFPP_OK);
    fpa_close(&b);
}

static void *insert_later(void *arg)
{
    (void)arg;
    pause_ms(300);
    pcscd_harness_insert(&P.h, P.card, NULL);
    return NULL;
}

/* card-wait: the slot waits for the DUT to arrive (insertion event), or says how long it waited. */
static void test_card_wait(void **state)
{
    (void)state;
    fpa_slot slot;
    char why[512] = "";
    pull();
    ifpp_err e = fpa_open("pcsc", PCSCD_HARNESS_READER ",card-wait=200", &slot, why, sizeof why);
    printf("    no DUT: %s (%s)\n", why, err_name(e));
    assert_int_equal(e, IFPP_E_NO_CARD);
    assert_non_null(strstr(why, "within 200 ms"));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, insert_later, NULL), 0);
    e = fpa_open("pcsc", PCSCD_HARNESS_READER ",card-wait=10000", &slot, why, sizeof why);
    pthread_join(t, NULL);
    if (e != IFPP_OK)
        fail_msg("card-wait: %s", why);
    fpa_close(&slot);
}

static void *pull_later(void *arg)
{
    (void)arg;
    pause_ms(300);
    pcscd_harness_pull(&P.h);
    return NULL;
}

/* Card events on an open slot: the DUT leaves (the operator took it), the next arrives, or not in time. */
static void test_wait_for_card_events(void **state)
{
    (void)state;
    fpa_slot slot;
    pthread_t t;
    char why[512] = "";
    insert(NULL);
    assert_int_equal(fpa_open("pcsc", PCSCD_HARNESS_READER, &slot, why, sizeof why), IFPP_OK);
    assert_int_equal(fpa_wait_card(&slot, true, 0), IFPP_OK); /* it is there */
    ifpp_err e = fpa_wait_card(&slot, false, 200);
    printf("    still there: %s (%s)\n", fpa_last_error(&slot), err_name(e));
    assert_int_equal(e, IFPP_E_TIMEOUT);
    assert_non_null(strstr(fpa_last_error(&slot), "still in the reader after 200 ms"));
    assert_int_equal(pthread_create(&t, NULL, pull_later, NULL), 0);
    e = fpa_wait_card(&slot, false, 10000);
    pthread_join(t, NULL);
    assert_int_equal(e, IFPP_OK);
    assert_int_equal(fpa_wait_card(&slot, true, 200), IFPP_E_TIMEOUT);
    assert_int_equal(pthread_create(&t, NULL, insert_later, NULL), 0);
    e = fpa_wait_card(&slot, true, 10000);
    pthread_join(t, NULL);
    assert_int_equal(e, IFPP_OK);
    fpa_close(&slot);
    /* a backend that cannot tell says so */
    fpa_slot virt = {.ops = fpa_find("virtual")};
    assert_int_equal(fpa_wait_card(&virt, true, 0), IFPP_E_ARG);
}

/* The operator's command line over the same reader: PASS, on a logical channel, and a clear FAIL. */
static void test_ifppctl_over_pcsc(void **state)
{
    (void)state;
    char out[4096] = "";
    size_t installed = count(BPP_INSTALLED);
    if (pcscd_harness_insert(&P.h, P.line.card[1], NULL) != 0)
        fail_msg("the second card did not show up in the reader (logs in %s)", P.run);
    char *ok[] = {(char *)tu_tool("IFPP_IFPPCTL", "ifppctl"), "--store", (char *)P.db, "--pki", P.line.pki,
                  "provision", "--slot", "pcsc:" PCSCD_HARNESS_READER ",card-wait=2000", "--serial", "DUT-CLI-1",
                  "--logical-channel", NULL};
    assert_int_equal(tu_run(ok, out, sizeof out), 0);
    assert_non_null(strstr(out, "DUT-CLI-1 PASS"));
    assert_int_equal(count(BPP_INSTALLED), installed + 1);
    /* the second vpcd slot has no card in it */
    char *empty[] = {(char *)tu_tool("IFPP_IFPPCTL", "ifppctl"), "--store", (char *)P.db, "--pki", P.line.pki,
                     "provision", "--slot", "pcsc:" PCSCD_HARNESS_READER "#1,card-wait=100", "--serial", "DUT-CLI-2",
                     NULL};
    assert_int_equal(tu_run(empty, out, sizeof out), 1);
    assert_int_equal(count(BPP_INSTALLED), installed + 1);
}

/* One slot for a whole shift: DUTs come and go and pcscd restarts, the same open slot serves on. */
static void test_slot_outlives_dut_and_pcscd(void **state)
{
    (void)state;
    store *s;
    fpa_slot slot;
    session_result r;
    char why[512] = "";
    size_t installed = count(BPP_INSTALLED);
    insert(NULL);
    assert_int_equal(store_open(P.db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(fpa_open("pcsc", PCSCD_HARNESS_READER ",card-wait=5000", &slot, why, sizeof why), IFPP_OK);
    session_ctx c = {.st = s, .slot = &slot, .slot_name = "pcsc:Virtual PCD", .dm_fpa_key = P.line.dm_fpa_key,
                     .dm_fpa_cert = P.line.dm_fpa, .additional_profile = true};
    assert_int_equal(session_provision(&c, "DUT-SHIFT-1", NULL, &r), IFPP_OK);
    assert_true(r.installed);
    /* the next DUT: the old one out, a new one in (the same card file: the slot cannot tell) */
    pull();
    insert(NULL);
    assert_int_equal(session_provision(&c, "DUT-SHIFT-2", NULL, &r), IFPP_OK);
    if (!r.installed)
        fail_msg("after a DUT swap: %s", r.message);
    /* pcscd restarts between two DUTs */
    pcscd_harness_stop(&P.h);
    assert_int_equal(pcscd_harness_start(&P.h, P.run), 0);
    insert(NULL);
    ifpp_err e = session_provision(&c, "DUT-SHIFT-3", NULL, &r);
    if (e != IFPP_OK || !r.installed)
        fail_msg("after pcscd restarted: %s (%s)", r.message, err_name(e));
    fpa_close(&slot);
    store_close(s);
    assert_int_equal(count(BPP_INSTALLED), installed + 3);
}

/* Targets that cannot be right are refused before PC/SC is asked anything. */
static void test_bad_targets(void **state)
{
    (void)state;
    fpa_slot slot;
    char why[512] = "";
    static const char *const bad[] = {"", "#0", "Virtual PCD#x", "Virtual PCD#999", "Virtual PCD,ext=maybe",
                                      "Virtual PCD,card-wait=-1", "Virtual PCD,speed=9600", "Virtual PCD,apdu-timeout"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ifpp_err e = fpa_open("pcsc", bad[i], &slot, why, sizeof why);
        if (e != IFPP_E_ARG || !strstr(why, "pcsc: '"))
            fail_msg("target '%s': %s (%s)", bad[i], err_name(e), why);
    }
    assert_int_equal(fpa_open("pcsc", "No Such Reader", &slot, why, sizeof why), IFPP_E_NO_READER);
    assert_non_null(strstr(why, "No Such Reader"));
    /* vpcd offers two slots: the second exists but is empty; a third does not exist */
    assert_int_equal(fpa_open("pcsc", PCSCD_HARNESS_READER "#1", &slot, why, sizeof why), IFPP_E_NO_CARD);
    assert_non_null(strstr(why, "Virtual PCD 00 01"));
    assert_int_equal(fpa_open("pcsc", PCSCD_HARNESS_READER "#2", &slot, why, sizeof why), IFPP_E_NO_READER);
    assert_non_null(strstr(why, "2 match"));
}

/* The reader service dies while the BPP goes: in_doubt; with pcscd back, recover settles it. */
static void test_reader_gone_mid_session(void **state)
{
    (void)state;
    session_result r;
    char why[512] = "";
    size_t available = count(BPP_AVAILABLE);
    ifpp_err e = interrupt_load(true, &r);
    printf("    reader gone: %s (%s)\n", r.message, err_name(e));
    assert_int_equal(e, IFPP_E_NO_READER);
    assert_int_equal(r.final_state, BPP_IN_DOUBT);
    fpa_slot slot;
    e = fpa_open("pcsc", PCSCD_HARNESS_READER, &slot, why, sizeof why);
    printf("    then: %s (%s)\n", why, err_name(e));
    assert_int_equal(e, IFPP_E_NO_READER);
    /* the service comes back (a new pcscd, a new vpcd port) and the DUT is still there */
    pcscd_harness_stop(&P.h);
    assert_int_equal(pcscd_harness_start(&P.h, P.run), 0);
    recover_with_dut_back();
    assert_int_equal(count(BPP_AVAILABLE), available);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_provision_t1),
        cmocka_unit_test(test_provision_t0),
        cmocka_unit_test(test_extended_length_on_logical_channel),
        cmocka_unit_test(test_card_removed_then_recovered),
        cmocka_unit_test(test_card_answers_garbage),
        cmocka_unit_test(test_slow_card),
        cmocka_unit_test(test_reader_held_exclusively),
        cmocka_unit_test(test_card_wait),
        cmocka_unit_test(test_wait_for_card_events),
        cmocka_unit_test(test_ifppctl_over_pcsc),
        cmocka_unit_test(test_slot_outlives_dut_and_pcscd),
        cmocka_unit_test(test_bad_targets),
        cmocka_unit_test(test_reader_gone_mid_session),
    };
    return cmocka_run_group_tests_name("pcsc", tests, setup, teardown);
}
