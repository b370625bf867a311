/*
 * test_usb.c -- the USB vendor protocol (drivers/usb_frame.c) and the usb backend
 * (drivers/fpa_usb.c) through the real libusb-1.0, against emulated devices with the software
 * eUICC behind them (tests/sim/usb_device.c, under umockdev's preload: this program re-executes
 * itself with it). Both modes provision a DUT end to end -- the APDU pipe, and a hardware FPA that
 * runs the ES10f sequence itself, asking the station to sign, whose PIR the station checks like any
 * other -- and each bus fault (stall, short read, wrong sequence number, silence, a newer protocol
 * version, unplug mid-transfer) ends in the right store state with a message that names it.
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
#include <unistd.h>

#include "fpa.h"
#include "session.h"
#include "store.h"
#include "testline.h"
#include "testutil.h"
#include "usb_device.h"
#include "usb_frame.h"

#define VID 0x1209
#define PID 0x1F50

static struct {
    char *dir;
    test_line line;
    usbdev *dev;     /* the current device, on card 0 */
    usbdev_fault arm_at_load; /* armed when the session reaches its LOAD step */
    uint8_t arm_type;
    bool foreign_signer; /* the station signs with a key that is not the Device Manufacturer's */
} U;

/* ---- the frame codec ---- */

static void test_frame_roundtrip_and_refusals(void **state)
{
    (void)state;
    static const uint8_t apdu[] = {0x00, 0xA4, 0x04, 0x00, 0x00};
    uint8_t buf[64];
    size_t n;
    usbf_frame f = {.version = 1, .type = USBF_APDU, .seq = 0x0102, .payload = apdu, .len = sizeof apdu}, g;
    char why[200] = "";
    assert_int_equal(usbf_encode(&f, buf, sizeof buf, &n), IFPP_OK);
    assert_int_equal(n, USBF_HEADER + sizeof apdu);
    static const uint8_t head[] = {0x49, 0x46, 0x01, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05};
    assert_memory_equal(buf, head, sizeof head);
    assert_int_equal(usbf_parse(buf, n, &g, why, sizeof why), IFPP_OK);
    assert_int_equal(g.seq, 0x0102);
    assert_int_equal(g.len, sizeof apdu);
    assert_memory_equal(g.payload, apdu, sizeof apdu);
    /* short read, trailing bytes, bad magic, a header alone, a length past the maximum */
    assert_int_equal(usbf_parse(buf, n - 1, &g, why, sizeof why), IFPP_E_CARD_PROTOCOL);
    assert_non_null(strstr(why, "short read"));
    assert_int_equal(usbf_parse(buf, n + 1, &g, why, sizeof why), IFPP_E_CARD_PROTOCOL);
    assert_non_null(strstr(why, "trailing"));
    assert_int_equal(usbf_parse(buf, 11, &g, why, sizeof why), IFPP_E_CARD_PROTOCOL);
    buf[1] = 'G';
    assert_int_equal(usbf_parse(buf, n, &g, why, sizeof why), IFPP_E_CARD_PROTOCOL);
    assert_non_null(strstr(why, "magic"));
    buf[1] = 'F';
    buf[8] = 0x7F;
    assert_int_equal(usbf_parse(buf, n, &g, why, sizeof why), IFPP_E_CARD_PROTOCOL);
    assert_non_null(strstr(why, "more than"));
    /* an encoder never writes past its buffer */
    assert_int_equal(usbf_encode(&f, buf, USBF_HEADER + sizeof apdu - 1, &n), IFPP_E_RANGE);
}

