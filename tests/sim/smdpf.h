/*
 * smdpf.h -- the test SM-DPf: makes real Bound Profile Packages, the signed BPP vault, and
 * verifies Profile Loading Reports as an SM-DPf must (DPFF06).
 *
 * Binding follows DESIGN.md "Binding" and docs/es10f.md: a fresh otPK.DP per BPP (PFS,
 * GENS06), smdpSign by SK.DPpb over the InitialiseSecureChannel data and the eUICC's
 * One-time public Key, session keys from ECKA + the SGP.22 KDF, and every segment
 * protected with common/bsp.h. A test tool: the station never links it.
 */
#ifndef IFPP_SMDPF_H
#define IFPP_SMDPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "crypto.h"
#include "err.h"

typedef struct {
    const crypto_key *dpf_pb_key; /* SK.DPpb.ECDSA: signs smdpSign */
    const uint8_t *euicc_otpk;    /* otPK.EUICC.ECKA (65 bytes) the BPP is bound to */
    crypto_curve curve;           /* of that One-time Key */
    const uint8_t *eid;           /* 16 bytes: enters the KDF */
    const uint8_t *transaction_id;
    size_t transaction_id_len;    /* 1..16 */
    const uint8_t *iccid;         /* 10 bytes, as in EF.ICCID: a valid ICCID (common/iccid.h) */
    const char *service_provider;
    const char *profile_name;
    size_t content_len;           /* profile size, SGP.41 test sizes 8..64 KiB (smdpf_make_profile) */
    bool replace_session_keys;    /* include A2 ReplaceSessionKeys */
    const uint8_t *profile_iccid; /* negative tests: the profile's ICCID if not iccid (NULL: iccid) */
    size_t segment_plain;         /* negative tests: profile bytes per '86' segment (0: as many as BSP takes) */
} smdpf_bpp_params;

/* A fresh random ICCID, "8949" + 14 random digits + the Luhn digit, in EF.ICCID form. */
ifpp_err smdpf_random_iccid(uint8_t iccid[10]);

/*
 * Makes the profile content: a small SIMalliance/TCA eUICC Interoperable Profile (PEDefinitions,
 * DER) -- ProfileHeader with the ICCID (plain BCD), the MF PE from its template with EF.ICCID
 * holding the ICCID (EF form), a PE-NonStandard of random filler so the whole is size bytes
 * (as near as DER lengths allow; never more), and PE-End. Into a malloc'd buffer.
 */
ifpp_err smdpf_make_profile(const uint8_t iccid[10], const char *profile_type, size_t size, uint8_t **out, size_t *n);

/* Makes one BoundProfilePackage ('BF36' TLV) into a malloc'd buffer; IFPP_E_ARG for an ICCID that is not one. */
ifpp_err smdpf_make_bpp(const smdpf_bpp_params *p, uint8_t **bpp, size_t *n);

/* What the SM-DPf was asked for and what it made, for the vault summary. */
typedef struct {
    size_t items;        /* BPP request items read */
    size_t bpps;         /* BPPs bound and put into the vault */
    size_t refused;      /* items refused (proof or chain did not verify, DPFF10) */
} smdpf_vault_summary;

/*
 * Reads a signed BPP request (ESBPP02; signer: a station under the DM root in pki_dir),
 * checks every item's eUICC certificate (to the CI via the request's EUM certificates) and
 * One-time Key proof (GENS12, DPFF10), binds one BPP per accepted item -- a fresh ICCID
 * (smdpf_random_iccid) and an Interoperable Profile of about content_len bytes
 * (smdpf_make_profile) -- and seals the BPP vault (ESBPP01) with the SM-DPf auth key.
 */
ifpp_err smdpf_make_vault(const char *pki_dir, const uint8_t *request, size_t request_len, size_t content_len,
                          uint8_t **vault, size_t *vault_len, smdpf_vault_summary *summary, char *why,
                          size_t why_len);

/*
 * How the SM-DPf makes a vault. An SM-DPf whose certificates hang under an SM-DP sub-CA (the PKI
 * has dpf-subca, ifpp-testpki --dpf-sub-ca) puts the sub-CA into the vault's smdpSubCaCertificates
 * and into the bundle's signer chain, as SGP.22 v3 sends CERT.DPSubCA with CERT.DPpb. The rest makes
 * deliberately wrong vaults for negative tests.
 */
typedef struct {
    const char *pki_dir;
    size_t content_len;          /* profile size per BPP */
    bool omit_sub_ca;            /* leave smdpSubCaCertificates out although the SM-DPf is under a sub-CA */
    const cert *sub_ca_instead;  /* put this certificate into smdpSubCaCertificates instead */
    size_t bad_iccid_item;       /* 1-based item whose vault record gets an ICCID with a broken Luhn digit (0: none) */
    size_t other_iccid_item;     /* 1-based item whose vault record names another valid ICCID than its BPP (0: none) */
    size_t many_segments_item;   /* 1-based item whose BPP gets 16-byte profile segments, more commands than a session loads */
} smdpf_vault_opts;

/* smdpf_make_vault as o says. */
ifpp_err smdpf_make_vault_opts(const smdpf_vault_opts *o, const uint8_t *request, size_t request_len, uint8_t **vault,
                               size_t *vault_len, smdpf_vault_summary *summary, char *why, size_t why_len);

typedef struct {
    size_t results;      /* LoadingResult records */
    size_t pirs_ok;      /* PIRs whose eUICC signature and chain verified */
    size_t installed;    /* of those, success PIRs */
    size_t failed;       /* of those, error PIRs */
    size_t no_result;    /* NoResultRecord entries */
    size_t bad;          /* PIRs that did not verify */
} smdpf_report_summary;

/*
 * Verifies a Profile Loading Report as an SM-DPf must (DPFF05/DPFF06): the station's signature
 * under the DM root, then every PIR's eUICC signature and the eUICC certificate's chain to the
 * CI. Fills the summary; IFPP_OK only if every PIR verified.
 */
ifpp_err smdpf_verify_report(const char *pki_dir, const uint8_t *report, size_t report_len,
                             smdpf_report_summary *summary, char *why, size_t why_len);

#endif
