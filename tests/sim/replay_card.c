/*
 * replay_card.c -- the `record` and `replay` backends (see replay_card.h for why a benchmark needs them).
 *
 * A log is a sequence of records, each
 *     kind (1 byte: 'R' a reset, 'X' an exchange) || u32 len || command || u32 len || answer || u32 ifpp_err
 * (lengths big-endian; a reset has no command and the ATR as its answer). The replay reads the whole log
 * (bounded by REPLAY_MAX_LOG) and checks every record's lengths before it serves one: a log is input.
 */
#include "replay_card.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fpa_virtual.h"
#include "fsutil.h"

#define REPLAY_MAX_LOG (256u << 20) /* a log of many sessions of 10 KiB BPPs stays far below this */
#define REPLAY_MAX_LOGS 256         /* one per slot */
#define REPLAY_MAX_APDU 70000       /* an extended-length command or answer */

/* ---- record ------------------------------------------------------------------------------------- */

typedef struct {
    void *card; /* the virtual backend's slot */
    int log;
    char error[160];
} record_slot;

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Appends one record in one write (O_APPEND): a record is never split between two slots' logs. */
static ifpp_err record_put(record_slot *r, char kind, const uint8_t *cmd, size_t n, const uint8_t *ans, size_t an,
                           ifpp_err e)
{
    size_t len = 1 + 4 + n + 4 + an + 4;
    uint8_t *b = malloc(len);
    if (!b)
        return IFPP_E_NOMEM;
    b[0] = (uint8_t)kind;
    put_u32(b + 1, (uint32_t)n);
    if (n)
        memcpy(b + 5, cmd, n);
    put_u32(b + 5 + n, (uint32_t)an);
    if (an)
        memcpy(b + 9 + n, ans, an);
    put_u32(b + 9 + n + an, (uint32_t)e);
    ssize_t w = write(r->log, b, len);
    free(b);
    if (w != (ssize_t)len) {
        snprintf(r->error, sizeof r->error, "record: cannot append to the log");
        return IFPP_E_IO;
    }
    return IFPP_OK;
}

static ifpp_err record_open(const char *target, void **ctx, char *why, size_t why_len)
{
    static const char key[] = ",log=";
    const char *at = strstr(target, key);
    char card[4096];
    if (!at || (size_t)(at - target) >= sizeof card || !at[sizeof key - 1]) {
        err_why(why, why_len, "record: target must be CARD-FILE,log=LOG-FILE (got '%s')", target);
        return IFPP_E_ARG;
    }
    memcpy(card, target, (size_t)(at - target));
    card[at - target] = '\0';
    record_slot *r = calloc(1, sizeof *r);
    if (!r)
        return IFPP_E_NOMEM;
    r->log = open(at + sizeof key - 1, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (r->log < 0) {
        err_why(why, why_len, "record: cannot open the log %s", at + sizeof key - 1);
        free(r);
        return IFPP_E_IO;
    }
    ifpp_err e = fpa_virtual_ops.open(card, &r->card, why, why_len);
    if (e != IFPP_OK) {
        close(r->log);
        free(r);
        return e;
    }
    *ctx = r;
    return IFPP_OK;
}

static void record_close(void *ctx)
{
    record_slot *r = ctx;
    fpa_virtual_ops.close(r->card);
    close(r->log);
    free(r);
}

static ifpp_err record_reset(void *ctx, uint8_t *atr, size_t cap, size_t *atr_len)
{
    record_slot *r = ctx;
    *atr_len = 0;
    ifpp_err e = fpa_virtual_ops.reset(r->card, atr, cap, atr_len);
    ifpp_err w = record_put(r, 'R', NULL, 0, atr, e == IFPP_OK ? *atr_len : 0, e);
    return e != IFPP_OK ? e : w;
}

static ifpp_err record_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    record_slot *r = ctx;
    *rn = 0;
    ifpp_err e = fpa_virtual_ops.transmit(r->card, cmd, n, resp, cap, rn);
    ifpp_err w = record_put(r, 'X', cmd, n, resp, e == IFPP_OK ? *rn : 0, e);
    return e != IFPP_OK ? e : w;
}