static void test_bpp_op_fields(void **state)
{
    (void)state;
    uint8_t otpk[65] = {0x04}, buf[256], chain[] = {0x30, 0x01, 0x00}, txid[] = {1, 2}, bpp[] = {0xBF, 0x36, 0x00};
    usbf_bpp_op op = {.chain = chain, .chain_len = 3, .txid = txid, .txid_len = 2, .otpk = otpk, .bpp = bpp,
                      .bpp_len = 3},
                back;
    size_t n;
    char why[200] = "";
    assert_int_equal(usbf_encode_bpp_op(&op, buf, sizeof buf, &n), IFPP_OK);
    assert_int_equal(n, 93); /* docs/usb-protocol.md §7's example */
    assert_int_equal(usbf_parse_bpp_op(buf, n, &back, why, sizeof why), IFPP_OK);
    assert_int_equal(back.txid_len, 2);
    assert_memory_equal(back.bpp, bpp, 3);
    assert_int_equal(usbf_parse_bpp_op(buf, n - 1, &back, why, sizeof why), IFPP_E_TLV_TRUNCATED);
    assert_non_null(strstr(why, "BPP"));
    buf[n] = 0;
    assert_int_equal(usbf_parse_bpp_op(buf, n + 1, &back, why, sizeof why), IFPP_E_TLV_TRAILING);
    buf[8] = 2; /* the chain's first byte ... */
    buf[0] = 2; /* ... and a field out of order */
    assert_int_equal(usbf_parse_bpp_op(buf, n, &back, why, sizeof why), IFPP_E_TLV_UNEXPECTED_TAG);
    assert_non_null(strstr(why, "SM-DPf certificate chain"));
}

static void test_bad_targets(void **state)
{
    (void)state;
    static const struct {
        const char *target, *named;
    } bad[] = {
        {"zz:01", "vendor id 'zz'"},        {"1209", "not VID:PID"},
        {"1209:1f50,mode=fast", "mode"},    {"1209:1f50,colour=red", "colour"},
        {"1209:1f50,port=1-", "port"},      {"1209:1f50,timeout=0", "timeout"},
        {"*,bpp-timeout=-5", "bpp-timeout"}, {"*,vid=12345", "vid"},
        {"*,port=1-2..3", "port"},           {"*,port=1-.2", "port"},
        {"*,wait=soon", "wait"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fpa_slot slot = {0};
        char why[300] = "";
        assert_int_equal(fpa_open("usb", bad[i].target, &slot, why, sizeof why), IFPP_E_ARG);
        if (!strstr(why, bad[i].named))
            fail_msg("target '%s': the message '%s' does not name '%s'", bad[i].target, why, bad[i].named);
    }
}

/* ---- through libusb, against the emulated device ---- */

static size_t count(bpp_state st)
{
    store *s;
    size_t n = 0;
    assert_int_equal(store_open(U.line.db, &s, NULL, 0), IFPP_OK);
    assert_int_equal(store_count_bpps(s, st, &n), IFPP_OK);
    store_close(s);
    return n;
}

static void plug(bool whole_bpp)
{
    usbdev_config cfg = {.card_path = U.line.card[0], .vid = VID, .pid = PID, .serial = "FIX-A", .port = 2,
                         .whole_bpp = whole_bpp};
    usbdev_stop(U.dev);
    if (!(U.dev = usbdev_start(&cfg)))
        fail_msg("the emulated USB device did not start");
}

static void on_step(void *arg, session_step step, const char *detail)
{
    (void)arg;
    (void)detail;
    if (step == SESSION_STEP_LOAD && U.arm_at_load != USBDEV_FAULT_NONE) {
        usbdev_arm(U.dev, U.arm_at_load, 2, U.arm_type); /* the second BPP frame of its kind */
        U.arm_at_load = USBDEV_FAULT_NONE;
    }
}

/* One provisioning (or recovery) session on the usb slot target; why gets open's or the session's words. */
static ifpp_err run(const char *target, bool recover, session_result *r, size_t *resolved, char *why, size_t len)
{
    store *s;
    fpa_slot slot = {0};
    ifpp_err e = store_open(U.line.db, &s, why, len);
    if (e != IFPP_OK)
        return e;
    if ((e = fpa_open("usb", target, &slot, why, len)) == IFPP_OK) {
        session_ctx c = {.st = s, .slot = &slot, .slot_name = "usb-fixture",
                         .dm_fpa_key = U.foreign_signer ? U.line.station_key : U.line.dm_fpa_key,
                         .dm_fpa_cert = U.foreign_signer ? U.line.station : U.line.dm_fpa, .progress = on_step,
                         .additional_profile = true};
        if (recover)
            e = session_recover(&c, resolved, why, len);
        else {
            e = session_provision(&c, "DUT-USB", NULL, r);
            snprintf(why, len, "%s", r->message);
        }
        fpa_close(&slot);
    }
    store_close(s);
    return e;
}

static void recover_one(const char *target)
{
    char why[512] = "";
    size_t resolved = 0;
    ifpp_err e = run(target, true, NULL, &resolved, why, sizeof why);
    if (e != IFPP_OK)
        fail_msg("recover: %s: %s", err_name(e), why);
    assert_int_equal(resolved, 1);
    assert_int_equal(count(BPP_IN_DOUBT), 0);
}

static void provision_ok(const char *target)
{
    session_result r;
    char why[512] = "";
    size_t installed = count(BPP_INSTALLED);
    ifpp_err e = run(target, false, &r, NULL, why, sizeof why);
    if (e != IFPP_OK || !r.installed)
        fail_msg("provision over %s: %s: %s", target, err_name(e), why);
    assert_int_equal(count(BPP_INSTALLED), installed + 1);
}

static void test_matching(void **state)
{
    (void)state;
    static const struct {
        const char *target;
        ifpp_err want;
    } cases[] = {
        {"1209:1f50", IFPP_OK},           {"1209:1f50,serial=FIX-A", IFPP_OK},
        {"*,port=1-2", IFPP_OK},          {"*,vid=1209,pid=1f50,port=1-2,serial=FIX-A", IFPP_OK},
        {"1209:1f51", IFPP_E_NO_READER},  {"1209:1f50,serial=FIX-B", IFPP_E_NO_READER},
        {"*,port=1-3", IFPP_E_NO_READER},
    };
    plug(false);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fpa_slot slot = {0};
        char why[300] = "";
        ifpp_err e = fpa_open("usb", cases[i].target, &slot, why, sizeof why);
        if (e != cases[i].want)
            fail_msg("%s: %s (%s), wanted %s", cases[i].target, err_name(e), why, err_name(cases[i].want));
        if (e == IFPP_OK)
            fpa_close(&slot);
    }
    /* an APDU-only device refuses whole-BPP mode at open, naming it */
    fpa_slot slot = {0};
    char why[300] = "";
    assert_int_equal(fpa_open("usb", "1209:1f50,mode=bpp", &slot, why, sizeof why), IFPP_E_ARG);
    assert_non_null(strstr(why, "whole-BPP"));
}

