/*
 * config.c -- station.conf.d read with libconfig and checked key by key (see config.h). One table
 * lists every key with its type, bounds and place in agent_config, so that loading, printing and
 * the SIGHUP diff walk the same list and cannot drift apart.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef enum { K_STR, K_LONG, K_SIZE, K_MODE } key_type;

typedef struct {
    const char *group, *name;
    key_type type;
    size_t off, cap;     /* cap: a string's buffer */
    long lo, hi;         /* numbers */
    bool path;           /* a file or directory name */
} key_def;

#define KS(g, n, f, p) {g, n, K_STR, offsetof(agent_config, f), sizeof(((agent_config *)0)->f), 0, 0, p}
#define KL(g, n, f, lo, hi) {g, n, K_LONG, offsetof(agent_config, f), 0, lo, hi, false}
#define KZ(g, n, f, lo, hi) {g, n, K_SIZE, offsetof(agent_config, f), 0, lo, hi, false}

static const key_def config_keys[] = {
    KS("station", "id", station_id, false),
    KS("store", "path", store_path, true),
    KL("store", "busy_timeout_ms", busy_timeout_ms, 0, 600000),
    KS("trust", "pki_dir", pki_dir, true),
    KS("trust", "ci", ci, true),
    KS("trust", "dm_root", dm_root, true),
    KS("trust", "dm_fpa_cert", dm_fpa_cert, true),
    KS("trust", "dm_fpa_key", dm_fpa_key, true),
    KS("trust", "station_cert", station_cert, true),
    KS("trust", "station_key", station_key, true),
    KS("trust", "pkcs11_module", pkcs11_module, true),
    KS("mes", "path", mes_path, true),
    {"mes", "mode", K_MODE, offsetof(agent_config, mes_mode), 0, 0, 0777, false},
    KS("mes", "group", mes_group, false),
    KZ("mes", "max_clients", mes_max_clients, 1, 1024),
    KZ("mes", "max_line", mes_max_line, 256, 65536),
    KZ("mes", "max_queue", mes_max_queue, 4096, 16777216),
    KS("reports", "dir", report_dir, true),
    KL("timeouts", "shutdown_ms", shutdown_ms, 100, 3600000),
    KZ("timeouts", "stock_low", stock_low, 0, 1000000),
};
#define N_KEYS (sizeof config_keys / sizeof config_keys[0])

static const char *const config_groups[] = {"station", "store", "trust", "slots", "mes", "reports", "timeouts"};

void config_defaults(agent_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->station_id, sizeof c->station_id, "station-01");
    snprintf(c->store_path, sizeof c->store_path, "/var/lib/ifpp-station/station.db");
    c->busy_timeout_ms = 5000;
    snprintf(c->mes_path, sizeof c->mes_path, "/run/ifpp-station/mes.sock");
    c->mes_mode = 0660;
    c->mes_max_clients = 64;
    c->mes_max_line = 4096;
    c->mes_max_queue = 1 << 20;
    snprintf(c->report_dir, sizeof c->report_dir, "/media/ifpp-reports");
    c->shutdown_ms = 30000;
    c->stock_low = 100;
}

/* Where each key was set, to name both places when it is set twice. */
typedef struct {
    char where[N_KEYS][CONFIG_PATH_MAX + 16];
} config_seen;

static ifpp_err config_err(char *why, size_t why_len, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static ifpp_err config_err(char *why, size_t why_len, const char *file, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (why && why_len)
        snprintf(why, why_len, "%s:%d: %s", file, line, msg);
    return IFPP_E_ARG;
}

/* A string value: printable, no control characters, fits. */
static bool config_text_ok(const char *v, size_t cap)
{
    size_t n = strlen(v);
    if (n == 0 || n >= cap)
        return false;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static ifpp_err config_key(const key_def *k, config_setting_t *s, agent_config *c, const char *file, char *why,
                           size_t why_len)
{
    int line = (int)config_setting_source_line(s);
    char *dst = (char *)c + k->off;
    int t = config_setting_type(s);
    if (k->type == K_STR || k->type == K_MODE) {
        if (t != CONFIG_TYPE_STRING)
            return config_err(why, why_len, file, line, "%s.%s must be a string in double quotes", k->group, k->name);
        const char *v = config_setting_get_string(s);
        if (k->type == K_MODE) {
            char *end;
            errno = 0;
            unsigned long m = strtoul(v, &end, 8);
            if (errno || *end || end == v || v[0] != '0' || m > (unsigned long)k->hi)
                return config_err(why, why_len, file, line, "%s.%s \"%s\": an octal mode such as \"0660\"", k->group,
                                  k->name, v);
            *(unsigned *)(void *)dst = (unsigned)m;
            return IFPP_OK;
        }
        if (!config_text_ok(v, k->cap))
            return config_err(why, why_len, file, line, "%s.%s: empty, too long (at most %zu bytes) or has control "
                              "characters", k->group, k->name, k->cap - 1);
        snprintf(dst, k->cap, "%s", v);
        return IFPP_OK;
    }
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return config_err(why, why_len, file, line, "%s.%s must be a whole number (%ld..%ld)", k->group, k->name, k->lo,
                          k->hi);
    long long v = config_setting_get_int64(s);
    if (v < k->lo || v > k->hi)
        return config_err(why, why_len, file, line, "%s.%s = %lld: out of range %ld..%ld", k->group, k->name, v, k->lo,
                          k->hi);
    if (k->type == K_LONG)
        *(long *)(void *)dst = (long)v;
    else
        *(size_t *)(void *)dst = (size_t)v;
    return IFPP_OK;
}

static bool config_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 31)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_'))
            return false;
    return true;
}

