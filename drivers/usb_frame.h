/*
 * usb_frame.h -- the frames of the IFPP USB vendor protocol (docs/usb-protocol.md), encoded and
 * parsed here and nowhere else: the station's backend (drivers/fpa_usb.c) and the emulated device
 * (tests/sim/usb_device.c) both use it, so the two ends cannot drift apart. Every parser is bounded
 * by its input and refuses anything the page does not allow (fuzzed: tests/fuzz/fuzz_usb_frame.c).
 */
#ifndef IFPP_USB_FRAME_H
#define IFPP_USB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define USBF_VERSION 1
#define USBF_HEADER 12
#define USBF_MAX_PAYLOAD (1u << 20)
#define USBF_IF_CLASS 0xFF
#define USBF_IF_SUBCLASS 0x49
#define USBF_IF_PROTOCOL 0x01
#define USBF_REPLY 0x80

enum {
    USBF_APDU = 0x01,
    USBF_RESET = 0x02,
    USBF_STATUS = 0x03,
    USBF_LOAD_BPP = 0x10,
    USBF_SIGN_RESPONSE = 0x11,
    USBF_SIGN_REQUEST = 0x91, /* a reply type: the device asks the station to sign */
};

enum {
    USBF_OK = 0,
    USBF_BAD_FRAME = 1,
    USBF_BAD_VERSION = 2,
    USBF_BAD_SEQUENCE = 3,
    USBF_UNSUPPORTED = 4,
    USBF_NO_CARD = 5,
    USBF_CARD_IO = 6,
    USBF_REFUSED = 7,
};

#define USBF_CAP_APDU 0x01
#define USBF_CAP_BPP 0x02

/* One frame; payload points into the parsed buffer (or at the caller's bytes when encoding). */
typedef struct {
    uint8_t version, type;
    uint16_t seq, status;
    uint32_t len;
    const uint8_t *payload;
} usbf_frame;

/* STATUS reply payload (docs §3.1). */
typedef struct {
    uint8_t max_version, caps, card;
    uint32_t max_payload;
} usbf_status;

/* LOAD_BPP request fields (docs §3.2); pointers into the payload when parsed. */
typedef struct {
    const uint8_t *chain, *txid, *otpk, *bpp;
    size_t chain_len, txid_len, bpp_len;
} usbf_bpp_op;

/* Where a whole-BPP operation failed (docs §3.3). */
typedef struct {
    uint8_t stage, sent, result;
    uint16_t sw;
} usbf_bpp_error;

/* Writes f (header and f->len payload bytes) into out; IFPP_E_RANGE if it exceeds cap or the maximum. */
ifpp_err usbf_encode(const usbf_frame *f, uint8_t *out, size_t cap, size_t *n);

/*
 * Parses exactly one frame of n bytes: magic, a payload within the maximum and exactly as long as
 * the header says. Any version is accepted here (the caller decides); why names what was wrong.
 */
ifpp_err usbf_parse(const uint8_t *buf, size_t n, usbf_frame *f, char *why, size_t why_len);

/* Names a status code ("BAD_SEQUENCE"), or "unknown status". */
const char *usbf_status_str(uint16_t status);

/* Encodes / parses a STATUS reply payload (exactly 8 bytes). */
void usbf_encode_status(const usbf_status *s, uint8_t out[8]);
ifpp_err usbf_parse_status(const uint8_t *p, size_t n, usbf_status *s);

/* Encodes the four LOAD_BPP fields into out; IFPP_E_RANGE past cap or the maximum payload. */
ifpp_err usbf_encode_bpp_op(const usbf_bpp_op *op, uint8_t *out, size_t cap, size_t *n);

/* Parses a LOAD_BPP payload: the four fields, in order, once each, nothing after; why names the field. */
ifpp_err usbf_parse_bpp_op(const uint8_t *p, size_t n, usbf_bpp_op *op, char *why, size_t why_len);

/* Encodes / parses a LOAD_BPP failure payload (exactly 5 bytes). */
void usbf_encode_bpp_error(const usbf_bpp_error *e, uint8_t out[5]);
ifpp_err usbf_parse_bpp_error(const uint8_t *p, size_t n, usbf_bpp_error *e);

#endif
