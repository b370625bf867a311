/*
 * test_ifppctl.c -- ifppctl as operators meet it, through the built binaries (issue 9: items 1, 3,
 * 5, 12, 13, 14; issue 8, item 2): the product's ifppctl (IFPP_PRODUCT_IFPPCTL) and the rehearsal
 * tool (IFPP_REHEARSE: the same commands with the simulator's virtual backend, and the demo).
 *
 * A fixture line is made once by `ifpp-rehearse demo --duts 1`; every test then works on it and
 * checks that a refused command left its store byte for byte as it was.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "station.h"
#include "testutil.h"

typedef struct {
    char *dir, *demo, *db, *pki;
    char out[16384];
} fx;

static const char *product(void)
{
    return tu_tool("IFPP_PRODUCT_IFPPCTL", "ifppctl");
}

static const char *rehearse(void)
{
    return tu_tool("IFPP_REHEARSE", "ifpp-rehearse");
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    *state = f; /* teardown frees it, set up or not */
    if (!f)
        return -1;
    f->dir = tu_mkdtemp("ifpp-ctl");
    f->demo = tu_path(f->dir, "line");
    f->db = tu_path(f->demo, "station.db");
    f->pki = tu_path(f->demo, "pki");
    char *argv[] = {(char *)rehearse(), "demo", "--dir", f->demo, "--duts", "1", NULL};
    int rc = tu_run(argv, f->out, sizeof f->out);
    if (rc != 0 || !strstr(f->out, "line result: 1 of 1 DUTs PASS") || !strstr(f->out, "demo PASSED")) {
        fprintf(stderr, "demo: rc %d\n%s\n", rc, f->out);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tu_rmrf(f->dir);
    free(f->dir), free(f->demo), free(f->db), free(f->pki);
    free(f);
    return 0;
}

/* Runs a command line (argv[0] a tool path) and returns its exit code; stdout lands in f->out. */
#define RUN(f, ...) tu_run((char *[]){__VA_ARGS__, NULL}, (f)->out, sizeof (f)->out)

/* The store's bytes, to prove a refused command did not touch it. */
static uint8_t *store_bytes(const fx *f, size_t *n)
{
    uint8_t *b = tu_read_file(f->db, n);
    assert_non_null(b);
    return b;
}

static void assert_store_same(const fx *f, const uint8_t *before, size_t n)
{
    size_t m;
    uint8_t *now = store_bytes(f, &m);
    assert_int_equal(m, n);
    assert_memory_equal(now, before, n);
    free(now);
}

/* Issue 9, item 1: an --out that is the store, or one of its journals, is refused and the store stays. */
static void test_out_is_the_store_refused(void **state)
{
    fx *f = *state;
    size_t n;
    uint8_t *before = store_bytes(f, &n);
    char wal[4200], journal[4200], dotted[4200];
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    snprintf(journal, sizeof journal, "%s-journal", f->db); /* does not exist: compared by canonical name */
    snprintf(dotted, sizeof dotted, "%s/./../line/station.db", f->demo);
    const char *outs[] = {f->db, dotted, wal, journal};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--pki", f->pki, "report", "--out", (char *)outs[i]),
                         STATION_EXIT_USAGE);
        assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--pki", f->pki, "request", "--out", (char *)outs[i]),
                         STATION_EXIT_USAGE);
        assert_store_same(f, before, n);
    }
    assert_int_equal(access(journal, F_OK), -1);
    /* a hard link to the store is the store (same device and inode) */
    char *link_path = tu_path(f->dir, "not-a-report.der");
    assert_int_equal(link(f->db, link_path), 0);
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--pki", f->pki, "report", "--out", link_path),
                     STATION_EXIT_USAGE);
    assert_store_same(f, before, n);
    unlink(link_path);
    /* and a real output still works */
    char *rep = tu_path(f->dir, "report.der");
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--pki", f->pki, "report", "--out", rep), 0);
    assert_non_null(strstr(f->out, "written, read back, verified"));
    free(rep);
    free(link_path);
    free(before);
}

