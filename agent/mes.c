/*
 * mes.c -- the MES socket server (see mes.h, docs/mes-protocol.md).
 *
 * One poll loop in the main thread owns every client. Slot threads append ready-made JSON lines
 * to a bounded queue and wake the loop through an eventfd; the loop moves them into the clients'
 * own bounded output buffers and writes without blocking. A client that lets its buffer fill is
 * cut: the line never waits for a reader, and no client can delay another.
 */
#define _GNU_SOURCE /* SO_PEERCRED, struct ucred, accept4 */
#include "mes.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "alog.h"
#include "crypto.h"
#include "export.h"
#include "hex.h"
#include "label.h"
#include "media.h"

#define MES_MAX_PENDING 65536   /* lines waiting between the slot threads and the loop */
#define MES_RECENT 4096         /* finished DUTs remembered for `query dut` */

typedef struct mes_msg {
    struct mes_msg *next;
    uint64_t client;            /* 0: an event for every subscriber */
    char *line;                 /* with its newline */
    size_t len;
    bool stock_check;           /* a completion: the stock may have dropped */
} mes_msg;

typedef struct {
    int fd;
    uint64_t id;
    pid_t pid;
    uid_t uid;
    gid_t gid;
    bool subscribed;
    char *in;
    size_t in_len;
    size_t in_cap;              /* mes.max_line when it connected */
    char *out;
    size_t out_len, out_cap;
} mes_client;

typedef struct {
    char serial[72], slot[32], result[24], eid[33], message[256];
} mes_recent;

struct mes {
    int lfd, efd;
    char path[108];
    size_t max_clients, max_line, max_queue, stock_low;
    mes_client *cl;
    size_t n_cl, cap_cl;
    uint64_t next_id;
    slots *sl;
    store *ro;
    pthread_mutex_t mu;         /* guards the pending queue */
    mes_msg *head, *tail;
    size_t pending;
    unsigned long long dropped;
    mes_recent *recent;
    size_t recent_next;
    bool stock_dirty;
    char low[64][72];           /* profile types already reported low */
    size_t n_low;
    agent_config *cfg;          /* the running configuration (a report's station: trust files, store) */
    pthread_t report_th;        /* the report being written, if any (mes_report_start) */
    bool report_running;        /* guarded by mu: the thread is under way */
    bool report_joinable;       /* the main thread's: a thread was started and is not joined yet */
    char report_to[MES_PATH_MAX];
};

/* ---- the parser: the one place client input is read ---- */

static const char *const mes_op_names[] = {"provision", "query",  "cancel",  "stock", "subscribe",
                                           "unsubscribe", "ping", "recover", "report"};

/* A string field: present -> copied if it fits and is printable. */
static bool mes_str(json_t *o, const char *key, char *out, size_t cap, bool required, char *err, size_t err_len)
{
    json_t *v = json_object_get(o, key);
    out[0] = 0;
    if (!v) {
        if (required)
            snprintf(err, err_len, "missing field '%s'", key);
        return !required;
    }
    if (!json_is_string(v)) {
        snprintf(err, err_len, "field '%s' must be a string", key);
        return false;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n >= cap || strlen(s) != n) {
        snprintf(err, err_len, "field '%s' must be 1..%zu characters without NUL", key, cap - 1);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(err, err_len, "field '%s' has a control character at %zu", key, i);
            return false;
        }
    memcpy(out, s, n + 1);
    return true;
}

static bool mes_bool(json_t *o, const char *key, bool *out, char *err, size_t err_len)
{
    json_t *v = json_object_get(o, key);
    *out = false;
    if (!v)
        return true;
    if (!json_is_boolean(v)) {
        snprintf(err, err_len, "field '%s' must be true or false", key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

ifpp_err mes_parse_request(const char *line, size_t n, mes_request *req, char *err, size_t err_len)
{
    static const char *const allowed[][8] = {
        [MES_OP_PROVISION] = {"serial", "slot", "profile_type", "complete", "additional_profile"},
        [MES_OP_QUERY] = {"what", "slot", "serial"},
        [MES_OP_CANCEL] = {"request"},
        [MES_OP_STOCK] = {NULL},
        [MES_OP_SUBSCRIBE] = {NULL},
        [MES_OP_UNSUBSCRIBE] = {NULL},
        [MES_OP_PING] = {NULL},
        [MES_OP_RECOVER] = {"slot"},
        [MES_OP_REPORT] = {"dir", "out", "day"},
    };
    json_error_t je;
    memset(req, 0, sizeof *req);
    snprintf(req->id, sizeof req->id, "null");
    err[0] = 0;
    json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        snprintf(err, err_len, "malformed JSON at column %d: %s", je.column, je.text);
        return IFPP_E_ARG;
    }
    ifpp_err e = IFPP_E_ARG;
    if (!json_is_object(o)) {
        snprintf(err, err_len, "a request is one JSON object per line");
        goto out;
    }
    json_t *id = json_object_get(o, "id");
    if (json_is_string(id) && json_string_length(id) > 0 && json_string_length(id) <= 64) {
        char *t = json_dumps(id, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        if (!t || strlen(t) >= sizeof req->id) {
            free(t);
            snprintf(err, err_len, "field 'id' too long once escaped (at most 64 plain characters)");
            goto out;
        }
        snprintf(req->id, sizeof req->id, "%s", t);
        free(t);
    } else if (json_is_integer(id) && json_integer_value(id) >= 0) {
        snprintf(req->id, sizeof req->id, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
    } else {
        snprintf(err, err_len, "field 'id' missing or not a string of 1..64 characters or a whole number >= 0");
        goto out;
    }
    char op[16];
    if (!mes_str(o, "op", op, sizeof op, true, err, err_len))
        goto out;
    size_t k;
    for (k = 0; k < sizeof mes_op_names / sizeof mes_op_names[0] && strcmp(op, mes_op_names[k]); k++)
        ;
    if (k == sizeof mes_op_names / sizeof mes_op_names[0]) {
        snprintf(err, err_len, "unknown op '%s' (provision, query, cancel, stock, subscribe, unsubscribe, ping, recover, report)", op);
        goto out;
    }
    req->op = (mes_op)k;
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        bool ok = !strcmp(key, "id") || !strcmp(key, "op");
        for (size_t i = 0; !ok && i < 8 && allowed[k][i]; i++)
            ok = !strcmp(key, allowed[k][i]);
        if (!ok) {
            snprintf(err, err_len, "unknown field '%.64s' for op %s", key, op);
            goto out;
        }
    }
    switch (req->op) {
    case MES_OP_PROVISION:
        if (!mes_str(o, "serial", req->serial, sizeof req->serial, true, err, err_len) ||
            !mes_str(o, "slot", req->slot, sizeof req->slot, false, err, err_len) ||
            !mes_str(o, "profile_type", req->profile_type, 65, false, err, err_len) ||
            !mes_bool(o, "complete", &req->complete, err, err_len) ||
            !mes_bool(o, "additional_profile", &req->additional_profile, err, err_len))
            goto out;
        if (!dut_serial_valid(req->serial)) {
            snprintf(err, err_len, "serial '%s' is not a valid DUT serial (1..%d of A-Z a-z 0-9 - _ . /)", req->serial,
                     DUT_SERIAL_MAX);
            goto out;
        }
        if (req->complete && req->additional_profile) {
            snprintf(err, err_len, "complete and additional_profile exclude each other");
            goto out;
        }
        break;
    case MES_OP_QUERY: {
        char what[16];
        if (!mes_str(o, "what", what, sizeof what, true, err, err_len))
            goto out;
        if (!strcmp(what, "station"))
            req->what = MES_Q_STATION;
        else if (!strcmp(what, "slot")) {
            req->what = MES_Q_SLOT;
            if (!mes_str(o, "slot", req->slot, sizeof req->slot, true, err, err_len))
                goto out;
        } else if (!strcmp(what, "dut")) {
            req->what = MES_Q_DUT;
            if (!mes_str(o, "serial", req->serial, sizeof req->serial, true, err, err_len))
                goto out;
        } else {
            snprintf(err, err_len, "query what '%s': station, slot or dut", what);
            goto out;
        }
        break;
    }
    case MES_OP_CANCEL:
        if (!mes_str(o, "request", req->request, sizeof req->request, true, err, err_len))
            goto out;
        break;
    case MES_OP_RECOVER: /* the card in a named slot: a recovery is about that card, so there is no "any slot" */
        if (!mes_str(o, "slot", req->slot, sizeof req->slot, true, err, err_len))
            goto out;
        break;
    case MES_OP_REPORT: {
        char out[MES_PATH_MAX];
        if (!mes_str(o, "dir", req->path, sizeof req->path, false, err, err_len) ||
            !mes_str(o, "out", out, sizeof out, false, err, err_len) ||
            !mes_str(o, "day", req->day, sizeof req->day, false, err, err_len))
            goto out;
        if (req->path[0] && out[0]) {
            snprintf(err, err_len, "report: give 'dir' (the day's three files onto removable media) or 'out' (the "
                                   "signed report alone), one of them");
            goto out;
        }
        /* neither: the day's files go to the configured reports.dir (the stick's usual mount point) */
        req->to_dir = !out[0];
        if (!req->to_dir)
            memcpy(req->path, out, sizeof req->path);
        /* the daemon's working directory means nothing to a client: only absolute paths */
        if (req->path[0] && req->path[0] != '/') {
            snprintf(err, err_len, "report: '%s' %.200s is not an absolute path", req->to_dir ? "dir" : "out", req->path);
            goto out;
        }
        if (req->day[0] && !label_day_valid(req->day)) {
            snprintf(err, err_len, "report: day '%s' is not a calendar day YYYY-MM-DD from 2000-01-01", req->day);
            goto out;
        }
        break;
    }
    default:
        break;
    }
    e = IFPP_OK;
out:
    json_decref(o);
    return e;
}

/* ---- output ---- */

static void mes_cut(mes *m, size_t i, const char *why)
{
    mes_client *c = &m->cl[i];
    alog(LOG_LVL_WARN, NULL, "MES client %llu (pid %ld uid %ld) cut: %s", (unsigned long long)c->id, (long)c->pid,
         (long)c->uid, why);
    close(c->fd);
    free(c->in);
    free(c->out);
    m->cl[i] = m->cl[--m->n_cl];
}

/* Writes what the socket takes now; false if the client is gone. */
static bool mes_flush(mes_client *c)
{
    size_t done = 0;
    while (done < c->out_len) {
        ssize_t w = send(c->fd, c->out + done, c->out_len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return false;
        }
        done += (size_t)w;
    }
    memmove(c->out, c->out + done, c->out_len - done);
    c->out_len -= done;
    return true;
}

/* Queues a line for client i; cuts it when its buffer would pass max_queue. Returns false if cut. */
static bool mes_send(mes *m, size_t i, const char *line, size_t len)
{
    mes_client *c = &m->cl[i];
    if (c->out_len + len > m->max_queue) {
        char why[128];
        snprintf(why, sizeof why, "it does not read: %zu bytes waiting, the limit is %zu", c->out_len + len,
                 m->max_queue);
        mes_cut(m, i, why);
        return false;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (!p) {
            mes_cut(m, i, "out of memory");
            return false;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, line, len);
    c->out_len += len;
    if (!mes_flush(c)) {
        mes_cut(m, i, "write failed (it hung up)");
        return false;
    }
    return true;
}

/* Serialises o (consumed) as one line. */
static char *mes_line(json_t *o, size_t *len)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *l = realloc(s, n + 2);
    if (!l) {
        free(s);
        return NULL;
    }
    l[n] = '\n';
    l[n + 1] = 0;
    *len = n + 1;
    return l;
}

/* The request id as the client wrote it (parsed back from its JSON text). */
static json_t *mes_id(const char *id)
{
    json_t *v = json_loads(id, JSON_DECODE_ANY, NULL);
    return v ? v : json_null();
}

static bool mes_reply(mes *m, size_t i, json_t *o)
{
    size_t len;
    char *l = mes_line(o, &len);
    if (!l)
        return true;
    bool ok = mes_send(m, i, l, len);
    free(l);
    return ok;
}

static bool mes_error(mes *m, size_t i, const char *id, const char *code, const char *msg)
{
    return mes_reply(m, i, json_pack("{s:o,s:b,s:s,s:s}", "id", mes_id(id), "ok", 0, "error", code, "message", msg));
}

/* Queues a line from any thread (slot threads); client 0 is every subscriber. */
static void mes_post(mes *m, uint64_t client, json_t *o, bool stock_check)
{
    size_t len;
    char *l = mes_line(o, &len);
    mes_msg *msg = l ? malloc(sizeof *msg) : NULL;
    if (!msg) {
        free(l);
        return;
    }
    *msg = (mes_msg){.client = client, .line = l, .len = len, .stock_check = stock_check};
    pthread_mutex_lock(&m->mu);
    if (m->pending >= MES_MAX_PENDING && client == 0 && !stock_check) {
        m->dropped++; /* the loop is far behind: progress events go first, replies never */
        pthread_mutex_unlock(&m->mu);
        free(l);
        free(msg);
        return;
    }
    if (m->tail)
        m->tail->next = msg;
    else
        m->head = msg;
    m->tail = msg;
    m->pending++;
    pthread_mutex_unlock(&m->mu);
    uint64_t one = 1;
    if (write(m->efd, &one, sizeof one) < 0) { /* the counter is already non-zero: the loop wakes anyway */
    }
}

static json_t *mes_s(const char *s)
{
    return json_string(s ? s : "");
}

static uint64_t mes_job_client(const slot_job *j)
{
    return j ? j->client : 0;
}

/* A recovery's completion for its requester: the verdict, how many BPPs it resolved, and each one's outcome. */
static json_t *mes_recovery_json(const slot_job *j, const slot_event *ev)
{
    json_t *arr = json_array();
    const slot_recovery *rc = ev->recovery;
    for (size_t k = 0; rc && k < rc->n; k++)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:o}", "txid", rc->outcome[k].txid, "state",
                                             bpp_state_name(rc->outcome[k].to), "why", mes_s(rc->outcome[k].why)));
    return json_pack("{s:o,s:b,s:s,s:s,s:s,s:I,s:o,s:I,s:o}", "id", mes_id(j->id), "ok", 1, "status", "completed",
                     "slot", ev->slot, "result", station_verdict_name(ev->verdict), "resolved",
                     (json_int_t)(rc ? rc->resolved : 0), "outcomes", arr, "outcomes_dropped",
                     (json_int_t)(rc ? rc->dropped : 0), "message", mes_s(ev->message));
}

