/*
 * session.c -- the provisioning session and its recovery; see session.h and docs/es10f.md.
 *
 * Every store move below is its own committed transaction, made before the next APDU: if the
 * process dies between any two lines, the store says reserved or in_doubt and the card holds
 * the evidence recovery needs.
 */
#include "session.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apdu.h"
#include "crypto.h"
#include "es10.h"
#include "hex.h"
#include "label.h"
#include "pir.h"

#define SESSION_RESP 16384 /* a PIR, or the list of kept notifications */
#define SESSION_MAX_UNRESOLVED 32

const char *session_step_name(session_step s)
{
    static const char *const names[SESSION_STEP__COUNT] = {
        "select ISD-R", "read EID", "reserve BPP", "authorise FPA services", "send SM-DPf certificate",
        "load BPP", "verify and record PIR", "acknowledge PIR", "connectivity test (EUICCF05)", "delete One-time Keys",
        "done",
    };
    return (unsigned)s < SESSION_STEP__COUNT ? names[s] : "unknown step";
}

static void step(session_ctx *c, session_step s, const char *detail)
{
    c->current = s;
    if (c->progress)
        c->progress(c->progress_arg, s, detail);
}

/* The ES10 link to the ISD-R on the session's channel, in blocks as large as the slot takes. */
static es10_chan session_chan(session_ctx *c)
{
    size_t block = fpa_max_command_data(c->slot);
    es10_chan k = {.tx = fpa_transmit, .ctx = c->slot, .channel = c->channel,
                   .block = block > ES10F_MAX_BLOCK ? ES10F_MAX_BLOCK : block < ES10F_BLOCK ? ES10F_BLOCK : block,
                   .result = ES10_NO_RESULT};
    return k;
}

/*
 * The card's own words for a failed ES10 call: its result code (named by `names`, if given), else
 * its status word, else the station's error. Every refusal message carries them (issue 8 item 6).
 */
static const char *session_card_words(const es10_chan *k, ifpp_err e, const char *(*names)(int), char *buf,
                                      size_t cap)
{
    if (k->result != ES10_NO_RESULT)
        snprintf(buf, cap, "the eUICC answered %s (result %d)", names ? names(k->result) : "an error", k->result);
    else if (e == IFPP_E_IO && k->sw && k->sw != SW_OK)
        snprintf(buf, cap, "the eUICC answered status word %04X (%s)", k->sw, apdu_sw_str(k->sw));
    else if (k->sw && k->sw != SW_OK)
        snprintf(buf, cap, "%s; last status word %04X", err_str(e), k->sw);
    else
        snprintf(buf, cap, "%s", err_str(e));
    return buf;
}

/* Copies a failed call's status word and result code into the session result. */
static void session_card_said(session_result *r, const es10_chan *k)
{
    r->sw = k->sw;
    r->card_result = k->result;
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
                     e == IFPP_E_TIMEOUT || e == IFPP_E_BUSY || e == IFPP_E_APDU_MALFORMED || e == IFPP_E_CARD_PROTOCOL;
    if (transport && detail[0] && used + 4 < cap)
        snprintf(msg + used, cap - used, " [%s]", detail);
}

/* Gives back a logical channel the session opened; the next reset would close it anyway. */
static void session_close_channel(session_ctx *c)
{
    fpa_close_channel(c->slot, c->channel);
    c->channel = 0;
}

/* Reset, SELECT the ISD-R (no FCI), GetEID, GetEUICCInfo2; k is the ES10 link afterwards. */
static ifpp_err session_open_card(session_ctx *c, es10_chan *k, uint8_t eid[16], char *why, size_t why_len)
{
    static const uint8_t isdr_default[16] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF,
                                             0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00};
    uint8_t atr[64];
    const uint8_t *isdr = c->isdr_aid ? c->isdr_aid : isdr_default;
    size_t isdr_len = c->isdr_aid ? c->isdr_aid_len : sizeof isdr_default;
    size_t atr_len;
    uint16_t sw = 0;
    char words[96];
    ifpp_err e;
    step(c, SESSION_STEP_SELECT, NULL);
    c->channel = 0;
    *k = session_chan(c);
    if ((e = fpa_reset(c->slot, atr, sizeof atr, &atr_len)) != IFPP_OK) {
        err_why(why, why_len, "slot %s: no eUICC answers the reset (%s)", c->slot_name, err_str(e));
        return e;
    }
    if (c->logical_channel) {
        /* the ISD-R on a channel of its own: MANAGE CHANNEL + SELECT, or the transport's own way */
        if ((e = fpa_open_channel(c->slot, isdr, isdr_len, &c->channel, &sw)) != IFPP_OK) {
            k->sw = sw;
            err_why(why, why_len, "slot %s: no logical channel with the ISD-R selected (%s)", c->slot_name,
                    session_card_words(k, e, NULL, words, sizeof words));
            c->channel = 0;
            return e;
        }
    } else if ((e = fpa_select(c->slot, 0, isdr, isdr_len, &sw)) != IFPP_OK) {
        k->sw = sw;
        err_why(why, why_len, "slot %s: SELECT of the ISD-R failed (%s)", c->slot_name,
                session_card_words(k, e, NULL, words, sizeof words));
        return e;
    }
    *k = session_chan(c);
    step(c, SESSION_STEP_EID, NULL);
    if ((e = es10_get_eid(k, eid)) != IFPP_OK) {
        err_why(why, why_len, "slot %s: GetEID failed (%s)", c->slot_name,
                session_card_words(k, e, NULL, words, sizeof words));
        return e;
    }
    /* EUICCInfo2: the card must answer it as an SGP.22 ISD-R does (its content came with the EUM's package) */
    if ((e = es10_get_euicc_info2(k)) != IFPP_OK) {
        err_why(why, why_len, "slot %s: GetEUICCInfo2 failed (%s)", c->slot_name,
                session_card_words(k, e, NULL, words, sizeof words));
        return e;
    }
    return IFPP_OK;
}

