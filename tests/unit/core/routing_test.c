/* routing_test.c -- who is offered what: strategies, eligibility (capacity,
 * skills, area, widening, wrap-up), time-outs, presence, the queue, service
 * levels, the board and the audience of every event. */
#include "core_fixture.h"

static void restart(fx_t *f)
{
    core_free(f->c);
    fx_clear(f);
    f->last_seq = 0;
    fx_start(f);
}

static void close_it(fx_t *f, int p, uint64_t id)
{
    assert_int_equal(fx_accept(f, p, id), CORE_OK);
    assert_int_equal(fx_propose(f, p, id), CORE_OK);
    assert_int_equal(fx_agree(f, OP, id, true, NULL, NULL), CORE_OK);
}

static void strategy_linear(void **state)
{
    fx_t *f = *state;
    fx_on(f, PS);
    fx_on(f, PK);
    uint64_t a = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, a), "p.khan");
    uint64_t b = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, b), "p.smith");
}

static void strategy_leastrecent(void **state)
{
    fx_t *f = *state;
    f->cfg.strategy = CORE_STRATEGY_LEASTRECENT;
    restart(f);
    fx_on(f, PK);
    fx_on(f, PS);
    uint64_t a = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, a), "p.khan");  /* both never: lowest index */
    f->now += SEC;
    close_it(f, PK, a);
    uint64_t b = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, b), "p.smith"); /* never beats any time */
    f->now += SEC;
    close_it(f, PS, b);
    uint64_t c = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, c), "p.khan");  /* ended longest ago */
}

static void strategy_fewestcalls(void **state)
{
    fx_t *f = *state;
    f->cfg.strategy = CORE_STRATEGY_FEWESTCALLS;
    restart(f);
    fx_on(f, PK);
    fx_on(f, PS);
    uint64_t a = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, a), "p.khan");
    close_it(f, PK, a);
    uint64_t b = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, b), "p.smith");
    close_it(f, PS, b);
    uint64_t c = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, c), "p.khan");
    close_it(f, PK, c);
    uint64_t d = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, d), "p.smith");
}

static void strategy_rrmemory(void **state)
{
    fx_t *f = *state;
    f->cfg.strategy = CORE_STRATEGY_RRMEMORY;
    fx_user(f, PK, "p.khan", ROLE(PRACTITIONER), 0, 3, 0, 5);
    fx_user(f, PS, "p.smith", ROLE(PRACTITIONER), 0, 0, 0, 5);
    fx_user(f, PL, "p.lee", ROLE(PRACTITIONER), 0, 0, 1u << 1, 5);
    restart(f);
    fx_on(f, PL);
    fx_on(f, PS);
    fx_on(f, PK);
    const char *want[] = { "p.khan", "p.smith", "p.lee", "p.khan", "p.smith" };
    for (int i = 0; i < 5; i++) {
        uint64_t id = fx_raise(f, 2, "Salford");
        assert_string_equal(fx_pract(f, id), want[i]);
    }
}

static void random_run(fx_t *f, char out[8][64])
{
    restart(f);
    fx_on(f, PK);
    fx_on(f, PS);
    fx_on(f, PL);
    for (int i = 0; i < 8; i++) {
        uint64_t id = fx_raise(f, 2, "Salford");
        const char *p = fx_pract(f, id);
        assert_true(strcmp(p, "p.khan") == 0 || strcmp(p, "p.smith") == 0 || strcmp(p, "p.lee") == 0);
        snprintf(out[i], 64, "%s", p);
        assert_int_equal(fx_cancel(f, OP, id, "test"), CORE_OK);
    }
}

static void strategy_random_is_seeded(void **state)
{
    fx_t *f = *state;
    f->cfg.strategy = CORE_STRATEGY_RANDOM;
    char a[8][64], b[8][64];
    random_run(f, a);
    random_run(f, b);
    bool varied = false;
    for (int i = 0; i < 8; i++) {
        assert_string_equal(a[i], b[i]);
        varied |= strcmp(a[i], a[0]) != 0;
    }
    assert_true(varied);
}

