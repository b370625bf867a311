/*
 * deletion.c -- the deletion job of use case A.4; see deletion.h.
 *
 * The order on each device is the exactly-once protocol: evidence first, then action. A deletion
 * notification already pending on the card is collected before anything is deleted, so a job killed
 * between DeleteProfile and the store's commit finds the card's signed word for it on the next run;
 * the notification is recorded (with the BPP's move to deleted, one transaction) before the card is
 * told it may forget it, so a kill between the two leaves it on the card, where the next run sees it
 * is recorded already and only removes it. No step depends on memory of an earlier run.
 */
#include "deletion.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "es10.h"
#include "fsutil.h"
#include "hex.h"
#include "iccid.h"
#include "label.h"

#define DELETION_NOTIF_BUF ES10F_MAX_RESPONSE

const char *deletion_step_name(deletion_step s)
{
    static const char *const names[DELETION_STEP__COUNT] = {
        "open eUICC", "collect deletion notification", "recorded", "delete profile", "profile deleted", "done",
    };
    return (unsigned)s < DELETION_STEP__COUNT ? names[s] : "unknown step";
}

static void deletion_hook(const deletion_job *j, size_t line, const char *ident, deletion_step s, const char *detail)
{
    if (j->step)
        j->step(j->arg, line, ident, s, detail);
}

/* ---- the list: hostile input, one identifier per line ----------------------------------------- */

typedef enum { LINE_SKIP, LINE_DEVICE, LINE_BAD } line_kind;

/*
 * Reads the next line of f into buf (DELETION_LINE_MAX + 2 bytes) without its end of line, hashing the
 * raw bytes; IFPP_E_TLV_END at the end of the file. *too_long if the line did not fit (the rest skipped).
 */
static ifpp_err list_next(FILE *f, crypto_sha256_ctx *h, char *buf, bool *too_long, bool *nul)
{
    size_t n = 0;
    int ch;
    bool any = false;
    *too_long = *nul = false;
    while ((ch = getc(f)) != EOF) {
        uint8_t b = (uint8_t)ch;
        any = true;
        if (crypto_sha256_update(h, &b, 1) != IFPP_OK)
            return IFPP_E_CRYPTO;
        if (ch == '\n')
            break;
        if (ch == '\0')
            *nul = true;
        if (n < DELETION_LINE_MAX + 1)
            buf[n++] = (char)ch;
        else
            *too_long = true;
    }
    if (ferror(f))
        return IFPP_E_IO;
    if (!any)
        return IFPP_E_TLV_END;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > DELETION_LINE_MAX)
        *too_long = true;
    buf[n] = '\0';
    return IFPP_OK;
}

/* Classifies one line; a device line's identifier stays in buf (an EID upper-cased), why says what is wrong. */
static line_kind list_classify(char *buf, bool too_long, bool nul, store_deletion_kind kind, char *why, size_t why_len)
{
    if (too_long) {
        err_why(why, why_len, "longer than %d characters", DELETION_LINE_MAX);
        return LINE_BAD;
    }
    if (nul) {
        err_why(why, why_len, "holds a NUL byte");
        return LINE_BAD;
    }
    if (buf[0] == '\0' || buf[0] == '#')
        return LINE_SKIP;
    if (kind == STORE_DELETION_BY_EID) {
        uint8_t eid[16];
        size_t n = 0;
        if (strlen(buf) != 32 || hex_decode(buf, eid, sizeof eid, &n) != IFPP_OK || n != 16) {
            err_why(why, why_len, "not an EID (32 hex digits, nothing else on the line)");
            return LINE_BAD;
        }
        for (char *p = buf; *p; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 'a' + 'A');
        return LINE_DEVICE;
    }
    if (!dut_serial_valid(buf)) {
        err_why(why, why_len, "not a DUT serial (1..%d printable ASCII characters, no space or control character)",
                DUT_SERIAL_MAX);
        return LINE_BAD;
    }
    return LINE_DEVICE;
}