static ifpp_err config_slots(config_setting_t *list, agent_config *c, const char *file, char *why, size_t why_len)
{
    if (config_setting_type(list) != CONFIG_TYPE_LIST)
        return config_err(why, why_len, file, (int)config_setting_source_line(list),
                          "slots must be a list: slots = ( { name = \"slot-01\"; spec = \"pcsc:Reader\"; } );");
    int n = config_setting_length(list);
    for (int i = 0; i < n; i++) {
        config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        int line = (int)config_setting_source_line(g);
        if (config_setting_type(g) != CONFIG_TYPE_GROUP)
            return config_err(why, why_len, file, line, "slots[%d] must be a group { name = ...; spec = ...; }", i);
        if (c->n_slots >= CONFIG_MAX_SLOTS)
            return config_err(why, why_len, file, line, "more than %d slots", CONFIG_MAX_SLOTS);
        config_slot *sl = &c->slots[c->n_slots];
        memset(sl, 0, sizeof *sl);
        const char *name = NULL, *spec = NULL;
        for (int j = 0; j < config_setting_length(g); j++) {
            config_setting_t *k = config_setting_get_elem(g, (unsigned)j);
            const char *kn = config_setting_name(k);
            int kl = (int)config_setting_source_line(k);
            const char **dst = !strcmp(kn, "name") ? &name : !strcmp(kn, "spec") ? &spec : NULL;
            if (!dst)
                return config_err(why, why_len, file, kl, "slots[%d]: unknown key '%s' (a slot has name and spec)", i,
                                  kn);
            if (config_setting_type(k) != CONFIG_TYPE_STRING)
                return config_err(why, why_len, file, kl, "slots[%d].%s must be a string", i, kn);
            *dst = config_setting_get_string(k);
        }
        if (!name || !spec)
            return config_err(why, why_len, file, line, "slots[%d]: needs both name and spec", i);
        if (!config_name_ok(name))
            return config_err(why, why_len, file, line, "slot name '%s': 1..31 of A-Z a-z 0-9 - _", name);
        for (size_t k = 0; k < c->n_slots; k++)
            if (!strcmp(c->slots[k].name, name))
                return config_err(why, why_len, file, line, "slot '%s' given twice (first at %s)", name,
                                  c->slots[k].where);
        station_slot_options o;
        char sw[512] = "";
        if (!config_text_ok(spec, sizeof sl->spec) || station_slot_parse(spec, &o, sw, sizeof sw) != IFPP_OK)
            return config_err(why, why_len, file, line, "slot '%s': spec \"%s\": %s", name, spec,
                              sw[0] ? sw : "empty, too long or has control characters");
        snprintf(sl->name, sizeof sl->name, "%s", name);
        snprintf(sl->spec, sizeof sl->spec, "%s", spec);
        snprintf(sl->where, sizeof sl->where, "%s:%d", file, line);
        c->n_slots++;
    }
    return IFPP_OK;
}

