/*
 * ifppctl.c -- the station's command line: one subcommand per step of SGP.41 §5.1 at the
 * station, and `demo`, a whole simulated line.
 *
 *   ifppctl [options] import-euicc FILE      eUICC data package from the EUM (ESED201)
 *   ifppctl [options] import-vault FILE      BPP vault from the SM-DPf (ESBPP01)
 *   ifppctl [options] request --out FILE     BPP request for the SM-DPf (ESBPP02)
 *   ifppctl [options] provision --slot BACKEND:TARGET --serial S [--profile-type T] [--complete]
 *   ifppctl [options] recover --slot BACKEND:TARGET
 *   ifppctl [options] report --out FILE [--day YYYY-MM-DD]   Profile Loading Report (ESBPP03)
 *   ifppctl [options] audit                  verify the hash-chained audit log
 *   ifppctl [options] status                 BPPs per state
 *   ifppctl demo [--dir DIR] [--duts N] [--curve p256|brainpool] [--profile-size BYTES]
 *
 * BACKEND:TARGET is "virtual:CARD-FILE" or "pcsc:READER-PATTERN[#N][,card-wait=MS][,apdu-timeout=MS]
 * [,ext=auto|on|off]" (drivers/fpa_pcsc.c); --logical-channel runs the session on a logical
 * channel (fpa_open_channel) instead of the basic channel.
 *
 * Options: --store FILE (default ./station.db); trust and keys either one by one (--ci,
 * --dm-root, --dm-fpa-cert/--dm-fpa-key, --station-cert/--station-key) or --pki DIR for a
 * directory laid out as ifpp-testpki writes it; --station-id NAME.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "euicc_sim.h"
#include "eum.h"
#include "export.h"
#include "fsutil.h"
#include "hex.h"
#include "import.h"
#include "session.h"
#include "smdpf.h"
#include "testpki.h"

#define MAX_BUNDLE ((size_t)1 << 30)

typedef struct {
    const char *store_path, *pki, *station_id;
    const char *ci, *dm_root, *dm_fpa_cert, *dm_fpa_key, *station_cert, *station_key;
    const char *out, *slot, *serial, *profile_type, *day, *dir, *curve;
    bool complete;
    bool logical_channel;
    size_t duts, profile_size;
} options;

static int fail(const char *what, ifpp_err e, const char *why)
{
    fprintf(stderr, "ifppctl: %s: %s\n", what, why && *why ? why : err_str(e));
    return 1;
}

/* Loads one certificate named by an option, or by its file in --pki. */
static ifpp_err load_cert(const options *o, const char *explicit_path, const char *pki_name, cert **c)
{
    char path[4096];
    if (explicit_path)
        return cert_load_pem(explicit_path, c);
    if (!o->pki)
        return IFPP_E_ARG;
    snprintf(path, sizeof path, "%s/%s.cert.pem", o->pki, pki_name);
    return cert_load_pem(path, c);
}

static ifpp_err load_key(const options *o, const char *explicit_path, const char *pki_name, crypto_key **k)
{
    char path[4096];
    if (explicit_path)
        return crypto_key_load_pem(explicit_path, k);
    if (!o->pki)
        return IFPP_E_ARG;
    snprintf(path, sizeof path, "%s/%s.key.pem", o->pki, pki_name);
    return crypto_key_load_pem(path, k);
}

static int cmd_import(const options *o, store *s, bool vault, const char *file)
{
    cert *ci = NULL;
    import_summary sum;
    char why[512] = "";
    ifpp_err e = load_cert(o, o->ci, "ci", &ci);
    if (e != IFPP_OK)
        return fail("the CI certificate (--ci or --pki)", e, NULL);
    e = vault ? import_vault_file(s, file, ci, &sum, why, sizeof why)
              : import_euicc_data_file(s, file, ci, &sum, why, sizeof why);
    cert_free(ci);
    if (e != IFPP_OK) {
        fprintf(stderr, "ifppctl: %s refused, nothing imported: %s\n", file, *why ? why : err_str(e));
        return 1;
    }
    if (vault)
        printf("%s: %zu BPP(s): %zu new, %zu already imported\n", file, sum.records, sum.added, sum.duplicate);
    else
        printf("%s: %zu eUICC(s), %zu One-time Key(s) imported\n", file, sum.records, sum.keys);
    return 0;
}

