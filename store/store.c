/*
 * store.c -- the SQLite store; the contract and the state machine are in store.h, the
 * concurrency model and the audit chain in docs/store.md.
 *
 * Every write goes through store_transaction(): BEGIN IMMEDIATE takes the write lock up
 * front (one writer, no upgrade deadlock), the work and its audit row happen inside, and
 * COMMIT under synchronous=FULL returns only once the WAL is on disk. A state move is an
 * UPDATE ... WHERE state = <expected>; if no row changed, someone else moved it first and
 * the transaction rolls back with nothing written. A connection joined to a group (the daemon's slots)
 * hands its transactions to the group's committer instead, which runs the ones waiting at one moment in
 * SAVEPOINTs of one transaction with one sync (the block at the end of this file, docs/store.md).
 *
 * One store* is one SQLite connection and belongs to the thread that opened it: the depth of
 * the caller's transaction lives in the struct, so a second thread on the same handle could
 * only ever join a transaction it does not own; it is refused instead. Every sqlite3_step()
 * result is checked: a row loop ends on SQLITE_DONE and on nothing else, so a locked, damaged
 * or unreadable store is an error the caller sees, never a short answer.
 */
#define _GNU_SOURCE /* sync_file_range: a vault's BPPs start for the disk while the import reads on */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "hex.h"

#define STORE_BUSY_MS 15000          /* a writer waits this long for another writer (a slot's move is short) */
#define STORE_QUICK_CHECK_MAX (64 << 20) /* quick_check at open only up to this size: it reads every page */

struct store {
    sqlite3 *db;
    pthread_t owner;   /* the thread that opened it; the only one allowed to use it */
    int depth;         /* store_transaction() nesting; 0: no transaction of ours is open */
    bool inner_failed; /* a nested call failed: the outer transaction must not commit */
    bool readonly;
    int busy_ms;
    char *path;
    struct store_bppfile *bf; /* the BPP data file beside the database (issue 16), opened at first use */
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[48];              /* statements run once per BPP or per DUT, kept prepared (store_prepare_cached) */
    store_group *group; /* non-NULL: outermost transactions go through this committer (group commit) */
    uint64_t commits;   /* durable transactions committed for this connection */
};

/* The last failure's message, per thread (each thread has its own store*, docs/store.md). */
static _Thread_local char store_msg[512];

/* the BPP data file (issue 16): the block at the end of this file */
static ifpp_err bppfile_before_commit(store *s);
static void bppfile_after_commit(store *s);
static void bppfile_after_rollback(store *s);
static void bppfile_close(store *s);
static ifpp_err store_bpp_stage_txn_end(store *s, bool keep);
static ifpp_err bppfile_append(store *s, const uint8_t *p, size_t n, uint64_t *off);
static ifpp_err bppfile_read(store *s, const uint8_t *txid, size_t txid_len, uint64_t off, uint64_t len,
                             const uint8_t sha[32], uint8_t **out);

static const char *const state_names[BPP_STATE__COUNT] = {
    "available", "reserved", "installed", "failed", "in_doubt", "transferred", "deleted",
};

/* Schema migrations, applied in order; PRAGMA user_version counts how many are in. */
static const char *const migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE euicc ("
    "  eid BLOB PRIMARY KEY CHECK (length(eid) = 16),"
    "  cert BLOB NOT NULL, info2 BLOB NOT NULL, added_at TEXT NOT NULL);"
    "CREATE TABLE otk ("
    "  eid BLOB NOT NULL REFERENCES euicc(eid),"
    "  otpk BLOB NOT NULL CHECK (length(otpk) = 65), proof BLOB NOT NULL CHECK (length(proof) = 64),"
    "  PRIMARY KEY (eid, otpk));"
    "CREATE TABLE bpp ("
    "  txid BLOB PRIMARY KEY CHECK (length(txid) BETWEEN 1 AND 16),"
    "  eid BLOB NOT NULL, otpk BLOB NOT NULL,"
    "  iccid BLOB NOT NULL CHECK (length(iccid) = 10), profile_type TEXT NOT NULL,"
    "  bpp_hash BLOB NOT NULL CHECK (length(bpp_hash) = 32), bpp BLOB NOT NULL, vault_id TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('available','reserved','installed','failed','in_doubt',"
    "                                        'transferred','deleted')),"
    "  session TEXT, slot TEXT, dut_serial TEXT, updated_at TEXT NOT NULL,"
    "  FOREIGN KEY (eid, otpk) REFERENCES otk(eid, otpk),"
    "  UNIQUE (eid, otpk));" /* GENS08: one One-time Key, one BPP, forever */
    "CREATE INDEX bpp_by_eid_state ON bpp(eid, state);"
    "CREATE TABLE pir ("
    "  txid BLOB PRIMARY KEY REFERENCES bpp(txid),"
    "  pir BLOB NOT NULL, success INTEGER NOT NULL CHECK (success IN (0, 1)), received_at TEXT NOT NULL);"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY, at TEXT NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL,"
    "  prev BLOB NOT NULL CHECK (length(prev) = 32), hash BLOB NOT NULL CHECK (length(hash) = 32));",
    /* 2: vaults, with the SM-DPf binding certificate each BPP is forwarded with (PrepareBppLoad) */
    "CREATE TABLE vault ("
    "  vault_id TEXT PRIMARY KEY, dpf_pb_cert BLOB NOT NULL, bundle_hash BLOB NOT NULL CHECK (length(bundle_hash) = 32),"
    "  imported_at TEXT NOT NULL);"
    "CREATE TABLE eum_cert (der BLOB PRIMARY KEY);",
    /* 3: audit entries as fields (form 2); rows written before keep their text and their form-1 hash */
    "ALTER TABLE audit ADD COLUMN form INTEGER NOT NULL DEFAULT 1 CHECK (form IN (1, 2));"
    "ALTER TABLE audit ADD COLUMN txid BLOB;"
    "ALTER TABLE audit ADD COLUMN eid BLOB;"
    "ALTER TABLE audit ADD COLUMN from_state TEXT;"
    "ALTER TABLE audit ADD COLUMN to_state TEXT;"
    "ALTER TABLE audit ADD COLUMN session TEXT;"
    "ALTER TABLE audit ADD COLUMN slot TEXT;"
    "ALTER TABLE audit ADD COLUMN dut_serial TEXT;"
    "ALTER TABLE audit ADD COLUMN reason TEXT;"
    "ALTER TABLE audit ADD COLUMN object TEXT;",
    /* 4: the SM-DP sub-CA certificates of a vault, sent with its CERT.DPpb in PrepareBppLoad (issuer first) */
    "CREATE TABLE vault_sub_ca ("
    "  vault_id TEXT NOT NULL REFERENCES vault(vault_id), position INTEGER NOT NULL CHECK (position >= 0),"
    "  der BLOB NOT NULL, PRIMARY KEY (vault_id, position));",
    /* migration 5: use case A.4, deletion jobs (issue 15 item 4): each job's list (by its hash), each
       device's outcome, and every eUICC-signed deletion notification, recorded with the BPP's move to deleted */
    "CREATE TABLE deletion_job ("
    "  name TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('serial', 'eid')),"
    "  list_hash BLOB NOT NULL CHECK (length(list_hash) = 32), lines INTEGER NOT NULL CHECK (lines >= 0),"
    "  created_at TEXT NOT NULL, finished_at TEXT);"
    "CREATE TABLE deletion_item ("
    "  job TEXT NOT NULL REFERENCES deletion_job(name), line INTEGER NOT NULL CHECK (line >= 1),"
    "  ident TEXT NOT NULL, outcome TEXT NOT NULL CHECK (outcome IN ('done', 'failed')),"
    "  profiles INTEGER NOT NULL, reason TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (job, line));"
    "CREATE TABLE deletion_notification ("
    "  txid BLOB PRIMARY KEY REFERENCES bpp(txid), eid BLOB NOT NULL CHECK (length(eid) = 16),"
    "  seq INTEGER NOT NULL, notification BLOB NOT NULL, job TEXT NOT NULL, received_at TEXT NOT NULL);"
    "CREATE INDEX deletion_by_job ON deletion_notification(job);"
    "CREATE INDEX bpp_by_serial ON bpp(dut_serial);",
    /* migration 6: EUICCF05 connectivity tests (issue 15 item 5); one row per test, the eUICC's signed answer kept */
    "CREATE TABLE conn_test ("
    "  id INTEGER PRIMARY KEY, txid BLOB NOT NULL REFERENCES bpp(txid),"
    "  eid BLOB NOT NULL CHECK (length(eid) = 16), iccid BLOB NOT NULL CHECK (length(iccid) = 10),"
    "  mode TEXT NOT NULL CHECK (mode IN ('if-offered', 'required')),"
    "  outcome TEXT NOT NULL CHECK (outcome IN ('skipped', 'passed', 'failed', 'refused')),"
    "  result INTEGER CHECK (result BETWEEN 0 AND 255), detail TEXT NOT NULL,"
    "  nonce BLOB CHECK (nonce IS NULL OR length(nonce) = 16), evidence BLOB, at TEXT NOT NULL,"
    "  CHECK ((outcome IN ('passed', 'failed')) = (evidence IS NOT NULL AND result IS NOT NULL)));"
    "CREATE INDEX conn_test_by_txid ON conn_test(txid);",
    /* migration 7: BPP bytes in the store's append-only data file <store>.bpp (issue 16); a row holds where
     * (offset, length) and their SHA-256; rows written before keep their bytes in bpp (data_off NULL) */
    "ALTER TABLE bpp ADD COLUMN data_off INTEGER CHECK (data_off >= 0);"
    "ALTER TABLE bpp ADD COLUMN data_len INTEGER CHECK (data_len > 0);"
    "ALTER TABLE bpp ADD COLUMN data_sha256 BLOB CHECK (data_sha256 IS NULL OR length(data_sha256) = 32);"
    "CREATE TABLE bpp_data (id INTEGER PRIMARY KEY CHECK (id = 1), size INTEGER NOT NULL CHECK (size >= 0));"
    "INSERT INTO bpp_data (id, size) VALUES (1, 0);",
    /* migration 8: reports read only the day's rows (issue 16.3): the day of the last move (then its time, the
     * report's order, and the state, filtered in the index), the stock per profile type, an audit entry by BPP */
    "CREATE INDEX bpp_by_day ON bpp(substr(updated_at, 1, 10), updated_at, state);"
    "CREATE INDEX bpp_by_type_state ON bpp(profile_type, state);"
    "CREATE INDEX audit_by_txid ON audit(txid) WHERE txid IS NOT NULL;",
};
#define STORE_SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

const char *bpp_state_name(bpp_state s)
{
    return (unsigned)s < BPP_STATE__COUNT ? state_names[s] : "unknown";
}

static bool bpp_state_parse(const char *name, bpp_state *out)
{
    for (int i = 0; i < BPP_STATE__COUNT; i++)
        if (name && strcmp(name, state_names[i]) == 0) {
            *out = (bpp_state)i;
            return true;
        }
    return false;
}

bool bpp_transition_allowed(bpp_state from, bpp_state to)
{
    switch (from) {
    case BPP_AVAILABLE: return to == BPP_RESERVED || to == BPP_TRANSFERRED || to == BPP_DELETED;
    case BPP_RESERVED: return to == BPP_INSTALLED || to == BPP_FAILED || to == BPP_IN_DOUBT;
    case BPP_IN_DOUBT: return to == BPP_INSTALLED || to == BPP_FAILED || to == BPP_AVAILABLE;
    case BPP_INSTALLED: return to == BPP_DELETED; /* use case A.4: only with the eUICC's signed notification */
    default: return false; /* installed, failed, transferred, deleted are final */
    }
}

static void store_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *store_errmsg(const store *s)
{
    (void)s;
    return store_msg;
}

/*
 * Turns a failed SQLite result into the error the caller carries up, with a message naming the
 * store and what was being done: locked by another writer is IFPP_E_BUSY, never "not found".
 */
static ifpp_err store_fail(store *s, int rc, const char *what)
{
    const char *path = s && s->path ? s->path : "(store)";
    const char *msg = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        snprintf(store_msg, sizeof store_msg, "store %s is locked by another process (waited %d ms): %s", path,
                 s ? s->busy_ms : 0, what);
        return IFPP_E_BUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        snprintf(store_msg, sizeof store_msg, "store %s is damaged or not a store (%s): %s", path, msg, what);
        return IFPP_E_IO;
    case SQLITE_FULL:
        snprintf(store_msg, sizeof store_msg, "store %s: the disk holding it is full: %s", path, what);
        return IFPP_E_IO;
    case SQLITE_READONLY:
        snprintf(store_msg, sizeof store_msg, "store %s is read-only (%s): %s", path, msg, what);
        return IFPP_E_IO;
    case SQLITE_CONSTRAINT:
        snprintf(store_msg, sizeof store_msg, "store %s: %s refused: %s", path, what, msg);
        return IFPP_E_ARG;
    default: { /* an I/O error: the system's errno says which (no space, read-only, gone) */
        int sys = s && s->db ? sqlite3_system_errno(s->db) : 0;
        snprintf(store_msg, sizeof store_msg, "store %s: %s failed: %s%s%s%s", path, what, msg, sys ? " (" : "",
                 sys ? strerror(sys) : "", sys ? ")" : "");
        return IFPP_E_IO;
    }
    }
}

/* The handle belongs to the thread that opened it (docs/store.md); anyone else is refused. */
static bool store_mine(const store *s)
{
    if (!s) {
        snprintf(store_msg, sizeof store_msg, "no store given");
        return false;
    }
    if (!pthread_equal(s->owner, pthread_self())) {
        snprintf(store_msg, sizeof store_msg,
                 "store %s used from another thread than the one that opened it (each thread opens its own store)",
                 s->path);
        return false;
    }
    return true;
}

#define STORE_CHECK(s)                                                                                                 \
    do {                                                                                                               \
        if (!store_mine(s))                                                                                            \
            return IFPP_E_ARG;                                                                                         \
    } while (0)

static ifpp_err store_exec(store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? IFPP_OK : store_fail(s, rc, what);
}

/* Prepares sql into *st; the caller finalises. */
static ifpp_err store_prepare(store *s, const char *sql, sqlite3_stmt **st)
{
    *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? IFPP_OK : store_fail(s, rc, "preparing a query");
}

/*
 * A statement kept prepared for the calls made once per BPP of a vault (issue 16: preparing them each time
 * cost more than hashing the BPP), keyed by the address of its SQL text; give it back with store_release.
 */
static ifpp_err store_prepare_cached(store *s, const char *sql, sqlite3_stmt **st)
{
    size_t n = sizeof s->cache / sizeof s->cache[0], i;
    for (i = 0; i < n && s->cache[i].sql; i++)
        if (s->cache[i].sql == sql) {
            /* the same text (a buffer's address may come back with other SQL in it), and not in use right now
             * (a callback of a walk over it may ask for it again): else an ordinary statement */
            if (strcmp(sqlite3_sql(s->cache[i].st), sql) != 0 || sqlite3_stmt_busy(s->cache[i].st))
                return store_prepare(s, sql, st);
            *st = s->cache[i].st;
            return IFPP_OK;
        }
    if (i == n)
        return store_prepare(s, sql, st); /* full: an ordinary statement, finalised by store_release */
    *st = NULL;
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "preparing a query");
    s->cache[i].sql = sql;
    s->cache[i].st = *st;
    return IFPP_OK;
}

/* Ends the use of a statement from store_prepare_cached: reset (no read lock kept), or finalised if not kept. */
static void store_release(store *s, sqlite3_stmt *st)
{
    for (size_t i = 0; i < sizeof s->cache / sizeof s->cache[0] && s->cache[i].sql; i++)
        if (s->cache[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return;
        }
    sqlite3_finalize(st);
}

/* Steps a statement that must finish with no row (INSERT, UPDATE without RETURNING). */
static ifpp_err store_step_done(store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? IFPP_OK : store_fail(s, rc, what);
}

/* After a row loop: SQLITE_DONE is the only good end. */
static ifpp_err store_loop_end(store *s, int rc, ifpp_err e, const char *what)
{
    if (e != IFPP_OK)
        return e;
    return rc == SQLITE_DONE ? IFPP_OK : store_fail(s, rc, what);
}

void store_set_busy_timeout(store *s, int ms)
{
    if (!store_mine(s) || ms < 0)
        return;
    s->busy_ms = ms;
    sqlite3_busy_timeout(s->db, ms);
}

static ifpp_err store_group_run(store *s, ifpp_err (*fn)(store *s, void *arg), void *arg);

ifpp_err store_transaction(store *s, ifpp_err (*fn)(store *s, void *arg), void *arg)
{
    STORE_CHECK(s);
    if (!fn)
        return IFPP_E_ARG;
    if (s->readonly) {
        snprintf(store_msg, sizeof store_msg, "store %s was opened read-only: no change is possible", s->path);
        return IFPP_E_ARG;
    }
    if (s->group && s->depth == 0)
        return store_group_run(s, fn, arg); /* one durable commit shared with the other waiting threads */
    /* Inside our own outer transaction (an import of a whole bundle): the outer one commits or rolls back. */
    if (s->depth > 0) {
        s->depth++;
        ifpp_err e = fn(s, arg);
        s->depth--;
        if (e != IFPP_OK)
            s->inner_failed = true;
        return e;
    }
    ifpp_err e = store_exec(s, "BEGIN IMMEDIATE", "taking the write lock");
    if (e != IFPP_OK)
        return e;
    s->depth = 1;
    s->inner_failed = false;
    e = fn(s, arg);
    s->depth = 0;
    if (e == IFPP_OK && s->inner_failed) {
        snprintf(store_msg, sizeof store_msg, "store %s: a step inside the transaction failed; rolled back", s->path);
        e = IFPP_E_INTERNAL;
    }
    if (e == IFPP_OK)
        e = bppfile_before_commit(s); /* the BPP bytes on disk before the rows that point at them */
    if (e == IFPP_OK && (e = store_exec(s, "COMMIT", "committing")) == IFPP_OK) {
        bppfile_after_commit(s);
        s->commits++;
        return IFPP_OK;
    }
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); /* keeps store_msg: the cause is what matters */
    bppfile_after_rollback(s);
    s->inner_failed = false;
    return e;
}