void mes_slot_event(void *arg, const slot_event *ev)
{
    mes *m = arg;
    const slot_job *j = ev->job;
    switch (ev->kind) {
    case SLOT_EV_STARTED:
        mes_post(m, 0, json_pack("{s:s,s:s,s:o,s:o,s:o}", "event", "WorkStarted", "slot", ev->slot, "serial",
                                 mes_s(j->serial), "profile_type", mes_s(j->profile_type), "request", mes_id(j->id)),
                 false);
        break;
    case SLOT_EV_STEP:
        if (j->recover)
            break;
        mes_post(m, 0, json_pack("{s:s,s:s,s:o,s:o,s:o}", "event", "WorkProgress", "slot", ev->slot, "serial",
                                 mes_s(j->serial), "eid", mes_s(ev->eid), "step", mes_s(ev->step)), false);
        break;
    case SLOT_EV_COMPLETED: {
        const char *res = station_verdict_name(ev->verdict);
        if (j->recover) { /* only its requester hears of a recovery: no DUT's work started or completed */
            if (mes_job_client(j))
                mes_post(m, j->client, mes_recovery_json(j, ev), false);
            break;
        }
        if (mes_job_client(j))
            mes_post(m, j->client, json_pack("{s:o,s:b,s:s,s:s,s:o,s:o,s:s,s:o,s:o,s:o}", "id", mes_id(j->id), "ok", 1,
                                             "status", "completed", "slot", ev->slot, "serial", mes_s(j->serial),
                                             "eid", mes_s(ev->eid), "result", res, "failed_step", mes_s(ev->step),
                                             "profile_type", mes_s(ev->profile_type), "message",
                                             mes_s(ev->message)), false);
        mes_post(m, 0, json_pack("{s:s,s:s,s:o,s:o,s:s,s:o,s:o,s:o,s:o}", "event", "WorkCompleted", "slot", ev->slot,
                                 "serial", mes_s(j->serial), "eid", mes_s(ev->eid), "result", res, "failed_step",
                                 mes_s(ev->step), "profile_type", mes_s(ev->profile_type), "message",
                                 mes_s(ev->message), "request", mes_id(j->id)), true);
        /* remembered for `query dut`, by the loop (it owns the table): posted to client UINT64_MAX */
        mes_post(m, UINT64_MAX, json_pack("{s:s,s:o,s:s,s:o,s:o}", "slot", ev->slot, "serial", mes_s(j->serial),
                                          "result", res, "eid", mes_s(ev->eid), "message", mes_s(ev->message)),
                 false);
        break;
    }
    case SLOT_EV_FAULT:
        mes_post(m, 0, json_pack("{s:s,s:s,s:o}", "event", "FaultOccurred", "slot", ev->slot, "message",
                                 mes_s(ev->message)), false);
        break;
    case SLOT_EV_STATE:
        mes_post(m, 0, json_pack("{s:s,s:s,s:s}", "event", "StationStateChanged", "slot", ev->slot, "state",
                                 slot_state_name(ev->state)), false);
        break;
    }
}

void mes_station_state(mes *m, const char *state, const char *detail)
{
    mes_post(m, 0, json_pack("{s:s,s:s,s:s}", "event", "StationStateChanged", "state", state, "message",
                             detail ? detail : ""), false);
}

/* ---- the loop ---- */

static ssize_t mes_find(mes *m, uint64_t id)
{
    for (size_t i = 0; i < m->n_cl; i++)
        if (m->cl[i].id == id)
            return (ssize_t)i;
    return -1;
}

