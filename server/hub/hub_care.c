/* hub_care.c -- the care-record methods: SearchPersons, GetCareSummary,
 * ShareWithPolice (practitioners) and ListAudit (supervisors).
 *
 * Audit before release. A look-up goes:
 *   role gate (hub_methods.c) -> core_check_care_access (the pure rules:
 *   practitioner, lawful basis and reason, the incident they hold or
 *   break-glass with a reason code and text) -> the cache look-up (async,
 *   care_cache.h) -> on its answer: the rules again (time has passed), then
 *   one audit event per person returned or read (plus a BREAK_GLASS record
 *   and a supervisors' notice for a break-glass) -> the call waits in the
 *   journal's pending list (hub_journal__enqueue) until those records are
 *   fdatasync'ed -> only then the reply with the data goes out.
 * If an audit record cannot be appended (journal down or full, out of
 * memory) the data is not released: UNAVAILABLE. Without a journal
 * ([hub] data_dir empty) there is no durable audit, so look-ups are refused.
 *
 * A share is two steps, so that the police see nothing before its audit
 * record is on disk: core_check_share -> SHARE audit record -> durable ->
 * core_share_post (the MESSAGE_KIND_SHARE message into the incident, fanned
 * out to the police) -> durable -> the reply.
 *
 * A caller that goes away (hub_call_cancel) cancels the cache look-up in
 * flight (care_cache_cancel) and the call is freed; once the call waits for
 * the journal it is only marked cancelled and freed when released.
 *
 * Logs: method, user id, status and counts; never names, NHS numbers or
 * record content (the audit trail is in the journal, not in logs).
 */
#include <stdio.h>
#include <string.h>

#include "cache/care_cache.h"
#include "hub_internal.h"
#include "log/log.h"
#include "util/alloc.h"

#define AUDIT_MAX_RESULTS 1000

enum { CC_SEARCH, CC_READ, CC_SHARE, CC_AUDIT };
enum { ST_LOOKUP, ST_AUDITED, ST_SHARE_AUDITED, ST_SHARE_POSTED };

typedef struct care_call {
    hub_t *hub;
    const hub_user_t *caller;
    int kind;                  /* CC_* */
    int stage;                 /* ST_* */
    care_cache_req_t *creq;    /* the look-up in flight, or NULL */
    core_care_access_t acc;    /* strings below are owned copies */
    char *reason, *bg_text;
    char nhs[11];              /* GetCareSummary / ShareWithPolice: digits only */
    Mhtas__V1__ShareWithPoliceRequest *share; /* owned copy */
    uint64_t disclosure_id;
    unsigned records;          /* audit records written */
    int final_status;          /* sent once the records are durable */
    const char *final_message;
} care_call_t;

static int64_t cache_clock(void *arg)
{
    return hub__now_ms(arg);
}

bool hub_care__handles(const hub_method_t *m)
{
    return strcmp(m->name, "SearchPersons") == 0 || strcmp(m->name, "GetCareSummary") == 0 ||
           strcmp(m->name, "ShareWithPolice") == 0 || strcmp(m->name, "ListAudit") == 0;
}

/* ------------------------------------------------------------- lifecycle */

