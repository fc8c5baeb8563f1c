/* pei.h -- the TETRA PEI (ETSI EN 300 392-5) AT-command conversation with a
 * radio terminal, as a pure state machine: bytes from the serial line go in
 * (pei_feed), bytes for the serial line come out through a write callback,
 * and what happened comes out as events. No I/O, no timers of its own: the
 * caller passes the time in milliseconds and calls pei_tick() now and then.
 *
 * The conversation
 *   init (pei_reset):  ATE0                 echo off
 *                      AT+CTSP=1,3,130      route SDS-TL text (protocol 130) to the PEI
 *                                           (an ERROR here is tolerated: some terminals
 *                                           route it by default)
 *                      AT+CTSDS=12,0        SDS type 4 (AI service 12), called party an SSI
 *   then PEI_EV_READY. One command at a time; each must end in OK, ERROR or
 *   +CME ERROR: n within cmd_timeout_ms (PEI_CMD_TIMEOUT_MS unless set after
 *   pei_init; else the command failed: a send is reported as a temporary
 *   failure and the terminal is initialised again).
 *
 *   send (pei_send):   AT+CMGS=<issi>,<bits><CR><LF><PDU hex><Ctrl-Z>
 *                      (written in one go; a "> " prompt from terminals that
 *                      give one is skipped)
 *                      <- +CMGS: <sds instance>[,<status>[,<message ref>]]
 *                      <- OK        => PEI_EV_SENT      (ERROR => PEI_EV_SEND_FAILED)
 *
 *   unsolicited:       +CTSDSR: 12,<calling issi>,<type>,<called issi>,<type>,<bits>
 *                      <PDU hex>   on the next line
 *                      => PEI_EV_INCOMING (an SDS-TL TRANSFER, or simple text)
 *                      => PEI_EV_REPORT   (an SDS-TL REPORT: delivery status of one of ours)
 *   Anything else unsolicited that is not a known indication is reported as
 *   PEI_EV_GARBAGE and otherwise ignored.
 *
 * The PDU we send (SDS-TL, EN 300 392-2 clause 29, text messaging):
 *   byte 0   0x82  protocol identifier: text messaging with SDS-TL
 *   byte 1   0x0C  SDS-TRANSFER (type 0), delivery report requested for
 *                  "received" and "consumed" (bits 3-2 = 11), no short form, no storage
 *   byte 2   message reference (1..255), chosen by the caller, echoed in reports
 *   byte 3   0x01  no time stamp, text coding scheme 1 = ISO/IEC 8859-1
 *   byte 4.. the text, one ISO-8859-1 byte per character
 * Reports we read: 0x82, 0x1X (SDS-REPORT), delivery status, message reference.
 * Incoming texts: 0x82 0x0X <ref> <coding> [3-byte time stamp if bit 7 of the
 * coding byte] <text>, or simple text messaging 0x02 <coding> <text>.
 */
#ifndef MHTAS_RELAY_PEI_H
#define MHTAS_RELAY_PEI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PEI_CMD_TIMEOUT_MS 5000
#define PEI_LINE_MAX 1024
#define PEI_TEXT_MAX 512              /* characters of one SDS text */
#define PEI_PROTO_TEXT_SDSTL 0x82
#define PEI_PROTO_TEXT_SIMPLE 0x02

typedef enum {
    PEI_EV_READY = 1,       /* initialised: sends may start */
    PEI_EV_INIT_FAILED,     /* detail: why; call pei_reset() again later */
    PEI_EV_SENT,            /* tag, msgref, sds_instance */
    PEI_EV_SEND_FAILED,     /* tag, msgref, detail ("ERROR", "+CME ERROR: 35", "timeout") */
    PEI_EV_INCOMING,        /* issi (caller), text (UTF-8) */
    PEI_EV_REPORT,          /* issi (the reporting terminal), msgref, status */
    PEI_EV_GARBAGE,         /* detail: the offending line (sanitised; may hold an
                               officer's words: never log it, only its length) */
} pei_event_kind_t;

typedef struct pei_event {
    pei_event_kind_t kind;
    void *tag;
    uint32_t issi;
    uint8_t msgref;
    uint8_t status;
    uint32_t sds_instance;
    const char *text;   /* borrowed for the callback */
    const char *detail; /* borrowed for the callback */
} pei_event_t;

