/* optval.c -- option values read one way for the station and every backend; see optval.h. */
#include "optval.h"

#include <string.h>

bool optval_number(const char *v, size_t len, long min, long max, long *out)
{
    long n = 0;
    if (!v || !out || len == 0 || len > 9) /* nine digits cannot overflow a long */
        return false;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        n = n * 10 + (v[i] - '0');
    }
    if (n < min || n > max)
        return false;
    *out = n;
    return true;
}

bool optval_word(const char *v, size_t len, const char *w)
{
    return v && w && len == strlen(w) && strncmp(v, w, len) == 0;
}
