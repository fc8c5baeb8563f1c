/* recovery_test.c -- rebuilding the core from its journal.
 *
 * A scripted session (shifts, raises, an offer time-out, accepts, messages,
 * propose, agree, a query, cancel, pauses, a shift ended and started again)
 * runs on a live core whose every event is recorded, as the shell would
 * journal it. Then:
 *   - its snapshot, packed, unpacked and restored into a fresh core, packs
 *     to the same bytes again;
 *   - replaying its events (all of them, or a mid-session snapshot plus the
 *     events after it) into a fresh core gives the same snapshot as the live
 *     core's;
 *   - core_restore_finish() withdraws offers, disconnects everybody, starts
 *     the holders' grace, continues the sequence, and routes;
 *   - resending a keyed RaiseIncident / AgreeOutcome / CancelIncident after
 *     the restart is recognised;
 *   - a journal that is inconsistent is refused;
 *   - running out of memory at any allocation of the restore and the
 *     snapshot neither crashes nor leaks.
 */
#include "core_fixture.h"

static void config(fx_t *f)
{
    f->cfg.wrap_up_ms = 120 * SEC;
    f->cfg.auto_pause_after = 3;
    f->cfg.sla_ms[1] = 60 * SEC;
    f->cfg.sla_ms[2] = 120 * SEC;
    f->cfg.sla_ms[3] = 600 * SEC;
    f->cfg.sla_ms[4] = 3600 * SEC;
    f->cfg.sla_warn_percent = 50;
}

static fx_t *fx_configured(void)
{
    fx_t *f = fx_new();
    config(f);
    fx_start(f);
    return f;
}

/* The ids the session leaves behind, and where its mid-point snapshot was. */
typedef struct session {
    uint64_t a, b, c, d, e;
    uint8_t *mid;          /* packed JournalSnapshot taken half-way */
    size_t mid_len;
    size_t mid_events;     /* events recorded before it */
} session_t;

static uint8_t *pack_snapshot(fx_t *f, size_t *len)
{
    Mhtas__V1__JournalSnapshot *s = NULL;
    assert_int_equal(core_build_snapshot(f->c, f->now, &s), CORE_OK);
    assert_non_null(s);
    *len = protobuf_c_message_get_packed_size(&s->base);
    uint8_t *buf = malloc(*len + 1);
    protobuf_c_message_pack(&s->base, buf);
    protobuf_c_message_free_unpacked(&s->base, hub_pb_allocator());
    return buf;
}

static uint64_t raise_person(fx_t *f, int priority, const char *borough, const char *family, const char *key)
{
    raise_t q;
    raise_init(&q, priority, borough);
    if (family) {
        q.p.family_name = (char *)family;
        q.p.date_of_birth = "1980-02-03";
        q.d.person = &q.p;
    }
    if (key)
        q.r.idempotency_key = (char *)key;
    raise_flag(&q, MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_SELF_HARM);
    uint64_t id = 0;
    assert_int_equal(fx_raise_req(f, OP, &q, &id), CORE_OK);
    return id;
}

