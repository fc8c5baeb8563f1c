/* incident.c -- one incident's tab: header, the live conversation with a
 * per-incident draft (kept on disk until sent), advice templates, police
 * details, the timeline, the outcome form with the section 136 rules, and
 * the care-record panel (care.c). Shares from the care record show in the
 * conversation in their own style. */
#include "desk/desk.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

#include <glib/gstdio.h>

#define IS(x) MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_##x
#define OC(x) MHTAS__V1__OUTCOME_CODE__OUTCOME_CODE_##x

static const char *const places[] = {
    "\u2014 choose the place of safety \u2014", "Health-based place of safety (s136 suite)", "Emergency department (A&E)",
    "Police station", "Other", NULL,
};

const char *tab_state_name(const inc_tab_t *t)
{
    return state_label(t->incident ? (int)t->incident->state : 0);
}

static const char *ref_of(const inc_tab_t *t)
{
    return t->incident && t->incident->details ? t->incident->details->police_ref : "?";
}

/* ------------------------------------------------------------ conversation */

static gint msg_cmp(gconstpointer a, gconstpointer b)
{
    const Mhtas__V1__ChatMessage *x = *(Mhtas__V1__ChatMessage *const *)a;
    const Mhtas__V1__ChatMessage *y = *(Mhtas__V1__ChatMessage *const *)b;
    return x->number < y->number ? -1 : x->number > y->number;
}

static void update_tab_label(inc_tab_t *t)
{
    char *s = g_strdup_printf("%s%s \u00b7 %s", t->unread ? "\u25CF " : "", ref_of(t), tab_state_name(t));
    gtk_label_set_text(GTK_LABEL(t->tab_label), s);
    g_free(s);
}

void tab_render_conv(inc_tab_t *t)
{
    desk_t *d = t->desk;
    GtkTextBuffer *b = t->conv;
    gtk_text_buffer_set_text(b, "", 0);
    GtkTextIter it;
    gtk_text_buffer_get_end_iter(b, &it);
    if (t->msgs->len == 0)
        gtk_text_buffer_insert_with_tags_by_name(b, &it, "No messages yet.\n", -1, "meta", NULL);
    for (guint i = 0; i < t->msgs->len; i++) {
        const Mhtas__V1__ChatMessage *m = g_ptr_array_index(t->msgs, i);
        bool me = d->user_id && strcmp(m->from_user, d->user_id) == 0;
        char *tm = fmt_time(m->at_ms);
        char *head = g_strdup_printf("%s  ", tm);
        gtk_text_buffer_insert_with_tags_by_name(b, &it, head, -1, "meta", NULL);
        char *who = g_strdup_printf("%s (%s)", *m->from_name ? m->from_name : m->from_user,
                                    pb_enum(&mhtas__v1__role__descriptor, m->from_role, "ROLE_"));
        gtk_text_buffer_insert_with_tags_by_name(b, &it, who, -1, me ? "me" : "them", NULL);
        if (m->kind == MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_SHARE) {
            /* What the practitioner shared from the care record: set apart. */
            gtk_text_buffer_insert_with_tags_by_name(b, &it, "  \u21AA SHARED FROM THE CARE RECORD", -1, "share-head", NULL);
            gtk_text_buffer_insert(b, &it, "\n", 1);
            gtk_text_buffer_insert_with_tags_by_name(b, &it, m->text, -1, "share", NULL);
        } else {
            gtk_text_buffer_insert(b, &it, "\n", 1);
            gtk_text_buffer_insert(b, &it, m->text, -1);
        }
        gtk_text_buffer_insert(b, &it, "\n\n", 2);
        g_free(tm);
        g_free(head);
        g_free(who);
    }
    for (GList *l = d->outbox; l; l = l->next) {
        outbox_item_t *o = l->data;
        if (o->incident_id != t->id)
            continue;
        const char *how = d->cstate == MHTAS_CLIENT_READY ? "sending\u2026" : "waiting for the connection \u2014 kept, will be sent";
        char *head = g_strdup_printf("(%s)  you\n", how);
        gtk_text_buffer_insert_with_tags_by_name(b, &it, head, -1, "pending", NULL);
        gtk_text_buffer_insert_with_tags_by_name(b, &it, o->text, -1, "pending", NULL);
        gtk_text_buffer_insert(b, &it, "\n\n", 2);
        g_free(head);
    }
    /* Keep the newest message in view. */
    gtk_text_buffer_get_end_iter(b, &it);
    GtkTextMark *mark = gtk_text_buffer_get_mark(b, "end");
    if (mark == NULL)
        mark = gtk_text_buffer_create_mark(b, "end", &it, FALSE);
    else
        gtk_text_buffer_move_mark(b, mark, &it);
    gtk_text_view_scroll_mark_onscreen(GTK_TEXT_VIEW(t->conv_view), mark);
}

