/*
 * hex.h -- hexadecimal text <-> bytes, for EIDs, ICCIDs, test vectors and logs.
 * Strict: the decoder accepts only an even number of hex digits (either case).
 */
#ifndef IFPP_HEX_H
#define IFPP_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Decodes hex text into out (cap bytes); *outlen gets the byte count. */
ifpp_err hex_decode(const char *hex, uint8_t *out, size_t cap, size_t *outlen);

/* Writes 2*n lowercase hex digits and a NUL into out (cap >= 2*n+1), or fails. */
ifpp_err hex_encode(const uint8_t *in, size_t n, char *out, size_t cap);

#endif