static const char *record_last_error(void *ctx)
{
    record_slot *r = ctx;
    return r->error[0] ? r->error : fpa_virtual_ops.last_error(r->card);
}

static const fpa_ops record_ops = {
    .name = "record",
    .open = record_open,
    .close = record_close,
    .reset = record_reset,
    .transmit = record_transmit,
    .last_error = record_last_error,
};

/* ---- replay ------------------------------------------------------------------------------------- */

typedef struct {
    char kind;
    const uint8_t *cmd, *ans;
    size_t n, an;
    ifpp_err e;
} replay_rec;

typedef struct {
    char *path;
    uint8_t *bytes;
    replay_rec *rec;
    size_t n_rec, next; /* next: the record the card answers next (kept across a slot's sessions) */
    bool busy;          /* a slot has it open */
} replay_log;

static pthread_mutex_t replay_mu = PTHREAD_MUTEX_INITIALIZER;
static replay_log *replay_logs[REPLAY_MAX_LOGS];

/* Splits a log into records, every length checked against what is left. */
static ifpp_err replay_parse(replay_log *l, size_t size, char *why, size_t why_len)
{
    size_t at = 0, cap = 0;
    while (at < size) {
        replay_rec r = {.kind = (char)l->bytes[at]};
        size_t left = size - at;
        if ((r.kind != 'R' && r.kind != 'X') || left < 13) {
            err_why(why, why_len, "replay: %s: record %zu malformed", l->path, l->n_rec);
            return IFPP_E_RANGE;
        }
        r.n = get_u32(l->bytes + at + 1);
        if (r.n > REPLAY_MAX_APDU || r.n > left - 13) {
            err_why(why, why_len, "replay: %s: record %zu: command length past the end", l->path, l->n_rec);
            return IFPP_E_RANGE;
        }
        r.cmd = l->bytes + at + 5;
        r.an = get_u32(l->bytes + at + 5 + r.n);
        if (r.an > REPLAY_MAX_APDU || r.an > left - 13 - r.n) {
            err_why(why, why_len, "replay: %s: record %zu: answer length past the end", l->path, l->n_rec);
            return IFPP_E_RANGE;
        }
        r.ans = l->bytes + at + 9 + r.n;
        r.e = (ifpp_err)get_u32(l->bytes + at + 9 + r.n + r.an);
        if (l->n_rec == cap) {
            size_t nc = cap ? 2 * cap : 256;
            replay_rec *g = realloc(l->rec, nc * sizeof *g);
            if (!g)
                return IFPP_E_NOMEM;
            l->rec = g;
            cap = nc;
        }
        l->rec[l->n_rec++] = r;
        at += 13 + r.n + r.an;
    }
    return IFPP_OK;
}

static void replay_log_free(replay_log *l)
{
    if (!l)
        return;
    free(l->path);
    free(l->bytes);
    free(l->rec);
    free(l);
}

typedef struct {
    replay_log *log;
    bool powered;
    char error[200];
} replay_slot;

static ifpp_err replay_open(const char *target, void **ctx, char *why, size_t why_len)
{
    replay_log *l = NULL;
    ifpp_err e = IFPP_OK;
    pthread_mutex_lock(&replay_mu);
    size_t i, free_at = REPLAY_MAX_LOGS;
    for (i = 0; i < REPLAY_MAX_LOGS; i++) {
        if (replay_logs[i] && !strcmp(replay_logs[i]->path, target))
            break;
        if (!replay_logs[i] && free_at == REPLAY_MAX_LOGS)
            free_at = i;
    }
    if (i < REPLAY_MAX_LOGS) {
        l = replay_logs[i];
        if (l->busy) {
            err_why(why, why_len, "replay: %s is already open in another slot", target);
            e = IFPP_E_BUSY;
        }
    } else if (free_at == REPLAY_MAX_LOGS) {
        err_why(why, why_len, "replay: more than %d logs", REPLAY_MAX_LOGS);
        e = IFPP_E_RANGE;
    } else if (!(l = calloc(1, sizeof *l)) || !(l->path = strdup(target))) {
        e = IFPP_E_NOMEM;
    } else {
        size_t size = 0;
        e = fs_read_all_why(target, REPLAY_MAX_LOG, &l->bytes, &size, why, why_len);
        if (e == IFPP_OK)
            e = replay_parse(l, size, why, why_len);
        if (e == IFPP_OK)
            replay_logs[free_at] = l;
    }
    replay_slot *r = e == IFPP_OK ? calloc(1, sizeof *r) : NULL;
    if (e == IFPP_OK && !r)
        e = IFPP_E_NOMEM;
    if (e == IFPP_OK) {
        l->busy = true;
        r->log = l;
        *ctx = r;
    } else if (l && i == REPLAY_MAX_LOGS) {
        if (free_at < REPLAY_MAX_LOGS && replay_logs[free_at] == l)
            replay_logs[free_at] = NULL;
        replay_log_free(l);
    }
    pthread_mutex_unlock(&replay_mu);
    return e;
}

