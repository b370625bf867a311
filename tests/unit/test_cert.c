/*
 * test_cert.c -- chain verification with the SGP.22 profile and the IFPP roles.
 *
 * A full test PKI on each curve verifies for every role; then one deliberately wrong
 * certificate per rule, each refused with its own error code. The good chains are also
 * checked by an independent implementation, `openssl verify -x509_strict`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cert.h"
#include "testpki.h"
#include "testutil.h"

typedef struct {
    char *dir;
    cert *ci, *eum, *dm_root, *euicc;
    crypto_key *ci_k, *eum_k, *dm_k, *euicc_k;
    char eid[TESTPKI_EID_LEN + 1];
} pki;

static int pki_teardown(void **state)
{
    pki *p = *state;
    tu_rmrf(p->dir);
    free(p->dir);
    cert_free(p->ci); cert_free(p->eum); cert_free(p->dm_root); cert_free(p->euicc);
    crypto_key_free(p->ci_k); crypto_key_free(p->eum_k); crypto_key_free(p->dm_k); crypto_key_free(p->euicc_k);
    free(p);
    return 0;
}

static int pki_setup(void **state, crypto_curve curve)
{
    pki *p = calloc(1, sizeof *p);
    char why[256];
    p->dir = tu_mkdtemp("ifpp-cert");
    testpki_eid_random(p->eid);
    const char *eids[] = {p->eid};
    testpki_opts o = {.out_dir = p->dir, .curve = curve, .eids = eids, .n_eids = 1, .days = 30};
    *state = p;
    if (testpki_make(&o, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "testpki: %s\n", why);
        pki_teardown(state);
        return -1;
    }
    char name[64];
    snprintf(name, sizeof name, "euicc/%s", p->eid);
    if (testpki_load(p->dir, "ci", &p->ci, &p->ci_k) || testpki_load(p->dir, "eum", &p->eum, &p->eum_k) ||
        testpki_load(p->dir, "dm-root", &p->dm_root, &p->dm_k) || testpki_load(p->dir, name, &p->euicc, &p->euicc_k)) {
        pki_teardown(state);
        return -1;
    }
    return 0;
}
static int setup_p256(void **state) { return pki_setup(state, CRYPTO_CURVE_P256); }
static int setup_brainpool(void **state) { return pki_setup(state, CRYPTO_CURVE_BRAINPOOLP256R1); }

static ifpp_err verify(const cert *root, const cert *inter, const cert *leaf, cert_role role)
{
    char why[256];
    const cert *i[1] = {inter};
    ifpp_err e = cert_verify_chain(root, i, inter ? 1 : 0, leaf, role, time(NULL), why, sizeof why);
    if (e != IFPP_OK)
        printf("    (refused as expected? %s: %s)\n", err_name(e), why);
    return e;
}

static void test_every_role_verifies(void **state)
{
    pki *p = *state;
    static const struct { const char *name; cert_role role; bool via_eum; bool dm; } leaves[] = {
        {"eum", CERT_ROLE_EUM, false, false},           {"dpf-auth", CERT_ROLE_DPF_AUTH, false, false},
        {"dpf-pb", CERT_ROLE_DPF_PB, false, false},     {"dm-fpa", CERT_ROLE_DM_FPA, false, true},
        {"station", CERT_ROLE_STATION, false, true},
    };
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        cert *c;
        assert_int_equal(testpki_load(p->dir, leaves[i].name, &c, NULL), IFPP_OK);
        assert_int_equal(verify(leaves[i].dm ? p->dm_root : p->ci, NULL, c, leaves[i].role), IFPP_OK);
        cert_role r;
        assert_int_equal(cert_role_of(c, &r), IFPP_OK);
        assert_int_equal(r, leaves[i].role);
        /* the other hierarchy's root does not vouch for it */
        assert_int_equal(verify(leaves[i].dm ? p->ci : p->dm_root, NULL, c, leaves[i].role), IFPP_E_CERT_CHAIN);
        cert_free(c);
    }
    assert_int_equal(verify(p->ci, p->eum, p->euicc, CERT_ROLE_EUICC), IFPP_OK);
    assert_string_equal(cert_subject_serial(p->euicc), p->eid);
    assert_int_equal(verify(p->ci, NULL, p->ci, CERT_ROLE_CI), IFPP_OK);
    assert_int_equal(verify(p->dm_root, NULL, p->dm_root, CERT_ROLE_DM_ROOT), IFPP_OK);
    /* the eUICC without its EUM does not chain */
    assert_int_equal(verify(p->ci, NULL, p->euicc, CERT_ROLE_EUICC), IFPP_E_CERT_CHAIN);
    /* right chain, wrong role asked */
    assert_int_equal(verify(p->ci, p->eum, p->euicc, CERT_ROLE_DPF_PB), IFPP_E_CERT_ROLE);
    /* a public key of the right curve comes out */
    crypto_key *k;
    assert_int_equal(cert_public_key(p->euicc, &k), IFPP_OK);
    crypto_key_free(k);
    uint8_t ski[32];
    size_t n;
    assert_int_equal(cert_subject_key_id(p->ci, ski, sizeof ski, &n), IFPP_OK);
    assert_int_equal(n, 20);
}

