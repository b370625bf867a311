/*
 * media.c -- destinations on removable media and files written to them; see media.h for why each
 * check is there. Linux only: the mount table is /proc/self/mountinfo.
 */
#define _GNU_SOURCE
#include "media.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fsutil.h"

#define MEDIA_MOUNTINFO_MAX (4u << 20) /* a mount table larger than this is not a station's */

/* mountinfo escapes space, tab, newline and backslash as \ooo; undone in place. */
static void media_unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* True if path is mnt or below it ("/media/x" is under "/media", "/mediax" is not). */
static bool media_under(const char *path, const char *mnt)
{
    size_t n = strlen(mnt);
    if (!strcmp(mnt, "/"))
        return true;
    return !strncmp(path, mnt, n) && (path[n] == '\0' || path[n] == '/');
}

/* The longest mount point path lies under, into best (cap bytes); "" if the table names none. */
static ifpp_err media_mount_of(const char *mountinfo, const char *path, char *best, size_t cap, char *why,
                               size_t why_len)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    /* /proc files report size 0: read through a stream, bounded */
    FILE *f = fopen(mountinfo, "re");
    if (!f) {
        err_why(why, why_len, "cannot read the mount table %s: %s", mountinfo, strerror(errno));
        return IFPP_E_IO;
    }
    buf = malloc(MEDIA_MOUNTINFO_MAX + 1);
    if (!buf) {
        fclose(f);
        return IFPP_E_NOMEM;
    }
    n = fread(buf, 1, MEDIA_MOUNTINFO_MAX + 1, f);
    fclose(f);
    if (n > MEDIA_MOUNTINFO_MAX) {
        free(buf);
        err_why(why, why_len, "the mount table %s is larger than %u bytes", mountinfo, MEDIA_MOUNTINFO_MAX);
        return IFPP_E_RANGE;
    }
    buf[n] = '\0';
    best[0] = '\0';
    char *save = NULL;
    for (char *line = strtok_r((char *)buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT ...": the fifth field */
        char *f5 = line;
        for (int i = 0; i < 4 && f5; i++) {
            f5 = strchr(f5, ' ');
            if (f5)
                f5++;
        }
        if (!f5)
            continue;
        char *end = strchr(f5, ' ');
        if (end)
            *end = '\0';
        media_unescape(f5);
        if (media_under(path, f5) && strlen(f5) >= strlen(best) && strlen(f5) < cap)
            snprintf(best, cap, "%s", f5);
    }
    free(buf);
    return IFPP_OK;
}

ifpp_err media_open_dest_at(const char *dir, const char *store_path, const char *mountinfo, int *dirfd, char *why,
                            size_t why_len)
{
    char real[PATH_MAX], mnt[PATH_MAX];
    struct stat ds, ss;
    if (!dir || !store_path || !mountinfo || !dirfd)
        return IFPP_E_ARG;
    *dirfd = -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        struct stat ls;
        bool link = lstat(dir, &ls) == 0 && S_ISLNK(ls.st_mode); /* O_NOFOLLOW|O_DIRECTORY says ENOTDIR for one */
        err_why(why, why_len, "destination %s: %s", dir,
                link ? "is a symbolic link (refused on removable media)"
                     : err == ENOTDIR ? "is not a directory" : strerror(err));
        return err == ENOENT ? IFPP_E_NOT_FOUND : IFPP_E_ARG;
    }
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd); /* the directory opened, not what dir names by now */
    if (fstat(fd, &ds) != 0 || !realpath(self, real)) {
        err_why(why, why_len, "destination %s: %s", dir, strerror(errno));
        close(fd);
        return IFPP_E_IO;
    }
    if (stat(store_path, &ss) == 0 && ss.st_dev == ds.st_dev) {
        err_why(why, why_len, "destination %s is on the station's own filesystem (the store %s's): mount the removable "
                "medium there first", dir, store_path);
        close(fd);
        return IFPP_E_ARG;
    }
    ifpp_err e = media_mount_of(mountinfo, real, mnt, sizeof mnt, why, why_len);
    if (e == IFPP_OK && (!mnt[0] || !strcmp(mnt, "/"))) {
        err_why(why, why_len, "destination %s (%s) is on no mounted filesystem but '/': is the removable medium "
                "mounted?", dir, real);
        e = IFPP_E_ARG;
    }
    if (e != IFPP_OK) {
        close(fd);
        return e;
    }
    *dirfd = fd;
    return IFPP_OK;
}

