/*
 * test_session.c -- the spine end to end on the virtual backend: imports, the BPP request,
 * the session, and recovery after the provisioning process is SIGKILLed at every step.
 *
 * The pipeline is the real one: ifpp-testpki's PKI, the test EUM's cards and data package,
 * the station's own BPP request, the test SM-DPf's vault, the station's import, the session
 * over drivers/fpa (virtual) and the software eUICC, a real SQLite file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "apdu.h"
#include "es10f.h"
#include "euicc_sim.h"
#include "eum.h"
#include "export.h"
#include "fsutil.h"
#include "import.h"
#include "session.h"
#include "smdpf.h"
#include "testline.h"
#include "testpki.h"
#include "testutil.h"
#include "usb_device_fpa.h"

#define N_CARDS 3

static test_line T; /* PKI, three cards (card 2 with many keys), store, package, request, vault */

static int setup(void **state)
{
    (void)state;
    char why[256] = "";
    /* card 2 has many keys: the kill test spends one per step */
    test_line_opts o = {.n_cards = N_CARDS, .n_otks = {2, 2, 14}, .profile_size = 9000};
    char *dir = tu_mkdtemp("ifpp-session");
    int rc = dir ? test_line_make(&T, dir, &o, why, sizeof why) : -1;
    free(dir);
    if (rc != 0) {
        fprintf(stderr, "setup: %s\n", why);
        return -1;
    }
    /* the store holds the EUM's package (the request came from it); the tests import the vault */
    return T.request_items == 18 && T.bpps == 18 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(T.dir);
    test_line_free(&T);
    return 0;
}

static size_t count(store *s, bpp_state st)
{
    size_t n = 0;
    assert_int_equal(store_count_bpps(s, st, &n), IFPP_OK);
    return n;
}

