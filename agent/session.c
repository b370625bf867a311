/*
 * session.c -- the provisioning session and its recovery; see session.h and docs/es10f.md.
 *
 * Every store move below is its own committed transaction, made before the next APDU: if the
 * process dies between any two lines, the store says reserved or in_doubt and the card holds
 * the evidence recovery needs.
 */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apdu.h"
#include "es10f.h"
#include "hex.h"
#include "pir.h"
#include "tlv.h"

#define SESSION_MAX_BPP_COMMANDS 512
#define SESSION_RESP 16384

const char *session_step_name(session_step s)
{
    static const char *const names[SESSION_STEP__COUNT] = {
        "select ISD-R", "read EID", "reserve BPP", "authorise FPA services", "send SM-DPf certificate",
        "load BPP", "verify and record PIR", "acknowledge PIR", "delete One-time Keys", "done",
    };
    return (unsigned)s < SESSION_STEP__COUNT ? names[s] : "unknown step";
}

static void step(session_ctx *c, session_step s, const char *detail)
{
    c->current = s;
    if (c->progress)
        c->progress(c->progress_arg, s, detail);
}

/* One ES10 call on the ISD-R's channel, in blocks as large as the slot takes (extended length). */
static ifpp_err call(session_ctx *c, const uint8_t *req, size_t n, uint8_t *resp, size_t *rn, uint16_t *sw)
{
    size_t block = fpa_max_command_data(c->slot);
    return es10f_call_blocks(fpa_transmit, c->slot, c->channel, block > ES10F_MAX_BLOCK ? ES10F_MAX_BLOCK : block, req,
                             n, resp, SESSION_RESP, rn, sw);
}

/*
 * A transport failure gets the backend's own words ("reader X: card removed") after the
 * session's, so the operator sees both what the station was doing and what the wire said.
 */
static void session_add_transport_detail(session_ctx *c, ifpp_err e, char *msg, size_t cap)
{
    const char *detail = fpa_last_error(c->slot);
    size_t used = strlen(msg);
    bool transport = e == IFPP_E_NO_CARD || e == IFPP_E_NO_READER || e == IFPP_E_CARD_RESET || e == IFPP_E_TRANSPORT ||
                     e == IFPP_E_TIMEOUT || e == IFPP_E_BUSY || e == IFPP_E_APDU_MALFORMED;
    if (transport && detail[0] && used + 4 < cap)
        snprintf(msg + used, cap - used, " [%s]", detail);
}

/* Gives back a logical channel the session opened; the next reset would close it anyway. */
static void session_close_channel(session_ctx *c)
{
    fpa_close_channel(c->slot, c->channel);
    c->channel = 0;
}