/* GetEuiccChallenge, then AuthoriseFpaServices signed with the DM's FPA key (EUICCF02). */
static ifpp_err session_authorise(session_ctx *c, es10_chan *k, const uint8_t eid[16], char *why, size_t why_len)
{
    uint8_t challenge[16];
    char words[96];
    ifpp_err e;
    step(c, SESSION_STEP_AUTHORISE, NULL);
    if ((e = es10_get_challenge(k, challenge)) != IFPP_OK) {
        err_why(why, why_len, "GetEuiccChallenge failed (%s)", session_card_words(k, e, NULL, words, sizeof words));
        return e;
    }
    if ((e = es10_authorise_fpa(k, challenge, eid, c->dm_fpa_key, c->dm_fpa_cert)) != IFPP_OK) {
        err_why(why, why_len, "FPA services not authorised (%s)",
                session_card_words(k, e, es10_authorise_result_str, words, sizeof words));
        return e;
    }
    return IFPP_OK;
}

/* fpa_bpp_job.sign: AuthoriseFpaServices for a hardware FPA's challenge; the DM's key never leaves the station. */
static ifpp_err session_sign_for_fpa(void *ctx, const uint8_t challenge[16], const uint8_t eid[16], uint8_t *out,
                                     size_t cap, size_t *n)
{
    const session_ctx *c = ctx;
    return es10_build_authorise(challenge, eid, c->dm_fpa_key, c->dm_fpa_cert, out, cap, n);
}

/* The public key of the eUICC certificate the EUM's package delivered for eid (DMF02): what signs PIRs and tests. */
static ifpp_err session_euicc_key(session_ctx *c, const uint8_t eid[16], crypto_key **key)
{
    uint8_t *der = NULL;
    size_t dn;
    ifpp_err e = store_euicc_cert(c->st, eid, &der, &dn);
    if (e == IFPP_OK) /* verified under the CI when the EUM's package was imported: its key is all that is needed */
        e = cert_der_public_key(der, dn, key);
    free(der);
    return e;
}

/*
 * The vault's CERT.DPpb, parsed once per slot thread (issue 16 item 4): every DUT of a vault is sent the same
 * certificate, and parsing one is about a third of a DUT's CPU (OpenSSL 3's key decoders). Keyed by the DER
 * bytes themselves, so another vault's certificate is parsed afresh; one per thread, so its reference count
 * is only ever touched by the thread that owns it; freed when the thread ends.
 */
typedef struct {
    uint8_t *der;
    size_t len;
    cert *c;
} session_cert_memo;

static pthread_key_t session_memo_key;
static pthread_once_t session_memo_once = PTHREAD_ONCE_INIT;
static bool session_memo_ok;

static void session_memo_free(void *p)
{
    session_cert_memo *m = p;
    if (!m)
        return;
    cert_free(m->c);
    free(m->der);
    free(m);
}

static void session_memo_init(void)
{
    session_memo_ok = pthread_key_create(&session_memo_key, session_memo_free) == 0;
}

/* cert_parse_der, or this thread's last parse of the same bytes; either way a reference the caller frees. */
static ifpp_err session_parse_vault_cert(const uint8_t *der, size_t n, cert **out)
{
    pthread_once(&session_memo_once, session_memo_init);
    session_cert_memo *m = session_memo_ok ? pthread_getspecific(session_memo_key) : NULL;
    if (m && m->len == n && memcmp(m->der, der, n) == 0) {
        *out = cert_ref(m->c);
        return IFPP_OK;
    }
    ifpp_err e = cert_parse_der(der, n, out);
    if (e != IFPP_OK || !session_memo_ok)
        return e;
    session_cert_memo *fresh = calloc(1, sizeof *fresh);
    if (fresh && (fresh->der = malloc(n)) != NULL) {
        memcpy(fresh->der, der, n);
        fresh->len = n;
        fresh->c = cert_ref(*out);
        if (pthread_setspecific(session_memo_key, fresh) == 0) {
            session_memo_free(m);
            return IFPP_OK;
        }
    }
    session_memo_free(fresh); /* the memo is only a shortcut: without it the next DUT parses again */
    return IFPP_OK;
}

/*
 * Checks a PIR for the BPP b: parsed strictly, signed by the eUICC certificate the EUM's package
 * delivered (DMF02), for b's transaction, and naming the ICCID of b's vault record (pir_match_vault).
 * why names what failed, both values where two disagree. vault_pb: b's CERT.DPpb if the caller parsed
 * it already (a session has, for PrepareBppLoad: parsing a certificate is most of a DUT's CPU), else NULL.
 */
