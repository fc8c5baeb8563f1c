/* incident.c -- the Hub methods that act on incidents: raise, cancel, read,
 * accept, decline, talk, propose, agree, reassign.
 *
 * Each method follows the same order, so that a rejected request changes
 * nothing: who may call it, which incident (NOT_FOUND for one the caller may
 * not see, so that a practitioner cannot probe for incidents that are not
 * theirs), whether its state allows it, whether the request is valid, then
 * every allocation the change needs, and only then the change itself,
 * announced through the emit callback, followed by routing (core__finish).
 * The response is built last, from the state after routing.
 */
#include <stdio.h>
#include <string.h>

#include "core/core_internal.h"

#define KEY_BYTES_MAX 128

static const char *const POLICE_ROLES = "operators, dispatchers and supervisors";

static int check_user(core_t *c, int user)
{
    core__ok(c);
    if (user < 0 || (size_t)user >= c->cfg.n_users)
        return core__fail(c, CORE_E_PERM, "unknown user");
    return CORE_OK;
}

static int need_police(core_t *c, int user, const char *method)
{
    int rc = check_user(c, user);
    if (rc == CORE_OK && !core__is_police(c->cfg.users[user].role))
        rc = core__fail(c, CORE_E_PERM, "%s is for %s", method, POLICE_ROLES);
    return rc;
}

static int need_practitioner(core_t *c, int user, const char *method)
{
    int rc = check_user(c, user);
    if (rc == CORE_OK && c->cfg.users[user].role != ROLE(PRACTITIONER))
        rc = core__fail(c, CORE_E_PERM, "%s is for practitioners", method);
    return rc;
}

static int need_supervisor(core_t *c, int user, const char *method)
{
    int rc = check_user(c, user);
    if (rc == CORE_OK && c->cfg.users[user].role != ROLE(SUPERVISOR))
        rc = core__fail(c, CORE_E_PERM, "%s is for supervisors", method);
    return rc;
}

/* Police see every incident. A practitioner sees those offered to them, held
 * by them, or held by them before (their own record of their work). */
static bool can_see(const core_t *c, int user, const incident_t *inc)
{
    if (core__is_police(c->cfg.users[user].role))
        return true;
    return inc->holder == user || core__is_offeree(inc, user) || core__bit(inc->held, user);
}

static int find(core_t *c, int user, uint64_t id, incident_t **out)
{
    incident_t *inc = core__incident(c, id);
    if (inc == NULL || !can_see(c, user, inc))
        return core__fail(c, CORE_E_NOT_FOUND, "incident %llu not found", (unsigned long long)id);
    *out = inc;
    return CORE_OK;
}

static int not_open(core_t *c, const incident_t *inc)
{
    return core__fail(c, CORE_E_STATE, "incident %llu is %s", (unsigned long long)inc->id,
                      core__state_name(inc->state));
}

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int text_ok(core_t *c, const char *s, const char *name, bool required)
{
    if (required && !set(s))
        return core__fail(c, CORE_E_INVALID, "%s is required", name);
    if (s && strlen(s) > c->cfg.max_text_bytes)
        return core__fail(c, CORE_E_INVALID, "%s is longer than %u bytes", name, c->cfg.max_text_bytes);
    return CORE_OK;
}

static int nomem(core_t *c)
{
    return core__fail(c, CORE_E_NOMEM, "out of memory");
}

/* Replaces a string field of a message the core owns (it may hold the empty
 * default or a string of its own). */
static int replace_str(char **field, const char *s)
{
    char *d = (char *)protobuf_c_empty_string;
    if (set(s) && (d = hub_strdup(s)) == NULL)
        return -1;
    if (*field && *field != protobuf_c_empty_string)
        hub_free(*field);
    *field = d;
    return 0;
}

/* The practitioner who last accepted this incident, or -1. */
static int last_handler(const incident_t *inc)
{
    for (size_t i = inc->n_hist; i-- > 0;)
        if (inc->hist[i].cause == CAUSE(ACCEPTED))
            return inc->hist[i].practitioner;
    return -1;
}

/* Every response carrying an incident has the same shape: one field, the
 * snapshot. These macros keep the eleven methods from repeating it. */
#define RESPOND_INCIDENT(type, initfn, with_msgs)                                                  \
    do {                                                                                           \
        type *r_ = hub_malloc(sizeof(type));                                                       \
        if (r_ == NULL)                                                                            \
            return nomem(c);                                                                       \
        initfn(r_);                                                                                \
        if ((r_->incident = core__snap_incident(c, inc, now, with_msgs)) == NULL) {                \
            core__pb_free(r_);                                                                     \
            return nomem(c);                                                                       \
        }                                                                                          \
        *resp = r_;                                                                                \
        return CORE_OK;                                                                            \
    } while (0)

