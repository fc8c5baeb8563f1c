/* care_cache.c -- see care_cache.h.
 *
 * Three kinds of memory hold uv handles here, and each is freed only in its
 * last close callback, with c->handles counting them so that the cache itself
 * is freed after all of them (STYLE.md 14):
 *   - the cache's two timers (connect deadline, reconnect back-off);
 *   - one poll handle per hiredis context (our adapter, care_ev_t);
 *   - one timer per look-up (its deadline, also used to complete it later).
 *
 * Connections are dropped with redisAsyncFree (never redisAsyncDisconnect,
 * which waits for replies that may never come). hiredis then calls every
 * pending reply callback with a NULL reply; those complete their look-ups
 * through the look-up's timer, so no user callback runs inside our API calls
 * or inside redisAsyncFree.
 */
#include "cache/care_cache.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cache/care_search.h"
#include "cache/nhs_number.h"
#include "log/log.h"
#include "util/alloc.h"
#include "util/pb_budget.h"

#define MOD "cache"

static const char MSG_DOWN[] = "the care record cache is unavailable; try again shortly";
static const char MSG_LOST[] = "the connection to the care record cache was lost; try again";
static const char MSG_CLOSING[] = "the care record cache is shutting down";
static const char MSG_TIMEOUT[] = "the care record cache did not answer in time; try again";
static const char MSG_TOO_LARGE[] = "the care record is too large to read";
static const char MSG_BUSY[] = "the care record cache is busy; try again shortly";
static const char MSG_NOT_FOUND[] = "no care record is held for this NHS number";
static const char MSG_CORRUPT[] = "the stored care record could not be read";
static const char MSG_ERROR[] = "the care record cache reported an error";
static const char MSG_LOADING[] = "the care record cache is starting up; try again shortly";
static const char MSG_TOO_MANY[] =
    "too many people match: add a given name or narrow the date of birth";
static const char MSG_NOMEM[] = "out of memory";

typedef enum { REQ_SUMMARY, REQ_SEARCH } req_kind_t;

struct care_cache_req {
    care_cache_t *cache;
    care_cache_req_t *prev, *next;     /* c->reqs */
    req_kind_t kind;
    uv_timer_t timer;                  /* deadline; then deferred completion */
    union {
        care_summary_cb *summary;
        care_search_cb *search;
    } cb;
    void *ctx;
    int cancelled;
    int done;                          /* completed (callback fired or dropped) */
    int deferred;                      /* the timer now completes with `status` */
    int closing;                       /* uv_close called on the timer */
    unsigned redis_refs;               /* hiredis callbacks still to come */
    care_status_t status;
    char nhs[NHS_NUMBER_LEN + 1];
    care_query_t query;
    uint32_t candidates;
    int step;                          /* search: 0 SUNION sent, 1 MGET sent */
};

typedef struct care_ev {               /* our hiredis libuv adapter */
    care_cache_t *cache;
    redisAsyncContext *ac;             /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    int events;
} care_ev_t;

struct care_cache {
    uv_loop_t *loop;
    care_cache_config_t cfg;
    char *host, *unix_path;
    care_cache_state_t state;
    redisAsyncContext *ac;             /* the live context, or NULL */
    uv_timer_t connect_timer, reconnect_timer;
    unsigned attempt;                  /* consecutive failures, for back-off */
    uint64_t rng;
    int started, closing;
    void (*close_cb)(void *);
    void *close_arg;
    unsigned handles;                  /* live uv handles we own */
    unsigned inflight;
    care_cache_req_t *reqs;
    /* reply budget */
    size_t reply_bytes;
    int over_budget;
    redisReplyObjectFunctions fns;
    redisReplyObjectFunctions *orig_fns;
    care_cache_stats_t stats;
};

static void conn_start(care_cache_t *c);
static void conn_drop(care_cache_t *c, const char *why);

/* ------------------------------------------------------------ state */

const char *care_cache_state_name(care_cache_state_t s)
{
    switch (s) {
    case CARE_CACHE_CLOSED: return "closed";
    case CARE_CACHE_CONNECTING: return "connecting";
    case CARE_CACHE_CONNECTED: return "connected";
    }
    return "?";
}

/* Every state change goes through here, so the legal transitions are written
 * once: CLOSED->CONNECTING->CONNECTED, and any state -> CLOSED. */