static ifpp_err session_check_pir(session_ctx *c, const store_bpp *b, const cert *vault_pb, const uint8_t *pir,
                                  size_t n, pir_info *info, char *why, size_t why_len)
{
    uint8_t *pb_der = NULL;
    size_t pb_len;
    cert *pb = NULL;
    crypto_key *k = NULL;
    ifpp_err e = pir_parse(pir, n, info);
    if (e == IFPP_OK && (e = session_euicc_key(c, b->eid, &k)) == IFPP_OK)
        e = pir_verify(info, k);
    if (e != IFPP_OK)
        err_why(why, why_len, "the PIR does not verify for this BPP (%s)", err_str(e));
    else if (info->transaction_id_len != b->transaction_id_len ||
             memcmp(info->transaction_id, b->transaction_id, b->transaction_id_len) != 0) {
        err_why(why, why_len, "the PIR is for another transaction than this BPP's");
        e = IFPP_E_SIGNATURE;
    } else if (!vault_pb && ((e = store_vault_pb_cert(c->st, b->vault_id, &pb_der, &pb_len)) != IFPP_OK ||
                             (e = cert_parse_der(pb_der, pb_len, &pb)) != IFPP_OK)) {
        err_why(why, why_len, "the BPP's vault certificate is unreadable (%s)", err_str(e));
    } else {
        e = pir_match_vault(info, b->iccid, vault_pb ? vault_pb : pb, why, why_len);
    }
    crypto_key_free(k);
    cert_free(pb);
    free(pb_der);
    return e;
}

