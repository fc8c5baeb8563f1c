/* wire_test.c -- the pure half of the client library (client/lib/mhc_wire.c):
 * gRPC framing split at every byte boundary, grpc-message percent-decoding,
 * grpc-status and grpc-timeout, back-off bounds, keys and the retry table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/mhc_wire.h"
#include "lib/mhtas_client.h"
#include "mhtas/v1/hub.pb-c.h"

static void test_prefix_encode(void **state)
{
    (void)state;
    uint8_t p[5];
    mhc__prefix_encode(p, 0x01020304u);
    uint8_t want[5] = { 0, 1, 2, 3, 4 };
    assert_memory_equal(p, want, 5);
    mhc__prefix_encode(p, 0);
    uint8_t zero[5] = { 0 };
    assert_memory_equal(p, zero, 5);
}

/* Three messages (one empty) in one byte string, fed in two pieces split at
 * every position; each split must yield the same three messages. */
static void test_reader_every_split(void **state)
{
    (void)state;
    uint8_t wire[64];
    size_t n = 0;
    const char *bodies[] = { "hello", "", "gRPC over h2c" };
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(bodies[i]);
        mhc__prefix_encode(wire + n, (uint32_t)len);
        memcpy(wire + n + 5, bodies[i], len);
        n += 5 + len;
    }
    for (size_t cut = 0; cut <= n; cut++) {
        mhc_reader_t r;
        mhc__reader_init(&r, 1024);
        int got = 0;
        const uint8_t *m;
        size_t mlen;
        size_t pieces[2][2] = { { 0, cut }, { cut, n } };
        for (int p = 0; p < 2; p++) {
            assert_int_equal(mhc__reader_feed(&r, wire + pieces[p][0], pieces[p][1] - pieces[p][0]), 0);
            int rc;
            while ((rc = mhc__reader_next(&r, &m, &mlen)) == 1) {
                assert_true(got < 3);
                assert_int_equal(mlen, strlen(bodies[got]));
                assert_memory_equal(m, bodies[got], mlen);
                got++;
            }
            assert_int_equal(rc, 0);
        }
        assert_int_equal(got, 3);
        assert_true(mhc__reader_idle(&r));
        mhc__reader_dispose(&r);
    }
}

static void test_reader_byte_at_a_time(void **state)
{
    (void)state;
    uint8_t wire[5 + 300];
    mhc__prefix_encode(wire, 300);
    for (int i = 0; i < 300; i++)
        wire[5 + i] = (uint8_t)i;
    mhc_reader_t r;
    mhc__reader_init(&r, 300);
    const uint8_t *m;
    size_t mlen;
    for (size_t i = 0; i < sizeof wire; i++) {
        assert_int_equal(mhc__reader_next(&r, &m, &mlen), 0);
        assert_false(i > 0 && mhc__reader_idle(&r));
        assert_int_equal(mhc__reader_feed(&r, wire + i, 1), 0);
    }
    assert_int_equal(mhc__reader_next(&r, &m, &mlen), 1);
    assert_int_equal(mlen, 300);
    assert_memory_equal(m, wire + 5, 300);
    assert_int_equal(mhc__reader_next(&r, &m, &mlen), 0);
    assert_true(mhc__reader_idle(&r));
    mhc__reader_dispose(&r);
}

/* An oversized message is refused as soon as its prefix is in. */
static void test_reader_refusals(void **state)
{
    (void)state;
    mhc_reader_t r;
    const uint8_t *m;
    size_t mlen;
    uint8_t big[5];
    mhc__prefix_encode(big, 101);
    mhc__reader_init(&r, 100);
    assert_int_equal(mhc__reader_feed(&r, big, 5), 0);
    assert_int_equal(mhc__reader_next(&r, &m, &mlen), -MHTAS_GRPC_RESOURCE_EXHAUSTED);
    mhc__reader_dispose(&r);

    uint8_t compressed[6] = { 1, 0, 0, 0, 1, 'x' };
    mhc__reader_init(&r, 100);
    assert_int_equal(mhc__reader_feed(&r, compressed, 6), 0);
    assert_int_equal(mhc__reader_next(&r, &m, &mlen), -MHTAS_GRPC_UNIMPLEMENTED);
    mhc__reader_dispose(&r);

    /* exactly max_len is fine */
    uint8_t ok[5 + 100] = { 0 };
    mhc__prefix_encode(ok, 100);
    mhc__reader_init(&r, 100);
    assert_int_equal(mhc__reader_feed(&r, ok, sizeof ok), 0);
    assert_int_equal(mhc__reader_next(&r, &m, &mlen), 1);
    assert_int_equal(mlen, 100);
    mhc__reader_dispose(&r);
}