/* The APDU pipe: the station sequences ES10f, every APDU a frame. */
static void test_provision_apdu_pipe(void **state)
{
    (void)state;
    plug(false);
    provision_ok("1209:1f50");
    assert_true(usbdev_requests(U.dev, USBF_APDU) > 5);
    assert_int_equal(usbdev_requests(U.dev, USBF_LOAD_BPP), 0);
}

/* A hardware FPA: one LOAD_BPP, one signature asked of the station, the PIR verified by the station. */
static void test_provision_whole_bpp(void **state)
{
    (void)state;
    plug(true);
    unsigned apdus = usbdev_requests(U.dev, USBF_APDU);
    provision_ok("1209:1f50,mode=bpp");
    assert_int_equal(usbdev_requests(U.dev, USBF_LOAD_BPP), 1);
    assert_int_equal(usbdev_requests(U.dev, USBF_SIGN_RESPONSE), 1);
    assert_true(usbdev_requests(U.dev, USBF_APDU) > apdus); /* select, EID, acknowledgement stay on the pipe */
}

/*
 * The hardware FPA's eUICC refuses the authorisation the station signed (EUICCF02: not the Device
 * Manufacturer's key): the device says where and that no BPP command went, so the BPP goes back.
 */
static void test_whole_bpp_authorisation_refused(void **state)
{
    (void)state;
    session_result r;
    char why[512] = "";
    plug(true);
    size_t available = count(BPP_AVAILABLE);
    U.foreign_signer = true;
    ifpp_err e = run("1209:1f50,mode=bpp", false, &r, NULL, why, sizeof why);
    U.foreign_signer = false;
    printf("    refused: %s (%s)\n", why, err_name(e));
    assert_int_equal(e, IFPP_E_SIGNATURE);
    assert_non_null(strstr(why, "AuthoriseFpaServices"));
    assert_non_null(strstr(why, "REFUSED"));
    assert_int_equal(count(BPP_AVAILABLE), available);
    assert_int_equal(count(BPP_RESERVED) + count(BPP_IN_DOUBT), 0);
    provision_ok("1209:1f50,mode=bpp"); /* the right signer, the same device */
}