static int cmd_request(const options *o, store *s)
{
    cert *sc = NULL;
    crypto_key *sk = NULL;
    uint8_t *req = NULL;
    size_t n, items;
    char why[512] = "";
    ifpp_err e;
    if (!o->out)
        return fail("request", IFPP_E_ARG, "--out FILE is required");
    if ((e = load_cert(o, o->station_cert, "station", &sc)) != IFPP_OK || (e = load_key(o, o->station_key, "station", &sk)) != IFPP_OK)
        return fail("the station certificate and key", e, NULL);
    e = export_bpp_request(s, o->station_id, o->profile_type ? o->profile_type : "default", sk, sc, &req, &n, &items,
                           why, sizeof why);
    if (e == IFPP_OK)
        e = fs_write_atomic(o->out, req, n, 0644);
    free(req);
    cert_free(sc);
    crypto_key_free(sk);
    if (e != IFPP_OK)
        return fail("BPP request", e, why);
    printf("%s: BPP request for %zu One-time Key(s)\n", o->out, items);
    return 0;
}

static void print_progress(void *arg, session_step step, const char *detail)
{
    const char *serial = arg;
    if (step == SESSION_STEP_DONE)
        return;
    printf("  [%s] %s%s%s\n", serial ? serial : "-", session_step_name(step), detail ? ": " : "", detail ? detail : "");
    fflush(stdout);
}

/* Opens "backend:target" as a slot and runs fn with a session context around it. */
static int with_session(const options *o, store *s, bool recover_only)
{
    char backend[32], why[512] = "";
    const char *colon = o->slot ? strchr(o->slot, ':') : NULL;
    if (!colon || (size_t)(colon - o->slot) >= sizeof backend)
        return fail("--slot", IFPP_E_ARG, "expected BACKEND:TARGET, e.g. virtual:/var/lib/ifpp/fixture-1.card");
    memcpy(backend, o->slot, (size_t)(colon - o->slot));
    backend[colon - o->slot] = '\0';
    cert *fc = NULL;
    crypto_key *fk = NULL;
    ifpp_err e;
    if ((e = load_cert(o, o->dm_fpa_cert, "dm-fpa", &fc)) != IFPP_OK || (e = load_key(o, o->dm_fpa_key, "dm-fpa", &fk)) != IFPP_OK)
        return fail("the Device Manufacturer's FPA certificate and key", e, NULL);
    fpa_slot slot;
    if ((e = fpa_open(backend, colon + 1, &slot, why, sizeof why)) != IFPP_OK) {
        cert_free(fc);
        crypto_key_free(fk);
        return fail(o->slot, e, why);
    }
    session_ctx c = {.st = s, .slot = &slot, .slot_name = o->slot, .dm_fpa_key = fk, .dm_fpa_cert = fc,
                     .delete_keys_when_done = o->complete, .logical_channel = o->logical_channel,
                     .progress = print_progress, .progress_arg = (void *)o->serial};
    int rc;
    if (recover_only) {
        size_t resolved;
        e = session_recover(&c, &resolved, why, sizeof why);
        rc = e == IFPP_OK ? 0 : fail("recover", e, why);
        if (e == IFPP_OK)
            printf("%s: %zu BPP(s) resolved from the eUICC's evidence\n", o->slot, resolved);
    } else {
        session_result r;
        e = session_provision(&c, o->serial, o->profile_type, &r);
        printf("%s %s: %s\n", o->serial ? o->serial : "-", e == IFPP_OK && r.installed ? "PASS" : "FAIL", r.message);
        rc = e == IFPP_OK && r.installed ? 0 : 1;
    }
    fpa_close(&slot);
    cert_free(fc);
    crypto_key_free(fk);
    return rc;
}

static int cmd_report(const options *o, store *s)
{
    cert *sc = NULL, *root = NULL;
    crypto_key *sk = NULL;
    export_summary sum;
    char why[512] = "";
    ifpp_err e;
    if (!o->out)
        return fail("report", IFPP_E_ARG, "--out FILE is required");
    if ((e = load_cert(o, o->station_cert, "station", &sc)) != IFPP_OK ||
        (e = load_key(o, o->station_key, "station", &sk)) != IFPP_OK ||
        (e = load_cert(o, o->dm_root, "dm-root", &root)) != IFPP_OK)
        return fail("the station certificate, key and DM root", e, NULL);
    e = export_loading_report(s, o->station_id, o->day, sk, sc, root, o->out, &sum, why, sizeof why);
    cert_free(sc);
    cert_free(root);
    crypto_key_free(sk);
    if (e != IFPP_OK)
        return fail("Profile Loading Report", e, why);
    printf("%s: Profile Loading Report with %zu result(s): %zu PIR(s), %zu without PIR; written, read back, verified\n",
           o->out, sum.results, sum.pirs, sum.no_result);
    return 0;
}

