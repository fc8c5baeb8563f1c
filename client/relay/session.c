/* session.c -- dispatcher sessions: the line protocol (client/relay/README.md)
 * over TCP, and the human-friendly console on stdin/stdout (--console).
 *
 * One command at a time per session: a command that needs the hub (RAISE,
 * SAY, READBACK) holds the session's later lines until the hub answered, so
 * that replies come in the order of the commands and every command gets
 * exactly one final "OK ..." or "ERR ..." line. EVENT lines may come between
 * any two lines. Reading stops while a held command's lines fill the input
 * buffer, and resumes after.
 *
 * Output goes through a per-session buffer with at most one uv_write in
 * flight (the buffer being written is swapped out); a session whose unsent
 * output passes SESSION_OUT_MAX (a client that does not read) is closed.
 * A session is freed only in the close callback of its last handle.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay/lines.h"
#include "relay/relay.h"

#define SESSION_IN_MAX 8192
#define SESSION_OUT_MAX (1u << 20)
#define SESSION_MAX 64

struct session {
    relay_t *r;
    uint64_t id;
    bool console;
    bool human;
    bool busy;          /* a command waits for the hub */
    bool processing;    /* inside process_lines (session_reply must not recurse) */
    bool closing;
    bool quit_when_flushed;
    bool discarding;    /* an over-long line is being skipped */
    bool reading;
    bool out_is_file;   /* console stdout is a regular file: plain write() */
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_tty_t tty;
    } in_h;
    union {
        uv_pipe_t pipe;
        uv_tty_t tty;
    } out_h;
    uv_stream_t *in, *out;
    int open_handles;
    char inbuf[SESSION_IN_MAX];
    size_t in_len;
    char *out_buf, *wr_buf;
    size_t out_len, out_cap;
    bool writing;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    session_t *next;
};

static void process_lines(session_t *s);
static void session_close(session_t *s);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* ------------------------------------------------------------ output */

static void start_write(session_t *s);

static void on_written(uv_write_t *req, int status)
{
    session_t *s = req->data;
    s->writing = false;
    free(s->wr_buf);
    s->wr_buf = NULL;
    if (status < 0 || s->closing) {
        if (!s->closing)
            session_close(s);
        return;
    }
    start_write(s);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    session_t *s = req->data;
    session_close(s);
}

static void start_write(session_t *s)
{
    if (s->writing || s->closing)
        return;
    if (s->out_len == 0) {
        if (s->quit_when_flushed) {
            s->quit_when_flushed = false;
            if (s->console) {
                relay_shutdown(s->r);
            } else {
                s->sreq.data = s;
                if (uv_shutdown(&s->sreq, s->out, on_shutdown) < 0)
                    session_close(s);
            }
        }
        return;
    }
    s->wr_buf = s->out_buf;
    size_t n = s->out_len;
    s->out_buf = NULL;
    s->out_len = s->out_cap = 0;
    s->writing = true;
    s->wreq.data = s;
    uv_buf_t b = uv_buf_init(s->wr_buf, (unsigned)n);
    if (uv_write(&s->wreq, s->out, &b, 1, on_written) < 0) {
        s->writing = false;
        free(s->wr_buf);
        s->wr_buf = NULL;
        session_close(s);
    }
}

