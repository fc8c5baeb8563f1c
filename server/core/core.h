/* core.h -- the domain core of mhtas: incidents, their life, and routing.
 *
 * PURE: no I/O, no clock, no libuv/lws/nghttp2/hiredis. Time comes in as
 * `now` (milliseconds since the epoch, from the loop); memory comes from
 * util/alloc.h; randomness from a seeded generator in the config. So every
 * rule here is unit-tested deterministically with a fake clock
 * (tests/unit/core/).
 *
 * Shape of the API (after nghttp2's "events in, effects out"):
 *   - one function per Hub method, taking the decoded request and the acting
 *     user, filling in a freshly allocated response; the front ends never see
 *     a business rule;
 *   - presence (a practitioner's live event stream came or went) and time
 *     (core_tick) are inputs too;
 *   - every state change is announced synchronously through the emit callback
 *     as one mhtas.v1.Event with its audience; the shell fans it out to
 *     subscribers (and, later, appends it to the journal: each event is one
 *     self-contained record of one change).
 *
 * Errors: functions return CORE_OK (0) or a negative CORE_E_*; the message for
 * the user is then in core_last_error() until the next call. No health data
 * goes into error messages (they are logged).
 */
#ifndef MHTAS_CORE_H
#define MHTAS_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mhtas/v1/hub.pb-c.h"

typedef struct core core_t;

/* ----------------------------------------------------------- return codes */

enum {
    CORE_OK = 0,
    CORE_E_INVALID = -1,    /* gRPC INVALID_ARGUMENT: the request is malformed or breaks a rule */
    CORE_E_NOT_FOUND = -2,  /* gRPC NOT_FOUND (also for incidents the caller may not see) */
    CORE_E_STATE = -3,      /* gRPC FAILED_PRECONDITION: not possible in the current state */
    CORE_E_PERM = -4,       /* gRPC PERMISSION_DENIED */
    CORE_E_EXHAUSTED = -5,  /* gRPC RESOURCE_EXHAUSTED: a configured limit */
    CORE_E_NOMEM = -6,      /* gRPC RESOURCE_EXHAUSTED / INTERNAL: allocation failed */
};

/* The gRPC status code for a CORE_* return code (0 for CORE_OK). */
int core_grpc_status(int rc);

/* ------------------------------------------------------------ configuration */

typedef enum {
    CORE_STRATEGY_RINGALL = 0,  /* offer to every eligible practitioner; first accept wins */
    CORE_STRATEGY_LEASTRECENT,  /* the one whose last incident ended longest ago */
    CORE_STRATEGY_FEWESTCALLS,  /* the one who accepted fewest incidents this shift */
    CORE_STRATEGY_RRMEMORY,     /* round robin, starting after the last one offered */
    CORE_STRATEGY_LINEAR,       /* configured order, first eligible */
    CORE_STRATEGY_RANDOM,       /* seeded random among the eligible */
} core_strategy_t;

#define CORE_MAX_BOROUGHS 64
#define CORE_MAX_SKILLS 32

typedef struct core_borough {
    const char *name;     /* e.g. "Salford"; borrowed for the core's lifetime */
    int provider;         /* index into core_config_t.providers */
    uint64_t neighbours;  /* bitmask of borough indexes next to this one */
} core_borough_t;

typedef struct core_user {
    const char *id;           /* borrowed for the core's lifetime */
    const char *display_name; /* borrowed */
    Mhtas__V1__Role role;
    int provider;             /* index into providers, -1 for police roles */
    uint32_t skills;          /* bitmask over core_config_t.skills */
    uint64_t boroughs;        /* boroughs covered; 0 = every borough of the provider */
    uint32_t capacity;        /* concurrent incidents (practitioners) */
} core_user_t;

