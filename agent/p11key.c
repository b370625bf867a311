/* p11key.c -- a token's private key through OpenSSL's pkcs11 engine (see p11key.h for why the engine). */
#define OPENSSL_SUPPRESS_DEPRECATED /* the ENGINE API: the only PKCS#11 route OpenSSL 3 has on Debian 12 */
#include "p11key.h"

#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t p11key_mu = PTHREAD_MUTEX_INITIALIZER;
static ENGINE *p11key_engine; /* initialised once, kept: the keys it hands out refer to it */

bool p11key_is_uri(const char *name)
{
    return name && !strncmp(name, "pkcs11:", 7);
}

/* The URI for messages: its path part only (the query may hold pin-value). */
static void p11key_shown(const char *uri, char *out, size_t cap)
{
    size_t n = strcspn(uri, "?");
    snprintf(out, cap, "%.*s", (int)(n < 200 ? n : 200), uri);
}

/* Gives a token key without a public point the certificate's (the engine's keys are legacy EC_KEYs). */
static bool p11key_set_public(EVP_PKEY *pk, const crypto_key *cert_pub)
{
    uint8_t pub[CRYPTO_EC_PUB_LEN];
    EC_KEY *ec = EVP_PKEY_get1_EC_KEY(pk);
    bool ok = false;
    if (!ec)
        return false;
    /* libp11 puts a placeholder where the scalar would be (the token keeps the real one); OpenSSL's key checks
     * would take it for a broken private key. Without it the handle is what it is: a public key whose
     * signatures the engine's method makes in the token. */
    if (EC_KEY_get0_private_key(ec))
        EC_KEY_set_private_key(ec, NULL);
    if (EC_KEY_get0_public_key(ec))
        ok = true;
    else if (crypto_key_public(cert_pub, pub) == IFPP_OK) {
        EC_POINT *q = EC_POINT_new(EC_KEY_get0_group(ec));
        ok = q && EC_POINT_oct2point(EC_KEY_get0_group(ec), q, pub, sizeof pub, NULL) == 1 &&
             EC_KEY_set_public_key(ec, q) == 1;
        EC_POINT_free(q);
    }
    EC_KEY_free(ec);
    return ok;
}

ifpp_err p11key_load(const char *uri, const char *module, const crypto_key *cert_pub, crypto_key **out, char *why,
                     size_t why_len)
{
    char shown[256];
    if (!p11key_is_uri(uri) || !out || !cert_pub)
        return IFPP_E_ARG;
    p11key_shown(uri, shown, sizeof shown);
    pthread_mutex_lock(&p11key_mu);
    if (!p11key_engine) {
        ENGINE_load_dynamic();
        ENGINE *e = ENGINE_by_id("pkcs11");
        if (!e) {
            pthread_mutex_unlock(&p11key_mu);
            err_why(why, why_len, "%s: OpenSSL's pkcs11 engine is not installed (Debian: libengine-pkcs11-openssl)",
                    shown);
            return IFPP_E_NOT_FOUND;
        }
        /* QUIET: libp11 otherwise prints a URI it cannot use to stderr, pin-value and all (GENS10: no secret in a log) */
        if (!ENGINE_ctrl_cmd_string(e, "QUIET", NULL, 0) ||
            (module && *module && !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)) || !ENGINE_init(e)) {
            ENGINE_free(e);
            pthread_mutex_unlock(&p11key_mu);
            err_why(why, why_len, "%s: the pkcs11 engine cannot load the PKCS#11 module %s", shown,
                    module && *module ? module : "(its default: p11-kit's proxy)");
            return IFPP_E_IO;
        }
        ENGINE_free(e); /* ENGINE_init holds its own (functional) reference */
        p11key_engine = e;
    }
    EVP_PKEY *pk = ENGINE_load_private_key(p11key_engine, uri, NULL, NULL);
    pthread_mutex_unlock(&p11key_mu);
    ERR_clear_error();
    if (!pk) {
        err_why(why, why_len, "%s: no such private key in the token, or the token refused the PIN", shown);
        return IFPP_E_NOT_FOUND;
    }
    if (!p11key_set_public(pk, cert_pub)) {
        EVP_PKEY_free(pk);
        err_why(why, why_len, "%s: not an EC key, or its public point cannot be set", shown);
        return IFPP_E_BAD_KEY;
    }
    crypto_key *k = NULL;
    ifpp_err e = crypto_key_from_evp(pk, &k);
    EVP_PKEY_free(pk);
    if (e != IFPP_OK) {
        err_why(why, why_len, "%s: %s", shown, err_str(e));
        return e;
    }
    /* The pair proven by use: the token signs, the certificate's key verifies. */
    static const char probe[] = "ifpp-agent: DM FPA key check";
    uint8_t sig[CRYPTO_SIG_RAW_LEN];
    size_t sl = sizeof sig;
    if ((e = crypto_ecdsa_sign(k, probe, sizeof probe - 1, CRYPTO_SIG_RAW, sig, &sl)) != IFPP_OK) {
        err_why(why, why_len, "%s: the token cannot sign: %s", shown, err_str(e));
    } else if (crypto_ecdsa_verify(cert_pub, probe, sizeof probe - 1, CRYPTO_SIG_RAW, sig, sl) != IFPP_OK) {
        err_why(why, why_len, "%s: the token's key is not the certificate's (its signature does not verify)", shown);
        e = IFPP_E_BAD_KEY;
    }
    if (e != IFPP_OK) {
        crypto_key_free(k);
        return e;
    }
    *out = k;
    return IFPP_OK;
}
