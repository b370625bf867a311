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
#include <sqlite3.h>
#include <time.h>

#include "agentd_fixture.h"
#include "crypto.h"
#include "hex.h"
#include "station.h"
#include "store.h"
#include "testline.h"
#include "testutil.h"

static afx *fx;
static char *slot_card; /* slot-00's card file: the operator puts a DUT in by renaming its card here */
static char *media;     /* a directory on a mount other than the store's (/dev/shm) standing in for a stick */

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
    if (media && !getenv("CTL_KEEP"))
        tu_rmrf(media);
    free(media);
    media = NULL;
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

/* ---- report and recover through the daemon (issue 13 item 4, issue 15 item 1) ---- */

static char daemon_recover_out[8192], daemon_recover_tx[40];

/* out with every occurrence of each from[k] replaced by to[k] (n pairs), into buf. */
static const char *subst(const char *out, char *buf, size_t cap, size_t n, const char *const *from,
                         const char *const *to)
{
    size_t w = 0;
    for (const char *p = out; *p && w + 1 < cap;) {
        size_t k;
        for (k = 0; k < n && (!*from[k] || strncmp(p, from[k], strlen(from[k]))); k++)
            ;
        if (k < n) {
            w += (size_t)snprintf(buf + w, cap - w, "%s", to[k]);
            p += strlen(from[k]);
        } else {
            buf[w++] = *p++;
        }
    }
    buf[w < cap ? w : cap - 1] = '\0';
    return buf;
}

/* A fresh directory under media (removed by the caller with media). */
static char *media_dir(const char *name)
{
    char *d = tu_path(media, name);
    assert_int_equal(mkdir(d, 0700), 0);
    return d;
}

/* Reserves one available BPP of card k's eUICC, as a session killed after its reservation leaves it; its txid. */
static void reserve_one(size_t k, char tx[40])
{
    store *s;
    char why[512] = "";
    uint8_t eid[16];
    size_t n;
    store_bpp bpp;
    assert_int_equal(hex_decode(fx->L.eid[k], eid, sizeof eid, &n), IFPP_OK);
    assert_int_equal(store_open(fx->L.db, &s, why, sizeof why), IFPP_OK);
    store_actor who = {.session = "killed", .slot = "slot-00", .dut_serial = "KILLED-1", .reason = "provision"};
    assert_int_equal(bpp_reserve(s, eid, NULL, &who, &bpp), IFPP_OK);
    assert_int_equal(hex_encode(bpp.transaction_id, bpp.transaction_id_len, tx, 40), IFPP_OK);
    store_close(s);
}

/*
 * report --to DIR and --out FILE through the daemon: the same lines as ifppctl's own (the same counts, the same
 * CSV byte for byte, a signed report that verifies and ties to the store), plus each file's SHA-256 as the medium
 * holds it; a destination the media checks refuse is refused by the daemon as by ifppctl.
 */
