/*
 * test_agentd.c -- ifpp-agent as the line runs it (issue 13): the daemon (ifpp-agent-rehearse: the product's
 * agentd_main with the virtual backend) started by PID with 32 virtual slots and one broken slot, driven
 * through its MES socket by concurrent clients, every result checked against the store and the eUICCs; then
 * hostile clients (malformed JSON, oversized lines, unknown requests, a wrong peer, a client that never reads,
 * one that sends half a line and stalls) while the slots keep working; every event's fields; SIGHUP (a change logged, a bad file refused with file:line) and SIGTERM (a
 * running session ends, then the process). Also config_load's errors naming file and line, and the request
 * parser. No timed assertion: readiness is systemd's READY=1 on our NOTIFY_SOCKET, the rest is replies.
 *
 * Scale (2 cores, a couple of minutes): AGENTD_CARDS eUICCs (two per slot, placed in the slot's card file by
 * rename as an operator places a DUT) with AGENTD_OTKS One-time Keys each, each card provisioned
 * AGENTD_OTKS times (additional_profile, use case A.3): 64 x 16 = 1024 provisionings.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agentd_fixture.h"
#include "cert.h"
#include "config.h"
#include "euicc_sim.h"
#include "hex.h"
#include "mes.h"
#include "p11key.h"
#include "store.h"
#include "testline.h"
#include "testutil.h"

#define AGENTD_SLOTS 32
#define AGENTD_CLIENTS 8

static size_t agentd_cards = 64, agentd_otks = 16;

static afx *fx;

/* Helpers shared by the tests below, on the fixture (agentd_fixture.h). */
#define client afx_client

static int client_connect(client *c)
{
    return afx_connect(c, fx->sock);
}

static bool log_has(const char *needle)
{
    return afx_file_has(fx->log, needle);
}

static int fx_setup(void **state)
{
    const char *e;
    if ((e = getenv("AGENTD_CARDS")))
        agentd_cards = strtoul(e, NULL, 10) % 65;
    if (agentd_cards == 0)
        agentd_cards = 64;
    if ((e = getenv("AGENTD_OTKS")))
        agentd_otks = strtoul(e, NULL, 10) % 17; /* a software eUICC holds 16 profiles */
    if (agentd_otks == 0)
        agentd_otks = 16;
    fx = afx_make("agentd", agentd_cards, agentd_otks);
    afx_conf_trust(fx);
    char *sp = tu_path(fx->conf, "40-slots.conf");
    FILE *f = fopen(sp, "w");
    free(sp);
    assert_non_null(f);
    fprintf(f, "slots = (\n");
    for (size_t k = 0; k < AGENTD_SLOTS; k++) {
        char *p = afx_slot_card(fx, k);
        fprintf(f, "  { name = \"slot-%02zu\"; spec = \"virtual:%s\"; },\n", k, p);
        free(p);
    }
    fprintf(f, "  { name = \"broken\"; spec = \"virtual:%s/no-such-card\"; }\n);\n", fx->dir);
    fclose(f);
    afx_start(fx);
    *state = fx;
    return 0;
}

/*
 * The DM FPA key in a SoftHSM2 token, named by a PKCS#11 URI, reached through the pkcs11 engine and p11-kit's
 * proxy (SoftHSM2 registers itself with p11-kit): the demo's key imported into a fresh token in the fixture.
 */
#define P11_URI "pkcs11:token=" AFX_TOKEN ";object=dm-fpa;type=private"

static int p11_setup(void **state)
{
    char key[4096];
    fx = afx_make("agentd-p11", 1, 2);
    snprintf(key, sizeof key, "%s/dm-fpa.key.pem", fx->L.pki);
    if (!afx_token(fx->dir, key, "dm-fpa")) {
        afx_free(fx, NULL);
        fx = NULL;
        *state = NULL;
        return 0;
    }
    afx_conf(fx, "30-trust.conf", "trust = { pki_dir = \"%s\"; dm_fpa_cert = \"%s/dm-fpa.cert.pem\";\n"
                                  "  dm_fpa_key = \"" P11_URI "?pin-value=" AFX_PIN "\"; };\n", fx->L.pki, fx->L.pki);
    char *sp = afx_slot_card(fx, 0);
    afx_conf(fx, "40-slots.conf", "slots = ( { name = \"slot-00\"; spec = \"virtual:%s\"; } );\n", sp);
    assert_int_equal(rename(fx->L.card[0], sp), 0);
    free(sp);
    afx_start(fx);
    *state = fx;
    return 0;
}

static void test_p11_provision(void **state)
{
    if (!*state)
        skip();
    client c;
    assert_int_equal(client_connect(&c), 0);
    afx_send(&c, "{\"id\":\"t\",\"op\":\"provision\",\"serial\":\"TOKEN-1\",\"slot\":\"slot-00\"}\n");
    json_t *r = afx_reply(&c, "t");
    assert_non_null(r);
    assert_string_equal(afx_js(r, "status"), "accepted");
    json_decref(r);
    assert_non_null(r = afx_reply(&c, "t"));
    if (strcmp(afx_js(r, "result"), "PASS"))
        fail_msg("%s: %s", afx_js(r, "result"), afx_js(r, "message"));
    json_decref(r);
    close(c.fd);
    assert_false(log_has(AFX_PIN)); /* the PIN is never logged */
}

