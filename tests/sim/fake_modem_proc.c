/*
 * fake_modem_proc.c -- the fake modem as a child process: started with a pipe for the one line
 * (its pty's path) it prints, stopped by its PID.
 */
#include "fake_modem_proc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int fake_modem_start(fake_modem_proc *m, const char *exe, const char *card, const char *const *args)
{
    const char *env = getenv("IFPP_FAKE_MODEM");
    const char *argv[40];
    size_t n = 0;
    int fd[2];
    memset(m, 0, sizeof *m);
    argv[n++] = env && *env ? env : exe;
    argv[n++] = "--card";
    argv[n++] = card;
    for (size_t i = 0; args && args[i] && n < sizeof argv / sizeof argv[0] - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (!argv[0] || pipe(fd) != 0)
        return -1;
    fflush(NULL);
    m->pid = fork();
    if (m->pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (m->pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fd[1]);
    size_t len = 0;
    while (len + 1 < sizeof m->port) {
        char c;
        ssize_t r = read(fd[0], &c, 1);
        if (r != 1 || c == '\n')
            break;
        m->port[len++] = c;
    }
    m->port[len] = '\0';
    close(fd[0]);
    if (strncmp(m->port, "/dev/", 5) != 0) {
        fprintf(stderr, "fake modem %s named no port\n", argv[0]);
        fake_modem_stop(m);
        return -1;
    }
    return 0;
}

void fake_modem_stop(fake_modem_proc *m)
{
    if (m->pid > 0) {
        kill(m->pid, SIGKILL);
        waitpid(m->pid, NULL, 0);
    }
    m->pid = 0;
}
