/*
 * euicc_sim.c -- the software eUICC; the contract is in euicc_sim.h, the protocol in
 * docs/es10f.md.
 *
 * Layout of this file, top to bottom:
 *   1. persistent state: what the card's NVM holds, and its DER encoding in the state file;
 *   2. notifications: PIRs and deletion notifications, signed and kept until acknowledged;
 *   3. the BPP session: BF71, then the SGP.22 LoadBoundProfilePackage commands one by one;
 *   4. the other ES10/ES10f functions;
 *   5. the APDU layer: SELECT, MANAGE CHANNEL, STORE DATA chaining, GET RESPONSE, faults.
 *
 * Exactly-once on the card side: every change to persistent state is one call to
 * sim_commit(), which rewrites the whole state file atomically. The One-time Key is
 * deleted in the same commit that installs the profile and keeps its success PIR: a key
 * is either still there (nothing was installed, the BPP may be loaded again) or gone with
 * a profile and a signed PIR to show for it (GENS08). A refused or interrupted load
 * consumes nothing.
 */
#include "euicc_sim.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apdu.h"
#include "bsp.h"
#include "cert.h"
#include "fsutil.h"
#include "iccid.h"
#include "tlv.h"

#define SIM_STATE_VERSION 1
#define SIM_MAX_OTKS 64
#define SIM_MAX_PROFILES 16
#define SIM_MAX_NOTIFS 64
#define SIM_MAX_STATE (1u << 20)
#define SIM_MAX_COMMAND (64u * 1024)  /* one assembled ES10 command */
#define SIM_MAX_RESPONSE (32u * 1024)
#define SIM_MAX_METADATA 2048
#define SIM_MAX_PROFILE (1u << 20) /* one decrypted Interoperable Profile */

static const uint8_t ISDR_AID[16] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF,
                                     0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x01, 0x00};

/* SGP.22 BppCommandId and ErrorReason values used in error PIRs. */
enum { CMD_INIT_SC = 0, CMD_CONFIGURE_ISDP = 1, CMD_STORE_METADATA = 2, CMD_REPLACE_KEYS = 4, CMD_LOAD_PE = 5 };
enum {
    REASON_INCORRECT_INPUT = 1, REASON_INVALID_SIGNATURE = 2, REASON_INVALID_TXID = 3,
    REASON_UNSUPPORTED_CRT = 4, REASON_UNSUPPORTED_REMOTE_OP = 5, REASON_STRUCTURE = 7, REASON_SECURITY = 8,
    REASON_ICCID_EXISTS = 9, REASON_NO_MEMORY = 10, REASON_INTERRUPTED = 11, REASON_PE_PROCESSING = 12,
    REASON_ICCID_MISMATCH = 13, REASON_UNKNOWN = 127,
};

typedef struct {
    uint8_t iccid[10];
    uint8_t aid[16];
    char spn[33];
    char name[65];
    uint8_t pclass;
    uint8_t content_hash[32];
    uint32_t content_len;
} sim_profile;

typedef struct {
    uint32_t seq;
    uint8_t *der; /* BF37 PIR, or an OtherSignedNotification SEQUENCE */
    size_t len;
} sim_notif;

enum bpp_stage {
    BPP_NONE = 0,   /* nothing prepared */
    BPP_PREPARED,   /* BF71 accepted: chain checked, One-time Key found */
    BPP_SC_OPEN,    /* BF23 accepted: keys derived, One-time Key consumed; A0 expected */
    BPP_ISDP_DONE,  /* A0 done; A1 header expected */
    BPP_IN_88,      /* inside A1: 88 segments expected */
    BPP_METADATA_DONE, /* A1 done; A2 or A3 header expected */
    BPP_IN_86,      /* inside A3: 86 segments expected */
};

typedef struct {
    enum bpp_stage stage;
    size_t otk_index;
    crypto_key *dp_key;
    uint8_t txid[16];
    size_t txid_len;
    uint8_t euicc_otpk[CRYPTO_EC_PUB_LEN];
    bsp_ctx bsp;
    size_t remaining; /* bytes of 88s or 86s still to come */
    uint8_t metadata[SIM_MAX_METADATA];
    size_t metadata_len;
    sim_profile profile;
    crypto_sha256_ctx content;
    bool content_open;
    uint8_t *pe_buf;      /* the decrypted profile, parsed once complete (SAIP) */
    size_t pe_len;
    uint8_t smdp_oid[64]; /* CERT.DPpb's registeredID: the PIR's smdpOid (SGP.22) */
    size_t smdp_oid_len;
} bpp_session;

struct euicc_sim {
    char *path;
    /* persistent */
    uint8_t eid[16];
    crypto_key *euicc_key;
    uint8_t *euicc_cert, *eum_cert, *ci_cert, *dm_root_cert;
    size_t euicc_cert_len, eum_cert_len, ci_cert_len, dm_root_cert_len;
    crypto_key *otks[SIM_MAX_OTKS];
    size_t n_otks;
    sim_profile profiles[SIM_MAX_PROFILES];
    size_t n_profiles;
    sim_notif notifs[SIM_MAX_NOTIFS];
    size_t n_notifs;
    uint32_t next_seq;
    /* volatile */
    bool powered, t0, torn;
    uint32_t channels_open;
    uint32_t isdr_selected;
    bool fpa_authorised;
    uint8_t challenge[16];
    bool challenge_valid;
    uint8_t fixed_challenge[16]; /* test hook: GetEuiccChallenge answers this, so a recording replays */
    bool challenge_fixed;
    uint8_t *sd_buf;
    size_t sd_len;
    int sd_next_block; /* -1: no sequence under way */
    unsigned sd_channel;
    uint8_t pending[SIM_MAX_RESPONSE];
    uint8_t work[SIM_MAX_RESPONSE];
    size_t pending_len, pending_off;
    bpp_session bpp;
    unsigned apdu_count;
    euicc_sim_faults faults;
    euicc_sim_conn_mode conn_mode; /* EUICCF05 behaviour (section 6) */
    unsigned conn_tests;
};

/* ===================================================================================== */
/* 1. Persistent state                                                                    */
/* ===================================================================================== */

/* The private scalar, for the card's own NVM only: nothing outside this file sees it. */
static ifpp_err sim_export_scalar(const crypto_key *k, uint8_t d[32])
{
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(crypto_key_evp(k), OSSL_PKEY_PARAM_PRIV_KEY, &bn))
        return IFPP_E_CRYPTO;
    int ok = BN_bn2binpad(bn, d, 32) == 32;
    BN_clear_free(bn);
    return ok ? IFPP_OK : IFPP_E_CRYPTO;
}

static ifpp_err sim_put_key(tlv_builder *b, uint32_t tag, const crypto_key *k)
{
    uint8_t d[33];
    d[0] = (uint8_t)crypto_key_curve(k);
    ifpp_err e = sim_export_scalar(k, d + 1);
    if (e == IFPP_OK)
        e = tlv_put(b, tag, d, sizeof d);
    crypto_wipe(d, sizeof d);
    return e;
}

static ifpp_err sim_get_key(const tlv *t, crypto_key **out)
{
    if (t->len != 33 || t->value[0] > CRYPTO_CURVE_BRAINPOOLP256R1)
        return IFPP_E_BAD_KEY;
    return crypto_key_from_private((crypto_curve)t->value[0], t->value + 1, out);
}

/*
 * State file: SEQUENCE {
 *   80 version, 5A eid, 81 euiccKey, 82 euiccCert, 83 eumCert, 84 ciCert, 85 dmRootCert,
 *   A6 { 04 otk... }, A7 { 30 profile... }, A8 { 30 { 80 seq, 04 der }... }, 89 nextSeq
 * }  -- keys as curve byte || 32-byte scalar. A test tool's private format, never exchanged.
 */
static ifpp_err sim_encode_state(const euicc_sim *c, tlv_builder *b)
{
    tlv_begin(b, 0x30);
    tlv_put_uint(b, 0x80, SIM_STATE_VERSION);
    tlv_put(b, 0x5A, c->eid, 16);
    sim_put_key(b, 0x81, c->euicc_key);
    tlv_put(b, 0x82, c->euicc_cert, c->euicc_cert_len);
    tlv_put(b, 0x83, c->eum_cert, c->eum_cert_len);
    tlv_put(b, 0x84, c->ci_cert, c->ci_cert_len);
    tlv_put(b, 0x85, c->dm_root_cert, c->dm_root_cert_len);
    tlv_begin(b, 0xA6);
    for (size_t i = 0; i < c->n_otks; i++)
        sim_put_key(b, 0x04, c->otks[i]);
    tlv_end(b);
    tlv_begin(b, 0xA7);
    for (size_t i = 0; i < c->n_profiles; i++) {
        const sim_profile *p = &c->profiles[i];
        tlv_begin(b, 0x30);
        tlv_put(b, 0x5A, p->iccid, 10);
        tlv_put(b, 0x4F, p->aid, 16);
        tlv_put(b, 0x91, p->spn, strlen(p->spn));
        tlv_put(b, 0x92, p->name, strlen(p->name));
        tlv_put_uint(b, 0x95, p->pclass);
        tlv_put(b, 0x96, p->content_hash, 32);
        tlv_put_uint(b, 0x97, p->content_len);
        tlv_end(b);
    }
    tlv_end(b);
    tlv_begin(b, 0xA8);
    for (size_t i = 0; i < c->n_notifs; i++) {
        tlv_begin(b, 0x30);
        tlv_put_uint(b, 0x80, c->notifs[i].seq);
        tlv_put(b, 0x04, c->notifs[i].der, c->notifs[i].len);
        tlv_end(b);
    }
    tlv_end(b);
    tlv_put_uint(b, 0x89, c->next_seq);
    return tlv_end(b);
}

/* Writes the whole persistent state atomically; a power-cut fault leaves the old file. */
static ifpp_err sim_commit(euicc_sim *c)
{
    tlv_builder b;
    const uint8_t *der;
    size_t n;
    tlv_builder_init_dynamic(&b, SIM_MAX_STATE);
    sim_encode_state(c, &b);
    ifpp_err e = tlv_builder_finish(&b, &der, &n);
    if (e == IFPP_OK) {
        if (c->faults.power_cut_in_write) {
            c->faults.power_cut_in_write = false;
            fs_write_atomic_torn(c->path, der, n, 0600);
            c->powered = false;
            c->torn = true;
            e = IFPP_E_IO;
        } else if (getenv("IFPP_SIM_NO_SYNC")) {
            /* benches only (issue 16.5): the card's own syncs are a test rig cost, not the station's */
            FILE *f = fopen(c->path, "wb");
            e = f && fwrite(der, 1, n, f) == n ? IFPP_OK : IFPP_E_IO;
            if (f && fclose(f) != 0)
                e = IFPP_E_IO;
        } else {
            e = fs_write_atomic(c->path, der, n, 0600);
        }
    }
    if (b.buf)
        crypto_wipe(b.buf, b.cap);
    tlv_builder_free(&b);
    return e;
}

static ifpp_err sim_dup(const uint8_t *p, size_t n, uint8_t **out, size_t *outlen)
{
    *out = malloc(n ? n : 1);
    if (!*out)
        return IFPP_E_NOMEM;
    memcpy(*out, p, n);
    *outlen = n;
    return IFPP_OK;
}

static ifpp_err sim_get_uint32(const tlv *t, uint32_t *v)
{
    uint64_t x;
    ifpp_err e = tlv_get_uint(t, &x);
    if (e == IFPP_OK && x > UINT32_MAX)
        e = IFPP_E_RANGE;
    if (e == IFPP_OK)
        *v = (uint32_t)x;
    return e;
}

static void sim_copy_string(char *dst, size_t cap, const tlv *t)
{
    size_t n = t->len < cap - 1 ? t->len : cap - 1;
    memcpy(dst, t->value, n);
    dst[n] = '\0';
}

