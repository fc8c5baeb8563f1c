/* roles_test.c -- every Hub method against every role: who is refused with
 * PERMISSION_DENIED, and that nobody else is. */
#include "core_fixture.h"

enum { M_RAISE, M_CANCEL, M_GET, M_LIST, M_START, M_END, M_AVAIL, M_ACCEPT, M_DECLINE, M_POST, M_PROPOSE,
       M_AGREE, M_REASSIGN, M_BOARD, M_COUNT };

static const char *const names[M_COUNT] = { "RaiseIncident", "CancelIncident", "GetIncident", "ListIncidents",
                                            "StartShift", "EndShift", "SetAvailability", "Accept", "Decline",
                                            "PostMessage", "ProposeOutcome", "AgreeOutcome", "Reassign",
                                            "GetBoard" };

#define POLICE ((1u << OP) | (1u << DISP) | (1u << SUP))
#define PRACT ((1u << PK) | (1u << PS))
static const unsigned allowed[M_COUNT] = {
    [M_RAISE] = POLICE, [M_CANCEL] = POLICE, [M_GET] = POLICE | PRACT, [M_LIST] = POLICE | PRACT,
    [M_START] = PRACT, [M_END] = PRACT, [M_AVAIL] = PRACT, [M_ACCEPT] = PRACT, [M_DECLINE] = PRACT,
    [M_POST] = POLICE | PRACT, [M_PROPOSE] = PRACT, [M_AGREE] = POLICE, [M_REASSIGN] = 1u << SUP,
    [M_BOARD] = 1u << SUP,
};

static int call(fx_t *f, int m, int user, uint64_t id)
{
    switch (m) {
    case M_RAISE: {
        raise_t q;
        raise_init(&q, 2, "Manchester");
        return fx_raise_req(f, user, &q, NULL);
    }
    case M_CANCEL: return fx_cancel(f, user, id, "reason");
    case M_GET: {
        Mhtas__V1__GetIncidentRequest req = MHTAS__V1__GET_INCIDENT_REQUEST__INIT;
        req.incident_id = id;
        FX_CALL(core_get_incident, Mhtas__V1__GetIncidentResponse, &req);
    }
    case M_LIST: {
        Mhtas__V1__ListIncidentsRequest req = MHTAS__V1__LIST_INCIDENTS_REQUEST__INIT;
        FX_CALL(core_list_incidents, Mhtas__V1__ListIncidentsResponse, &req);
    }
    case M_START: return fx_on(f, user);
    case M_END: return fx_end(f, user);
    case M_AVAIL: return fx_pause(f, user, true, "break");
    case M_ACCEPT: return fx_accept(f, user, id);
    case M_DECLINE: return fx_decline(f, user, id, NULL);
    case M_POST: return fx_post(f, user, id, "text", NULL);
    case M_PROPOSE: return fx_propose(f, user, id);
    case M_AGREE: return fx_agree(f, user, id, true, NULL, NULL);
    case M_REASSIGN: return fx_reassign(f, user, id, NULL, NULL);
    case M_BOARD: {
        Mhtas__V1__GetBoardRequest req = MHTAS__V1__GET_BOARD_REQUEST__INIT;
        FX_CALL(core_get_board, Mhtas__V1__GetBoardResponse, &req);
    }
    }
    return 0;
}

static void role_grid(void **state)
{
    (void)state;
    int users[] = { OP, DISP, SUP, PK, PS };
    for (int m = 0; m < M_COUNT; m++)
        for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
            fx_t *f = fx_new();
            fx_start(f);
            fx_on(f, PK);
            fx_on(f, PS);
            uint64_t id = fx_raise(f, 2, "Manchester"); /* offered to PK */
            assert_int_equal(fx_accept(f, PK, id), CORE_OK);
            int u = users[i];
            int rc = call(f, m, u, id);
            bool ok = (allowed[m] >> u) & 1;
            if (ok) {
                if (rc == CORE_E_PERM)
                    fail_msg("%s refused %s: %s", names[m], f->users[u].id, core_last_error(f->c));
            } else {
                if (rc != CORE_E_PERM)
                    fail_msg("%s allowed %s (rc %d)", names[m], f->users[u].id, rc);
                assert_non_null(strstr(core_last_error(f->c), names[m]));
            }
            fx_free(f);
        }
}

static void grpc_codes(void **state)
{
    (void)state;
    assert_int_equal(core_grpc_status(CORE_OK), 0);
    assert_int_equal(core_grpc_status(CORE_E_INVALID), 3);
    assert_int_equal(core_grpc_status(CORE_E_NOT_FOUND), 5);
    assert_int_equal(core_grpc_status(CORE_E_STATE), 9);
    assert_int_equal(core_grpc_status(CORE_E_PERM), 7);
    assert_int_equal(core_grpc_status(CORE_E_EXHAUSTED), 8);
    assert_int_equal(core_grpc_status(CORE_E_NOMEM), 8);
}

static void unknown_user_and_ids(void **state)
{
    fx_t *f = *state;
    assert_int_equal(core_user_index(f->c, "p.khan"), PK);
    assert_int_equal(core_user_index(f->c, "nobody"), -1);
    assert_int_equal(fx_post(f, 99, 1, "x", NULL), CORE_E_PERM);
    assert_int_equal(fx_post(f, -1, 1, "x", NULL), CORE_E_PERM);
    core_set_connected(f->c, f->now, 99, true); /* ignored */
    core_set_connected(f->c, f->now, OP, true); /* police presence is not tracked */
    assert_int_equal(core_last_seq(f->c), 0);
    fx_raise(f, 2, "Manchester");
    assert_int_equal(core_last_seq(f->c), f->last_seq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(role_grid),
        cmocka_unit_test(grpc_codes),
        cmocka_unit_test_setup_teardown(unknown_user_and_ids, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
