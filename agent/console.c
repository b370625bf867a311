/*
 * console.c -- ifpp-console, the line operator's screen (issue 14; docs/console.md): a client of ifpp-agent's MES
 * socket like any other. Scans (keyboard wedge, or a serial-port scanner with --scanner) become `provision`
 * requests; events paint one row per slot with its progress and a PASS/FAIL in plain words (console_model.c).
 * Never blocks the daemon: a non-blocking socket, poll with a timeout, bounded buffers both ways; a daemon that
 * goes away is shown as "disconnected" and reconnected with backoff.
 */
#define _GNU_SOURCE
#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "console_model.h"

#define CON_OUT 8192

typedef struct {
    const char *sock_path, *profile_type;
    int fd;                    /* -1: disconnected */
    char in[CM_MAX_LINE];
    size_t in_len;
    char out[CON_OUT];
    size_t out_len;
    long backoff_ms;
    struct timespec next_try;
    char scan[128];            /* the wedge's characters so far */
    size_t scan_len;
    struct sp_port *scanner;
    char sscan[128];
    size_t sscan_len;
    bool help;
    cm_model m;
} console;

static volatile sig_atomic_t con_stop;

static void con_on_term(int sig)
{
    (void)sig;
    con_stop = 1;
}

static long con_ms_until(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
}

static void con_queue(console *c, const char *line)
{
    size_t n = strlen(line);
    if (c->fd < 0 || c->out_len + n > sizeof c->out) {
        snprintf(c->m.notice, sizeof c->m.notice, "not sent: the station is disconnected or not reading");
        c->m.notice_bad = true;
        return;
    }
    memcpy(c->out + c->out_len, line, n);
    c->out_len += n;
}

static void con_drop(console *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->in_len = c->out_len = 0;
    cm_disconnected(&c->m);
    clock_gettime(CLOCK_MONOTONIC, &c->next_try);
    c->next_try.tv_nsec += c->backoff_ms * 1000000L;
    c->next_try.tv_sec += c->next_try.tv_nsec / 1000000000L;
    c->next_try.tv_nsec %= 1000000000L;
    c->backoff_ms = c->backoff_ms * 2 > 4000 ? 4000 : c->backoff_ms * 2;
}

static void con_connect(console *c)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(c->sock_path) >= sizeof sa.sun_path)
        return;
    memcpy(sa.sun_path, c->sock_path, strlen(c->sock_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { /* a Unix socket connects at once or not at all */
        close(fd);
        c->fd = -1;
        con_drop(c);
        return;
    }
    c->fd = fd;
    c->backoff_ms = 250;
    c->m.notice[0] = 0;
    con_queue(c, "{\"id\":\"sub\",\"op\":\"subscribe\"}\n{\"id\":\"q\",\"op\":\"query\",\"what\":\"station\"}\n"
                 "{\"id\":\"s\",\"op\":\"stock\"}\n");
}

static void con_read(console *c)
{
    for (int round = 0; round < 8; round++) { /* a few reads per wake: the keyboard is served too */
        ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            con_drop(c);
            return;
        }
        if (r < 0)
            return;
        c->in_len += (size_t)r;
        char *nl;
        size_t used = 0;
        long completed = c->m.pass + c->m.fail;
        while ((nl = memchr(c->in + used, '\n', c->in_len - used))) {
            cm_handle_line(&c->m, c->in + used, (size_t)(nl - (c->in + used)));
            used = (size_t)(nl - c->in) + 1;
        }
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        if (c->in_len == sizeof c->in) { /* a line longer than any the daemon sends: not our peer's protocol */
            snprintf(c->m.notice, sizeof c->m.notice, "the station sent a line over %d bytes: reconnecting", CM_MAX_LINE);
            c->m.notice_bad = true;
            con_drop(c);
            return;
        }
        if (c->m.pass + c->m.fail != completed)
            con_queue(c, "{\"id\":\"s\",\"op\":\"stock\"}\n"); /* stock moved */
    }
}

static void con_write(console *c)
{
    while (c->out_len) {
        ssize_t w = send(c->fd, c->out, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR)
                con_drop(c);
            return;
        }
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
}

static void con_scan_done(console *c, const char *scan)
{
    char line[512];
    if (c->fd < 0) {
        snprintf(c->m.notice, sizeof c->m.notice, "scan refused: the station is disconnected");
        c->m.notice_bad = true;
        return;
    }
    if (cm_scan(&c->m, scan, c->profile_type, line, sizeof line))
        con_queue(c, line);
}

