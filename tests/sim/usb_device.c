/*
 * usb_device.c -- the emulated IFPP USB device behind umockdev (see usb_device.h).
 *
 * Why umockdev: the backend under test must run the real libusb-1.0 -- its enumeration, its
 * usbfs URB submission and reaping, its timeouts and cancellation, its clear-halt and reset -- and
 * only the kernel underneath may be replaced. umockdev's preload gives libusb a sysfs tree and a
 * device node whose ioctls (USBDEVFS_SUBMITURB, REAPURB, DISCARDURB, CLEAR_HALT, RESET, ...) come
 * to this handler in the same process, so a CI machine needs no kernel module, no root and no
 * hardware (dummy_hcd/raw-gadget and vhci-hcd need both a kernel module and root).
 *
 * umockdev runs the handler in its own thread; one mutex guards the device's state against the
 * test thread's fault and counter calls. URBs complete on submission (a request frame is answered
 * when it arrives; a read takes the waiting reply) except under the silence fault, where the read
 * stays in flight until libusb's timeout discards it.
 */
#define _GNU_SOURCE
#include "usb_device.h"

#include <errno.h>
#include <linux/ioctl.h>
#include <linux/usbdevice_fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <umockdev.h>

#include "euicc_sim.h"
#include "usb_device_fpa.h"
#include "usb_frame.h"

#define USBDEV_REPLY_MAX (USBF_HEADER + USBF_MAX_PAYLOAD)

struct usbdev {
    usbdev_config cfg;
    char serial[64], syspath[64], devnode[64];
    UMockdevIoctlBase *handler;
    euicc_sim *card;
    GMutex lock;
    /* URBs completed and waiting to be reaped; one in flight under the silence fault */
    GList *done, *flying;
    /* the protocol */
    uint8_t *reply;
    size_t reply_len;
    bool have_reply, any_seq, gone, stalled;
    uint16_t last_seq;
    /* a whole-BPP operation between LOAD_BPP and SIGN_RESPONSE */
    uint8_t *op_buf;
    usbf_bpp_op op;
    hwfpa fw;
    bool op_pending;
    /* faults and counters */
    usbdev_fault fault;
    unsigned fault_at;
    uint8_t fault_type;
    unsigned requests[256], clear_halts, resets;
};

static UMockdevTestbed *testbed;

bool usbdev_available(void)
{
    /* umockdev_in_mock_environment() asks for a testbed from umockdev-run; ours is made in-process */
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "libumockdev-preload.so");
}

static ifpp_err usbdev_card_tx(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *rn)
{
    return euicc_sim_transmit(ctx, cmd, n, resp, cap, rn);
}

/* Sets the reply frame to send on the next bulk IN read. */
static void usbdev_reply(usbdev *d, uint8_t type, uint16_t seq, uint16_t status, const uint8_t *p, size_t n)
{
    usbf_frame f = {.version = USBF_VERSION, .type = type, .seq = seq, .status = status, .payload = p,
                    .len = (uint32_t)n};
    d->have_reply = usbf_encode(&f, d->reply, USBDEV_REPLY_MAX, &d->reply_len) == IFPP_OK;
}

static void usbdev_bpp_failed(usbdev *d, uint16_t seq, ifpp_err e, const usbf_bpp_error *fail)
{
    uint8_t p[5];
    usbf_encode_bpp_error(fail, p);
    bool refused = e != IFPP_E_TRANSPORT && (fail->result != 0xFF || (fail->sw != 0 && fail->sw != 0x9000) ||
                                              e == IFPP_E_SIGNATURE || e == IFPP_E_CERT_CHAIN);
    usbdev_reply(d, USBF_LOAD_BPP | USBF_REPLY, seq, refused ? USBF_REFUSED : USBF_CARD_IO, p, sizeof p);
}

