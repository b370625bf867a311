/*
 * station.h -- the station as ifppctl and the coming daemon both see it: its store, trust anchors,
 * keys and identity (a `station`), its fixture slots (a `slot`, with typed options), and the PASS
 * rule. The CLI and the daemon only parse their input and print; what counts as PASS, a refusal,
 * a failure of the DUT or of the station is decided here, once, from the session's result
 * (issue 8, item 3).
 *
 * A slot is named "BACKEND:TARGET[,key=value...]". The station's own keys are
 *   aid=HEX               the slot's ISD-R AID (5..16 bytes; default SGP.22's A0000005591010FFFFFFFF8900000100)
 *   channel=basic|logical the ISD-R on the basic channel (default) or on a logical one (fpa_open_channel)
 *   card-wait=MS          wait up to MS for the DUT's card (0..3600000; passed on to the backend)
 *   apdu-timeout=MS       the longest a card may take to answer one APDU (1..3600000; passed on to the backend)
 *   conn-test=off|if-offered|required   the EUICCF05 connectivity test of the installed profile (default off):
 *                         if-offered records it where the eUICC offers it and leaves the verdict to the PIR;
 *                         required makes the DUT FAIL unless the eUICC offers it and signs ok
 *   conn-test-time=S      seconds the eUICC may spend attaching (1..600; default 60)
 * every other key goes to the backend, which names any it does not know (pcsc: ext=auto|on|off).
 */
#ifndef IFPP_STATION_H
#define IFPP_STATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "crypto.h"
#include "fpa.h"
#include "session.h"
#include "store.h"

/* Where the station's files are; a NULL file is looked up in pki_dir (as ifpp-testpki lays it out). */
typedef struct {
    const char *store_path;   /* NULL: "station.db" */
    const char *station_id;   /* NULL: "station-01" */
    const char *pki_dir;
    const char *ci, *dm_root, *dm_fpa_cert, *dm_fpa_key, *station_cert, *station_key;
                              /* a key may be a PKCS#11 URI (RFC 7512) instead of a file: signing goes through
                                 the token (p11key.h), the pair proven against its certificate at open */
    const char *pkcs11_module; /* NULL: the pkcs11 engine's default module (Debian: p11-kit's proxy) */
} station_config;

/* What a command needs loaded; station_open loads only that and names the first file it cannot. */
enum {
    STATION_NEED_STORE = 1u << 0,
    STATION_NEED_CI = 1u << 1,        /* the CI root: imports (ESED201, ESBPP01) */
    STATION_NEED_DM_ROOT = 1u << 2,   /* the Device Manufacturer's root: reading back a signed report */
    STATION_NEED_DM_FPA = 1u << 3,    /* the DM's FPA-authorisation key and certificate (EUICCF02) */
    STATION_NEED_STATION_KEY = 1u << 4, /* the station's signing key and certificate (ESBPP02, ESBPP03) */
    STATION_STORE_MUST_EXIST = 1u << 5, /* refuse to create the store: only an import may start a new one */
    STATION_STORE_READONLY = 1u << 6,   /* open the store read-only (store_open_readonly): status, audit,
                                           report, request; never creates, works on a read-only mount */
};

typedef struct {
    store *st;
    char store_path[4096];
    char station_id[64];
    cert *ci, *dm_root, *dm_fpa_cert, *station_cert;
    crypto_key *dm_fpa_key, *station_key;
} station;

/* Opens what needs asks for; why names the file and the option that names it. */
ifpp_err station_open(const station_config *cfg, unsigned needs, station **out, char *why, size_t why_len);

/* Closes the store and frees every key (NULL is fine). */
void station_close(station *s);

/*
 * Refuses an output path that is the store, one of its journals (-wal, -journal, -shm) or the daemon's
 * lock beside it (STATION_LOCK_SUFFIX): by
 * device and inode when the file exists, else by its canonical directory and name (issue 9, item 1).
 */
ifpp_err station_check_output(const station *s, const char *out_path, char *why, size_t why_len);

/* A slot's options, typed. */
typedef struct {
    char spec[1024];          /* as given, for messages and the store's records */
    char backend[16];
    char target[1024];        /* what the backend opens: its target and the options it owns */
    uint8_t isdr_aid[16];
    size_t isdr_aid_len;      /* 0: SGP.22's default */
    bool logical_channel;
    long card_wait_ms;        /* -1: not given */
    long apdu_timeout_ms;     /* -1: not given (the backend's default) */
    session_conn_mode conn_test; /* EUICCF05 (issue 15 item 5) */
    long conn_time_limit;     /* seconds; 0: the session's default */
} station_slot_options;

