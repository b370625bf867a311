/*
 * fpa_virtual.c -- the "virtual" FPA backend: the software eUICC (euicc_sim.h) in process, one
 * card file per slot. For the simulated line (`ifpp-rehearse demo`), line rehearsal and the
 * tests; it checks everything a card checks, so the session engine above cannot tell it from
 * one. It lives under tests/ because it is the simulator: the product never links it.
 *
 * A binary that links this file has the backend registered before main() (a constructor), so
 * tests that open "virtual:CARD-FILE" slots need no set-up call; the rehearsal tool calls
 * fpa_virtual_register() explicitly as well.
 */
#include "fpa_virtual.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "euicc_sim.h"
#include "fsutil.h"
#include "optval.h"

/*
 * A slot on a card file. Options: for rehearsing a clumsy operator, pull-at-apdu=N takes the card
 * out after its N-th APDU (every later exchange and reset finds no card), so that a test can pull a
 * card at a chosen point of a session, deterministically, through any client of the station;
 * conn=MODE sets how the card answers the EUICCF05 connectivity test (euicc_sim_conn_mode).
 */
typedef struct {
    euicc_sim *card;
    long pull_at;   /* 0: never */
    long apdus;
    char error[160];
} virtual_slot;

static ifpp_err virtual_open(const char *target, void **ctx, char *why, size_t why_len)
{
    euicc_sim *card = NULL;
    char path[4096];
    long pull_at = 0;
    const char *comma = strchr(target, ',');
    size_t plen = comma ? (size_t)(comma - target) : strlen(target);
    if (plen >= sizeof path) {
        err_why(why, why_len, "virtual: card file name too long");
        return IFPP_E_RANGE;
    }
    memcpy(path, target, plen);
    path[plen] = '\0';
    euicc_sim_conn_mode conn = EUICC_SIM_CONN_OK;
    for (const char *v = comma ? comma + 1 : NULL; v; v = strchr(v, ',') ? strchr(v, ',') + 1 : NULL) {
        static const char key[] = "pull-at-apdu=", ckey[] = "conn=";
        size_t vlen = strchr(v, ',') ? (size_t)(strchr(v, ',') - v) : strlen(v);
        bool ok = false;
        if (vlen > sizeof key - 1 && strncmp(v, key, sizeof key - 1) == 0)
            ok = optval_number(v + sizeof key - 1, vlen - (sizeof key - 1), 1, 1000000, &pull_at);
        else if (vlen > sizeof ckey - 1 && strncmp(v, ckey, sizeof ckey - 1) == 0) /* EUICCF05 behaviour */
            ok = euicc_sim_conn_mode_parse(v + sizeof ckey - 1, vlen - (sizeof ckey - 1), &conn);
        if (!ok) {
            err_why(why, why_len, "virtual: option '%.*s' not understood (virtual:CARD-FILE[,pull-at-apdu=N][,conn=MODE],"
                    " N 1..1000000, MODE ok|absent|unknown|no-network|attach-rejected|bad-signature|wrong-iccid|"
                    "wrong-nonce|left-enabled|overlong)", (int)vlen, v);
            return IFPP_E_ARG;
        }
    }
    ifpp_err e = euicc_sim_open(path, &card);
    if (e != IFPP_OK) {
        /* the card file's own trouble (missing, a FIFO, a link, a directory) names itself; else its content */
        char cause[4400] = "";
        int fd;
        size_t size;
        if (fs_open_regular(path, &fd, &size, cause, sizeof cause) == IFPP_OK) {
            close(fd);
            snprintf(cause, sizeof cause, "%s: not a software eUICC's card file (%s)", path, err_str(e));
        }
        err_why(why, why_len, "virtual eUICC: %s", cause);
        return e;
    }
    virtual_slot *v = calloc(1, sizeof *v);
    if (!v) {
        euicc_sim_close(card);
        return IFPP_E_NOMEM;
    }
    v->card = card;
    v->pull_at = pull_at;
    euicc_sim_set_conn_test(card, conn);
    *ctx = v;
    return IFPP_OK;
}

/* True once the rehearsal pulled the card (pull-at-apdu): the slot is empty from then on. */
static bool virtual_pulled(virtual_slot *v)
{
    if (!v->pull_at || v->apdus < v->pull_at)
        return false;
    snprintf(v->error, sizeof v->error, "virtual: card pulled after APDU %ld (pull-at-apdu)", v->pull_at);
    return true;
}

static void virtual_close(void *ctx)
{
    virtual_slot *v = ctx;
    euicc_sim_close(v->card);
    free(v);
}

static ifpp_err virtual_reset(void *ctx, uint8_t *atr, size_t cap, size_t *atr_len)
{
    virtual_slot *v = ctx;
    return virtual_pulled(v) ? IFPP_E_NO_CARD : euicc_sim_reset(v->card, atr, cap, atr_len);
}

static ifpp_err virtual_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    virtual_slot *v = ctx;
    if (virtual_pulled(v))
        return IFPP_E_NO_CARD;
    v->apdus++;
    return euicc_sim_transmit(v->card, cmd, n, resp, cap, rn);
}

static const char *virtual_last_error(void *ctx)
{
    return ((virtual_slot *)ctx)->error;
}

const fpa_ops fpa_virtual_ops = {
    .name = "virtual",
    .open = virtual_open,
    .close = virtual_close,
    .reset = virtual_reset,
    .transmit = virtual_transmit,
    .last_error = virtual_last_error,
};

ifpp_err fpa_virtual_register(void)
{
    return fpa_register(&fpa_virtual_ops);
}

__attribute__((constructor)) static void fpa_virtual_autoregister(void)
{
    (void)fpa_virtual_register();
}
