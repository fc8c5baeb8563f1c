/* outbox.h -- advice parts waiting for the radio (pure: no I/O, no clock of
 * its own, no allocation; the caller passes `now` in milliseconds).
 *
 * The relay puts each advice that goes out as radio text into the outbox as
 * one message of 1..3 parts addressed to one ISSI. The outbox decides which
 * part goes on the air next and what happens to it afterwards:
 *
 *   QUEUED --ob_next--> SENDING --ob_sent--> SENT --report--> RECEIVED --report--> READ
 *      ^                   |                  |                  |
 *      +-- ob_unsend ------+ (nothing went out: the line is down)
 *      +-- temporary failure (ERROR reply, or a report "try later"), with
 *          back-off retry_base_ms * 2^(attempts-1) capped at retry_max_ms,
 *          until max_attempts failures --> FAILED
 *   any state but READ --permanent failure (not registered, too long, ...)--> FAILED
 *
 * Rules
 *   - Order per ISSI: a part is not sent while an earlier part to the same
 *     ISSI (an earlier part of the same message, or of an earlier message)
 *     is still QUEUED, so an officer gets 1/3, 2/3, 3/3 in that order even
 *     when part 1 waits for a retry. Parts to other ISSIs are not held up.
 *   - Rate limit per ISSI: a token bucket of `burst` sends refilled at
 *     `rate_per_minute`; retries take a token like first sends. Integer
 *     arithmetic (1 token = 60000 units, refilled rate_per_minute units a
 *     millisecond), so it is exact and deterministic.
 *   - Message references (1..255, echoed in delivery reports) are not reused
 *     for an ISSI while a part holding one still waits for a report.
 *   - Nothing leaves the outbox silently: a message is pruned (ob_prune) only
 *     when every part is READ or FAILED, or when the rest have been SENT or
 *     RECEIVED for keep_ms without a further report.
 *
 * Events: every state change of a part is reported through on_event
 * (OB_EV_STATE, with the state it left), and each retry scheduled
 * (OB_EV_RETRY, with the delay). Events fire from inside the call that caused
 * them; the callback must not call back into the outbox except ob_next.
 */
#ifndef MHTAS_RELAY_OUTBOX_H
#define MHTAS_RELAY_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/split.h"

#define OB_MAX_PARTS RELAY_SPLIT_MAX_PARTS
#define OB_MAX_BUCKETS 256 /* ISSIs with a rate-limit state at once */
#define OB_TOKEN 60000     /* units in one token */

typedef enum {
    OB_QUEUED = 0, /* waiting for its turn, its retry time or a token */
    OB_SENDING,    /* handed to the terminal (AT+CMGS in flight) */
    OB_SENT,       /* the terminal accepted it; no delivery report yet */
    OB_RECEIVED,   /* the officer's radio has it */
    OB_READ,       /* the officer opened it */
    OB_FAILED,     /* permanently failed, or gave up after max_attempts */
} ob_state_t;

struct ob_msg;

typedef struct ob_part {
    struct ob_msg *msg;
    unsigned idx;      /* 1-based */
    char text[RELAY_SPLIT_PART_BYTES];
    ob_state_t state;
    unsigned attempts; /* temporary failures so far */
    int64_t next_try_ms;
    int64_t changed_ms;
    uint8_t msgref;    /* while SENDING .. RECEIVED */
    char detail[96];   /* the last failure, for STATUS */
} ob_part_t;

typedef struct ob_msg {
    uint32_t issi;
    unsigned n_parts;
    ob_part_t parts[OB_MAX_PARTS];
    void *user;          /* the caller's; the outbox never touches it */
    struct ob_msg *next; /* outbox order */
    bool in_outbox;
} ob_msg_t;

typedef struct ob_config {
    unsigned rate_per_minute; /* > 0 */
    unsigned burst;           /* > 0: sends allowed at once */
    unsigned max_attempts;    /* > 0: temporary failures before giving up */
    unsigned retry_base_ms;   /* > 0 */
    unsigned retry_max_ms;
    int64_t keep_ms;          /* how long SENT/RECEIVED parts wait for a report */
} ob_config_t;

typedef enum {
    OB_EV_STATE = 1, /* part changed state; `from`, `detail` (failures) */
    OB_EV_RETRY,     /* a temporary failure: part QUEUED again, retry_in_ms, detail */
} ob_event_kind_t;