/* ----------------------------------------------------------------- raise */

static int raise_response(core_t *c, const incident_t *inc, int64_t now, Mhtas__V1__RaiseIncidentResponse **resp)
{
    RESPOND_INCIDENT(Mhtas__V1__RaiseIncidentResponse, mhtas__v1__raise_incident_response__init, true);
}

static bool reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (*cap >= need)
        return true;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = hub_realloc(*arr, n * elem);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = n;
    return true;
}

int core_raise_incident(core_t *c, int64_t now, int user, const Mhtas__V1__RaiseIncidentRequest *req,
                        Mhtas__V1__RaiseIncidentResponse **resp)
{
    *resp = NULL;
    int rc = need_police(c, user, "RaiseIncident");
    if (rc)
        return rc;
    const char *key = req->idempotency_key;
    if (set(key)) {
        if (strlen(key) > KEY_BYTES_MAX)
            return core__fail(c, CORE_E_INVALID, "idempotency_key is longer than %d bytes", KEY_BYTES_MAX);
        /* A retry of a raise that went through (its response was lost)
         * returns the incident it raised, not a second one. */
        for (size_t i = c->n_all; i-- > 0;) {
            const incident_t *inc = c->all[i];
            if (inc->raised_by == user && inc->raise_key && strcmp(inc->raise_key, key) == 0)
                return raise_response(c, inc, now, resp);
        }
    }
    int borough;
    if ((rc = core__validate_details(c, req->details, &borough)))
        return rc;
    if (c->cfg.max_open_incidents && c->n_open >= c->cfg.max_open_incidents)
        return core__fail(c, CORE_E_EXHAUSTED, "the hub already holds its maximum of %u open incidents",
                          c->cfg.max_open_incidents);

    /* Every allocation first; then nothing below can fail. The queue and
     * open list get room for this incident now, so that it can move in and
     * out of the queue later without allocating. */
    if (!reserve((void **)&c->all, &c->cap_all, c->n_all + 1, sizeof(*c->all)) ||
        !reserve((void **)&c->open, &c->cap_open, c->n_open + 1, sizeof(*c->open)) ||
        !reserve((void **)&c->queue, &c->cap_queue, c->n_open + 1, sizeof(*c->queue)))
        return nomem(c);
    incident_t *inc = hub_calloc(1, sizeof(*inc));
    if (inc == NULL)
        return nomem(c);
    inc->refused = hub_calloc(2 * c->bitset_words, sizeof(uint64_t));
    inc->hist = hub_malloc(8 * sizeof(*inc->hist));
    inc->details = core__pb_clone(&req->details->base);
    if (set(key))
        inc->raise_key = hub_strdup(key);
    if (req->details->person) {
        const Mhtas__V1__Person *p = req->details->person;
        bool keyed = set(p->nhs_number) || (set(p->family_name) && set(p->date_of_birth));
        inc->person_key = core__person_key(p);
        if (keyed && inc->person_key == NULL)
            goto oom;
    }
    if (inc->refused == NULL || inc->hist == NULL || inc->details == NULL || (set(key) && inc->raise_key == NULL))
        goto oom;
    inc->held = inc->refused + c->bitset_words;
    inc->cap_hist = 8;
    inc->id = c->n_all + 1;
    inc->borough = borough;
    inc->raised_by = user;
    inc->raised_at = inc->updated_at = now;
    inc->holder = -1;
    inc->pref = -1;
    for (size_t i = 0; i < inc->details->n_flags; i++)
        if ((unsigned)inc->details->flags[i] < 8)
            inc->needs |= c->cfg.flag_skills[inc->details->flags[i]];
    int64_t sla = c->cfg.sla_ms[inc->details->priority];
    if (sla > 0) {
        inc->sla_deadline = now + sla;
        if (c->cfg.sla_warn_percent > 0 && c->cfg.sla_warn_percent < 100)
            inc->sla_warn_at = now + sla * c->cfg.sla_warn_percent / 100;
    }
    /* The same person seen before: prefer whoever handled them last. */
    if (inc->person_key)
        for (size_t i = c->n_all; i-- > 0 && inc->pref < 0;) {
            const incident_t *o = c->all[i];
            if (o->person_key && strcmp(o->person_key, inc->person_key) == 0)
                inc->pref = last_handler(o);
        }
    c->all[c->n_all++] = inc;
    c->open[c->n_open++] = inc;
    c->raised_total++;

    tr_prep_t prep = { 0 };
    core__tr_commit(c, inc, now, &prep, ST(NEW), CAUSE(RAISED), user, -1, NULL);
    core__queue_insert(c, inc);
    core__tr_commit(c, inc, now, &prep, ST(QUEUED), CAUSE(QUEUED), CORE_ACTOR_HUB, -1, NULL);
    core__finish(c, now);
    return raise_response(c, inc, now, resp);
oom:
    core__pb_free(inc->details);
    hub_free(inc->refused);
    hub_free(inc->hist);
    hub_free(inc->raise_key);
    hub_free(inc->person_key);
    hub_free(inc);
    return nomem(c);
}

