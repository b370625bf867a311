/*
 * storeseed.c -- synthetic store contents for the store's concurrency tests and bench (storeseed.h).
 */
#include "storeseed.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "err.h"

void storeseed_txid(uint8_t tag, int t, int k, uint8_t txid[16])
{
    memset(txid, 0, 16);
    txid[0] = tag;
    txid[1] = (uint8_t)t;
    txid[14] = (uint8_t)(k >> 8);
    txid[15] = (uint8_t)k;
}

ifpp_err storeseed_fill(store *s, int n_euiccs, int per_euicc, uint8_t tag, uint8_t (*eids)[16], char *why,
                        size_t why_len)
{
    static const uint8_t blob[] = {0xBF, 0x36, 0x02, 0xBF, 0x23};
    uint8_t cert_der[40] = {0x30, 38}, info2[3] = {0xBF, 0x22, 0x00}, proof[64] = {0};
    ifpp_err e = IFPP_OK;
    for (int t = 0; t < n_euiccs && e == IFPP_OK; t++) {
        if ((e = crypto_random(eids[t], 16)) != IFPP_OK ||
            (e = store_add_euicc(s, eids[t], cert_der, sizeof cert_der, info2, sizeof info2)) != IFPP_OK)
            break;
        for (int k = 0; k < per_euicc && e == IFPP_OK; k++) {
            store_bpp b;
            memset(&b, 0, sizeof b);
            b.otpk[0] = 0x04;
            if ((e = crypto_random(b.otpk + 1, 64)) != IFPP_OK ||
                (e = store_add_otk(s, eids[t], b.otpk, proof)) != IFPP_OK)
                break;
            storeseed_txid(tag, t, k, b.transaction_id);
            b.transaction_id_len = 16;
            memcpy(b.eid, eids[t], 16);
            memset(b.iccid, 0x98, 10);
            snprintf(b.profile_type, sizeof b.profile_type, "operatorA");
            crypto_sha256(b.transaction_id, 16, b.bpp_hash);
            b.bpp = blob;
            b.bpp_len = sizeof blob;
            snprintf(b.vault_id, sizeof b.vault_id, "vault-1");
            e = store_add_bpp(s, &b, NULL, why, why_len);
        }
    }
    if (e != IFPP_OK && why && !*why)
        snprintf(why, why_len, "seeding the store: %s (%s)", err_name(e), store_errmsg(s));
    return e;
}
