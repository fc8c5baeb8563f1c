/* mhtas_client.h -- the C client of the mhtas hub's gRPC API.
 *
 * One library for every C program that talks to the hub: the desktop client,
 * the radio relay, the load test, the CLI and the tests. It runs on the
 * caller's libuv loop (it never runs or stops the loop itself), speaks gRPC
 * over cleartext HTTP/2 with prior knowledge (h2c) through nghttp2, and
 * encodes messages with protobuf-c (the generated Mhtas__V1__* types of
 * proto/mhtas/v1/hub.proto). It keeps no global state: any number of
 * clients may share one loop, and each client is used from its loop's thread
 * only.
 *
 * What it does for the caller
 *   - Unary calls to any method of mhtas.v1.Hub by name, with a deadline per
 *     call (a local timer, plus the grpc-timeout header for the hub). The
 *     callback gets the gRPC status and the percent-decoded grpc-message.
 *   - The Subscribe stream, kept open across reconnects: the library resumes
 *     with after_seq = the last sequence number it delivered and drops
 *     duplicates by seq, so the application sees each event once.
 *   - Reconnection with exponential back-off and full jitter, and an HTTP/2
 *     PING keepalive that notices a hub that stopped answering.
 *   - Idempotency keys for state changes, generated when the request left
 *     them empty, so a request resent after a reconnect is not recorded twice.
 *   - A clean shutdown: mhtas_client_close() cancels what is outstanding and
 *     tells the caller when every handle is closed.
 *
 * Build: #include "lib/mhtas_client.h" with -Iclient -Ibuild/gen; link
 * build/rel/libmhtas.a (the client/lib objects and the generated hub.pb-c.o) and
 * libuv, libnghttp2, libprotobuf-c. The client objects need nothing from
 * server/.
 *
 * Lifecycle
 *     c = mhtas_client_new(loop, &opts);      -- nothing happens yet
 *     mhtas_client_start(c);                  -- connects (and keeps connecting)
 *     mhtas_client_subscribe(c, 0);           -- optional, any time before close
 *     mhtas_client_call(c, "WhoAmI", &req.base, 0, cb, ctx);
 *     ...
 *     mhtas_client_close(c, closed_cb, ctx);  -- later: closed_cb fires
 *     mhtas_client_free(c);                   -- in or after closed_cb
 *
 * Calls while disconnected: WAIT (the default). A call made while the client
 * is connecting or disconnected waits for the connection until its deadline,
 * then completes with DEADLINE_EXCEEDED (4). A desktop client rides out a hub
 * restart of a few seconds without the user seeing errors, and the deadline
 * still bounds the wait. Set `fail_fast` in the options to get UNAVAILABLE
 * (14) at once instead (the load test wants that).
 *
 * Retries: a call whose connection is lost before its response arrives is
 *   - resent on the next connection (same bytes, same deadline) when it is
 *       * a read: WhoAmI, GetIncident, ListIncidents, GetBoard,
 *         GetIndicators, or
 *       * a state change that carries an idempotency key: RaiseIncident
 *         (idempotency_key), CancelIncident (idempotency_key), PostMessage
 *         (client_msg_id), AgreeOutcome (idempotency_key) -- the library
 *         fills the key in when the caller left it empty, so these are
 *         always retried;
 *   - completed with UNAVAILABLE (14) otherwise: StartShift, EndShift,
 *     SetAvailability, Accept, Decline, ProposeOutcome, Reassign. The
 *     message says the call may or may not have taken effect; the caller
 *     decides (GetIncident tells it).
 *   Any call the hub provably did not process (its stream was refused: past
 *   a GOAWAY's last stream id, or REFUSED_STREAM) is resent whatever its
 *   method. A call that got a gRPC status is never retried by the library.
 *
 * Callbacks
 *   Every callback runs on the loop thread, from inside uv_run. A callback
 *   may call any function of this header, including mhtas_client_close(),
 *   but must not call mhtas_client_free() except from the close callback.
 *   Each call's callback fires exactly once (also on close: CANCELLED).
 *
 * Errors: functions returning int return 0 or a negative MHTAS_CLIENT_E*
 * (or a negative libuv error from mhtas_client_start).
 */
#ifndef MHTAS_CLIENT_H
#define MHTAS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "mhtas/v1/hub.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ statuses */

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum {
    MHTAS_GRPC_OK = 0,
    MHTAS_GRPC_CANCELLED = 1,
    MHTAS_GRPC_UNKNOWN = 2,
    MHTAS_GRPC_INVALID_ARGUMENT = 3,
    MHTAS_GRPC_DEADLINE_EXCEEDED = 4,
    MHTAS_GRPC_NOT_FOUND = 5,
    MHTAS_GRPC_ALREADY_EXISTS = 6,
    MHTAS_GRPC_PERMISSION_DENIED = 7,
    MHTAS_GRPC_RESOURCE_EXHAUSTED = 8,
    MHTAS_GRPC_FAILED_PRECONDITION = 9,
    MHTAS_GRPC_ABORTED = 10,
    MHTAS_GRPC_OUT_OF_RANGE = 11,
    MHTAS_GRPC_UNIMPLEMENTED = 12,
    MHTAS_GRPC_INTERNAL = 13,
    MHTAS_GRPC_UNAVAILABLE = 14,
    MHTAS_GRPC_DATA_LOSS = 15,
    MHTAS_GRPC_UNAUTHENTICATED = 16,
};

