/*
 * slots.h -- the daemon's fixture slots: one thread per slot, each with its own store connection
 * and keys (store.h: a connection belongs to the thread that opened it), so that a slot waiting
 * on its card (milliseconds per APDU) never waits on another, and a slot that faults (its reader
 * gone, its store connection broken) faults alone. Card arrival starts nothing: a session starts
 * only when slots_submit hands a slot a job (a scan or an MES request). Events (work started,
 * step, completed, fault, state) go to one callback, called from the slot's thread.
 */
#ifndef IFPP_SLOTS_H
#define IFPP_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "station.h"

typedef enum { SLOT_IDLE = 0, SLOT_BUSY, SLOT_FAULT, SLOT_REMOVED } slot_state;

/* "idle", "busy", "fault", "removed". */
const char *slot_state_name(slot_state s);

/* What a requester asks of a slot. */
typedef struct {
    uint64_t client;          /* the MES client that asked (0: none) */
    char id[72];              /* its request id, for the reply */
    char serial[72];          /* the DUT's serial, as scanned */
    char profile_type[72];    /* "" : any */
    unsigned flags;           /* STATION_COMPLETE, STATION_ADDITIONAL_PROFILE */
    bool recover;             /* resolve the card's reserved or in-doubt BPPs (station_recover), no provisioning;
                                 serial "" (a recovery is about the card in the slot, not a scanned DUT) */
} slot_job;

/* One BPP's outcome in a recovery, as station_recover decided it. */
typedef struct {
    char txid[33];            /* hex */
    bpp_state to;             /* BPP_IN_DOUBT: it stays in doubt */
    char why[256];
} slot_outcome;

#define SLOT_OUTCOMES_MAX 256 /* outcomes kept per recovery (SESSION_MAX_UNRESOLVED and retired keys fit) */

/* What a recovery did, for its completion. */
typedef struct {
    size_t resolved;
    slot_outcome outcome[SLOT_OUTCOMES_MAX];
    size_t n, dropped;
} slot_recovery;

typedef enum { SLOT_EV_STARTED, SLOT_EV_STEP, SLOT_EV_COMPLETED, SLOT_EV_FAULT, SLOT_EV_STATE } slot_event_kind;

/* One event; pointers valid during the callback only. */
typedef struct {
    slot_event_kind kind;
    const char *slot;
    const slot_job *job;      /* STARTED, STEP, COMPLETED */
    const char *eid;          /* hex, "" before the card gave it */
    const char *step;         /* STEP: the session step's name */
    station_verdict verdict;  /* COMPLETED */
    const char *message;      /* COMPLETED, FAULT: for people */
    slot_state state;         /* STATE */
    const char *profile_type; /* COMPLETED: the profile type of the BPP the session took, else the one asked for */
    const slot_recovery *recovery; /* COMPLETED of a recover job: what it resolved (NULL otherwise) */
} slot_event;

typedef void (*slots_event_fn)(void *arg, const slot_event *ev);

typedef struct slots slots;

/* A slot as seen from outside, copied under its lock. */
typedef struct {
    char name[32], spec[1024], serial[72], eid[33], step[24], last_serial[72], last_result[24], fault[256];
    slot_state state;
    unsigned long long pass, fail;
} slot_info;

/*
 * Opens the station as the daemon runs it (store that must exist, DM FPA certificate and key): the key from a
 * file, or from a token when trust.dm_fpa_key is a PKCS#11 URI (p11key.h). Every slot thread calls it.
 */
ifpp_err slots_station_open(const agent_config *c, station **out, char *why, size_t why_len);

/* Starts one thread per configured slot; each opens its own store connection and keys. */
ifpp_err slots_start(const agent_config *c, slots_event_fn fn, void *arg, slots **out, char *why, size_t why_len);

/*
 * Gives job to the named slot (NULL: the first idle one; a recover job names its slot); *chosen gets its name.
 * IFPP_E_BUSY when
 * it (or every slot) is busy, IFPP_E_NOT_FOUND for an unknown slot, IFPP_E_ARG when stopping or
 * the serial is already in a slot; why says which.
 */
ifpp_err slots_submit(slots *s, const char *slot, const slot_job *job, char chosen[32], char *why, size_t why_len);

/*
 * Cancels the job client asked for with request id (JSON text, as slot_job.id) if it has not touched the
 * store yet (queued, or waiting for its card: card-wait); IFPP_E_BUSY with the step if it has, IFPP_E_NOT_FOUND
 * if no slot runs it. shown names the request in why.
 */
ifpp_err slots_cancel(slots *s, uint64_t client, const char *id, const char *shown, char *why, size_t why_len);

/* How many slots there are (removed ones included: indexes stay stable). */
size_t slots_count(slots *s);

/* Copies slot i's state; false past the end. */
bool slots_info(slots *s, size_t i, slot_info *out);

/* Finds the slot by name; -1 if none. */
int slots_index(slots *s, const char *name);

/* Counts busy and faulted slots (for STATUS=). */
void slots_counts(slots *s, size_t *busy, size_t *fault, size_t *total);

/* Applies a reloaded configuration: new specs take effect at a slot's next session, new slots start,
 * removed ones end after their running session. Running sessions are never dropped. */
ifpp_err slots_reload(slots *s, const agent_config *c, char *why, size_t why_len);

/* Refuses new jobs and waits up to grace_ms for running sessions; returns how many are still running. */
size_t slots_drain(slots *s, long grace_ms);

/* Joins every thread whose session ended and frees what can be freed (after slots_drain). */
void slots_free(slots *s);

#endif
