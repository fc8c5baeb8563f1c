/* careprint.c -- see careprint.h. The practitioner's terminal is where the
 * summary is meant to be read: it is printed in full, to stdout only. */
#include "cli/careprint.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/pbprint.h"

#define CP(x) MHTAS__V1__CARE_PART__CARE_PART_##x

/* ------------------------------------------------------------ parsing */

/* `s` upper-cased, '-' and ' ' as '_', with `prefix` added unless there. */
static const ProtobufCEnumValue *enum_lookup(const ProtobufCEnumDescriptor *d, const char *prefix, const char *s)
{
    char name[128];
    size_t pl = strlen(prefix), n = 0;
    if (s == NULL || *s == '\0' || strlen(s) + pl >= sizeof name)
        return NULL;
    char *end;
    long num = strtol(s, &end, 10);
    if (*end == '\0')
        return protobuf_c_enum_descriptor_get_value(d, (int)num);
    char up[128];
    for (const char *p = s; *p && n + 1 < sizeof up; p++)
        up[n++] = *p == '-' || *p == ' ' ? '_' : (char)toupper((unsigned char)*p);
    up[n] = '\0';
    snprintf(name, sizeof name, "%s%s", strncmp(up, prefix, pl) == 0 ? "" : prefix, up);
    return protobuf_c_enum_descriptor_get_value_by_name(d, name);
}

static int enum_value(const ProtobufCEnumDescriptor *d, const char *prefix, const char *s)
{
    const ProtobufCEnumValue *v = enum_lookup(d, prefix, s);
    return v ? v->value : 0;
}

int cli_parse_basis(const char *s)
{
    if (s && strcmp(s, "direct") == 0)
        return MHTAS__V1__LAWFUL_BASIS__LAWFUL_BASIS_DIRECT_CARE;
    if (s && strcmp(s, "vital") == 0)
        return MHTAS__V1__LAWFUL_BASIS__LAWFUL_BASIS_VITAL_INTERESTS;
    return enum_value(&mhtas__v1__lawful_basis__descriptor, "LAWFUL_BASIS_", s);
}

int cli_parse_glass_reason(const char *s)
{
    return enum_value(&mhtas__v1__break_glass_reason__descriptor, "BREAK_GLASS_REASON_", s);
}

int cli_parse_audit_action(const char *s)
{
    if (s && strcmp(s, "search") == 0)
        return MHTAS__V1__AUDIT_ACTION__AUDIT_ACTION_SEARCH_RESULT;
    return enum_value(&mhtas__v1__audit_action__descriptor, "AUDIT_ACTION_", s);
}

int cli_parse_parts(const char *list, Mhtas__V1__CarePart *parts, int cap)
{
    char buf[512];
    if (list == NULL || strlen(list) >= sizeof buf)
        return -1;
    strcpy(buf, list);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int v = enum_value(&mhtas__v1__care_part__descriptor, "CARE_PART_", tok);
        if (v == 0 || n == cap)
            return -1;
        parts[n++] = (Mhtas__V1__CarePart)v;
    }
    return n;
}

/* ------------------------------------------------------------ printing helpers */

static const char *ename(const ProtobufCEnumDescriptor *d, int v, const char *prefix)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    if (ev == NULL)
        return "?";
    size_t n = strlen(prefix);
    return strncmp(ev->name, prefix, n) == 0 ? ev->name + n : ev->name;
}

static const char *part_label(int part)
{
    static const char *const names[] = { "?",          "Identity", "Legal status", "Diagnoses",
                                         "Care team",  "Risks",    "Crisis plan",  "Recent contacts" };
    return part > 0 && (size_t)part < sizeof names / sizeof names[0] ? names[part] : "?";
}

/* "2026-11-23 10:04 UTC" */
static void put_time(FILE *out, int64_t ms)
{
    if (ms <= 0) {
        fputs("unknown", out);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    fputs(buf, out);
}

static void put_nhs(FILE *out, const char *n)
{
    if (n && strlen(n) == 10)
        fprintf(out, "%.3s %.3s %.4s", n, n + 3, n + 6);
    else
        fputs(n ? n : "", out);
}

static void put_list(FILE *out, char **v, size_t n, const char *sep)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? sep : "", v[i]);
}

static void kv(FILE *out, const char *k, const char *v)
{
    if (v && *v)
        fprintf(out, "    %s: %s\n", k, v);
}