static void replay_close(void *ctx)
{
    replay_slot *r = ctx;
    pthread_mutex_lock(&replay_mu);
    r->log->busy = false;
    pthread_mutex_unlock(&replay_mu);
    free(r);
}

/* A reset starts the next recorded session: the log moves on to its next reset. */
static ifpp_err replay_reset(void *ctx, uint8_t *atr, size_t cap, size_t *atr_len)
{
    replay_slot *r = ctx;
    replay_log *l = r->log;
    while (l->next < l->n_rec && l->rec[l->next].kind != 'R')
        l->next++;
    if (l->next == l->n_rec) {
        snprintf(r->error, sizeof r->error, "replay: %s: no recorded session left", l->path);
        return IFPP_E_NO_CARD;
    }
    const replay_rec *x = &l->rec[l->next++];
    if (x->e != IFPP_OK)
        return x->e;
    if (x->an > cap)
        return IFPP_E_RANGE;
    memcpy(atr, x->ans, x->an);
    *atr_len = x->an;
    r->powered = true;
    return IFPP_OK;
}

static ifpp_err replay_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    replay_slot *r = ctx;
    replay_log *l = r->log;
    size_t at = l->next;
    *rn = 0;
    if (!r->powered || at >= l->n_rec || l->rec[at].kind != 'X') {
        snprintf(r->error, sizeof r->error, "replay: %s: command after the recorded session's end (record %zu)", l->path,
                 at);
        return IFPP_E_NO_CARD;
    }
    const replay_rec *x = &l->rec[at];
    l->next++;
    if (n < 4 || x->n < 4 || memcmp(cmd, x->cmd, 4) != 0) {
        /* the station asked something else than when it was recorded: say so, never answer with another's answer */
        snprintf(r->error, sizeof r->error, "replay: %s: command %zu (%02X %02X) differs from the recording's (%02X %02X)",
                 l->path, at, n > 1 ? cmd[0] : 0, n > 1 ? cmd[1] : 0, x->n > 1 ? x->cmd[0] : 0, x->n > 1 ? x->cmd[1] : 0);
        if (cap < 2)
            return IFPP_E_RANGE;
        resp[0] = 0x6F;
        resp[1] = 0x00;
        *rn = 2;
        return IFPP_OK;
    }
    if (x->e != IFPP_OK)
        return x->e;
    if (x->an > cap)
        return IFPP_E_RANGE;
    memcpy(resp, x->ans, x->an);
    *rn = x->an;
    return IFPP_OK;
}

static const char *replay_last_error(void *ctx)
{
    return ((replay_slot *)ctx)->error;
}

static const fpa_ops replay_ops = {
    .name = "replay",
    .open = replay_open,
    .close = replay_close,
    .reset = replay_reset,
    .transmit = replay_transmit,
    .last_error = replay_last_error,
};

ifpp_err replay_card_register(void)
{
    ifpp_err e = fpa_register(&record_ops);
    return e == IFPP_OK ? fpa_register(&replay_ops) : e;
}

void replay_card_forget(void)
{
    pthread_mutex_lock(&replay_mu);
    for (size_t i = 0; i < REPLAY_MAX_LOGS; i++) {
        if (replay_logs[i] && !replay_logs[i]->busy) {
            replay_log_free(replay_logs[i]);
            replay_logs[i] = NULL;
        }
    }
    pthread_mutex_unlock(&replay_mu);
}
