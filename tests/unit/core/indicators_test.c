/* indicators_test.c -- the figures the service is judged by, on hand-built
 * incident snapshots whose answers are worked out by hand, and through
 * GetIndicators on a live core (supervisors only). */
#include "core_fixture.h"

#define MIN (60 * SEC)
#define DAY (86400 * SEC)

typedef struct hi {
    Mhtas__V1__Incident inc;
    Mhtas__V1__IncidentDetails d;
    Mhtas__V1__Person p;
    Mhtas__V1__Transition t[8];
    Mhtas__V1__Transition *tp[8];
    Mhtas__V1__Outcome o;
    Mhtas__V1__S136Details s;
    Mhtas__V1__OutcomeCode codes[4];
} hi_t;

static hi_t H[64];
static const Mhtas__V1__Incident *HP[64];
static size_t nh;

static void reset(void)
{
    memset(H, 0, sizeof(H));
    nh = 0;
}

static void tr(hi_t *h, Mhtas__V1__Cause cause, int64_t at)
{
    size_t i = h->inc.n_history++;
    mhtas__v1__transition__init(&h->t[i]);
    h->t[i].cause = cause;
    h->t[i].at_ms = at;
    h->t[i].seq = (uint64_t)(nh * 10 + i);
    h->tp[i] = &h->t[i];
}

static hi_t *mk(int pri, int64_t raised, Mhtas__V1__IncidentState state)
{
    hi_t *h = &H[nh];
    HP[nh] = &h->inc;
    nh++;
    mhtas__v1__incident__init(&h->inc);
    mhtas__v1__incident_details__init(&h->d);
    mhtas__v1__person__init(&h->p);
    h->inc.id = nh;
    h->inc.details = &h->d;
    h->d.priority = (Mhtas__V1__Priority)pri;
    h->inc.raised_at_ms = raised;
    h->inc.updated_at_ms = raised;
    h->inc.state = state;
    h->inc.history = h->tp;
    tr(h, CAUSE(RAISED), raised);
    tr(h, CAUSE(QUEUED), raised);
    return h;
}

static void accepted(hi_t *h, int64_t after)
{
    tr(h, CAUSE(ACCEPTED), h->inc.raised_at_ms + after);
}

static void outcome(hi_t *h, Mhtas__V1__IncidentState state, int64_t after, int n, ...)
{
    mhtas__v1__outcome__init(&h->o);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        h->codes[i] = (Mhtas__V1__OutcomeCode)va_arg(ap, int);
    va_end(ap);
    h->o.n_codes = (size_t)n;
    h->o.codes = h->codes;
    h->inc.outcome = &h->o;
    h->inc.state = state;
    tr(h, CAUSE(OUTCOME_PROPOSED), h->inc.raised_at_ms + after - SEC);
    if (state == ST(CLOSED))
        tr(h, CAUSE(OUTCOME_AGREED), h->inc.raised_at_ms + after);
}

static void s136(hi_t *h, const char *who, int64_t at, bool not_practicable)
{
    mhtas__v1__s136_details__init(&h->s);
    h->s.place_of_safety = MHTAS__V1__PLACE_OF_SAFETY__PLACE_OF_SAFETY_HEALTH_BASED;
    if (who)
        h->s.consulted_who = (char *)who;
    h->s.consulted_at_ms = at;
    h->s.consultation_not_practicable = not_practicable;
    h->o.s136 = &h->s;
}

static void cancelled(hi_t *h, int64_t after)
{
    h->inc.state = ST(CANCELLED);
    tr(h, CAUSE(CANCELLED), h->inc.raised_at_ms + after);
    h->inc.updated_at_ms = h->inc.raised_at_ms + after;
}

static void person(hi_t *h, const char *nhs, const char *family, const char *dob)
{
    h->d.person = &h->p;
    if (nhs)
        h->p.nhs_number = (char *)nhs;
    if (family)
        h->p.family_name = (char *)family;
    if (dob)
        h->p.date_of_birth = (char *)dob;
}