static void strategy_ringall(void **state)
{
    fx_t *f = *state;
    f->cfg.strategy = CORE_STRATEGY_RINGALL;
    restart(f);
    fx_on(f, PK);
    fx_on(f, PS);
    fx_on(f, PL);
    fx_on(f, PO); /* Pennine: not eligible for Salford */
    fx_clear(f);
    uint64_t id = fx_raise(f, 2, "Salford");
    assert_int_equal(fx_count(f, EV_OFFER), 3);
    assert_int_equal(fx_offers_to(f, PK, id), 1);
    assert_int_equal(fx_offers_to(f, PS, id), 1);
    assert_int_equal(fx_offers_to(f, PL, id), 1);
    assert_int_equal(fx_offers_to(f, PO, id), 0);
    assert_string_equal(fx_pract(f, id), "p.khan");
    /* one declines: still ringing the others */
    assert_int_equal(fx_decline(f, PL, id, NULL), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(OFFERED));
    assert_int_equal(core__active(f->c, PL), 0);
    fx_clear(f);
    assert_int_equal(fx_accept(f, PS, id), CORE_OK);
    assert_string_equal(fx_pract(f, id), "p.smith");
    assert_int_equal(fx_notices(f, NOTICE(OFFER_WITHDRAWN)), 1);
    rec_t *r = fx_last_notice(f, NOTICE(OFFER_WITHDRAWN));
    assert_true(fx_aud_has(&r->aud, PK));
    assert_false(r->aud.police);
    assert_int_equal(core__active(f->c, PK), 0);
    /* no longer offered to PK, who may not even see it now */
    assert_int_equal(fx_accept(f, PK, id), CORE_E_NOT_FOUND);
}

static void timeout_reoffers_to_next(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    fx_on(f, PS);
    uint64_t id = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, id), "p.khan");
    assert_int_equal(core_next_deadline(f->c), f->now + 30 * SEC);
    fx_tick(f, 29 * SEC);
    assert_string_equal(fx_pract(f, id), "p.khan");
    fx_clear(f);
    fx_tick(f, SEC);
    assert_string_equal(fx_pract(f, id), "p.smith");
    /* the time-out is recorded, and PK's client told to drop it */
    Mhtas__V1__Incident *inc = fx_get(f, id);
    const Mhtas__V1__Transition *t = inc->history[inc->n_history - 2];
    assert_int_equal(t->cause, CAUSE(OFFER_TIMEOUT));
    assert_string_equal(t->practitioner, "p.khan");
    fx_put(inc);
    for (size_t i = 0; i < f->n_ev; i++)
        if (f->ev[i].ev->kind_case == EV_INCIDENT &&
            f->ev[i].ev->incident->transition->cause == CAUSE(OFFER_TIMEOUT))
            assert_true(fx_aud_has(&f->ev[i].aud, PK));
    assert_int_equal(f->c->pr[PK].missed, 1);
    /* both timed out: back to the lowest index of those who did */
    fx_tick(f, 30 * SEC);
    assert_string_equal(fx_pract(f, id), "p.khan");
    assert_int_equal(f->c->pr[PS].missed, 1);
    assert_int_equal(fx_accept(f, PK, id), CORE_OK);
    assert_int_equal(f->c->pr[PK].missed, 0);
    core_stats_t st;
    core_get_stats(f->c, f->now, &st);
    assert_int_equal(st.offer_timeouts_total, 2);
    assert_int_equal(st.offers_total, 3);
}

