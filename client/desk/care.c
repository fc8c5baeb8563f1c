/* care.c -- the care-record panel: search the care-summary cache through
 * the hub (SearchPersons), read a summary (GetCareSummary), break the glass
 * when the record is restricted or no incident is held, and share the
 * minimum necessary with the police (ShareWithPolice).
 *
 * Opening a search result first asks the practitioner to confirm at least
 * two identifiers of the person at scene (name, date of birth, address or
 * postcode, NHS number) against the result, the police's details beside
 * them; only then is the record read, or the break-glass dialog shown.
 *
 * Every look-up carries its lawful basis and reason (the hub audits them
 * before it releases anything). The panel keeps what it is shown in memory
 * only: desk_log lines carry incident ids, counts, statuses and part names,
 * never a name, a date of birth, an NHS number or record content; nothing
 * is written to disk; a record is dropped when the practitioner closes it or
 * the incident is no longer theirs.
 *
 * Errors (the cache is down: UNAVAILABLE; restricted: PERMISSION_DENIED; a
 * wrong check digit: INVALID_ARGUMENT ...) show in the panel's own error bar
 * with the hub's message; the rest of the desk carries on. */
#include "desk/desk.h"
#include "desk/care_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LB(x) MHTAS__V1__LAWFUL_BASIS__LAWFUL_BASIS_##x
#define BG(x) MHTAS__V1__BREAK_GLASS_REASON__BREAK_GLASS_REASON_##x
#define IS(x) MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_##x

#define CARE_DEADLINE_MS 15000

static const char *const basis_labels[] = {
    "Direct care (advising on this person's care now)",
    "Vital interests (life or serious harm at stake)",
    "Safeguarding (a child or adult at risk)",
    NULL,
};
static const Mhtas__V1__LawfulBasis basis_values[] = { LB(DIRECT_CARE), LB(VITAL_INTERESTS), LB(SAFEGUARDING) };

/* Index = BreakGlassReason value. */
const char *const care_glass_labels[] = {
    "\u2014 choose the reason \u2014",
    "Immediate risk to life or of serious harm",
    "Safeguarding emergency: a child or adult at risk now",
    "Covering a colleague who cannot be reached",
    "The incident has not reached me (yet)",
    "Restricted record, needed for this incident",
    "Other (explain below)",
    NULL,
};

static const char *const part_labels[CARE_NPARTS] = {
    "?", "Identity", "Legal status", "Diagnoses", "Care team", "Risks", "Crisis plan", "Recent contacts",
};

const char *care_part_label(int part)
{
    return part > 0 && part < CARE_NPARTS ? part_labels[part] : "?";
}

/* "crisis-plan", "CRISIS_PLAN" or "CARE_PART_CRISIS_PLAN" against an enum. */
static int enum_parse(const ProtobufCEnumDescriptor *ed, const char *prefix, const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    char *up = g_ascii_strup(s, -1);
    g_strdelimit(up, "- ", '_');
    char *name = g_str_has_prefix(up, prefix) ? g_strdup(up) : g_strconcat(prefix, up, NULL);
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(ed, name);
    g_free(up);
    g_free(name);
    return v ? v->value : 0;
}

int care_part_parse(const char *s)
{
    return enum_parse(&mhtas__v1__care_part__descriptor, "CARE_PART_", s);
}

int care_glass_reason_parse(const char *s)
{
    return enum_parse(&mhtas__v1__break_glass_reason__descriptor, "BREAK_GLASS_REASON_", s);
}

/* "SELF_HARM" -> "self harm" (g_free). */
char *care_enum_words(const ProtobufCEnumDescriptor *ed, int v, const char *prefix)
{
    char *w = g_ascii_strdown(pb_enum(ed, v, prefix), -1);
    return g_strdelimit(w, "_", ' ');
}

static const char *reason_words(int r)
{
    switch (r) {
    case MR(FAMILY_EXACT): return "family name";
    case MR(FAMILY_WILDCARD): return "family name (wildcard)";
    case MR(FAMILY_SOUNDEX): return "family name sounds alike";
    case MR(GIVEN_EXACT): return "given name";
    case MR(GIVEN_WILDCARD): return "given name (wildcard)";
    case MR(GIVEN_SOUNDEX): return "given name sounds alike";
    case MR(GIVEN_INITIAL): return "initial only";
    case MR(NAMES_TRANSPOSED): return "names swapped";
    case MR(DOB_EXACT): return "date of birth";
    case MR(DOB_IN_RANGE): return "born in the range";
    case MR(DOB_DAY_MONTH_SWAPPED): return "day and month swapped";
    case MR(DOB_SAME_YEAR): return "year of birth only";
    case MR(POSTCODE_EXACT): return "postcode";
    case MR(POSTCODE_DISTRICT): return "postcode district";
    default: return "?";
    }
}

/* ------------------------------------------------------------ state */

typedef enum { ERR_ACT_NONE = 0, ERR_ACT_RETRY, ERR_ACT_GLASS } err_act_t;

typedef struct care_ctx {
    desk_t *d;
    uint64_t key;
    unsigned serial;
    const char *method;
    int glass;        /* the break-glass reason the call was made under */
    char *nhs;        /* a read's NHS number, for the break-glass offer after PERMISSION_DENIED */
} care_ctx_t;

static void ctx_free(care_ctx_t *c)
{
    g_free(c->nhs);
    g_free(c);
}

static care_panel_t *panel_by_key(desk_t *d, uint64_t key)
{
    if (key == 0)
        return d->care_glass;
    int64_t k = (int64_t)key;
    inc_tab_t *t = g_hash_table_lookup(d->tabs, &k);
    return t ? t->care : NULL;
}

/* Whether the incident of this panel is held by the practitioner now. */
static bool panel_held(const care_panel_t *p)
{
    const inc_tab_t *t = p->tab;
    if (t == NULL || t->closed || t->incident == NULL)
        return false;
    int s = t->incident->state;
    return s == IS(ACCEPTED) || s == IS(ADVISING) || s == IS(OUTCOME_PROPOSED);
}

const char *care_ref_of(const care_panel_t *p)
{
    const inc_tab_t *t = p->tab;
    return t && t->incident && t->incident->details ? t->incident->details->police_ref : "";
}

static char *entry_text(GtkWidget *e)
{
    char *s = g_strdup(gtk_editable_get_text(GTK_EDITABLE(e)));
    return g_strstrip(s);
}

static void set_err_action(care_panel_t *p, err_act_t a)
{
    g_object_set_data(G_OBJECT(p->err_btn), "act", GINT_TO_POINTER(a));
    gtk_button_set_label(GTK_BUTTON(p->err_btn), a == ERR_ACT_GLASS ? "Break glass\u2026" : "Try again");
    gtk_widget_set_visible(p->err_btn, a != ERR_ACT_NONE);
}

static void hide_error(care_panel_t *p)
{
    gtk_widget_set_visible(p->err_box, FALSE);
}

static void show_error_text(care_panel_t *p, const char *text, err_act_t act)
{
    gtk_label_set_text(GTK_LABEL(p->err_lbl), text);
    set_err_action(p, act);
    gtk_widget_set_visible(p->err_box, TRUE);
}

/* The hub's status and message, said plainly. */
static char *error_text(int status, const char *message)
{
    const char *name = mhtas_client_status_name(status);
    switch (status) {
    case MHTAS_GRPC_UNAVAILABLE:
        return g_strdup_printf("Care records are unavailable right now: %s (%s). Advice and the conversation carry "
                               "on; try the look-up again shortly.", message, name);
    case MHTAS_GRPC_DEADLINE_EXCEEDED:
        return g_strdup_printf("The hub did not answer in time: %s (%s). Try again.", message, name);
    case MHTAS_GRPC_PERMISSION_DENIED:
        return g_strdup_printf("Not allowed: %s (%s)", message, name);
    case MHTAS_GRPC_INVALID_ARGUMENT:
        return g_strdup_printf("The hub refused the request: %s (%s)", message, name);
    case MHTAS_GRPC_NOT_FOUND:
        return g_strdup_printf("Not found: %s (%s)", message, name);
    default:
        return g_strdup_printf("%s (%s)", message, name);
    }
}

static void busy_ui(care_panel_t *p)
{
    bool idle = !p->busy;
    gtk_widget_set_sensitive(p->search_btn, idle);
    gtk_widget_set_sensitive(p->glass_btn, idle);
    gtk_widget_set_sensitive(p->open_btn, idle && p->found && p->found->n_matches > 0);
    gtk_widget_set_sensitive(p->err_btn, idle);
    if (p->share_btn)
        gtk_widget_set_sensitive(p->share_btn, idle && !p->sharing && p->rec && panel_held(p));
    if (p->confirm_ok)
        gtk_widget_set_sensitive(p->confirm_ok, idle && care_confirm_count(p) >= 2);
}

/* ------------------------------------------------------------ calls */

static void care_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp);

static void start_call(care_panel_t *p, const char *method, const ProtobufCMessage *req, int glass, const char *nhs)
{
    desk_t *d = p->desk;
    if (req != p->last_req) {
        pb_free(p->last_req);
        p->last_req = pb_dup(req);
    }
    p->last_method = method;
    care_ctx_t *c = g_new0(care_ctx_t, 1);
    c->d = d;
    c->key = p->key;
    c->serial = ++p->serial;
    c->method = method;
    c->glass = glass;
    c->nhs = g_strdup(nhs);
    int rc = desk_call(d, method, req, CARE_DEADLINE_MS, care_done, c);
    if (rc < 0) {
        ctx_free(c);
        p->last_status = MHTAS_GRPC_UNAVAILABLE;
        char *m = g_strdup_printf("Not connected to the hub (%s): try again when connected.", mhtas_client_strerror(rc));
        show_error_text(p, m, ERR_ACT_RETRY);
        g_free(m);
        return;
    }
    p->busy = true;
    gtk_label_set_text(GTK_LABEL(strcmp(method, "SearchPersons") == 0 ? p->results_note : p->record_note),
                       strcmp(method, "SearchPersons") == 0 ? "Searching\u2026" : "Reading the record\u2026");
    busy_ui(p);
}

