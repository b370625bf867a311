/*
 * export.c -- the BPP request (ESBPP02) and the Profile Loading Report (ESBPP03); see export.h and
 * docs/ifpp.asn. Both carry the head of the store's audit chain (auditAnchor), read in the same
 * snapshot as their records, so a later rewrite or truncation of the log shows against them.
 * Nothing is signed with a key that does not belong to the station certificate, and nothing is
 * written that does not verify.
 */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "bundle_stream.h"
#include "es10.h"
#include "fsutil.h"
#include "hex.h"
#include "label.h"
#include "media.h"
#include "pir.h"
#include "report_html.h"
#include "tlv.h"

typedef struct {
    tlv_builder *b;
    const char *profile_type;
    size_t items;
} request_ctx;

/* The station key must be the one the station certificate names, or the bundle verifies for no one. */
static ifpp_err export_key_matches(const crypto_key *key, const cert *station_cert, char *why, size_t why_len)
{
    uint8_t a[CRYPTO_EC_PUB_LEN], b[CRYPTO_EC_PUB_LEN];
    crypto_key *ck = NULL;
    ifpp_err e = cert_public_key(station_cert, &ck);
    if (e == IFPP_OK && (e = crypto_key_public(key, a)) == IFPP_OK && (e = crypto_key_public(ck, b)) == IFPP_OK &&
        (crypto_key_curve(key) != crypto_key_curve(ck) || !crypto_equal_ct(a, b, sizeof a)))
        e = IFPP_E_BAD_KEY;
    crypto_key_free(ck);
    if (e == IFPP_E_BAD_KEY)
        err_why(why, why_len, "the station key is not the key of the station certificate: nothing was signed");
    else if (e != IFPP_OK)
        err_why(why, why_len, "the station key or certificate is unusable (%s): nothing was signed", err_str(e));
    return e;
}

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

/*
 * Opens a station bundle's content: version 1, a fresh 16-byte id, the station id, the period
 * (reports only: start and end not NULL), the EUM certificates; then opens the item list.
 */
static ifpp_err export_begin(tlv_builder *b, store *s, size_t max, const char *station_id, const char *start,
                             const char *end)
{
    uint8_t id[16];
    tlv_builder_init_dynamic(b, max);
    ifpp_err re = crypto_random(id, sizeof id);
    if (re != IFPP_OK)
        return re; /* no bundle id from a failed generator */
    tlv_begin(b, 0x30);
    tlv_put_uint(b, 0x02, 1);
    tlv_put(b, 0x04, id, sizeof id);
    tlv_put(b, 0x0C, station_id, strlen(station_id));
    if (start && end) {
        tlv_put(b, 0x18, start, 15);
        tlv_put(b, 0x18, end, 15);
    }
    tlv_begin(b, 0x30);
    ifpp_err e = store_each_eum_cert(s, put_eum, b);
    tlv_end(b);
    tlv_begin(b, 0x30);
    return e;
}

/* Closes the item list, adds the audit anchor, closes the content and seals it with the station's key. */
static ifpp_err export_seal(tlv_builder *b, bundle_type t, const store_anchor *anchor, const crypto_key *key,
                            const cert *station_cert, uint8_t **out, size_t *out_len)
{
    const uint8_t *content;
    size_t n;
    tlv_end(b);
    tlv_begin(b, 0xA5); /* auditAnchor */
    tlv_put_uint(b, 0x02, anchor->entry);
    tlv_put(b, 0x04, anchor->hash, sizeof anchor->hash);
    tlv_end(b);
    tlv_end(b);
    ifpp_err e = tlv_builder_finish(b, &content, &n);
    if (e == IFPP_OK) {
        const cert *chain[1] = {station_cert};
        e = bundle_seal(t, content, n, key, chain, 1, out, out_len);
    }
    return e;
}

/* A name that goes into a bundle must be a plain label (common/label.h); why says which. */
static bool export_label_ok(const char *what, const char *v, char *why, size_t why_len)
{
    if (label_valid(v, strlen(v)))
        return true;
    err_why(why, why_len, "%s must be a plain name (1..%d of A-Z a-z 0-9 . _ -, not starting with . or -)", what,
            LABEL_MAX);
    return false;
}

typedef struct {
    request_ctx *c;
    const char *station_id;
    store_anchor anchor;
} request_read;

/* The request's records and the audit head, in one snapshot of the store. */
static ifpp_err export_request_read(store *s, void *arg)
{
    request_read *r = arg;
    ifpp_err e = export_begin(r->c->b, s, 256u << 20, r->station_id, NULL, NULL);
    if (e == IFPP_OK)
        e = store_each_unbound_key(s, put_item, r->c);
    if (e == IFPP_OK)
        e = store_audit_head(s, &r->anchor);
    return e;
}

ifpp_err export_bpp_request(store *s, const char *station_id, const char *profile_type, const crypto_key *station_key,
                            const cert *station_cert, uint8_t **out, size_t *out_len, size_t *items, char *why,
                            size_t why_len)
{
    tlv_builder b;
    request_ctx c = {.b = &b, .profile_type = profile_type};
    ifpp_err e;
    if (!s || !station_id || !profile_type || !station_key || !station_cert || !out || !out_len)
        return IFPP_E_ARG;
    if (!export_label_ok("the station id", station_id, why, why_len) ||
        !export_label_ok("the profile type", profile_type, why, why_len))
        return IFPP_E_ARG;
    if ((e = export_key_matches(station_key, station_cert, why, why_len)) != IFPP_OK)
        return e;
    memset(&b, 0, sizeof b);
    request_read r = {.c = &c, .station_id = station_id};
    e = store_read(s, export_request_read, &r);
    if (e != IFPP_OK)
        err_why(why, why_len, "cannot read the store for the BPP request: %s", *store_errmsg(s) ? store_errmsg(s) : err_str(e));
    if (e == IFPP_OK && c.items == 0) {
        err_why(why, why_len, "no One-time Key without a BPP: nothing to request (import an eUICC data package first)");
        e = IFPP_E_NOT_FOUND;
    }
    if (e == IFPP_OK)
        e = export_seal(&b, BUNDLE_BPP_REQUEST, &r.anchor, station_key, station_cert, out, out_len);
    tlv_builder_free(&b);
    if (items)
        *items = c.items;
    return e;
}

typedef struct {
    tlv_builder *b;
    export_summary *sum;
} report_ctx;

