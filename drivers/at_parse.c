/*
 * at_parse.c -- cutting a modem's byte stream into lines and reading the few lines the AT
 * backend needs (see at_parse.h). Strict where the protocol is strict (a +CSIM length that
 * disagrees with its hex is malformed), lenient only where real modems differ in harmless ways
 * (quotes, hex case, a bare CCHO session number), and bounded everywhere.
 */
#include "at_parse.h"

#include <stdio.h>
#include <string.h>

ifpp_err at_rx_feed(at_rx *rx, const void *data, size_t n)
{
    if (n > sizeof rx->buf - rx->len)
        return IFPP_E_RANGE;
    memcpy(rx->buf + rx->len, data, n);
    rx->len += n;
    return IFPP_OK;
}

ifpp_err at_rx_line(at_rx *rx, char *line, size_t cap, size_t *n)
{
    {
        size_t skip = 0;
        while (skip < rx->len && (rx->buf[skip] == '\r' || rx->buf[skip] == '\n'))
            skip++;
        if (skip) {
            memmove(rx->buf, rx->buf + skip, rx->len - skip);
            rx->len -= skip;
        }
        size_t end = 0;
        while (end < rx->len && rx->buf[end] != '\r' && rx->buf[end] != '\n')
            end++;
        if (end == rx->len) {
            if (rx->len < sizeof rx->buf)
                return IFPP_E_NOT_FOUND;
            rx->len = 0; /* a "line" that never ends: dropped, reported once */
            return IFPP_E_RANGE;
        }
        if (end + 1 > cap) {
            /* drop it: the caller reports the over-long line, the stream stays in step */
            memmove(rx->buf, rx->buf + end, rx->len - end);
            rx->len -= end;
            return IFPP_E_RANGE;
        }
        memcpy(line, rx->buf, end);
        line[end] = '\0';
        memmove(rx->buf, rx->buf + end, rx->len - end);
        rx->len -= end;
        *n = end;
        return IFPP_OK;
    }
}

static char at_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

bool at_line_has_prefix(const char *line, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    if (n < p)
        return false;
    for (size_t i = 0; i < p; i++)
        if (at_upper(line[i]) != at_upper(prefix[i]))
            return false;
    return true;
}

static bool at_line_is(const char *line, size_t n, const char *word)
{
    return n == strlen(word) && at_line_has_prefix(line, n, word);
}

at_line_kind at_line_classify(const char *line, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7E)
            return AT_LINE_GARBAGE;
    if (at_line_is(line, n, "OK"))
        return AT_LINE_OK;
    if (at_line_is(line, n, "ERROR"))
        return AT_LINE_ERROR;
    if (at_line_has_prefix(line, n, "+CME ERROR:"))
        return AT_LINE_CME;
    if (at_line_has_prefix(line, n, "+CMS ERROR:"))
        return AT_LINE_CMS;
    if (at_line_has_prefix(line, n, "AT"))
        return AT_LINE_ECHO;
    if (at_line_is(line, n, "RDY") || at_line_is(line, n, "START") || at_line_has_prefix(line, n, "^SYSSTART") ||
        at_line_has_prefix(line, n, "+SYSSTART"))
        return AT_LINE_RESTART;
    return AT_LINE_TEXT;
}

static int at_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = at_upper(c);
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A decimal number of at most 9 digits at line[*i]; false if none is there. */
static bool at_number(const char *line, size_t n, size_t *i, unsigned long *v)
{
    size_t start = *i;
    *v = 0;
    while (*i < n && line[*i] >= '0' && line[*i] <= '9' && *i - start < 9)
        *v = *v * 10 + (unsigned long)(line[(*i)++] - '0');
    return *i > start && !(*i < n && line[*i] >= '0' && line[*i] <= '9');
}

static void at_spaces(const char *line, size_t n, size_t *i)
{
    while (*i < n && line[*i] == ' ')
        (*i)++;
}

