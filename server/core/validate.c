/* validate.c -- the rules a query and an outcome must meet before the core
 * accepts them, and the small calendar and NHS-number arithmetic they need.
 *
 * Every rejection names the field and the rule, never the value: the
 * message is logged, and a name or a concern is health data. The calendar
 * code is Howard Hinnant's days-from-civil algorithm, because the core has
 * no clock and must not call localtime(): the age of a person at `now` is
 * pure arithmetic on the proleptic Gregorian calendar in UTC.
 */
#include <ctype.h>
#include <string.h>

#include "core/core_internal.h"

#define POLICE_REF_MAX 64
#define CALLSIGNS_MAX 16
#define CALLSIGN_BYTES_MAX 32
#define MS_PER_DAY 86400000LL

int64_t core__days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

bool core__parse_date(const char *s, int *y, int *m, int *d)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return false;
    *y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    *m = (s[5] - '0') * 10 + (s[6] - '0');
    *d = (s[8] - '0') * 10 + (s[9] - '0');
    if (*y < 1850 || *m < 1 || *m > 12 || *d < 1)
        return false;
    return *d <= days_in_month(*y, *m);
}

/* Whole years between the date of birth and the UTC date at `now`, or -1
 * when the date does not parse. */
int core__age_at(const char *dob, int64_t now)
{
    int by, bm, bd, y, m, d;
    if (dob == NULL || !core__parse_date(dob, &by, &bm, &bd))
        return -1;
    int64_t days = now >= 0 ? now / MS_PER_DAY : -((-now + MS_PER_DAY - 1) / MS_PER_DAY);
    civil_from_days(days, &y, &m, &d);
    int age = y - by;
    if (m < bm || (m == bm && d < bd))
        age--;
    return age;
}

