/*
 * optval.h -- the values of "key=value" options, as slot specifications and backends read them.
 *
 * A slot's options come from an operator's command line or a configuration file and are parsed by
 * the station (agent/station.c) and by each backend for its own keys. One strict reader serves all
 * of them, so that "card-wait=5000" means the same everywhere and "5000ms", "-1" or "+5" is refused
 * the same way. Values are slices (pointer and length) of the option string, not NUL-terminated.
 */
#ifndef IFPP_OPTVAL_H
#define IFPP_OPTVAL_H

#include <stdbool.h>
#include <stddef.h>

/* A decimal number of 1..9 digits in min..max, exactly (no sign, space or trailing byte); false otherwise. */
bool optval_number(const char *v, size_t len, long min, long max, long *out);

/* True if the len bytes at v are the word w, exactly. */
bool optval_word(const char *v, size_t len, const char *w);

#endif
