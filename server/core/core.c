/* core.c -- the core's lifetime, its errors, its events and the bookkeeping
 * every other file relies on.
 *
 * Three invariants hold between calls, and core__check() verifies them for
 * the tests:
 *   - pr[p].n_offers is the number of open incidents listing p among their
 *     offerees, and pr[p].n_held the number held by p (ACCEPTED, ADVISING or
 *     OUTCOME_PROPOSED with holder == p);
 *   - `queue` holds exactly the QUEUED and OFFERED incidents, in queue order
 *     (priority, then raise time, then id), each knowing its position;
 *   - `open` holds exactly the incidents that are neither CLOSED nor
 *     CANCELLED, and its capacity (and the queue's) is never less than its
 *     length plus one, reserved when an incident is raised, so that moving
 *     an incident in and out of the queue never allocates.
 * Counters are kept incrementally by the few functions here that change
 * holders, offerees and the queue; nothing else touches those fields.
 */
#include <stdio.h>
#include <string.h>

#include "core/core_internal.h"

/* ------------------------------------------------------------------ errors */

int core__fail(core_t *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return rc;
}

void core__ok(core_t *c)
{
    c->err[0] = '\0';
}

const char *core_last_error(const core_t *core)
{
    return core->err;
}

int core_grpc_status(int rc)
{
    switch (rc) {
    case CORE_OK: return 0;
    case CORE_E_INVALID: return 3;
    case CORE_E_NOT_FOUND: return 5;
    case CORE_E_STATE: return 9;
    case CORE_E_PERM: return 7;
    case CORE_E_EXHAUSTED: return 8;
    case CORE_E_NOMEM: return 8;
    default: return 13; /* INTERNAL: a code this version does not know */
    }
}

uint64_t core_last_seq(const core_t *core)
{
    return core->last_seq;
}

int core_user_index(const core_t *core, const char *id)
{
    if (id == NULL)
        return -1;
    for (size_t i = 0; i < core->cfg.n_users; i++)
        if (strcmp(core->cfg.users[i].id, id) == 0)
            return (int)i;
    return -1;
}

/* ----------------------------------------------------------------- helpers */

bool core__is_police(Mhtas__V1__Role r)
{
    return r == ROLE(OPERATOR) || r == ROLE(DISPATCHER) || r == ROLE(SUPERVISOR);
}

bool core__is_open(Mhtas__V1__IncidentState s)
{
    return s != ST(CLOSED) && s != ST(CANCELLED);
}

bool core__is_held(Mhtas__V1__IncidentState s)
{
    return s == ST(ACCEPTED) || s == ST(ADVISING) || s == ST(OUTCOME_PROPOSED);
}