static void test_p11_wrong_key_and_pin(void **state)
{
    if (!*state)
        skip();
    char why[512] = "", path[4096];
    cert *c = NULL;
    crypto_key *pub = NULL, *k = NULL;
    /* a wrong PIN: refused, the message names the URI's path and not the PIN */
    snprintf(path, sizeof path, "%s/dm-fpa.cert.pem", fx->L.pki);
    assert_int_equal(cert_load_pem(path, &c), IFPP_OK);
    assert_int_equal(cert_public_key(c, &pub), IFPP_OK);
    char *errf = tu_path(fx->dir, "stderr");
    int saved = dup(2), fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2); /* what the engine itself might print goes here, to be read */
    ifpp_err e = p11key_load(P11_URI "?pin-value=9999", NULL, pub, &k, why, sizeof why);
    dup2(saved, 2);
    close(saved);
    close(fd);
    assert_int_not_equal(e, IFPP_OK);
    assert_non_null(strstr(why, P11_URI ": "));
    assert_null(strstr(why, "9999"));
    size_t n;
    uint8_t *said = tu_read_file(errf, &n);
    assert_true(!said || !memmem(said, n, "9999", 4));
    free(said);
    free(errf);
    crypto_key_free(pub);
    cert_free(c);
    /* the token's key checked against another certificate: named as not the certificate's */
    snprintf(path, sizeof path, "%s/station.cert.pem", fx->L.pki);
    assert_int_equal(cert_load_pem(path, &c), IFPP_OK);
    assert_int_equal(cert_public_key(c, &pub), IFPP_OK);
    assert_int_equal(p11key_load(P11_URI "?pin-value=" AFX_PIN, NULL, pub, &k, why, sizeof why), IFPP_E_BAD_KEY);
    assert_non_null(strstr(why, "not the certificate's"));
    crypto_key_free(pub);
    cert_free(c);
}

static int fx_teardown(void **state)
{
    (void)state;
    afx_free(fx, "AGENTD_KEEP");
    fx = NULL;
    return 0;
}

static int p11_teardown(void **state)
{
    if (!*state)
        return 0;
    int rc = fx_teardown(state);
    unsetenv("SOFTHSM2_CONF");
    return rc;
}


/* ---- hostile clients; the slots keep working ---- */

