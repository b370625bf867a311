/*
 * ifppctl_cli.c -- the station's command line as a library function: one subcommand per step of
 * SGP.41 §5.1 at the station, on top of agent/station.h. The product's ifppctl is a one-line
 * main() around ifppctl_main(); the rehearsal tool under tests/ calls the same function after
 * registering the simulator's `virtual` backend, so tests and the demo run exactly the
 * product's commands (issue 8, item 2).
 *
 * This file parses, checks usage and prints; what a verdict means, which files a command needs
 * and which output paths are refused is station.c's.
 */
#include "ifppctl_cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "deletion.h"
#include "export.h"
#include "fsutil.h"
#include "hex.h"
#include "import.h"
#include "label.h"
#include "mes.h"
#include "mes_client.h"
#include "station.h"

#ifndef IFPP_VERSION
#define IFPP_VERSION "unknown"
#endif

typedef struct {
    station_config cfg;
    const char *out, *slot, *serial, *profile_type, *day, *anchor, *since, *event, *eid, *txid, *limit, *to;
    const char *socket, *config; /* --socket, --config */
    const char *serials, *eids, *job; /* delete (use case A.4) */
    bool deletions;                   /* report --deletions */
    bool complete, logical_channel, additional_profile, list, store_given;
    char given[32]; /* the command options given, as their short codes */
    const char *prog; /* the program's name as invoked (ifppctl, ifpp-rehearse) */
} options;

/* Option codes that any command takes (where the station's files are). */
#define GLOBAL_OPTS "spICRFKSTP"
/* audit's filters: only with --list */
#define AUDIT_FILTERS "yeEXNn"

/* Every command but an import works on a store that exists: none of them may create one by a typo. */
#define STORE_EXISTING (STATION_NEED_STORE | STATION_STORE_MUST_EXIST)

/* Reads: the store opened read-only (never created, works on a read-only mount, issue 9 items 10, 11). */
#define STORE_READ (STATION_NEED_STORE | STATION_STORE_MUST_EXIST | STATION_STORE_READONLY)

typedef struct ifppctl_cmd ifppctl_cmd;
struct ifppctl_cmd {
    const char *name, *args, *what;
    const char *opts;     /* the command options it takes (short codes) */
    const char *required; /* of which it cannot do without */
    unsigned needs;       /* station_open's STATION_NEED_* */
    bool file_arg;
    int (*run)(const ifppctl_cmd *c, options *o, station *st, const char *arg);
};

/*
 * A string from the store, a card or the operator, fit for a terminal: every byte outside
 * printable ASCII as \xNN, at most cap-1 bytes (a serial with ESC[2J cannot clear the screen or
 * fake a PASS line, issue 9 item 5). NULL reads "-".
 */
static const char *safe(const char *in, char *out, size_t cap)
{
    static const char hexd[] = "0123456789abcdef";
    size_t n = 0;
    if (!in)
        in = "-";
    if (cap < 9)
        return "";
    for (; *in && n + 8 < cap; in++) { /* room left for one \xNN, "..." and the NUL */
        unsigned char ch = (unsigned char)*in;
        if (ch >= 0x20 && ch < 0x7F && ch != '\\') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hexd[ch >> 4];
            out[n++] = hexd[ch & 15];
        }
    }
    if (*in) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* Bytes as hex into out (cap >= 2n+1), for transaction ids and EIDs. */
static const char *hexs(const uint8_t *b, size_t n, char *out, size_t cap)
{
    if (!b || !n || hex_encode(b, n, out, cap) != IFPP_OK)
        snprintf(out, cap, "-");
    return out;
}

static int fail(int rc, const char *what, ifpp_err e, const char *why)
{
    if (what)
        fprintf(stderr, "ifppctl: %s: %s\n", what, why && *why ? why : err_str(e));
    else /* why names its object itself */
        fprintf(stderr, "ifppctl: %s\n", why && *why ? why : err_str(e));
    return rc;
}

/* A failure of the station (memory, disk, store) or a refusal of what it was given. */
static int exit_of(ifpp_err e)
{
    return e == IFPP_E_NOMEM || e == IFPP_E_INTERNAL || e == IFPP_E_IO || e == IFPP_E_CRYPTO ? STATION_EXIT_FAILURE
                                                                                              : STATION_EXIT_REFUSED;
}

static int cmd_import(const ifppctl_cmd *c, options *o, station *st, const char *file)
{
    import_summary sum;
    char why[512] = "";
    bool vault = !strcmp(c->name, "import-vault");
    ifpp_err e = vault ? import_vault_file(st->st, file, st->ci, &sum, why, sizeof why)
                       : import_euicc_data_file(st->st, file, st->ci, &sum, why, sizeof why);
    if (e != IFPP_OK) { /* a full disk or a damaged store is the station's failure, not the bundle's fault */
        if (exit_of(e) == STATION_EXIT_FAILURE)
            fprintf(stderr, "%s: %s: nothing imported from %s, the station failed (not the bundle): %s\n", o->prog,
                    c->name, file, *why ? why : err_str(e));
        else
            fprintf(stderr, "%s: %s refused, nothing imported: %s\n", o->prog, file, *why ? why : err_str(e));
        return exit_of(e);
    }
    if (vault)
        printf("%s: %zu BPP(s): %zu new, %zu already imported\n", file, sum.records, sum.added, sum.duplicate);
    else
        printf("%s: %zu eUICC(s), %zu One-time Key(s) imported\n", file, sum.records, sum.keys);
    return STATION_EXIT_OK;
}

static int cmd_request(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    uint8_t *req = NULL;
    size_t n, items;
    char why[512] = "";
    ifpp_err e = station_check_output(st, o->out, why, sizeof why);
    if (e != IFPP_OK)
        return fail(STATION_EXIT_USAGE, "request", e, why);
    e = export_bpp_request(st->st, st->station_id, o->profile_type ? o->profile_type : "default", st->station_key,
                           st->station_cert, &req, &n, &items, why, sizeof why);
    if (e == IFPP_OK && (e = fs_write_atomic(o->out, req, n, 0644)) != IFPP_OK)
        snprintf(why, sizeof why, "%s: cannot write it: %s", o->out, err_str(e));
    free(req);
    if (e != IFPP_OK)
        return fail(exit_of(e), "BPP request", e, why);
    printf("%s: BPP request for %zu One-time Key(s)\n", o->out, items);
    return STATION_EXIT_OK;
}

static void print_progress(void *arg, session_step step, const char *detail)
{
    const char *serial = arg; /* already made safe */
    char d[256];
    if (step == SESSION_STEP_DONE)
        return;
    printf("  [%s] %s%s%s\n", serial, session_step_name(step), detail ? ": " : "", detail ? safe(detail, d, sizeof d) : "");
    fflush(stdout);
}

/* Parses and opens the --slot, with --logical-channel as the older spelling of channel=logical. */
static int open_slot(const options *o, station_slot *sl)
{
    station_slot_options so;
    char why[512] = "";
    ifpp_err e = station_slot_parse(o->slot, &so, why, sizeof why);
    if (e != IFPP_OK)
        return fail(STATION_EXIT_USAGE, NULL, e, why);
    if (o->logical_channel)
        so.logical_channel = true;
    if ((e = station_slot_open(&so, sl, why, sizeof why)) != IFPP_OK)
        return fail(e == IFPP_E_ARG ? STATION_EXIT_USAGE : STATION_EXIT_FAILURE, o->slot, e, why);
    return -1;
}

static int cmd_provision(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    station_slot sl;
    char serial[160], msg[600];
    int rc = open_slot(o, &sl);
    if (rc >= 0)
        return rc;
    session_result r;
    unsigned flags = (o->complete ? STATION_COMPLETE : 0) | (o->additional_profile ? STATION_ADDITIONAL_PROFILE : 0);
    safe(o->serial, serial, sizeof serial); /* the session refuses a bad serial; the screen never shows it raw */
    station_verdict v = station_provision(st, &sl, o->serial, o->profile_type, flags, print_progress, serial, &r);
    printf("%s %s: %s\n", serial, station_verdict_name(v), safe(r.message, msg, sizeof msg));
    station_slot_close(&sl);
    return station_exit_code(v);
}

#define RECOVER_LINES_MAX 256 /* outcome lines kept (SESSION_MAX_UNRESOLVED and retired keys fit) */

typedef struct {
    char *line[RECOVER_LINES_MAX];
    size_t n, dropped;
} recover_log;

/* One BPP's outcome line, as recover prints it after the count (txid in hex, to: the state's name). */
static void recover_line(recover_log *l, const char *txid, const char *to, const char *why)
{
    char tx[80], t[40], w[400], line[600];
    snprintf(line, sizeof line, "  BPP %s -> %s: %s", safe(txid, tx, sizeof tx),
             !strcmp(to, bpp_state_name(BPP_IN_DOUBT)) ? "stays in_doubt" : safe(to, t, sizeof t),
             safe(why, w, sizeof w));
    if (l->n < RECOVER_LINES_MAX && (l->line[l->n] = strdup(line)))
        l->n++;
    else
        l->dropped++;
}