/* Reset, SELECT the ISD-R (no FCI), GetEID. */
static ifpp_err session_open_card(session_ctx *c, uint8_t eid[16], char *why, size_t why_len)
{
    static const uint8_t isdr_default[16] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF,
                                     0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00};
    uint8_t atr[64], resp[SESSION_RESP];
    const uint8_t *isdr = c->isdr_aid ? c->isdr_aid : isdr_default;
    size_t isdr_len = c->isdr_aid ? c->isdr_aid_len : sizeof isdr_default;
    size_t atr_len, rn;
    uint16_t sw;
    ifpp_err e;
    step(c, SESSION_STEP_SELECT, NULL);
    c->channel = 0;
    if ((e = fpa_reset(c->slot, atr, sizeof atr, &atr_len)) != IFPP_OK) {
        err_why(why, why_len, "slot %s: no eUICC answers the reset (%s)", c->slot_name, err_str(e));
        return e;
    }
    if (c->logical_channel) {
        /* the ISD-R on a channel of its own: MANAGE CHANNEL + SELECT, or the transport's own way */
        if ((e = fpa_open_channel(c->slot, isdr, isdr_len, &c->channel, &sw)) != IFPP_OK) {
            err_why(why, why_len, "slot %s: no logical channel with the ISD-R selected (%s)", c->slot_name,
                    sw && sw != SW_OK ? apdu_sw_str(sw) : err_str(e));
            c->channel = 0;
            return e;
        }
    } else if ((e = fpa_select(c->slot, 0, isdr, isdr_len, &sw)) != IFPP_OK) {
        err_why(why, why_len, "slot %s: SELECT of the ISD-R failed (%s)", c->slot_name,
                sw && sw != SW_OK ? apdu_sw_str(sw) : err_str(e));
        return e;
    }
    step(c, SESSION_STEP_EID, NULL);
    tlv t, f;
    tlv_reader r0, r;
    if ((e = call(c, (const uint8_t *)"\xbf\x3e\x03\x5c\x01\x5a", 6, resp, &rn, &sw)) != IFPP_OK || sw != SW_OK ||
        tlv_parse_exact(resp, rn, TLV_DER, &t) != IFPP_OK || t.tag != 0xBF3E) {
        err_why(why, why_len, "slot %s: GetEID failed (%s)", c->slot_name, e ? err_str(e) : apdu_sw_str(sw));
        return e ? e : IFPP_E_IO;
    }
    tlv_reader_init(&r0, resp, rn, TLV_DER);
    if (tlv_reader_enter(&r0, &t, &r) != IFPP_OK || tlv_reader_expect(&r, 0x5A, &f) != IFPP_OK || f.len != 16) {
        err_why(why, why_len, "slot %s: GetEID answer malformed", c->slot_name);
        return IFPP_E_TLV_UNEXPECTED_TAG;
    }
    memcpy(eid, f.value, 16);
    /* EUICCInfo2: the card must answer it as an SGP.22 ISD-R does (its content came with the EUM's package) */
    if ((e = call(c, (const uint8_t *)"\xbf\x22\x00", 3, resp, &rn, &sw)) != IFPP_OK || sw != SW_OK ||
        tlv_parse_exact(resp, rn, TLV_DER, &t) != IFPP_OK || t.tag != 0xBF22) {
        err_why(why, why_len, "slot %s: GetEUICCInfo2 failed (%s)", c->slot_name, e ? err_str(e) : apdu_sw_str(sw));
        return e ? e : IFPP_E_IO;
    }
    return IFPP_OK;
}

/* GetEuiccChallenge, then AuthoriseFpaServices signed with the DM's FPA key (EUICCF02). */
static ifpp_err session_authorise(session_ctx *c, const uint8_t eid[16], char *why, size_t why_len)
{
    uint8_t resp[SESSION_RESP], req[4096], result = 0xFF;
    size_t rn, qn;
    uint16_t sw;
    tlv t;
    ifpp_err e;
    step(c, SESSION_STEP_AUTHORISE, NULL);
    if ((e = call(c, (const uint8_t *)"\xbf\x2e\x00", 3, resp, &rn, &sw)) != IFPP_OK || sw != SW_OK ||
        tlv_parse_exact(resp, rn, TLV_DER, &t) != IFPP_OK || t.len != 18) {
        err_why(why, why_len, "GetEuiccChallenge failed (%s)", e ? err_str(e) : apdu_sw_str(sw));
        return e ? e : IFPP_E_IO;
    }
    if ((e = es10f_build_authorise(t.value + 2, eid, c->dm_fpa_key, c->dm_fpa_cert, req, sizeof req, &qn)) != IFPP_OK ||
        (e = call(c, req, qn, resp, &rn, &sw)) != IFPP_OK || sw != SW_OK ||
        (e = es10f_parse_result(resp, rn, 0xBF70, 0x02, &result)) != IFPP_OK || result != 0) {
        static const char *const reasons[] = {"ok", "invalidCertificate", "invalidSignature", "challengeMismatch",
                                              "fpaServicesUnavailable (no One-time Key left)"};
        err_why(why, why_len, "FPA services not authorised: %s",
                e ? err_str(e) : sw != SW_OK ? apdu_sw_str(sw) : result < 5 ? reasons[result] : "undefinedError");
        return e ? e : IFPP_E_SIGNATURE;
    }
    return IFPP_OK;
}

