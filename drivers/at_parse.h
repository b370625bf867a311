/*
 * at_parse.h -- the one place that reads what a cellular modem says on its AT port.
 *
 * A modem's answers are hostile input like a card's: lines can be split across reads, mixed
 * with unsolicited result codes (URCs), echoed commands and noise, or never end. Everything
 * here is bounded by the caller's buffers and never trusts a length the modem states; the
 * backend (drivers/fpa_at.c) decides what to do with each line, and tests/fuzz/fuzz_at.c
 * throws arbitrary bytes at all of it.
 */
#ifndef IFPP_AT_PARSE_H
#define IFPP_AT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AT_RX_MAX 4096 /* the longest line a modem may send (a +CSIM reply for 258 bytes is ~530) */

/* Bytes received and not yet cut into lines. */
typedef struct {
    char buf[AT_RX_MAX];
    size_t len;
} at_rx;

/* What a line is, as far as the AT command protocol (3GPP TS 27.007, V.250) can tell. */
typedef enum {
    AT_LINE_OK,       /* final result: OK */
    AT_LINE_ERROR,    /* final result: ERROR */
    AT_LINE_CME,      /* final result: +CME ERROR: <err> */
    AT_LINE_CMS,      /* final result: +CMS ERROR: <err> */
    AT_LINE_ECHO,     /* our own command echoed back ("AT...") */
    AT_LINE_RESTART,  /* the modem announces a (re)start: RDY, START, ^SYSSTART, +SYSSTART */
    AT_LINE_GARBAGE,  /* bytes that are not text */
    AT_LINE_TEXT,     /* anything else: an information response or a URC */
} at_line_kind;

/* Appends n received bytes; IFPP_E_RANGE if a line would outgrow AT_RX_MAX (nothing is appended then). */
ifpp_err at_rx_feed(at_rx *rx, const void *data, size_t n);

/*
 * Takes the next complete non-empty line (ended by CR or LF) out of rx into line (NUL-terminated,
 * without its ending); IFPP_E_NOT_FOUND if no whole line is there yet, IFPP_E_RANGE if it does not fit cap.
 */
ifpp_err at_rx_line(at_rx *rx, char *line, size_t cap, size_t *n);

/* Classifies one line (as at_rx_line gave it). */
at_line_kind at_line_classify(const char *line, size_t n);

/* True if line starts with prefix (e.g. "+CSIM:"), ASCII case-insensitively. */
bool at_line_has_prefix(const char *line, size_t n, const char *prefix);

/*
 * Parses an information response `<prefix> <len>,"<hex>"` (+CSIM, +CGLA; quotes optional, hex of
 * either case): <len> must count the hex digits exactly. The bytes go to out (cap); anything
 * else is IFPP_E_APDU_MALFORMED, and IFPP_E_APDU_TOO_LONG if they do not fit.
 */
ifpp_err at_parse_hex_reply(const char *line, size_t n, const char *prefix, uint8_t *out, size_t cap,
                            size_t *out_len);

/* Parses AT+CCHO's answer, `+CCHO: <n>` or a bare `<n>` (some modems), into *session (0..2^31-1). */
ifpp_err at_parse_session_id(const char *line, size_t n, unsigned long *session);

/* A modem's USB identity as a slot names it: usb=VID:PID[:IFACE][:SERIAL]. */
typedef struct {
    unsigned vid, pid;
    int iface;        /* -1: any */
    char serial[128]; /* "": any */
} at_usb_id;

/*
 * Parses "usb=VID:PID[:IFACE][:SERIAL]" (n characters; VID and PID 4 hex digits, IFACE 0..255, SERIAL
 * 1..127 characters); IFPP_E_ARG with why naming the part that is wrong.
 */
ifpp_err at_parse_usb_id(const char *spec, size_t n, at_usb_id *id, char *why, size_t why_len);

/*
 * The USB interface number in a tty's resolved sysfs device path: the last component of the form
 * BUS-PORT[.PORT...]:CONFIG.IFACE ("/sys/devices/.../1-1.4:1.2/ttyUSB2" and ".../1-1:1.3" give 2 and 3), or -1.
 */
int at_usb_interface_of_path(const char *path);

#endif