static void test_bad_requests(void **state)
{
    (void)state;
    client c;
    json_t *r;

    /* mes.max_clients = 32: the 33rd connection is told so and closed (the first test: nobody else is connected) */
    static client many[33];
    for (size_t i = 0; i < 33; i++)
        assert_int_equal(client_connect(&many[i]), 0);
    assert_non_null(r = afx_read(&many[32]));
    assert_string_equal(afx_js(r, "error"), "too-many-clients");
    json_decref(r);
    assert_null(afx_read(&many[32]));
    afx_send(&many[31], "{\"id\":\"m\",\"op\":\"ping\"}\n"); /* the 32nd is served */
    assert_non_null(r = afx_reply(&many[31], "m"));
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    for (size_t i = 0; i < 33; i++)
        close(many[i].fd);

    assert_int_equal(client_connect(&c), 0);
    /* a slow client: half a request line, then nothing for a while; nobody waits for the rest of it */
    client slow;
    assert_int_equal(client_connect(&slow), 0);
    afx_send(&slow, "{\"id\":\"slow\",\"op\":");

    afx_send(&c, "{\"id\":\"a\",\"op\":\"provision\",\"serial\":\n");
    assert_non_null(r = afx_reply(&c, "null"));
    assert_false(json_is_true(json_object_get(r, "ok")));
    assert_string_equal(afx_js(r, "error"), "bad-request");
    assert_non_null(strstr(afx_js(r, "message"), "malformed JSON at column"));
    json_decref(r);

    afx_send(&c, "{\"id\":\"b\",\"op\":\"format-disk\"}\n");
    assert_non_null(r = afx_reply(&c, "b"));
    assert_non_null(strstr(afx_js(r, "message"), "unknown op 'format-disk'"));
    json_decref(r);

    afx_send(&c, "{\"id\":\"c\",\"op\":\"provision\",\"serial\":\"X1\",\"slot\":\"slot-00\",\"force\":true}\n");
    assert_non_null(r = afx_reply(&c, "c"));
    assert_non_null(strstr(afx_js(r, "message"), "unknown field 'force' for op provision"));
    json_decref(r);

    afx_send(&c, "{\"id\":\"d\",\"op\":\"provision\",\"serial\":\"bad serial!\"}\n");
    assert_non_null(r = afx_reply(&c, "d"));
    assert_non_null(strstr(afx_js(r, "message"), "not a valid DUT serial"));
    json_decref(r);

    afx_send(&c, "{\"id\":\"e\",\"id\":\"f\",\"op\":\"ping\"}\n"); /* duplicate keys */
    assert_non_null(r = afx_reply(&c, "null"));
    assert_string_equal(afx_js(r, "error"), "bad-request");
    json_decref(r);

    afx_send(&c, "[1,2,3]\n");
    assert_non_null(r = afx_reply(&c, "null"));
    assert_non_null(strstr(afx_js(r, "message"), "one JSON object per line"));
    json_decref(r);

    afx_send(&c, "{\"id\":\"g\",\"op\":\"query\",\"what\":\"slot\",\"slot\":\"nope\"}\n");
    assert_non_null(r = afx_reply(&c, "g"));
    assert_string_equal(afx_js(r, "error"), "not-found");
    json_decref(r);

    /* still served after all of that */
    afx_send(&c, "{\"id\":\"h\",\"op\":\"ping\"}\n");
    assert_non_null(r = afx_reply(&c, "h"));
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    /* the slow client's line, completed at last, is answered: its half was kept, and held nobody up meanwhile */
    afx_send(&slow, "\"ping\"}\n");
    assert_non_null(r = afx_reply(&slow, "slow"));
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    close(slow.fd);

    /* an oversized line: "line-too-long", then the connection is cut */
    char big[2100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    afx_send(&c, "{\"id\":\"i\",\"op\":\"ping\",\"pad\":\"%s\"}\n", big);
    assert_non_null(r = afx_reply(&c, "null"));
    assert_string_equal(afx_js(r, "error"), "line-too-long");
    json_decref(r);
    assert_null(afx_read(&c)); /* EOF: cut */
    close(c.fd);

    /* a slot whose card is missing faults alone: STATION-FAILURE and FaultOccurred, the others stay idle */
    client ev;
    assert_int_equal(client_connect(&ev), 0);
    afx_send(&ev, "{\"id\":\"s\",\"op\":\"subscribe\"}\n");
    json_decref(afx_reply(&ev, "s"));
    assert_int_equal(client_connect(&c), 0);
    afx_send(&c, "{\"id\":\"j\",\"op\":\"provision\",\"serial\":\"BROKEN-1\",\"slot\":\"broken\"}\n");
    assert_non_null(r = afx_reply(&c, "j"));
    assert_string_equal(afx_js(r, "status"), "accepted");
    json_decref(r);
    assert_non_null(r = afx_reply(&c, "j"));
    assert_string_equal(afx_js(r, "status"), "completed");
    assert_string_equal(afx_js(r, "result"), "STATION-FAILURE");
    assert_non_null(strstr(afx_js(r, "message"), "no-such-card"));
    json_decref(r);
    bool fault = false;
    while (!fault && (r = afx_read(&ev))) {
        fault = !strcmp(afx_js(r, "event"), "FaultOccurred") && !strcmp(afx_js(r, "slot"), "broken");
        json_decref(r);
    }
    assert_true(fault);
    close(ev.fd);

    /* a finished request cannot be cancelled: named as not running */
    afx_send(&c, "{\"id\":\"x\",\"op\":\"cancel\",\"request\":\"j\"}\n");
    assert_non_null(r = afx_reply(&c, "x"));
    assert_string_equal(afx_js(r, "error"), "not-found");
    assert_non_null(strstr(afx_js(r, "message"), "request j: no slot runs it"));
    json_decref(r);

    /* provisioning a busy or unknown slot is refused by name */
    afx_send(&c, "{\"id\":\"k\",\"op\":\"provision\",\"serial\":\"X2\",\"slot\":\"slot-99\"}\n");
    assert_non_null(r = afx_reply(&c, "k"));
    assert_non_null(strstr(afx_js(r, "message"), "no slot named 'slot-99'"));
    json_decref(r);
    close(c.fd);
}

static void test_wrong_peer(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(fx->sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);
    if (geteuid() != 0)
        skip(); /* another user is needed to be the wrong peer */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        client c;
        int r = client_connect(&c);
        _exit(r == 0 ? 1 : errno == EACCES ? 0 : 2);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0); /* 0: refused with EACCES by the socket's mode */
}

/* ---- 32 slots, concurrent clients, every result checked ---- */

typedef struct {
    size_t first_slot, n_slots;
    size_t done, pass;
    char (*eid_of)[40];  /* per provisioning index: the EID the daemon reported */
    char failure[512];
} worker;

typedef struct {
    size_t card_pos;   /* which of the slot's cards is in it */
    size_t round;      /* provisionings on that card so far */
    size_t placed;     /* card index placed */
    bool active;
} slot_run;

/* The slot's pos-th card, or SIZE_MAX. */
static size_t card_of(size_t slot, size_t pos)
{
    size_t i = slot + pos * AGENTD_SLOTS;
    return i < agentd_cards ? i : SIZE_MAX;
}

/* Places the card in the slot (the operator puts the DUT in) or takes it out. */
static void place(size_t slot, size_t card, bool in)
{
    char *sp = afx_slot_card(fx, slot);
    if (in)
        assert_int_equal(rename(fx->L.card[card], sp), 0);
    else
        assert_int_equal(rename(sp, fx->L.card[card]), 0);
    free(sp);
}

