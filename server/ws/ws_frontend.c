/* ws_frontend.c -- HTTP/1.1 + WebSocket front end on libwebsockets 4.1, on
 * the hub's libuv loop (see ws_frontend.h and INTEGRATION.md).
 *
 * One lws context, one vhost, three protocols: protocols[0] "http" serves
 * /healthz, /metrics and the console's static files; "mhtas.v1.json" and
 * "mhtas.v1.proto" are the WebSocket API. All three share one callback.
 *
 * A WebSocket (ws_conn_t, lws's per-session data) goes AWAIT_AUTH -> READY ->
 * CLOSING. Messages are reassembled up to max_message_bytes, decoded into a
 * ClientFrame (through a byte-budgeted allocator), and dispatched: `auth` to
 * hub_authenticate, `subscribe` to hub_subscribe, every other body to
 * hub_call() by the name of its oneof field. Replies and events are encoded
 * straight into complete WebSocket frames (we build the 2-10 byte server
 * header ourselves: server frames are not masked) in one output buffer per
 * connection; see "Output" below for how it is written.
 *
 * Closing a socket is always done from its own WRITEABLE callback (flush the
 * queue, lws_close_reason, return -1), except inside RECEIVE where returning
 * -1 is already the way out. A socket that does not drain its queue within a
 * few seconds of starting to close is killed by lws_set_timeout.
 */
#include "ws/ws_frontend.h"

#include <errno.h>
#include <stdbool.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libwebsockets.h>

#include "codec/pbcheck.h"
#include "codec/pbjson.h"
#include "log/log.h"
#include "mhtas/v1/ws.pb-c.h"
#include "util/alloc.h"
#include "util/pb_budget.h"

#define WS_PROTO_JSON "mhtas.v1.json"
#define WS_PROTO_PB "mhtas.v1.proto"
#define WS_PATH "/ws"
#define WS_MAX_BAD_FRAMES 10
#define WS_MAX_DEPTH 32             /* message nesting in a ClientFrame */
#define WS_MAX_REQUEST_ID 128       /* echoed back; longer ones are not */
#define WS_CLOSE_GRACE_S 5          /* flush-before-close limit */
#define WS_SHUTDOWN_WAIT_MS 1000    /* ws_frontend_close: wait for sockets */
#define WS_DRAIN_MS 50              /* between the two lws_context_destroy calls */
#define WS_KEEP_RX_BUF 65536        /* larger reassembly buffers are freed after use */

/* event frames in binary: ServerFrame field 20, wire type 2 */
#define SERVER_FRAME_EVENT_TAG ((20u << 3) | 2u)

static const char security_headers[][2][128] = {
    { "content-security-policy:",
      "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
      "script-src 'self'; frame-ancestors 'none'" },
    { "x-content-type-options:", "nosniff" },
    { "referrer-policy:", "no-referrer" },
    { "cache-control:", "no-cache" },
};

/* ================================================================== types */

typedef enum { WS_AWAIT_AUTH = 0, WS_READY, WS_CLOSING } ws_state_t;

typedef struct ws_conn ws_conn_t;

/* One hub_call in flight. */
typedef struct ws_call {
    struct ws_call *next;
    ws_conn_t *conn;
    hub_call_t *handle;
    char *request_id;
    const char *field; /* ServerFrame field name, from the descriptor */
    bool in_call;      /* hub_call has not returned yet */
    bool done;         /* the reply came while in_call */
} ws_call_t;

/* How often sweep_cb checks every socket's deadlines. */
#define WS_SWEEP_MS 500

struct ws_conn {
    ws_frontend_t *fe;
    struct lws *wsi;
    bool live;         /* set in ESTABLISHED, cleared in CLOSED */
    bool binary;       /* "mhtas.v1.proto" */
    ws_state_t state;
    const hub_user_t *user;
    hub_sub_t *sub;
    ws_call_t *calls;
    uint8_t *out;      /* LWS_PRE headroom, then out_len bytes of whole frames */
    size_t out_len, out_cap;
    size_t lws_held;   /* bytes of our last write lws may still hold (partial send) */
    bool flush_queued; /* on fe->flush_head */
    ws_conn_t *flush_next, *flush_prev;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    unsigned bad_frames;
    bool dropping;     /* closed as too slow: nothing more is queued */
    bool close_sent;   /* queue flushed; the close timer is armed */
    uint64_t last_rx_ms;
    uint64_t opened_ms;
    uint64_t ping_sent_ms;
    int close_code;
    char close_reason[64];
    ws_conn_t *next, *prev; /* fe->conns */
};

/* Per-session data of protocols[0]: the body of the response being sent. */
typedef struct http_sess {
    unsigned char *body; /* LWS_PRE + len */
    size_t len;
} http_sess_t;

struct ws_frontend {
    hub_t *hub;
    uv_loop_t *loop;
    const hub_config_t *cfg;
    struct lws_context *ctx;
    struct lws_protocols protocols[4];
    lws_retry_bo_t retry;
    uv_timer_t sweep;  /* deadlines of every socket: see sweep_cb */
    bool sweep_init;
    uv_prepare_t flush; /* writes the turn's output: see flush_cb */
    uv_check_t after_poll;
    uv_idle_t kick;    /* keeps the loop from blocking with output unwritten */
    bool flush_init;
    bool flushed;      /* flush_cb has run since the last poll */
    ws_conn_t *flush_head;
    ws_conn_t *conns;
    size_t n_conns;
    size_t n_http;             /* network connections, for max_connections */
    size_t budget;             /* decode budget per message */
    /* close */
    uv_timer_t timer;
    bool timer_init;
    int close_phase;           /* 0 none, 1 waiting for sockets, 2 draining lws */
    uint64_t close_started;
    void (*close_cb)(void *ctx);
    void *close_ctx;
};

/* =============================================================== logging */

/* lws prints lines ending in "\n"; they go to our log as one key=value line. */
static void lws_log_emit(int level, const char *line)
{
    int our = (level & LLL_ERR) ? HUB_LOG_ERROR : HUB_LOG_WARN;
    char clean[256];
    size_t o = 0;
    for (const char *p = line; *p && o < sizeof clean - 1; p++) {
        char c = *p;
        if (c == '\n' || c == '\r')
            continue;
        if (c == '"' || (unsigned char)c < 0x20)
            c = '\'';
        clean[o++] = c;
    }
    clean[o] = '\0';
    hub_log(our, "lws", "msg=\"%s\"", clean);
}

/* ========================================================== connections */

static hub_fe_stats_t *ws_stats(ws_frontend_t *fe)
{
    return hub_fe_stats(fe->hub, HUB_FE_WS);
}

