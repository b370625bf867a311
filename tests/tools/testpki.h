/*
 * testpki.h -- a throw-away certificate hierarchy for tests and the demo.
 *
 * Makes what the four parties of SGP.41 hold, on P-256 or brainpoolP256r1, following the
 * SGP.22 certificate profile (v3, ecdsa-with-SHA256, SKI/AKI, critical basicConstraints and
 * keyUsage, the role in certificatePolicies):
 *   ci            GSMA CI stand-in (root)          dpf-auth, dpf-pb   SM-DPf, under the CI (or dpf-subca)
 *   eum           EUM, under the CI (pathLen 0)     dm-root            Device Manufacturer root
 *   euicc/<EID>   one per eUICC, under the EUM      dm-fpa, station    under dm-root
 * With dpf_sub_ca, an SM-DP sub-CA (dpf-subca, SGP.22 v3 CERT.DPSubCA, SGP.26 variant A) sits between
 * the CI and the SM-DPf: a CA under the CI (pathLen 0) holding the dp-auth and dp-pb roles it issues.
 * The SM-DPf's two certificates carry its OID (TESTPKI_SMDPF_OID) as subjectAltName registeredID.
 * Keys stay in the directory it writes (0600). Nothing in the product trusts them unless a
 * configuration names them. testpki_make_cert() also makes deliberately wrong certificates
 * for negative tests.
 */
#ifndef IFPP_TESTPKI_H
#define IFPP_TESTPKI_H

#include <stdbool.h>
#include <stddef.h>

#include "cert.h"
#include "crypto.h"
#include "err.h"

#define TESTPKI_EID_LEN 32

/*
 * The test SM-DPf's OID: SGP.22 names an SM-DP+ by a registeredID in the subjectAltName of its
 * CERT.DPauth and CERT.DPpb, and the eUICC repeats it as the PIR's smdpOid. 2.999 is ITU-T's
 * arc for examples, where GSMA's SGP.26 test certificates put their test SM-DP+ as well.
 */
#define TESTPKI_SMDPF_OID "2.999.10"

typedef struct {
    const char *cn;
    cert_role role;
    bool ca;
    int path_len;              /* for CAs; -1: no constraint */
    void *subject_pkey;        /* EVP_PKEY* being certified (any curve: negative tests use others) */
    void *issuer_pkey;         /* EVP_PKEY* that signs; NULL: self-signed with subject_pkey */
    const cert *issuer;        /* NULL: self-signed */
    long not_before;           /* seconds from now (negative: in the past) */
    long not_after;
    const char *serial_number; /* subject serialNumber attribute (an eUICC's EID), or NULL */
    const char *registered_id; /* subjectAltName registeredID in dotted text (an SM-DP's OID), or NULL */
    bool no_policy;            /* omit certificatePolicies */
    bool no_key_cert_sign;     /* a CA without keyCertSign */
    bool no_digital_signature; /* an end entity without digitalSignature */
    const cert_role *more_roles; /* further roles in certificatePolicies (an SM-DP sub-CA's), or NULL */
    size_t n_more_roles;
} testpki_cert_spec;

typedef struct {
    const char *out_dir;
    crypto_curve curve;
    const char *const *eids; /* NULL: generate n_eids random ones */
    size_t n_eids;
    unsigned days;           /* validity of every certificate */
    bool dpf_sub_ca;         /* the SM-DPf under an SM-DP sub-CA (dpf-subca): CI -> sub-CA -> dpf-auth, dpf-pb */
} testpki_opts;

/* Makes one certificate as spec says. */
ifpp_err testpki_make_cert(const testpki_cert_spec *spec, cert **out);

/* Writes the whole hierarchy into o->out_dir (created if missing); why names what failed. */
ifpp_err testpki_make(const testpki_opts *o, char *why, size_t why_len);

/* Loads <dir>/<name>.cert.pem and, if key is not NULL, <dir>/<name>.key.pem. */
ifpp_err testpki_load(const char *dir, const char *name, cert **c, crypto_key **key);

/*
 * Reads the EIDs of the hierarchy in dir from its manifest (pki.conf), in order: a malloc'd
 * array of *n NUL-terminated EIDs (caller frees). IFPP_E_IO if the manifest is unreadable,
 * IFPP_E_RANGE if it lists none or one is not a valid EID.
 */
ifpp_err testpki_eids(const char *dir, char (**eids)[TESTPKI_EID_LEN + 1], size_t *n);

/* Writes a random 32-digit EID "89049032..." whose last two digits make it 1 mod 97. */
ifpp_err testpki_eid_random(char out[TESTPKI_EID_LEN + 1]);

/* True if eid is 32 decimal digits and 1 mod 97 (the check-digit rule above). */
bool testpki_eid_valid(const char *eid);

#endif
