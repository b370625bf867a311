/*
 * test_tlv.c -- the BER-TLV/DER codec against SGP.22-shaped vectors and hostile input.
 *
 * The vectors are the shapes the station meets on ES10: GetEID (BF3E / 5A), a
 * LoadBoundProfilePackage header (BF36 / BF23 / 82 and friends), multi-byte tags
 * (9F70, 5F49, 3-byte forms) and every definite length form. The refusals are the
 * ones X.690 and DER demand; each must leave the reader where it was.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tlv.h"

/* GetEID response (SGP.22 ES10c.GetEID): BF3E { 5A <16-byte EID> }. */
static const char *const GET_EID_RESP = "bf3e125a1089049032123451234512345678901235";

static void test_get_eid_response(void **state)
{
    (void)state;
    size_t n;
    uint8_t *buf = tu_hex(GET_EID_RESP, &n);
    tlv outer, eid;
    tlv_reader top, in;

    assert_int_equal(tlv_parse_exact(buf, n, TLV_DER, &outer), IFPP_OK);
    assert_int_equal(outer.tag, 0xBF3E);
    assert_true(tlv_tag_constructed(outer.tag));
    assert_int_equal(outer.len, 0x12);
    tlv_reader_init(&top, buf, n, TLV_DER);
    assert_int_equal(tlv_reader_enter(&top, &outer, &in), IFPP_OK);
    assert_int_equal(tlv_reader_expect(&in, 0x5A, &eid), IFPP_OK);
    assert_int_equal(eid.len, 16);
    assert_memory_equal(eid.value, buf + 5, 16);
    assert_true(tlv_reader_done(&in));
    assert_int_equal(tlv_reader_next(&in, &eid), IFPP_E_TLV_END);
    assert_int_equal(tlv_validate(buf, n, TLV_DER, TLV_MAX_DEPTH), IFPP_OK);
    free(buf);
}

/* Multi-byte tags: 2 bytes (9F70, 5F49, BF36), 3 bytes (9F8148 = context tag 200). */
static void test_multibyte_tags(void **state)
{
    (void)state;
    struct { const char *hex; uint32_t tag; size_t len; } v[] = {
        {"9f700101", 0x9F70, 1},
        {"5f490341424344", 0x5F49, 3}, /* value longer than needed: trailing allowed in tlv_parse */
        {"bf3600", 0xBF36, 0},
        {"9f81480100", 0x9F8148, 1},
        {"bf8148020000", 0xBF8148, 2},
        {"9f1f00", 0x9F1F, 0}, /* 31 is the smallest number in high-tag form */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n;
        uint8_t *buf = tu_hex(v[i].hex, &n);
        tlv t;
        assert_int_equal(tlv_parse(buf, n, TLV_DER, &t), IFPP_OK);
        assert_int_equal(t.tag, v[i].tag);
        assert_int_equal(t.len, v[i].len);
        assert_int_equal(tlv_tag_size(t.tag), t.raw_len - t.len - 1);
        free(buf);
    }
}

static void expect_header_error(const char *hex, unsigned flags, ifpp_err want)
{
    size_t n;
    uint8_t *buf = tu_hex(hex, &n);
    tlv t;
    memset(&t, 0xA5, sizeof t);
    ifpp_err got = tlv_parse(buf, n, flags, &t);
    if (got != want)
        fail_msg("%s: want %s, got %s", hex, err_name(want), err_name(got));
    free(buf);
}

static void test_bad_tags(void **state)
{
    (void)state;
    expect_header_error("1f800100", TLV_BER, IFPP_E_TLV_BAD_TAG);      /* leading 80 octet */
    expect_header_error("9f1e00", TLV_BER, IFPP_E_TLV_BAD_TAG);        /* number 30 in high form */
    expect_header_error("9f00", TLV_BER, IFPP_E_TLV_BAD_TAG);          /* number 0 in high form */
    expect_header_error("1f8181810100", TLV_BER, IFPP_E_TLV_TAG_TOO_LONG); /* 5-byte tag */
    expect_header_error("bf81", TLV_BER, IFPP_E_TLV_TRUNCATED);        /* tag never ends */
    expect_header_error("bf", TLV_BER, IFPP_E_TLV_TRUNCATED);
    expect_header_error("", TLV_BER, IFPP_E_TLV_TRUNCATED);
}

