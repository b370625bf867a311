/*
 * crypto.h -- the crypto core of ifpp-station, over OpenSSL 3 libcrypto.
 *
 * Only what SGP.22/SGP.41 need, with types that make misuse hard:
 *   - SHA-256 (one-shot and streaming, so bundles can be hashed as they are read);
 *   - EC keys on NIST P-256 and brainpoolP256r1 only (SGP.22 §2.6.5 curves);
 *   - ECDSA with SHA-256, in DER (X.509, CMS) or the plain r||s form that SGP.22
 *     signatures use (BSI TR-03111 §5.2.2: r and s as 32-byte big-endian integers);
 *   - ECKA (ECDH, shared secret = x-coordinate, BSI TR-03111 §4.3.1);
 *   - the ANSI X9.63 KDF with SHA-256 that SGP.22 §2.6.4.2 uses for BSP keys;
 *   - AES-128 single block, CBC (no padding: BSP pads itself) and CMAC.
 *
 * Keys are opaque (crypto_key wraps an EVP_PKEY) so that private halves never sit
 * in caller buffers. Nothing here logs; nothing here writes key bytes anywhere but
 * where the caller asked (SGP.41 GENS10).
 */
#ifndef IFPP_CRYPTO_H
#define IFPP_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_EC_PUB_LEN 65  /* uncompressed point: 04 || X || Y */
#define CRYPTO_EC_PRIV_LEN 32
#define CRYPTO_EC_SECRET_LEN 32
#define CRYPTO_SIG_RAW_LEN 64 /* r || s */
#define CRYPTO_SIG_DER_MAX 72
#define CRYPTO_AES_BLOCK 16
#define CRYPTO_AES128_KEY_LEN 16

typedef enum {
    CRYPTO_CURVE_P256 = 0,          /* NIST P-256 / prime256v1 / secp256r1 */
    CRYPTO_CURVE_BRAINPOOLP256R1 = 1,
} crypto_curve;

typedef enum {
    CRYPTO_SIG_DER = 0, /* ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } */
    CRYPTO_SIG_RAW = 1, /* r || s, 32 bytes each (SGP.22, TR-03111) */
} crypto_sig_format;

typedef struct crypto_key crypto_key;

typedef struct {
    void *md; /* EVP_MD_CTX, opaque */
} crypto_sha256_ctx;

/* Returns "P-256" or "brainpoolP256r1"; NULL for an unknown value. */
const char *crypto_curve_name(crypto_curve c);

/* Parses "p256"/"P-256"/"prime256v1"/"brainpool"/"brainpoolP256r1" (case-insensitive). */
ifpp_err crypto_curve_parse(const char *name, crypto_curve *out);

/* SHA-256 of one buffer. */
ifpp_err crypto_sha256(const void *data, size_t n, uint8_t out[CRYPTO_SHA256_LEN]);

/* Streaming SHA-256: init, any number of updates, final (which also frees). */
ifpp_err crypto_sha256_init(crypto_sha256_ctx *ctx);
ifpp_err crypto_sha256_update(crypto_sha256_ctx *ctx, const void *data, size_t n);
ifpp_err crypto_sha256_final(crypto_sha256_ctx *ctx, uint8_t out[CRYPTO_SHA256_LEN]);
/* Releases a context that will not reach final (safe on a zeroed or finished ctx). */
void crypto_sha256_abort(crypto_sha256_ctx *ctx);

/* Fills buf with n bytes from the OS-seeded DRBG. */
ifpp_err crypto_random(void *buf, size_t n);

/* Compares n bytes in time independent of where they differ; true if equal. */
bool crypto_equal_ct(const void *a, const void *b, size_t n);

/* Overwrites n bytes in a way the compiler cannot drop. */
void crypto_wipe(void *p, size_t n);

/* Generates a fresh key pair on curve c. */
ifpp_err crypto_key_generate(crypto_curve c, crypto_key **out);

/* Builds a private key from its 32-byte scalar (public half derived). For test vectors and simulators. */
ifpp_err crypto_key_from_private(crypto_curve c, const uint8_t d[CRYPTO_EC_PRIV_LEN], crypto_key **out);

/* Builds a public key from an uncompressed point; refuses points not on the curve. */
ifpp_err crypto_key_from_public(crypto_curve c, const uint8_t *pub, size_t n, crypto_key **out);

/* Parses a DER SubjectPublicKeyInfo; refuses curves other than the two above. */
ifpp_err crypto_key_from_spki(const uint8_t *der, size_t n, crypto_key **out);

/*
 * Loads a PEM private key (PKCS#8 or SEC1) or public key (SPKI) from a regular file
 * (fs_open_regular). A private key file that group or others may read is refused, as ssh
 * refuses one; an encrypted key is refused without prompting for a passphrase.
 */
