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

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"
#include "station.h"
#include "store.h"
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

/* Runs a shell command line with stderr joined to stdout (in f->out); returns its exit code. */
static int sh(fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(fx *f, const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd - 8, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd - 8);
    strcat(cmd, " 2>&1");
    return RUN(f, "/bin/sh", "-c", cmd);
}

/*
 * A fresh line as README's example makes it: 2 eUICCs with 2 One-time Keys each, imported, a vault of
 * 4 BPPs bound to them imported (all "available"); cards[i] the two card files, eids[i] their EIDs.
 */
typedef struct {
    char *dir, *db, *pki, *ctl, *rehearse;
    char card[2][4200], eid_hex[2][33];
    uint8_t eid[2][16];
} line;

static void line_make(fx *f, line *l, const char *name)
{
    memset(l, 0, sizeof *l);
    l->dir = tu_path(f->dir, name);
    l->db = tu_path(l->dir, "station.db");
    l->pki = tu_path(l->dir, "pki");
    assert_int_equal(mkdir(l->dir, 0700), 0);
    assert_int_equal(RUN(f, (char *)tu_tool("IFPP_TESTPKI", "ifpp-testpki"), "--out", l->pki, "--eids", "2"), 0);
    assert_int_equal(RUN(f, (char *)tu_tool("IFPP_TEST_SIM", "ifpp-test-sim"), "eum", "--pki", l->pki, "--out", l->dir,
                         "--otks", "2"), 0);
    assert_int_equal(sh(f, "cd '%s' && '%s' --store station.db --pki pki import-euicc euicc-data.der && "
                           "'%s' --store station.db --pki pki request --out req.der && "
                           "'%s' smdpf-vault --pki pki --request req.der --out vault.der && "
                           "'%s' --store station.db --pki pki import-vault vault.der",
                        l->dir, product(), product(), tu_tool("IFPP_TEST_SIM", "ifpp-test-sim"), product()),
                     0);
    char pattern[4200];
    glob_t g;
    snprintf(pattern, sizeof pattern, "%s/*.card", l->dir);
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    assert_int_equal(g.gl_pathc, 2);
    for (int i = 0; i < 2; i++) {
        size_t n;
        snprintf(l->card[i], sizeof l->card[i], "virtual:%s", g.gl_pathv[i]);
        snprintf(l->eid_hex[i], sizeof l->eid_hex[i], "%.32s", strrchr(g.gl_pathv[i], '/') + 1);
        assert_int_equal(hex_decode(l->eid_hex[i], l->eid[i], 16, &n), IFPP_OK);
    }
    globfree(&g);
}

static void line_free(line *l)
{
    free(l->dir), free(l->db), free(l->pki);
}

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
    char lock[4200];
    snprintf(lock, sizeof lock, "%s" STATION_LOCK_SUFFIX, f->db); /* the daemon's lock beside the store */
    char data[4200];
    snprintf(data, sizeof data, "%s" STORE_BPP_SUFFIX, f->db); /* the BPP data file (issue 16) */
    const char *outs[] = {f->db, dotted, wal, journal, lock, data};
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
    /* the operator reads why: the card file is a FIFO, not an "input/output error" */
    assert_int_not_equal(sh(f, "'%s' --store '%s' --pki '%s' provision --slot '%s' --serial DUT-FIFO", rehearse(), f->db,
                            f->pki, slot), 0);
    assert_non_null(strstr(f->out, "is a FIFO"));
    assert_null(strstr(f->out, "input/output error"));
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
 * Issue 9, item 13: the demo checks every write it makes. A file-size limit of 256 KiB (SIGXFSZ ignored, so the
 * write fails with EFBIG; the store, at its newest schema, stays below it) lets the small files through and stops the vault: the demo must say it could
 * not write it and stop, exit 1, with nothing leaked (the sanitizer build's LeakSanitizer would change
 * the exit code). The old demo printed "bpp-vault.der: 2 BPP(s), 533295 bytes" and went on to import it.
 */