/* The device's side of one request frame (docs/usb-protocol.md §3). */
static void usbdev_request(usbdev *d, const uint8_t *buf, size_t n)
{
    usbf_frame f;
    char why[200];
    static uint8_t resp[ES10F_MAX_RESPONSE + 2];
    size_t rn = 0;
    ifpp_err e;
    if (usbf_parse(buf, n, &f, why, sizeof why) != IFPP_OK) {
        usbdev_reply(d, USBF_REPLY, n >= 6 ? (uint16_t)(buf[4] << 8 | buf[5]) : 0, USBF_BAD_FRAME, NULL, 0);
        return;
    }
    d->requests[0]++;
    d->requests[f.type]++;
    if (f.version != USBF_VERSION) {
        uint8_t v = USBF_VERSION;
        usbdev_reply(d, f.type | USBF_REPLY, f.seq, USBF_BAD_VERSION, &v, 1);
        return;
    }
    uint16_t want = (uint16_t)(d->last_seq == 0xFFFF ? 1 : d->last_seq + 1);
    if (!d->any_seq && f.seq != want) {
        usbdev_reply(d, f.type | USBF_REPLY, f.seq, USBF_BAD_SEQUENCE, NULL, 0);
        return;
    }
    d->any_seq = false;
    d->last_seq = f.seq;
    switch (f.type) {
    case USBF_APDU:
        if (euicc_sim_transmit(d->card, f.payload, f.len, resp, sizeof resp, &rn) != IFPP_OK)
            usbdev_reply(d, USBF_APDU | USBF_REPLY, f.seq, USBF_CARD_IO, NULL, 0);
        else
            usbdev_reply(d, USBF_APDU | USBF_REPLY, f.seq, USBF_OK, resp, rn);
        break;
    case USBF_RESET:
        d->op_pending = false;
        if (euicc_sim_reset(d->card, resp, sizeof resp, &rn) != IFPP_OK)
            usbdev_reply(d, USBF_RESET | USBF_REPLY, f.seq, USBF_CARD_IO, NULL, 0);
        else
            usbdev_reply(d, USBF_RESET | USBF_REPLY, f.seq, USBF_OK, resp, rn);
        break;
    case USBF_STATUS: {
        usbf_status st = {.max_version = USBF_VERSION, .card = 1, .max_payload = USBF_MAX_PAYLOAD,
                          .caps = (uint8_t)(USBF_CAP_APDU | (d->cfg.whole_bpp ? USBF_CAP_BPP : 0))};
        uint8_t p[8];
        usbf_encode_status(&st, p);
        usbdev_reply(d, USBF_STATUS | USBF_REPLY, f.seq, USBF_OK, p, sizeof p);
        break;
    }
    case USBF_LOAD_BPP: {
        usbf_bpp_error fail = {0};
        if (!d->cfg.whole_bpp) {
            usbdev_reply(d, USBF_LOAD_BPP | USBF_REPLY, f.seq, USBF_UNSUPPORTED, NULL, 0);
            break;
        }
        memcpy(d->op_buf, f.payload, f.len);
        if (usbf_parse_bpp_op(d->op_buf, f.len, &d->op, why, sizeof why) != IFPP_OK) {
            usbdev_reply(d, USBF_LOAD_BPP | USBF_REPLY, f.seq, USBF_BAD_FRAME, NULL, 0);
            break;
        }
        if ((e = hwfpa_begin(&d->fw, usbdev_card_tx, d->card, &fail)) != IFPP_OK) {
            usbdev_bpp_failed(d, f.seq, e, &fail);
            break;
        }
        uint8_t p[32];
        memcpy(p, d->fw.challenge, 16);
        memcpy(p + 16, d->fw.eid, 16);
        d->op_pending = true;
        usbdev_reply(d, USBF_SIGN_REQUEST, f.seq, USBF_OK, p, sizeof p);
        break;
    }
    case USBF_SIGN_RESPONSE: {
        usbf_bpp_error fail = {0};
        if (!d->op_pending) {
            usbdev_reply(d, USBF_LOAD_BPP | USBF_REPLY, f.seq, USBF_BAD_FRAME, NULL, 0);
            break;
        }
        d->op_pending = false;
        e = hwfpa_finish(&d->fw, &d->op, f.payload, f.len, resp, sizeof resp, &rn, &fail);
        if (e != IFPP_OK)
            usbdev_bpp_failed(d, f.seq, e, &fail);
        else
            usbdev_reply(d, USBF_LOAD_BPP | USBF_REPLY, f.seq, USBF_OK, resp, rn);
        break;
    }
    default:
        usbdev_reply(d, f.type | USBF_REPLY, f.seq, USBF_UNSUPPORTED, NULL, 0);
    }
}

