/* mhtas_client.c -- the client's connection, calls and event stream.
 *
 * Shape
 *   One client owns at most one live connection (conn_t) at a time; a lost
 *   connection is torn down (its uv_tcp_t closing in the background, its
 *   memory freed in the close callback, STYLE.md 8.14) and a new one is
 *   started after a back-off. Unary calls (call_t) live on exactly one of
 *   three lists: `queued` (waiting for a READY connection), `active` (on an
 *   HTTP/2 stream of the current connection) or `doomed` (finished, their
 *   callback not yet run). The subscription is one call_t embedded in the
 *   client (never freed while the client lives, so an on_event callback that
 *   closes the client cannot pull it from under the read loop).
 *
 * Re-entrancy rules (why the code looks the way it does)
 *   - Unary callbacks never run inside an nghttp2 callback: a finished call
 *     is moved to `doomed`, and drain_doomed() runs the callbacks once the
 *     nghttp2 stack has unwound (end of the read callback, timers, close).
 *     drain_doomed() pops from the head each time, so a callback that issues
 *     calls or closes the client leaves the list consistent.
 *   - on_event and on_state(READY) do run inside nghttp2_session_mem_recv.
 *     conn->in_cb counts the depth; while it is non-zero, mem_send and
 *     nghttp2_session_del are deferred (conn_drop only marks the
 *     connection) and done by conn_after() once the stack unwinds.
 *   - The client's memory is freed only by mhtas_client_free, which the
 *     caller may call only after the close callback, i.e. after every handle
 *     of the client (its four timers and any connection's socket) is closed.
 *
 * Deadlines: one uv_timer_t per client, armed for the earliest deadline of
 * any queued or active call, rather than one timer per call. A per-call
 * timer would make every call's memory wait for its timer's close callback
 * (STYLE.md 8.14); with one timer a finished call is freed at once. Expiry
 * scans the lists, which is linear in the calls outstanding -- a handful for
 * the desktop client, hundreds at most for one load-test connection.
 */
#include "lib/mhtas_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "lib/mhc_wire.h"

#define DEFAULT_BACKOFF_MIN_MS 100
#define DEFAULT_BACKOFF_MAX_MS 5000
#define DEFAULT_DEADLINE_MS 10000
#define DEFAULT_CONNECT_TIMEOUT_MS 3000
#define DEFAULT_KEEPALIVE_MS 10000
#define DEFAULT_MAX_MESSAGE (4u << 20)
#define MAX_GRPC_MESSAGE 4096      /* longest grpc-message kept */
#define MAX_REFUSED_RETRIES 5      /* REFUSED_STREAM resends of one call */
#define STREAM_WINDOW (1 << 20)    /* our SETTINGS_INITIAL_WINDOW_SIZE */
#define NO_DEADLINE UINT64_MAX

typedef struct conn conn_t;
typedef struct call call_t;

/* ------------------------------------------------------------ types */

typedef enum {
    LIST_NONE = 0,
    LIST_QUEUED,
    LIST_ACTIVE,
    LIST_DOOMED,
} list_id_t;

typedef struct call_list {
    call_t *head, *tail;
} call_list_t;

struct call {
    mhtas_client_t *client;
    call_t *prev, *next;
    list_id_t list;
    bool is_sub;

    const ProtobufCMethodDescriptor *md;
    char path[96];
    mhc_retry_t retry;
    uint8_t *body;             /* prefix + packed request, kept for resends */
    size_t body_len, body_off;
    uint64_t deadline;         /* uv_now ms, or NO_DEADLINE */
    unsigned refused;          /* REFUSED_STREAM resends so far */
    mhtas_client_call_cb cb;
    void *ctx;

    /* the current attempt */
    conn_t *conn;              /* NULL when not on a stream */
    int32_t stream_id;
    int http_status;
    int grpc_status;           /* -1 until the hub sends one */
    char *grpc_message;        /* decoded, malloc'd */
    bool got_headers;
    mhc_reader_t reader;
    ProtobufCMessage *resp;    /* unary: the one response message */

    /* when doomed: what the callback will get */
    int final_status;
    const char *final_message; /* static, or NULL: use grpc_message */
};

typedef enum {
    CONN_CONNECTING = 0, /* uv_tcp_connect in flight */
    CONN_H2,             /* connected, preface sent, waiting for the hub's SETTINGS */
    CONN_READY,
    CONN_DEAD,           /* torn down; socket closing */
} conn_state_t;

struct conn {
    mhtas_client_t *client;
    conn_state_t state;
    uv_tcp_t tcp;
    uv_connect_t creq;
    nghttp2_session *session;
    unsigned in_cb;            /* depth inside nghttp2 mem_recv/mem_send */
    bool drop_pending;
    const char *drop_reason;
    bool goaway;               /* the hub sent GOAWAY: no new streams here */
    bool ping_outstanding;

    uint8_t *out, *wbuf;       /* nghttp2 output; wbuf is in uv_write */
    size_t out_len, out_cap, wbuf_len, wbuf_cap;
    bool writing;
    uv_write_t wreq;
    char rbuf[65536];
};

typedef enum {
    SUB_NONE = 0,
    SUB_ANCHOR,  /* WhoAmI in flight to learn the hub's last_seq */
    SUB_WAIT,    /* wants a stream: at the next READY or when t_sub fires */
    SUB_OPEN,    /* on a stream */
    SUB_ENDED,   /* refused for good, or closed */
} sub_state_t;

struct mhtas_client {
    uv_loop_t *loop;
    mhtas_client_options_t opts;   /* strings below are our copies */
    char *host, *token_header, *authority;
    struct sockaddr_storage addr;

    mhtas_client_state_t state;
    bool started, closing;
    unsigned handles;              /* open uv handles (timers + sockets) */
    void (*close_cb)(void *ctx);
    void *close_ctx;

