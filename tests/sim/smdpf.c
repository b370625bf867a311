/* smdpf.c -- the test SM-DPf's BPP binding; see smdpf.h and docs/es10f.md. */
#include "smdpf.h"

#include <stdlib.h>
#include <string.h>

#include "bsp.h"
#include "tlv.h"

#define SMDPF_MAX_BPP (1u << 20)

/* Appends the plaintext as consecutive protected segments of `tag` (MAC only for 88). */
static ifpp_err smdpf_put_segments(tlv_builder *b, bsp_ctx *c, uint8_t tag, const uint8_t *pt, size_t n)
{
    size_t chunk = tag == 0x88 ? BSP_MAX_PLAIN_MAC_ONLY : BSP_MAX_PLAIN_ENCRYPTED;
    uint8_t seg[BSP_MAX_SEGMENT];
    size_t sl;
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        ifpp_err e = tag == 0x88 ? bsp_mac_only(c, tag, pt + off, len, seg, sizeof seg, &sl)
                                 : bsp_encrypt_and_mac(c, tag, pt + off, len, seg, sizeof seg, &sl);
        if (e != IFPP_OK)
            return e;
        if ((e = tlv_put_raw(b, seg, sl)) != IFPP_OK)
            return e;
    }
    return IFPP_OK;
}

/* BF23 InitialiseSecureChannelRequest, signed; also derives the session keys into c. */
static ifpp_err smdpf_init_secure_channel(const smdpf_bpp_params *p, tlv_builder *b, bsp_ctx *c)
{
    crypto_key *otk_dp = NULL, *euicc_otpk = NULL;
    uint8_t host_id[16], dp_pub[CRYPTO_EC_PUB_LEN], tbs[512], sig[CRYPTO_SIG_RAW_LEN], shs[CRYPTO_EC_SECRET_LEN];
    size_t siglen = sizeof sig, tbs_len;
    tlv_builder t;
    const uint8_t *data;
    ifpp_err e;

    if ((e = crypto_random(host_id, sizeof host_id)) != IFPP_OK || (e = crypto_key_generate(p->curve, &otk_dp)) != IFPP_OK)
        return e;
    crypto_key_public(otk_dp, dp_pub);
    /* The signed part: 82, 80, A6, 5F49 as they will appear, then the eUICC's otPK. */
    tlv_builder_init_fixed(&t, tbs, sizeof tbs);
    tlv_put(&t, 0x82, "\x01", 1);
    tlv_put(&t, 0x80, p->transaction_id, p->transaction_id_len);
    tlv_begin(&t, 0xA6);
    tlv_put(&t, 0x80, "\x88", 1);
    tlv_put(&t, 0x81, "\x10", 1);
    tlv_put(&t, 0x84, host_id, sizeof host_id);
    tlv_end(&t);
    tlv_put(&t, 0x5F49, dp_pub, sizeof dp_pub);
    size_t body_len = t.len;
    tlv_put(&t, 0x5F49, p->euicc_otpk, CRYPTO_EC_PUB_LEN);
    if ((e = tlv_builder_finish(&t, &data, &tbs_len)) != IFPP_OK ||
        (e = crypto_ecdsa_sign(p->dpf_pb_key, tbs, tbs_len, CRYPTO_SIG_RAW, sig, &siglen)) != IFPP_OK)
        goto out;
    tlv_begin(b, 0xBF23);
    tlv_put_raw(b, tbs, body_len);
    tlv_put(b, 0x5F37, sig, siglen);
    tlv_end(b);
    /* ECKA(otSK.DP, otPK.EUICC), then the SGP.22 KDF: the otSK.DP is dropped right after (PFS). */
    if ((e = crypto_key_from_public(p->curve, p->euicc_otpk, CRYPTO_EC_PUB_LEN, &euicc_otpk)) != IFPP_OK ||
        (e = crypto_ecka(otk_dp, euicc_otpk, shs)) != IFPP_OK)
        goto out;
    e = bsp_derive_keys(shs, sizeof shs, 0x88, 0x10, host_id, sizeof host_id, p->eid, 16, c);
out:
    crypto_wipe(shs, sizeof shs);
    crypto_key_free(otk_dp);
    crypto_key_free(euicc_otpk);
    return e;
}

