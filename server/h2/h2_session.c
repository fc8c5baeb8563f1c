/* h2_session.c -- one gRPC connection: socket, nghttp2 server session,
 * streams (after nghttp2 examples/libevent-server.c and h2o lib/http2).
 *
 * Input: uv_read bytes go straight to nghttp2_session_mem_recv, whose
 * callbacks build a stream per request HEADERS, check the request headers,
 * decode DATA with grpc_frame.c and, at END_STREAM, unpack the one request
 * message with a budgeted allocator and hand it to the hub.
 *
 * Output: responses are submitted to nghttp2 (headers + a data provider that
 * reads the stream's queue of length-prefixed messages, then trailers; or a
 * single trailers-only HEADERS for early errors). Nothing is written from
 * inside a callback: h2_frontend__schedule() puts the connection on the
 * pending list and h2_conn__flush(), run once per loop turn from a
 * uv_prepare, copies nghttp2_session_mem_send output into `out` and keeps at
 * most one uv_write in flight (double buffer, h2o style).
 *
 * Backpressure: reading stops while unsent output is over max_queued_bytes/2;
 * HTTP/2 flow control bounds what the data provider may send; a subscriber
 * whose queued events would push the connection over max_queued_bytes gets
 * RESOURCE_EXHAUSTED and the connection is closed (GOAWAY, then close).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "h2/grpc_frame.h"
#include "h2/h2_internal.h"
#include "log/log.h"
#include "mhtas/v1/hub.pb-c.h"
#include "util/alloc.h"
#include "util/pb_budget.h"

_Static_assert(GRPC_STATUS_UNIMPLEMENTED == HUB_GRPC_UNIMPLEMENTED, "grpc_frame.h status");
_Static_assert(GRPC_STATUS_RESOURCE_EXHAUSTED == HUB_GRPC_RESOURCE_EXHAUSTED, "grpc_frame.h status");

#define H2_DRAIN_GRACE_MS 1000  /* after our GOAWAY, before we close anyway */
#define H2_FINAL_FLUSH_MS 250   /* after the last statuses, before we close anyway */
#define H2_MAX_HEADERS 100      /* header fields per request */
#define H2_MIN_SOFT_OUT 16384   /* drain at least this much of nghttp2 per flush */
#define H2_KEEP_WBUF 65536      /* larger write buffers are freed once written */

/* One queued outgoing message (prefix included). Only the head of a queue can
 * be partly handed to nghttp2 (off > 0). */
typedef struct h2_msg {
    struct h2_msg *next;
    size_t len, off;
    uint8_t data[];
} h2_msg_t;

struct h2_stream {
    h2_conn_t *conn;
    h2_stream_t *prev, *next;
    int32_t id;

    /* request headers */
    const hub_method_t *method;
    char path[64];              /* the :path, cut, for "unknown method" */
    bool post, grpc_ct, ct_seen;
    unsigned n_auth;
    const hub_user_t *user;
    size_t header_bytes;
    unsigned n_headers;
    bool headers_too_big;

    /* request body */
    grpc_decoder_t dec;
    uint8_t *body;
    size_t body_len;
    bool dispatched;            /* decided: handed to the hub, or refused */

    /* response */
    bool responded;             /* HEADERS submitted */
    bool finished;              /* final status decided; trailers after the queue */
    bool deferred;              /* the data provider returned NGHTTP2_ERR_DEFERRED */
    int http_status;
    int status;
    char message[160];
    h2_msg_t *q_head, *q_tail;
    hub_call_t *call;
    hub_sub_t *sub;
};

static void conn_teardown(h2_conn_t *c);

static const hub_config_t *cfg_of(h2_conn_t *c)
{
    return c->fe->cfg;
}

static uint64_t now_ms(h2_conn_t *c)
{
    return uv_now(c->fe->loop);
}

/* ================================================================ streams */

static h2_stream_t *stream_new(h2_conn_t *c, int32_t id)
{
    h2_stream_t *s = hub_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->conn = c;
    s->id = id;
    s->http_status = 200;
    grpc_decoder_init(&s->dec, cfg_of(c)->max_message_bytes);
    s->next = c->streams;
    if (c->streams)
        c->streams->prev = s;
    c->streams = s;
    if (c->n_streams++ == 0) {
        c->last_ping_ms = now_ms(c);
        c->pings_outstanding = 0;
    }
    return s;
}

static void queue_drop(h2_stream_t *s, bool keep_started_head)
{
    h2_msg_t *m = s->q_head, **link = &s->q_head;
    if (keep_started_head && m != NULL && m->off > 0) {
        link = &m->next;
        m = m->next;
        s->q_tail = s->q_head;
    } else {
        s->q_tail = NULL;
    }
    *link = NULL;
    while (m != NULL) {
        h2_msg_t *next = m->next;
        s->conn->queued_bytes -= m->len - m->off;
        hub_free(m);
        m = next;
    }
}

