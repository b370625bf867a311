/*
 * fuzz_apdu.c -- libFuzzer target for the command APDU parser (drivers/apdu.c), the
 * parser the software eUICC (and any card-side code) runs on what a station sends.
 * Property: whatever parses, re-encodes and parses again to the same command. The same input
 * also goes through the ATR reader (apdu_atr_extended_length), which a reader hands us from
 * whatever card sits in it.
 */
#include <stdlib.h>
#include <string.h>

#include "apdu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apdu_cmd c, back;
    static uint8_t out[APDU_CMD_MAX];
    size_t n;
    bool ext;

    (void)apdu_atr_extended_length(data, size, &ext);

    if (apdu_parse(data, size, &c) != IFPP_OK)
        return 0;
    if (apdu_encode(&c, true, out, sizeof out, &n) != IFPP_OK)
        abort();
    if (apdu_parse(out, n, &back) != IFPP_OK)
        abort();
    if (back.cla != c.cla || back.ins != c.ins || back.p1 != c.p1 || back.p2 != c.p2 || back.nc != c.nc ||
        back.ne != c.ne || (c.nc && memcmp(back.data, c.data, c.nc) != 0))
        abort();
    (void)apdu_channel_of_cla(c.cla);
    return 0;
}
