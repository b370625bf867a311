/*
 * fsutil.h -- files that survive a power cut.
 *
 * Whatever the station writes for someone else to trust later -- keys, reports on
 * removable media, a simulated card's NVM -- is written the one way that leaves either
 * the old file or the new one, never a mix: a temp file in the same directory, fsync,
 * rename over the target, fsync of the directory. Whatever it reads from media or
 * configuration goes through one opener that takes regular files only (issue 8, item 9).
 */
#ifndef IFPP_FSUTIL_H
#define IFPP_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "err.h"

/* Atomically replaces path with n bytes of data, created with mode (e.g. 0600). */
ifpp_err fs_write_atomic(const char *path, const void *data, size_t n, mode_t mode);

/*
 * Like fs_write_atomic but stops after the temp file is written and synced, without the
 * rename: what a power cut at that instant leaves. For fault-injection tests only.
 */
ifpp_err fs_write_atomic_torn(const char *path, const void *data, size_t n, mode_t mode);

/*
 * Files from media and configuration are hostile: a FIFO blocks a reader forever, a device
 * streams without end, a symlink on a USB stick points anywhere. Every reader of such a file
 * opens it here: O_NOFOLLOW | O_NONBLOCK (so a FIFO or a device cannot block the open), then
 * fstat before a byte is read, and only a regular file passes. *fd is blocking again on return;
 * *size is the file's size. why names the path and what it is ("is a FIFO", "is a symbolic link").
 */
ifpp_err fs_open_regular(const char *path, int *fd, size_t *size, char *why, size_t why_len);

/* fs_open_regular as a stdio stream ("rb"), for readers that stream a file. */
ifpp_err fs_fopen_regular(const char *path, FILE **f, size_t *size, char *why, size_t why_len);

/* Reads a whole regular file (fs_open_regular) of at most max bytes into a fresh malloc'd buffer. */
ifpp_err fs_read_all(const char *path, size_t max, uint8_t **out, size_t *n);

/* fs_read_all, with why naming the path and the cause. */
ifpp_err fs_read_all_why(const char *path, size_t max, uint8_t **out, size_t *n, char *why, size_t why_len);

/*
 * Reads a file that holds a private key: as fs_read_all_why, but refuses a file that group or
 * others may read or write, as ssh refuses one ("permissions 0644 for PATH are too open").
 */
ifpp_err fs_read_private(const char *path, size_t max, uint8_t **out, size_t *n, char *why, size_t why_len);

#endif
