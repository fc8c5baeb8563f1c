/* ui.c -- the main window: sign-in page, connection bar (with the
 * break-glass care-record window), shift controls, offer notifications, the
 * incident notebook, the outbox, screenshots. */
#include "desk/desk.h"

#include <inttypes.h>
#include <string.h>

#define PS(x) MHTAS__V1__PRACTITIONER_STATE__PRACTITIONER_STATE_##x
#define IS(x) MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_##x

static const char *const pause_reasons[] = { "Break", "Admin / notes", "Training", "Handover", "Personal", NULL };
static const char *const decline_reasons[] = {
    "At capacity with current incidents", "Conflict of interest (I know the person)",
    "Outside my skills (e.g. CAMHS, LD/autism)", "Handing over / end of shift", "Other (say below)", NULL,
};

static const char css[] =
    ".topbar { padding: 6px 10px; background: #1f2d3d; color: #ffffff; }"
    ".topbar > label { color: #ffffff; }"
    ".topbar > label.conn-ok { color: #8ce99a; font-weight: bold; }"
    ".topbar > label.conn-wait { color: #ffd43b; font-weight: bold; }"
    ".topbar > label.conn-bad { color: #ff8787; font-weight: bold; }"
    ".banner { padding: 6px 10px; background: #e7f5ff; color: #1c3d5a; }"
    ".banner.error { background: #ffe3e3; color: #7d1a1a; font-weight: bold; }"
    ".offer { background: #fff3bf; border: 3px solid #e8590c; border-radius: 6px; padding: 10px; margin: 6px; }"
    ".offer.p1 { background: #ffe3e3; border-color: #c92a2a; }"
    ".offer-title { font-size: 18pt; font-weight: bold; }"
    ".countdown { font-size: 18pt; font-weight: bold; color: #c92a2a; }"
    ".accept { font-size: 14pt; font-weight: bold; background: #2b8a3e; color: white; }"
    ".inc-header { padding: 6px 8px; background: #f1f3f5; }"
    ".care-error { padding: 6px 8px; background: #ffe3e3; color: #7d1a1a; font-weight: bold; }"
    ".care-restricted { padding: 6px 8px; background: #862e9c; color: #ffffff; font-weight: bold; }"
    ".care-flag { padding: 0 6px; background: #862e9c; color: #ffffff; font-weight: bold; border-radius: 3px; }"
    ".care-hint { color: #495057; font-size: 9pt; }"
    ".care-fuzzy { color: #d9480f; font-size: 9pt; font-weight: bold; }"
    ".care-same { color: #2b8a3e; font-weight: bold; }"
    ".care-differs { padding: 0 4px; background: #ffe3e3; color: #c92a2a; font-weight: bold; }"
    ".care-confirm-head { font-weight: bold; }"
    ".care-confirm-rec { font-weight: bold; }"
    ".rule-error { color: #c92a2a; font-weight: bold; }"
    ".rule-ok { color: #2b8a3e; }"
    ".conv { font-size: 11pt; }";

/* ------------------------------------------------------------ banner, connection */

void ui_banner(desk_t *d, const char *text, bool error)
{
    if (d->banner == NULL)
        return;
    gtk_label_set_text(GTK_LABEL(d->banner), text ? text : "");
    gtk_widget_set_visible(d->banner, text && *text);
    if (error)
        gtk_widget_add_css_class(d->banner, "error");
    else
        gtk_widget_remove_css_class(d->banner, "error");
}

static int outbox_total(desk_t *d)
{
    return (int)g_list_length(d->outbox);
}

static void tick_ensure(desk_t *d);

void ui_update_conn(desk_t *d)
{
    if (d->conn_lbl == NULL)
        return;
    const char *cls = "conn-bad";
    char *text;
    switch (d->cstate) {
    case MHTAS_CLIENT_READY:
        cls = "conn-ok";
        text = g_strdup_printf("\u25CF Connected to %s:%d", d->host, d->port);
        break;
    case MHTAS_CLIENT_CONNECTING:
        cls = "conn-wait";
        text = g_strdup_printf("\u25CF Connecting to %s:%d\u2026", d->host, d->port);
        break;
    case MHTAS_CLIENT_DISCONNECTED: {
        int64_t left = d->retry_at_ms - now_ms();
        text = g_strdup_printf("\u25CF Disconnected (%s) \u2014 retrying in %.1f s", d->cstate_reason,
                               left > 0 ? (double)left / 1000.0 : 0.0);
        tick_ensure(d);
        break;
    }
    case MHTAS_CLIENT_CLOSED:
        text = g_strdup("\u25CF Signed out");
        break;
    default:
        text = g_strdup("\u25CF Not connected");
        break;
    }
    int n = outbox_total(d);
    if (n > 0) {
        char *t2 = g_strdup_printf("%s \u2014 %d message%s waiting to send", text, n, n == 1 ? "" : "s");
        g_free(text);
        text = t2;
    }
    gtk_label_set_text(GTK_LABEL(d->conn_lbl), text);
    gtk_widget_remove_css_class(d->conn_lbl, "conn-ok");
    gtk_widget_remove_css_class(d->conn_lbl, "conn-wait");
    gtk_widget_remove_css_class(d->conn_lbl, "conn-bad");
    gtk_widget_add_css_class(d->conn_lbl, cls);
    g_free(text);
}

void ui_update_pstate(desk_t *d)
{
    if (d->pstate_lbl == NULL)
        return;
    Mhtas__V1__PractitionerState s = d->pstate;
    char *t;
    if (s == PS(UNSPECIFIED))
        t = g_strdup("Shift: not started");
    else if (s == PS(PAUSED))
        t = g_strdup_printf("Shift: PAUSED (%s)", d->pause_reason && *d->pause_reason ? d->pause_reason : "no reason");
    else
        t = g_strdup_printf("Shift: %s", pb_enum(&mhtas__v1__practitioner_state__descriptor, s, "PRACTITIONER_STATE_"));
    gtk_label_set_text(GTK_LABEL(d->pstate_lbl), t);
    g_free(t);
    bool on = s != PS(UNSPECIFIED) && s != PS(OFF_SHIFT);
    gtk_widget_set_visible(d->start_btn, !on);
    gtk_widget_set_visible(d->end_btn, on);
    gtk_widget_set_visible(d->pause_btn, on && s != PS(PAUSED));
    gtk_widget_set_visible(d->pause_dd, on && s != PS(PAUSED));
    gtk_widget_set_visible(d->resume_btn, s == PS(PAUSED));
}

