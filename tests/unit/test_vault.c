/*
 * test_vault.c -- vaults as real SM-DPfs make them (issue 8 item 10): an SM-DPf under an SM-DP
 * sub-CA, and the vault records the station must refuse at import rather than at every DUT.
 *
 * Two simulated lines: one whose SM-DPf hangs under a sub-CA (CI -> sub-CA -> DPauth/DPpb,
 * SGP.22 v3 CERT.DPSubCA), one whose SM-DPf is issued by the CI itself. The vaults come from the
 * test SM-DPf (tests/sim/smdpf.h), deliberately wrong where a test says so; every refusal must
 * name what was wrong and leave the store exactly as it was (ESBPP01).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es10.h"
#include "euicc_sim.h"
#include "import.h"
#include "session.h"
#include "smdpf.h"
#include "testline.h"
#include "testpki.h"
#include "testutil.h"

static test_line Sub;   /* SM-DPf under a sub-CA */
static test_line Plain; /* SM-DPf under the CI */

static int make_line(test_line *L, const char *stem, bool sub_ca)
{
    char why[256] = "";
    test_line_opts o = {.n_cards = 1, .n_otks = {2}, .profile_size = 9000, .dpf_sub_ca = sub_ca};
    char *dir = tu_mkdtemp(stem);
    int rc = dir ? test_line_make(L, dir, &o, why, sizeof why) : -1;
    free(dir);
    if (rc != 0)
        fprintf(stderr, "setup (%s): %s\n", stem, why);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    if (make_line(&Sub, "ifpp-vault-sub", true) != 0 || make_line(&Plain, "ifpp-vault-plain", false) != 0)
        return -1;
    return Sub.bpps == 2 && Plain.bpps == 2 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(Sub.dir);
    tu_rmrf(Plain.dir);
    test_line_free(&Sub);
    test_line_free(&Plain);
    return 0;
}

/* What "the store stays exactly as it was" is checked by: every state's count and the audit length. */
typedef struct {
    size_t states[BPP_STATE__COUNT];
    size_t audit;
} store_shape;

static store_shape shape_of(store *s)
{
    store_shape sh;
    memset(&sh, 0, sizeof sh);
    for (int i = 0; i < BPP_STATE__COUNT; i++)
        assert_int_equal(store_count_bpps(s, (bpp_state)i, &sh.states[i]), IFPP_OK);
    assert_int_equal(store_audit_verify(s, &sh.audit, NULL, 0), IFPP_OK);
    return sh;
}

/* Makes a vault for L's request as o says (pki and request from L). */
static void make_vault(const test_line *L, smdpf_vault_opts *o, uint8_t **vault, size_t *n)
{
    smdpf_vault_summary vs;
    char why[256] = "";
    o->pki_dir = L->pki;
    if (!o->content_len)
        o->content_len = 9000;
    if (smdpf_make_vault_opts(o, L->req, L->req_len, vault, n, &vs, why, sizeof why) != IFPP_OK)
        fail_msg("test SM-DPf: %s", why);
    assert_int_equal(vs.bpps, 2);
}

/* The import of vault into L's store is refused with a message holding `expect`, and nothing changes. */
static void refused(const test_line *L, const uint8_t *vault, size_t n, const char *expect)
{
    store *s;
    import_summary sum;
    char why[512] = "";
    assert_int_equal(store_open(L->db, &s, why, sizeof why), IFPP_OK);
    store_shape before = shape_of(s);
    ifpp_err e = import_vault(s, vault, n, L->ci, &sum, why, sizeof why);
    printf("refused as expected? %s: %s\n", err_str(e), why);
    assert_int_not_equal(e, IFPP_OK);
    if (!strstr(why, expect))
        fail_msg("the refusal does not say '%s': %s", expect, why);
    store_shape after = shape_of(s);
    assert_memory_equal(&before, &after, sizeof before);
    store_close(s);
}

