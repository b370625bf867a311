/*
 * mes_client.h -- the client side of ifpp-agent's MES socket (docs/mes-protocol.md), for ifppctl: one
 * connection, requests sent as one JSON line each, replies matched by id. The daemon is a peer like any
 * other to be distrusted: every read is bounded (a line at most MES_CLIENT_MAX_LINE bytes) and every wait
 * has a deadline, so a hung or hostile daemon makes ifppctl fail with a message, never hang.
 */
#ifndef IFPP_MES_CLIENT_H
#define IFPP_MES_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"

#define MES_CLIENT_MAX_LINE (1u << 20)     /* a station query of 64 slots is a few KiB */
#define MES_CLIENT_CONNECT_MS 10000        /* connect, and a reply that needs no card */
#define MES_CLIENT_SESSION_MS (30L * 60 * 1000) /* a provision's completion: a session with its card waits */
#define MES_CLIENT_REPORT_MS (30L * 60 * 1000)  /* a report written by the daemon (a million records: tens of s) */

typedef struct mes_client mes_client;

/* Connects to the socket at path; why names the path and errno (ENOENT: no daemon listens there). */
ifpp_err mes_client_open(const char *path, mes_client **out, char *why, size_t why_len);

/* Sends req (op and fields; the id is set here, and returned in id, cap >= 32); req stays the caller's. */
ifpp_err mes_client_send(mes_client *c, json_t *req, char *id, size_t cap, char *why, size_t why_len);

/*
 * Waits up to timeout_ms for the next reply naming id (events and other replies are skipped); *reply is
 * the caller's to json_decref. IFPP_E_TIMEOUT, IFPP_E_IO (connection closed, a line that is not a JSON
 * object) or IFPP_E_RANGE (a line too long) otherwise, with why naming it.
 */
ifpp_err mes_client_reply(mes_client *c, const char *id, long timeout_ms, json_t **reply, char *why, size_t why_len);

/* Closes the connection and frees c (NULL is fine). */
void mes_client_close(mes_client *c);

#endif
