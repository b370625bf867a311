/*
 * fpa.h -- the FPA interface: one small vtable per backend, in the spirit of
 * wpa_supplicant's driver ops and lpac's APDU drivers.
 *
 * A backend moves APDUs to one eUICC in one fixture slot and owns its transport's quirks
 * (T=0 61xx/6Cxx at the reader, AT echo and +CME ERROR, USB stalls), reporting them as typed
 * errors. Everything above the APDU -- ES10f framing (drivers/es10f.h), the session sequence
 * (agent/session.h) -- is written once. Optional ops are NULL; callers use the fpa_*()
 * wrappers, which give a defined answer when a backend lacks one.
 *
 * Backends: "pcsc" (a PC/SC reader through PCSC-lite, drivers/fpa_pcsc.c), built in when the
 * build has IFPP_WITH_PCSC; "at" (a cellular modem's AT+CSIM/AT+CGLA through libserialport,
 * drivers/fpa_at.c) with IFPP_WITH_AT; "usb" (the vendor protocol of docs/usb-protocol.md over
 * libusb-1.0, drivers/fpa_usb.c) with IFPP_WITH_USB.
 * "virtual" (the software eUICC, tests/sim/fpa_virtual.c) is no part of the product: the tests,
 * the demo and the line-rehearsal tool register it with fpa_register().
 */
#ifndef IFPP_FPA_H
#define IFPP_FPA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * What an FPA that sequences ES10f itself needs for one BPP (docs/usb-protocol.md §3.3). The Device
 * Manufacturer's FPA key stays in the station: the FPA calls sign with the eUICC's challenge and
 * EID and gets the AuthoriseFpaServices command ('BF70') to send.
 */
typedef struct fpa_bpp_job {
    const uint8_t *chain;   /* CERT.DPpb then its sub-CAs, concatenated DER */
    size_t chain_len;
    const uint8_t *txid;
    size_t txid_len;
    const uint8_t *otpk;    /* the One-time Key the BPP is bound to, 65 bytes */
    const uint8_t *bpp;
    size_t bpp_len;
    ifpp_err (*sign)(void *sign_ctx, const uint8_t challenge[16], const uint8_t eid[16], uint8_t *out, size_t cap,
                     size_t *n);
    void *sign_ctx;
    /* Out: true only if the FPA said, in a well-formed answer, that no BPP command reached the eUICC. */
    bool not_sent;
} fpa_bpp_job;

typedef struct fpa_ops {
    const char *name;
    /* Opens the slot named by target (backend-specific: a card file, a reader pattern, a tty). */
    ifpp_err (*open)(const char *target, void **ctx, char *why, size_t why_len);
    /* Releases the slot. */
    void (*close)(void *ctx);
    /* Powers the eUICC up or resets it; writes the ATR (or the FPA's equivalent). */
    ifpp_err (*reset)(void *ctx, uint8_t *atr, size_t cap, size_t *atr_len);
    /* Moves one command APDU and its response (data || SW1 SW2). */
    ifpp_err (*transmit)(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *resp_len);
    /*
     * Optional (NULL if absent): for an FPA that runs the ES10f BPP sequence itself (SGP.41 §3.2.3,
     * a hardware FPA): authorisation, PrepareBppLoad and the whole BF36, from job; the PIR back.
     * The engine otherwise sends the SGP.22 commands one by one over transmit().
     */
    ifpp_err (*load_bpp)(void *ctx, struct fpa_bpp_job *job, uint8_t *pir, size_t cap, size_t *pir_len);
    /* Optional: whether this slot's load_bpp is in use (a backend with a per-slot mode); NULL: it is. */
    bool (*sequences_bpp)(void *ctx);
    /*
     * Optional: the largest command data (Nc) one APDU may carry on this slot -- above 255 only
     * where the reader and the card take extended length. NULL means 255 (short APDUs).
     */
    size_t (*max_command_data)(void *ctx);
    /* Optional: what the transport said about the last failure ("reader X: card removed"), or "". */
    const char *(*last_error)(void *ctx);
    /*
     * Optional: opens a logical channel with the application aid selected on it, the transport's
     * own way (a modem's AT+CCHO), and gives its number. NULL: fpa_open_channel() sends MANAGE
     * CHANNEL and SELECT over transmit(), as a reader passes them to the card; so does an
     * IFPP_E_NOT_FOUND answer (the backend has no way of its own on this target).
     */
    ifpp_err (*open_channel)(void *ctx, const uint8_t *aid, size_t aid_len, unsigned *channel);
    /* Optional: closes a channel open_channel opened (NULL or IFPP_E_NOT_FOUND: MANAGE CHANNEL close over transmit()). */
    ifpp_err (*close_channel)(void *ctx, unsigned channel);
    /*
     * Optional: waits up to timeout_ms until a card is in the slot (present) or the slot is empty
     * (!present), as the transport reports insertion and removal; IFPP_E_TIMEOUT if it is not.
     * NULL: the backend cannot tell, and fpa_wait_card() says IFPP_E_ARG.
     */
    ifpp_err (*wait_card)(void *ctx, bool present, long timeout_ms);
} fpa_ops;

