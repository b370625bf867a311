/*
 * test_store.c -- the exactly-once store against a real SQLite file.
 *
 * Proves: the schema is created and migrated with WAL, synchronous=FULL and foreign keys;
 * the BPP state machine refuses every move it does not allow and every move from a state the
 * BPP is not in; two connections cannot reserve one BPP (GENS04); one One-time Key can carry
 * one BPP only (GENS08); a profile type picks among several BPPs for one eUICC (GENF01, A.3);
 * a reservation survives SIGKILL of the process right after it returns; and the hash-chained
 * audit log detects an edited or deleted entry.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto.h"
#include "store.h"
#include "testutil.h"

typedef struct {
    char *dir, *path;
    store *s;
    uint8_t eid[16];
    uint8_t otpk[4][65];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("ifpp-store");
    f->path = tu_path(f->dir, "station.db");
    char why[256];
    if (store_open(f->path, &f->s, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "%s\n", why);
        return -1;
    }
    crypto_random(f->eid, 16);
    uint8_t cert[40] = {0x30, 38}, info2[3] = {0xBF, 0x22, 0x00}, proof[64] = {0};
    if (store_add_euicc(f->s, f->eid, cert, sizeof cert, info2, sizeof info2) != IFPP_OK)
        return -1;
    for (int i = 0; i < 4; i++) {
        f->otpk[i][0] = 0x04;
        crypto_random(f->otpk[i] + 1, 64);
        if (store_add_otk(f->s, f->eid, f->otpk[i], proof) != IFPP_OK)
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

static store_bpp make_bpp(const fixture *f, int key, const char *type, uint8_t txid_byte)
{
    static const uint8_t blob[] = {0xBF, 0x36, 0x02, 0xBF, 0x23}; /* opaque to the store */
    store_bpp b;
    memset(&b, 0, sizeof b);
    memset(b.transaction_id, txid_byte, 16);
    b.transaction_id_len = 16;
    memcpy(b.eid, f->eid, 16);
    memcpy(b.otpk, f->otpk[key], 65);
    memset(b.iccid, 0x98, 10);
    snprintf(b.profile_type, sizeof b.profile_type, "%s", type);
    crypto_sha256(blob, sizeof blob, b.bpp_hash);
    b.bpp_hash[0] ^= txid_byte; /* distinct per BPP */
    b.bpp = blob;
    b.bpp_len = sizeof blob;
    snprintf(b.vault_id, sizeof b.vault_id, "vault-1");
    return b;
}

static void test_schema_and_pragmas(void **state)
{
    fixture *f = *state;
    assert_int_equal(store_schema_version(f->s), store_schema_latest());
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    /* issue 16.3: the indexes the day's reports and the stock read through (migration 8) */
    sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN"
                           " ('bpp_by_day', 'bpp_by_type_state', 'audit_by_txid')", -1, &st, NULL);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 3);
    sqlite3_finalize(st);
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* reopening keeps the version and migrates nothing again */
    store_close(f->s);
    assert_int_equal(store_open(f->path, &f->s, NULL, 0), IFPP_OK);
    assert_int_equal(store_schema_version(f->s), store_schema_latest());
    size_t n;
    assert_int_equal(store_audit_verify(f->s, &n, NULL, 0), IFPP_OK);
    assert_int_equal(n, (size_t)store_schema_latest() + 1); /* a migrate entry each, euicc_added */
}

static void test_add_bpp_rules(void **state)
{
    fixture *f = *state;
    bool dup = true;
    char why[256];
    store_bpp b = make_bpp(f, 0, "operatorA", 1);
    assert_int_equal(store_add_bpp(f->s, &b, &dup, why, sizeof why), IFPP_OK);
    assert_false(dup);
    assert_int_equal(store_add_bpp(f->s, &b, &dup, why, sizeof why), IFPP_OK); /* the same vault again */
    assert_true(dup);
    store_bpp other = make_bpp(f, 0, "operatorA", 2); /* a second BPP for the same key: GENS08 */
    assert_int_equal(store_add_bpp(f->s, &other, &dup, why, sizeof why), IFPP_E_ARG);
    assert_non_null(strstr(why, "GENS08"));
    store_bpp unknown = make_bpp(f, 1, "operatorA", 3);
    unknown.otpk[5] ^= 1; /* a key the EUM never announced */
    assert_int_equal(store_add_bpp(f->s, &unknown, &dup, why, sizeof why), IFPP_E_ARG);
    size_t n;
    assert_int_equal(store_count_bpps(f->s, BPP_AVAILABLE, &n), IFPP_OK);
    assert_int_equal(n, 1);
    assert_true(store_has_otk(f->s, f->eid, f->otpk[2]));
    assert_false(store_has_otk(f->s, f->eid, unknown.otpk));
}

