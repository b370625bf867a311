/*
 * fpa_pcsc.c -- the "pcsc" FPA backend: a DUT's eUICC (or a test socket) in a PC/SC reader,
 * through PCSC-lite.
 *
 * Target: "PATTERN[#N][,option=value]...": the N-th (from 0) reader whose name contains PATTERN.
 * Options:
 *   card-wait=MS      wait up to MS for a card to be inserted (SCardGetStatusChange) when the
 *                     slot opens; 0 (default) fails at once with IFPP_E_NO_CARD
 *   apdu-timeout=MS   an answer that takes longer ends the session with IFPP_E_TIMEOUT (default
 *                     30000; 0 = none). PC/SC cannot interrupt a transmit in progress: a card
 *                     that never answers is bounded by the reader driver's own timeout.
 *   ext=auto|on|off   extended-length APDUs: auto (default) uses them when the reader says it
 *                     takes more than a short APDU (SCARD_ATTR_MAXINPUT) and the card's ATR
 *                     says it takes extended Lc/Le; on trusts the configuration.
 *
 * The card is held exclusively for the whole session (no other process can interleave APDUs
 * with a BPP; another holder gets IFPP_E_BUSY). An open slot outlives its DUT and pcscd itself:
 * the reset that starts each session connects afresh when the card was swapped or the service
 * restarted, so a daemon keeps one slot per fixture for the whole shift. T=0 and T=1 both work: 61xx/6Cxx are followed
 * above (drivers/es10f.c), so this file only moves APDUs and turns PC/SC's status codes into
 * typed errors -- card removed, card reset by someone else, reader or service gone, garbage,
 * too slow -- keeping PC/SC's own words for the operator's message (last_error).
 */
#include <PCSC/reader.h>
#include <PCSC/winscard.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apdu.h"
#include "fpa.h"
#include "optval.h"

#define PCSC_DEFAULT_APDU_TIMEOUT_MS 30000L
#define PCSC_MAX_EXT_DATA 4096 /* what es10f sends in one block at most: a whole BPP segment */

typedef enum { PCSC_EXT_AUTO, PCSC_EXT_ON, PCSC_EXT_OFF } pcsc_ext;

typedef struct {
    SCARDCONTEXT ctx;
    SCARDHANDLE card;
    DWORD protocol;
    char reader[256];
    long card_wait_ms, apdu_timeout_ms;
    pcsc_ext ext;
    size_t max_nc;     /* largest command data per APDU on this reader and card */
    char last[512];    /* the transport's words about the last failure */
} pcsc_slot;

static ifpp_err pcsc_error(LONG rc)
{
    switch (rc) {
    case (LONG)SCARD_S_SUCCESS: return IFPP_OK;
    case (LONG)SCARD_W_REMOVED_CARD:
    case (LONG)SCARD_E_NO_SMARTCARD:
    case (LONG)SCARD_W_UNPOWERED_CARD:
    case (LONG)SCARD_W_UNRESPONSIVE_CARD: return IFPP_E_NO_CARD;
    case (LONG)SCARD_W_RESET_CARD: return IFPP_E_CARD_RESET;
    case (LONG)SCARD_E_SHARING_VIOLATION: return IFPP_E_BUSY;
    case (LONG)SCARD_E_TIMEOUT: return IFPP_E_TIMEOUT;
    case (LONG)SCARD_E_READER_UNAVAILABLE:
    case (LONG)SCARD_E_UNKNOWN_READER:
    case (LONG)SCARD_E_NO_READERS_AVAILABLE:
    case (LONG)SCARD_E_NO_SERVICE:
    case (LONG)SCARD_E_SERVICE_STOPPED:
    case (LONG)SCARD_E_INVALID_HANDLE: return IFPP_E_NO_READER;
    default: return IFPP_E_TRANSPORT;
    }
}

/* Records PC/SC's words for rc and returns its typed error. */
static ifpp_err pcsc_fail(pcsc_slot *s, const char *what, LONG rc)
{
    snprintf(s->last, sizeof s->last, "reader '%s': %s: %s (0x%08lX)", s->reader, what, pcsc_stringify_error(rc),
             (unsigned long)rc);
    return pcsc_error(rc);
}

static long pcsc_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static void pcsc_close(void *p)
{
    pcsc_slot *s = p;
    if (!s)
        return;
    if (s->card)
        SCardDisconnect(s->card, SCARD_LEAVE_CARD);
    if (s->ctx)
        SCardReleaseContext(s->ctx);
    free(s);
}

