/* core_fixture.h -- a core on a fake clock, with every event it emits
 * recorded, for the core's unit tests.
 *
 * Everything is static inline so that each *_test.c uses what it needs
 * without unused-function warnings. Recorded events are copies made with
 * the system allocator, so that hub_alloc_live() counts only the core's own
 * allocations: fx_teardown() checks that it returns to where it started.
 */
#ifndef CORE_FIXTURE_H
#define CORE_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/core_internal.h"
#include "util/alloc.h"

enum { OP, DISP, SUP, PK, PS, PO, PL, NUSERS };

#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */
#define SEC 1000LL

#define EV_OFFER MHTAS__V1__EVENT__KIND_OFFER
#define EV_INCIDENT MHTAS__V1__EVENT__KIND_INCIDENT
#define EV_MESSAGE MHTAS__V1__EVENT__KIND_MESSAGE
#define EV_QUEUE MHTAS__V1__EVENT__KIND_QUEUE
#define EV_BOARD MHTAS__V1__EVENT__KIND_BOARD
#define EV_NOTICE MHTAS__V1__EVENT__KIND_NOTICE
#define EV_STATUS MHTAS__V1__EVENT__KIND_STATUS

static const char *const fx_providers[] = { "GMMH", "Pennine" };
/* Manchester and Salford are GMMH's and neighbours; Oldham and Bury are
 * Pennine's; Oldham's neighbour is Manchester, Bury's is Oldham. */
static const core_borough_t fx_boroughs[] = {
    { "Manchester", 0, 1u << 1 },
    { "Salford", 0, 1u << 0 },
    { "Oldham", 1, 1u << 0 },
    { "Bury", 1, 1u << 2 },
};
static const char *const fx_skills[] = { "camhs", "ld_autism" };

typedef struct rec {
    Mhtas__V1__Event *ev;
    core_audience_t aud;
} rec_t;

typedef struct fx {
    core_config_t cfg;
    core_user_t users[NUSERS];
    core_t *c;
    int64_t now;
    rec_t *ev;
    size_t n_ev, cap_ev;
    uint64_t last_seq;
    bool gaps_ok;   /* out-of-memory tests: an event that could not be built leaves a gap */
    size_t live0;
} fx_t;

static inline void fx_record(void *ctx, const Mhtas__V1__Event *ev, const core_audience_t *aud)
{
    fx_t *f = ctx;
    /* Events arrive in sequence order, one after the other. */
    if (f->last_seq && !f->gaps_ok)
        assert_int_equal(ev->seq, f->last_seq + 1);
    assert_true(ev->seq > f->last_seq);
    f->last_seq = ev->seq;
    assert_int_equal(ev->at_ms, f->now);
    /* Police never see an offer; an offer goes to exactly one practitioner. */
    if (ev->kind_case == EV_OFFER) {
        assert_false(aud->police);
        assert_false(aud->supervisors);
        assert_int_equal(aud->n_users, 1);
    }
    if (f->n_ev == f->cap_ev) {
        f->cap_ev = f->cap_ev ? f->cap_ev * 2 : 64;
        f->ev = realloc(f->ev, f->cap_ev * sizeof(*f->ev));
        assert_non_null(f->ev);
    }
    size_t n = protobuf_c_message_get_packed_size(&ev->base);
    uint8_t *buf = malloc(n + 1);
    protobuf_c_message_pack(&ev->base, buf);
    Mhtas__V1__Event *copy = mhtas__v1__event__unpack(NULL, n, buf);
    free(buf);
    assert_non_null(copy);
    f->ev[f->n_ev].ev = copy;
    f->ev[f->n_ev].aud = *aud;
    f->n_ev++;
}

static inline void fx_clear(fx_t *f)
{
    for (size_t i = 0; i < f->n_ev; i++)
        mhtas__v1__event__free_unpacked(f->ev[i].ev, NULL);
    f->n_ev = 0;
}

static inline void fx_user(fx_t *f, int i, const char *id, Mhtas__V1__Role role, int provider, uint32_t skills,
                           uint64_t boroughs, uint32_t cap)
{
    f->users[i] = (core_user_t){ .id = id, .display_name = id, .role = role, .provider = provider,
                                 .skills = skills, .boroughs = boroughs, .capacity = cap };
}