static const char *state_name(ws_state_t s)
{
    return s == WS_AWAIT_AUTH ? "await_auth" : s == WS_READY ? "ready" : "closing";
}

/* Every state change goes through here: AWAIT_AUTH -> READY -> CLOSING, or
 * AWAIT_AUTH -> CLOSING. */
static void conn_set_state(ws_conn_t *c, ws_state_t s)
{
    if (c->state == s)
        return;
    if (!(s > c->state)) {
        hub_log(HUB_LOG_ERROR, "ws", "event=bad_state_change from=%s to=%s", state_name(c->state),
                state_name(s));
        abort();
    }
    hub_log(HUB_LOG_TRACE, "ws", "event=state conn=%p from=%s to=%s", (void *)c,
            state_name(c->state), state_name(s));
    c->state = s;
}

/* ================================================================ output
 *
 * Every reply and event is encoded once, straight into a complete WebSocket
 * frame at the end of the connection's output buffer, and the connection is
 * put on fe->flush_head. Once per loop turn, just before the loop polls,
 * flush_cb (a uv_prepare_t, always active) writes each such buffer with ONE
 * lws_write(LWS_WRITE_RAW): one send() per socket per turn however many
 * frames it holds, and no POLLOUT round trip.
 *
 * Why not lws_callback_on_writable per frame (as before)? Each request turns
 * POLLOUT on and the WRITEABLE callback turns it off again; lws's libuv glue
 * does that with uv_poll_start, which libuv implements as EPOLL_CTL_DEL then
 * EPOLL_CTL_ADD: the load test counted ~4 epoll_ctl calls and a loop
 * iteration per frame per socket, a quarter of the hub's CPU.
 *
 * lws may still take part of a write and keep the rest (a full socket buffer,
 * or more than its 32 KiB send size): then lws_partial_buffered() is true, no
 * new write may start until lws has drained it, and we ask for WRITEABLE,
 * which lws calls only once its own buffer is empty; conn_writeable writes
 * whatever has accumulated meanwhile. Closing still goes through WRITEABLE
 * (see conn_writeable).
 *
 * Order within a turn: flush_cb was started before the gRPC front end's
 * flush, which restarts its own prepare hook each turn and so runs first:
 * an operator's message reaches the practitioner before the copies to the
 * other consoles are sent. Output made after flush_cb in the same turn
 * (check or close callbacks) starts `kick`, an idle hook whose only effect
 * is that the next poll does not block, so it is written at the start of
 * the next turn. */

#define WS_KEEP_OUT_BUF 65536 /* larger output buffers are freed once written */

static void kick_cb(uv_idle_t *h)
{
    uv_idle_stop(h);
}

static void out_free(ws_conn_t *c)
{
    hub_free(c->out);
    c->out = NULL;
    c->out_len = c->out_cap = 0;
}

static void flush_unlink(ws_conn_t *c)
{
    if (!c->flush_queued)
        return;
    if (c->flush_prev)
        c->flush_prev->flush_next = c->flush_next;
    else
        c->fe->flush_head = c->flush_next;
    if (c->flush_next)
        c->flush_next->flush_prev = c->flush_prev;
    c->flush_next = c->flush_prev = NULL;
    c->flush_queued = false;
}

/* Asks for this connection's output to be written at the end of the turn. */
static void flush_schedule(ws_conn_t *c)
{
    ws_frontend_t *fe = c->fe;
    if (c->flush_queued)
        return;
    if (!fe->flush_init) {
        /* shutting down: lws's WRITEABLE path writes it */
        lws_callback_on_writable(c->wsi);
        return;
    }
    if (fe->flushed && fe->flush_head == NULL)
        uv_idle_start(&fe->kick, kick_cb);
    c->flush_queued = true;
    c->flush_prev = NULL;
    c->flush_next = fe->flush_head;
    if (fe->flush_head)
        fe->flush_head->flush_prev = c;
    fe->flush_head = c;
}

/* Writes the whole output buffer if lws holds nothing of ours. Returns -1
 * when the socket is broken (the caller closes it), else 0. */
static int conn_flush(ws_conn_t *c)
{
    if (c->out_len == 0)
        return 0;
    if (lws_partial_buffered(c->wsi)) {
        lws_callback_on_writable(c->wsi);
        return 0;
    }
    /* LWS_WRITE_RAW: the buffer already holds whole frames */
    int n = lws_write(c->wsi, c->out + LWS_PRE, c->out_len, LWS_WRITE_RAW);
    if (n < 0 || (size_t)n < c->out_len)
        return -1;
    c->lws_held = lws_partial_buffered(c->wsi) ? c->out_len : 0;
    c->out_len = 0;
    if (c->out_cap > WS_KEEP_OUT_BUF)
        out_free(c);
    return 0;
}

/* lws is closing the socket itself (its close frame goes first): nothing
 * more of ours may follow it. */
static void conn_abandon_output(ws_conn_t *c)
{
    flush_unlink(c);
    out_free(c);
    c->dropping = true;
}

static void after_poll_cb(uv_check_t *h)
{
    ws_frontend_t *fe = h->data;
    fe->flushed = false;
}

static void flush_cb(uv_prepare_t *h)
{
    ws_frontend_t *fe = h->data;
    ws_conn_t *c;
    while ((c = fe->flush_head) != NULL) {
        flush_unlink(c);
        if (!c->live || c->dropping)
            continue;
        if (conn_flush(c) != 0) {
            /* outside any lws callback: lws closes it on its next pass */
            hub_log(HUB_LOG_DEBUG, "ws", "event=write_failed conn=%p", (void *)c);
            conn_abandon_output(c);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    }
    fe->flushed = true;
}

/* Starts closing: the queued frames are still written, then the close frame
 * with `code` and `reason`. Safe to call from anywhere on the loop. */
static void conn_close(ws_conn_t *c, int code, const char *reason)
{
    if (c->state == WS_CLOSING)
        return;
    conn_set_state(c, WS_CLOSING);
    c->close_code = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, WS_CLOSE_GRACE_S);
    lws_callback_on_writable(c->wsi);
}

/* Appends a frame header for a `len`-byte payload with `opcode` (FIN set)
 * and returns where the payload goes: the caller writes exactly len bytes
 * there before anything else is queued. NULL: nothing is to be written (the
 * client is too slow and is being closed, or out of memory, handled here).
 * Over max_queued_bytes of unsent output (ours and what lws still holds of
 * our last write) the client is not reading fast enough: its output is
 * dropped and it is closed. */
