/*
 * test_es10.c -- hostile cards against the session and the ES10 transport (issue 8 item 1).
 *
 * A DUT's card is outside input like any file: these tests put a real software eUICC behind a
 * scripted fpa_ops that lies where a hostile or broken card would -- an answer larger than the
 * station's buffer for it, a GET RESPONSE chain that never makes progress -- and check that the
 * session ends with a clear error, within a bounded number of APDUs, the store exactly as the
 * card's evidence allows. Registered locally (fpa_slot{.ops = &hostile_ops}), never in the
 * product's backend registry.
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

#include "apdu.h"
#include "euicc_sim.h"
#include "session.h"
#include "testline.h"
#include "testutil.h"

/* far above any bound the station may set: reaching it means the station did not stop */
#define HOSTILE_GUARD 100000u

typedef enum {
    HOSTILE_NONE = 0,
    HOSTILE_BIG_ACK,      /* NotificationSent ('BF30') answered with 250 bytes */
    HOSTILE_BIG_DELETE,   /* DeleteOneTimeKeys ('BF73') answered with 400 bytes (200, '61 C8', 200) */
    HOSTILE_61_00,        /* every ES10 call and GET RESPONSE: '61 00', no data, forever */
    HOSTILE_61_10,        /* the same with '61 10' */
} hostile_mode;

typedef struct {
    euicc_sim *card;
    hostile_mode mode;
    unsigned rounds;      /* APDUs the station sent while the card lied */
} hostile_card;

static ifpp_err hostile_reset(void *ctx, uint8_t *atr, size_t cap, size_t *atr_len)
{
    hostile_card *h = ctx;
    return euicc_sim_reset(h->card, atr, cap, atr_len);
}

/* True if cmd is the first (or only) STORE DATA block of an ES10 request starting with tag t1 t2. */
static bool is_es10(const uint8_t *cmd, size_t n, uint8_t t1, uint8_t t2)
{
    return n > 6 && cmd[1] == APDU_INS_STORE_DATA && cmd[3] == 0 && cmd[5] == t1 && cmd[6] == t2;
}

static ifpp_err hostile_answer(uint8_t *resp, size_t cap, size_t *rn, size_t data_len, uint8_t tag2)
{
    if (cap < data_len + 2)
        return IFPP_E_APDU_TOO_LONG;
    memset(resp, 0, data_len);
    /* a plausible DER head: BF tag2 81 <len>, then zeros */
    resp[0] = 0xBF;
    resp[1] = tag2;
    if (data_len > 255) {
        resp[2] = 0x82;
        resp[3] = (uint8_t)((data_len - 5) >> 8);
        resp[4] = (uint8_t)(data_len - 5);
    } else {
        resp[2] = 0x81;
        resp[3] = (uint8_t)(data_len - 4);
    }
    resp[data_len] = 0x90;
    resp[data_len + 1] = 0x00;
    *rn = data_len + 2;
    return IFPP_OK;
}

static ifpp_err hostile_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    hostile_card *h = ctx;
    bool get_response = n >= 4 && cmd[1] == APDU_INS_GET_RESPONSE;
    switch (h->mode) {
    case HOSTILE_BIG_ACK:
        if (is_es10(cmd, n, 0xBF, 0x30))
            return hostile_answer(resp, cap, rn, 250 - 2, 0x30);
        break;
    case HOSTILE_BIG_DELETE:
        /* 400 bytes in two parts, as a T=0 card announces more with '61 C8' */
        if (is_es10(cmd, n, 0xBF, 0x73) || (get_response && h->rounds == 1)) {
            ifpp_err e = hostile_answer(resp, cap, rn, 200, 0x73);
            if (e == IFPP_OK && h->rounds++ == 0) {
                /* the head announces 396 bytes: BF73 82 01 8C */
                resp[2] = 0x82, resp[3] = 0x01, resp[4] = 0x8C;
                resp[200] = 0x61, resp[201] = 0xC8;
            } else if (e == IFPP_OK) {
                memset(resp, 0, 200);
            }
            return e;
        }
        break;
    case HOSTILE_61_00:
    case HOSTILE_61_10:
        if (is_es10(cmd, n, 0xBF, 0x3E) || get_response || h->rounds) {
            if (++h->rounds > HOSTILE_GUARD)
                return IFPP_E_TRANSPORT; /* the guard: the station never stopped by itself */
            if (cap < 2)
                return IFPP_E_APDU_TOO_LONG;
            resp[0] = 0x61;
            resp[1] = h->mode == HOSTILE_61_00 ? 0x00 : 0x10;
            *rn = 2;
            return IFPP_OK;
        }
        break;
    case HOSTILE_NONE:
        break;
    }
    return euicc_sim_transmit(h->card, cmd, n, resp, cap, rn);
}

