/*
 * console_model.c -- the operator console's model (issue 14): see console_model.h. Every daemon line is a peer's
 * input: parsed by jansson from a bounded buffer, every field copied into a bounded one, unknown lines ignored.
 * The reason table is the one place where a verdict becomes an operator's words.
 */
#include "console_model.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

void cm_init(cm_model *m, time_t now)
{
    memset(m, 0, sizeof *m);
    m->shift_start = now;
    m->selected = CM_MAX_SLOTS;
}

int cm_steps(void)
{
    return SESSION_STEP__COUNT - 1; /* "done" is the bar's end */
}

int cm_step_index(const char *name)
{
    for (int i = 0; i < SESSION_STEP__COUNT; i++)
        if (!strcmp(name, session_step_name((session_step)i)))
            return i;
    return -1;
}

/* One table: the verdict and where it stopped, in the words a line operator acts on. First match wins. */
static const struct {
    const char *result, *step, *says; /* NULL: any */
    cm_reason reason;
} cm_table[] = {
    {"PASS", NULL, NULL, CM_R_PASS},
    {NULL, NULL, "already has a profile", CM_R_ALREADY},
    {NULL, NULL, "no available BPP", CM_R_NO_PROFILE},
    {NULL, NULL, "in-doubt", CM_R_IN_DOUBT},
    {NULL, NULL, "unresolved", CM_R_IN_DOUBT},
    {NULL, NULL, "store busy", CM_R_STORE_BUSY},
    {NULL, NULL, "virtual eUICC", CM_R_NO_CARD},      /* the slot's backend found no card to open */
    {NULL, NULL, "no eUICC answers", CM_R_NO_CARD},
    {NULL, "select ISD-R", NULL, CM_R_NO_CARD},
    {NULL, NULL, "load interrupted", CM_R_PULLED},
    {"FAIL", "load BPP", NULL, CM_R_PULLED},
    {"FAIL", "verify and record PIR", NULL, CM_R_PULLED},
    {"FAIL", NULL, NULL, CM_R_CARD_REFUSED},
    {"STATION-FAILURE", NULL, NULL, CM_R_STATION},
};

cm_reason cm_reason_of(const char *result, const char *failed_step, const char *message)
{
    result = result ? result : "";
    failed_step = failed_step ? failed_step : "";
    message = message ? message : "";
    for (size_t i = 0; i < sizeof cm_table / sizeof cm_table[0]; i++) {
        if (cm_table[i].result && strcmp(cm_table[i].result, result))
            continue;
        if (cm_table[i].step && strcmp(cm_table[i].step, failed_step))
            continue;
        if (cm_table[i].says && !strstr(message, cm_table[i].says))
            continue;
        return cm_table[i].reason;
    }
    return result[0] ? CM_R_OTHER : CM_R_NONE;
}

const char *cm_reason_words(cm_reason r)
{
    static const char *const words[CM_R__COUNT] = {
        [CM_R_NONE] = "",
        [CM_R_PASS] = "profile loaded",
        [CM_R_NO_PROFILE] = "no profile left for this eUICC",
        [CM_R_ALREADY] = "this DUT already has a profile",
        [CM_R_PULLED] = "card removed during loading: put it back and scan again",
        [CM_R_NO_CARD] = "no card in the slot: seat the DUT and scan again",
        [CM_R_CARD_REFUSED] = "the card refused the profile: set the DUT aside for the engineer",
        [CM_R_IN_DOUBT] = "profile in doubt: call the engineer (recover)",
        [CM_R_STORE_BUSY] = "station busy: scan again",
        [CM_R_STATION] = "station fault: call the engineer",
        [CM_R_OTHER] = "not loaded: call the engineer",
    };
    return (unsigned)r < CM_R__COUNT ? words[r] : "";
}

double cm_per_hour(const cm_model *m, time_t now)
{
    double secs = difftime(now, m->shift_start);
    return secs < 60 ? 0 : (double)(m->pass + m->fail) * 3600.0 / secs;
}