static void test_length_forms(void **state)
{
    (void)state;
    /* Every definite form, with the value really present. */
    const size_t lens[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 0x1000000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len = lens[i];
        size_t total = 1 + tlv_length_size(len) + len;
        uint8_t *buf = calloc(1, total);
        assert_non_null(buf);
        buf[0] = 0x04;
        size_t ln = tlv_encode_length(len, buf + 1);
        assert_int_equal(ln, tlv_length_size(len));
        tlv t;
        assert_int_equal(tlv_parse_exact(buf, total, TLV_DER, &t), IFPP_OK);
        assert_int_equal(t.len, len);
        assert_ptr_equal(t.value, buf + 1 + ln);
        /* One byte short of the value: truncated, in both modes. */
        assert_int_equal(tlv_parse(buf, total - 1, TLV_BER, &t), IFPP_E_TLV_TRUNCATED);
        free(buf);
    }
    /* The 4-octet long form decodes too (value checked against the buffer, not allocated). */
    expect_header_error("0484ffffffff00", TLV_DER, IFPP_E_TLV_TRUNCATED);
}

static void test_der_refusals_ber_acceptance(void **state)
{
    (void)state;
    /* Non-minimal lengths: DER refuses, BER reads them. */
    const char *nonminimal[] = {"048105" "0102030405", "04820005" "0102030405", "0482008000"};
    for (size_t i = 0; i < 2; i++) {
        size_t n;
        uint8_t *buf = tu_hex(nonminimal[i], &n);
        tlv t;
        assert_int_equal(tlv_parse(buf, n, TLV_DER, &t), IFPP_E_TLV_NOT_DER);
        assert_int_equal(tlv_parse_exact(buf, n, TLV_BER, &t), IFPP_OK);
        assert_int_equal(t.len, 5);
        free(buf);
    }
    expect_header_error(nonminimal[2], TLV_DER, IFPP_E_TLV_NOT_DER); /* leading zero octet */
    expect_header_error("3080", TLV_BER, IFPP_E_TLV_INDEFINITE);
    expect_header_error("30800000", TLV_DER, IFPP_E_TLV_INDEFINITE);
    expect_header_error("30850100000000", TLV_BER, IFPP_E_TLV_TOO_BIG);
    expect_header_error("30ff", TLV_BER, IFPP_E_TLV_BAD_LENGTH);
    expect_header_error("3082", TLV_BER, IFPP_E_TLV_TRUNCATED);
    expect_header_error("300501", TLV_BER, IFPP_E_TLV_TRUNCATED);
}

static void test_trailing_and_reader_stays(void **state)
{
    (void)state;
    size_t n;
    uint8_t *buf = tu_hex("800101" "8102ffff" "82", &n); /* two good siblings, then a broken one */
    tlv t;
    tlv_reader r;
    assert_int_equal(tlv_parse_exact(buf, 3, TLV_DER, &t), IFPP_OK);
    assert_int_equal(tlv_parse_exact(buf, 4, TLV_DER, &t), IFPP_E_TLV_TRAILING);

    tlv_reader_init(&r, buf, n, TLV_DER);
    assert_int_equal(tlv_reader_find(&r, 0x81, &t), IFPP_OK);
    assert_int_equal(t.len, 2);
    assert_int_equal(tlv_reader_find(&r, 0x83, &t), IFPP_E_TLV_TRUNCATED); /* scan hit the broken one */
    assert_int_equal(tlv_reader_expect(&r, 0x81, &t), IFPP_E_TLV_UNEXPECTED_TAG);
    assert_int_equal(tlv_reader_expect(&r, 0x80, &t), IFPP_OK);
    assert_int_equal(tlv_reader_next(&r, &t), IFPP_OK);
    tlv_reader before = r;
    assert_int_equal(tlv_reader_next(&r, &t), IFPP_E_TLV_TRUNCATED);
    assert_memory_equal(&before, &r, sizeof r);
    assert_false(tlv_reader_done(&r));
    free(buf);
}

static void test_enter_primitive_refused(void **state)
{
    (void)state;
    size_t n;
    uint8_t *buf = tu_hex("5a0130", &n);
    tlv t;
    tlv_reader r, c;
    tlv_reader_init(&r, buf, n, TLV_DER);
    assert_int_equal(tlv_reader_next(&r, &t), IFPP_OK);
    assert_int_equal(tlv_reader_enter(&r, &t, &c), IFPP_E_TLV_NOT_CONSTRUCTED);
    free(buf);
}