int hub_care__open(hub_t *hub, char *err, size_t errlen)
{
    const hub_config_t *cfg = hub->cfg;
    bool sock = cfg->redis_socket && cfg->redis_socket[0];
    if (cfg->redis_port == 0 && !sock) {
        hub_log(HUB_LOG_INFO, "care", "event=cache_disabled reason=\"[cache] redis_port is 0: care-record "
                                      "look-ups answer UNAVAILABLE\"");
        return 0;
    }
    care_cache_config_t cc = {
        .host = cfg->redis_host,
        .port = (int)cfg->redis_port,
        .unix_path = sock ? cfg->redis_socket : NULL,
        .command_timeout_ms = cfg->cache_command_timeout_ms,
        .max_reply_bytes = cfg->cache_max_reply_bytes,
        .stale_after_ms = (int64_t)cfg->cache_stale_after_days * 86400000LL,
        .clock_ms = cache_clock,
        .clock_arg = hub,
    };
    hub->cache = care_cache_new(hub->loop, &cc);
    if (hub->cache == NULL) {
        snprintf(err, errlen, "[cache]: cannot create the care-summary cache client (redis_host must be an IP "
                              "address, or out of memory)");
        return -1;
    }
    care_cache_start(hub->cache);
    if (sock)
        hub_log(HUB_LOG_INFO, "care", "event=cache_configured socket=%s", cfg->redis_socket);
    else
        hub_log(HUB_LOG_INFO, "care", "event=cache_configured host=%s port=%u", cfg->redis_host, cfg->redis_port);
    return 0;
}

void hub_care__close(hub_t *hub)
{
    if (hub->cache) {
        care_cache_close(hub->cache, NULL, NULL);
        hub->cache = NULL;
    }
}

/* ----------------------------------------------------------------- calls */

/* Digits only (spaces and hyphens dropped), at most 10. */
static void nhs_digits(const char *in, char out[11])
{
    size_t n = 0;
    for (; in && *in && n < 10; in++)
        if (*in >= '0' && *in <= '9')
            out[n++] = *in;
    out[n] = '\0';
}

void hub_care__free(hub_call_t *c)
{
    care_call_t *cc = c->care;
    if (cc == NULL)
        return;
    if (cc->share)
        protobuf_c_message_free_unpacked(&cc->share->base, hub_pb_allocator());
    hub_free(cc->reason);
    hub_free(cc->bg_text);
    hub_free(cc);
    c->care = NULL;
}

static void call_free(hub_call_t *c)
{
    if (c->resp)
        protobuf_c_message_free_unpacked(c->resp, hub_pb_allocator());
    hub_care__free(c);
    hub_free(c);
}

/* Replies (unless cancelled) and frees the call. */
static void finish(hub_call_t *c, int status, const char *message)
{
    care_call_t *cc = c->care;
    hub_log(status ? HUB_LOG_INFO : HUB_LOG_DEBUG, "care", "event=call method=%s user=%s status=%d audit_records=%u",
            c->method->name, cc->caller->id, status, cc->records);
    if (!c->cancelled) {
        hub_reply_t reply = { .status = status, .message = message, .msg = status == HUB_GRPC_OK ? c->resp : NULL };
        c->cb(c->ctx, &reply);
    }
    call_free(c);
}

bool hub_care__cancel(hub_call_t *c)
{
    if (c->care == NULL || c->care->creq == NULL)
        return false;
    care_cache_cancel(c->care->creq);
    c->care->creq = NULL;
    call_free(c);
    return true;
}

/* The journal must be able to take the audit trail. */
static const char *audit_unavailable(hub_t *hub)
{
    if (hub->closing)
        return "the hub is shutting down";
    if (hub->journal == NULL)
        return "care-record look-ups need the durable journal ([hub] data_dir): no audit trail, no access";
    if (hub->journal_down)
        return "the audit trail cannot be written right now (journal unavailable): care records are not released";
    return NULL;
}

/* Appends one audit record (through the core, so it is an Event like any
 * other). 0 when it reached the journal; -1 otherwise (then the data must
 * not be released). */
