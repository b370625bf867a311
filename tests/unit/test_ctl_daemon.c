/*
 * test_ctl_daemon.c -- ifppctl beside a running ifpp-agent (issue 13 item 4): the daemon (ifpp-agent-rehearse,
 * started and stopped by PID, readiness by READY=1 on our NOTIFY_SOCKET) owns the store, so ifppctl's writes
 * (provision, import-vault) are refused and leave the store and the card as they were; provision, status and
 * stock go through its MES socket; a second daemon cannot claim the store; `ifppctl config check` runs the
 * daemon's validation on a good and a bad station.conf.d. ifppctl is the rehearsal tool (the product's
 * dispatcher with the virtual backend), run as a child process as an operator would.
 */
#define _GNU_SOURCE /* memmem */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
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

#include "agentd_fixture.h"
#include "station.h"
#include "store.h"
#include "testline.h"
#include "testutil.h"

static afx *fx;
static char *slot_card; /* slot-00's card file: the operator puts a DUT in by renaming its card here */

/* Runs the rehearsal ifppctl with args (NULL-terminated); its stdout and stderr together in out. */
static int ctl(char *out, size_t cap, ...)
{
    char *argv[32] = {"sh", "-c", "exec \"$0\" \"$@\" 2>&1", (char *)tu_tool("IFPP_IFPPCTL", "ifpp-rehearse")};
    size_t n = 4;
    va_list ap;
    va_start(ap, cap);
    for (char *a; n + 1 < 32 && (a = va_arg(ap, char *));)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    out[0] = '\0';
    return tu_run(argv, out, cap);
}

/* Every BPP state's count in the store, read-only. */
static void bpp_counts(size_t counts[BPP_STATE__COUNT])
{
    store *s;
    char why[512] = "";
    assert_int_equal(store_open_readonly(fx->L.db, &s, why, sizeof why), IFPP_OK);
    for (int i = 0; i < BPP_STATE__COUNT; i++)
        assert_int_equal(store_count_bpps(s, (bpp_state)i, &counts[i]), IFPP_OK);
    store_close(s);
}

static int fx_setup(void **state)
{
    fx = afx_make("ctl-daemon", 2, 2);
    slot_card = afx_slot_card(fx, 0);
    afx_conf_trust(fx);
    afx_conf(fx, "40-slots.conf", "slots = ( { name = \"slot-00\"; spec = \"virtual:%s\"; } );\n", slot_card);
    afx_conf(fx, "50-mes.conf", "mes = { path = \"%s\"; mode = \"0600\"; };\n", fx->sock);
    afx_start(fx);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    (void)state;
    afx_free(fx, "CTL_KEEP");
    free(slot_card);
    fx = NULL;
    return 0;
}

/* A write behind the daemon's back is refused by name; the store and the card stay exactly as they were. */
static void test_writes_refused(void **state)
{
    (void)state;
    char out[8192], slot[4096];
    size_t before[BPP_STATE__COUNT], after[BPP_STATE__COUNT], n0, n1;
    bpp_counts(before);
    uint8_t *card0 = tu_read_file(fx->L.card[1], &n0);
    assert_non_null(card0);
    snprintf(slot, sizeof slot, "virtual:%s", fx->L.card[1]);
    int rc = ctl(out, sizeof out, "--store", fx->L.db, "--pki", fx->L.pki, "provision", "--slot", slot, "--serial",
                 "LOCAL-1", (char *)NULL);
    if (rc != STATION_EXIT_REFUSED || !strstr(out, "owned by the running ifpp-agent") || !strstr(out, fx->sock))
        fail_msg("provision behind the daemon: exit %d: %s", rc, out);
    rc = ctl(out, sizeof out, "--store", fx->L.db, "--pki", fx->L.pki, "import-vault", fx->L.vault_path, (char *)NULL);
    if (rc != STATION_EXIT_REFUSED || !strstr(out, "nothing was done"))
        fail_msg("import-vault behind the daemon: exit %d: %s", rc, out);
    bpp_counts(after);
    assert_memory_equal(before, after, sizeof before);
    uint8_t *card1 = tu_read_file(fx->L.card[1], &n1);
    assert_non_null(card1);
    assert_true(n0 == n1 && !memcmp(card0, card1, n0));
    free(card0);
    free(card1);
    /* reads stay local (a read-only snapshot of the WAL store): status works beside the daemon */
    rc = ctl(out, sizeof out, "--store", fx->L.db, "status", (char *)NULL);
    if (rc != 0 || !strstr(out, "BPPs by state:"))
        fail_msg("status beside the daemon: exit %d: %s", rc, out);
}