static const int64_t SLA[5] = { 0, 30 * SEC, 60 * SEC, 0, 0 };

static Mhtas__V1__Indicators *compute(int64_t from, int64_t to, int64_t now)
{
    Mhtas__V1__Indicators *r = NULL;
    assert_int_equal(core_compute_indicators(HP, nh, from, to, now, SLA, &r), CORE_OK);
    assert_non_null(r);
    assert_int_equal(r->n_by_priority, 4);
    return r;
}

static void put(Mhtas__V1__Indicators *r)
{
    protobuf_c_message_free_unpacked(&r->base, hub_pb_allocator());
}

static const Mhtas__V1__PriorityIndicators *pri(const Mhtas__V1__Indicators *r, int p)
{
    assert_int_equal(r->by_priority[p - 1]->priority, p);
    return r->by_priority[p - 1];
}

/* ------------------------------------------------------------------ tests */

static void times_and_service_level(void **state)
{
    (void)state;
    size_t live0 = hub_alloc_live();
    reset();
    int64_t now = T0 + DAY;
    /* Priority 2 (service level 60 s): accepted after 10, 20 ... 100 s. */
    for (int i = 1; i <= 10; i++) {
        hi_t *h = mk(2, T0 + i * MIN, ST(ACCEPTED));
        accepted(h, i * 10 * SEC);
        if (i <= 4)
            tr(h, CAUSE(FIRST_ADVICE), h->inc.raised_at_ms + i * 20 * SEC);
    }
    /* Never accepted: waiting past its deadline (counts, late), waiting
     * within it (does not count yet), cancelled before the deadline (never
     * counts), cancelled after it (counts, late). */
    mk(2, now - 120 * SEC, ST(QUEUED));
    mk(2, now - 10 * SEC, ST(QUEUED));
    cancelled(mk(2, T0 + 20 * MIN, ST(QUEUED)), 30 * SEC);
    cancelled(mk(2, T0 + 21 * MIN, ST(QUEUED)), 90 * SEC);
    /* Priority 1 (30 s): accepted after 5, 1, 3 s; one first advice. */
    hi_t *h = mk(1, T0 + 30 * MIN, ST(ADVISING));
    accepted(h, 5 * SEC);
    tr(h, CAUSE(FIRST_ADVICE), h->inc.raised_at_ms + 10 * SEC);
    accepted(mk(1, T0 + 31 * MIN, ST(ACCEPTED)), 1 * SEC);
    accepted(mk(1, T0 + 32 * MIN, ST(ACCEPTED)), 3 * SEC);
    /* Priority 4 has no service level. */
    accepted(mk(4, T0 + 33 * MIN, ST(ACCEPTED)), 10 * SEC);
    /* Accepted twice (re-queued in between): the first accept counts. */
    h = mk(1, T0 + 34 * MIN, ST(ACCEPTED));
    accepted(h, 20 * SEC);
    tr(h, CAUSE(GRACE_EXPIRED), h->inc.raised_at_ms + 80 * SEC);
    accepted(h, 100 * SEC);

    Mhtas__V1__Indicators *r = compute(T0, 0, now);
    assert_int_equal(r->from_ms, T0);
    assert_int_equal(r->to_ms, now);
    assert_int_equal(r->raised, 19);
    assert_int_equal(r->cancelled, 2);
    assert_int_equal(r->closed, 0);

    const Mhtas__V1__PriorityIndicators *p2 = pri(r, 2);
    assert_int_equal(p2->raised, 14);
    assert_int_equal(p2->to_accept->count, 10);
    assert_int_equal(p2->to_accept->p50_ms, 50 * SEC);   /* rank ceil(5) */
    assert_int_equal(p2->to_accept->p95_ms, 100 * SEC);  /* rank ceil(9.5) = 10 */
    assert_int_equal(p2->to_first_advice->count, 4);
    assert_int_equal(p2->to_first_advice->p50_ms, 40 * SEC); /* 20 40 60 80: rank 2 */
    assert_int_equal(p2->to_first_advice->p95_ms, 80 * SEC);
    assert_int_equal(p2->to_outcome->count, 0);
    assert_int_equal(p2->to_outcome->p50_ms, 0);
    assert_int_equal(p2->within_sla, 6);       /* 10 ... 60 s: at the deadline is within */
    assert_int_equal(p2->sla_applicable, 12);  /* 10 accepted + 1 late waiting + 1 late cancelled */

    const Mhtas__V1__PriorityIndicators *p1 = pri(r, 1);
    assert_int_equal(p1->raised, 4);
    assert_int_equal(p1->to_accept->count, 4);
    assert_int_equal(p1->to_accept->p50_ms, 3 * SEC);  /* 1 3 5 20: rank 2 */
    assert_int_equal(p1->to_accept->p95_ms, 20 * SEC);
    assert_int_equal(p1->to_first_advice->count, 1);
    assert_int_equal(p1->to_first_advice->p50_ms, 10 * SEC);
    assert_int_equal(p1->to_first_advice->p95_ms, 10 * SEC);
    assert_int_equal(p1->within_sla, 4);
    assert_int_equal(p1->sla_applicable, 4);

    assert_int_equal(pri(r, 3)->raised, 0);
    assert_int_equal(pri(r, 3)->to_accept->count, 0);
    const Mhtas__V1__PriorityIndicators *p4 = pri(r, 4);
    assert_int_equal(p4->raised, 1);
    assert_int_equal(p4->to_accept->count, 1);
    assert_int_equal(p4->sla_applicable, 0);
    assert_true(r->share_within_sla > 10.0 / 16 - 1e-9 && r->share_within_sla < 10.0 / 16 + 1e-9);
    /* Nothing closed: the shares are 0, not NaN. */
    assert_true(r->share_diverted == 0.0);
    assert_true(r->share_s136_with_consultation == 0.0);
    assert_int_equal(r->n_outcomes, 0);
    put(r);

    /* Later, the one still waiting within its deadline is late too. */
    r = compute(T0, 0, now + 60 * SEC);
    assert_int_equal(pri(r, 2)->sla_applicable, 13);
    put(r);
    assert_int_equal(hub_alloc_live(), live0);
}

