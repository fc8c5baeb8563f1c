/* hub_internal.h -- shared between the files of server/hub/ only. */
#ifndef MHTAS_HUB_INTERNAL_H
#define MHTAS_HUB_INTERNAL_H

#include <stdbool.h>

#include "core/core.h"
#include "hub/hub.h"
#include "hub/hub_core_config.h"

/* ---------------------------------------------------------- hub_methods.c */

/* Builds the method table from the generated service descriptor and checks
 * that ws.proto's envelopes follow the naming rule. Returns 0, or -1 with err. */
int hub_methods__init(char *err, size_t errlen);

/* Runs one method in the core (or, for WhoAmI, in the hub). On success
 * *resp is a hub-allocated message. Returns a HUB_GRPC_* status and, when it
 * is not OK, sets *message to a string valid until the next call. */
int hub_methods__run(hub_t *hub, const hub_user_t *caller, const hub_method_t *m,
                     const ProtobufCMessage *req, ProtobufCMessage **resp, const char **message);

/* The role gate of the method table (and the request type check): OK, or a
 * status with *message. */
int hub_methods__gate(const hub_user_t *caller, const hub_method_t *m, const ProtobufCMessage *req,
                      const char **message);

/* Builds the WhoAmI response for `user` (used by the WebSocket auth reply too). */
Mhtas__V1__WhoAmIResponse *hub_methods__whoami(hub_t *hub, const hub_user_t *user);

/* ---------------------------------------------------------- hub_metrics.c */

#define HUB_HIST_BUCKETS 19

typedef struct hub_hist {
    uint64_t counts[HUB_HIST_BUCKETS + 1]; /* last = +Inf */
    uint64_t total;
    double sum_seconds;
} hub_hist_t;

void hub_hist__observe_us(hub_hist_t *h, uint64_t us);

typedef struct hub_metrics {
    hub_fe_stats_t fe[HUB_FE_COUNT];
    hub_hist_t raise_to_offer;   /* RaiseIncident received -> offer event fanned out */
    hub_hist_t offer_to_accept;  /* offer made -> accepted (human time) */
    hub_hist_t relay;            /* PostMessage received -> message event fanned out */
    uint64_t events_total;
    uint64_t subscribers;
    uint64_t event_bytes_total;
} hub_metrics_t;

/* Renders Prometheus text for the metrics plus the core's gauges. */
char *hub_metrics__render(const hub_metrics_t *m, const core_stats_t *cs, size_t *len);

/* ------------------------------------------------------------------ hub.c */

typedef struct held {
    uint64_t seq;
    int kind;           /* Mhtas__V1__Event kind_case (ListAudit scans for audits) */
    int64_t at_ms;
    uint8_t *pb;
    size_t len;
    core_audience_t aud;
} held_t;

typedef struct sub_list {
    hub_sub_t *head;
} sub_list_t;

struct hub_sub {
    hub_t *hub;
    const hub_user_t *user;
    hub_event_cb cb;
    void *ctx;
    hub_sub_t *prev, *next;   /* in police list or the user's list */
    hub_sub_t *next_dead;
    bool dead;
};

struct hub {
    uv_loop_t *loop;
    const hub_config_t *cfg;
    core_t *core;

    /* the core's view of the configuration (pointers into cfg) */
    hub_core_config_t ccfg;     /* the config in the core's form */

    uv_timer_t timer;
    int64_t wall0_ms;      /* wall clock when the hub started */
    uint64_t loop0_ms;     /* uv_now() at the same moment */
    int handles_open;

    /* events held for Subscribe(after_seq): a ring, oldest at ring_head */
    held_t *ring;
    size_t ring_cap, ring_head, ring_len;

    sub_list_t police;      /* operators, dispatchers, supervisors */
    sub_list_t *by_user;    /* practitioners, indexed by user */
    uint32_t *sub_count;    /* live subscriptions per user */
    uint8_t *told_connected;/* what the core was last told, per user */
    hub_sub_t *dead;        /* unsubscribed, freed in settle() */
    int busy;

