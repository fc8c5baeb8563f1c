/* mhc_wire.h -- the pure half of the mhtas client library (internal).
 *
 * Everything here takes bytes, numbers and an RNG state as arguments and
 * returns results: no libuv, no nghttp2, no clock (STYLE.md 8.1). The only
 * allocation is the message reader's growing buffer (plain malloc/realloc:
 * the client library does not depend on server code). Tested by
 * tests/unit/client/wire_test.c.
 *
 * Names: functions mhc__<verb> (internal cross-file, STYLE.md 8.6), so that
 * nothing clashes with the server objects in the same libmhtas.a.
 */
#ifndef MHTAS_CLIENT_MHC_WIRE_H
#define MHTAS_CLIENT_MHC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define MHC_PREFIX_LEN 5

/* ------------------------------------------------------------ framing */

/* Writes the gRPC prefix of an uncompressed message of `len` bytes. */
void mhc__prefix_encode(uint8_t out[MHC_PREFIX_LEN], uint32_t len);

/* Reassembles length-prefixed gRPC messages from DATA chunks of any size.
 * Owns `buf` (malloc'd); mhc__reader_dispose frees it. */
typedef struct mhc_reader {
    uint8_t *buf;
    size_t len, cap;
    size_t skip;        /* bytes of the message last returned, dropped on the next call */
    uint32_t max_len;   /* largest message accepted */
} mhc_reader_t;

void mhc__reader_init(mhc_reader_t *r, uint32_t max_len);
void mhc__reader_dispose(mhc_reader_t *r);

/* Appends `len` bytes. Returns 0, or -1 when out of memory. */
int mhc__reader_feed(mhc_reader_t *r, const uint8_t *data, size_t len);

/* Returns 1 and sets *msg and *len to the next complete message (borrowed: valid
 * until the next call to feed/next/dispose), 0 when more bytes are needed, or
 * a negative gRPC status when the stream is refused: -12 (UNIMPLEMENTED, the
 * compressed flag is set) or -8 (RESOURCE_EXHAUSTED, longer than max_len). */
int mhc__reader_next(mhc_reader_t *r, const uint8_t **msg, size_t *len);

/* 1 when no partial message is buffered. */
int mhc__reader_idle(const mhc_reader_t *r);

/* ------------------------------------------------------------ metadata */

/* Percent-decodes a grpc-message value into `out` (len+1 bytes; may equal
 * `in`). Malformed escapes are kept verbatim, as gRPC asks of clients. A
 * decoded NUL byte is replaced by '?' so the result stays one C string.
 * Returns the decoded length; out is NUL-terminated. */
size_t mhc__percent_decode(const char *in, size_t len, char *out);

/* Parses a grpc-status value: decimal digits only. Returns the code, codes
 * above 16 become UNKNOWN (2), and -1 is returned for a malformed value. */
int mhc__parse_status(const char *v, size_t len);

/* Formats a grpc-timeout header value for `ms` (>= 0): at most 8 digits and
 * a unit (m, S, M, H), rounding up so the server never sees a shorter
 * deadline than ours. out needs 16 bytes. Returns the length. */
size_t mhc__format_timeout(uint64_t ms, char out[16]);

/* The gRPC status for an HTTP status when a response carries no grpc-status
 * (gRPC's http-grpc-status-mapping.md). */
int mhc__http_to_grpc(int http_status);

/* The gRPC status for an RST_STREAM error code without a grpc-status. */
int mhc__rst_to_grpc(uint32_t h2_error_code);

/* ------------------------------------------------------------ randomness */

/* xorshift64*: the caller owns the state (never 0). No global RNG. */
uint64_t mhc__rng_next(uint64_t *state);

/* Seeds a state from arbitrary inputs (a pointer, uv_hrtime, pid); never 0. */
uint64_t mhc__rng_seed(uint64_t a, uint64_t b);

/* Exponential back-off with full jitter: a uniform delay in
 * [0, min(max_ms, min_ms * 2^attempt)], but never below 1 ms so a reconnect
 * loop cannot spin. */
uint64_t mhc__backoff_ms(uint64_t *rng, uint32_t min_ms, uint32_t max_ms, unsigned attempt);

/* Writes a fresh idempotency key ("mhc-" + 32 hex digits, 36 bytes plus
 * NUL) into out. */
void mhc__make_key(uint64_t *rng, char out[40]);

/* ------------------------------------------------------------ call policy */

typedef enum {
    MHC_RETRY_NEVER = 0, /* a state change without a key: fail with UNAVAILABLE */
    MHC_RETRY_READ,      /* read-only: resent after a reconnect */
    MHC_RETRY_KEYED,     /* a state change that carries an idempotency key */
} mhc_retry_t;

/* The retry class of a Hub method by name (see mhtas_client.h, "Retries"). */
mhc_retry_t mhc__retry_class(const char *method);

/* The name of the idempotency field of a request type ("idempotency_key" or
 * "client_msg_id"), or NULL when the method has none. */
const char *mhc__key_field(const char *method);

#endif