static uint8_t *conn_frame(ws_conn_t *c, unsigned opcode, size_t len)
{
    if (c->dropping)
        return NULL;
    size_t hl = len < 126 ? 2 : len < 65536 ? 4 : 10;
    uint32_t limit = c->fe->cfg->max_queued_bytes;
    if (limit && c->out_len + c->lws_held + hl + len > limit) {
        out_free(c);
        c->dropping = true;
        hub_log(HUB_LOG_WARN, "ws", "event=slow_consumer conn=%p user=%s queued_limit=%u",
                (void *)c, c->user ? c->user->id : "-", limit);
        if (c->state == WS_CLOSING) {
            c->close_code = LWS_CLOSE_STATUS_POLICY_VIOLATION;
            snprintf(c->close_reason, sizeof c->close_reason, "too slow");
            lws_callback_on_writable(c->wsi);
        } else {
            conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too slow");
        }
        return NULL;
    }
    size_t need = LWS_PRE + c->out_len + hl + len;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *p = hub_realloc(c->out, cap);
        if (p == NULL) {
            hub_log(HUB_LOG_ERROR, "ws", "event=oom conn=%p", (void *)c);
            conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
            return NULL;
        }
        c->out = p;
        c->out_cap = cap;
    }
    uint8_t *h = c->out + LWS_PRE + c->out_len;
    h[0] = (uint8_t)(0x80 | opcode);
    if (hl == 2) {
        h[1] = (uint8_t)len;
    } else if (hl == 4) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    }
    c->out_len += hl + len;
    flush_schedule(c);
    return h + hl;
}

#define WS_OP_TEXT 0x1u
#define WS_OP_BINARY 0x2u
#define WS_OP_PING 0x9u

/* Encodes a ServerFrame for this socket's subprotocol and queues it. */
static void conn_send_frame(ws_conn_t *c, const Mhtas__V1__ServerFrame *sf)
{
    if (c->binary) {
        size_t len = protobuf_c_message_get_packed_size(&sf->base);
        uint8_t *p = conn_frame(c, WS_OP_BINARY, len);
        if (p)
            protobuf_c_message_pack(&sf->base, p);
        return;
    }
    size_t len;
    char *json = pbjson_encode(&sf->base, &len);
    if (json == NULL) {
        hub_log(HUB_LOG_ERROR, "ws", "event=oom conn=%p", (void *)c);
        conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return;
    }
    uint8_t *p = conn_frame(c, WS_OP_TEXT, len);
    if (p)
        memcpy(p, json, len);
    hub_free(json);
}

/* The field an INVALID_ARGUMENT message is about. By convention (the core's
 * validation and the JSON decoder both follow it) such a message starts with
 * the field's path, e.g. "details.police_ref is required" or
 * "raise_incident.details.priority: unknown enum value". Copies that path
 * into out, or leaves it empty. */
static void field_of(const char *message, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    if (message == NULL)
        return;
    while (message[n] && (islower((unsigned char)message[n]) || isdigit((unsigned char)message[n]) ||
                          message[n] == '_' || message[n] == '.' || message[n] == '[' || message[n] == ']'))
        n++;
    bool path = n > 0 && (message[n] == ' ' || message[n] == ':') && (memchr(message, '.', n) || memchr(message, '_', n));
    if (!path || n >= outlen)
        return;
    memcpy(out, message, n);
    out[n] = '\0';
}

static void conn_send_error(ws_conn_t *c, const char *request_id, int code, const char *message)
{
    Mhtas__V1__Status st = MHTAS__V1__STATUS__INIT;
    char field[128];
    st.code = code;
    st.message = (char *)(message ? message : "");
    if (code == HUB_GRPC_INVALID_ARGUMENT) {
        field_of(message, field, sizeof field);
        if (field[0])
            st.field = field;
    }
    Mhtas__V1__ServerFrame sf = MHTAS__V1__SERVER_FRAME__INIT;
    if (request_id)
        sf.request_id = (char *)request_id;
    sf.error = &st;
    conn_send_frame(c, &sf);
    ws_stats(c->fe)->errors_total++;
}

/* Sets ServerFrame's oneof field `name` to `msg` (borrowed). */
static int server_frame_set(Mhtas__V1__ServerFrame *sf, const char *name,
                            const ProtobufCMessage *msg)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(&mhtas__v1__server_frame__descriptor, name);
    if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
        msg == NULL || msg->descriptor != f->descriptor)
        return -1;
    *(uint32_t *)((char *)sf + f->quantifier_offset) = f->id;
    *(const ProtobufCMessage **)((char *)sf + f->offset) = msg;
    return 0;
}

/* ================================================================ calls */

static void call_unlink_free(ws_call_t *call)
{
    ws_conn_t *c = call->conn;
    for (ws_call_t **pp = &c->calls; *pp; pp = &(*pp)->next) {
        if (*pp == call) {
            *pp = call->next;
            break;
        }
    }
    hub_free(call->request_id);
    hub_free(call);
}

/* hub_reply_cb: the answer to one ClientFrame, now or later. */
static void on_reply(void *ctx, const hub_reply_t *reply)
{
    ws_call_t *call = ctx;
    ws_conn_t *c = call->conn;
    if (c->state != WS_CLOSING) {
        if (reply->status != HUB_GRPC_OK) {
            conn_send_error(c, call->request_id, reply->status, reply->message);
        } else {
            Mhtas__V1__ServerFrame sf = MHTAS__V1__SERVER_FRAME__INIT;
            sf.request_id = call->request_id;
            if (server_frame_set(&sf, call->field, reply->msg) != 0) {
                hub_log(HUB_LOG_ERROR, "ws", "event=bad_reply field=%s", call->field);
                conn_send_error(c, call->request_id, HUB_GRPC_INTERNAL, "internal error");
            } else {
                conn_send_frame(c, &sf);
            }
        }
    }
    if (call->in_call)
        call->done = true;
    else
        call_unlink_free(call);
}

