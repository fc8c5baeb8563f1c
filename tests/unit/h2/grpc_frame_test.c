/* grpc_frame_test.c -- the pure gRPC framing of server/h2/grpc_frame.c:
 * prefix decoding split at every byte boundary, the size limit, the
 * compressed flag, zero-length messages, prefix encoding and the
 * percent-encoding of grpc-message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "h2/grpc_frame.h"

/* ------------------------------------------------------------ helpers */

typedef struct {
    unsigned starts, ends;
    uint8_t body[4096];
    size_t body_len;
    uint32_t lens[16];      /* msg_len of each START */
    size_t ends_at[16];     /* body_len at each END */
    int error;              /* the status, when feed failed */
} sink_t;

/* Feeds in[0..len) through the decoder, collecting what it reports.
 * Returns 0, or -1 when the decoder refused the input. */
static int feed_all(grpc_decoder_t *d, const uint8_t *in, size_t len, sink_t *k)
{
    for (;;) {
        grpc_chunk_t ch;
        long n = grpc_decoder_feed(d, in, len, &ch);
        if (n < 0) {
            k->error = d->status;
            return -1;
        }
        assert_true((size_t)n <= len);
        in += n;
        len -= (size_t)n;
        switch (ch.kind) {
        case GRPC_CHUNK_START:
            assert_true(k->starts < 16);
            k->lens[k->starts++] = (uint32_t)ch.len;
            break;
        case GRPC_CHUNK_BODY:
            assert_true(ch.len > 0);
            assert_true(k->body_len + ch.len <= sizeof k->body);
            memcpy(k->body + k->body_len, ch.data, ch.len);
            k->body_len += ch.len;
            break;
        case GRPC_CHUNK_END:
            assert_true(k->ends < 16);
            assert_int_equal(k->ends + 1, k->starts);
            k->ends_at[k->ends++] = k->body_len;
            break;
        case GRPC_CHUNK_NONE:
            if (len == 0)
                return 0;
            break;
        }
    }
}

static size_t put_msg(uint8_t *out, const char *body, size_t len)
{
    grpc_prefix_encode(out, (uint32_t)len);
    memcpy(out + GRPC_PREFIX_LEN, body, len);
    return GRPC_PREFIX_LEN + len;
}

/* Three messages back to back: 3 bytes, 0 bytes, 300 bytes. */
static size_t build_stream(uint8_t *buf, char *expect_body, size_t *expect_len)
{
    char big[300];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    size_t n = 0;
    n += put_msg(buf + n, "abc", 3);
    n += put_msg(buf + n, "", 0);
    n += put_msg(buf + n, big, sizeof big);
    memcpy(expect_body, "abc", 3);
    memcpy(expect_body + 3, big, sizeof big);
    *expect_len = 3 + sizeof big;
    return n;
}

static void check_stream_result(const grpc_decoder_t *d, const sink_t *k, const char *body,
                                size_t body_len)
{
    assert_int_equal(k->error, 0);
    assert_int_equal(k->starts, 3);
    assert_int_equal(k->ends, 3);
    assert_int_equal(k->lens[0], 3);
    assert_int_equal(k->lens[1], 0);
    assert_int_equal(k->lens[2], 300);
    assert_int_equal(k->ends_at[0], 3);
    assert_int_equal(k->ends_at[1], 3);
    assert_int_equal(k->ends_at[2], 303);
    assert_int_equal(k->body_len, body_len);
    assert_memory_equal(k->body, body, body_len);
    assert_int_equal(d->messages, 3);
    assert_true(grpc_decoder_idle(d));
}

/* ------------------------------------------------------------ decoding */

static void test_one_message(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_msg(buf, "hello", 5);
    grpc_decoder_t d;
    sink_t k = {0};
    grpc_decoder_init(&d, 1024);
    assert_true(grpc_decoder_idle(&d));
    assert_int_equal(feed_all(&d, buf, n, &k), 0);
    assert_int_equal(k.starts, 1);
    assert_int_equal(k.ends, 1);
    assert_int_equal(k.body_len, 5);
    assert_memory_equal(k.body, "hello", 5);
    assert_int_equal(d.messages, 1);
    assert_true(grpc_decoder_idle(&d));
}