/* "OK", "INVALID_ARGUMENT", ... for 0..16; "UNKNOWN" otherwise. Static. */
const char *mhtas_client_status_name(int grpc_status);

/* Errors returned by the functions below (never passed to callbacks). */
enum {
    MHTAS_CLIENT_EINVAL = -1,   /* bad argument: unknown method, wrong request type, ... */
    MHTAS_CLIENT_ENOMEM = -2,
    MHTAS_CLIENT_ECLOSED = -3,  /* mhtas_client_close() was called */
    MHTAS_CLIENT_ESTATE = -4,   /* not allowed now (e.g. start twice, subscribe twice) */
};

/* "invalid argument", ... Static. */
const char *mhtas_client_strerror(int err);

/* ------------------------------------------------------------ options */

typedef enum {
    MHTAS_CLIENT_IDLE = 0,        /* created, not started */
    MHTAS_CLIENT_CONNECTING,      /* a TCP connect (or the hub's SETTINGS) is awaited */
    MHTAS_CLIENT_READY,           /* connected: calls are sent */
    MHTAS_CLIENT_DISCONNECTED,    /* lost or failed; a reconnect is scheduled */
    MHTAS_CLIENT_CLOSED,          /* mhtas_client_close() was called */
} mhtas_client_state_t;

/* Connection state changes. `reason` is a short static or loop-lived string
 * ("connected", "connection refused", "keepalive timeout", "closed by
 * caller", ...), borrowed for the duration of the callback. For
 * DISCONNECTED, `retry_in_ms` is the back-off before the next attempt
 * (0 for the other states). */
typedef void (*mhtas_client_state_cb)(void *ctx, mhtas_client_state_t state, const char *reason,
                                      uint64_t retry_in_ms);

/* One event of the Subscribe stream, delivered once (de-duplicated by seq).
 * `ev` is borrowed: valid until the callback returns; copy what you keep.
 * A Notice of kind NOTICE_KIND_RESUME_GAP means events were lost (the hub
 * no longer held them, or it restarted): reload what you display. */
typedef void (*mhtas_client_event_cb)(void *ctx, const Mhtas__V1__Event *ev);

/* The Subscribe stream ended for good: the hub answered with a status that a
 * retry cannot change (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT,
 * UNIMPLEMENTED), or the client was closed (CANCELLED). Other endings
 * (connection lost, hub shutting down, UNAVAILABLE, INTERNAL, a stream that
 * ends OK) are retried with back-off and never reported here.
 * `message` is borrowed for the duration of the callback. */
typedef void (*mhtas_client_stream_end_cb)(void *ctx, int grpc_status, const char *message);

typedef struct mhtas_client_options {
    const char *host;            /* IPv4 or IPv6 literal (no name lookup on the loop); copied */
    int port;                    /* the hub's gRPC port */
    const char *token;           /* bearer token, sent as "authorization: Bearer <token>"; copied */
    const char *authority;       /* :authority; NULL: "host:port"; copied */

    /* 0 takes the default given in brackets. */
    uint32_t backoff_min_ms;     /* first reconnect delay cap [100] */
    uint32_t backoff_max_ms;     /* largest reconnect delay [5000] */
    uint32_t default_deadline_ms; /* for calls made with deadline_ms == 0 [10000] */
    uint32_t connect_timeout_ms; /* TCP connect plus the hub's SETTINGS [3000] */
    uint32_t keepalive_ms;       /* PING period when connected; no ACK within one
                                    period drops the connection [10000];
                                    UINT32_MAX disables it */
    uint32_t max_message_bytes;  /* largest response or event accepted [4 MiB] */
    bool fail_fast;              /* calls made while not READY fail with UNAVAILABLE */
    uint64_t rng_seed;           /* 0: seeded from the client's address and uv_hrtime */

    mhtas_client_state_cb on_state;          /* may be NULL */
    mhtas_client_event_cb on_event;          /* may be NULL (then do not subscribe) */
    mhtas_client_stream_end_cb on_stream_end; /* may be NULL */
    void *ctx;                               /* passed to the three callbacks above */
} mhtas_client_options_t;

/* ------------------------------------------------------------ lifecycle */

typedef struct mhtas_client mhtas_client_t;

/* Creates a client on `loop` (borrowed: it must outlive the client). Copies
 * every string of `opts`; `opts` itself may be discarded afterwards. Creates
 * the client's timers on the loop but does not connect. Returns NULL on a
 * bad option (no host, a host that is not an IP literal, port out of range)
 * or out of memory. */
