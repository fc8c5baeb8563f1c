/* h2_internal.h -- shared between the files of server/h2/ only.
 *
 * h2_frontend.c owns the listener, the connection list, the per-loop-turn
 * flush (a uv_prepare_t) and the housekeeping timer; h2_session.c owns one
 * connection: its socket, its nghttp2 session and its streams.
 *
 * Lifetime (STYLE.md 8.14-8.15): a connection is never freed inside its own
 * callback stack. Anything that wants it gone calls h2_conn__close(), which
 * only marks it and queues it on the front end's pending list; the flush
 * (uv_prepare) tears it down -- streams, hub calls, nghttp2 session -- and
 * uv_close()s the socket; the memory goes in the close callback.
 */
#ifndef MHTAS_H2_INTERNAL_H
#define MHTAS_H2_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "h2/h2_frontend.h"
#include "hub/hub.h"

typedef struct h2_conn h2_conn_t;
typedef struct h2_stream h2_stream_t;

/* --------------------------------------------------------- the front end */

typedef enum {
    H2_FE_NEW = 0,   /* created, not listening */
    H2_FE_RUNNING,   /* listening */
    H2_FE_CLOSING,   /* h2_frontend_close called; waiting for handles */
    H2_FE_CLOSED,    /* every handle closed; cb called */
} h2_fe_state_t;

struct h2_frontend {
    hub_t *hub;
    uv_loop_t *loop;
    const hub_config_t *cfg;
    hub_fe_stats_t *stats;
    h2_fe_state_t state;

    uv_tcp_t *listener;        /* own allocation: freed by its close callback */
    uv_prepare_t flush;        /* runs h2_frontend__flush_pending once per loop turn */
    uv_timer_t cron;           /* deadlines: preface, idle, ping, drain */
    unsigned handles_open;     /* listener + flush + cron not yet closed */
    bool handles_closing;      /* flush and cron uv_close()d */
    unsigned refusing;         /* refused sockets whose close is pending */

    h2_conn_t *conns;          /* every connection not yet freed */
    size_t n_conns;            /* connections counted against max_connections */
    h2_conn_t *pending;        /* connections to flush or tear down */
    uint64_t next_conn_id;

    uint8_t readbuf[65536];    /* shared: each read is consumed before the next */

    void (*close_cb)(void *ctx);
    void *close_ctx;
};

/* Puts `c` on the pending list so it is flushed (or torn down) before the
 * loop next polls. Cheap and idempotent. */
void h2_frontend__schedule(h2_frontend_t *fe, h2_conn_t *c);
/* Called by h2_session.c from a connection's last close callback. */
void h2_frontend__conn_freed(h2_frontend_t *fe, h2_conn_t *c);

/* ---------------------------------------------------------- connections */

typedef enum {
    H2_CONN_PREFACE = 0, /* waiting for the client preface and SETTINGS */
    H2_CONN_OPEN,        /* serving streams */
    H2_CONN_DRAINING,    /* GOAWAY submitted; closes when flushed or at drain_deadline */
    H2_CONN_CLOSING,     /* torn down; socket closing; freed in its close callback */
} h2_conn_state_t;

struct h2_conn {
    h2_frontend_t *fe;
    h2_conn_t *prev, *next;    /* fe->conns */
    h2_conn_t *pending_next;   /* fe->pending */
    bool in_pending;
    uint64_t id;
    char peer[64];
    h2_conn_state_t state;
    const char *close_reason;  /* static string, for the log line */
    bool close_now;            /* tear down at the next flush */
    bool counted;              /* in stats->connections_open */
    bool no_read;              /* never read again (bad input, closing) */
    bool drain_final;          /* the drain grace is over; streams answered */

    uv_tcp_t tcp;
    bool reading;
    nghttp2_session *session;

    /* Write path: nghttp2's output is copied into `out`; when no write is in
     * flight, out and wbuf swap and wbuf goes to uv_write. */
    uint8_t *out, *wbuf;
    size_t out_len, out_cap, wbuf_len, wbuf_cap;
    bool writing;
    uv_write_t wreq;

    h2_stream_t *streams;
    unsigned n_streams;
    size_t queued_bytes;       /* subscriber events not yet handed to nghttp2 */

    uint64_t opened_ms, last_activity_ms, last_ping_ms, drain_deadline_ms;
    unsigned pings_outstanding;
    uint64_t requests;
};

/* Sets up a connection accepted on fe->listener (counted in fe->n_conns by
 * the caller). Returns NULL if it could not (the socket is then closed). */
h2_conn_t *h2_conn__accept(h2_frontend_t *fe);
/* Marks `c` for teardown at the next flush; `reason` is static. */
void h2_conn__close(h2_conn_t *c, const char *reason);
/* GOAWAY (NO_ERROR), finish subscriber streams with UNAVAILABLE, then close
 * once flushed or after `grace_ms`. */
void h2_conn__shutdown(h2_conn_t *c, const char *reason, uint64_t grace_ms);
/* Drains nghttp2 into the socket, adjusts reading, tears down if marked. */
void h2_conn__flush(h2_conn_t *c);
/* Deadlines; called from the front end's timer with uv_now. */
void h2_conn__tick(h2_conn_t *c, uint64_t now_ms);

#endif
