/*
 * test_verify.c -- `ifppctl verify FILE`: an exported bundle checked offline (issue 15, item 3).
 *
 * Proves: a real day's Profile Loading Report verifies (signature, chain, every PIR under the CI,
 * DPFF06; the audit anchor) and, with --store, ties to the store; a report the station re-signed
 * around a PIR whose eUICC signature no longer verifies, or a PIR moved to another BPP's record,
 * fails naming the record; a report under another root fails; a store whose audit log was cut
 * after the export no longer ties to the report.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bundle.h"
#include "export.h"
#include "fpa.h"
#include "session.h"
#include "store.h"
#include "testline.h"
#include "testutil.h"
#include "tlv.h"

typedef struct {
    char *dir, *report;
    test_line L;
    cert *dm_root;
    uint8_t *buf;
    size_t n;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char why[256] = "";
    test_line_opts o = {.n_cards = 2, .profile_size = 1024, .import_vault = true};
    f->dir = tu_mkdtemp("ifpp-verify");
    if (!f->dir || test_line_make(&f->L, f->dir, &o, why, sizeof why) != 0 ||
        testpki_load(f->L.pki, "dm-root", &f->dm_root, NULL) != IFPP_OK) {
        fprintf(stderr, "test line: %s\n", why);
        return -1;
    }
    store *s;
    if (store_open(f->L.db, &s, why, sizeof why) != IFPP_OK)
        return -1;
    for (size_t i = 0; i < 2; i++) {
        fpa_slot slot;
        session_result r;
        if (fpa_open("virtual", f->L.card[i], &slot, why, sizeof why) != IFPP_OK)
            return -1;
        session_ctx c = {.st = s, .slot = &slot, .slot_name = "fixture-1", .dm_fpa_key = f->L.dm_fpa_key,
                         .dm_fpa_cert = f->L.dm_fpa};
        if (session_provision(&c, i ? "DUT-B" : "DUT-A", NULL, &r) != IFPP_OK || !r.installed)
            return -1;
        fpa_close(&slot);
    }
    export_summary sum;
    f->report = tu_path(f->dir, "report.der");
    if (export_loading_report(s, "station-test", NULL, f->L.station_key, f->L.station, f->dm_root, f->report, &sum,
                              why, sizeof why) != IFPP_OK || sum.pirs != 2)
        return -1;
    store_close(s);
    f->buf = tu_read_file(f->report, &f->n);
    *state = f;
    return f->buf ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cert_free(f->dm_root);
    test_line_free(&f->L);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f->report);
    free(f->buf);
    free(f);
    return 0;
}

static void test_good_report(void **state)
{
    fixture *f = *state;
    export_verify_summary sum;
    char why[512] = "";
    assert_int_equal(export_verify(f->buf, f->n, f->dm_root, f->L.ci, time(NULL), &sum, why, sizeof why), IFPP_OK);
    assert_int_equal(sum.type, BUNDLE_LOADING_REPORT);
    assert_int_equal(sum.records, 2);
    assert_int_equal(sum.pirs, 2);
    assert_true(sum.anchor.entry > 0);
    /* under another root: the signer chain fails */
    assert_int_not_equal(export_verify(f->buf, f->n, f->L.ci, f->L.ci, time(NULL), &sum, why, sizeof why), IFPP_OK);
    print_message("another root: %s\n", why);
    assert_non_null(strstr(why, "does not verify"));
}

/* The report's content with edit applied, re-signed by the station (what a station with a bug or a thief with its key makes). */
static uint8_t *resign(fixture *f, void (*edit)(uint8_t *content, size_t n), size_t *out_len)
{
    bundle_view v;
    uint8_t *out = NULL;
    memset(&v, 0, sizeof v);
    assert_int_equal(bundle_open(f->buf, f->n, BUNDLE_LOADING_REPORT, f->dm_root, time(NULL), &v, NULL, 0), IFPP_OK);
    uint8_t *content = malloc(v.content_len);
    memcpy(content, v.content, v.content_len);
    edit(content, v.content_len);
    const cert *chain[1] = {f->L.station};
    assert_int_equal(bundle_seal(BUNDLE_LOADING_REPORT, content, v.content_len, f->L.station_key, chain, 1, &out,
                                 out_len), IFPP_OK);
    bundle_view_free(&v);
    free(content);
    return out;
}