    uint64_t rng;
    unsigned attempt;              /* reconnects since the last READY */
    conn_t *conn;                  /* the current connection, or NULL */

    uv_timer_t t_retry;            /* reconnect back-off */
    uv_timer_t t_keep;             /* connect timeout, then keepalive PINGs */
    uv_timer_t t_deadline;         /* earliest call deadline */
    uv_timer_t t_sub;              /* resubscribe back-off */
    uint64_t armed_deadline;

    call_list_t queued, active, doomed;

    sub_state_t sub_state;
    call_t sub;
    unsigned sub_attempt;
    uint64_t last_seq;

    mhtas_client_stats_t stats;
};

static void conn_start(mhtas_client_t *c);
static void conn_flush(conn_t *k);
static void conn_drop(conn_t *k, const char *reason);
static void conn_after(conn_t *k);
static void drain_doomed(mhtas_client_t *c);
static void sub_open(mhtas_client_t *c);
static void deadline_arm(mhtas_client_t *c, uint64_t deadline);
static void keep_fire(uv_timer_t *t);
static void sub_fire(uv_timer_t *t);
static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data);

/* ------------------------------------------------------------ names */

static const char *const status_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *mhtas_client_status_name(int s)
{
    return s >= 0 && s <= 16 ? status_names[s] : "UNKNOWN";
}

const char *mhtas_client_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case MHTAS_CLIENT_EINVAL:
        return "invalid argument";
    case MHTAS_CLIENT_ENOMEM:
        return "out of memory";
    case MHTAS_CLIENT_ECLOSED:
        return "client is closed";
    case MHTAS_CLIENT_ESTATE:
        return "not allowed in this state";
    default:
        return err < 0 ? uv_strerror(err) : "unknown error";
    }
}

/* ------------------------------------------------------------ lists */

static call_list_t *list_of(mhtas_client_t *c, list_id_t id)
{
    switch (id) {
    case LIST_QUEUED:
        return &c->queued;
    case LIST_ACTIVE:
        return &c->active;
    case LIST_DOOMED:
        return &c->doomed;
    default:
        return NULL;
    }
}

static void list_remove(call_t *call)
{
    call_list_t *l = list_of(call->client, call->list);
    if (l == NULL)
        return;
    if (call->prev)
        call->prev->next = call->next;
    else
        l->head = call->next;
    if (call->next)
        call->next->prev = call->prev;
    else
        l->tail = call->prev;
    call->prev = call->next = NULL;
    call->list = LIST_NONE;
}

static void list_append(call_t *call, list_id_t id)
{
    list_remove(call);
    call_list_t *l = list_of(call->client, id);
    call->prev = l->tail;
    call->next = NULL;
    if (l->tail)
        l->tail->next = call;
    else
        l->head = call;
    l->tail = call;
    call->list = id;
}

/* ------------------------------------------------------------ state */

static void set_state(mhtas_client_t *c, mhtas_client_state_t st, const char *reason, uint64_t retry_in)
{
    c->state = st;
    if (c->opts.on_state)
        c->opts.on_state(c->opts.ctx, st, reason, retry_in);
}

static void handle_closed(uv_handle_t *h)
{
    mhtas_client_t *c = h->data;
    c->handles--;
    if (c->closing && c->handles == 0 && c->close_cb) {
        void (*cb)(void *) = c->close_cb;
        c->close_cb = NULL;
        cb(c->close_ctx);
    }
}

/* ------------------------------------------------------------ calls */

static void attempt_reset(call_t *call)
{
    call->conn = NULL;
    call->stream_id = 0;
    call->http_status = 0;
    call->grpc_status = -1;
    free(call->grpc_message);
    call->grpc_message = NULL;
    call->got_headers = false;
    call->body_off = 0;
    mhc__reader_dispose(&call->reader);
    mhc__reader_init(&call->reader, call->client->opts.max_message_bytes);
    if (call->resp) {
        protobuf_c_message_free_unpacked(call->resp, NULL);
        call->resp = NULL;
    }
}

static void call_free(call_t *call)
{
    free(call->body);
    free(call->grpc_message);
    mhc__reader_dispose(&call->reader);
    if (call->resp)
        protobuf_c_message_free_unpacked(call->resp, NULL);
    free(call);
}

/* Takes the call off its stream: the stream's user data is cleared so that
 * later nghttp2 callbacks for it are ignored, and unless the connection is
 * going away anyway, the hub is told with RST_STREAM(CANCEL). */
