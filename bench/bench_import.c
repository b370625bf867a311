/*
 * bench_import.c -- vault import against `sha256sum` of the same file, and its memory, by vault size.
 *
 * Issue 16's goal: importing a vault, every check included, within 1.25 times what `sha256sum` needs
 * for the same file, with a peak RSS under 64 MB that does not grow with the vault. For each size
 * (1,000 and 10,000 BPPs of about 20 KB; 100,000 -- about 2 GB -- with BENCH_IMPORT_100K=1 or the
 * argument --100k) it makes a vault fast (tests/vaultgen.h), runs `sha256sum` on it, writes and syncs as
 * many bytes beside the store (the disk's floor: the import must write its BPPs durably), then imports it
 * into a fresh copy of the store in a fresh process (fork + exec of this program, which reports its own
 * VmHWM); a control imports the 10,000-BPP vault while also holding it whole in memory, to show that the
 * measure sees a reader that is not streamed. Prints a table and one BENCH line per figure (BRIEF):
 *     BENCH <name> <value> <unit> <baseline-name> <baseline-value> <ratio> <peak-rss-KiB>
 * A benchmark, not a test: it asserts nothing.
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
#include "testutil.h"
#include "vaultgen.h"

#define BENCH_PROFILE 20000 /* bytes of profile per BPP: about 20 KB a BPP, 2 GB for 100,000 */

static char dir[256];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A line in dir/tag with n One-time Keys in its store and a vault of n BPPs for them at *vault. */
static int make_vault(const char *tag, size_t n, char *vault, char *db, size_t cap)
{
    char sub[300], why[512] = "";
    test_line L;
    memset(&L, 0, sizeof L);
    test_line_opts o = {.n_cards = 1, .n_otks = {2}, .profile_size = 1024, .days = 2};
    snprintf(sub, sizeof sub, "%s/%s", dir, tag);
    snprintf(vault, cap, "%s/bulk.der", sub);
    int rc = mkdir(sub, 0700) != 0 || test_line_make(&L, sub, &o, why, sizeof why) != 0 ||
             vaultgen_make(&L, n, BENCH_PROFILE, vault, why, sizeof why) != 0;
    if (rc)
        fprintf(stderr, "bench: setup of %s failed: %s\n", tag, why);
    else
        snprintf(db, cap, "%s", L.db);
    test_line_free(&L);
    return rc ? -1 : 0;
}

/* Runs argv[0] and returns its wall time (-1 if it failed). */
static double time_command(char *const argv[])
{
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? now_s() - t0 : -1;
}

/*
 * The disk's floor: writing as many bytes as the vault holds beside the store, 1 MiB at a time, and
 * fdatasync (what the import must do with its BPPs at least). Seconds, -1 on failure.
 */
static double write_sync_time(const char *near, uint64_t bytes)
{
    char path[700];
    snprintf(path, sizeof path, "%s.floor", near);
    static uint8_t block[1 << 20];
    memset(block, 0x5A, sizeof block);
    double t0 = now_s();
    FILE *f = fopen(path, "wb");
    bool ok = f != NULL;
    for (uint64_t done = 0; ok && done < bytes; done += sizeof block) {
        size_t n = bytes - done < sizeof block ? (size_t)(bytes - done) : sizeof block;
        ok = fwrite(block, 1, n, f) == n;
    }
    ok = ok && fflush(f) == 0 && fdatasync(fileno(f)) == 0;
    if (f)
        fclose(f);
    double t = now_s() - t0;
    unlink(path);
    return ok ? t : -1;
}

