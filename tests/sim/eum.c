/* eum.c -- the test EUM; see eum.h. */
#include "eum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "cert.h"
#include "crypto.h"
#include "euicc_sim.h"
#include "hex.h"
#include "testpki.h"
#include "tlv.h"

/* GENS12 proof: the eUICC signs '5A 10 <EID> 5F49 41 <otPK>'. */
static ifpp_err eum_prove(const crypto_key *euicc_key, const uint8_t eid[16], const uint8_t otpk[65], uint8_t sig[64])
{
    uint8_t tbs[2 + 16 + 3 + 65];
    size_t siglen = 64;
    tbs[0] = 0x5A;
    tbs[1] = 0x10;
    memcpy(tbs + 2, eid, 16);
    memcpy(tbs + 18, "\x5f\x49\x41", 3);
    memcpy(tbs + 21, otpk, 65);
    return crypto_ecdsa_sign(euicc_key, tbs, sizeof tbs, CRYPTO_SIG_RAW, sig, &siglen);
}

/* Loads a test-PKI certificate and returns a copy of its DER (for the card file). */
static ifpp_err eum_cert_der(const char *dir, const char *name, cert **c)
{
    return testpki_load(dir, name, c, NULL);
}

ifpp_err eum_make_card(const char *pki_dir, const char *eid_text, size_t n_otks, const char *state_path,
                       eum_card *out)
{
    cert *ci = NULL, *eum = NULL, *dm = NULL, *ec = NULL;
    crypto_key *ek = NULL, *otks[EUM_MAX_OTKS] = {NULL};
    char name[64];
    size_t len;
    ifpp_err e;

    if (!pki_dir || !eid_text || !state_path || !out || n_otks == 0 || n_otks > EUM_MAX_OTKS)
        return IFPP_E_ARG;
    memset(out, 0, sizeof *out);
    snprintf(out->eid_text, sizeof out->eid_text, "%s", eid_text);
    if ((e = hex_decode(eid_text, out->eid, sizeof out->eid, &len)) != IFPP_OK || len != 16)
        return e ? e : IFPP_E_ARG;
    snprintf(name, sizeof name, "euicc/%s", eid_text);
    if ((e = testpki_load(pki_dir, name, &ec, &ek)) != IFPP_OK || (e = eum_cert_der(pki_dir, "ci", &ci)) != IFPP_OK ||
        (e = eum_cert_der(pki_dir, "eum", &eum)) != IFPP_OK || (e = eum_cert_der(pki_dir, "dm-root", &dm)) != IFPP_OK)
        goto out;
    for (size_t i = 0; i < n_otks && e == IFPP_OK; i++) {
        /* GENS07: random, generated in the EUM's (here: the test's) secure environment */
        if ((e = crypto_key_generate(crypto_key_curve(ek), &otks[i])) == IFPP_OK &&
            (e = crypto_key_public(otks[i], out->otpk[i])) == IFPP_OK)
            e = eum_prove(ek, out->eid, out->otpk[i], out->proof[i]);
    }
    if (e != IFPP_OK)
        goto out;
    out->n_otks = n_otks;
    euicc_sim_personalisation p = {.euicc_key = ek, .otks = (const crypto_key *const *)otks, .n_otks = n_otks};
    memcpy(p.eid, out->eid, 16);
    cert_der(ec, &p.euicc_cert_der, &p.euicc_cert_len);
    cert_der(eum, &p.eum_cert_der, &p.eum_cert_len);
    cert_der(ci, &p.ci_cert_der, &p.ci_cert_len);
    cert_der(dm, &p.dm_root_cert_der, &p.dm_root_cert_len);
    e = euicc_sim_personalise(state_path, &p);
out:
    for (size_t i = 0; i < n_otks; i++)
        crypto_key_free(otks[i]);
    crypto_key_free(ek);
    cert_free(ec);
    cert_free(ci);
    cert_free(eum);
    cert_free(dm);
    return e;
}

ifpp_err eum_data_package(const char *pki_dir, const eum_card *cards, const char *const *state_paths, size_t n,
                          uint8_t **out, size_t *outlen)
{
    cert *eum = NULL;
    crypto_key *eum_key = NULL;
    tlv_builder b;
    uint8_t package_id[16];
    ifpp_err e;

    if (!pki_dir || !cards || !state_paths || !out || !outlen)
        return IFPP_E_ARG;
    if ((e = testpki_load(pki_dir, "eum", &eum, &eum_key)) != IFPP_OK)
        return e;
    crypto_random(package_id, sizeof package_id);
    tlv_builder_init_dynamic(&b, 64u << 20);
    tlv_begin(&b, 0x30);
    tlv_put_uint(&b, 0x02, 1);
    tlv_put(&b, 0x04, package_id, sizeof package_id);
    tlv_begin(&b, 0x30);
    for (size_t i = 0; i < n && e == IFPP_OK; i++) {
        euicc_sim *card = NULL;
        cert *ec = NULL;
        uint8_t info2[512];
        size_t info2_len;
        char name[64];
        const uint8_t *der;
        size_t der_len;
        snprintf(name, sizeof name, "euicc/%s", cards[i].eid_text);
        if ((e = euicc_sim_open(state_paths[i], &card)) != IFPP_OK ||
            (e = euicc_sim_info2(card, info2, sizeof info2, &info2_len)) != IFPP_OK ||
            (e = testpki_load(pki_dir, name, &ec, NULL)) != IFPP_OK) {
            euicc_sim_close(card);
            break;
        }
        euicc_sim_close(card);
        cert_der(ec, &der, &der_len);
        tlv_begin(&b, 0x30);
        tlv_put(&b, 0x5A, cards[i].eid, 16);
        tlv_put_raw(&b, der, der_len);
        tlv_put_raw(&b, info2, info2_len);
        tlv_begin(&b, 0x30);
        for (size_t k = 0; k < cards[i].n_otks; k++) {
            tlv_begin(&b, 0x30);
            tlv_put(&b, 0x5F49, cards[i].otpk[k], 65);
            tlv_put(&b, 0x5F37, cards[i].proof[k], 64);
            tlv_end(&b);
        }
        tlv_end(&b);
        tlv_end(&b);
        cert_free(ec);
    }
    tlv_end(&b);
    tlv_end(&b);
    const uint8_t *content;
    size_t content_len;
    if (e == IFPP_OK && (e = tlv_builder_finish(&b, &content, &content_len)) == IFPP_OK) {
        const cert *chain[1] = {eum};
        e = bundle_seal(BUNDLE_EUICC_DATA, content, content_len, eum_key, chain, 1, out, outlen);
    }
    tlv_builder_free(&b);
    cert_free(eum);
    crypto_key_free(eum_key);
    return e;
}
