/*
 * fuzz_session.c -- libFuzzer target: a hostile card under the whole session (issue 8 item 1).
 *
 * The DUT's card is outside input. Here it is an fpa_ops of this file (never registered in the
 * product's backend registry) that answers each APDU the station sends from the fuzzer's bytes,
 * under session_provision and then session_recover, with a real SQLite store holding the eUICC and
 * its BPPs.
 *
 * At start-up the target makes a small test line (tests/testline.h: one eUICC, two One-time Keys,
 * the vault imported) and records a real session against the software eUICC -- a provisioning, a
 * lost acknowledgement, then a recovery -- as the transcript of the card's answers. The store as it
 * was before that session is kept and copied back before every input, so each input meets the
 * same store. An input is a list of answers, each a 2-byte big-endian length and that many bytes;
 * the length FFFF means "what the real card answered to this kind of command" (the transcript's next
 * answer to the same INS, block and ES10 tag), so the seed "replay" walks the whole session to a
 * verified PIR and mutations replace single answers; "pir-lost" loses the PIR, and the recovery that
 * follows resolves it from the kept one. When the input ends, the card is gone (IFPP_E_NO_CARD).
 *
 * Bounds per input: at most FUZZ_SESSION_MAX_APDUS APDUs (then IFPP_E_TIMEOUT, as a real slot's
 * time limit would say). Properties beyond "no crash, no overflow, no hang": the store's audit chain
 * stays intact, and no BPP is left reserved (a session ends with it moved on, or in_doubt).
 *
 * IFPP_FUZZ_SESSION_VERBOSE=1 prints each session's outcome. With IFPP_FUZZ_SESSION_TRANSCRIPT=<file> the target writes the recorded transcript in the input
 * format (literal bytes) to that file and exits: that is how tests/fuzz/corpus/fuzz_session/
 * transcript was made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "euicc_sim.h"
#include "session.h"
#include "store.h"
#include "testline.h"
#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SESSION_MAX_APDUS 600
#define FUZZ_SESSION_MAX_ANSWER 300 /* a reader's answer: 256 data bytes and a status word, plus slack */

typedef struct {
    uint8_t *bytes;
    size_t len;
    uint32_t command; /* what it answered (fuzz_command_kind) */
} answer;

static struct {
    bool ready;
    test_line line;
    char *dir;             /* the test line's files, removed at exit */
    char *pristine, *work; /* the store before the recorded session, and the copy each input uses */
    answer transcript[FUZZ_SESSION_MAX_APDUS];
    size_t n_transcript;
} F;

/*
 * What kind of command an APDU is, for matching it to the transcript: INS, and for STORE DATA the
 * block number and, on the first block, the ES10 request's tag.
 */
static uint32_t fuzz_command_kind(const uint8_t *cmd, size_t n)
{
    if (n < 4)
        return 0;
    uint32_t k = (uint32_t)cmd[1] << 24 | (uint32_t)cmd[3] << 16;
    if (cmd[1] == 0xE2 && cmd[3] == 0 && n >= 7)
        k |= (uint32_t)cmd[5] << 8 | cmd[6];
    return k;
}

/* ---- recording the real card ---- */

typedef struct {
    euicc_sim *card;
    bool drop_ack; /* the acknowledgement ('BF30') never reaches the card: it keeps the PIR */
} recorder;

static ifpp_err rec_reset(void *ctx, uint8_t *atr, size_t cap, size_t *atr_len)
{
    return euicc_sim_reset(((recorder *)ctx)->card, atr, cap, atr_len);
}

static ifpp_err rec_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    recorder *r = ctx;
    ifpp_err e;
    if (r->drop_ack && n > 6 && cmd[1] == 0xE2 && cmd[5] == 0xBF && cmd[6] == 0x30) {
        static const uint8_t lost[] = {0x6F, 0x00}; /* what the station saw instead */
        memcpy(resp, lost, sizeof lost);
        *rn = sizeof lost;
        e = IFPP_OK;
    } else {
        e = euicc_sim_transmit(r->card, cmd, n, resp, cap, rn);
    }
    if (e == IFPP_OK && F.n_transcript < FUZZ_SESSION_MAX_APDUS) {
        answer *a = &F.transcript[F.n_transcript++];
        a->bytes = malloc(*rn);
        if (!a->bytes)
            abort();
        memcpy(a->bytes, resp, *rn);
        a->len = *rn;
        a->command = fuzz_command_kind(cmd, n);
    }
    return e;
}

static const fpa_ops recorder_ops = {.name = "fuzz-recorder", .reset = rec_reset, .transmit = rec_transmit};

/* Copies a store file (to's WAL and shared-memory files go first: the copy is the whole database). */
static int copy_file(const char *from, const char *to)
{
    char side[4096];
    snprintf(side, sizeof side, "%s-wal", to);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", to);
    unlink(side);
    size_t n;
    uint8_t *b = tu_read_file(from, &n);
    int rc = b ? tu_write_file(to, b, n) : -1;
    free(b);
    return rc;
}

/* Runs provisioning (acknowledgement lost) and recovery on the software eUICC, recording its answers. */
static void record_session(void)
{
    recorder r = {.drop_ack = true};
    store *s;
    session_result res;
    size_t resolved;
    char why[256] = "";
    if (euicc_sim_open(F.line.card[0], &r.card) != IFPP_OK || store_open(F.line.db, &s, why, sizeof why) != IFPP_OK)
        abort();
    fpa_slot slot = {.ops = &recorder_ops, .ctx = &r};
    session_ctx c = {.st = s, .slot = &slot, .slot_name = "fuzz-1", .dm_fpa_key = F.line.dm_fpa_key,
                     .dm_fpa_cert = F.line.dm_fpa};
    if (session_provision(&c, "DUT-FUZZ", NULL, &res) != IFPP_OK || !res.installed) {
        fprintf(stderr, "fuzz_session: recording: %s\n", res.message);
        abort();
    }
    r.drop_ack = false;
    if (session_recover(&c, &resolved, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "fuzz_session: recording recovery: %s\n", why);
        abort();
    }
    euicc_sim_close(r.card);
    store_close(s);
}