/* NotificationSent: the card may forget the PIR now that the store holds it (if this fails, it keeps it: harmless). */
static void session_ack(es10_chan *k, uint64_t seq)
{
    (void)es10_notification_sent(k, seq);
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

/* Tells whoever asked (ifppctl recover) what became of one BPP, and why. */
static void session_outcome(const session_ctx *c, const uint8_t *txid, size_t txid_len, bpp_state to, const char *why)
{
    if (c->outcome)
        c->outcome(c->outcome_arg, txid, txid_len, to, why);
}

/*
 * Available BPPs of this eUICC whose One-time Key is no longer on it can never be loaded: they
 * go to deleted (after DeleteOneTimeKeys, DMF03), so the report can say so and nothing waits
 * for them. The key list k is the card's own answer, parsed strictly.
 */
static size_t session_retire_keyless(session_ctx *c, const uint8_t eid[16], const es10_otks *k, const char *reason)
{
    uint8_t txids[64][16];
    size_t lens[64], n = 0, retired = 0;
    store_actor who = {.slot = c->slot_name, .reason = reason};
    if (store_available(c->st, eid, txids, lens, 64, &n) != IFPP_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        store_bpp b;
        if (store_get_bpp(c->st, txids[i], lens[i], &b) == IFPP_OK && !es10_otk_present(k, b.otpk) &&
            bpp_move(c->st, txids[i], lens[i], BPP_AVAILABLE, BPP_DELETED, &who) == IFPP_OK) {
            retired++;
            session_outcome(c, txids[i], lens[i], BPP_DELETED, reason);
        }
    }
    return retired;
}

/* EUICCF03/DMF03: delete every remaining One-time Key and confirm that none is left. */
static ifpp_err session_delete_keys(session_ctx *c, es10_chan *k, const uint8_t eid[16], session_result *r)
{
    es10_otks *left = calloc(1, sizeof *left);
    uint8_t deleted = 0;
    char words[96];
    step(c, SESSION_STEP_DELETE_KEYS, NULL);
    if (!left)
        return IFPP_E_NOMEM;
    left->count = 0xFF;
    ifpp_err e = es10_delete_otks(k, &deleted);
    if (e == IFPP_OK)
        e = es10_get_otk_info(k, left);
    if (e == IFPP_OK && left->count != 0)
        e = IFPP_E_RANGE;
    if (e == IFPP_OK)
        session_retire_keyless(c, eid, left, "One-time Keys deleted at the end of production (DMF03)");
    if (e != IFPP_OK) {
        session_card_said(r, k);
        err_why(r->message, sizeof r->message, "One-time Keys not all deleted (%s; %s)",
                session_card_words(k, e, NULL, words, sizeof words),
                left->count == 0xFF ? "count unknown" : e == IFPP_E_RANGE ? "some left" : "none left");
    }
    free(left);
    return e;
}

/*
 * Resolves this eUICC's reserved/in_doubt BPPs from the card's own evidence (one function for
 * recovery and for the start of a session, issue 8 item 5): a kept PIR that verifies says installed
 * or failed; else the One-time Key still on the card says nothing was installed (available again);
 * the key gone with no kept PIR says failed -- but only if the card's notification list was read,
 * for otherwise a kept success PIR might be missed and the BPP stays in_doubt. With `always`, also
 * acknowledges PIRs the store holds and retires keyless BPPs when nothing is unresolved.
 * *resolved counts the BPPs moved, *left those still unresolved.
 */
static ifpp_err session_resolve(session_ctx *c, es10_chan *k, const uint8_t eid[16], bool always, size_t *resolved,
                                size_t *left, char *why, size_t why_len)
{
    uint8_t txids[SESSION_MAX_UNRESOLVED][16];
    size_t lens[SESSION_MAX_UNRESOLVED], n = 0, kept = 0;
    tlv pirs[ES10_MAX_NOTIFICATIONS];
    uint8_t *list = NULL;
    es10_otks *keys = NULL;
    char words[96], pir_why[200];
    bool list_read = false;
    store_actor who = {.slot = c->slot_name, .reason = "recovery: the eUICC's evidence"};
    ifpp_err e;

    *resolved = *left = 0;
    if ((e = store_unresolved(c->st, eid, txids, lens, SESSION_MAX_UNRESOLVED, &n)) != IFPP_OK) {
        err_why(why, why_len, "store: cannot list this eUICC's unresolved BPPs (%s)", err_str(e));
        return e;
    }
    if (n == 0 && !always)
        return IFPP_OK;
    /* A process killed right after reserving never got to say in_doubt: say it now. */
    for (size_t i = 0; i < n; i++)
        (void)bpp_move(c->st, txids[i], lens[i], BPP_RESERVED, BPP_IN_DOUBT, &who);

    /* Evidence 1: a PIR the card kept. */
    if (!(list = malloc(SESSION_RESP)) || !(keys = calloc(1, sizeof *keys))) {
        free(list);
        err_why(why, why_len, "recovery: out of memory");
        return IFPP_E_NOMEM;
    }
    if (es10_retrieve_notifications(k, list, SESSION_RESP, pirs, ES10_MAX_NOTIFICATIONS, &kept) == IFPP_OK)
        list_read = true;
    for (size_t p = 0; p < kept; p++) {
        pir_info info;
        store_bpp b;
        if (pir_parse(pirs[p].raw, pirs[p].raw_len, &info) != IFPP_OK)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (lens[i] != info.transaction_id_len || memcmp(txids[i], info.transaction_id, lens[i]) != 0 ||
                store_get_bpp(c->st, txids[i], lens[i], &b) != IFPP_OK ||
                session_check_pir(c, &b, NULL, pirs[p].raw, pirs[p].raw_len, &info, pir_why, sizeof pir_why) != IFPP_OK)
                continue;
            who.reason = info.success ? "recovery: kept PIR, installed" : "recovery: kept PIR, refused";
            if (store_record_pir(c->st, txids[i], lens[i], pirs[p].raw, pirs[p].raw_len, info.success, BPP_IN_DOUBT,
                                 &who) == IFPP_OK) {
                (*resolved)++;
                session_outcome(c, txids[i], lens[i], info.success ? BPP_INSTALLED : BPP_FAILED, who.reason);
                lens[i] = 0; /* done */
            }
        }
        /* the card may forget a PIR only once the store durably holds it (recorded now or before) */
        if (session_store_holds_pir(c, info.transaction_id, info.transaction_id_len))
            session_ack(k, info.seq_number);
    }
    /* Evidence 2: the One-time Key. Still there: nothing was installed, the BPP may go again. */
    if ((e = es10_get_otk_info(k, keys)) != IFPP_OK) {
        err_why(why, why_len, "recovery: cannot read the eUICC's One-time Keys (%s)",
                session_card_words(k, e, NULL, words, sizeof words));
        for (size_t i = 0; i < n; i++)
            if (lens[i])
                session_outcome(c, txids[i], lens[i], BPP_IN_DOUBT, why);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        store_bpp b;
        if (lens[i] == 0)
            continue;
        if (store_get_bpp(c->st, txids[i], lens[i], &b) != IFPP_OK) {
            session_outcome(c, txids[i], lens[i], BPP_IN_DOUBT, store_errmsg(c->st));
            continue;
        }
        bool present = es10_otk_present(keys, b.otpk);
        if (!present && !list_read) { /* a kept PIR may exist that could not be read: no decision */
            session_outcome(c, txids[i], lens[i], BPP_IN_DOUBT,
                            "One-time Key gone but the card's kept PIRs could not be read: a success PIR may be there");
            continue;
        }
        who.reason = present ? "recovery: One-time Key still on the eUICC, nothing installed"
                             : "recovery: One-time Key gone and no PIR kept";
        bpp_state to = present ? BPP_AVAILABLE : BPP_FAILED;
        if (bpp_move(c->st, txids[i], lens[i], BPP_IN_DOUBT, to, &who) == IFPP_OK) {
            (*resolved)++;
            session_outcome(c, txids[i], lens[i], to, who.reason);
        } else {
            session_outcome(c, txids[i], lens[i], BPP_IN_DOUBT, store_errmsg(c->st));
        }
    }
    /* A session killed between DeleteOneTimeKeys and its bookkeeping: finish the bookkeeping. */
    *resolved += session_retire_keyless(c, eid, keys, "recovery: One-time Key no longer on the eUICC");
out:
    if (e == IFPP_OK && (e = store_unresolved(c->st, eid, txids, lens, SESSION_MAX_UNRESOLVED, left)) != IFPP_OK)
        err_why(why, why_len, "store: cannot list this eUICC's unresolved BPPs (%s)", err_str(e));
    free(list);
    free(keys);
    return e;
}

/* Anything short of a verified PIR: the BPP waits in_doubt for the card's evidence, and the operator is told how. */
static void session_doubt(session_ctx *c, session_result *r, const store_actor *who)
{
    store_actor w = *who;
    size_t used = strlen(r->message);
    w.reason = r->message;
    if (r->final_state == BPP_IN_DOUBT ||
        bpp_move(c->st, r->txid, r->txid_len, BPP_RESERVED, BPP_IN_DOUBT, &w) == IFPP_OK)
        r->final_state = BPP_IN_DOUBT;
    if (used + 8 < sizeof r->message)
        snprintf(r->message + used, sizeof r->message - used, "; BPP in doubt: run `ifppctl recover --slot %s`",
                 c->slot_name);
}