/* Splits the target into pattern, index and options; why names the offending part. */
static ifpp_err pcsc_parse_target(const char *target, pcsc_slot *s, char *pattern, size_t cap, unsigned long *index,
                                  char *why, size_t why_len)
{
    const char *comma = strchr(target, ',');
    size_t head = comma ? (size_t)(comma - target) : strlen(target);
    const char *hash = memchr(target, '#', head);
    size_t plen = hash ? (size_t)(hash - target) : head;
    *index = 0;
    if (plen == 0 || plen >= cap) {
        err_why(why, why_len, "pcsc: '%s': the reader pattern must be 1..%zu characters", target, cap - 1);
        return IFPP_E_ARG;
    }
    memcpy(pattern, target, plen);
    pattern[plen] = '\0';
    if (hash) {
        long n;
        if (!optval_number(hash + 1, head - plen - 1, 0, 255, &n)) {
            err_why(why, why_len, "pcsc: '%s': the index after '#' must be a number 0..255", target);
            return IFPP_E_ARG;
        }
        *index = (unsigned long)n;
    }
    s->apdu_timeout_ms = PCSC_DEFAULT_APDU_TIMEOUT_MS;
    for (const char *o = comma; o; o = strchr(o + 1, ',')) {
        const char *name = o + 1, *end = strchr(name, ','), *eq;
        size_t len = end ? (size_t)(end - name) : strlen(name);
        eq = memchr(name, '=', len);
        size_t nlen = eq ? (size_t)(eq - name) : len, vlen = eq ? len - nlen - 1 : 0;
        const char *v = eq ? eq + 1 : "";
        bool ok = eq != NULL;
        if (ok && nlen == 9 && !strncmp(name, "card-wait", 9))
            ok = optval_number(v, vlen, 0, 3600000, &s->card_wait_ms);
        else if (ok && nlen == 12 && !strncmp(name, "apdu-timeout", 12))
            ok = optval_number(v, vlen, 0, 3600000, &s->apdu_timeout_ms);
        else if (ok && nlen == 3 && !strncmp(name, "ext", 3)) {
            if (vlen == 4 && !strncmp(v, "auto", 4))
                s->ext = PCSC_EXT_AUTO;
            else if (vlen == 2 && !strncmp(v, "on", 2))
                s->ext = PCSC_EXT_ON;
            else if (vlen == 3 && !strncmp(v, "off", 3))
                s->ext = PCSC_EXT_OFF;
            else
                ok = false;
        } else {
            ok = false;
        }
        if (!ok) {
            err_why(why, why_len,
                    "pcsc: '%s': option '%.*s' not understood (card-wait=MS, apdu-timeout=MS, ext=auto|on|off)",
                    target, (int)len, name);
            return IFPP_E_ARG;
        }
    }
    return IFPP_OK;
}

/* Waits up to timeout_ms until the reader holds a card (present) or is empty (!present), as PC/SC reports it. */
static LONG pcsc_wait_state(pcsc_slot *s, bool present, long timeout_ms)
{
    SCARD_READERSTATE rs = {.szReader = s->reader, .dwCurrentState = SCARD_STATE_UNAWARE};
    long deadline = pcsc_now_ms() + timeout_ms;
    for (;;) {
        LONG rc = SCardGetStatusChange(s->ctx, 0, &rs, 1);
        if (rc != SCARD_S_SUCCESS && rc != (LONG)SCARD_E_TIMEOUT) /* pcsc-lite: TIMEOUT when nothing changed */
            return rc;
        bool there = (rs.dwEventState & SCARD_STATE_PRESENT) && !(rs.dwEventState & SCARD_STATE_MUTE);
        if (present ? there : (rs.dwEventState & SCARD_STATE_EMPTY) != 0)
            return SCARD_S_SUCCESS;
        long left = deadline - pcsc_now_ms();
        if (left <= 0)
            return present ? SCARD_E_NO_SMARTCARD : SCARD_E_TIMEOUT;
        rs.dwCurrentState = rs.dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
        rc = SCardGetStatusChange(s->ctx, (DWORD)left, &rs, 1);
        if (rc != SCARD_S_SUCCESS && rc != (LONG)SCARD_E_TIMEOUT)
            return rc;
    }
}

