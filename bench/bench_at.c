/*
 * bench_at.c -- the at backend against the physical floor of its serial line.
 *
 * A modem's AT port moves every APDU as hex text (twice its bytes) plus the command's and the
 * reply's words, 10 bits a byte on the UART. The fake modem (tests/sim/fake_modem.c --baud)
 * paces its line as a real UART at that rate, both ways, and logs the bytes of each command and
 * of all that answered it. For each BPP this prints: the APDU bytes, the bytes on the wire, the
 * floor (wire bits / baud: the time no station can beat on that line), the station's measured
 * time for the whole session on the paced modem, and their ratio (the goal: within 1.05 at
 * 115200 baud). The card's own work (the software eUICC's signatures and decryption) is inside
 * the station's time and outside the floor; it is also printed alone, from a run at no pacing.
 *
 *   bench_at [BAUD [PROFILE_BYTES [RUNS]]]    (defaults 115200, 9000, 3)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "fake_modem_proc.h"
#include "session.h"
#include "station.h"
#include "testline.h"
#include "testutil.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct {
    unsigned long apdu_bytes, wire_bytes, apdus;
    double seconds;
} bench_run;

/* The modem's log: APDU bytes, and command plus reply bytes on the wire. */
static void read_log(const char *path, bench_run *b)
{
    FILE *f = fopen(path, "r");
    char line[128];
    unsigned long x, y;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "apdu %lu %lu", &x, &y) == 2) {
            b->apdus++;
            b->apdu_bytes += y;
        } else if (sscanf(line, "cmd %lu %lu", &x, &y) == 2) {
            b->wire_bytes += x + y;
        }
    }
    if (f)
        fclose(f);
}

/* One provisioning session on a fresh modem paced at baud (0: unpaced; the slot still says 115200). */
static int one_session(test_line *L, const char *log, long baud, bench_run *b)
{
    char baud_s[16], spec[256], why[512] = "";
    snprintf(baud_s, sizeof baud_s, "%ld", baud);
    const char *args[] = {"--log", log, "--baud", baud_s, NULL};
    fake_modem_proc m;
    remove(log);
    if (fake_modem_start(&m, IFPP_FAKE_MODEM_DEFAULT, L->card[0], args) != 0)
        return -1;
    snprintf(spec, sizeof spec, "at:%s,baud=%ld", m.port, baud ? baud : 115200);
    station_slot_options so;
    station_slot sl;
    store *s;
    session_result r;
    memset(b, 0, sizeof *b);
    if (station_slot_parse(spec, &so, why, sizeof why) != IFPP_OK || store_open(L->db, &s, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "bench_at: %s\n", why);
        fake_modem_stop(&m);
        return -1;
    }
    ifpp_err e = station_slot_open(&so, &sl, why, sizeof why);
    if (e == IFPP_OK) {
        session_ctx c = {.st = s, .slot = &sl.fpa, .slot_name = so.spec, .dm_fpa_key = L->dm_fpa_key,
                         .dm_fpa_cert = L->dm_fpa, .additional_profile = true};
        double t0 = now_s();
        e = session_provision(&c, "DUT-BENCH", NULL, &r);
        b->seconds = now_s() - t0;
        station_slot_close(&sl);
        if (e != IFPP_OK)
            fprintf(stderr, "bench_at: %s\n", r.message);
    } else {
        fprintf(stderr, "bench_at: %s\n", why);
    }
    store_close(s);
    fake_modem_stop(&m);
    read_log(log, b);
    return e == IFPP_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    long baud = argc > 1 ? atol(argv[1]) : 115200, profile = argc > 2 ? atol(argv[2]) : 9000;
    int runs = argc > 3 ? atoi(argv[3]) : 3;
    if (baud < 1200 || profile < 100 || runs < 1 || runs > 8) {
        fprintf(stderr, "usage: bench_at [BAUD [PROFILE_BYTES [RUNS 1..8]]]\n");
        return 2;
    }
    char why[512] = "";
    test_line L;
    char *dir = tu_mkdtemp("ifpp-bench-at");
    char *log = dir ? tu_path(dir, "modem.log") : NULL;
    test_line_opts o = {.n_cards = 1, .n_otks = {(size_t)runs + 2}, .profile_size = (size_t)profile, .import_vault = true};
    if (!log || test_line_make(&L, dir, &o, why, sizeof why) != 0) {
        fprintf(stderr, "bench_at: %s\n", why);
        return 1;
    }
    bench_run card_only;
    int rc = one_session(&L, log, 0, &card_only);
    printf("bench_at: %ld baud, %ld-byte profile; unpaced session (station + card work alone): %.3f s\n", baud,
           profile, card_only.seconds);
    printf("%-4s %6s %10s %10s %9s %9s %7s\n", "run", "APDUs", "APDU B", "wire B", "floor s", "station s", "ratio");
    double sum_s = 0, sum_floor = 0;
    unsigned long apdus = 0;
    int done = 0;
    for (int i = 0; rc == 0 && i < runs; i++) {
        bench_run b;
        if ((rc = one_session(&L, log, baud, &b)) != 0)
            break;
        double floor_s = (double)b.wire_bytes * 10.0 / (double)baud;
        printf("%-4d %6lu %10lu %10lu %9.3f %9.3f %7.3f\n", i + 1, b.apdus, b.apdu_bytes, b.wire_bytes, floor_s,
               b.seconds, b.seconds / floor_s);
        sum_s += b.seconds;
        sum_floor += floor_s;
        apdus = b.apdus;
        done++;
    }
    if (done) { /* the mean run against the line's physical floor (10 bits per byte at this rate) */
        char name[64], base[64];
        snprintf(name, sizeof name, "dut_station_at_%ldbaud", baud);
        snprintf(base, sizeof base, "uart_floor_%ldbaud", baud);
        bench_line(name, sum_s / done, "s", base, sum_floor / done, bench_children_peak_rss_kib() > bench_peak_rss_kib()
                                                                          ? bench_children_peak_rss_kib()
                                                                          : bench_peak_rss_kib());
        snprintf(name, sizeof name, "dut_apdus_at_%ldbaud", baud);
        bench_line(name, (double)apdus, "APDUs", NULL, 0, -1);
    }
    tu_rmrf(dir);
    test_line_free(&L);
    free(dir);
    free(log);
    return rc == 0 ? 0 : 1;
}