/*
 * A definite refusal before any BPP byte left the station (issue 9 item 6): the BPP goes back to
 * available, with the card's words as the reason. The store's state machine leads back only
 * through in_doubt (reserved -> in_doubt -> available), each a committed transaction: a crash
 * between the two leaves in_doubt, which recovery resolves to available from the One-time Key.
 */
static void session_release(session_ctx *c, session_result *r, const store_actor *who)
{
    store_actor w = *who;
    w.reason = r->message;
    if (bpp_move(c->st, r->txid, r->txid_len, BPP_RESERVED, BPP_IN_DOUBT, &w) == IFPP_OK) {
        r->final_state = BPP_IN_DOUBT;
        if (bpp_move(c->st, r->txid, r->txid_len, BPP_IN_DOUBT, BPP_AVAILABLE, &w) == IFPP_OK) {
            r->final_state = BPP_AVAILABLE;
            return;
        }
    }
    session_doubt(c, r, who);
}

/* True if a failed call ended with the card's explicit no: a parsed result code or an error status word. */
static bool session_definite_refusal(const es10_chan *k, ifpp_err e)
{
    return k->result != ES10_NO_RESULT || (e == IFPP_E_IO && k->sw != 0 && k->sw != SW_OK);
}

/* Entry checks (issue 9 item 5): refused before anything touches the card or the store. */
static ifpp_err session_check_inputs(const char *dut_serial, const char *profile_type, session_result *r)
{
    if (!dut_serial_valid(dut_serial)) {
        err_why(r->message, sizeof r->message,
                "DUT serial refused: %s (the rule: 1..%d printable ASCII characters, no space or control character)",
                !dut_serial ? "none given" : !dut_serial[0] ? "empty" : strlen(dut_serial) > DUT_SERIAL_MAX ? "too long"
                                                                                                  : "a character outside the rule",
                DUT_SERIAL_MAX);
        return IFPP_E_ARG;
    }
    if (profile_type && !label_valid(profile_type, strlen(profile_type))) {
        err_why(r->message, sizeof r->message, "profile type refused: not a plain name (label rule of label.h)");
        return IFPP_E_ARG;
    }
    return IFPP_OK;
}

/*
 * The DUT's history decides whether it may get a BPP now: an unresolved one is resolved from the
 * card first (issue 8 item 5), and refuses the session if it stays so; an installed profile
 * refuses a further one unless it was asked for (issue 9 item 9, use case A.3).
 */
static ifpp_err session_may_provision(session_ctx *c, es10_chan *k, const char *eid_hex, session_result *r)
{
    size_t resolved, left, counts[BPP_STATE__COUNT];
    char why[200] = "";
    ifpp_err e = session_resolve(c, k, r->eid, false, &resolved, &left, why, sizeof why);
    if (e != IFPP_OK || left > 0) {
        session_card_said(r, k);
        err_why(r->message, sizeof r->message,
                "eUICC %s holds %s BPP the card's evidence does not resolve%s%s: no further BPP until "
                "`ifppctl recover --slot %s` resolves it",
                eid_hex, left > 0 ? "an in-doubt" : "an unresolved", why[0] ? ": " : "", why, c->slot_name);
        return e != IFPP_OK ? e : IFPP_E_RANGE;
    }
    if ((e = store_eid_counts(c->st, r->eid, counts)) != IFPP_OK) {
        err_why(r->message, sizeof r->message, "store: cannot read eUICC %s's history (%s)", eid_hex, err_str(e));
        return e;
    }
    if (counts[BPP_INSTALLED] > 0 && !c->additional_profile) {
        err_why(r->message, sizeof r->message,
                "this DUT already has a profile (eUICC %s, %zu installed%s): a further one must be asked for "
                "explicitly (use case A.3)",
                eid_hex, counts[BPP_INSTALLED], resolved ? ", resolved from the card's evidence just now" : "");
        return IFPP_E_RANGE;
    }
    return IFPP_OK;
}

/* Reserves this eUICC's next BPP, telling "none" from a busy or failing store (issue 9 item 7). */
static ifpp_err session_reserve(session_ctx *c, const char *eid_hex, const char *profile_type, const store_actor *who,
                                store_bpp *b, session_result *r)
{
    ifpp_err e = bpp_reserve(c->st, r->eid, profile_type, who, b);
    if (e == IFPP_E_NOT_FOUND)
        err_why(r->message, sizeof r->message, "no available BPP for eUICC %s%s%s", eid_hex,
                profile_type ? " and profile type " : "", profile_type ? profile_type : "");
    else if (e == IFPP_E_BUSY)
        err_why(r->message, sizeof r->message, "store busy: no BPP reserved for eUICC %s (%s); scan again", eid_hex,
                store_errmsg(c->st));
    else if (e != IFPP_OK)
        err_why(r->message, sizeof r->message, "store: reserving a BPP for eUICC %s failed (%s: %s)", eid_hex,
                err_str(e), store_errmsg(c->st));
    return e;
}

const char *session_conn_mode_name(session_conn_mode m)
{
    return m == SESSION_CONN_REQUIRED ? "required" : m == SESSION_CONN_IF_OFFERED ? "if-offered" : "off";
}

const char *session_conn_outcome_name(session_conn_outcome o)
{
    static const char *const names[] = {"not run", "skipped", "passed", "failed", "refused"};
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "?";
}

