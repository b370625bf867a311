/*
 * cert.h -- X.509 certificates for the station: parse, name roles, verify chains.
 *
 * Trust in SGP.41 is certificate chains: the EUM's under the GSMA CI (eUICC data, GENS12),
 * the SM-DPf's under the CI (the vault, ESBPP01, and the eUICC's own check of the binding
 * certificate), the eUICC's under the EUM (every PIR, DPFF06), and the Device Manufacturer's
 * own under its root (FPA authorisation EUICCF02, the station's reports ESBPP03).
 *
 * A role is the certificatePolicies OID (SGP.22 §4.5.2.1): id-rspRole = 2.23.146.1.2.1 with
 * ci .0, euicc .1, eum .2, dp-auth .4, dp-pb .5. IFPP adds roles no GSMA OID names yet; they
 * live under the project's UUID arc id-ifpp = 2.25.120392306333479474166067974072028333099,
 * roles .1: DM root .1.1, DM FPA-authorisation .1.2, station report signing .1.3
 * (docs/ifpp.asn). If SGP.42 assigns OIDs, only the table in cert.c changes.
 *
 * cert_verify_chain() is the one place that decides whether a certificate is trusted; it
 * checks the chain to one configured root and the SGP.22 certificate profile it can confirm.
 */
#ifndef IFPP_CERT_H
#define IFPP_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "crypto.h"
#include "err.h"

typedef struct cert cert;

typedef enum {
    CERT_ROLE_CI = 0,   /* GSMA Certificate Issuer (root) */
    CERT_ROLE_EUM,      /* eUICC Manufacturer (sub-CA) */
    CERT_ROLE_EUICC,    /* an eUICC: signs PIRs, notifications, One-time Key proofs */
    CERT_ROLE_DPF_AUTH, /* SM-DPf authentication: signs the BPP vault */
    CERT_ROLE_DPF_PB,   /* SM-DPf profile binding: signs smdpSign inside each BPP */
    CERT_ROLE_DM_ROOT,  /* Device Manufacturer root */
    CERT_ROLE_DM_FPA,   /* Device Manufacturer FPA-services authorisation (EUICCF02) */
    CERT_ROLE_STATION,  /* the station: signs BPP requests and Profile Loading Reports */
    CERT_ROLE__COUNT
} cert_role;

/* "CI", "EUM", "eUICC", "SM-DPf auth", ... */
const char *cert_role_name(cert_role r);

/* The role's policy OID in dotted text. */
const char *cert_role_oid(cert_role r);

/* Parses exactly n bytes of DER; anything else (trailing data too) is IFPP_E_CERT_PARSE. */
ifpp_err cert_parse_der(const uint8_t *der, size_t n, cert **out);

/* Loads the first certificate of a PEM file (a regular file only, fs_open_regular; never prompts). */
ifpp_err cert_load_pem(const char *path, cert **out);

/* cert_load_pem, with why naming the path and the cause. */
ifpp_err cert_load_pem_why(const char *path, cert **out, char *why, size_t why_len);

/* Writes the certificate as PEM (0644), atomically. */
ifpp_err cert_save_pem(const cert *c, const char *path);

/* Borrows the certificate's DER encoding. */
void cert_der(const cert *c, const uint8_t **der, size_t *n);

/* Frees a certificate (NULL is fine). */
void cert_free(cert *c);

/* Takes a new reference to the same certificate. */
cert *cert_ref(cert *c);

/* The subject public key, refused unless on P-256 or brainpoolP256r1. */
ifpp_err cert_public_key(const cert *c, crypto_key **out);

/*
 * The public key of a certificate the station verified before (the store's eUICC certificates, checked
 * under the CI at import), read from its DER without a full X.509 parse: Certificate, tbsCertificate,
 * then [0] version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo (RFC 5280).
 * Not a verification: use it only on bytes already verified.
 */
ifpp_err cert_der_public_key(const uint8_t *der, size_t n, crypto_key **out);

/* The first role OID found in certificatePolicies; IFPP_E_CERT_ROLE if none. */
ifpp_err cert_role_of(const cert *c, cert_role *out);

/* The SubjectKeyIdentifier (SGP.22 names CIs by it: euiccCiPKIdListFor...). */
ifpp_err cert_subject_key_id(const cert *c, uint8_t *out, size_t cap, size_t *n);

/* The subject's commonName, or "(no CN)"; for messages. */
const char *cert_subject_cn(const cert *c);

/* The subject's serialNumber attribute (an eUICC certificate's EID, SGP.22), or NULL. */
const char *cert_subject_serial(const cert *c);

/*
 * The OID of the first registeredID in subjectAltName, as the content octets of its DER
 * (without '06' and length): SGP.22 names an SM-DP+ by it in CERT.DPauth and CERT.DPpb, and the
 * eUICC repeats it as the PIR's smdpOid. IFPP_E_NOT_FOUND if the certificate carries none.
 */
ifpp_err cert_registered_id(const cert *c, uint8_t *oid, size_t cap, size_t *n);

/* Renders OID content octets as dotted text ("2.999.10") for messages; "(malformed OID)" if they are not one. */
void cert_oid_text(const uint8_t *oid, size_t n, char *out, size_t cap);

/* Borrowed X509* for code in common/ and test tools that need OpenSSL directly. */
void *cert_x509(const cert *c);

/* Wraps an X509* (takes one reference of its own). */
ifpp_err cert_from_x509(void *x509, cert **out);

/* True if issuer's subject (and key identifier) names it as c's issuer; no signature is checked. */
bool cert_issued_by(const cert *c, const cert *issuer);

/* The issuer's commonName (or "(no CN)"), printable, into out; for messages. */
void cert_issuer_cn(const cert *c, char *out, size_t cap);

/*
 * Verifies leaf against root (the only trust anchor) through the given intermediates at time
 * now: signatures, validity, ecdsa-with-SHA256 and the two curves on every certificate, CA
 * flag and keyCertSign on every issuer, digitalSignature on the leaf, the leaf's role policy
 * and the issuer roles the hierarchy requires (eUICC <- EUM <- CI; SM-DPf <- CI; DM FPA and
 * station <- DM root). An SM-DPf certificate may instead hang under one SM-DP sub-CA
 * (CI -> sub-CA -> SM-DPf, SGP.22 v3 CERT.DPSubCA) that the CI issued and whose certificatePolicies
 * carries the leaf's role. why (if given) names the certificate and cause.
 */
ifpp_err cert_verify_chain(const cert *root, const cert *const *intermediates, size_t n_inter, const cert *leaf,
                           cert_role leaf_role, time_t now, char *why, size_t why_len);

#endif
