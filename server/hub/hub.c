/* hub.c -- owns the domain core and connects it to the front ends.
 *
 * What happens on a call (see docs/ARCHITECTURE.md for the picture):
 *   front end decodes -> hub_call -> role gate and core function
 *   (hub_methods.c) -> the core emits events synchronously -> emit() packs
 *   each event once, keeps it in the history ring for resume, and fans it out
 *   to every subscription whose user may see it -> the reply goes back to
 *   the front end -> settle(): presence changes, the supervisors' board and
 *   the core's next timer.
 *
 * Re-entrancy: the core must never be entered while it is emitting. A front
 * end may drop a subscription from inside an event callback (a slow
 * consumer), and dropping a practitioner's last subscription is a presence
 * change the core must hear about; so presence changes and frees are queued
 * while `busy` and applied in settle(), when the stack has unwound. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "codec/pbjson.h"
#include "hub_internal.h"
#include "log/log.h"
#include "util/alloc.h"

/* ------------------------------------------------------------------ time */

int64_t hub__now_ms(hub_t *hub)
{
    return hub->wall0_ms + (int64_t)(uv_now(hub->loop) - hub->loop0_ms);
}

core_t *hub__core(hub_t *hub)
{
    return hub->core;
}

const hub_config_t *hub_config(hub_t *hub)
{
    return hub->cfg;
}

uv_loop_t *hub_loop(hub_t *hub)
{
    return hub->loop;
}

uint64_t hub_last_seq(hub_t *hub)
{
    return core_last_seq(hub->core);
}

hub_fe_stats_t *hub_fe_stats(hub_t *hub, hub_frontend_t fe)
{
    return &hub->metrics.fe[fe];
}

void hub_observe_relay_us(hub_t *hub, uint64_t us)
{
    hub_hist__observe_us(&hub->metrics.relay, us);
}

/* ------------------------------------------------------------------ auth */

const hub_user_t *hub_authenticate(hub_t *hub, const char *token, size_t len)
{
    if (token == NULL || len == 0 || len > 512)
        return NULL;
    return hub_config_find_token(hub->cfg, token, len);
}

