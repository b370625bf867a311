/*
 * pcscd_harness.h -- a real pcscd with vsmartcard's vpcd reader, and the software eUICC as the
 * card in it, started and stopped by PID from a test or a benchmark.
 *
 * pcscd always binds /run/pcscd; where the process may make a private mount namespace (root in
 * CI), the harness runs pcscd there with its own directory bound over /run/pcscd and points this
 * process's PC/SC client at that socket (PCSCLITE_CSOCK_NAME), so a system pcscd or another test
 * cannot interfere. Otherwise it uses /run/pcscd itself and refuses to start if another pcscd
 * owns it (IFPP_PCSCD_SHARED=1 in the environment forces this fallback). The reader is
 * "Virtual PCD 00 00"; vpcd listens on a free loopback port of its own.
 *
 * Card insertion and removal are waited for as PC/SC reports them (SCardGetStatusChange), never
 * by sleeping: vpcd only notices a vanished card at its next poll, and a card put back before
 * that poll would be taken for the old one.
 */
#ifndef IFPP_PCSCD_HARNESS_H
#define IFPP_PCSCD_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#define PCSCD_HARNESS_READER "Virtual PCD"

typedef struct {
    char dir[512];     /* the harness's own directory: reader.conf.d, socket, logs */
    char sock[640];    /* the socket the PC/SC client uses */
    int port;          /* vpcd's TCP port */
    bool private_ns;   /* pcscd runs in a private mount namespace */
    pid_t pcscd, card; /* what the harness started (0: not running) */
} pcscd_harness;

/* Starts pcscd with only vpcd under dir (created if absent); 0 when its reader is listed. */
int pcscd_harness_start(pcscd_harness *h, const char *dir);

/*
 * Puts the card of card_file into the reader: pulls the card already there (if any), starts
 * ifpp-vpcd-card with extra_args (NULL-ended, may be NULL) and waits until PC/SC reports a card
 * present; 0 on success.
 */
int pcscd_harness_insert(pcscd_harness *h, const char *card_file, const char *const *extra_args);

/* Pulls the card (SIGKILL to its process) and waits until PC/SC reports the reader empty; 0 on success. */
int pcscd_harness_pull(pcscd_harness *h);

/* Stops pcscd (SIGKILL, by PID) and leaves the card process alone; the reader is gone. */
void pcscd_harness_kill_daemon(pcscd_harness *h);

/* Stops everything the harness started. The directory stays for the caller to remove. */
void pcscd_harness_stop(pcscd_harness *h);

#endif
