/* desk.h -- bin/mhtas-desk, the practitioners' desktop client (GTK 4).
 *
 * One thread. GTK's GLib main loop runs the program; the mhtas client
 * library runs on a libuv loop that a GSource (uvsource.c) drives from
 * inside GLib's loop: it waits on uv_backend_fd() with uv_backend_timeout()
 * and runs uv_run(UV_RUN_NOWAIT) only when libuv has something to do, so
 * there is no busy polling and no blocking of the interface.
 *
 *   main.c          arguments, the application, sign-in, the library's callbacks
 *   uvsource.c      the GSource around the libuv loop
 *   ui.c            the main window: connection bar, shift, offers, incident tabs
 *   incident.c      one incident's tab: conversation, drafts, details, timeline,
 *                   outcome form
 *   care.c          the care-record panel of a tab (search, confirm identity,
 *                   break-glass, share with police) and the break-glass window
 *                   outside a held incident; care data stays in memory, never
 *                   in logs or files
 *   care_render.c   the summary's text, part by part (source, as-at, stale)
 *   templates.c     advice templates (~/.config/mhtas/templates.txt)
 *   script.c        --script FILE: test automation through the same widgets
 *   outcome_rules.c the outcome form's rules (no GTK; unit-tested; the
 *                   under-18 rule is the core's own)
 *   pbutil.c        protobuf helpers (copies, enum names, times)
 */
#ifndef DESK_H
#define DESK_H

#include <stdbool.h>
#include <stdint.h>

#include <gtk/gtk.h>
#include <uv.h>

#include "desk/outcome_rules.h"
#include "lib/mhtas_client.h"

typedef struct desk desk_t;
typedef struct inc_tab inc_tab_t;
typedef struct offer_card offer_card_t;
typedef struct care_panel care_panel_t;

/* A message the practitioner sent that the hub has not confirmed yet. It
 * stays here (shown as "sending") across disconnects and is resent with the
 * same client_msg_id until the hub answers, so nothing typed is lost. */
typedef struct outbox_item {
    desk_t *desk;
    uint64_t incident_id;
    char *text;
    char *client_msg_id;
    bool in_flight;
    bool dead;        /* removed while a call was in flight: free on completion */
    int attempts;
} outbox_item_t;

struct offer_card {
    desk_t *desk;
    uint64_t id;
    Mhtas__V1__Incident *incident; /* owned copy */
    int64_t deadline_ms;
    int64_t event_at_ms;          /* the hub's time of the offer event */
    int64_t received_ms;          /* when the library delivered it */
    bool drawn_logged;
    bool busy;                    /* Accept/Decline in flight */
    GtkWidget *box;
    GtkWidget *countdown;
    GtkWidget *accept_btn;
    GtkWidget *decline_btn;
    GtkWidget *reason_dd;
    GtkWidget *reason_entry;
    GtkWidget *note;
};

struct inc_tab {
    desk_t *desk;
    uint64_t id;
    Mhtas__V1__Incident *incident;     /* owned copy, messages stripped */
    GPtrArray *msgs;                   /* Mhtas__V1__ChatMessage * (owned), by number */
    bool unread;
    bool closed;

    GtkWidget *page;
    GtkWidget *tab_label;
    GtkWidget *header;
    GtkWidget *conv_view;
    GtkTextBuffer *conv;
    GtkWidget *conv_scroll;
    GtkTextBuffer *draft;
    GtkWidget *draft_view;
    GtkWidget *send_btn;
    GtkWidget *draft_note;
    GtkWidget *tpl_dd;
    GtkWidget *tpl_insert_btn;
    GtkWidget *details;
    GtkTextBuffer *timeline;
    GtkWidget *side_nb;

    /* outcome form */
    GtkWidget *code_btn[DESK_N_CODES];
    GtkWidget *s136_box;
    GtkWidget *place_dd;
    GtkWidget *consulted_who;
    GtkWidget *consulted_at;
    GtkWidget *not_practicable;
    GtkWidget *inspector;
    GtkWidget *persons_home;
    GtkWidget *summary;
    GtkWidget *outcome_msg;
    GtkWidget *propose_btn;
    GtkWidget *outcome_state;
    bool proposing;
    char *draft_path;

    care_panel_t *care;                /* the "Care record" page */
};

#define CARE_NPARTS 8 /* CarePart values 1..7; 0 unused */

/* The identifiers the practitioner confirms before a record opens. */
enum { CARE_ID_NAME, CARE_ID_DOB, CARE_ID_ADDRESS, CARE_ID_NHS, CARE_NIDS };