static ifpp_err sim_decode_profile(const tlv *t, sim_profile *p)
{
    tlv_reader r;
    tlv f;
    uint32_t v;
    ifpp_err e;
    memset(p, 0, sizeof *p);
    tlv_reader_init(&r, t->value, t->len, TLV_DER);
    if ((e = tlv_reader_expect(&r, 0x5A, &f)) != IFPP_OK || f.len != 10) return e ? e : IFPP_E_RANGE;
    memcpy(p->iccid, f.value, 10);
    if ((e = tlv_reader_expect(&r, 0x4F, &f)) != IFPP_OK || f.len != 16) return e ? e : IFPP_E_RANGE;
    memcpy(p->aid, f.value, 16);
    if ((e = tlv_reader_expect(&r, 0x91, &f)) != IFPP_OK) return e;
    sim_copy_string(p->spn, sizeof p->spn, &f);
    if ((e = tlv_reader_expect(&r, 0x92, &f)) != IFPP_OK) return e;
    sim_copy_string(p->name, sizeof p->name, &f);
    if ((e = tlv_reader_expect(&r, 0x95, &f)) != IFPP_OK || (e = sim_get_uint32(&f, &v)) != IFPP_OK) return e;
    p->pclass = (uint8_t)v;
    if ((e = tlv_reader_expect(&r, 0x96, &f)) != IFPP_OK || f.len != 32) return e ? e : IFPP_E_RANGE;
    memcpy(p->content_hash, f.value, 32);
    if ((e = tlv_reader_expect(&r, 0x97, &f)) != IFPP_OK || (e = sim_get_uint32(&f, &p->content_len)) != IFPP_OK)
        return e;
    return IFPP_OK;
}

static ifpp_err sim_decode_state(euicc_sim *c, const uint8_t *der, size_t n)
{
    tlv top, f, item;
    tlv_reader outer, r, list;
    uint32_t version;
    ifpp_err e;

    if ((e = tlv_parse_exact(der, n, TLV_DER, &top)) != IFPP_OK || top.tag != 0x30)
        return e ? e : IFPP_E_TLV_UNEXPECTED_TAG;
    tlv_reader_init(&outer, der, n, TLV_DER);
    if ((e = tlv_reader_enter(&outer, &top, &r)) != IFPP_OK) return e;
    if ((e = tlv_reader_expect(&r, 0x80, &f)) != IFPP_OK || (e = sim_get_uint32(&f, &version)) != IFPP_OK) return e;
    if (version != SIM_STATE_VERSION) return IFPP_E_RANGE;
    if ((e = tlv_reader_expect(&r, 0x5A, &f)) != IFPP_OK || f.len != 16) return e ? e : IFPP_E_RANGE;
    memcpy(c->eid, f.value, 16);
    if ((e = tlv_reader_expect(&r, 0x81, &f)) != IFPP_OK || (e = sim_get_key(&f, &c->euicc_key)) != IFPP_OK) return e;
    struct { uint32_t tag; uint8_t **p; size_t *n; } certs[] = {
        {0x82, &c->euicc_cert, &c->euicc_cert_len}, {0x83, &c->eum_cert, &c->eum_cert_len},
        {0x84, &c->ci_cert, &c->ci_cert_len}, {0x85, &c->dm_root_cert, &c->dm_root_cert_len},
    };
    for (size_t i = 0; i < 4; i++)
        if ((e = tlv_reader_expect(&r, certs[i].tag, &f)) != IFPP_OK ||
            (e = sim_dup(f.value, f.len, certs[i].p, certs[i].n)) != IFPP_OK)
            return e;
    if ((e = tlv_reader_expect(&r, 0xA6, &f)) != IFPP_OK || (e = tlv_reader_enter(&r, &f, &list)) != IFPP_OK) return e;
    while ((e = tlv_reader_next(&list, &item)) == IFPP_OK) {
        if (c->n_otks == SIM_MAX_OTKS) return IFPP_E_RANGE;
        if ((e = sim_get_key(&item, &c->otks[c->n_otks])) != IFPP_OK) return e;
        c->n_otks++;
    }
    if (e != IFPP_E_TLV_END) return e;
    if ((e = tlv_reader_expect(&r, 0xA7, &f)) != IFPP_OK || (e = tlv_reader_enter(&r, &f, &list)) != IFPP_OK) return e;
    while ((e = tlv_reader_next(&list, &item)) == IFPP_OK) {
        if (c->n_profiles == SIM_MAX_PROFILES) return IFPP_E_RANGE;
        if ((e = sim_decode_profile(&item, &c->profiles[c->n_profiles])) != IFPP_OK) return e;
        c->n_profiles++;
    }
    if (e != IFPP_E_TLV_END) return e;
    if ((e = tlv_reader_expect(&r, 0xA8, &f)) != IFPP_OK || (e = tlv_reader_enter(&r, &f, &list)) != IFPP_OK) return e;
    while ((e = tlv_reader_next(&list, &item)) == IFPP_OK) {
        tlv_reader nr;
        tlv s, d;
        sim_notif *nf = &c->notifs[c->n_notifs];
        if (c->n_notifs == SIM_MAX_NOTIFS) return IFPP_E_RANGE;
        if ((e = tlv_reader_enter(&list, &item, &nr)) != IFPP_OK ||
            (e = tlv_reader_expect(&nr, 0x80, &s)) != IFPP_OK || (e = sim_get_uint32(&s, &nf->seq)) != IFPP_OK ||
            (e = tlv_reader_expect(&nr, 0x04, &d)) != IFPP_OK || (e = sim_dup(d.value, d.len, &nf->der, &nf->len)) != IFPP_OK)
            return e;
        c->n_notifs++;
    }
    if (e != IFPP_E_TLV_END) return e;
    if ((e = tlv_reader_expect(&r, 0x89, &f)) != IFPP_OK || (e = sim_get_uint32(&f, &c->next_seq)) != IFPP_OK) return e;
    return tlv_reader_done(&r) ? IFPP_OK : IFPP_E_TLV_TRAILING;
}

static void sim_free_persistent(euicc_sim *c)
{
    crypto_key_free(c->euicc_key);
    free(c->euicc_cert);
    free(c->eum_cert);
    free(c->ci_cert);
    free(c->dm_root_cert);
    for (size_t i = 0; i < c->n_otks; i++)
        crypto_key_free(c->otks[i]);
    for (size_t i = 0; i < c->n_notifs; i++)
        free(c->notifs[i].der);
}

ifpp_err euicc_sim_personalise(const char *path, const euicc_sim_personalisation *p)
{
    struct stat st;
    if (!path || !p || !p->euicc_key || p->n_otks > SIM_MAX_OTKS)
        return IFPP_E_ARG;
    if (stat(path, &st) == 0)
        return IFPP_E_ARG; /* a card is personalised once */
    euicc_sim c;
    memset(&c, 0, sizeof c);
    c.path = (char *)path;
    memcpy(c.eid, p->eid, 16);
    c.euicc_key = (crypto_key *)p->euicc_key;
    c.euicc_cert = (uint8_t *)p->euicc_cert_der;
    c.euicc_cert_len = p->euicc_cert_len;
    c.eum_cert = (uint8_t *)p->eum_cert_der;
    c.eum_cert_len = p->eum_cert_len;
    c.ci_cert = (uint8_t *)p->ci_cert_der;
    c.ci_cert_len = p->ci_cert_len;
    c.dm_root_cert = (uint8_t *)p->dm_root_cert_der;
    c.dm_root_cert_len = p->dm_root_cert_len;
    for (size_t i = 0; i < p->n_otks; i++)
        c.otks[i] = (crypto_key *)p->otks[i];
    c.n_otks = p->n_otks;
    c.next_seq = 1;
    return sim_commit(&c); /* borrows only; nothing to free */
}

ifpp_err euicc_sim_open(const char *path, euicc_sim **out)
{
    uint8_t *der = NULL;
    size_t n = 0;
    ifpp_err e = fs_read_all(path, SIM_MAX_STATE, &der, &n);
    if (e != IFPP_OK)
        return e;
    euicc_sim *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        free(der);
        return IFPP_E_NOMEM;
    }
    e = sim_decode_state(c, der, n);
    crypto_wipe(der, n);
    free(der);
    if (e != IFPP_OK) {
        euicc_sim_close(c);
        return e;
    }
    c->sd_next_block = -1;
    *out = c;
    return IFPP_OK;
}

/*
 * After a power cut inside a write, the card's memory may hold changes its NVM never got: a real
 * card would come back with the NVM only, so the next power-up reloads it.
 */
static ifpp_err sim_reload(euicc_sim *c)
{
    uint8_t *der = NULL;
    size_t n = 0;
    ifpp_err e = fs_read_all(c->path, SIM_MAX_STATE, &der, &n);
    if (e != IFPP_OK)
        return e;
    sim_free_persistent(c);
    c->euicc_key = NULL;
    c->euicc_cert = c->eum_cert = c->ci_cert = c->dm_root_cert = NULL;
    c->n_otks = c->n_profiles = c->n_notifs = 0;
    e = sim_decode_state(c, der, n);
    crypto_wipe(der, n);
    free(der);
    return e;
}

static void sim_end_bpp(euicc_sim *c)
{
    crypto_key_free(c->bpp.dp_key);
    if (c->bpp.content_open)
        crypto_sha256_abort(&c->bpp.content);
    if (c->bpp.pe_buf) {
        crypto_wipe(c->bpp.pe_buf, c->bpp.pe_len);
        free(c->bpp.pe_buf);
    }
    bsp_wipe(&c->bpp.bsp);
    crypto_wipe(&c->bpp, sizeof c->bpp);
}

void euicc_sim_close(euicc_sim *c)
{
    if (!c)
        return;
    sim_end_bpp(c);
    sim_free_persistent(c);
    free(c->sd_buf);
    free(c->path);
    free(c);
}

void euicc_sim_eid(const euicc_sim *c, uint8_t eid[16]) { memcpy(eid, c->eid, 16); }
size_t euicc_sim_otk_count(const euicc_sim *c) { return c->n_otks; }
size_t euicc_sim_profile_count(const euicc_sim *c) { return c->n_profiles; }
size_t euicc_sim_notification_count(const euicc_sim *c) { return c->n_notifs; }
void euicc_sim_set_t0(euicc_sim *c, bool t0) { c->t0 = t0; }
void euicc_sim_set_fixed_challenge(euicc_sim *c, const uint8_t challenge[16])
{
    c->challenge_fixed = challenge != NULL;
    if (challenge)
        memcpy(c->fixed_challenge, challenge, 16);
}
void euicc_sim_set_faults(euicc_sim *c, const euicc_sim_faults *f)
{
    if (f)
        c->faults = *f;
    else
        memset(&c->faults, 0, sizeof c->faults);
    c->apdu_count = 0; /* fault positions count from here */
}

/* ===================================================================================== */
/* 2. Notifications                                                                       */
/* ===================================================================================== */

/* Adds a signed notification to the kept list (in memory; the caller commits). */
static ifpp_err sim_keep_notification(euicc_sim *c, uint32_t seq, const uint8_t *der, size_t n)
{
    if (c->n_notifs == SIM_MAX_NOTIFS)
        return IFPP_E_RANGE;
    sim_notif *nf = &c->notifs[c->n_notifs];
    ifpp_err e = sim_dup(der, n, &nf->der, &nf->len);
    if (e != IFPP_OK)
        return e;
    nf->seq = seq;
    c->n_notifs++;
    return IFPP_OK;
}

