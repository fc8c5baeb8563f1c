/* hub_methods.c -- the method table: one row per Hub method, with the roles
 * allowed to call it and the core function that runs it.
 *
 * The table is built from the service descriptor that protoc-c generated
 * from proto/mhtas/v1/hub.proto, so a method added to the proto without a
 * row here is refused at start-up rather than silently unimplemented. The
 * same table serves both front ends: gRPC finds a method by its path,
 * WebSocket by its ClientFrame field name. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "hub_internal.h"
#include "mhtas/v1/ws.pb-c.h"
#include "util/alloc.h"

#define ROLE(r) (1u << MHTAS__V1__ROLE__ROLE_##r)
#define POLICE (ROLE(OPERATOR) | ROLE(DISPATCHER) | ROLE(SUPERVISOR))
#define ANYONE (POLICE | ROLE(PRACTITIONER))

typedef int (*run_fn)(core_t *, int64_t, int, const ProtobufCMessage *, ProtobufCMessage **);

/* The core's functions are typed per method; these wrappers give them one
 * shape without casting function pointers (calling through a cast pointer
 * is undefined behaviour). */
#define WRAP(fn, Req, Resp)                                                                   \
    static int run_##fn(core_t *c, int64_t now, int user, const ProtobufCMessage *req,       \
                        ProtobufCMessage **resp)                                              \
    {                                                                                         \
        Resp *r = NULL;                                                                       \
        int rc = core_##fn(c, now, user, (const Req *)req, &r);                               \
        *resp = r ? &r->base : NULL;                                                          \
        return rc;                                                                            \
    }

WRAP(raise_incident, Mhtas__V1__RaiseIncidentRequest, Mhtas__V1__RaiseIncidentResponse)
WRAP(cancel_incident, Mhtas__V1__CancelIncidentRequest, Mhtas__V1__CancelIncidentResponse)
WRAP(get_incident, Mhtas__V1__GetIncidentRequest, Mhtas__V1__GetIncidentResponse)
WRAP(list_incidents, Mhtas__V1__ListIncidentsRequest, Mhtas__V1__ListIncidentsResponse)
WRAP(start_shift, Mhtas__V1__StartShiftRequest, Mhtas__V1__StartShiftResponse)
WRAP(end_shift, Mhtas__V1__EndShiftRequest, Mhtas__V1__EndShiftResponse)
WRAP(set_availability, Mhtas__V1__SetAvailabilityRequest, Mhtas__V1__SetAvailabilityResponse)
WRAP(accept, Mhtas__V1__AcceptRequest, Mhtas__V1__AcceptResponse)
WRAP(decline, Mhtas__V1__DeclineRequest, Mhtas__V1__DeclineResponse)
WRAP(post_message, Mhtas__V1__PostMessageRequest, Mhtas__V1__PostMessageResponse)
WRAP(propose_outcome, Mhtas__V1__ProposeOutcomeRequest, Mhtas__V1__ProposeOutcomeResponse)
WRAP(agree_outcome, Mhtas__V1__AgreeOutcomeRequest, Mhtas__V1__AgreeOutcomeResponse)
WRAP(reassign, Mhtas__V1__ReassignRequest, Mhtas__V1__ReassignResponse)
WRAP(get_board, Mhtas__V1__GetBoardRequest, Mhtas__V1__GetBoardResponse)
WRAP(get_indicators, Mhtas__V1__GetIndicatorsRequest, Mhtas__V1__GetIndicatorsResponse)

typedef struct row {
    const char *name;
    unsigned roles;      /* bitmask over Mhtas__V1__Role */
    run_fn run;          /* NULL: handled by the hub itself */
    const char *who;     /* for PERMISSION_DENIED messages */
} row_t;

