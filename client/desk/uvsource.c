/* uvsource.c -- runs a libuv loop inside GLib's main loop.
 *
 * A GSource that polls uv_backend_fd() (libuv's epoll descriptor: readable
 * when any of libuv's descriptors is) and uses uv_backend_timeout() (time to
 * the next libuv timer; 0 when callbacks are pending; -1 when nothing is
 * due) as its poll timeout. When either fires, dispatch runs
 * uv_run(loop, UV_RUN_NOWAIT): one non-blocking pass of libuv. GLib sleeps
 * in poll() the rest of the time, so there is no busy polling and the
 * interface never waits on the network.
 *
 * Two libuv details matter:
 *   - With no active handle or request, uv_backend_timeout() returns 0: we
 *     treat a dead loop as "nothing to do" (-1), or GLib would spin.
 *   - libuv registers a newly started watcher with epoll only during its
 *     next poll phase (the descriptor sits in loop->watcher_queue until
 *     then), and uv_backend_timeout() of libuv 1.44 does not look at that
 *     queue: a write that could not finish at once, started from a GTK
 *     callback, would never be noticed. So prepare() dispatches at once when
 *     the queue is not empty; uv_run then registers the watcher.
 */
#include "desk/desk.h"

typedef struct uv_gsource {
    GSource base;
    uv_loop_t *loop;
    gpointer tag;
} uv_gsource_t;

static bool watchers_pending(const uv_loop_t *loop)
{
    /* QUEUE_EMPTY(&loop->watcher_queue) of libuv's private queue.h */
    return loop->watcher_queue[0] != (void *)&loop->watcher_queue;
}

static gboolean uvs_prepare(GSource *s, gint *timeout)
{
    uv_gsource_t *u = (uv_gsource_t *)s;
    if (!uv_loop_alive(u->loop) && !watchers_pending(u->loop)) {
        *timeout = -1;
        return FALSE;
    }
    if (watchers_pending(u->loop)) {
        *timeout = 0;
        return TRUE;
    }
    uv_update_time(u->loop);
    int t = uv_backend_timeout(u->loop);
    *timeout = t;
    return t == 0;
}

static gboolean uvs_check(GSource *s)
{
    uv_gsource_t *u = (uv_gsource_t *)s;
    if (g_source_query_unix_fd(s, u->tag) & (G_IO_IN | G_IO_ERR | G_IO_HUP))
        return TRUE;
    if (!uv_loop_alive(u->loop))
        return FALSE;
    uv_update_time(u->loop);
    return uv_backend_timeout(u->loop) == 0;
}

static gboolean uvs_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
    (void)cb;
    (void)data;
    uv_gsource_t *u = (uv_gsource_t *)s;
    uv_run(u->loop, UV_RUN_NOWAIT);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs uvs_funcs = {
    .prepare = uvs_prepare,
    .check = uvs_check,
    .dispatch = uvs_dispatch,
};

GSource *desk_uv_source_new(uv_loop_t *loop)
{
    GSource *s = g_source_new(&uvs_funcs, sizeof(uv_gsource_t));
    uv_gsource_t *u = (uv_gsource_t *)s;
    u->loop = loop;
    u->tag = g_source_add_unix_fd(s, uv_backend_fd(loop), G_IO_IN);
    g_source_set_name(s, "libuv");
    g_source_set_priority(s, G_PRIORITY_DEFAULT);
    return s;
}