void tab_add_message(inc_tab_t *t, const Mhtas__V1__ChatMessage *m)
{
    for (guint i = 0; i < t->msgs->len; i++) {
        const Mhtas__V1__ChatMessage *x = g_ptr_array_index(t->msgs, i);
        if (x->number == m->number)
            return;
    }
    g_ptr_array_add(t->msgs, pb_dup(&m->base));
    g_ptr_array_sort(t->msgs, msg_cmp);
    desk_t *d = t->desk;
    bool mine = d->user_id && strcmp(m->from_user, d->user_id) == 0;
    if (m->kind == MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_SHARE)
        desk_log(d, "share-message id=%" PRIu64 " number=%u from=%s", t->id, m->number, m->from_user);
    if (!mine) {
        desk_log(d, "message id=%" PRIu64 " number=%u from=%s", t->id, m->number, m->from_user);
        if (ui_current_tab(d) != t) {
            t->unread = true;
            update_tab_label(t);
        }
    }
    tab_render_conv(t);
}

/* ------------------------------------------------------------ draft */

static void draft_save(inc_tab_t *t)
{
    GtkTextIter a, b;
    gtk_text_buffer_get_bounds(t->draft, &a, &b);
    char *text = gtk_text_buffer_get_text(t->draft, &a, &b, FALSE);
    if (*text)
        g_file_set_contents_full(t->draft_path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL);
    else
        g_remove(t->draft_path);
    g_free(text);
}

static void on_draft_changed(GtkTextBuffer *b, gpointer data)
{
    (void)b;
    inc_tab_t *t = data;
    draft_save(t);
    gtk_label_set_text(GTK_LABEL(t->draft_note), "Draft kept (saved on this computer until sent).");
}

void tab_send(inc_tab_t *t)
{
    GtkTextIter a, b;
    gtk_text_buffer_get_bounds(t->draft, &a, &b);
    char *text = gtk_text_buffer_get_text(t->draft, &a, &b, FALSE);
    g_strstrip(text);
    if (*text == '\0') {
        g_free(text);
        return;
    }
    if (t->closed) {
        gtk_label_set_text(GTK_LABEL(t->draft_note), "The incident is closed: nothing more can be posted.");
        g_free(text);
        return;
    }
    ui_outbox_post(t->desk, t->id, text);
    g_free(text);
    gtk_text_buffer_set_text(t->draft, "", 0);
    gtk_label_set_text(GTK_LABEL(t->draft_note), "");
}

static void on_send_clicked(GtkButton *b, gpointer data) { (void)b; tab_send(data); }
static gboolean on_send_key(GtkWidget *w, GVariant *args, gpointer data)
{
    (void)w;
    (void)args;
    tab_send(data);
    return TRUE;
}

/* ------------------------------------------------------------ templates */

void tab_reload_templates(inc_tab_t *t)
{
    desk_t *d = t->desk;
    GtkStringList *sl = gtk_string_list_new(NULL);
    for (guint i = 0; i < d->tpl_titles->len; i++)
        gtk_string_list_append(sl, g_ptr_array_index(d->tpl_titles, i));
    gtk_drop_down_set_model(GTK_DROP_DOWN(t->tpl_dd), G_LIST_MODEL(sl));
    g_object_unref(sl);
}

static void on_insert_tpl(GtkButton *b, gpointer data)
{
    (void)b;
    inc_tab_t *t = data;
    guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(t->tpl_dd));
    if (i >= t->desk->tpl_texts->len)
        return;
    gtk_text_buffer_insert_at_cursor(t->draft, g_ptr_array_index(t->desk->tpl_texts, i), -1);
    gtk_widget_grab_focus(t->draft_view);
}

static void on_edit_tpl(GtkButton *b, gpointer data)
{
    (void)b;
    templates_edit(((inc_tab_t *)data)->desk);
}

/* ------------------------------------------------------------ details, timeline */

static void add_row(GString *s, const char *k, const char *v)
{
    char *e = g_markup_escape_text(v ? v : "", -1);
    g_string_append_printf(s, "<b>%s</b>  %s\n", k, *e ? e : "\u2014");
    g_free(e);
}