/* Frees a stream's state and undoes its ties to the hub. Called from the
 * stream-close callback and from the connection teardown (nghttp2_session_del
 * does not call the stream-close callback). */
static void stream_free(h2_stream_t *s)
{
    h2_conn_t *c = s->conn;
    if (s->call != NULL) {
        hub_call_t *call = s->call;
        s->call = NULL;
        hub_call_cancel(call);
    }
    if (s->sub != NULL) {
        hub_sub_t *sub = s->sub;
        s->sub = NULL;
        hub_unsubscribe(sub);
    }
    queue_drop(s, false);
    hub_free(s->body);
    if (s->prev)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (--c->n_streams == 0)
        c->last_activity_ms = now_ms(c);
    hub_free(s);
}

/* Appends a length-prefixed copy of pb[0..len). Returns 0, or -1 when out of
 * memory. */
static int queue_push(h2_stream_t *s, const uint8_t *pb, size_t len)
{
    h2_msg_t *m = hub_malloc(sizeof *m + GRPC_PREFIX_LEN + len);
    if (m == NULL)
        return -1;
    m->next = NULL;
    m->off = 0;
    m->len = GRPC_PREFIX_LEN + len;
    grpc_prefix_encode(m->data, (uint32_t)len);
    if (len > 0)
        memcpy(m->data + GRPC_PREFIX_LEN, pb, len);
    if (s->q_tail)
        s->q_tail->next = m;
    else
        s->q_head = m;
    s->q_tail = m;
    s->conn->queued_bytes += m->len;
    return 0;
}

static const char *method_name(const h2_stream_t *s)
{
    return s->method ? s->method->name : "-";
}

/* nghttp2 copies header names and values on submit, so stack buffers do. */
#define NV(n, v, vl)                                                                      \
    {                                                                                     \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE         \
    }

static int status_nva(const h2_stream_t *s, nghttp2_nv *nva, char *code, size_t codecap,
                      char *msg, size_t msgcap)
{
    int n = snprintf(code, codecap, "%d", s->status);
    nva[0] = (nghttp2_nv)NV("grpc-status", code, (size_t)n);
    if (s->message[0] == '\0')
        return 1;
    size_t need = grpc_message_encode(s->message, strlen(s->message), msg, msgcap);
    nva[1] = (nghttp2_nv)NV("grpc-message", msg, need < msgcap ? need : strlen(msg));
    return 2;
}

static ssize_t data_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    h2_stream_t *s = source->ptr;
    h2_conn_t *c = user_data;
    size_t w = 0;

    while (w < length && s->q_head != NULL) {
        h2_msg_t *m = s->q_head;
        size_t n = m->len - m->off;
        if (n > length - w)
            n = length - w;
        memcpy(buf + w, m->data + m->off, n);
        m->off += n;
        w += n;
        c->queued_bytes -= n;
        if (m->off == m->len) {
            s->q_head = m->next;
            if (s->q_head == NULL)
                s->q_tail = NULL;
            hub_free(m);
        }
    }
    if (s->q_head == NULL && s->finished) {
        char code[16], msg[512];
        nghttp2_nv nva[2];
        int n = status_nva(s, nva, code, sizeof code, msg, sizeof msg);
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(session, stream_id, nva, (size_t)n) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return (ssize_t)w;
    }
    if (w == 0) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)w;
}

/* Response HEADERS with a data provider: the queue, then trailers. */
static void submit_response(h2_stream_t *s)
{
    h2_conn_t *c = s->conn;
    nghttp2_nv nva[] = {
        NV(":status", "200", 3),
        NV("content-type", "application/grpc", 16),
    };
    nghttp2_data_provider dp;
    dp.source.ptr = s;
    dp.read_callback = data_read_cb;
    s->responded = true;
    int rv = nghttp2_submit_response(c->session, s->id, nva, 2, &dp);
    if (rv != 0) {
        hub_log(HUB_LOG_WARN, "h2", "event=submit_failed conn=%" PRIu64 " stream=%d err=%s", c->id,
                s->id, nghttp2_strerror(rv));
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    }
}

/* A single HEADERS frame with END_STREAM carrying the status. */
static void submit_trailers_only(h2_stream_t *s)
{
    h2_conn_t *c = s->conn;
    char st[8], code[16], msg[512];
    int stlen = snprintf(st, sizeof st, "%d", s->http_status);
    nghttp2_nv nva[4] = {
        NV(":status", st, (size_t)stlen),
        NV("content-type", "application/grpc", 16),
    };
    int n = status_nva(s, nva + 2, code, sizeof code, msg, sizeof msg);
    s->responded = true;
    int rv = nghttp2_submit_response(c->session, s->id, nva, (size_t)(2 + n), NULL);
    if (rv != 0) {
        hub_log(HUB_LOG_WARN, "h2", "event=submit_failed conn=%" PRIu64 " stream=%d err=%s", c->id,
                s->id, nghttp2_strerror(rv));
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    }
}

