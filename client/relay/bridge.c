/* bridge.c -- the relay's hub side: it follows the incidents that concern
 * the radio desk, turns practitioners' advice into radio parts (split.c) or
 * voice, turns officers' texts into incidents and messages, and makes the
 * hub calls for the dispatcher's commands.
 *
 * Which incidents are ours: those naming a configured callsign, those this
 * relay raised (RAISE, an officer's first text) and those raised by our
 * dispatcher user. Police roles see every incident's events, so the relay
 * also remembers (boundedly) which incidents it has seen not to be ours, and
 * asks the hub (GetIncident) only about a message on an incident it has
 * never seen.
 *
 * Reconnect and resume come from the client library: it reconnects with
 * back-off and resumes the Subscribe stream after the last event seen. When
 * the hub says events were lost (RESUME_GAP), the relay lists the open
 * incidents again and, for each it follows, reads the incident to catch
 * advice it missed. Officers' texts and radio status messages are retried
 * (same idempotency key) while the hub is away, so none is lost or doubled.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "relay/relay.h"

#define CALL_DEADLINE_MS 10000     /* dispatcher commands */
#define CALL_RETRY_DEADLINE_MS 30000 /* texts and statuses, retried after it */
#define FOREIGN_MAX 65536

#define ROLE_(x) MHTAS__V1__ROLE__ROLE_##x
#define KIND_(x) MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_##x
#define ST_(x) MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_##x

typedef enum {
    CALL_RAISE = 1,     /* a dispatcher's RAISE */
    CALL_SAY,           /* a dispatcher's SAY */
    CALL_READBACK,      /* a dispatcher's READBACK */
    CALL_STATUS_POST,   /* a RADIO_STATUS message: nobody waits; retried */
    CALL_OFFICER_RAISE, /* an officer's first text raises an incident; retried */
    CALL_OFFICER_SAY,   /* an officer's text on an open incident; retried */
    CALL_GET_FOR_MSG,   /* GetIncident for a message on an incident never seen */
    CALL_CATCHUP,       /* GetIncident after a resume gap: missed advice */
    CALL_LIST,          /* ListIncidents at start and after a resume gap */
    CALL_WHOAMI,
} call_kind_t;

struct hub_call {
    relay_t *r;
    call_kind_t kind;
    uint64_t session_id;
    uint64_t incident;
    char callsign[RELAY_CALLSIGN_MAX + 1];
    uint32_t number;
    unsigned part;                /* CALL_READBACK: 0 = all */
    char key[128];                /* idempotency key of a state change */
    char police_ref[64];
    char borough[64];             /* CALL_RAISE */
    int priority;                 /* CALL_RAISE */
    char text[2 * RELAY_TEXT_MAX];
    Mhtas__V1__ChatMessage *msg;  /* CALL_GET_FOR_MSG: the message to handle (owned) */
    unsigned attempts;
    hub_call_t *next_retry;
};

static void on_call(void *ctx, int status, const char *message, const ProtobufCMessage *resp);
static void handle_advice(relay_t *r, track_t *t, const Mhtas__V1__ChatMessage *m);

/* ------------------------------------------------------------ small things */

const char *bridge_state_name(int st)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&mhtas__v1__incident_state__descriptor, st);
    return v ? v->name + strlen("INCIDENT_STATE_") : "UNKNOWN";
}

bool bridge_state_open(int st)
{
    return st != ST_(CLOSED) && st != ST_(CANCELLED) && st != ST_(TRANSFERRED);
}

/* One protocol line: line ends and control characters become spaces. */
static void one_line(char *dst, size_t cap, const char *src)
{
    size_t w = 0;
    for (const unsigned char *s = (const unsigned char *)src; *s && w + 1 < cap; s++)
        dst[w++] = *s < 0x20 || *s == 0x7f ? ' ' : (char)*s;
    dst[w] = '\0';
}

officer_t *relay_officer_by_name(relay_t *r, const char *name)
{
    const relay_callsign_conf_t *c = relay_conf_callsign(&r->cfg, name);
    return c ? &r->officers[c - r->cfg.callsigns] : NULL;
}

officer_t *relay_officer_by_issi(relay_t *r, uint32_t issi)
{
    const relay_callsign_conf_t *c = relay_conf_issi(&r->cfg, issi);
    return c ? &r->officers[c - r->cfg.callsigns] : NULL;
}

/* ------------------------------------------------------------ foreign incidents */