typedef struct access {
    Mhtas__V1__LawfulBasis basis;
    char *reason;
    uint64_t incident;
} access_t;

/* The lawful basis, reason and incident from the form; NULL or an error. */
static char *read_access(care_panel_t *p, access_t *a)
{
    memset(a, 0, sizeof *a);
    guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(p->basis_dd));
    a->basis = i < G_N_ELEMENTS(basis_values) ? basis_values[i] : LB(DIRECT_CARE);
    a->reason = entry_text(p->reason_e);
    if (*a->reason == '\0')
        return g_strdup("Give the reason for the look-up: it goes into the audit trail.");
    if (p->tab) {
        a->incident = p->tab->id;
    } else if (p->incident_e) {
        char *s = entry_text(p->incident_e), *end = NULL;
        if (*s) {
            unsigned long long v = strtoull(s, &end, 10);
            if (end == NULL || *end || v == 0) {
                g_free(s);
                return g_strdup("The incident number must be a number (or leave it empty).");
            }
            a->incident = v;
        }
        g_free(s);
    }
    return NULL;
}

static bool valid_date(const char *s)
{
    int y, m, dd;
    char tail;
    return s && strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &dd, &tail) == 3 && y > 1880 && m >= 1 &&
           m <= 12 && dd >= 1 && dd <= 31;
}

static void do_search(care_panel_t *p, int glass, const char *glass_text)
{
    access_t a;
    char *err = read_access(p, &a);
    char *family = entry_text(p->family_e), *given = entry_text(p->given_e);
    char *dob = entry_text(p->dob_e), *postcode = entry_text(p->postcode_e);
    char *from = NULL, *to = NULL;
    const char *range = strstr(dob, "..");
    if (err == NULL && *family == '\0')
        err = g_strdup("The family name is needed (a trailing * matches a prefix: Smi*).");
    if (err == NULL && range) {
        from = g_strndup(dob, (gsize)(range - dob));
        to = g_strdup(range + 2);
        g_strstrip(from);
        g_strstrip(to);
        if (!valid_date(from) || !valid_date(to))
            err = g_strdup("A date-of-birth range is YYYY-MM-DD..YYYY-MM-DD.");
    } else if (err == NULL && !valid_date(dob)) {
        err = g_strdup("The date of birth is needed, as YYYY-MM-DD (or a range YYYY-MM-DD..YYYY-MM-DD).");
    }
    if (err) {
        gtk_label_set_text(GTK_LABEL(p->results_note), err);
        p->last_status = MHTAS_GRPC_INVALID_ARGUMENT;
        desk_log(p->desk, "care-search id=%" PRIu64 " status=FORM", p->key);
    } else {
        Mhtas__V1__SearchPersonsRequest req = MHTAS__V1__SEARCH_PERSONS_REQUEST__INIT;
        req.family_name = family;
        req.given_name = given;
        if (range) {
            req.dob_from = from;
            req.dob_to = to;
        } else {
            req.date_of_birth = dob;
        }
        req.postcode = postcode;
        req.lawful_basis = a.basis;
        req.reason = a.reason;
        req.incident_id = a.incident;
        if (glass) {
            req.break_glass = 1;
            req.break_glass_reason = (Mhtas__V1__BreakGlassReason)glass;
            req.break_glass_text = (char *)glass_text;
        }
        hide_error(p);
        start_call(p, "SearchPersons", &req.base, glass, NULL);
    }
    g_free(err);
    g_free(a.reason);
    g_free(family);
    g_free(given);
    g_free(dob);
    g_free(postcode);
    g_free(from);
    g_free(to);
}

static void do_read(care_panel_t *p, const char *nhs, int glass, const char *glass_text)
{
    access_t a;
    char *err = read_access(p, &a);
    if (err) {
        show_error_text(p, err, ERR_ACT_NONE);
        p->last_status = MHTAS_GRPC_INVALID_ARGUMENT;
        g_free(err);
        g_free(a.reason);
        return;
    }
    Mhtas__V1__GetCareSummaryRequest req = MHTAS__V1__GET_CARE_SUMMARY_REQUEST__INIT;
    req.nhs_number = (char *)nhs;
    req.lawful_basis = a.basis;
    req.reason = a.reason;
    req.incident_id = a.incident;
    if (glass) {
        req.break_glass = 1;
        req.break_glass_reason = (Mhtas__V1__BreakGlassReason)glass;
        req.break_glass_text = (char *)glass_text;
    }
    hide_error(p);
    start_call(p, "GetCareSummary", &req.base, glass, nhs);
    g_free(a.reason);
}

/* ------------------------------------------------------------ break-glass dialog */

static void build_glass(care_panel_t *p);

static void open_glass(care_panel_t *p, bool for_read, const char *nhs, int preset)
{
    if (p->glass_win == NULL)
        build_glass(p);
    p->glass_for_read = for_read;
    g_free(p->glass_nhs);
    p->glass_nhs = g_strdup(nhs);
    gtk_drop_down_set_selected(GTK_DROP_DOWN(p->glass_dd), (guint)(preset > 0 ? preset : 0));
    gtk_editable_set_text(GTK_EDITABLE(p->glass_e), "");
    const char *why = !for_read ? "You are searching outside an incident you hold."
                      : preset == BG(RESTRICTED_RECORD) ? "This record is restricted."
                      : !panel_held(p) ? "You are reading a record outside an incident you hold."
                                       : "You are breaking the glass to read this record.";
    char *m = g_strdup_printf("%s Breaking the glass is recorded in the audit trail with your reason and your own "
                              "words, and your supervisor is told at once.", why);
    gtk_label_set_text(GTK_LABEL(p->glass_note), m);
    g_free(m);
    gtk_widget_remove_css_class(p->glass_note, "rule-error");
    gtk_window_present(GTK_WINDOW(p->glass_win));
    gtk_widget_grab_focus(p->glass_e);
    desk_log(p->desk, "care-glass-dialog id=%" PRIu64 " for=%s", p->key, for_read ? "read" : "search");
}

void care_glass_confirm(care_panel_t *p)
{
    if (p->busy)
        return;
    int reason = (int)gtk_drop_down_get_selected(GTK_DROP_DOWN(p->glass_dd));
    char *text = entry_text(p->glass_e);
    const char *err = NULL;
    if (reason <= 0 || reason >= (int)G_N_ELEMENTS(care_glass_labels) - 1)
        err = "Choose the reason for breaking the glass.";
    else if (*text == '\0')
        err = "Say why, in your own words: it goes to your supervisor and the audit trail.";
    if (err) {
        gtk_label_set_text(GTK_LABEL(p->glass_note), err);
        gtk_widget_add_css_class(p->glass_note, "rule-error");
        g_free(text);
        return;
    }
    gtk_widget_set_visible(p->glass_win, FALSE);
    desk_log(p->desk, "care-glass id=%" PRIu64 " reason=%s", p->key,
             pb_enum(&mhtas__v1__break_glass_reason__descriptor, reason, "BREAK_GLASS_REASON_"));
    if (p->glass_for_read && p->glass_nhs)
        do_read(p, p->glass_nhs, reason, text);
    else
        do_search(p, reason, text);
    g_free(text);
}

static void on_glass_ok(GtkButton *b, gpointer data) { (void)b; care_glass_confirm(data); }
static void on_glass_cancel(GtkButton *b, gpointer data)
{
    (void)b;
    care_panel_t *p = data;
    gtk_widget_set_visible(p->glass_win, FALSE);
}

static GtkWidget *window_for(care_panel_t *p)
{
    GtkRoot *r = gtk_widget_get_root(p->root);
    return r && GTK_IS_WINDOW(r) ? GTK_WIDGET(r) : GTK_WIDGET(p->desk->win);
}

/* A modal dialog over the panel's window: hidden (not destroyed) on close,
 * with a padded vertical box as its content, returned in *box. */
static GtkWidget *modal_new(care_panel_t *p, const char *title, int width, GtkWidget **box)
{
    GtkWidget *w = gtk_window_new();
    gtk_window_set_title(GTK_WINDOW(w), title);
    gtk_window_set_modal(GTK_WINDOW(w), TRUE);
    gtk_window_set_transient_for(GTK_WINDOW(w), GTK_WINDOW(window_for(p)));
    gtk_window_set_hide_on_close(GTK_WINDOW(w), TRUE);
    gtk_window_set_default_size(GTK_WINDOW(w), width, -1);
    GtkWidget *v = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
    gtk_widget_set_margin_start(v, 14);
    gtk_widget_set_margin_end(v, 14);
    gtk_widget_set_margin_top(v, 14);
    gtk_widget_set_margin_bottom(v, 14);
    *box = v;
    return w;
}

/* A large bold heading, then a wrapped note label (returned) for the
 * dialog's changing explanation. */
static GtkWidget *heading_and_note(GtkWidget *v, const char *heading)
{
    GtkWidget *h = gtk_label_new(NULL);
    char *m = g_markup_printf_escaped("<span size='large' weight='bold'>%s</span>", heading);
    gtk_label_set_markup(GTK_LABEL(h), m);
    g_free(m);
    gtk_label_set_xalign(GTK_LABEL(h), 0);
    gtk_box_append(GTK_BOX(v), h);
    GtkWidget *note = gtk_label_new("");
    gtk_label_set_wrap(GTK_LABEL(note), TRUE);
    gtk_label_set_xalign(GTK_LABEL(note), 0);
    gtk_box_append(GTK_BOX(v), note);
    return note;
}

/* The dialog's last row, right-aligned: Cancel, then the action button
 * (its css class: "suggested-action" or "destructive-action", or NULL).
 * *cancel_out (may be NULL) gets the Cancel button; returns the action. */
