/*
 * es10.h -- the ES10 functions the station calls on an eUICC's ISD-R, each as one typed call:
 * SGP.22 ES10b/ES10c (GetEID, GetEUICCInfo2, GetEuiccChallenge, LoadBoundProfilePackage,
 * RetrieveNotificationsList, NotificationSent) and the IFPP ES10f additions of docs/ifpp.asn
 * (AuthoriseFpaServices 'BF70', PrepareBppLoad 'BF71', GetOneTimeKeyInfo 'BF72', DeleteOneTimeKeys
 * 'BF73'), named after the interfaces as lpac's es10a/b/c files are.
 *
 * Why one module: a DUT's card is hostile input. Each function here owns its response buffer (so
 * the capacity passed down is always the buffer's real one), checks the status word, and parses
 * the answer strictly -- the top tag, every field's tag and size, nothing trailing -- before any
 * caller decides on it. The encodings are byte-identical to docs/es10f.md, which the software
 * eUICC in tests/sim implements. Transport (STORE DATA blocks, GET RESPONSE) is drivers/es10f.h.
 */
#ifndef IFPP_ES10_H
#define IFPP_ES10_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "crypto.h"
#include "err.h"
#include "es10f.h"
#include "tlv.h"

#define ES10_MAX_OTKS 255
#define ES10_MAX_NOTIFICATIONS 64
#define ES10_MAX_BPP_COMMANDS 512
#define ES10_NO_RESULT (-1)

/*
 * The ISD-R on one channel of one slot. After each call, sw holds the card's last status word
 * (0: none came) and result the ES10 result code of a refusing answer (ES10_NO_RESULT: none), so
 * that a caller can name the card's own words.
 */
typedef struct {
    es10f_transmit_fn tx;
    void *ctx;
    unsigned channel;
    size_t block;   /* STORE DATA block size, ES10F_BLOCK..ES10F_MAX_BLOCK */
    uint16_t sw;
    int result;
} es10_chan;

/* One ES10 request in, its response out (at most cap bytes); IFPP_E_IO if the status word is not 9000. */
ifpp_err es10_call(es10_chan *k, const uint8_t *req, size_t n, uint8_t *resp, size_t cap, size_t *rn);

/* ES10c.GetEID ('BF3E' with tag list '5A'): exactly 'BF3E' { '5A' 16 bytes }. */
ifpp_err es10_get_eid(es10_chan *k, uint8_t eid[16]);

/* ES10b.GetEUICCInfo2 ('BF22'): one 'BF22' TLV, constructed, nothing after it. */
ifpp_err es10_get_euicc_info2(es10_chan *k);

/* ES10b.GetEuiccChallenge ('BF2E'): exactly 'BF2E' { '80' 16 bytes }. */
ifpp_err es10_get_challenge(es10_chan *k, uint8_t challenge[16]);

/*
 * AuthoriseFpaServices ('BF70', EUICCF02), signed with the Device Manufacturer's FPA key over
 * fpaSigned = { 81 challenge, 5A EID }. IFPP_OK only for authoriseResult ok(0); a refusal is
 * IFPP_E_SIGNATURE with k->result set.
 */
ifpp_err es10_authorise_fpa(es10_chan *k, const uint8_t challenge[16], const uint8_t eid[16],
                            const crypto_key *dm_fpa_key, const cert *dm_fpa_cert);

/*
 * PrepareBppLoad ('BF71'): transactionId, the otPK the BPP is bound to, CERT.DPpb (and sub-CAs).
 * IFPP_OK only for prepareResult ok(0); a refusal is IFPP_E_CERT_CHAIN with k->result set.
 */
ifpp_err es10_prepare_bpp_load(es10_chan *k, const uint8_t *txid, size_t txid_len, const uint8_t otpk[65],
                               const cert *dpf_pb, const cert *const *sub_cas, size_t n_sub);