/* What recover decided for one BPP, as the session tells it: kept to print after the count. */
static void note_outcome(void *arg, const uint8_t *txid, size_t txid_len, bpp_state to, const char *why)
{
    char tx[33];
    recover_line(arg, hexs(txid, txid_len, tx, sizeof tx), bpp_state_name(to), why);
}

/*
 * recover's lines and exit code, the same whether ifppctl ran it or ifpp-agent did: the count (or why it
 * failed), then each BPP's outcome and why (also after a failure part-way). Frees the lines.
 */
static int print_recover(const char *slot, station_verdict v, size_t resolved, recover_log *l, const char *why)
{
    char s[300];
    int rc;
    if (v == STATION_PASS) {
        printf("%s: %zu BPP(s) resolved from the eUICC's evidence\n", safe(slot, s, sizeof s), resolved);
        rc = STATION_EXIT_OK;
    } else {
        rc = fail(station_exit_code(v), "recover", IFPP_E_IO, why);
    }
    for (size_t i = 0; i < l->n; i++)
        printf("%s\n", l->line[i]);
    if (l->dropped)
        printf("  ... and %zu more (ifppctl audit --list --event bpp_state)\n", l->dropped);
    if (v == STATION_PASS && l->n + l->dropped == 0)
        printf("  nothing to resolve: this eUICC has no reserved or in-doubt BPP\n");
    for (size_t i = 0; i < l->n; i++)
        free(l->line[i]);
    l->n = 0;
    return rc;
}

static int cmd_recover(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    station_slot sl;
    size_t resolved = 0;
    char why[512] = "";
    recover_log *l = calloc(1, sizeof *l);
    if (!l)
        return fail(STATION_EXIT_FAILURE, "recover", IFPP_E_NOMEM, NULL);
    int rc = open_slot(o, &sl);
    if (rc < 0) {
        ifpp_err e = station_recover(st, &sl, &resolved, note_outcome, l, why, sizeof why);
        station_slot_close(&sl);
        rc = print_recover(o->slot, station_verdict_of_recover(e), resolved, l, *why ? why : err_str(e));
    }
    free(l);
    return rc;
}

/* A UTC time as the store writes it: a day, or YYYY-MM-DDTHH:MM:SSZ. */
static bool valid_since(const char *t)
{
    char day[11];
    size_t n = strlen(t);
    if (n == 10)
        return label_day_valid(t);
    if (n != 20 || t[10] != 'T' || t[13] != ':' || t[16] != ':' || t[19] != 'Z')
        return false;
    memcpy(day, t, 10);
    day[10] = '\0';
    for (int i = 11; i < 19; i++)
        if (i != 13 && i != 16 && (t[i] < '0' || t[i] > '9'))
            return false;
    return label_day_valid(day) && atoi(t + 11) < 24 && atoi(t + 14) < 60 && atoi(t + 17) < 60;
}

/* Seconds since the epoch of "YYYY-MM-DDTHH:MM:SSZ" (the store's times); -1 if it is not one. */
static long long utc_seconds(const char *t)
{
    int y, mo, d, h, mi, se;
    if (!t || sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &se) != 6 || mo < 1 || mo > 12)
        return -1;
    /* days from civil (proleptic Gregorian), as in H. Hinnant's date algorithms */
    y -= mo <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400, doy = (153LL * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return ((era * 146097 + doe - 719468) * 24 + h) * 3600 + mi * 60LL + se;
}

/* The day of report --to: --day, or today (UTC). */
static void report_day(const options *o, char day[11])
{
    if (o->day) {
        snprintf(day, 11, "%s", o->day);
    } else {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(day, 11, "%Y-%m-%d", &tm);
    }
}

/* What report --to wrote, the same lines whether ifppctl or ifpp-agent wrote it. */
static void print_day_summary(const char *to, const export_day_summary *sum)
{
    char d[200], n[3][200];
    safe(to, d, sizeof d);
    if (sum->stale_removed)
        printf("%s: removed %zu temporary file(s) an interrupted export left\n", d, sum->stale_removed);
    printf("%s/%s: Profile Loading Report with %zu result(s): %zu PIR(s), %zu without PIR\n", d,
           safe(sum->plr_name, n[0], sizeof n[0]), sum->plr.results, sum->plr.pirs, sum->plr.no_result);
    printf("%s/%s: %zu DUT row(s): %zu PASS, %zu FAIL, %zu unresolved, %zu BPP(s) not used", d,
           safe(sum->csv_name, n[1], sizeof n[1]), sum->tables.rows, sum->tables.pass, sum->tables.fail,
           sum->tables.unresolved, sum->tables.unused);
    if (sum->tables.removed)
        printf(", %zu profile(s) deleted (use case A.4)", sum->tables.removed);
    printf("\n");
    printf("%s/%s: summary with charts\n", d, safe(sum->html_name, n[2], sizeof n[2]));
    printf("each written, fsync'd, read back and compared, then renamed; the directory synced\n");
}

/* What report --out wrote, the same line whether ifppctl or ifpp-agent wrote it. */
static void print_report_summary(const char *out, const export_summary *sum)
{
    char f[300];
    printf("%s: Profile Loading Report with %zu result(s): %zu PIR(s), %zu without PIR; written, read back, verified\n",
           safe(out, f, sizeof f), sum->results, sum->pirs, sum->no_result);
}

/* report --to DIR: the day's three files onto removable media (issue 15, items 1-2). */
static int report_to_media(options *o, station *st)
{
    export_day_summary sum;
    char why[512] = "", day[11];
    report_day(o, day);
    ifpp_err e = export_day_to_media(st->st, st->station_id, day, st->station_key, st->station_cert, st->dm_root, o->to,
                                     &sum, why, sizeof why);
    if (e != IFPP_OK)
        return fail(e == IFPP_E_ARG || e == IFPP_E_NOT_FOUND ? STATION_EXIT_REFUSED : exit_of(e), "report --to", e,
                    why);
    print_day_summary(o->to, &sum);
    return STATION_EXIT_OK;
}

/* report --deletions: the signed Deletion Report (use case A.4) for the MSP and the customer, streamed. */
static int report_deletions(options *o, station *st)
{
    export_deletion_summary sum;
    char why[512] = "", d[200];
    ifpp_err e = o->out ? station_check_output(st, o->out, why, sizeof why) : IFPP_OK;
    if (e != IFPP_OK)
        return fail(STATION_EXIT_USAGE, "report --deletions", e, why);
    e = export_deletion_report(st->st, st->station_id, o->job, st->station_key, st->station_cert, st->dm_root,
                               o->out ? o->out : o->to, !o->out, &sum, why, sizeof why);
    if (e != IFPP_OK)
        return fail(e == IFPP_E_ARG || e == IFPP_E_NOT_FOUND ? STATION_EXIT_REFUSED : exit_of(e), "Deletion Report", e,
                    why);
    safe(o->out ? o->out : o->to, d, sizeof d);
    if (sum.stale_removed)
        printf("%s: removed %zu temporary file(s) an interrupted export left\n", d, sum.stale_removed);
    printf("%s%s%s: Deletion Report with %zu eUICC-signed deletion notification(s); written, read back, verified\n",
           d, o->out ? "" : "/", o->out ? "" : sum.name, sum.deletions);
    return STATION_EXIT_OK;
}

static int cmd_report(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    export_summary sum;
    char why[512] = "";
    if (o->deletions)
        return report_deletions(o, st);
    if (o->to)
        return report_to_media(o, st);
    ifpp_err e = station_check_output(st, o->out, why, sizeof why);
    if (e != IFPP_OK)
        return fail(STATION_EXIT_USAGE, "report", e, why);
    e = export_loading_report(st->st, st->station_id, o->day, st->station_key, st->station_cert, st->dm_root, o->out,
                              &sum, why, sizeof why);
    if (e != IFPP_OK)
        return fail(exit_of(e), "Profile Loading Report", e, why);
    print_report_summary(o->out, &sum);
    return STATION_EXIT_OK;
}

/* verify FILE: an exported bundle checked offline; with --store also tied to this store's audit chain. */
static int cmd_verify(const ifppctl_cmd *c, options *o, station *st, const char *file)
{
    size_t entries = 0;
    char why[768] = "", f[200];
    export_verify_summary sum;
    bool unreadable = false;
    safe(file, f, sizeof f);
    ifpp_err e = export_verify_path(file, st->dm_root, st->ci, time(NULL), &sum, &unreadable, why, sizeof why);
    if (e != IFPP_OK && unreadable)
        return fail(exit_of(e) == STATION_EXIT_FAILURE ? STATION_EXIT_FAILURE : STATION_EXIT_REFUSED, NULL, e, why);
    if (e != IFPP_OK) {
        fprintf(stderr, "%s: %s: FAILS verification: %s\n", o->prog, f, why);
        return STATION_EXIT_REFUSED;
    }
    printf("%s: %s signed by the station, chain to the Device Manufacturer root: verified\n", f,
           bundle_type_name(sum.type));
    if (sum.type == BUNDLE_LOADING_REPORT)
        printf("%s: %zu result(s): %zu PIR(s) verified under the CI (DPFF06), %zu NoResultRecord(s)\n", f, sum.records,
               sum.pirs, sum.no_result);
    if (sum.type == BUNDLE_DELETION_REPORT)
        printf("%s: %zu deletion(s): every eUICC-signed deletion notification verified, its eUICC under the CI\n", f,
               sum.deletions);
    printf("%s: audit anchor: entry %llu\n", f, (unsigned long long)sum.anchor.entry);
    if (st->st) {
        if ((e = store_audit_check(st->st, &sum.anchor, &entries, why, sizeof why)) != IFPP_OK) {
            fprintf(stderr, "%s: %s does not tie to the store %s: %s\n", o->prog, f, o->cfg.store_path, why);
            return exit_of(e) == STATION_EXIT_FAILURE ? STATION_EXIT_FAILURE : STATION_EXIT_REFUSED;
        }
        printf("%s: ties to the store: its audit chain of %zu entries holds the anchored entry\n", f, entries);
    }
    return STATION_EXIT_OK;
}