static void set_status(desk_t *d, const Mhtas__V1__PractitionerStatus *st)
{
    if (st == NULL || (d->user_id && strcmp(st->user_id, d->user_id) != 0))
        return;
    d->pstate = st->state;
    g_free(d->pause_reason);
    d->pause_reason = g_strdup(st->pause_reason);
    ui_update_pstate(d);
}

/* ------------------------------------------------------------ shift */

static void shift_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    desk_t *d = ctx;
    if (d->quitting)
        return;
    if (status != MHTAS_GRPC_OK) {
        char *m = g_strdup_printf("Shift change failed: %s (%s)%s", message, mhtas_client_status_name(status),
                                  status == MHTAS_GRPC_UNAVAILABLE ? " \u2014 check the shift state and try again" : "");
        ui_banner(d, m, true);
        g_free(m);
        return;
    }
    const ProtobufCMessageDescriptor *ds = resp->descriptor;
    const Mhtas__V1__PractitionerStatus *st = NULL;
    if (ds == &mhtas__v1__start_shift_response__descriptor)
        st = ((const Mhtas__V1__StartShiftResponse *)resp)->status;
    else if (ds == &mhtas__v1__end_shift_response__descriptor)
        st = ((const Mhtas__V1__EndShiftResponse *)resp)->status;
    else if (ds == &mhtas__v1__set_availability_response__descriptor)
        st = ((const Mhtas__V1__SetAvailabilityResponse *)resp)->status;
    set_status(d, st);
    ui_banner(d, NULL, false);
    desk_log(d, "shift state=%s", pb_enum(&mhtas__v1__practitioner_state__descriptor, d->pstate, "PRACTITIONER_STATE_"));
    script_poke(d);
}

void ui_start_shift(desk_t *d)
{
    Mhtas__V1__StartShiftRequest req = MHTAS__V1__START_SHIFT_REQUEST__INIT;
    desk_call(d, "StartShift", &req.base, 10000, shift_done, d);
}

void ui_end_shift(desk_t *d)
{
    Mhtas__V1__EndShiftRequest req = MHTAS__V1__END_SHIFT_REQUEST__INIT;
    desk_call(d, "EndShift", &req.base, 10000, shift_done, d);
}

void ui_pause(desk_t *d, const char *reason)
{
    Mhtas__V1__SetAvailabilityRequest req = MHTAS__V1__SET_AVAILABILITY_REQUEST__INIT;
    req.paused = 1;
    req.reason = (char *)reason;
    desk_call(d, "SetAvailability", &req.base, 10000, shift_done, d);
}

void ui_resume(desk_t *d)
{
    Mhtas__V1__SetAvailabilityRequest req = MHTAS__V1__SET_AVAILABILITY_REQUEST__INIT;
    desk_call(d, "SetAvailability", &req.base, 10000, shift_done, d);
}

static void on_start_clicked(GtkButton *b, gpointer data) { (void)b; ui_start_shift(data); }
static void on_end_clicked(GtkButton *b, gpointer data) { (void)b; ui_end_shift(data); }
static void on_resume_clicked(GtkButton *b, gpointer data) { (void)b; ui_resume(data); }
static void on_pause_clicked(GtkButton *b, gpointer data)
{
    (void)b;
    desk_t *d = data;
    guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(d->pause_dd));
    ui_pause(d, i < G_N_ELEMENTS(pause_reasons) - 1 ? pause_reasons[i] : "Break");
}

/* ------------------------------------------------------------ tabs */

inc_tab_t *ui_current_tab(desk_t *d)
{
    int n = gtk_notebook_get_current_page(GTK_NOTEBOOK(d->notebook));
    if (n < 0)
        return NULL;
    GtkWidget *page = gtk_notebook_get_nth_page(GTK_NOTEBOOK(d->notebook), n);
    return page ? g_object_get_data(G_OBJECT(page), "tab") : NULL;
}

static inc_tab_t *find_tab(desk_t *d, uint64_t id)
{
    int64_t key = (int64_t)id;
    return g_hash_table_lookup(d->tabs, &key);
}

static bool is_held_state(int s)
{
    return s == IS(ACCEPTED) || s == IS(ADVISING) || s == IS(OUTCOME_PROPOSED);
}

static void get_incident_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp);

typedef struct id_ctx {
    desk_t *d;
    uint64_t id;
    bool select;
} id_ctx_t;

static void fetch_incident(desk_t *d, uint64_t id, bool select)
{
    id_ctx_t *c = g_new0(id_ctx_t, 1);
    c->d = d;
    c->id = id;
    c->select = select;
    Mhtas__V1__GetIncidentRequest req = MHTAS__V1__GET_INCIDENT_REQUEST__INIT;
    req.incident_id = id;
    if (desk_call(d, "GetIncident", &req.base, 15000, get_incident_done, c) < 0)
        g_free(c);
}

static void select_tab(desk_t *d, inc_tab_t *t)
{
    int n = gtk_notebook_page_num(GTK_NOTEBOOK(d->notebook), t->page);
    if (n >= 0)
        gtk_notebook_set_current_page(GTK_NOTEBOOK(d->notebook), n);
}