static const row_t rows[] = {
    { "WhoAmI", ANYONE, NULL, "everyone" },
    { "RaiseIncident", POLICE, run_raise_incident, "operators, dispatchers and supervisors" },
    { "CancelIncident", POLICE, run_cancel_incident, "operators, dispatchers and supervisors" },
    { "GetIncident", ANYONE, run_get_incident, "everyone" },
    { "ListIncidents", ANYONE, run_list_incidents, "everyone" },
    { "StartShift", ROLE(PRACTITIONER), run_start_shift, "practitioners" },
    { "EndShift", ROLE(PRACTITIONER), run_end_shift, "practitioners" },
    { "SetAvailability", ROLE(PRACTITIONER), run_set_availability, "practitioners" },
    { "Accept", ROLE(PRACTITIONER), run_accept, "practitioners" },
    { "Decline", ROLE(PRACTITIONER), run_decline, "practitioners" },
    { "PostMessage", ANYONE, run_post_message, "everyone" },
    { "ProposeOutcome", ROLE(PRACTITIONER), run_propose_outcome, "practitioners" },
    { "AgreeOutcome", POLICE, run_agree_outcome, "operators, dispatchers and supervisors" },
    { "Reassign", ROLE(SUPERVISOR), run_reassign, "supervisors" },
    { "GetBoard", ROLE(SUPERVISOR), run_get_board, "supervisors" },
    { "GetIndicators", ROLE(SUPERVISOR), run_get_indicators, "supervisors" },
    /* Care records: run by hub_care.c (they wait for the cache and the
     * journal); the core checks the finer rules (core_check_care_access). */
    { "SearchPersons", ROLE(PRACTITIONER), NULL, "practitioners" },
    { "GetCareSummary", ROLE(PRACTITIONER), NULL, "practitioners" },
    { "ShareWithPolice", ROLE(PRACTITIONER), NULL, "practitioners" },
    { "ListAudit", ROLE(SUPERVISOR), NULL, "supervisors" },
    { "Subscribe", ANYONE, NULL, "everyone" },
};

#define MAX_METHODS 32

typedef struct entry {
    hub_method_t m;
    const row_t *row;
    char path[64];
    char ws_field[48];
} entry_t;

static entry_t table[MAX_METHODS];
static unsigned n_table;

