/*
 * mes_client.c -- ifppctl's side of the MES socket (mes_client.h): connect, send a request line, read
 * reply lines into a bounded buffer with a poll deadline, match them by id. Nothing the daemon sends is
 * trusted: a line that does not fit, is not a JSON object or never comes ends the call with a message.
 */
#define _GNU_SOURCE /* MSG_NOSIGNAL, SOCK_CLOEXEC */
#include "mes_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct mes_client {
    int fd;
    unsigned next_id;
    char path[sizeof ((struct sockaddr_un *)0)->sun_path];
    size_t len;
    char buf[MES_CLIENT_MAX_LINE + 1];
};

static long mes_client_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ifpp_err mes_client_open(const char *path, mes_client **out, char *why, size_t why_len)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || !*path || strlen(path) >= sizeof sa.sun_path) {
        err_why(why, why_len, "MES socket path '%s' is empty or longer than %zu bytes", path ? path : "",
                sizeof sa.sun_path - 1);
        return IFPP_E_ARG;
    }
    mes_client *c = malloc(sizeof *c);
    if (!c)
        return IFPP_E_NOMEM;
    c->len = 0;
    c->next_id = 0;
    snprintf(c->path, sizeof c->path, "%s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* a Unix socket's connect does not wait for accept: it fails at once or is queued in the backlog */
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        err_why(why, why_len, "MES socket %s: cannot connect: %s (is ifpp-agent running?)", path, strerror(errno));
        mes_client_close(c);
        return IFPP_E_IO;
    }
    *out = c;
    return IFPP_OK;
}

ifpp_err mes_client_send(mes_client *c, json_t *req, char *id, size_t cap, char *why, size_t why_len)
{
    snprintf(id, cap, "ifppctl-%ld-%u", (long)getpid(), ++c->next_id);
    if (json_object_set_new(req, "id", json_string(id)) != 0)
        return IFPP_E_NOMEM;
    char *line = json_dumps(req, JSON_COMPACT);
    if (!line)
        return IFPP_E_NOMEM;
    size_t n = strlen(line), off = 0;
    line[n++] = '\n'; /* json_dumps' NUL becomes the line's end; it is not sent as a string */
    while (off < n) {
        ssize_t w = send(c->fd, line + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err_why(why, why_len, "MES socket %s: cannot send: %s", c->path, strerror(errno));
            free(line);
            return IFPP_E_IO;
        }
        off += (size_t)w;
    }
    free(line);
    return IFPP_OK;
}

/* The next line as a JSON object, within the deadline. */
static ifpp_err mes_client_line(mes_client *c, long deadline, json_t **o, char *why, size_t why_len)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            json_error_t je;
            size_t n = (size_t)(nl - c->buf);
            *o = json_loadb(c->buf, n, JSON_REJECT_DUPLICATES, &je);
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            if (!*o || !json_is_object(*o)) {
                json_decref(*o);
                *o = NULL;
                err_why(why, why_len, "MES socket %s: the daemon sent a line that is not a JSON object (%s)", c->path,
                        je.text);
                return IFPP_E_IO;
            }
            return IFPP_OK;
        }
        if (c->len >= MES_CLIENT_MAX_LINE) {
            err_why(why, why_len, "MES socket %s: the daemon sent a line longer than %u bytes", c->path,
                    MES_CLIENT_MAX_LINE);
            return IFPP_E_RANGE;
        }
        long left = deadline - mes_client_now_ms();
        if (left <= 0) {
            err_why(why, why_len, "MES socket %s: no reply in time", c->path);
            return IFPP_E_TIMEOUT;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int k = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (k < 0 && errno != EINTR) {
            err_why(why, why_len, "MES socket %s: poll: %s", c->path, strerror(errno));
            return IFPP_E_IO;
        }
        if (k <= 0)
            continue;
        ssize_t r = recv(c->fd, c->buf + c->len, MES_CLIENT_MAX_LINE - c->len, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0) {
            err_why(why, why_len, "MES socket %s: the daemon closed the connection%s%s", c->path, r < 0 ? ": " : "",
                    r < 0 ? strerror(errno) : "");
            return IFPP_E_IO;
        }
        c->len += (size_t)r;
    }
}

ifpp_err mes_client_reply(mes_client *c, const char *id, long timeout_ms, json_t **reply, char *why, size_t why_len)
{
    long deadline = mes_client_now_ms() + timeout_ms;
    for (;;) {
        json_t *o;
        ifpp_err e = mes_client_line(c, deadline, &o, why, why_len);
        if (e != IFPP_OK)
            return e;
        json_t *jid = json_object_get(o, "id");
        if (json_is_string(jid) && !strcmp(json_string_value(jid), id)) {
            *reply = o;
            return IFPP_OK;
        }
        if (jid && json_is_null(jid) && json_is_false(json_object_get(o, "ok"))) {
            /* the daemon could not read our request at all (e.g. too many clients): that is our answer */
            *reply = o;
            return IFPP_OK;
        }
        json_decref(o); /* an event, or another request's reply */
    }
}

void mes_client_close(mes_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}