/* Opens (or refreshes) the tab of an incident the practitioner holds. */
static inc_tab_t *show_incident(desk_t *d, const Mhtas__V1__Incident *inc, bool select)
{
    inc_tab_t *t = find_tab(d, inc->id);
    if (t == NULL) {
        if (d->empty_page) {
            int n = gtk_notebook_page_num(GTK_NOTEBOOK(d->notebook), d->empty_page);
            if (n >= 0)
                gtk_notebook_remove_page(GTK_NOTEBOOK(d->notebook), n);
            d->empty_page = NULL;
        }
        t = tab_open(d, inc);
        g_hash_table_insert(d->tabs, &t->id, t);
        desk_log(d, "tab-open id=%" PRIu64 " ref=%s", inc->id, inc->details ? inc->details->police_ref : "");
    } else {
        tab_update(t, inc, NULL);
    }
    for (size_t i = 0; i < inc->n_messages; i++)
        tab_add_message(t, inc->messages[i]);
    if (select)
        select_tab(d, t);
    return t;
}

static void get_incident_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    id_ctx_t *c = ctx;
    desk_t *d = c->d;
    if (!d->quitting && status == MHTAS_GRPC_OK) {
        const Mhtas__V1__Incident *inc = ((const Mhtas__V1__GetIncidentResponse *)resp)->incident;
        if (inc) {
            bool mine = d->user_id && strcmp(inc->practitioner, d->user_id) == 0;
            if (find_tab(d, inc->id) || (mine && is_held_state(inc->state)))
                show_incident(d, inc, c->select);
        }
        script_poke(d);
    } else if (!d->quitting && status != MHTAS_GRPC_CANCELLED) {
        char *m = g_strdup_printf("Could not load incident %" PRIu64 ": %s (%s)", c->id, message,
                                  mhtas_client_status_name(status));
        ui_banner(d, m, true);
        g_free(m);
    }
    g_free(c);
}

static void offer_show(desk_t *d, const Mhtas__V1__Incident *inc, int64_t deadline_ms, int64_t at_ms);

static void list_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    desk_t *d = ctx;
    (void)message;
    if (d->quitting || status != MHTAS_GRPC_OK)
        return;
    const Mhtas__V1__ListIncidentsResponse *r = (const void *)resp;
    for (size_t i = 0; i < r->n_incidents; i++) {
        const Mhtas__V1__Incident *inc = r->incidents[i];
        if (d->user_id == NULL || strcmp(inc->practitioner, d->user_id) != 0)
            continue;
        if (is_held_state(inc->state) || find_tab(d, inc->id))
            fetch_incident(d, inc->id, false);
        else if (inc->state == IS(OFFERED) && inc->offer_deadline_ms > now_ms())
            offer_show(d, inc, inc->offer_deadline_ms, 0);
    }
    script_poke(d);
}

void ui_load_mine(desk_t *d)
{
    Mhtas__V1__ListIncidentsRequest req = MHTAS__V1__LIST_INCIDENTS_REQUEST__INIT;
    req.mine_only = 1;
    desk_call(d, "ListIncidents", &req.base, 15000, list_done, d);
}

/* ------------------------------------------------------------ offers */

static offer_card_t *find_offer(desk_t *d, uint64_t id)
{
    for (GList *l = d->offers; l; l = l->next) {
        offer_card_t *o = l->data;
        if (o->id == id)
            return o;
    }
    return NULL;
}

static void offer_remove(desk_t *d, offer_card_t *o)
{
    d->offers = g_list_remove(d->offers, o);
    gtk_box_remove(GTK_BOX(d->offers_box), o->box);
    pb_free(o->incident);
    g_free(o);
    gtk_widget_set_visible(d->offers_box, d->offers != NULL);
    if (d->offers == NULL)
        gtk_window_set_title(d->win, "MHTAS \u2014 Practitioner desk");
}

static void offer_countdown(offer_card_t *o)
{
    int64_t left = o->deadline_ms - now_ms();
    char *t = left > 0 ? g_strdup_printf("Accept within %" PRId64 " s", (left + 999) / 1000)
                       : g_strdup("Offer deadline passed");
    gtk_label_set_text(GTK_LABEL(o->countdown), t);
    g_free(t);
}

