/*
 * store.h -- the station's one durable authority: SQLite, and the only SQL in the project.
 *
 * What it holds: the eUICCs the EUM announced and their One-time public Keys (with their
 * GENS12 proofs), the BPPs of imported vaults and each one's state, provisioning sessions,
 * the PIRs exactly as the eUICCs signed them, records of profiles that produced none, and a
 * hash-chained audit log of every state change.
 *
 * Exactly once (GENS04, GENS08). A BPP moves
 *
 *     available -> reserved -> installed | failed | in_doubt
 *     in_doubt  -> installed | failed | available      (only from the eUICC's evidence)
 *     available -> transferred | deleted
 *     installed -> deleted      (use case A.4: only with the eUICC-signed deletion notification,
 *                                recorded in the same transaction: store_record_deletion)
 *
 * and every move is one IMMEDIATE transaction, committed with synchronous=FULL in WAL mode
 * before the caller takes the next step, naming the session, slot, EID and DUT serial. The
 * move is a conditional UPDATE on the state the caller expects, so two sessions can never
 * both reserve one BPP, and the audit row for the move is written in the same transaction,
 * chained to the previous row by SHA-256, so a gap or an edit shows; the chain's head (entry
 * number and hash) travels in every signed bundle the station exports, so a rewrite or a
 * truncation of the whole tail shows too (docs/store.md).
 *
 * BPP bytes (issue 16) live outside SQLite, in the store's append-only data file <store>.bpp, synced
 * before the transaction that inserts the rows holding their offset, length and SHA-256; a read is one
 * pread, checked against that hash (docs/store.md, "BPP bytes outside SQLite").
 *
 * Threads: a store* is one SQLite connection and belongs to the thread that opened it; every
 * call from another thread is refused with IFPP_E_ARG. Each slot thread opens its own; the daemon's
 * slots send their writes through one committer (store_group_*, group commit) so that the moves
 * waiting at one moment share one sync.
 * Errors: IFPP_E_BUSY when another process holds the write lock past the busy timeout,
 * IFPP_E_IO for a damaged, unreadable or full store; store_errmsg() says which, with the path.
 */
#ifndef IFPP_STORE_H
#define IFPP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct store store;

typedef enum {
    BPP_AVAILABLE = 0,
    BPP_RESERVED,
    BPP_INSTALLED,
    BPP_FAILED,
    BPP_IN_DOUBT,
    BPP_TRANSFERRED,
    BPP_DELETED,
    BPP_STATE__COUNT
} bpp_state;

/* "available", "reserved", ... as stored. */
const char *bpp_state_name(bpp_state s);

/* True if the state machine allows from -> to. */
bool bpp_transition_allowed(bpp_state from, bpp_state to);

/* Who moved a BPP, for the row and the audit log. */
typedef struct {
    const char *session;    /* session id, NULL outside a session (imports, recovery) */
    const char *slot;       /* fixture slot name */
    const char *dut_serial; /* as scanned or sent by the MES */
    const char *reason;     /* free text for people: why this move */
} store_actor;

/* One BPP as the vault delivered it (the BPP itself stays a blob the station never opens). */
typedef struct {
    uint8_t transaction_id[16];
    size_t transaction_id_len;
    uint8_t eid[16];
    uint8_t otpk[65];
    uint8_t iccid[10];
    char profile_type[65];
    uint8_t bpp_hash[32];
    const uint8_t *bpp;     /* in: for store_add_bpp; out: NULL (fetch with store_bpp_blob) */
    size_t bpp_len;
    char vault_id[33];      /* hex of the vault's id */
    bpp_state state;
    const uint8_t *bpp_sha256; /* in, optional: SHA-256 of bpp the caller just computed (NULL: the store hashes) */
} store_bpp;

/*
 * Opens (creating or migrating) the store at path for the calling thread: WAL, synchronous=FULL,
 * foreign keys on, a quick integrity check when the file is small enough for it to be cheap.
 * Creation and migration are safe against other processes opening the same path at once.
 */
ifpp_err store_open(const char *path, store **out, char *why, size_t why_len);

/*
 * Opens an existing store read-only (for status, audit, report): never creates one (IFPP_E_NOT_FOUND
 * for a missing path), never migrates (IFPP_E_RANGE for another schema), works on a read-only mount.
 */
ifpp_err store_open_readonly(const char *path, store **out, char *why, size_t why_len);