/*
 * ES10b.LoadBoundProfilePackage: the BPP split as SGP.22 says (es10f_bpp_split), command by command;
 * the first command answered with data ends it, and that data goes to pir (at most cap bytes).
 * *sent is true once any BPP byte may have reached the card. IFPP_E_IO on a refusing status word.
 */
ifpp_err es10_load_bpp(es10_chan *k, const uint8_t *bpp, size_t n, uint8_t *pir, size_t cap, size_t *pir_len,
                       bool *sent);

/*
 * ES10b.RetrieveNotificationsList ('BF2B') answer, parsed strictly: 'BF2B' { 'A0' { ('BF37' | '30')* } }
 * (or 'BF2B' { '81' error }: IFPP_E_IO with k->result). The PIRs ('BF37') go to pirs (pointing into
 * resp, at most max; more is IFPP_E_RANGE); other notifications are skipped.
 */
ifpp_err es10_parse_notifications(const uint8_t *resp, size_t n, tlv *pirs, size_t max, size_t *count, int *error);

/* Calls RetrieveNotificationsList into buf (cap bytes) and parses it as es10_parse_notifications. */
ifpp_err es10_retrieve_notifications(es10_chan *k, uint8_t *buf, size_t cap, tlv *pirs, size_t max, size_t *count);

/* ES10b.NotificationSent ('BF30' { '80' seq }): IFPP_OK for ok(0); IFPP_E_NOT_FOUND for nothingToDelete(1). */
ifpp_err es10_notification_sent(es10_chan *k, uint64_t seq);

/* The card's remaining One-time Keys (public halves), as GetOneTimeKeyInfo lists them. */
typedef struct {
    uint8_t count;
    uint8_t keys[ES10_MAX_OTKS][65];
} es10_otks;

/*
 * Parses GetOneTimeKeyInfo's answer ('BF72'): '80' count, then 'A1' holding exactly count '5F49'
 * keys of 65 bytes (at most max copied into otpks, which may be NULL), nothing else; a list that
 * disagrees with its count is IFPP_E_RANGE, so that no decision rests on a garbled answer.
 */
ifpp_err es10_parse_otk_info(const uint8_t *resp, size_t n, uint8_t (*otpks)[65], size_t max, uint8_t *count);

/* GetOneTimeKeyInfo ('BF72'), parsed as es10_parse_otk_info. */
ifpp_err es10_get_otk_info(es10_chan *k, es10_otks *out);

/* True if otks holds otpk. */
bool es10_otk_present(const es10_otks *otks, const uint8_t otpk[65]);

/*
 * DeleteOneTimeKeys ('BF73', EUICCF03): 'BF73' { '02' deleteResult, '80' deletedCount }. IFPP_OK
 * only for ok(0); a refusal is IFPP_E_IO with k->result set.
 */
ifpp_err es10_delete_otks(es10_chan *k, uint8_t *deleted);

/*
 * Reads the first field of a response TLV that must be `tag`: an INTEGER 0..255 under result_tag
 * (the typed calls above also refuse anything after it where their answer has one field).
 */
ifpp_err es10_parse_result(const uint8_t *resp, size_t n, uint32_t tag, uint32_t result_tag, uint8_t *result);

/* Builds AuthoriseFpaServices ('BF70') into out (docs/es10f.md "FPA Services authorisation"). */
ifpp_err es10_build_authorise(const uint8_t challenge[16], const uint8_t eid[16], const crypto_key *dm_fpa_key,
                              const cert *dm_fpa_cert, uint8_t *out, size_t cap, size_t *n);

/* Builds PrepareBppLoad ('BF71') into out. */
ifpp_err es10_build_prepare(const uint8_t *txid, size_t txid_len, const uint8_t otpk[65], const cert *dpf_pb,
                            const cert *const *sub_cas, size_t n_sub, uint8_t *out, size_t cap, size_t *n);

/* Names an AuthoriseFpaServices result ("invalidSignature", ...). */
const char *es10_authorise_result_str(int result);

