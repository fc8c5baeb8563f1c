/* indicators.c -- the figures the service is judged by (DOMAIN.md, "How the
 * service is judged"), computed from incident snapshots.
 *
 * core_compute_indicators() sees only Incident messages, so the hub (through
 * core_get_indicators) and an offline tool reading the journal get the same
 * answer from the same records. Definitions, over incidents raised in
 * [from_ms, to_ms):
 *   - times (p50/p95, nearest rank: the smallest value with at least p% of
 *     the sample at or below it) from the raise to the first ACCEPTED, the
 *     first FIRST_ADVICE and the OUTCOME_AGREED transition, per priority;
 *   - the service level: an incident counts (sla_applicable) once it was
 *     accepted, or once its deadline (raise + sla_ms[priority]) passed
 *     without an accept -- by `now` while it is open, by the time it was
 *     cancelled otherwise. One cancelled before its deadline was never
 *     late, nor on time: it does not count. A priority whose sla_ms is 0
 *     has no service level and counts nowhere. Accepted at the deadline
 *     exactly is within it;
 *   - s136: over CLOSED incidents whose agreed outcome includes
 *     S136_DETENTION. "With consultation" means a consultation was recorded:
 *     who (consulted_who) and when (consulted_at_ms > 0). A detention
 *     recorded as "consultation not practicable" is NOT counted as with
 *     consultation: the indicator measures how often officers actually
 *     consulted a health professional first, which is what the Code of
 *     Practice asks for where practicable; counting the exemptions would let
 *     the figure hide a habit of skipping it;
 *   - diverted from police: CLOSED with NO_POLICE_ATTENDANCE or
 *     NO_FURTHER_POLICE_ACTION and neither S136_DETENTION nor
 *     ARREST_CRIMINAL_MATTER, as a share of the CLOSED ones;
 *   - repeat contacts: an incident whose person (NHS number, else lower-cased
 *     family name and date of birth, as the router recognises them) had
 *     another incident raised in the 30 days (inclusive) before it, looking at
 *     every incident given, in the range or not;
 *   - outcomes: how many CLOSED incidents include each outcome code.
 * Shares are 0 when their denominator is 0.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"

#define DAY_MS 86400000LL
#define REPEAT_WINDOW_MS (30 * DAY_MS)
#define MAX_CODE 63

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* When the first transition with this cause happened, or -1. */
static int64_t first_at(const Mhtas__V1__Incident *inc, Mhtas__V1__Cause cause)
{
    for (size_t i = 0; i < inc->n_history; i++)
        if (inc->history[i] && inc->history[i]->cause == cause)
            return inc->history[i]->at_ms;
    return -1;
}

/* The outcome codes of an agreed (CLOSED) incident as a bitmask, 0 otherwise. */
static uint64_t closed_codes(const Mhtas__V1__Incident *inc)
{
    if (inc->state != ST(CLOSED) || inc->outcome == NULL)
        return 0;
    uint64_t m = 0;
    for (size_t i = 0; i < inc->outcome->n_codes; i++) {
        int code = inc->outcome->codes[i];
        if (code > 0 && code <= MAX_CODE)
            m |= 1ULL << code;
    }
    return m;
}

#define HAS(mask, code) (((mask) >> OC(code)) & 1)

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t nearest_rank(const int64_t *sorted, size_t n, unsigned pct)
{
    size_t rank = (pct * n + 99) / 100;
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

static Mhtas__V1__Percentiles *percentiles(int64_t *v, size_t n)
{
    Mhtas__V1__Percentiles *p = hub_malloc(sizeof(*p));
    if (p == NULL)
        return NULL;
    mhtas__v1__percentiles__init(p);
    p->count = (uint32_t)n;
    if (n) {
        qsort(v, n, sizeof(*v), cmp_i64);
        p->p50_ms = nearest_rank(v, n, 50);
        p->p95_ms = nearest_rank(v, n, 95);
    }
    return p;
}

typedef struct person_ref {
    const char *key;
    int64_t at;
    uint64_t id;
    size_t idx;
} person_ref_t;

static int cmp_person(const void *a, const void *b)
{
    const person_ref_t *x = a, *y = b;
    int k = strcmp(x->key, y->key);
    if (k)
        return k;
    if (x->at != y->at)
        return (x->at > y->at) - (x->at < y->at);
    return (x->id > y->id) - (x->id < y->id);
}

static bool in_range(const Mhtas__V1__Incident *inc, int64_t from, int64_t to)
{
    return inc && inc->raised_at_ms >= from && inc->raised_at_ms < to;
}

/* Repeat contacts and identified persons, by sorting every keyed incident
 * by (person, raise time): an incident repeats when the one just before it
 * in that order is the same person and at most 30 days older. */
static int count_repeats(const Mhtas__V1__Incident *const *incs, size_t n, int64_t from, int64_t to,
                         Mhtas__V1__Indicators *r)
{
    int rc = CORE_E_NOMEM;
    char **keys = hub_calloc(n ? n : 1, sizeof(*keys));
    person_ref_t *refs = hub_calloc(n ? n : 1, sizeof(*refs));
    if (keys == NULL || refs == NULL)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const Mhtas__V1__Incident *inc = incs[i];
        const Mhtas__V1__Person *p = inc && inc->details ? inc->details->person : NULL;
        if (p == NULL)
            continue;
        bool keyed = set(p->nhs_number) || (set(p->family_name) && set(p->date_of_birth));
        if (!keyed)
            continue;
        if ((keys[i] = core__person_key(p)) == NULL)
            goto out;
        refs[k++] = (person_ref_t){ keys[i], inc->raised_at_ms, inc->id, i };
        if (in_range(inc, from, to))
            r->persons_identified++;
    }
    qsort(refs, k, sizeof(*refs), cmp_person);
    for (size_t j = 1; j < k; j++)
        if (in_range(incs[refs[j].idx], from, to) && strcmp(refs[j].key, refs[j - 1].key) == 0 &&
            refs[j].at - refs[j - 1].at <= REPEAT_WINDOW_MS)
            r->repeat_contacts_30d++;
    rc = CORE_OK;
out:
    if (keys)
        for (size_t i = 0; i < n; i++)
            hub_free(keys[i]);
    hub_free(keys);
    hub_free(refs);
    return rc;
}