/* The calling thread's last store failure, naming the store and what was being done ("" if none). */
const char *store_errmsg(const store *s);

/* How long a call waits for another process's write lock before IFPP_E_BUSY (default 15 s). */
void store_set_busy_timeout(store *s, int ms);

/* Runs PRAGMA quick_check over the whole file; IFPP_E_IO with why naming the damage. */
ifpp_err store_check_integrity(store *s, char *why, size_t why_len);

/* The BPP data file beside the store: <store>.bpp, part of the store's state (docs/store.md). */
#define STORE_BPP_SUFFIX ".bpp"

/* True if path is the store's file, its -wal, -shm or -journal, or its BPP data file (same inode): never write
 * an output there. */
bool store_owns_path(const store *s, const char *path);

/* Closes the store (NULL is fine). */
void store_close(store *s);

/* The schema version the file is at (PRAGMA user_version). */
int store_schema_version(store *s);

/*
 * Runs fn inside one IMMEDIATE transaction: commit if it returns IFPP_OK, roll back otherwise.
 * Nested calls join the outer transaction (so a whole bundle imports all or nothing).
 */
ifpp_err store_transaction(store *s, ifpp_err (*fn)(store *s, void *arg), void *arg);

/* Runs fn inside one read transaction (a consistent snapshot; nothing may be written). */
ifpp_err store_read(store *s, ifpp_err (*fn)(store *s, void *arg), void *arg);

/* Adds an eUICC (idempotent for identical data; IFPP_E_ARG if the EID exists with other data). */
ifpp_err store_add_euicc(store *s, const uint8_t eid[16], const uint8_t *cert, size_t cert_len, const uint8_t *info2,
                         size_t info2_len);

/* Adds a One-time public Key of an eUICC with its proof (idempotent). */
ifpp_err store_add_otk(store *s, const uint8_t eid[16], const uint8_t otpk[65], const uint8_t proof[64]);

/* True if the store knows this otPK for this eUICC (false also on a store error: prefer store_find_otk). */
bool store_has_otk(store *s, const uint8_t eid[16], const uint8_t otpk[65]);

/* *found = whether the store knows this otPK for this eUICC; a store error is an error. */
ifpp_err store_find_otk(store *s, const uint8_t eid[16], const uint8_t otpk[65], bool *found);

/*
 * Adds a BPP as available, its bytes appended to the store's data file (synced before the row commits).
 * IFPP_OK if new; IFPP_E_ARG (with why) if its transaction id or its
 * One-time Key already carries a different BPP (GENS08: one key, one profile); an identical
 * BPP already present is reported by *duplicate = true and not added again.
 */
ifpp_err store_add_bpp(store *s, const store_bpp *b, bool *duplicate, char *why, size_t why_len);

/*
 * Reserves, in one transaction, an available BPP for eid (and profile_type, if not NULL:
 * use case A.3), oldest first; out gets it. IFPP_E_NOT_FOUND if there is none.
 */
ifpp_err bpp_reserve(store *s, const uint8_t eid[16], const char *profile_type, const store_actor *who,
                     store_bpp *out);

/* Moves one BPP from `from` to `to` in one transaction; IFPP_E_RANGE if it was not in `from`. */
ifpp_err bpp_move(store *s, const uint8_t *txid, size_t txid_len, bpp_state from, bpp_state to,
                  const store_actor *who);

/* Records the eUICC-signed PIR and moves the BPP to installed or failed, in one transaction. */
ifpp_err store_record_pir(store *s, const uint8_t *txid, size_t txid_len, const uint8_t *pir, size_t pir_len,
                          bool success, bpp_state from, const store_actor *who);

/*
 * A vault's BPPs, streamed in without the write lock (issue 16): store_bpp_stage_begin claims the store's BPP
 * data file (one import at a time; IFPP_E_BUSY after the busy timeout); store_bpp_stage_add appends a BPP's
 * bytes to it and stages its row (an identical BPP already stored: *duplicate, nothing appended; a conflict as
 * store_add_bpp); store_bpp_stage_commit syncs the file and, in one transaction, adds every staged row (checked
 * again) and then runs fn (NULL: none) -- all or nothing; store_bpp_stage_abort forgets the stage and cuts the
 * file back. Memory stays flat: the staged rows are in a TEMP table.
 */
