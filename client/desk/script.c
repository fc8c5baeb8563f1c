/* script.c -- --script FILE: drives the client for tests, through the same
 * widgets and handlers a practitioner uses (buttons are "clicked", the
 * draft is typed into its buffer, the outcome form's boxes are ticked).
 *
 * One action per line; blank lines and lines starting with # are skipped.
 *   start-shift | end-shift | pause REASON | resume
 *   wait-offer                      waits until an offer is on screen
 *   accept-first-offer              waits for an offer to be on screen, presses Accept
 *   decline-first-offer REASON      waits for an offer, declines with REASON
 *   say TEXT                        types TEXT into the draft, presses Send,
 *                                   waits until the hub confirmed it
 *   insert-template N               inserts template N (1-based) into the draft
 *   wait-message TEXT               waits for a message from someone else containing TEXT
 *   form CODES [key=value ...] expect=TEXT
 *                                   fills the outcome form (keys: place=1..4,
 *                                   consulted=WHO, at=HH:MM, inspector=NAME,
 *                                   home=1, notpracticable=1; '_' reads as a
 *                                   space) and checks the form's verdict
 *                                   contains TEXT ("Ready" when valid)
 *   propose CODES [SUMMARY]         ticks CODES (comma-separated), presses Propose,
 *                                   waits for OUTCOME_PROPOSED
 *   wait-state STATE                waits for the incident's state (e.g. CLOSED)
 *   screenshot PATH                 saves the window as PNG (after a frame)
 *   use-incident N                  later steps act on the N-th incident accepted (1-based)
 *   sleep MS | quit
 * The care record (the tab's "Care record" page; '_' in values reads as a space):
 *   care-search FAMILY DOB [GIVEN]  fills the search form, presses Search, waits for
 *                                   the answer (or for the break-glass dialog)
 *   care-open-first [restricted|unrestricted]
 *                                   selects the first result (with/without the
 *                                   restricted flag), presses Open, waits for the
 *                                   confirm-identity dialog; checks nothing is ticked
 *   care-confirm ID[,ID]            in that dialog, ticks exactly IDs (name, dob,
 *                                   address, nhs) and presses Open record: with two
 *                                   or more, waits for the answer (or for the
 *                                   break-glass dialog); with fewer, the dialog
 *                                   must stay open (see care-expect-not-read)
 *   care-confirm cancel             presses the dialog's Cancel: back to the results
 *   care-expect-not-read            nothing was read since the confirm dialog opened
 *                                   and its Open record is disabled
 *   care-glass CODE TEXT            fills the open break-glass dialog (CODE e.g.
 *                                   RESTRICTED_RECORD) and confirms; waits for the answer
 *   wait-care                       waits for a summary on screen; fails if the read failed
 *   care-expect-stale PART[,PART]   exactly these parts are flagged stale on screen
 *   care-expect-restricted          the restricted banner shows
 *   care-expect-error STATUS        the last look-up failed with STATUS (e.g.
 *                                   UNAVAILABLE) and the error bar shows it
 *   care-share PART[,PART] TEXT     Share with police: checks nothing is ticked,
 *                                   ticks PARTS, writes TEXT, presses Send; waits
 *                                   until the SHARE message is in the conversation
 *   care-close                      closes the record
 *   screenshot-care PATH            as screenshot, with the care-record page shown
 *   screenshot-care-confirm PATH    as screenshot-care, the confirm-identity dialog
 *                                   drawn over the window (it must be open)
 * The arguments of care-search, care-glass and care-share are not echoed in
 * the step lines (they name a person or say why).
 * Every step prints "MHTAS_DESK step=N ok ..." when done; a step that fails
 * or takes longer than 20 s prints "MHTAS_DESK script-failed ..." and the
 * client exits with status 3. The incident is the one the last
 * accept-first-offer took, else the current tab.
 */
#include "desk/desk.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define STEP_TIMEOUT_MS 20000
#define PS(x) MHTAS__V1__PRACTITIONER_STATE__PRACTITIONER_STATE_##x

typedef struct step {
    char *cmd;
    char *arg;  /* the rest of the line, may be "" */
    int line;
} step_t;

struct script {
    desk_t *d;
    GPtrArray *steps;
    guint idx;
    bool started;
    bool in_poke, again, failed, done;
    guint timer;      /* step time-out */
    guint wait_timer; /* sleep / screenshot delay */
    bool waited;
    uint64_t incident;
    GArray *accepted; /* uint64 ids, in the order accept-first-offer took them */
    unsigned care_mark; /* the care panel's call serial when a care step started */
    char *care_text;    /* care-share: the text shared */
};

