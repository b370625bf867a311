/*
 * test_encodings.c -- the bytes of the encodings issue 10 fixed, so that a regression names the byte.
 *
 * ICCIDs in EF.ICCID form (nibble-swapped BCD, Luhn, 'F' filler), simaResponse as one or more
 * EUICCResponse SEQUENCEs, smdpOid against the subjectAltName registeredID of CERT.DPpb, and
 * pir_match_vault refusing a PIR whose ICCID or smdpOid is not the vault's, with both values in
 * the message. The software eUICC's own bytes (UICCCapability, its PIRs) are in test_euicc_sim.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "iccid.h"
#include "pir.h"
#include "testpki.h"
#include "testutil.h"

/* ---- ICCID ---------------------------------------------------------------------------------- */

static void test_iccid_ef_form(void **state)
{
    (void)state;
    uint8_t ef[ICCID_LEN];
    char text[ICCID_TEXT_LEN];
    /* 19 digits: pairs swapped, the last digit with the 'F' filler in the high nibble. */
    assert_int_equal(iccid_luhn_digit("894944000000000000", 18), '8');
    assert_int_equal(iccid_from_digits("8949440000000000008", ef), IFPP_OK);
    assert_true(tu_hex_equal(ef, sizeof ef, "989444000000000000F8"));
    assert_int_equal(iccid_to_text(ef, text), IFPP_OK);
    assert_string_equal(text, "8949440000000000008");
    /* 20 digits: no filler. */
    assert_int_equal(iccid_from_digits("89014103211118510720", ef), IFPP_OK);
    assert_true(tu_hex_equal(ef, sizeof ef, "98101430121181157002"));
    assert_int_equal(iccid_to_text(ef, text), IFPP_OK);
    assert_string_equal(text, "89014103211118510720");
    /* The ProfileHeader's plain BCD is the same digits unswapped. */
    uint8_t plain[ICCID_LEN];
    assert_int_equal(iccid_from_digits("8949440000000000008", ef), IFPP_OK);
    iccid_swap_nibbles(ef, plain);
    assert_true(tu_hex_equal(plain, sizeof plain, "8949440000000000008F"));
}

static void test_iccid_refused(void **state)
{
    (void)state;
    uint8_t ef[ICCID_LEN];
    char text[ICCID_TEXT_LEN];
    assert_int_equal(iccid_from_digits("8949440000000000009", ef), IFPP_E_RANGE); /* Luhn */
    assert_int_equal(iccid_from_digits("894944000000000008", ef), IFPP_E_RANGE);  /* 18 digits */
    assert_int_equal(iccid_from_digits("1949440000000000000", ef), IFPP_E_RANGE); /* not 89 */
    assert_int_equal(iccid_from_digits("89494400000000000x8", ef), IFPP_E_RANGE);
    /* What the old test SM-DPf made (issue 10): random nibbles after 98 94 -- shown as they came. */
    static const uint8_t old[ICCID_LEN] = {0x98, 0x94, 0x61, 0xDC, 0x45, 0x29, 0x65, 0x52, 0x09, 0x0C};
    assert_int_equal(iccid_to_text(old, text), IFPP_E_RANGE);
    assert_string_equal(text, "894916CD5492562590C0");
    /* A filler anywhere but the last nibble, and a wrong check digit, are not ICCIDs. */
    static const uint8_t filler[ICCID_LEN] = {0x98, 0x94, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0xF8};
    assert_int_equal(iccid_to_text(filler, text), IFPP_E_RANGE);
    static const uint8_t luhn[ICCID_LEN] = {0x98, 0x94, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF9};
    assert_int_equal(iccid_to_text(luhn, text), IFPP_E_RANGE);
    assert_string_equal(text, "8949440000000000009");
}

/* ---- simaResponse ----------------------------------------------------------------------------- */

static void test_sima_response(void **state)
{
    (void)state;
    size_t n, count;
    /* One EUICCResponse { peStatus { PEStatus { status ok } } }, as commercial eUICCs send it. */
    uint8_t *one = tu_hex("3007A0053003800100", &n);
    assert_int_equal(pir_parse_sima_response(one, n, &count), IFPP_OK);
    assert_int_equal(count, 1);
    free(one);
    /* Two, the second with profileInstallationAborted and a statusMessage. */
    uint8_t *two = tu_hex("3007A00530038001003010A0083006800103810102810082026F6B", &n);
    assert_int_equal(pir_parse_sima_response(two, n, &count), IFPP_OK);
    assert_int_equal(count, 2);
    free(two);
    /* The software eUICC's old bytes: the EUICCResponse's content without its SEQUENCE. */
    uint8_t *bare = tu_hex("A0053003800100", &n);
    assert_int_equal(pir_parse_sima_response(bare, n, &count), IFPP_E_TLV_UNEXPECTED_TAG);
    free(bare);
    uint8_t *empty = tu_hex("", &n);
    assert_int_equal(pir_parse_sima_response(empty, 0, &count), IFPP_E_TLV_MISSING);
    free(empty);
    uint8_t *no_status = tu_hex("3004A0023000", &n); /* PEStatus without its status */
    assert_int_not_equal(pir_parse_sima_response(no_status, n, &count), IFPP_OK);
    free(no_status);
}

/* ---- a PIR and the vault ------------------------------------------------------------------------ */