/* The care-record panel: in each incident tab (tab != NULL) and in the
 * break-glass window for look-ups outside a held incident (tab == NULL).
 * Everything it holds about a person is in memory only: no desk_log line
 * carries a name, date of birth or NHS number, nothing is written to disk,
 * and the record is dropped when closed or when the incident is no longer
 * held. */
struct care_panel {
    desk_t *desk;
    inc_tab_t *tab;
    uint64_t key;                      /* tab id, or 0 for the break-glass window */
    GtkWidget *root;
    GtkWidget *err_box, *err_lbl, *err_btn;
    GtkWidget *stack;                  /* "search" | "record" */

    /* search page */
    GtkWidget *family_e, *given_e, *dob_e, *postcode_e;
    GtkWidget *incident_e;             /* break-glass window only */
    GtkWidget *basis_dd, *reason_e;
    GtkWidget *search_btn, *glass_btn, *open_btn;
    GtkWidget *results;                /* GtkListBox, one row per match */
    GtkWidget *results_note;

    /* record page */
    GtkWidget *restricted_lbl;
    GtkWidget *record_view;
    GtkTextBuffer *record;
    GtkWidget *share_btn, *record_note;

    /* the break-glass dialog */
    GtkWidget *glass_win, *glass_dd, *glass_e, *glass_note, *glass_ok;
    bool glass_for_read;               /* else for a search */
    char *glass_nhs;                   /* the record the dialog is for */

    /* the confirm-identity dialog: at least two identifiers of the person at
     * scene confirmed before a record is read (or the glass broken for it) */
    GtkWidget *confirm_win, *confirm_title, *confirm_note, *confirm_ok, *confirm_cancel;
    GtkWidget *confirm_check[CARE_NIDS], *confirm_rec[CARE_NIDS], *confirm_police[CARE_NIDS], *confirm_hint[CARE_NIDS];
    int confirm_cmp[CARE_NIDS];        /* how the police's value compares (care.c's ID_*) */
    Mhtas__V1__PersonMatch *confirm_match; /* the result being confirmed (owned copy), NULL: none */
    bool confirm_glass;                /* break the glass after confirming (asked for, or needed) */
    unsigned confirm_serial;           /* `serial` when the dialog opened: nothing read since */

    /* the share dialog */
    GtkWidget *share_win, *share_part[CARE_NPARTS], *share_view, *share_basis_dd, *share_reason_e;
    GtkWidget *share_send, *share_note;
    GtkTextBuffer *share_text;

    bool prefilled;                    /* the form took the police's details once */

    /* data (owned copies) */
    Mhtas__V1__SearchPersonsResponse *found;
    Mhtas__V1__GetCareSummaryResponse *rec;
    int rec_glass;                     /* BreakGlassReason the record was read under, 0: none */
    bool stale_shown[CARE_NPARTS];     /* parts drawn with a "stale" flag */

    /* calls */
    unsigned serial;                   /* of the latest search/read: older answers are dropped */
    bool busy, sharing;
    int last_status;                   /* of the last search/read/share; -1: none yet */
    const char *last_method;
    ProtobufCMessage *last_req;        /* the last search/read, for "Try again" */
    uint64_t last_disclosure;
    int shares;                        /* shares confirmed by the hub */
};

typedef struct script script_t;

struct desk {
    GtkApplication *app;
    GtkWindow *win;
    uv_loop_t loop;
    GSource *uv_source;
    mhtas_client_t *client;
    bool quitting;
    int exit_code;

    /* options */
    char *host;
    int port;
    char *token;          /* only until sign-in; wiped afterwards */
    char *script_path;
    bool auto_accept;
    bool verbose;

    /* who */
    char *user_id;
    char *user_name;
    bool signed_in;
    mhtas_client_state_t cstate;
    char cstate_reason[128];
    uint64_t retry_in_ms;
    int64_t retry_at_ms;
    Mhtas__V1__PractitionerState pstate;
    char *pause_reason;

    /* sign-in page */
    GtkWidget *stack;
    GtkWidget *host_e, *port_e, *token_e, *signin_btn, *signin_msg;

    /* main page */
    GtkWidget *conn_lbl;
    GtkWidget *me_lbl;
    GtkWidget *pstate_lbl;
    GtkWidget *start_btn, *end_btn, *pause_btn, *resume_btn, *pause_dd;
    GtkWidget *offers_box;
    GtkWidget *notebook;
    GtkWidget *empty_page;
    GtkWidget *banner;

    GList *offers;        /* offer_card_t * */
    GHashTable *tabs;     /* uint64 id (pointer to key in tab) -> inc_tab_t * */
    GList *outbox;        /* outbox_item_t * */
    guint tick_id;        /* 250 ms countdown timer, only while offers or a retry show */
    gulong after_paint_id;

