/*
 * config.h -- station.conf.d: the daemon's configuration, one libconfig file per concern, read in
 * lexical order and merged. Every value is checked here, once, for the daemon and for
 * `ifppctl config check`: an unknown key, a bad value or a key given twice is an error naming the
 * file and line (and, for a repeat, where it was given first). The merged result is plain data;
 * nothing here opens the store, a key or a slot.
 *
 * Groups (each key at most once over all files; slots from every file are appended):
 *   station  { id; }                                      the station's identity (its reports and records)
 *   store    { path; busy_timeout_ms; }                   the SQLite store the daemon owns
 *   trust    { pki_dir; ci; dm_root; dm_fpa_cert; dm_fpa_key; station_cert; station_key; pkcs11_module; }
 *            dm_fpa_key may be a PKCS#11 URI (RFC 7512, "pkcs11:token=...;object=...?pin-source=..."): p11key.h
 *   slots    ( { name; spec; }, ... )                     spec: station.h's "BACKEND:TARGET[,key=value]"
 *   mes      { path; mode; group; max_clients; max_line; max_queue; }
 *   reports  { dir; }                                     where a MES `report` naming no destination writes
 *                                                         the day's files (a stick's mount point: agent/media.c)
 *   timeouts { shutdown_ms; stock_low; }                  SIGTERM's grace for running sessions; stock warning
 */
#ifndef IFPP_CONFIG_H
#define IFPP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "err.h"
#include "station.h"

#define CONFIG_MAX_SLOTS 64
#define CONFIG_MAX_FILES 64
#define CONFIG_PATH_MAX 1024

typedef struct {
    char name[32];                 /* [A-Za-z0-9_-]{1,31}, unique */
    char spec[1024];               /* parsed by station_slot_parse at load */
    char where[CONFIG_PATH_MAX + 16]; /* "file:line", for messages */
} config_slot;

typedef struct {
    char station_id[64];
    char store_path[CONFIG_PATH_MAX];
    long busy_timeout_ms;
    char pki_dir[CONFIG_PATH_MAX];
    char ci[CONFIG_PATH_MAX], dm_root[CONFIG_PATH_MAX], dm_fpa_cert[CONFIG_PATH_MAX], dm_fpa_key[CONFIG_PATH_MAX],
        station_cert[CONFIG_PATH_MAX], station_key[CONFIG_PATH_MAX];
    char pkcs11_module[CONFIG_PATH_MAX]; /* "" : the pkcs11 engine's default module (Debian: p11-kit's proxy) */
    config_slot slots[CONFIG_MAX_SLOTS];
    size_t n_slots;
    char mes_path[108];            /* sun_path's size */
    unsigned mes_mode;             /* permission bits of the socket, e.g. 0660 */
    char mes_group[64];            /* "" : the daemon's group */
    size_t mes_max_clients, mes_max_line, mes_max_queue;
    char report_dir[CONFIG_PATH_MAX];
    long shutdown_ms;
    size_t stock_low;
    size_t n_files;
} agent_config;

/* Sets the defaults every key falls back to. */
void config_defaults(agent_config *c);

/*
 * Loads every *.conf in dir (lexical order) over the defaults; why names the file and line of the
 * first error. A path naming a single regular file loads that file alone.
 */
ifpp_err config_load(const char *path, agent_config *c, char *why, size_t why_len);

/* Prints the merged configuration in the files' own syntax (one group each), for `config check`. */
void config_print(const agent_config *c, FILE *f);

/* The station_config the configuration names (pointers into c). */
void config_station(const agent_config *c, station_config *sc);

/* Writes one line per difference between two configurations (for SIGHUP's log); returns how many. */
size_t config_diff(const agent_config *a, const agent_config *b, void (*line)(void *arg, const char *text), void *arg);

#endif