bool core__nhs_number_valid(const char *s)
{
    if (strlen(s) != 10)
        return false;
    int sum = 0;
    for (int i = 0; i < 10; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    for (int i = 0; i < 9; i++)
        sum += (s[i] - '0') * (10 - i);
    int check = 11 - sum % 11;
    if (check == 11)
        check = 0;
    if (check == 10)
        return false;
    return check == s[9] - '0';
}

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static size_t len(const char *s)
{
    return s ? strlen(s) : 0;
}

/* A person is recognised again by NHS number, or failing that by family
 * name and date of birth together: one alone would match strangers. */
char *core__person_key(const Mhtas__V1__Person *p)
{
    if (p == NULL)
        return NULL;
    if (set(p->nhs_number))
        return hub_strdup(p->nhs_number);
    if (!set(p->family_name) || !set(p->date_of_birth))
        return NULL;
    size_t n = strlen(p->family_name), m = strlen(p->date_of_birth);
    char *k = hub_malloc(n + m + 2);
    if (k == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        k[i] = (char)tolower((unsigned char)p->family_name[i]);
    k[n] = '|';
    memcpy(k + n + 1, p->date_of_birth, m + 1);
    return k;
}

#define TEXT(field, name)                                                                          \
    do {                                                                                           \
        if (len(field) > c->cfg.max_text_bytes)                                                    \
            return core__fail(c, CORE_E_INVALID, "%s is longer than %u bytes", name,               \
                              c->cfg.max_text_bytes);                                              \
    } while (0)

int core__validate_details(core_t *c, const Mhtas__V1__IncidentDetails *d, int *borough)
{
    if (d == NULL)
        return core__fail(c, CORE_E_INVALID, "details are required");
    if (!set(d->police_ref))
        return core__fail(c, CORE_E_INVALID, "details.police_ref is required");
    if (strlen(d->police_ref) > POLICE_REF_MAX)
        return core__fail(c, CORE_E_INVALID, "details.police_ref is longer than %d bytes", POLICE_REF_MAX);
    if (d->priority < 1 || d->priority > 4)
        return core__fail(c, CORE_E_INVALID, "details.priority must be 1 to 4");
    if (!set(d->borough))
        return core__fail(c, CORE_E_INVALID, "details.borough is required");
    *borough = -1;
    for (size_t i = 0; i < c->cfg.n_boroughs; i++)
        if (strcmp(c->cfg.boroughs[i].name, d->borough) == 0)
            *borough = (int)i;
    /* The borough is configuration, not health data, but a client bug could
     * put anything there: it is not echoed back. */
    if (*borough < 0)
        return core__fail(c, CORE_E_INVALID, "details.borough is unknown: not one of the configured boroughs");
    if (!set(d->question))
        return core__fail(c, CORE_E_INVALID, "details.question is required");
    TEXT(d->question, "details.question");
    TEXT(d->place, "details.place");
    TEXT(d->concerns, "details.concerns");
    TEXT(d->rcrp_reason, "details.rcrp_reason");
    if (d->n_callsigns > CALLSIGNS_MAX)
        return core__fail(c, CORE_E_INVALID, "details.callsigns has more than %d entries", CALLSIGNS_MAX);
    for (size_t i = 0; i < d->n_callsigns; i++)
        if (len(d->callsigns[i]) > CALLSIGN_BYTES_MAX)
            return core__fail(c, CORE_E_INVALID, "details.callsigns[%zu] is longer than %d bytes", i,
                              CALLSIGN_BYTES_MAX);
    for (size_t i = 0; i < d->n_flags; i++)
        if (d->flags[i] < MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_WEAPON ||
            d->flags[i] > MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_DOMESTIC_ABUSE)
            return core__fail(c, CORE_E_INVALID, "details.flags[%zu] is not a known concern flag", i);
    const Mhtas__V1__Person *p = d->person;
    if (p != NULL) {
        TEXT(p->family_name, "details.person.family_name");
        TEXT(p->given_names, "details.person.given_names");
        TEXT(p->address, "details.person.address");
        TEXT(p->postcode, "details.person.postcode");
        int y, m, dd;
        if (set(p->date_of_birth) && !core__parse_date(p->date_of_birth, &y, &m, &dd))
            return core__fail(c, CORE_E_INVALID, "details.person.date_of_birth must be a valid YYYY-MM-DD date");
        if (set(p->nhs_number) && !core__nhs_number_valid(p->nhs_number))
            return core__fail(c, CORE_E_INVALID,
                              "details.person.nhs_number must be 10 digits with a valid check digit");
        if (p->age_years > 130)
            return core__fail(c, CORE_E_INVALID, "details.person.age_years is not a plausible age");
    }
    if (d->rcrp < MHTAS__V1__RCRP_DECISION__RCRP_DECISION_POLICE_ATTEND_CRIME ||
        d->rcrp > MHTAS__V1__RCRP_DECISION__RCRP_DECISION_UNDER_REVIEW)
        return core__fail(c, CORE_E_INVALID,
                          "details.rcrp is required: record the Right Care, Right Person decision");
    return CORE_OK;
}

/* Under 18 by any evidence: the flag, an estimated age, or the date of
 * birth. When in doubt the stricter rule for children applies. */
bool core_details_is_child(const Mhtas__V1__IncidentDetails *d, int64_t now)
{
    if (d == NULL)
        return false;
    for (size_t i = 0; i < d->n_flags; i++)
        if (d->flags[i] == MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_UNDER_18)
            return true;
    if (d->person == NULL)
        return false;
    if (d->person->age_years > 0 && d->person->age_years < 18)
        return true;
    int age = core__age_at(d->person->date_of_birth, now);
    return age >= 0 && age < 18;
}

static bool is_child(const incident_t *inc, int64_t now)
{
    return core_details_is_child(inc->details, now);
}

int core__validate_outcome(core_t *c, const incident_t *inc, const Mhtas__V1__Outcome *o, int64_t now)
{
    if (o == NULL || o->n_codes == 0)
        return core__fail(c, CORE_E_INVALID, "outcome.codes must name at least one outcome");
    bool seen[OC(NOT_KNOWN_TO_SERVICES) + 1] = { false };
    for (size_t i = 0; i < o->n_codes; i++) {
        int code = o->codes[i];
        if (code < OC(S136_DETENTION) || code > OC(NOT_KNOWN_TO_SERVICES))
            return core__fail(c, CORE_E_INVALID, "outcome.codes[%zu] is not a known outcome", i);
        if (seen[code])
            return core__fail(c, CORE_E_INVALID, "outcome.codes[%zu] repeats an outcome", i);
        seen[code] = true;
    }
    if (seen[OC(S136_DETENTION)] && seen[OC(S136_CONSIDERED_NOT_USED)])
        return core__fail(c, CORE_E_INVALID,
                          "outcome.codes cannot hold both S136_DETENTION and S136_CONSIDERED_NOT_USED");
    TEXT(o->summary, "outcome.summary");
    const Mhtas__V1__S136Details *s = o->s136;
    if (s != NULL) {
        TEXT(s->consulted_who, "outcome.s136.consulted_who");
        TEXT(s->inspector, "outcome.s136.inspector");
    }
    if (!seen[OC(S136_DETENTION)])
        return CORE_OK;
    if (s == NULL || s->place_of_safety < MHTAS__V1__PLACE_OF_SAFETY__PLACE_OF_SAFETY_HEALTH_BASED ||
        s->place_of_safety > MHTAS__V1__PLACE_OF_SAFETY__PLACE_OF_SAFETY_OTHER)
        return core__fail(c, CORE_E_INVALID, "outcome.s136.place_of_safety is required for S136_DETENTION");
    if (s->place_is_persons_home)
        return core__fail(c, CORE_E_INVALID,
                          "section 136 cannot be used in a place where the person lives (outcome.s136.place_is_persons_home)");
    if (!s->consultation_not_practicable && (!set(s->consulted_who) || s->consulted_at_ms <= 0))
        return core__fail(c, CORE_E_INVALID,
                          "outcome.s136: record who was consulted and when (consulted_who, consulted_at_ms), "
                          "or that consultation was not practicable");
    if (s->place_of_safety == MHTAS__V1__PLACE_OF_SAFETY__PLACE_OF_SAFETY_POLICE_STATION) {
        if (is_child(inc, now))
            return core__fail(c, CORE_E_INVALID,
                              "outcome.s136.place_of_safety: a police station is never a place of safety for under-18s");
        if (!set(s->inspector))
            return core__fail(c, CORE_E_INVALID,
                              "outcome.s136.inspector: a police station needs an inspector's authorisation");
    }
    return CORE_OK;
}
