/*
 * err.h -- the one error type of ifpp-station.
 *
 * Every fallible function returns an ifpp_err. Errors are carried up unchanged so
 * that the operator, the MES and the logs all see the same cause; err_str() gives
 * each one a fixed human sentence. Context (which file, slot, EID) is added by the
 * caller in its message, never by inventing a new code.
 *
 * The list is an X-macro so that the enum and its strings cannot drift apart.
 */
#ifndef IFPP_ERR_H
#define IFPP_ERR_H

#include <stddef.h>

#define IFPP_ERRORS(X)                                                              \
    X(IFPP_OK,                 "success")                                           \
    X(IFPP_E_ARG,              "invalid argument")                                  \
    X(IFPP_E_NOMEM,            "out of memory")                                     \
    X(IFPP_E_IO,               "input/output error")                                \
    X(IFPP_E_INTERNAL,         "internal error (a bug)")                            \
    X(IFPP_E_RANGE,            "value out of the allowed range")                    \
    X(IFPP_E_NOT_FOUND,        "no such record (nothing matches)")                  \
    /* BER-TLV / DER codec */                                                       \
    X(IFPP_E_TLV_END,          "no more TLV objects")                               \
    X(IFPP_E_TLV_TRUNCATED,    "TLV truncated: header or value runs past the data") \
    X(IFPP_E_TLV_BAD_TAG,      "TLV tag malformed (bad or non-minimal multi-byte tag)") \
    X(IFPP_E_TLV_TAG_TOO_LONG, "TLV tag longer than 4 bytes")                       \
    X(IFPP_E_TLV_BAD_LENGTH,   "TLV length malformed")                              \
    X(IFPP_E_TLV_INDEFINITE,   "TLV indefinite length is not allowed")              \
    X(IFPP_E_TLV_NOT_DER,      "TLV encoding is not strict DER (non-minimal length)") \
    X(IFPP_E_TLV_TOO_DEEP,     "TLV nesting deeper than allowed")                   \
    X(IFPP_E_TLV_TOO_BIG,      "TLV object larger than allowed")                    \
    X(IFPP_E_TLV_TRAILING,     "unexpected bytes after the TLV object")             \
    X(IFPP_E_TLV_NOT_CONSTRUCTED, "TLV is primitive where a constructed one is required") \
    X(IFPP_E_TLV_UNEXPECTED_TAG,  "TLV tag is not the one expected here")           \
    X(IFPP_E_TLV_MISSING,      "required TLV object is missing")                    \
    X(IFPP_E_TLV_BAD_INTEGER,  "INTEGER malformed (empty, non-minimal or too large)") \
    X(IFPP_E_TLV_OVERFLOW,     "TLV builder ran out of its buffer")                 \
    X(IFPP_E_TLV_UNBALANCED,   "TLV builder: constructed object left open or closed twice") \
    /* crypto core */                                                               \
    X(IFPP_E_CRYPTO,           "cryptographic library failure")                     \
    X(IFPP_E_BAD_CURVE,        "unsupported elliptic curve (need P-256 or brainpoolP256r1)") \
    X(IFPP_E_BAD_KEY,          "malformed or invalid key (point not on the curve?)") \
    X(IFPP_E_CURVE_MISMATCH,   "keys are on different curves")                      \
    X(IFPP_E_BAD_SIGNATURE_FORMAT, "signature encoding malformed")                  \
    X(IFPP_E_SIGNATURE,        "signature does not verify")                         \
    X(IFPP_E_MAC,              "MAC does not verify")                               \
    X(IFPP_E_PADDING,          "padding malformed after decryption")                \
    X(IFPP_E_BSP_SEGMENT,      "protected BPP segment malformed")                   \
    /* certificates */                                                              \
    X(IFPP_E_CERT_PARSE,       "certificate is not valid DER X.509")                \
    X(IFPP_E_CERT_CHAIN,       "certificate does not chain to the trusted root")    \
    X(IFPP_E_CERT_EXPIRED,     "certificate is expired or not yet valid")           \
    X(IFPP_E_CERT_ROLE,        "certificate is not issued for this role (policy)")  \
    X(IFPP_E_CERT_KEY_USAGE,   "certificate key usage or basic constraints wrong for its role") \
    X(IFPP_E_CERT_ALGORITHM,   "certificate key or signature algorithm not allowed") \
    X(IFPP_E_CERT_SIGNATURE,   "certificate signature does not verify")              \
    /* APDU framing (ISO/IEC 7816-4) */                                             \
    X(IFPP_E_APDU_MALFORMED,   "APDU malformed: its length fields do not match its size") \
    X(IFPP_E_APDU_TOO_LONG,    "APDU data longer than the encoding or transport allows") \
    X(IFPP_E_APDU_CHANNEL,     "logical channel number outside 0..19")           \
    X(IFPP_E_CARD_PROTOCOL,    "the eUICC broke the transport protocol (a response chain without progress or past its bounds)") \
    /* FPA transports */                                                            \
    X(IFPP_E_NO_READER,        "no reader matches the slot's configuration, or it was unplugged") \
    X(IFPP_E_NO_CARD,          "no eUICC in the reader, or it was removed")          \
    X(IFPP_E_CARD_RESET,       "the eUICC was reset by someone else during the session") \
    X(IFPP_E_TRANSPORT,        "the transport to the eUICC failed")               \
    X(IFPP_E_BUSY,             "held by another session or process (a reader, or the store's write lock)") \
    X(IFPP_E_TIMEOUT,          "a configured time ran out (an eUICC's answer, a DUT's arrival or removal)")

typedef enum {
#define IFPP_ERR_ENUM(name, text) name,
    IFPP_ERRORS(IFPP_ERR_ENUM)
#undef IFPP_ERR_ENUM
    IFPP_ERR__COUNT
} ifpp_err;

/* Returns a fixed, never-NULL sentence for e (also for out-of-range values). */
const char *err_str(ifpp_err e);

/* Returns the enum's own name ("IFPP_E_MAC"), for logs and the MES protocol. */
const char *err_name(ifpp_err e);

/* Formats a "why" message for the caller if it gave a buffer (why may be NULL or why_len 0). */
void err_why(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
