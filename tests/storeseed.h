/*
 * storeseed.h -- a store filled with synthetic eUICCs, One-time Keys and available BPPs, for the tests and
 * benchmarks of the store's own concurrency (test_store_threads, test_store_group, bench_moves), which need
 * many rows to move and nothing a card would read. Test code only.
 */
#ifndef IFPP_STORESEED_H
#define IFPP_STORESEED_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* BPP k of eUICC t as storeseed_fill names it: tag, t, 0 ... 0, k >> 8, k. */
void storeseed_txid(uint8_t tag, int t, int k, uint8_t txid[16]);

/*
 * Adds n_euiccs eUICCs (random EIDs, written to eids[]) and, for each, per_euicc One-time Keys with one
 * available BPP bound to each (transaction id storeseed_txid(tag, t, k), hash the SHA-256 of that id). Inside
 * the caller's transaction if one is open (one sync for all). why names the first failure.
 */
ifpp_err storeseed_fill(store *s, int n_euiccs, int per_euicc, uint8_t tag, uint8_t (*eids)[16], char *why,
                        size_t why_len);

#endif