static ifpp_err config_file(const char *file, agent_config *c, config_seen *seen, char *why, size_t why_len)
{
    config_t cf;
    ifpp_err e = IFPP_OK;
    struct stat st;
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
        err_why(why, why_len, "%s: %s", file, errno ? strerror(errno) : "not a regular file");
        return IFPP_E_IO;
    }
    config_init(&cf);
    if (config_read_file(&cf, file) != CONFIG_TRUE) {
        bool io = config_error_type(&cf) == CONFIG_ERR_FILE_IO;
        if (io)
            err_why(why, why_len, "%s: cannot read it", file);
        else
            config_err(why, why_len, config_error_file(&cf) ? config_error_file(&cf) : file, config_error_line(&cf),
                       "%s", config_error_text(&cf));
        config_destroy(&cf);
        return io ? IFPP_E_IO : IFPP_E_ARG;
    }
    config_setting_t *root = config_root_setting(&cf);
    for (int i = 0; e == IFPP_OK && i < config_setting_length(root); i++) {
        config_setting_t *g = config_setting_get_elem(root, (unsigned)i);
        const char *gn = config_setting_name(g);
        int line = (int)config_setting_source_line(g);
        bool known = false;
        for (size_t k = 0; k < sizeof config_groups / sizeof config_groups[0]; k++)
            known |= !strcmp(gn, config_groups[k]);
        if (!known) {
            e = config_err(why, why_len, file, line, "unknown group '%s' (known: station, store, trust, slots, mes, "
                           "reports, timeouts)", gn);
            break;
        }
        if (!strcmp(gn, "slots")) {
            e = config_slots(g, c, file, why, why_len);
            continue;
        }
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            e = config_err(why, why_len, file, line, "%s must be a group: %s = { ... };", gn, gn);
            break;
        }
        for (int j = 0; e == IFPP_OK && j < config_setting_length(g); j++) {
            config_setting_t *s = config_setting_get_elem(g, (unsigned)j);
            const char *kn = config_setting_name(s);
            int kl = (int)config_setting_source_line(s);
            size_t k;
            for (k = 0; k < N_KEYS; k++)
                if (!strcmp(config_keys[k].group, gn) && !strcmp(config_keys[k].name, kn))
                    break;
            if (k == N_KEYS) {
                char known_keys[512] = "";
                for (size_t m = 0; m < N_KEYS; m++)
                    if (!strcmp(config_keys[m].group, gn))
                        snprintf(known_keys + strlen(known_keys), sizeof known_keys - strlen(known_keys), "%s%s",
                                 known_keys[0] ? ", " : "", config_keys[m].name);
                e = config_err(why, why_len, file, kl, "unknown key '%s.%s' (known in %s: %s)", gn, kn, gn, known_keys);
                break;
            }
            if (seen->where[k][0]) {
                e = config_err(why, why_len, file, kl, "%s.%s given twice (first at %s)", gn, kn, seen->where[k]);
                break;
            }
            snprintf(seen->where[k], sizeof seen->where[k], "%s:%d", file, kl);
            e = config_key(&config_keys[k], s, c, file, why, why_len);
        }
    }
    config_destroy(&cf);
    return e;
}

static int config_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

ifpp_err config_load(const char *path, agent_config *c, char *why, size_t why_len)
{
    struct stat st;
    if (!path || !c)
        return IFPP_E_ARG;
    config_defaults(c);
    config_seen *seen = calloc(1, sizeof *seen);
    if (!seen)
        return IFPP_E_NOMEM;
    ifpp_err e = IFPP_OK;
    if (stat(path, &st) != 0) {
        err_why(why, why_len, "%s: %s", path, strerror(errno));
        e = IFPP_E_IO;
    } else if (S_ISREG(st.st_mode)) {
        e = config_file(path, c, seen, why, why_len);
        c->n_files = e == IFPP_OK;
    } else {
        DIR *d = opendir(path);
        char *names[CONFIG_MAX_FILES];
        size_t n = 0;
        struct dirent *de;
        if (!d) {
            err_why(why, why_len, "%s: %s", path, strerror(errno));
            e = IFPP_E_IO;
        }
        while (e == IFPP_OK && (de = readdir(d))) {
            size_t len = strlen(de->d_name);
            if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".conf"))
                continue;
            if (n == CONFIG_MAX_FILES) {
                err_why(why, why_len, "%s: more than %d *.conf files", path, CONFIG_MAX_FILES);
                e = IFPP_E_RANGE;
                break;
            }
            if (!(names[n] = malloc(strlen(path) + len + 2))) {
                e = IFPP_E_NOMEM;
                break;
            }
            sprintf(names[n++], "%s/%s", path, de->d_name);
        }
        if (d)
            closedir(d);
        qsort(names, n, sizeof names[0], config_cmp);
        for (size_t i = 0; i < n; i++) {
            if (e == IFPP_OK)
                e = config_file(names[i], c, seen, why, why_len);
            free(names[i]);
        }
        if (e == IFPP_OK && n == 0) {
            err_why(why, why_len, "%s: no *.conf file", path);
            e = IFPP_E_NOT_FOUND;
        }
        c->n_files = n;
    }
    free(seen);
    return e;
}

