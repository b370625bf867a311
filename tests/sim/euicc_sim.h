/*
 * euicc_sim.h -- a software eUICC that speaks APDUs exactly as a card would.
 *
 * The station can only be tested honestly against a card that really checks every
 * signature and MAC, so this one does: it is the SGP.22 ISD-R with the IFPP additions of
 * docs/es10f.md -- One-time Keys from the EUM's factory, FPA Services authorisation by the
 * Device Manufacturer (EUICCF02), the SM-DPf binding chain checked to the CI, the full
 * BPP processing (smdpSign, ECKA, KDF, the MAC chain on every segment, decryption,
 * ConfigureISDP, StoreMetadata, ReplaceSessionKeys), the eUICC-signed PIR kept until
 * acknowledged, One-time Key count/delete (EUICCF03) and LPA services refused while any
 * One-time Key remains (EUICCF04).
 *
 * Its persistent state (keys, certificates, profiles, kept notifications) lives in one file
 * written atomically (temp, fsync, rename, fsync directory), as a card's NVM survives a
 * power cut: every command either changes it completely or not at all. Volatile state
 * (channels, authorisation, a half-received STORE DATA sequence, the BPP session keys) is
 * lost on reset, as on a card. With IFPP_SIM_NO_SYNC in the environment the file is rewritten in
 * place without a sync: the benches' way to leave the card's own syncs out of the station's figures.
 *
 * Fault hooks let a test tear a session at any APDU, flip a bit of any command, or cut the
 * power in the middle of a persistent write.
 *
 * A test tool: the product never links it. The `virtual` driver and the transport test
 * doubles (vpcd card, fake modem, emulated USB device) all put this same card behind them.
 */
#ifndef IFPP_EUICC_SIM_H
#define IFPP_EUICC_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"

typedef struct euicc_sim euicc_sim;

/* What the EUM personalises into a new card (tests/sim/eum.c fills this). */
typedef struct {
    uint8_t eid[16];
    const crypto_key *euicc_key;      /* SK.EUICC.ECDSA (the PIR signing key) */
    const uint8_t *euicc_cert_der;    /* CERT.EUICC.ECDSA */
    size_t euicc_cert_len;
    const uint8_t *eum_cert_der;      /* CERT.EUM.ECDSA */
    size_t eum_cert_len;
    const uint8_t *ci_cert_der;       /* the CI the card trusts for the SM-DPf chain */
    size_t ci_cert_len;
    const uint8_t *dm_root_cert_der;  /* the Device Manufacturer root for FPA authorisation */
    size_t dm_root_cert_len;
    const crypto_key *const *otks;    /* One-time Keys (private halves stay in the card file) */
    size_t n_otks;
} euicc_sim_personalisation;

/* Fault injection for tests; positions count command APDUs from the arming call, from 1. */
typedef struct {
    unsigned tear_at_apdu;      /* >0: this APDU gets no answer and the card loses power */
    unsigned flip_at_apdu;      /* >0: flip bit flip_bit of this APDU's data before processing */
    unsigned flip_bit;
    bool power_cut_in_write;    /* the next persistent write stops after its temp file: not applied */
    bool forge_delete_signature; /* DeleteProfile keeps a notification whose signature does not verify */
    const struct euicc_sim *delete_signer; /* DeleteProfile's notification signed by this other card, with its
                                              certificates (a notification of the wrong eUICC); NULL: itself */
} euicc_sim_faults;

/* Creates a new card state file at path (refuses to overwrite an existing one). */
ifpp_err euicc_sim_personalise(const char *path, const euicc_sim_personalisation *p);

/* Opens a card from its state file; the card is powered off until euicc_sim_reset(). */
ifpp_err euicc_sim_open(const char *path, euicc_sim **out);

/* Closes the card (no state is written: persistent changes were written as they happened). */
void euicc_sim_close(euicc_sim *card);

/* Powers the card on (or resets it): writes the ATR and clears volatile state (channels, authorisation, BPP session). */
ifpp_err euicc_sim_reset(euicc_sim *card, uint8_t *atr, size_t cap, size_t *atr_len);

