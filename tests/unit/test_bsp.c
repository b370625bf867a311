/*
 * test_bsp.c -- the SGP.22 BPP Protection Protocol against published vectors, and its refusals.
 *
 * Vectors: osmocom pySim tests/unittests/test_esim_bsp.py -- BSP_Test.test_kdf, and
 * BSP_Test_mode51 (key derivation and ciphering; "created using hex-dumps from a log/trace of a
 * 3rd party SM-DP+", so they pin our implementation to a deployed one): ConfigureISDP (87),
 * StoreMetadata (88, MAC only), ReplaceSessionKeys (87), then the first 1020-byte profile segment
 * (86) under replaced keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "bsp.h"
#include "crypto.h"
#include "testutil.h"

#define assert_hex(got, n, want) assert_true(tu_hex_equal((got), (n), (want)))

static const char PYSIM_SEG0_PLAIN[] =
    "a048800102810101821a53494d616c6c69616e63652053616d706c652050726f66696c65830a89000123456789012341a506"
    "810084008b00a610060667810f010201060667810f010204b08201f8a0058000810101810667810f010201a207a105c60301"
    "020aa305a1038b010fa40c830a98001032547698103214a527a109820442210026800198831a61184f10a0000000871002ff"
    "33ff01890000010050045553494da682019ea10a8204422100258002022b831b8001019000800102a4068301019501088001"
    "58a40683010a95010882010a8316800101a40683010195010880015aa40683010a95010882010f830b80015ba40683010a95"
    "010882011a830a800101900080015a970082011b8316800103a406830101950108800158a40683010a95010882010f831680"
    "0111a40683010195010880014aa40683010a95010882010f8321800103a406830101950108800158a40683010a9501088401"
    "32a4068301019501088201048321800101a406830101950108800102a406830181950108800158a40683010a950108820104"
    "831b800101900080011aa406830101950108800140a40683010a95010882010a8310800101900080015aa40683010a950108"
    "82011583158001019000800118a40683010a95010880014297008201108310800101a40683010195010880015a9700820115"
    "8316800113a406830101950108800148a40683010a95010882010f830b80015ea40683010a95010882011a83258001019000"
    "800102a010a406830101950108a406830102950108800158a40683010a950108a33fa0058000810102a13630118001018108"
    "303030303030303082020099300d800102810831323334353637383012800200818108313233343536373882020088a241a0"
    "058000810103a138a0363010800101810831323334ffffffff8201013010800102810830303030ffffffff82010230108001"
    "0a810835363738ffffffff830101a182029ea0058000810104a18202933082028f62228202782183027ff18410a000000087"
    "1002ff33ff0189000001008b010ac60301810a62118202412183026f078b0102800109880138810908294301913487676562"
    "1482044221002583026f068b010a8801b8c7022f06621a8202412183026f088b0105800121880140a507c00180c10207ff62"
    "1a8202412183026f098b0105800121880148a507c00180c10207ff62168202412183026f318b0102800101880190a503c101"
    "0a62118202412183026f388b010280010e880120810d0a2e178ce73204000000000000621982044221001a83026f3b8b0108"
    "800202088800a504c10200ff62198204422100b083026f3c8b0105800206e08800a504c10200ff621282044221002683026f"
    "428b0105800126";
static const char PYSIM_SEG0_PROTECTED[] =
    "868203f80fd36b066b43e53906b33263c4141d18036fcac7bde47faed79e76514d39f1f405d9785ff04badf379a96bcf4685"
    "eb861239da34eeb213d0cd1e0d85e96e36097a52f600907e08b6f01232eb3792a00cc6b3288cc832c7f30357edfe0818d1f3"
    "9ad8d55b5bd5d9c65917d0d16ee7e1421a44453714d66209bf441425bf6d153a85ba7e7406d58a4c46fb930bb14eefd6a853"
    "434619805429cbbb003bd5a56e7bceaf4666eb352ad46f47ea572c6ad311683803db3bec4d783583858f2ecfbaec3ed780fb"
    "3e3a645b1bf5cfd1047e5862c4a8877382dabd6aef6fa72ec6378ce7b21502d3267514b29bd589703ee7bd5b1e6d868b6b7c"
    "55006bc32406a924f44bfdb6c801d490450a54633bbd66bb0ece8b3a9be09433c537f3e3b2b8e45833365a94479b1895e9ba"
    "13387fca116565c267b6bc1274c82510b21ac9fa77574412351468fd1eac8928c9494e5eb8a909d9372476c62e8a2b556b55"
    "7a79cdb47503ba5d9fd86d1962c23b3289f37df9a05668957df34c37806359af1d8dfecedf9bbf4888be9753f2b449ce4e5c"
    "de510572f9be4fb506f329a848c4583ac9ac710e53d512ad504f2e3769c2911c34f84ad0622c5428446d1e9c59bb6b2029f2"
    "31b05ef45d3ec60fceff121ba684a023037b753f855e1067b8ad02783c04eb81ba47fcec0947bbc9661d90c6f00c0f4e6f9c"
    "22e0b25905379f8b265b436a4a74253a64c5734f956d134cf5b6c0671125b20b735f405fee1fc1941ed141734fa6856e898d"
    "c655fb91b045b3797d14b97a68ed3480ec137565d6c4d007f95ee705d452d0344ce9e9bbd0712f399ef8604f3f472b403ea6"
    "4f00c969fd30a012cb8be049c54556994117fc5f6043930107774910be5f47c780427de063a56d45400a814c86dfcc246526"
    "2baf273a6ca89e77bb8c73efe2d22d975516b80c648404b10d3f329776a21251bedf445ade24b656e8635f0d7fe39772d942"
    "d9432766efb5152c6e990123c52744f1c402962a381ff2aaddaa1bd522a9b65a229f9adcd4099475b3f9ba45161ee3520636"
    "5181e1d69d263d8d27444a7c3a2d7ddbb398ac5affea28cb0373057dad7741e52adb95822fee5157ce3c0ad978c5231a219c"
    "a0726d50eeb0c69d579094a54820194aeef13a365d85c52257f51cb65c567e0cdf1ce38b80eaa4d131ab7086e303c5728cf4"
    "1a25df954d60ac12400d2a2990e67dbeff866736937beb8fce526be1dd5dc5d77d00b8783b34691a3e9bda7e697eec4cfa70"
    "b25914795af23ec6d258530f71402b9230947dc99f9140b16a54ba1291f54ef736de6711c1ae074b627dfc2fc5d5250f812b"
    "7ecd1d0f5020a3acf20ad5759cd9e761ce21882977f7db66aaba2d8f5190f6f23996af14b670ccac066c93af06a41f19d9ee"
    "712ce13fbe73b99e55401b208b991c8ced12d34c";

static void derive(const char *shs_hex, const char *eid_hex, bsp_ctx *c)
{
    size_t sn, en;
    uint8_t *shs = tu_hex(shs_hex, &sn), *eid = tu_hex(eid_hex, &en);
    uint8_t host_id[8];
    memset(host_id, 0x80, sizeof host_id);
    assert_int_equal(bsp_derive_keys(shs, sn, 0x88, 0x10, host_id, sizeof host_id, eid, en, c), IFPP_OK);
    free(shs);
    free(eid);
}

static void test_kdf_pysim(void **state)
{
    (void)state;
    bsp_ctx c;
    derive("8902dca391bbb22570fe60c176076246f568b1941265dff1d729e63039658089",
           "89049032123451234512345678901335", &c);
    assert_hex(c.s_enc, 16, "d782d575b22a38334556a3d9a1e2ae6b");
    assert_hex(c.s_mac, 16, "a35addc192ae8f934e2932116c7e89e7");
    assert_hex(c.mac_chain, 16, "734bc93ddb10c71c5ad13d420dc08b5b");
    assert_int_equal(c.block_nr, 1);
    derive("c9a993dd4879a8f7161f2085410edd4f9652f1df37be097ba96ba2ca6be528fe",
           "89049032123451234512345678901235", &c);
    assert_hex(c.s_enc, 16, "472f5bfadd97f21d34f3ce9b51b92751");
    assert_hex(c.s_mac, 16, "9ec07f5b36a13e12a991d66e294e6242");
    assert_hex(c.mac_chain, 16, "406d507b448a699e7a36a38494debbde");
}

static const char STORE_METADATA[] =
    "bf252d5a0a98001032547698103214910947534d415f54455354921147534d415f544553545f50524f46494c45950100";
static const char REPLACE_KEYS[] =
    "bf26368010000102030405060708090a0b0c0d0e0f8110010102030405060708090a0b0c0d0e0f8210020102030405060708"
    "090a0b0c0d0e0f";

/* Protects the mode51 sequence; checks every byte against pySim; returns the segments for unprotect tests. */
static void test_ciphering_pysim(void **state)
{
    (void)state;
    bsp_ctx c;
    uint8_t out[BSP_MAX_SEGMENT];
    size_t n, pn;
    derive("c9a993dd4879a8f7161f2085410edd4f9652f1df37be097ba96ba2ca6be528fe",
           "89049032123451234512345678901235", &c);
    assert_int_equal(bsp_encrypt_and_mac(&c, 0x87, (const uint8_t *)"\xbf\x24\x00", 3, out, sizeof out, &n), IFPP_OK);
    assert_hex(out, n, "8718f6fe031e4b9cfe87c8e1e62f3fde85c49412d7722a6a2d89");
    uint8_t *p = tu_hex(STORE_METADATA, &pn);
    assert_int_equal(bsp_mac_only(&c, 0x88, p, pn, out, sizeof out, &n), IFPP_OK);
    assert_hex(out, n, "8838bf252d5a0a98001032547698103214910947534d415f54455354921147534d415f544553545f50524f46494c"
                       "459501008a62cc9adbb5ccbc");
    free(p);
    p = tu_hex(REPLACE_KEYS, &pn);
    assert_int_equal(bsp_encrypt_and_mac(&c, 0x87, p, pn, out, sizeof out, &n), IFPP_OK);
    assert_hex(out, n, "8748a14c800a001992351cd46ad2945654674369701d82b7b46567652bc8fbed234939fc57fba748015525fd6c"
                       "651e9d3d1330652d42a0cfad950e912122af4ec5362d3c0bc535729c40");
    free(p);

    /* keys after ReplaceSessionKeys, as the test in pySim sets them */
    uint8_t enc[16], mac[16], mcv[16];
    for (int i = 0; i < 16; i++)
        enc[i] = mac[i] = mcv[i] = (uint8_t)i;
    enc[0] = 1;
    mac[0] = 2;
    bsp_init(&c, enc, mac, mcv);
    p = tu_hex(PYSIM_SEG0_PLAIN, &pn);
    assert_int_equal(pn, BSP_MAX_PLAIN_ENCRYPTED);
    assert_int_equal(bsp_encrypt_and_mac(&c, 0x86, p, pn, out, sizeof out, &n), IFPP_OK);
    assert_int_equal(n, BSP_MAX_SEGMENT);
    assert_hex(out, n, PYSIM_SEG0_PROTECTED);

    /* and the eUICC side: the published segment verifies and decrypts to the published plaintext */
    bsp_ctx e;
    bsp_init(&e, enc, mac, mcv);
    uint8_t pt[BSP_MAX_SEGMENT];
    size_t ptn;
    assert_int_equal(bsp_verify_and_decrypt(&e, out, n, 0x86, pt, sizeof pt, &ptn), IFPP_OK);
    assert_int_equal(ptn, pn);
    assert_memory_equal(pt, p, pn);
    assert_memory_equal(&e, &c, sizeof e);
    free(p);
    /* one byte more does not fit a 1020-byte segment */
    uint8_t big[BSP_MAX_PLAIN_ENCRYPTED + 1] = {0};
    assert_int_equal(bsp_encrypt_and_mac(&c, 0x86, big, sizeof big, out, sizeof out, &n), IFPP_E_RANGE);
}

