/* hex.c -- see hex.h. */
#include "hex.h"

#include <string.h>

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

ifpp_err hex_decode(const char *hex, uint8_t *out, size_t cap, size_t *outlen)
{
    if (!hex || !outlen || (!out && cap))
        return IFPP_E_ARG;
    size_t n = strlen(hex);
    if (n % 2)
        return IFPP_E_ARG;
    if (n / 2 > cap)
        return IFPP_E_RANGE;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return IFPP_E_ARG;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *outlen = n / 2;
    return IFPP_OK;
}

ifpp_err hex_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    if (!out || (!in && n) || n > (cap - 1) / 2 || cap == 0)
        return cap == 0 ? IFPP_E_ARG : IFPP_E_RANGE;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
    return IFPP_OK;
}