ifpp_err store_read(store *s, ifpp_err (*fn)(store *s, void *arg), void *arg)
{
    STORE_CHECK(s);
    if (!fn)
        return IFPP_E_ARG;
    if (s->depth > 0)
        return fn(s, arg);
    ifpp_err e = store_exec(s, "BEGIN DEFERRED", "starting a read");
    if (e != IFPP_OK)
        return e;
    s->depth = 1;
    e = fn(s, arg);
    s->depth = 0;
    if (e == IFPP_OK)
        e = store_exec(s, "COMMIT", "ending a read");
    if (e != IFPP_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return e;
}

static ifpp_err store_fetch_blob(store *s, const char *sql, const void *key, int key_len, bool text, uint8_t **out,
                                 size_t *n);

/* ---- the audit chain ---------------------------------------------------------------------- */

/* One audit entry's fields (form 2); NULL fields are absent, which the hash tells from empty. */
typedef struct {
    const char *event;
    const uint8_t *txid, *eid;
    size_t txid_len;
    const char *from_state, *to_state;
    const store_actor *who;
    const char *object;
} audit_fields;

/* Form 1 (before schema 3): the text form, kept so old rows still verify. */
static void audit_hash_v1(const uint8_t prev[32], sqlite3_int64 id, const char *at, const char *event,
                          const char *detail, uint8_t out[32])
{
    crypto_sha256_ctx c = {0};
    uint8_t idb[8];
    for (int i = 0; i < 8; i++)
        idb[i] = (uint8_t)((uint64_t)id >> (56 - 8 * i));
    crypto_sha256_init(&c);
    crypto_sha256_update(&c, prev, 32);
    crypto_sha256_update(&c, idb, 8);
    crypto_sha256_update(&c, at, strlen(at) + 1); /* the NULs separate the fields */
    crypto_sha256_update(&c, event, strlen(event) + 1);
    crypto_sha256_update(&c, detail, strlen(detail));
    crypto_sha256_final(&c, out);
}

/* A field for the form-2 hash: presence byte, 4-byte big-endian length, the bytes. */
static void audit_hash_field(crypto_sha256_ctx *c, const void *v, size_t n)
{
    uint8_t h[5] = {v ? 1 : 0, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    if (!v)
        n = h[1] = h[2] = h[3] = h[4] = 0;
    crypto_sha256_update(c, h, 5);
    if (n)
        crypto_sha256_update(c, v, n);
}

#define AUDIT_N_FIELDS 11

/* Form 2: every field length-prefixed, so no two different entries hash the same input. */
static void audit_hash_v2(const uint8_t prev[32], sqlite3_int64 id, const void *const f[AUDIT_N_FIELDS],
                          const size_t flen[AUDIT_N_FIELDS], uint8_t out[32])
{
    static const char domain[] = "ifpp-audit-2";
    crypto_sha256_ctx c = {0};
    uint8_t idb[8];
    for (int i = 0; i < 8; i++)
        idb[i] = (uint8_t)((uint64_t)id >> (56 - 8 * i));
    crypto_sha256_init(&c);
    crypto_sha256_update(&c, domain, sizeof domain);
    crypto_sha256_update(&c, prev, 32);
    crypto_sha256_update(&c, idb, 8);
    for (int i = 0; i < AUDIT_N_FIELDS; i++)
        audit_hash_field(&c, f[i], flen[i]);
    crypto_sha256_final(&c, out);
}

#define AUDIT_V2_COLUMNS "at, event, txid, eid, from_state, to_state, session, slot, dut_serial, reason, object"

/* Appends one audit row chained to the last; call inside a transaction. */
static ifpp_err audit_append(store *s, const audit_fields *a)
{
    uint8_t prev[32] = {0}, hash[32];
    sqlite3_int64 id = 1;
    char at[32];
    sqlite3_stmt *st;
    ifpp_err e = store_prepare_cached(s, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", &st);
    if (e != IFPP_OK)
        return e;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0) + 1;
        if (sqlite3_column_bytes(st, 1) == 32)
            memcpy(prev, sqlite3_column_blob(st, 1), 32);
    } else if (rc != SQLITE_DONE)
        e = store_fail(s, rc, "reading the audit log's last entry");
    store_release(s, st);
    if (e != IFPP_OK)
        return e;
    store_now(at);
    const store_actor *w = a->who;
    const void *f[AUDIT_N_FIELDS] = {
        at, a->event, a->txid, a->eid, a->from_state, a->to_state, w ? w->session : NULL, w ? w->slot : NULL,
        w ? w->dut_serial : NULL, w ? w->reason : NULL, a->object,
    };
    size_t flen[AUDIT_N_FIELDS];
    for (int i = 0; i < AUDIT_N_FIELDS; i++)
        flen[i] = i == 2 ? (a->txid ? a->txid_len : 0) : i == 3 ? (a->eid ? 16 : 0) : f[i] ? strlen(f[i]) : 0;
    audit_hash_v2(prev, id, f, flen, hash);
    if ((e = store_prepare_cached(s, "INSERT INTO audit (id, detail, prev, hash, form, " AUDIT_V2_COLUMNS
                              ") VALUES (?, '', ?, ?, 2, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &st)) != IFPP_OK)
        return e;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_blob(st, 2, prev, 32, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 3, hash, 32, SQLITE_TRANSIENT);
    for (int i = 0; i < AUDIT_N_FIELDS; i++) {
        if (!f[i])
            sqlite3_bind_null(st, 4 + i);
        else if (i == 2 || i == 3)
            sqlite3_bind_blob(st, 4 + i, f[i], (int)flen[i], SQLITE_TRANSIENT);
        else
            sqlite3_bind_text(st, 4 + i, f[i], (int)flen[i], SQLITE_TRANSIENT);
    }
    e = store_step_done(s, st, "appending to the audit log");
    store_release(s, st);
    return e;
}

/* ---- walking the chain: links, the anchor, and the BPP states replayed from it ---------------- */

typedef struct {
    uint8_t txid[16];
    uint8_t txid_len;
    uint8_t state; /* bpp_state */
    size_t order;  /* position in the log, so the last move of a BPP wins */
} replay_move;

typedef struct {
    replay_move *v;
    size_t n, cap;
} replay_log;

static ifpp_err replay_add(replay_log *r, const uint8_t *txid, size_t len, bpp_state to)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        replay_move *g = realloc(r->v, cap * sizeof *g);
        if (!g)
            return IFPP_E_NOMEM;
        r->v = g;
        r->cap = cap;
    }
    replay_move *m = &r->v[r->n];
    memset(m, 0, sizeof *m);
    memcpy(m->txid, txid, len);
    m->txid_len = (uint8_t)len;
    m->state = (uint8_t)to;
    m->order = r->n++;
    return IFPP_OK;
}

static int replay_cmp(const void *a, const void *b)
{
    const replay_move *x = a, *y = b;
    if (x->txid_len != y->txid_len)
        return x->txid_len < y->txid_len ? -1 : 1;
    int c = memcmp(x->txid, y->txid, x->txid_len);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The BPP move a form-1 (text) entry describes: "txid=<hex> eid=<hex> [from] -> to ...". */
static bool audit_parse_v1(const char *event, const char *detail, uint8_t txid[16], size_t *txid_len, bpp_state *to)
{
    char tx[33], a[16], b[16];
    if (!event || !detail || (strcmp(event, "bpp_added") != 0 && strcmp(event, "bpp_state") != 0))
        return false;
    if (sscanf(detail, "txid=%32[0-9a-fA-F] eid=%*32[0-9a-fA-F] %15s %15s", tx, a, b) != 3)
        return false;
    const char *to_name = strcmp(a, "->") == 0 ? b : NULL;
    if (!to_name && sscanf(detail, "txid=%*32[0-9a-fA-F] eid=%*32[0-9a-fA-F] %*15s -> %15s", b) == 1)
        to_name = b;
    return to_name && bpp_state_parse(to_name, to) && hex_decode(tx, txid, 16, txid_len) == IFPP_OK && *txid_len > 0;
}

/* Walks the chain; fills log with every BPP move if asked; checks the anchor if given. */
static ifpp_err audit_walk(store *s, const store_anchor *anchor, replay_log *log, store_anchor *head, char *why,
                           size_t why_len)
{
    uint8_t prev[32] = {0}, want[32];
    sqlite3_int64 expect_id = 1;
    bool anchor_seen = false, seen_v2 = false;
    ifpp_err e;
    sqlite3_stmt *st;
    int rc;
    if ((e = store_prepare(s, "SELECT id, form, detail, prev, hash, " AUDIT_V2_COLUMNS " FROM audit ORDER BY id",
                           &st)) != IFPP_OK) {
        err_why(why, why_len, "%s", store_msg);
        return e;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 id = sqlite3_column_int64(st, 0);
        int form = sqlite3_column_int(st, 1);
        if (id != expect_id) {
            err_why(why, why_len, "audit log: entry %lld missing (found %lld next)", (long long)expect_id, (long long)id);
            e = IFPP_E_SIGNATURE;
            break;
        }
        if (sqlite3_column_bytes(st, 3) != 32 || memcmp(sqlite3_column_blob(st, 3), prev, 32) != 0) {
            err_why(why, why_len, "audit log: entry %lld does not chain to entry %lld", (long long)id, (long long)id - 1);
            e = IFPP_E_SIGNATURE;
            break;
        }
        const char *event = (const char *)sqlite3_column_text(st, 6);
        uint8_t txid[16];
        size_t txid_len = 0;
        bpp_state to = BPP_STATE__COUNT;
        bool is_move = false;
        if (form == 1 && !seen_v2) {
            const char *at = (const char *)sqlite3_column_text(st, 5);
            const char *detail = (const char *)sqlite3_column_text(st, 2);
            audit_hash_v1(prev, id, at ? at : "", event ? event : "", detail ? detail : "", want);
            is_move = audit_parse_v1(event, detail, txid, &txid_len, &to);
        } else if (form == 2) {
            const void *f[AUDIT_N_FIELDS];
            size_t flen[AUDIT_N_FIELDS];
            for (int i = 0; i < AUDIT_N_FIELDS; i++) {
                int col = 5 + i;
                bool null = sqlite3_column_type(st, col) == SQLITE_NULL;
                f[i] = null ? NULL
                       : (i == 2 || i == 3) ? sqlite3_column_blob(st, col)
                                            : (const void *)sqlite3_column_text(st, col);
                flen[i] = null ? 0 : (size_t)sqlite3_column_bytes(st, col);
                if (!null && !f[i])
                    f[i] = ""; /* an empty blob */
            }
            audit_hash_v2(prev, id, f, flen, want);
            seen_v2 = true;
            const char *to_name = (const char *)sqlite3_column_text(st, 10);
            if (event && (strcmp(event, "bpp_added") == 0 || strcmp(event, "bpp_state") == 0) && f[2] &&
                flen[2] >= 1 && flen[2] <= 16 && bpp_state_parse(to_name, &to)) {
                memcpy(txid, f[2], flen[2]);
                txid_len = flen[2];
                is_move = true;
            }
        } else {
            err_why(why, why_len, "audit log: entry %lld has form %d where it cannot be", (long long)id, form);
            e = IFPP_E_SIGNATURE;
            break;
        }
        if (sqlite3_column_bytes(st, 4) != 32 || memcmp(sqlite3_column_blob(st, 4), want, 32) != 0) {
            err_why(why, why_len, "audit log: entry %lld was altered (hash mismatch)", (long long)id);
            e = IFPP_E_SIGNATURE;
            break;
        }
        if (anchor && (uint64_t)id == anchor->entry) {
            anchor_seen = true;
            if (!crypto_equal_ct(want, anchor->hash, 32)) {
                err_why(why, why_len, "audit log: entry %lld differs from the anchor exported in a signed bundle "
                        "(the log was rewritten)", (long long)id);
                e = IFPP_E_SIGNATURE;
                break;
            }
        }
        if (is_move && log && (e = replay_add(log, txid, txid_len, to)) != IFPP_OK)
            break;
        memcpy(prev, want, 32);
        expect_id++;
    }
    if (e == IFPP_OK && rc != SQLITE_DONE) {
        e = store_fail(s, rc, "reading the audit log");
        err_why(why, why_len, "audit log not read to its end: %s", store_msg);
    }
    sqlite3_finalize(st);
    if (e == IFPP_OK && anchor && anchor->entry > 0 && !anchor_seen) {
        err_why(why, why_len, "audit log: ends at entry %lld but a signed bundle anchored entry %llu: entries were "
                "deleted", (long long)expect_id - 1, (unsigned long long)anchor->entry);
        e = IFPP_E_SIGNATURE;
    }
    if (head) {
        head->entry = (uint64_t)(expect_id - 1);
        memcpy(head->hash, prev, 32);
    }
    return e;
}

ifpp_err store_audit_verify(store *s, size_t *entries, char *why, size_t why_len)
{
    STORE_CHECK(s);
    store_anchor head;
    ifpp_err e = audit_walk(s, NULL, NULL, &head, why, why_len);
    if (entries)
        *entries = e == IFPP_OK ? (size_t)head.entry : 0;
    return e;
}

ifpp_err store_audit_head(store *s, store_anchor *head)
{
    STORE_CHECK(s);
    if (!head)
        return IFPP_E_ARG;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", &st);
    if (e != IFPP_OK)
        return e;
    memset(head, 0, sizeof *head);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32) {
        head->entry = (uint64_t)sqlite3_column_int64(st, 0);
        memcpy(head->hash, sqlite3_column_blob(st, 1), 32);
    } else if (rc == SQLITE_ROW) {
        e = store_fail(s, SQLITE_CORRUPT, "reading the audit head");
    } else if (rc != SQLITE_DONE) {
        e = store_fail(s, rc, "reading the audit head");
    }
    sqlite3_finalize(st);
    return e;
}

/* Compares every BPP row's state with the state its audit entries replay to. */
static ifpp_err audit_compare_bpps(store *s, replay_log *log, char *why, size_t why_len)
{
    if (log->n) /* qsort(NULL, 0) is undefined: a log with no BPP move yet */
        qsort(log->v, log->n, sizeof *log->v, replay_cmp);
    size_t u = 0; /* keep the last move per BPP */
    for (size_t i = 0; i < log->n; i++) {
        if (u && log->v[u - 1].txid_len == log->v[i].txid_len &&
            memcmp(log->v[u - 1].txid, log->v[i].txid, log->v[i].txid_len) == 0)
            log->v[u - 1] = log->v[i];
        else
            log->v[u++] = log->v[i];
    }
    log->n = u;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT txid, state FROM bpp", &st);
    if (e != IFPP_OK) {
        err_why(why, why_len, "%s", store_msg);
        return e;
    }
    size_t rows = 0;
    int rc;
    char tx[33];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        replay_move key;
        memset(&key, 0, sizeof key);
        size_t tl = (size_t)sqlite3_column_bytes(st, 0);
        bpp_state state;
        if (tl == 0 || tl > 16 || !bpp_state_parse((const char *)sqlite3_column_text(st, 1), &state)) {
            err_why(why, why_len, "BPP table: a row with a malformed transaction id or state");
            e = IFPP_E_SIGNATURE;
            break;
        }
        memcpy(key.txid, sqlite3_column_blob(st, 0), tl);
        key.txid_len = (uint8_t)tl;
        hex_encode(key.txid, tl, tx, sizeof tx);
        replay_move *m = NULL;
        size_t lo = 0, hi = log->n;
        while (lo < hi) { /* binary search by txid (order ignored: one entry per txid now) */
            size_t mid = (lo + hi) / 2;
            int c = log->v[mid].txid_len != key.txid_len ? (log->v[mid].txid_len < key.txid_len ? -1 : 1)
                                                        : memcmp(log->v[mid].txid, key.txid, tl);
            if (c == 0) {
                m = &log->v[mid];
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (!m) {
            err_why(why, why_len, "BPP %s is in the table but the audit log never added it", tx);
            e = IFPP_E_SIGNATURE;
            break;
        }
        if (m->state != state) {
            err_why(why, why_len, "BPP %s is %s in the table but the audit log says %s (edited outside the station)",
                    tx, state_names[state], state_names[m->state]);
            e = IFPP_E_SIGNATURE;
            break;
        }
        rows++;
    }
    e = store_loop_end(s, rc, e, "reading the BPP table");
    if (e == IFPP_E_IO || e == IFPP_E_BUSY)
        err_why(why, why_len, "%s", store_msg);
    sqlite3_finalize(st);
    if (e == IFPP_OK && rows != log->n) {
        err_why(why, why_len, "the audit log added %zu BPPs but the table holds %zu (rows deleted)", log->n, rows);
        e = IFPP_E_SIGNATURE;
    }
    return e;
}

typedef struct {
    const store_anchor *anchor;
    size_t *entries;
    char *why;
    size_t why_len;
} check_arg;

static ifpp_err store_audit_check_read(store *s, void *arg)
{
    check_arg *a = arg;
    replay_log log = {0};
    store_anchor head;
    ifpp_err e = audit_walk(s, a->anchor, &log, &head, a->why, a->why_len);
    if (e == IFPP_OK)
        e = audit_compare_bpps(s, &log, a->why, a->why_len);
    if (e == IFPP_OK && a->entries)
        *a->entries = (size_t)head.entry;
    free(log.v);
    return e;
}

ifpp_err store_audit_check(store *s, const store_anchor *anchor, size_t *entries, char *why, size_t why_len)
{
    check_arg a = {.anchor = anchor, .entries = entries, .why = why, .why_len = why_len};
    if (entries)
        *entries = 0;
    return store_read(s, store_audit_check_read, &a); /* one snapshot: the log and the table agree in time */
}

/* ---- open, migrate ------------------------------------------------------------------------- */

/* PRAGMA user_version, or an error (a damaged or foreign file). */
static ifpp_err store_read_version(store *s, int *v)
{
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "PRAGMA user_version", &st);
    if (e != IFPP_OK)
        return e;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    else
        e = store_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "reading the schema version");
    sqlite3_finalize(st);
    return e;
}

int store_schema_version(store *s)
{
    int v = -1;
    if (!store_mine(s) || store_read_version(s, &v) != IFPP_OK)
        return -1;
    return v;
}

/* Runs every migration the file lacks; inside the write lock, so a second opener finds them done. */
static ifpp_err store_migrate_tx(store *s, void *arg)
{
    int *from = arg, v;
    ifpp_err e = store_read_version(s, &v); /* again, under the lock: another process may have done it */
    if (e != IFPP_OK)
        return e;
    if (v < 0 || v > STORE_SCHEMA_VERSION) {
        snprintf(store_msg, sizeof store_msg, "store %s: schema version %d is not one this program knows (1..%d)",
                 s->path, v, STORE_SCHEMA_VERSION);
        return IFPP_E_RANGE;
    }
    *from = v;
    for (; v < STORE_SCHEMA_VERSION; v++) {
        char pragma[64], what[64];
        snprintf(what, sizeof what, "migration to schema %d", v + 1);
        if ((e = store_exec(s, migrations[v], what)) != IFPP_OK)
            return e;
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if ((e = store_exec(s, pragma, what)) != IFPP_OK)
            return e;
    }
    /* the audit rows last: they are in the newest form, whatever form the file started in */
    for (int i = *from; i < STORE_SCHEMA_VERSION && e == IFPP_OK; i++) {
        char detail[48];
        snprintf(detail, sizeof detail, "schema %d -> %d", i, i + 1);
        audit_fields a = {.event = "migrate", .object = detail};
        e = audit_append(s, &a);
    }
    return e;
}

/* Why a path cannot hold a store, with errno and the path; IFPP_OK if it may. */
static ifpp_err store_path_check(const char *path, bool must_exist, bool writable, char *why, size_t why_len)
{
    struct stat st;
    if (strcmp(path, ":memory:") == 0)
        return must_exist ? IFPP_E_ARG : IFPP_OK; /* SQLite's private in-memory database (tests, fuzzing) */
    if (stat(path, &st) != 0) {
        int err = errno;
        if (err != ENOENT || must_exist) {
            err_why(why, why_len, "store %s: %s%s", path, strerror(err),
                    err == ENOENT ? " (no store there; a read-only command never creates one)" : "");
            return err == ENOENT ? IFPP_E_NOT_FOUND : IFPP_E_IO;
        }
        /* a new store: its directory must exist and take a new file */
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        if (!slash)
            snprintf(dir, sizeof dir, ".");
        else if (slash == path)
            snprintf(dir, sizeof dir, "/");
        else
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            err = stat(dir, &st) != 0 ? errno : ENOTDIR;
            err_why(why, why_len, "cannot create store %s: directory %s: %s", path, dir, strerror(err));
            return IFPP_E_IO;
        }
        if (access(dir, W_OK | X_OK) != 0) {
            err_why(why, why_len, "cannot create store %s in %s: %s", path, dir, strerror(errno));
            return IFPP_E_IO;
        }
        return IFPP_OK;
    }
    if (S_ISDIR(st.st_mode)) {
        err_why(why, why_len, "store %s is a directory, not a store file", path);
        return IFPP_E_ARG;
    }
    if (!S_ISREG(st.st_mode)) {
        err_why(why, why_len, "store %s is not a regular file", path);
        return IFPP_E_ARG;
    }
    if (access(path, writable ? R_OK | W_OK : R_OK) != 0) {
        err_why(why, why_len, "store %s: cannot open for %s: %s%s", path, writable ? "writing" : "reading",
                strerror(errno), writable && errno == EROFS ? " (read-only commands open it read-only)" : "");
        return IFPP_E_IO;
    }
    return IFPP_OK;
}

