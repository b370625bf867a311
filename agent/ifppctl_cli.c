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

#include "export.h"
#include "fsutil.h"
#include "import.h"
#include "station.h"

#ifndef IFPP_VERSION
#define IFPP_VERSION "unknown"
#endif

typedef struct {
    station_config cfg;
    const char *out, *slot, *serial, *profile_type, *day;
    bool complete, logical_channel, additional_profile;
    char given[32]; /* the command options given, as their short codes */
} options;

/* Option codes that any command takes (where the station's files are). */
#define GLOBAL_OPTS "spICRFKST"

/* Every command but an import works on a store that exists: none of them may create one by a typo. */
#define STORE_EXISTING (STATION_NEED_STORE | STATION_STORE_MUST_EXIST)

typedef struct ifppctl_cmd ifppctl_cmd;
struct ifppctl_cmd {
    const char *name, *args, *what;
    const char *opts; /* the command options it takes (short codes) */
    unsigned needs;   /* station_open's STATION_NEED_* */
    bool file_arg;
    int (*run)(const ifppctl_cmd *c, options *o, station *st, const char *arg);
};

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
    if (e != IFPP_OK) {
        fprintf(stderr, "ifppctl: %s refused, nothing imported: %s\n", file, *why ? why : err_str(e));
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
    const char *serial = arg;
    if (step == SESSION_STEP_DONE)
        return;
    printf("  [%s] %s%s%s\n", serial, session_step_name(step), detail ? ": " : "", detail ? detail : "");
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
    int rc = open_slot(o, &sl);
    if (rc >= 0)
        return rc;
    session_result r;
    unsigned flags = (o->complete ? STATION_COMPLETE : 0) | (o->additional_profile ? STATION_ADDITIONAL_PROFILE : 0);
    station_verdict v = station_provision(st, &sl, o->serial, o->profile_type, flags, print_progress, (void *)o->serial, &r);
    printf("%s %s: %s\n", o->serial, station_verdict_name(v), r.message);
    station_slot_close(&sl);
    return station_exit_code(v);
}

static int cmd_recover(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    station_slot sl;
    size_t resolved = 0;
    char why[512] = "";
    int rc = open_slot(o, &sl);
    if (rc >= 0)
        return rc;
    ifpp_err e = station_recover(st, &sl, &resolved, why, sizeof why);
    station_slot_close(&sl);
    if (e != IFPP_OK)
        return fail(exit_of(e) == STATION_EXIT_FAILURE ? STATION_EXIT_FAILURE : STATION_EXIT_DUT_FAIL, "recover", e, why);
    printf("%s: %zu BPP(s) resolved from the eUICC's evidence\n", o->slot, resolved);
    return STATION_EXIT_OK;
}

/* A real calendar day YYYY-MM-DD, from 2000-01-01 (before any eUICC of this kind existed). */
static bool valid_day(const char *d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(d) != 10 || d[4] != '-' || d[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9'))
            return false;
    int y = atoi(d), m = atoi(d + 5), day = atoi(d + 8);
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 2000 || m < 1 || m > 12 || day < 1)
        return false;
    return day <= mdays[m - 1] + (m == 2 && leap);
}

static int cmd_report(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    export_summary sum;
    char why[512] = "";
    ifpp_err e = station_check_output(st, o->out, why, sizeof why);
    if (e != IFPP_OK)
        return fail(STATION_EXIT_USAGE, "report", e, why);
    e = export_loading_report(st->st, st->station_id, o->day, st->station_key, st->station_cert, st->dm_root, o->out,
                              &sum, why, sizeof why);
    if (e != IFPP_OK)
        return fail(exit_of(e), "Profile Loading Report", e, why);
    printf("%s: Profile Loading Report with %zu result(s): %zu PIR(s), %zu without PIR; written, read back, verified\n",
           o->out, sum.results, sum.pirs, sum.no_result);
    return STATION_EXIT_OK;
}

static int cmd_status(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    size_t counts[BPP_STATE__COUNT];
    for (int s = 0; s < BPP_STATE__COUNT; s++) {
        ifpp_err e = store_count_bpps(st->st, (bpp_state)s, &counts[s]);
        if (e != IFPP_OK) /* a damaged store is not a store of zeros */
            return fail(STATION_EXIT_FAILURE, "status", e, NULL);
    }
    printf("BPPs by state:");
    for (int s = 0; s < BPP_STATE__COUNT; s++)
        printf(" %s %zu%s", bpp_state_name((bpp_state)s), counts[s], s + 1 < BPP_STATE__COUNT ? "," : "\n");
    return STATION_EXIT_OK;
}

static int cmd_audit(const ifppctl_cmd *c, options *o, station *st, const char *arg)
{
    size_t n;
    char why[512] = "";
    ifpp_err e = store_audit_verify(st->st, &n, why, sizeof why);
    if (e != IFPP_OK)
        return fail(STATION_EXIT_FAILURE, "audit log", e, why);
    printf("audit log: %zu entries, hash chain intact\n", n);
    return STATION_EXIT_OK;
}