    /* templates */
    GPtrArray *tpl_titles;
    GPtrArray *tpl_texts;
    char *tpl_path;
    char *config_dir;

    script_t *script;

    care_panel_t *care_glass;  /* the break-glass window's panel, once opened */
    GtkWidget *care_glass_win;
};

/* ---- main.c */
void desk_log(desk_t *d, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void desk_quit(desk_t *d, int code);
int desk_call(desk_t *d, const char *method, const ProtobufCMessage *req, int64_t deadline_ms,
              mhtas_client_call_cb cb, void *ctx);
void desk_sign_in(desk_t *d);

/* ---- uvsource.c */
GSource *desk_uv_source_new(uv_loop_t *loop);

/* ---- ui.c */
void ui_build(desk_t *d);
void ui_show_main(desk_t *d);
void ui_update_conn(desk_t *d);
void ui_update_pstate(desk_t *d);
void ui_banner(desk_t *d, const char *text, bool error);
void ui_on_event(desk_t *d, const Mhtas__V1__Event *ev);
void ui_start_shift(desk_t *d);
void ui_end_shift(desk_t *d);
void ui_pause(desk_t *d, const char *reason);
void ui_resume(desk_t *d);
void ui_offer_accept(offer_card_t *o);
void ui_offer_decline(offer_card_t *o, const char *reason);
void ui_load_mine(desk_t *d);
void ui_outbox_flush(desk_t *d);
void ui_outbox_post(desk_t *d, uint64_t incident_id, const char *text);
int ui_outbox_count(desk_t *d, uint64_t incident_id);
inc_tab_t *ui_current_tab(desk_t *d);
int ui_save_png(desk_t *d, const char *path);
int ui_save_png_dialog(desk_t *d, GtkWidget *dialog, const char *path); /* the window, dimmed, dialog centred */

/* ---- incident.c */
inc_tab_t *tab_open(desk_t *d, const Mhtas__V1__Incident *inc);
void tab_free(inc_tab_t *t);
void tab_update(inc_tab_t *t, const Mhtas__V1__Incident *inc, const Mhtas__V1__Transition *tr);
void tab_add_message(inc_tab_t *t, const Mhtas__V1__ChatMessage *m);
void tab_render_conv(inc_tab_t *t);
void tab_send(inc_tab_t *t);
void tab_propose(inc_tab_t *t);
void tab_validate(inc_tab_t *t);
void tab_reload_templates(inc_tab_t *t);
const char *tab_state_name(const inc_tab_t *t);

/* ---- care.c */
care_panel_t *care_panel_new(desk_t *d, inc_tab_t *t);
void care_panel_update(care_panel_t *p);          /* the incident changed (held or not) */
void care_panel_free(care_panel_t *p);
void care_search(care_panel_t *p);                /* the Search button */
void care_open_row(care_panel_t *p, int row);     /* Open: confirm identity, then read (or break-glass dialog) */
void care_glass_confirm(care_panel_t *p);         /* the break-glass dialog's confirm button */
void care_confirm_open(care_panel_t *p);          /* the confirm-identity dialog's Open record (needs 2 ticked) */
void care_confirm_cancel(care_panel_t *p);        /* ... its Cancel: back to the results */
int care_confirm_count(const care_panel_t *p);    /* identifiers ticked in the dialog */
int care_id_parse(const char *s);                 /* "name", "dob", "address"/"postcode", "nhs" -> CARE_ID_*; -1 */
void care_share_open(care_panel_t *p);            /* "Share with police..." */
void care_share_send(care_panel_t *p);            /* the share dialog's Send */
void care_close_record(care_panel_t *p, const char *why);
void care_glass_window(desk_t *d);                /* look-ups outside a held incident */
const char *care_part_label(int part);            /* "Crisis plan" */
int care_part_parse(const char *s);               /* "CRISIS_PLAN", "crisis-plan" -> 6; 0 unknown */
int care_glass_reason_parse(const char *s);       /* "RISK_TO_LIFE" -> 1; 0 unknown */

/* ---- templates.c */
void templates_load(desk_t *d);
void templates_edit(desk_t *d);

/* ---- script.c */
script_t *script_load(desk_t *d, const char *path, char **err);
void script_poke(desk_t *d);
void script_free(script_t *s);

/* ---- pbutil.c */
void *pb_dup(const ProtobufCMessage *m);
void pb_free(void *m);
const char *pb_enum(const ProtobufCEnumDescriptor *d, int v, const char *prefix);
const char *priority_label(int p);
const char *state_label(int s);
char *fmt_time(int64_t ms);     /* "14:03:27", g_free */
int64_t now_ms(void);
char *nhs_format(const char *n);  /* "943 476 5919", g_free */

#endif
