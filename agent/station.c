/*
 * station.c -- the station object, its slots and the PASS rule; see station.h.
 *
 * Written once for ifppctl and the coming daemon, so that a verdict, an exit code and the
 * refusal of a dangerous output path cannot differ between the two.
 */
#define _GNU_SOURCE /* strndup */
#include "station.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"
#include "optval.h"
#include "p11key.h"

/*
 * The file a certificate or key is read from: the one its option names, else <pki_dir>/<pki_name><suffix>.
 * NULL (why says which option to give) when neither is there.
 */
static const char *station_file(const station_config *cfg, const char *explicit_path, const char *opt,
                                const char *pki_name, const char *what, const char *suffix, char *buf, size_t cap,
                                char *why, size_t why_len)
{
    if (explicit_path)
        return explicit_path;
    if (!cfg->pki_dir) {
        err_why(why, why_len, "no %s %s: name it with --%s FILE or --pki DIR", pki_name, what, opt);
        return NULL;
    }
    snprintf(buf, cap, "%s/%s%s", cfg->pki_dir, pki_name, suffix);
    return buf;
}

/* Loads one certificate named by its option, or by its file in the PKI directory. */
static ifpp_err station_cert(const station_config *cfg, const char *explicit_path, const char *opt,
                             const char *pki_name, cert **c, char *why, size_t why_len)
{
    char buf[4096], inner[768] = "";
    const char *path = station_file(cfg, explicit_path, opt, pki_name, "certificate", ".cert.pem", buf, sizeof buf,
                                    why, why_len);
    if (!path)
        return IFPP_E_ARG;
    ifpp_err e = cert_load_pem_why(path, c, inner, sizeof inner);
    if (e != IFPP_OK)
        err_why(why, why_len, "--%s: %s", explicit_path ? opt : "pki", *inner ? inner : err_str(e));
    return e;
}

/*
 * Loads one private key named by its option (a file, or a PKCS#11 URI: the key stays in the token and
 * signs there, proven against for_cert's key by a signature at load), or by its file in the PKI directory.
 * Messages name a URI by its path only: its query may hold the PIN (GENS10: no secret in a message).
 */
static ifpp_err station_key(const station_config *cfg, const char *explicit_path, const char *opt,
                            const char *pki_name, const cert *for_cert, crypto_key **k, char *why, size_t why_len)
{
    char buf[4096], inner[768] = "";
    ifpp_err e;
    if (p11key_is_uri(explicit_path)) {
        crypto_key *pub = NULL;
        if ((e = cert_public_key(for_cert, &pub)) != IFPP_OK)
            err_why(inner, sizeof inner, "its certificate's public key: %s", err_str(e));
        else
            e = p11key_load(explicit_path, cfg->pkcs11_module, pub, k, inner, sizeof inner);
        crypto_key_free(pub);
        if (e != IFPP_OK)
            err_why(why, why_len, "--%s: %s", opt, *inner ? inner : err_str(e));
        return e;
    }
    const char *path = station_file(cfg, explicit_path, opt, pki_name, "key", ".key.pem", buf, sizeof buf, why,
                                    why_len);
    if (!path)
        return IFPP_E_ARG;
    e = crypto_key_load_pem_why(path, k, inner, sizeof inner);
    if (e == IFPP_OK && !crypto_key_has_private(*k)) {
        crypto_key_free(*k);
        *k = NULL;
        err_why(inner, sizeof inner, "%s: a public key where the private key is needed", path);
        e = IFPP_E_BAD_KEY;
    }
    if (e != IFPP_OK)
        err_why(why, why_len, "--%s: %s", explicit_path ? opt : "pki", *inner ? inner : err_str(e));
    return e;
}

