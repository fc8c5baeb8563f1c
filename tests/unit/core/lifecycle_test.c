/* lifecycle_test.c -- an incident's life: every transition, its record in
 * the history, the idempotent repeats, and what closed incidents refuse. */
#include "core_fixture.h"

static void full_life_is_recorded(void **state)
{
    fx_t *f = *state;
    uint64_t id = fx_raise(f, 2, "Manchester");
    assert_int_equal(id, 1);
    assert_int_equal(fx_state(f, id), ST(QUEUED));
    assert_int_equal(fx_on(f, PK), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(OFFERED));
    assert_string_equal(fx_pract(f, id), "p.khan");
    assert_int_equal(fx_offers_to(f, PK, id), 1);
    assert_int_equal(fx_accept(f, PK, id), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(ACCEPTED));
    /* police talking does not make it ADVISING: the holder's first message does */
    assert_int_equal(fx_post(f, OP, id, "Any history?", NULL), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(ACCEPTED));
    f->now += 5 * SEC;
    assert_int_equal(fx_post(f, PK, id, "Known to the crisis team", NULL), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(ADVISING));
    assert_int_equal(fx_propose(f, PK, id), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(OUTCOME_PROPOSED));
    f->now += 5 * SEC;
    assert_int_equal(fx_agree(f, DISP, id, true, NULL, "k1"), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(CLOSED));

    int causes[16];
    fx_causes(f, id, causes, 16);
    int want[] = { CAUSE(RAISED), CAUSE(QUEUED), CAUSE(OFFERED), CAUSE(ACCEPTED), CAUSE(FIRST_ADVICE),
                   CAUSE(OUTCOME_PROPOSED), CAUSE(OUTCOME_AGREED), -1 };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(causes[i], want[i]);

    Mhtas__V1__Incident *inc = fx_get(f, id);
    /* each transition carries the seq of the event that announced it */
    for (size_t i = 0; i < inc->n_history; i++) {
        const Mhtas__V1__Transition *t = inc->history[i];
        bool found = false;
        for (size_t e = 0; e < f->n_ev; e++)
            if (f->ev[e].ev->seq == t->seq) {
                assert_int_equal(f->ev[e].ev->kind_case, EV_INCIDENT);
                assert_int_equal(f->ev[e].ev->incident->transition->cause, t->cause);
                assert_int_equal(f->ev[e].ev->incident->incident->state, t->to);
                found = true;
            }
        assert_true(found);
        if (i > 0)
            assert_int_equal(t->from, inc->history[i - 1]->to);
    }
    assert_string_equal(inc->history[0]->actor, "op.jones");
    assert_string_equal(inc->history[1]->actor, "hub");
    assert_string_equal(inc->history[2]->actor, "hub");
    assert_string_equal(inc->history[2]->practitioner, "p.khan");
    assert_string_equal(inc->history[3]->actor, "p.khan");
    assert_string_equal(inc->history[6]->actor, "disp.ali");
    assert_non_null(inc->outcome);
    assert_string_equal(inc->outcome->proposed_by, "p.khan");
    assert_string_equal(inc->outcome->agreed_by, "disp.ali");
    assert_int_equal(inc->outcome->agreed_at_ms, f->now);
    assert_int_equal(inc->n_messages, 2);
    assert_int_equal(inc->messages[0]->number, 1);
    assert_int_equal(inc->messages[1]->number, 2);
    assert_string_equal(inc->messages[0]->from_user, "op.jones");
    assert_int_equal(inc->messages[0]->from_role, ROLE(OPERATOR));
    assert_string_equal(inc->messages[1]->from_name, "p.khan");
    assert_string_equal(inc->practitioner, "p.khan");
    assert_string_equal(inc->provider, "GMMH");
    fx_put(inc);
    assert_int_equal(fx_pstate(f, PK), PST(AVAILABLE));
}

