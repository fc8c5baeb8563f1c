/* recovery.c -- rebuilding the core from its journal, and the snapshot that
 * keeps the journal short.
 *
 * The journal is the events the core emitted. Most of them carry the whole
 * state they change: an IncidentUpdate carries the incident's snapshot with
 * its full history (not its messages), a ChatMessage one message, a
 * PractitionerStatus a practitioner's shift state. So restoring is mostly
 * "upsert what the event says", and a JournalSnapshot is the same thing for
 * every incident and practitioner at once. What the messages do not carry is
 * derived from what they do:
 *   - the holder and offeree from the state and `practitioner`; the idempotency
 *     keys from the RAISED / CANCELLED / OUTCOME_AGREED transitions; the first
 *     accept, who ever held it, who declined or let it time out, from the
 *     history;
 *   - a practitioner's wrap-up end, last incident end and accepts this shift
 *     from the transitions of the incidents they held, walked as they arrive
 *     (each event's new transitions only, so replay stays linear);
 *   - counters, recent waits, the round-robin position and the preferred
 *     practitioner of queued incidents once, at the end (core_restore_finish).
 * What is not in the journal at all is accepted as lost: the random
 * generator restarts from its seed; with ringall only the first offeree of an
 * outstanding offer is known (every offer is withdrawn at the end anyway);
 * an OFFER_TIMEOUT under ringall records only its first offeree as refused.
 *
 * Every incident is rebuilt as a fresh incident_t before the old one (if
 * any) is swapped out, so a failure (out of memory, a journal naming an
 * unknown user or borough) leaves the core consistent; the shell then
 * refuses to start, since a hub that forgot part of its journal must not
 * pretend otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "core/core_internal.h"

#define RESTART_REASON "hub restarted"

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int nomem(core_t *c)
{
    return core__fail(c, CORE_E_NOMEM, "out of memory");
}

static bool reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (*cap >= need)
        return true;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = hub_realloc(*arr, n * elem);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = n;
    return true;
}

static void note_seq(core_t *c, uint64_t seq)
{
    if (seq > c->last_seq)
        c->last_seq = seq;
}

static void note_at(core_t *c, int64_t at)
{
    if (at > c->restore_at)
        c->restore_at = at;
}

static int check_restoring(core_t *c)
{
    core__ok(c);
    if (c->restore_done)
        return core__fail(c, CORE_E_STATE, "recovery is over: the core is live");
    return CORE_OK;
}

/* A user named by the journal. Empty: -1. "hub" (when allowed): the hub. A
 * user the configuration no longer has is an error: history is an audit
 * record, and rewriting who did what is not the restore's to decide. */
static int journal_user(core_t *c, const char *id, bool hub_ok, int *out)
{
    *out = -1;
    if (!set(id))
        return CORE_OK;
    if (hub_ok && strcmp(id, "hub") == 0) {
        *out = CORE_ACTOR_HUB;
        return CORE_OK;
    }
    int u = core_user_index(c, id);
    if (u < 0)
        return core__fail(c, CORE_E_INVALID, "the journal names user %s, who is not configured", id);
    *out = u;
    return CORE_OK;
}

static int journal_practitioner(core_t *c, const char *id, uint64_t inc_id, int *out)
{
    int rc = journal_user(c, id, false, out);
    if (rc == CORE_OK && *out >= 0 && c->cfg.users[*out].role != ROLE(PRACTITIONER))
        rc = core__fail(c, CORE_E_INVALID, "the journal names %s as the practitioner of incident %llu", id,
                        (unsigned long long)inc_id);
    return rc;
}

/* ---------------------------------------------------------------- messages */