/* Allocates the handle and opens the connection with flags. */
static ifpp_err store_connect(const char *path, const char *uri, int flags, store **out, char *why, size_t why_len)
{
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return IFPP_E_NOMEM;
    }
    s->owner = pthread_self();
    int rc = sqlite3_open_v2(uri ? uri : path, &s->db, flags | SQLITE_OPEN_FULLMUTEX | (uri ? SQLITE_OPEN_URI : 0), NULL);
    if (rc != SQLITE_OK) {
        err_why(why, why_len, "cannot open store %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        store_close(s);
        return IFPP_E_IO;
    }
    sqlite3_extended_result_codes(s->db, 1);
    s->busy_ms = STORE_BUSY_MS;
    sqlite3_busy_timeout(s->db, s->busy_ms);
    *out = s;
    return IFPP_OK;
}

/* PRAGMA quick_check on a store small enough for it to be cheap; a damaged page fails here. */
static ifpp_err store_quick_check(store *s, char *why, size_t why_len)
{
    struct stat st;
    if (stat(s->path, &st) != 0 || st.st_size > STORE_QUICK_CHECK_MAX)
        return IFPP_OK; /* large: every query still checks its own result */
    return store_check_integrity(s, why, why_len);
}

ifpp_err store_check_integrity(store *s, char *why, size_t why_len)
{
    STORE_CHECK(s);
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "PRAGMA quick_check", &st);
    int rc = SQLITE_DONE;
    if (e == IFPP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (!r || strcmp(r, "ok") != 0) {
            snprintf(store_msg, sizeof store_msg, "store %s is damaged: %s", s->path, r ? r : "(no answer)");
            for (char *p = store_msg; *p; p++)
                if (*p == '\n' || *p == '\r')
                    *p = ' '; /* quick_check answers on several lines; the message is one */
            e = IFPP_E_IO;
        }
    } else if (e == IFPP_OK) {
        e = store_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "checking its integrity");
    }
    sqlite3_finalize(st);
    if (e != IFPP_OK)
        err_why(why, why_len, "%s", store_msg);
    return e;
}

/*
 * Switches to WAL. On a new file two openers can each hold a read lock while asking for the
 * exclusive one the switch needs; the busy handler cannot break that, so each try is short and
 * both back off and retry (bounded by the usual busy time).
 */
static ifpp_err store_wal(store *s)
{
    ifpp_err e = IFPP_OK;
    int tries = s->busy_ms / 20 + 1;
    sqlite3_busy_timeout(s->db, 10);
    for (int i = 0; i < tries; i++) {
        if ((e = store_exec(s, "PRAGMA journal_mode = WAL", "switching to WAL")) != IFPP_E_BUSY)
            break;
        struct timespec ts = {0, (long)(5 + (i * 7919 + (long)(uintptr_t)s) % 10) * 1000000L};
        nanosleep(&ts, NULL);
    }
    sqlite3_busy_timeout(s->db, s->busy_ms);
    return e;
}

ifpp_err store_open(const char *path, store **out, char *why, size_t why_len)
{
    store *s = NULL;
    ifpp_err e;
    int v = -1, from = 0;
    if (!path || !*path || !out) {
        err_why(why, why_len, "no store path given");
        return IFPP_E_ARG;
    }
    *out = NULL;
    if ((e = store_path_check(path, false, true, why, why_len)) != IFPP_OK ||
        (e = store_connect(path, NULL, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &s, why, why_len)) != IFPP_OK)
        return e;
    /* Durability before speed: every commit is on disk when it returns (the exactly-once promise). */
    if ((e = store_wal(s)) != IFPP_OK ||
        (e = store_exec(s, "PRAGMA synchronous = FULL", "setting synchronous=FULL")) != IFPP_OK ||
        (e = store_exec(s, "PRAGMA foreign_keys = ON", "enabling foreign keys")) != IFPP_OK ||
        (e = store_read_version(s, &v)) != IFPP_OK) {
        err_why(why, why_len, "%s", store_msg);
        store_close(s);
        return e;
    }
    if (v < 0 || v > STORE_SCHEMA_VERSION) {
        if (v > STORE_SCHEMA_VERSION)
            err_why(why, why_len, "store %s: schema version %d is newer than this program knows (%d)", path, v,
                    STORE_SCHEMA_VERSION);
        else
            err_why(why, why_len, "store %s: schema version %d: the file is not a station store or is damaged", path, v);
        store_close(s);
        return IFPP_E_RANGE;
    }
    if (v > 0 && (e = store_quick_check(s, why, why_len)) != IFPP_OK) {
        store_close(s);
        return e;
    }
    if (v < STORE_SCHEMA_VERSION && (e = store_transaction(s, store_migrate_tx, &from)) != IFPP_OK) {
        err_why(why, why_len, "%s", store_msg);
        store_close(s);
        return e;
    }
    *out = s;
    return IFPP_OK;
}

ifpp_err store_open_readonly(const char *path, store **out, char *why, size_t why_len)
{
    store *s = NULL;
    ifpp_err e;
    int v = -1;
    if (!path || !*path || !out) {
        err_why(why, why_len, "no store path given");
        return IFPP_E_ARG;
    }
    *out = NULL;
    if ((e = store_path_check(path, true, false, why, why_len)) != IFPP_OK ||
        (e = store_connect(path, NULL, SQLITE_OPEN_READONLY, &s, why, why_len)) != IFPP_OK)
        return e;
    s->readonly = true;
    e = store_read_version(s, &v);
    if (e != IFPP_OK && (e == IFPP_E_IO || e == IFPP_E_BUSY)) {
        /*
         * A WAL store on a read-only mount: SQLite cannot create the -shm file. Nobody can write
         * there either, so the file is immutable for as long as we read it.
         */
        char dir[PATH_MAX], *uri = NULL;
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *(slash == dir ? slash + 1 : slash) = '\0';
        else
            snprintf(dir, sizeof dir, ".");
        if (access(dir, W_OK) != 0 && errno == EROFS && (uri = sqlite3_mprintf("file:%s?immutable=1", path))) {
            store_close(s);
            s = NULL;
            e = store_connect(path, uri, SQLITE_OPEN_READONLY, &s, why, why_len);
            sqlite3_free(uri);
            if (e != IFPP_OK)
                return e;
            s->readonly = true;
            e = store_read_version(s, &v);
        }
    }
    if (e == IFPP_OK && (v <= 0 || v > STORE_SCHEMA_VERSION)) {
        if (v > STORE_SCHEMA_VERSION)
            snprintf(store_msg, sizeof store_msg, "store %s: schema version %d is newer than this program knows (%d)",
                     path, v, STORE_SCHEMA_VERSION);
        else
            snprintf(store_msg, sizeof store_msg, "store %s: schema version %d: the file is not a station store or is "
                     "damaged", path, v);
        e = IFPP_E_RANGE;
    } else if (e == IFPP_OK && v < STORE_SCHEMA_VERSION) {
        snprintf(store_msg, sizeof store_msg, "store %s is at schema %d, this program needs %d: open it once for "
                 "writing to migrate it", path, v, STORE_SCHEMA_VERSION);
        e = IFPP_E_RANGE;
    }
    if (e == IFPP_OK)
        e = store_quick_check(s, NULL, 0);
    if (e != IFPP_OK) {
        err_why(why, why_len, "%s", store_msg);
        store_close(s);
        return e;
    }
    *out = s;
    return IFPP_OK;
}

bool store_owns_path(const store *s, const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", STORE_BPP_SUFFIX};
    struct stat target, own;
    if (!s || !path || stat(path, &target) != 0)
        return false; /* a file that does not exist yet cannot be one of ours */
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s%s", s->path, suffixes[i]) >= (int)sizeof p)
            continue;
        if (stat(p, &own) == 0 && own.st_dev == target.st_dev && own.st_ino == target.st_ino)
            return true;
    }
    return false;
}

void store_close(store *s)
{
    if (!s)
        return;
    bppfile_close(s);
    for (size_t i = 0; i < sizeof s->cache / sizeof s->cache[0]; i++)
        sqlite3_finalize(s->cache[i].st);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

/* ---- eUICCs and One-time Keys ----------------------------------------------------------------- */

typedef struct {
    const uint8_t *eid, *cert, *info2, *otpk, *proof;
    size_t cert_len, info2_len;
} euicc_arg;

static ifpp_err store_add_euicc_tx(store *s, void *arg)
{
    euicc_arg *a = arg;
    char at[32];
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT cert, info2 FROM euicc WHERE eid = ?", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, a->eid, 16, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        bool same = (size_t)sqlite3_column_bytes(st, 0) == a->cert_len &&
                    memcmp(sqlite3_column_blob(st, 0), a->cert, a->cert_len) == 0 &&
                    (size_t)sqlite3_column_bytes(st, 1) == a->info2_len &&
                    memcmp(sqlite3_column_blob(st, 1), a->info2, a->info2_len) == 0;
        sqlite3_finalize(st);
        if (!same)
            snprintf(store_msg, sizeof store_msg, "eUICC already known with other data");
        return same ? IFPP_OK : IFPP_E_ARG;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, "looking up an eUICC");
    store_now(at);
    if ((e = store_prepare(s, "INSERT INTO euicc (eid, cert, info2, added_at) VALUES (?, ?, ?, ?)", &st)) != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, a->eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->cert, (int)a->cert_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, a->info2, (int)a->info2_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, at, -1, SQLITE_STATIC);
    e = store_step_done(s, st, "adding an eUICC");
    sqlite3_finalize(st);
    if (e != IFPP_OK)
        return e;
    audit_fields f = {.event = "euicc_added", .eid = a->eid};
    return audit_append(s, &f);
}

ifpp_err store_add_euicc(store *s, const uint8_t eid[16], const uint8_t *cert, size_t cert_len, const uint8_t *info2,
                         size_t info2_len)
{
    if (!s || !eid || !cert || !info2 || cert_len > INT32_MAX || info2_len > INT32_MAX)
        return IFPP_E_ARG;
    euicc_arg a = {.eid = eid, .cert = cert, .cert_len = cert_len, .info2 = info2, .info2_len = info2_len};
    return store_transaction(s, store_add_euicc_tx, &a);
}

static ifpp_err store_add_otk_tx(store *s, void *arg)
{
    euicc_arg *a = arg;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "INSERT OR IGNORE INTO otk (eid, otpk, proof) VALUES (?, ?, ?)", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, a->eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->otpk, 65, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, a->proof, 64, SQLITE_STATIC);
    e = store_step_done(s, st, "adding a One-time Key"); /* an unknown EID fails the foreign key */
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_add_otk(store *s, const uint8_t eid[16], const uint8_t otpk[65], const uint8_t proof[64])
{
    if (!s || !eid || !otpk || !proof)
        return IFPP_E_ARG;
    euicc_arg a = {.eid = eid, .otpk = otpk, .proof = proof};
    return store_transaction(s, store_add_otk_tx, &a);
}