/* The screen shows printable ASCII only: a peer's or a scanner's escape never reaches the terminal. */
static void cm_printable(char *s)
{
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
}

static void cm_copy(char *dst, size_t cap, json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(dst, cap, "%s", s ? s : "");
    cm_printable(dst);
}

static void cm_notice(cm_model *m, bool bad, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cm_notice(cm_model *m, bool bad, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->notice, sizeof m->notice, fmt, ap);
    va_end(ap);
    cm_printable(m->notice); /* it may echo a scan's bytes */
    m->notice_bad = bad;
}

static cm_slot *cm_find(cm_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_slots; i++)
        if (!strcmp(m->slot[i].name, name))
            return &m->slot[i];
    return NULL;
}

static cm_slot *cm_slot_of(cm_model *m, json_t *o)
{
    char name[CM_NAME];
    cm_copy(name, sizeof name, o, "slot"); /* shown as it is kept: printable, bounded */
    if (!name[0])
        return NULL;
    cm_slot *s = cm_find(m, name);
    if (!s && m->n_slots < CM_MAX_SLOTS) { /* a slot added by a reload */
        s = &m->slot[m->n_slots++];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", name);
        s->step_index = -1;
    }
    return s;
}

static void cm_station(cm_model *m, json_t *arr)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        cm_slot *s = cm_slot_of(m, v);
        if (!s)
            continue;
        cm_copy(s->state, sizeof s->state, v, "state");
        if (!strcmp(s->state, "busy")) {
            cm_copy(s->serial, sizeof s->serial, v, "serial");
            cm_copy(s->eid, sizeof s->eid, v, "eid");
            cm_copy(s->step, sizeof s->step, v, "step");
            s->step_index = cm_step_index(s->step);
        }
    }
}

static void cm_stock(cm_model *m, json_t *o)
{
    const char *k;
    json_t *v;
    m->n_stock = 0;
    json_object_foreach(json_object_get(o, "stock"), k, v) {
        if (m->n_stock == CM_MAX_STOCK)
            break;
        snprintf(m->stock[m->n_stock].type, CM_NAME, "%s", k);
        m->stock[m->n_stock].n = (long)json_integer_value(v);
        m->stock[m->n_stock].low = json_integer_value(v) < json_integer_value(json_object_get(o, "low_under"));
        m->n_stock++;
    }
    m->low_under = (long)json_integer_value(json_object_get(o, "low_under"));
}

static void cm_completed(cm_model *m, json_t *o)
{
    cm_slot *s = cm_slot_of(m, o);
    if (!s)
        return;
    cm_copy(s->result, sizeof s->result, o, "result");
    cm_copy(s->serial, sizeof s->serial, o, "serial");
    cm_copy(s->eid, sizeof s->eid, o, "eid");
    cm_copy(s->detail, sizeof s->detail, o, "message");
    /* the event has no failed_step: the last step reported is where it stopped */
    s->reason = cm_reason_of(s->result, s->step, s->detail);
    s->request[0] = 0;
    if (s->reason == CM_R_PASS)
        m->pass++;
    else
        m->fail++;
    m->by_reason[s->reason]++;
}