/* A protected stream of mixed segments: 87, 88 x2, 86 x3 of assorted sizes. */
typedef struct {
    uint8_t seg[6][BSP_MAX_SEGMENT];
    size_t len[6];
    uint8_t tag[6];
    uint8_t plain[6][BSP_MAX_SEGMENT];
    size_t plain_len[6];
} stream;

static void make_stream(stream *s, bsp_ctx *start)
{
    static const uint8_t tags[6] = {0x87, 0x88, 0x88, 0x86, 0x86, 0x86};
    static const size_t sizes[6] = {3, 100, 1008, 1007, 16, 0};
    bsp_ctx c;
    uint8_t k1[16], k2[16], k3[16];
    crypto_random(k1, 16);
    crypto_random(k2, 16);
    crypto_random(k3, 16);
    bsp_init(start, k1, k2, k3);
    c = *start;
    for (int i = 0; i < 6; i++) {
        s->tag[i] = tags[i];
        s->plain_len[i] = sizes[i];
        crypto_random(s->plain[i], sizes[i]);
        if (tags[i] == 0x88)
            assert_int_equal(bsp_mac_only(&c, tags[i], s->plain[i], sizes[i], s->seg[i], BSP_MAX_SEGMENT, &s->len[i]),
                             IFPP_OK);
        else
            assert_int_equal(bsp_encrypt_and_mac(&c, tags[i], s->plain[i], sizes[i], s->seg[i], BSP_MAX_SEGMENT,
                                                 &s->len[i]), IFPP_OK);
        assert_true(s->len[i] <= BSP_MAX_SEGMENT);
    }
}

