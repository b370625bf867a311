/*
 * slots.c -- one thread per fixture slot (see slots.h and docs/agent.md for why threads).
 *
 * Each thread opens its own `station` (store connection, DM FPA key) at start and keeps it; it
 * opens the slot's backend at each session's start and closes it at its end, as a DUT comes and
 * goes, so that a reader that vanished faults that session alone and the next scan tries again.
 * The shared table is guarded by one mutex; a session runs without it.
 */
#include "slots.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alog.h"
#include "hex.h"

typedef struct {
    struct slots *owner;
    pthread_t thread;
    bool started, joined;
    char name[32], spec[1024], next_spec[1024];
    slot_state state;
    bool has_job, cancel, removed;
    slot_job job;
    char eid[33], step[24], last_serial[72], last_result[24], fault[256];
    unsigned long long pass, fail;
} slot_rec;

struct slots {
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* a job arrived, a session ended, or stop */
    agent_config cfg;        /* the station part: each thread's station_open */
    slots_event_fn fn;
    void *arg;
    bool stopping;
    size_t n, running;
    store_group *group;      /* the slots' one committer: their moves share durable commits (docs/store.md) */
    slot_rec rec[CONFIG_MAX_SLOTS];
};

const char *slot_state_name(slot_state s)
{
    static const char *const names[] = {"idle", "busy", "fault", "removed"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

static void slots_emit(slot_rec *r, slot_event *ev)
{
    ev->slot = r->name;
    r->owner->fn(r->owner->arg, ev);
}

static void slots_set_state(slot_rec *r, slot_state st)
{
    slots *s = r->owner;
    pthread_mutex_lock(&s->mu);
    bool changed = r->state != st && r->state != SLOT_REMOVED;
    if (changed)
        r->state = st;
    pthread_mutex_unlock(&s->mu);
    if (changed) {
        slot_event ev = {.kind = SLOT_EV_STATE, .state = st};
        slots_emit(r, &ev);
    }
}

typedef struct {
    slot_rec *r;
    const slot_job *job;
    const session_result *res;
} slot_progress;

/* The session's step: kept for queries, logged with fields, sent as an event (the console's progress bar). */
static void slots_progress(void *arg, session_step step, const char *detail)
{
    slot_progress *p = arg;
    slot_rec *r = p->r;
    slots *s = r->owner;
    char eid[33] = "";
    pthread_mutex_lock(&s->mu);
    snprintf(r->step, sizeof r->step, "%s", session_step_name(step));
    if (step > SESSION_STEP_EID && !r->eid[0] && p->res) {
        static const uint8_t zero[16];
        if (memcmp(p->res->eid, zero, 16))
            hex_encode(p->res->eid, 16, r->eid, sizeof r->eid);
    }
    snprintf(eid, sizeof eid, "%s", r->eid);
    pthread_mutex_unlock(&s->mu);
    alog(LOG_LVL_DEBUG, &(alog_fields){r->name, p->job->serial, eid, session_step_name(step)}, "%s",
         detail ? detail : "");
    slot_event ev = {.kind = SLOT_EV_STEP, .job = p->job, .eid = eid, .step = session_step_name(step)};
    slots_emit(r, &ev);
}

/* Waits for the DUT's card where the slot is configured to (card-wait) and its backend can tell; a cancel ends it. */
static ifpp_err slots_wait_card(slot_rec *r, station_slot *sl)
{
    long left = sl->opt.card_wait_ms;
    while (left > 0) {
        long chunk = left < 250 ? left : 250;
        ifpp_err e = fpa_wait_card(&sl->fpa, true, chunk);
        if (e != IFPP_E_TIMEOUT)
            return e == IFPP_E_ARG ? IFPP_OK : e; /* IFPP_E_ARG: the backend cannot tell; go on */
        left -= chunk;
        pthread_mutex_lock(&r->owner->mu);
        bool cancel = r->cancel || r->owner->stopping;
        pthread_mutex_unlock(&r->owner->mu);
        if (cancel)
            return IFPP_E_ARG;
    }
    return IFPP_OK;
}

/* Runs one job; res and eid get its end, for the completion the caller sends once the slot is free again. */
static station_verdict slots_session(slot_rec *r, station *st, const slot_job *job, const char *spec,
                                     session_result *out, char eid[33])
{
    station_slot sl;
    session_result res;
    char why[512] = "";
    station_verdict v;
    memset(&sl, 0, sizeof sl);
    memset(&res, 0, sizeof res);
    res.card_result = -1;
    res.failed_step = SESSION_STEP__COUNT;

    alog(LOG_LVL_INFO, &(alog_fields){.slot = r->name, .serial = job->serial}, "work started (request %s, profile type %s)",
         job->id, job->profile_type[0] ? job->profile_type : "any");
    slot_event ev = {.kind = SLOT_EV_STARTED, .job = job, .eid = ""};
    slots_emit(r, &ev);

    pthread_mutex_lock(&r->owner->mu);
    bool cancelled = r->cancel;
    if (!cancelled)
        snprintf(r->step, sizeof r->step, "card-wait");
    pthread_mutex_unlock(&r->owner->mu);
    station_slot_options opt; /* apart from sl: station_slot_open starts by clearing sl */
    ifpp_err e = cancelled ? IFPP_E_ARG : station_slot_parse(spec, &opt, why, sizeof why);
    if (cancelled)
        snprintf(why, sizeof why, "cancelled before it started");
    if (e == IFPP_OK)
        e = station_slot_open(&opt, &sl, why, sizeof why);
    if (e == IFPP_OK && sl.opt.card_wait_ms > 0 && (e = slots_wait_card(r, &sl)) != IFPP_OK)
        snprintf(why, sizeof why, "%s", e == IFPP_E_ARG ? "cancelled while waiting for the DUT's card"
                                                        : "the DUT's card did not arrive in time");
    if (e != IFPP_OK) {
        v = e == IFPP_E_ARG && strstr(why, "cancelled") ? STATION_REFUSED
            : e == IFPP_E_NO_CARD || e == IFPP_E_TIMEOUT ? STATION_DUT_FAIL : STATION_FAILURE;
        snprintf(res.message, sizeof res.message, "slot %s: %.200s", r->name, why[0] ? why : err_str(e));
        if (v == STATION_FAILURE) {
            pthread_mutex_lock(&r->owner->mu);
            snprintf(r->fault, sizeof r->fault, "%s", res.message);
            pthread_mutex_unlock(&r->owner->mu);
            alog(LOG_LVL_ERROR, &(alog_fields){.slot = r->name, .serial = job->serial}, "fault: %s", res.message);
            slot_event fe = {.kind = SLOT_EV_FAULT, .message = res.message};
            slots_emit(r, &fe);
        }
    } else {
        slot_progress p = {r, job, &res};
        v = station_provision(st, &sl, job->serial, job->profile_type[0] ? job->profile_type : NULL, job->flags,
                              slots_progress, &p, &res);
    }
    station_slot_close(&sl);

    static const uint8_t zero[16];
    eid[0] = 0;
    if (memcmp(res.eid, zero, 16))
        hex_encode(res.eid, 16, eid, 33);
    pthread_mutex_lock(&r->owner->mu);
    snprintf(r->last_serial, sizeof r->last_serial, "%s", job->serial);
    snprintf(r->last_result, sizeof r->last_result, "%s", station_verdict_name(v));
    if (v == STATION_PASS)
        r->pass++;
    else
        r->fail++;
    pthread_mutex_unlock(&r->owner->mu);
    alog(v == STATION_PASS ? LOG_LVL_INFO : LOG_LVL_WARN,
         &(alog_fields){r->name, job->serial, eid, res.failed_step < SESSION_STEP__COUNT ?
                                                       session_step_name(res.failed_step) : NULL},
         "work completed: %s: %s", station_verdict_name(v), res.message);
    *out = res;
    return v;
}

/* A recover job's outcomes, as station_recover reports each BPP. */
static void slots_note_outcome(void *arg, const uint8_t *txid, size_t txid_len, bpp_state to, const char *why)
{
    slot_recovery *rc = arg;
    if (rc->n == SLOT_OUTCOMES_MAX) {
        rc->dropped++;
        return;
    }
    slot_outcome *o = &rc->outcome[rc->n++];
    if (!txid_len || hex_encode(txid, txid_len, o->txid, sizeof o->txid) != IFPP_OK)
        snprintf(o->txid, sizeof o->txid, "-");
    o->to = to;
    snprintf(o->why, sizeof o->why, "%s", why ? why : "");
}

/*
 * A recover job (MES `recover`): the card in the slot tells what became of its reserved or in-doubt BPPs
 * (station_recover, as `ifppctl recover` runs it). No WorkStarted: no DUT was scanned for it.
 */
static station_verdict slots_recover(slot_rec *r, station *st, const char *spec, slot_recovery *rc,
                                     session_result *res)
{
    station_slot sl;
    station_slot_options opt;
    char why[512] = "";
    memset(&sl, 0, sizeof sl);
    pthread_mutex_lock(&r->owner->mu);
    snprintf(r->step, sizeof r->step, "recover"); /* under way: not cancellable (slots_cancel) */
    pthread_mutex_unlock(&r->owner->mu);
    alog(LOG_LVL_INFO, &(alog_fields){.slot = r->name}, "recovery started");
    ifpp_err e = st ? station_slot_parse(spec, &opt, why, sizeof why) : IFPP_E_INTERNAL;
    if (e == IFPP_OK && (e = station_slot_open(&opt, &sl, why, sizeof why)) == IFPP_OK)
        e = station_recover(st, &sl, &rc->resolved, slots_note_outcome, rc, why, sizeof why);
    station_slot_close(&sl);
    station_verdict v = station_verdict_of_recover(e);
    if (e == IFPP_OK)
        snprintf(res->message, sizeof res->message, "%zu BPP(s) resolved from the eUICC's evidence", rc->resolved);
    else
        snprintf(res->message, sizeof res->message, "slot %s: %.200s", r->name, why[0] ? why : err_str(e));
    alog(e == IFPP_OK ? LOG_LVL_INFO : LOG_LVL_WARN, &(alog_fields){.slot = r->name}, "recovery: %s", res->message);
    return v;
}

/* The profile type of the BPP the session took (the store's row), else the one asked for. */
static void slots_profile_type(station *st, const slot_job *job, const session_result *res, char *out, size_t cap)
{
    store_bpp b;
    snprintf(out, cap, "%s", job->profile_type);
    if (st && res->txid_len && store_get_bpp(st->st, res->txid, res->txid_len, &b) == IFPP_OK)
        snprintf(out, cap, "%s", b.profile_type);
}

ifpp_err slots_station_open(const agent_config *c, station **out, char *why, size_t why_len)
{
    station_config sc;
    config_station(c, &sc); /* a key named by a PKCS#11 URI is the token's: station_open loads it as ifppctl does */
    return station_open(&sc, STATION_NEED_STORE | STATION_STORE_MUST_EXIST | STATION_NEED_DM_FPA, out, why, why_len);
}

static void *slots_thread(void *arg)
{
    slot_rec *r = arg;
    slots *s = r->owner;
    station *st = NULL;
    char why[512] = "";
    ifpp_err e = slots_station_open(&s->cfg, &st, why, sizeof why);
    if (e != IFPP_OK) {
        pthread_mutex_lock(&s->mu);
        snprintf(r->fault, sizeof r->fault, "cannot open the station: %.200s", why[0] ? why : err_str(e));
        pthread_mutex_unlock(&s->mu);
        alog(LOG_LVL_ERROR, &(alog_fields){.slot = r->name}, "%s", r->fault);
        slot_event fe = {.kind = SLOT_EV_FAULT, .message = r->fault};
        slots_emit(r, &fe);
        slots_set_state(r, SLOT_FAULT);
    } else {
        if (s->cfg.busy_timeout_ms > 0)
            store_set_busy_timeout(st->st, (int)s->cfg.busy_timeout_ms);
        /* every move of this slot's sessions is committed by the group: durable before the call returns,
           in one sync with whatever the other slots committed at the same moment (issue 13 item 5) */
        if (store_group_join(st->st, s->group) != IFPP_OK) {
            pthread_mutex_lock(&s->mu);
            snprintf(r->fault, sizeof r->fault, "cannot join the store's committer: %.200s", store_errmsg(st->st));
            pthread_mutex_unlock(&s->mu);
            alog(LOG_LVL_ERROR, &(alog_fields){.slot = r->name}, "%s", r->fault);
            slot_event fe = {.kind = SLOT_EV_FAULT, .message = r->fault};
            slots_emit(r, &fe);
            slots_set_state(r, SLOT_FAULT);
            station_close(st);
            st = NULL;
        }
    }

    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!r->has_job && !s->stopping && !r->removed)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!r->has_job) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        slot_job job = r->job;
        char spec[1024];
        snprintf(spec, sizeof spec, "%s", r->spec);
        r->eid[0] = 0;
        pthread_mutex_unlock(&s->mu);

        session_result res;
        char eid[33] = "", ptype[72] = "";
        slot_recovery *rc = NULL;
        station_verdict v;
        if (job.recover) {
            memset(&res, 0, sizeof res);
            res.failed_step = SESSION_STEP__COUNT;
            rc = calloc(1, sizeof *rc);
            v = rc ? slots_recover(r, st, spec, rc, &res) : STATION_FAILURE;
            if (!rc)
                snprintf(res.message, sizeof res.message, "slot %s: out of memory", r->name);
        } else {
            v = slots_session(r, st, &job, spec, &res, eid);
            slots_profile_type(st, &job, &res, ptype, sizeof ptype);
        }

        pthread_mutex_lock(&s->mu);
        r->has_job = false;
        r->cancel = false;
        if (r->next_spec[0]) { /* a reload changed the spec while the session ran */
            snprintf(r->spec, sizeof r->spec, "%s", r->next_spec);
            r->next_spec[0] = 0;
        }
        s->running--;
        /* The state event goes out under the lock, so that it cannot overtake the next submit's "busy". */
        if (r->state == SLOT_BUSY) {
            r->state = st ? SLOT_IDLE : SLOT_FAULT;
            slot_event sev = {.kind = SLOT_EV_STATE, .state = r->state};
            slots_emit(r, &sev);
        }
        /* WorkCompleted once the slot takes the next DUT: a requester that answers it at once finds it free */
        slot_event done = {.kind = SLOT_EV_COMPLETED, .job = &job, .eid = eid,
                           .step = res.failed_step < SESSION_STEP__COUNT ? session_step_name(res.failed_step) : "",
                           .verdict = v, .message = res.message, .profile_type = ptype, .recovery = rc};
        slots_emit(r, &done);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        free(rc);
    }
    station_close(st);
    return NULL;
}