bool cm_handle_line(cm_model *m, const char *line, size_t n)
{
    json_error_t je;
    json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return false;
    }
    const char *ev = json_string_value(json_object_get(o, "event"));
    cm_slot *s;
    if (ev) {
        if (!strcmp(ev, "WorkStarted") && (s = cm_slot_of(m, o))) {
            cm_copy(s->serial, sizeof s->serial, o, "serial");
            s->eid[0] = s->result[0] = s->step[0] = s->detail[0] = 0;
            s->reason = CM_R_NONE;
            s->step_index = 0;
            snprintf(s->state, sizeof s->state, "busy");
        } else if (!strcmp(ev, "WorkProgress") && (s = cm_slot_of(m, o))) {
            cm_copy(s->eid, sizeof s->eid, o, "eid");
            cm_copy(s->step, sizeof s->step, o, "step");
            s->step_index = cm_step_index(s->step);
        } else if (!strcmp(ev, "WorkCompleted")) {
            cm_completed(m, o);
        } else if (!strcmp(ev, "StationStateChanged")) {
            if ((s = cm_slot_of(m, o)))
                cm_copy(s->state, sizeof s->state, o, "state");
            else {
                char st[24], msg[CM_TEXT];
                cm_copy(st, sizeof st, o, "state");
                cm_copy(msg, sizeof msg, o, "message");
                cm_notice(m, strcmp(st, "running") && strcmp(st, "reloaded"), "station %s%s%s", st, msg[0] ? ": " : "",
                          msg);
            }
        } else if (!strcmp(ev, "FaultOccurred") && (s = cm_slot_of(m, o))) {
            char msg[CM_TEXT];
            cm_copy(msg, sizeof msg, o, "message");
            snprintf(s->state, sizeof s->state, "fault");
            cm_notice(m, true, "%s out of order: call the engineer (%s)", s->name, msg);
        } else if (!strcmp(ev, "StockLow")) {
            char type[CM_NAME];
            cm_copy(type, sizeof type, o, "profile_type");
            cm_notice(m, true, "few profiles left for %s: %lld (tell the engineer)", type,
                      (long long)json_integer_value(json_object_get(o, "available")));
            for (size_t i = 0; i < m->n_stock; i++)
                if (!strcmp(m->stock[i].type, type))
                    m->stock[i].low = true;
        }
    } else if (json_object_get(o, "slots")) {
        cm_station(m, json_object_get(o, "slots"));
    } else if (json_object_get(o, "stock")) {
        cm_stock(m, o);
    } else if (json_is_false(json_object_get(o, "ok"))) {
        char err[32], msg[CM_TEXT], id[24];
        cm_copy(err, sizeof err, o, "error");
        cm_copy(msg, sizeof msg, o, "message");
        cm_copy(id, sizeof id, o, "id");
        for (size_t i = 0; i < m->n_slots; i++)
            if (id[0] && !strcmp(m->slot[i].request, id))
                m->slot[i].request[0] = 0;
        cm_notice(m, true, "scan not taken (%s): %s", err, msg);
    } else {
        const char *status = json_string_value(json_object_get(o, "status"));
        if (status && !strcmp(status, "accepted") && (s = cm_slot_of(m, o))) {
            if (s->result[0]) /* the session ended before its acceptance reached us: nothing is waiting */
                s->request[0] = 0;
            cm_copy(s->serial, sizeof s->serial, o, "serial");
        } else if (status && !strcmp(status, "completed") && (s = cm_slot_of(m, o))) {
            char id[24];
            cm_copy(id, sizeof id, o, "id");
            if (!strcmp(s->request, id)) /* our provision is over, whichever of reply and event came first */
                s->request[0] = 0;
        } else if (json_object_get(o, "cancelled")) {
            cm_notice(m, false, "cancelled");
        }
    }
    json_decref(o);
    return true;
}