/* An independent implementation agrees on the good chain. */
static void test_openssl_cli_agrees(void **state)
{
    pki *p = *state;
    char *ca = tu_path(p->dir, "ci.cert.pem"), *eum = tu_path(p->dir, "eum.cert.pem");
    char leaf[512], out[16384];
    snprintf(leaf, sizeof leaf, "%s/euicc/%s.cert.pem", p->dir, p->eid);
    char *argv[] = {"openssl", "verify", "-x509_strict", "-CAfile", ca, "-untrusted", eum, leaf, NULL};
    assert_int_equal(tu_run(argv, out, sizeof out), 0);
    assert_non_null(strstr(out, ": OK"));
    char *text[] = {"openssl", "x509", "-noout", "-text", "-in", leaf, NULL};
    assert_int_equal(tu_run(text, out, sizeof out), 0);
    assert_non_null(strstr(out, "2.23.146.1.2.1.1"));
    free(ca);
    free(eum);
}

/* A leaf under the EUM, made to spec with one thing wrong. */
static cert *make_leaf(pki *p, testpki_cert_spec s)
{
    cert *c = NULL;
    crypto_key *k = NULL;
    if (!s.subject_pkey) {
        crypto_key_generate(crypto_key_curve(p->eum_k), &k);
        s.subject_pkey = crypto_key_evp(k);
    }
    if (!s.issuer) {
        s.issuer = p->eum;
        s.issuer_pkey = crypto_key_evp(p->eum_k);
    }
    if (!s.cn)
        s.cn = "negative test";
    if (!s.not_after)
        s.not_after = 3600;
    assert_int_equal(testpki_make_cert(&s, &c), IFPP_OK);
    crypto_key_free(k);
    return c;
}