/* True if the armed fault fires on this request (counted from arming). */
static bool usbdev_fault_fires(usbdev *d, const uint8_t *buf, size_t n)
{
    if (d->fault == USBDEV_FAULT_NONE || (d->fault_type && (n < 4 || buf[3] != d->fault_type)))
        return false;
    if (--d->fault_at > 0)
        return false;
    return true;
}

/* Writes a control request's answer (GET_DESCRIPTOR string) after its setup packet; returns its size. */
static int usbdev_control(usbdev *d, uint8_t *buf, int len)
{
    static const char *const strings[] = {NULL, "ifpp-station tests", "emulated IFPP FPA"};
    if (len < 8 || buf[0] != 0x80 || buf[1] != 0x06 || buf[3] != 0x03)
        return 0;
    uint8_t idx = buf[2];
    uint16_t want = (uint16_t)(buf[6] | buf[7] << 8);
    uint8_t out[130];
    size_t n;
    if (idx == 0) {
        out[0] = 4, out[1] = 3, out[2] = 0x09, out[3] = 0x04, n = 4;
    } else {
        const char *s = idx == 3 ? d->serial : idx < 3 ? strings[idx] : "";
        size_t l = strlen(s) > 63 ? 63 : strlen(s);
        out[0] = (uint8_t)(2 + 2 * l), out[1] = 3;
        for (size_t i = 0; i < l; i++)
            out[2 + 2 * i] = (uint8_t)s[i], out[3 + 2 * i] = 0;
        n = 2 + 2 * l;
    }
    if (n > want)
        n = want;
    if ((int)n > len - 8)
        n = (size_t)(len - 8);
    memcpy(buf + 8, out, n);
    return (int)n;
}

/* Completes a submitted URB: status and length into the client's copy, queued for reaping. */
static void usbdev_complete(usbdev *d, UMockdevIoctlData *urb_data, UMockdevIoctlData *buf_data, int status,
                            int actual)
{
    struct usbdevfs_urb *urb = (struct usbdevfs_urb *)urb_data->data;
    urb->status = status;
    urb->actual_length = actual;
    if (buf_data && actual > 0 && (urb->endpoint & 0x80))
        memcpy(urb->buffer, buf_data->data, (size_t)actual); /* the same address space: the client's buffer */
    d->done = g_list_append(d->done, umockdev_ioctl_data_ref(urb_data));
}