ifpp_err station_open(const station_config *cfg, unsigned needs, station **out, char *why, size_t why_len)
{
    if (!cfg || !out)
        return IFPP_E_ARG;
    station *s = calloc(1, sizeof *s);
    if (!s)
        return IFPP_E_NOMEM;
    const char *path = cfg->store_path ? cfg->store_path : "station.db";
    const char *id = cfg->station_id ? cfg->station_id : "station-01";
    ifpp_err e = IFPP_OK;
    if (strlen(path) >= sizeof s->store_path || strlen(id) >= sizeof s->station_id || !*id) {
        err_why(why, why_len, "%s too long (or empty)", strlen(path) >= sizeof s->store_path ? "--store" : "--station-id");
        e = IFPP_E_RANGE;
    }
    if (e == IFPP_OK) {
        snprintf(s->store_path, sizeof s->store_path, "%s", path);
        snprintf(s->station_id, sizeof s->station_id, "%s", id);
    }
    if (e == IFPP_OK && (needs & STATION_NEED_CI))
        e = station_cert(cfg, cfg->ci, "ci", "ci", &s->ci, why, why_len);
    if (e == IFPP_OK && (needs & STATION_NEED_DM_ROOT))
        e = station_cert(cfg, cfg->dm_root, "dm-root", "dm-root", &s->dm_root, why, why_len);
    if (e == IFPP_OK && (needs & STATION_NEED_DM_FPA) &&
        (e = station_cert(cfg, cfg->dm_fpa_cert, "dm-fpa-cert", "dm-fpa", &s->dm_fpa_cert, why, why_len)) == IFPP_OK)
        e = station_key(cfg, cfg->dm_fpa_key, "dm-fpa-key", "dm-fpa", s->dm_fpa_cert, &s->dm_fpa_key, why, why_len);
    if (e == IFPP_OK && (needs & STATION_NEED_STATION_KEY) &&
        (e = station_cert(cfg, cfg->station_cert, "station-cert", "station", &s->station_cert, why, why_len)) ==
            IFPP_OK)
        e = station_key(cfg, cfg->station_key, "station-key", "station", s->station_cert, &s->station_key, why,
                        why_len);
    struct stat st;
    if (e == IFPP_OK && (needs & STATION_NEED_STORE) && (needs & STATION_STORE_MUST_EXIST) &&
        stat(s->store_path, &st) != 0) { /* `--store statoin.db status` must not answer zeros from a new store */
        err_why(why, why_len, "store %s: %s (a store begins with import-euicc; is --store right?)", s->store_path,
                strerror(errno));
        e = IFPP_E_NOT_FOUND;
    }
    if (e == IFPP_OK && (needs & STATION_NEED_STORE)) { /* last: a bad key file never touches the store */
        char inner[512] = "";
        e = needs & STATION_STORE_READONLY ? store_open_readonly(s->store_path, &s->st, inner, sizeof inner)
                                           : store_open(s->store_path, &s->st, inner, sizeof inner);
        if (e != IFPP_OK) /* the store's messages name the store */
            err_why(why, why_len, "%s", *inner ? inner : err_str(e));
    }
    if (e != IFPP_OK) {
        station_close(s);
        return e;
    }
    *out = s;
    return IFPP_OK;
}

void station_close(station *s)
{
    if (!s)
        return;
    if (s->st)
        store_close(s->st);
    cert_free(s->ci);
    cert_free(s->dm_root);
    cert_free(s->dm_fpa_cert);
    cert_free(s->station_cert);
    crypto_key_free(s->dm_fpa_key);
    crypto_key_free(s->station_key);
    free(s);
}

/* path's canonical form: realpath of its directory, then its own name (the file need not exist). */
static ifpp_err station_canonical(const char *path, char *out, size_t cap)
{
    char *d = strdup(path), *b = strdup(path), dir[PATH_MAX];
    ifpp_err e = d && b ? IFPP_OK : IFPP_E_NOMEM;
    if (e == IFPP_OK && !realpath(dirname(d), dir))
        e = IFPP_E_IO;
    if (e == IFPP_OK && (size_t)snprintf(out, cap, "%s/%s", dir, basename(b)) >= cap)
        e = IFPP_E_RANGE;
    free(d);
    free(b);
    return e;
}

