/* validate_test.c -- the rules a query and an outcome must meet: each
 * rejection and its message (naming the field, never the value). */
#include "core_fixture.h"

typedef void (*mutate_fn)(raise_t *q);

static char long_text[1100];
static char *many_callsigns[17];

static void m_no_details(raise_t *q) { q->r.details = NULL; }
static void m_no_ref(raise_t *q) { q->d.police_ref = ""; }
static void m_long_ref(raise_t *q) { q->d.police_ref = "GMP-0123456789012345678901234567890123456789012345678901234567890"; }
static void m_pri0(raise_t *q) { q->d.priority = 0; }
static void m_pri5(raise_t *q) { q->d.priority = 5; }
static void m_borough(raise_t *q) { q->d.borough = "manchester"; }
static void m_question(raise_t *q) { q->d.question = ""; }
static void m_long_concerns(raise_t *q) { q->d.concerns = long_text; }
static void m_long_place(raise_t *q) { q->d.place = long_text; }
static void m_long_name(raise_t *q) { q->p.family_name = long_text; q->d.person = &q->p; }
static void m_callsigns(raise_t *q) { q->d.callsigns = many_callsigns; q->d.n_callsigns = 17; }
static void m_callsign_long(raise_t *q)
{
    q->callsigns[0] = "MC12";
    q->callsigns[1] = "CALLSIGN-THAT-IS-FAR-TOO-LONG-FOR-A-RADIO";
    q->d.n_callsigns = 2;
}
static void m_flag(raise_t *q) { raise_flag(q, (Mhtas__V1__ConcernFlag)9); }
static void m_flag0(raise_t *q) { raise_flag(q, MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_UNSPECIFIED); }
static void m_dob(raise_t *q) { q->p.date_of_birth = "2023-02-29"; q->d.person = &q->p; }
static void m_dob_fmt(raise_t *q) { q->p.date_of_birth = "1/2/1990"; q->d.person = &q->p; }
static void m_nhs(raise_t *q) { q->p.nhs_number = "9434765918"; q->d.person = &q->p; }
static void m_nhs_short(raise_t *q) { q->p.nhs_number = "943476591"; q->d.person = &q->p; }
static void m_rcrp(raise_t *q) { q->d.rcrp = 0; }