const char *core__state_name(Mhtas__V1__IncidentState s)
{
    static const char *const names[] = { "unspecified", "new", "queued", "offered", "accepted", "advising",
                                         "outcome proposed", "closed", "cancelled", "escalated",
                                         "transferred" };
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

incident_t *core__incident(core_t *c, uint64_t id)
{
    return id >= 1 && id <= c->n_all ? c->all[id - 1] : NULL;
}

/* A capacity of 0 in configuration is read as 1: a practitioner who can
 * never be offered anything is better expressed by not rostering them. */
uint32_t core__capacity(const core_t *c, int p)
{
    uint32_t cap = c->cfg.users[p].capacity;
    return cap ? cap : 1;
}

uint32_t core__active(const core_t *c, int p)
{
    return c->pr[p].n_held + c->pr[p].n_offers;
}

uint32_t core__on_shift_connected(const core_t *c)
{
    uint32_t n = 0;
    for (size_t u = 0; u < c->cfg.n_users; u++)
        if (c->pr[u].on_shift && c->pr[u].connected)
            n++;
    return n;
}

int64_t core__avg_wait(const core_t *c)
{
    if (c->n_waits == 0)
        return CORE_DEFAULT_WAIT_MS;
    int64_t sum = 0;
    for (size_t i = 0; i < c->n_waits; i++)
        sum += c->waits[i];
    return sum / (int64_t)c->n_waits;
}

bool core__bit(const uint64_t *set, int i)
{
    return (set[i / 64] >> (i % 64)) & 1;
}

void core__set_bit(uint64_t *set, int i)
{
    set[i / 64] |= 1ULL << (i % 64);
}

/* ------------------------------------------------------------------ events */

void core__aud_add(core_audience_t *aud, int user)
{
    if (user < 0)
        return;
    for (int i = 0; i < aud->n_users; i++)
        if (aud->users[i] == user)
            return;
    if (aud->n_users < CORE_AUDIENCE_MAX_USERS)
        aud->users[aud->n_users++] = user;
}

/* Police see every incident; of the practitioners, only its holder (or last
 * holder, so that their client sees it close) and those offered it. */
void core__aud_incident(const core_t *c, const incident_t *inc, core_audience_t *aud)
{
    (void)c;
    memset(aud, 0, sizeof(*aud));
    aud->police = true;
    aud->supervisors = true;
    core__aud_add(aud, inc->holder);
    for (int i = 0; i < inc->n_offerees; i++)
        core__aud_add(aud, inc->offerees[i]);
}

void core__emit(core_t *c, int64_t now, Mhtas__V1__Event *ev, const core_audience_t *aud, uint64_t seq)
{
    if (ev == NULL) {
        /* The change itself is made; only its announcement is lost. The
         * clients recover by reloading, as after any gap. */
        c->lost_events++;
        return;
    }
    ev->seq = seq ? seq : ++c->last_seq;
    ev->at_ms = now;
    /* A chat message changes nothing on the board (queue, offers, breaches,
     * practitioners' states and holdings): rebuilding, packing and holding
     * a whole board after each one doubled the events per message. A
     * message that changes a state (the first advice) comes with its own
     * incident event, which does mark the board. */
    if (ev->kind_case != MHTAS__V1__EVENT__KIND_BOARD && ev->kind_case != MHTAS__V1__EVENT__KIND_MESSAGE)
        c->board_dirty = true;
    if (c->emit)
        c->emit(c->emit_ctx, ev, aud);
    core__pb_free(ev);
}

void core__notice(core_t *c, int64_t now, Mhtas__V1__NoticeKind kind, uint64_t incident_id, const char *text,
                  const core_audience_t *aud)
{
    Mhtas__V1__Event *ev = core__ev_new();
    Mhtas__V1__Notice *n = NULL;
    if (ev) {
        n = hub_malloc(sizeof(*n));
        if (n) {
            mhtas__v1__notice__init(n);
            ev->kind_case = MHTAS__V1__EVENT__KIND_NOTICE;
            ev->notice = n;
            n->kind = kind;
            n->incident_id = incident_id;
        }
    }
    if (ev && (n == NULL || core__set_str(&n->text, text))) {
        core__pb_free(ev);
        ev = NULL;
    }
    core__emit(c, now, ev, aud, 0);
}

/* -------------------------------------------------------------- transitions
 *
 * A transition is made in two steps so that running out of memory leaves
 * nothing half-done: tr_prepare() makes every allocation the record needs
 * (a history slot, the reason) and may fail; the caller then changes
 * holders and offerees; tr_commit() changes the state, appends the record
 * and announces it, and cannot fail (only the announcement can be lost).
 */

int core__tr_prepare(core_t *c, incident_t *inc, const char *reason, tr_prep_t *prep)
{
    prep->reason = NULL;
    if (inc->n_hist == inc->cap_hist) {
        size_t cap = inc->cap_hist ? inc->cap_hist * 2 : 8;
        trans_t *h = hub_realloc(inc->hist, cap * sizeof(*h));
        if (h == NULL)
            return core__fail(c, CORE_E_NOMEM, "out of memory");
        inc->hist = h;
        inc->cap_hist = cap;
    }
    if (reason && reason[0] && (prep->reason = hub_strdup(reason)) == NULL)
        return core__fail(c, CORE_E_NOMEM, "out of memory");
    return CORE_OK;
}

void core__tr_abort(tr_prep_t *prep)
{
    hub_free(prep->reason);
    prep->reason = NULL;
}

void core__tr_commit(core_t *c, incident_t *inc, int64_t now, tr_prep_t *prep, Mhtas__V1__IncidentState to,
                     Mhtas__V1__Cause cause, int actor, int practitioner, const core_audience_t *extra)
{
    trans_t *t = &inc->hist[inc->n_hist++];
    t->seq = ++c->last_seq;
    t->at = now;
    t->from = inc->state;
    t->to = to;
    t->cause = cause;
    t->actor = actor;
    t->practitioner = practitioner;
    t->reason = prep->reason;
    prep->reason = NULL;
    inc->state = to;
    inc->updated_at = now;

    core_audience_t aud;
    core__aud_incident(c, inc, &aud);
    core__aud_add(&aud, practitioner);
    if (extra)
        for (int i = 0; i < extra->n_users; i++)
            core__aud_add(&aud, extra->users[i]);

    Mhtas__V1__Event *ev = core__ev_new();
    Mhtas__V1__IncidentUpdate *up = NULL;
    if (ev && (up = hub_malloc(sizeof(*up))) != NULL) {
        mhtas__v1__incident_update__init(up);
        ev->kind_case = MHTAS__V1__EVENT__KIND_INCIDENT;
        ev->incident = up;
        up->incident = core__snap_incident(c, inc, now, false);
        /* The snapshot already ends with this transition; the copy in
         * `transition` saves every client a search. */
        if (up->incident && up->incident->n_history)
            up->transition = core__pb_clone(&up->incident->history[up->incident->n_history - 1]->base);
    }
    if (ev && (up == NULL || up->incident == NULL || up->transition == NULL)) {
        core__pb_free(ev);
        ev = NULL;
    }
    core__emit(c, now, ev, &aud, t->seq);
}

/* ---------------------------------------------------- holders and offerees */

bool core__is_offeree(const incident_t *inc, int p)
{
    for (int i = 0; i < inc->n_offerees; i++)
        if (inc->offerees[i] == p)
            return true;
    return false;
}

void core__offer_add(core_t *c, incident_t *inc, int p)
{
    inc->offerees[inc->n_offerees++] = p;
    c->pr[p].n_offers++;
    c->offers_total++;
}

bool core__offer_remove(core_t *c, incident_t *inc, int p)
{
    for (int i = 0; i < inc->n_offerees; i++)
        if (inc->offerees[i] == p) {
            memmove(&inc->offerees[i], &inc->offerees[i + 1], (size_t)(inc->n_offerees - i - 1) * sizeof(int));
            inc->n_offerees--;
            c->pr[p].n_offers--;
            return true;
        }
    return false;
}

void core__offers_clear(core_t *c, incident_t *inc)
{
    for (int i = 0; i < inc->n_offerees; i++)
        c->pr[inc->offerees[i]].n_offers--;
    inc->n_offerees = 0;
}

/* p holds inc from now on; the caller commits the state change to a held
 * state right after. */
void core__hold(core_t *c, incident_t *inc, int p)
{
    inc->holder = p;
    c->pr[p].n_held++;
    core__set_bit(inc->held, p);
}

/* The holder lets go (re-queued, cancelled). */
void core__release(core_t *c, incident_t *inc, int64_t now)
{
    if (inc->holder >= 0 && core__is_held(inc->state)) {
        pract_t *pr = &c->pr[inc->holder];
        pr->n_held--;
        pr->last_end = now;
        if (pr->n_held == 0)
            pr->grace_until = 0;
    }
    inc->holder = -1;
}

/* ------------------------------------------------------------------- queue */

static bool queue_before(const incident_t *a, const incident_t *b)
{
    if (a->details->priority != b->details->priority)
        return a->details->priority < b->details->priority;
    if (a->raised_at != b->raised_at)
        return a->raised_at < b->raised_at;
    return a->id < b->id;
}

static void queue_renumber(core_t *c, size_t from)
{
    for (size_t i = from; i < c->n_queue; i++)
        c->queue[i]->qpos = (uint32_t)(i + 1);
}

/* Never allocates: the capacity was reserved when the incident was raised.
 * An incident goes back to the place its priority and raise time give it,
 * which is what "keeping its position" means after a decline or time-out. */
void core__queue_insert(core_t *c, incident_t *inc)
{
    if (inc->qpos)
        return;
    size_t i = c->n_queue;
    while (i > 0 && queue_before(inc, c->queue[i - 1]))
        i--;
    memmove(&c->queue[i + 1], &c->queue[i], (c->n_queue - i) * sizeof(*c->queue));
    c->queue[i] = inc;
    c->n_queue++;
    queue_renumber(c, i);
}

void core__queue_remove(core_t *c, incident_t *inc)
{
    if (inc->qpos == 0)
        return;
    size_t i = inc->qpos - 1;
    memmove(&c->queue[i], &c->queue[i + 1], (c->n_queue - i - 1) * sizeof(*c->queue));
    c->n_queue--;
    inc->qpos = 0;
    queue_renumber(c, i);
}

void core__open_remove(core_t *c, incident_t *inc)
{
    for (size_t i = 0; i < c->n_open; i++)
        if (c->open[i] == inc) {
            c->open[i] = c->open[--c->n_open];
            return;
        }
}

/* ---------------------------------------------------------------- lifetime */

core_t *core_new(const core_config_t *cfg, core_emit_cb emit, void *emit_ctx, uint64_t first_seq)
{
    core_t *c = hub_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->cfg = *cfg;
    c->emit = emit;
    c->emit_ctx = emit_ctx;
    c->last_seq = first_seq ? first_seq - 1 : 0;
    c->rr_last = -1;
    c->rng = cfg->rng_seed ? cfg->rng_seed : 0x9E3779B97F4A7C15ULL;
    c->bitset_words = (cfg->n_users + 63) / 64;
    if (c->bitset_words == 0)
        c->bitset_words = 1;
    if (cfg->n_users && ((c->pr = hub_calloc(cfg->n_users, sizeof(*c->pr))) == NULL ||
                         (c->cand = hub_calloc(2 * cfg->n_users, sizeof(int))) == NULL)) {
        hub_free(c->pr);
        hub_free(c);
        return NULL;
    }
    /* Everybody starts off shift, and nobody needs telling so. */
    for (size_t u = 0; u < cfg->n_users; u++) {
        c->pr[u].sent = true;
        c->pr[u].sent_state = PST(OFF_SHIFT);
    }
    return c;
}

void core__incident_free(incident_t *inc)
{
    core__pb_free(inc->details);
    core__pb_free(inc->outcome);
    for (size_t i = 0; i < inc->n_hist; i++)
        hub_free(inc->hist[i].reason);
    hub_free(inc->hist);
    for (size_t i = 0; i < inc->n_msgs; i++) {
        hub_free(inc->msgs[i].text);
        hub_free(inc->msgs[i].client_id);
    }
    hub_free(inc->msgs);
    hub_free(inc->cid_slots);
    hub_free(inc->refused);
    hub_free(inc->raise_key);
    hub_free(inc->close_key);
    hub_free(inc->cancel_key);
    hub_free(inc->cancel_reason);
    hub_free(inc->person_key);
    hub_free(inc);
}

void core_free(core_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_all; i++)
        core__incident_free(c->all[i]);
    hub_free(c->all);
    hub_free(c->open);
    hub_free(c->queue);
    for (size_t u = 0; u < c->cfg.n_users; u++)
        hub_free(c->pr[u].pause_reason);
    hub_free(c->pr);
    hub_free(c->cand);
    hub_free(c);
}

