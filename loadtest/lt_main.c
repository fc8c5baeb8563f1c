/* lt_main.c -- bin/mhtas-loadtest: an open-loop load generator for the hub.
 *
 * One process, one libuv loop. N operators speak the console's binary
 * WebSocket protocol (lt_ws.c), M practitioners speak gRPC through the
 * project's client library (client/lib/mhtas_client.h); all sign in through
 * the real API. Arrivals follow a schedule fixed in advance (Poisson or a
 * fixed interval): each request has an intended send time, and latency is
 * measured from it, so a hub that stalls is charged for every request that
 * should have gone out during the stall (no coordinated omission). The
 * sender's own lateness is reported separately ("send lag").
 *
 * Legs (each its own histogram, microseconds, lt_hist.h):
 *   raise -> offer        operator RaiseIncident sent (WS) .. Offer event on a
 *                         practitioner's gRPC stream
 *   accept -> accepted    practitioner Accept sent (gRPC, at once on the offer)
 *                         .. IncidentUpdate ACCEPTED on the raising operator's socket
 *   msg op -> pr          PostMessage on the WS .. ChatMessage on the holder's stream
 *   msg pr -> op          PostMessage over gRPC .. ChatMessage on the operator's socket
 *   agree -> durable ack  AgreeOutcome sent (WS, on seeing OUTCOME_PROPOSED)
 *                         .. its reply with durable = true
 *   floor op -> pr / pr -> op   the same shape through a byte relay (lt_floor.c)
 *
 * The driver is written as straight-line code that pumps the loop
 * (uv_run ONCE) until a condition or a deadline: phases follow each other
 * (set-up, idle connections, floor, hub load or saturation steps, memory
 * probe), and nothing else runs on this loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <uv.h>

#include "lib/mhtas_client.h"
#include "mhtas/v1/hub.pb-c.h"
#include "mhtas/v1/ws.pb-c.h"

#include "lt_floor.h"
#include "lt_hist.h"
#include "lt_ws.h"

#define NS_PER_S 1000000000ull
#define WS_SUBPROTOCOL "mhtas.v1.proto"
#define MAX_TEXT 4000

/* ================================================================ scenario */

typedef struct scen {
    char name[64];
    int operators, practitioners, idle;
    double raise_rate, msg_rate; /* per second; msg_rate in each direction */
    int poisson;
    double warmup_s, duration_s, drain_s;
    double surge_factor, surge_start_s, surge_duration_s;
    int floor;
    double floor_duration_s; /* 0: duration_s */
    int saturation;
    double sat_bound_ms, sat_start, sat_step;
    int sat_max_steps;
    int mem_incidents;
    int capacity;
    int text_bytes;
    char strategy[32];
    double seed;
} scen_t;

typedef struct opt_row {
    const char *key;
    char type; /* i int, d double, s string */
    size_t off;
    size_t size;
    const char *help;
} opt_row_t;

#define ROW(k, t, f, h) { k, t, offsetof(scen_t, f), sizeof(((scen_t *)0)->f), h }
static const opt_row_t OPTS[] = {
    ROW("name", 's', name, "scenario name, for the report"),
    ROW("operators", 'i', operators, "operators on the WebSocket, each subscribed"),
    ROW("practitioners", 'i', practitioners, "practitioners on gRPC, on shift"),
    ROW("idle_connections", 'i', idle, "extra authenticated, unsubscribed console sockets held open"),
    ROW("raise_rate", 'd', raise_rate, "incidents raised per second (each accepted, outcome proposed, agreed)"),
    ROW("message_rate", 'd', msg_rate, "conversation messages per second in EACH direction"),
    ROW("poisson", 'i', poisson, "1: Poisson arrivals; 0: fixed interval"),
    ROW("warmup_s", 'd', warmup_s, "seconds of load before measuring"),
    ROW("duration_s", 'd', duration_s, "seconds measured"),
    ROW("drain_s", 'd', drain_s, "longest wait for replies after the window; what is still missing is lost"),
    ROW("surge_factor", 'd', surge_factor, "rate multiplier during the surge (1: none)"),
    ROW("surge_start_s", 'd', surge_start_s, "surge start, seconds into the measured window"),
    ROW("surge_duration_s", 'd', surge_duration_s, "surge length in seconds"),
    ROW("floor", 'i', floor, "1: measure the floor relay first, at the message rate"),
    ROW("floor_duration_s", 'd', floor_duration_s, "floor measured seconds (0: duration_s)"),
    ROW("saturation", 'i', saturation, "1: raise the rates in steps until p99 crosses sat_bound_ms"),
    ROW("sat_bound_ms", 'd', sat_bound_ms, "p99 bound (worst hub leg) for saturation"),
    ROW("sat_start", 'd', sat_start, "first step's rate multiplier"),
    ROW("sat_step", 'd', sat_step, "multiplier between steps"),
    ROW("sat_max_steps", 'i', sat_max_steps, "most steps"),
    ROW("mem_incidents", 'i', mem_incidents, "open incidents raised at the end to measure memory (0: skip)"),
    ROW("capacity", 'i', capacity, "practitioners' capacity in the generated users file (1..50)"),
    ROW("text_bytes", 'i', text_bytes, "bytes of each conversation message"),
    ROW("strategy", 's', strategy, "routing strategy in the generated config"),
    ROW("seed", 'd', seed, "random seed for arrivals (0: from the clock)"),
};
#undef ROW

static void scen_defaults(scen_t *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "default");
    s->operators = 4;
    s->practitioners = 8;
    s->raise_rate = 10;
    s->msg_rate = 100;
    s->poisson = 1;
    s->warmup_s = 2;
    s->duration_s = 10;
    s->drain_s = 5;
    s->surge_factor = 1;
    s->floor = 1;
    s->sat_bound_ms = 10;
    s->sat_start = 1;
    s->sat_step = 2;
    s->sat_max_steps = 8;
    s->mem_incidents = 1000;
    s->capacity = 50;
    s->text_bytes = 160;
    snprintf(s->strategy, sizeof s->strategy, "leastrecent");
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

/* Sets one key; returns 0 or -1 with a message on stderr. */
static int scen_set(scen_t *s, const char *key, const char *val, const char *where)
{
    for (size_t i = 0; i < sizeof OPTS / sizeof OPTS[0]; i++) {
        const opt_row_t *o = &OPTS[i];
        if (strcmp(o->key, key) != 0)
            continue;
        char *end = NULL;
        char *p = (char *)s + o->off;
        if (o->type == 'i') {
            long v = strtol(val, &end, 10);
            if (!*val || *end) {
                fprintf(stderr, "%s: %s: \"%s\" is not a whole number\n", where, key, val);
                return -1;
            }
            *(int *)p = (int)v;
        } else if (o->type == 'd') {
            double v = strtod(val, &end);
            if (!*val || *end || v < 0) {
                fprintf(stderr, "%s: %s: \"%s\" is not a number >= 0\n", where, key, val);
                return -1;
            }
            *(double *)p = v;
        } else {
            snprintf(p, o->size, "%s", val);
        }
        return 0;
    }
    fprintf(stderr, "%s: unknown key \"%s\" (see --help)\n", where, key);
    return -1;
}