ifpp_err store_bpp_stage_begin(store *s);
ifpp_err store_bpp_stage_add(store *s, const store_bpp *b, bool *duplicate, char *why, size_t why_len);
ifpp_err store_bpp_stage_commit(store *s, ifpp_err (*fn)(store *s, void *arg), void *arg, size_t *added,
                                size_t *duplicate, char *why, size_t why_len);
void store_bpp_stage_abort(store *s);

/* Reads one BPP's row (no blob). */
ifpp_err store_get_bpp(store *s, const uint8_t *txid, size_t txid_len, store_bpp *out);

/*
 * Copies a BPP's bytes into a malloc'd buffer: one read from the store's data file, checked against the
 * SHA-256 recorded at import (IFPP_E_SIGNATURE for bytes that differ, IFPP_E_IO for a missing or short
 * file; store_errmsg names the BPP and the file). Rows from before schema 7 are read from the table.
 */
ifpp_err store_bpp_blob(store *s, const uint8_t *txid, size_t txid_len, uint8_t **out, size_t *n);

/* One certificate's DER (malloc'd when the store hands it out). */
typedef struct {
    uint8_t *der;
    size_t len;
} store_der;

#define STORE_MAX_SUB_CAS 4 /* SM-DP sub-CA certificates kept with one vault */

/*
 * Records an imported vault, the SM-DPf binding certificate its BPPs are forwarded with and the
 * n_sub (0..STORE_MAX_SUB_CAS) SM-DP sub-CA certificates sent with it, issuer first.
 * *known = true if the id was already there: IFPP_OK for the same bundle (a re-import is a
 * no-op), IFPP_E_ARG for a different one under the same id (a conflicting vault).
 */
ifpp_err store_add_vault(store *s, const char *vault_id, const uint8_t *dpf_pb_cert, size_t cert_len,
                         const store_der *sub_cas, size_t n_sub, const uint8_t bundle_hash[32], bool *known);

/* The CERT.DPpb (DER, malloc'd) of a vault. */
ifpp_err store_vault_pb_cert(store *s, const char *vault_id, uint8_t **der, size_t *n);

/* A vault's sub-CA certificates in order (at most max; more is IFPP_E_RANGE); free them with store_der_free. */
ifpp_err store_vault_sub_cas(store *s, const char *vault_id, store_der *out, size_t max, size_t *n);

/* Frees the DERs of n certificates from store_vault_sub_cas (not the array). */
void store_der_free(store_der *d, size_t n);

/* The eUICC certificate (DER, malloc'd) the EUM's package delivered for eid. */
ifpp_err store_euicc_cert(store *s, const uint8_t eid[16], uint8_t **der, size_t *n);

/* Transaction ids (up to max) of this eUICC's BPPs left reserved or in_doubt by a broken session. */
ifpp_err store_unresolved(store *s, const uint8_t eid[16], uint8_t (*txids)[16], size_t *txid_lens, size_t max,
                          size_t *n);

/* Remembers an EUM certificate (for BPP requests and reports: the SM-DPf verifies eUICCs with it). */
ifpp_err store_add_eum_cert(store *s, const uint8_t *der, size_t n);

/* Calls fn for every EUM certificate; stops at the first error fn returns. */
ifpp_err store_each_eum_cert(store *s, ifpp_err (*fn)(void *arg, const uint8_t *der, size_t n), void *arg);

/* One One-time Key with its eUICC's data (pointers valid only during the callback). */
typedef struct {
    const uint8_t *eid, *cert, *info2, *otpk, *proof;
    size_t cert_len, info2_len;
} store_key_record;

/* Calls fn for every One-time Key no BPP is bound to yet (what a BPP request asks for). */
ifpp_err store_each_unbound_key(store *s, ifpp_err (*fn)(void *arg, const store_key_record *k), void *arg);

/* Transaction ids (up to max) of this eUICC's available BPPs. */
ifpp_err store_available(store *s, const uint8_t eid[16], uint8_t (*txids)[16], size_t *txid_lens, size_t max,
                         size_t *n);

/* One BPP in a final state, for the Profile Loading Report (pointers valid during the callback). */
typedef struct {
    const uint8_t *txid, *eid, *pir, *euicc_cert;
    size_t txid_len, pir_len, euicc_cert_len; /* pir_len 0: no PIR (deleted, or failed without one) */
    bpp_state state;
    const char *dut_serial, *updated_at;
} store_result_record;