static ifpp_err unprotect(bsp_ctx *c, const stream *s, int i, const uint8_t *seg, size_t n, uint8_t *pt, size_t *ptn)
{
    if (s->tag[i] == 0x88)
        return bsp_verify_mac_only(c, seg, n, pt, BSP_MAX_SEGMENT, ptn);
    return bsp_verify_and_decrypt(c, seg, n, s->tag[i], pt, BSP_MAX_SEGMENT, ptn);
}

static void test_roundtrip_stream(void **state)
{
    (void)state;
    stream *s = malloc(sizeof *s);
    bsp_ctx c;
    make_stream(s, &c);
    for (int i = 0; i < 6; i++) {
        uint8_t pt[BSP_MAX_SEGMENT];
        size_t ptn;
        assert_int_equal(unprotect(&c, s, i, s->seg[i], s->len[i], pt, &ptn), IFPP_OK);
        assert_int_equal(ptn, s->plain_len[i]);
        assert_memory_equal(pt, s->plain[i], ptn);
    }
    free(s);
}

/* Every single-bit flip anywhere is refused, leaves the context unchanged, and the genuine segment still passes. */
static void test_bit_flips_refused(void **state)
{
    (void)state;
    stream *s = malloc(sizeof *s);
    bsp_ctx c;
    make_stream(s, &c);
    for (int i = 0; i < 6; i++) {
        uint8_t bad[BSP_MAX_SEGMENT], pt[BSP_MAX_SEGMENT];
        size_t ptn;
        size_t step = s->len[i] > 64 ? 7 : 1; /* every byte of small segments, a stride of large ones */
        for (size_t byte = 0; byte < s->len[i]; byte += step) {
            for (int bit = 0; bit < 8; bit += 3) {
                memcpy(bad, s->seg[i], s->len[i]);
                bad[byte] ^= (uint8_t)(1 << bit);
                bsp_ctx before = c;
                ifpp_err e = unprotect(&c, s, i, bad, s->len[i], pt, &ptn);
                if (e == IFPP_OK)
                    fail_msg("segment %d: flip of byte %zu bit %d accepted", i, byte, bit);
                assert_true(e == IFPP_E_MAC || e == IFPP_E_BSP_SEGMENT);
                assert_memory_equal(&before, &c, sizeof c);
            }
        }
        assert_int_equal(unprotect(&c, s, i, s->seg[i], s->len[i], pt, &ptn), IFPP_OK);
    }
    free(s);
}

