/*
 * bench_pcsc.c -- how much time does the station add on top of the PC/SC transport itself?
 *
 * One DUT is provisioned through the station's own session (session_provision over the "pcsc"
 * backend, to the software eUICC behind vsmartcard's vpcd in a real pcscd: tests/pcscd_harness.h),
 * with the slot wrapped in a recording FPA that keeps every command APDU and reset. Then a copy
 * of the same card state goes back into the reader and the recorded APDUs are replayed raw
 * through PC/SC -- SCardReconnect for each reset, SCardTransmit for each APDU, nothing else --
 * as the fastest any client could move the same bytes. The card answers a fixed challenge
 * (ifpp-vpcd-card --fixed-challenge), so the recorded AuthoriseFpaServices signature verifies
 * again and the replay installs the same BPP the same way. The ratio of the two times is the
 * station's overhead (ES10f framing, durable store writes, PIR verification); the goal is <= 1.10.
 * The recorder also times what it forwards, so the station's own work is shown per session step.
 * Each round restores the card (all ROUNDS One-time Keys, no profile) before each of its two runs,
 * and the station takes the next of the vault's ROUNDS BPPs.
 *
 * --card-delay-ms N makes the card take N ms per APDU (ifpp-vpcd-card --delay-ms), as a real eUICC
 * takes time to verify and install; without it the card answers at once, the station's worst case.
 * --ext on|off|auto is the pcsc slot's ext= option (extended-length APDUs or short ones only).
 * --backend virtual does the same with the software eUICC in process (the virtual backend's card,
 * here opened by the bench itself to fix its challenge), the replay calling the card directly.
 * With IFPP_SIM_NO_SYNC set the card saves its state without syncs (tests/sim/euicc_sim.h): the
 * station's figures without the test rig's own syncs. Prints BENCH lines (bench_util.h).
 *
 * A benchmark, not a test: it prints figures and asserts nothing. Exit 0 when it ran (and when
 * pcscd or vpcd is not installed: "skipped"), 1 when it could not run at all.
 */
#include <PCSC/winscard.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "apdu.h"
#include "bench_util.h"
#include "euicc_sim.h"
#include "fsutil.h"
#include "pcscd_harness.h"
#include "session.h"
#include "testline.h"
#include "testutil.h"

#define ROUNDS 5
#define PROFILE_SIZE 32768
#define VPCD_DRIVER "/usr/lib/pcsc/drivers/serial/libifdvpcd.so" /* the path the harness configures */
#define CHALLENGE_HEX "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define RESP_CAP (65536 + 2)

/* One recorded event: a reset (cmd NULL) or a command APDU and the status word the card gave it. */
typedef struct {
    uint8_t *cmd;
    size_t n;
    uint16_t sw;
} rec_event;

/* The recording FPA's context: the real slot underneath, and what went through it. */
typedef struct {
    fpa_slot inner; /* opened and closed by station_session() */
    rec_event *ev;
    size_t n_ev, cap_ev;
    size_t apdus, bytes_out, bytes_in, resets;
    double io_ms; /* time spent inside the pcsc slot: the rest of a session is the station's own work */
    /* the station's own work per session step, from the progress reports */
    int step;
    double step_t0, step_io0, own_by_step[SESSION_STEP__COUNT];
} recorder;

static pcscd_harness H;
static char card_delay[16]; /* --card-delay-ms N: ms the card takes per APDU ("" = none) */
static const char *ext_mode = "auto"; /* --ext: the pcsc slot's ext= option */
static bool virtual_backend;          /* --backend virtual: the software eUICC in process */
static const uint8_t challenge[16] = {0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78,
                                      0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0}; /* CHALLENGE_HEX */
static volatile sig_atomic_t harness_up; /* the signal handler stops what the harness started */
static char sig_dir[512];                /* and removes the line's directory */

/* Monotonic milliseconds. */
static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Appends an event (a copy of cmd; NULL: a reset); -1 when out of memory. */
static int rec_push(recorder *r, const uint8_t *cmd, size_t n, uint16_t sw)
{
    if (r->n_ev == r->cap_ev) {
        size_t cap = r->cap_ev ? 2 * r->cap_ev : 256;
        rec_event *ev = realloc(r->ev, cap * sizeof *ev);
        if (!ev)
            return -1;
        r->ev = ev;
        r->cap_ev = cap;
    }
    rec_event *e = &r->ev[r->n_ev];
    e->cmd = NULL;
    e->n = n;
    e->sw = sw;
    if (cmd && !(e->cmd = malloc(n ? n : 1)))
        return -1;
    if (cmd)
        memcpy(e->cmd, cmd, n);
    r->n_ev++;
    return 0;
}

