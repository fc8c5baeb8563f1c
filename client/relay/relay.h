/* relay.h -- what the files of bin/mhtas-relay share (internal).
 *
 *   main.c      composition root: argv, config, the loop, signals, teardown
 *   bridge.c    the hub side: followed incidents, advice to radio parts,
 *               officers' texts to incidents, hub calls and events
 *   session.c   dispatcher sessions: the line protocol over TCP and the
 *               human-friendly console on stdin/stdout
 *   radio.c     the serial device, the PEI machine (pei.c) and the outbox
 *               (outbox.c) glued to the loop
 *
 * The pure modules (split, pei, lines, outbox, relay_conf) know nothing of
 * this header. One libuv loop; nothing blocks it. Time for the pure modules
 * is uv_now() of the loop (milliseconds, monotonic).
 *
 * Logging: one line per event on stderr, "HH:MM:SS.mmm relay: <what>",
 * naming incidents, advice numbers, callsigns, ISSIs and lengths only --
 * never the words of an advice or an officer's text (health data).
 */
#ifndef MHTAS_RELAY_RELAY_H
#define MHTAS_RELAY_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "lib/mhtas_client.h"
#include "relay/outbox.h"
#include "relay/pei.h"
#include "relay/relay_conf.h"
#include "relay/split.h"

#define RELAY_PENDING_TEXTS 8   /* officer texts held while their incident is being raised */
#define RELAY_TEXT_MAX 1024     /* bytes of one officer text or SAY passed on */

/* ------------------------------------------------------------ incidents */

struct track;

/* One practitioner message that went (or was meant to go) to the radio. */
typedef struct advice {
    struct track *track;
    uint32_t number;        /* the hub's message number within the incident */
    char callsign[RELAY_CALLSIGN_MAX + 1];
    bool radio;             /* queued as radio text (else: voice only) */
    ob_msg_t ob;            /* the parts and their delivery state */
    bool said_received, said_read;
    bool read_back;
    uint64_t arrived_hr;    /* uv_hrtime() when the hub's event arrived */
} advice_t;

typedef struct track {      /* an incident the relay follows */
    uint64_t id;
    char police_ref[64];
    char callsign[RELAY_CALLSIGN_MAX + 1];
    int state;              /* Mhtas__V1__IncidentState */
    char practitioner[64];
    advice_t **advices;     /* in arrival order */
    size_t n_advices, cap_advices;
    uint32_t last_number;   /* highest practitioner message number handled */
    uint64_t ended_ms;      /* loop time it was seen closed/cancelled; 0 while open */
    struct track *next;
} track_t;

/* Runtime state of a configured callsign (an officer's radio). */
typedef struct officer {
    const relay_callsign_conf_t *conf;
    bool raising;           /* a RaiseIncident for this officer's text is in flight */
    char *pending[RELAY_PENDING_TEXTS]; /* texts that arrived meanwhile (malloc'd) */
    unsigned n_pending;
} officer_t;

typedef struct session session_t;
typedef struct hub_call hub_call_t;

/* ------------------------------------------------------------ the relay */

typedef struct relay {
    uv_loop_t *loop;
    relay_conf_t cfg;
    officer_t officers[RELAY_MAX_CALLSIGNS]; /* same order as cfg.callsigns */

    /* hub (bridge.c) */
    mhtas_client_t *client;
    bool hub_ready;
    unsigned hub_failures;  /* connection attempts failed in a row */
    bool listed;            /* the open incidents were loaded once */
    char user_id[64];
    track_t *tracks;
    uint64_t *foreign;      /* incidents seen not to be ours, ascending (bounded) */
    size_t n_foreign, cap_foreign;
    hub_call_t *retry_head; /* hub calls to make again (transient failures) */

    /* sessions (session.c) */
    uv_tcp_t listener;
    bool listener_init;
    int listen_port;
    session_t *sessions;
    uint64_t next_session_id;
    bool console;

    /* radio (radio.c) */
    bool radio_enabled;
    int fd;
    uv_poll_t poll;
    bool poll_active;       /* poll handle initialised and not closed */
    bool radio_up;          /* the terminal answered its init */
    uv_timer_t reopen;      /* reopen the device / re-initialise the terminal */
    unsigned reopen_delay_ms;
    uv_timer_t wake;        /* the outbox's next due time */
    pei_t pei;
    outbox_t ob;
    ob_part_t *in_flight;   /* the part whose AT+CMGS is in flight */
    char wbuf[16384];       /* bytes for the serial line not yet written */
    size_t wlen;
    uint64_t radio_faults, garbage_lines;

    /* lifecycle (main.c) */
    uv_signal_t sigint, sigterm;
    uv_timer_t tick;        /* 1 s housekeeping */
    bool closing;
    int exit_code;
} relay_t;

/* ------------------------------------------------------------ main.c */

void relay_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Starts the orderly shutdown (signals, console QUIT). */
void relay_shutdown(relay_t *r);
/* The loop's clock in milliseconds (what the pure modules get as `now`). */
int64_t relay_now(const relay_t *r);

/* ------------------------------------------------------------ session.c */

int session_listen(relay_t *r);
int session_console(relay_t *r);
void session_close_all(relay_t *r);
/* Sends one protocol line (no line end) to every session. */
void session_broadcast(relay_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The reply to the command a session waits for (its id), then it goes on
 * with its next line. `lines` are '\n'-separated; the last is the OK/ERR. A
 * session that has gone is skipped. */
void session_reply(relay_t *r, uint64_t session_id, const char *lines);

/* ------------------------------------------------------------ bridge.c */

int bridge_start(relay_t *r);
void bridge_stop(relay_t *r);
void bridge_tick(relay_t *r);
/* Frees tracks, advices and pending texts (after the loop ended). */
void bridge_free(relay_t *r);
track_t *bridge_track_lookup(relay_t *r, const char *number_or_ref);
track_t *bridge_tracks(relay_t *r);
const char *bridge_state_name(int state);
bool bridge_state_open(int state);
/* Dispatcher commands that need the hub. Each answers through session_reply. */
void bridge_raise(relay_t *r, uint64_t session_id, const char *police_ref, const char *borough, const char *callsign,
                  int priority, const char *question);
void bridge_say(relay_t *r, uint64_t session_id, track_t *t, const char *text);
void bridge_readback(relay_t *r, uint64_t session_id, track_t *t, unsigned part, const char *note);
/* An officer's text from the radio (UTF-8). */
void bridge_officer_text(relay_t *r, uint32_t issi, const char *text);
/* A RADIO_STATUS message on an incident (for the practitioner), with an
 * idempotency key so a resend is not posted twice; retried while the hub is
 * away. */
void bridge_post_status(relay_t *r, uint64_t incident, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
officer_t *relay_officer_by_name(relay_t *r, const char *name);
officer_t *relay_officer_by_issi(relay_t *r, uint32_t issi);

/* ------------------------------------------------------------ radio.c */

int radio_start(relay_t *r);
void radio_stop(relay_t *r);
void radio_tick(relay_t *r);
/* Queues an advice's parts (a->ob filled, a->ob.issi set) and sends at once
 * if the terminal is free. */
void radio_queue(relay_t *r, advice_t *a);
/* "up", "down" or "off". */
const char *radio_state(const relay_t *r);

#endif