/* Calls fn for every BPP installed, failed or deleted whose last move was on day ("YYYY-MM-DD", NULL: any). */
ifpp_err store_each_result(store *s, const char *day, ifpp_err (*fn)(void *arg, const store_result_record *r),
                           void *arg);

/* Counts one eUICC's BPPs per state: counts[state] (a DUT's history, for the in-doubt and one-profile rules). */
ifpp_err store_eid_counts(store *s, const uint8_t eid[16], size_t counts[BPP_STATE__COUNT]);

/* Counts BPPs in a state (all EIDs). */
ifpp_err store_count_bpps(store *s, bpp_state st, size_t *n);

/* Walks the audit log and checks every hash link; *entries gets the count. */
ifpp_err store_audit_verify(store *s, size_t *entries, char *why, size_t why_len);

/* The audit chain's head: its last entry's number and hash (0 and zeros for an empty log). */
typedef struct {
    uint64_t entry;
    uint8_t hash[32];
} store_anchor;

/* The head of the audit chain now, to be carried in a signed bundle. */
ifpp_err store_audit_head(store *s, store_anchor *head);

/*
 * Checks the audit log against an anchor read back from a signed bundle (NULL: links only): every
 * link, the anchored entry present with the anchored hash (a rewritten or truncated log fails),
 * and every BPP row's state equal to the state its audit entries replay to (an edited state fails).
 * IFPP_E_SIGNATURE with why naming the entry or BPP; IFPP_E_IO/IFPP_E_BUSY if it cannot be read whole.
 */
ifpp_err store_audit_check(store *s, const store_anchor *anchor, size_t *entries, char *why, size_t why_len);

/* ---- what the operator reads: stock, open BPPs, the day's results, the audit log (ifppctl status, audit --list) */

/*
 * Calls fn for each profile type ever imported with its count of available BPPs (the vault stock; 0 when
 * exhausted), in name order; stops at fn's first error.
 */
ifpp_err store_each_stock(store *s, ifpp_err (*fn)(void *arg, const char *profile_type, size_t available), void *arg);

/* One BPP left reserved or in_doubt (pointers valid during the callback; slot and serial may be NULL). */
typedef struct {
    const uint8_t *txid, *eid;
    size_t txid_len;
    bpp_state state;
    const char *profile_type, *slot, *dut_serial, *updated_at; /* updated_at: "YYYY-MM-DDTHH:MM:SSZ" */
} store_open_record;

/* Calls fn for every BPP reserved or in_doubt, the oldest move first; *total counts them all, fn sees up to max. */
ifpp_err store_each_open_bpp(store *s, size_t max, ifpp_err (*fn)(void *arg, const store_open_record *r), void *arg,
                             size_t *total);

/* Counts the BPPs per state whose last move was on day ("YYYY-MM-DD", UTC): counts[state]. */
ifpp_err store_day_counts(store *s, const char *day, size_t counts[BPP_STATE__COUNT]);

/* Which audit entries store_each_audit lists: every given field must match (NULL / 0: any). */
typedef struct {
    const char *since;      /* entries at or after this UTC time ("YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ") */
    const char *event;      /* "bpp_state", "bpp_added", "migrate", ... */
    const char *dut_serial;
    const uint8_t *eid;     /* 16 bytes */
    const uint8_t *txid;
    size_t txid_len;
    size_t limit;           /* at most this many, the newest (0: STORE_AUDIT_LIST_MAX) */
} store_audit_filter;

#define STORE_AUDIT_LIST_MAX 10000

/* One audit entry's fields as stored (pointers valid during the callback; absent fields NULL). */
typedef struct {
    uint64_t id;
    int form;               /* 1: an older text entry (detail), 2: fields */
    const char *at, *event, *from_state, *to_state, *session, *slot, *dut_serial, *reason, *object, *detail;
    const uint8_t *txid, *eid;
    size_t txid_len, eid_len;
} store_audit_entry;

/*
 * Calls fn for the newest filter->limit entries matching filter, oldest of them first; *matched
 * counts every match. Lists only: store_audit_check is what verifies the chain.
 */
ifpp_err store_each_audit(store *s, const store_audit_filter *filter,
                          ifpp_err (*fn)(void *arg, const store_audit_entry *e), void *arg, size_t *matched);

/* ---- the day's DUT records, for the CSV and HTML reports on removable media (issue 15) */