/* Decides the final status of a stream (once). Before any HEADERS went out
 * and with nothing queued, that is a trailers-only response; otherwise the
 * data provider sends what is queued and then the trailers. */
static void stream_finish(h2_stream_t *s, int status, const char *message)
{
    h2_conn_t *c = s->conn;
    if (s->finished)
        return;
    s->finished = true;
    s->dispatched = true;
    s->status = status;
    snprintf(s->message, sizeof s->message, "%s", status != HUB_GRPC_OK && message ? message : "");
    if (s->sub != NULL) {
        hub_sub_t *sub = s->sub;
        s->sub = NULL;
        hub_unsubscribe(sub);
    }
    if (status != HUB_GRPC_OK) {
        c->fe->stats->errors_total++;
        hub_log(HUB_LOG_INFO, "h2", "event=call_error conn=%" PRIu64 " stream=%d method=%s status=%d",
                c->id, s->id, method_name(s), status);
    }
    if (!s->responded) {
        if (s->q_head == NULL)
            submit_trailers_only(s);
        else
            submit_response(s);
    } else if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(c->session, s->id);
    }
    h2_frontend__schedule(c->fe, c);
}

static void stream_refuse(h2_stream_t *s, int http_status, int status, const char *message)
{
    s->http_status = http_status;
    stream_finish(s, status, message);
}

/* ============================================================ hub replies */

static void on_reply(void *ctx, const hub_reply_t *reply)
{
    h2_stream_t *s = ctx;
    s->call = NULL;
    if (s->conn->state == H2_CONN_CLOSING || s->finished)
        return;
    if (reply->status != HUB_GRPC_OK) {
        stream_finish(s, reply->status, reply->message ? reply->message : "the request failed");
        return;
    }
    if (reply->msg == NULL) {
        stream_finish(s, HUB_GRPC_INTERNAL, "the hub gave no response");
        return;
    }
    size_t len = protobuf_c_message_get_packed_size(reply->msg);
    if (len > UINT32_MAX - GRPC_PREFIX_LEN) {
        stream_finish(s, HUB_GRPC_INTERNAL, "the response is too large");
        return;
    }
    h2_msg_t *m = hub_malloc(sizeof *m + GRPC_PREFIX_LEN + len);
    if (m == NULL) {
        stream_finish(s, HUB_GRPC_RESOURCE_EXHAUSTED, "the hub is out of memory");
        return;
    }
    m->next = NULL;
    m->off = 0;
    m->len = GRPC_PREFIX_LEN + len;
    grpc_prefix_encode(m->data, (uint32_t)len);
    protobuf_c_message_pack(reply->msg, m->data + GRPC_PREFIX_LEN);
    assert(s->q_head == NULL);
    s->q_head = s->q_tail = m;
    s->conn->queued_bytes += m->len;
    stream_finish(s, HUB_GRPC_OK, NULL);
}

/* A subscriber's event. Runs inside hub_subscribe (held events) and later
 * from wherever the hub fans out, possibly inside an nghttp2 callback of this
 * very connection: it only queues, resumes the data provider and schedules. */
static void on_event(void *ctx, hub_event_t *ev)
{
    h2_stream_t *s = ctx;
    h2_conn_t *c = s->conn;
    if (c->state == H2_CONN_CLOSING || s->finished)
        return;

    size_t limit = cfg_of(c)->max_queued_bytes;
    if (c->queued_bytes + GRPC_PREFIX_LEN + ev->len > limit || ev->len > UINT32_MAX ||
        queue_push(s, ev->pb, ev->len) != 0) {
        char msg[128];
        hub_log(HUB_LOG_WARN, "h2",
                "event=subscriber_overflow conn=%" PRIu64 " stream=%d queued=%zu limit=%zu", c->id,
                s->id, c->queued_bytes, limit);
        /* Events not yet started are dropped; the client resumes from the
         * last seq it saw. A partly sent event is finished so the trailers
         * arrive on a message boundary. */
        queue_drop(s, true);
        snprintf(msg, sizeof msg, "more than %zu bytes of events queued for this client", limit);
        stream_finish(s, HUB_GRPC_RESOURCE_EXHAUSTED, msg);
        h2_conn__shutdown(c, "subscriber_overflow", H2_DRAIN_GRACE_MS);
        return;
    }
    if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(c->session, s->id);
    }
    h2_frontend__schedule(c->fe, c);
}