/* s in double quotes with libconfig's escapes for '"' and '\\' (values have no control characters). */
static void config_quote(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (cap < 3)
        return;
    out[o++] = '"';
    for (; *s && o + 3 < cap; s++) {
        if (*s == '"' || *s == '\\')
            out[o++] = '\\';
        out[o++] = *s;
    }
    out[o++] = '"';
    out[o] = 0;
}

/* One key's value as the files write it. */
static void config_value(const key_def *k, const agent_config *c, char *out, size_t cap)
{
    const char *src = (const char *)c + k->off;
    switch (k->type) {
    case K_STR:
        config_quote(src, out, cap);
        break;
    case K_MODE:
        snprintf(out, cap, "\"0%03o\"", *(const unsigned *)(const void *)src);
        break;
    case K_LONG:
        snprintf(out, cap, "%ld", *(const long *)(const void *)src);
        break;
    case K_SIZE:
        snprintf(out, cap, "%zu", *(const size_t *)(const void *)src);
        break;
    }
}

void config_print(const agent_config *c, FILE *f)
{
    const char *group = NULL;
    char v[2 * CONFIG_PATH_MAX + 8], n[80], sp[2 * sizeof c->slots[0].spec + 4];
    for (size_t k = 0; k < N_KEYS; k++) {
        const key_def *d = &config_keys[k];
        if (d->type == K_STR && !((const char *)c + d->off)[0])
            continue; /* not set, no default: the trust files fall back to pki_dir */
        if (!group || strcmp(group, d->group)) {
            if (group)
                fprintf(f, "};\n");
            group = d->group;
            fprintf(f, "%s = {\n", group);
        }
        config_value(d, c, v, sizeof v);
        fprintf(f, "  %s = %s;\n", d->name, v);
    }
    if (group)
        fprintf(f, "};\n");
    fprintf(f, "slots = (\n");
    for (size_t i = 0; i < c->n_slots; i++) {
        config_quote(c->slots[i].name, n, sizeof n);
        config_quote(c->slots[i].spec, sp, sizeof sp);
        fprintf(f, "  { name = %s; spec = %s; }%s   # %s\n", n, sp, i + 1 < c->n_slots ? "," : "", c->slots[i].where);
    }
    fprintf(f, ");\n");
}

static const char *config_or_null(const char *s)
{
    return s[0] ? s : NULL;
}

void config_station(const agent_config *c, station_config *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->store_path = c->store_path;
    sc->station_id = c->station_id;
    sc->pki_dir = config_or_null(c->pki_dir);
    sc->ci = config_or_null(c->ci);
    sc->dm_root = config_or_null(c->dm_root);
    sc->dm_fpa_cert = config_or_null(c->dm_fpa_cert);
    sc->dm_fpa_key = config_or_null(c->dm_fpa_key);
    sc->station_cert = config_or_null(c->station_cert);
    sc->station_key = config_or_null(c->station_key);
    sc->pkcs11_module = config_or_null(c->pkcs11_module);
}

size_t config_diff(const agent_config *a, const agent_config *b, void (*line)(void *arg, const char *text), void *arg)
{
    char va[2 * CONFIG_PATH_MAX + 8], vb[2 * CONFIG_PATH_MAX + 8], msg[5 * CONFIG_PATH_MAX];
    size_t n = 0;
    for (size_t k = 0; k < N_KEYS; k++) {
        config_value(&config_keys[k], a, va, sizeof va);
        config_value(&config_keys[k], b, vb, sizeof vb);
        if (strcmp(va, vb)) {
            snprintf(msg, sizeof msg, "%s.%s: %s -> %s", config_keys[k].group, config_keys[k].name, va, vb);
            line(arg, msg);
            n++;
        }
    }
    for (size_t i = 0; i < a->n_slots; i++) {
        size_t j;
        for (j = 0; j < b->n_slots && strcmp(a->slots[i].name, b->slots[j].name); j++)
            ;
        if (j == b->n_slots)
            snprintf(msg, sizeof msg, "slot %s removed", a->slots[i].name);
        else if (strcmp(a->slots[i].spec, b->slots[j].spec))
            snprintf(msg, sizeof msg, "slot %s: %s -> %s", a->slots[i].name, a->slots[i].spec, b->slots[j].spec);
        else
            continue;
        line(arg, msg);
        n++;
    }
    for (size_t j = 0; j < b->n_slots; j++) {
        size_t i;
        for (i = 0; i < a->n_slots && strcmp(a->slots[i].name, b->slots[j].name); i++)
            ;
        if (i == a->n_slots) {
            snprintf(msg, sizeof msg, "slot %s added: %s", b->slots[j].name, b->slots[j].spec);
            line(arg, msg);
            n++;
        }
    }
    return n;
}