mhtas_client_t *mhtas_client_new(uv_loop_t *loop, const mhtas_client_options_t *opts);

/* Starts connecting. From here on the client reconnects by itself until it
 * is closed. Returns 0, MHTAS_CLIENT_ESTATE if already started or closed. */
int mhtas_client_start(mhtas_client_t *c);

/* The current state (also reported through on_state). */
mhtas_client_state_t mhtas_client_state(const mhtas_client_t *c);

/* Closes the client: completes every outstanding call with CANCELLED (1)
 * before returning (their callbacks run inside this function), ends the
 * subscription (on_stream_end with CANCELLED if one was open), drops the
 * connection, and closes every handle. `cb(ctx)` (may be NULL) fires from
 * the loop once the last handle is closed; the loop must keep running until
 * then. Calling it again is a no-op. Safe inside any callback of this
 * client. */
void mhtas_client_close(mhtas_client_t *c, void (*cb)(void *ctx), void *ctx);

/* Frees a closed client: call it from the close callback or after it fired
 * (never before). NULL is a no-op. */
void mhtas_client_free(mhtas_client_t *c);

/* ------------------------------------------------------------ calls */

/* Completion of a unary call, fired exactly once.
 *   grpc_status   MHTAS_GRPC_* from the hub, or produced locally:
 *                 DEADLINE_EXCEEDED (deadline passed), CANCELLED (client
 *                 closed), UNAVAILABLE (fail_fast, or lost connection for a
 *                 call that is not retried), INTERNAL/RESOURCE_EXHAUSTED (a
 *                 malformed or oversized response).
 *   grpc_message  never NULL ("" when the hub sent none); percent-decoded;
 *                 borrowed for the duration of the callback.
 *   resp          the decoded response (of the method's output type, e.g.
 *                 Mhtas__V1__WhoAmIResponse) when grpc_status is OK, else
 *                 NULL; borrowed: freed when the callback returns. */
typedef void (*mhtas_client_call_cb)(void *ctx, int grpc_status, const char *grpc_message,
                                     const ProtobufCMessage *resp);

#define MHTAS_CLIENT_NO_DEADLINE (-1)

/* Calls the unary method `method` of mhtas.v1.Hub ("WhoAmI", "Accept", ...
 * as in hub.proto; path "/mhtas.v1.Hub/<method>").
 *   req          a message of the method's input type (checked); borrowed:
 *                it is serialised before this function returns. When the
 *                method has an idempotency field (see "Retries") that is
 *                empty, the bytes sent carry a generated key; `req` itself is
 *                not modified.
 *   deadline_ms  > 0: milliseconds from now; 0: the client's default;
 *                MHTAS_CLIENT_NO_DEADLINE: none.
 *   cb, ctx      completion (required); ctx is the caller's.
 * The call is sent at once when READY, else queued (see "Calls while
 * disconnected"). With fail_fast and not READY, cb fires with UNAVAILABLE
 * before this function returns and the return value is still 0.
 * Returns 0 (cb will fire exactly once), or a negative MHTAS_CLIENT_E* (cb
 * will not fire): EINVAL for an unknown method, Subscribe, a request of the
 * wrong type or a NULL cb; ECLOSED after close; ENOMEM. */
int mhtas_client_call(mhtas_client_t *c, const char *method, const ProtobufCMessage *req,
                      int64_t deadline_ms, mhtas_client_call_cb cb, void *ctx);

/* ------------------------------------------------------------ events */

/* Opens the Subscribe stream and keeps it open (across reconnects) until the
 * client is closed or the hub refuses it for good (on_stream_end). Events go
 * to opts.on_event.
 *   after_seq  0: start from "now" -- the library first asks WhoAmI for the
 *              hub's last_seq and subscribes after it, so that even the first
 *              reconnect resumes without a gap; n > 0: every event after n
 *              the hub still holds, then new ones.
 * Returns 0, MHTAS_CLIENT_ESTATE if already subscribed, MHTAS_CLIENT_EINVAL
 * without an on_event callback, MHTAS_CLIENT_ECLOSED after close. */
int mhtas_client_subscribe(mhtas_client_t *c, uint64_t after_seq);

/* The seq of the last event delivered to on_event (0 before any). */
uint64_t mhtas_client_last_seq(const mhtas_client_t *c);

/* ------------------------------------------------------------ counters */

typedef struct mhtas_client_stats {
    uint64_t connects;         /* connections that reached READY */
    uint64_t disconnects;      /* READY connections lost */
    uint64_t calls_sent;       /* HTTP/2 streams opened for unary calls (retries count again) */
    uint64_t calls_retried;    /* calls resent after a lost connection */
    uint64_t events_delivered;
    uint64_t events_duplicate; /* dropped by the seq check */
    uint64_t subscribes;       /* Subscribe streams opened */
} mhtas_client_stats_t;

/* Copies the client's counters into *out. */
void mhtas_client_get_stats(const mhtas_client_t *c, mhtas_client_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif
