/* router.c -- who gets offered what, and the timers that drive it.
 *
 * Routing is a pass over the queue in order (priority, then the longest
 * wait), offering each QUEUED incident to a practitioner chosen by the
 * configured strategy among those eligible for it right now. It runs after
 * every change and every tick, so it never needs to remember why it could
 * not place an incident before: it simply asks again. Offers made earlier in
 * the pass count against a practitioner's capacity later in the same pass,
 * which is why the queue order decides who gets the scarce practitioner.
 *
 * Eligibility widens with the wait (stage 0: the incident's borough or the
 * practitioner's provider; stage 1: neighbouring boroughs; stage 2: anyone
 * on shift, skills no longer required), computed from the raise time, so an
 * incident keeps its place in the queue while it widens.
 */
#include <stdio.h>
#include <string.h>

#include "core/core_internal.h"

Mhtas__V1__PractitionerState core__pstate(const core_t *c, int p, int64_t now)
{
    const pract_t *pr = &c->pr[p];
    if (!pr->on_shift)
        return PST(OFF_SHIFT);
    if (!pr->connected)
        return PST(DISCONNECTED);
    if (pr->paused)
        return PST(PAUSED);
    if (pr->wrap_until > now)
        return PST(WRAP_UP);
    if (core__active(c, p) >= core__capacity(c, p))
        return PST(BUSY);
    return PST(AVAILABLE);
}

int core__stage(const core_t *c, const incident_t *inc, int64_t now)
{
    int64_t waited = now - inc->raised_at;
    if (c->cfg.widen_anyone_ms > 0 && waited >= c->cfg.widen_anyone_ms)
        return 2;
    if (c->cfg.widen_neighbour_ms > 0 && waited >= c->cfg.widen_neighbour_ms)
        return 1;
    return 0;
}

static bool covers(const core_t *c, const core_user_t *u, int b)
{
    if (u->boroughs)
        return (u->boroughs >> b) & 1;
    return c->cfg.boroughs[b].provider == u->provider;
}

bool core__eligible(const core_t *c, int p, const incident_t *inc, int64_t now)
{
    const core_user_t *u = &c->cfg.users[p];
    const pract_t *pr = &c->pr[p];
    if (u->role != ROLE(PRACTITIONER) || !pr->on_shift || !pr->connected || pr->paused || pr->wrap_until > now)
        return false;
    if (core__active(c, p) >= core__capacity(c, p) || core__is_offeree(inc, p))
        return false;
    int stage = core__stage(c, inc, now);
    if (stage >= 2)
        return true;
    if ((u->skills & inc->needs) != inc->needs)
        return false;
    if (covers(c, u, inc->borough))
        return true;
    if (stage == 1) {
        uint64_t nb = c->cfg.boroughs[inc->borough].neighbours;
        for (int b = 0; b < (int)c->cfg.n_boroughs && b < 64; b++)
            if (((nb >> b) & 1) && covers(c, u, b))
                return true;
    }
    return false;
}