static void agree_false_queries_back(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    uint64_t id = fx_raise(f, 2, "Manchester");
    fx_accept(f, PK, id);
    fx_propose(f, PK, id);
    assert_int_equal(fx_agree(f, OP, id, false, NULL, NULL), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "query is required");
    assert_int_equal(fx_agree(f, OP, id, false, "Can he go home with family?", NULL), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(ADVISING));
    assert_int_equal(fx_last_cause(f, id), CAUSE(OUTCOME_QUERIED));
    Mhtas__V1__Incident *inc = fx_get(f, id);
    assert_int_equal(inc->n_messages, 1);
    assert_string_equal(inc->messages[0]->text, "Can he go home with family?");
    assert_string_equal(inc->messages[0]->from_user, "op.jones");
    fx_put(inc);
    /* re-propose from ADVISING, and from OUTCOME_PROPOSED */
    assert_int_equal(fx_propose(f, PK, id), CORE_OK);
    assert_int_equal(fx_propose(f, PK, id), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(OUTCOME_PROPOSED));
    /* agreeing needs a proposal */
    assert_int_equal(fx_agree(f, OP, id, false, "Why?", NULL), CORE_OK);
    assert_int_equal(fx_agree(f, OP, id, true, NULL, NULL), CORE_E_STATE);
}

static void closed_refuses_changes(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    uint64_t id = fx_raise(f, 2, "Manchester");
    fx_accept(f, PK, id);
    fx_propose(f, PK, id);
    fx_agree(f, OP, id, true, NULL, "close-1");
    assert_int_equal(fx_post(f, OP, id, "more", NULL), CORE_E_STATE);
    assert_string_equal(core_last_error(f->c), "incident 1 is closed");
    assert_int_equal(fx_cancel(f, OP, id, "dup"), CORE_E_STATE);
    assert_string_equal(core_last_error(f->c), "incident 1 is closed");
    assert_int_equal(fx_propose(f, PK, id), CORE_E_STATE);
    assert_int_equal(fx_accept(f, PK, id), CORE_E_STATE);
    assert_int_equal(fx_reassign(f, SUP, id, NULL, NULL), CORE_E_STATE);
    assert_int_equal(fx_agree(f, OP, id, true, NULL, "other-key"), CORE_E_STATE);
    assert_int_equal(fx_agree(f, OP, id, true, NULL, NULL), CORE_E_STATE);
    /* the same key: the repeat of the request that closed it */
    size_t before = f->n_ev;
    assert_int_equal(fx_agree(f, OP, id, true, NULL, "close-1"), CORE_OK);
    assert_int_equal(f->n_ev, before);
    /* the holder freed */
    assert_int_equal(core__active(f->c, PK), 0);
}

static void cancel_from_each_open_state(void **state)
{
    fx_t *f = *state;
    uint64_t q = fx_raise(f, 3, "Manchester");       /* stays queued: nobody on */
    assert_int_equal(fx_cancel(f, OP, q, NULL), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "reason is required");
    assert_int_equal(fx_cancel(f, OP, q, "Duplicate"), CORE_OK);
    assert_int_equal(fx_state(f, q), ST(CANCELLED));
    assert_int_equal(fx_last_cause(f, q), CAUSE(CANCELLED));
    assert_string_equal(core_last_error(f->c), "");

    fx_on(f, PK);
    uint64_t o = fx_raise(f, 3, "Manchester");
    assert_int_equal(fx_state(f, o), ST(OFFERED));
    fx_clear(f);
    assert_int_equal(fx_cancel(f, DISP, o, "Resolved"), CORE_OK);
    /* the offeree is told, so their client drops the offer */
    rec_t *r = fx_last(f, EV_INCIDENT);
    assert_true(fx_aud_has(&r->aud, PK));
    assert_int_equal(core__active(f->c, PK), 0);

    uint64_t a = fx_raise(f, 3, "Manchester");
    fx_accept(f, PK, a);
    assert_int_equal(fx_cancel(f, SUP, a, "Officers left"), CORE_OK);
    Mhtas__V1__Incident *inc = fx_get(f, a);
    assert_int_equal(inc->state, ST(CANCELLED));
    assert_string_equal(inc->cancel_reason, "Officers left");
    fx_put(inc);
    assert_int_equal(core__active(f->c, PK), 0);
    assert_int_equal(fx_cancel(f, OP, a, "again"), CORE_E_STATE);
    assert_string_equal(core_last_error(f->c), "incident 3 is cancelled");
}

