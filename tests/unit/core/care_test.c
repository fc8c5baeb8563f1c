/* care_test.c -- the care-record access rules (core_check_care_access,
 * core_check_share), audit events and the share message: the whole grid of
 * roles and methods, another practitioner's incident, break-glass, the
 * incident's states, validation, and what the events carry. */
#include "core_fixture.h"

#define EV_AUDIT MHTAS__V1__EVENT__KIND_AUDIT
#define BASIS(x) MHTAS__V1__LAWFUL_BASIS__LAWFUL_BASIS_##x
#define BG(x) MHTAS__V1__BREAK_GLASS_REASON__BREAK_GLASS_REASON_##x
#define PART(x) MHTAS__V1__CARE_PART__CARE_PART_##x
#define ACTION(x) MHTAS__V1__AUDIT_ACTION__AUDIT_ACTION_##x

static const char NHS[] = "9434765919";

static core_care_access_t held(uint64_t id)
{
    return (core_care_access_t){ .incident_id = id, .lawful_basis = BASIS(DIRECT_CARE), .reason = "advising" };
}

static core_care_access_t glass(uint64_t id)
{
    core_care_access_t a = held(id);
    a.lawful_basis = BASIS(VITAL_INTERESTS);
    a.break_glass = true;
    a.break_glass_reason = BG(RISK_TO_LIFE);
    a.break_glass_text = "Colleague unreachable, person on a bridge";
    return a;
}

typedef struct share {
    Mhtas__V1__ShareWithPoliceRequest r;
    Mhtas__V1__CarePart parts[4];
} share_t;

static void share_init(share_t *s, uint64_t id)
{
    memset(s, 0, sizeof *s);
    mhtas__v1__share_with_police_request__init(&s->r);
    s->r.incident_id = id;
    s->r.nhs_number = (char *)"943 476 5919";
    s->parts[0] = PART(RISKS);
    s->parts[1] = PART(CRISIS_PLAN);
    s->r.parts = s->parts;
    s->r.n_parts = 2;
    s->r.summary = (char *)"Known to the crisis team; calm approach, one officer speaking.";
    s->r.lawful_basis = BASIS(VITAL_INTERESTS);
    s->r.reason = (char *)"officers at scene need to know how to approach";
}

/* PK holds an accepted incident; PS and PO are on shift, with nothing. */
static uint64_t held_by_pk(fx_t *f)
{
    assert_int_equal(fx_on(f, PK), CORE_OK);
    uint64_t id = fx_raise(f, 2, "Manchester"); /* linear: offered to PK */
    assert_int_equal(fx_accept(f, PK, id), CORE_OK);
    assert_int_equal(fx_on(f, PS), CORE_OK);
    assert_int_equal(fx_on(f, PO), CORE_OK);
    return id;
}

static int share(fx_t *f, int user, share_t *s, uint64_t disclosure, Mhtas__V1__ShareWithPoliceResponse **out)
{
    Mhtas__V1__ShareWithPoliceResponse *r = NULL;
    int rc = core_share_post(f->c, f->now, user, &s->r, disclosure, &r);
    if (out)
        *out = r;
    else if (r)
        protobuf_c_message_free_unpacked(&r->base, hub_pb_allocator());
    assert_int_equal(core__check(f->c), 0);
    return rc;
}

/* Every role against every care method: police never, the holder yes,
 * another practitioner's incident NOT_FOUND unless they break the glass
 * (and a share never breaks the glass). */