static GtkWidget *action_row(GtkWidget *v, GCallback on_cancel, const char *ok_label, const char *ok_class,
                             GCallback on_ok, care_panel_t *p, GtkWidget **cancel_out)
{
    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_widget_set_halign(row, GTK_ALIGN_END);
    GtkWidget *cancel = gtk_button_new_with_mnemonic("_Cancel");
    g_signal_connect(cancel, "clicked", on_cancel, p);
    gtk_box_append(GTK_BOX(row), cancel);
    GtkWidget *ok = gtk_button_new_with_mnemonic(ok_label);
    if (ok_class)
        gtk_widget_add_css_class(ok, ok_class);
    g_signal_connect(ok, "clicked", on_ok, p);
    gtk_box_append(GTK_BOX(row), ok);
    gtk_box_append(GTK_BOX(v), row);
    if (cancel_out)
        *cancel_out = cancel;
    return ok;
}

static void build_glass(care_panel_t *p)
{
    GtkWidget *v;
    GtkWidget *w = modal_new(p, "Break the glass", 520, &v);
    p->glass_note = heading_and_note(v, "Break the glass");
    GtkWidget *rl = gtk_label_new("Reason");
    gtk_label_set_xalign(GTK_LABEL(rl), 0);
    gtk_box_append(GTK_BOX(v), rl);
    p->glass_dd = gtk_drop_down_new_from_strings(care_glass_labels);
    gtk_box_append(GTK_BOX(v), p->glass_dd);
    GtkWidget *l = gtk_label_new("Why, in your own words (required)");
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_box_append(GTK_BOX(v), l);
    p->glass_e = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(p->glass_e), "e.g. the holder is unreachable and the person is on a bridge");
    g_signal_connect_swapped(p->glass_e, "activate", G_CALLBACK(care_glass_confirm), p);
    gtk_box_append(GTK_BOX(v), p->glass_e);
    p->glass_ok = action_row(v, G_CALLBACK(on_glass_cancel), "_Break the glass and continue", "destructive-action",
                             G_CALLBACK(on_glass_ok), p, NULL);
    gtk_window_set_child(GTK_WINDOW(w), v);
    p->glass_win = w;
}

/* ------------------------------------------------------------ results */

static void clear_results(care_panel_t *p)
{
    GtkWidget *c;
    while ((c = gtk_widget_get_first_child(p->results)) != NULL)
        gtk_list_box_remove(GTK_LIST_BOX(p->results), c);
    pb_free(p->found);
    p->found = NULL;
}

static GtkWidget *result_row(const Mhtas__V1__PersonMatch *m)
{
    GtkWidget *v = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    gtk_widget_set_margin_top(v, 4);
    gtk_widget_set_margin_bottom(v, 4);
    gtk_widget_set_margin_start(v, 4);
    char *fam = g_utf8_strup(m->family_name, -1);
    char *nhs = nhs_format(m->nhs_number);
    char *top = g_markup_printf_escaped("<b>%s, %s</b>   born %s   %s%s%s", fam, m->given_names, m->date_of_birth,
                                        m->postcode, *m->borough ? " \u00b7 " : "", m->borough);
    GtkWidget *row1 = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    GtkWidget *l1 = gtk_label_new(NULL);
    gtk_label_set_markup(GTK_LABEL(l1), top);
    gtk_label_set_xalign(GTK_LABEL(l1), 0);
    gtk_label_set_wrap(GTK_LABEL(l1), TRUE);
    gtk_label_set_wrap_mode(GTK_LABEL(l1), PANGO_WRAP_WORD_CHAR);
    gtk_widget_set_hexpand(l1, TRUE);
    gtk_box_append(GTK_BOX(row1), l1);
    if (m->restricted) {
        GtkWidget *flag = gtk_label_new("RESTRICTED");
        gtk_widget_set_tooltip_text(flag, "A restricted record: reading it needs break-glass, and is reviewed");
        gtk_widget_set_valign(flag, GTK_ALIGN_START);
        gtk_widget_add_css_class(flag, "care-flag");
        gtk_box_append(GTK_BOX(row1), flag);
    }
    gtk_box_append(GTK_BOX(v), row1);
    GString *why = g_string_new(NULL);
    for (size_t i = 0; i < m->n_reasons; i++)
        g_string_append_printf(why, "%s%s", i ? ", " : "", reason_words(m->reasons[i]));
    char *second = g_strdup_printf("score %u \u00b7 %s \u00b7 NHS %s%s%s \u00b7 matched: %s", m->score,
                                   m->exact ? "exact match" : "close match: confirm two identifiers", nhs,
                                   *m->gender ? " \u00b7 " : "", m->gender, why->len ? why->str : "\u2014");
    GtkWidget *l2 = gtk_label_new(second);
    gtk_label_set_xalign(GTK_LABEL(l2), 0);
    gtk_label_set_wrap(GTK_LABEL(l2), TRUE);
    gtk_label_set_wrap_mode(GTK_LABEL(l2), PANGO_WRAP_WORD_CHAR);
    gtk_widget_add_css_class(l2, m->exact ? "care-hint" : "care-fuzzy");
    gtk_box_append(GTK_BOX(v), l2);
    g_string_free(why, TRUE);
    g_free(second);
    g_free(top);
    g_free(fam);
    g_free(nhs);
    return v;
}

static void got_search(care_panel_t *p, const Mhtas__V1__SearchPersonsResponse *r, int glass)
{
    clear_results(p);
    p->found = pb_dup(&r->base);
    for (size_t i = 0; i < r->n_matches; i++)
        gtk_list_box_append(GTK_LIST_BOX(p->results), result_row(r->matches[i]));
    size_t restricted = 0;
    for (size_t i = 0; i < r->n_matches; i++)
        restricted += r->matches[i]->restricted;
    char *note;
    if (r->n_matches == 0)
        note = g_strdup("Nobody found. Check the spelling, try a wildcard (Ann*) or a date-of-birth range.");
    else
        note = g_strdup_printf("%zu found%s%s. Double-click a person (or select and Open): you confirm two "
                               "identifiers with the officers before the record opens.",
                               r->n_matches, r->more ? " (more match: narrow the search)" : "",
                               glass ? ", under break-glass" : "");
    gtk_label_set_text(GTK_LABEL(p->results_note), note);
    g_free(note);
    if (r->n_matches > 0)
        gtk_list_box_select_row(GTK_LIST_BOX(p->results), gtk_list_box_get_row_at_index(GTK_LIST_BOX(p->results), 0));
    gtk_stack_set_visible_child_name(GTK_STACK(p->stack), "search");
    desk_log(p->desk, "care-search id=%" PRIu64 " status=OK results=%zu restricted=%zu more=%d glass=%d", p->key,
             r->n_matches, restricted, (int)r->more, glass != 0);
}

static char *part_list(const int *parts, size_t n, bool names)
{
    GString *s = g_string_new(NULL);
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(s, "%s%s", i ? (names ? "," : ", ") : "",
                               names ? pb_enum(&mhtas__v1__care_part__descriptor, parts[i], "CARE_PART_")
                                     : care_part_label(parts[i]));
    if (s->len == 0 && names)
        g_string_append(s, "-");
    return g_string_free(s, FALSE);
}

static void got_record(care_panel_t *p, const Mhtas__V1__GetCareSummaryResponse *r, int glass)
{
    pb_free(p->rec);
    p->rec = pb_dup(&r->base);
    p->rec_glass = glass;
    care_render_record(p);
    gtk_stack_set_visible_child_name(GTK_STACK(p->stack), "record");
    gtk_label_set_text(GTK_LABEL(p->record_note), p->tab ? "" : "Outside a held incident: the record cannot be shared from here.");
    int stale[CARE_NPARTS], shown[CARE_NPARTS];
    size_t ns = 0, nf = 0;
    for (size_t i = 0; i < r->n_stale_parts && ns < CARE_NPARTS; i++)
        stale[ns++] = (int)r->stale_parts[i];
    for (int i = 1; i < CARE_NPARTS; i++)
        if (p->stale_shown[i])
            shown[nf++] = i;
    char *sl = part_list(stale, ns, true), *fl = part_list(shown, nf, true);
    desk_log(p->desk, "care-read id=%" PRIu64 " status=OK restricted=%d stale=%s stale_flagged=%s glass=%d audit_seq=%" PRIu64,
             p->key, (int)(r->restricted || (r->summary && r->summary->restricted)), sl, fl, glass != 0, r->audit_seq);
    g_free(sl);
    g_free(fl);
}

void care_close_record(care_panel_t *p, const char *why)
{
    if (p->rec == NULL)
        return;
    pb_free(p->rec);
    p->rec = NULL;
    p->rec_glass = 0;
    care_render_record(p);
    if (p->share_win)
        gtk_widget_set_visible(p->share_win, FALSE);
    gtk_stack_set_visible_child_name(GTK_STACK(p->stack), "search");
    gtk_label_set_text(GTK_LABEL(p->results_note), why ? why : "Record closed.");
    busy_ui(p);
    desk_log(p->desk, "care-closed id=%" PRIu64, p->key);
}

/* ------------------------------------------------------------ confirm identity */

/* Before a record is read (or the glass broken for it), the practitioner
 * confirms at least two identifiers of the person at scene with the
 * officers. The dialog sets the search result's identifiers beside what the
 * police gave in the incident, says where they agree or differ, and ticks
 * nothing itself: agreement with the police details is a hint, the
 * confirmation is the practitioner's. Its log lines carry counts only. */

enum { ID_UNKNOWN = 0, ID_SAME, ID_DIFFERS, ID_PARTIAL };

static const char *const id_checks[CARE_NIDS] = {
    "_Name matches", "_Date of birth matches", "_Address/postcode matches", "NHS n_umber matches",
};

int care_id_parse(const char *s)
{
    if (s == NULL)
        return -1;
    if (g_ascii_strcasecmp(s, "name") == 0)
        return CARE_ID_NAME;
    if (g_ascii_strcasecmp(s, "dob") == 0 || g_ascii_strcasecmp(s, "date-of-birth") == 0)
        return CARE_ID_DOB;
    if (g_ascii_strcasecmp(s, "address") == 0 || g_ascii_strcasecmp(s, "postcode") == 0)
        return CARE_ID_ADDRESS;
    if (g_ascii_strcasecmp(s, "nhs") == 0)
        return CARE_ID_NHS;
    return -1;
}

