/* log.c -- see log.h. Deliberately tiny: stderr is captured by systemd. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static log_level log_threshold = LOG_LVL_INFO;

void log_set_level(log_level lvl) { log_threshold = lvl; }

void log_msg(log_level lvl, const char *module, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    va_list ap;

    if (lvl > log_threshold)
        return;
    /* One fprintf per line keeps concurrent writers from interleaving mid-line. */
    char line[1024];
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s: %s\n", names[lvl], module ? module : "-", line);
}