static void submit(client *c, slot_run *sr, size_t slot)
{
    size_t idx = sr->placed * agentd_otks + sr->round;
    afx_send(c, "{\"id\":\"p%zu\",\"op\":\"provision\",\"serial\":\"DUT-%05zu\",\"slot\":\"slot-%02zu\","
                   "\"additional_profile\":true}\n", idx, idx, slot);
}

static void *worker_run(void *arg)
{
    worker *w = arg;
    client c;
    slot_run sr[AGENTD_SLOTS] = {0};
    size_t active = 0;
    if (client_connect(&c) != 0) {
        snprintf(w->failure, sizeof w->failure, "connect: %s", strerror(errno));
        return NULL;
    }
    for (size_t k = w->first_slot; k < w->first_slot + w->n_slots; k++) {
        if (card_of(k, 0) == SIZE_MAX)
            continue;
        sr[k].placed = card_of(k, 0);
        sr[k].active = true;
        place(k, sr[k].placed, true);
        submit(&c, &sr[k], k);
        active++;
    }
    while (active > 0) {
        json_t *r = afx_read(&c);
        if (!r) {
            snprintf(w->failure, sizeof w->failure, "the daemon closed the connection");
            break;
        }
        const char *status = afx_js(r, "status");
        if (!json_is_true(json_object_get(r, "ok"))) {
            snprintf(w->failure, sizeof w->failure, "refused: %s", afx_js(r, "message"));
            json_decref(r);
            break;
        }
        if (strcmp(status, "completed")) {
            json_decref(r);
            continue;
        }
        size_t idx = strtoul(afx_js(r, "id") + 1, NULL, 10), k = strtoul(afx_js(r, "slot") + 5, NULL, 10);
        w->done++;
        if (!strcmp(afx_js(r, "result"), "PASS"))
            w->pass++;
        else if (!w->failure[0])
            snprintf(w->failure, sizeof w->failure, "%s: %s: %s", afx_js(r, "serial"), afx_js(r, "result"),
                     afx_js(r, "message"));
        snprintf(w->eid_of[idx], sizeof w->eid_of[idx], "%s", afx_js(r, "eid"));
        json_decref(r);
        if (++sr[k].round == agentd_otks) { /* this DUT is done: the next one goes in */
            place(k, sr[k].placed, false);
            sr[k].round = 0;
            size_t next = card_of(k, ++sr[k].card_pos);
            if (next == SIZE_MAX) {
                active--;
                continue;
            }
            sr[k].placed = next;
            place(k, next, true);
        }
        submit(&c, &sr[k], k);
    }
    close(c.fd);
    return NULL;
}

typedef struct {
    size_t installed;
    size_t *seen; /* per provisioning index */
} result_walk;

static ifpp_err count_result(void *arg, const store_result_record *r)
{
    result_walk *w = arg;
    size_t idx;
    if (r->state == BPP_INSTALLED && r->dut_serial && sscanf(r->dut_serial, "DUT-%zu", &idx) == 1 &&
        idx < agentd_cards * agentd_otks) {
        w->installed++;
        w->seen[idx]++;
    }
    return IFPP_OK;
}