static void con_key(console *c, int ch)
{
    if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
        c->scan[c->scan_len] = 0;
        if (c->scan_len)
            con_scan_done(c, c->scan);
        c->scan_len = 0;
    } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
        if (c->scan_len)
            c->scan_len--;
    } else if (ch == 27) {
        c->scan_len = 0;
    } else if (ch == KEY_UP || ch == KEY_DOWN) {
        size_t n = c->m.n_slots;
        if (n) {
            size_t s = c->m.selected;
            c->m.selected = s >= n ? (ch == KEY_UP ? n - 1 : 0) : ch == KEY_UP ? (s + n - 1) % n : (s + 1) % n;
        }
    } else if (ch == KEY_F(2)) {
        c->m.selected = CM_MAX_SLOTS;
    } else if (ch == KEY_F(8)) {
        char line[256];
        if (cm_cancel(&c->m, line, sizeof line))
            con_queue(c, line);
    } else if (ch == KEY_F(1)) {
        c->help = !c->help;
    } else if (ch >= 0x20 && ch < 0x7f && c->scan_len + 1 < sizeof c->scan) {
        c->scan[c->scan_len++] = (char)ch;
    }
}

static void con_scanner(console *c)
{
    char b[64];
    int r = sp_nonblocking_read(c->scanner, b, sizeof b);
    for (int i = 0; i < r; i++) {
        if (b[i] == '\r' || b[i] == '\n') {
            c->sscan[c->sscan_len] = 0;
            if (c->sscan_len)
                con_scan_done(c, c->sscan);
            c->sscan_len = 0;
        } else if (c->sscan_len + 1 < sizeof c->sscan) {
            c->sscan[c->sscan_len++] = b[i];
        } else {
            c->sscan_len = 0; /* an over-long scan is dropped whole and said so */
            snprintf(c->m.notice, sizeof c->m.notice, "scan refused: the scanner sent over %zu characters",
                     sizeof c->sscan - 1);
            c->m.notice_bad = true;
        }
    }
}

static void con_draw(console *c)
{
    int h, w;
    getmaxyx(stdscr, h, w);
    erase();
    time_t now = time(NULL);
    attron(A_REVERSE);
    mvprintw(0, 0, "%-*.*s", w, w, "");
    mvprintw(0, 0, " IFPP station  %s  PASS %ld  FAIL %ld  %.0f DUT/h", c->fd >= 0 ? "connected" : "DISCONNECTED",
             c->m.pass, c->m.fail, cm_per_hour(&c->m, now));
    attroff(A_REVERSE);
    int y = 1;
    int bar = 10, steps = cm_steps();
    int rows_for_slots = h - 6 - (c->m.n_stock ? 1 : 0);
    bool two_lines = (size_t)rows_for_slots >= 2 * c->m.n_slots;
    for (size_t i = 0; i < c->m.n_slots && y - 1 < rows_for_slots; i++, y++) {
        const cm_slot *s = &c->m.slot[i];
        char pb[16];
        int done = s->step_index < 0 ? 0 : (s->step_index * bar + steps - 1) / steps;
        if (s->result[0])
            done = s->reason == CM_R_PASS ? bar : done;
        for (int k = 0; k < bar; k++)
            pb[k] = k < done ? '#' : '.';
        pb[bar] = 0;
        if (i == c->m.selected)
            attron(A_REVERSE);
        const char *state = s->request[0] && strcmp(s->state, "busy") ? "queued" : s->state;
        mvprintw(y, 0, "%2zu %-8.8s %-6.6s %-12.12s %-8.8s %-6.6s [%s] ", i + 1, s->name, state, s->serial,
                 s->eid[0] ? s->eid + (strlen(s->eid) > 8 ? strlen(s->eid) - 8 : 0) : "-",
                 s->profile_type[0] ? s->profile_type : "-", pb);
        if (i == c->m.selected)
            attroff(A_REVERSE);
        if (s->result[0]) {
            bool pass = s->reason == CM_R_PASS;
            attron(A_BOLD | (pass ? 0 : A_REVERSE));
            printw("%s", pass ? "PASS" : "FAIL");
            attroff(A_BOLD | A_REVERSE);
            int x = getcurx(stdscr);
            const char *why = cm_reason_words(s->reason);
            if (!pass && two_lines) /* room for the reason whole on its own line */
                mvprintw(++y, 6, "%.*s", w - 6, why);
            else if (!pass && x + 1 < w)
                printw(" %.*s", w - x - 1, why);
        } else if (s->step[0] && !strcmp(s->state, "busy")) {
            int x = getcurx(stdscr);
            if (x + 1 < w)
                printw("%.*s", w - x - 1, s->step);
        }
    }
    y = h - 5;
    if (c->m.n_stock) {
        move(y - 1, 0);
        printw("stock:");
        for (size_t i = 0; i < c->m.n_stock; i++) {
            if (c->m.stock[i].low)
                attron(A_BOLD);
            printw(" %s %ld%s", c->m.stock[i].type, c->m.stock[i].n, c->m.stock[i].low ? " LOW" : "");
            attroff(A_BOLD);
        }
    }
    mvprintw(y, 0, "FAIL by reason:");
    for (int r = CM_R_PASS + 1; r < CM_R__COUNT; r++)
        if (c->m.by_reason[r])
            printw(" %ld %.24s;", c->m.by_reason[r], cm_reason_words((cm_reason)r));
    if (c->m.notice[0]) {
        if (c->m.notice_bad)
            attron(A_BOLD | A_REVERSE);
        mvprintw(h - 4, 0, "%.*s", w, c->m.notice);
        attroff(A_BOLD | A_REVERSE);
    }
    if (c->fd < 0) {
        attron(A_BOLD | A_REVERSE);
        mvprintw(h - 3, 0, "%.*s", w, "DISCONNECTED from the station: reconnecting...");
        attroff(A_BOLD | A_REVERSE);
    }
    if (c->help && c->m.selected < c->m.n_slots && c->m.slot[c->m.selected].detail[0])
        mvprintw(h - 3, 0, "%.*s", w, c->m.slot[c->m.selected].detail);
    mvprintw(h - 2, 0, "scan> %.*s", (int)c->scan_len < w - 7 ? (int)c->scan_len : w - 7, c->scan);
    attron(A_REVERSE);
    mvprintw(h - 1, 0, "%-*.*s", w, w, "Up/Down select  F2 next free  F8 cancel  F1 details  scan SLOT:SERIAL  ^C quit");
    attroff(A_REVERSE);
    move(h - 2, 6 + (int)c->scan_len < w ? 6 + (int)c->scan_len : w - 1);
    refresh();
}