/* ============================================================ requests */

static void start_subscribe(h2_stream_t *s, const ProtobufCMessage *msg)
{
    h2_conn_t *c = s->conn;
    const Mhtas__V1__SubscribeRequest *req = (const Mhtas__V1__SubscribeRequest *)msg;
    hub_sub_t *sub = hub_subscribe(c->fe->hub, s->user, req->after_seq, on_event, s);
    if (sub == NULL) {
        queue_drop(s, false);
        stream_finish(s, HUB_GRPC_RESOURCE_EXHAUSTED, "the hub is out of memory");
        return;
    }
    if (s->finished) { /* overflowed while the held events came in */
        hub_unsubscribe(sub);
        return;
    }
    s->sub = sub;
    s->dispatched = true;
    submit_response(s);
    hub_log(HUB_LOG_DEBUG, "h2", "event=subscribe conn=%" PRIu64 " stream=%d after_seq=%" PRIu64,
            c->id, s->id, (uint64_t)req->after_seq);
}

/* END_STREAM from the client: the request is complete. Exactly one message,
 * unpacked within a budget, then the hub. */
static void on_request_end(h2_stream_t *s)
{
    h2_conn_t *c = s->conn;
    if (s->dispatched || s->finished)
        return;
    s->dispatched = true;

    if (!grpc_decoder_idle(&s->dec)) {
        c->fe->stats->bad_input_total++;
        stream_finish(s, HUB_GRPC_INVALID_ARGUMENT, "the request message is truncated");
        return;
    }
    if (s->dec.messages != 1) {
        c->fe->stats->bad_input_total++;
        stream_finish(s, HUB_GRPC_INVALID_ARGUMENT, "the request carries no message");
        return;
    }

    const hub_config_t *cfg = cfg_of(c);
    pb_budget_t budget;
    pb_budget_init(&budget, (size_t)cfg->max_message_bytes * 8 + 65536);
    static const uint8_t empty[1];
    ProtobufCMessage *req = protobuf_c_message_unpack(s->method->input, &budget.allocator,
                                                      s->body_len, s->body ? s->body : empty);
    hub_free(s->body);
    s->body = NULL;
    s->body_len = 0;
    if (req == NULL) {
        char msg[160];
        c->fe->stats->bad_input_total++;
        if (budget.exceeded)
            snprintf(msg, sizeof msg, "request %s is too large to decode", s->method->input->name);
        else
            snprintf(msg, sizeof msg, "request is not a valid %s", s->method->input->name);
        stream_finish(s, budget.exceeded ? HUB_GRPC_RESOURCE_EXHAUSTED : HUB_GRPC_INVALID_ARGUMENT,
                      msg);
        return;
    }

    if (s->method->server_streaming) {
        start_subscribe(s, req);
    } else {
        /* The reply may come before hub_call returns (then NULL) or later. */
        hub_call_t *call = hub_call(c->fe->hub, s->user, s->method, req, on_reply, s);
        if (call != NULL && !s->finished)
            s->call = call;
    }
    protobuf_c_message_free_unpacked(req, &budget.allocator);
}

/* The request HEADERS are complete: check them in the order an HTTP
 * intermediary would care about (method, content-type), then gRPC (path,
 * credentials). Errors go out at once as trailers-only responses; the
 * connection stays open for other calls. */
static void on_request_headers(h2_stream_t *s)
{
    h2_conn_t *c = s->conn;
    char msg[128];
    c->fe->stats->requests_total++;
    c->requests++;

    if (s->headers_too_big) {
        snprintf(msg, sizeof msg, "request headers exceed the limit of %lu bytes",
                 (unsigned long)cfg_of(c)->max_header_bytes);
        stream_refuse(s, 200, HUB_GRPC_RESOURCE_EXHAUSTED, msg);
    } else if (!s->post) {
        stream_refuse(s, 405, HUB_GRPC_INVALID_ARGUMENT, "gRPC requests use POST");
    } else if (!s->grpc_ct) {
        /* gRPC PROTOCOL-HTTP2.md: "servers SHOULD respond with HTTP status
         * of 415", so that a plain HTTP client does not read it as success. */
        stream_refuse(s, 415, HUB_GRPC_INVALID_ARGUMENT, "content-type must be application/grpc");
    } else if (s->method == NULL) {
        snprintf(msg, sizeof msg, "unknown method %s", s->path);
        stream_refuse(s, 200, HUB_GRPC_UNIMPLEMENTED, msg);
    } else if (s->user == NULL) {
        stream_refuse(s, 200, HUB_GRPC_UNAUTHENTICATED, "missing or invalid bearer token");
    }
}

