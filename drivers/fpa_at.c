/*
 * fpa_at.c -- the `at` FPA backend: an eUICC behind a cellular module's AT port, through libserialport.
 *
 * Many IoT DUTs reach their eUICC only through the modem: APDUs go as AT+CSIM (3GPP TS 27.007
 * §8.17), logical channels as AT+CCHO/AT+CGLA/AT+CCHC (§8.45-8.47) where the modem has them and as
 * MANAGE CHANNEL inside AT+CSIM where it has not (fpa.c's generic way). Modems differ and misbehave,
 * so nothing here waits without a deadline (no poll(-1)): every command has one (at-timeout for
 * set-up and probes, apdu-timeout for anything the card must answer), and each way a modem can
 * fail -- silence, ERROR or +CME/+CMS ERROR, a restart (RDY), noise, the port vanishing -- is a
 * typed error whose words (last_error) name the port, the command and what the modem did.
 * Echo, URCs between the lines of a reply and replies split across reads are part of normal life.
 *
 * Target: a port path ("/dev/ttyUSB2") or "usb=VID:PID[:IFACE][:SERIAL]" (stable across
 * re-plugging: found from libserialport's port information), then options (docs/at.md):
 *   baud=N  flow=none|rtscts|xonxoff  dtr=on|off  rts=on|off  line-max=N  hex-case=upper|lower
 *   apdu-timeout=MS  at-timeout=MS  card-wait=MS  chan=auto|cgla|csim  reset=cfun|none
 * The line-length limit and the hex case are properties of the modem, so they are options.
 */
#define _DEFAULT_SOURCE /* realpath */
#include <libserialport.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apdu.h"
#include "at_parse.h"
#include "fpa.h"
#include "optval.h"

#define AT_DEFAULT_BAUD 115200L
#define AT_DEFAULT_LINE_MAX 1024L
#define AT_DEFAULT_APDU_TIMEOUT_MS 30000L
#define AT_DEFAULT_AT_TIMEOUT_MS 2000L
#define AT_MAX_URCS 256 /* unsolicited lines tolerated while waiting for one reply */
/* the longest command one short APDU needs: AT+CGLA=19,522,"<261 bytes as hex>" */
#define AT_LONGEST_COMMAND (sizeof "AT+CGLA=19,522,\"\"" - 1 + 2 * (4 + 1 + APDU_SHORT_MAX_LC + 1))

typedef enum { AT_CHAN_AUTO, AT_CHAN_CGLA, AT_CHAN_CSIM } at_chan_mode;

typedef struct {
    struct sp_port *port;
    struct sp_event_set *ev;
    char name[256];                   /* the port, for messages */
    long baud, line_max, apdu_timeout_ms, at_timeout_ms, card_wait_ms;
    enum sp_flowcontrol flow;
    int dtr, rts;                     /* 1 on, 0 off, -1 as the port is */
    bool upper;                       /* hex case the modem wants */
    bool reset_cfun;                  /* reset=cfun: AT+CFUN=0/1 power-cycles the SIM */
    at_chan_mode chan;
    int cgla;                         /* -1 not probed, 0 no AT+CCHO/CGLA, 1 has them */
    bool ccho[APDU_MAX_CHANNEL + 1];  /* channels AT+CCHO opened */
    at_rx rx;
    char line[AT_RX_MAX];
    char *tx;                         /* one command line, line_max + 2 */
    char last[512];                   /* the transport's words about the last failure */
} at_slot;

static long at_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* libserialport's words for its last error, copied (its API wants the message freed). */
static const char *at_sp_error(char *buf, size_t cap)
{
    char *m = sp_last_error_message();
    snprintf(buf, cap, "%s", m ? m : "unknown error");
    sp_free_error_message(m);
    return buf;
}

/* The command's name for messages: "AT+CSIM" of "AT+CSIM=...". */
static int at_cmd_name_len(const char *cmd)
{
    size_t n = strcspn(cmd, "=?");
    return (int)(n > 32 ? 32 : n);
}

static void at_close(void *p)
{
    at_slot *s = p;
    if (!s)
        return;
    if (s->ev)
        sp_free_event_set(s->ev);
    if (s->port) {
        sp_close(s->port);
        sp_free_port(s->port);
    }
    free(s->tx);
    free(s);
}