static void test_validate_depth_and_content(void **state)
{
    (void)state;
    /* 40 nested SEQUENCEs: refused at the bound, accepted with depth to spare below it. */
    uint8_t deep[80];
    for (size_t i = 0; i < 40; i++) {
        deep[2 * i] = 0x30;
        deep[2 * i + 1] = (uint8_t)(78 - 2 * i);
    }
    assert_int_equal(tlv_validate(deep, sizeof deep, TLV_DER, TLV_MAX_DEPTH), IFPP_E_TLV_TOO_DEEP);
    assert_int_equal(tlv_validate(deep + 60, 20, TLV_DER, TLV_MAX_DEPTH), IFPP_OK);
    assert_int_equal(tlv_validate(deep + 60, 20, TLV_DER, 10), IFPP_E_TLV_TOO_DEEP);

    /* A constructed object whose content is not TLVs, and a primitive one that is not looked into. */
    size_t n;
    uint8_t *bad = tu_hex("a003820501", &n);
    assert_int_equal(tlv_validate(bad, n, TLV_DER, TLV_MAX_DEPTH), IFPP_E_TLV_TRUNCATED);
    bad[0] = 0x80; /* now primitive: content is opaque */
    assert_int_equal(tlv_validate(bad, n, TLV_DER, TLV_MAX_DEPTH), IFPP_OK);
    free(bad);

    /* Reader depth bound too. */
    tlv_reader r, c;
    tlv t;
    tlv_reader_init(&r, deep, sizeof deep, TLV_DER);
    unsigned levels = 0;
    ifpp_err e = IFPP_OK;
    while (tlv_reader_next(&r, &t) == IFPP_OK && (e = tlv_reader_enter(&r, &t, &c)) == IFPP_OK) {
        r = c;
        levels++;
    }
    assert_int_equal(e, IFPP_E_TLV_TOO_DEEP);
    assert_int_equal(levels, TLV_MAX_DEPTH - 1);
}

static void test_get_uint(void **state)
{
    (void)state;
    struct { const char *hex; ifpp_err e; uint64_t v; } v[] = {
        {"020100", IFPP_OK, 0},
        {"02017f", IFPP_OK, 127},
        {"02020080", IFPP_OK, 128},
        {"020900ffffffffffffffff", IFPP_OK, UINT64_MAX},
        {"0200", IFPP_E_TLV_BAD_INTEGER, 0},
        {"020180", IFPP_E_TLV_BAD_INTEGER, 0},     /* negative */
        {"0202007f", IFPP_E_TLV_BAD_INTEGER, 0},   /* non-minimal */
        {"0209010000000000000000", IFPP_E_TLV_BAD_INTEGER, 0}, /* 2^64: too large */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n;
        uint8_t *buf = tu_hex(v[i].hex, &n);
        tlv t;
        uint64_t x = 12345;
        assert_int_equal(tlv_parse_exact(buf, n, TLV_DER, &t), IFPP_OK);
        assert_int_equal(tlv_get_uint(&t, &x), v[i].e);
        if (v[i].e == IFPP_OK)
            assert_true(x == v[i].v);
        free(buf);
    }
}

/*
 * Builds the opening of an SGP.22 BoundProfilePackage: BF36 { BF23 { 82 01 88, 83 01 10,
 * 84 08 <hostId>, 5F49 41 <otPK> , 5F37 40 <sig> }, A0 { 87 <segment> } } and checks the
 * exact bytes, including the length widening in the constructed objects.
 */
static void test_builder_sgp22_shape(void **state)
{
    (void)state;
    uint8_t host_id[8], otpk[65], sig[64], seg[300];
    memset(host_id, 0x80, sizeof host_id);
    memset(otpk, 0x04, sizeof otpk);
    memset(sig, 0x5E, sizeof sig);
    memset(seg, 0xC7, sizeof seg);

    tlv_builder b;
    tlv_builder_init_dynamic(&b, 1 << 20);
    tlv_begin(&b, 0xBF36);
    tlv_begin(&b, 0xBF23);
    tlv_put(&b, 0x82, "\x88", 1);
    tlv_put_uint(&b, 0x83, 0x10);
    tlv_put(&b, 0x84, host_id, sizeof host_id);
    tlv_put(&b, 0x5F49, otpk, sizeof otpk);
    tlv_put(&b, 0x5F37, sig, sizeof sig);
    tlv_end(&b);
    tlv_begin(&b, 0xA0);
    tlv_put(&b, 0x87, seg, sizeof seg);
    tlv_end(&b);
    tlv_end(&b);
    const uint8_t *out;
    size_t n;
    assert_int_equal(tlv_builder_finish(&b, &out, &n), IFPP_OK);

    /*
     * BF23 value: 3 + 3 + 10 + 68 + 67 = 151 (0x97)  -> BF23 81 97,       155 bytes in all
     * A0 value:   87 82 012C + 300 = 304 (0x130)      -> A0 82 0130,       308 bytes in all
     * BF36 value: 155 + 308 = 463 (0x1CF)             -> BF36 82 01CF,     468 bytes in all
     */
    assert_int_equal(n, 468);
    assert_memory_equal(out, "\xbf\x36\x82\x01\xcf", 5);
    assert_memory_equal(out + 5, "\xbf\x23\x81\x97\x82\x01\x88\x83\x01\x10\x84\x08", 12);
    assert_memory_equal(out + 5 + 4 + 3 + 3 + 10, "\x5f\x49\x41\x04", 4);
    assert_memory_equal(out + 5 + 155, "\xa0\x82\x01\x30\x87\x82\x01\x2c\xc7", 9);
    assert_int_equal(tlv_validate(out, n, TLV_DER, TLV_MAX_DEPTH), IFPP_OK);

    /* And back. */
    tlv t, inner;
    tlv_reader r, c;
    tlv_reader_init(&r, out, n, TLV_DER);
    assert_int_equal(tlv_reader_expect(&r, 0xBF36, &t), IFPP_OK);
    assert_int_equal(tlv_reader_enter(&r, &t, &c), IFPP_OK);
    assert_int_equal(tlv_reader_find(&c, 0xA0, &inner), IFPP_OK);
    assert_int_equal(inner.len, 304);
    tlv_builder_free(&b);
}