static double share(uint32_t num, uint32_t den)
{
    return den ? (double)num / (double)den : 0.0;
}

int core_compute_indicators(const Mhtas__V1__Incident *const *incs, size_t n, int64_t from_ms, int64_t to_ms,
                            int64_t now, const int64_t sla_ms[5], Mhtas__V1__Indicators **out)
{
    *out = NULL;
    if (to_ms == 0)
        to_ms = now;
    if (from_ms > to_ms)
        return CORE_E_INVALID;
    Mhtas__V1__Indicators *r = hub_malloc(sizeof(*r));
    int64_t *v = hub_malloc((n ? n : 1) * sizeof(*v));
    if (r)
        mhtas__v1__indicators__init(r);
    if (r == NULL || v == NULL)
        goto oom;
    r->from_ms = from_ms;
    r->to_ms = to_ms;

    uint32_t codes[MAX_CODE + 1] = { 0 };
    for (size_t i = 0; i < n; i++) {
        const Mhtas__V1__Incident *inc = incs[i];
        if (!in_range(inc, from_ms, to_ms))
            continue;
        r->raised++;
        r->cancelled += inc->state == ST(CANCELLED);
        if (inc->state != ST(CLOSED))
            continue;
        r->closed++;
        uint64_t m = closed_codes(inc);
        for (int code = 1; code <= MAX_CODE; code++)
            codes[code] += (m >> code) & 1;
        if (HAS(m, S136_DETENTION)) {
            r->s136_detentions++;
            const Mhtas__V1__S136Details *s = inc->outcome->s136;
            if (s && set(s->consulted_who) && s->consulted_at_ms > 0)
                r->s136_with_consultation++;
        }
        if ((HAS(m, NO_POLICE_ATTENDANCE) || HAS(m, NO_FURTHER_POLICE_ACTION)) && !HAS(m, S136_DETENTION) &&
            !HAS(m, ARREST_CRIMINAL_MATTER))
            r->diverted_from_police++;
    }

    if ((r->by_priority = hub_calloc(4, sizeof(*r->by_priority))) == NULL)
        goto oom;
    uint32_t within = 0, applicable = 0;
    for (int pri = 1; pri <= 4; pri++) {
        Mhtas__V1__PriorityIndicators *pi = hub_malloc(sizeof(*pi));
        if (pi == NULL)
            goto oom;
        mhtas__v1__priority_indicators__init(pi);
        r->by_priority[r->n_by_priority++] = pi;
        pi->priority = (Mhtas__V1__Priority)pri;
        int64_t sla = sla_ms ? sla_ms[pri] : 0;
        for (size_t i = 0; i < n; i++) {
            const Mhtas__V1__Incident *inc = incs[i];
            if (!in_range(inc, from_ms, to_ms) || inc->details == NULL || (int)inc->details->priority != pri)
                continue;
            pi->raised++;
            if (sla <= 0)
                continue;
            int64_t accepted = first_at(inc, CAUSE(ACCEPTED));
            if (accepted >= 0) {
                pi->sla_applicable++;
                pi->within_sla += accepted - inc->raised_at_ms <= sla;
                continue;
            }
            int64_t end = now;
            if (inc->state == ST(CANCELLED)) {
                end = first_at(inc, CAUSE(CANCELLED));
                if (end < 0)
                    end = inc->updated_at_ms;
            } else if (!core__is_open(inc->state)) {
                end = inc->updated_at_ms;
            }
            pi->sla_applicable += end >= inc->raised_at_ms + sla;
        }
        within += pi->within_sla;
        applicable += pi->sla_applicable;

        static const Mhtas__V1__Cause causes[3] = { CAUSE(ACCEPTED), CAUSE(FIRST_ADVICE), CAUSE(OUTCOME_AGREED) };
        Mhtas__V1__Percentiles **slots[3] = { &pi->to_accept, &pi->to_first_advice, &pi->to_outcome };
        for (int m = 0; m < 3; m++) {
            size_t k = 0;
            for (size_t i = 0; i < n; i++) {
                const Mhtas__V1__Incident *inc = incs[i];
                if (!in_range(inc, from_ms, to_ms) || inc->details == NULL || (int)inc->details->priority != pri)
                    continue;
                int64_t at = first_at(inc, causes[m]);
                if (at >= 0)
                    v[k++] = at - inc->raised_at_ms;
            }
            if ((*slots[m] = percentiles(v, k)) == NULL)
                goto oom;
        }
    }
    r->share_within_sla = share(within, applicable);
    r->share_s136_with_consultation = share(r->s136_with_consultation, r->s136_detentions);
    r->share_diverted = share(r->diverted_from_police, r->closed);

    if (count_repeats(incs, n, from_ms, to_ms, r))
        goto oom;

    size_t nc = 0;
    for (int code = 1; code <= MAX_CODE; code++)
        nc += codes[code] != 0;
    if (nc) {
        if ((r->outcomes = hub_calloc(nc, sizeof(*r->outcomes))) == NULL)
            goto oom;
        for (int code = 1; code <= MAX_CODE; code++) {
            if (codes[code] == 0)
                continue;
            Mhtas__V1__OutcomeCountEntry *e = hub_malloc(sizeof(*e));
            if (e == NULL)
                goto oom;
            mhtas__v1__outcome_count_entry__init(e);
            e->code = (Mhtas__V1__OutcomeCode)code;
            e->count = codes[code];
            r->outcomes[r->n_outcomes++] = e;
        }
    }
    hub_free(v);
    *out = r;
    return CORE_OK;
oom:
    hub_free(v);
    core__pb_free(r);
    return CORE_E_NOMEM;
}

