/* journal_format.c -- record framing, file headers and the recovery scanner.
 *
 * PURE (house style point 1): bytes in, results out. The journal shell reads
 * files through journal_io and hands the bytes here; the unit tests and the
 * fuzzer call it directly.
 */
#include "journal/journal_format.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_SSE42_PATH 1
#endif

/* ---------------------------------------------------------------- CRC32C */

/* Table for the reflected Castagnoli polynomial 0x82F63B78, generated once
 * and pasted so the module needs no initialisation (and no lazy init racing
 * between the loop thread and the journal worker). */
static const uint32_t crc_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu,
    0x26a1e7e8u, 0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu,
    0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u, 0x5e133c24u, 0x105ec76fu, 0xe235446cu,
    0xf165b798u, 0x030e349bu, 0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u,
    0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu,
    0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u, 0x33ed7d2au,
    0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u, 0xaa64d611u, 0x580f5512u,
    0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau,
    0x30e349b1u, 0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu,
    0x1642ae59u, 0xe4292d5au, 0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au,
    0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u, 0x417b1dbcu, 0xb3109ebfu,
    0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u, 0x67dafa54u, 0x95b17957u,
    0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu,
    0xed03a29bu, 0x1f682198u, 0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u,
    0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu,
    0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u,
    0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu,
    0x4767748au, 0xb50cf789u, 0xeb1fcbadu, 0x197448aeu, 0x0a24bb5au, 0xf84f3859u,
    0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u, 0x7198540du, 0x83f3d70eu,
    0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu,
    0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu,
    0x456cac67u, 0xb7072f64u, 0xa457dc90u, 0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u,
    0xe9141340u, 0x1b7f9043u, 0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu,
    0x92a8fc17u, 0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu,
    0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu, 0x0b21572cu,
    0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u, 0xa24bb5a6u, 0x502036a5u,
    0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u,
    0x0e330a81u, 0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du,
    0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u, 0x38cc2a06u, 0xcaa7a905u,
    0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu,
    0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u,
    0xe52cc12cu, 0x1747422fu, 0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu,
    0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
    0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u,
    0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u,
    0x7fab5e8cu, 0x8dc0dd8fu, 0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu,
    0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u, 0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u,
    0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au, 0xc69f7b69u,
    0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu,
    0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n--)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#ifdef HAVE_SSE42_PATH
/* The crc32 instruction computes exactly CRC32C; 8 bytes per instruction is
 * about twenty times the table's speed, which matters for replaying years of
 * records at start-up. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

uint32_t journal_crc32c_extend(uint32_t crc, const void *buf, size_t len)
{
    uint32_t c = ~crc;
#ifdef HAVE_SSE42_PATH
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc_hw(c, buf, len);
#endif
    return ~crc_sw(c, buf, len);
}

uint32_t journal_crc32c(const void *buf, size_t len)
{
    return journal_crc32c_extend(0, buf, len);
}

/* ----------------------------------------------------------- byte order */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

int journal_all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return 0;
    return 1;
}

/* --------------------------------------------------------------- records */

void journal_rec_encode(uint8_t *out, uint64_t ticket, const void *payload, uint32_t len)
{
    put32(out, len);
    put64(out + 4, ticket);
    uint32_t crc = journal_crc32c(out, 12);
    crc = journal_crc32c_extend(crc, payload, len);
    put32(out + 12, crc);
    put32(out + 16, journal_crc32c(out, 16));
    if (len)
        memcpy(out + JOURNAL_REC_HDR, payload, len);
}

/* A damaged region is a torn tail only if nothing non-zero follows it: a
 * crash loses the end of the last write (the file is short, or the end reads
 * as zeros), it never leaves good data after bad. */
static void bad(journal_scan_t *o, const uint8_t *buf, size_t len, size_t rest, const char *torn_why,
                const char *corrupt_why)
{
    if (rest > len || journal_all_zero(buf + rest, len - rest)) {
        o->kind = JOURNAL_SCAN_TORN;
        o->why = torn_why;
    } else {
        o->kind = JOURNAL_SCAN_CORRUPT;
        o->why = corrupt_why;
    }
}

void journal_scan(const uint8_t *buf, size_t len, size_t off, uint32_t max_record, journal_scan_t *o)
{
    memset(o, 0, sizeof *o);
    o->offset = off;
    if (off >= len) {
        o->kind = JOURNAL_SCAN_END;
        return;
    }
    size_t left = len - off;
    const uint8_t *p = buf + off;
    if (journal_all_zero(p, left)) {
        o->kind = JOURNAL_SCAN_TORN;
        o->why = "zeroed tail";
        return;
    }
    if (left < JOURNAL_REC_HDR) {
        o->kind = JOURNAL_SCAN_TORN;
        o->why = "short header";
        return;
    }
    if (get32(p + 16) != journal_crc32c(p, 16)) {
        bad(o, buf, len, off + JOURNAL_REC_HDR, "torn header",
            journal_all_zero(p, JOURNAL_REC_HDR) ? "zeroed record followed by data"
                                                 : "header CRC mismatch followed by data");
        return;
    }
    uint32_t n = get32(p);
    if (n > max_record) {
        /* The header CRC matched, so this length was written as is: no crash
         * produces that. */
        o->kind = JOURNAL_SCAN_CORRUPT;
        o->why = "impossible record length";
        return;
    }
    if (left - JOURNAL_REC_HDR < n) {
        o->kind = JOURNAL_SCAN_TORN;
        o->why = "short payload";
        return;
    }
    uint32_t crc = journal_crc32c(p, 12);
    crc = journal_crc32c_extend(crc, p + JOURNAL_REC_HDR, n);
    if (crc != get32(p + 12)) {
        bad(o, buf, len, off + JOURNAL_REC_HDR + n, "torn payload", "CRC mismatch followed by valid data");
        return;
    }
    o->kind = JOURNAL_SCAN_RECORD;
    o->ticket = get64(p + 4);
    o->payload = p + JOURNAL_REC_HDR;
    o->len = n;
    o->next = off + JOURNAL_REC_HDR + n;
}