/* Names a PrepareBppLoad result ("oneTimeKeyUnknown", ...). */
const char *es10_prepare_result_str(int result);

/* ---- EUICCF05: connectivity test of a loaded Profile (issue 15 item 5; docs/ifpp.asn 'BF74', 'BF75') */

#define ES10_CAP_CONNECTIVITY_TEST 0x01u /* IfppCapabilities bit 0 */

/*
 * GetIfppCapabilities ('BF74'): exactly 'BF74' { '80' BIT STRING }; *caps gets the ES10_CAP_* bits
 * (bits the station does not know are ignored). A card without the function (status word 6A88) is
 * IFPP_OK with *caps 0 and *known false; any other failure is an error.
 */
ifpp_err es10_get_ifpp_capabilities(es10_chan *k, unsigned *caps, bool *known);

/* Parses GetIfppCapabilities' answer as es10_get_ifpp_capabilities says. */
ifpp_err es10_parse_ifpp_capabilities(const uint8_t *resp, size_t n, unsigned *caps);

/* The testResult codes of ConnectivityTestSigned. */
enum {
    ES10_CONN_OK = 0, ES10_CONN_NO_NETWORK = 1, ES10_CONN_ATTACH_REJECTED = 2, ES10_CONN_TIMEOUT = 3,
    ES10_CONN_PROFILE_NOT_FOUND = 4, ES10_CONN_NOT_SUPPORTED = 5, ES10_CONN_FPA_NOT_AUTHORISED = 6,
    ES10_CONN_UNDEFINED = 127,
};

#define ES10_CONN_MAX_RESPONSE 512 /* a ConnectivityTestResponse is ~190 bytes; more is refused */

/* What the eUICC signed, after es10_parse_conn_test checked it. */
typedef struct {
    int result;            /* testResult, ES10_CONN_* (0..255) */
    bool left_enabled;     /* profileState enabled(1) */
    bool has_network;
    uint8_t network[3];    /* servingNetwork (PLMN), if has_network */
    uint8_t evidence[ES10_CONN_MAX_RESPONSE]; /* the whole 'BF75' answer, byte for byte */
    size_t evidence_len;
} es10_conn_result;

/* Builds ConnectivityTest ('BF75') for iccid (10 bytes), nonce (16) and time_limit 1..600 seconds. */
ifpp_err es10_build_conn_test(const uint8_t iccid[10], const uint8_t nonce[16], unsigned time_limit, bool leave_enabled,
                              uint8_t *out, size_t cap, size_t *n);

/*
 * Parses a ConnectivityTest answer strictly ('BF75' { '30' { 5A 80 81 82 83 [84] } 5F37 }, nothing
 * else, at most ES10_CONN_MAX_RESPONSE bytes) and checks it: signed by euicc_key over the DER of
 * testSigned (IFPP_E_SIGNATURE), for this eid, iccid and nonce (IFPP_E_SIGNATURE, why names which
 * and both values), the Profile not left enabled unless leave_enabled (IFPP_E_RANGE, GENF03). why
 * names the first fault; out is filled only on IFPP_OK.
 */
ifpp_err es10_parse_conn_test(const uint8_t *resp, size_t n, const crypto_key *euicc_key, const uint8_t eid[16],
                              const uint8_t iccid[10], const uint8_t nonce[16], bool leave_enabled,
                              es10_conn_result *out, char *why, size_t why_len);

/* ConnectivityTest ('BF75'): builds, sends, and parses the answer as es10_parse_conn_test. */
ifpp_err es10_conn_test(es10_chan *k, const uint8_t iccid[10], const uint8_t nonce[16], unsigned time_limit,
                        const crypto_key *euicc_key, const uint8_t eid[16], es10_conn_result *out, char *why,
                        size_t why_len);

/* Names a testResult ("noNetwork", ...). */
const char *es10_conn_result_str(int result);
/* ---- use case A.4: deleting a profile and collecting the eUICC's signed evidence (issue 15) ---- */

