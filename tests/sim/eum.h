/*
 * eum.h -- the test EUM: personalises software eUICCs with One-time Keys and ships their
 * public data in the signed eUICC data package (Esed2: ESED201/ESED202, GENS12).
 *
 * Each One-time public Key is proven to belong to its eUICC by the eUICC's own signature
 * (SK.EUICC.ECDSA over '5A 10 <EID> 5F49 41 <otPK>', docs/ifpp.asn OneTimeKeyRecord); the
 * whole package is signed by the EUM. Keys come from the test PKI (tests/tools/testpki.h).
 */
#ifndef IFPP_EUM_H
#define IFPP_EUM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define EUM_MAX_OTKS 64

typedef struct {
    char eid_text[33];
    uint8_t eid[16];
    uint8_t otpk[EUM_MAX_OTKS][65];
    uint8_t proof[EUM_MAX_OTKS][64];
    size_t n_otks;
} eum_card;

/* Makes the card for EID eid_text (its certificate and key from pki_dir) with n_otks One-time Keys. */
ifpp_err eum_make_card(const char *pki_dir, const char *eid_text, size_t n_otks, const char *state_path,
                       eum_card *out);

/*
 * Writes the signed eUICC data package for the cards (their state files give EUICCInfo2 as the
 * cards report it) into a malloc'd buffer.
 */
ifpp_err eum_data_package(const char *pki_dir, const eum_card *cards, const char *const *state_paths, size_t n,
                          uint8_t **out, size_t *outlen);

#endif
