/* lt_floor.c -- see lt_floor.h. */
#include "lt_floor.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- relay */

typedef struct relay relay_t;

typedef struct rconn {
    uv_tcp_t tcp;
    relay_t *r;
    struct rconn *peer;
    char buf[65536];
} rconn_t;

struct relay {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    pthread_t thread;
    int port;
    rconn_t *conns[2];
    int n;
};

typedef struct {
    uv_write_t w;
    char data[];
} rwrite_t;

static void r_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void r_alloc(uv_handle_t *h, size_t sugg, uv_buf_t *b)
{
    (void)sugg;
    rconn_t *c = h->data;
    b->base = c->buf;
    b->len = sizeof c->buf;
}

static void r_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    rconn_t *c = s->data;
    if (n <= 0)
        return; /* EOF or error: the test is ending; stop closes everything */
    rconn_t *p = c->peer;
    if (p == NULL)
        return;
    size_t len = (size_t)n, done = 0;
    if (p->tcp.write_queue_size == 0) {
        uv_buf_t ob = uv_buf_init(b->base, (unsigned)len);
        int w = uv_try_write((uv_stream_t *)&p->tcp, &ob, 1);
        if (w > 0)
            done = (size_t)w;
    }
    if (done < len) {
        rwrite_t *w = malloc(sizeof *w + (len - done));
        if (!w)
            return;
        memcpy(w->data, b->base + done, len - done);
        uv_buf_t ob = uv_buf_init(w->data, (unsigned)(len - done));
        if (uv_write(&w->w, (uv_stream_t *)&p->tcp, &ob, 1, r_written) < 0)
            free(w);
    }
}

static void r_conn(uv_stream_t *l, int status)
{
    relay_t *r = l->data;
    if (status < 0 || r->n >= 2)
        return;
    rconn_t *c = calloc(1, sizeof *c);
    c->r = r;
    uv_tcp_init(&r->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
        free(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    r->conns[r->n++] = c;
    if (r->n == 2) {
        r->conns[0]->peer = r->conns[1];
        r->conns[1]->peer = r->conns[0];
        uv_read_start((uv_stream_t *)&r->conns[0]->tcp, r_alloc, r_read);
        uv_read_start((uv_stream_t *)&r->conns[1]->tcp, r_alloc, r_read);
    }
}

static void r_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void r_stop(uv_async_t *a)
{
    uv_walk(a->loop, r_close_walk, NULL);
}

static void *r_main(void *arg)
{
    relay_t *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    return NULL;
}

/* ---------------------------------------------------------------- clients */

typedef struct fclient {
    uv_tcp_t tcp;
    uv_connect_t creq;
    lt_floor_t *f;
    int is_b;
    bool connected;
    uint8_t *in;
    size_t in_len;
} fclient_t;

struct lt_floor {
    uv_loop_t *loop;
    relay_t *relay;
    fclient_t a, b;
    size_t rec;
    lt_floor_recv_cb cb;
    void *ctx;
    int closing;
};

static void f_alloc(uv_handle_t *h, size_t sugg, uv_buf_t *b)
{
    (void)sugg;
    fclient_t *c = h->data;
    size_t cap = c->f->rec * 512;
    b->base = (char *)c->in + c->in_len;
    b->len = cap - c->in_len;
}

static void f_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    fclient_t *c = s->data;
    if (n <= 0)
        return;
    c->in_len += (size_t)n;
    uint64_t now = uv_hrtime();
    size_t p = 0, rec = c->f->rec;
    while (c->in_len - p >= rec) {
        uint64_t t;
        memcpy(&t, c->in + p, 8);
        c->f->cb(c->f->ctx, c->is_b, t, now);
        p += rec;
    }
    memmove(c->in, c->in + p, c->in_len - p);
    c->in_len -= p;
}

static void f_connected(uv_connect_t *req, int status)
{
    fclient_t *c = req->handle->data;
    if (status < 0) {
        fprintf(stderr, "floor: connect to relay failed: %s\n", uv_strerror(status));
        return;
    }
    c->connected = true;
    uv_read_start((uv_stream_t *)&c->tcp, f_alloc, f_read);
}

static int f_connect(lt_floor_t *f, fclient_t *c, int is_b, int port)
{
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    c->f = f;
    c->is_b = is_b;
    c->in = malloc(f->rec * 512);
    uv_tcp_init(f->loop, &c->tcp);
    c->tcp.data = c;
    uv_tcp_nodelay(&c->tcp, 1);
    return uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&sa, f_connected);
}

