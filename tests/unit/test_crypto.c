/*
 * test_crypto.c -- known-answer tests for the crypto core, from published vectors, and a
 * cross-check against the openssl CLI where no vector is published.
 *
 * Sources, one per primitive:
 *   SHA-256          FIPS 180-2 Appendix B.1/B.2 ("abc", the 448-bit message), and the empty string
 *   AES-128 block    FIPS-197 Appendix C.1
 *   AES-128-CBC      NIST SP 800-38A F.2.1 (encrypt) / F.2.2 (decrypt)
 *   AES-CMAC         RFC 4493 §4, Examples 1-4
 *   X9.63 KDF        NIST CAVP SP 800-135 component test "ansx963_2001.rsp", [SHA-256] COUNT 0 of
 *                    the 128-bit/no-SharedInfo and the 1024-bit/128-bit-SharedInfo groups
 *   ECDSA P-256      RFC 6979 §A.2.5 (key, "sample", SHA-256: the deterministic r,s verifies)
 *   ECDH P-256       NIST CAVP KAS ECC CDH primitive "ecccdhtestvectors" [P-256] COUNT 0
 *   ECDH brainpool   RFC 7027 Appendix A.1 (brainpoolP256r1)
 *   ECDSA brainpool  no published vector: our signatures verify with `openssl dgst -verify` and
 *                    the CLI's signatures verify with ours
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto.h"
#include "testutil.h"

#define assert_hex(got, n, want) assert_true(tu_hex_equal((got), (n), (want)))

static void test_sha256_fips180(void **state)
{
    (void)state;
    uint8_t d[32];
    assert_int_equal(crypto_sha256("abc", 3, d), IFPP_OK);
    assert_hex(d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(crypto_sha256("", 0, d), IFPP_OK);
    assert_hex(d, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(crypto_sha256(m, strlen(m), d), IFPP_OK);
    assert_hex(d, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* streaming, in uneven pieces, gives the same */
    crypto_sha256_ctx ctx = {0};
    uint8_t s[32];
    assert_int_equal(crypto_sha256_init(&ctx), IFPP_OK);
    for (size_t i = 0; i < strlen(m); i += 7)
        assert_int_equal(crypto_sha256_update(&ctx, m + i, strlen(m) - i < 7 ? strlen(m) - i : 7), IFPP_OK);
    assert_int_equal(crypto_sha256_final(&ctx, s), IFPP_OK);
    assert_memory_equal(s, d, 32);
    assert_null(ctx.md);
    crypto_sha256_abort(&ctx); /* harmless after final */
}

static void test_aes_fips197_sp800_38a(void **state)
{
    (void)state;
    uint8_t *k = tu_hex("000102030405060708090a0b0c0d0e0f", NULL);
    uint8_t *p = tu_hex("00112233445566778899aabbccddeeff", NULL);
    uint8_t out[64];
    assert_int_equal(crypto_aes128_encrypt_block(k, p, out), IFPP_OK);
    assert_hex(out, 16, "69c4e0d86a7b0430d8cdb78070b4c55a");
    free(k);
    free(p);

    size_t n;
    uint8_t *key = tu_hex("2b7e151628aed2a6abf7158809cf4f3c", NULL);
    uint8_t *iv = tu_hex("000102030405060708090a0b0c0d0e0f", NULL);
    uint8_t *pt = tu_hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                         "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710", &n);
    const char *ct_hex = "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
                         "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7";
    assert_int_equal(crypto_aes128_cbc_encrypt(key, iv, pt, n, out), IFPP_OK);
    assert_hex(out, n, ct_hex);
    assert_int_equal(crypto_aes128_cbc_decrypt(key, iv, out, n, out), IFPP_OK); /* in place */
    assert_memory_equal(out, pt, n);
    assert_int_equal(crypto_aes128_cbc_encrypt(key, iv, pt, 15, out), IFPP_E_ARG); /* no padding here */
    free(key);
    free(iv);
    free(pt);
}