/* NotificationMetadata 'BF2F' (SGP.22): seqNumber, one operation bit, address, ICCID. */
static void sim_put_notification_metadata(tlv_builder *b, uint32_t seq, uint8_t op_bit, const uint8_t *iccid)
{
    uint8_t bits[2] = {(uint8_t)(7 - op_bit), (uint8_t)(0x80 >> op_bit)}; /* BIT STRING, one bit set */
    static const char address[] = "smdpf.ifpp.test";
    tlv_begin(b, 0xBF2F);
    tlv_put_uint(b, 0x80, seq);
    tlv_put(b, 0x81, bits, 2);
    tlv_put(b, 0x0C, address, sizeof address - 1);
    if (iccid)
        tlv_put(b, 0x5A, iccid, 10);
    tlv_end(b);
}

/* Signs tbs (a complete TLV) with SK.EUICC.ECDSA and appends 5F37 <r||s>. */
static ifpp_err sim_put_signature(euicc_sim *c, tlv_builder *b, const uint8_t *tbs, size_t n)
{
    uint8_t sig[CRYPTO_SIG_RAW_LEN];
    size_t siglen = sizeof sig;
    ifpp_err e = crypto_ecdsa_sign(c->euicc_key, tbs, n, CRYPTO_SIG_RAW, sig, &siglen);
    if (e != IFPP_OK)
        return e;
    return tlv_put(b, 0x5F37, sig, siglen);
}

/*
 * Builds, signs and keeps the PIR for the current BPP (docs/es10f.md "The PIR"); out gets
 * a copy for the response. success: aid of the new ISD-P; otherwise cmd/reason.
 */
static ifpp_err sim_make_pir(euicc_sim *c, const uint8_t *txid, size_t txid_len, const uint8_t *iccid,
                             const uint8_t *aid, uint8_t cmd, uint8_t reason, uint8_t *out, size_t cap,
                             size_t *outlen)
{
    uint8_t data[1024], pir[1200];
    tlv_builder b;
    const uint8_t *p;
    size_t n, pn;
    uint32_t seq = c->next_seq;
    /* simaResponse holds EUICCResponse SEQUENCEs (SAIP): one, whose peStatus list says ok(0). */
    static const uint8_t sima_ok[] = {0x30, 0x07, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00};

    tlv_builder_init_fixed(&b, data, sizeof data);
    tlv_begin(&b, 0xBF27);
    tlv_put(&b, 0x80, txid, txid_len);
    sim_put_notification_metadata(&b, seq, 0, iccid);
    if (c->bpp.smdp_oid_len)
        tlv_put(&b, 0x06, c->bpp.smdp_oid, c->bpp.smdp_oid_len);
    tlv_begin(&b, 0xA2);
    if (aid) {
        tlv_begin(&b, 0xA0);
        tlv_put(&b, 0x4F, aid, 16);
        tlv_put(&b, 0x04, sima_ok, sizeof sima_ok);
    } else {
        tlv_begin(&b, 0xA1);
        tlv_put_uint(&b, 0x80, cmd);
        tlv_put_uint(&b, 0x81, reason);
    }
    tlv_end(&b);
    tlv_end(&b);
    tlv_end(&b);
    ifpp_err e = tlv_builder_finish(&b, &p, &n);
    if (e != IFPP_OK)
        return e;

    tlv_builder_init_fixed(&b, pir, sizeof pir);
    tlv_begin(&b, 0xBF37);
    tlv_put_raw(&b, p, n);
    sim_put_signature(c, &b, p, n);
    tlv_end(&b);
    if ((e = tlv_builder_finish(&b, &p, &pn)) != IFPP_OK)
        return e;
    if ((e = sim_keep_notification(c, seq, p, pn)) != IFPP_OK)
        return e;
    c->next_seq++;
    if (out) {
        if (pn > cap)
            return IFPP_E_RANGE;
        memcpy(out, p, pn);
        *outlen = pn;
    }
    return IFPP_OK;
}

/* ===================================================================================== */
/* 3. The BPP session                                                                     */
/* ===================================================================================== */

static ifpp_err sim_cert_parse(const uint8_t *der, size_t n, cert **out) { return cert_parse_der(der, n, out); }

/* Verifies leaf (DER) with optional intermediates against one of the card's own roots. */
static ifpp_err sim_verify_chain(const uint8_t *root_der, size_t root_len, const tlv *inter_list,
                                 const uint8_t *leaf_der, size_t leaf_len, cert_role role, crypto_key **leaf_key)
{
    cert *root = NULL, *leaf = NULL, *inter[4] = {NULL};
    size_t n_inter = 0;
    char why[256];
    ifpp_err e = sim_cert_parse(root_der, root_len, &root);
    if (e == IFPP_OK)
        e = sim_cert_parse(leaf_der, leaf_len, &leaf);
    if (e == IFPP_OK && inter_list) {
        tlv_reader r;
        tlv t;
        tlv_reader_init(&r, inter_list->value, inter_list->len, TLV_DER);
        while (e == IFPP_OK && (e = tlv_reader_next(&r, &t)) == IFPP_OK) {
            if (n_inter == 4)
                e = IFPP_E_CERT_CHAIN;
            else
                e = sim_cert_parse(t.raw, t.raw_len, &inter[n_inter++]);
        }
        if (e == IFPP_E_TLV_END)
            e = IFPP_OK;
    }
    if (e == IFPP_OK)
        e = cert_verify_chain(root, (const cert *const *)inter, n_inter, leaf, role, time(NULL), why, sizeof why);
    if (e == IFPP_OK && leaf_key)
        e = cert_public_key(leaf, leaf_key);
    for (size_t i = 0; i < n_inter; i++)
        cert_free(inter[i]);
    cert_free(leaf);
    cert_free(root);
    return e;
}

/* BF71 PrepareBppLoad (docs/ifpp.asn): chain of the SM-DPf binding certificate, and which key. */
static uint8_t sim_prepare_bpp_load(euicc_sim *c, const tlv *req)
{
    tlv_reader top, r;
    tlv tx, otpk, leaf, subca;
    bool have_subca = false;

    if (!c->fpa_authorised)
        return 4; /* fpaNotAuthorised */
    tlv_reader_init(&top, req->raw, req->raw_len, TLV_DER);
    if (tlv_reader_enter(&top, req, &r) != IFPP_OK || tlv_reader_expect(&r, 0x80, &tx) != IFPP_OK ||
        tx.len == 0 || tx.len > 16 || tlv_reader_expect(&r, 0x5F49, &otpk) != IFPP_OK ||
        tlv_reader_expect(&r, 0x30, &leaf) != IFPP_OK)
        return 127;
    if (tlv_reader_expect(&r, 0xA1, &subca) == IFPP_OK)
        have_subca = true;
    if (!tlv_reader_done(&r))
        return 127;

    sim_end_bpp(c);
    ifpp_err e = sim_verify_chain(c->ci_cert, c->ci_cert_len, have_subca ? &subca : NULL, leaf.raw, leaf.raw_len,
                                  CERT_ROLE_DPF_PB, &c->bpp.dp_key);
    if (e != IFPP_OK) {
        sim_end_bpp(c);
        return e == IFPP_E_CERT_CHAIN ? 2 /* ciPKUnknown */ : 1 /* invalidCertificate */;
    }
    cert *pb = NULL; /* the PIR repeats the SM-DP's OID from this certificate (SGP.22 smdpOid) */
    if (cert_parse_der(leaf.raw, leaf.raw_len, &pb) != IFPP_OK ||
        cert_registered_id(pb, c->bpp.smdp_oid, sizeof c->bpp.smdp_oid, &c->bpp.smdp_oid_len) != IFPP_OK)
        c->bpp.smdp_oid_len = 0;
    cert_free(pb);
    for (size_t i = 0; i < c->n_otks; i++) {
        uint8_t pub[CRYPTO_EC_PUB_LEN];
        if (crypto_key_public(c->otks[i], pub) == IFPP_OK && otpk.len == sizeof pub &&
            memcmp(pub, otpk.value, sizeof pub) == 0) {
            c->bpp.stage = BPP_PREPARED;
            c->bpp.otk_index = i;
            memcpy(c->bpp.euicc_otpk, pub, sizeof pub);
            memcpy(c->bpp.txid, tx.value, tx.len);
            c->bpp.txid_len = tx.len;
            return 0;
        }
    }
    sim_end_bpp(c);
    return 3; /* oneTimeKeyUnknown: never ours, or already used (GENS08) */
}

/* Ends the BPP with an error PIR, kept like any PIR; the One-time Key stays (nothing was installed). */
static uint16_t sim_fail_bpp(euicc_sim *c, uint8_t cmd, uint8_t reason, uint8_t *out, size_t cap, size_t *outlen)
{
    const uint8_t *iccid = c->bpp.stage >= BPP_METADATA_DONE ? c->bpp.profile.iccid : NULL;
    ifpp_err e = sim_make_pir(c, c->bpp.txid, c->bpp.txid_len, iccid, NULL, cmd, reason, out, cap, outlen);
    sim_end_bpp(c);
    if (e == IFPP_OK)
        e = sim_commit(c);
    return e == IFPP_OK ? SW_OK : (c->torn ? 0 : SW_UNKNOWN);
}

/* First BPP command: BF36 header, then the complete BF23 InitialiseSecureChannelRequest. */
static uint16_t sim_bpp_init(euicc_sim *c, const uint8_t *d, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    uint32_t tag;
    size_t hdr, total;
    tlv bf23, remote, txid, crt, otpk, sign;
    tlv_reader top, r, cr;

    if (c->bpp.stage != BPP_PREPARED)
        return SW_CONDITIONS_NOT_SATISFIED;
    if (tlv_peek_header(d, n, TLV_DER, &tag, &hdr, &total) != IFPP_OK || tag != 0xBF36 ||
        tlv_parse_exact(d + hdr, n - hdr, TLV_DER, &bf23) != IFPP_OK || bf23.tag != 0xBF23)
        return sim_fail_bpp(c, CMD_INIT_SC, REASON_INCORRECT_INPUT, out, cap, outlen);
    tlv_reader_init(&top, bf23.raw, bf23.raw_len, TLV_DER);
    if (tlv_reader_enter(&top, &bf23, &r) != IFPP_OK || tlv_reader_expect(&r, 0x82, &remote) != IFPP_OK ||
        tlv_reader_expect(&r, 0x80, &txid) != IFPP_OK || tlv_reader_expect(&r, 0xA6, &crt) != IFPP_OK ||
        tlv_reader_expect(&r, 0x5F49, &otpk) != IFPP_OK || tlv_reader_expect(&r, 0x5F37, &sign) != IFPP_OK ||
        !tlv_reader_done(&r))
        return sim_fail_bpp(c, CMD_INIT_SC, REASON_INCORRECT_INPUT, out, cap, outlen);
    if (remote.len != 1 || remote.value[0] != 1)
        return sim_fail_bpp(c, CMD_INIT_SC, REASON_UNSUPPORTED_REMOTE_OP, out, cap, outlen);
    if (txid.len != c->bpp.txid_len || memcmp(txid.value, c->bpp.txid, txid.len) != 0)
        return sim_fail_bpp(c, CMD_INIT_SC, REASON_INVALID_TXID, out, cap, outlen);

    /* smdpSign over 82 || 80 || A6 || 5F49 as sent, then 5F49 41 <otPK.EUICC.ECKA> (docs/es10f.md). */
    uint8_t tbs[512];
    size_t tbs_len = (size_t)(sign.raw - remote.raw);
    if (tbs_len + 3 + CRYPTO_EC_PUB_LEN > sizeof tbs)
        return sim_fail_bpp(c, CMD_INIT_SC, REASON_INCORRECT_INPUT, out, cap, outlen);
    memcpy(tbs, remote.raw, tbs_len);
    memcpy(tbs + tbs_len, "\x5f\x49\x41", 3);
    memcpy(tbs + tbs_len + 3, c->bpp.euicc_otpk, CRYPTO_EC_PUB_LEN);
    if (crypto_ecdsa_verify(c->bpp.dp_key, tbs, tbs_len + 3 + CRYPTO_EC_PUB_LEN, CRYPTO_SIG_RAW, sign.value,
                            sign.len) != IFPP_OK)
        return sim_fail_bpp(c, CMD_INIT_SC, REASON_INVALID_SIGNATURE, out, cap, outlen);

    /* Control reference template: AES (88), 16-byte keys, a host ID. */
    tlv key_type, key_len, host_id;
    if (tlv_reader_enter(&r, &crt, &cr) != IFPP_OK || tlv_reader_expect(&cr, 0x80, &key_type) != IFPP_OK ||
        tlv_reader_expect(&cr, 0x81, &key_len) != IFPP_OK || tlv_reader_expect(&cr, 0x84, &host_id) != IFPP_OK ||
        key_type.len != 1 || key_type.value[0] != 0x88 || key_len.len != 1 || key_len.value[0] != 0x10 ||
        host_id.len == 0 || host_id.len > 16)
        return sim_fail_bpp(c, CMD_INIT_SC, REASON_UNSUPPORTED_CRT, out, cap, outlen);

    /* ECKA with the One-time Key, then the SGP.22 KDF (GENS06: the DP side's key is fresh too). */
    crypto_key *dp_otpk = NULL;
    uint8_t shs[CRYPTO_EC_SECRET_LEN];
    crypto_key *otk = c->otks[c->bpp.otk_index];
    if (crypto_key_from_public(crypto_key_curve(otk), otpk.value, otpk.len, &dp_otpk) != IFPP_OK)
        return sim_fail_bpp(c, CMD_INIT_SC, REASON_INCORRECT_INPUT, out, cap, outlen);
    ifpp_err e = crypto_ecka(otk, dp_otpk, shs);
    crypto_key_free(dp_otpk);
    if (e == IFPP_OK)
        e = bsp_derive_keys(shs, sizeof shs, 0x88, 0x10, host_id.value, host_id.len, c->eid, 16, &c->bpp.bsp);
    crypto_wipe(shs, sizeof shs);
    if (e != IFPP_OK)
        return sim_fail_bpp(c, CMD_INIT_SC, REASON_UNKNOWN, out, cap, outlen);

    c->bpp.stage = BPP_SC_OPEN;
    *outlen = 0;
    return SW_OK;
}

