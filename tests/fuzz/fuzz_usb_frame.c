/*
 * fuzz_usb_frame.c -- libFuzzer target for the IFPP USB vendor protocol's parsers
 * (drivers/usb_frame.c): the frame header, the STATUS and LOAD_BPP-failure payloads and the
 * LOAD_BPP fields all come from a device (or a station) the other end does not trust. Whatever
 * parses must encode back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usb_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    usbf_frame f;
    char why[200];
    if (usbf_parse(data, size, &f, why, sizeof why) != IFPP_OK)
        return 0;
    uint8_t *out = malloc(size);
    size_t n;
    if (!out || usbf_encode(&f, out, size, &n) != IFPP_OK || n != size || memcmp(out, data, size) != 0)
        abort();
    usbf_status s;
    if (usbf_parse_status(f.payload, f.len, &s) == IFPP_OK) {
        uint8_t b[8];
        usbf_encode_status(&s, b);
        if (memcmp(b, f.payload, 8) != 0)
            abort();
    }
    usbf_bpp_error be;
    if (usbf_parse_bpp_error(f.payload, f.len, &be) == IFPP_OK) {
        uint8_t b[5];
        usbf_encode_bpp_error(&be, b);
        if (memcmp(b, f.payload, 5) != 0)
            abort();
    }
    usbf_bpp_op op;
    if (usbf_parse_bpp_op(f.payload, f.len, &op, why, sizeof why) == IFPP_OK) {
        if (usbf_encode_bpp_op(&op, out, size, &n) != IFPP_OK || n != f.len || memcmp(out, f.payload, n) != 0)
            abort();
    }
    free(out);
    return 0;
}