/*
 * EUICCF05: the connectivity test of the profile just installed, as an optional step. Where: after
 * the PIR is recorded and acknowledged, so nothing the test does or answers can change the PIR's
 * truth or the BPP's state; and before DeleteOneTimeKeys, because the means is the Device
 * Manufacturer's under FPA authorisation, which ends with the last One-time Key (EUICCF04), after
 * which only the LPA/IPA may enable a profile (GENF03). The eUICC's answer is checked (signature by
 * the eUICC certificate, EID, ICCID, the station's fresh nonce, the profile disabled again) before
 * it counts, and every outcome -- skipped, passed, failed, refused -- is recorded and audited with the
 * signed answer as evidence. Nothing here fails the session: station_verdict_of decides from r.
 */
static void session_conn_test(session_ctx *c, es10_chan *k, const store_bpp *b, const store_actor *who,
                              session_result *r)
{
    unsigned caps = 0;
    bool known = false;
    uint8_t nonce[16];
    bool nonce_sent = false;
    char words[96], why[160] = "";
    crypto_key *key = NULL;
    es10_conn_result *res = calloc(1, sizeof *res);
    store_conn_outcome so = STORE_CONN_REFUSED;
    if (c->conn_test == SESSION_CONN_OFF)
        goto out;
    step(c, SESSION_STEP_CONN_TEST, NULL);
    ifpp_err e = res ? es10_get_ifpp_capabilities(k, &caps, &known) : IFPP_E_NOMEM;
    if (e != IFPP_OK) {
        r->conn = SESSION_CONN_REFUSED;
        err_why(r->conn_detail, sizeof r->conn_detail, "GetIfppCapabilities failed (%s)",
                session_card_words(k, e, NULL, words, sizeof words));
    } else if (!(caps & ES10_CAP_CONNECTIVITY_TEST)) {
        r->conn = SESSION_CONN_SKIPPED;
        so = STORE_CONN_SKIPPED;
        err_why(r->conn_detail, sizeof r->conn_detail, "not offered by the eUICC (%s)",
                known ? "GetIfppCapabilities: no connectivityTest bit" : "no GetIfppCapabilities: status word 6A88");
    } else if ((e = crypto_random(nonce, sizeof nonce)) != IFPP_OK || (e = session_euicc_key(c, b->eid, &key)) != IFPP_OK) {
        r->conn = SESSION_CONN_REFUSED;
        err_why(r->conn_detail, sizeof r->conn_detail, "not run: the station has no nonce or no eUICC key (%s)",
                err_str(e));
    } else {
        nonce_sent = true;
        e = es10_conn_test(k, b->iccid, nonce, c->conn_time_limit ? c->conn_time_limit : 60, key, b->eid, res, why,
                           sizeof why);
        if (e != IFPP_OK) {
            r->conn = SESSION_CONN_REFUSED;
            err_why(r->conn_detail, sizeof r->conn_detail, "answer refused: %s", why);
        } else if (res->result == ES10_CONN_OK) {
            r->conn = SESSION_CONN_PASSED;
            so = STORE_CONN_PASSED;
            r->conn_result = res->result;
            if (res->has_network) /* PLMN as TS 24.008 codes it: MCC digits 1,2 / 3 and MNC 3 / MNC 1,2 */
                err_why(r->conn_detail, sizeof r->conn_detail, "ok: attached to PLMN %X%X%X-%X%X%.0X, signed by the eUICC",
                        res->network[0] & 0xF, res->network[0] >> 4, res->network[1] & 0xF, res->network[2] & 0xF,
                        res->network[2] >> 4, (res->network[1] >> 4) == 0xF ? 0 : res->network[1] >> 4);
            else
                err_why(r->conn_detail, sizeof r->conn_detail, "ok, signed by the eUICC");
        } else {
            r->conn = SESSION_CONN_FAILED;
            so = STORE_CONN_FAILED;
            r->conn_result = res->result;
            err_why(r->conn_detail, sizeof r->conn_detail, "the eUICC signed %s (result %d)",
                    es10_conn_result_str(res->result), res->result);
        }
    }
    store_conn_test t = {.txid = b->transaction_id, .txid_len = b->transaction_id_len, .eid = b->eid,
                         .iccid = b->iccid, .required = c->conn_test == SESSION_CONN_REQUIRED, .outcome = so,
                         .result = so == STORE_CONN_PASSED || so == STORE_CONN_FAILED ? res->result : -1,
                         .detail = r->conn_detail, .nonce = nonce_sent ? nonce : NULL,
                         .evidence = so == STORE_CONN_PASSED || so == STORE_CONN_FAILED ? res->evidence : NULL,
                         .evidence_len = res ? res->evidence_len : 0, .who = who};
    if (store_record_conn_test(c->st, &t) == IFPP_OK) {
        r->conn_recorded = true;
    } else {
        size_t used = strlen(r->conn_detail);
        snprintf(r->conn_detail + used, sizeof r->conn_detail - used, " (not recorded: %s)", store_errmsg(c->st));
    }
out:
    crypto_key_free(key);
    free(res);
}