static void test_report_through_daemon(void **state)
{
    (void)state;
    char tmpl[] = "/dev/shm/ifpp-ctl-XXXXXX", out[16384], local[16384], day[11], b1[16384], b2[16384];
    if (!mkdtemp(tmpl))
        skip(); /* no tmpfs apart from the store's filesystem: nothing to stand in for a stick */
    media = strdup(tmpl);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    char *a = media_dir("local"), *b = media_dir("daemon");
    int rc = ctl(local, sizeof local, "--store", fx->L.db, "--pki", fx->L.pki, "--station-id", "ctl-daemon", "report",
                 "--day", day, "--to", a, (char *)NULL);
    if (rc != 0)
        fail_msg("report --to locally: exit %d: %s", rc, local);
    rc = ctl(out, sizeof out, "--socket", fx->sock, "report", "--day", day, "--to", b, (char *)NULL);
    if (rc != 0)
        fail_msg("report --to through the daemon: exit %d: %s", rc, out);
    const char *fa[] = {a}, *fb[] = {b}, *to[] = {"DIR"};
    subst(local, b1, sizeof b1, 1, fa, to);
    subst(out, b2, sizeof b2, 1, fb, to);
    if (strncmp(b1, b2, strlen(b1)) || !strstr(b2, "1 DUT row(s): 1 PASS"))
        fail_msg("report --to: the daemon's lines differ from ifppctl's:\n%s\nlocally:\n%s", b2, b1);
    /* the files: the CSV the same byte for byte; each SHA-256 the daemon named is the file's on the medium */
    char name[256];
    snprintf(name, sizeof name, "ifpp-ctl-daemon-%s-duts.csv", day);
    char *ca = tu_path(a, name), *cb = tu_path(b, name);
    size_t na, nb;
    uint8_t *x = tu_read_file(ca, &na), *y = tu_read_file(cb, &nb);
    assert_true(x && y && na == nb && !memcmp(x, y, na));
    free(x);
    free(y);
    static const char *const kinds[] = {"loading-report.der", "duts.csv", "summary.html"};
    for (size_t k = 0; k < 3; k++) {
        char want[400], hex[65], *p;
        uint8_t md[32];
        snprintf(name, sizeof name, "ifpp-ctl-daemon-%s-%s", day, kinds[k]);
        p = tu_path(b, name);
        assert_non_null(x = tu_read_file(p, &na));
        assert_int_equal(crypto_sha256(x, na, md), IFPP_OK);
        assert_int_equal(hex_encode(md, 32, hex, sizeof hex), IFPP_OK);
        snprintf(want, sizeof want, "sha256 %s  %s (%zu bytes, written by ifpp-agent)", hex, name, na);
        if (!strstr(out, want))
            fail_msg("report --to through the daemon does not say '%s':\n%s", want, out);
        free(x);
        if (k == 0) { /* the daemon's signed report verifies offline and ties to the store */
            rc = ctl(b1, sizeof b1, "--store", fx->L.db, "--pki", fx->L.pki, "verify", p, (char *)NULL);
            if (rc != 0 || !strstr(b1, "ties to the store"))
                fail_msg("verify the daemon's report: exit %d: %s", rc, b1);
        }
        free(p);
    }
    free(ca);
    free(cb);

    /* the documented example client (docs/mes_client.py) asks the same and prints sha256sum's lines */
    const char *src = getenv("IFPP_SOURCE_DIR");
    if (src) {
        char py[4096], want[400], hex[65];
        uint8_t md[32];
        char *c = media_dir("python");
        snprintf(py, sizeof py, "%s/docs/mes_client.py", src);
        rc = tu_run((char *const[]){"python3", py, "--socket", fx->sock, "report", "--dir", c, "--day", day, NULL}, b1,
                    sizeof b1);
        snprintf(name, sizeof name, "ifpp-ctl-daemon-%s-duts.csv", day);
        ca = tu_path(c, name);
        assert_non_null(x = tu_read_file(ca, &na));
        assert_int_equal(crypto_sha256(x, na, md), IFPP_OK);
        assert_int_equal(hex_encode(md, 32, hex, sizeof hex), IFPP_OK);
        snprintf(want, sizeof want, "%s  %s\n", hex, name);
        if (rc != 0 || !strstr(b1, want))
            fail_msg("mes_client.py report: exit %d, want '%s': %s", rc, want, b1);
        free(x);
        free(ca);
        free(c);
    }

    /* --out FILE: the signed report alone, the same line as ifppctl's own */
    char *oa = tu_path(a, "plr.der"), *ob = tu_path(b, "plr.der");
    rc = ctl(local, sizeof local, "--store", fx->L.db, "--pki", fx->L.pki, "--station-id", "ctl-daemon", "report",
             "--out", oa, (char *)NULL);
    assert_int_equal(rc, 0);
    rc = ctl(out, sizeof out, "--socket", fx->sock, "report", "--out", ob, (char *)NULL);
    if (rc != 0)
        fail_msg("report --out through the daemon: exit %d: %s", rc, out);
    const char *ga[] = {oa}, *gb[] = {ob}, *gt[] = {"FILE"};
    subst(local, b1, sizeof b1, 1, ga, gt);
    subst(out, b2, sizeof b2, 1, gb, gt);
    if (strncmp(b1, b2, strlen(b1)) || !strstr(b2, "sha256 "))
        fail_msg("report --out: the daemon's lines differ from ifppctl's:\n%s\nlocally:\n%s", b2, b1);
    free(oa);
    free(ob);

    /* a request naming no destination: the day's files go to station.conf.d's reports.dir (here: set by a reload) */
    char *cd = media_dir("configured");
    afx_client ev;
    assert_int_equal(afx_connect(&ev, fx->sock), 0);
    afx_send(&ev, "{\"id\":\"s\",\"op\":\"subscribe\"}\n");
    json_decref(afx_reply(&ev, "s"));
    afx_conf(fx, "65-reports.conf", "reports = { dir = \"%s\"; };\n", cd);
    assert_int_equal(kill(fx->pid, SIGHUP), 0);
    json_t *rl = afx_event(&ev, "StationStateChanged", "reloaded");
    assert_non_null(rl);
    json_decref(rl);
    afx_send(&ev, "{\"id\":\"d\",\"op\":\"report\",\"day\":\"%s\"}\n", day);
    json_t *rd = afx_reply(&ev, "d");
    assert_non_null(rd);
    if (!json_is_true(json_object_get(rd, "ok")) || strcmp(afx_js(rd, "status"), "written") ||
        strcmp(afx_js(rd, "dir"), cd))
        fail_msg("report with no destination: %s %s", afx_js(rd, "error"), afx_js(rd, "message"));
    json_decref(rd);
    char csv[64], *cp;
    snprintf(csv, sizeof csv, "ifpp-ctl-daemon-%s-duts.csv", day);
    cp = tu_path(cd, csv);
    struct stat cs;
    if (stat(cp, &cs) != 0 || cs.st_size == 0)
        fail_msg("report with no destination: no %s in reports.dir %s", csv, cd);
    free(cp);
    char *rc65 = tu_path(fx->conf, "65-reports.conf");
    unlink(rc65);
    free(rc65);
    assert_int_equal(kill(fx->pid, SIGHUP), 0); /* back to the default reports.dir for the tests after this one */
    assert_non_null(rl = afx_event(&ev, "StationStateChanged", "reloaded"));
    json_decref(rl);
    close(ev.fd);
    free(cd);

    /* refusals: the store's own filesystem (as ifppctl refuses it: exit 3), the store itself (exit 2), a file on
     * the station's disk (the daemon writes only onto removable media: exit 3) */
    rc = ctl(out, sizeof out, "--socket", fx->sock, "report", "--to", fx->dir, (char *)NULL);
    if (rc != STATION_EXIT_REFUSED || !strstr(out, "station's own filesystem"))
        fail_msg("report --to the store's filesystem through the daemon: exit %d: %s", rc, out);
    rc = ctl(out, sizeof out, "--socket", fx->sock, "report", "--out", fx->L.db, (char *)NULL);
    if (rc != STATION_EXIT_USAGE || !strstr(out, "the station's store"))
        fail_msg("report --out the store through the daemon: exit %d: %s", rc, out);
    char *disk = tu_path(fx->dir, "plr.der");
    rc = ctl(out, sizeof out, "--socket", fx->sock, "report", "--out", disk, (char *)NULL);
    struct stat sb;
    if (rc != STATION_EXIT_REFUSED || stat(disk, &sb) == 0)
        fail_msg("report --out onto the station's disk through the daemon: exit %d: %s", rc, out);
    free(disk);
    free(a);
    free(b);
}