static void mes_remember(mes *m, const char *line)
{
    json_t *o = json_loads(line, 0, NULL);
    if (!o)
        return;
    mes_recent *r = &m->recent[m->recent_next++ % MES_RECENT];
    snprintf(r->serial, sizeof r->serial, "%s", json_string_value(json_object_get(o, "serial")));
    snprintf(r->slot, sizeof r->slot, "%s", json_string_value(json_object_get(o, "slot")));
    snprintf(r->result, sizeof r->result, "%s", json_string_value(json_object_get(o, "result")));
    snprintf(r->eid, sizeof r->eid, "%s", json_string_value(json_object_get(o, "eid")));
    snprintf(r->message, sizeof r->message, "%s", json_string_value(json_object_get(o, "message")));
    json_decref(o);
}

typedef struct {
    json_t *obj;
    mes *m;
    json_t *low;
} mes_stock_walk;

static ifpp_err mes_stock_one(void *arg, const char *profile_type, size_t available)
{
    mes_stock_walk *w = arg;
    json_object_set_new(w->obj, profile_type, json_integer((json_int_t)available));
    if (w->low && available < w->m->stock_low)
        json_array_append_new(w->low, json_pack("{s:s,s:I}", "profile_type", profile_type, "available",
                                                (json_int_t)available));
    return IFPP_OK;
}

/* The stock per profile type, or NULL with why. */
static json_t *mes_stock(mes *m, json_t *low, char *why, size_t why_len)
{
    if (!m->ro) {
        snprintf(why, why_len, "no store connection");
        return NULL;
    }
    mes_stock_walk w = {json_object(), m, low};
    ifpp_err e = store_each_stock(m->ro, mes_stock_one, &w);
    if (e != IFPP_OK) {
        snprintf(why, why_len, "store: %s (%s)", err_str(e), store_errmsg(m->ro));
        json_decref(w.obj);
        return NULL;
    }
    return w.obj;
}

/* After completions (one query per loop round, however many completed): a StockLow event for each type newly
 * under the threshold. */
static void mes_stock_check(mes *m)
{
    if (!m->stock_dirty || m->stock_low == 0)
        return;
    m->stock_dirty = false;
    char why[256];
    json_t *low = json_array();
    json_t *all = mes_stock(m, low, why, sizeof why);
    size_t i;
    json_t *v;
    json_array_foreach(low, i, v) {
        const char *pt = json_string_value(json_object_get(v, "profile_type"));
        bool seen = false;
        for (size_t k = 0; k < m->n_low && !seen; k++)
            seen = !strcmp(m->low[k], pt);
        if (seen)
            continue;
        if (m->n_low < 64)
            snprintf(m->low[m->n_low++], sizeof m->low[0], "%s", pt);
        alog(LOG_LVL_WARN, NULL, "stock low: %s has %lld BPP(s) left (warning under %zu)", pt,
             (long long)json_integer_value(json_object_get(v, "available")), m->stock_low);
        json_object_set_new(v, "event", json_string("StockLow"));
        json_object_set_new(v, "threshold", json_integer((json_int_t)m->stock_low));
        size_t len;
        char *l = mes_line(json_incref(v), &len);
        for (size_t c = 0; l && c < m->n_cl; c++)
            if (m->cl[c].subscribed && !mes_send(m, c, l, len))
                c--;
        free(l);
    }
    json_decref(low);
    json_decref(all);
}

static void mes_drain(mes *m)
{
    uint64_t cnt;
    if (read(m->efd, &cnt, sizeof cnt) < 0) { /* nothing pending: EAGAIN */
    }
    pthread_mutex_lock(&m->mu);
    mes_msg *q = m->head;
    m->head = m->tail = NULL;
    m->pending = 0;
    pthread_mutex_unlock(&m->mu);
    while (q) {
        mes_msg *next = q->next;
        if (q->client == UINT64_MAX)
            mes_remember(m, q->line);
        else if (q->client) {
            ssize_t i = mes_find(m, q->client);
            if (i >= 0)
                mes_send(m, (size_t)i, q->line, q->len);
        } else {
            for (size_t i = 0; i < m->n_cl; i++)
                if (m->cl[i].subscribed && !mes_send(m, i, q->line, q->len))
                    i--; /* cut: the last client moved into i */
        }
        m->stock_dirty |= q->stock_check;
        free(q->line);
        free(q);
        q = next;
    }
}

static json_t *mes_slot_json(const slot_info *si)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "slot", si->name, "spec", si->spec, "state",
                     slot_state_name(si->state), "serial", si->serial, "eid", si->eid, "step", si->step,
                     "last_serial", si->last_serial, "last_result", si->last_result, "fault", si->fault, "pass",
                     (json_int_t)si->pass, "fail", (json_int_t)si->fail);
}

/* ---- report: written by a worker thread, so that the loop never waits for a medium ---------------- */

typedef struct {
    mes *m;
    uint64_t client;
    char id[72];
    bool to_dir;
    char path[MES_PATH_MAX], day[16];
    agent_config *cfg; /* a copy: the store and trust files as configured when it was asked */
} mes_report_job;

/* Appends {name, bytes, sha256} of the regular file name under dirfd (read as the medium holds it now). */
static ifpp_err mes_file_entry(int dirfd, const char *name, json_t *files, char *why, size_t why_len)
{
    uint8_t buf[65536], md[CRYPTO_SHA256_LEN];
    char hex[2 * CRYPTO_SHA256_LEN + 1];
    struct stat st;
    crypto_sha256_ctx h;
    uint64_t total = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err_why(why, why_len, "%s: written, but cannot be read back for its hash: %s", name,
                fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return IFPP_E_IO;
    }
    ifpp_err e = crypto_sha256_init(&h);
    while (e == IFPP_OK && total < (uint64_t)st.st_size) { /* bounded by the size it had when opened */
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            e = IFPP_E_IO;
            break;
        }
        total += (uint64_t)r;
        e = crypto_sha256_update(&h, buf, (size_t)r);
    }
    close(fd);
    if (e == IFPP_OK)
        e = crypto_sha256_final(&h, md);
    else
        crypto_sha256_abort(&h);
    if (e != IFPP_OK || hex_encode(md, sizeof md, hex, sizeof hex) != IFPP_OK) {
        err_why(why, why_len, "%s: cannot read it back for its hash", name);
        return e ? e : IFPP_E_INTERNAL;
    }
    json_array_append_new(files, json_pack("{s:s,s:I,s:s}", "name", name, "bytes", (json_int_t)total, "sha256", hex));
    return IFPP_OK;
}

