/*
 * import.h -- bundles in from removable media: the EUM's eUICC data package (ESED201) and the
 * SM-DPf's BPP vault (ESBPP01), verified before trust and stored all or nothing.
 *
 * Order of trust: the bundle's structure, type, signer chain with its role and signature, before
 * a record is parsed or the store's write lock taken (an unsigned file costs one hash), then
 * every record's own checks (each eUICC certificate under the signing EUM, each One-time Key
 * proof by its eUICC: GENS12; the vault's CERT.DPpb chained to the CI through the vault's SM-DP
 * sub-CAs, issuer first, which are kept with the vault for PrepareBppLoad; each vault record's ICCID
 * (common/iccid.h), each BPP's hash and shape -- no more load commands than a session sends,
 * ES10_MAX_BPP_COMMANDS -- its eUICC and One-time Key known to the store and never used by another
 * BPP: GENS08), then one store write per record inside one transaction. Any refusal names the
 * record and leaves the store as it was.
 *
 * Both are read one record at a time (common/bundle_stream.h) inside one store transaction that
 * commits only after the bundle's chain and signature verified at its end: memory is bounded by
 * the largest record, not by the size of the vault.
 */
#ifndef IFPP_IMPORT_H
#define IFPP_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "store.h"

typedef struct {
    size_t records;   /* eUICCs or BPPs in the bundle */
    size_t added;     /* new in the store */
    size_t duplicate; /* already there, identical (a re-import) */
    size_t keys;      /* One-time Keys (data package) */
} import_summary;

/* Imports an eUICC data package signed by an EUM under ci. */
ifpp_err import_euicc_data(store *s, const uint8_t *buf, size_t n, const cert *ci, import_summary *sum, char *why,
                           size_t why_len);

/* Imports a BPP vault signed by an SM-DPf under ci; its BPPs become available. */
ifpp_err import_vault(store *s, const uint8_t *buf, size_t n, const cert *ci, import_summary *sum, char *why,
                      size_t why_len);

/* The same, reading the bundle from a file on the removable medium. */
ifpp_err import_euicc_data_file(store *s, const char *path, const cert *ci, import_summary *sum, char *why,
                                size_t why_len);
ifpp_err import_vault_file(store *s, const char *path, const cert *ci, import_summary *sum, char *why, size_t why_len);

#endif
