/* grpc_frame.h -- the gRPC wire format, without any I/O (STYLE.md 8.1).
 *
 * A gRPC message on an HTTP/2 stream is a 5-byte prefix (one flag byte, 0 =
 * not compressed, then the length as a big-endian uint32) followed by that
 * many bytes of protobuf. This module
 *   - decodes the prefix incrementally from the DATA bytes as they arrive, in
 *     pieces of any size, so that an oversized or compressed message is
 *     refused as soon as its prefix is in, before any body is buffered;
 *   - encodes a prefix;
 *   - percent-encodes a grpc-message trailer value (gRPC PROTOCOL-HTTP2.md).
 * It never allocates and never calls libuv or nghttp2; the caller owns every
 * buffer.
 */
#ifndef MHTAS_H2_GRPC_FRAME_H
#define MHTAS_H2_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define GRPC_PREFIX_LEN 5

/* The two statuses the decoder reports; equal to HUB_GRPC_* in hub/hub.h
 * (h2_session.c checks that at compile time; this header stays a leaf). */
#define GRPC_STATUS_RESOURCE_EXHAUSTED 8
#define GRPC_STATUS_UNIMPLEMENTED 12

/* --------------------------------------------------------------- decoding */

typedef enum {
    GRPC_DEC_PREFIX = 0, /* collecting the 5 prefix bytes */
    GRPC_DEC_BODY,       /* collecting msg_len body bytes */
    GRPC_DEC_ERROR,      /* stopped; status and err say why */
} grpc_dec_state_t;

/* What one grpc_decoder_feed() call produced. */
typedef enum {
    GRPC_CHUNK_NONE = 0, /* bytes consumed into the prefix; nothing to do */
    GRPC_CHUNK_START,    /* a prefix completed: a message of msg_len bytes begins */
    GRPC_CHUNK_BODY,     /* body bytes: data/len point into the caller's input */
    GRPC_CHUNK_END,      /* the message is complete (follows START or BODY) */
} grpc_chunk_kind_t;

typedef struct grpc_chunk {
    grpc_chunk_kind_t kind;
    const uint8_t *data; /* GRPC_CHUNK_BODY: borrowed from the input */
    size_t len;
} grpc_chunk_t;

typedef struct grpc_decoder {
    grpc_dec_state_t state;
    uint32_t max_len;    /* largest message accepted */
    uint8_t prefix[GRPC_PREFIX_LEN];
    unsigned prefix_have;
    uint32_t msg_len;    /* of the current message */
    uint32_t body_have;  /* body bytes of the current message seen so far */
    unsigned messages;   /* messages completed */
    int end_pending;     /* the body is complete; END not yet reported */
    int status;          /* a HUB_GRPC_* code once state == GRPC_DEC_ERROR */
    char err[96];        /* the grpc-message for that status */
} grpc_decoder_t;

/* Prepares a decoder that accepts messages of at most max_len bytes. */
void grpc_decoder_init(grpc_decoder_t *d, uint32_t max_len);

/* Consumes a prefix of in[0..len) and reports at most one chunk in *out.
 * Returns the number of bytes consumed (possibly 0, when it reports the END
 * of a message), or -1 when the input is refused: then d->status is
 * UNIMPLEMENTED (compressed flag set) or RESOURCE_EXHAUSTED (the length is
 * over max_len) and d->err the message. Call it in a loop until every byte is
 * consumed and out->kind is GRPC_CHUNK_NONE. A zero-length message yields
 * START then END. */
long grpc_decoder_feed(grpc_decoder_t *d, const uint8_t *in, size_t len, grpc_chunk_t *out);

/* 1 when the decoder is between messages (no partial prefix or body). */
int grpc_decoder_idle(const grpc_decoder_t *d);

/* --------------------------------------------------------------- encoding */

/* Writes the prefix of an uncompressed message of `len` bytes. */
void grpc_prefix_encode(uint8_t out[GRPC_PREFIX_LEN], uint32_t len);

/* Percent-encodes `in` as a grpc-message value: every byte outside
 * 0x20..0x7E, and '%' itself, becomes "%XX" (upper-case hex). Writes at most
 * cap-1 bytes plus a NUL (never splitting an escape) and returns the length
 * the whole encoding needs, excluding the NUL (like snprintf). */
size_t grpc_message_encode(const char *in, size_t len, char *out, size_t cap);

/* Reverses grpc_message_encode (for tests and clients). `out` needs len+1
 * bytes and may equal `in`; malformed escapes are kept verbatim, as the spec
 * asks of clients. Returns the decoded length; out is NUL-terminated. */
size_t grpc_message_decode(const char *in, size_t len, char *out);

#endif