static void run_session(fx_t *f, session_t *s)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(fx_on(f, PK), CORE_OK);
    assert_int_equal(fx_on(f, PS), CORE_OK);
    assert_int_equal(fx_on(f, PO), CORE_OK);
    /* a: offered to p.khan, who lets it time out; p.smith takes it. */
    s->a = raise_person(f, 2, "Manchester", "Doe", "raise-a");
    assert_string_equal(fx_pract(f, s->a), "p.khan");
    fx_tick(f, 30 * SEC);
    assert_string_equal(fx_pract(f, s->a), "p.smith");
    f->now += 5 * SEC;
    assert_int_equal(fx_accept(f, PS, s->a), CORE_OK);
    assert_int_equal(fx_post(f, PS, s->a, "Known to the crisis team", "m1"), CORE_OK);
    assert_int_equal(fx_post(f, OP, s->a, "Thanks", NULL), CORE_OK);
    assert_int_equal(fx_propose(f, PS, s->a), CORE_OK);
    assert_int_equal(fx_agree(f, OP, s->a, false, "Is home safe?", NULL), CORE_OK);
    assert_int_equal(fx_propose(f, PS, s->a), CORE_OK);
    f->now += 10 * SEC;
    assert_int_equal(fx_agree(f, OP, s->a, true, NULL, "agree-a"), CORE_OK);
    assert_int_equal(fx_state(f, s->a), ST(CLOSED));

    /* b: Oldham, Pennine's p.obi holds it and advises. */
    s->b = raise_person(f, 1, "Oldham", NULL, "raise-b");
    assert_string_equal(fx_pract(f, s->b), "p.obi");
    f->now += 2 * SEC;
    assert_int_equal(fx_accept(f, PO, s->b), CORE_OK);
    assert_int_equal(fx_post(f, PO, s->b, "Advice for the officers", NULL), CORE_OK);

    /* The half-way snapshot. */
    s->mid_events = f->n_ev;
    s->mid = pack_snapshot(f, &s->mid_len);

    /* c: offered to p.khan, then cancelled by the operator. */
    f->now += SEC;
    s->c = raise_person(f, 3, "Manchester", NULL, NULL);
    assert_string_equal(fx_pract(f, s->c), "p.khan");
    Mhtas__V1__CancelIncidentRequest cr = MHTAS__V1__CANCEL_INCIDENT_REQUEST__INIT;
    cr.incident_id = s->c;
    cr.reason = "Resolved by the officers";
    cr.idempotency_key = "cancel-c";
    Mhtas__V1__CancelIncidentResponse *cresp = NULL;
    assert_int_equal(core_cancel_incident(f->c, f->now, OP, &cr, &cresp), CORE_OK);
    protobuf_c_message_free_unpacked(&cresp->base, hub_pb_allocator());

    /* p.khan pauses; p.smith (in wrap-up) ends the shift and starts again. */
    assert_int_equal(fx_pause(f, PK, true, "Break"), CORE_OK);
    assert_int_equal(fx_end(f, PS), CORE_OK);
    f->now += SEC;
    assert_int_equal(fx_on(f, PS), CORE_OK);
    assert_int_equal(fx_pstate(f, PS), PST(WRAP_UP));

    /* d: the same person as a, nobody eligible: queued; then p.khan comes
     * back, takes it and proposes. */
    s->d = raise_person(f, 2, "Manchester", "Doe", "raise-d");
    assert_int_equal(fx_state(f, s->d), ST(QUEUED));
    f->now += 3 * SEC;
    assert_int_equal(fx_pause(f, PK, false, NULL), CORE_OK);
    assert_string_equal(fx_pract(f, s->d), "p.khan");
    assert_int_equal(fx_accept(f, PK, s->d), CORE_OK);
    assert_int_equal(fx_post(f, PK, s->d, "Crisis plan says A&E", "m2"), CORE_OK);
    assert_int_equal(fx_propose(f, PK, s->d), CORE_OK);
    /* Paused again, for another reason, while holding d. */
    assert_int_equal(fx_pause(f, PK, true, "Team meeting"), CORE_OK);
    assert_int_equal(fx_pause(f, PK, true, "Supervision"), CORE_OK);

    /* e: Salford, p.lee comes on shift and is offered it. */
    assert_int_equal(fx_on(f, PL), CORE_OK);
    f->now += SEC;
    s->e = raise_person(f, 4, "Salford", NULL, NULL);
    assert_int_equal(fx_state(f, s->e), ST(OFFERED));
    assert_string_equal(fx_pract(f, s->e), "p.lee");
    core_flush_board(f->c, f->now);
    f->now += SEC;
}

/* The restored core's snapshot against the live one's, naming the first
 * difference before failing. */
