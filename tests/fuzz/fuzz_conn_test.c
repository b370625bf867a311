/*
 * fuzz_conn_test.c -- libFuzzer target for the EUICCF05 parsers (issue 15 item 5): the
 * GetIfppCapabilities answer and the ConnectivityTest answer (es10_parse_conn_test), both as a
 * DUT's card would hand them to the station.
 *
 * Two ways in, so that the fuzzer reaches past the signature: the input as a whole answer, checked
 * against a key nothing fuzzed can sign with (it must never be accepted); and the input as the
 * body of testSigned, signed here with the harness's own key and wrapped as 'BF75' { 30 .. 5F37 },
 * so that every field check after the signature (EID, ICCID, nonce, profileState, servingNetwork,
 * nothing trailing) is fuzzed too. Properties: an accepted answer is exactly the bytes given, its
 * result fits a byte, and it never says the Profile was left enabled (the station never asks).
 */
#include <stdlib.h>
#include <string.h>

#include "es10.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static crypto_key *stranger, *card;
static const uint8_t eid[16] = {0x89, 0x04, 0x90, 0x32}, iccid[10] = {0x98, 0x94}, nonce[16] = {0xE4, 0x57};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static es10_conn_result res;
    char why[200];
    unsigned caps;
    if (!stranger && (crypto_key_generate(CRYPTO_CURVE_P256, &stranger) != IFPP_OK ||
                      crypto_key_generate(CRYPTO_CURVE_P256, &card) != IFPP_OK))
        abort();
    if (es10_parse_ifpp_capabilities(data, size, &caps) == IFPP_OK && (caps & ~ES10_CAP_CONNECTIVITY_TEST))
        abort();
    if (es10_parse_conn_test(data, size, stranger, eid, iccid, nonce, false, &res, why, sizeof why) == IFPP_OK)
        abort(); /* nothing fuzzed carries a signature by this key */

    /* the input as testSigned's content, signed by the card's key */
    uint8_t sp[ES10_CONN_MAX_RESPONSE], resp[ES10_CONN_MAX_RESPONSE * 2], sig[CRYPTO_SIG_RAW_LEN];
    size_t sn, rn, siglen = sizeof sig;
    const uint8_t *p;
    tlv_builder b;
    tlv_builder_init_fixed(&b, sp, sizeof sp);
    tlv_put(&b, 0x30, data, size);
    if (tlv_builder_finish(&b, &p, &sn) != IFPP_OK ||
        crypto_ecdsa_sign(card, sp, sn, CRYPTO_SIG_RAW, sig, &siglen) != IFPP_OK)
        return 0;
    tlv_builder_init_fixed(&b, resp, sizeof resp);
    tlv_begin(&b, 0xBF75);
    tlv_put_raw(&b, sp, sn);
    tlv_put(&b, 0x5F37, sig, siglen);
    tlv_end(&b);
    if (tlv_builder_finish(&b, &p, &rn) != IFPP_OK)
        return 0;
    if (es10_parse_conn_test(resp, rn, card, eid, iccid, nonce, false, &res, why, sizeof why) == IFPP_OK) {
        if (res.evidence_len != rn || memcmp(res.evidence, resp, rn) != 0 || res.result < 0 || res.result > 255 ||
            res.left_enabled || rn > ES10_CONN_MAX_RESPONSE)
            abort();
        (void)es10_conn_result_str(res.result);
    }
    return 0;
}
