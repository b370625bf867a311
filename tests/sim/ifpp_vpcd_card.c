/*
 * ifpp_vpcd_card.c -- `ifpp-vpcd-card`: the software eUICC as a card in a real PC/SC reader.
 *
 * Connects to the vpcd driver of vsmartcard (loaded by pcscd) on 127.0.0.1:PORT and answers
 * its frames: a 2-byte big-endian length, then either one control byte (0 power off, 1 power
 * on, 2 reset, 4 ATR) or a command APDU, answered with a length-prefixed response.
 *
 * vpcd writes each frame's length and body in two sends, so with Nagle and delayed ACKs every
 * round trip would wait for the peer's ACK timer (about 40 ms): TCP_NODELAY on our side, and
 * TCP_QUICKACK re-armed before every read (Linux clears it after use), bring a 260-byte APDU
 * round trip through pcscd down to a fraction of a millisecond.
 *
 *   ifpp-vpcd-card --card FILE [--port N] [--t0] [--delay-ms N] [--garbage-at N]
 *                  [--fixed-challenge HEX]
 *
 *   --card FILE     the card's state file (euicc_sim); it is updated as the card's NVM would be
 *   --port N        vpcd's TCP port (default 35963, vpcd's own default)
 *   --t0            a T=0 card: a T=0-only ATR (3B 02 14 50: no TD1, so no other protocol is
 *                   offered and pcscd negotiates T=0), responses with data announced by 61xx
 *                   and fetched by GET RESPONSE. Without it the ATR offers T=1 and pcscd uses it.
 *   --delay-ms N    a slow card: sleeps N ms before answering each command APDU (control frames
 *                   -- power, reset, ATR -- answer at once, so insertion is not slowed)
 *   --garbage-at N  from the N-th command APDU after process start on (counting from 1, every
 *                   command counts, GET RESPONSE included; resets do not restart the count),
 *                   answers the single byte 6F -- shorter than a status word -- instead of
 *                   processing the command: a malformed answer the station must reject.
 *                   Deterministic, so a test can aim it at one step.
 *   --fixed-challenge HEX
 *                   16 bytes: GetEuiccChallenge answers them instead of a random challenge, so a
 *                   recorded APDU sequence (its AuthoriseFpaServices signature included) can be
 *                   replayed against a copy of the same card (bench/bench_pcsc.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "euicc_sim.h"
#include "hex.h"

#define MAX_FRAME 70000

static int read_all(int fd, uint8_t *p, size_t n)
{
    int one = 1;
    while (n) {
        /* re-armed every time: Linux drops QUICKACK after it has been used (see the top comment) */
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* One send for header and body: two would put the peer's delayed ACK back into every round trip. */
static int send_frame(int fd, const uint8_t *p, size_t n)
{
    static uint8_t buf[2 + MAX_FRAME];
    if (n > sizeof buf - 2)
        return -1;
    buf[0] = (uint8_t)(n >> 8);
    buf[1] = (uint8_t)n;
    memcpy(buf + 2, p, n);
    const uint8_t *q = buf;
    size_t left = n + 2;
    while (left) {
        ssize_t w = send(fd, q, left, MSG_NOSIGNAL); /* vpcd gone: an error here, not SIGPIPE */
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        q += w;
        left -= (size_t)w;
    }
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* A whole decimal number in [min, max], or -1 (junk, trailing characters, out of range). */
static long parse_num(const char *s, long min, long max)
{
    char *end;
    if (*s < '0' || *s > '9') /* strtol would take a sign or leading blanks */
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    return v;
}

static int usage(const char *why, const char *arg)
{
    fprintf(stderr, "ifpp-vpcd-card: %s%s%s\n"
                    "usage: ifpp-vpcd-card --card FILE [--port N] [--t0] [--delay-ms N] [--garbage-at N]"
                    " [--fixed-challenge HEX32]\n",
            why, arg ? ": " : "", arg ? arg : "");
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"card", required_argument, NULL, 'c'},
        {"port", required_argument, NULL, 'p'},
        {"t0", no_argument, NULL, '0'},
        {"delay-ms", required_argument, NULL, 'd'},
        {"garbage-at", required_argument, NULL, 'g'},
        {"fixed-challenge", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    long port = 35963, delay_ms = 0, garbage_at = 0;
    uint8_t challenge[16];
    bool t0 = false, fixed = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        size_t cn = 0;
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'p':
            if ((port = parse_num(optarg, 1, 65535)) < 0)
                return usage("--port needs a TCP port number (1-65535)", optarg);
            break;
        case '0':
            t0 = true;
            break;
        case 'd':
            if ((delay_ms = parse_num(optarg, 0, 600000)) < 0)
                return usage("--delay-ms needs milliseconds (0-600000)", optarg);
            break;
        case 'g':
            if ((garbage_at = parse_num(optarg, 1, 0x7FFFFFFF)) < 0)
                return usage("--garbage-at needs an APDU number counted from 1", optarg);
            break;
        case 'f':
            if (hex_decode(optarg, challenge, sizeof challenge, &cn) != IFPP_OK || cn != sizeof challenge)
                return usage("--fixed-challenge needs exactly 16 bytes as 32 hex digits", optarg);
            fixed = true;
            break;
        default:
            return usage("unknown option", NULL);
        }
    }
    if (optind != argc)
        return usage("unexpected argument", argv[optind]);
    euicc_sim *card;
    if (!path || euicc_sim_open(path, &card) != IFPP_OK) {
        fprintf(stderr, "ifpp-vpcd-card: cannot open card file %s\n", path ? path : "(none: --card FILE)");
        return 2;
    }
    /* before the first reset: the ATR the card gives depends on it */
    euicc_sim_set_t0(card, t0);
    if (fixed)
        euicc_sim_set_fixed_challenge(card, challenge);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("ifpp-vpcd-card: socket");
        euicc_sim_close(card);
        return 1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int tries = 0;
    /* pcscd loads vpcd a moment after it starts: retry for about 5 s */
    while (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (++tries > 100) {
            fprintf(stderr, "ifpp-vpcd-card: nothing listens on 127.0.0.1:%ld (is pcscd with vpcd running?)\n", port);
            close(fd);
            euicc_sim_close(card);
            return 1;
        }
        sleep_ms(50);
    }
    static uint8_t frame[MAX_FRAME], resp[MAX_FRAME];
    uint8_t atr[33];
    size_t atr_len = 0, rn;
    unsigned long apdus = 0;
    for (;;) {
        uint8_t hdr[2];
        if (read_all(fd, hdr, 2))
            break;
        size_t n = (size_t)hdr[0] << 8 | hdr[1];
        if (n > sizeof frame || read_all(fd, frame, n))
            break;
        if (n == 1) { /* a control frame; no APDU is one byte long */
            switch (frame[0]) {
            case 0: /* power off: nothing to answer */
                break;
            case 1:
            case 2:
                euicc_sim_reset(card, atr, sizeof atr, &atr_len);
                break;
            case 4:
                if (!atr_len)
                    euicc_sim_reset(card, atr, sizeof atr, &atr_len);
                if (send_frame(fd, atr, atr_len))
                    goto out;
                break;
            default:
                break;
            }
            continue;
        }
        apdus++;
        if (delay_ms)
            sleep_ms(delay_ms);
        if (garbage_at && apdus >= (unsigned long)garbage_at) {
            resp[0] = 0x6F; /* one byte: not even a status word */
            rn = 1;
        } else if (euicc_sim_transmit(card, frame, n, resp, sizeof resp, &rn) != IFPP_OK) {
            rn = 2; /* torn or powered off: a card that answers at all says "no precise diagnosis" */
            resp[0] = 0x6F;
            resp[1] = 0x00;
        }
        if (send_frame(fd, resp, rn))
            break;
    }
out:
    close(fd);
    euicc_sim_close(card);
    return 0;
}