static ifpp_err slots_add(slots *s, const config_slot *cs, char *why, size_t why_len)
{
    if (s->n >= CONFIG_MAX_SLOTS) {
        err_why(why, why_len, "more than %d slots", CONFIG_MAX_SLOTS);
        return IFPP_E_RANGE;
    }
    slot_rec *r = &s->rec[s->n];
    memset(r, 0, sizeof *r);
    r->owner = s;
    snprintf(r->name, sizeof r->name, "%s", cs->name);
    snprintf(r->spec, sizeof r->spec, "%s", cs->spec);
    r->state = SLOT_IDLE;
    int rc = pthread_create(&r->thread, NULL, slots_thread, r);
    if (rc != 0) {
        err_why(why, why_len, "slot %s: cannot start its thread: %s", cs->name, strerror(rc));
        return IFPP_E_NOMEM;
    }
    r->started = true;
    s->n++;
    return IFPP_OK;
}

ifpp_err slots_start(const agent_config *c, slots_event_fn fn, void *arg, slots **out, char *why, size_t why_len)
{
    slots *s = calloc(1, sizeof *s);
    if (!s)
        return IFPP_E_NOMEM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->cfg = *c;
    s->fn = fn;
    s->arg = arg;
    ifpp_err e = store_group_open(c->store_path, &s->group, why, why_len);
    if (e != IFPP_OK) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return e;
    }
    if (c->busy_timeout_ms > 0)
        store_group_set_busy_timeout(s->group, (int)c->busy_timeout_ms);
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < c->n_slots && e == IFPP_OK; i++)
        e = slots_add(s, &c->slots[i], why, why_len);
    pthread_mutex_unlock(&s->mu);
    if (e != IFPP_OK) {
        slots_drain(s, 0);
        slots_free(s);
        return e;
    }
    *out = s;
    return IFPP_OK;
}

