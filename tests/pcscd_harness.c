/* pcscd_harness.c -- pcscd + vpcd + the software eUICC for tests and benchmarks; see pcscd_harness.h. */
#include "pcscd_harness.h"

#include <PCSC/winscard.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define HARNESS_WAIT_MS 15000

static void harness_pause(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* fork+exec argv with stdout/stderr appended to log; the child's PID, or -1. */
static pid_t harness_spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void harness_kill(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    *pid = 0;
}

static int harness_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/*
 * Waits until the reader is listed and, if want_present is 0 or 1, until its card state says
 * empty (0) or present (1). Uses SCardGetStatusChange, as the station itself does.
 */
static int harness_wait_reader(int want_present)
{
    for (int waited = 0; waited < HARNESS_WAIT_MS; waited += 100) {
        SCARDCONTEXT ctx;
        if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) != SCARD_S_SUCCESS) {
            harness_pause(100);
            continue;
        }
        char *names = NULL, reader[256] = "";
        DWORD n = SCARD_AUTOALLOCATE;
        if (SCardListReaders(ctx, NULL, (LPSTR)&names, &n) == SCARD_S_SUCCESS) {
            for (const char *r = names; *r; r += strlen(r) + 1)
                if (strstr(r, PCSCD_HARNESS_READER)) {
                    snprintf(reader, sizeof reader, "%s", r);
                    break;
                }
            SCardFreeMemory(ctx, names);
        }
        int done = 0;
        if (reader[0] && want_present < 0) {
            done = 1;
        } else if (reader[0]) {
            SCARD_READERSTATE rs = {.szReader = reader, .dwCurrentState = SCARD_STATE_UNAWARE};
            DWORD flag = want_present ? SCARD_STATE_PRESENT : SCARD_STATE_EMPTY;
            for (int i = 0; i < 20 && !done; i++) {
                LONG rc = SCardGetStatusChange(ctx, 500, &rs, 1);
                if (rc != SCARD_S_SUCCESS && rc != (LONG)SCARD_E_TIMEOUT)
                    break;
                done = (rs.dwEventState & flag) && !(rs.dwEventState & SCARD_STATE_MUTE);
                rs.dwCurrentState = rs.dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
            }
        }
        SCardReleaseContext(ctx);
        if (done)
            return 0;
        harness_pause(100);
    }
    return -1;
}

/* Another pcscd already owns /run/pcscd (only matters without a private namespace). */
static int harness_other_pcscd(void)
{
    FILE *f = fopen("/run/pcscd/pcscd.pid", "r");
    int other = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%d", &other) != 1)
        other = 0;
    fclose(f);
    return other > 0 && kill(other, 0) == 0 ? other : 0;
}

/* 0 if this process may make a private mount namespace with /run/pcscd bound to dir. */
static int harness_can_unshare(const char *dir)
{
    char cmd[1200], out[64] = "";
    snprintf(cmd, sizeof cmd, "mkdir -p /run/pcscd && mount --bind '%s' /run/pcscd && echo ok", dir);
    char *argv[] = {"unshare", "--mount", "--propagation", "private", "sh", "-c", cmd, NULL};
    return tu_run(argv, out, sizeof out) == 0 && strncmp(out, "ok", 2) == 0 ? 0 : -1;
}

int pcscd_harness_start(pcscd_harness *h, const char *dir)
{
    memset(h, 0, sizeof *h);
    snprintf(h->dir, sizeof h->dir, "%s", dir);
    mkdir(h->dir, 0700);
    char confdir[600], path[700], log[600], rundir[600];
    snprintf(confdir, sizeof confdir, "%s/reader.conf.d", h->dir);
    snprintf(rundir, sizeof rundir, "%s/run", h->dir);
    snprintf(log, sizeof log, "%s/pcscd.log", h->dir);
    mkdir(confdir, 0700);
    mkdir(rundir, 0755);
    h->port = harness_free_port();
    snprintf(path, sizeof path, "%s/vpcd", confdir);
    FILE *f = fopen(path, "w");
    if (!f || h->port <= 0) {
        if (f)
            fclose(f);
        return -1;
    }
    /* DEVICENAME's port is where vpcd listens for the card; only vpcd's own driver, nothing else */
    fprintf(f, "FRIENDLYNAME \"%s\"\nDEVICENAME /dev/null:0x%04X\n"
               "LIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID 0x%04X\n",
            PCSCD_HARNESS_READER, h->port, h->port);
    fclose(f);

    /* /usr/sbin is not on every PATH (a non-login shell, a CI runner) */
    const char *pcscd = access("/usr/sbin/pcscd", X_OK) == 0 ? "/usr/sbin/pcscd" : "pcscd";
    /* IFPP_PCSCD_SHARED=1 takes the fallback on purpose, to test it where unshare would work */
    const char *shared = getenv("IFPP_PCSCD_SHARED");
    h->private_ns = !(shared && !strcmp(shared, "1")) && harness_can_unshare(rundir) == 0;
    if (h->private_ns) {
        char cmd[1800];
        snprintf(cmd, sizeof cmd, "mkdir -p /run/pcscd && mount --bind '%s' /run/pcscd && exec %s --foreground --error -c '%s'",
                 rundir, pcscd, confdir);
        char *argv[] = {"unshare", "--mount", "--propagation", "private", "sh", "-c", cmd, NULL};
        snprintf(h->sock, sizeof h->sock, "%s/pcscd.comm", rundir);
        setenv("PCSCLITE_CSOCK_NAME", h->sock, 1);
        h->pcscd = harness_spawn(argv, log);
    } else {
        int other = harness_other_pcscd();
        if (other) {
            fprintf(stderr, "pcscd_harness: another pcscd (pid %d) owns /run/pcscd; stop it first\n", other);
            return -1;
        }
        snprintf(h->sock, sizeof h->sock, "/run/pcscd/pcscd.comm");
        char *argv[] = {(char *)pcscd, "--foreground", "--error", "-c", confdir, NULL};
        h->pcscd = harness_spawn(argv, log);
    }
    if (h->pcscd <= 0 || harness_wait_reader(-1) != 0) {
        fprintf(stderr, "pcscd_harness: pcscd did not list the vpcd reader (log: %s)\n", log);
        pcscd_harness_stop(h);
        return -1;
    }
    return 0;
}

int pcscd_harness_insert(pcscd_harness *h, const char *card_file, const char *const *extra_args)
{
    char port[16], log[600];
    const char *argv[32];
    size_t n = 0;
    snprintf(port, sizeof port, "%d", h->port);
    snprintf(log, sizeof log, "%s/vpcd-card.log", h->dir);
    argv[n++] = tu_tool("IFPP_VPCD_CARD", "ifpp-vpcd-card");
    argv[n++] = "--card";
    argv[n++] = card_file;
    argv[n++] = "--port";
    argv[n++] = port;
    for (size_t i = 0; extra_args && extra_args[i] && n < 31; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
    if (h->card && pcscd_harness_pull(h) != 0) /* the old card must be seen gone, or pcscd takes the new for it */
        return -1;
    h->card = harness_spawn((char *const *)argv, log);
    return h->card > 0 && harness_wait_reader(1) == 0 ? 0 : -1;
}

int pcscd_harness_pull(pcscd_harness *h)
{
    harness_kill(&h->card);
    return harness_wait_reader(0);
}

void pcscd_harness_kill_daemon(pcscd_harness *h)
{
    harness_kill(&h->pcscd);
}

void pcscd_harness_stop(pcscd_harness *h)
{
    harness_kill(&h->card);
    harness_kill(&h->pcscd);
}