static void assert_same_state(fx_t *live, fx_t *restored)
{
    Mhtas__V1__JournalSnapshot *x = NULL, *y = NULL;
    assert_int_equal(core_build_snapshot(live->c, live->now, &x), CORE_OK);
    assert_int_equal(core_build_snapshot(restored->c, live->now, &y), CORE_OK);
    assert_int_equal(x->n_incidents, y->n_incidents);
    assert_int_equal(x->n_practitioners, y->n_practitioners);
    bool same = true;
    for (size_t i = 0; i < x->n_incidents + x->n_practitioners; i++) {
        const ProtobufCMessage *mx = i < x->n_incidents ? &x->incidents[i]->base
                                                        : &x->practitioners[i - x->n_incidents]->base;
        const ProtobufCMessage *my = i < y->n_incidents ? &y->incidents[i]->base
                                                        : &y->practitioners[i - y->n_incidents]->base;
        size_t nx = protobuf_c_message_get_packed_size(mx), ny = protobuf_c_message_get_packed_size(my);
        uint8_t *bx = malloc(nx + 1), *by = malloc(ny + 1);
        protobuf_c_message_pack(mx, bx);
        protobuf_c_message_pack(my, by);
        if (nx != ny || memcmp(bx, by, nx) != 0) {
            print_message("differs: %s %zu\n", i < x->n_incidents ? "incident" : "practitioner",
                          i < x->n_incidents ? i + 1 : i - x->n_incidents);
            same = false;
        }
        free(bx);
        free(by);
    }
    assert_int_equal(x->last_seq, y->last_seq);
    size_t nx = protobuf_c_message_get_packed_size(&x->base), ny = protobuf_c_message_get_packed_size(&y->base);
    uint8_t *bx = malloc(nx + 1), *by = malloc(ny + 1);
    protobuf_c_message_pack(&x->base, bx);
    protobuf_c_message_pack(&y->base, by);
    same = same && nx == ny && memcmp(bx, by, nx) == 0;
    free(bx);
    free(by);
    protobuf_c_message_free_unpacked(&x->base, hub_pb_allocator());
    protobuf_c_message_free_unpacked(&y->base, hub_pb_allocator());
    assert_true(same);
}

static void replay(fx_t *to, fx_t *from, size_t first)
{
    for (size_t i = first; i < from->n_ev; i++) {
        int rc = core_restore_event(to->c, from->ev[i].ev);
        if (rc)
            print_message("event %zu: %s\n", i, core_last_error(to->c));
        assert_int_equal(rc, CORE_OK);
    }
    assert_int_equal(core__check(to->c), 0);
}

static void restore_packed(fx_t *to, const uint8_t *buf, size_t len)
{
    Mhtas__V1__JournalSnapshot *s = mhtas__v1__journal_snapshot__unpack(NULL, len, buf);
    assert_non_null(s);
    int rc = core_restore_snapshot(to->c, s);
    if (rc)
        print_message("snapshot: %s\n", core_last_error(to->c));
    assert_int_equal(rc, CORE_OK);
    mhtas__v1__journal_snapshot__free_unpacked(s, NULL);
    assert_int_equal(core__check(to->c), 0);
}

/* ------------------------------------------------------------------ tests */

static void snapshot_round_trip(void **state)
{
    (void)state;
    fx_t *f = fx_configured();
    session_t s;
    run_session(f, &s);
    size_t n1;
    uint8_t *b1 = pack_snapshot(f, &n1);

    fx_t *g = fx_configured();
    g->now = f->now;
    restore_packed(g, b1, n1);
    assert_int_equal(g->n_ev, 0); /* restoring emits nothing */
    size_t n2;
    uint8_t *b2 = pack_snapshot(g, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);

    /* The keys are in the history, on the transitions their requests caused. */
    Mhtas__V1__Incident *a = fx_get(g, s.a);
    assert_string_equal(a->history[0]->idempotency_key, "raise-a");
    assert_string_equal(a->history[a->n_history - 1]->idempotency_key, "agree-a");
    assert_int_equal(a->n_messages, 3);
    fx_put(a);
    Mhtas__V1__Incident *c = fx_get(g, s.c);
    assert_string_equal(c->history[c->n_history - 1]->idempotency_key, "cancel-c");
    assert_string_equal(c->cancel_reason, "Resolved by the officers");
    fx_put(c);

    /* The same again from the mid-session snapshot. */
    fx_t *h = fx_configured();
    h->now = f->now;
    restore_packed(h, s.mid, s.mid_len);
    Mhtas__V1__JournalSnapshot *m = mhtas__v1__journal_snapshot__unpack(NULL, s.mid_len, s.mid);
    size_t n3;
    int64_t keep = h->now;
    h->now = m->at_ms;
    uint8_t *b3 = pack_snapshot(h, &n3);
    h->now = keep;
    assert_int_equal(n3, s.mid_len);
    assert_memory_equal(b3, s.mid, n3);
    mhtas__v1__journal_snapshot__free_unpacked(m, NULL);

    free(b1);
    free(b2);
    free(b3);
    free(s.mid);
    fx_free(h);
    fx_free(g);
    fx_free(f);
}