/* "2026-11-25T10:15:00Z" -> "20261125101500Z" (GeneralizedTime). */
static void export_gentime(const char *iso, char out[16])
{
    int j = 0;
    for (int i = 0; iso && iso[i] && j < 14; i++)
        if (iso[i] >= '0' && iso[i] <= '9')
            out[j++] = iso[i];
    while (j < 14)
        out[j++] = '0';
    out[14] = 'Z';
    out[15] = '\0';
}

static ifpp_err put_result(void *arg, const store_result_record *r)
{
    report_ctx *c = arg;
    tlv_builder *b = c->b;
    tlv_begin(b, 0x30);
    tlv_put(b, 0x80, r->txid, r->txid_len);
    tlv_put(b, 0x5A, r->eid, 16);
    if (r->dut_serial)
        tlv_put(b, 0x81, r->dut_serial, strlen(r->dut_serial));
    if (r->pir_len) {
        tlv_put_raw(b, r->euicc_cert, r->euicc_cert_len);
        tlv_put_raw(b, r->pir, r->pir_len); /* byte for byte as the eUICC signed it */
        c->sum->pirs++;
    } else {
        char at[16];
        static const char deleted[] = "One-time Key deleted at the end of production before this BPP was used";
        static const char failed[] = "no PIR: the eUICC kept no evidence of this BPP";
        export_gentime(r->updated_at, at);
        tlv_begin(b, 0xA2);
        tlv_put_uint(b, 0x02, r->state == BPP_DELETED ? 5 /* bppNotUsed */ : 4 /* interruptedNoEvidence */);
        if (r->state == BPP_DELETED)
            tlv_put(b, 0x0C, deleted, sizeof deleted - 1);
        else
            tlv_put(b, 0x0C, failed, sizeof failed - 1);
        tlv_put(b, 0x18, at, 15);
        tlv_end(b);
        c->sum->no_result++;
    }
    c->sum->results++;
    return tlv_end(b);
}

/* ---- the Profile Loading Report streamed onto a medium (bounded memory, issue 15) ------------ */

/*
 * A SignedBundle is DER: every length comes before its value. So the report is walked twice in one
 * read snapshot of the store: once to measure every record (each encoded by put_result, the same
 * encoder as the in-memory report), once to write it, hashing the [0] TLV as it passes; the
 * signature over that hash and the signer chain come last, as the format puts them. Memory: one
 * record at a time.
 */
#define EXPORT_ROW_BYTES 512 /* room asked for each result's CSV row and its share of the HTML */

typedef struct {
    media_file *f;          /* NULL in the measuring pass */
    crypto_sha256_ctx h;    /* the [0] TLV, in the writing pass */
    uint64_t eums_len, results_len;
    export_summary sum;
    ifpp_err err;
} stream_ctx;

static void stream_emit(stream_ctx *c, const void *p, size_t n, bool hashed)
{
    if (!c->f)
        return;
    media_file_write(c->f, p, n);
    if (hashed && crypto_sha256_update(&c->h, p, n) != IFPP_OK && c->err == IFPP_OK)
        c->err = IFPP_E_CRYPTO;
}

/* A DER header (tag, definite length) emitted; returns its size. */
static size_t stream_header(stream_ctx *c, uint32_t tag, uint64_t len, bool hashed)
{
    uint8_t h[16];
    size_t n = 0, t = tlv_tag_size(tag);
    for (size_t i = t; i > 0; i--)
        h[n++] = (uint8_t)(tag >> (8 * (i - 1)));
    n += tlv_encode_length((size_t)len, h + n);
    stream_emit(c, h, n, hashed);
    return n;
}

static uint64_t stream_tlv_size(uint32_t tag, uint64_t len)
{
    uint8_t l[16];
    return tlv_tag_size(tag) + tlv_encode_length((size_t)len, l) + len;
}

static ifpp_err stream_eum(void *arg, const uint8_t *der, size_t n)
{
    stream_ctx *c = arg;
    c->eums_len += n;
    stream_emit(c, der, n, true);
    return c->f ? c->f->err : IFPP_OK;
}

static ifpp_err stream_result(void *arg, const store_result_record *r)
{
    stream_ctx *c = arg;
    tlv_builder b;
    report_ctx rc = {.b = &b, .sum = &c->sum};
    const uint8_t *p;
    size_t n;
    tlv_builder_init_dynamic(&b, 1u << 20); /* one record: an eUICC certificate and a PIR */
    ifpp_err e = put_result(&rc, r);
    if (e == IFPP_OK && (e = tlv_builder_finish(&b, &p, &n)) == IFPP_OK) {
        c->results_len += n;
        stream_emit(c, p, n, true);
        e = c->f ? c->f->err : IFPP_OK;
    }
    tlv_builder_free(&b);
    return e;
}

typedef struct {
    const char *station_id, *day; /* day NULL: every final result (export_loading_report) */
    const char *period;           /* "YYYY-MM-DD" of periodStart and periodEnd */
    const crypto_key *key;
    const cert *station_cert, *dm_root;
    int dirfd;
    media_file *f;
    export_day_summary *sum;
    bool written; /* the report's file was committed (or given up by the commit itself) */
    stream_ctx c;
    char *why;
    size_t why_len;
} stream_job;

/*
 * A station-signed bundle written in two passes over one read snapshot, as the streamed Profile
 * Loading Report above is: content = head (the DER of its first elements), the EUM certificates, the
 * records (emitted by `records`, measuring when c->f is NULL), the audit anchor. Memory: one record.
 */
typedef struct {
    bundle_type type;
    const uint8_t *head;
    size_t head_n;
    ifpp_err (*records)(store *s, stream_ctx *c, void *arg);
    void *arg;
    const crypto_key *key;
    const cert *station_cert;
    size_t record_room;  /* bytes of other files (the CSV) written beside it per record: the space check counts them */
    int dirfd;
    media_file *f;
    char *why;
    size_t why_len;
} stream_bundle;

