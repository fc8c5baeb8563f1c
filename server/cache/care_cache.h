/* care_cache.h -- the care-summary cache: a Redis client on the hub's libuv
 * loop (hiredis 0.14 async API with our own libuv adapter).
 *
 * Shape (after h2o lib/common/redis.c): one connection with a state,
 * CLOSED -> CONNECTING -> CONNECTED -> CLOSED ...; a PING must be answered
 * before a connection counts as CONNECTED (a frozen Redis still accepts
 * connections); a lost or failed connection is re-established on a timer
 * with exponential back-off and jitter, for ever, without the caller doing
 * anything. While the state is not CONNECTED every look-up fails fast with
 * UNAVAILABLE and a plain message; nothing is queued.
 *
 * Every look-up has its own deadline on a libuv timer. When it expires the
 * caller gets DEADLINE_EXCEEDED and the connection is dropped (hiredis cannot
 * cancel a command and a Redis that missed one deadline is presumed hung);
 * the other look-ups on it get UNAVAILABLE, and reconnection starts.
 *
 * A reply may cost at most config.max_reply_bytes of memory while it is read
 * (bytes buffered by hiredis plus reply objects built); a larger one drops
 * the connection and its caller gets RESOURCE_EXHAUSTED. Care summaries are
 * decoded with a budgeted protobuf allocator.
 *
 * CALLBACK CONTRACT: for every look-up that returns a non-NULL handle the
 * callback fires exactly once, never from inside the call that started it
 * and never from inside care_cache_close(); unless care_cache_cancel() was
 * called first, in which case it never fires. Results are borrowed: valid
 * only until the callback returns. The handle is invalid once the callback
 * has fired or care_cache_cancel() has returned.
 *
 * Never logs health data: look-ups are logged by outcome and timing only.
 */
#ifndef MHTAS_CACHE_CARE_CACHE_H
#define MHTAS_CACHE_CARE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "mhtas/v1/care.pb-c.h"

/* Status codes are gRPC's, so the hub can pass them on unchanged. */
enum {
    CARE_OK = 0,
    CARE_CANCELLED = 1,
    CARE_INVALID_ARGUMENT = 3,
    CARE_DEADLINE_EXCEEDED = 4,
    CARE_NOT_FOUND = 5,
    CARE_RESOURCE_EXHAUSTED = 8,
    CARE_INTERNAL = 13,
    CARE_UNAVAILABLE = 14,
};

typedef struct care_status {
    int code;                 /* CARE_* (gRPC status code) */
    const char *message;      /* static, plain English, no health data; "" when OK */
} care_status_t;

typedef enum {
    CARE_CACHE_CLOSED = 0,    /* no connection (waiting to reconnect, or closed) */
    CARE_CACHE_CONNECTING,    /* connecting, or waiting for the PING reply */
    CARE_CACHE_CONNECTED,
} care_cache_state_t;

typedef struct care_cache_config {
    const char *host;             /* an IP address (no DNS on the loop); default "127.0.0.1" */
    int port;                     /* default 6379 */
    const char *unix_path;        /* when set, used instead of host/port */
    uint32_t command_timeout_ms;  /* per look-up deadline; default 500 */
    uint32_t connect_timeout_ms;  /* connect + PING; default 1000 */
    uint32_t reconnect_min_ms;    /* first back-off; default 100 */
    uint32_t reconnect_max_ms;    /* back-off cap; default 5000 */
    size_t max_reply_bytes;       /* default 4 MiB */
    size_t max_decoded_bytes;     /* protobuf budget per look-up; default 16 MiB */
    uint32_t max_candidates;      /* search candidates before scoring; default 5000 */
    uint32_t max_inflight;        /* look-ups in flight; default 4096 */
    int64_t stale_after_ms;       /* parts older than this are stale; 0 = never */
    /* Wall clock in ms since the epoch, for staleness; NULL = CLOCK_REALTIME. */
    int64_t (*clock_ms)(void *arg);
    void *clock_arg;
    uint64_t seed;                /* back-off jitter; 0 = from uv_hrtime() */
} care_cache_config_t;

typedef struct care_cache_stats {
    uint64_t lookups;             /* get_summary + search calls */
    uint64_t ok, not_found, invalid, unavailable, timeouts, too_large, errors, cancelled;
    uint64_t connects;            /* connections that reached CONNECTED */
    uint64_t connect_attempts;
    uint64_t disconnects;         /* connections lost or dropped */
} care_cache_stats_t;

typedef struct care_cache care_cache_t;
typedef struct care_cache_req care_cache_req_t;

/* Creates a cache on `loop` (copies `cfg` and its strings). Does not connect:
 * call care_cache_start(). Returns NULL when out of memory or when cfg has
 * neither a valid IP address nor a unix socket path. */
care_cache_t *care_cache_new(uv_loop_t *loop, const care_cache_config_t *cfg);

/* Starts connecting (and reconnecting for ever). Returns 0. */
int care_cache_start(care_cache_t *c);

/* Stops reconnecting, drops the connection and fails the look-ups in flight
 * with UNAVAILABLE (their callbacks fire later, from the loop). When the
 * last handle has closed, calls close_cb(arg) (may be NULL) and frees `c`. */
void care_cache_close(care_cache_t *c, void (*close_cb)(void *arg), void *arg);

care_cache_state_t care_cache_state(const care_cache_t *c);
const care_cache_stats_t *care_cache_get_stats(const care_cache_t *c);
const char *care_cache_state_name(care_cache_state_t s);

/* Reads the care summary of `nhs` (10 digits; spaces ignored).
 * Statuses: OK (resp set: summary, stale_parts, restricted, read_at_ms);
 * INVALID_ARGUMENT ("NHS number must be 10 digits", "check digit is wrong");
 * NOT_FOUND; UNAVAILABLE (cache down); DEADLINE_EXCEEDED; RESOURCE_EXHAUSTED;
 * INTERNAL (corrupt record). `resp` is NULL unless OK, and borrowed until the
 * callback returns. Returns a handle for care_cache_cancel(), or NULL when
 * out of memory (then the callback never fires). */
typedef void care_summary_cb(void *ctx, const care_status_t *st,
                             const Mhtas__V1__GetCareSummaryResponse *resp);
care_cache_req_t *care_cache_get_summary(care_cache_t *c, const char *nhs, care_summary_cb *cb,
                                         void *ctx);

/* Demographic search (see care_search.h for the rules and scoring). `req` is
 * read during the call only. Statuses as above; OK with an empty match list
 * when nobody matches. RESOURCE_EXHAUSTED when more than max_candidates
 * people share the searched dates and names ("narrow the search"). */
typedef void care_search_cb(void *ctx, const care_status_t *st,
                            const Mhtas__V1__SearchPersonsResponse *resp);
care_cache_req_t *care_cache_search(care_cache_t *c, const Mhtas__V1__SearchPersonsRequest *req,
                                    care_search_cb *cb, void *ctx);

/* Drops the callback of a look-up whose caller has gone (e.g. its gRPC stream
 * closed). The look-up's resources are released when Redis answers or its
 * deadline passes. Must not be called after the callback has fired. */
void care_cache_cancel(care_cache_req_t *req);

#endif
