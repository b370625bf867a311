/*
 * fuzz_cert.c -- libFuzzer target for certificate parsing (common/cert.c): every certificate
 * in a bundle or an ES10 command is hostile until its chain verifies. Whatever parses must
 * give back exactly its own bytes, and its role, key and SKI must be read without harm.
 */
#include <stdlib.h>
#include <string.h>

#include "cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cert *c = NULL;
    crypto_key *dk = NULL;
    if (cert_der_public_key(data, size, &dk) == IFPP_OK) /* the store's fast path reads any bytes safely too */
        crypto_key_free(dk);
    if (cert_parse_der(data, size, &c) != IFPP_OK)
        return 0;
    const uint8_t *der;
    size_t n;
    cert_der(c, &der, &n);
    if (n != size || memcmp(der, data, n) != 0)
        abort();
    cert_role r;
    (void)cert_role_of(c, &r);
    crypto_key *k = NULL;
    if (cert_public_key(c, &k) == IFPP_OK)
        crypto_key_free(k);
    uint8_t ski[64];
    (void)cert_subject_key_id(c, ski, sizeof ski, &n);
    (void)cert_subject_cn(c);
    (void)cert_subject_serial(c);
    cert_free(c);
    return 0;
}