static void test_cmac_rfc4493(void **state)
{
    (void)state;
    uint8_t *key = tu_hex("2b7e151628aed2a6abf7158809cf4f3c", NULL);
    size_t n;
    uint8_t *m = tu_hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710", &n);
    struct { size_t len; const char *mac; } v[] = {
        {0, "bb1d6929e95937287fa37d129b756746"},
        {16, "070a16b46b4d4144f79bdd9dd04a287c"},
        {40, "dfa66747de9ae63030ca32611497c827"},
        {64, "51f0bebf7e3b9d92fc49741779363cfe"},
    };
    for (size_t i = 0; i < 4; i++) {
        uint8_t mac[16];
        assert_int_equal(crypto_aes128_cmac(key, m, v[i].len, NULL, 0, NULL, 0, mac), IFPP_OK);
        assert_hex(mac, 16, v[i].mac);
        /* the same message in three parts */
        size_t a = v[i].len / 3, b = v[i].len / 2;
        assert_int_equal(crypto_aes128_cmac(key, m, a, m + a, b - a, m + b, v[i].len - b, mac), IFPP_OK);
        assert_hex(mac, 16, v[i].mac);
    }
    free(key);
    free(m);
}

static void test_kdf_x963_cavp(void **state)
{
    (void)state;
    size_t zn, in;
    uint8_t out[128];
    uint8_t *z = tu_hex("96c05619d56c328ab95fe84b18264b08725b85e33fd34f08", &zn);
    assert_int_equal(crypto_kdf_x963_sha256(z, zn, NULL, 0, out, 16), IFPP_OK);
    assert_hex(out, 16, "443024c3dae66b95e6f5670601558f71");
    free(z);
    z = tu_hex("22518b10e70f2a3f243810ae3254139efbee04aa57c7af7d", &zn);
    uint8_t *info = tu_hex("75eef81aa3041e33b80971203d2c0c52", &in);
    assert_int_equal(crypto_kdf_x963_sha256(z, zn, info, in, out, 128), IFPP_OK);
    assert_hex(out, 128,
               "c498af77161cc59f2962b9a713e2b215152d139766ce34a776df11866a69bf2e52a13d9c7c6fc878c50c5ea0bc7b00e0"
               "da2447cfd874f6cf92f30d0097111485500c90c3af8b487872d04685d14c8d1dc8d7fa08beb0ce0ababc11f0bd4962"
               "69142d43525a78e5bc79a17f59676a5706dc54d54d4d1f0bd7e386128ec26afc21");
    free(z);
    free(info);
}

/* The same KDF, cross-checked against OpenSSL's own X963KDF through the CLI. */
static void test_kdf_x963_vs_openssl_cli(void **state)
{
    (void)state;
    char *argv[] = {"openssl", "kdf", "-keylen", "48", "-kdfopt", "digest:SHA256",
                    "-kdfopt", "hexsecret:8902dca391bbb22570fe60c176076246f568b1941265dff1d729e63039658089",
                    "-kdfopt", "hexinfo:88100880808080808080801089049032123451234512345678901335", "X963KDF",
                    NULL};
    char text[512];
    assert_int_equal(tu_run(argv, text, sizeof text), 0);
    /* "AB:CD:..." -> bytes */
    uint8_t cli[48];
    size_t n = 0;
    for (char *p = text; *p && n < sizeof cli; p++) {
        unsigned v;
        if (sscanf(p, "%2x", &v) == 1) {
            cli[n++] = (uint8_t)v;
            p += 2;
        }
    }
    assert_int_equal(n, 48);
    size_t zn, in;
    uint8_t *z = tu_hex("8902dca391bbb22570fe60c176076246f568b1941265dff1d729e63039658089", &zn);
    uint8_t *info = tu_hex("88100880808080808080801089049032123451234512345678901335", &in);
    uint8_t ours[48];
    assert_int_equal(crypto_kdf_x963_sha256(z, zn, info, in, ours, 48), IFPP_OK);
    assert_memory_equal(ours, cli, 48);
    free(z);
    free(info);
}

