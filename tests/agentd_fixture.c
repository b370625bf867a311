/*
 * agentd_fixture.c -- a running ifpp-agent for tests, its MES client and a SoftHSM2 token (agentd_fixture.h).
 * Written once for test_agentd and test_ctl_daemon, which each used to carry their own copy.
 */
#define _GNU_SOURCE /* memmem */
#include "agentd_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

afx *afx_make(const char *prefix, size_t cards, size_t otks)
{
    char why[512] = "";
    afx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_mkdtemp(prefix);
    f->conf = tu_path(f->dir, "conf.d");
    f->sock = tu_path(f->dir, "mes.sock");
    f->log = tu_path(f->dir, "agent.log");
    f->notify = tu_path(f->dir, "notify");
    assert_int_equal(mkdir(f->conf, 0700), 0);
    chmod(f->dir, 0755); /* a wrong-peer test's other user must reach the socket to be refused by its mode */
    test_line_opts o = {.n_cards = cards, .profile_size = 1024, .import_vault = true};
    for (size_t i = 0; i < cards; i++)
        o.n_otks[i] = otks;
    if (test_line_make(&f->L, f->dir, &o, why, sizeof why) != 0)
        fail_msg("%s", why);
    /* the store's busy timeout at its maximum: on a loaded machine 33 writers may wait long for the lock, and
     * these tests check results, not speed (a wait past 5 s would otherwise be a STATION-FAILURE) */
    afx_conf(f, "10-station.conf", "station = { id = \"%s\"; };\nstore = { path = \"%s\"; busy_timeout_ms = 600000; };\n",
             prefix, f->L.db);
    afx_conf(f, "50-mes.conf", "mes = { path = \"%s\"; mode = \"0660\"; max_clients = 32; max_line = 1024; "
                               "max_queue = 8192; };\n", f->sock);
    afx_conf(f, "60-timeouts.conf", "timeouts = { shutdown_ms = 600000; stock_low = 5; };\n");
    return f;
}

static void afx_vwrite(const char *dir, const char *name, const char *fmt, va_list ap)
{
    char *p = tu_path(dir, name);
    FILE *out = fopen(p, "w");
    assert_non_null(out);
    vfprintf(out, fmt, ap);
    assert_int_equal(fclose(out), 0);
    free(p);
}

void afx_write(const char *dir, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    afx_vwrite(dir, name, fmt, ap);
    va_end(ap);
}

void afx_conf(afx *f, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    afx_vwrite(f->conf, name, fmt, ap);
    va_end(ap);
}

void afx_conf_trust(afx *f)
{
    afx_conf(f, "30-trust.conf", "trust = { pki_dir = \"%s\"; };\n", f->L.pki);
}

char *afx_slot_card(const afx *f, size_t k)
{
    char name[32];
    snprintf(name, sizeof name, "slot-%02zu.card", k);
    return tu_path(f->dir, name);
}

pid_t afx_start_on(afx *f, const char *conf, const char *log, bool systemd_checks)
{
    int ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->notify);
    unlink(f->notify);
    assert_int_equal(bind(ns, (struct sockaddr *)&sa, sizeof sa), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(126);
        setenv("NOTIFY_SOCKET", f->notify, 1);
        char wpid[32];
        snprintf(wpid, sizeof wpid, "%ld", (long)getpid());
        setenv("WATCHDOG_PID", wpid, 1); /* as systemd sets them for a unit with WatchdogSec=1 */
        setenv("WATCHDOG_USEC", "1000000", 1);
        unsetenv("JOURNAL_STREAM");
        const char *agent = tu_tool("IFPP_AGENT", "ifpp-agent-rehearse");
        execl(agent, agent, "-c", conf, (char *)NULL);
        _exit(127);
    }
    /* READY=1 arrives when the socket listens and every slot thread runs, then STATUS= and, from the main loop,
     * WATCHDOG=1 (at half of WATCHDOG_USEC); an early exit is reported as pid 0 */
    bool ready = false, status = !systemd_checks, watchdog = !systemd_checks;
    while (!ready || !status || !watchdog) {
        char msg[512];
        struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
        setsockopt(ns, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t r = recv(ns, msg, sizeof msg - 1, 0);
        if (r > 0) {
            msg[r] = 0;
            ready |= strstr(msg, "READY=1") != NULL;
            status |= ready && strstr(msg, "STATUS=running: 0 of ") != NULL;
            watchdog |= ready && strstr(msg, "WATCHDOG=1") != NULL;
            continue;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            pid = 0;
            break;
        }
    }
    close(ns); /* later STATUS= messages are refused and dropped, never queued against the daemon */
    return pid;
}