static void decliner_not_reoffered_while_others(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    fx_on(f, PS);
    uint64_t id = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, id), "p.khan");
    assert_int_equal(fx_decline(f, PK, id, "Need a break"), CORE_OK);
    /* PK is free and first in line, but declined: PS gets it */
    assert_string_equal(fx_pract(f, id), "p.smith");
    /* once everyone has declined, it goes round again (lowest index) */
    assert_int_equal(fx_decline(f, PS, id, NULL), CORE_OK);
    assert_string_equal(fx_pract(f, id), "p.khan");
    /* a decliner is still asked when nobody else can take it */
    uint64_t other = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, other), "p.smith");
    assert_int_equal(fx_decline(f, PS, other, NULL), CORE_OK);
    assert_string_equal(fx_pract(f, other), "p.smith"); /* PK is busy with id */
    assert_int_equal(f->c->pr[PS].missed, 0);          /* declining is not missing */
}

static void auto_pause_after_missed(void **state)
{
    fx_t *f = *state;
    f->cfg.auto_pause_after = 2;
    restart(f);
    fx_on(f, PK);
    uint64_t id = fx_raise(f, 2, "Manchester");
    fx_tick(f, 30 * SEC);
    assert_string_equal(fx_pract(f, id), "p.khan");
    assert_int_equal(fx_pstate(f, PK), PST(AVAILABLE) == fx_pstate(f, PK) ? PST(AVAILABLE) : PST(BUSY));
    fx_clear(f);
    fx_tick(f, 30 * SEC);
    assert_int_equal(fx_pstate(f, PK), PST(PAUSED));
    assert_string_equal(f->c->pr[PK].pause_reason, "auto-paused after 2 missed offers");
    assert_int_equal(fx_state(f, id), ST(QUEUED));
    rec_t *r = fx_last_notice(f, NOTICE(AUTO_PAUSED));
    assert_non_null(r);
    assert_true(r->aud.supervisors);
    assert_false(r->aud.police);
    assert_true(fx_aud_has(&r->aud, PK));
    rec_t *s = fx_last(f, EV_STATUS);
    assert_int_equal(s->ev->status->state, PST(PAUSED));
    assert_int_equal(s->ev->status->missed_offers, 2);
    /* resuming starts the count again */
    fx_pause(f, PK, false, NULL);
    assert_int_equal(f->c->pr[PK].missed, 0);
    assert_string_equal(fx_pract(f, id), "p.khan");
}

static void widening_neighbour_then_anyone(void **state)
{
    fx_t *f = *state;
    f->cfg.widen_neighbour_ms = 30 * SEC;
    f->cfg.widen_anyone_ms = 60 * SEC;
    restart(f);
    /* nobody covers Bury's provider; Bury's neighbour is Oldham (also
     * Pennine): only "anyone" reaches PS, and then without camhs */
    raise_t q;
    raise_init(&q, 3, "Bury");
    raise_flag(&q, MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_UNDER_18);
    uint64_t bury = 0;
    fx_raise_req(f, OP, &q, &bury);
    f->now += SEC;
    uint64_t oldham = fx_raise(f, 3, "Oldham"); /* neighbour Manchester */
    f->now += SEC;
    uint64_t later = fx_raise(f, 3, "Oldham");
    fx_on(f, PK);
    fx_on(f, PS);
    assert_int_equal(fx_state(f, bury), ST(QUEUED));
    assert_int_equal(fx_state(f, oldham), ST(QUEUED));
    assert_int_equal(core_next_deadline(f->c), T0 + 30 * SEC);
    fx_tick(f, 30 * SEC - 2 * SEC);           /* T0+30s: Bury widens, to Oldham's: nobody */
    assert_int_equal(fx_state(f, bury), ST(QUEUED));
    assert_int_equal(core_next_deadline(f->c), T0 + 31 * SEC);
    fx_tick(f, SEC);                          /* Oldham widens to Manchester: PK */
    assert_string_equal(fx_pract(f, oldham), "p.khan");
    fx_tick(f, SEC);                          /* the later one: PS (no skills needed) */
    assert_string_equal(fx_pract(f, later), "p.smith");
    assert_int_equal(fx_state(f, bury), ST(QUEUED));
    Mhtas__V1__Incident *inc = fx_get(f, bury);
    assert_int_equal(inc->queue_position, 1); /* kept its place */
    fx_put(inc);
    fx_cancel(f, OP, later, "dup");
    f->now = T0 + 60 * SEC;
    core_tick(f->c, f->now);
    assert_string_equal(fx_pract(f, bury), "p.smith");
    /* widening is not a transition */
    int causes[16];
    fx_causes(f, bury, causes, 16);
    for (int i = 0; causes[i] >= 0; i++)
        assert_int_not_equal(causes[i], CAUSE(WIDENED));
}