ifpp_err station_check_output(const station *s, const char *out_path, char *why, size_t why_len)
{
    static const char *const suffix[] = {"", "-wal", "-journal", "-shm", STATION_LOCK_SUFFIX, /* [4]: the daemon's lock */
                                         STORE_BPP_SUFFIX}; /* [5]: the BPP data file (issue 16) */
    struct stat os, ss;
    char oc[PATH_MAX + 256], sc[PATH_MAX + 256], name[4200];
    if (!s || !out_path || !*out_path) {
        err_why(why, why_len, "--out: no file named");
        return IFPP_E_ARG;
    }
    bool out_exists = stat(out_path, &os) == 0;
    ifpp_err ce = station_canonical(out_path, oc, sizeof oc);
    if (ce == IFPP_E_IO) {
        err_why(why, why_len, "--out %s: its directory: %s", out_path, strerror(errno));
        return IFPP_E_IO;
    }
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(name, sizeof name, "%s%s", s->store_path, suffix[i]);
        bool same = out_exists && stat(name, &ss) == 0 && ss.st_dev == os.st_dev && ss.st_ino == os.st_ino;
        if (!same && ce == IFPP_OK && station_canonical(name, sc, sizeof sc) == IFPP_OK)
            same = strcmp(oc, sc) == 0;
        if (same) {
            err_why(why, why_len, "--out %s is the station's store%s%s (%s): refused, it would replace it", out_path,
                    !*suffix[i] ? "" : i == 4 ? " daemon lock " : i == 5 ? " BPP data file " : " journal ", suffix[i],
                    name);
            return IFPP_E_ARG;
        }
    }
    return IFPP_OK;
}

/* Appends ",name=value" (len bytes) to the backend's target. */
static bool station_slot_pass_on(station_slot_options *o, const char *opt, size_t len)
{
    size_t have = strlen(o->target);
    if (have + 1 + len >= sizeof o->target)
        return false;
    o->target[have] = ',';
    memcpy(o->target + have + 1, opt, len);
    o->target[have + 1 + len] = '\0';
    return true;
}

ifpp_err station_slot_parse(const char *spec, station_slot_options *o, char *why, size_t why_len)
{
    if (!spec || !o) {
        err_why(why, why_len, "--slot: no slot named (BACKEND:TARGET, e.g. pcsc:'Reader 0')");
        return IFPP_E_ARG;
    }
    memset(o, 0, sizeof *o);
    o->card_wait_ms = -1;
    o->apdu_timeout_ms = -1;
    const char *colon = strchr(spec, ':');
    size_t blen = colon ? (size_t)(colon - spec) : 0;
    if (strlen(spec) >= sizeof o->spec) {
        err_why(why, why_len, "--slot: longer than %zu characters", sizeof o->spec - 1);
        return IFPP_E_RANGE;
    }
    snprintf(o->spec, sizeof o->spec, "%s", spec);
    if (!colon || blen == 0 || blen >= sizeof o->backend || !colon[1] || colon[1] == ',') {
        err_why(why, why_len, "--slot '%s': expected BACKEND:TARGET[,key=value...], e.g. 'pcsc:Reader 0,card-wait=5000'",
                spec);
        return IFPP_E_ARG;
    }
    memcpy(o->backend, spec, blen);
    const char *target = colon + 1, *comma = strchr(target, ',');
    size_t tlen = comma ? (size_t)(comma - target) : strlen(target);
    memcpy(o->target, target, tlen); /* fits: spec did */
    for (const char *opt = comma; opt; opt = strchr(opt + 1, ',')) {
        const char *name = opt + 1, *end = strchr(name, ','), *eq;
        size_t len = end ? (size_t)(end - name) : strlen(name);
        eq = memchr(name, '=', len);
        size_t nlen = eq ? (size_t)(eq - name) : len, vlen = eq ? len - nlen - 1 : 0;
        const char *v = eq ? eq + 1 : "";
        bool ok = eq != NULL, pass = false;
        const char *rule = "key=value";
        if (ok && nlen == 3 && !strncmp(name, "aid", 3)) {
            char hex[40];
            rule = "aid=HEX, 5 to 16 bytes";
            ok = vlen >= 10 && vlen <= 32 && vlen % 2 == 0;
            if (ok) {
                memcpy(hex, v, vlen);
                hex[vlen] = '\0';
                ok = hex_decode(hex, o->isdr_aid, sizeof o->isdr_aid, &o->isdr_aid_len) == IFPP_OK;
            }
        } else if (ok && nlen == 7 && !strncmp(name, "channel", 7)) {
            rule = "channel=basic|logical";
            if (vlen == 5 && !strncmp(v, "basic", 5))
                o->logical_channel = false;
            else if (vlen == 7 && !strncmp(v, "logical", 7))
                o->logical_channel = true;
            else
                ok = false;
        } else if (ok && nlen == 9 && !strncmp(name, "card-wait", 9)) {
            rule = "card-wait=MS, 0..3600000";
            ok = pass = optval_number(v, vlen, 0, 3600000, &o->card_wait_ms);
        } else if (ok && nlen == 12 && !strncmp(name, "apdu-timeout", 12)) {
            rule = "apdu-timeout=MS, 1..3600000";
            ok = pass = optval_number(v, vlen, 1, 3600000, &o->apdu_timeout_ms);
        } else if (ok && nlen == 9 && !strncmp(name, "conn-test", 9)) {
            rule = "conn-test=off|if-offered|required";
            if (vlen == 3 && !strncmp(v, "off", 3))
                o->conn_test = SESSION_CONN_OFF;
            else if (vlen == 10 && !strncmp(v, "if-offered", 10))
                o->conn_test = SESSION_CONN_IF_OFFERED;
            else if (vlen == 8 && !strncmp(v, "required", 8))
                o->conn_test = SESSION_CONN_REQUIRED;
            else
                ok = false;
        } else if (ok && nlen == 14 && !strncmp(name, "conn-test-time", 14)) {
            rule = "conn-test-time=S, 1..600";
            ok = optval_number(v, vlen, 1, 600, &o->conn_time_limit);
        } else if (ok && nlen > 0) {
            pass = true; /* the backend's own option: it checks it */
        } else {
            ok = false;
        }
        if (ok && pass && !station_slot_pass_on(o, name, len)) {
            err_why(why, why_len, "--slot '%s': the backend's options are too long", spec);
            return IFPP_E_RANGE;
        }
        if (!ok) {
            err_why(why, why_len, "--slot '%s': option '%.*s' is not valid (%s)", spec, (int)len, name, rule);
            return IFPP_E_ARG;
        }
    }
    return IFPP_OK;
}

