/*
 * test_at.c -- the at FPA backend end to end: libserialport on a pty, a fake modem behind it.
 *
 * Each session starts `ifpp-fake-modem` (tests/sim/fake_modem.c) as a process with the line's
 * software eUICC as its SIM and the quirk under test, opens the slot as the operator writes it
 * ("at:/dev/pts/N,key=value...", station_slot_parse) and runs the station's own session over
 * the real libserialport code (tests/sim/pty_serial_shim.c only lets it open a pty); the modem
 * is killed by PID afterwards. Provisioning over the basic channel and over logical channels
 * (AT+CCHO/AT+CGLA, and MANAGE CHANNEL inside AT+CSIM where the modem lacks them, on channels
 * past 3); every quirk mode of issue 11 ends in the right BPP state, with the operator's message
 * naming what the modem did; a BPP cut by a modem reset, silence, noise, an ERROR or the port
 * vanishing is left in_doubt and recovered from the card's evidence.
 * No assertion is about time: the slow modes only prove that the deadlines are the right ones.
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

#include "at_parse.h"
#include "fake_modem_proc.h"
#include "session.h"
#include "station.h"
#include "testline.h"
#include "testutil.h"

#define N_OTKS 40

static struct {
    char *dir, *log;
    const char *db, *card;
    test_line line;
    fake_modem_proc modem;
    unsigned long load_at; /* APDUs the modem had seen when the BPP load began (basic channel) */
} P;

typedef struct {
    const char *const *modem;  /* the fake modem's quirk options (NULL: none) */
    const char *opts;          /* the slot's options after the port ("" for none) */
    bool recover;
    bool kill_at_load;         /* the modem process dies as the BPP goes: the port vanishes */
    bool keep_modem;           /* the modem stays up for the next session (the recovery goes through it) */
    bool kill_while_waiting;   /* the modem dies while the station waits for an answer it will never get */
} run_opts;

static const run_opts *current;

static size_t count(bpp_state state)
{
    store *s;
    size_t n = 0;
    assert_int_equal(store_open(P.db, &s, NULL, 0), IFPP_OK);
    store_count_bpps(s, state, &n);
    store_close(s);
    return n;
}

/* How many APDUs the modem has logged so far (its --log). */
static unsigned long logged_apdus(void)
{
    FILE *f = fopen(P.log, "r");
    char line[128];
    unsigned long n = 0;
    while (f && fgets(line, sizeof line, f))
        n += !strncmp(line, "apdu ", 5);
    if (f)
        fclose(f);
    return n;
}

static pthread_t killer;
static bool killer_started;

/* Kills the (by now silent) modem a moment later, while the station is waiting on its read. */
static void *kill_later(void *arg)
{
    (void)arg;
    struct timespec t = {0, 300 * 1000000L};
    nanosleep(&t, NULL);
    fake_modem_stop(&P.modem);
    return NULL;
}

static void on_step(void *arg, session_step step, const char *detail)
{
    (void)arg;
    (void)detail;
    if (step != SESSION_STEP_LOAD || !current)
        return;
    if (!P.load_at)
        P.load_at = logged_apdus();
    if (current->kill_at_load)
        fake_modem_stop(&P.modem); /* the DUT's USB cable, or the modem itself, is gone */
    if (current->kill_while_waiting)
        killer_started = pthread_create(&killer, NULL, kill_later, NULL) == 0;
}

