/* pbcheck_test.c -- tests for server/codec/pbcheck.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec/pbcheck.h"
#include "mhtas/v1/ws.pb-c.h"

static char err[256];

static int check(const uint8_t *d, size_t n, int depth)
{
    return pbcheck_wire(&mhtas__v1__client_frame__descriptor, d, n, depth, err, sizeof err);
}

static void test_valid_frames(void **state)
{
    (void)state;
    Mhtas__V1__Person p = MHTAS__V1__PERSON__INIT;
    p.family_name = "Śmith 😀";
    Mhtas__V1__IncidentDetails det = MHTAS__V1__INCIDENT_DETAILS__INIT;
    det.person = &p;
    det.priority = 2;
    Mhtas__V1__RaiseIncidentRequest r = MHTAS__V1__RAISE_INCIDENT_REQUEST__INIT;
    r.details = &det;
    Mhtas__V1__ClientFrame cf = MHTAS__V1__CLIENT_FRAME__INIT;
    cf.request_id = "r1";
    cf.body_case = MHTAS__V1__CLIENT_FRAME__BODY_RAISE_INCIDENT;
    cf.raise_incident = &r;
    uint8_t buf[256];
    size_t n = mhtas__v1__client_frame__pack(&cf, buf);
    assert_int_equal(check(buf, n, 8), 0);
    assert_int_equal(check(buf, 0, 8), 0);
    /* depth: frame(1) > raise_incident(2) > details(3) > person(4) */
    assert_int_equal(check(buf, n, 3), -1);
    assert_string_equal(err, "raise_incident.details.person: nesting deeper than 3 levels");
    const uint8_t *rid;
    size_t rl;
    assert_int_equal(pbcheck_find_bytes(buf, n, 1, &rid, &rl), 0);
    assert_int_equal(rl, 2);
    assert_memory_equal(rid, "r1", 2);
    assert_int_equal(pbcheck_find_bytes(buf, n, 9, &rid, &rl), -1);
}

static void test_bad_strings(void **state)
{
    (void)state;
    const uint8_t nul[] = { 0x0a, 3, 'a', 0, 'b' };
    assert_int_equal(check(nul, sizeof nul, 8), -1);
    assert_string_equal(err, "request_id: string contains a NUL character");
    const uint8_t bad[] = { 0x0a, 2, 'a', 0xff };
    assert_int_equal(check(bad, sizeof bad, 8), -1);
    assert_string_equal(err, "request_id: string is not valid UTF-8");
    /* auth { token: "\xc0\xaf" } (overlong) */
    const uint8_t nested[] = { 0x12, 4, 0x0a, 2, 0xc0, 0xaf };
    assert_int_equal(check(nested, sizeof nested, 8), -1);
    assert_string_equal(err, "auth.token: string is not valid UTF-8");
}

static void test_malformed(void **state)
{
    (void)state;
    const uint8_t *cases[] = {
        (const uint8_t *)"\x0a\x05" "ab",          /* length past the end */
        (const uint8_t *)"\x80",                   /* truncated tag */
        (const uint8_t *)"\x0b",                   /* group */
        (const uint8_t *)"\x00\x01",               /* field 0 */
        (const uint8_t *)"\x09\x01\x02",           /* short fixed64 */
    };
    size_t lens[] = { 4, 1, 1, 2, 3 };
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(check(cases[i], lens[i], 8), -1);
        assert_string_equal(err, "malformed protobuf");
    }
    /* unknown fields are skipped, not checked */
    const uint8_t unk[] = { 0xfa, 0x01, 2, 0xff, 0x00, 0x08, 0x01 };
    assert_int_equal(check(unk, sizeof unk, 8), 0);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(pbcheck_utf8((const uint8_t *)"abc \xc3\xa9 \xf0\x9f\x98\x80", 11));
    assert_false(pbcheck_utf8((const uint8_t *)"\xed\xa0\x80", 3));
    assert_false(pbcheck_utf8((const uint8_t *)"\xf4\x90\x80\x80", 4));
    assert_false(pbcheck_utf8((const uint8_t *)"\xe2\x82", 2));
    assert_true(pbcheck_utf8((const uint8_t *)"", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_frames),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