static gboolean on_tick(gpointer data)
{
    desk_t *d = data;
    for (GList *l = d->offers; l; l = l->next)
        offer_countdown(l->data);
    if (d->cstate == MHTAS_CLIENT_DISCONNECTED)
        ui_update_conn(d);
    if (d->offers == NULL && d->cstate != MHTAS_CLIENT_DISCONNECTED) {
        d->tick_id = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static void tick_ensure(desk_t *d)
{
    if (d->tick_id == 0)
        d->tick_id = g_timeout_add(250, on_tick, d);
}

/* The offer-to-screen time: logged after the first frame that painted the
 * card (the frame clock's after-paint, once GTK has rendered the window). */
static void on_after_paint(GdkFrameClock *clock, gpointer data)
{
    desk_t *d = data;
    bool pending = false;
    for (GList *l = d->offers; l; l = l->next) {
        offer_card_t *o = l->data;
        if (o->drawn_logged)
            continue;
        if (!gtk_widget_get_mapped(o->box) || gtk_widget_get_width(o->box) <= 0) {
            pending = true;
            continue;
        }
        o->drawn_logged = true;
        int64_t t = now_ms();
        if (o->event_at_ms > 0)
            desk_log(d, "offer-drawn id=%" PRIu64 " offer_to_screen_ms=%" PRId64 " hub_to_client_ms=%" PRId64
                        " client_to_screen_ms=%" PRId64,
                     o->id, t - o->event_at_ms, o->received_ms - o->event_at_ms, t - o->received_ms);
        else
            desk_log(d, "offer-drawn id=%" PRIu64 " (loaded at sign-in)", o->id);
    }
    if (!pending) {
        g_signal_handler_disconnect(clock, d->after_paint_id);
        d->after_paint_id = 0;
    }
    script_poke(d);
}

static void on_accept_clicked(GtkButton *b, gpointer data) { (void)b; ui_offer_accept(data); }
static void on_decline_clicked(GtkButton *b, gpointer data)
{
    (void)b;
    offer_card_t *o = data;
    guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(o->reason_dd));
    const char *extra = gtk_editable_get_text(GTK_EDITABLE(o->reason_entry));
    char *reason;
    if (i == G_N_ELEMENTS(decline_reasons) - 2 || i >= G_N_ELEMENTS(decline_reasons) - 1) {
        if (extra == NULL || *extra == '\0') {
            gtk_label_set_text(GTK_LABEL(o->note), "Say why you decline.");
            gtk_widget_grab_focus(o->reason_entry);
            return;
        }
        reason = g_strdup(extra);
    } else if (extra && *extra) {
        reason = g_strdup_printf("%s: %s", decline_reasons[i], extra);
    } else {
        reason = g_strdup(decline_reasons[i]);
    }
    ui_offer_decline(o, reason);
    g_free(reason);
}

static char *person_line(const Mhtas__V1__Person *p)
{
    if (p == NULL)
        return g_strdup("unknown");
    GString *s = g_string_new(NULL);
    if (*p->given_names || *p->family_name)
        g_string_append_printf(s, "%s %s", p->given_names, p->family_name);
    else
        g_string_append(s, "name unknown");
    if (*p->date_of_birth)
        g_string_append_printf(s, ", born %s", p->date_of_birth);
    else if (p->age_years)
        g_string_append_printf(s, ", about %u", p->age_years);
    return g_string_free(s, FALSE);
}

static char *flags_line(const Mhtas__V1__IncidentDetails *dt)
{
    GString *s = g_string_new(NULL);
    for (size_t i = 0; dt && i < dt->n_flags; i++)
        g_string_append_printf(s, "%s%s", i ? ", " : "", pb_enum(&mhtas__v1__concern_flag__descriptor, dt->flags[i], "CONCERN_FLAG_"));
    if (s->len == 0)
        g_string_append(s, "none");
    return g_string_free(s, FALSE);
}

static void offer_show(desk_t *d, const Mhtas__V1__Incident *inc, int64_t deadline_ms, int64_t at_ms)
{
    offer_card_t *o = find_offer(d, inc->id);
    if (o) {
        o->deadline_ms = deadline_ms;
        offer_countdown(o);
        return;
    }
    o = g_new0(offer_card_t, 1);
    o->desk = d;
    o->id = inc->id;
    o->incident = pb_dup(&inc->base);
    o->deadline_ms = deadline_ms;
    o->event_at_ms = at_ms;
    o->received_ms = now_ms();
    const Mhtas__V1__IncidentDetails *dt = inc->details;

    o->box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
    gtk_widget_add_css_class(o->box, "offer");
    if (dt && dt->priority == MHTAS__V1__PRIORITY__PRIORITY_IMMEDIATE)
        gtk_widget_add_css_class(o->box, "p1");

    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    char *title = g_strdup_printf("NEW OFFER \u2014 %s \u2014 %s \u2014 %s", priority_label(dt ? dt->priority : 0),
                                  dt ? dt->police_ref : "", dt ? dt->borough : "");
    GtkWidget *tl = gtk_label_new(title);
    g_free(title);
    gtk_widget_add_css_class(tl, "offer-title");
    gtk_label_set_xalign(GTK_LABEL(tl), 0);
    gtk_widget_set_hexpand(tl, TRUE);
    gtk_box_append(GTK_BOX(row), tl);
    o->countdown = gtk_label_new("");
    gtk_widget_add_css_class(o->countdown, "countdown");
    gtk_box_append(GTK_BOX(row), o->countdown);
    gtk_box_append(GTK_BOX(o->box), row);

    char *person = person_line(dt ? dt->person : NULL);
    char *flags = flags_line(dt);
    char *body = g_strdup_printf("Place: %s\nPerson: %s\nConcerns: %s\nFlags: %s\nQuestion: %s",
                                 dt ? dt->place : "", person, dt ? dt->concerns : "", flags, dt ? dt->question : "");
    GtkWidget *bl = gtk_label_new(body);
    gtk_label_set_xalign(GTK_LABEL(bl), 0);
    gtk_label_set_wrap(GTK_LABEL(bl), TRUE);
    gtk_label_set_selectable(GTK_LABEL(bl), FALSE);
    gtk_box_append(GTK_BOX(o->box), bl);
    g_free(person);
    g_free(flags);
    g_free(body);

    GtkWidget *act = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    o->accept_btn = gtk_button_new_with_mnemonic("_Accept (F9)");
    gtk_widget_add_css_class(o->accept_btn, "accept");
    gtk_widget_add_css_class(o->accept_btn, "suggested-action");
    g_signal_connect(o->accept_btn, "clicked", G_CALLBACK(on_accept_clicked), o);
    gtk_box_append(GTK_BOX(act), o->accept_btn);
    gtk_box_append(GTK_BOX(act), gtk_label_new("   or decline because"));
    o->reason_dd = gtk_drop_down_new_from_strings(decline_reasons);
    gtk_box_append(GTK_BOX(act), o->reason_dd);
    o->reason_entry = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(o->reason_entry), "more detail (optional)");
    gtk_widget_set_size_request(o->reason_entry, 220, -1);
    gtk_box_append(GTK_BOX(act), o->reason_entry);
    o->decline_btn = gtk_button_new_with_mnemonic("_Decline (F10)");
    gtk_widget_add_css_class(o->decline_btn, "destructive-action");
    g_signal_connect(o->decline_btn, "clicked", G_CALLBACK(on_decline_clicked), o);
    gtk_box_append(GTK_BOX(act), o->decline_btn);
    o->note = gtk_label_new("");
    gtk_box_append(GTK_BOX(act), o->note);
    gtk_box_append(GTK_BOX(o->box), act);

    d->offers = g_list_append(d->offers, o);
    gtk_box_append(GTK_BOX(d->offers_box), o->box);
    gtk_widget_set_visible(d->offers_box, TRUE);
    offer_countdown(o);
    tick_ensure(d);

    /* Unmissable: the window comes to the front, the title changes, the
     * display beeps, and the Accept button has the keyboard focus. */
    gtk_window_set_title(d->win, "\u25CF OFFER \u2014 MHTAS Practitioner desk");
    gtk_window_present(d->win);
    gdk_display_beep(gtk_widget_get_display(GTK_WIDGET(d->win)));
    gtk_widget_grab_focus(o->accept_btn);
    if (d->after_paint_id == 0) {
        GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(d->win));
        if (clock)
            d->after_paint_id = g_signal_connect(clock, "after-paint", G_CALLBACK(on_after_paint), d);
    }
    desk_log(d, "offer id=%" PRIu64 " ref=%s deadline_in_ms=%" PRId64, o->id, dt ? dt->police_ref : "",
             deadline_ms - now_ms());
    if (d->auto_accept)
        ui_offer_accept(o);
}