/* One session on a fresh fake modem with the given quirks; r (provision) or *resolved (recover). */
static ifpp_err run(const run_opts *o, session_result *r, size_t *resolved, char *why, size_t why_len)
{
    const char *args[24] = {"--log", P.log};
    size_t n = 2;
    for (size_t i = 0; o->modem && o->modem[i] && n < 23; i++)
        args[n++] = o->modem[i];
    if (P.modem.pid <= 0) { /* else the last session's modem, kept up */
        remove(P.log);
        if (fake_modem_start(&P.modem, IFPP_FAKE_MODEM_DEFAULT, P.card, args) != 0)
            fail_msg("the fake modem did not start");
    }
    char spec[512];
    snprintf(spec, sizeof spec, "at:%s%s%s", P.modem.port, *o->opts ? "," : "", o->opts);
    station_slot_options so;
    station_slot sl;
    store *s;
    ifpp_err e = station_slot_parse(spec, &so, why, why_len);
    if (e == IFPP_OK)
        e = store_open(P.db, &s, why, why_len);
    if (e != IFPP_OK) {
        fake_modem_stop(&P.modem);
        return e;
    }
    e = station_slot_open(&so, &sl, why, why_len);
    if (e == IFPP_OK) {
        session_ctx c = {.st = s, .slot = &sl.fpa, .slot_name = so.spec, .dm_fpa_key = P.line.dm_fpa_key,
                         .dm_fpa_cert = P.line.dm_fpa, .progress = on_step, .logical_channel = so.logical_channel,
                         .additional_profile = true /* one card, provisioned again and again */};
        current = o;
        if (o->recover)
            e = session_recover(&c, resolved, why, why_len);
        else
            e = session_provision(&c, "DUT-AT", NULL, r);
        current = NULL;
        station_slot_close(&sl);
    }
    if (killer_started)
        pthread_join(killer, NULL);
    killer_started = false;
    store_close(s);
    if (!o->keep_modem)
        fake_modem_stop(&P.modem);
    return e;
}

/*
 * The BPP left in_doubt is settled by `recover` on a well-behaved modem (or on the one that failed, if the
 * session kept it up: a modem after its restart, echo on again): the card says what happened.
 */
static void recover_on_a_good_modem(void)
{
    static const run_opts recover = {.opts = "", .recover = true};
    char why[512] = "";
    size_t resolved = 0;
    ifpp_err e = run(&recover, NULL, &resolved, why, sizeof why);
    if (e != IFPP_OK)
        fail_msg("recover: %s: %s", err_name(e), why);
    assert_int_equal(resolved, 1);
    assert_int_equal(count(BPP_IN_DOUBT), 0);
}

/* Provisions once with o; it must install, and the message is printed for the record. */
static void must_install(const char *what, const run_opts *o)
{
    session_result r;
    char why[512] = "";
    size_t installed = count(BPP_INSTALLED);
    ifpp_err e = run(o, &r, NULL, why, sizeof why);
    printf("    %s: %s (%s)%s%s\n", what, e == IFPP_OK ? r.message : why, err_name(e), *why ? " " : "", why);
    if (e != IFPP_OK)
        fail_msg("%s: %s: %s", what, err_name(e), r.message);
    assert_true(r.installed);
    assert_int_equal(r.final_state, BPP_INSTALLED);
    assert_int_equal(count(BPP_INSTALLED), installed + 1);
}

/* Provisions once with o; it must fail with e_want in the BPP's state_want, the message naming words. */
static void must_fail(const char *what, const run_opts *o, ifpp_err e_want, bpp_state state_want, const char *words)
{
    session_result r;
    char why[512] = "";
    size_t in_state = count(state_want), available = count(BPP_AVAILABLE);
    ifpp_err e = run(o, &r, NULL, why, sizeof why);
    printf("    %s: %s (%s)\n", what, r.message, err_name(e));
    assert_int_equal(e, e_want);
    assert_false(r.installed);
    if (!strstr(r.message, words))
        fail_msg("%s: the message does not say '%s': %s", what, words, r.message);
    if (state_want == BPP_AVAILABLE) {
        assert_int_equal(count(BPP_AVAILABLE), available); /* nothing reserved, or released again */
    } else {
        assert_int_equal(r.final_state, state_want);
        assert_int_equal(count(state_want), in_state + 1);
        recover_on_a_good_modem();
        assert_int_equal(count(BPP_AVAILABLE), available); /* the card never took it: available again */
    }
}