/* Length fields widen correctly at every boundary, whichever way the object was built. */
static void test_builder_length_boundaries(void **state)
{
    (void)state;
    const size_t lens[] = {0, 1, 125, 126, 127, 128, 253, 254, 255, 256, 65531, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t *val = malloc(lens[i] + 1);
        assert_non_null(val);
        memset(val, (int)i, lens[i] + 1);
        tlv_builder a, b;
        tlv_builder_init_dynamic(&a, 1 << 20);
        tlv_builder_init_dynamic(&b, 1 << 20);
        tlv_begin(&a, 0x30);
        tlv_put_raw(&a, val, lens[i]);
        tlv_end(&a);
        tlv_put(&b, 0x30, val, lens[i]);
        const uint8_t *pa, *pb;
        size_t na, nb;
        assert_int_equal(tlv_builder_finish(&a, &pa, &na), IFPP_OK);
        assert_int_equal(tlv_builder_finish(&b, &pb, &nb), IFPP_OK);
        assert_int_equal(na, nb);
        assert_memory_equal(pa, pb, na);
        tlv t;
        assert_int_equal(tlv_parse_exact(pa, na, TLV_DER, &t), IFPP_OK);
        assert_int_equal(t.len, lens[i]);
        tlv_builder_free(&a);
        tlv_builder_free(&b);
        free(val);
    }
}

/* A fixed builder never writes past its capacity, and its error sticks. */
static void test_builder_fixed_overflow(void **state)
{
    (void)state;
    uint8_t area[256];
    memset(area, 0xEE, sizeof area);
    uint8_t *buf = area + 16;
    tlv_builder b;
    tlv_builder_init_fixed(&b, buf, 20);
    uint8_t v[16] = {0};
    assert_int_equal(tlv_put(&b, 0x04, v, 16), IFPP_OK); /* 18 bytes */
    assert_int_equal(tlv_put(&b, 0x04, v, 1), IFPP_E_TLV_OVERFLOW); /* would be 21 */
    assert_int_equal(tlv_put(&b, 0x04, NULL, 0), IFPP_E_TLV_OVERFLOW); /* sticky */
    const uint8_t *out;
    size_t n;
    assert_int_equal(tlv_builder_finish(&b, &out, &n), IFPP_E_TLV_OVERFLOW);
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(area[i], 0xEE);
    for (size_t i = 16 + 20; i < sizeof area; i++)
        assert_int_equal(area[i], 0xEE);

    /* Widening a constructed length needs room too. */
    tlv_builder_init_fixed(&b, buf, 130);
    uint8_t big[127] = {0};
    tlv_begin(&b, 0x30);
    tlv_put_raw(&b, big, 127);
    assert_int_equal(tlv_end(&b), IFPP_OK); /* 30 7F ... = 129 bytes */
    tlv_builder_init_fixed(&b, buf, 130);
    tlv_begin(&b, 0x30);
    tlv_put_raw(&b, big, 127);
    tlv_put_raw(&b, big, 1);
    assert_int_equal(tlv_end(&b), IFPP_E_TLV_OVERFLOW); /* would need 30 81 80 + 128 = 131 */
    for (size_t i = 16 + 130; i < sizeof area; i++)
        assert_int_equal(area[i], 0xEE);

    /* Dynamic builders have an upper bound as well. */
    tlv_builder_init_dynamic(&b, 10);
    assert_int_equal(tlv_put(&b, 0x04, v, 9), IFPP_E_TLV_OVERFLOW);
    tlv_builder_free(&b);
}

