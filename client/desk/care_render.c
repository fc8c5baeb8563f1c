/* care_render.c -- a care summary, part by part, into the panel's text
 * buffer: each part with its source and as-at time, stale parts flagged,
 * missing parts said so. Display only: nothing here logs or stores the
 * record (see care.c). */
#include "desk/desk.h"
#include "desk/care_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

/* ------------------------------------------------------------ the summary */

static void put(care_panel_t *p, const char *text, const char *tag)
{
    GtkTextIter it;
    gtk_text_buffer_get_end_iter(p->record, &it);
    if (tag)
        gtk_text_buffer_insert_with_tags_by_name(p->record, &it, text, -1, tag, NULL);
    else
        gtk_text_buffer_insert(p->record, &it, text, -1);
}

static void putf(care_panel_t *p, const char *tag, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void putf(care_panel_t *p, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    put(p, s, tag);
    g_free(s);
}

/* "  Key: value" when the value is not empty. */
static void kv(care_panel_t *p, const char *k, const char *v)
{
    if (v == NULL || *v == '\0')
        return;
    putf(p, "key", "  %s: ", k);
    put(p, v, NULL);
    put(p, "\n", NULL);
}

static char *fmt_day_time(int64_t ms)
{
    if (ms <= 0)
        return g_strdup("unknown");
    GDateTime *t = g_date_time_new_from_unix_local(ms / 1000);
    if (t == NULL)
        return g_strdup("?");
    char *s = g_date_time_format(t, "%Y-%m-%d %H:%M");
    g_date_time_unref(t);
    return s;
}

static bool part_stale(const care_panel_t *p, int part)
{
    for (size_t i = 0; p->rec && i < p->rec->n_stale_parts; i++)
        if ((int)p->rec->stale_parts[i] == part)
            return true;
    return false;
}

/* The heading of a part: its title, source and as-at, a stale flag. */
static void part_head(care_panel_t *p, int part, const Mhtas__V1__PartMeta *meta, bool present)
{
    put(p, care_part_label(part), "h2");
    put(p, "\n", NULL);
    char *at = fmt_day_time(meta ? meta->as_at_ms : 0);
    const char *src = meta && *meta->source ? meta->source : "source not given";
    if (part_stale(p, part)) {
        putf(p, "stale", "\u26A0 stale: as at %s (%s) \u2014 confirm before relying on it", at, src);
        put(p, "\n", NULL);
        p->stale_shown[part] = true;
    } else if (present) {
        putf(p, "meta", "%s \u00b7 as at %s\n", src, at);
    }
    g_free(at);
    if (!present)
        put(p, "  Not recorded.\n", "missing");
}

static void contact_line(care_panel_t *p, const char *k, const Mhtas__V1__CareContact *c)
{
    if (c == NULL)
        return;
    GString *s = g_string_new(NULL);
    const char *bits[] = { c->name, c->role, c->team, c->phone };
    for (size_t i = 0; i < G_N_ELEMENTS(bits); i++)
        if (bits[i] && *bits[i])
            g_string_append_printf(s, "%s%s", s->len ? ", " : "", bits[i]);
    if (c->instructions && *c->instructions)
        g_string_append_printf(s, " (%s)", c->instructions);
    kv(p, k, s->str);
    g_string_free(s, TRUE);
}

/* protobuf-c's repeated strings are counted, not NULL-terminated. */
static char *join(char **items, size_t n, const char *sep)
{
    GString *s = g_string_new(NULL);
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(s, "%s%s", i ? sep : "", items[i]);
    return g_string_free(s, FALSE);
}

static void list_line(care_panel_t *p, const char *k, char **items, size_t n)
{
    if (n == 0)
        return;
    char *s = join(items, n, "; ");
    kv(p, k, s);
    g_free(s);
}

int care_age_of(const char *dob)
{
    int y, m, dd;
    if (dob == NULL || sscanf(dob, "%d-%d-%d", &y, &m, &dd) != 3)
        return -1;
    GDateTime *now = g_date_time_new_now_local();
    int age = g_date_time_get_year(now) - y;
    int nm = g_date_time_get_month(now), nd = g_date_time_get_day_of_month(now);
    if (nm < m || (nm == m && nd < dd))
        age--;
    g_date_time_unref(now);
    return age;
}

static void render_identity(care_panel_t *p, const Mhtas__V1__Identity *id)
{
    part_head(p, CP(IDENTITY), id ? id->meta : NULL, id != NULL);
    if (id == NULL)
        return;
    char *born = g_strdup_printf("%s%s", id->date_of_birth, "");
    int age = care_age_of(id->date_of_birth);
    if (age >= 0) {
        g_free(born);
        born = g_strdup_printf("%s (age %d)%s%s", id->date_of_birth, age, *id->gender ? ", " : "", id->gender);
    }
    kv(p, "Born", born);
    g_free(born);
    for (size_t i = 1; i < id->n_names; i++) {
        const Mhtas__V1__HumanName *n = id->names[i];
        char *given = join(n->given, n->n_given, " ");
        char *s = g_strdup_printf("%s %s%s%s%s", given, n->family, *n->use ? " (" : "", n->use, *n->use ? ")" : "");
        kv(p, "Also known as", g_strstrip(s));
        g_free(s);
        g_free(given);
    }
    if (id->address) {
        const Mhtas__V1__Address *a = id->address;
        GString *s = g_string_new(NULL);
        for (size_t i = 0; i < a->n_lines; i++)
            g_string_append_printf(s, "%s%s", s->len ? ", " : "", a->lines[i]);
        const char *bits[] = { a->city, a->postal_code };
        for (size_t i = 0; i < G_N_ELEMENTS(bits); i++)
            if (*bits[i])
                g_string_append_printf(s, "%s%s", s->len ? ", " : "", bits[i]);
        if (*a->district)
            g_string_append_printf(s, " (%s)", a->district);
        kv(p, "Address", s->str);
        g_string_free(s, TRUE);
    }
    if (id->gp) {
        char *s = g_strdup_printf("%s%s%s%s%s", id->gp->name, *id->gp->ods_code ? " [" : "", id->gp->ods_code,
                                  *id->gp->ods_code ? "]" : "", "");
        if (*id->gp->phone) {
            char *t = g_strdup_printf("%s, %s", s, id->gp->phone);
            g_free(s);
            s = t;
        }
        kv(p, "GP", s);
        g_free(s);
    }
    kv(p, "Phone", id->phone);
    kv(p, "Interpreter", id->interpreter_language);
}

static void render_legal(care_panel_t *p, const Mhtas__V1__LegalStatus *ls)
{
    part_head(p, CP(LEGAL_STATUS), ls ? ls->meta : NULL, ls != NULL);
    if (ls == NULL)
        return;
    char *what;
    switch (ls->kind) {
    case MHTAS__V1__LEGAL_STATUS_KIND__LEGAL_STATUS_KIND_INFORMAL:
        what = g_strdup("Informal (not detained)");
        break;
    case MHTAS__V1__LEGAL_STATUS_KIND__LEGAL_STATUS_KIND_SECTION:
        what = g_strdup_printf("Detained under section %s", *ls->section ? ls->section : "?");
        break;
    case MHTAS__V1__LEGAL_STATUS_KIND__LEGAL_STATUS_KIND_CTO:
        what = g_strdup("Community treatment order (s17A)");
        break;
    case MHTAS__V1__LEGAL_STATUS_KIND__LEGAL_STATUS_KIND_AWOL:
        what = g_strdup_printf("AWOL (absent without leave)%s%s", *ls->section ? " from section " : "", ls->section);
        break;
    default:
        what = g_strdup("Not stated");
        break;
    }
    putf(p, ls->kind == MHTAS__V1__LEGAL_STATUS_KIND__LEGAL_STATUS_KIND_AWOL ? "alert" : "strong", "  %s\n", what);
    g_free(what);
    kv(p, "From", ls->start_date);
    kv(p, "Until", ls->end_date);
    kv(p, "Responsible clinician", ls->responsible_clinician);
    kv(p, "Hospital", ls->hospital);
}

static void render_diagnoses(care_panel_t *p, const Mhtas__V1__Diagnoses *dg)
{
    part_head(p, CP(DIAGNOSES), dg ? dg->meta : NULL, dg != NULL);
    if (dg == NULL)
        return;
    if (dg->n_items == 0)
        put(p, "  None recorded.\n", "missing");
    for (size_t i = 0; i < dg->n_items; i++) {
        const Mhtas__V1__Diagnosis *x = dg->items[i];
        putf(p, NULL, "  \u2022 %s", x->display);
        putf(p, "meta", "  %s%s%s%s%s%s%s\n", *x->code ? "[" : "", x->code, *x->code ? "] " : "", x->clinical_status,
             *x->onset_date ? ", since " : "", x->onset_date, "");
    }
}

static void render_team(care_panel_t *p, const Mhtas__V1__CareTeam *ct)
{
    part_head(p, CP(CARE_TEAM), ct ? ct->meta : NULL, ct != NULL);
    if (ct == NULL)
        return;
    kv(p, "Provider", ct->provider);
    contact_line(p, "Care coordinator", ct->care_coordinator);
    contact_line(p, "CMHT", ct->cmht);
    contact_line(p, "Out of hours", ct->out_of_hours);
    for (size_t i = 0; i < ct->n_others; i++)
        contact_line(p, "Also", ct->others[i]);
}

static void render_risks(care_panel_t *p, const Mhtas__V1__Risks *rk)
{
    part_head(p, CP(RISKS), rk ? rk->meta : NULL, rk != NULL);
    if (rk == NULL)
        return;
    if (rk->n_flags == 0)
        put(p, "  No risk flags recorded.\n", "missing");
    for (size_t i = 0; i < rk->n_flags; i++) {
        const Mhtas__V1__RiskFlag *f = rk->flags[i];
        char *kind = care_enum_words(&mhtas__v1__risk_kind__descriptor, f->kind, "RISK_KIND_");
        const char *lvl = pb_enum(&mhtas__v1__risk_level__descriptor, f->level, "RISK_LEVEL_");
        putf(p, f->level == MHTAS__V1__RISK_LEVEL__RISK_LEVEL_HIGH ? "alert" : "strong", "  \u2022 %s %s", lvl, kind);
        putf(p, NULL, "%s%s", *f->detail ? ": " : "", f->detail);
        if (*f->recorded_date)
            putf(p, "meta", "  (recorded %s)", f->recorded_date);
        put(p, "\n", NULL);
        g_free(kind);
    }
}

static void render_plan(care_panel_t *p, const Mhtas__V1__CrisisPlan *cp)
{
    part_head(p, CP(CRISIS_PLAN), cp ? cp->meta : NULL, cp != NULL);
    if (cp == NULL)
        return;
    list_line(p, "Warning signs", cp->warning_signs, cp->n_warning_signs);
    list_line(p, "What helps", cp->what_helps, cp->n_what_helps);
    list_line(p, "What to avoid", cp->what_to_avoid, cp->n_what_to_avoid);
    kv(p, "Preferred place of safety", cp->preferred_place_of_safety);
    for (size_t i = 0; i < cp->n_contacts; i++)
        contact_line(p, "Contact", cp->contacts[i]);
    if (*cp->advance_statement) {
        char *q = g_strdup_printf("\u201c%s\u201d", cp->advance_statement);
        kv(p, "Advance statement", q);
        g_free(q);
    }
    kv(p, "Review due", cp->review_date);
}

static void render_contacts(care_panel_t *p, const Mhtas__V1__RecentContacts *rc)
{
    part_head(p, CP(RECENT_CONTACTS), rc ? rc->meta : NULL, rc != NULL);
    if (rc == NULL)
        return;
    if (rc->n_items == 0)
        put(p, "  None recorded.\n", "missing");
    for (size_t i = 0; i < rc->n_items; i++) {
        const Mhtas__V1__RecentContact *x = rc->items[i];
        char *kind = care_enum_words(&mhtas__v1__contact_kind__descriptor, x->kind, "CONTACT_KIND_");
        putf(p, "strong", "  \u2022 %s%s%s ", x->start_date, *x->end_date ? " to " : "", x->end_date);
        putf(p, NULL, "%s%s%s%s%s\n", kind, *x->location ? ", " : "", x->location, *x->summary ? ": " : "", x->summary);
        g_free(kind);
    }
}

void care_render_record(care_panel_t *p)
{
    gtk_text_buffer_set_text(p->record, "", 0);
    memset(p->stale_shown, 0, sizeof p->stale_shown);
    const Mhtas__V1__GetCareSummaryResponse *r = p->rec;
    const Mhtas__V1__CareSummary *s = r ? r->summary : NULL;
    if (s == NULL) {
        gtk_widget_set_visible(p->restricted_lbl, FALSE);
        return;
    }
    const Mhtas__V1__Identity *id = s->identity;
    const Mhtas__V1__HumanName *n = id && id->n_names ? id->names[0] : NULL;
    char *nhs = nhs_format(s->nhs_number);
    if (n) {
        char *fam = g_utf8_strup(n->family, -1);
        char *given = join(n->given, n->n_given, " ");
        putf(p, "h1", "%s, %s%s%s%s\n", fam, given, *n->prefix ? " (" : "", n->prefix, *n->prefix ? ")" : "");
        g_free(fam);
        g_free(given);
    } else {
        put(p, "Name not recorded\n", "h1");
    }
    putf(p, "strong", "NHS %s", nhs);
    if (id)
        putf(p, NULL, " \u00b7 born %s", id->date_of_birth);
    put(p, "\n", NULL);
    char *at = fmt_time(r->read_at_ms);
    putf(p, "meta", "Read at %s%s%s \u00b7 audit record %" PRIu64 " \u00b7 %zu part%s stale\n", at,
         p->tab ? " for " : "", p->tab ? care_ref_of(p) : "", r->audit_seq, r->n_stale_parts, r->n_stale_parts == 1 ? "" : "s");
    g_free(at);
    if (p->rec_glass)
        putf(p, "alert", "Opened under break-glass: %s\n", care_glass_labels[p->rec_glass]);
    g_free(nhs);
    put(p, "\n", NULL);
    render_identity(p, id);
    render_legal(p, s->legal_status);
    render_diagnoses(p, s->diagnoses);
    render_team(p, s->care_team);
    render_risks(p, s->risks);
    render_plan(p, s->crisis_plan);
    render_contacts(p, s->recent_contacts);
    bool restricted = r->restricted || s->restricted;
    gtk_widget_set_visible(p->restricted_lbl, restricted);
    GtkTextIter start;
    gtk_text_buffer_get_start_iter(p->record, &start);
    gtk_text_buffer_place_cursor(p->record, &start);
    GtkTextMark *top = gtk_text_buffer_get_insert(p->record);
    gtk_text_view_scroll_to_mark(GTK_TEXT_VIEW(p->record_view), top, 0, FALSE, 0, 0);
}

