/* care_json.c -- see care_json.h.
 *
 * Every message and string of the CareSummary is its own hub_malloc
 * allocation, so the whole tree is freed with
 * protobuf_c_message_free_unpacked(..., hub_pb_allocator()). Validation
 * stops at the first problem and names the field by its JSON path.
 */
#include "cache/care_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cache/care_search.h"
#include "cache/nhs_number.h"
#include "util/alloc.h"

#define MAX_STR 4096     /* any one string */
#define MAX_ITEMS 100    /* any one array */

typedef struct {
    char *err;
    size_t errlen;
    int failed;
} jx_t;

__attribute__((format(printf, 2, 3))) static int fail(jx_t *x, const char *fmt, ...)
{
    if (!x->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->err, x->errlen, fmt, ap);
        va_end(ap);
        x->failed = 1;
    }
    return -1;
}

/* Refuses keys outside `allowed` (NULL-terminated): a misspelt field would
 * otherwise be lost silently. */
static int check_keys(jx_t *x, json_t *obj, const char *path, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, k) == 0)
                ok = 1;
        if (!ok)
            return fail(x, "%s: unknown field \"%.40s\"", path, k);
    }
    return 0;
}

static int get_obj(jx_t *x, json_t *parent, const char *key, const char *path, json_t **out)
{
    json_t *v = json_object_get(parent, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return fail(x, "%s%s%s: must be an object", path, *path ? "." : "", key);
    *out = v;
    return 0;
}

static int get_arr(jx_t *x, json_t *parent, const char *key, const char *path, json_t **out)
{
    json_t *v = json_object_get(parent, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return fail(x, "%s.%s: must be an array", path, key);
    if (json_array_size(v) > MAX_ITEMS)
        return fail(x, "%s.%s: more than %d items", path, key, MAX_ITEMS);
    *out = v;
    return 0;
}

/* A string value: valid UTF-8 (jansson checks), no NUL, bounded. */
static int str_value(jx_t *x, json_t *v, const char *path, char **out)
{
    if (!json_is_string(v))
        return fail(x, "%s: must be a string", path);
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (strlen(s) != len)
        return fail(x, "%s: contains a NUL character", path);
    if (len > MAX_STR)
        return fail(x, "%s: longer than %d bytes", path, MAX_STR);
    if (len == 0) {
        *out = NULL;     /* leave the proto3 default */
        return 0;
    }
    *out = hub_strndup(s, len);
    return *out ? 0 : fail(x, "%s: out of memory", path);
}

/* Optional string field; sets *out only when present and non-empty. */
static int str_field(jx_t *x, json_t *obj, const char *key, const char *path, int required,
                     char **out)
{
    char p[128];
    snprintf(p, sizeof p, "%s.%s", path, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
        if (required)
            return fail(x, "%s: is required", p);
        return 0;
    }
    char *s = NULL;
    if (str_value(x, v, p, &s))
        return -1;
    if (s)
        *out = s;
    return 0;
}

static int date_field(jx_t *x, json_t *obj, const char *key, const char *path, int required,
                      int year_ok, char **out)
{
    char *s = NULL;
    if (str_field(x, obj, key, path, required, &s))
        return -1;
    if (s == NULL)
        return 0;
    int32_t d;
    int ok = care_parse_date(s, &d) == 0;
    if (!ok && year_ok && strlen(s) == 4 && strspn(s, "0123456789") == 4)
        ok = 1;
    if (!ok) {
        hub_free(s);
        return fail(x, "%s.%s: not a valid YYYY-MM-DD date", path, key);
    }
    *out = s;
    return 0;
}

static int str_array(jx_t *x, json_t *obj, const char *key, const char *path, size_t *n,
                     char ***out)
{
    json_t *a;
    if (get_arr(x, obj, key, path, &a) || a == NULL)
        return x->failed ? -1 : 0;
    size_t len = json_array_size(a);
    if (len == 0)
        return 0;
    *out = hub_calloc(len, sizeof **out);
    if (*out == NULL)
        return fail(x, "%s.%s: out of memory", path, key);
    for (size_t i = 0; i < len; i++) {
        char p[128], *s = NULL;
        snprintf(p, sizeof p, "%s.%s[%zu]", path, key, i);
        if (str_value(x, json_array_get(a, i), p, &s))
            return -1;
        if (s == NULL) {
            fail(x, "%s: must not be empty", p);
            return -1;
        }
        (*out)[(*n)++] = s;
    }
    return 0;
}

static int enum_field(jx_t *x, json_t *obj, const char *key, const char *path, int required,
                      const char *const *names, int *out)
{
    char *s = NULL;
    if (str_field(x, obj, key, path, required, &s))
        return -1;
    if (s == NULL)
        return 0;
    for (int i = 0; names[i]; i++) {
        if (strcmp(names[i], s) == 0) {
            *out = i + 1;
            hub_free(s);
            return 0;
        }
    }
    hub_free(s);
    return fail(x, "%s.%s: not one of the allowed values", path, key);
}

#define NEW(type, init, var)                                                                  \
    type *var = hub_malloc(sizeof *var);                                                      \
    if (var == NULL)                                                                          \
        return fail(x, "out of memory");                                                      \
    *var = (type)init

/* source + asAt, required in every part. */
static int part_meta(jx_t *x, json_t *obj, const char *path, Mhtas__V1__PartMeta **out)
{
    NEW(Mhtas__V1__PartMeta, MHTAS__V1__PART_META__INIT, m);
    *out = m;
    if (str_field(x, obj, "source", path, 1, &m->source))
        return -1;
    char *at = NULL;
    if (str_field(x, obj, "asAt", path, 1, &at))
        return -1;
    int rc = care_parse_datetime_ms(at, &m->as_at_ms);
    hub_free(at);
    if (rc)
        return fail(x, "%s.asAt: not an ISO 8601 date-time with a zone (2026-11-20T10:00:00Z)",
                    path);
    return 0;
}

static const char *const K_CONTACT[] = {"name", "role", "phone", "team", "instructions", NULL};

static int contact(jx_t *x, json_t *o, const char *path, Mhtas__V1__CareContact **out)
{
    if (!json_is_object(o))
        return fail(x, "%s: must be an object", path);
    if (check_keys(x, o, path, K_CONTACT))
        return -1;
    NEW(Mhtas__V1__CareContact, MHTAS__V1__CARE_CONTACT__INIT, c);
    *out = c;
    if (str_field(x, o, "name", path, 1, &c->name) || str_field(x, o, "role", path, 0, &c->role) ||
        str_field(x, o, "phone", path, 0, &c->phone) || str_field(x, o, "team", path, 0, &c->team) ||
        str_field(x, o, "instructions", path, 0, &c->instructions))
        return -1;
    return 0;
}

static int contact_field(jx_t *x, json_t *obj, const char *key, const char *path,
                         Mhtas__V1__CareContact **out)
{
    json_t *o = json_object_get(obj, key);
    if (o == NULL || json_is_null(o))
        return 0;
    char p[128];
    snprintf(p, sizeof p, "%s.%s", path, key);
    return contact(x, o, p, out);
}

static int contact_array(jx_t *x, json_t *obj, const char *key, const char *path, size_t *n,
                         Mhtas__V1__CareContact ***out)
{
    json_t *a;
    if (get_arr(x, obj, key, path, &a) || a == NULL)
        return x->failed ? -1 : 0;
    if (json_array_size(a) == 0)
        return 0;
    *out = hub_calloc(json_array_size(a), sizeof **out);
    if (*out == NULL)
        return fail(x, "out of memory");
    for (size_t i = 0; i < json_array_size(a); i++) {
        char p[128];
        snprintf(p, sizeof p, "%s.%s[%zu]", path, key, i);
        int rc = contact(x, json_array_get(a, i), p, &(*out)[*n]);
        if ((*out)[*n])
            (*n)++;          /* owned by the array from here, even if incomplete */
        if (rc)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ parts */

static const char *const K_PATIENT[] = {"source", "asAt", "name", "birthDate", "gender", "address",
                                        "generalPractitioner", "phone", "interpreterLanguage", NULL};
static const char *const K_NAME[] = {"use", "family", "given", "prefix", NULL};
static const char *const K_ADDRESS[] = {"line", "city", "district", "postalCode", NULL};
static const char *const K_GP[] = {"odsCode", "display", "phone", NULL};
static const char *const GENDERS[] = {"male", "female", "other", "unknown", NULL};

static int identity(jx_t *x, json_t *o, Mhtas__V1__Identity **out)
{
    const char *P = "patient";
    if (check_keys(x, o, P, K_PATIENT))
        return -1;
    NEW(Mhtas__V1__Identity, MHTAS__V1__IDENTITY__INIT, id);
    *out = id;
    if (part_meta(x, o, P, &id->meta))
        return -1;
    json_t *names;
    if (get_arr(x, o, "name", P, &names))
        return -1;
    if (names == NULL || json_array_size(names) == 0)
        return fail(x, "patient.name: at least one name is required");
    id->names = hub_calloc(json_array_size(names), sizeof *id->names);
    if (id->names == NULL)
        return fail(x, "out of memory");
    for (size_t i = 0; i < json_array_size(names); i++) {
        char p[64];
        json_t *n = json_array_get(names, i);
        snprintf(p, sizeof p, "patient.name[%zu]", i);
        if (!json_is_object(n))
            return fail(x, "%s: must be an object", p);
        if (check_keys(x, n, p, K_NAME))
            return -1;
        NEW(Mhtas__V1__HumanName, MHTAS__V1__HUMAN_NAME__INIT, hn);
        id->names[id->n_names++] = hn;
        if (str_field(x, n, "use", p, 0, &hn->use) ||
            str_field(x, n, "family", p, i == 0, &hn->family) ||
            str_array(x, n, "given", p, &hn->n_given, &hn->given) ||
            str_field(x, n, "prefix", p, 0, &hn->prefix))
            return -1;
        if (i == 0) {
            char norm[CARE_NAME_MAX];
            if (care_norm_name(hn->family, norm, sizeof norm) == 0)
                return fail(x, "patient.name[0].family: has no letters");
        }
    }
    if (date_field(x, o, "birthDate", P, 1, 0, &id->date_of_birth))
        return -1;
    int g = 0;
    if (enum_field(x, o, "gender", P, 0, GENDERS, &g))
        return -1;
    if (g)
        id->gender = hub_strdup(GENDERS[g - 1]);
    json_t *a;
    if (get_obj(x, o, "address", P, &a))
        return -1;
    if (a) {
        if (check_keys(x, a, "patient.address", K_ADDRESS))
            return -1;
        NEW(Mhtas__V1__Address, MHTAS__V1__ADDRESS__INIT, ad);
        id->address = ad;
        if (str_array(x, a, "line", "patient.address", &ad->n_lines, &ad->lines) ||
            str_field(x, a, "city", "patient.address", 0, &ad->city) ||
            str_field(x, a, "district", "patient.address", 0, &ad->district) ||
            str_field(x, a, "postalCode", "patient.address", 0, &ad->postal_code))
            return -1;
        if (ad->postal_code) {
            char norm[9], outward[5];
            if (care_norm_postcode(ad->postal_code, norm, outward) || strlen(norm) < 5)
                return fail(x, "patient.address.postalCode: not a valid UK postcode");
            /* store it in the canonical "BL1 4AA" form */
            char canon[10];
            snprintf(canon, sizeof canon, "%s %s", outward, norm + strlen(outward));
            hub_free(ad->postal_code);
            if ((ad->postal_code = hub_strdup(canon)) == NULL)
                return fail(x, "out of memory");
        }
    }
    json_t *gp;
    if (get_obj(x, o, "generalPractitioner", P, &gp))
        return -1;
    if (gp) {
        const char *GP = "patient.generalPractitioner";
        if (check_keys(x, gp, GP, K_GP))
            return -1;
        NEW(Mhtas__V1__GeneralPractitioner, MHTAS__V1__GENERAL_PRACTITIONER__INIT, g2);
        id->gp = g2;
        if (str_field(x, gp, "odsCode", GP, 0, &g2->ods_code) ||
            str_field(x, gp, "display", GP, 1, &g2->name) ||
            str_field(x, gp, "phone", GP, 0, &g2->phone))
            return -1;
    }
    if (str_field(x, o, "phone", P, 0, &id->phone) ||
        str_field(x, o, "interpreterLanguage", P, 0, &id->interpreter_language))
        return -1;
    return 0;
}

static const char *const K_LEGAL[] = {"source", "asAt", "status", "section", "start", "end",
                                      "responsibleClinician", "hospital", NULL};
static const char *const LEGAL[] = {"informal", "section", "cto", "awol", NULL};

static int legal_status(jx_t *x, json_t *o, Mhtas__V1__LegalStatus **out)
{
    const char *P = "legalStatus";
    if (check_keys(x, o, P, K_LEGAL))
        return -1;
    NEW(Mhtas__V1__LegalStatus, MHTAS__V1__LEGAL_STATUS__INIT, l);
    *out = l;
    int k = 0;
    if (part_meta(x, o, P, &l->meta) || enum_field(x, o, "status", P, 1, LEGAL, &k))
        return -1;
    l->kind = (Mhtas__V1__LegalStatusKind)k;
    if (str_field(x, o, "section", P, k == MHTAS__V1__LEGAL_STATUS_KIND__LEGAL_STATUS_KIND_SECTION,
                  &l->section) ||
        date_field(x, o, "start", P, 0, 0, &l->start_date) ||
        date_field(x, o, "end", P, 0, 0, &l->end_date) ||
        str_field(x, o, "responsibleClinician", P, 0, &l->responsible_clinician) ||
        str_field(x, o, "hospital", P, 0, &l->hospital))
        return -1;
    return 0;
}

static const char *const K_PART_ITEMS[] = {"source", "asAt", "items", NULL};
static const char *const K_COND[] = {"system", "code", "display", "onset", "clinicalStatus", NULL};

static int diagnoses(jx_t *x, json_t *o, Mhtas__V1__Diagnoses **out)
{
    const char *P = "conditions";
    if (check_keys(x, o, P, K_PART_ITEMS))
        return -1;
    NEW(Mhtas__V1__Diagnoses, MHTAS__V1__DIAGNOSES__INIT, d);
    *out = d;
    json_t *a;
    if (part_meta(x, o, P, &d->meta) || get_arr(x, o, "items", P, &a))
        return -1;
    if (a == NULL || json_array_size(a) == 0)
        return 0;
    d->items = hub_calloc(json_array_size(a), sizeof *d->items);
    if (d->items == NULL)
        return fail(x, "out of memory");
    for (size_t i = 0; i < json_array_size(a); i++) {
        char p[64];
        json_t *it = json_array_get(a, i);
        snprintf(p, sizeof p, "conditions.items[%zu]", i);
        if (!json_is_object(it))
            return fail(x, "%s: must be an object", p);
        if (check_keys(x, it, p, K_COND))
            return -1;
        NEW(Mhtas__V1__Diagnosis, MHTAS__V1__DIAGNOSIS__INIT, dx);
        d->items[d->n_items++] = dx;
        if (str_field(x, it, "system", p, 0, &dx->system) ||
            str_field(x, it, "code", p, 0, &dx->code) ||
            str_field(x, it, "display", p, 1, &dx->display) ||
            date_field(x, it, "onset", p, 0, 1, &dx->onset_date) ||
            str_field(x, it, "clinicalStatus", p, 0, &dx->clinical_status))
            return -1;
    }
    return 0;
}

static const char *const K_TEAM[] = {"source", "asAt", "careCoordinator", "cmht", "outOfHours",
                                     "provider", "others", NULL};

static int care_team(jx_t *x, json_t *o, Mhtas__V1__CareTeam **out)
{
    const char *P = "careTeam";
    if (check_keys(x, o, P, K_TEAM))
        return -1;
    NEW(Mhtas__V1__CareTeam, MHTAS__V1__CARE_TEAM__INIT, t);
    *out = t;
    if (part_meta(x, o, P, &t->meta) ||
        contact_field(x, o, "careCoordinator", P, &t->care_coordinator) ||
        contact_field(x, o, "cmht", P, &t->cmht) ||
        contact_field(x, o, "outOfHours", P, &t->out_of_hours) ||
        str_field(x, o, "provider", P, 0, &t->provider) ||
        contact_array(x, o, "others", P, &t->n_others, &t->others))
        return -1;
    return 0;
}

static const char *const K_FLAG[] = {"code", "level", "detail", "recorded", NULL};
static const char *const RISKS[] = {"self-harm", "violence", "weapons", "safeguarding",
                                    "physical-health", NULL};
static const char *const LEVELS[] = {"low", "medium", "high", NULL};

static int risks(jx_t *x, json_t *o, Mhtas__V1__Risks **out)
{
    const char *P = "flags";
    if (check_keys(x, o, P, K_PART_ITEMS))
        return -1;
    NEW(Mhtas__V1__Risks, MHTAS__V1__RISKS__INIT, r);
    *out = r;
    json_t *a;
    if (part_meta(x, o, P, &r->meta) || get_arr(x, o, "items", P, &a))
        return -1;
    if (a == NULL || json_array_size(a) == 0)
        return 0;
    r->flags = hub_calloc(json_array_size(a), sizeof *r->flags);
    if (r->flags == NULL)
        return fail(x, "out of memory");
    for (size_t i = 0; i < json_array_size(a); i++) {
        char p[64];
        json_t *it = json_array_get(a, i);
        snprintf(p, sizeof p, "flags.items[%zu]", i);
        if (!json_is_object(it))
            return fail(x, "%s: must be an object", p);
        if (check_keys(x, it, p, K_FLAG))
            return -1;
        NEW(Mhtas__V1__RiskFlag, MHTAS__V1__RISK_FLAG__INIT, f);
        r->flags[r->n_flags++] = f;
        int kind = 0, level = 0;
        if (enum_field(x, it, "code", p, 1, RISKS, &kind) ||
            enum_field(x, it, "level", p, 0, LEVELS, &level) ||
            str_field(x, it, "detail", p, 0, &f->detail) ||
            date_field(x, it, "recorded", p, 0, 0, &f->recorded_date))
            return -1;
        f->kind = (Mhtas__V1__RiskKind)kind;
        f->level = (Mhtas__V1__RiskLevel)level;
    }
    return 0;
}

static const char *const K_PLAN[] = {"source", "asAt", "warningSigns", "whatHelps", "whatToAvoid",
                                     "placeOfSafety", "contacts", "advanceStatement", "review", NULL};

static int crisis_plan(jx_t *x, json_t *o, Mhtas__V1__CrisisPlan **out)
{
    const char *P = "carePlan";
    if (check_keys(x, o, P, K_PLAN))
        return -1;
    NEW(Mhtas__V1__CrisisPlan, MHTAS__V1__CRISIS_PLAN__INIT, c);
    *out = c;
    if (part_meta(x, o, P, &c->meta) ||
        str_array(x, o, "warningSigns", P, &c->n_warning_signs, &c->warning_signs) ||
        str_array(x, o, "whatHelps", P, &c->n_what_helps, &c->what_helps) ||
        str_array(x, o, "whatToAvoid", P, &c->n_what_to_avoid, &c->what_to_avoid) ||
        str_field(x, o, "placeOfSafety", P, 0, &c->preferred_place_of_safety) ||
        contact_array(x, o, "contacts", P, &c->n_contacts, &c->contacts) ||
        str_field(x, o, "advanceStatement", P, 0, &c->advance_statement) ||
        date_field(x, o, "review", P, 0, 0, &c->review_date))
        return -1;
    return 0;
}

static const char *const K_ENC[] = {"class", "start", "end", "location", "summary", NULL};
static const char *const CLASSES[] = {"community", "crisis-team", "admission", "emergency",
                                      "s136", NULL};

static int recent_contacts(jx_t *x, json_t *o, Mhtas__V1__RecentContacts **out)
{
    const char *P = "encounters";
    if (check_keys(x, o, P, K_PART_ITEMS))
        return -1;
    NEW(Mhtas__V1__RecentContacts, MHTAS__V1__RECENT_CONTACTS__INIT, r);
    *out = r;
    json_t *a;
    if (part_meta(x, o, P, &r->meta) || get_arr(x, o, "items", P, &a))
        return -1;
    if (a == NULL || json_array_size(a) == 0)
        return 0;
    r->items = hub_calloc(json_array_size(a), sizeof *r->items);
    if (r->items == NULL)
        return fail(x, "out of memory");
    for (size_t i = 0; i < json_array_size(a); i++) {
        char p[64];
        json_t *it = json_array_get(a, i);
        snprintf(p, sizeof p, "encounters.items[%zu]", i);
        if (!json_is_object(it))
            return fail(x, "%s: must be an object", p);
        if (check_keys(x, it, p, K_ENC))
            return -1;
        NEW(Mhtas__V1__RecentContact, MHTAS__V1__RECENT_CONTACT__INIT, e);
        r->items[r->n_items++] = e;
        int k = 0;
        if (enum_field(x, it, "class", p, 1, CLASSES, &k) ||
            date_field(x, it, "start", p, 1, 0, &e->start_date) ||
            date_field(x, it, "end", p, 0, 0, &e->end_date) ||
            str_field(x, it, "location", p, 0, &e->location) ||
            str_field(x, it, "summary", p, 0, &e->summary))
            return -1;
        e->kind = (Mhtas__V1__ContactKind)k;
    }
    return 0;
}

/* ------------------------------------------------------------ record */

static const char *const K_TOP[] = {"nhsNumber", "deleted", "restricted", "patient", "legalStatus",
                                    "conditions", "careTeam", "flags", "carePlan", "encounters",
                                    NULL};
static const char *const K_DELETE[] = {"nhsNumber", "deleted", NULL};

static char *dup_or_empty(const char *s)
{
    return hub_strdup(s ? s : "");
}

/* The compact search record: official name, birth date, postcode, borough. */
static int person_of(jx_t *x, const Mhtas__V1__CareSummary *s, Mhtas__V1__PersonMatch **out)
{
    NEW(Mhtas__V1__PersonMatch, MHTAS__V1__PERSON_MATCH__INIT, m);
    *out = m;
    const Mhtas__V1__Identity *id = s->identity;
    const Mhtas__V1__HumanName *n = id->names[0];
    size_t glen = 1;
    for (size_t i = 0; i < n->n_given; i++)
        glen += strlen(n->given[i]) + 1;
    char *given = hub_malloc(glen);
    if (given == NULL)
        return fail(x, "out of memory");
    given[0] = '\0';
    for (size_t i = 0; i < n->n_given; i++) {
        if (i)
            strcat(given, " ");
        strcat(given, n->given[i]);
    }
    m->given_names = given;
    m->nhs_number = dup_or_empty(s->nhs_number);
    m->family_name = dup_or_empty(n->family);
    m->date_of_birth = dup_or_empty(id->date_of_birth);
    m->postcode = dup_or_empty(id->address ? id->address->postal_code : NULL);
    m->borough = dup_or_empty(id->address ? id->address->district : NULL);
    m->gender = dup_or_empty(id->gender);
    m->restricted = s->restricted;
    if (!m->nhs_number || !m->family_name || !m->date_of_birth || !m->postcode || !m->borough ||
        !m->gender)
        return fail(x, "out of memory");
    return 0;
}

int care_record_from_json(json_t *doc, care_record_t *rec, char *err, size_t errlen)
{
    jx_t xs = {err, errlen, 0}, *x = &xs;
    memset(rec, 0, sizeof *rec);
    err[0] = '\0';

    if (!json_is_object(doc))
        return fail(x, "record must be a JSON object");
    json_t *nv = json_object_get(doc, "nhsNumber");
    if (nv == NULL || !json_is_string(nv))
        return fail(x, "nhsNumber: is required (a string of 10 digits)");
    const char *why = nhs_number_validate(json_string_value(nv), rec->nhs);
    if (why)
        return fail(x, "nhsNumber: %s", why);

    json_t *del = json_object_get(doc, "deleted");
    if (del && !json_is_boolean(del))
        return fail(x, "deleted: must be true or false");
    if (del && json_is_true(del)) {
        rec->kind = CARE_RECORD_DELETE;
        return check_keys(x, doc, "deleted record", K_DELETE);
    }
    rec->kind = CARE_RECORD_UPSERT;
    if (check_keys(x, doc, "record", K_TOP))
        return -1;
    json_t *restricted = json_object_get(doc, "restricted");
    if (restricted && !json_is_boolean(restricted))
        return fail(x, "restricted: must be true or false");

    Mhtas__V1__CareSummary *s = hub_malloc(sizeof *s);
    if (s == NULL)
        return fail(x, "out of memory");
    *s = (Mhtas__V1__CareSummary)MHTAS__V1__CARE_SUMMARY__INIT;
    rec->summary = s;
    s->restricted = restricted && json_is_true(restricted);
    if ((s->nhs_number = hub_strdup(rec->nhs)) == NULL)
        goto fail;

    json_t *o;
    if (get_obj(x, doc, "patient", "", &o))
        goto fail;
    if (o == NULL) {
        fail(x, "patient: is required");
        goto fail;
    }
    if (identity(x, o, &s->identity))
        goto fail;
#define PART(key, fn, field)                                                                   \
    if (get_obj(x, doc, key, "", &o) || (o && fn(x, o, &s->field)))                            \
        goto fail;
    PART("legalStatus", legal_status, legal_status)
    PART("conditions", diagnoses, diagnoses)
    PART("careTeam", care_team, care_team)
    PART("flags", risks, risks)
    PART("carePlan", crisis_plan, crisis_plan)
    PART("encounters", recent_contacts, recent_contacts)
#undef PART
    if (person_of(x, s, &rec->person))
        goto fail;
    return 0;

fail:
    care_record_dispose(rec);
    return -1;
}

void care_record_dispose(care_record_t *rec)
{
    if (rec->summary)
        protobuf_c_message_free_unpacked(&rec->summary->base, hub_pb_allocator());
    if (rec->person)
        protobuf_c_message_free_unpacked(&rec->person->base, hub_pb_allocator());
    rec->summary = NULL;
    rec->person = NULL;
}