/* A whole line CI -> sub-CA -> SM-DPf: the vault imports, the session sends the sub-CA, the DUT passes. */
static void test_sub_ca_line_provisions(void **state)
{
    (void)state;
    store *s;
    import_summary sum;
    fpa_slot slot;
    session_result r;
    char why[512] = "";
    assert_int_equal(store_open(Sub.db, &s, why, sizeof why), IFPP_OK);
    ifpp_err e = import_vault(s, Sub.vault, Sub.vault_len, Sub.ci, &sum, why, sizeof why);
    if (e != IFPP_OK)
        fail_msg("vault under a sub-CA refused: %s", why);
    assert_int_equal(sum.added, 2);
    assert_int_equal(fpa_open("virtual", Sub.card[0], &slot, why, sizeof why), IFPP_OK);
    session_ctx c = {.st = s, .slot = &slot, .slot_name = "fixture-sub", .dm_fpa_key = Sub.dm_fpa_key,
                     .dm_fpa_cert = Sub.dm_fpa, .delete_keys_when_done = true};
    e = session_provision(&c, "DUT-SUBCA-1", NULL, &r);
    fpa_close(&slot);
    if (e != IFPP_OK || !r.installed)
        fail_msg("CI -> sub-CA -> SM-DPf line: %s", r.message);
    assert_int_equal(r.final_state, BPP_INSTALLED);
    size_t n;
    assert_int_equal(store_count_bpps(s, BPP_INSTALLED, &n), IFPP_OK);
    assert_int_equal(n, 1);
    store_close(s);
    euicc_sim *sim;
    assert_int_equal(euicc_sim_open(Sub.card[0], &sim), IFPP_OK);
    assert_int_equal(euicc_sim_profile_count(sim), 1);
    euicc_sim_close(sim);
}

/* The SM-DPf is under a sub-CA, but the vault carries none: refused at import, naming the gap. */
static void test_sub_ca_missing(void **state)
{
    (void)state;
    uint8_t *vault;
    size_t n;
    smdpf_vault_opts o = {.omit_sub_ca = true};
    make_vault(&Sub, &o, &vault, &n);
    refused(&Sub, vault, n, "carries no sub-CA certificate");
    free(vault);
}

/* A sub-CA in the vault that did not issue CERT.DPpb: refused at import, naming both. */
static void test_sub_ca_not_the_issuer(void **state)
{
    (void)state;
    cert *ci = NULL, *other = NULL;
    crypto_key *ci_key = NULL, *k = NULL;
    static const cert_role pb_role[] = {CERT_ROLE_DPF_PB};
    assert_int_equal(testpki_load(Sub.pki, "ci", &ci, &ci_key), IFPP_OK);
    assert_int_equal(crypto_key_generate(CRYPTO_CURVE_P256, &k), IFPP_OK);
    testpki_cert_spec spec = {.cn = "Another SM-DP sub-CA", .role = CERT_ROLE_DPF_AUTH, .ca = true, .path_len = 0,
                              .subject_pkey = crypto_key_evp(k), .issuer_pkey = crypto_key_evp(ci_key), .issuer = ci,
                              .not_before = -60, .not_after = 86400, .more_roles = pb_role, .n_more_roles = 1};
    assert_int_equal(testpki_make_cert(&spec, &other), IFPP_OK);
    uint8_t *vault;
    size_t n;
    smdpf_vault_opts o = {.sub_ca_instead = other};
    make_vault(&Sub, &o, &vault, &n);
    refused(&Sub, vault, n, "('Another SM-DP sub-CA') is not the issuer of 'Test SM-DPf binding'");
    free(vault);
    /* a sub-CA where the SM-DPf needs none (its CERT.DPpb is the CI's own): a stray certificate is no chain either */
    make_vault(&Plain, &o, &vault, &n);
    refused(&Plain, vault, n, "is not the issuer of 'Test SM-DPf binding'");
    free(vault);
    cert_free(other);
    cert_free(ci);
    crypto_key_free(k);
    crypto_key_free(ci_key);
}

