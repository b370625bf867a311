/*
 * label.h -- the one rule for short names that travel in bundles: profile types, station ids.
 *
 * Such a name comes from a file someone else wrote (a vault, a request) or from a configuration,
 * and ends up in SQL rows, operator screens, MES events, report file names and logs. Rather than
 * escape it in each of those places, the station accepts only names that are safe in all of them:
 * 1..64 characters from [A-Za-z0-9._-], not starting with '.' or '-' (no hidden files, no path
 * parts, no option look-alikes, no control characters or terminal escapes).
 */
#ifndef IFPP_LABEL_H
#define IFPP_LABEL_H

#include <stdbool.h>
#include <stddef.h>

#define LABEL_MAX 64

/* True if the n bytes at s (not NUL-terminated) are a valid label. */
bool label_valid(const char *s, size_t n);

/*
 * DUT serials come from a barcode scanner or the MES and go to the same places (the audit log, the
 * signed report, JSON, the console), but real serials carry characters labels refuse ('/', ':',
 * '#', '+'). The rule: 1..DUT_SERIAL_MAX bytes of printable ASCII 0x21..0x7E -- no space, no
 * control character (newline, ESC, NUL, \x01), no byte above 0x7E (no UTF-8, no C1 controls).
 */
#define DUT_SERIAL_MAX 64

/* True if the NUL-terminated s (NULL: false) is a valid DUT serial by the rule above. */
bool dut_serial_valid(const char *s);

/*
 * A report's day, from the operator or the MES, travels into file names and bundles: a real calendar day
 * YYYY-MM-DD from 2000-01-01 (before any eUICC of this kind existed), nothing around it. NULL: false.
 */
bool label_day_valid(const char *d);

#endif
