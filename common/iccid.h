/*
 * iccid.h -- the ICCID (ITU-T E.118) in the two byte forms the RSP world uses.
 *
 * An ICCID is 19 or 20 decimal digits, the last a Luhn check digit, starting "89" (telecom).
 * EF.ICCID (ETSI TS 102 221 13.2), SGP.22's Iccid ('5A'), the vault's iccid and StoreMetadata
 * hold it as 10 bytes of nibble-swapped BCD with an 'F' filler nibble for 19 digits:
 * "8949...0123" -> '98 94 ... 10 F3'. The SIMalliance/TCA Interoperable Profile's ProfileHeader
 * holds the same digits in plain BCD order, 'F'-padded at the end ('89 49 ... 01 23 F' ...).
 * The station meets ICCIDs from vaults and from eUICCs' PIRs: both are checked here, and every
 * message shows them as the digits people read on the card, not as swapped hex.
 */
#ifndef IFPP_ICCID_H
#define IFPP_ICCID_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define ICCID_LEN 10        /* bytes, either form */
#define ICCID_TEXT_LEN 21   /* 20 characters and the NUL */

/* The Luhn check digit ('0'..'9') for n decimal digits; 0 if any is not a digit. */
char iccid_luhn_digit(const char *digits, size_t n);

/*
 * Encodes 19 or 20 digits (the last the valid Luhn check digit) into EF.ICCID form.
 * IFPP_E_RANGE names no cause: the caller's message shows the text it passed.
 */
ifpp_err iccid_from_digits(const char *digits, uint8_t ef[ICCID_LEN]);

/*
 * Checks an EF.ICCID-form ICCID (19 digits and 'F', or 20 digits; decimal nibbles; Luhn) and
 * always renders it into text for messages: its digits, or, if it is not an ICCID, every nibble
 * in swapped order as hex ("98946..." stays readable as what arrived). IFPP_OK if valid, else
 * IFPP_E_RANGE.
 */
ifpp_err iccid_to_text(const uint8_t ef[ICCID_LEN], char text[ICCID_TEXT_LEN]);

/* Converts between EF.ICCID form and the ProfileHeader's plain-BCD form (the swap is its own inverse). */
void iccid_swap_nibbles(const uint8_t in[ICCID_LEN], uint8_t out[ICCID_LEN]);

#endif
