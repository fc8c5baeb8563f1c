/* care.c -- who may look up, read and share care records, and the audit
 * records that say who did (see core.h "care records" for the rules).
 *
 * The hub runs the care-record methods itself, because they wait for the
 * Redis cache and for the journal (server/hub/hub_care.c); what is decided
 * here is pure: the access rules, and building the audit events. Error
 * messages name fields and incidents, never a person or record content
 * (they are logged by status only, but a message may still be shown).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/core_internal.h"

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int text_ok(core_t *c, const char *s, const char *name)
{
    if (!set(s))
        return core__fail(c, CORE_E_INVALID, "%s is required", name);
    if (strlen(s) > c->cfg.max_text_bytes)
        return core__fail(c, CORE_E_INVALID, "%s is longer than %u bytes", name, c->cfg.max_text_bytes);
    return CORE_OK;
}

const char *core_care_part_name(int part)
{
    static const char *const names[] = { "unknown",  "identity", "legal status",   "diagnoses",
                                         "care team", "risks",   "crisis plan",    "recent contacts" };
    return part > 0 && (size_t)part < sizeof names / sizeof names[0] ? names[part] : "unknown";
}

/* Police roles are refused first, before anything about the request is
 * looked at: they learn nothing from the answer. */
static int need_practitioner(core_t *c, int user)
{
    core__ok(c);
    if (user < 0 || (size_t)user >= c->cfg.n_users)
        return core__fail(c, CORE_E_PERM, "unknown user");
    if (c->cfg.users[user].role != ROLE(PRACTITIONER))
        return core__fail(c, CORE_E_PERM, "care records are for practitioners only");
    return CORE_OK;
}

static int need_basis(core_t *c, Mhtas__V1__LawfulBasis basis, const char *reason)
{
    if (basis != MHTAS__V1__LAWFUL_BASIS__LAWFUL_BASIS_DIRECT_CARE &&
        basis != MHTAS__V1__LAWFUL_BASIS__LAWFUL_BASIS_VITAL_INTERESTS &&
        basis != MHTAS__V1__LAWFUL_BASIS__LAWFUL_BASIS_SAFEGUARDING)
        return core__fail(c, CORE_E_INVALID,
                          "lawful_basis is required: direct care, vital interests or safeguarding");
    return text_ok(c, reason, "reason");
}

/* The incident `user` holds now: NOT_FOUND for one they may not see (as
 * elsewhere, so that nobody probes for incidents that are not theirs),
 * FAILED_PRECONDITION for one they see but do not hold. */
static int need_holder(core_t *c, int user, uint64_t id, incident_t **out)
{
    if (id == 0)
        return core__fail(c, CORE_E_INVALID,
                          "incident_id is required: the incident you hold (or break the glass, with a reason)");
    incident_t *inc = core__incident(c, id);
    bool sees = inc && (inc->holder == user || core__is_offeree(inc, user) || core__bit(inc->held, user));
    if (!sees)
        return core__fail(c, CORE_E_NOT_FOUND, "incident %llu not found", (unsigned long long)id);
    if (inc->holder != user || !core__is_held(inc->state))
        return core__fail(c, CORE_E_STATE,
                          "incident %llu is not held by you: care records are read for incidents you hold "
                          "(or break the glass, with a reason)",
                          (unsigned long long)id);
    *out = inc;
    return CORE_OK;
}

int core_check_care_access(core_t *c, int64_t now, int user, const core_care_access_t *a)
{
    (void)now;
    int rc = need_practitioner(c, user);
    if (rc || (rc = need_basis(c, a->lawful_basis, a->reason)))
        return rc;
    if (!a->break_glass) {
        incident_t *inc;
        return need_holder(c, user, a->incident_id, &inc);
    }
    if (a->break_glass_reason <= MHTAS__V1__BREAK_GLASS_REASON__BREAK_GLASS_REASON_UNSPECIFIED ||
        a->break_glass_reason > MHTAS__V1__BREAK_GLASS_REASON__BREAK_GLASS_REASON_OTHER)
        return core__fail(c, CORE_E_INVALID, "break_glass_reason is required to break the glass");
    if ((rc = text_ok(c, a->break_glass_text, "break_glass_text")))
        return rc;
    if (a->incident_id && core__incident(c, a->incident_id) == NULL)
        return core__fail(c, CORE_E_NOT_FOUND, "incident %llu not found", (unsigned long long)a->incident_id);
    return CORE_OK;
}

/* 10 digits with a valid modulus-11 check digit, spaces and hyphens
 * ignored; the digits go to `out` (11 bytes). */
static bool nhs_digits(const char *s, char out[11])
{
    size_t n = 0;
    for (; s && *s; s++) {
        if (*s == ' ' || *s == '-')
            continue;
        if (!isdigit((unsigned char)*s) || n == 10)
            return false;
        out[n++] = *s;
    }
    out[n] = '\0';
    return n == 10 && core__nhs_number_valid(out);
}

