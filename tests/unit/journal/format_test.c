/* format_test.c -- tests for server/journal/journal_format.c (pure).
 *
 * CRC32C against published vectors, record framing round trips, and the
 * recovery scanner on every cut point of a buffer (plain and zero-filled
 * torn tails must never read as corruption) and on every single-byte flip
 * (damage before valid data must always read as corruption).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "journal/journal_format.h"

static void test_crc_vectors(void **state)
{
    (void)state;
    uint8_t buf[32];
    assert_int_equal(journal_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(journal_crc32c("", 0), 0);
    memset(buf, 0, sizeof buf); /* RFC 3720 B.4 */
    assert_int_equal(journal_crc32c(buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof buf);
    assert_int_equal(journal_crc32c(buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(journal_crc32c(buf, 32), 0x46DD794Eu);
    /* extend == crc of the concatenation, at every split (covers the
     * 8-byte and tail loops of the hardware path) */
    uint8_t big[100];
    for (int i = 0; i < 100; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    uint32_t whole = journal_crc32c(big, 100);
    for (size_t k = 0; k <= 100; k++)
        assert_int_equal(journal_crc32c_extend(journal_crc32c(big, k), big + k, 100 - k), whole);
}

/* Three records of different sizes, framed back to back. */
static size_t build(uint8_t *out, size_t *ends)
{
    static const char *payloads[] = { "first", "", "the third record, a little longer than the others" };
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(payloads[i]);
        journal_rec_encode(out + off, 100 + (uint64_t)i, payloads[i], (uint32_t)n);
        off += journal_rec_size(n);
        ends[i] = off;
    }
    return off;
}

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t ends[3];
    size_t len = build(buf, ends);
    journal_scan_t s;
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        journal_scan(buf, len, off, JOURNAL_MAX_RECORD, &s);
        assert_int_equal(s.kind, JOURNAL_SCAN_RECORD);
        assert_int_equal(s.ticket, 100 + (uint64_t)i);
        assert_int_equal(s.next, ends[i]);
        off = s.next;
    }
    assert_memory_equal(s.payload, "the third", 9);
    journal_scan(buf, len, off, JOURNAL_MAX_RECORD, &s);
    assert_int_equal(s.kind, JOURNAL_SCAN_END);
}

/* Scans buf to the first non-record; returns its kind and the number of
 * records before it. */
static journal_scan_kind_t scan_all(const uint8_t *buf, size_t len, int *records, size_t *at)
{
    journal_scan_t s;
    size_t off = 0;
    *records = 0;
    for (;;) {
        journal_scan(buf, len, off, JOURNAL_MAX_RECORD, &s);
        if (s.kind != JOURNAL_SCAN_RECORD) {
            *at = s.offset;
            return s.kind;
        }
        (*records)++;
        off = s.next;
    }
}

static int complete_before(const size_t *ends, size_t cut)
{
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (ends[i] <= cut)
            n++;
    return n;
}

static void test_torn_every_cut(void **state)
{
    (void)state;
    uint8_t buf[256], t[256];
    size_t ends[3];
    size_t len = build(buf, ends);
    for (size_t cut = 0; cut <= len; cut++) {
        for (int zero_fill = 0; zero_fill < 2; zero_fill++) {
            memcpy(t, buf, cut);
            size_t tlen = cut;
            if (zero_fill) {
                memset(t + cut, 0, len - cut);
                tlen = len;
            }
            int n;
            size_t at;
            journal_scan_kind_t k = scan_all(t, tlen, &n, &at);
            int want = complete_before(ends, cut);
            assert_int_equal(n, want);
            if (cut == len)
                assert_int_equal(k, JOURNAL_SCAN_END);
            else if (!zero_fill && cut == (want ? ends[want - 1] : 0))
                assert_int_equal(k, JOURNAL_SCAN_END);
            else
                assert_int_equal(k, JOURNAL_SCAN_TORN);
            assert_int_equal(at, want ? ends[want - 1] : 0);
        }
    }
}

/* One flipped byte anywhere before the last record, with valid records
 * after it: always CORRUPT, at the damaged record's offset. In the last
 * record's header too (a crash keeps a prefix, so a bad header before an
 * intact payload is not a tear); in the last record's payload it reads as a
 * torn tail, since nothing follows it. */