int core_get_indicators(core_t *c, int64_t now, int user, const Mhtas__V1__GetIndicatorsRequest *req,
                        Mhtas__V1__GetIndicatorsResponse **resp)
{
    *resp = NULL;
    core__ok(c);
    if (user < 0 || (size_t)user >= c->cfg.n_users)
        return core__fail(c, CORE_E_PERM, "unknown user");
    if (c->cfg.users[user].role != ROLE(SUPERVISOR))
        return core__fail(c, CORE_E_PERM, "GetIndicators is for supervisors");
    int64_t from = req->from_ms, to = req->to_ms ? req->to_ms : now;
    if (from < 0 || to < 0)
        return core__fail(c, CORE_E_INVALID, "from_ms and to_ms cannot be negative");
    if (from > to)
        return core__fail(c, CORE_E_INVALID, "from_ms is after to_ms");

    /* The range, and the 30 days before it where repeat contacts look. */
    int64_t lookback = from > REPEAT_WINDOW_MS ? from - REPEAT_WINDOW_MS : 0;
    size_t n = 0;
    for (size_t i = 0; i < c->n_all; i++)
        n += c->all[i]->raised_at >= lookback && c->all[i]->raised_at < to;
    Mhtas__V1__Incident **incs = hub_calloc(n ? n : 1, sizeof(*incs));
    Mhtas__V1__GetIndicatorsResponse *r = hub_malloc(sizeof(*r));
    int rc = CORE_E_NOMEM;
    size_t k = 0;
    if (r)
        mhtas__v1__get_indicators_response__init(r);
    if (incs == NULL || r == NULL)
        goto out;
    for (size_t i = 0; i < c->n_all && k < n; i++) {
        const incident_t *inc = c->all[i];
        if (inc->raised_at < lookback || inc->raised_at >= to)
            continue;
        if ((incs[k] = core__snap_incident(c, inc, now, false)) == NULL)
            goto out;
        k++;
    }
    rc = core_compute_indicators((const Mhtas__V1__Incident *const *)incs, k, from, to, now, c->cfg.sla_ms,
                                 &r->indicators);
out:
    for (size_t i = 0; i < k; i++)
        core__pb_free(incs[i]);
    hub_free(incs);
    if (rc) {
        core__pb_free(r);
        return rc == CORE_E_NOMEM ? core__fail(c, rc, "out of memory") : core__fail(c, rc, "invalid range");
    }
    *resp = r;
    return CORE_OK;
}