static json_t *mes_report_error(const mes_report_job *j, const char *code, const char *why)
{
    return json_pack("{s:o,s:b,s:s,s:s}", "id", mes_id(j->id), "ok", 0, "error", code, "message", why);
}

/* The day's three files onto the medium at j->path, as `ifppctl report --to DIR` writes them. */
static json_t *mes_report_dir(const mes_report_job *j, station *st, char *why, size_t why_len)
{
    export_day_summary sum;
    char day[16];
    if (j->day[0]) {
        snprintf(day, sizeof day, "%s", j->day);
    } else { /* today, UTC, as ifppctl */
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(day, sizeof day, "%Y-%m-%d", &tm);
    }
    ifpp_err e = export_day_to_media(st->st, st->station_id, day, st->station_key, st->station_cert, st->dm_root,
                                     j->path, &sum, why, why_len);
    if (e != IFPP_OK) /* as ifppctl's exit codes: a bad destination or day is refused, the rest is ours */
        return mes_report_error(j, e == IFPP_E_ARG || e == IFPP_E_NOT_FOUND ? "refused" : "station-failure", why);
    json_t *files = json_array();
    int dfd = open(j->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const char *names[] = {sum.plr_name, sum.csv_name, sum.html_name};
    for (size_t k = 0; k < 3 && e == IFPP_OK; k++)
        e = dfd < 0 ? IFPP_E_IO : mes_file_entry(dfd, names[k], files, why, why_len);
    if (dfd >= 0)
        close(dfd);
    if (e != IFPP_OK) {
        json_decref(files);
        return mes_report_error(j, "station-failure", *why ? why : "the destination directory is gone");
    }
    return json_pack("{s:o,s:b,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "id", mes_id(j->id), "ok", 1,
                     "status", "written", "dir", j->path, "day", day, "results", (json_int_t)sum.plr.results, "pirs",
                     (json_int_t)sum.plr.pirs, "no_result", (json_int_t)sum.plr.no_result, "rows",
                     (json_int_t)sum.tables.rows, "pass", (json_int_t)sum.tables.pass, "fail",
                     (json_int_t)sum.tables.fail, "unresolved", (json_int_t)sum.tables.unresolved, "unused",
                     (json_int_t)sum.tables.unused, "removed", (json_int_t)sum.tables.removed, "stale_removed",
                     (json_int_t)sum.stale_removed, "files", files);
}

/*
 * The signed report alone into the file j->path, as `ifppctl report --out FILE` writes it. The daemon writes
 * what a client names only onto removable media: the file's directory must pass the same checks as a `dir`
 * (media_open_dest: a mounted filesystem other than '/' and the store's), so that no client can have it
 * replace a file on the station's own disk (its configuration, its state) under the daemon's user.
 */
static json_t *mes_report_out(const mes_report_job *j, station *st, char *why, size_t why_len)
{
    export_summary sum;
    char dir[MES_PATH_MAX];
    const char *slash = strrchr(j->path, '/'), *name = slash + 1;
    if (station_check_output(st, j->path, why, why_len) != IFPP_OK)
        return mes_report_error(j, "bad-request", why);
    if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) {
        err_why(why, why_len, "out %s names no file", j->path);
        return mes_report_error(j, "bad-request", why);
    }
    snprintf(dir, sizeof dir, "%.*s", slash == j->path ? 1 : (int)(slash - j->path), j->path);
    int dfd = -1;
    ifpp_err e = media_open_dest(dir, st->store_path, &dfd, why, why_len);
    if (e != IFPP_OK)
        return mes_report_error(j, "refused", why);
    e = export_loading_report(st->st, st->station_id, j->day[0] ? j->day : NULL, st->station_key, st->station_cert,
                              st->dm_root, j->path, &sum, why, why_len);
    json_t *files = json_array();
    if (e == IFPP_OK)
        e = mes_file_entry(dfd, name, files, why, why_len);
    close(dfd);
    if (e != IFPP_OK) {
        json_decref(files);
        return mes_report_error(j, e == IFPP_E_NOMEM || e == IFPP_E_INTERNAL || e == IFPP_E_IO || e == IFPP_E_CRYPTO
                                       ? "station-failure" : "refused", why);
    }
    return json_pack("{s:o,s:b,s:s,s:s,s:o,s:I,s:I,s:I,s:o}", "id", mes_id(j->id), "ok", 1, "status", "written", "out",
                     j->path, "day", j->day[0] ? json_string(j->day) : json_null(), "results",
                     (json_int_t)sum.results, "pirs", (json_int_t)sum.pirs, "no_result", (json_int_t)sum.no_result,
                     "files", files);
}

static void *mes_report_run(void *arg)
{
    mes_report_job *j = arg;
    station_config sc;
    station *st = NULL;
    char why[1024] = "";
    json_t *reply;
    config_station(j->cfg, &sc);
    /* its own read-only store connection (a connection belongs to its thread) and the station's signing key */
    ifpp_err e = station_open(&sc, STATION_NEED_STORE | STATION_STORE_MUST_EXIST | STATION_STORE_READONLY |
                                       STATION_NEED_STATION_KEY | STATION_NEED_DM_ROOT, &st, why, sizeof why);
    if (e != IFPP_OK)
        reply = mes_report_error(j, "station-failure", why);
    else
        reply = j->to_dir ? mes_report_dir(j, st, why, sizeof why) : mes_report_out(j, st, why, sizeof why);
    station_close(st);
    alog(json_is_true(json_object_get(reply, "ok")) ? LOG_LVL_INFO : LOG_LVL_WARN, NULL, "report to %s: %s", j->path,
         json_is_true(json_object_get(reply, "ok")) ? "written" : json_string_value(json_object_get(reply, "message")));
    /* free for the next one before its requester hears of this one (the next start joins this thread) */
    pthread_mutex_lock(&j->m->mu);
    j->m->report_running = false;
    pthread_mutex_unlock(&j->m->mu);
    mes_post(j->m, j->client, reply, false);
    free(j->cfg);
    free(j);
    return NULL;
}