static int cmd_status(store *s)
{
    printf("BPPs by state:");
    for (int st = 0; st < BPP_STATE__COUNT; st++) {
        size_t n = 0;
        store_count_bpps(s, (bpp_state)st, &n);
        printf(" %s %zu%s", bpp_state_name((bpp_state)st), n, st + 1 < BPP_STATE__COUNT ? "," : "\n");
    }
    return 0;
}

static int cmd_audit(store *s)
{
    size_t n;
    char why[512] = "";
    ifpp_err e = store_audit_verify(s, &n, why, sizeof why);
    if (e != IFPP_OK)
        return fail("audit log", e, why);
    printf("audit log: %zu entries, hash chain intact\n", n);
    return 0;
}

/* ---- demo: a whole simulated line -------------------------------------------------------- */

static int demo_step(const char *what)
{
    printf("\n== %s\n", what);
    fflush(stdout);
    return 0;
}

static int cmd_demo(options *o)
{
    char dir[1024], pki[1100], cards[1100], path[1400], why[512] = "";
    crypto_curve curve = CRYPTO_CURVE_P256;
    ifpp_err e;
    if (o->curve && crypto_curve_parse(o->curve, &curve) != IFPP_OK)
        return fail("--curve", IFPP_E_BAD_CURVE, "p256 or brainpool");
    if (o->dir && strlen(o->dir) >= sizeof dir - 64)
        return fail("--dir", IFPP_E_RANGE, "path too long");
    if (o->dir)
        snprintf(dir, sizeof dir, "%s", o->dir);
    else
        snprintf(dir, sizeof dir, "ifpp-demo-%ld", (long)time(NULL));
    snprintf(pki, sizeof pki, "%s/pki", dir);
    snprintf(cards, sizeof cards, "%s/fixtures", dir);
    if (mkdir(dir, 0700) != 0 || mkdir(cards, 0700) != 0)
        return fail(dir, IFPP_E_IO, "cannot create the demo directory (it must not exist yet)");
    size_t duts = o->duts ? o->duts : 4;

    demo_step("1. Throw-away PKI: CI, EUM, eUICCs, SM-DPf, Device Manufacturer, station");
    testpki_opts po = {.out_dir = pki, .curve = curve, .n_eids = duts, .days = 30};
    if ((e = testpki_make(&po, why, sizeof why)) != IFPP_OK)
        return fail("test PKI", e, why);
    printf("%s (%s)\n", pki, crypto_curve_name(curve));

    demo_step("2. Test EUM: one eUICC per DUT with 2 One-time Keys, and the signed eUICC data package");
    char(*eids)[TESTPKI_EID_LEN + 1] = NULL;
    size_t n_eids = 0;
    if ((e = testpki_eids(pki, &eids, &n_eids)) != IFPP_OK || n_eids != duts)
        return fail("test PKI: its EIDs", e ? e : IFPP_E_RANGE, NULL);
    eum_card *info = calloc(duts, sizeof *info);
    char **paths = calloc(duts, sizeof *paths);
    if (!info || !paths) {
        free(eids);
        free(info);
        free(paths);
        return fail("demo", IFPP_E_NOMEM, NULL);
    }
    for (size_t i = 0; i < duts; i++) {
        paths[i] = malloc(2048);
        snprintf(paths[i], 2048, "%s/dut-%02zu.card", cards, i + 1);
        if ((e = eum_make_card(pki, eids[i], 2, paths[i], &info[i])) != IFPP_OK)
            return fail("test EUM", e, NULL);
        printf("DUT %02zu: eUICC %s in %s\n", i + 1, eids[i], paths[i]);
    }
    uint8_t *pkg;
    size_t pkg_len;
    if ((e = eum_data_package(pki, info, (const char *const *)paths, duts, &pkg, &pkg_len)) != IFPP_OK)
        return fail("eUICC data package", e, NULL);
    snprintf(path, sizeof path, "%s/euicc-data.der", dir);
    fs_write_atomic(path, pkg, pkg_len, 0644);
    free(pkg);

    char store_path[4096];
    snprintf(store_path, sizeof store_path, "%s/station.db", dir);
    o->store_path = store_path;
    o->pki = pki;
    store *s;
    if ((e = store_open(store_path, &s, why, sizeof why)) != IFPP_OK)
        return fail("store", e, why);
    int rc = 0;
    demo_step("3. Station imports the eUICC data package (EUM chain, every One-time Key proof)");
    rc |= cmd_import(o, s, false, path);

    demo_step("4. Station writes the BPP request for the SM-DPf");
    char req[4096], vault_path[4096];
    snprintf(req, sizeof req, "%s/bpp-request.der", dir);
    o->out = req;
    o->profile_type = "operatorA-eu-consumer";
    rc |= cmd_request(o, s);

    demo_step("5. Test SM-DPf binds one BPP per One-time Key and signs the vault");
    uint8_t *rb, *vault;
    size_t rl, vl;
    smdpf_vault_summary vs;
    if ((e = fs_read_all(req, MAX_BUNDLE, &rb, &rl)) != IFPP_OK ||
        (e = smdpf_make_vault(pki, rb, rl, o->profile_size ? o->profile_size : 16384, &vault, &vl, &vs, why,
                              sizeof why)) != IFPP_OK)
        return fail("test SM-DPf", e, why);
    free(rb);
    snprintf(vault_path, sizeof vault_path, "%s/bpp-vault.der", dir);
    fs_write_atomic(vault_path, vault, vl, 0644);
    free(vault);
    printf("%s: %zu BPP(s), %zu bytes\n", vault_path, vs.bpps, vl);

    demo_step("6. Station imports the vault (SM-DPf chain and signature, every BPP's hash and key)");
    rc |= cmd_import(o, s, true, vault_path);

    demo_step("7. The line: each DUT provisioned, then its remaining One-time Keys deleted (DMF03)");
    size_t pass = 0;
    for (size_t i = 0; i < duts; i++) {
        char slot[4200], serial[32];
        snprintf(slot, sizeof slot, "virtual:%s", paths[i]);
        snprintf(serial, sizeof serial, "DUT-%06zu", i + 1);
        o->slot = slot;
        o->serial = serial;
        o->complete = true;
        o->profile_type = NULL;
        if (with_session(o, s, false) == 0)
            pass++;
    }
    printf("line result: %zu of %zu DUTs PASS\n", pass, duts);

    demo_step("8. Station exports the Profile Loading Report and checks its audit log");
    char rep[4096];
    snprintf(rep, sizeof rep, "%s/profile-loading-report.der", dir);
    o->out = rep;
    rc |= cmd_report(o, s);
    rc |= cmd_status(s);
    rc |= cmd_audit(s);
    store_close(s);

    demo_step("9. Test SM-DPf verifies the report (DPFF06)");
    uint8_t *rpt;
    size_t rpl;
    smdpf_report_summary rs;
    if ((e = fs_read_all(rep, MAX_BUNDLE, &rpt, &rpl)) == IFPP_OK)
        e = smdpf_verify_report(pki, rpt, rpl, &rs, why, sizeof why);
    if (e == IFPP_OK) {
        printf("SM-DPf: report accepted: %zu PIR(s) verified against their eUICC certificate chains (%zu installed), "
               "%zu record(s) without PIR\n", rs.pirs_ok, rs.installed, rs.no_result);
        free(rpt);
    } else {
        rc = fail("SM-DPf verification of the report", e, why);
    }
    for (size_t i = 0; i < duts; i++)
        free(paths[i]);
    free(paths);
    free(info);
    free(eids);
    printf("\ndemo %s; everything is in %s\n", rc == 0 && pass == duts ? "PASSED" : "FAILED", dir);
    return rc == 0 && pass == duts ? 0 : 1;
}