static int audit(hub_call_t *c, Mhtas__V1__AuditAction action, const char *nhs, bool restricted,
                 uint64_t *seq)
{
    care_call_t *cc = c->care;
    hub_t *hub = cc->hub;
    if (audit_unavailable(hub))
        return -1;
    Mhtas__V1__AuditRecord r = MHTAS__V1__AUDIT_RECORD__INIT;
    r.action = action;
    r.incident_id = cc->acc.incident_id;
    r.nhs_number = (char *)(nhs ? nhs : "");
    r.lawful_basis = cc->acc.lawful_basis;
    r.reason = cc->reason ? cc->reason : (char *)"";
    r.break_glass = cc->acc.break_glass;
    r.break_glass_reason = cc->acc.break_glass_reason;
    r.break_glass_text = cc->bg_text ? cc->bg_text : (char *)"";
    r.method = (char *)c->method->name;
    r.restricted = restricted;
    if (cc->share) {
        r.n_parts = cc->share->n_parts;
        r.parts = cc->share->parts;
    }
    uint64_t before = hub->audits_appended;
    hub->busy++;
    int rc = core_emit_audit(hub->core, hub__now_ms(hub), cc->caller->index, &r, seq);
    hub->busy--;
    if (rc != CORE_OK || hub->audits_appended != before + 1 || hub->journal_down)
        return -1;
    cc->records++;
    return 0;
}

/* The records are appended: wait for them to be durable, then reply with
 * final_status (hub_care__durable). */
static void wait_durable(hub_call_t *c, int status, const char *message)
{
    c->care->final_status = status;
    c->care->final_message = message;
    if (hub_journal__enqueue(c->care->hub, c) == 0)
        finish(c, status, message); /* already durable (cannot normally happen) */
}

static void audit_failed(hub_call_t *c)
{
    const char *why = audit_unavailable(c->care->hub);
    finish(c, HUB_GRPC_UNAVAILABLE,
           why ? why : "the audit record could not be written: care records are not released");
}

/* The rules again when the cache answers: the incident may have moved on. */
static int recheck(hub_call_t *c, const char **message)
{
    care_call_t *cc = c->care;
    hub_t *hub = cc->hub;
    hub->busy++;
    int rc = core_check_care_access(hub->core, hub__now_ms(hub), cc->caller->index, &cc->acc);
    hub->busy--;
    *message = core_last_error(hub->core);
    return core_grpc_status(rc);
}

static void on_summary(void *ctx, const care_status_t *st, const Mhtas__V1__GetCareSummaryResponse *resp)
{
    hub_call_t *c = ctx;
    care_call_t *cc = c->care;
    hub_t *hub = cc->hub;
    cc->creq = NULL;
    int status = st->code;
    const char *message = st->message;
    if (status == CARE_OK || status == CARE_NOT_FOUND) {
        int s2 = recheck(c, &message);
        if (s2 != HUB_GRPC_OK) {
            finish(c, s2, message);
            hub__settle(hub);
            return;
        }
        message = st->message;
    }
    if (status == CARE_OK && resp->restricted && !cc->acc.break_glass) {
        status = HUB_GRPC_PERMISSION_DENIED;
        message = "this record is restricted: break the glass (with a reason code and text) to read it";
    }
    bool bg = cc->acc.break_glass && (status == CARE_OK || status == CARE_NOT_FOUND);
    if (status == CARE_OK && (c->resp = hub_pb_clone(&resp->base)) == NULL) {
        status = HUB_GRPC_RESOURCE_EXHAUSTED;
        message = "out of memory";
    }
    if (status != CARE_OK && !bg) {
        finish(c, status, message);
        hub__settle(hub);
        return;
    }
    const char *nhs = status == CARE_OK && resp->summary ? resp->summary->nhs_number : cc->nhs;
    bool restricted = status == CARE_OK && resp->restricted;
    uint64_t seq = 0;
    if ((bg && audit(c, MHTAS__V1__AUDIT_ACTION__AUDIT_ACTION_BREAK_GLASS, nhs, restricted, NULL) != 0) ||
        (status == CARE_OK && audit(c, MHTAS__V1__AUDIT_ACTION__AUDIT_ACTION_READ, nhs, restricted, &seq) != 0)) {
        audit_failed(c);
    } else {
        if (c->resp)
            ((Mhtas__V1__GetCareSummaryResponse *)c->resp)->audit_seq = seq;
        cc->stage = ST_AUDITED;
        wait_durable(c, status, message);
    }
    hub__settle(hub);
}