/* ---------------------------------------------------------------- cancel */

int core_cancel_incident(core_t *c, int64_t now, int user, const Mhtas__V1__CancelIncidentRequest *req,
                         Mhtas__V1__CancelIncidentResponse **resp)
{
    *resp = NULL;
    incident_t *inc;
    int rc = need_police(c, user, "CancelIncident");
    if (rc || (rc = find(c, user, req->incident_id, &inc)))
        return rc;
    if (inc->state == ST(CANCELLED) && set(req->idempotency_key) && inc->cancel_key &&
        strcmp(inc->cancel_key, req->idempotency_key) == 0)
        RESPOND_INCIDENT(Mhtas__V1__CancelIncidentResponse, mhtas__v1__cancel_incident_response__init, true);
    if (!core__is_open(inc->state))
        return not_open(c, inc);
    if ((rc = text_ok(c, req->reason, "reason", true)))
        return rc;
    if (set(req->idempotency_key) && strlen(req->idempotency_key) > KEY_BYTES_MAX)
        return core__fail(c, CORE_E_INVALID, "idempotency_key is longer than %d bytes", KEY_BYTES_MAX);

    tr_prep_t prep;
    if ((rc = core__tr_prepare(c, inc, req->reason, &prep)))
        return rc;
    char *reason = hub_strdup(req->reason);
    char *key = set(req->idempotency_key) ? hub_strdup(req->idempotency_key) : NULL;
    if (reason == NULL || (set(req->idempotency_key) && key == NULL)) {
        hub_free(reason);
        hub_free(key);
        core__tr_abort(&prep);
        return nomem(c);
    }
    inc->cancel_reason = reason;
    inc->cancel_key = key;
    core_audience_t prev = { 0 };
    core__aud_add(&prev, inc->holder);
    for (int i = 0; i < inc->n_offerees; i++)
        core__aud_add(&prev, inc->offerees[i]);
    int prev_pract = inc->holder >= 0 ? inc->holder : (inc->n_offerees ? inc->offerees[0] : -1);
    core__release(c, inc, now);
    core__offers_clear(c, inc);
    core__queue_remove(c, inc);
    core__open_remove(c, inc);
    c->cancelled_total++;
    core__tr_commit(c, inc, now, &prep, ST(CANCELLED), CAUSE(CANCELLED), user, prev_pract, &prev);
    core__finish(c, now);
    RESPOND_INCIDENT(Mhtas__V1__CancelIncidentResponse, mhtas__v1__cancel_incident_response__init, true);
}

/* ------------------------------------------------------------------ read */

int core_get_incident(core_t *c, int64_t now, int user, const Mhtas__V1__GetIncidentRequest *req,
                      Mhtas__V1__GetIncidentResponse **resp)
{
    *resp = NULL;
    incident_t *inc;
    int rc = check_user(c, user);
    if (rc || (rc = find(c, user, req->incident_id, &inc)))
        return rc;
    RESPOND_INCIDENT(Mhtas__V1__GetIncidentResponse, mhtas__v1__get_incident_response__init, true);
}

static bool listed(const core_t *c, int user, const incident_t *inc, const Mhtas__V1__ListIncidentsRequest *req)
{
    if (!can_see(c, user, inc))
        return false;
    if (req->n_states) {
        bool any = false;
        for (size_t i = 0; i < req->n_states; i++)
            any |= req->states[i] == inc->state;
        if (!any)
            return false;
    } else if (!req->include_closed && !core__is_open(inc->state)) {
        return false;
    }
    if (set(req->borough) && strcmp(req->borough, inc->details->borough) != 0)
        return false;
    if (req->priority && req->priority != inc->details->priority)
        return false;
    if (req->mine_only) {
        if (core__is_police(c->cfg.users[user].role))
            return inc->raised_by == user;
        return inc->holder == user || core__is_offeree(inc, user);
    }
    return true;
}