/* "RaiseIncident" -> "raise_incident" */
static void snake_case(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 2 < outlen; i++) {
        if (isupper((unsigned char)in[i])) {
            if (i > 0)
                out[o++] = '_';
            out[o++] = (char)tolower((unsigned char)in[i]);
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

int hub_methods__init(char *err, size_t errlen)
{
    if (n_table > 0)
        return 0;
    const ProtobufCServiceDescriptor *sd = &mhtas__v1__hub__descriptor;
    if (sd->n_methods > MAX_METHODS) {
        snprintf(err, errlen, "too many methods in mhtas.v1.Hub");
        return -1;
    }
    for (unsigned i = 0; i < sd->n_methods; i++) {
        const ProtobufCMethodDescriptor *md = &sd->methods[i];
        entry_t *e = &table[i];
        e->row = NULL;
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
            if (strcmp(rows[r].name, md->name) == 0)
                e->row = &rows[r];
        if (e->row == NULL) {
            snprintf(err, errlen, "method mhtas.v1.Hub/%s has no row in the method table", md->name);
            return -1;
        }
        snprintf(e->path, sizeof e->path, "/mhtas.v1.Hub/%s", md->name);
        snake_case(md->name, e->ws_field, sizeof e->ws_field);
        e->m.name = md->name;
        e->m.path = e->path;
        e->m.ws_field = e->ws_field;
        e->m.input = md->input;
        e->m.output = md->output;
        e->m.server_streaming = strcmp(md->name, "Subscribe") == 0;
        e->m.index = i;

        /* ws.proto's rule: ClientFrame.<ws_field> has the request type, and
         * ServerFrame.<ws_field> the response type (Subscribe answers with a
         * SubscribeAck, then events). */
        const ProtobufCFieldDescriptor *cf =
            protobuf_c_message_descriptor_get_field_by_name(&mhtas__v1__client_frame__descriptor, e->ws_field);
        const ProtobufCFieldDescriptor *sf =
            protobuf_c_message_descriptor_get_field_by_name(&mhtas__v1__server_frame__descriptor, e->ws_field);
        const ProtobufCMessageDescriptor *want_out =
            e->m.server_streaming ? &mhtas__v1__subscribe_ack__descriptor : md->output;
        if (cf == NULL || cf->descriptor != md->input || sf == NULL || sf->descriptor != want_out) {
            snprintf(err, errlen, "ws.proto: ClientFrame/ServerFrame field %s does not match method %s",
                     e->ws_field, md->name);
            return -1;
        }
    }
    n_table = sd->n_methods;
    return 0;
}

const hub_method_t *hub_method_by_path(const char *path, size_t len)
{
    for (unsigned i = 0; i < n_table; i++)
        if (strlen(table[i].path) == len && memcmp(table[i].path, path, len) == 0)
            return &table[i].m;
    return NULL;
}

const hub_method_t *hub_method_by_ws_field(const char *field)
{
    for (unsigned i = 0; i < n_table; i++)
        if (strcmp(table[i].ws_field, field) == 0)
            return &table[i].m;
    return NULL;
}

const hub_method_t *hub_method_by_index(unsigned index)
{
    return index < n_table ? &table[index].m : NULL;
}

unsigned hub_method_count(void)
{
    return n_table;
}

static char *dup_or_empty(const char *s)
{
    return (s && *s) ? hub_strdup(s) : (char *)protobuf_c_empty_string;
}

static char **dup_list(char **in, size_t n)
{
    if (n == 0)
        return NULL;
    char **out = hub_calloc(n, sizeof *out);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = hub_strdup(in[i]);
    return out;
}

Mhtas__V1__WhoAmIResponse *hub_methods__whoami(hub_t *hub, const hub_user_t *u)
{
    const hub_config_t *cfg = hub_config(hub);
    Mhtas__V1__WhoAmIResponse *r = hub_malloc(sizeof *r);
    Mhtas__V1__User *user = hub_malloc(sizeof *user);
    if (r == NULL || user == NULL) {
        hub_free(r);
        hub_free(user);
        return NULL;
    }
    mhtas__v1__who_am_iresponse__init(r);
    mhtas__v1__user__init(user);
    user->id = dup_or_empty(u->id);
    user->display_name = dup_or_empty(u->display_name);
    user->role = u->role;
    user->provider = dup_or_empty(u->provider);
    user->skills = dup_list(u->skills, u->n_skills);
    user->n_skills = user->skills ? u->n_skills : 0;
    user->boroughs = dup_list(u->boroughs, u->n_boroughs);
    user->n_boroughs = user->boroughs ? u->n_boroughs : 0;
    user->capacity = u->capacity;
    r->user = user;
    if (cfg->n_boroughs > 0) {
        r->boroughs = hub_calloc(cfg->n_boroughs, sizeof *r->boroughs);
        if (r->boroughs) {
            r->n_boroughs = cfg->n_boroughs;
            for (size_t i = 0; i < cfg->n_boroughs; i++)
                r->boroughs[i] = hub_strdup(cfg->boroughs[i].name);
        }
    }
    r->last_seq = hub_last_seq(hub);
    return r;
}

int hub_methods__gate(const hub_user_t *caller, const hub_method_t *m, const ProtobufCMessage *req,
                      const char **message)
{
    static char msg[160];
    const entry_t *e = &table[m->index];
    *message = NULL;
    if (!(e->row->roles & (1u << caller->role))) {
        snprintf(msg, sizeof msg, "%s is for %s", m->name, e->row->who);
        *message = msg;
        return HUB_GRPC_PERMISSION_DENIED;
    }
    if (req->descriptor != m->input) {
        *message = "request has the wrong message type";
        return HUB_GRPC_INTERNAL;
    }
    return HUB_GRPC_OK;
}

int hub_methods__run(hub_t *hub, const hub_user_t *caller, const hub_method_t *m,
                     const ProtobufCMessage *req, ProtobufCMessage **resp, const char **message)
{
    const entry_t *e = &table[m->index];
    *resp = NULL;
    int gate = hub_methods__gate(caller, m, req, message);
    if (gate != HUB_GRPC_OK)
        return gate;
    if (e->row->run == NULL) {
        if (strcmp(m->name, "WhoAmI") == 0) {
            Mhtas__V1__WhoAmIResponse *w = hub_methods__whoami(hub, caller);
            if (w == NULL) {
                *message = "out of memory";
                return HUB_GRPC_RESOURCE_EXHAUSTED;
            }
            *resp = &w->base;
            return HUB_GRPC_OK;
        }
        *message = "Subscribe is a streaming method";
        return HUB_GRPC_INVALID_ARGUMENT;
    }
    core_t *core = hub__core(hub);
    int rc = e->row->run(core, hub__now_ms(hub), caller->index, req, resp);
    if (rc != CORE_OK) {
        *message = core_last_error(core);
        return core_grpc_status(rc);
    }
    return HUB_GRPC_OK;
}