static void call_detach(call_t *call, bool rst)
{
    conn_t *k = call->conn;
    if (k == NULL)
        return;
    if (k->session && k->state != CONN_DEAD && call->stream_id > 0) {
        nghttp2_session_set_stream_user_data(k->session, call->stream_id, NULL);
        if (rst)
            nghttp2_submit_rst_stream(k->session, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
    }
    call->conn = NULL;
    call->stream_id = 0;
}

/* Finishes a unary call: its callback will run from drain_doomed(). `msg`
 * is static; NULL means "what the hub sent" (call->grpc_message). */
static void call_doom(call_t *call, int status, const char *msg)
{
    call_detach(call, status != MHTAS_GRPC_OK && call->conn && !call->client->closing);
    call->final_status = status;
    call->final_message = msg;
    list_append(call, LIST_DOOMED);
}

/* Runs the callbacks of finished calls. Pops one at a time, so callbacks
 * may add calls, finish calls or close the client. */
static void drain_doomed(mhtas_client_t *c)
{
    call_t *call;
    while ((call = c->doomed.head) != NULL) {
        list_remove(call);
        const char *msg = call->final_message ? call->final_message
                          : call->grpc_message ? call->grpc_message
                                               : "";
        const ProtobufCMessage *resp = call->final_status == MHTAS_GRPC_OK ? call->resp : NULL;
        call->cb(call->ctx, call->final_status, msg, resp);
        call_free(call);
    }
}

/* Builds the request headers and opens a stream for `call` on `k`.
 * Returns 0, or -1 when nghttp2 refuses (no stream ids left). */
static int call_submit(conn_t *k, call_t *call)
{
    mhtas_client_t *c = k->client;
    attempt_reset(call);
    char timeout[16];
    nghttp2_nv nv[10];
    size_t n = 0;
#define NV(name, value, flags)                                                                     \
    nv[n++] = (nghttp2_nv){ (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, strlen(value), \
                            (flags) }
    NV(":method", "POST", NGHTTP2_NV_FLAG_NONE);
    NV(":scheme", "http", NGHTTP2_NV_FLAG_NONE);
    NV(":path", call->path, NGHTTP2_NV_FLAG_NONE);
    NV(":authority", c->authority, NGHTTP2_NV_FLAG_NONE);
    NV("content-type", "application/grpc", NGHTTP2_NV_FLAG_NONE);
    NV("te", "trailers", NGHTTP2_NV_FLAG_NONE);
    NV("user-agent", "mhtas-client/0.1", NGHTTP2_NV_FLAG_NONE);
    if (c->token_header)
        NV("authorization", c->token_header, NGHTTP2_NV_FLAG_NO_INDEX);
    if (call->deadline != NO_DEADLINE) {
        uint64_t now = uv_now(c->loop);
        mhc__format_timeout(call->deadline > now ? call->deadline - now : 1, timeout);
        NV("grpc-timeout", timeout, NGHTTP2_NV_FLAG_NONE);
    }
#undef NV
    nghttp2_data_provider prd;
    memset(&prd, 0, sizeof prd);
    prd.read_callback = read_body;
    int32_t id = nghttp2_submit_request(k->session, NULL, nv, n, &prd, call);
    if (id < 0)
        return -1;
    call->conn = k;
    call->stream_id = id;
    return 0;
}

/* Sends queued calls on the current connection when it is READY. */
static void pump_queue(mhtas_client_t *c)
{
    conn_t *k = c->conn;
    if (k == NULL || k->state != CONN_READY || k->goaway || c->closing)
        return;
    call_t *call;
    while ((call = c->queued.head) != NULL) {
        if (call_submit(k, call) < 0) {
            /* Out of stream ids: this connection is spent; the next one
             * takes the queue. */
            list_remove(call);
            list_append(call, LIST_QUEUED);
            conn_drop(k, "stream ids exhausted");
            return;
        }
        list_append(call, LIST_ACTIVE);
        c->stats.calls_sent++;
    }
    conn_flush(k);
}

/* Decides the fate of a call whose stream was lost without a status
 * (connection lost, or refused). */
static void call_lost(call_t *call, bool refused)
{
    mhtas_client_t *c = call->client;
    call->conn = NULL;
    call->stream_id = 0;
    if (c->closing) {
        call_doom(call, MHTAS_GRPC_CANCELLED, "client closed");
        return;
    }
    if (refused && ++call->refused > MAX_REFUSED_RETRIES) {
        call_doom(call, MHTAS_GRPC_UNAVAILABLE, "the hub refused the stream repeatedly");
        return;
    }
    if (refused || call->retry != MHC_RETRY_NEVER) {
        if (!refused)
            c->stats.calls_retried++;
        list_append(call, LIST_QUEUED);
        return;
    }
    call_doom(call, MHTAS_GRPC_UNAVAILABLE,
              "connection to the hub lost before the response: the call may or may not have taken effect");
}

/* ------------------------------------------------------------ deadlines */

static void deadline_fire(uv_timer_t *t)
{
    mhtas_client_t *c = t->data;
    uint64_t now = uv_now(c->loop);
    c->armed_deadline = NO_DEADLINE;
    call_list_t *lists[] = { &c->queued, &c->active };
    for (int i = 0; i < 2; i++) {
        call_t *next;
        for (call_t *call = lists[i]->head; call; call = next) {
            next = call->next;
            if (call->deadline <= now)
                call_doom(call, MHTAS_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
        }
    }
    uint64_t earliest = NO_DEADLINE;
    for (int i = 0; i < 2; i++)
        for (call_t *call = lists[i]->head; call; call = call->next)
            if (call->deadline < earliest)
                earliest = call->deadline;
    deadline_arm(c, earliest);
    if (c->conn)
        conn_after(c->conn); /* send the RST_STREAMs */
    drain_doomed(c);
}

static void deadline_arm(mhtas_client_t *c, uint64_t deadline)
{
    if (deadline == NO_DEADLINE || deadline >= c->armed_deadline || c->closing)
        return;
    c->armed_deadline = deadline;
    uint64_t now = uv_now(c->loop);
    uv_timer_start(&c->t_deadline, deadline_fire, deadline > now ? deadline - now : 0, 0);
}

/* ------------------------------------------------------------ nghttp2 callbacks */

/* The request body's data source: the call's packed bytes. The call is
 * found through the stream's user data, so a call that has been detached
 * (deadline, close) is never read after it is freed. */
static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                       uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    (void)source;
    (void)user_data;
    call_t *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (call == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t n = call->body_len - call->body_off;
    if (n > length)
        n = length;
    memcpy(buf, call->body + call->body_off, n);
    call->body_off += n;
    if (call->body_off == call->body_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    call_t *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (call == NULL)
        return 0;
    call->got_headers = true;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int s = 0;
        for (size_t i = 0; i < valuelen && i < 4; i++)
            s = s * 10 + (value[i] >= '0' && value[i] <= '9' ? value[i] - '0' : 0);
        call->http_status = s;
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int s = mhc__parse_status((const char *)value, valuelen);
        call->grpc_status = s < 0 ? MHTAS_GRPC_UNKNOWN : s;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        size_t len = valuelen > MAX_GRPC_MESSAGE ? MAX_GRPC_MESSAGE : valuelen;
        char *m = malloc(len + 1);
        if (m) {
            mhc__percent_decode((const char *)value, len, m);
            free(call->grpc_message);
            call->grpc_message = m;
        }
    }
    return 0;
}

/* One Event from the Subscribe stream: decode, drop duplicates, deliver. */
static int sub_deliver(mhtas_client_t *c, const uint8_t *msg, size_t len)
{
    Mhtas__V1__Event *ev = mhtas__v1__event__unpack(NULL, len, msg);
    if (ev == NULL)
        return -1;
    c->sub_attempt = 0;
    bool gap = ev->kind_case == MHTAS__V1__EVENT__KIND_NOTICE && ev->notice &&
               ev->notice->kind == MHTAS__V1__NOTICE_KIND__NOTICE_KIND_RESUME_GAP;
    if (gap) {
        /* A restarted hub numbers from 1 again: follow it down, or every new
         * event would look like a duplicate. A gap notice from a hub that
         * merely dropped old events carries its newest seq, and the events
         * it still holds follow: keep our mark so they are delivered. */
        if (ev->seq < c->last_seq)
            c->last_seq = ev->seq;
    } else if (ev->seq <= c->last_seq) {
        c->stats.events_duplicate++;
        mhtas__v1__event__free_unpacked(ev, NULL);
        return 0;
    } else {
        c->last_seq = ev->seq;
    }
    c->stats.events_delivered++;
    if (c->opts.on_event)
        c->opts.on_event(c->opts.ctx, ev);
    mhtas__v1__event__free_unpacked(ev, NULL);
    return 0;
}

static void sub_retry_later(mhtas_client_t *c)
{
    c->sub_state = SUB_WAIT;
    uint64_t d = mhc__backoff_ms(&c->rng, c->opts.backoff_min_ms, c->opts.backoff_max_ms, c->sub_attempt++);
    if (!c->closing)
        uv_timer_start(&c->t_sub, sub_fire, d, 0);
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    /* Flow control: automatic WINDOW_UPDATE is off; the bytes are processed
     * synchronously here, so they are consumed here. */
    nghttp2_session_consume(session, stream_id, len);
    call_t *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (call == NULL)
        return 0;
    mhtas_client_t *c = call->client;
    conn_t *k = call->conn;
    if (mhc__reader_feed(&call->reader, data, len) < 0) {
        if (call->is_sub) {
            call_detach(call, true);
            sub_retry_later(c);
        } else {
            call_doom(call, MHTAS_GRPC_RESOURCE_EXHAUSTED, "out of memory for the response");
        }
        return 0;
    }
    for (;;) {
        const uint8_t *msg;
        size_t mlen;
        int r = mhc__reader_next(&call->reader, &msg, &mlen);
        if (r == 0)
            break;
        if (r < 0) {
            const char *why = r == -12 ? "compressed response (not supported)"
                                       : "response larger than max_message_bytes";
            if (call->is_sub) {
                call_detach(call, true);
                sub_retry_later(c);
            } else {
                call_doom(call, -r, why);
            }
            return 0;
        }
        if (call->is_sub) {
            if (sub_deliver(c, msg, mlen) < 0) {
                call_detach(call, true);
                sub_retry_later(c);
                return 0;
            }
            /* on_event may have closed the client or dropped the stream. */
            if (c->closing || call->conn != k || c->sub_state != SUB_OPEN)
                return 0;
            continue;
        }
        if (call->resp) {
            call_doom(call, MHTAS_GRPC_INTERNAL, "more than one response message to a unary call");
            return 0;
        }
        call->resp = protobuf_c_message_unpack(call->md->output, NULL, mlen, msg);
        if (call->resp == NULL) {
            call_doom(call, MHTAS_GRPC_INTERNAL, "could not decode the response message");
            return 0;
        }
    }
    return 0;
}

/* The status of a stream that closed: the hub's grpc-status, or one
 * derived from the HTTP status or the RST_STREAM code. Sets *msg to a static
 * message when derived, NULL when the hub's message applies. */
static int stream_status(const call_t *call, uint32_t error_code, const char **msg)
{
    *msg = NULL;
    if (call->grpc_status >= 0)
        return call->grpc_status;
    if (call->http_status && call->http_status != 200) {
        *msg = "the hub answered with an HTTP error status";
        return mhc__http_to_grpc(call->http_status);
    }
    if (error_code != NGHTTP2_NO_ERROR) {
        *msg = "the hub reset the stream";
        return mhc__rst_to_grpc(error_code);
    }
    *msg = "the hub closed the stream without a grpc-status";
    return MHTAS_GRPC_INTERNAL;
}

static bool sub_status_final(int s)
{
    return s == MHTAS_GRPC_UNAUTHENTICATED || s == MHTAS_GRPC_PERMISSION_DENIED ||
           s == MHTAS_GRPC_INVALID_ARGUMENT || s == MHTAS_GRPC_UNIMPLEMENTED;
}

static void sub_end(mhtas_client_t *c, int status, const char *msg)
{
    c->sub_state = SUB_ENDED;
    uv_timer_stop(&c->t_sub);
    if (c->opts.on_stream_end)
        c->opts.on_stream_end(c->opts.ctx, status, msg ? msg : "");
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    (void)user_data;
    call_t *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (call == NULL)
        return 0;
    mhtas_client_t *c = call->client;
    call->conn = NULL;
    call->stream_id = 0;
    bool refused = !call->got_headers && error_code == NGHTTP2_REFUSED_STREAM;
    if (call->is_sub) {
        const char *msg;
        int s = stream_status(call, error_code, &msg);
        if (!refused && sub_status_final(s))
            sub_end(c, s, msg ? msg : call->grpc_message);
        else
            sub_retry_later(c);
        return 0;
    }
    if (refused) {
        call_lost(call, true);
        if (c->conn && c->conn->state == CONN_READY && !c->conn->goaway)
            pump_queue(c);
        return 0;
    }
    const char *msg;
    int s = stream_status(call, error_code, &msg);
    if (s == MHTAS_GRPC_OK && call->resp == NULL) {
        s = MHTAS_GRPC_INTERNAL;
        msg = "the hub sent OK without a response message";
    }
    call_doom(call, s, msg);
    return 0;
}

static void conn_ready(conn_t *k)
{
    mhtas_client_t *c = k->client;
    k->state = CONN_READY;
    c->attempt = 0;
    c->stats.connects++;
    uv_timer_stop(&c->t_keep);
    if (c->opts.keepalive_ms != UINT32_MAX)
        uv_timer_start(&c->t_keep, keep_fire, c->opts.keepalive_ms, c->opts.keepalive_ms);
    set_state(c, MHTAS_CLIENT_READY, "connected", 0);
    if (c->closing || c->conn != k || k->drop_pending)
        return;
    if (c->sub_state == SUB_WAIT)
        sub_open(c);
    pump_queue(c);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    conn_t *k = user_data;
    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && k->state == CONN_H2)
            conn_ready(k);
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            k->ping_outstanding = false;
        break;
    case NGHTTP2_GOAWAY:
        /* Streams above last_stream_id are closed by nghttp2 with
         * REFUSED_STREAM and resent on the next connection. */
        k->goaway = true;
        break;
    default:
        break;
    }
    return 0;
}

/* ------------------------------------------------------------ connection I/O */

static void conn_closed(uv_handle_t *h)
{
    conn_t *k = h->data;
    mhtas_client_t *c = k->client;
    free(k->out);
    free(k->wbuf);
    free(k);
    c->handles--;
    if (c->closing && c->handles == 0 && c->close_cb) {
        void (*cb)(void *) = c->close_cb;
        c->close_cb = NULL;
        cb(c->close_ctx);
    }
}

static void reconnect_fire(uv_timer_t *t)
{
    mhtas_client_t *c = t->data;
    if (!c->closing && c->conn == NULL)
        conn_start(c);
}

/* Tears a connection down now (never inside its nghttp2 stack: conn_drop
 * defers to here). Calls on it are resent or failed (call_lost), the
 * subscription waits for the next connection, and a reconnect is
 * scheduled. */
static void conn_kill(conn_t *k, const char *reason)
{
    if (k->state == CONN_DEAD)
        return;
    mhtas_client_t *c = k->client;
    bool was_ready = k->state == CONN_READY;
    k->state = CONN_DEAD;
    if (c->conn == k)
        c->conn = NULL;
    if (c->closing && k->session && was_ready) {
        /* Best effort: tell the hub we are going (no wait for the write). */
        nghttp2_session_terminate_session(k->session, NGHTTP2_NO_ERROR);
        const uint8_t *d;
        ssize_t n = nghttp2_session_mem_send(k->session, &d);
        if (n > 0 && !k->writing) {
            uv_buf_t b = uv_buf_init((char *)d, (unsigned)n);
            uv_try_write((uv_stream_t *)&k->tcp, &b, 1);
        }
    }
    if (k->session) {
        nghttp2_session_del(k->session);
        k->session = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&k->tcp))
        uv_close((uv_handle_t *)&k->tcp, conn_closed);
    uv_timer_stop(&c->t_keep);

    if (was_ready)
        c->stats.disconnects++;
    if (!c->closing) {
        uint64_t d = mhc__backoff_ms(&c->rng, c->opts.backoff_min_ms, c->opts.backoff_max_ms, c->attempt++);
        uv_timer_start(&c->t_retry, reconnect_fire, d, 0);
        set_state(c, MHTAS_CLIENT_DISCONNECTED, reason, d);
    }
    if (c->sub.conn == k) {
        c->sub.conn = NULL;
        c->sub.stream_id = 0;
        if (c->sub_state == SUB_OPEN)
            c->sub_state = SUB_WAIT;
    }
    /* The active list holds only calls on this connection (a new one is
     * never started while one lives). Pop from the head: call_lost moves
     * each call to another list. */
    call_t *call;
    while ((call = c->active.head) != NULL)
        call_lost(call, false);
    drain_doomed(c);
}