static void contact(FILE *out, const char *k, const Mhtas__V1__CareContact *c)
{
    if (c == NULL)
        return;
    fprintf(out, "    %s: ", k);
    const char *bits[] = { c->name, c->role, c->team, c->phone };
    int n = 0;
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
        if (bits[i] && *bits[i])
            fprintf(out, "%s%s", n++ ? ", " : "", bits[i]);
    if (c->instructions && *c->instructions)
        fprintf(out, " (%s)", c->instructions);
    fputc('\n', out);
}

static bool is_stale(const Mhtas__V1__GetCareSummaryResponse *r, int part)
{
    for (size_t i = 0; i < r->n_stale_parts; i++)
        if ((int)r->stale_parts[i] == part)
            return true;
    return false;
}

/* "== Legal status  [RiO (GMMH), as at ...]" or the STALE flag. */
static bool head(FILE *out, const Mhtas__V1__GetCareSummaryResponse *r, int part, const Mhtas__V1__PartMeta *meta,
                 bool present)
{
    fprintf(out, "== %s", part_label(part));
    const char *src = meta && *meta->source ? meta->source : "source not given";
    if (is_stale(r, part)) {
        fprintf(out, "  [STALE: as at ");
        put_time(out, meta ? meta->as_at_ms : 0);
        fprintf(out, ", %s -- confirm before relying on it]", src);
    } else if (present) {
        fprintf(out, "  [%s, as at ", src);
        put_time(out, meta ? meta->as_at_ms : 0);
        fputc(']', out);
    }
    fputc('\n', out);
    if (!present)
        fputs("    not recorded\n", out);
    return present;
}

static void lower_words(FILE *out, const ProtobufCEnumDescriptor *d, int v, const char *prefix)
{
    for (const char *p = ename(d, v, prefix); *p; p++)
        fputc(*p == '_' ? ' ' : tolower((unsigned char)*p), out);
}

/* ------------------------------------------------------------ the summary */

