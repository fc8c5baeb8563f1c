/* main.c -- bin/mhtas-desk: the practitioners' desktop client.
 *
 *   mhtas-desk [--host IP] [--port N] [--script FILE] [--auto-accept] [--verbose]
 *
 * The token comes from the sign-in form (a password entry, never shown) or
 * from the environment (MHTAS_TOKEN), never from the command line (it would
 * show in `ps`). With --host, --port and MHTAS_TOKEN the client signs in by
 * itself. MHTAS_PORT may give the port.
 *
 * Test automation: --script FILE runs a list of actions through the same
 * widgets a practitioner uses (see script.c); --auto-accept accepts every
 * offer as it arrives. Machine-readable lines go to stdout, each starting
 * "MHTAS_DESK ": signed-in, offers drawn (with the offer-to-screen time),
 * script steps.
 * Exit status: 0, 1 (error), 2 (usage), 3 (a script step failed).
 */
#include "desk/desk.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>

void desk_log(desk_t *d, const char *fmt, ...)
{
    (void)d;
    va_list ap;
    va_start(ap, fmt);
    fputs("MHTAS_DESK ", stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

void desk_quit(desk_t *d, int code)
{
    if (d->quitting)
        return;
    d->quitting = true;
    d->exit_code = code;
    g_application_quit(G_APPLICATION(d->app));
}

int desk_call(desk_t *d, const char *method, const ProtobufCMessage *req, int64_t deadline_ms,
              mhtas_client_call_cb cb, void *ctx)
{
    if (d->client == NULL)
        return MHTAS_CLIENT_ECLOSED;
    /* libuv's cached clock may be old when a call starts from a GTK handler:
     * refresh it so the call's deadline timer is right. */
    uv_update_time(&d->loop);
    int rc = mhtas_client_call(d->client, method, req, deadline_ms, cb, ctx);
    if (rc < 0) {
        char *m = g_strdup_printf("%s: %s", method, mhtas_client_strerror(rc));
        ui_banner(d, m, true);
        g_free(m);
    }
    return rc;
}

/* ------------------------------------------------------------ library callbacks */

static void on_state(void *ctx, mhtas_client_state_t st, const char *reason, uint64_t retry_in_ms)
{
    desk_t *d = ctx;
    d->cstate = st;
    g_strlcpy(d->cstate_reason, reason ? reason : "", sizeof d->cstate_reason);
    d->retry_in_ms = retry_in_ms;
    d->retry_at_ms = now_ms() + (int64_t)retry_in_ms;
    if (d->verbose)
        fprintf(stderr, "# state=%d reason=\"%s\" retry_in_ms=%" PRIu64 "\n", (int)st, reason, retry_in_ms);
    ui_update_conn(d);
    if (st == MHTAS_CLIENT_READY && d->signed_in)
        ui_outbox_flush(d);
    script_poke(d);
}

static void on_event(void *ctx, const Mhtas__V1__Event *ev)
{
    desk_t *d = ctx;
    ui_on_event(d, ev);
    script_poke(d);
}

static void on_stream_end(void *ctx, int status, const char *message)
{
    desk_t *d = ctx;
    if (d->quitting || status == MHTAS_GRPC_CANCELLED)
        return;
    char *m = g_strdup_printf("The hub ended the event stream (%s: %s). Sign in again.",
                              mhtas_client_status_name(status), message);
    ui_banner(d, m, true);
    desk_log(d, "stream-end status=%s", mhtas_client_status_name(status));
    g_free(m);
}

/* ------------------------------------------------------------ sign-in */

static void client_closed(void *ctx)
{
    mhtas_client_t *c = ctx;
    mhtas_client_free(c);
}

static void drop_client(desk_t *d)
{
    if (d->client) {
        mhtas_client_t *c = d->client;
        d->client = NULL;
        mhtas_client_close(c, client_closed, c);
    }
}

static void whoami_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    desk_t *d = ctx;
    if (status == MHTAS_GRPC_CANCELLED && (d->quitting || d->client == NULL))
        return;
    gtk_widget_set_sensitive(d->signin_btn, TRUE);
    if (status != MHTAS_GRPC_OK) {
        const char *why = status == MHTAS_GRPC_UNAUTHENTICATED ? "The hub did not accept this token."
                          : status == MHTAS_GRPC_DEADLINE_EXCEEDED ? "Cannot reach the hub at this address."
                                                                   : message;
        char *m = g_strdup_printf("Sign-in failed: %s (%s)", why, mhtas_client_status_name(status));
        gtk_label_set_text(GTK_LABEL(d->signin_msg), m);
        desk_log(d, "sign-in-failed status=%s", mhtas_client_status_name(status));
        g_free(m);
        drop_client(d);
        script_poke(d);
        return;
    }
    const Mhtas__V1__WhoAmIResponse *r = (const void *)resp;
    if (r->user == NULL || r->user->role != MHTAS__V1__ROLE__ROLE_PRACTITIONER) {
        gtk_label_set_text(GTK_LABEL(d->signin_msg),
                           "This token does not belong to a practitioner: the desktop client is for NHS practitioners.");
        desk_log(d, "sign-in-failed status=NOT_PRACTITIONER");
        drop_client(d);
        return;
    }
    g_free(d->user_id);
    g_free(d->user_name);
    d->user_id = g_strdup(r->user->id);
    d->user_name = g_strdup(r->user->display_name);
    d->signed_in = true;
    desk_log(d, "signed-in user=%s", d->user_id);
    ui_show_main(d);
    ui_load_mine(d);
    script_poke(d);
}

void desk_sign_in(desk_t *d)
{
    const char *host = gtk_editable_get_text(GTK_EDITABLE(d->host_e));
    const char *port_s = gtk_editable_get_text(GTK_EDITABLE(d->port_e));
    const char *token = gtk_editable_get_text(GTK_EDITABLE(d->token_e));
    char *end;
    errno = 0;
    long port = strtol(port_s, &end, 10);
    if (errno || *end || port < 1 || port > 65535) {
        gtk_label_set_text(GTK_LABEL(d->signin_msg), "The port must be a number from 1 to 65535.");
        return;
    }
    if (token == NULL || *token == '\0') {
        gtk_label_set_text(GTK_LABEL(d->signin_msg), "Enter your token.");
        return;
    }
    drop_client(d);
    mhtas_client_options_t o;
    memset(&o, 0, sizeof o);
    o.host = host;
    o.port = (int)port;
    o.token = token;
    o.on_state = on_state;
    o.on_event = on_event;
    o.on_stream_end = on_stream_end;
    o.ctx = d;
    d->client = mhtas_client_new(&d->loop, &o);
    /* The library copied the token: take it out of the widget and memory. */
    gtk_editable_set_text(GTK_EDITABLE(d->token_e), "");
    if (d->token) {
        memset(d->token, 0, strlen(d->token));
        g_free(d->token);
        d->token = NULL;
    }
    if (d->client == NULL) {
        gtk_label_set_text(GTK_LABEL(d->signin_msg), "The hub address must be an IP address (e.g. 127.0.0.1).");
        return;
    }
    g_free(d->host);
    d->host = g_strdup(host);
    d->port = (int)port;
    gtk_label_set_text(GTK_LABEL(d->signin_msg), "Signing in...");
    gtk_widget_set_sensitive(d->signin_btn, FALSE);
    mhtas_client_start(d->client);
    mhtas_client_subscribe(d->client, 0);
    Mhtas__V1__WhoAmIRequest req = MHTAS__V1__WHO_AM_IREQUEST__INIT;
    desk_call(d, "WhoAmI", &req.base, 8000, whoami_done, d);
}

/* ------------------------------------------------------------ application */

static gboolean on_unix_signal(gpointer data)
{
    desk_quit(data, 0);
    return G_SOURCE_CONTINUE;
}

static void on_activate(GtkApplication *app, gpointer data)
{
    desk_t *d = data;
    if (d->win) {
        gtk_window_present(d->win);
        return;
    }
    (void)app;
    ui_build(d);
    if (d->script_path) {
        char *err = NULL;
        d->script = script_load(d, d->script_path, &err);
        if (d->script == NULL) {
            fprintf(stderr, "mhtas-desk: --script %s: %s\n", d->script_path, err ? err : "cannot read");
            g_free(err);
            desk_quit(d, 2);
            return;
        }
    }
    if (d->token && d->port > 0)
        desk_sign_in(d);
    script_poke(d);
}

static int usage(FILE *out, int code)
{
    fputs("usage: mhtas-desk [--host IP] [--port N] [--script FILE] [--auto-accept] [--verbose]\n"
          "environment: MHTAS_TOKEN (the bearer token; with --port the client signs in by itself),\n"
          "             MHTAS_PORT\n",
          out);
    return code;
}

int main(int argc, char **argv)
{
    static desk_t desk;
    desk_t *d = &desk;
    d->host = g_strdup("127.0.0.1");
    const char *env_port = getenv("MHTAS_PORT");
    if (env_port)
        d->port = atoi(env_port);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return usage(stdout, 0);
        if (strcmp(a, "--auto-accept") == 0) {
            d->auto_accept = true;
            continue;
        }
        if (strcmp(a, "--verbose") == 0) {
            d->verbose = true;
            continue;
        }
        if (i + 1 >= argc)
            return usage(stderr, 2);
        const char *v = argv[++i];
        if (strcmp(a, "--host") == 0) {
            g_free(d->host);
            d->host = g_strdup(v);
        } else if (strcmp(a, "--port") == 0) {
            d->port = atoi(v);
            if (d->port < 1 || d->port > 65535)
                return usage(stderr, 2);
        } else if (strcmp(a, "--script") == 0) {
            d->script_path = g_strdup(v);
        } else {
            return usage(stderr, 2);
        }
    }
    const char *tok = getenv("MHTAS_TOKEN");
    if (tok && *tok) {
        d->token = g_strdup(tok);
        unsetenv("MHTAS_TOKEN"); /* not inherited by anything we start */
    }
    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&d->loop) != 0) {
        fprintf(stderr, "mhtas-desk: cannot create the event loop\n");
        return 1;
    }
    d->pstate = MHTAS__V1__PRACTITIONER_STATE__PRACTITIONER_STATE_UNSPECIFIED;
    d->tabs = g_hash_table_new(g_int64_hash, g_int64_equal);
    d->config_dir = g_build_filename(g_get_user_config_dir(), "mhtas", NULL);
    g_mkdir_with_parents(d->config_dir, 0700);
    templates_load(d);

    d->uv_source = desk_uv_source_new(&d->loop);
    g_source_attach(d->uv_source, NULL);
    g_unix_signal_add(SIGTERM, on_unix_signal, d);
    g_unix_signal_add(SIGINT, on_unix_signal, d);

    d->app = gtk_application_new("uk.nhs.mhtas.Desk", G_APPLICATION_NON_UNIQUE);
    g_signal_connect(d->app, "activate", G_CALLBACK(on_activate), d);
    char *gargv[] = { argv[0], NULL };
    int rc = g_application_run(G_APPLICATION(d->app), 1, gargv);
    if (rc == 0)
        rc = d->exit_code;

    /* Close the library and let libuv finish closing its handles. */
    drop_client(d);
    g_source_destroy(d->uv_source);
    g_source_unref(d->uv_source);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
    g_object_unref(d->app);
    script_free(d->script);
    return rc;
}
