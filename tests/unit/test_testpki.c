/*
 * test_testpki.c -- the `ifpp-testpki` command as a user runs it: every file it promises,
 * private keys 0600, EIDs with valid check digits, both curves, usage errors exit 2.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cert.h"
#include "testpki.h"
#include "testutil.h"

static const char *tool(void)
{
    return tu_tool("IFPP_TESTPKI", "ifpp-testpki");
}

static void check_pair(const char *dir, const char *name, crypto_curve curve, cert_role role)
{
    cert *c;
    crypto_key *k;
    char path[1024];
    struct stat st;
    assert_int_equal(testpki_load(dir, name, &c, &k), IFPP_OK);
    assert_int_equal(crypto_key_curve(k), curve);
    cert_role r;
    assert_int_equal(cert_role_of(c, &r), IFPP_OK);
    assert_int_equal(r, role);
    snprintf(path, sizeof path, "%s/%s.key.pem", dir, name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* the key is the certificate's */
    crypto_key *pub;
    uint8_t a[65], b[65];
    assert_int_equal(cert_public_key(c, &pub), IFPP_OK);
    crypto_key_public(pub, a);
    crypto_key_public(k, b);
    assert_memory_equal(a, b, 65);
    /* SGP.22: the SM-DP's OID as subjectAltName registeredID in CERT.DPauth and CERT.DPpb, nowhere else. */
    uint8_t oid[64];
    size_t oid_len;
    if (role == CERT_ROLE_DPF_AUTH || role == CERT_ROLE_DPF_PB) {
        char text[64];
        assert_int_equal(cert_registered_id(c, oid, sizeof oid, &oid_len), IFPP_OK);
        cert_oid_text(oid, oid_len, text, sizeof text);
        assert_string_equal(text, TESTPKI_SMDPF_OID);
    } else {
        assert_int_equal(cert_registered_id(c, oid, sizeof oid, &oid_len), IFPP_E_NOT_FOUND);
    }
    crypto_key_free(pub);
    crypto_key_free(k);
    cert_free(c);
}

static void run_and_check(crypto_curve curve, const char *curve_arg)
{
    char *dir = tu_mkdtemp("ifpp-testpki");
    char *out = tu_path(dir, "pki");
    char text[4096];
    char *argv[] = {(char *)tool(), "--out", out, "--curve", (char *)curve_arg, "--eids", "3", NULL};
    assert_int_equal(tu_run(argv, text, sizeof text), 0);
    assert_non_null(strstr(text, "written to"));
    static const struct { const char *name; cert_role role; } parties[] = {
        {"ci", CERT_ROLE_CI}, {"eum", CERT_ROLE_EUM}, {"dpf-auth", CERT_ROLE_DPF_AUTH},
        {"dpf-pb", CERT_ROLE_DPF_PB}, {"dm-root", CERT_ROLE_DM_ROOT}, {"dm-fpa", CERT_ROLE_DM_FPA},
        {"station", CERT_ROLE_STATION},
    };
    for (size_t i = 0; i < sizeof parties / sizeof parties[0]; i++)
        check_pair(out, parties[i].name, curve, parties[i].role);

    /* three eUICCs, each with a valid EID, named after it, with the EID in the subject */
    char *edir = tu_path(out, "euicc");
    DIR *d = opendir(edir);
    assert_non_null(d);
    struct dirent *ent;
    int certs = 0;
    while ((ent = readdir(d))) {
        size_t n = strlen(ent->d_name);
        if (n != TESTPKI_EID_LEN + 9 || strcmp(ent->d_name + TESTPKI_EID_LEN, ".cert.pem") != 0)
            continue;
        char eid[TESTPKI_EID_LEN + 1], name[64];
        memcpy(eid, ent->d_name, TESTPKI_EID_LEN);
        eid[TESTPKI_EID_LEN] = '\0';
        assert_true(testpki_eid_valid(eid));
        snprintf(name, sizeof name, "euicc/%s", eid);
        check_pair(out, name, curve, CERT_ROLE_EUICC);
        cert *c;
        assert_int_equal(testpki_load(out, name, &c, NULL), IFPP_OK);
        assert_string_equal(cert_subject_serial(c), eid);
        cert_free(c);
        certs++;
    }
    closedir(d);
    assert_int_equal(certs, 3);

    char *conf = tu_path(out, "pki.conf"), *readme = tu_path(out, "README.txt");
    size_t n;
    uint8_t *data = tu_read_file(conf, &n);
    assert_non_null(data);
    assert_non_null(strstr((char *)data, crypto_curve_name(curve)));
    free(data);
    data = tu_read_file(readme, &n);
    assert_non_null(data);
    assert_non_null(strstr((char *)data, "THROW-AWAY TEST KEYS"));
    free(data);
    assert_int_equal(tu_rmrf(dir), 0);
    free(conf); free(readme); free(edir); free(out); free(dir);
}