int care_confirm_count(const care_panel_t *p)
{
    int n = 0;
    for (int i = 0; p->confirm_win && i < CARE_NIDS; i++)
        n += gtk_check_button_get_active(GTK_CHECK_BUTTON(p->confirm_check[i])) != 0;
    return n;
}

/* Letters and digits only, case folded: "O'Brien-Smith " -> "obriensmith" (g_free). */
static char *norm_word(const char *s)
{
    char *nf = g_utf8_normalize(s ? s : "", -1, G_NORMALIZE_ALL_COMPOSE);
    char *cf = g_utf8_casefold(nf ? nf : "", -1);
    GString *out = g_string_new(NULL);
    for (const char *c = cf; *c; c = g_utf8_next_char(c)) {
        gunichar u = g_utf8_get_char(c);
        if (g_unichar_isalnum(u))
            g_string_append_unichar(out, u);
    }
    g_free(nf);
    g_free(cf);
    return g_string_free(out, FALSE);
}

/* The first of space-separated given names, normalised (g_free). */
static char *norm_first_given(const char *given)
{
    char **v = g_strsplit_set(given ? given : "", " ", -1);
    char *out = NULL;
    for (char **w = v; *w && out == NULL; w++)
        if (**w)
            out = norm_word(*w);
    g_strfreev(v);
    return out ? out : g_strdup("");
}

/* Upper-case, letters and digits only: " bl1 4aa" -> "BL14AA" (g_free). */
static char *norm_postcode(const char *s)
{
    GString *out = g_string_new(NULL);
    for (const char *c = s ? s : ""; *c; c++)
        if (isalnum((unsigned char)*c))
            g_string_append_c(out, (char)toupper((unsigned char)*c));
    return g_string_free(out, FALSE);
}

static char *digits_of(const char *s)
{
    GString *out = g_string_new(NULL);
    for (const char *c = s ? s : ""; *c; c++)
        if (isdigit((unsigned char)*c))
            g_string_append_c(out, *c);
    return g_string_free(out, FALSE);
}

typedef struct id_row {
    char *rec, *police, *hint; /* g_free */
    int cmp;
} id_row_t;

static void id_name(id_row_t *r, const Mhtas__V1__PersonMatch *m, const Mhtas__V1__Person *pe)
{
    char *fam = g_utf8_strup(m->family_name, -1);
    r->rec = g_strdup_printf("%s, %s", fam, m->given_names);
    g_free(fam);
    if (pe == NULL || *pe->family_name == '\0')
        return;
    char *pfam = g_utf8_strup(pe->family_name, -1);
    r->police = *pe->given_names ? g_strdup_printf("%s, %s", pfam, pe->given_names) : g_strdup(pfam);
    g_free(pfam);
    char *a = norm_word(m->family_name), *b = norm_word(pe->family_name);
    char *ga = norm_first_given(m->given_names), *gb = norm_first_given(pe->given_names);
    if (strcmp(a, b) != 0 || (*gb && strcmp(ga, gb) != 0))
        r->cmp = ID_DIFFERS;
    else if (*gb == '\0') {
        r->cmp = ID_PARTIAL;
        r->hint = g_strdup("family name only: the police gave no given name");
    } else {
        r->cmp = ID_SAME;
    }
    g_free(a);
    g_free(b);
    g_free(ga);
    g_free(gb);
}

static void id_dob(id_row_t *r, const Mhtas__V1__PersonMatch *m, const Mhtas__V1__Person *pe)
{
    int age = care_age_of(m->date_of_birth);
    r->rec = age >= 0 ? g_strdup_printf("%s (age %d)", m->date_of_birth, age) : g_strdup(m->date_of_birth);
    if (pe == NULL)
        return;
    if (*pe->date_of_birth) {
        r->police = g_strdup(pe->date_of_birth);
        char *a = g_strstrip(g_strdup(m->date_of_birth)), *b = g_strstrip(g_strdup(pe->date_of_birth));
        r->cmp = strcmp(a, b) == 0 ? ID_SAME : ID_DIFFERS;
        g_free(a);
        g_free(b);
    } else if (pe->age_years > 0) {
        r->police = g_strdup_printf("about %u (an estimate)", pe->age_years);
        r->cmp = ID_PARTIAL;
        r->hint = g_strdup("an age estimate: ask the officers for the date of birth");
    }
}

static void id_address(id_row_t *r, const Mhtas__V1__PersonMatch *m, const Mhtas__V1__Person *pe)
{
    r->rec = g_strdup_printf("%s%s%s", m->postcode, *m->borough ? " \u00b7 " : "", m->borough);
    if (pe == NULL || (*pe->address == '\0' && *pe->postcode == '\0'))
        return;
    r->police = g_strdup_printf("%s%s%s", pe->address, *pe->address && *pe->postcode ? ", " : "", pe->postcode);
    char *mine = norm_postcode(m->postcode);
    if (*pe->postcode) {
        char *theirs = norm_postcode(pe->postcode);
        size_t lm = strlen(mine), lt = strlen(theirs);
        if (*mine && strcmp(mine, theirs) == 0) {
            r->cmp = ID_SAME;
        } else if (lm > 3 && lt > 3 && lm - 3 == lt - 3 && strncmp(mine, theirs, lm - 3) == 0) {
            r->cmp = ID_PARTIAL; /* same outward code: the district, not the street */
            r->hint = g_strdup("same postcode district, not the same postcode");
        } else if (lt <= 4 && lm > 3 && lt == lm - 3 && strncmp(mine, theirs, lt) == 0) {
            r->cmp = ID_PARTIAL;
            r->hint = g_strdup("the police gave the postcode district only: it agrees");
        } else {
            r->cmp = ID_DIFFERS;
        }
        g_free(theirs);
    } else {
        char *addr = norm_postcode(pe->address);
        if (*mine && strstr(addr, mine)) {
            r->cmp = ID_SAME;
        } else {
            r->cmp = ID_PARTIAL;
            r->hint = g_strdup("no postcode from the police: compare the address with the officers");
        }
        g_free(addr);
    }
    g_free(mine);
}

static void id_nhs(id_row_t *r, const Mhtas__V1__PersonMatch *m, const Mhtas__V1__Person *pe)
{
    r->rec = nhs_format(m->nhs_number);
    char *theirs = digits_of(pe ? pe->nhs_number : NULL);
    if (*theirs) {
        r->police = nhs_format(theirs);
        r->cmp = strcmp(theirs, m->nhs_number) == 0 ? ID_SAME : ID_DIFFERS;
    }
    g_free(theirs);
}

static void set_hint(GtkWidget *l, int cmp, const char *text)
{
    static const char *const cls[] = { "care-hint", "care-same", "care-differs", "care-hint" };
    for (size_t i = 1; i < G_N_ELEMENTS(cls); i++)
        gtk_widget_remove_css_class(l, cls[i]);
    gtk_widget_add_css_class(l, cls[cmp]);
    gtk_label_set_text(GTK_LABEL(l), text);
}

/* The note and the Open button after a box is ticked or unticked. */
static void confirm_update(care_panel_t *p)
{
    if (p->confirm_win == NULL)
        return;
    int n = care_confirm_count(p), differs = 0;
    for (int i = 0; i < CARE_NIDS; i++)
        differs += gtk_check_button_get_active(GTK_CHECK_BUTTON(p->confirm_check[i])) && p->confirm_cmp[i] == ID_DIFFERS;
    char *m;
    if (n < 2)
        m = g_strdup_printf("Tick at least two identifiers you have confirmed with the officers at scene "
                            "(%d of 2 ticked).", n);
    else if (differs)
        m = g_strdup_printf("%d identifiers confirmed. \u26A0 %d of them differ%s from the police details: be sure the "
                            "officers confirmed %s with the person.", n, differs, differs == 1 ? "s" : "",
                            differs == 1 ? "it" : "them");
    else
        m = g_strdup_printf("%d identifiers confirmed.", n);
    gtk_label_set_text(GTK_LABEL(p->confirm_note), m);
    g_free(m);
    if (n < 2 || differs)
        gtk_widget_add_css_class(p->confirm_note, "rule-error");
    else
        gtk_widget_remove_css_class(p->confirm_note, "rule-error");
    if (n >= 2 && !differs)
        gtk_widget_add_css_class(p->confirm_note, "rule-ok");
    else
        gtk_widget_remove_css_class(p->confirm_note, "rule-ok");
    gtk_widget_set_sensitive(p->confirm_ok, n >= 2 && !p->busy);
}

static void drop_confirm(care_panel_t *p)
{
    pb_free(p->confirm_match);
    p->confirm_match = NULL;
    if (p->confirm_win)
        gtk_widget_set_visible(p->confirm_win, FALSE);
}

void care_confirm_cancel(care_panel_t *p)
{
    if (p->confirm_match == NULL)
        return;
    int n = care_confirm_count(p);
    drop_confirm(p);
    gtk_stack_set_visible_child_name(GTK_STACK(p->stack), "search");
    GtkListBoxRow *row = gtk_list_box_get_selected_row(GTK_LIST_BOX(p->results));
    gtk_widget_grab_focus(row ? GTK_WIDGET(row) : p->results); /* back where the practitioner was */
    desk_log(p->desk, "care-confirm id=%" PRIu64 " confirmed=%d cancelled=1", p->key, n);
}

void care_confirm_open(care_panel_t *p)
{
    if (p->confirm_match == NULL || p->busy)
        return;
    int n = care_confirm_count(p), differs = 0;
    for (int i = 0; i < CARE_NIDS; i++)
        differs += gtk_check_button_get_active(GTK_CHECK_BUTTON(p->confirm_check[i])) && p->confirm_cmp[i] == ID_DIFFERS;
    if (n < 2) { /* the button is disabled; Enter, or a script, still lands here */
        confirm_update(p);
        gtk_widget_error_bell(p->confirm_win);
        desk_log(p->desk, "care-confirm id=%" PRIu64 " confirmed=%d refused=1", p->key, n);
        return;
    }
    Mhtas__V1__PersonMatch *m = p->confirm_match;
    p->confirm_match = NULL;
    bool glass = p->confirm_glass || m->restricted || !panel_held(p);
    drop_confirm(p);
    desk_log(p->desk, "care-confirm id=%" PRIu64 " confirmed=%d differs=%d then=%s", p->key, n, differs,
             glass ? "break-glass" : "read");
    if (glass)
        open_glass(p, true, m->nhs_number, m->restricted ? BG(RESTRICTED_RECORD) : 0);
    else
        do_read(p, m->nhs_number, 0, NULL);
    pb_free(m);
}