static void conn_dispatch(ws_conn_t *c, const char *rid, const ProtobufCFieldDescriptor *f,
                          const ProtobufCMessage *req)
{
    ws_frontend_t *fe = c->fe;
    const hub_method_t *m = hub_method_by_ws_field(f->name);
    if (m == NULL || m->server_streaming) {
        conn_send_error(c, rid, HUB_GRPC_UNIMPLEMENTED, "no such method");
        return;
    }
    ws_call_t *call = hub_calloc(1, sizeof *call);
    if (call == NULL || (rid && (call->request_id = hub_strdup(rid)) == NULL)) {
        hub_free(call);
        conn_send_error(c, rid, HUB_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    call->conn = c;
    call->field = f->name;
    call->in_call = true;
    call->next = c->calls;
    c->calls = call;
    hub_call_t *h = hub_call(fe->hub, c->user, m, req, on_reply, call);
    call->in_call = false;
    if (call->done) {
        call_unlink_free(call);
    } else if (h == NULL) {
        /* the hub promised a reply or a handle: do not wait forever */
        hub_log(HUB_LOG_ERROR, "ws", "event=call_without_reply method=%s", m->name);
        conn_send_error(c, rid, HUB_GRPC_INTERNAL, "internal error");
        call_unlink_free(call);
    } else {
        call->handle = h;
    }
}

/* =============================================================== events */

/* hub_event_cb: one event for this subscriber, in sequence order. The
 * event is packed (and rendered as JSON) once by the hub; here it is only
 * wrapped: ServerFrame{event = 20} in binary, {"event":...} in JSON. */
static void on_event(void *ctx, hub_event_t *ev)
{
    ws_conn_t *c = ctx;
    if (c->state == WS_CLOSING)
        return;
    if (c->binary) {
        uint8_t hdr[16];
        size_t h = 0;
        hdr[h++] = (uint8_t)(0x80 | (SERVER_FRAME_EVENT_TAG & 0x7f));
        hdr[h++] = (uint8_t)(SERVER_FRAME_EVENT_TAG >> 7);
        uint64_t v = ev->len;
        do {
            uint8_t b = v & 0x7f;
            v >>= 7;
            hdr[h++] = (uint8_t)(b | (v ? 0x80 : 0));
        } while (v);
        uint8_t *p = conn_frame(c, WS_OP_BINARY, h + ev->len);
        if (p) {
            memcpy(p, hdr, h);
            memcpy(p + h, ev->pb, ev->len);
        }
        return;
    }
    size_t jl = 0;
    const char *json = hub_event_json(ev, &jl);
    static const char pre[] = "{\"event\":";
    if (json == NULL) {
        hub_log(HUB_LOG_ERROR, "ws", "event=oom conn=%p", (void *)c);
        conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return;
    }
    uint8_t *p = conn_frame(c, WS_OP_TEXT, sizeof pre - 1 + jl + 1);
    if (p) {
        memcpy(p, pre, sizeof pre - 1);
        memcpy(p + sizeof pre - 1, json, jl);
        p[sizeof pre - 1 + jl] = '}';
    }
}

static void conn_subscribe(ws_conn_t *c, const char *rid, const Mhtas__V1__SubscribeRequest *req)
{
    ws_frontend_t *fe = c->fe;
    if (c->sub) {
        conn_send_error(c, rid, HUB_GRPC_FAILED_PRECONDITION, "already subscribed");
        return;
    }
    Mhtas__V1__SubscribeAck ack = MHTAS__V1__SUBSCRIBE_ACK__INIT;
    ack.last_seq = hub_last_seq(fe->hub);
    Mhtas__V1__ServerFrame sf = MHTAS__V1__SERVER_FRAME__INIT;
    if (rid)
        sf.request_id = (char *)rid;
    sf.body_case = MHTAS__V1__SERVER_FRAME__BODY_SUBSCRIBE;
    sf.subscribe = &ack;
    conn_send_frame(c, &sf);
    if (c->state == WS_CLOSING)
        return;
    c->sub = hub_subscribe(fe->hub, c->user, req->after_seq, on_event, c);
    if (c->sub == NULL)
        conn_send_error(c, rid, HUB_GRPC_RESOURCE_EXHAUSTED, "out of memory");
}

/* ================================================================= auth */

static void conn_auth(ws_conn_t *c, const char *rid, const Mhtas__V1__AuthRequest *req)
{
    ws_frontend_t *fe = c->fe;
    const char *tok = req->token ? req->token : "";
    const hub_user_t *u = hub_authenticate(fe->hub, tok, strlen(tok));
    if (u == NULL) {
        hub_log(HUB_LOG_INFO, "ws", "event=auth_failed conn=%p", (void *)c);
        conn_send_error(c, rid, HUB_GRPC_UNAUTHENTICATED, "invalid token");
        conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "invalid token");
        return;
    }
    c->user = u;
    conn_set_state(c, WS_READY);
    hub_log(HUB_LOG_INFO, "ws", "event=auth conn=%p user=%s", (void *)c, u->id);

    Mhtas__V1__User user = MHTAS__V1__USER__INIT;
    user.id = u->id;
    user.display_name = u->display_name ? u->display_name : (char *)"";
    user.role = u->role;
    user.provider = u->provider ? u->provider : (char *)"";
    user.n_skills = u->n_skills;
    user.skills = u->skills;
    user.n_boroughs = u->n_boroughs;
    user.boroughs = u->boroughs;
    user.capacity = u->capacity;

    const hub_config_t *cfg = fe->cfg;
    char **boroughs = NULL;
    if (cfg->n_boroughs) {
        boroughs = hub_calloc(cfg->n_boroughs, sizeof *boroughs);
        if (boroughs == NULL) {
            conn_send_error(c, rid, HUB_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        for (size_t i = 0; i < cfg->n_boroughs; i++)
            boroughs[i] = cfg->boroughs[i].name;
    }
    Mhtas__V1__AuthResponse ar = MHTAS__V1__AUTH_RESPONSE__INIT;
    ar.user = &user;
    ar.n_boroughs = cfg->n_boroughs;
    ar.boroughs = boroughs;
    ar.last_seq = hub_last_seq(fe->hub);
    Mhtas__V1__ServerFrame sf = MHTAS__V1__SERVER_FRAME__INIT;
    if (rid)
        sf.request_id = (char *)rid;
    sf.body_case = MHTAS__V1__SERVER_FRAME__BODY_AUTH;
    sf.auth = &ar;
    conn_send_frame(c, &sf);
    hub_free(boroughs);
}

/* ============================================================ receiving */

/* The request_id of a frame that failed to decode, if it can be read. */
static char *salvage_request_id(ws_conn_t *c, char *buf, size_t bufsize)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    if (c->binary) {
        if (pbcheck_find_bytes(c->rx, c->rx_len, 1, &p, &n) != 0)
            return NULL;
    } else {
        static const char *keys[] = { "\"requestId\"", "\"request_id\"" };
        /* Find "requestId":"..." textually: the JSON did not parse, so this
         * is a best effort on the error path only (no escapes). */
        const char *s = (const char *)c->rx;
        size_t len = c->rx_len;
        for (size_t k = 0; k < 2 && p == NULL; k++) {
            size_t kl = strlen(keys[k]);
            for (size_t i = 0; i + kl < len; i++) {
                if (memcmp(s + i, keys[k], kl) != 0)
                    continue;
                size_t j = i + kl;
                while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r'))
                    j++;
                if (j >= len || s[j] != ':')
                    continue;
                j++;
                while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r'))
                    j++;
                if (j >= len || s[j] != '"')
                    continue;
                size_t st = ++j;
                while (j < len && s[j] != '"' && s[j] != '\\')
                    j++;
                if (j >= len || s[j] != '"')
                    continue; /* escapes: not worth it here */
                p = (const uint8_t *)s + st;
                n = j - st;
                break;
            }
        }
        if (p == NULL)
            return NULL;
    }
    if (n == 0 || n >= bufsize || n > WS_MAX_REQUEST_ID || !pbcheck_utf8(p, n))
        return NULL;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

static void conn_bad_frame(ws_conn_t *c, const char *message)
{
    ws_frontend_t *fe = c->fe;
    char ridbuf[WS_MAX_REQUEST_ID + 1];
    const char *rid = salvage_request_id(c, ridbuf, sizeof ridbuf);
    ws_stats(fe)->bad_input_total++;
    c->bad_frames++;
    hub_log(HUB_LOG_DEBUG, "ws", "event=bad_frame conn=%p count=%u", (void *)c, c->bad_frames);
    conn_send_error(c, rid, HUB_GRPC_INVALID_ARGUMENT, message);
    if (c->bad_frames >= WS_MAX_BAD_FRAMES)
        conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many bad frames");
}

/* One complete message in c->rx. */
static void conn_message(ws_conn_t *c, bool is_binary)
{
    ws_frontend_t *fe = c->fe;
    char err[256];
    if (is_binary != c->binary) {
        conn_bad_frame(c, c->binary ? "expected a binary frame" : "expected a text frame");
        return;
    }
    pb_budget_t budget;
    pb_budget_init(&budget, fe->budget);
    ProtobufCMessage *m;
    if (c->binary) {
        if (pbcheck_wire(&mhtas__v1__client_frame__descriptor, c->rx, c->rx_len, WS_MAX_DEPTH,
                         err, sizeof err) != 0) {
            conn_bad_frame(c, err);
            return;
        }
        m = protobuf_c_message_unpack(&mhtas__v1__client_frame__descriptor, &budget.allocator,
                                      c->rx_len, c->rx);
        if (m == NULL) {
            conn_bad_frame(c, budget.exceeded ? "message too large to decode"
                                              : "malformed protobuf");
            return;
        }
    } else {
        m = pbjson_decode(&mhtas__v1__client_frame__descriptor, (const char *)c->rx, c->rx_len,
                          &budget.allocator, WS_MAX_DEPTH, err, sizeof err);
        if (m == NULL) {
            conn_bad_frame(c, budget.exceeded ? "message too large to decode" : err);
            return;
        }
    }
    Mhtas__V1__ClientFrame *cf = (Mhtas__V1__ClientFrame *)m;
    const char *rid = cf->request_id && cf->request_id[0] ? cf->request_id : NULL;
    if (rid && strlen(rid) > WS_MAX_REQUEST_ID) {
        conn_bad_frame(c, "request_id is too long");
        goto done;
    }
    ws_stats(fe)->requests_total++;

    if (c->state == WS_AWAIT_AUTH) {
        if (cf->body_case != MHTAS__V1__CLIENT_FRAME__BODY_AUTH) {
            conn_send_error(c, rid, HUB_GRPC_UNAUTHENTICATED, "the first frame must be auth");
            conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "not authenticated");
        } else {
            conn_auth(c, rid, cf->auth);
        }
        goto done;
    }
    switch (cf->body_case) {
    case MHTAS__V1__CLIENT_FRAME__BODY__NOT_SET:
        conn_bad_frame(c, "the frame has no body");
        ws_stats(fe)->requests_total--;
        break;
    case MHTAS__V1__CLIENT_FRAME__BODY_AUTH:
        conn_send_error(c, rid, HUB_GRPC_FAILED_PRECONDITION, "already authenticated");
        break;
    case MHTAS__V1__CLIENT_FRAME__BODY_SUBSCRIBE:
        conn_subscribe(c, rid, cf->subscribe);
        break;
    default: {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(m->descriptor, (int)cf->body_case);
        const ProtobufCMessage *req =
            f ? *(const ProtobufCMessage *const *)((const char *)cf + f->offset) : NULL;
        if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE || req == NULL) {
            conn_bad_frame(c, "the frame has no body");
            break;
        }
        conn_dispatch(c, rid, f, req);
        break;
    }
    }
done:
    protobuf_c_message_free_unpacked(m, &budget.allocator);
}

/* Appends a fragment; returns -1 when the message would be too big. */
static int conn_rx_append(ws_conn_t *c, const void *in, size_t len)
{
    uint32_t max = c->fe->cfg->max_message_bytes;
    if (len > max || c->rx_len > max - len)
        return -1;
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < c->rx_len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        uint8_t *p = hub_realloc(c->rx, cap ? cap : 1);
        if (p == NULL)
            return -2;
        c->rx = p;
        c->rx_cap = cap;
    }
    if (len)
        memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    return 0;
}