static void render_details(inc_tab_t *t)
{
    const Mhtas__V1__Incident *inc = t->incident;
    const Mhtas__V1__IncidentDetails *dt = inc->details;
    GString *s = g_string_new(NULL);
    if (dt) {
        add_row(s, "Police log", dt->police_ref);
        add_row(s, "Priority", priority_label(dt->priority));
        char *bp = g_strdup_printf("%s (%s)", dt->borough, inc->provider);
        add_row(s, "Borough", bp);
        g_free(bp);
        add_row(s, "Place", dt->place);
        const Mhtas__V1__Person *p = dt->person;
        if (p) {
            char *name = g_strdup_printf("%s %s", p->given_names, p->family_name);
            add_row(s, "Person", g_strstrip(name));
            g_free(name);
            char *age = *p->date_of_birth ? g_strdup(p->date_of_birth)
                        : p->age_years      ? g_strdup_printf("about %u", p->age_years)
                                            : g_strdup("");
            add_row(s, "Born / age", age);
            g_free(age);
            char *addr = g_strdup_printf("%s %s", p->address, p->postcode);
            add_row(s, "Address", g_strstrip(addr));
            g_free(addr);
            char *nhs = nhs_format(p->nhs_number);
            add_row(s, "NHS number", nhs);
            g_free(nhs);
        }
        if (desk_incident_is_child(dt, now_ms()))
            g_string_append(s, "<span foreground='#c92a2a' weight='bold'>UNDER 18: never a police station as place of safety</span>\n");
        add_row(s, "Concerns", dt->concerns);
        GString *f = g_string_new(NULL);
        for (size_t i = 0; i < dt->n_flags; i++)
            g_string_append_printf(f, "%s%s", i ? ", " : "", pb_enum(&mhtas__v1__concern_flag__descriptor, dt->flags[i], "CONCERN_FLAG_"));
        add_row(s, "Flags", f->str);
        g_string_free(f, TRUE);
        add_row(s, "Question", dt->question);
        GString *cs = g_string_new(NULL);
        for (size_t i = 0; i < dt->n_callsigns; i++)
            g_string_append_printf(cs, "%s%s", i ? ", " : "", dt->callsigns[i]);
        add_row(s, "Callsigns", cs->str);
        g_string_free(cs, TRUE);
        add_row(s, "RCRP decision", pb_enum(&mhtas__v1__rcrp_decision__descriptor, dt->rcrp, "RCRP_DECISION_"));
        add_row(s, "RCRP reason", dt->rcrp_reason);
    }
    add_row(s, "Raised by", inc->raised_by);
    char *rt = fmt_time(inc->raised_at_ms);
    add_row(s, "Raised at", rt);
    g_free(rt);
    add_row(s, "State", state_label(inc->state));
    if (inc->sla_breached)
        g_string_append(s, "<span foreground='#c92a2a' weight='bold'>Service level breached</span>\n");
    gtk_label_set_markup(GTK_LABEL(t->details), s->str);
    g_string_free(s, TRUE);
}

static void timeline_line(inc_tab_t *t, const Mhtas__V1__Transition *tr)
{
    GtkTextIter it;
    gtk_text_buffer_get_end_iter(t->timeline, &it);
    char *tm = fmt_time(tr->at_ms);
    char *line = g_strdup_printf("%s  %s \u2192 %s  %s  by %s%s%s%s%s\n", tm, state_label(tr->from), state_label(tr->to),
                                 pb_enum(&mhtas__v1__cause__descriptor, tr->cause, "CAUSE_"), tr->actor,
                                 *tr->practitioner ? " \u00b7 " : "", tr->practitioner, *tr->reason ? " \u00b7 " : "",
                                 tr->reason);
    gtk_text_buffer_insert(t->timeline, &it, line, -1);
    g_free(tm);
    g_free(line);
}

static void render_timeline(inc_tab_t *t, const Mhtas__V1__Transition *tr)
{
    const Mhtas__V1__Incident *inc = t->incident;
    if (inc->n_history > 0) {
        gtk_text_buffer_set_text(t->timeline, "", 0);
        for (size_t i = 0; i < inc->n_history; i++)
            timeline_line(t, inc->history[i]);
    } else if (tr) {
        timeline_line(t, tr);
    }
}

/* ------------------------------------------------------------ outcome form */

static int64_t parse_hhmm(const char *s)
{
    int h, m;
    if (s == NULL || sscanf(s, "%d:%d", &h, &m) != 2 || h < 0 || h > 23 || m < 0 || m > 59)
        return 0;
    GDateTime *now = g_date_time_new_now_local();
    GDateTime *t = g_date_time_new_local(g_date_time_get_year(now), g_date_time_get_month(now),
                                         g_date_time_get_day_of_month(now), h, m, 0);
    int64_t ms = g_date_time_to_unix(t) * 1000;
    if (ms > now_ms() + 5 * 60000)
        ms -= 24 * 3600 * 1000; /* a time later than now was yesterday */
    g_date_time_unref(t);
    g_date_time_unref(now);
    return ms;
}