typedef enum {
    PEI_ST_DOWN = 0,    /* not reset yet */
    PEI_ST_INIT,        /* init commands in flight */
    PEI_ST_IDLE,        /* ready, nothing in flight */
    PEI_ST_SENDING,     /* an AT+CMGS in flight */
} pei_state_t;

typedef struct pei {
    /* returns 0, or -1 when the bytes could not be written (the line is down) */
    int (*write)(void *ctx, const char *buf, size_t n);
    void (*on_event)(void *ctx, const pei_event_t *ev);
    void *ctx;

    int64_t cmd_timeout_ms;     /* PEI_CMD_TIMEOUT_MS after pei_init */

    pei_state_t state;
    int init_step;
    int64_t cmd_at_ms;          /* when the command in flight was written */
    /* the send in flight */
    void *tag;
    uint8_t msgref;
    uint32_t sds_instance;
    bool got_cmgs;
    /* input */
    char line[PEI_LINE_MAX];
    size_t len;
    bool discarding;            /* an over-long line is being skipped */
    bool prompt;                /* a '>' began the line: a " " after it ends a prompt */
    bool expect_pdu;            /* the line after +CTSDSR */
    uint32_t sdsr_calling;
    unsigned sdsr_bits;
    /* counters */
    uint64_t garbage_lines, errors, timeouts;
} pei_t;

/* Sets *p up (state DOWN). `write` is called with the bytes of each command
 * (borrowed until it returns); `on_event` with each event (borrowed until it
 * returns; it may call pei_send/pei_reset/pei_down). */
void pei_init(pei_t *p, int (*write)(void *, const char *, size_t), void (*on_event)(void *, const pei_event_t *),
              void *ctx);

/* (Re)starts the init sequence, forgetting anything in flight. A send in
 * flight is reported as PEI_EV_SEND_FAILED ("reset") first. */
void pei_reset(pei_t *p, int64_t now_ms);

/* The serial line is gone: whatever was in flight failed; state DOWN. */
void pei_down(pei_t *p, const char *why);

/* Bytes read from the serial line. */
void pei_feed(pei_t *p, int64_t now_ms, const char *buf, size_t n);

/* Time passes: a command without an answer within cmd_timeout_ms fails. */
void pei_tick(pei_t *p, int64_t now_ms);

/* True when a send may be started. */
bool pei_idle(const pei_t *p);

/* Sends `text` (UTF-8 radio text, see split.h) to `issi` with message
 * reference `msgref`. Returns 0 (the outcome comes as PEI_EV_SENT or
 * PEI_EV_SEND_FAILED with `tag`), -1 when not idle, -2 when the text is too
 * long or the issi out of range (24 bits), -3 when the write failed. */
int pei_send(pei_t *p, int64_t now_ms, uint32_t issi, uint8_t msgref, const char *text, void *tag);

/* Builds the SDS-TL TRANSFER PDU hex for `latin1` (n bytes) into out
 * (NUL-terminated). Returns the number of bits, or -1 when it does not fit. */
long pei_build_transfer_hex(uint8_t msgref, const unsigned char *latin1, size_t n, char *out, size_t cap);

/* Delivery status classes (EN 300 392-2, table 29.22 "delivery status"). */
typedef enum {
    PEI_DS_RECEIVED = 1,    /* 0x00 receipt acknowledged by destination (and 0x01, 0x04, 0x06) */
    PEI_DS_READ,            /* 0x02 consumed by destination (and 0x03) */
    PEI_DS_TEMPORARY,       /* 0x20-0x3F, and 0x40 overload, 0x42 service temporarily
                               unavailable, 0x4A delivery failed, 0x4C queue full,
                               0x60 memory full: retry with back-off */
    PEI_DS_PERMANENT,       /* every other failure, notably 0x4B not registered, 0x4D too long */
    PEI_DS_INFO,            /* flow control and anything else: no change */
} pei_ds_class_t;

pei_ds_class_t pei_ds_class(uint8_t status);
/* "received", "read", "destination not registered", ... Static. */
const char *pei_ds_str(uint8_t status);

#endif
