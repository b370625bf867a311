/*
 * apdu.h -- ISO/IEC 7816-4 command/response APDUs and the ES10 STORE DATA framing.
 *
 * Shared by every FPA backend, the session engine and the software eUICC, so that a
 * command is encoded in exactly one place and parsed (by the simulated card, or a
 * fuzzer) in exactly one place. Covers:
 *   - the seven command cases (1, 2S/3S/4S, 2E/3E/4E), strictly: a command whose
 *     length fields do not match its size is malformed, never "best effort";
 *   - logical channels 0..19 in the class byte (first and further interindustry
 *     encodings, ISO 7816-4 §5.4.1; GlobalPlatform uses the same bits with b8 set);
 *   - SGP.22 §5.7.2 ES10 over STORE DATA (GlobalPlatform Card Spec §11.11): CLA 80,
 *     INS E2, P1 11 for every block but the last and 91 for the last, P2 the block
 *     number from 0.
 * Status words are named here once.
 */
#ifndef IFPP_APDU_H
#define IFPP_APDU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define APDU_SHORT_MAX_LC 255
#define APDU_EXT_MAX_LC 65535
#define APDU_MAX_CHANNEL 19
#define APDU_CMD_MAX (4 + 3 + APDU_EXT_MAX_LC + 2)

enum {
    SW_OK = 0x9000,
    SW_BYTES_AVAILABLE = 0x6100,    /* 61xx: GET RESPONSE with Le = xx (T=0) */
    SW_WRONG_LE = 0x6C00,           /* 6Cxx: repeat with Le = xx (T=0) */
    SW_WRONG_LENGTH = 0x6700,
    SW_LOGICAL_CHANNEL_UNSUPPORTED = 0x6881,
    SW_SECURITY_NOT_SATISFIED = 0x6982,
    SW_CONDITIONS_NOT_SATISFIED = 0x6985,
    SW_WRONG_DATA = 0x6A80,
    SW_FUNCTION_NOT_SUPPORTED = 0x6A81,
    SW_FILE_NOT_FOUND = 0x6A82,
    SW_NOT_ENOUGH_MEMORY = 0x6A84,
    SW_INCORRECT_P1P2 = 0x6A86,
    SW_REFERENCED_DATA_NOT_FOUND = 0x6A88,
    SW_INS_NOT_SUPPORTED = 0x6D00,
    SW_CLA_NOT_SUPPORTED = 0x6E00,
    SW_UNKNOWN = 0x6F00,
};

#define APDU_INS_SELECT 0xA4
#define APDU_INS_MANAGE_CHANNEL 0x70
#define APDU_INS_GET_RESPONSE 0xC0
#define APDU_INS_STORE_DATA 0xE2
#define APDU_STORE_DATA_MORE 0x11 /* P1: BER-TLV data, more blocks follow */
#define APDU_STORE_DATA_LAST 0x91 /* P1: BER-TLV data, last block */

typedef struct {
    uint8_t cla, ins, p1, p2;
    const uint8_t *data; /* Nc bytes of command data (borrowed) */
    size_t nc;           /* 0..65535 */
    uint32_t ne;         /* expected response bytes: 0 = no Le field, else 1..65536 */
} apdu_cmd;

/* Encodes cmd, short form where it fits and extended otherwise (only if allow_extended). */
ifpp_err apdu_encode(const apdu_cmd *cmd, bool allow_extended, uint8_t *out, size_t cap, size_t *n);

/* Parses a raw command APDU strictly (ISO 7816-4 §5.1); cmd->data points into buf. */
ifpp_err apdu_parse(const uint8_t *buf, size_t n, apdu_cmd *cmd);

/* Splits a response APDU into its data and status word; IFPP_E_APDU_MALFORMED if shorter than 2 bytes. */
ifpp_err apdu_split_response(const uint8_t *resp, size_t n, size_t *data_len, uint16_t *sw);

/* Returns cla re-encoded for logical channel ch (0..19), keeping the proprietary bit (b8) and chaining bit. */
ifpp_err apdu_cla_for_channel(uint8_t cla, unsigned ch, uint8_t *out);

/* Returns the logical channel a class byte addresses (0..19). */
unsigned apdu_channel_of_cla(uint8_t cla);

/* Number of STORE DATA blocks needed for n bytes in blocks of at most block_max bytes (n > 0). */
size_t apdu_store_data_count(size_t n, size_t block_max);

/*
 * Fills cmd with STORE DATA block `index` of msg (n bytes) on logical channel ch, blocks of
 * at most block_max bytes; IFPP_E_APDU_TOO_LONG if more than 256 blocks would be needed.
 */
ifpp_err apdu_store_data_block(const uint8_t *msg, size_t n, size_t block_max, size_t index, unsigned ch,
                               apdu_cmd *cmd);

/*
 * Reads an ATR (ISO/IEC 7816-3 §8.2) up to its historical bytes and, if they are in compact-TLV
 * form (category 80), the card capabilities object (7816-4 §8.1.1.2.7): *extended is true only
 * if the card says it takes extended Lc/Le. IFPP_E_APDU_MALFORMED if the ATR runs past its bytes.
 */
ifpp_err apdu_atr_extended_length(const uint8_t *atr, size_t n, bool *extended);

/* A short English name for a status word ("security status not satisfied"), for messages. */
const char *apdu_sw_str(uint16_t sw);

#endif