static void read_form(inc_tab_t *t, desk_outcome_form_t *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 1; i < DESK_N_CODES; i++)
        f->codes[i] = gtk_check_button_get_active(GTK_CHECK_BUTTON(t->code_btn[i]));
    f->place_of_safety = (int)gtk_drop_down_get_selected(GTK_DROP_DOWN(t->place_dd));
    f->consulted_who = gtk_editable_get_text(GTK_EDITABLE(t->consulted_who));
    f->consulted_at_ms = parse_hhmm(gtk_editable_get_text(GTK_EDITABLE(t->consulted_at)));
    f->consultation_not_practicable = gtk_check_button_get_active(GTK_CHECK_BUTTON(t->not_practicable));
    f->inspector = gtk_editable_get_text(GTK_EDITABLE(t->inspector));
    f->place_is_persons_home = gtk_check_button_get_active(GTK_CHECK_BUTTON(t->persons_home));
}

void tab_validate(inc_tab_t *t)
{
    static bool busy = false; /* setting a field below emits "changed" again */
    if (busy)
        return;
    busy = true;
    desk_outcome_form_t f;
    read_form(t, &f);
    bool s136 = f.codes[OC(S136_DETENTION)];
    gtk_widget_set_sensitive(t->s136_box, s136);
    if (s136 && *gtk_editable_get_text(GTK_EDITABLE(t->consulted_at)) == '\0') {
        /* Offer "now" as the consultation time; the practitioner corrects it. */
        GDateTime *now = g_date_time_new_now_local();
        char *hm = g_date_time_format(now, "%H:%M");
        g_date_time_unref(now);
        gtk_editable_set_text(GTK_EDITABLE(t->consulted_at), hm);
        g_free(hm);
        read_form(t, &f);
    }
    bool child = t->incident && desk_incident_is_child(t->incident->details, now_ms());
    const char *err = desk_outcome_check(&f, child);
    bool can = err == NULL && !t->closed && !t->proposing && t->incident &&
               (t->incident->state == IS(ACCEPTED) || t->incident->state == IS(ADVISING) ||
                t->incident->state == IS(OUTCOME_PROPOSED));
    gtk_label_set_text(GTK_LABEL(t->outcome_msg), err ? err : "Ready to propose.");
    gtk_widget_remove_css_class(t->outcome_msg, err ? "rule-ok" : "rule-error");
    gtk_widget_add_css_class(t->outcome_msg, err ? "rule-error" : "rule-ok");
    gtk_widget_set_sensitive(t->propose_btn, can);
    busy = false;
}

static void on_form_changed(gpointer data) { tab_validate(data); }

typedef struct prop_ctx {
    desk_t *d;
    uint64_t id;
} prop_ctx_t;

static inc_tab_t *tab_by_id(desk_t *d, uint64_t id)
{
    int64_t key = (int64_t)id;
    return g_hash_table_lookup(d->tabs, &key);
}

static void propose_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    prop_ctx_t *c = ctx;
    desk_t *d = c->d;
    inc_tab_t *t = tab_by_id(d, c->id);
    g_free(c);
    if (d->quitting || t == NULL)
        return;
    t->proposing = false;
    if (status == MHTAS_GRPC_OK) {
        const Mhtas__V1__Incident *inc = ((const Mhtas__V1__ProposeOutcomeResponse *)resp)->incident;
        if (inc)
            tab_update(t, inc, NULL);
        desk_log(d, "proposed id=%" PRIu64, t->id);
    } else {
        char *m = g_strdup_printf("The hub refused the outcome: %s (%s)%s", message, mhtas_client_status_name(status),
                                  status == MHTAS_GRPC_UNAVAILABLE ? " \u2014 it may have been recorded: see the timeline" : "");
        gtk_label_set_text(GTK_LABEL(t->outcome_msg), m);
        gtk_widget_add_css_class(t->outcome_msg, "rule-error");
        desk_log(d, "propose-failed id=%" PRIu64 " status=%s", t->id, mhtas_client_status_name(status));
        g_free(m);
    }
    tab_validate(t);
    script_poke(d);
}

