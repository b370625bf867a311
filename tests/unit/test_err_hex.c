/*
 * test_err_hex.c -- the small rules of common/: every error has a distinct name and a sentence;
 * hex is strict; a label (common/label.h) is a plain name and nothing else.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "err.h"
#include "label.h"
#include "hex.h"
#include "optval.h"

static void test_every_error_has_text(void **state)
{
    (void)state;
    for (int i = 0; i < IFPP_ERR__COUNT; i++) {
        assert_non_null(err_str((ifpp_err)i));
        assert_true(strlen(err_str((ifpp_err)i)) > 3);
        assert_true(strncmp(err_name((ifpp_err)i), "IFPP_", 5) == 0);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(err_name((ifpp_err)i), err_name((ifpp_err)j));
            assert_string_not_equal(err_str((ifpp_err)i), err_str((ifpp_err)j));
        }
    }
    assert_string_equal(err_str((ifpp_err)IFPP_ERR__COUNT), "unknown error");
    assert_string_equal(err_str((ifpp_err)-1), "unknown error");
    assert_string_equal(err_name(IFPP_E_TLV_NOT_DER), "IFPP_E_TLV_NOT_DER");
}

static void test_hex_roundtrip_and_refusals(void **state)
{
    (void)state;
    uint8_t buf[16];
    size_t n = 99;
    char text[33];
    assert_int_equal(hex_decode("89049032ABCDef00", buf, sizeof buf, &n), IFPP_OK);
    assert_int_equal(n, 8);
    assert_memory_equal(buf, "\x89\x04\x90\x32\xab\xcd\xef\x00", 8);
    assert_int_equal(hex_encode(buf, n, text, sizeof text), IFPP_OK);
    assert_string_equal(text, "89049032abcdef00");
    assert_int_equal(hex_decode("", buf, sizeof buf, &n), IFPP_OK);
    assert_int_equal(n, 0);

    assert_int_equal(hex_decode("abc", buf, sizeof buf, &n), IFPP_E_ARG);  /* odd */
    assert_int_equal(hex_decode("zz", buf, sizeof buf, &n), IFPP_E_ARG);   /* not hex */
    assert_int_equal(hex_decode("0 ", buf, sizeof buf, &n), IFPP_E_ARG);
    assert_int_equal(hex_decode("000102", buf, 2, &n), IFPP_E_RANGE);      /* too long */
    assert_int_equal(hex_encode(buf, 8, text, 16), IFPP_E_RANGE);          /* no room for NUL */
    assert_int_equal(hex_encode(buf, 8, text, 0), IFPP_E_ARG);
}

static void test_labels(void **state)
{
    (void)state;
    static const char *const good[] = {"operatorA", "operatorA-eu", "station-01", "a", "OP_2.region",
                                       "0123456789012345678901234567890123456789012345678901234567890123"};
    static const char *const bad[] = {"", ".hidden", "-rf", "../x", "a/b", "a b", "op\x1b[2J", "tab\tx", "caf\xc3\xa9",
                                      "01234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!label_valid(good[i], strlen(good[i])))
            fail_msg("'%s' refused", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (label_valid(bad[i], strlen(bad[i])))
            fail_msg("'%s' accepted", bad[i]);
    assert_false(label_valid("ab\0cd", 5)); /* a NUL inside is not a name */
    assert_false(label_valid(NULL, 3));
}

/* Slot option values: one strict reader for the station and every backend. */
static void test_option_values(void **state)
{
    (void)state;
    long n = -7;
    assert_true(optval_number("5000", 4, 0, 3600000, &n));
    assert_int_equal(n, 5000);
    assert_true(optval_number("0", 1, 0, 10, &n));
    assert_int_equal(n, 0);
    const char *bad[] = {"", "-1", "+5", "5000ms", " 5", "1e3", "1234567890", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = -7;
        assert_false(optval_number(bad[i], strlen(bad[i]), 0, 2000000000L, &n));
        assert_int_equal(n, -7); /* untouched on refusal */
    }
    assert_false(optval_number("11", 2, 0, 10, &n));  /* above max */
    assert_false(optval_number("1199", 4, 1200, 4000000, &n)); /* below min */
    assert_true(optval_number("5000,ext=on", 4, 0, 10000, &n)); /* a slice of the option string */
    assert_true(optval_word("on,x", 2, "on"));
    assert_false(optval_word("onx", 3, "on"));
    assert_false(optval_word("o", 1, "on"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_error_has_text),
        cmocka_unit_test(test_hex_roundtrip_and_refusals),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_option_values),
    };
    return cmocka_run_group_tests_name("err_hex", tests, NULL, NULL);
}