/* ---- delete: use case A.4, a deletion job over a list of DUT serials or EIDs (issue 15 item 4) -- */

static void delete_outcome(void *arg, size_t line, const char *ident, bool done, bool skipped, size_t profiles,
                           const char *why)
{
    char id[160], w[600];
    (void)arg;
    safe(ident, id, sizeof id);
    if (skipped)
        printf("  line %zu %s: done before (skipped)\n", line, id);
    else if (done)
        printf("  line %zu %s: DELETED, %zu profile(s) deleted and recorded now\n", line, id, profiles);
    else
        printf("  line %zu %s: FAIL: %s\n", line, id, safe(why, w, sizeof w));
    fflush(stdout);
}

static int cmd_delete(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    deletion_summary sum;
    char why[1024] = "", job[200];
    deletion_job j = {.job = o->job, .kind = o->eids ? STORE_DELETION_BY_EID : STORE_DELETION_BY_SERIAL,
                      .list_path = o->eids ? o->eids : o->serials, .slot_spec = o->slot, .outcome = delete_outcome};
    ifpp_err e = deletion_run(st, &j, &sum, why, sizeof why);
    if (e != IFPP_OK)
        return fail(exit_of(e) == STATION_EXIT_FAILURE || e == IFPP_E_BUSY ? STATION_EXIT_FAILURE : STATION_EXIT_REFUSED,
                    "delete", e, why);
    safe(sum.job, job, sizeof job);
    printf("job %s%s: %zu device(s) on %zu line(s): %zu deleted now (%zu profile(s)), %zu done before, %zu failed%s\n",
           job, sum.resumed ? " (resumed)" : "", sum.devices, sum.lines, sum.done, sum.profiles, sum.skipped,
           sum.failed, sum.finished ? "; job finished" : "; re-run the job to retry the failed ones");
    return sum.failed ? STATION_EXIT_DUT_FAIL : STATION_EXIT_OK;
}

/* ---- status: one consistent snapshot of the store, then printed ------------------------------ */

#define STATUS_TYPES_MAX 64 /* profile types shown (a line has few) */
#define STATUS_OPEN_MAX 20  /* reserved / in-doubt BPPs shown one by one */

typedef struct {
    char type[LABEL_MAX + 1];
    size_t n;
} status_stock;

typedef struct {
    char txid[33], slot[200], serial[160], at[32];
    bpp_state state;
} status_open;

typedef struct {
    size_t counts[BPP_STATE__COUNT], today[BPP_STATE__COUNT], conn_today[STORE_CONN__COUNT];
    status_stock stock[STATUS_TYPES_MAX];
    size_t n_stock, more_stock, n_open, open_total;
    status_open open[STATUS_OPEN_MAX];
    char day[11];
} status_view;

static ifpp_err status_stock_one(void *arg, const char *type, size_t n)
{
    status_view *v = arg;
    if (v->n_stock == STATUS_TYPES_MAX) {
        v->more_stock += n;
        return IFPP_OK;
    }
    status_stock *s = &v->stock[v->n_stock++];
    safe(type, s->type, sizeof s->type);
    s->n = n;
    return IFPP_OK;
}

static ifpp_err status_open_one(void *arg, const store_open_record *r)
{
    status_view *v = arg;
    status_open *x = &v->open[v->n_open++];
    hexs(r->txid, r->txid_len, x->txid, sizeof x->txid);
    safe(r->slot, x->slot, sizeof x->slot);
    safe(r->dut_serial, x->serial, sizeof x->serial);
    safe(r->updated_at, x->at, sizeof x->at);
    x->state = r->state;
    return IFPP_OK;
}

static ifpp_err status_read(store *s, void *arg)
{
    status_view *v = arg;
    ifpp_err e = IFPP_OK;
    for (int i = 0; i < BPP_STATE__COUNT && e == IFPP_OK; i++)
        e = store_count_bpps(s, (bpp_state)i, &v->counts[i]);
    if (e == IFPP_OK)
        e = store_each_stock(s, status_stock_one, v);
    if (e == IFPP_OK)
        e = store_each_open_bpp(s, STATUS_OPEN_MAX, status_open_one, v, &v->open_total);
    if (e == IFPP_OK)
        e = store_day_counts(s, v->day, v->today);
    if (e == IFPP_OK)
        e = store_conn_test_counts(s, v->day, v->conn_today);
    return e;
}

/* The stock lines of status and stock, from the store or from the daemon (types already made safe). */
static void print_stock(const status_view *v)
{
    if (v->n_stock == 0)
        printf("stock: no available BPP (import a vault: ifppctl import-vault FILE)\n");
    else
        printf("stock (available BPPs) per profile type:\n");
    for (size_t i = 0; i < v->n_stock; i++)
        printf("  %-24s %zu\n", v->stock[i].type, v->stock[i].n);
    if (v->more_stock)
        printf("  (other types)            %zu\n", v->more_stock);
}

static ifpp_err stock_read(store *s, void *arg)
{
    return store_each_stock(s, status_stock_one, arg);
}

static int cmd_stock(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    status_view *v = calloc(1, sizeof *v);
    if (!v)
        return fail(STATION_EXIT_FAILURE, "stock", IFPP_E_NOMEM, NULL);
    ifpp_err e = store_read(st->st, stock_read, v);
    if (e == IFPP_OK)
        print_stock(v);
    free(v);
    return e == IFPP_OK ? STATION_EXIT_OK : fail(STATION_EXIT_FAILURE, "stock: cannot read the store", e, store_errmsg(st->st));
}

static void print_age(long long secs)
{
    if (secs < 0)
        printf("age unknown");
    else if (secs < 3600)
        printf("age %lldm%02llds", secs / 60, secs % 60);
    else if (secs < 86400)
        printf("age %lldh%02lldm", secs / 3600, secs / 60 % 60);
    else
        printf("age %lldd%02lldh", secs / 86400, secs / 3600 % 24);
}

static int cmd_status(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    status_view *v = calloc(1, sizeof *v);
    if (!v)
        return fail(STATION_EXIT_FAILURE, "status", IFPP_E_NOMEM, NULL);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(v->day, sizeof v->day, "%Y-%m-%d", &tm);
    ifpp_err e = store_read(st->st, status_read, v);
    if (e != IFPP_OK) { /* a damaged or unreadable store is not a store of zeros (issue 9 item 2) */
        free(v);
        return fail(STATION_EXIT_FAILURE, "status: cannot read the store", e, store_errmsg(st->st));
    }
    char path[300];
    printf("store %s\n", safe(st->store_path, path, sizeof path));
    print_stock(v);
    printf("BPPs by state:");
    for (int s = 0; s < BPP_STATE__COUNT; s++)
        printf(" %s %zu%s", bpp_state_name((bpp_state)s), v->counts[s], s + 1 < BPP_STATE__COUNT ? "," : "\n");
    if (v->open_total == 0)
        printf("reserved or in_doubt: none\n");
    else
        printf("reserved or in_doubt: %zu (each waits for `ifppctl recover --slot SLOT` with its DUT):\n", v->open_total);
    for (size_t i = 0; i < v->n_open; i++) {
        const status_open *x = &v->open[i];
        printf("  %-8s BPP %s slot %s serial %s since %s, ", bpp_state_name(x->state), x->txid, x->slot, x->serial,
               x->at);
        print_age(utc_seconds(x->at) < 0 ? -1 : (long long)now - utc_seconds(x->at));
        printf("\n");
    }
    if (v->open_total > v->n_open)
        printf("  ... and %zu more (ifppctl audit --list --event bpp_state)\n", v->open_total - v->n_open);
    printf("today (%s UTC): PASS %zu (profiles installed), FAIL %zu (profiles failed), %zu left in doubt\n", v->day,
           v->today[BPP_INSTALLED], v->today[BPP_FAILED], v->today[BPP_IN_DOUBT]);
    printf("today's connectivity tests (EUICCF05): passed %zu, failed %zu, not offered %zu, answer refused %zu\n",
           v->conn_today[STORE_CONN_PASSED], v->conn_today[STORE_CONN_FAILED], v->conn_today[STORE_CONN_SKIPPED],
           v->conn_today[STORE_CONN_REFUSED]);
    free(v);
    return STATION_EXIT_OK;
}