static ifpp_err stream_bundle_write(store *s, stream_bundle *sb, stream_ctx *c)
{
    tlv_builder ab, cb;
    const uint8_t *anchor_der, *chain, *cd;
    size_t anchor_n, chain_n, cd_n;
    store_anchor anchor;
    uint8_t oid[32], sig[CRYPTO_SIG_RAW_LEN], digest[CRYPTO_SHA256_LEN];
    size_t oid_n = bundle_type_oid(sb->type, oid, sizeof oid), siglen = sizeof sig;
    ifpp_err e;
    memset(c, 0, sizeof *c);
    if (!oid_n)
        return IFPP_E_INTERNAL;
    if ((e = store_each_eum_cert(s, stream_eum, c)) != IFPP_OK || (e = sb->records(s, c, sb->arg)) != IFPP_OK ||
        (e = store_audit_head(s, &anchor)) != IFPP_OK)
        return e;
    uint64_t eums_len = c->eums_len, results_len = c->results_len;
    size_t counted = c->sum.results;
    memset(&ab, 0, sizeof ab);
    memset(&cb, 0, sizeof cb);
    tlv_builder_init_dynamic(&ab, 256);
    tlv_begin(&ab, 0xA5);
    tlv_put_uint(&ab, 0x02, anchor.entry);
    tlv_put(&ab, 0x04, anchor.hash, sizeof anchor.hash);
    tlv_end(&ab);
    tlv_builder_init_dynamic(&cb, 1u << 16);
    tlv_begin(&cb, 0xA1);
    cert_der(sb->station_cert, &cd, &cd_n);
    tlv_put_raw(&cb, cd, cd_n);
    tlv_end(&cb);
    if ((e = tlv_builder_finish(&ab, &anchor_der, &anchor_n)) != IFPP_OK ||
        (e = tlv_builder_finish(&cb, &chain, &chain_n)) != IFPP_OK)
        goto out;
    uint64_t content_len = sb->head_n + stream_tlv_size(0x30, eums_len) + stream_tlv_size(0x30, results_len) + anchor_n;
    uint64_t wrapped_len = stream_tlv_size(0x30, content_len);
    uint64_t outer_len = stream_tlv_size(0x06, oid_n) + stream_tlv_size(0xA0, wrapped_len) + chain_n +
                         stream_tlv_size(0x5F37, CRYPTO_SIG_RAW_LEN);
    char mwhy[256] = "";
    if ((e = media_check_space(sb->dirfd, stream_tlv_size(0x30, outer_len) + sb->record_room * counted + (1u << 20),
                               mwhy, sizeof mwhy)) != IFPP_OK) {
        err_why(sb->why, sb->why_len, "%s", mwhy);
        goto out;
    }
    memset(c, 0, sizeof *c);
    c->f = sb->f;
    if ((e = crypto_sha256_init(&c->h)) != IFPP_OK)
        goto out;
    stream_header(c, 0x30, outer_len, false);
    stream_header(c, 0x06, oid_n, false);
    stream_emit(c, oid, oid_n, false);
    stream_header(c, 0xA0, wrapped_len, true);
    stream_header(c, 0x30, content_len, true);
    stream_emit(c, sb->head, sb->head_n, true);
    stream_header(c, 0x30, eums_len, true);
    if ((e = store_each_eum_cert(s, stream_eum, c)) == IFPP_OK) {
        stream_header(c, 0x30, results_len, true);
        e = sb->records(s, c, sb->arg);
    }
    stream_emit(c, anchor_der, anchor_n, true);
    if (e == IFPP_OK && (c->eums_len != eums_len || c->results_len != results_len || c->sum.results != counted))
        e = IFPP_E_INTERNAL; /* one snapshot: the two passes cannot differ */
    if (e == IFPP_OK)
        e = c->err;
    if (e != IFPP_OK) {
        crypto_sha256_abort(&c->h);
        goto out;
    }
    if ((e = crypto_sha256_final(&c->h, digest)) != IFPP_OK ||
        (e = crypto_ecdsa_sign_digest(sb->key, digest, CRYPTO_SIG_RAW, sig, &siglen)) != IFPP_OK)
        goto out;
    stream_emit(c, chain, chain_n, false);
    stream_header(c, 0x5F37, siglen, false);
    stream_emit(c, sig, siglen, false);
out:
    tlv_builder_free(&ab);
    tlv_builder_free(&cb);
    return e;
}

/* The Profile Loading Report's records: the day's final results (every one when day is NULL). */
static ifpp_err result_records(store *s, stream_ctx *c, void *arg)
{
    const stream_job *j = arg;
    return store_each_result(s, j->day, stream_result, c);
}

/* Both passes in one snapshot (the counts and the bytes agree); the caller commits the file. */
static ifpp_err stream_read(store *s, void *arg)
{
    stream_job *j = arg;
    tlv_builder hb;
    const uint8_t *head;
    size_t head_n;
    uint8_t id[16];
    char start[16], end[16];
    ifpp_err e;
    snprintf(start, sizeof start, "%.4s%.2s%.2s000000Z", j->period, j->period + 5, j->period + 8);
    snprintf(end, sizeof end, "%.4s%.2s%.2s235959Z", j->period, j->period + 5, j->period + 8);
    if ((e = crypto_random(id, sizeof id)) != IFPP_OK)
        return e;
    memset(&hb, 0, sizeof hb);
    tlv_builder_init_dynamic(&hb, 4096); /* version, reportId, stationId, periodStart, periodEnd */
    tlv_put_uint(&hb, 0x02, 1);
    tlv_put(&hb, 0x04, id, sizeof id);
    tlv_put(&hb, 0x0C, j->station_id, strlen(j->station_id));
    tlv_put(&hb, 0x18, start, 15);
    tlv_put(&hb, 0x18, end, 15);
    if ((e = tlv_builder_finish(&hb, &head, &head_n)) == IFPP_OK) {
        stream_bundle sb = {.type = BUNDLE_LOADING_REPORT, .head = head, .head_n = head_n, .records = result_records,
                            .arg = j, .key = j->key, .station_cert = j->station_cert, .record_room = EXPORT_ROW_BYTES,
                            .dirfd = j->dirfd, .f = j->f, .why = j->why, .why_len = j->why_len};
        e = stream_bundle_write(s, &sb, &j->c);
    }
    tlv_builder_free(&hb);
    return e;
}

static ifpp_err verify_file(FILE *f, size_t size, const cert *dm_root, const cert *ci, time_t now, bool sig_first,
                            export_verify_summary *sum, char *why, size_t why_len);

/* What a media check expects to read back: a bundle of this type under this root. */
typedef struct {
    const cert *root;
    bundle_type type;
} stream_check_arg;

/* A bundle as it lies on the medium: verified as `ifppctl verify` verifies it (every element; no CI here). */
static ifpp_err stream_check_bundle(FILE *in, size_t size, void *arg, char *why, size_t why_len)
{
    const stream_check_arg *a = arg;
    export_verify_summary vs;
    ifpp_err e = verify_file(in, size, a->root, NULL, time(NULL), false, &vs, why, why_len);
    if (e == IFPP_OK && vs.type != a->type)
        e = IFPP_E_TLV_UNEXPECTED_TAG;
    if (e != IFPP_OK && why && !*why)
        err_why(why, why_len, "the %s on the medium does not verify: %s", bundle_type_name(a->type), err_str(e));
    return e;
}

