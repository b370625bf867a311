/*
 * test_store_threads.c -- the store under N slot threads and a second process, on a real SQLite file.
 *
 * Proves (issue 8 item 4, issue 9 items 4 and 7; GENS04 exactly once):
 *  - eight threads, each with its own store* (the connection-per-thread model of docs/store.md),
 *    reserving, recording PIRs and moving BPPs to in_doubt and back at once: no BPP is reserved
 *    twice (every move from "our" reserved state succeeds) and none is lost (every BPP ends final,
 *    the audit chain verifies and the BPP table replays from it);
 *  - a store* used from a thread that does not own it is refused, so a thread can never slip its
 *    reservation into another thread's open transaction (the old shared-handle design lost it when
 *    the other transaction rolled back);
 *  - creating a store that does not exist yet from several threads, or several processes, at once:
 *    all succeed and each migration is done once;
 *  - a store held by another writer: a reserve says busy (IFPP_E_BUSY), never "no available BPP".
 *
 * IFPP_STORE_THREADS_SHARED=1 makes the stress test share the main thread's store* across the
 * threads (the old design), to show what that does; it is not part of the registered test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto.h"
#include "store.h"
#include "storeseed.h"
#include "testutil.h"

#define N_THREADS 8
#define N_BPPS 64

typedef struct {
    char *dir, *path;
    store *s;
    uint8_t eid[16];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("ifpp-store-threads");
    f->path = tu_path(f->dir, "station.db");
    char why[256] = "";
    if (store_open(f->path, &f->s, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "%s\n", why);
        return -1;
    }
    if (storeseed_fill(f->s, 1, N_BPPS, 0x10, &f->eid, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "%s\n", why);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

/* ---- many slot threads at once ------------------------------------------------------------ */

typedef struct {
    const fixture *f;
    store *shared; /* non-NULL: the old design, one store* for all */
    int index;
    size_t final_count;
    uint8_t final_txid[N_BPPS][16];
    int errors;
    char first_error[600];
} worker;

static void worker_error(worker *w, const char *what, ifpp_err e, store *s)
{
    if (w->errors++ == 0)
        snprintf(w->first_error, sizeof w->first_error, "thread %d: %s: %s (%s)", w->index, what, err_name(e),
                 s ? store_errmsg(s) : "");
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    store *s = w->shared;
    char why[256] = "", session[32];
    if (!s && store_open(w->f->path, &s, why, sizeof why) != IFPP_OK) {
        snprintf(w->first_error, sizeof w->first_error, "thread %d: open: %s", w->index, why);
        w->errors++;
        return NULL;
    }
    snprintf(session, sizeof session, "t%d", w->index);
    store_actor who = {.session = session, .slot = session, .dut_serial = "DUT", .reason = "stress"};
    static const uint8_t pir[] = {0xBF, 0x37, 0x00};
    unsigned seed = 0x9E3779B9u * (unsigned)(w->index + 1);
    for (int round = 0; round < 4 * N_BPPS; round++) {
        store_bpp got;
        ifpp_err e = bpp_reserve(s, w->f->eid, NULL, &who, &got);
        if (e == IFPP_E_NOT_FOUND)
            break;
        if (e != IFPP_OK) {
            worker_error(w, "reserve", e, s);
            break;
        }
        const uint8_t *tx = got.transaction_id;
        /* a quarter go in_doubt and come back (the card's evidence: not installed), a quarter in_doubt -> failed */
        int kind = (int)(rand_r(&seed) % 4);
        if (kind == 0) {
            if ((e = bpp_move(s, tx, 16, BPP_RESERVED, BPP_IN_DOUBT, &who)) != IFPP_OK ||
                (e = bpp_move(s, tx, 16, BPP_IN_DOUBT, BPP_AVAILABLE, &who)) != IFPP_OK) {
                worker_error(w, "in_doubt and back", e, s);
                break;
            }
            continue;
        }
        if (kind == 1) {
            if ((e = bpp_move(s, tx, 16, BPP_RESERVED, BPP_IN_DOUBT, &who)) != IFPP_OK ||
                (e = bpp_move(s, tx, 16, BPP_IN_DOUBT, BPP_FAILED, &who)) != IFPP_OK) {
                worker_error(w, "in_doubt -> failed", e, s);
                break;
            }
        } else if ((e = store_record_pir(s, tx, 16, pir, sizeof pir, true, BPP_RESERVED, &who)) != IFPP_OK) {
            worker_error(w, "record PIR", e, s);
            break;
        }
        memcpy(w->final_txid[w->final_count++], tx, 16);
    }
    if (!w->shared)
        store_close(s);
    return NULL;
}