/* Feeds DATA bytes to the stream's decoder. The body buffer is allocated
 * once the prefix gives the length (already checked against the limit). */
static void on_request_data(h2_stream_t *s, const uint8_t *data, size_t len)
{
    h2_conn_t *c = s->conn;
    for (;;) {
        grpc_chunk_t ch;
        long n = grpc_decoder_feed(&s->dec, data, len, &ch);
        if (n < 0) {
            c->fe->stats->bad_input_total++;
            stream_finish(s, s->dec.status, s->dec.err);
            return;
        }
        data += n;
        len -= (size_t)n;
        switch (ch.kind) {
        case GRPC_CHUNK_START:
            if (s->dec.messages > 0) {
                c->fe->stats->bad_input_total++;
                stream_finish(s, HUB_GRPC_INVALID_ARGUMENT,
                              "the request carries more than one message");
                return;
            }
            if (ch.len > 0) {
                s->body = hub_malloc(ch.len);
                if (s->body == NULL) {
                    stream_finish(s, HUB_GRPC_RESOURCE_EXHAUSTED, "the hub is out of memory");
                    return;
                }
            }
            s->body_len = 0;
            break;
        case GRPC_CHUNK_BODY:
            memcpy(s->body + s->body_len, ch.data, ch.len);
            s->body_len += ch.len;
            break;
        case GRPC_CHUNK_END:
            break;
        case GRPC_CHUNK_NONE:
            if (len == 0)
                return;
            break;
        }
    }
}

/* ====================================================== nghttp2 callbacks */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    h2_conn_t *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2_stream_t *s = stream_new(c, frame->hd.stream_id);
    if (s == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM for this one */
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    return 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(name, lit, len) == 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    h2_conn_t *c = user_data;
    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL || s->headers_too_big)
        return 0;

    /* RFC 7541 4.1 entry size: name + value + 32. Counted for trailers too. */
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > cfg_of(c)->max_header_bytes || ++s->n_headers > H2_MAX_HEADERS) {
        s->headers_too_big = true;
        return 0;
    }
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers from a client: nothing in them for us */

    if (name_is(name, namelen, ":method")) {
        s->post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
    } else if (name_is(name, namelen, ":path")) {
        s->method = hub_method_by_path((const char *)value, valuelen);
        size_t n = valuelen < sizeof s->path - 1 ? valuelen : sizeof s->path - 1;
        memcpy(s->path, value, n);
        s->path[n] = '\0';
    } else if (name_is(name, namelen, "content-type")) {
        /* "application/grpc" [("+proto" / "+json" / {custom})]; we only
         * speak protobuf, but +proto and parameters are the same thing. */
        s->ct_seen = true;
        s->grpc_ct = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                     (valuelen == 16 || value[16] == ';' ||
                      (valuelen >= 22 && memcmp(value + 16, "+proto", 6) == 0 &&
                       (valuelen == 22 || value[22] == ';')));
    } else if (name_is(name, namelen, "authorization")) {
        /* One credential only: two authorization fields are refused. */
        s->user = NULL;
        if (++s->n_auth == 1 && valuelen > 7 && strncasecmp((const char *)value, "Bearer ", 7) == 0)
            s->user = hub_authenticate(c->fe->hub, (const char *)value + 7, valuelen - 7);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    h2_conn_t *c = user_data;
    h2_stream_t *s;

    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && c->state == H2_CONN_PREFACE) {
            c->state = H2_CONN_OPEN;
            hub_log(HUB_LOG_TRACE, "h2", "event=conn_state conn=%" PRIu64 " state=open", c->id);
        }
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            c->pings_outstanding = 0;
        break;
    case NGHTTP2_HEADERS:
        s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (s == NULL)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            on_request_headers(s);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            on_request_end(s);
        break;
    case NGHTTP2_DATA:
        s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (s != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            on_request_end(s);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL || s->dispatched || s->finished)
        return 0; /* after a refusal the rest of the body is dropped */
    on_request_data(s, data, len);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    h2_conn_t *c = user_data;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s == NULL)
        return 0;
    if (!s->finished || error_code != NGHTTP2_NO_ERROR)
        hub_log(HUB_LOG_DEBUG, "h2",
                "event=stream_reset conn=%" PRIu64 " stream=%d method=%s h2_error=%u", c->id,
                stream_id, method_name(s), error_code);
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    stream_free(s);
    return 0;
}

static int on_invalid_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                                 int lib_error_code, void *user_data)
{
    h2_conn_t *c = user_data;
    (void)session;
    /* A stream over SETTINGS_MAX_CONCURRENT_STREAMS (clients may open some
     * before our SETTINGS arrive) is refused by nghttp2; that is a limit
     * doing its job, not malformed input. */
    if (lib_error_code != NGHTTP2_ERR_REFUSED_STREAM)
        c->fe->stats->bad_input_total++;
    hub_log(HUB_LOG_DEBUG, "h2", "event=invalid_frame conn=%" PRIu64 " type=%u err=%s", c->id,
            (unsigned)frame->hd.type, nghttp2_strerror(lib_error_code));
    return 0;
}

