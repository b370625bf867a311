/*
 * fpa_virtual.c -- the "virtual" FPA backend: the software eUICC (tests/sim/euicc_sim.h) in
 * process, one card file per slot. For the simulated line (`ifppctl demo`) and the tests;
 * it checks everything a card checks, so the session engine above cannot tell it from one.
 */
#include <stdlib.h>

#include "euicc_sim.h"
#include "fpa.h"

static ifpp_err virtual_open(const char *target, void **ctx, char *why, size_t why_len)
{
    euicc_sim *card = NULL;
    ifpp_err e = euicc_sim_open(target, &card);
    if (e != IFPP_OK) {
        err_why(why, why_len, "virtual eUICC %s: %s (no card in this slot?)", target, err_str(e));
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