/* The daemon's own rule for a DUT serial (docs/mes-protocol.md): 1..64 of A-Z a-z 0-9 - _ . / */
static bool cm_serial_ok(const char *s, size_t n)
{
    if (n == 0 || n >= CM_SERIAL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_./", s[i]) || !s[i])
            return false;
    return true;
}

static bool cm_free(const cm_slot *s)
{
    return !strcmp(s->state, "idle") && !s->request[0];
}

bool cm_scan(cm_model *m, const char *scan, const char *profile_type, char *out, size_t cap)
{
    const char *serial = scan, *colon = strchr(scan, ':');
    cm_slot *to = NULL;
    size_t n = strlen(scan);
    if (n > 100) {
        cm_notice(m, true, "scan refused: too long (%zu characters)", n);
        return false;
    }
    if (colon) { /* SLOT:SERIAL, the slot by its name or its row number */
        char name[CM_NAME];
        size_t k = (size_t)(colon - scan);
        if (k == 0 || k >= sizeof name) {
            cm_notice(m, true, "scan refused: '%.*s' names no slot", (int)k, scan);
            return false;
        }
        memcpy(name, scan, k);
        name[k] = 0;
        char *end;
        unsigned long row = strtoul(name, &end, 10);
        to = *end == 0 && row >= 1 && row <= m->n_slots ? &m->slot[row - 1] : cm_find(m, name);
        if (!to) {
            cm_notice(m, true, "scan refused: no slot '%s' on this station", name);
            return false;
        }
        serial = colon + 1;
    }
    size_t sn = strlen(serial);
    if (!cm_serial_ok(serial, sn)) {
        cm_notice(m, true, "scan refused: '%.40s' is not a DUT serial (1..64 of A-Z a-z 0-9 - _ . /)", serial);
        return false;
    }
    if (!strcmp(serial, m->last_scan)) {
        cm_notice(m, true, "scan refused: %s scanned twice in a row", serial);
        return false;
    }
    for (size_t i = 0; i < m->n_slots; i++)
        if ((!strcmp(m->slot[i].state, "busy") || m->slot[i].request[0]) && !strcmp(m->slot[i].serial, serial)) {
            cm_notice(m, true, "scan refused: %s is already in %s", serial, m->slot[i].name);
            return false;
        }
    if (!to && m->selected < m->n_slots)
        to = &m->slot[m->selected];
    if (to && !cm_free(to)) {
        cm_notice(m, true, "scan refused: %s is %s, not free", to->name, to->request[0] ? "waiting" : to->state);
        return false;
    }
    for (size_t i = 0; !to && i < m->n_slots; i++)
        if (cm_free(&m->slot[i]))
            to = &m->slot[i];
    if (!to) {
        cm_notice(m, true, "scan refused: no free slot");
        return false;
    }
    char id[24];
    snprintf(id, sizeof id, "c%u", ++m->next_id);
    json_t *rq = json_pack("{s:s,s:s,s:s,s:s}", "id", id, "op", "provision", "serial", serial, "slot", to->name);
    if (rq && profile_type && profile_type[0])
        json_object_set_new(rq, "profile_type", json_string(profile_type));
    char *line = rq ? json_dumps(rq, JSON_COMPACT) : NULL;
    json_decref(rq);
    if (!line || strlen(line) + 2 > cap) {
        free(line);
        cm_notice(m, true, "scan refused: request too long");
        return false;
    }
    snprintf(out, cap, "%s\n", line);
    free(line);
    snprintf(m->last_scan, sizeof m->last_scan, "%s", serial);
    snprintf(to->request, sizeof to->request, "%s", id);
    snprintf(to->serial, sizeof to->serial, "%s", serial);
    snprintf(to->profile_type, sizeof to->profile_type, "%s", profile_type && profile_type[0] ? profile_type : "any");
    to->result[0] = to->eid[0] = to->step[0] = 0;
    to->reason = CM_R_NONE;
    to->step_index = -1;
    cm_notice(m, false, "%s -> %s", serial, to->name);
    return true;
}

bool cm_cancel(cm_model *m, char *out, size_t cap)
{
    if (m->selected >= m->n_slots || !m->slot[m->selected].request[0]) {
        cm_notice(m, true, "nothing to cancel: select a slot with a DUT waiting");
        return false;
    }
    snprintf(out, cap, "{\"id\":\"x%u\",\"op\":\"cancel\",\"request\":\"%s\"}\n", ++m->next_id,
             m->slot[m->selected].request);
    return true;
}

void cm_disconnected(cm_model *m)
{
    for (size_t i = 0; i < m->n_slots; i++) {
        snprintf(m->slot[i].state, sizeof m->slot[i].state, "?");
        m->slot[i].request[0] = 0; /* a reply to it will not come on a new connection */
    }
}