/* The Profile Loading Report as it lies on the medium. */
static ifpp_err stream_check(FILE *in, size_t size, void *arg, char *why, size_t why_len)
{
    stream_check_arg a = {.root = arg, .type = BUNDLE_LOADING_REPORT};
    return stream_check_bundle(in, size, &a, why, why_len);
}

/* All three files from one read snapshot, so the CSV and the HTML count what the signed report holds. */
static ifpp_err day_read(store *s, void *arg)
{
    stream_job *j = arg;
    ifpp_err e = stream_read(s, j);
    if (e != IFPP_OK)
        return e;
    j->sum->plr = j->c.sum;
    j->written = true; /* the commit removes its temporary itself on failure */
    if ((e = media_file_commit_checked(j->f, stream_check, (void *)j->dm_root, j->why, j->why_len)) != IFPP_OK)
        return e;
    return report_write_tables(s, j->station_id, j->day, j->dirfd, j->sum->csv_name, j->sum->html_name,
                               &j->sum->tables, j->why, j->why_len); /* joins this snapshot (store_read nests) */
}

ifpp_err export_day_to_media(store *s, const char *station_id, const char *day, const crypto_key *station_key,
                             const cert *station_cert, const cert *dm_root, const char *dir, export_day_summary *sum,
                             char *why, size_t why_len)
{
    int dirfd = -1;
    media_file *f = NULL;
    ifpp_err e;
    if (!s || !station_id || !day || !station_key || !station_cert || !dm_root || !dir || !sum)
        return IFPP_E_ARG;
    memset(sum, 0, sizeof *sum);
    if (!label_day_valid(day)) {
        err_why(why, why_len, "day '%s' is not a calendar day as YYYY-MM-DD", day);
        return IFPP_E_ARG;
    }
    if (!export_label_ok("the station id", station_id, why, why_len))
        return IFPP_E_ARG;
    if ((e = media_open_dest(dir, store_path(s), &dirfd, why, why_len)) != IFPP_OK)
        return e;
    char mwhy[256] = "";
    if ((e = media_clean_temps(dirfd, &sum->stale_removed, mwhy, sizeof mwhy)) != IFPP_OK) {
        err_why(why, why_len, "%s: %s", dir, mwhy);
        goto out;
    }
    if ((e = export_key_matches(station_key, station_cert, why, why_len)) != IFPP_OK)
        goto out;
    snprintf(sum->plr_name, sizeof sum->plr_name, "ifpp-%s-%s-loading-report.der", station_id, day);
    snprintf(sum->csv_name, sizeof sum->csv_name, "ifpp-%s-%s-duts.csv", station_id, day);
    snprintf(sum->html_name, sizeof sum->html_name, "ifpp-%s-%s-summary.html", station_id, day);
    if (!(f = calloc(1, sizeof *f))) {
        e = IFPP_E_NOMEM;
        goto out;
    }
    /* the report streamed onto the medium, then read back (SHA-256) and verified there before it is renamed */
    if ((e = media_file_begin(f, dirfd, sum->plr_name, why, why_len)) != IFPP_OK)
        goto out;
    stream_job j = {.station_id = station_id, .day = day, .period = day, .key = station_key, .station_cert = station_cert,
                    .dirfd = dirfd, .f = f, .dm_root = dm_root, .sum = sum, .why = why, .why_len = why_len};
    why[0] = '\0';
    e = store_read(s, day_read, &j);
    if (e != IFPP_OK && !j.written) {
        if (!*why)
            err_why(why, why_len, "cannot write the Profile Loading Report: %s",
                    f->err ? (f->sys_errno ? strerror(f->sys_errno) : err_str(f->err))
                           : *store_errmsg(s) ? store_errmsg(s) : err_str(e));
        media_file_abort(f);
    }
out:
    free(f);
    if (dirfd >= 0)
        close(dirfd);
    return e;
}

/* The streamed report's file committed (media.h: read back, verified as `verify` does, renamed). */
static ifpp_err report_read(store *s, void *arg)
{
    stream_job *j = arg;
    ifpp_err e = stream_read(s, j);
    if (e != IFPP_OK)
        return e;
    j->written = true;
    return media_file_commit_checked(j->f, stream_check, (void *)j->dm_root, j->why, j->why_len);
}

ifpp_err export_loading_report(store *s, const char *station_id, const char *day, const crypto_key *station_key,
                               const cert *station_cert, const cert *dm_root, const char *path,
                               export_summary *sum, char *why, size_t why_len)
{
    char period[11], dir[4096];
    ifpp_err e;
    if (!s || !station_id || !station_key || !station_cert || !dm_root || !path || !sum)
        return IFPP_E_ARG;
    memset(sum, 0, sizeof *sum);
    if (store_owns_path(s, path)) {
        err_why(why, why_len, "%s is the station store (or its journal): the report would replace it; choose another "
                "output", path);
        return IFPP_E_ARG;
    }
    if (!export_label_ok("the station id", station_id, why, why_len))
        return IFPP_E_ARG;
    if (day && !label_day_valid(day)) {
        err_why(why, why_len, "day '%s' is not a calendar day as YYYY-MM-DD", day);
        return IFPP_E_ARG;
    }
    if ((e = export_key_matches(station_key, station_cert, why, why_len)) != IFPP_OK)
        return e;
    if (day) {
        snprintf(period, sizeof period, "%s", day);
    } else { /* everything final: the period is today's */
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(period, sizeof period, "%Y-%m-%d", &tm);
    }
    /* the file's directory and name: written there under a temporary name, as on removable media */
    const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
    if (!*name || strlen(name) >= MEDIA_NAME_MAX || (slash && (size_t)(slash - path) >= sizeof dir)) {
        err_why(why, why_len, "%s: not a file name the report can be written under", path);
        return IFPP_E_ARG;
    }
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 1, slash ? path : ".");
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        err_why(why, why_len, "cannot open the directory of %s: %s", path, strerror(errno));
        return IFPP_E_IO;
    }
    media_file *f = calloc(1, sizeof *f);
    if (!f) {
        close(dirfd);
        return IFPP_E_NOMEM;
    }
    why[0] = '\0';
    export_day_summary ds; /* stream_job's; only its plr part is used here */
    memset(&ds, 0, sizeof ds);
    stream_job j = {.station_id = station_id, .day = day, .period = period, .key = station_key,
                    .station_cert = station_cert, .dirfd = dirfd, .f = f, .dm_root = dm_root, .sum = &ds, .why = why,
                    .why_len = why_len};
    if ((e = media_file_begin(f, dirfd, name, why, why_len)) == IFPP_OK) {
        e = store_read(s, report_read, &j);
        if (e != IFPP_OK && !j.written) {
            if (!*why)
                err_why(why, why_len, "cannot write the Profile Loading Report %s: %s", path,
                        f->err ? (f->sys_errno ? strerror(f->sys_errno) : err_str(f->err))
                               : *store_errmsg(s) ? store_errmsg(s) : err_str(e));
            media_file_abort(f);
        }
    }
    if (e == IFPP_OK)
        *sum = j.c.sum;
    free(f);
    close(dirfd);
    return e;
}