static void test_order_and_shape_refused(void **state)
{
    (void)state;
    stream *s = malloc(sizeof *s);
    bsp_ctx c;
    uint8_t pt[BSP_MAX_SEGMENT];
    size_t ptn;
    make_stream(s, &c);
    /* skipping a segment, replaying one, or taking them out of order breaks the chain */
    assert_int_equal(unprotect(&c, s, 1, s->seg[1], s->len[1], pt, &ptn), IFPP_E_MAC);
    assert_int_equal(unprotect(&c, s, 0, s->seg[0], s->len[0], pt, &ptn), IFPP_OK);
    assert_int_equal(unprotect(&c, s, 0, s->seg[0], s->len[0], pt, &ptn), IFPP_E_MAC); /* replay */
    /* wrong tag for the expected kind, truncation, trailing byte, oversize */
    assert_int_equal(bsp_verify_and_decrypt(&c, s->seg[1], s->len[1], 0x86, pt, sizeof pt, &ptn), IFPP_E_BSP_SEGMENT);
    assert_int_equal(bsp_verify_mac_only(&c, s->seg[1], s->len[1] - 1, pt, sizeof pt, &ptn), IFPP_E_BSP_SEGMENT);
    uint8_t longer[BSP_MAX_SEGMENT + 1];
    memcpy(longer, s->seg[1], s->len[1]);
    longer[s->len[1]] = 0;
    assert_int_equal(bsp_verify_mac_only(&c, longer, s->len[1] + 1, pt, sizeof pt, &ptn), IFPP_E_BSP_SEGMENT);
    assert_int_equal(bsp_verify_mac_only(&c, s->seg[1], s->len[1], pt, sizeof pt, &ptn), IFPP_OK);
    free(s);
}

