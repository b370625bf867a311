/*
 * bench_agentd.c -- the daemon's slots (slots.c: a thread per slot, each with its own store connection, their
 * moves committed through the store's group committer) provisioning DUTs: DUTs per second for 1, 2, 4, 8, 16
 * and 32 slots, with cards that take 1 ms per APDU (a wrapper backend that sleeps before each answer, as a
 * UART or USB fixture does) and cards that answer at once, and the ratio to linear scaling
 * (rate(n) / (n * rate(1))). Goal (issue 13): at 1 ms per APDU, 32 slots reach 0.9 of linear.
 *
 * Three kinds of card, because the software eUICC is a test-rig cost that shares the station's two cores
 * and disk (issue 16 item 4):
 *   sim     the software eUICC (tests/sim/euicc_sim.c): its own key agreement, BPP decryption and
 *           installation, and an fsync'd state file at each change, in this process;
 *   nosync  the same cards with their state files on tmpfs (no card fsync; the store stays on disk);
 *   replay  each DUT's session recorded once against the software eUICC (set-up, untimed), then
 *           answered from the recording (tests/sim/replay_card.h): the station runs its whole real
 *           sequence -- its signing, the PIR verified, every durable move -- against cards that cost nothing.
 * Each slot holds one eUICC with 16 One-time Keys and provisions it 1 + 15 times (additional profiles; the first
 * DUT of each slot, while its thread opens its station, is not timed); the store
 * and the cards are restored before every run, so each run does the same work. The MES socket is left out:
 * it only queues lines. CPU ms per DUT is the whole process's (station, committer, and the sim's cards where
 * they run). Prints a table and BENCH lines; asserts nothing.
 *
 *     bench_agentd [MAX-SLOTS (32) [KINDS (sim,nosync,replay)]]
 * TMPDIR chooses the store's disk; IFPP_BENCH_REPEAT=N keeps the best of N runs of each figure.
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fpa_virtual.h"
#include "replay_card.h"
#include "slots.h"
#include "testline.h"
#include "testutil.h"

#define BENCH_ROUNDS 15 /* timed DUTs per slot: with the warm-up one, the 16 profiles a software eUICC holds */
#define BENCH_MAX_SLOTS 32

static long bench_apdu_us;
static FILE *bench_err; /* the real stderr: the slots' log lines go to /dev/null while they run */

/* ---- cards that take bench_apdu_us per APDU ---- */

static const fpa_ops *replay_inner;

static void bench_delay(void)
{
    struct timespec ts = {0, bench_apdu_us * 1000};
    if (bench_apdu_us > 0)
        nanosleep(&ts, NULL);
}

static ifpp_err slow_virtual_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    bench_delay();
    return fpa_virtual_ops.transmit(ctx, cmd, n, resp, cap, rn);
}

static ifpp_err slow_replay_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    bench_delay();
    return replay_inner->transmit(ctx, cmd, n, resp, cap, rn);
}

static fpa_ops slow_virtual_ops, slow_replay_ops;

/* ---- one run ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t done, pass, failed_slot_names;
    bool free_slot[BENCH_MAX_SLOTS];
} bench_state;

static void bench_event(void *arg, const slot_event *ev)
{
    bench_state *b = arg;
    if (ev->kind != SLOT_EV_COMPLETED)
        return;
    pthread_mutex_lock(&b->mu);
    b->done++;
    b->pass += ev->verdict == STATION_PASS;
    if (ev->verdict != STATION_PASS && b->failed_slot_names++ == 0)
        fprintf(bench_err, "bench_agentd: %s: %s: %s\n", ev->slot, station_verdict_name(ev->verdict), ev->message);
    b->free_slot[strtoul(ev->slot + 1, NULL, 10)] = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double bench_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

typedef struct {
    double rate;        /* DUTs/s; < 0: the run failed */
    double cpu_ms;      /* process CPU per DUT */
    double wall_ms;     /* wall time per DUT per slot */
} bench_result;

