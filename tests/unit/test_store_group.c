/*
 * test_store_group.c -- group commit (store_group_*, issue 13 item 5, issue 16 item 4) on a real SQLite file.
 *
 * Many slot threads commit through one committer; what must hold (GENS04, exactly once):
 *  - every move a thread was told OK is in the store once, in that thread's order, and the audit chain
 *    verifies and replays to the BPP table (store_audit_check);
 *  - in one batch, a move that fails -- even after it wrote its row and its audit entry -- rolls back
 *    alone: the others of the batch commit;
 *  - a process killed in the middle of a batch leaves each move fully in or not at all, and no waiter
 *    was ever told OK for a move the file does not hold;
 *  - a PASS session makes exactly two durable commits (the reservation, the PIR), directly or grouped.
 * Batches are made deterministic by a "gate": a transaction that holds the committer until the test
 * sees the wanted number of requests queued behind it (store_group_get_stats), so the next batch is
 * exactly those. Nothing here is timed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "station.h"
#include "store.h"
#include "storeseed.h"
#include "testline.h"
#include "testutil.h"

#define N_THREADS 16
#define PER_THREAD 12 /* BPPs of each thread's own eUICC */

typedef struct {
    char *dir, *path;
    uint8_t eid[N_THREADS][16];
} fixture;

/* The BPP number k of eUICC t: transaction id 0x20 t .. k. */
static void txid_of(int t, int k, uint8_t tx[16])
{
    storeseed_txid(0x20, t, k, tx);
}

/* The store: N_THREADS eUICCs with PER_THREAD BPPs each; 0 on success. */
static int fill(fixture *f)
{
    char why[256] = "";
    store *s = NULL;
    int rc = f->dir && f->path && store_open(f->path, &s, why, sizeof why) == IFPP_OK &&
                     storeseed_fill(s, N_THREADS, PER_THREAD, 0x20, f->eid, why, sizeof why) == IFPP_OK
                 ? 0
                 : -1;
    if (rc != 0)
        fprintf(stderr, "%s\n", why);
    store_close(s);
    return rc;
}