/* Verifies (and for 86/87 decrypts) one protected segment; plaintext into pt. */
static ifpp_err sim_unprotect(euicc_sim *c, const tlv *seg, uint8_t *pt, size_t cap, size_t *ptlen)
{
    if (seg->tag == 0x88)
        return bsp_verify_mac_only(&c->bpp.bsp, seg->raw, seg->raw_len, pt, cap, ptlen);
    return bsp_verify_and_decrypt(&c->bpp.bsp, seg->raw, seg->raw_len, (uint8_t)seg->tag, pt, cap, ptlen);
}

static uint8_t sim_reason_for(ifpp_err e)
{
    return e == IFPP_E_MAC ? REASON_SECURITY : REASON_STRUCTURE;
}

/* A0: ConfigureISDP in one 87. */
static uint16_t sim_bpp_configure_isdp(euicc_sim *c, const tlv *a0, uint8_t *out, size_t cap, size_t *outlen)
{
    tlv_reader top, r;
    tlv seg, req;
    uint8_t pt[1024];
    size_t ptlen;
    tlv_reader_init(&top, a0->raw, a0->raw_len, TLV_DER);
    if (tlv_reader_enter(&top, a0, &r) != IFPP_OK || tlv_reader_expect(&r, 0x87, &seg) != IFPP_OK ||
        !tlv_reader_done(&r))
        return sim_fail_bpp(c, CMD_CONFIGURE_ISDP, REASON_STRUCTURE, out, cap, outlen);
    ifpp_err e = sim_unprotect(c, &seg, pt, sizeof pt, &ptlen);
    if (e != IFPP_OK)
        return sim_fail_bpp(c, CMD_CONFIGURE_ISDP, sim_reason_for(e), out, cap, outlen);
    if (tlv_parse_exact(pt, ptlen, TLV_DER, &req) != IFPP_OK || req.tag != 0xBF24)
        return sim_fail_bpp(c, CMD_CONFIGURE_ISDP, REASON_INCORRECT_INPUT, out, cap, outlen);
    c->bpp.stage = BPP_ISDP_DONE;
    *outlen = 0;
    return SW_OK;
}

/* StoreMetadata 'BF25', once all 88s are in: ICCID, names, class. */
static uint16_t sim_bpp_store_metadata(euicc_sim *c, uint8_t *out, size_t cap, size_t *outlen)
{
    tlv md, f;
    tlv_reader top, r;
    sim_profile *p = &c->bpp.profile;
    if (tlv_parse_exact(c->bpp.metadata, c->bpp.metadata_len, TLV_DER, &md) != IFPP_OK || md.tag != 0xBF25)
        return sim_fail_bpp(c, CMD_STORE_METADATA, REASON_INCORRECT_INPUT, out, cap, outlen);
    tlv_reader_init(&top, md.raw, md.raw_len, TLV_DER);
    if (tlv_reader_enter(&top, &md, &r) != IFPP_OK || tlv_reader_expect(&r, 0x5A, &f) != IFPP_OK || f.len != 10)
        return sim_fail_bpp(c, CMD_STORE_METADATA, REASON_INCORRECT_INPUT, out, cap, outlen);
    memcpy(p->iccid, f.value, 10);
    if (tlv_reader_expect(&r, 0x91, &f) != IFPP_OK || f.len >= sizeof p->spn)
        return sim_fail_bpp(c, CMD_STORE_METADATA, REASON_INCORRECT_INPUT, out, cap, outlen);
    sim_copy_string(p->spn, sizeof p->spn, &f);
    if (tlv_reader_expect(&r, 0x92, &f) != IFPP_OK || f.len >= sizeof p->name)
        return sim_fail_bpp(c, CMD_STORE_METADATA, REASON_INCORRECT_INPUT, out, cap, outlen);
    sim_copy_string(p->name, sizeof p->name, &f);
    p->pclass = 2; /* operational unless said otherwise */
    uint32_t v;
    if (tlv_reader_find(&r, 0x95, &f) == IFPP_OK && sim_get_uint32(&f, &v) == IFPP_OK && v <= 2)
        p->pclass = (uint8_t)v;
    c->bpp.stage = BPP_METADATA_DONE; /* ICCID known from here on: error PIRs carry it */
    for (size_t i = 0; i < c->n_profiles; i++)
        if (memcmp(c->profiles[i].iccid, p->iccid, 10) == 0)
            return sim_fail_bpp(c, CMD_STORE_METADATA, REASON_ICCID_EXISTS, out, cap, outlen);
    if (c->n_profiles == SIM_MAX_PROFILES)
        return sim_fail_bpp(c, CMD_STORE_METADATA, REASON_NO_MEMORY, out, cap, outlen);
    *outlen = 0;
    return SW_OK;
}

/* A2: ReplaceSessionKeys 'BF26' in one 87: new S-ENC, S-MAC and MAC chaining value for the 86s. */
static uint16_t sim_bpp_replace_keys(euicc_sim *c, const tlv *a2, uint8_t *out, size_t cap, size_t *outlen)
{
    tlv_reader top, r, kr;
    tlv seg, req, mcv, enc, mac;
    uint8_t pt[256];
    size_t ptlen;
    tlv_reader_init(&top, a2->raw, a2->raw_len, TLV_DER);
    if (tlv_reader_enter(&top, a2, &r) != IFPP_OK || tlv_reader_expect(&r, 0x87, &seg) != IFPP_OK ||
        !tlv_reader_done(&r))
        return sim_fail_bpp(c, CMD_REPLACE_KEYS, REASON_STRUCTURE, out, cap, outlen);
    ifpp_err e = sim_unprotect(c, &seg, pt, sizeof pt, &ptlen);
    if (e != IFPP_OK)
        return sim_fail_bpp(c, CMD_REPLACE_KEYS, sim_reason_for(e), out, cap, outlen);
    tlv_reader_init(&top, pt, ptlen, TLV_DER);
    if (tlv_parse_exact(pt, ptlen, TLV_DER, &req) != IFPP_OK || req.tag != 0xBF26 ||
        tlv_reader_enter(&top, &req, &kr) != IFPP_OK || tlv_reader_expect(&kr, 0x80, &mcv) != IFPP_OK ||
        tlv_reader_expect(&kr, 0x81, &enc) != IFPP_OK || tlv_reader_expect(&kr, 0x82, &mac) != IFPP_OK ||
        mcv.len != 16 || enc.len != 16 || mac.len != 16) {
        crypto_wipe(pt, sizeof pt);
        return sim_fail_bpp(c, CMD_REPLACE_KEYS, REASON_INCORRECT_INPUT, out, cap, outlen);
    }
    bsp_init(&c->bpp.bsp, enc.value, mac.value, mcv.value);
    crypto_wipe(pt, sizeof pt);
    *outlen = 0;
    return SW_OK;
}

/*
 * The decrypted content is a SIMalliance/TCA eUICC Interoperable Profile (PEDefinitions, DER):
 * ProfileElement after ProfileElement, the ProfileHeader ('A0') first and PE-End ('AA') last.
 * Checks what a real eUICC checks before installing: the header's ICCID (plain BCD) and EF.ICCID's
 * content in the MF PE ('B0', ef-iccid 'A4', fillFileContent '83', nibble-swapped) are the ICCID
 * StoreMetadata announced. Returns 0, or the SGP.22 ErrorReason for the PIR.
 */
static uint8_t sim_check_profile(const uint8_t *pe, size_t n, const uint8_t iccid[ICCID_LEN])
{
    tlv_reader r, hr, mr, fr;
    tlv t, f, file;
    uint8_t swapped[ICCID_LEN];
    uint64_t major;
    bool ended = false;

    tlv_reader_init(&r, pe, n, TLV_DER);
    if (tlv_reader_expect(&r, 0xA0, &t) != IFPP_OK || tlv_reader_enter(&r, &t, &hr) != IFPP_OK ||
        tlv_reader_expect(&hr, 0x80, &f) != IFPP_OK || tlv_get_uint(&f, &major) != IFPP_OK || major < 2 ||
        tlv_reader_expect(&hr, 0x81, &f) != IFPP_OK)
        return REASON_PE_PROCESSING;
    (void)tlv_reader_expect(&hr, 0x82, &f); /* profileType */
    if (tlv_reader_expect(&hr, 0x83, &f) != IFPP_OK || f.len != ICCID_LEN)
        return REASON_PE_PROCESSING;
    iccid_swap_nibbles(f.value, swapped);
    if (memcmp(swapped, iccid, ICCID_LEN) != 0)
        return REASON_ICCID_MISMATCH;
    while (tlv_reader_next(&r, &t) == IFPP_OK) {
        if (ended || (t.tag & 0xE0) != 0xA0) /* PEs are context-specific, constructed; nothing after End */
            return REASON_PE_PROCESSING;
        if (t.tag == 0xAA)
            ended = true;
        if (t.tag != 0xB0)
            continue;
        if (tlv_reader_enter(&r, &t, &mr) != IFPP_OK || tlv_reader_find(&mr, 0xA4, &file) != IFPP_OK ||
            tlv_reader_enter(&mr, &file, &fr) != IFPP_OK)
            return REASON_PE_PROCESSING;
        if (tlv_reader_find(&fr, 0x83, &f) == IFPP_OK && (f.len != ICCID_LEN || memcmp(f.value, iccid, ICCID_LEN) != 0))
            return REASON_ICCID_MISMATCH;
    }
    return ended && tlv_reader_done(&r) ? 0 : REASON_PE_PROCESSING;
}