static void s136_diversion_and_outcomes(void **state)
{
    (void)state;
    reset();
    int64_t now = T0 + DAY;
    hi_t *h;
    /* Three detentions: consulted (who and when), consultation not
     * practicable (not counted as with consultation: see indicators.c), and
     * a name without a time (not a recorded consultation). */
    h = mk(2, T0, ST(ACCEPTED));
    accepted(h, 10 * SEC);
    outcome(h, ST(CLOSED), 300 * SEC, 1, OC(S136_DETENTION));
    s136(h, "Dr Patel", T0 + 60 * SEC, false);
    h = mk(2, T0 + MIN, ST(ACCEPTED));
    accepted(h, 10 * SEC);
    outcome(h, ST(CLOSED), 200 * SEC, 2, OC(S136_DETENTION), OC(AMBULANCE_REQUESTED));
    s136(h, NULL, 0, true);
    h = mk(2, T0 + 2 * MIN, ST(ACCEPTED));
    accepted(h, 10 * SEC);
    outcome(h, ST(CLOSED), 100 * SEC, 2, OC(S136_DETENTION), OC(NO_FURTHER_POLICE_ACTION));
    s136(h, "Dr Patel", 0, false);
    /* Diversion: yes, no (arrest), yes; a proposal not yet agreed: nothing. */
    h = mk(3, T0 + 3 * MIN, ST(ACCEPTED));
    accepted(h, 10 * SEC);
    outcome(h, ST(CLOSED), 400 * SEC, 2, OC(NO_POLICE_ATTENDANCE), OC(REFER_CRISIS_TEAM));
    h = mk(3, T0 + 4 * MIN, ST(ACCEPTED));
    accepted(h, 10 * SEC);
    outcome(h, ST(CLOSED), 500 * SEC, 2, OC(NO_FURTHER_POLICE_ACTION), OC(ARREST_CRIMINAL_MATTER));
    h = mk(3, T0 + 5 * MIN, ST(ACCEPTED));
    accepted(h, 10 * SEC);
    outcome(h, ST(CLOSED), 600 * SEC, 2, OC(ADVICE_ONLY), OC(NO_FURTHER_POLICE_ACTION));
    h = mk(3, T0 + 6 * MIN, ST(ACCEPTED));
    accepted(h, 10 * SEC);
    outcome(h, ST(OUTCOME_PROPOSED), 600 * SEC, 1, OC(NO_POLICE_ATTENDANCE));
    /* Out of the range: counts nowhere. */
    h = mk(2, T0 - MIN, ST(ACCEPTED));
    accepted(h, 10 * SEC);
    outcome(h, ST(CLOSED), 100 * SEC, 1, OC(NO_POLICE_ATTENDANCE));

    Mhtas__V1__Indicators *r = compute(T0, 0, now);
    assert_int_equal(r->raised, 7);
    assert_int_equal(r->closed, 6);
    assert_int_equal(r->s136_detentions, 3);
    assert_int_equal(r->s136_with_consultation, 1);
    assert_true(r->share_s136_with_consultation > 1.0 / 3 - 1e-9 && r->share_s136_with_consultation < 1.0 / 3 + 1e-9);
    assert_int_equal(r->diverted_from_police, 2);
    assert_true(r->share_diverted > 2.0 / 6 - 1e-9 && r->share_diverted < 2.0 / 6 + 1e-9);
    assert_int_equal(pri(r, 2)->to_outcome->count, 3);
    assert_int_equal(pri(r, 2)->to_outcome->p50_ms, 200 * SEC);
    assert_int_equal(pri(r, 2)->to_outcome->p95_ms, 300 * SEC);
    assert_int_equal(pri(r, 3)->to_outcome->count, 3);

    static const struct { int code, count; } want[] = {
        { OC(S136_DETENTION), 3 },     { OC(AMBULANCE_REQUESTED), 1 }, { OC(REFER_CRISIS_TEAM), 1 },
        { OC(ADVICE_ONLY), 1 },        { OC(NO_POLICE_ATTENDANCE), 1 }, { OC(NO_FURTHER_POLICE_ACTION), 3 },
        { OC(ARREST_CRIMINAL_MATTER), 1 },
    };
    assert_int_equal(r->n_outcomes, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < r->n_outcomes; i++) {
        assert_int_equal(r->outcomes[i]->code, want[i].code);
        assert_int_equal(r->outcomes[i]->count, want[i].count);
    }
    put(r);
}

