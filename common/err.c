/* err.c -- strings for the ifpp_err list in err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const err_texts[] = {
#define IFPP_ERR_TEXT(name, text) text,
    IFPP_ERRORS(IFPP_ERR_TEXT)
#undef IFPP_ERR_TEXT
};

static const char *const err_names[] = {
#define IFPP_ERR_NAME(name, text) #name,
    IFPP_ERRORS(IFPP_ERR_NAME)
#undef IFPP_ERR_NAME
};

const char *err_str(ifpp_err e)
{
    if ((unsigned)e >= IFPP_ERR__COUNT)
        return "unknown error";
    return err_texts[e];
}

const char *err_name(ifpp_err e)
{
    if ((unsigned)e >= IFPP_ERR__COUNT)
        return "IFPP_E_UNKNOWN";
    return err_names[e];
}

void err_why(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    if (!why || !why_len)
        return;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}