static int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                    void *user_data)
{
    h2_conn_t *c = user_data;
    (void)session;
    (void)msg;
    (void)len;
    hub_log(HUB_LOG_DEBUG, "h2", "event=h2_error conn=%" PRIu64 " err=%s", c->id,
            nghttp2_strerror(lib_error_code));
    return 0;
}

/* nghttp2 allocates through hub_malloc too, so the test hooks reach it. */
static void *mem_malloc(size_t size, void *ud)
{
    (void)ud;
    return hub_malloc(size);
}
static void mem_free(void *p, void *ud)
{
    (void)ud;
    hub_free(p);
}
static void *mem_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    return hub_calloc(n, size);
}
static void *mem_realloc(void *p, size_t size, void *ud)
{
    (void)ud;
    return hub_realloc(p, size);
}

static int session_new(h2_conn_t *c)
{
    static nghttp2_mem mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    int rv = -1;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        goto fail_cbs;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame_recv);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
    if (nghttp2_option_new(&opt) != 0)
        goto fail_opt;
    /* Our own bound on a header block is max_header_bytes (on_header);
     * nghttp2 bounds CONTINUATION floods and resets (deb12u3 fixes). */
    nghttp2_option_set_max_settings(opt, 32);
    /* RFC 9113 8.2.1 lets nghttp2 reset a stream whose header value has
     * leading or trailing blanks. A client sending "authorization: Bearer "
     * must get UNAUTHENTICATED, not a reset: we treat values as opaque and
     * compare tokens exactly, so the blanks do no harm. */
    nghttp2_option_set_no_rfc9113_leading_and_trailing_ws_validation(opt, 1);
    if (nghttp2_session_server_new3(&c->session, cbs, c, opt, &mem) != 0)
        goto fail_session;

    const hub_config_t *cfg = cfg_of(c);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->max_streams_per_conn},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->max_header_bytes},
    };
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 2) != 0) {
        nghttp2_session_del(c->session);
        c->session = NULL;
        goto fail_session;
    }
    rv = 0;
fail_session:
    nghttp2_option_del(opt);
fail_opt:
    nghttp2_session_callbacks_del(cbs);
fail_cbs:
    return rv;
}

/* ============================================================ socket I/O */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    h2_conn_t *c = handle->data;
    (void)suggested;
    *buf = uv_buf_init((char *)c->fe->readbuf, sizeof c->fe->readbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    h2_conn_t *c = stream->data;
    if (c->state == H2_CONN_CLOSING || c->close_now || nread == 0)
        return;
    if (nread < 0) {
        h2_conn__close(c, nread == UV_EOF ? "peer_closed" : "read_error");
        return;
    }
    c->last_activity_ms = now_ms(c);
    ssize_t rv = nghttp2_session_mem_recv(c->session, (const uint8_t *)buf->base, (size_t)nread);
    if (rv < 0) {
        c->fe->stats->bad_input_total++;
        hub_log(HUB_LOG_INFO, "h2", "event=bad_input conn=%" PRIu64 " peer=%s err=%s", c->id,
                c->peer, nghttp2_strerror((int)rv));
        /* GOAWAY with the error if the session can still send one (it can
         * after a bad preface: our SETTINGS already went), then close once
         * it is flushed; no more input is read. */
        int code = rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR;
        if (nghttp2_session_terminate_session(c->session, (uint32_t)code) != 0) {
            h2_conn__close(c, "bad_input");
            return;
        }
        c->no_read = true;
        c->drain_final = true; /* the session is terminated: nothing more to say */
        c->close_reason = "bad_input";
        c->state = H2_CONN_DRAINING;
        c->drain_deadline_ms = now_ms(c) + H2_DRAIN_GRACE_MS;
    }
    h2_frontend__schedule(c->fe, c);
}

static void on_write(uv_write_t *req, int status)
{
    h2_conn_t *c = req->data;
    c->writing = false;
    c->wbuf_len = 0;
    if (c->wbuf_cap > H2_KEEP_WBUF) {
        /* One large burst should not pin its buffer for the connection's
         * whole life (many idle clients would add up). */
        hub_free(c->wbuf);
        c->wbuf = NULL;
        c->wbuf_cap = 0;
    }
    if (c->state == H2_CONN_CLOSING)
        return;
    if (status < 0) {
        hub_log(HUB_LOG_DEBUG, "h2", "event=write_error conn=%" PRIu64 " err=%s", c->id,
                uv_strerror(status));
        h2_conn__close(c, "write_error");
        return;
    }
    h2_frontend__schedule(c->fe, c);
}

