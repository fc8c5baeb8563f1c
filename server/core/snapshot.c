/* snapshot.c -- building the protobuf messages the core hands out.
 *
 * Every message built here is a tree of separate hub allocations (each
 * string, repeated array and sub-message its own), exactly the shape
 * protobuf_c_message_unpack() produces, so that the receiver frees it with
 * protobuf_c_message_free_unpacked(m, hub_pb_allocator()). Strings left
 * empty keep the protobuf_c_empty_string default, which free_unpacked knows
 * not to free.
 *
 * Builders attach each allocation to the tree as soon as it is made, and
 * count repeated fields up as they fill them, so that on allocation failure
 * the partial tree can be freed with the same call: there is no separate
 * error path to get wrong.
 */
#include <string.h>

#include "core/core_internal.h"

#define PB_NEW(var, type, initfn)                                                                  \
    do {                                                                                           \
        (var) = hub_malloc(sizeof(type));                                                          \
        if (var)                                                                                   \
            initfn(var);                                                                           \
    } while (0)

void core__pb_free(void *m)
{
    if (m)
        protobuf_c_message_free_unpacked((ProtobufCMessage *)m, hub_pb_allocator());
}

/* A deep copy through the wire format. It is not the fastest copy, but it is
 * exact for every message type without a line of per-type code, and the
 * result has precisely the allocation shape free_unpacked expects. */
void *core__pb_clone(const ProtobufCMessage *m)
{
    return hub_pb_clone(m);
}

/* Stores a copy of s in *dst (which must hold the empty default), or leaves
 * the default when s is NULL or empty. -1 when out of memory. */
int core__set_str(char **dst, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    char *d = hub_strdup(s);
    if (d == NULL)
        return -1;
    *dst = d;
    return 0;
}

static const char *uid(const core_t *c, int u)
{
    return u >= 0 && (size_t)u < c->cfg.n_users ? c->cfg.users[u].id : "hub";
}

/* The idempotency key of the request that caused a transition. Each of the
 * three causes that carry one happens at most once in an incident's life
 * (RAISED first, CANCELLED and OUTCOME_AGREED last), so the incident's own
 * key fields are the transition's: recovery reads them back from here. */
static const char *trans_key(const incident_t *inc, const trans_t *t)
{
    switch (t->cause) {
    case CAUSE(RAISED): return inc->raise_key;
    case CAUSE(CANCELLED): return inc->cancel_key;
    case CAUSE(OUTCOME_AGREED): return inc->close_key;
    default: return NULL;
    }
}

static Mhtas__V1__Transition *snap_trans(const core_t *c, const incident_t *inc, const trans_t *t)
{
    Mhtas__V1__Transition *m;
    PB_NEW(m, Mhtas__V1__Transition, mhtas__v1__transition__init);
    if (m == NULL)
        return NULL;
    m->seq = t->seq;
    m->at_ms = t->at;
    m->from = t->from;
    m->to = t->to;
    m->cause = t->cause;
    if (core__set_str(&m->actor, uid(c, t->actor)) ||
        (t->practitioner >= 0 && core__set_str(&m->practitioner, uid(c, t->practitioner))) ||
        core__set_str(&m->reason, t->reason) || core__set_str(&m->idempotency_key, trans_key(inc, t))) {
        core__pb_free(m);
        return NULL;
    }
    return m;
}

Mhtas__V1__ChatMessage *core__snap_msg(const core_t *c, const incident_t *inc, const msg_t *msg)
{
    Mhtas__V1__ChatMessage *m;
    PB_NEW(m, Mhtas__V1__ChatMessage, mhtas__v1__chat_message__init);
    if (m == NULL)
        return NULL;
    const core_user_t *u = &c->cfg.users[msg->from];
    m->incident_id = inc->id;
    m->number = msg->number;
    m->from_role = u->role;
    m->at_ms = msg->at;
    m->kind = msg->kind ? (Mhtas__V1__MessageKind)msg->kind : MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_TEXT;
    if (core__set_str(&m->from_user, u->id) || core__set_str(&m->from_name, u->display_name) ||
        core__set_str(&m->text, msg->text) || core__set_str(&m->client_msg_id, msg->client_id)) {
        core__pb_free(m);
        return NULL;
    }
    return m;
}