typedef struct core_config {
    /* reference data, borrowed for the core's lifetime */
    const char *const *providers;
    size_t n_providers;
    const core_borough_t *boroughs;
    size_t n_boroughs;
    const char *const *skills;   /* skill names; bit i of a skills mask is skills[i] */
    size_t n_skills;
    const core_user_t *users;    /* every configured user; index = user number */
    size_t n_users;

    /* skills an incident needs, derived from its concern flags: flag_skills[f]
     * is the mask needed when flag f (a Mhtas__V1__ConcernFlag) is set,
     * e.g. UNDER_18 -> camhs, LD_AUTISM -> ld_autism. */
    uint32_t flag_skills[8];

    core_strategy_t strategy;
    int64_t offer_timeout_ms;      /* an offer's deadline after it is made */
    uint32_t auto_pause_after;     /* missed offers in a row before auto-pause; 0 = never */
    int64_t wrap_up_ms;            /* after an incident closes, before new offers */
    int64_t disconnect_grace_ms;   /* a disconnected holder keeps accepted incidents this long */
    int64_t widen_neighbour_ms;    /* wait after which neighbouring boroughs' practitioners are eligible; 0 = never */
    int64_t widen_anyone_ms;       /* wait after which anyone on shift is (skills too); 0 = never */
    int64_t sla_ms[5];             /* raise-to-accept service level, indexed by Priority */
    uint32_t sla_warn_percent;     /* warn when this share of the service level has passed */
    uint32_t max_open_incidents;   /* RaiseIncident beyond this: CORE_E_EXHAUSTED */
    uint32_t max_messages_per_incident;
    uint32_t max_text_bytes;       /* any free-text field */
    uint64_t rng_seed;             /* for CORE_STRATEGY_RANDOM */
} core_config_t;

/* ------------------------------------------------------------------ events */

#define CORE_AUDIENCE_MAX_USERS 16

/* Who may receive an event. Police roles (operator, dispatcher, supervisor)
 * see every incident; practitioners see only what names them in users[]. */
typedef struct core_audience {
    bool police;        /* operators, dispatchers and supervisors */
    bool supervisors;   /* supervisors (already included when police is set) */
    int n_users;
    int users[CORE_AUDIENCE_MAX_USERS];  /* user indexes, e.g. the holder or those offered */
} core_audience_t;

/* Called synchronously for each event, in sequence order. `ev` (with its seq
 * and at_ms set) and `aud` are borrowed until the callback returns. */
typedef void (*core_emit_cb)(void *ctx, const Mhtas__V1__Event *ev, const core_audience_t *aud);

/* --------------------------------------------------------------- lifecycle */

/* Creates a core. `cfg` is copied (the reference data it points to is
 * borrowed and must outlive the core). `first_seq` is the sequence number the
 * first event will carry. Returns NULL if out of memory. */
core_t *core_new(const core_config_t *cfg, core_emit_cb emit, void *emit_ctx, uint64_t first_seq);
void core_free(core_t *core);

/* The message for the last error, valid until the next call into the core. */
const char *core_last_error(const core_t *core);

/* The last sequence number used (0 if none yet). */
uint64_t core_last_seq(const core_t *core);

/* Index of the user with this id, or -1. */
int core_user_index(const core_t *core, const char *id);

/* ---------------------------------------------------------- presence, time */

/* A practitioner's live event stream opened (connected = true) or the last
 * one closed (false). On disconnect, offers they hold are withdrawn at once
 * and re-offered; accepted incidents are kept for disconnect_grace_ms. */
void core_set_connected(core_t *core, int64_t now, int user, bool connected);

/* Runs every timer that is due at `now` (offer deadlines, wrap-up ends,
 * grace expiries, eligibility widening, service-level warnings) and routes.
 * Call it when core_next_deadline() passes; calling it early is harmless. */
void core_tick(core_t *core, int64_t now);

/* The earliest time at which core_tick has work, or INT64_MAX. */
int64_t core_next_deadline(const core_t *core);

/* Emits one Board event for supervisors if anything on it changed since the
 * last call (queue, practitioner states, offers). The shell calls it once per
 * loop turn so that a burst of changes costs one board. */
void core_flush_board(core_t *core, int64_t now);

/* ------------------------------------------------------- the Hub's methods
 *
 * Each takes the acting user's index and the decoded request (borrowed), and
 * on CORE_OK stores a newly allocated response in *resp, to be freed with
 * protobuf_c_message_free_unpacked(&(*resp)->base, hub_pb_allocator()).
 * On error *resp is left NULL. Role checks are made here too (the shell's
 * method table is a first gate, not the only one).
 */