static const fpa_ops hostile_ops = {.name = "hostile", .reset = hostile_reset, .transmit = hostile_transmit};

static test_line L;

static int setup(void **state)
{
    (void)state;
    char why[256] = "";
    test_line_opts o = {.n_cards = 4, .n_otks = {2, 2, 2, 2}, .profile_size = 1024, .import_vault = true};
    char *dir = tu_mkdtemp("ifpp-es10");
    int rc = dir ? test_line_make(&L, dir, &o, why, sizeof why) : -1;
    free(dir);
    if (rc != 0)
        fprintf(stderr, "setup: %s\n", why);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(L.dir);
    test_line_free(&L);
    return 0;
}

/* One session on card `card` behind the hostile slot in `mode`; the store's counts per state after it. */
static ifpp_err hostile_session(int card, hostile_mode mode, bool complete, session_result *r, unsigned *rounds,
                                size_t counts[BPP_STATE__COUNT])
{
    store *s;
    hostile_card h = {.mode = mode};
    char why[256] = "";
    assert_int_equal(store_open(L.db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(euicc_sim_open(L.card[card], &h.card), IFPP_OK);
    fpa_slot slot = {.ops = &hostile_ops, .ctx = &h};
    session_ctx c = {.st = s, .slot = &slot, .slot_name = "hostile-1", .dm_fpa_key = L.dm_fpa_key,
                     .dm_fpa_cert = L.dm_fpa, .delete_keys_when_done = complete};
    ifpp_err e = session_provision(&c, "DUT-HOSTILE", NULL, r);
    printf("    %s\n", r->message);
    euicc_sim_close(h.card);
    uint8_t eid[16];
    memcpy(eid, L.info[card].eid, 16);
    assert_int_equal(store_eid_counts(s, eid, counts), IFPP_OK);
    store_close(s);
    *rounds = h.rounds;
    return e;
}

/* A 250-byte NotificationSent answer into the acknowledgement's buffer: refused, never written past it. */
static void test_big_notification_sent(void **state)
{
    (void)state;
    session_result r;
    unsigned rounds;
    size_t counts[BPP_STATE__COUNT];
    /* the PIR was verified and recorded before the acknowledgement: the profile stays installed */
    assert_int_equal(hostile_session(0, HOSTILE_BIG_ACK, false, &r, &rounds, counts), IFPP_OK);
    assert_true(r.installed);
    assert_int_equal(counts[BPP_INSTALLED], 1);
}

/* A 400-byte DeleteOneTimeKeys answer: a failed deletion (the keys are not confirmed gone), no overflow. */
static void test_big_delete_answer(void **state)
{
    (void)state;
    session_result r;
    unsigned rounds;
    size_t counts[BPP_STATE__COUNT];
    assert_int_not_equal(hostile_session(1, HOSTILE_BIG_DELETE, true, &r, &rounds, counts), IFPP_OK);
    assert_int_equal(r.failed_step, SESSION_STEP_DELETE_KEYS);
    assert_int_equal(counts[BPP_INSTALLED], 1);
}

/* '61 xx' with no data, forever: the GET RESPONSE chain stops by its own bound, the store untouched. */
static void hostile_get_response_loop(int card, hostile_mode mode)
{
    session_result r;
    unsigned rounds;
    size_t counts[BPP_STATE__COUNT];
    ifpp_err e = hostile_session(card, mode, false, &r, &rounds, counts);
    printf("    card answered %u GET RESPONSE round(s) before the station stopped\n", rounds);
    if (rounds > HOSTILE_GUARD)
        fail_msg("the station followed '61 %02X' %u times without progress", mode == HOSTILE_61_00 ? 0 : 0x10, rounds);
    assert_int_not_equal(e, IFPP_OK);
    assert_true(rounds <= 8);
    assert_int_equal(r.failed_step, SESSION_STEP_EID);
    assert_int_equal(counts[BPP_AVAILABLE], 2); /* nothing reserved: the EID was never read */
    assert_int_equal(counts[BPP_RESERVED] + counts[BPP_IN_DOUBT], 0);
}

static void test_61_00_forever(void **state)
{
    (void)state;
    hostile_get_response_loop(2, HOSTILE_61_00);
}

static void test_61_10_without_data(void **state)
{
    (void)state;
    hostile_get_response_loop(3, HOSTILE_61_10);
}

/* argv[1], if given, runs only the tests whose names match it (cmocka's filter) */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_notification_sent),
        cmocka_unit_test(test_big_delete_answer),
        cmocka_unit_test(test_61_00_forever),
        cmocka_unit_test(test_61_10_without_data),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("es10", tests, setup, teardown);
}
