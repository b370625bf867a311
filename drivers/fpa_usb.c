/*
 * fpa_usb.c -- the "usb" FPA backend: an eUICC behind a USB device that speaks the IFPP vendor
 * protocol (docs/usb-protocol.md) on a bulk pipe, through libusb-1.0. Two modes: an APDU pipe (the
 * session engine sequences ES10f) and whole-BPP (a hardware FPA, SGP.41 §3.2.3, runs the sequence
 * itself and asks the station to sign the eUICC's challenge: fpa_ops.load_bpp).
 *
 * Target: "VVVV:PPPP" (hex VID:PID) or "*" (any device with the protocol's interface), then options:
 *   vid=HEX pid=HEX      as in the target (an option overrides it)
 *   serial=TEXT          the device's serial-number string
 *   port=B-P[.P...]      bus number and port path ("1-2.3"), one socket of a fixture's hub
 *   mode=apdu|bpp        apdu (default): the station sequences; bpp: the device's LOAD_BPP
 *   timeout=MS           each transfer of an APDU, RESET or STATUS exchange (default 5000, 1..600000)
 *   bpp-timeout=MS       each reply of a whole-BPP operation (default 120000, 1..3600000)
 *   wait=MS              no matching device yet: wait up to MS for one to arrive (hotplug; default 0)
 * A target that matches no device is IFPP_E_NO_READER, one that matches several IFPP_E_ARG (name
 * one by serial= or port=). The device is hostile input: every reply is parsed by usb_frame.c and
 * bounded by this slot's buffers; a stall is cleared, a timeout, short read, wrong sequence number
 * or another protocol version ends the exchange with a typed error and the device is reset (USB
 * reset, halts cleared) before it is used again. Departure is seen through libusb's hotplug
 * callbacks where the platform has them, else from the failing transfer.
 */
#include <libusb-1.0/libusb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es10.h"
#include "fpa.h"
#include "usb_frame.h"

#define USB_DEFAULT_TIMEOUT_MS 5000U
#define USB_DEFAULT_BPP_TIMEOUT_MS 120000U
#define USB_MAX_PORTS 7
#define USB_MAX_EXT_DATA 4096 /* what es10f sends in one APDU at most: a whole BPP segment */
#define USB_SIGN_MAX 4096     /* an AuthoriseFpaServices command */

typedef struct {
    libusb_context *ctx;
    libusb_device_handle *h;
    int iface;
    uint8_t ep_out, ep_in;
    bool claimed, detached;
    /* the match */
    int vid, pid; /* -1: any */
    char serial[128];
    uint8_t bus, ports[USB_MAX_PORTS];
    int n_ports; /* 0: any */
    bool bpp_mode;
    unsigned timeout_ms, bpp_timeout_ms, wait_ms;
    bool arrived; /* hotplug said a device came */
    /* the exchange */
    uint16_t seq;
    bool resync;  /* the last exchange broke: reset the device before the next */
    bool gone;    /* hotplug said it left */
    bool hotplug;
    libusb_hotplug_callback_handle hp;
    uint8_t caps;
    uint32_t dev_max_payload;
    uint8_t *buf; /* one frame, USBF_HEADER + USBF_MAX_PAYLOAD */
    char last[512];
} usb_slot;

static ifpp_err usb_fail(usb_slot *s, ifpp_err e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static ifpp_err usb_fail(usb_slot *s, ifpp_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->last, sizeof s->last, fmt, ap);
    va_end(ap);
    return e;
}

/* A libusb error as the station's: gone, too slow, busy, or a failing transport. */
static ifpp_err usb_error(int rc)
{
    switch (rc) {
    case LIBUSB_SUCCESS: return IFPP_OK;
    case LIBUSB_ERROR_NO_DEVICE:
    case LIBUSB_ERROR_NOT_FOUND: return IFPP_E_NO_READER;
    case LIBUSB_ERROR_TIMEOUT: return IFPP_E_TIMEOUT;
    case LIBUSB_ERROR_BUSY:
    case LIBUSB_ERROR_ACCESS: return IFPP_E_BUSY;
    case LIBUSB_ERROR_NO_MEM: return IFPP_E_NOMEM;
    default: return IFPP_E_TRANSPORT;
    }
}