static void repeat_contacts(void **state)
{
    (void)state;
    reset();
    int64_t now = T0 + 200 * DAY;
    /* By NHS number: day 0, day 30 (a repeat: 30 days is within), day 61
     * (31 days after the last: not). */
    person(mk(3, T0, ST(QUEUED)), "9434765919", "Other", "1970-01-01");
    person(mk(3, T0 + 30 * DAY, ST(QUEUED)), "9434765919", NULL, NULL);
    person(mk(3, T0 + 61 * DAY, ST(QUEUED)), "9434765919", NULL, NULL);
    /* By family name (any case) and date of birth: day 1; day 32 (31 days,
     * not); day 33 (1 day after, a repeat). */
    person(mk(3, T0 + 1 * DAY, ST(QUEUED)), NULL, "Doe", "1980-01-01");
    person(mk(3, T0 + 32 * DAY, ST(QUEUED)), NULL, "DOE", "1980-01-01");
    person(mk(3, T0 + 33 * DAY, ST(QUEUED)), NULL, "doe", "1980-01-01");
    /* The same name, another date of birth: another person. */
    person(mk(3, T0 + 34 * DAY, ST(QUEUED)), NULL, "Doe", "1981-01-01");
    /* The earlier contact is before the range: still a repeat. */
    person(mk(3, T0 - 10 * DAY, ST(QUEUED)), NULL, "Smith", "1990-09-09");
    person(mk(3, T0 + 5 * DAY, ST(QUEUED)), NULL, "Smith", "1990-09-09");
    /* A name alone identifies nobody. */
    person(mk(3, T0 + 6 * DAY, ST(QUEUED)), NULL, "Smith", NULL);
    person(mk(3, T0 + 7 * DAY, ST(QUEUED)), NULL, "Smith", NULL);
    /* Two at the same moment: the later id repeats. */
    person(mk(3, T0 + 2 * DAY, ST(QUEUED)), "9990000018", NULL, NULL);
    person(mk(3, T0 + 2 * DAY, ST(QUEUED)), "9990000018", NULL, NULL);
    mk(3, T0 + 3 * DAY, ST(QUEUED)); /* nobody known */

    Mhtas__V1__Indicators *r = compute(T0, 0, now);
    assert_int_equal(r->raised, 13);
    assert_int_equal(r->persons_identified, 10);
    assert_int_equal(r->repeat_contacts_30d, 4);
    put(r);

    /* Only the later half of the range: the earlier contacts still count. */
    r = compute(T0 + 30 * DAY, 0, now);
    assert_int_equal(r->raised, 5);
    assert_int_equal(r->persons_identified, 5);
    assert_int_equal(r->repeat_contacts_30d, 2);
    put(r);
}