/* Verifies a PIR with the key of the eUICC certificate the EUM's package delivered. */
static ifpp_err session_check_pir(session_ctx *c, const uint8_t eid[16], const uint8_t *pir, size_t n, pir_info *info)
{
    uint8_t *der = NULL;
    size_t dn;
    cert *ec = NULL;
    crypto_key *k = NULL;
    ifpp_err e = pir_parse(pir, n, info);
    if (e == IFPP_OK && (e = store_euicc_cert(c->st, eid, &der, &dn)) == IFPP_OK &&
        (e = cert_parse_der(der, dn, &ec)) == IFPP_OK && (e = cert_public_key(ec, &k)) == IFPP_OK)
        e = pir_verify(info, k);
    crypto_key_free(k);
    cert_free(ec);
    free(der);
    return e;
}

/* NotificationSent: the card may forget the PIR now that the store holds it. */
static void session_ack(session_ctx *c, uint64_t seq)
{
    uint8_t req[16], resp[64];
    size_t rn;
    uint16_t sw;
    tlv_builder b;
    const uint8_t *p;
    size_t n;
    tlv_builder_init_fixed(&b, req, sizeof req);
    tlv_begin(&b, 0xBF30);
    tlv_put_uint(&b, 0x80, seq);
    tlv_end(&b);
    if (tlv_builder_finish(&b, &p, &n) == IFPP_OK)
        (void)call(c, req, n, resp, &rn, &sw); /* if this fails the card keeps the PIR: harmless */
}

/*
 * True if the store holds the PIR of this BPP: recording a PIR moves the BPP to installed or
 * failed in the same transaction. A kept PIR the store does not hold (a write that failed, a DUT
 * from another station) stays on the card as evidence.
 */
static bool session_store_holds_pir(session_ctx *c, const uint8_t *txid, size_t txid_len)
{
    store_bpp b;
    return txid_len > 0 && txid_len <= 16 && store_get_bpp(c->st, txid, txid_len, &b) == IFPP_OK &&
           (b.state == BPP_INSTALLED || b.state == BPP_FAILED);
}

/* The card's remaining One-time Keys, as GetOneTimeKeyInfo lists them (parsed strictly by es10f). */
typedef struct {
    uint8_t count;
    uint8_t keys[ES10F_MAX_OTKS][65];
} session_otks;

static ifpp_err session_otk_info(session_ctx *c, session_otks *k)
{
    uint8_t resp[SESSION_RESP];
    size_t rn;
    uint16_t sw;
    ifpp_err e = call(c, (const uint8_t *)"\xbf\x72\x00", 3, resp, &rn, &sw);
    if (e == IFPP_OK && sw != SW_OK)
        e = IFPP_E_IO;
    return e == IFPP_OK ? es10f_parse_otk_info(resp, rn, k->keys, ES10F_MAX_OTKS, &k->count) : e;
}

/* True if the card still holds the One-time Key otpk. */
static bool session_key_present(const session_otks *k, const uint8_t otpk[65])
{
    for (size_t i = 0; i < k->count; i++)
        if (memcmp(k->keys[i], otpk, 65) == 0)
            return true;
    return false;
}

/*
 * Available BPPs of this eUICC whose One-time Key is no longer on it can never be loaded: they
 * go to deleted (after DeleteOneTimeKeys, DMF03), so the report can say so and nothing waits
 * for them. The key list k is the card's own answer, parsed strictly.
 */
static size_t session_retire_keyless(session_ctx *c, const uint8_t eid[16], const session_otks *k, const char *reason)
{
    uint8_t txids[64][16];
    size_t lens[64], n = 0, retired = 0;
    store_actor who = {.slot = c->slot_name, .reason = reason};
    if (store_available(c->st, eid, txids, lens, 64, &n) != IFPP_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        store_bpp b;
        if (store_get_bpp(c->st, txids[i], lens[i], &b) == IFPP_OK && !session_key_present(k, b.otpk) &&
            bpp_move(c->st, txids[i], lens[i], BPP_AVAILABLE, BPP_DELETED, &who) == IFPP_OK)
            retired++;
    }
    return retired;
}