static void test_builder_misuse(void **state)
{
    (void)state;
    tlv_builder b;
    const uint8_t *out;
    size_t n;
    uint8_t buf[64];

    tlv_builder_init_fixed(&b, buf, sizeof buf);
    assert_int_equal(tlv_end(&b), IFPP_E_TLV_UNBALANCED);

    tlv_builder_init_fixed(&b, buf, sizeof buf);
    tlv_begin(&b, 0xA0);
    assert_int_equal(tlv_builder_finish(&b, &out, &n), IFPP_E_TLV_UNBALANCED);

    tlv_builder_init_fixed(&b, buf, sizeof buf);
    assert_int_equal(tlv_begin(&b, 0x80), IFPP_E_TLV_NOT_CONSTRUCTED);

    const uint32_t bad_tags[] = {0x1F80, 0x9F1E, 0x9F81, 0x5A1F, 0x9F8101FF};
    for (size_t i = 0; i < sizeof bad_tags / sizeof bad_tags[0]; i++) {
        tlv_builder_init_fixed(&b, buf, sizeof buf);
        assert_int_equal(tlv_put(&b, bad_tags[i], "", 0), IFPP_E_TLV_BAD_TAG);
    }

    tlv_builder_init_fixed(&b, buf, sizeof buf);
    for (unsigned i = 0; i < TLV_BUILDER_MAX_DEPTH; i++)
        assert_int_equal(tlv_begin(&b, 0x30), IFPP_OK);
    assert_int_equal(tlv_begin(&b, 0x30), IFPP_E_TLV_TOO_DEEP);
}

/* Random trees built and parsed back: what the builder writes, the reader reads the same. */
static uint32_t rng_state = 0x12345678;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void build_random(tlv_builder *b, unsigned depth)
{
    static const uint32_t prim[] = {0x04, 0x80, 0x5A, 0x9F70, 0x5F49, 0x9F8148};
    static const uint32_t cons[] = {0x30, 0xA0, 0xBF36, 0xBF23, 0xBF8148};
    unsigned kids = rng() % 4;
    for (unsigned i = 0; i < kids; i++) {
        if (depth < 6 && rng() % 2) {
            tlv_begin(b, cons[rng() % 5]);
            build_random(b, depth + 1);
            tlv_end(b);
        } else {
            uint8_t v[300];
            size_t len = rng() % sizeof v;
            for (size_t j = 0; j < len; j++)
                v[j] = (uint8_t)rng();
            tlv_put(b, prim[rng() % 6], v, len);
        }
    }
}

static void test_builder_random_roundtrip(void **state)
{
    (void)state;
    for (int iter = 0; iter < 300; iter++) {
        tlv_builder b;
        tlv_builder_init_dynamic(&b, 1 << 24);
        tlv_begin(&b, 0xBF36);
        build_random(&b, 1);
        tlv_end(&b);
        const uint8_t *out;
        size_t n;
        assert_int_equal(tlv_builder_finish(&b, &out, &n), IFPP_OK);
        assert_int_equal(tlv_validate(out, n, TLV_DER, TLV_MAX_DEPTH), IFPP_OK);
        tlv t;
        assert_int_equal(tlv_parse_exact(out, n, TLV_DER, &t), IFPP_OK);
        /* Every strict prefix must be refused, never over-read (ASan watches). */
        uint8_t *copy = malloc(n);
        assert_non_null(copy);
        for (size_t cut = 0; cut < n; cut += 1 + n / 50) {
            memcpy(copy, out, cut);
            assert_int_not_equal(tlv_parse_exact(copy, cut, TLV_DER, &t), IFPP_OK);
        }
        free(copy);
        tlv_builder_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_eid_response),
        cmocka_unit_test(test_multibyte_tags),
        cmocka_unit_test(test_bad_tags),
        cmocka_unit_test(test_length_forms),
        cmocka_unit_test(test_der_refusals_ber_acceptance),
        cmocka_unit_test(test_trailing_and_reader_stays),
        cmocka_unit_test(test_enter_primitive_refused),
        cmocka_unit_test(test_validate_depth_and_content),
        cmocka_unit_test(test_get_uint),
        cmocka_unit_test(test_builder_sgp22_shape),
        cmocka_unit_test(test_builder_length_boundaries),
        cmocka_unit_test(test_builder_fixed_overflow),
        cmocka_unit_test(test_builder_misuse),
        cmocka_unit_test(test_builder_random_roundtrip),
    };
    return cmocka_run_group_tests_name("tlv", tests, NULL, NULL);
}