static int usage(FILE *f, int rc)
{
    fprintf(f,
            "usage: ifppctl [options] COMMAND [args]\n"
            "commands: import-euicc FILE | import-vault FILE | request --out FILE [--profile-type T]\n"
            "          provision --slot BACKEND:TARGET --serial S [--profile-type T] [--complete] [--logical-channel]\n"
            "          recover --slot BACKEND:TARGET [--logical-channel] | report --out FILE [--day YYYY-MM-DD] | audit | status\n"
            "          demo [--dir DIR] [--duts N] [--curve p256|brainpool] [--profile-size BYTES]\n"
            "options:  --store FILE (default station.db), --station-id NAME, --pki DIR (ifpp-testpki layout) or\n"
            "          --ci, --dm-root, --dm-fpa-cert, --dm-fpa-key, --station-cert, --station-key FILE\n");
    return rc;
}

static const struct option ifppctl_opts[] = {
    {"store", required_argument, NULL, 's'},        {"pki", required_argument, NULL, 'p'},
    {"station-id", required_argument, NULL, 'I'},   {"ci", required_argument, NULL, 'C'},
    {"dm-root", required_argument, NULL, 'R'},      {"dm-fpa-cert", required_argument, NULL, 'F'},
    {"dm-fpa-key", required_argument, NULL, 'K'},   {"station-cert", required_argument, NULL, 'S'},
    {"station-key", required_argument, NULL, 'T'},  {"out", required_argument, NULL, 'o'},
    {"slot", required_argument, NULL, 'l'},         {"serial", required_argument, NULL, 'n'},
    {"profile-type", required_argument, NULL, 't'}, {"complete", no_argument, NULL, 'c'},
    {"day", required_argument, NULL, 'd'},          {"dir", required_argument, NULL, 'D'},
    {"duts", required_argument, NULL, 'u'},         {"curve", required_argument, NULL, 'v'},
    {"profile-size", required_argument, NULL, 'z'}, {"help", no_argument, NULL, 'h'},
    {"logical-channel", no_argument, NULL, 'L'},
    {NULL, 0, NULL, 0},
};