/* One report at a time: a second asks again when the first is done (a medium is written by one writer). */
static void mes_report_start(mes *m, size_t i, const mes_request *rq)
{
    char why[MES_PATH_MAX + 128];
    pthread_mutex_lock(&m->mu);
    bool running = m->report_running;
    pthread_mutex_unlock(&m->mu);
    if (running) {
        snprintf(why, sizeof why, "a report is being written already (to %s): ask again when it is done",
                 m->report_to);
        mes_error(m, i, rq->id, "busy", why);
        return;
    }
    if (m->report_joinable) { /* the last one has ended: its thread is only waiting to be joined */
        pthread_join(m->report_th, NULL);
        m->report_joinable = false;
    }
    mes_report_job *j = calloc(1, sizeof *j);
    if (j && !(j->cfg = malloc(sizeof *j->cfg))) {
        free(j);
        j = NULL;
    }
    if (!j) {
        mes_error(m, i, rq->id, "station-failure", "out of memory");
        return;
    }
    *j->cfg = *m->cfg;
    j->m = m;
    j->client = m->cl[i].id;
    j->to_dir = rq->to_dir;
    snprintf(j->id, sizeof j->id, "%s", rq->id);
    snprintf(j->path, sizeof j->path, "%s", rq->path[0] ? rq->path : m->cfg->report_dir);
    snprintf(j->day, sizeof j->day, "%s", rq->day);
    snprintf(m->report_to, sizeof m->report_to, "%s", j->path);
    m->report_running = true;
    int rc = pthread_create(&m->report_th, NULL, mes_report_run, j);
    if (rc != 0) {
        m->report_running = false;
        free(j->cfg);
        free(j);
        snprintf(why, sizeof why, "cannot start the report's thread: %s", strerror(rc));
        mes_error(m, i, rq->id, "station-failure", why);
        return;
    }
    m->report_joinable = true;
}