static void test_ecdsa_rfc6979_p256(void **state)
{
    (void)state;
    uint8_t *d = tu_hex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", NULL);
    crypto_key *k;
    assert_int_equal(crypto_key_from_private(CRYPTO_CURVE_P256, d, &k), IFPP_OK);
    uint8_t pub[65];
    assert_int_equal(crypto_key_public(k, pub), IFPP_OK);
    assert_hex(pub, 65, "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
                        "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299");
    crypto_key *pk;
    assert_int_equal(crypto_key_from_public(CRYPTO_CURVE_P256, pub, 65, &pk), IFPP_OK);
    uint8_t *sig = tu_hex("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
                          "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8", NULL);
    assert_int_equal(crypto_ecdsa_verify(pk, "sample", 6, CRYPTO_SIG_RAW, sig, 64), IFPP_OK);
    assert_int_equal(crypto_ecdsa_verify(pk, "samplf", 6, CRYPTO_SIG_RAW, sig, 64), IFPP_E_SIGNATURE);
    sig[63] ^= 1;
    assert_int_equal(crypto_ecdsa_verify(pk, "sample", 6, CRYPTO_SIG_RAW, sig, 64), IFPP_E_SIGNATURE);
    sig[63] ^= 1;
    /* DER form of the same signature verifies too */
    uint8_t der[72];
    size_t dn = sizeof der;
    assert_int_equal(crypto_sig_raw_to_der(sig, der, &dn), IFPP_OK);
    assert_int_equal(dn, 2 + 2 + 33 + 2 + 33); /* both r and s have the top bit set */
    assert_int_equal(crypto_ecdsa_verify(pk, "sample", 6, CRYPTO_SIG_DER, der, dn), IFPP_OK);
    /* round trips of our own signatures in both forms */
    for (int fmt = 0; fmt < 2; fmt++) {
        uint8_t s[72];
        size_t sn = sizeof s;
        assert_int_equal(crypto_ecdsa_sign(k, "msg", 3, (crypto_sig_format)fmt, s, &sn), IFPP_OK);
        if (fmt == CRYPTO_SIG_RAW)
            assert_int_equal(sn, 64);
        assert_int_equal(crypto_ecdsa_verify(pk, "msg", 3, (crypto_sig_format)fmt, s, sn), IFPP_OK);
    }
    crypto_key_free(k);
    crypto_key_free(pk);
    free(d);
    free(sig);
}

static void test_ecdh_cavp_and_rfc7027(void **state)
{
    (void)state;
    crypto_key *mine, *peer;
    uint8_t shs[32];
    uint8_t *d = tu_hex("7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534", NULL);
    uint8_t *q = tu_hex("04700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287"
                        "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac", NULL);
    assert_int_equal(crypto_key_from_private(CRYPTO_CURVE_P256, d, &mine), IFPP_OK);
    assert_int_equal(crypto_key_from_public(CRYPTO_CURVE_P256, q, 65, &peer), IFPP_OK);
    assert_int_equal(crypto_ecka(mine, peer, shs), IFPP_OK);
    assert_hex(shs, 32, "46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b");
    crypto_key_free(mine);
    crypto_key_free(peer);
    free(d);
    free(q);

    d = tu_hex("81db1ee100150ff2ea338d708271be38300cb54241d79950f77b063039804f1d", NULL);
    q = tu_hex("048d2d688c6cf93e1160ad04cc4429117dc2c41825e1e9fca0addd34e6f1b39f7b"
               "990c57520812be512641e47034832106bc7d3e8dd0e4c7f1136d7006547cec6a", NULL);
    assert_int_equal(crypto_key_from_private(CRYPTO_CURVE_BRAINPOOLP256R1, d, &mine), IFPP_OK);
    uint8_t pub[65];
    assert_int_equal(crypto_key_public(mine, pub), IFPP_OK);
    assert_hex(pub + 1, 32, "44106e913f92bc02a1705d9953a8414db95e1aaa49e81d9e85f929a8e3100be5");
    assert_int_equal(crypto_key_from_public(CRYPTO_CURVE_BRAINPOOLP256R1, q, 65, &peer), IFPP_OK);
    assert_int_equal(crypto_ecka(mine, peer, shs), IFPP_OK);
    assert_hex(shs, 32, "89afc39d41d3b327814b80940b042590f96556ec91e6ae7939bce31f3a18bf2b");

    /* the point of one curve is not a point of the other; mixing curves is refused */
    crypto_key *wrong;
    assert_int_equal(crypto_key_from_public(CRYPTO_CURVE_P256, q, 65, &wrong), IFPP_E_BAD_KEY);
    crypto_key *p256;
    assert_int_equal(crypto_key_generate(CRYPTO_CURVE_P256, &p256), IFPP_OK);
    assert_int_equal(crypto_ecka(mine, p256, shs), IFPP_E_CURVE_MISMATCH);
    assert_int_equal(crypto_ecka(peer, mine, shs), IFPP_E_ARG); /* no private half */
    crypto_key_free(p256);
    crypto_key_free(mine);
    crypto_key_free(peer);
    free(d);
    free(q);
}