/* A stall before anything is reserved: halt cleared, store untouched; the next session resets and works. */
static void test_stall(void **state)
{
    (void)state;
    session_result r;
    char why[512] = "";
    plug(false);
    size_t available = count(BPP_AVAILABLE);
    usbdev_arm(U.dev, USBDEV_FAULT_STALL, 1, USBF_APDU);
    ifpp_err e = run("1209:1f50", false, &r, NULL, why, sizeof why);
    printf("    stall: %s (%s)\n", why, err_name(e));
    assert_int_equal(e, IFPP_E_TRANSPORT);
    assert_non_null(strstr(why, "stalled"));
    assert_true(usbdev_clear_halts(U.dev) >= 1);
    assert_int_equal(count(BPP_AVAILABLE), available);
    assert_int_equal(count(BPP_RESERVED) + count(BPP_IN_DOUBT), 0);
    provision_ok("1209:1f50");
}

/* Faults in the middle of the BPP (APDU pipe): in doubt, named; the card's evidence resolves it. */
static void mid_bpp_fault(usbdev_fault f, ifpp_err want, const char *words, const char *target)
{
    session_result r;
    char why[512] = "";
    plug(false);
    U.arm_at_load = f;
    U.arm_type = USBF_APDU;
    ifpp_err e = run(target, false, &r, NULL, why, sizeof why);
    printf("    %s: %s (%s)\n", words, why, err_name(e));
    assert_int_equal(e, want);
    assert_non_null(strstr(why, words));
    assert_int_equal(r.final_state, BPP_IN_DOUBT);
    assert_int_equal(count(BPP_IN_DOUBT), 1);
    recover_one(target);
}

static void test_short_read(void **state)
{
    (void)state;
    mid_bpp_fault(USBDEV_FAULT_SHORT_READ, IFPP_E_CARD_PROTOCOL, "short read", "1209:1f50");
}

static void test_wrong_sequence(void **state)
{
    (void)state;
    mid_bpp_fault(USBDEV_FAULT_WRONG_SEQ, IFPP_E_CARD_PROTOCOL, "sequence number", "1209:1f50");
}

static void test_timeout(void **state)
{
    (void)state;
    mid_bpp_fault(USBDEV_FAULT_SILENCE, IFPP_E_TIMEOUT, "no reply within", "1209:1f50,timeout=300");
}

/* A device that answers in a newer protocol version is refused at open, naming both versions. */
static void test_newer_version(void **state)
{
    (void)state;
    fpa_slot slot = {0};
    char why[300] = "";
    plug(false);
    usbdev_arm(U.dev, USBDEV_FAULT_NEWER, 1, USBF_STATUS);
    assert_int_equal(fpa_open("usb", "1209:1f50", &slot, why, sizeof why), IFPP_E_CARD_PROTOCOL);
    printf("    newer: %s\n", why);
    assert_non_null(strstr(why, "protocol v2; this station speaks v1"));
}