static const ifppctl_cmd commands[] = {
    {"import-euicc", "FILE", "import the EUM's signed eUICC data package (ESED201): EUM chain, every One-time Key proof",
     "", STATION_NEED_STORE | STATION_NEED_CI, true, cmd_import},
    {"import-vault", "FILE", "import the SM-DPf's signed BPP vault (ESBPP01): SM-DPf chain, signature, every BPP",
     "", STATION_NEED_STORE | STATION_NEED_CI, true, cmd_import},
    {"request", "--out FILE [--profile-type T]", "write the signed BPP request for the SM-DPf (ESBPP02)", "ot",
     STORE_EXISTING | STATION_NEED_STATION_KEY, false, cmd_request},
    {"provision", "--slot BACKEND:TARGET[,key=value...] --serial S [--profile-type T] [--complete] "
                  "[--additional-profile] [--logical-channel]",
     "provision the DUT in the slot with one BPP (SGP.41 §5.1 steps 9-14); --complete deletes its remaining "
     "One-time Keys (DMF03)",
     "lntcLA", STORE_EXISTING | STATION_NEED_DM_FPA, false, cmd_provision},
    {"recover", "--slot BACKEND:TARGET[,key=value...] [--logical-channel]",
     "resolve the slot's eUICC's reserved or in-doubt BPPs from the card's own evidence", "lL",
     STORE_EXISTING | STATION_NEED_DM_FPA, false, cmd_recover},
    {"report", "--out FILE [--day YYYY-MM-DD]",
     "write the signed Profile Loading Report (ESBPP03), read it back and verify it before it replaces FILE", "od",
     STORE_EXISTING | STATION_NEED_STATION_KEY | STATION_NEED_DM_ROOT, false, cmd_report},
    {"audit", "", "verify the hash-chained audit log", "", STORE_EXISTING, false, cmd_audit},
    {"status", "", "BPPs per state", "", STORE_EXISTING, false, cmd_status},
};

static const struct option ifppctl_opts[] = {
    {"store", required_argument, NULL, 's'},        {"pki", required_argument, NULL, 'p'},
    {"station-id", required_argument, NULL, 'I'},   {"ci", required_argument, NULL, 'C'},
    {"dm-root", required_argument, NULL, 'R'},      {"dm-fpa-cert", required_argument, NULL, 'F'},
    {"dm-fpa-key", required_argument, NULL, 'K'},   {"station-cert", required_argument, NULL, 'S'},
    {"station-key", required_argument, NULL, 'T'},  {"out", required_argument, NULL, 'o'},
    {"slot", required_argument, NULL, 'l'},         {"serial", required_argument, NULL, 'n'},
    {"profile-type", required_argument, NULL, 't'}, {"complete", no_argument, NULL, 'c'},
    {"day", required_argument, NULL, 'd'},          {"logical-channel", no_argument, NULL, 'L'},
    {"additional-profile", no_argument, NULL, 'A'}, {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},            {NULL, 0, NULL, 0},
};

static const char *opt_name(int code)
{
    for (const struct option *x = ifppctl_opts; x->name; x++)
        if (x->val == code)
            return x->name;
    return "?";
}

static const char exit_codes[] =
    "exit codes: 0 PASS or done, 1 the station failed (store, files, keys, disk, reader), 2 bad usage,\n"
    "            3 refused (a bad bundle, no BPP for this DUT), 4 the DUT failed (its card refused or answered wrongly)\n";

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: ifppctl [options] COMMAND [args]    (ifppctl COMMAND --help for one command)\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].args);
    fprintf(f,
            "options:  --store FILE (default station.db), --station-id NAME, --pki DIR (ifpp-testpki layout) or\n"
            "          --ci, --dm-root, --dm-fpa-cert, --dm-fpa-key, --station-cert, --station-key FILE\n"
            "          --version, --help\n%s",
            exit_codes);
    return rc;
}

static int command_help(const ifppctl_cmd *c)
{
    printf("usage: ifppctl [options] %s %s\n  %s\n", c->name, c->args, c->what);
    if (c->needs & ~STORE_EXISTING)
        printf("needs:%s%s%s%s (each by its option or from --pki DIR)\n", c->needs & STATION_NEED_CI ? " --ci" : "",
               c->needs & STATION_NEED_DM_ROOT ? " --dm-root" : "",
               c->needs & STATION_NEED_DM_FPA ? " --dm-fpa-cert --dm-fpa-key" : "",
               c->needs & STATION_NEED_STATION_KEY ? " --station-cert --station-key" : "");
    if (!strcmp(c->name, "provision") || !strcmp(c->name, "recover"))
        printf("slot options: aid=HEX (the ISD-R AID), channel=basic|logical, card-wait=MS, apdu-timeout=MS,\n"
               "              and the backend's own (pcsc: READER-PATTERN[#N], ext=auto|on|off)\n");
    printf("%s", exit_codes);
    return STATION_EXIT_OK;
}

