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

ifpp_err fs_read_all(const char *path, size_t max, uint8_t **out, size_t *n)
{
    if (!path || !out || !n)
        return IFPP_E_ARG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return IFPP_E_IO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return IFPP_E_IO;
    }
    if ((uintmax_t)st.st_size > max) {
        close(fd);
        return IFPP_E_RANGE;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return IFPP_E_NOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        free(buf);
        return IFPP_E_IO;
    }
    *out = buf;
    *n = size;
    return IFPP_OK;
}
