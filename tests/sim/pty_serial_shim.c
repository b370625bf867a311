/*
 * pty_serial_shim.c -- lets libserialport open the fake modem's pty, in test binaries only.
 *
 * libserialport 0.1.x opens only ports it finds under /sys/class/tty (a pty has no entry there)
 * and reads the modem-control lines with TIOCMGET (a pty has none: ENOTTY), so on a pty sp_open()
 * fails before a byte moves. A USB modem's port has both. This file, linked into a test
 * executable, interposes the libc calls involved, for /dev/pts/N only: __lxstat (or lstat)/readlink
 * give the pty a sysfs identity (a virtual tty, as libserialport would see a native port), and
 * TIOCMGET/TIOCMSET/TIOCMBIS/TIOCMBIC keep DTR/RTS in a table instead of failing (CTS, DSR and
 * CD read as asserted, as a modem holding its lines up). Everything else -- termios, reads,
 * writes, waits and their timeouts -- is libserialport's own code on the real pty.
 * No product binary links it (tests/run.sh checks the symbols).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define SHIM_SYSFS "/sys/class/tty/pts/"
#define SHIM_FDS 1024

static int shim_bits[SHIM_FDS]; /* per fd: the DTR/RTS the port was told, +1 so that 0 means never */

/* True if fd is a pty slave (Unix98 ptys have majors 136..143). */
static int shim_is_pty(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode))
        return 0;
    unsigned maj = major(st.st_rdev);
    return maj >= 136 && maj <= 143;
}

int ioctl(int fd, unsigned long req, ...);
int ioctl(int fd, unsigned long req, ...)
{
    static int (*real)(int, unsigned long, ...);
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (!real)
        real = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    if ((req == TIOCMGET || req == TIOCMSET || req == TIOCMBIS || req == TIOCMBIC) && fd >= 0 && fd < SHIM_FDS &&
        shim_is_pty(fd)) {
        int *bits = arg, have = shim_bits[fd] ? shim_bits[fd] - 1 : TIOCM_DTR | TIOCM_RTS;
        if (req == TIOCMGET)
            *bits = have | TIOCM_CTS | TIOCM_DSR | TIOCM_CD;
        else
            have = req == TIOCMSET ? *bits : req == TIOCMBIS ? have | *bits : have & ~*bits;
        shim_bits[fd] = (have & (TIOCM_DTR | TIOCM_RTS)) + 1;
        return 0;
    }
    return real(fd, req, arg);
}

/* True (and *st a symbolic link) for the pty's would-be sysfs entry. */
static int shim_sysfs_link(const char *path, struct stat *st)
{
    if (!path || strncmp(path, SHIM_SYSFS, strlen(SHIM_SYSFS)) != 0)
        return 0;
    memset(st, 0, sizeof *st);
    st->st_mode = S_IFLNK | 0777;
    return 1;
}

/* libserialport built against glibc < 2.33 (Debian 12's) calls __lxstat ... */
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat(int ver, const char *path, struct stat *st)
{
    static int (*real)(int, const char *, struct stat *);
    if (shim_sysfs_link(path, st))
        return 0;
    if (!real)
        real = (int (*)(int, const char *, struct stat *))dlsym(RTLD_NEXT, "__lxstat");
    return real ? real(ver, path, st) : -1;
}

/* ... and built against a newer one, lstat. */
int lstat(const char *restrict path, struct stat *restrict st)
{
    static int (*real)(const char *, struct stat *);
    if (shim_sysfs_link(path, st))
        return 0;
    if (!real)
        real = (int (*)(const char *, struct stat *))dlsym(RTLD_NEXT, "lstat");
    return real ? real(path, st) : -1;
}

ssize_t readlink(const char *path, char *buf, size_t cap)
{
    static ssize_t (*real)(const char *, char *, size_t);
    if (!real)
        real = (ssize_t (*)(const char *, char *, size_t))dlsym(RTLD_NEXT, "readlink");
    if (!strncmp(path, SHIM_SYSFS, strlen(SHIM_SYSFS))) {
        const char target[] = "../../devices/virtual/tty/ifpp-fake-modem";
        size_t n = sizeof target - 1 < cap ? sizeof target - 1 : cap;
        memcpy(buf, target, n);
        return (ssize_t)n;
    }
    return real(path, buf, cap);
}