/* One session's result (pointers valid during the callback; slot, serial, started_at, reason may be NULL). */
typedef struct {
    const uint8_t *txid, *eid, *iccid; /* iccid: 10 bytes, EF.ICCID form */
    size_t txid_len;
    bpp_state state;
    const char *profile_type, *slot, *dut_serial;
    const char *started_at, *updated_at; /* "YYYY-MM-DDTHH:MM:SSZ": first reserved, last move */
    const char *reason;                  /* the last audit entry's reason */
    const char *conn_test, *conn_detail; /* the last EUICCF05 test's outcome and detail; NULL: none ran */
    bool conn_required;                  /* that test was conn-test=required: not passed means the DUT failed */
    bool removed;                        /* deleted after it was installed (use case A.4: its notification recorded) */
} store_dut_record;

/*
 * Calls fn, streaming, for every BPP a session touched (installed, failed, in_doubt, reserved) or
 * production retired (deleted) whose last move was on day ("YYYY-MM-DD", NULL: any), oldest first.
 */
ifpp_err store_each_dut(store *s, const char *day, ifpp_err (*fn)(void *arg, const store_dut_record *r), void *arg);

/* The path the store was opened with (its filesystem is never a report's destination). */
const char *store_path(const store *s);

/* ---- EUICCF05 connectivity tests (issue 15) */

#define STORE_CONN_EVIDENCE_MAX 1024 /* the longest signed answer kept (es10 refuses over 512) */

typedef enum {
    STORE_CONN_SKIPPED = 0, /* not offered by the eUICC */
    STORE_CONN_PASSED,      /* the eUICC signed ok */
    STORE_CONN_FAILED,      /* the eUICC signed another result */
    STORE_CONN_REFUSED,     /* no answer the station could accept (why in detail) */
    STORE_CONN__COUNT
} store_conn_outcome;

/* One test, as the session recorded it. */
typedef struct {
    const uint8_t *txid, *eid, *iccid; /* the BPP tested, its eUICC, its ICCID (10 bytes) */
    size_t txid_len;
    bool required;                     /* conn-test=required (else if-offered) */
    store_conn_outcome outcome;
    int result;                        /* the signed testResult; -1 unless passed or failed */
    const char *detail;                /* for people */
    const uint8_t *nonce;              /* the station's nonce (16 bytes), NULL if none was sent */
    const uint8_t *evidence;           /* the eUICC-signed 'BF75' answer: exactly for passed and failed */
    size_t evidence_len;
    const store_actor *who;
} store_conn_test;

/* Records one test and its audit entry in one transaction; IFPP_E_ARG if its fields disagree. */
ifpp_err store_record_conn_test(store *s, const store_conn_test *t);

/* Tests recorded on day ("YYYY-MM-DD", NULL: any), by outcome. */
ifpp_err store_conn_test_counts(store *s, const char *day, size_t counts[STORE_CONN__COUNT]);

/* A BPP's last recorded test, as read back. */
typedef struct {
    store_conn_outcome outcome;
    int result;
    char detail[256];
    bool has_nonce;
    uint8_t nonce[16];
    uint8_t evidence[STORE_CONN_EVIDENCE_MAX];
    size_t evidence_len;
} store_conn_test_row;

/* The last test recorded for a BPP; IFPP_E_NOT_FOUND if none. */
ifpp_err store_last_conn_test(store *s, const uint8_t *txid, size_t txid_len, store_conn_test_row *out);
/* ---- use case A.4: deletion jobs and the eUICC-signed deletion notifications (issue 15 item 4) ---- */

typedef enum { STORE_DELETION_BY_SERIAL = 0, STORE_DELETION_BY_EID } store_deletion_kind;

/*
 * Starts deletion job `name` over a list (its SHA-256 and line count), or finds it again: *resumed =
 * true if it exists with the same kind and list. IFPP_E_ARG (store_errmsg says why) if the name exists
 * with another list or kind. The start is audited (event "deletion_job").
 */
ifpp_err store_deletion_job_begin(store *s, const char *name, store_deletion_kind kind, const uint8_t list_hash[32],
                                  size_t lines, bool *resumed);

/* *done = whether line (from 1) of job was completed before. */
ifpp_err store_deletion_item_done(store *s, const char *job, size_t line, bool *done);

