/* testutil.c -- see testutil.h. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hex.h"

uint8_t *tu_hex(const char *hex, size_t *len)
{
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *buf = malloc(cap);
    size_t n = 0;
    if (!buf || hex_decode(hex, buf, cap, &n) != IFPP_OK) {
        fprintf(stderr, "testutil: bad hex vector: %.40s\n", hex);
        abort();
    }
    if (len)
        *len = n;
    return buf;
}

char *tu_mkdtemp(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix) < 0)
        return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int tu_rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

int tu_rmrf(const char *path)
{
    return nftw(path, tu_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_path(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

int tu_write_file(const char *path, const uint8_t *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}

uint8_t *tu_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (len < cap)
            break;
        uint8_t *nb = realloc(buf, cap *= 2);
        if (!nb) {
            free(buf);
            buf = NULL;
        } else {
            buf = nb;
        }
    }
    fclose(f);
    if (buf && n)
        *n = len;
    return buf;
}

int tu_run(char *const argv[], char *out, size_t cap)
{
    int pipefd[2] = {-1, -1};
    if (out && pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        if (out)
            dup2(pipefd[1], 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    size_t len = 0;
    if (out) {
        close(pipefd[1]);
        for (;;) {
            char sink[512];
            char *dst = len + 1 < cap ? out + len : sink;
            size_t room = len + 1 < cap ? cap - 1 - len : sizeof sink;
            ssize_t r = read(pipefd[0], dst, room);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            if (dst != sink)
                len += (size_t)r;
        }
        close(pipefd[0]);
        out[len] = '\0';
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

const char *tu_tool(const char *env, const char *name)
{
    static char path[4096];
    const char *v = getenv(env);
    if (v && *v)
        return v;
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0)
        return name;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (!slash || (size_t)(slash - path) + 1 + strlen(name) >= sizeof path)
        return name;
    strcpy(slash + 1, name);
    if (access(path, X_OK) == 0)
        return path;
    /* the station's own programs are built in agent/, beside tests/ */
    static const char agent[] = "../agent/";
    if ((size_t)(slash - path) + 1 + sizeof agent + strlen(name) >= sizeof path)
        return name;
    memmove(slash + 1 + sizeof agent - 1, slash + 1, strlen(name) + 1);
    memcpy(slash + 1, agent, sizeof agent - 1);
    return path;
}

int tu_hex_equal(const uint8_t *got, size_t n, const char *want_hex)
{
    size_t wn;
    uint8_t *want = tu_hex(want_hex, &wn);
    int same = wn == n && memcmp(got, want, n) == 0;
    if (!same) {
        fprintf(stderr, "got:  ");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "%02x", got[i]);
        fprintf(stderr, "\nwant: %s\n", want_hex);
    }
    free(want);
    return same;
}

int tu_sh(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1; /* a cut command line would run something else */
    char *argv[] = {"sh", "-c", cmd, NULL};
    return tu_run(argv, out, cap);
}
