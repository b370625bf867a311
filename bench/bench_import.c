/*
 * bench_import.c -- does importing a BPP vault need memory in proportion to the vault?
 *
 * Builds two vaults -- a small one and one ten times larger -- and imports each in a fresh
 * process (fork + exec of this program), which reports its own peak resident set size (VmHWM);
 * a control run imports the large vault while also holding it whole in memory, to show what a
 * non-streaming reader would cost and that the measure sees it. Prints both figures, the ratio of the vault sizes and the ratio of
 * the peaks (streaming: the second ratio stays near 1 while the first is about 10), and the
 * import throughput. A benchmark, not a test: it prints figures and asserts nothing.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "import.h"
#include "testline.h"

static char dir[256];

/* A fresh store with the package imported, and a vault of n BPPs of `size` bytes for it, in dir/tag. */
static int make_vault(const char *tag, size_t n, size_t size, char *vault_path, char *db_path, size_t cap)
{
    char sub[300], why[512] = "";
    test_line L;
    memset(&L, 0, sizeof L);
    test_line_opts o = {.n_cards = 1, .n_otks = {n}, .profile_size = size, .days = 2};
    snprintf(sub, sizeof sub, "%s/%s", dir, tag);
    if (mkdir(sub, 0700) != 0 || test_line_make(&L, sub, &o, why, sizeof why) != 0) {
        fprintf(stderr, "bench: setup failed: %s\n", why);
        test_line_free(&L);
        return -1;
    }
    snprintf(db_path, cap, "%s", L.db);
    snprintf(vault_path, cap, "%s", L.vault_path);
    test_line_free(&L);
    return 0;
}

/* Imports in a child; returns the child's peak RSS in KiB and the wall time in seconds. */
static long import_in_child(const char *tag, const char *vault_path, const char *db_path, bool control, double *secs)
{
    struct timespec t0, t1;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        /* a fresh process image: its peak RSS is the import's alone, not the parent's heap */
        close(fds[0]);
        if (control)
            setenv("BENCH_SLURP", "1", 1);
        char fd_text[16];
        snprintf(fd_text, sizeof fd_text, "%d", fds[1]);
        execl("/proc/self/exe", "bench_import", "--child", tag, vault_path, db_path, fd_text, dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    long kib = -1;
    if (read(fds[0], &kib, sizeof kib) != (ssize_t)sizeof kib)
        kib = -1;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? kib : -1;
}

/* The child: import one vault and report its own peak RSS through the pipe. */
static int child(char **argv)
{
    char ci_path[600], why[512] = "";
    snprintf(ci_path, sizeof ci_path, "%s/%s/pki/ci.cert.pem", argv[6], argv[2]); /* as make_vault made it */
    store *s;
    cert *ci;
    import_summary sum;
    if (store_open(argv[4], &s, why, sizeof why) || cert_load_pem(ci_path, &ci) ||
        import_vault_file(s, argv[3], ci, &sum, why, sizeof why)) {
        fprintf(stderr, "bench: import failed: %s\n", why);
        return 1;
    }
    if (getenv("BENCH_SLURP")) { /* the control: also hold the whole vault in memory, as a non-streaming reader would */
        uint8_t *all;
        size_t n;
        if (fs_read_all(argv[3], 1u << 30, &all, &n) == IFPP_OK)
            memset(all, 1, n);
    }
    /* VmHWM, not ru_maxrss: the latter carries the parent's peak across fork+exec */
    long kib = -1;
    FILE *st = fopen("/proc/self/status", "r");
    char line[256];
    while (st && fgets(line, sizeof line, st))
        if (!strncmp(line, "VmHWM:", 6))
            kib = strtol(line + 6, NULL, 10);
    if (st)
        fclose(st);
    return write(atoi(argv[5]), &kib, sizeof kib) == (ssize_t)sizeof kib ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 7 && !strcmp(argv[1], "--child"))
        return child(argv);
    snprintf(dir, sizeof dir, "/tmp/ifpp-bench.%d", (int)getpid());
    mkdir(dir, 0700);
    const size_t small_n = 6, large_n = 60, size = 64 * 1024; /* 60: the EUM's per-card key limit is 64 */
    char sv[600], sd[600], lv[600], ld[600];
    if (make_vault("small", small_n, size, sv, sd, sizeof sv) || make_vault("large", large_n, size, lv, ld, sizeof lv))
        return 1;
    struct stat a, b;
    stat(sv, &a);
    stat(lv, &b);
    double ts, tl;
    double tc;
    long rs = import_in_child("small", sv, sd, false, &ts);
    long rl = import_in_child("large", lv, ld, false, &tl);
    char cd[700];
    snprintf(cd, sizeof cd, "%s/control.db", dir); /* a third store: the control imports into its own */
    char cmd0[1500];
    snprintf(cmd0, sizeof cmd0, "cp %s %s", ld, cd);
    long rc = -1;
    if (system(cmd0) == 0)
        rc = import_in_child("large", lv, cd, true, &tc);
    printf("vault import, 64 KiB profiles, streamed (bench/bench_import.c)\n");
    printf("  baseline: %3zu BPPs, %8lld bytes: peak RSS %6ld KiB, %.3f s\n", small_n, (long long)a.st_size, rs, ts);
    printf("  measured: %3zu BPPs, %8lld bytes: peak RSS %6ld KiB, %.3f s\n", large_n, (long long)b.st_size, rl, tl);
    printf("  control:  the same large import holding the whole vault in memory: peak RSS %6ld KiB\n", rc);
    printf("  vault size ratio %.1f, peak RSS ratio %.2f (control %.2f), throughput %.1f MB/s\n",
           (double)b.st_size / (double)a.st_size, (double)rl / (double)rs, (double)rc / (double)rs,
           (double)b.st_size / tl / 1e6);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 && rs > 0 && rl > 0 ? 0 : 1;
}
