/*
 * fuzz_config.c -- station.conf.d's reader (agent/config.c: libconfig and the key table) on any file
 * content: a valid configuration or an error naming the file and line, never a crash. The input goes in a
 * memfd named through /proc/self/fd, so that nothing is written to disk.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libconfig 1.5's scanner drops its string buffers on some syntax errors (strbuf_append, libconfig_yylex):
 * its leak, not ours; every other leak still fails the run. */
const char *__lsan_default_suppressions(void)
{
    return "leak:libconfig.so\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static agent_config c;
    char path[64], why[1024] = "";
    if (size > 16384)
        return 0;
    int fd = memfd_create("fuzz.conf", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if (config_load(path, &c, why, sizeof why) != IFPP_OK && !strstr(why, path))
            abort(); /* every error names the file */
        if (c.n_slots > CONFIG_MAX_SLOTS)
            abort();
    }
    close(fd);
    return 0;
}