/* Frees what the recorder holds (the slot underneath is closed elsewhere). */
static void rec_free(recorder *r)
{
    for (size_t i = 0; i < r->n_ev; i++)
        free(r->ev[i].cmd);
    free(r->ev);
    memset(r, 0, sizeof *r);
}

/* Never opened by name: the bench builds the wrapping slot around an open "pcsc" one. */
static ifpp_err rec_open(const char *target, void **ctx, char *why, size_t why_len)
{
    err_why(why, why_len, "the recording FPA wraps an open slot; it opens nothing itself");
    return IFPP_E_ARG;
}

/* The inner slot belongs to the bench, which closes it. */
static void rec_close(void *ctx) {}

/* Forwards the reset to the pcsc slot, timed, and records it. */
static ifpp_err rec_reset(void *ctx, uint8_t *atr, size_t cap, size_t *atr_len)
{
    recorder *r = ctx;
    double t0 = now_ms();
    ifpp_err e = fpa_reset(&r->inner, atr, cap, atr_len);
    r->io_ms += now_ms() - t0;
    if (e == IFPP_OK) {
        r->resets++;
        if (rec_push(r, NULL, 0, 0))
            return IFPP_E_NOMEM;
    }
    return e;
}

/* Forwards the APDU to the pcsc slot, timed, and records it with the status word it got. */
static ifpp_err rec_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *resp_len)
{
    recorder *r = ctx;
    double t0 = now_ms();
    ifpp_err e = fpa_transmit(&r->inner, cmd, n, resp, cap, resp_len);
    r->io_ms += now_ms() - t0;
    if (e == IFPP_OK) {
        uint16_t sw = *resp_len >= 2 ? (uint16_t)(resp[*resp_len - 2] << 8 | resp[*resp_len - 1]) : 0;
        r->apdus++;
        r->bytes_out += n;
        r->bytes_in += *resp_len;
        if (rec_push(r, cmd, n, sw))
            return IFPP_E_NOMEM;
    }
    return e;
}

/* Forwarded, so the session frames its APDUs exactly as it would on the bare pcsc slot. */
static size_t rec_max_command_data(void *ctx)
{
    recorder *r = ctx;
    return fpa_max_command_data(&r->inner);
}

static const char *rec_last_error(void *ctx)
{
    recorder *r = ctx;
    return fpa_last_error(&r->inner);
}

static const char *rec_last_error_none(void *ctx)
{
    return "";
}

/* No load_bpp: the session must send the BPP's commands one by one, through transmit, to be recorded. */
static const fpa_ops rec_ops = {
    .name = "recording",
    .open = rec_open,
    .close = rec_close,
    .reset = rec_reset,
    .transmit = rec_transmit,
    .max_command_data = rec_max_command_data,
    .last_error = rec_last_error,
};

/* Session progress: charges the time since the last step, less the slot's share, to that step. */
static void rec_progress(void *arg, session_step s, const char *detail)
{
    recorder *r = arg;
    double t = now_ms();
    if (r->step >= 0 && r->step < SESSION_STEP__COUNT)
        r->own_by_step[r->step] += (t - r->step_t0) - (r->io_ms - r->step_io0);
    r->step = (int)s;
    r->step_t0 = t;
    r->step_io0 = r->io_ms;
}

/* What one replay saw. */
typedef struct {
    double ms;
    size_t bad_sw;      /* neither 9000 nor 61xx */
    size_t sw_mismatch; /* differs from what the card answered the station */
    DWORD protocol;
    uint8_t atr[MAX_ATR_SIZE];
    DWORD atr_len;
} replay_result;