/* Appends a message unless its number is already there (a duplicate). */
static int append_msg(core_t *c, incident_t *inc, const Mhtas__V1__ChatMessage *m)
{
    uint32_t last = inc->n_msgs ? inc->msgs[inc->n_msgs - 1].number : 0;
    if (m->number <= last)
        return CORE_OK;
    int from;
    int rc = journal_user(c, m->from_user, false, &from);
    if (rc)
        return rc;
    if (from < 0)
        return core__fail(c, CORE_E_INVALID, "message %u of incident %llu has no sender", m->number,
                          (unsigned long long)inc->id);
    if (!reserve((void **)&inc->msgs, &inc->cap_msgs, inc->n_msgs + 1, sizeof(*inc->msgs)))
        return nomem(c);
    char *text = hub_strdup(m->text ? m->text : "");
    char *cid = set(m->client_msg_id) ? hub_strdup(m->client_msg_id) : NULL;
    if (text == NULL || (set(m->client_msg_id) && cid == NULL)) {
        hub_free(text);
        hub_free(cid);
        return nomem(c);
    }
    msg_t *d = &inc->msgs[inc->n_msgs++];
    d->number = m->number;
    d->from = from;
    d->at = m->at_ms;
    d->text = text;
    d->client_id = cid;
    d->kind = m->kind ? (int)m->kind : MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_TEXT;
    if (m->at_ms > inc->updated_at)
        inc->updated_at = m->at_ms;
    return CORE_OK;
}

/* --------------------------------------------------------------- incidents */

static int keep_key(core_t *c, char **dst, const char *key)
{
    if (!set(key) || *dst)
        return CORE_OK;
    if ((*dst = hub_strdup(key)) == NULL)
        return nomem(c);
    return CORE_OK;
}

/* A fresh incident_t from a snapshot, without messages and not yet known to
 * the queue, the open list or the practitioners' counters. */
