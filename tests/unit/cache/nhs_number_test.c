/* nhs_number_test.c -- server/cache/nhs_number.c: the modulus-11 check
 * digit, the reasons given for bad numbers, 3-3-4 formatting, test range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache/nhs_number.h"

static void valid_numbers(void **state)
{
    (void)state;
    char d[11];
    assert_null(nhs_number_validate("9434765919", d));
    assert_string_equal(d, "9434765919");
    assert_null(nhs_number_validate("943 476 5919", d));
    assert_string_equal(d, "9434765919");
    assert_null(nhs_number_validate("943-476-5919", d));
    assert_null(nhs_number_validate("9990000077", d));   /* test range */
    assert_true(nhs_number_is_test_range("9990000077"));
    assert_false(nhs_number_is_test_range("9434765919"));
}

static void wrong_check_digit(void **state)
{
    (void)state;
    char d[11] = "untouched";
    for (char c = '0'; c <= '9'; c++) {
        char n[11] = "943476591";
        n[9] = c;
        n[10] = '\0';
        const char *why = nhs_number_validate(n, d);
        if (c == '9')
            assert_null(why);
        else
            assert_string_equal(why, "check digit is wrong");
    }
}

static void check_digit_ten_is_invalid(void **state)
{
    (void)state;
    char d[11];
    /* 9,9,9,0,0,0,0,0,0 weighted 10..2 = 243; 243 mod 11 = 1; 11 - 1 = 10 */
    assert_int_equal(nhs_number_check_digit("999000000"), -1);
    for (char c = '0'; c <= '9'; c++) {
        char n[11] = "999000000";
        n[9] = c;
        n[10] = '\0';
        assert_string_equal(nhs_number_validate(n, d), "NHS number has no valid check digit");
    }
    /* remainder 0 gives 11, which means 0 */
    int found = 0;
    char n[24]; /* room for any int, so the compiler can see nothing is cut */
    for (int v = 0; v < 1000 && !found; v++) {
        snprintf(n, sizeof n, "999000%03d", v);
        int sum = 0;
        for (int i = 0; i < 9; i++)
            sum += (n[i] - '0') * (10 - i);
        if (sum % 11 == 0) {
            assert_int_equal(nhs_number_check_digit(n), 0);
            found = 1;
        }
    }
    assert_true(found);
}

static void wrong_length_and_junk(void **state)
{
    (void)state;
    char d[11];
    assert_string_equal(nhs_number_validate("943476591", d), "NHS number must be 10 digits");
    assert_string_equal(nhs_number_validate("94347659190", d), "NHS number must be 10 digits");
    assert_string_equal(nhs_number_validate("943476591X", d), "NHS number must be 10 digits");
    assert_string_equal(nhs_number_validate("", d), "NHS number is missing");
    assert_string_equal(nhs_number_validate("   ", d), "NHS number is missing");
    assert_string_equal(nhs_number_validate(NULL, d), "NHS number is missing");
}

static void format_334(void **state)
{
    (void)state;
    char out[13];
    assert_int_equal(nhs_number_format("9434765919", out), 0);
    assert_string_equal(out, "943 476 5919");
    assert_int_equal(nhs_number_format("943476591", out), -1);
    assert_string_equal(out, "");
    assert_int_equal(nhs_number_format("94347659a9", out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_numbers),
        cmocka_unit_test(wrong_check_digit),
        cmocka_unit_test(check_digit_ten_is_invalid),
        cmocka_unit_test(wrong_length_and_junk),
        cmocka_unit_test(format_334),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