static uint64_t xorshift64s(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* One practitioner out of the candidates (in user index order) by the
 * configured strategy; ties go to the lowest index because candidates are
 * scanned in that order and only a strictly better one replaces the best. */
static int pick(core_t *c, const int *cand, int n)
{
    int best = cand[0];
    switch (c->cfg.strategy) {
    case CORE_STRATEGY_LEASTRECENT:
        for (int i = 1; i < n; i++)
            if (c->pr[cand[i]].last_end < c->pr[best].last_end)
                best = cand[i];
        return best;
    case CORE_STRATEGY_FEWESTCALLS:
        for (int i = 1; i < n; i++)
            if (c->pr[cand[i]].accepts < c->pr[best].accepts)
                best = cand[i];
        return best;
    case CORE_STRATEGY_RRMEMORY:
        for (int i = 0; i < n; i++)
            if (cand[i] > c->rr_last)
                return cand[i];
        return cand[0];
    case CORE_STRATEGY_RANDOM:
        return cand[xorshift64s(&c->rng) % (uint64_t)n];
    case CORE_STRATEGY_LINEAR:
    case CORE_STRATEGY_RINGALL:
    default:
        return best;
    }
}

/* Offers inc to ps[0..n): the OFFERED transition to police and them, then
 * each their Offer. Capacity and eligibility are the caller's business. */
int core__offer(core_t *c, incident_t *inc, int64_t now, const int *ps, int n, Mhtas__V1__Cause cause,
                int actor, const char *reason)
{
    tr_prep_t prep;
    int rc = core__tr_prepare(c, inc, reason, &prep);
    if (rc)
        return rc;
    core_audience_t prev = { 0 };
    core__aud_add(&prev, inc->holder);
    for (int i = 0; i < inc->n_offerees; i++)
        core__aud_add(&prev, inc->offerees[i]);
    core__release(c, inc, now);
    core__offers_clear(c, inc);
    for (int i = 0; i < n && i < CORE_MAX_OFFEREES; i++)
        core__offer_add(c, inc, ps[i]);
    inc->offer_deadline = now + c->cfg.offer_timeout_ms;
    c->rr_last = ps[0];
    core__queue_insert(c, inc);
    core__tr_commit(c, inc, now, &prep, ST(OFFERED), cause, actor, ps[0], &prev);
    for (int i = 0; i < inc->n_offerees; i++) {
        Mhtas__V1__Event *ev = core__ev_new();
        Mhtas__V1__Offer *o = ev ? hub_malloc(sizeof(*o)) : NULL;
        if (o) {
            mhtas__v1__offer__init(o);
            ev->kind_case = MHTAS__V1__EVENT__KIND_OFFER;
            ev->offer = o;
            o->deadline_ms = inc->offer_deadline;
            o->incident = core__snap_incident(c, inc, now, false);
        }
        if (ev && (o == NULL || o->incident == NULL)) {
            core__pb_free(ev);
            ev = NULL;
        }
        /* Only the one offered: police follow the IncidentUpdate. */
        core_audience_t aud = { 0 };
        core__aud_add(&aud, inc->offerees[i]);
        core__emit(c, now, ev, &aud, 0);
    }
    return CORE_OK;
}

int core__offeree_leave(core_t *c, incident_t *inc, int64_t now, int p, Mhtas__V1__Cause cause, int actor,
                        const char *reason)
{
    tr_prep_t prep;
    int rc = core__tr_prepare(c, inc, reason, &prep);
    if (rc)
        return rc;
    core__offer_remove(c, inc, p);
    /* With ringall, the others are still offered it: the record still
     * shows who left and why, as an OFFERED to OFFERED transition. */
    Mhtas__V1__IncidentState to = inc->n_offerees ? ST(OFFERED) : ST(QUEUED);
    core__tr_commit(c, inc, now, &prep, to, cause, actor, p, NULL);
    return CORE_OK;
}

/* Every offer p holds goes back: they paused, ended their shift or
 * disconnected. Not a missed offer. */
void core__withdraw_offers_of(core_t *c, int p, int64_t now)
{
    for (size_t i = 0; i < c->n_queue && c->pr[p].n_offers; i++) {
        incident_t *inc = c->queue[i];
        if (core__is_offeree(inc, p))
            core__offeree_leave(c, inc, now, p, CAUSE(OFFER_WITHDRAWN), CORE_ACTOR_HUB, NULL);
    }
}

void core__maybe_auto_pause(core_t *c, int p, int64_t now)
{
    pract_t *pr = &c->pr[p];
    if (c->cfg.auto_pause_after == 0 || pr->missed < c->cfg.auto_pause_after || pr->paused)
        return;
    char text[96];
    snprintf(text, sizeof(text), "auto-paused after %u missed offers", pr->missed);
    char *reason = hub_strdup(text);
    if (reason == NULL)
        return; /* tried again at the next time-out */
    hub_free(pr->pause_reason);
    pr->pause_reason = reason;
    pr->paused = true;
    core__withdraw_offers_of(c, p, now);
    core_audience_t aud = { .supervisors = true };
    core__aud_add(&aud, p);
    snprintf(text, sizeof(text), "%s was auto-paused after %u missed offers", c->cfg.users[p].id, pr->missed);
    core__notice(c, now, NOTICE(AUTO_PAUSED), 0, text, &aud);
}

/* --------------------------------------------------------------- routing */

static void route_one(core_t *c, incident_t *inc, int64_t now, int *cand, int *fresh)
{
    int n = 0, nf = 0;
    for (size_t u = 0; u < c->cfg.n_users; u++)
        if (core__eligible(c, (int)u, inc, now)) {
            cand[n++] = (int)u;
            if (!core__bit(inc->refused, (int)u))
                fresh[nf++] = (int)u;
        }
    if (n == 0) {
        if (!inc->nobody_sent && core__on_shift_connected(c) == 0) {
            inc->nobody_sent = true;
            char text[128];
            snprintf(text, sizeof(text),
                     "No practitioner is on shift: incident %llu is queued and supervisors are alerted",
                     (unsigned long long)inc->id);
            core_audience_t aud = { .police = true, .supervisors = true };
            core__notice(c, now, NOTICE(NOBODY_ON_SHIFT), inc->id, text, &aud);
        }
        return;
    }
    /* Whoever declined or let it time out is asked again only when nobody
     * else can take it. */
    const int *set = nf ? fresh : cand;
    int ns = nf ? nf : n;
    if (c->cfg.strategy == CORE_STRATEGY_RINGALL) {
        core__offer(c, inc, now, set, ns < CORE_MAX_OFFEREES ? ns : CORE_MAX_OFFEREES, CAUSE(OFFERED),
                    CORE_ACTOR_HUB, NULL);
        return;
    }
    int chosen = -1;
    if (inc->pref >= 0)
        for (int i = 0; i < ns; i++)
            if (set[i] == inc->pref)
                chosen = inc->pref;
    if (chosen < 0)
        chosen = pick(c, set, ns);
    core__offer(c, inc, now, &chosen, 1, CAUSE(OFFERED), CORE_ACTOR_HUB, NULL);
}

void core__route(core_t *c, int64_t now)
{
    if (c->n_queue == 0 || c->cfg.n_users == 0)
        return;
    int *cand = c->cand;
    /* Offering does not reorder the queue (an OFFERED incident keeps its
     * place), so walking it by index is safe. */
    for (size_t i = 0; i < c->n_queue; i++)
        if (c->queue[i]->state == ST(QUEUED))
            route_one(c, c->queue[i], now, cand, cand + c->cfg.n_users);
}

/* ----------------------------------------------------------- statuses */

void core__sync_status(core_t *c, int64_t now)
{
    for (size_t u = 0; u < c->cfg.n_users; u++) {
        if (c->cfg.users[u].role != ROLE(PRACTITIONER))
            continue;
        pract_t *pr = &c->pr[u];
        Mhtas__V1__PractitionerState st = core__pstate(c, (int)u, now);
        uint32_t active = core__active(c, (int)u);
        if (pr->sent && pr->sent_state == st && pr->sent_active == active && pr->sent_missed == pr->missed &&
            pr->sent_held == pr->n_held && pr->sent_connected == pr->connected && pr->sent_paused == pr->paused)
            continue;
        Mhtas__V1__Event *ev = core__ev_new();
        if (ev && (ev->status = core__snap_status(c, (int)u, now)) != NULL) {
            ev->kind_case = MHTAS__V1__EVENT__KIND_STATUS;
        } else {
            core__pb_free(ev);
            ev = NULL;
        }
        if (ev == NULL)
            continue; /* unchanged "sent" state: retried next time */
        pr->sent = true;
        pr->sent_state = st;
        pr->sent_active = active;
        pr->sent_missed = pr->missed;
        pr->sent_held = pr->n_held;
        pr->sent_connected = pr->connected;
        pr->sent_paused = pr->paused;
        core_audience_t aud = { .supervisors = true };
        core__aud_add(&aud, (int)u);
        core__emit(c, now, ev, &aud, 0);
    }
}

/* ----------------------------------------------------------------- timers */

static void expire_offer(core_t *c, incident_t *inc, int64_t now)
{
    tr_prep_t prep;
    if (core__tr_prepare(c, inc, NULL, &prep))
        return; /* the deadline stays due: retried at the next tick */
    int missed[CORE_MAX_OFFEREES];
    int n = inc->n_offerees;
    memcpy(missed, inc->offerees, (size_t)n * sizeof(int));
    core_audience_t prev = { 0 };
    for (int i = 0; i < n; i++) {
        core__aud_add(&prev, missed[i]);
        core__set_bit(inc->refused, missed[i]);
        c->pr[missed[i]].missed++;
    }
    core__offers_clear(c, inc);
    c->offer_timeouts_total++;
    core__tr_commit(c, inc, now, &prep, ST(QUEUED), CAUSE(OFFER_TIMEOUT), CORE_ACTOR_HUB, missed[0], &prev);
    for (int i = 0; i < n; i++)
        core__maybe_auto_pause(c, missed[i], now);
}

static void expire_grace(core_t *c, int p, int64_t now)
{
    for (size_t i = 0; i < c->n_open && c->pr[p].n_held; i++) {
        incident_t *inc = c->open[i];
        if (inc->holder != p || !core__is_held(inc->state))
            continue;
        tr_prep_t prep;
        if (core__tr_prepare(c, inc, NULL, &prep))
            return;
        core__release(c, inc, now);
        core__queue_insert(c, inc);
        core_audience_t prev = { 0 };
        core__aud_add(&prev, p);
        core__tr_commit(c, inc, now, &prep, ST(QUEUED), CAUSE(GRACE_EXPIRED), CORE_ACTOR_HUB, p, &prev);
        char text[160];
        snprintf(text, sizeof(text),
                 "The practitioner holding incident %llu did not reconnect in time: it is back in the queue",
                 (unsigned long long)inc->id);
        core_audience_t aud = { .police = true, .supervisors = true };
        core__notice(c, now, NOTICE(HOLDER_DISCONNECTED), inc->id, text, &aud);
    }
    c->pr[p].grace_until = 0;
}

static void check_sla(core_t *c, incident_t *inc, int64_t now)
{
    if (inc->first_accepted_at || !core__is_open(inc->state))
        return;
    core_audience_t aud = { .police = true, .supervisors = true };
    char text[160];
    int pri = inc->details->priority;
    if (inc->sla_deadline && !inc->sla_breached && now >= inc->sla_deadline) {
        inc->sla_breached = true;
        inc->sla_warned = true;
        snprintf(text, sizeof(text), "Incident %llu (priority %d) breached its service level: not accepted within %lld s",
                 (unsigned long long)inc->id, pri, (long long)(c->cfg.sla_ms[pri] / 1000));
        core__notice(c, now, NOTICE(SLA_BREACHED), inc->id, text, &aud);
    } else if (inc->sla_warn_at && !inc->sla_warned && now >= inc->sla_warn_at) {
        inc->sla_warned = true;
        snprintf(text, sizeof(text), "Incident %llu (priority %d) has used %u%% of its service level without being accepted",
                 (unsigned long long)inc->id, pri, c->cfg.sla_warn_percent);
        core__notice(c, now, NOTICE(SLA_WARNING), inc->id, text, &aud);
    }
}

void core_tick(core_t *c, int64_t now)
{
    core__ok(c);
    for (size_t i = 0; i < c->n_queue; i++) {
        incident_t *inc = c->queue[i];
        if (inc->state == ST(OFFERED) && inc->offer_deadline <= now)
            expire_offer(c, inc, now);
    }
    for (size_t u = 0; u < c->cfg.n_users; u++) {
        pract_t *pr = &c->pr[u];
        if (pr->grace_until && pr->grace_until <= now)
            expire_grace(c, (int)u, now);
        if (pr->wrap_until && pr->wrap_until <= now)
            pr->wrap_until = 0;
    }
    for (size_t i = 0; i < c->n_open; i++)
        check_sla(c, c->open[i], now);
    for (size_t i = 0; i < c->n_queue; i++)
        c->queue[i]->stage = core__stage(c, c->queue[i], now);
    core__finish(c, now);
}

static void earliest(int64_t *best, int64_t t)
{
    if (t > 0 && t < *best)
        *best = t;
}

int64_t core_next_deadline(const core_t *c)
{
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < c->n_queue; i++) {
        const incident_t *inc = c->queue[i];
        if (inc->state == ST(OFFERED))
            earliest(&best, inc->offer_deadline);
        if (inc->stage < 1 && c->cfg.widen_neighbour_ms > 0)
            earliest(&best, inc->raised_at + c->cfg.widen_neighbour_ms);
        if (inc->stage < 2 && c->cfg.widen_anyone_ms > 0)
            earliest(&best, inc->raised_at + c->cfg.widen_anyone_ms);
    }
    for (size_t i = 0; i < c->n_open; i++) {
        const incident_t *inc = c->open[i];
        if (inc->first_accepted_at)
            continue;
        if (!inc->sla_warned)
            earliest(&best, inc->sla_warn_at);
        if (!inc->sla_breached)
            earliest(&best, inc->sla_deadline);
    }
    for (size_t u = 0; u < c->cfg.n_users; u++) {
        earliest(&best, c->pr[u].wrap_until);
        earliest(&best, c->pr[u].grace_until);
    }
    return best;
}

