/*
 * console_model.h -- the operator console's model (issue 14), apart from its drawing: the slot table fed by the
 * daemon's MES lines, scan checking and routing, the result's reason in an operator's words, the shift counters.
 * Pure (no I/O, no curses) so that tests/unit/test_console.c and the fuzz target drive it line by line.
 */
#ifndef IFPP_CONSOLE_MODEL_H
#define IFPP_CONSOLE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define CM_MAX_SLOTS 64   /* CONFIG_MAX_SLOTS of the daemon */
#define CM_MAX_STOCK 32   /* profile types shown */
#define CM_MAX_LINE 8192  /* a daemon line longer than this is refused (the peer is bounded too) */
#define CM_SERIAL 65
#define CM_NAME 33
#define CM_EID 33
#define CM_TEXT 160

typedef enum { CM_R_NONE = 0, CM_R_PASS, CM_R_NO_PROFILE, CM_R_ALREADY, CM_R_PULLED, CM_R_NO_CARD, CM_R_CARD_REFUSED,
               CM_R_IN_DOUBT, CM_R_STORE_BUSY, CM_R_STATION, CM_R_OTHER, CM_R__COUNT } cm_reason;

typedef struct {
    char name[CM_NAME], state[16], serial[CM_SERIAL], eid[CM_EID], step[48], profile_type[CM_NAME];
    int step_index;          /* 0..cm_steps(): the progress bar; -1 none */
    char result[20];         /* PASS, REFUSED, FAIL, STATION-FAILURE or "" */
    cm_reason reason;
    char detail[CM_TEXT];    /* the daemon's own message, kept for the engineer (help screen) */
    char request[24];        /* our provision request id in flight, "" if none */
} cm_slot;

typedef struct {
    cm_slot slot[CM_MAX_SLOTS];
    size_t n_slots;
    struct { char type[CM_NAME]; long n; bool low; } stock[CM_MAX_STOCK];
    size_t n_stock;
    long low_under;
    long pass, fail, by_reason[CM_R__COUNT];
    time_t shift_start;
    char last_scan[CM_SERIAL];
    char notice[CM_TEXT];    /* the last refusal or station message, shown on screen */
    bool notice_bad;
    unsigned next_id;
    size_t selected;         /* the row the keys select; CM_MAX_SLOTS: none */
} cm_model;

/* Zeroes the model and starts the shift at now. */
void cm_init(cm_model *m, time_t now);

/* Applies one line from the daemon (reply or event); false if it is not a JSON object (ignored, counted by caller). */
bool cm_handle_line(cm_model *m, const char *line, size_t n);

/*
 * Checks one scan (wedge or serial scanner; "SLOT:SERIAL" names the slot by name or row number 1..N) and routes
 * it to the named, selected or first idle slot. On success writes the provision request (one line, '\n' ended)
 * into out and returns true; else returns false with m->notice saying why in plain words.
 */
bool cm_scan(cm_model *m, const char *scan, const char *profile_type, char *out, size_t cap);

/* The cancel request for the selected slot's provision; false (with a notice) if there is none. */
bool cm_cancel(cm_model *m, char *out, size_t cap);

/* The operator's words for a verdict: reason from result, failed step and the daemon's message. */
cm_reason cm_reason_of(const char *result, const char *failed_step, const char *message);
const char *cm_reason_words(cm_reason r);

/* Number of session steps (the progress bar's length) and the index of a step's name (-1 if unknown). */
int cm_steps(void);
int cm_step_index(const char *name);

/* DUTs per hour in this shift (0 in its first minute). */
double cm_per_hour(const cm_model *m, time_t now);

/* The daemon went away: every slot shows unknown until the station query answers again. */
void cm_disconnected(cm_model *m);

#endif