static int build_incident(core_t *c, const Mhtas__V1__Incident *s, incident_t **out)
{
    *out = NULL;
    unsigned long long id = (unsigned long long)s->id;
    const Mhtas__V1__IncidentDetails *d = s->details;
    if (d == NULL || d->priority < 1 || d->priority > 4)
        return core__fail(c, CORE_E_INVALID, "incident %llu in the journal has no details or no priority", id);
    if (s->state < ST(NEW) || s->state > ST(TRANSFERRED))
        return core__fail(c, CORE_E_INVALID, "incident %llu in the journal has an unknown state", id);
    if (s->n_history == 0)
        return core__fail(c, CORE_E_INVALID, "incident %llu in the journal has no history", id);
    int borough = -1;
    for (size_t i = 0; i < c->cfg.n_boroughs && d->borough; i++)
        if (strcmp(c->cfg.boroughs[i].name, d->borough) == 0)
            borough = (int)i;
    if (borough < 0)
        return core__fail(c, CORE_E_INVALID, "incident %llu in the journal is in a borough that is not configured", id);
    int raised_by, p;
    int rc = journal_user(c, s->raised_by, false, &raised_by);
    if (rc || (rc = journal_practitioner(c, s->practitioner, s->id, &p)))
        return rc;
    if (raised_by < 0)
        return core__fail(c, CORE_E_INVALID, "incident %llu in the journal has no raised_by", id);
    if ((core__is_held(s->state) || s->state == ST(OFFERED)) && p < 0)
        return core__fail(c, CORE_E_INVALID, "incident %llu in the journal is %s but names no practitioner", id,
                          core__state_name(s->state));

    incident_t *inc = hub_calloc(1, sizeof(*inc));
    if (inc == NULL)
        return nomem(c);
    inc->id = s->id;
    inc->borough = borough;
    inc->state = s->state;
    inc->raised_by = raised_by;
    inc->raised_at = s->raised_at_ms;
    inc->updated_at = s->updated_at_ms;
    inc->holder = -1;
    inc->pref = -1;
    /* Told or not before the restart, nobody is connected when it ends: a
     * "nobody on shift" notice then would be wrong, not news. */
    inc->nobody_sent = true;
    if ((inc->refused = hub_calloc(2 * c->bitset_words, sizeof(uint64_t))) == NULL ||
        (inc->hist = hub_calloc(s->n_history, sizeof(*inc->hist))) == NULL ||
        (inc->details = core__pb_clone(&d->base)) == NULL)
        goto oom;
    inc->held = inc->refused + c->bitset_words;
    inc->cap_hist = s->n_history;
    for (size_t i = 0; i < s->n_history; i++) {
        const Mhtas__V1__Transition *st = s->history[i];
        trans_t *t = &inc->hist[i];
        int actor, tp;
        if ((rc = journal_user(c, st->actor, true, &actor)) ||
            (rc = journal_practitioner(c, st->practitioner, s->id, &tp)))
            goto fail;
        t->seq = st->seq;
        t->at = st->at_ms;
        t->from = st->from;
        t->to = st->to;
        t->cause = st->cause;
        t->actor = actor;
        t->practitioner = tp;
        if (set(st->reason) && (t->reason = hub_strdup(st->reason)) == NULL)
            goto oom;
        inc->n_hist = i + 1;
        note_seq(c, st->seq);
        if ((st->cause == CAUSE(RAISED) && (rc = keep_key(c, &inc->raise_key, st->idempotency_key))) ||
            (st->cause == CAUSE(CANCELLED) && (rc = keep_key(c, &inc->cancel_key, st->idempotency_key))) ||
            (st->cause == CAUSE(OUTCOME_AGREED) && (rc = keep_key(c, &inc->close_key, st->idempotency_key))))
            goto fail;
        if (st->cause == CAUSE(ACCEPTED) && tp >= 0) {
            core__set_bit(inc->held, tp);
            if (inc->first_accepted_at == 0)
                inc->first_accepted_at = st->at_ms;
        }
        if ((st->cause == CAUSE(DECLINED) || st->cause == CAUSE(OFFER_TIMEOUT)) && tp >= 0)
            core__set_bit(inc->refused, tp);
    }
    if (s->outcome && (inc->outcome = core__pb_clone(&s->outcome->base)) == NULL)
        goto oom;
    if (set(s->cancel_reason) && (inc->cancel_reason = hub_strdup(s->cancel_reason)) == NULL)
        goto oom;
    if (d->person) {
        const Mhtas__V1__Person *pp = d->person;
        bool keyed = set(pp->nhs_number) || (set(pp->family_name) && set(pp->date_of_birth));
        if ((inc->person_key = core__person_key(pp)) == NULL && keyed)
            goto oom;
    }
    for (size_t i = 0; i < inc->details->n_flags; i++)
        if ((unsigned)inc->details->flags[i] < 8)
            inc->needs |= c->cfg.flag_skills[inc->details->flags[i]];
    if (core__is_held(s->state) || s->state == ST(CLOSED)) {
        inc->holder = p;
        if (p >= 0)
            core__set_bit(inc->held, p);
    } else if (s->state == ST(OFFERED)) {
        inc->offerees[0] = p;
        inc->n_offerees = 1;
        inc->offer_deadline = s->offer_deadline_ms;
    }
    inc->sla_deadline = s->sla_deadline_ms;
    inc->sla_breached = s->sla_breached;
    inc->sla_warned = s->sla_breached;
    if (inc->sla_deadline > inc->raised_at && c->cfg.sla_warn_percent > 0 && c->cfg.sla_warn_percent < 100)
        inc->sla_warn_at = inc->raised_at + (inc->sla_deadline - inc->raised_at) * c->cfg.sla_warn_percent / 100;
    *out = inc;
    return CORE_OK;
oom:
    rc = nomem(c);
fail:
    core__incident_free(inc);
    return rc;
}

/* Makes the incident known to the counters, the queue and the open list
 * (whose room was reserved before it was built). Cannot fail. */
static void attach(core_t *c, incident_t *inc)
{
    if (core__is_held(inc->state))
        c->pr[inc->holder].n_held++;
    for (int i = 0; i < inc->n_offerees; i++)
        c->pr[inc->offerees[i]].n_offers++;
    if (inc->state == ST(QUEUED) || inc->state == ST(OFFERED))
        core__queue_insert(c, inc);
    if (core__is_open(inc->state))
        c->open[c->n_open++] = inc;
}