static bool at_on_off(const char *v, size_t len, int *out)
{
    if (optval_word(v, len, "on"))
        *out = 1;
    else if (optval_word(v, len, "off"))
        *out = 0;
    else
        return false;
    return true;
}

/* One option "name=value" of the target; false (with *rule set) if it is not understood. */
static bool at_option(at_slot *s, const char *name, size_t len, const char **rule)
{
    const char *eq = memchr(name, '=', len);
    if (!eq) {
        *rule = "key=value";
        return false;
    }
    size_t nlen = (size_t)(eq - name), vlen = len - nlen - 1;
    const char *v = eq + 1;
#define AT_KEY(k) (nlen == sizeof k - 1 && !strncmp(name, k, nlen))
    if (AT_KEY("baud")) {
        *rule = "baud=N, 1200..4000000";
        return optval_number(v, vlen, 1200, 4000000, &s->baud);
    }
    if (AT_KEY("flow")) {
        *rule = "flow=none|rtscts|xonxoff";
        if (optval_word(v, vlen, "none"))
            s->flow = SP_FLOWCONTROL_NONE;
        else if (optval_word(v, vlen, "rtscts"))
            s->flow = SP_FLOWCONTROL_RTSCTS;
        else if (optval_word(v, vlen, "xonxoff"))
            s->flow = SP_FLOWCONTROL_XONXOFF;
        else
            return false;
        return true;
    }
    if (AT_KEY("dtr")) {
        *rule = "dtr=on|off";
        return at_on_off(v, vlen, &s->dtr);
    }
    if (AT_KEY("rts")) {
        *rule = "rts=on|off";
        return at_on_off(v, vlen, &s->rts);
    }
    if (AT_KEY("line-max")) {
        *rule = "line-max=N characters, 16..65536";
        return optval_number(v, vlen, 16, 65536, &s->line_max);
    }
    if (AT_KEY("hex-case")) {
        *rule = "hex-case=upper|lower";
        if (optval_word(v, vlen, "upper"))
            s->upper = true;
        else if (optval_word(v, vlen, "lower"))
            s->upper = false;
        else
            return false;
        return true;
    }
    if (AT_KEY("apdu-timeout")) {
        *rule = "apdu-timeout=MS, 1..3600000";
        return optval_number(v, vlen, 1, 3600000, &s->apdu_timeout_ms);
    }
    if (AT_KEY("at-timeout")) {
        *rule = "at-timeout=MS, 1..600000";
        return optval_number(v, vlen, 1, 600000, &s->at_timeout_ms);
    }
    if (AT_KEY("card-wait")) {
        *rule = "card-wait=MS, 0..3600000";
        return optval_number(v, vlen, 0, 3600000, &s->card_wait_ms);
    }
    if (AT_KEY("chan")) {
        *rule = "chan=auto|cgla|csim";
        if (optval_word(v, vlen, "auto"))
            s->chan = AT_CHAN_AUTO;
        else if (optval_word(v, vlen, "cgla"))
            s->chan = AT_CHAN_CGLA;
        else if (optval_word(v, vlen, "csim"))
            s->chan = AT_CHAN_CSIM;
        else
            return false;
        return true;
    }
    if (AT_KEY("reset")) {
        *rule = "reset=cfun|none";
        if (optval_word(v, vlen, "cfun"))
            s->reset_cfun = true;
        else if (optval_word(v, vlen, "none"))
            s->reset_cfun = false;
        else
            return false;
        return true;
    }
#undef AT_KEY
    *rule = "baud, flow, dtr, rts, line-max, hex-case, apdu-timeout, at-timeout, card-wait, chan, reset";
    return false;
}

/* The USB interface a Linux tty belongs to, from its resolved sysfs device path, or -1. */
static int at_usb_interface(const char *port_name)
{
    char link[512], *real;
    const char *base = strrchr(port_name, '/');
    snprintf(link, sizeof link, "/sys/class/tty/%s/device", base ? base + 1 : port_name);
    if (!(real = realpath(link, NULL)))
        return -1;
    int iface = at_usb_interface_of_path(real);
    free(real);
    return iface;
}