typedef struct offer_ctx {
    desk_t *d;
    uint64_t id;
} offer_ctx_t;

static void accept_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    offer_ctx_t *c = ctx;
    desk_t *d = c->d;
    uint64_t id = c->id;
    g_free(c);
    if (d->quitting)
        return;
    offer_card_t *o = find_offer(d, id);
    if (o)
        o->busy = false;
    if (status == MHTAS_GRPC_OK) {
        const Mhtas__V1__Incident *inc = ((const Mhtas__V1__AcceptResponse *)resp)->incident;
        if (o)
            offer_remove(d, o);
        if (inc) {
            show_incident(d, inc, true);
            fetch_incident(d, inc->id, false); /* the conversation so far */
        }
        desk_log(d, "accepted id=%" PRIu64, id);
    } else {
        if (status == MHTAS_GRPC_UNAVAILABLE || status == MHTAS_GRPC_DEADLINE_EXCEEDED)
            fetch_incident(d, id, true); /* it may have taken effect */
        char *m = g_strdup_printf("Could not accept: %s (%s)", message, mhtas_client_status_name(status));
        if (o) {
            gtk_label_set_text(GTK_LABEL(o->note), m);
            gtk_widget_set_sensitive(o->accept_btn, TRUE);
            gtk_widget_set_sensitive(o->decline_btn, TRUE);
        } else {
            ui_banner(d, m, true);
        }
        desk_log(d, "accept-failed id=%" PRIu64 " status=%s", id, mhtas_client_status_name(status));
        g_free(m);
    }
    script_poke(d);
}

void ui_offer_accept(offer_card_t *o)
{
    if (o->busy)
        return;
    desk_t *d = o->desk;
    offer_ctx_t *c = g_new0(offer_ctx_t, 1);
    c->d = d;
    c->id = o->id;
    Mhtas__V1__AcceptRequest req = MHTAS__V1__ACCEPT_REQUEST__INIT;
    req.incident_id = o->id;
    if (desk_call(d, "Accept", &req.base, 8000, accept_done, c) < 0) {
        g_free(c);
        return;
    }
    o->busy = true;
    gtk_label_set_text(GTK_LABEL(o->note), "Accepting\u2026");
    gtk_widget_set_sensitive(o->accept_btn, FALSE);
    gtk_widget_set_sensitive(o->decline_btn, FALSE);
}

static void decline_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    (void)resp;
    offer_ctx_t *c = ctx;
    desk_t *d = c->d;
    uint64_t id = c->id;
    g_free(c);
    if (d->quitting)
        return;
    offer_card_t *o = find_offer(d, id);
    if (status == MHTAS_GRPC_OK) {
        if (o)
            offer_remove(d, o);
        desk_log(d, "declined id=%" PRIu64, id);
    } else if (o) {
        o->busy = false;
        char *m = g_strdup_printf("Could not decline: %s (%s)", message, mhtas_client_status_name(status));
        gtk_label_set_text(GTK_LABEL(o->note), m);
        g_free(m);
        gtk_widget_set_sensitive(o->accept_btn, TRUE);
        gtk_widget_set_sensitive(o->decline_btn, TRUE);
    }
    script_poke(d);
}

void ui_offer_decline(offer_card_t *o, const char *reason)
{
    if (o->busy)
        return;
    desk_t *d = o->desk;
    offer_ctx_t *c = g_new0(offer_ctx_t, 1);
    c->d = d;
    c->id = o->id;
    Mhtas__V1__DeclineRequest req = MHTAS__V1__DECLINE_REQUEST__INIT;
    req.incident_id = o->id;
    req.reason = (char *)reason;
    if (desk_call(d, "Decline", &req.base, 8000, decline_done, c) < 0) {
        g_free(c);
        return;
    }
    o->busy = true;
    gtk_label_set_text(GTK_LABEL(o->note), "Declining\u2026");
    gtk_widget_set_sensitive(o->accept_btn, FALSE);
    gtk_widget_set_sensitive(o->decline_btn, FALSE);
}

static gboolean on_key_accept(GtkWidget *w, GVariant *args, gpointer data)
{
    (void)w;
    (void)args;
    desk_t *d = data;
    if (d->offers)
        ui_offer_accept(d->offers->data);
    return TRUE;
}

static gboolean on_key_decline(GtkWidget *w, GVariant *args, gpointer data)
{
    (void)w;
    (void)args;
    desk_t *d = data;
    if (d->offers)
        on_decline_clicked(NULL, d->offers->data);
    return TRUE;
}

/* ------------------------------------------------------------ events */