/* ---- audit: verify (anchored or not), or list ------------------------------------------------ */

static ifpp_err print_audit_entry(void *arg, const store_audit_entry *x)
{
    char tx[33], eid[33], b[7][300];
    (void)arg;
    if (x->form == 1) {
        printf("#%llu %s %s %s\n", (unsigned long long)x->id, safe(x->at, b[0], sizeof b[0]),
               safe(x->event, b[1], sizeof b[1]), safe(x->detail, b[2], sizeof b[2]));
        return IFPP_OK;
    }
    printf("#%llu %s %s", (unsigned long long)x->id, safe(x->at, b[0], sizeof b[0]), safe(x->event, b[1], sizeof b[1]));
    if (x->txid)
        printf(" txid=%s", hexs(x->txid, x->txid_len, tx, sizeof tx));
    if (x->eid)
        printf(" eid=%s", hexs(x->eid, x->eid_len, eid, sizeof eid));
    if (x->to_state)
        printf(" %s -> %s", x->from_state ? safe(x->from_state, b[2], sizeof b[2]) : "(new)",
               safe(x->to_state, b[3], sizeof b[3]));
    if (x->dut_serial)
        printf(" serial=%s", safe(x->dut_serial, b[4], sizeof b[4]));
    if (x->slot)
        printf(" slot=%s", safe(x->slot, b[5], sizeof b[5]));
    if (x->session)
        printf(" session=%s", safe(x->session, b[6], sizeof b[6]));
    if (x->object)
        printf(" object=%s", safe(x->object, b[2], sizeof b[2]));
    if (x->reason)
        printf(" reason=\"%s\"", safe(x->reason, b[3], sizeof b[3]));
    printf("\n");
    return IFPP_OK;
}

/* Hex of exactly lo..hi bytes into out; false if it is not. */
static bool parse_hex_arg(const char *h, uint8_t *out, size_t lo, size_t hi, size_t *n)
{
    size_t len = strlen(h);
    return len >= 2 * lo && len <= 2 * hi && len % 2 == 0 && hex_decode(h, out, hi, n) == IFPP_OK && *n >= lo;
}

static int audit_list(options *o, station *st)
{
    uint8_t eid[16], txid[16];
    size_t eid_len = 0, matched = 0;
    store_audit_filter f = {.since = o->since, .event = o->event, .dut_serial = o->serial, .limit = 100};
    if (o->eid)
        f.eid = eid; /* parsed by check_usage */
    if (o->txid)
        f.txid = txid;
    if (o->eid)
        (void)parse_hex_arg(o->eid, eid, 16, 16, &eid_len);
    if (o->txid)
        (void)parse_hex_arg(o->txid, txid, 1, 16, &f.txid_len);
    if (o->limit)
        f.limit = (size_t)strtoul(o->limit, NULL, 10);
    ifpp_err e = store_each_audit(st->st, &f, print_audit_entry, NULL, &matched);
    if (e != IFPP_OK)
        return fail(STATION_EXIT_FAILURE, "audit log", e, store_errmsg(st->st));
    if (matched > f.limit)
        printf("(the newest %zu of %zu matching entries; --limit N shows more, --since narrows)\n", f.limit, matched);
    else
        printf("(%zu matching entr%s; the listing verifies nothing: `ifppctl audit --anchor FILE` does)\n", matched,
               matched == 1 ? "y" : "ies");
    return STATION_EXIT_OK;
}

/*
 * The anchor (the audit chain's head when it was signed) in a report or BPP request this station
 * exported, its signature checked under the DM root; why names the file and errno.
 */
static ifpp_err read_anchor(const char *path, const cert *root, store_anchor *a, char *why, size_t why_len)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    char inner[512] = "";
    ifpp_err e = fs_read_all_why(path, 1u << 30, &buf, &n, inner, sizeof inner);
    if (e != IFPP_OK) {
        err_why(why, why_len, "--anchor: %s", *inner ? inner : err_str(e));
        return e;
    }
    if ((e = export_read_anchor(buf, n, root, a, inner, sizeof inner)) != IFPP_OK)
        err_why(why, why_len, "--anchor %s: %s", path, *inner ? inner : err_str(e));
    free(buf);
    return e;
}

static int cmd_audit(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    size_t n;
    store_anchor anchor;
    char why[768] = "", path[300];
    if (o->list)
        return audit_list(o, st);
    ifpp_err e = o->anchor ? read_anchor(o->anchor, st->dm_root, &anchor, why, sizeof why) : IFPP_OK;
    if (e != IFPP_OK)
        return fail(exit_of(e), "audit", e, why);
    e = store_audit_check(st->st, o->anchor ? &anchor : NULL, &n, why, sizeof why);
    if (e != IFPP_OK)
        return fail(STATION_EXIT_FAILURE, o->anchor ? "audit log against the anchor" : "audit log", e, why);
    printf("audit log: %zu entries, hash chain intact, every BPP's state as its entries replay\n", n);
    if (o->anchor)
        printf("anchored: entry %llu, as %s carries it (signed by this station, verified under the DM root): "
               "nothing up to it was cut or rewritten\n",
               (unsigned long long)anchor.entry, safe(o->anchor, path, sizeof path));
    else
        printf("NOT anchored: no signed report or request given, so a rewrite of the whole log would not show; "
               "`ifppctl audit --anchor FILE` checks against the last one exported\n");
    return STATION_EXIT_OK;
}

/* ---- config check, and the commands a running ifpp-agent serves (issue 13 item 4) --------------- */

#define IFPPCTL_DEFAULT_CONFIG "/etc/ifpp-station/station.conf.d"

/* Loads --config (or the default) as the daemon does; NULL after printing why (file and line). */
static agent_config *load_config(const options *o, const char *what)
{
    char why[1024] = "";
    agent_config *cfg = malloc(sizeof *cfg);
    if (!cfg) {
        fail(STATION_EXIT_FAILURE, what, IFPP_E_NOMEM, NULL);
        return NULL;
    }
    if (config_load(o->config ? o->config : IFPPCTL_DEFAULT_CONFIG, cfg, why, sizeof why) != IFPP_OK) {
        fprintf(stderr, "%s: %s: configuration: %s\n", o->prog, what, why);
        free(cfg);
        return NULL;
    }
    return cfg;
}