static void date_range(void **state)
{
    (void)state;
    reset();
    int64_t t1 = T0 + 10 * DAY;
    mk(2, T0 - 1, ST(QUEUED));
    mk(2, T0, ST(QUEUED));
    mk(2, T0 + DAY, ST(QUEUED));
    mk(2, t1 - 1, ST(QUEUED));
    mk(2, t1, ST(QUEUED));
    Mhtas__V1__Indicators *r = compute(T0, t1, t1 + DAY);
    assert_int_equal(r->raised, 3); /* [from, to) */
    assert_int_equal(r->to_ms, t1);
    put(r);
    r = compute(T0, 0, t1); /* to 0: until now */
    assert_int_equal(r->raised, 3);
    put(r);
    r = compute(0, 0, t1 + 1); /* from 0: from the beginning */
    assert_int_equal(r->raised, 5);
    put(r);
    r = compute(T0, T0, t1); /* an empty range */
    assert_int_equal(r->raised, 0);
    put(r);
    Mhtas__V1__Indicators *bad = NULL;
    assert_int_equal(core_compute_indicators(HP, nh, t1, T0, t1, SLA, &bad), CORE_E_INVALID);
    assert_null(bad);
    assert_int_equal(core_compute_indicators(NULL, 0, 0, 0, t1, SLA, &bad), CORE_OK);
    assert_int_equal(bad->raised, 0);
    put(bad);
}

static void compute_out_of_memory(void **state)
{
    (void)state;
    s136_diversion_and_outcomes(state);
    person(mk(3, T0 + DAY, ST(QUEUED)), NULL, "Doe", "1980-01-01");
    person(mk(3, T0 + 2 * DAY, ST(QUEUED)), NULL, "Doe", "1980-01-01");
    size_t live0 = hub_alloc_live();
    long n;
    for (n = 0; n < 10000; n++) {
        Mhtas__V1__Indicators *r = NULL;
        hub_alloc_fail_after(n);
        int rc = core_compute_indicators(HP, nh, T0, 0, T0 + 10 * DAY, SLA, &r);
        hub_alloc_fail_after(-1);
        if (rc == CORE_OK) {
            assert_int_equal(r->repeat_contacts_30d, 1);
            put(r);
            break;
        }
        assert_int_equal(rc, CORE_E_NOMEM);
        assert_null(r);
        assert_int_equal(hub_alloc_live(), live0);
    }
    assert_true(n > 10);
    assert_int_equal(hub_alloc_live(), live0);
}

/* ------------------------------------------------------- through the core */

static int get(fx_t *f, int user, int64_t from, int64_t to, Mhtas__V1__GetIndicatorsResponse **resp)
{
    Mhtas__V1__GetIndicatorsRequest req = MHTAS__V1__GET_INDICATORS_REQUEST__INIT;
    req.from_ms = from;
    req.to_ms = to;
    *resp = NULL;
    return core_get_indicators(f->c, f->now, user, &req, resp);
}