static void priority_then_wait(void **state)
{
    fx_t *f = *state;
    uint64_t a = fx_raise(f, 3, "Manchester");
    f->now += SEC;
    uint64_t b = fx_raise(f, 1, "Manchester");
    f->now += SEC;
    uint64_t c = fx_raise(f, 3, "Manchester");
    f->now += SEC;
    uint64_t d = fx_raise(f, 1, "Manchester");
    uint64_t order[] = { b, d, a, c };
    for (int i = 0; i < 4; i++) {
        Mhtas__V1__Incident *inc = fx_get(f, order[i]);
        assert_int_equal(inc->queue_position, i + 1);
        assert_int_equal(inc->expected_wait_ms, (i + 1) * 60000);
        fx_put(inc);
    }
    /* a QueueStatus for d (new), a and c (moved down) */
    rec_t *r = fx_last(f, EV_QUEUE);
    assert_non_null(r);
    assert_true(r->aud.police);
    fx_on(f, PK);
    assert_string_equal(fx_pract(f, b), "p.khan");
    fx_on(f, PS);
    assert_string_equal(fx_pract(f, d), "p.smith");
    fx_clear(f);
    f->now += 9 * SEC; /* b, raised at T0+1s, waited 11 s */
    fx_accept(f, PK, b);
    /* a moves from 3 to 2, c from 4 to 3 */
    assert_int_equal(fx_count(f, EV_QUEUE), 3);
    Mhtas__V1__Incident *inc = fx_get(f, a);
    assert_int_equal(inc->queue_position, 2);
    /* one sample of 11 s, two practitioners on shift */
    assert_int_equal(inc->expected_wait_ms, 2 * 11000 / 2);
    fx_put(inc);
}

static void prefers_last_handler(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    fx_on(f, PS);
    raise_t q;
    raise_init(&q, 2, "Manchester");
    q.p.nhs_number = "9434765919";
    q.d.person = &q.p;
    uint64_t a = 0;
    fx_raise_req(f, OP, &q, &a);
    fx_decline(f, PK, a, NULL);
    assert_string_equal(fx_pract(f, a), "p.smith");
    close_it(f, PS, a);
    uint64_t b = 0;
    fx_raise_req(f, DISP, &q, &b);
    assert_string_equal(fx_pract(f, b), "p.smith"); /* not p.khan, the linear choice */
    close_it(f, PS, b);
    /* family name (any case) and date of birth together identify them too */
    raise_t r;
    raise_init(&r, 2, "Manchester");
    r.p.family_name = "Smyth";
    r.p.date_of_birth = "1980-01-31";
    r.d.person = &r.p;
    uint64_t c = 0;
    fx_raise_req(f, OP, &r, &c);
    fx_decline(f, PK, c, NULL);
    close_it(f, PS, c);
    r.p.family_name = "SMYTH";
    uint64_t d = 0;
    fx_raise_req(f, OP, &r, &d);
    assert_string_equal(fx_pract(f, d), "p.smith");
    fx_decline(f, PS, d, NULL);
    assert_string_equal(fx_pract(f, d), "p.khan");
    fx_accept(f, PK, d);
    /* without a date of birth the name alone is not enough */
    r.p.date_of_birth = "";
    uint64_t e = 0;
    fx_raise_req(f, OP, &r, &e);
    assert_string_equal(fx_pract(f, e), "p.smith");
}

