/*
 * roundtrip.c -- decodes objects with the C code asn1c generates from docs/ifpp.asn, re-encodes
 * them in DER and demands the same bytes: the check that the module describes what the code emits.
 *
 *   ifpp-asn1-roundtrip FILE...
 *
 * Each file's ASN.1 type is in its name: "...-<Type>.der" (ES10f requests and responses, as the
 * software eUICC traces them) or a SignedBundle ("euicc-data.der", "bpp-request.der",
 * "bpp-vault.der", "profile-loading-report.der", "deletion-report.der"). A bundle's content, an open type selected by
 * bundleType, is then decoded as the type bundleType names and round-tripped too. Constraints
 * (sizes, Label's alphabet, version 1) are checked on every decoded value. Built by check.sh
 * against asn1c's output in a temporary directory; it is not part of the CMake build.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "AuthoriseFpaServicesRequest.h"
#include "AuthoriseFpaServicesResponse.h"
#include "BppRequest.h"
#include "BppVault.h"
#include "ConnectivityTestRequest.h"
#include "ConnectivityTestResponse.h"
#include "DeleteOneTimeKeysRequest.h"
#include "DeleteOneTimeKeysResponse.h"
#include "DeletionReport.h"
#include "EuiccDataPackage.h"
#include "GetIfppCapabilitiesRequest.h"
#include "GetIfppCapabilitiesResponse.h"
#include "GetOneTimeKeyInfoRequest.h"
#include "GetOneTimeKeyInfoResponse.h"
#include "PrepareBppLoadRequest.h"
#include "PrepareBppLoadResponse.h"
#include "ProfileLoadingReport.h"
#include "SignedBundle.h"

static const struct {
    const char *name;
    asn_TYPE_descriptor_t *td;
} rt_types[] = {
    {"AuthoriseFpaServicesRequest", &asn_DEF_AuthoriseFpaServicesRequest},
    {"AuthoriseFpaServicesResponse", &asn_DEF_AuthoriseFpaServicesResponse},
    {"PrepareBppLoadRequest", &asn_DEF_PrepareBppLoadRequest},
    {"PrepareBppLoadResponse", &asn_DEF_PrepareBppLoadResponse},
    {"GetOneTimeKeyInfoRequest", &asn_DEF_GetOneTimeKeyInfoRequest},
    {"GetOneTimeKeyInfoResponse", &asn_DEF_GetOneTimeKeyInfoResponse},
    {"DeleteOneTimeKeysRequest", &asn_DEF_DeleteOneTimeKeysRequest},
    {"DeleteOneTimeKeysResponse", &asn_DEF_DeleteOneTimeKeysResponse},
    {"GetIfppCapabilitiesRequest", &asn_DEF_GetIfppCapabilitiesRequest},
    {"GetIfppCapabilitiesResponse", &asn_DEF_GetIfppCapabilitiesResponse},
    {"ConnectivityTestRequest", &asn_DEF_ConnectivityTestRequest},
    {"ConnectivityTestResponse", &asn_DEF_ConnectivityTestResponse},
};

/* id-ifpp-bundle n ({id-ifpp bundle(2) n}): the content's type by the last arc. */
static asn_TYPE_descriptor_t *const rt_bundle_types[6] = {
    NULL, &asn_DEF_EuiccDataPackage, &asn_DEF_BppRequest, &asn_DEF_BppVault, &asn_DEF_ProfileLoadingReport,
    &asn_DEF_DeletionReport,
};

static int rt_enc_cb(const void *p, size_t n, void *key)
{
    (void)p;
    (void)n;
    (void)key;
    return 0;
}