static void role_grid(void **state)
{
    (void)state;
    const int users[] = { OP, DISP, SUP, PK, PS, PO };
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        fx_t *f = fx_new();
        fx_start(f);
        uint64_t id = held_by_pk(f);
        int u = users[i];
        bool police = u == OP || u == DISP || u == SUP;
        core_care_access_t a = held(id), g = glass(id), g0 = glass(0);
        int rc_held = core_check_care_access(f->c, f->now, u, &a);
        int rc_glass = core_check_care_access(f->c, f->now, u, &g);
        int rc_glass0 = core_check_care_access(f->c, f->now, u, &g0);
        share_t s;
        share_init(&s, id);
        int rc_share = core_check_share(f->c, f->now, u, &s.r);
        int rc_post = share(f, u, &s, 7, NULL);
        if (police) {
            assert_int_equal(rc_held, CORE_E_PERM);
            assert_int_equal(rc_glass, CORE_E_PERM);
            assert_int_equal(rc_glass0, CORE_E_PERM);
            assert_int_equal(rc_share, CORE_E_PERM);
            assert_int_equal(rc_post, CORE_E_PERM);
            assert_non_null(strstr(core_last_error(f->c), "practitioners only"));
        } else if (u == PK) {
            assert_int_equal(rc_held, CORE_OK);
            assert_int_equal(rc_glass, CORE_OK);
            assert_int_equal(rc_glass0, CORE_OK);
            assert_int_equal(rc_share, CORE_OK);
            assert_int_equal(rc_post, CORE_OK);
        } else {
            /* another practitioner's incident: as if it did not exist */
            assert_int_equal(rc_held, CORE_E_NOT_FOUND);
            assert_int_equal(rc_share, CORE_E_NOT_FOUND);
            assert_int_equal(rc_post, CORE_E_NOT_FOUND);
            assert_int_equal(rc_glass, CORE_OK);
            assert_int_equal(rc_glass0, CORE_OK);
        }
        fx_free(f);
    }
}

static void validation(void **state)
{
    fx_t *f = *state;
    uint64_t id = held_by_pk(f);
    core_care_access_t a = held(id);
    a.lawful_basis = BASIS(UNSPECIFIED);
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_E_INVALID);
    assert_non_null(strstr(core_last_error(f->c), "lawful_basis"));
    a.lawful_basis = (Mhtas__V1__LawfulBasis)9;
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_E_INVALID);
    a = held(id);
    a.reason = "";
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_E_INVALID);
    assert_non_null(strstr(core_last_error(f->c), "reason"));
    a.reason = NULL;
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_E_INVALID);
    a = held(0);
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_E_INVALID);
    assert_non_null(strstr(core_last_error(f->c), "incident_id is required"));
    a = held(999);
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_E_NOT_FOUND);
    for (int b = BASIS(DIRECT_CARE); b <= BASIS(SAFEGUARDING); b++) {
        a = held(id);
        a.lawful_basis = (Mhtas__V1__LawfulBasis)b;
        assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_OK);
    }

    /* break-glass: a reason code and free text */
    core_care_access_t g = glass(0);
    g.break_glass_reason = BG(UNSPECIFIED);
    assert_int_equal(core_check_care_access(f->c, f->now, PS, &g), CORE_E_INVALID);
    assert_non_null(strstr(core_last_error(f->c), "break_glass_reason"));
    g.break_glass_reason = (Mhtas__V1__BreakGlassReason)99;
    assert_int_equal(core_check_care_access(f->c, f->now, PS, &g), CORE_E_INVALID);
    g = glass(0);
    g.break_glass_text = "";
    assert_int_equal(core_check_care_access(f->c, f->now, PS, &g), CORE_E_INVALID);
    assert_non_null(strstr(core_last_error(f->c), "break_glass_text"));
    g = glass(0);
    g.reason = "";
    assert_int_equal(core_check_care_access(f->c, f->now, PS, &g), CORE_E_INVALID);
    g = glass(999);
    assert_int_equal(core_check_care_access(f->c, f->now, PS, &g), CORE_E_NOT_FOUND);
    char *long_text = malloc(f->cfg.max_text_bytes + 2);
    memset(long_text, 'x', f->cfg.max_text_bytes + 1);
    long_text[f->cfg.max_text_bytes + 1] = '\0';
    g = glass(0);
    g.break_glass_text = long_text;
    assert_int_equal(core_check_care_access(f->c, f->now, PS, &g), CORE_E_INVALID);
    free(long_text);

    /* shares */
    share_t s;
    share_init(&s, id);
    s.r.nhs_number = (char *)"9434765918"; /* wrong check digit */
    assert_int_equal(core_check_share(f->c, f->now, PK, &s.r), CORE_E_INVALID);
    assert_non_null(strstr(core_last_error(f->c), "nhs_number"));
    s.r.nhs_number = (char *)"94347659";
    assert_int_equal(core_check_share(f->c, f->now, PK, &s.r), CORE_E_INVALID);
    share_init(&s, id);
    s.r.n_parts = 0;
    assert_int_equal(core_check_share(f->c, f->now, PK, &s.r), CORE_E_INVALID);
    assert_non_null(strstr(core_last_error(f->c), "parts"));
    share_init(&s, id);
    s.parts[1] = PART(RISKS);
    assert_int_equal(core_check_share(f->c, f->now, PK, &s.r), CORE_E_INVALID);
    s.parts[1] = (Mhtas__V1__CarePart)42;
    assert_int_equal(core_check_share(f->c, f->now, PK, &s.r), CORE_E_INVALID);
    share_init(&s, id);
    s.r.summary = (char *)"";
    assert_int_equal(core_check_share(f->c, f->now, PK, &s.r), CORE_E_INVALID);
    share_init(&s, id);
    s.r.lawful_basis = BASIS(UNSPECIFIED);
    assert_int_equal(core_check_share(f->c, f->now, PK, &s.r), CORE_E_INVALID);
    share_init(&s, id);
    s.r.incident_id = 0;
    assert_int_equal(core_check_share(f->c, f->now, PK, &s.r), CORE_E_INVALID);
    share_init(&s, id);
    assert_int_equal(core_check_share(f->c, f->now, PK, &s.r), CORE_OK);
}