/* Runs BENCH_ROUNDS DUTs on each of the n slots with these specs. */
static bench_result bench_run(const test_line *L, size_t n, char (*spec)[1024])
{
    char why[512] = "";
    agent_config *c = calloc(1, sizeof *c);
    bench_state b = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    slots *sl = NULL;
    bench_result res = {.rate = -1};
    if (!c)
        return res;
    config_defaults(c);
    snprintf(c->store_path, sizeof c->store_path, "%s", L->db);
    snprintf(c->pki_dir, sizeof c->pki_dir, "%s", L->pki);
    for (size_t i = 0; i < n; i++) {
        snprintf(c->slots[i].name, sizeof c->slots[i].name, "s%zu", i);
        snprintf(c->slots[i].spec, sizeof c->slots[i].spec, "%s", spec[i]);
    }
    c->n_slots = n;
    if (slots_start(c, bench_event, &b, &sl, why, sizeof why) != IFPP_OK) {
        fprintf(bench_err, "bench_agentd: %s\n", why);
        free(c);
        return res;
    }
    /* one DUT per slot first, untimed: each slot thread opens its station (keys, store) when it starts */
    size_t submitted = 0, total = n * (1 + BENCH_ROUNDS), per_slot[BENCH_MAX_SLOTS] = {0}, warm = n;
    double t0 = 0, c0 = 0;
    pthread_mutex_lock(&b.mu);
    for (size_t i = 0; i < n; i++)
        b.free_slot[i] = true;
    while (b.done < total) {
        if (warm && b.done == warm) {
            warm = 0;
            t0 = bench_now();
            c0 = bench_cpu();
        }
        for (size_t i = 0; i < n; i++) {
            if (!b.free_slot[i] || per_slot[i] == 1 + BENCH_ROUNDS || (warm && per_slot[i] == 1))
                continue;
            b.free_slot[i] = false;
            slot_job job = {.flags = STATION_ADDITIONAL_PROFILE};
            snprintf(job.id, sizeof job.id, "%zu", submitted);
            snprintf(job.serial, sizeof job.serial, "DUT-%06zu", submitted++);
            char chosen[32], name[32];
            snprintf(name, sizeof name, "s%zu", i);
            pthread_mutex_unlock(&b.mu);
            ifpp_err e = slots_submit(sl, name, &job, chosen, why, sizeof why);
            pthread_mutex_lock(&b.mu);
            if (e != IFPP_OK) {
                fprintf(bench_err, "bench_agentd: submit: %s\n", why);
                b.done = total;
                break;
            }
            per_slot[i]++;
        }
        if (b.done < total)
            pthread_cond_wait(&b.cv, &b.mu);
    }
    pthread_mutex_unlock(&b.mu);
    double dt = bench_now() - t0, cpu = bench_cpu() - c0;
    if (b.pass == total) {
        res.rate = (double)(n * BENCH_ROUNDS) / dt;
        res.cpu_ms = 1000.0 * cpu / (double)(n * BENCH_ROUNDS);
        res.wall_ms = 1000.0 * dt / BENCH_ROUNDS;
    } else {
        fprintf(bench_err, "bench_agentd: only %zu of %zu PASS\n", b.pass, total);
    }
    slots_drain(sl, 60000);
    slots_free(sl);
    free(c);
    return res;
}

/* ---- the line's files, restored before each run ---- */

static int bench_copy(const char *from, const char *to)
{
    size_t n = 0;
    uint8_t *d = tu_read_file(from, &n);
    int rc = d ? tu_write_file(to, d, n) : -1;
    free(d);
    return rc;
}

static char *bench_with(const char *path, const char *suffix)
{
    char *p = NULL;
    return asprintf(&p, "%s%s", path, suffix) < 0 ? NULL : p;
}

typedef struct {
    test_line L;
    char *dir, *shm, *tmpl_db, *tmpl_card[BENCH_MAX_SLOTS], *shm_card[BENCH_MAX_SLOTS], *log[BENCH_MAX_SLOTS];
    size_t n;
    bool recorded;
} bench_line;

/* The store and every card as test_line_make left them (the sim's cards moved on; the store's BPPs were used). */
static int bench_restore(bench_line *B)
{
    char *wal = bench_with(B->L.db, "-wal"), *shm = bench_with(B->L.db, "-shm");
    int rc = wal && shm ? 0 : -1;
    if (rc == 0) {
        unlink(wal);
        unlink(shm);
        rc = bench_copy(B->tmpl_db, B->L.db);
    }
    for (size_t i = 0; i < B->n && rc == 0; i++) {
        rc = bench_copy(B->tmpl_card[i], B->L.card[i]);
        if (rc == 0 && B->shm)
            rc = bench_copy(B->tmpl_card[i], B->shm_card[i]);
    }
    free(wal);
    free(shm);
    return rc;
}