static void on_confirm_toggled(GtkCheckButton *b, gpointer data) { (void)b; confirm_update(data); }
static void on_confirm_ok(GtkButton *b, gpointer data) { (void)b; care_confirm_open(data); }
static void on_confirm_cancel(GtkButton *b, gpointer data) { (void)b; care_confirm_cancel(data); }

static gboolean on_confirm_close(GtkWindow *w, gpointer data)
{
    (void)w;
    care_confirm_cancel(data);
    return FALSE; /* hidden (hide-on-close), kept for next time */
}

static gboolean on_confirm_escape(GtkWidget *w, GVariant *args, gpointer data)
{
    (void)w;
    (void)args;
    care_confirm_cancel(data);
    return TRUE;
}

/* Enter opens the record (when two are ticked); on Cancel it cancels. */
static gboolean on_confirm_enter(GtkWidget *w, GVariant *args, gpointer data)
{
    (void)args;
    care_panel_t *p = data;
    GtkWidget *f = gtk_root_get_focus(GTK_ROOT(w));
    if (f && (f == p->confirm_cancel || gtk_widget_is_ancestor(f, p->confirm_cancel)))
        care_confirm_cancel(p);
    else
        care_confirm_open(p);
    return TRUE;
}

static GtkWidget *cell(const char *text, const char *css)
{
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_wrap(GTK_LABEL(l), TRUE);
    gtk_label_set_wrap_mode(GTK_LABEL(l), PANGO_WRAP_WORD_CHAR);
    gtk_label_set_width_chars(GTK_LABEL(l), 18); /* wrapping labels' minimum: keeps the dialog short */
    gtk_label_set_max_width_chars(GTK_LABEL(l), 28);
    gtk_widget_set_valign(l, GTK_ALIGN_CENTER);
    if (css)
        gtk_widget_add_css_class(l, css);
    return l;
}

static void build_confirm(care_panel_t *p)
{
    GtkWidget *v;
    GtkWidget *w = modal_new(p, "Confirm identity", 860, &v);
    g_signal_connect(w, "close-request", G_CALLBACK(on_confirm_close), p);
    p->confirm_title = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(p->confirm_title), 0);
    gtk_box_append(GTK_BOX(v), p->confirm_title);
    GtkWidget *intro = gtk_label_new("Before the record opens, confirm at least two identifiers of the person at scene "
                                     "with the officers. Tick only what is confirmed: agreeing with the police details "
                                     "is a hint, not a confirmation.");
    gtk_label_set_wrap(GTK_LABEL(intro), TRUE);
    gtk_label_set_width_chars(GTK_LABEL(intro), 80);
    gtk_label_set_xalign(GTK_LABEL(intro), 0);
    gtk_box_append(GTK_BOX(v), intro);
    GtkWidget *g = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(g), 6);
    gtk_grid_set_column_spacing(GTK_GRID(g), 14);
    gtk_widget_add_css_class(g, "care-confirm");
    const char *heads[] = { "Confirmed with the officers", "Search result", "Police details", "" };
    for (int c = 0; c < 4; c++) {
        GtkWidget *h = cell(heads[c], "care-hint");
        gtk_widget_add_css_class(h, "care-confirm-head");
        gtk_grid_attach(GTK_GRID(g), h, c, 0, 1, 1);
    }
    for (int i = 0; i < CARE_NIDS; i++) {
        p->confirm_check[i] = gtk_check_button_new_with_mnemonic(id_checks[i]);
        g_signal_connect(p->confirm_check[i], "toggled", G_CALLBACK(on_confirm_toggled), p);
        gtk_grid_attach(GTK_GRID(g), p->confirm_check[i], 0, i + 1, 1, 1);
        p->confirm_rec[i] = cell("", "care-confirm-rec");
        gtk_grid_attach(GTK_GRID(g), p->confirm_rec[i], 1, i + 1, 1, 1);
        p->confirm_police[i] = cell("", NULL);
        gtk_grid_attach(GTK_GRID(g), p->confirm_police[i], 2, i + 1, 1, 1);
        p->confirm_hint[i] = cell("", "care-hint");
        gtk_label_set_width_chars(GTK_LABEL(p->confirm_hint[i]), 30);
        gtk_widget_set_hexpand(p->confirm_hint[i], TRUE);
        gtk_grid_attach(GTK_GRID(g), p->confirm_hint[i], 3, i + 1, 1, 1);
    }
    gtk_box_append(GTK_BOX(v), g);
    p->confirm_note = gtk_label_new("");
    gtk_label_set_wrap(GTK_LABEL(p->confirm_note), TRUE);
    gtk_label_set_width_chars(GTK_LABEL(p->confirm_note), 80);
    gtk_label_set_xalign(GTK_LABEL(p->confirm_note), 0);
    gtk_box_append(GTK_BOX(v), p->confirm_note);
    p->confirm_ok = action_row(v, G_CALLBACK(on_confirm_cancel), "_Open record", NULL, G_CALLBACK(on_confirm_ok), p,
                               &p->confirm_cancel);
    gtk_window_set_child(GTK_WINDOW(w), v);

    GtkEventController *keys = gtk_shortcut_controller_new();
    gtk_event_controller_set_propagation_phase(keys, GTK_PHASE_CAPTURE);
    gtk_shortcut_controller_add_shortcut(GTK_SHORTCUT_CONTROLLER(keys),
                                         gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_Escape, 0),
                                                          gtk_callback_action_new(on_confirm_escape, p, NULL)));
    for (guint *k = (guint[]){ GDK_KEY_Return, GDK_KEY_KP_Enter, GDK_KEY_ISO_Enter, 0 }; *k; k++)
        gtk_shortcut_controller_add_shortcut(GTK_SHORTCUT_CONTROLLER(keys),
                                             gtk_shortcut_new(gtk_keyval_trigger_new(*k, 0),
                                                              gtk_callback_action_new(on_confirm_enter, p, NULL)));
    gtk_widget_add_controller(w, keys);
    p->confirm_win = w;
}

/* Shows the confirm-identity dialog for search result m; `glass`: the
 * practitioner asked to break the glass for it. */
static void open_confirm(care_panel_t *p, const Mhtas__V1__PersonMatch *m, bool glass)
{
    if (p->confirm_win == NULL)
        build_confirm(p);
    pb_free(p->confirm_match);
    p->confirm_match = pb_dup(&m->base);
    p->confirm_glass = glass || m->restricted || !panel_held(p);
    p->confirm_serial = p->serial;
    const inc_tab_t *t = p->tab;
    const Mhtas__V1__Person *pe =
        t && t->incident && t->incident->details ? t->incident->details->person : NULL;
    void (*const fill[CARE_NIDS])(id_row_t *, const Mhtas__V1__PersonMatch *, const Mhtas__V1__Person *) = {
        id_name, id_dob, id_address, id_nhs,
    };
    int same = 0, differ = 0, unknown = 0;
    for (int i = 0; i < CARE_NIDS; i++) {
        id_row_t r = { 0 };
        fill[i](&r, m, pe);
        p->confirm_cmp[i] = r.cmp;
        gtk_label_set_text(GTK_LABEL(p->confirm_rec[i]), r.rec ? r.rec : "");
        gtk_label_set_text(GTK_LABEL(p->confirm_police[i]), r.police ? r.police : "\u2014 not given");
        if (r.police == NULL)
            gtk_widget_add_css_class(p->confirm_police[i], "care-hint");
        else
            gtk_widget_remove_css_class(p->confirm_police[i], "care-hint");
        set_hint(p->confirm_hint[i], r.cmp,
                 r.hint                 ? r.hint
                 : r.cmp == ID_SAME     ? "\u2713 matches the police details"
                 : r.cmp == ID_DIFFERS  ? "\u26A0 differs from the police details"
                 : t == NULL            ? "no incident here: ask the officers"
                                        : "the police did not give this");
        same += r.cmp == ID_SAME;
        differ += r.cmp == ID_DIFFERS;
        unknown += r.cmp == ID_UNKNOWN || r.cmp == ID_PARTIAL;
        gtk_check_button_set_active(GTK_CHECK_BUTTON(p->confirm_check[i]), FALSE); /* nothing ticked for them */
        g_free(r.rec);
        g_free(r.police);
        g_free(r.hint);
    }
    char *title = g_strconcat("<span size='large' weight='bold'>Confirm identity</span>",
                              m->restricted ? "   <span weight='bold' foreground='#862e9c'>RESTRICTED RECORD</span>" : "",
                              m->exact ? "" : "   <span weight='bold' foreground='#d9480f'>close match, not exact</span>",
                              NULL);
    gtk_label_set_markup(GTK_LABEL(p->confirm_title), title);
    g_free(title);
    gtk_button_set_label(GTK_BUTTON(p->confirm_ok),
                         p->confirm_glass ? "_Continue to break the glass\u2026" : "_Open record");
    gtk_button_set_use_underline(GTK_BUTTON(p->confirm_ok), TRUE);
    gtk_widget_remove_css_class(p->confirm_ok, p->confirm_glass ? "suggested-action" : "destructive-action");
    gtk_widget_add_css_class(p->confirm_ok, p->confirm_glass ? "destructive-action" : "suggested-action");
    confirm_update(p);
    gtk_window_present(GTK_WINDOW(p->confirm_win));
    gtk_widget_grab_focus(p->confirm_check[0]);
    desk_log(p->desk, "care-confirm-dialog id=%" PRIu64 " same=%d differs=%d unknown=%d restricted=%d glass=%d",
             p->key, same, differ, unknown, (int)m->restricted, (int)p->confirm_glass);
}

/* ------------------------------------------------------------ call results */