static void on_closed(uv_handle_t *handle)
{
    h2_conn_t *c = handle->data;
    hub_free(c->out);
    hub_free(c->wbuf);
    h2_frontend__conn_freed(c->fe, c);
    hub_free(c);
}

static int out_append(h2_conn_t *c, const uint8_t *data, size_t len)
{
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 16384;
        while (cap < c->out_len + len)
            cap *= 2;
        uint8_t *p = hub_realloc(c->out, cap);
        if (p == NULL)
            return -1;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

static int start_write(h2_conn_t *c)
{
    uint8_t *p = c->wbuf;
    size_t cap = c->wbuf_cap;
    c->wbuf = c->out;
    c->wbuf_cap = c->out_cap;
    c->wbuf_len = c->out_len;
    c->out = p;
    c->out_cap = cap;
    c->out_len = 0;

    uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)c->wbuf_len);
    c->wreq.data = c;
    int rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rv < 0) {
        hub_log(HUB_LOG_DEBUG, "h2", "event=write_error conn=%" PRIu64 " err=%s", c->id,
                uv_strerror(rv));
        return -1;
    }
    c->writing = true;
    return 0;
}

/* ========================================================== connections */

h2_conn_t *h2_conn__accept(h2_frontend_t *fe)
{
    h2_conn_t *c = hub_calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->fe = fe;
    c->id = ++fe->next_conn_id;
    c->state = H2_CONN_PREFACE;
    c->opened_ms = c->last_activity_ms = uv_now(fe->loop);
    snprintf(c->peer, sizeof c->peer, "-");

    /* From here on the connection is on fe->conns and is only ever freed in
     * on_closed, whatever fails. */
    c->next = fe->conns;
    if (fe->conns)
        fe->conns->prev = c;
    fe->conns = c;
    fe->n_conns++;

    uv_tcp_init(fe->loop, &c->tcp);
    c->tcp.data = c;
    int rv = uv_accept((uv_stream_t *)fe->listener, (uv_stream_t *)&c->tcp);
    if (rv < 0) {
        c->close_reason = "accept_failed";
        conn_teardown(c);
        return c;
    }
    uv_tcp_nodelay(&c->tcp, 1);

    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
        char ip[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof ip);
            port = ntohs(a->sin6_port);
            snprintf(c->peer, sizeof c->peer, "[%s]:%d", ip, port);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof ip);
            port = ntohs(a->sin_port);
            snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
        }
    }

    fe->stats->connections_total++;
    fe->stats->connections_open++;
    c->counted = true;
    hub_log(HUB_LOG_INFO, "h2", "event=conn_open conn=%" PRIu64 " peer=%s", c->id, c->peer);

    if (session_new(c) != 0) {
        c->close_reason = "out_of_memory";
        conn_teardown(c);
        return c;
    }
    rv = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rv < 0) {
        c->close_reason = "read_error";
        conn_teardown(c);
        return c;
    }
    c->reading = true;
    h2_frontend__schedule(fe, c); /* our SETTINGS */
    return c;
}

/* The one place a connection ends: streams (and their hub calls and
 * subscriptions) go first, then the nghttp2 session, then the socket. Never
 * called from inside this connection's nghttp2 callbacks: only from the
 * flush and from accept. */