static void event_replay_equals_live(void **state)
{
    (void)state;
    fx_t *f = fx_configured();
    session_t s;
    run_session(f, &s);

    /* Every event from the start. */
    fx_t *g = fx_configured();
    g->now = f->now;
    replay(g, f, 0);
    assert_int_equal(g->n_ev, 0);
    assert_int_equal(core_last_seq(g->c), core_last_seq(f->c));
    assert_same_state(f, g);

    /* The mid-session snapshot, then the events after it. */
    fx_t *h = fx_configured();
    h->now = f->now;
    restore_packed(h, s.mid, s.mid_len);
    replay(h, f, s.mid_events);
    assert_same_state(f, h);

    /* Replaying the tail again changes nothing: duplicates are ignored. */
    replay(h, f, s.mid_events);
    assert_same_state(f, h);

    free(s.mid);
    fx_free(h);
    fx_free(g);
    fx_free(f);
}

static void finish_requeues_offers_and_routes(void **state)
{
    (void)state;
    fx_t *f = fx_configured();
    session_t s;
    run_session(f, &s);
    uint64_t last = core_last_seq(f->c);

    fx_t *g = fx_configured();
    g->now = f->now + 60 * SEC; /* the hub was down a minute */
    replay(g, f, 0);
    core_restore_finish(g->c, g->now);
    assert_int_equal(core__check(g->c), 0);

    /* e was offered to p.lee: withdrawn by the restart, back in the queue. */
    Mhtas__V1__Incident *e = fx_get(g, s.e);
    assert_int_equal(e->state, ST(QUEUED));
    const Mhtas__V1__Transition *t = e->history[e->n_history - 1];
    assert_int_equal(t->cause, CAUSE(OFFER_WITHDRAWN));
    assert_string_equal(t->reason, "hub restarted");
    assert_string_equal(t->actor, "hub");
    assert_string_equal(t->practitioner, "p.lee");
    assert_int_equal(t->seq, last + 1);
    fx_put(e);
    /* The sequence continues where the journal ended. */
    assert_true(g->n_ev > 0);
    assert_int_equal(g->ev[0].ev->seq, last + 1);
    assert_int_equal(g->last_seq, core_last_seq(g->c));

    /* Nobody is connected; holders are disconnected, not gone. */
    for (int p = PK; p <= PL; p++)
        assert_false(g->c->pr[p].connected);
    assert_int_equal(fx_pstate(g, PO), PST(DISCONNECTED));
    assert_int_equal(fx_state(g, s.b), ST(ADVISING));
    assert_int_equal(fx_state(g, s.d), ST(OUTCOME_PROPOSED));
    /* Restart noise is not news: no "nobody on shift". */
    assert_int_equal(fx_notices(g, NOTICE(NOBODY_ON_SHIFT)), 0);

    /* p.lee reconnects: e is routed to them again. */
    fx_clear(g);
    core_set_connected(g->c, g->now, PL, true);
    assert_int_equal(core__check(g->c), 0);
    assert_int_equal(fx_state(g, s.e), ST(OFFERED));
    assert_string_equal(fx_pract(g, s.e), "p.lee");
    assert_int_equal(fx_offers_to(g, PL, s.e), 1);
    assert_int_equal(fx_accept(g, PL, s.e), CORE_OK);

    /* Closing d puts p.khan in wrap-up, as live. */
    core_set_connected(g->c, g->now, PK, true);
    assert_int_equal(fx_agree(g, OP, s.d, true, NULL, NULL), CORE_OK);
    assert_int_equal(fx_pstate(g, PK), PST(PAUSED));
    free(s.mid);
    fx_free(g);
    fx_free(f);
}

