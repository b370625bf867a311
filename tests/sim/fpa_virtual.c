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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "euicc_sim.h"
#include "fsutil.h"

static ifpp_err virtual_open(const char *target, void **ctx, char *why, size_t why_len)
{
    euicc_sim *card = NULL;
    const char *comma = strchr(target, ',');
    if (comma) { /* a card file answers at once: no transport options have a meaning here */
        err_why(why, why_len, "virtual: option '%s' not understood (a virtual slot is virtual:CARD-FILE)", comma + 1);
        return IFPP_E_ARG;
    }
    ifpp_err e = euicc_sim_open(target, &card);
    if (e != IFPP_OK) {
        /* the card file's own trouble (missing, a FIFO, a link, a directory) names itself; else its content */
        char cause[300] = "";
        int fd;
        size_t size;
        if (fs_open_regular(target, &fd, &size, cause, sizeof cause) == IFPP_OK) {
            close(fd);
            snprintf(cause, sizeof cause, "%s: not a software eUICC's card file (%s)", target, err_str(e));
        }
        err_why(why, why_len, "virtual eUICC: %s", cause);
        return e;
    }
    *ctx = card;
    return IFPP_OK;
}

static void virtual_close(void *ctx)
{
    euicc_sim_close(ctx);
}

static ifpp_err virtual_reset(void *ctx, uint8_t *atr, size_t cap, size_t *atr_len)
{
    return euicc_sim_reset(ctx, atr, cap, atr_len);
}

static ifpp_err virtual_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    return euicc_sim_transmit(ctx, cmd, n, resp, cap, rn);
}

const fpa_ops fpa_virtual_ops = {
    .name = "virtual",
    .open = virtual_open,
    .close = virtual_close,
    .reset = virtual_reset,
    .transmit = virtual_transmit,
};

ifpp_err fpa_virtual_register(void)
{
    return fpa_register(&fpa_virtual_ops);
}

__attribute__((constructor)) static void fpa_virtual_autoregister(void)
{
    (void)fpa_virtual_register();
}