/* Who the snapshot names as the practitioner: the holder, the last holder
 * of a closed incident, or the (first) practitioner offered it. */
static int shown_practitioner(const incident_t *inc)
{
    if (inc->holder >= 0)
        return inc->holder;
    if (inc->state == ST(OFFERED) && inc->n_offerees > 0)
        return inc->offerees[0];
    return -1;
}

Mhtas__V1__Incident *core__snap_incident(const core_t *c, const incident_t *inc, int64_t now, bool with_messages)
{
    (void)now;
    Mhtas__V1__Incident *m;
    PB_NEW(m, Mhtas__V1__Incident, mhtas__v1__incident__init);
    if (m == NULL)
        return NULL;
    m->id = inc->id;
    m->state = inc->state;
    m->raised_at_ms = inc->raised_at;
    m->updated_at_ms = inc->updated_at;
    m->offer_deadline_ms = inc->state == ST(OFFERED) ? inc->offer_deadline : 0;
    if (inc->state == ST(QUEUED) || inc->state == ST(OFFERED)) {
        m->queue_position = inc->qpos;
        uint32_t n = core__on_shift_connected(c);
        m->expected_wait_ms = (int64_t)inc->qpos * core__avg_wait(c) / (n ? n : 1);
    }
    m->sla_deadline_ms = inc->sla_deadline;
    m->sla_breached = inc->sla_breached;
    int p = shown_practitioner(inc);
    const core_borough_t *b = &c->cfg.boroughs[inc->borough];
    const char *provider = b->provider >= 0 && (size_t)b->provider < c->cfg.n_providers
                               ? c->cfg.providers[b->provider] : NULL;
    if ((m->details = core__pb_clone(&inc->details->base)) == NULL ||
        core__set_str(&m->raised_by, uid(c, inc->raised_by)) ||
        (p >= 0 && (core__set_str(&m->practitioner, uid(c, p)) ||
                    core__set_str(&m->practitioner_name, c->cfg.users[p].display_name))) ||
        core__set_str(&m->cancel_reason, inc->cancel_reason) || core__set_str(&m->provider, provider))
        goto oom;
    if (inc->outcome && (m->outcome = core__pb_clone(&inc->outcome->base)) == NULL)
        goto oom;
    if (inc->n_hist) {
        if ((m->history = hub_calloc(inc->n_hist, sizeof(*m->history))) == NULL)
            goto oom;
        for (size_t i = 0; i < inc->n_hist; i++) {
            if ((m->history[i] = snap_trans(c, inc, &inc->hist[i])) == NULL)
                goto oom;
            m->n_history = i + 1;
        }
    }
    if (with_messages && inc->n_msgs) {
        if ((m->messages = hub_calloc(inc->n_msgs, sizeof(*m->messages))) == NULL)
            goto oom;
        for (size_t i = 0; i < inc->n_msgs; i++) {
            if ((m->messages[i] = core__snap_msg(c, inc, &inc->msgs[i])) == NULL)
                goto oom;
            m->n_messages = i + 1;
        }
    }
    return m;
oom:
    core__pb_free(m);
    return NULL;
}