/* Replays the recording raw through PC/SC; the clock runs from the first event to the last. */
static int replay(const recorder *r, replay_result *out, char *why, size_t why_len)
{
    SCARDCONTEXT ctx = 0;
    SCARDHANDLE card = 0;
    char *names = NULL, reader[256] = "";
    DWORD n = SCARD_AUTOALLOCATE;
    static uint8_t resp[RESP_CAP];
    memset(out, 0, sizeof *out);
    LONG rc = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
    if (rc == SCARD_S_SUCCESS && (rc = SCardListReaders(ctx, NULL, (LPSTR)&names, &n)) == SCARD_S_SUCCESS) {
        for (const char *p = names; p && *p; p += strlen(p) + 1)
            if (strstr(p, PCSCD_HARNESS_READER)) {
                snprintf(reader, sizeof reader, "%s", p);
                break;
            }
        SCardFreeMemory(ctx, names);
    }
    if (rc == SCARD_S_SUCCESS && !reader[0])
        rc = SCARD_E_UNKNOWN_READER;
    if (rc == SCARD_S_SUCCESS)
        rc = SCardConnect(ctx, reader, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &card,
                          &out->protocol);
    if (rc != SCARD_S_SUCCESS) {
        snprintf(why, why_len, "replay: cannot reach the card: %s", pcsc_stringify_error(rc));
        if (ctx)
            SCardReleaseContext(ctx);
        return -1;
    }
    double t0 = now_ms();
    for (size_t i = 0; i < r->n_ev && rc == SCARD_S_SUCCESS; i++) {
        const rec_event *e = &r->ev[i];
        if (!e->cmd) {
            /* as the pcsc backend's reset: SCardReconnect resetting the card, then the ATR from SCardStatus */
            char name[256];
            DWORD name_len = sizeof name, state;
            out->atr_len = sizeof out->atr;
            rc = SCardReconnect(card, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, SCARD_RESET_CARD,
                                &out->protocol);
            if (rc == SCARD_S_SUCCESS)
                rc = SCardStatus(card, name, &name_len, &state, &out->protocol, out->atr, &out->atr_len);
            continue;
        }
        DWORD rl = sizeof resp;
        const SCARD_IO_REQUEST *pci = out->protocol == SCARD_PROTOCOL_T1 ? SCARD_PCI_T1 : SCARD_PCI_T0;
        rc = SCardTransmit(card, pci, e->cmd, (DWORD)e->n, NULL, resp, &rl);
        if (rc != SCARD_S_SUCCESS)
            break;
        uint16_t sw = rl >= 2 ? (uint16_t)(resp[rl - 2] << 8 | resp[rl - 1]) : 0;
        if (sw != 0x9000 && (sw >> 8) != 0x61)
            out->bad_sw++;
        if (sw != e->sw)
            out->sw_mismatch++;
    }
    out->ms = now_ms() - t0;
    if (rc != SCARD_S_SUCCESS)
        snprintf(why, why_len, "replay: %s", pcsc_stringify_error(rc));
    SCardDisconnect(card, SCARD_LEAVE_CARD);
    SCardReleaseContext(ctx);
    return rc == SCARD_S_SUCCESS ? 0 : -1;
}

/* ---- --backend virtual: the software eUICC in process, its challenge fixed so a replay verifies again ---- */

typedef struct {
    euicc_sim *card;
    size_t max_nc;
} sim_slot;

static ifpp_err sim_reset(void *ctx, uint8_t *atr, size_t cap, size_t *atr_len)
{
    return euicc_sim_reset(((sim_slot *)ctx)->card, atr, cap, atr_len);
}

static ifpp_err sim_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *resp_len)
{
    return euicc_sim_transmit(((sim_slot *)ctx)->card, cmd, n, resp, cap, resp_len);
}

static size_t sim_max_command_data(void *ctx)
{
    return ((sim_slot *)ctx)->max_nc;
}

static void sim_close(void *ctx)
{
    sim_slot *v = ctx;
    euicc_sim_close(v->card);
    free(v);
}

static const fpa_ops sim_ops = {
    .name = "virtual (bench)", .open = rec_open, .close = sim_close, .reset = sim_reset, .transmit = sim_transmit,
    .max_command_data = sim_max_command_data, .last_error = rec_last_error_none,
};

/* Opens the card file as a slot: extended-length APDUs unless --ext off, as the virtual backend does. */
static ifpp_err sim_open_slot(const char *path, fpa_slot *out, char *why, size_t why_len)
{
    sim_slot *v = calloc(1, sizeof *v);
    ifpp_err e = v ? euicc_sim_open(path, &v->card) : IFPP_E_NOMEM;
    if (e != IFPP_OK) {
        free(v);
        snprintf(why, why_len, "cannot open the card %s: %s", path, err_str(e));
        return e;
    }
    euicc_sim_set_fixed_challenge(v->card, challenge);
    v->max_nc = strcmp(ext_mode, "off") ? 4096 : APDU_SHORT_MAX_LC;
    out->ops = &sim_ops;
    out->ctx = v;
    return IFPP_OK;
}