    /* latency of the call being run, for the histograms */
    uint64_t call_t0_ns;
    const hub_method_t *call_method;
    bool call_observed;

    hub_metrics_t metrics;

    /* durability (hub_journal.c); journal == NULL: in memory only */
    struct journal *journal;
    uv_prepare_t prepare;       /* commits the turn's records */
    uint64_t last_ticket;       /* highest ticket appended */
    uint64_t restored_seq;      /* highest event seq found in the journal at start */
    bool journal_down;          /* failed or full: state changes are refused */
    const char *journal_down_why;
    bool restoring;             /* replaying: nothing is journalled again */
    bool closing;
    hub_call_t *pending_head, *pending_tail; /* replies waiting for a sync */
    uint64_t audits_appended;   /* audit records appended to the journal */

    /* care records (hub_care.c); cache == NULL: none configured */
    struct care_cache *cache;
};

/* A reply waiting for the journal: it goes out once every record appended
 * before it was made is on disk. */
struct hub_call {
    hub_t *hub;
    uint64_t ticket;
    const hub_method_t *method;
    hub_reply_cb cb;
    void *ctx;
    ProtobufCMessage *resp;
    bool cancelled;
    hub_call_t *next;
    struct care_call *care;   /* a care-record call (hub_care.c), else NULL */
};



core_t *hub__core(hub_t *hub);
int64_t hub__now_ms(hub_t *hub);
/* Keeps an event (packed Event bytes, owned from now on) for resume and ListAudit. */
void hub__hold_event(hub_t *hub, const Mhtas__V1__Event *e, uint8_t *pb, size_t len, const core_audience_t *aud);
void hub__settle(hub_t *hub);

/* ----------------------------------------------------------- hub_journal.c */

/* Opens the journal in cfg->data_dir (creating it), rebuilds the core from
 * it and writes a fresh snapshot. Returns 0, or -1 with err filled in. */
int hub_journal__open(hub_t *hub, char *err, size_t errlen);
/* Appends a state-changing event (called from emit). */
void hub_journal__record(hub_t *hub, const Mhtas__V1__Event *ev, const core_audience_t *aud);
/* Whether a method changes state (and so must wait for the journal). */
bool hub_journal__changes_state(const hub_method_t *m);
/* Holds a successful reply until the journal has synced everything appended
 * so far. Returns 1 with *out set when it holds it, 0 when nothing is pending
 * (the caller replies now), -1 when it cannot hold it (out of memory: the
 * caller must not report success). */
int hub_journal__defer(hub_t *hub, const hub_method_t *m, ProtobufCMessage *resp, hub_reply_cb cb,
                       void *ctx, hub_call_t **out);
/* Queues an existing call (a care-record call) behind everything appended
 * so far. Returns 1 when queued, 0 when nothing is pending (the caller goes
 * on at once). */
int hub_journal__enqueue(hub_t *hub, hub_call_t *c);
/* Commits what was appended; flushes, snapshots and closes at shutdown. */
void hub_journal__close(hub_t *hub);
void hub_journal__free(hub_t *hub);

/* ------------------------------------------------------------- hub_care.c */

/* Connects the care-summary cache when [cache] configures one. 0 or -1. */
int hub_care__open(hub_t *hub, char *err, size_t errlen);
/* Stops the cache; its look-ups in flight fail. */
void hub_care__close(hub_t *hub);
/* Whether hub_care__call runs this method. */
bool hub_care__handles(const hub_method_t *m);
/* Runs a care-record method (the role gate has passed): as hub_call. */
hub_call_t *hub_care__call(hub_t *hub, const hub_user_t *caller, const hub_method_t *m,
                           const ProtobufCMessage *req, hub_reply_cb cb, void *ctx);
/* The journal made a care call's records durable (status OK, not
 * cancelled): takes the call over (replies, or starts its next step). */
void hub_care__durable(hub_call_t *c);
/* Frees a care call's own state (not the call). */
void hub_care__free(hub_call_t *c);
/* The front end gave up on the call: true when hub_care took care of it
 * (a look-up in flight was cancelled and the call freed). */
bool hub_care__cancel(hub_call_t *c);

#endif