static void conn_drop(conn_t *k, const char *reason)
{
    if (k->state == CONN_DEAD)
        return;
    if (k->in_cb) {
        if (!k->drop_pending) {
            k->drop_pending = true;
            k->drop_reason = reason;
        }
        return;
    }
    conn_kill(k, reason);
}

static void on_write(uv_write_t *req, int status)
{
    conn_t *k = req->data;
    k->writing = false;
    if (k->state == CONN_DEAD)
        return;
    if (status < 0) {
        conn_drop(k, uv_strerror(status));
        drain_doomed(k->client);
        return;
    }
    conn_flush(k);
}

/* Moves nghttp2's pending output into the socket: at most one uv_write in
 * flight; what nghttp2 produces meanwhile waits in `out` (double buffer). */
static void conn_flush(conn_t *k)
{
    if (k->in_cb || k->state == CONN_DEAD || k->session == NULL || k->state == CONN_CONNECTING)
        return;
    const char *fail = NULL;
    k->in_cb++;
    for (;;) {
        const uint8_t *d;
        ssize_t n = nghttp2_session_mem_send(k->session, &d);
        if (n < 0) {
            fail = nghttp2_strerror((int)n);
            break;
        }
        if (n == 0)
            break;
        if (k->out_len + (size_t)n > k->out_cap) {
            size_t cap = k->out_cap ? k->out_cap : 16384;
            while (cap < k->out_len + (size_t)n)
                cap *= 2;
            uint8_t *p = realloc(k->out, cap);
            if (p == NULL) {
                fail = "out of memory";
                break;
            }
            k->out = p;
            k->out_cap = cap;
        }
        memcpy(k->out + k->out_len, d, (size_t)n);
        k->out_len += (size_t)n;
    }
    k->in_cb--;
    if (k->drop_pending || fail) {
        conn_kill(k, k->drop_pending ? k->drop_reason : fail);
        return;
    }
    if (!k->writing && k->out_len) {
        uint8_t *tp = k->wbuf;
        size_t tc = k->wbuf_cap;
        k->wbuf = k->out;
        k->wbuf_cap = k->out_cap;
        k->wbuf_len = k->out_len;
        k->out = tp;
        k->out_cap = tc;
        k->out_len = 0;
        uv_buf_t b = uv_buf_init((char *)k->wbuf, (unsigned)k->wbuf_len);
        k->wreq.data = k;
        int rc = uv_write(&k->wreq, (uv_stream_t *)&k->tcp, &b, 1, on_write);
        if (rc < 0) {
            conn_kill(k, uv_strerror(rc));
            return;
        }
        k->writing = true;
    }
    if (!k->writing && !nghttp2_session_want_read(k->session) && !nghttp2_session_want_write(k->session))
        conn_kill(k, k->goaway ? "the hub closed the session (GOAWAY)" : "session finished");
}