static void print_summary(FILE *out, const Mhtas__V1__GetCareSummaryResponse *r)
{
    const Mhtas__V1__CareSummary *s = r->summary;
    bool restricted = r->restricted || (s && s->restricted);
    fprintf(out, "status=OK restricted=%s stale=", restricted ? "true" : "false");
    for (size_t i = 0; i < r->n_stale_parts; i++)
        fprintf(out, "%s%s", i ? "," : "", ename(&mhtas__v1__care_part__descriptor, r->stale_parts[i], "CARE_PART_"));
    if (r->n_stale_parts == 0)
        fputc('-', out);
    fprintf(out, " audit_seq=%" PRIu64 " read_at_ms=%" PRId64 "\n", r->audit_seq, r->read_at_ms);
    if (s == NULL)
        return;
    if (restricted)
        fputs("!! RESTRICTED RECORD: read under break-glass; this access is reviewed. Share only what is strictly "
              "necessary.\n",
              out);
    const Mhtas__V1__Identity *id = s->identity;
    const Mhtas__V1__HumanName *nm = id && id->n_names ? id->names[0] : NULL;
    if (nm) {
        for (const char *p = nm->family; *p; p++)
            fputc(toupper((unsigned char)*p), out);
        fputs(", ", out);
        put_list(out, nm->given, nm->n_given, " ");
        if (*nm->prefix)
            fprintf(out, " (%s)", nm->prefix);
    } else {
        fputs("(name not recorded)", out);
    }
    fputs("   NHS ", out);
    put_nhs(out, s->nhs_number);
    if (id)
        fprintf(out, "   born %s%s%s", id->date_of_birth, *id->gender ? ", " : "", id->gender);
    fputc('\n', out);
    if (r->n_stale_parts)
        fprintf(out, "%zu part%s STALE (older than the cache's limit): see the flags below\n", r->n_stale_parts,
                r->n_stale_parts == 1 ? " is" : "s are");

    if (head(out, r, CP(IDENTITY), id ? id->meta : NULL, id != NULL)) {
        for (size_t i = 1; i < id->n_names; i++) {
            fputs("    Also known as: ", out);
            put_list(out, id->names[i]->given, id->names[i]->n_given, " ");
            fprintf(out, " %s%s%s%s\n", id->names[i]->family, *id->names[i]->use ? " (" : "", id->names[i]->use,
                    *id->names[i]->use ? ")" : "");
        }
        if (id->address) {
            fputs("    Address: ", out);
            put_list(out, id->address->lines, id->address->n_lines, ", ");
            fprintf(out, "%s%s%s%s", *id->address->city ? ", " : "", id->address->city,
                    *id->address->postal_code ? ", " : "", id->address->postal_code);
            if (*id->address->district)
                fprintf(out, " (%s)", id->address->district);
            fputc('\n', out);
        }
        if (id->gp)
            fprintf(out, "    GP: %s%s%s%s%s%s\n", id->gp->name, *id->gp->ods_code ? " [" : "", id->gp->ods_code,
                    *id->gp->ods_code ? "]" : "", *id->gp->phone ? ", " : "", id->gp->phone);
        kv(out, "Phone", id->phone);
        kv(out, "Interpreter", id->interpreter_language);
    }
    const Mhtas__V1__LegalStatus *ls = s->legal_status;
    if (head(out, r, CP(LEGAL_STATUS), ls ? ls->meta : NULL, ls != NULL)) {
        fputs("    ", out);
        switch (ls->kind) {
        case MHTAS__V1__LEGAL_STATUS_KIND__LEGAL_STATUS_KIND_INFORMAL: fputs("Informal (not detained)", out); break;
        case MHTAS__V1__LEGAL_STATUS_KIND__LEGAL_STATUS_KIND_SECTION: fprintf(out, "Detained under section %s", ls->section); break;
        case MHTAS__V1__LEGAL_STATUS_KIND__LEGAL_STATUS_KIND_CTO: fputs("Community treatment order (s17A)", out); break;
        case MHTAS__V1__LEGAL_STATUS_KIND__LEGAL_STATUS_KIND_AWOL: fprintf(out, "AWOL from section %s", ls->section); break;
        default: fputs("not stated", out); break;
        }
        fputc('\n', out);
        kv(out, "From", ls->start_date);
        kv(out, "Until", ls->end_date);
        kv(out, "Responsible clinician", ls->responsible_clinician);
        kv(out, "Hospital", ls->hospital);
    }
    const Mhtas__V1__Diagnoses *dg = s->diagnoses;
    if (head(out, r, CP(DIAGNOSES), dg ? dg->meta : NULL, dg != NULL))
        for (size_t i = 0; i < dg->n_items; i++) {
            const Mhtas__V1__Diagnosis *x = dg->items[i];
            fprintf(out, "    - %s [%s %s] %s%s%s\n", x->display, x->system, x->code, x->clinical_status,
                    *x->onset_date ? ", since " : "", x->onset_date);
        }
    const Mhtas__V1__CareTeam *ct = s->care_team;
    if (head(out, r, CP(CARE_TEAM), ct ? ct->meta : NULL, ct != NULL)) {
        kv(out, "Provider", ct->provider);
        contact(out, "Care coordinator", ct->care_coordinator);
        contact(out, "CMHT", ct->cmht);
        contact(out, "Out of hours", ct->out_of_hours);
        for (size_t i = 0; i < ct->n_others; i++)
            contact(out, "Also", ct->others[i]);
    }
    const Mhtas__V1__Risks *rk = s->risks;
    if (head(out, r, CP(RISKS), rk ? rk->meta : NULL, rk != NULL))
        for (size_t i = 0; i < rk->n_flags; i++) {
            const Mhtas__V1__RiskFlag *f = rk->flags[i];
            fprintf(out, "    - %s ", ename(&mhtas__v1__risk_level__descriptor, f->level, "RISK_LEVEL_"));
            lower_words(out, &mhtas__v1__risk_kind__descriptor, f->kind, "RISK_KIND_");
            fprintf(out, "%s%s%s%s%s\n", *f->detail ? ": " : "", f->detail, *f->recorded_date ? " (recorded " : "",
                    f->recorded_date, *f->recorded_date ? ")" : "");
        }
    const Mhtas__V1__CrisisPlan *cp = s->crisis_plan;
    if (head(out, r, CP(CRISIS_PLAN), cp ? cp->meta : NULL, cp != NULL)) {
        struct { const char *k; char **v; size_t n; } lists[] = {
            { "Warning signs", cp->warning_signs, cp->n_warning_signs },
            { "What helps", cp->what_helps, cp->n_what_helps },
            { "What to avoid", cp->what_to_avoid, cp->n_what_to_avoid },
        };
        for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
            if (lists[i].n) {
                fprintf(out, "    %s: ", lists[i].k);
                put_list(out, lists[i].v, lists[i].n, "; ");
                fputc('\n', out);
            }
        kv(out, "Preferred place of safety", cp->preferred_place_of_safety);
        for (size_t i = 0; i < cp->n_contacts; i++)
            contact(out, "Contact", cp->contacts[i]);
        if (*cp->advance_statement)
            fprintf(out, "    Advance statement: \"%s\"\n", cp->advance_statement);
        kv(out, "Review due", cp->review_date);
    }
    const Mhtas__V1__RecentContacts *rc = s->recent_contacts;
    if (head(out, r, CP(RECENT_CONTACTS), rc ? rc->meta : NULL, rc != NULL))
        for (size_t i = 0; i < rc->n_items; i++) {
            const Mhtas__V1__RecentContact *x = rc->items[i];
            fprintf(out, "    - %s%s%s ", x->start_date, *x->end_date ? " to " : "", x->end_date);
            lower_words(out, &mhtas__v1__contact_kind__descriptor, x->kind, "CONTACT_KIND_");
            fprintf(out, "%s%s%s%s\n", *x->location ? ", " : "", x->location, *x->summary ? ": " : "", x->summary);
        }
}

