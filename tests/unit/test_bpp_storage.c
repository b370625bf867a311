/*
 * test_bpp_storage.c -- the BPP bytes outside SQLite (issue 16 items 1 and 2), on real files.
 *
 * Proves: an import killed (SIGKILL) at random points leaves the store without the vault or with all
 * of it, every BPP then readable and hash-correct, and the aborted tail of the data file cut off by the
 * next import; a flipped byte in the data file is refused at provisioning, naming the BPP, and nothing
 * reaches the card; BPP rows from before migration 7 (bytes in the table) still provision; a read-only
 * store reads BPPs; the data file is the store's own (no report may be written over it); a re-import
 * appends nothing; two importers of one store take turns and both vaults end whole.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "euicc_sim.h"
#include "fpa.h"
#include "hex.h"
#include "import.h"
#include "session.h"
#include "store.h"
#include "testline.h"
#include "testutil.h"
#include "vaultgen.h"

#define KILL_ROUNDS 30
#define KILL_BPPS 1500
#define KILL_PROFILE 16000

static long long sql_int(const char *db_path, const char *q)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    long long v = -1;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void copy_file(const char *from, const char *to)
{
    size_t n = 0;
    uint8_t *b = tu_read_file(from, &n);
    assert_non_null(b);
    assert_int_equal(tu_write_file(to, b, n), 0);
    free(b);
}

static char *bpp_path(const char *db)
{
    char *p = malloc(strlen(db) + sizeof STORE_BPP_SUFFIX);
    sprintf(p, "%s%s", db, STORE_BPP_SUFFIX);
    return p;
}

/* All or nothing: 0 BPPs and no vault, or every one of n BPPs, readable, the right bytes, hash-correct. */
static size_t check_all_or_nothing(const char *db, const char *vault_path, size_t n)
{
    store *s;
    char why[512] = "";
    if (store_open(db, &s, why, sizeof why) != IFPP_OK)
        fail_msg("the store after a kill does not open: %s", why);
    size_t avail = 0, entries = 0;
    assert_int_equal(store_count_bpps(s, BPP_AVAILABLE, &avail), IFPP_OK);
    long long vaults = sql_int(db, "SELECT count(*) FROM vault");
    if (!((avail == 0 && vaults == 0) || (avail == n && vaults == 1)))
        fail_msg("a killed import left %zu of %zu BPPs and %lld vault rows", avail, n, vaults);
    if (store_audit_check(s, NULL, &entries, why, sizeof why) != IFPP_OK)
        fail_msg("audit after a kill: %s", why);
    for (size_t i = 0; i < avail; i++) {
        uint8_t txid[16], *bytes = NULL, h[32];
        size_t len = 0;
        store_bpp row;
        vaultgen_txid(vault_path, i, txid);
        assert_int_equal(store_get_bpp(s, txid, 16, &row), IFPP_OK);
        if (store_bpp_blob(s, txid, 16, &bytes, &len) != IFPP_OK)
            fail_msg("BPP %zu unreadable after a kill: %s", i, store_errmsg(s));
        assert_int_equal(len, row.bpp_len);
        assert_int_equal(vaultgen_item_of(bytes, len), i); /* its own bytes, not a neighbour's */
        crypto_sha256(bytes, len, h);
        assert_memory_equal(h, row.bpp_hash, 32);
        free(bytes);
    }
    store_close(s);
    return avail;
}