ifpp_err store_find_otk(store *s, const uint8_t eid[16], const uint8_t otpk[65], bool *found)
{
    STORE_CHECK(s);
    if (!eid || !otpk || !found)
        return IFPP_E_ARG;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare_cached(s, "SELECT 1 FROM otk WHERE eid = ? AND otpk = ?", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, otpk, 65, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        e = store_fail(s, rc, "looking up a One-time Key");
    store_release(s, st);
    return e;
}

bool store_has_otk(store *s, const uint8_t eid[16], const uint8_t otpk[65])
{
    bool found = false;
    return store_find_otk(s, eid, otpk, &found) == IFPP_OK && found;
}

/* ---- BPPs ------------------------------------------------------------------------------- */

typedef struct {
    const store_bpp *b;
    bool *duplicate;
    char *why;
    size_t why_len;
} add_bpp_arg;

/* Is b already in the store (*duplicate), or does its transaction id or One-time Key carry another BPP (GENS08)? */
static ifpp_err store_bpp_conflict(store *s, const store_bpp *b, bool *duplicate, char *why, size_t why_len)
{
    sqlite3_stmt *st;
    ifpp_err e = store_prepare_cached(s, "SELECT txid, bpp_hash FROM bpp WHERE txid = ? OR (eid = ? AND otpk = ?)", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, b->transaction_id, (int)b->transaction_id_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, b->eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, b->otpk, 65, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *duplicate = false;
    if (rc == SQLITE_ROW) {
        bool same = (size_t)sqlite3_column_bytes(st, 0) == b->transaction_id_len &&
                    memcmp(sqlite3_column_blob(st, 0), b->transaction_id, b->transaction_id_len) == 0 &&
                    sqlite3_column_bytes(st, 1) == 32 && memcmp(sqlite3_column_blob(st, 1), b->bpp_hash, 32) == 0;
        store_release(s, st);
        if (same) {
            *duplicate = true;
            return IFPP_OK;
        }
        char tx[33];
        hex_encode(b->transaction_id, b->transaction_id_len, tx, sizeof tx);
        err_why(why, why_len,
                "BPP %s conflicts with one already in the store (same transaction id, or a second BPP for the "
                "same One-time Key: GENS08)", tx);
        return IFPP_E_ARG;
    }
    store_release(s, st);
    if (rc != SQLITE_DONE) {
        e = store_fail(s, rc, "looking up a BPP");
        err_why(why, why_len, "%s", store_msg);
        return e;
    }
    return IFPP_OK;
}

/* The row of a BPP whose bytes are at (off, b->bpp_len) in the data file with SHA-256 sha, and its audit entry. */
static ifpp_err store_bpp_insert(store *s, const store_bpp *b, uint64_t off, const uint8_t sha[32], char *why,
                                 size_t why_len)
{
    char at[32];
    sqlite3_stmt *st;
    store_now(at);
    ifpp_err e = store_prepare_cached(s, "INSERT INTO bpp (txid, eid, otpk, iccid, profile_type, bpp_hash, bpp, vault_id,"
                                         " state, updated_at, data_off, data_len, data_sha256)"
                                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'available', ?, ?, ?, ?)", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, b->transaction_id, (int)b->transaction_id_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, b->eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, b->otpk, 65, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, b->iccid, 10, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, b->profile_type, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, b->bpp_hash, 32, SQLITE_STATIC);
    sqlite3_bind_zeroblob(st, 7, 0); /* not NULL (schema 1); the bytes are in the data file */
    sqlite3_bind_text(st, 8, b->vault_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, at, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)off);
    sqlite3_bind_int64(st, 11, (sqlite3_int64)b->bpp_len);
    sqlite3_bind_blob(st, 12, sha, 32, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    store_release(s, st);
    if ((rc & 0xFF) == SQLITE_CONSTRAINT) {
        err_why(why, why_len, "BPP for an unknown eUICC or One-time Key: %s", sqlite3_errmsg(s->db));
        return IFPP_E_ARG;
    }
    if (rc != SQLITE_DONE) {
        e = store_fail(s, rc, "adding a BPP");
        err_why(why, why_len, "%s", store_msg);
        return e;
    }
    audit_fields f = {.event = "bpp_added", .txid = b->transaction_id, .txid_len = b->transaction_id_len,
                      .eid = b->eid, .to_state = state_names[BPP_AVAILABLE], .object = b->vault_id};
    return audit_append(s, &f);
}

static ifpp_err store_add_bpp_tx(store *s, void *arg)
{
    add_bpp_arg *a = arg;
    const store_bpp *b = a->b;
    ifpp_err e = store_bpp_conflict(s, b, a->duplicate, a->why, a->why_len);
    if (e != IFPP_OK || *a->duplicate)
        return e;
    /* the bytes go to the data file (synced before COMMIT), the row says where and what they hash to */
    uint8_t sha[32];
    uint64_t off = 0;
    if (b->bpp_sha256)
        memcpy(sha, b->bpp_sha256, 32);
    else if ((e = crypto_sha256(b->bpp, b->bpp_len, sha)) != IFPP_OK)
        return e;
    if ((e = bppfile_append(s, b->bpp, b->bpp_len, &off)) != IFPP_OK) {
        err_why(a->why, a->why_len, "%s", store_msg);
        return e;
    }
    return store_bpp_insert(s, b, off, sha, a->why, a->why_len);
}

ifpp_err store_add_bpp(store *s, const store_bpp *b, bool *duplicate, char *why, size_t why_len)
{
    bool dup = false;
    if (!s || !b || !b->bpp || b->bpp_len == 0 || b->bpp_len > INT32_MAX || b->transaction_id_len == 0 ||
        b->transaction_id_len > 16)
        return IFPP_E_ARG;
    add_bpp_arg a = {.b = b, .duplicate = &dup, .why = why, .why_len = why_len};
    ifpp_err e = store_transaction(s, store_add_bpp_tx, &a);
    if (e != IFPP_OK && why && why_len && !*why)
        err_why(why, why_len, "%s", store_msg);
    if (duplicate)
        *duplicate = dup;
    return e;
}

static ifpp_err store_row_to_bpp(sqlite3_stmt *st, store_bpp *out)
{
    memset(out, 0, sizeof *out);
    size_t tl = (size_t)sqlite3_column_bytes(st, 0);
    if (tl == 0 || tl > 16 || sqlite3_column_bytes(st, 1) != 16 || sqlite3_column_bytes(st, 2) != 65 ||
        sqlite3_column_bytes(st, 3) != 10 || sqlite3_column_bytes(st, 5) != 32) {
        snprintf(store_msg, sizeof store_msg, "a BPP row is malformed (a field has the wrong size)");
        return IFPP_E_IO;
    }
    memcpy(out->transaction_id, sqlite3_column_blob(st, 0), tl);
    out->transaction_id_len = tl;
    memcpy(out->eid, sqlite3_column_blob(st, 1), 16);
    memcpy(out->otpk, sqlite3_column_blob(st, 2), 65);
    memcpy(out->iccid, sqlite3_column_blob(st, 3), 10);
    snprintf(out->profile_type, sizeof out->profile_type, "%s", (const char *)sqlite3_column_text(st, 4));
    memcpy(out->bpp_hash, sqlite3_column_blob(st, 5), 32);
    snprintf(out->vault_id, sizeof out->vault_id, "%s", (const char *)sqlite3_column_text(st, 6));
    out->bpp_len = (size_t)sqlite3_column_int64(st, 8);
    if (bpp_state_parse((const char *)sqlite3_column_text(st, 7), &out->state))
        return IFPP_OK;
    snprintf(store_msg, sizeof store_msg, "a BPP row has an unknown state");
    return IFPP_E_IO;
}

#define BPP_COLUMNS "txid, eid, otpk, iccid, profile_type, bpp_hash, vault_id, state, coalesce(data_len, length(bpp))"

/* The conditional move at the heart of exactly-once: only from the expected state. */
static ifpp_err store_move_row(store *s, const uint8_t *txid, size_t txid_len, bpp_state from, bpp_state to,
                               const store_actor *who)
{
    char at[32];
    if (!bpp_transition_allowed(from, to)) {
        snprintf(store_msg, sizeof store_msg, "a BPP cannot move from %s to %s", state_names[from], state_names[to]);
        return IFPP_E_ARG;
    }
    store_now(at);
    sqlite3_stmt *st;
    ifpp_err e = store_prepare_cached(s, "UPDATE bpp SET state = ?, session = coalesce(?, session),"
                                  " slot = coalesce(?, slot), dut_serial = coalesce(?, dut_serial),"
                                  " updated_at = ? WHERE txid = ? AND state = ? RETURNING eid", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, state_names[to], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, who ? who->session : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, who ? who->slot : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, who ? who->dut_serial : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, at, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, txid, (int)txid_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, state_names[from], -1, SQLITE_STATIC);
    uint8_t eid[16];
    int rc = sqlite3_step(st);
    bool moved = rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16;
    if (moved)
        memcpy(eid, sqlite3_column_blob(st, 0), 16);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    store_release(s, st);
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, "moving a BPP");
    if (!moved) {
        snprintf(store_msg, sizeof store_msg, "the BPP is not %s (any more): someone else moved it, or it never was",
                 state_names[from]);
        return IFPP_E_RANGE;
    }
    audit_fields f = {.event = "bpp_state", .txid = txid, .txid_len = txid_len, .eid = eid,
                      .from_state = state_names[from], .to_state = state_names[to], .who = who};
    return audit_append(s, &f);
}

typedef struct {
    const uint8_t *eid;
    const char *profile_type;
    const store_actor *who;
    store_bpp *out;
    const uint8_t *txid;
    size_t txid_len;
    bpp_state from, to;
    const uint8_t *pir;
    size_t pir_len;
    bool success;
} move_arg;

static ifpp_err bpp_reserve_tx(store *s, void *arg)
{
    move_arg *a = arg;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare_cached(s, "SELECT " BPP_COLUMNS " FROM bpp WHERE eid = ? AND state = 'available'"
                                  " AND (?2 IS NULL OR profile_type = ?2) ORDER BY rowid LIMIT 1", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, a->eid, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->profile_type, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        e = store_row_to_bpp(st, a->out);
    else if (rc == SQLITE_DONE) {
        snprintf(store_msg, sizeof store_msg, "no available BPP for this eUICC%s%s", a->profile_type ? " of type " : "",
                 a->profile_type ? a->profile_type : "");
        e = IFPP_E_NOT_FOUND;
    } else
        e = store_fail(s, rc, "looking for an available BPP");
    store_release(s, st);
    if (e != IFPP_OK)
        return e;
    if ((e = store_move_row(s, a->out->transaction_id, a->out->transaction_id_len, BPP_AVAILABLE, BPP_RESERVED,
                            a->who)) == IFPP_OK)
        a->out->state = BPP_RESERVED;
    return e;
}

ifpp_err bpp_reserve(store *s, const uint8_t eid[16], const char *profile_type, const store_actor *who,
                     store_bpp *out)
{
    if (!s || !eid || !out)
        return IFPP_E_ARG;
    move_arg a = {.eid = eid, .profile_type = profile_type, .who = who, .out = out};
    return store_transaction(s, bpp_reserve_tx, &a);
}

static ifpp_err bpp_move_tx(store *s, void *arg)
{
    move_arg *a = arg;
    return store_move_row(s, a->txid, a->txid_len, a->from, a->to, a->who);
}

ifpp_err bpp_move(store *s, const uint8_t *txid, size_t txid_len, bpp_state from, bpp_state to,
                  const store_actor *who)
{
    if (!s || !txid || !txid_len || txid_len > 16 || (unsigned)from >= BPP_STATE__COUNT ||
        (unsigned)to >= BPP_STATE__COUNT)
        return IFPP_E_ARG;
    if (from == BPP_INSTALLED) { /* only with the eUICC's signed deletion notification: store_record_deletion */
        snprintf(store_msg, sizeof store_msg, "an installed BPP moves only with its eUICC's deletion notification");
        return IFPP_E_ARG;
    }
    move_arg a = {.txid = txid, .txid_len = txid_len, .from = from, .to = to, .who = who};
    return store_transaction(s, bpp_move_tx, &a);
}

static ifpp_err store_record_pir_tx(store *s, void *arg)
{
    move_arg *a = arg;
    char at[32];
    ifpp_err e = store_move_row(s, a->txid, a->txid_len, a->from, a->success ? BPP_INSTALLED : BPP_FAILED, a->who);
    if (e != IFPP_OK)
        return e;
    store_now(at);
    sqlite3_stmt *st;
    if ((e = store_prepare_cached(s, "INSERT INTO pir (txid, pir, success, received_at) VALUES (?, ?, ?, ?)", &st)) != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, a->txid, (int)a->txid_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->pir, (int)a->pir_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, a->success ? 1 : 0);
    sqlite3_bind_text(st, 4, at, -1, SQLITE_STATIC);
    e = store_step_done(s, st, "recording a PIR");
    store_release(s, st);
    return e;
}

ifpp_err store_record_pir(store *s, const uint8_t *txid, size_t txid_len, const uint8_t *pir, size_t pir_len,
                          bool success, bpp_state from, const store_actor *who)
{
    if (!s || !txid || !txid_len || txid_len > 16 || !pir || !pir_len || pir_len > INT32_MAX ||
        (unsigned)from >= BPP_STATE__COUNT)
        return IFPP_E_ARG;
    move_arg a = {.txid = txid, .txid_len = txid_len, .from = from, .who = who, .pir = pir, .pir_len = pir_len,
                  .success = success};
    return store_transaction(s, store_record_pir_tx, &a);
}

ifpp_err store_get_bpp(store *s, const uint8_t *txid, size_t txid_len, store_bpp *out)
{
    STORE_CHECK(s);
    if (!txid || !txid_len || txid_len > 16 || !out)
        return IFPP_E_ARG;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare_cached(s, "SELECT " BPP_COLUMNS " FROM bpp WHERE txid = ?", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, txid, (int)txid_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        e = store_row_to_bpp(st, out);
    else if (rc == SQLITE_DONE) {
        snprintf(store_msg, sizeof store_msg, "no such BPP in the store");
        e = IFPP_E_NOT_FOUND;
    } else
        e = store_fail(s, rc, "reading a BPP");
    store_release(s, st);
    return e;
}


ifpp_err store_count_bpps(store *s, bpp_state state, size_t *n)
{
    STORE_CHECK(s);
    if (!n)
        return IFPP_E_ARG;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare_cached(s, "SELECT count(*) FROM bpp WHERE state = ?", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, bpp_state_name(state), -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = (size_t)sqlite3_column_int64(st, 0);
    else
        e = store_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "counting BPPs");
    store_release(s, st);
    return e;
}

ifpp_err store_eid_counts(store *s, const uint8_t eid[16], size_t counts[BPP_STATE__COUNT])
{
    STORE_CHECK(s);
    if (!eid || !counts)
        return IFPP_E_ARG;
    memset(counts, 0, sizeof(size_t) * BPP_STATE__COUNT);
    sqlite3_stmt *st;
    ifpp_err e = store_prepare_cached(s, "SELECT state, count(*) FROM bpp WHERE eid = ? GROUP BY state", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, eid, 16, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bpp_state state;
        if (!bpp_state_parse((const char *)sqlite3_column_text(st, 0), &state)) {
            snprintf(store_msg, sizeof store_msg, "a BPP row has an unknown state");
            e = IFPP_E_IO;
            break;
        }
        counts[state] = (size_t)sqlite3_column_int64(st, 1);
    }
    e = store_loop_end(s, rc, e, "counting an eUICC's BPPs");
    store_release(s, st);
    return e;
}

/* ---- vaults and certificates ----------------------------------------------------------------- */

typedef struct {
    const char *vault_id;
    const uint8_t *cert, *hash;
    size_t cert_len;
    const store_der *sub_cas;
    size_t n_sub;
    bool *known;
} vault_arg;

static ifpp_err store_add_vault_tx(store *s, void *arg)
{
    vault_arg *a = arg;
    char at[32];
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT bundle_hash FROM vault WHERE vault_id = ?", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, a->vault_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        bool same = sqlite3_column_bytes(st, 0) == 32 && memcmp(sqlite3_column_blob(st, 0), a->hash, 32) == 0;
        sqlite3_finalize(st);
        *a->known = true;
        return same ? IFPP_OK : IFPP_E_ARG; /* the same id with other content: a conflicting vault */
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, "looking up a vault");
    store_now(at);
    if ((e = store_prepare(s, "INSERT INTO vault (vault_id, dpf_pb_cert, bundle_hash, imported_at) VALUES (?, ?, ?, ?)",
                           &st)) != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, a->vault_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->cert, (int)a->cert_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, a->hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, at, -1, SQLITE_STATIC);
    e = store_step_done(s, st, "adding a vault");
    sqlite3_finalize(st);
    for (size_t i = 0; e == IFPP_OK && i < a->n_sub; i++) {
        if ((e = store_prepare(s, "INSERT INTO vault_sub_ca (vault_id, position, der) VALUES (?, ?, ?)", &st)) != IFPP_OK)
            return e;
        sqlite3_bind_text(st, 1, a->vault_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        sqlite3_bind_blob(st, 3, a->sub_cas[i].der, (int)a->sub_cas[i].len, SQLITE_STATIC);
        e = store_step_done(s, st, "adding a vault's sub-CA certificate");
        sqlite3_finalize(st);
    }
    if (e != IFPP_OK)
        return e;
    audit_fields f = {.event = "vault_added", .object = a->vault_id};
    return audit_append(s, &f);
}

ifpp_err store_add_vault(store *s, const char *vault_id, const uint8_t *dpf_pb_cert, size_t cert_len,
                         const store_der *sub_cas, size_t n_sub, const uint8_t bundle_hash[32], bool *known)
{
    bool k = false;
    if (!s || !vault_id || !dpf_pb_cert || !cert_len || cert_len > INT32_MAX || !bundle_hash || (n_sub && !sub_cas) ||
        n_sub > STORE_MAX_SUB_CAS)
        return IFPP_E_ARG;
    for (size_t i = 0; i < n_sub; i++)
        if (!sub_cas[i].der || !sub_cas[i].len || sub_cas[i].len > INT32_MAX)
            return IFPP_E_ARG;
    vault_arg a = {.vault_id = vault_id, .cert = dpf_pb_cert, .cert_len = cert_len, .hash = bundle_hash,
                   .sub_cas = sub_cas, .n_sub = n_sub, .known = &k};
    ifpp_err e = store_transaction(s, store_add_vault_tx, &a);
    if (known)
        *known = k;
    return e;
}

/* A malloc'd copy of a row's blob column (never NULL for an empty one). */
static ifpp_err store_column_copy(sqlite3_stmt *st, int col, uint8_t **out, size_t *n)
{
    size_t len = (size_t)sqlite3_column_bytes(st, col);
    if (!(*out = malloc(len ? len : 1)))
        return IFPP_E_NOMEM;
    if (len)
        memcpy(*out, sqlite3_column_blob(st, col), len);
    *n = len;
    return IFPP_OK;
}

/* Copies column 0 of the first row of sql (bound to one blob or text key) into a malloc'd buffer. */
static ifpp_err store_fetch_blob(store *s, const char *sql, const void *key, int key_len, bool text, uint8_t **out,
                                 size_t *n)
{
    STORE_CHECK(s);
    if (!key || !out || !n)
        return IFPP_E_ARG;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare_cached(s, sql, &st);
    if (e != IFPP_OK)
        return e;
    if (text)
        sqlite3_bind_text(st, 1, key, key_len, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 1, key, key_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        e = store_column_copy(st, 0, out, n);
    } else if (rc == SQLITE_DONE) {
        snprintf(store_msg, sizeof store_msg, "no such record in the store");
        e = IFPP_E_NOT_FOUND;
    } else {
        e = store_fail(s, rc, "reading a record");
    }
    store_release(s, st);
    return e;
}

ifpp_err store_vault_pb_cert(store *s, const char *vault_id, uint8_t **der, size_t *n)
{
    return store_fetch_blob(s, "SELECT dpf_pb_cert FROM vault WHERE vault_id = ?", vault_id, -1, true, der, n);
}

ifpp_err store_vault_sub_cas(store *s, const char *vault_id, store_der *out, size_t max, size_t *n)
{
    STORE_CHECK(s);
    if (!vault_id || !out || !n)
        return IFPP_E_ARG;
    *n = 0;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare_cached(s, "SELECT der FROM vault_sub_ca WHERE vault_id = ? ORDER BY position", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, vault_id, -1, SQLITE_STATIC);
    int rc = SQLITE_DONE;
    while (e == IFPP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        if (*n == max || len == 0) {
            snprintf(store_msg, sizeof store_msg, "vault %s: %s", vault_id,
                     len ? "more sub-CA certificates than a session sends" : "an empty sub-CA certificate");
            e = IFPP_E_RANGE;
        } else if (!(out[*n].der = malloc(len))) {
            e = IFPP_E_NOMEM;
        } else {
            memcpy(out[*n].der, sqlite3_column_blob(st, 0), len);
            out[(*n)++].len = len;
        }
    }
    e = store_loop_end(s, rc, e, "reading a vault's sub-CA certificates");
    store_release(s, st);
    if (e != IFPP_OK) {
        store_der_free(out, *n);
        *n = 0;
    }
    return e;
}

void store_der_free(store_der *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++) {
        free(d[i].der);
        d[i].der = NULL;
        d[i].len = 0;
    }
}

ifpp_err store_euicc_cert(store *s, const uint8_t eid[16], uint8_t **der, size_t *n)
{
    return store_fetch_blob(s, "SELECT cert FROM euicc WHERE eid = ?", eid, 16, false, der, n);
}

/* Transaction ids of eid's BPPs whose state is in `states` (an SQL list of quoted names). */
static ifpp_err store_txids(store *s, const uint8_t eid[16], const char *states, uint8_t (*txids)[16],
                            size_t *txid_lens, size_t max, size_t *n)
{
    STORE_CHECK(s);
    if (!eid || !n || (max && (!txids || !txid_lens)))
        return IFPP_E_ARG;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT txid FROM bpp WHERE eid = ? AND state IN (%s) ORDER BY rowid", states);
    sqlite3_stmt *st;
    ifpp_err e = store_prepare_cached(s, sql, &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, eid, 16, SQLITE_STATIC);
    *n = 0;
    int rc = SQLITE_DONE;
    while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        if (len == 0 || len > 16) {
            snprintf(store_msg, sizeof store_msg, "a BPP row has a malformed transaction id");
            e = IFPP_E_IO;
            break;
        }
        memcpy(txids[*n], sqlite3_column_blob(st, 0), len);
        txid_lens[*n] = len;
        (*n)++;
    }
    if (e == IFPP_OK && rc == SQLITE_ROW)
        rc = SQLITE_DONE; /* stopped at max, by the caller's choice */
    e = store_loop_end(s, rc, e, "listing an eUICC's BPPs");
    store_release(s, st);
    return e;
}

ifpp_err store_unresolved(store *s, const uint8_t eid[16], uint8_t (*txids)[16], size_t *txid_lens, size_t max,
                          size_t *n)
{
    return store_txids(s, eid, "'reserved', 'in_doubt'", txids, txid_lens, max, n);
}

ifpp_err store_available(store *s, const uint8_t eid[16], uint8_t (*txids)[16], size_t *txid_lens, size_t max,
                         size_t *n)
{
    return store_txids(s, eid, "'available'", txids, txid_lens, max, n);
}

static ifpp_err store_add_eum_cert_tx(store *s, void *arg)
{
    const struct {
        const uint8_t *der;
        size_t n;
    } *a = arg;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "INSERT OR IGNORE INTO eum_cert (der) VALUES (?)", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, a->der, (int)a->n, SQLITE_STATIC);
    e = store_step_done(s, st, "adding an EUM certificate");
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_add_eum_cert(store *s, const uint8_t *der, size_t n)
{
    if (!s || !der || !n || n > INT32_MAX)
        return IFPP_E_ARG;
    struct {
        const uint8_t *der;
        size_t n;
    } a = {der, n};
    return store_transaction(s, store_add_eum_cert_tx, &a);
}

ifpp_err store_each_eum_cert(store *s, ifpp_err (*fn)(void *arg, const uint8_t *der, size_t n), void *arg)
{
    STORE_CHECK(s);
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT der FROM eum_cert ORDER BY rowid", &st);
    if (e != IFPP_OK)
        return e;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
           (e = fn(arg, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0))) == IFPP_OK)
        ;
    e = store_loop_end(s, rc, e, "reading the EUM certificates");
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_each_unbound_key(store *s, ifpp_err (*fn)(void *arg, const store_key_record *k), void *arg)
{
    STORE_CHECK(s);
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT o.eid, e.cert, e.info2, o.otpk, o.proof FROM otk o JOIN euicc e"
                                  " ON e.eid = o.eid WHERE NOT EXISTS (SELECT 1 FROM bpp b WHERE b.eid = o.eid"
                                  " AND b.otpk = o.otpk) ORDER BY o.rowid", &st);
    if (e != IFPP_OK)
        return e;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_key_record k = {
            .eid = sqlite3_column_blob(st, 0), .cert = sqlite3_column_blob(st, 1),
            .cert_len = (size_t)sqlite3_column_bytes(st, 1), .info2 = sqlite3_column_blob(st, 2),
            .info2_len = (size_t)sqlite3_column_bytes(st, 2), .otpk = sqlite3_column_blob(st, 3),
            .proof = sqlite3_column_blob(st, 4),
        };
        if (sqlite3_column_bytes(st, 0) != 16 || sqlite3_column_bytes(st, 3) != 65 || sqlite3_column_bytes(st, 4) != 64) {
            snprintf(store_msg, sizeof store_msg, "a One-time Key row is malformed");
            e = IFPP_E_IO;
            break;
        }
        if ((e = fn(arg, &k)) != IFPP_OK)
            break;
    }
    e = store_loop_end(s, rc, e, "reading the One-time Keys");
    sqlite3_finalize(st);
    return e;
}

