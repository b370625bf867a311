/*
 * agentd_fixture.h -- a running ifpp-agent for tests (issue 13): a simulated line (test_line) in a fresh
 * directory, a generated station.conf.d, the daemon (ifpp-agent-rehearse: the product's agentd_main with
 * the virtual backend) started and stopped by PID with readiness read from systemd's READY=1 on our own
 * NOTIFY_SOCKET (no sleeps), a small line client of its MES socket, and a SoftHSM2 token holding a key of
 * the test PKI. test_agentd and test_ctl_daemon both start their daemons through it, so that what a
 * "started daemon" means is written once. Failures end the running cmocka test (fail_msg).
 */
#ifndef IFPP_AGENTD_FIXTURE_H
#define IFPP_AGENTD_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "testline.h"

typedef struct {
    test_line L;
    char *dir, *conf, *sock, *log, *notify; /* conf: station.conf.d; log: the daemon's stderr */
    pid_t pid;                              /* the running daemon, 0: none */
} afx;

/*
 * Makes a fixture under a fresh temporary directory (prefix): the line (cards x otks One-time Keys, the
 * vault imported), conf.d with 10-station.conf (id, store, busy_timeout_ms) and 50-mes.conf (the socket in
 * the directory, mode 0660, 32 clients, line 1024, queue 8192) and 60-timeouts.conf (stock_low 5). The
 * caller adds trust (afx_conf_trust) and slots.
 */
afx *afx_make(const char *prefix, size_t cards, size_t otks);

/* Writes dir/name (printf-style), replacing it. */
void afx_write(const char *dir, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes conf.d/name (printf-style), replacing it. */
void afx_conf(afx *f, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* 30-trust.conf: every certificate and key from the line's PKI directory. */
void afx_conf_trust(afx *f);

/* The virtual card file of slot k in the fixture's directory (malloc'd): slot-KK.card. */
char *afx_slot_card(const afx *f, size_t k);

/*
 * Starts the daemon on conf (a directory or file) with its stderr appended to log; returns its pid once it
 * said READY=1 (and, with systemd_checks, also STATUS=running and WATCHDOG=1 as systemd would see them), or
 * 0 if it exited first (a refused start; its reasons are in log).
 */
pid_t afx_start_on(afx *f, const char *conf, const char *log, bool systemd_checks);

/* afx_start_on the fixture's own conf.d and log; fails the test if the daemon exits before READY. */
void afx_start(afx *f);

/* SIGTERM and wait; the wait status (-1: none was running). */
int afx_stop(afx *f);

/* True if the file holds needle. */
bool afx_file_has(const char *path, const char *needle);

/* Stops the daemon, removes the directory (unless keep_env is set in the environment) and frees f. */
void afx_free(afx *f, const char *keep_env);

/* ---- a line client of the MES socket ---- */

typedef struct {
    int fd;
    size_t len;
    char buf[1 << 16];
} afx_client;

/* Connects to the socket at path; -1 with errno on failure. */
int afx_connect(afx_client *c, const char *path);

/* Sends a printf-formatted line (the caller puts the newline). */
void afx_send(afx_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The next line as JSON (the test fails on a line that is not); NULL at EOF. */
json_t *afx_read(afx_client *c);

/* Reads until the reply whose string id is id ("null": a reply with id null), skipping events. */
json_t *afx_reply(afx_client *c, const char *id);

/* Reads until the event named event (and, when state is not NULL, with that state); NULL at EOF. */
json_t *afx_event(afx_client *c, const char *event, const char *state);

/* A string field, "" when absent. */
const char *afx_js(json_t *o, const char *key);

/* ---- a SoftHSM2 token ---- */

#define AFX_TOKEN "ifpp-test"
#define AFX_PIN "Pin-4711-q"

/*
 * A fresh SoftHSM2 token AFX_TOKEN (user PIN AFX_PIN) in dir/tokens, with the PEM private key key_pem
 * imported as object `label`; SOFTHSM2_CONF is set for this process and its children (p11-kit's proxy
 * loads SoftHSM2 with it). False, with a message printed, when softhsm2-util is not installed.
 */
bool afx_token(const char *dir, const char *key_pem, const char *label);

#endif