static void capacity_limits_offers(void **state)
{
    fx_t *f = *state;
    fx_on(f, PL);
    uint64_t a = fx_raise(f, 2, "Salford");
    uint64_t b = fx_raise(f, 2, "Salford");
    uint64_t c = fx_raise(f, 2, "Salford");
    assert_string_equal(fx_pract(f, a), "p.lee");
    assert_string_equal(fx_pract(f, b), "p.lee");
    assert_int_equal(fx_state(f, c), ST(QUEUED));
    assert_int_equal(fx_pstate(f, PL), PST(BUSY));
    /* PL covers Salford only */
    uint64_t m = fx_raise(f, 1, "Manchester");
    assert_int_equal(fx_state(f, m), ST(QUEUED));
    fx_cancel(f, OP, a, "x");
    assert_string_equal(fx_pract(f, c), "p.lee");
}

static void wrap_up_delays_next(void **state)
{
    fx_t *f = *state;
    f->cfg.wrap_up_ms = 20 * SEC;
    restart(f);
    fx_on(f, PK);
    uint64_t a = fx_raise(f, 2, "Manchester");
    close_it(f, PK, a);
    int64_t closed = f->now;
    assert_int_equal(fx_pstate(f, PK), PST(WRAP_UP));
    rec_t *s = fx_last(f, EV_STATUS);
    assert_int_equal(s->ev->status->state, PST(WRAP_UP));
    uint64_t b = fx_raise(f, 2, "Manchester");
    assert_int_equal(fx_state(f, b), ST(QUEUED));
    assert_int_equal(core_next_deadline(f->c), closed + 20 * SEC);
    fx_tick(f, 19 * SEC);
    assert_int_equal(fx_state(f, b), ST(QUEUED));
    fx_tick(f, SEC);
    assert_string_equal(fx_pract(f, b), "p.khan");
}

static void skills_route_under_18_to_camhs(void **state)
{
    fx_t *f = *state;
    fx_on(f, PS);
    raise_t q;
    raise_init(&q, 1, "Manchester");
    raise_flag(&q, MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_UNDER_18);
    uint64_t id = 0;
    fx_raise_req(f, OP, &q, &id);
    assert_int_equal(fx_state(f, id), ST(QUEUED));
    fx_on(f, PK);
    assert_string_equal(fx_pract(f, id), "p.khan");
}

static void disconnect_withdraws_offer(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    fx_on(f, PS);
    uint64_t id = fx_raise(f, 2, "Manchester");
    assert_string_equal(fx_pract(f, id), "p.khan");
    core_set_connected(f->c, f->now, PK, false);
    assert_string_equal(fx_pract(f, id), "p.smith");
    Mhtas__V1__Incident *inc = fx_get(f, id);
    assert_int_equal(inc->history[inc->n_history - 2]->cause, CAUSE(OFFER_WITHDRAWN));
    fx_put(inc);
    assert_int_equal(f->c->pr[PK].missed, 0);
    assert_false(core__bit(f->c->all[0]->refused, PK));
    assert_int_equal(fx_pstate(f, PK), PST(DISCONNECTED));
    /* never offered to someone offline */
    fx_decline(f, PS, id, NULL);
    assert_string_equal(fx_pract(f, id), "p.smith");
}