/* Held means ACCEPTED, ADVISING or OUTCOME_PROPOSED; offered or closed is
 * seen but not held (FAILED_PRECONDITION); break-glass still works. */
static void incident_states(void **state)
{
    fx_t *f = *state;
    assert_int_equal(fx_on(f, PK), CORE_OK);
    uint64_t id = fx_raise(f, 2, "Manchester");
    assert_int_equal(fx_state(f, id), ST(OFFERED));
    core_care_access_t a = held(id), g = glass(id);
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_E_STATE);
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &g), CORE_OK);
    assert_int_equal(fx_accept(f, PK, id), CORE_OK);
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_OK);
    assert_int_equal(fx_post(f, PK, id, "advice", NULL), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(ADVISING));
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_OK);
    assert_int_equal(fx_propose(f, PK, id), CORE_OK);
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_OK);
    assert_int_equal(fx_agree(f, OP, id, true, NULL, "k"), CORE_OK);
    assert_int_equal(fx_state(f, id), ST(CLOSED));
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &a), CORE_E_STATE);
    share_t s;
    share_init(&s, id);
    assert_int_equal(core_check_share(f->c, f->now, PK, &s.r), CORE_E_STATE);
    assert_int_equal(core_check_care_access(f->c, f->now, PK, &g), CORE_OK);
    /* a practitioner who never saw it: NOT_FOUND */
    assert_int_equal(core_check_care_access(f->c, f->now, PS, &a), CORE_E_NOT_FOUND);
}

/* Audit events: journal only (empty audience), who filled in by the core;
 * a break-glass also tells supervisors, without saying whose record. */
static void audit_events(void **state)
{
    fx_t *f = *state;
    uint64_t id = held_by_pk(f);
    fx_clear(f);
    Mhtas__V1__AuditRecord r = MHTAS__V1__AUDIT_RECORD__INIT;
    r.action = ACTION(READ);
    r.incident_id = id;
    r.nhs_number = (char *)NHS;
    r.lawful_basis = BASIS(DIRECT_CARE);
    r.reason = (char *)"advising";
    r.user_id = (char *)"someone.else"; /* ignored: the core says who */
    uint64_t seq = 0;
    assert_int_equal(core_emit_audit(f->c, f->now, PK, &r, &seq), CORE_OK);
    assert_int_equal(f->n_ev, 1);
    rec_t *e = fx_last(f, EV_AUDIT);
    assert_non_null(e);
    assert_int_equal(e->ev->seq, seq);
    assert_false(e->aud.police);
    assert_false(e->aud.supervisors);
    assert_int_equal(e->aud.n_users, 0);
    assert_string_equal(e->ev->audit->user_id, "p.khan");
    assert_string_equal(e->ev->audit->nhs_number, NHS);
    assert_int_equal(e->ev->audit->action, ACTION(READ));
    assert_int_equal(fx_notices(f, MHTAS__V1__NOTICE_KIND__NOTICE_KIND_BREAK_GLASS), 0);

    r.action = ACTION(BREAK_GLASS);
    r.break_glass = true;
    r.break_glass_reason = BG(COVERING_COLLEAGUE);
    r.break_glass_text = (char *)"covering";
    assert_int_equal(core_emit_audit(f->c, f->now, PS, &r, NULL), CORE_OK);
    assert_int_equal(fx_count(f, EV_AUDIT), 2);
    rec_t *n = fx_last_notice(f, MHTAS__V1__NOTICE_KIND__NOTICE_KIND_BREAK_GLASS);
    assert_non_null(n);
    assert_true(n->aud.supervisors);
    assert_false(n->aud.police);
    assert_int_equal(n->aud.n_users, 0);
    assert_int_equal(n->ev->notice->incident_id, id);
    assert_non_null(strstr(n->ev->notice->text, "p.smith"));
    assert_non_null(strstr(n->ev->notice->text, "covering a colleague"));
    assert_null(strstr(n->ev->notice->text, NHS));
    assert_int_equal(core_emit_audit(f->c, f->now, 99, &r, NULL), CORE_E_PERM);

    /* Restoring an audit event changes nothing. */
    fx_t *g = fx_new();
    fx_start(g);
    assert_int_equal(core_restore_event(g->c, e->ev), CORE_OK);
    core_restore_finish(g->c, g->now);
    assert_int_equal(core__check(g->c), 0);
    fx_free(g);
}