static void test_split_at_every_boundary(void **state)
{
    (void)state;
    uint8_t buf[512];
    char body[512];
    size_t body_len;
    size_t n = build_stream(buf, body, &body_len);

    for (size_t cut = 0; cut <= n; cut++) {
        grpc_decoder_t d;
        sink_t k = {0};
        grpc_decoder_init(&d, 1024);
        assert_int_equal(feed_all(&d, buf, cut, &k), 0);
        assert_int_equal(feed_all(&d, buf + cut, n - cut, &k), 0);
        check_stream_result(&d, &k, body, body_len);
    }
}

static void test_two_cuts(void **state)
{
    (void)state;
    uint8_t buf[512];
    char body[512];
    size_t body_len;
    size_t n = build_stream(buf, body, &body_len);

    /* Every pair of cuts within the first 40 bytes (the prefixes and the
     * zero-length message live there), the rest in one piece. */
    for (size_t a = 0; a <= 40; a++) {
        for (size_t b = a; b <= 40; b++) {
            grpc_decoder_t d;
            sink_t k = {0};
            grpc_decoder_init(&d, 1024);
            assert_int_equal(feed_all(&d, buf, a, &k), 0);
            assert_int_equal(feed_all(&d, buf + a, b - a, &k), 0);
            assert_int_equal(feed_all(&d, buf + b, n - b, &k), 0);
            check_stream_result(&d, &k, body, body_len);
        }
    }
}

static void test_byte_by_byte(void **state)
{
    (void)state;
    uint8_t buf[512];
    char body[512];
    size_t body_len;
    size_t n = build_stream(buf, body, &body_len);
    grpc_decoder_t d;
    sink_t k = {0};
    grpc_decoder_init(&d, 1024);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(feed_all(&d, buf + i, 1, &k), 0);
        /* idle exactly at message boundaries */
        if (i + 1 == 8 || i + 1 == 13 || i + 1 == n)
            assert_true(grpc_decoder_idle(&d));
        else
            assert_false(grpc_decoder_idle(&d));
    }
    check_stream_result(&d, &k, body, body_len);
}

static void test_zero_length_message(void **state)
{
    (void)state;
    uint8_t buf[GRPC_PREFIX_LEN];
    grpc_prefix_encode(buf, 0);
    grpc_decoder_t d;
    grpc_decoder_init(&d, 0); /* even a limit of 0 admits an empty message */
    grpc_chunk_t ch;

    assert_int_equal(grpc_decoder_feed(&d, buf, 5, &ch), 5);
    assert_int_equal(ch.kind, GRPC_CHUNK_START);
    assert_int_equal(ch.len, 0);
    assert_false(grpc_decoder_idle(&d));
    assert_int_equal(grpc_decoder_feed(&d, NULL, 0, &ch), 0);
    assert_int_equal(ch.kind, GRPC_CHUNK_END);
    assert_int_equal(d.messages, 1);
    assert_true(grpc_decoder_idle(&d));
    assert_int_equal(grpc_decoder_feed(&d, NULL, 0, &ch), 0);
    assert_int_equal(ch.kind, GRPC_CHUNK_NONE);
}

static void test_empty_input(void **state)
{
    (void)state;
    grpc_decoder_t d;
    grpc_chunk_t ch;
    grpc_decoder_init(&d, 10);
    assert_int_equal(grpc_decoder_feed(&d, NULL, 0, &ch), 0);
    assert_int_equal(ch.kind, GRPC_CHUNK_NONE);
    assert_int_equal(d.messages, 0);
    assert_true(grpc_decoder_idle(&d));
}

static void test_limit_exact_is_accepted(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_msg(buf, "0123456789", 10);
    grpc_decoder_t d;
    sink_t k = {0};
    grpc_decoder_init(&d, 10);
    assert_int_equal(feed_all(&d, buf, n, &k), 0);
    assert_int_equal(k.ends, 1);
    assert_int_equal(k.body_len, 10);
}