int core_list_incidents(core_t *c, int64_t now, int user, const Mhtas__V1__ListIncidentsRequest *req,
                        Mhtas__V1__ListIncidentsResponse **resp)
{
    *resp = NULL;
    int rc = check_user(c, user);
    if (rc)
        return rc;
    Mhtas__V1__ListIncidentsResponse *r = hub_malloc(sizeof(*r));
    if (r == NULL)
        return nomem(c);
    mhtas__v1__list_incidents_response__init(r);
    size_t n = 0;
    for (size_t i = 0; i < c->n_all; i++)
        n += listed(c, user, c->all[i], req);
    if (n && (r->incidents = hub_calloc(n, sizeof(*r->incidents))) == NULL)
        goto oom;
    /* c->all is in id order, so the list is too. */
    for (size_t i = 0; i < c->n_all && r->n_incidents < n; i++) {
        if (!listed(c, user, c->all[i], req))
            continue;
        Mhtas__V1__Incident *s = core__snap_incident(c, c->all[i], now, false);
        if (s == NULL)
            goto oom;
        r->incidents[r->n_incidents++] = s;
    }
    *resp = r;
    return CORE_OK;
oom:
    core__pb_free(r);
    return nomem(c);
}

/* ------------------------------------------------------- accept, decline */

int core_accept(core_t *c, int64_t now, int user, const Mhtas__V1__AcceptRequest *req,
                Mhtas__V1__AcceptResponse **resp)
{
    *resp = NULL;
    incident_t *inc;
    int rc = need_practitioner(c, user, "Accept");
    if (rc || (rc = find(c, user, req->incident_id, &inc)))
        return rc;
    /* A repeat (the response was lost) is answered, not refused. */
    if (core__is_held(inc->state) && inc->holder == user)
        RESPOND_INCIDENT(Mhtas__V1__AcceptResponse, mhtas__v1__accept_response__init, true);
    if (!core__is_open(inc->state))
        return not_open(c, inc);
    if (inc->state != ST(OFFERED) || !core__is_offeree(inc, user))
        return core__fail(c, CORE_E_STATE, "incident %llu is not offered to you", (unsigned long long)inc->id);

    tr_prep_t prep;
    if ((rc = core__tr_prepare(c, inc, NULL, &prep)))
        return rc;
    int others[CORE_MAX_OFFEREES], n_others = 0;
    for (int i = 0; i < inc->n_offerees; i++)
        if (inc->offerees[i] != user)
            others[n_others++] = inc->offerees[i];
    core__offers_clear(c, inc);
    core__hold(c, inc, user);
    core__queue_remove(c, inc);
    pract_t *pr = &c->pr[user];
    pr->accepts++;
    pr->missed = 0;
    c->waits[c->next_wait] = now - inc->raised_at;
    c->next_wait = (c->next_wait + 1) % CORE_WAIT_SAMPLES;
    if (c->n_waits < CORE_WAIT_SAMPLES)
        c->n_waits++;
    if (inc->first_accepted_at == 0)
        inc->first_accepted_at = now;
    /* Queued incidents about the same person now prefer this practitioner. */
    if (inc->person_key)
        for (size_t i = 0; i < c->n_queue; i++)
            if (c->queue[i]->person_key && strcmp(c->queue[i]->person_key, inc->person_key) == 0)
                c->queue[i]->pref = user;
    core__tr_commit(c, inc, now, &prep, ST(ACCEPTED), CAUSE(ACCEPTED), user, user, NULL);
    for (int i = 0; i < n_others; i++) {
        char text[96];
        snprintf(text, sizeof(text), "Incident %llu was accepted by another practitioner",
                 (unsigned long long)inc->id);
        core_audience_t aud = { 0 };
        core__aud_add(&aud, others[i]);
        core__notice(c, now, NOTICE(OFFER_WITHDRAWN), inc->id, text, &aud);
    }
    core__finish(c, now);
    RESPOND_INCIDENT(Mhtas__V1__AcceptResponse, mhtas__v1__accept_response__init, true);
}

int core_decline(core_t *c, int64_t now, int user, const Mhtas__V1__DeclineRequest *req,
                 Mhtas__V1__DeclineResponse **resp)
{
    *resp = NULL;
    incident_t *inc;
    int rc = need_practitioner(c, user, "Decline");
    if (rc || (rc = find(c, user, req->incident_id, &inc)))
        return rc;
    if (!core__is_open(inc->state))
        return not_open(c, inc);
    if (inc->state != ST(OFFERED) || !core__is_offeree(inc, user))
        return core__fail(c, CORE_E_STATE, "incident %llu is not offered to you", (unsigned long long)inc->id);
    if ((rc = text_ok(c, req->reason, "reason", false)))
        return rc;
    Mhtas__V1__DeclineResponse *r = hub_malloc(sizeof(*r));
    if (r == NULL)
        return nomem(c);
    mhtas__v1__decline_response__init(r);
    if ((rc = core__offeree_leave(c, inc, now, user, CAUSE(DECLINED), user, req->reason))) {
        core__pb_free(r);
        return rc;
    }
    core__set_bit(inc->refused, user);
    /* Declining is an answer: it does not count towards auto-pause. */
    c->pr[user].missed = 0;
    core__finish(c, now);
    *resp = r;
    return CORE_OK;
}

