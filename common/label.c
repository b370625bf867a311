/* label.c -- the rules of label.h. */
#include "label.h"

bool label_valid(const char *s, size_t n)
{
    if (!s || n == 0 || n > LABEL_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool dut_serial_valid(const char *s)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++)
        if (n >= DUT_SERIAL_MAX || (unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7E)
            return false;
    return n > 0;
}