static void mes_handle(mes *m, size_t i, const char *line, size_t n)
{
    mes_request rq;
    char err[512];
    mes_client *c = &m->cl[i];
    if (mes_parse_request(line, n, &rq, err, sizeof err) != IFPP_OK) {
        alog(LOG_LVL_WARN, NULL, "MES client %llu (pid %ld uid %ld gid %ld): bad request: %s",
             (unsigned long long)c->id, (long)c->pid, (long)c->uid, (long)c->gid, err);
        mes_error(m, i, rq.id, "bad-request", err);
        return;
    }
    alog(LOG_LVL_INFO, &(alog_fields){.slot = rq.slot, .serial = rq.serial}, "MES request %s %s from pid %ld uid %ld gid %ld",
         rq.id, mes_op_names[rq.op], (long)c->pid, (long)c->uid, (long)c->gid);
    char why[512] = "";
    switch (rq.op) {
    case MES_OP_PING:
        mes_reply(m, i, json_pack("{s:o,s:b}", "id", mes_id(rq.id), "ok", 1));
        return;
    case MES_OP_SUBSCRIBE:
    case MES_OP_UNSUBSCRIBE:
        c->subscribed = rq.op == MES_OP_SUBSCRIBE;
        mes_reply(m, i, json_pack("{s:o,s:b,s:b}", "id", mes_id(rq.id), "ok", 1, "subscribed", c->subscribed));
        return;
    case MES_OP_STOCK: {
        json_t *s = mes_stock(m, NULL, why, sizeof why);
        if (!s)
            mes_error(m, i, rq.id, "station-failure", why);
        else
            mes_reply(m, i, json_pack("{s:o,s:b,s:o,s:I}", "id", mes_id(rq.id), "ok", 1, "stock", s, "low_under",
                                      (json_int_t)m->stock_low));
        return;
    }
    case MES_OP_CANCEL: {
        /* Only work that has not touched the store yet may be cancelled: queued, or waiting for its card. A
         * session under way is never interrupted (exactly once: it ends on its own, PASS or FAIL). */
        char rid[72];
        json_t *jid = json_string(rq.request);
        char *t = jid ? json_dumps(jid, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
        json_decref(jid);
        snprintf(rid, sizeof rid, "%s", t ? t : "");
        free(t);
        ifpp_err e = slots_cancel(m->sl, c->id, rid, rq.request, why, sizeof why);
        if (e == IFPP_E_NOT_FOUND) { /* the provision's id may have been a number */
            char why2[512] = "";
            if (slots_cancel(m->sl, c->id, rq.request, rq.request, why2, sizeof why2) == IFPP_OK)
                e = IFPP_OK;
        }
        if (e != IFPP_OK)
            mes_error(m, i, rq.id, e == IFPP_E_NOT_FOUND ? "not-found" : "not-cancellable", why);
        else
            mes_reply(m, i, json_pack("{s:o,s:b,s:s}", "id", mes_id(rq.id), "ok", 1, "cancelled", rq.request));
        return;
    }
    case MES_OP_QUERY: {
        if (rq.what == MES_Q_STATION) {
            size_t busy, fault, total;
            slots_counts(m->sl, &busy, &fault, &total);
            json_t *arr = json_array();
            slot_info si;
            for (size_t k = 0; slots_info(m->sl, k, &si); k++)
                json_array_append_new(arr, mes_slot_json(&si));
            mes_reply(m, i, json_pack("{s:o,s:b,s:I,s:I,s:I,s:I,s:o}", "id", mes_id(rq.id), "ok", 1, "slots_total",
                                      (json_int_t)total, "slots_busy", (json_int_t)busy, "slots_fault",
                                      (json_int_t)fault, "clients", (json_int_t)m->n_cl, "slots", arr));
        } else if (rq.what == MES_Q_SLOT) {
            int k = slots_index(m->sl, rq.slot);
            slot_info si;
            if (k < 0 || !slots_info(m->sl, (size_t)k, &si)) {
                snprintf(why, sizeof why, "no slot named '%s'", rq.slot);
                mes_error(m, i, rq.id, "not-found", why);
            } else
                mes_reply(m, i, json_pack("{s:o,s:b,s:o}", "id", mes_id(rq.id), "ok", 1, "slot", mes_slot_json(&si)));
        } else {
            slot_info si;
            for (size_t k = 0; slots_info(m->sl, k, &si); k++)
                if (!strcmp(si.serial, rq.serial)) {
                    mes_reply(m, i, json_pack("{s:o,s:b,s:s,s:s,s:s,s:s,s:s}", "id", mes_id(rq.id), "ok", 1, "serial",
                                              rq.serial, "state", "in-progress", "slot", si.name, "eid", si.eid,
                                              "step", si.step));
                    return;
                }
            for (size_t k = 0; k < MES_RECENT && k < m->recent_next; k++) {
                const mes_recent *r = &m->recent[(m->recent_next - 1 - k) % MES_RECENT];
                if (!strcmp(r->serial, rq.serial)) {
                    mes_reply(m, i, json_pack("{s:o,s:b,s:s,s:s,s:s,s:s,s:s,s:s}", "id", mes_id(rq.id), "ok", 1,
                                              "serial", rq.serial, "state", "done", "slot", r->slot, "eid", r->eid,
                                              "result", r->result, "message", r->message));
                    return;
                }
            }
            snprintf(why, sizeof why, "DUT %s: not in a slot and not among the last %d finished", rq.serial,
                     MES_RECENT);
            mes_error(m, i, rq.id, "not-found", why);
        }
        return;
    }
    case MES_OP_RECOVER: {
        slot_job job = {.client = c->id, .recover = true};
        snprintf(job.id, sizeof job.id, "%s", rq.id);
        char chosen[32] = "";
        ifpp_err e = slots_submit(m->sl, rq.slot, &job, chosen, why, sizeof why);
        if (e != IFPP_OK)
            mes_error(m, i, rq.id, e == IFPP_E_BUSY ? "busy" : e == IFPP_E_NOT_FOUND ? "not-found" : "refused", why);
        else
            mes_reply(m, i, json_pack("{s:o,s:b,s:s,s:s}", "id", mes_id(rq.id), "ok", 1, "status", "accepted", "slot",
                                      chosen));
        return;
    }
    case MES_OP_REPORT:
        mes_report_start(m, i, &rq);
        return;
    case MES_OP_PROVISION: {
        slot_job job = {.client = c->id,
                        .flags = (rq.complete ? STATION_COMPLETE : 0u) |
                                 (rq.additional_profile ? STATION_ADDITIONAL_PROFILE : 0u)};
        snprintf(job.id, sizeof job.id, "%s", rq.id);
        snprintf(job.serial, sizeof job.serial, "%s", rq.serial);
        snprintf(job.profile_type, sizeof job.profile_type, "%s", rq.profile_type);
        char chosen[32] = "";
        ifpp_err e = slots_submit(m->sl, rq.slot[0] ? rq.slot : NULL, &job, chosen, why, sizeof why);
        if (e != IFPP_OK)
            mes_error(m, i, rq.id, e == IFPP_E_BUSY ? "busy" : e == IFPP_E_NOT_FOUND ? "not-found" : "refused", why);
        else
            mes_reply(m, i, json_pack("{s:o,s:b,s:s,s:s,s:s}", "id", mes_id(rq.id), "ok", 1, "status", "accepted",
                                      "slot", chosen, "serial", rq.serial));
        return;
    }
    }
}

/* Reads what the client sent and handles each complete line; false if it was cut. A few reads per round at
 * most, so that a client that keeps sending cannot keep the loop from the others. */
static bool mes_read(mes *m, size_t i)
{
    for (int round = 0; round < 8; round++) {
        mes_client *c = &m->cl[i];
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap + 1 - c->in_len, MSG_DONTWAIT);
        if (r == 0) {
            close(c->fd);
            free(c->in);
            free(c->out);
            m->cl[i] = m->cl[--m->n_cl];
            return false;
        }
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? true : (mes_cut(m, i, strerror(errno)),
                                                                                       false);
        c->in_len += (size_t)r;
        size_t start = 0;
        uint64_t id = c->id;
        for (size_t k = 0; k < c->in_len; k++) {
            if (c->in[k] != '\n')
                continue;
            size_t n = k - start;
            if (n && c->in[start + n - 1] == '\r')
                n--;
            if (n)
                mes_handle(m, i, c->in + start, n);
            if (mes_find(m, id) != (ssize_t)i)
                return false; /* cut while answering */
            c = &m->cl[i];
            start = k + 1;
        }
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
        if (c->in_len > c->in_cap) {
            char why[96];
            snprintf(why, sizeof why, "request line longer than %zu bytes", c->in_cap);
            mes_error(m, i, "null", "line-too-long", why);
            if (mes_find(m, id) == (ssize_t)i)
                mes_cut(m, i, why);
            return false;
        }
    }
    return true;
}

static void mes_accept(mes *m)
{
    for (;;) {
        int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct ucred cr = {0};
        socklen_t cl = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0) {
            close(fd);
            continue;
        }
        if (m->n_cl >= m->max_clients) {
            static const char full[] = "{\"id\":null,\"ok\":false,\"error\":\"too-many-clients\",\"message\":\"the "
                                       "station serves at most mes.max_clients clients\"}\n";
            if (send(fd, full, sizeof full - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) { /* it learns from the close */
            }
            alog(LOG_LVL_WARN, NULL, "MES client pid %ld uid %ld refused: already %zu clients", (long)cr.pid,
                 (long)cr.uid, m->n_cl);
            close(fd);
            continue;
        }
        /* The kernel's own buffer is bounded too, so that max_queue is what a client may owe. */
        int sb = (int)(m->max_queue < 65536 ? m->max_queue : 65536);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
        if (m->n_cl == m->cap_cl) {
            size_t cap = m->cap_cl ? m->cap_cl * 2 : 8;
            mes_client *p = realloc(m->cl, cap * sizeof *p);
            if (!p) {
                close(fd);
                return;
            }
            m->cl = p;
            m->cap_cl = cap;
        }
        mes_client *c = &m->cl[m->n_cl];
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->id = ++m->next_id;
        c->pid = cr.pid;
        c->uid = cr.uid;
        c->gid = cr.gid;
        c->in_cap = m->max_line;
        if (!(c->in = malloc(c->in_cap + 1))) {
            close(fd);
            return;
        }
        m->n_cl++;
        alog(LOG_LVL_INFO, NULL, "MES client %llu connected: pid %ld uid %ld gid %ld", (unsigned long long)c->id,
             (long)cr.pid, (long)cr.uid, (long)cr.gid);
    }
}

