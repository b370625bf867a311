/*
 * fpa.c -- the backend registry and the wrappers of fpa.h.
 *
 * The real backends are built in as the build chose them (IFPP_WITH_PCSC, IFPP_WITH_AT,
 * IFPP_WITH_USB), so that a backend's library is linked only where it is built; others (the
 * simulator's `virtual` backend, for tests and line rehearsal) register at start-up.
 */
#include "fpa.h"

#include <stdio.h>
#include <string.h>

#include "apdu.h"

#ifdef IFPP_WITH_PCSC
extern const fpa_ops fpa_pcsc_ops;
#endif
#ifdef IFPP_WITH_AT
extern const fpa_ops fpa_at_ops;
#endif
#ifdef IFPP_WITH_USB
extern const fpa_ops fpa_usb_ops;
#endif

static const fpa_ops *const builtin[] = {
#ifdef IFPP_WITH_PCSC
    &fpa_pcsc_ops,
#endif
#ifdef IFPP_WITH_AT
    &fpa_at_ops,
#endif
#ifdef IFPP_WITH_USB
    &fpa_usb_ops,
#endif
    NULL, /* keeps the array non-empty when no backend is built in */
};

#define FPA_MAX_REGISTERED 8
static const fpa_ops *registered[FPA_MAX_REGISTERED];
static size_t n_registered;

ifpp_err fpa_register(const fpa_ops *ops)
{
    if (!ops || !ops->name || !ops->open || !ops->close || !ops->reset || !ops->transmit)
        return IFPP_E_ARG;
    const fpa_ops *have = fpa_find(ops->name);
    if (have)
        return have == ops ? IFPP_OK : IFPP_E_ARG;
    if (n_registered == FPA_MAX_REGISTERED)
        return IFPP_E_RANGE;
    registered[n_registered++] = ops;
    return IFPP_OK;
}

const fpa_ops *fpa_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof builtin / sizeof builtin[0]; i++)
        if (builtin[i] && strcmp(builtin[i]->name, name) == 0)
            return builtin[i];
    for (size_t i = 0; name && i < n_registered; i++)
        if (strcmp(registered[i]->name, name) == 0)
            return registered[i];
    return NULL;
}

size_t fpa_backend_names(char *out, size_t cap)
{
    size_t n = 0, len = 0;
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0] + n_registered; i++) {
        const fpa_ops *o = i < sizeof builtin / sizeof builtin[0] ? builtin[i] : registered[i - sizeof builtin / sizeof builtin[0]];
        if (!o)
            continue;
        if (cap > len)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", n ? ", " : "", o->name);
        n++;
    }
    return n;
}

ifpp_err fpa_open(const char *backend, const char *target, fpa_slot *slot, char *why, size_t why_len)
{
    if (!slot || !target)
        return IFPP_E_ARG;
    memset(slot, 0, sizeof *slot);
    const fpa_ops *ops = fpa_find(backend);
    if (!ops) {
        char known[128];
        fpa_backend_names(known, sizeof known);
        err_why(why, why_len, "unknown FPA backend '%s' (built in: %s)", backend ? backend : "(none)",
                *known ? known : "none");
        return IFPP_E_ARG;
    }
    ifpp_err e = ops->open(target, &slot->ctx, why, why_len);
    if (e == IFPP_OK)
        slot->ops = ops;
    return e;
}

void fpa_close(fpa_slot *slot)
{
    if (slot && slot->ops)
        slot->ops->close(slot->ctx);
    if (slot)
        memset(slot, 0, sizeof *slot);
}

ifpp_err fpa_reset(fpa_slot *slot, uint8_t *atr, size_t cap, size_t *atr_len)
{
    if (!slot || !slot->ops)
        return IFPP_E_ARG;
    return slot->ops->reset(slot->ctx, atr, cap, atr_len);
}

ifpp_err fpa_transmit(void *s, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *resp_len)
{
    fpa_slot *slot = s;
    if (!slot || !slot->ops)
        return IFPP_E_ARG;
    return slot->ops->transmit(slot->ctx, cmd, n, resp, cap, resp_len);
}

bool fpa_can_load_bpp(const fpa_slot *slot)
{
    return slot && slot->ops && slot->ops->load_bpp && (!slot->ops->sequences_bpp || slot->ops->sequences_bpp(slot->ctx));
}

ifpp_err fpa_load_bpp(fpa_slot *slot, fpa_bpp_job *job, uint8_t *pir, size_t cap, size_t *pir_len)
{
    if (!fpa_can_load_bpp(slot))
        return IFPP_E_ARG;
    return slot->ops->load_bpp(slot->ctx, job, pir, cap, pir_len);
}