static int bench_line_make(bench_line *B, size_t n)
{
    char why[512] = "";
    memset(B, 0, sizeof *B);
    B->n = n;
    B->dir = tu_mkdtemp("bench-agentd");
    test_line_opts o = {.n_cards = n, .profile_size = 1024, .import_vault = true};
    for (size_t i = 0; i < n; i++)
        o.n_otks[i] = 1 + BENCH_ROUNDS; /* the warm-up DUT, then the timed ones */
    if (!B->dir || test_line_make(&B->L, B->dir, &o, why, sizeof why) != 0) {
        fprintf(bench_err, "bench_agentd: %s\n", why);
        return -1;
    }
    char *wal = bench_with(B->L.db, "-wal");
    struct stat st;
    if (wal && stat(wal, &st) == 0) { /* test_line_make closed the store: its WAL is folded in and gone */
        fprintf(bench_err, "bench_agentd: %s is left over; the store is not closed\n", wal);
        free(wal);
        return -1;
    }
    free(wal);
    char *shm_parent = getenv("IFPP_BENCH_SHM") ? getenv("IFPP_BENCH_SHM") : "/dev/shm";
    if (stat(shm_parent, &st) == 0 && S_ISDIR(st.st_mode)) {
        char *save = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
        setenv("TMPDIR", shm_parent, 1);
        B->shm = tu_mkdtemp("bench-agentd-cards");
        if (save) {
            setenv("TMPDIR", save, 1);
            free(save);
        } else {
            unsetenv("TMPDIR");
        }
    }
    if (!(B->tmpl_db = tu_path(B->dir, "template.db")) || bench_copy(B->L.db, B->tmpl_db) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "template-card-%zu", i);
        B->tmpl_card[i] = tu_path(B->dir, name);
        snprintf(name, sizeof name, "replay-%zu.log", i);
        B->log[i] = tu_path(B->dir, name);
        snprintf(name, sizeof name, "card-%zu", i);
        if (B->shm)
            B->shm_card[i] = tu_path(B->shm, name);
        if (!B->tmpl_card[i] || !B->log[i] || bench_copy(B->L.card[i], B->tmpl_card[i]) != 0)
            return -1;
    }
    return 0;
}

static void bench_line_free(bench_line *B)
{
    if (B->dir)
        tu_rmrf(B->dir);
    if (B->shm)
        tu_rmrf(B->shm);
    test_line_free(&B->L);
    free(B->dir);
    free(B->shm);
    free(B->tmpl_db);
    for (size_t i = 0; i < B->n; i++) {
        free(B->tmpl_card[i]);
        free(B->shm_card[i]);
        free(B->log[i]);
    }
}

typedef enum { CARD_SIM, CARD_NOSYNC, CARD_REPLAY, CARD__COUNT } card_kind;
static const char *const card_names[CARD__COUNT] = {"sim", "nosync", "replay"};
static const char *const card_what[CARD__COUNT] = {
    "software eUICC, card files fsync'd on the store's disk",
    "software eUICC, card files on tmpfs (no card fsync)",
    "replay of each DUT's recorded session (no card CPU, no card fsync)",
};

/* One figure: n slots, a kind of card, slow or instant. */
static bench_result bench_figure(bench_line *B, card_kind kind, bool slow)
{
    static char spec[BENCH_MAX_SLOTS][1024]; /* agent_config's slot spec size */
    bench_result bad = {.rate = -1};
    if (kind == CARD_NOSYNC && !B->shm)
        return bad;
    if (kind == CARD_REPLAY && !B->recorded) {
        /* set-up, untimed: each slot's sessions recorded against the software eUICC, then everything restored */
        if (bench_restore(B) != 0)
            return bad;
        for (size_t i = 0; i < B->n; i++) {
            unlink(B->log[i]);
            snprintf(spec[i], sizeof spec[i], "record:%s,log=%s", B->L.card[i], B->log[i]);
        }
        bench_apdu_us = 0;
        if (bench_run(&B->L, B->n, spec).rate < 0)
            return bad;
        B->recorded = true;
    }
    if (bench_restore(B) != 0)
        return bad;
    replay_card_forget(); /* each replay starts at the recording's first session */
    for (size_t i = 0; i < B->n; i++)
        snprintf(spec[i], sizeof spec[i], "%s:%s", kind == CARD_REPLAY ? (slow ? "slowreplay" : "replay")
                                                                      : (slow ? "slowvirtual" : "virtual"),
                 kind == CARD_REPLAY ? B->log[i] : kind == CARD_NOSYNC ? B->shm_card[i] : B->L.card[i]);
    bench_apdu_us = slow ? 1000 : 0;
    return bench_run(&B->L, B->n, spec);
}