/* How much command data one APDU may carry: short, unless reader and card (or ext=on) allow more. */
static void pcsc_probe_extended(pcsc_slot *s)
{
    s->max_nc = APDU_SHORT_MAX_LC;
    if (s->ext == PCSC_EXT_OFF)
        return;
    if (s->ext == PCSC_EXT_ON) {
        s->max_nc = PCSC_MAX_EXT_DATA;
        return;
    }
    uint8_t attr[8];
    DWORD an = sizeof attr;
    uint32_t max_in = 0;
    if (SCardGetAttrib(s->card, SCARD_ATTR_MAXINPUT, attr, &an) == SCARD_S_SUCCESS && an >= 4)
        memcpy(&max_in, attr, 4); /* host order, as the IFD handler wrote it */
    char name[256];
    DWORD name_len = sizeof name, state, proto;
    BYTE atr[MAX_ATR_SIZE];
    DWORD atr_len = sizeof atr;
    bool card_ext = false;
    if (SCardStatus(s->card, name, &name_len, &state, &proto, atr, &atr_len) != SCARD_S_SUCCESS ||
        apdu_atr_extended_length(atr, atr_len, &card_ext) != IFPP_OK)
        card_ext = false;
    /* the reader's figure covers the whole command: header, extended Lc, data, Le */
    if (card_ext && max_in > 4 + 3 + APDU_SHORT_MAX_LC + 3)
        s->max_nc = max_in - 4 - 3 - 3 > PCSC_MAX_EXT_DATA ? PCSC_MAX_EXT_DATA : max_in - 4 - 3 - 3;
}

static ifpp_err pcsc_open(const char *target, void **out, char *why, size_t why_len)
{
    char pattern[256];
    unsigned long index = 0;
    pcsc_slot *s = calloc(1, sizeof *s);
    if (!s)
        return IFPP_E_NOMEM;
    ifpp_err e = pcsc_parse_target(target, s, pattern, sizeof pattern, &index, why, why_len);
    if (e != IFPP_OK) {
        pcsc_close(s);
        return e;
    }
    LONG rc = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &s->ctx);
    char *names = NULL;
    DWORD n = SCARD_AUTOALLOCATE;
    if (rc == SCARD_S_SUCCESS)
        rc = SCardListReaders(s->ctx, NULL, (LPSTR)&names, &n);
    if (rc != SCARD_S_SUCCESS) {
        err_why(why, why_len, "pcsc: no PC/SC service or no reader at all (%s)", pcsc_stringify_error(rc));
        pcsc_close(s);
        return IFPP_E_NO_READER;
    }
    unsigned long seen = 0;
    for (const char *r = names; r && *r; r += strlen(r) + 1) {
        if (strstr(r, pattern) && seen++ == index) {
            snprintf(s->reader, sizeof s->reader, "%s", r);
            break;
        }
    }
    SCardFreeMemory(s->ctx, names);
    if (!s->reader[0]) {
        err_why(why, why_len, "pcsc: no reader matches '%s' (index %lu; %lu match)", pattern, index, seen);
        pcsc_close(s);
        return IFPP_E_NO_READER;
    }
    if (s->card_wait_ms > 0 && (rc = pcsc_wait_state(s, true, s->card_wait_ms)) != SCARD_S_SUCCESS) {
        err_why(why, why_len, "pcsc: reader '%s': no card within %ld ms (%s)", s->reader, s->card_wait_ms,
                pcsc_stringify_error(rc));
        pcsc_close(s);
        return pcsc_error(rc);
    }
    /* exclusive for the whole session: nothing may interleave with a BPP */
    rc = SCardConnect(s->ctx, s->reader, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &s->card,
                      &s->protocol);
    if (rc != SCARD_S_SUCCESS) {
        err_why(why, why_len, "pcsc: reader '%s': %s", s->reader, pcsc_stringify_error(rc));
        s->card = 0;
        pcsc_close(s);
        return pcsc_error(rc);
    }
    pcsc_probe_extended(s);
    *out = s;
    return IFPP_OK;
}

/* True for PC/SC codes after which the handle (or the context) is of no use any more. */
static bool pcsc_handle_lost(LONG rc)
{
    return rc == (LONG)SCARD_W_REMOVED_CARD || rc == (LONG)SCARD_W_RESET_CARD || rc == (LONG)SCARD_E_INVALID_HANDLE ||
           rc == (LONG)SCARD_E_NO_SMARTCARD || rc == (LONG)SCARD_E_NO_SERVICE ||
           rc == (LONG)SCARD_E_SERVICE_STOPPED || rc == (LONG)SCARD_E_READER_UNAVAILABLE ||
           rc == (LONG)SCARD_E_NOT_TRANSACTED;
}

/*
 * A slot outlives its DUT, and even pcscd: connect afresh to whatever card is in the reader now,
 * with a new context if the service went away and came back.
 */