int core_raise_incident(core_t *, int64_t now, int user, const Mhtas__V1__RaiseIncidentRequest *,
                        Mhtas__V1__RaiseIncidentResponse **resp);
int core_cancel_incident(core_t *, int64_t now, int user, const Mhtas__V1__CancelIncidentRequest *,
                         Mhtas__V1__CancelIncidentResponse **resp);
int core_get_incident(core_t *, int64_t now, int user, const Mhtas__V1__GetIncidentRequest *,
                      Mhtas__V1__GetIncidentResponse **resp);
int core_list_incidents(core_t *, int64_t now, int user, const Mhtas__V1__ListIncidentsRequest *,
                        Mhtas__V1__ListIncidentsResponse **resp);
int core_start_shift(core_t *, int64_t now, int user, const Mhtas__V1__StartShiftRequest *,
                     Mhtas__V1__StartShiftResponse **resp);
int core_end_shift(core_t *, int64_t now, int user, const Mhtas__V1__EndShiftRequest *,
                   Mhtas__V1__EndShiftResponse **resp);
int core_set_availability(core_t *, int64_t now, int user, const Mhtas__V1__SetAvailabilityRequest *,
                          Mhtas__V1__SetAvailabilityResponse **resp);
int core_accept(core_t *, int64_t now, int user, const Mhtas__V1__AcceptRequest *,
                Mhtas__V1__AcceptResponse **resp);
int core_decline(core_t *, int64_t now, int user, const Mhtas__V1__DeclineRequest *,
                 Mhtas__V1__DeclineResponse **resp);
int core_post_message(core_t *, int64_t now, int user, const Mhtas__V1__PostMessageRequest *,
                      Mhtas__V1__PostMessageResponse **resp);
int core_propose_outcome(core_t *, int64_t now, int user, const Mhtas__V1__ProposeOutcomeRequest *,
                         Mhtas__V1__ProposeOutcomeResponse **resp);
int core_agree_outcome(core_t *, int64_t now, int user, const Mhtas__V1__AgreeOutcomeRequest *,
                       Mhtas__V1__AgreeOutcomeResponse **resp);
int core_reassign(core_t *, int64_t now, int user, const Mhtas__V1__ReassignRequest *,
                  Mhtas__V1__ReassignResponse **resp);
int core_get_board(core_t *, int64_t now, int user, const Mhtas__V1__GetBoardRequest *,
                   Mhtas__V1__GetBoardResponse **resp);

int core_get_indicators(core_t *, int64_t now, int user, const Mhtas__V1__GetIndicatorsRequest *,
                        Mhtas__V1__GetIndicatorsResponse **resp);

/* Whether the person is a child for the section 136 rules: the UNDER_18
 * flag, an age under 18, or a date of birth under 18 years before `now`.
 * Pure; the desktop client's outcome form uses the same function. */
bool core_details_is_child(const Mhtas__V1__IncidentDetails *d, int64_t now);

/* ------------------------------------------------------------ care records
 *
 * The care-record methods (SearchPersons, GetCareSummary, ShareWithPolice)
 * are run by the hub (server/hub/hub_care.c) because they wait for the
 * Redis cache and for the journal; the rules are here, pure:
 *
 *   core_check_care_access()  may `user` look people up / read a summary now?
 *     - police roles (operator, dispatcher, supervisor): PERMISSION_DENIED;
 *     - lawful_basis (direct care, vital interests, safeguarding) and a
 *       reason are required: INVALID_ARGUMENT;
 *     - without break-glass: incident_id is required and the user must hold
 *       it (ACCEPTED, ADVISING or OUTCOME_PROPOSED). An incident they may not
 *       see (another practitioner's, or none) is NOT_FOUND, as everywhere; one
 *       they see but do not hold (offered to them, or closed) is
 *       FAILED_PRECONDITION;
 *     - with break-glass: a reason code and free text are required; the
 *       incident, when given, must exist (NOT_FOUND otherwise), held or not.
 *   core_check_share()        may `user` share this with the police now? As
 *     above without break-glass (a share always goes into an incident the
 *     practitioner holds), plus a valid NHS number, at least one known part
 *     (no repeats) and the summary text the police will read.
 *   core_emit_audit()         emits one AuditRecord event (empty audience:
 *     journal only); a BREAK_GLASS record also emits a NOTICE_KIND_BREAK_GLASS
 *     notice to supervisors (no health data in it). CORE_E_NOMEM when the
 *     event could not be built: then nothing was emitted and the caller must
 *     not release the data.
 *   core_share_post()         posts the share into the incident's
 *     conversation as a MESSAGE_KIND_SHARE message from the practitioner:
 *     their summary and the names of the parts shared, never record content.
 */