static void step_free(gpointer p)
{
    step_t *s = p;
    g_free(s->cmd);
    g_free(s->arg);
    g_free(s);
}

script_t *script_load(desk_t *d, const char *path, char **err)
{
    char *text = NULL;
    GError *ge = NULL;
    if (!g_file_get_contents(path, &text, NULL, &ge)) {
        *err = g_strdup(ge->message);
        g_error_free(ge);
        return NULL;
    }
    script_t *s = g_new0(script_t, 1);
    s->d = d;
    s->steps = g_ptr_array_new_with_free_func(step_free);
    s->accepted = g_array_new(FALSE, TRUE, sizeof(uint64_t));
    char **lines = g_strsplit(text, "\n", -1);
    g_free(text);
    static const char *const known[] = { "start-shift", "end-shift", "pause", "resume", "accept-first-offer",
                                         "decline-first-offer", "say", "insert-template", "wait-message", "form",
                                         "propose", "wait-state", "screenshot", "sleep", "quit", "use-incident", "wait-offer",
                                         "care-search", "care-open-first", "care-glass", "wait-care", "care-expect-stale",
                                         "care-expect-restricted", "care-expect-error", "care-share", "care-close",
                                         "screenshot-care", "care-confirm", "care-expect-not-read",
                                         "screenshot-care-confirm", NULL };
    for (int i = 0; lines[i]; i++) {
        char *l = g_strstrip(lines[i]);
        if (*l == '\0' || *l == '#')
            continue;
        step_t *st = g_new0(step_t, 1);
        char *sp = strchr(l, ' ');
        st->cmd = sp ? g_strndup(l, (gsize)(sp - l)) : g_strdup(l);
        st->arg = g_strdup(sp ? g_strstrip(sp + 1) : "");
        st->line = i + 1;
        g_ptr_array_add(s->steps, st);
        if (!g_strv_contains(known, st->cmd)) {
            *err = g_strdup_printf("line %d: unknown action \"%s\"", i + 1, st->cmd);
            g_strfreev(lines);
            script_free(s);
            return NULL;
        }
    }
    g_strfreev(lines);
    return s;
}

void script_free(script_t *s)
{
    if (s == NULL)
        return;
    if (s->timer)
        g_source_remove(s->timer);
    if (s->wait_timer)
        g_source_remove(s->wait_timer);
    g_ptr_array_free(s->steps, TRUE);
    g_array_free(s->accepted, TRUE);
    g_free(s->care_text);
    g_free(s);
}

static void fail(script_t *s, const char *why)
{
    step_t *st = g_ptr_array_index(s->steps, s->idx);
    desk_log(s->d, "script-failed step=%u line=%d cmd=%s: %s", s->idx + 1, st->line, st->cmd, why);
    s->failed = true;
    desk_quit(s->d, 3);
}

static gboolean on_step_timeout(gpointer data)
{
    script_t *s = data;
    s->timer = 0;
    if (!s->failed && !s->done)
        fail(s, "timed out after 20 s");
    return G_SOURCE_REMOVE;
}

static gboolean on_wait_done(gpointer data)
{
    script_t *s = data;
    s->wait_timer = 0;
    s->waited = true;
    script_poke(s->d);
    return G_SOURCE_REMOVE;
}

static inc_tab_t *tab(script_t *s)
{
    if (s->incident) {
        int64_t key = (int64_t)s->incident;
        inc_tab_t *t = g_hash_table_lookup(s->d->tabs, &key);
        if (t)
            return t;
    }
    return ui_current_tab(s->d);
}

static void click(GtkWidget *b)
{
    g_signal_emit_by_name(b, "clicked");
}

static bool has_message(inc_tab_t *t, const char *text)
{
    for (guint i = 0; i < t->msgs->len; i++) {
        const Mhtas__V1__ChatMessage *m = g_ptr_array_index(t->msgs, i);
        if (t->desk->user_id && strcmp(m->from_user, t->desk->user_id) == 0)
            continue;
        if (strstr(m->text, text))
            return true;
    }
    return false;
}