/* ------------------------------------------------------------- the finish */

static void announce_queue(core_t *c, int64_t now)
{
    for (size_t i = 0; i < c->n_queue; i++) {
        incident_t *inc = c->queue[i];
        if (inc->qpos == inc->qpos_sent)
            continue;
        inc->qpos_sent = inc->qpos;
        Mhtas__V1__Event *ev = core__ev_new();
        Mhtas__V1__QueueStatus *q = ev ? hub_malloc(sizeof(*q)) : NULL;
        if (q) {
            mhtas__v1__queue_status__init(q);
            ev->kind_case = MHTAS__V1__EVENT__KIND_QUEUE;
            ev->queue = q;
            uint32_t n = core__on_shift_connected(c);
            q->incident_id = inc->id;
            q->position = inc->qpos;
            q->expected_wait_ms = (int64_t)inc->qpos * core__avg_wait(c) / (n ? n : 1);
        } else {
            core__pb_free(ev);
            ev = NULL;
        }
        core_audience_t aud;
        core__aud_incident(c, inc, &aud);
        core__emit(c, now, ev, &aud, 0);
    }
}

void core__finish(core_t *c, int64_t now)
{
    core__route(c, now);
    announce_queue(c, now);
    core__sync_status(c, now);
}

void core_flush_board(core_t *c, int64_t now)
{
    if (!c->board_dirty)
        return;
    c->board_dirty = false;
    Mhtas__V1__Event *ev = core__ev_new();
    if (ev) {
        ev->board = core__snap_board(c, now);
        if (ev->board == NULL) {
            core__pb_free(ev);
            ev = NULL;
            c->board_dirty = true; /* try again next turn */
        } else {
            ev->kind_case = MHTAS__V1__EVENT__KIND_BOARD;
        }
    }
    core_audience_t aud = { .police = false, .supervisors = true };
    core__emit(c, now, ev, &aud, 0);
}