/* "usb=VID:PID[:IFACE][:SERIAL]": the one port libserialport lists with that identity. */
static ifpp_err at_find_usb(const char *spec, size_t len, char *name, size_t cap, char *why, size_t why_len)
{
    at_usb_id id;
    ifpp_err e = at_parse_usb_id(spec, len, &id, why, why_len);
    if (e != IFPP_OK)
        return e;
    struct sp_port **ports = NULL;
    char spe[128];
    if (sp_list_ports(&ports) != SP_OK) {
        err_why(why, why_len, "at: cannot list serial ports: %s", at_sp_error(spe, sizeof spe));
        return IFPP_E_NO_READER;
    }
    size_t matches = 0;
    char seen[256] = "";
    for (size_t i = 0; ports[i]; i++) {
        int v, d;
        const char *pn = sp_get_port_name(ports[i]), *sn = sp_get_port_usb_serial(ports[i]);
        if (sp_get_port_transport(ports[i]) != SP_TRANSPORT_USB || sp_get_port_usb_vid_pid(ports[i], &v, &d) != SP_OK ||
            v != (int)id.vid || d != (int)id.pid || (*id.serial && (!sn || strcmp(sn, id.serial))) ||
            (id.iface >= 0 && at_usb_interface(pn) != id.iface))
            continue;
        if (matches++ == 0)
            snprintf(name, cap, "%s", pn);
        size_t sl = strlen(seen);
        snprintf(seen + sl, sizeof seen - sl, "%s%s", sl ? ", " : "", pn);
    }
    sp_free_port_list(ports);
    if (matches == 1)
        return IFPP_OK;
    if (matches == 0)
        err_why(why, why_len, "at: no serial port has USB identity %.*s", (int)len, spec);
    else
        err_why(why, why_len, "at: %zu ports match %.*s (%s): add the interface or the serial", matches, (int)len, spec,
                seen);
    return matches ? IFPP_E_ARG : IFPP_E_NO_READER;
}

static ifpp_err at_parse_target(const char *target, at_slot *s, char *why, size_t why_len)
{
    const char *comma = strchr(target, ',');
    size_t head = comma ? (size_t)(comma - target) : strlen(target);
    s->baud = AT_DEFAULT_BAUD;
    s->line_max = AT_DEFAULT_LINE_MAX;
    s->apdu_timeout_ms = AT_DEFAULT_APDU_TIMEOUT_MS;
    s->at_timeout_ms = AT_DEFAULT_AT_TIMEOUT_MS;
    s->flow = SP_FLOWCONTROL_NONE;
    s->dtr = s->rts = -1;
    s->upper = true; /* upper case: every modem we know takes it, some take nothing else */
    s->reset_cfun = true;
    s->cgla = -1;
    for (const char *o = comma; o; o = strchr(o + 1, ',')) {
        const char *name = o + 1, *end = strchr(name, ','), *rule = "";
        size_t len = end ? (size_t)(end - name) : strlen(name);
        if (!at_option(s, name, len, &rule)) {
            err_why(why, why_len, "at: '%s': option '%.*s' not understood (%s)", target, (int)len, name, rule);
            return IFPP_E_ARG;
        }
    }
    if ((size_t)s->line_max < AT_LONGEST_COMMAND) {
        err_why(why, why_len,
                "at: '%s': line-max=%ld is below the %zu characters one 255-byte APDU needs as AT+CGLA (hex doubles it)",
                target, s->line_max, AT_LONGEST_COMMAND);
        return IFPP_E_ARG;
    }
    if (head >= 4 && !strncmp(target, "usb=", 4))
        return at_find_usb(target, head, s->name, sizeof s->name, why, why_len);
    if (head == 0 || head >= sizeof s->name) {
        err_why(why, why_len, "at: '%s': expected a port path or usb=VID:PID[:IFACE][:SERIAL]", target);
        return IFPP_E_ARG;
    }
    memcpy(s->name, target, head);
    s->name[head] = '\0';
    return IFPP_OK;
}