/* Issue 9, item 3: a FIFO as a bundle, a certificate or a virtual card is refused at once (it hung before). */
static void test_fifo_inputs_refused(void **state)
{
    fx *f = *state;
    char *fifo = tu_path(f->dir, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    size_t n;
    uint8_t *before = store_bytes(f, &n);
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--pki", f->pki, "import-vault", fifo), STATION_EXIT_FAILURE);
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--ci", fifo, "import-euicc", fifo), STATION_EXIT_FAILURE);
    char slot[4200];
    snprintf(slot, sizeof slot, "virtual:%s", fifo);
    assert_int_not_equal(RUN(f, (char *)rehearse(), "--store", f->db, "--pki", f->pki, "provision", "--slot", slot,
                             "--serial", "DUT-FIFO"), 0);
    assert_store_same(f, before, n);
    unlink(fifo);
    free(fifo);
    free(before);
}

/* Issue 9, item 5: provision without --serial is a usage error, before the store or a card is touched. */
static void test_provision_needs_serial(void **state)
{
    fx *f = *state;
    char slot[4200], *fresh = tu_path(f->dir, "fresh.db");
    snprintf(slot, sizeof slot, "virtual:%s/fixtures/dut-01.card", f->demo);
    size_t n;
    uint8_t *before = store_bytes(f, &n);
    assert_int_equal(RUN(f, (char *)rehearse(), "--store", f->db, "--pki", f->pki, "provision", "--slot", slot),
                     STATION_EXIT_USAGE);
    assert_store_same(f, before, n);
    assert_int_equal(RUN(f, (char *)rehearse(), "--store", fresh, "--pki", f->pki, "provision", "--slot", slot),
                     STATION_EXIT_USAGE);
    assert_int_equal(access(fresh, F_OK), -1);
    free(fresh);
    free(before);
}

/* Issue 9, item 12: --day is a real calendar day from 2000-01-01; the demo's --duts refuses what wraps. */
static void test_day_and_duts_validated(void **state)
{
    fx *f = *state;
    const char *bad_days[] = {"2026-02-30", "0000-01-01", "1999-12-31", "2025-13-01", "2025-1-01", "2025-01-01x", "2023-02-29"};
    char *rep = tu_path(f->dir, "day-report.der");
    for (size_t i = 0; i < sizeof bad_days / sizeof bad_days[0]; i++) {
        assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--pki", f->pki, "report", "--out", rep, "--day",
                             (char *)bad_days[i]),
                         STATION_EXIT_USAGE);
        assert_int_equal(access(rep, F_OK), -1);
    }
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--pki", f->pki, "report", "--out", rep, "--day",
                         "2024-02-29"),
                     0);
    free(rep);
    const char *bad_duts[] = {"-18446744073709551615", "-1", "0", "1001", "18446744073709551617", "4x", ""};
    for (size_t i = 0; i < sizeof bad_duts / sizeof bad_duts[0]; i++) {
        char *d = tu_path(f->dir, "never-made");
        assert_int_equal(RUN(f, (char *)rehearse(), "demo", "--dir", d, "--duts", (char *)bad_duts[i]), STATION_EXIT_USAGE);
        assert_int_equal(access(d, F_OK), -1);
        free(d);
    }
}