static void test_negatives(void **state)
{
    pki *p = *state;
    cert *c;

    c = make_leaf(p, (testpki_cert_spec){.role = CERT_ROLE_EUICC, .not_before = -7200, .not_after = -3600});
    assert_int_equal(verify(p->ci, p->eum, c, CERT_ROLE_EUICC), IFPP_E_CERT_EXPIRED);
    cert_free(c);
    c = make_leaf(p, (testpki_cert_spec){.role = CERT_ROLE_EUICC, .not_before = 3600, .not_after = 7200});
    assert_int_equal(verify(p->ci, p->eum, c, CERT_ROLE_EUICC), IFPP_E_CERT_EXPIRED);
    cert_free(c);
    c = make_leaf(p, (testpki_cert_spec){.role = CERT_ROLE_DPF_PB});
    assert_int_equal(verify(p->ci, p->eum, c, CERT_ROLE_EUICC), IFPP_E_CERT_ROLE);
    assert_int_equal(verify(p->ci, p->eum, c, CERT_ROLE_DPF_PB), IFPP_E_CERT_ROLE); /* an EUM cannot issue it */
    cert_free(c);
    c = make_leaf(p, (testpki_cert_spec){.role = CERT_ROLE_EUICC, .no_policy = true});
    assert_int_equal(verify(p->ci, p->eum, c, CERT_ROLE_EUICC), IFPP_E_CERT_ROLE);
    cert_role r;
    assert_int_equal(cert_role_of(c, &r), IFPP_E_CERT_ROLE);
    cert_free(c);
    c = make_leaf(p, (testpki_cert_spec){.role = CERT_ROLE_EUICC, .no_digital_signature = true});
    assert_int_equal(verify(p->ci, p->eum, c, CERT_ROLE_EUICC), IFPP_E_CERT_KEY_USAGE);
    cert_free(c);

    /* an eUICC issued straight by the CI skips the EUM: wrong hierarchy */
    c = make_leaf(p, (testpki_cert_spec){.role = CERT_ROLE_EUICC, .issuer = p->ci, .issuer_pkey = crypto_key_evp(p->ci_k)});
    assert_int_equal(verify(p->ci, NULL, c, CERT_ROLE_EUICC), IFPP_E_CERT_ROLE);
    cert_free(c);

    /* a leaf used as an issuer: the eUICC signs another "eUICC" */
    c = make_leaf(p, (testpki_cert_spec){.role = CERT_ROLE_EUICC, .issuer = p->euicc,
                                         .issuer_pkey = crypto_key_evp(p->euicc_k)});
    const cert *two[2] = {p->euicc, p->eum};
    char why[256];
    ifpp_err e = cert_verify_chain(p->ci, two, 2, c, CERT_ROLE_EUICC, time(NULL), why, sizeof why);
    assert_true(e == IFPP_E_CERT_KEY_USAGE || e == IFPP_E_CERT_CHAIN);
    assert_int_equal(e, IFPP_E_CERT_KEY_USAGE);
    cert_free(c);

    /* an intermediate CA without keyCertSign */
    crypto_key *ik;
    crypto_key_generate(crypto_key_curve(p->ci_k), &ik);
    cert *inter;
    testpki_cert_spec is = {.cn = "EUM without keyCertSign", .role = CERT_ROLE_EUM, .ca = true, .path_len = 0,
                            .subject_pkey = crypto_key_evp(ik), .issuer = p->ci, .issuer_pkey = crypto_key_evp(p->ci_k),
                            .not_after = 3600, .no_key_cert_sign = true};
    assert_int_equal(testpki_make_cert(&is, &inter), IFPP_OK);
    c = make_leaf(p, (testpki_cert_spec){.role = CERT_ROLE_EUICC, .issuer = inter, .issuer_pkey = crypto_key_evp(ik)});
    assert_int_equal(verify(p->ci, inter, c, CERT_ROLE_EUICC), IFPP_E_CERT_KEY_USAGE);
    cert_free(c);
    cert_free(inter);
    crypto_key_free(ik);

    /* secp384r1: valid X.509, not a curve of the profile */
    EVP_PKEY *big = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp384r1");
    c = make_leaf(p, (testpki_cert_spec){.role = CERT_ROLE_EUICC, .subject_pkey = big});
    assert_int_equal(verify(p->ci, p->eum, c, CERT_ROLE_EUICC), IFPP_E_CERT_ALGORITHM);
    crypto_key *k;
    assert_int_equal(cert_public_key(c, &k), IFPP_E_CERT_ALGORITHM);
    cert_free(c);
    EVP_PKEY_free(big);
}