/* Parses options up to the next non-option word; returns -1 to go on, else an exit code. */
static int parse_options(int argc, char **argv, options *o)
{
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "+h", ifppctl_opts, NULL)) != -1) {
        switch (c) {
        case 's': o->store_path = optarg; break;
        case 'p': o->pki = optarg; break;
        case 'I': o->station_id = optarg; break;
        case 'C': o->ci = optarg; break;
        case 'R': o->dm_root = optarg; break;
        case 'F': o->dm_fpa_cert = optarg; break;
        case 'K': o->dm_fpa_key = optarg; break;
        case 'S': o->station_cert = optarg; break;
        case 'T': o->station_key = optarg; break;
        case 'o': o->out = optarg; break;
        case 'l': o->slot = optarg; break;
        case 'n': o->serial = optarg; break;
        case 't': o->profile_type = optarg; break;
        case 'c': o->complete = true; break;
        case 'L': o->logical_channel = true; break;
        case 'd': o->day = optarg; break;
        case 'D': o->dir = optarg; break;
        case 'v': o->curve = optarg; break;
        case 'u':
            o->duts = strtoul(optarg, &end, 10);
            if (*end || o->duts < 1 || o->duts > 1000)
                return fail("--duts", IFPP_E_RANGE, "a number from 1 to 1000");
            break;
        case 'z':
            o->profile_size = strtoul(optarg, &end, 10);
            if (*end || o->profile_size < 1024 || o->profile_size > 262144)
                return fail("--profile-size", IFPP_E_RANGE, "1024..262144 bytes");
            break;
        case 'h': return usage(stdout, 0);
        default: return usage(stderr, 2);
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    options o = {.store_path = "station.db", .station_id = "station-01"};
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return usage(stderr, 2);
    const char *cmd = argv[optind++];
    const char *arg = optind < argc && argv[optind][0] != '-' ? argv[optind++] : NULL;
    if ((rc = parse_options(argc, argv, &o)) >= 0) /* options may follow the command word too */
        return rc;
    if (optind < argc)
        return usage(stderr, 2);
    if (!strcmp(cmd, "demo"))
        return cmd_demo(&o);

    store *s;
    char why[512] = "";
    ifpp_err e = store_open(o.store_path, &s, why, sizeof why);
    if (e != IFPP_OK)
        return fail("store", e, why);
    if (!strcmp(cmd, "import-euicc") && arg)
        rc = cmd_import(&o, s, false, arg);
    else if (!strcmp(cmd, "import-vault") && arg)
        rc = cmd_import(&o, s, true, arg);
    else if (!strcmp(cmd, "request"))
        rc = cmd_request(&o, s);
    else if (!strcmp(cmd, "provision") && o.slot)
        rc = with_session(&o, s, false);
    else if (!strcmp(cmd, "recover") && o.slot)
        rc = with_session(&o, s, true);
    else if (!strcmp(cmd, "report"))
        rc = cmd_report(&o, s);
    else if (!strcmp(cmd, "audit"))
        rc = cmd_audit(s);
    else if (!strcmp(cmd, "status"))
        rc = cmd_status(s);
    else
        rc = usage(stderr, 2);
    store_close(s);
    return rc;
}