static void disconnect_holder_grace(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    uint64_t id = fx_raise(f, 2, "Manchester");
    fx_accept(f, PK, id);
    fx_clear(f);
    core_set_connected(f->c, f->now, PK, false);
    rec_t *r = fx_last_notice(f, NOTICE(HOLDER_DISCONNECTED));
    assert_non_null(r);
    assert_true(r->aud.police);
    assert_int_equal(r->ev->notice->incident_id, id);
    assert_non_null(strstr(r->ev->notice->text, "60 s"));
    assert_int_equal(core_next_deadline(f->c), f->now + 60 * SEC);
    fx_tick(f, 59 * SEC);
    assert_int_equal(fx_state(f, id), ST(ACCEPTED));
    core_set_connected(f->c, f->now, PK, true);
    fx_tick(f, 5 * SEC);
    assert_int_equal(fx_state(f, id), ST(ACCEPTED));
    assert_int_equal(core_next_deadline(f->c), INT64_MAX);
    core_set_connected(f->c, f->now, PK, false);
    fx_clear(f);
    fx_tick(f, 60 * SEC);
    assert_int_equal(fx_state(f, id), ST(QUEUED));
    assert_int_equal(fx_last_cause(f, id), CAUSE(GRACE_EXPIRED));
    assert_int_equal(fx_notices(f, NOTICE(HOLDER_DISCONNECTED)), 1);
    assert_int_equal(core__active(f->c, PK), 0);
    /* PK can end the shift now */
    assert_int_equal(fx_end(f, PK), CORE_OK);
}

static void nobody_on_shift_notice(void **state)
{
    fx_t *f = *state;
    uint64_t id = fx_raise(f, 2, "Manchester");
    assert_int_equal(fx_notices(f, NOTICE(NOBODY_ON_SHIFT)), 1);
    rec_t *r = fx_last_notice(f, NOTICE(NOBODY_ON_SHIFT));
    assert_true(r->aud.police);
    assert_true(r->aud.supervisors);
    assert_int_equal(r->ev->notice->incident_id, id);
    assert_string_equal(r->ev->notice->text,
                        "No practitioner is on shift: incident 1 is queued and supervisors are alerted");
    fx_tick(f, 10 * SEC);
    assert_int_equal(fx_notices(f, NOTICE(NOBODY_ON_SHIFT)), 1);
    /* someone on shift, though not for this borough: no notice */
    fx_on(f, PO);
    fx_raise(f, 2, "Manchester");
    assert_int_equal(fx_notices(f, NOTICE(NOBODY_ON_SHIFT)), 1);
}

static void sla_warning_and_breach(void **state)
{
    fx_t *f = *state;
    f->cfg.sla_ms[2] = 100 * SEC;
    f->cfg.sla_warn_percent = 80;
    restart(f);
    uint64_t id = fx_raise(f, 2, "Manchester");
    uint64_t met = fx_raise(f, 2, "Manchester");
    Mhtas__V1__Incident *inc = fx_get(f, id);
    assert_int_equal(inc->sla_deadline_ms, T0 + 100 * SEC);
    assert_false(inc->sla_breached);
    fx_put(inc);
    fx_on(f, PK);
    fx_accept(f, PK, id);  /* id accepted at once: no SLA notices for it */
    (void)met;
    /* met waits (PK is busy): its warning is the next thing due */
    assert_int_equal(core_next_deadline(f->c), T0 + 80 * SEC);
    fx_tick(f, 80 * SEC);
    assert_int_equal(fx_notices(f, NOTICE(SLA_WARNING)), 1);
    rec_t *r = fx_last_notice(f, NOTICE(SLA_WARNING));
    assert_int_equal(r->ev->notice->incident_id, met);
    assert_true(r->aud.police);
    fx_tick(f, 10 * SEC);
    assert_int_equal(fx_notices(f, NOTICE(SLA_WARNING)), 1);
    assert_int_equal(fx_notices(f, NOTICE(SLA_BREACHED)), 0);
    fx_tick(f, 10 * SEC);
    assert_int_equal(fx_notices(f, NOTICE(SLA_BREACHED)), 1);
    inc = fx_get(f, met);
    assert_true(inc->sla_breached);
    fx_put(inc);
    inc = fx_get(f, id);
    assert_false(inc->sla_breached);
    fx_put(inc);
    fx_tick(f, 100 * SEC);
    assert_int_equal(fx_notices(f, NOTICE(SLA_BREACHED)), 1);
    Mhtas__V1__GetBoardRequest g = MHTAS__V1__GET_BOARD_REQUEST__INIT;
    Mhtas__V1__GetBoardResponse *br = NULL;
    assert_int_equal(core_get_board(f->c, f->now, SUP, &g, &br), CORE_OK);
    assert_int_equal(br->board->breaches, 1);
    protobuf_c_message_free_unpacked(&br->base, hub_pb_allocator());
}

