/*
 * mes.h -- the MES socket: a Unix stream socket speaking newline-delimited JSON (docs/mes-protocol.md).
 * The one place that parses client input. Everything is bounded: a line (mes.max_line), the
 * clients (mes.max_clients), each client's queued output (mes.max_queue; a client that does not
 * read is cut, never waited for). The server runs in the daemon's main thread (mes_poll); slot
 * threads only hand it events through mes_slot_event, which takes a lock and never blocks on I/O.
 */
#ifndef IFPP_MES_H
#define IFPP_MES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "slots.h"
#include "store.h"

typedef enum { MES_OP_PROVISION, MES_OP_QUERY, MES_OP_CANCEL, MES_OP_STOCK, MES_OP_SUBSCRIBE, MES_OP_UNSUBSCRIBE,
               MES_OP_PING, MES_OP_RECOVER, MES_OP_REPORT } mes_op;

#define MES_PATH_MAX 1024 /* a report's dir or out, an absolute path */

typedef enum { MES_Q_STATION, MES_Q_SLOT, MES_Q_DUT } mes_query;

/* One request, as parsed and checked. */
typedef struct {
    char id[72];             /* the request id as JSON text (a string in quotes, or an integer) */
    mes_op op;
    mes_query what;
    char serial[72], slot[32], profile_type[72], request[72];
    bool complete, additional_profile;
    char path[MES_PATH_MAX];  /* report: the destination directory (dir) or file (out) */
    bool to_dir;              /* report: path is dir (the day's three files), not out (the signed report) */
    char day[16];             /* report: YYYY-MM-DD, "" if not given */
} mes_request;

/*
 * Parses one line (no newline) into req. On failure returns IFPP_E_ARG, err names what was wrong
 * (the JSON error's column, the field, its allowed values) and req->id holds the id if one was
 * readable ("null" if not), so that the error reply still names it.
 */
ifpp_err mes_parse_request(const char *line, size_t n, mes_request *req, char *err, size_t err_len);

typedef struct mes mes;

/* Creates the socket at c->mes_path with its mode and group (a stale socket file is replaced). */
ifpp_err mes_open(const agent_config *c, mes **out, char *why, size_t why_len);

/* Gives the server its slots and a read-only store connection of the calling thread (stock, DUT queries). */
void mes_attach(mes *m, slots *sl, store *ro);

/* The slots' event callback (arg: the mes): thread-safe, never blocks on a client. */
void mes_slot_event(void *arg, const slot_event *ev);

/* Announces a station state ("running", "reloaded", "stopping") to subscribers. */
void mes_station_state(mes *m, const char *state, const char *detail);

/* Serves for up to timeout_ms; also polls extra_fd (-1: none) and says whether it is readable. */
ifpp_err mes_poll(mes *m, int timeout_ms, int extra_fd, bool *extra_ready);

/* Applies reloaded limits (clients, line, queue, stock warning) to new work. */
void mes_reload(mes *m, const agent_config *c);

/* Flushes what it can without waiting, closes every client and removes the socket file. */
void mes_close(mes *m);

#endif