/* A record whose ICCID breaks the Luhn rule: refused at import, naming the record and the ICCID. */
static void test_bad_iccid_refused(void **state)
{
    (void)state;
    uint8_t *vault;
    size_t n;
    smdpf_vault_opts o = {.bad_iccid_item = 2};
    make_vault(&Plain, &o, &vault, &n);
    refused(&Plain, vault, n, "vault item 2 (transaction ");
    refused(&Plain, vault, n, "is not an ICCID");
    refused(&Plain, vault, n, "ICCID 8949"); /* the digits as they arrived, as people read them */
    free(vault);
}

/* A BPP with more load commands than a session sends: refused at import, not at every DUT. */
static void test_unloadable_bpp_refused(void **state)
{
    (void)state;
    uint8_t *vault;
    size_t n;
    char expect[96];
    smdpf_vault_opts o = {.many_segments_item = 1};
    make_vault(&Plain, &o, &vault, &n);
    snprintf(expect, sizeof expect, "more than %d load commands", ES10_MAX_BPP_COMMANDS);
    refused(&Plain, vault, n, "vault item 1 (transaction ");
    refused(&Plain, vault, n, expect);
    free(vault);
}

/*
 * A record whose ICCID is valid but not the one its BPP installs: it imports (the station never opens
 * a BPP, GENS09), and the eUICC's PIR, naming the installed ICCID, is not taken as this record's
 * result (pir_match_vault): the BPP stays in doubt and the message names both ICCIDs.
 */
static void test_pir_iccid_checked(void **state)
{
    (void)state;
    uint8_t *vault;
    size_t n, doubt = 0;
    store *s;
    import_summary sum;
    fpa_slot slot;
    session_result r;
    char why[512] = "";
    smdpf_vault_opts o = {.other_iccid_item = 1, .content_len = 4096};
    make_vault(&Plain, &o, &vault, &n);
    assert_int_equal(store_open(Plain.db, &s, why, sizeof why), IFPP_OK);
    if (import_vault(s, vault, n, Plain.ci, &sum, why, sizeof why) != IFPP_OK)
        fail_msg("a vault of valid ICCIDs refused: %s", why);
    free(vault);
    assert_int_equal(sum.added, 2);
    assert_int_equal(fpa_open("virtual", Plain.card[0], &slot, why, sizeof why), IFPP_OK);
    session_ctx c = {.st = s, .slot = &slot, .slot_name = "fixture-plain", .dm_fpa_key = Plain.dm_fpa_key,
                     .dm_fpa_cert = Plain.dm_fpa};
    (void)session_provision(&c, "DUT-ICCID-1", NULL, &r); /* the first BPP is item 1's */
    fpa_close(&slot);
    printf("session: %s\n", r.message);
    assert_false(r.installed);
    assert_int_equal(r.final_state, BPP_IN_DOUBT);
    assert_non_null(strstr(r.message, "the PIR names ICCID"));
    assert_non_null(strstr(r.message, "but the vault's record is for ICCID"));
    assert_int_equal(store_count_bpps(s, BPP_IN_DOUBT, &doubt), IFPP_OK);
    assert_int_equal(doubt, 1);
    store_close(s);
}