/* ==================================================================== HTTP */

static const char *content_type_for(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".mjs", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".svg", "image/svg+xml" },
        { ".png", "image/png" },
        { ".ico", "image/x-icon" },
        { ".json", "application/json" },
        { ".txt", "text/plain; charset=utf-8" },
        { ".woff2", "font/woff2" },
    };
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

/* Only plain file names: [A-Za-z0-9._-], not starting with '.', no '/'. */
static bool plain_file_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return strstr(s, "..") == NULL;
}

static int add_security_headers(struct lws *wsi, unsigned char **p, unsigned char *end)
{
    for (size_t i = 0; i < sizeof security_headers / sizeof security_headers[0]; i++) {
        const char *v = security_headers[i][1];
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)security_headers[i][0],
                                        (const unsigned char *)v, (int)strlen(v), p, end))
            return -1;
    }
    return 0;
}

static void http_sess_clear(http_sess_t *s)
{
    if (s) {
        hub_free(s->body);
        s->body = NULL;
        s->len = 0;
    }
}

/* Sends the headers now and the body (copied) from HTTP_WRITEABLE. Returns
 * what the callback should return. */
static int http_respond(ws_frontend_t *fe, struct lws *wsi, http_sess_t *s, unsigned code,
                        const char *ctype, const char *body, size_t len, const char *extra_name,
                        const char *extra_value)
{
    hub_fe_stats_t *st = hub_fe_stats(fe->hub, HUB_FE_HTTP);
    if (code >= 400)
        st->errors_total++;
    http_sess_clear(s);
    s->body = hub_malloc(LWS_PRE + len + 1);
    if (s->body == NULL)
        return -1;
    memcpy(s->body + LWS_PRE, body, len);
    s->len = len;

    unsigned char hdr[LWS_PRE + 2048];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    if (lws_add_http_common_headers(wsi, code, ctype, len, &p, end) ||
        add_security_headers(wsi, &p, end) ||
        (extra_name && lws_add_http_header_by_name(wsi, (const unsigned char *)extra_name,
                                                   (const unsigned char *)extra_value,
                                                   (int)strlen(extra_value), &p, end)) ||
        lws_finalize_write_http_header(wsi, start, &p, end)) {
        http_sess_clear(s);
        return -1;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_static(ws_frontend_t *fe, struct lws *wsi, http_sess_t *s, const char *uri)
{
    const char *dir = fe->cfg->static_dir;
    const char *name = uri + 1;
    if (strcmp(uri, "/") == 0)
        name = "index.html";
    const char *ctype = content_type_for(name);
    char path[1024];
    struct stat sb;
    if (dir == NULL || dir[0] == '\0' || uri[0] != '/' || !plain_file_name(name) ||
        ctype == NULL ||
        (size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path ||
        stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return http_respond(fe, wsi, s, 404, "text/plain; charset=utf-8", "not found\n", 10,
                            NULL, NULL);

    unsigned char extra[1024];
    unsigned char *p = extra, *end = extra + sizeof extra - 1;
    if (add_security_headers(wsi, &p, end))
        return -1;
    http_sess_clear(s);
    int n = lws_serve_http_file(wsi, path, ctype, (const char *)extra, (int)(p - extra));
    if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
        return -1;
    return 0;
}

static int http_request(ws_frontend_t *fe, struct lws *wsi, http_sess_t *s, const char *uri)
{
    hub_fe_stats(fe->hub, HUB_FE_HTTP)->requests_total++;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        /* not a GET (lws puts the path under the method's token) */
        int rc = http_respond(fe, wsi, s, 405, "text/plain; charset=utf-8",
                              "method not allowed\n", 19, "allow:", "GET");
        return rc;
    }
    if (strcmp(uri, "/healthz") == 0)
        return http_respond(fe, wsi, s, 200, "text/plain; charset=utf-8", "ok\n", 3, NULL, NULL);
    if (strcmp(uri, "/metrics") == 0) {
        size_t len = 0;
        char *text = hub_render_metrics(fe->hub, &len);
        if (text == NULL)
            return http_respond(fe, wsi, s, 500, "text/plain; charset=utf-8",
                                "out of memory\n", 14, NULL, NULL);
        int rc = http_respond(fe, wsi, s, 200, "text/plain; version=0.0.4; charset=utf-8", text,
                              len, NULL, NULL);
        hub_free(text);
        return rc;
    }
    if (strcmp(uri, WS_PATH) == 0)
        return http_respond(fe, wsi, s, 400, "text/plain; charset=utf-8",
                            "websocket upgrade required\n", 27, NULL, NULL);
    return http_static(fe, wsi, s, uri);
}

/* ========================================================= the callback */

/* Refuses a WebSocket upgrade unless path, subprotocol, Origin and the
 * connection limit are all right. Runs before the 101 response. */
static int ws_filter(ws_frontend_t *fe, struct lws *wsi)
{
    const struct lws_protocols *pr = lws_get_protocol(wsi);
    const char *why = NULL;
    char path[64], origin[256];
    int n = lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI);
    /* lws copies the protocol table into the vhost: compare ids, not pointers */
    if (pr == NULL || pr->id == 0) {
        why = "no_subprotocol";
    } else if (n <= 0 || strcmp(path, WS_PATH) != 0) {
        why = "bad_path";
    } else if (fe->close_phase) {
        why = "shutting_down";
    } else if (fe->cfg->max_connections && fe->n_conns >= fe->cfg->max_connections) {
        why = "max_connections";
    } else if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0) {
        /* a missing Origin is a non-browser client: allowed */
        int ol = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
        if (ol <= 0 || !hub_origin_allowed(fe->hub, origin))
            why = "bad_origin";
    }
    if (why) {
        ws_stats(fe)->connections_refused++;
        hub_log(HUB_LOG_INFO, "ws", "event=refused reason=%s", why);
        return 1;
    }
    return 0;
}

static void conn_established(ws_frontend_t *fe, ws_conn_t *c, struct lws *wsi)
{
    memset(c, 0, sizeof *c);
    c->fe = fe;
    c->wsi = wsi;
    c->live = true;
    c->state = WS_AWAIT_AUTH;
    c->binary = lws_get_protocol(wsi)->id == 2;
    c->last_rx_ms = uv_now(fe->loop);
    c->opened_ms = c->last_rx_ms;
    c->next = fe->conns;
    if (fe->conns)
        fe->conns->prev = c;
    fe->conns = c;
    fe->n_conns++;
    hub_fe_stats_t *st = ws_stats(fe);
    st->connections_open++;
    st->connections_total++;
    hub_log(HUB_LOG_DEBUG, "ws", "event=open conn=%p proto=%s", (void *)c,
            c->binary ? WS_PROTO_PB : WS_PROTO_JSON);
}

static void conn_closed(ws_frontend_t *fe, ws_conn_t *c)
{
    if (!c->live)
        return;
    c->live = false;
    if (c->sub) {
        hub_unsubscribe(c->sub);
        c->sub = NULL;
    }
    while (c->calls) {
        ws_call_t *call = c->calls;
        c->calls = call->next;
        if (call->handle)
            hub_call_cancel(call->handle);
        hub_free(call->request_id);
        hub_free(call);
    }
    flush_unlink(c);
    out_free(c);
    hub_free(c->rx);
    c->rx = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        fe->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    fe->n_conns--;
    ws_stats(fe)->connections_open--;
    hub_log(HUB_LOG_DEBUG, "ws", "event=close conn=%p user=%s", (void *)c,
            c->user ? c->user->id : "-");
}

/* Preface and idle deadlines: re-armed until something happens. */
/* The lws timer of a socket is used for one thing only: closing it from a
 * TIMER callback, which is where lws 4.1.6 still sends the close frame
 * (see conn_writeable). Every other deadline is kept by sweep_cb. */
static int conn_timer(ws_frontend_t *fe, ws_conn_t *c)
{
    (void)fe;
    if (c->state == WS_CLOSING && c->close_sent) {
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    return 0;
}

/* Every socket's deadlines -- the first frame (auth), idleness, pings and
 * the hang-up of a peer that stopped answering them -- are checked here, in
 * one sweep on the hub's own loop, twice a second.
 *
 * Why not lws's per-socket timers (lws_set_timer_usecs, and the retry
 * policy's ping "validity" timer, which lws re-arms on traffic)? lws 4.1
 * keeps them in one sorted list and inserts by walking it: with 10,000 idle
 * consoles the load test measured seconds-long stalls every ping interval,
 * 87% of the hub's CPU in lws_dll2_add_sorted. A linear sweep costs a few
 * microseconds per thousand sockets per tick, whatever the traffic. */
static void sweep_cb(uv_timer_t *t)
{
    ws_frontend_t *fe = t->data;
    const hub_config_t *cfg = fe->cfg;
    uint64_t now = uv_now(fe->loop);
    for (ws_conn_t *c = fe->conns, *next; c; c = next) {
        next = c->next;
        if (!c->live || c->state == WS_CLOSING)
            continue;
        uint64_t quiet = now - c->last_rx_ms;
        if (c->state == WS_AWAIT_AUTH) {
            if (cfg->preface_timeout_ms && now - c->opened_ms >= cfg->preface_timeout_ms)
                conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "authentication timeout");
            continue;
        }
        /* a subscribed console is not idle: pings keep checking it is alive */
        if (cfg->idle_timeout_ms && c->sub == NULL && c->calls == NULL && quiet >= cfg->idle_timeout_ms) {
            conn_close(c, LWS_CLOSE_STATUS_NORMAL, "idle");
            continue;
        }
        if (cfg->ping_interval_ms == 0)
            continue;
        if (quiet >= 2ull * cfg->ping_interval_ms + 1000) {
            hub_log(HUB_LOG_INFO, "ws", "event=hangup conn=%p reason=no_pong quiet_ms=%llu", (void *)c,
                    (unsigned long long)quiet);
            conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "no answer to ping");
            /* the peer is probably gone: do not wait long for its close */
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 2);
            continue;
        }
        /* Each socket pings at its own point in [3/4, 5/4] of the interval,
         * so thousands of consoles opened together do not ping together. */
        uint64_t spread = ((uint64_t)(uintptr_t)c >> 6) % (cfg->ping_interval_ms / 2 + 1);
        if (quiet >= cfg->ping_interval_ms * 3 / 4 + spread &&
            (c->ping_sent_ms == 0 || now - c->ping_sent_ms >= cfg->ping_interval_ms)) {
            /* An 8-byte payload (the send time): lws 4.1 does not hand a
             * pong with an empty payload to the protocol callback. */
            c->ping_sent_ms = now;
            uint8_t *p = conn_frame(c, WS_OP_PING, 8);
            if (p)
                memcpy(p, &now, 8);
        }
    }
}

