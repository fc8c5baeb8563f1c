/* hub_metrics.c -- counters and latency histograms, rendered as Prometheus
 * text. Plain counters in structs (after redis stat_* and h2o's
 * ctx->http2.events), one render function that tests can call. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hub_internal.h"
#include "util/alloc.h"

/* Upper bounds in seconds: 100 us to 60 s, so one set of buckets serves the
 * machine's legs (relay, raise-to-offer) and the human one (offer-to-accept). */
static const double bounds[HUB_HIST_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25,   0.5,     1,      2.5,   5,      10,    30,   60,    120,
};

void hub_hist__observe_us(hub_hist_t *h, uint64_t us)
{
    double s = (double)us / 1e6;
    unsigned i = 0;
    while (i < HUB_HIST_BUCKETS && s > bounds[i])
        i++;
    h->counts[i]++;
    h->total++;
    h->sum_seconds += s;
}

typedef struct out {
    char *buf;
    size_t len, cap;
    int failed;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *b = hub_realloc(o->buf, cap);
        if (b == NULL) {
            o->failed = 1;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
}

static void hist(out_t *o, const char *name, const char *help, const hub_hist_t *h)
{
    put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (unsigned i = 0; i < HUB_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        put(o, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[HUB_HIST_BUCKETS];
    put(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long)cum,
        name, h->sum_seconds, name, (unsigned long long)h->total);
}

static const char *const fe_names[HUB_FE_COUNT] = { "grpc", "ws", "http" };

static const char *const state_names[11] = {
    "unspecified", "new", "queued", "offered", "accepted", "advising",
    "outcome_proposed", "closed", "cancelled", "escalated", "transferred",
};

static const char *const prac_names[7] = {
    "unspecified", "off_shift", "available", "busy", "paused", "wrap_up", "disconnected",
};

#define FE_COUNTER(field, name, help, type)                                              \
    do {                                                                                 \
        put(&o, "# HELP mhtas_" name " " help "\n# TYPE mhtas_" name " " type "\n");     \
        for (int f = 0; f < HUB_FE_COUNT; f++)                                           \
            put(&o, "mhtas_" name "{frontend=\"%s\"} %llu\n", fe_names[f],               \
                (unsigned long long)m->fe[f].field);                                     \
    } while (0)

char *hub_metrics__render(const hub_metrics_t *m, const core_stats_t *cs, size_t *len)
{
    out_t o = { hub_malloc(4096), 0, 4096, 0 };
    if (o.buf == NULL)
        return NULL;
    FE_COUNTER(connections_open, "connections_open", "Open connections by front end.", "gauge");
    FE_COUNTER(connections_total, "connections_total", "Connections accepted.", "counter");
    FE_COUNTER(connections_refused, "connections_refused_total",
               "Connections refused (limits, origin, authentication).", "counter");
    FE_COUNTER(requests_total, "requests_total", "Requests received.", "counter");
    FE_COUNTER(errors_total, "request_errors_total", "Requests answered with an error status.", "counter");
    FE_COUNTER(bad_input_total, "bad_input_total", "Malformed frames, messages or JSON.", "counter");

    put(&o, "# HELP mhtas_incidents Incidents by state.\n# TYPE mhtas_incidents gauge\n");
    for (int s = 1; s < 11; s++)
        put(&o, "mhtas_incidents{state=\"%s\"} %u\n", state_names[s], cs->incidents_by_state[s]);
    put(&o, "# HELP mhtas_practitioners Practitioners by state.\n# TYPE mhtas_practitioners gauge\n");
    for (int s = 1; s < 7; s++)
        put(&o, "mhtas_practitioners{state=\"%s\"} %u\n", prac_names[s], cs->practitioners_by_state[s]);
    put(&o, "# HELP mhtas_queue_depth Incidents waiting for a practitioner.\n"
            "# TYPE mhtas_queue_depth gauge\nmhtas_queue_depth %u\n", cs->queue_depth);
    put(&o, "# HELP mhtas_offers_outstanding Offers awaiting an answer.\n"
            "# TYPE mhtas_offers_outstanding gauge\nmhtas_offers_outstanding %u\n", cs->offers_outstanding);
    put(&o, "# HELP mhtas_incidents_raised_total Incidents raised.\n"
            "# TYPE mhtas_incidents_raised_total counter\nmhtas_incidents_raised_total %llu\n",
        (unsigned long long)cs->raised_total);
    put(&o, "# HELP mhtas_offer_timeouts_total Offers that timed out.\n"
            "# TYPE mhtas_offer_timeouts_total counter\nmhtas_offer_timeouts_total %llu\n",
        (unsigned long long)cs->offer_timeouts_total);
    put(&o, "# HELP mhtas_events_total Events emitted.\n# TYPE mhtas_events_total counter\n"
            "mhtas_events_total %llu\n", (unsigned long long)m->events_total);
    put(&o, "# HELP mhtas_subscribers Live event subscriptions.\n# TYPE mhtas_subscribers gauge\n"
            "mhtas_subscribers %llu\n", (unsigned long long)m->subscribers);
    hist(&o, "mhtas_raise_to_offer_seconds",
         "From a RaiseIncident request reaching the hub to its offer fanned out.", &m->raise_to_offer);
    hist(&o, "mhtas_offer_to_accept_seconds", "From an offer to its acceptance.", &m->offer_to_accept);
    hist(&o, "mhtas_relay_seconds", "From a PostMessage request reaching the hub to the message fanned out.",
         &m->relay);
    if (o.failed) {
        hub_free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