/* -------------------------------------------------------------- messages */

/* Appends a message; every allocation is made before the incident changes. */
int core__post(core_t *c, incident_t *inc, int64_t now, int user, const char *text, const char *client_id,
               int kind, msg_t **out)
{
    if (c->cfg.max_messages_per_incident && inc->n_msgs >= c->cfg.max_messages_per_incident)
        return core__fail(c, CORE_E_EXHAUSTED, "incident %llu already has its maximum of %u messages",
                          (unsigned long long)inc->id, c->cfg.max_messages_per_incident);
    if (!reserve((void **)&inc->msgs, &inc->cap_msgs, inc->n_msgs + 1, sizeof(*inc->msgs)))
        return nomem(c);
    char *t = hub_strdup(text);
    char *id = set(client_id) ? hub_strdup(client_id) : NULL;
    if (t == NULL || (set(client_id) && id == NULL)) {
        hub_free(t);
        hub_free(id);
        return nomem(c);
    }
    /* Numbers follow the last one (not the count): after a restore from a
     * journal that lost a message's event, numbers are never reused. */
    uint32_t number = inc->n_msgs ? inc->msgs[inc->n_msgs - 1].number + 1 : 1;
    msg_t *m = &inc->msgs[inc->n_msgs++];
    m->number = number;
    m->from = user;
    m->at = now;
    m->text = t;
    m->client_id = id;
    m->kind = kind;
    inc->updated_at = now;

    Mhtas__V1__Event *ev = core__ev_new();
    if (ev && (ev->message = core__snap_msg(c, inc, m)) != NULL) {
        ev->kind_case = MHTAS__V1__EVENT__KIND_MESSAGE;
    } else {
        core__pb_free(ev);
        ev = NULL;
    }
    core_audience_t aud;
    core__aud_incident(c, inc, &aud);
    core__emit(c, now, ev, &aud, 0);
    *out = m;
    return CORE_OK;
}

/* ------------------------------------------------- client_msg_id look-up */

static uint32_t cid_hash(int from, const char *key)
{
    uint32_t h = 2166136261u ^ (uint32_t)from; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h ^ (h >> 15);
}

static void cid_insert(incident_t *inc, size_t i)
{
    size_t mask = inc->cid_cap - 1;
    size_t s = cid_hash(inc->msgs[i].from, inc->msgs[i].client_id) & mask;
    while (inc->cid_slots[s])
        s = (s + 1) & mask;
    inc->cid_slots[s] = (uint32_t)(i + 1);
    inc->cid_count++;
}

/* Indexes the messages appended since the last look-up; false when out of
 * memory (the caller then scans). Keeps the load factor at most 1/2. */
static bool cid_sync(incident_t *inc)
{
    if (inc->n_msgs >= UINT32_MAX)
        return false;
    size_t want = inc->cid_count;
    for (size_t i = inc->cid_upto; i < inc->n_msgs; i++)
        want += inc->msgs[i].client_id != NULL;
    if (want * 2 > inc->cid_cap) {
        size_t cap = inc->cid_cap ? inc->cid_cap : 16;
        while (want * 2 > cap)
            cap *= 2;
        uint32_t *slots = hub_calloc(cap, sizeof *slots);
        if (slots == NULL)
            return false;
        hub_free(inc->cid_slots);
        inc->cid_slots = slots;
        inc->cid_cap = cap;
        inc->cid_count = 0;
        inc->cid_upto = 0;
    }
    for (size_t i = inc->cid_upto; i < inc->n_msgs; i++)
        if (inc->msgs[i].client_id)
            cid_insert(inc, i);
    inc->cid_upto = inc->n_msgs;
    return true;
}

/* The message `user` already posted with this client_msg_id, or NULL. The
 * same answer as scanning every message, without touching each one's
 * client_id string on every PostMessage. */
static msg_t *find_client_msg(incident_t *inc, int user, const char *key)
{
    if (!cid_sync(inc)) {
        for (size_t i = 0; i < inc->n_msgs; i++)
            if (inc->msgs[i].from == user && inc->msgs[i].client_id && strcmp(inc->msgs[i].client_id, key) == 0)
                return &inc->msgs[i];
        return NULL;
    }
    if (inc->cid_count == 0)
        return NULL;
    size_t mask = inc->cid_cap - 1;
    for (size_t s = cid_hash(user, key) & mask; inc->cid_slots[s]; s = (s + 1) & mask) {
        msg_t *m = &inc->msgs[inc->cid_slots[s] - 1];
        if (m->from == user && strcmp(m->client_id, key) == 0)
            return m;
    }
    return NULL;
}