/* Issue 9, item 14: --version, and help for every command; a mistyped command creates no store. */
static void test_version_help_and_usage(void **state)
{
    fx *f = *state;
    assert_int_equal(RUN(f, (char *)product(), "--version"), 0);
    assert_non_null(strstr(f->out, "ifppctl "));
    assert_true(strlen(f->out) > strlen("ifppctl \n"));
    const char *cmds[] = {"import-euicc", "import-vault", "request", "provision", "recover", "report", "audit", "status"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char want[64];
        assert_int_equal(RUN(f, (char *)product(), (char *)cmds[i], "--help"), 0);
        snprintf(want, sizeof want, "usage: ifppctl [options] %s", cmds[i]);
        assert_non_null(strstr(f->out, want));
        assert_non_null(strstr(f->out, "Exit codes:"));
    }
    char *typo = tu_path(f->dir, "statoin.db");
    assert_int_equal(RUN(f, (char *)product(), "--store", typo, "stauts"), STATION_EXIT_USAGE);
    assert_int_equal(access(typo, F_OK), -1);
    /* issue 9, item 10: only an import starts a store; a mistyped --store answers no zeros */
    const char *no_new_store[] = {"status", "audit"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(RUN(f, (char *)product(), "--store", typo, (char *)no_new_store[i]), STATION_EXIT_FAILURE);
        assert_int_equal(access(typo, F_OK), -1);
    }
    char *rep = tu_path(f->dir, "typo-report.der");
    assert_int_equal(RUN(f, (char *)product(), "--store", typo, "--pki", f->pki, "report", "--out", rep),
                     STATION_EXIT_FAILURE);
    assert_int_equal(access(typo, F_OK), -1);
    free(rep);
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "status", "vault.der"), STATION_EXIT_USAGE);
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "status", "--day", "2024-01-01"), STATION_EXIT_USAGE);
    free(typo);
}

/*
 * Issue 8, item 2: the product knows no virtual backend (the simulator is not in it); the rehearsal
 * tool runs the same command with it. A second provision of the done DUT is no PASS.
 */
static void test_product_has_no_virtual_backend(void **state)
{
    fx *f = *state;
    char slot[4200];
    snprintf(slot, sizeof slot, "virtual:%s/fixtures/dut-01.card", f->demo);
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--pki", f->pki, "provision", "--slot", slot,
                         "--serial", "DUT-000001"),
                     STATION_EXIT_USAGE);
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--pki", f->pki, "provision", "--slot",
                         "virtual:x.card,aid=12", "--serial", "DUT-000001"),
                     STATION_EXIT_USAGE); /* the slot's own option is checked first, and named */
    int rc = RUN(f, (char *)rehearse(), "--store", f->db, "--pki", f->pki, "provision", "--slot", slot, "--serial",
                 "DUT-000001");
    assert_true(rc == STATION_EXIT_REFUSED || rc == STATION_EXIT_DUT_FAIL);
    assert_null(strstr(f->out, "DUT-000001 PASS"));
}

/*
 * Issue 9, item 13: the demo checks every write it makes. A file-size limit (SIGXFSZ ignored, so the
 * write fails with EFBIG) lets the small files through and stops the vault: the demo must say it could
 * not write it and stop, exit 1, with nothing leaked (the sanitizer build's LeakSanitizer would change
 * the exit code). The old demo printed "bpp-vault.der: 2 BPP(s), 533295 bytes" and went on to import it.
 */
static void test_demo_checks_its_writes(void **state)
{
    fx *f = *state;
    char *d = tu_path(f->dir, "full-disk"), cmd[8192];
    snprintf(cmd, sizeof cmd, "trap '' XFSZ; ulimit -f 256; exec '%s' demo --dir '%s' --duts 1 --profile-size 262144 2>&1",
             rehearse(), d);
    assert_int_equal(RUN(f, "/bin/sh", "-c", cmd), STATION_EXIT_FAILURE);
    assert_non_null(strstr(f->out, "cannot write"));
    assert_non_null(strstr(f->out, "bpp-vault.der"));
    assert_null(strstr(f->out, "== 6."));
    assert_non_null(strstr(f->out, "demo FAILED"));
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_is_the_store_refused),
        cmocka_unit_test(test_fifo_inputs_refused),
        cmocka_unit_test(test_provision_needs_serial),
        cmocka_unit_test(test_day_and_duts_validated),
        cmocka_unit_test(test_version_help_and_usage),
        cmocka_unit_test(test_product_has_no_virtual_backend),
        cmocka_unit_test(test_demo_checks_its_writes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
