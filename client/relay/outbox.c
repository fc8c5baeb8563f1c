/* outbox.c -- see outbox.h. Pure: no I/O, no clock, no allocation. */
#include "outbox.h"

#include <stdio.h>
#include <string.h>

const char *ob_state_name(ob_state_t s)
{
    static const char *const n[] = { "QUEUED", "SENDING", "SENT", "RECEIVED", "READ", "FAILED" };
    return (unsigned)s <= OB_FAILED ? n[s] : "?";
}

void ob_init(outbox_t *ob, const ob_config_t *cfg, void (*on_event)(void *, const ob_event_t *), void *ctx)
{
    memset(ob, 0, sizeof *ob);
    ob->cfg = *cfg;
    if (ob->cfg.rate_per_minute == 0)
        ob->cfg.rate_per_minute = 1;
    if (ob->cfg.burst == 0)
        ob->cfg.burst = 1;
    if (ob->cfg.max_attempts == 0)
        ob->cfg.max_attempts = 1;
    if (ob->cfg.retry_base_ms == 0)
        ob->cfg.retry_base_ms = 1;
    if (ob->cfg.retry_max_ms < ob->cfg.retry_base_ms)
        ob->cfg.retry_max_ms = ob->cfg.retry_base_ms;
    ob->on_event = on_event;
    ob->ctx = ctx;
}

void ob_msg_init(ob_msg_t *m, uint32_t issi, void *user)
{
    memset(m, 0, sizeof *m);
    m->issi = issi;
    m->user = user;
}

int ob_msg_add_part(ob_msg_t *m, const char *text)
{
    if (m->in_outbox || m->n_parts == OB_MAX_PARTS || strlen(text) >= sizeof m->parts[0].text)
        return -1;
    ob_part_t *p = &m->parts[m->n_parts];
    memset(p, 0, sizeof *p);
    p->msg = m;
    p->idx = ++m->n_parts;
    strcpy(p->text, text);
    return 0;
}

/* ------------------------------------------------------------ state changes */

static void set_state(outbox_t *ob, ob_part_t *p, ob_state_t to, int64_t now, const char *detail)
{
    ob_state_t from = p->state;
    p->state = to;
    p->changed_ms = now;
    if (detail)
        snprintf(p->detail, sizeof p->detail, "%s", detail);
    if (ob->on_event)
        ob->on_event(ob->ctx, &(ob_event_t){ .kind = OB_EV_STATE, .part = p, .from = from, .detail = detail });
}

int ob_add(outbox_t *ob, ob_msg_t *m, int64_t now)
{
    if (m->n_parts == 0 || m->issi == 0 || m->in_outbox)
        return -1;
    for (unsigned i = 0; i < m->n_parts; i++) {
        ob_part_t *p = &m->parts[i];
        p->msg = m;
        p->state = OB_QUEUED;
        p->attempts = 0;
        p->next_try_ms = now;
        p->changed_ms = now;
        p->msgref = 0;
        p->detail[0] = '\0';
    }
    m->next = NULL;
    m->in_outbox = true;
    if (ob->tail)
        ob->tail->next = m;
    else
        ob->head = m;
    ob->tail = m;
    return 0;
}

/* ------------------------------------------------------------ rate limit */

static ob_bucket_t *bucket(outbox_t *ob, uint32_t issi, int64_t now)
{
    int64_t cap = (int64_t)ob->cfg.burst * OB_TOKEN;
    ob_bucket_t *free_b = NULL, *full_b = NULL;
    for (size_t i = 0; i < OB_MAX_BUCKETS; i++) {
        ob_bucket_t *b = &ob->buckets[i];
        if (b->issi == issi) {
            if (now > b->at_ms) {
                int64_t u = b->units + (now - b->at_ms) * (int64_t)ob->cfg.rate_per_minute;
                b->units = u > cap ? cap : u;
                b->at_ms = now;
            }
            return b;
        }
        if (b->issi == 0 && free_b == NULL)
            free_b = b;
        else if (b->issi && full_b == NULL &&
                 b->units + (now - b->at_ms) * (int64_t)ob->cfg.rate_per_minute >= cap)
            full_b = b;
    }
    /* A full bucket is the same as no bucket: reuse one when the table is full. */
    ob_bucket_t *b = free_b ? free_b : full_b;
    if (b == NULL)
        b = &ob->buckets[issi % OB_MAX_BUCKETS]; /* more than 256 busy ISSIs: that one starts afresh */
    b->issi = issi;
    b->units = cap;
    b->at_ms = now;
    return b;
}