/* ---- verify: any exported bundle, offline, streamed from its file (issues 15.3, 16.3) -------- */

#define EXPORT_VERIFY_EUMS 16        /* EUM certificates a report may carry */
#define EXPORT_VERIFY_ELEMENT (1u << 20) /* the largest element read whole: one result, one certificate */

/* One LoadingResult: its PIR checked (DPFF06) under the report's EUM certificates and ci, and bound to its txid. */
static ifpp_err verify_result(const tlv *item, const cert *const *eums, size_t n_eums, const cert *ci, time_t now,
                              export_verify_summary *sum, char *why, size_t why_len)
{
    tlv_reader items, r;
    tlv txid, eid, el;
    char vwhy[256] = "";
    size_t no = sum->records + 1;
    ifpp_err e;
    tlv_reader_init(&items, item->raw, item->raw_len, TLV_DER);
    if (item->tag != 0x30 || (e = tlv_reader_enter(&items, item, &r)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x80, &txid)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x5A, &eid)) != IFPP_OK ||
        (e = tlv_reader_next(&r, &el)) != IFPP_OK) {
        e = item->tag != 0x30 ? IFPP_E_TLV_UNEXPECTED_TAG : e;
        err_why(why, why_len, "result %zu: malformed (%s)", no, err_str(e));
        return e;
    }
    if (txid.len == 0 || txid.len > 16 || eid.len != 16) {
        err_why(why, why_len, "result %zu: transaction id or EID of a wrong length", no);
        return IFPP_E_RANGE;
    }
    if (el.tag == 0x81 && (e = tlv_reader_next(&r, &el)) != IFPP_OK) {
        err_why(why, why_len, "result %zu: nothing after the serial (%s)", no, err_str(e));
        return e;
    }
    if (el.tag == 0xA2) {
        sum->no_result++;
    } else if (el.tag == 0x30) {
        cert *ec = NULL;
        tlv p;
        pir_info pir;
        /* without a CI the certificate checks nothing: its TLV suffices, and a million of them parse in no time */
        if ((ci && (e = cert_parse_der(el.raw, el.raw_len, &ec)) != IFPP_OK) ||
            (e = tlv_reader_expect(&r, 0xBF37, &p)) != IFPP_OK ||
            (e = pir_parse(p.raw, p.raw_len, &pir)) != IFPP_OK) {
            cert_free(ec);
            err_why(why, why_len, "result %zu: the eUICC certificate or PIR does not parse (%s)", no, err_str(e));
            return e;
        }
        if (!ci) {
            sum->pirs_unchecked++;
        } else if ((e = pir_check(&pir, ec, eums, n_eums, ci, now, vwhy, sizeof vwhy)) != IFPP_OK) {
            cert_free(ec);
            err_why(why, why_len, "result %zu: its PIR does not verify: %s", no, vwhy);
            return e;
        } else {
            sum->pirs++;
        }
        cert_free(ec);
        if (pir.transaction_id_len != txid.len || memcmp(pir.transaction_id, txid.value, txid.len) != 0) {
            err_why(why, why_len, "result %zu: its PIR is for another BPP (transaction id differs)", no);
            return IFPP_E_SIGNATURE;
        }
    } else {
        err_why(why, why_len, "result %zu: neither a PIR nor a NoResultRecord (tag %X)", no, (unsigned)el.tag);
        return IFPP_E_TLV_UNEXPECTED_TAG;
    }
    if (!tlv_reader_done(&r)) {
        err_why(why, why_len, "result %zu: bytes after its outcome", no);
        return IFPP_E_TLV_TRAILING;
    }
    sum->records++;
    return IFPP_OK;
}

/* The auditAnchor element ('A5', the content's last): entry number and hash. */
static ifpp_err verify_anchor(const tlv *a, store_anchor *out)
{
    tlv_reader r0, ar;
    tlv entry, hash;
    uint64_t v;
    ifpp_err e;
    tlv_reader_init(&r0, a->raw, a->raw_len, TLV_DER);
    if ((e = tlv_reader_enter(&r0, a, &ar)) != IFPP_OK || (e = tlv_reader_expect(&ar, 0x02, &entry)) != IFPP_OK ||
        (e = tlv_get_uint(&entry, &v)) != IFPP_OK || (e = tlv_reader_expect(&ar, 0x04, &hash)) != IFPP_OK)
        return e;
    if (hash.len != 32 || !tlv_reader_done(&ar))
        return IFPP_E_RANGE;
    out->entry = v;
    memcpy(out->hash, hash.value, 32);
    return IFPP_OK;
}