static void detach(core_t *c, incident_t *inc)
{
    if (core__is_held(inc->state) && inc->holder >= 0)
        c->pr[inc->holder].n_held--;
    core__offers_clear(c, inc);
    core__queue_remove(c, inc);
    if (core__is_open(inc->state))
        core__open_remove(c, inc);
}

/* What the transitions after `after` (a seq) say about the practitioners:
 * accepts this shift, when their last incident ended, their wrap-up. `cur`
 * is who held the incident before them. */
static void track(core_t *c, const incident_t *inc, uint64_t after, int cur)
{
    for (size_t i = 0; i < inc->n_hist; i++) {
        const trans_t *t = &inc->hist[i];
        if (t->seq <= after)
            continue;
        if (t->cause == CAUSE(ACCEPTED) && t->practitioner >= 0) {
            cur = t->practitioner;
            pract_t *pr = &c->pr[cur];
            if (pr->on_shift && t->at >= pr->on_shift_since)
                pr->accepts++;
        } else if (core__is_held(t->from) && !core__is_held(t->to) && cur >= 0) {
            pract_t *pr = &c->pr[cur];
            if (t->at > pr->last_end)
                pr->last_end = t->at;
            if (t->cause == CAUSE(OUTCOME_AGREED) && c->cfg.wrap_up_ms > 0)
                pr->wrap_until = t->at + c->cfg.wrap_up_ms;
            cur = -1;
        }
    }
}

/* Restores one incident from its snapshot: a new one, or a newer state of
 * one already restored (whose messages it keeps). An older or equal state
 * (a replayed duplicate) is ignored. */
static int upsert(core_t *c, const Mhtas__V1__Incident *s)
{
    if (s->id == 0 || s->id > c->n_all + 1)
        return core__fail(c, CORE_E_INVALID, "the journal has incident %llu but not the ones before it",
                          (unsigned long long)s->id);
    incident_t *old = s->id <= c->n_all ? c->all[s->id - 1] : NULL;
    uint64_t old_seq = old && old->n_hist ? old->hist[old->n_hist - 1].seq : 0;
    if (old && s->n_history && s->history[s->n_history - 1]->seq <= old_seq)
        return CORE_OK;
    if (!reserve((void **)&c->all, &c->cap_all, c->n_all + 1, sizeof(*c->all)) ||
        !reserve((void **)&c->open, &c->cap_open, c->n_open + 1, sizeof(*c->open)) ||
        !reserve((void **)&c->queue, &c->cap_queue, c->n_open + 1, sizeof(*c->queue)))
        return nomem(c);
    incident_t *inc;
    int rc = build_incident(c, s, &inc);
    if (rc)
        return rc;
    int cur = -1;
    if (old) {
        if (core__is_held(old->state))
            cur = old->holder;
        inc->msgs = old->msgs;
        inc->n_msgs = old->n_msgs;
        inc->cap_msgs = old->cap_msgs;
        inc->nobody_sent = old->nobody_sent;
        inc->sla_warned |= old->sla_warned;
        old->msgs = NULL;
        old->n_msgs = old->cap_msgs = 0;
        detach(c, old);
        core__incident_free(old);
        c->all[s->id - 1] = inc;
    } else {
        c->all[c->n_all++] = inc;
    }
    attach(c, inc);
    track(c, inc, old_seq, cur);
    for (size_t i = 0; i < s->n_messages; i++)
        if (s->messages[i] && (rc = append_msg(c, inc, s->messages[i])))
            return rc;
    return CORE_OK;
}

/* ----------------------------------------------------------- practitioners */

