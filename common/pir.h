/*
 * pir.h -- the Profile Installation Result (SGP.22 ProfileInstallationResult, 'BF37').
 *
 * The PIR is the eUICC's own signed statement of what happened to one BPP, and the only
 * evidence the station may record as "installed" or "failed" (DMF02) and forward to the
 * SM-DPf (ESBPP03, DPFF06). pir_parse() reads it strictly; pir_verify() checks
 * euiccSignPIR over the DER of 'BF27' with the eUICC's key (docs/es10f.md "The PIR").
 */
#ifndef IFPP_PIR_H
#define IFPP_PIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include "cert.h"
#include "crypto.h"
#include "err.h"

typedef struct {
    const uint8_t *raw;  /* the whole BF37 TLV (points into the parsed buffer) */
    size_t raw_len;
    const uint8_t *signed_data; /* the BF27 TLV the signature covers */
    size_t signed_len;
    const uint8_t *signature;   /* r||s */
    size_t signature_len;
    uint8_t transaction_id[16];
    size_t transaction_id_len;
    uint64_t seq_number;        /* notification sequence number, for NotificationSent */
    bool has_iccid;
    uint8_t iccid[10];          /* EF.ICCID form, as in NotificationMetadata */
    uint8_t smdp_oid[64];       /* smdpOid's content octets (SGP.22: as in CERT.DPpb); 0 bytes: absent */
    size_t smdp_oid_len;
    const uint8_t *sima_response; /* simaResponse's content: one or more EUICCResponse SEQUENCEs */
    size_t sima_response_len;   /* 0: absent (allowed in an error PIR only) */
    size_t sima_count;          /* how many EUICCResponse it holds */
    bool success;
    uint8_t isdp_aid[16];       /* success */
    size_t isdp_aid_len;
    uint8_t bpp_command_id;     /* error: SGP.22 BppCommandId */
    uint8_t error_reason;       /* error: SGP.22 ErrorReason */
} pir_info;

/*
 * Parses exactly one BF37 TLV of n bytes, strictly: smdpOid when present, and simaResponse
 * (mandatory on success) must hold one or more SAIP EUICCResponse SEQUENCEs, each starting
 * with its peStatus list ('30 { A0 { 30 { 80 status ... } ... } ... }').
 */
ifpp_err pir_parse(const uint8_t *buf, size_t n, pir_info *out);

/* Verifies euiccSignPIR with the eUICC's public key (from its verified certificate). */
ifpp_err pir_verify(const pir_info *pir, const crypto_key *euicc_key);

/*
 * The full DPFF06 check: euicc_cert chains to ci through one of the EUM certificates with the
 * eUICC role, and the PIR's signature verifies with its key. why names what failed.
 */
ifpp_err pir_check(const pir_info *pir, const cert *euicc_cert, const cert *const *eums, size_t n_eums,
                   const cert *ci, time_t now, char *why, size_t why_len);

/*
 * Parses n bytes as the content of a simaResponse: one or more EUICCResponse (SAIP PEDefinitions)
 * and nothing else; *count gets how many. IFPP_E_TLV_* naming the first thing that is not one.
 */
ifpp_err pir_parse_sima_response(const uint8_t *p, size_t n, size_t *count);

/*
 * Checks that a PIR belongs to the vault record it is recorded against: its ICCID is the record's
 * (when the PIR carries one) and its smdpOid is the registeredID in the SM-DPf's binding
 * certificate dpf_pb (when dpf_pb is given: a PIR without smdpOid then fails, and so does a
 * certificate without one). IFPP_E_SIGNATURE with both values in why on a mismatch (SGP.22 PIR
 * iccid and smdpOid "same value as in CERT.DPpb.ECDSA").
 */
ifpp_err pir_match_vault(const pir_info *pir, const uint8_t iccid[10], const cert *dpf_pb, char *why, size_t why_len);

/* SGP.22 ErrorReason as text ("invalidSignature", "installFailedDueToInterruption", ...). */
const char *pir_error_reason_str(uint8_t reason);

/* SGP.22 BppCommandId as text ("initialiseSecureChannel", ...). */
const char *pir_command_str(uint8_t cmd);

#endif