/* Reads an unsigned number within [lo, hi] in base from v (whole string). */
static bool usb_number(const char *v, int base, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    if (!v[0] || v[0] == '-' || v[0] == '+')
        return false;
    unsigned long u = strtoul(v, &end, base);
    if (*end || u < lo || u > hi)
        return false;
    *out = u;
    return true;
}

/* "B-P[.P...]" into bus and ports. */
static bool usb_port_path(const char *v, usb_slot *s)
{
    char tmp[64], *save = NULL, *dash;
    unsigned long u;
    if (strlen(v) >= sizeof tmp)
        return false;
    strcpy(tmp, v);
    if (!(dash = strchr(tmp, '-')))
        return false;
    *dash = '\0';
    if (dash[1] == '.' || strstr(dash + 1, "..") || !usb_number(tmp, 10, 1, 255, &u))
        return false;
    s->bus = (uint8_t)u;
    s->n_ports = 0;
    for (char *p = strtok_r(dash + 1, ".", &save); p; p = strtok_r(NULL, ".", &save)) {
        if (s->n_ports == USB_MAX_PORTS || !usb_number(p, 10, 1, 255, &u))
            return false;
        s->ports[s->n_ports++] = (uint8_t)u;
    }
    return s->n_ports > 0 && dash[1] && dash[strlen(dash + 1)] != '.';
}