static void test_tampered_and_malformed_der(void **state)
{
    pki *p = *state;
    const uint8_t *der;
    size_t n;
    cert_der(p->euicc, &der, &n);
    uint8_t *buf = malloc(n + 1);
    cert *c;

    memcpy(buf, der, n);
    buf[n - 1] ^= 0x01; /* last byte of the signature's s */
    assert_int_equal(cert_parse_der(buf, n, &c), IFPP_OK);
    assert_int_equal(verify(p->ci, p->eum, c, CERT_ROLE_EUICC), IFPP_E_CERT_SIGNATURE);
    cert_free(c);

    memcpy(buf, der, n);
    buf[n] = 0x00;
    assert_int_equal(cert_parse_der(buf, n + 1, &c), IFPP_E_CERT_PARSE); /* trailing byte */
    assert_int_equal(cert_parse_der(buf, n - 1, &c), IFPP_E_CERT_PARSE); /* truncated */
    assert_int_equal(cert_parse_der(buf, 0, &c), IFPP_E_CERT_PARSE);
    /* a byte inside the subject name changed: the signature no longer covers it */
    memcpy(buf, der, n);
    const char *cn = "Test eUICC";
    for (size_t i = 0; i + strlen(cn) < n; i++) {
        if (memcmp(buf + i, cn, strlen(cn)) == 0) {
            buf[i] = 'X';
            break;
        }
    }
    assert_int_equal(cert_parse_der(buf, n, &c), IFPP_OK);
    assert_int_equal(verify(p->ci, p->eum, c, CERT_ROLE_EUICC), IFPP_E_CERT_SIGNATURE);
    cert_free(c);
    free(buf);
}

/*
 * cert_der_public_key reads the same key OpenSSL's X.509 parser gives, for every certificate of the PKI
 * (P-256 and brainpoolP256r1), and refuses truncated or altered DER and a point off the curve.
 */
static void test_der_public_key(void **state)
{
    pki *p = *state;
    const cert *certs[] = {p->euicc, p->eum, p->ci, p->dm_root};
    for (size_t i = 0; i < sizeof certs / sizeof certs[0]; i++) {
        const uint8_t *der;
        size_t n;
        cert_der(certs[i], &der, &n);
        crypto_key *a, *b;
        uint8_t pa[CRYPTO_EC_PUB_LEN], pb[CRYPTO_EC_PUB_LEN];
        assert_int_equal(cert_public_key(certs[i], &a), IFPP_OK);
        assert_int_equal(cert_der_public_key(der, n, &b), IFPP_OK);
        assert_int_equal(crypto_key_curve(a), crypto_key_curve(b));
        assert_int_equal(crypto_key_public(a, pa), IFPP_OK);
        assert_int_equal(crypto_key_public(b, pb), IFPP_OK);
        assert_memory_equal(pa, pb, sizeof pa);
        crypto_key_free(a);
        crypto_key_free(b);
    }
    const uint8_t *der;
    size_t n;
    cert_der(p->euicc, &der, &n);
    uint8_t *buf = malloc(n);
    crypto_key *k = NULL;
    for (size_t cut = 0; cut < n; cut += 7)
        assert_int_not_equal(cert_der_public_key(der, cut, &k), IFPP_OK);
    /* the point's last byte changed: not on the curve */
    uint8_t pt[CRYPTO_EC_PUB_LEN];
    crypto_key *e;
    assert_int_equal(cert_public_key(p->euicc, &e), IFPP_OK);
    assert_int_equal(crypto_key_public(e, pt), IFPP_OK);
    crypto_key_free(e);
    memcpy(buf, der, n);
    for (size_t i = 0; i + sizeof pt <= n; i++)
        if (!memcmp(buf + i, pt, sizeof pt)) {
            buf[i + sizeof pt - 1] ^= 0x01;
            break;
        }
    assert_int_not_equal(cert_der_public_key(buf, n, &k), IFPP_OK);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_role_verifies, setup_p256, pki_teardown),
        cmocka_unit_test_setup_teardown(test_every_role_verifies, setup_brainpool, pki_teardown),
        cmocka_unit_test_setup_teardown(test_openssl_cli_agrees, setup_p256, pki_teardown),
        cmocka_unit_test_setup_teardown(test_openssl_cli_agrees, setup_brainpool, pki_teardown),
        cmocka_unit_test_setup_teardown(test_negatives, setup_p256, pki_teardown),
        cmocka_unit_test_setup_teardown(test_negatives, setup_brainpool, pki_teardown),
        cmocka_unit_test_setup_teardown(test_tampered_and_malformed_der, setup_p256, pki_teardown),
        cmocka_unit_test_setup_teardown(test_der_public_key, setup_p256, pki_teardown),
        cmocka_unit_test_setup_teardown(test_der_public_key, setup_brainpool, pki_teardown),
    };
    return cmocka_run_group_tests_name("cert", tests, NULL, NULL);
}