static int msg_response(core_t *c, const incident_t *inc, const msg_t *m, Mhtas__V1__PostMessageResponse **resp)
{
    Mhtas__V1__PostMessageResponse *r = hub_malloc(sizeof(*r));
    if (r == NULL)
        return nomem(c);
    mhtas__v1__post_message_response__init(r);
    if ((r->message = core__snap_msg(c, inc, m)) == NULL) {
        core__pb_free(r);
        return nomem(c);
    }
    *resp = r;
    return CORE_OK;
}

int core_post_message(core_t *c, int64_t now, int user, const Mhtas__V1__PostMessageRequest *req,
                      Mhtas__V1__PostMessageResponse **resp)
{
    *resp = NULL;
    int rc = check_user(c, user);
    if (rc)
        return rc;
    bool police = core__is_police(c->cfg.users[user].role);
    if (!police && c->cfg.users[user].role != ROLE(PRACTITIONER))
        return core__fail(c, CORE_E_PERM, "PostMessage is for the practitioner holding the incident and police");
    incident_t *inc = core__incident(c, req->incident_id);
    /* A practitioner who does not hold it is told it does not exist. */
    if (inc == NULL || (!police && (inc->holder != user || !core__is_held(inc->state))))
        return core__fail(c, CORE_E_NOT_FOUND, "incident %llu not found", (unsigned long long)req->incident_id);
    if (!core__is_open(inc->state))
        return not_open(c, inc);
    /* Who may post which kind: radio read-backs and delivery reports come
     * from police roles (the dispatcher's relay); shares are written by the
     * hub's ShareWithPolice, never posted directly. */
    int kind = req->kind ? (int)req->kind : MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_TEXT;
    if (kind == MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_SHARE ||
        (kind != MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_TEXT && kind != MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_READ_BACK &&
         kind != MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_RADIO_STATUS))
        return core__fail(c, CORE_E_INVALID, "kind must be MESSAGE_KIND_TEXT, MESSAGE_KIND_READ_BACK or MESSAGE_KIND_RADIO_STATUS");
    if (kind != MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_TEXT && !police)
        return core__fail(c, CORE_E_PERM, "only police roles post read-backs and radio status");
    if ((rc = text_ok(c, req->text, "text", true)))
        return rc;
    if (set(req->client_msg_id)) {
        if (strlen(req->client_msg_id) > KEY_BYTES_MAX)
            return core__fail(c, CORE_E_INVALID, "client_msg_id is longer than %d bytes", KEY_BYTES_MAX);
        const msg_t *dup = find_client_msg(inc, user, req->client_msg_id);
        if (dup)
            return msg_response(c, inc, dup, resp);
    }
    bool queued = inc->state == ST(QUEUED) || inc->state == ST(OFFERED);
    if (!core__is_held(inc->state) && !(police && queued))
        return core__fail(c, CORE_E_STATE, "incident %llu is %s: messages can be posted once it is accepted",
                          (unsigned long long)inc->id, core__state_name(inc->state));

    /* The holder's first message is the first advice. */
    bool first_advice = !police && inc->state == ST(ACCEPTED);
    tr_prep_t prep = { 0 };
    if (first_advice && (rc = core__tr_prepare(c, inc, NULL, &prep)))
        return rc;
    msg_t *m;
    if ((rc = core__post(c, inc, now, user, req->text, req->client_msg_id, kind, &m))) {
        core__tr_abort(&prep);
        return rc;
    }
    if (first_advice)
        core__tr_commit(c, inc, now, &prep, ST(ADVISING), CAUSE(FIRST_ADVICE), user, user, NULL);
    core__finish(c, now);
    return msg_response(c, inc, m, resp);
}

/* A practitioner's share with the police (ShareWithPolice, after its audit
 * record is durable): a MESSAGE_KIND_SHARE message from them, whose text is
 * their own summary and the names of the parts it draws on -- never the
 * record's content. The holder's first message is the first advice, as in
 * PostMessage. */