ifpp_err station_slot_open(const station_slot_options *o, station_slot *sl, char *why, size_t why_len)
{
    if (!o || !sl)
        return IFPP_E_ARG;
    memset(sl, 0, sizeof *sl);
    sl->opt = *o;
    return fpa_open(o->backend, o->target, &sl->fpa, why, why_len);
}

void station_slot_close(station_slot *sl)
{
    if (sl)
        fpa_close(&sl->fpa);
}

const char *station_verdict_name(station_verdict v)
{
    switch (v) {
    case STATION_PASS: return "PASS";
    case STATION_REFUSED: return "REFUSED";
    case STATION_DUT_FAIL: return "FAIL";
    case STATION_FAILURE: return "STATION-FAILURE";
    }
    return "?";
}

int station_exit_code(station_verdict v)
{
    switch (v) {
    case STATION_PASS: return STATION_EXIT_OK;
    case STATION_REFUSED: return STATION_EXIT_REFUSED;
    case STATION_DUT_FAIL: return STATION_EXIT_DUT_FAIL;
    case STATION_FAILURE: return STATION_EXIT_FAILURE;
    }
    return STATION_EXIT_FAILURE;
}

/*
 * The PASS rule. PASS only for an installed profile whose PIR the session verified and recorded.
 * Anything the card said (a status word, an ES10 result, an error PIR, a malformed or unverifiable
 * answer, a card gone) is the DUT's failure. The station's own failures (memory, disk, store,
 * reader) are the station's. A refusal is the station declining before any BPP byte left it.
 */
