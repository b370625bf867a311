/*
 * usb_device_fpa.h -- the firmware of an emulated hardware FPA (SGP.41 §3.2.3): the ES10f sequence
 * of one whole-BPP operation (docs/usb-protocol.md §3.3) against an eUICC behind any APDU transport.
 * Split in two halves because the Device Manufacturer's signature comes from the station in the
 * middle: begin reads the eUICC's EID and challenge; finish sends the signed AuthoriseFpaServices,
 * PrepareBppLoad and the BPP's commands and returns the PIR. The emulated USB device
 * (usb_device.c) and test_session's in-process hardware FPA both run it. A test tool.
 */
#ifndef IFPP_USB_DEVICE_FPA_H
#define IFPP_USB_DEVICE_FPA_H

#include "es10.h"
#include "usb_frame.h"

typedef struct {
    es10_chan k;
    uint8_t challenge[16], eid[16];
} hwfpa;

/* Selects the ISD-R on the basic channel, reads EID and challenge; fail says where a failure happened. */
ifpp_err hwfpa_begin(hwfpa *f, es10f_transmit_fn tx, void *tx_ctx, usbf_bpp_error *fail);

/* Authorises with bf70 (the station's), prepares from op, loads op's BPP; the eUICC's PIR to pir. */
ifpp_err hwfpa_finish(hwfpa *f, const usbf_bpp_op *op, const uint8_t *bf70, size_t bf70_len, uint8_t *pir,
                      size_t cap, size_t *pir_len, usbf_bpp_error *fail);

#endif
