/*
 * usb_device.h -- an emulated USB device speaking the IFPP vendor protocol (docs/usb-protocol.md)
 * with the software eUICC (euicc_sim.h) behind it, for testing drivers/fpa_usb.c through the real
 * libusb-1.0. umockdev's preload (the test runs under umockdev-wrapper) gives libusb a sysfs and a
 * usbfs device node; this module is the ioctl handler behind that node: it takes the URBs libusb
 * submits, answers control requests (string descriptors), bulk OUT frames (parsed by usb_frame.c,
 * APDUs to the card, whole-BPP operations through usb_device_fpa.c) and bulk IN reads, and can
 * break the bus on request (stall, short read, wrong sequence, silence, a newer version, unplug).
 * A test tool: the product never links it.
 */
#ifndef IFPP_USB_DEVICE_H
#define IFPP_USB_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

typedef struct usbdev usbdev;

typedef struct {
    const char *card_path;  /* the software eUICC's state file */
    uint16_t vid, pid;
    const char *serial;
    uint8_t port;           /* its port on root hub 1: sysfs 1-PORT */
    bool whole_bpp;         /* offers LOAD_BPP (a hardware FPA), else an APDU pipe only */
} usbdev_config;

typedef enum {
    USBDEV_FAULT_NONE,
    USBDEV_FAULT_STALL,       /* the reply's IN endpoint stalls */
    USBDEV_FAULT_SHORT_READ,  /* the reply is cut short of its header's length */
    USBDEV_FAULT_WRONG_SEQ,   /* the reply carries another sequence number */
    USBDEV_FAULT_SILENCE,     /* the reply never comes (the host times out) */
    USBDEV_FAULT_NEWER,       /* the reply claims protocol version 2 */
    USBDEV_FAULT_UNPLUG,      /* the device is gone after taking the request */
} usbdev_fault;

/* True if this process runs under umockdev's preload (else the tests skip and say why). */
bool usbdev_available(void);

/* Adds a device (root hub 1 on first use) and starts answering it; NULL on failure. */
usbdev *usbdev_start(const usbdev_config *cfg);

/* Unplugs the device: a "remove" uevent (libusb's hotplug sees it leave), gone from the testbed. */
void usbdev_stop(usbdev *d);

/*
 * Arms one fault for the request frame number `at_request` counted from now (1: the next), of
 * frame type `type` (0: any type). One fault at a time; USBDEV_FAULT_NONE disarms.
 */
void usbdev_arm(usbdev *d, usbdev_fault f, unsigned at_request, uint8_t type);

/* Requests of type seen since start (0: all), halts the host cleared, USB resets seen. */
unsigned usbdev_requests(usbdev *d, uint8_t type);
unsigned usbdev_clear_halts(usbdev *d);
unsigned usbdev_resets(usbdev *d);

#endif