ifpp_err deletion_check_list(FILE *f, const char *name, store_deletion_kind kind, uint8_t hash[32], size_t *lines,
                             size_t *devices, char *why, size_t why_len)
{
    crypto_sha256_ctx h = {0};
    char buf[DELETION_LINE_MAX + 2], lwhy[160];
    bool too_long, nul;
    ifpp_err e;
    if (!f || !name || !hash || !lines || !devices)
        return IFPP_E_ARG;
    *lines = *devices = 0;
    if ((e = crypto_sha256_init(&h)) != IFPP_OK)
        return e;
    while ((e = list_next(f, &h, buf, &too_long, &nul)) == IFPP_OK) {
        (*lines)++;
        line_kind k = list_classify(buf, too_long, nul, kind, lwhy, sizeof lwhy);
        if (k == LINE_BAD) {
            err_why(why, why_len, "%s:%zu: %s", name, *lines, lwhy);
            crypto_sha256_abort(&h);
            return IFPP_E_ARG;
        }
        *devices += k == LINE_DEVICE;
    }
    if (e != IFPP_E_TLV_END) {
        err_why(why, why_len, "%s: cannot read it after line %zu (%s)", name, *lines, err_str(e));
        crypto_sha256_abort(&h);
        return e;
    }
    if (*devices == 0) {
        err_why(why, why_len, "%s: names no device (every line is blank or a comment)", name);
        crypto_sha256_abort(&h);
        return IFPP_E_ARG;
    }
    return crypto_sha256_final(&h, hash);
}

/* ---- one device ------------------------------------------------------------------------------- */

typedef struct {
    session_ctx *c;
    es10_chan *k;
    const deletion_job *j;
    size_t line;
    const char *ident, *serial;
    const uint8_t *cert;
    size_t cert_len;
    store_deletion_target *t;
    size_t n;
    uint8_t *buf;
    size_t *profiles;
    bool *station_failed;
    char *why;
    size_t why_len;
} device_run;

/* The target whose ICCID the notification names, or NULL. */
static store_deletion_target *device_target(device_run *d, const es10_notification_meta *m)
{
    for (size_t i = 0; m->has_iccid && i < d->n; i++)
        if (!memcmp(d->t[i].iccid, m->iccid, 10))
            return &d->t[i];
    return NULL;
}

/*
 * Collects the deletion notifications the card holds for this station's profiles: each verified,
 * recorded with the BPP's move to deleted, then removed from the card's list; one already recorded
 * is only removed. A notification that does not verify is refused: nothing recorded, left on the card.
 */
static ifpp_err device_collect(device_run *d)
{
    es10_notification_meta meta[ES10_MAX_LISTED];
    es10_other_notification on;
    size_t count = 0, len = 0;
    char words[200], iccid[ICCID_TEXT_LEN];
    ifpp_err e = es10_list_notifications(d->k, ES10_EVENT_DELETE, meta, ES10_MAX_LISTED, &count);
    if (e != IFPP_OK) {
        err_why(d->why, d->why_len, "ListNotification failed (%s%s%04X)", err_str(e), d->k->sw ? ", status word " : "",
                d->k->sw);
        return e;
    }
    for (size_t i = 0; i < count; i++) {
        store_deletion_target *t = device_target(d, &meta[i]);
        if (!t || (t->recorded && t->seq != meta[i].seq))
            continue; /* another profile's, or an older one: not this station's business */
        iccid_to_text(t->iccid, iccid);
        if (!t->recorded) {
            if ((e = es10_retrieve_other_notification(d->k, meta[i].seq, d->buf, DELETION_NOTIF_BUF, &len, &on)) !=
                IFPP_OK) {
                err_why(d->why, d->why_len, "the deletion notification %llu for ICCID %s cannot be read (%s)",
                        (unsigned long long)meta[i].seq, iccid, err_str(e));
                return e;
            }
            if ((e = es10_verify_delete_notification(&on, d->cert, d->cert_len, t->iccid, words, sizeof words)) !=
                IFPP_OK) {
                err_why(d->why, d->why_len, "refused the eUICC's deletion notification %llu for ICCID %s: %s; nothing "
                        "recorded, the BPP stays installed", (unsigned long long)meta[i].seq, iccid, words);
                return e;
            }
            deletion_hook(d->j, d->line, d->ident, DELETION_STEP_COLLECT, iccid);
            char reason[200];
            snprintf(reason, sizeof reason, "deleted (use case A.4), job %s: eUICC-signed notification %llu", d->j->job,
                     (unsigned long long)meta[i].seq);
            store_actor who = {.slot = d->c->slot_name, .dut_serial = d->serial, .reason = reason};
            if ((e = store_record_deletion(d->c->st, t->txid, t->txid_len, meta[i].seq, d->buf, len, d->j->job, &who)) !=
                IFPP_OK) {
                *d->station_failed = true;
                err_why(d->why, d->why_len, "store: cannot record the deletion of ICCID %s (%s: %s)", iccid, err_str(e),
                        store_errmsg(d->c->st));
                return e;
            }
            t->recorded = true;
            t->state = BPP_DELETED;
            t->seq = meta[i].seq;
            (*d->profiles)++;
            deletion_hook(d->j, d->line, d->ident, DELETION_STEP_RECORDED, iccid);
        }
        /* ES10b.RemoveNotificationFromList: only now that the store holds it */
        if ((e = es10_notification_sent(d->k, meta[i].seq)) != IFPP_OK && e != IFPP_E_NOT_FOUND) {
            err_why(d->why, d->why_len, "the deletion of ICCID %s is recorded, but the eUICC did not remove its "
                    "notification %llu from its list (%s); re-run the job", iccid, (unsigned long long)meta[i].seq,
                    err_str(e));
            return e;
        }
    }
    return IFPP_OK;
}