ifpp_err media_open_dest(const char *dir, const char *store_path, int *dirfd, char *why, size_t why_len)
{
    return media_open_dest_at(dir, store_path, "/proc/self/mountinfo", dirfd, why, why_len);
}

ifpp_err media_clean_temps(int dirfd, size_t *removed, char *why, size_t why_len)
{
    size_t n = 0;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        err_why(why, why_len, "cannot list the destination: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return IFPP_E_IO;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (strncmp(de->d_name, MEDIA_TMP_PREFIX, strlen(MEDIA_TMP_PREFIX)) != 0)
            continue;
        /* only a regular file of ours: a directory or link with that name is left alone */
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            unlinkat(dirfd, de->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    if (n)
        fsync(dirfd);
    if (removed)
        *removed = n;
    return IFPP_OK;
}

ifpp_err media_check_space(int dirfd, uint64_t need, char *why, size_t why_len)
{
    struct statvfs v;
    if (fstatvfs(dirfd, &v) != 0) {
        err_why(why, why_len, "cannot read the destination's free space: %s", strerror(errno));
        return IFPP_E_IO;
    }
    uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
    if (avail < need) {
        err_why(why, why_len, "the destination has %llu bytes free, the report needs %llu: nothing was written",
                (unsigned long long)avail, (unsigned long long)need);
        return IFPP_E_IO;
    }
    return IFPP_OK;
}

ifpp_err media_file_begin(media_file *f, int dirfd, const char *name, char *why, size_t why_len)
{
    uint8_t rnd[6];
    char hex[13];
    f->fd = -1;
    f->dirfd = dirfd;
    f->err = IFPP_OK;
    f->bytes = f->used = 0;
    f->sys_errno = 0;
    f->hashing = false;
    f->tmp[0] = '\0';
    if (!name || !*name || strchr(name, '/') || name[0] == '.' || strlen(name) >= sizeof f->name)
        return IFPP_E_ARG;
    snprintf(f->name, sizeof f->name, "%s", name);
    ifpp_err e = crypto_random(rnd, sizeof rnd);
    if (e != IFPP_OK)
        return e;
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    snprintf(f->tmp, sizeof f->tmp, MEDIA_TMP_PREFIX "%s-%s", hex, name);
    f->fd = openat(dirfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        err_why(why, why_len, "cannot create %s on the destination: %s", f->tmp, strerror(errno));
        f->tmp[0] = '\0';
        return IFPP_E_IO;
    }
    if ((e = crypto_sha256_init(&f->h)) != IFPP_OK) {
        media_file_abort(f);
        return e;
    }
    f->hashing = true;
    return IFPP_OK;
}

/* Hashes and writes the buffer: one SHA-256 update per 64 KiB, not one per write (a CSV writes field by field). */
static void media_flush(media_file *f)
{
    size_t off = 0;
    if (f->err == IFPP_OK && f->used && crypto_sha256_update(&f->h, f->buf, f->used) != IFPP_OK)
        f->err = IFPP_E_CRYPTO;
    while (f->err == IFPP_OK && off < f->used) {
        ssize_t w = write(f->fd, f->buf + off, f->used - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            f->sys_errno = w < 0 ? errno : ENOSPC;
            f->err = IFPP_E_IO;
            break;
        }
        off += (size_t)w;
    }
    f->used = 0;
}

void media_file_write(media_file *f, const void *p, size_t n)
{
    const uint8_t *b = p;
    if (f->err != IFPP_OK)
        return;
    f->bytes += n;
    while (n && f->err == IFPP_OK) {
        size_t k = sizeof f->buf - f->used < n ? sizeof f->buf - f->used : n;
        memcpy(f->buf + f->used, b, k);
        f->used += k;
        b += k;
        n -= k;
        if (f->used == sizeof f->buf)
            media_flush(f);
    }
}

void media_file_printf(media_file *f, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        f->err = f->err ? f->err : IFPP_E_INTERNAL;
        return;
    }
    if ((size_t)n < sizeof small) {
        media_file_write(f, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        f->err = f->err ? f->err : IFPP_E_NOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    media_file_write(f, big, (size_t)n);
    free(big);
}

/* Reads the temporary back from the medium and compares its SHA-256 with what was written. */
static ifpp_err media_read_back(media_file *f, const uint8_t want[CRYPTO_SHA256_LEN], char *why, size_t why_len)
{
    crypto_sha256_ctx h;
    uint8_t got[CRYPTO_SHA256_LEN];
    uint64_t total = 0;
    /* a fresh descriptor: not the writer's, so no state of ours stands in for the medium */
    int fd = openat(f->dirfd, f->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        err_why(why, why_len, "%s: cannot reopen it to read it back: %s", f->name, strerror(errno));
        return IFPP_E_IO;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); /* ask for the medium's bytes, not the page cache's */
    ifpp_err e = crypto_sha256_init(&h);
    while (e == IFPP_OK) {
        ssize_t r = read(fd, f->buf, sizeof f->buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err_why(why, why_len, "%s: reading it back failed: %s", f->name, strerror(errno));
            e = IFPP_E_IO;
            break;
        }
        if (r == 0)
            break;
        total += (uint64_t)r;
        e = crypto_sha256_update(&h, f->buf, (size_t)r);
    }
    close(fd);
    if (e != IFPP_OK) {
        crypto_sha256_abort(&h);
        return e;
    }
    if ((e = crypto_sha256_final(&h, got)) != IFPP_OK)
        return e;
    if (total != f->bytes || !crypto_equal_ct(got, want, sizeof got)) {
        err_why(why, why_len, "%s reads back different from what was written (%llu of %llu bytes): the medium is not "
                "trustworthy", f->name, (unsigned long long)total, (unsigned long long)f->bytes);
        return IFPP_E_IO;
    }
    return IFPP_OK;
}

ifpp_err media_file_commit(media_file *f, char *why, size_t why_len)
{
    return media_file_commit_checked(f, NULL, NULL, why, why_len);
}

/* Runs check on the temporary through a fresh read-only descriptor. */
static ifpp_err media_run_check(media_file *f, ifpp_err (*check)(FILE *, size_t, void *, char *, size_t), void *arg,
                                char *why, size_t why_len)
{
    int fd = openat(f->dirfd, f->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    FILE *in = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!in) {
        err_why(why, why_len, "%s: cannot reopen it to check it: %s", f->name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return IFPP_E_IO;
    }
    ifpp_err e = check(in, (size_t)f->bytes, arg, why, why_len);
    fclose(in);
    return e;
}

ifpp_err media_file_commit_checked(media_file *f, ifpp_err (*check)(FILE *tmp, size_t size, void *arg, char *why,
                                                                     size_t why_len),
                                   void *arg, char *why, size_t why_len)
{
    uint8_t want[CRYPTO_SHA256_LEN];
    ifpp_err e;
    media_flush(f);
    if (f->err == IFPP_OK && fsync(f->fd) != 0) {
        f->sys_errno = errno;
        f->err = IFPP_E_IO;
    }
    if (f->err != IFPP_OK) {
        err_why(why, why_len, "%s: writing it failed after %llu bytes: %s", f->name, (unsigned long long)f->bytes,
                f->sys_errno ? strerror(f->sys_errno) : err_str(f->err));
        media_file_abort(f);
        return f->err;
    }
    close(f->fd);
    f->fd = -1;
    f->hashing = false; /* final frees the context, also when it fails */
    if ((e = crypto_sha256_final(&f->h, want)) != IFPP_OK || (e = media_read_back(f, want, why, why_len)) != IFPP_OK ||
        (check && (e = media_run_check(f, check, arg, why, why_len)) != IFPP_OK)) {
        media_file_abort(f);
        return e;
    }
    if (renameat(f->dirfd, f->tmp, f->dirfd, f->name) != 0) {
        err_why(why, why_len, "%s: cannot rename it into place: %s", f->name, strerror(errno));
        media_file_abort(f);
        return IFPP_E_IO;
    }
    f->tmp[0] = '\0';
    if (fsync(f->dirfd) != 0) {
        err_why(why, why_len, "%s: the directory could not be synced: %s", f->name, strerror(errno));
        return IFPP_E_IO;
    }
    return IFPP_OK;
}

void media_file_abort(media_file *f)
{
    if (f->hashing)
        crypto_sha256_abort(&f->h);
    f->hashing = false;
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (f->tmp[0])
        unlinkat(f->dirfd, f->tmp, 0);
    f->tmp[0] = '\0';
}