static int setup(void **state)
{
    (void)state;
    char why[512] = "";
    test_line_opts o = {.n_cards = 1, .n_otks = {N_OTKS}, .profile_size = 6000, .import_vault = true};
    P.dir = tu_mkdtemp("ifpp-at");
    P.log = P.dir ? tu_path(P.dir, "modem.log") : NULL;
    if (!P.log || test_line_make(&P.line, P.dir, &o, why, sizeof why) != 0) {
        fprintf(stderr, "test_at setup: %s\n", why);
        return -1;
    }
    P.db = P.line.db;
    P.card = P.line.card[0];
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_modem_stop(&P.modem);
    tu_rmrf(P.dir);
    test_line_free(&P.line);
    free(P.dir);
    free(P.log);
    return 0;
}

/* The basic channel, AT+CSIM only; it also learns where the BPP load begins for the fault tests. */
static void test_basic_channel(void **state)
{
    (void)state;
    static const run_opts o = {.opts = "baud=9600,flow=none,dtr=on,rts=off"};
    P.load_at = 0;
    must_install("basic channel", &o);
    printf("    the BPP load began after APDU %lu; %lu APDUs in all\n", P.load_at, logged_apdus());
    assert_true(P.load_at > 2);
    assert_true(logged_apdus() > P.load_at + 6); /* room for the faults aimed into the BPP */
}

/* Logical channels: AT+CCHO/AT+CGLA on channel 5 (the modem holds 1..4), and MANAGE CHANNEL in AT+CSIM. */
static void test_logical_channels(void **state)
{
    (void)state;
    static const char *const hold4[] = {"--hold-channels", "4", NULL};
    static const char *const no_ccho_hold9[] = {"--no-ccho", "--hold-channels", "9", NULL};
    static const char *const hold18[] = {"--hold-channels", "18", NULL};
    const run_opts cgla = {.modem = hold4, .opts = "channel=logical"};
    const run_opts manage = {.modem = no_ccho_hold9, .opts = "channel=logical"};
    const run_opts last = {.modem = hold18, .opts = "channel=logical,chan=csim"};
    must_install("AT+CGLA on channel 5", &cgla);
    must_install("MANAGE CHANNEL in AT+CSIM on channel 10", &manage);
    must_install("chan=csim on channel 19", &last);
}