static void grace_expires_after_restore(void **state)
{
    (void)state;
    fx_t *f = fx_configured();
    session_t s;
    run_session(f, &s);

    fx_t *g = fx_configured();
    g->now = f->now + 10 * SEC;
    replay(g, f, 0);
    core_restore_finish(g->c, g->now);
    assert_true(core_next_deadline(g->c) <= g->now + 60 * SEC);

    /* p.khan comes back within the grace time and keeps d; p.obi does not. */
    fx_tick(g, 30 * SEC);
    core_set_connected(g->c, g->now, PK, true);
    assert_int_equal(fx_state(g, s.b), ST(ADVISING));
    fx_tick(g, 30 * SEC);
    assert_int_equal(fx_state(g, s.b), ST(QUEUED));
    assert_int_equal(fx_last_cause(g, s.b), CAUSE(GRACE_EXPIRED));
    assert_int_equal(fx_state(g, s.d), ST(OUTCOME_PROPOSED));
    assert_int_equal(fx_notices(g, NOTICE(HOLDER_DISCONNECTED)), 1);
    /* p.obi returns and gets b offered again. */
    core_set_connected(g->c, g->now, PO, true);
    assert_int_equal(fx_state(g, s.b), ST(OFFERED));
    assert_string_equal(fx_pract(g, s.b), "p.obi");
    free(s.mid);
    fx_free(g);
    fx_free(f);
}

static void resends_after_restore_are_recognised(void **state)
{
    (void)state;
    fx_t *f = fx_configured();
    session_t s;
    run_session(f, &s);

    /* From the mid snapshot and the events after it. */
    fx_t *g = fx_configured();
    g->now = f->now + 5 * SEC;
    restore_packed(g, s.mid, s.mid_len);
    replay(g, f, s.mid_events);
    core_restore_finish(g->c, g->now);
    size_t n = g->c->n_all;
    uint64_t seq = core_last_seq(g->c);

    /* RaiseIncident with the same key: the incident it raised. */
    raise_t q;
    raise_init(&q, 2, "Manchester");
    q.r.idempotency_key = "raise-a";
    uint64_t id = 0;
    assert_int_equal(fx_raise_req(g, OP, &q, &id), CORE_OK);
    assert_int_equal(id, s.a);
    q.r.idempotency_key = "raise-d";
    assert_int_equal(fx_raise_req(g, OP, &q, &id), CORE_OK);
    assert_int_equal(id, s.d);
    /* Another user's key is theirs alone. */
    q.r.idempotency_key = "raise-a";
    assert_int_equal(fx_raise_req(g, DISP, &q, &id), CORE_OK);
    assert_int_equal(id, n + 1);
    n++;
    assert_int_equal(g->c->n_all, n);

    /* AgreeOutcome and CancelIncident with their keys: OK, nothing changes. */
    seq = core_last_seq(g->c);
    assert_int_equal(fx_agree(g, OP, s.a, true, NULL, "agree-a"), CORE_OK);
    assert_int_equal(fx_agree(g, OP, s.a, true, NULL, "other"), CORE_E_STATE);
    Mhtas__V1__CancelIncidentRequest cr = MHTAS__V1__CANCEL_INCIDENT_REQUEST__INIT;
    cr.incident_id = s.c;
    cr.reason = "Resolved by the officers";
    cr.idempotency_key = "cancel-c";
    Mhtas__V1__CancelIncidentResponse *cresp = NULL;
    assert_int_equal(core_cancel_incident(g->c, g->now, OP, &cr, &cresp), CORE_OK);
    assert_int_equal(cresp->incident->state, ST(CANCELLED));
    protobuf_c_message_free_unpacked(&cresp->base, hub_pb_allocator());
    assert_int_equal(core_last_seq(g->c), seq);

    /* A new raise gets the next id and the next seq. */
    q.r.idempotency_key = "raise-new";
    assert_int_equal(fx_raise_req(g, OP, &q, &id), CORE_OK);
    assert_int_equal(id, n + 1);
    assert_true(core_last_seq(g->c) > seq);
    free(s.mid);
    fx_free(g);
    fx_free(f);
}

