/* testline.c -- a simulated line's PKI, cards, store and bundles; see testline.h. */
#include "testline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "fsutil.h"
#include "import.h"
#include "smdpf.h"
#include "store.h"
#include "testutil.h"

/* Sets why (if the failing call left it empty) and returns -1. */
static int line_fail(char *why, size_t why_len, const char *step, ifpp_err e)
{
    if (why && why_len && !why[0])
        snprintf(why, why_len, "test line: %s: %s", step, err_str(e));
    return -1;
}

int test_line_make(test_line *L, const char *dir, const test_line_opts *o, char *why, size_t why_len)
{
    char name[64];
    ifpp_err e;
    memset(L, 0, sizeof *L);
    if (!o || o->n_cards < 1 || o->n_cards > TEST_LINE_MAX_CARDS)
        return line_fail(why, why_len, "options", IFPP_E_ARG);
    L->n_cards = o->n_cards;
    L->dir = strdup(dir);
    L->pki = tu_path(dir, "pki");
    L->db = tu_path(dir, "station.db");
    L->vault_path = tu_path(dir, "vault.der");
    if (!L->dir || !L->pki || !L->db || !L->vault_path)
        return line_fail(why, why_len, "paths", IFPP_E_NOMEM);

    testpki_opts po = {.out_dir = L->pki, .curve = CRYPTO_CURVE_P256, .n_eids = o->n_cards,
                       .days = o->days ? o->days : 30, .dpf_sub_ca = o->dpf_sub_ca};
    char(*eids)[TESTPKI_EID_LEN + 1] = NULL;
    size_t n_eids = 0;
    if ((e = testpki_make(&po, why, why_len)) != IFPP_OK)
        return line_fail(why, why_len, "test PKI", e);
    if ((e = testpki_load(L->pki, "ci", &L->ci, NULL)) != IFPP_OK ||
        (e = testpki_load(L->pki, "dm-fpa", &L->dm_fpa, &L->dm_fpa_key)) != IFPP_OK ||
        (e = testpki_load(L->pki, "station", &L->station, &L->station_key)) != IFPP_OK)
        return line_fail(why, why_len, "loading the test PKI", e);
    if ((e = testpki_eids(L->pki, &eids, &n_eids)) != IFPP_OK || n_eids != o->n_cards) {
        free(eids);
        return line_fail(why, why_len, "the test PKI's EIDs", e ? e : IFPP_E_RANGE);
    }
    const char *paths[TEST_LINE_MAX_CARDS];
    for (size_t i = 0; i < o->n_cards; i++) {
        memcpy(L->eid[i], eids[i], sizeof L->eid[i]);
        snprintf(name, sizeof name, "%s-%zu", o->card_name ? o->card_name : "card", i);
        if (!(L->card[i] = tu_path(dir, name))) {
            free(eids);
            return line_fail(why, why_len, "paths", IFPP_E_NOMEM);
        }
        paths[i] = L->card[i];
        if ((e = eum_make_card(L->pki, L->eid[i], o->n_otks[i] ? o->n_otks[i] : 2, L->card[i], &L->info[i])) !=
            IFPP_OK) {
            free(eids);
            return line_fail(why, why_len, "test EUM: card", e);
        }
    }
    free(eids);
    if ((e = eum_data_package(L->pki, L->info, paths, o->n_cards, &L->pkg, &L->pkg_len)) != IFPP_OK)
        return line_fail(why, why_len, "test EUM: data package", e);

    store *s = NULL;
    import_summary sum;
    smdpf_vault_summary vs;
    if ((e = store_open(L->db, &s, why, why_len)) != IFPP_OK)
        return line_fail(why, why_len, "store", e);
    if ((e = import_euicc_data(s, L->pkg, L->pkg_len, L->ci, &sum, why, why_len)) == IFPP_OK &&
        (e = export_bpp_request(s, "station-test", "operatorA", L->station_key, L->station, &L->req, &L->req_len,
                                &L->request_items, why, why_len)) == IFPP_OK &&
        (e = smdpf_make_vault(L->pki, L->req, L->req_len, o->profile_size ? o->profile_size : 9000, &L->vault,
                              &L->vault_len, &vs, why, why_len)) == IFPP_OK &&
        (e = fs_write_atomic(L->vault_path, L->vault, L->vault_len, 0644)) == IFPP_OK && o->import_vault)
        e = import_vault(s, L->vault, L->vault_len, L->ci, &sum, why, why_len);
    store_close(s);
    if (e != IFPP_OK)
        return line_fail(why, why_len, "station imports, request and vault", e);
    L->bpps = vs.bpps;
    return 0;
}

void test_line_free(test_line *L)
{
    if (!L)
        return;
    free(L->dir);
    free(L->pki);
    free(L->db);
    free(L->vault_path);
    for (size_t i = 0; i < TEST_LINE_MAX_CARDS; i++)
        free(L->card[i]);
    cert_free(L->ci);
    cert_free(L->dm_fpa);
    cert_free(L->station);
    crypto_key_free(L->dm_fpa_key);
    crypto_key_free(L->station_key);
    free(L->pkg);
    free(L->req);
    free(L->vault);
    memset(L, 0, sizeof *L);
}