void tab_propose(inc_tab_t *t)
{
    desk_outcome_form_t f;
    read_form(t, &f);
    bool child = t->incident && desk_incident_is_child(t->incident->details, now_ms());
    const char *err = desk_outcome_check(&f, child);
    if (err) {
        gtk_label_set_text(GTK_LABEL(t->outcome_msg), err);
        return;
    }
    Mhtas__V1__OutcomeCode codes[DESK_N_CODES];
    size_t n = 0;
    for (int i = 1; i < DESK_N_CODES; i++)
        if (f.codes[i])
            codes[n++] = (Mhtas__V1__OutcomeCode)i;
    Mhtas__V1__Outcome out = MHTAS__V1__OUTCOME__INIT;
    Mhtas__V1__S136Details s = MHTAS__V1__S136_DETAILS__INIT;
    out.n_codes = n;
    out.codes = codes;
    out.summary = (char *)gtk_editable_get_text(GTK_EDITABLE(t->summary));
    if (f.codes[OC(S136_DETENTION)]) {
        s.place_of_safety = (Mhtas__V1__PlaceOfSafety)f.place_of_safety;
        s.consulted_who = (char *)f.consulted_who;
        s.consulted_at_ms = f.consultation_not_practicable && !*f.consulted_who ? 0 : f.consulted_at_ms;
        s.consultation_not_practicable = f.consultation_not_practicable;
        s.inspector = (char *)f.inspector;
        s.place_is_persons_home = f.place_is_persons_home;
        out.s136 = &s;
    }
    Mhtas__V1__ProposeOutcomeRequest req = MHTAS__V1__PROPOSE_OUTCOME_REQUEST__INIT;
    req.incident_id = t->id;
    req.outcome = &out;
    prop_ctx_t *c = g_new0(prop_ctx_t, 1);
    c->d = t->desk;
    c->id = t->id;
    if (desk_call(t->desk, "ProposeOutcome", &req.base, 15000, propose_done, c) < 0) {
        g_free(c);
        return;
    }
    t->proposing = true;
    gtk_label_set_text(GTK_LABEL(t->outcome_msg), "Proposing\u2026");
    gtk_widget_set_sensitive(t->propose_btn, FALSE);
}

static void on_propose_clicked(GtkButton *b, gpointer data) { (void)b; tab_propose(data); }

static void render_outcome_state(inc_tab_t *t, const Mhtas__V1__Transition *tr)
{
    const Mhtas__V1__Incident *inc = t->incident;
    GString *s = g_string_new(NULL);
    if (inc->outcome && inc->outcome->n_codes) {
        g_string_append(s, *inc->outcome->agreed_by ? "Agreed outcome: " : "Proposed outcome: ");
        for (size_t i = 0; i < inc->outcome->n_codes; i++)
            g_string_append_printf(s, "%s%s", i ? ", " : "", desk_outcome_code_name(inc->outcome->codes[i]));
        if (*inc->outcome->agreed_by)
            g_string_append_printf(s, " (agreed by %s)", inc->outcome->agreed_by);
        else if (inc->state == IS(OUTCOME_PROPOSED))
            g_string_append(s, " \u2014 waiting for the control room to agree");
    }
    if (tr && tr->cause == MHTAS__V1__CAUSE__CAUSE_OUTCOME_QUERIED)
        g_string_append_printf(s, "%sThe control room queried the outcome: %s", s->len ? "\n" : "", tr->reason);
    gtk_label_set_text(GTK_LABEL(t->outcome_state), s->str);
    g_string_free(s, TRUE);
}

/* ------------------------------------------------------------ update */

void tab_update(inc_tab_t *t, const Mhtas__V1__Incident *inc, const Mhtas__V1__Transition *tr)
{
    /* A call's answer can arrive after the event of a later change (the
     * operator agreed before ProposeOutcome's answer came in): never let
     * an older snapshot replace a newer one. */
    const Mhtas__V1__Incident *cur = t->incident;
    if (cur && (inc->updated_at_ms < cur->updated_at_ms ||
                (inc->updated_at_ms == cur->updated_at_ms && inc->n_history && inc->n_history < cur->n_history)))
        return;
    Mhtas__V1__Incident *copy = pb_dup(&inc->base);
    pb_free(t->incident);
    t->incident = copy;
    int s = inc->state;
    t->closed = s == IS(CLOSED) || s == IS(CANCELLED) || s == IS(TRANSFERRED) || s == IS(ESCALATED) ||
                (t->desk->user_id && *inc->practitioner && strcmp(inc->practitioner, t->desk->user_id) != 0);
    const Mhtas__V1__IncidentDetails *dt = inc->details;
    char *person = NULL;
    if (dt && dt->person)
        person = g_strdup_printf("%s %s", dt->person->given_names, dt->person->family_name);
    char *h = g_markup_printf_escaped("<span size='large' weight='bold'>%s</span>   %s \u00b7 %s \u00b7 %s   "
                                      "<b>%s</b>   %s",
                                      dt ? dt->police_ref : "?", priority_label(dt ? dt->priority : 0),
                                      dt ? dt->borough : "", person ? g_strstrip(person) : "", state_label(s),
                                      dt ? dt->place : "");
    gtk_label_set_markup(GTK_LABEL(t->header), h);
    g_free(h);
    g_free(person);
    update_tab_label(t);
    render_details(t);
    render_timeline(t, tr);
    render_outcome_state(t, tr);
    gtk_widget_set_sensitive(t->send_btn, !t->closed);
    if (t->closed && s == IS(CLOSED))
        gtk_label_set_text(GTK_LABEL(t->draft_note), "Closed: the outcome is agreed.");
    else if (t->closed)
        gtk_label_set_text(GTK_LABEL(t->draft_note), "This incident is no longer yours to advise on.");
    tab_validate(t);
    if (t->care)
        care_panel_update(t->care);
}