static void restore_refuses_inconsistent_journal(void **state)
{
    fx_t *f = *state;
    Mhtas__V1__ChatMessage m = MHTAS__V1__CHAT_MESSAGE__INIT;
    m.incident_id = 99;
    m.number = 1;
    m.from_user = "op.jones";
    m.text = "hello";
    Mhtas__V1__Event ev = MHTAS__V1__EVENT__INIT;
    ev.seq = 7;
    ev.kind_case = EV_MESSAGE;
    ev.message = &m;
    assert_int_equal(core_restore_event(f->c, &ev), CORE_E_INVALID);
    assert_non_null(strstr(core_last_error(f->c), "99"));

    /* Events that carry no state are accepted and ignored. */
    Mhtas__V1__QueueStatus qs = MHTAS__V1__QUEUE_STATUS__INIT;
    qs.incident_id = 42;
    Mhtas__V1__Event ev2 = MHTAS__V1__EVENT__INIT;
    ev2.seq = 8;
    ev2.kind_case = EV_QUEUE;
    ev2.queue = &qs;
    assert_int_equal(core_restore_event(f->c, &ev2), CORE_OK);

    /* An incident naming a user the configuration does not have. */
    Mhtas__V1__IncidentDetails d = MHTAS__V1__INCIDENT_DETAILS__INIT;
    d.priority = 2;
    d.borough = "Manchester";
    Mhtas__V1__Transition t = MHTAS__V1__TRANSITION__INIT;
    Mhtas__V1__Transition *tp[] = { &t };
    t.seq = 9;
    t.to = ST(NEW);
    t.cause = CAUSE(RAISED);
    t.actor = "op.gone";
    Mhtas__V1__Incident inc = MHTAS__V1__INCIDENT__INIT;
    inc.id = 1;
    inc.details = &d;
    inc.state = ST(NEW);
    inc.raised_by = "op.jones";
    inc.n_history = 1;
    inc.history = tp;
    Mhtas__V1__IncidentUpdate up = MHTAS__V1__INCIDENT_UPDATE__INIT;
    up.incident = &inc;
    Mhtas__V1__Event ev3 = MHTAS__V1__EVENT__INIT;
    ev3.seq = 9;
    ev3.kind_case = EV_INCIDENT;
    ev3.incident = &up;
    assert_int_equal(core_restore_event(f->c, &ev3), CORE_E_INVALID);
    assert_non_null(strstr(core_last_error(f->c), "op.gone"));
    t.actor = "op.jones";
    /* An incident whose predecessors are missing. */
    inc.id = 3;
    assert_int_equal(core_restore_event(f->c, &ev3), CORE_E_INVALID);
    inc.id = 1;
    assert_int_equal(core_restore_event(f->c, &ev3), CORE_OK);
    assert_int_equal(core__check(f->c), 0);

    /* A snapshot comes first or not at all. */
    Mhtas__V1__JournalSnapshot snap = MHTAS__V1__JOURNAL_SNAPSHOT__INIT;
    assert_int_equal(core_restore_snapshot(f->c, &snap), CORE_E_STATE);

    /* finish: the NEW incident (raised as the hub stopped) is queued, and the
     * sequence continues after the largest seen. */
    core_restore_finish(f->c, f->now);
    assert_int_equal(fx_state(f, 1), ST(QUEUED));
    assert_int_equal(f->ev[0].ev->seq, 10);
    assert_int_equal(core_restore_event(f->c, &ev2), CORE_E_STATE);
}

