/*
 * alog.h -- the daemon's log lines with fields (slot, serial, EID, step): to the journal through
 * sd_journal_send when stderr is the journal's stream (JOURNAL_STREAM), so that `journalctl
 * IFPP_SLOT=slot-03` finds a slot's history; else one line on stderr with the fields as key=value.
 * Never pass key material (GENS09/GENS10): identifiers only.
 */
#ifndef IFPP_ALOG_H
#define IFPP_ALOG_H

#include "log.h"

/* The fields of one line; NULL or "" fields are left out. */
typedef struct {
    const char *slot, *serial, *eid, *step;
} alog_fields;

/* Decides once whether stderr is the journal, and whether debug lines are wanted (IFPP_AGENT_DEBUG). */
void alog_init(void);

/* Logs one line with its fields (thread-safe: one write per line). */
void alog(log_level lvl, const alog_fields *f, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