static void test_state_machine(void **state)
{
    fixture *f = *state;
    store_actor who = {.session = "s-1", .slot = "fixture-1", .dut_serial = "DUT-1", .reason = "scan"};
    store_bpp a = make_bpp(f, 0, "operatorA", 1), b = make_bpp(f, 1, "operatorB", 2), got;
    assert_int_equal(store_add_bpp(f->s, &a, NULL, NULL, 0), IFPP_OK);
    assert_int_equal(store_add_bpp(f->s, &b, NULL, NULL, 0), IFPP_OK);

    /* A.3: the profile type picks the BPP, the other stays available */
    assert_int_equal(bpp_reserve(f->s, f->eid, "operatorB", &who, &got), IFPP_OK);
    assert_memory_equal(got.transaction_id, b.transaction_id, 16);
    assert_int_equal(got.state, BPP_RESERVED);
    assert_int_equal(bpp_reserve(f->s, f->eid, "operatorB", &who, &got), IFPP_E_NOT_FOUND);
    store_bpp row;
    assert_int_equal(store_get_bpp(f->s, a.transaction_id, 16, &row), IFPP_OK);
    assert_int_equal(row.state, BPP_AVAILABLE);

    /* the PIR moves it to installed; nothing moves it again */
    const uint8_t pir[] = {0xBF, 0x37, 0x00};
    assert_int_equal(store_record_pir(f->s, b.transaction_id, 16, pir, sizeof pir, true, BPP_RESERVED, &who), IFPP_OK);
    assert_int_equal(store_get_bpp(f->s, b.transaction_id, 16, &row), IFPP_OK);
    assert_int_equal(row.state, BPP_INSTALLED);
    for (int to = 0; to < BPP_STATE__COUNT; to++)
        assert_int_not_equal(bpp_move(f->s, b.transaction_id, 16, BPP_INSTALLED, (bpp_state)to, &who), IFPP_OK);
    /* a move from a state the BPP is not in changes nothing */
    assert_int_equal(bpp_move(f->s, a.transaction_id, 16, BPP_RESERVED, BPP_IN_DOUBT, &who), IFPP_E_RANGE);
    assert_int_equal(store_get_bpp(f->s, a.transaction_id, 16, &row), IFPP_OK);
    assert_int_equal(row.state, BPP_AVAILABLE);
    /* in_doubt is left only on evidence: back to available (key still there) or to a result */
    assert_int_equal(bpp_reserve(f->s, f->eid, NULL, &who, &got), IFPP_OK);
    assert_int_equal(bpp_move(f->s, a.transaction_id, 16, BPP_RESERVED, BPP_IN_DOUBT, &who), IFPP_OK);
    assert_int_equal(bpp_move(f->s, a.transaction_id, 16, BPP_IN_DOUBT, BPP_AVAILABLE, &who), IFPP_OK);
    assert_false(bpp_transition_allowed(BPP_AVAILABLE, BPP_INSTALLED));
    assert_false(bpp_transition_allowed(BPP_FAILED, BPP_AVAILABLE));
    uint8_t *blob;
    size_t n;
    assert_int_equal(store_bpp_blob(f->s, a.transaction_id, 16, &blob, &n), IFPP_OK);
    assert_int_equal(n, a.bpp_len);
    free(blob);
    size_t entries;
    assert_int_equal(store_audit_verify(f->s, &entries, NULL, 0), IFPP_OK);
    assert_true(entries >= 8);
}

