/* iccid.c -- ICCID digits, Luhn and the EF.ICCID nibble order; see iccid.h. */
#include "iccid.h"

#include <stdbool.h>
#include <string.h>

char iccid_luhn_digit(const char *digits, size_t n)
{
    unsigned sum = 0;
    if (!digits)
        return 0;
    /* From the right, every second digit (starting with the last payload digit) is doubled. */
    for (size_t i = 0; i < n; i++) {
        char ch = digits[n - 1 - i];
        if (ch < '0' || ch > '9')
            return 0;
        unsigned d = (unsigned)(ch - '0');
        if (i % 2 == 0)
            d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
    }
    return (char)('0' + (10 - sum % 10) % 10);
}

ifpp_err iccid_from_digits(const char *digits, uint8_t ef[ICCID_LEN])
{
    size_t n = digits ? strlen(digits) : 0;
    if (!digits || !ef)
        return IFPP_E_ARG;
    if ((n != 19 && n != 20) || iccid_luhn_digit(digits, n - 1) != digits[n - 1] || strncmp(digits, "89", 2) != 0)
        return IFPP_E_RANGE;
    for (size_t i = 0; i < ICCID_LEN; i++) {
        unsigned lo = (unsigned)(digits[2 * i] - '0');
        unsigned hi = 2 * i + 1 < n ? (unsigned)(digits[2 * i + 1] - '0') : 0xF;
        ef[i] = (uint8_t)(hi << 4 | lo);
    }
    return IFPP_OK;
}

ifpp_err iccid_to_text(const uint8_t ef[ICCID_LEN], char text[ICCID_TEXT_LEN])
{
    static const char nib[] = "0123456789ABCDEF";
    size_t n = 0;
    bool ok = true;
    if (!ef || !text)
        return IFPP_E_ARG;
    for (size_t i = 0; i < ICCID_LEN; i++) {
        unsigned lo = ef[i] & 0xF, hi = ef[i] >> 4;
        text[n++] = nib[lo];
        text[n++] = nib[hi];
        /* Only the very last nibble may be the filler, and only after 19 digits. */
        if (lo > 9 || (hi > 9 && !(hi == 0xF && i == ICCID_LEN - 1)))
            ok = false;
    }
    text[n] = '\0';
    if (ok && text[19] == 'F')
        text[19] = '\0';
    size_t len = strlen(text);
    if (ok && (strncmp(text, "89", 2) != 0 || iccid_luhn_digit(text, len - 1) != text[len - 1]))
        ok = false;
    return ok ? IFPP_OK : IFPP_E_RANGE;
}

void iccid_swap_nibbles(const uint8_t in[ICCID_LEN], uint8_t out[ICCID_LEN])
{
    for (size_t i = 0; i < ICCID_LEN; i++)
        out[i] = (uint8_t)(in[i] << 4 | in[i] >> 4);
}
