/* grpc_frame.c -- see grpc_frame.h. Pure: no allocation, no I/O. */
#include "h2/grpc_frame.h"

#include <stdio.h>
#include <string.h>

void grpc_decoder_init(grpc_decoder_t *d, uint32_t max_len)
{
    memset(d, 0, sizeof *d);
    d->state = GRPC_DEC_PREFIX;
    d->max_len = max_len;
}

int grpc_decoder_idle(const grpc_decoder_t *d)
{
    return d->state == GRPC_DEC_PREFIX && d->prefix_have == 0 && !d->end_pending;
}

static long fail(grpc_decoder_t *d, int status)
{
    d->state = GRPC_DEC_ERROR;
    d->status = status;
    return -1;
}

/* The decoder is a two-state machine (prefix, body). It reports the END of a
 * message as a separate step with nothing consumed, so that a caller can act
 * on the complete message (and, for unary calls, refuse any byte after it)
 * before it feeds the next bytes. */
long grpc_decoder_feed(grpc_decoder_t *d, const uint8_t *in, size_t len, grpc_chunk_t *out)
{
    out->kind = GRPC_CHUNK_NONE;
    out->data = NULL;
    out->len = 0;

    if (d->state == GRPC_DEC_ERROR)
        return -1;
    if (d->end_pending) {
        d->end_pending = 0;
        d->messages++;
        d->state = GRPC_DEC_PREFIX;
        d->prefix_have = 0;
        out->kind = GRPC_CHUNK_END;
        return 0;
    }
    if (len == 0)
        return 0;

    if (d->state == GRPC_DEC_PREFIX) {
        size_t n = GRPC_PREFIX_LEN - d->prefix_have;
        if (n > len)
            n = len;
        memcpy(d->prefix + d->prefix_have, in, n);
        d->prefix_have += (unsigned)n;
        if (d->prefix_have < GRPC_PREFIX_LEN)
            return (long)n;

        uint32_t msg_len = (uint32_t)d->prefix[1] << 24 | (uint32_t)d->prefix[2] << 16 |
                           (uint32_t)d->prefix[3] << 8 | (uint32_t)d->prefix[4];
        if (d->prefix[0] != 0) {
            snprintf(d->err, sizeof d->err, "compressed messages are not supported");
            return fail(d, GRPC_STATUS_UNIMPLEMENTED);
        }
        if (msg_len > d->max_len) {
            snprintf(d->err, sizeof d->err, "message of %lu bytes exceeds the limit of %lu",
                     (unsigned long)msg_len, (unsigned long)d->max_len);
            return fail(d, GRPC_STATUS_RESOURCE_EXHAUSTED);
        }
        d->msg_len = msg_len;
        d->body_have = 0;
        d->state = GRPC_DEC_BODY;
        d->end_pending = msg_len == 0;
        out->kind = GRPC_CHUNK_START;
        out->len = msg_len;
        return (long)n;
    }

    /* GRPC_DEC_BODY */
    size_t n = d->msg_len - d->body_have;
    if (n > len)
        n = len;
    d->body_have += (uint32_t)n;
    d->end_pending = d->body_have == d->msg_len;
    out->kind = GRPC_CHUNK_BODY;
    out->data = in;
    out->len = n;
    return (long)n;
}

void grpc_prefix_encode(uint8_t out[GRPC_PREFIX_LEN], uint32_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

/* gRPC PROTOCOL-HTTP2.md: "Percent-Encoded := 1*(Percent-Byte-Unencoded /
 * Percent-Byte-Encoded); Percent-Byte-Unencoded := 1*( %x20-%x24 / %x26-%x7E )".
 * UTF-8 text is encoded byte by byte. */
size_t grpc_message_encode(const char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t need = 0, w = 0;
    int full = cap == 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int plain = c >= 0x20 && c <= 0x7E && c != '%';
        size_t n = plain ? 1 : 3;
        need += n;
        if (full || w + n > cap - 1) {
            full = 1;
            continue;
        }
        if (plain) {
            out[w++] = (char)c;
        } else {
            out[w++] = '%';
            out[w++] = hex[c >> 4];
            out[w++] = hex[c & 15];
        }
    }
    if (cap > 0)
        out[w] = '\0';
    return need;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

size_t grpc_message_decode(const char *in, size_t len, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '%' && i + 2 < len && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            out[w++] = (char)(hexval(in[i + 1]) << 4 | hexval(in[i + 2]));
            i += 2;
        } else {
            out[w++] = in[i];
        }
    }
    out[w] = '\0';
    return w;
}