static void care_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    care_ctx_t *c = ctx;
    desk_t *d = c->d;
    care_panel_t *p = d->quitting ? NULL : panel_by_key(d, c->key);
    if (p == NULL || c->serial != p->serial) { /* gone, or an older call's answer */
        ctx_free(c);
        return;
    }
    p->busy = false;
    p->last_status = status;
    bool search = strcmp(c->method, "SearchPersons") == 0;
    if (status == MHTAS_GRPC_OK) {
        hide_error(p);
        if (search)
            got_search(p, (const void *)resp, c->glass);
        else
            got_record(p, (const void *)resp, c->glass);
    } else {
        char *m = error_text(status, message);
        err_act_t act = status == MHTAS_GRPC_UNAVAILABLE || status == MHTAS_GRPC_DEADLINE_EXCEEDED ? ERR_ACT_RETRY
                        : !c->glass && (status == MHTAS_GRPC_PERMISSION_DENIED || status == MHTAS_GRPC_FAILED_PRECONDITION)
                            ? ERR_ACT_GLASS
                            : ERR_ACT_NONE;
        if (act == ERR_ACT_GLASS) {
            g_free(p->glass_nhs);
            p->glass_nhs = g_strdup(c->nhs);
            p->glass_for_read = !search;
        }
        show_error_text(p, m, act);
        g_free(m);
        gtk_label_set_text(GTK_LABEL(search ? p->results_note : p->record_note), "");
        desk_log(d, "care-%s id=%" PRIu64 " status=%s glass=%d", search ? "search" : "read", p->key,
                 mhtas_client_status_name(status), c->glass != 0);
    }
    busy_ui(p);
    ctx_free(c);
    script_poke(d);
}

static void on_err_btn(GtkButton *b, gpointer data)
{
    care_panel_t *p = data;
    err_act_t act = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(b), "act"));
    if (act == ERR_ACT_GLASS) {
        open_glass(p, p->glass_for_read, p->glass_nhs, p->glass_for_read && panel_held(p) ? BG(RESTRICTED_RECORD) : 0);
    } else if (act == ERR_ACT_RETRY && p->last_req && !p->busy) {
        hide_error(p);
        int glass = 0;
        const ProtobufCMessageDescriptor *ds = p->last_req->descriptor;
        const char *nhs = NULL;
        if (ds == &mhtas__v1__search_persons_request__descriptor)
            glass = ((Mhtas__V1__SearchPersonsRequest *)p->last_req)->break_glass_reason;
        else if (ds == &mhtas__v1__get_care_summary_request__descriptor) {
            glass = ((Mhtas__V1__GetCareSummaryRequest *)p->last_req)->break_glass_reason;
            nhs = ((Mhtas__V1__GetCareSummaryRequest *)p->last_req)->nhs_number;
        }
        char *keep = g_strdup(nhs);
        desk_log(p->desk, "care-retry id=%" PRIu64 " method=%s", p->key, p->last_method);
        start_call(p, p->last_method, p->last_req, glass, keep);
        g_free(keep);
    }
}

/* ------------------------------------------------------------ actions */

void care_search(care_panel_t *p)
{
    if (p->busy)
        return;
    if (!panel_held(p)) {
        open_glass(p, false, NULL, p->tab ? 0 : BG(NOT_YET_ROUTED));
        return;
    }
    do_search(p, 0, NULL);
}

void care_open_row(care_panel_t *p, int row)
{
    if (p->busy || p->found == NULL || row < 0 || (size_t)row >= p->found->n_matches)
        return;
    open_confirm(p, p->found->matches[row], false); /* then the read, or the break-glass dialog */
}

static void on_search_clicked(GtkButton *b, gpointer data) { (void)b; care_search(data); }

static void on_glass_clicked(GtkButton *b, gpointer data)
{
    (void)b;
    care_panel_t *p = data;
    GtkListBoxRow *row = gtk_list_box_get_selected_row(GTK_LIST_BOX(p->results));
    int i = row ? gtk_list_box_row_get_index(row) : -1;
    if (p->found && i >= 0 && (size_t)i < p->found->n_matches)
        open_confirm(p, p->found->matches[i], true); /* the same confirmation first */
    else
        open_glass(p, false, NULL, 0);
}

static void on_open_clicked(GtkButton *b, gpointer data)
{
    (void)b;
    care_panel_t *p = data;
    GtkListBoxRow *row = gtk_list_box_get_selected_row(GTK_LIST_BOX(p->results));
    if (row)
        care_open_row(p, gtk_list_box_row_get_index(row));
}

static void on_row_activated(GtkListBox *lb, GtkListBoxRow *row, gpointer data)
{
    (void)lb;
    care_open_row(data, gtk_list_box_row_get_index(row));
}

static void on_back_clicked(GtkButton *b, gpointer data)
{
    (void)b;
    care_panel_t *p = data;
    gtk_stack_set_visible_child_name(GTK_STACK(p->stack), "search");
}

static void on_close_record_clicked(GtkButton *b, gpointer data)
{
    (void)b;
    care_close_record(data, "Record closed: it is no longer held on this computer.");
}

/* ------------------------------------------------------------ share */

typedef struct share_ctx {
    desk_t *d;
    uint64_t key;
    size_t n_parts;
    int parts[CARE_NPARTS];
} share_ctx_t;

static void build_share(care_panel_t *p);

void care_share_open(care_panel_t *p)
{
    if (p->rec == NULL || p->rec->summary == NULL)
        return;
    if (!panel_held(p)) {
        show_error_text(p, "Sharing with the police needs an incident you hold.", ERR_ACT_NONE);
        return;
    }
    if (p->share_win == NULL)
        build_share(p);
    /* Minimum necessary: nothing ticked, nothing written for the practitioner. */
    for (int i = 1; i < CARE_NPARTS; i++)
        gtk_check_button_set_active(GTK_CHECK_BUTTON(p->share_part[i]), FALSE);
    gtk_text_buffer_set_text(p->share_text, "", 0);
    gtk_drop_down_set_selected(GTK_DROP_DOWN(p->share_basis_dd), gtk_drop_down_get_selected(GTK_DROP_DOWN(p->basis_dd)));
    char *reason = g_strdup_printf("officers need this to act safely on incident %s", care_ref_of(p));
    gtk_editable_set_text(GTK_EDITABLE(p->share_reason_e), reason);
    g_free(reason);
    gtk_label_set_text(GTK_LABEL(p->share_note),
                       "Tick only the parts your advice draws on, and write what the officers need to know in your "
                       "own words. The police see your text and the parts' names, never the record.");
    gtk_widget_remove_css_class(p->share_note, "rule-error");
    gtk_widget_set_sensitive(p->share_send, TRUE);
    gtk_window_present(GTK_WINDOW(p->share_win));
    gtk_widget_grab_focus(p->share_view);
}

/* Whether `text` holds the NHS number's ten digits (spaces, hyphens ignored). */
static bool holds_nhs(const char *text, const char *nhs)
{
    if (nhs == NULL || strlen(nhs) != 10)
        return false;
    GString *digits = g_string_new(NULL);
    for (const char *s = text; *s; s++) {
        if (isdigit((unsigned char)*s))
            g_string_append_c(digits, *s);
        else if (*s != ' ' && *s != '-')
            g_string_append_c(digits, '|');
    }
    bool found = strstr(digits->str, nhs) != NULL;
    g_string_free(digits, TRUE);
    return found;
}

static void share_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    share_ctx_t *c = ctx;
    desk_t *d = c->d;
    care_panel_t *p = d->quitting ? NULL : panel_by_key(d, c->key);
    if (p == NULL) {
        g_free(c);
        return;
    }
    p->sharing = false;
    p->last_status = status;
    p->last_method = "ShareWithPolice";
    if (status == MHTAS_GRPC_OK) {
        const Mhtas__V1__ShareWithPoliceResponse *r = (const void *)resp;
        p->last_disclosure = r->disclosure_id;
        p->shares++;
        if (p->share_win)
            gtk_widget_set_visible(p->share_win, FALSE);
        char *names = part_list(c->parts, c->n_parts, false);
        char *tm = fmt_time(r->shared_at_ms);
        char *m = g_strdup_printf("Shared with the police at %s: %s. It is in the conversation (disclosure %" PRIu64 ").",
                                  tm, names, r->disclosure_id);
        gtk_label_set_text(GTK_LABEL(p->record_note), m);
        g_free(m);
        g_free(tm);
        g_free(names);
        char *pn = part_list(c->parts, c->n_parts, true);
        desk_log(d, "care-share id=%" PRIu64 " status=OK parts=%s disclosure=%" PRIu64, p->key, pn, r->disclosure_id);
        g_free(pn);
    } else {
        char *m = error_text(status, message);
        char *m2 = g_strdup_printf("Not shared. %s", m);
        if (p->share_win && gtk_widget_get_visible(p->share_win)) {
            gtk_label_set_text(GTK_LABEL(p->share_note), m2);
            gtk_widget_add_css_class(p->share_note, "rule-error");
        } else {
            show_error_text(p, m2, ERR_ACT_NONE);
        }
        g_free(m);
        g_free(m2);
        desk_log(d, "care-share id=%" PRIu64 " status=%s", p->key, mhtas_client_status_name(status));
    }
    if (p->share_send)
        gtk_widget_set_sensitive(p->share_send, TRUE);
    busy_ui(p);
    g_free(c);
    script_poke(d);
}