/* ----------------------------------------------------------- file header */

void journal_file_hdr_encode(uint8_t out[JOURNAL_FILE_HDR], const journal_file_hdr_t *h)
{
    memset(out, 0, JOURNAL_FILE_HDR);
    memcpy(out, JOURNAL_MAGIC, 8);
    put32(out + 8, h->kind);
    put64(out + 16, h->a);
    put64(out + 24, h->b);
    put32(out + 36, journal_crc32c(out, 36));
}

int journal_file_hdr_decode(const uint8_t *buf, size_t len, journal_file_hdr_t *h, const char **why)
{
    if (len < JOURNAL_FILE_HDR) {
        *why = "short file header";
        return -1;
    }
    if (memcmp(buf, JOURNAL_MAGIC, 8) != 0) {
        *why = "bad magic (not an mhtas journal file, or a newer version)";
        return -1;
    }
    if (get32(buf + 36) != journal_crc32c(buf, 36)) {
        *why = "file header CRC mismatch";
        return -1;
    }
    h->kind = get32(buf + 8);
    h->a = get64(buf + 16);
    h->b = get64(buf + 24);
    if (h->kind != JOURNAL_KIND_SEGMENT && h->kind != JOURNAL_KIND_SNAPSHOT) {
        *why = "unknown file kind";
        return -1;
    }
    return 0;
}

int journal_snapshot_check(const uint8_t *buf, size_t len, uint64_t t, const uint8_t **payload, uint32_t *plen,
                           size_t *off, const char **why)
{
    journal_file_hdr_t h;
    *off = 0;
    if (journal_file_hdr_decode(buf, len, &h, why) != 0)
        return -1;
    if (h.kind != JOURNAL_KIND_SNAPSHOT || h.a != t) {
        *why = "header does not match the file name";
        return -1;
    }
    journal_scan_t s, e;
    journal_scan(buf, len, JOURNAL_FILE_HDR, JOURNAL_MAX_SNAPSHOT, &s);
    if (s.kind != JOURNAL_SCAN_RECORD) {
        *off = s.offset;
        *why = s.why;
        return -1;
    }
    journal_scan(buf, len, s.next, JOURNAL_MAX_SNAPSHOT, &e);
    if (s.ticket != t || e.kind != JOURNAL_SCAN_END) {
        *off = s.next;
        *why = "unexpected data after the snapshot record";
        return -1;
    }
    *payload = s.payload;
    *plen = s.len;
    return 0;
}

int journal_chain_check(const char *path, bool first, uint64_t follows, uint64_t snap, uint64_t last, char *err,
                        size_t errlen)
{
    if (first && (snap ? follows > snap : follows != 0)) {
        snprintf(err, errlen,
                 "journal: %s offset 0: segment follows ticket %" PRIu64 " but the journal before it ends at %" PRIu64
                 " (missing segment)",
                 path, follows, snap);
        return -1;
    }
    if (!first && follows != last) {
        snprintf(err, errlen,
                 "journal: %s offset 0: segment follows ticket %" PRIu64 " but the previous segment ends at %" PRIu64
                 " (missing or damaged segment)",
                 path, follows, last);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ file names */

void journal_seg_name(char out[JOURNAL_NAME_MAX], uint64_t first_ticket)
{
    snprintf(out, JOURNAL_NAME_MAX, "seg-%020llu.mj", (unsigned long long)first_ticket);
}

void journal_snap_name(char out[JOURNAL_NAME_MAX], uint64_t up_to_ticket)
{
    snprintf(out, JOURNAL_NAME_MAX, "snap-%020llu.mj", (unsigned long long)up_to_ticket);
}

void journal_arch_name(char out[JOURNAL_NAME_MAX], uint64_t first_ticket)
{
    snprintf(out, JOURNAL_NAME_MAX, "arch-%020llu.mj", (unsigned long long)first_ticket);
}

int journal_parse_name(const char *name, uint64_t *n)
{
    int kind;
    const char *d;
    if (strncmp(name, "seg-", 4) == 0) {
        kind = JOURNAL_KIND_SEGMENT;
        d = name + 4;
    } else if (strncmp(name, "snap-", 5) == 0) {
        kind = JOURNAL_KIND_SNAPSHOT;
        d = name + 5;
    } else if (strncmp(name, "arch-", 5) == 0) {
        kind = JOURNAL_KIND_ARCHIVE;
        d = name + 5;
    } else {
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (d[i] < '0' || d[i] > '9')
            return 0;
        uint64_t nv = v * 10 + (uint64_t)(d[i] - '0');
        if (nv / 10 != v) /* overflow: not a name we wrote */
            return 0;
        v = nv;
    }
    if (strcmp(d + 20, ".mj") != 0)
        return 0;
    *n = v;
    return kind;
}