typedef struct core_care_access {
    uint64_t incident_id;
    Mhtas__V1__LawfulBasis lawful_basis;
    const char *reason;
    bool break_glass;
    Mhtas__V1__BreakGlassReason break_glass_reason;
    const char *break_glass_text;
} core_care_access_t;

int core_check_care_access(core_t *core, int64_t now, int user, const core_care_access_t *access);
int core_check_share(core_t *core, int64_t now, int user, const Mhtas__V1__ShareWithPoliceRequest *req);
/* `rec` is borrowed; its user_id is set from `user` whatever it holds.
 * *seq (may be NULL) gets the audit event's sequence number. */
int core_emit_audit(core_t *core, int64_t now, int user, const Mhtas__V1__AuditRecord *rec, uint64_t *seq);
/* Re-checks core_check_share() (time has passed) and posts. */
int core_share_post(core_t *core, int64_t now, int user, const Mhtas__V1__ShareWithPoliceRequest *req,
                    uint64_t disclosure_id, Mhtas__V1__ShareWithPoliceResponse **resp);
/* The display name of a care part ("risks"), or "unknown". */
const char *core_care_part_name(int part);

/* ------------------------------------------------------------ recovery
 *
 * The journal holds every event the core emitted (packed mhtas.v1.Event), and
 * from time to time a JournalSnapshot of the whole state. On start the shell
 * rebuilds the core from them, in this order:
 *   core_restore_snapshot()   the newest snapshot, if any (at most once, first)
 *   core_restore_event()      every journalled event after it, in seq order
 *   core_restore_finish()     once, at `now`: then the core is live
 * Restoring emits nothing. Events that carry no state (Offer, Board,
 * QueueStatus, Notice) are accepted and ignored.
 */
int core_restore_snapshot(core_t *core, const Mhtas__V1__JournalSnapshot *snap);
int core_restore_event(core_t *core, const Mhtas__V1__Event *ev);

/* Ends recovery: offers that were in flight are withdrawn and re-queued (their
 * offerees may never have seen them), every practitioner starts disconnected
 * (holders keep their incidents for disconnect_grace_ms from `now`), the next
 * event seq is the last restored + 1, and the queue is routed. Emits the
 * resulting events like any other change. */
void core_restore_finish(core_t *core, int64_t now);

/* Makes the next event's sequence number at least `next`. The shell uses it
 * after a restore so that numbers a crashed run may have shown but not made
 * durable are never reused. */
void core_skip_seq(core_t *core, uint64_t next);

/* Builds a snapshot of the whole state (incidents with history and
 * messages, practitioners' shift state). Freed like a response. */
int core_build_snapshot(core_t *core, int64_t now, Mhtas__V1__JournalSnapshot **out);

/* Computes the indicators over a set of incident snapshots (pure; shared by
 * the hub and the journal export tool). `incidents` are borrowed. */
int core_compute_indicators(const Mhtas__V1__Incident *const *incidents, size_t n, int64_t from_ms,
                            int64_t to_ms, int64_t now, const int64_t sla_ms[5],
                            Mhtas__V1__Indicators **out);

/* ------------------------------------------------------------ for /metrics */

typedef struct core_stats {
    uint32_t incidents_by_state[11];   /* indexed by Mhtas__V1__IncidentState */
    uint32_t practitioners_by_state[7];/* indexed by Mhtas__V1__PractitionerState */
    uint32_t queue_depth;
    uint32_t offers_outstanding;
    uint64_t raised_total, closed_total, cancelled_total, offers_total, offer_timeouts_total;
} core_stats_t;

void core_get_stats(const core_t *core, int64_t now, core_stats_t *out);

#endif