/* EUICCF03/DMF03: delete every remaining One-time Key and confirm that none is left. */
static ifpp_err session_delete_keys(session_ctx *c, const uint8_t eid[16], char *why, size_t why_len)
{
    uint8_t resp[256], result = 0xFF;
    size_t rn;
    uint16_t sw;
    session_otks left = {.count = 0xFF};
    step(c, SESSION_STEP_DELETE_KEYS, NULL);
    ifpp_err e = call(c, (const uint8_t *)"\xbf\x73\x00", 3, resp, &rn, &sw);
    if (e == IFPP_OK && (sw != SW_OK || es10f_parse_result(resp, rn, 0xBF73, 0x02, &result) != IFPP_OK || result != 0))
        e = IFPP_E_IO;
    if (e == IFPP_OK)
        e = session_otk_info(c, &left);
    if (e == IFPP_OK && left.count != 0)
        e = IFPP_E_RANGE;
    if (e == IFPP_OK)
        session_retire_keyless(c, eid, &left, "One-time Keys deleted at the end of production (DMF03)");
    if (e != IFPP_OK)
        err_why(why, why_len, "One-time Keys not all deleted (%s; %u left)", err_str(e), left.count);
    return e;
}

/* Anything short of a verified PIR: the BPP waits in_doubt for the card's evidence. */
static void session_doubt(session_ctx *c, session_result *r, const store_actor *who)
{
    store_actor w = *who;
    w.reason = r->message;
    if (bpp_move(c->st, r->txid, r->txid_len, BPP_RESERVED, BPP_IN_DOUBT, &w) == IFPP_OK)
        r->final_state = BPP_IN_DOUBT;
}