void ui_on_event(desk_t *d, const Mhtas__V1__Event *ev)
{
    switch (ev->kind_case) {
    case MHTAS__V1__EVENT__KIND_OFFER: {
        const Mhtas__V1__Offer *of = ev->offer;
        if (of && of->incident && (d->user_id == NULL || strcmp(of->incident->practitioner, d->user_id) == 0))
            offer_show(d, of->incident, of->deadline_ms, ev->at_ms);
        break;
    }
    case MHTAS__V1__EVENT__KIND_INCIDENT: {
        const Mhtas__V1__Incident *inc = ev->incident ? ev->incident->incident : NULL;
        if (inc == NULL)
            break;
        bool mine = d->user_id && strcmp(inc->practitioner, d->user_id) == 0;
        if (d->verbose || find_tab(d, inc->id))
            desk_log(d, "update id=%" PRIu64 " state=%s cause=%s", inc->id, state_label(inc->state),
                     ev->incident->transition ? pb_enum(&mhtas__v1__cause__descriptor, ev->incident->transition->cause, "CAUSE_") : "-");
        offer_card_t *o = find_offer(d, inc->id);
        if (o && (inc->state != IS(OFFERED) || !mine)) {
            const Mhtas__V1__Transition *tr = ev->incident->transition;
            if (!(mine && is_held_state(inc->state))) {
                char *m = g_strdup_printf("The offer of %s went away (%s).",
                                          inc->details ? inc->details->police_ref : "?",
                                          tr ? pb_enum(&mhtas__v1__cause__descriptor, tr->cause, "CAUSE_") : state_label(inc->state));
                ui_banner(d, m, false);
                g_free(m);
            }
            offer_remove(d, o);
        }
        inc_tab_t *t = find_tab(d, inc->id);
        if (t)
            tab_update(t, inc, ev->incident->transition);
        else if (mine && is_held_state(inc->state))
            fetch_incident(d, inc->id, false); /* e.g. reassigned to me */
        break;
    }
    case MHTAS__V1__EVENT__KIND_MESSAGE: {
        inc_tab_t *t = ev->message ? find_tab(d, ev->message->incident_id) : NULL;
        if (t)
            tab_add_message(t, ev->message);
        break;
    }
    case MHTAS__V1__EVENT__KIND_STATUS:
        set_status(d, ev->status);
        break;
    case MHTAS__V1__EVENT__KIND_NOTICE: {
        const Mhtas__V1__Notice *n = ev->notice;
        if (n == NULL)
            break;
        if (n->kind == MHTAS__V1__NOTICE_KIND__NOTICE_KIND_RESUME_GAP) {
            /* Events were lost: reload what is on screen. */
            GHashTableIter it;
            gpointer k, v;
            g_hash_table_iter_init(&it, d->tabs);
            while (g_hash_table_iter_next(&it, &k, &v))
                fetch_incident(d, ((inc_tab_t *)v)->id, false);
            ui_load_mine(d);
            ui_banner(d, "Reconnected after a gap: incidents reloaded from the hub.", false);
        } else if (n->kind == MHTAS__V1__NOTICE_KIND__NOTICE_KIND_OFFER_WITHDRAWN) {
            offer_card_t *o = find_offer(d, n->incident_id);
            if (o)
                offer_remove(d, o);
            ui_banner(d, *n->text ? n->text : "An offer was withdrawn.", false);
        } else if (*n->text) {
            ui_banner(d, n->text, n->kind == MHTAS__V1__NOTICE_KIND__NOTICE_KIND_AUTO_PAUSED);
        }
        break;
    }
    default:
        break;
    }
}

/* ------------------------------------------------------------ outbox */

int ui_outbox_count(desk_t *d, uint64_t incident_id)
{
    int n = 0;
    for (GList *l = d->outbox; l; l = l->next)
        n += ((outbox_item_t *)l->data)->incident_id == incident_id;
    return n;
}

static void outbox_send(outbox_item_t *it);

static void outbox_changed(desk_t *d, uint64_t incident_id)
{
    inc_tab_t *t = find_tab(d, incident_id);
    if (t)
        tab_render_conv(t);
    ui_update_conn(d);
}

static void post_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    outbox_item_t *it = ctx;
    desk_t *d = it->desk;
    it->in_flight = false;
    if (it->dead || d->quitting) {
        if (it->dead) {
            g_free(it->text);
            g_free(it->client_msg_id);
            g_free(it);
        }
        return;
    }
    inc_tab_t *t = find_tab(d, it->incident_id);
    if (status == MHTAS_GRPC_OK) {
        const Mhtas__V1__PostMessageResponse *r = (const void *)resp;
        d->outbox = g_list_remove(d->outbox, it);
        if (t && r->message)
            tab_add_message(t, r->message);
        desk_log(d, "sent id=%" PRIu64 " number=%u attempts=%d", it->incident_id, r->message ? r->message->number : 0,
                 it->attempts);
        outbox_changed(d, it->incident_id);
        g_free(it->text);
        g_free(it->client_msg_id);
        g_free(it);
        script_poke(d);
        return;
    }
    bool retry = status == MHTAS_GRPC_UNAVAILABLE || status == MHTAS_GRPC_DEADLINE_EXCEEDED ||
                 status == MHTAS_GRPC_CANCELLED || status == MHTAS_GRPC_ABORTED;
    if (retry) {
        /* Kept, with the same client_msg_id: sent again when connected. */
        if (d->cstate == MHTAS_CLIENT_READY && d->client)
            outbox_send(it);
        outbox_changed(d, it->incident_id);
        return;
    }
    /* Refused for good: give the text back to the draft so it is not lost. */
    d->outbox = g_list_remove(d->outbox, it);
    if (t) {
        GtkTextIter start;
        gtk_text_buffer_get_start_iter(t->draft, &start);
        char *back = g_strdup_printf("%s\n", it->text);
        gtk_text_buffer_insert(t->draft, &start, back, -1);
        g_free(back);
        char *m = g_strdup_printf("Not sent: %s (%s). Your text is back in the draft.", message,
                                  mhtas_client_status_name(status));
        gtk_label_set_text(GTK_LABEL(t->draft_note), m);
        g_free(m);
    }
    desk_log(d, "send-failed id=%" PRIu64 " status=%s", it->incident_id, mhtas_client_status_name(status));
    outbox_changed(d, it->incident_id);
    g_free(it->text);
    g_free(it->client_msg_id);
    g_free(it);
    script_poke(d);
}