int core_share_post(core_t *c, int64_t now, int user, const Mhtas__V1__ShareWithPoliceRequest *req,
                    uint64_t disclosure_id, Mhtas__V1__ShareWithPoliceResponse **resp)
{
    *resp = NULL;
    int rc = core_check_share(c, now, user, req);
    if (rc)
        return rc;
    incident_t *inc = core__incident(c, req->incident_id);
    char parts[256];
    size_t n = 0;
    parts[0] = '\0';
    for (size_t i = 0; i < req->n_parts; i++)
        n += (size_t)snprintf(parts + n, sizeof parts - n, "%s%s", i ? ", " : "", core_care_part_name(req->parts[i]));
    size_t tlen = strlen(req->summary) + n + 64;
    char *text = hub_malloc(tlen);
    Mhtas__V1__ShareWithPoliceResponse *r = hub_malloc(sizeof(*r));
    if (text == NULL || r == NULL) {
        hub_free(text);
        hub_free(r);
        return nomem(c);
    }
    snprintf(text, tlen, "%s\n[Shared from the care record: %s]", req->summary, parts);
    mhtas__v1__share_with_police_response__init(r);
    bool first_advice = inc->state == ST(ACCEPTED);
    tr_prep_t prep = { 0 };
    msg_t *m;
    if ((first_advice && (rc = core__tr_prepare(c, inc, NULL, &prep))) ||
        (rc = core__post(c, inc, now, user, text, NULL, MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_SHARE, &m))) {
        core__tr_abort(&prep);
        hub_free(text);
        hub_free(r);
        return rc;
    }
    hub_free(text);
    if (first_advice)
        core__tr_commit(c, inc, now, &prep, ST(ADVISING), CAUSE(FIRST_ADVICE), user, user, NULL);
    core__finish(c, now);
    r->incident_id = inc->id;
    r->disclosure_id = disclosure_id;
    r->shared_at_ms = now;
    *resp = r;
    return CORE_OK;
}

/* -------------------------------------------------------------- outcomes */

int core_propose_outcome(core_t *c, int64_t now, int user, const Mhtas__V1__ProposeOutcomeRequest *req,
                         Mhtas__V1__ProposeOutcomeResponse **resp)
{
    *resp = NULL;
    incident_t *inc;
    int rc = need_practitioner(c, user, "ProposeOutcome");
    if (rc || (rc = find(c, user, req->incident_id, &inc)))
        return rc;
    if (!core__is_open(inc->state))
        return not_open(c, inc);
    if (!core__is_held(inc->state) || inc->holder != user)
        return core__fail(c, CORE_E_STATE, "incident %llu is not held by you", (unsigned long long)inc->id);
    if ((rc = core__validate_outcome(c, inc, req->outcome, now)))
        return rc;

    tr_prep_t prep;
    if ((rc = core__tr_prepare(c, inc, NULL, &prep)))
        return rc;
    Mhtas__V1__Outcome *o = core__pb_clone(&req->outcome->base);
    /* Who proposed and agreed is the hub's to say, whatever the client sent. */
    if (o == NULL || replace_str(&o->proposed_by, c->cfg.users[user].id) || replace_str(&o->agreed_by, NULL)) {
        core__pb_free(o);
        core__tr_abort(&prep);
        return nomem(c);
    }
    o->proposed_at_ms = now;
    o->agreed_at_ms = 0;
    o->durable = false;
    core__pb_free(inc->outcome);
    inc->outcome = o;
    core__tr_commit(c, inc, now, &prep, ST(OUTCOME_PROPOSED), CAUSE(OUTCOME_PROPOSED), user, user, NULL);
    core__finish(c, now);
    RESPOND_INCIDENT(Mhtas__V1__ProposeOutcomeResponse, mhtas__v1__propose_outcome_response__init, true);
}

