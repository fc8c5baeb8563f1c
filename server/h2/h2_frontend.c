/* h2_frontend.c -- the listener, connection limits, the per-loop-turn flush
 * and the housekeeping timer of the gRPC front end (see h2_frontend.h and,
 * for one connection, h2_session.c).
 *
 * Handles: the listening socket (its own allocation, so that a failed start
 * can close it without tying up the front end), a uv_prepare_t that flushes
 * the connections on the pending list once per loop turn (redis
 * handleClientsWithPendingWrites in beforeSleep), and a uv_timer_t that checks
 * every connection's deadlines (redis serverCron). h2_frontend_close ends the
 * connections with GOAWAY and closes the prepare and timer handles only when
 * the last connection is gone, because closing connections still need both.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "h2/h2_internal.h"
#include "log/log.h"
#include "util/alloc.h"

#define H2_SHUTDOWN_GRACE_MS 2000 /* unary calls in flight get this long at close */
#define H2_BACKLOG 511

static void maybe_finish(h2_frontend_t *fe);

h2_frontend_t *h2_frontend_new(hub_t *hub, uv_loop_t *loop)
{
    h2_frontend_t *fe = hub_calloc(1, sizeof *fe);
    if (fe == NULL)
        return NULL;
    fe->hub = hub;
    fe->loop = loop;
    fe->cfg = hub_config(hub);
    fe->stats = hub_fe_stats(hub, HUB_FE_GRPC);
    fe->state = H2_FE_NEW;
    return fe;
}

void h2_frontend_free(h2_frontend_t *fe)
{
    if (fe == NULL)
        return;
    /* Only before start, or after the close callback: a live handle would
     * point into freed memory. */
    assert(fe->state == H2_FE_NEW || fe->state == H2_FE_CLOSED);
    hub_free(fe);
}

/* ------------------------------------------------------------ the flush */

static void on_flush(uv_prepare_t *handle)
{
    h2_frontend_t *fe = handle->data;
    h2_conn_t *c;
    /* A flush can schedule other connections (a torn-down stream cancels a
     * hub call whose side effects reach other subscribers): they are
     * appended and handled in this same turn. */
    while ((c = fe->pending) != NULL) {
        fe->pending = c->pending_next;
        c->pending_next = NULL;
        c->in_pending = false;
        h2_conn__flush(c);
    }
    uv_prepare_stop(&fe->flush);
}

void h2_frontend__schedule(h2_frontend_t *fe, h2_conn_t *c)
{
    if (c->in_pending || c->state == H2_CONN_CLOSING)
        return;
    c->in_pending = true;
    c->pending_next = fe->pending;
    fe->pending = c;
    if (!fe->handles_closing)
        uv_prepare_start(&fe->flush, on_flush);
}

void h2_frontend__conn_freed(h2_frontend_t *fe, h2_conn_t *c)
{
    assert(!c->in_pending);
    if (c->prev)
        c->prev->next = c->next;
    else
        fe->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    fe->n_conns--;
    maybe_finish(fe);
}

/* ------------------------------------------------------------- the timer */

static void on_cron(uv_timer_t *t)
{
    h2_frontend_t *fe = t->data;
    uint64_t now = uv_now(fe->loop);
    for (h2_conn_t *c = fe->conns; c != NULL; c = c->next)
        h2_conn__tick(c, now); /* only marks and schedules; frees nothing */
}

/* One timer for every deadline; its period is a quarter of the shortest
 * configured one, so a deadline is enforced within 25% late. */
static uint64_t cron_period(const hub_config_t *cfg)
{
    uint32_t v[] = {cfg->preface_timeout_ms, cfg->idle_timeout_ms, cfg->ping_interval_ms};
    uint64_t p = 1000;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] > 0 && v[i] / 4 < p)
            p = v[i] / 4;
    return p < 10 ? 10 : p;
}

/* ------------------------------------------------------------- accepting */

static void on_refused_closed(uv_handle_t *h)
{
    h2_frontend_t *fe = h->data;
    hub_free(h);
    fe->refusing--;
    maybe_finish(fe);
}

/* Over max_connections: accept and close at once, so the client sees a
 * closed connection rather than a hanging connect, and the listener keeps
 * being polled (libuv stops polling while a connection waits in accept). */
