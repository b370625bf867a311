/*
 * store.c -- the SQLite store; the contract and the state machine are in store.h.
 *
 * Every write goes through store_transaction(): BEGIN IMMEDIATE takes the write lock up
 * front (one writer, no upgrade deadlock), the work and its audit row happen inside, and
 * COMMIT under synchronous=FULL returns only once the WAL is on disk. A state move is an
 * UPDATE ... WHERE state = <expected>; if no row changed, someone else moved it first and
 * the transaction rolls back with nothing written.
 */
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "hex.h"

struct store {
    sqlite3 *db;
};

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

static ifpp_err store_exec(store *s, const char *sql)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? IFPP_OK : IFPP_E_IO;
}

/* Prepares sql; the caller finalises. */
static sqlite3_stmt *store_prepare(store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    return st;
}

ifpp_err store_transaction(store *s, ifpp_err (*fn)(store *s, void *arg), void *arg)
{
    /* Inside an outer transaction (an import of a whole bundle), the outer one commits or rolls back. */
    if (!sqlite3_get_autocommit(s->db))
        return fn(s, arg);
    if (store_exec(s, "BEGIN IMMEDIATE") != IFPP_OK)
        return IFPP_E_IO;
    ifpp_err e = fn(s, arg);
    if (e == IFPP_OK && store_exec(s, "COMMIT") == IFPP_OK)
        return IFPP_OK;
    store_exec(s, "ROLLBACK");
    return e == IFPP_OK ? IFPP_E_IO : e;
}

static ifpp_err store_fetch_blob(store *s, const char *sql, const void *key, int key_len, bool text, uint8_t **out,
                                 size_t *n);

/* ---- the audit chain ---------------------------------------------------------------------- */

static void audit_hash(const uint8_t prev[32], sqlite3_int64 id, const char *at, const char *event,
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

/* Appends one audit row chained to the last; call inside a transaction. */
static ifpp_err audit_append(store *s, const char *event, const char *detail)
{
    uint8_t prev[32] = {0}, hash[32];
    sqlite3_int64 id = 1;
    char at[32];
    sqlite3_stmt *st = store_prepare(s, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1");
    if (!st)
        return IFPP_E_IO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0) + 1;
        if (sqlite3_column_bytes(st, 1) == 32)
            memcpy(prev, sqlite3_column_blob(st, 1), 32);
    }
    sqlite3_finalize(st);
    store_now(at);
    audit_hash(prev, id, at, event, detail, hash);
    st = store_prepare(s, "INSERT INTO audit (id, at, event, detail, prev, hash) VALUES (?, ?, ?, ?, ?, ?)");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, at, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, event, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, detail, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 5, prev, 32, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 6, hash, 32, SQLITE_TRANSIENT);
    ifpp_err e = sqlite3_step(st) == SQLITE_DONE ? IFPP_OK : IFPP_E_IO;
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_audit_verify(store *s, size_t *entries, char *why, size_t why_len)
{
    uint8_t prev[32] = {0}, want[32];
    sqlite3_int64 expect_id = 1;
    size_t n = 0;
    ifpp_err e = IFPP_OK;
    sqlite3_stmt *st = store_prepare(s, "SELECT id, at, event, detail, prev, hash FROM audit ORDER BY id");
    if (!st)
        return IFPP_E_IO;
    while (e == IFPP_OK && sqlite3_step(st) == SQLITE_ROW) {
        sqlite3_int64 id = sqlite3_column_int64(st, 0);
        const char *at = (const char *)sqlite3_column_text(st, 1);
        const char *event = (const char *)sqlite3_column_text(st, 2);
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        if (id != expect_id) {
            err_why(why, why_len, "audit log: entry %lld missing (found %lld next)", (long long)expect_id, (long long)id);
            e = IFPP_E_SIGNATURE;
            break;
        }
        if (sqlite3_column_bytes(st, 4) != 32 || memcmp(sqlite3_column_blob(st, 4), prev, 32) != 0) {
            err_why(why, why_len, "audit log: entry %lld does not chain to entry %lld", (long long)id, (long long)id - 1);
            e = IFPP_E_SIGNATURE;
            break;
        }
        audit_hash(prev, id, at ? at : "", event ? event : "", detail ? detail : "", want);
        if (sqlite3_column_bytes(st, 5) != 32 || memcmp(sqlite3_column_blob(st, 5), want, 32) != 0) {
            err_why(why, why_len, "audit log: entry %lld was altered (hash mismatch)", (long long)id);
            e = IFPP_E_SIGNATURE;
            break;
        }
        memcpy(prev, want, 32);
        expect_id++;
        n++;
    }
    sqlite3_finalize(st);
    if (entries)
        *entries = n;
    return e;
}