/* The session's closing words for an installed profile: what the connectivity test did, and whether it was required. */
static void session_conn_words(session_result *r, const char *eid_hex)
{
    if (r->conn == SESSION_CONN_NOT_RUN)
        return;
    bool bad = r->conn_mode == SESSION_CONN_REQUIRED && (r->conn != SESSION_CONN_PASSED || !r->conn_recorded);
    if (bad) {
        r->failed_step = SESSION_STEP_CONN_TEST;
        err_why(r->message, sizeof r->message, "profile installed on eUICC %s, but the required connectivity test "
                "(conn-test=required, EUICCF05) %s: %s", eid_hex, r->conn == SESSION_CONN_SKIPPED ? "is not offered" :
                r->conn == SESSION_CONN_PASSED ? "was not recorded" : "did not pass", r->conn_detail);
    } else {
        size_t used = strlen(r->message);
        snprintf(r->message + used, sizeof r->message - used, "; connectivity test (EUICCF05) %s: %s",
                 session_conn_outcome_name(r->conn), r->conn_detail);
    }
}

ifpp_err session_provision(session_ctx *c, const char *dut_serial, const char *profile_type, session_result *r)
{
    uint8_t *resp = NULL, *bpp = NULL, *pb_der = NULL, *chain = NULL;
    size_t rn = 0, pb_len, bpp_len;
    char session_id[40], eid_hex[33], words[96];
    uint8_t rnd[8];
    store_bpp b;
    cert *pb = NULL, *subs[STORE_MAX_SUB_CAS] = {NULL};
    store_der sub_der[STORE_MAX_SUB_CAS];
    size_t n_sub = 0;
    es10_chan k = {.result = ES10_NO_RESULT};
    bool sent = false;
    pir_info info;
    ifpp_err e;

    memset(r, 0, sizeof *r);
    r->final_state = BPP_STATE__COUNT;
    r->failed_step = SESSION_STEP__COUNT;
    r->card_result = ES10_NO_RESULT;
    r->conn_result = -1;
    r->conn_mode = c->conn_test;
    c->current = SESSION_STEP_SELECT;
    if ((e = session_check_inputs(dut_serial, profile_type, r)) != IFPP_OK)
        goto done;
    if ((e = crypto_random(rnd, sizeof rnd)) != IFPP_OK) {
        err_why(r->message, sizeof r->message, "no session id: the random generator failed (%s)", err_str(e));
        goto done;
    }
    hex_encode(rnd, sizeof rnd, session_id, sizeof session_id);
    store_actor who = {.session = session_id, .slot = c->slot_name, .dut_serial = dut_serial, .reason = "provision"};
    if (!(resp = malloc(SESSION_RESP))) {
        e = IFPP_E_NOMEM;
        err_why(r->message, sizeof r->message, "out of memory");
        goto done;
    }
    if ((e = session_open_card(c, &k, r->eid, r->message, sizeof r->message)) != IFPP_OK) {
        session_card_said(r, &k);
        goto out;
    }
    hex_encode(r->eid, 16, eid_hex, sizeof eid_hex);
    if ((e = session_may_provision(c, &k, eid_hex, r)) != IFPP_OK)
        goto out;

    /*
     * Authorised before a BPP is reserved: a refused authorisation never touches one (issue 9 item 6).
     * An FPA that sequences ES10f itself authorises within its operation, asking us to sign.
     */
    bool whole = fpa_can_load_bpp(c->slot);
    if (!whole && (e = session_authorise(c, &k, r->eid, r->message, sizeof r->message)) != IFPP_OK) {
        session_card_said(r, &k);
        goto out;
    }
    step(c, SESSION_STEP_RESERVE, eid_hex);
    if ((e = session_reserve(c, eid_hex, profile_type, &who, &b, r)) != IFPP_OK)
        goto out;
    memcpy(r->txid, b.transaction_id, b.transaction_id_len);
    r->txid_len = b.transaction_id_len;
    r->final_state = BPP_RESERVED;

    step(c, SESSION_STEP_PREPARE, NULL);
    /* CERT.DPpb and the SM-DP sub-CAs up to the CI, as SGP.22 PrepareDownload sends them (issuer first) */
    if ((e = store_vault_pb_cert(c->st, b.vault_id, &pb_der, &pb_len)) != IFPP_OK ||
        (e = session_parse_vault_cert(pb_der, pb_len, &pb)) != IFPP_OK ||
        (e = store_vault_sub_cas(c->st, b.vault_id, sub_der, STORE_MAX_SUB_CAS, &n_sub)) != IFPP_OK) {
        err_why(r->message, sizeof r->message, "the BPP's SM-DPf certificate is unreadable in the store (%s)",
                err_str(e));
        session_release(c, r, &who); /* nothing went to the card */
        goto done;
    }
    for (size_t i = 0; i < n_sub && e == IFPP_OK; i++)
        if ((e = cert_parse_der(sub_der[i].der, sub_der[i].len, &subs[i])) != IFPP_OK) {
            err_why(r->message, sizeof r->message, "the BPP's SM-DP sub-CA certificate %zu is unreadable in the store (%s)",
                    i + 1, err_str(e));
            session_release(c, r, &who);
            goto done;
        }
    if (!whole &&
        (e = es10_prepare_bpp_load(&k, b.transaction_id, b.transaction_id_len, b.otpk, pb, (const cert *const *)subs,
                                   n_sub)) != IFPP_OK) {
        session_card_said(r, &k);
        err_why(r->message, sizeof r->message, "the eUICC refused the SM-DPf certificate or key (%s)",
                session_card_words(&k, e, es10_prepare_result_str, words, sizeof words));
        if (session_definite_refusal(&k, e)) {
            session_release(c, r, &who);
            goto done;
        }
        goto doubt;
    }

    /* The BPP, command by command, never opened (GENS09/GENS10). */
    step(c, SESSION_STEP_LOAD, NULL);
    if ((e = store_bpp_blob(c->st, b.transaction_id, b.transaction_id_len, &bpp, &bpp_len)) != IFPP_OK) {
        err_why(r->message, sizeof r->message, "stored BPP unreadable (%s): %s", err_str(e), store_errmsg(c->st));
        session_release(c, r, &who);
        goto done;
    }
    if (whole) {
        /* an FPA that runs the ES10f sequence itself (SGP.41 §3.2.3); its PIR is checked below like any */
        /* the chain as fpa_bpp_job says: CERT.DPpb, then its sub-CAs issuer first (as PrepareBppLoad sends them) */
        size_t chain_len = pb_len;
        for (size_t i = 0; i < n_sub; i++)
            chain_len += sub_der[i].len;
        if (!(chain = malloc(chain_len))) {
            e = IFPP_E_NOMEM;
            err_why(r->message, sizeof r->message, "out of memory");
            session_release(c, r, &who);
            goto done;
        }
        memcpy(chain, pb_der, pb_len);
        for (size_t i = 0, at = pb_len; i < n_sub; at += sub_der[i].len, i++)
            memcpy(chain + at, sub_der[i].der, sub_der[i].len);
        fpa_bpp_job job = {.chain = chain, .chain_len = chain_len, .txid = b.transaction_id,
                           .txid_len = b.transaction_id_len, .otpk = b.otpk, .bpp = bpp, .bpp_len = bpp_len,
                           .sign = session_sign_for_fpa, .sign_ctx = c};
        e = fpa_load_bpp(c->slot, &job, resp, SESSION_RESP, &rn);
        if (e != IFPP_OK && job.not_sent) {
            err_why(r->message, sizeof r->message, "the FPA's eUICC refused the BPP before any of it was sent (%s%s%s)",
                    err_str(e), fpa_last_error(c->slot)[0] ? ": " : "", fpa_last_error(c->slot));
            session_release(c, r, &who);
            goto done;
        }
        sent = true;
    } else {
        e = es10_load_bpp(&k, bpp, bpp_len, resp, SESSION_RESP, &rn, &sent);
    }
    if (e != IFPP_OK || rn == 0) {
        session_card_said(r, &k);
        if (!sent) {
            err_why(r->message, sizeof r->message, "stored BPP malformed (%s)", err_str(e));
            session_release(c, r, &who);
            goto done;
        }
        err_why(r->message, sizeof r->message, "BPP load interrupted (%s): the eUICC will tell what happened",
                e ? session_card_words(&k, e, NULL, words, sizeof words) : "no PIR");
        e = e ? e : IFPP_E_IO;
        goto doubt;
    }

    step(c, SESSION_STEP_PIR, NULL);
    if ((e = session_check_pir(c, &b, pb, resp, rn, &info, r->message, sizeof r->message)) != IFPP_OK)
        goto doubt; /* the card did something: only its evidence may say what */
    who.reason = info.success ? "PIR: installed" : pir_error_reason_str(info.error_reason);
    if ((e = store_record_pir(c->st, r->txid, r->txid_len, resp, rn, info.success, BPP_RESERVED, &who)) != IFPP_OK) {
        err_why(r->message, sizeof r->message, "could not record the PIR (%s)", err_str(e));
        goto doubt;
    }
    r->installed = info.success;
    r->final_state = info.success ? BPP_INSTALLED : BPP_FAILED;
    r->bpp_command = info.bpp_command_id;
    r->error_reason = info.error_reason;

    step(c, SESSION_STEP_ACK, NULL);
    session_ack(&k, info.seq_number);
    if (info.success)
        session_conn_test(c, &k, &b, &who, r);
    if (info.success && c->delete_keys_when_done && (e = session_delete_keys(c, &k, r->eid, r)) != IFPP_OK)
        goto out;
    if (info.success) {
        err_why(r->message, sizeof r->message, "profile installed on eUICC %s", eid_hex);
        session_conn_words(r, eid_hex);
    } else
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
        if (!r->installed && r->final_state == BPP_FAILED)
            r->card_result = r->error_reason;
    }
    session_close_channel(c);
    cert_free(pb);
    for (size_t i = 0; i < n_sub; i++)
        cert_free(subs[i]);
    store_der_free(sub_der, n_sub);
    free(pb_der);
    free(chain);
    free(bpp);
    free(resp);
    return e;
}

ifpp_err session_recover(session_ctx *c, size_t *resolved, char *why, size_t why_len)
{
    uint8_t eid[16];
    size_t left;
    es10_chan k;
    ifpp_err e;

    *resolved = 0;
    if ((e = session_open_card(c, &k, eid, why, why_len)) != IFPP_OK) {
        session_add_transport_detail(c, e, why, why_len);
        return e;
    }
    if ((e = session_resolve(c, &k, eid, true, resolved, &left, why, why_len)) != IFPP_OK)
        session_add_transport_detail(c, e, why, why_len);
    session_close_channel(c);
    return e;
}

ifpp_err session_open(session_ctx *c, es10_chan *k, uint8_t eid[16], char *why, size_t why_len)
{
    ifpp_err e = session_open_card(c, k, eid, why, why_len);
    if (e != IFPP_OK)
        session_add_transport_detail(c, e, why, why_len);
    return e;
}

void session_close_card(session_ctx *c)
{
    session_close_channel(c);
}