static void test_thousand_through_mes(void **state)
{
    (void)state;
    size_t total = agentd_cards * agentd_otks;
    worker w[AGENTD_CLIENTS];
    pthread_t th[AGENTD_CLIENTS];
    static char eid_of[64 * 64][40]; /* static: an early failure leaks nothing */
    assert_true(total <= 64 * 64);

    /* a client that subscribes to every event and then never reads: it must be cut, nobody must wait for it */
    client lazy;
    assert_int_equal(client_connect(&lazy), 0);
    afx_send(&lazy, "{\"id\":\"lazy\",\"op\":\"subscribe\"}\n");

    for (size_t i = 0; i < AGENTD_CLIENTS; i++) {
        w[i] = (worker){.first_slot = i * (AGENTD_SLOTS / AGENTD_CLIENTS), .n_slots = AGENTD_SLOTS / AGENTD_CLIENTS,
                        .eid_of = eid_of};
        assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    size_t done = 0, pass = 0;
    for (size_t i = 0; i < AGENTD_CLIENTS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failure[0])
            print_message("client %zu: %s\n", i, w[i].failure);
        done += w[i].done;
        pass += w[i].pass;
    }
    print_message("%zu provisionings through the MES socket on %d slots by %d clients: %zu PASS\n", done,
                  AGENTD_SLOTS, AGENTD_CLIENTS, pass);
    assert_int_equal(done, total);
    assert_int_equal(pass, total);

    /* the never-reading client was cut: what it was owed ends in EOF (a daemon that kept it would leave this
     * read waiting, and ctest's timeout would fail the test), bounded by max_queue and the socket buffers;
     * and the daemon said why */
    size_t owed = 0;
    for (;;) {
        char b[4096];
        ssize_t n = recv(lazy.fd, b, sizeof b, 0);
        if (n <= 0)
            break;
        owed += (size_t)n;
    }
    close(lazy.fd);
    print_message("the client that never read was cut after %zu bytes it had not read\n", owed);
    assert_true(owed < 1024 * 1024);
    assert_true(log_has("cut: it does not read"));
    client q;
    assert_int_equal(client_connect(&q), 0);
    afx_send(&q, "{\"id\":\"q\",\"op\":\"query\",\"what\":\"station\"}\n");
    json_t *r = afx_reply(&q, "q");
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "slots_busy")), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "slots_total")), AGENTD_SLOTS + 1);
    json_decref(r);

    /* the documented example client (docs/mes_client.py) reads the same station */
    const char *src = getenv("IFPP_SOURCE_DIR");
    if (src) {
        char py[4096], out[65536];
        snprintf(py, sizeof py, "%s/docs/mes_client.py", src);
        char *const argv[] = {"python3", py, "--socket", fx->sock, "query", "dut", "DUT-00000", NULL};
        assert_int_equal(tu_run(argv, out, sizeof out), 0);
        assert_non_null(strstr(out, "\"result\": \"PASS\""));
    }

    /* the stock: what is left per profile type equals the store's available count */
    afx_send(&q, "{\"id\":\"st\",\"op\":\"stock\"}\n");
    assert_non_null(r = afx_reply(&q, "st"));
    json_t *stock = json_object_get(r, "stock"), *v;
    assert_true(json_is_object(stock));
    const char *pt;
    size_t stock_sum = 0, avail, types = 0;
    json_object_foreach(stock, pt, v) {
        stock_sum += (size_t)json_integer_value(v);
        types++;
    }
    assert_true(types > 0); /* an exhausted profile type is listed, with 0 */
    json_decref(r);
    close(q.fd);
    /* it went under timeouts.stock_low (5) during the run: said once, in the log and to subscribers (the stock
     * is checked in the round that answered the last completion, before the round that answered the queries) */
    assert_true(log_has("stock low: "));

    /* every result against the store: each DUT serial installed exactly once, each eUICC K profiles */
    store *s = NULL;
    char why[256];
    assert_int_equal(store_open_readonly(fx->L.db, &s, why, sizeof why), IFPP_OK);
    result_walk rw = {0, calloc(total, sizeof(size_t))};
    assert_non_null(rw.seen);
    assert_int_equal(store_each_result(s, NULL, count_result, &rw), IFPP_OK);
    assert_int_equal(rw.installed, total);
    for (size_t i = 0; i < total; i++)
        assert_int_equal(rw.seen[i], 1);
    for (size_t i = 0; i < agentd_cards; i++) {
        size_t counts[BPP_STATE__COUNT];
        uint8_t eid[16];
        size_t n;
        assert_int_equal(hex_decode(fx->L.eid[i], eid, sizeof eid, &n), IFPP_OK);
        assert_int_equal(store_eid_counts(s, eid, counts), IFPP_OK);
        assert_int_equal(counts[BPP_INSTALLED], agentd_otks);
        assert_int_equal(counts[BPP_RESERVED] + counts[BPP_IN_DOUBT] + counts[BPP_FAILED], 0);
        /* the daemon's reply named this card's EID for each of its provisionings */
        for (size_t k = 0; k < agentd_otks; k++)
            assert_int_equal(strcasecmp(eid_of[i * agentd_otks + k], fx->L.eid[i]), 0);
        euicc_sim *card;
        assert_int_equal(euicc_sim_open(fx->L.card[i], &card), IFPP_OK);
        assert_int_equal(euicc_sim_profile_count(card), agentd_otks);
        euicc_sim_close(card);
    }
    assert_int_equal(store_count_bpps(s, BPP_AVAILABLE, &avail), IFPP_OK);
    assert_int_equal(stock_sum, avail);
    size_t in_doubt;
    assert_int_equal(store_count_bpps(s, BPP_IN_DOUBT, &in_doubt), IFPP_OK);
    assert_int_equal(in_doubt, 0);
    store_close(s);
    free(rw.seen);
}

/* ---- SIGHUP and SIGTERM ---- */

static void test_reload(void **state)
{
    (void)state;
    client ev;
    assert_int_equal(client_connect(&ev), 0);
    afx_send(&ev, "{\"id\":\"s\",\"op\":\"subscribe\"}\n");
    json_decref(afx_reply(&ev, "s"));
    afx_conf(fx, "60-timeouts.conf", "timeouts = { shutdown_ms = 600000; stock_low = 6; };\n");
    assert_int_equal(kill(fx->pid, SIGHUP), 0);
    json_t *r = afx_event(&ev, "StationStateChanged", "reloaded");
    assert_non_null(r);
    json_decref(r);
    assert_true(log_has("reload: timeouts.stock_low: 5 -> 6"));

    /* a bad file: refused whole, naming file and line; the daemon runs on with what it had */
    afx_conf(fx, "70-bad.conf", "reports = {\n  dir = 12;\n};\n");
    assert_int_equal(kill(fx->pid, SIGHUP), 0);
    assert_non_null(r = afx_event(&ev, "StationStateChanged", "reload-refused"));
    assert_non_null(strstr(afx_js(r, "message"), "70-bad.conf:2: reports.dir must be a string"));
    json_decref(r);
    char *bad = tu_path(fx->conf, "70-bad.conf");
    unlink(bad);
    free(bad);
    close(ev.fd);
}

