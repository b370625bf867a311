/*
 * test_export.c -- what the station signs and what it imports, against a simulated line's files.
 *
 * Proves: a report or request signed with a key that is not the station certificate's is refused
 * before anything is written, and a previous good report stays (issue 9 item 8); both bundles
 * carry the audit chain's head, readable back only through a verified signature, and a log
 * truncated after the export is found against it (issue 8 item 8); a vault whose signature does
 * not verify is refused with that error before the store's write lock is wanted, so a line
 * holding the lock is never waited for (issue 8 item 4, the specific error kept: item 6); a
 * report aimed at the store's own file or WAL is refused and the store stays whole (issue 9 item 1).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "export.h"
#include "import.h"
#include "store.h"
#include "testline.h"
#include "testutil.h"

typedef struct {
    char *dir;
    test_line L;
    cert *dm_root;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char why[256] = "";
    test_line_opts o = {.n_cards = 1, .n_otks = {3}, .profile_size = 1024, .import_vault = true};
    f->dir = tu_mkdtemp("ifpp-export");
    if (!f->dir || test_line_make(&f->L, f->dir, &o, why, sizeof why) != 0 ||
        testpki_load(f->L.pki, "dm-root", &f->dm_root, NULL) != IFPP_OK) {
        fprintf(stderr, "test line: %s\n", why);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cert_free(f->dm_root);
    test_line_free(&f->L);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void test_wrong_station_key(void **state)
{
    fixture *f = *state;
    store *s;
    char why[256] = "";
    export_summary sum;
    char *report = tu_path(f->dir, "report.der");
    assert_int_equal(store_open(f->L.db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(export_loading_report(s, "station-test", NULL, f->L.station_key, f->L.station, f->dm_root, report,
                                           &sum, why, sizeof why), IFPP_OK);
    size_t good_len;
    uint8_t *good = tu_read_file(report, &good_len);
    assert_non_null(good);
    crypto_key *other;
    assert_int_equal(crypto_key_generate(CRYPTO_CURVE_P256, &other), IFPP_OK);
    ifpp_err e = export_loading_report(s, "station-test", NULL, other, f->L.station, f->dm_root, report, &sum, why,
                                       sizeof why);
    fprintf(stderr, "report with another key: %s: %s\n", err_name(e), why);
    assert_int_not_equal(e, IFPP_OK);
    size_t now_len;
    uint8_t *now = tu_read_file(report, &now_len);
    assert_non_null(now);
    assert_int_equal(now_len, good_len); /* the good report is still there, byte for byte */
    assert_memory_equal(now, good, good_len);
    uint8_t *req = NULL;
    size_t req_len = 0, items = 0;
    e = export_bpp_request(s, "station-test", "operatorA", other, f->L.station, &req, &req_len, &items, why, sizeof why);
    fprintf(stderr, "request with another key: %s: %s\n", err_name(e), why);
    assert_int_not_equal(e, IFPP_OK);
    assert_null(req);
    free(req);
    crypto_key_free(other);
    free(now);
    free(good);
    free(report);
    store_close(s);
}

