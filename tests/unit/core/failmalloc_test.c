/* failmalloc_test.c -- the core out of memory at every allocation in turn.
 *
 * A scenario (shifts, raise and route, accept, talk, propose, agree, read,
 * the board, a time-out, a disconnect) is run with the n-th allocation and
 * every later one failing, for n = 0, 1, 2 ... until a run in which nothing
 * failed. Each run must not crash, must keep the core's bookkeeping
 * consistent after every call, and must leave no allocation behind once the
 * core and every response are freed. */
#include "core_fixture.h"

static bool all_ok;

#define RUN(expr)                                                                                  \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != CORE_OK)                                                                        \
            all_ok = false;                                                                        \
        if (rc_ == CORE_E_NOMEM)                                                                   \
            assert_string_equal(core_last_error(f->c), "out of memory");                           \
        assert_int_equal(core__check(f->c), 0);                                                    \
    } while (0)

static uint64_t raise_one(fx_t *f, const char *key)
{
    raise_t q;
    raise_init(&q, 2, "Manchester");
    q.p.family_name = "Doe";
    q.p.date_of_birth = "1990-05-05";
    q.d.person = &q.p;
    q.r.idempotency_key = (char *)key;
    raise_flag(&q, MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_SELF_HARM);
    uint64_t id = 0;
    RUN(fx_raise_req(f, OP, &q, &id));
    return id;
}

static void scenario(fx_t *f)
{
    RUN(fx_on(f, PK));
    RUN(fx_on(f, PS));
    uint64_t a = raise_one(f, "k1");
    if (a == 0) /* a retry with the same key finds it if it was raised */
        a = raise_one(f, "k1");
    uint64_t b = raise_one(f, "k2");
    if (a == 0)
        a = 1;
    if (b == 0)
        b = 2;
    RUN(fx_accept(f, PK, a));
    RUN(fx_post(f, PK, a, "Known to the crisis team", "c1"));
    RUN(fx_post(f, OP, a, "Thanks", NULL));
    RUN(fx_propose(f, PK, a));
    RUN(fx_agree(f, OP, a, false, "Home?", NULL));
    RUN(fx_propose(f, PK, a));
    RUN(fx_agree(f, OP, a, true, NULL, "close"));
    RUN(fx_decline(f, PS, b, "busy"));
    fx_tick(f, 30 * SEC);
    core_set_connected(f->c, f->now, PS, false);
    assert_int_equal(core__check(f->c), 0);
    RUN(fx_pause(f, PK, true, "Break"));
    RUN(fx_reassign(f, SUP, b, "p.khan", "direct"));
    RUN(fx_cancel(f, OP, b, "Resolved"));
    Mhtas__V1__Incident *inc = NULL;
    Mhtas__V1__GetIncidentRequest g = MHTAS__V1__GET_INCIDENT_REQUEST__INIT;
    g.incident_id = a;
    Mhtas__V1__GetIncidentResponse *gr = NULL;
    RUN(core_get_incident(f->c, f->now, OP, &g, &gr));
    if (gr)
        protobuf_c_message_free_unpacked(&gr->base, hub_pb_allocator());
    (void)inc;
    Mhtas__V1__ListIncidentsRequest l = MHTAS__V1__LIST_INCIDENTS_REQUEST__INIT;
    l.include_closed = true;
    Mhtas__V1__ListIncidentsResponse *lr = NULL;
    RUN(core_list_incidents(f->c, f->now, SUP, &l, &lr));
    if (lr)
        protobuf_c_message_free_unpacked(&lr->base, hub_pb_allocator());
    Mhtas__V1__GetBoardRequest br = MHTAS__V1__GET_BOARD_REQUEST__INIT;
    Mhtas__V1__GetBoardResponse *bresp = NULL;
    RUN(core_get_board(f->c, f->now, SUP, &br, &bresp));
    if (bresp)
        protobuf_c_message_free_unpacked(&bresp->base, hub_pb_allocator());
    core_flush_board(f->c, f->now);
    if (f->c->lost_events)
        all_ok = false;
}

static void every_allocation_fails_in_turn(void **state)
{
    (void)state;
    long n;
    for (n = 0; n < 100000; n++) {
        fx_t *f = fx_new();
        f->gaps_ok = true;
        all_ok = true;
        hub_alloc_fail_after(n);
        f->c = core_new(&f->cfg, fx_record, f, 1);
        if (f->c == NULL) {
            hub_alloc_fail_after(-1);
            fx_free(f);
            continue;
        }
        scenario(f);
        hub_alloc_fail_after(-1);
        fx_free(f); /* checks hub_alloc_live() is back where it started */
        if (all_ok)
            break;
    }
    assert_true(n > 10);
    print_message("failmalloc: %ld runs\n", n + 1);
}

/* The same scenario without failures produces complete state: a sanity
 * check that the loop above ended because it succeeded. */
static void scenario_succeeds(void **state)
{
    fx_t *f = *state;
    all_ok = true;
    scenario(f);
    assert_true(all_ok);
    assert_int_equal(fx_state(f, 1), ST(CLOSED));
    assert_int_equal(fx_state(f, 2), ST(CANCELLED));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(scenario_succeeds, fx_setup, fx_teardown),
        cmocka_unit_test(every_allocation_fails_in_turn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
