/*
 * fake_modem_proc.h -- starts and stops `ifpp-fake-modem` (tests/sim/fake_modem.c) as a child
 * process, by PID, for the at backend's tests and benchmark.
 */
#ifndef IFPP_FAKE_MODEM_PROC_H
#define IFPP_FAKE_MODEM_PROC_H

#include <sys/types.h>

typedef struct {
    pid_t pid;
    char port[128]; /* the pty slave the modem answers on */
} fake_modem_proc;

/*
 * Starts the fake modem ($IFPP_FAKE_MODEM, else exe) on card with extra options (NULL-terminated,
 * may be NULL) and waits for it to name its port; 0 on success.
 */
int fake_modem_start(fake_modem_proc *m, const char *exe, const char *card, const char *const *args);

/* Kills the modem (SIGKILL: the port vanishes at once) and reaps it; a stopped one is fine. */
void fake_modem_stop(fake_modem_proc *m);

#endif