static int teardown(void **state);

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_mkdtemp("ifpp-store-group");
    f->path = f->dir ? tu_path(f->dir, "station.db") : NULL;
    *state = f;
    if (fill(f) != 0) {
        teardown(state);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->dir)
        tu_rmrf(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

static void audit_ok(store *s)
{
    char why[256] = "";
    ifpp_err e = store_audit_check(s, NULL, NULL, why, sizeof why);
    if (e != IFPP_OK)
        fprintf(stderr, "audit: %s\n", why);
    assert_int_equal(e, IFPP_OK);
}

static bpp_state state_of(store *s, const uint8_t tx[16])
{
    store_bpp b;
    assert_int_equal(store_get_bpp(s, tx, 16, &b), IFPP_OK);
    return b.state;
}

/* ---- many threads at once: exactly once, each thread's order, failures alone ----------------- */

typedef struct {
    uint8_t txid[16];
    bpp_state to;
} move_log;

typedef struct {
    const fixture *f;
    store_group *g;
    int index;
    move_log log[4 * PER_THREAD]; /* the moves this thread was told OK, in its order */
    size_t n_log, refused, commits;
    int errors;
    char first_error[600];
} worker;

static void worker_error(worker *w, const char *what, ifpp_err e, store *s)
{
    if (w->errors++ == 0)
        snprintf(w->first_error, sizeof w->first_error, "thread %d: %s: %s (%s)", w->index, what, err_name(e),
                 s ? store_errmsg(s) : "");
}

static void worker_ok(worker *w, const uint8_t tx[16], bpp_state to)
{
    memcpy(w->log[w->n_log].txid, tx, 16);
    w->log[w->n_log++].to = to;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    store *s = NULL;
    char why[256] = "", session[16];
    static const uint8_t pir[] = {0xBF, 0x37, 0x00};
    if (store_open(w->f->path, &s, why, sizeof why) != IFPP_OK || store_group_join(s, w->g) != IFPP_OK) {
        snprintf(w->first_error, sizeof w->first_error, "thread %d: open/join: %s %s", w->index, why,
                 s ? store_errmsg(s) : "");
        w->errors++;
        store_close(s);
        return NULL;
    }
    snprintf(session, sizeof session, "t%d", w->index);
    store_actor who = {.session = session, .slot = session, .dut_serial = "DUT", .reason = "group"};
    for (int k = 0; k < PER_THREAD; k++) {
        store_bpp got;
        ifpp_err e = bpp_reserve(s, w->f->eid[w->index], NULL, &who, &got);
        if (e != IFPP_OK) {
            worker_error(w, "reserve", e, s);
            break;
        }
        const uint8_t *tx = got.transaction_id;
        worker_ok(w, tx, BPP_RESERVED);
        /* a move that must fail (the BPP is no longer available): refused alone, nothing written */
        if (k % 3 == 0) {
            if ((e = bpp_move(s, tx, 16, BPP_AVAILABLE, BPP_DELETED, &who)) != IFPP_E_RANGE) {
                worker_error(w, "a move from the wrong state was not refused", e, s);
                break;
            }
            w->refused++;
        }
        if (k % 4 == 1) { /* in doubt, then back to available: the card's evidence said nothing installed */
            if ((e = bpp_move(s, tx, 16, BPP_RESERVED, BPP_IN_DOUBT, &who)) != IFPP_OK) {
                worker_error(w, "in_doubt", e, s);
                break;
            }
            worker_ok(w, tx, BPP_IN_DOUBT);
            if ((e = bpp_move(s, tx, 16, BPP_IN_DOUBT, BPP_FAILED, &who)) != IFPP_OK) {
                worker_error(w, "in_doubt -> failed", e, s);
                break;
            }
            worker_ok(w, tx, BPP_FAILED);
        } else if ((e = store_record_pir(s, tx, 16, pir, sizeof pir, true, BPP_RESERVED, &who)) != IFPP_OK) {
            worker_error(w, "record PIR", e, s);
            break;
        } else {
            worker_ok(w, tx, BPP_INSTALLED);
        }
    }
    w->commits = (size_t)store_commits(s);
    store_close(s);
    return NULL;
}

typedef struct {
    worker *w;
    size_t n;
    size_t *next; /* per thread: the next of its logged moves the audit log must show */
    int bad;
    char msg[300];
} order_check;

/* Each bpp_state entry of a thread's session must be that thread's next logged move: none missing, none twice, none out of order. */
static ifpp_err order_entry(void *arg, const store_audit_entry *e)
{
    order_check *c = arg;
    if (strcmp(e->event, "bpp_state") != 0 || !e->session || e->session[0] != 't')
        return IFPP_OK;
    int t = atoi(e->session + 1);
    if (t < 0 || (size_t)t >= c->n)
        return IFPP_OK;
    worker *w = &c->w[t];
    size_t i = c->next[t]++;
    bpp_state to = BPP_STATE__COUNT;
    for (int st = 0; st < BPP_STATE__COUNT; st++)
        if (e->to_state && strcmp(e->to_state, bpp_state_name((bpp_state)st)) == 0)
            to = (bpp_state)st;
    if (i >= w->n_log || e->txid_len != 16 || memcmp(e->txid, w->log[i].txid, 16) != 0 || to != w->log[i].to) {
        if (c->bad++ == 0)
            snprintf(c->msg, sizeof c->msg, "thread %d: audit entry %llu is not its move %zu (%s)", t,
                     (unsigned long long)e->id, i, e->to_state ? e->to_state : "?");
    }
    return IFPP_OK;
}

static void test_many_threads_exactly_once_in_order(void **state)
{
    fixture *f = *state;
    store_group *g = NULL;
    char why[256] = "";
    assert_int_equal(store_group_open(f->path, &g, why, sizeof why), IFPP_OK);
    static worker w[N_THREADS];
    pthread_t t[N_THREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){.f = f, .g = g, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    store_group_stats gs;
    store_group_get_stats(g, &gs);
    store_group_close(g);
    size_t moves = 0, refused = 0;
    for (int i = 0; i < N_THREADS; i++) {
        if (w[i].errors)
            fprintf(stderr, "%s (%d errors)\n", w[i].first_error, w[i].errors);
        assert_int_equal(w[i].errors, 0);
        /* every call told OK was one durable commit of its own connection's count */
        assert_int_equal(w[i].commits, w[i].n_log); /* each logged move was one call told OK */
        moves += w[i].n_log;
        refused += w[i].refused;
    }
    fprintf(stderr, "group: %llu transactions in %llu batches (largest %llu), %llu failed\n",
            (unsigned long long)gs.transactions, (unsigned long long)gs.batches, (unsigned long long)gs.max_batch,
            (unsigned long long)gs.failed);
    assert_int_equal(gs.failed, refused);
    store *s;
    assert_int_equal(store_open(f->path, &s, why, sizeof why), IFPP_OK);
    audit_ok(s);
    /* exactly once and in each thread's order: the audit log, filtered by session, is each thread's log */
    size_t next[N_THREADS] = {0};
    order_check c = {.w = w, .n = N_THREADS, .next = next};
    size_t matched = 0;
    assert_int_equal(store_each_audit(s, NULL, order_entry, &c, &matched), IFPP_OK);
    if (c.bad)
        fprintf(stderr, "%s (%d bad)\n", c.msg, c.bad);
    assert_int_equal(c.bad, 0);
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(next[i], w[i].n_log);
    size_t n_inst = 0, n_failed = 0, n_avail = 0;
    assert_int_equal(store_count_bpps(s, BPP_INSTALLED, &n_inst), IFPP_OK);
    assert_int_equal(store_count_bpps(s, BPP_FAILED, &n_failed), IFPP_OK);
    assert_int_equal(store_count_bpps(s, BPP_AVAILABLE, &n_avail), IFPP_OK);
    assert_int_equal(n_inst + n_failed, N_THREADS * PER_THREAD);
    assert_int_equal(n_avail, 0);
    assert_int_equal(gs.transactions, moves + refused);
    store_close(s);
}

/* ---- one batch made on purpose: a failing move rolls back alone --------------------------------- */

static const store_actor gate_who = {.session = "gate", .slot = "gate", .reason = "group test"};

/* Holds the committer until `want` requests wait behind it: they will be the next batch, all of them. */
typedef struct {
    store_group *g;
    size_t want;
    const uint8_t *txid; /* a move the gate makes itself (NULL: none) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool running, acked;
    ifpp_err rc;
    const char *path;
    int ack_fd;          /* >= 0: write 'G' there once told OK */
} gate;

static ifpp_err gate_tx(store *w, void *arg)
{
    gate *x = arg;
    ifpp_err e = x->txid ? bpp_move(w, x->txid, 16, BPP_AVAILABLE, BPP_RESERVED, &gate_who) : IFPP_OK;
    pthread_mutex_lock(&x->mu);
    x->running = true;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    store_group_stats st;
    for (long i = 0; i < 600000; i++) { /* a bound, not a timing: the queue fills as fast as threads start */
        store_group_get_stats(x->g, &st);
        if (st.queued >= x->want)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return e;
}

static void *gate_main(void *arg)
{
    gate *x = arg;
    store *s = NULL;
    x->rc = store_open(x->path, &s, NULL, 0);
    if (x->rc == IFPP_OK && (x->rc = store_group_join(s, x->g)) == IFPP_OK)
        x->rc = store_transaction(s, gate_tx, x);
    if (x->rc == IFPP_OK && x->ack_fd >= 0 && write(x->ack_fd, "G", 1) != 1)
        x->rc = IFPP_E_IO;
    pthread_mutex_lock(&x->mu);
    x->acked = true;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    store_close(s);
    return NULL;
}

static void gate_wait_running(gate *x)
{
    pthread_mutex_lock(&x->mu);
    while (!x->running)
        pthread_cond_wait(&x->cv, &x->mu);
    pthread_mutex_unlock(&x->mu);
}

typedef enum { MOVER_OK, MOVER_FAIL_AFTER_WRITE, MOVER_WRONG_STATE, MOVER_KILL } mover_kind;

typedef struct {
    const char *path;
    store_group *g;
    uint8_t txid[16];
    mover_kind kind;
    ifpp_err rc;
    int ack_fd;
    gate *after; /* MOVER_KILL: dies only once this gate's waiter has acknowledged its OK */
    char msg[300];
} mover;

static ifpp_err mover_tx(store *w, void *arg)
{
    mover *m = arg;
    store_actor who = {.session = "mover", .slot = "mover", .reason = "group test"};
    /* the wrong-state mover asks for reserved -> in_doubt of a BPP that is available: refused, nothing written */
    ifpp_err e = m->kind == MOVER_WRONG_STATE ? bpp_move(w, m->txid, 16, BPP_RESERVED, BPP_IN_DOUBT, &who)
                                              : bpp_move(w, m->txid, 16, BPP_AVAILABLE, BPP_RESERVED, &who);
    if (e != IFPP_OK)
        return e;
    if (m->kind == MOVER_KILL) {
        pthread_mutex_lock(&m->after->mu); /* the gate's waiter was told OK before this batch began */
        while (!m->after->acked)
            pthread_cond_wait(&m->after->cv, &m->after->mu);
        pthread_mutex_unlock(&m->after->mu);
        raise(SIGKILL); /* the process dies with this batch's moves applied but not committed */
    }
    return m->kind == MOVER_FAIL_AFTER_WRITE ? IFPP_E_IO : IFPP_OK; /* its row and audit entry were written */
}

static void *mover_main(void *arg)
{
    mover *m = arg;
    store *s = NULL;
    m->rc = store_open(m->path, &s, NULL, 0);
    if (m->rc == IFPP_OK && (m->rc = store_group_join(s, m->g)) == IFPP_OK)
        m->rc = store_transaction(s, mover_tx, m);
    snprintf(m->msg, sizeof m->msg, "%s", store_errmsg(s));
    if (m->rc == IFPP_OK && m->ack_fd >= 0 && write(m->ack_fd, m->txid, 16) != 16)
        m->rc = IFPP_E_IO;
    store_close(s);
    return NULL;
}

#define N_MOVERS 10

static void test_failing_move_rolls_back_alone(void **state)
{
    fixture *f = *state;
    store_group *g = NULL;
    char why[256] = "";
    assert_int_equal(store_group_open(f->path, &g, why, sizeof why), IFPP_OK);
    gate x = {.g = g, .want = N_MOVERS, .path = f->path, .ack_fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER,
              .cv = PTHREAD_COND_INITIALIZER};
    pthread_t gt, mt[N_MOVERS];
    static mover m[N_MOVERS];
    assert_int_equal(pthread_create(&gt, NULL, gate_main, &x), 0);
    gate_wait_running(&x);
    for (int i = 0; i < N_MOVERS; i++) {
        m[i] = (mover){.path = f->path, .g = g, .ack_fd = -1,
                       .kind = i == 3 ? MOVER_FAIL_AFTER_WRITE : i == 6 ? MOVER_WRONG_STATE : MOVER_OK};
        txid_of(i, 0, m[i].txid);
        assert_int_equal(pthread_create(&mt[i], NULL, mover_main, &m[i]), 0);
    }
    assert_int_equal(pthread_join(gt, NULL), 0);
    for (int i = 0; i < N_MOVERS; i++)
        assert_int_equal(pthread_join(mt[i], NULL), 0);
    store_group_stats gs;
    store_group_get_stats(g, &gs);
    store_group_close(g);
    fprintf(stderr, "batches %llu, largest %llu, failed %llu\n", (unsigned long long)gs.batches,
            (unsigned long long)gs.max_batch, (unsigned long long)gs.failed);
    assert_int_equal(x.rc, IFPP_OK);
    assert_int_equal(gs.batches, 2); /* the gate, then all the movers in one */
    assert_int_equal(gs.max_batch, N_MOVERS);
    assert_int_equal(gs.failed, 2);
    store *s;
    assert_int_equal(store_open(f->path, &s, why, sizeof why), IFPP_OK);
    for (int i = 0; i < N_MOVERS; i++) {
        bpp_state want = m[i].kind == MOVER_OK ? BPP_RESERVED : BPP_AVAILABLE;
        if (m[i].kind == MOVER_OK)
            assert_int_equal(m[i].rc, IFPP_OK);
        else
            fprintf(stderr, "mover %d: %s: %s\n", i, err_name(m[i].rc), m[i].msg);
        if (state_of(s, m[i].txid) != want)
            fprintf(stderr, "mover %d: BPP is %s, want %s\n", i, bpp_state_name(state_of(s, m[i].txid)),
                    bpp_state_name(want));
        assert_int_equal(state_of(s, m[i].txid), want);
    }
    assert_int_equal(m[3].rc, IFPP_E_IO);
    assert_int_equal(m[6].rc, IFPP_E_RANGE);
    assert_non_null(strstr(m[6].msg, "not reserved")); /* the waiter gets its own move's message */
    /* the failed move's audit entry went with it; the chain and the table agree */
    store_audit_filter af = {.txid = m[3].txid, .txid_len = 16, .event = "bpp_state"};
    size_t matched = 99;
    assert_int_equal(store_each_audit(s, &af, order_entry, &(order_check){0}, &matched), IFPP_OK);
    assert_int_equal(matched, 0);
    audit_ok(s);
    store_close(s);
}

/* ---- a process killed in the middle of a batch ------------------------------------------------ */

/* The child: the gate's move commits and is acknowledged; then a batch of N_MOVERS moves dies before its COMMIT. */
static void crash_child(const fixture *f, int ack_fd)
{
    store_group *g = NULL;
    if (store_group_open(f->path, &g, NULL, 0) != IFPP_OK)
        _exit(2);
    uint8_t gate_tx_id[16];
    txid_of(N_THREADS - 1, 0, gate_tx_id);
    gate x = {.g = g, .want = N_MOVERS + 1, .txid = gate_tx_id, .path = f->path, .ack_fd = ack_fd,
              .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t gt, mt[N_MOVERS + 1];
    static mover m[N_MOVERS + 1];
    if (pthread_create(&gt, NULL, gate_main, &x) != 0)
        _exit(2);
    gate_wait_running(&x);
    for (int i = 0; i < N_MOVERS; i++) {
        m[i] = (mover){.path = f->path, .g = g, .ack_fd = ack_fd, .kind = MOVER_OK};
        txid_of(i, 1, m[i].txid);
        if (pthread_create(&mt[i], NULL, mover_main, &m[i]) != 0)
            _exit(2);
    }
    /* the killer queues last: its move runs after every other move of the batch is applied */
    store_group_stats st;
    do {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        store_group_get_stats(g, &st);
    } while (st.queued < N_MOVERS);
    m[N_MOVERS] = (mover){.path = f->path, .g = g, .ack_fd = ack_fd, .kind = MOVER_KILL, .after = &x};
    txid_of(N_MOVERS, 1, m[N_MOVERS].txid);
    if (pthread_create(&mt[N_MOVERS], NULL, mover_main, &m[N_MOVERS]) != 0)
        _exit(2);
    pthread_join(gt, NULL);
    for (int i = 0; i <= N_MOVERS; i++)
        pthread_join(mt[i], NULL);
    _exit(3); /* not reached: the killer's move kills the process */
}

static void test_killed_mid_batch(void **state)
{
    fixture *f = *state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        crash_child(f, p[1]);
    }
    close(p[1]);
    uint8_t acks[64];
    size_t got = 0;
    ssize_t n;
    while ((n = read(p[0], acks + got, sizeof acks - got)) > 0)
        got += (size_t)n;
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    /* only the gate was told OK: no mover of the dying batch was */
    assert_int_equal(got, 1);
    assert_int_equal(acks[0], 'G');
    store *s;
    char why[256] = "";
    assert_int_equal(store_open(f->path, &s, why, sizeof why), IFPP_OK);
    uint8_t tx[16];
    txid_of(N_THREADS - 1, 0, tx);
    assert_int_equal(state_of(s, tx), BPP_RESERVED); /* told OK: durable */
    for (int i = 0; i <= N_MOVERS; i++) {
        txid_of(i, 1, tx);
        assert_int_equal(state_of(s, tx), BPP_AVAILABLE); /* applied in the batch, never committed: not there */
    }
    audit_ok(s);
    store_close(s);
}

/* Killed at a point of its own choosing: every move any thread was told OK is in the file, and the file is whole. */
#define RUN_THREADS 8

typedef struct {
    const fixture *f;
    store_group *g;
    int index, fd;
} runner;

static void *runner_main(void *arg)
{
    runner *r = arg;
    store *s = NULL;
    static const uint8_t pir[] = {0xBF, 0x37, 0x00};
    char session[16];
    snprintf(session, sizeof session, "r%d", r->index);
    store_actor who = {.session = session, .reason = "kill test"};
    if (store_open(r->f->path, &s, NULL, 0) != IFPP_OK || store_group_join(s, r->g) != IFPP_OK)
        _exit(2);
    for (;;) {
        store_bpp b;
        uint8_t ack[17];
        if (bpp_reserve(s, r->f->eid[r->index], NULL, &who, &b) != IFPP_OK)
            break;
        ack[0] = 'R';
        memcpy(ack + 1, b.transaction_id, 16);
        if (write(r->fd, ack, sizeof ack) != (ssize_t)sizeof ack)
            _exit(2);
        if (store_record_pir(s, b.transaction_id, 16, pir, sizeof pir, true, BPP_RESERVED, &who) != IFPP_OK)
            _exit(2);
        ack[0] = 'I';
        if (write(r->fd, ack, sizeof ack) != (ssize_t)sizeof ack)
            _exit(2);
    }
    store_close(s);
    return NULL;
}

static void test_killed_while_running(void **state)
{
    fixture *f = *state;
    for (int round = 0; round < 3; round++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            store_group *g = NULL;
            if (store_group_open(f->path, &g, NULL, 0) != IFPP_OK)
                _exit(2);
            pthread_t t[RUN_THREADS];
            static runner r[RUN_THREADS];
            for (int i = 0; i < RUN_THREADS; i++) {
                r[i] = (runner){.f = f, .g = g, .index = i, .fd = p[1]};
                if (pthread_create(&t[i], NULL, runner_main, &r[i]) != 0)
                    _exit(2);
            }
            for (int i = 0; i < RUN_THREADS; i++)
                pthread_join(t[i], NULL);
            _exit(0);
        }
        close(p[1]);
        /* acknowledgements: 17 bytes each (what, txid); kill after a few, different each round */
        static uint8_t acks[RUN_THREADS * PER_THREAD * 2][17];
        size_t n_acks = 0, kill_after = 5 + 7 * (size_t)round;
        bool killed = false;
        uint8_t buf[17];
        size_t have = 0;
        ssize_t n;
        while ((n = read(p[0], buf + have, sizeof buf - have)) > 0) {
            have += (size_t)n;
            if (have < sizeof buf)
                continue;
            memcpy(acks[n_acks++], buf, sizeof buf);
            have = 0;
            if (!killed && n_acks >= kill_after) {
                kill(pid, SIGKILL);
                killed = true;
            }
        }
        close(p[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(killed);
        assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
        store *s;
        char why[256] = "";
        assert_int_equal(store_open(f->path, &s, why, sizeof why), IFPP_OK);
        for (size_t i = 0; i < n_acks; i++) {
            bpp_state st = state_of(s, acks[i] + 1);
            if (acks[i][0] == 'I')
                assert_int_equal(st, BPP_INSTALLED);
            else
                assert_true(st == BPP_RESERVED || st == BPP_INSTALLED);
        }
        audit_ok(s);
        fprintf(stderr, "round %d: killed after %zu acknowledgements (%zu read in all); all durable, chain whole\n",
                round, kill_after, n_acks);
        /* what the kill left reserved goes on in the next round as if recovered: back through in_doubt */
        uint8_t left[PER_THREAD][16];
        size_t lens[PER_THREAD], nl = 0;
        store_actor rec = {.reason = "recovery in the test"};
        for (int t = 0; t < RUN_THREADS; t++) {
            assert_int_equal(store_unresolved(s, f->eid[t], left, lens, PER_THREAD, &nl), IFPP_OK);
            for (size_t k = 0; k < nl; k++) {
                assert_int_equal(bpp_move(s, left[k], lens[k], BPP_RESERVED, BPP_IN_DOUBT, &rec), IFPP_OK);
                assert_int_equal(bpp_move(s, left[k], lens[k], BPP_IN_DOUBT, BPP_AVAILABLE, &rec), IFPP_OK);
            }
        }
        store_close(s);
    }
}

/* ---- a session's commits ------------------------------------------------------------------------ */

/*
 * A PASS needs two durable commits before the card may go on (issue 13 item 5, issue 16 item 4): the
 * reservation before the BPP leaves the station, the PIR before the DUT is released. No more: each
 * extra one is a sync every DUT waits for.
 */
static void test_session_makes_two_commits(void **state)
{
    (void)state;
    test_line L;
    char why[512] = "", *dir = tu_mkdtemp("ifpp-store-group-session");
    test_line_opts o = {.n_cards = 1, .n_otks = {3}, .profile_size = 1024, .import_vault = true};
    assert_non_null(dir);
    memset(&L, 0, sizeof L);
    if (test_line_make(&L, dir, &o, why, sizeof why) != 0)
        fprintf(stderr, "%s\n", why);
    station_config sc = {.store_path = L.db, .pki_dir = L.pki};
    station *st = NULL;
    assert_int_equal(station_open(&sc, STATION_NEED_STORE | STATION_NEED_DM_FPA, &st, why, sizeof why), IFPP_OK);
    char spec[4200];
    snprintf(spec, sizeof spec, "virtual:%s", L.card[0]);
    station_slot_options so;
    station_slot sl;
    session_result r;
    assert_int_equal(station_slot_parse(spec, &so, why, sizeof why), IFPP_OK);

    /* directly on the slot's own connection */
    assert_int_equal(station_slot_open(&so, &sl, why, sizeof why), IFPP_OK);
    uint64_t before = store_commits(st->st);
    assert_int_equal(station_provision(st, &sl, "DUT-1", NULL, 0, NULL, NULL, &r), STATION_PASS);
    station_slot_close(&sl);
    fprintf(stderr, "direct: %llu commits for one PASS\n", (unsigned long long)(store_commits(st->st) - before));
    assert_int_equal(store_commits(st->st) - before, 2);

    /* through the group, as the daemon's slots: the same two, each its own transaction in the committer */
    store_group *g = NULL;
    assert_int_equal(store_group_open(L.db, &g, why, sizeof why), IFPP_OK);
    assert_int_equal(store_group_join(st->st, g), IFPP_OK);
    assert_int_equal(station_slot_open(&so, &sl, why, sizeof why), IFPP_OK);
    before = store_commits(st->st);
    assert_int_equal(station_provision(st, &sl, "DUT-1", NULL, STATION_ADDITIONAL_PROFILE, NULL, NULL, &r),
                     STATION_PASS);
    station_slot_close(&sl);
    store_group_stats gs;
    store_group_get_stats(g, &gs);
    assert_int_equal(store_commits(st->st) - before, 2);
    assert_int_equal(gs.transactions, 2);
    assert_int_equal(gs.failed, 0);
    station_close(st);
    store_group_close(g);
    test_line_free(&L);
    tu_rmrf(dir);
    free(dir);
}

/* ---- refusals ------------------------------------------------------------------------------------ */

static void test_join_refuses_another_file(void **state)
{
    fixture *f = *state;
    char why[256] = "";
    store_group *g = NULL;
    char *other = tu_path(f->dir, "other.db");
    store *s = NULL;
    assert_int_equal(store_group_open(f->path, &g, why, sizeof why), IFPP_OK);
    assert_int_equal(store_open(other, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(store_group_join(s, g), IFPP_E_ARG);
    assert_non_null(strstr(store_errmsg(s), "another file"));
    store_close(s);
    assert_int_equal(store_open_readonly(f->path, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(store_group_join(s, g), IFPP_E_ARG);
    store_close(s);
    store_group_close(g);
    /* a committer that cannot open its store says why, naming it */
    char *missing = tu_path(f->dir, "no-such-dir/station.db");
    assert_int_not_equal(store_group_open(missing, &g, why, sizeof why), IFPP_OK);
    assert_non_null(strstr(why, "no-such-dir"));
    free(missing);
    free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_threads_exactly_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_move_rolls_back_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_mid_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_refuses_another_file, setup, teardown),
        cmocka_unit_test(test_session_makes_two_commits),
    };
    return cmocka_run_group_tests_name("store_group", tests, NULL, NULL);
}