static void decline_requeues(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    uint64_t id = fx_raise(f, 2, "Manchester");
    assert_int_equal(fx_decline(f, PK, id, NULL), CORE_OK);
    /* alone, so offered again straight away: the decline is recorded */
    int causes[16];
    fx_causes(f, id, causes, 16);
    assert_int_equal(causes[3], CAUSE(DECLINED));
    Mhtas__V1__Incident *inc = fx_get(f, id);
    assert_int_equal(inc->history[3]->from, ST(OFFERED));
    assert_int_equal(inc->history[3]->to, ST(QUEUED));
    assert_string_equal(inc->history[3]->practitioner, "p.khan");
    fx_put(inc);
    assert_int_equal(fx_decline(f, PK, id, "On another call"), CORE_OK);
    inc = fx_get(f, id);
    assert_string_equal(inc->history[5]->reason, "On another call");
    fx_put(inc);
    /* not offered to PS: not declinable by them */
    assert_int_equal(fx_decline(f, PS, id, NULL), CORE_E_NOT_FOUND);
}

static void idempotent_raise(void **state)
{
    fx_t *f = *state;
    raise_t q;
    raise_init(&q, 2, "Salford");
    q.r.idempotency_key = "raise-abc";
    uint64_t a = 0, b = 0, c = 0;
    assert_int_equal(fx_raise_req(f, OP, &q, &a), CORE_OK);
    size_t events = f->n_ev;
    assert_int_equal(fx_raise_req(f, OP, &q, &b), CORE_OK);
    assert_int_equal(a, b);
    assert_int_equal(f->n_ev, events);
    /* the key is per user */
    assert_int_equal(fx_raise_req(f, DISP, &q, &c), CORE_OK);
    assert_int_not_equal(c, a);
}

static void idempotent_accept_and_post(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    uint64_t id = fx_raise(f, 2, "Manchester");
    assert_int_equal(fx_accept(f, PK, id), CORE_OK);
    size_t events = f->n_ev;
    assert_int_equal(fx_accept(f, PK, id), CORE_OK);
    assert_int_equal(f->n_ev, events);

    Mhtas__V1__PostMessageRequest req = MHTAS__V1__POST_MESSAGE_REQUEST__INIT;
    req.incident_id = id;
    req.text = "Known to CMHT";
    req.client_msg_id = "m-1";
    Mhtas__V1__PostMessageResponse *r1 = NULL, *r2 = NULL;
    assert_int_equal(core_post_message(f->c, f->now, PK, &req, &r1), CORE_OK);
    f->now += SEC;
    assert_int_equal(core_post_message(f->c, f->now, PK, &req, &r2), CORE_OK);
    assert_int_equal(r1->message->number, r2->message->number);
    assert_int_equal(r1->message->at_ms, r2->message->at_ms);
    assert_string_equal(r2->message->client_msg_id, "m-1");
    protobuf_c_message_free_unpacked(&r1->base, hub_pb_allocator());
    protobuf_c_message_free_unpacked(&r2->base, hub_pb_allocator());
    /* the same client id from another user is another message */
    assert_int_equal(fx_post(f, OP, id, "Thanks", "m-1"), CORE_OK);
    Mhtas__V1__Incident *inc = fx_get(f, id);
    assert_int_equal(inc->n_messages, 2);
    fx_put(inc);
    assert_int_equal(fx_count(f, EV_MESSAGE), 2);
}