/* An open slot: its backend and the backend's context. */
typedef struct {
    const fpa_ops *ops;
    void *ctx;
} fpa_slot;

/*
 * Adds a backend to the registry (at start-up, before any slot opens: the registry takes no
 * lock). Registering the same ops twice is fine; another backend under a taken name is IFPP_E_ARG.
 */
ifpp_err fpa_register(const fpa_ops *ops);

/* The backend built in or registered under name ("pcsc", ...), or NULL. */
const fpa_ops *fpa_find(const char *name);

/* Writes the known backends' names ("pcsc, virtual") into out; returns how many there are. */
size_t fpa_backend_names(char *out, size_t cap);

/* Opens target with the named backend; why says what went wrong (unknown backend, no card, ...). */
ifpp_err fpa_open(const char *backend, const char *target, fpa_slot *slot, char *why, size_t why_len);

/* Closes an open slot (a zeroed slot is fine). */
void fpa_close(fpa_slot *slot);

/* Resets the eUICC. */
ifpp_err fpa_reset(fpa_slot *slot, uint8_t *atr, size_t cap, size_t *atr_len);

/* True if the slot's backend sequences a whole BPP itself (fpa_ops.load_bpp). */
bool fpa_can_load_bpp(const fpa_slot *slot);

/* Hands a whole BPP operation to an FPA that sequences it itself; IFPP_E_ARG if the backend cannot. */
ifpp_err fpa_load_bpp(fpa_slot *slot, fpa_bpp_job *job, uint8_t *pir, size_t cap, size_t *pir_len);

/* The largest Nc one command APDU may carry on the slot (255 unless the backend says more). */
size_t fpa_max_command_data(const fpa_slot *slot);

/* The backend's own words about its last failure, or "" (never NULL). */
const char *fpa_last_error(const fpa_slot *slot);

/* SELECT by AID, no FCI wanted, on channel ch; *sw gets the card's status word (IFPP_E_IO if it refuses). */
ifpp_err fpa_select(fpa_slot *slot, unsigned ch, const uint8_t *aid, size_t aid_len, uint16_t *sw);

/*
 * Opens a logical channel and selects aid on it; *channel gets its number (1..19). The backend's
 * own way if it has one, else MANAGE CHANNEL open (the card assigns the number, ISO 7816-4
 * §11.1.2) and SELECT by AID on the new channel. *sw gets a refusing card's status word (or 0).
 */
ifpp_err fpa_open_channel(fpa_slot *slot, const uint8_t *aid, size_t aid_len, unsigned *channel, uint16_t *sw);

/* Closes a logical channel (best effort: the next reset closes it anyway). */
void fpa_close_channel(fpa_slot *slot, unsigned channel);

/* Waits for a card to arrive (present) or leave (!present); IFPP_E_ARG if the backend cannot tell. */
ifpp_err fpa_wait_card(fpa_slot *slot, bool present, long timeout_ms);

/* The es10f_transmit_fn of a slot: pass it with the slot as context. */
ifpp_err fpa_transmit(void *slot, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *resp_len);

#endif
