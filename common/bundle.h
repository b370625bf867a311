/*
 * bundle.h -- the signed files that cross the air gap (docs/ifpp.asn, SignedBundle).
 *
 * Every bundle -- the EUM's eUICC data package (ESED201), the BPP request (ESBPP02), the
 * SM-DPf's BPP vault (ESBPP01), the Profile Loading Report (ESBPP03) -- is one DER
 * SEQUENCE { bundleType OID, [0] content, [1] signer chain, 5F37 signature } and is
 * verified before a byte of its content is trusted: the type, the signer's chain to the
 * configured root with the role the type requires, then the signature over the DER of
 * [0]. bundle_open() hands back the content only when all of that holds.
 *
 * This is the in-memory form used by the test EUM and SM-DPf and by small bundles; the
 * station's import of large vaults streams the same format through the same checks.
 */
#ifndef IFPP_BUNDLE_H
#define IFPP_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cert.h"
#include "crypto.h"
#include "err.h"

typedef enum {
    BUNDLE_EUICC_DATA = 1,     /* EuiccDataPackage, signed by the EUM */
    BUNDLE_BPP_REQUEST = 2,    /* BppRequest, signed by the station */
    BUNDLE_BPP_VAULT = 3,      /* BppVault, signed by the SM-DPf (DPauth) */
    BUNDLE_LOADING_REPORT = 4, /* ProfileLoadingReport, signed by the station */
    BUNDLE_DELETION_REPORT = 5, /* DeletionReport (use case A.4), signed by the station */
} bundle_type;

#define BUNDLE_MAX_CHAIN 4

typedef struct {
    bundle_type type;
    const uint8_t *content; /* the type's SEQUENCE, inside [0]; points into the opened buffer */
    size_t content_len;
    cert *signer;           /* the verified signer certificate (owned) */
} bundle_view;

/* "eUICC data package", "BPP request", "BPP vault", "Profile Loading Report". */
const char *bundle_type_name(bundle_type t);

/* The certificate role a bundle type's signer must hold. */
cert_role bundle_signer_role(bundle_type t);

/*
 * Seals content (one DER SEQUENCE) as a SignedBundle of type t signed with key; chain[0] is
 * the signer's certificate, then its issuers up to (not including) the root. *out is malloc'd.
 */
ifpp_err bundle_seal(bundle_type t, const uint8_t *content, size_t n, const crypto_key *key,
                     const cert *const *chain, size_t n_chain, uint8_t **out, size_t *outlen);

/*
 * Opens buf as a SignedBundle of type t: strict DER, the type OID, the chain to root with the
 * role t requires at time now, the signature. On success v->content points into buf.
 * why (if given) names what failed.
 */
ifpp_err bundle_open(const uint8_t *buf, size_t n, bundle_type t, const cert *root, time_t now,
                     bundle_view *v, char *why, size_t why_len);

/* The DER body of t's OBJECT IDENTIFIER into out; its length (0 if cap is too small). For writers that stream. */
size_t bundle_type_oid(bundle_type t, uint8_t *out, size_t cap);

/* True if oid (the DER body of an OBJECT IDENTIFIER) names bundle type t. */
bool bundle_type_oid_matches(bundle_type t, const uint8_t *oid, size_t n);

/*
 * Checks the part after the content: the [1] signer chain (to root, with t's signer role) and the
 * 5F37 signature over the content whose SHA-256 is digest; n bytes, nothing after them. *signer
 * (if not NULL) gets the verified signer. Shared by bundle_open() and the streaming reader.
 */
ifpp_err bundle_verify_trailer(bundle_type t, const uint8_t *trailer, size_t n, const uint8_t digest[32],
                               const cert *root, time_t now, cert **signer, char *why, size_t why_len);

/* Releases what bundle_open() allocated (the signer). */
void bundle_view_free(bundle_view *v);

#endif