void care_share_send(care_panel_t *p)
{
    if (p->sharing || p->rec == NULL || p->rec->summary == NULL)
        return;
    share_ctx_t *c = g_new0(share_ctx_t, 1);
    Mhtas__V1__CarePart parts[CARE_NPARTS];
    for (int i = 1; i < CARE_NPARTS; i++)
        if (gtk_check_button_get_active(GTK_CHECK_BUTTON(p->share_part[i]))) {
            parts[c->n_parts] = (Mhtas__V1__CarePart)i;
            c->parts[c->n_parts++] = i;
        }
    GtkTextIter a, b;
    gtk_text_buffer_get_bounds(p->share_text, &a, &b);
    char *text = gtk_text_buffer_get_text(p->share_text, &a, &b, FALSE);
    g_strstrip(text);
    char *reason = entry_text(p->share_reason_e);
    const char *err = NULL;
    if (c->n_parts == 0)
        err = "Tick the parts of the record your advice draws on (at least one).";
    else if (*text == '\0')
        err = "Write what the officers need to know.";
    else if (holds_nhs(text, p->rec->summary->nhs_number))
        err = "Your text holds the NHS number: the police do not need it. Take it out.";
    else if (*reason == '\0')
        err = "Give the reason for sharing: it goes into the audit trail.";
    if (err) {
        gtk_label_set_text(GTK_LABEL(p->share_note), err);
        gtk_widget_add_css_class(p->share_note, "rule-error");
        g_free(c);
        g_free(text);
        g_free(reason);
        return;
    }
    guint bi = gtk_drop_down_get_selected(GTK_DROP_DOWN(p->share_basis_dd));
    Mhtas__V1__ShareWithPoliceRequest req = MHTAS__V1__SHARE_WITH_POLICE_REQUEST__INIT;
    req.incident_id = p->tab ? p->tab->id : 0;
    req.nhs_number = p->rec->summary->nhs_number;
    req.n_parts = c->n_parts;
    req.parts = parts;
    req.summary = text;
    req.lawful_basis = bi < G_N_ELEMENTS(basis_values) ? basis_values[bi] : LB(DIRECT_CARE);
    req.reason = reason;
    c->d = p->desk;
    c->key = p->key;
    if (desk_call(p->desk, "ShareWithPolice", &req.base, CARE_DEADLINE_MS, share_done, c) < 0) {
        g_free(c);
    } else {
        p->sharing = true;
        gtk_label_set_text(GTK_LABEL(p->share_note), "Sharing\u2026");
        gtk_widget_remove_css_class(p->share_note, "rule-error");
        gtk_widget_set_sensitive(p->share_send, FALSE);
        busy_ui(p);
    }
    g_free(text);
    g_free(reason);
}

static void on_share_clicked(GtkButton *b, gpointer data) { (void)b; care_share_open(data); }
static void on_share_send(GtkButton *b, gpointer data) { (void)b; care_share_send(data); }
static void on_share_cancel(GtkButton *b, gpointer data)
{
    (void)b;
    care_panel_t *p = data;
    gtk_widget_set_visible(p->share_win, FALSE);
}

static void build_share(care_panel_t *p)
{
    char *title = g_strdup_printf("Share with police \u2014 %s", care_ref_of(p));
    GtkWidget *v;
    GtkWidget *w = modal_new(p, title, 560, &v);
    g_free(title);
    p->share_note = heading_and_note(v, "Share with the police: minimum necessary");
    GtkWidget *g = gtk_grid_new();
    gtk_grid_set_column_spacing(GTK_GRID(g), 16);
    for (int i = 1; i < CARE_NPARTS; i++) {
        p->share_part[i] = gtk_check_button_new_with_label(care_part_label(i));
        gtk_grid_attach(GTK_GRID(g), p->share_part[i], (i - 1) % 2, (i - 1) / 2, 1, 1);
    }
    gtk_box_append(GTK_BOX(v), g);
    GtkWidget *l = gtk_label_new("What the officers are told (your words; no diagnoses or numbers they do not need)");
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_label_set_wrap(GTK_LABEL(l), TRUE);
    gtk_box_append(GTK_BOX(v), l);
    p->share_view = gtk_text_view_new();
    gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(p->share_view), GTK_WRAP_WORD_CHAR);
    p->share_text = gtk_text_view_get_buffer(GTK_TEXT_VIEW(p->share_view));
    GtkWidget *sw = gtk_scrolled_window_new();
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), p->share_view);
    gtk_widget_set_size_request(sw, -1, 110);
    gtk_box_append(GTK_BOX(v), sw);
    GtkWidget *fg = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(fg), 4);
    gtk_grid_set_column_spacing(GTK_GRID(fg), 8);
    p->share_basis_dd = gtk_drop_down_new_from_strings(basis_labels);
    p->share_reason_e = gtk_entry_new();
    gtk_widget_set_hexpand(p->share_reason_e, TRUE);
    GtkWidget *l1 = gtk_label_new("Lawful basis"), *l2 = gtk_label_new("Reason");
    gtk_label_set_xalign(GTK_LABEL(l1), 1);
    gtk_label_set_xalign(GTK_LABEL(l2), 1);
    gtk_grid_attach(GTK_GRID(fg), l1, 0, 0, 1, 1);
    gtk_grid_attach(GTK_GRID(fg), p->share_basis_dd, 1, 0, 1, 1);
    gtk_grid_attach(GTK_GRID(fg), l2, 0, 1, 1, 1);
    gtk_grid_attach(GTK_GRID(fg), p->share_reason_e, 1, 1, 1, 1);
    gtk_box_append(GTK_BOX(v), fg);
    p->share_send = action_row(v, G_CALLBACK(on_share_cancel), "_Send to the police", "suggested-action",
                               G_CALLBACK(on_share_send), p, NULL);
    gtk_window_set_child(GTK_WINDOW(w), v);
    p->share_win = w;
}

/* ------------------------------------------------------------ building */

static GtkWidget *form_label(const char *text)
{
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), 1);
    return l;
}