/* Two connections (two sessions, or two processes) race for one BPP: exactly one wins. */
static void test_no_double_reservation(void **state)
{
    fixture *f = *state;
    store_bpp a = make_bpp(f, 0, "operatorA", 1), got1, got2;
    assert_int_equal(store_add_bpp(f->s, &a, NULL, NULL, 0), IFPP_OK);
    store *other;
    assert_int_equal(store_open(f->path, &other, NULL, 0), IFPP_OK);
    store_actor w1 = {.session = "s-1"}, w2 = {.session = "s-2"};
    ifpp_err e1 = bpp_reserve(f->s, f->eid, NULL, &w1, &got1);
    ifpp_err e2 = bpp_reserve(other, f->eid, NULL, &w2, &got2);
    assert_true((e1 == IFPP_OK) != (e2 == IFPP_OK));
    /* and a stale caller that still believes it available cannot move it */
    assert_int_equal(bpp_move(other, a.transaction_id, 16, BPP_AVAILABLE, BPP_TRANSFERRED, &w2), IFPP_E_RANGE);
    store_close(other);
}

/* A reservation that returned is on disk: SIGKILL right after it loses nothing. */
static void test_reservation_survives_sigkill(void **state)
{
    fixture *f = *state;
    store_bpp a = make_bpp(f, 2, "operatorA", 7);
    assert_int_equal(store_add_bpp(f->s, &a, NULL, NULL, 0), IFPP_OK);
    store_close(f->s);
    f->s = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store *s;
        store_bpp got;
        store_actor who = {.session = "doomed"};
        if (store_open(f->path, &s, NULL, 0) != IFPP_OK || bpp_reserve(s, f->eid, NULL, &who, &got) != IFPP_OK)
            _exit(1);
        raise(SIGKILL); /* no close, no checkpoint, no atexit */
        _exit(2);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(store_open(f->path, &f->s, NULL, 0), IFPP_OK);
    store_bpp row;
    assert_int_equal(store_get_bpp(f->s, a.transaction_id, 16, &row), IFPP_OK);
    assert_int_equal(row.state, BPP_RESERVED);
    assert_int_equal(store_audit_verify(f->s, NULL, NULL, 0), IFPP_OK);
}

