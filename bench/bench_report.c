/*
 * bench_report.c -- can a day of 1,000,000 DUT results go onto a stick in bounded time and memory?
 *
 * Builds a simulated line's store (tests/testline.h) and adds N results of one day straight into
 * its tables (installed, each with a PIR-sized blob and two audit entries, as a session leaves
 * them), then, each in a fresh forked process that reports its own peak resident set (VmHWM):
 * (1) the CSV and HTML alone (report_write_tables: streamed), (2) the whole `report --to` (the
 * signed Profile Loading Report too). Beside each, the time `sha256sum` takes over the same output,
 * the floor of reading it once. Issue 15's goal: under 30 s and 100 MB. A benchmark: it prints
 * figures and asserts nothing.
 *
 *   bench_report [N]   (default 1000000; the destination is a fresh directory in /dev/shm, a mount)
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

#include "export.h"
#include "media.h"
#include "report_html.h"
#include "testline.h"
#include "testutil.h"

#define DAY "2026-11-25"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long vm_hwm_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

/* N installed results of DAY for the line's eUICC, with audit entries, in one transaction. */
static int fill(const char *db, const char *eid_hex, size_t n)
{
    sqlite3 *d;
    sqlite3_stmt *b, *a;
    size_t len;
    uint8_t *eid = tu_hex(eid_hex, &len);
    if (!eid || sqlite3_open(db, &d) != SQLITE_OK)
        return -1;
    sqlite3_exec(d, "PRAGMA synchronous=OFF; BEGIN", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(d, "INSERT INTO bpp (txid, eid, otpk, iccid, profile_type, bpp_hash, bpp, vault_id, state,"
                              " session, slot, dut_serial, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, zeroblob(32),"
                              " zeroblob(1), 'bench', 'installed', ?6, ?7, ?8, ?9)", -1, &b, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d, "INSERT INTO pir (txid, pir, success, received_at)"
                              " VALUES (?1, X'BF37760474' || randomblob(116), 1, ?2)", -1, &a, NULL) != SQLITE_OK) {
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
        for (int k = 2; k < 10; k++)
            iccid[k] = (uint8_t)(((i >> (k * 3)) % 10) << 4 | (i % 10));
        unsigned secs = (unsigned)(i * 86399 / (n ? n : 1)), dur = 20 + (unsigned)(i % 70);
        unsigned s0 = secs > dur ? secs - dur : 0;
        snprintf(at, sizeof at, DAY "T%02u:%02u:%02uZ", secs / 3600, secs / 60 % 60, secs % 60);
        snprintf(start, sizeof start, DAY "T%02u:%02u:%02uZ", s0 / 3600, s0 / 60 % 60, s0 % 60);
        snprintf(serial, sizeof serial, "SN%010zu", i);
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

/* Runs one phase in a fresh process: 1 = CSV and HTML, 2 = everything `report --to` writes. */
static void phase(int which, test_line *L, cert *dm_root, const char *dest)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        store *s;
        char why[512] = "";
        double t0 = now_s();
        ifpp_err e = store_open_readonly(L->db, &s, why, sizeof why);
        size_t rows = 0;
        if (e == IFPP_OK && which == 1) {
            int dirfd = -1;
            report_tables_summary sum;
            if ((e = media_open_dest(dest, L->db, &dirfd, why, sizeof why)) == IFPP_OK)
                e = report_write_tables(s, "bench", DAY, dirfd, "bench.csv", "bench.html", &sum, why, sizeof why);
            rows = sum.rows;
            close(dirfd);
        } else if (e == IFPP_OK) {
            export_day_summary sum;
            e = export_day_to_media(s, "bench", DAY, L->station_key, L->station, dm_root, dest, &sum, why, sizeof why);
            rows = sum.plr.results;
        }
        double t = now_s() - t0;
        store_close(s);
        if (e != IFPP_OK) {
            printf("  phase %d failed: %s: %s\n", which, err_name(e), why);
            fflush(stdout);
            _exit(1);
        }
        printf("  %-40s %8zu records  %7.2f s  peak RSS %6.1f MB\n",
               which == 1 ? "CSV + HTML (report_write_tables)" : "report --to (signed report + CSV + HTML)", rows, t,
               (double)vm_hwm_kb() / 1024.0);
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "sha256sum %s/* > /dev/null", dest);
    double t0 = now_s();
    if (system(cmd) != 0)
        printf("  sha256sum failed\n");
    double t = now_s() - t0;
    snprintf(cmd, sizeof cmd, "du -sh --apparent-size %s | cut -f1", dest);
    printf("  sha256sum of the same output: %.2f s, output size: ", t);
    fflush(stdout);
    if (system(cmd) != 0)
        printf("?\n");
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    char why[512] = "";
    char *dir = tu_mkdtemp("ifpp-bench-report");
    char dest[] = "/dev/shm/ifpp-bench-stick.XXXXXX";
    test_line L;
    cert *dm_root = NULL;
    memset(&L, 0, sizeof L);
    test_line_opts o = {.n_cards = 1, .n_otks = {1}, .profile_size = 256, .days = 2};
    if (!dir || !mkdtemp(dest) || test_line_make(&L, dir, &o, why, sizeof why) != 0 ||
        testpki_load(L.pki, "dm-root", &dm_root, NULL) != IFPP_OK) {
        fprintf(stderr, "bench: setup failed: %s\n", why);
        return 1;
    }
    double t0 = now_s();
    if (fill(L.db, L.eid[0], n) != 0)
        return 1;
    printf("bench_report: %zu results of one day in the store (%.1f s to insert)\n", n, now_s() - t0);
    phase(1, &L, dm_root, dest);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -f %s/*", dest);
    if (system(cmd) != 0)
        return 1;
    phase(2, &L, dm_root, dest);
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