station_verdict station_verdict_of(const session_result *r)
{
    if (!r)
        return STATION_FAILURE;
    if (r->err == IFPP_OK && !(r->installed && r->final_state == BPP_INSTALLED))
        return STATION_DUT_FAIL;
    /*
     * EUICCF05: a test the slot requires must have been offered, signed ok and recorded; one asked for
     * if offered never changes the verdict (its outcome is recorded beside the PIR, whose truth it is not).
     */
    if (r->err == IFPP_OK && r->conn_mode == SESSION_CONN_REQUIRED)
        return r->conn != SESSION_CONN_PASSED ? STATION_DUT_FAIL : r->conn_recorded ? STATION_PASS : STATION_FAILURE;
    if (r->err == IFPP_OK)
        return STATION_PASS;
    if ((r->sw && r->sw != 0x9000) || r->card_result >= 0)
        return STATION_DUT_FAIL;
    switch (r->err) {
    case IFPP_E_NOMEM:
    case IFPP_E_INTERNAL:
    case IFPP_E_IO:
    case IFPP_E_CRYPTO:
    case IFPP_E_NO_READER:
    case IFPP_E_BUSY:
        return STATION_FAILURE;
    case IFPP_E_ARG:
    case IFPP_E_RANGE:
    case IFPP_E_NOT_FOUND:
        return r->failed_step <= SESSION_STEP_RESERVE || r->failed_step == SESSION_STEP__COUNT ? STATION_REFUSED
                                                                                               : STATION_DUT_FAIL;
    default:
        return STATION_DUT_FAIL;
    }
}

station_verdict station_verdict_of_recover(ifpp_err e)
{
    switch (e) {
    case IFPP_OK:
        return STATION_PASS;
    case IFPP_E_NOMEM:
    case IFPP_E_INTERNAL:
    case IFPP_E_IO:
    case IFPP_E_CRYPTO:
        return STATION_FAILURE;
    default:
        return STATION_DUT_FAIL;
    }
}

station_verdict station_provision(station *s, station_slot *sl, const char *serial, const char *profile_type, unsigned flags,
                                  void (*progress)(void *arg, session_step step, const char *detail),
                                  void *progress_arg, session_result *r)
{
    if (!s || !s->st || !sl || !r || !s->dm_fpa_key || !s->dm_fpa_cert) {
        if (r) {
            memset(r, 0, sizeof *r);
            r->err = IFPP_E_ARG;
            r->card_result = -1;
            r->failed_step = SESSION_STEP__COUNT;
            snprintf(r->message, sizeof r->message, "the station has no store or no Device Manufacturer FPA key");
        }
        return STATION_FAILURE;
    }
    session_ctx c = {.st = s->st, .slot = &sl->fpa, .slot_name = sl->opt.spec, .dm_fpa_key = s->dm_fpa_key,
                     .dm_fpa_cert = s->dm_fpa_cert, .isdr_aid = sl->opt.isdr_aid_len ? sl->opt.isdr_aid : NULL,
                     .isdr_aid_len = sl->opt.isdr_aid_len,
                     .additional_profile = (flags & STATION_ADDITIONAL_PROFILE) != 0,
                     .delete_keys_when_done = (flags & STATION_COMPLETE) != 0,
                     .conn_test = sl->opt.conn_test, .conn_time_limit = (unsigned)sl->opt.conn_time_limit,
                     .logical_channel = sl->opt.logical_channel, .progress = progress, .progress_arg = progress_arg};
    r->err = session_provision(&c, serial, profile_type, r);
    return station_verdict_of(r);
}

ifpp_err station_recover(station *s, station_slot *sl, size_t *resolved,
                         void (*outcome)(void *arg, const uint8_t *txid, size_t txid_len, bpp_state to, const char *why),
                         void *outcome_arg, char *why, size_t why_len)
{
    if (!s || !s->st || !sl || !s->dm_fpa_key || !s->dm_fpa_cert)
        return IFPP_E_ARG;
    session_ctx c = {.st = s->st, .slot = &sl->fpa, .slot_name = sl->opt.spec, .dm_fpa_key = s->dm_fpa_key,
                     .dm_fpa_cert = s->dm_fpa_cert, .isdr_aid = sl->opt.isdr_aid_len ? sl->opt.isdr_aid : NULL,
                     .isdr_aid_len = sl->opt.isdr_aid_len, .logical_channel = sl->opt.logical_channel,
                     .outcome = outcome, .outcome_arg = outcome_arg};
    return session_recover(&c, resolved, why, why_len);
}

/* ---- the daemon's claim on a store (issue 13 item 4) ------------------------------------------- */

static ifpp_err station_lock_path(const char *store_path, char *out, size_t cap, char *why, size_t why_len)
{
    int n = snprintf(out, cap, "%s" STATION_LOCK_SUFFIX, store_path ? store_path : "");
    if (!store_path || !*store_path || n < 0 || (size_t)n >= cap) {
        err_why(why, why_len, "store path '%s' is empty or too long for its lock file", store_path ? store_path : "");
        return IFPP_E_ARG;
    }
    return IFPP_OK;
}