static void test_flip_every_byte(void **state)
{
    (void)state;
    uint8_t buf[256], t[256];
    size_t ends[3];
    size_t len = build(buf, ends);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(t, buf, len);
            t[i] ^= (uint8_t)(1u << bit);
            int n;
            size_t at;
            journal_scan_kind_t k = scan_all(t, len, &n, &at);
            int rec = i < ends[0] ? 0 : i < ends[1] ? 1 : 2;
            assert_int_equal(n, rec);
            assert_int_equal(at, rec ? ends[rec - 1] : 0);
            int in_last_payload = rec == 2 && i >= ends[1] + JOURNAL_REC_HDR;
            assert_int_equal(k, in_last_payload ? JOURNAL_SCAN_TORN : JOURNAL_SCAN_CORRUPT);
        }
    }
}

static void test_zeroed_record_mid_file(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t ends[3];
    size_t len = build(buf, ends);
    memset(buf + ends[0], 0, ends[1] - ends[0]); /* a hole, then valid data */
    int n;
    size_t at;
    assert_int_equal(scan_all(buf, len, &n, &at), JOURNAL_SCAN_CORRUPT);
    assert_int_equal(n, 1);
    assert_int_equal(at, ends[0]);
}

static void test_impossible_length(void **state)
{
    (void)state;
    uint8_t buf[64];
    journal_rec_encode(buf, 1, "abcd", 4);
    /* a length over the bound with a matching header CRC */
    uint32_t big = 5000;
    memcpy(buf, &big, 4); /* little-endian host assumed by this test only */
    uint32_t h = journal_crc32c(buf, 16);
    memcpy(buf + 16, &h, 4);
    journal_scan_t s;
    journal_scan(buf, 24, 0, 4096, &s);
    assert_int_equal(s.kind, JOURNAL_SCAN_CORRUPT);
    journal_scan(buf, 24, 0, 8192, &s); /* within bound: runs past the end */
    assert_int_equal(s.kind, JOURNAL_SCAN_TORN);
}

static void test_file_header(void **state)
{
    (void)state;
    uint8_t h[JOURNAL_FILE_HDR];
    journal_file_hdr_t in = { JOURNAL_KIND_SEGMENT, 42, 41 }, out;
    const char *why = NULL;
    journal_file_hdr_encode(h, &in);
    assert_memory_equal(h, "MHTASJ1\n", 8);
    assert_int_equal(journal_file_hdr_decode(h, sizeof h, &out, &why), 0);
    assert_int_equal(out.kind, JOURNAL_KIND_SEGMENT);
    assert_int_equal(out.a, 42);
    assert_int_equal(out.b, 41);
    assert_int_equal(journal_file_hdr_decode(h, sizeof h - 1, &out, &why), -1);
    for (size_t i = 0; i < sizeof h; i++) {
        h[i] ^= 0x10;
        assert_int_equal(journal_file_hdr_decode(h, sizeof h, &out, &why), -1);
        assert_non_null(why);
        h[i] ^= 0x10;
    }
}

static void test_names(void **state)
{
    (void)state;
    char n[JOURNAL_NAME_MAX];
    uint64_t v;
    journal_seg_name(n, 1);
    assert_string_equal(n, "seg-00000000000000000001.mj");
    assert_int_equal(journal_parse_name(n, &v), JOURNAL_KIND_SEGMENT);
    assert_int_equal(v, 1);
    journal_snap_name(n, UINT64_MAX);
    assert_string_equal(n, "snap-18446744073709551615.mj");
    assert_int_equal(journal_parse_name(n, &v), JOURNAL_KIND_SNAPSHOT);
    assert_true(v == UINT64_MAX);
    assert_int_equal(journal_parse_name("snap-99999999999999999999.mj", &v), 0); /* overflow */
    assert_int_equal(journal_parse_name("seg-0000000000000000001.mj", &v), 0);
    assert_int_equal(journal_parse_name("seg-00000000000000000001.mj.tmp", &v), 0);
    assert_int_equal(journal_parse_name("LOCK", &v), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_vectors),     cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_torn_every_cut),  cmocka_unit_test(test_flip_every_byte),
        cmocka_unit_test(test_zeroed_record_mid_file), cmocka_unit_test(test_impossible_length),
        cmocka_unit_test(test_file_header),     cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