/* Bad report and recover requests get bad-request or not-found naming what was wrong; the daemon goes on. */
static void test_report_recover_bad_requests(void **state)
{
    (void)state;
    static const struct {
        const char *line, *error, *says;
    } cases[] = {
        {"{\"id\":\"1\",\"op\":\"report\",\"dir\":\"media/x\"}\n", "bad-request", "not an absolute path"},
        {"{\"id\":\"1\",\"op\":\"report\",\"dir\":\"/a\",\"out\":\"/b\"}\n", "bad-request", "one of them"},
        {"{\"id\":\"1\",\"op\":\"report\"}\n", "refused", "/media/ifpp-reports"}, /* reports.dir, no stick */
        {"{\"id\":\"1\",\"op\":\"report\",\"dir\":\"/a\",\"day\":\"2026-02-30\"}\n", "bad-request", "calendar day"},
        {"{\"id\":\"1\",\"op\":\"report\",\"dir\":\"/a\",\"slot\":\"x\"}\n", "bad-request", "unknown field 'slot'"},
        {"{\"id\":\"1\",\"op\":\"report\",\"dir\":\"/nonexistent/stick\"}\n", "refused", "/nonexistent/stick"},
        {"{\"id\":\"1\",\"op\":\"recover\"}\n", "bad-request", "missing field 'slot'"},
        {"{\"id\":\"1\",\"op\":\"recover\",\"slot\":\"slot-00\",\"serial\":\"X\"}\n", "bad-request",
         "unknown field 'serial' for op recover"},
        {"{\"id\":\"1\",\"op\":\"recover\",\"slot\":\"slot-99\"}\n", "not-found", "no slot named 'slot-99'"},
    };
    afx_client c;
    assert_int_equal(afx_connect(&c, fx->sock), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        afx_send(&c, "%s", cases[i].line);
        json_t *r = afx_reply(&c, "1");
        assert_non_null(r);
        if (json_is_true(json_object_get(r, "ok")) || strcmp(afx_js(r, "error"), cases[i].error) ||
            !strstr(afx_js(r, "message"), cases[i].says))
            fail_msg("case %zu: %s: got %s: %s", i, cases[i].line, afx_js(r, "error"), afx_js(r, "message"));
        json_decref(r);
    }
    afx_send(&c, "{\"id\":\"1\",\"op\":\"ping\"}\n");
    json_t *r = afx_reply(&c, "1");
    assert_non_null(r);
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    close(c.fd);
}