/* The share: a MESSAGE_KIND_SHARE message from the practitioner with their
 * summary and the parts' names, never the NHS number; the first one is the
 * first advice. */
static void share_message(void **state)
{
    fx_t *f = *state;
    uint64_t id = held_by_pk(f);
    fx_clear(f);
    share_t s;
    share_init(&s, id);
    Mhtas__V1__ShareWithPoliceResponse *r = NULL;
    assert_int_equal(share(f, PK, &s, 1234, &r), CORE_OK);
    assert_non_null(r);
    assert_int_equal(r->incident_id, id);
    assert_int_equal(r->disclosure_id, 1234);
    assert_int_equal(r->shared_at_ms, f->now);
    protobuf_c_message_free_unpacked(&r->base, hub_pb_allocator());
    rec_t *m = fx_last(f, EV_MESSAGE);
    assert_non_null(m);
    assert_true(m->aud.police);
    assert_int_equal(m->ev->message->kind, MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_SHARE);
    assert_string_equal(m->ev->message->from_user, "p.khan");
    assert_non_null(strstr(m->ev->message->text, s.r.summary));
    assert_non_null(strstr(m->ev->message->text, "risks, crisis plan"));
    assert_null(strstr(m->ev->message->text, "9434765919"));
    assert_null(strstr(m->ev->message->text, "943 476 5919"));
    assert_int_equal(fx_state(f, id), ST(ADVISING));
    /* Nobody posts a SHARE message directly. */
    Mhtas__V1__PostMessageRequest pm = MHTAS__V1__POST_MESSAGE_REQUEST__INIT;
    pm.incident_id = id;
    pm.text = (char *)"fake share";
    pm.kind = MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_SHARE;
    Mhtas__V1__PostMessageResponse *pr = NULL;
    assert_int_equal(core_post_message(f->c, f->now, PK, &pm, &pr), CORE_E_INVALID);
    assert_null(pr);
    assert_string_equal(core_care_part_name(PART(RECENT_CONTACTS)), "recent contacts");
    assert_string_equal(core_care_part_name(0), "unknown");
    assert_string_equal(core_care_part_name(99), "unknown");
}

/* Out of memory at every allocation in turn: no leak, nothing half-done. */
static void failmalloc(void **state)
{
    (void)state;
    for (long n = 0;; n++) {
        fx_t *f = fx_new();
        fx_start(f);
        uint64_t id = held_by_pk(f);
        f->gaps_ok = true;
        hub_alloc_fail_after(n);
        Mhtas__V1__AuditRecord r = MHTAS__V1__AUDIT_RECORD__INIT;
        r.action = ACTION(BREAK_GLASS);
        r.nhs_number = (char *)NHS;
        int rc1 = core_emit_audit(f->c, f->now, PK, &r, NULL);
        share_t s;
        share_init(&s, id);
        int rc2 = share(f, PK, &s, 1, NULL);
        hub_alloc_fail_after(-1);
        assert_true(rc1 == CORE_OK || rc1 == CORE_E_NOMEM);
        assert_true(rc2 == CORE_OK || rc2 == CORE_E_NOMEM);
        fx_free(f);
        if (rc1 == CORE_OK && rc2 == CORE_OK)
            break;
        assert_true(n < 1000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(role_grid),
        cmocka_unit_test_setup_teardown(validation, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(incident_states, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(audit_events, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(share_message, fx_setup, fx_teardown),
        cmocka_unit_test(failmalloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