static void test_bad_public_keys(void **state)
{
    (void)state;
    uint8_t pt[65];
    crypto_key *k;
    memset(pt, 0, sizeof pt);
    pt[0] = 0x04;
    pt[64] = 1;
    assert_int_equal(crypto_key_from_public(CRYPTO_CURVE_P256, pt, 65, &k), IFPP_E_BAD_KEY);
    assert_int_equal(crypto_key_from_public(CRYPTO_CURVE_P256, pt, 64, &k), IFPP_E_BAD_KEY);
    pt[0] = 0x02; /* compressed form is not what SGP.22 ships */
    assert_int_equal(crypto_key_from_public(CRYPTO_CURVE_P256, pt, 65, &k), IFPP_E_BAD_KEY);
    uint8_t zero[32] = {0};
    assert_int_equal(crypto_key_from_private(CRYPTO_CURVE_P256, zero, &k), IFPP_E_BAD_KEY);
    crypto_curve c;
    assert_int_equal(crypto_curve_parse("brainpool", &c), IFPP_OK);
    assert_int_equal(c, CRYPTO_CURVE_BRAINPOOLP256R1);
    assert_int_equal(crypto_curve_parse("P-256", &c), IFPP_OK);
    assert_int_equal(crypto_curve_parse("secp384r1", &c), IFPP_E_BAD_CURVE);
}

static void test_sig_der_strictness(void **state)
{
    (void)state;
    const char *bad[] = {
        "3006020101020101" "00",                 /* trailing byte */
        "308106020101020101",                    /* long-form length where short is required */
        "3006020180020101",                      /* negative r */
        "3006020100020101",                      /* r = 0 */
        "300702020001020101",                    /* non-minimal r */
        "3007020101020201",                      /* s truncated */
        "3106020101020101",                      /* not a SEQUENCE */
        "3006040101020101",                      /* r not an INTEGER */
        "30250221" "01" "0000000000000000000000000000000000000000000000000000000000000001" "020101", /* 33-byte r */
        "30250221" "00" "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551" "020101",   /* r = n */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n;
        uint8_t *der = tu_hex(bad[i], &n);
        uint8_t raw[64];
        if (crypto_sig_der_to_raw(der, n, raw) != IFPP_E_BAD_SIGNATURE_FORMAT)
            fail_msg("accepted malformed signature %s", bad[i]);
        free(der);
    }
    size_t n;
    uint8_t *der = tu_hex("3006020101020102", &n);
    uint8_t raw[64], back[72];
    size_t bn = sizeof back;
    assert_int_equal(crypto_sig_der_to_raw(der, n, raw), IFPP_OK);
    assert_int_equal(raw[31], 1);
    assert_int_equal(raw[63], 2);
    assert_int_equal(crypto_sig_raw_to_der(raw, back, &bn), IFPP_OK);
    assert_int_equal(bn, n);
    assert_memory_equal(back, der, n);
    free(der);
}

