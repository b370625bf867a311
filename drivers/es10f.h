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

#include "cert.h"
#include "crypto.h"
#include "err.h"

#define ES10F_BLOCK 255 /* STORE DATA block size: short APDUs, which every reader and modem takes */
#define ES10F_MAX_BLOCK 4096 /* with extended length: a whole BPP segment command in one APDU */
#define ES10F_MAX_RESPONSE 65536

/* Moves one command APDU and its response; a backend's transmit, with its own context. */
typedef ifpp_err (*es10f_transmit_fn)(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap,
                                      size_t *resp_len);

/*
 * Sends req (one ES10 TLV) on logical channel ch as STORE DATA blocks and collects the
 * response of the last block, following 61xx with GET RESPONSE and 6Cxx with a repeat.
 * *sw is the final status word; resp gets the data (possibly empty).
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

/*
 * Builds AuthoriseFpaServices ('BF70', EUICCF02): fpaSigned = { 81 challenge, 5A EID } signed
 * with the Device Manufacturer's FPA key (r||s), and its certificate.
 */
ifpp_err es10f_build_authorise(const uint8_t challenge[16], const uint8_t eid[16], const crypto_key *dm_fpa_key,
                               const cert *dm_fpa_cert, uint8_t *out, size_t cap, size_t *n);

/* Builds PrepareBppLoad ('BF71'): transactionId, the otPK the BPP is bound to, CERT.DPpb (and sub-CAs). */
ifpp_err es10f_build_prepare(const uint8_t *txid, size_t txid_len, const uint8_t otpk[65], const cert *dpf_pb,
                             const cert *const *sub_cas, size_t n_sub, uint8_t *out, size_t cap, size_t *n);

#define ES10F_MAX_OTKS 255

/*
 * Parses GetOneTimeKeyInfo's answer ('BF72', docs/ifpp.asn): the count and the public halves.
 * Strict: '80' count, then 'A1' holding exactly count '5F49' keys of 65 bytes (at most max are
 * copied into otpks, which may be NULL), nothing else; a list that disagrees with its count is
 * IFPP_E_RANGE, so that no decision rests on a garbled answer.
 */
ifpp_err es10f_parse_otk_info(const uint8_t *resp, size_t n, uint8_t (*otpks)[65], size_t max, uint8_t *count);

/* Reads the single INTEGER result of a 'BF70'/'BF71'/'BF30'/'BF33' style response with tag `tag`. */
ifpp_err es10f_parse_result(const uint8_t *resp, size_t n, uint32_t tag, uint32_t result_tag, uint8_t *result);

#endif
