/* export.c -- the BPP request (ESBPP02); see export.h and docs/ifpp.asn BppRequest. */
#include "export.h"

#include <string.h>

#include "bundle.h"
#include "tlv.h"

typedef struct {
    tlv_builder *b;
    const char *profile_type;
    size_t items;
} request_ctx;

static ifpp_err put_eum(void *arg, const uint8_t *der, size_t n)
{
    return tlv_put_raw(arg, der, n);
}

static ifpp_err put_item(void *arg, const store_key_record *k)
{
    request_ctx *c = arg;
    tlv_begin(c->b, 0x30);
    tlv_put(c->b, 0x5A, k->eid, 16);
    tlv_put_raw(c->b, k->cert, k->cert_len);
    tlv_put_raw(c->b, k->info2, k->info2_len);
    tlv_begin(c->b, 0x30);
    tlv_put(c->b, 0x5F49, k->otpk, 65);
    tlv_put(c->b, 0x5F37, k->proof, 64);
    tlv_end(c->b);
    tlv_put(c->b, 0x0C, c->profile_type, strlen(c->profile_type));
    c->items++;
    return tlv_end(c->b);
}

ifpp_err export_bpp_request(store *s, const char *station_id, const char *profile_type, const crypto_key *station_key,
                            const cert *station_cert, uint8_t **out, size_t *out_len, size_t *items, char *why,
                            size_t why_len)
{
    tlv_builder b;
    uint8_t id[16];
    request_ctx c = {.b = &b, .profile_type = profile_type};
    ifpp_err e;
    if (!s || !station_id || !profile_type || !station_key || !station_cert || !out || !out_len)
        return IFPP_E_ARG;
    crypto_random(id, sizeof id);
    tlv_builder_init_dynamic(&b, 256u << 20);
    tlv_begin(&b, 0x30);
    tlv_put_uint(&b, 0x02, 1);
    tlv_put(&b, 0x04, id, sizeof id);
    tlv_put(&b, 0x0C, station_id, strlen(station_id));
    tlv_begin(&b, 0x30);
    e = store_each_eum_cert(s, put_eum, &b);
    tlv_end(&b);
    tlv_begin(&b, 0x30);
    if (e == IFPP_OK)
        e = store_each_unbound_key(s, put_item, &c);
    tlv_end(&b);
    tlv_end(&b);
    const uint8_t *content;
    size_t n;
    if (e == IFPP_OK)
        e = tlv_builder_finish(&b, &content, &n);
    if (e == IFPP_OK && c.items == 0) {
        err_why(why, why_len, "no One-time Key without a BPP: nothing to request (import an eUICC data package first)");
        e = IFPP_E_TLV_MISSING;
    }
    if (e == IFPP_OK) {
        const cert *chain[1] = {station_cert};
        e = bundle_seal(BUNDLE_BPP_REQUEST, content, n, station_key, chain, 1, out, out_len);
    }
    tlv_builder_free(&b);
    if (items)
        *items = c.items;
    return e;
}