/* The first PIR ('BF37') in content whose TLV parses: offset and length. */
static size_t find_pir(const uint8_t *c, size_t n, size_t from, size_t *len)
{
    for (size_t i = from; i + 2 < n; i++) {
        tlv t;
        if (c[i] == 0xBF && c[i + 1] == 0x37 && tlv_parse(c + i, n - i, TLV_DER, &t) == IFPP_OK && t.raw_len > 64) {
            *len = t.raw_len;
            return i;
        }
    }
    fail_msg("no PIR in the report");
    return 0;
}

static void flip_pir_signature(uint8_t *c, size_t n)
{
    size_t len = 0, at = find_pir(c, n, 0, &len); /* fail_msg does not return, which -O3 cannot see */
    c[at + len - 1] ^= 0x01; /* the last byte of euiccSignPIR */
}

static void swap_txid(uint8_t *c, size_t n)
{
    size_t len = 0, at = find_pir(c, n, 0, &len); /* fail_msg does not return, which -O3 cannot see */
    for (size_t i = at; i > 2; i--) /* the record's own transaction id ('80 10'), before its PIR */
        if (c[i - 2] == 0x80 && c[i - 1] == 0x10) {
            c[i] ^= 0xFF;
            return;
        }
    fail_msg("no transaction id before the PIR");
}

static void test_tampered_reports(void **state)
{
    fixture *f = *state;
    export_verify_summary sum;
    char why[512] = "";
    size_t n;
    uint8_t *bad = resign(f, flip_pir_signature, &n);
    assert_int_equal(export_verify(bad, n, f->dm_root, f->L.ci, time(NULL), &sum, why, sizeof why), IFPP_E_SIGNATURE);
    print_message("PIR signature flipped: %s\n", why);
    assert_non_null(strstr(why, "result 1: its PIR does not verify"));
    free(bad);
    bad = resign(f, swap_txid, &n);
    assert_int_not_equal(export_verify(bad, n, f->dm_root, f->L.ci, time(NULL), &sum, why, sizeof why), IFPP_OK);
    print_message("PIR under another record: %s\n", why);
    assert_non_null(strstr(why, "result 1: its PIR is for another BPP"));
    free(bad);
}

static void test_cli_and_store(void **state)
{
    fixture *f = *state;
    char out[4096] = "";
    const char *ctl = tu_tool("IFPP_IFPPCTL", "ifpp-rehearse");
    assert_int_equal(tu_sh(out, sizeof out, "'%s' --pki '%s' verify '%s'", ctl, f->L.pki, f->report), 0);
    print_message("%s", out);
    assert_non_null(strstr(out, "2 PIR(s) verified under the CI"));
    assert_null(strstr(out, "ties to the store"));
    assert_int_equal(tu_sh(out, sizeof out, "'%s' --pki '%s' --store '%s' verify '%s'", ctl, f->L.pki, f->L.db, f->report),
                     0);
    assert_non_null(strstr(out, "ties to the store"));
    /* no file, and a file that is not a bundle */
    assert_int_equal(tu_sh(out, sizeof out, "'%s' --pki '%s' verify 2>&1", ctl, f->L.pki), 2);
    assert_int_equal(tu_sh(out, sizeof out, "'%s' --pki '%s' verify '%s' 2>&1", ctl, f->L.pki, f->L.vault_path), 3);
    assert_non_null(strstr(out, "FAILS verification"));
    /* the audit log cut after the export: the report no longer ties to the store */
    sqlite3 *d;
    assert_int_equal(sqlite3_open(f->L.db, &d), SQLITE_OK);
    assert_int_equal(sqlite3_exec(d, "DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(d);
    assert_int_equal(tu_sh(out, sizeof out, "'%s' --pki '%s' --store '%s' verify '%s' 2>&1", ctl, f->L.pki, f->L.db,
                        f->report), 3);
    print_message("cut log: %s", out);
    assert_non_null(strstr(out, "does not tie to the store"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_report),
        cmocka_unit_test(test_tampered_reports),
        cmocka_unit_test(test_cli_and_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