/*
 * A result is reported on the day of its outcome: the BPP's last move, except for a profile installed and
 * later deleted (use case A.4, a recorded deletion notification), whose outcome stays its installation:
 * reported as installed on the day its PIR came, never again on the day of the deletion (the SM-DPf would
 * count it twice; the Deletion Report tells of the deletion). The day's rows through bpp_by_day (migration 8);
 * the deleted ones from deletion_notification outwards (CROSS JOIN fixes that order: left to itself SQLite
 * scanned every BPP or every PIR, 5 s on a 1.1-million-BPP store), so they cost what A.4 deleted, not the store.
 */
#define STORE_RESULT_COLUMNS                                                                                           \
    "b.txid, b.eid, p.pir, e.cert, b.state, b.dut_serial, b.updated_at, b.rowid"                                      \
    " FROM bpp b JOIN euicc e ON e.eid = b.eid LEFT JOIN pir p ON p.txid = b.txid"                                    \
    " WHERE b.state IN ('installed', 'failed', 'deleted')"                                                             \
    " AND NOT EXISTS (SELECT 1 FROM deletion_notification d WHERE d.txid = b.txid)"
#define STORE_DELETED_INSTALL_COLUMNS                                                                                  \
    "b.txid, b.eid, p.pir, e.cert, 'installed', b.dut_serial, p.received_at, b.rowid"                                 \
    " FROM deletion_notification d CROSS JOIN bpp b ON b.txid = d.txid CROSS JOIN pir p ON p.txid = b.txid"           \
    " JOIN euicc e ON e.eid = b.eid"

ifpp_err store_each_result(store *s, const char *day, ifpp_err (*fn)(void *arg, const store_result_record *r),
                           void *arg)
{
    STORE_CHECK(s);
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, day ? "SELECT " STORE_RESULT_COLUMNS " AND substr(b.updated_at, 1, 10) = ?1"
                                        " UNION ALL SELECT " STORE_DELETED_INSTALL_COLUMNS
                                        " WHERE substr(p.received_at, 1, 10) = ?1 ORDER BY 7, 8"
                                      : "SELECT " STORE_RESULT_COLUMNS " UNION ALL SELECT " STORE_DELETED_INSTALL_COLUMNS
                                        " ORDER BY 7, 8",
                               &st);
#undef STORE_RESULT_COLUMNS
#undef STORE_DELETED_INSTALL_COLUMNS
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_result_record r = {
            .txid = sqlite3_column_blob(st, 0), .txid_len = (size_t)sqlite3_column_bytes(st, 0),
            .eid = sqlite3_column_blob(st, 1), .pir = sqlite3_column_blob(st, 2),
            .pir_len = (size_t)sqlite3_column_bytes(st, 2), .euicc_cert = sqlite3_column_blob(st, 3),
            .euicc_cert_len = (size_t)sqlite3_column_bytes(st, 3),
            .dut_serial = (const char *)sqlite3_column_text(st, 5), .updated_at = (const char *)sqlite3_column_text(st, 6),
        };
        if (!bpp_state_parse((const char *)sqlite3_column_text(st, 4), &r.state) ||
            sqlite3_column_bytes(st, 1) != 16 || r.txid_len == 0 || r.txid_len > 16) {
            snprintf(store_msg, sizeof store_msg, "a result row is malformed");
            e = IFPP_E_IO;
            break;
        }
        if ((e = fn(arg, &r)) != IFPP_OK)
            break;
    }
    e = store_loop_end(s, rc, e, "reading the results");
    sqlite3_finalize(st);
    return e;
}

/* ---- what the operator reads: stock, open BPPs, the day's results, the audit log ------------ */

ifpp_err store_each_stock(store *s, ifpp_err (*fn)(void *arg, const char *profile_type, size_t available), void *arg)
{
    STORE_CHECK(s);
    if (!fn)
        return IFPP_E_ARG;
    sqlite3_stmt *st;
    /* every profile type the store has seen, an exhausted one with 0: that is when the line must hear of it */
    /* one index seek per profile type, then the count of its available ones (bpp_by_type_state, migration 8): not a
     * scan of every BPP ever imported (issue 16.3) */
    ifpp_err e = store_prepare(s, "WITH RECURSIVE t(p) AS (SELECT min(profile_type) FROM bpp UNION ALL"
                                  " SELECT (SELECT min(profile_type) FROM bpp WHERE profile_type > t.p) FROM t"
                                  " WHERE t.p IS NOT NULL)"
                                  " SELECT p, (SELECT count(*) FROM bpp WHERE profile_type = t.p AND state = ?1)"
                                  " FROM t WHERE p IS NOT NULL", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, bpp_state_name(BPP_AVAILABLE), -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 0);
        if (!type) {
            snprintf(store_msg, sizeof store_msg, "store %s: a BPP row has no profile type", s->path);
            e = IFPP_E_IO;
            break;
        }
        if ((e = fn(arg, type, (size_t)sqlite3_column_int64(st, 1))) != IFPP_OK)
            break;
    }
    e = store_loop_end(s, rc, e, "counting the stock per profile type");
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_each_open_bpp(store *s, size_t max, ifpp_err (*fn)(void *arg, const store_open_record *r), void *arg,
                             size_t *total)
{
    STORE_CHECK(s);
    if (!fn || !total)
        return IFPP_E_ARG;
    *total = 0;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT txid, eid, state, profile_type, slot, dut_serial, updated_at FROM bpp"
                                  " WHERE state IN ('reserved', 'in_doubt') ORDER BY updated_at, rowid", &st);
    if (e != IFPP_OK)
        return e;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_open_record r = {
            .txid = sqlite3_column_blob(st, 0), .txid_len = (size_t)sqlite3_column_bytes(st, 0),
            .eid = sqlite3_column_blob(st, 1), .profile_type = (const char *)sqlite3_column_text(st, 3),
            .slot = (const char *)sqlite3_column_text(st, 4), .dut_serial = (const char *)sqlite3_column_text(st, 5),
            .updated_at = (const char *)sqlite3_column_text(st, 6),
        };
        if (!bpp_state_parse((const char *)sqlite3_column_text(st, 2), &r.state) || r.txid_len == 0 ||
            r.txid_len > 16 || sqlite3_column_bytes(st, 1) != 16 || !r.updated_at) {
            snprintf(store_msg, sizeof store_msg, "store %s: a reserved or in-doubt BPP row is malformed", s->path);
            e = IFPP_E_IO;
            break;
        }
        if ((*total)++ < max && (e = fn(arg, &r)) != IFPP_OK)
            break;
    }
    e = store_loop_end(s, rc, e, "listing the reserved and in-doubt BPPs");
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_day_counts(store *s, const char *day, size_t counts[BPP_STATE__COUNT])
{
    STORE_CHECK(s);
    if (!day || strlen(day) != 10 || !counts)
        return IFPP_E_ARG;
    memset(counts, 0, sizeof(size_t) * BPP_STATE__COUNT);
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT state, count(*) FROM bpp WHERE substr(updated_at, 1, 10) = ?"
                                  " GROUP BY state", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bpp_state state;
        if (!bpp_state_parse((const char *)sqlite3_column_text(st, 0), &state)) {
            snprintf(store_msg, sizeof store_msg, "store %s: a BPP row has an unknown state", s->path);
            e = IFPP_E_IO;
            break;
        }
        counts[state] = (size_t)sqlite3_column_int64(st, 1);
    }
    e = store_loop_end(s, rc, e, "counting the day's results");
    sqlite3_finalize(st);
    return e;
}

#define AUDIT_FILTER_SQL                                                                                               \
    " WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR event = ?2) AND (?3 IS NULL OR dut_serial = ?3)"              \
    " AND (?4 IS NULL OR eid = ?4) AND (?5 IS NULL OR txid = ?5)"

static void store_bind_audit_filter(sqlite3_stmt *st, const store_audit_filter *f)
{
    sqlite3_bind_text(st, 1, f->since, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, f->event, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, f->dut_serial, -1, SQLITE_STATIC);
    if (f->eid)
        sqlite3_bind_blob(st, 4, f->eid, 16, SQLITE_STATIC);
    if (f->txid && f->txid_len)
        sqlite3_bind_blob(st, 5, f->txid, (int)f->txid_len, SQLITE_STATIC);
}

typedef struct {
    const store_audit_filter *f;
    ifpp_err (*fn)(void *arg, const store_audit_entry *e);
    void *arg;
    size_t *matched;
} audit_list_arg;

static ifpp_err store_each_audit_read(store *s, void *arg)
{
    audit_list_arg *a = arg;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT count(*) FROM audit" AUDIT_FILTER_SQL, &st);
    if (e != IFPP_OK)
        return e;
    store_bind_audit_filter(st, a->f);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *a->matched = (size_t)sqlite3_column_int64(st, 0);
    else
        e = store_fail(s, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "counting audit entries");
    sqlite3_finalize(st);
    if (e != IFPP_OK)
        return e;
    if ((e = store_prepare(s, "SELECT * FROM (SELECT id, form, detail, " AUDIT_V2_COLUMNS " FROM audit" AUDIT_FILTER_SQL
                              " ORDER BY id DESC LIMIT ?6) ORDER BY id", &st)) != IFPP_OK)
        return e;
    store_bind_audit_filter(st, a->f);
    size_t limit = a->f->limit && a->f->limit < STORE_AUDIT_LIST_MAX ? a->f->limit : STORE_AUDIT_LIST_MAX;
    sqlite3_bind_int64(st, 6, (sqlite3_int64)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
#define COL_TEXT(i) ((const char *)sqlite3_column_text(st, (i)))
        store_audit_entry x = {
            .id = (uint64_t)sqlite3_column_int64(st, 0), .form = sqlite3_column_int(st, 1), .detail = COL_TEXT(2),
            .at = COL_TEXT(3), .event = COL_TEXT(4), .txid = sqlite3_column_blob(st, 5),
            .txid_len = (size_t)sqlite3_column_bytes(st, 5), .eid = sqlite3_column_blob(st, 6),
            .eid_len = (size_t)sqlite3_column_bytes(st, 6), .from_state = COL_TEXT(7), .to_state = COL_TEXT(8),
            .session = COL_TEXT(9), .slot = COL_TEXT(10), .dut_serial = COL_TEXT(11), .reason = COL_TEXT(12),
            .object = COL_TEXT(13),
        };
#undef COL_TEXT
        if (!x.at || !x.event || (x.form != 1 && x.form != 2)) {
            snprintf(store_msg, sizeof store_msg, "store %s: audit entry %llu is malformed", s->path,
                     (unsigned long long)x.id);
            e = IFPP_E_IO;
            break;
        }
        if ((e = a->fn(a->arg, &x)) != IFPP_OK)
            break;
    }
    e = store_loop_end(s, rc, e, "listing the audit log");
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_each_audit(store *s, const store_audit_filter *filter,
                          ifpp_err (*fn)(void *arg, const store_audit_entry *e), void *arg, size_t *matched)
{
    size_t dummy = 0;
    store_audit_filter any = {0};
    audit_list_arg a = {.f = filter ? filter : &any, .fn = fn, .arg = arg, .matched = matched ? matched : &dummy};
    if (!fn || (a.f->txid && (a.f->txid_len == 0 || a.f->txid_len > 16)))
        return IFPP_E_ARG;
    *a.matched = 0;
    return store_read(s, store_each_audit_read, &a); /* one snapshot: the count and the rows agree */
}

/* ---- the day's DUT records for the CSV and HTML reports (issue 15) --------------------------- */

ifpp_err store_each_dut(store *s, const char *day, ifpp_err (*fn)(void *arg, const store_dut_record *r), void *arg)
{
    STORE_CHECK(s);
    if (!fn)
        return IFPP_E_ARG;
    sqlite3_stmt *st;
    /* the session's start: the BPP's first move to reserved; the reason: its last audit entry's. Both looked up per
     * row through audit_by_txid, the rows through bpp_by_day (migration 8): time in the day's rows, not the store's;
     * the BPP's last EUICCF05 test through conn_test_by_txid */
#define STORE_DUT_COLUMNS                                                                                              \
    "b.txid, b.eid, b.iccid, b.profile_type, b.slot, b.dut_serial, b.state, b.updated_at,"                             \
    " (SELECT min(a.at) FROM audit a WHERE a.txid = b.txid AND a.to_state = 'reserved'),"                             \
    " (SELECT a.reason FROM audit a WHERE a.txid = b.txid ORDER BY a.id DESC LIMIT 1),"                               \
    " ct.outcome, ct.detail, ct.mode = 'required',"                                                                    \
    " EXISTS (SELECT 1 FROM deletion_notification d WHERE d.txid = b.txid)"                                            \
    " FROM bpp b LEFT JOIN conn_test ct ON ct.id = (SELECT max(id) FROM conn_test WHERE txid = b.txid)"              \
    " WHERE b.state IN ('installed', 'failed', 'in_doubt', 'reserved', 'deleted')"
    ifpp_err e = store_prepare(s, day ? "SELECT " STORE_DUT_COLUMNS " AND substr(b.updated_at, 1, 10) = ?1"
                                        " ORDER BY b.updated_at, b.rowid"
                                      : "SELECT " STORE_DUT_COLUMNS " ORDER BY b.updated_at, b.rowid",
                               &st);
#undef STORE_DUT_COLUMNS
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_dut_record r = {
            .txid = sqlite3_column_blob(st, 0), .txid_len = (size_t)sqlite3_column_bytes(st, 0),
            .eid = sqlite3_column_blob(st, 1), .iccid = sqlite3_column_blob(st, 2),
            .profile_type = (const char *)sqlite3_column_text(st, 3), .slot = (const char *)sqlite3_column_text(st, 4),
            .dut_serial = (const char *)sqlite3_column_text(st, 5), .updated_at = (const char *)sqlite3_column_text(st, 7),
            .started_at = (const char *)sqlite3_column_text(st, 8), .reason = (const char *)sqlite3_column_text(st, 9),
            .conn_test = (const char *)sqlite3_column_text(st, 10), .conn_detail = (const char *)sqlite3_column_text(st, 11),
            .conn_required = sqlite3_column_int(st, 12) == 1, .removed = sqlite3_column_int(st, 13) == 1,
        };
        if (!bpp_state_parse((const char *)sqlite3_column_text(st, 6), &r.state) || sqlite3_column_bytes(st, 1) != 16 ||
            sqlite3_column_bytes(st, 2) != 10 || r.txid_len == 0 || r.txid_len > 16 || !r.profile_type ||
            !r.updated_at) {
            snprintf(store_msg, sizeof store_msg, "store %s: a BPP row for the report is malformed", s->path);
            e = IFPP_E_IO;
            break;
        }
        if ((e = fn(arg, &r)) != IFPP_OK)
            break;
    }
    e = store_loop_end(s, rc, e, "reading the day's DUT records");
    sqlite3_finalize(st);
    return e;
}