/* The importer, in a child: exits 0 when the import returned IFPP_OK. */
static pid_t start_import(const char *db, const char *vault_path, const cert *ci)
{
    pid_t pid = fork();
    if (pid == 0) {
        store *s;
        import_summary sum;
        char why[512];
        int ok = store_open(db, &s, why, sizeof why) == IFPP_OK &&
                 import_vault_file(s, vault_path, ci, &sum, why, sizeof why) == IFPP_OK;
        if (!ok)
            fprintf(stderr, "importer of %s: %s\n", vault_path, why); /* the test's failure says why */
        _exit(ok ? 0 : 1);
    }
    return pid;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Issue 16: an import killed at random points leaves the vault out or all in; the next import cuts the tail. */
static void test_kill_import_all_or_nothing(void **state)
{
    (void)state;
    test_line L;
    memset(&L, 0, sizeof L);
    char why[512] = "";
    char *dir = tu_mkdtemp("ifpp-bppkill");
    test_line_opts o = {.n_cards = 1, .n_otks = {2}, .profile_size = 1024};
    if (test_line_make(&L, dir, &o, why, sizeof why) != 0)
        fail_msg("line: %s", why);
    char *vault = tu_path(dir, "bulk.der"), *pristine = tu_path(dir, "pristine.db"), *db = tu_path(dir, "round.db");
    char *db_bpp = bpp_path(db);
    if (vaultgen_make(&L, KILL_BPPS, KILL_PROFILE, vault, why, sizeof why) != 0)
        fail_msg("%s", why);
    copy_file(L.db, pristine); /* closed: its WAL is checkpointed and gone */

    /* how long an import takes here, to spread the kills over it (a measure, not an assertion) */
    copy_file(pristine, db);
    double t0 = now_s();
    int status;
    pid_t pid = start_import(db, vault, L.ci);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    double full = now_s() - t0;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(check_all_or_nothing(db, vault, KILL_BPPS), KILL_BPPS);

    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    printf("kill test: seed %u, an import takes %.3f s\n", seed, full);
    srand(seed);
    size_t none = 0, all = 0;
    for (int round = 0; round < KILL_ROUNDS; round++) {
        unlink(db);
        unlink(db_bpp);
        copy_file(pristine, db);
        long us = (long)(full * 1.1e6 * (double)rand() / (double)RAND_MAX);
        pid = start_import(db, vault, L.ci);
        struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        size_t got = check_all_or_nothing(db, vault, KILL_BPPS);
        if (got) {
            all++;
            continue;
        }
        none++;
        /* what the killed import left past the committed size is cut by the next one, which completes */
        store *s;
        import_summary sum;
        assert_int_equal(store_open(db, &s, why, sizeof why), IFPP_OK);
        if (import_vault_file(s, vault, L.ci, &sum, why, sizeof why) != IFPP_OK)
            fail_msg("import after a killed one: %s", why);
        assert_int_equal(sum.added, KILL_BPPS);
        store_close(s);
        assert_int_equal(check_all_or_nothing(db, vault, KILL_BPPS), KILL_BPPS);
        struct stat st;
        assert_int_equal(stat(db_bpp, &st), 0);
        assert_int_equal((long long)st.st_size, sql_int(db, "SELECT size FROM bpp_data"));
    }
    printf("kill test: %d rounds, %zu killed before the commit (vault absent), %zu after (vault whole)\n",
           KILL_ROUNDS, none, all);
    tu_rmrf(dir);
    free(dir);
    free(vault);
    free(pristine);
    free(db);
    free(db_bpp);
    test_line_free(&L);
}

/* A line with its vault imported, for the provisioning tests. */
static void make_line(test_line *L, const char *stem)
{
    char why[512] = "";
    memset(L, 0, sizeof *L);
    char *dir = tu_mkdtemp(stem);
    test_line_opts o = {.n_cards = 1, .n_otks = {2}, .profile_size = 9000, .import_vault = true};
    if (test_line_make(L, dir, &o, why, sizeof why) != 0)
        fail_msg("line: %s", why);
    free(dir);
}

static ifpp_err provision(const test_line *L, store *s, const char *serial, session_result *r)
{
    fpa_slot slot;
    char why[512] = "";
    assert_int_equal(fpa_open("virtual", L->card[0], &slot, why, sizeof why), IFPP_OK);
    session_ctx c = {.st = s, .slot = &slot, .slot_name = "fixture-1", .dm_fpa_key = L->dm_fpa_key,
                     .dm_fpa_cert = L->dm_fpa, .delete_keys_when_done = true};
    ifpp_err e = session_provision(&c, serial, NULL, r);
    fpa_close(&slot);
    return e;
}

static int card_profiles(const test_line *L)
{
    euicc_sim *sim;
    assert_int_equal(euicc_sim_open(L->card[0], &sim), IFPP_OK);
    int n = (int)euicc_sim_profile_count(sim);
    euicc_sim_close(sim);
    return n;
}

/* Issue 16: one flipped byte in the data file: the BPP is refused by name, the card gets nothing. */
static void test_flipped_byte_refused(void **state)
{
    (void)state;
    test_line L;
    make_line(&L, "ifpp-bppflip");
    char *data = bpp_path(L.db);
    /* flip one byte in the middle of every BPP, so whichever the session reserves is damaged */
    sqlite3 *db;
    sqlite3_stmt *st;
    char txids[2][33];
    int rows = 0;
    assert_int_equal(sqlite3_open(L.db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT txid, data_off, data_len FROM bpp", -1, &st, NULL), SQLITE_OK);
    FILE *f = fopen(data, "r+b");
    assert_non_null(f);
    while (sqlite3_step(st) == SQLITE_ROW && rows < 2) {
        long off = (long)(sqlite3_column_int64(st, 1) + sqlite3_column_int64(st, 2) / 2);
        hex_encode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), txids[rows++], 33);
        assert_int_equal(fseek(f, off, SEEK_SET), 0);
        int c = fgetc(f);
        assert_int_equal(fseek(f, off, SEEK_SET), 0);
        fputc(c ^ 0x01, f);
    }
    fclose(f);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(rows, 2);

    store *s;
    char why[512] = "";
    assert_int_equal(store_open(L.db, &s, why, sizeof why), IFPP_OK);
    uint8_t txid[16], *bytes = NULL;
    size_t tl = 0, n = 0;
    assert_int_equal(hex_decode(txids[0], txid, sizeof txid, &tl), IFPP_OK);
    assert_int_equal(store_bpp_blob(s, txid, tl, &bytes, &n), IFPP_E_SIGNATURE);
    printf("damaged BPP: %s\n", store_errmsg(s));
    assert_non_null(strstr(store_errmsg(s), txids[0]));
    assert_non_null(strstr(store_errmsg(s), data));

    session_result r;
    memset(&r, 0, sizeof r);
    provision(&L, s, "DUT-FLIP-1", &r);
    printf("provisioning with a damaged data file: %s\n", r.message);
    assert_false(r.installed);
    if (!strstr(r.message, txids[0]) && !strstr(r.message, txids[1]))
        fail_msg("the refusal does not name the BPP: %s", r.message);
    assert_non_null(strstr(r.message, "damaged or edited"));
    assert_int_equal(card_profiles(&L), 0);
    size_t installed = 1;
    assert_int_equal(store_count_bpps(s, BPP_INSTALLED, &installed), IFPP_OK);
    assert_int_equal(installed, 0);
    store_close(s);
    tu_rmrf(L.dir);
    free(data);
    test_line_free(&L);
}

/* Issue 16, migration 7: BPP rows from before it hold their bytes in the table, and still provision. */
static void test_old_blob_rows_provision(void **state)
{
    (void)state;
    test_line L;
    make_line(&L, "ifpp-bppold");
    /* turn every row back into what a store before migration 7 held: the bytes in the row, no data file */
    store *s;
    char why[512] = "";
    assert_int_equal(store_open(L.db, &s, why, sizeof why), IFPP_OK);
    sqlite3 *db;
    sqlite3_stmt *st, *up;
    assert_int_equal(sqlite3_open(L.db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT txid FROM bpp", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE bpp SET bpp = ?, data_off = NULL, data_len = NULL,"
                                            " data_sha256 = NULL WHERE txid = ?", -1, &up, NULL), SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint8_t *bytes = NULL;
        size_t n = 0;
        assert_int_equal(store_bpp_blob(s, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &bytes, &n),
                         IFPP_OK);
        sqlite3_bind_blob(up, 1, bytes, (int)n, SQLITE_TRANSIENT);
        sqlite3_bind_blob(up, 2, sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0), SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(up), SQLITE_DONE);
        sqlite3_reset(up);
        free(bytes);
        rows++;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(up);
    assert_int_equal(sqlite3_exec(db, "UPDATE bpp_data SET size = 0", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rows, 2);
    store_close(s);
    char *data = bpp_path(L.db);
    assert_int_equal(truncate(data, 0), 0);

    assert_int_equal(store_open(L.db, &s, why, sizeof why), IFPP_OK);
    session_result r;
    memset(&r, 0, sizeof r);
    ifpp_err e = provision(&L, s, "DUT-OLD-1", &r);
    if (e != IFPP_OK || !r.installed)
        fail_msg("a BPP stored in its row before migration 7 did not provision: %s", r.message);
    assert_int_equal(card_profiles(&L), 1);
    /* a new BPP after them goes to the data file again (the committed size was 0) */
    assert_int_equal(sql_int(L.db, "SELECT count(*) FROM bpp WHERE data_off IS NULL"), 2);
    store_close(s);
    tu_rmrf(L.dir);
    free(data);
    test_line_free(&L);
}

/* The data file is the store's: read-only opens read it, and no output may be written over it. */
static void test_readonly_and_owned(void **state)
{
    (void)state;
    test_line L;
    make_line(&L, "ifpp-bppro");
    char *data = bpp_path(L.db);
    store *s;
    char why[512] = "";
    assert_int_equal(store_open_readonly(L.db, &s, why, sizeof why), IFPP_OK);
    assert_true(store_owns_path(s, data));
    uint8_t txid[16];
    size_t tl = 0, n = 0;
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(L.db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT txid FROM bpp LIMIT 1", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    tl = (size_t)sqlite3_column_bytes(st, 0);
    memcpy(txid, sqlite3_column_blob(st, 0), tl);
    sqlite3_finalize(st);
    sqlite3_close(db);
    uint8_t *bytes = NULL;
    assert_int_equal(store_bpp_blob(s, txid, tl, &bytes, &n), IFPP_OK);
    assert_true(n > 9000);
    assert_int_equal(bytes[0], 0xBF);
    free(bytes);
    store_close(s);
    tu_rmrf(L.dir);
    free(data);
    test_line_free(&L);
}

/* A line with n One-time Keys and a vaultgen vault for them at *vault (dir/name). */
static void bulk_line(test_line *L, const char *stem, const char *name, size_t n, char **vault)
{
    char why[512] = "";
    memset(L, 0, sizeof *L);
    char *dir = tu_mkdtemp(stem);
    test_line_opts o = {.n_cards = 1, .n_otks = {2}, .profile_size = 1024};
    if (test_line_make(L, dir, &o, why, sizeof why) != 0)
        fail_msg("line: %s", why);
    *vault = tu_path(dir, name);
    if (vaultgen_make(L, n, 4000, *vault, why, sizeof why) != 0)
        fail_msg("%s", why);
    free(dir);
}

/* A vault imported again: every BPP a duplicate, not one byte appended to the data file. */
static void test_reimport_appends_nothing(void **state)
{
    (void)state;
    test_line L;
    char *vault, why[512] = "";
    bulk_line(&L, "ifpp-bppre", "bulk.der", 200, &vault);
    char *data = bpp_path(L.db);
    store *s;
    import_summary sum;
    assert_int_equal(store_open(L.db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(import_vault_file(s, vault, L.ci, &sum, why, sizeof why), IFPP_OK);
    assert_int_equal(sum.added, 200);
    struct stat a, b;
    assert_int_equal(stat(data, &a), 0);
    assert_int_equal(import_vault_file(s, vault, L.ci, &sum, why, sizeof why), IFPP_OK);
    assert_int_equal(sum.added, 0);
    assert_int_equal(sum.duplicate, 200);
    assert_int_equal(stat(data, &b), 0);
    assert_int_equal(a.st_size, b.st_size);
    assert_int_equal((long long)b.st_size, sql_int(L.db, "SELECT size FROM bpp_data"));
    store_close(s);
    tu_rmrf(L.dir);
    free(vault);
    free(data);
    test_line_free(&L);
}

/* Two importers of one store at once (two processes): they take turns at the data file, both vaults whole. */
static void test_two_importers_take_turns(void **state)
{
    (void)state;
    test_line L;
    char *one, why[512] = "";
    bulk_line(&L, "ifpp-bpptwo", "one.der", 600, &one);
    char *two = tu_path(L.dir, "two.der");
    if (vaultgen_make(&L, 600, 4000, two, why, sizeof why) != 0)
        fail_msg("%s", why);
    pid_t a = start_import(L.db, one, L.ci), b = start_import(L.db, two, L.ci);
    int sa, sb;
    assert_int_equal(waitpid(a, &sa, 0), a);
    assert_int_equal(waitpid(b, &sb, 0), b);
    assert_true(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
    assert_true(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
    assert_int_equal(sql_int(L.db, "SELECT count(*) FROM vault"), 2);
    store *s;
    assert_int_equal(store_open(L.db, &s, why, sizeof why), IFPP_OK);
    size_t avail = 0;
    assert_int_equal(store_count_bpps(s, BPP_AVAILABLE, &avail), IFPP_OK);
    assert_int_equal(avail, 1200);
    const char *vaults[2] = {one, two};
    for (int v = 0; v < 2; v++)
        for (size_t i = 0; i < 600; i++) {
            uint8_t txid[16], *bytes = NULL, h[32];
            size_t len = 0;
            store_bpp row;
            vaultgen_txid(vaults[v], i, txid);
            assert_int_equal(store_get_bpp(s, txid, 16, &row), IFPP_OK);
            if (store_bpp_blob(s, txid, 16, &bytes, &len) != IFPP_OK)
                fail_msg("vault %d BPP %zu: %s", v + 1, i, store_errmsg(s));
            assert_int_equal(vaultgen_item_of(bytes, len), i);
            crypto_sha256(bytes, len, h);
            assert_memory_equal(h, row.bpp_hash, 32);
            free(bytes);
        }
    char cwhy[256] = "";
    assert_int_equal(store_audit_check(s, NULL, NULL, cwhy, sizeof cwhy), IFPP_OK);
    store_close(s);
    tu_rmrf(L.dir);
    free(one);
    free(two);
    test_line_free(&L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readonly_and_owned),
        cmocka_unit_test(test_flipped_byte_refused),
        cmocka_unit_test(test_old_blob_rows_provision),
        cmocka_unit_test(test_reimport_appends_nothing),
        cmocka_unit_test(test_two_importers_take_turns),
        cmocka_unit_test(test_kill_import_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