static void usbdev_submit(usbdev *d, UMockdevIoctlData *arg, UMockdevIoctlClient *client)
{
    UMockdevIoctlData *urb_data = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_urb), NULL);
    struct usbdevfs_urb *urb = (struct usbdevfs_urb *)urb_data->data;
    UMockdevIoctlData *buf_data = NULL;
    if (urb->buffer_length > 0)
        buf_data = umockdev_ioctl_data_resolve(urb_data, G_STRUCT_OFFSET(struct usbdevfs_urb, buffer),
                                               (gsize)urb->buffer_length, NULL);
    if (d->gone) {
        umockdev_ioctl_client_complete(client, -1, ENODEV);
        goto out;
    }
    if (urb->type == USBDEVFS_URB_TYPE_CONTROL) {
        int n = buf_data ? usbdev_control(d, buf_data->data, urb->buffer_length) : 0;
        usbdev_complete(d, urb_data, buf_data, 0, n);
        if (n > 0) /* the answer sits after the setup packet in the client's buffer */
            memcpy((uint8_t *)urb->buffer + 8, buf_data->data + 8, (size_t)n);
    } else if (urb->type != USBDEVFS_URB_TYPE_BULK) {
        umockdev_ioctl_client_complete(client, -1, EINVAL);
        goto out;
    } else if (!(urb->endpoint & 0x80)) {
        const uint8_t *p = buf_data ? buf_data->data : (const uint8_t *)"";
        size_t n = (size_t)urb->buffer_length;
        bool fire = usbdev_fault_fires(d, p, n);
        usbdev_request(d, p, n);
        usbdev_complete(d, urb_data, NULL, 0, urb->buffer_length);
        if (fire) {
            switch (d->fault) {
            case USBDEV_FAULT_STALL: d->stalled = true; break;
            case USBDEV_FAULT_SHORT_READ: d->reply_len--; break;
            case USBDEV_FAULT_WRONG_SEQ: d->reply[5] ^= 0x40; break;
            case USBDEV_FAULT_SILENCE: d->have_reply = false; break;
            case USBDEV_FAULT_NEWER: d->reply[2] = 2; break;
            case USBDEV_FAULT_UNPLUG: d->gone = true; break;
            case USBDEV_FAULT_NONE: break;
            }
            d->fault = USBDEV_FAULT_NONE;
        }
    } else if (d->stalled) {
        usbdev_complete(d, urb_data, NULL, -EPIPE, 0);
    } else if (!d->have_reply) {
        d->flying = g_list_append(d->flying, umockdev_ioctl_data_ref(urb_data)); /* until libusb gives up */
    } else {
        int n = d->reply_len < (size_t)urb->buffer_length ? (int)d->reply_len : urb->buffer_length;
        memcpy(buf_data->data, d->reply, (size_t)n);
        usbdev_complete(d, urb_data, buf_data, 0, n);
        d->have_reply = false;
    }
    umockdev_ioctl_client_complete(client, 0, 0);
out:
    if (buf_data)
        umockdev_ioctl_data_unref(buf_data);
    umockdev_ioctl_data_unref(urb_data);
}

static gint usbdev_same_addr(gconstpointer data, gconstpointer addr)
{
    return ((const UMockdevIoctlData *)data)->client_addr != (gulong)addr;
}

static gboolean usbdev_ioctl(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer user)
{
    usbdev *d = user;
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
    gulong request = umockdev_ioctl_client_get_request(client);
    gboolean handled = TRUE;
    (void)handler;
    g_mutex_lock(&d->lock);
    switch (request) {
    case USBDEVFS_GET_CAPABILITIES: {
        UMockdevIoctlData *c = umockdev_ioctl_data_resolve(arg, 0, sizeof(guint32), NULL);
        *(guint32 *)c->data = USBDEVFS_CAP_BULK_CONTINUATION | USBDEVFS_CAP_NO_PACKET_SIZE_LIM |
                              USBDEVFS_CAP_REAP_AFTER_DISCONNECT | USBDEVFS_CAP_ZERO_PACKET;
        umockdev_ioctl_data_unref(c);
        umockdev_ioctl_client_complete(client, 0, 0);
        break;
    }
    case USBDEVFS_GETDRIVER:
        umockdev_ioctl_client_complete(client, -1, ENODATA); /* no kernel driver bound */
        break;
    case USBDEVFS_CLAIMINTERFACE:
        d->any_seq = true; /* a new host numbers from 1 (docs §2) */
        d->have_reply = false;
        umockdev_ioctl_client_complete(client, d->gone ? -1 : 0, d->gone ? ENODEV : 0);
        break;
    case USBDEVFS_RELEASEINTERFACE:
    case USBDEVFS_SETINTERFACE:
    case USBDEVFS_RESETEP:
        umockdev_ioctl_client_complete(client, d->gone ? -1 : 0, d->gone ? ENODEV : 0);
        break;
    case USBDEVFS_CLEAR_HALT:
        d->clear_halts++;
        d->stalled = false;
        d->any_seq = true;
        d->have_reply = false;
        umockdev_ioctl_client_complete(client, d->gone ? -1 : 0, d->gone ? ENODEV : 0);
        break;
    case USBDEVFS_RESET:
        d->resets++;
        d->stalled = false;
        d->any_seq = true;
        d->have_reply = false;
        d->op_pending = false;
        umockdev_ioctl_client_complete(client, d->gone ? -1 : 0, d->gone ? ENODEV : 0);
        break;
    case USBDEVFS_SUBMITURB:
        usbdev_submit(d, arg, client);
        break;
    case USBDEVFS_REAPURB:
    case USBDEVFS_REAPURBNDELAY: {
        if (!d->done) {
            umockdev_ioctl_client_complete(client, -1, d->gone ? ENODEV : EAGAIN);
            break;
        }
        UMockdevIoctlData *urb_data = d->done->data;
        d->done = g_list_delete_link(d->done, d->done);
        UMockdevIoctlData *ptr = umockdev_ioctl_data_resolve(arg, 0, sizeof(gpointer), NULL);
        umockdev_ioctl_data_set_ptr(ptr, 0, urb_data);
        umockdev_ioctl_data_unref(ptr);
        umockdev_ioctl_data_unref(urb_data);
        umockdev_ioctl_client_complete(client, 0, 0);
        break;
    }
    case USBDEVFS_DISCARDURB: {
        GList *l = g_list_find_custom(d->flying, *(void **)arg->data, usbdev_same_addr);
        if (!l) {
            umockdev_ioctl_client_complete(client, -1, EINVAL);
            break;
        }
        UMockdevIoctlData *urb_data = l->data;
        d->flying = g_list_delete_link(d->flying, l);
        ((struct usbdevfs_urb *)urb_data->data)->status = -ENOENT;
        d->done = g_list_append(d->done, urb_data);
        umockdev_ioctl_client_complete(client, 0, 0);
        break;
    }
    default:
        handled = FALSE;
    }
    g_mutex_unlock(&d->lock);
    return handled;
}

