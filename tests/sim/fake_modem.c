/*
 * fake_modem.c -- `ifpp-fake-modem`: a cellular module's AT port on a pty, with the software eUICC as its SIM.
 *
 * The at backend (drivers/fpa_at.c) is tested through libserialport on the slave side of a pty
 * this process opens (openpty); it prints the slave's path as its first line on stdout and then
 * answers AT commands on the master until it is killed. The card behind it is tests/sim/euicc_sim
 * (its state file updated as a card's NVM would be). The quirk options make it behave as real
 * modems do (many from lpac's tracker), one behaviour each, so a test can aim at one:
 *
 *   --card FILE         the card's state file (required)
 *   --echo              echo every command, whatever ATE0 said
 *   --urc               unsolicited lines before replies and between a reply's lines
 *   --split             replies written a few bytes at a time, with pauses
 *   --delay-ms N        every reply N ms late
 *   --slow-at N         the N-th APDU (AT+CSIM/AT+CGLA, counted from 1 over the process) takes
 *   --slow-ms M           M ms (default 20000: a BPP segment that legitimately takes tens of seconds)
 *   --garbage-at N      the N-th APDU is answered with bytes that are not text
 *   --silence-at N      from the N-th APDU on, nothing is answered at all
 *   --reset-at N        the N-th APDU is lost: the modem restarts (SIM reset, echo on) and says RDY
 *   --error-at N        the N-th APDU is answered with a bare ERROR and never reaches the card
 *   --probe-silent      AT+CCHO=? gets no answer at all
 *   --ccho-bare         AT+CCHO answers the bare channel number, without "+CCHO: "
 *   --no-cchc           AT+CCHC is unknown (ERROR) while AT+CCHO and AT+CGLA work
 *   --no-ccho           no AT+CCHO, AT+CGLA or AT+CCHC at all (ERROR)
 *   --upper-only        hex in lower case is refused (+CME ERROR: invalid characters in text string)
 *   --hold-channels N   the modem keeps N logical channels of its own open on the SIM (so the
 *                       station's channel is N+1: CLA encodings past channel 3)
 *   --baud N            bytes are paced as a UART at N baud would (10 bits a byte) both ways
 *   --line-max N        commands longer than N characters are refused (default 4096)
 *   --log FILE          appends per APDU "apdu N BYTES" and per command "cmd IN OUT" (bytes each way)
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pty.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "apdu.h"
#include "euicc_sim.h"
#include "hex.h"

#define FM_LINE_MAX 70000

static struct {
    int fd;
    euicc_sim *card;
    bool powered, echo, always_echo, urc, split, probe_silent, ccho_bare, no_cchc, no_ccho, upper_only, silent;
    long delay_ms, slow_at, slow_ms, garbage_at, silence_at, reset_at, error_at, hold, baud, line_max;
    unsigned long apdus, out_bytes;
    double wire_free; /* monotonic seconds at which the paced line is free again */
    FILE *log;
} M;