/* WRITEABLE: lws holds nothing of ours any more (it calls this only once its
 * own buffer is drained). Writes what has accumulated; once everything is
 * out, a closing socket is closed. */
static int conn_writeable(ws_conn_t *c)
{
    c->lws_held = 0;
    if (c->out_len) {
        if (conn_flush(c) != 0)
            return -1;
        if (c->out_len || lws_partial_buffered(c->wsi)) {
            lws_callback_on_writable(c->wsi);
            return 0;
        }
    }
    if (c->state == WS_CLOSING && !c->close_sent) {
        /* lws 4.1.6 drops the connection without a close frame when a
         * WRITEABLE callback returns -1 after lws_close_reason (clients see
         * 1006), while a TIMER callback returning -1 goes through the ws
         * close handshake: so the queue is flushed here and the close is
         * done from an immediate timer (conn_timer). */
        c->close_sent = true;
        lws_set_timer_usecs(c->wsi, 1);
    }
    return 0;
}

static int ws_receive(ws_frontend_t *fe, ws_conn_t *c, struct lws *wsi, const void *in,
                      size_t len)
{
    if (!c->live || c->state == WS_CLOSING)
        return 0; /* draining; ignore input */
    lws_validity_confirmed(wsi);
    c->last_rx_ms = uv_now(fe->loop);
    if (lws_is_first_fragment(wsi))
        c->rx_len = 0;
    int rc = conn_rx_append(c, in, len);
    if (rc == -1) {
        static const char r[] = "message too big";
        ws_stats(fe)->bad_input_total++;
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)r,
                         sizeof r - 1);
        conn_abandon_output(c);
        return -1;
    }
    if (rc < 0) {
        static const char r[] = "out of memory";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, (unsigned char *)r,
                         sizeof r - 1);
        conn_abandon_output(c);
        return -1;
    }
    if (!lws_is_final_fragment(wsi))
        return 0;
    conn_message(c, lws_frame_is_binary(wsi) != 0);
    c->rx_len = 0;
    if (c->rx_cap > WS_KEEP_RX_BUF) {
        hub_free(c->rx);
        c->rx = NULL;
        c->rx_cap = 0;
    }
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    ws_frontend_t *fe = ctx ? lws_context_user(ctx) : NULL;
    if (fe == NULL)
        return 0;
    /* user is the per-session data of the wsi's current protocol: an
     * http_sess_t for protocols[0] (also for a refused upgrade's CLOSED),
     * a ws_conn_t for the two WebSocket protocols */
    const struct lws_protocols *pr = lws_get_protocol(wsi);
    bool is_ws = pr && pr->id != 0;
    ws_conn_t *c = is_ws ? user : NULL;
    if (!is_ws && reason != LWS_CALLBACK_HTTP && reason != LWS_CALLBACK_HTTP_WRITEABLE &&
        reason != LWS_CALLBACK_HTTP_DROP_PROTOCOL && reason != LWS_CALLBACK_CLOSED_HTTP &&
        reason != LWS_CALLBACK_HTTP_FILE_COMPLETION && reason != LWS_CALLBACK_HTTP_BODY &&
        reason != LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
        return 0;

    switch (reason) {
    /* ------------------------------------------------------------- http */
    case LWS_CALLBACK_HTTP:
        if (user == NULL || is_ws)
            return -1;
        return http_request(fe, wsi, user, (const char *)in);
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        http_sess_t *s = is_ws ? NULL : user;
        if (s == NULL || s->body == NULL)
            return 0;
        int n = lws_write(wsi, s->body + LWS_PRE, s->len, LWS_WRITE_HTTP_FINAL);
        bool ok = n >= 0 && (size_t)n >= s->len;
        http_sess_clear(s);
        if (!ok || lws_http_transaction_completed(wsi))
            return -1;
        return 0;
    }
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (!is_ws)
            http_sess_clear(user);
        return 0;
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        /* lws_serve_http_file has sent the last byte: keep-alive */
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;
    case LWS_CALLBACK_HTTP_BODY:
        return 0; /* no method here takes a body: the 405 is on its way */

    /* -------------------------------------------------------- websocket */
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return ws_filter(fe, wsi);
    case LWS_CALLBACK_ESTABLISHED:
        if (c == NULL)
            return -1;
        conn_established(fe, c, wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (c == NULL)
            return -1;
        return ws_receive(fe, c, wsi, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c == NULL || !c->live)
            return 0;
        return conn_writeable(c);
    case LWS_CALLBACK_RECEIVE_PONG:
        if (c && c->live)
            c->last_rx_ms = uv_now(fe->loop);
        return 0;
    case LWS_CALLBACK_TIMER:
        if (c == NULL || !c->live)
            return 0;
        return conn_timer(fe, c);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && c->live && c->state != WS_CLOSING) {
            /* lws answers the close itself; nothing more goes out */
            conn_abandon_output(c);
            conn_set_state(c, WS_CLOSING);
            c->close_code = LWS_CLOSE_STATUS_NORMAL;
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (c)
            conn_closed(fe, c);
        return 0;
    default:
        return 0;
    }
}

