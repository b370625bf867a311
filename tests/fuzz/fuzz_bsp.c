/*
 * fuzz_bsp.c -- libFuzzer target for the eUICC side of the BPP Protection Protocol
 * (bsp_verify_and_decrypt / bsp_verify_mac_only), which parses segments a hostile station
 * could send. Fixed keys; the first byte picks the operation. Property: a refused segment
 * never changes the context.
 */
#include <stdlib.h>
#include <string.h>

#include "bsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t k1[16] = {1, 2, 3}, k2[16] = {4, 5, 6}, k3[16] = {7, 8, 9};
    bsp_ctx c, before;
    uint8_t out[BSP_MAX_SEGMENT];
    size_t n;
    if (size < 1)
        return 0;
    bsp_init(&c, k1, k2, k3);
    before = c;
    ifpp_err e;
    if (data[0] & 1)
        e = bsp_verify_mac_only(&c, data + 1, size - 1, out, sizeof out, &n);
    else
        e = bsp_verify_and_decrypt(&c, data + 1, size - 1, data[0] & 0x80 ? 0x86 : 0x87, out, sizeof out, &n);
    if (e != IFPP_OK && memcmp(&c, &before, sizeof c) != 0)
        abort();
    /* a segment we protect ourselves must always pass */
    bsp_init(&c, k1, k2, k3);
    uint8_t seg[BSP_MAX_SEGMENT];
    size_t plain = size - 1 > BSP_MAX_PLAIN_ENCRYPTED ? BSP_MAX_PLAIN_ENCRYPTED : size - 1;
    if (bsp_encrypt_and_mac(&c, 0x86, data + 1, plain, seg, sizeof seg, &n) != IFPP_OK)
        abort();
    bsp_init(&c, k1, k2, k3);
    size_t got;
    if (bsp_verify_and_decrypt(&c, seg, n, 0x86, out, sizeof out, &got) != IFPP_OK || got != plain ||
        memcmp(out, data + 1, plain) != 0)
        abort();
    return 0;
}
