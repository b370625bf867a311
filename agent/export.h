/*
 * export.h -- bundles out to removable media: the BPP request for the SM-DPf (ESBPP02) and the
 * Profile Loading Report (ESBPP03).
 *
 * The request names every One-time Key no BPP is bound to yet, with its eUICC's certificate,
 * EUICCInfo2 and the GENS12 proof exactly as the EUM delivered them, plus the EUM certificates,
 * so the SM-DPf can check all of it itself (DPFF10). Signed by the station's key, which must be
 * the key of the station certificate. Both bundles carry the audit chain's head (auditAnchor).
 */
#ifndef IFPP_EXPORT_H
#define IFPP_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "cert.h"
#include "crypto.h"
#include "store.h"

/* Builds and signs the BPP request (malloc'd into *out); *items counts the keys asked for. */
ifpp_err export_bpp_request(store *s, const char *station_id, const char *profile_type, const crypto_key *station_key,
                            const cert *station_cert, uint8_t **out, size_t *out_len, size_t *items, char *why,
                            size_t why_len);

typedef struct {
    size_t results;   /* records in the report */
    size_t pirs;      /* of which carry an eUICC-signed PIR */
    size_t no_result; /* of which are NoResultRecords */
} export_summary;

/*
 * Writes the Profile Loading Report (ESBPP03) of day (NULL: everything final) to path: every
 * PIR as the eUICC signed it with its eUICC certificate, a NoResultRecord for every profile
 * without one, the EUM certificates, signed by the station; written atomically (temp, fsync,
 * rename, fsync of the directory) after it was streamed (memory: one record), read back and
 * verified as export_verify_file verifies it under dm_root. A path that is the store or its journal is refused (store_owns_path: the CLI checks the
 * request's output with it too).
 */
ifpp_err export_loading_report(store *s, const char *station_id, const char *day, const crypto_key *station_key,
                               const cert *station_cert, const cert *dm_root, const char *path,
                               export_summary *sum, char *why, size_t why_len);

/*
 * Reads the audit anchor (entry number and hash of the store's audit chain when it was signed)
 * from a station-signed Profile Loading Report or BPP request, after verifying its signature
 * and signer chain under root (the Device Manufacturer root).
 */
ifpp_err export_read_anchor(const uint8_t *buf, size_t n, const cert *root, store_anchor *anchor, char *why,
                            size_t why_len);

/*
 * Checks the store's audit chain and BPP table against the anchor in the report or request at
 * bundle_path (store_audit_check): a truncated or rewritten log, or an edited BPP state, fails.
 */
ifpp_err export_audit_check(store *s, const char *bundle_path, const cert *root, size_t *entries, char *why,
                            size_t why_len);

#include "report_html.h"

/* What export_day_to_media wrote. */
typedef struct {
    export_summary plr;
    report_tables_summary tables;
    size_t stale_removed; /* temporaries of a crashed export removed first */
    char plr_name[160], csv_name[160], html_name[160];
} export_day_summary;

/*
 * The day's reports onto removable media dir (issue 15, items 1-2): the signed Profile Loading
 * Report (ESBPP03, verified before it is written), the CSV of every DUT and the HTML summary,
 * named ifpp-STATION-DAY-{loading-report.der,duts.csv,summary.html}. dir must pass
 * media_open_dest (a mounted filesystem, not the store's); each file is written under a temporary
 * name, fsync'd, read back and compared, renamed, and the directory fsync'd (media.h). The signed
 * report is streamed (bounded memory) and verified from the medium before it gets its name; all
 * three come from one read snapshot of the store, so they count the same results.
 */
ifpp_err export_day_to_media(store *s, const char *station_id, const char *day, const crypto_key *station_key,
                             const cert *station_cert, const cert *dm_root, const char *dir, export_day_summary *sum,
                             char *why, size_t why_len);

#include "bundle.h"

/* What export_verify found. */
typedef struct {
    bundle_type type;
    size_t records;        /* results in a report */
    size_t pirs;           /* PIRs checked (DPFF06: eUICC certificate under an EUM certificate under the CI) */
    size_t pirs_unchecked; /* PIRs only parsed: no CI given */
    size_t no_result;
    size_t deletions;      /* Deletion Report: records, each eUICC-signed notification verified */
    store_anchor anchor;
} export_verify_summary;

/*
 * Checks an exported bundle offline (issue 15 item 3): the station's signature and signer chain
 * under dm_root at time now, the audit anchor, and in a Profile Loading Report every record, every
 * PIR against its eUICC certificate and the report's EUM certificates under ci (NULL: PIRs parsed,
 * counted unchecked) and bound to its record's transaction id. why names the record that failed.
 */
ifpp_err export_verify(const uint8_t *buf, size_t n, const cert *dm_root, const cert *ci, time_t now,
                       export_verify_summary *sum, char *why, size_t why_len);

/* ---- use case A.4: the Deletion Report for the MSP and the customer (issue 15 item 4) ---- */

/* What export_deletion_report wrote. */
typedef struct {
    size_t deletions;     /* records: one per profile deleted, with its eUICC-signed notification */
    size_t stale_removed; /* temporaries of a crashed export removed first (medium only) */
    char name[160];       /* the file's name in its directory */
} export_deletion_summary;

/*
 * Streams the signed Deletion Report (docs/ifpp.asn DeletionReport) of job (NULL: every recorded
 * deletion) in bounded memory: every deletion notification byte for byte as the eUICC signed it,
 * the EUM certificates, the audit anchor, under the station's signature. With medium, dest is a
 * removable medium's directory (media_open_dest) and the file is ifpp-STATION-deletions[-JOB].der;
 * otherwise dest is the file. Either way written under a temporary name, fsync'd, read back and
 * verified under dm_root before it gets its name.
 */
ifpp_err export_deletion_report(store *s, const char *station_id, const char *job, const crypto_key *station_key,
                                const cert *station_cert, const cert *dm_root, const char *dest, bool medium,
                                export_deletion_summary *sum, char *why, size_t why_len);
/*
 * export_verify of the size bytes of f from its position, streamed: the signature first (one hash
 * pass), then one element at a time and the signature again; memory bounded by one element
 * whatever the number of results (issue 16.3).
 */
ifpp_err export_verify_file(FILE *f, size_t size, const cert *dm_root, const cert *ci, time_t now,
                            export_verify_summary *sum, char *why, size_t why_len);

/*
 * export_verify_file on the file at path (a regular file, opened as fs_fopen_regular opens it):
 * *unreadable when it could not be read at all (why names it), as opposed to failing verification.
 */
ifpp_err export_verify_path(const char *path, const cert *dm_root, const cert *ci, time_t now,
                            export_verify_summary *sum, bool *unreadable, char *why, size_t why_len);

#endif