static long bench_peak_rss_kib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {1, 2, 4, 8, 16, 32};
    enum { N_SIZES = sizeof sizes / sizeof sizes[0] };
    static bench_result r[N_SIZES][CARD__COUNT][2];
    size_t max = argc > 1 ? strtoul(argv[1], NULL, 10) : BENCH_MAX_SLOTS;
    const char *kinds = argc > 2 ? argv[2] : NULL; /* e.g. "replay" or "sim,nosync": only those cards */
    int repeat = getenv("IFPP_BENCH_REPEAT") ? atoi(getenv("IFPP_BENCH_REPEAT")) : 1;
    if (repeat < 1 || repeat > 100)
        repeat = 1;
    if (max < 1 || max > BENCH_MAX_SLOTS) {
        fprintf(stderr, "usage: bench_agentd [MAX-SLOTS 1..%d [sim,nosync,replay]]\n", BENCH_MAX_SLOTS);
        return 2;
    }
    if (fpa_virtual_register() != IFPP_OK || replay_card_register() != IFPP_OK)
        return 1;
    replay_inner = fpa_find("replay");
    slow_virtual_ops = fpa_virtual_ops;
    slow_virtual_ops.name = "slowvirtual";
    slow_virtual_ops.transmit = slow_virtual_transmit;
    if (!replay_inner)
        return 1;
    slow_replay_ops = *replay_inner;
    slow_replay_ops.name = "slowreplay";
    slow_replay_ops.transmit = slow_replay_transmit;
    if (fpa_register(&slow_virtual_ops) != IFPP_OK || fpa_register(&slow_replay_ops) != IFPP_OK)
        return 1;
    /* the slots log every DUT's start and end: not what a benchmark prints */
    int err_fd = dup(STDERR_FILENO), null_fd = open("/dev/null", O_WRONLY);
    if (err_fd < 0 || null_fd < 0 || !(bench_err = fdopen(err_fd, "w")) || dup2(null_fd, STDERR_FILENO) < 0)
        return 1;
    setvbuf(bench_err, NULL, _IONBF, 0);
    close(null_fd);

    const char *tmp = getenv("TMPDIR");
    printf("bench_agentd: %d DUTs per slot (one eUICC, additional profiles), 1 KiB profiles, store in %s\n",
           BENCH_ROUNDS, tmp && *tmp ? tmp : "/tmp");
    size_t n_sizes = 0;
    for (size_t k = 0; k < N_SIZES && sizes[k] <= max; k++, n_sizes++) {
        bench_line B;
        if (bench_line_make(&B, sizes[k]) != 0) {
            bench_line_free(&B);
            return 1;
        }
        for (int kind = 0; kind < CARD__COUNT; kind++)
            for (int slow = 1; slow >= 0; slow--) {
                r[k][kind][slow] = (bench_result){.rate = -1};
                if (kinds && !strstr(kinds, card_names[kind]))
                    continue;
                for (int rep = 0; rep < repeat; rep++) { /* the best of `repeat` runs: a busy machine only slows one down */
                    bench_result x = bench_figure(&B, (card_kind)kind, slow);
                    if (x.rate < 0 || x.rate > r[k][kind][slow].rate)
                        r[k][kind][slow] = x;
                    if (x.rate < 0)
                        break;
                }
                if (r[k][kind][slow].rate < 0 && !(kind == CARD_NOSYNC && !B.shm)) {
                    bench_line_free(&B);
                    return 1;
                }
            }
        bench_line_free(&B);
    }
    for (int kind = 0; kind < CARD__COUNT; kind++) {
        if (r[0][kind][1].rate < 0)
            continue;
        printf("\ncards: %s\n%6s %12s %10s %12s %10s %12s %12s\n", card_what[kind], "slots", "1ms DUTs/s", "vs linear",
               "0ms DUTs/s", "vs linear", "CPU ms/DUT", "ms/DUT/slot");
        for (size_t k = 0; k < n_sizes; k++) {
            const bench_result *s = &r[k][kind][1], *f = &r[k][kind][0];
            double ls = (double)sizes[k] * r[0][kind][1].rate, lf = (double)sizes[k] * r[0][kind][0].rate;
            printf("%6zu %12.1f %10.2f %12.1f %10.2f %12.2f %12.2f\n", sizes[k], s->rate, s->rate / ls, f->rate,
                   f->rate / lf, f->cpu_ms, f->wall_ms);
        }
    }
    printf("\n");
    long rss = bench_peak_rss_kib();
    for (int kind = 0; kind < CARD__COUNT; kind++) {
        if (r[0][kind][1].rate < 0)
            continue;
        for (int slow = 1; slow >= 0; slow--)
            for (size_t k = 0; k < n_sizes; k++) {
                double v = r[k][kind][slow].rate, lin = (double)sizes[k] * r[0][kind][slow].rate;
                printf("BENCH\tagentd_%s_%s_%zuslots\t%.1f\tDUTs/s\tlinear_%zux1slot\t%.1f\t%.2f\t%ld\n", card_names[kind],
                       slow ? "1ms" : "0ms", sizes[k], v, sizes[k], lin, v / lin, rss);
            }
    }
    /* issue 16.4: one process, one slot, instant cards: a DUT's cost is its two commits plus the station's CPU */
    const bench_result *one = &r[0][CARD_REPLAY][0];
    if (one->rate < 0)
        return 0;
    printf("BENCH\tstation_cpu_ms_per_dut_replay\t%.3f\tms\tbudget\t1.000\t%.2f\t%ld\n", one->cpu_ms, one->cpu_ms / 1.0,
           rss);
    printf("BENCH\tstation_wall_ms_per_dut_replay_1slot\t%.3f\tms\t-\t-\t-\t%ld\n", one->wall_ms, rss);
    return 0;
}