/* Called at the end of every entry point that may have touched nghttp2:
 * performs a deferred drop, else flushes. */
static void conn_after(conn_t *k)
{
    if (k->in_cb || k->state == CONN_DEAD)
        return;
    if (k->drop_pending) {
        conn_kill(k, k->drop_reason);
        return;
    }
    conn_flush(k);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *k = h->data;
    *buf = uv_buf_init(k->rbuf, sizeof k->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *k = s->data;
    mhtas_client_t *c = k->client;
    if (k->state == CONN_DEAD)
        return;
    if (nread < 0) {
        conn_drop(k, nread == UV_EOF ? "the hub closed the connection" : uv_strerror((int)nread));
        drain_doomed(c);
        return;
    }
    if (nread == 0)
        return;
    k->in_cb++;
    ssize_t rv = nghttp2_session_mem_recv(k->session, (const uint8_t *)buf->base, (size_t)nread);
    k->in_cb--;
    if (rv < 0 && !k->drop_pending) {
        k->drop_pending = true;
        k->drop_reason = nghttp2_strerror((int)rv);
    }
    conn_after(k);
    drain_doomed(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *k = req->data;
    mhtas_client_t *c = k->client;
    if (k->state == CONN_DEAD)
        return;
    if (status < 0) {
        conn_kill(k, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&k->tcp, 1);

    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        conn_kill(k, "out of memory");
        return;
    }
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        conn_kill(k, "out of memory");
        return;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rv = nghttp2_session_client_new2(&k->session, cbs, k, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rv != 0) {
        k->session = NULL;
        conn_kill(k, "out of memory");
        return;
    }
    /* h2c with prior knowledge: the client preface goes out with our
     * SETTINGS on the first mem_send. */
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 65536 },
    };
    nghttp2_submit_settings(k->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(k->session, NGHTTP2_FLAG_NONE, 0, 4 * STREAM_WINDOW);
    k->state = CONN_H2;
    int rc = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
    if (rc < 0) {
        conn_kill(k, uv_strerror(rc));
        return;
    }
    conn_flush(k);
    (void)c;
}

static void keep_fire(uv_timer_t *t)
{
    mhtas_client_t *c = t->data;
    conn_t *k = c->conn;
    if (k == NULL || c->closing)
        return;
    if (k->state != CONN_READY) {
        conn_drop(k, k->state == CONN_CONNECTING ? "connect timeout" : "no SETTINGS from the hub in time");
        drain_doomed(c);
        return;
    }
    if (k->ping_outstanding) {
        conn_drop(k, "keepalive timeout (no PING ACK)");
        drain_doomed(c);
        return;
    }
    k->ping_outstanding = true;
    nghttp2_submit_ping(k->session, NGHTTP2_FLAG_NONE, NULL);
    conn_after(k);
    drain_doomed(c);
}

static void conn_start(mhtas_client_t *c)
{
    conn_t *k = calloc(1, sizeof *k);
    if (k == NULL) {
        uv_timer_start(&c->t_retry, reconnect_fire, c->opts.backoff_max_ms, 0);
        return;
    }
    k->client = c;
    k->state = CONN_CONNECTING;
    uv_tcp_init(c->loop, &k->tcp);
    k->tcp.data = k;
    k->creq.data = k;
    c->handles++;
    c->conn = k;
    set_state(c, MHTAS_CLIENT_CONNECTING, "connecting", 0);
    if (c->closing || c->conn != k)
        return;
    int rc = uv_tcp_connect(&k->creq, &k->tcp, (const struct sockaddr *)&c->addr, on_connect);
    if (rc < 0) {
        conn_kill(k, uv_strerror(rc));
        return;
    }
    uv_timer_start(&c->t_keep, keep_fire, c->opts.connect_timeout_ms, 0);
}

/* ------------------------------------------------------------ subscription */

static void sub_fire(uv_timer_t *t)
{
    mhtas_client_t *c = t->data;
    if (c->sub_state == SUB_WAIT)
        sub_open(c);
}

/* Opens Subscribe(after_seq = last delivered) on the READY connection. */
static void sub_open(mhtas_client_t *c)
{
    conn_t *k = c->conn;
    if (c->sub_state != SUB_WAIT || c->closing || k == NULL || k->state != CONN_READY || k->goaway)
        return;
    uv_timer_stop(&c->t_sub);
    Mhtas__V1__SubscribeRequest req = MHTAS__V1__SUBSCRIBE_REQUEST__INIT;
    req.after_seq = c->last_seq;
    size_t len = mhtas__v1__subscribe_request__get_packed_size(&req);
    uint8_t *body = malloc(MHC_PREFIX_LEN + len);
    if (body == NULL) {
        sub_retry_later(c);
        return;
    }
    mhc__prefix_encode(body, (uint32_t)len);
    mhtas__v1__subscribe_request__pack(&req, body + MHC_PREFIX_LEN);
    free(c->sub.body);
    c->sub.body = body;
    c->sub.body_len = MHC_PREFIX_LEN + len;
    if (call_submit(k, &c->sub) < 0) {
        sub_retry_later(c);
        conn_drop(k, "stream ids exhausted");
        return;
    }
    c->sub_state = SUB_OPEN;
    c->stats.subscribes++;
    conn_flush(k);
}

static void anchor_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    mhtas_client_t *c = ctx;
    if (c->sub_state != SUB_ANCHOR)
        return;
    if (status == MHTAS_GRPC_OK) {
        const Mhtas__V1__WhoAmIResponse *w = (const Mhtas__V1__WhoAmIResponse *)resp;
        if (c->last_seq == 0)
            c->last_seq = w->last_seq;
    } else if (sub_status_final(status)) {
        sub_end(c, status, message);
        return;
    }
    /* Other failures: subscribe from "now" without the anchor. */
    c->sub_state = SUB_WAIT;
    sub_open(c);
}

