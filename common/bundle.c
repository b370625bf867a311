/*
 * bundle.c -- SignedBundle sealing and opening; see bundle.h and docs/ifpp.asn.
 *
 * The order of checks in bundle_open() is the order of trust: structure first (so nothing
 * below reads out of bounds), then type, then the chain (so the key is one we trust), and
 * only then the signature with that key. A bundle that fails any step yields no content.
 */
#include "bundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlv.h"

/* id-ifpp-bundle-N = 2.25.120392306333479474166067974072028333099.2.N (docs/ifpp.asn), DER body. */
static const uint8_t BUNDLE_OID_PREFIX[] = {0x69, 0x81, 0xb5, 0x92, 0xdb, 0xbf, 0x83, 0x80, 0xfa, 0xb8,
                                            0x8b, 0xad, 0xc3, 0x93, 0xf2, 0xe3, 0xba, 0x9e, 0x88, 0x2b, 0x02};
#define BUNDLE_OID_LEN (sizeof BUNDLE_OID_PREFIX + 1)
#define BUNDLE_MAX_SIZE ((size_t)1 << 31)

const char *bundle_type_name(bundle_type t)
{
    switch (t) {
    case BUNDLE_EUICC_DATA: return "eUICC data package";
    case BUNDLE_BPP_REQUEST: return "BPP request";
    case BUNDLE_BPP_VAULT: return "BPP vault";
    case BUNDLE_LOADING_REPORT: return "Profile Loading Report";
    case BUNDLE_DELETION_REPORT: return "Deletion Report";
    }
    return "unknown bundle";
}

cert_role bundle_signer_role(bundle_type t)
{
    switch (t) {
    case BUNDLE_EUICC_DATA: return CERT_ROLE_EUM;
    case BUNDLE_BPP_VAULT: return CERT_ROLE_DPF_AUTH;
    case BUNDLE_BPP_REQUEST:
    case BUNDLE_LOADING_REPORT:
    case BUNDLE_DELETION_REPORT: break;
    }
    return CERT_ROLE_STATION;
}

static void bundle_oid(bundle_type t, uint8_t out[BUNDLE_OID_LEN])
{
    memcpy(out, BUNDLE_OID_PREFIX, sizeof BUNDLE_OID_PREFIX);
    out[sizeof BUNDLE_OID_PREFIX] = (uint8_t)t;
}

size_t bundle_type_oid(bundle_type t, uint8_t *out, size_t cap)
{
    if (cap < BUNDLE_OID_LEN)
        return 0;
    bundle_oid(t, out);
    return BUNDLE_OID_LEN;
}

ifpp_err bundle_seal(bundle_type t, const uint8_t *content, size_t n, const crypto_key *key,
                     const cert *const *chain, size_t n_chain, uint8_t **out, size_t *outlen)
{
    tlv c;
    uint8_t oid[BUNDLE_OID_LEN], sig[CRYPTO_SIG_RAW_LEN];
    size_t siglen = sizeof sig;
    tlv_builder b, inner;
    const uint8_t *wrapped, *der;
    size_t wrapped_len, der_len;

    if (!content || !key || !chain || n_chain == 0 || n_chain > BUNDLE_MAX_CHAIN || !out || !outlen)
        return IFPP_E_ARG;
    if (tlv_parse_exact(content, n, TLV_DER, &c) != IFPP_OK || c.tag != 0x30)
        return IFPP_E_ARG;
    /* The signature covers the [0] TLV exactly as it will be written. */
    tlv_builder_init_dynamic(&inner, n + 16);
    tlv_begin(&inner, 0xA0);
    tlv_put_raw(&inner, content, n);
    tlv_end(&inner);
    ifpp_err e = tlv_builder_finish(&inner, &wrapped, &wrapped_len);
    if (e == IFPP_OK)
        e = crypto_ecdsa_sign(key, wrapped, wrapped_len, CRYPTO_SIG_RAW, sig, &siglen);
    if (e != IFPP_OK) {
        tlv_builder_free(&inner);
        return e;
    }
    bundle_oid(t, oid);
    tlv_builder_init_dynamic(&b, BUNDLE_MAX_SIZE);
    tlv_begin(&b, 0x30);
    tlv_put(&b, 0x06, oid, sizeof oid);
    tlv_put_raw(&b, wrapped, wrapped_len);
    tlv_begin(&b, 0xA1);
    for (size_t i = 0; i < n_chain; i++) {
        cert_der(chain[i], &der, &der_len);
        tlv_put_raw(&b, der, der_len);
    }
    tlv_end(&b);
    tlv_put(&b, 0x5F37, sig, siglen);
    tlv_end(&b);
    tlv_builder_free(&inner);
    const uint8_t *all;
    size_t all_len;
    if ((e = tlv_builder_finish(&b, &all, &all_len)) != IFPP_OK) {
        tlv_builder_free(&b);
        return e;
    }
    *out = b.buf; /* the builder's heap buffer becomes the caller's */
    *outlen = all_len;
    return IFPP_OK;
}

bool bundle_type_oid_matches(bundle_type t, const uint8_t *oid, size_t n)
{
    uint8_t want[BUNDLE_OID_LEN];
    bundle_oid(t, want);
    return n == sizeof want && memcmp(oid, want, sizeof want) == 0;
}