const char *store_path(const store *s)
{
    return s ? s->path : NULL;
}

/* ---- BPP bytes outside SQLite: the store's append-only data file (issue 16) ---------------------- */

/*
 * <store>.bpp holds every BPP added since schema 7, back to back; bpp_data.size is how much of it is
 * committed. One appender at a time: flock on the file, taken before the committed size is read and
 * held until the transaction that moves it has committed or rolled back. The first append cuts the
 * file back to the committed size (what an interrupted import left). Before the COMMIT that inserts
 * rows pointing at new bytes, the file is fdatasync'd (and its directory fsync'd, once per handle: the
 * handle that created the file may have died before it synced the name): a
 * row never points at bytes that are not on disk. Reading is one pread of the row's (offset, length),
 * checked against its SHA-256.
 *
 * Appends come two ways: store_add_bpp inside a transaction (the flock taken after SQLite's write lock),
 * and a staged import (store_bpp_stage_*: the flock first, the bytes appended and the rows staged in a
 * TEMP table with no write lock, SQLite's write lock only for the commit). The two orders are opposite,
 * so each wait is bounded by the busy timeout and ends in IFPP_E_BUSY, never in a deadlock.
 */
#define BPPFILE_WRITEBACK (16u << 20)

struct store_bppfile {
    int fd;             /* -1: not open */
    bool writable;
    bool dir_synced;    /* the directory entry synced by this handle (whoever created the file may have died first) */
    bool active;        /* holds the flock, committed read: appending */
    bool staging;       /* a staged import is open (store_bpp_stage_begin) */
    uint64_t committed; /* bpp_data.size when the flock was taken */
    uint64_t end;       /* where the next append goes */
    uint64_t started;   /* bytes up to here were handed to the disk (sync_file_range) */
    bool stage_txn;     /* the staging pass's own transaction (one read snapshot, the TEMP rows) is open */
    sqlite3_stmt *stage_insert;
    char *path;
};

/* The data file, opened for reading or writing (":memory:" stores use an unlinked temporary file). */
static ifpp_err bppfile_get(store *s, bool write, struct store_bppfile **out)
{
    struct store_bppfile *f = s->bf;
    if (!f) {
        if (!(f = calloc(1, sizeof *f)))
            return IFPP_E_NOMEM;
        f->fd = -1;
        size_t n = strlen(s->path) + sizeof STORE_BPP_SUFFIX;
        if (!(f->path = malloc(n))) {
            free(f);
            return IFPP_E_NOMEM;
        }
        snprintf(f->path, n, "%s%s", s->path, STORE_BPP_SUFFIX);
        s->bf = f;
    }
    if (f->fd >= 0 && (f->writable || !write)) {
        *out = f;
        return IFPP_OK;
    }
    if (f->fd >= 0)
        close(f->fd); /* read-only until now: never holds the flock */
    f->fd = -1;
    if (strcmp(s->path, ":memory:") == 0) {
        char tmpl[] = "/tmp/ifpp-bpp-XXXXXX";
        if ((f->fd = mkstemp(tmpl)) >= 0)
            unlink(tmpl);
        f->writable = true;
    } else if (write) {
        f->fd = open(f->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (f->fd < 0 && errno == ENOENT)
            f->fd = open(f->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (f->fd < 0 && errno == EEXIST) /* another importer created it between the two opens: use theirs */
            f->fd = open(f->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        f->writable = true;
    } else {
        f->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        f->writable = false;
    }
    if (f->fd < 0) {
        snprintf(store_msg, sizeof store_msg, "store %s: BPP data file %s: %s", s->path, f->path, strerror(errno));
        return IFPP_E_IO;
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(store_msg, sizeof store_msg, "store %s: BPP data file %s is not a regular file", s->path, f->path);
        close(f->fd);
        f->fd = -1;
        return IFPP_E_IO;
    }
    *out = f;
    return IFPP_OK;
}

/* The flock, the committed size, and the file cut back to it (an aborted import's tail). */
static ifpp_err bppfile_begin(store *s, struct store_bppfile *f)
{
    for (int waited = 0; flock(f->fd, LOCK_EX | LOCK_NB) != 0;) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK || waited >= s->busy_ms) {
            int err = errno;
            snprintf(store_msg, sizeof store_msg, "store %s: BPP data file %s %s (waited %d ms)", s->path, f->path,
                     err == EWOULDBLOCK ? "is being written by another import" : strerror(err), waited);
            return err == EWOULDBLOCK ? IFPP_E_BUSY : IFPP_E_IO;
        }
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
        waited += 5;
    }
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT size FROM bpp_data WHERE id = 1", &st);
    int rc = SQLITE_MISUSE;
    sqlite3_int64 size = -1;
    if (e == IFPP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        size = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    struct stat fs;
    if (e != IFPP_OK)
        ;
    else if (rc != SQLITE_ROW || size < 0)
        e = store_fail(s, rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "reading the BPP data size");
    else if (fstat(f->fd, &fs) != 0) {
        snprintf(store_msg, sizeof store_msg, "store %s: BPP data file %s: %s", s->path, f->path, strerror(errno));
        e = IFPP_E_IO;
    } else if ((uint64_t)fs.st_size < (uint64_t)size) {
        snprintf(store_msg, sizeof store_msg, "store %s: BPP data file %s holds %lld bytes but the store committed "
                 "%lld: it was truncated or replaced (damaged; restore the store's directory whole)", s->path, f->path,
                 (long long)fs.st_size, (long long)size);
        e = IFPP_E_IO;
    } else if ((uint64_t)fs.st_size > (uint64_t)size && ftruncate(f->fd, (off_t)size) != 0) {
        snprintf(store_msg, sizeof store_msg, "store %s: cutting an aborted import off %s: %s", s->path, f->path,
                 strerror(errno));
        e = IFPP_E_IO;
    }
    if (e != IFPP_OK) {
        flock(f->fd, LOCK_UN);
        return e;
    }
    f->committed = f->end = f->started = (uint64_t)size;
    f->active = true;
    return IFPP_OK;
}

/* Ends the append: committed, the size moves on; otherwise the tail is cut off. The flock is let go. */
static void bppfile_end(store *s, bool committed)
{
    struct store_bppfile *f = s->bf;
    if (!f || !f->active)
        return;
    if (committed)
        f->committed = f->end;
    else if (f->end > f->committed && ftruncate(f->fd, (off_t)f->committed) != 0) {
        /* harmless: the tail is past the committed size, and the next append cuts it */
    }
    f->end = f->committed;
    f->active = false;
    f->staging = false;
    flock(f->fd, LOCK_UN);
}

static ifpp_err bppfile_append(store *s, const uint8_t *p, size_t n, uint64_t *off)
{
    struct store_bppfile *f;
    ifpp_err e;
    if (s->readonly || (s->depth == 0 && !(s->bf && s->bf->staging)) || (s->depth > 0 && s->bf && s->bf->staging)) {
        snprintf(store_msg, sizeof store_msg, "store %s: a BPP is written inside a write transaction or a staged import,"
                 " not both", s->path);
        return IFPP_E_INTERNAL;
    }
    if ((e = bppfile_get(s, true, &f)) != IFPP_OK || (!f->active && (e = bppfile_begin(s, f)) != IFPP_OK))
        return e;
    *off = f->end;
    for (size_t done = 0; done < n;) {
        ssize_t w = pwrite(f->fd, p + done, n - done, (off_t)(f->end + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(store_msg, sizeof store_msg, "store %s: writing a BPP to %s: %s", s->path, f->path,
                     w < 0 ? strerror(errno) : "no progress");
            return IFPP_E_IO;
        }
        done += (size_t)w;
    }
    f->end += n;
    /* a big import: start writing back as it goes, so the fdatasync before COMMIT has little left to wait for */
    if (f->end - f->started >= BPPFILE_WRITEBACK && f->end > f->committed) {
        uint64_t from = f->started > f->committed ? f->started : f->committed;
        sync_file_range(f->fd, (off_t)from, (off_t)(f->end - from), SYNC_FILE_RANGE_WRITE); /* a hint: errors show at fdatasync */
        f->started = f->end;
    }
    return IFPP_OK;
}

/* The directory holding path, synced (a new file's name must survive a power cut too). */
static int bppfile_sync_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        *(slash == dir ? slash + 1 : slash) = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Before COMMIT: the appended bytes on disk, then the committed size moved in the same transaction. */
static ifpp_err bppfile_before_commit(store *s)
{
    struct store_bppfile *f = s->bf;
    if (!f || !f->active || f->end == f->committed)
        return IFPP_OK;
    if (fdatasync(f->fd) != 0 || (!f->dir_synced && strcmp(s->path, ":memory:") != 0 && bppfile_sync_dir(f->path) != 0)) {
        snprintf(store_msg, sizeof store_msg, "store %s: syncing the BPP data file %s: %s", s->path, f->path,
                 strerror(errno));
        return IFPP_E_IO;
    }
    f->dir_synced = true;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "UPDATE bpp_data SET size = ? WHERE id = 1 AND size = ?", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)f->end);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)f->committed);
    e = store_step_done(s, st, "recording the BPP data size");
    sqlite3_finalize(st);
    if (e == IFPP_OK && sqlite3_changes(s->db) != 1)
        e = store_fail(s, SQLITE_CORRUPT, "recording the BPP data size (it moved under the data file's lock)");
    return e;
}

static void bppfile_after_commit(store *s)
{
    bppfile_end(s, true);
}

static void bppfile_after_rollback(store *s)
{
    bppfile_end(s, false);
}

static void bppfile_close(store *s)
{
    if (!s->bf)
        return;
    store_bpp_stage_txn_end(s, false);
    bppfile_end(s, false);
    sqlite3_finalize(s->bf->stage_insert);
    if (s->bf->fd >= 0)
        close(s->bf->fd);
    free(s->bf->path);
    free(s->bf);
    s->bf = NULL;
}

/* ---- a staged import: the bytes appended and the rows staged with no write lock (issue 16) ---- */

#define STAGE_COLUMNS "item, txid, eid, otpk, iccid, profile_type, bpp_hash, vault_id, data_off, data_len, data_sha256"

ifpp_err store_bpp_stage_begin(store *s)
{
    STORE_CHECK(s);
    struct store_bppfile *f;
    ifpp_err e;
    if (s->readonly || s->depth > 0 || (s->bf && (s->bf->staging || s->bf->active))) {
        snprintf(store_msg, sizeof store_msg, "store %s: a staged import starts outside any transaction or other "
                 "import (and never on a read-only store)", s->path);
        return IFPP_E_ARG;
    }
    if ((e = bppfile_get(s, true, &f)) != IFPP_OK ||
        (e = store_exec(s, "CREATE TEMP TABLE IF NOT EXISTS bpp_stage (item INTEGER PRIMARY KEY, txid BLOB NOT NULL,"
                           " eid BLOB NOT NULL, otpk BLOB NOT NULL, iccid BLOB NOT NULL, profile_type TEXT NOT NULL,"
                           " bpp_hash BLOB NOT NULL, vault_id TEXT NOT NULL, data_off INTEGER NOT NULL,"
                           " data_len INTEGER NOT NULL, data_sha256 BLOB NOT NULL);"
                           "DELETE FROM temp.bpp_stage;", "staging an import")) != IFPP_OK ||
        (e = bppfile_begin(s, f)) != IFPP_OK)
        return e;
    /* one read transaction for the pass (one snapshot, no lock churn per statement); it writes only TEMP rows */
    if ((e = store_exec(s, "BEGIN DEFERRED", "staging an import")) != IFPP_OK) {
        bppfile_end(s, false);
        return e;
    }
    f->stage_txn = true;
    f->staging = true;
    return IFPP_OK;
}

/* Ends the staging pass's transaction: kept (its TEMP rows, for the commit) or dropped. */
static ifpp_err store_bpp_stage_txn_end(store *s, bool keep)
{
    if (!s->bf || !s->bf->stage_txn)
        return IFPP_OK;
    s->bf->stage_txn = false;
    if (keep)
        return store_exec(s, "COMMIT", "ending the staging pass");
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return IFPP_OK;
}

ifpp_err store_bpp_stage_add(store *s, const store_bpp *b, bool *duplicate, char *why, size_t why_len)
{
    STORE_CHECK(s);
    struct store_bppfile *f = s->bf;
    bool dup = false;
    if (!b || !b->bpp || b->bpp_len == 0 || b->bpp_len > INT32_MAX || b->transaction_id_len == 0 ||
        b->transaction_id_len > 16 || !f || !f->staging)
        return IFPP_E_ARG;
    /* checked now so that a conflict is named early and a re-import appends nothing; again at the commit */
    ifpp_err e = store_bpp_conflict(s, b, &dup, why, why_len);
    if (duplicate)
        *duplicate = dup;
    if (e != IFPP_OK || dup)
        return e;
    uint8_t sha[32];
    uint64_t off;
    if (b->bpp_sha256)
        memcpy(sha, b->bpp_sha256, 32);
    else if ((e = crypto_sha256(b->bpp, b->bpp_len, sha)) != IFPP_OK)
        return e;
    if ((e = bppfile_append(s, b->bpp, b->bpp_len, &off)) != IFPP_OK) {
        err_why(why, why_len, "%s", store_msg);
        return e;
    }
    sqlite3_stmt *st = f->stage_insert;
    if (!st && (e = store_prepare(s, "INSERT INTO temp.bpp_stage (" STAGE_COLUMNS ") VALUES (NULL, ?, ?, ?, ?, ?, ?,"
                                     " ?, ?, ?, ?)", &f->stage_insert)) != IFPP_OK)
        return e;
    st = f->stage_insert;
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, b->transaction_id, (int)b->transaction_id_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, b->eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, b->otpk, 65, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, b->iccid, 10, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, b->profile_type, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, b->bpp_hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, b->vault_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)off);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)b->bpp_len);
    sqlite3_bind_blob(st, 10, sha, 32, SQLITE_STATIC);
    e = store_step_done(s, st, "staging a BPP");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (e != IFPP_OK)
        err_why(why, why_len, "%s", store_msg);
    return e;
}

typedef struct {
    ifpp_err (*fn)(store *s, void *arg);
    void *arg;
    size_t *added, *duplicate;
    char *why;
    size_t why_len;
} stage_commit_arg;