static void test_threads_each_own_store(void **state)
{
    fixture *f = *state;
    bool shared = getenv("IFPP_STORE_THREADS_SHARED") != NULL;
    static worker w[N_THREADS];
    pthread_t t[N_THREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){.f = f, .index = i, .shared = shared ? f->s : NULL};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    int errors = 0;
    size_t finals = 0;
    for (int i = 0; i < N_THREADS; i++) {
        if (w[i].errors)
            fprintf(stderr, "%s (%d errors)\n", w[i].first_error, w[i].errors);
        errors += w[i].errors;
        finals += w[i].final_count;
    }
    /* every BPP reached a final state exactly once: none twice (by two threads), none lost */
    static uint8_t seen[N_BPPS];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < N_THREADS; i++)
        for (size_t k = 0; k < w[i].final_count; k++) {
            uint8_t idx = w[i].final_txid[k][15];
            if (seen[idx]++)
                fprintf(stderr, "BPP %u finalised twice\n", idx);
        }
    size_t installed = 0, failed = 0, rest = 0, n;
    for (int st = 0; st < BPP_STATE__COUNT; st++) {
        assert_int_equal(store_count_bpps(f->s, (bpp_state)st, &n), IFPP_OK);
        if (st == BPP_INSTALLED)
            installed = n;
        else if (st == BPP_FAILED)
            failed = n;
        else
            rest += n;
    }
    fprintf(stderr, "threads: %zu finalised by threads, store: %zu installed, %zu failed, %zu other, %d errors\n",
            finals, installed, failed, rest, errors);
    assert_int_equal(errors, 0);
    assert_int_equal(finals, N_BPPS);
    for (int i = 0; i < N_BPPS; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(installed + failed, N_BPPS);
    assert_int_equal(rest, 0);
    char why[256] = "";
    ifpp_err e = store_audit_check(f->s, NULL, NULL, why, sizeof why);
    if (e != IFPP_OK)
        fprintf(stderr, "audit: %s\n", why);
    assert_int_equal(e, IFPP_OK);
}

/* ---- a store* used from a thread that does not own it -------------------------------------- */

typedef struct {
    fixture *f;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage; /* 1: main's transaction open, 2: the other thread has tried */
    ifpp_err other_rc;
    store_bpp got;
    char msg[256];
} handoff;

static void *intruder_main(void *arg)
{
    handoff *h = arg;
    store_actor who = {.session = "intruder"};
    pthread_mutex_lock(&h->mu);
    while (h->stage < 1)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    h->other_rc = bpp_reserve(h->f->s, h->f->eid, NULL, &who, &h->got);
    snprintf(h->msg, sizeof h->msg, "%s", store_errmsg(h->f->s));
    pthread_mutex_lock(&h->mu);
    h->stage = 2;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Main's transaction: lets the other thread act inside it, then fails (rolls back). */
static ifpp_err main_tx(store *s, void *arg)
{
    (void)s;
    handoff *h = arg;
    pthread_mutex_lock(&h->mu);
    h->stage = 1;
    pthread_cond_signal(&h->cv);
    while (h->stage < 2)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    return IFPP_E_RANGE;
}

static void test_foreign_thread_refused(void **state)
{
    fixture *f = *state;
    handoff h = {.f = f, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, intruder_main, &h), 0);
    assert_int_equal(store_transaction(f->s, main_tx, &h), IFPP_E_RANGE);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (h.other_rc == IFPP_OK) {
        /* the old design: the reservation went into main's transaction and is gone with it */
        store_bpp row;
        assert_int_equal(store_get_bpp(f->s, h.got.transaction_id, 16, &row), IFPP_OK);
        fprintf(stderr, "other thread's bpp_reserve returned OK; its BPP is now %s\n", bpp_state_name(row.state));
        assert_int_equal(row.state, BPP_RESERVED);
    }
    assert_int_equal(h.other_rc, IFPP_E_ARG);
    assert_non_null(strstr(h.msg, "another thread"));
    size_t n;
    assert_int_equal(store_count_bpps(f->s, BPP_AVAILABLE, &n), IFPP_OK);
    assert_int_equal(n, N_BPPS);
}