ifpp_err at_parse_hex_reply(const char *line, size_t n, const char *prefix, uint8_t *out, size_t cap,
                            size_t *out_len)
{
    size_t i = strlen(prefix);
    unsigned long len;
    if (!at_line_has_prefix(line, n, prefix))
        return IFPP_E_APDU_MALFORMED;
    at_spaces(line, n, &i);
    if (!at_number(line, n, &i, &len))
        return IFPP_E_APDU_MALFORMED;
    at_spaces(line, n, &i);
    if (i >= n || line[i++] != ',')
        return IFPP_E_APDU_MALFORMED;
    at_spaces(line, n, &i);
    bool quoted = i < n && line[i] == '"';
    i += quoted;
    size_t start = i;
    while (i < n && at_hex_digit(line[i]) >= 0)
        i++;
    size_t digits = i - start;
    if (quoted && (i >= n || line[i++] != '"'))
        return IFPP_E_APDU_MALFORMED;
    at_spaces(line, n, &i);
    if (i != n || digits != len || digits % 2)
        return IFPP_E_APDU_MALFORMED;
    if (digits / 2 > cap)
        return IFPP_E_APDU_TOO_LONG;
    for (size_t k = 0; k < digits / 2; k++)
        out[k] = (uint8_t)(at_hex_digit(line[start + 2 * k]) << 4 | at_hex_digit(line[start + 2 * k + 1]));
    *out_len = digits / 2;
    return IFPP_OK;
}

ifpp_err at_parse_session_id(const char *line, size_t n, unsigned long *session)
{
    size_t i = 0;
    if (at_line_has_prefix(line, n, "+CCHO:"))
        i = 6;
    at_spaces(line, n, &i);
    if (!at_number(line, n, &i, session))
        return IFPP_E_APDU_MALFORMED;
    at_spaces(line, n, &i);
    return i == n ? IFPP_OK : IFPP_E_APDU_MALFORMED;
}

/* n hex digits at p as a number; false if any is not one. */
static bool at_hex_field(const char *p, size_t n, unsigned *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = at_hex_digit(p[i]);
        if (d < 0)
            return false;
        *v = *v << 4 | (unsigned)d;
    }
    return true;
}

ifpp_err at_parse_usb_id(const char *spec, size_t n, at_usb_id *id, char *why, size_t why_len)
{
    memset(id, 0, sizeof *id);
    id->iface = -1;
    if (n < 13 || strncmp(spec, "usb=", 4) != 0 || spec[8] != ':' || !at_hex_field(spec + 4, 4, &id->vid) ||
        !at_hex_field(spec + 9, 4, &id->pid) || (n > 13 && spec[13] != ':')) {
        err_why(why, why_len, "at: '%.*s': expected usb=VID:PID[:IFACE][:SERIAL], VID and PID 4 hex digits each",
                (int)(n > 200 ? 200 : n), spec);
        return IFPP_E_ARG;
    }
    if (n == 13)
        return IFPP_OK;
    if (n == 14) {
        err_why(why, why_len, "at: '%.*s': nothing after the last ':'", (int)n, spec);
        return IFPP_E_ARG;
    }
    const char *p = spec + 14, *end = spec + n, *colon = memchr(p, ':', (size_t)(end - p));
    size_t i = 0, ilen = colon ? (size_t)(colon - p) : (size_t)(end - p);
    unsigned long iface;
    if (ilen > 0) {
        if (!at_number(p, ilen, &i, &iface) || i != ilen || iface > 255) {
            err_why(why, why_len, "at: '%.*s': the USB interface is a number 0..255", (int)(n > 200 ? 200 : n), spec);
            return IFPP_E_ARG;
        }
        id->iface = (int)iface;
    }
    if (colon) {
        size_t slen = (size_t)(end - colon - 1);
        if (slen == 0 || slen >= sizeof id->serial || memchr(colon + 1, ',', slen)) {
            err_why(why, why_len, "at: '%.*s': the serial must be 1..%zu characters", (int)(n > 200 ? 200 : n), spec,
                    sizeof id->serial - 1);
            return IFPP_E_ARG;
        }
        memcpy(id->serial, colon + 1, slen);
    }
    return IFPP_OK;
}

int at_usb_interface_of_path(const char *path)
{
    size_t end = strlen(path);
    while (end > 0) {
        size_t start = end;
        while (start > 0 && path[start - 1] != '/')
            start--;
        /* BUS-PORT...:CONFIG.IFACE -- digits, '-', '.', one ':' */
        const char *c = memchr(path + start, ':', end - start);
        if (c && path[start] >= '0' && path[start] <= '9' && memchr(path + start, '-', (size_t)(c - path - start))) {
            const char *dot = memchr(c, '.', (size_t)(path + end - c));
            size_t i = 0, len = dot ? (size_t)(path + end - dot - 1) : 0;
            unsigned long v;
            if (dot && at_number(dot + 1, len, &i, &v) && i == len && v <= 255)
                return (int)v;
            return -1;
        }
        end = start > 0 ? start - 1 : 0;
    }
    return -1;
}