static int restore_status(core_t *c, const Mhtas__V1__PractitionerStatus *s)
{
    int p = core_user_index(c, s->user_id);
    /* No longer configured, or no longer a practitioner: nothing to keep
     * (an incident naming them fails on its own). */
    if (p < 0 || c->cfg.users[p].role != ROLE(PRACTITIONER))
        return CORE_OK;
    char *reason = NULL;
    if (set(s->pause_reason) && (reason = hub_strdup(s->pause_reason)) == NULL)
        return nomem(c);
    pract_t *pr = &c->pr[p];
    bool on = s->state != PST(OFF_SHIFT) && s->state != PST(UNSPECIFIED);
    if (on && (!pr->on_shift || pr->on_shift_since != s->on_shift_since_ms))
        pr->accepts = 0;
    pr->on_shift = on;
    if (on)
        pr->on_shift_since = s->on_shift_since_ms;
    pr->connected = s->connected;
    hub_free(pr->pause_reason);
    pr->pause_reason = reason;
    pr->paused = on && reason != NULL;
    pr->missed = s->missed_offers;
    /* What the clients were last told, so that only real changes after the
     * restore are announced. */
    pr->sent = true;
    pr->sent_state = s->state;
    pr->sent_active = s->active_incidents;
    pr->sent_missed = s->missed_offers;
    pr->sent_held = (uint32_t)s->n_holding;
    pr->sent_connected = s->connected;
    pr->sent_paused = pr->paused;
    return CORE_OK;
}

/* --------------------------------------------------------------- restoring */

int core_restore_snapshot(core_t *c, const Mhtas__V1__JournalSnapshot *snap)
{
    int rc = check_restoring(c);
    if (rc)
        return rc;
    if (c->restored_any || c->n_all)
        return core__fail(c, CORE_E_STATE, "a snapshot is restored first, and only once");
    if (snap == NULL)
        return core__fail(c, CORE_E_INVALID, "no snapshot");
    c->restored_any = true;
    note_seq(c, snap->last_seq);
    note_at(c, snap->at_ms);
    /* Practitioners first: their shifts decide which accepts count. */
    for (size_t i = 0; i < snap->n_practitioners; i++)
        if (snap->practitioners[i] && (rc = restore_status(c, snap->practitioners[i])))
            return rc;
    for (size_t i = 0; i < snap->n_incidents; i++) {
        if (snap->incidents[i] == NULL)
            return core__fail(c, CORE_E_INVALID, "the snapshot has an empty incident");
        if ((rc = upsert(c, snap->incidents[i])))
            return rc;
    }
    return CORE_OK;
}

static int restore_message(core_t *c, const Mhtas__V1__ChatMessage *m)
{
    incident_t *inc = core__incident(c, m->incident_id);
    if (inc == NULL)
        return core__fail(c, CORE_E_INVALID, "the journal has a message for incident %llu, which it never raised",
                          (unsigned long long)m->incident_id);
    return append_msg(c, inc, m);
}

/* Notices carry no state of their own, except the three flags that only a
 * notice announces. */
static void restore_notice(core_t *c, const Mhtas__V1__Notice *n)
{
    incident_t *inc = core__incident(c, n->incident_id);
    if (inc == NULL)
        return;
    switch (n->kind) {
    case NOTICE(SLA_BREACHED):
        inc->sla_breached = true;
        inc->sla_warned = true;
        break;
    case NOTICE(SLA_WARNING):
        inc->sla_warned = true;
        break;
    case NOTICE(NOBODY_ON_SHIFT):
        inc->nobody_sent = true;
        break;
    default:
        break;
    }
}

