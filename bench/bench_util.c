/*
 * bench_util.c -- the clock, peak RSS and BENCH line every bench prints; see bench_util.h. The
 * lines are the contract with bench/run.sh, so they are printed in one place.
 */
#define _GNU_SOURCE
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

double bench_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

long bench_peak_rss_kib(void)
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

long bench_children_peak_rss_kib(void)
{
    struct rusage u;
    return getrusage(RUSAGE_CHILDREN, &u) == 0 ? u.ru_maxrss : -1; /* Linux: KiB */
}

void bench_line(const char *name, double value, const char *unit, const char *base_name, double base_value,
                long rss_kib)
{
    char rss[32] = "-";
    if (rss_kib >= 0)
        snprintf(rss, sizeof rss, "%ld", rss_kib);
    if (base_name && base_value > 0)
        printf("BENCH\t%s\t%.6g\t%s\t%s\t%.6g\t%.3f\t%s\n", name, value, unit, base_name, base_value,
               value / base_value, rss);
    else
        printf("BENCH\t%s\t%.6g\t%s\t-\t-\t-\t%s\n", name, value, unit, rss);
    fflush(stdout);
}
