/* alog.c -- the daemon's field-carrying log lines (see alog.h). */
#include "alog.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

static bool alog_journal, alog_debug;

void alog_init(void)
{
    /* JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected stderr to (systemd.exec(5)). */
    const char *js = getenv("JOURNAL_STREAM");
    alog_debug = getenv("IFPP_AGENT_DEBUG") != NULL; /* each session step of each slot: verbose */
    struct stat st;
    unsigned long long dev, ino;
    alog_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                   (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static const char *alog_or_empty(const char *s)
{
    return s ? s : "";
}

void alog(log_level lvl, const alog_fields *f, const char *fmt, ...)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    static const char *const name[] = {"error", "warning", "info", "debug"};
    char msg[1024], line[1400];
    if (lvl >= LOG_LVL_DEBUG && !alog_debug)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    alog_fields none = {0};
    if (!f)
        f = &none;
    if (lvl > LOG_LVL_DEBUG)
        lvl = LOG_LVL_DEBUG;
    if (alog_journal) {
        sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", prio[lvl], "SYSLOG_IDENTIFIER=ifpp-agent", "IFPP_SLOT=%s",
                        alog_or_empty(f->slot), "IFPP_SERIAL=%s", alog_or_empty(f->serial), "IFPP_EID=%s",
                        alog_or_empty(f->eid), "IFPP_STEP=%s", alog_or_empty(f->step), NULL);
        return;
    }
    int n = snprintf(line, sizeof line, "ifpp-agent: %s:%s%s%s%s%s%s%s%s %s\n", name[lvl],
                     f->slot && *f->slot ? " slot=" : "", alog_or_empty(f->slot),
                     f->serial && *f->serial ? " serial=" : "", alog_or_empty(f->serial),
                     f->eid && *f->eid ? " eid=" : "", alog_or_empty(f->eid), f->step && *f->step ? " step=" : "",
                     alog_or_empty(f->step), msg);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    if (write(STDERR_FILENO, line, (size_t)n) < 0) { /* nowhere left to say it */
    }
}