/* Decodes n bytes as td (all of them), checks constraints, re-encodes in DER, compares. 0 if identical. */
static int rt_one(const char *what, asn_TYPE_descriptor_t *td, const uint8_t *buf, size_t n, void **out)
{
    void *v = NULL;
    char err[256];
    size_t errlen = sizeof err;
    asn_dec_rval_t d = ber_decode(NULL, td, &v, buf, n);
    if (d.code != RC_OK || d.consumed != n) {
        fprintf(stderr, "%s: does not decode as %s (%s at byte %zu of %zu)\n", what, td->name,
                d.code == RC_OK ? "trailing bytes" : d.code == RC_WMORE ? "truncated" : "malformed", d.consumed, n);
        ASN_STRUCT_FREE(*td, v);
        return 1;
    }
    if (asn_check_constraints(td, v, err, &errlen) != 0) {
        fprintf(stderr, "%s: decodes as %s but breaks a constraint: %s\n", what, td->name, err);
        ASN_STRUCT_FREE(*td, v);
        return 1;
    }
    asn_enc_rval_t sz = der_encode(td, v, rt_enc_cb, NULL);
    uint8_t *again = sz.encoded > 0 ? malloc((size_t)sz.encoded) : NULL;
    asn_enc_rval_t e = again ? der_encode_to_buffer(td, v, again, (size_t)sz.encoded) : sz;
    int rc = 0;
    if (e.encoded < 0) {
        fprintf(stderr, "%s: %s does not re-encode (at %s)\n", what, td->name,
                e.failed_type ? e.failed_type->name : "?");
        rc = 1;
    } else if ((size_t)e.encoded != n || memcmp(again, buf, n) != 0) {
        size_t i = 0;
        while (i < n && i < (size_t)e.encoded && again[i] == buf[i])
            i++;
        fprintf(stderr, "%s: %s re-encodes to other bytes: first difference at byte %zu (%zu bytes in, %zd out)\n",
                what, td->name, i, n, e.encoded);
        rc = 1;
    }
    free(again);
    if (out && rc == 0)
        *out = v;
    else
        ASN_STRUCT_FREE(*td, v);
    return rc;
}

static int rt_bundle(const char *path, const uint8_t *buf, size_t n)
{
    SignedBundle_t *b = NULL;
    if (rt_one(path, &asn_DEF_SignedBundle, buf, n, (void **)&b) != 0)
        return 1;
    int rc = 1;
    const uint8_t *oid = b->bundleType.buf;
    size_t on = (size_t)b->bundleType.size;
    unsigned which = on >= 2 && oid[on - 2] == 2 && oid[on - 1] >= 1 && oid[on - 1] <= 5 ? oid[on - 1] : 0;
    if (!which) {
        fprintf(stderr, "%s: bundleType is not one of id-ifpp-bundle 1..5\n", path);
    } else {
        char what[4200];
        snprintf(what, sizeof what, "%s (content)", path);
        rc = rt_one(what, rt_bundle_types[which], b->content.buf, (size_t)b->content.size, NULL);
        if (rc == 0)
            printf("ok  %s: SignedBundle of %s, %zu bytes\n", path, rt_bundle_types[which]->name, n);
    }
    ASN_STRUCT_FREE(asn_DEF_SignedBundle, b);
    return rc;
}

static uint8_t *rt_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0;
    *n = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (*n == cap) {
            uint8_t *g = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (!g) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = g;
        }
        size_t got = fread(buf + *n, 1, cap - *n, f);
        *n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        size_t n;
        uint8_t *buf = rt_read(argv[i], &n);
        if (!buf) {
            fprintf(stderr, "%s: cannot read: %s\n", argv[i], strerror(errno));
            failed++;
            continue;
        }
        const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
        asn_TYPE_descriptor_t *td = NULL;
        for (size_t k = 0; k < sizeof rt_types / sizeof rt_types[0]; k++) {
            size_t ln = strlen(rt_types[k].name), bn = strlen(base);
            if (bn > ln + 5 && base[bn - ln - 5] == '-' && strncmp(base + bn - ln - 4, rt_types[k].name, ln) == 0 &&
                strcmp(base + bn - 4, ".der") == 0)
                td = rt_types[k].td;
        }
        if (td) {
            int rc = rt_one(argv[i], td, buf, n, NULL);
            if (rc == 0)
                printf("ok  %s: %s, %zu bytes\n", argv[i], td->name, n);
            failed += rc;
        } else {
            failed += rt_bundle(argv[i], buf, n);
        }
        free(buf);
    }
    if (failed)
        fprintf(stderr, "%d of %d object(s) do not round-trip through docs/ifpp.asn\n", failed, argc - 1);
    return failed ? 1 : 0;
}