/* After the last 86: install the profile, keep the success PIR and delete the One-time Key, in one commit. */
static uint16_t sim_bpp_install(euicc_sim *c, uint8_t *out, size_t cap, size_t *outlen)
{
    sim_profile *p = &c->bpp.profile;
    uint8_t reason = sim_check_profile(c->bpp.pe_buf, c->bpp.pe_len, p->iccid);
    if (reason)
        return sim_fail_bpp(c, CMD_LOAD_PE, reason, out, cap, outlen);
    static const uint8_t aid_prefix[15] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF,
                                           0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x10};
    if (crypto_sha256_final(&c->bpp.content, p->content_hash) != IFPP_OK)
        return sim_fail_bpp(c, CMD_LOAD_PE, REASON_UNKNOWN, out, cap, outlen);
    c->bpp.content_open = false;
    memcpy(p->aid, aid_prefix, 15);
    p->aid[15] = (uint8_t)(c->n_profiles + 1);
    for (size_t i = 0; i < c->n_profiles; i++) /* an AID is never reused while its ISD-P exists */
        if (c->profiles[i].aid[15] >= p->aid[15])
            p->aid[15] = (uint8_t)(c->profiles[i].aid[15] + 1);
    ifpp_err e = sim_make_pir(c, c->bpp.txid, c->bpp.txid_len, p->iccid, p->aid, 0, 0, out, cap, outlen);
    if (e != IFPP_OK)
        return sim_fail_bpp(c, CMD_LOAD_PE, REASON_NO_MEMORY, out, cap, outlen);
    c->profiles[c->n_profiles++] = *p;
    crypto_key *used = c->otks[c->bpp.otk_index]; /* GENS08: this key has loaded its one profile */
    memmove(&c->otks[c->bpp.otk_index], &c->otks[c->bpp.otk_index + 1],
            (c->n_otks - c->bpp.otk_index - 1) * sizeof c->otks[0]);
    c->n_otks--;
    crypto_key_free(used);
    sim_end_bpp(c);
    if (sim_commit(c) != IFPP_OK)
        return c->torn ? 0 : SW_UNKNOWN;
    return SW_OK;
}

/* One segment (88 or 86) inside A1 or A3. */
static uint16_t sim_bpp_segment(euicc_sim *c, const tlv *seg, uint8_t *out, size_t cap, size_t *outlen)
{
    bool in_88 = c->bpp.stage == BPP_IN_88;
    uint8_t cmd = in_88 ? CMD_STORE_METADATA : CMD_LOAD_PE;
    uint8_t pt[1024];
    size_t ptlen;
    if (seg->tag != (in_88 ? 0x88u : 0x86u) || seg->raw_len > c->bpp.remaining)
        return sim_fail_bpp(c, cmd, REASON_STRUCTURE, out, cap, outlen);
    ifpp_err e = sim_unprotect(c, seg, pt, sizeof pt, &ptlen);
    if (e != IFPP_OK)
        return sim_fail_bpp(c, cmd, sim_reason_for(e), out, cap, outlen);
    c->bpp.remaining -= seg->raw_len;
    if (in_88) {
        if (ptlen > sizeof c->bpp.metadata - c->bpp.metadata_len)
            return sim_fail_bpp(c, cmd, REASON_INCORRECT_INPUT, out, cap, outlen);
        memcpy(c->bpp.metadata + c->bpp.metadata_len, pt, ptlen);
        c->bpp.metadata_len += ptlen;
        if (c->bpp.remaining == 0)
            return sim_bpp_store_metadata(c, out, cap, outlen);
    } else {
        if (ptlen > SIM_MAX_PROFILE - c->bpp.pe_len)
            return sim_fail_bpp(c, cmd, REASON_NO_MEMORY, out, cap, outlen);
        uint8_t *grown = realloc(c->bpp.pe_buf, c->bpp.pe_len + ptlen);
        if (!grown)
            return sim_fail_bpp(c, cmd, REASON_NO_MEMORY, out, cap, outlen);
        c->bpp.pe_buf = grown;
        memcpy(c->bpp.pe_buf + c->bpp.pe_len, pt, ptlen);
        c->bpp.pe_len += ptlen;
        crypto_sha256_update(&c->bpp.content, pt, ptlen);
        c->bpp.profile.content_len += (uint32_t)ptlen;
        crypto_wipe(pt, sizeof pt);
        if (c->bpp.remaining == 0)
            return sim_bpp_install(c, out, cap, outlen);
    }
    *outlen = 0;
    return SW_OK;
}

/* Dispatches one BPP command (anything but the first) by stage and tag. */
static uint16_t sim_bpp_command(euicc_sim *c, const uint8_t *d, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    uint32_t tag;
    size_t hdr, len;
    tlv t;
    uint8_t cmd = c->bpp.stage <= BPP_SC_OPEN ? CMD_CONFIGURE_ISDP
                : c->bpp.stage <= BPP_IN_88   ? CMD_STORE_METADATA : CMD_LOAD_PE;

    if (tlv_peek_header(d, n, TLV_DER, &tag, &hdr, &len) != IFPP_OK)
        return sim_fail_bpp(c, cmd, REASON_STRUCTURE, out, cap, outlen);
    /* A1 and A3 arrive as a header alone; their segments follow one command each. */
    if ((tag == 0xA1 && c->bpp.stage == BPP_ISDP_DONE) || (tag == 0xA3 && c->bpp.stage == BPP_METADATA_DONE)) {
        if (hdr != n || len == 0)
            return sim_fail_bpp(c, cmd, REASON_STRUCTURE, out, cap, outlen);
        c->bpp.remaining = len;
        if (tag == 0xA1) {
            c->bpp.stage = BPP_IN_88;
        } else {
            if (crypto_sha256_init(&c->bpp.content) != IFPP_OK)
                return sim_fail_bpp(c, CMD_LOAD_PE, REASON_UNKNOWN, out, cap, outlen);
            c->bpp.content_open = true;
            c->bpp.stage = BPP_IN_86;
        }
        *outlen = 0;
        return SW_OK;
    }
    if (tlv_parse_exact(d, n, TLV_DER, &t) != IFPP_OK)
        return sim_fail_bpp(c, cmd, REASON_STRUCTURE, out, cap, outlen);
    switch (c->bpp.stage) {
    case BPP_SC_OPEN:
        if (t.tag == 0xA0)
            return sim_bpp_configure_isdp(c, &t, out, cap, outlen);
        break;
    case BPP_METADATA_DONE:
        if (t.tag == 0xA2)
            return sim_bpp_replace_keys(c, &t, out, cap, outlen);
        break;
    case BPP_IN_88:
    case BPP_IN_86:
        return sim_bpp_segment(c, &t, out, cap, outlen);
    default:
        break;
    }
    return sim_fail_bpp(c, cmd, REASON_STRUCTURE, out, cap, outlen);
}

/* ===================================================================================== */
/* 4. Other ES10 / ES10f functions                                                        */
/* ===================================================================================== */

static ifpp_err sim_ski_of(const uint8_t *der, size_t n, uint8_t ski[20], size_t *ski_len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    if (!x)
        return IFPP_E_CERT_PARSE;
    const ASN1_OCTET_STRING *id = X509_get0_subject_key_id(x);
    ifpp_err e = IFPP_E_CERT_PARSE;
    if (id && ASN1_STRING_length(id) > 0 && ASN1_STRING_length(id) <= 20) {
        *ski_len = (size_t)ASN1_STRING_length(id);
        memcpy(ski, ASN1_STRING_get0_data(id), *ski_len);
        e = IFPP_OK;
    }
    X509_free(x);
    return e;
}

ifpp_err euicc_sim_info2(const euicc_sim *c, uint8_t *out, size_t cap, size_t *n)
{
    uint8_t ski[20];
    size_t ski_len;
    tlv_builder b;
    const uint8_t *p;
    ifpp_err e = sim_ski_of(c->ci_cert, c->ci_cert_len, ski, &ski_len);
    if (e != IFPP_OK)
        return e;
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, 0xBF22);
    tlv_put(&b, 0x81, "\x02\x03\x00", 3); /* profileVersion (SAIP 2.3) */
    tlv_put(&b, 0x82, "\x02\x02\x02", 3); /* svn: SGP.22 v2.2.2 */
    tlv_put(&b, 0x83, "\x01\x00\x00", 3); /* euiccFirmwareVer */
    tlv_put(&b, 0x84, "\x81\x01\x00\x82\x04\x00\x01\x00\x00\x83\x02\x40\x00", 13); /* extCardResource */
    /* uiccCapability, a named-bit BIT STRING: DER drops trailing zero bits (X.690 11.2.2). */
    tlv_put(&b, 0x85, "\x00\x06\x7f", 3);
    tlv_put(&b, 0x88, "\x07\x80", 2);         /* rspCapability: additionalProfile */
    tlv_begin(&b, 0xA9);
    tlv_put(&b, 0x04, ski, ski_len);
    tlv_end(&b);
    tlv_begin(&b, 0xAA);
    tlv_put(&b, 0x04, ski, ski_len);
    tlv_end(&b);
    tlv_put(&b, 0x04, "\x00\x00\x00", 3);     /* ppVersion */
    tlv_put(&b, 0x0C, "IFPP-TEST-SIM", 13);   /* sasAcreditationNumber */
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n);
}

/* BF70 AuthoriseFpaServices (EUICCF02, docs/es10f.md). */
static uint8_t sim_authorise_fpa(euicc_sim *c, const tlv *req)
{
    tlv_reader top, r, sr;
    tlv signed_part, chal, eid, sig, cert_tlv;
    crypto_key *dm_key = NULL;

    c->fpa_authorised = false;
    if (c->n_otks == 0)
        return 4; /* fpaServicesUnavailable: EUICCF04, GENS13 */
    tlv_reader_init(&top, req->raw, req->raw_len, TLV_DER);
    if (tlv_reader_enter(&top, req, &r) != IFPP_OK || tlv_reader_expect(&r, 0x30, &signed_part) != IFPP_OK ||
        tlv_reader_expect(&r, 0x5F37, &sig) != IFPP_OK || tlv_reader_expect(&r, 0x30, &cert_tlv) != IFPP_OK ||
        !tlv_reader_done(&r) || tlv_reader_enter(&r, &signed_part, &sr) != IFPP_OK ||
        tlv_reader_expect(&sr, 0x81, &chal) != IFPP_OK || tlv_reader_expect(&sr, 0x5A, &eid) != IFPP_OK ||
        !tlv_reader_done(&sr))
        return 127;
    if (sim_verify_chain(c->dm_root_cert, c->dm_root_cert_len, NULL, cert_tlv.raw, cert_tlv.raw_len,
                         CERT_ROLE_DM_FPA, &dm_key) != IFPP_OK)
        return 1;
    uint8_t result = 0;
    if (!c->challenge_valid || chal.len != 16 || !crypto_equal_ct(chal.value, c->challenge, 16) || eid.len != 16 ||
        memcmp(eid.value, c->eid, 16) != 0)
        result = 3;
    else if (crypto_ecdsa_verify(dm_key, signed_part.raw, signed_part.raw_len, CRYPTO_SIG_RAW, sig.value, sig.len) !=
             IFPP_OK)
        result = 2;
    c->challenge_valid = false; /* single use, whatever the outcome */
    crypto_key_free(dm_key);
    c->fpa_authorised = result == 0;
    return result;
}

/* Builds a response of the form <tag> { 02/80 <result> ... } in out. */
static uint16_t sim_result(uint32_t tag, uint32_t result_tag, uint8_t result, uint8_t *out, size_t cap, size_t *n)
{
    tlv_builder b;
    const uint8_t *p;
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, tag);
    tlv_put_uint(&b, result_tag, result);
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n) == IFPP_OK ? SW_OK : SW_UNKNOWN;
}