bool hub_origin_allowed(hub_t *hub, const char *origin)
{
    for (size_t i = 0; i < hub->cfg->n_allowed_origins; i++)
        if (strcmp(hub->cfg->allowed_origins[i], origin) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- events */

static bool is_police(const hub_user_t *u)
{
    return u->role != MHTAS__V1__ROLE__ROLE_PRACTITIONER;
}

static bool visible(const hub_user_t *u, const core_audience_t *aud)
{
    if (is_police(u)) {
        if (aud->police)
            return true;
        if (aud->supervisors && u->role == MHTAS__V1__ROLE__ROLE_SUPERVISOR)
            return true;
    }
    for (int i = 0; i < aud->n_users; i++)
        if (aud->users[i] == u->index)
            return true;
    return false;
}

const char *hub_event_json(hub_event_t *ev, size_t *len)
{
    if (ev->_json == NULL) {
        Mhtas__V1__Event *e = mhtas__v1__event__unpack(hub_pb_allocator(), ev->len, ev->pb);
        if (e == NULL)
            return NULL;
        ev->_json = pbjson_encode(&e->base, &ev->_json_len);
        mhtas__v1__event__free_unpacked(e, hub_pb_allocator());
        if (ev->_json == NULL)
            return NULL;
    }
    *len = ev->_json_len;
    return ev->_json;
}

static void deliver(hub_sub_t *s, hub_event_t *ev)
{
    if (!s->dead)
        s->cb(s->ctx, ev);
}

static void fan_out(hub_t *hub, hub_event_t *ev, const core_audience_t *aud)
{
    hub->busy++;
    /* `next` is read before each callback: a callback may unsubscribe its own
     * subscription, which unlinks it but frees it only in settle(). */
    if (aud->police || aud->supervisors) {
        for (hub_sub_t *s = hub->police.head, *next; s; s = next) {
            next = s->next;
            if (aud->police || s->user->role == MHTAS__V1__ROLE__ROLE_SUPERVISOR)
                deliver(s, ev);
        }
    }
    for (int i = 0; i < aud->n_users; i++) {
        int u = aud->users[i];
        if (u < 0 || (size_t)u >= hub->cfg->n_users)
            continue;
        const hub_user_t *user = &hub->cfg->users[u];
        if (is_police(user)) {
            if (aud->police || (aud->supervisors && user->role == MHTAS__V1__ROLE__ROLE_SUPERVISOR))
                continue; /* already delivered above */
            for (hub_sub_t *s = hub->police.head, *next; s; s = next) {
                next = s->next;
                if (s->user == user)
                    deliver(s, ev);
            }
            continue;
        }
        for (hub_sub_t *s = hub->by_user[u].head, *next; s; s = next) {
            next = s->next;
            deliver(s, ev);
        }
    }
    hub->busy--;
}

/* Latency histograms, read off the events as they pass: the offer that a
 * RaiseIncident produced, the message that a PostMessage produced, and the
 * human offer-to-accept time from the incident's own history. */
static void observe(hub_t *hub, const Mhtas__V1__Event *ev)
{
    bool in_call = hub->call_method && !hub->call_observed;
    if (ev->kind_case == MHTAS__V1__EVENT__KIND_OFFER && ev->offer->incident) {
        const Mhtas__V1__Incident *inc = ev->offer->incident;
        if (in_call && strcmp(hub->call_method->name, "RaiseIncident") == 0) {
            /* Routed within the request itself: measure it to the microsecond. */
            hub_hist__observe_us(&hub->metrics.raise_to_offer, (uv_hrtime() - hub->call_t0_ns) / 1000);
            hub->call_observed = true;
        } else {
            /* Offered later (it waited in the queue): the first offer counts,
             * from the incident's own timestamps. */
            unsigned offers = 0;
            for (size_t i = 0; i < inc->n_history; i++)
                offers += inc->history[i]->to == MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_OFFERED;
            if (offers <= 1 && ev->at_ms >= inc->raised_at_ms)
                hub_hist__observe_us(&hub->metrics.raise_to_offer, (uint64_t)(ev->at_ms - inc->raised_at_ms) * 1000);
        }
    }
    if (in_call && ev->kind_case == MHTAS__V1__EVENT__KIND_MESSAGE &&
        strcmp(hub->call_method->name, "PostMessage") == 0) {
        hub_hist__observe_us(&hub->metrics.relay, (uv_hrtime() - hub->call_t0_ns) / 1000);
        hub->call_observed = true;
    }
    if (ev->kind_case == MHTAS__V1__EVENT__KIND_INCIDENT && ev->incident->transition &&
        ev->incident->transition->cause == MHTAS__V1__CAUSE__CAUSE_ACCEPTED && ev->incident->incident) {
        const Mhtas__V1__Incident *inc = ev->incident->incident;
        for (size_t i = inc->n_history; i-- > 0;) {
            if (inc->history[i]->to == MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_OFFERED) {
                int64_t ms = ev->incident->transition->at_ms - inc->history[i]->at_ms;
                if (ms >= 0)
                    hub_hist__observe_us(&hub->metrics.offer_to_accept, (uint64_t)ms * 1000);
                break;
            }
        }
    }
}

/* The core's emit callback: pack once, hold for resume, fan out. */
static void emit(void *ctx, const Mhtas__V1__Event *e, const core_audience_t *aud)
{
    hub_t *hub = ctx;
    size_t len = protobuf_c_message_get_packed_size(&e->base);
    uint8_t *pb = hub_malloc(len);
    if (pb == NULL) {
        hub_log(HUB_LOG_ERROR, "hub", "event=event_dropped seq=%llu reason=out_of_memory",
                (unsigned long long)e->seq);
        return;
    }
    protobuf_c_message_pack(&e->base, pb);
    hub->metrics.events_total++;
    hub->metrics.event_bytes_total += len;
    observe(hub, e);

    if (hub->journal && !hub->restoring && !hub->journal_down)
        hub_journal__record(hub, e, aud);

    hub_event_t ev = { .seq = e->seq, .pb = pb, .len = len };
    /* An empty audience (audit records: journal only) reaches nobody. */
    fan_out(hub, &ev, aud);
    hub_free(ev._json);
    hub__hold_event(hub, e, pb, len, aud);
}

/* Keeps an event (taking ownership of pb) in the ring that serves
 * Subscribe(after_seq), dropping the oldest when it is full. */
void hub__hold_event(hub_t *hub, const Mhtas__V1__Event *e, uint8_t *pb, size_t len, const core_audience_t *aud)
{
    if (hub->ring_cap == 0) {
        hub_free(pb);
        return;
    }
    size_t slot;
    if (hub->ring_len == hub->ring_cap) {
        slot = hub->ring_head;
        hub_free(hub->ring[slot].pb);
        hub->ring_head = (hub->ring_head + 1) % hub->ring_cap;
    } else {
        slot = (hub->ring_head + hub->ring_len) % hub->ring_cap;
        hub->ring_len++;
    }
    hub->ring[slot] = (held_t){
        .seq = e->seq, .kind = (int)e->kind_case, .at_ms = e->at_ms, .pb = pb, .len = len, .aud = *aud
    };
}

/* ------------------------------------------------------------- settling */

static void timer_cb(uv_timer_t *t);

static void arm_timer(hub_t *hub)
{
    int64_t next = core_next_deadline(hub->core);
    if (next == INT64_MAX) {
        uv_timer_stop(&hub->timer);
        return;
    }
    int64_t delay = next - hub__now_ms(hub);
    uv_timer_start(&hub->timer, timer_cb, delay < 0 ? 0 : (uint64_t)delay, 0);
}

/* Applies what had to wait for the stack to unwind. Runs after every entry
 * into the core from outside (a call, a timer, a subscription change). */
void hub__settle(hub_t *hub)
{
    if (hub->busy > 0 || hub->core == NULL)
        return;
    hub->busy++;
    int64_t now = hub__now_ms(hub);
    for (size_t u = 0; u < hub->cfg->n_users; u++) {
        bool connected = hub->sub_count[u] > 0;
        if (connected != (bool)hub->told_connected[u] && !is_police(&hub->cfg->users[u])) {
            hub->told_connected[u] = connected;
            hub_log(HUB_LOG_INFO, "hub", "event=presence user=%s connected=%d", hub->cfg->users[u].id,
                    connected);
            core_set_connected(hub->core, now, (int)u, connected);
        }
    }
    core_flush_board(hub->core, now);
    hub->busy--;
    while (hub->dead) {
        hub_sub_t *s = hub->dead;
        hub->dead = s->next_dead;
        hub_free(s);
    }
    arm_timer(hub);
}

static void timer_cb(uv_timer_t *t)
{
    hub_t *hub = t->data;
    hub->busy++;
    core_tick(hub->core, hub__now_ms(hub));
    hub->busy--;
    hub__settle(hub);
}

/* ---------------------------------------------------------------- calls */

hub_call_t *hub_call(hub_t *hub, const hub_user_t *caller, const hub_method_t *method,
                     const ProtobufCMessage *req, hub_reply_cb cb, void *ctx)
{
    uv_update_time(hub->loop);
    hub->call_t0_ns = uv_hrtime();
    hub->call_method = method;
    hub->call_observed = false;

    ProtobufCMessage *resp = NULL;
    const char *message = NULL;
    int status;
    bool changes = hub_journal__changes_state(method);
    if (hub_care__handles(method)) {
        /* Care records wait for the cache and the journal (hub_care.c). */
        hub->call_method = NULL;
        status = hub_methods__gate(caller, method, req, &message);
        if (status == HUB_GRPC_OK) {
            hub_call_t *h = hub_care__call(hub, caller, method, req, cb, ctx);
            hub__settle(hub);
            return h;
        }
        hub_log(HUB_LOG_INFO, "hub", "event=call method=%s user=%s status=%d", method->name, caller->id, status);
        hub_reply_t reply = { .status = status, .message = message };
        cb(ctx, &reply);
        return NULL;
    }
    if (changes && hub->journal_down) {
        /* Nothing that cannot be recorded is accepted; reads go on. */
        status = HUB_GRPC_UNAVAILABLE;
        message = hub->journal_down_why;
    } else {
        hub->busy++;
        status = hub_methods__run(hub, caller, method, req, &resp, &message);
        hub->busy--;
        if (status == HUB_GRPC_OK && changes && hub->journal_down) {
            /* An append failed during the call: it cannot be acknowledged. */
            status = HUB_GRPC_UNAVAILABLE;
            message = hub->journal_down_why;
            if (resp)
                protobuf_c_message_free_unpacked(resp, hub_pb_allocator());
            resp = NULL;
        }
    }
    hub->call_method = NULL;

    hub_log(status ? HUB_LOG_INFO : HUB_LOG_DEBUG, "hub", "event=call method=%s user=%s status=%d us=%llu",
            method->name, caller->id, status, (unsigned long long)((uv_hrtime() - hub->call_t0_ns) / 1000));
    /* Acknowledged means durable: a change is answered only once the journal
     * has synced every record appended so far (its own, and any earlier one
     * it may depend on -- which also covers an idempotent resend answered
     * from memory). */
    hub_call_t *pending = NULL;
    if (status == HUB_GRPC_OK && changes && hub->journal &&
        hub_journal__defer(hub, method, resp, cb, ctx, &pending) < 0) {
        /* Cannot wait for the sync, so must not say it succeeded. */
        status = HUB_GRPC_UNAVAILABLE;
        message = "out of memory: the change may or may not be recorded; retry with the same idempotency key";
        if (resp)
            protobuf_c_message_free_unpacked(resp, hub_pb_allocator());
        resp = NULL;
    }
    if (pending == NULL) {
        hub_reply_t reply = { .status = status, .message = message, .msg = resp };
        cb(ctx, &reply);
        if (resp)
            protobuf_c_message_free_unpacked(resp, hub_pb_allocator());
    }
    hub__settle(hub);
    return pending;
}

void hub_call_cancel(hub_call_t *call)
{
    if (call && !hub_care__cancel(call))
        call->cancelled = true;
}

/* -------------------------------------------------------- subscriptions */

static sub_list_t *list_for(hub_t *hub, const hub_user_t *u)
{
    return is_police(u) ? &hub->police : &hub->by_user[u->index];
}

static void replay(hub_t *hub, hub_sub_t *s, uint64_t after_seq)
{
    uint64_t oldest = hub->ring_len ? hub->ring[hub->ring_head].seq : core_last_seq(hub->core) + 1;
    uint64_t last = core_last_seq(hub->core);
    if (after_seq + 1 < oldest || after_seq > last) {
        /* The client has missed events we no longer hold (or it saw a hub
         * that has since restarted): tell it to reload rather than pretend
         * the stream is whole. */
        Mhtas__V1__Event e = MHTAS__V1__EVENT__INIT;
        Mhtas__V1__Notice n = MHTAS__V1__NOTICE__INIT;
        n.kind = MHTAS__V1__NOTICE_KIND__NOTICE_KIND_RESUME_GAP;
        n.text = "Some events since you were last connected are no longer held: reload the incidents.";
        e.seq = last;
        e.at_ms = hub__now_ms(hub);
        e.kind_case = MHTAS__V1__EVENT__KIND_NOTICE;
        e.notice = &n;
        size_t len = protobuf_c_message_get_packed_size(&e.base);
        uint8_t *pb = hub_malloc(len);
        if (pb) {
            protobuf_c_message_pack(&e.base, pb);
            hub_event_t ev = { .seq = e.seq, .pb = pb, .len = len };
            deliver(s, &ev);
            hub_free(ev._json);
            hub_free(pb);
        }
        if (after_seq > last)
            return;
    }
    for (size_t i = 0; i < hub->ring_len && !s->dead; i++) {
        held_t *h = &hub->ring[(hub->ring_head + i) % hub->ring_cap];
        if (h->seq <= after_seq || !visible(s->user, &h->aud))
            continue;
        hub_event_t ev = { .seq = h->seq, .pb = h->pb, .len = h->len };
        deliver(s, &ev);
        hub_free(ev._json);
    }
}

hub_sub_t *hub_subscribe(hub_t *hub, const hub_user_t *user, uint64_t after_seq, hub_event_cb cb,
                         void *ctx)
{
    hub_sub_t *s = hub_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->hub = hub;
    s->user = user;
    s->cb = cb;
    s->ctx = ctx;
    if (after_seq > 0) {
        hub->busy++;
        replay(hub, s, after_seq);
        hub->busy--;
    }
    sub_list_t *l = list_for(hub, user);
    s->next = l->head;
    if (l->head)
        l->head->prev = s;
    l->head = s;
    hub->sub_count[user->index]++;
    hub->metrics.subscribers++;
    hub__settle(hub);
    return s;
}

void hub_unsubscribe(hub_sub_t *s)
{
    if (s == NULL || s->dead)
        return;
    hub_t *hub = s->hub;
    sub_list_t *l = list_for(hub, s->user);
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    /* s->next stays valid for a fan-out loop that is standing on s. */
    s->dead = true;
    s->next_dead = hub->dead;
    hub->dead = s;
    hub->sub_count[s->user->index]--;
    hub->metrics.subscribers--;
    hub__settle(hub);
}

/* -------------------------------------------------------------- metrics */

char *hub_render_metrics(hub_t *hub, size_t *len)
{
    core_stats_t cs;
    core_get_stats(hub->core, hub__now_ms(hub), &cs);
    return hub_metrics__render(&hub->metrics, &cs, len);
}

/* ------------------------------------------------------------ lifecycle */

hub_t *hub_new(uv_loop_t *loop, const hub_config_t *cfg, char *err, size_t errlen)
{
    if (hub_methods__init(err, errlen) != 0)
        return NULL;
    hub_t *hub = hub_calloc(1, sizeof *hub);
    if (hub == NULL)
        goto fail_nomem;
    hub->loop = loop;
    hub->cfg = cfg;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    hub->wall0_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    uv_update_time(loop);
    hub->loop0_ms = uv_now(loop);

    size_t nu = cfg->n_users ? cfg->n_users : 1;
    hub->by_user = hub_calloc(nu, sizeof *hub->by_user);
    hub->sub_count = hub_calloc(nu, sizeof *hub->sub_count);
    hub->told_connected = hub_calloc(nu, 1);
    hub->ring_cap = cfg->event_history;
    hub->ring = hub_calloc(hub->ring_cap ? hub->ring_cap : 1, sizeof *hub->ring);
    if (!hub->by_user || !hub->sub_count || !hub->told_connected || !hub->ring)
        goto fail_nomem_hub;
    if (hub_core_config_build(cfg, (uint64_t)hub->wall0_ms | 1, &hub->ccfg, err, errlen) != 0)
        goto fail;
    hub->core = core_new(&hub->ccfg.core, emit, hub, 1);
    if (hub->core == NULL)
        goto fail_nomem_hub;
    uv_timer_init(loop, &hub->timer);
    hub->timer.data = hub;
    hub->handles_open = 1;
    if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0')
        hub_log(HUB_LOG_WARN, "hub", "event=not_durable reason=\"[hub] data_dir is not set: state is kept in "
                                     "memory only and NOTHING survives a restart\"");
    else if (hub_journal__open(hub, err, errlen) != 0) {
        hub_close(hub);
        uv_run(loop, UV_RUN_DEFAULT);
        hub_destroy(hub);
        return NULL;
    }
    if (hub_care__open(hub, err, errlen) != 0) {
        hub_close(hub);
        uv_run(loop, UV_RUN_DEFAULT);
        hub_destroy(hub);
        return NULL;
    }
    hub__settle(hub);
    return hub;

fail_nomem_hub:
    snprintf(err, errlen, "out of memory");
fail:

    hub_free(hub->by_user);
    hub_free(hub->sub_count);
    hub_free(hub->told_connected);
    hub_free(hub->ring);
    hub_core_config_free(&hub->ccfg);
    hub_free(hub);
    return NULL;
fail_nomem:
    snprintf(err, errlen, "out of memory");
    return NULL;
}

void hub_close(hub_t *hub)
{
    hub_care__close(hub);
    hub_journal__close(hub);
    if (hub->handles_open) {
        uv_timer_stop(&hub->timer);
        uv_close((uv_handle_t *)&hub->timer, NULL);
        hub->handles_open = 0;
    }
}

void hub_destroy(hub_t *hub)
{
    if (hub == NULL)
        return;
    hub_journal__free(hub);
    core_free(hub->core);
    hub->core = NULL;
    for (size_t i = 0; i < hub->ring_len; i++)
        hub_free(hub->ring[(hub->ring_head + i) % hub->ring_cap].pb);
    /* Subscriptions still open belong to front ends that were not closed;
     * free what the hub owns. */
    while (hub->dead) {
        hub_sub_t *s = hub->dead;
        hub->dead = s->next_dead;
        hub_free(s);
    }
    hub_free(hub->ring);
    hub_free(hub->by_user);
    hub_free(hub->sub_count);
    hub_free(hub->told_connected);
    hub_core_config_free(&hub->ccfg);
    hub_free(hub);
}