/* ------------------------------------------------------------ public API */

mhtas_client_t *mhtas_client_new(uv_loop_t *loop, const mhtas_client_options_t *opts)
{
    if (loop == NULL || opts == NULL || opts->host == NULL || opts->port <= 0 || opts->port > 65535)
        return NULL;
    mhtas_client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->loop = loop;
    c->opts = *opts;
    if (uv_ip4_addr(opts->host, opts->port, (struct sockaddr_in *)&c->addr) != 0 &&
        uv_ip6_addr(opts->host, opts->port, (struct sockaddr_in6 *)&c->addr) != 0)
        goto fail;
    c->host = strdup(opts->host);
    if (c->host == NULL)
        goto fail;
    if (opts->token && opts->token[0]) {
        size_t n = strlen(opts->token) + 8;
        c->token_header = malloc(n);
        if (c->token_header == NULL)
            goto fail;
        snprintf(c->token_header, n, "Bearer %s", opts->token);
    }
    if (opts->authority) {
        c->authority = strdup(opts->authority);
    } else {
        size_t n = strlen(opts->host) + 16;
        c->authority = malloc(n);
        if (c->authority)
            snprintf(c->authority, n, strchr(opts->host, ':') ? "[%s]:%d" : "%s:%d", opts->host, opts->port);
    }
    if (c->authority == NULL)
        goto fail;
    /* The copies replace the caller's pointers; opts may go away now. */
    c->opts.host = c->host;
    c->opts.token = NULL;
    c->opts.authority = c->authority;
    if (!c->opts.backoff_min_ms)
        c->opts.backoff_min_ms = DEFAULT_BACKOFF_MIN_MS;
    if (!c->opts.backoff_max_ms)
        c->opts.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
    if (c->opts.backoff_max_ms < c->opts.backoff_min_ms)
        c->opts.backoff_max_ms = c->opts.backoff_min_ms;
    if (!c->opts.default_deadline_ms)
        c->opts.default_deadline_ms = DEFAULT_DEADLINE_MS;
    if (!c->opts.connect_timeout_ms)
        c->opts.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (!c->opts.keepalive_ms)
        c->opts.keepalive_ms = DEFAULT_KEEPALIVE_MS;
    if (!c->opts.max_message_bytes)
        c->opts.max_message_bytes = DEFAULT_MAX_MESSAGE;
    c->rng = opts->rng_seed ? mhc__rng_seed(opts->rng_seed, 0)
                            : mhc__rng_seed((uint64_t)(uintptr_t)c ^ (uint64_t)getpid() << 32, uv_hrtime());
    c->armed_deadline = NO_DEADLINE;

    c->sub.client = c;
    c->sub.is_sub = true;
    c->sub.deadline = NO_DEADLINE;
    c->sub.grpc_status = -1;
    snprintf(c->sub.path, sizeof c->sub.path, "/%s/Subscribe", mhtas__v1__hub__descriptor.name);
    mhc__reader_init(&c->sub.reader, c->opts.max_message_bytes);

    /* Nothing below can fail: the timers are the last step. */
    uv_timer_t *timers[] = { &c->t_retry, &c->t_keep, &c->t_deadline, &c->t_sub };
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = c;
        c->handles++;
    }
    c->state = MHTAS_CLIENT_IDLE;
    return c;