/* ------------------------------------------------------------ search, audit */

static void print_search(FILE *out, const Mhtas__V1__SearchPersonsResponse *r)
{
    fprintf(out, "status=OK count=%zu candidates=%u more=%s json=", r->n_matches, r->candidates, r->more ? "true" : "false");
    cli_pb_print(out, &r->base);
    fputc('\n', out);
    for (size_t i = 0; i < r->n_matches; i++) {
        const Mhtas__V1__PersonMatch *m = r->matches[i];
        fprintf(out, "%2zu. score=%u %s NHS ", i + 1, m->score, m->exact ? "exact" : "close(confirm two identifiers)");
        put_nhs(out, m->nhs_number);
        fputs("  ", out);
        for (const char *p = m->family_name; *p; p++)
            fputc(toupper((unsigned char)*p), out);
        fprintf(out, ", %s  born %s  %s %s %s%s  matched=", m->given_names, m->date_of_birth, m->postcode, m->borough,
                m->gender, m->restricted ? "  RESTRICTED(break-glass)" : "");
        for (size_t j = 0; j < m->n_reasons; j++)
            fprintf(out, "%s%s", j ? "," : "", ename(&mhtas__v1__match_reason__descriptor, m->reasons[j], "MATCH_REASON_"));
        fputc('\n', out);
    }
}

static void print_audit(FILE *out, const Mhtas__V1__ListAuditResponse *r)
{
    fprintf(out, "status=OK count=%zu more=%s\n", r->n_entries, r->more ? "true" : "false");
    for (size_t i = 0; i < r->n_entries; i++) {
        const Mhtas__V1__AuditEntry *e = r->entries[i];
        const Mhtas__V1__AuditRecord *a = e->record;
        if (a == NULL)
            continue;
        fprintf(out, "seq=%" PRIu64 " at=", e->seq);
        time_t t = (time_t)(e->at_ms / 1000);
        struct tm tm;
        char buf[32];
        gmtime_r(&t, &tm);
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(out, "%s action=%s user=%s incident=%" PRIu64 " nhs=%s basis=%s method=%s reason=", buf,
                ename(&mhtas__v1__audit_action__descriptor, a->action, "AUDIT_ACTION_"), a->user_id, a->incident_id,
                *a->nhs_number ? a->nhs_number : "-", ename(&mhtas__v1__lawful_basis__descriptor, a->lawful_basis, "LAWFUL_BASIS_"),
                a->method);
        cli_print_string(out, a->reason);
        if (a->restricted)
            fputs(" restricted=true", out);
        if (a->break_glass) {
            fprintf(out, " break_glass=%s glass_text=",
                    ename(&mhtas__v1__break_glass_reason__descriptor, a->break_glass_reason, "BREAK_GLASS_REASON_"));
            cli_print_string(out, a->break_glass_text);
        }
        if (a->n_parts) {
            fputs(" parts=", out);
            for (size_t j = 0; j < a->n_parts; j++)
                fprintf(out, "%s%s", j ? "," : "", ename(&mhtas__v1__care_part__descriptor, a->parts[j], "CARE_PART_"));
        }
        fputc('\n', out);
    }
}

bool cli_print_care(FILE *out, const ProtobufCMessage *resp)
{
    const ProtobufCMessageDescriptor *d = resp->descriptor;
    if (d == &mhtas__v1__get_care_summary_response__descriptor)
        print_summary(out, (const void *)resp);
    else if (d == &mhtas__v1__search_persons_response__descriptor)
        print_search(out, (const void *)resp);
    else if (d == &mhtas__v1__list_audit_response__descriptor)
        print_audit(out, (const void *)resp);
    else
        return false;
    fflush(out);
    return true;
}
