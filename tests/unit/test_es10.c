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

#include <sqlite3.h>

#include "apdu.h"
#include "es10.h"
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
    HOSTILE_PREPARE_REFUSED,  /* PrepareBppLoad answered 'BF71' { '02' oneTimeKeyUnknown(3) } */
    HOSTILE_PREPARE_SW,       /* PrepareBppLoad answered '6A80' */
    HOSTILE_PREPARE_GARBLED,  /* PrepareBppLoad answered with bytes that are no 'BF71' */
    HOSTILE_PIR_LOST,         /* the card installs, its PIR is lost on the wire */
    HOSTILE_OTK_GARBLED,      /* GetOneTimeKeyInfo answered 'BF72' with no fields */
} hostile_mode;

typedef struct {
    euicc_sim *card;
    hostile_mode mode;
    unsigned rounds;      /* APDUs the station sent while the card lied */
    unsigned apdus;       /* every APDU the station sent */
    bool in_prepare;      /* inside the STORE DATA blocks of a PrepareBppLoad */
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
    h->apdus++;
    switch (h->mode) {
    case HOSTILE_PREPARE_REFUSED:
    case HOSTILE_PREPARE_SW:
    case HOSTILE_PREPARE_GARBLED:
        if (is_es10(cmd, n, 0xBF, 0x71))
            h->in_prepare = true;
        if (h->in_prepare && n > 3 && cmd[1] == APDU_INS_STORE_DATA) {
            static const uint8_t refused[] = {0xBF, 0x71, 0x03, 0x02, 0x01, 0x03, 0x90, 0x00};
            static const uint8_t garbled[] = {0xBF, 0x71, 0x05, 0x02, 0x01, 0x90, 0x00};
            static const uint8_t sw[] = {0x6A, 0x80};
            static const uint8_t more[] = {0x90, 0x00};
            const uint8_t *a = more;
            size_t an = sizeof more;
            if (cmd[2] == APDU_STORE_DATA_LAST) {
                h->in_prepare = false;
                a = h->mode == HOSTILE_PREPARE_REFUSED ? refused : h->mode == HOSTILE_PREPARE_SW ? sw : garbled;
                an = h->mode == HOSTILE_PREPARE_REFUSED ? sizeof refused
                     : h->mode == HOSTILE_PREPARE_SW    ? sizeof sw
                                                        : sizeof garbled;
            }
            if (cap < an)
                return IFPP_E_APDU_TOO_LONG;
            memcpy(resp, a, an);
            *rn = an;
            return IFPP_OK;
        }
        break;
    case HOSTILE_OTK_GARBLED:
        if (is_es10(cmd, n, 0xBF, 0x72)) {
            static const uint8_t empty[] = {0xBF, 0x72, 0x00, 0x90, 0x00};
            memcpy(resp, empty, sizeof empty);
            *rn = sizeof empty;
            return IFPP_OK;
        }
        break;
    case HOSTILE_PIR_LOST: {
        ifpp_err e = euicc_sim_transmit(h->card, cmd, n, resp, cap, rn);
        if (e == IFPP_OK && *rn > 2 && resp[0] == 0xBF && resp[1] == 0x37)
            return IFPP_E_TRANSPORT; /* the card kept its PIR; the station never sees it */
        return e;
    }
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
    test_line_opts o = {.n_cards = 8, .n_otks = {2, 2, 2, 2, 2, 2, 2, 2}, .profile_size = 1024, .import_vault = true};
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
typedef struct {
    const char *serial;         /* NULL: "DUT-HOSTILE" */
    bool null_serial;
    const crypto_key *dm_key;   /* NULL: the line's DM FPA key */
    bool additional_profile;
    unsigned apdus;             /* out */
} session_opts;

static ifpp_err hostile_session_with(int card, hostile_mode mode, bool complete, session_opts *o, session_result *r,
                                     unsigned *rounds, size_t counts[BPP_STATE__COUNT])
{
    store *s;
    hostile_card h = {.mode = mode};
    char why[256] = "";
    assert_int_equal(store_open(L.db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(euicc_sim_open(L.card[card], &h.card), IFPP_OK);
    fpa_slot slot = {.ops = &hostile_ops, .ctx = &h};
    session_ctx c = {.st = s, .slot = &slot, .slot_name = "hostile-1",
                     .dm_fpa_key = o->dm_key ? o->dm_key : L.dm_fpa_key, .dm_fpa_cert = L.dm_fpa,
                     .delete_keys_when_done = complete, .additional_profile = o->additional_profile};
    ifpp_err e = session_provision(&c, o->null_serial ? NULL : o->serial ? o->serial : "DUT-HOSTILE", NULL, r);
    o->apdus = h.apdus;
    printf("    %s\n", r->message);
    euicc_sim_close(h.card);
    uint8_t eid[16];
    memcpy(eid, L.info[card].eid, 16);
    assert_int_equal(store_eid_counts(s, eid, counts), IFPP_OK);
    store_close(s);
    *rounds = h.rounds;
    return e;
}

static ifpp_err hostile_session(int card, hostile_mode mode, bool complete, session_result *r, unsigned *rounds,
                                size_t counts[BPP_STATE__COUNT])
{
    session_opts o = {0};
    return hostile_session_with(card, mode, complete, &o, r, rounds, counts);
}

static size_t card_profiles(int card)
{
    euicc_sim *sim;
    assert_int_equal(euicc_sim_open(L.card[card], &sim), IFPP_OK);
    size_t n = euicc_sim_profile_count(sim);
    euicc_sim_close(sim);
    return n;
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
    assert_int_equal(e, IFPP_E_CARD_PROTOCOL);
    assert_non_null(strstr(r.message, "broke the transport protocol"));
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

/*
 * Serials that would travel into the audit log, the signed report and the operator's terminal
 * (issue 9 item 5): refused with a clear error before any APDU or store write.
 */
static void test_hostile_serials(void **state)
{
    (void)state;
    char long_serial[101];
    memset(long_serial, 'S', 100);
    long_serial[100] = '\0';
    const char *bad[] = {NULL, "", long_serial, "DUT-1\nPASS DUT-2", "\x1b[2JDUT", "DUT\x01", "DUT 1", "DUT\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        session_result r;
        unsigned rounds;
        size_t counts[BPP_STATE__COUNT];
        session_opts o = {.serial = bad[i], .null_serial = bad[i] == NULL};
        assert_int_equal(hostile_session_with(2, HOSTILE_NONE, false, &o, &r, &rounds, counts), IFPP_E_ARG);
        assert_non_null(strstr(r.message, "DUT serial refused"));
        assert_int_equal(o.apdus, 0);
        assert_int_equal(counts[BPP_AVAILABLE], 2);
    }
}

/* Issue 9 item 6: a refused authorisation (wrong DM key) touches no BPP; the card's words reach the result. */
static void test_refused_authorisation(void **state)
{
    (void)state;
    session_result r;
    unsigned rounds;
    size_t counts[BPP_STATE__COUNT];
    session_opts o = {.dm_key = L.station_key};
    assert_int_equal(hostile_session_with(2, HOSTILE_NONE, false, &o, &r, &rounds, counts), IFPP_E_SIGNATURE);
    assert_int_equal(r.failed_step, SESSION_STEP_AUTHORISE);
    assert_int_equal(r.card_result, 2);
    assert_non_null(strstr(r.message, "invalidSignature"));
    assert_int_equal(counts[BPP_AVAILABLE], 2);
    assert_int_equal(counts[BPP_RESERVED] + counts[BPP_IN_DOUBT], 0);
}

/* Issue 9 item 6: PrepareBppLoad refused with a result code or an error status word: the BPP is available again. */
static void test_refused_prepare(void **state)
{
    (void)state;
    session_result r;
    unsigned rounds;
    size_t counts[BPP_STATE__COUNT];
    assert_int_not_equal(hostile_session(2, HOSTILE_PREPARE_REFUSED, false, &r, &rounds, counts), IFPP_OK);
    assert_int_equal(r.failed_step, SESSION_STEP_PREPARE);
    assert_int_equal(r.card_result, 3);
    assert_non_null(strstr(r.message, "oneTimeKeyUnknown"));
    assert_int_equal(r.final_state, BPP_AVAILABLE);
    assert_int_equal(counts[BPP_AVAILABLE], 2);
    assert_int_not_equal(hostile_session(2, HOSTILE_PREPARE_SW, false, &r, &rounds, counts), IFPP_OK);
    assert_int_equal(r.sw, 0x6A80);
    assert_non_null(strstr(r.message, "6A80"));
    assert_int_equal(counts[BPP_AVAILABLE], 2);
    assert_int_equal(counts[BPP_RESERVED] + counts[BPP_IN_DOUBT], 0);
    /* an answer that is no answer: not definite, the BPP waits in doubt and the operator is told how */
    assert_int_not_equal(hostile_session(3, HOSTILE_PREPARE_GARBLED, false, &r, &rounds, counts), IFPP_OK);
    assert_int_equal(r.final_state, BPP_IN_DOUBT);
    assert_non_null(strstr(r.message, "ifppctl recover --slot hostile-1"));
    assert_int_equal(counts[BPP_IN_DOUBT], 1);
}

/*
 * Issue 8 item 5: the PIR is lost on the wire after the card installed; the DUT is scanned again.
 * The session first resolves the in-doubt BPP from the card's kept PIR (installed) and then gives
 * no second BPP: one profile on the eUICC, nothing reserved.
 */
static void test_rescan_after_lost_pir(void **state)
{
    (void)state;
    session_result r;
    unsigned rounds;
    size_t counts[BPP_STATE__COUNT];
    assert_int_not_equal(hostile_session(4, HOSTILE_PIR_LOST, false, &r, &rounds, counts), IFPP_OK);
    assert_int_equal(counts[BPP_IN_DOUBT], 1);
    assert_int_equal(card_profiles(4), 1);
    uint8_t first[16];
    size_t first_len = r.txid_len;
    memcpy(first, r.txid, first_len);
    assert_int_equal(hostile_session(4, HOSTILE_NONE, false, &r, &rounds, counts), IFPP_E_RANGE);
    printf("    rescan: %s\n", r.message);
    assert_non_null(strstr(r.message, "already has a profile"));
    assert_int_equal(card_profiles(4), 1);
    assert_int_equal(counts[BPP_INSTALLED], 1);
    assert_int_equal(counts[BPP_AVAILABLE], 1);
    assert_int_equal(counts[BPP_RESERVED] + counts[BPP_IN_DOUBT], 0);
    store *s;
    store_bpp b;
    assert_int_equal(store_open(L.db, &s, NULL, 0), IFPP_OK);
    assert_int_equal(store_get_bpp(s, first, first_len, &b), IFPP_OK);
    assert_int_equal(b.state, BPP_INSTALLED);
    store_close(s);
}

/* Issue 9 item 9: the same DUT twice gets one profile; a second one only when asked for (use case A.3). */
static void test_same_dut_twice(void **state)
{
    (void)state;
    session_result r;
    unsigned rounds;
    size_t counts[BPP_STATE__COUNT];
    assert_int_equal(hostile_session(5, HOSTILE_NONE, false, &r, &rounds, counts), IFPP_OK);
    assert_true(r.installed);
    assert_int_equal(hostile_session(5, HOSTILE_NONE, false, &r, &rounds, counts), IFPP_E_RANGE);
    assert_non_null(strstr(r.message, "this DUT already has a profile"));
    assert_int_equal(card_profiles(5), 1);
    assert_int_equal(counts[BPP_AVAILABLE], 1);
    session_opts o = {.additional_profile = true};
    assert_int_equal(hostile_session_with(5, HOSTILE_NONE, false, &o, &r, &rounds, counts), IFPP_OK);
    assert_true(r.installed);
    assert_int_equal(card_profiles(5), 2);
}

/*
 * Issue 8 item 10 / session item 7: the PIR's ICCID must be the vault record's. The record of card
 * 6's BPPs is edited behind the station's back (as a vault whose records disagree with its BPPs
 * would deliver it); the card installs and signs a PIR with the real ICCID; the session fails with
 * both ICCIDs in the message and the BPP stays in doubt (the card did something).
 */
static void test_pir_iccid_not_the_vaults(void **state)
{
    (void)state;
    sqlite3 *db;
    sqlite3_stmt *st;
    static const uint8_t other_iccid[10] = {0x98, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x54, 0xF6};
    assert_int_equal(sqlite3_open(L.db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE bpp SET iccid = ?1 WHERE eid = ?2", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_blob(st, 1, other_iccid, 10, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, L.info[6].eid, 16, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    assert_int_equal(sqlite3_changes(db), 2);
    sqlite3_finalize(st);
    sqlite3_close(db);

    session_result r;
    unsigned rounds;
    size_t counts[BPP_STATE__COUNT];
    assert_int_not_equal(hostile_session(6, HOSTILE_NONE, false, &r, &rounds, counts), IFPP_OK);
    assert_non_null(strstr(r.message, "8901234567890123456")); /* the vault's ICCID, as digits */
    assert_non_null(strstr(r.message, "ICCID"));
    assert_int_equal(r.failed_step, SESSION_STEP_PIR);
    assert_int_equal(r.final_state, BPP_IN_DOUBT);
    assert_int_equal(counts[BPP_IN_DOUBT], 1);
    assert_int_equal(counts[BPP_INSTALLED], 0);
}

/*
 * Issue 8 item 5, the refusal: card 7 is left with an in-doubt BPP (a garbled PrepareBppLoad answer)
 * and then gives no readable evidence (its One-time Key list is garbled). The session refuses with that reason and
 * reserves nothing; the same card answering properly resolves it (the key is there: available) and
 * is provisioned.
 */
static void test_unresolved_refuses(void **state)
{
    (void)state;
    session_result r;
    unsigned rounds;
    size_t counts[BPP_STATE__COUNT];
    assert_int_not_equal(hostile_session(7, HOSTILE_PREPARE_GARBLED, false, &r, &rounds, counts), IFPP_OK);
    assert_int_equal(counts[BPP_IN_DOUBT], 1);
    assert_int_equal(hostile_session(7, HOSTILE_OTK_GARBLED, false, &r, &rounds, counts), IFPP_E_TLV_MISSING);
    assert_non_null(strstr(r.message, "does not resolve"));
    assert_non_null(strstr(r.message, "ifppctl recover --slot hostile-1"));
    assert_int_equal(counts[BPP_IN_DOUBT], 1);
    assert_int_equal(counts[BPP_AVAILABLE], 1);
    assert_int_equal(counts[BPP_RESERVED] + counts[BPP_INSTALLED], 0);
    assert_int_equal(hostile_session(7, HOSTILE_NONE, false, &r, &rounds, counts), IFPP_OK);
    assert_true(r.installed);
    assert_int_equal(counts[BPP_INSTALLED], 1);
    assert_int_equal(counts[BPP_AVAILABLE], 1);
    assert_int_equal(counts[BPP_IN_DOUBT] + counts[BPP_RESERVED], 0);
}

/*
 * Issue 9 item 7: another writer holds the store while the session reserves. That is a store that
 * cannot answer now, not "no available BPP": the message says which, and nothing moved.
 */
static void test_store_held_is_not_no_bpp(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(L.db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    session_result r;
    unsigned rounds;
    size_t counts[BPP_STATE__COUNT];
    ifpp_err e = hostile_session(2, HOSTILE_NONE, false, &r, &rounds, counts);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_not_equal(e, IFPP_OK);
    assert_int_not_equal(e, IFPP_E_NOT_FOUND);
    assert_null(strstr(r.message, "no available BPP"));
    assert_non_null(strstr(r.message, "store"));
    assert_int_equal(r.failed_step, SESSION_STEP_RESERVE);
    assert_int_equal(counts[BPP_AVAILABLE], 2);
}

/* A card that answers every APDU with one canned response (data || SW). */
typedef struct {
    const uint8_t *answer;
    size_t len;
} canned;

static ifpp_err canned_tx(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    const canned *c = ctx;
    (void)cmd;
    (void)n;
    if (c->len > cap)
        return IFPP_E_APDU_TOO_LONG;
    memcpy(resp, c->answer, c->len);
    *rn = c->len;
    return IFPP_OK;
}

/* Each ES10 answer is read strictly: its tag, every field's tag and size, nothing after it. */
static void test_strict_answers(void **state)
{
    (void)state;
    uint8_t buf[64], challenge[16], eid[16];
    canned c;
    es10_chan k = {.tx = canned_tx, .ctx = &c, .block = ES10F_BLOCK};
#define ANSWER(...)                                                                                                    \
    do {                                                                                                               \
        static const uint8_t a_[] = {__VA_ARGS__};                                                                    \
        memcpy(buf, a_, sizeof a_);                                                                                    \
        c.answer = buf;                                                                                                \
        c.len = sizeof a_;                                                                                             \
    } while (0)
#define SIXTEEN 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
    ANSWER(0xBF, 0x2E, 0x12, 0x80, 0x10, SIXTEEN, 0x90, 0x00);
    assert_int_equal(es10_get_challenge(&k, challenge), IFPP_OK);
    assert_int_equal(challenge[15], 16);
    ANSWER(0xBF, 0x2E, 0x12, 0x81, 0x10, SIXTEEN, 0x90, 0x00); /* right size, wrong field */
    assert_int_equal(es10_get_challenge(&k, challenge), IFPP_E_TLV_UNEXPECTED_TAG);
    ANSWER(0xBF, 0x2E, 0x15, 0x80, 0x10, SIXTEEN, 0x81, 0x01, 0x00, 0x90, 0x00); /* something after it */
    assert_int_equal(es10_get_challenge(&k, challenge), IFPP_E_TLV_TRAILING);
    ANSWER(0xBF, 0x2E, 0x11, 0x80, 0x0F, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x90, 0x00);
    assert_int_equal(es10_get_challenge(&k, challenge), IFPP_E_RANGE);
    ANSWER(0xBF, 0x2E, 0x12, 0x80, 0x10, SIXTEEN, 0x69, 0x85); /* a refusing status word */
    assert_int_equal(es10_get_challenge(&k, challenge), IFPP_E_IO);
    assert_int_equal(k.sw, 0x6985);
    ANSWER(0xBF, 0x3F, 0x12, 0x5A, 0x10, SIXTEEN, 0x90, 0x00);
    assert_int_equal(es10_get_eid(&k, eid), IFPP_E_TLV_UNEXPECTED_TAG);
    ANSWER(0xBF, 0x30, 0x03, 0x80, 0x01, 0x00, 0x90, 0x00);
    assert_int_equal(es10_notification_sent(&k, 1), IFPP_OK);
    ANSWER(0xBF, 0x30, 0x06, 0x80, 0x01, 0x00, 0x81, 0x01, 0x00, 0x90, 0x00);
    assert_int_equal(es10_notification_sent(&k, 1), IFPP_E_TLV_TRAILING);
    ANSWER(0xBF, 0x30, 0x03, 0x80, 0x01, 0x01, 0x90, 0x00);
    assert_int_equal(es10_notification_sent(&k, 1), IFPP_E_NOT_FOUND);
    ANSWER(0xBF, 0x73, 0x06, 0x02, 0x01, 0x01, 0x80, 0x01, 0x00, 0x90, 0x00); /* fpaNotAuthorised */
    uint8_t deleted;
    assert_int_equal(es10_delete_otks(&k, &deleted), IFPP_E_IO);
    assert_int_equal(k.result, 1);
    ANSWER(0xBF, 0x73, 0x03, 0x02, 0x01, 0x00, 0x90, 0x00); /* ok without deletedCount */
    assert_int_equal(es10_delete_otks(&k, &deleted), IFPP_E_TLV_MISSING);
    /* the notification list: PIRs and other notifications only; an error result is a refusal */
    tlv pirs[2];
    size_t n;
    int error;
    static const uint8_t list_ok[] = {0xBF, 0x2B, 0x09, 0xA0, 0x07, 0xBF, 0x37, 0x02, 0x04, 0x00, 0x30, 0x00};
    assert_int_equal(es10_parse_notifications(list_ok, sizeof list_ok, pirs, 2, &n, &error), IFPP_OK);
    assert_int_equal(n, 1);
    static const uint8_t list_odd[] = {0xBF, 0x2B, 0x06, 0xA0, 0x04, 0x04, 0x02, 0x00, 0x00};
    assert_int_equal(es10_parse_notifications(list_odd, sizeof list_odd, pirs, 2, &n, &error),
                     IFPP_E_TLV_UNEXPECTED_TAG);
    static const uint8_t list_err[] = {0xBF, 0x2B, 0x03, 0x81, 0x01, 0x7F};
    assert_int_equal(es10_parse_notifications(list_err, sizeof list_err, pirs, 2, &n, &error), IFPP_E_IO);
    assert_int_equal(error, 127);
    static const uint8_t list_many[] = {0xBF, 0x2B, 0x0F, 0xA0, 0x0D, 0xBF, 0x37, 0x02, 0x04, 0x00, 0xBF, 0x37,
                                        0x02, 0x04, 0x00, 0xBF, 0x37, 0x00};
    assert_int_equal(es10_parse_notifications(list_many, sizeof list_many, pirs, 2, &n, &error), IFPP_E_RANGE);
#undef SIXTEEN
#undef ANSWER
}

/* argv[1], if given, runs only the tests whose names match it (cmocka's filter) */
int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict_answers),
        cmocka_unit_test(test_big_notification_sent),
        cmocka_unit_test(test_big_delete_answer),
        cmocka_unit_test(test_61_00_forever),
        cmocka_unit_test(test_61_10_without_data),
        cmocka_unit_test(test_hostile_serials),
        cmocka_unit_test(test_refused_authorisation),
        cmocka_unit_test(test_refused_prepare),
        cmocka_unit_test(test_rescan_after_lost_pir),
        cmocka_unit_test(test_unresolved_refuses),
        cmocka_unit_test(test_same_dut_twice),
        cmocka_unit_test(test_pir_iccid_not_the_vaults),
        cmocka_unit_test(test_store_held_is_not_no_bpp),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("es10", tests, setup, teardown);
}