static ifpp_err at_open(const char *target, void **out, char *why, size_t why_len)
{
    at_slot *s = calloc(1, sizeof *s);
    char spe[128];
    if (!s)
        return IFPP_E_NOMEM;
    ifpp_err e = at_parse_target(target, s, why, why_len);
    if (e != IFPP_OK) {
        at_close(s);
        return e;
    }
    if (!(s->tx = malloc((size_t)s->line_max + 2))) {
        at_close(s);
        return IFPP_E_NOMEM;
    }
    if (sp_get_port_by_name(s->name, &s->port) != SP_OK) {
        s->port = NULL;
        err_why(why, why_len, "at: no serial port '%s' (%s)", s->name, at_sp_error(spe, sizeof spe));
        at_close(s);
        return IFPP_E_NO_READER;
    }
    const char *step = "open";
    enum sp_return r = sp_open(s->port, SP_MODE_READ_WRITE);
    if (r != SP_OK) {
        sp_free_port(s->port);
        s->port = NULL;
    }
    if (r == SP_OK && (step = "baud", r = sp_set_baudrate(s->port, (int)s->baud)) == SP_OK &&
        (step = "8N1", r = sp_set_bits(s->port, 8)) == SP_OK && (r = sp_set_parity(s->port, SP_PARITY_NONE)) == SP_OK &&
        (r = sp_set_stopbits(s->port, 1)) == SP_OK &&
        (step = "flow", r = sp_set_flowcontrol(s->port, s->flow)) == SP_OK &&
        (step = "dtr", r = s->dtr < 0 ? SP_OK : sp_set_dtr(s->port, s->dtr ? SP_DTR_ON : SP_DTR_OFF)) == SP_OK &&
        (step = "rts", r = s->rts < 0 || s->flow == SP_FLOWCONTROL_RTSCTS
                               ? SP_OK
                               : sp_set_rts(s->port, s->rts ? SP_RTS_ON : SP_RTS_OFF)) == SP_OK)
        r = sp_new_event_set(&s->ev) == SP_OK ? sp_add_port_events(s->ev, s->port, SP_EVENT_RX_READY) : SP_ERR_MEM;
    if (r != SP_OK) {
        err_why(why, why_len, "at: port '%s': %s failed (%s)", s->name, step, at_sp_error(spe, sizeof spe));
        at_close(s);
        return r == SP_ERR_MEM ? IFPP_E_NOMEM : IFPP_E_NO_READER;
    }
    *out = s;
    return IFPP_OK;
}

/* Reads what the modem has sent, waiting until deadline at most; IFPP_E_TIMEOUT if nothing came. */
static ifpp_err at_read_some(at_slot *s, long deadline)
{
    char buf[512], spe[128];
    int empty = 0;
    for (;;) {
        long left = deadline - at_now_ms();
        if (left <= 0)
            return IFPP_E_TIMEOUT;
        (void)sp_wait(s->ev, (unsigned)(left > 100000 ? 100000 : left));
        size_t room = sizeof s->rx.buf - s->rx.len;
        int n = sp_nonblocking_read(s->port, buf, room < sizeof buf ? room : sizeof buf);
        if (n < 0) {
            snprintf(s->last, sizeof s->last, "modem port '%s' vanished (read: %s)", s->name, at_sp_error(spe, sizeof spe));
            return IFPP_E_NO_READER;
        }
        if (n > 0)
            return at_rx_feed(&s->rx, buf, (size_t)n) == IFPP_OK ? IFPP_OK : IFPP_E_RANGE;
        /* readable yet empty, again and again, before the deadline: the other end hung up */
        if (deadline - at_now_ms() > 2 && ++empty > 50) {
            snprintf(s->last, sizeof s->last, "modem port '%s' vanished (hung up)", s->name);
            return IFPP_E_NO_READER;
        }
    }
}

/*
 * Sends cmd and waits for its final result. The first line starting with prefix (or, with
 * bare_number, a line of digits) is copied to info; other lines are URCs and skipped, echo too.
 * tolerate_restart: a restart announcement is no failure (the reset sequence expects one).
 */