/* The default configuration; tests change f->cfg before fx_start(). */
static inline fx_t *fx_new(void)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->live0 = hub_alloc_live();
    fx_user(f, OP, "op.jones", ROLE(OPERATOR), -1, 0, 0, 0);
    fx_user(f, DISP, "disp.ali", ROLE(DISPATCHER), -1, 0, 0, 0);
    fx_user(f, SUP, "sup.reid", ROLE(SUPERVISOR), -1, 0, 0, 0);
    fx_user(f, PK, "p.khan", ROLE(PRACTITIONER), 0, 3, 0, 1);
    fx_user(f, PS, "p.smith", ROLE(PRACTITIONER), 0, 0, 0, 1);
    fx_user(f, PO, "p.obi", ROLE(PRACTITIONER), 1, 0, 0, 1);
    fx_user(f, PL, "p.lee", ROLE(PRACTITIONER), 0, 0, 1u << 1, 2);
    core_config_t *c = &f->cfg;
    c->providers = fx_providers;
    c->n_providers = 2;
    c->boroughs = fx_boroughs;
    c->n_boroughs = 4;
    c->skills = fx_skills;
    c->n_skills = 2;
    c->users = f->users;
    c->n_users = NUSERS;
    c->flag_skills[MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_UNDER_18] = 1u << 0;
    c->flag_skills[MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_LD_AUTISM] = 1u << 1;
    c->strategy = CORE_STRATEGY_LINEAR;
    c->offer_timeout_ms = 30 * SEC;
    c->disconnect_grace_ms = 60 * SEC;
    c->max_open_incidents = 1000;
    c->max_messages_per_incident = 100;
    c->max_text_bytes = 1000;
    c->rng_seed = 42;
    f->now = T0;
    return f;
}

static inline void fx_start(fx_t *f)
{
    f->c = core_new(&f->cfg, fx_record, f, 1);
    assert_non_null(f->c);
}

static inline void fx_free(fx_t *f)
{
    if (f->c) {
        assert_int_equal(core__check(f->c), 0);
        core_free(f->c);
    }
    fx_clear(f);
    free(f->ev);
    assert_int_equal(hub_alloc_live(), f->live0);
    free(f);
}

static inline int fx_setup(void **state)
{
    fx_t *f = fx_new();
    fx_start(f);
    *state = f;
    return 0;
}

static inline int fx_teardown(void **state)
{
    fx_free(*state);
    return 0;
}

static inline void fx_tick(fx_t *f, int64_t ms)
{
    f->now += ms;
    core_tick(f->c, f->now);
    assert_int_equal(core__check(f->c), 0);
}

/* ------------------------------------------------------------- requests */

typedef struct raise {
    Mhtas__V1__RaiseIncidentRequest r;
    Mhtas__V1__IncidentDetails d;
    Mhtas__V1__Person p;
    Mhtas__V1__ConcernFlag flags[8];
    char *callsigns[20];
} raise_t;

static inline void raise_init(raise_t *q, int priority, const char *borough)
{
    memset(q, 0, sizeof(*q));
    mhtas__v1__raise_incident_request__init(&q->r);
    mhtas__v1__incident_details__init(&q->d);
    mhtas__v1__person__init(&q->p);
    q->r.details = &q->d;
    q->d.police_ref = "GMP-20231114-0001";
    q->d.priority = (Mhtas__V1__Priority)priority;
    q->d.borough = (char *)borough;
    q->d.question = "Is the person known to services?";
    q->d.rcrp = MHTAS__V1__RCRP_DECISION__RCRP_DECISION_POLICE_ATTEND_RISK_TO_LIFE;
    q->d.flags = q->flags;
    q->d.callsigns = q->callsigns;
}

static inline void raise_flag(raise_t *q, Mhtas__V1__ConcernFlag flag)
{
    q->flags[q->d.n_flags++] = flag;
}

static inline int fx_raise_req(fx_t *f, int user, raise_t *q, uint64_t *id)
{
    Mhtas__V1__RaiseIncidentResponse *resp = NULL;
    int rc = core_raise_incident(f->c, f->now, user, &q->r, &resp);
    if (rc == CORE_OK) {
        assert_non_null(resp);
        if (id)
            *id = resp->incident->id;
        protobuf_c_message_free_unpacked(&resp->base, hub_pb_allocator());
    } else {
        assert_null(resp);
        assert_true(core_last_error(f->c)[0] != '\0');
    }
    assert_int_equal(core__check(f->c), 0);
    return rc;
}

static inline uint64_t fx_raise(fx_t *f, int priority, const char *borough)
{
    raise_t q;
    raise_init(&q, priority, borough);
    uint64_t id = 0;
    assert_int_equal(fx_raise_req(f, OP, &q, &id), CORE_OK);
    return id;
}