static double fm_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fm_sleep_until(double when)
{
    double d = when - fm_now();
    if (d <= 0)
        return;
    struct timespec t = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

static void fm_sleep_ms(long ms)
{
    fm_sleep_until(fm_now() + (double)ms / 1000.0);
}

/* Time the paced line takes for n bytes (10 bits each at --baud); the line is shared both ways. */
static void fm_pace(size_t n)
{
    if (M.baud <= 0)
        return;
    double start = M.wire_free > fm_now() ? M.wire_free : fm_now();
    M.wire_free = start + (double)n * 10.0 / (double)M.baud;
}

static void fm_write(const char *p, size_t n)
{
    size_t chunk = M.split ? 3 : n;
    while (n) {
        size_t k = n < chunk ? n : chunk;
        fm_pace(k);
        fm_sleep_until(M.wire_free);
        ssize_t w = write(M.fd, p, k);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        M.out_bytes += (size_t)w;
        p += w;
        n -= (size_t)w;
        if (M.split && n)
            fm_sleep_ms(2);
    }
}

static void fm_line(const char *s)
{
    fm_write("\r\n", 2);
    fm_write(s, strlen(s));
    fm_write("\r\n", 2);
}

static void fm_urc(void)
{
    if (M.urc)
        fm_line("+CREG: 1,\"00AB\",\"0123ABCD\",7");
}

/*
 * The class byte of logical channel ch and back (ISO 7816-4 §5.4.1), written here again on purpose:
 * a test double that shared drivers/apdu.c's encoder would agree with any mistake in it.
 */
static uint8_t fm_cla(unsigned ch)
{
    return (uint8_t)(ch < 4 ? ch : 0x40 | (ch - 4));
}

static unsigned fm_channel(uint8_t cla)
{
    return cla & 0x40 ? 4u + (cla & 0x0F) : cla & 0x03u;
}

/* A SIM reset: the card powers up again, and the modem takes its own channels first. */
static void fm_sim_reset(void)
{
    uint8_t atr[64], resp[64];
    size_t n;
    M.powered = euicc_sim_reset(M.card, atr, sizeof atr, &n) == IFPP_OK;
    static const uint8_t open_ch[] = {0x00, APDU_INS_MANAGE_CHANNEL, 0x00, 0x00, 0x01};
    for (long i = 0; M.powered && i < M.hold; i++)
        (void)euicc_sim_transmit(M.card, open_ch, sizeof open_ch, resp, sizeof resp, &n);
}

/* One APDU to the card; the reply line ("+CSIM: ..." or "+CGLA: ...") into out, or false. */
static bool fm_apdu(const char *prefix, const char *hex, size_t hex_len, char *out, size_t cap)
{
    static uint8_t cmd[FM_LINE_MAX / 2], resp[70000];
    static char rhex[2 * sizeof resp + 1];
    size_t n, rn;
    char tmp[FM_LINE_MAX];
    if (hex_len >= sizeof tmp)
        return false;
    memcpy(tmp, hex, hex_len);
    tmp[hex_len] = '\0';
    if (hex_decode(tmp, cmd, sizeof cmd, &n) != IFPP_OK || n < 4)
        return false;
    if (euicc_sim_transmit(M.card, cmd, n, resp, sizeof resp, &rn) != IFPP_OK)
        return false;
    hex_encode(resp, rn, rhex, sizeof rhex);
    for (char *c = rhex; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    snprintf(out, cap, "%s %zu,\"%s\"", prefix, 2 * rn, rhex);
    return true;
}

/* The quoted hex argument at p: its digits and count; false if not "<hex>" or lower case where refused. */
static bool fm_hex_arg(const char *p, const char **hex, size_t *len, bool *lower)
{
    if (*p != '"')
        return false;
    *hex = ++p;
    *lower = false;
    while ((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F') || (*p >= 'a' && *p <= 'f')) {
        *lower |= *p >= 'a' && *p <= 'f';
        p++;
    }
    *len = (size_t)(p - *hex);
    return *p == '"' && p[1] == '\0';
}

static void fm_ok_or_error(bool ok)
{
    fm_line(ok ? "OK" : "ERROR");
}

/* One APDU command (AT+CSIM or AT+CGLA) with its quirks; the channel checked for AT+CGLA. */
static void fm_apdu_command(const char *line, bool cgla)
{
    static char reply[2 * 70000 + 32];
    unsigned long no = ++M.apdus;
    const char *p = line + 8, *hex;
    size_t len, hex_len;
    unsigned long ch = 0;
    bool lower;
    char *end;
    if (cgla) {
        ch = strtoul(p, &end, 10);
        if (*end != ',' || ch == 0 || ch > APDU_MAX_CHANNEL) {
            fm_line("+CME ERROR: incorrect parameters");
            return;
        }
        p = end + 1;
    }
    len = strtoul(p, &end, 10);
    if (*end != ',' || !fm_hex_arg(end + 1, &hex, &hex_len, &lower) || hex_len != len || len % 2) {
        fm_line("+CME ERROR: incorrect parameters");
        return;
    }
    if (M.log)
        fprintf(M.log, "apdu %lu %zu\n", no, len / 2);
    if (M.silence_at && (long)no >= M.silence_at) {
        M.silent = true;
        return;
    }
    if (M.reset_at == (long)no) {
        fm_sleep_ms(5);
        fm_sim_reset();
        M.echo = true;
        fm_line("RDY");
        return;
    }
    if (M.error_at == (long)no) {
        fm_line("ERROR");
        return;
    }
    if (M.garbage_at == (long)no) {
        static const char junk[] = "+CSIM: \x01\xff\x80garb\xfe\r\n";
        fm_write(junk, sizeof junk - 1);
        fm_line("OK");
        return;
    }
    if (M.upper_only && lower) {
        fm_line("+CME ERROR: invalid characters in text string");
        return;
    }
    if (!M.powered) {
        fm_line("+CME ERROR: SIM not inserted");
        return;
    }
    if (cgla) { /* a session's APDUs must address its channel in their CLA (ISO 7816-4 §5.4.1) */
        uint8_t cla;
        char two[3] = {hex[0], hex[1], '\0'};
        cla = (uint8_t)strtoul(two, NULL, 16);
        if (fm_channel(cla) != ch) {
            fm_line("+CME ERROR: incorrect parameters");
            return;
        }
    }
    if (M.slow_at == (long)no)
        fm_sleep_ms(M.slow_ms);
    if (!fm_apdu(cgla ? "+CGLA:" : "+CSIM:", hex, hex_len, reply, sizeof reply)) {
        fm_line("+CME ERROR: SIM failure");
        return;
    }
    fm_urc();
    fm_write("\r\n", 2);
    fm_write(reply, strlen(reply));
    fm_write("\r\n", 2);
    fm_urc();
    fm_line("OK");
}

/* AT+CCHO="<aid>": MANAGE CHANNEL open and SELECT on the new channel, as a modem does it. */
static void fm_ccho(const char *arg)
{
    const char *hex;
    size_t hex_len, n;
    bool lower;
    uint8_t cmd[5 + 16 + 1], resp[300];
    char aid[40];
    if (!fm_hex_arg(arg, &hex, &hex_len, &lower) || hex_len < 10 || hex_len > 32) {
        fm_line("+CME ERROR: incorrect parameters");
        return;
    }
    memcpy(aid, hex, hex_len);
    aid[hex_len] = '\0';
    static const uint8_t open_ch[] = {0x00, APDU_INS_MANAGE_CHANNEL, 0x00, 0x00, 0x01};
    if (!M.powered || euicc_sim_transmit(M.card, open_ch, sizeof open_ch, resp, sizeof resp, &n) != IFPP_OK ||
        n != 3 || resp[1] != 0x90) {
        fm_line("+CME ERROR: no logical channel");
        return;
    }
    unsigned ch = resp[0];
    size_t aid_len;
    cmd[1] = APDU_INS_SELECT;
    cmd[2] = 0x04;
    cmd[3] = 0x00;
    cmd[0] = fm_cla(ch);
    hex_decode(aid, cmd + 5, 16, &aid_len);
    cmd[4] = (uint8_t)aid_len;
    cmd[5 + aid_len] = 0x00;
    if (euicc_sim_transmit(M.card, cmd, 5 + aid_len + 1, resp, sizeof resp, &n) != IFPP_OK || n < 2 ||
        resp[n - 2] != 0x90) {
        uint8_t close_ch[] = {0x00, APDU_INS_MANAGE_CHANNEL, 0x80, (uint8_t)ch};
        (void)euicc_sim_transmit(M.card, close_ch, sizeof close_ch, resp, sizeof resp, &n);
        fm_line("+CME ERROR: not found");
        return;
    }
    char out[32];
    snprintf(out, sizeof out, M.ccho_bare ? "%u" : "+CCHO: %u", ch);
    fm_urc();
    fm_line(out);
    fm_line("OK");
}

static void fm_cchc(const char *arg)
{
    uint8_t resp[8];
    size_t n;
    char *end;
    unsigned long ch = strtoul(arg, &end, 10);
    uint8_t close_ch[] = {0x00, APDU_INS_MANAGE_CHANNEL, 0x80, (uint8_t)ch};
    fm_ok_or_error(*end == '\0' && ch > 0 && ch <= APDU_MAX_CHANNEL && M.powered &&
                   euicc_sim_transmit(M.card, close_ch, sizeof close_ch, resp, sizeof resp, &n) == IFPP_OK && n == 2 &&
                   resp[0] == 0x90);
}

static bool fm_is(const char *line, const char *cmd)
{
    return strcasecmp(line, cmd) == 0;
}

static bool fm_starts(const char *line, const char *prefix)
{
    return strncasecmp(line, prefix, strlen(prefix)) == 0;
}

/* One command line from the station. */
static void fm_command(char *line)
{
    if (M.silent)
        return;
    if (M.echo) {
        fm_write(line, strlen(line));
        fm_write("\r", 1);
    }
    if (M.delay_ms)
        fm_sleep_ms(M.delay_ms);
    if ((long)strlen(line) > M.line_max) {
        fm_line("ERROR");
        return;
    }
    bool chan_cmd = fm_starts(line, "AT+CCHO") || fm_starts(line, "AT+CGLA") || fm_starts(line, "AT+CCHC");
    if (fm_is(line, "AT") || fm_is(line, "AT+CMEE=2")) {
        fm_line("OK");
    } else if (fm_is(line, "ATE0") || fm_is(line, "ATE1")) {
        M.echo = M.always_echo || line[3] == '1';
        fm_line("OK");
    } else if (fm_is(line, "AT+CFUN=0")) {
        M.powered = false;
        fm_line("OK");
    } else if (fm_is(line, "AT+CFUN=1")) {
        fm_sim_reset();
        fm_line("OK");
        fm_urc();
    } else if (fm_starts(line, "AT+CSIM=")) {
        fm_apdu_command(line, false);
    } else if (chan_cmd && M.no_ccho) {
        fm_line("ERROR");
    } else if (fm_is(line, "AT+CCHO=?")) {
        if (!M.probe_silent)
            fm_line("OK");
    } else if (fm_starts(line, "AT+CCHO=")) {
        fm_ccho(line + 8);
    } else if (fm_starts(line, "AT+CGLA=")) {
        fm_apdu_command(line, true);
    } else if (fm_starts(line, "AT+CCHC=") && !M.no_cchc) {
        fm_cchc(line + 8);
    } else {
        fm_line("ERROR");
    }
}

static long fm_num(const char *s, const char *opt)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s < '0' || *s > '9' || errno || *end || v < 0) {
        fprintf(stderr, "ifpp-fake-modem: %s needs a number, not '%s'\n", opt, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"card", required_argument, NULL, 'c'},       {"echo", no_argument, NULL, 'e'},
        {"urc", no_argument, NULL, 'u'},              {"split", no_argument, NULL, 's'},
        {"delay-ms", required_argument, NULL, 'd'},   {"slow-at", required_argument, NULL, 'S'},
        {"slow-ms", required_argument, NULL, 'M'},    {"garbage-at", required_argument, NULL, 'g'},
        {"silence-at", required_argument, NULL, 'q'}, {"reset-at", required_argument, NULL, 'r'},
        {"error-at", required_argument, NULL, 'E'},   {"probe-silent", no_argument, NULL, 'p'},
        {"ccho-bare", no_argument, NULL, 'b'},        {"no-cchc", no_argument, NULL, 'C'},
        {"no-ccho", no_argument, NULL, 'O'},          {"upper-only", no_argument, NULL, 'U'},
        {"hold-channels", required_argument, NULL, 'h'}, {"baud", required_argument, NULL, 'B'},
        {"line-max", required_argument, NULL, 'L'},   {"log", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *log = NULL;
    int c;
    M.slow_ms = 20000;
    M.line_max = 4096;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *o = argv[optind - 1];
        switch (c) {
        case 'c': path = optarg; break;
        case 'e': M.always_echo = true; break;
        case 'u': M.urc = true; break;
        case 's': M.split = true; break;
        case 'd': M.delay_ms = fm_num(optarg, o); break;
        case 'S': M.slow_at = fm_num(optarg, o); break;
        case 'M': M.slow_ms = fm_num(optarg, o); break;
        case 'g': M.garbage_at = fm_num(optarg, o); break;
        case 'q': M.silence_at = fm_num(optarg, o); break;
        case 'r': M.reset_at = fm_num(optarg, o); break;
        case 'E': M.error_at = fm_num(optarg, o); break;
        case 'p': M.probe_silent = true; break;
        case 'b': M.ccho_bare = true; break;
        case 'C': M.no_cchc = true; break;
        case 'O': M.no_ccho = true; break;
        case 'U': M.upper_only = true; break;
        case 'h': M.hold = fm_num(optarg, o); break;
        case 'B': M.baud = fm_num(optarg, o); break;
        case 'L': M.line_max = fm_num(optarg, o); break;
        case 'l': log = optarg; break;
        default: return 2;
        }
    }
    if (!path || optind != argc || euicc_sim_open(path, &M.card) != IFPP_OK) {
        fprintf(stderr, "ifpp-fake-modem: cannot open card file %s\n", path ? path : "(none: --card FILE)");
        return 2;
    }
    if (log && !(M.log = fopen(log, "a"))) {
        perror("ifpp-fake-modem: --log");
        return 2;
    }
    if (M.log)
        setvbuf(M.log, NULL, _IOLBF, 0);
    int slave;
    char name[128];
    struct termios raw;
    if (openpty(&M.fd, &slave, name, NULL, NULL) != 0) {
        perror("ifpp-fake-modem: openpty");
        return 1;
    }
    /* raw both ways, like a UART: the line discipline must not echo or translate */
    tcgetattr(slave, &raw);
    cfmakeraw(&raw);
    tcsetattr(slave, TCSANOW, &raw);
    /* the slave stays open here too, so the station closing and reopening it is no hang-up */
    M.echo = true; /* a modem starts with echo on */
    fm_sim_reset();
    printf("%s\n", name);
    fflush(stdout);
    static char line[FM_LINE_MAX];
    size_t len = 0;
    for (;;) {
        char buf[4096];
        ssize_t n = read(M.fd, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            fm_sleep_ms(5);
            continue;
        }
        fm_pace((size_t)n); /* the command's bytes took their time on the wire too */
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\r' || buf[i] == '\n') {
                line[len] = '\0';
                if (len) {
                    fm_sleep_until(M.wire_free);
                    unsigned long before = M.out_bytes;
                    fm_command(line);
                    if (M.log) /* the command with its CR, and all that answered it */
                        fprintf(M.log, "cmd %zu %lu\n", len + 1, M.out_bytes - before);
                }
                len = 0;
            } else if (len + 1 < sizeof line) {
                line[len++] = buf[i];
            }
        }
    }
}