int core_restore_event(core_t *c, const Mhtas__V1__Event *ev)
{
    int rc = check_restoring(c);
    if (rc)
        return rc;
    if (ev == NULL)
        return core__fail(c, CORE_E_INVALID, "no event");
    c->restored_any = true;
    note_seq(c, ev->seq);
    note_at(c, ev->at_ms);
    switch (ev->kind_case) {
    case MHTAS__V1__EVENT__KIND_INCIDENT:
        if (ev->incident == NULL || ev->incident->incident == NULL)
            return core__fail(c, CORE_E_INVALID, "event %llu is an incident update without the incident",
                              (unsigned long long)ev->seq);
        return upsert(c, ev->incident->incident);
    case MHTAS__V1__EVENT__KIND_MESSAGE:
        if (ev->message == NULL)
            return core__fail(c, CORE_E_INVALID, "event %llu is an empty message", (unsigned long long)ev->seq);
        return restore_message(c, ev->message);
    case MHTAS__V1__EVENT__KIND_STATUS:
        return ev->status ? restore_status(c, ev->status) : CORE_OK;
    case MHTAS__V1__EVENT__KIND_NOTICE:
        if (ev->notice)
            restore_notice(c, ev->notice);
        return CORE_OK;
    case MHTAS__V1__EVENT__KIND_AUDIT:
        /* The audit trail: journalled for the record, no state of the core
         * (ListAudit serves the ones the hub still holds). */
        return CORE_OK;
    default:
        /* Offer, Board, QueueStatus: derived from the state; and a kind
         * this version does not know. */
        return CORE_OK;
    }
}

/* The bookkeeping no event carries, from the whole restored state. */
static void derive(core_t *c)
{
    struct { uint64_t seq; int64_t wait; } w[CORE_WAIT_SAMPLES];
    size_t nw = 0;
    uint64_t rr_seq = 0;
    c->closed_total = c->cancelled_total = 0;
    c->raised_total = c->n_all;
    for (size_t i = 0; i < c->n_all; i++) {
        const incident_t *inc = c->all[i];
        c->closed_total += inc->state == ST(CLOSED);
        c->cancelled_total += inc->state == ST(CANCELLED);
        for (size_t h = 0; h < inc->n_hist; h++) {
            const trans_t *t = &inc->hist[h];
            if (t->to == ST(OFFERED) && (t->cause == CAUSE(OFFERED) || t->cause == CAUSE(REASSIGNED)) &&
                t->practitioner >= 0 && t->seq > rr_seq) {
                rr_seq = t->seq;
                c->rr_last = t->practitioner;
            }
            if (t->cause != CAUSE(ACCEPTED))
                continue;
            /* Keep the newest CORE_WAIT_SAMPLES, in seq order. */
            size_t k = nw;
            while (k > 0 && w[k - 1].seq > t->seq)
                k--;
            if (nw == CORE_WAIT_SAMPLES) {
                if (k == 0)
                    continue; /* older than every one kept */
                memmove(&w[0], &w[1], (k - 1) * sizeof(w[0]));
                k--;
            } else {
                memmove(&w[k + 1], &w[k], (nw - k) * sizeof(w[0]));
                nw++;
            }
            w[k].seq = t->seq;
            w[k].wait = t->at - inc->raised_at;
        }
    }
    for (size_t i = 0; i < nw; i++)
        c->waits[i] = w[i].wait;
    c->n_waits = nw;
    c->next_wait = nw % CORE_WAIT_SAMPLES;

    for (size_t i = 0; i < c->n_all; i++) {
        incident_t *inc = c->all[i];
        if (core__is_open(inc->state) && inc->sla_warn_at && inc->sla_warn_at <= c->restore_at)
            inc->sla_warned = true;
    }
    /* Queued incidents prefer whoever last accepted the same person. */
    for (size_t q = 0; q < c->n_queue; q++) {
        incident_t *inc = c->queue[q];
        if (inc->person_key == NULL)
            continue;
        uint64_t best = 0;
        for (size_t i = 0; i < c->n_all; i++) {
            const incident_t *o = c->all[i];
            if (o == inc || o->person_key == NULL || strcmp(o->person_key, inc->person_key) != 0)
                continue;
            for (size_t h = 0; h < o->n_hist; h++)
                if (o->hist[h].cause == CAUSE(ACCEPTED) && o->hist[h].seq > best && o->hist[h].practitioner >= 0) {
                    best = o->hist[h].seq;
                    inc->pref = o->hist[h].practitioner;
                }
        }
    }
}

