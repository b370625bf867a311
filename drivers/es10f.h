/*
 * es10f.h -- ES10/ES10f over APDUs: one function call = one STORE DATA sequence to the
 * ISD-R, and the SGP.22 split of a Bound Profile Package into its commands.
 *
 * Written once above every transport (docs/es10f.md "Transport"): a backend only moves
 * APDUs; chaining (P1 11/91, block numbers), 61xx GET RESPONSE and 6Cxx retries live
 * here. The BPP split never looks inside a segment: the station forwards what the SM-DPf
 * protected (GENS09/GENS10).
 */
#ifndef IFPP_ES10F_H
#define IFPP_ES10F_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define ES10F_BLOCK 255 /* STORE DATA block size: short APDUs, which every reader and modem takes */
#define ES10F_MAX_BLOCK 4096 /* with extended length: a whole BPP segment command in one APDU */
#define ES10F_MAX_RESPONSE 65536
#define ES10F_MAX_ROUNDS 300 /* GET RESPONSE rounds of one APDU: 65536 bytes in 256-byte answers, and a margin */

/* Moves one command APDU and its response; a backend's transmit, with its own context. */
typedef ifpp_err (*es10f_transmit_fn)(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap,
                                      size_t *resp_len);

/*
 * Sends req (one ES10 TLV) on logical channel ch as STORE DATA blocks and collects the
 * response of the last block, following 61xx with GET RESPONSE and 6Cxx with a repeat.
 * *sw is the final status word; resp gets the data (possibly empty), never more than cap bytes
 * (IFPP_E_APDU_TOO_LONG). A GET RESPONSE chain without progress (a '61 xx' with no data) or longer
 * than ES10F_MAX_ROUNDS is IFPP_E_APDU_MALFORMED / IFPP_E_APDU_TOO_LONG: a card cannot hold the slot.
 */
ifpp_err es10f_call(es10f_transmit_fn tx, void *ctx, unsigned ch, const uint8_t *req, size_t n, uint8_t *resp,
                    size_t cap, size_t *resp_len, uint16_t *sw);

/*
 * es10f_call with STORE DATA blocks of up to `block` bytes (255..ES10F_MAX_BLOCK; above 255 the
 * blocks go as extended-length APDUs, for a slot whose reader and card take them).
 */
ifpp_err es10f_call_blocks(es10f_transmit_fn tx, void *ctx, unsigned ch, size_t block, const uint8_t *req, size_t n,
                           uint8_t *resp, size_t cap, size_t *resp_len, uint16_t *sw);

/* One command of a BPP load: a slice of the BF36 TLV, sent as its own STORE DATA sequence. */
typedef struct {
    const uint8_t *data;
    size_t len;
} es10f_bpp_command;

/*
 * Splits a BF36 TLV into the SGP.22 ES10b.LoadBoundProfilePackage commands: BF36 header +
 * BF23; A0; A1 header; each 88; A2 (if present); A3 header; each 86. Fills up to max
 * commands; *count gets how many. Refuses anything not shaped that way.
 */
ifpp_err es10f_bpp_split(const uint8_t *bpp, size_t n, es10f_bpp_command *cmds, size_t max, size_t *count);

#endif