static void get_indicators_for_supervisors(void **state)
{
    fx_t *f = *state;
    Mhtas__V1__GetIndicatorsResponse *resp;
    for (int u = 0; u < NUSERS; u++) {
        if (u == SUP)
            continue;
        assert_int_equal(get(f, u, 0, 0, &resp), CORE_E_PERM);
        assert_null(resp);
        assert_non_null(strstr(core_last_error(f->c), "supervisors"));
    }
    assert_int_equal(get(f, 99, 0, 0, &resp), CORE_E_PERM);
    assert_int_equal(get(f, SUP, T0 + 10, T0, &resp), CORE_E_INVALID);
    assert_null(resp);
    assert_int_equal(get(f, SUP, 0, 0, &resp), CORE_OK);
    assert_int_equal(resp->indicators->raised, 0);
    protobuf_c_message_free_unpacked(&resp->base, hub_pb_allocator());
}

static void get_indicators_live(void **state)
{
    (void)state;
    fx_t *f = fx_new();
    f->cfg.sla_ms[2] = 60 * SEC;
    fx_start(f);
    assert_int_equal(fx_on(f, PK), CORE_OK);
    uint64_t a = fx_raise(f, 2, "Manchester");
    f->now += 20 * SEC;
    assert_int_equal(fx_accept(f, PK, a), CORE_OK);
    f->now += 10 * SEC;
    assert_int_equal(fx_post(f, PK, a, "Advice", NULL), CORE_OK);
    assert_int_equal(fx_propose(f, PK, a), CORE_OK);
    f->now += 30 * SEC;
    assert_int_equal(fx_agree(f, OP, a, true, NULL, NULL), CORE_OK);
    uint64_t b = fx_raise(f, 2, "Manchester");
    f->now += 5 * SEC;
    assert_int_equal(fx_cancel(f, OP, b, "Resolved"), CORE_OK);
    f->now += 5 * SEC;
    fx_raise(f, 2, "Oldham"); /* nobody for Oldham: waiting */
    f->now += 61 * SEC;

    Mhtas__V1__GetIndicatorsResponse *resp;
    assert_int_equal(get(f, SUP, T0, 0, &resp), CORE_OK);
    const Mhtas__V1__Indicators *r = resp->indicators;
    assert_int_equal(r->to_ms, f->now);
    assert_int_equal(r->raised, 3);
    assert_int_equal(r->closed, 1);
    assert_int_equal(r->cancelled, 1);
    const Mhtas__V1__PriorityIndicators *p2 = r->by_priority[1];
    assert_int_equal(p2->to_accept->count, 1);
    assert_int_equal(p2->to_accept->p50_ms, 20 * SEC);
    assert_int_equal(p2->to_first_advice->p50_ms, 30 * SEC);
    assert_int_equal(p2->to_outcome->p50_ms, 60 * SEC);
    assert_int_equal(p2->within_sla, 1);
    assert_int_equal(p2->sla_applicable, 2); /* the Oldham one is late */
    assert_true(r->share_within_sla == 0.5);
    assert_int_equal(r->diverted_from_police, 1); /* REFER_CRISIS_TEAM + NFPA */
    protobuf_c_message_free_unpacked(&resp->base, hub_pb_allocator());

    /* A range that ends before everything. */
    assert_int_equal(get(f, SUP, 1, T0, &resp), CORE_OK);
    assert_int_equal(resp->indicators->raised, 0);
    protobuf_c_message_free_unpacked(&resp->base, hub_pb_allocator());
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(times_and_service_level),
        cmocka_unit_test(s136_diversion_and_outcomes),
        cmocka_unit_test(repeat_contacts),
        cmocka_unit_test(date_range),
        cmocka_unit_test(compute_out_of_memory),
        cmocka_unit_test_setup_teardown(get_indicators_for_supervisors, fx_setup, fx_teardown),
        cmocka_unit_test(get_indicators_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