/* ============================================================ lifecycle */

ws_frontend_t *ws_frontend_new(hub_t *hub, uv_loop_t *loop)
{
    ws_frontend_t *fe = hub_calloc(1, sizeof *fe);
    if (fe == NULL)
        return NULL;
    fe->hub = hub;
    fe->loop = loop;
    fe->cfg = hub_config(hub);
    size_t max = fe->cfg->max_message_bytes;
    /* protobuf-c's worst blow-up measured was ~36x (INTEGRATION.md) */
    fe->budget = max * 48 > 1u << 20 ? max * 48 : 1u << 20;
    fe->protocols[0] = (struct lws_protocols){ "http", callback, sizeof(http_sess_t), 0, 0, NULL,
                                               0 };
    fe->protocols[1] = (struct lws_protocols){ WS_PROTO_JSON, callback, sizeof(ws_conn_t), 0, 1,
                                               NULL, 0 };
    fe->protocols[2] = (struct lws_protocols){ WS_PROTO_PB, callback, sizeof(ws_conn_t), 0, 2,
                                               NULL, 0 };
    return fe;
}

int ws_frontend_start(ws_frontend_t *fe, const char *host, int port, int *bound_port, char *err,
                      size_t errlen)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

    /* A retry policy of zeros: lws arms no "validity" (ping) timer at all;
     * sweep_cb pings instead (see there why). */
    memset(&fe->retry, 0, sizeof fe->retry);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = host;
    info.protocols = fe->protocols;
    /* no LWS_SERVER_OPTION_VALIDATE_UTF8: bad UTF-8 in a text frame gets an
     * INVALID_ARGUMENT reply from the JSON decoder like any other bad frame */
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DISABLE_IPV6;
    void *loops[1] = { fe->loop };
    info.foreign_loops = loops;
    info.user = fe;
    info.pt_serv_buf_size = 32 * 1024;
    info.max_http_header_data = 4096;
    info.retry_and_idle_policy = &fe->retry;
    info.timeout_secs = 20;
    info.server_string = "mhtas";

    fe->ctx = lws_create_context(&info);
    if (fe->ctx == NULL) {
        snprintf(err, errlen,
                 "libwebsockets: cannot listen on %s:%d (or libwebsockets-evlib-uv is missing)",
                 host ? host : "*", port);
        return -1;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(fe->ctx, "default");
    int p = vh ? lws_get_vhost_listen_port(vh) : -1;
    if (p <= 0) {
        snprintf(err, errlen, "libwebsockets: no listening port on %s:%d", host ? host : "*", port);
        return -1; /* ws_frontend_close still tears the context down */
    }
    if (bound_port)
        *bound_port = p;
    uv_timer_init(fe->loop, &fe->sweep);
    fe->sweep.data = fe;
    fe->sweep_init = true;
    uv_timer_start(&fe->sweep, sweep_cb, WS_SWEEP_MS, WS_SWEEP_MS);
    uv_prepare_init(fe->loop, &fe->flush);
    fe->flush.data = fe;
    uv_prepare_start(&fe->flush, flush_cb);
    uv_check_init(fe->loop, &fe->after_poll);
    fe->after_poll.data = fe;
    uv_check_start(&fe->after_poll, after_poll_cb);
    uv_idle_init(fe->loop, &fe->kick);
    fe->flush_init = true;
    hub_log(HUB_LOG_INFO, "ws", "event=listen host=%s port=%d", host ? host : "*", p);
    return 0;
}