/* A segment whose MAC is right but whose plaintext padding is not 80 00..: IFPP_E_PADDING. */
static void test_bad_padding(void **state)
{
    (void)state;
    uint8_t k[16] = {1}, m[16] = {2}, v[16] = {3};
    bsp_ctx sender, receiver;
    bsp_init(&sender, k, m, v);
    bsp_init(&receiver, k, m, v);
    /* hand-build: encrypt a block without 80 padding, then MAC it the normal way */
    uint8_t block[16], icv[16], counter[16] = {0};
    memset(block, 0x41, sizeof block);
    counter[15] = 1;
    assert_int_equal(crypto_aes128_encrypt_block(k, counter, icv), IFPP_OK);
    assert_int_equal(crypto_aes128_cbc_encrypt(k, icv, block, 16, block), IFPP_OK);
    uint8_t seg[64];
    size_t n;
    assert_int_equal(bsp_mac_only(&sender, 0x86, block, 16, seg, sizeof seg, &n), IFPP_OK);
    uint8_t pt[64];
    size_t ptn;
    bsp_ctx before = receiver;
    assert_int_equal(bsp_verify_and_decrypt(&receiver, seg, n, 0x86, pt, sizeof pt, &ptn), IFPP_E_PADDING);
    assert_memory_equal(&before, &receiver, sizeof before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kdf_pysim),
        cmocka_unit_test(test_ciphering_pysim),
        cmocka_unit_test(test_roundtrip_stream),
        cmocka_unit_test(test_bit_flips_refused),
        cmocka_unit_test(test_order_and_shape_refused),
        cmocka_unit_test(test_bad_padding),
    };
    return cmocka_run_group_tests_name("bsp", tests, NULL, NULL);
}
