/*
 * bench_sync.c -- what one durable write costs on this machine's disk: the floor under every figure
 * that waits for a commit (a state move, a DUT, an import). 4 KiB rewritten in place and
 * fdatasync'd, 200 times, in a fresh file in DIR (default: the current directory, the build tree's
 * disk); prints the median and the 90th percentile and their BENCH lines. Asserts nothing.
 *
 *   bench_sync [DIR]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"

#define SYNCS 200

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    char path[4096];
    static char block[4096];
    static double ms[SYNCS];
    snprintf(path, sizeof path, "%s/.ifpp-bench-sync.XXXXXX", argc > 1 ? argv[1] : ".");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("bench_sync");
        return 1;
    }
    unlink(path);
    memset(block, 0xA5, sizeof block);
    for (int i = 0; i < SYNCS; i++) {
        double t0 = bench_now_s();
        block[0] = (char)i;
        if (pwrite(fd, block, sizeof block, 0) != (ssize_t)sizeof block || fdatasync(fd) != 0) {
            perror("bench_sync");
            close(fd);
            return 1;
        }
        ms[i] = (bench_now_s() - t0) * 1e3;
    }
    close(fd);
    qsort(ms, SYNCS, sizeof ms[0], cmp_double);
    printf("fdatasync of 4 KiB rewritten in place, %d times in %s: median %.3f ms, 90th percentile %.3f ms\n", SYNCS,
           argc > 1 ? argv[1] : ".", ms[SYNCS / 2], ms[SYNCS * 9 / 10]);
    bench_line("fdatasync_4k_median", ms[SYNCS / 2], "ms", NULL, 0, -1);
    bench_line("fdatasync_4k_p90", ms[SYNCS * 9 / 10], "ms", NULL, 0, -1);
    return 0;
}
