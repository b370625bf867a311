/*
 * fuzz_sig.c -- libFuzzer target for the crypto core's parsers of outside input:
 * DER ECDSA signatures (crypto_sig_der_to_raw), SubjectPublicKeyInfo and raw EC points.
 * Property: an accepted DER signature re-encodes to the identical bytes (strict DER is
 * canonical), and a public key that parses has a point that re-exports identically.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t raw[CRYPTO_SIG_RAW_LEN], der[CRYPTO_SIG_DER_MAX];
    size_t n = sizeof der;
    crypto_key *k = NULL;

    if (crypto_sig_der_to_raw(data, size, raw) == IFPP_OK) {
        if (crypto_sig_raw_to_der(raw, der, &n) != IFPP_OK || n != size || memcmp(der, data, n) != 0)
            abort();
    }
    if (crypto_key_from_spki(data, size, &k) == IFPP_OK)
        crypto_key_free(k);
    for (int c = 0; c < 2; c++) {
        if (crypto_key_from_public((crypto_curve)c, data, size, &k) == IFPP_OK) {
            uint8_t pub[CRYPTO_EC_PUB_LEN];
            if (crypto_key_public(k, pub) != IFPP_OK || memcmp(pub, data, sizeof pub) != 0)
                abort();
            crypto_key_free(k);
        }
    }
    return 0;
}
