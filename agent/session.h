/*
 * session.h -- the provisioning session, written once above every FPA backend.
 *
 * One DUT in one fixture slot (SGP.41 §5.1 steps 9-14, docs/es10f.md): check the DUT serial
 * (label.h's rule), select the ISD-R, read the EID, resolve any BPP this eUICC left unresolved
 * from the card's own evidence (and refuse if it stays so), refuse a second profile unless asked
 * (use case A.3), authorise the FPA services (EUICCF02), reserve that eUICC's BPP (durably, before
 * anything of it reaches the card), send the SM-DPf binding certificate and the BPP, verify the
 * eUICC-signed PIR against the eUICC certificate and the vault's record and record it (DMF02),
 * acknowledge it, and when the DUT is complete delete the remaining One-time Keys and confirm none
 * is left (EUICCF03, DMF03). The ES10 calls themselves are drivers/es10.h.
 *
 * Exactly once: the BPP is reserved before its first byte goes out. A definite refusal before any
 * BPP byte left (the card's result code or error status word at PrepareBppLoad) returns it to
 * available; from then on, anything short of a verified PIR leaves it in_doubt, and only the
 * eUICC's own evidence (a kept PIR, or the One-time Key still present) -- read by session_recover()
 * or by the next session on that eUICC -- moves it on. The station never guesses.
 */
#ifndef IFPP_SESSION_H
#define IFPP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "crypto.h"
#include "es10.h"
#include "fpa.h"
#include "store.h"

/* The steps, in order, as progress reports them (and as the crash tests kill at them). */
typedef enum {
    SESSION_STEP_SELECT = 0,
    SESSION_STEP_EID,
    SESSION_STEP_RESERVE,
    SESSION_STEP_AUTHORISE,
    SESSION_STEP_PREPARE,
    SESSION_STEP_LOAD,
    SESSION_STEP_PIR,
    SESSION_STEP_ACK,
    SESSION_STEP_CONN_TEST,     /* EUICCF05, optional: only with session_ctx.conn_test on */
    SESSION_STEP_DELETE_KEYS,
    SESSION_STEP_DONE,
    SESSION_STEP__COUNT
} session_step;

const char *session_step_name(session_step s);

/* EUICCF05: whether the session tests the loaded Profile's connectivity (slot option conn-test=). */
typedef enum {
    SESSION_CONN_OFF = 0,     /* never (the default) */
    SESSION_CONN_IF_OFFERED,  /* where the eUICC offers it; its outcome is recorded, the verdict stays the PIR's */
    SESSION_CONN_REQUIRED,    /* the DUT passes only if the eUICC offers the test and signs ok */
} session_conn_mode;

/* "off", "if-offered", "required". */
const char *session_conn_mode_name(session_conn_mode m);

/* What became of the test in this session. */
typedef enum {
    SESSION_CONN_NOT_RUN = 0, /* off, or no installed profile to test */
    SESSION_CONN_SKIPPED,     /* not offered by the eUICC */
    SESSION_CONN_PASSED,
    SESSION_CONN_FAILED,      /* the eUICC signed a result other than ok */
    SESSION_CONN_REFUSED,     /* the station could not accept the answer (signature, ICCID, nonce, shape, transport) */
} session_conn_outcome;

/* "not run", "skipped", "passed", "failed", "refused". */
const char *session_conn_outcome_name(session_conn_outcome o);

typedef struct {
    store *st;
    fpa_slot *slot;
    const char *slot_name;
    const crypto_key *dm_fpa_key; /* the Device Manufacturer's FPA-authorisation key (GENS02: file or token) */
    const cert *dm_fpa_cert;
    const uint8_t *isdr_aid;      /* the slot's ISD-R AID (some eUICCs use another); NULL: SGP.22's default */
    size_t isdr_aid_len;
    bool additional_profile;      /* explicitly asked: this DUT may get a further profile (use case A.3) */
    bool delete_keys_when_done;   /* the DUT gets no further profile: delete every remaining One-time Key */
    session_conn_mode conn_test;  /* EUICCF05 test of the installed profile, before DeleteOneTimeKeys */
    unsigned conn_time_limit;     /* seconds the eUICC may spend on the attach (1..600; 0: 60) */
    bool logical_channel;         /* a logical channel for the ISD-R (fpa_open_channel), as a modem
                                     or a device with a busy basic channel needs; else the basic channel */
    unsigned channel;             /* set by the session: the channel the ISD-R is selected on */
    session_step current;         /* set by the session: the step under way (for session_result.failed_step) */
    void (*progress)(void *arg, session_step step, const char *detail);
    void *progress_arg;
    /* Each unresolved BPP's outcome as the card's evidence decided it, and why (to == BPP_IN_DOUBT:
       left in doubt); also BPPs retired to deleted. NULL: nobody asks (ifppctl recover prints them). */
    void (*outcome)(void *arg, const uint8_t *txid, size_t txid_len, bpp_state to, const char *why);
    void *outcome_arg;
} session_ctx;

typedef struct {
    uint8_t eid[16];
    uint8_t txid[16];
    size_t txid_len;
    bool installed;
    uint8_t bpp_command, error_reason; /* from an error PIR */
    bpp_state final_state;
    session_step failed_step;          /* the step that failed; SESSION_STEP__COUNT if none did */
    uint16_t sw;                       /* the card's status word at the failed step (0: none, or 9000) */
    int card_result;                   /* the ES10 result code a refusing card gave (-1: none) */
    ifpp_err err;                      /* what session_provision returned */
    char message[256];                 /* for the operator: what happened, or what failed and where */
    session_conn_mode conn_mode;       /* EUICCF05: as the session was asked */
    session_conn_outcome conn;         /* what became of the test */
    int conn_result;                   /* the eUICC's signed testResult (-1: none) */
    bool conn_recorded;                /* the outcome is in the store */
    char conn_detail[160];             /* for the operator and the report */
} session_result;

/*
 * Provisions the DUT in the slot (dut_serial as scanned, dut_serial_valid(); profile_type NULL for
 * any, A.3). r says what happened: verdict, failed step, the card's status word and result code.
 */
ifpp_err session_provision(session_ctx *c, const char *dut_serial, const char *profile_type, session_result *r);

/* Resolves this eUICC's reserved/in_doubt BPPs from the card's evidence; *resolved counts them. */
ifpp_err session_recover(session_ctx *c, size_t *resolved, char *why, size_t why_len);

/*
 * Opens the DUT's card as every session does (reset, the ISD-R selected, GetEID, GetEUICCInfo2), for a
 * job that is not a provisioning (use case A.4, agent/deletion.h); *k is the ES10 link to the ISD-R and
 * why names the slot and the card's words. Call session_close_card after, whatever happened.
 */
ifpp_err session_open(session_ctx *c, es10_chan *k, uint8_t eid[16], char *why, size_t why_len);

/* Gives back what session_open took (a logical channel). */
void session_close_card(session_ctx *c);

#endif