/* The store's claim: a second daemon on it stops before it opens anything, naming the first. */
static void test_second_daemon_refused(void **state)
{
    (void)state;
    char *conf2 = tu_path(fx->dir, "conf2.d"), *log2 = tu_path(fx->dir, "agent2.log"), *sock2 = tu_path(fx->dir, "m2");
    char want[64];
    assert_int_equal(mkdir(conf2, 0700), 0);
    afx_write(conf2, "10-station.conf", "store = { path = \"%s\"; };\ntrust = { pki_dir = \"%s\"; };\n"
                                         "mes = { path = \"%s\"; };\n", fx->L.db, fx->L.pki, sock2);
    pid_t p = afx_start_on(fx, conf2, log2, false);
    if (p > 0) {
        kill(p, SIGTERM);
        waitpid(p, NULL, 0);
        fail_msg("a second ifpp-agent started on the same store");
    }
    snprintf(want, sizeof want, "in use by pid %ld", (long)fx->pid);
    if (!afx_file_has(log2, want))
        fail_msg("the second daemon's log does not say '%s' (%s)", want, log2);
    /* what ifppctl reads: the owner's pid and its socket */
    long pid;
    int fd;
    char sock[256], why[512] = "";
    assert_int_equal(station_daemon_guard(fx->L.db, &fd, &pid, sock, sizeof sock, why, sizeof why), IFPP_OK);
    assert_int_equal(fd, -1);
    assert_int_equal(pid, (long)fx->pid);
    assert_string_equal(sock, fx->sock);
    free(conf2);
    free(log2);
    free(sock2);
}

/* provision, status and stock through the daemon's socket; the daemon's answer decides the exit code. */
static void test_through_socket(void **state)
{
    (void)state;
    char out[16384], local[8192];
    size_t before[BPP_STATE__COUNT], after[BPP_STATE__COUNT];
    bpp_counts(before);
    assert_int_equal(rename(fx->L.card[0], slot_card), 0); /* the operator puts the DUT in slot-00 */
    int rc = ctl(out, sizeof out, "--socket", fx->sock, "provision", "--serial", "VIA-1", "--slot", "slot-00",
                 (char *)NULL);
    if (rc != 0 || !strstr(out, "accepted by ifpp-agent in slot slot-00") || !strstr(out, "VIA-1 PASS: "))
        fail_msg("provision through the daemon: exit %d: %s", rc, out);
    bpp_counts(after);
    assert_int_equal(after[BPP_INSTALLED], before[BPP_INSTALLED] + 1);
    assert_int_equal(after[BPP_AVAILABLE] + 1, before[BPP_AVAILABLE]);
    /* the daemon's refusal is ifppctl's: a slot it does not have */
    rc = ctl(out, sizeof out, "--socket", fx->sock, "provision", "--serial", "VIA-2", "--slot", "slot-99", (char *)NULL);
    if (rc != STATION_EXIT_REFUSED || !strstr(out, "not-found"))
        fail_msg("provision in a slot the daemon has not: exit %d: %s", rc, out);
    /* status: the daemon's slots (slot-00's last DUT) and its stock */
    rc = ctl(out, sizeof out, "--socket", fx->sock, "status", (char *)NULL);
    if (rc != 0 || !strstr(out, "ifpp-agent at ") || !strstr(out, "slot-00") || !strstr(out, "last VIA-1 PASS") ||
        !strstr(out, "stock (available BPPs) per profile type:"))
        fail_msg("status through the daemon: exit %d: %s", rc, out);
    /* stock through --config's mes.path: the same lines as the store's own, read locally */
    rc = ctl(local, sizeof local, "--store", fx->L.db, "stock", (char *)NULL);
    assert_int_equal(rc, 0);
    rc = ctl(out, sizeof out, "--config", fx->conf, "stock", (char *)NULL);
    if (rc != 0 || strncmp(out, local, strlen(local)) || !strstr(out, "(ifpp-agent warns under "))
        fail_msg("stock through the daemon: exit %d:\n%s\nlocally:\n%s", rc, out, local);
    /* no daemon at the socket: a station failure naming it */
    char *none = tu_path(fx->dir, "no.sock");
    rc = ctl(out, sizeof out, "--socket", none, "stock", (char *)NULL);
    if (rc != STATION_EXIT_FAILURE || !strstr(out, "is ifpp-agent running?"))
        fail_msg("stock with no daemon: exit %d: %s", rc, out);
    free(none);
}

/* config check: the daemon's validation; the merged result printed, an error naming file and line, exit 2. */
static void test_config_check(void **state)
{
    (void)state;
    char out[16384];
    int rc = ctl(out, sizeof out, "config", "check", "--config", fx->conf, (char *)NULL);
    if (rc != 0 || !strstr(out, "valid (5 file(s), 1 slot(s))") || !strstr(out, fx->L.db) ||
        !strstr(out, "slot-00") || !strstr(out, fx->sock))
        fail_msg("config check of a good configuration: exit %d: %s", rc, out);
    char *bad = tu_path(fx->dir, "bad.d");
    assert_int_equal(mkdir(bad, 0700), 0);
    afx_write(bad, "10-a.conf", "station = { id = \"x\"; };\n");
    afx_write(bad, "20-b.conf", "# a typo\nstore = { path = \"/tmp/x.db\"; bogus_key = 1; };\n");
    rc = ctl(out, sizeof out, "config", "check", "--config", bad, (char *)NULL);
    if (rc != STATION_EXIT_USAGE || !strstr(out, "20-b.conf:2") || !strstr(out, "bogus_key"))
        fail_msg("config check of a bad configuration: exit %d: %s", rc, out);
    rc = ctl(out, sizeof out, "config", "lint", "--config", fx->conf, (char *)NULL);
    assert_int_equal(rc, STATION_EXIT_USAGE);
    free(bad);
}

/* A server that answers a request with what (len bytes), then holds the connection; its pid. */
static pid_t fake_daemon(const char *path, const char *what, size_t len)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    unlink(path);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(l, 4), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int c = accept(l, NULL, NULL);
        char req[4096];
        if (c < 0 || recv(c, req, sizeof req, 0) <= 0)
            _exit(1);
        for (size_t off = 0; off < len;) {
            ssize_t w = send(c, what + off, len - off, MSG_NOSIGNAL);
            if (w <= 0)
                _exit(0); /* ifppctl hung up: it stopped reading, as it should */
            off += (size_t)w;
        }
        pause();
        _exit(0);
    }
    close(l);
    return pid;
}

/* The daemon is a peer to be distrusted too: a line without end, or one that is not JSON, ends the call. */
static void test_hostile_daemon(void **state)
{
    (void)state;
    char out[8192];
    char *path = tu_path(fx->dir, "fake.sock");
    size_t big = (1u << 20) + 4096;
    char *flood = malloc(big);
    assert_non_null(flood);
    memset(flood, 'x', big);
    pid_t p = fake_daemon(path, flood, big);
    int rc = ctl(out, sizeof out, "--socket", path, "stock", (char *)NULL);
    kill(p, SIGTERM);
    waitpid(p, NULL, 0);
    if (rc != STATION_EXIT_FAILURE || !strstr(out, "a line longer than"))
        fail_msg("a daemon that floods: exit %d: %s", rc, out);
    static const char junk[] = "{\"id\": this is not JSON\n";
    p = fake_daemon(path, junk, sizeof junk - 1);
    rc = ctl(out, sizeof out, "--socket", path, "stock", (char *)NULL);
    kill(p, SIGTERM);
    waitpid(p, NULL, 0);
    if (rc != STATION_EXIT_FAILURE || !strstr(out, "not a JSON object"))
        fail_msg("a daemon that sends junk: exit %d: %s", rc, out);
    free(flood);
    free(path);
}

/* After the daemon stopped, the store is ifppctl's again: the same local provision passes. */
static void test_after_daemon(void **state)
{
    (void)state;
    char out[8192], slot[4096];
    afx_stop(fx);
    snprintf(slot, sizeof slot, "virtual:%s", fx->L.card[1]);
    int rc = ctl(out, sizeof out, "--store", fx->L.db, "--pki", fx->L.pki, "provision", "--slot", slot, "--serial",
                 "LOCAL-2", (char *)NULL);
    if (rc != 0 || !strstr(out, "LOCAL-2 PASS: "))
        fail_msg("provision after the daemon stopped: exit %d: %s", rc, out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_refused),       cmocka_unit_test(test_second_daemon_refused),
        cmocka_unit_test(test_through_socket),       cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_hostile_daemon),       cmocka_unit_test(test_after_daemon),
    };
    return cmocka_run_group_tests_name("ifppctl beside ifpp-agent", tests, fx_setup, fx_teardown);
}