static void write_transcript(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    for (size_t i = 0; i < F.n_transcript; i++) {
        uint8_t len[2] = {(uint8_t)(F.transcript[i].len >> 8), (uint8_t)F.transcript[i].len};
        fwrite(len, 1, 2, f);
        fwrite(F.transcript[i].bytes, 1, F.transcript[i].len, f);
    }
    if (fclose(f) != 0)
        abort();
}

static void remove_line(void)
{
    if (F.dir)
        tu_rmrf(F.dir);
}

static void fuzz_setup(void)
{
    char why[512] = "";
    test_line_opts o = {.n_cards = 1, .n_otks = {2}, .profile_size = 1024, .import_vault = true};
    /* the store syncs every transaction: a RAM file system keeps each input cheap where there is one */
    struct stat st;
    if (!getenv("TMPDIR") && stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode))
        setenv("TMPDIR", "/dev/shm", 0);
    char *dir = tu_mkdtemp("ifpp-fuzz-session");
    if (!dir || test_line_make(&F.line, dir, &o, why, sizeof why) != 0) {
        fprintf(stderr, "fuzz_session: setup: %s\n", why);
        abort();
    }
    F.pristine = tu_path(dir, "pristine.db");
    F.work = tu_path(dir, "work.db");
    F.dir = dir;
    atexit(remove_line);
    if (copy_file(F.line.db, F.pristine) != 0)
        abort();
    record_session();
    const char *out = getenv("IFPP_FUZZ_SESSION_TRANSCRIPT");
    if (out && *out) {
        write_transcript(out);
        fprintf(stderr, "fuzz_session: %zu answers written to %s\n", F.n_transcript, out);
        _exit(0); /* libFuzzer reports exit() as a finding */
    }
    F.ready = true;
}

/* ---- the hostile card ---- */

typedef struct {
    const uint8_t *data;
    size_t size, off;
    size_t apdus;
    size_t cursor; /* where the search for the real card's next answer starts */
} hostile;

static ifpp_err hostile_reset(void *ctx, uint8_t *atr, size_t cap, size_t *atr_len)
{
    static const uint8_t a[] = {0x3B, 0x80, 0x80, 0x01, 0x01};
    (void)ctx;
    if (cap < sizeof a)
        return IFPP_E_APDU_TOO_LONG;
    memcpy(atr, a, sizeof a);
    *atr_len = sizeof a;
    return IFPP_OK;
}

static ifpp_err hostile_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    hostile *h = ctx;
    if (++h->apdus > FUZZ_SESSION_MAX_APDUS)
        return IFPP_E_TIMEOUT;
    if (h->size - h->off < 2)
        return IFPP_E_NO_CARD;
    size_t len = (size_t)h->data[h->off] << 8 | h->data[h->off + 1];
    h->off += 2;
    const uint8_t *src;
    if (len == 0xFFFF) {
        uint32_t kind = fuzz_command_kind(cmd, n);
        size_t at = h->cursor;
        while (at < F.n_transcript && F.transcript[at].command != kind)
            at++;
        if (at == F.n_transcript)
            return IFPP_E_NO_CARD;
        h->cursor = at + 1;
        src = F.transcript[at].bytes;
        len = F.transcript[at].len;
    } else {
        if (len > h->size - h->off)
            len = h->size - h->off;
        src = h->data + h->off;
        h->off += len;
    }
    if (len > cap || len > FUZZ_SESSION_MAX_ANSWER)
        return IFPP_E_APDU_TOO_LONG; /* what a reader says of an answer larger than its buffer */
    memcpy(resp, src, len);
    *rn = len;
    return IFPP_OK;
}

static const fpa_ops hostile_ops = {.name = "fuzz-hostile", .reset = hostile_reset, .transmit = hostile_transmit};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!F.ready)
        fuzz_setup();
    store *s;
    char why[256] = "";
    if (copy_file(F.pristine, F.work) != 0 || store_open(F.work, &s, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "fuzz_session: store: %s\n", why);
        abort();
    }
    hostile h = {.data = data, .size = size};
    fpa_slot slot = {.ops = &hostile_ops, .ctx = &h};
    session_ctx c = {.st = s, .slot = &slot, .slot_name = "fuzz-1", .dm_fpa_key = F.line.dm_fpa_key,
                     .dm_fpa_cert = F.line.dm_fpa, .delete_keys_when_done = size > 0 && (data[size - 1] & 1)};
    session_result r;
    size_t resolved;
    (void)session_provision(&c, "DUT-FUZZ", NULL, &r);
    ifpp_err e = session_recover(&c, &resolved, why, sizeof why);
    if (getenv("IFPP_FUZZ_SESSION_VERBOSE")) /* to see how far an input gets */
        fprintf(stderr, "provision: %s (%s)\nrecover: %s, %zu resolved%s%s\n", r.message, err_name(r.err), err_name(e),
                resolved, why[0] ? ": " : "", why);

    /* nothing is left reserved, and the audit chain holds */
    size_t reserved = 1;
    if (store_count_bpps(s, BPP_RESERVED, &reserved) != IFPP_OK || reserved != 0 ||
        store_audit_verify(s, NULL, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "fuzz_session: store after the session: %zu reserved; %s\n", reserved, why);
        abort();
    }
    store_close(s);
    return 0;
}