/* Imports in a child (a copy of the store: the original stays without the vault); peak RSS in KiB, *secs. */
static long import_in_child(const char *tag, const char *vault, const char *db, bool control, double *secs)
{
    char copy[700], cmd[4096];
    snprintf(copy, sizeof copy, "%s/%s/import%s.db", dir, tag, control ? "-control" : "");
    snprintf(cmd, sizeof cmd, "rm -f %s %s.bpp && cp %s %s", copy, copy, db, copy);
    if (system(cmd) != 0)
        return -1;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        /* a fresh process image: its peak RSS is the import's alone, not the parent's heap */
        close(fds[0]);
        if (control)
            setenv("BENCH_SLURP", "1", 1);
        char fd_text[16];
        snprintf(fd_text, sizeof fd_text, "%d", fds[1]);
        execl("/proc/self/exe", "bench_import", "--child", tag, vault, copy, fd_text, dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    long kib = -1;
    if (read(fds[0], &kib, sizeof kib) != (ssize_t)sizeof kib)
        kib = -1;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    *secs = now_s() - t0;
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
        if (fs_read_all(argv[3], (size_t)4 << 30, &all, &n) == IFPP_OK)
            memset(all, 1, n);
    }
    store_close(s);
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
    bool big = (argc > 1 && !strcmp(argv[1], "--100k")) || getenv("BENCH_IMPORT_100K");
    const size_t sizes[] = {1000, 10000, 100000};
    size_t n_sizes = big ? 3 : 2;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/ifpp-bench-import.%d", base, (int)getpid());
    if (mkdir(dir, 0700) != 0)
        return 1;
    setvbuf(stdout, NULL, _IOLBF, 0); /* lines out before every fork */
    printf("vault import vs sha256sum of the same file (bench/bench_import.c; 100,000 BPPs: --100k)\n");
    printf("  %8s %9s %9s %11s %9s %8s %7s %7s %12s\n", "BPPs", "MB", "sha256 s", "write+sync s", "import s", "MB/s",
           "/sha256", "/write", "peak RSS KiB");
    int rc = 0;
    long rss_10k = -1;
    for (size_t i = 0; i < n_sizes && rc == 0; i++) {
        char tag[32], vault[600], db[600];
        snprintf(tag, sizeof tag, "n%zu", sizes[i]);
        if (make_vault(tag, sizes[i], vault, db, sizeof vault) != 0) {
            rc = 1;
            break;
        }
        struct stat st;
        stat(vault, &st);
        char *sha_argv[] = {"sha256sum", vault, NULL};
        double sha = time_command(sha_argv), secs = -1;
        double floor = write_sync_time(db, (uint64_t)st.st_size);
        long rss = import_in_child(tag, vault, db, false, &secs);
        if (sizes[i] == 10000)
            rss_10k = rss;
        double mb = (double)st.st_size / 1e6;
        printf("  %8zu %9.1f %9.3f %11.3f %9.3f %8.1f %7.2f %7.2f %12ld\n", sizes[i], mb, sha, floor, secs, mb / secs,
               secs / sha, secs / floor, rss);
        printf("BENCH\timport_%zu_bpps\t%.3f\ts\tsha256sum\t%.3f\t%.2f\t%ld\n", sizes[i], secs, sha, secs / sha, rss);
        printf("BENCH\timport_%zu_bpps_vs_disk\t%.3f\ts\twrite+fdatasync\t%.3f\t%.2f\t%ld\n", sizes[i], secs, floor,
               secs / floor, rss);
        printf("BENCH\timport_%zu_bpps_throughput\t%.1f\tMB/s\tsha256sum\t%.1f\t%.2f\t%ld\n", sizes[i], mb / secs,
               mb / sha, sha / secs, rss);
        if (rss < 0 || sha < 0)
            rc = 1;
        if (sizes[i] == 10000) { /* the control: the same import holding the vault whole */
            double tc;
            long rc_kib = import_in_child(tag, vault, db, true, &tc);
            printf("  control: 10000 BPPs imported while holding the vault whole: peak RSS %ld KiB (streamed: %ld)\n",
                   rc_kib, rss_10k);
        }
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf %s/%s", dir, tag);
        if (!getenv("BENCH_IMPORT_KEEP") && system(cmd) != 0) /* kept: to profile an import by hand */
            rc = 1;
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (getenv("BENCH_IMPORT_KEEP")) {
        printf("kept in %s\n", dir);
        return rc;
    }
    return system(cmd) == 0 ? rc : 1;
}
