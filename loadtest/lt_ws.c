/* lt_ws.c -- see lt_ws.h. One uv_tcp_t per socket; writes go out with
 * uv_try_write and fall back to a queued uv_write for what is left, so the
 * common case costs one syscall and no allocation beyond the frame. */
#include "lt_ws.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_MAX_MESSAGE (16u * 1024 * 1024)

enum { ST_NEW, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_CLOSED };

struct lt_ws {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_loop_t *loop;
    const lt_ws_callbacks_t *cbs;
    void *ctx;
    int state;
    const char *close_why;
    char *req;          /* the upgrade request until written */
    uint8_t *in;        /* unparsed input */
    size_t in_len, in_cap;
    uint8_t *msg;       /* fragments being reassembled */
    size_t msg_len, msg_cap;
    uint32_t mask_state;
    bool closed_cb_done;
};

typedef struct {
    uv_write_t w;
    size_t len;
    uint8_t data[];
} wreq_t;

lt_ws_t *lt_ws_new(uv_loop_t *loop, const lt_ws_callbacks_t *cbs, void *ctx)
{
    lt_ws_t *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->loop = loop;
    ws->cbs = cbs;
    ws->ctx = ctx;
    ws->mask_state = (uint32_t)(uintptr_t)ws ^ (uint32_t)uv_hrtime() ^ 0x9e3779b9u;
    if (ws->mask_state == 0)
        ws->mask_state = 1;
    return ws;
}

void lt_ws_free(lt_ws_t *ws)
{
    if (!ws)
        return;
    free(ws->req);
    free(ws->in);
    free(ws->msg);
    free(ws);
}

int lt_ws_is_open(const lt_ws_t *ws)
{
    return ws->state == ST_OPEN;
}

size_t lt_ws_write_queue(const lt_ws_t *ws)
{
    return ws->state >= ST_CONNECTING && ws->state < ST_CLOSED ? ws->tcp.write_queue_size : 0;
}

static void on_tcp_closed(uv_handle_t *h)
{
    lt_ws_t *ws = h->data;
    ws->state = ST_CLOSED;
    if (!ws->closed_cb_done) {
        ws->closed_cb_done = true;
        if (ws->cbs->on_close)
            ws->cbs->on_close(ws, ws->ctx, ws->close_why ? ws->close_why : "closed");
    }
}

static void shut(lt_ws_t *ws, const char *why)
{
    if (ws->state == ST_CLOSING || ws->state == ST_CLOSED)
        return;
    if (!ws->close_why)
        ws->close_why = why;
    ws->state = ST_CLOSING;
    uv_close((uv_handle_t *)&ws->tcp, on_tcp_closed);
}

static void on_written(uv_write_t *w, int status)
{
    wreq_t *r = (wreq_t *)w;
    lt_ws_t *ws = w->handle->data;
    free(r);
    if (status < 0 && status != UV_ECANCELED)
        shut(ws, "write failed");
}

/* Writes `len` bytes: as much as the kernel takes now, the rest queued. */
static int raw_write(lt_ws_t *ws, const uint8_t *data, size_t len)
{
    int n = 0;
    if (ws->tcp.write_queue_size == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        n = uv_try_write((uv_stream_t *)&ws->tcp, &b, 1);
        if (n == UV_EAGAIN)
            n = 0;
        if (n < 0) {
            shut(ws, "write failed");
            return -1;
        }
        if ((size_t)n == len)
            return 0;
    }
    size_t rest = len - (size_t)n;
    wreq_t *r = malloc(sizeof *r + rest);
    if (!r)
        return -1;
    r->len = rest;
    memcpy(r->data, data + n, rest);
    uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)rest);
    if (uv_write(&r->w, (uv_stream_t *)&ws->tcp, &b, 1, on_written) < 0) {
        free(r);
        shut(ws, "write failed");
        return -1;
    }
    return 0;
}