/* DeleteProfile for every profile still installed, each followed by the collection of its notification. */
static ifpp_err device_delete(device_run *d)
{
    char iccid[ICCID_TEXT_LEN];
    ifpp_err e;
    for (size_t i = 0; i < d->n; i++) {
        if (d->t[i].recorded)
            continue;
        iccid_to_text(d->t[i].iccid, iccid);
        deletion_hook(d->j, d->line, d->ident, DELETION_STEP_DELETE, iccid);
        if ((e = es10_delete_profile(d->k, d->t[i].iccid)) != IFPP_OK) {
            if (d->k->result == 1)
                err_why(d->why, d->why_len, "profile ICCID %s is not on the eUICC and the eUICC holds no deletion "
                        "notification for it: not recorded as deleted (the BPP stays installed)", iccid);
            else if (d->k->result != ES10_NO_RESULT)
                err_why(d->why, d->why_len, "DeleteProfile of ICCID %s refused: the eUICC answered %s (result %d)",
                        iccid, es10_delete_result_str(d->k->result), d->k->result);
            else
                err_why(d->why, d->why_len, "DeleteProfile of ICCID %s failed (%s, status word %04X%s)", iccid,
                        err_str(e), d->k->sw,
                        d->k->sw == 0x6985 ? ": the eUICC offers no LPA services while One-time Keys remain (EUICCF04)"
                                           : "");
            return e;
        }
        deletion_hook(d->j, d->line, d->ident, DELETION_STEP_DELETED, iccid);
        if ((e = device_collect(d)) != IFPP_OK)
            return e;
        if (!d->t[i].recorded) {
            err_why(d->why, d->why_len, "the eUICC deleted ICCID %s but lists no deletion notification for it: not "
                    "recorded as deleted", iccid);
            return IFPP_E_NOT_FOUND;
        }
    }
    return IFPP_OK;
}

ifpp_err deletion_device(session_ctx *c, const deletion_job *j, size_t line, const char *ident,
                         const uint8_t want_eid[16], const char *serial, size_t *profiles, bool *station_failed,
                         char *why, size_t why_len)
{
    es10_chan k;
    uint8_t eid[16], *cert_der = NULL;
    size_t cert_len = 0;
    store_deletion_target t[DELETION_MAX_PROFILES];
    char have[33], want[33];
    ifpp_err e;
    if (!c || !j || !ident || !want_eid || !profiles || !station_failed)
        return IFPP_E_ARG;
    *profiles = 0;
    *station_failed = false;
    if ((e = session_open(c, &k, eid, why, why_len)) != IFPP_OK)
        goto out;
    hex_encode(eid, 16, have, sizeof have);
    hex_encode(want_eid, 16, want, sizeof want);
    if (memcmp(eid, want_eid, 16) != 0) {
        err_why(why, why_len, "the eUICC in slot %s is %s, not %s: wrong device, nothing deleted", c->slot_name, have,
                want);
        e = IFPP_E_RANGE;
        goto out;
    }
    deletion_hook(j, line, ident, DELETION_STEP_OPEN, have);
    device_run d = {.c = c, .k = &k, .j = j, .line = line, .ident = ident, .serial = serial, .t = t,
                    .profiles = profiles, .station_failed = station_failed, .why = why, .why_len = why_len};
    if ((e = store_euicc_cert(c->st, eid, &cert_der, &cert_len)) != IFPP_OK ||
        (e = store_deletion_targets(c->st, eid, t, DELETION_MAX_PROFILES, &d.n)) != IFPP_OK) {
        *station_failed = e != IFPP_E_NOT_FOUND && e != IFPP_E_RANGE;
        err_why(why, why_len, "store: eUICC %s: %s", have, *store_errmsg(c->st) ? store_errmsg(c->st) : err_str(e));
        goto out;
    }
    if (d.n == 0) {
        err_why(why, why_len, "eUICC %s holds no profile this station installed: nothing to delete", have);
        e = IFPP_E_NOT_FOUND;
        goto out;
    }
    d.cert = cert_der;
    d.cert_len = cert_len;
    if (!(d.buf = malloc(DELETION_NOTIF_BUF))) {
        *station_failed = true;
        e = IFPP_E_NOMEM;
        err_why(why, why_len, "out of memory");
        goto out;
    }
    /* evidence first (a run killed after DeleteProfile left it on the card), then what is still installed */
    if ((e = device_collect(&d)) == IFPP_OK && (e = device_delete(&d)) == IFPP_OK)
        deletion_hook(j, line, ident, DELETION_STEP_DONE, have);
    free(d.buf);
out:
    session_close_card(c);
    free(cert_der);
    return e;
}