static void raise_rejections(void **state)
{
    fx_t *f = *state;
    memset(long_text, 'x', sizeof(long_text) - 1);
    for (int i = 0; i < 17; i++)
        many_callsigns[i] = "MC1";
    struct { mutate_fn fn; const char *msg; } cases[] = {
        { m_no_details, "details are required" },
        { m_no_ref, "details.police_ref is required" },
        { m_long_ref, "details.police_ref is longer than 64 bytes" },
        { m_pri0, "details.priority must be 1 to 4" },
        { m_pri5, "details.priority must be 1 to 4" },
        { m_borough, "details.borough is unknown: not one of the configured boroughs" },
        { m_question, "details.question is required" },
        { m_long_concerns, "details.concerns is longer than 1000 bytes" },
        { m_long_place, "details.place is longer than 1000 bytes" },
        { m_long_name, "details.person.family_name is longer than 1000 bytes" },
        { m_callsigns, "details.callsigns has more than 16 entries" },
        { m_callsign_long, "details.callsigns[1] is longer than 32 bytes" },
        { m_flag, "details.flags[0] is not a known concern flag" },
        { m_flag0, "details.flags[0] is not a known concern flag" },
        { m_dob, "details.person.date_of_birth must be a valid YYYY-MM-DD date" },
        { m_dob_fmt, "details.person.date_of_birth must be a valid YYYY-MM-DD date" },
        { m_nhs, "details.person.nhs_number must be 10 digits with a valid check digit" },
        { m_nhs_short, "details.person.nhs_number must be 10 digits with a valid check digit" },
        { m_rcrp, "details.rcrp is required: record the Right Care, Right Person decision" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raise_t q;
        raise_init(&q, 2, "Manchester");
        cases[i].fn(&q);
        assert_int_equal(fx_raise_req(f, OP, &q, NULL), CORE_E_INVALID);
        assert_string_equal(core_last_error(f->c), cases[i].msg);
    }
    assert_int_equal(f->n_ev, 0);
    /* a full, valid query */
    raise_t q;
    raise_init(&q, 1, "Salford");
    q.p.family_name = "Doe";
    q.p.given_names = "Jane";
    q.p.date_of_birth = "2024-02-29";
    q.p.nhs_number = "9434765919";
    q.d.person = &q.p;
    q.callsigns[0] = "MC12";
    q.d.n_callsigns = 1;
    raise_flag(&q, MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_SELF_HARM);
    uint64_t id = 0;
    assert_int_equal(fx_raise_req(f, OP, &q, &id), CORE_OK);
    Mhtas__V1__Incident *inc = fx_get(f, id);
    assert_string_equal(inc->details->person->nhs_number, "9434765919");
    assert_string_equal(inc->details->callsigns[0], "MC12");
    assert_string_equal(inc->raised_by, "op.jones");
    fx_put(inc);
}

static void nhs_numbers_and_dates(void **state)
{
    (void)state;
    assert_true(core__nhs_number_valid("9434765919"));
    assert_false(core__nhs_number_valid("9434765918"));
    assert_true(core__nhs_number_valid("0000000000"));  /* 11 -> 0 */
    assert_false(core__nhs_number_valid("1000000010")); /* 10 -> never valid */
    assert_false(core__nhs_number_valid("1000000011"));
    assert_false(core__nhs_number_valid("943 476 5919"));
    assert_false(core__nhs_number_valid("94347659a9"));
    int y, m, d;
    assert_true(core__parse_date("2000-02-29", &y, &m, &d));
    assert_false(core__parse_date("1900-02-29", &y, &m, &d));
    assert_false(core__parse_date("2023-13-01", &y, &m, &d));
    assert_false(core__parse_date("2023-04-31", &y, &m, &d));
    assert_int_equal(core__days_from_civil(1970, 1, 1), 0);
    assert_int_equal(core__days_from_civil(2000, 3, 1), 11017);
    /* T0 is 2023-11-14 */
    assert_int_equal(core__age_at("2005-11-14", T0), 18);
    assert_int_equal(core__age_at("2005-11-15", T0), 17);
    assert_int_equal(core__age_at("1980-01-01", T0), 43);
    assert_int_equal(core__age_at("", T0), -1);
}

static void exhausted_and_roles(void **state)
{
    fx_t *f = *state;
    f->cfg.max_open_incidents = 2;
    core_free(f->c);
    fx_start(f);
    fx_raise(f, 2, "Manchester");
    uint64_t b = fx_raise(f, 2, "Manchester");
    raise_t q;
    raise_init(&q, 2, "Manchester");
    assert_int_equal(fx_raise_req(f, OP, &q, NULL), CORE_E_EXHAUSTED);
    assert_string_equal(core_last_error(f->c), "the hub already holds its maximum of 2 open incidents");
    fx_cancel(f, OP, b, "dup");
    assert_int_equal(fx_raise_req(f, OP, &q, NULL), CORE_OK);
    assert_int_equal(fx_raise_req(f, PK, &q, NULL), CORE_E_PERM);
    assert_string_equal(core_last_error(f->c), "RaiseIncident is for operators, dispatchers and supervisors");
}

/* ------------------------------------------------------------- outcomes */

typedef struct out {
    Mhtas__V1__Outcome o;
    Mhtas__V1__S136Details s;
    Mhtas__V1__OutcomeCode codes[4];
} out_t;

static void out_init(out_t *x)
{
    mhtas__v1__outcome__init(&x->o);
    mhtas__v1__s136_details__init(&x->s);
    x->o.codes = x->codes;
    x->codes[0] = OC(S136_DETENTION);
    x->o.n_codes = 1;
    x->o.s136 = &x->s;
    x->s.place_of_safety = MHTAS__V1__PLACE_OF_SAFETY__PLACE_OF_SAFETY_HEALTH_BASED;
    x->s.consulted_who = "Dr A. Nurse, AMHP";
    x->s.consulted_at_ms = T0;
}

/* Raises an incident (with the given age evidence), has PK hold it. */
static uint64_t held(fx_t *f, int flag, uint32_t age, const char *dob)
{
    raise_t q;
    raise_init(&q, 2, "Manchester");
    if (flag)
        raise_flag(&q, (Mhtas__V1__ConcernFlag)flag);
    q.p.age_years = age;
    if (dob)
        q.p.date_of_birth = (char *)dob;
    q.d.person = &q.p;
    uint64_t id = 0;
    assert_int_equal(fx_raise_req(f, OP, &q, &id), CORE_OK);
    assert_int_equal(fx_accept(f, PK, id), CORE_OK);
    return id;
}

static void outcome_rules(void **state)
{
    fx_t *f = *state;
    fx_user(f, PK, "p.khan", ROLE(PRACTITIONER), 0, 3, 0, 10);
    core_free(f->c);
    fx_start(f);
    fx_on(f, PK);
    uint64_t adult = held(f, 0, 0, "1980-01-01");
    out_t x;

    out_init(&x);
    x.o.n_codes = 0;
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "outcome.codes must name at least one outcome");
    assert_int_equal(fx_propose_o(f, PK, adult, NULL), CORE_E_INVALID);

    out_init(&x);
    x.codes[1] = (Mhtas__V1__OutcomeCode)40;
    x.o.n_codes = 2;
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "outcome.codes[1] is not a known outcome");
    x.codes[1] = OC(UNSPECIFIED);
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "outcome.codes[1] is not a known outcome");
    x.codes[1] = OC(S136_DETENTION);
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "outcome.codes[1] repeats an outcome");
    x.codes[1] = OC(S136_CONSIDERED_NOT_USED);
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c),
                        "outcome.codes cannot hold both S136_DETENTION and S136_CONSIDERED_NOT_USED");

    out_init(&x);
    x.o.s136 = NULL;
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "outcome.s136.place_of_safety is required for S136_DETENTION");
    out_init(&x);
    x.s.place_of_safety = 0;
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);

    out_init(&x);
    x.s.place_is_persons_home = true;
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);
    assert_non_null(strstr(core_last_error(f->c), "where the person lives"));

    out_init(&x);
    x.s.consulted_who = "";
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);
    assert_non_null(strstr(core_last_error(f->c), "consulted_who"));
    x.s.consulted_who = "AMHP";
    x.s.consulted_at_ms = 0;
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);
    x.s.consultation_not_practicable = true;
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_OK);

    /* adults in a police station need an inspector */
    out_init(&x);
    x.s.place_of_safety = MHTAS__V1__PLACE_OF_SAFETY__PLACE_OF_SAFETY_POLICE_STATION;
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c),
                        "outcome.s136.inspector: a police station needs an inspector's authorisation");
    x.s.inspector = "Insp. Grey";
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_OK);

    /* never a police station for under-18s, whatever says so */
    uint64_t kids[] = { held(f, MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_UNDER_18, 0, NULL), held(f, 0, 15, NULL),
                        held(f, 0, 0, "2005-11-15") };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx_propose_o(f, PK, kids[i], &x.o), CORE_E_INVALID);
        assert_string_equal(core_last_error(f->c),
                            "outcome.s136.place_of_safety: a police station is never a place of safety for under-18s");
    }
    /* eighteen today is an adult */
    uint64_t eighteen = held(f, 0, 0, "2005-11-14");
    assert_int_equal(fx_propose_o(f, PK, eighteen, &x.o), CORE_OK);

    out_init(&x);
    x.o.summary = long_text;
    memset(long_text, 'x', sizeof(long_text) - 1);
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_E_INVALID);
    assert_string_equal(core_last_error(f->c), "outcome.summary is longer than 1000 bytes");

    /* the hub says who proposed it, whatever the client claims */
    out_init(&x);
    x.codes[0] = OC(S136_CONSIDERED_NOT_USED);
    x.o.proposed_by = "someone.else";
    x.o.agreed_by = "forged";
    x.o.summary = "Considered, not used";
    assert_int_equal(fx_propose_o(f, PK, adult, &x.o), CORE_OK);
    Mhtas__V1__Incident *inc = fx_get(f, adult);
    assert_string_equal(inc->outcome->proposed_by, "p.khan");
    assert_string_equal(inc->outcome->agreed_by, "");
    assert_int_equal(inc->outcome->proposed_at_ms, f->now);
    fx_put(inc);
    /* only the holder proposes */
    fx_on(f, PS);
    assert_int_equal(fx_propose_o(f, PS, adult, &x.o), CORE_E_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(raise_rejections, fx_setup, fx_teardown),
        cmocka_unit_test(nhs_numbers_and_dates),
        cmocka_unit_test_setup_teardown(exhausted_and_roles, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(outcome_rules, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
