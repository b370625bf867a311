/*
 * vaultgen.h -- BPP vaults of any size, fast, for the import kill test and the import bench (issue 16).
 *
 * The test SM-DPf binds every BPP for real (key agreement, BSP per segment), a few milliseconds each:
 * fine for a line of DUTs, too slow for 100,000 BPPs (about 2 GB). Import never opens a BPP, so a big
 * vault may repeat one real BPP: vaultgen binds one, then writes n items that carry it with its last 8
 * bytes (inside the last '86' segment's MAC, so its shape is still what ES10b loading needs) replaced by
 * the item's number, each with its own hash, transaction id, ICCID and One-time Key. The One-time Keys
 * are put straight into the store (no eUICC data package: nothing here is for a card), and the vault
 * is sealed by the line's SM-DPf streaming: memory stays small whatever n is.
 */
#ifndef IFPP_VAULTGEN_H
#define IFPP_VAULTGEN_H

#include <stddef.h>
#include <stdint.h>

#include "testline.h"

/*
 * Registers n One-time Keys in L's store and writes to path a vault of n BPPs of about profile_size
 * bytes each for them, signed by L's SM-DPf. 0 on success; otherwise why says which step failed.
 */
int vaultgen_make(const test_line *L, size_t n, size_t profile_size, const char *path, char *why, size_t why_len);

/* The transaction id vaultgen gives item i (0-based) of a vault written to path. */
void vaultgen_txid(const char *path, size_t i, uint8_t txid[16]);

/* The item number a BPP from vaultgen carries in its last 8 bytes. */
uint64_t vaultgen_item_of(const uint8_t *bpp, size_t n);

#endif
