/* hub.h -- what the front ends (gRPC, WebSocket) see of the hub.
 *
 * One dispatch path: a front end authenticates the caller, decodes a request
 * into the method's protobuf-c message and hands it to hub_call(); the hub
 * checks the role, runs the domain core and answers through a callback. The
 * hub never sees HTTP/2 or WebSocket frames, and no business rule lives in a
 * front end.
 *
 * Events: a front end that serves Subscribe (a gRPC stream, or a WebSocket
 * that sent `subscribe`) calls hub_subscribe(); the hub calls its callback for
 * every event the caller may see, first the held events after `after_seq`,
 * then live ones, in sequence order.
 *
 * Threading: everything here runs on the loop thread.
 */
#ifndef MHTAS_HUB_H
#define MHTAS_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "conf/conf.h"

typedef struct hub hub_t;

/* gRPC status codes used on every wire (WebSocket errors carry them too). */
enum {
    HUB_GRPC_OK = 0,
    HUB_GRPC_CANCELLED = 1,
    HUB_GRPC_UNKNOWN = 2,
    HUB_GRPC_INVALID_ARGUMENT = 3,
    HUB_GRPC_DEADLINE_EXCEEDED = 4,
    HUB_GRPC_NOT_FOUND = 5,
    HUB_GRPC_PERMISSION_DENIED = 7,
    HUB_GRPC_RESOURCE_EXHAUSTED = 8,
    HUB_GRPC_FAILED_PRECONDITION = 9,
    HUB_GRPC_UNIMPLEMENTED = 12,
    HUB_GRPC_INTERNAL = 13,
    HUB_GRPC_UNAVAILABLE = 14,
    HUB_GRPC_UNAUTHENTICATED = 16,
};

/* ------------------------------------------------------------------ methods */

typedef struct hub_method {
    const char *name;      /* "RaiseIncident" */
    const char *path;      /* "/mhtas.v1.Hub/RaiseIncident" */
    const char *ws_field;  /* "raise_incident": the ClientFrame/ServerFrame field */
    const ProtobufCMessageDescriptor *input;
    const ProtobufCMessageDescriptor *output;
    bool server_streaming; /* Subscribe */
    unsigned index;        /* in the service descriptor */
} hub_method_t;

/* The method with this gRPC path (not NUL-terminated), or NULL. */
const hub_method_t *hub_method_by_path(const char *path, size_t len);
/* The method whose ClientFrame field is `field`, or NULL. */
const hub_method_t *hub_method_by_ws_field(const char *field);
const hub_method_t *hub_method_by_index(unsigned index);
unsigned hub_method_count(void);

/* ----------------------------------------------------------- authentication */

/* The user this bearer token belongs to, or NULL. */
const hub_user_t *hub_authenticate(hub_t *hub, const char *token, size_t len);

/* Checks a WebSocket Origin header against [console] allowed_origins. */
bool hub_origin_allowed(hub_t *hub, const char *origin);

/* ------------------------------------------------------------------- calls */

typedef struct hub_reply {
    int status;                    /* HUB_GRPC_*; 0 = OK */
    const char *message;           /* plain words for the user when status != 0 */
    const ProtobufCMessage *msg;   /* the response when status == 0 */
} hub_reply_t;

/* Called exactly once per hub_call, unless hub_call_cancel() came first.
 * `reply` and everything it points to are borrowed until it returns. */
typedef void (*hub_reply_cb)(void *ctx, const hub_reply_t *reply);

typedef struct hub_call hub_call_t;

/* Runs a unary method for `caller` (never NULL: front ends authenticate
 * first). `req` is borrowed until hub_call returns. The callback may run
 * before hub_call returns -- then hub_call returns NULL -- or later (for
 * example after a durable write), then hub_call returns a handle that the
 * front end must pass to hub_call_cancel() if its context goes away first. */
hub_call_t *hub_call(hub_t *hub, const hub_user_t *caller, const hub_method_t *method,
                     const ProtobufCMessage *req, hub_reply_cb cb, void *ctx);
void hub_call_cancel(hub_call_t *call);

/* ------------------------------------------------------------------ events */

typedef struct hub_event {
    uint64_t seq;
    const uint8_t *pb;       /* packed mhtas.v1.Event */
    size_t len;
    char *_json;             /* cache for hub_event_json */
    size_t _json_len;
} hub_event_t;

/* The event in canonical proto3 JSON; converted once per event and shared by
 * every JSON subscriber. Borrowed for as long as the event is. NULL if out of
 * memory. */
const char *hub_event_json(hub_event_t *ev, size_t *len);

/* `ev` is borrowed until the callback returns. */
typedef void (*hub_event_cb)(void *ctx, hub_event_t *ev);

typedef struct hub_sub hub_sub_t;

/* Starts delivering events to `cb` for `user`. Held events after after_seq
 * are delivered before hub_subscribe returns (if after_seq is older than what
 * is held, a NOTICE_KIND_RESUME_GAP notice comes first); after_seq 0 means
 * live events only. A practitioner counts as connected while they have at
 * least one subscription. Returns NULL when out of memory. */
hub_sub_t *hub_subscribe(hub_t *hub, const hub_user_t *user, uint64_t after_seq, hub_event_cb cb,
                         void *ctx);
/* Stops delivery; `cb` is never called again. Safe inside the callback. */
void hub_unsubscribe(hub_sub_t *sub);

uint64_t hub_last_seq(hub_t *hub);

/* ----------------------------------------------------------------- metrics */

typedef enum { HUB_FE_GRPC = 0, HUB_FE_WS = 1, HUB_FE_HTTP = 2, HUB_FE_COUNT } hub_frontend_t;

/* Counters the front ends keep up to date (rendered in /metrics). */
typedef struct hub_fe_stats {
    uint64_t connections_open;
    uint64_t connections_total;
    uint64_t connections_refused;  /* over max_connections, bad origin, ... */
    uint64_t requests_total;
    uint64_t errors_total;         /* requests answered with a non-OK status */
    uint64_t bad_input_total;      /* malformed frames, protobuf, JSON */
} hub_fe_stats_t;

hub_fe_stats_t *hub_fe_stats(hub_t *hub, hub_frontend_t fe);

/* Records a relay latency sample (microseconds) for the histograms. */
void hub_observe_relay_us(hub_t *hub, uint64_t us);

/* Renders /metrics (Prometheus text format) into a hub_malloc'ed buffer. */
char *hub_render_metrics(hub_t *hub, size_t *len);

/* ------------------------------------------------------------- lifecycle */

const hub_config_t *hub_config(hub_t *hub);
uv_loop_t *hub_loop(hub_t *hub);

/* Creates the hub on `loop` with `cfg` (borrowed; must outlive the hub). */
hub_t *hub_new(uv_loop_t *loop, const hub_config_t *cfg, char *err, size_t errlen);
/* Closes timers; the caller runs the loop until idle, then hub_destroy. */
void hub_close(hub_t *hub);
void hub_destroy(hub_t *hub);

#endif
