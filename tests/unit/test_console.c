/*
 * test_console.c -- ifpp-console (issue 14). The model's units (reasons in plain words, scan checking and routing,
 * daemon lines), then the console itself in tmux against ifpp-agent-rehearse with three virtual slots (two cards,
 * one slot empty): scans typed with send-keys, PASS and FAIL rows read back with capture-pane, a refused scan, and
 * a daemon restart. Processes by PID (the tmux server by its own socket name); no timed assertion: the screen is
 * polled up to a generous deadline and a failure prints the last capture.
 */
#define _GNU_SOURCE
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
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "console_model.h"
#include "testline.h"
#include "testutil.h"

static void feed(cm_model *m, const char *line)
{
    assert_true(cm_handle_line(m, line, strlen(line)));
}

static void three_slots(cm_model *m)
{
    cm_init(m, 1000);
    feed(m, "{\"id\":\"q\",\"ok\":true,\"slots\":[{\"slot\":\"a\",\"state\":\"idle\"},{\"slot\":\"b\",\"state\":\"idle\"},"
            "{\"slot\":\"c\",\"state\":\"fault\"}]}");
    assert_int_equal(m->n_slots, 3);
}

static void test_reasons(void **state)
{
    (void)state;
    assert_int_equal(cm_reason_of("PASS", "", "profile installed"), CM_R_PASS);
    assert_int_equal(cm_reason_of("REFUSED", "reserve BPP", "no available BPP for eUICC 89..."), CM_R_NO_PROFILE);
    assert_int_equal(cm_reason_of("REFUSED", "reserve BPP", "this DUT already has a profile (eUICC 89)"), CM_R_ALREADY);
    assert_int_equal(cm_reason_of("FAIL", "load BPP", "BPP load interrupted (io)"), CM_R_PULLED);
    assert_int_equal(cm_reason_of("STATION-FAILURE", "select ISD-R", "virtual eUICC: x: No such file"), CM_R_NO_CARD);
    assert_int_equal(cm_reason_of("STATION-FAILURE", "reserve BPP", "store: reserving failed"), CM_R_STATION);
    assert_int_equal(cm_reason_of("FAIL", "authorise FPA services", "x"), CM_R_CARD_REFUSED);
    assert_string_equal(cm_reason_words(CM_R_NO_PROFILE), "no profile left for this eUICC");
    assert_string_equal(cm_reason_words(CM_R_PULLED), "card removed during loading: put it back and scan again");
}

static void test_scans(void **state)
{
    (void)state;
    cm_model m;
    char out[512];
    three_slots(&m);
    assert_false(cm_scan(&m, "bad serial!", NULL, out, sizeof out));
    assert_non_null(strstr(m.notice, "not a DUT serial"));
    assert_false(cm_scan(&m, "zz:DUT-1", NULL, out, sizeof out));
    assert_non_null(strstr(m.notice, "no slot 'zz'"));
    assert_false(cm_scan(&m, "\xc5\x1b" "1:U", NULL, out, sizeof out)); /* fuzz_console: the echo stays printable */
    assert_non_null(strstr(m.notice, "no slot '??1'"));
    assert_false(cm_scan(&m, "3:DUT-1", NULL, out, sizeof out)); /* a slot in fault: out of place */
    assert_non_null(strstr(m.notice, "not free"));
    assert_true(cm_scan(&m, "DUT-1", "opA", out, sizeof out));    /* the first free slot */
    assert_non_null(strstr(out, "\"slot\":\"a\""));
    assert_non_null(strstr(out, "\"profile_type\":\"opA\""));
    assert_false(cm_scan(&m, "DUT-1", NULL, out, sizeof out));
    assert_non_null(strstr(m.notice, "twice in a row"));
    assert_true(cm_scan(&m, "b:DUT-2", NULL, out, sizeof out));
    assert_non_null(strstr(out, "\"slot\":\"b\""));
    assert_false(cm_scan(&m, "DUT-1", NULL, out, sizeof out));  /* not in a row, but still in slot a */
    assert_non_null(strstr(m.notice, "already in a"));
    assert_false(cm_scan(&m, "DUT-3", NULL, out, sizeof out));
    assert_non_null(strstr(m.notice, "no free slot"));
}

static void test_lines(void **state)
{
    (void)state;
    cm_model m;
    three_slots(&m);
    assert_false(cm_handle_line(&m, "not json", 8));
    assert_false(cm_handle_line(&m, "[1]", 3));
    feed(&m, "{\"event\":\"WorkStarted\",\"slot\":\"a\",\"serial\":\"D\\u001b[2J\",\"request\":1}");
    assert_string_equal(m.slot[0].serial, "D?[2J"); /* no escape reaches the terminal */
    feed(&m, "{\"event\":\"StationStateChanged\",\"slot\":\"s\\u007f\",\"state\":\"idle\"}");
    assert_string_equal(m.slot[3].name, "s?");   /* fuzz_console: a slot's name too */
    m.n_slots = 3;
    feed(&m, "{\"event\":\"WorkProgress\",\"slot\":\"a\",\"serial\":\"D\",\"eid\":\"8904\",\"step\":\"load BPP\"}");
    assert_int_equal(m.slot[0].step_index, cm_step_index("load BPP"));
    feed(&m, "{\"event\":\"WorkCompleted\",\"slot\":\"a\",\"serial\":\"D\",\"eid\":\"8904\",\"result\":\"FAIL\","
             "\"message\":\"BPP load interrupted (io)\",\"request\":1}");
    assert_int_equal(m.slot[0].reason, CM_R_PULLED);
    assert_int_equal(m.fail, 1);
    assert_int_equal(m.by_reason[CM_R_PULLED], 1);
    feed(&m, "{\"id\":\"s\",\"ok\":true,\"stock\":{\"opA\":3,\"opB\":50},\"low_under\":5}");
    assert_int_equal(m.n_stock, 2);
    assert_true(m.stock[0].low);
    assert_false(m.stock[1].low);
    feed(&m, "{\"id\":\"c9\",\"ok\":false,\"error\":\"refused\",\"message\":\"the DUT is already in a slot\"}");
    assert_non_null(strstr(m.notice, "refused"));
    for (int i = 0; i < 80; i++) /* a peer naming more slots than the table holds: bounded */
        feed(&m, "{\"event\":\"StationStateChanged\",\"slot\":\"x\",\"state\":\"idle\"}");
    char ev[128];
    for (int i = 0; i < 80; i++) {
        snprintf(ev, sizeof ev, "{\"event\":\"StationStateChanged\",\"slot\":\"n%d\",\"state\":\"idle\"}", i);
        feed(&m, ev);
    }
    assert_int_equal(m.n_slots, CM_MAX_SLOTS);
    /* our provision's reply after its WorkCompleted: the slot is free again */
    char out[256];
    three_slots(&m);
    assert_true(cm_scan(&m, "b:DUT-9", NULL, out, sizeof out));
    feed(&m, "{\"event\":\"WorkCompleted\",\"slot\":\"b\",\"serial\":\"DUT-9\",\"eid\":\"89\",\"result\":\"PASS\","
             "\"message\":\"ok\",\"request\":\"c1\"}");
    feed(&m, "{\"id\":\"c1\",\"ok\":true,\"status\":\"accepted\",\"slot\":\"b\",\"serial\":\"DUT-9\"}");
    assert_string_equal(m.slot[1].request, "");
    assert_true(cm_scan(&m, "b:DUT-10", NULL, out, sizeof out));
    assert_true(cm_per_hour(&m, 1000 + 3600) > 0.9);
}

/* ---- the console in tmux against the daemon ---- */

typedef struct {
    test_line L;
    char *dir, *conf, *sock, *log, tmux[64];
    pid_t agent;
} con_fx;

static con_fx X;

static void start_agent(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(X.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(126);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("JOURNAL_STREAM");
        const char *agent = tu_tool("IFPP_AGENT", "ifpp-agent-rehearse");
        execl(agent, agent, "-c", X.conf, (char *)NULL);
        _exit(127);
    }
    X.agent = pid;
    /* ready when the socket answers (bounded: 60 s of 50 ms tries); an early exit is reported */
    for (int i = 0; i < 1200; i++) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", X.sock);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            X.agent = 0;
            fail_msg("ifpp-agent-rehearse exited (status %d); see %s", st, X.log);
        }
        usleep(50000);
    }
    fail_msg("ifpp-agent-rehearse's socket never answered; see %s", X.log);
}

static void stop_agent(void)
{
    if (X.agent > 0) {
        kill(X.agent, SIGTERM);
        waitpid(X.agent, NULL, 0);
        X.agent = 0;
    }
}

static int tmux(char *out, size_t cap, ...)
{
    char *argv[16] = {"tmux", "-L", X.tmux};
    int n = 3;
    va_list ap;
    va_start(ap, cap);
    char *a;
    while (n < 15 && (a = va_arg(ap, char *)))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return tu_run(argv, out, cap);
}

/* Polls the screen until every needle shows (bounded: 120 s); fails with the last capture. */
static char screen[16384];
static void wait_screen(const char *a, const char *b)
{
    for (int i = 0; i < 1200; i++) {
        screen[0] = 0;
        tmux(screen, sizeof screen, "capture-pane", "-p", "-t", "con", (char *)NULL);
        if (strstr(screen, a) && (!b || strstr(screen, b)))
            return;
        usleep(100000);
    }
    fail_msg("the screen never showed '%s'%s%s; last capture:\n%s", a, b ? " and " : "", b ? b : "", screen);
}

static void keys(const char *scan)
{
    assert_int_equal(tmux(NULL, 0, "send-keys", "-t", "con", "-l", scan, (char *)NULL), 0);
    assert_int_equal(tmux(NULL, 0, "send-keys", "-t", "con", "Enter", (char *)NULL), 0);
}

static int tmux_setup(void **state)
{
    char why[512] = "", out[256];
    *state = NULL;
    if (tu_run((char *const[]){"tmux", "-V", NULL}, out, sizeof out) != 0) {
        print_message("tmux not found: the console's screen test is skipped (Debian: tmux)\n");
        return 0;
    }
    X.dir = tu_mkdtemp("console");
    X.conf = tu_path(X.dir, "conf.d");
    X.sock = tu_path(X.dir, "mes.sock");
    X.log = tu_path(X.dir, "agent.log");
    snprintf(X.tmux, sizeof X.tmux, "ifpp-console-test-%ld", (long)getpid());
    assert_int_equal(mkdir(X.conf, 0700), 0);
    test_line_opts o = {.n_cards = 3, .profile_size = 1024, .import_vault = true};
    o.n_otks[0] = o.n_otks[1] = o.n_otks[2] = 2;
    if (test_line_make(&X.L, X.dir, &o, why, sizeof why) != 0)
        fail_msg("%s", why);
    char *p = tu_path(X.conf, "all.conf");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "station = { id = \"console-test\"; };\nstore = { path = \"%s\"; };\ntrust = { pki_dir = \"%s\"; };\n"
               "mes = { path = \"%s\"; mode = \"0600\"; };\ntimeouts = { stock_low = 3; };\n"
               "slots = ( { name = \"slot-1\"; spec = \"virtual:%s\"; }, { name = \"slot-2\"; spec = \"virtual:%s\"; },\n"
               "  { name = \"slot-3\"; spec = \"virtual:%s/empty-slot.card\"; },\n"
               /* slot-4: the operator pulls the card in mid-load (the 12th APDU of a fresh card's session) */
               "  { name = \"slot-4\"; spec = \"virtual:%s,pull-at-apdu=12\"; } );\n",
            X.L.db, X.L.pki, X.sock, X.L.card[0], X.L.card[1], X.dir, X.L.card[2]);
    fclose(f);
    free(p);
    start_agent();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s --socket %s", tu_tool("IFPP_CONSOLE", "ifpp-console"), X.sock);
    assert_int_equal(tmux(NULL, 0, "-f", "/dev/null", "new-session", "-d", "-s", "con", "-x", "80", "-y", "24", cmd,
                          (char *)NULL), 0);
    *state = &X;
    return 0;
}

static int tmux_teardown(void **state)
{
    if (!*state)
        return 0;
    tmux(NULL, 0, "kill-server", (char *)NULL);
    stop_agent();
    if (!getenv("CONSOLE_KEEP"))
        tu_rmrf(X.dir);
    test_line_free(&X.L);
    free(X.dir);
    free(X.conf);
    free(X.sock);
    free(X.log);
    return 0;
}

static void test_screen(void **state)
{
    if (!*state)
        skip();
    wait_screen("connected", "slot-4");
    keys("1:DUT-A");                       /* card 0 in slot-1: loaded */
    wait_screen("PASS 1", "DUT-A");
    keys("1:DUT-B");                       /* the same eUICC again under another serial */
    wait_screen("this DUT already has a profile", "FAIL 1");
    keys("3:DUT-C");                       /* slot-3 holds no card */
    wait_screen("no card in the slot", "FAIL 2");
    keys("bad!serial");
    wait_screen("scan refused: 'bad!serial' is not a DUT serial", NULL);
    keys("DUT-C");                         /* the same serial twice in a row */
    wait_screen("scanned twice in a row", NULL);
    keys("9:DUT-E");
    wait_screen("no slot '9'", NULL);
    keys("4:DUT-P");                       /* slot-4: the card is pulled while the BPP loads */
    wait_screen("card removed during loading: put it back", "FAIL 3");
    print_message("screen after the pulled card:\n%s\n", screen);
    print_message("screen after the scans:\n%s\n", screen);
    stop_agent();                          /* the daemon goes away and comes back */
    wait_screen("DISCONNECTED", NULL);
    start_agent();
    wait_screen(" connected", "slot-2   idle");
    keys("2:DUT-D");                       /* card 1 in slot-2, after the restart */
    wait_screen("DUT-D", "PASS 2");
    print_message("screen after the restart:\n%s\n", screen);
    /* 100x30: redrawn at the new size */
    assert_int_equal(tmux(NULL, 0, "resize-window", "-t", "con", "-x", "100", "-y", "30", (char *)NULL), 0);
    wait_screen("F8 cancel", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_scans),
        cmocka_unit_test(test_lines),
        cmocka_unit_test_setup_teardown(test_screen, tmux_setup, tmux_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
