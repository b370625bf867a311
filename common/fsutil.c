/* fsutil.c -- atomic file replacement and bounded whole-file reads; see fsutil.h. */
#define _GNU_SOURCE
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static ifpp_err fs_write_fd(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return IFPP_E_IO;
        p += w;
        n -= (size_t)w;
    }
    return IFPP_OK;
}

/* fsyncs the directory holding path, so that a rename into it is durable. */
static ifpp_err fs_sync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return IFPP_E_NOMEM;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (dfd < 0)
        return IFPP_E_IO;
    ifpp_err e = fsync(dfd) == 0 ? IFPP_OK : IFPP_E_IO;
    close(dfd);
    return e;
}

static ifpp_err fs_write_temp(const char *path, const void *data, size_t n, mode_t mode, char **tmp_out)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
        return IFPP_E_NOMEM;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        free(tmp);
        return IFPP_E_IO;
    }
    ifpp_err e = fchmod(fd, mode) == 0 ? IFPP_OK : IFPP_E_IO;
    if (e == IFPP_OK)
        e = fs_write_fd(fd, data, n);
    if (e == IFPP_OK && fsync(fd) != 0)
        e = IFPP_E_IO;
    if (close(fd) != 0 && e == IFPP_OK)
        e = IFPP_E_IO;
    if (e != IFPP_OK) {
        unlink(tmp);
        free(tmp);
        return e;
    }
    *tmp_out = tmp;
    return IFPP_OK;
}

/* Temp file, then (unless a torn write is being simulated) rename and directory sync. */
static ifpp_err fs_write(const char *path, const void *data, size_t n, mode_t mode, bool torn)
{
    char *tmp;
    if (!path || (!data && n))
        return IFPP_E_ARG;
    ifpp_err e = fs_write_temp(path, data, n, mode, &tmp);
    if (e != IFPP_OK)
        return e;
    if (torn) { /* the power went: the temp file stays behind, as on disk; the target is untouched */
        free(tmp);
        return IFPP_OK;
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        free(tmp);
        return IFPP_E_IO;
    }
    free(tmp);
    return fs_sync_parent(path);
}

ifpp_err fs_write_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
    return fs_write(path, data, n, mode, false);
}

ifpp_err fs_write_atomic_torn(const char *path, const void *data, size_t n, mode_t mode)
{
    return fs_write(path, data, n, mode, true);
}

/* What a non-regular file is, for the message. */
static const char *fs_kind(mode_t m)
{
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

/* Opens path as fs_open_regular promises; *st gets its fstat. */
static ifpp_err fs_open_checked(const char *path, int *fd_out, struct stat *st, char *why, size_t why_len)
{
    if (!path || !fd_out) {
        err_why(why, why_len, "no file named");
        return IFPP_E_ARG;
    }
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int err = errno;
        struct stat lst;
        if (err == ELOOP && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
            err_why(why, why_len, "%s: is a symbolic link (only a regular file is read)", path);
        else
            err_why(why, why_len, "%s: %s", path, strerror(err));
        return IFPP_E_IO;
    }
    if (fstat(fd, st) != 0) {
        err_why(why, why_len, "%s: %s", path, strerror(errno));
        close(fd);
        return IFPP_E_IO;
    }
    if (!S_ISREG(st->st_mode)) {
        err_why(why, why_len, "%s: is %s (only a regular file is read)", path, fs_kind(st->st_mode));
        close(fd);
        return IFPP_E_IO;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        err_why(why, why_len, "%s: %s", path, strerror(errno));
        close(fd);
        return IFPP_E_IO;
    }
    *fd_out = fd;
    return IFPP_OK;
}

ifpp_err fs_open_regular(const char *path, int *fd, size_t *size, char *why, size_t why_len)
{
    struct stat st;
    ifpp_err e = fs_open_checked(path, fd, &st, why, why_len);
    if (e == IFPP_OK && size)
        *size = (size_t)st.st_size;
    return e;
}

ifpp_err fs_fopen_regular(const char *path, FILE **f, size_t *size, char *why, size_t why_len)
{
    int fd;
    if (!f)
        return IFPP_E_ARG;
    ifpp_err e = fs_open_regular(path, &fd, size, why, why_len);
    if (e != IFPP_OK)
        return e;
    if (!(*f = fdopen(fd, "rb"))) {
        close(fd);
        err_why(why, why_len, "%s: out of memory", path);
        return IFPP_E_NOMEM;
    }
    return IFPP_OK;
}

/* Reads the whole of an open regular file of st_size bytes (at most max), then closes fd. */
static ifpp_err fs_read_fd(int fd, const char *path, const struct stat *st, size_t max, uint8_t **out, size_t *n,
                           char *why, size_t why_len)
{
    if ((uintmax_t)st->st_size > max) {
        close(fd);
        err_why(why, why_len, "%s: %jd bytes, more than the %zu allowed", path, (intmax_t)st->st_size, max);
        return IFPP_E_RANGE;
    }
    size_t size = (size_t)st->st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        err_why(why, why_len, "%s: out of memory", path);
        return IFPP_E_NOMEM;
    }
    size_t got = 0;
    int err = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            err = errno;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        free(buf);
        err_why(why, why_len, "%s: %s", path, err ? strerror(err) : "the file shrank while it was read");
        return IFPP_E_IO;
    }
    *out = buf;
    *n = size;
    return IFPP_OK;
}

ifpp_err fs_read_all_why(const char *path, size_t max, uint8_t **out, size_t *n, char *why, size_t why_len)
{
    struct stat st;
    int fd;
    if (!out || !n)
        return IFPP_E_ARG;
    ifpp_err e = fs_open_checked(path, &fd, &st, why, why_len);
    return e == IFPP_OK ? fs_read_fd(fd, path, &st, max, out, n, why, why_len) : e;
}

ifpp_err fs_read_all(const char *path, size_t max, uint8_t **out, size_t *n)
{
    return fs_read_all_why(path, max, out, n, NULL, 0);
}

ifpp_err fs_read_private(const char *path, size_t max, uint8_t **out, size_t *n, char *why, size_t why_len)
{
    struct stat st;
    int fd;
    if (!out || !n)
        return IFPP_E_ARG;
    ifpp_err e = fs_open_checked(path, &fd, &st, why, why_len);
    if (e != IFPP_OK)
        return e;
    if (st.st_mode & 077) { /* as ssh: a key others may read is no longer only the station's */
        close(fd);
        err_why(why, why_len, "permissions %04o for %s are too open (a private key must be readable by its owner only)",
                (unsigned)(st.st_mode & 07777), path);
        return IFPP_E_ARG;
    }
    return fs_read_fd(fd, path, &st, max, out, n, why, why_len);
}