static void board_contents(void **state)
{
    fx_t *f = *state;
    fx_on(f, PS);
    fx_on(f, PK);
    uint64_t a = fx_raise(f, 1, "Manchester"); /* PK */
    f->now += 5 * SEC;
    fx_raise(f, 2, "Manchester");              /* PS */
    fx_raise(f, 2, "Oldham");                  /* queued */
    fx_accept(f, PK, a);
    fx_pause(f, PS, true, "Phone call");       /* PS's offer goes back */
    f->now += 5 * SEC;
    Mhtas__V1__GetBoardRequest g = MHTAS__V1__GET_BOARD_REQUEST__INIT;
    Mhtas__V1__GetBoardResponse *br = NULL;
    assert_int_equal(core_get_board(f->c, f->now, OP, &g, &br), CORE_E_PERM);
    assert_string_equal(core_last_error(f->c), "GetBoard is for supervisors");
    assert_int_equal(core_get_board(f->c, f->now, SUP, &g, &br), CORE_OK);
    const Mhtas__V1__Board *b = br->board;
    assert_int_equal(b->n_queue, 4);
    assert_int_equal(b->queue[0]->priority, 1);
    assert_int_equal(b->queue[0]->depth, 0);
    assert_int_equal(b->queue[1]->depth, 2);
    assert_int_equal(b->queue[1]->longest_wait_ms, 5 * SEC);
    assert_int_equal(b->longest_wait_ms, 5 * SEC);
    assert_int_equal(b->offers_outstanding, 0);
    assert_int_equal(b->on_shift, 2);
    assert_int_equal(b->n_practitioners, 4);
    assert_string_equal(b->practitioners[0]->user_id, "p.khan");
    assert_int_equal(b->practitioners[0]->state, PST(BUSY));
    assert_int_equal(b->practitioners[0]->n_holding, 1);
    assert_int_equal(b->practitioners[0]->holding[0], a);
    assert_int_equal(b->practitioners[0]->active_incidents, 1);
    assert_int_equal(b->practitioners[0]->capacity, 1);
    assert_true(b->practitioners[0]->connected);
    assert_string_equal(b->practitioners[0]->provider, "GMMH");
    assert_string_equal(b->practitioners[1]->user_id, "p.smith");
    assert_int_equal(b->practitioners[1]->state, PST(PAUSED));
    assert_string_equal(b->practitioners[1]->pause_reason, "Phone call");
    assert_int_equal(b->practitioners[2]->state, PST(OFF_SHIFT));
    assert_string_equal(b->practitioners[2]->user_id, "p.obi");
    protobuf_c_message_free_unpacked(&br->base, hub_pb_allocator());

    fx_clear(f);
    core_flush_board(f->c, f->now);
    assert_int_equal(fx_count(f, EV_BOARD), 1);
    rec_t *r = fx_last(f, EV_BOARD);
    assert_true(r->aud.supervisors);
    assert_false(r->aud.police);
    assert_int_equal(r->aud.n_users, 0);
    core_flush_board(f->c, f->now);
    assert_int_equal(fx_count(f, EV_BOARD), 1); /* nothing changed */
    fx_pause(f, PS, false, NULL);
    core_flush_board(f->c, f->now);
    assert_int_equal(fx_count(f, EV_BOARD), 2);
}

/* Every event naming an incident reaches only practitioners who were
 * offered it (the recorded offers say so); offers never reach police. */