/* brainpoolP256r1 ECDSA has no published vector: cross-check with the openssl CLI both ways. */
static void test_ecdsa_brainpool_vs_openssl_cli(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("ifpp-crypto");
    char *key = tu_path(dir, "key.pem"), *pub = tu_path(dir, "pub.pem"), *msg = tu_path(dir, "msg");
    char *sig = tu_path(dir, "sig.der"), *clisig = tu_path(dir, "cli.der");
    crypto_key *k, *loaded, *loaded_pub;
    assert_int_equal(crypto_key_generate(CRYPTO_CURVE_BRAINPOOLP256R1, &k), IFPP_OK);
    assert_int_equal(crypto_key_save_private_pem(k, key), IFPP_OK);
    assert_int_equal(crypto_key_save_public_pem(k, pub), IFPP_OK);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    const char text[] = "ProfileInstallationResultData";
    assert_int_equal(tu_write_file(msg, (const uint8_t *)text, sizeof text - 1), 0);
    uint8_t s[72];
    size_t sn = sizeof s;
    assert_int_equal(crypto_ecdsa_sign(k, text, sizeof text - 1, CRYPTO_SIG_DER, s, &sn), IFPP_OK);
    assert_int_equal(tu_write_file(sig, s, sn), 0);
    char *verify[] = {"openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, msg, NULL};
    char out[256];
    assert_int_equal(tu_run(verify, out, sizeof out), 0);
    assert_non_null(strstr(out, "Verified OK"));

    char *sign[] = {"openssl", "dgst", "-sha256", "-sign", key, "-out", clisig, msg, NULL};
    assert_int_equal(tu_run(sign, NULL, 0), 0);
    size_t cn;
    uint8_t *c = tu_read_file(clisig, &cn);
    assert_non_null(c);
    assert_int_equal(crypto_key_load_pem(key, &loaded), IFPP_OK);
    assert_true(crypto_key_has_private(loaded));
    assert_int_equal(crypto_key_curve(loaded), CRYPTO_CURVE_BRAINPOOLP256R1);
    assert_int_equal(crypto_key_load_pem(pub, &loaded_pub), IFPP_OK);
    assert_false(crypto_key_has_private(loaded_pub));
    assert_int_equal(crypto_ecdsa_verify(loaded_pub, text, sizeof text - 1, CRYPTO_SIG_DER, c, cn), IFPP_OK);
    uint8_t raw[64];
    assert_int_equal(crypto_sig_der_to_raw(c, cn, raw), IFPP_OK);
    assert_int_equal(crypto_ecdsa_verify(loaded_pub, text, sizeof text - 1, CRYPTO_SIG_RAW, raw, 64), IFPP_OK);
    /* a changed message does not verify with the CLI's signature */
    assert_int_equal(crypto_ecdsa_verify(loaded_pub, text, sizeof text - 2, CRYPTO_SIG_RAW, raw, 64),
                     IFPP_E_SIGNATURE);
    free(c);
    crypto_key_free(k);
    crypto_key_free(loaded);
    crypto_key_free(loaded_pub);
    assert_int_equal(tu_rmrf(dir), 0);
    free(key); free(pub); free(msg); free(sig); free(clisig); free(dir);
}

static void test_misc(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    assert_int_equal(crypto_random(a, sizeof a), IFPP_OK);
    assert_int_equal(crypto_random(b, sizeof b), IFPP_OK);
    assert_memory_not_equal(a, b, 32);
    assert_true(crypto_equal_ct(a, a, 32));
    assert_false(crypto_equal_ct(a, b, 32));
    crypto_wipe(a, sizeof a);
    static const uint8_t zero[32];
    assert_memory_equal(a, zero, 32);
    assert_string_equal(crypto_curve_name(CRYPTO_CURVE_P256), "P-256");
    assert_int_equal(crypto_key_load_pem("/nonexistent/key.pem", &(crypto_key *){NULL}), IFPP_E_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_fips180),
        cmocka_unit_test(test_aes_fips197_sp800_38a),
        cmocka_unit_test(test_cmac_rfc4493),
        cmocka_unit_test(test_kdf_x963_cavp),
        cmocka_unit_test(test_kdf_x963_vs_openssl_cli),
        cmocka_unit_test(test_ecdsa_rfc6979_p256),
        cmocka_unit_test(test_ecdh_cavp_and_rfc7027),
        cmocka_unit_test(test_bad_public_keys),
        cmocka_unit_test(test_sig_der_strictness),
        cmocka_unit_test(test_ecdsa_brainpool_vs_openssl_cli),
        cmocka_unit_test(test_misc),
    };
    return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