/* Ticks exactly CODES; returns false on an unknown code. */
static bool tick_codes(inc_tab_t *t, const char *codes)
{
    bool want[DESK_N_CODES] = { false };
    char **v = g_strsplit(codes, ",", -1);
    bool ok = true;
    for (char **c = v; *c; c++) {
        int code = desk_outcome_code_parse(g_strstrip(*c));
        if (code == 0)
            ok = false;
        else
            want[code] = true;
    }
    g_strfreev(v);
    for (int i = 1; i < DESK_N_CODES; i++)
        gtk_check_button_set_active(GTK_CHECK_BUTTON(t->code_btn[i]), want[i]);
    return ok;
}

static void show_outcome_page(inc_tab_t *t)
{
    gtk_notebook_set_current_page(GTK_NOTEBOOK(t->side_nb), 2);
}

/* form CODES key=value ... expect=TEXT. Returns NULL or an error. */
static char *do_form(inc_tab_t *t, const char *arg)
{
    const char *ex = strstr(arg, "expect=");
    if (ex == NULL)
        return g_strdup("form needs expect=TEXT");
    char *head = g_strndup(arg, (gsize)(ex - arg));
    const char *expect = ex + 7;
    char **tok = g_strsplit(g_strstrip(head), " ", -1);
    g_free(head);
    char *err = NULL;
    show_outcome_page(t);
    gtk_drop_down_set_selected(GTK_DROP_DOWN(t->place_dd), 0);
    gtk_editable_set_text(GTK_EDITABLE(t->consulted_who), "");
    gtk_editable_set_text(GTK_EDITABLE(t->inspector), "");
    gtk_check_button_set_active(GTK_CHECK_BUTTON(t->persons_home), FALSE);
    gtk_check_button_set_active(GTK_CHECK_BUTTON(t->not_practicable), FALSE);
    for (int i = 0; tok[i]; i++) {
        if (*tok[i] == '\0')
            continue;
        if (i == 0) {
            if (!tick_codes(t, tok[0]))
                err = g_strdup_printf("unknown outcome code in %s", tok[0]);
            continue;
        }
        char *eq = strchr(tok[i], '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        char *val = g_strdelimit(eq + 1, "_", ' ');
        if (strcmp(tok[i], "place") == 0)
            gtk_drop_down_set_selected(GTK_DROP_DOWN(t->place_dd), (guint)atoi(val));
        else if (strcmp(tok[i], "consulted") == 0)
            gtk_editable_set_text(GTK_EDITABLE(t->consulted_who), val);
        else if (strcmp(tok[i], "at") == 0)
            gtk_editable_set_text(GTK_EDITABLE(t->consulted_at), val);
        else if (strcmp(tok[i], "inspector") == 0)
            gtk_editable_set_text(GTK_EDITABLE(t->inspector), val);
        else if (strcmp(tok[i], "home") == 0)
            gtk_check_button_set_active(GTK_CHECK_BUTTON(t->persons_home), atoi(val) != 0);
        else if (strcmp(tok[i], "notpracticable") == 0)
            gtk_check_button_set_active(GTK_CHECK_BUTTON(t->not_practicable), atoi(val) != 0);
    }
    g_strfreev(tok);
    tab_validate(t);
    const char *verdict = gtk_label_get_text(GTK_LABEL(t->outcome_msg));
    if (err == NULL && strstr(verdict, expect) == NULL)
        err = g_strdup_printf("the form said \"%s\", expected \"%s\"", verdict, expect);
    bool valid = strstr(verdict, "Ready") != NULL;
    if (err == NULL && valid != (bool)gtk_widget_get_sensitive(t->propose_btn))
        err = g_strdup_printf("Propose is %s while the form says \"%s\"",
                              gtk_widget_get_sensitive(t->propose_btn) ? "enabled" : "disabled", verdict);
    if (err == NULL)
        desk_log(t->desk, "form verdict=\"%s\" propose_enabled=%d", verdict, (int)gtk_widget_get_sensitive(t->propose_btn));
    return err;
}

/* ------------------------------------------------------------ care record */

static void show_care(inc_tab_t *t)
{
    desk_t *d = t->desk;
    gtk_notebook_set_current_page(GTK_NOTEBOOK(d->notebook), gtk_notebook_page_num(GTK_NOTEBOOK(d->notebook), t->page));
    gtk_notebook_set_current_page(GTK_NOTEBOOK(t->side_nb), 3);
}

static bool shown(GtkWidget *w)
{
    return w && gtk_widget_get_visible(w);
}

/* The words of a step, '_' read as a space. */
static char **words(const char *arg)
{
    char **v = g_strsplit(arg, " ", -1);
    GPtrArray *out = g_ptr_array_new();
    for (char **w = v; *w; w++)
        if (**w)
            g_ptr_array_add(out, g_strdelimit(g_strdup(*w), "_", ' '));
    g_ptr_array_add(out, NULL);
    g_strfreev(v);
    return (char **)g_ptr_array_free(out, FALSE);
}

/* care-share's text: everything after the first word, as typed. */
static const char *after_first_word(const char *arg)
{
    const char *sp = strchr(arg, ' ');
    return sp ? sp + 1 : "";
}

static bool has_my_share(inc_tab_t *t, const char *text)
{
    for (guint i = 0; i < t->msgs->len; i++) {
        const Mhtas__V1__ChatMessage *m = g_ptr_array_index(t->msgs, i);
        if (m->kind == MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_SHARE && t->desk->user_id &&
            strcmp(m->from_user, t->desk->user_id) == 0 && g_str_has_prefix(m->text, text))
            return true;
    }
    return false;
}

static void fail_with(script_t *s, const char *what, GtkWidget *label)
{
    char *m = g_strdup_printf("%s: \"%s\"", what, label ? gtk_label_get_text(GTK_LABEL(label)) : "");
    fail(s, m);
    g_free(m);
}

/* Starts a care-* step on tab t. Returns false to wait (the panel is busy). */
static bool care_step_start(script_t *s, step_t *st, inc_tab_t *t)
{
    care_panel_t *p = t->care;
    const char *c = st->cmd;
    if (p->busy || p->sharing)
        return false;
    show_care(t);
    s->care_mark = p->serial;
    if (strcmp(c, "care-search") == 0) {
        char **w = words(st->arg);
        if (g_strv_length(w) < 2) {
            fail(s, "care-search needs FAMILY DOB [GIVEN]");
        } else {
            gtk_stack_set_visible_child_name(GTK_STACK(p->stack), "search");
            gtk_editable_set_text(GTK_EDITABLE(p->family_e), w[0]);
            gtk_editable_set_text(GTK_EDITABLE(p->dob_e), w[1]);
            gtk_editable_set_text(GTK_EDITABLE(p->given_e), w[2] ? w[2] : "");
            gtk_editable_set_text(GTK_EDITABLE(p->postcode_e), "");
            click(p->search_btn);
            if (p->serial == s->care_mark && !shown(p->glass_win))
                fail_with(s, "Search did not start", p->results_note);
        }
        g_strfreev(w);
    } else if (strcmp(c, "care-open-first") == 0) {
        int want = *st->arg == '\0' ? -1 : strcmp(st->arg, "restricted") == 0 ? 1 : 0;
        int row = -1;
        for (size_t i = 0; p->found && i < p->found->n_matches && row < 0; i++)
            if (want < 0 || (int)p->found->matches[i]->restricted == want)
                row = (int)i;
        if (row < 0) {
            fail_with(s, "no such search result", shown(p->err_box) ? p->err_lbl : p->results_note);
            return true;
        }
        gtk_stack_set_visible_child_name(GTK_STACK(p->stack), "search");
        gtk_list_box_select_row(GTK_LIST_BOX(p->results), gtk_list_box_get_row_at_index(GTK_LIST_BOX(p->results), row));
        click(p->open_btn);
        if (p->serial == s->care_mark && !shown(p->glass_win) && !shown(p->confirm_win))
            fail_with(s, "Open did nothing", p->err_lbl);
    } else if (strcmp(c, "care-confirm") == 0) {
        if (!shown(p->confirm_win) || p->confirm_match == NULL) {
            fail(s, "the confirm-identity dialog is not open (care-confirm follows care-open-first)");
            return true;
        }
        if (strcmp(st->arg, "cancel") == 0) {
            click(p->confirm_cancel);
            return true;
        }
        bool want[CARE_NIDS] = { false };
        char **v = g_strsplit(st->arg, ",", -1);
        for (char **x = v; *x && !s->failed; x++) {
            int id = care_id_parse(g_strstrip(*x));
            if (id < 0)
                fail(s, "unknown identifier (name, dob, address, nhs)");
            else
                want[id] = true;
        }
        g_strfreev(v);
        if (s->failed)
            return true;
        for (int i = 0; i < CARE_NIDS; i++)
            gtk_check_button_set_active(GTK_CHECK_BUTTON(p->confirm_check[i]), want[i]);
        int n = care_confirm_count(p);
        click(p->confirm_ok); /* disabled with fewer than two: the handler refuses as well */
        if (n >= 2 && p->serial == s->care_mark && !shown(p->glass_win))
            fail_with(s, "Open record did nothing", shown(p->confirm_win) ? p->confirm_note : p->err_lbl);
    } else if (strcmp(c, "care-glass") == 0) {
        char **w = words(st->arg);
        int code = w[0] ? care_glass_reason_parse(w[0]) : 0;
        if (!shown(p->glass_win)) {
            fail(s, "the break-glass dialog is not open");
        } else if (code == 0) {
            fail(s, "unknown break-glass reason");
        } else {
            gtk_drop_down_set_selected(GTK_DROP_DOWN(p->glass_dd), (guint)code);
            gtk_editable_set_text(GTK_EDITABLE(p->glass_e), after_first_word(st->arg));
            click(p->glass_ok);
            if (shown(p->glass_win))
                fail_with(s, "the break-glass dialog refused", p->glass_note);
        }
        g_strfreev(w);
    } else if (strcmp(c, "care-share") == 0) {
        if (p->rec == NULL || p->share_btn == NULL || !gtk_widget_get_sensitive(p->share_btn)) {
            fail_with(s, "no record to share (or the incident is not held)", p->record_note);
            return true;
        }
        gtk_stack_set_visible_child_name(GTK_STACK(p->stack), "record");
        click(p->share_btn);
        if (!shown(p->share_win)) {
            fail_with(s, "the share dialog did not open", p->err_lbl);
            return true;
        }
        for (int i = 1; i < CARE_NPARTS; i++)
            if (gtk_check_button_get_active(GTK_CHECK_BUTTON(p->share_part[i]))) {
                fail(s, "a part was ticked by default (minimum necessary: none)");
                return true;
            }
        char *parts = g_strndup(st->arg, (gsize)(after_first_word(st->arg) - st->arg));
        char **v = g_strsplit(g_strstrip(parts), ",", -1);
        for (char **x = v; *x; x++) {
            int part = care_part_parse(g_strstrip(*x));
            if (part <= 0 || part >= CARE_NPARTS) {
                fail(s, "unknown care part");
                break;
            }
            gtk_check_button_set_active(GTK_CHECK_BUTTON(p->share_part[part]), TRUE);
        }
        g_strfreev(v);
        g_free(parts);
        if (s->failed)
            return true;
        g_free(s->care_text);
        s->care_text = g_strdup(after_first_word(st->arg));
        gtk_text_buffer_set_text(p->share_text, s->care_text, -1);
        click(p->share_send);
        if (!p->sharing)
            fail_with(s, "Send refused", p->share_note);
    } else if (strcmp(c, "care-close") == 0) {
        care_close_record(p, NULL);
    }
    return true;
}

static char *part_names(const bool *set)
{
    GString *g = g_string_new(NULL);
    for (int i = 1; i < CARE_NPARTS; i++)
        if (set[i])
            g_string_append_printf(g, "%s%s", g->len ? "," : "", pb_enum(&mhtas__v1__care_part__descriptor, i, "CARE_PART_"));
    return g_string_free(g, FALSE);
}

/* Whether a started care-* step is complete. */
static bool care_step_done(script_t *s, step_t *st, inc_tab_t *t)
{
    care_panel_t *p = t->care;
    const char *c = st->cmd;
    bool answered = p->serial != s->care_mark && !p->busy;
    if (strcmp(c, "care-search") == 0)
        return answered || shown(p->glass_win);
    if (strcmp(c, "care-open-first") == 0) {
        if (shown(p->confirm_win)) {
            if (care_confirm_count(p) != 0) {
                fail(s, "an identifier was ticked before the practitioner confirmed it");
                return false;
            }
            return true;
        }
        return answered || shown(p->glass_win);
    }
    if (strcmp(c, "care-confirm") == 0) {
        if (strcmp(st->arg, "cancel") == 0)
            return !shown(p->confirm_win) && p->confirm_match == NULL &&
                   g_strcmp0(gtk_stack_get_visible_child_name(GTK_STACK(p->stack)), "search") == 0;
        if (shown(p->confirm_win))
            return care_confirm_count(p) < 2; /* refused: the dialog stays */
        return answered || shown(p->glass_win);
    }
    if (strcmp(c, "care-expect-not-read") == 0) {
        if (p->busy || p->serial != p->confirm_serial || shown(p->glass_win) ||
            (shown(p->confirm_win) && gtk_widget_get_sensitive(p->confirm_ok))) {
            char *m = g_strdup_printf("a read %s (busy=%d, calls since the dialog opened: %u, Open record %s)",
                                      p->busy ? "is in flight" : "was started or offered", (int)p->busy,
                                      p->serial - p->confirm_serial,
                                      p->confirm_ok && gtk_widget_get_sensitive(p->confirm_ok) ? "enabled" : "disabled");
            fail(s, m);
            g_free(m);
            return false;
        }
        desk_log(s->d, "care-not-read id=%" PRIu64 " confirmed=%d dialog=%d open_enabled=0", t->id,
                 care_confirm_count(p), (int)shown(p->confirm_win));
        return true;
    }
    if (strcmp(c, "care-glass") == 0)
        return answered;
    if (strcmp(c, "care-close") == 0)
        return p->rec == NULL;
    if (strcmp(c, "wait-care") == 0) {
        if (p->busy)
            return false;
        if (p->last_status != MHTAS_GRPC_OK && p->last_status >= 0) {
            fail_with(s, "the record was not read", p->err_lbl);
            return false;
        }
        return p->rec != NULL;
    }
    if (strcmp(c, "care-expect-stale") == 0 || strcmp(c, "care-expect-restricted") == 0) {
        if (p->rec == NULL) {
            fail(s, "no record on screen");
            return false;
        }
        if (c[12] == 'r') {
            if (!shown(p->restricted_lbl)) {
                fail(s, "the restricted banner is not shown");
                return false;
            }
            desk_log(s->d, "care-restricted-shown id=%" PRIu64, t->id);
            return true;
        }
        bool want[CARE_NPARTS] = { false };
        char **v = g_strsplit(st->arg, ",", -1);
        for (char **x = v; *x; x++)
            if (**x)
                want[care_part_parse(g_strstrip(*x))] = true;
        g_strfreev(v);
        char *got = part_names(p->stale_shown), *exp = part_names(want);
        GtkTextIter a, b;
        gtk_text_buffer_get_bounds(p->record, &a, &b);
        char *text = gtk_text_buffer_get_text(p->record, &a, &b, FALSE);
        int flags = 0;
        for (const char *x = text; (x = strstr(x, "stale: as at")) != NULL; x++)
            flags++;
        g_free(text);
        int nwant = 0;
        for (int i = 1; i < CARE_NPARTS; i++)
            nwant += want[i];
        bool ok = strcmp(got, exp) == 0 && flags == nwant;
        if (!ok) {
            char *m = g_strdup_printf("stale flags on screen: %s (%d), expected %s", got, flags, exp);
            fail(s, m);
            g_free(m);
        } else {
            desk_log(s->d, "care-stale-flagged id=%" PRIu64 " parts=%s", t->id, got);
        }
        g_free(got);
        g_free(exp);
        return ok;
    }
    if (strcmp(c, "care-expect-error") == 0) {
        if (p->busy)
            return false;
        const char *name = p->last_status >= 0 ? mhtas_client_status_name(p->last_status) : "none";
        if (strcmp(name, st->arg) != 0 || !shown(p->err_box) || strstr(gtk_label_get_text(GTK_LABEL(p->err_lbl)), st->arg) == NULL) {
            char *m = g_strdup_printf("last care status %s, error bar %s", name, shown(p->err_box) ? "shown" : "hidden");
            fail_with(s, m, p->err_lbl);
            g_free(m);
            return false;
        }
        desk_log(s->d, "care-error-shown id=%" PRIu64 " status=%s retry=%d", t->id, name, (int)shown(p->err_btn));
        return true;
    }
    if (strcmp(c, "care-share") == 0) {
        if (p->sharing)
            return false;
        if (p->last_status != MHTAS_GRPC_OK) {
            fail_with(s, "the share failed", p->share_note);
            return false;
        }
        return s->care_text && has_my_share(t, s->care_text);
    }
    return false;
}

/* Starts the current step. Returns false when it must wait for a condition first. */
static bool step_start(script_t *s, step_t *st)
{
    desk_t *d = s->d;
    const char *c = st->cmd;
    bool ready = d->signed_in && d->cstate == MHTAS_CLIENT_READY;
    if (strcmp(c, "sleep") == 0) {
        s->waited = false;
        s->wait_timer = g_timeout_add((guint)atoi(st->arg), on_wait_done, s);
        return true;
    }
    if (strcmp(c, "quit") == 0)
        return true;
    if (strcmp(c, "use-incident") == 0) {
        int n = atoi(st->arg);
        if (n < 1 || (guint)n > s->accepted->len) {
            fail(s, "no such accepted incident");
            return true;
        }
        s->incident = g_array_index(s->accepted, uint64_t, n - 1);
        int64_t key = (int64_t)s->incident;
        inc_tab_t *t = g_hash_table_lookup(d->tabs, &key);
        if (t)
            gtk_notebook_set_current_page(GTK_NOTEBOOK(d->notebook), gtk_notebook_page_num(GTK_NOTEBOOK(d->notebook), t->page));
        return true;
    }
    if (!ready)
        return false;
    if (strcmp(c, "start-shift") == 0) {
        click(d->start_btn);
    } else if (strcmp(c, "end-shift") == 0) {
        click(d->end_btn);
    } else if (strcmp(c, "pause") == 0) {
        ui_pause(d, *st->arg ? st->arg : "Break");
    } else if (strcmp(c, "resume") == 0) {
        click(d->resume_btn);
    } else if (strcmp(c, "accept-first-offer") == 0 || strcmp(c, "decline-first-offer") == 0) {
        if (d->offers == NULL)
            return false;
        offer_card_t *o = d->offers->data;
        if (!o->drawn_logged)
            return false; /* on screen first: that is what a practitioner sees */
        s->incident = o->id;
        if (c[0] == 'a') {
            click(o->accept_btn);
        } else {
            gtk_drop_down_set_selected(GTK_DROP_DOWN(o->reason_dd), 4); /* Other (say below) */
            gtk_editable_set_text(GTK_EDITABLE(o->reason_entry), *st->arg ? st->arg : "declined by script");
            click(o->decline_btn);
        }
    } else if (strcmp(c, "wait-offer") == 0) {
        /* nothing to do: step_done waits */
    } else if (strcmp(c, "screenshot") == 0 && tab(s) == NULL) {
        s->waited = false;
        s->wait_timer = g_timeout_add(600, on_wait_done, s);
    } else {
        inc_tab_t *t = tab(s);
        if (t == NULL)
            return false;
        if (strcmp(c, "say") == 0) {
            gtk_text_buffer_set_text(t->draft, st->arg, -1);
            click(t->send_btn);
        } else if (strcmp(c, "insert-template") == 0) {
            gtk_drop_down_set_selected(GTK_DROP_DOWN(t->tpl_dd), (guint)(atoi(st->arg) - 1));
            click(t->tpl_insert_btn);
        } else if (strcmp(c, "form") == 0) {
            char *err = do_form(t, st->arg);
            if (err) {
                fail(s, err);
                g_free(err);
            }
        } else if (strcmp(c, "propose") == 0) {
            char *sp = strchr(st->arg, ' ');
            char *codes = sp ? g_strndup(st->arg, (gsize)(sp - st->arg)) : g_strdup(st->arg);
            show_outcome_page(t);
            bool ok = tick_codes(t, codes);
            g_free(codes);
            gtk_editable_set_text(GTK_EDITABLE(t->summary), sp ? sp + 1 : "");
            tab_validate(t);
            if (!ok) {
                fail(s, "unknown outcome code");
            } else if (!gtk_widget_get_sensitive(t->propose_btn)) {
                char *m = g_strdup_printf("Propose is disabled: %s", gtk_label_get_text(GTK_LABEL(t->outcome_msg)));
                fail(s, m);
                g_free(m);
            } else {
                click(t->propose_btn);
            }
        } else if (g_str_has_prefix(c, "care-") || strcmp(c, "wait-care") == 0) {
            return care_step_start(s, st, t);
        } else if (strcmp(c, "screenshot-care-confirm") == 0 && !shown(t->care->confirm_win)) {
            fail(s, "the confirm-identity dialog is not open");
        } else if (g_str_has_prefix(c, "screenshot")) {
            int n = gtk_notebook_page_num(GTK_NOTEBOOK(d->notebook), t->page);
            gtk_notebook_set_current_page(GTK_NOTEBOOK(d->notebook), n);
            gtk_notebook_set_current_page(GTK_NOTEBOOK(t->side_nb), c[10] == '-' ? 3 : 0);
            gtk_widget_queue_draw(GTK_WIDGET(d->win));
            s->waited = false;
            s->wait_timer = g_timeout_add(600, on_wait_done, s); /* let GTK lay out and paint */
        }
    }
    return true;
}

/* Whether the started step is complete. */
static bool step_done(script_t *s, step_t *st)
{
    desk_t *d = s->d;
    const char *c = st->cmd;
    if (strcmp(c, "sleep") == 0)
        return s->waited;
    if (strcmp(c, "quit") == 0) {
        s->done = true;
        desk_log(d, "script-done");
        desk_quit(d, 0);
        return true;
    }
    if (strcmp(c, "start-shift") == 0 || strcmp(c, "resume") == 0)
        return d->pstate == PS(AVAILABLE) || d->pstate == PS(BUSY);
    if (strcmp(c, "end-shift") == 0)
        return d->pstate == PS(OFF_SHIFT);
    if (strcmp(c, "pause") == 0)
        return d->pstate == PS(PAUSED);
    if (strcmp(c, "use-incident") == 0)
        return true;
    if (strcmp(c, "accept-first-offer") == 0) {
        int64_t key = (int64_t)s->incident;
        if (g_hash_table_lookup(d->tabs, &key) == NULL)
            return false;
        g_array_append_val(s->accepted, s->incident);
        return true;
    }
    if (strcmp(c, "decline-first-offer") == 0) {
        for (GList *l = d->offers; l; l = l->next)
            if (((offer_card_t *)l->data)->id == s->incident)
                return false;
        return true;
    }
    if (strcmp(c, "wait-offer") == 0)
        return d->offers && ((offer_card_t *)d->offers->data)->drawn_logged;
    if (g_str_has_prefix(c, "screenshot")) {
        if (!s->waited)
            return false;
        inc_tab_t *t = strcmp(c, "screenshot-care-confirm") == 0 ? tab(s) : NULL;
        if (ui_save_png_dialog(d, t ? t->care->confirm_win : NULL, st->arg) != 0) {
            fail(s, "could not save the screenshot");
            return false;
        }
        desk_log(d, "screenshot path=%s", st->arg);
        return true;
    }
    inc_tab_t *t = tab(s);
    if (t == NULL)
        return false;
    if (strcmp(c, "say") == 0)
        return ui_outbox_count(d, t->id) == 0;
    if (strcmp(c, "insert-template") == 0 || strcmp(c, "form") == 0)
        return true;
    if (strcmp(c, "wait-message") == 0)
        return has_message(t, st->arg);
    if (strcmp(c, "propose") == 0)
        return !t->proposing && t->incident &&
               (t->incident->state == MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_OUTCOME_PROPOSED ||
                t->incident->state == MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_CLOSED);
    if (strcmp(c, "wait-state") == 0)
        return g_ascii_strcasecmp(tab_state_name(t), st->arg) == 0;
    if (g_str_has_prefix(c, "care-") || strcmp(c, "wait-care") == 0)
        return care_step_done(s, st, t);
    return false;
}

void script_poke(desk_t *d)
{
    script_t *s = d->script;
    if (s == NULL || s->failed || s->done)
        return;
    if (s->in_poke) {
        s->again = true;
        return;
    }
    s->in_poke = true;
    do {
        s->again = false;
        while (!s->failed && !s->done && s->idx < s->steps->len) {
            step_t *st = g_ptr_array_index(s->steps, s->idx);
            if (!s->started) {
                if (s->timer == 0)
                    s->timer = g_timeout_add(STEP_TIMEOUT_MS, on_step_timeout, s);
                if (!step_start(s, st))
                    break;
                s->started = true;
                if (s->failed)
                    break;
            }
            if (!step_done(s, st))
                break;
            if (s->failed)
                break;
            bool private_args = strcmp(st->cmd, "care-search") == 0 || strcmp(st->cmd, "care-glass") == 0 ||
                                strcmp(st->cmd, "care-share") == 0;
            desk_log(d, "step=%u ok cmd=%s%s%s", s->idx + 1, st->cmd, *st->arg ? " " : "",
                     private_args ? "(arguments not logged)" : st->arg);
            if (s->timer) {
                g_source_remove(s->timer);
                s->timer = 0;
            }
            s->started = false;
            s->idx++;
        }
        if (!s->failed && !s->done && s->idx >= s->steps->len) {
            s->done = true;
            desk_log(d, "script-done");
        }
    } while (s->again && !s->failed && !s->done);
    s->in_poke = false;
}