/* A success PIR with the given ICCID (EF form, hex) and smdpOid TLV (hex, "" for none); signature zeros. */
static uint8_t *make_pir(const char *iccid_hex, const char *oid_tlv_hex, const char *sima_hex, size_t *n)
{
    char body[600], data[700], hex[1000];
    char sig[129];
    memset(sig, '0', 128);
    sig[128] = '\0';
    snprintf(body, sizeof body,
             "8010A0A1A2A3A4A5A6A7A8A9AAABACADAEAF"
             "BF2F24" "800101" "81020780" "0C0F736D6470662E696670702E74657374" "5A0A%s"
             "%s"
             "A2%02zX" "A0%02zX" "4F10A0000005591010FFFFFFFF8900001001" "04%02zX%s",
             iccid_hex, oid_tlv_hex, (18 + 2 + strlen(sima_hex) / 2) + 2, 18 + 2 + strlen(sima_hex) / 2,
             strlen(sima_hex) / 2, sima_hex);
    snprintf(data, sizeof data, "BF27%02zX%s", strlen(body) / 2, body);
    snprintf(hex, sizeof hex, "BF3781%02zX%s5F3740%s", strlen(data) / 2 + 67, data, sig);
    return tu_hex(hex, n);
}

static void test_pir_smdp_oid(void **state)
{
    (void)state;
    size_t n;
    pir_info pir;
    uint8_t *b = make_pir("989444000000000000F8", "060388370A", "3007A0053003800100", &n);
    assert_int_equal(pir_parse(b, n, &pir), IFPP_OK);
    assert_true(tu_hex_equal(pir.smdp_oid, pir.smdp_oid_len, "88370A"));
    assert_true(tu_hex_equal(pir.sima_response, pir.sima_response_len, "3007A0053003800100"));
    assert_int_equal(pir.sima_count, 1);
    char text[32];
    cert_oid_text(pir.smdp_oid, pir.smdp_oid_len, text, sizeof text);
    assert_string_equal(text, "2.999.10");
    free(b);
    /* A success PIR whose simaResponse is not EUICCResponses is refused. */
    b = make_pir("989444000000000000F8", "060388370A", "A0053003800100", &n);
    assert_int_equal(pir_parse(b, n, &pir), IFPP_E_TLV_UNEXPECTED_TAG);
    free(b);
}

typedef struct {
    crypto_key *k;
    cert *pb;       /* registeredID 2.999.10 */
    cert *other;    /* registeredID 2.999.11 */
    cert *none;     /* no subjectAltName */
} certs;

static cert *make_pb(crypto_key *k, const char *rid)
{
    cert *c = NULL;
    testpki_cert_spec s = {.cn = "SM-DPf binding", .role = CERT_ROLE_DPF_PB, .subject_pkey = crypto_key_evp(k),
                           .not_before = -60, .not_after = 3600, .registered_id = rid};
    assert_int_equal(testpki_make_cert(&s, &c), IFPP_OK);
    return c;
}

static void test_pir_match_vault(void **state)
{
    (void)state;
    certs C = {0};
    uint8_t oid[64];
    size_t oid_len, n;
    char why[512];
    pir_info pir;
    static const uint8_t vault_iccid[ICCID_LEN] = {0x98, 0x94, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF8};
    static const uint8_t other_iccid[ICCID_LEN] = {0x98, 0x94, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0xF6};

    assert_int_equal(crypto_key_generate(CRYPTO_CURVE_P256, &C.k), IFPP_OK);
    C.pb = make_pb(C.k, TESTPKI_SMDPF_OID);
    C.other = make_pb(C.k, "2.999.11");
    C.none = make_pb(C.k, NULL);
    assert_int_equal(cert_registered_id(C.pb, oid, sizeof oid, &oid_len), IFPP_OK);
    assert_true(tu_hex_equal(oid, oid_len, "88370A"));
    assert_int_equal(cert_registered_id(C.none, oid, sizeof oid, &oid_len), IFPP_E_NOT_FOUND);

    uint8_t *b = make_pir("989444000000000000F8", "060388370A", "3007A0053003800100", &n);
    assert_int_equal(pir_parse(b, n, &pir), IFPP_OK);
    assert_int_equal(pir_match_vault(&pir, vault_iccid, C.pb, why, sizeof why), IFPP_OK);
    assert_int_equal(pir_match_vault(&pir, vault_iccid, NULL, why, sizeof why), IFPP_OK);

    /* ICCID: refused, both ICCIDs as digits in the message. */
    assert_int_equal(pir_match_vault(&pir, other_iccid, C.pb, why, sizeof why), IFPP_E_SIGNATURE);
    assert_non_null(strstr(why, "8949440000000000008"));
    assert_non_null(strstr(why, "8949440000000000016"));

    /* smdpOid: refused, both OIDs in the message. */
    assert_int_equal(pir_match_vault(&pir, vault_iccid, C.other, why, sizeof why), IFPP_E_SIGNATURE);
    assert_non_null(strstr(why, "2.999.10"));
    assert_non_null(strstr(why, "2.999.11"));
    /* A vault certificate without the SM-DP OID cannot vouch for any PIR. */
    assert_int_not_equal(pir_match_vault(&pir, vault_iccid, C.none, why, sizeof why), IFPP_OK);
    assert_non_null(strstr(why, "registeredID"));
    free(b);

    /* A PIR without smdpOid, against a certificate that names one: refused. */
    b = make_pir("989444000000000000F8", "", "3007A0053003800100", &n);
    assert_int_equal(pir_parse(b, n, &pir), IFPP_OK);
    assert_int_equal(pir.smdp_oid_len, 0);
    assert_int_equal(pir_match_vault(&pir, vault_iccid, C.pb, why, sizeof why), IFPP_E_SIGNATURE);
    assert_non_null(strstr(why, "2.999.10"));
    free(b);

    cert_free(C.pb);
    cert_free(C.other);
    cert_free(C.none);
    crypto_key_free(C.k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iccid_ef_form),   cmocka_unit_test(test_iccid_refused),
        cmocka_unit_test(test_sima_response),   cmocka_unit_test(test_pir_smdp_oid),
        cmocka_unit_test(test_pir_match_vault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