static void test_sigterm_lets_session_end(void **state)
{
    (void)state;
    client c;
    size_t card = card_of(0, 0);
    assert_int_equal(client_connect(&c), 0);
    place(0, card, true);
    afx_send(&c, "{\"id\":\"last\",\"op\":\"provision\",\"serial\":\"DUT-LAST\",\"slot\":\"slot-00\"}\n");
    json_t *r = afx_reply(&c, "last");
    assert_non_null(r);
    assert_string_equal(afx_js(r, "status"), "accepted");
    json_decref(r);
    assert_int_equal(kill(fx->pid, SIGTERM), 0);
    /* the session ends on its own (this eUICC has all its profiles: the station refuses a further one) */
    assert_non_null(r = afx_reply(&c, "last"));
    assert_string_equal(afx_js(r, "status"), "completed");
    assert_true(strlen(afx_js(r, "result")) > 0);
    json_decref(r);
    int st;
    assert_int_equal(waitpid(fx->pid, &st, 0), fx->pid);
    fx->pid = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    struct stat sb;
    assert_int_equal(lstat(fx->sock, &sb), -1); /* the socket file is gone */
    place(0, card, false);
    close(c.fd);
}

/* ---- the events subscribers get (docs/mes-protocol.md's table), one daemon with one good and one broken slot ---- */

static int ev_setup(void **state)
{
    fx = afx_make("agentd-ev", 1, 2);
    afx_conf_trust(fx);
    char *sp = afx_slot_card(fx, 0);
    afx_conf(fx, "40-slots.conf", "slots = ( { name = \"slot-00\"; spec = \"virtual:%s\"; },\n"
                                  "  { name = \"broken\"; spec = \"virtual:%s/no-such-card\"; } );\n", sp, fx->dir);
    assert_int_equal(rename(fx->L.card[0], sp), 0);
    free(sp);
    afx_start(fx);
    *state = fx;
    return 0;
}

/* The next event (replies skipped); the test fails at EOF. Events never carry an id. */
static json_t *next_event(client *c)
{
    json_t *r;
    while ((r = afx_read(c))) {
        if (json_object_get(r, "event")) {
            assert_null(json_object_get(r, "id"));
            return r;
        }
        json_decref(r);
    }
    fail_msg("the daemon closed the subscriber's connection");
    return NULL;
}

/* A string field that must be there (possibly empty). */
static const char *field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("event %s has no string field '%s'", afx_js(o, "event"), key);
    return json_string_value(v);
}

/*
 * WorkStarted, WorkProgress, WorkCompleted (serial, result, the failed step, the profile type), StationStateChanged
 * for a slot and for the station, FaultOccurred and StockLow, each with the fields the protocol promises.
 */