fail:
    free(c->host);
    free(c->token_header);
    free(c->authority);
    free(c);
    return NULL;
}

int mhtas_client_start(mhtas_client_t *c)
{
    if (c->closing)
        return MHTAS_CLIENT_ECLOSED;
    if (c->started)
        return MHTAS_CLIENT_ESTATE;
    c->started = true;
    conn_start(c);
    drain_doomed(c);
    return 0;
}

mhtas_client_state_t mhtas_client_state(const mhtas_client_t *c)
{
    return c->state;
}

int mhtas_client_call(mhtas_client_t *c, const char *method, const ProtobufCMessage *req, int64_t deadline_ms,
                      mhtas_client_call_cb cb, void *ctx)
{
    if (c->closing)
        return MHTAS_CLIENT_ECLOSED;
    if (method == NULL || req == NULL || cb == NULL)
        return MHTAS_CLIENT_EINVAL;
    const ProtobufCMethodDescriptor *md =
        protobuf_c_service_descriptor_get_method_by_name(&mhtas__v1__hub__descriptor, method);
    if (md == NULL || strcmp(md->name, "Subscribe") == 0 || req->descriptor != md->input)
        return MHTAS_CLIENT_EINVAL;

    call_t *call = calloc(1, sizeof *call);
    if (call == NULL)
        return MHTAS_CLIENT_ENOMEM;
    call->client = c;
    call->md = md;
    call->cb = cb;
    call->ctx = ctx;
    call->grpc_status = -1;
    call->retry = mhc__retry_class(md->name);
    snprintf(call->path, sizeof call->path, "/%s/%s", mhtas__v1__hub__descriptor.name, md->name);
    mhc__reader_init(&call->reader, c->opts.max_message_bytes);

    /* Serialise now: `req` is borrowed only for this call. An empty
     * idempotency field is filled in a shallow copy of the request, so
     * resends carry the same key and the caller's message is untouched. */
    const ProtobufCMessage *to_pack = req;
    void *copy = NULL;
    char key[40];
    const char *kf = mhc__key_field(md->name);
    const ProtobufCFieldDescriptor *fd =
        kf ? protobuf_c_message_descriptor_get_field_by_name(md->input, kf) : NULL;
    if (fd && fd->type == PROTOBUF_C_TYPE_STRING && fd->label != PROTOBUF_C_LABEL_REPEATED) {
        const char *cur = *(char *const *)((const char *)req + fd->offset);
        if (cur == NULL || cur[0] == '\0') {
            copy = malloc(md->input->sizeof_message);
            if (copy == NULL) {
                call_free(call);
                return MHTAS_CLIENT_ENOMEM;
            }
            memcpy(copy, req, md->input->sizeof_message);
            mhc__make_key(&c->rng, key);
            *(char **)((char *)copy + fd->offset) = key;
            to_pack = copy;
        }
    }
    size_t len = protobuf_c_message_get_packed_size(to_pack);
    if (len > UINT32_MAX - MHC_PREFIX_LEN) {
        free(copy);
        call_free(call);
        return MHTAS_CLIENT_EINVAL;
    }
    call->body = malloc(MHC_PREFIX_LEN + len);
    if (call->body == NULL) {
        free(copy);
        call_free(call);
        return MHTAS_CLIENT_ENOMEM;
    }
    mhc__prefix_encode(call->body, (uint32_t)len);
    protobuf_c_message_pack(to_pack, call->body + MHC_PREFIX_LEN);
    call->body_len = MHC_PREFIX_LEN + len;
    free(copy);

    uint64_t now = uv_now(c->loop);
    if (deadline_ms == 0)
        deadline_ms = c->opts.default_deadline_ms;
    call->deadline = deadline_ms < 0 ? NO_DEADLINE : now + (uint64_t)deadline_ms;

    bool ready = c->conn && c->conn->state == CONN_READY && !c->conn->goaway;
    if (!ready && c->opts.fail_fast) {
        list_append(call, LIST_QUEUED);
        call_doom(call, MHTAS_GRPC_UNAVAILABLE, "not connected to the hub");
        drain_doomed(c);
        return 0;
    }
    list_append(call, LIST_QUEUED);
    deadline_arm(c, call->deadline);
    pump_queue(c);
    drain_doomed(c);
    return 0;
}