static void on_search(void *ctx, const care_status_t *st, const Mhtas__V1__SearchPersonsResponse *resp)
{
    hub_call_t *c = ctx;
    care_call_t *cc = c->care;
    hub_t *hub = cc->hub;
    cc->creq = NULL;
    int status = st->code;
    const char *message = st->message;
    if (status == CARE_OK) {
        status = recheck(c, &message);
        if (status == HUB_GRPC_OK && (c->resp = hub_pb_clone(&resp->base)) == NULL) {
            status = HUB_GRPC_RESOURCE_EXHAUSTED;
            message = "out of memory";
        }
    }
    if (status != CARE_OK) {
        finish(c, status, message);
        hub__settle(hub);
        return;
    }
    const Mhtas__V1__SearchPersonsResponse *r = (const Mhtas__V1__SearchPersonsResponse *)c->resp;
    bool ok = !cc->acc.break_glass ||
              audit(c, MHTAS__V1__AUDIT_ACTION__AUDIT_ACTION_BREAK_GLASS, NULL, false, NULL) == 0;
    for (size_t i = 0; ok && i < r->n_matches; i++)
        ok = audit(c, MHTAS__V1__AUDIT_ACTION__AUDIT_ACTION_SEARCH_RESULT, r->matches[i]->nhs_number,
                   r->matches[i]->restricted, NULL) == 0;
    if (!ok) {
        audit_failed(c);
    } else if (cc->records == 0) {
        finish(c, HUB_GRPC_OK, NULL); /* nobody found: nothing to audit or release */
    } else {
        cc->stage = ST_AUDITED;
        wait_durable(c, HUB_GRPC_OK, NULL);
    }
    hub__settle(hub);
}

void hub_care__durable(hub_call_t *c)
{
    care_call_t *cc = c->care;
    hub_t *hub = cc->hub;
    if (cc->stage != ST_SHARE_AUDITED) {
        finish(c, cc->final_status, cc->final_message);
        return;
    }
    /* The SHARE record is on disk: now the police may see the share. */
    Mhtas__V1__ShareWithPoliceResponse *r = NULL;
    hub->busy++;
    int rc = core_share_post(hub->core, hub__now_ms(hub), cc->caller->index, cc->share, cc->disclosure_id, &r);
    hub->busy--;
    if (rc != CORE_OK) {
        finish(c, core_grpc_status(rc), core_last_error(hub->core));
        return;
    }
    c->resp = &r->base;
    cc->stage = ST_SHARE_POSTED;
    if (hub->journal_down)
        finish(c, HUB_GRPC_UNAVAILABLE, hub->journal_down_why);
    else
        wait_durable(c, HUB_GRPC_OK, NULL);
}

/* ------------------------------------------------------------- ListAudit */

static bool audit_matches(const Mhtas__V1__ListAuditRequest *q, const Mhtas__V1__AuditRecord *a)
{
    if (q->user_id[0] && strcmp(q->user_id, a->user_id) != 0)
        return false;
    if (q->nhs_number[0]) {
        char want[11];
        nhs_digits(q->nhs_number, want);
        if (strcmp(want, a->nhs_number) != 0)
            return false;
    }
    if (q->incident_id && q->incident_id != a->incident_id)
        return false;
    if (q->action && q->action != a->action)
        return false;
    return true;
}