static void messages_rules(void **state)
{
    fx_t *f = *state;
    f->cfg.max_messages_per_incident = 3;
    core_free(f->c);
    fx_start(f);
    uint64_t id = fx_raise(f, 2, "Manchester");
    /* police may write while it is queued; the practitioner reads it later */
    assert_int_equal(fx_post(f, OP, id, "Officers on scene", NULL), CORE_OK);
    assert_int_equal(fx_post(f, OP, id, "", NULL), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "text is required");
    fx_on(f, PK);
    assert_int_equal(fx_post(f, PK, id, "hello", NULL), CORE_E_NOT_FOUND); /* offered, not held */
    assert_int_equal(fx_post(f, PS, id, "hello", NULL), CORE_E_NOT_FOUND);
    fx_accept(f, PK, id);
    Mhtas__V1__GetIncidentRequest g = MHTAS__V1__GET_INCIDENT_REQUEST__INIT;
    g.incident_id = id;
    Mhtas__V1__GetIncidentResponse *gr = NULL;
    assert_int_equal(core_get_incident(f->c, f->now, PK, &g, &gr), CORE_OK);
    assert_int_equal(gr->incident->n_messages, 1);
    protobuf_c_message_free_unpacked(&gr->base, hub_pb_allocator());
    char big[1100];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(fx_post(f, PK, id, big, NULL), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "text is longer than 1000 bytes");
    assert_int_equal(fx_post(f, PK, id, "two", NULL), CORE_OK);
    assert_int_equal(fx_post(f, OP, id, "three", NULL), CORE_OK);
    assert_int_equal(fx_post(f, PK, id, "four", NULL), CORE_E_EXHAUSTED);
}

static void reassign_to_queue_and_named(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    fx_on(f, PS);
    uint64_t id = fx_raise(f, 2, "Manchester");
    fx_accept(f, PK, id);
    assert_int_equal(fx_reassign(f, OP, id, NULL, NULL), CORE_E_PERM);
    fx_clear(f);
    assert_int_equal(fx_reassign(f, SUP, id, NULL, "Handing over"), CORE_OK);
    /* back in the queue, then routed: PK is free again and lowest index */
    int causes[16];
    fx_causes(f, id, causes, 16);
    assert_int_equal(causes[4], CAUSE(REASSIGNED));
    Mhtas__V1__Incident *inc = fx_get(f, id);
    assert_int_equal(inc->history[4]->to, ST(QUEUED));
    assert_string_equal(inc->history[4]->reason, "Handing over");
    assert_string_equal(inc->history[4]->actor, "sup.reid");
    fx_put(inc);
    assert_int_equal(fx_state(f, id), ST(OFFERED));

    assert_int_equal(fx_reassign(f, SUP, id, "p.smith", "Specialist"), CORE_OK);
    assert_string_equal(fx_pract(f, id), "p.smith");
    assert_int_equal(fx_last_cause(f, id), CAUSE(REASSIGNED));
    assert_int_equal(fx_offers_to(f, PS, id), 1);
    assert_int_equal(fx_reassign(f, SUP, id, "nobody", NULL), CORE_E_INVALID);
    assert_int_equal(fx_reassign(f, SUP, id, "op.jones", NULL), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "op.jones is not a practitioner");
    assert_int_equal(fx_reassign(f, SUP, id, "p.obi", NULL), CORE_E_STATE);
    assert_string_equal(core_last_error(f->c), "p.obi is not on shift and connected");
    /* capacity still counts */
    uint64_t id2 = fx_raise(f, 2, "Manchester"); /* goes to PK */
    assert_string_equal(fx_pract(f, id2), "p.khan");
    assert_int_equal(fx_reassign(f, SUP, id, "p.khan", NULL), CORE_E_STATE);
    assert_string_equal(core_last_error(f->c), "p.khan is at capacity (1 incidents)");
    /* reassigning bypasses area: p.obi covers Pennine only */
    fx_on(f, PO);
    assert_int_equal(fx_reassign(f, SUP, id, "p.obi", NULL), CORE_OK);
    assert_int_equal(fx_accept(f, PO, id), CORE_OK);
    /* a queued incident cannot go "back to the queue" */
    fx_pause(f, PS, true, "Break");
    uint64_t id3 = fx_raise(f, 2, "Manchester");
    assert_int_equal(fx_state(f, id3), ST(QUEUED));
    assert_int_equal(fx_reassign(f, SUP, id3, NULL, NULL), CORE_E_STATE);
}