/* ---- the job ---------------------------------------------------------------------------------- */

/* The slot spec for one device: DELETION_SLOT_ID replaced by its identifier (which must then be a plain name). */
static bool job_slot_spec(const char *tmpl, const char *ident, char *out, size_t cap)
{
    const char *at = strstr(tmpl, DELETION_SLOT_ID);
    if (!at)
        return (size_t)snprintf(out, cap, "%s", tmpl) < cap;
    if (!label_valid(ident, strlen(ident)))
        return false; /* a serial with ',' or '=' must not add slot options */
    return (size_t)snprintf(out, cap, "%.*s%s%s", (int)(at - tmpl), tmpl, ident, at + strlen(DELETION_SLOT_ID)) < cap;
}

/* One device line: its EID, its slot, the device's deletion; *station_failed stops the job. */
static ifpp_err job_line(station *s, const deletion_job *j, size_t line, const char *ident, size_t *profiles,
                         bool *station_failed, char *why, size_t why_len)
{
    uint8_t eid[16];
    size_t n = 0;
    char spec[1024];
    station_slot_options so;
    station_slot sl;
    ifpp_err e;
    *station_failed = false;
    *profiles = 0;
    if (j->kind == STORE_DELETION_BY_EID) {
        hex_decode(ident, eid, sizeof eid, &n);
    } else if ((e = store_eid_of_serial(s->st, ident, eid)) != IFPP_OK) {
        *station_failed = e != IFPP_E_NOT_FOUND && e != IFPP_E_RANGE;
        err_why(why, why_len, "serial %s: %s", ident, store_errmsg(s->st));
        return e;
    }
    if (!job_slot_spec(j->slot_spec, ident, spec, sizeof spec)) {
        err_why(why, why_len, "%s cannot name a slot (" DELETION_SLOT_ID " takes plain names only)", ident);
        return IFPP_E_ARG;
    }
    if ((e = station_slot_parse(spec, &so, why, why_len)) != IFPP_OK)
        return e;
    memset(&sl, 0, sizeof sl);
    if ((e = station_slot_open(&so, &sl, why, why_len)) != IFPP_OK)
        return e;
    session_ctx c = {.st = s->st, .slot = &sl.fpa, .slot_name = spec, .logical_channel = so.logical_channel,
                     .isdr_aid = so.isdr_aid_len ? so.isdr_aid : NULL, .isdr_aid_len = so.isdr_aid_len};
    e = deletion_device(&c, j, line, ident, eid, j->kind == STORE_DELETION_BY_SERIAL ? ident : NULL, profiles,
                        station_failed, why, why_len);
    station_slot_close(&sl);
    return e;
}

