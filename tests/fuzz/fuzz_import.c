/*
 * fuzz_import.c -- libFuzzer target for the importers' record parsers behind the signature
 * (agent/import.c): a data package or a vault whose signer the station trusts but whose content
 * is hostile -- a compromised or buggy EUM or SM-DPf. fuzz_es10 covers the signed shell; a fuzzer
 * cannot forge a signature, so this target signs what it mutates with the test producer's key.
 *
 * At start-up it makes a small test line (tests/testline.h: one eUICC, two One-time Keys, the SM-DPf
 * under a sub-CA, so the vault carries smdpSubCaCertificates) and
 * keeps the two bundles' contents. Each input is a recipe: byte 0 picks the bundle and whether to
 * truncate; then (offset high, offset low, value) triples overwrite content bytes. The result is
 * sealed by the EUM (package) or the SM-DPf (vault) and imported into a fresh in-memory store --
 * the vault after the untouched package, so that its items can reach the One-time Keys.
 *
 * Property, beyond "no crash": all or nothing. An import that fails leaves no row behind (no
 * BPP after a refused vault, no One-time Key after a refused package).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bundle.h"
#include "import.h"
#include "store.h"
#include "testline.h"
#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    bool ready;
    test_line line;
    uint8_t *content[2]; /* 0: package content, 1: vault content */
    size_t content_len[2];
    crypto_key *key[2];  /* the EUM's and the SM-DPf's signing keys */
    cert *signer[2];
    cert *sub_ca;        /* the SM-DPf's sub-CA: the vault carries it ([1]) and its signer chain does */
} F;

/* The line and both contents, once per process; aborts if the test tools cannot make them. */
static void fuzz_setup(void)
{
    char why[512] = "";
    /* the SM-DPf under a sub-CA, so that smdpSubCaCertificates and its chain checks are fuzzed too */
    test_line_opts o = {.n_cards = 1, .n_otks = {2}, .profile_size = 1024, .dpf_sub_ca = true};
    char *dir = tu_mkdtemp("ifpp-fuzz-import");
    if (!dir || test_line_make(&F.line, dir, &o, why, sizeof why) != 0) {
        fprintf(stderr, "fuzz_import: setup: %s\n", why);
        abort();
    }
    static const struct {
        bundle_type t;
        const char *signer;
    } kinds[2] = {{BUNDLE_EUICC_DATA, "eum"}, {BUNDLE_BPP_VAULT, "dpf-auth"}};
    const uint8_t *bytes[2] = {F.line.pkg, F.line.vault};
    size_t lens[2] = {F.line.pkg_len, F.line.vault_len};
    for (int i = 0; i < 2; i++) {
        bundle_view v;
        if (bundle_open(bytes[i], lens[i], kinds[i].t, F.line.ci, time(NULL), &v, why, sizeof why) != IFPP_OK ||
            testpki_load(F.line.pki, kinds[i].signer, &F.signer[i], &F.key[i]) != IFPP_OK) {
            fprintf(stderr, "fuzz_import: setup: %s\n", why);
            abort();
        }
        F.content[i] = malloc(v.content_len);
        memcpy(F.content[i], v.content, v.content_len);
        F.content_len[i] = v.content_len;
        bundle_view_free(&v);
    }
    if (testpki_load(F.line.pki, "dpf-subca", &F.sub_ca, NULL) != IFPP_OK) {
        fprintf(stderr, "fuzz_import: setup: no SM-DP sub-CA in %s\n", F.line.pki);
        abort();
    }
    tu_rmrf(dir); /* everything needed is in memory now */
    free(dir);
    F.ready = true;
}

static ifpp_err count_key(void *arg, const store_key_record *k)
{
    (void)k;
    (*(size_t *)arg)++;
    return IFPP_OK;
}

/* Every One-time Key in the store (none has a BPP here: no vault goes into a package-only store). */
static size_t count_keys(store *s)
{
    size_t n = 0;
    (void)store_each_unbound_key(s, count_key, &n);
    return n;
}

static size_t count_bpps(store *s)
{
    size_t total = 0, n;
    for (int st = 0; st < BPP_STATE__COUNT; st++)
        if (store_count_bpps(s, (bpp_state)st, &n) == IFPP_OK)
            total += n;
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!F.ready)
        fuzz_setup();
    if (size < 1)
        return 0;
    int which = data[0] & 1;
    size_t n = F.content_len[which];
    uint8_t *c = malloc(n);
    if (!c)
        return 0;
    memcpy(c, F.content[which], n);
    for (size_t i = 1; i + 3 <= size; i += 3)
        c[((size_t)data[i] << 8 | data[i + 1]) % n] = data[i + 2];
    if ((data[0] & 2) && size >= 3) /* cut the content short: a length that promises more than there is */
        n = ((size_t)data[1] << 8 | data[2]) % n + 1;
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    const cert *chain[2] = {F.signer[which], F.sub_ca};
    store *s = NULL;
    import_summary sum;
    char why[512];
    if (bundle_seal(which ? BUNDLE_BPP_VAULT : BUNDLE_EUICC_DATA, c, n, F.key[which], chain, which ? 2 : 1, &sealed,
                    &sealed_len) ==
            IFPP_OK &&
        store_open(":memory:", &s, NULL, 0) == IFPP_OK) {
        if (which == 0) {
            if (import_euicc_data(s, sealed, sealed_len, F.line.ci, &sum, why, sizeof why) != IFPP_OK &&
                count_keys(s) != 0)
                abort(); /* a refused package left a One-time Key behind */
        } else if (import_euicc_data(s, F.line.pkg, F.line.pkg_len, F.line.ci, &sum, why, sizeof why) == IFPP_OK) {
            if (import_vault(s, sealed, sealed_len, F.line.ci, &sum, why, sizeof why) != IFPP_OK && count_bpps(s) != 0)
                abort(); /* a refused vault left a BPP behind */
        }
    }
    store_close(s);
    free(sealed);
    free(c);
    return 0;
}
