/*
 * fuzz_notification.c -- libFuzzer target for what a DUT's card answers in a deletion job (use case
 * A.4, issue 15 item 4): the OtherSignedNotification parser and its verification as deletion evidence,
 * NotificationMetadata, and the ListNotification answer. Properties: whatever parses lies inside the
 * input (the signed part, the signature, both certificates), the signature is 64 bytes, the event bits
 * and the list count are bounded; verification never accepts a notification it was not signed for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es10.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const uint8_t *data, size_t size, const uint8_t *p, size_t n)
{
    return p >= data && n <= size && (size_t)(p - data) <= size - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    es10_other_notification on;
    es10_notification_meta meta, list[ES10_MAX_LISTED];
    size_t count = 0;
    int error = 0;
    if (es10_parse_other_notification(data, size, &on) == IFPP_OK) {
        if (!inside(data, size, on.tbs.raw, on.tbs.raw_len) || !inside(data, size, on.sig, on.sig_len) ||
            on.sig_len != CRYPTO_SIG_RAW_LEN || !inside(data, size, on.euicc_cert.raw, on.euicc_cert.raw_len) ||
            !inside(data, size, on.eum_cert.raw, on.eum_cert.raw_len))
            abort();
        /* the evidence check against the certificate the notification itself carries: must not crash */
        char why[256];
        uint8_t iccid[10];
        memcpy(iccid, on.meta.has_iccid ? on.meta.iccid : (const uint8_t *)"0123456789", 10);
        ifpp_err e = es10_verify_delete_notification(&on, on.euicc_cert.raw, on.euicc_cert.raw_len, iccid, why,
                                                     sizeof why);
        if (e == IFPP_OK && (on.meta.events != (1u << ES10_EVENT_DELETE) || !on.meta.has_iccid))
            abort();
        /* and never under another ICCID */
        iccid[9] ^= 0xFF;
        if (es10_verify_delete_notification(&on, on.euicc_cert.raw, on.euicc_cert.raw_len, iccid, why, sizeof why) ==
            IFPP_OK)
            abort();
    }
    (void)es10_parse_notification_meta(data, size, &meta);
    if (es10_parse_notification_list(data, size, list, ES10_MAX_LISTED, &count, &error) == IFPP_OK &&
        count > ES10_MAX_LISTED)
        abort();
    return 0;
}