ifpp_err smdpf_make_bpp(const smdpf_bpp_params *p, uint8_t **bpp, size_t *n)
{
    bsp_ctx c;
    tlv_builder b, md;
    uint8_t md_buf[512];
    const uint8_t *out, *md_der;
    size_t md_len, out_len;
    uint8_t *content = NULL;
    ifpp_err e;

    if (!p || !p->dpf_pb_key || !p->euicc_otpk || !p->eid || !p->transaction_id || !p->iccid || !bpp || !n ||
        p->transaction_id_len == 0 || p->transaction_id_len > 16 || !p->service_provider || !p->profile_name ||
        p->content_len == 0 || p->content_len > SMDPF_MAX_BPP / 2)
        return IFPP_E_ARG;

    tlv_builder_init_dynamic(&b, SMDPF_MAX_BPP);
    tlv_begin(&b, 0xBF36);
    if ((e = smdpf_init_secure_channel(p, &b, &c)) != IFPP_OK)
        goto out;

    /* A0: ConfigureISDP, encrypted. */
    tlv_begin(&b, 0xA0);
    smdpf_put_segments(&b, &c, 0x87, (const uint8_t *)"\xbf\x24\x00", 3);
    tlv_end(&b);

    /* A1: StoreMetadata, MAC only (the eUICC must read it before it can decide anything). */
    tlv_builder_init_fixed(&md, md_buf, sizeof md_buf);
    tlv_begin(&md, 0xBF25);
    tlv_put(&md, 0x5A, p->iccid, 10);
    tlv_put(&md, 0x91, p->service_provider, strlen(p->service_provider));
    tlv_put(&md, 0x92, p->profile_name, strlen(p->profile_name));
    tlv_put_uint(&md, 0x95, 2); /* operational */
    tlv_end(&md);
    if ((e = tlv_builder_finish(&md, &md_der, &md_len)) != IFPP_OK)
        goto out;
    tlv_begin(&b, 0xA1);
    smdpf_put_segments(&b, &c, 0x88, md_der, md_len);
    tlv_end(&b);

    /* A2: ReplaceSessionKeys, if asked: fresh keys for the profile segments. */
    if (p->replace_session_keys) {
        uint8_t keys[48], rsk[64];
        tlv_builder kb;
        const uint8_t *rsk_der;
        size_t rsk_len;
        crypto_random(keys, sizeof keys);
        tlv_builder_init_fixed(&kb, rsk, sizeof rsk);
        tlv_begin(&kb, 0xBF26);
        tlv_put(&kb, 0x80, keys, 16);
        tlv_put(&kb, 0x81, keys + 16, 16);
        tlv_put(&kb, 0x82, keys + 32, 16);
        tlv_end(&kb);
        e = tlv_builder_finish(&kb, &rsk_der, &rsk_len);
        tlv_begin(&b, 0xA2);
        if (e == IFPP_OK)
            e = smdpf_put_segments(&b, &c, 0x87, rsk_der, rsk_len);
        tlv_end(&b);
        bsp_init(&c, keys + 16, keys + 32, keys);
        crypto_wipe(keys, sizeof keys);
        crypto_wipe(rsk, sizeof rsk);
        if (e != IFPP_OK)
            goto out;
    }

    /* A3: the profile content, encrypted segment by segment. */
    content = malloc(p->content_len);
    if (!content) {
        e = IFPP_E_NOMEM;
        goto out;
    }
    crypto_random(content, p->content_len);
    tlv_begin(&b, 0xA3);
    smdpf_put_segments(&b, &c, 0x86, content, p->content_len);
    tlv_end(&b);
    tlv_end(&b);
    if ((e = tlv_builder_finish(&b, &out, &out_len)) != IFPP_OK)
        goto out;
    *bpp = b.buf;
    *n = out_len;
    b.buf = NULL;
out:
    free(content);
    bsp_wipe(&c);
    tlv_builder_free(&b);
    return e;
}