static void test_events(void **state)
{
    (void)state;
    client ev, c;
    json_t *r;
    assert_int_equal(client_connect(&ev), 0);
    afx_send(&ev, "{\"id\":\"s\",\"op\":\"subscribe\"}\n");
    json_decref(afx_reply(&ev, "s"));
    assert_int_equal(client_connect(&c), 0);
    afx_send(&c, "{\"id\":\"st\",\"op\":\"stock\"}\n");
    assert_non_null(r = afx_reply(&c, "st"));
    const char *pt0;
    json_t *n;
    char type[72] = "";
    json_object_foreach(json_object_get(r, "stock"), pt0, n) {
        snprintf(type, sizeof type, "%s", pt0);
    }
    json_decref(r);
    assert_true(type[0]);

    /* a PASS: busy, started, progress, idle, completed, then the stock under stock_low (5): 1 left */
    afx_send(&c, "{\"id\":\"e1\",\"op\":\"provision\",\"serial\":\"EV-1\",\"slot\":\"slot-00\",\"profile_type\":\"%s\"}\n",
             type);
    bool busy = false, started = false, progress = false, idle = false, completed = false, low = false;
    while (!low) {
        r = next_event(&ev);
        const char *e = afx_js(r, "event");
        if (!strcmp(e, "StationStateChanged") && !strcmp(afx_js(r, "slot"), "slot-00")) {
            busy |= !strcmp(field(r, "state"), "busy");
            idle |= busy && !strcmp(field(r, "state"), "idle");
        } else if (!strcmp(e, "WorkStarted")) {
            assert_true(busy);
            assert_string_equal(field(r, "slot"), "slot-00");
            assert_string_equal(field(r, "serial"), "EV-1");
            assert_string_equal(field(r, "request"), "e1");
            assert_string_equal(field(r, "profile_type"), type);
            started = true;
        } else if (!strcmp(e, "WorkProgress")) {
            assert_true(started);
            assert_string_equal(field(r, "serial"), "EV-1");
            assert_true(field(r, "step")[0] && json_is_string(json_object_get(r, "eid")));
            progress = true;
        } else if (!strcmp(e, "WorkCompleted")) {
            assert_true(progress);
            assert_string_equal(field(r, "slot"), "slot-00");
            assert_string_equal(field(r, "serial"), "EV-1");
            assert_string_equal(field(r, "request"), "e1");
            assert_int_equal(strcasecmp(field(r, "eid"), fx->L.eid[0]), 0);
            assert_string_equal(field(r, "result"), "PASS");
            assert_string_equal(field(r, "failed_step"), "");
            assert_string_equal(field(r, "profile_type"), type);
            assert_true(field(r, "message")[0]);
            completed = true;
        } else if (!strcmp(e, "StockLow")) {
            assert_true(completed && idle);
            assert_string_equal(field(r, "profile_type"), type);
            assert_int_equal(json_integer_value(json_object_get(r, "available")), 1);
            assert_int_equal(json_integer_value(json_object_get(r, "threshold")), 5);
            low = true;
        }
        json_decref(r);
    }

    /* a refusal (this DUT has its profile, no further one was asked for): the failed step and no profile type */
    afx_send(&c, "{\"id\":\"e2\",\"op\":\"provision\",\"serial\":\"EV-2\",\"slot\":\"slot-00\"}\n");
    json_t *reply;
    assert_non_null(reply = afx_reply(&c, "e2"));
    json_decref(reply);
    assert_non_null(reply = afx_reply(&c, "e2"));
    assert_string_equal(afx_js(reply, "status"), "completed");
    assert_string_equal(afx_js(reply, "result"), "REFUSED");
    while (strcmp(afx_js(r = next_event(&ev), "event"), "WorkCompleted"))
        json_decref(r);
    assert_string_equal(field(r, "serial"), "EV-2");
    assert_string_equal(field(r, "result"), "REFUSED");
    assert_true(field(r, "failed_step")[0]);
    assert_string_equal(field(r, "failed_step"), afx_js(reply, "failed_step"));
    assert_string_equal(field(r, "profile_type"), "");
    json_decref(r);
    json_decref(reply);

    /* a slot whose reader is gone: FaultOccurred naming the slot and why */
    afx_send(&c, "{\"id\":\"e3\",\"op\":\"provision\",\"serial\":\"EV-3\",\"slot\":\"broken\"}\n");
    while (strcmp(afx_js(r = next_event(&ev), "event"), "FaultOccurred"))
        json_decref(r);
    assert_string_equal(field(r, "slot"), "broken");
    assert_non_null(strstr(field(r, "message"), "no-such-card"));
    json_decref(r);
    json_decref(afx_reply(&c, "e3"));
    json_decref(afx_reply(&c, "e3"));
    close(c.fd);

    /* the station's own state: stopping, without a slot */
    assert_int_equal(kill(fx->pid, SIGTERM), 0);
    while (strcmp(afx_js(r = next_event(&ev), "event"), "StationStateChanged") || json_object_get(r, "slot"))
        json_decref(r);
    assert_string_equal(field(r, "state"), "stopping");
    assert_true(json_is_string(json_object_get(r, "message")));
    json_decref(r);
    close(ev.fd);
    int st;
    assert_int_equal(waitpid(fx->pid, &st, 0), fx->pid);
    fx->pid = 0;
}

/* ---- configuration and parser, no daemon ---- */