static void audience_is_need_to_know(void **state)
{
    fx_t *f = *state;
    fx_user(f, PK, "p.khan", ROLE(PRACTITIONER), 0, 3, 0, 2);
    restart(f);
    fx_on(f, PK);
    fx_on(f, PS);
    fx_on(f, PO);
    uint64_t a = fx_raise(f, 2, "Manchester");
    uint64_t b = fx_raise(f, 2, "Oldham");
    uint64_t c = fx_raise(f, 2, "Manchester");
    fx_accept(f, PK, a);
    fx_post(f, PK, a, "advice", NULL);
    fx_post(f, OP, b, "note", NULL);
    fx_decline(f, PO, b, NULL);
    fx_tick(f, 30 * SEC);
    fx_accept(f, PK, c);
    fx_propose(f, PK, a);
    fx_agree(f, OP, a, true, NULL, NULL);
    core_set_connected(f->c, f->now, PK, false);
    fx_tick(f, 60 * SEC);
    for (size_t i = 0; i < f->n_ev; i++) {
        const Mhtas__V1__Event *ev = f->ev[i].ev;
        const core_audience_t *aud = &f->ev[i].aud;
        uint64_t id = 0;
        switch (ev->kind_case) {
        case EV_INCIDENT: id = ev->incident->incident->id; break;
        case EV_MESSAGE: id = ev->message->incident_id; break;
        case EV_QUEUE: id = ev->queue->incident_id; break;
        case EV_OFFER: id = ev->offer->incident->id; break;
        case EV_STATUS:
            assert_int_equal(aud->n_users, 1);
            assert_string_equal(f->users[aud->users[0]].id, ev->status->user_id);
            assert_false(aud->police);
            continue;
        default: continue;
        }
        if (ev->kind_case != EV_OFFER)
            assert_true(aud->police);
        for (int u = 0; u < aud->n_users; u++)
            assert_true(fx_offers_to(f, aud->users[u], id) > 0);
    }
}

static void status_events_on_change(void **state)
{
    fx_t *f = *state;
    fx_on(f, PK);
    rec_t *r = fx_last(f, EV_STATUS);
    assert_int_equal(r->ev->status->state, PST(AVAILABLE));
    assert_string_equal(r->ev->status->user_id, "p.khan");
    size_t n = fx_count(f, EV_STATUS);
    fx_on(f, PK); /* no change, no event */
    assert_int_equal(fx_count(f, EV_STATUS), n);
    uint64_t id = fx_raise(f, 2, "Manchester");
    r = fx_last(f, EV_STATUS);
    assert_int_equal(r->ev->status->state, PST(BUSY));
    assert_int_equal(r->ev->status->active_incidents, 1);
    fx_accept(f, PK, id);
    r = fx_last(f, EV_STATUS);
    assert_int_equal(r->ev->status->n_holding, 1);
    core_stats_t st;
    core_get_stats(f->c, f->now, &st);
    assert_int_equal(st.practitioners_by_state[PST(BUSY)], 1);
    assert_int_equal(st.practitioners_by_state[PST(OFF_SHIFT)], 3);
    assert_int_equal(st.incidents_by_state[ST(ACCEPTED)], 1);
    assert_int_equal(st.raised_total, 1);
    assert_int_equal(st.queue_depth, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(strategy_linear, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(strategy_leastrecent, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(strategy_fewestcalls, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(strategy_rrmemory, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(strategy_random_is_seeded, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(strategy_ringall, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(timeout_reoffers_to_next, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(decliner_not_reoffered_while_others, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(auto_pause_after_missed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(widening_neighbour_then_anyone, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(priority_then_wait, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(prefers_last_handler, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(capacity_limits_offers, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(wrap_up_delays_next, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(skills_route_under_18_to_camhs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(disconnect_withdraws_offer, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(disconnect_holder_grace, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(nobody_on_shift_notice, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(sla_warning_and_breach, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(board_contents, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(audience_is_need_to_know, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(status_events_on_change, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
