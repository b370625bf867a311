/*
 * fsutil.h -- files that survive a power cut.
 *
 * Whatever the station writes for someone else to trust later -- keys, reports on
 * removable media, a simulated card's NVM -- is written the one way that leaves either
 * the old file or the new one, never a mix: a temp file in the same directory, fsync,
 * rename over the target, fsync of the directory.
 */
#ifndef IFPP_FSUTIL_H
#define IFPP_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* Atomically replaces path with n bytes of data, created with mode (e.g. 0600). */
ifpp_err fs_write_atomic(const char *path, const void *data, size_t n, mode_t mode);

/*
 * Like fs_write_atomic but stops after the temp file is written and synced, without the
 * rename: what a power cut at that instant leaves. For fault-injection tests only.
 */
ifpp_err fs_write_atomic_torn(const char *path, const void *data, size_t n, mode_t mode);

/* Reads a whole regular file of at most max bytes into a fresh malloc'd buffer. */
ifpp_err fs_read_all(const char *path, size_t max, uint8_t **out, size_t *n);

#endif