static int con_usage(void)
{
    fprintf(stderr, "usage: ifpp-console [--socket PATH] [--scanner /dev/ttyX] [--baud N] [--profile-type TYPE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static console c;
    const char *scanner = NULL;
    int baud = 9600;
    c.sock_path = "/run/ifpp-station/mes.sock";
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--socket"))
            c.sock_path = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--scanner"))
            scanner = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--baud"))
            baud = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--profile-type"))
            c.profile_type = argv[++i];
        else
            return con_usage();
    }
    if (scanner) {
        if (sp_get_port_by_name(scanner, &c.scanner) != SP_OK || sp_open(c.scanner, SP_MODE_READ) != SP_OK ||
            sp_set_baudrate(c.scanner, baud) != SP_OK) {
            fprintf(stderr, "ifpp-console: scanner %s: %s\n", scanner, sp_last_error_message());
            return 1;
        }
    }
    cm_init(&c.m, time(NULL));
    c.fd = -1;
    c.backoff_ms = 250;
    signal(SIGTERM, con_on_term);
    signal(SIGINT, con_on_term);
    signal(SIGPIPE, SIG_IGN);
    setlocale(LC_ALL, "");
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    while (!con_stop) {
        if (c.fd < 0 && con_ms_until(&c.next_try) <= 0)
            con_connect(&c);
        con_draw(&c);
        struct pollfd p[3] = {{.fd = 0, .events = POLLIN}, {.fd = c.fd, .events = POLLIN}, {.fd = -1}};
        if (c.out_len)
            p[1].events |= POLLOUT;
        int sfd = -1;
        if (c.scanner && sp_get_port_handle(c.scanner, &sfd) == SP_OK) {
            p[2].fd = sfd;
            p[2].events = POLLIN;
        }
        if (poll(p, 3, 250) < 0 && errno != EINTR) /* 250 ms: the reconnect backoff and the clock are served too */
            break;
        int ch;
        for (int k = 0; k < 256 && (ch = getch()) != ERR; k++) /* KEY_RESIZE arrives here on SIGWINCH */
            if (ch != KEY_RESIZE)
                con_key(&c, ch);
        if (c.fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            con_read(&c);
        if (c.fd >= 0 && c.out_len)
            con_write(&c);
        if (p[2].revents & POLLIN)
            con_scanner(&c);
    }
    endwin();
    if (c.fd >= 0)
        close(c.fd);
    if (c.scanner) {
        sp_close(c.scanner);
        sp_free_port(c.scanner);
    }
    return 0;
}
