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
    const uint8_t *iccid;         /* 10 bytes, as in EF.ICCID */
    const char *service_provider;
    const char *profile_name;
    size_t content_len;           /* random profile content, SGP.41 test sizes 8..64 KiB */
    bool replace_session_keys;    /* include A2 ReplaceSessionKeys */
} smdpf_bpp_params;

/* Makes one BoundProfilePackage ('BF36' TLV) into a malloc'd buffer. */
ifpp_err smdpf_make_bpp(const smdpf_bpp_params *p, uint8_t **bpp, size_t *n);

#endif