static ifpp_err store_bpp_stage_commit_tx(store *s, void *arg)
{
    stage_commit_arg *a = arg;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT " STAGE_COLUMNS " FROM temp.bpp_stage ORDER BY item", &st);
    if (e != IFPP_OK)
        return e;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_bpp b;
        memset(&b, 0, sizeof b);
        size_t tl = (size_t)sqlite3_column_bytes(st, 1);
        const char *type = (const char *)sqlite3_column_text(st, 5), *vault = (const char *)sqlite3_column_text(st, 7);
        if (tl == 0 || tl > 16 || sqlite3_column_bytes(st, 2) != 16 || sqlite3_column_bytes(st, 3) != 65 ||
            sqlite3_column_bytes(st, 4) != 10 || sqlite3_column_bytes(st, 6) != 32 || sqlite3_column_bytes(st, 10) != 32 ||
            !type || !vault) {
            e = store_fail(s, SQLITE_CORRUPT, "reading a staged BPP");
            break;
        }
        memcpy(b.transaction_id, sqlite3_column_blob(st, 1), tl);
        b.transaction_id_len = tl;
        memcpy(b.eid, sqlite3_column_blob(st, 2), 16);
        memcpy(b.otpk, sqlite3_column_blob(st, 3), 65);
        memcpy(b.iccid, sqlite3_column_blob(st, 4), 10);
        snprintf(b.profile_type, sizeof b.profile_type, "%s", type);
        memcpy(b.bpp_hash, sqlite3_column_blob(st, 6), 32);
        snprintf(b.vault_id, sizeof b.vault_id, "%s", vault);
        b.bpp_len = (size_t)sqlite3_column_int64(st, 9);
        bool dup = false;
        if ((e = store_bpp_conflict(s, &b, &dup, a->why, a->why_len)) != IFPP_OK)
            break;
        if (dup) { /* committed by another import since it was staged: its bytes here stay unreferenced */
            (*a->duplicate)++;
            continue;
        }
        if ((e = store_bpp_insert(s, &b, (uint64_t)sqlite3_column_int64(st, 8), sqlite3_column_blob(st, 10), a->why,
                                  a->why_len)) != IFPP_OK)
            break;
        (*a->added)++;
    }
    e = store_loop_end(s, rc, e, "reading the staged BPPs");
    sqlite3_finalize(st);
    if (e == IFPP_OK && a->fn)
        e = a->fn(s, a->arg);
    return e;
}

ifpp_err store_bpp_stage_commit(store *s, ifpp_err (*fn)(store *s, void *arg), void *arg, size_t *added,
                                size_t *duplicate, char *why, size_t why_len)
{
    STORE_CHECK(s);
    size_t a0 = 0, d0 = 0;
    if (!s->bf || !s->bf->staging)
        return IFPP_E_ARG;
    stage_commit_arg a = {.fn = fn, .arg = arg, .added = added ? added : &a0, .duplicate = duplicate ? duplicate : &d0,
                          .why = why, .why_len = why_len};
    *a.added = 0;
    *a.duplicate = 0;
    s->bf->staging = false; /* the transaction's hooks sync the file, move the size and let the lock go */
    ifpp_err e = store_bpp_stage_txn_end(s, true);
    if (e == IFPP_OK)
        e = store_transaction(s, store_bpp_stage_commit_tx, &a);
    bppfile_end(s, false);  /* if the transaction never began (busy), the staged tail goes too */
    sqlite3_exec(s->db, "DELETE FROM temp.bpp_stage", NULL, NULL, NULL);
    if (e != IFPP_OK && why && why_len && !*why)
        err_why(why, why_len, "%s", store_msg);
    return e;
}

void store_bpp_stage_abort(store *s)
{
    if (!store_mine(s) || !s->bf || !s->bf->staging)
        return;
    store_bpp_stage_txn_end(s, false);
    bppfile_end(s, false);
    sqlite3_exec(s->db, "DELETE FROM temp.bpp_stage", NULL, NULL, NULL);
}

/* One pread of a BPP's bytes, checked against the SHA-256 its row recorded: a damaged file is refused by name. */
static ifpp_err bppfile_read(store *s, const uint8_t *txid, size_t txid_len, uint64_t off, uint64_t len,
                             const uint8_t sha[32], uint8_t **out)
{
    char tx[33];
    struct store_bppfile *f;
    hex_encode(txid, txid_len, tx, sizeof tx);
    ifpp_err e = bppfile_get(s, false, &f);
    if (e != IFPP_OK) {
        snprintf(store_msg + strlen(store_msg), sizeof store_msg - strlen(store_msg), " (reading BPP %s)", tx);
        return e;
    }
    uint8_t *buf = malloc(len ? (size_t)len : 1);
    if (!buf)
        return IFPP_E_NOMEM;
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(f->fd, buf + done, (size_t)len - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(store_msg, sizeof store_msg, "BPP %s: %s at offset %llu, %llu bytes: %s", tx, f->path,
                     (unsigned long long)off, (unsigned long long)len,
                     r < 0 ? strerror(errno) : "the file ends before them (truncated or replaced)");
            free(buf);
            return IFPP_E_IO;
        }
        done += (size_t)r;
    }
    uint8_t h[32];
    if ((e = crypto_sha256(buf, (size_t)len, h)) != IFPP_OK || !crypto_equal_ct(h, sha, 32)) {
        snprintf(store_msg, sizeof store_msg, "BPP %s is damaged or edited in %s (offset %llu, %llu bytes: not the "
                 "SHA-256 the store recorded at import); not sent to a card", tx, f->path, (unsigned long long)off,
                 (unsigned long long)len);
        free(buf);
        return e != IFPP_OK ? e : IFPP_E_SIGNATURE;
    }
    *out = buf;
    return IFPP_OK;
}

ifpp_err store_bpp_blob(store *s, const uint8_t *txid, size_t txid_len, uint8_t **out, size_t *n)
{
    STORE_CHECK(s);
    if (!txid || !txid_len || txid_len > 16 || !out || !n)
        return IFPP_E_ARG;
    sqlite3_stmt *st;
    /* the bpp column is read only for a row from before schema 7 (since then it is empty) */
    ifpp_err e = store_prepare_cached(s, "SELECT data_off, data_len, data_sha256, bpp FROM bpp WHERE txid = ?", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, txid, (int)txid_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        sqlite3_int64 off = sqlite3_column_int64(st, 0), len = sqlite3_column_int64(st, 1);
        uint8_t sha[32];
        if (off < 0 || len <= 0 || len > INT32_MAX || sqlite3_column_bytes(st, 2) != 32) {
            snprintf(store_msg, sizeof store_msg, "store %s: a BPP row's data location is malformed", s->path);
            e = IFPP_E_IO;
        } else {
            memcpy(sha, sqlite3_column_blob(st, 2), 32);
            store_release(s, st);
            st = NULL;
            if ((e = bppfile_read(s, txid, txid_len, (uint64_t)off, (uint64_t)len, sha, out)) == IFPP_OK)
                *n = (size_t)len;
        }
    } else if (rc == SQLITE_ROW) { /* a row from before schema 7: its bytes are still in the table */
        e = store_column_copy(st, 3, out, n);
    } else if (rc == SQLITE_DONE) {
        snprintf(store_msg, sizeof store_msg, "no such BPP in the store");
        e = IFPP_E_NOT_FOUND;
    } else {
        e = store_fail(s, rc, "reading a BPP");
    }
    store_release(s, st);
    return e;
}

/* ---- EUICCF05 connectivity tests (issue 15) ---- */

static const char *const conn_outcome_names[] = {"skipped", "passed", "failed", "refused"};

static ifpp_err store_record_conn_test_tx(store *s, void *arg)
{
    const store_conn_test *t = arg;
    char at[32], object[200], tx[33], ic[21];
    sqlite3_stmt *st;
    store_now(at);
    ifpp_err e = store_prepare(s, "INSERT INTO conn_test (txid, eid, iccid, mode, outcome, result, detail, nonce,"
                                  " evidence, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, t->txid, (int)t->txid_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, t->eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, t->iccid, 10, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->required ? "required" : "if-offered", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, conn_outcome_names[t->outcome], -1, SQLITE_STATIC);
    if (t->result >= 0)
        sqlite3_bind_int(st, 6, t->result);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_text(st, 7, t->detail, -1, SQLITE_STATIC);
    if (t->nonce)
        sqlite3_bind_blob(st, 8, t->nonce, 16, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 8);
    if (t->evidence)
        sqlite3_bind_blob(st, 9, t->evidence, (int)t->evidence_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 9);
    sqlite3_bind_text(st, 10, at, -1, SQLITE_STATIC);
    e = store_step_done(s, st, "recording a connectivity test");
    sqlite3_finalize(st);
    if (e != IFPP_OK)
        return e;
    /*
     * Audited without the txid column: a BPP's rows in the report take their reason from its last
     * txid-bearing entry (store_each_dut), which must stay the PIR's. The object names the BPP.
     */
    hex_encode(t->txid, t->txid_len, tx, sizeof tx);
    hex_encode(t->iccid, 10, ic, sizeof ic);
    snprintf(object, sizeof object, "conn_test bpp %s iccid %s %s result %d", tx, ic, conn_outcome_names[t->outcome],
             t->result);
    store_actor w = t->who ? *t->who : (store_actor){0};
    w.reason = t->detail;
    audit_fields f = {.event = "conn_test", .eid = t->eid, .who = &w, .object = object};
    return audit_append(s, &f);
}

ifpp_err store_record_conn_test(store *s, const store_conn_test *t)
{
    STORE_CHECK(s);
    if (!t || !t->txid || !t->txid_len || t->txid_len > 16 || !t->eid || !t->iccid || !t->detail ||
        (unsigned)t->outcome > STORE_CONN_REFUSED || t->result > 255 || t->result < -1 ||
        (t->evidence && (!t->evidence_len || t->evidence_len > STORE_CONN_EVIDENCE_MAX)) ||
        ((t->outcome == STORE_CONN_PASSED || t->outcome == STORE_CONN_FAILED) != (t->evidence && t->result >= 0)))
        return IFPP_E_ARG;
    return store_transaction(s, store_record_conn_test_tx, (void *)t);
}

ifpp_err store_conn_test_counts(store *s, const char *day, size_t counts[STORE_CONN__COUNT])
{
    STORE_CHECK(s);
    if (!counts)
        return IFPP_E_ARG;
    for (int i = 0; i < STORE_CONN__COUNT; i++)
        counts[i] = 0;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT outcome, count(*) FROM conn_test WHERE ?1 IS NULL OR substr(at, 1, 10) = ?1"
                                  " GROUP BY outcome", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *o = (const char *)sqlite3_column_text(st, 0);
        for (int i = 0; i < STORE_CONN__COUNT; i++)
            if (o && !strcmp(o, conn_outcome_names[i]))
                counts[i] = (size_t)sqlite3_column_int64(st, 1);
    }
    e = store_loop_end(s, rc, e, "counting connectivity tests");
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_last_conn_test(store *s, const uint8_t *txid, size_t txid_len, store_conn_test_row *out)
{
    STORE_CHECK(s);
    if (!txid || !txid_len || txid_len > 16 || !out)
        return IFPP_E_ARG;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT outcome, result, detail, nonce, evidence FROM conn_test WHERE txid = ?"
                                  " ORDER BY id DESC LIMIT 1", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, txid, (int)txid_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *o = (const char *)sqlite3_column_text(st, 0);
        const char *d = (const char *)sqlite3_column_text(st, 2);
        out->outcome = STORE_CONN__COUNT;
        for (int i = 0; i < STORE_CONN__COUNT; i++)
            if (o && !strcmp(o, conn_outcome_names[i]))
                out->outcome = (store_conn_outcome)i;
        out->result = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 1);
        snprintf(out->detail, sizeof out->detail, "%s", d ? d : "");
        out->has_nonce = sqlite3_column_bytes(st, 3) == 16;
        if (out->has_nonce)
            memcpy(out->nonce, sqlite3_column_blob(st, 3), 16);
        int en = sqlite3_column_bytes(st, 4);
        out->evidence_len = en > 0 && (size_t)en <= sizeof out->evidence ? (size_t)en : 0;
        if (out->evidence_len)
            memcpy(out->evidence, sqlite3_column_blob(st, 4), out->evidence_len);
        e = out->outcome == STORE_CONN__COUNT || (en > 0 && !out->evidence_len) ? IFPP_E_IO : IFPP_OK;
        if (e != IFPP_OK)
            snprintf(store_msg, sizeof store_msg, "store %s: a connectivity test row is malformed", s->path);
    } else if (rc == SQLITE_DONE) {
        e = IFPP_E_NOT_FOUND;
    } else {
        e = store_fail(s, rc, "reading a connectivity test");
    }
    sqlite3_finalize(st);
    return e;
}

/* ---- deletion jobs (issue 15 item 4) ---- */

typedef struct {
    const char *name;
    store_deletion_kind kind;
    const uint8_t *hash;
    size_t lines;
    bool *resumed;
} deletion_job_arg;

static const char *const deletion_kinds[] = {"serial", "eid"};

static ifpp_err store_deletion_job_begin_tx(store *s, void *arg)
{
    deletion_job_arg *a = arg;
    sqlite3_stmt *st;
    char at[32];
    ifpp_err e = store_prepare(s, "SELECT kind, list_hash, lines FROM deletion_job WHERE name = ?", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(st, 0);
        bool same = kind && !strcmp(kind, deletion_kinds[a->kind]) && sqlite3_column_bytes(st, 1) == 32 &&
                    !memcmp(sqlite3_column_blob(st, 1), a->hash, 32) &&
                    (size_t)sqlite3_column_int64(st, 2) == a->lines;
        sqlite3_finalize(st);
        if (!same) {
            snprintf(store_msg, sizeof store_msg, "deletion job '%s' exists with another list: give the new list "
                     "another --job name, or re-run the job with its own list to resume it", a->name);
            return IFPP_E_ARG;
        }
        *a->resumed = true;
        return IFPP_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, "reading a deletion job");
    *a->resumed = false;
    store_now(at);
    if ((e = store_prepare(s, "INSERT INTO deletion_job (name, kind, list_hash, lines, created_at) VALUES (?, ?, ?, ?, ?)",
                           &st)) != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, deletion_kinds[a->kind], -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, a->hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)a->lines);
    sqlite3_bind_text(st, 5, at, -1, SQLITE_STATIC);
    e = store_step_done(s, st, "starting a deletion job");
    sqlite3_finalize(st);
    store_actor who = {.reason = "deletion job started (use case A.4)"};
    audit_fields f = {.event = "deletion_job", .object = a->name, .who = &who};
    return e == IFPP_OK ? audit_append(s, &f) : e;
}

ifpp_err store_deletion_job_begin(store *s, const char *name, store_deletion_kind kind, const uint8_t list_hash[32],
                                  size_t lines, bool *resumed)
{
    if (!name || !*name || (unsigned)kind > STORE_DELETION_BY_EID || !list_hash || !resumed || lines > INT64_MAX)
        return IFPP_E_ARG;
    deletion_job_arg a = {.name = name, .kind = kind, .hash = list_hash, .lines = lines, .resumed = resumed};
    return store_transaction(s, store_deletion_job_begin_tx, &a);
}

ifpp_err store_deletion_item_done(store *s, const char *job, size_t line, bool *done)
{
    STORE_CHECK(s);
    if (!job || !done || line == 0)
        return IFPP_E_ARG;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT 1 FROM deletion_item WHERE job = ? AND line = ? AND outcome = 'done'", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)line);
    int rc = sqlite3_step(st);
    *done = rc == SQLITE_ROW;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? IFPP_OK : store_fail(s, rc, "reading a deletion job's line");
}

typedef struct {
    const char *job, *ident, *reason;
    size_t line, profiles;
    bool done;
} deletion_item_arg;

static ifpp_err store_deletion_item_set_tx(store *s, void *arg)
{
    deletion_item_arg *a = arg;
    sqlite3_stmt *st;
    char at[32];
    store_now(at);
    ifpp_err e = store_prepare(s, "INSERT OR REPLACE INTO deletion_item (job, line, ident, outcome, profiles, reason,"
                                  " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, a->job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)a->line);
    sqlite3_bind_text(st, 3, a->ident, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->done ? "done" : "failed", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)a->profiles);
    sqlite3_bind_text(st, 6, a->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, at, -1, SQLITE_STATIC);
    e = store_step_done(s, st, "recording a deletion job's line");
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_deletion_item_set(store *s, const char *job, size_t line, const char *ident, bool done,
                                 size_t profiles, const char *reason)
{
    if (!job || !ident || line == 0 || line > INT64_MAX || profiles > INT64_MAX)
        return IFPP_E_ARG;
    deletion_item_arg a = {.job = job, .ident = ident, .reason = reason, .line = line, .profiles = profiles,
                           .done = done};
    return store_transaction(s, store_deletion_item_set_tx, &a);
}

static ifpp_err store_deletion_job_finish_tx(store *s, void *arg)
{
    const char *job = arg;
    sqlite3_stmt *st;
    char at[32];
    store_now(at);
    ifpp_err e = store_prepare(s, "UPDATE deletion_job SET finished_at = ? WHERE name = ? AND finished_at IS NULL", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, job, -1, SQLITE_STATIC);
    e = store_step_done(s, st, "finishing a deletion job");
    bool changed = e == IFPP_OK && sqlite3_changes(s->db) > 0;
    sqlite3_finalize(st);
    store_actor who = {.reason = "deletion job finished: every line done"};
    audit_fields f = {.event = "deletion_job", .object = job, .who = &who};
    return e == IFPP_OK && changed ? audit_append(s, &f) : e;
}

ifpp_err store_deletion_job_finish(store *s, const char *job)
{
    if (!job)
        return IFPP_E_ARG;
    return store_transaction(s, store_deletion_job_finish_tx, (void *)job);
}

ifpp_err store_eid_of_serial(store *s, const char *serial, uint8_t eid[16])
{
    STORE_CHECK(s);
    if (!serial || !eid)
        return IFPP_E_ARG;
    sqlite3_stmt *st;
    /* the profiles a session installed (or a deletion retired) for this DUT: all must be on one eUICC */
    ifpp_err e = store_prepare(s, "SELECT DISTINCT eid FROM bpp WHERE dut_serial = ? AND state IN ('installed', 'deleted')"
                                  " LIMIT 2", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    size_t found = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) == 16 && found == 0)
            memcpy(eid, sqlite3_column_blob(st, 0), 16);
        found++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, "looking up a DUT serial");
    if (found == 0) {
        snprintf(store_msg, sizeof store_msg, "no profile was installed on a DUT with this serial");
        return IFPP_E_NOT_FOUND;
    }
    if (found > 1) {
        snprintf(store_msg, sizeof store_msg, "this serial names more than one eUICC: give the EIDs instead");
        return IFPP_E_RANGE;
    }
    return IFPP_OK;
}