ifpp_err mes_poll(mes *m, int timeout_ms, int extra_fd, bool *extra_ready)
{
    size_t n = m->n_cl;
    struct pollfd *p = calloc(n + 3, sizeof *p);
    if (!p)
        return IFPP_E_NOMEM;
    p[0] = (struct pollfd){.fd = m->lfd, .events = POLLIN};
    p[1] = (struct pollfd){.fd = m->efd, .events = POLLIN};
    p[2] = (struct pollfd){.fd = extra_fd, .events = POLLIN};
    uint64_t *ids = calloc(n + 1, sizeof *ids);
    if (!ids) {
        free(p);
        return IFPP_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        p[3 + i] = (struct pollfd){.fd = m->cl[i].fd, .events = POLLIN | (m->cl[i].out_len ? POLLOUT : 0)};
        ids[i] = m->cl[i].id;
    }
    if (extra_ready)
        *extra_ready = false;
    int r = poll(p, n + 3, timeout_ms);
    if (r > 0) {
        for (size_t k = 0; k < n; k++) {
            if (!p[3 + k].revents)
                continue;
            ssize_t i = mes_find(m, ids[k]); /* indexes move as clients are cut */
            if (i < 0)
                continue;
            if ((p[3 + k].revents & POLLOUT) && !mes_flush(&m->cl[i])) {
                mes_cut(m, (size_t)i, "write failed (it hung up)");
                continue;
            }
            if (p[3 + k].revents & (POLLIN | POLLHUP | POLLERR))
                mes_read(m, (size_t)i);
        }
        if (p[1].revents & POLLIN)
            mes_drain(m);
        if (p[0].revents & POLLIN)
            mes_accept(m);
        if (extra_ready && extra_fd >= 0 && (p[2].revents & POLLIN))
            *extra_ready = true;
    }
    mes_stock_check(m);
    free(p);
    free(ids);
    return r < 0 && errno != EINTR ? IFPP_E_IO : IFPP_OK;
}

ifpp_err mes_open(const agent_config *c, mes **out, char *why, size_t why_len)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(c->mes_path) >= sizeof sa.sun_path) {
        err_why(why, why_len, "mes.path %s: longer than a socket path may be", c->mes_path);
        return IFPP_E_ARG;
    }
    gid_t gid = (gid_t)-1;
    if (c->mes_group[0]) {
        struct group *g = getgrnam(c->mes_group);
        if (!g) {
            err_why(why, why_len, "mes.group %s: no such group", c->mes_group);
            return IFPP_E_ARG;
        }
        gid = g->gr_gid;
    }
    mes *m = calloc(1, sizeof *m);
    if (!m || !(m->recent = calloc(MES_RECENT, sizeof *m->recent)) || !(m->cfg = malloc(sizeof *m->cfg))) {
        if (m)
            free(m->recent);
        free(m);
        return IFPP_E_NOMEM;
    }
    pthread_mutex_init(&m->mu, NULL);
    m->lfd = m->efd = -1;
    mes_reload(m, c);
    snprintf(m->path, sizeof m->path, "%s", c->mes_path);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", c->mes_path);
    struct stat st;
    /* Only a socket is replaced (a previous run's); any other file there is the operator's. */
    if (lstat(m->path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        err_why(why, why_len, "mes.path %s exists and is not a socket", m->path);
        goto fail;
    }
    if ((m->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
        (m->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        err_why(why, why_len, "MES socket: %s", strerror(errno));
        goto fail;
    }
    unlink(m->path);
    mode_t old = umask(0177); /* nobody may connect before the mode and group are set */
    int b = bind(m->lfd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (b != 0 || listen(m->lfd, 64) != 0) {
        err_why(why, why_len, "mes.path %s: %s", m->path, strerror(errno));
        goto fail;
    }
    if ((gid != (gid_t)-1 && chown(m->path, (uid_t)-1, gid) != 0) || chmod(m->path, c->mes_mode) != 0) {
        err_why(why, why_len, "mes.path %s: setting group %s and mode %04o: %s", m->path, c->mes_group, c->mes_mode,
                strerror(errno));
        unlink(m->path);
        goto fail;
    }
    *out = m;
    return IFPP_OK;
fail:
    if (m->lfd >= 0)
        close(m->lfd);
    if (m->efd >= 0)
        close(m->efd);
    free(m->recent);
    free(m->cfg);
    free(m);
    return IFPP_E_IO;
}

void mes_attach(mes *m, slots *sl, store *ro)
{
    m->sl = sl;
    m->ro = ro;
}

void mes_reload(mes *m, const agent_config *c)
{
    m->max_clients = c->mes_max_clients;
    m->max_line = c->mes_max_line;
    m->max_queue = c->mes_max_queue;
    m->stock_low = c->stock_low;
    *m->cfg = *c; /* a report asked from now on opens the station as now configured */
    /* clients already connected keep the line limit they were accepted with (their buffer's size) */
}

void mes_close(mes *m)
{
    if (!m)
        return;
    if (m->report_joinable) /* a report under way ends on its own (a medium is never left half written) */
        pthread_join(m->report_th, NULL);
    mes_drain(m);
    for (size_t i = 0; i < m->n_cl; i++) {
        mes_flush(&m->cl[i]);
        close(m->cl[i].fd);
        free(m->cl[i].in);
        free(m->cl[i].out);
    }
    free(m->cl);
    close(m->lfd);
    close(m->efd);
    unlink(m->path);
    pthread_mutex_destroy(&m->mu);
    free(m->recent);
    free(m->cfg);
    free(m);
}