ifpp_err bundle_verify_trailer(bundle_type t, const uint8_t *trailer, size_t n, const uint8_t digest[32],
                               const cert *root, time_t now, cert **signer, char *why, size_t why_len)
{
    tlv certs, sig, item;
    tlv_reader r, cr;
    cert *chain[BUNDLE_MAX_CHAIN] = {NULL};
    size_t n_chain = 0;
    crypto_key *key = NULL;
    const char *name = bundle_type_name(t);
    ifpp_err e;

    tlv_reader_init(&r, trailer, n, TLV_DER);
    if ((e = tlv_reader_expect(&r, 0xA1, &certs)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x5F37, &sig)) != IFPP_OK ||
        (!tlv_reader_done(&r) && (e = IFPP_E_TLV_TRAILING))) {
        err_why(why, why_len, "%s: signer certificates or signature missing (%s)", name, err_str(e));
        return e;
    }
    /* the signer's chain, with the role this type needs */
    tlv_reader_enter(&r, &certs, &cr);
    while ((e = tlv_reader_next(&cr, &item)) == IFPP_OK) {
        if (n_chain == BUNDLE_MAX_CHAIN) {
            e = IFPP_E_CERT_CHAIN;
            break;
        }
        if ((e = cert_parse_der(item.raw, item.raw_len, &chain[n_chain])) != IFPP_OK)
            break;
        n_chain++;
    }
    if (e == IFPP_E_TLV_END)
        e = n_chain ? IFPP_OK : IFPP_E_CERT_CHAIN;
    char cwhy[256] = "";
    if (e == IFPP_OK)
        e = cert_verify_chain(root, (const cert *const *)chain + 1, n_chain - 1, chain[0], bundle_signer_role(t),
                              now, cwhy, sizeof cwhy);
    if (e != IFPP_OK) {
        err_why(why, why_len, "%s: signer certificate not trusted: %s%s%s", name, err_str(e), *cwhy ? ": " : "",
                cwhy);
        goto out;
    }
    /* the signature over [0], with the key just trusted */
    if ((e = cert_public_key(chain[0], &key)) == IFPP_OK)
        e = crypto_ecdsa_verify_digest(key, digest, CRYPTO_SIG_RAW, sig.value, sig.len);
    if (e != IFPP_OK) {
        err_why(why, why_len, "%s: signature does not verify: altered, or not from its signer%s%s", name,
                e == IFPP_E_SIGNATURE ? "" : ": ", e == IFPP_E_SIGNATURE ? "" : err_str(e));
        goto out;
    }
    if (signer) {
        *signer = chain[0];
        chain[0] = NULL;
    }
out:
    crypto_key_free(key);
    for (size_t i = 0; i < n_chain; i++)
        cert_free(chain[i]);
    return e;
}

ifpp_err bundle_open(const uint8_t *buf, size_t n, bundle_type t, const cert *root, time_t now,
                     bundle_view *v, char *why, size_t why_len)
{
    tlv top, oid, content, inner;
    tlv_reader r, outer;
    uint8_t digest[32];
    ifpp_err e;

    if (!buf || !root || !v)
        return IFPP_E_ARG;
    memset(v, 0, sizeof *v);
    const char *name = bundle_type_name(t);

    /* 1. structure */
    if ((e = tlv_parse_exact(buf, n, TLV_DER, &top)) != IFPP_OK || top.tag != 0x30) {
        err_why(why, why_len, "%s: not one DER SEQUENCE (%s)", name, e ? err_str(e) : "wrong outer tag");
        return e ? e : IFPP_E_TLV_UNEXPECTED_TAG;
    }
    tlv_reader_init(&outer, buf, n, TLV_DER);
    if ((e = tlv_reader_enter(&outer, &top, &r)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x06, &oid)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0xA0, &content)) != IFPP_OK) {
        err_why(why, why_len, "%s: SignedBundle fields missing or out of order (%s)", name, err_str(e));
        return e;
    }
    if ((e = tlv_parse_exact(content.value, content.len, TLV_DER, &inner)) != IFPP_OK || inner.tag != 0x30) {
        err_why(why, why_len, "%s: content is not one DER SEQUENCE", name);
        return e ? e : IFPP_E_TLV_UNEXPECTED_TAG;
    }
    /* 2. type */
    if (!bundle_type_oid_matches(t, oid.value, oid.len)) {
        err_why(why, why_len, "%s expected, but the file declares another bundle type", name);
        return IFPP_E_TLV_UNEXPECTED_TAG;
    }
    /* 3 and 4. the signer's chain and the signature over [0] */
    crypto_sha256(content.raw, content.raw_len, digest);
    const uint8_t *trailer = content.raw + content.raw_len;
    if ((e = bundle_verify_trailer(t, trailer, (size_t)(top.value + top.len - trailer), digest, root, now, &v->signer,
                                   why, why_len)) != IFPP_OK)
        return e;
    v->type = t;
    v->content = inner.raw;
    v->content_len = inner.raw_len;
    return IFPP_OK;
}

void bundle_view_free(bundle_view *v)
{
    if (!v)
        return;
    cert_free(v->signer);
    memset(v, 0, sizeof *v);
}