static void test_anchor_round_trip(void **state)
{
    fixture *f = *state;
    store *s;
    char why[256] = "";
    export_summary sum;
    char *report = tu_path(f->dir, "report.der");
    assert_int_equal(store_open(f->L.db, &s, why, sizeof why), IFPP_OK);
    store_anchor head, got;
    assert_int_equal(store_audit_head(s, &head), IFPP_OK);
    assert_true(head.entry > 0);
    /* the request made by the test line carries the head of its time; this one carries today's */
    assert_int_equal(export_read_anchor(f->L.req, f->L.req_len, f->dm_root, &got, why, sizeof why), IFPP_OK);
    assert_true(got.entry > 0 && got.entry <= head.entry);
    assert_int_equal(export_loading_report(s, "station-test", NULL, f->L.station_key, f->L.station, f->dm_root, report,
                                           &sum, why, sizeof why), IFPP_OK);
    size_t n;
    uint8_t *buf = tu_read_file(report, &n);
    assert_int_equal(export_read_anchor(buf, n, f->dm_root, &got, why, sizeof why), IFPP_OK);
    assert_int_equal(got.entry, head.entry);
    assert_memory_equal(got.hash, head.hash, 32);
    /* an anchor is read only through the signature: one flipped content byte and there is none */
    buf[n / 2] ^= 1;
    assert_int_not_equal(export_read_anchor(buf, n, f->dm_root, &got, why, sizeof why), IFPP_OK);
    free(buf);
    size_t entries;
    assert_int_equal(export_audit_check(s, report, f->dm_root, &entries, why, sizeof why), IFPP_OK);
    assert_int_equal(entries, head.entry);
    /* the tail of the log deleted with the sqlite3 CLI: the report's anchor finds it */
    sqlite3 *db;
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM audit WHERE id = %llu", (unsigned long long)head.entry);
    assert_int_equal(sqlite3_open(f->L.db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_audit_verify(s, NULL, why, sizeof why), IFPP_OK); /* links alone: intact */
    assert_int_equal(export_audit_check(s, report, f->dm_root, NULL, why, sizeof why), IFPP_E_SIGNATURE);
    fprintf(stderr, "after truncation: %s\n", why);
    free(report);
    store_close(s);
}

static void test_unsigned_vault_never_waits_for_the_lock(void **state)
{
    fixture *f = *state;
    store *s;
    char why[256] = "";
    import_summary sum;
    assert_int_equal(store_open(f->L.db, &s, why, sizeof why), IFPP_OK);
    uint8_t *bad = malloc(f->L.vault_len);
    memcpy(bad, f->L.vault, f->L.vault_len);
    bad[f->L.vault_len - 5] ^= 0x40; /* inside the signature */
    sqlite3 *db; /* a running line holds the write lock */
    assert_int_equal(sqlite3_open(f->L.db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    store_set_busy_timeout(s, 100);
    ifpp_err e = import_vault(s, bad, f->L.vault_len, f->L.ci, &sum, why, sizeof why);
    fprintf(stderr, "bad vault while the store is locked: %s: %s\n", err_name(e), why);
    assert_int_not_equal(e, IFPP_OK);
    assert_int_not_equal(e, IFPP_E_BUSY);
    assert_int_not_equal(e, IFPP_E_IO);
    /* read once (issue 16): its items were parsed and staged, but no row was written and no lock taken */
    size_t shown = 0;
    assert_int_equal(store_count_bpps(s, BPP_AVAILABLE, &shown), IFPP_OK);
    assert_int_equal(shown, f->L.bpps); /* the vault the fixture imported, nothing more */
    /* a good vault, by contrast, needs the lock and says so */
    e = import_vault(s, f->L.vault, f->L.vault_len, f->L.ci, &sum, why, sizeof why);
    assert_int_equal(e, IFPP_E_BUSY);
    assert_non_null(strstr(why, "locked by another process"));
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    free(bad);
    store_close(s);
}

/* Issue 9 item 1: `report --out <the store>` is refused and the store stays whole. */
static void test_report_never_replaces_the_store(void **state)
{
    fixture *f = *state;
    store *s;
    char why[256] = "";
    export_summary sum;
    assert_int_equal(store_open(f->L.db, &s, why, sizeof why), IFPP_OK);
    size_t before, after;
    assert_int_equal(store_count_bpps(s, BPP_AVAILABLE, &before), IFPP_OK);
    assert_true(before > 0);
    char *wal = malloc(strlen(f->L.db) + 5);
    sprintf(wal, "%s-wal", f->L.db);
    const char *targets[2] = {f->L.db, wal};
    for (int i = 0; i < 2; i++) {
        ifpp_err e = export_loading_report(s, "station-test", NULL, f->L.station_key, f->L.station, f->dm_root,
                                           targets[i], &sum, why, sizeof why);
        fprintf(stderr, "report onto %s: %s: %s\n", i ? "the WAL" : "the store", err_name(e), why);
        assert_int_equal(e, IFPP_E_ARG);
    }
    store_close(s);
    assert_int_equal(store_open(f->L.db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(store_count_bpps(s, BPP_AVAILABLE, &after), IFPP_OK);
    assert_int_equal(after, before);
    assert_int_equal(store_audit_check(s, NULL, NULL, why, sizeof why), IFPP_OK);
    store_close(s);
    free(wal);
}

/* report --out streams into FILE's directory (issue 16.3): a path that names no file there is refused, nothing left. */
static void test_report_out_paths(void **state)
{
    fixture *f = *state;
    store *s;
    char why[512] = "";
    export_summary sum;
    char *missing = tu_path(f->dir, "no-such-dir/report.der"), *slash = tu_path(f->dir, "sub/"),
         *rel = tu_path(f->dir, "sub/report.der");
    assert_int_equal(mkdir(slash, 0755), 0);
    assert_int_equal(store_open(f->L.db, &s, why, sizeof why), IFPP_OK);
    ifpp_err e = export_loading_report(s, "station-test", NULL, f->L.station_key, f->L.station, f->dm_root, missing,
                                       &sum, why, sizeof why);
    assert_int_equal(e, IFPP_E_IO);
    assert_non_null(strstr(why, missing)); /* names the path */
    e = export_loading_report(s, "station-test", NULL, f->L.station_key, f->L.station, f->dm_root, slash, &sum, why,
                              sizeof why);
    assert_int_equal(e, IFPP_E_ARG);
    assert_non_null(strstr(why, "not a file name"));
    /* and where it may write, nothing but the report is left (no temporary) */
    assert_int_equal(export_loading_report(s, "station-test", NULL, f->L.station_key, f->L.station, f->dm_root, rel,
                                           &sum, why, sizeof why), IFPP_OK);
    store_close(s);
    char cmd[700], out[64] = "";
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", slash);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, sizeof out, p));
    pclose(p);
    assert_int_equal(atoi(out), 1);
    free(missing);
    free(slash);
    free(rel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wrong_station_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anchor_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsigned_vault_never_waits_for_the_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_never_replaces_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_out_paths, setup, teardown),
    };
    return cmocka_run_group_tests_name("export", tests, NULL, NULL);
}
