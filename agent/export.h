/*
 * export.h -- bundles out to removable media: the BPP request for the SM-DPf (ESBPP02).
 *
 * The request names every One-time Key no BPP is bound to yet, with its eUICC's certificate,
 * EUICCInfo2 and the GENS12 proof exactly as the EUM delivered them, plus the EUM certificates,
 * so the SM-DPf can check all of it itself (DPFF10). Signed by the station's key.
 */
#ifndef IFPP_EXPORT_H
#define IFPP_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "crypto.h"
#include "store.h"

/* Builds and signs the BPP request (malloc'd into *out); *items counts the keys asked for. */
ifpp_err export_bpp_request(store *s, const char *station_id, const char *profile_type, const crypto_key *station_key,
                            const cert *station_cert, uint8_t **out, size_t *out_len, size_t *items, char *why,
                            size_t why_len);

#endif
