/*
 * ifpp_test_sim_main.c -- `ifpp-test-sim`: the test EUM and the test SM-DPf as commands, for
 * tests and the simulated line. They use the throw-away PKI of `ifpp-testpki`.
 *
 *   ifpp-test-sim eum --pki DIR --out DIR [--otks K]
 *       one software eUICC per EID of DIR/pki.conf, K One-time Keys each (default 2), written as
 *       OUT/<EID>.card, and the signed eUICC data package OUT/euicc-data.der (ESED201)
 *   ifpp-test-sim smdpf-vault --pki DIR --request FILE --out FILE [--profile-size BYTES]
 *       reads a signed BPP request (ESBPP02) and writes the signed BPP vault (ESBPP01); with a PKI made
 *       by `ifpp-testpki --dpf-sub-ca` the vault carries the SM-DP sub-CA (smdpSubCaCertificates)
 *   ifpp-test-sim smdpf-verify-report --pki DIR --report FILE
 *       verifies a Profile Loading Report as an SM-DPf must (DPFF06) and prints a summary
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eum.h"
#include "fsutil.h"
#include "smdpf.h"
#include "testpki.h"

#define MAX_BUNDLE ((size_t)1 << 30)

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: ifpp-test-sim eum --pki DIR --out DIR [--otks K]\n"
               "       ifpp-test-sim smdpf-vault --pki DIR --request FILE --out FILE [--profile-size BYTES]\n"
               "       ifpp-test-sim smdpf-verify-report --pki DIR --report FILE\n"
               "Test EUM and test SM-DPf over the throw-away PKI of ifpp-testpki. Not for production.\n"
               "An SM-DPf under a sub-CA (ifpp-testpki --dpf-sub-ca) puts the sub-CA into its vaults.\n");
    return rc;
}

/* The EIDs of the PKI's manifest (pki.conf), with a message if it has none to give. */
static int read_eids(const char *pki, char (**eids)[TESTPKI_EID_LEN + 1], size_t *n)
{
    ifpp_err e = testpki_eids(pki, eids, n);
    if (e != IFPP_OK)
        fprintf(stderr, "ifpp-test-sim: %s/pki.conf (made by ifpp-testpki): %s\n", pki,
                e == IFPP_E_IO ? "cannot be read" : "lists no valid EIDs");
    return e == IFPP_OK ? 0 : 1;
}

static int cmd_eum(const char *pki, const char *out, size_t otks)
{
    char(*eids)[TESTPKI_EID_LEN + 1];
    size_t n;
    if (read_eids(pki, &eids, &n))
        return 1;
    eum_card *cards = calloc(n, sizeof *cards);
    char **paths = calloc(n, sizeof *paths);
    int rc = cards && paths ? 0 : 1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        paths[i] = malloc(4096);
        snprintf(paths[i], 4096, "%s/%s.card", out, eids[i]);
        ifpp_err e = eum_make_card(pki, eids[i], otks, paths[i], &cards[i]);
        if (e != IFPP_OK) {
            fprintf(stderr, "ifpp-test-sim: eUICC %s: %s (does %s already exist?)\n", eids[i], err_str(e), paths[i]);
            rc = 1;
        }
    }
    uint8_t *pkg = NULL;
    size_t len;
    char path[4096];
    snprintf(path, sizeof path, "%s/euicc-data.der", out);
    if (rc == 0) {
        ifpp_err e = eum_data_package(pki, cards, (const char *const *)paths, n, &pkg, &len);
        if (e == IFPP_OK)
            e = fs_write_atomic(path, pkg, len, 0644);
        if (e != IFPP_OK) {
            fprintf(stderr, "ifpp-test-sim: eUICC data package %s: %s\n", path, err_str(e));
            rc = 1;
        } else {
            printf("test EUM: %zu eUICC(s) with %zu One-time Key(s) each in %s; data package %s (%zu bytes)\n", n,
                   otks, out, path, len);
        }
    }
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
    free(cards);
    free(eids);
    free(pkg);
    return rc;
}

