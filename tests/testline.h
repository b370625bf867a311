/*
 * testline.h -- a simulated production line's files, made in one call, for tests and benchmarks.
 *
 * Every test and benchmark that provisions needs the same preparation that `ifppctl demo` walks
 * through: a throw-away PKI, eUICCs made by the test EUM, the EUM's signed data package imported
 * into a fresh station store, the station's BPP request, and the test SM-DPf's vault for it. One
 * function makes all of it, so that the steps (and their order) are written once.
 */
#ifndef IFPP_TESTLINE_H
#define IFPP_TESTLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "crypto.h"
#include "eum.h"
#include "testpki.h"

#define TEST_LINE_MAX_CARDS 64 /* the daemon's 32-slot test uses up to 64 */

typedef struct {
    size_t n_cards;                         /* 1..TEST_LINE_MAX_CARDS */
    size_t n_otks[TEST_LINE_MAX_CARDS];     /* One-time Keys per card; 0 means 2 */
    size_t profile_size;                    /* bytes of profile content per BPP; 0 means 9000 */
    const char *card_name;                  /* card file name stem in dir ("card" -> card-0, card-1, ...) */
    bool import_vault;                      /* also import the vault into the store */
    unsigned days;                          /* certificate validity; 0 means 30 */
    bool dpf_sub_ca;                        /* the SM-DPf under an SM-DP sub-CA (testpki_opts.dpf_sub_ca) */
} test_line_opts;

typedef struct {
    char *dir, *pki, *db, *vault_path;      /* vault_path: the vault as a file */
    char *card[TEST_LINE_MAX_CARDS];        /* each card's state file */
    char eid[TEST_LINE_MAX_CARDS][TESTPKI_EID_LEN + 1];
    eum_card info[TEST_LINE_MAX_CARDS];
    size_t n_cards;
    cert *ci, *dm_fpa, *station;
    crypto_key *dm_fpa_key, *station_key;
    uint8_t *pkg, *req, *vault;             /* the three bundles as bytes */
    size_t pkg_len, req_len, vault_len;
    size_t request_items, bpps;             /* One-time Keys asked for; BPPs the SM-DPf bound */
} test_line;

/*
 * Makes the line in dir (which must exist): PKI under dir/pki, the cards, dir/station.db with the
 * data package imported, the request, the vault at dir/vault.der (imported if asked). 0 on
 * success; otherwise why names the step that failed and the caller frees what was made.
 */
int test_line_make(test_line *L, const char *dir, const test_line_opts *o, char *why, size_t why_len);

/* Frees what test_line_make allocated (the files stay; the caller removes dir). */
void test_line_free(test_line *L);

#endif
