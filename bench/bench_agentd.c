/*
 * bench_agentd.c -- the daemon's slots (slots.c: a thread per slot, each with its own store connection)
 * provisioning virtual DUTs: DUTs per second for 1, 2, 4, 8, 16 and 32 slots, with cards that answer at
 * once and with cards that take 1 ms per APDU (a wrapper backend, "slowvirtual", that sleeps before each
 * answer, as a UART or USB fixture does), and the ratio to linear scaling (rate(n) / (n * rate(1))).
 * Each slot holds one eUICC with 16 One-time Keys and provisions it 16 times (additional_profile), so every
 * run does the same work per slot. The MES socket is left out: it only queues lines; what scales or not is
 * the slots, the cards and the store. Prints figures; asserts nothing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "fpa_virtual.h"
#include "slots.h"
#include "testline.h"
#include "testutil.h"

#define BENCH_ROUNDS 16

static long bench_apdu_us;

static ifpp_err slow_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    struct timespec ts = {0, bench_apdu_us * 1000};
    nanosleep(&ts, NULL);
    return fpa_virtual_ops.transmit(ctx, cmd, n, resp, cap, rn);
}

static fpa_ops slow_ops;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t done, pass, failed_slot_names;
    bool free_slot[32];
} bench_state;

static void bench_event(void *arg, const slot_event *ev)
{
    bench_state *b = arg;
    if (ev->kind != SLOT_EV_COMPLETED)
        return;
    pthread_mutex_lock(&b->mu);
    b->done++;
    b->pass += ev->verdict == STATION_PASS;
    if (ev->verdict != STATION_PASS && b->failed_slot_names++ == 0)
        fprintf(stderr, "bench_agentd: %s: %s: %s\n", ev->slot, station_verdict_name(ev->verdict), ev->message);
    b->free_slot[strtoul(ev->slot + 1, NULL, 10)] = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* DUTs per second with n slots; <0 on a set-up failure. */
static double bench_run(size_t n, bool slow)
{
    char why[512] = "", *dir = tu_mkdtemp("bench-agentd");
    test_line *L = calloc(1, sizeof *L);
    agent_config *c = calloc(1, sizeof *c);
    bench_state b = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    slots *sl = NULL;
    double rate = -1;
    test_line_opts o = {.n_cards = n, .profile_size = 1024, .import_vault = true};
    for (size_t i = 0; i < n; i++)
        o.n_otks[i] = BENCH_ROUNDS;
    if (!dir || !L || !c || test_line_make(L, dir, &o, why, sizeof why) != 0) {
        fprintf(stderr, "bench_agentd: %s\n", why);
        goto out;
    }
    config_defaults(c);
    snprintf(c->store_path, sizeof c->store_path, "%s", L->db);
    snprintf(c->pki_dir, sizeof c->pki_dir, "%s", L->pki);
    for (size_t i = 0; i < n; i++) {
        snprintf(c->slots[i].name, sizeof c->slots[i].name, "s%zu", i);
        snprintf(c->slots[i].spec, sizeof c->slots[i].spec, "%s:%s", slow ? "slowvirtual" : "virtual", L->card[i]);
    }
    c->n_slots = n;
    if (slots_start(c, bench_event, &b, &sl, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "bench_agentd: %s\n", why);
        goto out;
    }
    size_t submitted = 0, total = n * BENCH_ROUNDS, per_slot[32] = {0};
    double t0 = bench_now();
    pthread_mutex_lock(&b.mu);
    for (size_t i = 0; i < n; i++)
        b.free_slot[i] = true;
    while (b.done < total) {
        for (size_t i = 0; i < n; i++) {
            if (!b.free_slot[i] || per_slot[i] == BENCH_ROUNDS)
                continue;
            b.free_slot[i] = false;
            slot_job job = {.flags = STATION_ADDITIONAL_PROFILE};
            snprintf(job.id, sizeof job.id, "%zu", submitted);
            snprintf(job.serial, sizeof job.serial, "DUT-%06zu", submitted++);
            char chosen[32], name[32];
            snprintf(name, sizeof name, "s%zu", i);
            pthread_mutex_unlock(&b.mu);
            ifpp_err e = slots_submit(sl, name, &job, chosen, why, sizeof why);
            pthread_mutex_lock(&b.mu);
            if (e != IFPP_OK) {
                fprintf(stderr, "bench_agentd: submit: %s\n", why);
                b.done = total;
                break;
            }
            per_slot[i]++;
        }
        if (b.done < total)
            pthread_cond_wait(&b.cv, &b.mu);
    }
    pthread_mutex_unlock(&b.mu);
    double dt = bench_now() - t0;
    rate = b.pass == total ? (double)total / dt : -1;
    if (b.pass != total)
        fprintf(stderr, "bench_agentd: only %zu of %zu PASS\n", b.pass, total);
out:
    if (sl) {
        slots_drain(sl, 60000);
        slots_free(sl);
    }
    test_line_free(L);
    free(L);
    free(c);
    if (dir) {
        tu_rmrf(dir);
        free(dir);
    }
    return rate;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {1, 2, 4, 8, 16, 32};
    size_t max = argc > 1 ? strtoul(argv[1], NULL, 10) : 32;
    slow_ops = fpa_virtual_ops;
    slow_ops.name = "slowvirtual";
    slow_ops.transmit = slow_transmit;
    if (fpa_virtual_register() != IFPP_OK || fpa_register(&slow_ops) != IFPP_OK)
        return 1;
    printf("bench_agentd: %d DUTs per slot (one eUICC, additional profiles), 1 KiB profiles\n", BENCH_ROUNDS);
    for (int slow = 1; slow >= 0; slow--) {
        bench_apdu_us = slow ? 1000 : 0;
        double one = 0;
        printf("\ncards %s\n%6s %10s %12s\n", slow ? "taking 1 ms per APDU" : "answering at once", "slots", "DUTs/s",
               "vs linear");
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0] && sizes[k] <= max; k++) {
            double r = bench_run(sizes[k], slow);
            if (r < 0)
                return 1;
            if (sizes[k] == 1)
                one = r;
            printf("%6zu %10.1f %12.2f\n", sizes[k], r, r / ((double)sizes[k] * one));
            fflush(stdout);
        }
    }
    return 0;
}
