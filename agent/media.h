/*
 * media.h -- removable media as a hostile destination for the day's reports (issue 15, items 1-2).
 *
 * A quality engineer's USB stick is not the station's disk: it may be missing (the directory then
 * lies on the station's own filesystem and fills it), be pulled mid-write, hold a symlink planted
 * where a report goes, or lie about what it stored. So a destination must be a directory on a
 * mounted filesystem other than '/' and other than the store's, every file is created under it by
 * openat(O_NOFOLLOW|O_CREAT|O_EXCL) with a recognisable temporary name, its free space is checked
 * first, and a file is renamed to its real name only after it was fsync'd and read back with the
 * same SHA-256 as was written; the directory is fsync'd after. A crash leaves at most temporaries,
 * which the next export removes (media_clean_temps).
 */
#ifndef IFPP_MEDIA_H
#define IFPP_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "crypto.h"
#include "err.h"

#define MEDIA_TMP_PREFIX ".ifpp-partial-" /* a temporary of ours; nothing else is ever removed */
#define MEDIA_NAME_MAX 128

/*
 * Opens dir as a destination (O_DIRECTORY|O_NOFOLLOW) into *dirfd after checking that it is a
 * directory on a mount other than '/' (per /proc/self/mountinfo) and not on the filesystem of
 * store_path; why names the directory and what is wrong with it.
 */
ifpp_err media_open_dest(const char *dir, const char *store_path, int *dirfd, char *why, size_t why_len);

/* Like media_open_dest with the mount table read from mountinfo (a path) instead of /proc/self/mountinfo. */
ifpp_err media_open_dest_at(const char *dir, const char *store_path, const char *mountinfo, int *dirfd, char *why,
                            size_t why_len);

/* Removes the regular files named MEDIA_TMP_PREFIX* a crashed export left in dirfd; *removed counts them. */
ifpp_err media_clean_temps(int dirfd, size_t *removed, char *why, size_t why_len);

/* IFPP_E_IO (why: how much is free) unless the filesystem of dirfd has need bytes free for us. */
ifpp_err media_check_space(int dirfd, uint64_t need, char *why, size_t why_len);

/* One file being written to the medium: buffered, hashed as it goes. */
typedef struct {
    int dirfd, fd;
    char name[MEDIA_NAME_MAX], tmp[MEDIA_NAME_MAX + 32];
    crypto_sha256_ctx h;
    bool hashing; /* h holds a live context (freed by commit or abort) */
    uint64_t bytes;
    ifpp_err err; /* the first failure; every later write is a no-op */
    int sys_errno;
    size_t used;
    uint8_t buf[1 << 16];
} media_file;

/* Creates the temporary for name (a plain file name) in dirfd with O_NOFOLLOW|O_CREAT|O_EXCL. */
ifpp_err media_file_begin(media_file *f, int dirfd, const char *name, char *why, size_t why_len);

/* Appends n bytes (a failure is kept in f->err and reported by commit). */
void media_file_write(media_file *f, const void *p, size_t n);

/* Appends a printf-formatted string. */
void media_file_printf(media_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Flushes, fsyncs, reads the temporary back and compares its SHA-256 with what was written, then
 * renames it to its name (replacing an older one) and fsyncs the directory. On any failure the
 * temporary is removed and the real name is untouched; why names the file and the failure.
 */
ifpp_err media_file_commit(media_file *f, char *why, size_t why_len);

/*
 * media_file_commit with check run on the temporary as the medium holds it (a fresh descriptor,
 * after the read-back), before the rename: a file that does not pass never gets its name.
 */
ifpp_err media_file_commit_checked(media_file *f, ifpp_err (*check)(FILE *tmp, size_t size, void *arg, char *why,
                                                                     size_t why_len),
                                   void *arg, char *why, size_t why_len);

/* Removes the temporary (after a failure elsewhere); safe after commit. */
void media_file_abort(media_file *f);

#endif