static ifpp_err at_command(at_slot *s, const char *cmd, const char *prefix, bool bare_number, long timeout_ms,
                           bool tolerate_restart, char *info, size_t info_cap, bool *got_info)
{
    size_t n = strlen(cmd);
    int nl = at_cmd_name_len(cmd);
    char spe[128];
    long deadline = at_now_ms() + timeout_ms;
    if (got_info)
        *got_info = false;
    if (n > (size_t)s->line_max) {
        snprintf(s->last, sizeof s->last, "%.*s of %zu characters exceeds the modem's line-max=%ld", nl, cmd, n,
                 s->line_max);
        return IFPP_E_APDU_TOO_LONG;
    }
    memcpy(s->tx, cmd, n);
    s->tx[n] = '\r';
    int w = sp_blocking_write(s->port, s->tx, n + 1, (unsigned)timeout_ms);
    if (w < 0) {
        snprintf(s->last, sizeof s->last, "modem port '%s' vanished (write: %s)", s->name, at_sp_error(spe, sizeof spe));
        return IFPP_E_NO_READER;
    }
    if ((size_t)w != n + 1) {
        snprintf(s->last, sizeof s->last, "modem on '%s' took no %.*s within %ld ms (flow control held?)", s->name, nl,
                 cmd, timeout_ms);
        return IFPP_E_TIMEOUT;
    }
    for (unsigned lines = 0;;) {
        size_t ln;
        ifpp_err e = at_rx_line(&s->rx, s->line, sizeof s->line, &ln);
        if (e == IFPP_E_NOT_FOUND) {
            if ((e = at_read_some(s, deadline)) == IFPP_E_TIMEOUT) {
                snprintf(s->last, sizeof s->last, "modem on '%s' gave no final result to %.*s within %ld ms (%s; %s)",
                         s->name, nl, cmd, timeout_ms, timeout_ms == s->apdu_timeout_ms ? "apdu-timeout" : "at-timeout",
                         s->rx.len ? "a line began and never ended" : "silence");
                return e;
            }
            if (e == IFPP_E_RANGE)
                e = IFPP_OK; /* a full buffer: at_rx_line reports the over-long line */
            if (e != IFPP_OK)
                return e;
            continue;
        }
        if (e != IFPP_OK) {
            snprintf(s->last, sizeof s->last, "modem on '%s' answered %.*s with a line longer than %d characters",
                     s->name, nl, cmd, AT_RX_MAX);
            return IFPP_E_APDU_MALFORMED;
        }
        switch (at_line_classify(s->line, ln)) {
        case AT_LINE_OK:
            return IFPP_OK;
        case AT_LINE_ERROR:
        case AT_LINE_CME:
        case AT_LINE_CMS:
            snprintf(s->last, sizeof s->last, "modem on '%s' answered %.*s with '%.120s'", s->name, nl, cmd, s->line);
            return IFPP_E_TRANSPORT;
        case AT_LINE_RESTART:
            if (tolerate_restart)
                break;
            snprintf(s->last, sizeof s->last, "modem on '%s' restarted during %.*s (it said '%.40s'): the eUICC was reset",
                     s->name, nl, cmd, s->line);
            return IFPP_E_CARD_RESET;
        case AT_LINE_GARBAGE:
            snprintf(s->last, sizeof s->last, "modem on '%s' answered %.*s with %zu bytes that are not text", s->name,
                     nl, cmd, ln);
            return IFPP_E_APDU_MALFORMED;
        case AT_LINE_ECHO:
            break;
        case AT_LINE_TEXT: {
            unsigned long id;
            bool mine = info && ((prefix && at_line_has_prefix(s->line, ln, prefix)) ||
                                 (bare_number && at_parse_session_id(s->line, ln, &id) == IFPP_OK));
            if (mine && *got_info) {
                snprintf(s->last, sizeof s->last, "modem on '%s' answered %.*s twice", s->name, nl, cmd);
                return IFPP_E_APDU_MALFORMED;
            }
            if (mine) {
                if (ln >= info_cap)
                    return IFPP_E_APDU_TOO_LONG;
                memcpy(info, s->line, ln + 1);
                *got_info = true;
            } else if (++lines > AT_MAX_URCS) {
                snprintf(s->last, sizeof s->last, "modem on '%s' sent more than %d unsolicited lines during %.*s",
                         s->name, AT_MAX_URCS, nl, cmd);
                return IFPP_E_APDU_MALFORMED;
            }
            break;
        }
        }
    }
}