static void test_p256(void **state) { (void)state; run_and_check(CRYPTO_CURVE_P256, "p256"); }
static void test_brainpool(void **state) { (void)state; run_and_check(CRYPTO_CURVE_BRAINPOOLP256R1, "brainpool"); }

static void test_given_eids_and_usage_errors(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("ifpp-testpki");
    char eid[TESTPKI_EID_LEN + 1];
    assert_int_equal(testpki_eid_random(eid), IFPP_OK);
    char path[1024];
    char *given[] = {(char *)tool(), "--out", dir, "--eid", eid, NULL};
    assert_int_equal(tu_run(given, NULL, 0), 0);
    snprintf(path, sizeof path, "%s/euicc/%s.cert.pem", dir, eid);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* the manifest gives the EID back to the other tools */
    char(*eids)[TESTPKI_EID_LEN + 1] = NULL;
    size_t n = 0;
    assert_int_equal(testpki_eids(dir, &eids, &n), IFPP_OK);
    assert_int_equal(n, 1);
    assert_string_equal(eids[0], eid);
    free(eids);

    char bad_eid[TESTPKI_EID_LEN + 1];
    memcpy(bad_eid, eid, sizeof bad_eid);
    bad_eid[31] = bad_eid[31] == '9' ? '0' : (char)(bad_eid[31] + 1); /* check digits now wrong */
    assert_false(testpki_eid_valid(bad_eid));
    /* a manifest whose EID fails its check digits, or lists none, or is missing, gives nothing */
    char manifest[2048], text[256];
    snprintf(manifest, sizeof manifest, "%s/pki.conf", dir);
    snprintf(text, sizeof text, "curve = P-256\neids = %s,%s\n", eid, bad_eid);
    assert_int_equal(tu_write_file(manifest, (const uint8_t *)text, strlen(text)), 0);
    assert_int_equal(testpki_eids(dir, &eids, &n), IFPP_E_RANGE);
    assert_null(eids);
    snprintf(text, sizeof text, "curve = P-256\neids = %s,123\n", eid);
    assert_int_equal(tu_write_file(manifest, (const uint8_t *)text, strlen(text)), 0);
    assert_int_equal(testpki_eids(dir, &eids, &n), IFPP_E_RANGE);
    assert_int_equal(tu_write_file(manifest, (const uint8_t *)"eids = \n", 8), 0);
    assert_int_equal(testpki_eids(dir, &eids, &n), IFPP_E_RANGE);
    assert_int_equal(unlink(manifest), 0);
    assert_int_equal(testpki_eids(dir, &eids, &n), IFPP_E_IO);
    char *bad[] = {(char *)tool(), "--out", dir, "--eid", bad_eid, NULL};
    assert_int_equal(tu_run(bad, NULL, 0), 1);
    char *no_out[] = {(char *)tool(), NULL};
    assert_int_equal(tu_run(no_out, NULL, 0), 2);
    char *curve[] = {(char *)tool(), "--out", dir, "--curve", "secp384r1", NULL};
    assert_int_equal(tu_run(curve, NULL, 0), 2);
    char *count[] = {(char *)tool(), "--out", dir, "--eids", "0", NULL};
    assert_int_equal(tu_run(count, NULL, 0), 2);
    char *junk[] = {(char *)tool(), "--out", dir, "extra", NULL};
    assert_int_equal(tu_run(junk, NULL, 0), 2);
    assert_false(testpki_eid_valid("8904903200000000000000000000000"));   /* 31 digits */
    assert_false(testpki_eid_valid("890490320000000000000000000000x1"));
    assert_int_equal(tu_rmrf(dir), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p256),
        cmocka_unit_test(test_brainpool),
        cmocka_unit_test(test_given_eids_and_usage_errors),
    };
    return cmocka_run_group_tests_name("testpki", tests, NULL, NULL);
}