care_panel_t *care_panel_new(desk_t *d, inc_tab_t *t)
{
    care_panel_t *p = g_new0(care_panel_t, 1);
    p->desk = d;
    p->tab = t;
    p->key = t ? t->id : 0;
    p->last_status = -1;

    p->root = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
    gtk_widget_set_margin_start(p->root, 6);
    gtk_widget_set_margin_end(p->root, 6);
    gtk_widget_set_margin_top(p->root, 6);

    /* the error bar */
    p->err_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_widget_add_css_class(p->err_box, "care-error");
    p->err_lbl = gtk_label_new("");
    gtk_label_set_wrap(GTK_LABEL(p->err_lbl), TRUE);
    gtk_label_set_xalign(GTK_LABEL(p->err_lbl), 0);
    gtk_widget_set_hexpand(p->err_lbl, TRUE);
    gtk_box_append(GTK_BOX(p->err_box), p->err_lbl);
    p->err_btn = gtk_button_new_with_label("Try again");
    gtk_widget_set_valign(p->err_btn, GTK_ALIGN_CENTER);
    g_signal_connect(p->err_btn, "clicked", G_CALLBACK(on_err_btn), p);
    gtk_box_append(GTK_BOX(p->err_box), p->err_btn);
    gtk_widget_set_visible(p->err_box, FALSE);
    gtk_box_append(GTK_BOX(p->root), p->err_box);

    p->stack = gtk_stack_new();
    gtk_widget_set_vexpand(p->stack, TRUE);
    gtk_box_append(GTK_BOX(p->root), p->stack);

    /* ---- search page */
    GtkWidget *sv = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    GtkWidget *g = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(g), 4);
    gtk_grid_set_column_spacing(GTK_GRID(g), 8);
    p->family_e = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(p->family_e), "required; Smi* for a prefix");
    p->given_e = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(p->given_e), "optional; A* allowed");
    p->dob_e = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(p->dob_e), "YYYY-MM-DD, or a range ..");
    p->postcode_e = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(p->postcode_e), "optional; BL1 4AA or BL1");
    p->basis_dd = gtk_drop_down_new_from_strings(basis_labels);
    p->reason_e = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(p->reason_e), "why you look this person up (recorded)");
    int r = 0;
    gtk_grid_attach(GTK_GRID(g), form_label("Family name"), 0, r, 1, 1);
    gtk_grid_attach(GTK_GRID(g), p->family_e, 1, r, 1, 1);
    gtk_grid_attach(GTK_GRID(g), form_label("Given name"), 2, r, 1, 1);
    gtk_grid_attach(GTK_GRID(g), p->given_e, 3, r++, 1, 1);
    gtk_grid_attach(GTK_GRID(g), form_label("Date of birth"), 0, r, 1, 1);
    gtk_grid_attach(GTK_GRID(g), p->dob_e, 1, r, 1, 1);
    gtk_grid_attach(GTK_GRID(g), form_label("Postcode"), 2, r, 1, 1);
    gtk_grid_attach(GTK_GRID(g), p->postcode_e, 3, r++, 1, 1);
    if (t == NULL) {
        p->incident_e = gtk_entry_new();
        gtk_entry_set_placeholder_text(GTK_ENTRY(p->incident_e), "incident number, if there is one");
        gtk_grid_attach(GTK_GRID(g), form_label("Incident"), 0, r, 1, 1);
        gtk_grid_attach(GTK_GRID(g), p->incident_e, 1, r++, 3, 1);
    }
    gtk_grid_attach(GTK_GRID(g), form_label("Lawful basis"), 0, r, 1, 1);
    gtk_grid_attach(GTK_GRID(g), p->basis_dd, 1, r++, 3, 1);
    gtk_grid_attach(GTK_GRID(g), form_label("Reason"), 0, r, 1, 1);
    gtk_grid_attach(GTK_GRID(g), p->reason_e, 1, r++, 3, 1);
    gtk_widget_set_hexpand(p->family_e, TRUE);
    gtk_widget_set_hexpand(p->given_e, TRUE);
    gtk_box_append(GTK_BOX(sv), g);
    for (GtkWidget **e = (GtkWidget *[]){ p->family_e, p->given_e, p->dob_e, p->postcode_e, NULL }; *e; e++)
        g_signal_connect_swapped(*e, "activate", G_CALLBACK(care_search), p);

    GtkWidget *act = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    p->search_btn = gtk_button_new_with_mnemonic(t ? "Searc_h" : "Searc_h (break glass)\u2026");
    gtk_widget_add_css_class(p->search_btn, "suggested-action");
    g_signal_connect(p->search_btn, "clicked", G_CALLBACK(on_search_clicked), p);
    gtk_box_append(GTK_BOX(act), p->search_btn);
    p->open_btn = gtk_button_new_with_mnemonic("_Open record");
    g_signal_connect(p->open_btn, "clicked", G_CALLBACK(on_open_clicked), p);
    gtk_box_append(GTK_BOX(act), p->open_btn);
    GtkWidget *spacer = gtk_label_new("");
    gtk_widget_set_hexpand(spacer, TRUE);
    gtk_box_append(GTK_BOX(act), spacer);
    p->glass_btn = gtk_button_new_with_label("Break glass\u2026");
    gtk_widget_add_css_class(p->glass_btn, "destructive-action");
    gtk_widget_set_tooltip_text(p->glass_btn, "Read a restricted record, or look up outside an incident you hold: "
                                              "recorded, and your supervisor is told");
    g_signal_connect(p->glass_btn, "clicked", G_CALLBACK(on_glass_clicked), p);
    gtk_box_append(GTK_BOX(act), p->glass_btn);
    gtk_box_append(GTK_BOX(sv), act);

    p->results_note = gtk_label_new("Every look-up is recorded with its lawful basis and reason.");
    gtk_label_set_wrap(GTK_LABEL(p->results_note), TRUE);
    gtk_label_set_xalign(GTK_LABEL(p->results_note), 0);
    gtk_widget_add_css_class(p->results_note, "care-hint");
    gtk_box_append(GTK_BOX(sv), p->results_note);
    p->results = gtk_list_box_new();
    gtk_list_box_set_activate_on_single_click(GTK_LIST_BOX(p->results), FALSE);
    gtk_list_box_set_selection_mode(GTK_LIST_BOX(p->results), GTK_SELECTION_SINGLE);
    g_signal_connect(p->results, "row-activated", G_CALLBACK(on_row_activated), p);
    GtkWidget *rsw = gtk_scrolled_window_new();
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(rsw), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(rsw), p->results);
    gtk_widget_set_vexpand(rsw, TRUE);
    gtk_box_append(GTK_BOX(sv), rsw);
    gtk_stack_add_named(GTK_STACK(p->stack), sv, "search");

    /* ---- record page */
    GtkWidget *rv = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
    p->restricted_lbl = gtk_label_new("RESTRICTED RECORD \u2014 opened under break-glass. This access is reviewed; "
                                      "share only what is strictly necessary.");
    gtk_label_set_wrap(GTK_LABEL(p->restricted_lbl), TRUE);
    gtk_label_set_xalign(GTK_LABEL(p->restricted_lbl), 0);
    gtk_widget_add_css_class(p->restricted_lbl, "care-restricted");
    gtk_widget_set_visible(p->restricted_lbl, FALSE);
    gtk_box_append(GTK_BOX(rv), p->restricted_lbl);
    p->record_view = gtk_text_view_new();
    gtk_text_view_set_editable(GTK_TEXT_VIEW(p->record_view), FALSE);
    gtk_text_view_set_cursor_visible(GTK_TEXT_VIEW(p->record_view), FALSE);
    gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(p->record_view), GTK_WRAP_WORD_CHAR);
    gtk_text_view_set_left_margin(GTK_TEXT_VIEW(p->record_view), 6);
    gtk_widget_add_css_class(p->record_view, "care-record");
    p->record = gtk_text_view_get_buffer(GTK_TEXT_VIEW(p->record_view));
    gtk_text_buffer_create_tag(p->record, "h1", "weight", PANGO_WEIGHT_BOLD, "scale", 1.3, NULL);
    gtk_text_buffer_create_tag(p->record, "h2", "weight", PANGO_WEIGHT_BOLD, "foreground", "#1c3d5a",
                               "pixels-above-lines", 8, "scale", 1.1, NULL);
    gtk_text_buffer_create_tag(p->record, "meta", "foreground", "#868e96", "scale", 0.9, NULL);
    gtk_text_buffer_create_tag(p->record, "stale", "foreground", "#7d1a1a", "background", "#ffe066",
                               "weight", PANGO_WEIGHT_BOLD, NULL);
    gtk_text_buffer_create_tag(p->record, "missing", "foreground", "#868e96", "style", PANGO_STYLE_ITALIC, NULL);
    gtk_text_buffer_create_tag(p->record, "key", "weight", PANGO_WEIGHT_BOLD, NULL);
    gtk_text_buffer_create_tag(p->record, "strong", "weight", PANGO_WEIGHT_BOLD, NULL);
    gtk_text_buffer_create_tag(p->record, "alert", "weight", PANGO_WEIGHT_BOLD, "foreground", "#c92a2a", NULL);
    GtkWidget *tsw = gtk_scrolled_window_new();
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(tsw), p->record_view);
    gtk_widget_set_vexpand(tsw, TRUE);
    gtk_box_append(GTK_BOX(rv), tsw);
    p->record_note = gtk_label_new("");
    gtk_label_set_wrap(GTK_LABEL(p->record_note), TRUE);
    gtk_label_set_xalign(GTK_LABEL(p->record_note), 0);
    gtk_box_append(GTK_BOX(rv), p->record_note);
    GtkWidget *ract = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *back = gtk_button_new_with_mnemonic("\u2190 _Results");
    g_signal_connect(back, "clicked", G_CALLBACK(on_back_clicked), p);
    gtk_box_append(GTK_BOX(ract), back);
    GtkWidget *close = gtk_button_new_with_mnemonic("_Close record");
    gtk_widget_set_tooltip_text(close, "Drop the record from this computer's memory");
    g_signal_connect(close, "clicked", G_CALLBACK(on_close_record_clicked), p);
    gtk_box_append(GTK_BOX(ract), close);
    GtkWidget *sp2 = gtk_label_new("");
    gtk_widget_set_hexpand(sp2, TRUE);
    gtk_box_append(GTK_BOX(ract), sp2);
    if (t) {
        p->share_btn = gtk_button_new_with_mnemonic("Share with _police\u2026");
        gtk_widget_add_css_class(p->share_btn, "suggested-action");
        g_signal_connect(p->share_btn, "clicked", G_CALLBACK(on_share_clicked), p);
        gtk_box_append(GTK_BOX(ract), p->share_btn);
    }
    gtk_box_append(GTK_BOX(rv), ract);
    gtk_stack_add_named(GTK_STACK(p->stack), rv, "record");
    gtk_stack_set_visible_child_name(GTK_STACK(p->stack), "search");
    busy_ui(p);
    return p;
}

/* Prefills the form from what the police know, once; closes the record
 * when the incident is no longer the practitioner's. */
void care_panel_update(care_panel_t *p)
{
    inc_tab_t *t = p->tab;
    if (t == NULL || t->incident == NULL)
        return;
    if (!p->prefilled) {
        p->prefilled = true;
        const Mhtas__V1__IncidentDetails *dt = t->incident->details;
        const Mhtas__V1__Person *pe = dt ? dt->person : NULL;
        if (pe) {
            gtk_editable_set_text(GTK_EDITABLE(p->family_e), pe->family_name);
            char **given = g_strsplit(pe->given_names, " ", 2);
            gtk_editable_set_text(GTK_EDITABLE(p->given_e), given[0] ? given[0] : "");
            g_strfreev(given);
            gtk_editable_set_text(GTK_EDITABLE(p->dob_e), pe->date_of_birth);
            gtk_editable_set_text(GTK_EDITABLE(p->postcode_e), pe->postcode);
        }
        char *reason = g_strdup_printf("advising officers on incident %s", care_ref_of(p));
        gtk_editable_set_text(GTK_EDITABLE(p->reason_e), reason);
        g_free(reason);
    }
    bool held = panel_held(p);
    gtk_button_set_label(GTK_BUTTON(p->search_btn), held ? "Searc_h" : "Searc_h (break glass)\u2026");
    gtk_button_set_use_underline(GTK_BUTTON(p->search_btn), TRUE);
    if (!held && p->rec)
        care_close_record(p, "The incident is no longer yours: the record was closed. Break the glass to read it again.");
    busy_ui(p);
}

void care_panel_free(care_panel_t *p)
{
    if (p == NULL)
        return;
    p->serial++; /* answers still in flight are dropped */
    pb_free(p->found);
    pb_free(p->rec);
    pb_free(p->last_req);
    g_free(p->glass_nhs);
    pb_free(p->confirm_match);
    if (p->glass_win)
        gtk_window_destroy(GTK_WINDOW(p->glass_win));
    if (p->confirm_win)
        gtk_window_destroy(GTK_WINDOW(p->confirm_win));
    if (p->share_win)
        gtk_window_destroy(GTK_WINDOW(p->share_win));
    g_free(p);
}

/* ------------------------------------------------------------ outside a held incident */

static gboolean on_glass_window_close(GtkWindow *w, gpointer data)
{
    (void)w;
    desk_t *d = data;
    care_panel_t *p = d->care_glass;
    if (p) {
        care_close_record(p, "Record closed.");
        clear_results(p);
        gtk_label_set_text(GTK_LABEL(p->results_note), "Every look-up here breaks the glass: it is recorded and your "
                                                       "supervisor is told.");
        busy_ui(p);
    }
    return FALSE; /* hidden (hide-on-close), kept for next time */
}

void care_glass_window(desk_t *d)
{
    if (d->care_glass_win == NULL) {
        GtkWidget *w = gtk_window_new();
        gtk_window_set_title(GTK_WINDOW(w), "Care record \u2014 outside a held incident (break glass)");
        gtk_window_set_transient_for(GTK_WINDOW(w), d->win);
        gtk_window_set_hide_on_close(GTK_WINDOW(w), TRUE);
        gtk_window_set_default_size(GTK_WINDOW(w), 720, 700);
        d->care_glass = care_panel_new(d, NULL);
        gtk_label_set_text(GTK_LABEL(d->care_glass->results_note),
                           "Every look-up here breaks the glass: it is recorded and your supervisor is told.");
        gtk_editable_set_text(GTK_EDITABLE(d->care_glass->reason_e), "advising officers on a live incident");
        gtk_drop_down_set_selected(GTK_DROP_DOWN(d->care_glass->basis_dd), 1); /* vital interests */
        gtk_window_set_child(GTK_WINDOW(w), d->care_glass->root);
        g_signal_connect(w, "close-request", G_CALLBACK(on_glass_window_close), d);
        d->care_glass_win = w;
    }
    gtk_window_present(GTK_WINDOW(d->care_glass_win));
    desk_log(d, "care-glass-window");
}