/* key = value lines; '#' or ';' starts a comment line. */
static int scen_load(scen_t *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[512], where[600];
    int ln = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *t = trim(line);
        if (!*t || *t == '#' || *t == ';')
            continue;
        char *eq = strchr(t, '=');
        snprintf(where, sizeof where, "%s:%d", path, ln);
        if (!eq) {
            fprintf(stderr, "%s: expected key = value\n", where);
            rc = -1;
            break;
        }
        *eq = 0;
        char *v = trim(eq + 1);
        char *hash = strstr(v, " #");
        if (hash)
            *hash = 0;
        if (scen_set(s, trim(t), trim(v), where) < 0) {
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

/* ================================================================ state */

enum {
    L_RAISE_OFFER,
    L_ACCEPT,
    L_MSG_OP_PR,
    L_MSG_PR_OP,
    L_AGREE,
    L_FLOOR_OP_PR,
    L_FLOOR_PR_OP,
    L_COUNT
};
static const char *LEG_NAME[L_COUNT] = {
    "raise -> offer", "accept -> accepted", "msg op -> pr", "msg pr -> op",
    "agree -> durable ack", "floor op -> pr", "floor pr -> op",
};
static const char *LEG_KEY[L_COUNT] = {
    "raise_offer", "accept_accepted", "msg_op_pr", "msg_pr_op",
    "agree_durable", "floor_op_pr", "floor_pr_op",
};

enum { E_LOST = 17, E_NOT_DURABLE = 18, E_SEND = 19, NERR = 20 };
static const char *err_name(int e)
{
    if (e == E_LOST)
        return "LOST";
    if (e == E_NOT_DURABLE)
        return "NOT_DURABLE";
    if (e == E_SEND)
        return "SEND_FAILED";
    return mhtas_client_status_name(e);
}

typedef struct leg {
    lt_hist_t h;
    uint64_t sent, ok;
    uint64_t err[NERR];
} leg_t;

typedef struct result {
    char label[64];
    double mult;
    double duration_s;
    leg_t legs[L_COUNT];
    lt_hist_t lag;          /* actual - intended send time */
    double hub_cpu_s;       /* utime + stime over the window; < 0: unknown */
    long rss_kb_end;
    int idle_dropped;
    /* per second of the window (by intended time): replies and the worst
     * latency of any hub leg, to see stalls */
    int n_secs;
    uint32_t sec_done[3600];
    uint32_t sec_max_us[3600];
} result_t;

enum { G_RAISE, G_MSG_OP, G_MSG_PR, G_FLOOR_A, G_FLOOR_B, G_COUNT };

typedef struct gen {
    bool on;
    double rate;     /* base per second, before the multiplier and surge */
    uint64_t next_ns;
    uint64_t n;
} gen_t;

typedef struct op {
    int idx;
    char id[64], token[128];
    lt_ws_t *ws;
    bool authed, subscribed, dead;
} op_t;

typedef struct pr {
    int idx;
    char id[64], token[128];
    mhtas_client_t *c;
    bool shift_ok, got_event, closed;
} pr_t;

typedef struct conv {
    uint64_t id;
    int owner, holder;
} conv_t;

typedef struct idle {
    lt_ws_t *ws;
    bool authed, closed;
} idle_t;

typedef struct ient {
    uint64_t id;
    uint64_t accept_ns;
    int owner;
} ient_t;

static struct {
    scen_t sc;
    uv_loop_t *loop;
    uv_timer_t tick;
    uv_poll_t pacer_poll;
    int tfd;
    uint64_t rng;
    const char *hub_bin;
    char tmp[256];
    bool keep_tmp, own_hub, verbose, json_stdout;
    pid_t hub_pid;
    int grpc_port, http_port;
    char borough[64];
    char idle_token[128];
    op_t *ops;
    int n_ops;
    pr_t *prs;
    int n_prs;
    conv_t *convs;
    int n_convs, cap_convs;
    int conv_accepts_failed;
    idle_t *idles;
    int n_idle, idle_open, idle_authed, idle_closed;
    ient_t *itab;
    size_t itab_cap, itab_n;
    lt_floor_t *floor;
    /* the current phase */
    gen_t gens[G_COUNT];
    double mult;
    uint64_t phase_start, win_start, win_end;
    result_t *cur;
    uint64_t misc_err[NERR];
    uint64_t mem_raised, mem_failed;
    char text[MAX_TEXT + 1];
    bool closing;
} g;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mhtas-loadtest: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (g.hub_pid > 0 && g.own_hub)
        kill(g.hub_pid, SIGKILL);
    exit(2);
}

static void logf_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[loadtest] ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ================================================================ legs */

static bool in_window(uint64_t intended)
{
    return g.cur && intended >= g.win_start && intended < g.win_end;
}

static void leg_sent(int l, uint64_t intended)
{
    if (in_window(intended))
        g.cur->legs[l].sent++;
}

static void leg_done(int l, uint64_t intended, uint64_t now)
{
    if (!in_window(intended))
        return;
    leg_t *lg = &g.cur->legs[l];
    uint64_t us = now > intended ? (now - intended) / 1000 : 0;
    lg->ok++;
    lt_hist_record(&lg->h, us);
    uint64_t sec = (intended - g.win_start) / NS_PER_S;
    if (sec < 3600) {
        g.cur->sec_done[sec]++;
        if (us > g.cur->sec_max_us[sec])
            g.cur->sec_max_us[sec] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    }
}

static void leg_error(int l, uint64_t intended, int code)
{
    if (code < 0 || code >= NERR)
        code = MHTAS_GRPC_UNKNOWN;
    if (l < 0) {
        g.misc_err[code]++;
        return;
    }
    if (in_window(intended))
        g.cur->legs[l].err[code]++;
}

static uint64_t leg_errors(const leg_t *lg)
{
    uint64_t n = 0;
    for (int i = 0; i < NERR; i++)
        n += lg->err[i];
    return n;
}

/* ================================================================ incident table */

/* Incident id -> (raising operator, accept send time). Open addressing,
 * never deleted: a run raises at most a few hundred thousand incidents. */
static ient_t *itab_slot(uint64_t id)
{
    size_t m = g.itab_cap - 1, i = (size_t)(id * 0x9e3779b97f4a7c15ull) & m;
    while (g.itab[i].id && g.itab[i].id != id)
        i = (i + 1) & m;
    return &g.itab[i];
}

static ient_t *itab_put(uint64_t id)
{
    if ((g.itab_n + 1) * 2 > g.itab_cap) {
        ient_t *old = g.itab;
        size_t oc = g.itab_cap;
        g.itab_cap = oc ? oc * 2 : 4096;
        g.itab = calloc(g.itab_cap, sizeof *g.itab);
        for (size_t i = 0; i < oc; i++)
            if (old[i].id)
                *itab_slot(old[i].id) = old[i];
        free(old);
    }
    ient_t *e = itab_slot(id);
    if (!e->id) {
        e->id = id;
        g.itab_n++;
    }
    return e;
}

static ient_t *itab_get(uint64_t id)
{
    if (!g.itab_cap)
        return NULL;
    ient_t *e = itab_slot(id);
    return e->id ? e : NULL;
}

/* ================================================================ random */

static double rnd01(void)
{
    uint64_t x = g.rng;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    g.rng = x;
    return ((double)(x >> 11) + 0.5) / 9007199254740992.0;
}

/* ================================================================ operators (WebSocket) */

static void ws_send_frame(lt_ws_t *ws, Mhtas__V1__ClientFrame *cf)
{
    uint8_t stackbuf[8192];
    size_t n = mhtas__v1__client_frame__get_packed_size(cf);
    uint8_t *b = n <= sizeof stackbuf ? stackbuf : malloc(n);
    mhtas__v1__client_frame__pack(cf, b);
    lt_ws_send(ws, b, n);
    if (b != stackbuf)
        free(b);
}

static void fill_details(Mhtas__V1__IncidentDetails *d, Mhtas__V1__Person *p, const char *ref)
{
    d->police_ref = (char *)ref;
    d->priority = MHTAS__V1__PRIORITY__PRIORITY_URGENT;
    d->borough = g.borough;
    d->place = "outside the library, Market Street";
    p->family_name = "Loadtest";
    p->given_names = "Sam";
    p->age_years = 34;
    d->person = p;
    d->concerns = "Person on the bridge parapet, distressed, says they have stopped their medication; "
                  "known to services per the caller.";
    d->question = "Is the person known to the crisis team, and is s136 appropriate here?";
    d->rcrp = MHTAS__V1__RCRP_DECISION__RCRP_DECISION_UNDER_REVIEW;
}

/* Raises one incident; tag is "LT" (load), "CV" (conversation) or "MEM". */
static int op_raise(op_t *o, const char *tag, uint64_t intended)
{
    if (!o->subscribed || !lt_ws_is_open(o->ws))
        return -1;
    char ref[64], rid[40];
    snprintf(ref, sizeof ref, "%s-%d-%llu", tag, o->idx, (unsigned long long)intended);
    snprintf(rid, sizeof rid, "%c%llu", tag[0] == 'L' ? 'R' : tag[0] == 'C' ? 'C' : 'X',
             (unsigned long long)intended);
    Mhtas__V1__RaiseIncidentRequest req = MHTAS__V1__RAISE_INCIDENT_REQUEST__INIT;
    Mhtas__V1__IncidentDetails d = MHTAS__V1__INCIDENT_DETAILS__INIT;
    Mhtas__V1__Person p = MHTAS__V1__PERSON__INIT;
    fill_details(&d, &p, ref);
    req.details = &d;
    req.idempotency_key = ref;
    Mhtas__V1__ClientFrame cf = MHTAS__V1__CLIENT_FRAME__INIT;
    cf.request_id = rid;
    cf.body_case = MHTAS__V1__CLIENT_FRAME__BODY_RAISE_INCIDENT;
    cf.raise_incident = &req;
    ws_send_frame(o->ws, &cf);
    return 0;
}

static int op_post(op_t *o, uint64_t incident, uint64_t intended)
{
    if (!o->subscribed || !lt_ws_is_open(o->ws))
        return -1;
    char rid[40], cmid[40];
    snprintf(rid, sizeof rid, "M%llu", (unsigned long long)intended);
    snprintf(cmid, sizeof cmid, "O%llu", (unsigned long long)intended);
    Mhtas__V1__PostMessageRequest req = MHTAS__V1__POST_MESSAGE_REQUEST__INIT;
    req.incident_id = incident;
    req.text = g.text;
    req.client_msg_id = cmid;
    Mhtas__V1__ClientFrame cf = MHTAS__V1__CLIENT_FRAME__INIT;
    cf.request_id = rid;
    cf.body_case = MHTAS__V1__CLIENT_FRAME__BODY_POST_MESSAGE;
    cf.post_message = &req;
    ws_send_frame(o->ws, &cf);
    return 0;
}

static void op_agree(op_t *o, uint64_t incident)
{
    uint64_t now = uv_hrtime();
    leg_sent(L_AGREE, now);
    if (!lt_ws_is_open(o->ws)) {
        leg_error(L_AGREE, now, E_SEND);
        return;
    }
    char rid[40], key[40];
    snprintf(rid, sizeof rid, "A%llu", (unsigned long long)now);
    snprintf(key, sizeof key, "agree-%llu", (unsigned long long)incident);
    Mhtas__V1__AgreeOutcomeRequest req = MHTAS__V1__AGREE_OUTCOME_REQUEST__INIT;
    req.incident_id = incident;
    req.agree = 1;
    req.idempotency_key = key;
    Mhtas__V1__ClientFrame cf = MHTAS__V1__CLIENT_FRAME__INIT;
    cf.request_id = rid;
    cf.body_case = MHTAS__V1__CLIENT_FRAME__BODY_AGREE_OUTCOME;
    cf.agree_outcome = &req;
    ws_send_frame(o->ws, &cf);
}

/* "LT-<op>-<ns>": the raising operator's index, or -1. */
static int ref_owner(const Mhtas__V1__Incident *inc, const char *tag)
{
    if (!inc || !inc->details || !inc->details->police_ref)
        return -1;
    size_t tl = strlen(tag);
    const char *r = inc->details->police_ref;
    if (strncmp(r, tag, tl) != 0 || r[tl] != '-')
        return -1;
    return atoi(r + tl + 1);
}

static void op_event(op_t *o, const Mhtas__V1__Event *ev, uint64_t now)
{
    if (ev->kind_case == MHTAS__V1__EVENT__KIND_INCIDENT && ev->incident) {
        const Mhtas__V1__IncidentUpdate *u = ev->incident;
        if (!u->transition || ref_owner(u->incident, "LT") != o->idx)
            return;
        if (u->transition->to == MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_ACCEPTED) {
            ient_t *e = itab_get(u->incident->id);
            if (e && e->accept_ns)
                leg_done(L_ACCEPT, e->accept_ns, now);
        } else if (u->transition->to == MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_OUTCOME_PROPOSED) {
            op_agree(o, u->incident->id);
        }
    } else if (ev->kind_case == MHTAS__V1__EVENT__KIND_MESSAGE && ev->message) {
        const Mhtas__V1__ChatMessage *m = ev->message;
        if (m->from_role != MHTAS__V1__ROLE__ROLE_PRACTITIONER || !m->client_msg_id ||
            m->client_msg_id[0] != 'P')
            return;
        char *dot = NULL;
        long owner = strtol(m->client_msg_id + 1, &dot, 10);
        if (owner != o->idx || !dot || *dot != '.')
            return;
        leg_done(L_MSG_PR_OP, strtoull(dot + 1, NULL, 10), now);
    }
}

static int rid_leg(char k)
{
    return k == 'R' ? L_RAISE_OFFER : k == 'M' ? L_MSG_OP_PR : k == 'A' ? L_AGREE : -1;
}

static void op_on_message(lt_ws_t *ws, void *ctx, const uint8_t *data, size_t len)
{
    (void)ws;
    op_t *o = ctx;
    uint64_t now = uv_hrtime();
    Mhtas__V1__ServerFrame *sf = mhtas__v1__server_frame__unpack(NULL, len, data);
    if (!sf) {
        g.misc_err[MHTAS_GRPC_INTERNAL]++;
        return;
    }
    const char *rid = sf->request_id ? sf->request_id : "";
    uint64_t rns = rid[0] ? strtoull(rid + 1, NULL, 10) : 0;
    if (sf->error && sf->error->code != 0) {
        int l = rid_leg(rid[0]);
        if (rid[0] == 'X')
            g.mem_failed++;
        if (l < 0 && g.verbose)
            logf_("%s: request %s failed: %d %s", o->id, rid, sf->error->code, sf->error->message);
        if (rid[0] == 'a' || rid[0] == 's')
            logf_("%s: %s failed: %s", o->id, rid[0] == 'a' ? "auth" : "subscribe",
                  sf->error->message);
        leg_error(l, rns, sf->error->code);
    } else {
        switch (sf->body_case) {
        case MHTAS__V1__SERVER_FRAME__BODY_AUTH: {
            o->authed = true;
            if (sf->auth && sf->auth->n_boroughs && !g.borough[0])
                snprintf(g.borough, sizeof g.borough, "%s", sf->auth->boroughs[0]);
            Mhtas__V1__SubscribeRequest sr = MHTAS__V1__SUBSCRIBE_REQUEST__INIT;
            Mhtas__V1__ClientFrame cf = MHTAS__V1__CLIENT_FRAME__INIT;
            cf.request_id = "s";
            cf.body_case = MHTAS__V1__CLIENT_FRAME__BODY_SUBSCRIBE;
            cf.subscribe = &sr;
            ws_send_frame(o->ws, &cf);
            break;
        }
        case MHTAS__V1__SERVER_FRAME__BODY_SUBSCRIBE:
            o->subscribed = true;
            break;
        case MHTAS__V1__SERVER_FRAME__BODY_AGREE_OUTCOME:
            if (sf->agree_outcome && sf->agree_outcome->durable)
                leg_done(L_AGREE, rns, now);
            else
                leg_error(L_AGREE, rns, E_NOT_DURABLE);
            break;
        case MHTAS__V1__SERVER_FRAME__BODY_RAISE_INCIDENT:
            if (rid[0] == 'X')
                g.mem_raised++;
            break;
        case MHTAS__V1__SERVER_FRAME__BODY_EVENT:
            if (sf->event)
                op_event(o, sf->event, now);
            break;
        default:
            break;
        }
    }
    mhtas__v1__server_frame__free_unpacked(sf, NULL);
}

static void op_on_open(lt_ws_t *ws, void *ctx)
{
    op_t *o = ctx;
    Mhtas__V1__AuthRequest ar = MHTAS__V1__AUTH_REQUEST__INIT;
    ar.token = o->token;
    Mhtas__V1__ClientFrame cf = MHTAS__V1__CLIENT_FRAME__INIT;
    cf.request_id = "a";
    cf.body_case = MHTAS__V1__CLIENT_FRAME__BODY_AUTH;
    cf.auth = &ar;
    ws_send_frame(ws, &cf);
}

static void op_on_close(lt_ws_t *ws, void *ctx, const char *why)
{
    (void)ws;
    op_t *o = ctx;
    o->dead = true;
    if (!g.closing)
        logf_("operator %s: socket closed: %s", o->id, why);
}

static const lt_ws_callbacks_t OP_CBS = { op_on_open, op_on_message, op_on_close };

/* ================================================================ idle consoles */

static void idle_on_open(lt_ws_t *ws, void *ctx)
{
    (void)ctx;
    Mhtas__V1__AuthRequest ar = MHTAS__V1__AUTH_REQUEST__INIT;
    ar.token = g.idle_token;
    Mhtas__V1__ClientFrame cf = MHTAS__V1__CLIENT_FRAME__INIT;
    cf.request_id = "a";
    cf.body_case = MHTAS__V1__CLIENT_FRAME__BODY_AUTH;
    cf.auth = &ar;
    ws_send_frame(ws, &cf);
}

static void idle_on_message(lt_ws_t *ws, void *ctx, const uint8_t *data, size_t len)
{
    (void)ws;
    idle_t *c = ctx;
    Mhtas__V1__ServerFrame *sf = mhtas__v1__server_frame__unpack(NULL, len, data);
    if (sf && sf->body_case == MHTAS__V1__SERVER_FRAME__BODY_AUTH && !c->authed) {
        c->authed = true;
        g.idle_authed++;
    }
    if (sf)
        mhtas__v1__server_frame__free_unpacked(sf, NULL);
}

static void idle_on_close(lt_ws_t *ws, void *ctx, const char *why)
{
    (void)ws;
    (void)why;
    idle_t *c = ctx;
    c->closed = true;
    g.idle_closed++;
}

static const lt_ws_callbacks_t IDLE_CBS = { idle_on_open, idle_on_message, idle_on_close };

/* ================================================================ practitioners (gRPC) */

typedef struct pcall {
    pr_t *p;
    char kind;  /* 'L' load accept, 'C' conversation accept, 'P' propose, 'M' message, 'S' shift */
    uint64_t id, ns;
    int owner;
} pcall_t;

static void pr_call(pr_t *p, const char *method, const ProtobufCMessage *req, pcall_t *pc,
                    mhtas_client_call_cb cb)
{
    int rc = mhtas_client_call(p->c, method, req, 30000, cb, pc);
    if (rc < 0) {
        leg_error(pc->kind == 'M' ? L_MSG_PR_OP : pc->kind == 'L' ? L_ACCEPT : -1, pc->ns, E_SEND);
        free(pc);
    }
}

static void pr_propose_done(void *ctx, int st, const char *msg, const ProtobufCMessage *resp)
{
    (void)resp;
    pcall_t *pc = ctx;
    if (st != MHTAS_GRPC_OK) {
        leg_error(-1, 0, st);
        if (g.verbose)
            logf_("ProposeOutcome %llu: %s %s", (unsigned long long)pc->id,
                  mhtas_client_status_name(st), msg);
    }
    free(pc);
}

static void pr_accept_done(void *ctx, int st, const char *msg, const ProtobufCMessage *resp)
{
    (void)resp;
    pcall_t *pc = ctx;
    pr_t *p = pc->p;
    if (st != MHTAS_GRPC_OK) {
        if (pc->kind == 'L')
            leg_error(L_ACCEPT, pc->ns, st);
        else
            g.conv_accepts_failed++;
        if (g.verbose || pc->kind == 'C')
            logf_("Accept %llu by %s: %s %s", (unsigned long long)pc->id, p->id,
                  mhtas_client_status_name(st), msg);
        free(pc);
        return;
    }
    if (pc->kind == 'C') {
        if (g.n_convs == g.cap_convs) {
            g.cap_convs = g.cap_convs ? g.cap_convs * 2 : 64;
            g.convs = realloc(g.convs, (size_t)g.cap_convs * sizeof *g.convs);
        }
        g.convs[g.n_convs++] = (conv_t){ pc->id, pc->owner, p->idx };
        free(pc);
        return;
    }
    /* Load incident: propose an outcome at once, so the operator agrees. */
    static Mhtas__V1__OutcomeCode codes[1] = { MHTAS__V1__OUTCOME_CODE__OUTCOME_CODE_ADVICE_ONLY };
    Mhtas__V1__ProposeOutcomeRequest req = MHTAS__V1__PROPOSE_OUTCOME_REQUEST__INIT;
    Mhtas__V1__Outcome oc = MHTAS__V1__OUTCOME__INIT;
    oc.n_codes = 1;
    oc.codes = codes;
    oc.summary = "Not known to services; advised voluntary assessment via the crisis line.";
    req.incident_id = pc->id;
    req.outcome = &oc;
    pc->kind = 'P';
    pr_call(p, "ProposeOutcome", &req.base, pc, pr_propose_done);
}

static void pr_accept(pr_t *p, uint64_t id, char kind, int owner, uint64_t now)
{
    pcall_t *pc = calloc(1, sizeof *pc);
    *pc = (pcall_t){ p, kind, id, now, owner };
    Mhtas__V1__AcceptRequest req = MHTAS__V1__ACCEPT_REQUEST__INIT;
    req.incident_id = id;
    pr_call(p, "Accept", &req.base, pc, pr_accept_done);
}

static void pr_on_event(void *ctx, const Mhtas__V1__Event *ev)
{
    pr_t *p = ctx;
    uint64_t now = uv_hrtime();
    p->got_event = true;
    if (ev->kind_case == MHTAS__V1__EVENT__KIND_OFFER && ev->offer && ev->offer->incident) {
        const Mhtas__V1__Incident *inc = ev->offer->incident;
        int owner;
        if ((owner = ref_owner(inc, "LT")) >= 0) {
            const char *r = inc->details->police_ref;
            const char *dash = strchr(r + 3, '-');
            uint64_t intended = dash ? strtoull(dash + 1, NULL, 10) : 0;
            leg_done(L_RAISE_OFFER, intended, now);
            ient_t *e = itab_put(inc->id);
            e->owner = owner;
            e->accept_ns = now;
            leg_sent(L_ACCEPT, now);
            pr_accept(p, inc->id, 'L', owner, now);
        } else if ((owner = ref_owner(inc, "CV")) >= 0) {
            pr_accept(p, inc->id, 'C', owner, now);
        }
    } else if (ev->kind_case == MHTAS__V1__EVENT__KIND_MESSAGE && ev->message) {
        const Mhtas__V1__ChatMessage *m = ev->message;
        if (m->from_role == MHTAS__V1__ROLE__ROLE_PRACTITIONER || !m->client_msg_id ||
            m->client_msg_id[0] != 'O')
            return;
        leg_done(L_MSG_OP_PR, strtoull(m->client_msg_id + 1, NULL, 10), now);
    }
}

static void pr_on_stream_end(void *ctx, int st, const char *msg)
{
    pr_t *p = ctx;
    if (!g.closing)
        logf_("practitioner %s: stream ended: %s %s", p->id, mhtas_client_status_name(st), msg);
}

static void pr_post_done(void *ctx, int st, const char *msg, const ProtobufCMessage *resp)
{
    (void)resp;
    (void)msg;
    pcall_t *pc = ctx;
    if (st != MHTAS_GRPC_OK)
        leg_error(L_MSG_PR_OP, pc->ns, st);
    free(pc);
}

static int pr_post(pr_t *p, const conv_t *cv, uint64_t intended)
{
    char cmid[48];
    snprintf(cmid, sizeof cmid, "P%d.%llu", cv->owner, (unsigned long long)intended);
    Mhtas__V1__PostMessageRequest req = MHTAS__V1__POST_MESSAGE_REQUEST__INIT;
    req.incident_id = cv->id;
    req.text = g.text;
    req.client_msg_id = cmid;
    pcall_t *pc = calloc(1, sizeof *pc);
    *pc = (pcall_t){ p, 'M', cv->id, intended, cv->owner };
    pr_call(p, "PostMessage", &req.base, pc, pr_post_done);
    return 0;
}

static void pr_shift_done(void *ctx, int st, const char *msg, const ProtobufCMessage *resp)
{
    (void)resp;
    pcall_t *pc = ctx;
    if (st == MHTAS_GRPC_OK)
        pc->p->shift_ok = true;
    else
        logf_("StartShift %s: %s %s", pc->p->id, mhtas_client_status_name(st), msg);
    free(pc);
}

static void pr_closed(void *ctx)
{
    pr_t *p = ctx;
    p->closed = true;
}

/* ================================================================ pacing */

static double surge_mult(uint64_t t)
{
    const scen_t *s = &g.sc;
    if (s->surge_factor == 1 || s->surge_duration_s <= 0 || t < g.win_start)
        return 1;
    double x = (double)(t - g.win_start) / 1e9;
    return x >= s->surge_start_s && x < s->surge_start_s + s->surge_duration_s ? s->surge_factor
                                                                               : 1;
}

static uint64_t gen_interval(const gen_t *gn, uint64_t at)
{
    double r = gn->rate * g.mult * surge_mult(at);
    if (r <= 0)
        return UINT64_MAX / 4;
    double s = g.sc.poisson ? -log(rnd01()) / r : 1.0 / r;
    return (uint64_t)(s * 1e9) + 1;
}

static void fire(int k, gen_t *gn, uint64_t intended)
{
    int l = -1;
    int rc = 0;
    switch (k) {
    case G_RAISE:
        l = L_RAISE_OFFER;
        leg_sent(l, intended);
        rc = op_raise(&g.ops[gn->n % (uint64_t)g.n_ops], "LT", intended);
        break;
    case G_MSG_OP: {
        l = L_MSG_OP_PR;
        leg_sent(l, intended);
        const conv_t *cv = &g.convs[gn->n % (uint64_t)g.n_convs];
        rc = op_post(&g.ops[cv->owner], cv->id, intended);
        break;
    }
    case G_MSG_PR: {
        l = L_MSG_PR_OP;
        leg_sent(l, intended);
        const conv_t *cv = &g.convs[gn->n % (uint64_t)g.n_convs];
        rc = pr_post(&g.prs[cv->holder], cv, intended);
        break;
    }
    case G_FLOOR_A:
    case G_FLOOR_B:
        l = k == G_FLOOR_A ? L_FLOOR_OP_PR : L_FLOOR_PR_OP;
        leg_sent(l, intended);
        rc = lt_floor_send(g.floor, k == G_FLOOR_A, intended);
        break;
    }
    if (rc < 0)
        leg_error(l, intended, E_SEND);
    gn->n++;
}

static void pacer_arm(void)
{
    uint64_t next = UINT64_MAX;
    for (int k = 0; k < G_COUNT; k++)
        if (g.gens[k].on && g.gens[k].next_ns < next)
            next = g.gens[k].next_ns;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (next != UINT64_MAX) {
        its.it_value.tv_sec = (time_t)(next / NS_PER_S);
        its.it_value.tv_nsec = (long)(next % NS_PER_S);
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
            its.it_value.tv_nsec = 1;
    }
    timerfd_settime(g.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* The pacing timer fired: send everything whose intended time has come. */
static void on_pacer(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)status;
    (void)events;
    uint64_t x;
    ssize_t rr = read(g.tfd, &x, sizeof x);
    (void)rr;
    uint64_t now = uv_hrtime();
    for (int k = 0; k < G_COUNT; k++) {
        gen_t *gn = &g.gens[k];
        while (gn->on && gn->next_ns <= now) {
            if (gn->next_ns >= g.win_end) {
                gn->on = false;
                break;
            }
            if (in_window(gn->next_ns))
                lt_hist_record(&g.cur->lag, (now - gn->next_ns) / 1000);
            fire(k, gn, gn->next_ns);
            gn->next_ns += gen_interval(gn, gn->next_ns);
        }
    }
    pacer_arm();
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until `done()` or the deadline (ns, absolute). */
static bool pump_until(bool (*done)(void), uint64_t deadline)
{
    while (uv_hrtime() < deadline) {
        if (done && done())
            return true;
        uv_run(g.loop, UV_RUN_ONCE);
    }
    return done ? done() : true;
}

/* ================================================================ hub process */

static long proc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* fields after comm: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void hex_token(char *out, size_t n)
{
    uint8_t b[24];
    randombytes_buf(b, sizeof b);
    sodium_bin2hex(out, n, b, sizeof b);
}

static void token_hash(const char *tok, char *out, size_t n)
{
    uint8_t h[32];
    crypto_generichash(h, sizeof h, (const uint8_t *)tok, strlen(tok), NULL, 0);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(out, n, "blake2b:%s", hex);
}

static FILE *xfopen(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f)
        die("cannot write %s: %s", p, strerror(errno));
    return f;
}

/* Writes a config and a users file in a new temp dir and starts the hub. */
static void start_own_hub(void)
{
    const scen_t *s = &g.sc;
    snprintf(g.tmp, sizeof g.tmp, "/tmp/mhtas-loadtest-XXXXXX");
    if (!mkdtemp(g.tmp))
        die("mkdtemp: %s", strerror(errno));
    char p[512];
    snprintf(p, sizeof p, "%s/static", g.tmp);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/data", g.tmp);
    mkdir(p, 0700);
    FILE *f = xfopen(g.tmp, "static/index.html");
    fputs("<!doctype html><title>loadtest</title>\n", f);
    fclose(f);

    f = xfopen(g.tmp, "mhtas.ini");
    fprintf(f,
            "; written by mhtas-loadtest\n[hub]\nlisten_host = 127.0.0.1\ngrpc_port = 0\n"
            "http_port = 0\nlog_level = warn\nusers_file = users.ini\nstatic_dir = static\n"
            "data_dir = data\n\n[limits]\nmax_connections = %d\nidle_timeout_ms = 86400000\n"
            "max_streams_per_conn = 1000\nmax_queued_bytes = 67108864\n\n"
            "[routing]\nstrategy = %s\noffer_timeout_ms = 600000\nauto_pause_after = 0\n"
            "wrap_up_ms = 0\nwiden_neighbour_ms = 0\nwiden_anyone_ms = 0\n"
            "max_open_incidents = 10000000\nmax_messages_per_incident = 1000000\n\n"
            "[borough:Loadtown]\nprovider = ltnhs\n",
            s->idle + s->operators + s->practitioners + 100, s->strategy);
    fclose(f);

    FILE *u = xfopen(g.tmp, "users.ini");
    FILE *t = xfopen(g.tmp, "tokens.txt");
    char hash[128];
    fputs("; written by mhtas-loadtest\n", u);
    for (int i = 0; i < g.n_prs; i++) {
        pr_t *pp = &g.prs[i];
        snprintf(pp->id, sizeof pp->id, "p%d", i + 1);
        hex_token(pp->token, sizeof pp->token);
        token_hash(pp->token, hash, sizeof hash);
        fprintf(u, "\n[user:%s]\nname = Practitioner %d\nrole = practitioner\nprovider = ltnhs\n"
                   "capacity = %d\ntoken_hash = %s\n",
                pp->id, i + 1, s->capacity, hash);
        fprintf(t, "practitioner %s %s\n", pp->id, pp->token);
    }
    for (int i = 0; i < g.n_ops; i++) {
        op_t *o = &g.ops[i];
        snprintf(o->id, sizeof o->id, "op%d", i + 1);
        hex_token(o->token, sizeof o->token);
        token_hash(o->token, hash, sizeof hash);
        fprintf(u, "\n[user:%s]\nname = Operator %d\nrole = operator\ntoken_hash = %s\n", o->id,
                i + 1, hash);
        fprintf(t, "operator %s %s\n", o->id, o->token);
    }
    hex_token(g.idle_token, sizeof g.idle_token);
    token_hash(g.idle_token, hash, sizeof hash);
    fprintf(u, "\n[user:console.idle]\nname = Idle Console\nrole = operator\ntoken_hash = %s\n",
            hash);
    char sup[128];
    hex_token(sup, sizeof sup);
    token_hash(sup, hash, sizeof hash);
    fprintf(u, "\n[user:sup1]\nname = Supervisor\nrole = supervisor\ntoken_hash = %s\n", hash);
    fprintf(t, "supervisor sup1 %s\n", sup);
    fclose(u);
    fclose(t);

    int pfd[2];
    if (pipe(pfd) < 0)
        die("pipe: %s", strerror(errno));
    char cfg[512], logp[512];
    snprintf(cfg, sizeof cfg, "%s/mhtas.ini", g.tmp);
    snprintf(logp, sizeof logp, "%s/hub.log", g.tmp);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(pfd[1], 1);
        int lf = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (lf >= 0)
            dup2(lf, 2);
        close(pfd[0]);
        setpgid(0, 0);
        execl(g.hub_bin, g.hub_bin, "--config", cfg, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", g.hub_bin, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    g.hub_pid = pid;
    char buf[512];
    size_t n = 0;
    uint64_t deadline = uv_hrtime() + 15 * NS_PER_S;
    while (uv_hrtime() < deadline) {
        struct pollfd pf = { pfd[0], POLLIN, 0 };
        if (poll(&pf, 1, 200) <= 0)
            continue;
        ssize_t r = read(pfd[0], buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = 0;
        int gp, hp, hpid;
        char *l = strstr(buf, "MHTAS_READY");
        if (l && strchr(l, '\n') &&
            sscanf(l, "MHTAS_READY grpc_port=%d http_port=%d pid=%d", &gp, &hp, &hpid) == 3) {
            g.grpc_port = gp;
            g.http_port = hp;
            /* the pipe stays open (the hub writes nothing else); close our end */
            close(pfd[0]);
            return;
        }
    }
    close(pfd[0]);
    char tail[4096] = "";
    FILE *lf = fopen(logp, "r");
    if (lf) {
        size_t k = fread(tail, 1, sizeof tail - 1, lf);
        tail[k] = 0;
        fclose(lf);
    }
    die("the hub did not print MHTAS_READY (%s --config %s)\n%s", g.hub_bin, cfg, tail);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static void stop_own_hub(void)
{
    if (g.hub_pid <= 0 || !g.own_hub)
        return;
    kill(g.hub_pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 100; i++) {
        if (waitpid(g.hub_pid, &st, WNOHANG) == g.hub_pid) {
            g.hub_pid = 0;
            break;
        }
        usleep(50000);
    }
    if (g.hub_pid > 0) {
        kill(g.hub_pid, SIGKILL);
        waitpid(g.hub_pid, &st, 0);
        g.hub_pid = 0;
    }
    if (!g.keep_tmp && g.tmp[0])
        nftw(g.tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Reads "role id token" lines for an external hub. */
static void load_tokens(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("%s: %s", path, strerror(errno));
    char role[32], id[64], tok[128];
    int no = 0, np = 0;
    while (fscanf(f, "%31s %63s %127s", role, id, tok) == 3) {
        if (strcmp(role, "operator") == 0 && no < g.n_ops) {
            snprintf(g.ops[no].id, sizeof g.ops[no].id, "%s", id);
            snprintf(g.ops[no].token, sizeof g.ops[no].token, "%s", tok);
            no++;
        } else if (strcmp(role, "practitioner") == 0 && np < g.n_prs) {
            snprintf(g.prs[np].id, sizeof g.prs[np].id, "%s", id);
            snprintf(g.prs[np].token, sizeof g.prs[np].token, "%s", tok);
            np++;
        }
    }
    fclose(f);
    if (no == 0 || np == 0)
        die("%s: need at least one operator and one practitioner line (\"role id token\")", path);
    g.n_ops = no;
    g.n_prs = np;
    snprintf(g.idle_token, sizeof g.idle_token, "%s", g.ops[0].token);
}

/* ================================================================ set-up */

static bool all_signed_in(void)
{
    for (int i = 0; i < g.n_ops; i++)
        if (!g.ops[i].subscribed)
            return false;
    for (int i = 0; i < g.n_prs; i++)
        if (!g.prs[i].shift_ok || !g.prs[i].got_event)
            return false;
    return true;
}

static void sign_in(void)
{
    for (int i = 0; i < g.n_ops; i++) {
        op_t *o = &g.ops[i];
        o->idx = i;
        o->ws = lt_ws_new(g.loop, &OP_CBS, o);
        lt_ws_connect(o->ws, "127.0.0.1", g.http_port, "/ws", WS_SUBPROTOCOL);
    }
    for (int i = 0; i < g.n_prs; i++) {
        pr_t *p = &g.prs[i];
        p->idx = i;
        mhtas_client_options_t opt;
        memset(&opt, 0, sizeof opt);
        opt.host = "127.0.0.1";
        opt.port = g.grpc_port;
        opt.token = p->token;
        opt.fail_fast = false;
        opt.default_deadline_ms = 30000;
        opt.on_event = pr_on_event;
        opt.on_stream_end = pr_on_stream_end;
        opt.ctx = p;
        p->c = mhtas_client_new(g.loop, &opt);
        if (!p->c)
            die("mhtas_client_new failed");
        mhtas_client_start(p->c);
        mhtas_client_subscribe(p->c, 0);
        Mhtas__V1__StartShiftRequest req = MHTAS__V1__START_SHIFT_REQUEST__INIT;
        pcall_t *pc = calloc(1, sizeof *pc);
        pc->p = p;
        pc->kind = 'S';
        pr_call(p, "StartShift", &req.base, pc, pr_shift_done);
    }
    if (!pump_until(all_signed_in, uv_hrtime() + 20 * NS_PER_S)) {
        int o = 0, p = 0;
        for (int i = 0; i < g.n_ops; i++)
            o += g.ops[i].subscribed;
        for (int i = 0; i < g.n_prs; i++)
            p += g.prs[i].shift_ok && g.prs[i].got_event;
        die("sign-in timed out: %d/%d operators subscribed, %d/%d practitioners on shift", o,
            g.n_ops, p, g.n_prs);
    }
}

static int conv_target;
static bool convs_done(void)
{
    return g.n_convs >= conv_target;
}

/* One conversation incident per practitioner, raised one at a time so the
 * routing strategy spreads them; every message leg runs on these. */
static void open_conversations(void)
{
    for (int i = 0; i < g.n_prs; i++) {
        conv_target = g.n_convs + 1;
        op_raise(&g.ops[i % g.n_ops], "CV", uv_hrtime());
        if (!pump_until(convs_done, uv_hrtime() + 10 * NS_PER_S))
            die("conversation incident %d was not offered and accepted within 10 s", i + 1);
    }
}

static bool idle_settled(void)
{
    return g.idle_authed + g.idle_closed >= g.n_idle;
}

static void open_idle(int k)
{
    g.idles = calloc((size_t)(k ? k : 1), sizeof *g.idles);
    g.n_idle = k;
    int opened = 0;
    while (opened < k) {
        int inflight = opened - g.idle_authed - g.idle_closed;
        while (inflight < 256 && opened < k) {
            idle_t *c = &g.idles[opened++];
            c->ws = lt_ws_new(g.loop, &IDLE_CBS, c);
            lt_ws_connect(c->ws, "127.0.0.1", g.http_port, "/ws", WS_SUBPROTOCOL);
            inflight++;
        }
        uv_run(g.loop, UV_RUN_ONCE);
    }
    pump_until(idle_settled, uv_hrtime() + 30 * NS_PER_S);
}

/* ================================================================ phases */

static bool drained(void)
{
    for (int l = 0; l < L_COUNT; l++) {
        const leg_t *lg = &g.cur->legs[l];
        if (lg->ok + leg_errors(lg) < lg->sent)
            return false;
    }
    return true;
}

static void floor_recv(void *ctx, int to_b, uint64_t intended, uint64_t now)
{
    (void)ctx;
    leg_done(to_b ? L_FLOOR_OP_PR : L_FLOOR_PR_OP, intended, now);
}

static bool floor_ready(void)
{
    return lt_floor_ready(g.floor);
}

/* Runs one phase: `floor` selects the relay's generators instead of the
 * hub's; rates are the scenario's times `mult`. Fills *r. */
static void run_phase(result_t *r, bool floor, double mult, double duration_s, const char *label)
{
    const scen_t *s = &g.sc;
    memset(r, 0, sizeof *r);
    snprintf(r->label, sizeof r->label, "%s", label);
    for (int l = 0; l < L_COUNT; l++)
        lt_hist_init(&r->legs[l].h);
    lt_hist_init(&r->lag);
    r->mult = mult;
    r->duration_s = duration_s;
    r->hub_cpu_s = -1;
    g.cur = r;
    g.mult = mult;
    uint64_t now = uv_hrtime();
    g.phase_start = now;
    g.win_start = now + (uint64_t)(s->warmup_s * 1e9);
    g.win_end = g.win_start + (uint64_t)(duration_s * 1e9);
    memset(g.gens, 0, sizeof g.gens);
    if (floor) {
        g.gens[G_FLOOR_A].rate = g.gens[G_FLOOR_B].rate = s->msg_rate;
    } else {
        g.gens[G_RAISE].rate = s->raise_rate;
        g.gens[G_MSG_OP].rate = g.gens[G_MSG_PR].rate = g.n_convs ? s->msg_rate : 0;
    }
    for (int k = 0; k < G_COUNT; k++) {
        gen_t *gn = &g.gens[k];
        gn->on = gn->rate > 0;
        if (gn->on)
            gn->next_ns = now + gen_interval(gn, now);
    }
    int idle_closed0 = g.idle_closed;
    pacer_arm();
    pump_until(NULL, g.win_start);
    double cpu0 = g.hub_pid > 0 ? proc_cpu_s(g.hub_pid) : -1;
    pump_until(NULL, g.win_end);
    double cpu1 = g.hub_pid > 0 ? proc_cpu_s(g.hub_pid) : -1;
    if (cpu0 >= 0 && cpu1 >= 0)
        r->hub_cpu_s = cpu1 - cpu0;
    for (int k = 0; k < G_COUNT; k++)
        g.gens[k].on = false;
    pacer_arm();
    pump_until(drained, uv_hrtime() + (uint64_t)(s->drain_s * 1e9));
    for (int l = 0; l < L_COUNT; l++) {
        leg_t *lg = &r->legs[l];
        uint64_t acc = lg->ok + leg_errors(lg);
        if (acc < lg->sent)
            lg->err[E_LOST] += lg->sent - acc;
    }
    r->rss_kb_end = g.hub_pid > 0 ? proc_rss_kb(g.hub_pid) : -1;
    r->idle_dropped = g.idle_closed - idle_closed0;
    r->n_secs = duration_s < 3600 ? (int)ceil(duration_s) : 3600;
    g.cur = NULL;
}

static uint64_t worst_p99_us(const result_t *r)
{
    uint64_t w = 0;
    for (int l = 0; l < L_FLOOR_OP_PR; l++)
        if (r->legs[l].h.count && lt_hist_quantile(&r->legs[l].h, 0.99) > w)
            w = lt_hist_quantile(&r->legs[l].h, 0.99);
    return w;
}

static uint64_t total_errors(const result_t *r, int from, int to)
{
    uint64_t n = 0;
    for (int l = from; l < to; l++)
        n += leg_errors(&r->legs[l]);
    return n;
}

/* ================================================================ report */

static void print_result(FILE *out, const result_t *r, const result_t *floor)
{
    fprintf(out, "\n== %s (rate x%.2f, %.0f s measured)\n", r->label, r->mult, r->duration_s);
    fprintf(out, "%-22s %9s %9s %9s %9s %9s %9s %9s %9s %8s\n", "leg (ms)", "count", "offer/s",
            "done/s", "p50", "p90", "p99", "p99.9", "max", "errors");
    for (int l = 0; l < L_COUNT; l++) {
        const leg_t *lg = &r->legs[l];
        if (lg->sent == 0 && lg->h.count == 0)
            continue;
        const lt_hist_t *h = &lg->h;
        fprintf(out, "%-22s %9llu %9.1f %9.1f %9.3f %9.3f %9.3f %9.3f %9.3f %8llu\n", LEG_NAME[l],
                (unsigned long long)h->count, (double)lg->sent / r->duration_s,
                (double)lg->ok / r->duration_s, lt_hist_quantile(h, 0.5) / 1e3,
                lt_hist_quantile(h, 0.9) / 1e3, lt_hist_quantile(h, 0.99) / 1e3,
                lt_hist_quantile(h, 0.999) / 1e3, (double)h->max / 1e3,
                (unsigned long long)leg_errors(lg));
        for (int e = 0; e < NERR; e++)
            if (lg->err[e])
                fprintf(out, "%-22s   %s: %llu\n", "", err_name(e), (unsigned long long)lg->err[e]);
    }
    if (r->lag.count)
        fprintf(out, "%-22s %9llu %9s %9s %9.3f %9.3f %9.3f %9.3f %9.3f\n", "(send lag, tool)",
                (unsigned long long)r->lag.count, "", "", lt_hist_quantile(&r->lag, 0.5) / 1e3,
                lt_hist_quantile(&r->lag, 0.9) / 1e3, lt_hist_quantile(&r->lag, 0.99) / 1e3,
                lt_hist_quantile(&r->lag, 0.999) / 1e3, (double)r->lag.max / 1e3);
    if (floor) {
        const int pairs[2][2] = { { L_MSG_OP_PR, L_FLOOR_OP_PR }, { L_MSG_PR_OP, L_FLOOR_PR_OP } };
        fprintf(out, "hub / floor ratio      %9s %9s %9s %9s %9s %9s %9s\n", "", "", "", "p50",
                "p90", "p99", "p99.9");
        for (int i = 0; i < 2; i++) {
            const lt_hist_t *a = &r->legs[pairs[i][0]].h, *b = &floor->legs[pairs[i][1]].h;
            if (!a->count || !b->count)
                continue;
            const double qs[4] = { 0.5, 0.9, 0.99, 0.999 };
            fprintf(out, "%-22s %9s %9s %9s", LEG_NAME[pairs[i][0]], "", "", "");
            for (int q = 0; q < 4; q++) {
                uint64_t fb = lt_hist_quantile(b, qs[q]);
                fprintf(out, " %8.1fx", fb ? (double)lt_hist_quantile(a, qs[q]) / (double)fb : 0);
            }
            fputc('\n', out);
        }
    }
    if (r->hub_cpu_s >= 0) {
        uint64_t msgs = r->legs[L_MSG_OP_PR].ok + r->legs[L_MSG_PR_OP].ok;
        uint64_t reqs = msgs + r->legs[L_RAISE_OFFER].sent + r->legs[L_ACCEPT].sent * 2 +
                        r->legs[L_AGREE].sent;
        fprintf(out, "hub CPU: %.2f s over %.0f s (%.0f%% of one core)", r->hub_cpu_s,
                r->duration_s, 100 * r->hub_cpu_s / r->duration_s);
        if (msgs)
            fprintf(out, "; %.1f ms per 1000 messages (all hub work / messages)",
                    1000.0 * r->hub_cpu_s / (double)msgs * 1000.0);
        if (reqs)
            fprintf(out, "; %.1f ms per 1000 requests", 1000.0 * r->hub_cpu_s / (double)reqs * 1000.0);
        fputc('\n', out);
    }
    if (r->n_secs > 1) {
        int worst = 0;
        for (int i = 1; i < r->n_secs; i++)
            if (r->sec_max_us[i] > r->sec_max_us[worst])
                worst = i;
        fprintf(out, "worst second: %d s into the window, max %.3f ms (per-second timeline in the JSON)\n",
                worst, r->sec_max_us[worst] / 1e3);
    }
    if (r->rss_kb_end > 0)
        fprintf(out, "hub RSS at the end: %.1f MiB\n", (double)r->rss_kb_end / 1024.0);
    if (r->idle_dropped)
        fprintf(out, "idle connections dropped during the phase: %d\n", r->idle_dropped);
}

static json_t *hist_json(const lt_hist_t *h)
{
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer((json_int_t)h->count));
    json_object_set_new(o, "p50_us", json_integer((json_int_t)lt_hist_quantile(h, 0.5)));
    json_object_set_new(o, "p90_us", json_integer((json_int_t)lt_hist_quantile(h, 0.9)));
    json_object_set_new(o, "p99_us", json_integer((json_int_t)lt_hist_quantile(h, 0.99)));
    json_object_set_new(o, "p999_us", json_integer((json_int_t)lt_hist_quantile(h, 0.999)));
    json_object_set_new(o, "max_us", json_integer((json_int_t)(h->count ? h->max : 0)));
    json_object_set_new(o, "mean_us", json_real(lt_hist_mean(h)));
    return o;
}

static json_t *result_json(const result_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "label", json_string(r->label));
    json_object_set_new(o, "rate_multiplier", json_real(r->mult));
    json_object_set_new(o, "duration_s", json_real(r->duration_s));
    json_t *legs = json_object();
    for (int l = 0; l < L_COUNT; l++) {
        const leg_t *lg = &r->legs[l];
        if (lg->sent == 0 && lg->h.count == 0)
            continue;
        json_t *j = hist_json(&lg->h);
        json_object_set_new(j, "sent", json_integer((json_int_t)lg->sent));
        json_object_set_new(j, "ok", json_integer((json_int_t)lg->ok));
        json_object_set_new(j, "offered_per_s", json_real((double)lg->sent / r->duration_s));
        json_object_set_new(j, "achieved_per_s", json_real((double)lg->ok / r->duration_s));
        json_t *errs = json_object();
        for (int e = 0; e < NERR; e++)
            if (lg->err[e])
                json_object_set_new(errs, err_name(e), json_integer((json_int_t)lg->err[e]));
        json_object_set_new(j, "errors", errs);
        json_object_set_new(legs, LEG_KEY[l], j);
    }
    json_object_set_new(o, "legs", legs);
    json_object_set_new(o, "send_lag", hist_json(&r->lag));
    if (r->hub_cpu_s >= 0) {
        json_object_set_new(o, "hub_cpu_s", json_real(r->hub_cpu_s));
        uint64_t msgs = r->legs[L_MSG_OP_PR].ok + r->legs[L_MSG_PR_OP].ok;
        if (msgs)
            json_object_set_new(o, "hub_cpu_ms_per_1000_messages",
                                json_real(1e6 * r->hub_cpu_s / (double)msgs));
    }
    if (r->rss_kb_end > 0)
        json_object_set_new(o, "hub_rss_kb_end", json_integer(r->rss_kb_end));
    json_object_set_new(o, "idle_dropped", json_integer(r->idle_dropped));
    json_t *tl = json_array();
    for (int i = 0; i < r->n_secs; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "s", json_integer(i));
        json_object_set_new(e, "done", json_integer(r->sec_done[i]));
        json_object_set_new(e, "max_us", json_integer(r->sec_max_us[i]));
        json_array_append_new(tl, e);
    }
    json_object_set_new(o, "timeline", tl);
    return o;
}

/* ================================================================ main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mhtas-loadtest [options]\n"
            "  --scenario FILE     key = value scenario (loadtest/scenarios/*.conf)\n"
            "  --set KEY=VALUE     override one scenario key (repeatable, after the file)\n"
            "  --hub PATH          hub binary to start (default bin/mhtas-hub)\n"
            "  --grpc-port N --http-port N --tokens-file F [--hub-pid P]\n"
            "                      use a running hub instead (tokens: \"role id token\" lines)\n"
            "  --json FILE         write the results as JSON (\"-\": stdout, text goes to stderr)\n"
            "  --smoke             a few seconds, small; prints \"loadtest-smoke: N passed, M failed\"\n"
            "  --keep              keep the temp dir (config, tokens.txt, hub.log, journal)\n"
            "  --verbose           log every failed request\n"
            "  --self-test         test the histogram and exit\n"
            "scenario keys:\n");
    for (size_t i = 0; i < sizeof OPTS / sizeof OPTS[0]; i++)
        fprintf(f, "  %-18s %s\n", OPTS[i].key, OPTS[i].help);
}

int main(int argc, char **argv)
{
    scen_defaults(&g.sc);
    g.hub_bin = "bin/mhtas-hub";
    g.own_hub = true;
    const char *json_path = NULL, *tokens = NULL;
    bool smoke = false;
    const char *sets[64];
    int n_sets = 0;
    pid_t ext_pid = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--self-test") == 0) {
            int f = lt_hist_self_test();
            printf("loadtest self-test: %s (%d failed checks)\n", f ? "FAILED" : "ok", f);
            return f ? 1 : 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--smoke") == 0) {
            smoke = true;
        } else if (strcmp(a, "--keep") == 0) {
            g.keep_tmp = true;
        } else if (strcmp(a, "--verbose") == 0) {
            g.verbose = true;
        } else if (v && strcmp(a, "--scenario") == 0) {
            if (scen_load(&g.sc, v) < 0)
                return 2;
            i++;
        } else if (v && strcmp(a, "--set") == 0) {
            if (n_sets < 64)
                sets[n_sets++] = v;
            i++;
        } else if (v && strcmp(a, "--hub") == 0) {
            g.hub_bin = v;
            i++;
        } else if (v && strcmp(a, "--grpc-port") == 0) {
            g.grpc_port = atoi(v);
            g.own_hub = false;
            i++;
        } else if (v && strcmp(a, "--http-port") == 0) {
            g.http_port = atoi(v);
            g.own_hub = false;
            i++;
        } else if (v && strcmp(a, "--tokens-file") == 0) {
            tokens = v;
            i++;
        } else if (v && strcmp(a, "--hub-pid") == 0) {
            ext_pid = atoi(v);
            i++;
        } else if (v && strcmp(a, "--json") == 0) {
            json_path = v;
            i++;
        } else {
            fprintf(stderr, "mhtas-loadtest: unknown argument %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (smoke) {
        scen_t *s = &g.sc;
        snprintf(s->name, sizeof s->name, "smoke");
        s->operators = 2, s->practitioners = 2, s->idle = 20;
        s->raise_rate = 5, s->msg_rate = 20, s->warmup_s = 0.5, s->duration_s = 2,
        s->drain_s = 5;
        s->floor = 1, s->floor_duration_s = 1, s->saturation = 0, s->mem_incidents = 20;
        s->surge_factor = 1;
    }
    for (int i = 0; i < n_sets; i++) {
        char kv[256];
        snprintf(kv, sizeof kv, "%s", sets[i]);
        char *eq = strchr(kv, '=');
        if (!eq) {
            fprintf(stderr, "--set %s: expected KEY=VALUE\n", sets[i]);
            return 2;
        }
        *eq = 0;
        if (scen_set(&g.sc, kv, eq + 1, "--set") < 0)
            return 2;
    }
    scen_t *s = &g.sc;
    if (s->operators < 1 || s->practitioners < 1 || s->text_bytes < 1 ||
        s->text_bytes > MAX_TEXT || s->capacity < 1 || s->capacity > 50)
        die("need operators >= 1, practitioners >= 1, 1 <= text_bytes <= %d, capacity 1..50",
            MAX_TEXT);
    FILE *out = stdout;
    if (json_path && strcmp(json_path, "-") == 0)
        out = stderr;

    if (sodium_init() < 0)
        die("sodium_init failed");
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* 1 us: the pacer's timerfd fires on time */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    g.rng = s->seed > 0 ? (uint64_t)s->seed : uv_hrtime() | 1;
    for (int i = 0; i < s->text_bytes; i++)
        g.text[i] = "Known to the crisis team; last seen 3 weeks ago. Advise A&E via ambulance. "[i % 76];
    g.text[s->text_bytes] = 0;

    g.n_ops = s->operators;
    g.n_prs = s->practitioners;
    g.ops = calloc((size_t)g.n_ops, sizeof *g.ops);
    g.prs = calloc((size_t)g.n_prs, sizeof *g.prs);
    if (g.own_hub) {
        start_own_hub();
    } else {
        if (!tokens || !g.grpc_port || !g.http_port)
            die("a running hub needs --grpc-port, --http-port and --tokens-file");
        load_tokens(tokens);
        g.hub_pid = ext_pid;
    }

    g.loop = uv_default_loop();
    uv_timer_init(g.loop, &g.tick);
    uv_timer_start(&g.tick, on_tick, 20, 20);
    g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (g.tfd < 0)
        die("timerfd_create: %s", strerror(errno));
    uv_poll_init(g.loop, &g.pacer_poll, g.tfd);
    uv_poll_start(&g.pacer_poll, UV_READABLE, on_pacer);

    fprintf(out, "mhtas-loadtest: scenario %s: %d operators (WebSocket), %d practitioners (gRPC), "
                 "%d idle consoles; raise %.1f/s, messages %.1f/s each way, %s arrivals; "
                 "warm-up %.0f s, %.0f s measured\n",
            s->name, g.n_ops, g.n_prs, s->idle, s->raise_rate, s->msg_rate,
            s->poisson ? "Poisson" : "fixed-interval", s->warmup_s, s->duration_s);
    if (g.own_hub)
        fprintf(out, "hub: %s pid %d, grpc %d, http %d, temp dir %s\n", g.hub_bin, (int)g.hub_pid,
                g.grpc_port, g.http_port, g.tmp);
    fflush(out);

    sign_in();
    if (!g.borough[0])
        die("the hub named no borough in the auth reply");
    if (s->msg_rate > 0)
        open_conversations();
    logf_("signed in: %d operators, %d practitioners; %d conversations", g.n_ops, g.n_prs,
          g.n_convs);

    json_t *root = json_object();
    json_object_set_new(root, "scenario", json_string(s->name));
    json_t *jsc = json_object();
    for (size_t i = 0; i < sizeof OPTS / sizeof OPTS[0]; i++) {
        const char *p = (const char *)s + OPTS[i].off;
        json_object_set_new(jsc, OPTS[i].key,
                            OPTS[i].type == 'i'   ? json_integer(*(const int *)p)
                            : OPTS[i].type == 'd' ? json_real(*(const double *)p)
                                                  : json_string(p));
    }
    json_object_set_new(root, "config", jsc);
    json_t *mem = json_object();

    /* Memory per idle connection. */
    if (s->idle > 0) {
        pump_until(NULL, uv_hrtime() + NS_PER_S / 2);
        long rss0 = g.hub_pid > 0 ? proc_rss_kb(g.hub_pid) : -1;
        open_idle(s->idle);
        pump_until(NULL, uv_hrtime() + NS_PER_S / 2);
        long rss1 = g.hub_pid > 0 ? proc_rss_kb(g.hub_pid) : -1;
        fprintf(out, "idle consoles: %d open and authenticated (of %d)", g.idle_authed, s->idle);
        json_object_set_new(mem, "idle_connections", json_integer(g.idle_authed));
        if (rss0 > 0 && rss1 > 0 && g.idle_authed > 0) {
            double per = (double)(rss1 - rss0) * 1024.0 / g.idle_authed;
            fprintf(out, "; hub RSS %.1f -> %.1f MiB: %.0f bytes per idle connection", rss0 / 1024.0,
                    rss1 / 1024.0, per);
            json_object_set_new(mem, "rss_bytes_per_idle_connection", json_real(per));
        }
        fputc('\n', out);
    }

    result_t *floor_r = NULL;
    if (s->floor && s->msg_rate > 0) {
        g.floor = lt_floor_start(g.loop, (size_t)s->text_bytes + 40, floor_recv, NULL);
        if (!g.floor || !pump_until(floor_ready, uv_hrtime() + 5 * NS_PER_S))
            die("the floor relay did not start");
        floor_r = calloc(1, sizeof *floor_r);
        run_phase(floor_r, true, 1, s->floor_duration_s > 0 ? s->floor_duration_s : s->duration_s,
                  "floor (byte relay, same rates)");
        lt_floor_stop(g.floor);
        g.floor = NULL;
        print_result(out, floor_r, NULL);
        json_object_set_new(root, "floor", result_json(floor_r));
    }

    result_t *main_r = calloc(1, sizeof *main_r);
    int smoke_pass = 0, smoke_fail = 0;
    if (s->saturation) {
        json_t *steps = json_array();
        double best = -1, m = s->sat_start;
        for (int k = 0; k < s->sat_max_steps; k++, m *= s->sat_step) {
            char label[64];
            snprintf(label, sizeof label, "saturation step %d", k + 1);
            run_phase(main_r, false, m, s->duration_s, label);
            print_result(out, main_r, floor_r);
            json_array_append_new(steps, result_json(main_r));
            uint64_t w = worst_p99_us(main_r);
            bool holds = w <= (uint64_t)(s->sat_bound_ms * 1000) &&
                         total_errors(main_r, 0, L_FLOOR_OP_PR) == 0;
            fprintf(out, "step %d: worst hub p99 %.3f ms, %llu errors: %s\n", k + 1, w / 1e3,
                    (unsigned long long)total_errors(main_r, 0, L_FLOOR_OP_PR),
                    holds ? "holds" : "CROSSES the bound");
            if (!holds)
                break;
            best = m;
        }
        json_object_set_new(root, "saturation_steps", steps);
        if (best > 0) {
            fprintf(out, "\nsaturation: highest rate holding p99 <= %.1f ms with no errors: x%.2f = "
                         "raise %.1f/s, messages %.1f/s each way\n",
                    s->sat_bound_ms, best, s->raise_rate * best, s->msg_rate * best);
        } else {
            fprintf(out, "\nsaturation: even the first step (x%.2f) crosses p99 %.1f ms\n",
                    s->sat_start, s->sat_bound_ms);
        }
        json_t *sat = json_object();
        json_object_set_new(sat, "bound_p99_ms", json_real(s->sat_bound_ms));
        json_object_set_new(sat, "best_multiplier", best > 0 ? json_real(best) : json_null());
        json_object_set_new(sat, "best_raise_per_s", json_real(best > 0 ? s->raise_rate * best : 0));
        json_object_set_new(sat, "best_messages_per_s_each_way",
                            json_real(best > 0 ? s->msg_rate * best : 0));
        json_object_set_new(root, "saturation", sat);
    } else {
        run_phase(main_r, false, 1, s->duration_s, "hub");
        print_result(out, main_r, floor_r);
        json_object_set_new(root, "hub", result_json(main_r));
    }

    /* Memory per open incident: raise incidents nobody accepts. */
    if (s->mem_incidents > 0 && g.hub_pid > 0) {
        pump_until(NULL, uv_hrtime() + NS_PER_S / 2);
        long rss0 = proc_rss_kb(g.hub_pid);
        for (int i = 0; i < s->mem_incidents; i++) {
            op_raise(&g.ops[i % g.n_ops], "MEM", uv_hrtime());
            if (i % 100 == 99)
                while (g.mem_raised + g.mem_failed + 200 < (uint64_t)i)
                    uv_run(g.loop, UV_RUN_ONCE);
        }
        uint64_t dl = uv_hrtime() + 20 * NS_PER_S;
        while (g.mem_raised + g.mem_failed < (uint64_t)s->mem_incidents && uv_hrtime() < dl)
            uv_run(g.loop, UV_RUN_ONCE);
        pump_until(NULL, uv_hrtime() + NS_PER_S / 2);
        long rss1 = proc_rss_kb(g.hub_pid);
        if (rss0 > 0 && rss1 > 0 && g.mem_raised) {
            double per = (double)(rss1 - rss0) * 1024.0 / (double)g.mem_raised;
            fprintf(out, "open incidents: %llu raised (%llu refused); hub RSS %.1f -> %.1f MiB: "
                         "%.0f bytes per open incident\n",
                    (unsigned long long)g.mem_raised, (unsigned long long)g.mem_failed,
                    rss0 / 1024.0, rss1 / 1024.0, per);
            json_object_set_new(mem, "rss_bytes_per_open_incident", json_real(per));
        }
    }
    json_object_set_new(root, "memory", mem);
    uint64_t misc = 0;
    for (int e = 0; e < NERR; e++)
        misc += g.misc_err[e];
    if (misc) {
        fprintf(out, "other failed calls (set-up, ProposeOutcome, undecodable frames):");
        for (int e = 0; e < NERR; e++)
            if (g.misc_err[e])
                fprintf(out, " %s %llu", err_name(e), (unsigned long long)g.misc_err[e]);
        fputc('\n', out);
    }

    if (smoke) {
        const result_t *rs[2] = { floor_r, main_r };
        for (int i = 0; i < 2; i++) {
            if (!rs[i])
                continue;
            for (int l = 0; l < L_COUNT; l++) {
                const leg_t *lg = &rs[i]->legs[l];
                if (lg->sent == 0 && lg->h.count == 0)
                    continue;
                bool ok = lg->h.count > 0 && leg_errors(lg) == 0;
                if (ok)
                    smoke_pass++;
                else {
                    smoke_fail++;
                    fprintf(out, "loadtest-smoke: FAIL %s: %llu done, %llu errors\n", LEG_NAME[l],
                            (unsigned long long)lg->h.count, (unsigned long long)leg_errors(lg));
                }
            }
        }
        /* every expected leg must have run */
        int expected = (s->raise_rate > 0 ? 3 : 0) + (s->msg_rate > 0 ? 2 + 2 * (s->floor != 0) : 0);
        if (smoke_pass + smoke_fail < expected)
            smoke_fail += expected - smoke_pass - smoke_fail;
        if (misc)
            smoke_fail++;
    }

    if (json_path) {
        char *txt = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        if (strcmp(json_path, "-") == 0) {
            printf("%s\n", txt);
        } else {
            FILE *jf = fopen(json_path, "w");
            if (jf) {
                fprintf(jf, "%s\n", txt);
                fclose(jf);
            } else {
                fprintf(stderr, "%s: %s\n", json_path, strerror(errno));
            }
        }
        free(txt);
    }
    json_decref(root);

    /* Shut down: sockets, clients, the hub. */
    g.closing = true;
    for (int i = 0; i < g.n_ops; i++)
        if (g.ops[i].ws)
            lt_ws_close(g.ops[i].ws);
    for (int i = 0; i < g.n_idle; i++)
        if (g.idles[i].ws)
            lt_ws_close(g.idles[i].ws);
    for (int i = 0; i < g.n_prs; i++)
        if (g.prs[i].c)
            mhtas_client_close(g.prs[i].c, pr_closed, &g.prs[i]);
    pump_until(NULL, uv_hrtime() + NS_PER_S / 5);
    stop_own_hub();
    if (smoke)
        printf("loadtest-smoke: %d passed, %d failed\n", smoke_pass, smoke_fail);
    fflush(stdout);
    return smoke && smoke_fail ? 1 : 0;
}