ifpp_err deletion_run(station *s, const deletion_job *j, deletion_summary *sum, char *why, size_t why_len)
{
    FILE *f = NULL;
    uint8_t hash[32], again[32];
    crypto_sha256_ctx h = {0};
    char buf[DELETION_LINE_MAX + 2], lwhy[160], dwhy[512];
    bool too_long, nul, hashing = false;
    size_t size, line = 0;
    ifpp_err e;
    deletion_job named;
    if (!s || !s->st || !j || !j->list_path || !j->slot_spec || !sum)
        return IFPP_E_ARG;
    memset(sum, 0, sizeof *sum);
    if (j->job && !label_valid(j->job, strlen(j->job))) {
        err_why(why, why_len, "job name must be a plain name (1..%d of A-Z a-z 0-9 . _ -)", LABEL_MAX);
        return IFPP_E_ARG;
    }
    if ((e = fs_fopen_regular(j->list_path, &f, &size, why, why_len)) != IFPP_OK)
        return e;
    if ((e = deletion_check_list(f, j->list_path, j->kind, hash, &sum->lines, &sum->devices, why, why_len)) != IFPP_OK)
        goto out;
    if (!j->job) { /* unnamed: the list names its job, so re-running the same list resumes it */
        char hex[65];
        hex_encode(hash, 32, hex, sizeof hex);
        named = *j;
        snprintf(sum->job, sizeof sum->job, "list-%.16s", hex);
        named.job = sum->job;
        j = &named;
    } else {
        snprintf(sum->job, sizeof sum->job, "%s", j->job);
    }
    if ((e = store_deletion_job_begin(s->st, j->job, j->kind, hash, sum->lines, &sum->resumed)) != IFPP_OK) {
        err_why(why, why_len, "%s", store_errmsg(s->st));
        goto out;
    }
    /* the second pass: each line classified again as it is worked (the file is hostile until the end) */
    rewind(f);
    if ((e = crypto_sha256_init(&h)) != IFPP_OK)
        goto out;
    hashing = true;
    while ((e = list_next(f, &h, buf, &too_long, &nul)) == IFPP_OK) {
        bool done = false, station_failed = false;
        size_t profiles = 0;
        line++;
        line_kind k = list_classify(buf, too_long, nul, j->kind, lwhy, sizeof lwhy);
        if (k == LINE_BAD) {
            err_why(why, why_len, "%s:%zu: changed while the job ran: %s", j->list_path, line, lwhy);
            e = IFPP_E_ARG;
            goto out;
        }
        if (k == LINE_SKIP)
            continue;
        if ((e = store_deletion_item_done(s->st, j->job, line, &done)) != IFPP_OK) {
            err_why(why, why_len, "store: %s", store_errmsg(s->st));
            goto out;
        }
        if (done) {
            sum->skipped++;
            if (j->outcome)
                j->outcome(j->arg, line, buf, true, true, 0, NULL);
            continue;
        }
        dwhy[0] = '\0';
        e = job_line(s, j, line, buf, &profiles, &station_failed, dwhy, sizeof dwhy);
        sum->profiles += profiles;
        if (station_failed) {
            err_why(why, why_len, "%s:%zu (%s): the station failed: %s; the job stops here, re-run it to resume",
                    j->list_path, line, buf, dwhy);
            goto out;
        }
        ifpp_err se = store_deletion_item_set(s->st, j->job, line, buf, e == IFPP_OK, profiles,
                                              e == IFPP_OK ? NULL : dwhy);
        if (se != IFPP_OK) {
            e = se;
            err_why(why, why_len, "store: cannot record line %zu of job %s: %s", line, j->job, store_errmsg(s->st));
            goto out;
        }
        if (e == IFPP_OK)
            sum->done++;
        else
            sum->failed++;
        if (j->outcome)
            j->outcome(j->arg, line, buf, e == IFPP_OK, false, profiles, e == IFPP_OK ? NULL : dwhy);
    }
    if (e != IFPP_E_TLV_END) {
        err_why(why, why_len, "%s: cannot read it after line %zu (%s)", j->list_path, line, err_str(e));
        goto out;
    }
    hashing = false;
    if ((e = crypto_sha256_final(&h, again)) != IFPP_OK)
        goto out;
    if (memcmp(hash, again, 32) != 0) {
        err_why(why, why_len, "%s changed while the job ran: re-run the job with the list it started with",
                j->list_path);
        e = IFPP_E_ARG;
        goto out;
    }
    if (sum->failed == 0 && sum->done + sum->skipped == sum->devices) {
        if ((e = store_deletion_job_finish(s->st, j->job)) != IFPP_OK) {
            err_why(why, why_len, "store: cannot mark job %s finished: %s", j->job, store_errmsg(s->st));
            goto out;
        }
        sum->finished = true;
    }
    e = IFPP_OK;
out:
    if (hashing)
        crypto_sha256_abort(&h);
    if (f)
        fclose(f);
    return e;
}
