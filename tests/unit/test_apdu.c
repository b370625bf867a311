/*
 * test_apdu.c -- APDU cases, strict parsing, logical channel class bytes, STORE DATA blocks.
 *
 * Vectors: SELECT of the ISD-R by its SGP.22 AID (A0000005591010FFFFFFFF8900000100) and the
 * GlobalPlatform/SGP.22 STORE DATA framing (CLA 80, INS E2, P1 11/91, P2 block number).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "apdu.h"
#include "testutil.h"

static const char *const ISDR_AID = "a0000005591010ffffffff8900000100";

static void assert_encodes_to(const apdu_cmd *cmd, bool ext, const char *hex)
{
    uint8_t out[512];
    size_t n = 0, want_n;
    uint8_t *want = tu_hex(hex, &want_n);
    assert_int_equal(apdu_encode(cmd, ext, out, sizeof out, &n), IFPP_OK);
    assert_int_equal(n, want_n);
    assert_memory_equal(out, want, n);
    /* and it parses back to the same command */
    apdu_cmd back;
    assert_int_equal(apdu_parse(out, n, &back), IFPP_OK);
    assert_int_equal(back.cla, cmd->cla);
    assert_int_equal(back.ins, cmd->ins);
    assert_int_equal(back.p1, cmd->p1);
    assert_int_equal(back.p2, cmd->p2);
    assert_int_equal(back.nc, cmd->nc);
    assert_int_equal(back.ne, cmd->ne);
    if (cmd->nc)
        assert_memory_equal(back.data, cmd->data, cmd->nc);
    free(want);
}

static void test_short_cases(void **state)
{
    (void)state;
    size_t aid_len;
    uint8_t *aid = tu_hex(ISDR_AID, &aid_len);
    apdu_cmd c = {.cla = 0x00, .ins = APDU_INS_SELECT, .p1 = 0x04, .p2 = 0x00};
    assert_encodes_to(&c, false, "00a40400");                           /* case 1 */
    c.ne = 256;
    assert_encodes_to(&c, false, "00a4040000");                         /* case 2S, Le=00 */
    c.ne = 0;
    c.data = aid;
    c.nc = aid_len;
    assert_encodes_to(&c, false, "00a4040010a0000005591010ffffffff8900000100");   /* case 3S */
    c.ne = 256;
    assert_encodes_to(&c, false, "00a4040010a0000005591010ffffffff890000010000"); /* case 4S */
    apdu_cmd open = {.cla = 0x00, .ins = APDU_INS_MANAGE_CHANNEL, .p1 = 0x00, .p2 = 0x00, .ne = 1};
    assert_encodes_to(&open, false, "0070000001");
    free(aid);
}