/*
 * recover --slot NAME through the daemon: a BPP a killed session left reserved goes back to available as the card's
 * own evidence says (its One-time Key is still there), printed as ifppctl prints it (compared with ifppctl's own
 * run once the daemon has stopped); and a busy slot is refused by name, nothing done.
 */
static void test_recover_through_daemon(void **state)
{
    (void)state;
    char out[8192];
    size_t before[BPP_STATE__COUNT], after[BPP_STATE__COUNT];
    reserve_one(0, daemon_recover_tx); /* card 0 is in slot-00 since test_through_socket */
    bpp_counts(before);
    int rc = ctl(daemon_recover_out, sizeof daemon_recover_out, "--socket", fx->sock, "recover", "--slot", "slot-00",
                 (char *)NULL);
    if (rc != 0 || !strstr(daemon_recover_out, "slot-00: 1 BPP(s) resolved from the eUICC's evidence") ||
        !strstr(daemon_recover_out, daemon_recover_tx))
        fail_msg("recover through the daemon: exit %d: %s", rc, daemon_recover_out);
    bpp_counts(after);
    assert_int_equal(after[BPP_RESERVED] + 1, before[BPP_RESERVED]);
    assert_int_equal(after[BPP_AVAILABLE], before[BPP_AVAILABLE] + 1);

    /* a busy slot: a further profile (A.3) for the DUT in slot-00, held at its reservation (the test holds the
     * store's write lock: the slot stays busy until the test lets go) */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(fx->L.db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    afx_client c;
    assert_int_equal(afx_connect(&c, fx->sock), 0);
    afx_send(&c, "{\"id\":\"p\",\"op\":\"provision\",\"serial\":\"VIA-3\",\"slot\":\"slot-00\","
                 "\"additional_profile\":true}\n");
    json_t *r = afx_reply(&c, "p");
    assert_non_null(r);
    assert_string_equal(afx_js(r, "status"), "accepted");
    json_decref(r);
    bpp_counts(before);
    rc = ctl(out, sizeof out, "--socket", fx->sock, "recover", "--slot", "slot-00", (char *)NULL);
    if (rc != STATION_EXIT_REFUSED || !strstr(out, "busy") || !strstr(out, "slot slot-00 is busy"))
        fail_msg("recover in a busy slot: exit %d: %s", rc, out);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_non_null(r = afx_reply(&c, "p")); /* the provision goes on once the store is free */
    assert_string_equal(afx_js(r, "status"), "completed");
    if (strcmp(afx_js(r, "result"), "PASS"))
        fail_msg("VIA-3: %s: %s", afx_js(r, "result"), afx_js(r, "message"));
    json_decref(r);
    close(c.fd);

    /* the example client: the slot free again, nothing left to resolve */
    const char *src = getenv("IFPP_SOURCE_DIR");
    if (src) {
        char py[4096];
        snprintf(py, sizeof py, "%s/docs/mes_client.py", src);
        rc = tu_run((char *const[]){"python3", py, "--socket", fx->sock, "recover", "slot-00", NULL}, out, sizeof out);
        if (rc != 0 || !strstr(out, "\"resolved\": 0") || !strstr(out, "\"result\": \"PASS\""))
            fail_msg("mes_client.py recover: exit %d: %s", rc, out);
    }
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
    if (!daemon_recover_out[0])
        return;
    /* ifppctl's own recover of the same case prints what the daemon's did (slot and txid aside) */
    char tx[40], b1[8192], b2[8192];
    reserve_one(1, tx);
    rc = ctl(out, sizeof out, "--store", fx->L.db, "--pki", fx->L.pki, "recover", "--slot", slot, (char *)NULL);
    const char *fl[] = {slot, tx}, *fd[] = {"slot-00", daemon_recover_tx}, *to[] = {"SLOT", "TXID"};
    subst(out, b1, sizeof b1, 2, fl, to);
    subst(daemon_recover_out, b2, sizeof b2, 2, fd, to);
    if (rc != 0 || strcmp(b1, b2))
        fail_msg("recover: ifppctl's own run differs from the daemon's:\n%s\nthrough the daemon:\n%s", b1, b2);
}

/* ---- ifppctl alone with the DM FPA key in a PKCS#11 token (issue 13 item 2), SoftHSM2 as the token ---- */

#define CTL_P11_URI "pkcs11:token=" AFX_TOKEN ";object=dm-fpa;type=private"

static afx *tk; /* a line without a daemon, the DM FPA key imported into a fresh token */

static int tk_setup(void **state)
{
    char key[4096];
    tk = afx_make("ctl-p11", 1, 2);
    snprintf(key, sizeof key, "%s/dm-fpa.key.pem", tk->L.pki);
    *state = afx_token(tk->dir, key, "dm-fpa") ? tk : NULL;
    return 0;
}

static int tk_teardown(void **state)
{
    (void)state;
    afx_free(tk, "CTL_KEEP");
    tk = NULL;
    unsetenv("SOFTHSM2_CONF");
    return 0;
}

/* The store's BPP counts of the token fixture. */
static void tk_counts(size_t counts[BPP_STATE__COUNT])
{
    afx *keep = fx;
    fx = tk;
    bpp_counts(counts);
    fx = keep;
}

/*
 * ifppctl provision and recover sign FPA authorisations in the token named by the URI (RFC 7512), as the daemon
 * does; a wrong PIN or a token key that is not the certificate's is refused by name (the PIN never shown) and the
 * store and the card stay as they were; the PIN may come from a file (pin-source) instead of the command line.
 */
static void test_ctl_token(void **state)
{
    if (!*state)
        skip();
    char out[8192], slot[4096], pinfile[4096], uri[8192], other[4096];
    size_t before[BPP_STATE__COUNT], after[BPP_STATE__COUNT], n0, n1;
    snprintf(slot, sizeof slot, "virtual:%s", tk->L.card[0]);
    snprintf(other, sizeof other, "%s/station.cert.pem", tk->L.pki);

    /* refusals first, nothing touched: a wrong PIN, a token key checked against another certificate */
    tk_counts(before);
    uint8_t *card0 = tu_read_file(tk->L.card[0], &n0);
    assert_non_null(card0);
    int rc = ctl(out, sizeof out, "--store", tk->L.db, "--pki", tk->L.pki, "--dm-fpa-key", CTL_P11_URI "?pin-value=9999",
                 "provision", "--slot", slot, "--serial", "TOK-0", (char *)NULL);
    if (rc != STATION_EXIT_FAILURE || !strstr(out, CTL_P11_URI ": ") || strstr(out, "9999"))
        fail_msg("a wrong PIN: exit %d: %s", rc, out);
    rc = ctl(out, sizeof out, "--store", tk->L.db, "--pki", tk->L.pki, "--dm-fpa-cert", other, "--dm-fpa-key",
             CTL_P11_URI "?pin-value=" AFX_PIN, "provision", "--slot", slot, "--serial", "TOK-0", (char *)NULL);
    if (rc != STATION_EXIT_FAILURE || !strstr(out, "not the certificate's") || strstr(out, AFX_PIN))
        fail_msg("the token's key against another certificate: exit %d: %s", rc, out);
    tk_counts(after);
    assert_memory_equal(before, after, sizeof before);
    uint8_t *card1 = tu_read_file(tk->L.card[0], &n1);
    assert_true(card1 && n0 == n1 && !memcmp(card0, card1, n0));
    free(card0);
    free(card1);

    /* provision: the FPA authorisation signed in the token, the profile installed */
    rc = ctl(out, sizeof out, "--store", tk->L.db, "--pki", tk->L.pki, "--dm-fpa-key", CTL_P11_URI "?pin-value=" AFX_PIN,
             "provision", "--slot", slot, "--serial", "TOK-1", (char *)NULL);
    if (rc != 0 || !strstr(out, "TOK-1 PASS: ") || strstr(out, AFX_PIN))
        fail_msg("provision with the key in the token: exit %d: %s", rc, out);
    tk_counts(after);
    assert_int_equal(after[BPP_INSTALLED], before[BPP_INSTALLED] + 1);

    /* recover, the PIN from a file and the module named (SoftHSM2's own, where Debian puts it) */
    snprintf(pinfile, sizeof pinfile, "%s/pin", tk->dir);
    assert_int_equal(tu_write_file(pinfile, (const uint8_t *)AFX_PIN, strlen(AFX_PIN)), 0);
    chmod(pinfile, 0600);
    snprintf(uri, sizeof uri, CTL_P11_URI "?pin-source=file:%s", pinfile);
    const char *module = "/usr/lib/softhsm/libsofthsm2.so";
    struct stat sb;
    if (stat(module, &sb) != 0)
        module = NULL;
    char *argv_mod = module ? "--pkcs11-module" : "--store";
    rc = ctl(out, sizeof out, "--store", tk->L.db, "--pki", tk->L.pki, "--dm-fpa-key", uri, argv_mod,
             module ? module : tk->L.db, "recover", "--slot", slot, (char *)NULL);
    if (rc != 0 || !strstr(out, "nothing to resolve"))
        fail_msg("recover with the key in the token (pin-source, module %s): exit %d: %s", module ? module : "default",
                 rc, out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_refused),       cmocka_unit_test(test_second_daemon_refused),
        cmocka_unit_test(test_through_socket),       cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_hostile_daemon),       cmocka_unit_test(test_report_through_daemon),
        cmocka_unit_test(test_report_recover_bad_requests), cmocka_unit_test(test_recover_through_daemon),
        cmocka_unit_test(test_after_daemon),
    };
    const struct CMUnitTest token[] = {
        cmocka_unit_test(test_ctl_token),
    };
    int rc = cmocka_run_group_tests_name("ifppctl beside ifpp-agent", tests, fx_setup, fx_teardown);
    return rc | cmocka_run_group_tests_name("ifppctl with the DM FPA key in a PKCS#11 token", token, tk_setup,
                                            tk_teardown);
}