/* Parses options up to the next non-option word; returns -1 to go on, else an exit code. */
static int parse_options(int argc, char **argv, options *o, bool *help)
{
    int c;
    while ((c = getopt_long(argc, argv, "+h", ifppctl_opts, NULL)) != -1) {
        switch (c) {
        case 's': o->cfg.store_path = optarg; break;
        case 'p': o->cfg.pki_dir = optarg; break;
        case 'I': o->cfg.station_id = optarg; break;
        case 'C': o->cfg.ci = optarg; break;
        case 'R': o->cfg.dm_root = optarg; break;
        case 'F': o->cfg.dm_fpa_cert = optarg; break;
        case 'K': o->cfg.dm_fpa_key = optarg; break;
        case 'S': o->cfg.station_cert = optarg; break;
        case 'T': o->cfg.station_key = optarg; break;
        case 'o': o->out = optarg; break;
        case 'l': o->slot = optarg; break;
        case 'n': o->serial = optarg; break;
        case 't': o->profile_type = optarg; break;
        case 'c': o->complete = true; break;
        case 'L': o->logical_channel = true; break;
        case 'A': o->additional_profile = true; break;
        case 'd': o->day = optarg; break;
        case 'h': *help = true; break;
        case 'V': printf("ifppctl %s\n", IFPP_VERSION); return STATION_EXIT_OK;
        default: return usage(stderr, STATION_EXIT_USAGE);
        }
        if (!strchr(GLOBAL_OPTS "hV", c) && !strchr(o->given, c) && strlen(o->given) + 1 < sizeof o->given)
            o->given[strlen(o->given)] = (char)c;
    }
    return -1;
}

/* The command's own usage rules, checked before any file or the store is opened. */
static int check_usage(const ifppctl_cmd *c, const options *o, const char *arg)
{
    for (const char *g = o->given; *g; g++)
        if (!strchr(c->opts, *g)) {
            fprintf(stderr, "ifppctl: %s: --%s does not apply here (ifppctl %s --help)\n", c->name, opt_name(*g),
                    c->name);
            return STATION_EXIT_USAGE;
        }
    const char *missing = c->file_arg && !arg                     ? "FILE"
                          : strchr(c->opts, 'o') && !o->out       ? "--out FILE"
                          : strchr(c->opts, 'l') && !o->slot      ? "--slot BACKEND:TARGET"
                          : strchr(c->opts, 'n') && !o->serial    ? "--serial S (the DUT's serial as scanned)"
                                                                  : NULL;
    if (missing) {
        fprintf(stderr, "ifppctl: %s: %s is required (ifppctl %s --help)\n", c->name, missing, c->name);
        return STATION_EXIT_USAGE;
    }
    if (!c->file_arg && arg) {
        fprintf(stderr, "ifppctl: %s: unexpected argument '%s' (ifppctl %s --help)\n", c->name, arg, c->name);
        return STATION_EXIT_USAGE;
    }
    if (o->day && !valid_day(o->day)) {
        fprintf(stderr, "ifppctl: --day %s: not a calendar day YYYY-MM-DD from 2000-01-01\n", o->day);
        return STATION_EXIT_USAGE;
    }
    return -1;
}

int ifppctl_main(int argc, char **argv)
{
    options o = {.cfg = {.store_path = "station.db", .station_id = "station-01"}};
    bool help = false;
    optind = 0; /* GNU getopt: start afresh (the rehearsal tool calls this more than once) */
    int rc = parse_options(argc, argv, &o, &help);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return help ? usage(stdout, STATION_EXIT_OK) : usage(stderr, STATION_EXIT_USAGE);
    const char *name = argv[optind++];
    const char *arg = optind < argc && argv[optind][0] != '-' ? argv[optind++] : NULL;
    if ((rc = parse_options(argc, argv, &o, &help)) >= 0) /* options may follow the command word too */
        return rc;
    const ifppctl_cmd *c = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name))
            c = &commands[i];
    if (!c) {
        fprintf(stderr, "ifppctl: unknown command '%s'\n", name);
        return usage(stderr, STATION_EXIT_USAGE);
    }
    if (help)
        return command_help(c);
    if (optind < argc) {
        fprintf(stderr, "ifppctl: %s: unexpected argument '%s' (ifppctl %s --help)\n", c->name, argv[optind], c->name);
        return STATION_EXIT_USAGE;
    }
    if ((rc = check_usage(c, &o, arg)) >= 0)
        return rc;
    station *st;
    char why[1024] = "";
    ifpp_err e = station_open(&o.cfg, c->needs, &st, why, sizeof why);
    if (e != IFPP_OK)
        return fail(STATION_EXIT_FAILURE, c->name, e, why);
    rc = c->run(c, &o, st, arg);
    station_close(st);
    return rc;
}