#define FX_CALL(fn, rtype, ...)                                                                    \
    do {                                                                                           \
        rtype *resp_ = NULL;                                                                       \
        int rc_ = fn(f->c, f->now, user, __VA_ARGS__, &resp_);                                     \
        if (rc_ == CORE_OK) {                                                                      \
            assert_non_null(resp_);                                                                \
            protobuf_c_message_free_unpacked(&resp_->base, hub_pb_allocator());                    \
        } else {                                                                                   \
            assert_null(resp_);                                                                    \
        }                                                                                          \
        assert_int_equal(core__check(f->c), 0);                                                    \
        return rc_;                                                                                \
    } while (0)

static inline int fx_on(fx_t *f, int user)
{
    core_set_connected(f->c, f->now, user, true);
    Mhtas__V1__StartShiftRequest req = MHTAS__V1__START_SHIFT_REQUEST__INIT;
    FX_CALL(core_start_shift, Mhtas__V1__StartShiftResponse, &req);
}

static inline int fx_end(fx_t *f, int user)
{
    Mhtas__V1__EndShiftRequest req = MHTAS__V1__END_SHIFT_REQUEST__INIT;
    FX_CALL(core_end_shift, Mhtas__V1__EndShiftResponse, &req);
}

static inline int fx_pause(fx_t *f, int user, bool paused, const char *reason)
{
    Mhtas__V1__SetAvailabilityRequest req = MHTAS__V1__SET_AVAILABILITY_REQUEST__INIT;
    req.paused = paused;
    if (reason)
        req.reason = (char *)reason;
    FX_CALL(core_set_availability, Mhtas__V1__SetAvailabilityResponse, &req);
}

static inline int fx_accept(fx_t *f, int user, uint64_t id)
{
    Mhtas__V1__AcceptRequest req = MHTAS__V1__ACCEPT_REQUEST__INIT;
    req.incident_id = id;
    FX_CALL(core_accept, Mhtas__V1__AcceptResponse, &req);
}

static inline int fx_decline(fx_t *f, int user, uint64_t id, const char *reason)
{
    Mhtas__V1__DeclineRequest req = MHTAS__V1__DECLINE_REQUEST__INIT;
    req.incident_id = id;
    if (reason)
        req.reason = (char *)reason;
    FX_CALL(core_decline, Mhtas__V1__DeclineResponse, &req);
}

static inline int fx_post(fx_t *f, int user, uint64_t id, const char *text, const char *client_id)
{
    Mhtas__V1__PostMessageRequest req = MHTAS__V1__POST_MESSAGE_REQUEST__INIT;
    req.incident_id = id;
    if (text)
        req.text = (char *)text;
    if (client_id)
        req.client_msg_id = (char *)client_id;
    FX_CALL(core_post_message, Mhtas__V1__PostMessageResponse, &req);
}

static inline int fx_propose_o(fx_t *f, int user, uint64_t id, Mhtas__V1__Outcome *o)
{
    Mhtas__V1__ProposeOutcomeRequest req = MHTAS__V1__PROPOSE_OUTCOME_REQUEST__INIT;
    req.incident_id = id;
    req.outcome = o;
    FX_CALL(core_propose_outcome, Mhtas__V1__ProposeOutcomeResponse, &req);
}

static inline int fx_propose(fx_t *f, int user, uint64_t id)
{
    Mhtas__V1__OutcomeCode codes[] = { OC(REFER_CRISIS_TEAM), OC(NO_FURTHER_POLICE_ACTION) };
    Mhtas__V1__Outcome o = MHTAS__V1__OUTCOME__INIT;
    o.n_codes = 2;
    o.codes = codes;
    o.summary = "Crisis team to visit; no further police action";
    return fx_propose_o(f, user, id, &o);
}

static inline int fx_agree(fx_t *f, int user, uint64_t id, bool agree, const char *query, const char *key)
{
    Mhtas__V1__AgreeOutcomeRequest req = MHTAS__V1__AGREE_OUTCOME_REQUEST__INIT;
    req.incident_id = id;
    req.agree = agree;
    if (query)
        req.query = (char *)query;
    if (key)
        req.idempotency_key = (char *)key;
    FX_CALL(core_agree_outcome, Mhtas__V1__AgreeOutcomeResponse, &req);
}

static inline int fx_cancel(fx_t *f, int user, uint64_t id, const char *reason)
{
    Mhtas__V1__CancelIncidentRequest req = MHTAS__V1__CANCEL_INCIDENT_REQUEST__INIT;
    req.incident_id = id;
    if (reason)
        req.reason = (char *)reason;
    FX_CALL(core_cancel_incident, Mhtas__V1__CancelIncidentResponse, &req);
}