/* When the bucket will hold a whole token (now if it does). */
static int64_t token_at(const outbox_t *ob, const ob_bucket_t *b, int64_t now)
{
    if (b->units >= OB_TOKEN)
        return now;
    int64_t r = (int64_t)ob->cfg.rate_per_minute;
    return now + (OB_TOKEN - b->units + r - 1) / r;
}

/* ------------------------------------------------------------ choosing */

static bool ref_in_use(const outbox_t *ob, uint32_t issi, uint8_t ref)
{
    for (const ob_msg_t *m = ob->head; m; m = m->next) {
        if (m->issi != issi)
            continue;
        for (unsigned i = 0; i < m->n_parts; i++) {
            const ob_part_t *p = &m->parts[i];
            if (p->msgref == ref && (p->state == OB_SENDING || p->state == OB_SENT || p->state == OB_RECEIVED))
                return true;
        }
    }
    return false;
}

static uint8_t next_ref(outbox_t *ob, uint32_t issi)
{
    for (int tries = 0; tries < 255; tries++) {
        ob->last_ref = (uint8_t)(ob->last_ref == 255 ? 1 : ob->last_ref + 1);
        if (!ref_in_use(ob, issi, ob->last_ref))
            break;
    }
    return ob->last_ref;
}

/* Is an earlier part to the same ISSI still waiting to go out? */
static bool held_back(const outbox_t *ob, const ob_part_t *p)
{
    const ob_msg_t *pm = p->msg;
    for (const ob_msg_t *m = ob->head; m; m = m->next) {
        if (m->issi == pm->issi) {
            for (unsigned i = 0; i < m->n_parts; i++) {
                if (m == pm && i + 1 >= p->idx)
                    return false;
                if (m->parts[i].state == OB_QUEUED)
                    return true;
            }
        }
        if (m == pm)
            return false;
    }
    return false;
}

ob_part_t *ob_next(outbox_t *ob, int64_t now, int64_t *wake_ms)
{
    int64_t wake = INT64_MAX;
    for (ob_msg_t *m = ob->head; m; m = m->next) {
        for (unsigned i = 0; i < m->n_parts; i++) {
            ob_part_t *p = &m->parts[i];
            if (p->state != OB_QUEUED || held_back(ob, p))
                continue;
            if (p->next_try_ms > now) {
                if (p->next_try_ms < wake)
                    wake = p->next_try_ms;
                continue;
            }
            ob_bucket_t *b = bucket(ob, m->issi, now);
            if (b->units < OB_TOKEN) {
                ob->rate_limited++;
                int64_t t = token_at(ob, b, now);
                if (t < wake)
                    wake = t;
                continue;
            }
            b->units -= OB_TOKEN;
            p->msgref = next_ref(ob, m->issi);
            ob->sends++;
            set_state(ob, p, OB_SENDING, now, NULL);
            if (wake_ms)
                *wake_ms = wake;
            return p;
        }
    }
    if (wake_ms)
        *wake_ms = wake;
    return NULL;
}

/* ------------------------------------------------------------ outcomes */

void ob_unsend(outbox_t *ob, ob_part_t *p, int64_t now)
{
    if (p->state != OB_SENDING)
        return;
    ob_bucket_t *b = bucket(ob, p->msg->issi, now);
    int64_t cap = (int64_t)ob->cfg.burst * OB_TOKEN;
    b->units = b->units + OB_TOKEN > cap ? cap : b->units + OB_TOKEN;
    ob->sends--;
    p->msgref = 0;
    p->next_try_ms = now;
    set_state(ob, p, OB_QUEUED, now, NULL);
}

void ob_sent(outbox_t *ob, ob_part_t *p, int64_t now)
{
    if (p->state == OB_SENDING)
        set_state(ob, p, OB_SENT, now, NULL);
}