static int cmd_vault(const char *pki, const char *request, const char *out, size_t size)
{
    uint8_t *req = NULL, *vault = NULL;
    size_t req_len, vault_len;
    char why[512] = "";
    smdpf_vault_summary s;
    ifpp_err e = fs_read_all(request, MAX_BUNDLE, &req, &req_len);
    if (e != IFPP_OK) {
        fprintf(stderr, "ifpp-test-sim: cannot read BPP request %s: %s\n", request, err_str(e));
        return 1;
    }
    e = smdpf_make_vault(pki, req, req_len, size, &vault, &vault_len, &s, why, sizeof why);
    if (e == IFPP_OK)
        e = fs_write_atomic(out, vault, vault_len, 0644);
    free(req);
    free(vault);
    if (e != IFPP_OK) {
        fprintf(stderr, "ifpp-test-sim: BPP vault from %s: %s\n", request, *why ? why : err_str(e));
        return 1;
    }
    printf("test SM-DPf: %zu request item(s), %zu BPP(s) bound, %zu refused; vault %s (%zu bytes)\n", s.items, s.bpps,
           s.refused, out, vault_len);
    return 0;
}

static int cmd_verify(const char *pki, const char *report)
{
    uint8_t *rep = NULL;
    size_t len;
    char why[512] = "";
    smdpf_report_summary s;
    ifpp_err e = fs_read_all(report, MAX_BUNDLE, &rep, &len);
    if (e != IFPP_OK) {
        fprintf(stderr, "ifpp-test-sim: cannot read report %s: %s\n", report, err_str(e));
        return 1;
    }
    e = smdpf_verify_report(pki, rep, len, &s, why, sizeof why);
    free(rep);
    printf("test SM-DPf: report %s: %zu result(s): %zu PIR(s) verified (%zu installed, %zu failed), "
           "%zu without PIR, %zu refused\n",
           report, s.results, s.pirs_ok, s.installed, s.failed, s.no_result, s.bad);
    if (e != IFPP_OK) {
        fprintf(stderr, "ifpp-test-sim: report %s NOT accepted: %s\n", report, *why ? why : err_str(e));
        return 1;
    }
    printf("test SM-DPf: report accepted: every PIR verifies against its eUICC certificate chain\n");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pki", required_argument, NULL, 'p'},     {"out", required_argument, NULL, 'o'},
        {"otks", required_argument, NULL, 'k'},    {"request", required_argument, NULL, 'r'},
        {"report", required_argument, NULL, 'R'},  {"profile-size", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *pki = NULL, *out = NULL, *request = NULL, *report = NULL;
    size_t otks = 2, size = 16 * 1024;
    char *end;
    int c;
    if (argc < 2)
        return usage(stderr, 2);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
        return usage(stdout, 0);
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': pki = optarg; break;
        case 'o': out = optarg; break;
        case 'r': request = optarg; break;
        case 'R': report = optarg; break;
        case 'k':
            otks = strtoul(optarg, &end, 10);
            if (*end || otks < 1 || otks > EUM_MAX_OTKS) {
                fprintf(stderr, "ifpp-test-sim: --otks wants 1..%d, not '%s'\n", EUM_MAX_OTKS, optarg);
                return 2;
            }
            break;
        case 's':
            size = strtoul(optarg, &end, 10);
            if (*end || size < 1024 || size > 256 * 1024) {
                fprintf(stderr, "ifpp-test-sim: --profile-size wants 1024..262144 bytes, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': return usage(stdout, 0);
        default: return usage(stderr, 2);
        }
    }
    if (optind != argc || !pki)
        return usage(stderr, 2);
    if (!strcmp(cmd, "eum") && out)
        return cmd_eum(pki, out, otks);
    if (!strcmp(cmd, "smdpf-vault") && request && out)
        return cmd_vault(pki, request, out, size);
    if (!strcmp(cmd, "smdpf-verify-report") && report)
        return cmd_verify(pki, report);
    return usage(stderr, 2);
}
