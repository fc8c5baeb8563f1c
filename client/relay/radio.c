/* radio.c -- the relay's radio side on the loop: the serial device (opened
 * raw and non-blocking, watched with uv_poll, reopened with back-off when it
 * goes away), the PEI machine (pei.c) talking through it, and the outbox
 * (outbox.c) deciding what goes on the air. This file only moves bytes and
 * events between them and tells people what happened:
 *
 *   outbox event          dispatcher sessions            incident (practitioner)
 *   part SENDING/SENT     EVENT DELIVERY id n/m STATE    -
 *   part RETRY            EVENT DELIVERY id n/m RETRY    -
 *   all parts RECEIVED    EVENT DELIVERY ...             RADIO_STATUS "received"
 *   all parts READ        EVENT DELIVERY ...             RADIO_STATUS "read"
 *   a part FAILED         EVENT DELIVERY id n/m FAILED   RADIO_STATUS "could NOT be delivered ... use voice"
 *
 * Serial faults never lose a queued part: a part whose AT+CMGS was in flight
 * when the line failed goes back to QUEUED (so it may reach the officer
 * twice; the numbered prefix makes a duplicate recognisable). ERROR replies
 * are temporary failures (retried with back-off); garbage lines are counted
 * and logged by length only (they may hold an officer's words).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "relay/relay.h"

#define REOPEN_MIN_MS 200
#define REOPEN_MAX_MS 5000

static void radio_down(relay_t *r, const char *why);
static void on_poll(uv_poll_t *h, int status, int events);
static void pump(relay_t *r);

const char *radio_state(const relay_t *r)
{
    return !r->radio_enabled ? "off" : r->radio_up ? "up" : "down";
}

/* ------------------------------------------------------------ serial I/O */

static speed_t baud_const(unsigned b)
{
    switch (b) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    default: return B115200;
    }
}

static void poll_update(relay_t *r)
{
    if (r->poll_active)
        uv_poll_start(&r->poll, UV_READABLE | UV_DISCONNECT | (r->wlen ? UV_WRITABLE : 0), on_poll);
}

/* Writes what it can of wbuf without blocking; the rest waits for
 * UV_WRITABLE. */
static void flush_out(relay_t *r)
{
    while (r->wlen > 0 && r->fd >= 0) {
        ssize_t n = write(r->fd, r->wbuf, r->wlen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            char why[128];
            snprintf(why, sizeof why, "write: %s", strerror(errno));
            radio_down(r, why);
            return;
        }
        memmove(r->wbuf, r->wbuf + n, r->wlen - (size_t)n);
        r->wlen -= (size_t)n;
    }
    poll_update(r);
}

/* pei.c's write callback. */
static int serial_write(void *ctx, const char *buf, size_t n)
{
    relay_t *r = ctx;
    if (r->fd < 0 || r->wlen + n > sizeof r->wbuf)
        return -1;
    memcpy(r->wbuf + r->wlen, buf, n);
    r->wlen += n;
    flush_out(r);
    return r->fd < 0 ? -1 : 0;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    relay_t *r = h->data;
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof why, "poll: %s", uv_strerror(status));
        radio_down(r, why);
        return;
    }
    if (events & UV_WRITABLE) {
        flush_out(r);
        if (r->fd < 0)
            return;
    }
    if (events & (UV_READABLE | UV_DISCONNECT)) {
        char buf[4096];
        for (int rounds = 0; rounds < 16; rounds++) { /* fairness: the loop has other work */
            ssize_t n = read(r->fd, buf, sizeof buf);
            if (n > 0) {
                pei_feed(&r->pei, relay_now(r), buf, (size_t)n);
                if (r->fd < 0)
                    return;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            /* 0: end of file; EIO: a pseudo-terminal whose other side closed */
            radio_down(r, n == 0 ? "end of file (device gone)" : strerror(errno));
            return;
        }
        pump(r);
    }
}