static uint16_t sim_otk_info(euicc_sim *c, uint8_t *out, size_t cap, size_t *n)
{
    tlv_builder b;
    const uint8_t *p;
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, 0xBF72);
    tlv_put_uint(&b, 0x80, c->n_otks);
    tlv_begin(&b, 0xA1);
    for (size_t i = 0; i < c->n_otks; i++) {
        uint8_t pub[CRYPTO_EC_PUB_LEN];
        crypto_key_public(c->otks[i], pub);
        tlv_put(&b, 0x5F49, pub, sizeof pub);
    }
    tlv_end(&b);
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n) == IFPP_OK ? SW_OK : SW_UNKNOWN;
}

/* BF73 DeleteOneTimeKeys (EUICCF03): all of them, durably; FPA services end with the last. */
static uint16_t sim_delete_otks(euicc_sim *c, uint8_t *out, size_t cap, size_t *n)
{
    tlv_builder b;
    const uint8_t *p;
    size_t deleted = c->n_otks;
    if (!c->fpa_authorised)
        return sim_result(0xBF73, 0x02, 1, out, cap, n);
    for (size_t i = 0; i < c->n_otks; i++)
        crypto_key_free(c->otks[i]);
    c->n_otks = 0;
    sim_end_bpp(c);
    if (sim_commit(c) != IFPP_OK)
        return c->torn ? 0 : SW_UNKNOWN;
    c->fpa_authorised = false;
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, 0xBF73);
    tlv_put_uint(&b, 0x02, 0);
    tlv_put_uint(&b, 0x80, deleted);
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n) == IFPP_OK ? SW_OK : SW_UNKNOWN;
}

/* BF2B RetrieveNotificationsList: every kept notification, or the one with seqNumber. */
static uint16_t sim_retrieve_notifications(euicc_sim *c, const tlv *req, uint8_t *out, size_t cap, size_t *n)
{
    tlv_reader top, r;
    tlv crit;
    uint32_t only = 0;
    bool filter = false;
    tlv_builder b;
    const uint8_t *p;
    tlv_reader crit_r;
    tlv_reader_init(&top, req->raw, req->raw_len, TLV_DER);
    /* searchCriteria [0] EXPLICIT CHOICE { seqNumber [0] ... } (SGP.22, AUTOMATIC TAGS): A0 { 80 seq } */
    if (tlv_reader_enter(&top, req, &r) == IFPP_OK && tlv_reader_expect(&r, 0xA0, &crit) == IFPP_OK &&
        tlv_reader_enter(&r, &crit, &crit_r) == IFPP_OK && tlv_reader_expect(&crit_r, 0x80, &crit) == IFPP_OK)
        filter = sim_get_uint32(&crit, &only) == IFPP_OK;
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, 0xBF2B);
    tlv_begin(&b, 0xA0);
    for (size_t i = 0; i < c->n_notifs; i++)
        if (!filter || c->notifs[i].seq == only)
            tlv_put_raw(&b, c->notifs[i].der, c->notifs[i].len);
    tlv_end(&b);
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n) == IFPP_OK ? SW_OK : SW_NOT_ENOUGH_MEMORY;
}

/* The NotificationMetadata 'BF2F' inside a kept notification (a PIR's BF27, or an OtherSignedNotification). */
static ifpp_err sim_notification_metadata(const sim_notif *nf, tlv *meta)
{
    tlv top, data, f;
    tlv_reader outer, r, dr;
    ifpp_err e;
    tlv_reader_init(&outer, nf->der, nf->len, TLV_DER);
    if ((e = tlv_reader_next(&outer, &top)) != IFPP_OK || (e = tlv_reader_enter(&outer, &top, &r)) != IFPP_OK)
        return e;
    if (top.tag != 0xBF37)
        return tlv_reader_expect(&r, 0xBF2F, meta);
    if ((e = tlv_reader_expect(&r, 0xBF27, &data)) != IFPP_OK || (e = tlv_reader_enter(&r, &data, &dr)) != IFPP_OK ||
        (e = tlv_reader_expect(&dr, 0x80, &f)) != IFPP_OK)
        return e;
    return tlv_reader_expect(&dr, 0xBF2F, meta);
}

/*
 * BF28 ListNotification (SGP.22 ES10b): the metadata of every kept notification, or of those
 * whose operation is among the bits of the optional profileManagementOperation filter ('81').
 * Answer: BF28 { A0 { BF2F ... } } (notificationMetadataList), or BF28 { 81 01 7F } on error.
 */
static uint16_t sim_list_notifications(euicc_sim *c, const tlv *req, uint8_t *out, size_t cap, size_t *n)
{
    tlv_reader top, r;
    tlv filter, meta;
    uint8_t want[4] = {0xFF, 0xFF, 0xFF, 0xFF};
    tlv_builder b;
    const uint8_t *p;
    tlv_reader_init(&top, req->raw, req->raw_len, TLV_DER);
    if (tlv_reader_enter(&top, req, &r) != IFPP_OK)
        return sim_result(0xBF28, 0x81, 127, out, cap, n);
    if (tlv_reader_expect(&r, 0x81, &filter) == IFPP_OK) {
        if (filter.len < 1 || filter.len > 1 + sizeof want || filter.value[0] > 7)
            return sim_result(0xBF28, 0x81, 127, out, cap, n);
        memset(want, 0, sizeof want);
        memcpy(want, filter.value + 1, filter.len - 1);
    }
    if (!tlv_reader_done(&r))
        return sim_result(0xBF28, 0x81, 127, out, cap, n);
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, 0xBF28);
    tlv_begin(&b, 0xA0);
    for (size_t i = 0; i < c->n_notifs; i++) {
        tlv_reader mr;
        tlv op;
        bool match = false;
        tlv_reader_init(&top, c->notifs[i].der, c->notifs[i].len, TLV_DER);
        if (sim_notification_metadata(&c->notifs[i], &meta) != IFPP_OK || tlv_reader_enter(&top, &meta, &mr) != IFPP_OK ||
            tlv_reader_find(&mr, 0x81, &op) != IFPP_OK)
            continue; /* cannot happen: the card made them */
        for (size_t k = 1; k < op.len && k <= sizeof want; k++)
            match = match || (op.value[k] & want[k - 1]);
        if (match)
            tlv_put_raw(&b, meta.raw, meta.raw_len);
    }
    tlv_end(&b);
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n) == IFPP_OK ? SW_OK : SW_NOT_ENOUGH_MEMORY;
}

/* BF30 NotificationSent: the station has the notification; the card may forget it. */
static uint16_t sim_notification_sent(euicc_sim *c, const tlv *req, uint8_t *out, size_t cap, size_t *n)
{
    tlv_reader top, r;
    tlv s;
    uint32_t seq;
    tlv_reader_init(&top, req->raw, req->raw_len, TLV_DER);
    if (tlv_reader_enter(&top, req, &r) != IFPP_OK || tlv_reader_expect(&r, 0x80, &s) != IFPP_OK ||
        sim_get_uint32(&s, &seq) != IFPP_OK)
        return sim_result(0xBF30, 0x80, 127, out, cap, n);
    for (size_t i = 0; i < c->n_notifs; i++) {
        if (c->notifs[i].seq != seq)
            continue;
        sim_notif gone = c->notifs[i];
        memmove(&c->notifs[i], &c->notifs[i + 1], (c->n_notifs - i - 1) * sizeof c->notifs[0]);
        c->n_notifs--;
        if (sim_commit(c) != IFPP_OK) { /* put it back: the card's NVM did not change */
            memmove(&c->notifs[i + 1], &c->notifs[i], (c->n_notifs - i) * sizeof c->notifs[0]);
            c->notifs[i] = gone;
            c->n_notifs++;
            return c->torn ? 0 : SW_UNKNOWN;
        }
        free(gone.der);
        return sim_result(0xBF30, 0x80, 0, out, cap, n);
    }
    return sim_result(0xBF30, 0x80, 1, out, cap, n); /* nothingToDelete */
}

/* BF2D ProfileInfoList (LPA service): ICCID, AID, state, names, class of each profile. */
static uint16_t sim_profile_info(euicc_sim *c, uint8_t *out, size_t cap, size_t *n)
{
    tlv_builder b;
    const uint8_t *p;
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, 0xBF2D);
    tlv_begin(&b, 0xA0);
    for (size_t i = 0; i < c->n_profiles; i++) {
        const sim_profile *pr = &c->profiles[i];
        tlv_begin(&b, 0xE3);
        tlv_put(&b, 0x5A, pr->iccid, 10);
        tlv_put(&b, 0x4F, pr->aid, 16);
        tlv_put_uint(&b, 0x9F70, 0); /* disabled: GENF03, only LPA/IPA enable it */
        tlv_put(&b, 0x91, pr->spn, strlen(pr->spn));
        tlv_put(&b, 0x92, pr->name, strlen(pr->name));
        tlv_put_uint(&b, 0x95, pr->pclass);
        tlv_end(&b);
    }
    tlv_end(&b);
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n) == IFPP_OK ? SW_OK : SW_NOT_ENOUGH_MEMORY;
}

/*
 * OtherSignedNotification (SGP.22): tbsOtherNotification (meta, a BF2F TLV), euiccNotificationSignature
 * over it, CERT.EUICC, CERT.EUM. The faults make the evidence a station must refuse: a signature that
 * does not verify, or another card's signature and certificates.
 */
static ifpp_err sim_put_delete_notification(euicc_sim *c, tlv_builder *b, const uint8_t *meta, size_t mlen)
{
    const euicc_sim *signer = c->faults.delete_signer ? c->faults.delete_signer : c;
    uint8_t sig[CRYPTO_SIG_RAW_LEN];
    size_t siglen = sizeof sig;
    ifpp_err e = crypto_ecdsa_sign(signer->euicc_key, meta, mlen, CRYPTO_SIG_RAW, sig, &siglen);
    if (e != IFPP_OK)
        return e;
    if (c->faults.forge_delete_signature)
        sig[siglen / 2] ^= 0x01;
    tlv_begin(b, 0x30);
    tlv_put_raw(b, meta, mlen);
    tlv_put(b, 0x5F37, sig, siglen);
    tlv_put_raw(b, signer->euicc_cert, signer->euicc_cert_len);
    tlv_put_raw(b, signer->eum_cert, signer->eum_cert_len);
    return tlv_end(b);
}

/* BF33 DeleteProfile (use case A.4): removes it and keeps a signed deletion notification. */
static uint16_t sim_delete_profile(euicc_sim *c, const tlv *req, uint8_t *out, size_t cap, size_t *n)
{
    tlv_reader top, r;
    tlv id;
    tlv_reader_init(&top, req->raw, req->raw_len, TLV_DER);
    if (tlv_reader_enter(&top, req, &r) != IFPP_OK || tlv_reader_next(&r, &id) != IFPP_OK)
        return sim_result(0xBF33, 0x80, 127, out, cap, n);
    for (size_t i = 0; i < c->n_profiles; i++) {
        sim_profile *pr = &c->profiles[i];
        bool match = (id.tag == 0x5A && id.len == 10 && memcmp(id.value, pr->iccid, 10) == 0) ||
                     (id.tag == 0x4F && id.len == 16 && memcmp(id.value, pr->aid, 16) == 0);
        if (!match)
            continue;
        /* OtherSignedNotification: BF2F, its signature, CERT.EUICC, CERT.EUM (SGP.22). */
        uint8_t buf[4096];
        tlv_builder b;
        const uint8_t *p;
        size_t len;
        uint8_t meta[256];
        size_t mlen;
        tlv_builder_init_fixed(&b, meta, sizeof meta);
        sim_put_notification_metadata(&b, c->next_seq, 3, pr->iccid);
        if (tlv_builder_finish(&b, &p, &mlen) != IFPP_OK)
            return SW_UNKNOWN;
        tlv_builder_init_fixed(&b, buf, sizeof buf);
        if (sim_put_delete_notification(c, &b, meta, mlen) != IFPP_OK)
            return SW_UNKNOWN;
        if (tlv_builder_finish(&b, &p, &len) != IFPP_OK || sim_keep_notification(c, c->next_seq, p, len) != IFPP_OK)
            return SW_NOT_ENOUGH_MEMORY;
        c->next_seq++;
        sim_profile removed = *pr;
        memmove(pr, pr + 1, (c->n_profiles - i - 1) * sizeof *pr);
        c->n_profiles--;
        if (sim_commit(c) != IFPP_OK) {
            c->n_notifs--; /* undo in memory: the NVM did not change */
            free(c->notifs[c->n_notifs].der);
            c->next_seq--;
            memmove(pr + 1, pr, (c->n_profiles - i) * sizeof *pr);
            *pr = removed;
            c->n_profiles++;
            return c->torn ? 0 : SW_UNKNOWN;
        }
        return sim_result(0xBF33, 0x80, 0, out, cap, n);
    }
    return sim_result(0xBF33, 0x80, 1, out, cap, n); /* iccidOrAidNotFound */
}