static void outbox_send(outbox_item_t *it)
{
    desk_t *d = it->desk;
    Mhtas__V1__PostMessageRequest req = MHTAS__V1__POST_MESSAGE_REQUEST__INIT;
    req.incident_id = it->incident_id;
    req.text = it->text;
    req.client_msg_id = it->client_msg_id;
    it->attempts++;
    if (desk_call(d, "PostMessage", &req.base, 60000, post_done, it) == 0)
        it->in_flight = true;
}

void ui_outbox_post(desk_t *d, uint64_t incident_id, const char *text)
{
    outbox_item_t *it = g_new0(outbox_item_t, 1);
    it->desk = d;
    it->incident_id = incident_id;
    it->text = g_strdup(text);
    char *uuid = g_uuid_string_random();
    it->client_msg_id = g_strdup_printf("desk-%s", uuid);
    g_free(uuid);
    d->outbox = g_list_append(d->outbox, it);
    outbox_send(it);
    outbox_changed(d, incident_id);
}

void ui_outbox_flush(desk_t *d)
{
    for (GList *l = d->outbox; l; l = l->next) {
        outbox_item_t *it = l->data;
        if (!it->in_flight)
            outbox_send(it);
    }
}

/* ------------------------------------------------------------ screenshot */

int ui_save_png(desk_t *d, const char *path)
{
    return ui_save_png_dialog(d, NULL, path);
}

/* The main window; with a dialog, the window dimmed and the dialog drawn
 * over its centre (as a window manager would place it). */
int ui_save_png_dialog(desk_t *d, GtkWidget *dialog, const char *path)
{
    GtkWidget *w = GTK_WIDGET(d->win);
    int width = gtk_widget_get_width(w), height = gtk_widget_get_height(w);
    if (width <= 0 || height <= 0)
        return -1;
    int dw = dialog ? gtk_widget_get_width(dialog) : 0, dh = dialog ? gtk_widget_get_height(dialog) : 0;
    if (dialog && (dw <= 0 || dh <= 0))
        return -1;
    GdkPaintable *p = gtk_widget_paintable_new(w);
    GtkSnapshot *s = gtk_snapshot_new();
    gdk_paintable_snapshot(p, s, width, height);
    if (dialog) {
        gtk_snapshot_append_color(s, &(GdkRGBA){ 0, 0, 0, 0.35f }, &GRAPHENE_RECT_INIT(0, 0, (float)width, (float)height));
        GdkPaintable *dp = gtk_widget_paintable_new(dialog);
        gtk_snapshot_save(s);
        gtk_snapshot_translate(s, &GRAPHENE_POINT_INIT((float)(MAX(0, width - dw) / 2), (float)(MAX(0, height - dh) / 2)));
        gdk_paintable_snapshot(dp, s, dw, dh);
        gtk_snapshot_restore(s);
        g_object_unref(dp);
    }
    GskRenderNode *node = gtk_snapshot_free_to_node(s);
    int rc = -1;
    if (node) {
        GskRenderer *r = gtk_native_get_renderer(GTK_NATIVE(w));
        graphene_rect_t rect;
        graphene_rect_init(&rect, 0, 0, (float)width, (float)height);
        GdkTexture *tex = gsk_renderer_render_texture(r, node, &rect);
        if (tex) {
            char *dir = g_path_get_dirname(path);
            g_mkdir_with_parents(dir, 0755);
            g_free(dir);
            rc = gdk_texture_save_to_png(tex, path) ? 0 : -1;
            g_object_unref(tex);
        }
        gsk_render_node_unref(node);
    }
    g_object_unref(p);
    return rc;
}

/* ------------------------------------------------------------ building */

static void on_signin_clicked(GtkButton *b, gpointer data) { (void)b; desk_sign_in(data); }

static GtkWidget *build_signin(desk_t *d)
{
    GtkWidget *outer = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
    gtk_widget_set_halign(outer, GTK_ALIGN_CENTER);
    gtk_widget_set_valign(outer, GTK_ALIGN_CENTER);
    GtkWidget *title = gtk_label_new(NULL);
    gtk_label_set_markup(GTK_LABEL(title), "<span size='x-large' weight='bold'>Mental Health Tactical Advice \u2014 practitioner sign-in</span>");
    gtk_box_append(GTK_BOX(outer), title);
    GtkWidget *g = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(g), 8);
    gtk_grid_set_column_spacing(GTK_GRID(g), 8);
    d->host_e = gtk_entry_new();
    gtk_editable_set_text(GTK_EDITABLE(d->host_e), d->host ? d->host : "127.0.0.1");
    d->port_e = gtk_entry_new();
    if (d->port > 0) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", d->port);
        gtk_editable_set_text(GTK_EDITABLE(d->port_e), buf);
    }
    d->token_e = gtk_password_entry_new();
    gtk_password_entry_set_show_peek_icon(GTK_PASSWORD_ENTRY(d->token_e), FALSE);
    if (d->token)
        gtk_editable_set_text(GTK_EDITABLE(d->token_e), d->token);
    const char *labels[] = { "Hub address", "gRPC port", "Token" };
    GtkWidget *fields[] = { d->host_e, d->port_e, d->token_e };
    for (int i = 0; i < 3; i++) {
        GtkWidget *l = gtk_label_new(labels[i]);
        gtk_label_set_xalign(GTK_LABEL(l), 1);
        gtk_grid_attach(GTK_GRID(g), l, 0, i, 1, 1);
        gtk_widget_set_size_request(fields[i], 320, -1);
        gtk_grid_attach(GTK_GRID(g), fields[i], 1, i, 1, 1);
    }
    gtk_box_append(GTK_BOX(outer), g);
    d->signin_btn = gtk_button_new_with_mnemonic("_Sign in");
    gtk_widget_add_css_class(d->signin_btn, "suggested-action");
    g_signal_connect(d->signin_btn, "clicked", G_CALLBACK(on_signin_clicked), d);
    g_signal_connect_swapped(d->token_e, "activate", G_CALLBACK(desk_sign_in), d);
    gtk_box_append(GTK_BOX(outer), d->signin_btn);
    d->signin_msg = gtk_label_new("");
    gtk_label_set_wrap(GTK_LABEL(d->signin_msg), TRUE);
    gtk_box_append(GTK_BOX(outer), d->signin_msg);
    return outer;
}

