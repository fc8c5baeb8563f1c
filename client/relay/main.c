/* main.c -- bin/mhtas-relay: the radio desk's bridge to the hub.
 *
 *   mhtas-relay --config relay.ini [--console]
 *   mhtas-relay --help-config        the option reference (Markdown)
 *
 * Connects to the hub as a dispatcher (client library: reconnects, resumes
 * its Subscribe stream), serves the dispatcher line protocol on TCP
 * (client/relay/README.md), and, when [radio] device is set, drives a TETRA
 * radio terminal over its PEI. With --console, standard input and output are
 * one more dispatcher session in the human-friendly mode; QUIT or end of
 * input there stops the relay.
 *
 * Composition root only: builds the modules in order (config, loop,
 * sessions, radio, hub), runs the loop, tears down in reverse.
 * On stdout, once listening (not with --console):
 *     MHTAS_RELAY_READY port=N pid=P
 * Logs go to stderr. Exit status 0 after SIGINT/SIGTERM (or console QUIT),
 * 2 on bad usage or configuration, 1 when it cannot start.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay/relay.h"

/* ------------------------------------------------------------ utilities */

void relay_log(const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "%s.%03ld relay: ", stamp, ts.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line); /* one write per line: lines from one process never interleave */
}

int64_t relay_now(const relay_t *r)
{
    return (int64_t)uv_now(r->loop);
}

/* ------------------------------------------------------------ lifecycle */

void relay_shutdown(relay_t *r)
{
    if (r->closing)
        return;
    r->closing = true;
    relay_log("shutting down");
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    uv_close((uv_handle_t *)&r->tick, NULL);
    session_close_all(r);
    radio_stop(r);
    bridge_stop(r);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    relay_shutdown(s->data);
}

static void on_tick(uv_timer_t *t)
{
    relay_t *r = t->data;
    radio_tick(r);
    bridge_tick(r);
}

static void usage(FILE *f)
{
    fputs("usage: mhtas-relay --config FILE [--console]\n"
          "       mhtas-relay --help-config\n"
          "  --config FILE   the relay's INI file ([hub], [relay], [radio], [callsigns]);\n"
          "                  mhtas-relay --help-config lists every option\n"
          "  --console       also a human-friendly dispatcher session on this terminal\n"
          "                  (QUIT or end of input stops the relay)\n"
          "environment: MHTAS_TOKEN, the dispatcher's token, when [hub] token_file is not set\n"
          "the line protocol: client/relay/README.md\n",
          f);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    bool console = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--console") == 0) {
            console = true;
        } else if (strcmp(argv[i], "--help-config") == 0) {
            relay_conf_reference(stdout);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (config == NULL) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    relay_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return 1;
    r->fd = -1;
    char err[512];
    if (relay_conf_load(&r->cfg, config, err, sizeof err) < 0) {
        fprintf(stderr, "mhtas-relay: %s\n", err);
        free(r);
        return 2;
    }
    r->radio_enabled = r->cfg.device[0] != '\0';
    r->console = console;

    uv_loop_t loop;
    uv_loop_init(&loop);
    r->loop = &loop;
    int code = 0;
    int rc = session_listen(r);
    if (rc < 0) {
        fprintf(stderr, "mhtas-relay: cannot listen on %s:%u: %s\n", r->cfg.listen_host, r->cfg.listen_port,
                uv_strerror(rc));
        code = 1;
        goto stop;
    }
    if (bridge_start(r) < 0) {
        fprintf(stderr, "mhtas-relay: %s: [hub] host must be an IPv4 or IPv6 address\n", config);
        code = 2;
        goto stop;
    }
    radio_start(r);
    uv_signal_init(&loop, &r->sigint);
    uv_signal_init(&loop, &r->sigterm);
    r->sigint.data = r->sigterm.data = r;
    uv_signal_start(&r->sigint, on_signal, SIGINT);
    uv_signal_start(&r->sigterm, on_signal, SIGTERM);
    uv_timer_init(&loop, &r->tick);
    r->tick.data = r;
    uv_timer_start(&r->tick, on_tick, 1000, 1000);

    relay_log("listening on %s:%d; hub %s:%u; radio %s; %u callsign(s); parts of at most %u characters", r->cfg.listen_host,
              r->listen_port, r->cfg.hub_host, r->cfg.hub_port, r->radio_enabled ? r->cfg.device : "off (voice only)",
              r->cfg.n_callsigns, r->cfg.max_part_chars);
    if (console) {
        if (session_console(r) < 0) {
            fprintf(stderr, "mhtas-relay: --console: standard input cannot be read\n");
            code = 1;
            relay_shutdown(r);
        }
    } else {
        printf("MHTAS_RELAY_READY port=%d pid=%d\n", r->listen_port, (int)getpid());
        fflush(stdout);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    code = code ? code : r->exit_code;
    goto done;

stop:
    /* a start-up failure: close what was opened, let the loop run the closes */
    r->closing = true;
    session_close_all(r);
    if (r->client)
        bridge_stop(r);
    uv_run(&loop, UV_RUN_DEFAULT);
done:
    bridge_free(r);
    if (uv_loop_close(&loop) != 0)
        relay_log("warning: the loop still had handles at exit");
    free(r);
    return code;
}