static void tamper(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_audit_chain_detects_tampering(void **state)
{
    fixture *f = *state;
    store_bpp a = make_bpp(f, 0, "operatorA", 1);
    store_actor who = {.session = "s-1"};
    store_bpp got;
    assert_int_equal(store_add_bpp(f->s, &a, NULL, NULL, 0), IFPP_OK);
    assert_int_equal(bpp_reserve(f->s, f->eid, NULL, &who, &got), IFPP_OK);
    char why[256], entry[32];
    size_t n;
    assert_int_equal(store_audit_verify(f->s, &n, why, sizeof why), IFPP_OK);
    tamper(f->path, "UPDATE audit SET session = 's-X' WHERE session = 's-1'");
    assert_int_equal(store_audit_verify(f->s, NULL, why, sizeof why), IFPP_E_SIGNATURE);
    snprintf(entry, sizeof entry, "entry %zu", n); /* the reservation: the log's last entry */
    assert_non_null(strstr(why, entry));
    tamper(f->path, "DELETE FROM audit WHERE id = 2");
    assert_int_equal(store_audit_verify(f->s, NULL, why, sizeof why), IFPP_E_SIGNATURE);
    assert_non_null(strstr(why, "entry 2 missing"));
}


/* A store written before schema 3: text audit rows (form 1) still verify after the migration. */
static void test_old_rows_verify_after_migration(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    f->s = NULL;
    char *old = tu_path(f->dir, "old.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(old, &db), SQLITE_OK);
    /* what schema 2 left: the same tables, two text audit rows chained as the old code chained them */
    assert_int_equal(sqlite3_exec(db,
        "CREATE TABLE euicc (eid BLOB PRIMARY KEY, cert BLOB NOT NULL, info2 BLOB NOT NULL, added_at TEXT NOT NULL);"
        "CREATE TABLE otk (eid BLOB NOT NULL, otpk BLOB NOT NULL, proof BLOB NOT NULL, PRIMARY KEY (eid, otpk));"
        "CREATE TABLE bpp (txid BLOB PRIMARY KEY, eid BLOB NOT NULL, otpk BLOB NOT NULL, iccid BLOB NOT NULL,"
        " profile_type TEXT NOT NULL, bpp_hash BLOB NOT NULL, bpp BLOB NOT NULL, vault_id TEXT NOT NULL,"
        " state TEXT NOT NULL, session TEXT, slot TEXT, dut_serial TEXT, updated_at TEXT NOT NULL);"
        "CREATE TABLE pir (txid BLOB PRIMARY KEY, pir BLOB NOT NULL, success INTEGER NOT NULL, received_at TEXT NOT NULL);"
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL,"
        " prev BLOB NOT NULL, hash BLOB NOT NULL);"
        "CREATE TABLE vault (vault_id TEXT PRIMARY KEY, dpf_pb_cert BLOB NOT NULL, bundle_hash BLOB NOT NULL,"
        " imported_at TEXT NOT NULL);"
        "CREATE TABLE eum_cert (der BLOB PRIMARY KEY);"
        "INSERT INTO bpp VALUES (x'01', zeroblob(16), zeroblob(65), zeroblob(10), 'a', zeroblob(32), x'00', 'v',"
        " 'reserved', NULL, NULL, NULL, 'now');"
        "PRAGMA user_version = 2;", NULL, NULL, NULL), SQLITE_OK);
    /* the form-1 hash: SHA-256(prev || id(8, BE) || at NUL || event NUL || detail) */
    const char *rows[2][3] = {
        {"2026-01-01T00:00:00Z", "bpp_added", "txid=01 eid=00000000000000000000000000000000 -> available session=-"},
        {"2026-01-01T00:00:01Z", "bpp_state",
         "txid=01 eid=00000000000000000000000000000000 available -> reserved session=s slot=- serial=- reason=-"},
    };
    uint8_t prev[32] = {0};
    for (int i = 0; i < 2; i++) {
        uint8_t buf[512], h[32];
        size_t n = 0;
        memcpy(buf, prev, 32);
        n = 32;
        for (int k = 0; k < 8; k++)
            buf[n++] = (uint8_t)(k == 7 ? i + 1 : 0);
        for (int k = 0; k < 3; k++) {
            size_t l = strlen(rows[i][k]) + (k < 2 ? 1 : 0);
            memcpy(buf + n, rows[i][k], l);
            n += l;
        }
        crypto_sha256(buf, n, h);
        sqlite3_stmt *st;
        sqlite3_prepare_v2(db, "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?)", -1, &st, NULL);
        sqlite3_bind_int(st, 1, i + 1);
        for (int k = 0; k < 3; k++)
            sqlite3_bind_text(st, 2 + k, rows[i][k], -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 5, prev, 32, SQLITE_STATIC);
        sqlite3_bind_blob(st, 6, h, 32, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        memcpy(prev, h, 32);
    }
    sqlite3_close(db);
    char why[256] = "";
    store *s;
    assert_int_equal(store_open(old, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(store_schema_version(s), store_schema_latest());
    size_t n;
    assert_int_equal(store_audit_check(s, NULL, &n, why, sizeof why), IFPP_OK);
    assert_int_equal(n, (size_t)store_schema_latest()); /* two old rows and the migrations from 3 on */
    /* issue 16: a BPP stored in its row before schema 7 is still read from there */
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    const uint8_t txid1[1] = {0x01};
    assert_int_equal(store_bpp_blob(s, txid1, 1, &blob, &blob_len), IFPP_OK);
    assert_int_equal(blob_len, 1);
    assert_int_equal(blob[0], 0x00);
    free(blob);
    tamper(old, "UPDATE bpp SET state = 'available'"); /* the replay reads the old text rows too */
    assert_int_equal(store_audit_check(s, NULL, &n, why, sizeof why), IFPP_E_SIGNATURE);
    assert_non_null(strstr(why, "audit log says reserved"));
    store_close(s);
    free(old);
}

/* Counts store_each_result's records and those with a PIR. */
typedef struct {
    size_t records, pirs;
} result_count;

static ifpp_err count_pirs(void *arg, const store_result_record *r)
{
    result_count *c = arg;
    c->records++;
    c->pirs += r->pir_len > 0;
    return IFPP_OK;
}

/*
 * A profile installed one day and deleted (use case A.4) on a later day is reported once, in the Profile
 * Loading Report of the day its PIR came: the later day's report does not carry its PIR again (the SM-DPf
 * would count the installation twice); the Deletion Report is what tells of the deletion.
 */
static void test_result_day_of_deleted_profile(void **state)
{
    fixture *f = *state;
    store_actor who = {.session = "s-1", .dut_serial = "DUT-1"};
    store_bpp a = make_bpp(f, 0, "operatorA", 1), got;
    const uint8_t pir[] = {0xBF, 0x37, 0x00}, notification[] = {0x30, 0x00};
    assert_int_equal(store_add_bpp(f->s, &a, NULL, NULL, 0), IFPP_OK);
    assert_int_equal(bpp_reserve(f->s, f->eid, NULL, &who, &got), IFPP_OK);
    assert_int_equal(store_record_pir(f->s, a.transaction_id, 16, pir, sizeof pir, true, BPP_RESERVED, &who), IFPP_OK);
    char today[11];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    assert_int_equal(store_record_deletion(f->s, a.transaction_id, 16, 7, notification, sizeof notification, "job-1", &who),
                     IFPP_OK);
    tamper(f->path, "UPDATE bpp SET updated_at = '2099-01-02T10:00:00Z'"); /* the deletion came on a later day */
    result_count later = {0}, first = {0};
    assert_int_equal(store_each_result(f->s, "2099-01-02", count_pirs, &later), IFPP_OK);
    assert_int_equal(store_each_result(f->s, today, count_pirs, &first), IFPP_OK);
    if (later.pirs != 0 || first.pirs != 1)
        fail_msg("the deleted profile's PIR: %zu in the deletion day's report (want 0), %zu in its install day's (want 1)",
                 later.pirs, first.pirs);
}

/* Issue 8 item 8: deleting the tail of the log and resetting the BPPs to match is found by the anchor. */
static void test_anchor_detects_truncation(void **state)
{
    fixture *f = *state;
    store_actor who = {.session = "s-1", .dut_serial = "DUT-1"};
    store_bpp a = make_bpp(f, 0, "operatorA", 1), got;
    const uint8_t pir[] = {0xBF, 0x37, 0x00};
    assert_int_equal(store_add_bpp(f->s, &a, NULL, NULL, 0), IFPP_OK);
    store_anchor before;
    assert_int_equal(store_audit_head(f->s, &before), IFPP_OK);
    assert_int_equal(bpp_reserve(f->s, f->eid, NULL, &who, &got), IFPP_OK);
    assert_int_equal(store_record_pir(f->s, a.transaction_id, 16, pir, sizeof pir, true, BPP_RESERVED, &who), IFPP_OK);
    store_anchor head;
    assert_int_equal(store_audit_head(f->s, &head), IFPP_OK); /* what a report signed now would carry */
    assert_true(head.entry == before.entry + 2);
    char why[256] = "";
    size_t n;
    assert_int_equal(store_audit_check(f->s, &head, &n, why, sizeof why), IFPP_OK);
    assert_int_equal(n, head.entry);
    /* someone with the sqlite3 CLI: the last two entries gone, the BPP "available" again, no PIR */
    char sql[256];
    snprintf(sql, sizeof sql, "DELETE FROM audit WHERE id > %llu; DELETE FROM pir; UPDATE bpp SET state = 'available'",
             (unsigned long long)before.entry);
    tamper(f->path, sql);
    assert_int_equal(store_audit_verify(f->s, NULL, why, sizeof why), IFPP_OK);   /* the links alone: "intact" */
    assert_int_equal(store_audit_check(f->s, NULL, NULL, why, sizeof why), IFPP_OK); /* and consistent */
    assert_int_equal(store_audit_check(f->s, &head, NULL, why, sizeof why), IFPP_E_SIGNATURE);
    assert_non_null(strstr(why, "deleted"));
    /* rewriting instead of deleting: the anchored entry's hash differs */
    store_anchor forged = head;
    forged.entry = before.entry;
    assert_int_equal(store_audit_check(f->s, &forged, NULL, why, sizeof why), IFPP_E_SIGNATURE);
    assert_non_null(strstr(why, "differs from the anchor"));
}

/* Issue 8 item 8: a BPP state edited with raw SQL is found by replaying the log. */
static void test_edited_bpp_state_detected(void **state)
{
    fixture *f = *state;
    store_actor who = {.session = "s-1"};
    store_bpp a = make_bpp(f, 0, "operatorA", 1), got;
    const uint8_t pir[] = {0xBF, 0x37, 0x00};
    assert_int_equal(store_add_bpp(f->s, &a, NULL, NULL, 0), IFPP_OK);
    assert_int_equal(bpp_reserve(f->s, f->eid, NULL, &who, &got), IFPP_OK);
    assert_int_equal(store_record_pir(f->s, a.transaction_id, 16, pir, sizeof pir, true, BPP_RESERVED, &who), IFPP_OK);
    char why[256] = "";
    assert_int_equal(store_audit_check(f->s, NULL, NULL, why, sizeof why), IFPP_OK);
    tamper(f->path, "UPDATE bpp SET state = 'available'");
    assert_int_equal(store_audit_verify(f->s, NULL, why, sizeof why), IFPP_OK); /* the old check saw nothing */
    assert_int_equal(store_audit_check(f->s, NULL, NULL, why, sizeof why), IFPP_E_SIGNATURE);
    assert_non_null(strstr(why, "is available in the table but the audit log says installed"));
}

/* Issue 9 item 2: a damaged page is an error, never "0 results" or "0 entries, intact". */
static void test_damaged_page_is_an_error(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 3; i++) {
        store_bpp b = make_bpp(f, i, "operatorA", (uint8_t)(i + 1));
        assert_int_equal(store_add_bpp(f->s, &b, NULL, NULL, 0), IFPP_OK);
    }
    store_close(f->s);
    f->s = NULL;
    /* fold the WAL into the file, then overwrite one page of it (page 3: a table's b-tree) */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    size_t n;
    uint8_t *file = tu_read_file(f->path, &n);
    assert_non_null(file);
    assert_true(n >= 4 * 4096);
    for (size_t i = 2 * 4096; i < 3 * 4096; i++)
        file[i] = (uint8_t)(0xA5 ^ i);
    for (int p = 3; (size_t)(p + 1) * 4096 <= n; p++)
        memset(file + (size_t)p * 4096, 0xEE, 4096);
    assert_int_equal(tu_write_file(f->path, file, n), 0);
    free(file);
    char why[256] = "";
    ifpp_err e = store_open(f->path, &f->s, why, sizeof why);
    fprintf(stderr, "open of a damaged store: %s: %s\n", err_name(e), why);
    assert_int_equal(e, IFPP_E_IO);
    assert_non_null(strstr(why, "damaged"));
    assert_non_null(strstr(why, f->path));
    e = store_open_readonly(f->path, &f->s, why, sizeof why);
    assert_int_equal(e, IFPP_E_IO);
    assert_null(f->s);
}

/* Issue 9 item 11: a path that cannot hold a store says why, with errno and the path. */
static void test_bad_paths(void **state)
{
    fixture *f = *state;
    store *s = NULL;
    char why[256] = "";
    assert_int_equal(store_open(f->dir, &s, why, sizeof why), IFPP_E_ARG);
    assert_non_null(strstr(why, "is a directory"));
    char *missing = tu_path(f->dir, "no/such/dir/station.db");
    assert_int_equal(store_open(missing, &s, why, sizeof why), IFPP_E_IO);
    assert_non_null(strstr(why, "No such file or directory"));
    assert_non_null(strstr(why, missing));
    free(missing);
    /* read-only: never creates */
    char *absent = tu_path(f->dir, "absent.db");
    assert_int_equal(store_open_readonly(absent, &s, why, sizeof why), IFPP_E_NOT_FOUND);
    assert_non_null(strstr(why, absent));
    assert_int_equal(access(absent, F_OK), -1);
    free(absent);
    /* schema version -1 is not "newer" */
    tamper(f->path, "PRAGMA user_version = -1");
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(store_open(f->path, &s, why, sizeof why), IFPP_E_RANGE);
    assert_null(strstr(why, "newer"));
    assert_non_null(strstr(why, "not a station store or is damaged"));
    char latest[64];
    snprintf(latest, sizeof latest, "PRAGMA user_version = %d", store_schema_latest());
    tamper(f->path, latest);
    assert_int_equal(store_open(f->path, &f->s, why, sizeof why), IFPP_OK);
}

/* Issue 9 item 11: read-only commands read without writing, and cannot write. */
static void test_readonly(void **state)
{
    fixture *f = *state;
    store_bpp a = make_bpp(f, 0, "operatorA", 1), got;
    assert_int_equal(store_add_bpp(f->s, &a, NULL, NULL, 0), IFPP_OK);
    store *ro;
    char why[256] = "";
    assert_int_equal(store_open_readonly(f->path, &ro, why, sizeof why), IFPP_OK);
    size_t n;
    assert_int_equal(store_count_bpps(ro, BPP_AVAILABLE, &n), IFPP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_audit_check(ro, NULL, &n, why, sizeof why), IFPP_OK);
    assert_int_equal(bpp_reserve(ro, f->eid, NULL, NULL, &got), IFPP_E_ARG);
    assert_non_null(strstr(store_errmsg(ro), "read-only"));
    store_close(ro);
}

static ifpp_err count_result(void *arg, const store_result_record *r)
{
    (void)r;
    (*(size_t *)arg)++;
    return IFPP_OK;
}

/*
 * Issue 9 item 2, on an open store: pages damaged after store_open's check (or in a store too large
 * for it) make every reader fail, never answer "0 results", "0 entries" or zero counts.
 */
static void test_damage_under_an_open_store(void **state)
{
    fixture *f = *state;
    store_actor who = {.session = "s-1"};
    const uint8_t pir[] = {0xBF, 0x37, 0x00};
    for (int i = 0; i < 3; i++) {
        store_bpp b = make_bpp(f, i, "operatorA", (uint8_t)(i + 1)), got;
        assert_int_equal(store_add_bpp(f->s, &b, NULL, NULL, 0), IFPP_OK);
        assert_int_equal(bpp_reserve(f->s, f->eid, NULL, &who, &got), IFPP_OK);
        assert_int_equal(store_record_pir(f->s, got.transaction_id, 16, pir, sizeof pir, true, BPP_RESERVED, &who),
                         IFPP_OK);
    }
    /* another connection folds the WAL into the file (so our cache is stale), then the disk rots */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    size_t n;
    uint8_t *file = tu_read_file(f->path, &n);
    assert_non_null(file);
    for (size_t p = 2; (p + 1) * 4096 <= n; p++)
        memset(file + p * 4096, 0xEE, 4096);
    assert_int_equal(tu_write_file(f->path, file, n), 0);
    free(file);
    size_t results = 0, count = 0, entries = 0;
    char why[256] = "";
    ifpp_err e1 = store_each_result(f->s, NULL, count_result, &results);
    ifpp_err e2 = store_count_bpps(f->s, BPP_INSTALLED, &count);
    ifpp_err e3 = store_audit_verify(f->s, &entries, why, sizeof why);
    fprintf(stderr, "damaged under us: results %s (%zu), count %s (%zu), audit %s (%zu entries): %s\n", err_name(e1),
            results, err_name(e2), count, err_name(e3), entries, why);
    assert_int_not_equal(e1, IFPP_OK);
    assert_int_not_equal(e2, IFPP_OK);
    assert_int_not_equal(e3, IFPP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_and_pragmas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_bpp_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_double_reservation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reservation_survives_sigkill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_detects_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_rows_verify_after_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_detects_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_day_of_deleted_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edited_bpp_state_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_page_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_under_an_open_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
