/*
 * ifpp_testpki_main.c -- `ifpp-testpki`: one command that makes the throw-away test PKI.
 * See testpki.h for what it writes.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "testpki.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ifpp-testpki --out DIR [--curve p256|brainpool] [--eid EID]... [--eids N] [--days N] [--dpf-sub-ca]\n"
            "Makes a throw-away certificate hierarchy for tests and demos: CI, EUM, one eUICC per EID,\n"
            "SM-DPf (auth, binding), Device Manufacturer root, FPA authorisation and station.\n"
            "--dpf-sub-ca puts the SM-DPf under an SM-DP sub-CA (CI -> sub-CA -> SM-DPf, SGP.22 v3).\n"
            "Keys are written 0600 into DIR; nothing in the product trusts them unless configured.\n");
}

static int run(int argc, char **argv, const char **eids);

int main(int argc, char **argv)
{
    const char **eids = calloc((size_t)argc, sizeof *eids);
    if (!eids)
        return 1;
    int rc = run(argc, argv, eids);
    free(eids);
    return rc;
}

/* Parses the command line into options (EIDs into eids) and makes the PKI; returns the exit code. */
static int run(int argc, char **argv, const char **eids)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},  {"curve", required_argument, NULL, 'c'},
        {"eid", required_argument, NULL, 'e'},  {"eids", required_argument, NULL, 'n'},
        {"days", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'},
        {"dpf-sub-ca", no_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    testpki_opts o = {.curve = CRYPTO_CURVE_P256, .n_eids = 2, .days = 365};
    size_t n_given = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "o:c:e:n:d:sh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o.out_dir = optarg; break;
        case 'c':
            if (crypto_curve_parse(optarg, &o.curve) != IFPP_OK) {
                fprintf(stderr, "ifpp-testpki: unknown curve '%s' (p256 or brainpool)\n", optarg);
                return 2;
            }
            break;
        case 'e': eids[n_given++] = optarg; break;
        case 'n':
            o.n_eids = strtoul(optarg, &end, 10);
            if (*end || o.n_eids == 0 || o.n_eids > 10000) {
                fprintf(stderr, "ifpp-testpki: --eids wants a number from 1 to 10000, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'd':
            o.days = (unsigned)strtoul(optarg, &end, 10);
            if (*end || o.days == 0 || o.days > 36500) {
                fprintf(stderr, "ifpp-testpki: --days wants a number from 1 to 36500, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 's': o.dpf_sub_ca = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.out_dir || optind != argc) {
        fprintf(stderr, "ifpp-testpki: %s\n", o.out_dir ? "unexpected argument" : "--out DIR is required");
        usage(stderr);
        return 2;
    }
    if (n_given) {
        o.eids = eids;
        o.n_eids = n_given;
    }
    char why[512] = "";
    ifpp_err e = testpki_make(&o, why, sizeof why);
    if (e != IFPP_OK) {
        fprintf(stderr, "ifpp-testpki: %s\n", *why ? why : err_str(e));
        return 1;
    }
    printf("ifpp-testpki: test PKI (%s%s) written to %s\n", crypto_curve_name(o.curve),
           o.dpf_sub_ca ? ", SM-DPf under a sub-CA" : "", o.out_dir);
    return 0;
}