/* One DeletionRecord checked offline: its notification's signature, event and ICCID, its eUICC under an EUM under ci. */
static ifpp_err verify_deletion(tlv_reader *items, const tlv *item, const cert *const *eums, size_t n_eums,
                                const cert *ci, time_t now, export_verify_summary *sum, char *why, size_t why_len)
{
    tlv_reader r;
    tlv txid, eid, iccid, el, notif;
    es10_other_notification on;
    cert *ec = NULL;
    char vwhy[256] = "", eid_text[33];
    size_t no = sum->deletions + 1;
    ifpp_err e;
    if ((e = tlv_reader_enter(items, item, &r)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x80, &txid)) != IFPP_OK ||
        (e = tlv_reader_expect(&r, 0x5A, &eid)) != IFPP_OK || (e = tlv_reader_expect(&r, 0x81, &iccid)) != IFPP_OK ||
        (e = tlv_reader_next(&r, &el)) != IFPP_OK || (el.tag == 0x82 && (e = tlv_reader_next(&r, &el)) != IFPP_OK) ||
        el.tag != 0x83 || !label_valid((const char *)el.value, el.len) || (e = tlv_reader_expect(&r, 0x18, &el)) != IFPP_OK ||
        el.len != 15 || (e = tlv_reader_expect(&r, 0x30, &notif)) != IFPP_OK) {
        err_why(why, why_len, "deletion %zu: malformed (%s)", no, e ? err_str(e) : "a field out of its rule");
        return e ? e : IFPP_E_TLV_UNEXPECTED_TAG;
    }
    if (!tlv_reader_done(&r) || txid.len == 0 || txid.len > 16 || eid.len != 16 || iccid.len != 10) {
        err_why(why, why_len, "deletion %zu: a field of a wrong length, or bytes after the notification", no);
        return IFPP_E_RANGE;
    }
    if ((e = es10_parse_other_notification(notif.raw, notif.raw_len, &on)) != IFPP_OK) {
        err_why(why, why_len, "deletion %zu: the eUICC's notification does not parse (%s)", no, err_str(e));
        return e;
    }
    if ((e = es10_verify_delete_notification(&on, on.euicc_cert.raw, on.euicc_cert.raw_len, iccid.value, vwhy,
                                             sizeof vwhy)) != IFPP_OK) {
        err_why(why, why_len, "deletion %zu: %s", no, vwhy);
        return e;
    }
    if ((e = cert_parse_der(on.euicc_cert.raw, on.euicc_cert.raw_len, &ec)) != IFPP_OK) {
        err_why(why, why_len, "deletion %zu: the eUICC certificate does not parse", no);
        return e;
    }
    hex_encode(eid.value, 16, eid_text, sizeof eid_text);
    if (!cert_subject_serial(ec) || strcasecmp(cert_subject_serial(ec), eid_text) != 0) {
        err_why(why, why_len, "deletion %zu: the notification is signed by another eUICC than EID %s", no, eid_text);
        e = IFPP_E_SIGNATURE;
    } else if (ci) {
        e = IFPP_E_CERT_CHAIN;
        for (size_t i = 0; i < n_eums && e != IFPP_OK; i++)
            e = cert_verify_chain(ci, &eums[i], 1, ec, CERT_ROLE_EUICC, now, vwhy, sizeof vwhy);
        if (e != IFPP_OK)
            err_why(why, why_len, "deletion %zu: the eUICC certificate does not chain to the CI through the report's "
                    "EUM certificates: %s", no, vwhy);
    }
    cert_free(ec);
    if (e == IFPP_OK)
        sum->deletions++;
    return e;
}

typedef struct {
    const cert *ci;
    time_t now;
    export_verify_summary *sum;
    cert *eums[EXPORT_VERIFY_EUMS];
    size_t n_eums;
    char *why;
    size_t why_len;
} verify_walk;

/*
 * The content of a bundle already verified once, one element at a time: the header, every list
 * (a report's EUM certificates, then its results, each checked), the anchor last. Memory: one element.
 */
static ifpp_err verify_content(bundle_stream *bs, bundle_type type, verify_walk *w)
{
    /* a report's header: version, reportId, stationId, then periodStart, periodEnd (a Deletion Report has none) */
    static const uint32_t head[] = {0x02, 0x04, 0x0C, 0x18, 0x18};
    const bool checked = type == BUNDLE_LOADING_REPORT || type == BUNDLE_DELETION_REPORT;
    const size_t n_head = type == BUNDLE_DELETION_REPORT ? 3 : 5;
    const char *records = type == BUNDLE_DELETION_REPORT ? "deletion" : "result";
    size_t heads = 0, lists = 0;
    bool anchored = false;
    tlv t;
    ifpp_err e;
    for (;;) {
        bool entered = false;
        if ((e = bundle_stream_enter_or_next(bs, 0x30, &t, &entered)) == IFPP_E_TLV_END)
            break;
        if (e != IFPP_OK) {
            err_why(w->why, w->why_len, "the %s's content is malformed (%s)", bundle_type_name(type), err_str(e));
            return e;
        }
        anchored = false;
        if (!entered) {
            if (t.tag == 0xA5) {
                if ((e = verify_anchor(&t, &w->sum->anchor)) != IFPP_OK) {
                    err_why(w->why, w->why_len, "the %s carries no readable audit anchor (%s)", bundle_type_name(type),
                            err_str(e));
                    return e;
                }
                anchored = true;
            } else if (checked && (lists > 0 || heads >= n_head || t.tag != head[heads++])) {
                err_why(w->why, w->why_len, "the report's header is malformed (tag %X)", (unsigned)t.tag);
                return IFPP_E_TLV_UNEXPECTED_TAG;
            }
            continue;
        }
        if (checked && (heads != n_head || lists >= 2)) {
            err_why(w->why, w->why_len, "the report's %s is malformed", heads != n_head ? "header" : "content");
            return IFPP_E_TLV_UNEXPECTED_TAG;
        }
        lists++;
        while ((e = bundle_stream_next(bs, &t)) == IFPP_OK) {
            if (!checked)
                continue; /* a request's lists: the SM-DPf checks them (DPFF10) */
            if (lists == 2 && type == BUNDLE_LOADING_REPORT) {
                if ((e = verify_result(&t, (const cert *const *)w->eums, w->n_eums, w->ci, w->now, w->sum, w->why,
                                       w->why_len)) != IFPP_OK)
                    return e;
            } else if (lists == 2) { /* a DeletionRecord: the eUICC-signed notification (use case A.4) */
                tlv_reader items;
                tlv_reader_init(&items, t.raw, t.raw_len, TLV_DER);
                if ((e = verify_deletion(&items, &t, (const cert *const *)w->eums, w->n_eums, w->ci, w->now, w->sum,
                                         w->why, w->why_len)) != IFPP_OK)
                    return e;
            } else if (w->n_eums == EXPORT_VERIFY_EUMS) {
                err_why(w->why, w->why_len, "the report carries more than %d EUM certificates", EXPORT_VERIFY_EUMS);
                return IFPP_E_RANGE;
            } else if ((e = cert_parse_der(t.raw, t.raw_len, &w->eums[w->n_eums])) != IFPP_OK) {
                err_why(w->why, w->why_len, "EUM certificate %zu does not parse", w->n_eums + 1);
                return e;
            } else {
                w->n_eums++;
            }
        }
        if (e != IFPP_E_TLV_END) {
            err_why(w->why, w->why_len, "the %s's list %zu is malformed (%s)", bundle_type_name(type), lists,
                    err_str(e));
            return e;
        }
    }
    if (checked && lists != 2) {
        err_why(w->why, w->why_len, "the report has no readable %s list", records);
        return IFPP_E_TLV_MISSING;
    }
    if (!anchored) { /* a bundle from before anchors, or the anchor not last */
        err_why(w->why, w->why_len, "the %s carries no readable audit anchor (%s)", bundle_type_name(type),
                err_str(IFPP_E_TLV_MISSING));
        return IFPP_E_TLV_MISSING;
    }
    return IFPP_OK;
}