static size_t foreign_pos(const relay_t *r, uint64_t id)
{
    size_t lo = 0, hi = r->n_foreign;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->foreign[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool foreign_has(const relay_t *r, uint64_t id)
{
    size_t i = foreign_pos(r, id);
    return i < r->n_foreign && r->foreign[i] == id;
}

static void foreign_add(relay_t *r, uint64_t id)
{
    size_t i = foreign_pos(r, id);
    if (i < r->n_foreign && r->foreign[i] == id)
        return;
    if (r->n_foreign == FOREIGN_MAX) { /* forget the oldest half: at worst a GetIncident each */
        memmove(r->foreign, r->foreign + FOREIGN_MAX / 2, (FOREIGN_MAX / 2) * sizeof *r->foreign);
        r->n_foreign -= FOREIGN_MAX / 2;
        i = foreign_pos(r, id);
    }
    if (r->n_foreign == r->cap_foreign) {
        size_t cap = r->cap_foreign ? 2 * r->cap_foreign : 256;
        uint64_t *f = realloc(r->foreign, cap * sizeof *f);
        if (f == NULL)
            return;
        r->foreign = f;
        r->cap_foreign = cap;
    }
    memmove(r->foreign + i + 1, r->foreign + i, (r->n_foreign - i) * sizeof *r->foreign);
    r->foreign[i] = id;
    r->n_foreign++;
}

static void foreign_del(relay_t *r, uint64_t id)
{
    size_t i = foreign_pos(r, id);
    if (i < r->n_foreign && r->foreign[i] == id) {
        memmove(r->foreign + i, r->foreign + i + 1, (r->n_foreign - i - 1) * sizeof *r->foreign);
        r->n_foreign--;
    }
}

/* ------------------------------------------------------------ tracks */

track_t *bridge_tracks(relay_t *r)
{
    return r->tracks;
}

static track_t *track_find(relay_t *r, uint64_t id)
{
    for (track_t *t = r->tracks; t; t = t->next)
        if (t->id == id)
            return t;
    return NULL;
}

/* By number, or by police reference (the newest incident with it). */
track_t *bridge_track_lookup(relay_t *r, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s >= '0' && *s <= '9' && !*end && !errno && v > 0)
        return track_find(r, v);
    track_t *best = NULL;
    for (track_t *t = r->tracks; t; t = t->next)
        if (strcasecmp(t->police_ref, s) == 0 && (!best || t->id > best->id))
            best = t;
    return best;
}

/* A configured callsign named by the incident, or NULL. */
static const char *our_callsign(relay_t *r, const Mhtas__V1__Incident *inc)
{
    if (inc == NULL || inc->details == NULL)
        return NULL;
    for (size_t i = 0; i < inc->details->n_callsigns; i++) {
        const relay_callsign_conf_t *c = relay_conf_callsign(&r->cfg, inc->details->callsigns[i]);
        if (c)
            return c->name;
    }
    return NULL;
}

static bool is_ours(relay_t *r, const Mhtas__V1__Incident *inc)
{
    return our_callsign(r, inc) || track_find(r, inc->id) ||
           (r->user_id[0] && inc->raised_by && strcmp(inc->raised_by, r->user_id) == 0);
}

static void free_track(track_t *t)
{
    for (size_t i = 0; i < t->n_advices; i++)
        free(t->advices[i]);
    free(t->advices);
    free(t);
}

/* Follows (or updates) an incident; `callsign` names the officer when the
 * relay raised it. Announces new ones and state changes. */
static track_t *track_ensure(relay_t *r, const Mhtas__V1__Incident *inc, const char *callsign)
{
    track_t *t = track_find(r, inc->id);
    bool fresh = t == NULL;
    if (fresh) {
        t = calloc(1, sizeof *t);
        if (t == NULL)
            return NULL;
        t->id = inc->id;
        t->next = r->tracks;
        r->tracks = t;
        foreign_del(r, inc->id);
    }
    if (inc->details && inc->details->police_ref && inc->details->police_ref[0])
        snprintf(t->police_ref, sizeof t->police_ref, "%s", inc->details->police_ref);
    if (!t->callsign[0]) {
        const char *cs = callsign ? callsign : our_callsign(r, inc);
        if (!cs && inc->details && inc->details->n_callsigns)
            cs = inc->details->callsigns[0];
        snprintf(t->callsign, sizeof t->callsign, "%s", cs ? cs : "");
    }
    int old = t->state;
    if (inc->state)
        t->state = inc->state;
    snprintf(t->practitioner, sizeof t->practitioner, "%s", inc->practitioner ? inc->practitioner : "");
    if (!bridge_state_open(t->state) && !t->ended_ms)
        t->ended_ms = uv_now(r->loop);
    if (fresh) {
        /* advice given before the relay followed it is not sent again */
        for (size_t i = 0; i < inc->n_messages; i++)
            if (inc->messages[i]->from_role == ROLE_(PRACTITIONER) && inc->messages[i]->number > t->last_number)
                t->last_number = inc->messages[i]->number;
        relay_log("following incident %llu (%s, callsign %s)", (unsigned long long)t->id, bridge_state_name(t->state),
                  t->callsign[0] ? t->callsign : "-");
        session_broadcast(r, "EVENT FOLLOW %llu %s %s %s", (unsigned long long)t->id,
                          t->police_ref[0] ? t->police_ref : "-", t->callsign[0] ? t->callsign : "-",
                          bridge_state_name(t->state));
    } else if (old != t->state) {
        session_broadcast(r, "EVENT STATE %llu %s %s", (unsigned long long)t->id, bridge_state_name(t->state),
                          t->practitioner[0] ? t->practitioner : "-");
    }
    return t;
}

/* Ended incidents are forgotten keep_s after they ended, once nothing of
 * theirs is left in the radio outbox. */
static void prune_tracks(relay_t *r)
{
    uint64_t now = uv_now(r->loop);
    for (track_t **pp = &r->tracks; *pp;) {
        track_t *t = *pp;
        bool busy = !t->ended_ms || now - t->ended_ms < (uint64_t)r->cfg.keep_s * 1000;
        for (size_t i = 0; !busy && i < t->n_advices; i++)
            busy = t->advices[i]->ob.in_outbox;
        if (busy) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        foreign_add(r, t->id);
        free_track(t);
    }
}

/* ------------------------------------------------------------ hub calls */

static hub_call_t *call_new(relay_t *r, call_kind_t kind, uint64_t session_id)
{
    hub_call_t *x = calloc(1, sizeof *x);
    if (x) {
        x->r = r;
        x->kind = kind;
        x->session_id = session_id;
    }
    return x;
}

static void call_free(hub_call_t *x)
{
    if (x->msg)
        protobuf_c_message_free_unpacked(&x->msg->base, NULL);
    free(x);
}

static bool retried(call_kind_t k)
{
    return k == CALL_STATUS_POST || k == CALL_OFFICER_RAISE || k == CALL_OFFICER_SAY;
}

/* Builds the request for x and sends it. The request is serialised before
 * mhtas_client_call returns, so it may live on the stack. */
static int issue(relay_t *r, hub_call_t *x)
{
    int64_t deadline = retried(x->kind) ? CALL_RETRY_DEADLINE_MS : CALL_DEADLINE_MS;
    int rc;
    x->attempts++;
    switch (x->kind) {
    case CALL_SAY:
    case CALL_READBACK:
    case CALL_STATUS_POST:
    case CALL_OFFICER_SAY: {
        Mhtas__V1__PostMessageRequest req = MHTAS__V1__POST_MESSAGE_REQUEST__INIT;
        req.incident_id = x->incident;
        req.text = x->text;
        req.kind = x->kind == CALL_READBACK      ? KIND_(READ_BACK)
                   : x->kind == CALL_STATUS_POST ? KIND_(RADIO_STATUS)
                                                 : KIND_(TEXT);
        req.client_msg_id = x->key;
        rc = mhtas_client_call(r->client, "PostMessage", &req.base, deadline, on_call, x);
        break;
    }
    case CALL_RAISE:
    case CALL_OFFICER_RAISE: {
        Mhtas__V1__RaiseIncidentRequest req = MHTAS__V1__RAISE_INCIDENT_REQUEST__INIT;
        Mhtas__V1__IncidentDetails d = MHTAS__V1__INCIDENT_DETAILS__INIT;
        char *callsigns[1] = { x->callsign };
        d.police_ref = x->police_ref;
        d.callsigns = callsigns;
        d.n_callsigns = 1;
        /* Officers at scene: the threshold decision is made with the
         * practitioner's advice, so it is recorded as under review. */
        d.rcrp = MHTAS__V1__RCRP_DECISION__RCRP_DECISION_UNDER_REVIEW;
        d.rcrp_reason = (char *)"officers at scene; to be decided with the practitioner's advice (radio relay)";
        if (x->kind == CALL_OFFICER_RAISE) {
            d.priority = (Mhtas__V1__Priority)r->cfg.default_priority;
            d.borough = r->cfg.default_borough;
            d.question = x->text;
            d.concerns = (char *)"Raised from an officer's radio text (TETRA SDS) through the radio relay.";
        } else {
            d.priority = (Mhtas__V1__Priority)x->priority;
            d.borough = x->borough;
            d.question = x->text;
        }
        req.details = &d;
        req.idempotency_key = x->key;
        rc = mhtas_client_call(r->client, "RaiseIncident", &req.base, deadline, on_call, x);
        break;
    }
    case CALL_GET_FOR_MSG:
    case CALL_CATCHUP: {
        Mhtas__V1__GetIncidentRequest req = MHTAS__V1__GET_INCIDENT_REQUEST__INIT;
        req.incident_id = x->incident;
        rc = mhtas_client_call(r->client, "GetIncident", &req.base, deadline, on_call, x);
        break;
    }
    case CALL_LIST: {
        Mhtas__V1__ListIncidentsRequest req = MHTAS__V1__LIST_INCIDENTS_REQUEST__INIT;
        rc = mhtas_client_call(r->client, "ListIncidents", &req.base, deadline, on_call, x);
        break;
    }
    case CALL_WHOAMI: {
        Mhtas__V1__WhoAmIRequest req = MHTAS__V1__WHO_AM_IREQUEST__INIT;
        rc = mhtas_client_call(r->client, "WhoAmI", &req.base, deadline, on_call, x);
        break;
    }
    default:
        rc = -1;
    }
    return rc;
}

/* Sends x, or answers its session and frees it when that fails at once. */
static void send_call(relay_t *r, hub_call_t *x)
{
    int rc = issue(r, x);
    if (rc == 0)
        return;
    relay_log("hub: call not sent: %s", mhtas_client_strerror(rc));
    if (x->session_id) {
        char line[160];
        snprintf(line, sizeof line, "ERR INTERNAL the request could not be sent (%s)", mhtas_client_strerror(rc));
        session_reply(r, x->session_id, line);
    }
    call_free(x);
}

void bridge_post_status(relay_t *r, uint64_t incident, const char *key, const char *fmt, ...)
{
    hub_call_t *x = call_new(r, CALL_STATUS_POST, 0);
    if (x == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->text, sizeof x->text, fmt, ap);
    va_end(ap);
    x->incident = incident;
    snprintf(x->key, sizeof x->key, "%s", key);
    send_call(r, x);
}

static void list_incidents(relay_t *r)
{
    hub_call_t *x = call_new(r, CALL_LIST, 0);
    if (x)
        send_call(r, x);
}

/* ------------------------------------------------------------ advice */

/* A practitioner's message on a followed incident: radio parts, or voice. */
static void handle_advice(relay_t *r, track_t *t, const Mhtas__V1__ChatMessage *m)
{
    if (m->number <= t->last_number)
        return; /* seen already (a catch-up overlap) */
    t->last_number = m->number;
    uint64_t arrived = uv_hrtime();
    const char *ref = t->police_ref;
    char refbuf[32];
    if (!ref[0]) {
        snprintf(refbuf, sizeof refbuf, "INC%llu", (unsigned long long)t->id);
        ref = refbuf;
    }
    officer_t *o = relay_officer_by_name(r, t->callsign);
    bool want_radio = r->radio_enabled && o != NULL;

    relay_split_opts_t so = { .callsign = t->callsign, .ref = ref, .max_chars = r->cfg.max_part_chars, .max_parts = 3 };
    relay_split_result_t *sr = malloc(sizeof *sr);
    advice_t *a = calloc(1, sizeof *a);
    if (sr == NULL || a == NULL ||
        (t->n_advices == t->cap_advices &&
         !(t->advices = realloc(t->advices, (t->cap_advices = t->cap_advices ? 2 * t->cap_advices : 4) *
                                                sizeof *t->advices)))) {
        free(sr);
        free(a);
        relay_log("out of memory: advice #%u on incident %llu not handled", m->number, (unsigned long long)t->id);
        session_broadcast(r, "EVENT RELAY_ERROR %llu %u :out of memory: read the advice from the hub",
                          (unsigned long long)t->id, m->number);
        return;
    }
    t->advices[t->n_advices++] = a;
    a->track = t;
    a->number = m->number;
    a->arrived_hr = arrived;
    snprintf(a->callsign, sizeof a->callsign, "%s", t->callsign);
    relay_split(m->text ? m->text : "", &so, sr);
    ob_msg_init(&a->ob, o ? o->conf->issi : 0, a);
    if (sr->status == RELAY_SPLIT_OK)
        for (unsigned i = 0; i < sr->n_parts; i++)
            ob_msg_add_part(&a->ob, sr->parts[i]);

    char key[96];
    if (sr->status != RELAY_SPLIT_OK) {
        relay_log("incident %llu advice #%u (%u characters) not for radio: %s", (unsigned long long)t->id, m->number,
                  sr->normalised_chars, relay_split_status_str(sr->status));
        char line[2 * RELAY_TEXT_MAX];
        one_line(line, sizeof line, m->text ? m->text : "");
        if (r->radio_enabled)
            session_broadcast(r, "EVENT REFUSED %llu %u :%s", (unsigned long long)t->id, m->number,
                              relay_split_status_str(sr->status));
        session_broadcast(r, "EVENT VOICE %llu %u %s :%s", (unsigned long long)t->id, m->number,
                          t->callsign[0] ? t->callsign : "-", line);
        if (r->radio_enabled && sr->status != RELAY_SPLIT_EMPTY) {
            snprintf(key, sizeof key, "relay-%llu-%u-refused", (unsigned long long)t->id, m->number);
            bridge_post_status(r, t->id, key,
                               "Radio: advice #%u is too long for radio, use voice (%u characters; a radio text takes "
                               "at most 3 parts of %u, one instruction at most one part). The dispatcher will read it "
                               "to %s by voice.",
                               m->number, sr->normalised_chars, r->cfg.max_part_chars,
                               t->callsign[0] ? t->callsign : "the officer");
        }
        free(sr);
        return;
    }
    for (unsigned i = 0; i < sr->n_parts; i++)
        session_broadcast(r, "EVENT ADVICE %llu %u/%u :%s", (unsigned long long)t->id, i + 1, sr->n_parts,
                          sr->parts[i]);
    if (!want_radio) {
        char line[2 * RELAY_TEXT_MAX];
        one_line(line, sizeof line, sr->normalised);
        session_broadcast(r, "EVENT VOICE %llu %u %s :%s", (unsigned long long)t->id, m->number,
                          t->callsign[0] ? t->callsign : "-", line);
        if (r->radio_enabled) {
            session_broadcast(r, "EVENT REFUSED %llu %u :callsign %s has no ISSI in the relay's configuration, use voice",
                              (unsigned long long)t->id, m->number, t->callsign[0] ? t->callsign : "(none)");
            snprintf(key, sizeof key, "relay-%llu-%u-noissi", (unsigned long long)t->id, m->number);
            bridge_post_status(r, t->id, key,
                               "Radio: advice #%u not sent as radio text: callsign %s has no radio configured. The "
                               "dispatcher will pass it by voice.",
                               m->number, t->callsign[0] ? t->callsign : "(none)");
        }
        free(sr);
        return;
    }
    free(sr);
    a->radio = true;
    radio_queue(r, a);
}

/* A message event: practitioners' advice on our incidents, and what other
 * people write on them for the dispatcher to see. */
static void handle_message(relay_t *r, const Mhtas__V1__ChatMessage *m)
{
    track_t *t = track_find(r, m->incident_id);
    if (t == NULL) {
        if (foreign_has(r, m->incident_id) || m->from_role != ROLE_(PRACTITIONER))
            return;
        /* never seen (raised before we listed, or a gap): ask the hub */
        hub_call_t *x = call_new(r, CALL_GET_FOR_MSG, 0);
        if (x == NULL)
            return;
        size_t n = mhtas__v1__chat_message__get_packed_size(m);
        uint8_t *buf = malloc(n ? n : 1);
        if (buf) {
            mhtas__v1__chat_message__pack(m, buf);
            x->msg = mhtas__v1__chat_message__unpack(NULL, n, buf);
            free(buf);
        }
        if (x->msg == NULL) {
            call_free(x);
            return;
        }
        x->incident = m->incident_id;
        send_call(r, x);
        return;
    }
    int kind = m->kind ? (int)m->kind : KIND_(TEXT);
    if (m->from_role == ROLE_(PRACTITIONER) && kind == KIND_(TEXT)) {
        handle_advice(r, t, m);
        return;
    }
    if (r->user_id[0] && m->from_user && strcmp(m->from_user, r->user_id) == 0)
        return; /* our own */
    char line[2 * RELAY_TEXT_MAX];
    one_line(line, sizeof line, m->text ? m->text : "");
    const ProtobufCEnumValue *kv = protobuf_c_enum_descriptor_get_value(&mhtas__v1__message_kind__descriptor, kind);
    session_broadcast(r, "EVENT MESSAGE %llu %u %s %s :%s", (unsigned long long)t->id, m->number,
                      m->from_user && m->from_user[0] ? m->from_user : "-",
                      kv ? kv->name + strlen("MESSAGE_KIND_") : "TEXT", line);
}

/* ------------------------------------------------------------ officers' texts */

static void officer_raise(relay_t *r, officer_t *o, const char *text)
{
    hub_call_t *x = call_new(r, CALL_OFFICER_RAISE, 0);
    if (x == NULL)
        return;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[16]; /* DDHHMMSS: short, as it heads every radio part */
    if (strftime(stamp, sizeof stamp, "%d%H%M%S", &tm) == 0)
        stamp[0] = '\0';
    snprintf(x->callsign, sizeof x->callsign, "%s", o->conf->name);
    snprintf(x->police_ref, sizeof x->police_ref, "RADIO-%s-%s", o->conf->name, stamp);
    snprintf(x->key, sizeof x->key, "relay-raise-%u-%llu", o->conf->issi, (unsigned long long)uv_hrtime());
    snprintf(x->text, sizeof x->text, "%s", text);
    o->raising = true;
    send_call(r, x);
}

static void officer_say(relay_t *r, track_t *t, officer_t *o, const char *text)
{
    hub_call_t *x = call_new(r, CALL_OFFICER_SAY, 0);
    if (x == NULL)
        return;
    x->incident = t->id;
    snprintf(x->callsign, sizeof x->callsign, "%s", o->conf->name);
    snprintf(x->key, sizeof x->key, "relay-sds-%u-%llu", o->conf->issi, (unsigned long long)uv_hrtime());
    snprintf(x->text, sizeof x->text, "[%s by radio text] %s", o->conf->name, text);
    send_call(r, x);
}

/* The officer's open incident: the newest open one naming the callsign. */
static track_t *open_track_for(relay_t *r, const char *callsign)
{
    track_t *best = NULL;
    for (track_t *t = r->tracks; t; t = t->next)
        if (strcasecmp(t->callsign, callsign) == 0 && bridge_state_open(t->state) && (!best || t->id > best->id))
            best = t;
    return best;
}

void bridge_officer_text(relay_t *r, uint32_t issi, const char *text)
{
    char line[RELAY_TEXT_MAX];
    one_line(line, sizeof line, text);
    officer_t *o = relay_officer_by_issi(r, issi);
    if (o == NULL) {
        relay_log("radio: text from unknown ISSI %u refused (not in [callsigns]), %zu bytes", issi, strlen(line));
        session_broadcast(r, "EVENT RADIO_REFUSED %u :a text from an ISSI not in the relay's callsigns: not passed on",
                          issi);
        return;
    }
    if (line[0] == '\0') {
        relay_log("radio: empty text from %s (ISSI %u) ignored", o->conf->name, issi);
        return;
    }
    track_t *t = open_track_for(r, o->conf->name);
    relay_log("radio: text from %s (ISSI %u), %zu bytes, for %s", o->conf->name, issi, strlen(line),
              t ? "its open incident" : o->raising ? "the incident being raised" : "a new incident");
    if (t) {
        session_broadcast(r, "EVENT RADIO_IN %s %llu :%s", o->conf->name, (unsigned long long)t->id, line);
        officer_say(r, t, o, line);
        return;
    }
    session_broadcast(r, "EVENT RADIO_IN %s - :%s", o->conf->name, line);
    if (o->raising) { /* the first text's incident is being raised: this one follows it */
        if (o->n_pending < RELAY_PENDING_TEXTS && (o->pending[o->n_pending] = strdup(line)) != NULL) {
            o->n_pending++;
        } else {
            relay_log("radio: too many texts from %s while its incident is raised: one not passed on", o->conf->name);
            session_broadcast(r, "EVENT RADIO_ERROR %s :too many texts while the incident is raised: one was not "
                                 "passed on, ask the officer again",
                              o->conf->name);
        }
        return;
    }
    officer_raise(r, o, line);
}

/* ------------------------------------------------------------ dispatcher commands */

void bridge_raise(relay_t *r, uint64_t session_id, const char *police_ref, const char *borough, const char *callsign,
                  int priority, const char *question)
{
    hub_call_t *x = call_new(r, CALL_RAISE, session_id);
    if (x == NULL) {
        session_reply(r, session_id, "ERR INTERNAL out of memory");
        return;
    }
    snprintf(x->police_ref, sizeof x->police_ref, "%s", police_ref);
    snprintf(x->callsign, sizeof x->callsign, "%s", callsign);
    snprintf(x->borough, sizeof x->borough, "%s", borough);
    x->priority = priority;
    snprintf(x->text, sizeof x->text, "%s", question);
    snprintf(x->key, sizeof x->key, "relay-cmd-raise-%llu", (unsigned long long)uv_hrtime());
    send_call(r, x);
}

void bridge_say(relay_t *r, uint64_t session_id, track_t *t, const char *text)
{
    hub_call_t *x = call_new(r, CALL_SAY, session_id);
    if (x == NULL) {
        session_reply(r, session_id, "ERR INTERNAL out of memory");
        return;
    }
    x->incident = t->id;
    snprintf(x->text, sizeof x->text, "[%s] %s", t->callsign[0] ? t->callsign : "officer", text);
    snprintf(x->key, sizeof x->key, "relay-cmd-say-%llu", (unsigned long long)uv_hrtime());
    send_call(r, x);
}

void bridge_readback(relay_t *r, uint64_t session_id, track_t *t, unsigned part, const char *note)
{
    char line[200];
    if (t->n_advices == 0) {
        snprintf(line, sizeof line, "ERR NO_ADVICE incident %llu has no advice from the practitioner yet",
                 (unsigned long long)t->id);
        session_reply(r, session_id, line);
        return;
    }
    advice_t *a = t->advices[t->n_advices - 1];
    if (part > a->ob.n_parts) {
        if (a->ob.n_parts == 0)
            snprintf(line, sizeof line, "ERR BAD_ARG advice #%u went by voice: read back 'all'", a->number);
        else
            snprintf(line, sizeof line, "ERR BAD_ARG advice #%u has %u part%s", a->number, a->ob.n_parts,
                     a->ob.n_parts == 1 ? "" : "s");
        session_reply(r, session_id, line);
        return;
    }
    hub_call_t *x = call_new(r, CALL_READBACK, session_id);
    if (x == NULL) {
        session_reply(r, session_id, "ERR INTERNAL out of memory");
        return;
    }
    char what[64];
    if (part)
        snprintf(what, sizeof what, "part %u/%u", part, a->ob.n_parts);
    else if (a->ob.n_parts && a->radio)
        snprintf(what, sizeof what, "all %u part%s, by radio text", a->ob.n_parts, a->ob.n_parts == 1 ? "" : "s");
    else
        snprintf(what, sizeof what, "by voice");
    int w = snprintf(x->text, sizeof x->text,
                     "Read-back confirmed: %s read back advice #%u (%s) to the radio dispatcher.",
                     t->callsign[0] ? t->callsign : "the officer", a->number, what);
    if (note[0] && w > 0 && (size_t)w < sizeof x->text)
        snprintf(x->text + w, sizeof x->text - (size_t)w, " Note: %s", note);
    x->incident = t->id;
    x->number = a->number;
    x->part = part;
    snprintf(x->key, sizeof x->key, "relay-%llu-%u-readback-%u", (unsigned long long)t->id, a->number, part);
    send_call(r, x);
}

/* ------------------------------------------------------------ call results */

static bool transient(int status)
{
    return status == MHTAS_GRPC_UNAVAILABLE || status == MHTAS_GRPC_DEADLINE_EXCEEDED ||
           status == MHTAS_GRPC_ABORTED;
}

static void reply_err(relay_t *r, hub_call_t *x, int status, const char *message)
{
    char m[512], line[640];
    one_line(m, sizeof m, message);
    snprintf(line, sizeof line, "ERR HUB_%s %s", mhtas_client_status_name(status),
             m[0] ? m : "the hub refused the request");
    session_reply(r, x->session_id, line);
}

static void officer_raised(relay_t *r, hub_call_t *x, int status, const char *message, const ProtobufCMessage *resp)
{
    officer_t *o = relay_officer_by_name(r, x->callsign);
    if (o)
        o->raising = false;
    track_t *t = NULL;
    if (status == MHTAS_GRPC_OK) {
        const Mhtas__V1__RaiseIncidentResponse *rr = (const void *)resp;
        if (rr->incident)
            t = track_ensure(r, rr->incident, x->callsign);
        relay_log("radio: %s's text raised incident %llu", x->callsign, (unsigned long long)(t ? t->id : 0));
        session_broadcast(r, "EVENT RAISED %llu %s :from %s's radio text", (unsigned long long)(t ? t->id : 0),
                          t && t->police_ref[0] ? t->police_ref : "-", x->callsign);
    } else {
        relay_log("radio: raising an incident for %s's text failed: %s", x->callsign,
                  mhtas_client_status_name(status));
        char m[300];
        one_line(m, sizeof m, message);
        session_broadcast(r, "EVENT RADIO_ERROR %s :could not raise an incident for the officer's text: %s %s",
                          x->callsign, mhtas_client_status_name(status), m);
    }
    if (o) {
        for (unsigned i = 0; i < o->n_pending; i++) {
            if (t)
                officer_say(r, t, o, o->pending[i]);
            free(o->pending[i]);
        }
        o->n_pending = 0;
    }
}

static void on_call(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    hub_call_t *x = ctx;
    relay_t *r = x->r;
    if (r->closing && status == MHTAS_GRPC_CANCELLED)
        goto out;
    if (status != MHTAS_GRPC_OK && transient(status) && retried(x->kind)) {
        /* the hub is away or slow: keep it, try again from bridge_tick */
        if (x->attempts == 1 || x->attempts % 10 == 0)
            relay_log("hub: %s for incident %llu not through yet (%s): retrying", x->kind == CALL_STATUS_POST ? "radio status"
                      : x->kind == CALL_OFFICER_RAISE ? "an officer's first text"
                                                      : "an officer's text",
                      (unsigned long long)x->incident, mhtas_client_status_name(status));
        x->next_retry = r->retry_head;
        r->retry_head = x;
        return;
    }
    switch (x->kind) {
    case CALL_WHOAMI:
        if (status == MHTAS_GRPC_OK) {
            const Mhtas__V1__WhoAmIResponse *w = (const void *)resp;
            if (w->user) {
                snprintf(r->user_id, sizeof r->user_id, "%s", w->user->id);
                if (w->user->role != ROLE_(DISPATCHER))
                    relay_log("hub: warning: %s is not a dispatcher", w->user->id);
            }
            relay_log("hub: connected as %s", r->user_id);
        } else {
            relay_log("hub: WhoAmI failed: %s", mhtas_client_status_name(status));
        }
        break;
    case CALL_LIST:
        if (status == MHTAS_GRPC_OK) {
            const Mhtas__V1__ListIncidentsResponse *l = (const void *)resp;
            bool gap = r->listed;
            for (size_t i = 0; i < l->n_incidents; i++) {
                const Mhtas__V1__Incident *inc = l->incidents[i];
                if (!is_ours(r, inc)) {
                    foreign_add(r, inc->id);
                    continue;
                }
                track_t *t = track_ensure(r, inc, NULL);
                if (t && gap) { /* read it, for advice missed in the gap */
                    hub_call_t *c = call_new(r, CALL_CATCHUP, 0);
                    if (c) {
                        c->incident = t->id;
                        send_call(r, c);
                    }
                }
            }
            r->listed = true;
        } else {
            relay_log("hub: ListIncidents failed: %s", mhtas_client_status_name(status));
        }
        break;
    case CALL_RAISE:
        if (status != MHTAS_GRPC_OK) {
            reply_err(r, x, status, message);
            break;
        }
        {
            const Mhtas__V1__RaiseIncidentResponse *rr = (const void *)resp;
            track_t *t = rr->incident ? track_ensure(r, rr->incident, x->callsign) : NULL;
            char line[200];
            snprintf(line, sizeof line, "OK RAISED %llu %s", (unsigned long long)(t ? t->id : 0),
                     t ? bridge_state_name(t->state) : "-");
            if (t && r->radio_enabled && !relay_officer_by_name(r, x->callsign)) {
                char two[400];
                snprintf(two, sizeof two,
                         "WARN callsign %s has no ISSI configured: advice for it goes by voice only\n%s", x->callsign,
                         line);
                session_reply(r, x->session_id, two);
            } else {
                session_reply(r, x->session_id, line);
            }
        }
        break;
    case CALL_SAY:
    case CALL_READBACK:
        if (status != MHTAS_GRPC_OK) {
            reply_err(r, x, status, message);
            break;
        }
        {
            const Mhtas__V1__PostMessageResponse *pr = (const void *)resp;
            char line[160];
            if (x->kind == CALL_READBACK) {
                track_t *t = track_find(r, x->incident);
                for (size_t i = 0; t && i < t->n_advices; i++)
                    if (t->advices[i]->number == x->number && x->part == 0)
                        t->advices[i]->read_back = true;
                relay_log("incident %llu advice #%u: read-back recorded", (unsigned long long)x->incident, x->number);
                snprintf(line, sizeof line, "OK READBACK %llu %u %u", (unsigned long long)x->incident, x->number,
                         pr->message ? pr->message->number : 0);
            } else {
                snprintf(line, sizeof line, "OK SAID %llu %u", (unsigned long long)x->incident,
                         pr->message ? pr->message->number : 0);
            }
            session_reply(r, x->session_id, line);
        }
        break;
    case CALL_STATUS_POST:
        if (status != MHTAS_GRPC_OK)
            relay_log("hub: radio status on incident %llu not recorded: %s", (unsigned long long)x->incident,
                      mhtas_client_status_name(status));
        break;
    case CALL_OFFICER_RAISE:
        officer_raised(r, x, status, message, resp);
        break;
    case CALL_OFFICER_SAY:
        if (status != MHTAS_GRPC_OK) {
            relay_log("radio: %s's text not posted on incident %llu: %s", x->callsign, (unsigned long long)x->incident,
                      mhtas_client_status_name(status));
            char m[300];
            one_line(m, sizeof m, message);
            session_broadcast(r, "EVENT RADIO_ERROR %s :the officer's text was not posted on incident %llu: %s %s",
                              x->callsign, (unsigned long long)x->incident, mhtas_client_status_name(status), m);
        }
        break;
    case CALL_GET_FOR_MSG:
    case CALL_CATCHUP:
        if (status == MHTAS_GRPC_OK) {
            const Mhtas__V1__GetIncidentResponse *g = (const void *)resp;
            const Mhtas__V1__Incident *inc = g->incident;
            if (inc == NULL)
                break;
            if (x->kind == CALL_GET_FOR_MSG) {
                if (!is_ours(r, inc)) {
                    foreign_add(r, inc->id);
                    break;
                }
                bool fresh = track_find(r, inc->id) == NULL;
                track_t *t = track_ensure(r, inc, NULL);
                /* the snapshot holds this message: it must not count as seen */
                if (t && fresh && t->last_number >= x->msg->number)
                    t->last_number = x->msg->number - 1;
                if (t)
                    handle_advice(r, t, x->msg);
            } else {
                track_t *t = track_find(r, inc->id);
                for (size_t i = 0; t && i < inc->n_messages; i++) {
                    const Mhtas__V1__ChatMessage *m = inc->messages[i];
                    int kind = m->kind ? (int)m->kind : KIND_(TEXT);
                    if (m->from_role == ROLE_(PRACTITIONER) && kind == KIND_(TEXT) && m->number > t->last_number)
                        handle_advice(r, t, m);
                }
            }
        }
        break;
    }
out:
    call_free(x);
}

/* ------------------------------------------------------------ hub events */

static void on_event(void *ctx, const Mhtas__V1__Event *ev)
{
    relay_t *r = ctx;
    switch (ev->kind_case) {
    case MHTAS__V1__EVENT__KIND_INCIDENT: {
        const Mhtas__V1__Incident *inc = ev->incident ? ev->incident->incident : NULL;
        if (inc == NULL)
            break;
        if (is_ours(r, inc))
            track_ensure(r, inc, NULL);
        else
            foreign_add(r, inc->id);
        break;
    }
    case MHTAS__V1__EVENT__KIND_MESSAGE:
        if (ev->message)
            handle_message(r, ev->message);
        break;
    case MHTAS__V1__EVENT__KIND_NOTICE:
        if (ev->notice && ev->notice->kind == MHTAS__V1__NOTICE_KIND__NOTICE_KIND_RESUME_GAP) {
            relay_log("hub: events were lost (resume gap): reloading the incidents");
            session_broadcast(r, "EVENT HUB GAP :events were lost; the relay reloads its incidents");
            list_incidents(r);
        } else if (ev->notice && track_find(r, ev->notice->incident_id)) {
            char t[512];
            one_line(t, sizeof t, ev->notice->text ? ev->notice->text : "");
            session_broadcast(r, "EVENT NOTICE %llu :%s", (unsigned long long)ev->notice->incident_id, t);
        }
        break;
    default:
        break;
    }
}

static void flush_retries(relay_t *r)
{
    hub_call_t *x = r->retry_head;
    r->retry_head = NULL;
    while (x) {
        hub_call_t *next = x->next_retry;
        x->next_retry = NULL;
        send_call(r, x);
        x = next;
    }
}

static void on_state(void *ctx, mhtas_client_state_t st, const char *reason, uint64_t retry_in)
{
    relay_t *r = ctx;
    bool was = r->hub_ready;
    r->hub_ready = st == MHTAS_CLIENT_READY;
    if (st == MHTAS_CLIENT_READY) {
        relay_log("hub: connected to %s:%u", r->cfg.hub_host, r->cfg.hub_port);
        session_broadcast(r, "EVENT HUB UP");
        hub_call_t *x = call_new(r, CALL_WHOAMI, 0);
        if (x)
            send_call(r, x);
        if (!r->listed)
            list_incidents(r);
        flush_retries(r);
    } else if (st == MHTAS_CLIENT_DISCONNECTED && was) {
        relay_log("hub: disconnected (%s), reconnecting in %llu ms", reason, (unsigned long long)retry_in);
        session_broadcast(r, "EVENT HUB DOWN :%s", reason);
        r->hub_failures = 0;
    } else if (st == MHTAS_CLIENT_DISCONNECTED) {
        /* still not there: say so now and then, not on every attempt */
        if (r->hub_failures++ % 20 == 0)
            relay_log("hub: %s:%u not reachable (%s), still trying", r->cfg.hub_host, r->cfg.hub_port, reason);
    }
}

static void on_stream_end(void *ctx, int status, const char *message)
{
    relay_t *r = ctx;
    if (r->closing)
        return;
    char m[300];
    one_line(m, sizeof m, message);
    relay_log("hub: the event stream ended for good: %s", mhtas_client_status_name(status));
    session_broadcast(r, "EVENT HUB ERROR :the hub refused the event stream: %s %s", mhtas_client_status_name(status),
                      m);
}

/* ------------------------------------------------------------ lifecycle */

int bridge_start(relay_t *r)
{
    for (unsigned i = 0; i < r->cfg.n_callsigns; i++)
        r->officers[i].conf = &r->cfg.callsigns[i];
    mhtas_client_options_t o = { 0 };
    o.host = r->cfg.hub_host;
    o.port = (int)r->cfg.hub_port;
    o.token = r->cfg.token;
    o.on_state = on_state;
    o.on_event = on_event;
    o.on_stream_end = on_stream_end;
    o.ctx = r;
    r->client = mhtas_client_new(r->loop, &o);
    if (r->client == NULL)
        return -1;
    if (mhtas_client_start(r->client) < 0 || mhtas_client_subscribe(r->client, 0) < 0)
        return -1;
    return 0;
}

void bridge_tick(relay_t *r)
{
    if (r->retry_head && r->hub_ready)
        flush_retries(r);
    prune_tracks(r);
}

static void on_client_closed(void *ctx)
{
    relay_t *r = ctx;
    mhtas_client_free(r->client);
    r->client = NULL;
}

void bridge_stop(relay_t *r)
{
    unsigned n = 0;
    for (hub_call_t *x = r->retry_head; x; x = x->next_retry)
        n++;
    if (n)
        relay_log("hub: stopping with %u message(s) not yet recorded by the hub", n);
    if (r->client)
        mhtas_client_close(r->client, on_client_closed, r);
}

void bridge_free(relay_t *r)
{
    while (r->retry_head) {
        hub_call_t *x = r->retry_head;
        r->retry_head = x->next_retry;
        call_free(x);
    }
    while (r->tracks) {
        track_t *t = r->tracks;
        r->tracks = t->next;
        free_track(t);
    }
    for (unsigned i = 0; i < r->cfg.n_callsigns; i++)
        for (unsigned k = 0; k < r->officers[i].n_pending; k++)
            free(r->officers[i].pending[k]);
    free(r->foreign);
    if (r->client) { /* the loop ended before the close callback */
        mhtas_client_free(r->client);
        r->client = NULL;
    }
}