/* Quirks a station must live with: each still provisions. */
static void test_quirks_that_still_provision(void **state)
{
    (void)state;
    static const char *const echo[] = {"--echo", NULL}, *const urc[] = {"--urc", NULL},
                             *const split[] = {"--split", "--urc", "--echo", NULL},
                             *const slow[] = {"--delay-ms", "20", NULL},
                             *const probe[] = {"--probe-silent", NULL}, *const bare[] = {"--ccho-bare", NULL},
                             *const no_cchc[] = {"--no-cchc", NULL}, *const no_ccho[] = {"--no-ccho", NULL},
                             *const upper[] = {"--upper-only", NULL}, *const short_lines[] = {"--line-max", "560", NULL};
    char seg_at[16];
    snprintf(seg_at, sizeof seg_at, "%lu", P.load_at + 2);
    /* "tens of seconds" scaled to 1.5 s: far past at-timeout, well inside apdu-timeout */
    const char *const segment[] = {"--slow-at", seg_at, "--slow-ms", "1500", NULL};
    const struct {
        const char *what;
        run_opts o;
    } cases[] = {
        {"echo that ATE0 does not stop", {.modem = echo, .opts = ""}},
        {"URCs around and inside replies", {.modem = urc, .opts = "channel=logical"}},
        {"replies split across writes, with echo and URCs", {.modem = split, .opts = ""}},
        {"slow replies", {.modem = slow, .opts = "apdu-timeout=2000"}},
        {"AT+CCHO=? answered by silence", {.modem = probe, .opts = "channel=logical,at-timeout=200"}},
        {"AT+CCHO answered with a bare number",
         {.modem = bare, .opts = "channel=logical,aid=A0000005591010FFFFFFFF8900000100"}},
        {"a modem that takes 560 characters a line", {.modem = short_lines, .opts = "channel=logical,line-max=560"}},
        {"reset=none: channels closed by AT+CCHC, no SIM power cycle", {.opts = "channel=logical,reset=none"}},
        {"no AT+CCHC while AT+CCHO works", {.modem = no_cchc, .opts = "channel=logical"}},
        {"no AT+CCHO/AT+CGLA at all", {.modem = no_ccho, .opts = "channel=logical"}},
        {"upper-case hex required", {.modem = upper, .opts = "channel=logical"}},
        {"one BPP segment that takes long", {.modem = segment, .opts = "at-timeout=200,apdu-timeout=10000"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        must_install(cases[i].what, &cases[i].o);
}

/* Modems that fail the session: each a typed error within its deadline, the store in the right state. */
static void test_quirks_that_fail(void **state)
{
    (void)state;
    char mid[16];
    snprintf(mid, sizeof mid, "%lu", P.load_at + 3);
    static const char *const upper[] = {"--upper-only", NULL};
    const char *const garbage[] = {"--garbage-at", mid, NULL}, *const silence[] = {"--silence-at", mid, NULL},
                      *const reset[] = {"--reset-at", mid, NULL}, *const error[] = {"--error-at", mid, NULL},
                      *const slow[] = {"--slow-at", mid, "--slow-ms", "3000", NULL};
    static const char *const cme_first[] = {"--silence-at", "1", NULL};
    const run_opts lower = {.modem = upper, .opts = "hex-case=lower"};
    must_fail("lower-case hex to a modem that wants upper", &lower, IFPP_E_TRANSPORT, BPP_AVAILABLE,
              "invalid characters");
    const run_opts mute = {.modem = cme_first, .opts = "apdu-timeout=300"};
    must_fail("silence from the first APDU", &mute, IFPP_E_TIMEOUT, BPP_AVAILABLE, "silence");
    const run_opts noise = {.modem = garbage, .opts = ""};
    must_fail("garbage in the BPP", &noise, IFPP_E_APDU_MALFORMED, BPP_IN_DOUBT, "not text");
    const run_opts quiet = {.modem = silence, .opts = "apdu-timeout=300"};
    must_fail("silence in the BPP", &quiet, IFPP_E_TIMEOUT, BPP_IN_DOUBT, "within 300 ms");
    const run_opts restart = {.modem = reset, .opts = "", .keep_modem = true};
    must_fail("modem reset in the BPP, recovered through the same modem", &restart, IFPP_E_CARD_RESET, BPP_IN_DOUBT,
              "RDY");
    const run_opts err = {.modem = error, .opts = "channel=logical"};
    must_fail("ERROR to one AT+CGLA in the BPP", &err, IFPP_E_TRANSPORT, BPP_IN_DOUBT, "AT+CGLA with 'ERROR'");
    const run_opts too_slow = {.modem = slow, .opts = "apdu-timeout=400"};
    must_fail("a segment slower than apdu-timeout", &too_slow, IFPP_E_TIMEOUT, BPP_IN_DOUBT, "apdu-timeout");
    const run_opts gone = {.opts = "", .kill_at_load = true};
    must_fail("the port vanishes in the BPP", &gone, IFPP_E_NO_READER, BPP_IN_DOUBT, "vanished");
    /* silent from the BPP's first APDU on, then gone: the wait ends with the port, not with apdu-timeout */
    char first[16];
    snprintf(first, sizeof first, "%lu", P.load_at + 1);
    const char *const silent_then_gone[] = {"--silence-at", first, NULL};
    const run_opts gone_waiting = {.modem = silent_then_gone, .opts = "apdu-timeout=600000", .kill_while_waiting = true};
    must_fail("the port vanishes while the station waits", &gone_waiting, IFPP_E_NO_READER, BPP_IN_DOUBT,
              "vanished");
}

/* The modem-line parser alone: lines split anywhere, every kind of line, strict +CSIM and lenient +CCHO. */
static void test_line_parser(void **state)
{
    (void)state;
    static at_rx rx;
    char line[64];
    uint8_t out[8];
    size_t n = 0, dn = 0;
    unsigned long id;
    static const char stream[] = "\r\nAT+CSIM=10,\"00A4040000\"\r\r\n+CSIM: 4,\"6a82\"\r\n+CREG: 1\n\nOK\r\n+CME";
    rx.len = 0;
    for (size_t i = 0; i < sizeof stream - 1; i++) /* one byte a read: the worst split there is */
        assert_int_equal(at_rx_feed(&rx, stream + i, 1), IFPP_OK);
    const at_line_kind want[] = {AT_LINE_ECHO, AT_LINE_TEXT, AT_LINE_TEXT, AT_LINE_OK};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(at_rx_line(&rx, line, sizeof line, &n), IFPP_OK);
        assert_int_equal(at_line_classify(line, n), want[i]);
        if (i == 1) {
            assert_int_equal(at_parse_hex_reply(line, n, "+CSIM:", out, sizeof out, &dn), IFPP_OK);
            assert_int_equal(dn, 2);
            assert_int_equal(out[0], 0x6A);
            assert_int_equal(out[1], 0x82);
        }
    }
    assert_int_equal(at_rx_line(&rx, line, sizeof line, &n), IFPP_E_NOT_FOUND); /* "+CME" has not ended */
    assert_int_equal(at_line_classify("+CME ERROR: SIM failure", 23), AT_LINE_CME);
    assert_int_equal(at_line_classify("+CMS ERROR: 500", 15), AT_LINE_CMS);
    assert_int_equal(at_line_classify("RDY", 3), AT_LINE_RESTART);
    assert_int_equal(at_line_classify("^SYSSTART", 9), AT_LINE_RESTART);
    assert_int_equal(at_line_classify("+CSIM: \x01", 8), AT_LINE_GARBAGE);
    /* a length that disagrees with the hex, odd hex, junk after it, no comma: malformed */
    const char *bad[] = {"+CSIM: 6,\"9000\"", "+CSIM: 3,\"900\"", "+CSIM: 4,\"9000\" x", "+CSIM: 4\"9000\"",
                         "+CSIM: ,\"9000\"", "+CSIM: 4,\"9000", "+CSIM: 4,\"90G0\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(at_parse_hex_reply(bad[i], strlen(bad[i]), "+CSIM:", out, sizeof out, &dn),
                         IFPP_E_APDU_MALFORMED);
    assert_int_equal(at_parse_hex_reply("+CSIM: 4,9000", 13, "+CSIM:", out, sizeof out, &dn), IFPP_OK); /* unquoted */
    assert_int_equal(at_parse_hex_reply("+CSIM: 20,\"00112233445566778899\"", 32, "+CSIM:", out, sizeof out, &dn),
                     IFPP_E_APDU_TOO_LONG);
    assert_int_equal(at_parse_session_id("+CCHO: 3", 8, &id), IFPP_OK);
    assert_int_equal(id, 3);
    assert_int_equal(at_parse_session_id("7", 1, &id), IFPP_OK); /* the bare number some modems send */
    assert_int_equal(id, 7);
    assert_int_equal(at_parse_session_id("+CCHO: 3x", 9, &id), IFPP_E_APDU_MALFORMED);
    assert_int_equal(at_parse_session_id("1234567890", 10, &id), IFPP_E_APDU_MALFORMED); /* more than 9 digits */
    /* a line that never ends fills the buffer once, is dropped and reported, and the stream goes on */
    static char flood[AT_RX_MAX];
    memset(flood, 'A', sizeof flood);
    rx.len = 0;
    assert_int_equal(at_rx_feed(&rx, flood, sizeof flood), IFPP_OK);
    assert_int_equal(at_rx_feed(&rx, "x", 1), IFPP_E_RANGE);
    assert_int_equal(at_rx_line(&rx, line, sizeof line, &n), IFPP_E_RANGE);
    assert_int_equal(at_rx_feed(&rx, "\r\nOK\r\n", 6), IFPP_OK);
    assert_int_equal(at_rx_line(&rx, line, sizeof line, &n), IFPP_OK);
    assert_int_equal(at_line_classify(line, n), AT_LINE_OK);
    /* a line longer than the caller's buffer is dropped, and the next one comes whole */
    assert_int_equal(at_rx_feed(&rx, "0123456789\r\nOK\r\n", 16), IFPP_OK);
    assert_int_equal(at_rx_line(&rx, line, 5, &n), IFPP_E_RANGE);
    assert_int_equal(at_rx_line(&rx, line, 5, &n), IFPP_OK);
    assert_string_equal(line, "OK");
}

/* A modem's USB identity as a slot names it, and the interface a tty hangs off in sysfs. */
static void test_usb_identity(void **state)
{
    (void)state;
    at_usb_id id;
    char why[256];
    assert_int_equal(at_parse_usb_id("usb=2c7c:0125", 13, &id, why, sizeof why), IFPP_OK);
    assert_int_equal(id.vid, 0x2c7c);
    assert_int_equal(id.pid, 0x0125);
    assert_int_equal(id.iface, -1);
    assert_string_equal(id.serial, "");
    assert_int_equal(at_parse_usb_id("usb=2C7C:0125:2:SN-0042", 23, &id, why, sizeof why), IFPP_OK);
    assert_int_equal(id.iface, 2);
    assert_string_equal(id.serial, "SN-0042");
    assert_int_equal(at_parse_usb_id("usb=2c7c:0125::SN1", 18, &id, why, sizeof why), IFPP_OK);
    assert_int_equal(id.iface, -1);
    assert_string_equal(id.serial, "SN1");
    const char *bad[] = {"usb=2c7c", "usb=2c7c-0125", "usb=2c7c:012", "usb=2c7c:0125x", "usb=2c7c:0125:256",
                         "usb=2c7c:0125:1:", "usb=2c7c:0125:-1", "usb=2c7c:0125:1:a,b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal(at_parse_usb_id(bad[i], strlen(bad[i]), &id, why, sizeof why), IFPP_E_ARG);
        assert_true(why[0] != '\0');
    }
    /* ttyUSB (usb-serial: the tty's device sits below the interface) and ttyACM (the interface itself) */
    assert_int_equal(at_usb_interface_of_path("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4/1-1.4:1.2/ttyUSB2"), 2);
    assert_int_equal(at_usb_interface_of_path("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.3"), 3);
    assert_int_equal(at_usb_interface_of_path("/sys/devices/pnp0/00:00/00:00:0/00:00:0.0"), -1); /* not USB */
    assert_int_equal(at_usb_interface_of_path("/sys/devices/virtual/tty/ptmx"), -1);
    assert_int_equal(at_usb_interface_of_path(""), -1);
}

/* Bad slot options are named, with what they may be; nothing is opened. */
static void test_bad_options(void **state)
{
    (void)state;
    const struct {
        const char *target, *words;
        ifpp_err e;
    } cases[] = {
        {"/dev/null,baud=fast", "baud=N", IFPP_E_ARG},
        {"/dev/null,flow=maybe", "flow=none|rtscts|xonxoff", IFPP_E_ARG},
        {"/dev/null,line-max=300", "line-max=300", IFPP_E_ARG},
        {"/dev/null,hex-case=mixed", "hex-case=upper|lower", IFPP_E_ARG},
        {"/dev/null,chan=maybe", "chan=auto|cgla|csim", IFPP_E_ARG},
        {"/dev/null,colour=blue", "colour=blue", IFPP_E_ARG},
        {"usb=12G4:0001", "4 hex digits", IFPP_E_ARG},
        {"usb=1234:5678:x", "interface is a number", IFPP_E_ARG},
        {"usb=1234:5678:", "nothing after", IFPP_E_ARG},
        {"usb=1234:5678:2:SN1", "no serial port has USB identity", IFPP_E_NO_READER},
        {"/dev/ifpp-no-such-port", "no serial port", IFPP_E_NO_READER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fpa_slot slot;
        char why[512] = "";
        ifpp_err e = fpa_open("at", cases[i].target, &slot, why, sizeof why);
        printf("    %s: %s (%s)\n", cases[i].target, why, err_name(e));
        assert_int_equal(e, cases[i].e);
        if (!strstr(why, cases[i].words))
            fail_msg("'%s' does not say '%s'", why, cases[i].words);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_parser),
        cmocka_unit_test(test_usb_identity),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_basic_channel),
        cmocka_unit_test(test_logical_channels),
        cmocka_unit_test(test_quirks_that_still_provision),
        cmocka_unit_test(test_quirks_that_fail),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