/* Records the outcome of one line (done, or failed with why), with the number of profiles it deleted. */
ifpp_err store_deletion_item_set(store *s, const char *job, size_t line, const char *ident, bool done,
                                 size_t profiles, const char *reason);

/* Marks the job finished (every line done); audited. */
ifpp_err store_deletion_job_finish(store *s, const char *job);

/* The eUICC a profile was installed on for DUT serial: IFPP_E_NOT_FOUND if none, IFPP_E_RANGE if several. */
ifpp_err store_eid_of_serial(store *s, const char *serial, uint8_t eid[16]);

/* One profile this station installed on an eUICC, as a deletion sees it. */
typedef struct {
    uint8_t txid[16];
    size_t txid_len;
    uint8_t iccid[10];
    bpp_state state;      /* installed, or deleted (then recorded is true) */
    bool recorded;        /* its deletion notification is in the store */
    uint64_t seq;         /* the recorded notification's seqNumber */
} store_deletion_target;

/* eid's BPPs installed, or deleted with a recorded notification (at most max; more is IFPP_E_RANGE). */
ifpp_err store_deletion_targets(store *s, const uint8_t eid[16], store_deletion_target *out, size_t max, size_t *n);

/*
 * In one transaction: the eUICC-signed deletion notification recorded for the BPP, and the BPP moved
 * installed -> deleted (audited, naming the job). IFPP_E_RANGE if the BPP was not installed.
 */
ifpp_err store_record_deletion(store *s, const uint8_t *txid, size_t txid_len, uint64_t seq,
                               const uint8_t *notification, size_t n, const char *job, const store_actor *who);

/* One recorded deletion (pointers valid during the callback; dut_serial may be NULL). */
typedef struct {
    const uint8_t *txid, *eid, *iccid, *notification; /* iccid: 10 bytes */
    size_t txid_len, notification_len;
    const char *dut_serial, *job, *received_at;       /* received_at: "YYYY-MM-DDTHH:MM:SSZ" */
} store_deletion_record;

/* The schema version store_open migrates a store to (tests compare store_schema_version() with it). */
int store_schema_latest(void);

/* Calls fn, streaming, for every recorded deletion of job (NULL: every job), oldest first. */
ifpp_err store_each_deletion(store *s, const char *job, ifpp_err (*fn)(void *arg, const store_deletion_record *r),
                             void *arg);
/* ---- group commit (issue 13 item 5, issue 16 item 4) -------------------------------------------------------
 *
 * Many slot threads each wait for their own durable commit; under synchronous=FULL each commit is a
 * sync of the WAL, so the line waits on the disk one DUT at a time. A group is one writer connection on
 * its own thread (the committer): a connection joined to it sends every outermost store_transaction()
 * there and waits. The committer takes everything waiting, runs each transaction in a SAVEPOINT of its
 * own inside one BEGIN IMMEDIATE .. COMMIT (one sync for all), and wakes each waiter with its own result
 * once the COMMIT is on disk. A transaction that fails rolls back to its savepoint alone; the others in
 * the batch commit. Reads stay on the caller's own connection. docs/store.md says why.
 *
 * A transaction function run through a group runs on the committer's thread with the committer's
 * connection, and may run more than once if SQLite aborts a whole batch: it must act only through the
 * store* it is given and its own arg (as every one in store.c does).
 */
typedef struct store_group store_group;

/* Starts a committer on the store at path (opening, creating or migrating it as store_open does). */
ifpp_err store_group_open(const char *path, store_group **out, char *why, size_t why_len);

/* Sends s's writes through g from now on; s must be a writable connection on the same store file. */
ifpp_err store_group_join(store *s, store_group *g);

/* How long the committer waits for another process's write lock before its batch fails IFPP_E_BUSY. */
void store_group_set_busy_timeout(store_group *g, int ms);

/* Runs what is queued, then stops the committer; no connection may use g afterwards (NULL is fine). */
void store_group_close(store_group *g);

/* What a group has done: batches committed, transactions in them (applied or failed), the largest batch. */
typedef struct {
    uint64_t batches, transactions, failed, max_batch;
    size_t queued; /* waiting now */
} store_group_stats;

/* A snapshot of g's counters. */
void store_group_get_stats(store_group *g, store_group_stats *out);

/* Durable transactions committed for this connection (directly or through its group) since it was opened. */
uint64_t store_commits(const store *s);

#endif