/* Replays the recording straight into the card: the floor of any station on the virtual backend. */
static int replay_virtual(const recorder *r, const char *card_path, replay_result *out, char *why, size_t why_len)
{
    fpa_slot slot;
    static uint8_t resp[RESP_CAP];
    memset(out, 0, sizeof *out);
    if (sim_open_slot(card_path, &slot, why, why_len) != IFPP_OK)
        return -1;
    euicc_sim *card = ((sim_slot *)slot.ctx)->card;
    ifpp_err e = IFPP_OK;
    double t0 = now_ms();
    for (size_t i = 0; i < r->n_ev && e == IFPP_OK; i++) {
        const rec_event *ev = &r->ev[i];
        size_t rl = 0, atr_len = 0;
        if (!ev->cmd) {
            e = euicc_sim_reset(card, out->atr, sizeof out->atr, &atr_len);
            out->atr_len = (DWORD)atr_len;
            continue;
        }
        if ((e = euicc_sim_transmit(card, ev->cmd, ev->n, resp, sizeof resp, &rl)) != IFPP_OK)
            break;
        uint16_t sw = rl >= 2 ? (uint16_t)(resp[rl - 2] << 8 | resp[rl - 1]) : 0;
        if (sw != 0x9000 && (sw >> 8) != 0x61)
            out->bad_sw++;
        if (sw != ev->sw)
            out->sw_mismatch++;
    }
    out->ms = now_ms() - t0;
    out->protocol = SCARD_PROTOCOL_T1;
    fpa_close(&slot);
    if (e != IFPP_OK)
        snprintf(why, why_len, "replay: %s", err_str(e));
    return e == IFPP_OK ? 0 : -1;
}

/* The test line (tests/testline.h), and the card file each round's copy is taken from. */
typedef struct {
    test_line t;
    char *dir, *db, *card_orig, *card;
    cert *dm_fpa;
    crypto_key *dm_fpa_key;
} line;

/* PKI, one card with ROUNDS One-time Keys (one BPP each), the store with its vault imported. */
static int make_line(line *L, char *why, size_t why_len)
{
    test_line_opts o = {.n_cards = 1, .n_otks = {ROUNDS}, .profile_size = PROFILE_SIZE, .import_vault = true,
                        .days = 2};
    if (!(L->dir = tu_mkdtemp("ifpp-bench-pcsc")) || !(L->card = tu_path(L->dir, "card"))) {
        snprintf(why, why_len, "no temporary directory");
        return -1;
    }
    if (test_line_make(&L->t, L->dir, &o, why, why_len) != 0)
        return -1;
    /* each round restores the card with all its keys from the file the test EUM wrote */
    L->db = L->t.db;
    L->card_orig = L->t.card[0];
    L->dm_fpa = L->t.dm_fpa;
    L->dm_fpa_key = L->t.dm_fpa_key;
    if (L->t.bpps < ROUNDS) {
        snprintf(why, why_len, "the vault holds %zu BPPs, %d needed", L->t.bpps, ROUNDS);
        return -1;
    }
    return 0;
}

/* Frees the line; its directory goes too unless kept (pcscd's and the card's logs, after a failure). */
static void free_line(line *L, bool keep)
{
    if (L->dir && !keep)
        tu_rmrf(L->dir);
    else if (L->dir)
        fprintf(stderr, "bench_pcsc: kept %s for its logs\n", L->dir);
    free(L->dir);
    free(L->card);
    test_line_free(&L->t);
}

/* Puts a fresh copy of the original card (all its One-time Keys, no profile) into the reader. */
static int insert_fresh_card(const line *L, char *why, size_t why_len)
{
    const char *args[] = {"--fixed-challenge", CHALLENGE_HEX, NULL, NULL, NULL};
    if (card_delay[0]) { /* a card that takes time of its own, as a real eUICC does */
        args[2] = "--delay-ms";
        args[3] = card_delay;
    }
    uint8_t *state;
    size_t n;
    if (fs_read_all(L->card_orig, 1u << 24, &state, &n) != IFPP_OK) {
        snprintf(why, why_len, "cannot read %s", L->card_orig);
        return -1;
    }
    ifpp_err e = fs_write_atomic(L->card, state, n, 0600);
    free(state);
    if (e == IFPP_OK && virtual_backend)
        return 0; /* the bench opens the card itself */
    if (e != IFPP_OK || pcscd_harness_insert(&H, L->card, args) != 0) {
        snprintf(why, why_len, "the card did not come up in the reader (see vpcd-card.log, pcscd.log)");
        return -1;
    }
    return 0;
}