ifpp_err slots_submit(slots *s, const char *slot, const slot_job *job, char chosen[32], char *why, size_t why_len)
{
    ifpp_err e = IFPP_OK;
    pthread_mutex_lock(&s->mu);
    slot_rec *pick = NULL;
    if (s->stopping) {
        err_why(why, why_len, "the station is stopping: no new work");
        e = IFPP_E_ARG;
        goto out;
    }
    for (size_t i = 0; i < s->n; i++)
        if (job->serial[0] && s->rec[i].has_job && !strcmp(s->rec[i].job.serial, job->serial)) {
            err_why(why, why_len, "DUT %s is already in slot %s", job->serial, s->rec[i].name);
            e = IFPP_E_ARG;
            goto out;
        }
    for (size_t i = 0; i < s->n; i++) {
        slot_rec *r = &s->rec[i];
        if (slot && strcmp(r->name, slot))
            continue;
        if (slot && (r->removed || r->state == SLOT_FAULT || r->has_job)) {
            err_why(why, why_len, "slot %s is %s", r->name,
                    r->removed ? "removed" : r->has_job ? "busy" : "in fault");
            e = r->has_job ? IFPP_E_BUSY : IFPP_E_ARG;
            goto out;
        }
        if (!r->removed && r->state != SLOT_FAULT && !r->has_job) {
            pick = r;
            break;
        }
    }
    if (!pick) {
        if (slot)
            err_why(why, why_len, "no slot named '%s'", slot);
        else
            err_why(why, why_len, "no free slot: all %zu are busy or in fault", s->n);
        e = slot ? IFPP_E_NOT_FOUND : IFPP_E_BUSY;
        goto out;
    }
    pick->job = *job;
    pick->has_job = true;
    pick->cancel = false;
    pick->state = SLOT_BUSY;
    snprintf(pick->step, sizeof pick->step, "queued");
    s->running++;
    snprintf(chosen, 32, "%s", pick->name);
    pthread_cond_broadcast(&s->cv);
out:
    if (pick) {
        slot_event ev = {.kind = SLOT_EV_STATE, .state = SLOT_BUSY};
        slots_emit(pick, &ev);
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

ifpp_err slots_cancel(slots *s, uint64_t client, const char *id, const char *shown, char *why, size_t why_len)
{
    ifpp_err e = IFPP_E_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    err_why(why, why_len, "request %s: no slot runs it (finished already, or another client's)", shown);
    for (size_t i = 0; i < s->n; i++) {
        slot_rec *r = &s->rec[i];
        if (!r->has_job || r->job.client != client || strcmp(r->job.id, id))
            continue;
        if (!strcmp(r->step, "queued") || !strcmp(r->step, "card-wait")) {
            r->cancel = true;
            e = IFPP_OK;
        } else {
            err_why(why, why_len, "request %s: slot %s is at step %s; a session under way ends on its own, exactly "
                    "once", shown, r->name, r->step);
            e = IFPP_E_BUSY;
        }
        break;
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

size_t slots_count(slots *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

bool slots_info(slots *s, size_t i, slot_info *o)
{
    pthread_mutex_lock(&s->mu);
    bool ok = i < s->n;
    if (ok) {
        const slot_rec *r = &s->rec[i];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "%s", r->name);
        snprintf(o->spec, sizeof o->spec, "%s", r->spec);
        if (r->has_job)
            snprintf(o->serial, sizeof o->serial, "%s", r->job.serial);
        snprintf(o->eid, sizeof o->eid, "%s", r->has_job ? r->eid : "");
        snprintf(o->step, sizeof o->step, "%s", r->has_job ? r->step : "");
        snprintf(o->last_serial, sizeof o->last_serial, "%s", r->last_serial);
        snprintf(o->last_result, sizeof o->last_result, "%s", r->last_result);
        snprintf(o->fault, sizeof o->fault, "%s", r->fault);
        o->state = r->removed ? SLOT_REMOVED : r->state;
        o->pass = r->pass;
        o->fail = r->fail;
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

int slots_index(slots *s, const char *name)
{
    int idx = -1;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n && idx < 0; i++)
        if (!strcmp(s->rec[i].name, name))
            idx = (int)i;
    pthread_mutex_unlock(&s->mu);
    return idx;
}

void slots_counts(slots *s, size_t *busy, size_t *fault, size_t *total)
{
    size_t b = 0, f = 0, t = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        if (s->rec[i].removed)
            continue;
        t++;
        b += s->rec[i].has_job;
        f += s->rec[i].state == SLOT_FAULT;
    }
    pthread_mutex_unlock(&s->mu);
    *busy = b;
    *fault = f;
    *total = t;
}

ifpp_err slots_reload(slots *s, const agent_config *c, char *why, size_t why_len)
{
    ifpp_err e = IFPP_OK;
    pthread_mutex_lock(&s->mu);
    if (strcmp(s->cfg.store_path, c->store_path)) {
        /* The slots' connections stay on the store they opened: a store is not moved under running work. */
        err_why(why, why_len, "store.path changed (%s -> %s): restart the daemon to move the store",
                s->cfg.store_path, c->store_path);
        e = IFPP_E_ARG;
        goto out;
    }
    for (size_t i = 0; i < s->n; i++) {
        slot_rec *r = &s->rec[i];
        size_t j;
        for (j = 0; j < c->n_slots && strcmp(c->slots[j].name, r->name); j++)
            ;
        if (j == c->n_slots) {
            r->removed = true; /* its thread ends after its running session */
            continue;
        }
        if (r->removed) {
            err_why(why, why_len, "slot %s was removed and its thread may still run: restart to add it back", r->name);
            e = IFPP_E_ARG;
            goto out;
        }
        if (r->has_job)
            snprintf(r->next_spec, sizeof r->next_spec, "%s", c->slots[j].spec);
        else
            snprintf(r->spec, sizeof r->spec, "%s", c->slots[j].spec);
    }
    for (size_t j = 0; j < c->n_slots && e == IFPP_OK; j++) {
        size_t i;
        for (i = 0; i < s->n && strcmp(s->rec[i].name, c->slots[j].name); i++)
            ;
        if (i == s->n)
            e = slots_add(s, &c->slots[j], why, why_len);
    }
    /* The new threads open the store with the new trust files; running ones keep theirs until restart. */
    s->cfg = *c;
    if (c->busy_timeout_ms > 0)
        store_group_set_busy_timeout(s->group, (int)c->busy_timeout_ms);
    pthread_cond_broadcast(&s->cv);
out:
    pthread_mutex_unlock(&s->mu);
    return e;
}

size_t slots_drain(slots *s, long grace_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += grace_ms / 1000;
    until.tv_nsec += (grace_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    while (s->running > 0)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
            break;
    size_t left = s->running;
    pthread_mutex_unlock(&s->mu);
    return left;
}

void slots_free(slots *s)
{
    if (!s)
        return;
    bool all = true;
    for (size_t i = 0; i < s->n; i++) {
        slot_rec *r = &s->rec[i];
        pthread_mutex_lock(&s->mu);
        bool busy = r->has_job;
        pthread_mutex_unlock(&s->mu);
        if (r->started && !busy && !r->joined) {
            pthread_join(r->thread, NULL);
            r->joined = true;
        } else if (r->started && !r->joined)
            all = false;
    }
    if (all) { /* a session still running keeps its slot (and so this table): the process exits around it */
        store_group_close(s->group); /* no slot thread is left to use it */
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
    }
}