/* ------------------------------------------------------------ building */

static GtkWidget *scrolled(GtkWidget *child)
{
    GtkWidget *sw = gtk_scrolled_window_new();
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), child);
    gtk_widget_set_vexpand(sw, TRUE);
    gtk_widget_set_hexpand(sw, TRUE);
    return sw;
}

static GtkWidget *section(const char *title)
{
    GtkWidget *l = gtk_label_new(NULL);
    char *m = g_markup_printf_escaped("<b>%s</b>", title);
    gtk_label_set_markup(GTK_LABEL(l), m);
    g_free(m);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    return l;
}

static GtkWidget *build_outcome(inc_tab_t *t)
{
    GtkWidget *v = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_widget_set_margin_start(v, 8);
    gtk_widget_set_margin_end(v, 8);
    gtk_widget_set_margin_top(v, 8);
    gtk_box_append(GTK_BOX(v), section("Outcomes (tick every one that applies)"));
    GtkWidget *g = gtk_grid_new();
    gtk_grid_set_column_spacing(GTK_GRID(g), 12);
    for (int i = 1; i < DESK_N_CODES; i++) {
        t->code_btn[i] = gtk_check_button_new_with_label(desk_outcome_code_label(i));
        gtk_widget_set_tooltip_text(t->code_btn[i], desk_outcome_code_name(i));
        g_signal_connect_swapped(t->code_btn[i], "toggled", G_CALLBACK(on_form_changed), t);
        gtk_grid_attach(GTK_GRID(g), t->code_btn[i], (i - 1) % 2, (i - 1) / 2, 1, 1);
    }
    gtk_box_append(GTK_BOX(v), g);

    t->s136_box = gtk_grid_new();
    GtkGrid *sg = GTK_GRID(t->s136_box);
    gtk_grid_set_row_spacing(sg, 4);
    gtk_grid_set_column_spacing(sg, 8);
    gtk_box_append(GTK_BOX(v), section("Section 136 (when s136 detention is ticked)"));
    t->place_dd = gtk_drop_down_new_from_strings(places);
    g_signal_connect_swapped(t->place_dd, "notify::selected", G_CALLBACK(on_form_changed), t);
    t->consulted_who = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(t->consulted_who), "health professional consulted");
    t->consulted_at = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(t->consulted_at), "HH:MM");
    t->not_practicable = gtk_check_button_new_with_label("Consultation was not practicable");
    t->inspector = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(t->inspector), "inspector who authorised (police station, adults only)");
    t->persons_home = gtk_check_button_new_with_label("The person was in a place where they live");
    GtkWidget *rows[][2] = {
        { gtk_label_new("Place of safety"), t->place_dd },
        { gtk_label_new("Consulted"), t->consulted_who },
        { gtk_label_new("Consulted at"), t->consulted_at },
        { gtk_label_new(""), t->not_practicable },
        { gtk_label_new("Inspector"), t->inspector },
        { gtk_label_new(""), t->persons_home },
    };
    for (int i = 0; i < 6; i++) {
        gtk_label_set_xalign(GTK_LABEL(rows[i][0]), 1);
        gtk_grid_attach(sg, rows[i][0], 0, i, 1, 1);
        gtk_widget_set_hexpand(rows[i][1], TRUE);
        gtk_grid_attach(sg, rows[i][1], 1, i, 1, 1);
    }
    g_signal_connect_swapped(t->consulted_who, "changed", G_CALLBACK(on_form_changed), t);
    g_signal_connect_swapped(t->consulted_at, "changed", G_CALLBACK(on_form_changed), t);
    g_signal_connect_swapped(t->inspector, "changed", G_CALLBACK(on_form_changed), t);
    g_signal_connect_swapped(t->not_practicable, "toggled", G_CALLBACK(on_form_changed), t);
    g_signal_connect_swapped(t->persons_home, "toggled", G_CALLBACK(on_form_changed), t);
    gtk_box_append(GTK_BOX(v), t->s136_box);

    gtk_box_append(GTK_BOX(v), section("Summary of the advice"));
    t->summary = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(t->summary), "the advice in a sentence or two");
    gtk_box_append(GTK_BOX(v), t->summary);
    t->outcome_msg = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(t->outcome_msg), 0);
    gtk_label_set_wrap(GTK_LABEL(t->outcome_msg), TRUE);
    gtk_box_append(GTK_BOX(v), t->outcome_msg);
    t->propose_btn = gtk_button_new_with_mnemonic("_Propose outcome");
    gtk_widget_add_css_class(t->propose_btn, "suggested-action");
    g_signal_connect(t->propose_btn, "clicked", G_CALLBACK(on_propose_clicked), t);
    gtk_box_append(GTK_BOX(v), t->propose_btn);
    t->outcome_state = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(t->outcome_state), 0);
    gtk_label_set_wrap(GTK_LABEL(t->outcome_state), TRUE);
    gtk_box_append(GTK_BOX(v), t->outcome_state);
    return scrolled(v);
}