typedef struct ob_event {
    ob_event_kind_t kind;
    ob_part_t *part;
    ob_state_t from;
    int64_t retry_in_ms;
    const char *detail; /* borrowed for the callback; NULL when none */
} ob_event_t;

typedef struct ob_bucket {
    uint32_t issi;  /* 0: free */
    int64_t units;  /* up to burst * OB_TOKEN */
    int64_t at_ms;  /* when units was last brought up to date */
} ob_bucket_t;

typedef enum {
    OB_FAIL_LINE_DOWN = 0, /* not the part's fault: QUEUED again, no attempt counted */
    OB_FAIL_TEMPORARY,     /* retry with back-off */
    OB_FAIL_PERMANENT,     /* FAILED now */
} ob_fail_t;

typedef struct outbox {
    ob_config_t cfg;
    void (*on_event)(void *ctx, const ob_event_t *ev);
    void *ctx;
    ob_msg_t *head, *tail;
    ob_bucket_t buckets[OB_MAX_BUCKETS];
    uint8_t last_ref;
    /* counters */
    uint64_t sends, retries, failures, rate_limited;
} outbox_t;

/* Sets up an empty outbox; `cfg` is copied. on_event may be NULL. */
void ob_init(outbox_t *ob, const ob_config_t *cfg, void (*on_event)(void *, const ob_event_t *), void *ctx);

/* Prepares `m` (caller's memory) for `issi` with no parts; `user` is kept. */
void ob_msg_init(ob_msg_t *m, uint32_t issi, void *user);

/* Appends a part (copied; at most RELAY_SPLIT_PART_BYTES - 1 bytes).
 * Returns 0, or -1 when the message is full, the text too long or the
 * message already queued. */
int ob_msg_add_part(ob_msg_t *m, const char *text);

/* Queues `m` (borrowed until it leaves the outbox: see ob_prune/ob_remove)
 * at the tail, every part QUEUED and due now. Returns 0, or -1 when it has no
 * parts, no ISSI or is queued already. */
int ob_add(outbox_t *ob, ob_msg_t *m, int64_t now);

/* The next part to send now, marked SENDING with a fresh message reference
 * (and a token taken), or NULL. *wake_ms (may be NULL) gets the earliest time
 * at which a part that waits now (retry time, rate limit) becomes due, or
 * INT64_MAX when none waits. */
ob_part_t *ob_next(outbox_t *ob, int64_t now, int64_t *wake_ms);

/* The SENDING part could not even be written: back to QUEUED, due now, its
 * token given back. */
void ob_unsend(outbox_t *ob, ob_part_t *p, int64_t now);

/* The terminal accepted the SENDING part (+CMGS, OK): SENT. A part whose
 * report arrived first stays where the report put it. */
void ob_sent(outbox_t *ob, ob_part_t *p, int64_t now);

/* A send failed (ERROR reply, time-out, line down): see ob_fail_t. Only
 * parts that are SENDING or SENT change. `why` is copied into detail. */
void ob_failed(outbox_t *ob, ob_part_t *p, int64_t now, ob_fail_t kind, const char *why);

/* Delivery report classes (pei_ds_class maps SDS-TL statuses onto these). */
typedef enum {
    OB_REPORT_RECEIVED = 1,
    OB_REPORT_READ,
    OB_REPORT_TEMPORARY,
    OB_REPORT_PERMANENT,
    OB_REPORT_INFO,      /* no change */
} ob_report_t;

/* A delivery report from `issi` for `msgref`. Returns the part it concerned
 * (now changed), or NULL when no part waits for that reference. */
ob_part_t *ob_report(outbox_t *ob, uint32_t issi, uint8_t msgref, ob_report_t cls, const char *what, int64_t now);

/* Unlinks messages that need nothing more from the radio (see the rules
 * above); their in_outbox turns false. Returns how many. */
unsigned ob_prune(outbox_t *ob, int64_t now);

/* Unlinks `m` whatever its state (its owner goes away). */
void ob_remove(outbox_t *ob, ob_msg_t *m);

/* Parts QUEUED or SENDING (not on the air yet). */
unsigned ob_pending(const outbox_t *ob);

/* True when every part of `m` is in one of the states of `mask` (bit 1<<state). */
bool ob_msg_all(const ob_msg_t *m, unsigned mask);

/* "QUEUED", "SENDING", ... Static. */
const char *ob_state_name(ob_state_t s);

#endif