Mhtas__V1__PractitionerStatus *core__snap_status(const core_t *c, int p, int64_t now)
{
    const core_user_t *u = &c->cfg.users[p];
    const pract_t *pr = &c->pr[p];
    Mhtas__V1__PractitionerStatus *m;
    PB_NEW(m, Mhtas__V1__PractitionerStatus, mhtas__v1__practitioner_status__init);
    if (m == NULL)
        return NULL;
    m->state = core__pstate(c, p, now);
    m->active_incidents = core__active(c, p);
    m->capacity = core__capacity(c, p);
    m->missed_offers = pr->missed;
    m->on_shift_since_ms = pr->on_shift ? pr->on_shift_since : 0;
    m->connected = pr->connected;
    const char *provider = u->provider >= 0 && (size_t)u->provider < c->cfg.n_providers
                               ? c->cfg.providers[u->provider] : NULL;
    if (core__set_str(&m->user_id, u->id) || core__set_str(&m->display_name, u->display_name) ||
        core__set_str(&m->pause_reason, pr->paused ? pr->pause_reason : NULL) ||
        core__set_str(&m->provider, provider))
        goto oom;
    if (pr->n_held) {
        if ((m->holding = hub_calloc(pr->n_held, sizeof(*m->holding))) == NULL)
            goto oom;
        /* Held incidents are open: look through the open list (not every
         * incident since start-up, which grows for as long as the hub runs
         * and made each board cost O(history)), then list them in id order,
         * whatever the order of the open list. */
        for (size_t i = 0; i < c->n_open && m->n_holding < pr->n_held; i++) {
            const incident_t *inc = c->open[i];
            if (inc->holder == p && core__is_held(inc->state))
                m->holding[m->n_holding++] = inc->id;
        }
        for (size_t i = 1; i < m->n_holding; i++) { /* a handful: insertion sort */
            uint64_t id = m->holding[i];
            size_t j = i;
            for (; j > 0 && m->holding[j - 1] > id; j--)
                m->holding[j] = m->holding[j - 1];
            m->holding[j] = id;
        }
    }
    return m;
oom:
    core__pb_free(m);
    return NULL;
}

Mhtas__V1__Board *core__snap_board(const core_t *c, int64_t now)
{
    Mhtas__V1__Board *m;
    PB_NEW(m, Mhtas__V1__Board, mhtas__v1__board__init);
    if (m == NULL)
        return NULL;
    if ((m->queue = hub_calloc(4, sizeof(*m->queue))) == NULL)
        goto oom;
    for (int pri = 1; pri <= 4; pri++) {
        Mhtas__V1__QueueDepth *q;
        PB_NEW(q, Mhtas__V1__QueueDepth, mhtas__v1__queue_depth__init);
        if (q == NULL)
            goto oom;
        m->queue[m->n_queue++] = q;
        q->priority = (Mhtas__V1__Priority)pri;
    }
    for (size_t i = 0; i < c->n_queue; i++) {
        const incident_t *inc = c->queue[i];
        Mhtas__V1__QueueDepth *q = m->queue[inc->details->priority - 1];
        int64_t wait = now - inc->raised_at;
        q->depth++;
        if (wait > q->longest_wait_ms)
            q->longest_wait_ms = wait;
        if (wait > m->longest_wait_ms)
            m->longest_wait_ms = wait;
        m->offers_outstanding += (uint32_t)inc->n_offerees;
    }
    for (size_t i = 0; i < c->n_open; i++)
        if (c->open[i]->sla_breached)
            m->breaches++;
    size_t n = 0;
    for (size_t u = 0; u < c->cfg.n_users; u++)
        if (c->cfg.users[u].role == ROLE(PRACTITIONER)) {
            n++;
            if (c->pr[u].on_shift)
                m->on_shift++;
        }
    if (n) {
        if ((m->practitioners = hub_calloc(n, sizeof(*m->practitioners))) == NULL)
            goto oom;
        /* Those on shift first, because that is who the supervisor is
         * watching; then the rest, each group in configured order. */
        for (int pass = 0; pass < 2; pass++)
            for (size_t u = 0; u < c->cfg.n_users; u++) {
                if (c->cfg.users[u].role != ROLE(PRACTITIONER) || c->pr[u].on_shift != (pass == 0))
                    continue;
                Mhtas__V1__PractitionerStatus *s = core__snap_status(c, (int)u, now);
                if (s == NULL)
                    goto oom;
                m->practitioners[m->n_practitioners++] = s;
            }
    }
    return m;
oom:
    core__pb_free(m);
    return NULL;
}

Mhtas__V1__Event *core__ev_new(void)
{
    Mhtas__V1__Event *ev;
    PB_NEW(ev, Mhtas__V1__Event, mhtas__v1__event__init);
    return ev;
}