/* The target and its options; why names the first bad one. */
static ifpp_err usb_parse_target(const char *target, usb_slot *s, char *why, size_t why_len)
{
    char spec[512], *save = NULL;
    unsigned long u;
    s->vid = s->pid = -1;
    s->timeout_ms = USB_DEFAULT_TIMEOUT_MS;
    s->bpp_timeout_ms = USB_DEFAULT_BPP_TIMEOUT_MS;
    if (!target || strlen(target) >= sizeof spec) {
        err_why(why, why_len, "usb target missing or too long");
        return IFPP_E_ARG;
    }
    strcpy(spec, target);
    char *first = strtok_r(spec, ",", &save);
    if (!first) {
        err_why(why, why_len, "usb target empty: give VID:PID or *");
        return IFPP_E_ARG;
    }
    if (strcmp(first, "*") != 0) {
        char *colon = strchr(first, ':');
        if (!colon || strchr(colon + 1, ':')) {
            err_why(why, why_len, "usb target '%s' is not VID:PID (hex) or *", first);
            return IFPP_E_ARG;
        }
        *colon = '\0';
        if (!usb_number(first, 16, 0, 0xFFFF, &u)) {
            err_why(why, why_len, "usb target: vendor id '%s' is not 0..FFFF in hex", first);
            return IFPP_E_ARG;
        }
        s->vid = (int)u;
        if (!usb_number(colon + 1, 16, 0, 0xFFFF, &u)) {
            err_why(why, why_len, "usb target: product id '%s' is not 0..FFFF in hex", colon + 1);
            return IFPP_E_ARG;
        }
        s->pid = (int)u;
    }
    for (char *opt = strtok_r(NULL, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(opt, '=');
        const char *v = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        bool ok;
        if (strcmp(opt, "vid") == 0 || strcmp(opt, "pid") == 0) {
            ok = usb_number(v, 16, 0, 0xFFFF, &u);
            if (ok)
                *(opt[0] == 'v' ? &s->vid : &s->pid) = (int)u;
        } else if (strcmp(opt, "serial") == 0) {
            ok = v[0] && strlen(v) < sizeof s->serial;
            if (ok)
                strcpy(s->serial, v);
        } else if (strcmp(opt, "port") == 0) {
            ok = usb_port_path(v, s);
        } else if (strcmp(opt, "mode") == 0) {
            ok = strcmp(v, "apdu") == 0 || strcmp(v, "bpp") == 0;
            s->bpp_mode = strcmp(v, "bpp") == 0;
        } else if (strcmp(opt, "timeout") == 0) {
            ok = usb_number(v, 10, 1, 600000, &u);
            s->timeout_ms = ok ? (unsigned)u : s->timeout_ms;
        } else if (strcmp(opt, "wait") == 0) {
            ok = usb_number(v, 10, 0, 3600000, &u);
            s->wait_ms = ok ? (unsigned)u : s->wait_ms;
        } else if (strcmp(opt, "bpp-timeout") == 0) {
            ok = usb_number(v, 10, 1, 3600000, &u);
            s->bpp_timeout_ms = ok ? (unsigned)u : s->bpp_timeout_ms;
        } else {
            err_why(why, why_len,
                    "usb option '%s' unknown (vid, pid, serial, port, mode, timeout, bpp-timeout, wait)", opt);
            return IFPP_E_ARG;
        }
        if (!ok) {
            err_why(why, why_len, "usb option %s: bad value '%s'", opt, v);
            return IFPP_E_ARG;
        }
    }
    return IFPP_OK;
}

/* The protocol's interface and its bulk endpoints in dev's active configuration. */
static bool usb_find_interface(libusb_device *dev, int *iface, uint8_t *ep_out, uint8_t *ep_in)
{
    struct libusb_config_descriptor *cfg;
    bool found = false;
    if (libusb_get_active_config_descriptor(dev, &cfg) != LIBUSB_SUCCESS)
        return false;
    for (int i = 0; !found && i < cfg->bNumInterfaces; i++) {
        if (cfg->interface[i].num_altsetting < 1)
            continue;
        const struct libusb_interface_descriptor *d = &cfg->interface[i].altsetting[0];
        if (d->bInterfaceClass != USBF_IF_CLASS || d->bInterfaceSubClass != USBF_IF_SUBCLASS ||
            d->bInterfaceProtocol != USBF_IF_PROTOCOL)
            continue;
        uint8_t o = 0, in = 0;
        for (int k = 0; k < d->bNumEndpoints; k++) {
            const struct libusb_endpoint_descriptor *ep = &d->endpoint[k];
            if ((ep->bmAttributes & 0x03) != LIBUSB_TRANSFER_TYPE_BULK)
                continue;
            if ((ep->bEndpointAddress & LIBUSB_ENDPOINT_IN) && !in)
                in = ep->bEndpointAddress;
            else if (!(ep->bEndpointAddress & LIBUSB_ENDPOINT_IN) && !o)
                o = ep->bEndpointAddress;
        }
        if (o && in) {
            *iface = d->bInterfaceNumber;
            *ep_out = o;
            *ep_in = in;
            found = true;
        }
    }
    libusb_free_config_descriptor(cfg);
    return found;
}

/* True if dev is the slot's device by VID/PID and port path (the serial needs it open). */
static bool usb_matches_static(const usb_slot *s, libusb_device *dev)
{
    struct libusb_device_descriptor d;
    uint8_t ports[USB_MAX_PORTS];
    if (libusb_get_device_descriptor(dev, &d) != LIBUSB_SUCCESS)
        return false;
    if ((s->vid >= 0 && d.idVendor != s->vid) || (s->pid >= 0 && d.idProduct != s->pid))
        return false;
    if (s->n_ports) {
        int n = libusb_get_port_numbers(dev, ports, USB_MAX_PORTS);
        if (libusb_get_bus_number(dev) != s->bus || n != s->n_ports || memcmp(ports, s->ports, (size_t)n) != 0)
            return false;
    }
    return true;
}

static int LIBUSB_CALL usb_hotplug_cb(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event ev, void *user)
{
    usb_slot *s = user;
    (void)ctx;
    if (ev == LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT && s->h && libusb_get_device(s->h) == dev)
        s->gone = true;
    if (ev == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED)
        s->arrived = true;
    return 0;
}

static long usb_elapsed_ms(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000L + (now.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* Lets libusb deliver hotplug events for up to ms (at most 100 at a time), or sleeps where it has none. */
static void usb_events(usb_slot *s, long ms)
{
    if (ms > 100)
        ms = 100;
    if (s->hotplug) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = ms * 1000};
        libusb_handle_events_timeout_completed(s->ctx, &tv, NULL);
    } else {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Finds and opens exactly one matching device and claims its interface. */
static ifpp_err usb_attach(usb_slot *s, char *why, size_t why_len)
{
    libusb_device **list;
    ssize_t n = libusb_get_device_list(s->ctx, &list);
    int matches = 0;
    ifpp_err e = IFPP_OK;
    if (n < 0) {
        err_why(why, why_len, "usb: cannot list devices (%s)", libusb_strerror((int)n));
        return usb_error((int)n);
    }
    for (ssize_t i = 0; i < n && e == IFPP_OK; i++) {
        int iface;
        uint8_t o, in;
        libusb_device_handle *h = NULL;
        if (!usb_matches_static(s, list[i]) || !usb_find_interface(list[i], &iface, &o, &in))
            continue;
        if (s->serial[0]) {
            struct libusb_device_descriptor d;
            unsigned char sn[256];
            int r;
            if (libusb_get_device_descriptor(list[i], &d) != LIBUSB_SUCCESS || !d.iSerialNumber ||
                libusb_open(list[i], &h) != LIBUSB_SUCCESS)
                continue;
            r = libusb_get_string_descriptor_ascii(h, d.iSerialNumber, sn, sizeof sn - 1);
            if (r < 0 || (size_t)r != strlen(s->serial) || memcmp(sn, s->serial, (size_t)r) != 0) {
                libusb_close(h);
                continue;
            }
        }
        if (++matches > 1) {
            if (h)
                libusb_close(h);
            err_why(why, why_len, "usb: several devices match; name one by serial= or port=");
            e = IFPP_E_ARG;
            break;
        }
        int r = h ? LIBUSB_SUCCESS : libusb_open(list[i], &h);
        if (r != LIBUSB_SUCCESS) {
            err_why(why, why_len, "usb: cannot open the device at bus %u address %u (%s)",
                    libusb_get_bus_number(list[i]), libusb_get_device_address(list[i]), libusb_strerror(r));
            e = usb_error(r);
            break;
        }
        s->h = h;
        s->iface = iface;
        s->ep_out = o;
        s->ep_in = in;
    }
    libusb_free_device_list(list, 1);
    if (e == IFPP_OK && !matches) {
        err_why(why, why_len, "usb: no device with the IFPP interface matches the slot");
        return IFPP_E_NO_READER;
    }
    if (e != IFPP_OK)
        return e;
    /* a kernel driver bound to the interface (usbfs leaves vendor interfaces alone, but a DUT's may not) */
    if (libusb_kernel_driver_active(s->h, s->iface) == 1) {
        int r = libusb_detach_kernel_driver(s->h, s->iface);
        if (r != LIBUSB_SUCCESS) {
            err_why(why, why_len, "usb: cannot detach the kernel driver from interface %d (%s)", s->iface,
                    libusb_strerror(r));
            return usb_error(r);
        }
        s->detached = true;
    }
    int r = libusb_claim_interface(s->h, s->iface);
    if (r != LIBUSB_SUCCESS) {
        err_why(why, why_len, "usb: cannot claim interface %d (%s)", s->iface, libusb_strerror(r));
        return usb_error(r);
    }
    s->claimed = true;
    return IFPP_OK;
}

/* One bulk transfer; a stall is cleared before the error goes up. */
static ifpp_err usb_bulk(usb_slot *s, uint8_t ep, uint8_t *data, size_t len, int *done, unsigned timeout_ms)
{
    *done = 0;
    if (s->gone)
        return usb_fail(s, IFPP_E_NO_READER, "usb: the device was unplugged");
    int r = libusb_bulk_transfer(s->h, ep, data, (int)len, done, timeout_ms);
    if (r == LIBUSB_SUCCESS)
        return IFPP_OK;
    s->resync = true;
    if (r == LIBUSB_ERROR_PIPE) {
        int c = libusb_clear_halt(s->h, ep);
        return usb_fail(s, IFPP_E_TRANSPORT, "usb: endpoint %02X stalled (halt %s)", ep,
                        c == LIBUSB_SUCCESS ? "cleared" : libusb_strerror(c));
    }
    if (r == LIBUSB_ERROR_NO_DEVICE || s->gone)
        return usb_fail(s, IFPP_E_NO_READER, "usb: the device was unplugged during a transfer");
    if (r == LIBUSB_ERROR_TIMEOUT)
        return usb_fail(s, IFPP_E_TIMEOUT, "usb: endpoint %02X: no %s within %u ms", ep,
                        (ep & LIBUSB_ENDPOINT_IN) ? "reply" : "room for the request", timeout_ms);
    return usb_fail(s, usb_error(r), "usb: endpoint %02X: %s", ep, libusb_strerror(r));
}

/*
 * Sends one request frame and reads its reply into s->buf (*reply points into it). The reply must
 * be of this protocol version, carry the request's sequence number, and be of type expect (or
 * alt, when not 0); a non-OK status is the caller's to read.
 */
static ifpp_err usb_exchange(usb_slot *s, uint8_t type, const uint8_t *payload, size_t len, uint8_t expect,
                             uint8_t alt, unsigned timeout_ms, usbf_frame *reply)
{
    usbf_frame req = {.version = USBF_VERSION, .type = type, .payload = payload, .len = (uint32_t)len};
    size_t n;
    int done;
    char why[200];
    ifpp_err e;
    if (len > USBF_MAX_PAYLOAD)
        return usb_fail(s, IFPP_E_RANGE, "usb: a %zu-byte request is more than the protocol carries", len);
    s->seq = (uint16_t)(s->seq == 0xFFFF ? 1 : s->seq + 1);
    req.seq = s->seq;
    if ((e = usbf_encode(&req, s->buf, USBF_HEADER + USBF_MAX_PAYLOAD, &n)) != IFPP_OK)
        return usb_fail(s, e, "usb: request does not fit a frame");
    if ((e = usb_bulk(s, s->ep_out, s->buf, n, &done, timeout_ms)) != IFPP_OK)
        return e;
    if ((size_t)done != n) {
        s->resync = true;
        return usb_fail(s, IFPP_E_TRANSPORT, "usb: the device took %d of the request's %zu bytes", done, n);
    }
    if ((e = usb_bulk(s, s->ep_in, s->buf, USBF_HEADER + USBF_MAX_PAYLOAD, &done, timeout_ms)) != IFPP_OK)
        return e;
    if ((e = usbf_parse(s->buf, (size_t)done, reply, why, sizeof why)) != IFPP_OK) {
        s->resync = true;
        return usb_fail(s, e, "usb: bad reply: %s", why);
    }
    if (reply->version != USBF_VERSION) {
        s->resync = true;
        return usb_fail(s, IFPP_E_CARD_PROTOCOL, "usb: the device speaks protocol v%u; this station speaks v%u",
                        reply->version, USBF_VERSION);
    }
    if (reply->status == USBF_BAD_VERSION) {
        s->resync = true;
        return usb_fail(s, IFPP_E_CARD_PROTOCOL, "usb: the device refuses protocol v%u (it speaks v%u)", USBF_VERSION,
                        reply->len == 1 ? reply->payload[0] : 0);
    }
    if (reply->seq != s->seq) {
        s->resync = true;
        return usb_fail(s, IFPP_E_CARD_PROTOCOL, "usb: reply carries sequence number %u, the request %u", reply->seq,
                        s->seq);
    }
    if (reply->type != expect && (!alt || reply->type != alt)) {
        s->resync = true;
        return usb_fail(s, IFPP_E_CARD_PROTOCOL, "usb: reply of type %02X to a request of type %02X", reply->type,
                        type);
    }
    return IFPP_OK;
}

/* A reply's non-OK status as a typed error with its name. */
static ifpp_err usb_status_error(usb_slot *s, const usbf_frame *f, const char *what)
{
    ifpp_err e = f->status == USBF_NO_CARD   ? IFPP_E_NO_CARD
                 : f->status == USBF_CARD_IO ? IFPP_E_IO
                 : f->status == USBF_REFUSED ? IFPP_E_IO
                 : f->status == USBF_UNSUPPORTED ? IFPP_E_ARG
                                                 : IFPP_E_CARD_PROTOCOL;
    if (f->status == USBF_BAD_SEQUENCE || f->status == USBF_BAD_FRAME)
        s->resync = true;
    return usb_fail(s, e, "usb: the device answered %s with %s", what, usbf_status_str(f->status));
}

/* STATUS: the device's version, capabilities and limits. */
static ifpp_err usb_status(usb_slot *s)
{
    usbf_frame f;
    usbf_status st;
    ifpp_err e = usb_exchange(s, USBF_STATUS, NULL, 0, USBF_STATUS | USBF_REPLY, 0, s->timeout_ms, &f);
    if (e != IFPP_OK)
        return e;
    if (f.status != USBF_OK)
        return usb_status_error(s, &f, "STATUS");
    if (usbf_parse_status(f.payload, f.len, &st) != IFPP_OK)
        return usb_fail(s, IFPP_E_CARD_PROTOCOL, "usb: STATUS reply malformed (%lu bytes)", (unsigned long)f.len);
    s->caps = st.caps;
    s->dev_max_payload = st.max_payload;
    return IFPP_OK;
}

/* After a broken exchange: USB reset (interfaces stay claimed), both halts cleared, sequence resumed. */
static ifpp_err usb_resync(usb_slot *s)
{
    if (s->gone)
        return usb_fail(s, IFPP_E_NO_READER, "usb: the device was unplugged");
    int r = libusb_reset_device(s->h);
    if (r != LIBUSB_SUCCESS)
        return usb_fail(s, usb_error(r), "usb: device reset failed (%s)", libusb_strerror(r));
    libusb_clear_halt(s->h, s->ep_out);
    libusb_clear_halt(s->h, s->ep_in);
    s->resync = false;
    return IFPP_OK;
}

static void usb_close(void *ctx)
{
    usb_slot *s = ctx;
    if (!s)
        return;
    if (s->h) {
        if (s->claimed)
            libusb_release_interface(s->h, s->iface);
        if (s->detached)
            libusb_attach_kernel_driver(s->h, s->iface);
        libusb_close(s->h);
    }
    if (s->hotplug)
        libusb_hotplug_deregister_callback(s->ctx, s->hp);
    if (s->ctx)
        libusb_exit(s->ctx);
    free(s->buf);
    free(s);
}

static ifpp_err usb_open(const char *target, void **ctx, char *why, size_t why_len)
{
    usb_slot *s = calloc(1, sizeof *s);
    ifpp_err e;
    *ctx = NULL;
    if (!s || !(s->buf = malloc(USBF_HEADER + USBF_MAX_PAYLOAD))) {
        if (s)
            free(s);
        err_why(why, why_len, "out of memory");
        return IFPP_E_NOMEM;
    }
    if ((e = usb_parse_target(target, s, why, why_len)) != IFPP_OK)
        goto fail;
    int r = libusb_init(&s->ctx);
    if (r != LIBUSB_SUCCESS) {
        s->ctx = NULL;
        err_why(why, why_len, "usb: libusb cannot start (%s)", libusb_strerror(r));
        e = IFPP_E_TRANSPORT;
        goto fail;
    }
    if (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG) &&
        libusb_hotplug_register_callback(s->ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
                                         0, s->vid >= 0 ? s->vid : LIBUSB_HOTPLUG_MATCH_ANY,
                                         s->pid >= 0 ? s->pid : LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
                                         usb_hotplug_cb, s, &s->hp) == LIBUSB_SUCCESS)
        s->hotplug = true;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* a fixture's DUT may come after the slot opens: each arrival is looked at, within wait= */
    while ((e = usb_attach(s, why, why_len)) == IFPP_E_NO_READER && usb_elapsed_ms(&t0) < (long)s->wait_ms) {
        s->arrived = false;
        while (!s->arrived && usb_elapsed_ms(&t0) < (long)s->wait_ms)
            usb_events(s, (long)s->wait_ms - usb_elapsed_ms(&t0));
    }
    if (e == IFPP_E_NO_READER && s->wait_ms)
        err_why(why, why_len, "usb: no device with the IFPP interface matched the slot within %u ms", s->wait_ms);
    if (e != IFPP_OK)
        goto fail;
    if ((e = usb_status(s)) != IFPP_OK) {
        err_why(why, why_len, "%s", s->last);
        goto fail;
    }
    /* the APDU pipe in both modes: the station reads the EID, acknowledges PIRs and recovers over it */
    if (!(s->caps & USBF_CAP_APDU) || (s->bpp_mode && !(s->caps & USBF_CAP_BPP))) {
        err_why(why, why_len, "usb: the device does not offer %s (capabilities %02X)",
                !(s->caps & USBF_CAP_APDU) ? "an APDU pipe" : "whole-BPP operations (mode=bpp)", s->caps);
        e = IFPP_E_ARG;
        goto fail;
    }
    *ctx = s;
    return IFPP_OK;
fail:
    usb_close(s);
    return e;
}

static ifpp_err usb_reset(void *ctx, uint8_t *atr, size_t cap, size_t *atr_len)
{
    usb_slot *s = ctx;
    usbf_frame f;
    ifpp_err e;
    *atr_len = 0;
    if (s->resync && (e = usb_resync(s)) != IFPP_OK)
        return e;
    if ((e = usb_exchange(s, USBF_RESET, NULL, 0, USBF_RESET | USBF_REPLY, 0, s->timeout_ms, &f)) != IFPP_OK)
        return e;
    if (f.status != USBF_OK)
        return usb_status_error(s, &f, "RESET");
    if (f.len > cap)
        return usb_fail(s, IFPP_E_CARD_PROTOCOL, "usb: an ATR of %lu bytes (at most %zu)", (unsigned long)f.len, cap);
    if (f.len)
        memcpy(atr, f.payload, f.len);
    *atr_len = f.len;
    return IFPP_OK;
}

static ifpp_err usb_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *resp_len)
{
    usb_slot *s = ctx;
    usbf_frame f;
    ifpp_err e;
    *resp_len = 0;
    if (s->resync)
        return usb_fail(s, IFPP_E_CARD_RESET, "usb: the device needs a reset after the last failure");
    if ((e = usb_exchange(s, USBF_APDU, cmd, n, USBF_APDU | USBF_REPLY, 0, s->timeout_ms, &f)) != IFPP_OK)
        return e;
    if (f.status != USBF_OK)
        return usb_status_error(s, &f, "an APDU");
    if (f.len < 2 || f.len > cap)
        return usb_fail(s, IFPP_E_CARD_PROTOCOL, "usb: a response APDU of %lu bytes (2..%zu)", (unsigned long)f.len,
                        cap);
    memcpy(resp, f.payload, f.len);
    *resp_len = f.len;
    return IFPP_OK;
}

static bool usb_sequences_bpp(void *ctx)
{
    return ((usb_slot *)ctx)->bpp_mode;
}

/* The final reply of a whole-BPP operation: the PIR, or where the device says it failed. */
static ifpp_err usb_bpp_result(usb_slot *s, const usbf_frame *f, fpa_bpp_job *job, uint8_t *pir, size_t cap,
                               size_t *pir_len)
{
    static const char *const stages[] = {"", "GetEuiccChallenge", "AuthoriseFpaServices", "PrepareBppLoad",
                                         "the BPP"};
    usbf_bpp_error be;
    if (f->status == USBF_OK) {
        if (f->len == 0 || f->len > cap)
            return usb_fail(s, IFPP_E_CARD_PROTOCOL, "usb: a PIR of %lu bytes (1..%zu)", (unsigned long)f->len, cap);
        memcpy(pir, f->payload, f->len);
        *pir_len = f->len;
        return IFPP_OK;
    }
    if (usbf_parse_bpp_error(f->payload, f->len, &be) != IFPP_OK)
        return usb_status_error(s, f, "LOAD_BPP");
    job->not_sent = !be.sent && f->status == USBF_REFUSED;
    ifpp_err e = usb_status_error(s, f, "LOAD_BPP");
    size_t l = strlen(s->last);
    const char *result = be.result == 0xFF ? "none"
                         : be.stage == 2   ? es10_authorise_result_str(be.result)
                         : be.stage == 3   ? es10_prepare_result_str(be.result)
                                           : "";
    snprintf(s->last + l, sizeof s->last - l, " at %s (SW %04X, result %u %s%s)", stages[be.stage], be.sw, be.result,
             result, be.sent ? ", BPP commands sent" : "");
    return be.stage == 2 && f->status == USBF_REFUSED ? IFPP_E_SIGNATURE
           : be.stage == 3 && f->status == USBF_REFUSED ? IFPP_E_CERT_CHAIN
                                                       : e;
}

static ifpp_err usb_load_bpp(void *ctx, fpa_bpp_job *job, uint8_t *pir, size_t cap, size_t *pir_len)
{
    usb_slot *s = ctx;
    usbf_bpp_op op = {.chain = job->chain, .chain_len = job->chain_len, .txid = job->txid, .txid_len = job->txid_len,
                      .otpk = job->otpk, .bpp = job->bpp, .bpp_len = job->bpp_len};
    uint8_t *payload = NULL, sign[USB_SIGN_MAX];
    size_t n;
    usbf_frame f;
    ifpp_err e;
    *pir_len = 0;
    job->not_sent = false;
    if (s->resync)
        return usb_fail(s, IFPP_E_CARD_RESET, "usb: the device needs a reset after the last failure");
    if (!(payload = malloc(USBF_MAX_PAYLOAD)))
        return IFPP_E_NOMEM;
    if ((e = usbf_encode_bpp_op(&op, payload, USBF_MAX_PAYLOAD, &n)) != IFPP_OK) {
        free(payload);
        job->not_sent = true;
        return usb_fail(s, e, "usb: the BPP operation does not fit one frame (%zu-byte BPP)", job->bpp_len);
    }
    if (s->dev_max_payload < n) {
        free(payload);
        job->not_sent = true;
        return usb_fail(s, IFPP_E_RANGE, "usb: the device takes %lu bytes per request, the BPP operation is %zu",
                        (unsigned long)s->dev_max_payload, n);
    }
    e = usb_exchange(s, USBF_LOAD_BPP, payload, n, USBF_LOAD_BPP | USBF_REPLY, USBF_SIGN_REQUEST, s->bpp_timeout_ms,
                     &f);
    free(payload);
    if (e != IFPP_OK)
        return e;
    if (f.type == USBF_SIGN_REQUEST) {
        if (f.status != USBF_OK || f.len != 32) {
            s->resync = true;
            return usb_fail(s, IFPP_E_CARD_PROTOCOL, "usb: SIGN_REQUEST malformed (status %s, %lu bytes)",
                            usbf_status_str(f.status), (unsigned long)f.len);
        }
        uint8_t challenge[16], eid[16];
        memcpy(challenge, f.payload, 16);
        memcpy(eid, f.payload + 16, 16);
        if ((e = job->sign(job->sign_ctx, challenge, eid, sign, sizeof sign, &n)) != IFPP_OK) {
            s->resync = true; /* the device waits for an answer that will not come */
            return usb_fail(s, e, "usb: the station could not sign the eUICC's challenge (%s)", err_str(e));
        }
        if ((e = usb_exchange(s, USBF_SIGN_RESPONSE, sign, n, USBF_LOAD_BPP | USBF_REPLY, 0, s->bpp_timeout_ms,
                              &f)) != IFPP_OK)
            return e;
    }
    return usb_bpp_result(s, &f, job, pir, cap, pir_len);
}

static size_t usb_max_command_data(void *ctx)
{
    const usb_slot *s = ctx;
    return s->dev_max_payload >= USB_MAX_EXT_DATA + 9 ? USB_MAX_EXT_DATA : 255;
}

static const char *usb_last_error(void *ctx)
{
    return ((usb_slot *)ctx)->last;
}

/* Waits for the device's departure (present=false) through hotplug events, or for a card (STATUS). */
static ifpp_err usb_wait_card(void *ctx, bool present, long timeout_ms)
{
    usb_slot *s = ctx;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (present) {
            ifpp_err e;
            usbf_frame f;
            if (s->resync && (e = usb_resync(s)) != IFPP_OK)
                return e;
            e = usb_exchange(s, USBF_STATUS, NULL, 0, USBF_STATUS | USBF_REPLY, 0, s->timeout_ms, &f);
            usbf_status st;
            if (e == IFPP_OK && f.status == USBF_OK && usbf_parse_status(f.payload, f.len, &st) == IFPP_OK && st.card)
                return IFPP_OK;
            if (e == IFPP_E_NO_READER)
                return e;
        } else if (s->gone) {
            return IFPP_OK;
        } else if (!s->hotplug) { /* no hotplug here: a device that no longer answers has left */
            usbf_frame f;
            if (usb_exchange(s, USBF_STATUS, NULL, 0, USBF_STATUS | USBF_REPLY, 0, s->timeout_ms, &f) ==
                IFPP_E_NO_READER)
                return IFPP_OK;
        }
        long el = usb_elapsed_ms(&t0);
        if (el >= timeout_ms)
            return usb_fail(s, IFPP_E_TIMEOUT, "usb: no %s within %ld ms", present ? "card" : "departure", timeout_ms);
        usb_events(s, timeout_ms - el);
    }
}

const fpa_ops fpa_usb_ops = {
    .name = "usb",
    .open = usb_open,
    .close = usb_close,
    .reset = usb_reset,
    .transmit = usb_transmit,
    .load_bpp = usb_load_bpp,
    .sequences_bpp = usb_sequences_bpp,
    .max_command_data = usb_max_command_data,
    .last_error = usb_last_error,
    .wait_card = usb_wait_card,
};
