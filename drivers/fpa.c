/* fpa.c -- the backend registry and the wrappers of fpa.h. */
#include "fpa.h"

#include <string.h>

extern const fpa_ops fpa_virtual_ops;
extern const fpa_ops fpa_pcsc_ops;

static const fpa_ops *const backends[] = {
    &fpa_virtual_ops,
    &fpa_pcsc_ops,
};

const fpa_ops *fpa_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof backends / sizeof backends[0]; i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

ifpp_err fpa_open(const char *backend, const char *target, fpa_slot *slot, char *why, size_t why_len)
{
    if (!slot || !target)
        return IFPP_E_ARG;
    memset(slot, 0, sizeof *slot);
    const fpa_ops *ops = fpa_find(backend);
    if (!ops) {
        err_why(why, why_len, "unknown FPA backend '%s' (known: virtual, pcsc)", backend ? backend : "(none)");
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
    return slot && slot->ops && slot->ops->load_bpp;
}

ifpp_err fpa_load_bpp(fpa_slot *slot, const uint8_t *bpp, size_t n, uint8_t *pir, size_t cap, size_t *pir_len)
{
    if (!fpa_can_load_bpp(slot))
        return IFPP_E_ARG;
    return slot->ops->load_bpp(slot->ctx, bpp, n, pir, cap, pir_len);
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