static int serial_open(relay_t *r)
{
    int fd = open(r->cfg.device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct termios tio;
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        cfsetispeed(&tio, baud_const(r->cfg.baud));
        cfsetospeed(&tio, baud_const(r->cfg.baud));
        tio.c_cflag |= CLOCAL | CREAD;
        tio.c_cc[VMIN] = 1;
        tio.c_cc[VTIME] = 0;
        if (tcsetattr(fd, TCSANOW, &tio) < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        tcflush(fd, TCIOFLUSH);
    } /* not a terminal (a FIFO or socket): used as it is */
    int rc = uv_poll_init(r->loop, &r->poll, fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    r->poll.data = r;
    r->poll_active = true;
    r->fd = fd;
    r->wlen = 0;
    poll_update(r);
    return 0;
}

static void on_reopen(uv_timer_t *t);

static void schedule_reopen(relay_t *r, unsigned delay_ms)
{
    if (!r->closing)
        uv_timer_start(&r->reopen, on_reopen, delay_ms, 0);
}

/* The reopen timer: opens the device when it is closed, or initialises the
 * terminal again after a failed init. */
static void on_reopen(uv_timer_t *t)
{
    relay_t *r = t->data;
    if (r->closing)
        return;
    if (r->fd >= 0) {
        if (r->pei.state == PEI_ST_DOWN)
            pei_reset(&r->pei, relay_now(r));
        return;
    }
    int rc = serial_open(r);
    if (rc < 0) {
        unsigned d = r->reopen_delay_ms ? r->reopen_delay_ms : REOPEN_MIN_MS;
        if (r->radio_faults++ % 20 == 0 || d < REOPEN_MAX_MS)
            relay_log("radio: cannot open %s: %s (again in %u ms)", r->cfg.device, uv_strerror(rc), d);
        r->reopen_delay_ms = d * 2 > REOPEN_MAX_MS ? REOPEN_MAX_MS : d * 2;
        schedule_reopen(r, d);
        return;
    }
    relay_log("radio: %s opened, initialising the terminal", r->cfg.device);
    pei_reset(&r->pei, relay_now(r));
}

static void on_poll_closed(uv_handle_t *h)
{
    (void)h; /* the poll handle is embedded in relay_t: nothing to free */
}

/* The line failed: close it, fail what was in flight back to the queue,
 * tell the dispatchers, and try to reopen. */
static void radio_down(relay_t *r, const char *why)
{
    if (r->fd < 0)
        return;
    r->radio_faults++;
    relay_log("radio: serial line %s down: %s", r->cfg.device, why);
    session_broadcast(r, "EVENT RADIO DOWN :%s: %s", r->cfg.device, why);
    r->radio_up = false;
    if (r->poll_active) {
        uv_poll_stop(&r->poll);
        uv_close((uv_handle_t *)&r->poll, on_poll_closed);
        r->poll_active = false;
    }
    close(r->fd);
    r->fd = -1;
    r->wlen = 0;
    pei_down(&r->pei, "serial line down"); /* a send in flight comes back as SEND_FAILED */
    r->reopen_delay_ms = 0;
    schedule_reopen(r, REOPEN_MIN_MS);
}

/* ------------------------------------------------------------ the outbox */

static void on_wake(uv_timer_t *t)
{
    pump(t->data);
}

/* Starts as many sends as the terminal takes (one AT+CMGS at a time), and
 * sets the wake timer for the outbox's next due part. */
static void pump(relay_t *r)
{
    if (!r->radio_enabled || r->closing)
        return;
    int64_t now = relay_now(r);
    int64_t wake = INT64_MAX;
    while (r->fd >= 0 && r->radio_up && pei_idle(&r->pei) && r->in_flight == NULL) {
        ob_part_t *p = ob_next(&r->ob, now, &wake);
        if (p == NULL)
            break;
        r->in_flight = p;
        int rc = pei_send(&r->pei, now, p->msg->issi, p->msgref, p->text, p);
        if (rc == 0)
            break; /* its outcome comes as a PEI event */
        r->in_flight = NULL;
        if (rc == -2) {
            ob_failed(&r->ob, p, now, OB_FAIL_PERMANENT, "the part cannot be encoded for the radio");
            continue;
        }
        ob_unsend(&r->ob, p, now); /* the write failed: the line is down; it stays queued */
        break;
    }
    /* Parts that wait for a retry time or a token wake us; parts that wait
     * for the terminal go when its next event (ready, OK) pumps again. */
    if (wake != INT64_MAX && !r->closing)
        uv_timer_start(&r->wake, on_wake, (uint64_t)(wake > now ? wake - now : 0), 0);
}

static void post_advice_status(relay_t *r, advice_t *a)
{
    ob_msg_t *m = &a->ob;
    track_t *t = a->track;
    char key[96];
    if (!a->said_received && ob_msg_all(m, 1u << OB_RECEIVED | 1u << OB_READ)) {
        a->said_received = true;
        snprintf(key, sizeof key, "relay-%llu-%u-received", (unsigned long long)t->id, a->number);
        bridge_post_status(r, t->id, key, "Radio: advice #%u received by %s's radio (%u part%s).", a->number,
                           a->callsign, m->n_parts, m->n_parts == 1 ? "" : "s");
    }
    if (!a->said_read && ob_msg_all(m, 1u << OB_READ)) {
        a->said_read = true;
        snprintf(key, sizeof key, "relay-%llu-%u-read", (unsigned long long)t->id, a->number);
        bridge_post_status(r, t->id, key, "Radio: advice #%u read on %s's radio (%u part%s).", a->number, a->callsign,
                           m->n_parts, m->n_parts == 1 ? "" : "s");
    }
}

/* The outbox's events: to the dispatchers, to the incident, to the log. */
static void on_outbox(void *ctx, const ob_event_t *ev)
{
    relay_t *r = ctx;
    ob_part_t *p = ev->part;
    advice_t *a = p->msg->user;
    track_t *t = a->track;
    if (ev->kind == OB_EV_RETRY) {
        relay_log("radio: incident %llu advice #%u part %u/%u to %s (ISSI %u): temporary failure (%s), retry %u in "
                  "%lld ms",
                  (unsigned long long)t->id, a->number, p->idx, p->msg->n_parts, a->callsign, p->msg->issi, ev->detail,
                  p->attempts, (long long)ev->retry_in_ms);
        session_broadcast(r, "EVENT DELIVERY %llu %u/%u RETRY :advice #%u to %s: %s; attempt %u again in %lld ms",
                          (unsigned long long)t->id, p->idx, p->msg->n_parts, a->number, a->callsign, ev->detail,
                          p->attempts + 1, (long long)ev->retry_in_ms);
        return;
    }
    if (p->state == OB_SENDING && !a->said_received && p->attempts == 0 && p->idx == 1)
        relay_log("radio: incident %llu advice #%u: first AT+CMGS %.3f ms after the hub's event", (unsigned long long)t->id,
                  a->number, (double)(uv_hrtime() - a->arrived_hr) / 1e6);
    session_broadcast(r, "EVENT DELIVERY %llu %u/%u %s :advice #%u to %s%s%s", (unsigned long long)t->id, p->idx,
                      p->msg->n_parts, ob_state_name(p->state), a->number, a->callsign, ev->detail ? ": " : "",
                      ev->detail ? ev->detail : "");
    if (p->state == OB_FAILED) {
        relay_log("radio: incident %llu advice #%u part %u/%u to %s (ISSI %u) FAILED: %s", (unsigned long long)t->id,
                  a->number, p->idx, p->msg->n_parts, a->callsign, p->msg->issi, ev->detail ? ev->detail : "");
        char key[96];
        snprintf(key, sizeof key, "relay-%llu-%u-%u-failed", (unsigned long long)t->id, a->number, p->idx);
        bridge_post_status(r, t->id, key,
                           "Radio: advice #%u part %u/%u could NOT be delivered to %s (%s). The dispatcher will pass "
                           "it by voice.",
                           a->number, p->idx, p->msg->n_parts, a->callsign, ev->detail ? ev->detail : "failed");
    }
    if (p->state == OB_RECEIVED || p->state == OB_READ)
        post_advice_status(r, a);
}

void radio_queue(relay_t *r, advice_t *a)
{
    if (ob_add(&r->ob, &a->ob, relay_now(r)) < 0)
        return;
    for (unsigned i = 0; i < a->ob.n_parts; i++)
        session_broadcast(r, "EVENT DELIVERY %llu %u/%u QUEUED :advice #%u to %s (ISSI %u)",
                          (unsigned long long)a->track->id, i + 1, a->ob.n_parts, a->number, a->callsign, a->ob.issi);
    pump(r);
}

/* ------------------------------------------------------------ PEI events */

static ob_report_t report_class(uint8_t status)
{
    switch (pei_ds_class(status)) {
    case PEI_DS_RECEIVED: return OB_REPORT_RECEIVED;
    case PEI_DS_READ: return OB_REPORT_READ;
    case PEI_DS_TEMPORARY: return OB_REPORT_TEMPORARY;
    case PEI_DS_PERMANENT: return OB_REPORT_PERMANENT;
    case PEI_DS_INFO: break;
    }
    return OB_REPORT_INFO;
}

static void on_pei(void *ctx, const pei_event_t *ev)
{
    relay_t *r = ctx;
    int64_t now = relay_now(r);
    switch (ev->kind) {
    case PEI_EV_READY:
        r->radio_up = true;
        r->reopen_delay_ms = 0;
        relay_log("radio: terminal ready on %s (%u part(s) waiting)", r->cfg.device, ob_pending(&r->ob));
        session_broadcast(r, "EVENT RADIO UP :%s", r->cfg.device);
        break;
    case PEI_EV_INIT_FAILED:
        r->radio_up = false;
        r->radio_faults++;
        relay_log("radio: terminal initialisation failed: %s (again in 2 s)", ev->detail);
        session_broadcast(r, "EVENT RADIO ERROR :terminal initialisation failed: %s", ev->detail);
        schedule_reopen(r, 2000);
        break;
    case PEI_EV_SENT: {
        ob_part_t *p = ev->tag;
        if (p == r->in_flight)
            r->in_flight = NULL;
        if (p)
            ob_sent(&r->ob, p, now);
        break;
    }
    case PEI_EV_SEND_FAILED: {
        ob_part_t *p = ev->tag;
        if (p == r->in_flight)
            r->in_flight = NULL;
        if (p == NULL)
            break;
        advice_t *a = p->msg->user;
        relay_log("radio: AT+CMGS for incident %llu advice #%u part %u failed: %s", (unsigned long long)a->track->id,
                  a->number, p->idx, ev->detail);
        if (r->fd < 0 || strcmp(ev->detail, "reset") == 0)
            ob_failed(&r->ob, p, now, OB_FAIL_LINE_DOWN, "serial line down");
        else
            ob_failed(&r->ob, p, now, OB_FAIL_TEMPORARY, ev->detail);
        break;
    }
    case PEI_EV_INCOMING:
        bridge_officer_text(r, ev->issi, ev->text);
        break;
    case PEI_EV_REPORT: {
        ob_part_t *p = ob_report(&r->ob, ev->issi, ev->msgref, report_class(ev->status), pei_ds_str(ev->status), now);
        if (p == NULL)
            relay_log("radio: delivery report '%s' (0x%02x) from ISSI %u for message reference %u: no part waits for "
                      "it, ignored",
                      pei_ds_str(ev->status), ev->status, ev->issi, ev->msgref);
        break;
    }
    case PEI_EV_GARBAGE:
        r->garbage_lines++;
        relay_log("radio: unexpected line from the terminal ignored (%zu bytes; %llu so far)", strlen(ev->detail),
                  (unsigned long long)r->garbage_lines);
        break;
    }
    pump(r);
}

/* ------------------------------------------------------------ lifecycle */

void radio_tick(relay_t *r)
{
    if (!r->radio_enabled)
        return;
    int64_t now = relay_now(r);
    if (r->fd >= 0)
        pei_tick(&r->pei, now);
    ob_prune(&r->ob, now);
    pump(r);
}

int radio_start(relay_t *r)
{
    r->fd = -1;
    pei_init(&r->pei, serial_write, on_pei, r);
    r->pei.cmd_timeout_ms = r->cfg.cmd_timeout_ms;
    ob_config_t oc = {
        .rate_per_minute = r->cfg.rate_per_minute,
        .burst = r->cfg.rate_burst,
        .max_attempts = r->cfg.max_attempts,
        .retry_base_ms = r->cfg.retry_base_ms,
        .retry_max_ms = r->cfg.retry_max_ms,
        .keep_ms = (int64_t)r->cfg.keep_s * 1000,
    };
    ob_init(&r->ob, &oc, on_outbox, r);
    uv_timer_init(r->loop, &r->reopen);
    uv_timer_init(r->loop, &r->wake);
    r->reopen.data = r->wake.data = r;
    if (r->radio_enabled)
        on_reopen(&r->reopen);
    return 0;
}

void radio_stop(relay_t *r)
{
    unsigned q = ob_pending(&r->ob);
    if (q)
        relay_log("radio: stopping with %u part(s) not yet on the air", q);
    uv_close((uv_handle_t *)&r->reopen, NULL);
    uv_close((uv_handle_t *)&r->wake, NULL);
    if (r->poll_active) {
        uv_close((uv_handle_t *)&r->poll, on_poll_closed);
        r->poll_active = false;
    }
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
}