static uint16_t sim_ifpp_capabilities(euicc_sim *c, uint8_t *out, size_t cap, size_t *n);
static uint16_t sim_conn_test(euicc_sim *c, const tlv *req, uint8_t *out, size_t cap, size_t *n);

/* One complete ES10/ES10f command (the STORE DATA payload); returns the status word. */
static uint16_t sim_es10(euicc_sim *c, const uint8_t *d, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    uint32_t tag;
    size_t hdr, len;
    tlv t;

    *outlen = 0;
    if (tlv_peek_header(d, n, TLV_DER, &tag, &hdr, &len) != IFPP_OK)
        return SW_WRONG_DATA;
    if (tag == 0xBF36)
        return sim_bpp_init(c, d, n, out, cap, outlen);
    if (c->bpp.stage >= BPP_SC_OPEN)
        return sim_bpp_command(c, d, n, out, cap, outlen);
    if (tlv_parse_exact(d, n, TLV_DER, &t) != IFPP_OK)
        return SW_WRONG_DATA;

    bool lpa_service = tag == 0xBF2D || tag == 0xBF33 || tag == 0xBF31 || tag == 0xBF32;
    if (lpa_service && c->n_otks > 0)
        return SW_CONDITIONS_NOT_SATISFIED; /* EUICCF04: no LPA services while One-time Keys remain */

    switch (tag) {
    case 0xBF3E: {
        tlv_builder b;
        const uint8_t *p;
        if (t.len != 3 || memcmp(t.value, "\x5c\x01\x5a", 3) != 0)
            return SW_WRONG_DATA;
        tlv_builder_init_fixed(&b, out, cap);
        tlv_begin(&b, 0xBF3E);
        tlv_put(&b, 0x5A, c->eid, 16);
        tlv_end(&b);
        return tlv_builder_finish(&b, &p, outlen) == IFPP_OK ? SW_OK : SW_UNKNOWN;
    }
    case 0xBF22:
        return euicc_sim_info2(c, out, cap, outlen) == IFPP_OK ? SW_OK : SW_UNKNOWN;
    case 0xBF2E: {
        tlv_builder b;
        const uint8_t *p;
        if (c->challenge_fixed)
            memcpy(c->challenge, c->fixed_challenge, 16);
        else if (crypto_random(c->challenge, 16) != IFPP_OK)
            return SW_UNKNOWN;
        c->challenge_valid = true;
        tlv_builder_init_fixed(&b, out, cap);
        tlv_begin(&b, 0xBF2E);
        tlv_put(&b, 0x80, c->challenge, 16);
        tlv_end(&b);
        return tlv_builder_finish(&b, &p, outlen) == IFPP_OK ? SW_OK : SW_UNKNOWN;
    }
    case 0xBF70:
        return sim_result(0xBF70, 0x02, sim_authorise_fpa(c, &t), out, cap, outlen);
    case 0xBF71:
        return sim_result(0xBF71, 0x02, sim_prepare_bpp_load(c, &t), out, cap, outlen);
    case 0xBF72:
        return sim_otk_info(c, out, cap, outlen);
    case 0xBF73:
        return sim_delete_otks(c, out, cap, outlen);
    case 0xBF2B:
        return sim_retrieve_notifications(c, &t, out, cap, outlen);
    case 0xBF28:
        return sim_list_notifications(c, &t, out, cap, outlen);
    case 0xBF30:
        return sim_notification_sent(c, &t, out, cap, outlen);
    case 0xBF2D:
        return sim_profile_info(c, out, cap, outlen);
    case 0xBF33:
        return sim_delete_profile(c, &t, out, cap, outlen);
    case 0xBF74:
        return sim_ifpp_capabilities(c, out, cap, outlen);
    case 0xBF75:
        return sim_conn_test(c, &t, out, cap, outlen);
    default:
        return SW_REFERENCED_DATA_NOT_FOUND;
    }
}

/* ===================================================================================== */
/* 5. The APDU layer                                                                      */
/* ===================================================================================== */

ifpp_err euicc_sim_reset(euicc_sim *c, uint8_t *atr, size_t cap, size_t *atr_len)
{
    /* T=1 card: TS 3B, T0 80 (TD1), TD1 80 (TD2, T=0), TD2 01 (T=1), TCK. T=0: no TD at all. */
    static const uint8_t atr_t1[] = {0x3B, 0x80, 0x80, 0x01, 0x01};
    static const uint8_t atr_t0[] = {0x3B, 0x02, 0x14, 0x50};
    const uint8_t *a = c->t0 ? atr_t0 : atr_t1;
    size_t an = c->t0 ? sizeof atr_t0 : sizeof atr_t1;

    sim_end_bpp(c);
    if (c->torn) {
        ifpp_err e = sim_reload(c);
        if (e != IFPP_OK)
            return e;
    }
    free(c->sd_buf);
    c->sd_buf = NULL;
    c->sd_len = 0;
    c->sd_next_block = -1;
    c->pending_len = c->pending_off = 0;
    c->channels_open = 1;
    c->isdr_selected = 0;
    c->fpa_authorised = false;
    c->challenge_valid = false;
    c->apdu_count = 0;
    c->torn = false;
    c->powered = true;
    if (atr) {
        if (cap < an)
            return IFPP_E_RANGE;
        memcpy(atr, a, an);
        *atr_len = an;
    }
    return IFPP_OK;
}

/* Puts data + sw into resp, or (T=0, data present) keeps the data and answers 61xx. */
static ifpp_err sim_respond(euicc_sim *c, const uint8_t *data, size_t n, uint16_t sw, size_t ne, uint8_t *resp,
                            size_t cap, size_t *resp_len)
{
    if (c->t0 && n > 0) {
        memmove(c->pending, data, n);
        c->pending_len = n;
        c->pending_off = 0;
        if (cap < 2)
            return IFPP_E_RANGE;
        resp[0] = 0x61;
        resp[1] = (uint8_t)(n > 255 ? 0 : n);
        *resp_len = 2;
        return IFPP_OK;
    }
    if (ne && n > ne) { /* more than asked for: T=1 answers what fits and 61xx for the rest */
        memmove(c->pending, data + ne, n - ne);
        c->pending_len = n - ne;
        c->pending_off = 0;
        n = ne;
        size_t left = c->pending_len;
        sw = (uint16_t)(0x6100 | (left > 255 ? 0 : left));
    }
    if (cap < n + 2)
        return IFPP_E_RANGE;
    if (n)
        memmove(resp, data, n);
    resp[n] = (uint8_t)(sw >> 8);
    resp[n + 1] = (uint8_t)sw;
    *resp_len = n + 2;
    return IFPP_OK;
}

static uint16_t sim_select(euicc_sim *c, const apdu_cmd *a, unsigned ch, uint8_t *out, size_t cap, size_t *n)
{
    *n = 0;
    if (a->p1 != 0x04 || (a->p2 != 0x00 && a->p2 != 0x0C))
        return SW_INCORRECT_P1P2;
    c->isdr_selected &= ~(1u << ch);
    c->fpa_authorised = false; /* a new selection starts a new session */
    sim_end_bpp(c);
    if (a->nc != sizeof ISDR_AID || memcmp(a->data, ISDR_AID, sizeof ISDR_AID) != 0)
        return SW_FILE_NOT_FOUND;
    c->isdr_selected |= 1u << ch;
    if (a->p2 == 0x00 && cap >= 20) { /* FCI: 6F { 84 <AID> } */
        out[0] = 0x6F;
        out[1] = 0x12;
        out[2] = 0x84;
        out[3] = 0x10;
        memcpy(out + 4, ISDR_AID, 16);
        *n = 20;
    }
    return SW_OK;
}

static uint16_t sim_manage_channel(euicc_sim *c, const apdu_cmd *a, unsigned ch, uint8_t *out, size_t *n)
{
    *n = 0;
    if (ch != 0)
        return SW_CONDITIONS_NOT_SATISFIED;
    if (a->p1 == 0x00 && a->p2 == 0x00) { /* open: the card picks */
        for (unsigned i = 1; i <= APDU_MAX_CHANNEL; i++) {
            if (!(c->channels_open & (1u << i))) {
                c->channels_open |= 1u << i;
                out[0] = (uint8_t)i;
                *n = 1;
                return SW_OK;
            }
        }
        return SW_LOGICAL_CHANNEL_UNSUPPORTED;
    }
    if (a->p1 == 0x80 && a->p2 >= 1 && a->p2 <= APDU_MAX_CHANNEL) { /* close */
        if (!(c->channels_open & (1u << a->p2)))
            return SW_INCORRECT_P1P2;
        c->channels_open &= ~(1u << a->p2);
        if (c->isdr_selected & (1u << a->p2)) {
            c->isdr_selected &= ~(1u << a->p2);
            c->fpa_authorised = false;
            sim_end_bpp(c);
        }
        return SW_OK;
    }
    return SW_INCORRECT_P1P2;
}

/*
 * Test hook for tests/asn1/: with IFPP_SIM_TRACE_DIR set, every IFPP-only ES10f request ('BF70'..'BF75')
 * and the card's answer are written there as <pid>-<n>-<ASN.1 type>.der, so the demo line's real
 * bytes can be decoded with the module docs/ifpp.asn compiles to. A write that fails is reported, not
 * fatal: the card answers the same either way.
 */
static void sim_trace(const uint8_t *req, size_t req_len, const uint8_t *resp, size_t resp_len)
{
    static const char *const names[6] = {"AuthoriseFpaServices", "PrepareBppLoad", "GetOneTimeKeyInfo",
                                         "DeleteOneTimeKeys", "GetIfppCapabilities", "ConnectivityTest"};
    static unsigned counter;
    const char *dir = getenv("IFPP_SIM_TRACE_DIR");
    uint32_t tag;
    size_t hdr, len;
    if (!dir || !*dir || tlv_peek_header(req, req_len, TLV_DER, &tag, &hdr, &len) != IFPP_OK || tag < 0xBF70 ||
        tag > 0xBF75)
        return;
    const struct { const char *kind; const uint8_t *p; size_t n; } parts[2] = {
        {"Request", req, req_len}, {"Response", resp, resp_len}};
    for (size_t i = 0; i < 2; i++) {
        char path[4096];
        if (parts[i].n == 0)
            continue;
        snprintf(path, sizeof path, "%s/%ld-%04u-%s%s.der", dir, (long)getpid(), counter++, names[tag - 0xBF70],
                 parts[i].kind);
        if (fs_write_atomic(path, parts[i].p, parts[i].n, 0600) != IFPP_OK)
            fprintf(stderr, "software eUICC: cannot write the trace file %s\n", path);
    }
}