/* Parses "BACKEND:TARGET[,key=value...]"; why names the bad option and what it may be. */
ifpp_err station_slot_parse(const char *spec, station_slot_options *o, char *why, size_t why_len);

/* An open slot. */
typedef struct {
    station_slot_options opt;
    fpa_slot fpa;
} station_slot;

/* Opens the slot's backend on its target; why says what went wrong (unknown backend, no reader ...). */
ifpp_err station_slot_open(const station_slot_options *o, station_slot *sl, char *why, size_t why_len);

/* Closes the slot (a zeroed one is fine). */
void station_slot_close(station_slot *sl);

/* How one DUT's provisioning ended, for the operator, the MES and the exit code. */
typedef enum {
    STATION_PASS = 0,        /* the profile is installed and its PIR verified and recorded */
    STATION_REFUSED,         /* the station declined before a byte of any BPP left it (no BPP for this eUICC ...) */
    STATION_DUT_FAIL,        /* the DUT's card refused, answered wrongly, or was gone */
    STATION_FAILURE,         /* the station itself failed (store, disk, memory, reader) */
} station_verdict;

/* "PASS", "REFUSED", "FAIL", "STATION-FAILURE". */
const char *station_verdict_name(station_verdict v);

/* ifppctl's exit code for a verdict (0, 3, 4, 1; see STATION_EXIT_*). */
int station_exit_code(station_verdict v);

/* Exit codes of ifppctl (and the daemon's per-DUT answers): documented in README and `ifppctl --help`. */
enum {
    STATION_EXIT_OK = 0,
    STATION_EXIT_FAILURE = 1,   /* the station failed: store, files, keys, disk, reader */
    STATION_EXIT_USAGE = 2,     /* bad usage: unknown command or option, missing or malformed argument */
    STATION_EXIT_REFUSED = 3,   /* refused: bad input (a bundle, an output path) or no BPP for this DUT */
    STATION_EXIT_DUT_FAIL = 4,  /* the DUT failed: its card refused or answered wrongly */
};

/* The PASS rule: the verdict a finished session's result means. */
station_verdict station_verdict_of(const session_result *r);

/* What station_recover's return means: PASS (it ran to its end), STATION-FAILURE (memory, store, disk, keys)
 * or FAIL (the card gave no usable evidence); ifppctl recover and the daemon's `recover` share it. */
station_verdict station_verdict_of_recover(ifpp_err e);

enum {
    STATION_COMPLETE = 1u << 0,            /* the DUT gets no further profile: delete its One-time Keys (DMF03) */
    STATION_ADDITIONAL_PROFILE = 1u << 1,  /* explicitly asked: this DUT may get a further profile (A.3) */
};

/* Provisions the DUT in the slot; r carries the session's result, the return its verdict. */
station_verdict station_provision(station *s, station_slot *sl, const char *serial, const char *profile_type, unsigned flags,
                                  void (*progress)(void *arg, session_step step, const char *detail),
                                  void *progress_arg, session_result *r);

/*
 * Resolves the slot's eUICC's unresolved BPPs from the card's evidence (session_recover); outcome
 * (NULL: none) hears each BPP's outcome and why, as session_ctx.outcome does.
 */
ifpp_err station_recover(station *s, station_slot *sl, size_t *resolved,
                         void (*outcome)(void *arg, const uint8_t *txid, size_t txid_len, bpp_state to, const char *why),
                         void *outcome_arg, char *why, size_t why_len);

/*
 * The daemon's claim on a store (issue 13 item 4): ifpp-agent holds a write lock (fcntl, whole file)
 * on STORE.agent-lock, beside the store, for as long as it runs, and writes its pid and MES socket
 * path into it. ifppctl, before it writes to a store, takes a read lock on the same file without
 * waiting: it fails while a daemon runs, and while ifppctl holds it no daemon can claim the store
 * (no gap between the test and the writes).
 */
#define STATION_LOCK_SUFFIX ".agent-lock"

/* Takes the claim for this process (fd kept open until exit); IFPP_E_BUSY names the daemon that has it. */
ifpp_err station_daemon_claim(const char *store_path, const char *mes_path, int *fd, char *why, size_t why_len);

/*
 * *pid: the daemon that owns the store (sock, cap bytes: its MES socket path as it wrote it), *fd -1; or
 * *pid 0 and, unless no lock file can be made beside the store, *fd a read lock held until it is closed.
 */
ifpp_err station_daemon_guard(const char *store_path, int *fd, long *pid, char *sock, size_t cap, char *why,
                              size_t why_len);

#endif