static uint32_t next_mask(lt_ws_t *ws)
{
    uint32_t x = ws->mask_state;
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    return ws->mask_state = x;
}

static int send_frame(lt_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    uint8_t stackbuf[512];
    size_t hl = 2 + 4 + (len < 126 ? 0 : len < 65536 ? 2 : 8);
    uint8_t *f = hl + len <= sizeof stackbuf ? stackbuf : malloc(hl + len);
    if (!f)
        return -1;
    size_t p = 0;
    f[p++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        f[p++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        f[p++] = 0x80 | 126;
        f[p++] = (uint8_t)(len >> 8);
        f[p++] = (uint8_t)len;
    } else {
        f[p++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            f[p++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint32_t m = next_mask(ws);
    uint8_t mk[4] = { (uint8_t)(m >> 24), (uint8_t)(m >> 16), (uint8_t)(m >> 8), (uint8_t)m };
    memcpy(f + p, mk, 4);
    p += 4;
    for (size_t i = 0; i < len; i++)
        f[p + i] = data[i] ^ mk[i & 3];
    int rc = raw_write(ws, f, p + len);
    if (f != stackbuf)
        free(f);
    return rc;
}

int lt_ws_send(lt_ws_t *ws, const uint8_t *data, size_t len)
{
    if (ws->state != ST_OPEN)
        return -1;
    return send_frame(ws, 2, data, len);
}

void lt_ws_close(lt_ws_t *ws)
{
    if (ws->state == ST_OPEN) {
        uint8_t code[2] = { 0x03, 0xe9 }; /* 1001 going away */
        send_frame(ws, 8, code, 2);
    }
    if (ws->state == ST_NEW) {
        ws->state = ST_CLOSED;
        return;
    }
    shut(ws, "closed by caller");
}

static void on_alloc(uv_handle_t *h, size_t sugg, uv_buf_t *buf)
{
    lt_ws_t *ws = h->data;
    (void)sugg;
    if (ws->in_cap - ws->in_len < 4096) {
        size_t cap = ws->in_cap ? ws->in_cap * 2 : 8192;
        while (cap - ws->in_len < 4096)
            cap *= 2;
        uint8_t *n = realloc(ws->in, cap);
        if (!n) {
            buf->base = NULL;
            buf->len = 0;
            return;
        }
        ws->in = n;
        ws->in_cap = cap;
    }
    buf->base = (char *)ws->in + ws->in_len;
    buf->len = ws->in_cap - ws->in_len;
}

/* Parses complete frames from ws->in; returns false once the socket shut. */
static bool parse_frames(lt_ws_t *ws)
{
    size_t p = 0;
    while (ws->state == ST_OPEN) {
        size_t avail = ws->in_len - p;
        if (avail < 2)
            break;
        const uint8_t *f = ws->in + p;
        bool fin = f[0] & 0x80;
        int op = f[0] & 0x0f;
        bool masked = f[1] & 0x80;
        uint64_t len = f[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = ((uint64_t)f[2] << 8) | f[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | f[2 + i];
            hl = 10;
        }
        if (masked)
            hl += 4;
        if (len > WS_MAX_MESSAGE) {
            shut(ws, "frame too large");
            return false;
        }
        if (avail < hl + len)
            break;
        uint8_t *pl = (uint8_t *)f + hl;
        if (masked)
            for (uint64_t i = 0; i < len; i++)
                pl[i] ^= f[hl - 4 + (i & 3)];
        p += hl + (size_t)len;
        if (op == 9) {
            send_frame(ws, 10, pl, (size_t)len);
        } else if (op == 10) {
            /* pong: nothing */
        } else if (op == 8) {
            send_frame(ws, 8, pl, len >= 2 ? 2 : 0);
            shut(ws, "closed by peer");
            return false;
        } else if (op == 0 || op == 1 || op == 2) {
            if (op != 0 && fin && ws->msg_len == 0) {
                ws->cbs->on_message(ws, ws->ctx, pl, (size_t)len);
            } else {
                if (ws->msg_len + len > WS_MAX_MESSAGE) {
                    shut(ws, "message too large");
                    return false;
                }
                if (ws->msg_len + len > ws->msg_cap) {
                    size_t cap = (ws->msg_len + (size_t)len) * 2;
                    uint8_t *n = realloc(ws->msg, cap);
                    if (!n) {
                        shut(ws, "out of memory");
                        return false;
                    }
                    ws->msg = n;
                    ws->msg_cap = cap;
                }
                memcpy(ws->msg + ws->msg_len, pl, (size_t)len);
                ws->msg_len += (size_t)len;
                if (fin) {
                    size_t ml = ws->msg_len;
                    ws->msg_len = 0;
                    ws->cbs->on_message(ws, ws->ctx, ws->msg, ml);
                }
            }
        } else {
            shut(ws, "bad opcode");
            return false;
        }
    }
    if (p) {
        memmove(ws->in, ws->in + p, ws->in_len - p);
        ws->in_len -= p;
    }
    return ws->state == ST_OPEN;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    lt_ws_t *ws = s->data;
    (void)buf;
    if (n < 0) {
        shut(ws, n == UV_EOF ? "closed by peer" : "read failed");
        return;
    }
    if (n == 0)
        return;
    ws->in_len += (size_t)n;
    if (ws->state == ST_HANDSHAKE) {
        uint8_t *end = memmem(ws->in, ws->in_len, "\r\n\r\n", 4);
        if (!end) {
            if (ws->in_len > 8192)
                shut(ws, "bad handshake");
            return;
        }
        if (ws->in_len < 12 || memcmp(ws->in, "HTTP/1.1 101", 12) != 0) {
            shut(ws, "upgrade refused");
            return;
        }
        size_t hl = (size_t)(end - ws->in) + 4;
        memmove(ws->in, ws->in + hl, ws->in_len - hl);
        ws->in_len -= hl;
        ws->state = ST_OPEN;
        if (ws->cbs->on_open)
            ws->cbs->on_open(ws, ws->ctx);
    }
    if (ws->state == ST_OPEN)
        parse_frames(ws);
}

static void on_connected(uv_connect_t *req, int status)
{
    lt_ws_t *ws = req->handle->data;
    if (ws->state != ST_CONNECTING)
        return;
    if (status < 0) {
        shut(ws, "connect failed");
        return;
    }
    ws->state = ST_HANDSHAKE;
    uv_read_start((uv_stream_t *)&ws->tcp, on_alloc, on_read);
    raw_write(ws, (const uint8_t *)ws->req, strlen(ws->req));
    free(ws->req);
    ws->req = NULL;
}

int lt_ws_connect(lt_ws_t *ws, const char *host, int port, const char *path,
                  const char *subprotocol)
{
    struct sockaddr_in sa;
    if (ws->state != ST_NEW || uv_ip4_addr(host, port, &sa) != 0)
        return -1;
    char key[25];
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 21; i++)
        key[i] = b64[next_mask(ws) % 64];
    key[21] = 'A', key[22] = '=', key[23] = '=', key[24] = 0; /* 16 bytes, base64 */
    size_t cap = 512 + strlen(host) + strlen(path) + strlen(subprotocol);
    ws->req = malloc(cap);
    if (!ws->req)
        return -1;
    snprintf(ws->req, cap,
             "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Protocol: %s\r\n\r\n",
             path, host, port, key, subprotocol);
    uv_tcp_init(ws->loop, &ws->tcp);
    ws->tcp.data = ws;
    uv_tcp_nodelay(&ws->tcp, 1);
    ws->state = ST_CONNECTING;
    int rc = uv_tcp_connect(&ws->creq, &ws->tcp, (const struct sockaddr *)&sa, on_connected);
    if (rc < 0) {
        shut(ws, "connect failed");
        return 0; /* on_close reports it */
    }
    return 0;
}