static GtkWidget *build_main(desk_t *d)
{
    GtkWidget *v = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    gtk_widget_add_css_class(bar, "topbar");
    d->conn_lbl = gtk_label_new("");
    gtk_box_append(GTK_BOX(bar), d->conn_lbl);
    d->me_lbl = gtk_label_new("");
    gtk_box_append(GTK_BOX(bar), d->me_lbl);
    d->pstate_lbl = gtk_label_new("");
    gtk_widget_set_hexpand(d->pstate_lbl, TRUE);
    gtk_label_set_xalign(GTK_LABEL(d->pstate_lbl), 0);
    gtk_box_append(GTK_BOX(bar), d->pstate_lbl);
    d->start_btn = gtk_button_new_with_mnemonic("Start _shift");
    g_signal_connect(d->start_btn, "clicked", G_CALLBACK(on_start_clicked), d);
    d->pause_dd = gtk_drop_down_new_from_strings(pause_reasons);
    d->pause_btn = gtk_button_new_with_mnemonic("_Pause");
    g_signal_connect(d->pause_btn, "clicked", G_CALLBACK(on_pause_clicked), d);
    d->resume_btn = gtk_button_new_with_mnemonic("_Back (available)");
    g_signal_connect(d->resume_btn, "clicked", G_CALLBACK(on_resume_clicked), d);
    GtkWidget *glass = gtk_button_new_with_label("Care record (break glass)\u2026");
    gtk_widget_set_tooltip_text(glass, "Look a person up outside an incident you hold: recorded, and your supervisor is told");
    g_signal_connect_swapped(glass, "clicked", G_CALLBACK(care_glass_window), d);
    gtk_box_append(GTK_BOX(bar), glass);
    d->end_btn = gtk_button_new_with_mnemonic("_End shift");
    g_signal_connect(d->end_btn, "clicked", G_CALLBACK(on_end_clicked), d);
    gtk_box_append(GTK_BOX(bar), d->start_btn);
    gtk_box_append(GTK_BOX(bar), d->pause_dd);
    gtk_box_append(GTK_BOX(bar), d->pause_btn);
    gtk_box_append(GTK_BOX(bar), d->resume_btn);
    gtk_box_append(GTK_BOX(bar), d->end_btn);
    gtk_box_append(GTK_BOX(v), bar);

    d->banner = gtk_label_new("");
    gtk_widget_add_css_class(d->banner, "banner");
    gtk_label_set_xalign(GTK_LABEL(d->banner), 0);
    gtk_label_set_wrap(GTK_LABEL(d->banner), TRUE);
    gtk_widget_set_visible(d->banner, FALSE);
    gtk_box_append(GTK_BOX(v), d->banner);

    d->offers_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    gtk_widget_set_visible(d->offers_box, FALSE);
    gtk_box_append(GTK_BOX(v), d->offers_box);

    d->notebook = gtk_notebook_new();
    gtk_notebook_set_scrollable(GTK_NOTEBOOK(d->notebook), TRUE);
    gtk_widget_set_vexpand(d->notebook, TRUE);
    d->empty_page = gtk_label_new("No incidents open. Start your shift; offers appear above, incidents open here in tabs.");
    gtk_notebook_append_page(GTK_NOTEBOOK(d->notebook), d->empty_page, gtk_label_new("Incidents"));
    gtk_box_append(GTK_BOX(v), d->notebook);
    return v;
}

void ui_show_main(desk_t *d)
{
    char *me = g_strdup_printf("%s (%s)", d->user_name ? d->user_name : "", d->user_id ? d->user_id : "");
    gtk_label_set_text(GTK_LABEL(d->me_lbl), me);
    g_free(me);
    ui_update_conn(d);
    ui_update_pstate(d);
    gtk_stack_set_visible_child_name(GTK_STACK(d->stack), "main");
}

static gboolean on_close_request(GtkWindow *w, gpointer data)
{
    (void)w;
    desk_quit(data, 0);
    return FALSE;
}

void ui_build(desk_t *d)
{
    GtkCssProvider *p = gtk_css_provider_new();
    gtk_css_provider_load_from_data(p, css, -1);
    gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(p),
                                               GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
    g_object_unref(p);

    d->win = GTK_WINDOW(gtk_application_window_new(d->app));
    gtk_window_set_title(d->win, "MHTAS \u2014 Practitioner desk");
    gtk_window_set_default_size(d->win, 1340, 740);
    g_signal_connect(d->win, "close-request", G_CALLBACK(on_close_request), d);

    d->stack = gtk_stack_new();
    gtk_stack_add_named(GTK_STACK(d->stack), build_signin(d), "signin");
    gtk_stack_add_named(GTK_STACK(d->stack), build_main(d), "main");
    gtk_stack_set_visible_child_name(GTK_STACK(d->stack), "signin");
    gtk_window_set_child(d->win, d->stack);

    GtkEventController *sc = gtk_shortcut_controller_new();
    gtk_shortcut_controller_set_scope(GTK_SHORTCUT_CONTROLLER(sc), GTK_SHORTCUT_SCOPE_GLOBAL);
    gtk_shortcut_controller_add_shortcut(GTK_SHORTCUT_CONTROLLER(sc),
        gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_F9, 0), gtk_callback_action_new(on_key_accept, d, NULL)));
    gtk_shortcut_controller_add_shortcut(GTK_SHORTCUT_CONTROLLER(sc),
        gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_F10, 0), gtk_callback_action_new(on_key_decline, d, NULL)));
    gtk_widget_add_controller(GTK_WIDGET(d->win), sc);

    gtk_window_present(d->win);
}
