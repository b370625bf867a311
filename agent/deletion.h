/*
 * deletion.h -- use case A.4 (SGP.41 Annex A.4, issue 15 item 4): the deletion job. Devices come back
 * from a cancelled order; for each one on a list (DUT serials or EIDs) the station opens its eUICC
 * through the session engine on any backend, deletes every profile this station installed on it
 * (SGP.22 ES10c.DeleteProfile), collects the eUICC-signed deletion notification (ES10b.ListNotification,
 * RetrieveNotificationsList: an OtherSignedNotification for notificationDelete), verifies it with the
 * eUICC certificate the EUM delivered, records it in the same transaction that moves the BPP
 * installed -> deleted, and only then removes it from the card's list (RemoveNotificationFromList).
 *
 * A million devices: the list is read line by line (bounded memory), validated whole before anything
 * is done (a bad line names itself and nothing happens), and the job's progress lives in the store
 * (store.h, "deletion jobs"). Re-running the same job skips the lines done and resolves a device
 * interrupted mid-way from the card's own evidence: a profile still there is deleted; a profile gone
 * with its notification pending on the card is collected; one already recorded is only taken off the
 * card's list. A profile gone without any notification is never recorded as deleted (no guessing).
 */
#ifndef IFPP_DELETION_H
#define IFPP_DELETION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "session.h"
#include "station.h"
#include "store.h"

#define DELETION_LINE_MAX 255     /* longest list line (an EID is 32 characters, a serial at most 64) */
#define DELETION_MAX_PROFILES 16  /* profiles of one eUICC one device's deletion handles */
#define DELETION_SLOT_ID "{}"     /* in a slot spec: replaced by each line's serial or EID */

/* The points of one device's deletion, as the step hook hears them (and the crash tests kill at them). */
typedef enum {
    DELETION_STEP_OPEN = 0,   /* the card is open and its EID is the one expected */
    DELETION_STEP_COLLECT,    /* a verified deletion notification is about to be recorded */
    DELETION_STEP_RECORDED,   /* recorded (BPP deleted), still on the card's list */
    DELETION_STEP_DELETE,     /* DeleteProfile is about to be sent */
    DELETION_STEP_DELETED,    /* the card answered ok: the profile is gone, its notification pending */
    DELETION_STEP_DONE,       /* every profile of the device deleted and recorded */
    DELETION_STEP__COUNT
} deletion_step;

const char *deletion_step_name(deletion_step s);

typedef struct {
    const char *job;              /* the job's name (a plain label; NULL: "list-" and the start of the list's
                                     SHA-256): re-running it resumes it */
    store_deletion_kind kind;     /* the list holds serials or EIDs */
    const char *list_path;
    const char *slot_spec;        /* BACKEND:TARGET[,key=value...]; DELETION_SLOT_ID names each device's own */
    void (*step)(void *arg, size_t line, const char *ident, deletion_step step, const char *detail);
    /* each line's outcome: done, skipped (done before), or failed with why; profiles deleted now */
    void (*outcome)(void *arg, size_t line, const char *ident, bool done, bool skipped, size_t profiles,
                    const char *why);
    void *arg;
} deletion_job;

typedef struct {
    size_t lines, devices;        /* lines in the list; of which name a device (not blank, not a comment) */
    size_t done, skipped, failed; /* devices done now, done by an earlier run, failed now */
    size_t profiles;              /* profiles deleted and recorded now */
    bool resumed;                 /* the job existed: this run resumed it */
    bool finished;                /* every device of the job is done */
    char job[72];                 /* the job's name */
} deletion_summary;

/*
 * Reads the list f (name for messages) line by line: each line one serial (kind serial, the rule of
 * dut_serial_valid) or one EID (32 hex digits); blank lines and lines starting with '#' are skipped.
 * hash: SHA-256 of the bytes; *lines: their count. why: "NAME:LINE: what is wrong".
 */
ifpp_err deletion_check_list(FILE *f, const char *name, store_deletion_kind kind, uint8_t hash[32], size_t *lines,
                             size_t *devices, char *why, size_t why_len);

/*
 * Runs (or resumes) the job: the list checked whole first (nothing is done for a bad list), then
 * device by device. A device that fails is recorded failed with why and the job goes on; a failure
 * of the station (store, memory) stops it (resumable). IFPP_OK when every line was worked through.
 */
ifpp_err deletion_run(station *s, const deletion_job *j, deletion_summary *sum, char *why, size_t why_len);

/*
 * One device in an open slot (c: the session's context on it): the card must be want_eid; every
 * profile this station installed on it deleted with its notification recorded (see above). *profiles
 * counts the ones recorded now; *station_failed tells a failure of the store from one of the DUT.
 */
ifpp_err deletion_device(session_ctx *c, const deletion_job *j, size_t line, const char *ident,
                         const uint8_t want_eid[16], const char *serial, size_t *profiles, bool *station_failed,
                         char *why, size_t why_len);

#endif