/* The daemon's own validation (config.h) and the merged result in its syntax; exit 2 on a bad configuration. */
static int cmd_config(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    (void)st;
    (void)arg; /* "check", as check_usage made sure */
    agent_config *cfg = load_config(o, "config check");
    if (!cfg)
        return STATION_EXIT_USAGE;
    printf("# %s: valid (%zu file(s), %zu slot(s)); merged:\n", o->config ? o->config : IFPPCTL_DEFAULT_CONFIG,
           cfg->n_files, cfg->n_slots);
    config_print(cfg, stdout);
    free(cfg);
    (void)c;
    return STATION_EXIT_OK;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static long long jint(json_t *o, const char *k)
{
    return json_is_integer(json_object_get(o, k)) ? (long long)json_integer_value(json_object_get(o, k)) : -1;
}

/* The verdict a result name means ("PASS", "REFUSED", "FAIL", "STATION-FAILURE"); false for any other. */
static bool verdict_named(const char *name, station_verdict *v)
{
    for (int k = STATION_PASS; k <= STATION_FAILURE; k++)
        if (!strcmp(name, station_verdict_name((station_verdict)k))) {
            *v = (station_verdict)k;
            return true;
        }
    return false;
}

/* A count from the daemon: 0 when missing or negative (a hostile daemon's numbers print as no more than they are). */
static size_t jsize(json_t *o, const char *k)
{
    long long v = jint(o, k);
    return v > 0 ? (size_t)v : 0;
}

/* -1 when the daemon's reply says ok; else its error printed and the exit code it means. */
static int daemon_check(const options *o, const char *what, json_t *r)
{
    if (json_is_true(json_object_get(r, "ok")))
        return -1;
    char a[80], b[600];
    const char *err = jstr(r, "error");
    fprintf(stderr, "%s: %s: ifpp-agent answered %s: %s\n", o->prog, what, safe(err, a, sizeof a),
            safe(jstr(r, "message"), b, sizeof b));
    if (!strcmp(err, "bad-request"))
        return STATION_EXIT_USAGE;
    if (!strcmp(err, "busy") || !strcmp(err, "not-found") || !strcmp(err, "refused") ||
        !strcmp(err, "too-many-clients"))
        return STATION_EXIT_REFUSED;
    return STATION_EXIT_FAILURE;
}

/* Sends req (consumed) and waits for its reply; -1 with *r on an ok reply, else the exit code (printed). */
static int daemon_call(mes_client *m, const options *o, const char *what, json_t *req, long timeout_ms, json_t **r,
                       char *id, size_t id_cap)
{
    char why[600] = "";
    ifpp_err e = req ? mes_client_send(m, req, id, id_cap, why, sizeof why) : IFPP_E_NOMEM;
    json_decref(req);
    if (e == IFPP_OK)
        e = mes_client_reply(m, id, timeout_ms, r, why, sizeof why);
    if (e != IFPP_OK)
        return fail(STATION_EXIT_FAILURE, what, e, why);
    int rc = daemon_check(o, what, *r);
    if (rc >= 0)
        json_decref(*r);
    return rc;
}

static int daemon_stock(mes_client *m, const options *o)
{
    char id[40];
    json_t *r, *n;
    const char *type;
    int rc = daemon_call(m, o, "stock", json_pack("{s:s}", "op", "stock"), MES_CLIENT_CONNECT_MS, &r, id, sizeof id);
    if (rc >= 0)
        return rc;
    status_view *v = calloc(1, sizeof *v);
    if (!v) {
        json_decref(r);
        return fail(STATION_EXIT_FAILURE, "stock", IFPP_E_NOMEM, NULL);
    }
    json_object_foreach(json_object_get(r, "stock"), type, n)
        if (json_is_integer(n) && json_integer_value(n) >= 0)
            (void)status_stock_one(v, type, (size_t)json_integer_value(n));
    print_stock(v);
    if (jint(r, "low_under") >= 0)
        printf("(ifpp-agent warns under %lld)\n", jint(r, "low_under"));
    free(v);
    json_decref(r);
    return STATION_EXIT_OK;
}

static int daemon_status(mes_client *m, const options *o, const char *sock)
{
    char id[40], b[8][300];
    json_t *r, *sl;
    size_t k;
    int rc = daemon_call(m, o, "status", json_pack("{s:s,s:s}", "op", "query", "what", "station"),
                         MES_CLIENT_CONNECT_MS, &r, id, sizeof id);
    if (rc >= 0)
        return rc;
    printf("ifpp-agent at %s: %lld slot(s), %lld busy, %lld in fault; %lld client(s)\n", safe(sock, b[0], sizeof b[0]),
           jint(r, "slots_total"), jint(r, "slots_busy"), jint(r, "slots_fault"), jint(r, "clients"));
    json_array_foreach(json_object_get(r, "slots"), k, sl) {
        printf("  %-12s %-6s %s", safe(jstr(sl, "slot"), b[0], sizeof b[0]), safe(jstr(sl, "state"), b[1], sizeof b[1]),
               safe(jstr(sl, "spec"), b[2], sizeof b[2]));
        if (*jstr(sl, "serial"))
            printf(" DUT %s step %s", safe(jstr(sl, "serial"), b[3], sizeof b[3]), safe(jstr(sl, "step"), b[4], sizeof b[4]));
        if (*jstr(sl, "last_serial"))
            printf(" last %s %s", safe(jstr(sl, "last_serial"), b[5], sizeof b[5]),
                   safe(jstr(sl, "last_result"), b[6], sizeof b[6]));
        printf(" (PASS %lld, FAIL %lld)", jint(sl, "pass"), jint(sl, "fail"));
        if (*jstr(sl, "fault"))
            printf(" fault: %s", safe(jstr(sl, "fault"), b[7], sizeof b[7]));
        printf("\n");
    }
    json_decref(r);
    return daemon_stock(m, o);
}

static int daemon_provision(mes_client *m, const options *o)
{
    char id[40], why[600] = "", serial[160], slot[100], res[40], msg[600];
    json_t *r;
    json_t *req = json_pack("{s:s,s:s,s:b,s:b}", "op", "provision", "serial", o->serial, "complete", o->complete,
                            "additional_profile", o->additional_profile);
    if (req && o->slot)
        json_object_set_new(req, "slot", json_string(o->slot));
    if (req && o->profile_type)
        json_object_set_new(req, "profile_type", json_string(o->profile_type));
    int rc = daemon_call(m, o, "provision", req, MES_CLIENT_CONNECT_MS, &r, id, sizeof id);
    if (rc >= 0)
        return rc;
    safe(o->serial, serial, sizeof serial);
    printf("  [%s] accepted by ifpp-agent in slot %s\n", serial, safe(jstr(r, "slot"), slot, sizeof slot));
    fflush(stdout);
    json_decref(r);
    ifpp_err e = mes_client_reply(m, id, MES_CLIENT_SESSION_MS, &r, why, sizeof why);
    if (e != IFPP_OK) { /* the session goes on in the daemon: its result is in the store and `status` */
        fprintf(stderr, "%s: provision: %s; the session in slot %s ends in ifpp-agent on its own (status shows it)\n",
                o->prog, why, slot);
        return STATION_EXIT_FAILURE;
    }
    if ((rc = daemon_check(o, "provision", r)) >= 0) {
        json_decref(r);
        return rc;
    }
    const char *result = jstr(r, "result");
    station_verdict v;
    bool known = verdict_named(result, &v);
    printf("%s %s: %s\n", serial, safe(result, res, sizeof res), safe(jstr(r, "message"), msg, sizeof msg));
    json_decref(r);
    if (!known)
        return fail(STATION_EXIT_FAILURE, "provision", IFPP_E_IO, "ifpp-agent answered a result ifppctl does not know");
    return station_exit_code(v);
}

/* A path for the daemon, whose working directory is not ours: made absolute (not resolved: a symlink stays one,
 * for the daemon's media checks to refuse as they would refuse it here). */
static bool daemon_path(const char *path, char *out, size_t cap)
{
    char cwd[4096];
    if (path[0] == '/')
        return (size_t)snprintf(out, cap, "%s", path) < cap;
    if (!getcwd(cwd, sizeof cwd))
        return false;
    return (size_t)snprintf(out, cap, "%s/%s", strcmp(cwd, "/") ? cwd : "", path) < cap;
}

/* report --to DIR or --out FILE written by ifpp-agent: the same lines as ifppctl's own, then each file's SHA-256. */
static int daemon_report(mes_client *m, const options *o)
{
    char id[40], path[MES_PATH_MAX], day[11], h[3][200];
    json_t *r, *f;
    size_t k;
    if (!daemon_path(o->to ? o->to : o->out, path, sizeof path))
        return fail(STATION_EXIT_USAGE, "report", IFPP_E_RANGE, "the destination's absolute path is too long");
    json_t *req = json_pack("{s:s,s:s}", "op", "report", o->to ? "dir" : "out", path);
    if (req && (o->day || o->to)) { /* --to without --day: today, as ifppctl would take it (its clock, not the daemon's) */
        report_day(o, day);
        json_object_set_new(req, "day", json_string(day));
    }
    int rc = daemon_call(m, o, "report", req, MES_CLIENT_REPORT_MS, &r, id, sizeof id);
    if (rc >= 0)
        return rc;
    if (o->to) {
        export_day_summary sum;
        memset(&sum, 0, sizeof sum);
        sum.plr = (export_summary){jsize(r, "results"), jsize(r, "pirs"), jsize(r, "no_result")};
        sum.tables = (report_tables_summary){jsize(r, "rows"), jsize(r, "pass"), jsize(r, "fail"),
                                             jsize(r, "unresolved"), jsize(r, "unused"), jsize(r, "removed")};
        sum.stale_removed = jsize(r, "stale_removed");
        json_t *files = json_object_get(r, "files");
        char *names[3] = {sum.plr_name, sum.csv_name, sum.html_name};
        for (k = 0; k < 3; k++)
            snprintf(names[k], sizeof sum.plr_name, "%s", jstr(json_array_get(files, k), "name"));
        print_day_summary(o->to, &sum);
    } else {
        export_summary sum = {jsize(r, "results"), jsize(r, "pirs"), jsize(r, "no_result")};
        print_report_summary(o->out, &sum);
    }
    json_array_foreach(json_object_get(r, "files"), k, f) {
        printf("sha256 %s  %s (%lld bytes, written by ifpp-agent)\n", safe(jstr(f, "sha256"), h[0], sizeof h[0]),
               safe(jstr(f, "name"), h[1], sizeof h[1]), jint(f, "bytes"));
    }
    json_decref(r);
    return STATION_EXIT_OK;
}

/* recover --slot NAME in ifpp-agent's slot: the same lines and exit code as ifppctl's own recover. */
static int daemon_recover(mes_client *m, const options *o)
{
    char id[40], why[600] = "", slot[100];
    json_t *r, *x;
    size_t k;
    int rc = daemon_call(m, o, "recover", json_pack("{s:s,s:s}", "op", "recover", "slot", o->slot),
                         MES_CLIENT_CONNECT_MS, &r, id, sizeof id);
    if (rc >= 0)
        return rc;
    json_decref(r);
    ifpp_err e = mes_client_reply(m, id, MES_CLIENT_SESSION_MS, &r, why, sizeof why);
    if (e != IFPP_OK) {
        fprintf(stderr, "%s: recover: %s; the recovery in slot %s ends in ifpp-agent on its own\n", o->prog, why,
                safe(o->slot, slot, sizeof slot));
        return STATION_EXIT_FAILURE;
    }
    if ((rc = daemon_check(o, "recover", r)) >= 0) {
        json_decref(r);
        return rc;
    }
    recover_log *l = calloc(1, sizeof *l);
    station_verdict v;
    if (!l || !verdict_named(jstr(r, "result"), &v)) {
        free(l);
        json_decref(r);
        return fail(STATION_EXIT_FAILURE, "recover", IFPP_E_IO, l ? "ifpp-agent answered a result ifppctl does not know"
                                                                  : "out of memory");
    }
    json_array_foreach(json_object_get(r, "outcomes"), k, x) {
        recover_line(l, jstr(x, "txid"), jstr(x, "state"), jstr(x, "why"));
    }
    l->dropped += jsize(r, "outcomes_dropped");
    rc = print_recover(o->slot, v, jsize(r, "resolved"), l, jstr(r, "message"));
    free(l);
    json_decref(r);
    return rc;
}

/* status, stock, provision, report and recover through the daemon named by --socket, or by --config's mes.path. */
static int run_through_daemon(const ifppctl_cmd *c, const options *o)
{
    char sock[CONFIG_PATH_MAX], why[600] = "";
    if (o->socket) {
        snprintf(sock, sizeof sock, "%s", o->socket);
    } else {
        agent_config *cfg = load_config(o, c->name);
        if (!cfg)
            return STATION_EXIT_USAGE;
        snprintf(sock, sizeof sock, "%s", cfg->mes_path);
        free(cfg);
    }
    mes_client *m;
    ifpp_err e = mes_client_open(sock, &m, why, sizeof why);
    if (e != IFPP_OK)
        return fail(e == IFPP_E_ARG ? STATION_EXIT_USAGE : STATION_EXIT_FAILURE, c->name, e, why);
    int rc = c->run == cmd_provision ? daemon_provision(m, o)
             : c->run == cmd_status  ? daemon_status(m, o, sock)
             : c->run == cmd_report  ? daemon_report(m, o)
             : c->run == cmd_recover ? daemon_recover(m, o)
                                     : daemon_stock(m, o);
    mes_client_close(m);
    return rc;
}

/*
 * A command that writes to the store (imports, provision, recover) is refused while ifpp-agent owns it: two
 * writers would each believe their view of the BPPs, and the daemon's slots would race ours (exactly once).
 * Reads (status, audit, report, request, verify --store) open the store read-only; SQLite's WAL gives them a
 * consistent snapshot beside the daemon's writers, so they stay local. *guard holds the claim open.
 */
static int refuse_behind_daemon(const ifppctl_cmd *c, const options *o, int *guard)
{
    char why[600] = "", sock[256], a[300], b[300];
    long pid;
    ifpp_err e = station_daemon_guard(o->cfg.store_path, guard, &pid, sock, sizeof sock, why, sizeof why);
    if (e != IFPP_OK)
        return fail(STATION_EXIT_FAILURE, c->name, e, why);
    if (pid == 0)
        return -1;
    fprintf(stderr, "%s: %s refused: store %s is owned by the running ifpp-agent (pid %ld); ifppctl does not write "
                    "to it behind the daemon's back, nothing was done. Use the daemon: %s --socket %s provision "
                    "--serial S [--slot NAME] (recover --slot NAME, report, status, stock likewise); imports wait until "
                    "it is stopped\n",
            o->prog, c->name, safe(o->cfg.store_path, a, sizeof a), pid, o->prog, *sock ? safe(sock, b, sizeof b) : "PATH");
    return STATION_EXIT_REFUSED;
}

/* ---- the commands and options: one table each, for parsing, --help, the man page and completion -- */

static const ifppctl_cmd commands[] = {
    {"import-euicc", "FILE", "import the EUM's signed eUICC data package (ESED201): EUM chain, every One-time Key proof",
     "", "", STATION_NEED_STORE | STATION_NEED_CI, true, cmd_import},
    {"import-vault", "FILE", "import the SM-DPf's signed BPP vault (ESBPP01): SM-DPf chain, signature, every BPP",
     "", "", STATION_NEED_STORE | STATION_NEED_CI, true, cmd_import},
    {"request", "--out FILE [--profile-type T]", "write the signed BPP request for the SM-DPf (ESBPP02)", "ot", "o",
     STORE_READ | STATION_NEED_STATION_KEY, false, cmd_request},
    {"provision", "--slot BACKEND:TARGET[,key=value...] --serial S [--complete] "
                  "[--additional-profile --profile-type T] [--logical-channel] | --socket PATH --serial S [--slot NAME] ...",
     "provision the DUT in the slot with one BPP (SGP.41 5.1 steps 9-14); --complete deletes its remaining "
     "One-time Keys (DMF03); a DUT that has a profile gets another only with --additional-profile and the "
     "--profile-type it asks for (use case A.3); with --socket (or --config) the running ifpp-agent provisions it, "
     "in its slot NAME or any free one",
     "lntcLAMG", "ln", STORE_EXISTING | STATION_NEED_DM_FPA, false, cmd_provision},
    {"recover", "--slot BACKEND:TARGET[,key=value...] [--logical-channel] | --socket PATH --slot NAME",
     "resolve the slot's eUICC's reserved or in-doubt BPPs from the card's own evidence, printing each BPP's "
     "outcome and why; with --socket (or --config) the running ifpp-agent recovers the card in its slot NAME",
     "lLMG", "l", STORE_EXISTING | STATION_NEED_DM_FPA, false, cmd_recover},
    {"report", "--out FILE [--day YYYY-MM-DD] | --to DIR [--day YYYY-MM-DD] | --deletions [--job NAME] (--out FILE | --to DIR) [--socket PATH]",
     "write the signed Profile Loading Report (ESBPP03), read it back and verify it before it replaces FILE; --to DIR: "
     "onto removable media mounted at DIR, that report with a CSV of every DUT and an HTML summary with charts; with "
     "--socket (or --config) the running ifpp-agent writes them (onto removable media only) and says their SHA-256; "
     "--deletions: the signed Deletion Report (use case A.4) of every recorded deletion, or of --job NAME",
     "odDMGwj", "",
     STORE_READ | STATION_NEED_STATION_KEY | STATION_NEED_DM_ROOT, false, cmd_report},
    {"delete", "--slot BACKEND:TARGET[,key=value...] (--serials FILE | --eids FILE) [--job NAME]",
     "use case A.4: for each DUT on the list (one serial or EID a line), delete every profile this station installed "
     "on its eUICC, record the eUICC-signed deletion notification with the BPP's move to deleted, then remove it from "
     "the card; streamed, resumable: re-running the job skips the devices done and finishes an interrupted one from "
     "the card's evidence. {} in the slot names each device's own (a card file, a reader)",
     "lrij", "l", STORE_EXISTING, false, cmd_delete},
    {"verify", "FILE", "check an exported Profile Loading Report, Deletion Report or BPP request offline: signature "
     "and chain, every PIR and deletion notification under the CI, the audit anchor; with --store, that the anchor ties to that store's audit chain", "", "",
     STATION_NEED_DM_ROOT | STATION_NEED_CI, true, cmd_verify},
    {"audit", "[--anchor FILE | --list [--since T] [--event E] [--serial S] [--eid EID] [--txid TXID] [--limit N]]",
     "verify the hash-chained audit log and replay every BPP's state from it; --anchor checks it against the "
     "anchor in a signed report or BPP request this station exported; --list lists entries instead (newest N)",
     "ax" AUDIT_FILTERS, "", STORE_READ, false, cmd_audit},
    {"status", "[--socket PATH | --config DIR]", "stock per profile type, BPPs per state, the reserved and in-doubt BPPs "
     "with slot, serial and age, today's PASS/FAIL counts; through ifpp-agent: its slots and stock",
     "MG", "", STORE_READ, false, cmd_status},
    {"stock", "[--socket PATH | --config DIR]", "available BPPs per profile type (from the store, or from ifpp-agent)",
     "MG", "", STORE_READ, false, cmd_stock},
    {"config", "check [--config DIR]", "check station.conf.d as ifpp-agent does and print the merged configuration; "
     "errors name file and line (exit 2)", "G", "", 0, true, cmd_config},
};

/* Every option: getopt's table is built from this, and --help, the man page and completion print it. */
typedef struct {
    const char *name;
    int code;
    const char *arg; /* its argument (NULL: a flag) */
    const char *what;
} opt_doc;

static const opt_doc opt_docs[] = {
    {"store", 's', "FILE", "the station's store (default station.db); only an import creates one"},
    {"station-id", 'I', "NAME", "the station's name in bundles (default station-01)"},
    {"pki", 'p', "DIR", "every certificate and key below from DIR, as ifpp-testpki lays it out"},
    {"ci", 'C', "FILE", "the GSMA CI root certificate (PEM): imports"},
    {"dm-root", 'R', "FILE", "the Device Manufacturer's root certificate (PEM): reading back a report, --anchor"},
    {"dm-fpa-cert", 'F', "FILE", "the DM's FPA-authorisation certificate (PEM): provision, recover"},
    {"dm-fpa-key", 'K', "FILE|URI", "its private key: a PEM file (mode 0600), or a PKCS#11 URI (RFC 7512, e.g. "
     "'pkcs11:token=T;object=dm-fpa;type=private?pin-source=file:/etc/ifpp/pin'): signed in the token"},
    {"station-cert", 'S', "FILE", "the station's certificate (PEM): request, report"},
    {"station-key", 'T', "FILE|URI", "its private key (PEM, mode 0600, or a PKCS#11 URI as --dm-fpa-key)"},
    {"pkcs11-module", 'P', "FILE", "the PKCS#11 module for a key named by a URI (default: p11-kit's proxy, which "
     "reaches every token p11-kit knows)"},
    {"out", 'o', "FILE", "request, report: the file to write (never the store or its journal)"},
    {"to", 'D', "DIR", "report: a mounted removable medium (not the store's filesystem) for the day's three files"},
    {"profile-type", 't', "T", "request, provision: the profile type (a plain name)"},
    {"slot", 'l', "BACKEND:TARGET[,key=value...]", "provision, recover: the fixture slot"},
    {"serial", 'n', "S", "provision: the DUT's serial as scanned; audit --list: entries of this DUT"},
    {"complete", 'c', NULL, "provision: the DUT gets no further profile, delete its One-time Keys (DMF03)"},
    {"additional-profile", 'A', NULL, "provision: a DUT that has a profile gets one more, of --profile-type (A.3)"},
    {"logical-channel", 'L', NULL, "provision, recover: the ISD-R on a logical channel (as the slot's channel=logical)"},
    {"day", 'd', "YYYY-MM-DD", "report: only that day's results (UTC)"},
    {"anchor", 'a', "FILE", "audit: check against the anchor in this signed report or BPP request"},
    {"list", 'x', NULL, "audit: list entries (the newest --limit) instead of verifying"},
    {"since", 'y', "YYYY-MM-DD[THH:MM:SSZ]", "audit --list: entries from then on (UTC)"},
    {"event", 'e', "E", "audit --list: entries of this event (bpp_added, bpp_state, migrate, ...)"},
    {"eid", 'E', "EID", "audit --list: entries of this eUICC (32 hex digits)"},
    {"txid", 'X', "TXID", "audit --list: entries of this BPP (its transaction id in hex)"},
    {"limit", 'N', "N", "audit --list: at most N entries, the newest (1..10000, default 100)"},
    {"socket", 'M', "PATH", "status, stock, provision, report, recover: through the running ifpp-agent's MES socket "
     "at PATH"},
    {"config", 'G', "DIR", "config check: station.conf.d (default " IFPPCTL_DEFAULT_CONFIG "); status, stock, "
     "provision, report, recover: its mes.path as --socket"},
    {"serials", 'r', "FILE", "delete: the DUT serials, one a line (blank lines and # comments skipped)"},
    {"eids", 'i', "FILE", "delete: the EIDs (32 hex digits), one a line"},
    {"job", 'j', "NAME", "delete: the job's name, to resume it (default: from the list's hash); report --deletions: "
     "only that job's"},
    {"deletions", 'w', NULL, "report: the signed Deletion Report (use case A.4) instead of the day's reports"},
    {"help", 'h', NULL, "this help; COMMAND --help for one command"},
    {"version", 'V', NULL, "the version"},
};
#define N_OPTS (sizeof opt_docs / sizeof opt_docs[0])
#define N_CMDS (sizeof commands / sizeof commands[0])

static const opt_doc *opt_of(int code)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (opt_docs[i].code == code)
            return &opt_docs[i];
    return NULL;
}