static int list_audit(hub_t *hub, const Mhtas__V1__ListAuditRequest *q, Mhtas__V1__ListAuditResponse **out,
                      const char **message)
{
    if (q->to_ms && q->from_ms > q->to_ms) {
        *message = "from_ms is after to_ms";
        return HUB_GRPC_INVALID_ARGUMENT;
    }
    uint32_t max = q->max_results && q->max_results <= AUDIT_MAX_RESULTS ? q->max_results : AUDIT_MAX_RESULTS;
    Mhtas__V1__ListAuditResponse *r = hub_malloc(sizeof *r);
    if (r)
        mhtas__v1__list_audit_response__init(r);
    if (r == NULL || (r->entries = hub_calloc(max, sizeof *r->entries)) == NULL) {
        hub_free(r);
        *message = "out of memory";
        return HUB_GRPC_RESOURCE_EXHAUSTED;
    }
    for (size_t i = 0; i < hub->ring_len; i++) {
        const held_t *h = &hub->ring[(hub->ring_head + i) % hub->ring_cap];
        if (h->kind != MHTAS__V1__EVENT__KIND_AUDIT || h->at_ms < q->from_ms || (q->to_ms && h->at_ms >= q->to_ms))
            continue;
        Mhtas__V1__Event *e = mhtas__v1__event__unpack(hub_pb_allocator(), h->len, h->pb);
        if (e == NULL || e->audit == NULL || !audit_matches(q, e->audit)) {
            if (e)
                mhtas__v1__event__free_unpacked(e, hub_pb_allocator());
            continue;
        }
        if (r->n_entries == max) {
            r->more = 1;
            mhtas__v1__event__free_unpacked(e, hub_pb_allocator());
            break;
        }
        Mhtas__V1__AuditEntry *en = hub_malloc(sizeof *en);
        if (en == NULL) {
            mhtas__v1__event__free_unpacked(e, hub_pb_allocator());
            protobuf_c_message_free_unpacked(&r->base, hub_pb_allocator());
            *message = "out of memory";
            return HUB_GRPC_RESOURCE_EXHAUSTED;
        }
        mhtas__v1__audit_entry__init(en);
        en->seq = e->seq;
        en->at_ms = e->at_ms;
        en->record = e->audit; /* moved out of the event */
        e->audit = NULL;
        e->kind_case = MHTAS__V1__EVENT__KIND__NOT_SET;
        mhtas__v1__event__free_unpacked(e, hub_pb_allocator());
        r->entries[r->n_entries++] = en;
    }
    *out = r;
    return HUB_GRPC_OK;
}

/* ----------------------------------------------------------------- entry */

