/*
 * report_html.h -- the day's results for people: a CSV of every DUT and a self-contained HTML
 * summary with inline SVG charts (issue 15, item 1), written to removable media through media.h.
 *
 * The signed Profile Loading Report (export.h) is the SM-DPf's evidence; these two are the quality
 * team's view of the same day. Both are written in one pass over the store's rows in one read
 * snapshot, so memory stays bounded whatever the day's volume: the CSV streams row by row, the
 * HTML keeps only counters (bounded tables of slots, profile types and reasons; the rest is
 * counted as "other"). The HTML carries no script and loads nothing: it opens offline and its
 * print style fits one page.
 */
#ifndef IFPP_REPORT_HTML_H
#define IFPP_REPORT_HTML_H

#include <stddef.h>

#include "store.h"

typedef struct {
    size_t rows;                           /* CSV rows (DUT session results) */
    size_t pass, fail, unresolved, unused; /* installed, failed, reserved/in_doubt, deleted unused */
    size_t removed;                        /* installed before, deleted by use case A.4 (the Deletion Report's) */
} report_tables_summary;

/*
 * Writes csv_name and html_name into the destination dirfd (media.h: temp, fsync, read back,
 * rename, directory fsync) for day ("YYYY-MM-DD"); the two agree with each other (one snapshot).
 * Neither file is left half written; why names the file and the failure.
 */
ifpp_err report_write_tables(store *s, const char *station_id, const char *day, int dirfd, const char *csv_name,
                             const char *html_name, report_tables_summary *sum, char *why, size_t why_len);

#endif