static LONG pcsc_connect_again(pcsc_slot *s)
{
    if (s->card)
        SCardDisconnect(s->card, SCARD_LEAVE_CARD);
    s->card = 0;
    LONG rc = SCARD_E_INVALID_HANDLE;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt > 0 || !s->ctx || SCardIsValidContext(s->ctx) != SCARD_S_SUCCESS) {
            if (s->ctx)
                SCardReleaseContext(s->ctx);
            s->ctx = 0;
            if ((rc = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &s->ctx)) != SCARD_S_SUCCESS) {
                s->ctx = 0;
                return rc;
            }
        }
        if (s->card_wait_ms > 0 && (rc = pcsc_wait_state(s, true, s->card_wait_ms)) != SCARD_S_SUCCESS && !pcsc_handle_lost(rc))
            return rc;
        rc = SCardConnect(s->ctx, s->reader, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &s->card,
                          &s->protocol);
        if (rc == SCARD_S_SUCCESS) {
            pcsc_probe_extended(s); /* another card may take other lengths */
            return rc;
        }
        s->card = 0;
        if (rc != (LONG)SCARD_E_NO_SERVICE && rc != (LONG)SCARD_E_SERVICE_STOPPED &&
            rc != (LONG)SCARD_E_INVALID_HANDLE)
            return rc; /* the context was fine: the reader or the card said no */
    }
    return rc;
}

static ifpp_err pcsc_reset(void *p, uint8_t *atr, size_t cap, size_t *atr_len)
{
    pcsc_slot *s = p;
    LONG rc = s->card ? SCardReconnect(s->card, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                                       SCARD_RESET_CARD, &s->protocol)
                      : (LONG)SCARD_E_INVALID_HANDLE;
    if (rc != SCARD_S_SUCCESS && pcsc_handle_lost(rc))
        rc = pcsc_connect_again(s); /* the DUT was swapped, or pcscd restarted, since the last session */
    if (rc != SCARD_S_SUCCESS)
        return pcsc_fail(s, "reset", rc);
    char name[256];
    DWORD name_len = sizeof name, state, proto;
    BYTE buf[MAX_ATR_SIZE];
    DWORD n = sizeof buf;
    rc = SCardStatus(s->card, name, &name_len, &state, &proto, buf, &n);
    if (rc != SCARD_S_SUCCESS)
        return pcsc_fail(s, "status after reset", rc);
    if (n > cap)
        return IFPP_E_RANGE;
    memcpy(atr, buf, n);
    *atr_len = n;
    return IFPP_OK;
}

static ifpp_err pcsc_transmit(void *p, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *resp_len)
{
    pcsc_slot *s = p;
    DWORD rl = cap > 65538 ? 65538 : (DWORD)cap;
    const SCARD_IO_REQUEST *pci = s->protocol == SCARD_PROTOCOL_T1 ? SCARD_PCI_T1 : SCARD_PCI_T0;
    long t0 = pcsc_now_ms();
    LONG rc = SCardTransmit(s->card, pci, cmd, (DWORD)n, NULL, resp, &rl);
    long took = pcsc_now_ms() - t0;
    if (rc != SCARD_S_SUCCESS)
        return pcsc_fail(s, "transmit", rc);
    if (s->apdu_timeout_ms > 0 && took > s->apdu_timeout_ms) {
        snprintf(s->last, sizeof s->last, "reader '%s': the eUICC took %ld ms to answer (apdu-timeout=%ld)", s->reader,
                 took, s->apdu_timeout_ms);
        return IFPP_E_TIMEOUT;
    }
    if (rl < 2) {
        snprintf(s->last, sizeof s->last, "reader '%s': the card answered %lu byte(s), not even a status word",
                 s->reader, (unsigned long)rl);
        return IFPP_E_APDU_MALFORMED;
    }
    *resp_len = rl;
    return IFPP_OK;
}

static ifpp_err pcsc_wait_card_op(void *p, bool present, long timeout_ms)
{
    pcsc_slot *s = p;
    LONG rc = pcsc_wait_state(s, present, timeout_ms);
    if (rc == SCARD_S_SUCCESS)
        return IFPP_OK;
    if (rc == (LONG)SCARD_E_NO_SMARTCARD || rc == (LONG)SCARD_E_TIMEOUT) {
        snprintf(s->last, sizeof s->last, "reader '%s': %s after %ld ms", s->reader,
                 present ? "no card" : "the card is still in the reader", timeout_ms);
        return IFPP_E_TIMEOUT;
    }
    return pcsc_fail(s, present ? "waiting for a card" : "waiting for the card to go", rc);
}

static size_t pcsc_max_command_data(void *p)
{
    return ((pcsc_slot *)p)->max_nc;
}

static const char *pcsc_last_error(void *p)
{
    return ((pcsc_slot *)p)->last;
}

const fpa_ops fpa_pcsc_ops = {
    .name = "pcsc",
    .open = pcsc_open,
    .close = pcsc_close,
    .reset = pcsc_reset,
    .transmit = pcsc_transmit,
    .max_command_data = pcsc_max_command_data,
    .last_error = pcsc_last_error,
    .wait_card = pcsc_wait_card_op,
};