/* The hardware FPA unplugged after it took the BPP: in doubt; plugged back, the eUICC's PIR resolves it. */
static void test_unplug_mid_bpp(void **state)
{
    (void)state;
    session_result r;
    char why[512] = "";
    plug(true);
    size_t installed = count(BPP_INSTALLED);
    usbdev_arm(U.dev, USBDEV_FAULT_UNPLUG, 1, USBF_SIGN_RESPONSE);
    ifpp_err e = run("1209:1f50,mode=bpp", false, &r, NULL, why, sizeof why);
    printf("    unplug: %s (%s)\n", why, err_name(e));
    assert_int_equal(e, IFPP_E_NO_READER);
    assert_non_null(strstr(why, "unplugged"));
    assert_int_equal(r.final_state, BPP_IN_DOUBT);
    assert_int_equal(count(BPP_IN_DOUBT), 1);
    plug(true);
    recover_one("1209:1f50,mode=bpp");
    assert_int_equal(count(BPP_INSTALLED), installed + 1);
}

static void *open_waiting(void *arg)
{
    static ifpp_err e;
    static char why[300];
    e = fpa_open("usb", "1209:1f50,wait=120000", arg, why, sizeof why);
    if (e != IFPP_OK)
        fprintf(stderr, "    open with wait: %s\n", why);
    return &e;
}

/* Hotplug: a slot opened before its device arrives gets it; a departure is seen as it happens. */
static void test_hotplug_arrival_and_departure(void **state)
{
    (void)state;
    fpa_slot slot = {0};
    pthread_t t;
    void *res;
    usbdev_stop(U.dev);
    U.dev = NULL;
    assert_int_equal(pthread_create(&t, NULL, open_waiting, &slot), 0);
    plug(false); /* before or after the open began to wait: either way it must find it */
    assert_int_equal(pthread_join(t, &res), 0);
    assert_int_equal(*(ifpp_err *)res, IFPP_OK);
    uint8_t atr[64];
    size_t n;
    assert_int_equal(fpa_reset(&slot, atr, sizeof atr, &n), IFPP_OK);
    usbdev_stop(U.dev);
    U.dev = NULL;
    assert_int_equal(fpa_wait_card(&slot, false, 120000), IFPP_OK);
    assert_int_equal(fpa_reset(&slot, atr, sizeof atr, &n), IFPP_E_NO_READER);
    printf("    after departure: %s\n", fpa_last_error(&slot));
    fpa_close(&slot);
}

static int setup(void **state)
{
    (void)state;
    char why[512] = "";
    /* the SM-DPf under an SM-DP sub-CA (issue 8 item 10): a whole-BPP FPA must get the whole chain */
    test_line_opts o = {.n_cards = 1, .n_otks = {12}, .profile_size = 3000, .import_vault = true, .dpf_sub_ca = true};
    U.dir = tu_mkdtemp("ifpp-usb");
    if (!U.dir || test_line_make(&U.line, U.dir, &o, why, sizeof why) != 0) {
        fprintf(stderr, "test_usb setup: %s\n", why);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    usbdev_stop(U.dev);
    tu_rmrf(U.dir);
    test_line_free(&U.line);
    free(U.dir);
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    /* libusb must see the emulated sysfs and usbfs: run again under umockdev's preload */
    if (!usbdev_available()) {
        if (getenv("IFPP_USB_REEXEC")) {
            fprintf(stderr, "test_usb: umockdev's preload (libumockdev-preload.so.0) did not load\n");
            return 1;
        }
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[512];
        snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "", asan && asan[0] ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1); /* the preload comes before the sanitizer's runtime */
        setenv("LD_PRELOAD", "libumockdev-preload.so.0", 1);
        setenv("IFPP_USB_REEXEC", "1", 1);
        execv("/proc/self/exe", argv);
        perror("test_usb: re-exec under umockdev");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_roundtrip_and_refusals),
        cmocka_unit_test(test_bpp_op_fields),
        cmocka_unit_test(test_bad_targets),
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_provision_apdu_pipe),
        cmocka_unit_test(test_provision_whole_bpp),
        cmocka_unit_test(test_whole_bpp_authorisation_refused),
        cmocka_unit_test(test_stall),
        cmocka_unit_test(test_short_read),
        cmocka_unit_test(test_wrong_sequence),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_newer_version),
        cmocka_unit_test(test_unplug_mid_bpp),
        cmocka_unit_test(test_hotplug_arrival_and_departure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
