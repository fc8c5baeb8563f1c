/* core_internal.h -- the core's private data structures, shared by its .c files.
 *
 * Nothing outside server/core/ includes this, except the core's unit tests,
 * which use core__check() to verify the bookkeeping after every scenario.
 *
 * The model is plain C structs, not protobuf messages: a practitioner is an
 * index into the configured users, an incident's holder and offerees are
 * user indexes, and protobuf messages are only built (snapshot.c) when a
 * response or an event needs one. That keeps state changes free of
 * allocation wherever possible, so that running out of memory is detected
 * before anything is changed (see tr_prepare) rather than half-way through.
 */
#ifndef MHTAS_CORE_INTERNAL_H
#define MHTAS_CORE_INTERNAL_H

#include <stdarg.h>

#include "core/core.h"
#include "util/alloc.h"

/* An incident's offerees share the audience array of the events announcing
 * it with one previous practitioner, so ringall offers at most this many. */
#define CORE_MAX_OFFEREES (CORE_AUDIENCE_MAX_USERS - 1)
/* Raise-to-accept samples behind the expected wait. */
#define CORE_WAIT_SAMPLES 20
#define CORE_DEFAULT_WAIT_MS 60000
/* The actor of a transition made by a timer or the router. */
#define CORE_ACTOR_HUB (-1)

#define ST(x) MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_##x
#define CAUSE(x) MHTAS__V1__CAUSE__CAUSE_##x
#define PST(x) MHTAS__V1__PRACTITIONER_STATE__PRACTITIONER_STATE_##x
#define NOTICE(x) MHTAS__V1__NOTICE_KIND__NOTICE_KIND_##x
#define ROLE(x) MHTAS__V1__ROLE__ROLE_##x
#define OC(x) MHTAS__V1__OUTCOME_CODE__OUTCOME_CODE_##x

/* One entry of an incident's append-only history. */
typedef struct trans {
    uint64_t seq;
    int64_t at;
    Mhtas__V1__IncidentState from, to;
    Mhtas__V1__Cause cause;
    int actor;         /* user index or CORE_ACTOR_HUB */
    int practitioner;  /* user index or -1 */
    char *reason;      /* NULL when none */
} trans_t;

typedef struct msg {
    uint32_t number;
    int from;
    int64_t at;
    char *text;
    char *client_id;   /* NULL when none */
    int kind;          /* Mhtas__V1__MessageKind, never UNSPECIFIED */
} msg_t;

typedef struct incident {
    uint64_t id;
    Mhtas__V1__IncidentDetails *details; /* a private copy of the request's */
    int borough;                         /* index into cfg.boroughs */
    uint32_t needs;                      /* skills mask from the flags */
    Mhtas__V1__IncidentState state;
    int raised_by;
    char *raise_key, *close_key, *cancel_key;  /* idempotency keys, NULL when none */
    int64_t raised_at, updated_at;
    int64_t first_accepted_at;           /* 0 until first accepted: the service level is met */
    int64_t offer_deadline;              /* while OFFERED */

    /* The practitioner holding it (ACCEPTED, ADVISING, OUTCOME_PROPOSED), or
     * who held it last once CLOSED; -1 otherwise. */
    int holder;
    int n_offerees;
    int offerees[CORE_MAX_OFFEREES];
    uint64_t *refused;   /* bitset over users: declined or timed out on it */
    uint64_t *held;      /* bitset over users: ever held it (so may still read it) */

    trans_t *hist;
    size_t n_hist, cap_hist;
    msg_t *msgs;
    size_t n_msgs, cap_msgs;
    /* PostMessage's idempotency look-up: an open-addressing set of message
     * indexes + 1 (0 = empty slot) keyed by (sender, client_id), built
     * lazily and brought up to date (messages are append-only) on each
     * look-up; see find_client_msg in incident.c. NULL until first needed,
     * and after msgs moves to another incident_t. */
    uint32_t *cid_slots;
    size_t cid_cap;      /* power of two, or 0 */
    size_t cid_count;    /* entries in cid_slots */
    size_t cid_upto;     /* msgs[0 .. cid_upto) have been indexed */
    Mhtas__V1__Outcome *outcome;         /* proposed or agreed, NULL before */
    char *cancel_reason;

    char *person_key;   /* NULL when the person cannot be told apart */
    int pref;           /* the last practitioner who handled this person, -1 */

    int64_t sla_deadline, sla_warn_at;   /* 0 = none */
    bool sla_warned, sla_breached, nobody_sent;
    int stage;                           /* eligibility widening stage last seen by a tick */

    uint32_t qpos;       /* current 1-based position while in the queue, else 0 */
    uint32_t qpos_sent;  /* the position last announced in a QueueStatus */
} incident_t;