ifpp_err session_provision(session_ctx *c, const char *dut_serial, const char *profile_type, session_result *r)
{
    uint8_t resp[SESSION_RESP], req[4096];
    size_t rn, qn;
    uint16_t sw = 0;
    char session_id[40], eid_hex[33];
    uint8_t rnd[8];
    store_bpp b;
    uint8_t *bpp = NULL, *pb_der = NULL;
    size_t bpp_len, pb_len;
    cert *pb = NULL;
    ifpp_err e;

    memset(r, 0, sizeof *r);
    r->final_state = BPP_STATE__COUNT;
    r->failed_step = SESSION_STEP__COUNT;
    r->card_result = -1;
    if ((e = session_open_card(c, r->eid, r->message, sizeof r->message)) != IFPP_OK)
        goto out;
    hex_encode(r->eid, 16, eid_hex, sizeof eid_hex);
    crypto_random(rnd, sizeof rnd);
    hex_encode(rnd, sizeof rnd, session_id, sizeof session_id);
    store_actor who = {.session = session_id, .slot = c->slot_name, .dut_serial = dut_serial, .reason = "provision"};

    step(c, SESSION_STEP_RESERVE, eid_hex);
    if ((e = bpp_reserve(c->st, r->eid, profile_type, &who, &b)) != IFPP_OK) {
        err_why(r->message, sizeof r->message, "no available BPP for eUICC %s%s%s", eid_hex,
                profile_type ? " and profile type " : "", profile_type ? profile_type : "");
        goto out;
    }
    memcpy(r->txid, b.transaction_id, b.transaction_id_len);
    r->txid_len = b.transaction_id_len;
    r->final_state = BPP_RESERVED;

    if ((e = session_authorise(c, r->eid, r->message, sizeof r->message)) != IFPP_OK)
        goto doubt;
    step(c, SESSION_STEP_PREPARE, NULL);
    uint8_t result = 0xFF;
    if ((e = store_vault_pb_cert(c->st, b.vault_id, &pb_der, &pb_len)) != IFPP_OK ||
        (e = cert_parse_der(pb_der, pb_len, &pb)) != IFPP_OK ||
        (e = es10f_build_prepare(b.transaction_id, b.transaction_id_len, b.otpk, pb, NULL, 0, req, sizeof req, &qn)) !=
            IFPP_OK ||
        (e = call(c, req, qn, resp, &rn, &sw)) != IFPP_OK || sw != SW_OK ||
        (e = es10f_parse_result(resp, rn, 0xBF71, 0x02, &result)) != IFPP_OK || result != 0) {
        err_why(r->message, sizeof r->message, "the eUICC refused the SM-DPf certificate or key (%s, result %u)",
                e ? err_str(e) : apdu_sw_str(sw), result);
        e = e ? e : IFPP_E_CERT_CHAIN;
        goto doubt;
    }

    /* The BPP, command by command, never opened (GENS09/GENS10). */
    step(c, SESSION_STEP_LOAD, NULL);
    if ((e = store_bpp_blob(c->st, b.transaction_id, b.transaction_id_len, &bpp, &bpp_len)) != IFPP_OK) {
        err_why(r->message, sizeof r->message, "stored BPP unreadable (%s)", err_str(e));
        goto doubt;
    }
    rn = 0;
    if (fpa_can_load_bpp(c->slot)) {
        /* an FPA that runs the ES10f sequence itself */
        e = fpa_load_bpp(c->slot, bpp, bpp_len, resp, sizeof resp, &rn);
        sw = SW_OK;
    } else {
        es10f_bpp_command *cmds = calloc(SESSION_MAX_BPP_COMMANDS, sizeof *cmds);
        size_t count = 0;
        if (!cmds || (e = es10f_bpp_split(bpp, bpp_len, cmds, SESSION_MAX_BPP_COMMANDS, &count)) != IFPP_OK) {
            free(cmds);
            err_why(r->message, sizeof r->message, "stored BPP malformed (%s)", err_str(e ? e : IFPP_E_NOMEM));
            e = e ? e : IFPP_E_NOMEM;
            goto doubt;
        }
        for (size_t i = 0; i < count; i++)
            if ((e = call(c, cmds[i].data, cmds[i].len, resp, &rn, &sw)) != IFPP_OK || sw != SW_OK || rn > 0)
                break;
        free(cmds);
    }
    if (e != IFPP_OK || sw != SW_OK || rn == 0) {
        err_why(r->message, sizeof r->message, "BPP load interrupted (%s): the eUICC will tell what happened",
                e ? err_str(e) : sw != SW_OK ? apdu_sw_str(sw) : "no PIR");
        e = e ? e : IFPP_E_IO;
        goto doubt;
    }

    step(c, SESSION_STEP_PIR, NULL);
    pir_info info;
    if ((e = session_check_pir(c, r->eid, resp, rn, &info)) != IFPP_OK || info.transaction_id_len != r->txid_len ||
        memcmp(info.transaction_id, r->txid, r->txid_len) != 0) {
        err_why(r->message, sizeof r->message, "the PIR does not verify for this BPP (%s)",
                err_str(e ? e : IFPP_E_SIGNATURE));
        e = e ? e : IFPP_E_SIGNATURE;
        goto doubt;
    }
    who.reason = info.success ? "PIR: installed" : pir_error_reason_str(info.error_reason);
    if ((e = store_record_pir(c->st, r->txid, r->txid_len, resp, rn, info.success, BPP_RESERVED, &who)) != IFPP_OK) {
        err_why(r->message, sizeof r->message, "could not record the PIR (%s)", err_str(e));
        goto out;
    }
    r->installed = info.success;
    r->final_state = info.success ? BPP_INSTALLED : BPP_FAILED;
    r->bpp_command = info.bpp_command_id;
    r->error_reason = info.error_reason;

    step(c, SESSION_STEP_ACK, NULL);
    session_ack(c, info.seq_number);
    if (info.success && c->delete_keys_when_done &&
        (e = session_delete_keys(c, r->eid, r->message, sizeof r->message)) != IFPP_OK)
        goto out;
    if (info.success)
        err_why(r->message, sizeof r->message, "profile installed on eUICC %s", eid_hex);
    else
        err_why(r->message, sizeof r->message, "the eUICC refused the BPP at %s: %s",
                pir_command_str(info.bpp_command_id), pir_error_reason_str(info.error_reason));
    step(c, SESSION_STEP_DONE, r->message);
    e = IFPP_OK;
    goto out;
doubt:
    session_add_transport_detail(c, e, r->message, sizeof r->message);
    session_doubt(c, r, &who);
    goto done;
out:
    if (e != IFPP_OK)
        session_add_transport_detail(c, e, r->message, sizeof r->message);
done:
    r->err = e;
    if (e != IFPP_OK || !r->installed) {
        r->failed_step = c->current;
        r->sw = sw;
        if (!r->installed && r->final_state == BPP_FAILED)
            r->card_result = r->error_reason;
    }
    session_close_channel(c);
    cert_free(pb);
    free(pb_der);
    free(bpp);
    return e;
}