/*
 * One command APDU in, one response APDU (data || SW1 SW2) out. With t0 set, responses with
 * data are announced by 61xx and fetched by GET RESPONSE, as a T=0 card does.
 * IFPP_E_IO if the card is powered off or a fault hook tore it.
 */
ifpp_err euicc_sim_transmit(euicc_sim *card, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap,
                            size_t *resp_len);

/* Selects T=0 behaviour (61xx/GET RESPONSE, 6Cxx) instead of T=1. */
void euicc_sim_set_t0(euicc_sim *card, bool t0);

/*
 * Test hook: GetEuiccChallenge ('BF2E') answers challenge instead of a random one (NULL restores
 * random), so a recorded APDU sequence, AuthoriseFpaServices signature included, replays exactly.
 */
void euicc_sim_set_fixed_challenge(euicc_sim *card, const uint8_t challenge[16]);

/* Arms fault hooks (a copy is taken); zeroed faults disarm. */
void euicc_sim_set_faults(euicc_sim *card, const euicc_sim_faults *f);

/* The card's EUICCInfo2 ('BF22'), as GetEuiccInfo2 answers it; the EUM ships the same bytes (ESED202). */
ifpp_err euicc_sim_info2(const euicc_sim *card, uint8_t *out, size_t cap, size_t *n);

/* The card's EID. */
void euicc_sim_eid(const euicc_sim *card, uint8_t eid[16]);

/* Number of One-time Keys still in the card (from persistent state). */
size_t euicc_sim_otk_count(const euicc_sim *card);

/* Number of installed profiles and of kept (unacknowledged) notifications. */
size_t euicc_sim_profile_count(const euicc_sim *card);
size_t euicc_sim_notification_count(const euicc_sim *card);

/*
 * EUICCF05 (issue 15 item 5): how the card answers GetIfppCapabilities ('BF74') and ConnectivityTest
 * ('BF75'). The default offers the test and passes it (attached to PLMN 001-01); the others let a
 * test take every branch of the station's step, honest failures and hostile answers alike.
 */
typedef enum {
    EUICC_SIM_CONN_OK = 0,        /* offered; the attach works */
    EUICC_SIM_CONN_ABSENT,        /* BF74 answers the connectivityTest bit clear */
    EUICC_SIM_CONN_UNKNOWN,       /* no BF74/BF75 at all: 6A88, as an eUICC without IFPP extensions */
    EUICC_SIM_CONN_NO_NETWORK,    /* offered; signed noNetwork(1) */
    EUICC_SIM_CONN_ATTACH_REJECTED, /* offered; signed attachRejected(2) */
    EUICC_SIM_CONN_BAD_SIGNATURE, /* hostile: the signature is over other bytes */
    EUICC_SIM_CONN_WRONG_ICCID,   /* hostile: signs another ICCID than asked */
    EUICC_SIM_CONN_WRONG_NONCE,   /* hostile: signs another nonce than the station's */
    EUICC_SIM_CONN_LEFT_ENABLED,  /* hostile: says the Profile stayed enabled (GENF03) */
    EUICC_SIM_CONN_OVERLONG,      /* hostile: an answer far longer than any ConnectivityTestResponse */
    EUICC_SIM_CONN__COUNT
} euicc_sim_conn_mode;

/* Sets the card's connectivity-test behaviour (volatile: a reopened card is back to EUICC_SIM_CONN_OK). */
void euicc_sim_set_conn_test(euicc_sim *card, euicc_sim_conn_mode mode);

/* Parses a mode's name ("ok", "absent", "unknown", "no-network", ...); false if it is none. */
bool euicc_sim_conn_mode_parse(const char *name, size_t len, euicc_sim_conn_mode *mode);

/* How many ConnectivityTest commands the card ran (its profiles are disabled again after each). */
unsigned euicc_sim_conn_tests(const euicc_sim *card);

#endif