static void set_state(care_cache_t *c, care_cache_state_t to)
{
    care_cache_state_t from = c->state;
    if (from == to)
        return;
    if (!((from == CARE_CACHE_CLOSED && to == CARE_CACHE_CONNECTING) ||
          (from == CARE_CACHE_CONNECTING && to == CARE_CACHE_CONNECTED) || to == CARE_CACHE_CLOSED)) {
        hub_log(HUB_LOG_ERROR, MOD, "event=bad_transition from=%s to=%s",
                care_cache_state_name(from), care_cache_state_name(to));
        abort();
    }
    c->state = to;
    hub_log(HUB_LOG_TRACE, MOD, "event=state from=%s to=%s", care_cache_state_name(from),
            care_cache_state_name(to));
}

care_cache_state_t care_cache_state(const care_cache_t *c)
{
    return c->state;
}

const care_cache_stats_t *care_cache_get_stats(const care_cache_t *c)
{
    return &c->stats;
}

static void maybe_finish_close(care_cache_t *c)
{
    if (!c->closing || c->handles != 0)
        return;
    void (*cb)(void *) = c->close_cb;
    void *arg = c->close_arg;
    hub_free(c->host);
    hub_free(c->unix_path);
    hub_free(c);
    if (cb)
        cb(arg);
}

static void handle_closed(uv_handle_t *h)
{
    care_cache_t *c = h->data;
    c->handles--;
    maybe_finish_close(c);
}

/* ------------------------------------------------------------ adapter */

/* Unlike Debian's hiredis 0.14 adapters/libuv.h, a poll error is passed on
 * to hiredis as the events we were waiting for (as hiredis 1.0 does), so a
 * refused or reset connection reaches hiredis and its callbacks. After a
 * read, the bytes hiredis holds for an unfinished reply are checked against
 * the reply budget: a huge bulk string is refused while it arrives. */
