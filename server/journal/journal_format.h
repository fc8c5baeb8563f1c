/* journal_format.h -- PURE on-disk format of the journal: CRC32C, record
 * framing, file headers, file names, and the recovery scanner.
 *
 * No I/O, no allocation, no time: everything takes bytes and returns results,
 * so the scanner can be tested at every byte boundary and fuzzed.
 *
 * Files (segments and snapshots) start with a 40-byte header:
 *
 *   0  "MHTASJ1\n"        magic and format version
 *   8  u32 kind            1 = segment, 2 = snapshot
 *   12 u32 reserved (0)
 *   16 u64 a               segment: first ticket; snapshot: up_to ticket
 *   24 u64 b               segment: prev ticket (last ticket written before
 *                          this segment, 0 for none); snapshot: 0
 *   32 u32 reserved (0)
 *   36 u32 crc32c(bytes 0..35)
 *
 * then records (a snapshot holds exactly one), each a 20-byte header and
 * the payload, all integers little-endian:
 *
 *   0  u32 len             payload bytes, <= the configured max record
 *   4  u64 ticket          record number, strictly increasing in a journal
 *   12 u32 crc             crc32c(len, ticket, payload)
 *   16 u32 hcrc            crc32c(bytes 0..15): a damaged length is caught
 *                          before it is trusted to find the record's end
 *   20 payload             opaque (the hub stores packed mhtas.v1.Event)
 *
 * The header CRC is what lets the scanner call "the length runs past the end
 * of the file" a torn tail rather than corruption: without it, one flipped
 * bit in a length field near the end would silently swallow the acknowledged
 * records after it.
 */
#ifndef MHTAS_JOURNAL_FORMAT_H
#define MHTAS_JOURNAL_FORMAT_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define JOURNAL_MAGIC "MHTASJ1\n"
#define JOURNAL_FILE_HDR 40u
#define JOURNAL_REC_HDR 20u
#define JOURNAL_MAX_RECORD (1u << 20)   /* default and hard upper bound: 1 MiB */
#define JOURNAL_MAX_SNAPSHOT (1u << 30) /* a snapshot is one record of up to 1 GiB */

enum { JOURNAL_KIND_SEGMENT = 1, JOURNAL_KIND_SNAPSHOT = 2 };
/* Only a file-name kind: an archived segment (its header says SEGMENT). */
enum { JOURNAL_KIND_ARCHIVE = 3 };

/* CRC32C (Castagnoli, reflected 0x82F63B78, init and xorout ~0), as used by
 * iSCSI, ext4 and LevelDB. crc32c("123456789") == 0xE3069283.
 * journal_crc32c_extend(crc32c(a), b) == crc32c(a || b). Uses the SSE4.2
 * instruction when the CPU has it, a table otherwise. */
uint32_t journal_crc32c(const void *buf, size_t len);
uint32_t journal_crc32c_extend(uint32_t crc, const void *buf, size_t len);

/* ------------------------------------------------------------- records */

/* Bytes a record of payload length len takes on disk. */
static inline size_t journal_rec_size(size_t len) { return JOURNAL_REC_HDR + len; }

/* Writes the framed record into out (which must hold journal_rec_size(len)
 * bytes). payload is borrowed; len must be <= JOURNAL_MAX_RECORD. */
void journal_rec_encode(uint8_t *out, uint64_t ticket, const void *payload, uint32_t len);

typedef enum {
    JOURNAL_SCAN_RECORD = 0, /* a valid record at offset; next = offset after it */
    JOURNAL_SCAN_END,        /* offset == buffer length: clean end */
    JOURNAL_SCAN_TORN,       /* torn tail from offset to the end (safe to trim
                                in the LAST segment only) */
    JOURNAL_SCAN_CORRUPT,    /* bad data at offset that a crash cannot explain */
} journal_scan_kind_t;

typedef struct journal_scan {
    journal_scan_kind_t kind;
    size_t offset;          /* where this record (or the damage) starts */
    size_t next;            /* RECORD: offset of the next record */
    uint64_t ticket;        /* RECORD */
    const uint8_t *payload; /* RECORD: points into the scanned buffer */
    uint32_t len;           /* RECORD */
    const char *why;        /* TORN/CORRUPT: static text for the log/error */
} journal_scan_t;

/* Classifies the bytes of buf at offset off (off <= len). A crash can only
 * cut the last write short (the file ends early) or leave zeros where it did
 * not land, so the rules are:
 *   - fewer than 20 bytes left, or a verified header whose payload runs past
 *     the end: TORN (short header / short payload);
 *   - a bad header or a payload CRC mismatch with nothing but zeros after
 *     it (or an all-zero remainder): TORN;
 *   - a bad header, impossible length or CRC mismatch followed by any
 *     non-zero byte: CORRUPT (data after it was written, so this is not a
 *     torn tail and must not be trimmed).
 * max_record bounds the length (the journal passes its configured limit for
 * segments and JOURNAL_MAX_SNAPSHOT for snapshots). */
void journal_scan(const uint8_t *buf, size_t len, size_t off, uint32_t max_record, journal_scan_t *out);

/* ---------------------------------------------------------- file header */

typedef struct journal_file_hdr {
    uint32_t kind;
    uint64_t a; /* segment: first ticket; snapshot: up_to ticket */
    uint64_t b; /* segment: prev ticket */
} journal_file_hdr_t;

void journal_file_hdr_encode(uint8_t out[JOURNAL_FILE_HDR], const journal_file_hdr_t *h);
/* 0 if buf (len bytes) starts with a valid header, else -1 with *why set. */
int journal_file_hdr_decode(const uint8_t *buf, size_t len, journal_file_hdr_t *h, const char **why);

/* Checks the bytes of a snapshot file named after ticket t: a SNAPSHOT
 * header for t, then exactly one record with ticket t. 0 with *payload and
 * *plen set (pointing into buf), or -1 with *off and *why (static text) saying
 * where and what is wrong. Shared by journal_open and journal_read. */
int journal_snapshot_check(const uint8_t *buf, size_t len, uint64_t t, const uint8_t **payload, uint32_t *plen,
                           size_t *off, const char **why);

/* The segment chain: each segment's header names the last ticket written
 * before it (`follows`). The first segment read must follow the journal
 * before it (the snapshot's ticket `snap`, or 0 with none: exactly 0); every
 * later one the previous segment's last ticket `last`. 0, or -1 with the
 * reason in err (naming path). Shared by journal_open and journal_read. */
#define JOURNAL_ERR_MAX 1024 /* a buffer for one error message */
int journal_chain_check(const char *path, bool first, uint64_t follows, uint64_t snap, uint64_t last, char *err,
                        size_t errlen);

/* ----------------------------------------------------------- file names */

/* "seg-%020llu.mj", "snap-%020llu.mj" and "arch-%020llu.mj" (a segment a
 * snapshot covers, kept as history: the audit trail lives in it); out must
 * hold 32 bytes. */
#define JOURNAL_NAME_MAX 32
void journal_seg_name(char out[JOURNAL_NAME_MAX], uint64_t first_ticket);
void journal_snap_name(char out[JOURNAL_NAME_MAX], uint64_t up_to_ticket);
void journal_arch_name(char out[JOURNAL_NAME_MAX], uint64_t first_ticket);
/* Parses a directory entry: returns JOURNAL_KIND_SEGMENT, _SNAPSHOT or
 * _ARCHIVE with *n set, 0 for any other name (exact format only: 20 digits). */
int journal_parse_name(const char *name, uint64_t *n);

/* True if len bytes at p are all zero (len 0 counts). */
int journal_all_zero(const uint8_t *p, size_t len);

#endif