static void restore_status_and_message_duplicates(void **state)
{
    (void)state;
    fx_t *f = fx_configured();
    session_t s;
    run_session(f, &s);
    fx_t *g = fx_configured();
    g->now = f->now;
    replay(g, f, 0);
    /* Every message event once more: nothing is added. */
    size_t before = g->c->all[s.a - 1]->n_msgs;
    for (size_t i = 0; i < f->n_ev; i++)
        if (f->ev[i].ev->kind_case == EV_MESSAGE)
            assert_int_equal(core_restore_event(g->c, f->ev[i].ev), CORE_OK);
    assert_int_equal(g->c->all[s.a - 1]->n_msgs, before);
    /* Shift state as the live core had it. */
    assert_true(g->c->pr[PK].paused);
    assert_string_equal(g->c->pr[PK].pause_reason, "Supervision");
    assert_int_equal(g->c->pr[PS].on_shift_since, f->c->pr[PS].on_shift_since);
    assert_int_equal(g->c->pr[PS].accepts, f->c->pr[PS].accepts);
    assert_int_equal(g->c->pr[PK].accepts, f->c->pr[PK].accepts);
    assert_int_equal(g->c->pr[PK].missed, f->c->pr[PK].missed);
    assert_int_equal(g->c->pr[PS].wrap_until, f->c->pr[PS].wrap_until);
    assert_int_equal(g->c->pr[PS].last_end, f->c->pr[PS].last_end);
    free(s.mid);
    fx_free(g);
    fx_free(f);
}

/* ------------------------------------------------------------ failmalloc */

static void restore_out_of_memory(void **state)
{
    (void)state;
    fx_t *f = fx_configured();
    session_t s;
    run_session(f, &s);
    Mhtas__V1__JournalSnapshot *mid = mhtas__v1__journal_snapshot__unpack(NULL, s.mid_len, s.mid);
    assert_non_null(mid);
    long n;
    for (n = 0; n < 100000; n++) {
        fx_t *g = fx_new();
        config(g);
        g->gaps_ok = true;
        g->now = f->now;
        bool ok = true;
        hub_alloc_fail_after(n);
        g->c = core_new(&g->cfg, fx_record, g, 1);
        if (g->c == NULL) {
            hub_alloc_fail_after(-1);
            fx_free(g);
            continue;
        }
        int rc = core_restore_snapshot(g->c, mid);
        ok &= rc == CORE_OK;
        if (rc)
            assert_int_equal(rc, CORE_E_NOMEM);
        assert_int_equal(core__check(g->c), 0);
        for (size_t i = s.mid_events; ok && i < f->n_ev; i++) {
            rc = core_restore_event(g->c, f->ev[i].ev);
            ok &= rc == CORE_OK;
            if (rc)
                assert_int_equal(rc, CORE_E_NOMEM);
            assert_int_equal(core__check(g->c), 0);
        }
        Mhtas__V1__JournalSnapshot *snap = NULL;
        rc = core_build_snapshot(g->c, g->now, &snap);
        ok &= rc == CORE_OK;
        if (snap)
            protobuf_c_message_free_unpacked(&snap->base, hub_pb_allocator());
        else
            assert_int_equal(rc, CORE_E_NOMEM);
        core_restore_finish(g->c, g->now);
        assert_int_equal(core__check(g->c), 0);
        ok &= g->c->lost_events == 0;
        hub_alloc_fail_after(-1);
        fx_free(g);
        if (ok)
            break;
    }
    assert_true(n > 10);
    print_message("restore failmalloc: %ld runs\n", n + 1);
    mhtas__v1__journal_snapshot__free_unpacked(mid, NULL);
    free(s.mid);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(snapshot_round_trip),
        cmocka_unit_test(event_replay_equals_live),
        cmocka_unit_test(finish_requeues_offers_and_routes),
        cmocka_unit_test(grace_expires_after_restore),
        cmocka_unit_test(resends_after_restore_are_recognised),
        cmocka_unit_test_setup_teardown(restore_refuses_inconsistent_journal, fx_setup, fx_teardown),
        cmocka_unit_test(restore_status_and_message_duplicates),
        cmocka_unit_test(restore_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