static void end_shift_rules(void **state)
{
    fx_t *f = *state;
    fx_user(f, PK, "p.khan", ROLE(PRACTITIONER), 0, 3, 0, 3);
    core_free(f->c);
    fx_start(f);
    fx_on(f, PK);
    uint64_t a = fx_raise(f, 2, "Manchester");
    uint64_t b = fx_raise(f, 2, "Manchester");
    uint64_t c = fx_raise(f, 2, "Manchester");
    fx_accept(f, PK, a);
    fx_accept(f, PK, b);
    assert_int_equal(fx_state(f, c), ST(OFFERED));
    assert_int_equal(fx_end(f, PK), CORE_E_STATE);
    assert_string_equal(core_last_error(f->c), "hand over or close your 2 incidents first");
    fx_reassign(f, SUP, a, NULL, NULL);
    fx_reassign(f, SUP, b, NULL, NULL);
    /* they came straight back to PK as offers; ending withdraws them all */
    assert_int_equal(fx_end(f, PK), CORE_OK);
    assert_int_equal(fx_state(f, a), ST(QUEUED));
    assert_int_equal(fx_state(f, c), ST(QUEUED));
    assert_int_equal(fx_last_cause(f, c), CAUSE(OFFER_WITHDRAWN));
    assert_int_equal(fx_pstate(f, PK), PST(OFF_SHIFT));
    assert_int_equal(f->c->pr[PK].missed, 0);
    assert_int_equal(fx_end(f, PK), CORE_OK); /* idempotent */
    assert_int_equal(fx_on(f, PK), CORE_OK);
    assert_int_equal(fx_on(f, PK), CORE_OK);
}

static void pause_and_resume(void **state)
{
    fx_t *f = *state;
    assert_int_equal(fx_pause(f, PK, true, "Break"), CORE_E_STATE); /* not on shift */
    fx_on(f, PK);
    uint64_t id = fx_raise(f, 2, "Manchester");
    assert_int_equal(fx_pause(f, PK, true, NULL), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "reason is required when pausing");
    fx_clear(f);
    assert_int_equal(fx_pause(f, PK, true, "Break"), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(QUEUED));
    assert_int_equal(fx_last_cause(f, id), CAUSE(OFFER_WITHDRAWN));
    assert_int_equal(fx_pstate(f, PK), PST(PAUSED));
    rec_t *r = fx_last(f, EV_STATUS);
    assert_non_null(r);
    assert_int_equal(r->ev->status->state, PST(PAUSED));
    assert_string_equal(r->ev->status->pause_reason, "Break");
    assert_true(r->aud.supervisors);
    assert_false(r->aud.police);
    assert_true(fx_aud_has(&r->aud, PK));
    f->c->pr[PK].missed = 2;
    assert_int_equal(fx_pause(f, PK, false, NULL), CORE_OK);
    assert_int_equal(f->c->pr[PK].missed, 0);
    assert_int_equal(fx_state(f, id), ST(OFFERED));
}