static void out_raw(session_t *s, const char *p, size_t n)
{
    if (s->closing)
        return;
    if (s->out_is_file) {
        while (n) {
            ssize_t w = write(STDOUT_FILENO, p, n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return;
            p += w;
            n -= (size_t)w;
        }
        return;
    }
    if (s->out_len + n > SESSION_OUT_MAX) {
        relay_log("session %llu: more than %u bytes of output unread: closed", (unsigned long long)s->id,
                  SESSION_OUT_MAX);
        session_close(s);
        return;
    }
    if (s->out_len + n > s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap : 1024;
        while (cap < s->out_len + n)
            cap *= 2;
        char *b = realloc(s->out_buf, cap);
        if (b == NULL) {
            session_close(s);
            return;
        }
        s->out_buf = b;
        s->out_cap = cap;
    }
    memcpy(s->out_buf + s->out_len, p, n);
    s->out_len += n;
    start_write(s);
}

static void out_str(session_t *s, const char *str)
{
    out_raw(s, str, strlen(str));
}

static void prompt(session_t *s)
{
    if (s->human && !s->busy)
        out_str(s, "relay> ");
}

/* Human mode: the same information, easier on the eye. */
static void humanise(session_t *s, const char *line)
{
    char buf[3000];
    if (strncmp(line, "OK", 2) == 0 && (line[2] == ' ' || line[2] == '\0')) {
        snprintf(buf, sizeof buf, "  ok %s\n", line[2] ? line + 3 : "");
    } else if (strncmp(line, "ERR ", 4) == 0) {
        const char *msg = strchr(line + 4, ' ');
        int codelen = msg ? (int)(msg - (line + 4)) : (int)strlen(line + 4);
        snprintf(buf, sizeof buf, "  error: %s  [%.*s]\n", msg ? msg + 1 : "", codelen, line + 4);
    } else if (strncmp(line, "HELP ", 5) == 0) {
        snprintf(buf, sizeof buf, "  %s\n", line + 5);
    } else if (strncmp(line, "EVENT ", 6) == 0) {
        const char *rest = line + 6;
        const char *colon = strstr(rest, " :");
        if (colon)
            snprintf(buf, sizeof buf, "\r>> %.*s\n   %s\n", (int)(colon - rest), rest, colon + 2);
        else
            snprintf(buf, sizeof buf, "\r>> %s\n", rest);
    } else {
        snprintf(buf, sizeof buf, "  %s\n", line);
    }
    out_str(s, buf);
}

/* One protocol line (no line end). */
static void send_line(session_t *s, const char *line)
{
    if (s->human) {
        humanise(s, line);
        return;
    }
    out_str(s, line);
    out_raw(s, "\n", 1);
}

static void send_linef(session_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_linef(session_t *s, const char *fmt, ...)
{
    char buf[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    send_line(s, buf);
}

void session_broadcast(relay_t *r, const char *fmt, ...)
{
    char buf[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (session_t *s = r->sessions, *next; s; s = next) {
        next = s->next; /* send_line may close s (output limit) */
        send_line(s, buf);
        prompt(s);
    }
}

static session_t *session_by_id(relay_t *r, uint64_t id)
{
    for (session_t *s = r->sessions; s; s = s->next)
        if (s->id == id && !s->closing)
            return s;
    return NULL;
}

void session_reply(relay_t *r, uint64_t session_id, const char *lines)
{
    session_t *s = session_by_id(r, session_id);
    if (s == NULL)
        return;
    const char *p = lines;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char line[2400];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        send_line(s, line);
        p += n + (e ? 1 : 0);
    }
    s->busy = false;
    if (!s->processing) {
        process_lines(s);
        prompt(s);
        if (!s->closing && !s->reading && !s->busy && s->in_len < sizeof s->inbuf &&
            uv_read_start(s->in, on_alloc, on_read) == 0)
            s->reading = true;
    }
}

/* ------------------------------------------------------------ commands */

static void cmd_list(session_t *s)
{
    unsigned n = 0;
    for (track_t *t = bridge_tracks(s->r); t; t = t->next) {
        if (!bridge_state_open(t->state))
            continue;
        send_linef(s, "INCIDENT %llu %s %s %s %s", (unsigned long long)t->id, t->police_ref[0] ? t->police_ref : "-",
                   t->callsign[0] ? t->callsign : "-", bridge_state_name(t->state),
                   t->practitioner[0] ? t->practitioner : "-");
        n++;
    }
    send_linef(s, "OK LIST %u", n);
}

static void cmd_status(session_t *s, track_t *t)
{
    send_linef(s, "INCIDENT %llu %s %s %s %s", (unsigned long long)t->id, t->police_ref[0] ? t->police_ref : "-",
               t->callsign[0] ? t->callsign : "-", bridge_state_name(t->state), t->practitioner[0] ? t->practitioner : "-");
    if (t->n_advices == 0) {
        send_linef(s, "OK STATUS %llu no advice yet", (unsigned long long)t->id);
        return;
    }
    advice_t *a = t->advices[t->n_advices - 1];
    for (unsigned i = 0; i < a->ob.n_parts; i++) {
        const ob_part_t *p = &a->ob.parts[i];
        send_linef(s, "PART %llu %u/%u %s attempts=%u :%s", (unsigned long long)t->id, p->idx, a->ob.n_parts,
                   a->radio ? ob_state_name(p->state) : "VOICE", p->attempts, p->text);
    }
    send_linef(s, "OK STATUS %llu advice #%u%s", (unsigned long long)t->id, a->number,
               a->read_back ? " read back" : "");
}

static void handle_line(session_t *s, char *line)
{
    relay_t *r = s->r;
    line_cmd_t cmd;
    char err[256];
    if (lines_parse(line, &cmd, err, sizeof err) < 0) {
        send_linef(s, "ERR %s", err);
        return;
    }
    track_t *t = NULL;
    if (cmd.kind == LC_SAY || cmd.kind == LC_READBACK || cmd.kind == LC_STATUS) {
        t = bridge_track_lookup(r, cmd.incident);
        if (t == NULL) {
            send_linef(s, "ERR NOT_FOUND incident %s is not one this relay follows (LIST shows them)", cmd.incident);
            return;
        }
    }
    switch (cmd.kind) {
    case LC_NONE:
        break;
    case LC_HELP: {
        const char *h = lines_help();
        while (*h) {
            const char *e = strchr(h, '\n');
            size_t n = e ? (size_t)(e - h) : strlen(h);
            send_linef(s, "HELP %.*s", (int)n, h);
            h += n + (e ? 1 : 0);
        }
        send_line(s, "OK HELP");
        break;
    }
    case LC_PING:
        send_linef(s, "OK PONG hub=%s radio=%s queued=%u", r->hub_ready ? "up" : "down", radio_state(r),
                   ob_pending(&r->ob));
        break;
    case LC_HUMAN:
        s->human = true;
        send_line(s, "OK HUMAN readable output; type HELP for the commands, MACHINE for protocol lines");
        break;
    case LC_MACHINE:
        s->human = false;
        send_line(s, "OK MACHINE");
        break;
    case LC_QUIT:
        send_line(s, "OK BYE");
        s->quit_when_flushed = true;
        start_write(s);
        break;
    case LC_LIST:
        cmd_list(s);
        break;
    case LC_STATUS:
        cmd_status(s, t);
        break;
    case LC_RAISE:
        s->busy = true;
        if (s->human)
            send_linef(s, "raising %s for %s ...", cmd.police_ref, cmd.callsign);
        bridge_raise(r, s->id, cmd.police_ref, cmd.borough, cmd.callsign, cmd.priority, cmd.text);
        break;
    case LC_SAY:
        s->busy = true;
        bridge_say(r, s->id, t, cmd.text);
        break;
    case LC_READBACK:
        s->busy = true;
        bridge_readback(r, s->id, t, cmd.part, cmd.text);
        break;
    }
}

/* Handles the complete lines in the input buffer, one command at a time. */
static void process_lines(session_t *s)
{
    s->processing = true;
    size_t start = 0;
    while (!s->busy && !s->closing && !s->quit_when_flushed) {
        char *nl = memchr(s->inbuf + start, '\n', s->in_len - start);
        if (nl == NULL)
            break;
        *nl = '\0';
        char *line = s->inbuf + start;
        start = (size_t)(nl - s->inbuf) + 1;
        if (s->discarding) {
            s->discarding = false;
            send_linef(s, "ERR TOO_LONG a line is at most %d bytes", SESSION_IN_MAX - 1);
            continue;
        }
        handle_line(s, line);
    }
    s->processing = false;
    if (s->closing)
        return;
    memmove(s->inbuf, s->inbuf + start, s->in_len - start);
    s->in_len -= start;
    if (s->in_len == sizeof s->inbuf) {
        if (!s->busy) {
            s->discarding = true; /* a line longer than the buffer: skip to its end */
            s->in_len = 0;
        }
    }
}

/* ------------------------------------------------------------ input */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    session_t *s = h->data;
    *buf = uv_buf_init(s->inbuf + s->in_len, (unsigned)(sizeof s->inbuf - s->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    session_t *s = st->data;
    if (nread < 0) {
        if (s->console) {
            relay_log("console: end of input: shutting down");
            relay_shutdown(s->r);
        } else {
            session_close(s);
        }
        return;
    }
    s->in_len += (size_t)nread;
    if (s->discarding) { /* skip to the end of the over-long line */
        char *nl = memchr(s->inbuf, '\n', s->in_len);
        if (nl == NULL) {
            s->in_len = 0;
            return;
        }
        size_t keep = s->in_len - (size_t)(nl - s->inbuf);
        memmove(s->inbuf, nl, keep); /* keep the '\n': it ends the skipped line */
        s->in_len = keep;
    }
    bool was_busy = s->busy;
    process_lines(s);
    if (s->closing)
        return;
    if (!was_busy && !s->busy)
        prompt(s);
    if (s->in_len == sizeof s->inbuf && s->busy && s->reading) {
        uv_read_stop(s->in); /* held lines fill the buffer: wait for the hub's answer */
        s->reading = false;
    }
}

/* ------------------------------------------------------------ lifecycle */

static void on_handle_closed(uv_handle_t *h)
{
    session_t *s = h->data;
    if (--s->open_handles > 0)
        return;
    free(s->out_buf);
    free(s->wr_buf);
    free(s);
}

static void session_close(session_t *s)
{
    if (s->closing)
        return;
    s->closing = true;
    relay_t *r = s->r;
    for (session_t **pp = &r->sessions; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    if (s->in)
        uv_close((uv_handle_t *)s->in, on_handle_closed);
    if (s->out && s->out != s->in)
        uv_close((uv_handle_t *)s->out, on_handle_closed);
    if (s->open_handles == 0) {
        free(s->out_buf);
        free(s->wr_buf);
        free(s);
    }
}

static session_t *session_new(relay_t *r)
{
    session_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->r = r;
    s->id = ++r->next_session_id;
    s->next = r->sessions;
    r->sessions = s;
    return s;
}

static void on_connection(uv_stream_t *server, int status)
{
    relay_t *r = server->data;
    if (status < 0 || r->closing)
        return;
    unsigned n = 0;
    for (session_t *x = r->sessions; x; x = x->next)
        n++;
    session_t *s = session_new(r);
    if (s == NULL)
        return;
    uv_tcp_init(r->loop, &s->in_h.tcp);
    s->in = s->out = (uv_stream_t *)&s->in_h.tcp;
    s->in->data = s;
    s->open_handles = 1;
    if (uv_accept(server, s->in) < 0) {
        session_close(s);
        return;
    }
    if (n >= SESSION_MAX) {
        send_linef(s, "ERR BUSY more than %d dispatcher sessions", SESSION_MAX);
        s->quit_when_flushed = true;
        start_write(s);
        return;
    }
    uv_tcp_nodelay(&s->in_h.tcp, 1);
    relay_log("session %llu: dispatcher connected", (unsigned long long)s->id);
    send_linef(s, "HELLO mhtas-relay 1 hub=%s radio=%s :type HELP for the commands", r->hub_ready ? "up" : "down",
               radio_state(r));
    if (uv_read_start(s->in, on_alloc, on_read) == 0)
        s->reading = true;
}

int session_listen(relay_t *r)
{
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(r->cfg.listen_host, (int)r->cfg.listen_port, (struct sockaddr_in *)&addr);
    if (rc < 0)
        rc = uv_ip6_addr(r->cfg.listen_host, (int)r->cfg.listen_port, (struct sockaddr_in6 *)&addr);
    uv_tcp_init(r->loop, &r->listener);
    r->listener_init = true;
    r->listener.data = r;
    if (rc == 0)
        rc = uv_tcp_bind(&r->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&r->listener, 16, on_connection);
    if (rc < 0)
        return rc;
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&r->listener, (struct sockaddr *)&bound, &blen);
    r->listen_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                        : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int session_console(relay_t *r)
{
    session_t *s = session_new(r);
    if (s == NULL)
        return -1;
    s->console = true;
    s->human = true;
    if (uv_guess_handle(0) == UV_TTY) {
        uv_tty_init(r->loop, &s->in_h.tty, 0, 1);
    } else {
        uv_pipe_init(r->loop, &s->in_h.pipe, 0);
        if (uv_pipe_open(&s->in_h.pipe, 0) < 0)
            return -1;
    }
    s->in = (uv_stream_t *)&s->in_h;
    s->in->data = s;
    s->open_handles = 1;
    uv_handle_type out = uv_guess_handle(1);
    if (out == UV_TTY) {
        uv_tty_init(r->loop, &s->out_h.tty, 1, 0);
        s->out = (uv_stream_t *)&s->out_h.tty;
    } else if (out == UV_NAMED_PIPE) {
        uv_pipe_init(r->loop, &s->out_h.pipe, 0);
        uv_pipe_open(&s->out_h.pipe, 1);
        s->out = (uv_stream_t *)&s->out_h.pipe;
    } else {
        s->out_is_file = true; /* a regular file: written directly */
    }
    if (s->out) {
        s->out->data = s;
        s->open_handles++;
    }
    send_line(s, "mhtas radio relay -- type HELP for the commands, QUIT to stop the relay");
    prompt(s);
    if (uv_read_start(s->in, on_alloc, on_read) == 0)
        s->reading = true;
    return 0;
}

void session_close_all(relay_t *r)
{
    if (r->listener_init && !uv_is_closing((uv_handle_t *)&r->listener))
        uv_close((uv_handle_t *)&r->listener, NULL);
    while (r->sessions)
        session_close(r->sessions);
}