/* ---- open, migrate ------------------------------------------------------------------------- */

int store_schema_version(store *s)
{
    int v = -1;
    sqlite3_stmt *st = store_prepare(s, "PRAGMA user_version");
    if (st && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

typedef struct {
    int from;
} migrate_arg;

static ifpp_err store_migrate_step(store *s, void *arg)
{
    int from = ((migrate_arg *)arg)->from;
    char pragma[64], detail[64];
    if (store_exec(s, migrations[from]) != IFPP_OK)
        return IFPP_E_IO;
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", from + 1);
    snprintf(detail, sizeof detail, "schema %d -> %d", from, from + 1);
    if (store_exec(s, pragma) != IFPP_OK)
        return IFPP_E_IO;
    return audit_append(s, "migrate", detail);
}

ifpp_err store_open(const char *path, store **out, char *why, size_t why_len)
{
    if (!path || !out)
        return IFPP_E_ARG;
    store *s = calloc(1, sizeof *s);
    if (!s)
        return IFPP_E_NOMEM;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        err_why(why, why_len, "cannot open store %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        store_close(s);
        return IFPP_E_IO;
    }
    sqlite3_busy_timeout(s->db, 5000);
    /* Durability before speed: every commit is on disk when it returns (the exactly-once promise). */
    if (store_exec(s, "PRAGMA journal_mode = WAL") != IFPP_OK || store_exec(s, "PRAGMA synchronous = FULL") != IFPP_OK ||
        store_exec(s, "PRAGMA foreign_keys = ON") != IFPP_OK) {
        err_why(why, why_len, "store %s: cannot set WAL/synchronous/foreign keys: %s", path, sqlite3_errmsg(s->db));
        store_close(s);
        return IFPP_E_IO;
    }
    int v = store_schema_version(s);
    if (v < 0 || v > STORE_SCHEMA_VERSION) {
        err_why(why, why_len, "store %s: schema version %d is newer than this program knows (%d)", path, v,
                STORE_SCHEMA_VERSION);
        store_close(s);
        return IFPP_E_RANGE;
    }
    for (; v < STORE_SCHEMA_VERSION; v++) {
        migrate_arg a = {v};
        if (store_transaction(s, store_migrate_step, &a) != IFPP_OK) {
            err_why(why, why_len, "store %s: migration to schema %d failed: %s", path, v + 1, sqlite3_errmsg(s->db));
            store_close(s);
            return IFPP_E_IO;
        }
    }
    *out = s;
    return IFPP_OK;
}

void store_close(store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
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
    char at[32], eid_hex[33];
    sqlite3_stmt *st = store_prepare(s, "SELECT cert, info2 FROM euicc WHERE eid = ?");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_blob(st, 1, a->eid, 16, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        bool same = (size_t)sqlite3_column_bytes(st, 0) == a->cert_len &&
                    memcmp(sqlite3_column_blob(st, 0), a->cert, a->cert_len) == 0 &&
                    (size_t)sqlite3_column_bytes(st, 1) == a->info2_len &&
                    memcmp(sqlite3_column_blob(st, 1), a->info2, a->info2_len) == 0;
        sqlite3_finalize(st);
        return same ? IFPP_OK : IFPP_E_ARG;
    }
    sqlite3_finalize(st);
    store_now(at);
    st = store_prepare(s, "INSERT INTO euicc (eid, cert, info2, added_at) VALUES (?, ?, ?, ?)");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_blob(st, 1, a->eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->cert, (int)a->cert_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, a->info2, (int)a->info2_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, at, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return IFPP_E_IO;
    hex_encode(a->eid, 16, eid_hex, sizeof eid_hex);
    return audit_append(s, "euicc_added", eid_hex);
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
    sqlite3_stmt *st = store_prepare(s, "INSERT OR IGNORE INTO otk (eid, otpk, proof) VALUES (?, ?, ?)");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_blob(st, 1, a->eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->otpk, 65, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, a->proof, 64, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IFPP_OK : IFPP_E_IO; /* an unknown EID fails the foreign key */
}

ifpp_err store_add_otk(store *s, const uint8_t eid[16], const uint8_t otpk[65], const uint8_t proof[64])
{
    if (!s || !eid || !otpk || !proof)
        return IFPP_E_ARG;
    euicc_arg a = {.eid = eid, .otpk = otpk, .proof = proof};
    return store_transaction(s, store_add_otk_tx, &a);
}

bool store_has_otk(store *s, const uint8_t eid[16], const uint8_t otpk[65])
{
    sqlite3_stmt *st = store_prepare(s, "SELECT 1 FROM otk WHERE eid = ? AND otpk = ?");
    if (!st)
        return false;
    sqlite3_bind_blob(st, 1, eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, otpk, 65, SQLITE_STATIC);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

/* ---- BPPs ------------------------------------------------------------------------------- */

/* "txid=… eid=… state a->b session=… slot=… serial=… reason=…" for the audit log. */
static void store_describe(char *out, size_t n, const uint8_t *txid, size_t txid_len, const uint8_t *eid,
                           const char *move, const store_actor *who)
{
    char tx[33] = "", e[33] = "";
    hex_encode(txid, txid_len, tx, sizeof tx);
    if (eid)
        hex_encode(eid, 16, e, sizeof e);
    snprintf(out, n, "txid=%s eid=%s %s session=%s slot=%s serial=%s reason=%s", tx, e, move,
             who && who->session ? who->session : "-", who && who->slot ? who->slot : "-",
             who && who->dut_serial ? who->dut_serial : "-", who && who->reason ? who->reason : "-");
}

typedef struct {
    const store_bpp *b;
    bool *duplicate;
    char *why;
    size_t why_len;
} add_bpp_arg;

static ifpp_err store_add_bpp_tx(store *s, void *arg)
{
    add_bpp_arg *a = arg;
    const store_bpp *b = a->b;
    char at[32], detail[512];
    sqlite3_stmt *st = store_prepare(s, "SELECT txid, bpp_hash FROM bpp WHERE txid = ? OR (eid = ? AND otpk = ?)");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_blob(st, 1, b->transaction_id, (int)b->transaction_id_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, b->eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, b->otpk, 65, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        bool same = (size_t)sqlite3_column_bytes(st, 0) == b->transaction_id_len &&
                    memcmp(sqlite3_column_blob(st, 0), b->transaction_id, b->transaction_id_len) == 0 &&
                    sqlite3_column_bytes(st, 1) == 32 && memcmp(sqlite3_column_blob(st, 1), b->bpp_hash, 32) == 0;
        sqlite3_finalize(st);
        if (same) {
            *a->duplicate = true;
            return IFPP_OK;
        }
        char tx[33];
        hex_encode(b->transaction_id, b->transaction_id_len, tx, sizeof tx);
        err_why(a->why, a->why_len,
                "BPP %s conflicts with one already in the store (same transaction id, or a second BPP for the "
                "same One-time Key: GENS08)", tx);
        return IFPP_E_ARG;
    }
    sqlite3_finalize(st);
    store_now(at);
    st = store_prepare(s, "INSERT INTO bpp (txid, eid, otpk, iccid, profile_type, bpp_hash, bpp, vault_id, state,"
                          " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'available', ?)");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_blob(st, 1, b->transaction_id, (int)b->transaction_id_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, b->eid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, b->otpk, 65, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, b->iccid, 10, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, b->profile_type, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, b->bpp_hash, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, b->bpp, (int)b->bpp_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, b->vault_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, at, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        err_why(a->why, a->why_len, "BPP for an unknown eUICC or One-time Key: %s", sqlite3_errmsg(s->db));
        return IFPP_E_ARG;
    }
    store_describe(detail, sizeof detail, b->transaction_id, b->transaction_id_len, b->eid, "-> available", NULL);
    return audit_append(s, "bpp_added", detail);
}

ifpp_err store_add_bpp(store *s, const store_bpp *b, bool *duplicate, char *why, size_t why_len)
{
    bool dup = false;
    if (!s || !b || !b->bpp || b->bpp_len == 0 || b->bpp_len > INT32_MAX || b->transaction_id_len == 0 ||
        b->transaction_id_len > 16)
        return IFPP_E_ARG;
    add_bpp_arg a = {.b = b, .duplicate = &dup, .why = why, .why_len = why_len};
    ifpp_err e = store_transaction(s, store_add_bpp_tx, &a);
    if (duplicate)
        *duplicate = dup;
    return e;
}

static ifpp_err store_row_to_bpp(sqlite3_stmt *st, store_bpp *out)
{
    memset(out, 0, sizeof *out);
    size_t tl = (size_t)sqlite3_column_bytes(st, 0);
    if (tl == 0 || tl > 16 || sqlite3_column_bytes(st, 1) != 16 || sqlite3_column_bytes(st, 2) != 65 ||
        sqlite3_column_bytes(st, 3) != 10 || sqlite3_column_bytes(st, 5) != 32)
        return IFPP_E_IO;
    memcpy(out->transaction_id, sqlite3_column_blob(st, 0), tl);
    out->transaction_id_len = tl;
    memcpy(out->eid, sqlite3_column_blob(st, 1), 16);
    memcpy(out->otpk, sqlite3_column_blob(st, 2), 65);
    memcpy(out->iccid, sqlite3_column_blob(st, 3), 10);
    snprintf(out->profile_type, sizeof out->profile_type, "%s", (const char *)sqlite3_column_text(st, 4));
    memcpy(out->bpp_hash, sqlite3_column_blob(st, 5), 32);
    snprintf(out->vault_id, sizeof out->vault_id, "%s", (const char *)sqlite3_column_text(st, 6));
    out->bpp_len = (size_t)sqlite3_column_int64(st, 8);
    return bpp_state_parse((const char *)sqlite3_column_text(st, 7), &out->state) ? IFPP_OK : IFPP_E_IO;
}

#define BPP_COLUMNS "txid, eid, otpk, iccid, profile_type, bpp_hash, vault_id, state, length(bpp)"

/* The conditional move at the heart of exactly-once: only from the expected state. */
static ifpp_err store_move_row(store *s, const uint8_t *txid, size_t txid_len, bpp_state from, bpp_state to,
                               const store_actor *who)
{
    char at[32], detail[512], move[64];
    if (!bpp_transition_allowed(from, to))
        return IFPP_E_ARG;
    store_now(at);
    sqlite3_stmt *st = store_prepare(s, "UPDATE bpp SET state = ?, session = coalesce(?, session),"
                                        " slot = coalesce(?, slot), dut_serial = coalesce(?, dut_serial),"
                                        " updated_at = ? WHERE txid = ? AND state = ? RETURNING eid");
    if (!st)
        return IFPP_E_IO;
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
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return IFPP_E_IO;
    if (!moved)
        return IFPP_E_RANGE; /* not in `from` (any more): someone else moved it, or it never was */
    snprintf(move, sizeof move, "%s -> %s", state_names[from], state_names[to]);
    store_describe(detail, sizeof detail, txid, txid_len, eid, move, who);
    return audit_append(s, "bpp_state", detail);
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
    sqlite3_stmt *st = store_prepare(s, "SELECT " BPP_COLUMNS " FROM bpp WHERE eid = ? AND state = 'available'"
                                        " AND (?2 IS NULL OR profile_type = ?2) ORDER BY rowid LIMIT 1");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_blob(st, 1, a->eid, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->profile_type, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    ifpp_err e = rc == SQLITE_ROW ? store_row_to_bpp(st, a->out) : rc == SQLITE_DONE ? IFPP_E_NOT_FOUND : IFPP_E_IO;
    sqlite3_finalize(st);
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
    if (!s || !txid || !txid_len || txid_len > 16)
        return IFPP_E_ARG;
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
    sqlite3_stmt *st = store_prepare(s, "INSERT INTO pir (txid, pir, success, received_at) VALUES (?, ?, ?, ?)");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_blob(st, 1, a->txid, (int)a->txid_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->pir, (int)a->pir_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, a->success ? 1 : 0);
    sqlite3_bind_text(st, 4, at, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IFPP_OK : IFPP_E_IO;
}

ifpp_err store_record_pir(store *s, const uint8_t *txid, size_t txid_len, const uint8_t *pir, size_t pir_len,
                          bool success, bpp_state from, const store_actor *who)
{
    if (!s || !txid || !txid_len || txid_len > 16 || !pir || !pir_len || pir_len > INT32_MAX)
        return IFPP_E_ARG;
    move_arg a = {.txid = txid, .txid_len = txid_len, .from = from, .who = who, .pir = pir, .pir_len = pir_len,
                  .success = success};
    return store_transaction(s, store_record_pir_tx, &a);
}

ifpp_err store_get_bpp(store *s, const uint8_t *txid, size_t txid_len, store_bpp *out)
{
    sqlite3_stmt *st = store_prepare(s, "SELECT " BPP_COLUMNS " FROM bpp WHERE txid = ?");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_blob(st, 1, txid, (int)txid_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    ifpp_err e = rc == SQLITE_ROW ? store_row_to_bpp(st, out) : rc == SQLITE_DONE ? IFPP_E_NOT_FOUND : IFPP_E_IO;
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_bpp_blob(store *s, const uint8_t *txid, size_t txid_len, uint8_t **out, size_t *n)
{
    return store_fetch_blob(s, "SELECT bpp FROM bpp WHERE txid = ?", txid, (int)txid_len, false, out, n);
}

ifpp_err store_count_bpps(store *s, bpp_state state, size_t *n)
{
    sqlite3_stmt *st = store_prepare(s, "SELECT count(*) FROM bpp WHERE state = ?");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_text(st, 1, bpp_state_name(state), -1, SQLITE_STATIC);
    ifpp_err e = sqlite3_step(st) == SQLITE_ROW ? IFPP_OK : IFPP_E_IO;
    if (e == IFPP_OK)
        *n = (size_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_eid_counts(store *s, const uint8_t eid[16], size_t counts[BPP_STATE__COUNT])
{
    if (!s || !eid || !counts)
        return IFPP_E_ARG;
    memset(counts, 0, sizeof(size_t) * BPP_STATE__COUNT);
    sqlite3_stmt *st = store_prepare(s, "SELECT state, count(*) FROM bpp WHERE eid = ? GROUP BY state");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_blob(st, 1, eid, 16, SQLITE_STATIC);
    int rc;
    ifpp_err e = IFPP_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bpp_state state;
        if (!bpp_state_parse((const char *)sqlite3_column_text(st, 0), &state)) {
            e = IFPP_E_IO;
            break;
        }
        counts[state] = (size_t)sqlite3_column_int64(st, 1);
    }
    if (e == IFPP_OK && rc != SQLITE_DONE)
        e = IFPP_E_IO;
    sqlite3_finalize(st);
    return e;
}

/* ---- vaults and certificates ----------------------------------------------------------------- */

typedef struct {
    const char *vault_id;
    const uint8_t *cert, *hash;
    size_t cert_len;
    bool *known;
} vault_arg;

static ifpp_err store_add_vault_tx(store *s, void *arg)
{
    vault_arg *a = arg;
    char at[32], detail[128];
    sqlite3_stmt *st = store_prepare(s, "SELECT bundle_hash FROM vault WHERE vault_id = ?");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_text(st, 1, a->vault_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        bool same = sqlite3_column_bytes(st, 0) == 32 && memcmp(sqlite3_column_blob(st, 0), a->hash, 32) == 0;
        sqlite3_finalize(st);
        *a->known = true;
        return same ? IFPP_OK : IFPP_E_ARG; /* the same id with other content: a conflicting vault */
    }
    sqlite3_finalize(st);
    store_now(at);
    st = store_prepare(s, "INSERT INTO vault (vault_id, dpf_pb_cert, bundle_hash, imported_at) VALUES (?, ?, ?, ?)");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_text(st, 1, a->vault_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->cert, (int)a->cert_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, a->hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, at, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return IFPP_E_IO;
    snprintf(detail, sizeof detail, "vault=%s", a->vault_id);
    return audit_append(s, "vault_added", detail);
}

ifpp_err store_add_vault(store *s, const char *vault_id, const uint8_t *dpf_pb_cert, size_t cert_len,
                         const uint8_t bundle_hash[32], bool *known)
{
    bool k = false;
    if (!s || !vault_id || !dpf_pb_cert || !cert_len || cert_len > INT32_MAX || !bundle_hash)
        return IFPP_E_ARG;
    vault_arg a = {.vault_id = vault_id, .cert = dpf_pb_cert, .cert_len = cert_len, .hash = bundle_hash, .known = &k};
    ifpp_err e = store_transaction(s, store_add_vault_tx, &a);
    if (known)
        *known = k;
    return e;
}

/* Copies column 0 of the first row of sql (bound to one blob or text key) into a malloc'd buffer. */
static ifpp_err store_fetch_blob(store *s, const char *sql, const void *key, int key_len, bool text, uint8_t **out,
                                 size_t *n)
{
    sqlite3_stmt *st = store_prepare(s, sql);
    if (!st)
        return IFPP_E_IO;
    if (text)
        sqlite3_bind_text(st, 1, key, key_len, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 1, key, key_len, SQLITE_STATIC);
    ifpp_err e = IFPP_E_NOT_FOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        *out = malloc(len ? len : 1);
        e = *out ? IFPP_OK : IFPP_E_NOMEM;
        if (e == IFPP_OK) {
            memcpy(*out, sqlite3_column_blob(st, 0), len);
            *n = len;
        }
    }
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_vault_pb_cert(store *s, const char *vault_id, uint8_t **der, size_t *n)
{
    return store_fetch_blob(s, "SELECT dpf_pb_cert FROM vault WHERE vault_id = ?", vault_id, -1, true, der, n);
}

ifpp_err store_euicc_cert(store *s, const uint8_t eid[16], uint8_t **der, size_t *n)
{
    return store_fetch_blob(s, "SELECT cert FROM euicc WHERE eid = ?", eid, 16, false, der, n);
}

/* Transaction ids of eid's BPPs whose state is in `states` (an SQL list of quoted names). */
static ifpp_err store_txids(store *s, const uint8_t eid[16], const char *states, uint8_t (*txids)[16],
                            size_t *txid_lens, size_t max, size_t *n)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT txid FROM bpp WHERE eid = ? AND state IN (%s) ORDER BY rowid", states);
    sqlite3_stmt *st = store_prepare(s, sql);
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_blob(st, 1, eid, 16, SQLITE_STATIC);
    *n = 0;
    while (*n < max && sqlite3_step(st) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        if (len == 0 || len > 16)
            continue;
        memcpy(txids[*n], sqlite3_column_blob(st, 0), len);
        txid_lens[*n] = len;
        (*n)++;
    }
    sqlite3_finalize(st);
    return IFPP_OK;
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

ifpp_err store_add_eum_cert(store *s, const uint8_t *der, size_t n)
{
    if (!s || !der || !n || n > INT32_MAX)
        return IFPP_E_ARG;
    sqlite3_stmt *st = store_prepare(s, "INSERT OR IGNORE INTO eum_cert (der) VALUES (?)");
    if (!st)
        return IFPP_E_IO;
    sqlite3_bind_blob(st, 1, der, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IFPP_OK : IFPP_E_IO;
}

ifpp_err store_each_eum_cert(store *s, ifpp_err (*fn)(void *arg, const uint8_t *der, size_t n), void *arg)
{
    sqlite3_stmt *st = store_prepare(s, "SELECT der FROM eum_cert ORDER BY rowid");
    ifpp_err e = st ? IFPP_OK : IFPP_E_IO;
    while (e == IFPP_OK && sqlite3_step(st) == SQLITE_ROW)
        e = fn(arg, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_each_unbound_key(store *s, ifpp_err (*fn)(void *arg, const store_key_record *k), void *arg)
{
    sqlite3_stmt *st = store_prepare(s, "SELECT o.eid, e.cert, e.info2, o.otpk, o.proof FROM otk o JOIN euicc e"
                                        " ON e.eid = o.eid WHERE NOT EXISTS (SELECT 1 FROM bpp b WHERE b.eid = o.eid"
                                        " AND b.otpk = o.otpk) ORDER BY o.rowid");
    ifpp_err e = st ? IFPP_OK : IFPP_E_IO;
    while (e == IFPP_OK && sqlite3_step(st) == SQLITE_ROW) {
        store_key_record k = {
            .eid = sqlite3_column_blob(st, 0), .cert = sqlite3_column_blob(st, 1),
            .cert_len = (size_t)sqlite3_column_bytes(st, 1), .info2 = sqlite3_column_blob(st, 2),
            .info2_len = (size_t)sqlite3_column_bytes(st, 2), .otpk = sqlite3_column_blob(st, 3),
            .proof = sqlite3_column_blob(st, 4),
        };
        e = fn(arg, &k);
    }
    sqlite3_finalize(st);
    return e;
}

ifpp_err store_each_result(store *s, const char *day, ifpp_err (*fn)(void *arg, const store_result_record *r),
                           void *arg)
{
    sqlite3_stmt *st = store_prepare(s, "SELECT b.txid, b.eid, p.pir, e.cert, b.state, b.dut_serial, b.updated_at"
                                        " FROM bpp b JOIN euicc e ON e.eid = b.eid LEFT JOIN pir p ON p.txid = b.txid"
                                        " WHERE b.state IN ('installed', 'failed', 'deleted')"
                                        " AND (?1 IS NULL OR substr(b.updated_at, 1, 10) = ?1) ORDER BY b.updated_at, b.rowid");
    ifpp_err e = st ? IFPP_OK : IFPP_E_IO;
    if (st)
        sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
    while (e == IFPP_OK && sqlite3_step(st) == SQLITE_ROW) {
        store_result_record r = {
            .txid = sqlite3_column_blob(st, 0), .txid_len = (size_t)sqlite3_column_bytes(st, 0),
            .eid = sqlite3_column_blob(st, 1), .pir = sqlite3_column_blob(st, 2),
            .pir_len = (size_t)sqlite3_column_bytes(st, 2), .euicc_cert = sqlite3_column_blob(st, 3),
            .euicc_cert_len = (size_t)sqlite3_column_bytes(st, 3),
            .dut_serial = (const char *)sqlite3_column_text(st, 5), .updated_at = (const char *)sqlite3_column_text(st, 6),
        };
        if (!bpp_state_parse((const char *)sqlite3_column_text(st, 4), &r.state) ||
            sqlite3_column_bytes(st, 1) != 16) {
            e = IFPP_E_IO;
            break;
        }
        e = fn(arg, &r);
    }
    sqlite3_finalize(st);
    return e;
}
