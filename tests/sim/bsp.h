/*
 * bsp.h -- the SGP.22 BPP Protection Protocol (BSP, called SCP03t before SGP.22 v3).
 *
 * A Bound Profile Package is protected segment by segment (SGP.22 §2.5.4, §2.6.4): each
 * segment is one TLV (86, 87 or 88) holding AES-128-CBC ciphertext (clear data for 88)
 * and an 8-byte C-MAC, at most 1020 bytes in all. The MAC chains over every segment in
 * order, and the CBC ICV is derived from a counter of segments, so a segment cannot be
 * dropped, replayed or moved without the eUICC noticing.
 *
 * The station never protects or unprotects a BPP: it forwards BPPs unopened (GENS09/GENS10),
 * so this code lives with the simulators under tests/ and no product binary links it (issue 8,
 * item 2). The SM-DPf simulator protects, the software eUICC unprotects.
 */
#ifndef IFPP_BSP_H
#define IFPP_BSP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define BSP_MAX_SEGMENT 1020 /* whole TLV: tag, length, data and MAC (SGP.22 §2.5.4) */
#define BSP_MAC_LEN 8
/* Largest plaintext per encrypted segment: 1020 - tag(1) - length(3) - MAC(8) = 1008 bytes of
 * ciphertext, and padding always adds 1..16 bytes, so 1007 rounds down to 1007 -> 1008. */
#define BSP_MAX_PLAIN_ENCRYPTED 1007
/* Largest data per MAC-only (88) segment: 1020 - 1 - 3 - 8. */
#define BSP_MAX_PLAIN_MAC_ONLY 1008

typedef struct {
    uint8_t s_enc[16];
    uint8_t s_mac[16];
    uint8_t mac_chain[16];
    uint32_t block_nr; /* ICV counter, from 1; counts MAC-only segments too */
} bsp_ctx;

/*
 * SGP.22 §2.6.4.2 key derivation: X9.63 KDF (SHA-256) over the ECKA shared secret with
 * sharedInfo = keyType || keyLen || L(hostId) || hostId || L(EID) || EID; 48 bytes give the
 * initial MAC chaining value, S-ENC and S-MAC, in that order.
 */
ifpp_err bsp_derive_keys(const uint8_t *shs, size_t shs_len, uint8_t key_type, uint8_t key_len,
                         const uint8_t *host_id, size_t host_id_len, const uint8_t *eid, size_t eid_len,
                         bsp_ctx *out);

/* Starts a context from explicit keys (after ReplaceSessionKeys); the ICV counter restarts at 1. */
void bsp_init(bsp_ctx *c, const uint8_t s_enc[16], const uint8_t s_mac[16], const uint8_t mcv[16]);

/* Protects one segment: pad 80 00.., encrypt, MAC; out gets tag || L || ciphertext || C-MAC. */
ifpp_err bsp_encrypt_and_mac(bsp_ctx *c, uint8_t tag, const uint8_t *pt, size_t n, uint8_t *out, size_t cap,
                             size_t *outlen);

/* Protects one MAC-only segment (88): tag || L || data || C-MAC; the ICV counter still advances. */
ifpp_err bsp_mac_only(bsp_ctx *c, uint8_t tag, const uint8_t *data, size_t n, uint8_t *out, size_t cap,
                      size_t *outlen);

/*
 * Checks one encrypted segment (its tag must be `tag`), MAC first in constant time, then
 * decrypts and strips the padding. On any error the context is unchanged.
 */
ifpp_err bsp_verify_and_decrypt(bsp_ctx *c, const uint8_t *seg, size_t n, uint8_t tag, uint8_t *out, size_t cap,
                                size_t *outlen);

/* Checks one MAC-only segment and returns its data; on error the context is unchanged. */
ifpp_err bsp_verify_mac_only(bsp_ctx *c, const uint8_t *seg, size_t n, uint8_t *out, size_t cap, size_t *outlen);

/* Clears the keys. */
void bsp_wipe(bsp_ctx *c);

#endif
