/*
 * bench_moves.c -- durable BPP state moves per second under synchronous=FULL (issue 16 item 4): 1, 2, 4, 8,
 * 16 and 32 threads, each with its own store connection, each reserving its eUICC's BPPs and recording a
 * PIR for each (two moves per BPP, each a transaction durable before the call returns), once with every
 * connection committing on its own (SQLite's file lock orders them: one sync per move) and once through
 * a group committer (store_group_*: the moves waiting at one moment share one sync). The baseline of each
 * grouped figure is the direct one with the same threads, from the same run. Prints figures; asserts nothing.
 *
 *     bench_moves [MAX-THREADS (32)] [MOVES-PER-THREAD (128)]     TMPDIR chooses the disk
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "crypto.h"
#include "store.h"
#include "storeseed.h"
#include "testutil.h"

#define MAX_THREADS 32

typedef struct {
    int n_threads, per_thread; /* BPPs per thread: two moves each */
    uint8_t eid[MAX_THREADS][16];
} bench_fill;

/* All the eUICCs, keys and BPPs in one transaction (nested calls join it): the set-up costs one sync. */
static ifpp_err bench_fill_tx(store *s, void *arg)
{
    bench_fill *f = arg;
    return storeseed_fill(s, f->n_threads, f->per_thread, 0x30, f->eid, NULL, 0);
}

typedef struct {
    const char *path;
    store_group *g;
    const uint8_t *eid;
    int per_thread, index;
    pthread_barrier_t *go;
    int errors;
    char error[300];
} mover;

static void *mover_main(void *arg)
{
    mover *m = arg;
    store *s = NULL;
    char why[256] = "", session[16];
    static const uint8_t pir[] = {0xBF, 0x37, 0x00};
    ifpp_err e = store_open(m->path, &s, why, sizeof why);
    if (e == IFPP_OK && m->g)
        e = store_group_join(s, m->g);
    pthread_barrier_wait(m->go);
    if (e != IFPP_OK) {
        snprintf(m->error, sizeof m->error, "open: %s %s", why, s ? store_errmsg(s) : "");
        m->errors++;
        store_close(s);
        return NULL;
    }
    snprintf(session, sizeof session, "b%d", m->index);
    store_actor who = {.session = session, .slot = session, .dut_serial = "DUT", .reason = "bench"};
    for (int k = 0; k < m->per_thread; k++) {
        store_bpp b;
        if ((e = bpp_reserve(s, m->eid, NULL, &who, &b)) != IFPP_OK ||
            (e = store_record_pir(s, b.transaction_id, 16, pir, sizeof pir, true, BPP_RESERVED, &who)) != IFPP_OK) {
            snprintf(m->error, sizeof m->error, "%s: %s", err_name(e), store_errmsg(s));
            m->errors++;
            break;
        }
    }
    store_close(s);
    return NULL;
}

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Moves per second with n threads (grouped or not); < 0 on a failure. stats gets the group's counters. */
static double bench_run(int n, int per_thread, bool grouped, store_group_stats *stats)
{
    char why[256] = "", *dir = tu_mkdtemp("bench-moves"), *path = dir ? tu_path(dir, "station.db") : NULL;
    store *s = NULL;
    store_group *g = NULL;
    static bench_fill f;
    static mover m[MAX_THREADS];
    pthread_t t[MAX_THREADS];
    pthread_barrier_t go;
    double rate = -1;
    memset(stats, 0, sizeof *stats);
    f.n_threads = n;
    f.per_thread = per_thread;
    if (!path || store_open(path, &s, why, sizeof why) != IFPP_OK || store_transaction(s, bench_fill_tx, &f) != IFPP_OK) {
        fprintf(stderr, "bench_moves: set-up: %s %s\n", why, s ? store_errmsg(s) : "");
        goto out;
    }
    if (grouped && store_group_open(path, &g, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "bench_moves: %s\n", why);
        goto out;
    }
    pthread_barrier_init(&go, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        m[i] = (mover){.path = path, .g = g, .eid = f.eid[i], .per_thread = per_thread, .index = i, .go = &go};
        if (pthread_create(&t[i], NULL, mover_main, &m[i]) != 0) {
            fprintf(stderr, "bench_moves: cannot start thread %d\n", i);
            exit(1);
        }
    }
    pthread_barrier_wait(&go); /* every connection open: the clock starts with the first move */
    double t0 = bench_now();
    int errors = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        if (m[i].errors && errors++ == 0)
            fprintf(stderr, "bench_moves: thread %d: %s\n", i, m[i].error);
    }
    double dt = bench_now() - t0;
    pthread_barrier_destroy(&go);
    if (g)
        store_group_get_stats(g, stats);
    if (errors == 0)
        rate = 2.0 * n * per_thread / dt;
out:
    store_group_close(g);
    store_close(s);
    if (dir)
        tu_rmrf(dir);
    free(path);
    free(dir);
    return rate;
}

static long bench_peak_rss_kib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

int main(int argc, char **argv)
{
    static const int sizes[] = {1, 2, 4, 8, 16, 32};
    int max = argc > 1 ? atoi(argv[1]) : MAX_THREADS, per = argc > 2 ? atoi(argv[2]) : 128;
    if (max < 1 || max > MAX_THREADS || per < 1 || per > 60000) {
        fprintf(stderr, "usage: bench_moves [MAX-THREADS 1..32] [MOVES-PER-THREAD]\n");
        return 2;
    }
    const char *tmp = getenv("TMPDIR");
    printf("bench_moves: durable BPP state moves (reserve, then PIR), synchronous=FULL, store in %s, %d BPPs per thread\n",
           tmp && *tmp ? tmp : "/tmp", per);
    printf("%8s %14s %14s %8s %10s %10s\n", "threads", "direct mv/s", "grouped mv/s", "ratio", "batches", "avg batch");
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0] && sizes[k] <= max; k++) {
        int n = sizes[k];
        store_group_stats none, gs;
        double direct = bench_run(n, per, false, &none);
        double grouped = bench_run(n, per, true, &gs);
        if (direct < 0 || grouped < 0)
            return 1;
        printf("%8d %14.0f %14.0f %8.2f %10llu %10.1f\n", n, direct, grouped, grouped / direct,
               (unsigned long long)gs.batches, gs.batches ? (double)gs.transactions / (double)gs.batches : 0.0);
        long rss = bench_peak_rss_kib();
        printf("BENCH\tstate_moves_grouped_%dt\t%.0f\tmoves/s\tstate_moves_direct_%dt\t%.0f\t%.2f\t%ld\n", n, grouped, n,
               direct, grouped / direct, rss);
        printf("BENCH\tstate_moves_direct_%dt\t%.0f\tmoves/s\t-\t-\t-\t%ld\n", n, direct, rss);
        fflush(stdout);
    }
    return 0;
}