lt_floor_t *lt_floor_start(uv_loop_t *loop, size_t record_bytes, lt_floor_recv_cb cb, void *ctx)
{
    if (record_bytes < 16)
        record_bytes = 16;
    relay_t *r = calloc(1, sizeof *r);
    uv_loop_init(&r->loop);
    uv_tcp_init(&r->loop, &r->listener);
    r->listener.data = r;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    if (uv_tcp_bind(&r->listener, (const struct sockaddr *)&sa, 0) < 0 ||
        uv_listen((uv_stream_t *)&r->listener, 8, r_conn) < 0) {
        fprintf(stderr, "floor: cannot listen on 127.0.0.1\n");
        return NULL;
    }
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    uv_tcp_getsockname(&r->listener, (struct sockaddr *)&ss, &sl);
    r->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_async_init(&r->loop, &r->stop, r_stop);
    if (pthread_create(&r->thread, NULL, r_main, r) != 0) {
        fprintf(stderr, "floor: cannot start the relay thread\n");
        return NULL;
    }
    lt_floor_t *f = calloc(1, sizeof *f);
    f->loop = loop;
    f->relay = r;
    f->rec = record_bytes;
    f->cb = cb;
    f->ctx = ctx;
    /* A connects first so the relay's pairing is deterministic (it does not
     * care which is which: it just joins the two). */
    f_connect(f, &f->a, 0, r->port);
    f_connect(f, &f->b, 1, r->port);
    return f;
}

int lt_floor_ready(const lt_floor_t *f)
{
    return f->a.connected && f->b.connected && f->relay->n == 2;
}

typedef struct {
    uv_write_t w;
    uint8_t data[];
} fwrite_t;

static void f_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

int lt_floor_send(lt_floor_t *f, int to_b, uint64_t intended_ns)
{
    fclient_t *c = to_b ? &f->a : &f->b;
    if (!c->connected)
        return -1;
    uint8_t rec[4096];
    size_t len = f->rec <= sizeof rec ? f->rec : sizeof rec;
    memset(rec, 'x', len);
    memcpy(rec, &intended_ns, 8);
    size_t done = 0;
    if (c->tcp.write_queue_size == 0) {
        uv_buf_t b = uv_buf_init((char *)rec, (unsigned)len);
        int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (w > 0)
            done = (size_t)w;
    }
    if (done < len) {
        fwrite_t *w = malloc(sizeof *w + (len - done));
        memcpy(w->data, rec + done, len - done);
        uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)(len - done));
        if (uv_write(&w->w, (uv_stream_t *)&c->tcp, &b, 1, f_written) < 0) {
            free(w);
            return -1;
        }
    }
    return 0;
}

static void f_closed(uv_handle_t *h)
{
    fclient_t *c = h->data;
    c->f->closing--;
}

void lt_floor_stop(lt_floor_t *f)
{
    if (!f)
        return;
    f->closing = 2;
    uv_close((uv_handle_t *)&f->a.tcp, f_closed);
    uv_close((uv_handle_t *)&f->b.tcp, f_closed);
    while (f->closing > 0)
        uv_run(f->loop, UV_RUN_ONCE);
    uv_async_send(&f->relay->stop);
    pthread_join(f->relay->thread, NULL);
    for (int i = 0; i < f->relay->n; i++)
        free(f->relay->conns[i]);
    free(f->relay);
    free(f->a.in);
    free(f->b.in);
    free(f);
}