/* The root hub every emulated device hangs off (sysfs usb1), added once. */
static bool usbdev_root_hub(void)
{
    static bool added;
    if (added)
        return true;
    added = umockdev_testbed_add_from_string(testbed,
                                             "P: /devices/usb1\n"
                                             "N: bus/usb/001/001\n"
                                             "E: SUBSYSTEM=usb\n"
                                             "E: DEVTYPE=usb_device\n"
                                             "E: DRIVER=usb\n"
                                             "E: BUSNUM=001\n"
                                             "E: DEVNUM=001\n"
                                             "E: DEVNAME=/dev/bus/usb/001/001\n"
                                             "A: busnum=1\\n\n"
                                             "A: devnum=1\\n\n"
                                             "A: bConfigurationValue=1\\n\n"
                                             "A: speed=480\\n\n"
                                             "H: descriptors=12010002090001406b1d0200060603020101" /* hub */
                                             "09021900010100e000" "090400000109000000" "0705810304000c\n",
                                             NULL);
    return added;
}

usbdev *usbdev_start(const usbdev_config *cfg)
{
    usbdev *d;
    char desc[256], *spec;
    unsigned devnum = cfg->port + 1u;
    if (!usbdev_available() || cfg->port < 1 || cfg->port > 100 || !(d = calloc(1, sizeof *d)))
        return NULL;
    d->cfg = *cfg;
    snprintf(d->serial, sizeof d->serial, "%s", cfg->serial ? cfg->serial : "");
    snprintf(d->syspath, sizeof d->syspath, "/sys/devices/usb1/1-%u", cfg->port);
    snprintf(d->devnode, sizeof d->devnode, "/dev/bus/usb/001/%03u", devnum);
    g_mutex_init(&d->lock);
    if (!(d->reply = malloc(USBDEV_REPLY_MAX)) || !(d->op_buf = malloc(USBF_MAX_PAYLOAD)) ||
        euicc_sim_open(cfg->card_path, &d->card) != IFPP_OK)
        goto fail;
    if (!testbed && !(testbed = umockdev_testbed_new()))
        goto fail;
    if (!usbdev_root_hub())
        goto fail;
    /* device: USB 2.0, VID/PID, strings 1..3; one configuration; interface FF/49/01, bulk 01 OUT and 81 IN */
    snprintf(desc, sizeof desc,
             "1201000200000040%02x%02x%02x%02x000101020301" /* device */
             "0902200001010080" "32"                         /* configuration, 32 bytes in all */
             "09040000" "02" "ff4901" "00"                   /* interface: 2 endpoints, class FF/49/01 */
             "07050102000200" "07058102000200",              /* bulk 01 OUT, 81 IN, 512 bytes */
             cfg->vid & 0xFF, cfg->vid >> 8, cfg->pid & 0xFF, cfg->pid >> 8);
    d->handler = umockdev_ioctl_base_new();
    g_signal_connect(d->handler, "handle-ioctl", G_CALLBACK(usbdev_ioctl), d);
    if (!umockdev_testbed_attach_ioctl(testbed, d->devnode, d->handler, NULL))
        goto fail;
    spec = g_strdup_printf("P: /devices/usb1/1-%u\n"
                           "N: bus/usb/001/%03u\n"
                           "E: SUBSYSTEM=usb\n"
                           "E: DEVTYPE=usb_device\n"
                           "E: DRIVER=usb\n"
                           "E: BUSNUM=001\n"
                           "E: DEVNUM=%03u\n"
                           "E: DEVNAME=%s\n"
                           "A: busnum=1\\n\n"
                           "A: devnum=%u\\n\n"
                           "A: bConfigurationValue=1\\n\n"
                           "A: speed=480\\n\n"
                           "H: descriptors=%s\n",
                           cfg->port, devnum, devnum, d->devnode, devnum, desc);
    gboolean ok = umockdev_testbed_add_from_string(testbed, spec, NULL);
    g_free(spec);
    if (!ok)
        goto fail;
    return d;
fail:
    usbdev_stop(d);
    return NULL;
}