static inline int fx_reassign(fx_t *f, int user, uint64_t id, const char *to, const char *reason)
{
    Mhtas__V1__ReassignRequest req = MHTAS__V1__REASSIGN_REQUEST__INIT;
    req.incident_id = id;
    if (to)
        req.practitioner = (char *)to;
    if (reason)
        req.reason = (char *)reason;
    FX_CALL(core_reassign, Mhtas__V1__ReassignResponse, &req);
}

/* The incident as police see it; free with fx_put(). */
static inline Mhtas__V1__Incident *fx_get(fx_t *f, uint64_t id)
{
    Mhtas__V1__GetIncidentRequest req = MHTAS__V1__GET_INCIDENT_REQUEST__INIT;
    req.incident_id = id;
    Mhtas__V1__GetIncidentResponse *resp = NULL;
    assert_int_equal(core_get_incident(f->c, f->now, OP, &req, &resp), CORE_OK);
    Mhtas__V1__Incident *inc = resp->incident;
    resp->incident = NULL;
    protobuf_c_message_free_unpacked(&resp->base, hub_pb_allocator());
    return inc;
}

static inline void fx_put(Mhtas__V1__Incident *inc)
{
    protobuf_c_message_free_unpacked(&inc->base, hub_pb_allocator());
}

static inline int fx_state(fx_t *f, uint64_t id)
{
    Mhtas__V1__Incident *inc = fx_get(f, id);
    int s = inc->state;
    fx_put(inc);
    return s;
}

/* The practitioner the incident names ("" for none), copied into buf. */
static inline const char *fx_pract(fx_t *f, uint64_t id)
{
    static char buf[64];
    Mhtas__V1__Incident *inc = fx_get(f, id);
    snprintf(buf, sizeof(buf), "%s", inc->practitioner);
    fx_put(inc);
    return buf;
}

static inline int fx_pstate(fx_t *f, int p)
{
    return core__pstate(f->c, p, f->now);
}

/* ------------------------------------------------------------- events */

static inline size_t fx_count(fx_t *f, int kind)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_ev; i++)
        n += f->ev[i].ev->kind_case == (Mhtas__V1__Event__KindCase)kind;
    return n;
}

static inline rec_t *fx_last(fx_t *f, int kind)
{
    for (size_t i = f->n_ev; i-- > 0;)
        if (f->ev[i].ev->kind_case == (Mhtas__V1__Event__KindCase)kind)
            return &f->ev[i];
    return NULL;
}

static inline size_t fx_notices(fx_t *f, Mhtas__V1__NoticeKind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_ev; i++)
        n += f->ev[i].ev->kind_case == EV_NOTICE && f->ev[i].ev->notice->kind == kind;
    return n;
}

static inline rec_t *fx_last_notice(fx_t *f, Mhtas__V1__NoticeKind kind)
{
    for (size_t i = f->n_ev; i-- > 0;)
        if (f->ev[i].ev->kind_case == EV_NOTICE && f->ev[i].ev->notice->kind == kind)
            return &f->ev[i];
    return NULL;
}

static inline bool fx_aud_has(const core_audience_t *a, int user)
{
    for (int i = 0; i < a->n_users; i++)
        if (a->users[i] == user)
            return true;
    return false;
}

/* Offers made to user for incident id among the recorded events. */
static inline size_t fx_offers_to(fx_t *f, int user, uint64_t id)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_ev; i++)
        if (f->ev[i].ev->kind_case == EV_OFFER && f->ev[i].ev->offer->incident->id == id &&
            fx_aud_has(&f->ev[i].aud, user))
            n++;
    return n;
}

/* The causes in the incident's history, as an array ending with -1. */
static inline void fx_causes(fx_t *f, uint64_t id, int *out, size_t max)
{
    Mhtas__V1__Incident *inc = fx_get(f, id);
    size_t i = 0;
    for (; i < inc->n_history && i + 1 < max; i++)
        out[i] = inc->history[i]->cause;
    out[i] = -1;
    fx_put(inc);
}

static inline Mhtas__V1__Cause fx_last_cause(fx_t *f, uint64_t id)
{
    Mhtas__V1__Incident *inc = fx_get(f, id);
    Mhtas__V1__Cause c = inc->history[inc->n_history - 1]->cause;
    fx_put(inc);
    return c;
}

#endif