int mhtas_client_subscribe(mhtas_client_t *c, uint64_t after_seq)
{
    if (c->closing)
        return MHTAS_CLIENT_ECLOSED;
    if (c->opts.on_event == NULL)
        return MHTAS_CLIENT_EINVAL;
    if (c->sub_state != SUB_NONE)
        return MHTAS_CLIENT_ESTATE;
    c->last_seq = after_seq;
    if (after_seq == 0) {
        Mhtas__V1__WhoAmIRequest w = MHTAS__V1__WHO_AM_IREQUEST__INIT;
        c->sub_state = SUB_ANCHOR;
        int rc = mhtas_client_call(c, "WhoAmI", &w.base, MHTAS_CLIENT_NO_DEADLINE, anchor_done, c);
        if (rc < 0)
            c->sub_state = SUB_NONE;
        return rc;
    }
    c->sub_state = SUB_WAIT;
    sub_open(c);
    return 0;
}

uint64_t mhtas_client_last_seq(const mhtas_client_t *c)
{
    return c->last_seq;
}

void mhtas_client_get_stats(const mhtas_client_t *c, mhtas_client_stats_t *out)
{
    *out = c->stats;
}

void mhtas_client_close(mhtas_client_t *c, void (*cb)(void *ctx), void *ctx)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    c->close_ctx = ctx;
    uv_timer_t *timers[] = { &c->t_retry, &c->t_keep, &c->t_deadline, &c->t_sub };
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_stop(timers[i]);
        uv_close((uv_handle_t *)timers[i], handle_closed);
    }
    /* Calls first (their streams need no RST: the session goes), then the
     * connection, then the callbacks. */
    call_t *call;
    while ((call = c->active.head) != NULL)
        call_doom(call, MHTAS_GRPC_CANCELLED, "client closed");
    while ((call = c->queued.head) != NULL)
        call_doom(call, MHTAS_GRPC_CANCELLED, "client closed");
    if (c->sub.conn) {
        conn_t *k = c->sub.conn;
        if (k->session && k->state != CONN_DEAD && c->sub.stream_id > 0)
            nghttp2_session_set_stream_user_data(k->session, c->sub.stream_id, NULL);
        c->sub.conn = NULL;
        c->sub.stream_id = 0;
    }
    if (c->conn)
        conn_drop(c->conn, "closed by caller");
    c->state = MHTAS_CLIENT_CLOSED;
    if (c->opts.on_state)
        c->opts.on_state(c->opts.ctx, MHTAS_CLIENT_CLOSED, "closed by caller", 0);
    if (c->sub_state != SUB_NONE && c->sub_state != SUB_ENDED)
        sub_end(c, MHTAS_GRPC_CANCELLED, "client closed");
    drain_doomed(c);
}

void mhtas_client_free(mhtas_client_t *c)
{
    if (c == NULL)
        return;
    free(c->sub.body);
    free(c->sub.grpc_message);
    mhc__reader_dispose(&c->sub.reader);
    free(c->host);
    free(c->token_header);
    free(c->authority);
    free(c);
}