static void ev_poll_cb(uv_poll_t *h, int status, int events)
{
    care_ev_t *p = h->data;
    care_cache_t *c = p->cache;
    int ev = status < 0 ? p->events : events;

    if (p->ac && (ev & UV_READABLE)) {
        redisAsyncHandleRead(p->ac);
        if (p->ac && p->ac == c->ac) {
            redisReader *r = p->ac->c.reader;
            if (r && r->len - r->pos > c->cfg.max_reply_bytes) {
                c->over_budget = 1;
                conn_drop(c, "reply_too_large");
            }
        }
    }
    if (p->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void ev_update(care_ev_t *p)
{
    if (p->events)
        uv_poll_start(&p->poll, p->events, ev_poll_cb);
    else
        uv_poll_stop(&p->poll);
}

static void ev_add_read(void *d) { care_ev_t *p = d; p->events |= UV_READABLE; ev_update(p); }
static void ev_del_read(void *d) { care_ev_t *p = d; p->events &= ~UV_READABLE; ev_update(p); }
static void ev_add_write(void *d) { care_ev_t *p = d; p->events |= UV_WRITABLE; ev_update(p); }
static void ev_del_write(void *d) { care_ev_t *p = d; p->events &= ~UV_WRITABLE; ev_update(p); }

static void ev_closed(uv_handle_t *h)
{
    care_ev_t *p = h->data;
    care_cache_t *c = p->cache;
    hub_free(p);
    c->handles--;
    maybe_finish_close(c);
}

/* hiredis calls this while freeing the context: it may be inside our poll
 * callback, which is fine for uv_close. */
static void ev_cleanup(void *d)
{
    care_ev_t *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, ev_closed);
}

static int ev_attach(care_cache_t *c, redisAsyncContext *ac)
{
    care_ev_t *p = hub_calloc(1, sizeof *p);
    if (p == NULL)
        return -1;
    if (uv_poll_init(c->loop, &p->poll, ac->c.fd) != 0) {
        hub_free(p);
        return -1;
    }
    p->cache = c;
    p->ac = ac;
    p->poll.data = p;
    c->handles++;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = p;
    return 0;
}

/* ------------------------------------------------------------ reply budget */

/* hiredis builds reply objects through these; each charges the reply in
 * progress and refuses (NULL: hiredis reports out-of-memory and drops the
 * connection) past the budget. The charge is reset as each reply is
 * delivered. */
static int charge(const redisReadTask *t, size_t n)
{
    care_cache_t *c = t->privdata;
    if (c == NULL)
        return 0;
    if (n > c->cfg.max_reply_bytes || c->reply_bytes > c->cfg.max_reply_bytes - n) {
        c->over_budget = 1;
        return -1;
    }
    c->reply_bytes += n;
    return 0;
}

static care_cache_t *task_cache(const redisReadTask *t)
{
    return t->privdata;
}

static void *hook_string(const redisReadTask *t, char *s, size_t len)
{
    if (charge(t, len + 64))
        return NULL;
    return task_cache(t)->orig_fns->createString(t, s, len);
}

static void *hook_array(const redisReadTask *t, int n)
{
    if (charge(t, (size_t)(n < 0 ? 0 : n) * sizeof(void *) + 64))
        return NULL;
    return task_cache(t)->orig_fns->createArray(t, n);
}

static void *hook_integer(const redisReadTask *t, long long v)
{
    if (charge(t, 64))
        return NULL;
    return task_cache(t)->orig_fns->createInteger(t, v);
}

static void *hook_nil(const redisReadTask *t)
{
    if (charge(t, 64))
        return NULL;
    return task_cache(t)->orig_fns->createNil(t);
}

static void install_budget(care_cache_t *c, redisAsyncContext *ac)
{
    redisReader *r = ac->c.reader;
    if (c->orig_fns == NULL) {
        c->orig_fns = r->fn;
        c->fns = *r->fn;
        c->fns.createString = hook_string;
        c->fns.createArray = hook_array;
        c->fns.createInteger = hook_integer;
        c->fns.createNil = hook_nil;
    }
    r->fn = &c->fns;
    r->privdata = c;
    r->maxbuf = 64 * 1024;   /* give back idle read buffers above 64 KiB */
    c->reply_bytes = 0;
    c->over_budget = 0;
}

/* ------------------------------------------------------------ connection */

static uint64_t rng_next(care_cache_t *c)
{
    /* xorshift64* */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ull;
}

static void on_reconnect_timer(uv_timer_t *t)
{
    conn_start(t->data);
}

/* Exponential back-off with jitter: the n-th consecutive failure waits a
 * random time in [d/2, d], d = min(max, min * 2^n). The jitter keeps many
 * hubs from reconnecting in step after a Redis restart. */
static void schedule_reconnect(care_cache_t *c)
{
    if (c->closing)
        return;
    uint64_t d = c->cfg.reconnect_min_ms;
    for (unsigned i = 0; i < c->attempt && d < c->cfg.reconnect_max_ms; i++)
        d *= 2;
    if (d > c->cfg.reconnect_max_ms)
        d = c->cfg.reconnect_max_ms;
    uint64_t wait = d / 2 + rng_next(c) % (d / 2 + 1);
    if (c->attempt < 64)
        c->attempt++;
    hub_log(HUB_LOG_DEBUG, MOD, "event=reconnect_scheduled attempt=%u wait_ms=%llu", c->attempt,
            (unsigned long long)wait);
    uv_timer_start(&c->reconnect_timer, on_reconnect_timer, wait, 0);
}

static void connection_lost(care_cache_t *c, const char *why)
{
    int was_connected = c->state == CARE_CACHE_CONNECTED;
    set_state(c, CARE_CACHE_CLOSED);
    uv_timer_stop(&c->connect_timer);
    if (was_connected) {
        c->stats.disconnects++;
        hub_log(c->closing ? HUB_LOG_INFO : HUB_LOG_WARN, MOD, "event=disconnected reason=%s",
                why);
    } else {
        hub_log(c->attempt < 3 ? HUB_LOG_WARN : HUB_LOG_DEBUG, MOD,
                "event=connect_failed reason=%s attempt=%u", why, c->attempt + 1);
    }
    schedule_reconnect(c);
}

/* Drops the live connection from our side (deadline, reply budget, PING
 * failure, close). hiredis runs the pending reply callbacks with NULL and
 * closes the adapter; its disconnect callback, if any, sees c->ac != ac and
 * does nothing. Safe inside a hiredis callback: hiredis then frees after the
 * callback returns. */
static void conn_drop(care_cache_t *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    if (ac == NULL)
        return;
    c->ac = NULL;
    connection_lost(c, why);
    redisAsyncFree(ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    care_cache_t *c = ac->data;
    if (ac != c->ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this returns. */
        c->ac = NULL;
        connection_lost(c, "connect_error");
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    care_cache_t *c = ac->data;
    if (ac != c->ac)
        return;
    c->ac = NULL;
    connection_lost(c, status == REDIS_OK ? "closed" : "connection_error");
}

static void on_ping(redisAsyncContext *ac, void *r, void *privdata)
{
    care_cache_t *c = privdata;
    redisReply *reply = r;
    c->reply_bytes = 0;
    if (ac != c->ac || reply == NULL)
        return;     /* going away: the disconnect path handles it */
    if (reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0) {
        uv_timer_stop(&c->connect_timer);
        set_state(c, CARE_CACHE_CONNECTED);
        c->stats.connects++;
        hub_log(HUB_LOG_INFO, MOD, "event=connected after_attempts=%u", c->attempt + 1);
        c->attempt = 0;
    } else {
        /* e.g. LOADING after a restart: try again after a back-off. */
        conn_drop(c, reply->type == REDIS_REPLY_ERROR ? "ping_error" : "ping_unexpected");
    }
}

static void on_connect_timeout(uv_timer_t *t)
{
    care_cache_t *c = t->data;
    conn_drop(c, "connect_timeout");
}

/* Starts one connection attempt: connect (non-blocking), attach our adapter,
 * queue a PING (hiredis writes it once connected) and arm the connect
 * deadline, which covers the PING too. */
static void conn_start(care_cache_t *c)
{
    redisAsyncContext *ac;

    if (c->closing || c->ac != NULL)
        return;
    c->stats.connect_attempts++;
    ac = c->unix_path ? redisAsyncConnectUnix(c->unix_path)
                      : redisAsyncConnect(c->host, c->cfg.port);
    if (ac == NULL) {
        connection_lost(c, "out_of_memory");
        return;
    }
    if (ac->err) {
        hub_log(HUB_LOG_DEBUG, MOD, "event=connect_error err=%d", ac->err);
        redisAsyncFree(ac);
        connection_lost(c, "connect_error");
        return;
    }
    ac->data = c;
    install_budget(c, ac);
    if (ev_attach(c, ac) != 0) {
        redisAsyncFree(ac);
        connection_lost(c, "adapter");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    set_state(c, CARE_CACHE_CONNECTING);
    uv_timer_start(&c->connect_timer, on_connect_timeout, c->cfg.connect_timeout_ms, 0);
    if (redisAsyncCommand(ac, on_ping, c, "PING") != REDIS_OK)
        conn_drop(c, "ping_send");
}

/* ------------------------------------------------------------ lifecycle */

static int64_t realtime_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

care_cache_t *care_cache_new(uv_loop_t *loop, const care_cache_config_t *cfg)
{
    care_cache_t *c = hub_calloc(1, sizeof *c);
    if (c == NULL)
        goto fail_alloc;
    c->loop = loop;
    c->cfg = *cfg;
#define DEF(f, v) if (c->cfg.f == 0) c->cfg.f = (v)
    DEF(port, 6379);
    DEF(command_timeout_ms, 500);
    DEF(connect_timeout_ms, 1000);
    DEF(reconnect_min_ms, 100);
    DEF(reconnect_max_ms, 5000);
    DEF(max_reply_bytes, 4u << 20);
    DEF(max_decoded_bytes, 16u << 20);
    DEF(max_candidates, 5000);
    DEF(max_inflight, 4096);
#undef DEF
    if (c->cfg.reconnect_max_ms < c->cfg.reconnect_min_ms)
        c->cfg.reconnect_max_ms = c->cfg.reconnect_min_ms;
    if (c->cfg.clock_ms == NULL)
        c->cfg.clock_ms = realtime_ms;
    c->rng = cfg->seed ? cfg->seed : uv_hrtime() | 1;
    if (cfg->unix_path && cfg->unix_path[0]) {
        if ((c->unix_path = hub_strdup(cfg->unix_path)) == NULL)
            goto fail_strings;
    } else {
        const char *h = cfg->host && cfg->host[0] ? cfg->host : "127.0.0.1";
        unsigned char buf[16];
        if (inet_pton(AF_INET, h, buf) != 1 && inet_pton(AF_INET6, h, buf) != 1) {
            hub_log(HUB_LOG_ERROR, MOD, "event=config_error reason=host_not_an_ip_address");
            goto fail_strings;
        }
        if ((c->host = hub_strdup(h)) == NULL)
            goto fail_strings;
    }
    c->cfg.host = c->host;
    c->cfg.unix_path = c->unix_path;
    uv_timer_init(loop, &c->connect_timer);
    uv_timer_init(loop, &c->reconnect_timer);
    c->connect_timer.data = c->reconnect_timer.data = c;
    c->handles = 2;
    c->state = CARE_CACHE_CLOSED;
    return c;

fail_strings:
    hub_free(c->host);
    hub_free(c->unix_path);
    hub_free(c);
fail_alloc:
    return NULL;
}

int care_cache_start(care_cache_t *c)
{
    if (c->started || c->closing)
        return 0;
    c->started = 1;
    conn_start(c);
    return 0;
}

void care_cache_close(care_cache_t *c, void (*close_cb)(void *), void *arg)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->close_cb = close_cb;
    c->close_arg = arg;
    uv_timer_stop(&c->reconnect_timer);
    conn_drop(c, "close");
    uv_close((uv_handle_t *)&c->connect_timer, handle_closed);
    uv_close((uv_handle_t *)&c->reconnect_timer, handle_closed);
}

/* ------------------------------------------------------------ look-ups */

static void req_closed(uv_handle_t *h)
{
    care_cache_req_t *req = h->data;
    care_cache_t *c = req->cache;
    hub_free(req);
    c->handles--;
    maybe_finish_close(c);
}

/* Frees the look-up once it has completed and hiredis holds no reference. */
static void req_release(care_cache_req_t *req)
{
    if (!req->done || req->redis_refs > 0 || req->closing)
        return;
    care_cache_t *c = req->cache;
    req->closing = 1;
    if (req->prev)
        req->prev->next = req->next;
    else
        c->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    c->inflight--;
    uv_close((uv_handle_t *)&req->timer, req_closed);
}

static void count_status(care_cache_t *c, int code)
{
    switch (code) {
    case CARE_OK: c->stats.ok++; break;
    case CARE_NOT_FOUND: c->stats.not_found++; break;
    case CARE_INVALID_ARGUMENT: c->stats.invalid++; break;
    case CARE_UNAVAILABLE: c->stats.unavailable++; break;
    case CARE_DEADLINE_EXCEEDED: c->stats.timeouts++; break;
    case CARE_RESOURCE_EXHAUSTED: c->stats.too_large++; break;
    default: c->stats.errors++; break;
    }
}

/* Completes a look-up: the one place a user callback is called. */
static void req_complete(care_cache_req_t *req, int code, const char *msg, const void *resp)
{
    if (req->done)
        return;
    req->done = 1;
    uv_timer_stop(&req->timer);
    care_cache_t *c = req->cache;
    care_status_t st = {code, msg ? msg : ""};
    if (req->cancelled) {
        c->stats.cancelled++;
    } else {
        count_status(c, code);
        if (req->kind == REQ_SUMMARY)
            req->cb.summary(req->ctx, &st, code == CARE_OK ? resp : NULL);
        else
            req->cb.search(req->ctx, &st, code == CARE_OK ? resp : NULL);
    }
    req_release(req);
}

static void req_timer_cb(uv_timer_t *t)
{
    care_cache_req_t *req = t->data;
    if (req->deferred) {
        req_complete(req, req->status.code, req->status.message, NULL);
        return;
    }
    /* The deadline passed with a command outstanding. */
    care_cache_t *c = req->cache;
    hub_log(HUB_LOG_WARN, MOD, "event=command_timeout timeout_ms=%u", c->cfg.command_timeout_ms);
    req_complete(req, CARE_DEADLINE_EXCEEDED, MSG_TIMEOUT, NULL);
    conn_drop(c, "command_timeout");
}

/* Completes a look-up on the next loop iteration: used for every failure
 * found inside an API call or inside hiredis's teardown. */
static void req_fail_later(care_cache_req_t *req, int code, const char *msg)
{
    if (req->done || req->deferred)
        return;
    req->deferred = 1;
    req->status.code = code;
    req->status.message = msg;
    uv_timer_stop(&req->timer);
    uv_timer_start(&req->timer, req_timer_cb, 0, 0);
}

static care_cache_req_t *req_new(care_cache_t *c, req_kind_t kind, void *ctx)
{
    care_cache_req_t *req = hub_calloc(1, sizeof *req);
    if (req == NULL)
        return NULL;
    req->cache = c;
    req->kind = kind;
    req->ctx = ctx;
    uv_timer_init(c->loop, &req->timer);
    req->timer.data = req;
    c->handles++;
    c->inflight++;
    c->stats.lookups++;
    req->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = req;
    c->reqs = req;
    return req;
}

/* Checks that a command may be sent now; otherwise fails the look-up fast. */
static int req_can_send(care_cache_req_t *req)
{
    care_cache_t *c = req->cache;
    if (c->closing) {
        req_fail_later(req, CARE_UNAVAILABLE, MSG_CLOSING);
        return 0;
    }
    if (c->state != CARE_CACHE_CONNECTED || c->ac == NULL) {
        req_fail_later(req, CARE_UNAVAILABLE, MSG_DOWN);
        return 0;
    }
    if (c->inflight > c->cfg.max_inflight) {
        req_fail_later(req, CARE_RESOURCE_EXHAUSTED, MSG_BUSY);
        return 0;
    }
    return 1;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

static int req_send(care_cache_req_t *req, int argc, const char **argv, const size_t *lens)
{
    care_cache_t *c = req->cache;
    if (redisAsyncCommandArgv(c->ac, on_reply, req, argc, argv, lens) != REDIS_OK) {
        req_fail_later(req, CARE_UNAVAILABLE, MSG_LOST);
        return -1;
    }
    req->redis_refs++;
    return 0;
}

/* ------------------------------------------------------------ summary */

static void summary_reply(care_cache_req_t *req, redisReply *reply)
{
    care_cache_t *c = req->cache;

    if (reply->type == REDIS_REPLY_NIL) {
        req_complete(req, CARE_NOT_FOUND, MSG_NOT_FOUND, NULL);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        req_complete(req, CARE_INTERNAL, MSG_CORRUPT, NULL);
        return;
    }
    pb_budget_t budget;
    pb_budget_init(&budget, c->cfg.max_decoded_bytes);
    Mhtas__V1__CareSummary *s = mhtas__v1__care_summary__unpack(
        &budget.allocator, (size_t)reply->len, (const uint8_t *)reply->str);
    if (s == NULL) {
        hub_log(HUB_LOG_ERROR, MOD, "event=summary_undecodable bytes=%zu over_budget=%d",
                (size_t)reply->len, budget.exceeded);
        req_complete(req, budget.exceeded ? CARE_RESOURCE_EXHAUSTED : CARE_INTERNAL,
                     budget.exceeded ? MSG_TOO_LARGE : MSG_CORRUPT, NULL);
        return;
    }
    if (s->nhs_number == NULL || strcmp(s->nhs_number, req->nhs) != 0) {
        hub_log(HUB_LOG_ERROR, MOD, "event=summary_key_mismatch");
        protobuf_c_message_free_unpacked(&s->base, &budget.allocator);
        req_complete(req, CARE_INTERNAL, MSG_CORRUPT, NULL);
        return;
    }
    Mhtas__V1__GetCareSummaryResponse resp = MHTAS__V1__GET_CARE_SUMMARY_RESPONSE__INIT;
    Mhtas__V1__CarePart stale[CARE_PARTS];
    int64_t now = c->cfg.clock_ms(c->cfg.clock_arg);
    resp.summary = s;
    resp.n_stale_parts = care_stale_parts(s, now, c->cfg.stale_after_ms, stale);
    resp.stale_parts = stale;
    resp.restricted = s->restricted;
    resp.read_at_ms = now;
    req_complete(req, CARE_OK, "", &resp);
    protobuf_c_message_free_unpacked(&s->base, &budget.allocator);
}

care_cache_req_t *care_cache_get_summary(care_cache_t *c, const char *nhs, care_summary_cb *cb,
                                         void *ctx)
{
    care_cache_req_t *req = req_new(c, REQ_SUMMARY, ctx);
    if (req == NULL)
        return NULL;
    req->cb.summary = cb;
    const char *why = nhs_number_validate(nhs, req->nhs);
    if (why) {
        req_fail_later(req, CARE_INVALID_ARGUMENT, why);
        return req;
    }
    if (!req_can_send(req))
        return req;
    char key[CARE_KEY_MAX];
    care_key_summary(req->nhs, key);
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, strlen(key)};
    if (req_send(req, 2, argv, lens) == 0)
        uv_timer_start(&req->timer, req_timer_cb, c->cfg.command_timeout_ms, 0);
    return req;
}

/* ------------------------------------------------------------ search */

/* Step 1 reply: the candidate NHS numbers (SUNION of the index sets). Asks
 * for their compact records with one MGET. The deadline covers both steps. */
static void search_candidates(care_cache_req_t *req, redisReply *reply)
{
    care_cache_t *c = req->cache;

    if (reply->type != REDIS_REPLY_ARRAY) {
        req_complete(req, CARE_INTERNAL, MSG_ERROR, NULL);
        return;
    }
    if (reply->elements > c->cfg.max_candidates) {
        req_complete(req, CARE_RESOURCE_EXHAUSTED, MSG_TOO_MANY, NULL);
        return;
    }
    req->candidates = (uint32_t)reply->elements;
    if (reply->elements == 0) {
        Mhtas__V1__SearchPersonsResponse resp = MHTAS__V1__SEARCH_PERSONS_RESPONSE__INIT;
        req_complete(req, CARE_OK, "", &resp);
        return;
    }
    size_t n = reply->elements + 1;
    const char **argv = hub_malloc(n * sizeof *argv);
    size_t *lens = hub_malloc(n * sizeof *lens);
    char (*keys)[CARE_KEY_MAX] = hub_malloc(n * CARE_KEY_MAX);
    if (!argv || !lens || !keys) {
        req_complete(req, CARE_RESOURCE_EXHAUSTED, MSG_NOMEM, NULL);
        goto out;
    }
    argv[0] = "MGET";
    lens[0] = 4;
    for (size_t i = 0; i < reply->elements; i++) {
        redisReply *e = reply->element[i];
        char nhs[NHS_NUMBER_LEN + 1];
        if (e->type != REDIS_REPLY_STRING || e->len != NHS_NUMBER_LEN) {
            req_complete(req, CARE_INTERNAL, MSG_CORRUPT, NULL);
            goto out;
        }
        memcpy(nhs, e->str, NHS_NUMBER_LEN);
        nhs[NHS_NUMBER_LEN] = '\0';
        care_key_person(nhs, keys[i]);
        argv[i + 1] = keys[i];
        lens[i + 1] = strlen(keys[i]);
    }
    if (req_send(req, (int)n, argv, lens) == 0)
        req->step = 1;
out:
    hub_free(argv);
    hub_free(lens);
    hub_free(keys);
}

/* Step 2 reply: the candidates' PersonMatch records. Scores each (pure),
 * keeps the matches, ranks them and answers with the best max_results.
 * Records that expired between the two steps come back nil and are skipped. */
static void search_records(care_cache_req_t *req, redisReply *reply)
{
    care_cache_t *c = req->cache;
    Mhtas__V1__PersonMatch **all = NULL;
    Mhtas__V1__MatchReason *reasons = NULL;
    size_t n = 0;
    pb_budget_t budget;
    pb_budget_init(&budget, c->cfg.max_decoded_bytes);

    if (reply->type != REDIS_REPLY_ARRAY) {
        req_complete(req, CARE_INTERNAL, MSG_ERROR, NULL);
        return;
    }
    all = hub_malloc((reply->elements + 1) * sizeof *all);
    if (all == NULL) {
        req_complete(req, CARE_RESOURCE_EXHAUSTED, MSG_NOMEM, NULL);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        Mhtas__V1__PersonMatch *m = mhtas__v1__person_match__unpack(
            &budget.allocator, (size_t)e->len, (const uint8_t *)e->str);
        if (m == NULL) {
            if (budget.exceeded) {
                req_complete(req, CARE_RESOURCE_EXHAUSTED, MSG_TOO_LARGE, NULL);
                goto out;
            }
            hub_log(HUB_LOG_WARN, MOD, "event=person_record_undecodable");
            continue;
        }
        care_score_t s = care_score(&req->query, m);
        if (s.score == 0) {
            protobuf_c_message_free_unpacked(&m->base, &budget.allocator);
            continue;
        }
        m->score = s.score;
        m->exact = s.exact;
        m->n_reasons = s.reasons;   /* the bit set, until unpacked below */
        all[n++] = m;
    }
    qsort(all, n, sizeof *all, care_match_cmp);
    size_t keep = n < req->query.max_results ? n : req->query.max_results;
    reasons = hub_malloc((keep + 1) * 16 * sizeof *reasons);
    if (reasons == NULL) {
        req_complete(req, CARE_RESOURCE_EXHAUSTED, MSG_NOMEM, NULL);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)all[i]->n_reasons;
        all[i]->n_reasons = 0;
        if (i < keep) {
            all[i]->reasons = reasons + i * 16;
            all[i]->n_reasons = care_reasons_unpack(bits, all[i]->reasons);
        }
    }
    Mhtas__V1__SearchPersonsResponse resp = MHTAS__V1__SEARCH_PERSONS_RESPONSE__INIT;
    resp.matches = all;
    resp.n_matches = keep;
    resp.candidates = req->candidates;
    resp.more = n > keep;
    req_complete(req, CARE_OK, "", &resp);
out:
    for (size_t i = 0; i < n; i++) {
        all[i]->n_reasons = 0;       /* points into `reasons`, not the budget */
        all[i]->reasons = NULL;
        protobuf_c_message_free_unpacked(&all[i]->base, &budget.allocator);
    }
    hub_free(reasons);
    hub_free(all);
}

care_cache_req_t *care_cache_search(care_cache_t *c, const Mhtas__V1__SearchPersonsRequest *q,
                                    care_search_cb *cb, void *ctx)
{
    care_cache_req_t *req = req_new(c, REQ_SEARCH, ctx);
    if (req == NULL)
        return NULL;
    req->cb.search = cb;
    const char *why = care_query_parse(&req->query, q);
    if (why) {
        req_fail_later(req, CARE_INVALID_ARGUMENT, why);
        return req;
    }
    if (!req_can_send(req))
        return req;
    char (*keys)[CARE_KEY_MAX] = hub_malloc(CARE_QUERY_KEYS_MAX * CARE_KEY_MAX);
    const char **argv = hub_malloc((CARE_QUERY_KEYS_MAX + 1) * sizeof *argv);
    size_t *lens = hub_malloc((CARE_QUERY_KEYS_MAX + 1) * sizeof *lens);
    if (!keys || !argv || !lens) {
        req_fail_later(req, CARE_RESOURCE_EXHAUSTED, MSG_NOMEM);
        goto out;
    }
    int n = care_query_keys(&req->query, keys);
    argv[0] = "SUNION";
    lens[0] = 6;
    for (int i = 0; i < n; i++) {
        argv[i + 1] = keys[i];
        lens[i + 1] = strlen(keys[i]);
    }
    if (req_send(req, n + 1, argv, lens) == 0)
        uv_timer_start(&req->timer, req_timer_cb, c->cfg.command_timeout_ms, 0);
out:
    hub_free(keys);
    hub_free(argv);
    hub_free(lens);
    return req;
}

/* ------------------------------------------------------------ replies */

/* Every hiredis reply (or NULL, when the context goes away) for a look-up
 * arrives here. A NULL reply first attributed to an over-budget reply is
 * that command's RESOURCE_EXHAUSTED; the rest are UNAVAILABLE. */
static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    care_cache_req_t *req = privdata;
    care_cache_t *c = req->cache;
    redisReply *reply = r;
    (void)ac;

    c->reply_bytes = 0;
    req->redis_refs--;
    if (reply == NULL) {
        int too_large = c->over_budget;
        c->over_budget = 0;
        if (too_large)
            hub_log(HUB_LOG_WARN, MOD, "event=reply_too_large max=%zu", c->cfg.max_reply_bytes);
        req_fail_later(req, too_large ? CARE_RESOURCE_EXHAUSTED : CARE_UNAVAILABLE,
                       too_large ? MSG_TOO_LARGE : c->closing ? MSG_CLOSING : MSG_LOST);
        req_release(req);
        return;
    }
    if (req->done || req->deferred) {
        req_release(req);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        int loading = strncmp(reply->str, "LOADING", 7) == 0;
        hub_log(HUB_LOG_WARN, MOD, "event=redis_error kind=%.24s", reply->str);
        req_complete(req, loading ? CARE_UNAVAILABLE : CARE_INTERNAL,
                     loading ? MSG_LOADING : MSG_ERROR, NULL);
        return;
    }
    if (req->kind == REQ_SUMMARY)
        summary_reply(req, reply);
    else if (req->step == 0)
        search_candidates(req, reply);
    else
        search_records(req, reply);
}

void care_cache_cancel(care_cache_req_t *req)
{
    if (req == NULL || req->done)
        return;
    req->cancelled = 1;
}