ifpp_err session_recover(session_ctx *c, size_t *resolved, char *why, size_t why_len)
{
    uint8_t eid[16], txids[32][16], resp[SESSION_RESP];
    session_otks keys;
    size_t lens[32], n, rn;
    uint16_t sw;
    ifpp_err e;
    store_actor who = {.slot = c->slot_name, .reason = "recovery: the eUICC's evidence"};

    *resolved = 0;
    if ((e = session_open_card(c, eid, why, why_len)) != IFPP_OK) {
        session_add_transport_detail(c, e, why, why_len);
        return e;
    }
    if ((e = store_unresolved(c->st, eid, txids, lens, 32, &n)) != IFPP_OK) {
        session_close_channel(c);
        return e;
    }
    /* A process killed right after reserving never got to say in_doubt: say it now. */
    for (size_t i = 0; i < n; i++)
        (void)bpp_move(c->st, txids[i], lens[i], BPP_RESERVED, BPP_IN_DOUBT, &who);

    /* Evidence 1: a PIR the card kept. */
    tlv top, list, item;
    tlv_reader r0, r, lr;
    if (call(c, (const uint8_t *)"\xbf\x2b\x00", 3, resp, &rn, &sw) == IFPP_OK && sw == SW_OK &&
        tlv_parse_exact(resp, rn, TLV_DER, &top) == IFPP_OK) {
        tlv_reader_init(&r0, resp, rn, TLV_DER);
        if (tlv_reader_enter(&r0, &top, &r) == IFPP_OK && tlv_reader_expect(&r, 0xA0, &list) == IFPP_OK &&
            tlv_reader_enter(&r, &list, &lr) == IFPP_OK) {
            while (tlv_reader_next(&lr, &item) == IFPP_OK) {
                pir_info info;
                if (item.tag != 0xBF37 || session_check_pir(c, eid, item.raw, item.raw_len, &info) != IFPP_OK)
                    continue;
                for (size_t i = 0; i < n; i++) {
                    if (lens[i] != info.transaction_id_len || memcmp(txids[i], info.transaction_id, lens[i]) != 0)
                        continue;
                    who.reason = info.success ? "recovery: kept PIR, installed" : "recovery: kept PIR, refused";
                    if (store_record_pir(c->st, txids[i], lens[i], item.raw, item.raw_len, info.success, BPP_IN_DOUBT,
                                         &who) == IFPP_OK) {
                        (*resolved)++;
                        lens[i] = 0; /* done */
                    }
                }
                /* the card may forget a PIR only once the store durably holds it (recorded now or before) */
                if (session_store_holds_pir(c, info.transaction_id, info.transaction_id_len))
                    session_ack(c, info.seq_number);
            }
        }
    }
    /* Evidence 2: the One-time Key. Still there: nothing was installed, the BPP may go again. */
    if ((e = session_otk_info(c, &keys)) != IFPP_OK) {
        err_why(why, why_len, "recovery: cannot read the eUICC's One-time Keys (%s)", err_str(e));
        session_add_transport_detail(c, e, why, why_len);
        return e;
    }
    for (size_t i = 0; i < n; i++) {
        store_bpp b;
        if (lens[i] == 0 || store_get_bpp(c->st, txids[i], lens[i], &b) != IFPP_OK)
            continue;
        bool present = session_key_present(&keys, b.otpk);
        who.reason = present ? "recovery: One-time Key still on the eUICC, nothing installed"
                             : "recovery: One-time Key gone and no PIR kept";
        if (bpp_move(c->st, txids[i], lens[i], BPP_IN_DOUBT, present ? BPP_AVAILABLE : BPP_FAILED, &who) == IFPP_OK)
            (*resolved)++;
    }
    /* A session killed between DeleteOneTimeKeys and its bookkeeping: finish the bookkeeping. */
    *resolved += session_retire_keyless(c, eid, &keys, "recovery: One-time Key no longer on the eUICC");
    session_close_channel(c);
    return IFPP_OK;
}