static void check_decode(const char *in, const char *want)
{
    char out[256];
    size_t n = mhc__percent_decode(in, strlen(in), out);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_percent_decode(void **state)
{
    (void)state;
    check_decode("", "");
    check_decode("plain text", "plain text");
    check_decode("a%20b", "a b");
    check_decode("100%25", "100%");
    check_decode("caf%C3%A9", "caf\xc3\xa9");
    check_decode("lower %c3%a9", "lower \xc3\xa9");
    /* malformed escapes stay verbatim */
    check_decode("%", "%");
    check_decode("50%", "50%");
    check_decode("%4", "%4");
    check_decode("%zz ok", "%zz ok");
    check_decode("%4g", "%4g");
    /* a NUL cannot hide the rest of the message */
    check_decode("a%00b", "a?b");
    /* in place */
    char buf[] = "x%41y";
    mhc__percent_decode(buf, strlen(buf), buf);
    assert_string_equal(buf, "xAy");
}

static void test_parse_status(void **state)
{
    (void)state;
    assert_int_equal(mhc__parse_status("0", 1), 0);
    assert_int_equal(mhc__parse_status("16", 2), 16);
    assert_int_equal(mhc__parse_status("4", 1), 4);
    assert_int_equal(mhc__parse_status("17", 2), MHTAS_GRPC_UNKNOWN);
    assert_int_equal(mhc__parse_status("", 0), -1);
    assert_int_equal(mhc__parse_status("1a", 2), -1);
    assert_int_equal(mhc__parse_status("-1", 2), -1);
    assert_int_equal(mhc__parse_status("99999999999", 11), -1);
}

static void check_timeout(uint64_t ms, const char *want)
{
    char out[16];
    size_t n = mhc__format_timeout(ms, out);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_format_timeout(void **state)
{
    (void)state;
    check_timeout(0, "0m");
    check_timeout(200, "200m");
    check_timeout(99999999, "99999999m");
    check_timeout(100000000, "100000S");
    check_timeout(100000001, "100001S"); /* rounds up, never shorter */
    check_timeout(UINT64_MAX, "99999999H");
}

static void test_status_mappings(void **state)
{
    (void)state;
    assert_int_equal(mhc__http_to_grpc(401), MHTAS_GRPC_UNAUTHENTICATED);
    assert_int_equal(mhc__http_to_grpc(403), MHTAS_GRPC_PERMISSION_DENIED);
    assert_int_equal(mhc__http_to_grpc(404), MHTAS_GRPC_UNIMPLEMENTED);
    assert_int_equal(mhc__http_to_grpc(503), MHTAS_GRPC_UNAVAILABLE);
    assert_int_equal(mhc__http_to_grpc(400), MHTAS_GRPC_INTERNAL);
    assert_int_equal(mhc__http_to_grpc(500), MHTAS_GRPC_UNKNOWN);
    assert_int_equal(mhc__rst_to_grpc(0x7), MHTAS_GRPC_UNAVAILABLE);
    assert_int_equal(mhc__rst_to_grpc(0x8), MHTAS_GRPC_CANCELLED);
    assert_int_equal(mhc__rst_to_grpc(0xb), MHTAS_GRPC_RESOURCE_EXHAUSTED);
    assert_int_equal(mhc__rst_to_grpc(0x1), MHTAS_GRPC_INTERNAL);
    assert_string_equal(mhtas_client_status_name(0), "OK");
    assert_string_equal(mhtas_client_status_name(4), "DEADLINE_EXCEEDED");
    assert_string_equal(mhtas_client_status_name(16), "UNAUTHENTICATED");
    assert_string_equal(mhtas_client_status_name(17), "UNKNOWN");
    assert_string_equal(mhtas_client_status_name(-1), "UNKNOWN");
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    uint64_t rng = mhc__rng_seed(42, 7);
    uint64_t seen_small = 0, seen_large = 0;
    for (int i = 0; i < 2000; i++) {
        uint64_t d0 = mhc__backoff_ms(&rng, 100, 5000, 0);
        assert_true(d0 >= 1 && d0 <= 100);
        uint64_t d3 = mhc__backoff_ms(&rng, 100, 5000, 3);
        assert_true(d3 >= 1 && d3 <= 800);
        uint64_t d20 = mhc__backoff_ms(&rng, 100, 5000, 20);
        assert_true(d20 >= 1 && d20 <= 5000);
        uint64_t huge = mhc__backoff_ms(&rng, 100, 5000, 1000); /* no overflow */
        assert_true(huge >= 1 && huge <= 5000);
        if (d20 < 1000)
            seen_small++;
        if (d20 > 4000)
            seen_large++;
    }
    /* full jitter: spread over the whole range */
    assert_true(seen_small > 100 && seen_large > 100);
    /* degenerate options */
    assert_true(mhc__backoff_ms(&rng, 0, 0, 5) <= 1);
    assert_true(mhc__backoff_ms(&rng, 50, 10, 5) <= 50);
}

static void test_rng_and_keys(void **state)
{
    (void)state;
    assert_true(mhc__rng_seed(0, 0) != 0);
    uint64_t a = mhc__rng_seed(1, 2), b = mhc__rng_seed(1, 3);
    assert_true(a != b);
    uint64_t a2 = mhc__rng_seed(1, 2);
    assert_true(mhc__rng_next(&a) == mhc__rng_next(&a2)); /* deterministic given the seed */
    char k1[40], k2[40];
    mhc__make_key(&a, k1);
    mhc__make_key(&a, k2);
    assert_int_equal(strlen(k1), 36);
    assert_int_equal(strncmp(k1, "mhc-", 4), 0);
    for (int i = 4; i < 36; i++)
        assert_non_null(strchr("0123456789abcdef", k1[i]));
    assert_string_not_equal(k1, k2);
}

/* The retry table against hub.proto: every method whose request carries an
 * idempotency field is KEYED with that field, and only those. */
static void test_retry_table_matches_proto(void **state)
{
    (void)state;
    const ProtobufCServiceDescriptor *sd = &mhtas__v1__hub__descriptor;
    int keyed = 0;
    for (unsigned i = 0; i < sd->n_methods; i++) {
        const ProtobufCMethodDescriptor *md = &sd->methods[i];
        const char *field = NULL;
        if (protobuf_c_message_descriptor_get_field_by_name(md->input, "idempotency_key"))
            field = "idempotency_key";
        else if (protobuf_c_message_descriptor_get_field_by_name(md->input, "client_msg_id"))
            field = "client_msg_id";
        if (field) {
            keyed++;
            assert_int_equal(mhc__retry_class(md->name), MHC_RETRY_KEYED);
            assert_non_null(mhc__key_field(md->name));
            assert_string_equal(mhc__key_field(md->name), field);
        } else {
            assert_null(mhc__key_field(md->name));
            /* reads are resent after a reconnect */
            if (strncmp(md->name, "Get", 3) == 0 || strncmp(md->name, "List", 4) == 0 ||
                strcmp(md->name, "WhoAmI") == 0)
                assert_int_equal(mhc__retry_class(md->name), MHC_RETRY_READ);
            assert_int_not_equal(mhc__retry_class(md->name), MHC_RETRY_KEYED);
        }
    }
    assert_int_equal(keyed, 4);
    assert_int_equal(mhc__retry_class("GetIncident"), MHC_RETRY_READ);
    assert_int_equal(mhc__retry_class("WhoAmI"), MHC_RETRY_READ);
    assert_int_equal(mhc__retry_class("Accept"), MHC_RETRY_NEVER);
    assert_int_equal(mhc__retry_class("StartShift"), MHC_RETRY_NEVER);
    assert_int_equal(mhc__retry_class("NoSuchMethod"), MHC_RETRY_NEVER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_encode),
        cmocka_unit_test(test_reader_every_split),
        cmocka_unit_test(test_reader_byte_at_a_time),
        cmocka_unit_test(test_reader_refusals),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_parse_status),
        cmocka_unit_test(test_format_timeout),
        cmocka_unit_test(test_status_mappings),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_rng_and_keys),
        cmocka_unit_test(test_retry_table_matches_proto),
    };
    return cmocka_run_group_tests_name("client_wire", tests, NULL, NULL);
}