/*
 * A stopped device's struct is kept (reachable, never freed): umockdev's thread may still be
 * dispatching an ioctl of the still-open slot to it, and a gone device answers those without
 * touching anything freed below (ENODEV, nothing to reap).
 */
static GPtrArray *retired;

void usbdev_stop(usbdev *d)
{
    if (!d)
        return;
    g_mutex_lock(&d->lock);
    d->gone = true;
    g_mutex_unlock(&d->lock);
    if (d->handler) {
        umockdev_testbed_uevent(testbed, d->syspath, "remove"); /* libusb's hotplug monitor sees it leave */
        umockdev_testbed_remove_device(testbed, d->syspath);
        umockdev_testbed_detach_ioctl(testbed, d->devnode, NULL);
        g_signal_handlers_disconnect_by_data(d->handler, d);
    }
    g_mutex_lock(&d->lock); /* an ioctl being answered finishes first */
    g_list_free_full(d->done, (GDestroyNotify)umockdev_ioctl_data_unref);
    g_list_free_full(d->flying, (GDestroyNotify)umockdev_ioctl_data_unref);
    d->done = d->flying = NULL;
    if (d->card)
        euicc_sim_close(d->card);
    d->card = NULL;
    free(d->reply);
    free(d->op_buf);
    d->reply = d->op_buf = NULL;
    g_mutex_unlock(&d->lock);
    if (d->handler)
        g_object_unref(d->handler);
    d->handler = NULL;
    if (!retired)
        retired = g_ptr_array_new();
    g_ptr_array_add(retired, d);
}

void usbdev_arm(usbdev *d, usbdev_fault f, unsigned at_request, uint8_t type)
{
    g_mutex_lock(&d->lock);
    d->fault = at_request ? f : USBDEV_FAULT_NONE;
    d->fault_at = at_request;
    d->fault_type = type;
    g_mutex_unlock(&d->lock);
}

unsigned usbdev_requests(usbdev *d, uint8_t type)
{
    g_mutex_lock(&d->lock);
    unsigned n = d->requests[type];
    g_mutex_unlock(&d->lock);
    return n;
}

unsigned usbdev_clear_halts(usbdev *d)
{
    g_mutex_lock(&d->lock);
    unsigned n = d->clear_halts;
    g_mutex_unlock(&d->lock);
    return n;
}

unsigned usbdev_resets(usbdev *d)
{
    g_mutex_lock(&d->lock);
    unsigned n = d->resets;
    g_mutex_unlock(&d->lock);
    return n;
}