/* From here on output goes through lws's WRITEABLE callbacks only. */
static void flush_stop(ws_frontend_t *fe)
{
    if (!fe->flush_init)
        return;
    while (fe->flush_head) {
        ws_conn_t *c = fe->flush_head;
        flush_unlink(c);
        if (c->live && c->out_len)
            lws_callback_on_writable(c->wsi);
    }
    uv_prepare_stop(&fe->flush);
    uv_close((uv_handle_t *)&fe->flush, NULL);
    uv_check_stop(&fe->after_poll);
    uv_close((uv_handle_t *)&fe->after_poll, NULL);
    uv_idle_stop(&fe->kick);
    uv_close((uv_handle_t *)&fe->kick, NULL);
    fe->flush_init = false;
}

static void timer_closed(uv_handle_t *h)
{
    ws_frontend_t *fe = h->data;
    if (fe->close_cb)
        fe->close_cb(fe->close_ctx);
}

/* Drives ws_frontend_close: phase 1 waits (bounded) for the sockets to say
 * goodbye, then starts lws's teardown; phase 2 gives lws's uv handles a few
 * loop iterations to close, then frees the context. */
static void close_tick(uv_timer_t *t)
{
    ws_frontend_t *fe = t->data;
    if (fe->close_phase == 1) {
        if (fe->n_conns > 0 && uv_now(fe->loop) - fe->close_started < WS_SHUTDOWN_WAIT_MS)
            return;
        flush_stop(fe);
        if (fe->ctx)
            lws_context_destroy(fe->ctx);
        fe->close_phase = 2;
        uv_timer_stop(t);
        uv_timer_start(t, close_tick, WS_DRAIN_MS, 0);
        return;
    }
    if (fe->ctx) {
        lws_context_destroy(fe->ctx);
        fe->ctx = NULL;
    }
    fe->close_phase = 3;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, timer_closed);
}

void ws_frontend_close(ws_frontend_t *fe, void (*cb)(void *ctx), void *ctx)
{
    if (fe->sweep_init) {
        uv_timer_stop(&fe->sweep);
        uv_close((uv_handle_t *)&fe->sweep, NULL);
        fe->sweep_init = false;
    }
    fe->close_cb = cb;
    fe->close_ctx = ctx;
    fe->close_phase = 1;
    fe->close_started = uv_now(fe->loop);
    for (ws_conn_t *c = fe->conns; c; c = c->next) {
        if (c->state == WS_CLOSING)
            continue;
        conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
    }
    uv_timer_init(fe->loop, &fe->timer);
    fe->timer.data = fe;
    fe->timer_init = true;
    uv_timer_start(&fe->timer, close_tick, 0, 10);
}

void ws_frontend_free(ws_frontend_t *fe)
{
    if (fe == NULL)
        return;
    hub_free(fe);
}