/* -------------------------------------------------------------- presence */

void core_set_connected(core_t *c, int64_t now, int user, bool connected)
{
    core__ok(c);
    if (user < 0 || (size_t)user >= c->cfg.n_users || c->cfg.users[user].role != ROLE(PRACTITIONER))
        return;
    pract_t *pr = &c->pr[user];
    if (pr->connected == connected)
        return;
    pr->connected = connected;
    if (connected) {
        /* Back within the grace time: they keep what they hold. */
        pr->grace_until = 0;
    } else {
        core__withdraw_offers_of(c, user, now);
        if (pr->n_held) {
            pr->grace_until = now + (c->cfg.disconnect_grace_ms > 0 ? c->cfg.disconnect_grace_ms : 0);
            for (size_t i = 0; i < c->n_open; i++) {
                const incident_t *inc = c->open[i];
                if (inc->holder != user || !core__is_held(inc->state))
                    continue;
                char text[200];
                snprintf(text, sizeof(text),
                         "The practitioner holding incident %llu disconnected: it returns to the queue "
                         "unless they reconnect within %lld s",
                         (unsigned long long)inc->id, (long long)(c->cfg.disconnect_grace_ms / 1000));
                core_audience_t aud = { .police = true, .supervisors = true };
                core__notice(c, now, NOTICE(HOLDER_DISCONNECTED), inc->id, text, &aud);
            }
            if (c->cfg.disconnect_grace_ms <= 0)
                expire_grace(c, user, now);
        }
    }
    core__finish(c, now);
}