/*
 * export_verify_file; sig_first false skips the signature-only pass: for a file the station just wrote and read
 * back by SHA-256 (the media check), whose content is its own; the parse pass still checks the signature at its end.
 */
static ifpp_err verify_file(FILE *f, size_t size, const cert *dm_root, const cert *ci, time_t now, bool sig_first,
                            export_verify_summary *sum, char *why, size_t why_len)
{
    static const bundle_type types[] = {BUNDLE_LOADING_REPORT, BUNDLE_BPP_REQUEST, BUNDLE_DELETION_REPORT};
    char vwhy[256] = "";
    ifpp_err e = IFPP_E_ARG;
    off_t start;
    if (!f || !dm_root || !sum || (start = ftello(f)) < 0)
        return IFPP_E_ARG;
    memset(sum, 0, sizeof *sum);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        /* the signature first (one SHA-256 pass), as before anything is parsed: a wrongly signed file costs one hash */
        if (fseeko(f, start, SEEK_SET) != 0)
            return IFPP_E_IO;
        if (!sig_first) { /* only the type, from the header */
            bundle_stream *probe = NULL;
            e = bundle_stream_open(f, size, types[i], 64, &probe, vwhy, sizeof vwhy);
            bundle_stream_free(probe);
        } else {
            e = bundle_stream_verify(f, size, types[i], dm_root, now, NULL, NULL, vwhy, sizeof vwhy);
        }
        if (e == IFPP_E_TLV_UNEXPECTED_TAG)
            continue; /* another kind of bundle */
        if (e != IFPP_OK) {
            err_why(why, why_len, "the %s's signature or signer chain does not verify: %s", bundle_type_name(types[i]),
                    vwhy);
            return e;
        }
        /* then every element, and the signature again over what was parsed (the file may have changed since) */
        bundle_stream *bs = NULL;
        verify_walk w = {.ci = ci, .now = now, .sum = sum, .why = why, .why_len = why_len};
        sum->type = types[i];
        if (fseeko(f, start, SEEK_SET) != 0)
            return IFPP_E_IO;
        if ((e = bundle_stream_open(f, size, types[i], EXPORT_VERIFY_ELEMENT, &bs, why, why_len)) == IFPP_OK &&
            (e = verify_content(bs, types[i], &w)) == IFPP_OK &&
            (e = bundle_stream_finish(bs, dm_root, now, NULL, NULL, vwhy, sizeof vwhy)) != IFPP_OK)
            err_why(why, why_len, "the %s changed while it was read: %s", bundle_type_name(types[i]), vwhy);
        bundle_stream_free(bs);
        for (size_t k = 0; k < w.n_eums; k++)
            cert_free(w.eums[k]);
        return e;
    }
    err_why(why, why_len, "not a station-signed Profile Loading Report, BPP request or Deletion Report: %s", vwhy);
    return e;
}

ifpp_err export_verify_file(FILE *f, size_t size, const cert *dm_root, const cert *ci, time_t now,
                            export_verify_summary *sum, char *why, size_t why_len)
{
    return verify_file(f, size, dm_root, ci, now, true, sum, why, why_len);
}

ifpp_err export_verify(const uint8_t *buf, size_t n, const cert *dm_root, const cert *ci, time_t now,
                       export_verify_summary *sum, char *why, size_t why_len)
{
    if (!buf || !dm_root || !sum)
        return IFPP_E_ARG;
    memset(sum, 0, sizeof *sum);
    if (n == 0) {
        err_why(why, why_len, "not a station-signed Profile Loading Report, BPP request or Deletion Report: the file is empty");
        return IFPP_E_TLV_TRUNCATED;
    }
    FILE *f = fmemopen((void *)buf, n, "rb"); /* one reader for a file and a buffer */
    if (!f)
        return IFPP_E_NOMEM;
    ifpp_err e = export_verify_file(f, n, dm_root, ci, now, sum, why, why_len);
    fclose(f);
    return e;
}

ifpp_err export_read_anchor(const uint8_t *buf, size_t n, const cert *root, store_anchor *anchor, char *why,
                            size_t why_len)
{
    export_verify_summary sum;
    if (!buf || !root || !anchor)
        return IFPP_E_ARG;
    ifpp_err e = export_verify(buf, n, root, NULL, time(NULL), &sum, why, why_len);
    if (e == IFPP_OK)
        *anchor = sum.anchor;
    return e;
}

ifpp_err export_audit_check(store *s, const char *bundle_path, const cert *root, size_t *entries, char *why,
                            size_t why_len)
{
    export_verify_summary sum;
    char awhy[256] = "";
    bool unreadable = false;
    if (!s || !bundle_path || !root)
        return IFPP_E_ARG;
    ifpp_err e = export_verify_path(bundle_path, root, NULL, time(NULL), &sum, &unreadable, awhy, sizeof awhy);
    if (e != IFPP_OK) {
        err_why(why, why_len, unreadable ? "cannot read %s: %s" : "%s: %s", bundle_path, awhy);
        return e;
    }
    return store_audit_check(s, &sum.anchor, entries, why, why_len);
}

/* ---- use case A.4: the Deletion Report, streamed (issue 15 item 4) ---------------------------- */

/* One DeletionRecord (docs/ifpp.asn): the notification byte for byte as the eUICC signed it. */
static ifpp_err put_deletion(tlv_builder *b, const store_deletion_record *r)
{
    char at[16];
    export_gentime(r->received_at, at);
    tlv_begin(b, 0x30);
    tlv_put(b, 0x80, r->txid, r->txid_len);
    tlv_put(b, 0x5A, r->eid, 16);
    tlv_put(b, 0x81, r->iccid, 10);
    if (r->dut_serial)
        tlv_put(b, 0x82, r->dut_serial, strlen(r->dut_serial));
    tlv_put(b, 0x83, r->job, strlen(r->job));
    tlv_put(b, 0x18, at, 15);
    tlv_put_raw(b, r->notification, r->notification_len);
    return tlv_end(b);
}