size_t fpa_max_command_data(const fpa_slot *slot)
{
    size_t n = slot && slot->ops && slot->ops->max_command_data ? slot->ops->max_command_data(slot->ctx) : 0;
    return n > 255 ? n : 255;
}

const char *fpa_last_error(const fpa_slot *slot)
{
    const char *s = slot && slot->ops && slot->ops->last_error ? slot->ops->last_error(slot->ctx) : NULL;
    return s ? s : "";
}

/* One plain APDU on the slot: its data into resp, its status word into *sw. */
static ifpp_err fpa_plain_apdu(fpa_slot *slot, const apdu_cmd *cmd, uint8_t *resp, size_t cap, size_t *dl, uint16_t *sw)
{
    uint8_t raw[4 + 1 + APDU_SHORT_MAX_LC + 1];
    size_t rn;
    ifpp_err e;
    if ((e = apdu_encode(cmd, false, raw, sizeof raw, &rn)) != IFPP_OK ||
        (e = fpa_transmit(slot, raw, rn, resp, cap, &rn)) != IFPP_OK)
        return e;
    return apdu_split_response(resp, rn, dl, sw);
}

ifpp_err fpa_open_channel(fpa_slot *slot, const uint8_t *aid, size_t aid_len, unsigned *channel, uint16_t *sw)
{
    uint8_t resp[258];
    size_t dl;
    ifpp_err e;
    if (!slot || !slot->ops || !aid || aid_len < 5 || aid_len > 16 || !channel || !sw)
        return IFPP_E_ARG;
    *sw = 0;
    /* IFPP_E_NOT_FOUND: the backend has no way of its own on this target (a modem without AT+CCHO) */
    if (slot->ops->open_channel && (e = slot->ops->open_channel(slot->ctx, aid, aid_len, channel)) != IFPP_E_NOT_FOUND)
        return e;
    apdu_cmd open_ch = {.cla = 0x00, .ins = APDU_INS_MANAGE_CHANNEL, .p1 = 0x00, .p2 = 0x00, .ne = 1};
    if ((e = fpa_plain_apdu(slot, &open_ch, resp, sizeof resp, &dl, sw)) != IFPP_OK)
        return e;
    if (*sw != SW_OK)
        return IFPP_E_IO;
    if (dl != 1 || resp[0] == 0 || resp[0] > APDU_MAX_CHANNEL)
        return IFPP_E_APDU_CHANNEL; /* the card named no channel we can address */
    *channel = resp[0];
    if ((e = fpa_select(slot, *channel, aid, aid_len, sw)) != IFPP_OK)
        fpa_close_channel(slot, *channel);
    return e;
}

ifpp_err fpa_select(fpa_slot *slot, unsigned ch, const uint8_t *aid, size_t aid_len, uint16_t *sw)
{
    uint8_t resp[258];
    size_t dl;
    ifpp_err e;
    if (!slot || !aid || aid_len < 5 || aid_len > 16 || !sw)
        return IFPP_E_ARG;
    *sw = 0;
    apdu_cmd sel = {.ins = APDU_INS_SELECT, .p1 = 0x04, .p2 = 0x0C, .data = aid, .nc = aid_len};
    if ((e = apdu_cla_for_channel(0x00, ch, &sel.cla)) == IFPP_OK &&
        (e = fpa_plain_apdu(slot, &sel, resp, sizeof resp, &dl, sw)) == IFPP_OK && *sw != SW_OK)
        e = IFPP_E_IO;
    return e;
}

void fpa_close_channel(fpa_slot *slot, unsigned channel)
{
    uint8_t resp[8];
    size_t dl;
    uint16_t sw;
    if (!slot || !slot->ops || channel == 0 || channel > APDU_MAX_CHANNEL)
        return;
    if (slot->ops->close_channel && slot->ops->close_channel(slot->ctx, channel) != IFPP_E_NOT_FOUND)
        return;
    apdu_cmd close_ch = {.cla = 0x00, .ins = APDU_INS_MANAGE_CHANNEL, .p1 = 0x80, .p2 = (uint8_t)channel};
    (void)fpa_plain_apdu(slot, &close_ch, resp, sizeof resp, &dl, &sw);
}

ifpp_err fpa_wait_card(fpa_slot *slot, bool present, long timeout_ms)
{
    if (!slot || !slot->ops || !slot->ops->wait_card || timeout_ms < 0)
        return IFPP_E_ARG;
    return slot->ops->wait_card(slot->ctx, present, timeout_ms);
}