/* ---- first creation from several connections at once --------------------------------------- */

typedef struct {
    const char *path;
    pthread_barrier_t *go;
    ifpp_err rc;
    char why[256];
} opener;

static void *opener_main(void *arg)
{
    opener *o = arg;
    store *s = NULL;
    pthread_barrier_wait(o->go);
    o->rc = store_open(o->path, &s, o->why, sizeof o->why);
    store_close(s);
    return NULL;
}

static void test_concurrent_creation(void **state)
{
    fixture *f = *state;
    for (int round = 0; round < 10; round++) {
        char name[32];
        snprintf(name, sizeof name, "fresh-%d.db", round);
        char *path = tu_path(f->dir, name);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 4);
        opener o[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            o[i] = (opener){.path = path, .go = &go};
            assert_int_equal(pthread_create(&t[i], NULL, opener_main, &o[i]), 0);
        }
        for (int i = 0; i < 4; i++)
            assert_int_equal(pthread_join(t[i], NULL), 0);
        pthread_barrier_destroy(&go);
        for (int i = 0; i < 4; i++) {
            if (o[i].rc != IFPP_OK)
                fprintf(stderr, "round %d opener %d: %s: %s\n", round, i, err_name(o[i].rc), o[i].why);
            assert_int_equal(o[i].rc, IFPP_OK);
        }
        store *s;
        size_t entries;
        assert_int_equal(store_open(path, &s, NULL, 0), IFPP_OK);
        assert_int_equal(store_audit_verify(s, &entries, NULL, 0), IFPP_OK);
        assert_int_equal((int)entries, store_schema_version(s)); /* each migration once */
        store_close(s);
        free(path);
    }
}

/* The same with processes, as two `ifppctl` commands started at once: fork()ed openers released together. */
static void test_concurrent_creation_processes(void **state)
{
    fixture *f = *state;
    for (int round = 0; round < 10; round++) {
        char name[32];
        snprintf(name, sizeof name, "forked-%d.db", round);
        char *path = tu_path(f->dir, name);
        int go[2];
        assert_int_equal(pipe(go), 0);
        pid_t pid[4];
        for (int i = 0; i < 4; i++) {
            pid[i] = fork();
            assert_true(pid[i] >= 0);
            if (pid[i] == 0) {
                char c, why[256] = "";
                store *s = NULL;
                close(go[1]);
                if (read(go[0], &c, 1) != 0) /* EOF when the parent closes: all start at once */
                    _exit(3);
                ifpp_err e = store_open(path, &s, why, sizeof why);
                if (e != IFPP_OK)
                    fprintf(stderr, "round %d process %d: %s: %s\n", round, i, err_name(e), why);
                store_close(s);
                _exit(e == IFPP_OK ? 0 : 1);
            }
        }
        close(go[0]);
        close(go[1]);
        for (int i = 0; i < 4; i++) {
            int status;
            assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        }
        store *s;
        size_t entries;
        assert_int_equal(store_open(path, &s, NULL, 0), IFPP_OK);
        assert_int_equal(store_audit_verify(s, &entries, NULL, 0), IFPP_OK);
        assert_int_equal((int)entries, store_schema_version(s));
        store_close(s);
        free(path);
    }
}

/* ---- another writer holds the store ------------------------------------------------------ */

static void test_busy_is_not_not_found(void **state)
{
    fixture *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK); /* another process's writer */
    store_set_busy_timeout(f->s, 100);
    store_bpp got;
    store_actor who = {.session = "s-1"};
    ifpp_err e = bpp_reserve(f->s, f->eid, NULL, &who, &got);
    fprintf(stderr, "reserve while locked: %s: %s\n", err_name(e), store_errmsg(f->s));
    assert_int_equal(e, IFPP_E_BUSY);
    assert_non_null(strstr(store_errmsg(f->s), "locked by another process"));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(bpp_reserve(f->s, f->eid, NULL, &who, &got), IFPP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_threads_each_own_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_thread_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_creation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_creation_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_is_not_not_found, setup, teardown),
    };
    return cmocka_run_group_tests_name("store_threads", tests, NULL, NULL);
}