static ifpp_err stream_deletion(void *arg, const store_deletion_record *r)
{
    stream_ctx *c = arg;
    tlv_builder b;
    const uint8_t *p;
    size_t n;
    tlv_builder_init_dynamic(&b, 1u << 20);
    ifpp_err e = put_deletion(&b, r);
    if (e == IFPP_OK && (e = tlv_builder_finish(&b, &p, &n)) == IFPP_OK) {
        c->results_len += n;
        c->sum.results++;
        stream_emit(c, p, n, true);
        e = c->f ? c->f->err : IFPP_OK;
    }
    tlv_builder_free(&b);
    return e;
}

static ifpp_err deletion_records(store *s, stream_ctx *c, void *arg)
{
    return store_each_deletion(s, arg, stream_deletion, c);
}

typedef struct {
    stream_bundle sb;
    stream_ctx c;
    stream_check_arg chk;
    bool written;
} deletion_export;

/* Both passes and the commit in one snapshot of the store. */
static ifpp_err deletion_export_read(store *s, void *arg)
{
    deletion_export *x = arg;
    ifpp_err e = stream_bundle_write(s, &x->sb, &x->c);
    if (e != IFPP_OK)
        return e;
    x->written = true; /* the commit removes its temporary itself on failure */
    return media_file_commit_checked(x->sb.f, stream_check_bundle, &x->chk, x->sb.why, x->sb.why_len);
}

/* Opens the directory of a plain output file (no link followed) and names the file in it. */
static ifpp_err export_open_parent(const char *path, int *dirfd, char *name, size_t cap, char *why, size_t why_len)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dl = slash ? (size_t)(slash - path) : 0;
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || strlen(base) >= cap || strlen(base) >= MEDIA_NAME_MAX ||
        dl >= sizeof dir) {
        err_why(why, why_len, "%s: not a file name the report can be written to", path);
        return IFPP_E_ARG;
    }
    snprintf(dir, sizeof dir, "%.*s", (int)(slash ? (dl ? dl : 1) : 1), slash ? path : ".");
    snprintf(name, cap, "%s", base);
    *dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*dirfd < 0) {
        err_why(why, why_len, "%s: cannot open its directory: %s", path, strerror(errno));
        return IFPP_E_IO;
    }
    return IFPP_OK;
}

ifpp_err export_deletion_report(store *s, const char *station_id, const char *job, const crypto_key *station_key,
                                const cert *station_cert, const cert *dm_root, const char *dest, bool medium,
                                export_deletion_summary *sum, char *why, size_t why_len)
{
    int dirfd = -1;
    media_file *f = NULL;
    tlv_builder hb;
    const uint8_t *head;
    size_t head_n;
    uint8_t id[16];
    ifpp_err e;
    if (!s || !station_id || !station_key || !station_cert || !dm_root || !dest || !sum)
        return IFPP_E_ARG;
    memset(sum, 0, sizeof *sum);
    memset(&hb, 0, sizeof hb);
    if (!export_label_ok("the station id", station_id, why, why_len) ||
        (job && !export_label_ok("the job name", job, why, why_len)))
        return IFPP_E_ARG;
    if (!medium && store_owns_path(s, dest)) {
        err_why(why, why_len, "%s is the station store (or its journal): choose another output", dest);
        return IFPP_E_ARG;
    }
    if ((e = export_key_matches(station_key, station_cert, why, why_len)) != IFPP_OK)
        return e;
    if (medium) {
        char mwhy[256] = "";
        if ((e = media_open_dest(dest, store_path(s), &dirfd, why, why_len)) != IFPP_OK)
            return e;
        if ((e = media_clean_temps(dirfd, &sum->stale_removed, mwhy, sizeof mwhy)) != IFPP_OK) {
            err_why(why, why_len, "%s: %s", dest, mwhy);
            goto out;
        }
        snprintf(sum->name, sizeof sum->name, "ifpp-%s-deletions%s%s.der", station_id, job ? "-" : "", job ? job : "");
    } else if ((e = export_open_parent(dest, &dirfd, sum->name, sizeof sum->name, why, why_len)) != IFPP_OK) {
        return e;
    }
    tlv_builder_init_dynamic(&hb, 4096); /* version, reportId, stationId */
    if ((e = crypto_random(id, sizeof id)) != IFPP_OK)
        goto out;
    tlv_put_uint(&hb, 0x02, 1);
    tlv_put(&hb, 0x04, id, sizeof id);
    tlv_put(&hb, 0x0C, station_id, strlen(station_id));
    if ((e = tlv_builder_finish(&hb, &head, &head_n)) != IFPP_OK)
        goto out;
    if (!(f = calloc(1, sizeof *f))) {
        e = IFPP_E_NOMEM;
        goto out;
    }
    if ((e = media_file_begin(f, dirfd, sum->name, why, why_len)) != IFPP_OK)
        goto out;
    deletion_export x = {
        .sb = {.type = BUNDLE_DELETION_REPORT, .head = head, .head_n = head_n, .records = deletion_records,
               .arg = (void *)job, .key = station_key, .station_cert = station_cert, .dirfd = dirfd, .f = f,
               .why = why, .why_len = why_len},
        .chk = {.root = dm_root, .type = BUNDLE_DELETION_REPORT},
    };
    why[0] = '\0';
    e = store_read(s, deletion_export_read, &x);
    sum->deletions = x.c.sum.results;
    if (e != IFPP_OK && !x.written) {
        if (!*why)
            err_why(why, why_len, "cannot write the Deletion Report: %s",
                    f->err ? (f->sys_errno ? strerror(f->sys_errno) : err_str(f->err))
                           : *store_errmsg(s) ? store_errmsg(s) : err_str(e));
        media_file_abort(f);
    }
out:
    tlv_builder_free(&hb);
    free(f);
    if (dirfd >= 0)
        close(dirfd);
    return e;
}

ifpp_err export_verify_path(const char *path, const cert *dm_root, const cert *ci, time_t now,
                            export_verify_summary *sum, bool *unreadable, char *why, size_t why_len)
{
    FILE *f = NULL;
    size_t size = 0;
    ifpp_err e;
    if (!path || !dm_root || !sum || !unreadable)
        return IFPP_E_ARG;
    memset(sum, 0, sizeof *sum);
    *unreadable = true;
    if ((e = fs_fopen_regular(path, &f, &size, why, why_len)) != IFPP_OK)
        return e;
    *unreadable = false;
    e = export_verify_file(f, size, dm_root, ci, now, sum, why, why_len); /* every kind streamed: one element in memory */
    fclose(f);
    return e;
}