static void test_demo_checks_its_writes(void **state)
{
    fx *f = *state;
    char *d = tu_path(f->dir, "full-disk"), cmd[8192];
    snprintf(cmd, sizeof cmd, "trap '' XFSZ; ulimit -f 512; exec '%s' demo --dir '%s' --duts 1 --profile-size 262144 2>&1",
             rehearse(), d);
    assert_int_equal(RUN(f, "/bin/sh", "-c", cmd), STATION_EXIT_FAILURE);
    assert_non_null(strstr(f->out, "cannot write"));
    assert_non_null(strstr(f->out, "bpp-vault.der"));
    assert_null(strstr(f->out, "== 6."));
    assert_non_null(strstr(f->out, "demo FAILED"));
    free(d);
}

/*
 * Issue 9, item 2 and 14: `status` worth reading -- stock per profile type, the reserved and in-doubt
 * BPPs with slot, serial and age, today's PASS/FAIL -- and `recover` printing each BPP's outcome and why.
 * A process killed right after it reserved a BPP is played by the store's own bpp_reserve. The old
 * status printed only "BPPs by state: ..."; the old recover only "1 BPP(s) resolved".
 */
static void test_status_and_recover_say_what(void **state)
{
    fx *f = *state;
    line l;
    line_make(f, &l, "status-line");
    assert_int_equal(RUN(f, (char *)product(), "--store", l.db, "status"), 0);
    assert_non_null(strstr(f->out, "stock (available BPPs) per profile type:"));
    assert_non_null(strstr(f->out, "default                  4"));
    assert_non_null(strstr(f->out, "reserved or in_doubt: none"));
    assert_non_null(strstr(f->out, "PASS 0 (profiles installed), FAIL 0"));

    store *s;
    char why[512];
    store_bpp b;
    store_actor who = {.session = "killed", .slot = l.card[0], .dut_serial = "DUT-KILLED", .reason = "provision"};
    assert_int_equal(store_open(l.db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(bpp_reserve(s, l.eid[0], NULL, &who, &b), IFPP_OK);
    store_close(s);
    char tx[33], want[4400];
    assert_int_equal(hex_encode(b.transaction_id, b.transaction_id_len, tx, sizeof tx), IFPP_OK);

    assert_int_equal(RUN(f, (char *)product(), "--store", l.db, "status"), 0);
    assert_non_null(strstr(f->out, "reserved or in_doubt: 1"));
    snprintf(want, sizeof want, "reserved BPP %s slot %s serial DUT-KILLED since ", tx, l.card[0]);
    assert_non_null(strstr(f->out, want));
    assert_non_null(strstr(f->out, ", age "));
    assert_non_null(strstr(f->out, "default                  3"));

    assert_int_equal(RUN(f, (char *)rehearse(), "--store", l.db, "--pki", l.pki, "recover", "--slot", l.card[0]), 0);
    snprintf(want, sizeof want, "BPP %s -> available: recovery: One-time Key still on the eUICC, nothing installed", tx);
    assert_non_null(strstr(f->out, want));
    assert_non_null(strstr(f->out, "1 BPP(s) resolved from the eUICC's evidence"));
    assert_int_equal(RUN(f, (char *)rehearse(), "--store", l.db, "--pki", l.pki, "recover", "--slot", l.card[0]), 0);
    assert_non_null(strstr(f->out, "nothing to resolve"));

    assert_int_equal(RUN(f, (char *)rehearse(), "--store", l.db, "--pki", l.pki, "provision", "--slot", l.card[0],
                         "--serial", "DUT-0001"), 0);
    assert_int_equal(RUN(f, (char *)product(), "--store", l.db, "status"), 0);
    assert_non_null(strstr(f->out, "reserved or in_doubt: none"));
    assert_non_null(strstr(f->out, "PASS 1 (profiles installed), FAIL 0"));
    assert_non_null(strstr(f->out, "default                  3"));
    line_free(&l);
}

/*
 * Use case A.3: a DUT with a profile gets a further one only when asked, and the ask names the
 * profile type (the old ifppctl took a bare --additional-profile).
 */
static void test_additional_profile_is_explicit(void **state)
{
    fx *f = *state;
    line l;
    line_make(f, &l, "a3-line");
    assert_int_equal(RUN(f, (char *)rehearse(), "--store", l.db, "--pki", l.pki, "provision", "--slot", l.card[1],
                         "--serial", "DUT-A3"), 0);
    assert_int_equal(RUN(f, (char *)rehearse(), "--store", l.db, "--pki", l.pki, "provision", "--slot", l.card[1],
                         "--serial", "DUT-A3"), STATION_EXIT_REFUSED);
    assert_non_null(strstr(f->out, "already has a profile"));
    size_t n;
    uint8_t *before = tu_read_file(l.db, &n);
    assert_int_equal(RUN(f, (char *)rehearse(), "--store", l.db, "--pki", l.pki, "provision", "--slot", l.card[1],
                         "--serial", "DUT-A3", "--additional-profile"), STATION_EXIT_USAGE);
    size_t m;
    uint8_t *after = tu_read_file(l.db, &m);
    assert_int_equal(m, n);
    assert_memory_equal(after, before, n);
    free(before), free(after);
    assert_int_equal(RUN(f, (char *)rehearse(), "--store", l.db, "--pki", l.pki, "provision", "--slot", l.card[1],
                         "--serial", "DUT-A3", "--additional-profile", "--profile-type", "other"), STATION_EXIT_REFUSED);
    assert_int_equal(RUN(f, (char *)rehearse(), "--store", l.db, "--pki", l.pki, "provision", "--slot", l.card[1],
                         "--serial", "DUT-A3", "--additional-profile", "--profile-type", "default"), 0);
    assert_non_null(strstr(f->out, "DUT-A3 PASS"));
    line_free(&l);
}

/* Issue 9, item 5: a serial with a terminal escape is never written raw to the operator's screen. */
static void test_serial_never_echoed_raw(void **state)
{
    fx *f = *state;
    char slot[4200];
    snprintf(slot, sizeof slot, "virtual:%s/fixtures/dut-01.card", f->demo);
    const char *bad[] = {"DUT\x1b[2J", "DUT\nDUT-9 PASS", "DUT\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char serial[64];
        size_t j = 0;
        for (const char *p = bad[i]; *p && j + 1 < sizeof serial; p++) /* the escapes above, made real */
            if (p[0] == '\\' && p[1] == 'x') {
                serial[j++] = (char)strtol((char[]){p[2], p[3], 0}, NULL, 16);
                p += 3;
            } else if (p[0] == '\\' && p[1] == 'n') {
                serial[j++] = '\n';
                p++;
            } else {
                serial[j++] = *p;
            }
        serial[j] = '\0';
        assert_int_equal(RUN(f, (char *)rehearse(), "--store", f->db, "--pki", f->pki, "provision", "--slot", slot,
                             "--serial", serial),
                         STATION_EXIT_REFUSED);
        for (const char *p = f->out; *p; p++)
            assert_true(*p == '\n' || (*p >= 0x20 && *p < 0x7F));
        assert_null(strstr(f->out, "\nDUT-9 PASS"));
        assert_non_null(strstr(f->out, "DUT\\x"));
    }
}

/*
 * Issue 8 item 8, issue 9 item 14: `audit` verifies against the last exported anchor. The audit rows
 * of every move after the imports are deleted and the BPPs set back to available with the sqlite3
 * CLI: the chain and the table still agree, so the unanchored check passes -- and says it is not
 * anchored -- while `audit --anchor REPORT` finds the cut. The old ifppctl had no --anchor (exit 2)
 * and printed "hash chain intact" alone.
 */
static void test_audit_anchor_finds_a_cut_log(void **state)
{
    fx *f = *state;
    char *rep = tu_path(f->dir, "anchor-report.der");
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--pki", f->pki, "report", "--out", rep), 0);
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "--pki", f->pki, "audit", "--anchor", rep), 0);
    assert_non_null(strstr(f->out, "hash chain intact"));
    assert_non_null(strstr(f->out, "anchored: entry "));
    assert_int_equal(sh(f, "'%s' --store '%s' --pki '%s' audit --anchor '%s.missing'", product(), f->db, f->pki, rep),
                     STATION_EXIT_FAILURE);
    assert_non_null(strstr(f->out, "--anchor"));
    assert_non_null(strstr(f->out, "No such file or directory"));
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "audit"), 0);
    assert_non_null(strstr(f->out, "NOT anchored"));
    assert_int_equal(sh(f, "sqlite3 '%s' \"DELETE FROM audit WHERE id >= (SELECT min(id) FROM audit WHERE event = "
                           "'bpp_state'); DELETE FROM pir; UPDATE bpp SET state = 'available';\"", f->db), 0);
    assert_int_equal(RUN(f, (char *)product(), "--store", f->db, "audit"), 0);
    assert_non_null(strstr(f->out, "NOT anchored"));
    assert_int_equal(sh(f, "'%s' --store '%s' --pki '%s' audit --anchor '%s'", product(), f->db, f->pki, rep),
                     STATION_EXIT_FAILURE);
    assert_non_null(strstr(f->out, "entries were deleted"));
    /* --anchor needs the DM root that signed it; a missing one is named */
    assert_int_equal(sh(f, "'%s' --store '%s' audit --anchor '%s'", product(), f->db, rep), STATION_EXIT_FAILURE);
    assert_non_null(strstr(f->out, "--dm-root"));
    free(rep);
}

/* Issue 9, item 14: `audit --list` with filters reads the entries' fields, bounded; bad filters are usage errors. */
static void test_audit_list_filters(void **state)
{
    fx *f = *state;
    line l;
    line_make(f, &l, "list-line");
    for (int i = 0; i < 2; i++) {
        char serial[16];
        snprintf(serial, sizeof serial, "DUT-L%d", i);
        assert_int_equal(RUN(f, (char *)rehearse(), "--store", l.db, "--pki", l.pki, "provision", "--slot", l.card[i],
                             "--serial", serial), 0);
    }
    assert_int_equal(RUN(f, (char *)product(), "--store", l.db, "audit", "--list", "--serial", "DUT-L1"), 0);
    assert_non_null(strstr(f->out, "reserved -> installed serial=DUT-L1"));
    assert_null(strstr(f->out, "DUT-L0"));
    assert_non_null(strstr(f->out, "(2 matching entries;"));
    char eid_arg[40];
    snprintf(eid_arg, sizeof eid_arg, "%s", l.eid_hex[0]);
    assert_int_equal(RUN(f, (char *)product(), "--store", l.db, "audit", "--list", "--eid", eid_arg, "--event",
                         "bpp_state"), 0);
    assert_non_null(strstr(f->out, "serial=DUT-L0"));
    assert_null(strstr(f->out, "DUT-L1"));
    assert_null(strstr(f->out, "bpp_added"));
    assert_int_equal(RUN(f, (char *)product(), "--store", l.db, "audit", "--list", "--limit", "3"), 0);
    assert_non_null(strstr(f->out, "(the newest 3 of "));
    size_t lines = 0;
    for (const char *p = f->out; (p = strchr(p, '#')); p++)
        lines++;
    assert_int_equal(lines, 3);
    assert_int_equal(RUN(f, (char *)product(), "--store", l.db, "audit", "--list", "--since", "2999-01-01"), 0);
    assert_non_null(strstr(f->out, "(0 matching entries;"));
    const char *bad[][2] = {{"--since", "2026-02-30"}, {"--eid", "89"}, {"--txid", "xyz"}, {"--limit", "0"},
                            {"--limit", "10001"}, {"--event", "a b"}, {"--serial", "bad serial"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(RUN(f, (char *)product(), "--store", l.db, "audit", "--list", (char *)bad[i][0],
                             (char *)bad[i][1]), STATION_EXIT_USAGE);
    assert_int_equal(RUN(f, (char *)product(), "--store", l.db, "audit", "--serial", "DUT-L1"), STATION_EXIT_USAGE);
    line_free(&l);
}

/*
 * Issue 9, item 2: a damaged store page is an error, never zeros: status and audit fail (exit 1,
 * naming the store) and report writes nothing.
 */
static void test_damaged_store_is_no_zeros(void **state)
{
    fx *f = *state;
    line l;
    line_make(f, &l, "damaged-line");
    assert_int_equal(sh(f, "sqlite3 '%s' 'PRAGMA wal_checkpoint(TRUNCATE);'", l.db), 0);
    size_t n;
    uint8_t *b = tu_read_file(l.db, &n);
    assert_true(n > 4 * 4096);
    for (size_t i = 4096; i < n; i++)
        if (i % 4096 >= 100) /* every page after the first, headers kept */
            b[i] = (uint8_t)(0xA5 ^ i);
    assert_int_equal(tu_write_file(l.db, b, n), 0);
    free(b);
    char *rep = tu_path(l.dir, "damaged-report.der");
    assert_int_equal(sh(f, "'%s' --store '%s' status", product(), l.db), STATION_EXIT_FAILURE);
    assert_non_null(strstr(f->out, l.db));
    assert_null(strstr(f->out, "available 0"));
    assert_int_equal(sh(f, "'%s' --store '%s' audit", product(), l.db), STATION_EXIT_FAILURE);
    assert_null(strstr(f->out, "intact"));
    assert_int_equal(sh(f, "'%s' --store '%s' --pki '%s' report --out '%s'", product(), l.db, l.pki, rep),
                     STATION_EXIT_FAILURE);
    assert_int_equal(access(rep, F_OK), -1);
    free(rep);
    line_free(&l);
}

/*
 * Issue 9, items 10 and 11: on a read-only mount, status, audit and report still work (the store is
 * opened read-only, and nothing is created beside it); a full store disk is the station's failure,
 * not the vault's. Needs a private mount namespace (root, unshare); skipped without one.
 */
static void test_readonly_mount_and_full_disk(void **state)
{
    fx *f = *state;
    if (sh(f, "unshare -m true") != 0) {
        print_message("no mount namespace here (%s): skipped\n", f->out);
        skip();
    }
    line l;
    line_make(f, &l, "ro-line");
    char *rep = tu_path(f->dir, "ro-report.der");
    assert_int_equal(sh(f, "'%s' --store '%s' --pki '%s' report --out '%s.first'", product(), l.db, l.pki, rep), 0);
    assert_int_equal(sh(f, "unshare -m sh -c \"mount --bind '%s' '%s' && mount -o remount,ro,bind '%s' && "
                           "touch '%s/x' 2>/dev/null && echo WRITABLE; ls '%s' > '%s.before'; "
                           "'%s' --store '%s' status && '%s' --store '%s' audit && "
                           "'%s' --store '%s' --pki '%s' audit --anchor '%s.first' && "
                           "'%s' --store '%s' --pki '%s' report --out '%s' && ls '%s' | cmp - '%s.before'\"",
                        l.dir, l.dir, l.dir, l.dir, l.dir, rep, product(), l.db, product(), l.db, product(), l.db, l.pki,
                        rep, product(), l.db, l.pki, rep, l.dir, rep),
                     0);
    assert_null(strstr(f->out, "WRITABLE"));
    assert_non_null(strstr(f->out, "stock (available BPPs)"));
    assert_non_null(strstr(f->out, "hash chain intact"));
    assert_non_null(strstr(f->out, "written, read back, verified"));
    /* a read-write command on the read-only mount: the store says read-only, with its path */
    assert_int_equal(sh(f, "unshare -m sh -c \"mount --bind '%s' '%s' && mount -o remount,ro,bind '%s' && "
                           "'%s' --store '%s' --pki '%s' import-vault '%s/vault.der'\"",
                        l.dir, l.dir, l.dir, product(), l.db, l.pki, l.dir),
                     STATION_EXIT_FAILURE);
    assert_non_null(strstr(f->out, l.db));
    assert_non_null(strstr(f->out, "read-only"));

    /* a store on a full disk: the vault is fine, the station failed */
    char *full = tu_path(f->dir, "full");
    assert_int_equal(mkdir(full, 0700), 0);
    assert_int_equal(sh(f, "unshare -m sh -c \"mount -t tmpfs -o size=2m none '%s' && "
                           "'%s' --store '%s/s.db' --pki '%s' import-euicc '%s/euicc-data.der' >/dev/null && "
                           "{ dd if=/dev/zero of='%s/filler' bs=4k 2>/dev/null; truncate -s -64k '%s/filler'; "
                           "'%s' --store '%s/s.db' --pki '%s' import-vault '%s/vault.der'; }\"",
                        full, product(), full, l.pki, l.dir, full, full, product(), full, l.pki, l.dir),
                     STATION_EXIT_FAILURE);
    free(full);
    assert_non_null(strstr(f->out, "full"));
    assert_non_null(strstr(f->out, "s.db"));
    assert_non_null(strstr(f->out, "the station failed (not the bundle)"));
    assert_null(strstr(f->out, "refused"));
    free(rep);
    line_free(&l);
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
        cmocka_unit_test(test_status_and_recover_say_what),
        cmocka_unit_test(test_additional_profile_is_explicit),
        cmocka_unit_test(test_serial_never_echoed_raw),
        cmocka_unit_test(test_audit_anchor_finds_a_cut_log),
        cmocka_unit_test(test_audit_list_filters),
        cmocka_unit_test(test_damaged_store_is_no_zeros),
        cmocka_unit_test(test_readonly_mount_and_full_disk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