static void conn_teardown(h2_conn_t *c)
{
    assert(c->state != H2_CONN_CLOSING);
    c->state = H2_CONN_CLOSING;
    if (c->counted) {
        c->fe->stats->connections_open--;
        hub_log(HUB_LOG_INFO, "h2",
                "event=conn_close conn=%" PRIu64 " peer=%s reason=%s requests=%" PRIu64
                " open_streams=%u",
                c->id, c->peer, c->close_reason ? c->close_reason : "closed", c->requests,
                c->n_streams);
    }
    while (c->streams != NULL)
        stream_free(c->streams);
    if (c->session != NULL) {
        nghttp2_session_del(c->session);
        c->session = NULL;
    }
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void h2_conn__close(h2_conn_t *c, const char *reason)
{
    if (c->state == H2_CONN_CLOSING || c->close_now)
        return;
    c->close_now = true;
    c->no_read = true;
    if (c->close_reason == NULL || c->state != H2_CONN_DRAINING)
        c->close_reason = reason;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    h2_frontend__schedule(c->fe, c);
}

void h2_conn__shutdown(h2_conn_t *c, const char *reason, uint64_t grace_ms)
{
    if (c->state == H2_CONN_CLOSING || c->state == H2_CONN_DRAINING || c->close_now)
        return;
    if (c->state == H2_CONN_PREFACE) {
        h2_conn__close(c, reason);
        return;
    }
    c->state = H2_CONN_DRAINING;
    c->close_reason = reason;
    c->drain_deadline_ms = now_ms(c) + grace_ms;
    /* Subscriptions never end by themselves: end them with a status the
     * client can act on (reconnect with after_seq). Unary calls in flight
     * get until the deadline to finish. */
    for (h2_stream_t *s = c->streams; s != NULL; s = s->next)
        if (s->sub != NULL)
            stream_finish(s, HUB_GRPC_UNAVAILABLE, "the connection is closing; subscribe again");
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    h2_frontend__schedule(c->fe, c);
}

void h2_conn__flush(h2_conn_t *c)
{
    if (c->state == H2_CONN_CLOSING)
        return;
    if (c->close_now) {
        conn_teardown(c);
        return;
    }

    const hub_config_t *cfg = cfg_of(c);
    size_t half = cfg->max_queued_bytes / 2;
    size_t soft = half > H2_MIN_SOFT_OUT ? half : H2_MIN_SOFT_OUT;
    while (c->out_len < soft) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            hub_log(HUB_LOG_WARN, "h2", "event=send_error conn=%" PRIu64 " err=%s", c->id,
                    nghttp2_strerror((int)n));
            c->close_reason = "send_error";
            conn_teardown(c);
            return;
        }
        if (n == 0)
            break;
        if (out_append(c, data, (size_t)n) != 0) {
            c->close_reason = "out_of_memory";
            conn_teardown(c);
            return;
        }
    }
    if (!c->writing && c->out_len > 0 && start_write(c) != 0) {
        c->close_reason = "write_error";
        conn_teardown(c);
        return;
    }

    /* Backpressure: a client that does not read its responses is not read.
     * A graceful drain keeps reading: the streams it waits for need their
     * DATA and the peer's acknowledgements. */
    size_t unsent = c->out_len + (c->writing ? c->wbuf_len : 0);
    bool want_reading = !c->no_read && unsent <= half;
    if (c->reading && !want_reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    } else if (!c->reading && want_reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    }

    if (c->writing || c->out_len > 0)
        return;
    bool want_read = nghttp2_session_want_read(c->session);
    bool want_write = nghttp2_session_want_write(c->session);
    if (!want_read && !want_write) {
        if (c->close_reason == NULL)
            c->close_reason = "goaway";
        conn_teardown(c);
    } else if (c->state == H2_CONN_DRAINING && c->n_streams == 0 && !want_write) {
        conn_teardown(c);
    }
}

void h2_conn__tick(h2_conn_t *c, uint64_t now)
{
    const hub_config_t *cfg = cfg_of(c);
    if (c->state == H2_CONN_CLOSING || c->close_now)
        return;
    switch (c->state) {
    case H2_CONN_PREFACE:
        if (cfg->preface_timeout_ms && now - c->opened_ms >= cfg->preface_timeout_ms)
            h2_conn__close(c, "preface_timeout");
        break;
    case H2_CONN_OPEN:
        if (c->n_streams == 0) {
            if (cfg->idle_timeout_ms && now - c->last_activity_ms >= cfg->idle_timeout_ms)
                h2_conn__shutdown(c, "idle_timeout", H2_DRAIN_GRACE_MS);
        } else if (cfg->ping_interval_ms && now - c->last_ping_ms >= cfg->ping_interval_ms) {
            if (c->pings_outstanding >= 2) {
                h2_conn__close(c, "ping_timeout");
                break;
            }
            if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL) == 0)
                c->pings_outstanding++;
            c->last_ping_ms = now;
            h2_frontend__schedule(c->fe, c);
        }
        break;
    case H2_CONN_DRAINING:
        if (now < c->drain_deadline_ms)
            break;
        if (c->drain_final) {
            h2_conn__close(c, c->close_reason ? c->close_reason : "drain_timeout");
            break;
        }
        /* The grace time is over: calls still waiting for the hub are
         * cancelled and answered UNAVAILABLE (a HEADERS frame, which flow
         * control cannot hold up), then the connection gets a moment to
         * flush before it is closed. */
        c->drain_final = true;
        c->drain_deadline_ms = now + H2_FINAL_FLUSH_MS;
        for (h2_stream_t *s = c->streams; s != NULL; s = s->next) {
            if (s->finished)
                continue;
            if (s->call != NULL) {
                hub_call_t *call = s->call;
                s->call = NULL;
                hub_call_cancel(call);
            }
            stream_finish(s, HUB_GRPC_UNAVAILABLE, "the connection is closing; try again");
        }
        h2_frontend__schedule(c->fe, c);
        break;
    case H2_CONN_CLOSING:
        break;
    }
}