static const char exit_codes[] =
    "Exit codes:\n"
    "  0  PASS or done\n"
    "  1  the station failed (store, files, keys, disk, reader)\n"
    "  2  bad usage (unknown command or option, a missing or malformed argument)\n"
    "  3  refused (a bad bundle, no BPP for this DUT)\n"
    "  4  the DUT failed (its card refused or answered wrongly)\n";

static void print_opt(FILE *f, const opt_doc *d)
{
    char head[64];
    snprintf(head, sizeof head, "--%s%s%s", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
    if (strlen(head) < 30)
        fprintf(f, "  %-30s %s\n", head, d->what);
    else
        fprintf(f, "  %s\n  %-30s %s\n", head, "", d->what);
}

static int usage(const options *o, FILE *f, int rc)
{
    fprintf(f, "Usage: %s [options] COMMAND [args]\n\n"
               "The station of SGP.41 In-Factory Profile Provisioning: imports, BPP request, provisioning,\n"
               "recovery, the Profile Loading Report, the audit log. %s COMMAND --help explains one command.\n\n"
               "Commands:\n",
            o->prog, o->prog);
    for (size_t i = 0; i < N_CMDS; i++)
        fprintf(f, "  %s %s\n      %s\n", commands[i].name, commands[i].args, commands[i].what);
    fprintf(f, "\nOptions for every command:\n");
    for (size_t i = 0; i < N_OPTS; i++)
        if (strchr(GLOBAL_OPTS "hV", opt_docs[i].code))
            print_opt(f, &opt_docs[i]);
    fprintf(f, "\nCommand options:\n");
    for (size_t i = 0; i < N_OPTS; i++)
        if (!strchr(GLOBAL_OPTS "hV", opt_docs[i].code))
            print_opt(f, &opt_docs[i]);
    fprintf(f, "\nSlot options (--slot BACKEND:TARGET,key=value...): aid=HEX (the ISD-R AID), channel=basic|logical,\n"
               "card-wait=MS, apdu-timeout=MS, conn-test=off|if-offered|required (EUICCF05), conn-test-time=S,\n"
               "and the backend's own (pcsc: READER-PATTERN[#N], ext=auto|on|off).\n\n%s",
            exit_codes);
    return rc;
}

static int command_help(const options *o, const ifppctl_cmd *c)
{
    printf("usage: %s [options] %s %s\n  %s\n", o->prog, c->name, c->args, c->what);
    if (*c->opts) {
        printf("options:\n");
        for (const char *k = c->opts; *k; k++)
            print_opt(stdout, opt_of(*k));
    }
    if (c->needs & ~(STORE_EXISTING | STATION_STORE_READONLY))
        printf("needs:%s%s%s%s (each by its option or from --pki DIR)\n", c->needs & STATION_NEED_CI ? " --ci" : "",
               c->needs & STATION_NEED_DM_ROOT ? " --dm-root" : "",
               c->needs & STATION_NEED_DM_FPA ? " --dm-fpa-cert --dm-fpa-key" : "",
               c->needs & STATION_NEED_STATION_KEY ? " --station-cert --station-key" : "");
    if (c->needs & STATION_STORE_READONLY)
        printf("opens the store read-only: it never creates one and works on a read-only mount\n");
    if (strchr(c->opts, 'l'))
        printf("slot options: aid=HEX (the ISD-R AID), channel=basic|logical, card-wait=MS, apdu-timeout=MS,\n"
               "              and the backend's own (pcsc: READER-PATTERN[#N], ext=auto|on|off)\n");
    printf("%s", exit_codes);
    return STATION_EXIT_OK;
}

/*
 * For the build's bash completion (packaging/): one line per command, "COMMAND OPTION...", and
 * "* OPTION..." for the options of every command; an option that takes a value ends in '='.
 * Hidden from --help: it is for the build, not for people.
 */
static int complete_words(void)
{
    printf("*");
    for (size_t i = 0; i < N_OPTS; i++)
        if (strchr(GLOBAL_OPTS "hV", opt_docs[i].code))
            printf(" --%s%s", opt_docs[i].name, opt_docs[i].arg ? "=" : "");
    printf("\n");
    for (size_t i = 0; i < N_CMDS; i++) {
        printf("%s%s", commands[i].name, commands[i].file_arg ? " FILE" : "");
        for (const char *k = commands[i].opts; *k; k++)
            printf(" --%s%s", opt_of(*k)->name, opt_of(*k)->arg ? "=" : "");
        printf("\n");
    }
    return STATION_EXIT_OK;
}

#define OPT_COMPLETE_WORDS 1000

/* getopt's table, from opt_docs. */
static void long_options(struct option *t)
{
    for (size_t i = 0; i < N_OPTS; i++)
        t[i] = (struct option){opt_docs[i].name, opt_docs[i].arg ? required_argument : no_argument, NULL,
                               opt_docs[i].code};
    t[N_OPTS] = (struct option){"complete-words", no_argument, NULL, OPT_COMPLETE_WORDS};
    t[N_OPTS + 1] = (struct option){NULL, 0, NULL, 0};
}

/* Parses options up to the next non-option word; returns -1 to go on, else an exit code. */
static int parse_options(int argc, char **argv, options *o, bool *help)
{
    struct option t[N_OPTS + 2];
    int c;
    long_options(t);
    while ((c = getopt_long(argc, argv, "+h", t, NULL)) != -1) {
        switch (c) {
        case 's': o->cfg.store_path = optarg; o->store_given = true; break;
        case 'p': o->cfg.pki_dir = optarg; break;
        case 'I': o->cfg.station_id = optarg; break;
        case 'C': o->cfg.ci = optarg; break;
        case 'R': o->cfg.dm_root = optarg; break;
        case 'F': o->cfg.dm_fpa_cert = optarg; break;
        case 'K': o->cfg.dm_fpa_key = optarg; break;
        case 'S': o->cfg.station_cert = optarg; break;
        case 'T': o->cfg.station_key = optarg; break;
        case 'P': o->cfg.pkcs11_module = optarg; break;
        case 'o': o->out = optarg; break;
        case 'D': o->to = optarg; break;
        case 'l': o->slot = optarg; break;
        case 'n': o->serial = optarg; break;
        case 't': o->profile_type = optarg; break;
        case 'c': o->complete = true; break;
        case 'L': o->logical_channel = true; break;
        case 'A': o->additional_profile = true; break;
        case 'd': o->day = optarg; break;
        case 'a': o->anchor = optarg; break;
        case 'x': o->list = true; break;
        case 'y': o->since = optarg; break;
        case 'e': o->event = optarg; break;
        case 'E': o->eid = optarg; break;
        case 'X': o->txid = optarg; break;
        case 'N': o->limit = optarg; break;
        case 'M': o->socket = optarg; break;
        case 'G': o->config = optarg; break;
        case 'r': o->serials = optarg; break;
        case 'i': o->eids = optarg; break;
        case 'j': o->job = optarg; break;
        case 'w': o->deletions = true; break;
        case 'h': *help = true; break;
        case 'V': printf("%s %s\n", o->prog, IFPP_VERSION); return STATION_EXIT_OK;
        case OPT_COMPLETE_WORDS: return complete_words();
        default: return usage(o, stderr, STATION_EXIT_USAGE);
        }
        if (!strchr(GLOBAL_OPTS "hV", c) && !strchr(o->given, c) && strlen(o->given) + 1 < sizeof o->given)
            o->given[strlen(o->given)] = (char)c;
    }
    return -1;
}

/* "PROG: COMMAND: <pre><what, made safe><post> (PROG COMMAND --help)"; exit code 2. */
static int usage_error(const ifppctl_cmd *c, const options *o, const char *pre, const char *what, const char *post)
{
    char w[300];
    fprintf(stderr, "%s: %s: %s%s%s (%s %s --help)\n", o->prog, c->name, pre, safe(what, w, sizeof w), post, o->prog,
            c->name);
    return STATION_EXIT_USAGE;
}

/* The command's own usage rules, checked before any file or the store is opened. */
static int check_usage(const ifppctl_cmd *c, const options *o, const char *arg)
{
    uint8_t buf[16];
    size_t n;
    for (const char *g = o->given; *g; g++)
        if (!strchr(c->opts, *g))
            return usage_error(c, o, "--", opt_of(*g)->name, " does not apply here");
    if (c->file_arg && !arg)
        return usage_error(c, o, "", "FILE", " is required");
    bool daemon = o->socket || o->config; /* provision through ifpp-agent: its slot is a name, and optional */
    for (const char *r = c->required; *r; r++)
        if (!strchr(o->given, *r) && !(daemon && *r == 'l' && c->run == cmd_provision))
            return usage_error(c, o, "--", opt_of(*r)->name, " is required");
    if (!c->file_arg && arg)
        return usage_error(c, o, "unexpected argument '", arg, "'");
    if (c->run == cmd_config && strcmp(arg, "check"))
        return usage_error(c, o, "unknown action '", arg, "' (config check)");
    if (daemon && o->logical_channel)
        return usage_error(c, o, "", "--logical-channel", " is the daemon's slot spec (channel=logical) with --socket");
    if (o->day && !label_day_valid(o->day))
        return usage_error(c, o, "--day ", o->day, ": not a calendar day YYYY-MM-DD from 2000-01-01");
    if (!strcmp(c->name, "report") && !o->out == !o->to)
        return usage_error(c, o, "", "--out FILE or --to DIR", ": one of them is required, not both");
    if (!strcmp(c->name, "report") && o->deletions && o->day)
        return usage_error(c, o, "", "--day", " does not apply to --deletions (a job's report, or every deletion)");
    if (!strcmp(c->name, "report") && o->job && !o->deletions)
        return usage_error(c, o, "", "--job", " selects a Deletion Report: add --deletions");
    if (!strcmp(c->name, "delete") && !o->serials == !o->eids)
        return usage_error(c, o, "", "--serials FILE or --eids FILE", ": one of them is required, not both");
    if (o->job && !label_valid(o->job, strlen(o->job)))
        return usage_error(c, o, "--job ", o->job, ": a plain name (1..64 of A-Z a-z 0-9 . _ -)");
    if (o->additional_profile && !o->profile_type)
        return usage_error(c, o, "", "--additional-profile",
                           " needs --profile-type T: the further profile asked for (use case A.3)");
    if (!strcmp(c->name, "audit")) {
        if (o->anchor && o->list)
            return usage_error(c, o, "", "--anchor and --list", ": one or the other");
        for (const char *g = o->given; *g; g++)
            if (strchr(AUDIT_FILTERS, *g) && !o->list)
                return usage_error(c, o, "--", opt_of(*g)->name, " filters --list; add --list");
        if (o->since && !valid_since(o->since))
            return usage_error(c, o, "--since ", o->since, ": a UTC day YYYY-MM-DD or time YYYY-MM-DDTHH:MM:SSZ");
        if (o->event && !label_valid(o->event, strlen(o->event)))
            return usage_error(c, o, "--event ", o->event, ": an event name (bpp_added, bpp_state, migrate, ...)");
        if (o->serial && !dut_serial_valid(o->serial))
            return usage_error(c, o, "--serial ", o->serial,
                               ": not a DUT serial (1..64 printable characters, no space)");
        if (o->eid && !parse_hex_arg(o->eid, buf, 16, 16, &n))
            return usage_error(c, o, "--eid ", o->eid, ": an EID is 32 hex digits");
        if (o->txid && !parse_hex_arg(o->txid, buf, 1, 16, &n))
            return usage_error(c, o, "--txid ", o->txid, ": a transaction id is 2..32 hex digits");
        if (o->limit) {
            char *end;
            unsigned long l = strtoul(o->limit, &end, 10);
            if (o->limit[0] < '0' || o->limit[0] > '9' || *end || l < 1 || l > STORE_AUDIT_LIST_MAX)
                return usage_error(c, o, "--limit ", o->limit, ": a number from 1 to 10000");
        }
    }
    return -1;
}

/* The program's name as invoked, for usage lines (ifppctl, or the rehearsal tool). */
static const char *prog_name(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    return slash ? slash + 1 : argv0 && *argv0 ? argv0 : "ifppctl";
}

int ifppctl_main(int argc, char **argv)
{
    options o = {.cfg = {.store_path = "station.db", .station_id = "station-01"}, .prog = prog_name(argv[0])};
    bool help = false;
    optind = 0; /* GNU getopt: start afresh (the rehearsal tool calls this more than once) */
    int rc = parse_options(argc, argv, &o, &help);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return help ? usage(&o, stdout, STATION_EXIT_OK) : usage(&o, stderr, STATION_EXIT_USAGE);
    const char *name = argv[optind++];
    const char *arg = optind < argc && argv[optind][0] != '-' ? argv[optind++] : NULL;
    if ((rc = parse_options(argc, argv, &o, &help)) >= 0) /* options may follow the command word too */
        return rc;
    const ifppctl_cmd *c = NULL;
    for (size_t i = 0; i < N_CMDS; i++)
        if (!strcmp(commands[i].name, name))
            c = &commands[i];
    if (!c) {
        char w[200];
        fprintf(stderr, "%s: unknown command '%s'\n", o.prog, safe(name, w, sizeof w));
        return usage(&o, stderr, STATION_EXIT_USAGE);
    }
    if (help)
        return command_help(&o, c);
    if (optind < argc)
        return usage_error(c, &o, "unexpected argument '", argv[optind], "'");
    if ((rc = check_usage(c, &o, arg)) >= 0)
        return rc;
    if (c->run == cmd_config)
        return cmd_config(c, &o, NULL, arg);
    if (o.socket || o.config) /* check_usage let only status, stock, provision, report and recover take them */
        return run_through_daemon(c, &o);
    int guard = -1;
    if ((c->needs & STATION_NEED_STORE) && !(c->needs & STATION_STORE_READONLY) &&
        (rc = refuse_behind_daemon(c, &o, &guard)) >= 0)
        return rc;
    station *st;
    char why[1024] = "";
    unsigned needs = c->needs | (o.anchor ? STATION_NEED_DM_ROOT : 0);
    if (c->run == cmd_verify && o.store_given) /* verify ties the bundle to a store only when one is named */
        needs |= STORE_READ;
    ifpp_err e = station_open(&o.cfg, needs, &st, why, sizeof why);
    if (e != IFPP_OK) {
        if (guard >= 0)
            close(guard);
        return fail(STATION_EXIT_FAILURE, c->name, e, why);
    }
    rc = c->run(c, &o, st, arg);
    station_close(st);
    if (guard >= 0) /* after the store is closed: a daemon may claim it from now on */
        close(guard);
    return rc;
}