/* STORE DATA block: chain by block number, run the command after the last block. */
static uint16_t sim_store_data(euicc_sim *c, const apdu_cmd *a, unsigned ch, uint8_t *out, size_t cap, size_t *n)
{
    *n = 0;
    if (!(c->isdr_selected & (1u << ch)))
        return SW_CONDITIONS_NOT_SATISFIED;
    if (a->p1 != APDU_STORE_DATA_MORE && a->p1 != APDU_STORE_DATA_LAST)
        return SW_INCORRECT_P1P2;
    int expected = c->sd_next_block < 0 ? 0 : c->sd_next_block;
    if (a->p2 != expected || (c->sd_next_block >= 0 && ch != c->sd_channel)) {
        free(c->sd_buf);
        c->sd_buf = NULL;
        c->sd_len = 0;
        c->sd_next_block = -1;
        return SW_INCORRECT_P1P2;
    }
    if (a->nc > SIM_MAX_COMMAND - c->sd_len) {
        free(c->sd_buf);
        c->sd_buf = NULL;
        c->sd_len = 0;
        c->sd_next_block = -1;
        return SW_NOT_ENOUGH_MEMORY;
    }
    if (!c->sd_buf && !(c->sd_buf = malloc(SIM_MAX_COMMAND)))
        return SW_NOT_ENOUGH_MEMORY;
    if (a->nc)
        memcpy(c->sd_buf + c->sd_len, a->data, a->nc);
    c->sd_len += a->nc;
    c->sd_channel = ch;
    if (a->p1 == APDU_STORE_DATA_MORE) {
        c->sd_next_block = expected + 1;
        return SW_OK;
    }
    uint16_t sw = sim_es10(c, c->sd_buf, c->sd_len, out, cap, n);
    sim_trace(c->sd_buf, c->sd_len, out, *n);
    free(c->sd_buf);
    c->sd_buf = NULL;
    c->sd_len = 0;
    c->sd_next_block = -1;
    return sw;
}

ifpp_err euicc_sim_transmit(euicc_sim *c, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap,
                            size_t *resp_len)
{
    uint8_t *work;
    uint8_t copy[APDU_CMD_MAX];
    apdu_cmd a;
    size_t out_len = 0;
    uint16_t sw;

    if (!c || !cmd || !resp || !resp_len)
        return IFPP_E_ARG;
    work = c->work;
    if (!c->powered)
        return IFPP_E_IO;
    c->apdu_count++;
    if (c->faults.tear_at_apdu && c->apdu_count == c->faults.tear_at_apdu) {
        c->powered = false; /* the DUT was pulled: no answer, volatile state gone */
        c->torn = true;
        return IFPP_E_IO;
    }
    if (n > sizeof copy)
        return sim_respond(c, NULL, 0, SW_WRONG_LENGTH, 0, resp, cap, resp_len);
    memcpy(copy, cmd, n);
    if (c->faults.flip_at_apdu && c->apdu_count == c->faults.flip_at_apdu && n > 5) {
        size_t bit = c->faults.flip_bit % ((n - 5) * 8);
        copy[5 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    if (apdu_parse(copy, n, &a) != IFPP_OK)
        return sim_respond(c, NULL, 0, SW_WRONG_LENGTH, 0, resp, cap, resp_len);

    unsigned ch = apdu_channel_of_cla(a.cla);
    if (ch > APDU_MAX_CHANNEL || !(c->channels_open & (1u << ch)))
        return sim_respond(c, NULL, 0, SW_LOGICAL_CHANNEL_UNSUPPORTED, 0, resp, cap, resp_len);

    if (a.ins == APDU_INS_GET_RESPONSE) {
        size_t left = c->pending_len - c->pending_off;
        if (left == 0)
            return sim_respond(c, NULL, 0, SW_CONDITIONS_NOT_SATISFIED, 0, resp, cap, resp_len);
        size_t give = a.ne && a.ne < left ? a.ne : left;
        if (give > 256 && c->t0)
            give = 256;
        uint16_t gsw = give < left ? (uint16_t)(0x6100 | ((left - give) > 255 ? 0 : (left - give))) : SW_OK;
        if (cap < give + 2)
            return IFPP_E_RANGE;
        memcpy(resp, c->pending + c->pending_off, give);
        c->pending_off += give;
        if (c->pending_off == c->pending_len)
            c->pending_len = c->pending_off = 0;
        resp[give] = (uint8_t)(gsw >> 8);
        resp[give + 1] = (uint8_t)gsw;
        *resp_len = give + 2;
        return IFPP_OK;
    }
    c->pending_len = c->pending_off = 0;

    if ((a.cla & 0x80) == 0 && a.ins == APDU_INS_SELECT)
        sw = sim_select(c, &a, ch, work, SIM_MAX_RESPONSE, &out_len);
    else if ((a.cla & 0x80) == 0 && a.ins == APDU_INS_MANAGE_CHANNEL)
        sw = sim_manage_channel(c, &a, ch, work, &out_len);
    else if ((a.cla & 0x80) && a.ins == APDU_INS_STORE_DATA)
        sw = sim_store_data(c, &a, ch, work, SIM_MAX_RESPONSE, &out_len);
    else if ((a.cla & 0x80) == 0 && (a.ins == APDU_INS_STORE_DATA))
        sw = SW_CLA_NOT_SUPPORTED;
    else
        sw = SW_INS_NOT_SUPPORTED;

    if (c->torn) /* a power-cut fault hit a persistent write */
        return IFPP_E_IO;
    return sim_respond(c, work, out_len, sw, c->t0 ? 0 : a.ne, resp, cap, resp_len);
}

/* ===================================================================================== */
/* 6. EUICCF05: the connectivity test of a loaded Profile (issue 15 item 5)               */
/* ===================================================================================== */

void euicc_sim_set_conn_test(euicc_sim *c, euicc_sim_conn_mode mode)
{
    c->conn_mode = (unsigned)mode < EUICC_SIM_CONN__COUNT ? mode : EUICC_SIM_CONN_OK;
}

unsigned euicc_sim_conn_tests(const euicc_sim *c) { return c->conn_tests; }

static const char *const sim_conn_names[EUICC_SIM_CONN__COUNT] = {
    "ok", "absent", "unknown", "no-network", "attach-rejected", "bad-signature", "wrong-iccid", "wrong-nonce",
    "left-enabled", "overlong",
};

bool euicc_sim_conn_mode_parse(const char *name, size_t len, euicc_sim_conn_mode *mode)
{
    for (int i = 0; i < EUICC_SIM_CONN__COUNT; i++)
        if (strlen(sim_conn_names[i]) == len && !strncmp(name, sim_conn_names[i], len)) {
            *mode = (euicc_sim_conn_mode)i;
            return true;
        }
    return false;
}

/* BF74 GetIfppCapabilities: connectivityTest(0) unless the card is set not to offer it. */
static uint16_t sim_ifpp_capabilities(euicc_sim *c, uint8_t *out, size_t cap, size_t *n)
{
    tlv_builder b;
    const uint8_t *p;
    if (c->conn_mode == EUICC_SIM_CONN_UNKNOWN)
        return SW_REFERENCED_DATA_NOT_FOUND;
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, 0xBF74);
    if (c->conn_mode == EUICC_SIM_CONN_ABSENT)
        tlv_put(&b, 0x80, "\x00", 1); /* no bit set: DER drops them all */
    else
        tlv_put(&b, 0x80, "\x07\x80", 2);
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n) == IFPP_OK ? SW_OK : SW_UNKNOWN;
}

/*
 * BF75 ConnectivityTest: the named Profile is enabled, the attach tried, the Profile disabled again
 * (GENF03), all in volatile state: the NVM never holds it enabled. Leaving it enabled is not offered
 * by this card (notSupported). The answer is signed like a PIR, over the station's nonce.
 */
static uint16_t sim_conn_test(euicc_sim *c, const tlv *req, uint8_t *out, size_t cap, size_t *n)
{
    tlv_reader top, r;
    tlv iccid, nonce, limit, leave;
    uint64_t secs;
    if (c->conn_mode == EUICC_SIM_CONN_UNKNOWN || c->conn_mode == EUICC_SIM_CONN_ABSENT)
        return SW_REFERENCED_DATA_NOT_FOUND;
    tlv_reader_init(&top, req->raw, req->raw_len, TLV_DER);
    if (tlv_reader_enter(&top, req, &r) != IFPP_OK || tlv_reader_expect(&r, 0x5A, &iccid) != IFPP_OK || iccid.len != 10 ||
        tlv_reader_expect(&r, 0x80, &nonce) != IFPP_OK || nonce.len != 16 || tlv_reader_expect(&r, 0x81, &limit) != IFPP_OK ||
        tlv_get_uint(&limit, &secs) != IFPP_OK || secs < 1 || secs > 600)
        return SW_WRONG_DATA;
    bool leave_enabled = tlv_reader_expect(&r, 0x82, &leave) == IFPP_OK;
    if ((leave_enabled && (leave.len != 1 || leave.value[0] != 0xFF)) || !tlv_reader_done(&r))
        return SW_WRONG_DATA; /* DER: FALSE is never encoded, TRUE is FF */
    c->conn_tests++;
    uint8_t result = 0, state = 0;
    bool found = false;
    for (size_t i = 0; i < c->n_profiles && !found; i++)
        found = memcmp(c->profiles[i].iccid, iccid.value, 10) == 0;
    if (!c->fpa_authorised)
        result = 6; /* fpaNotAuthorised: the means is the Device Manufacturer's (EUICCF02) */
    else if (!found)
        result = 4; /* profileNotFound */
    else if (leave_enabled)
        result = 5; /* notSupported: this card always restores the Profile */
    else if (c->conn_mode == EUICC_SIM_CONN_NO_NETWORK)
        result = 1;
    else if (c->conn_mode == EUICC_SIM_CONN_ATTACH_REJECTED)
        result = 2;
    if (c->conn_mode == EUICC_SIM_CONN_LEFT_ENABLED)
        state = 1;
    uint8_t signed_part[128], wrong[16];
    const uint8_t *sp, *p;
    size_t sn;
    tlv_builder b;
    memcpy(wrong, nonce.value, 16);
    wrong[0] ^= 0x01;
    static const uint8_t other_iccid[10] = {0x98, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x54, 0xF6};
    tlv_builder_init_fixed(&b, signed_part, sizeof signed_part);
    tlv_begin(&b, 0x30);
    tlv_put(&b, 0x5A, c->eid, 16);
    tlv_put(&b, 0x80, c->conn_mode == EUICC_SIM_CONN_WRONG_ICCID ? other_iccid : iccid.value, 10);
    tlv_put(&b, 0x81, c->conn_mode == EUICC_SIM_CONN_WRONG_NONCE ? wrong : nonce.value, 16);
    tlv_put_uint(&b, 0x82, result);
    tlv_put_uint(&b, 0x83, state);
    if (result == 0)
        tlv_put(&b, 0x84, "\x00\xF1\x10", 3); /* MCC 001, MNC 01: the test PLMN */
    tlv_end(&b);
    if (tlv_builder_finish(&b, &sp, &sn) != IFPP_OK)
        return SW_UNKNOWN;
    tlv_builder_init_fixed(&b, out, cap);
    tlv_begin(&b, 0xBF75);
    tlv_put_raw(&b, sp, sn);
    if (c->conn_mode == EUICC_SIM_CONN_BAD_SIGNATURE) {
        uint8_t other[128];
        memcpy(other, sp, sn);
        other[sn - 1] ^= 0x01; /* a valid signature, over other bytes */
        sim_put_signature(c, &b, other, sn);
    } else {
        sim_put_signature(c, &b, sp, sn);
    }
    if (c->conn_mode == EUICC_SIM_CONN_OVERLONG) {
        static const uint8_t pad[1024];
        tlv_put(&b, 0x04, pad, sizeof pad); /* strictly: also a field no ConnectivityTestResponse has */
    }
    tlv_end(&b);
    return tlv_builder_finish(&b, &p, n) == IFPP_OK ? SW_OK : SW_UNKNOWN;
}