static void on_switch_page(GtkNotebook *nb, GtkWidget *page, guint n, gpointer data)
{
    (void)nb;
    (void)n;
    (void)data;
    inc_tab_t *t = g_object_get_data(G_OBJECT(page), "tab");
    if (t && t->unread) {
        t->unread = false;
        update_tab_label(t);
    }
}

inc_tab_t *tab_open(desk_t *d, const Mhtas__V1__Incident *inc)
{
    inc_tab_t *t = g_new0(inc_tab_t, 1);
    t->desk = d;
    t->id = inc->id;
    t->msgs = g_ptr_array_new_with_free_func(pb_free);
    /* Drafts may hold health data: they live in the user's runtime directory
     * ($XDG_RUNTIME_DIR: a per-user tmpfs, mode 0700, emptied at logout and
     * never backed up), not under ~/.config. They survive a dropped
     * connection and a crash of the desk, not a reboot. */
    char *drafts = g_build_filename(g_get_user_runtime_dir(), "mhtas-drafts", NULL);
    g_mkdir_with_parents(drafts, 0700);
    char *name = g_strdup_printf("%s-%" PRIu64 ".txt", d->user_id ? d->user_id : "me", inc->id);
    t->draft_path = g_build_filename(drafts, name, NULL);
    g_free(name);
    g_free(drafts);

    t->page = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    g_object_set_data(G_OBJECT(t->page), "tab", t);
    t->header = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(t->header), 0);
    gtk_widget_add_css_class(t->header, "inc-header");
    gtk_box_append(GTK_BOX(t->page), t->header);

    GtkWidget *paned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
    gtk_widget_set_vexpand(paned, TRUE);
    gtk_box_append(GTK_BOX(t->page), paned);

    /* left: the conversation and the composer */
    GtkWidget *left = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
    gtk_widget_set_margin_start(left, 6);
    gtk_widget_set_margin_end(left, 6);
    gtk_box_append(GTK_BOX(left), section("Conversation with the control room (live)"));
    t->conv_view = gtk_text_view_new();
    gtk_text_view_set_editable(GTK_TEXT_VIEW(t->conv_view), FALSE);
    gtk_text_view_set_cursor_visible(GTK_TEXT_VIEW(t->conv_view), FALSE);
    gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(t->conv_view), GTK_WRAP_WORD_CHAR);
    gtk_widget_add_css_class(t->conv_view, "conv");
    t->conv = gtk_text_view_get_buffer(GTK_TEXT_VIEW(t->conv_view));
    gtk_text_buffer_create_tag(t->conv, "me", "weight", PANGO_WEIGHT_BOLD, "foreground", "#1864ab", NULL);
    gtk_text_buffer_create_tag(t->conv, "them", "weight", PANGO_WEIGHT_BOLD, "foreground", "#a61e4d", NULL);
    gtk_text_buffer_create_tag(t->conv, "meta", "foreground", "#868e96", NULL);
    gtk_text_buffer_create_tag(t->conv, "pending", "foreground", "#868e96", "style", PANGO_STYLE_ITALIC, NULL);
    gtk_text_buffer_create_tag(t->conv, "share-head", "weight", PANGO_WEIGHT_BOLD, "foreground", "#087f5b",
                               "scale", 0.9, NULL);
    gtk_text_buffer_create_tag(t->conv, "share", "paragraph-background", "#e6fcf5", "foreground", "#0b4d3c",
                               "left-margin", 14, "style", PANGO_STYLE_ITALIC, NULL);
    t->conv_scroll = scrolled(t->conv_view);
    gtk_box_append(GTK_BOX(left), t->conv_scroll);

    GtkWidget *tpl = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_box_append(GTK_BOX(tpl), gtk_label_new("Template"));
    t->tpl_dd = gtk_drop_down_new(NULL, NULL);
    gtk_widget_set_hexpand(t->tpl_dd, TRUE);
    gtk_box_append(GTK_BOX(tpl), t->tpl_dd);
    GtkWidget *ins = gtk_button_new_with_mnemonic("_Insert");
    g_signal_connect(ins, "clicked", G_CALLBACK(on_insert_tpl), t);
    t->tpl_insert_btn = ins;
    gtk_box_append(GTK_BOX(tpl), ins);
    GtkWidget *edit = gtk_button_new_with_label("Edit templates\u2026");
    g_signal_connect(edit, "clicked", G_CALLBACK(on_edit_tpl), t);
    gtk_box_append(GTK_BOX(tpl), edit);
    gtk_box_append(GTK_BOX(left), tpl);
    tab_reload_templates(t);

    t->draft_view = gtk_text_view_new();
    gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(t->draft_view), GTK_WRAP_WORD_CHAR);
    t->draft = gtk_text_view_get_buffer(GTK_TEXT_VIEW(t->draft_view));
    char *saved = NULL;
    if (g_file_get_contents(t->draft_path, &saved, NULL, NULL) && saved)
        gtk_text_buffer_set_text(t->draft, saved, -1);
    g_free(saved);
    g_signal_connect(t->draft, "changed", G_CALLBACK(on_draft_changed), t);
    GtkWidget *dsw = scrolled(t->draft_view);
    gtk_widget_set_vexpand(dsw, FALSE);
    gtk_widget_set_size_request(dsw, -1, 90);
    gtk_box_append(GTK_BOX(left), dsw);
    GtkEventController *sc = gtk_shortcut_controller_new();
    gtk_shortcut_controller_add_shortcut(GTK_SHORTCUT_CONTROLLER(sc),
        gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_Return, GDK_CONTROL_MASK), gtk_callback_action_new(on_send_key, t, NULL)));
    gtk_widget_add_controller(t->draft_view, sc);

    GtkWidget *sendrow = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    t->draft_note = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(t->draft_note), 0);
    gtk_widget_set_hexpand(t->draft_note, TRUE);
    gtk_box_append(GTK_BOX(sendrow), t->draft_note);
    t->send_btn = gtk_button_new_with_mnemonic("Se_nd (Ctrl+Enter)");
    gtk_widget_add_css_class(t->send_btn, "suggested-action");
    g_signal_connect(t->send_btn, "clicked", G_CALLBACK(on_send_clicked), t);
    gtk_box_append(GTK_BOX(sendrow), t->send_btn);
    gtk_box_append(GTK_BOX(left), sendrow);
    gtk_paned_set_start_child(GTK_PANED(paned), left);
    gtk_paned_set_resize_start_child(GTK_PANED(paned), TRUE);

    /* right: details, timeline, outcome, care record */
    t->side_nb = gtk_notebook_new();
    t->details = gtk_label_new("");
    gtk_label_set_xalign(GTK_LABEL(t->details), 0);
    gtk_label_set_yalign(GTK_LABEL(t->details), 0);
    gtk_label_set_wrap(GTK_LABEL(t->details), TRUE);
    gtk_label_set_selectable(GTK_LABEL(t->details), TRUE);
    gtk_widget_set_margin_start(t->details, 8);
    gtk_widget_set_margin_top(t->details, 8);
    gtk_notebook_append_page(GTK_NOTEBOOK(t->side_nb), scrolled(t->details), gtk_label_new("Police details"));
    GtkWidget *tv = gtk_text_view_new();
    gtk_text_view_set_editable(GTK_TEXT_VIEW(tv), FALSE);
    gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(tv), GTK_WRAP_WORD_CHAR);
    t->timeline = gtk_text_view_get_buffer(GTK_TEXT_VIEW(tv));
    gtk_notebook_append_page(GTK_NOTEBOOK(t->side_nb), scrolled(tv), gtk_label_new("Timeline"));
    gtk_notebook_append_page(GTK_NOTEBOOK(t->side_nb), build_outcome(t), gtk_label_new("Outcome"));
    t->care = care_panel_new(d, t);
    gtk_notebook_append_page(GTK_NOTEBOOK(t->side_nb), t->care->root, gtk_label_new("Care record"));
    gtk_widget_set_size_request(t->side_nb, 520, -1);
    gtk_paned_set_end_child(GTK_PANED(paned), t->side_nb);
    gtk_paned_set_resize_end_child(GTK_PANED(paned), FALSE);
    gtk_paned_set_position(GTK_PANED(paned), 760);

    t->tab_label = gtk_label_new("");
    gtk_notebook_append_page(GTK_NOTEBOOK(d->notebook), t->page, t->tab_label);
    gtk_notebook_set_tab_reorderable(GTK_NOTEBOOK(d->notebook), t->page, TRUE);
    static bool hooked = false;
    if (!hooked) {
        g_signal_connect(d->notebook, "switch-page", G_CALLBACK(on_switch_page), d);
        hooked = true;
    }
    tab_update(t, inc, NULL);
    tab_render_conv(t);
    return t;
}

void tab_free(inc_tab_t *t)
{
    care_panel_free(t->care);
    pb_free(t->incident);
    g_ptr_array_free(t->msgs, TRUE);
    g_free(t->draft_path);
    g_free(t);
}