/* One station session through the recording FPA on the open store s; its time in *ms. */
static int station_session(const line *L, store *s, recorder *rec, double *ms, char *why, size_t why_len)
{
    fpa_slot outer = {.ops = &rec_ops, .ctx = rec};
    session_result r;
    memset(&r, 0, sizeof r);
    char target[64];
    snprintf(target, sizeof target, PCSCD_HARNESS_READER ",ext=%s", ext_mode);
    ifpp_err e = virtual_backend ? sim_open_slot(L->card, &rec->inner, why, why_len)
                                 : fpa_open("pcsc", target, &rec->inner, why, why_len);
    if (e != IFPP_OK)
        return -1;
    session_ctx c = {.st = s, .slot = &outer, .slot_name = virtual_backend ? "virtual" : "pcsc:" PCSCD_HARNESS_READER,
                     .dm_fpa_key = L->dm_fpa_key, .dm_fpa_cert = L->dm_fpa,
                     .progress = rec_progress, .progress_arg = rec,
                     .additional_profile = true /* the same eUICC, restored, round after round */};
    rec->step = -1;
    double t0 = now_ms();
    e = session_provision(&c, "DUT-BENCH", NULL, &r);
    *ms = now_ms() - t0;
    rec_progress(rec, SESSION_STEP__COUNT, NULL); /* closes the last step */
    fpa_close(&rec->inner);
    if (e != IFPP_OK || !r.installed) {
        snprintf(why, why_len, "station session: %s (%s)", r.message, err_name(e));
        return -1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v (sorted in place). */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* An executable named name in PATH (the harness starts pcscd through execvp). */
static bool in_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[1024];
    for (const char *p = path && *path ? path : "/usr/sbin:/usr/bin:/sbin:/bin"; p && *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (len && len + strlen(name) + 2 <= sizeof buf) {
            snprintf(buf, sizeof buf, "%.*s/%s", (int)len, p, name);
            if (access(buf, X_OK) == 0)
                return true;
        }
        p = colon ? colon + 1 : NULL;
    }
    return false;
}

/* What the rounds measured. */
typedef struct {
    size_t rounds;
    double station_ms[ROUNDS], replay_ms[ROUNDS], io_ms[ROUNDS], own_ms[ROUNDS];
    double own_by_step[SESSION_STEP__COUNT]; /* summed over the rounds */
    size_t bad_sw, sw_mismatch;
    recorder first;   /* the first round's recording: APDU and byte counts */
    replay_result last; /* the last replay: ATR and protocol */
} figures;

/* The smallest and the largest of n > 0 values. */
static void min_max(const double *v, size_t n, double *lo, double *hi)
{
    *lo = *hi = v[0];
    for (size_t i = 1; i < n; i++) {
        *lo = v[i] < *lo ? v[i] : *lo;
        *hi = v[i] > *hi ? v[i] : *hi;
    }
}

/* Prints the figures: counts, medians, the ratio, the station's own work by step, the replay's sanity. */
static void report(figures *f)
{
    double st_lo, st_hi, rp_lo, rp_hi;
    min_max(f->station_ms, f->rounds, &st_lo, &st_hi);
    min_max(f->replay_ms, f->rounds, &rp_lo, &rp_hi);
    double st = median(f->station_ms, f->rounds), rp = median(f->replay_ms, f->rounds);
    double io = median(f->io_ms, f->rounds), own = median(f->own_ms, f->rounds);
    char atr[2 * MAX_ATR_SIZE + 1] = "";
    for (DWORD i = 0; i < f->last.atr_len; i++)
        snprintf(atr + 2 * i, sizeof atr - 2 * i, "%02X", f->last.atr[i]);
    bool nosync = getenv("IFPP_SIM_NO_SYNC") != NULL;
    printf("station session vs raw %s replay, %d KiB profile, %zu rounds, ext=%s%s (bench/bench_pcsc.c)\n",
           virtual_backend ? "virtual" : "PC/SC", PROFILE_SIZE / 1024, f->rounds, ext_mode,
           nosync ? ", the card's own syncs off" : "");
    if (virtual_backend)
        printf("  card: software eUICC in process; store held open across DUTs\n");
    else
        printf("  card: software eUICC behind vpcd in pcscd, ATR %s, protocol T=%d, %s ms of its own per APDU;"
               " store held open across DUTs\n",
               atr, f->last.protocol == SCARD_PROTOCOL_T1 ? 1 : 0, card_delay[0] ? card_delay : "no");
    printf("  per session: %zu command APDUs, %zu resets, %zu bytes sent, %zu bytes received\n", f->first.apdus,
           f->first.resets, f->first.bytes_out, f->first.bytes_in);
    printf("  measured: session_provision      median %8.2f ms (min %.2f, max %.2f)\n", st, st_lo, st_hi);
    printf("  baseline: raw replay, same APDUs median %8.2f ms (min %.2f, max %.2f)\n", rp, rp_lo, rp_hi);
    printf("  ratio station/replay %.3f (goal <= 1.10); replay round trip %.1f us per APDU\n", st / rp,
           f->first.apdus ? rp * 1e3 / (double)f->first.apdus : 0.0);
    printf("  of a session (medians): %.2f ms inside the pcsc slot, %.2f ms the station's own work\n", io, own);
    /* where the overhead goes: the steps that cost the station at least 50 us of its own */
    const char *sep = ":";
    printf("  station's own work by step (mean)");
    for (int i = 0; i < SESSION_STEP__COUNT; i++)
        if (f->own_by_step[i] / (double)f->rounds >= 0.05) {
            printf("%s %s %.2f ms", sep, session_step_name((session_step)i), f->own_by_step[i] / (double)f->rounds);
            sep = ",";
        }
    printf("\n");
    if (f->bad_sw || f->sw_mismatch)
        printf("  replay NOT comparable: %zu responses outside 9000/61xx, %zu status words differ from the "
               "station's session\n",
               f->bad_sw, f->sw_mismatch);
    else
        printf("  replay sanity: every response 9000/61xx, every status word as in the station's session\n");
    char name[160], base[64];
    snprintf(base, sizeof base, "%s_ext_%s%s%s", virtual_backend ? "virtual" : "pcsc", ext_mode,
             nosync ? "_nosimsync" : "", card_delay[0] ? "_delay" : "");
    snprintf(name, sizeof name, "dut_station_%s", base);
    char rname[160];
    snprintf(rname, sizeof rname, "dut_raw_replay_%s", base);
    bench_line(name, st, "ms", f->bad_sw || f->sw_mismatch ? NULL : rname, rp, bench_peak_rss_kib());
    snprintf(name, sizeof name, "dut_apdus_%s", base);
    bench_line(name, (double)f->first.apdus, "APDUs", NULL, 0, -1);
    snprintf(name, sizeof name, "dut_station_own_work_%s", base);
    bench_line(name, own, "ms", NULL, 0, -1);
}

/*
 * Ctrl-C or a kill must not leave pcscd, the card or the temporary line behind. Only
 * async-signal-safe calls: kill and waitpid by PID (the harness's stop), fork and execve of rm.
 */
static void on_signal(int sig)
{
    if (harness_up)
        pcscd_harness_stop(&H); // NOLINT(bugprone-signal-handler): kill and waitpid by PID only
    if (sig_dir[0]) {
        pid_t pid = fork();
        if (pid == 0) {
            char *const argv[] = {"rm", "-rf", sig_dir, NULL}, *const envp[] = {NULL};
            execve("/bin/rm", argv, envp);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    _exit(128 + sig);
}

/* The rounds (station session, then the raw replay, each on a fresh copy of the card) and the figures. */
static int run_rounds(void)
{
    char why[512] = "";
    line L;
    memset(&L, 0, sizeof L);
    if (make_line(&L, why, sizeof why)) {
        fprintf(stderr, "bench_pcsc: setup: %s\n", why);
        free_line(&L, false);
        return 1;
    }
    char hdir[600];
    snprintf(hdir, sizeof hdir, "%s/pcscd", L.dir);
    snprintf(sig_dir, sizeof sig_dir, "%s", L.dir);
    harness_up = !virtual_backend; /* before the start: pcscd runs from its first moments */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (!virtual_backend && pcscd_harness_start(&H, hdir) != 0) {
        fprintf(stderr, "bench_pcsc: could not start pcscd with vpcd (logs under %s)\n", hdir);
        if (harness_up)
            pcscd_harness_stop(&H);
        free_line(&L, true);
        return 1;
    }

    /*
     * The store stays open across DUTs, as the station daemon holds it: opening a SQLite file
     * (schema load, a new WAL and its header sync) is once per process, not once per DUT.
     */
    store *st = NULL;
    if (store_open(L.db, &st, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "bench_pcsc: store: %s\n", why);
        if (harness_up)
            pcscd_harness_stop(&H);
        free_line(&L, true);
        return 1;
    }
    figures f;
    memset(&f, 0, sizeof f);
    int rc = 0;
    for (int round = 0; round < ROUNDS; round++) {
        recorder rec;
        memset(&rec, 0, sizeof rec);
        why[0] = '\0';
        double st_ms;
        replay_result rr;
        if (insert_fresh_card(&L, why, sizeof why) || station_session(&L, st, &rec, &st_ms, why, sizeof why) ||
            (!virtual_backend && pcscd_harness_pull(&H)) || insert_fresh_card(&L, why, sizeof why) ||
            (virtual_backend ? replay_virtual(&rec, L.card, &rr, why, sizeof why) : replay(&rec, &rr, why, sizeof why)) ||
            (!virtual_backend && pcscd_harness_pull(&H))) {
            fprintf(stderr, "bench_pcsc: round %d: %s\n", round + 1, why[0] ? why : "the card did not leave the reader");
            rec_free(&rec);
            rc = 1;
            break;
        }
        f.station_ms[f.rounds] = st_ms;
        f.io_ms[f.rounds] = rec.io_ms;
        f.own_ms[f.rounds] = st_ms - rec.io_ms;
        f.replay_ms[f.rounds++] = rr.ms;
        for (int i = 0; i < SESSION_STEP__COUNT; i++)
            f.own_by_step[i] += rec.own_by_step[i];
        f.bad_sw += rr.bad_sw;
        f.sw_mismatch += rr.sw_mismatch;
        f.last = rr;
        if (round == 0)
            f.first = rec; /* its counts describe every round: same card, same profile size */
        else
            rec_free(&rec);
    }
    store_close(st);
    if (harness_up)
        pcscd_harness_stop(&H);
    harness_up = 0;
    if (f.rounds > 0)
        report(&f);
    rec_free(&f.first);
    free_line(&L, rc != 0);
    return rc;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && !strcmp(argv[i], "--card-delay-ms") && strspn(v, "0123456789") == strlen(v) && strlen(v) > 0 &&
            strlen(v) < 5) {
            snprintf(card_delay, sizeof card_delay, "%s", v);
        } else if (v && !strcmp(argv[i], "--ext") && (!strcmp(v, "on") || !strcmp(v, "off") || !strcmp(v, "auto"))) {
            ext_mode = v;
        } else if (v && !strcmp(argv[i], "--backend") && (!strcmp(v, "pcsc") || !strcmp(v, "virtual"))) {
            virtual_backend = !strcmp(v, "virtual");
        } else {
            fprintf(stderr, "usage: bench_pcsc [--backend pcsc|virtual] [--ext auto|on|off] [--card-delay-ms N]\n");
            return 2;
        }
    }
    if (virtual_backend)
        return run_rounds();
    if (!in_path("pcscd") && access("/usr/sbin/pcscd", X_OK) != 0) {
        printf("bench_pcsc: skipped: pcscd is not installed (package pcscd)\n");
        return 0;
    }
    if (access(VPCD_DRIVER, R_OK) != 0) {
        printf("bench_pcsc: skipped: vsmartcard's vpcd driver is not installed (package vsmartcard-vpcd)\n");
        return 0;
    }
#ifdef IFPP_VPCD_CARD_DEFAULT
    setenv("IFPP_VPCD_CARD", IFPP_VPCD_CARD_DEFAULT, 0); /* run by hand: the card built beside this bench */
#endif
    const char *card_bin = getenv("IFPP_VPCD_CARD");
    if (!card_bin || access(card_bin, X_OK) != 0) {
        fprintf(stderr, "bench_pcsc: the card process is not there (IFPP_VPCD_CARD=%s)\n", card_bin ? card_bin : "");
        return 1;
    }
    if (!in_path("pcscd")) /* /usr/sbin is not in every user's PATH */
        setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);

    return run_rounds();
}