static void refuse(h2_frontend_t *fe, const char *reason)
{
    uv_tcp_t *t = hub_malloc(sizeof *t);
    fe->stats->connections_refused++;
    hub_log(HUB_LOG_WARN, "h2", "event=conn_refused reason=%s open=%zu", reason, fe->n_conns);
    if (t == NULL)
        return;
    uv_tcp_init(fe->loop, t);
    t->data = fe;
    fe->refusing++;
    (void)uv_accept((uv_stream_t *)fe->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_refused_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    h2_frontend_t *fe = server->data;
    if (status < 0) {
        hub_log(HUB_LOG_WARN, "h2", "event=accept_error err=%s", uv_strerror(status));
        return;
    }
    if (fe->state != H2_FE_RUNNING) {
        refuse(fe, "closing");
        return;
    }
    if (fe->n_conns >= fe->cfg->max_connections) {
        refuse(fe, "max_connections");
        return;
    }
    if (h2_conn__accept(fe) == NULL)
        refuse(fe, "out_of_memory");
}

/* -------------------------------------------------------------- lifecycle */

static void on_listener_closed(uv_handle_t *h)
{
    h2_frontend_t *fe = h->data;
    hub_free(h);
    if (fe == NULL) /* a failed start: the front end is not waiting for it */
        return;
    fe->handles_open--;
    maybe_finish(fe);
}

int h2_frontend_start(h2_frontend_t *fe, const char *host, int port, int *bound_port, char *err,
                      size_t errlen)
{
    struct sockaddr_storage addr;
    int rv;

    if (fe->state != H2_FE_NEW) {
        snprintf(err, errlen, "the gRPC front end was already started");
        return UV_EINVAL;
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
        snprintf(err, errlen, "gRPC listen address \"%s\" is not an IP address", host);
        return UV_EINVAL;
    }
    fe->listener = hub_malloc(sizeof *fe->listener);
    if (fe->listener == NULL) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    uv_tcp_init(fe->loop, fe->listener);
    fe->listener->data = NULL;
    rv = uv_tcp_bind(fe->listener, (const struct sockaddr *)&addr, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)fe->listener, H2_BACKLOG, on_connection);
    if (rv != 0) {
        snprintf(err, errlen, "gRPC listen on %s:%d: %s", host, port, uv_strerror(rv));
        uv_close((uv_handle_t *)fe->listener, on_listener_closed);
        fe->listener = NULL;
        return rv;
    }
    fe->listener->data = fe;

    struct sockaddr_storage bound;
    int blen = sizeof bound;
    int p = port;
    if (uv_tcp_getsockname(fe->listener, (struct sockaddr *)&bound, &blen) == 0)
        p = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
    if (bound_port)
        *bound_port = p;

    uv_prepare_init(fe->loop, &fe->flush);
    fe->flush.data = fe;
    uv_timer_init(fe->loop, &fe->cron);
    fe->cron.data = fe;
    uint64_t period = cron_period(fe->cfg);
    uv_timer_start(&fe->cron, on_cron, period, period);
    fe->handles_open = 3;
    fe->state = H2_FE_RUNNING;
    hub_log(HUB_LOG_INFO, "h2", "event=listen host=%s port=%d max_connections=%lu", host, p,
            (unsigned long)fe->cfg->max_connections);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    h2_frontend_t *fe = h->data;
    if (--fe->handles_open == 0) {
        fe->state = H2_FE_CLOSED;
        hub_log(HUB_LOG_INFO, "h2", "event=closed");
        if (fe->close_cb)
            fe->close_cb(fe->close_ctx);
    }
}

/* Closes the flush and timer handles once nothing needs them: the listener
 * is closed and every connection and refused socket is gone. */
static void maybe_finish(h2_frontend_t *fe)
{
    if (fe->state != H2_FE_CLOSING || fe->handles_closing)
        return;
    if (fe->conns != NULL || fe->refusing > 0 || fe->handles_open != 2)
        return;
    fe->handles_closing = true;
    uv_close((uv_handle_t *)&fe->flush, on_handle_closed);
    uv_close((uv_handle_t *)&fe->cron, on_handle_closed);
}

void h2_frontend_close(h2_frontend_t *fe, void (*cb)(void *ctx), void *ctx)
{
    fe->close_cb = cb;
    fe->close_ctx = ctx;
    if (fe->state == H2_FE_NEW) {
        /* Never started: no handle to wait for. */
        fe->state = H2_FE_CLOSED;
        if (cb)
            cb(ctx);
        return;
    }
    if (fe->state != H2_FE_RUNNING)
        return;
    fe->state = H2_FE_CLOSING;
    hub_log(HUB_LOG_INFO, "h2", "event=closing connections=%zu", fe->n_conns);
    uv_close((uv_handle_t *)fe->listener, on_listener_closed);
    fe->listener = NULL;
    for (h2_conn_t *c = fe->conns; c != NULL; c = c->next)
        h2_conn__shutdown(c, "server_shutdown", H2_SHUTDOWN_GRACE_MS);
    maybe_finish(fe);
}
