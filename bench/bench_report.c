/*
 * bench_report.c -- does the day's report cost the day's results, whatever the store holds?
 *
 * Builds a simulated line's store (tests/testline.h) and adds, straight into its tables, three days of
 * installed results (each with a PIR-sized blob and two audit entries, as a session leaves them): 10^4,
 * 10^5 and 10^6 results (up to the argument), 1.11 million in one store. Then, for each day, in a fresh
 * forked process that reports its own peak resident set: the whole `report --to` (the signed Profile
 * Loading Report streamed, the CSV and the HTML, each written, read back and verified: export.h), and
 * `verify` of that report streamed from the medium (PIRs parsed, not checked: the bench's PIRs are
 * random). Beside each, the time `sha256sum` takes over the same output (the floor of reading it once).
 * Issue 16.3's goal: 10^6 results under 30 s and 100 MB, the 10^4 day costing 1/100 of the 10^6 one
 * in the same store. A benchmark: it prints figures and BENCH lines (bench_util.h) and asserts nothing.
 *
 *   bench_report [MAX]   (default 1000000; the destination is a fresh directory in /dev/shm, a mount)
 */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "export.h"
#include "fpa.h"
#include "fsutil.h"
#include "session.h"
#include "media.h"
#include "testline.h"
#include "testutil.h"

/* One real session on the virtual backend: the PIR every bench result is modelled on. */
static int one_session(test_line *L, char *why, size_t why_len)
{
    store *s;
    fpa_slot slot;
    session_result r;
    if (store_open(L->db, &s, why, why_len) != IFPP_OK)
        return -1;
    ifpp_err e = fpa_open("virtual", L->card[0], &slot, why, why_len);
    if (e == IFPP_OK) {
        session_ctx c = {.st = s, .slot = &slot, .slot_name = "fixture-1", .dm_fpa_key = L->dm_fpa_key,
                         .dm_fpa_cert = L->dm_fpa};
        e = session_provision(&c, "DUT-0", NULL, &r);
        if (e == IFPP_OK && !r.installed)
            e = IFPP_E_INTERNAL;
        fpa_close(&slot);
    }
    store_close(s);
    return e == IFPP_OK ? 0 : -1;
}

/* A real PIR of the line's day of sessions, and where its 16-byte transaction id lies in it. */
static int pir_template(sqlite3 *d, uint8_t *out, size_t *n, size_t *at)
{
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(d, "SELECT p.pir, p.txid FROM pir p WHERE length(p.txid) = 16 AND length(p.pir) <= 1024"
                              " LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(st, 0), *t = sqlite3_column_blob(st, 1);
        *n = (size_t)sqlite3_column_bytes(st, 0);
        memcpy(out, p, *n);
        for (size_t i = 0; i + 16 <= *n && rc; i++)
            if (!memcmp(p + i, t, 16)) {
                *at = i;
                rc = 0;
            }
    }
    sqlite3_finalize(st);
    if (rc)
        fprintf(stderr, "bench_report: the line's store holds no PIR to model the results on\n");
    return rc;
}

/* N installed results of day for the line's eUICC (tag: a byte that makes their keys unique), with audit entries. */
static int fill(const char *db, const char *eid_hex, const char *day, uint8_t tag, size_t n)
{
    sqlite3 *d;
    sqlite3_stmt *b, *a;
    size_t len, pir_len = 0, pir_at = 0;
    uint8_t pir[1024];
    uint8_t *eid = tu_hex(eid_hex, &len);
    if (!eid || sqlite3_open(db, &d) != SQLITE_OK)
        return -1;
    sqlite3_exec(d, "PRAGMA synchronous=OFF; BEGIN", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(d, "INSERT INTO bpp (txid, eid, otpk, iccid, profile_type, bpp_hash, bpp, vault_id, state,"
                              " session, slot, dut_serial, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, zeroblob(32),"
                              " zeroblob(1), 'bench', 'installed', ?6, ?7, ?8, ?9)", -1, &b, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d, "INSERT INTO pir (txid, pir, success, received_at) VALUES (?1, ?3, 1, ?2)", -1, &a,
                           NULL) != SQLITE_OK || pir_template(d, pir, &pir_len, &pir_at) != 0) {
        fprintf(stderr, "bench: %s\n", sqlite3_errmsg(d));
        return -1;
    }
    sqlite3_stmt *au;
    sqlite3_prepare_v2(d, "INSERT INTO audit (at, event, detail, prev, hash, form, txid, eid, from_state, to_state,"
                          " session, slot, dut_serial, reason) VALUES (?1, 'bpp_state', '', zeroblob(32), zeroblob(32),"
                          " 2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", -1, &au, NULL);
    static const char *const types[] = {"operatorA", "operatorB", "iot-global"};
    for (size_t i = 0; i < n; i++) {
        uint8_t txid[16] = {0}, otpk[65] = {0x04}, iccid[10] = {0x98, 0x94};
        char serial[32], slot[16], at[32], start[32], session[32];
        for (int k = 0; k < 8; k++)
            txid[8 + k] = otpk[57 + k] = (uint8_t)(i >> (8 * k));
        txid[0] = 0xBE;
        txid[1] = otpk[56] = tag;
        for (int k = 2; k < 10; k++)
            iccid[k] = (uint8_t)(((i >> (k * 3)) % 10) << 4 | (i % 10));
        unsigned secs = (unsigned)(i * 86399 / (n ? n : 1)), dur = 20 + (unsigned)(i % 70);
        unsigned s0 = secs > dur ? secs - dur : 0;
        snprintf(at, sizeof at, "%sT%02u:%02u:%02uZ", day, secs / 3600, secs / 60 % 60, secs % 60);
        snprintf(start, sizeof start, "%sT%02u:%02u:%02uZ", day, s0 / 3600, s0 / 60 % 60, s0 % 60);
        snprintf(serial, sizeof serial, "SN%02X%010zu", tag, i);
        snprintf(slot, sizeof slot, "fixture-%zu", i % 8 + 1);
        snprintf(session, sizeof session, "s%zu", i);
        sqlite3_bind_blob(b, 1, txid, 16, SQLITE_STATIC);
        sqlite3_bind_blob(b, 2, eid, 16, SQLITE_STATIC);
        sqlite3_bind_blob(b, 3, otpk, 65, SQLITE_STATIC);
        sqlite3_bind_blob(b, 4, iccid, 10, SQLITE_STATIC);
        sqlite3_bind_text(b, 5, types[i % 3], -1, SQLITE_STATIC);
        sqlite3_bind_text(b, 6, session, -1, SQLITE_STATIC);
        sqlite3_bind_text(b, 7, slot, -1, SQLITE_STATIC);
        sqlite3_bind_text(b, 8, serial, -1, SQLITE_STATIC);
        sqlite3_bind_text(b, 9, at, -1, SQLITE_STATIC);
        sqlite3_bind_blob(a, 1, txid, 16, SQLITE_STATIC);
        sqlite3_bind_text(a, 2, at, -1, SQLITE_STATIC);
        memcpy(pir + pir_at, txid, 16); /* the PIR names its BPP (verify checks the binding, not the signature) */
        sqlite3_bind_blob(a, 3, pir, (int)pir_len, SQLITE_TRANSIENT);
        int rc = sqlite3_step(b) == SQLITE_DONE && sqlite3_step(a) == SQLITE_DONE ? 0 : -1;
        sqlite3_reset(b);
        sqlite3_reset(a);
        for (int k = 0; k < 2 && rc == 0; k++) {
            sqlite3_bind_text(au, 1, k ? at : start, -1, SQLITE_STATIC);
            sqlite3_bind_blob(au, 2, txid, 16, SQLITE_STATIC);
            sqlite3_bind_blob(au, 3, eid, 16, SQLITE_STATIC);
            sqlite3_bind_text(au, 4, k ? "reserved" : "available", -1, SQLITE_STATIC);
            sqlite3_bind_text(au, 5, k ? "installed" : "reserved", -1, SQLITE_STATIC);
            sqlite3_bind_text(au, 6, session, -1, SQLITE_STATIC);
            sqlite3_bind_text(au, 7, slot, -1, SQLITE_STATIC);
            sqlite3_bind_text(au, 8, serial, -1, SQLITE_STATIC);
            sqlite3_bind_text(au, 9, k ? (i % 50 ? "PIR: installed" : "PIR: installed after retry") : "provision", -1,
                              SQLITE_STATIC);
            rc = sqlite3_step(au) == SQLITE_DONE ? 0 : -1;
            sqlite3_reset(au);
        }
        if (rc) {
            fprintf(stderr, "bench: row %zu: %s\n", i, sqlite3_errmsg(d));
            return -1;
        }
    }
    sqlite3_finalize(b);
    sqlite3_finalize(a);
    sqlite3_finalize(au);
    int rc = sqlite3_exec(d, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(d);
    free(eid);
    return rc == SQLITE_OK ? 0 : -1;
}

/* One day's report in a fresh process: its time and peak RSS, then sha256sum over what it wrote. */
static void phase(test_line *L, cert *dm_root, const char *dest, const char *day, size_t n, const char *label)
{
    int fds[2];
    double r[4] = {-1, -1, -1, -1}; /* export s, export peak KiB, verify s, verify peak KiB */
    fflush(stdout);
    if (pipe(fds) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        store *s;
        char why[512] = "", path[600];
        export_day_summary sum;
        export_verify_summary vs;
        double t0 = bench_now_s();
        ifpp_err e = store_open_readonly(L->db, &s, why, sizeof why);
        if (e == IFPP_OK)
            e = export_day_to_media(s, "bench", day, L->station_key, L->station, dm_root, dest, &sum, why, sizeof why);
        r[0] = bench_now_s() - t0;
        r[1] = (double)bench_peak_rss_kib();
        store_close(s);
        snprintf(path, sizeof path, "%s/%s", dest, sum.plr_name);
        bool unreadable;
        t0 = bench_now_s();
        if (e == IFPP_OK &&
            (e = export_verify_path(path, dm_root, NULL, time(NULL), &vs, &unreadable, why, sizeof why)) == IFPP_OK &&
            vs.records == n) {
            r[2] = bench_now_s() - t0;
            r[3] = (double)bench_peak_rss_kib();
        }
        if (e != IFPP_OK || sum.plr.results != n)
            fprintf(stderr, "bench_report: %s: %s: %s (%zu results)\n", label, err_name(e), why, sum.plr.results);
        if (write(fds[1], r, sizeof r) != (ssize_t)sizeof r)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], r, sizeof r) != (ssize_t)sizeof r)
        r[0] = -1;
    close(fds[0]);
    waitpid(pid, NULL, 0);
    char cmd[700], name[64], base[64];
    snprintf(cmd, sizeof cmd, "sha256sum %s/* > /dev/null", dest);
    double t0 = bench_now_s();
    int rc = system(cmd);
    double sha = bench_now_s() - t0;
    struct stat st;
    snprintf(cmd, sizeof cmd, "%s/ifpp-bench-%s-loading-report.der", dest, day);
    double mb = stat(cmd, &st) == 0 ? (double)st.st_size / 1e6 : 0;
    if (r[0] < 0 || rc != 0) {
        printf("  %-6s results: FAILED\n", label);
        return;
    }
    printf("  %-6s results: report --to %7.2f s, peak RSS %6.1f MB; sha256sum of the output %6.2f s (ratio %.1f);"
           " report %.0f MB; verify %7.2f s, peak RSS %6.1f MB\n",
           label, r[0], r[1] / 1024, sha, r[0] / sha, mb, r[2], r[3] / 1024);
    snprintf(name, sizeof name, "report_export_%s", label);
    snprintf(base, sizeof base, "sha256sum_of_output_%s", label);
    bench_line(name, r[0], "s", base, sha, (long)r[1]);
    if (r[2] >= 0) {
        snprintf(name, sizeof name, "report_verify_%s", label);
        bench_line(name, r[2], "s", base, sha, (long)r[3]);
    }
    snprintf(cmd, sizeof cmd, "rm -f %s/*", dest);
    if (system(cmd) != 0)
        printf("  could not empty %s\n", dest);
}

int main(int argc, char **argv)
{
    size_t max = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    static const struct {
        const char *day, *label;
        size_t n;
    } days[] = {{"2025-06-01", "10^4", 10000}, {"2025-06-02", "10^5", 100000}, {"2025-06-03", "10^6", 1000000}};
    char why[512] = "";
    char *dir = tu_mkdtemp("ifpp-bench-report");
    char dest[] = "/dev/shm/ifpp-bench-stick.XXXXXX";
    test_line L;
    cert *dm_root = NULL;
    memset(&L, 0, sizeof L);
    test_line_opts o = {.n_cards = 1, .n_otks = {1}, .profile_size = 256, .days = 2, .import_vault = true};
    if (!dir || !mkdtemp(dest) || test_line_make(&L, dir, &o, why, sizeof why) != 0 ||
        testpki_load(L.pki, "dm-root", &dm_root, NULL) != IFPP_OK || one_session(&L, why, sizeof why) != 0) {
        fprintf(stderr, "bench_report: setup failed: %s\n", why);
        return 1;
    }
    double t0 = bench_now_s();
    size_t total = 0;
    for (size_t i = 0; i < sizeof days / sizeof days[0]; i++)
        if (days[i].n <= max) {
            if (fill(L.db, L.eid[0], days[i].day, (uint8_t)(i + 1), days[i].n) != 0)
                return 1;
            total += days[i].n;
        }
    printf("report export (bench/bench_report.c): one store of %zu results over %s days (%.1f s to insert)\n", total,
           max >= 1000000 ? "three" : "the smaller", bench_now_s() - t0);
    for (size_t i = 0; i < sizeof days / sizeof days[0]; i++)
        if (days[i].n <= max)
            phase(&L, dm_root, dest, days[i].day, days[i].n, days[i].label);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dest);
    if (system(cmd) != 0)
        return 1;
    cert_free(dm_root);
    if (getenv("IFPP_BENCH_KEEP")) /* to look at the store afterwards */
        printf("store kept: %s\n", L.db);
    else
        tu_rmrf(dir);
    test_line_free(&L);
    free(dir);
    return 0;
}