static void visibility_and_list(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    uint64_t a = fx_raise(f, 2, "Manchester");   /* offered to PK */
    uint64_t b = fx_raise(f, 3, "Oldham");       /* queued, nobody covers */
    Mhtas__V1__GetIncidentRequest g = MHTAS__V1__GET_INCIDENT_REQUEST__INIT;
    Mhtas__V1__GetIncidentResponse *gr = NULL;
    g.incident_id = a;
    assert_int_equal(core_get_incident(f->c, f->now, PK, &g, &gr), CORE_OK);
    protobuf_c_message_free_unpacked(&gr->base, hub_pb_allocator());
    g.incident_id = b;
    assert_int_equal(core_get_incident(f->c, f->now, PK, &g, &gr), CORE_E_NOT_FOUND);
    assert_string_equal(core_last_error(f->c), "incident 2 not found");
    assert_int_equal(core_get_incident(f->c, f->now, PS, &g, &gr), CORE_E_NOT_FOUND);
    g.incident_id = 99;
    assert_int_equal(core_get_incident(f->c, f->now, OP, &g, &gr), CORE_E_NOT_FOUND);
    /* held before: still readable after it moves on */
    fx_accept(f, PK, a);
    fx_reassign(f, SUP, a, NULL, NULL);
    fx_end(f, PK);
    g.incident_id = a;
    assert_int_equal(core_get_incident(f->c, f->now, PK, &g, &gr), CORE_OK);
    protobuf_c_message_free_unpacked(&gr->base, hub_pb_allocator());

    Mhtas__V1__ListIncidentsRequest l = MHTAS__V1__LIST_INCIDENTS_REQUEST__INIT;
    Mhtas__V1__ListIncidentsResponse *lr = NULL;
    assert_int_equal(core_list_incidents(f->c, f->now, OP, &l, &lr), CORE_OK);
    assert_int_equal(lr->n_incidents, 2);
    assert_int_equal(lr->incidents[0]->id, a);
    assert_int_equal(lr->incidents[1]->id, b);
    assert_int_equal(lr->incidents[0]->n_messages, 0);
    assert_true(lr->incidents[0]->n_history > 0);
    protobuf_c_message_free_unpacked(&lr->base, hub_pb_allocator());
    assert_int_equal(core_list_incidents(f->c, f->now, PK, &l, &lr), CORE_OK);
    assert_int_equal(lr->n_incidents, 1);
    assert_int_equal(lr->incidents[0]->id, a);
    protobuf_c_message_free_unpacked(&lr->base, hub_pb_allocator());
    l.borough = "Oldham";
    assert_int_equal(core_list_incidents(f->c, f->now, OP, &l, &lr), CORE_OK);
    assert_int_equal(lr->n_incidents, 1);
    assert_int_equal(lr->incidents[0]->id, b);
    protobuf_c_message_free_unpacked(&lr->base, hub_pb_allocator());
    l.borough = "";
    l.priority = 2;
    assert_int_equal(core_list_incidents(f->c, f->now, OP, &l, &lr), CORE_OK);
    assert_int_equal(lr->n_incidents, 1);
    protobuf_c_message_free_unpacked(&lr->base, hub_pb_allocator());
    l.priority = 0;
    l.mine_only = true;
    assert_int_equal(core_list_incidents(f->c, f->now, DISP, &l, &lr), CORE_OK);
    assert_int_equal(lr->n_incidents, 0);
    protobuf_c_message_free_unpacked(&lr->base, hub_pb_allocator());
    l.mine_only = false;
    fx_cancel(f, OP, b, "done");
    assert_int_equal(core_list_incidents(f->c, f->now, OP, &l, &lr), CORE_OK);
    assert_int_equal(lr->n_incidents, 1);
    protobuf_c_message_free_unpacked(&lr->base, hub_pb_allocator());
    l.include_closed = true;
    assert_int_equal(core_list_incidents(f->c, f->now, OP, &l, &lr), CORE_OK);
    assert_int_equal(lr->n_incidents, 2);
    protobuf_c_message_free_unpacked(&lr->base, hub_pb_allocator());
    Mhtas__V1__IncidentState st[] = { ST(CANCELLED) };
    l.include_closed = false;
    l.n_states = 1;
    l.states = st;
    assert_int_equal(core_list_incidents(f->c, f->now, OP, &l, &lr), CORE_OK);
    assert_int_equal(lr->n_incidents, 1);
    assert_int_equal(lr->incidents[0]->id, b);
    protobuf_c_message_free_unpacked(&lr->base, hub_pb_allocator());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(full_life_is_recorded, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(agree_false_queries_back, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(closed_refuses_changes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(cancel_from_each_open_state, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(decline_requeues, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(idempotent_raise, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(idempotent_accept_and_post, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(messages_rules, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(reassign_to_queue_and_named, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(end_shift_rules, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(pause_and_resume, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(visibility_and_list, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