/* Hostile bundles are refused by name and leave the store exactly as it was. */
static void test_imports(void **state)
{
    (void)state;
    store *s;
    import_summary sum;
    char why[512];
    size_t audit_before, audit_after;
    assert_int_equal(store_open(T.db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(import_vault(s, T.vault, T.vault_len, T.ci, &sum, why, sizeof why), IFPP_OK);
    assert_int_equal(sum.added, 18);
    assert_int_equal(count(s, BPP_AVAILABLE), 18);
    /* the same vault again: a clear no-op */
    assert_int_equal(store_audit_verify(s, &audit_before, NULL, 0), IFPP_OK);
    assert_int_equal(import_vault(s, T.vault, T.vault_len, T.ci, &sum, why, sizeof why), IFPP_OK);
    assert_int_equal(sum.duplicate, 18);
    assert_int_equal(sum.added, 0);

    struct { const char *what; size_t at; bool truncate; } bad[] = {
        {"truncated", 0, true}, {"altered BPP", 0, false}, {"altered signature", 0, false},
    };
    bad[0].at = T.vault_len / 2;
    bad[1].at = T.vault_len / 2;
    bad[2].at = T.vault_len - 10;
    for (size_t i = 0; i < 3; i++) {
        uint8_t *copy = malloc(T.vault_len);
        memcpy(copy, T.vault, T.vault_len);
        size_t n = T.vault_len;
        if (bad[i].truncate)
            n = bad[i].at;
        else
            copy[bad[i].at] ^= 0x20;
        why[0] = '\0';
        assert_int_not_equal(import_vault(s, copy, n, T.ci, &sum, why, sizeof why), IFPP_OK);
        printf("    %s vault refused: %s\n", bad[i].what, why);
        assert_true(strlen(why) > 10);
        free(copy);
    }
    /* the package offered as a vault; and a vault for keys this station never heard of */
    assert_int_equal(import_vault(s, T.pkg, T.pkg_len, T.ci, &sum, why, sizeof why), IFPP_E_TLV_UNEXPECTED_TAG);
    char *other = tu_path(T.dir, "other.db");
    store *fresh;
    assert_int_equal(store_open(other, &fresh, NULL, 0), IFPP_OK);
    assert_int_not_equal(import_vault(fresh, T.vault, T.vault_len, T.ci, &sum, why, sizeof why), IFPP_OK);
    assert_non_null(strstr(why, "One-time Key this station does not know"));
    assert_int_equal(count(fresh, BPP_AVAILABLE), 0);
    store_close(fresh);
    free(other);
    /* the vault's content re-signed by someone who is not an SM-DPf (the station's own key) */
    bundle_view v;
    assert_int_equal(bundle_open(T.vault, T.vault_len, BUNDLE_BPP_VAULT, T.ci, time(NULL), &v, NULL, 0), IFPP_OK);
    const cert *chain[1] = {T.station};
    uint8_t *forged;
    size_t forged_len;
    assert_int_equal(bundle_seal(BUNDLE_BPP_VAULT, v.content, v.content_len, T.station_key, chain, 1, &forged,
                                 &forged_len), IFPP_OK);
    bundle_view_free(&v);
    assert_int_not_equal(import_vault(s, forged, forged_len, T.ci, &sum, why, sizeof why), IFPP_OK);
    printf("    vault from a wrong signer refused: %s\n", why);
    assert_non_null(strstr(why, "signer certificate not trusted"));
    free(forged);
    /* names that would be path parts or terminal escapes, in a vault the real SM-DPf signed */
    cert *auth;
    crypto_key *auth_key;
    assert_int_equal(testpki_load(T.pki, "dpf-auth", &auth, &auth_key), IFPP_OK);
    static const char *const hostile[] = {"../../x/y", "op\x1b[2Jxyz", "-operator", ".operator"};
    for (size_t h = 0; h < sizeof hostile / sizeof hostile[0]; h++) {
        assert_int_equal(bundle_open(T.vault, T.vault_len, BUNDLE_BPP_VAULT, T.ci, time(NULL), &v, NULL, 0), IFPP_OK);
        uint8_t *content = malloc(v.content_len);
        memcpy(content, v.content, v.content_len);
        size_t replaced = 0;
        /* the items' profile type field, UTF8String "operatorA": the same length keeps the DER valid */
        for (size_t k = 0; k + 11 <= v.content_len; k++)
            if (memcmp(content + k, "\x0c\x09operatorA", 11) == 0) {
                memcpy(content + k + 2, hostile[h], 9);
                replaced++;
            }
        assert_int_equal(replaced, 18);
        const cert *dpf_chain[1] = {auth};
        assert_int_equal(bundle_seal(BUNDLE_BPP_VAULT, content, v.content_len, auth_key, dpf_chain, 1, &forged,
                                     &forged_len), IFPP_OK);
        bundle_view_free(&v);
        free(content);
        why[0] = '\0';
        assert_int_equal(import_vault(s, forged, forged_len, T.ci, &sum, why, sizeof why), IFPP_E_ARG);
        assert_non_null(strstr(why, "profile type is not a plain name"));
        free(forged);
    }
    printf("    hostile profile type refused: %s\n", why);
    cert_free(auth);
    crypto_key_free(auth_key);
    /* a second vault binding new BPPs to the same One-time Keys (GENS08): refused, nothing added */
    uint8_t *second;
    size_t second_len;
    smdpf_vault_summary vs;
    assert_int_equal(smdpf_make_vault(T.pki, T.req, T.req_len, 4096, &second, &second_len, &vs, why, sizeof why), IFPP_OK);
    assert_int_not_equal(import_vault(s, second, second_len, T.ci, &sum, why, sizeof why), IFPP_OK);
    printf("    second BPP for a used One-time Key refused: %s\n", why);
    assert_non_null(strstr(why, "GENS08"));
    free(second);
    assert_int_equal(store_audit_verify(s, &audit_after, NULL, 0), IFPP_OK);
    assert_int_equal(audit_after, audit_before); /* nothing written by any refusal or the no-op */
    assert_int_equal(count(s, BPP_AVAILABLE), 18);
    store_close(s);
}

typedef struct {
    session_step kill_at;
} kill_plan;

static void maybe_die(void *arg, session_step step, const char *detail)
{
    (void)detail;
    kill_plan *k = arg;
    if (k && step == k->kill_at)
        raise(SIGKILL);
}

static ifpp_err provision(int card, bool complete, kill_plan *kill, session_result *r)
{
    store *s;
    fpa_slot slot;
    char why[256];
    ifpp_err e = store_open(T.db, &s, why, sizeof why);
    if (e == IFPP_OK && (e = fpa_open("virtual", T.card[card], &slot, why, sizeof why)) == IFPP_OK) {
        session_ctx c = {.st = s, .slot = &slot, .slot_name = "fixture-1", .dm_fpa_key = T.dm_fpa_key,
                         .dm_fpa_cert = T.dm_fpa, .delete_keys_when_done = complete, .progress = maybe_die,
                         .additional_profile = true /* these DUTs take one profile after another */,
                         .progress_arg = kill};
        e = session_provision(&c, "DUT-0001", NULL, r);
        fpa_close(&slot);
    }
    store_close(s);
    return e;
}

/* `ifppctl recover` on the card's slot, as the line would run it after a crash; returns how many it resolved. */
static size_t recover(int card)
{
    char slot[600], out[4096];
    snprintf(slot, sizeof slot, "virtual:%s", T.card[card]);
    char *argv[] = {(char *)tu_tool("IFPP_IFPPCTL", "ifppctl"), "--store", T.db, "--pki", T.pki, "recover", "--slot",
                    slot, NULL};
    assert_int_equal(tu_run(argv, out, sizeof out), 0);
    const char *at = strstr(out, ": ");
    unsigned long resolved = 0;
    assert_non_null(at);
    assert_int_equal(sscanf(at + 2, "%lu BPP(s) resolved", &resolved), 1);
    return resolved;
}

static void card_counts(int card, size_t *otks, size_t *profiles)
{
    euicc_sim *sim;
    assert_int_equal(euicc_sim_open(T.card[card], &sim), IFPP_OK);
    *otks = euicc_sim_otk_count(sim);
    *profiles = euicc_sim_profile_count(sim);
    euicc_sim_close(sim);
}

static void test_provision_and_complete(void **state)
{
    (void)state;
    session_result r;
    assert_int_equal(provision(0, false, NULL, &r), IFPP_OK);
    assert_true(r.installed);
    assert_int_equal(r.final_state, BPP_INSTALLED);
    assert_non_null(strstr(r.message, "profile installed"));
    size_t otks, profiles;
    card_counts(0, &otks, &profiles);
    assert_int_equal(otks, 1);
    assert_int_equal(profiles, 1);
    /* the DUT's last profile: then no One-time Key may remain (DMF03) */
    assert_int_equal(provision(0, true, NULL, &r), IFPP_OK);
    assert_true(r.installed);
    card_counts(0, &otks, &profiles);
    assert_int_equal(otks, 0);
    assert_int_equal(profiles, 2);
    /* nothing left for this eUICC: the card itself says so, before any BPP is reserved */
    assert_int_equal(provision(0, false, NULL, &r), IFPP_E_SIGNATURE);
    assert_non_null(strstr(r.message, "fpaServicesUnavailable"));
    assert_int_equal(r.card_result, 4);
    assert_int_equal(r.failed_step, SESSION_STEP_AUTHORISE);
    store *s;
    assert_int_equal(store_open(T.db, &s, NULL, 0), IFPP_OK);
    assert_int_equal(count(s, BPP_INSTALLED), 2);
    assert_int_equal(store_audit_verify(s, NULL, NULL, 0), IFPP_OK);
    store_close(s);
}

/*
 * SIGKILL at every step of a session in turn; after each, recovery brings the store to what the
 * eUICC proves: nothing reserved or in doubt, installed BPPs = the card's profiles, available
 * BPPs = the card's One-time Keys (every key carries exactly one BPP), the audit chain intact.
 */
static void test_kill_at_every_step(void **state)
{
    (void)state;
    const int card = 2;
    /* every step of a normal session, then the last session of the DUT, killed while deleting keys */
    static const session_step order[] = {SESSION_STEP_SELECT, SESSION_STEP_EID, SESSION_STEP_RESERVE,
                                         SESSION_STEP_AUTHORISE, SESSION_STEP_PREPARE, SESSION_STEP_LOAD,
                                         SESSION_STEP_PIR, SESSION_STEP_ACK, SESSION_STEP_DONE,
                                         SESSION_STEP_DELETE_KEYS};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        session_step k = order[i];
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            kill_plan plan = {.kill_at = k};
            session_result r;
            provision(card, k == SESSION_STEP_DELETE_KEYS, &plan, &r);
            _exit(0); /* reached only if the step never came */
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        size_t resolved = recover(card);

        store *s;
        assert_int_equal(store_open(T.db, &s, NULL, 0), IFPP_OK);
        uint8_t txids[32][16];
        size_t lens[32], unresolved;
        assert_int_equal(store_unresolved(s, T.info[card].eid, txids, lens, 32, &unresolved), IFPP_OK);
        assert_int_equal(unresolved, 0);
        size_t otks, profiles;
        card_counts(card, &otks, &profiles);
        /* only card 2's BPPs move in this test: card 0 installed two before, card 1's two stay available */
        size_t installed_here = count(s, BPP_INSTALLED) - 2;
        size_t available_here = count(s, BPP_AVAILABLE) - 2;
        assert_int_equal(installed_here, profiles);
        if (k != SESSION_STEP_DELETE_KEYS) {
            assert_int_equal(available_here, otks);
        } else {
            /* killed inside DeleteOneTimeKeys: whatever the card did, the store agrees with it */
            assert_int_equal(available_here + count(s, BPP_DELETED), 14 - profiles);
            assert_int_equal(available_here, otks);
        }
        assert_int_equal(count(s, BPP_FAILED), 0);
        assert_int_equal(store_audit_verify(s, NULL, NULL, 0), IFPP_OK);
        printf("    killed at '%s': %zu resolved by recovery; card: %zu profile(s), %zu key(s)\n",
               session_step_name(k), resolved, profiles, otks);
        store_close(s);
    }
}

/*
 * An FPA that runs the ES10f BPP sequence itself (SGP.41 §3.2.3): the engine hands it the whole
 * BPP operation through fpa_ops.load_bpp (authorisation signed by the station on the FPA's request,
 * PrepareBppLoad, the BPP) instead of sending the commands. Here the emulated FPA firmware of
 * tests/sim/usb_device_fpa.c runs over the virtual backend.
 */
extern const fpa_ops fpa_virtual_ops;
static int hw_loads;

static ifpp_err hw_load_bpp(void *ctx, fpa_bpp_job *job, uint8_t *pir, size_t cap, size_t *pir_len)
{
    hwfpa f;
    usbf_bpp_error fail;
    uint8_t bf70[2048];
    size_t n;
    usbf_bpp_op op = {.chain = job->chain, .chain_len = job->chain_len, .txid = job->txid,
                      .txid_len = job->txid_len, .otpk = job->otpk, .bpp = job->bpp, .bpp_len = job->bpp_len};
    ifpp_err e = hwfpa_begin(&f, fpa_virtual_ops.transmit, ctx, &fail);
    hw_loads++;
    *pir_len = 0;
    if (e == IFPP_OK && (e = job->sign(job->sign_ctx, f.challenge, f.eid, bf70, sizeof bf70, &n)) == IFPP_OK)
        e = hwfpa_finish(&f, &op, bf70, n, pir, cap, pir_len, &fail);
    return e;
}

static void test_fpa_with_whole_bpp_operation(void **state)
{
    (void)state;
    fpa_ops hw = fpa_virtual_ops;
    hw.name = "hw-fpa";
    hw.load_bpp = hw_load_bpp;
    store *s;
    fpa_slot slot;
    session_result r;
    assert_int_equal(store_open(T.db, &s, NULL, 0), IFPP_OK);
    assert_int_equal(hw.open(T.card[1], &slot.ctx, NULL, 0), IFPP_OK);
    slot.ops = &hw;
    session_ctx c = {.st = s, .slot = &slot, .slot_name = "fixture-hw", .dm_fpa_key = T.dm_fpa_key,
                     .dm_fpa_cert = T.dm_fpa};
    assert_int_equal(session_provision(&c, "DUT-HW", NULL, &r), IFPP_OK);
    assert_true(r.installed);
    assert_int_equal(hw_loads, 1);
    fpa_close(&slot);
    store_close(s);
}

/*
 * GENF01: vaults from two SM-DPfs live side by side in one store. Two lines under different
 * CIs, each eUICC trusting only its own; the station's request reaches both SM-DPfs, each binds
 * only what it can verify (DPFF10), and each DUT is loaded with the BPP -- and the binding
 * certificate -- of its own SM-DPf.
 */
static void test_two_smdpfs_side_by_side(void **state)
{
    (void)state;
    char why[512] = "";
    test_line a, b;
    test_line_opts o = {.n_cards = 1, .n_otks = {2}, .profile_size = 2048};
    char *root = tu_path(T.dir, "two-smdpf"), *da = tu_path(root, "a"), *db = tu_path(root, "b");
    char *station_db = tu_path(root, "station.db");
    assert_int_equal(mkdir(root, 0700), 0);
    assert_int_equal(mkdir(da, 0700), 0);
    assert_int_equal(mkdir(db, 0700), 0);
    assert_int_equal(test_line_make(&a, da, &o, why, sizeof why), 0);
    assert_int_equal(test_line_make(&b, db, &o, why, sizeof why), 0);
    store *s;
    import_summary sum;
    assert_int_equal(store_open(station_db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(import_euicc_data(s, a.pkg, a.pkg_len, a.ci, &sum, why, sizeof why), IFPP_OK);
    assert_int_equal(import_euicc_data(s, b.pkg, b.pkg_len, b.ci, &sum, why, sizeof why), IFPP_OK);
    const test_line *lines[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        uint8_t *req, *vault;
        size_t req_len, vault_len, items;
        smdpf_vault_summary vs;
        assert_int_equal(export_bpp_request(s, "station-01", "operatorA", lines[i]->station_key, lines[i]->station,
                                            &req, &req_len, &items, why, sizeof why),
                         IFPP_OK);
        assert_int_equal(smdpf_make_vault(lines[i]->pki, req, req_len, 2048, &vault, &vault_len, &vs, why, sizeof why),
                         IFPP_OK);
        /* the first request asks for all four keys; the other SM-DPf's eUICC does not verify here */
        assert_int_equal(vs.bpps, 2);
        assert_int_equal(items, i == 0 ? 4u : 2u);
        assert_int_equal(import_vault(s, vault, vault_len, lines[i]->ci, &sum, why, sizeof why), IFPP_OK);
        free(req);
        free(vault);
    }
    assert_int_equal(count(s, BPP_AVAILABLE), 4);
    for (int i = 0; i < 2; i++) {
        fpa_slot slot;
        session_result r;
        assert_int_equal(fpa_open("virtual", lines[i]->card[0], &slot, why, sizeof why), IFPP_OK);
        session_ctx c = {.st = s, .slot = &slot, .slot_name = "fixture-1", .dm_fpa_key = lines[i]->dm_fpa_key,
                         .dm_fpa_cert = lines[i]->dm_fpa};
        assert_int_equal(session_provision(&c, "DUT-GENF01", NULL, &r), IFPP_OK);
        if (!r.installed)
            fail_msg("line %d: %s", i, r.message);
        fpa_close(&slot);
    }
    assert_int_equal(count(s, BPP_INSTALLED), 2);
    assert_int_equal(count(s, BPP_AVAILABLE), 2);
    store_close(s);
    test_line_free(&a);
    test_line_free(&b);
    free(root); free(da); free(db); free(station_db);
}

/* A slot that loses every NotificationSent ('BF30'): the card keeps the PIR it signed. */
static ifpp_err drop_ack_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    if (n > 6 && cmd[1] == 0xE2 && cmd[5] == 0xBF && cmd[6] == 0x30)
        return IFPP_E_TRANSPORT;
    return fpa_virtual_ops.transmit(ctx, cmd, n, resp, cap, rn);
}

/* Recovery of the card in card_file with c's store; then how many PIRs the card still keeps. */
static size_t recover_then_count_kept(session_ctx *c, const char *card_file)
{
    fpa_slot slot;
    euicc_sim *card;
    size_t resolved;
    char why[512] = "";
    assert_int_equal(fpa_open("virtual", card_file, &slot, why, sizeof why), IFPP_OK);
    c->slot = &slot;
    assert_int_equal(session_recover(c, &resolved, why, sizeof why), IFPP_OK);
    fpa_close(&slot);
    c->slot = NULL;
    assert_int_equal(euicc_sim_open(card_file, &card), IFPP_OK);
    size_t kept = euicc_sim_notification_count(card);
    euicc_sim_close(card);
    return kept;
}

/*
 * The card forgets a PIR only once the store holds it. The acknowledgement of an installed BPP is
 * lost; recovery by a store that does not know that BPP leaves the PIR on the card; recovery by
 * the station that recorded it acknowledges it.
 */
static void test_kept_pir_stays_until_the_store_holds_it(void **state)
{
    (void)state;
    char why[512] = "";
    test_line L;
    test_line_opts o = {.n_cards = 1, .n_otks = {2}, .profile_size = 2048, .import_vault = true};
    char *dir = tu_path(T.dir, "kept-pir"), *other_db = tu_path(T.dir, "kept-pir/other.db");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(test_line_make(&L, dir, &o, why, sizeof why), 0);
    fpa_ops lossy = fpa_virtual_ops;
    lossy.transmit = drop_ack_transmit;
    store *s, *other;
    fpa_slot slot = {.ops = &lossy};
    session_result r;
    assert_int_equal(store_open(L.db, &s, why, sizeof why), IFPP_OK);
    assert_int_equal(lossy.open(L.card[0], &slot.ctx, why, sizeof why), IFPP_OK);
    session_ctx c = {.st = s, .slot = &slot, .slot_name = "fixture-1", .dm_fpa_key = L.dm_fpa_key,
                     .dm_fpa_cert = L.dm_fpa};
    assert_int_equal(session_provision(&c, "DUT-ACK", NULL, &r), IFPP_OK);
    assert_true(r.installed);
    fpa_close(&slot);

    /* another store, which knows the eUICC but not this BPP: the PIR is not its to let go */
    assert_int_equal(store_open(other_db, &other, why, sizeof why), IFPP_OK);
    import_summary sum;
    assert_int_equal(import_euicc_data(other, L.pkg, L.pkg_len, L.ci, &sum, why, sizeof why), IFPP_OK);
    c.st = other;
    assert_int_equal(recover_then_count_kept(&c, L.card[0]), 1);
    store_close(other);

    /* the station that recorded it: acknowledged, the card forgets it */
    c.st = s;
    assert_int_equal(recover_then_count_kept(&c, L.card[0]), 0);
    store_close(s);
    test_line_free(&L);
    free(dir);
    free(other_db);
}

/* The README's main job: `ifppctl demo` runs the whole simulated line and the SM-DPf accepts the report. */
static void test_ifppctl_demo(void **state)
{
    (void)state;
    char *dir = tu_path(T.dir, "demo");
    char out[65536];
    char *argv[] = {(char *)tu_tool("IFPP_IFPPCTL", "ifppctl"), "demo", "--dir", dir, "--duts", "2", NULL};
    assert_int_equal(tu_run(argv, out, sizeof out), 0);
    assert_non_null(strstr(out, "line result: 2 of 2 DUTs PASS"));
    assert_non_null(strstr(out, "SM-DPf: report accepted"));
    assert_non_null(strstr(out, "hash chain intact"));
    /* and the same directory again is refused, not overwritten */
    assert_int_equal(tu_run(argv, NULL, 0), 1);
    /* a hostile vault through the CLI: refused by name, the store as it was */
    char *db = tu_path(dir, "station.db"), *pki = tu_path(dir, "pki"), *bad = tu_path(dir, "bad-vault.der");
    char *vault = tu_path(dir, "bpp-vault.der");
    size_t n;
    uint8_t *v = tu_read_file(vault, &n);
    v[n / 3] ^= 0x10;
    assert_int_equal(tu_write_file(bad, v, n), 0);
    free(v);
    char *status[] = {argv[0], "--store", db, "status", NULL};
    char before[512], after[512];
    assert_int_equal(tu_run(status, before, sizeof before), 0);
    char *imp[] = {argv[0], "--store", db, "--pki", pki, "import-vault", bad, NULL};
    assert_int_equal(tu_run(imp, NULL, 0), 3); /* ifppctl's exit code for a refusal (agent/station.h) */
    assert_int_equal(tu_run(status, after, sizeof after), 0);
    assert_string_equal(before, after);
    /* names and days from the command line that cannot be right: refused, no file written */
    char *req = tu_path(dir, "req2.der"), *rep = tu_path(dir, "report2.der");
    char *bad_type[] = {argv[0], "--store", db, "--pki", pki, "request", "--out", req, "--profile-type", "../up", NULL};
    char *bad_station[] = {argv[0], "--store", db, "--pki", pki, "--station-id", "st 1", "report", "--out", rep, NULL};
    char *bad_day[] = {argv[0], "--store", db, "--pki", pki, "report", "--out", rep, "--day", "2026-13-01", NULL};
    char *short_day[] = {argv[0], "--store", db, "--pki", pki, "report", "--out", rep, "--day", "2026-1", NULL};
    char *const *refused[] = {bad_type, bad_station, bad_day, short_day};
    const int exit_code[] = {3, 3, 2, 2}; /* refused by the exporter; bad usage (agent/station.h) */
    struct stat st;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(tu_run((char *const *)refused[i], NULL, 0), exit_code[i]);
        assert_int_not_equal(stat(req, &st), 0);
        assert_int_not_equal(stat(rep, &st), 0);
    }
    assert_int_equal(tu_run(status, after, sizeof after), 0);
    assert_string_equal(before, after);
    free(req); free(rep);
    free(dir); free(db); free(pki); free(bad); free(vault);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imports),
        cmocka_unit_test(test_provision_and_complete),
        cmocka_unit_test(test_kill_at_every_step),
        cmocka_unit_test(test_fpa_with_whole_bpp_operation),
        cmocka_unit_test(test_two_smdpfs_side_by_side),
        cmocka_unit_test(test_kept_pir_stays_until_the_store_holds_it),
        cmocka_unit_test(test_ifppctl_demo),
    };
    return cmocka_run_group_tests_name("session", tests, setup, teardown);
}