hub_call_t *hub_care__call(hub_t *hub, const hub_user_t *caller, const hub_method_t *m,
                           const ProtobufCMessage *req, hub_reply_cb cb, void *ctx)
{
    const char *message = NULL;
    int status = HUB_GRPC_OK;
    hub_call_t *c = NULL;
    care_call_t *cc = NULL;
    int kind = strcmp(m->name, "SearchPersons") == 0     ? CC_SEARCH
               : strcmp(m->name, "GetCareSummary") == 0  ? CC_READ
               : strcmp(m->name, "ShareWithPolice") == 0 ? CC_SHARE
                                                         : CC_AUDIT;
    if (kind == CC_AUDIT) {
        Mhtas__V1__ListAuditResponse *r = NULL;
        status = list_audit(hub, (const Mhtas__V1__ListAuditRequest *)req, &r, &message);
        hub_log(status ? HUB_LOG_INFO : HUB_LOG_DEBUG, "care", "event=call method=%s user=%s status=%d entries=%zu",
                m->name, caller->id, status, r ? r->n_entries : 0);
        hub_reply_t reply = { .status = status, .message = message, .msg = r ? &r->base : NULL };
        cb(ctx, &reply);
        if (r)
            protobuf_c_message_free_unpacked(&r->base, hub_pb_allocator());
        return NULL;
    }

    core_care_access_t acc = { 0 };
    if (kind == CC_SEARCH) {
        const Mhtas__V1__SearchPersonsRequest *q = (const Mhtas__V1__SearchPersonsRequest *)req;
        acc = (core_care_access_t){ q->incident_id, q->lawful_basis, q->reason, q->break_glass,
                                    q->break_glass_reason, q->break_glass_text };
    } else if (kind == CC_READ) {
        const Mhtas__V1__GetCareSummaryRequest *q = (const Mhtas__V1__GetCareSummaryRequest *)req;
        acc = (core_care_access_t){ q->incident_id, q->lawful_basis, q->reason, q->break_glass,
                                    q->break_glass_reason, q->break_glass_text };
    } else {
        const Mhtas__V1__ShareWithPoliceRequest *q = (const Mhtas__V1__ShareWithPoliceRequest *)req;
        acc = (core_care_access_t){ .incident_id = q->incident_id, .lawful_basis = q->lawful_basis,
                                    .reason = q->reason };
    }

    /* The rules first (a police role learns nothing more than "no"). */
    hub->busy++;
    int rc = kind == CC_SHARE
                 ? core_check_share(hub->core, hub__now_ms(hub), caller->index,
                                    (const Mhtas__V1__ShareWithPoliceRequest *)req)
                 : core_check_care_access(hub->core, hub__now_ms(hub), caller->index, &acc);
    hub->busy--;
    if (rc != CORE_OK) {
        status = core_grpc_status(rc);
        message = core_last_error(hub->core);
        goto reply_now;
    }
    if (kind != CC_SHARE && hub->cache == NULL) {
        status = HUB_GRPC_UNAVAILABLE;
        message = "no care-record cache is configured";
        goto reply_now;
    }
    if ((message = audit_unavailable(hub)) != NULL) {
        status = HUB_GRPC_UNAVAILABLE;
        goto reply_now;
    }

    c = hub_calloc(1, sizeof *c);
    cc = hub_calloc(1, sizeof *cc);
    if (c == NULL || cc == NULL)
        goto nomem;
    c->hub = hub;
    c->method = m;
    c->cb = cb;
    c->ctx = ctx;
    c->care = cc;
    cc->hub = hub;
    cc->caller = caller;
    cc->kind = kind;
    cc->acc = acc;
    if ((acc.reason && (cc->reason = hub_strdup(acc.reason)) == NULL) ||
        (acc.break_glass_text && (cc->bg_text = hub_strdup(acc.break_glass_text)) == NULL))
        goto nomem;
    cc->acc.reason = cc->reason;
    cc->acc.break_glass_text = cc->bg_text;

    if (kind == CC_SEARCH) {
        cc->creq = care_cache_search(hub->cache, (const Mhtas__V1__SearchPersonsRequest *)req, on_search, c);
        if (cc->creq == NULL)
            goto nomem;
        return c;
    }
    if (kind == CC_READ) {
        const Mhtas__V1__GetCareSummaryRequest *q = (const Mhtas__V1__GetCareSummaryRequest *)req;
        nhs_digits(q->nhs_number, cc->nhs);
        cc->creq = care_cache_get_summary(hub->cache, q->nhs_number, on_summary, c);
        if (cc->creq == NULL)
            goto nomem;
        return c;
    }
    /* ShareWithPolice: the SHARE record first, durable before the police
     * see anything. */
    if ((cc->share = hub_pb_clone(req)) == NULL)
        goto nomem;
    nhs_digits(cc->share->nhs_number, cc->nhs);
    if (audit(c, MHTAS__V1__AUDIT_ACTION__AUDIT_ACTION_SHARE, cc->nhs, false, &cc->disclosure_id) != 0) {
        audit_failed(c);
        return NULL;
    }
    cc->stage = ST_SHARE_AUDITED;
    if (hub_journal__enqueue(hub, c) == 0) {
        /* Cannot happen: the record was just appended and is not synced. */
        finish(c, HUB_GRPC_INTERNAL, "the share's audit record is not pending");
        return NULL;
    }
    return c;

nomem:
    status = HUB_GRPC_RESOURCE_EXHAUSTED;
    message = "out of memory";
    if (c) {
        c->care = cc;
        call_free(c);
    } else {
        hub_free(cc);
    }
reply_now:
    hub_log(HUB_LOG_INFO, "care", "event=call method=%s user=%s status=%d", m->name, caller->id, status);
    hub_reply_t reply = { .status = status, .message = message };
    cb(ctx, &reply);
    return NULL;
}