/* cert.c's rule for an SM-DP sub-CA: issued by the CI, holding the role it issues; never deeper, never an EUM. */
static void test_sub_ca_role_rules(void **state)
{
    (void)state;
    cert *ci = NULL, *eum = NULL, *pb = NULL, *sub = NULL, *subsub = NULL, *pb2 = NULL, *pb3 = NULL;
    crypto_key *ci_key = NULL, *eum_key = NULL, *k = NULL, *sub_key = NULL, *subsub_key = NULL;
    static const cert_role pb_role[] = {CERT_ROLE_DPF_PB};
    char why[256];
    assert_int_equal(testpki_load(Sub.pki, "ci", &ci, &ci_key), IFPP_OK);
    assert_int_equal(testpki_load(Sub.pki, "eum", &eum, &eum_key), IFPP_OK);
    assert_int_equal(crypto_key_generate(CRYPTO_CURVE_P256, &k), IFPP_OK);
    assert_int_equal(crypto_key_generate(CRYPTO_CURVE_P256, &sub_key), IFPP_OK);
    assert_int_equal(crypto_key_generate(CRYPTO_CURVE_P256, &subsub_key), IFPP_OK);
    /* an EUM (a CA under the CI, but not an SM-DP's) issuing a binding certificate */
    testpki_cert_spec leaf = {.cn = "pb under the EUM", .role = CERT_ROLE_DPF_PB, .path_len = -1,
                              .subject_pkey = crypto_key_evp(k), .issuer_pkey = crypto_key_evp(eum_key),
                              .issuer = eum, .not_before = -60, .not_after = 86400};
    assert_int_equal(testpki_make_cert(&leaf, &pb), IFPP_OK);
    const cert *inter[2] = {eum, NULL};
    assert_int_equal(cert_verify_chain(ci, inter, 1, pb, CERT_ROLE_DPF_PB, time(NULL), why, sizeof why),
                     IFPP_E_CERT_ROLE);
    assert_non_null(strstr(why, "must hold the SM-DPf binding role"));
    /* a proper sub-CA, then a sub-CA under it: one level only */
    testpki_cert_spec sub_spec = {.cn = "DP sub-CA", .role = CERT_ROLE_DPF_AUTH, .ca = true, .path_len = 1,
                            .subject_pkey = crypto_key_evp(sub_key), .issuer_pkey = crypto_key_evp(ci_key),
                            .issuer = ci, .not_before = -60, .not_after = 86400, .more_roles = pb_role,
                            .n_more_roles = 1};
    assert_int_equal(testpki_make_cert(&sub_spec, &sub), IFPP_OK);
    leaf.cn = "pb under the sub-CA";
    leaf.issuer = sub;
    leaf.issuer_pkey = crypto_key_evp(sub_key);
    assert_int_equal(testpki_make_cert(&leaf, &pb2), IFPP_OK);
    inter[0] = sub;
    assert_int_equal(cert_verify_chain(ci, inter, 1, pb2, CERT_ROLE_DPF_PB, time(NULL), why, sizeof why), IFPP_OK);
    sub_spec.cn = "DP sub-sub-CA";
    sub_spec.issuer = sub;
    sub_spec.issuer_pkey = crypto_key_evp(sub_key);
    sub_spec.subject_pkey = crypto_key_evp(subsub_key);
    sub_spec.path_len = 0;
    assert_int_equal(testpki_make_cert(&sub_spec, &subsub), IFPP_OK);
    leaf.cn = "pb two levels down";
    leaf.issuer = subsub;
    leaf.issuer_pkey = crypto_key_evp(subsub_key);
    assert_int_equal(testpki_make_cert(&leaf, &pb3), IFPP_OK);
    inter[0] = subsub;
    inter[1] = sub;
    assert_int_equal(cert_verify_chain(ci, inter, 2, pb3, CERT_ROLE_DPF_PB, time(NULL), why, sizeof why),
                     IFPP_E_CERT_CHAIN);
    assert_non_null(strstr(why, "at most one SM-DP sub-CA"));
    cert_free(ci); cert_free(eum); cert_free(pb); cert_free(sub); cert_free(subsub); cert_free(pb2); cert_free(pb3);
    crypto_key_free(ci_key); crypto_key_free(eum_key); crypto_key_free(k); crypto_key_free(sub_key);
    crypto_key_free(subsub_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sub_ca_missing),
        cmocka_unit_test(test_sub_ca_not_the_issuer),
        cmocka_unit_test(test_bad_iccid_refused),
        cmocka_unit_test(test_unloadable_bpp_refused),
        cmocka_unit_test(test_pir_iccid_checked),
        cmocka_unit_test(test_sub_ca_role_rules),
        cmocka_unit_test(test_sub_ca_line_provisions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