static void temporary(outbox_t *ob, ob_part_t *p, int64_t now, const char *why)
{
    p->attempts++;
    if (p->attempts >= ob->cfg.max_attempts) {
        char buf[96];
        snprintf(buf, sizeof buf, "gave up after %u attempts, last: %s", p->attempts, why);
        ob->failures++;
        set_state(ob, p, OB_FAILED, now, buf);
        return;
    }
    unsigned shift = p->attempts - 1 > 20 ? 20 : p->attempts - 1;
    uint64_t d = (uint64_t)ob->cfg.retry_base_ms << shift;
    if (d > ob->cfg.retry_max_ms)
        d = ob->cfg.retry_max_ms;
    ob->retries++;
    p->next_try_ms = now + (int64_t)d;
    p->msgref = 0;
    snprintf(p->detail, sizeof p->detail, "%s", why);
    ob_state_t from = p->state;
    p->state = OB_QUEUED;
    p->changed_ms = now;
    if (ob->on_event)
        ob->on_event(ob->ctx,
                     &(ob_event_t){ .kind = OB_EV_RETRY, .part = p, .from = from, .retry_in_ms = (int64_t)d, .detail = why });
}

void ob_failed(outbox_t *ob, ob_part_t *p, int64_t now, ob_fail_t kind, const char *why)
{
    if (p->state != OB_SENDING && p->state != OB_SENT)
        return;
    why = why ? why : "failed";
    switch (kind) {
    case OB_FAIL_LINE_DOWN:
        p->msgref = 0;
        p->next_try_ms = now;
        set_state(ob, p, OB_QUEUED, now, why);
        break;
    case OB_FAIL_TEMPORARY:
        temporary(ob, p, now, why);
        break;
    case OB_FAIL_PERMANENT:
        ob->failures++;
        set_state(ob, p, OB_FAILED, now, why);
        break;
    }
}

ob_part_t *ob_report(outbox_t *ob, uint32_t issi, uint8_t msgref, ob_report_t cls, const char *what, int64_t now)
{
    ob_part_t *p = NULL;
    for (ob_msg_t *m = ob->head; m && !p; m = m->next) {
        if (m->issi != issi)
            continue;
        for (unsigned i = 0; i < m->n_parts; i++) {
            ob_part_t *q = &m->parts[i];
            if (q->msgref == msgref && (q->state == OB_SENDING || q->state == OB_SENT || q->state == OB_RECEIVED)) {
                p = q;
                break;
            }
        }
    }
    if (p == NULL)
        return NULL;
    switch (cls) {
    case OB_REPORT_RECEIVED:
        if (p->state != OB_RECEIVED)
            set_state(ob, p, OB_RECEIVED, now, NULL);
        break;
    case OB_REPORT_READ:
        set_state(ob, p, OB_READ, now, NULL);
        break;
    case OB_REPORT_TEMPORARY:
        temporary(ob, p, now, what ? what : "temporary failure");
        break;
    case OB_REPORT_PERMANENT:
        ob->failures++;
        set_state(ob, p, OB_FAILED, now, what ? what : "failed");
        break;
    case OB_REPORT_INFO:
        break;
    }
    return p;
}

/* ------------------------------------------------------------ leaving */

bool ob_msg_all(const ob_msg_t *m, unsigned mask)
{
    for (unsigned i = 0; i < m->n_parts; i++)
        if (!(mask & (1u << m->parts[i].state)))
            return false;
    return true;
}

static bool done(const outbox_t *ob, const ob_msg_t *m, int64_t now)
{
    bool waiting = false;
    for (unsigned i = 0; i < m->n_parts; i++) {
        const ob_part_t *p = &m->parts[i];
        if (p->state == OB_QUEUED || p->state == OB_SENDING)
            return false;
        if ((p->state == OB_SENT || p->state == OB_RECEIVED) && now - p->changed_ms < ob->cfg.keep_ms)
            waiting = true;
    }
    return !waiting;
}

void ob_remove(outbox_t *ob, ob_msg_t *m)
{
    ob_msg_t *prev = NULL;
    for (ob_msg_t *x = ob->head; x; prev = x, x = x->next) {
        if (x != m)
            continue;
        if (prev)
            prev->next = x->next;
        else
            ob->head = x->next;
        if (ob->tail == x)
            ob->tail = prev;
        x->next = NULL;
        x->in_outbox = false;
        return;
    }
}

unsigned ob_prune(outbox_t *ob, int64_t now)
{
    unsigned n = 0;
    ob_msg_t *m = ob->head;
    while (m) {
        ob_msg_t *next = m->next;
        if (done(ob, m, now)) {
            ob_remove(ob, m);
            n++;
        }
        m = next;
    }
    return n;
}

unsigned ob_pending(const outbox_t *ob)
{
    unsigned n = 0;
    for (const ob_msg_t *m = ob->head; m; m = m->next)
        for (unsigned i = 0; i < m->n_parts; i++)
            n += m->parts[i].state == OB_QUEUED || m->parts[i].state == OB_SENDING;
    return n;
}