void core_restore_finish(core_t *c, int64_t now)
{
    core__ok(c);
    if (c->restore_done)
        return;
    c->restore_done = true;
    derive(c);
    /* Offers in flight: their offerees may never have seen them. The queue
     * order does not change (an incident keeps its place). */
    for (size_t i = 0; i < c->n_queue; i++) {
        incident_t *inc = c->queue[i];
        if (inc->state != ST(OFFERED))
            continue;
        tr_prep_t prep;
        if (core__tr_prepare(c, inc, RESTART_REASON, &prep))
            continue; /* out of memory: the offer times out instead */
        core_audience_t prev = { 0 };
        for (int k = 0; k < inc->n_offerees; k++)
            core__aud_add(&prev, inc->offerees[k]);
        int first = inc->offerees[0];
        core__offers_clear(c, inc);
        core__tr_commit(c, inc, now, &prep, ST(QUEUED), CAUSE(OFFER_WITHDRAWN), CORE_ACTOR_HUB, first, &prev);
    }
    /* Raised just before the hub stopped, between its two transitions. */
    for (size_t i = 0; i < c->n_open; i++) {
        incident_t *inc = c->open[i];
        if (inc->state != ST(NEW))
            continue;
        tr_prep_t prep;
        if (core__tr_prepare(c, inc, NULL, &prep))
            continue;
        core__queue_insert(c, inc);
        core__tr_commit(c, inc, now, &prep, ST(QUEUED), CAUSE(QUEUED), CORE_ACTOR_HUB, -1, NULL);
    }
    /* Nobody is connected to a hub that just started; holders get the grace
     * time from now to come back. */
    for (size_t u = 0; u < c->cfg.n_users; u++) {
        pract_t *pr = &c->pr[u];
        pr->connected = false;
        pr->grace_until = pr->n_held ? now + (c->cfg.disconnect_grace_ms > 0 ? c->cfg.disconnect_grace_ms : 0) : 0;
        if (pr->wrap_until && pr->wrap_until <= now)
            pr->wrap_until = 0;
    }
    /* Whatever fell due while the hub was down (service levels, a grace of
     * zero), then routing and the announcements. */
    core_tick(c, now);
}

/* ---------------------------------------------------------------- snapshot */

int core_build_snapshot(core_t *c, int64_t now, Mhtas__V1__JournalSnapshot **out)
{
    core__ok(c);
    *out = NULL;
    Mhtas__V1__JournalSnapshot *s = hub_malloc(sizeof(*s));
    if (s == NULL)
        return nomem(c);
    mhtas__v1__journal_snapshot__init(s);
    s->last_seq = c->last_seq;
    s->at_ms = now;
    if (c->n_all) {
        if ((s->incidents = hub_calloc(c->n_all, sizeof(*s->incidents))) == NULL)
            goto oom;
        for (size_t i = 0; i < c->n_all; i++) {
            Mhtas__V1__Incident *m = core__snap_incident(c, c->all[i], now, true);
            if (m == NULL)
                goto oom;
            /* An estimate of the moment, not state. */
            m->expected_wait_ms = 0;
            s->incidents[s->n_incidents++] = m;
        }
    }
    size_t n = 0;
    for (size_t u = 0; u < c->cfg.n_users; u++)
        n += c->cfg.users[u].role == ROLE(PRACTITIONER);
    if (n) {
        if ((s->practitioners = hub_calloc(n, sizeof(*s->practitioners))) == NULL)
            goto oom;
        for (size_t u = 0; u < c->cfg.n_users; u++) {
            if (c->cfg.users[u].role != ROLE(PRACTITIONER))
                continue;
            Mhtas__V1__PractitionerStatus *st = core__snap_status(c, (int)u, now);
            if (st == NULL)
                goto oom;
            s->practitioners[s->n_practitioners++] = st;
        }
    }
    *out = s;
    return CORE_OK;
oom:
    core__pb_free(s);
    return nomem(c);
}
