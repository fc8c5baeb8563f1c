/* main.c -- the composition root of bin/mhtas-hub: argv -> configuration ->
 * hub -> front ends -> run the loop -> tear down in reverse. No module
 * reaches for globals; this is the only file that knows every module. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "conf/conf.h"
#include "h2/h2_frontend.h"
#include "hub/hub.h"
#include "log/log.h"
#include "ws/ws_frontend.h"

#define MHTAS_VERSION "0.1.0"
#define MAX_SETS 256

typedef struct app {
    uv_loop_t loop;
    hub_config_t *cfg;
    hub_t *hub;
    h2_frontend_t *h2;
    ws_frontend_t *ws;
    uv_signal_t sigint, sigterm;
    int frontends_open;
    int stopping;
} app_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mhtas-hub [--config PATH] [--set section.key=value]...\n"
            "       mhtas-hub --hash-token TOKEN       print the users-file hash of a token\n"
            "       mhtas-hub --check-config [--config PATH]\n"
            "       mhtas-hub --config-reference       print every option as Markdown\n"
            "\n"
            "Runs the Mental Health Tactical Advice Service hub. Once listening it prints\n"
            "one line on stdout: MHTAS_READY grpc_port=N http_port=M pid=P\n"
            "Logs go to stderr, one key=value line per event. SIGINT/SIGTERM stop it cleanly.\n");
}

static void frontend_closed(void *ctx)
{
    app_t *app = ctx;
    if (--app->frontends_open == 0)
        hub_close(app->hub);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    app_t *app = sig->data;
    if (app->stopping)
        return;
    app->stopping = 1;
    hub_log(HUB_LOG_INFO, "main", "event=stopping signal=%d", signum);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    app->frontends_open = 2;
    h2_frontend_close(app->h2, frontend_closed, app);
    ws_frontend_close(app->ws, frontend_closed, app);
}

int main(int argc, char **argv)
{
    const char *config_path = "config/demo/mhtas.ini";
    const char *sets[MAX_SETS];
    size_t n_sets = 0;
    int check_only = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(a, "--set") == 0 && i + 1 < argc) {
            if (n_sets == MAX_SETS) {
                fprintf(stderr, "mhtas-hub: at most %d --set options\n", MAX_SETS);
                return 2;
            }
            sets[n_sets++] = argv[++i];
        } else if (strcmp(a, "--hash-token") == 0 && i + 1 < argc) {
            const char *t = argv[++i];
            uint8_t h[HUB_TOKEN_HASH_LEN];
            hub_token_hash(t, strlen(t), h);
            printf("blake2b:");
            for (int k = 0; k < HUB_TOKEN_HASH_LEN; k++)
                printf("%02x", h[k]);
            printf("\n");
            return 0;
        } else if (strcmp(a, "--config-reference") == 0) {
            hub_config_write_reference(stdout);
            return 0;
        } else if (strcmp(a, "--check-config") == 0) {
            check_only = 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("mhtas-hub %s\n", MHTAS_VERSION);
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "mhtas-hub: unknown or incomplete option \"%s\"\n", a);
            usage(stderr);
            return 2;
        }
    }

    signal(SIGPIPE, SIG_IGN);
    char err[512];
    app_t app;
    memset(&app, 0, sizeof app);
    app.cfg = hub_config_load(config_path, sets, n_sets, err, sizeof err);
    if (app.cfg == NULL) {
        fprintf(stderr, "mhtas-hub: %s\n", err);
        return 2;
    }
    int level = hub_log_level_parse(app.cfg->log_level);
    if (level >= 0)
        hub_log_level = level;
    if (check_only) {
        printf("%s: ok (%zu users, %zu boroughs)\n", config_path, app.cfg->n_users, app.cfg->n_boroughs);
        hub_config_free(app.cfg);
        return 0;
    }

    int rc = 1;
    uv_loop_init(&app.loop);
    app.hub = hub_new(&app.loop, app.cfg, err, sizeof err);
    if (app.hub == NULL) {
        fprintf(stderr, "mhtas-hub: %s\n", err);
        goto out_loop;
    }
    int grpc_port = 0, http_port = 0;
    app.h2 = h2_frontend_new(app.hub, &app.loop);
    app.ws = ws_frontend_new(app.hub, &app.loop);
    if (app.h2 == NULL || app.ws == NULL) {
        fprintf(stderr, "mhtas-hub: out of memory\n");
        goto out_hub;
    }
    if (h2_frontend_start(app.h2, app.cfg->listen_host, app.cfg->grpc_port, &grpc_port, err, sizeof err) != 0) {
        fprintf(stderr, "mhtas-hub: gRPC listener on %s:%d: %s\n", app.cfg->listen_host, app.cfg->grpc_port, err);
        goto out_hub;
    }
    if (ws_frontend_start(app.ws, app.cfg->listen_host, app.cfg->http_port, &http_port, err, sizeof err) != 0) {
        fprintf(stderr, "mhtas-hub: HTTP listener on %s:%d: %s\n", app.cfg->listen_host, app.cfg->http_port, err);
        goto out_hub;
    }
    uv_signal_init(&app.loop, &app.sigint);
    uv_signal_init(&app.loop, &app.sigterm);
    app.sigint.data = app.sigterm.data = &app;
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);

    hub_log(HUB_LOG_INFO, "main", "event=listening version=%s host=%s grpc_port=%d http_port=%d users=%zu",
            MHTAS_VERSION, app.cfg->listen_host, grpc_port, http_port, app.cfg->n_users);
    printf("MHTAS_READY grpc_port=%d http_port=%d pid=%d\n", grpc_port, http_port, (int)getpid());
    fflush(stdout);

    uv_run(&app.loop, UV_RUN_DEFAULT);
    rc = 0;
    hub_log(HUB_LOG_INFO, "main", "event=stopped");

out_hub:
    if (rc != 0) {
        /* Start-up failed: close whatever was opened and let the loop drain. */
        app.frontends_open = 2;
        if (app.h2)
            h2_frontend_close(app.h2, frontend_closed, &app);
        else
            app.frontends_open--;
        if (app.ws)
            ws_frontend_close(app.ws, frontend_closed, &app);
        else
            app.frontends_open--;
        if (app.frontends_open == 0 && app.hub)
            hub_close(app.hub);
        uv_run(&app.loop, UV_RUN_DEFAULT);
    }
    h2_frontend_free(app.h2);
    ws_frontend_free(app.ws);
    hub_destroy(app.hub);
out_loop:
    if (uv_loop_close(&app.loop) != 0)
        hub_log(HUB_LOG_WARN, "main", "event=loop_not_idle");
    hub_config_free(app.cfg);
    return rc;
}