int core_agree_outcome(core_t *c, int64_t now, int user, const Mhtas__V1__AgreeOutcomeRequest *req,
                       Mhtas__V1__AgreeOutcomeResponse **resp)
{
    *resp = NULL;
    incident_t *inc;
    int rc = need_police(c, user, "AgreeOutcome");
    if (rc || (rc = find(c, user, req->incident_id, &inc)))
        return rc;
    const char *key = req->idempotency_key;
    bool repeat = inc->state == ST(CLOSED) && set(key) && inc->close_key && strcmp(inc->close_key, key) == 0;
    if (!repeat) {
        if (!core__is_open(inc->state))
            return not_open(c, inc);
        if (inc->state != ST(OUTCOME_PROPOSED))
            return core__fail(c, CORE_E_STATE, "incident %llu has no proposed outcome to agree (it is %s)",
                              (unsigned long long)inc->id, core__state_name(inc->state));
        if (set(key) && strlen(key) > KEY_BYTES_MAX)
            return core__fail(c, CORE_E_INVALID, "idempotency_key is longer than %d bytes", KEY_BYTES_MAX);
        if (!req->agree && (rc = text_ok(c, req->query, "query", true)))
            return rc;

        tr_prep_t prep;
        if ((rc = core__tr_prepare(c, inc, NULL, &prep)))
            return rc;
        if (req->agree) {
            char *k = set(key) ? hub_strdup(key) : NULL;
            if ((set(key) && k == NULL) || replace_str(&inc->outcome->agreed_by, c->cfg.users[user].id)) {
                hub_free(k);
                core__tr_abort(&prep);
                return nomem(c);
            }
            inc->close_key = k;
            inc->outcome->agreed_at_ms = now;
            /* The holder's work on it ends: wrap-up starts. The incident
             * keeps naming them as the practitioner who handled it. */
            pract_t *pr = &c->pr[inc->holder];
            pr->n_held--;
            pr->last_end = now;
            if (c->cfg.wrap_up_ms > 0)
                pr->wrap_until = now + c->cfg.wrap_up_ms;
            if (pr->n_held == 0)
                pr->grace_until = 0;
            core__open_remove(c, inc);
            c->closed_total++;
            core__tr_commit(c, inc, now, &prep, ST(CLOSED), CAUSE(OUTCOME_AGREED), user, inc->holder, NULL);
        } else {
            msg_t *m;
            if ((rc = core__post(c, inc, now, user, req->query, NULL, MHTAS__V1__MESSAGE_KIND__MESSAGE_KIND_TEXT, &m))) {
                core__tr_abort(&prep);
                return rc;
            }
            core__tr_commit(c, inc, now, &prep, ST(ADVISING), CAUSE(OUTCOME_QUERIED), user, inc->holder, NULL);
        }
        core__finish(c, now);
    }
    Mhtas__V1__AgreeOutcomeResponse *r = hub_malloc(sizeof(*r));
    if (r == NULL)
        return nomem(c);
    mhtas__v1__agree_outcome_response__init(r);
    /* Not durable until the journal says so: the shell sets it. */
    r->durable = false;
    if ((r->incident = core__snap_incident(c, inc, now, true)) == NULL) {
        core__pb_free(r);
        return nomem(c);
    }
    *resp = r;
    return CORE_OK;
}

/* -------------------------------------------------------------- reassign */

int core_reassign(core_t *c, int64_t now, int user, const Mhtas__V1__ReassignRequest *req,
                  Mhtas__V1__ReassignResponse **resp)
{
    *resp = NULL;
    incident_t *inc;
    int rc = need_supervisor(c, user, "Reassign");
    if (rc || (rc = find(c, user, req->incident_id, &inc)))
        return rc;
    if (!core__is_open(inc->state))
        return not_open(c, inc);
    if ((rc = text_ok(c, req->reason, "reason", false)))
        return rc;
    if (!set(req->practitioner)) {
        if (inc->state != ST(OFFERED) && !core__is_held(inc->state))
            return core__fail(c, CORE_E_STATE, "incident %llu is %s: only an offered or held incident can be put back in the queue",
                              (unsigned long long)inc->id, core__state_name(inc->state));
        tr_prep_t prep;
        if ((rc = core__tr_prepare(c, inc, req->reason, &prep)))
            return rc;
        core_audience_t prev = { 0 };
        core__aud_add(&prev, inc->holder);
        for (int i = 0; i < inc->n_offerees; i++)
            core__aud_add(&prev, inc->offerees[i]);
        int prev_pract = inc->holder >= 0 ? inc->holder : inc->offerees[0];
        core__release(c, inc, now);
        core__offers_clear(c, inc);
        core__queue_insert(c, inc);
        core__tr_commit(c, inc, now, &prep, ST(QUEUED), CAUSE(REASSIGNED), user, prev_pract, &prev);
    } else {
        int p = core_user_index(c, req->practitioner);
        if (p < 0)
            return core__fail(c, CORE_E_INVALID, "practitioner is not a configured user");
        if (c->cfg.users[p].role != ROLE(PRACTITIONER))
            return core__fail(c, CORE_E_INVALID, "%s is not a practitioner", c->cfg.users[p].id);
        if (!c->pr[p].on_shift || !c->pr[p].connected)
            return core__fail(c, CORE_E_STATE, "%s is not on shift and connected", c->cfg.users[p].id);
        if ((inc->holder == p && core__is_held(inc->state)) || core__is_offeree(inc, p))
            return core__fail(c, CORE_E_STATE, "incident %llu is already with %s", (unsigned long long)inc->id,
                              c->cfg.users[p].id);
        if (core__active(c, p) >= core__capacity(c, p))
            return core__fail(c, CORE_E_STATE, "%s is at capacity (%u incidents)", c->cfg.users[p].id,
                              core__capacity(c, p));
        /* Straight to them, whatever the routing rules would say. */
        if ((rc = core__offer(c, inc, now, &p, 1, CAUSE(REASSIGNED), user, req->reason)))
            return rc;
    }
    core__finish(c, now);
    RESPOND_INCIDENT(Mhtas__V1__ReassignResponse, mhtas__v1__reassign_response__init, true);
}