ifpp_err crypto_key_load_pem(const char *path, crypto_key **out);

/* crypto_key_load_pem, with why naming the path and the cause. */
ifpp_err crypto_key_load_pem_why(const char *path, crypto_key **out, char *why, size_t why_len);

/* Writes the private key as unencrypted PKCS#8 PEM to path, mode 0600, atomically. */
ifpp_err crypto_key_save_private_pem(const crypto_key *k, const char *path);

/* Writes the public key as SPKI PEM to path. */
ifpp_err crypto_key_save_public_pem(const crypto_key *k, const char *path);

/* Copies the public point (04||X||Y) into out. */
ifpp_err crypto_key_public(const crypto_key *k, uint8_t out[CRYPTO_EC_PUB_LEN]);

/* Returns the key's curve. */
crypto_curve crypto_key_curve(const crypto_key *k);

/* True if the key holds a private half. */
bool crypto_key_has_private(const crypto_key *k);

/* The underlying EVP_PKEY (borrowed), for X.509 code in common/cert.c and test tools. */
void *crypto_key_evp(const crypto_key *k);

/* Wraps an EVP_PKEY (takes one reference of its own); refuses other curves. */
ifpp_err crypto_key_from_evp(void *evp_pkey, crypto_key **out);

/* Frees a key (NULL is fine); the private half is cleared by OpenSSL. */
void crypto_key_free(crypto_key *k);

/*
 * ECDSA-SHA256 over msg. *siglen is in: capacity of sig, out: bytes written
 * (64 for RAW, at most 72 for DER).
 */
ifpp_err crypto_ecdsa_sign(const crypto_key *k, const void *msg, size_t n, crypto_sig_format fmt,
                           uint8_t *sig, size_t *siglen);

/* ECDSA over a SHA-256 digest the caller computed while streaming the data; as crypto_ecdsa_sign otherwise. */
ifpp_err crypto_ecdsa_sign_digest(const crypto_key *k, const uint8_t digest[CRYPTO_SHA256_LEN], crypto_sig_format fmt,
                                  uint8_t *sig, size_t *siglen);

/* Verifies an ECDSA-SHA256 signature; IFPP_E_SIGNATURE if it does not verify, a format error if malformed. */
ifpp_err crypto_ecdsa_verify(const crypto_key *k, const void *msg, size_t n, crypto_sig_format fmt,
                             const uint8_t *sig, size_t siglen);

/* Verifies an ECDSA signature over a SHA-256 digest computed by the caller (streamed data). */
ifpp_err crypto_ecdsa_verify_digest(const crypto_key *k, const uint8_t digest[CRYPTO_SHA256_LEN], crypto_sig_format fmt,
                                    const uint8_t *sig, size_t siglen);

/* Converts strict-DER ECDSA-Sig-Value to r||s (64 bytes); refuses BER, trailing bytes, r/s out of range. */
ifpp_err crypto_sig_der_to_raw(const uint8_t *der, size_t n, uint8_t raw[CRYPTO_SIG_RAW_LEN]);

/* Converts r||s to minimal DER; *n in: capacity, out: length. */
ifpp_err crypto_sig_raw_to_der(const uint8_t raw[CRYPTO_SIG_RAW_LEN], uint8_t *der, size_t *n);

/* ECKA-EG/ECDH: x-coordinate of d(mine) * Q(peer); both keys on the same curve. */
ifpp_err crypto_ecka(const crypto_key *mine, const crypto_key *peer, uint8_t shs[CRYPTO_EC_SECRET_LEN]);

/* ANSI X9.63 KDF with SHA-256: out = H(Z||00000001||info) || H(Z||00000002||info) || ... */
ifpp_err crypto_kdf_x963_sha256(const uint8_t *z, size_t zlen, const uint8_t *info, size_t infolen,
                                uint8_t *out, size_t outlen);

/* AES-128 encryption of one 16-byte block (ECB, no chaining). */
ifpp_err crypto_aes128_encrypt_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[16]);

/* AES-128-CBC over n bytes (n a multiple of 16, no padding added or removed); in == out allowed. */
ifpp_err crypto_aes128_cbc_encrypt(const uint8_t key[16], const uint8_t iv[16], const uint8_t *in,
                                   size_t n, uint8_t *out);
ifpp_err crypto_aes128_cbc_decrypt(const uint8_t key[16], const uint8_t iv[16], const uint8_t *in,
                                   size_t n, uint8_t *out);

/* AES-128-CMAC (NIST SP 800-38B, RFC 4493) over the concatenation of up to 3 parts (NULL/0 parts skipped). */
ifpp_err crypto_aes128_cmac(const uint8_t key[16], const uint8_t *p1, size_t n1, const uint8_t *p2,
                            size_t n2, const uint8_t *p3, size_t n3, uint8_t out[16]);

#endif
