/*
 * testutil.h -- small helpers shared by the unit tests and test tools.
 *
 * Tests compare against published vectors given as hex text, work in private temp
 * directories that they remove again, and cross-check against independent tools
 * (the openssl CLI) by running them as child processes.
 */
#ifndef IFPP_TESTUTIL_H
#define IFPP_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Decodes hex into a fresh malloc'd buffer (caller frees); aborts the test run on bad hex. */
uint8_t *tu_hex(const char *hex, size_t *len);

/* True if n bytes at got equal the hex text want (printing both to stderr when they differ). */
int tu_hex_equal(const uint8_t *got, size_t n, const char *want);

/* Creates a fresh private directory under $TMPDIR (or /tmp) and returns its malloc'd path. */
char *tu_mkdtemp(const char *prefix);

/* Removes a directory tree created by tu_mkdtemp; returns 0 on success. */
int tu_rmrf(const char *path);

/* Joins dir and name into a malloc'd path. */
char *tu_path(const char *dir, const char *name);

/* Writes n bytes to path (0600); returns 0 on success. */
int tu_write_file(const char *path, const uint8_t *data, size_t n);

/* Reads a whole file into a malloc'd buffer; returns NULL on failure. */
uint8_t *tu_read_file(const char *path, size_t *n);

/*
 * Runs argv (argv[0] looked up in PATH) with stdin from /dev/null and returns its
 * exit status (or -1). If out is not NULL, captures up to cap-1 bytes of stdout
 * into it, NUL-terminated; stderr passes through for diagnosis.
 */
int tu_run(char *const argv[], char *out, size_t cap);

/* tu_run of `sh -c` on a printf-style command line (at most 4 KiB). */
int tu_sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Path of a test tool: $env if set, else `name` beside the running test binary (a static buffer). */
const char *tu_tool(const char *env, const char *name);

#endif