/*
 * Opens the daemon's lock file beside the store (path gets its name), created if missing, a regular
 * file only. With absent_ok, a lock file that is not there and cannot be made is *fd = -1 and IFPP_OK.
 */
static ifpp_err station_lock_open(const char *store_path, int flags, bool absent_ok, char *path, size_t cap, int *fd,
                                  char *why, size_t why_len)
{
    ifpp_err e = station_lock_path(store_path, path, cap, why, why_len);
    if (e != IFPP_OK)
        return e;
    *fd = -1;
    int f = open(path, flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
    if (f < 0 && absent_ok && (errno == ENOENT || errno == EACCES || errno == EROFS))
        return IFPP_OK;
    struct stat sb;
    if (f < 0 || fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        err_why(why, why_len, "%s: cannot open the daemon's lock file: %s", path, f < 0 ? strerror(errno) : "not a regular file");
        if (f >= 0)
            close(f);
        return IFPP_E_IO;
    }
    *fd = f;
    return IFPP_OK;
}

ifpp_err station_daemon_claim(const char *store_path, const char *mes_path, int *fd, char *why, size_t why_len)
{
    char path[PATH_MAX], text[256];
    int f;
    ifpp_err e = station_lock_open(store_path, O_RDWR, false, path, sizeof path, &f, why, why_len);
    if (e != IFPP_OK)
        return e;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(f, F_SETLK, &fl) != 0) {
        int err = errno;
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        long pid = fcntl(f, F_GETLK, &q) == 0 && q.l_type != F_UNLCK ? (long)q.l_pid : 0;
        close(f);
        if (err == EAGAIN || err == EACCES) {
            err_why(why, why_len, "store %s is in use by pid %ld (another ifpp-agent, or ifppctl writing to it; lock %s)",
                    store_path, pid, path);
            return IFPP_E_BUSY;
        }
        err_why(why, why_len, "%s: cannot lock: %s", path, strerror(err));
        return IFPP_E_IO;
    }
    int n = snprintf(text, sizeof text, "%ld\n%s\n", (long)getpid(), mes_path ? mes_path : "");
    if (n < 0 || (size_t)n >= sizeof text || ftruncate(f, 0) != 0 || pwrite(f, text, (size_t)n, 0) != n) {
        err_why(why, why_len, "%s: cannot write the daemon's pid and socket: %s", path, strerror(errno));
        close(f);
        return IFPP_E_IO;
    }
    *fd = f;
    return IFPP_OK;
}

ifpp_err station_daemon_guard(const char *store_path, int *fd, long *pid, char *sock, size_t cap, char *why,
                              size_t why_len)
{
    char path[PATH_MAX], text[256];
    *pid = 0;
    *fd = -1;
    if (cap)
        sock[0] = '\0';
    int f;
    ifpp_err e = station_lock_open(store_path, O_RDONLY, true, path, sizeof path, &f, why, why_len);
    if (e != IFPP_OK || f < 0)
        return e; /* none and none can be made: no daemon ever ran here, and the store cannot be written */
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    if (fcntl(f, F_SETLK, &fl) == 0) {
        *fd = f;
        return IFPP_OK;
    }
    int err = errno;
    struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if ((err != EAGAIN && err != EACCES) || fcntl(f, F_GETLK, &q) != 0) {
        err_why(why, why_len, "%s: cannot lock: %s", path, strerror(err));
        close(f);
        return IFPP_E_IO;
    }
    *pid = q.l_type != F_UNLCK && q.l_pid > 0 ? (long)q.l_pid : -1;
    ssize_t r = pread(f, text, sizeof text - 1, 0); /* what the daemon wrote: bounded, its second line */
    text[r > 0 ? r : 0] = '\0';
    char *nl = strchr(text, '\n'), *end = nl ? strchr(nl + 1, '\n') : NULL;
    if (nl && end && cap) {
        *end = '\0';
        snprintf(sock, cap, "%s", nl + 1);
    }
    close(f);
    return IFPP_OK;
}
