/*
 * p11key.h -- a private key named by a PKCS#11 URI (RFC 7512), above all the Device Manufacturer's FPA key: it
 * can authorise FPA services on every eUICC the line will see, so a factory keeps it in a token. Signing
 * goes through the token (the key never leaves it); crypto.c's ECDSA signs with the handle as with a file key.
 *
 * Through OpenSSL's pkcs11 engine (libp11, Debian libengine-pkcs11-openssl): Debian 12 ships no PKCS#11
 * provider for OpenSSL 3 yet (pkcs11-provider arrives in Debian 13), and the engine hands back an EVP_PKEY
 * that crypto.c's EVP_DigestSign already uses, where raw p11-kit would mean a second ECDSA signer. The
 * module is the engine's default unless named: on Debian p11-kit's proxy, so the tokens p11-kit knows
 * (its modules directory, /usr/share/p11-kit/modules) are reachable; or a module path (trust.pkcs11_module).
 */
#ifndef IFPP_P11KEY_H
#define IFPP_P11KEY_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto.h"
#include "err.h"

/* True if name is a PKCS#11 URI ("pkcs11:..."), not a file. */
bool p11key_is_uri(const char *name);

/*
 * Loads the private key the URI names (module: NULL or "" for the engine's default) for the certificate
 * key cert_pub: a token may keep no public point with its private key, so cert_pub supplies it, and a
 * signature made by the token and verified with cert_pub proves the pair. why never shows a PIN.
 */
ifpp_err p11key_load(const char *uri, const char *module, const crypto_key *cert_pub, crypto_key **out, char *why,
                     size_t why_len);

#endif