ifpp_err store_deletion_targets(store *s, const uint8_t eid[16], store_deletion_target *out, size_t max, size_t *n)
{
    STORE_CHECK(s);
    if (!eid || !n || (max && !out))
        return IFPP_E_ARG;
    *n = 0;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT b.txid, b.iccid, b.state, d.seq FROM bpp b"
                                  " LEFT JOIN deletion_notification d ON d.txid = b.txid WHERE b.eid = ?"
                                  " AND (b.state = 'installed' OR (b.state = 'deleted' AND d.txid IS NOT NULL))"
                                  " ORDER BY b.rowid", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, eid, 16, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t tl = (size_t)sqlite3_column_bytes(st, 0);
        store_deletion_target t = {.txid_len = tl, .recorded = sqlite3_column_type(st, 3) != SQLITE_NULL,
                                   .seq = (uint64_t)sqlite3_column_int64(st, 3)};
        if (*n == max) {
            snprintf(store_msg, sizeof store_msg, "this eUICC has more than %zu profiles to delete", max);
            e = IFPP_E_RANGE;
            break;
        }
        if (tl == 0 || tl > 16 || sqlite3_column_bytes(st, 1) != 10 ||
            !bpp_state_parse((const char *)sqlite3_column_text(st, 2), &t.state)) {
            snprintf(store_msg, sizeof store_msg, "store %s: a BPP row is malformed", s->path);
            e = IFPP_E_IO;
            break;
        }
        memcpy(t.txid, sqlite3_column_blob(st, 0), tl);
        memcpy(t.iccid, sqlite3_column_blob(st, 1), 10);
        out[(*n)++] = t;
    }
    e = store_loop_end(s, rc, e, "listing an eUICC's profiles to delete");
    sqlite3_finalize(st);
    return e;
}

typedef struct {
    const uint8_t *txid, *notification;
    size_t txid_len, n;
    uint64_t seq;
    const char *job;
    const store_actor *who;
} deletion_record_arg;

static ifpp_err store_record_deletion_tx(store *s, void *arg)
{
    deletion_record_arg *a = arg;
    sqlite3_stmt *st;
    char at[32];
    store_bpp b;
    ifpp_err e = store_get_bpp(s, a->txid, a->txid_len, &b);
    if (e == IFPP_OK)
        e = store_move_row(s, a->txid, a->txid_len, BPP_INSTALLED, BPP_DELETED, a->who);
    if (e != IFPP_OK)
        return e;
    store_now(at);
    if ((e = store_prepare(s, "INSERT INTO deletion_notification (txid, eid, seq, notification, job, received_at)"
                              " VALUES (?, ?, ?, ?, ?, ?)", &st)) != IFPP_OK)
        return e;
    sqlite3_bind_blob(st, 1, a->txid, (int)a->txid_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, b.eid, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)a->seq);
    sqlite3_bind_blob(st, 4, a->notification, (int)a->n, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->job, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, at, -1, SQLITE_STATIC);
    e = store_step_done(s, st, "recording a deletion notification");
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_record_deletion(store *s, const uint8_t *txid, size_t txid_len, uint64_t seq,
                               const uint8_t *notification, size_t n, const char *job, const store_actor *who)
{
    if (!s || !txid || !txid_len || txid_len > 16 || !notification || !n || n > INT32_MAX || !job ||
        seq > INT64_MAX)
        return IFPP_E_ARG;
    deletion_record_arg a = {.txid = txid, .txid_len = txid_len, .notification = notification, .n = n, .seq = seq,
                             .job = job, .who = who};
    return store_transaction(s, store_record_deletion_tx, &a);
}

ifpp_err store_each_deletion(store *s, const char *job, ifpp_err (*fn)(void *arg, const store_deletion_record *r),
                             void *arg)
{
    STORE_CHECK(s);
    if (!fn)
        return IFPP_E_ARG;
    sqlite3_stmt *st;
    ifpp_err e = store_prepare(s, "SELECT d.txid, d.eid, b.iccid, d.notification, b.dut_serial, d.job, d.received_at"
                                  " FROM deletion_notification d JOIN bpp b ON b.txid = d.txid"
                                  " WHERE ?1 IS NULL OR d.job = ?1 ORDER BY d.rowid", &st);
    if (e != IFPP_OK)
        return e;
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_deletion_record r = {
            .txid = sqlite3_column_blob(st, 0), .txid_len = (size_t)sqlite3_column_bytes(st, 0),
            .eid = sqlite3_column_blob(st, 1), .iccid = sqlite3_column_blob(st, 2),
            .notification = sqlite3_column_blob(st, 3), .notification_len = (size_t)sqlite3_column_bytes(st, 3),
            .dut_serial = (const char *)sqlite3_column_text(st, 4), .job = (const char *)sqlite3_column_text(st, 5),
            .received_at = (const char *)sqlite3_column_text(st, 6),
        };
        if (r.txid_len == 0 || r.txid_len > 16 || sqlite3_column_bytes(st, 1) != 16 ||
            sqlite3_column_bytes(st, 2) != 10 || !r.notification_len || !r.job || !r.received_at) {
            snprintf(store_msg, sizeof store_msg, "store %s: a deletion record is malformed", s->path);
            e = IFPP_E_IO;
            break;
        }
        if ((e = fn(arg, &r)) != IFPP_OK)
            break;
    }
    e = store_loop_end(s, rc, e, "reading the recorded deletions");
    sqlite3_finalize(st);
    return e;
}

int store_schema_latest(void)
{
    return STORE_SCHEMA_VERSION;
}

/* ---- group commit (issue 13 item 5, issue 16 item 4) ---- */

/*
 * One committer thread owns one writer connection. A joined connection's outermost transaction becomes
 * a request on the committer's queue and its thread waits on the request's own condition variable. The
 * committer takes everything queued (up to GROUP_MAX_BATCH), runs each request in a SAVEPOINT inside one
 * BEGIN IMMEDIATE .. COMMIT, and only once COMMIT has returned (the WAL synced: synchronous=FULL) tells
 * each waiter its own result. So a waiter is never told OK for a move that is not on disk, a failed
 * request leaves nothing behind, and the audit rows, appended by one connection in request order, chain
 * in commit order exactly as before.
 */

#define GROUP_MAX_BATCH 256
#define GROUP_SAVEPOINT "ifpp_group_move"

/* The committer's own statements, compiled once: per move they are most of what it adds to the move's own. */
enum { GQ_BEGIN, GQ_SAVEPOINT, GQ_RELEASE, GQ_ROLLBACK_TO, GQ_COMMIT, GQ__COUNT };
static const char *const group_sql[GQ__COUNT][2] = {
    {"BEGIN IMMEDIATE", "taking the write lock"},
    {"SAVEPOINT " GROUP_SAVEPOINT, "opening a move's savepoint"},
    {"RELEASE " GROUP_SAVEPOINT, "closing a move's savepoint"},
    {"ROLLBACK TO " GROUP_SAVEPOINT, "rolling a move back"},
    {"COMMIT", "committing a group of moves"},
};

typedef struct group_req {
    ifpp_err (*fn)(store *s, void *arg);
    void *arg;
    ifpp_err result;
    bool done;
    pthread_cond_t cv; /* the waiter's own: a batch's end wakes exactly its waiters */
    char msg[512];     /* the committer's store_msg for a failure, handed to the waiter's thread */
    struct group_req *next;
} group_req;

struct store_group {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a request was queued, the committer is ready, or stop */
    group_req *head, *tail;
    bool started, stopping;
    pthread_t thread;
    store *w;            /* the writer: opened, used and closed by the committer thread only */
    char *path;
    ifpp_err open_err;
    char open_why[512];
    int busy_ms;         /* asked for by store_group_set_busy_timeout (-1: the store's default) */
    sqlite3_stmt *q[GQ__COUNT]; /* group_sql compiled on w (NULL: run as text) */
    store_group_stats stats;
};

/* Runs one of the committer's statements on its connection. */
static ifpp_err group_exec(store_group *g, int which)
{
    if (!g->q[which])
        return store_exec(g->w, group_sql[which][0], group_sql[which][1]);
    int rc = sqlite3_step(g->q[which]);
    sqlite3_reset(g->q[which]);
    return rc == SQLITE_DONE ? IFPP_OK : store_fail(g->w, rc, group_sql[which][1]);
}

/* The committer's verdict on one request, with its thread's message when it failed. */
static void group_decide(group_req *r, ifpp_err e)
{
    r->result = e;
    if (e != IFPP_OK)
        snprintf(r->msg, sizeof r->msg, "%s", store_msg[0] ? store_msg : err_str(e));
}

/*
 * Runs a batch as one transaction. If SQLite itself aborts the transaction (an I/O error or a full disk
 * rolls back everything, not only the failing statement), the request that hit it gets the error and the
 * others run again in a fresh transaction: each pass decides at least one request, so this ends.
 */
static void group_run_batch(store_group *g, group_req **b, size_t n)
{
    store *w = g->w;
    bool decided[GROUP_MAX_BATCH] = {false}, applied[GROUP_MAX_BATCH];
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            left += !decided[i];
        if (left == 0)
            return;
        store_msg[0] = '\0';
        ifpp_err e = group_exec(g, GQ_BEGIN);
        if (e != IFPP_OK) {
            for (size_t i = 0; i < n; i++)
                if (!decided[i])
                    group_decide(b[i], e);
            return;
        }
        bool aborted = false;
        w->depth = 1; /* a nested store_transaction() inside fn joins, as it does outside a group */
        for (size_t i = 0; i < n && !aborted; i++) {
            applied[i] = false;
            if (decided[i])
                continue;
            store_msg[0] = '\0';
            w->inner_failed = false;
            e = group_exec(g, GQ_SAVEPOINT);
            if (e == IFPP_OK)
                e = b[i]->fn(w, b[i]->arg);
            if (e == IFPP_OK && w->inner_failed) {
                snprintf(store_msg, sizeof store_msg, "store %s: a step inside the transaction failed; rolled back",
                         w->path);
                e = IFPP_E_INTERNAL;
            }
            if (sqlite3_get_autocommit(w->db)) { /* SQLite rolled the whole transaction back */
                group_decide(b[i], e != IFPP_OK ? e : IFPP_E_IO);
                decided[i] = aborted = true;
                break;
            }
            if (e == IFPP_OK && (e = group_exec(g, GQ_RELEASE)) == IFPP_OK) {
                applied[i] = true;
                continue;
            }
            group_decide(b[i], e); /* before the rollback: its message is the cause */
            decided[i] = true;
            (void)group_exec(g, GQ_ROLLBACK_TO); /* store_msg keeps the move's own failure: it is already decided */
            (void)group_exec(g, GQ_RELEASE);
            if (sqlite3_get_autocommit(w->db))
                aborted = true;
        }
        w->depth = 0;
        w->inner_failed = false;
        if (aborted) {
            bppfile_after_rollback(w);
            continue; /* nothing of this pass is in the file: run the undecided ones again */
        }
        store_msg[0] = '\0';
        /* a move that appended BPP bytes (none does today: imports commit directly) gets them synced first, as
         * store_transaction does; bytes of a move rolled back to its savepoint stay unreferenced past the rows */
        e = bppfile_before_commit(w);
        if (e == IFPP_OK)
            e = group_exec(g, GQ_COMMIT);
        if (e != IFPP_OK) {
            sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL); /* none of them is durable: none is told OK */
            bppfile_after_rollback(w);
        } else {
            bppfile_after_commit(w);
            w->commits++;
        }
        for (size_t i = 0; i < n; i++)
            if (applied[i]) {
                group_decide(b[i], e);
                decided[i] = true;
            }
        return;
    }
}

static void *group_main(void *arg)
{
    store_group *g = arg;
    store *w = NULL;
    char why[512] = "";
    ifpp_err e = store_open(g->path, &w, why, sizeof why);
    pthread_mutex_lock(&g->mu);
    g->w = w;
    g->open_err = e;
    snprintf(g->open_why, sizeof g->open_why, "%s", why);
    g->started = true;
    pthread_cond_broadcast(&g->work);
    pthread_mutex_unlock(&g->mu);
    if (e != IFPP_OK)
        return NULL;
    for (int i = 0; i < GQ__COUNT; i++)
        if (sqlite3_prepare_v3(w->db, group_sql[i][0], -1, SQLITE_PREPARE_PERSISTENT, &g->q[i], NULL) != SQLITE_OK)
            g->q[i] = NULL; /* group_exec runs it as text */
    group_req *batch[GROUP_MAX_BATCH];
    for (;;) {
        pthread_mutex_lock(&g->mu);
        while (!g->head && !g->stopping)
            pthread_cond_wait(&g->work, &g->mu);
        size_t n = 0;
        while (g->head && n < GROUP_MAX_BATCH) {
            batch[n++] = g->head;
            g->head = g->head->next;
        }
        if (!g->head)
            g->tail = NULL;
        g->stats.queued -= n;
        int busy_ms = g->busy_ms;
        pthread_mutex_unlock(&g->mu);
        if (busy_ms >= 0 && busy_ms != w->busy_ms)
            store_set_busy_timeout(w, busy_ms);
        if (n == 0)
            break; /* stopping, and nothing left to run */
        group_run_batch(g, batch, n);
        pthread_mutex_lock(&g->mu);
        g->stats.batches++;
        g->stats.transactions += n;
        if (n > g->stats.max_batch)
            g->stats.max_batch = n;
        for (size_t i = 0; i < n; i++) {
            g->stats.failed += batch[i]->result != IFPP_OK;
            batch[i]->done = true;
            pthread_cond_signal(&batch[i]->cv); /* the waiter frees it only after we unlock */
        }
        pthread_mutex_unlock(&g->mu);
    }
    for (int i = 0; i < GQ__COUNT; i++)
        sqlite3_finalize(g->q[i]);
    store_close(w);
    return NULL;
}

ifpp_err store_group_open(const char *path, store_group **out, char *why, size_t why_len)
{
    if (!path || !*path || !out) {
        err_why(why, why_len, "no store path given");
        return IFPP_E_ARG;
    }
    *out = NULL;
    store_group *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        err_why(why, why_len, "store %s: out of memory for its committer", path);
        return IFPP_E_NOMEM;
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->work, NULL);
    g->busy_ms = -1;
    int rc = pthread_create(&g->thread, NULL, group_main, g);
    if (rc != 0) {
        err_why(why, why_len, "store %s: cannot start its committer thread: %s", path, strerror(rc));
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->work);
        free(g->path);
        free(g);
        return IFPP_E_NOMEM;
    }
    pthread_mutex_lock(&g->mu);
    while (!g->started)
        pthread_cond_wait(&g->work, &g->mu);
    ifpp_err e = g->open_err;
    pthread_mutex_unlock(&g->mu);
    if (e != IFPP_OK) {
        err_why(why, why_len, "%s", g->open_why);
        pthread_join(g->thread, NULL);
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->work);
        free(g->path);
        free(g);
        return e;
    }
    *out = g;
    return IFPP_OK;
}

ifpp_err store_group_join(store *s, store_group *g)
{
    STORE_CHECK(s);
    struct stat a, b;
    if (!g)
        return IFPP_E_ARG;
    if (s->readonly) {
        snprintf(store_msg, sizeof store_msg, "store %s was opened read-only: it has no writes to group", s->path);
        return IFPP_E_ARG;
    }
    /* the committer's file and this connection's must be one file, or a move would land in another store */
    if (stat(s->path, &a) != 0 || stat(g->path, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        snprintf(store_msg, sizeof store_msg, "store %s: the group commits to %s, another file", s->path, g->path);
        return IFPP_E_ARG;
    }
    s->group = g;
    return IFPP_OK;
}

/* Queues fn for the committer and waits for its verdict (after the batch's COMMIT, or its failure). */
static ifpp_err store_group_run(store *s, ifpp_err (*fn)(store *s, void *arg), void *arg)
{
    store_group *g = s->group;
    group_req r = {.fn = fn, .arg = arg, .result = IFPP_E_INTERNAL};
    pthread_cond_init(&r.cv, NULL);
    pthread_mutex_lock(&g->mu);
    if (g->tail)
        g->tail->next = &r;
    else
        g->head = &r;
    g->tail = &r;
    g->stats.queued++;
    pthread_cond_signal(&g->work);
    while (!r.done)
        pthread_cond_wait(&r.cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&r.cv);
    if (r.result == IFPP_OK)
        s->commits++;
    else
        snprintf(store_msg, sizeof store_msg, "%s", r.msg);
    return r.result;
}

void store_group_close(store_group *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_cond_broadcast(&g->work);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->work);
    free(g->path);
    free(g);
}

void store_group_set_busy_timeout(store_group *g, int ms)
{
    if (!g || ms < 0)
        return;
    pthread_mutex_lock(&g->mu);
    g->busy_ms = ms;
    pthread_mutex_unlock(&g->mu);
}

void store_group_get_stats(store_group *g, store_group_stats *out)
{
    if (!g || !out)
        return;
    pthread_mutex_lock(&g->mu);
    *out = g->stats;
    pthread_mutex_unlock(&g->mu);
}

uint64_t store_commits(const store *s)
{
    return s ? s->commits : 0;
}
