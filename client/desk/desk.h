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
 *                   outcome form, care-record placeholder
 *   templates.c     advice templates (~/.config/mhtas/templates.txt)
 *   script.c        --script FILE: test automation through the same widgets
 *   outcome_rules.c the outcome form's rules (no GTK; unit-tested)
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