/* Writes n bytes as hex in the modem's case. */
static void at_hex(const at_slot *s, const uint8_t *in, size_t n, char *out)
{
    const char *digits = s->upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/*
 * Brings the modem to a known state: answers AT (within card-wait, for a DUT still booting), echo
 * off, verbose errors; with reset=cfun the SIM is power-cycled (AT+CFUN=0, AT+CFUN=1), as a reset must.
 */
static ifpp_err at_reset(void *p, uint8_t *atr, size_t cap, size_t *atr_len)
{
    at_slot *s = p;
    ifpp_err e;
    s->rx.len = 0;
    (void)sp_flush(s->port, SP_BUF_INPUT);
    long until = at_now_ms() + s->card_wait_ms;
    do /* a booting modem may say nothing, or only its start-up banner */
        e = at_command(s, "AT", NULL, false, s->at_timeout_ms, true, NULL, 0, NULL);
    while (e == IFPP_E_TIMEOUT && at_now_ms() < until);
    if (e == IFPP_OK)
        e = at_command(s, "ATE0", NULL, false, s->at_timeout_ms, true, NULL, 0, NULL);
    if (e == IFPP_OK && at_command(s, "AT+CMEE=2", NULL, false, s->at_timeout_ms, true, NULL, 0, NULL) == IFPP_E_TRANSPORT)
        e = IFPP_OK; /* numeric or no +CME ERROR is fine: the words are only for the operator */
    if (e == IFPP_OK && s->reset_cfun &&
        (e = at_command(s, "AT+CFUN=0", NULL, false, s->apdu_timeout_ms, true, NULL, 0, NULL)) == IFPP_OK)
        e = at_command(s, "AT+CFUN=1", NULL, false, s->apdu_timeout_ms, true, NULL, 0, NULL);
    if (e != IFPP_OK)
        return e;
    if (!s->reset_cfun)
        for (unsigned ch = 1; ch <= APDU_MAX_CHANNEL; ch++)
            if (s->ccho[ch]) {
                char cmd[24];
                snprintf(cmd, sizeof cmd, "AT+CCHC=%u", ch);
                (void)at_command(s, cmd, NULL, false, s->at_timeout_ms, false, NULL, 0, NULL);
            }
    memset(s->ccho, 0, sizeof s->ccho); /* the SIM's reset closed them */
    (void)atr;
    (void)cap;
    *atr_len = 0; /* a modem does not give the ATR */
    return IFPP_OK;
}

static ifpp_err at_transmit(void *p, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *resp_len)
{
    at_slot *s = p;
    char info[AT_RX_MAX];
    bool got;
    if (n < 4 || n > 4 + 3 + APDU_EXT_MAX_LC + 2)
        return IFPP_E_APDU_MALFORMED;
    unsigned ch = apdu_channel_of_cla(cmd[0]);
    bool cgla = ch && s->ccho[ch];
    int head = cgla ? snprintf(s->line, sizeof s->line, "AT+CGLA=%u,%zu,\"", ch, 2 * n)
                    : snprintf(s->line, sizeof s->line, "AT+CSIM=%zu,\"", 2 * n);
    if ((size_t)head + 2 * n + 2 > (size_t)s->line_max + 1 || (size_t)head + 2 * n + 2 > sizeof s->line) {
        snprintf(s->last, sizeof s->last, "a %zu-byte APDU exceeds the modem's line-max=%ld as %s", n, s->line_max,
                 cgla ? "AT+CGLA" : "AT+CSIM");
        return IFPP_E_APDU_TOO_LONG;
    }
    char *line = malloc((size_t)head + 2 * n + 2);
    if (!line)
        return IFPP_E_NOMEM;
    memcpy(line, s->line, (size_t)head);
    at_hex(s, cmd, n, line + head);
    strcat(line + head, "\"");
    const char *prefix = cgla ? "+CGLA:" : "+CSIM:";
    ifpp_err e = at_command(s, line, prefix, false, s->apdu_timeout_ms, false, info, sizeof info, &got);
    free(line);
    if (e == IFPP_E_TRANSPORT && !s->upper)
        strncat(s->last, " (hex-case=lower: does the modem want hex-case=upper?)", sizeof s->last - strlen(s->last) - 1);
    if (e != IFPP_OK)
        return e;
    if (!got) {
        snprintf(s->last, sizeof s->last, "modem on '%s' said OK to %s without a %s line", s->name,
                 cgla ? "AT+CGLA" : "AT+CSIM", prefix);
        return IFPP_E_APDU_MALFORMED;
    }
    e = at_parse_hex_reply(info, strlen(info), prefix, resp, cap, resp_len);
    if (e == IFPP_OK && *resp_len < 2) {
        snprintf(s->last, sizeof s->last, "modem on '%s': the card answered %zu byte(s), not even a status word",
                 s->name, *resp_len);
        e = IFPP_E_APDU_MALFORMED;
    } else if (e != IFPP_OK) {
        snprintf(s->last, sizeof s->last, "modem on '%s' sent a malformed %s line ('%.60s')", s->name, prefix, info);
    }
    return e;
}

/*
 * AT+CCHO where the modem has it (probed once with AT+CCHO=?: silence or ERROR mean no); else
 * IFPP_E_NOT_FOUND, and fpa.c opens the channel with MANAGE CHANNEL inside AT+CSIM.
 */
static ifpp_err at_open_channel(void *p, const uint8_t *aid, size_t aid_len, unsigned *channel)
{
    at_slot *s = p;
    char cmd[64], info[AT_RX_MAX];
    bool got;
    ifpp_err e;
    if (s->chan == AT_CHAN_CSIM)
        return IFPP_E_NOT_FOUND;
    if (s->chan == AT_CHAN_AUTO && s->cgla < 0) {
        e = at_command(s, "AT+CCHO=?", NULL, false, s->at_timeout_ms, false, NULL, 0, NULL);
        if (e == IFPP_E_TIMEOUT)
            s->rx.len = 0; /* a late answer to the probe must not pass for the next one */
        else if (e != IFPP_OK && e != IFPP_E_TRANSPORT)
            return e; /* a restart, noise, the port gone: not a missing command */
        s->cgla = e == IFPP_OK;
    }
    if (s->chan == AT_CHAN_AUTO && !s->cgla)
        return IFPP_E_NOT_FOUND;
    strcpy(cmd, "AT+CCHO=\"");
    at_hex(s, aid, aid_len, cmd + strlen(cmd));
    strcat(cmd, "\"");
    e = at_command(s, cmd, "+CCHO:", true, s->apdu_timeout_ms, false, info, sizeof info, &got);
    if (e == IFPP_E_TRANSPORT && s->chan == AT_CHAN_AUTO)
        return IFPP_E_NOT_FOUND; /* the modem has the command but would not: try MANAGE CHANNEL */
    if (e != IFPP_OK)
        return e;
    unsigned long id;
    if (!got || at_parse_session_id(info, strlen(info), &id) != IFPP_OK) {
        snprintf(s->last, sizeof s->last, "modem on '%s' said OK to AT+CCHO without a channel", s->name);
        return IFPP_E_APDU_MALFORMED;
    }
    if (id == 0 || id > APDU_MAX_CHANNEL) {
        snprintf(s->last, sizeof s->last, "modem on '%s' opened session %lu: not a channel 1..%d a CLA can address",
                 s->name, id, APDU_MAX_CHANNEL);
        snprintf(cmd, sizeof cmd, "AT+CCHC=%lu", id);
        (void)at_command(s, cmd, NULL, false, s->at_timeout_ms, false, NULL, 0, NULL);
        return IFPP_E_APDU_CHANNEL;
    }
    s->ccho[id] = true;
    *channel = (unsigned)id;
    return IFPP_OK;
}

/* AT+CCHC for a channel AT+CCHO opened; if the modem lacks it (or for other channels), fpa.c's MANAGE CHANNEL. */
static ifpp_err at_close_channel(void *p, unsigned channel)
{
    at_slot *s = p;
    char cmd[24];
    if (channel > APDU_MAX_CHANNEL || !s->ccho[channel])
        return IFPP_E_NOT_FOUND;
    s->ccho[channel] = false;
    snprintf(cmd, sizeof cmd, "AT+CCHC=%u", channel);
    ifpp_err e = at_command(s, cmd, NULL, false, s->at_timeout_ms, false, NULL, 0, NULL);
    return e == IFPP_E_TRANSPORT || e == IFPP_E_TIMEOUT ? IFPP_E_NOT_FOUND : e;
}

static const char *at_last_error(void *p)
{
    return ((at_slot *)p)->last;
}

const fpa_ops fpa_at_ops = {
    .name = "at",
    .open = at_open,
    .close = at_close,
    .reset = at_reset,
    .transmit = at_transmit,
    .last_error = at_last_error,
    .open_channel = at_open_channel,
    .close_channel = at_close_channel,
};
