/*
 * ifpp_rehearse_main.c -- ifpp-rehearse: the station's own commands with the simulator's
 * `virtual` backend registered, for tests, the demo and line rehearsal. A test tool: the
 * product's ifppctl links none of this (issue 8, item 2).
 *
 *   ifpp-rehearse [ifppctl options] COMMAND ...   any ifppctl command; slots may be virtual:CARD-FILE
 *   ifpp-rehearse demo [--dir DIR] [--duts N] [--curve p256|brainpool] [--profile-size BYTES]
 *
 * `demo` is a whole simulated line, each station step run as the very ifppctl command an operator
 * types (ifppctl_main), the other parties played by the simulators: a throw-away PKI, a test EUM
 * with one software eUICC per DUT, the test SM-DPf's vault, and its verification of the report.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "eum.h"
#include "fpa_virtual.h"
#include "fsutil.h"
#include "ifppctl_cli.h"
#include "smdpf.h"
#include "station.h"
#include "testpki.h"

#define REHEARSE_MAX_BUNDLE ((size_t)1 << 30)

typedef struct {
    const char *dir, *curve;
    size_t duts, profile_size;
} demo_opts;

static int demo_fail(const char *what, ifpp_err e, const char *why)
{
    fprintf(stderr, "ifpp-rehearse: demo: %s: %s\n", what, why && *why ? why : err_str(e));
    return STATION_EXIT_FAILURE;
}

/* A decimal number in lo..hi, nothing else: no sign, no spaces, no wrap-around (issue 9, item 12). */
static bool demo_number(const char *s, size_t lo, size_t hi, size_t *out)
{
    size_t n = 0;
    if (!*s || strlen(s) > 9)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        n = n * 10 + (size_t)(*p - '0');
    }
    if (n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

static int demo_usage(FILE *f, int rc)
{
    fprintf(f, "usage: ifpp-rehearse demo [--dir DIR] [--duts N (1..1000)] [--curve p256|brainpool] "
               "[--profile-size BYTES (1024..262144)]\n"
               "       ifpp-rehearse [ifppctl options] COMMAND ...  (ifppctl with the `virtual` backend)\n");
    return rc;
}

static int demo_parse(int argc, char **argv, demo_opts *o)
{
    for (int i = 1; i < argc; i += 2) { /* --name VALUE pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return demo_usage(stdout, STATION_EXIT_OK);
        if (!v)
            return demo_usage(stderr, STATION_EXIT_USAGE);
        if (!strcmp(a, "--dir"))
            o->dir = v;
        else if (!strcmp(a, "--curve"))
            o->curve = v;
        else if (!strcmp(a, "--duts") && !demo_number(v, 1, 1000, &o->duts)) {
            fprintf(stderr, "ifpp-rehearse: demo: --duts %s: a number from 1 to 1000\n", v);
            return STATION_EXIT_USAGE;
        } else if (!strcmp(a, "--profile-size") && !demo_number(v, 1024, 262144, &o->profile_size)) {
            fprintf(stderr, "ifpp-rehearse: demo: --profile-size %s: 1024..262144 bytes\n", v);
            return STATION_EXIT_USAGE;
        } else if (strcmp(a, "--dir") && strcmp(a, "--curve") && strcmp(a, "--duts") && strcmp(a, "--profile-size")) {
            fprintf(stderr, "ifpp-rehearse: demo: unknown option %s\n", a);
            return demo_usage(stderr, STATION_EXIT_USAGE);
        }
    }
    return -1;
}

static void demo_step(const char *what)
{
    printf("\n== %s\n", what);
    fflush(stdout);
}

/* Runs one ifppctl command on the demo's store and PKI; returns its exit code. */
static int demo_ifppctl(const char *db, const char *pki, const char *const *args)
{
    char *argv[16] = {"ifppctl", "--store", (char *)db, "--pki", (char *)pki};
    int argc = 5;
    while (*args && argc < 15)
        argv[argc++] = (char *)*args++;
    argv[argc] = NULL;
    fflush(stdout);
    int rc = ifppctl_main(argc, argv);
    fflush(stdout);
    return rc;
}

/* Writes a file the demo made, or says which and why not (issue 9, item 13: no "written" when it was not). */
static ifpp_err demo_write(const char *path, const uint8_t *data, size_t n)
{
    ifpp_err e = fs_write_atomic(path, data, n, 0644);
    if (e != IFPP_OK)
        fprintf(stderr, "ifpp-rehearse: demo: cannot write %s: %s (%s)\n", path, err_str(e), strerror(errno));
    return e;
}

static int demo_run(const demo_opts *o)
{
    char dir[1024], pki[1100], cards[1100], db[1100], pkg_path[1100], req[1100], vault_path[1100], rep[1100];
    char why[512] = "";
    crypto_curve curve = CRYPTO_CURVE_P256;
    size_t duts = o->duts ? o->duts : 4, pass = 0, n_eids = 0;
    char(*eids)[TESTPKI_EID_LEN + 1] = NULL;
    eum_card *info = NULL;
    char **paths = NULL;
    uint8_t *pkg = NULL, *rb = NULL, *vault = NULL, *rpt = NULL;
    size_t pkg_len, rl, vl, rpl;
    int rc = STATION_EXIT_FAILURE;
    ifpp_err e;

    if (o->curve && crypto_curve_parse(o->curve, &curve) != IFPP_OK) {
        fprintf(stderr, "ifpp-rehearse: demo: --curve %s: p256 or brainpool\n", o->curve);
        return STATION_EXIT_USAGE;
    }
    if (o->dir && strlen(o->dir) >= sizeof dir - 64) {
        fprintf(stderr, "ifpp-rehearse: demo: --dir: path too long\n");
        return STATION_EXIT_USAGE;
    }
    if (o->dir)
        snprintf(dir, sizeof dir, "%s", o->dir);
    else
        snprintf(dir, sizeof dir, "ifpp-demo-%ld", (long)time(NULL));
    snprintf(pki, sizeof pki, "%s/pki", dir);
    snprintf(cards, sizeof cards, "%s/fixtures", dir);
    snprintf(db, sizeof db, "%s/station.db", dir);
    snprintf(pkg_path, sizeof pkg_path, "%s/euicc-data.der", dir);
    snprintf(req, sizeof req, "%s/bpp-request.der", dir);
    snprintf(vault_path, sizeof vault_path, "%s/bpp-vault.der", dir);
    snprintf(rep, sizeof rep, "%s/profile-loading-report.der", dir);
    if (mkdir(dir, 0700) != 0 || mkdir(cards, 0700) != 0) {
        fprintf(stderr, "ifpp-rehearse: demo: %s: %s (the demo directory must not exist yet)\n", dir, strerror(errno));
        return STATION_EXIT_FAILURE;
    }

    demo_step("1. Throw-away PKI: CI, EUM, eUICCs, SM-DPf, Device Manufacturer, station");
    testpki_opts po = {.out_dir = pki, .curve = curve, .n_eids = duts, .days = 30};
    if ((e = testpki_make(&po, why, sizeof why)) != IFPP_OK) {
        demo_fail("test PKI", e, why);
        goto out;
    }
    printf("%s (%s)\n", pki, crypto_curve_name(curve));

    demo_step("2. Test EUM: one eUICC per DUT with 2 One-time Keys, and the signed eUICC data package");
    if ((e = testpki_eids(pki, &eids, &n_eids)) != IFPP_OK || n_eids != duts) {
        demo_fail("test PKI: its EIDs", e ? e : IFPP_E_RANGE, NULL);
        goto out;
    }
    info = calloc(duts, sizeof *info);
    paths = calloc(duts, sizeof *paths);
    if (!info || !paths) {
        demo_fail("demo", IFPP_E_NOMEM, NULL);
        goto out;
    }
    for (size_t i = 0; i < duts; i++) {
        if (!(paths[i] = malloc(2048))) {
            demo_fail("demo", IFPP_E_NOMEM, NULL);
            goto out;
        }
        snprintf(paths[i], 2048, "%s/dut-%02zu.card", cards, i + 1);
        if ((e = eum_make_card(pki, eids[i], 2, paths[i], &info[i])) != IFPP_OK) {
            demo_fail("test EUM", e, paths[i]);
            goto out;
        }
        printf("DUT %02zu: eUICC %s in %s\n", i + 1, eids[i], paths[i]);
    }
    if ((e = eum_data_package(pki, info, (const char *const *)paths, duts, &pkg, &pkg_len)) != IFPP_OK) {
        demo_fail("eUICC data package", e, NULL);
        goto out;
    }
    if (demo_write(pkg_path, pkg, pkg_len) != IFPP_OK)
        goto out;

    demo_step("3. Station imports the eUICC data package (EUM chain, every One-time Key proof)");
    if ((rc = demo_ifppctl(db, pki, (const char *const[]){"import-euicc", pkg_path, NULL})) != 0)
        goto out;

    demo_step("4. Station writes the BPP request for the SM-DPf");
    if ((rc = demo_ifppctl(db, pki, (const char *const[]){"request", "--out", req, "--profile-type",
                                                          "operatorA-eu-consumer", NULL})) != 0)
        goto out;
    rc = STATION_EXIT_FAILURE;

    demo_step("5. Test SM-DPf binds one BPP per One-time Key and signs the vault");
    smdpf_vault_summary vs;
    if ((e = fs_read_all_why(req, REHEARSE_MAX_BUNDLE, &rb, &rl, why, sizeof why)) != IFPP_OK ||
        (e = smdpf_make_vault(pki, rb, rl, o->profile_size ? o->profile_size : 16384, &vault, &vl, &vs, why,
                              sizeof why)) != IFPP_OK) {
        demo_fail("test SM-DPf", e, why);
        goto out;
    }
    if (demo_write(vault_path, vault, vl) != IFPP_OK)
        goto out;
    printf("%s: %zu BPP(s), %zu bytes\n", vault_path, vs.bpps, vl);

    demo_step("6. Station imports the vault (SM-DPf chain and signature, every BPP's hash and key)");
    if ((rc = demo_ifppctl(db, pki, (const char *const[]){"import-vault", vault_path, NULL})) != 0)
        goto out;

    demo_step("7. The line: each DUT provisioned, then its remaining One-time Keys deleted (DMF03)");
    for (size_t i = 0; i < duts; i++) {
        char slot_spec[2100], serial[32];
        /* the software eUICC offers the EUICCF05 test: the line runs it where offered (tests/asn1 traces it) */
        snprintf(slot_spec, sizeof slot_spec, "virtual:%s,conn-test=if-offered", paths[i]);
        snprintf(serial, sizeof serial, "DUT-%06zu", i + 1);
        if (demo_ifppctl(db, pki, (const char *const[]){"provision", "--slot", slot_spec, "--serial", serial,
                                                        "--complete", NULL}) == STATION_EXIT_OK)
            pass++;
    }
    printf("line result: %zu of %zu DUTs PASS\n", pass, duts);

    demo_step("8. Station exports the Profile Loading Report and checks its audit log against the anchor the report carries");
    rc = demo_ifppctl(db, pki, (const char *const[]){"report", "--out", rep, NULL});
    rc |= demo_ifppctl(db, pki, (const char *const[]){"status", NULL});
    rc |= demo_ifppctl(db, pki, (const char *const[]){"audit", "--anchor", rep, NULL});
    if (rc != 0)
        goto out;
    rc = STATION_EXIT_FAILURE;

    demo_step("9. Test SM-DPf verifies the report (DPFF06)");
    smdpf_report_summary rs;
    if ((e = fs_read_all_why(rep, REHEARSE_MAX_BUNDLE, &rpt, &rpl, why, sizeof why)) != IFPP_OK ||
        (e = smdpf_verify_report(pki, rpt, rpl, &rs, why, sizeof why)) != IFPP_OK) {
        demo_fail("SM-DPf verification of the report", e, why);
        goto out;
    }
    printf("SM-DPf: report accepted: %zu PIR(s) verified against their eUICC certificate chains (%zu installed), "
           "%zu record(s) without PIR\n", rs.pirs_ok, rs.installed, rs.no_result);
    rc = pass == duts ? STATION_EXIT_OK : STATION_EXIT_DUT_FAIL;
out:
    for (size_t i = 0; paths && i < duts; i++)
        free(paths[i]);
    free(paths);
    free(info);
    free(eids);
    free(pkg);
    free(rb);
    free(vault);
    free(rpt);
    printf("\ndemo %s; everything is in %s\n", rc == 0 ? "PASSED" : "FAILED", dir);
    return rc;
}

int main(int argc, char **argv)
{
    ifpp_err e = fpa_virtual_register();
    if (e != IFPP_OK) {
        fprintf(stderr, "ifpp-rehearse: cannot register the virtual backend: %s\n", err_str(e));
        return STATION_EXIT_FAILURE;
    }
    if (argc > 1 && !strcmp(argv[1], "demo")) {
        demo_opts o = {0};
        int rc = demo_parse(argc - 1, argv + 1, &o);
        return rc >= 0 ? rc : demo_run(&o);
    }
    return ifppctl_main(argc, argv);
}