void afx_start(afx *f)
{
    f->pid = afx_start_on(f, f->conf, f->log, true);
    if (f->pid == 0)
        fail_msg("ifpp-agent exited before READY; see %s", f->log);
}

int afx_stop(afx *f)
{
    int st = -1;
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, &st, 0);
        f->pid = 0;
    }
    return st;
}

bool afx_file_has(const char *path, const char *needle)
{
    size_t n;
    uint8_t *b = tu_read_file(path, &n);
    bool found = b && memmem(b, n, needle, strlen(needle));
    free(b);
    return found;
}

void afx_free(afx *f, const char *keep_env)
{
    if (!f)
        return;
    afx_stop(f);
    if (!keep_env || !getenv(keep_env))
        tu_rmrf(f->dir);
    test_line_free(&f->L);
    free(f->dir);
    free(f->conf);
    free(f->sock);
    free(f->log);
    free(f->notify);
    free(f);
}

/* ---- the MES client ---- */

int afx_connect(afx_client *c, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    c->len = 0;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int err = errno;
        close(c->fd);
        c->fd = -1;
        errno = err;
        return -1;
    }
    return 0;
}

void afx_send(afx_client *c, const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof line);
    assert_int_equal(send(c->fd, line, (size_t)n, MSG_NOSIGNAL), n);
}

json_t *afx_read(afx_client *c)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            json_error_t je;
            json_t *o = json_loadb(c->buf, (size_t)(nl - c->buf), 0, &je);
            size_t used = (size_t)(nl - c->buf) + 1;
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            if (!o)
                fail_msg("daemon sent a line that is not JSON: %s", je.text);
            return o;
        }
        if (c->len == sizeof c->buf)
            fail_msg("daemon sent a line longer than %zu bytes", sizeof c->buf);
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r <= 0)
            return NULL;
        c->len += (size_t)r;
    }
}

json_t *afx_reply(afx_client *c, const char *id)
{
    json_t *o;
    while ((o = afx_read(c))) {
        json_t *jid = json_object_get(o, "id");
        if (json_is_string(jid) && !strcmp(json_string_value(jid), id))
            return o;
        if (jid && json_is_null(jid) && !strcmp(id, "null"))
            return o;
        json_decref(o);
    }
    return NULL;
}

json_t *afx_event(afx_client *c, const char *event, const char *state)
{
    json_t *r;
    while ((r = afx_read(c))) {
        if (!strcmp(afx_js(r, "event"), event) && (!state || !strcmp(afx_js(r, "state"), state)))
            return r;
        json_decref(r);
    }
    return NULL;
}

const char *afx_js(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* ---- SoftHSM2 ---- */

bool afx_token(const char *dir, const char *key_pem, const char *label)
{
    char text[8192], out[4096];
    if (tu_run((char *const[]){"softhsm2-util", "--version", NULL}, out, sizeof out) != 0) {
        print_message("softhsm2-util not found: the PKCS#11 tests are skipped (Debian: softhsm2)\n");
        return false;
    }
    char *conf = tu_path(dir, "softhsm2.conf"), *tokens = tu_path(dir, "tokens");
    assert_int_equal(mkdir(tokens, 0700), 0);
    snprintf(text, sizeof text, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", tokens);
    assert_int_equal(tu_write_file(conf, (const uint8_t *)text, strlen(text)), 0);
    setenv("SOFTHSM2_CONF", conf, 1); /* children inherit it; p11-kit's proxy loads SoftHSM2 with it */
    assert_int_equal(tu_run((char *const[]){"softhsm2-util", "--init-token", "--free", "--label", AFX_TOKEN, "--pin",
                                            AFX_PIN, "--so-pin", "12345678", NULL}, out, sizeof out), 0);
    assert_int_equal(tu_run((char *const[]){"softhsm2-util", "--import", (char *)key_pem, "--token", AFX_TOKEN,
                                            "--label", (char *)label, "--id", "01", "--pin", AFX_PIN, NULL},
                            out, sizeof out), 0);
    free(conf);
    free(tokens);
    return true;
}