#define ES10_EVENT_DELETE 3 /* SGP.22 NotificationEvent notificationDelete(3) */
#define ES10_MAX_LISTED 64  /* NotificationMetadata entries one ListNotification answer may hold */

/* SGP.22 NotificationMetadata ('BF2F'), parsed strictly; iccid only if has_iccid. */
typedef struct {
    uint64_t seq;
    uint16_t events;      /* the NotificationEvent bits present: bit n set for event n (0..15) */
    bool has_iccid;
    uint8_t iccid[10];    /* EF.ICCID form, as the store keeps it */
} es10_notification_meta;

/*
 * SGP.22 OtherSignedNotification ('30'): tbsOtherNotification ('BF2F'), euiccNotificationSignature
 * ('5F37', r||s over the DER of tbsOtherNotification), euiccCertificate, eumCertificate; nothing
 * after them. Pointers go into the parsed buffer.
 */
typedef struct {
    es10_notification_meta meta;
    tlv tbs;                  /* the BF2F TLV as signed */
    const uint8_t *sig;
    size_t sig_len;
    tlv euicc_cert, eum_cert; /* whole TLVs (the certificates' DER) */
} es10_other_notification;

/* Parses one NotificationMetadata TLV ('BF2F' ...), exactly n bytes. */
ifpp_err es10_parse_notification_meta(const uint8_t *p, size_t n, es10_notification_meta *out);

/* Parses exactly one OtherSignedNotification (n bytes, nothing after it). */
ifpp_err es10_parse_other_notification(const uint8_t *p, size_t n, es10_other_notification *out);

/*
 * Verifies a parsed OtherSignedNotification as evidence that the eUICC whose certificate the store
 * holds (euicc_cert_der) deleted the profile iccid: the notification carries exactly that certificate,
 * its event is notificationDelete only, it names iccid, and its signature verifies with that
 * certificate's key. IFPP_E_SIGNATURE (why: which of these failed) otherwise.
 */
ifpp_err es10_verify_delete_notification(const es10_other_notification *n, const uint8_t *euicc_cert_der,
                                         size_t euicc_cert_len, const uint8_t iccid[10], char *why, size_t why_len);

/*
 * Parses ListNotification's answer ('BF28'): 'BF28' { 'A0' { 'BF2F'* } } (at most max, more is
 * IFPP_E_RANGE) or 'BF28' { '81' error } (IFPP_E_IO, *error set).
 */
ifpp_err es10_parse_notification_list(const uint8_t *resp, size_t n, es10_notification_meta *out, size_t max,
                                      size_t *count, int *error);

/* ES10b.ListNotification ('BF28' { '81' NotificationEvent }) for one event (ES10_EVENT_DELETE ...). */
ifpp_err es10_list_notifications(es10_chan *k, unsigned event, es10_notification_meta *out, size_t max,
                                 size_t *count);

/*
 * ES10b.RetrieveNotificationsList for one seqNumber ('BF2B' { 'A0' { '80' seq } }): the one
 * OtherSignedNotification with that number, copied into buf (cap bytes) and parsed into *out.
 * IFPP_E_NOT_FOUND if the list holds none; IFPP_E_TLV_UNEXPECTED_TAG if it holds a PIR or more than one.
 */
ifpp_err es10_retrieve_other_notification(es10_chan *k, uint64_t seq, uint8_t *buf, size_t cap, size_t *len,
                                          es10_other_notification *out);

/*
 * ES10c.DeleteProfile ('BF33' { '5A' iccid }): IFPP_OK for ok(0); a refusal (iccidOrAidNotFound(1),
 * profileNotInDisabledState(2), disallowedByPolicy(3), undefinedError(127)) is IFPP_E_IO with k->result set.
 */
ifpp_err es10_delete_profile(es10_chan *k, const uint8_t iccid[10]);

/* Names a DeleteProfile result ("iccidOrAidNotFound", ...). */
const char *es10_delete_result_str(int result);

#endif