static void test_config_errors(void **state)
{
    (void)state;
    char *d = tu_mkdtemp("agentd-conf");
    char *f = tu_path(d, "a.conf");
    agent_config *c = malloc(sizeof *c);
    char why[1024];
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"station = { id = \"x\"; colour = \"red\"; };\n", "a.conf:1: unknown key 'station.colour'"},
        {"\n\nmes = { mode = \"777\"; };\n", "a.conf:3: mes.mode \"777\": an octal mode"},
        {"timeouts = {\n shutdown_ms = 5;\n};\n", "a.conf:2: timeouts.shutdown_ms = 5: out of range 100..3600000"},
        {"slots = ( { name = \"a\"; spec = \"pcsc:R,card-wait=-4\"; } );\n", "a.conf:1: slot 'a': spec"},
        {"slots = ( { name = \"a\"; spec = \"pcsc:R\"; },\n { name = \"a\"; spec = \"pcsc:S\"; } );\n",
         "a.conf:2: slot 'a' given twice (first at"},
        {"mes = { path = \"/x\"; };\nmes = { path = \"/y\"; };\n", "a.conf:2:"},
        {"store = { path = 5; };\n", "a.conf:1: store.path must be a string"},
        {"vault = { };\n", "a.conf:1: unknown group 'vault'"},
        {"station = { id = \"x\";\n\n", "a.conf:3:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(tu_write_file(f, (const uint8_t *)cases[i].text, strlen(cases[i].text)), 0);
        why[0] = 0;
        assert_int_not_equal(config_load(d, c, why, sizeof why), IFPP_OK);
        if (!strstr(why, cases[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, why, cases[i].want);
    }
    /* a key given in two files names both */
    assert_int_equal(tu_write_file(f, (const uint8_t *)"store = { path = \"/a\"; };\n", 26), 0);
    char *g = tu_path(d, "b.conf");
    assert_int_equal(tu_write_file(g, (const uint8_t *)"\nstore = { path = \"/b\"; };\n", 27), 0);
    assert_int_not_equal(config_load(d, c, why, sizeof why), IFPP_OK);
    assert_non_null(strstr(why, "b.conf:2: store.path given twice (first at"));
    assert_non_null(strstr(why, "a.conf:1)"));
    free(g);
    free(f);
    free(c);
    tu_rmrf(d);
    free(d);
}

static void count_diff(void *arg, const char *text)
{
    (*(size_t *)arg)++;
    print_message("differs: %s\n", text);
}

static void test_config_examples(void **state)
{
    (void)state;
    agent_config *c = malloc(sizeof *c);
    char why[1024] = "", path[4096];
    const char *src = getenv("IFPP_SOURCE_DIR");
    if (!src)
        skip();
    snprintf(path, sizeof path, "%s/station.conf.d", src);
    if (config_load(path, c, why, sizeof why) != IFPP_OK)
        fail_msg("%s", why);
    assert_int_equal(c->n_slots, 2);
    assert_int_equal(c->mes_mode, 0660);
    /* the printed merge reads back as the same configuration (config check's output is a valid file) */
    snprintf(c->station_id, sizeof c->station_id, "line \"7\" \\ west");
    char *d = tu_mkdtemp("agentd-print");
    char *pf = tu_path(d, "merged.conf");
    FILE *f = fopen(pf, "w");
    assert_non_null(f);
    config_print(c, f);
    assert_int_equal(fclose(f), 0);
    agent_config *back = malloc(sizeof *back);
    if (config_load(pf, back, why, sizeof why) != IFPP_OK)
        fail_msg("%s", why);
    static size_t diffs;
    diffs = 0;
    assert_int_equal(config_diff(c, back, count_diff, &diffs), 0);
    assert_string_equal(back->station_id, "line \"7\" \\ west");
    free(back);
    free(pf);
    tu_rmrf(d);
    free(d);
    static const char *const ex[] = {"slots-virtual.conf", "slots-at.conf", "slots-usb.conf"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/station.conf.d/examples/%s", src, ex[i]);
        if (config_load(path, c, why, sizeof why) != IFPP_OK)
            fail_msg("%s", why);
        assert_true(c->n_slots >= 1);
    }
    free(c);
}

static void test_parse_request(void **state)
{
    (void)state;
    mes_request rq;
    char err[512];
    static const char ok1[] = "{\"id\":7,\"op\":\"provision\",\"serial\":\"SN-1\",\"profile_type\":\"opA\",\"complete\":true}";
    assert_int_equal(mes_parse_request(ok1, strlen(ok1), &rq, err, sizeof err), IFPP_OK);
    assert_string_equal(rq.id, "7");
    assert_int_equal(rq.op, MES_OP_PROVISION);
    assert_string_equal(rq.serial, "SN-1");
    assert_true(rq.complete);
    static const char both[] = "{\"id\":\"x\",\"op\":\"provision\",\"serial\":\"S\",\"complete\":true,"
                               "\"additional_profile\":true}";
    assert_int_not_equal(mes_parse_request(both, strlen(both), &rq, err, sizeof err), IFPP_OK);
    assert_string_equal(rq.id, "\"x\"");
    assert_non_null(strstr(err, "exclude each other"));
    static const char nul[] = "{\"id\":\"x\",\"op\":\"query\",\"what\":\"dut\",\"serial\":\"a\\u0000b\"}";
    assert_int_not_equal(mes_parse_request(nul, strlen(nul), &rq, err, sizeof err), IFPP_OK);
    static const char noid[] = "{\"op\":\"ping\"}";
    assert_int_not_equal(mes_parse_request(noid, strlen(noid), &rq, err, sizeof err), IFPP_OK);
    assert_non_null(strstr(err, "field 'id'"));
    static const char deep[] = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[";
    assert_int_not_equal(mes_parse_request(deep, strlen(deep), &rq, err, sizeof err), IFPP_OK);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_examples),
        cmocka_unit_test(test_parse_request),
    };
    const struct CMUnitTest daemon[] = {
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_wrong_peer),
        cmocka_unit_test(test_thousand_through_mes),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_sigterm_lets_session_end),
    };
    const struct CMUnitTest events[] = {
        cmocka_unit_test(test_events),
    };
    const struct CMUnitTest p11[] = {
        cmocka_unit_test(test_p11_provision),
        cmocka_unit_test(test_p11_wrong_key_and_pin),
    };
    int rc = cmocka_run_group_tests_name("config and parser", pure, NULL, NULL);
    rc |= cmocka_run_group_tests_name("ifpp-agent", daemon, fx_setup, fx_teardown);
    rc |= cmocka_run_group_tests_name("ifpp-agent's events", events, ev_setup, fx_teardown);
    return rc | cmocka_run_group_tests_name("ifpp-agent with the DM FPA key in a PKCS#11 token", p11, p11_setup,
                                            p11_teardown);
}