static void test_extended_cases(void **state)
{
    (void)state;
    uint8_t data[300];
    memset(data, 0xAB, sizeof data);
    apdu_cmd c = {.cla = 0x80, .ins = APDU_INS_STORE_DATA, .p1 = 0x91, .p2 = 0x00, .data = data, .nc = 300};
    uint8_t out[400];
    size_t n;
    assert_int_equal(apdu_encode(&c, false, out, sizeof out, &n), IFPP_E_APDU_TOO_LONG);
    assert_int_equal(apdu_encode(&c, true, out, sizeof out, &n), IFPP_OK);
    assert_int_equal(n, 4 + 3 + 300);
    assert_memory_equal(out, "\x80\xe2\x91\x00\x00\x01\x2c\xab", 8);
    c.ne = 65536;
    assert_int_equal(apdu_encode(&c, true, out, sizeof out, &n), IFPP_OK);
    assert_int_equal(n, 4 + 3 + 300 + 2);
    assert_memory_equal(out + n - 2, "\x00\x00", 2);
    apdu_cmd back;
    assert_int_equal(apdu_parse(out, n, &back), IFPP_OK);
    assert_int_equal(back.ne, 65536);
    assert_int_equal(back.nc, 300);
    /* case 2E */
    apdu_cmd le_only = {.cla = 0x00, .ins = 0xC0, .ne = 1000};
    assert_encodes_to(&le_only, true, "00c000000003e8");
    /* no room */
    assert_int_equal(apdu_encode(&c, true, out, 100, &n), IFPP_E_RANGE);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    const char *bad[] = {
        "",                 /* nothing */
        "00a404",           /* short header */
        "00a4040002aa",     /* Lc 2, one data byte */
        "00a4040001aabbcc", /* Lc 1, two bytes after data */
        "00a4040000aa",     /* extended marker, then one byte */
        "00a404000000",     /* extended Lc 0 with nothing after: 6 bytes */
        "00a40400000000aa", /* extended Lc = 0 */
        "00a4040000000201", /* extended Lc 2, one byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n;
        uint8_t *b = tu_hex(bad[i], &n);
        apdu_cmd c;
        if (apdu_parse(b, n, &c) != IFPP_E_APDU_MALFORMED)
            fail_msg("accepted malformed APDU %s", bad[i]);
        free(b);
    }
    uint16_t sw;
    size_t dl;
    assert_int_equal(apdu_split_response((const uint8_t *)"\x90", 1, &dl, &sw), IFPP_E_APDU_MALFORMED);
    assert_int_equal(apdu_split_response((const uint8_t *)"\xbf\x3e\x00\x61\x12", 5, &dl, &sw), IFPP_OK);
    assert_int_equal(dl, 3);
    assert_int_equal(sw, 0x6112);
    assert_string_equal(apdu_sw_str(sw), "response bytes available (61xx)");
    assert_string_equal(apdu_sw_str(0x6982), "security status not satisfied");
}

static void test_logical_channels(void **state)
{
    (void)state;
    uint8_t cla;
    const struct { uint8_t base; unsigned ch; uint8_t want; } v[] = {
        {0x80, 0, 0x80}, {0x80, 1, 0x81}, {0x80, 3, 0x83}, {0x80, 4, 0xC0}, {0x80, 19, 0xCF},
        {0x00, 2, 0x02}, {0x00, 5, 0x41}, {0x10, 1, 0x11}, {0x10, 6, 0x52},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(apdu_cla_for_channel(v[i].base, v[i].ch, &cla), IFPP_OK);
        assert_int_equal(cla, v[i].want);
        assert_int_equal(apdu_channel_of_cla(cla), v[i].ch);
    }
    assert_int_equal(apdu_cla_for_channel(0x80, 20, &cla), IFPP_E_APDU_CHANNEL);
}

static void test_store_data_blocks(void **state)
{
    (void)state;
    uint8_t msg[600], joined[600];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)i;
    size_t count = apdu_store_data_count(sizeof msg, 255);
    assert_int_equal(count, 3);
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        apdu_cmd c;
        assert_int_equal(apdu_store_data_block(msg, sizeof msg, 255, i, 5, &c), IFPP_OK);
        assert_int_equal(c.cla, 0xC1); /* channel 5 */
        assert_int_equal(c.ins, 0xE2);
        assert_int_equal(c.p1, i + 1 == count ? 0x91 : 0x11);
        assert_int_equal(c.p2, i);
        assert_int_equal(c.nc, i + 1 == count ? 90 : 255);
        memcpy(joined + off, c.data, c.nc);
        off += c.nc;
        uint8_t raw[300];
        size_t n;
        assert_int_equal(apdu_encode(&c, false, raw, sizeof raw, &n), IFPP_OK);
        assert_int_equal(n, 5 + c.nc + 1);
    }
    assert_int_equal(off, sizeof msg);
    assert_memory_equal(joined, msg, sizeof msg);

    /* exact multiple, single block, bounds */
    assert_int_equal(apdu_store_data_count(510, 255), 2);
    assert_int_equal(apdu_store_data_count(1, 255), 1);
    apdu_cmd c;
    assert_int_equal(apdu_store_data_block(msg, 1, 255, 0, 0, &c), IFPP_OK);
    assert_int_equal(c.p1, 0x91);
    assert_int_equal(apdu_store_data_block(msg, 600, 255, 3, 0, &c), IFPP_E_RANGE);
    assert_int_equal(apdu_store_data_block(msg, 600, 2, 0, 0, &c), IFPP_E_APDU_TOO_LONG); /* 300 blocks */
    assert_int_equal(apdu_store_data_block(msg, 600, 255, 0, 20, &c), IFPP_E_APDU_CHANNEL);
}

/* The ATR's card capabilities (ISO 7816-4 §8.1.1.2.7) decide whether extended length may be used. */
static void test_atr_extended_length(void **state)
{
    (void)state;
    static const struct {
        const char *atr;
        ifpp_err e;
        bool ext;
    } cases[] = {
        /* TA1 TD1(T=0) TD2(T=15) TA3, 15 historical bytes: 80, 31 E0, 73 FE 21 1B (b7 of 1B clear), 83 ... */
        {"3B9F96801FC78031E073FE211B633A204E8300900082", IFPP_OK, false},
        /* the same card saying it takes extended Lc/Le (third software function byte 5B: b7 set) */
        {"3B9F96801FC78031E073FE215B633A204E8300900082", IFPP_OK, true},
        {"3B80800101", IFPP_OK, false},   /* the software eUICC, T=1: no historical bytes */
        {"3B021450", IFPP_OK, false},     /* T=0 only, historical bytes 14 50 not compact-TLV */
        {"3B8180", IFPP_E_APDU_MALFORMED, false}, /* TD1 promised, then a historical byte missing */
        {"3B9F9680", IFPP_E_APDU_MALFORMED, false}, /* TD1 says TD2 follows: it does not */
        {"3B038073", IFPP_E_APDU_MALFORMED, false}, /* three historical bytes promised, two there */
        {"3B0480750102", IFPP_E_APDU_MALFORMED, false}, /* a compact-TLV length runs past the bytes */
        {"2B00", IFPP_E_APDU_MALFORMED, false},       /* TS neither 3B nor 3F */
        {"3B", IFPP_E_APDU_MALFORMED, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        uint8_t *atr = tu_hex(cases[i].atr, &n);
        bool ext = !cases[i].ext;
        ifpp_err e = apdu_atr_extended_length(atr, n, &ext);
        if (e != cases[i].e || (e == IFPP_OK && ext != cases[i].ext))
            fail_msg("ATR %s: %s, extended %d", cases[i].atr, err_name(e), ext);
        free(atr);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_cases),
        cmocka_unit_test(test_extended_cases),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_logical_channels),
        cmocka_unit_test(test_store_data_blocks),
        cmocka_unit_test(test_atr_extended_length),
    };
    return cmocka_run_group_tests_name("apdu", tests, NULL, NULL);
}