static void test_oversize(void **state)
{
    (void)state;
    uint8_t prefix[GRPC_PREFIX_LEN];
    grpc_prefix_encode(prefix, 11);
    /* Refused as soon as the prefix is complete, however it is split, with
     * no body bytes needed. */
    for (size_t cut = 0; cut <= GRPC_PREFIX_LEN; cut++) {
        grpc_decoder_t d;
        sink_t k = {0};
        grpc_decoder_init(&d, 10);
        if (cut < GRPC_PREFIX_LEN) {
            assert_int_equal(feed_all(&d, prefix, cut, &k), 0);
            assert_int_equal(feed_all(&d, prefix + cut, GRPC_PREFIX_LEN - cut, &k), -1);
        } else {
            assert_int_equal(feed_all(&d, prefix, cut, &k), -1);
        }
        assert_int_equal(k.error, GRPC_STATUS_RESOURCE_EXHAUSTED);
        assert_int_equal(k.starts, 0);
        assert_string_equal(d.err, "message of 11 bytes exceeds the limit of 10");
        assert_int_equal(d.state, GRPC_DEC_ERROR);
    }
}

static void test_oversize_huge_length(void **state)
{
    (void)state;
    const uint8_t prefix[GRPC_PREFIX_LEN] = {0, 0xff, 0xff, 0xff, 0xff};
    grpc_decoder_t d;
    grpc_chunk_t ch;
    grpc_decoder_init(&d, 4u << 20);
    assert_int_equal(grpc_decoder_feed(&d, prefix, 5, &ch), -1);
    assert_int_equal(d.status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_string_equal(d.err, "message of 4294967295 bytes exceeds the limit of 4194304");
}

static void test_compressed_flag(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_msg(buf, "zz", 2);
    buf[0] = 1;
    grpc_decoder_t d;
    sink_t k = {0};
    grpc_decoder_init(&d, 1024);
    assert_int_equal(feed_all(&d, buf, n, &k), -1);
    assert_int_equal(k.error, GRPC_STATUS_UNIMPLEMENTED);
    assert_string_equal(d.err, "compressed messages are not supported");
    assert_int_equal(k.starts, 0);

    /* Any other non-zero flag byte is refused the same way. */
    grpc_decoder_init(&d, 1024);
    buf[0] = 0x80;
    memset(&k, 0, sizeof k);
    assert_int_equal(feed_all(&d, buf, n, &k), -1);
    assert_int_equal(k.error, GRPC_STATUS_UNIMPLEMENTED);
}

static void test_error_is_sticky(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_msg(buf, "zz", 2);
    buf[0] = 1;
    grpc_decoder_t d;
    grpc_chunk_t ch;
    grpc_decoder_init(&d, 1024);
    assert_int_equal(grpc_decoder_feed(&d, buf, n, &ch), -1);
    buf[0] = 0;
    assert_int_equal(grpc_decoder_feed(&d, buf, n, &ch), -1);
    assert_int_equal(grpc_decoder_feed(&d, NULL, 0, &ch), -1);
    assert_false(grpc_decoder_idle(&d));
}

static void test_truncated_is_not_idle(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_msg(buf, "hello", 5);
    for (size_t cut = 1; cut < n; cut++) {
        grpc_decoder_t d;
        sink_t k = {0};
        grpc_decoder_init(&d, 1024);
        assert_int_equal(feed_all(&d, buf, cut, &k), 0);
        assert_false(grpc_decoder_idle(&d));
        assert_int_equal(d.messages, 0);
        assert_int_equal(k.ends, 0);
    }
}

static void test_body_points_into_input(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_msg(buf, "hello", 5);
    grpc_decoder_t d;
    grpc_chunk_t ch;
    grpc_decoder_init(&d, 1024);
    assert_int_equal(grpc_decoder_feed(&d, buf, n, &ch), 5);
    assert_int_equal(ch.kind, GRPC_CHUNK_START);
    assert_int_equal(grpc_decoder_feed(&d, buf + 5, n - 5, &ch), 5);
    assert_int_equal(ch.kind, GRPC_CHUNK_BODY);
    assert_ptr_equal(ch.data, buf + 5);
    assert_int_equal(ch.len, 5);
}

/* ------------------------------------------------------------ encoding */

static void test_prefix_encode(void **state)
{
    (void)state;
    uint8_t p[GRPC_PREFIX_LEN];
    grpc_prefix_encode(p, 0x01020304u);
    const uint8_t want[] = {0, 1, 2, 3, 4};
    assert_memory_equal(p, want, 5);
    grpc_prefix_encode(p, 0);
    const uint8_t zero[] = {0, 0, 0, 0, 0};
    assert_memory_equal(p, zero, 5);
    grpc_prefix_encode(p, 0xffffffffu);
    const uint8_t max[] = {0, 0xff, 0xff, 0xff, 0xff};
    assert_memory_equal(p, max, 5);
}

static void test_message_encode_plain(void **state)
{
    (void)state;
    char out[128];
    const char *s = "missing or invalid bearer token";
    assert_int_equal(grpc_message_encode(s, strlen(s), out, sizeof out), strlen(s));
    assert_string_equal(out, s);
    /* the unreserved edges: space and ~ stay */
    assert_int_equal(grpc_message_encode(" ~!$&", 5, out, sizeof out), 5);
    assert_string_equal(out, " ~!$&");
}

static void test_message_encode_escapes(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(grpc_message_encode("100%", 4, out, sizeof out), 6);
    assert_string_equal(out, "100%25");
    assert_int_equal(grpc_message_encode("a\nb\tc", 5, out, sizeof out), 9);
    assert_string_equal(out, "a%0Ab%09c");
    const char *utf8 = "caf\xc3\xa9 \xe2\x82\xac"; /* "café €" */
    assert_int_equal(grpc_message_encode(utf8, strlen(utf8), out, sizeof out), 19);
    assert_string_equal(out, "caf%C3%A9 %E2%82%AC");
    assert_int_equal(grpc_message_encode("\x7f\x1f", 2, out, sizeof out), 6);
    assert_string_equal(out, "%7F%1F");
    char nul[] = {'a', '\0', 'b'};
    assert_int_equal(grpc_message_encode(nul, 3, out, sizeof out), 5);
    assert_string_equal(out, "a%00b");
}

static void test_message_encode_truncates_on_escape_boundary(void **state)
{
    (void)state;
    char out[8];
    /* "ab%25" needs 5 chars: with cap 5 (4 + NUL) the escape is left out
     * whole, and the needed length is still reported. */
    assert_int_equal(grpc_message_encode("ab%", 3, out, 5), 5);
    assert_string_equal(out, "ab");
    assert_int_equal(grpc_message_encode("ab%", 3, out, 6), 5);
    assert_string_equal(out, "ab%25");
    assert_int_equal(grpc_message_encode("abc", 3, out, 1), 3);
    assert_string_equal(out, "");
    assert_int_equal(grpc_message_encode("abc", 3, NULL, 0), 3);
    /* after a skipped escape, later plain bytes are not appended either */
    assert_int_equal(grpc_message_encode("a%bcd", 5, out, 4), 7);
    assert_string_equal(out, "a");
}

static void test_message_decode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(grpc_message_decode("caf%C3%A9", 9, out), 5);
    assert_string_equal(out, "caf\xc3\xa9");
    assert_int_equal(grpc_message_decode("100%25", 6, out), 4);
    assert_string_equal(out, "100%");
    /* malformed escapes are kept */
    assert_int_equal(grpc_message_decode("%zz%4", 5, out), 5);
    assert_string_equal(out, "%zz%4");
    assert_int_equal(grpc_message_decode("%e2%82%ac", 9, out), 3);
    assert_string_equal(out, "\xe2\x82\xac");
}

static void test_message_round_trip_every_byte(void **state)
{
    (void)state;
    char in[256], enc[1024], dec[1024];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    size_t need = grpc_message_encode(in, sizeof in, enc, sizeof enc);
    /* 94 printable ASCII bytes (not %) stay; the other 162 become %XX */
    assert_int_equal(need, 94 + 162 * 3);
    for (size_t i = 0; i < need; i++)
        assert_true(enc[i] >= 0x20 && enc[i] <= 0x7e);
    assert_int_equal(grpc_message_decode(enc, need, dec), 256);
    assert_memory_equal(dec, in, 256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_message),
        cmocka_unit_test(test_split_at_every_boundary),
        cmocka_unit_test(test_two_cuts),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_zero_length_message),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_limit_exact_is_accepted),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_oversize_huge_length),
        cmocka_unit_test(test_compressed_flag),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_truncated_is_not_idle),
        cmocka_unit_test(test_body_points_into_input),
        cmocka_unit_test(test_prefix_encode),
        cmocka_unit_test(test_message_encode_plain),
        cmocka_unit_test(test_message_encode_escapes),
        cmocka_unit_test(test_message_encode_truncates_on_escape_boundary),
        cmocka_unit_test(test_message_decode),
        cmocka_unit_test(test_message_round_trip_every_byte),
    };
    return cmocka_run_group_tests_name("grpc_frame", tests, NULL, NULL);
}