typedef struct pract {
    bool on_shift, connected, paused;
    char *pause_reason;      /* NULL when not paused */
    int64_t on_shift_since;
    int64_t wrap_until;      /* 0 when not in wrap-up */
    int64_t grace_until;     /* 0 unless disconnected while holding */
    int64_t last_end;        /* when their last incident ended, 0 = never */
    uint32_t accepts;        /* accepted this shift */
    uint32_t missed;         /* offers timed out in a row */
    uint32_t n_offers;       /* outstanding offers */
    uint32_t n_held;         /* incidents ACCEPTED, ADVISING or OUTCOME_PROPOSED */

    /* What the last PractitionerStatus said, to emit only on change. */
    bool sent;
    Mhtas__V1__PractitionerState sent_state;
    uint32_t sent_active, sent_missed, sent_held;
    bool sent_connected, sent_paused;
} pract_t;

/* Prepared, allocation-free-to-commit transition (see tr_prepare). */
typedef struct tr_prep {
    char *reason;
} tr_prep_t;

struct core {
    core_config_t cfg;
    core_emit_cb emit;
    void *emit_ctx;
    uint64_t last_seq;
    char err[256];

    pract_t *pr;             /* one per configured user */
    size_t bitset_words;

    incident_t **all;        /* by id - 1 */
    size_t n_all, cap_all;
    incident_t **open;       /* not closed or cancelled, unordered */
    size_t n_open, cap_open;
    incident_t **queue;      /* QUEUED or OFFERED, in queue order */
    size_t n_queue, cap_queue;

    int64_t waits[CORE_WAIT_SAMPLES];
    size_t n_waits, next_wait;

    int *cand;               /* routing scratch: 2 * n_users, so routing never allocates */
    int rr_last;
    uint64_t rng;
    bool board_dirty;

    uint64_t raised_total, closed_total, cancelled_total, offers_total, offer_timeouts_total;
    uint64_t lost_events;    /* events that could not be built (out of memory) */

    /* recovery.c */
    bool restore_done;       /* core_restore_finish ran: nothing more is restored */
    bool restored_any;       /* a snapshot or an event was restored */
    int64_t restore_at;      /* the latest time the journal mentions */
};