int core_check_share(core_t *c, int64_t now, int user, const Mhtas__V1__ShareWithPoliceRequest *req)
{
    (void)now;
    int rc = need_practitioner(c, user);
    if (rc || (rc = need_basis(c, req->lawful_basis, req->reason)))
        return rc;
    incident_t *inc;
    if ((rc = need_holder(c, user, req->incident_id, &inc)))
        return rc;
    char nhs[11];
    if (!nhs_digits(req->nhs_number, nhs))
        return core__fail(c, CORE_E_INVALID, "nhs_number must be 10 digits with a valid check digit");
    if (req->n_parts == 0)
        return core__fail(c, CORE_E_INVALID, "parts is required: choose what the police need to know");
    for (size_t i = 0; i < req->n_parts; i++) {
        if (req->parts[i] <= MHTAS__V1__CARE_PART__CARE_PART_UNSPECIFIED ||
            req->parts[i] > MHTAS__V1__CARE_PART__CARE_PART_RECENT_CONTACTS)
            return core__fail(c, CORE_E_INVALID, "parts[%zu] is not a care part", i);
        for (size_t j = 0; j < i; j++)
            if (req->parts[j] == req->parts[i])
                return core__fail(c, CORE_E_INVALID, "parts[%zu] repeats a part", i);
    }
    /* The message adds the part names (at most ~120 bytes) to the summary. */
    if (!set(req->summary))
        return core__fail(c, CORE_E_INVALID, "summary is required: what the police are told");
    if (strlen(req->summary) + 160 > c->cfg.max_text_bytes)
        return core__fail(c, CORE_E_INVALID, "summary is longer than %u bytes",
                          c->cfg.max_text_bytes > 160 ? c->cfg.max_text_bytes - 160 : 0);
    if (c->cfg.max_messages_per_incident && inc->n_msgs >= c->cfg.max_messages_per_incident)
        return core__fail(c, CORE_E_EXHAUSTED, "incident %llu already has its maximum of %u messages",
                          (unsigned long long)inc->id, c->cfg.max_messages_per_incident);
    return CORE_OK;
}

int core_emit_audit(core_t *c, int64_t now, int user, const Mhtas__V1__AuditRecord *rec, uint64_t *seq)
{
    core__ok(c);
    if (seq)
        *seq = 0;
    if (user < 0 || (size_t)user >= c->cfg.n_users)
        return core__fail(c, CORE_E_PERM, "unknown user");
    /* A private copy, with who did it filled in by the core. */
    Mhtas__V1__AuditRecord *a = core__pb_clone(&rec->base);
    Mhtas__V1__Event *ev = a ? core__ev_new() : NULL;
    if (a && a->user_id != protobuf_c_empty_string) {
        hub_free(a->user_id);
        a->user_id = (char *)protobuf_c_empty_string;
    }
    if (ev == NULL || core__set_str(&a->user_id, c->cfg.users[user].id)) {
        core__pb_free(a);
        core__pb_free(ev);
        return core__fail(c, CORE_E_NOMEM, "out of memory");
    }
    ev->kind_case = MHTAS__V1__EVENT__KIND_AUDIT;
    ev->audit = a;
    bool break_glass = a->action == MHTAS__V1__AUDIT_ACTION__AUDIT_ACTION_BREAK_GLASS;
    uint64_t incident = a->incident_id;
    int reason = a->break_glass_reason;
    /* Journal only: nobody's stream carries audit records (supervisors list
     * them with ListAudit). An audit record changes nothing on the board. */
    core_audience_t nobody = { 0 };
    bool dirty = c->board_dirty;
    core__emit(c, now, ev, &nobody, 0);
    c->board_dirty = dirty;
    if (seq)
        *seq = c->last_seq;
    if (break_glass) {
        /* Flagged to supervisors at once; who and why, never whose record. */
        static const char *const why[] = { "", "risk to life", "safeguarding emergency", "covering a colleague",
                                           "incident not yet routed", "restricted record", "other" };
        const core_user_t *u = &c->cfg.users[user];
        char where[64] = "outside any incident";
        if (incident)
            snprintf(where, sizeof where, "on incident %llu", (unsigned long long)incident);
        char text[256];
        snprintf(text, sizeof text, "%s (%s) broke the glass to read care records %s: %s. Review it with ListAudit.",
                 u->display_name ? u->display_name : u->id, u->id, where,
                 reason > 0 && (size_t)reason < sizeof why / sizeof why[0] ? why[reason] : "other");
        core_audience_t sup = { .supervisors = true };
        core__notice(c, now, MHTAS__V1__NOTICE_KIND__NOTICE_KIND_BREAK_GLASS, incident, text, &sup);
        c->board_dirty = dirty;
    }
    return CORE_OK;
}
