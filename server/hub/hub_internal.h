/* hub_internal.h -- shared between the files of server/hub/ only. */
#ifndef MHTAS_HUB_INTERNAL_H
#define MHTAS_HUB_INTERNAL_H

#include "core/core.h"
#include "hub/hub.h"

/* ---------------------------------------------------------- hub_methods.c */

/* Builds the method table from the generated service descriptor and checks
 * that ws.proto's envelopes follow the naming rule. Returns 0, or -1 with err. */
int hub_methods__init(char *err, size_t errlen);

/* Runs one method in the core (or, for WhoAmI, in the hub). On success
 * *resp is a hub-allocated message. Returns a HUB_GRPC_* status and, when it
 * is not OK, sets *message to a string valid until the next call. */
int hub_methods__run(hub_t *hub, const hub_user_t *caller, const hub_method_t *m,
                     const ProtobufCMessage *req, ProtobufCMessage **resp, const char **message);

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

core_t *hub__core(hub_t *hub);
int64_t hub__now_ms(hub_t *hub);

#endif