/* ---- core.c: errors, events, bookkeeping */
int core__fail(core_t *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void core__ok(core_t *c);
bool core__is_police(Mhtas__V1__Role r);
bool core__is_open(Mhtas__V1__IncidentState s);
bool core__is_held(Mhtas__V1__IncidentState s);
const char *core__state_name(Mhtas__V1__IncidentState s);
incident_t *core__incident(core_t *c, uint64_t id);
uint32_t core__capacity(const core_t *c, int p);
uint32_t core__active(const core_t *c, int p);
uint32_t core__on_shift_connected(const core_t *c);
int64_t core__avg_wait(const core_t *c);

void core__aud_incident(const core_t *c, const incident_t *inc, core_audience_t *aud);
void core__aud_add(core_audience_t *aud, int user);
/* Emits ev (which it frees) with the next sequence number, or with `seq`
 * when nonzero (a transition reserved it). ev may be NULL: the event could
 * not be built, and is counted as lost. */
void core__emit(core_t *c, int64_t now, Mhtas__V1__Event *ev, const core_audience_t *aud, uint64_t seq);
void core__notice(core_t *c, int64_t now, Mhtas__V1__NoticeKind kind, uint64_t incident_id,
                  const char *text, const core_audience_t *aud);

int core__tr_prepare(core_t *c, incident_t *inc, const char *reason, tr_prep_t *prep);
void core__tr_abort(tr_prep_t *prep);
void core__tr_commit(core_t *c, incident_t *inc, int64_t now, tr_prep_t *prep, Mhtas__V1__IncidentState to,
                     Mhtas__V1__Cause cause, int actor, int practitioner, const core_audience_t *extra);

void core__offer_add(core_t *c, incident_t *inc, int p);
bool core__offer_remove(core_t *c, incident_t *inc, int p);
void core__offers_clear(core_t *c, incident_t *inc);
bool core__is_offeree(const incident_t *inc, int p);
void core__hold(core_t *c, incident_t *inc, int p);
void core__release(core_t *c, incident_t *inc, int64_t now);

void core__queue_insert(core_t *c, incident_t *inc);
void core__queue_remove(core_t *c, incident_t *inc);
void core__open_remove(core_t *c, incident_t *inc);

bool core__bit(const uint64_t *set, int i);
void core__set_bit(uint64_t *set, int i);

/* Routes, announces queue positions and practitioner statuses: the tail of
 * every change. */
void core__finish(core_t *c, int64_t now);

/* Bookkeeping check for tests: 0 when every counter matches the incidents. */
int core__check(const core_t *c);
/* Frees an incident and everything it owns (NULL fields are fine). */
void core__incident_free(incident_t *inc);

/* ---- incident.c */
/* Appends a message to inc from user and announces it; every allocation is
 * made before the incident changes. */
int core__post(core_t *c, incident_t *inc, int64_t now, int user, const char *text, const char *client_id,
               int kind, msg_t **out);

/* ---- router.c */
bool core__eligible(const core_t *c, int p, const incident_t *inc, int64_t now);
int core__stage(const core_t *c, const incident_t *inc, int64_t now);
void core__route(core_t *c, int64_t now);
int core__offer(core_t *c, incident_t *inc, int64_t now, const int *ps, int n, Mhtas__V1__Cause cause,
                int actor, const char *reason);
/* An offeree leaves an offer: back to QUEUED if nobody else is offered it. */
int core__offeree_leave(core_t *c, incident_t *inc, int64_t now, int p, Mhtas__V1__Cause cause, int actor,
                        const char *reason);
void core__withdraw_offers_of(core_t *c, int p, int64_t now);
void core__maybe_auto_pause(core_t *c, int p, int64_t now);
void core__sync_status(core_t *c, int64_t now);
Mhtas__V1__PractitionerState core__pstate(const core_t *c, int p, int64_t now);

/* ---- snapshot.c: building protobuf messages */
void *core__pb_clone(const ProtobufCMessage *m);
int core__set_str(char **dst, const char *s);
Mhtas__V1__Incident *core__snap_incident(const core_t *c, const incident_t *inc, int64_t now, bool with_messages);
Mhtas__V1__ChatMessage *core__snap_msg(const core_t *c, const incident_t *inc, const msg_t *m);
Mhtas__V1__PractitionerStatus *core__snap_status(const core_t *c, int p, int64_t now);
Mhtas__V1__Board *core__snap_board(const core_t *c, int64_t now);
Mhtas__V1__Event *core__ev_new(void);
void core__pb_free(void *m);

/* ---- validate.c */
int core__validate_details(core_t *c, const Mhtas__V1__IncidentDetails *d, int *borough);
int core__validate_outcome(core_t *c, const incident_t *inc, const Mhtas__V1__Outcome *o, int64_t now);
bool core__nhs_number_valid(const char *s);
bool core__parse_date(const char *s, int *y, int *m, int *d);
int core__age_at(const char *dob, int64_t now);
int64_t core__days_from_civil(int y, int m, int d);
char *core__person_key(const Mhtas__V1__Person *p);

#endif