/* ------------------------------------------------------------------- stats */

void core_get_stats(const core_t *c, int64_t now, core_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < c->n_all; i++) {
        unsigned s = (unsigned)c->all[i]->state;
        if (s < 11)
            out->incidents_by_state[s]++;
    }
    for (size_t u = 0; u < c->cfg.n_users; u++)
        if (c->cfg.users[u].role == ROLE(PRACTITIONER)) {
            unsigned s = (unsigned)core__pstate(c, (int)u, now);
            if (s < 7)
                out->practitioners_by_state[s]++;
            out->offers_outstanding += c->pr[u].n_offers;
        }
    out->queue_depth = (uint32_t)c->n_queue;
    out->raised_total = c->raised_total;
    out->closed_total = c->closed_total;
    out->cancelled_total = c->cancelled_total;
    out->offers_total = c->offers_total;
    out->offer_timeouts_total = c->offer_timeouts_total;
}

/* ------------------------------------------------------------------- check */

int core__check(const core_t *c)
{
    for (size_t u = 0; u < c->cfg.n_users; u++) {
        uint32_t offers = 0, held = 0;
        for (size_t i = 0; i < c->n_all; i++) {
            const incident_t *inc = c->all[i];
            if (core__is_offeree(inc, (int)u))
                offers++;
            if (inc->holder == (int)u && core__is_held(inc->state))
                held++;
        }
        if (offers != c->pr[u].n_offers)
            return 1;
        if (held != c->pr[u].n_held)
            return 2;
    }
    size_t open = 0, queued = 0;
    for (size_t i = 0; i < c->n_all; i++) {
        const incident_t *inc = c->all[i];
        if (inc->id != i + 1)
            return 3;
        if (core__is_open(inc->state))
            open++;
        bool in_queue = inc->state == ST(QUEUED) || inc->state == ST(OFFERED);
        if (in_queue) {
            queued++;
            if (inc->qpos == 0 || inc->qpos > c->n_queue || c->queue[inc->qpos - 1] != inc)
                return 4;
        } else if (inc->qpos) {
            return 5;
        }
        if ((inc->state == ST(OFFERED)) != (inc->n_offerees > 0))
            return 6;
        if (core__is_held(inc->state) && inc->holder < 0)
            return 7;
        if (!core__is_open(inc->state) && inc->n_offerees)
            return 8;
    }
    if (open != c->n_open || queued != c->n_queue || c->cap_queue < c->n_open || c->cap_open < c->n_open)
        return 9;
    for (size_t i = 1; i < c->n_queue; i++)
        if (!queue_before(c->queue[i - 1], c->queue[i]))
            return 10;
    return 0;
}
