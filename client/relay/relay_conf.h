/* relay_conf.h -- bin/mhtas-relay's configuration: one INI file (libinih),
 * read through a table of options (name, type, bounds, default, help) that
 * also writes the reference in client/relay/README.md (mhtas-relay
 * --help-config). Parsing works on text in memory (relay_conf_parse, pure,
 * unit-tested); relay_conf_load reads the file and the token file.
 *
 * Every error names the file and line: "relay.ini:12: [radio]
 * max_part_chars: must be 40..140 (got 300)". Unknown sections and keys are
 * errors (a typo must not silently leave a default in place).
 *
 *   [hub]        host, port, token_file        where the hub is, who we are
 *   [relay]      listen_host, listen_port      the dispatcher line protocol
 *   [radio]      device, baud, max_part_chars, rate_per_minute, rate_burst,
 *                max_attempts, retry_base_ms, retry_max_ms, cmd_timeout_ms,
 *                keep_s, default_borough, default_priority
 *   [callsigns]  CALLSIGN = ISSI               one line per officer's radio
 */
#ifndef MHTAS_RELAY_CONF_H
#define MHTAS_RELAY_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RELAY_MAX_CALLSIGNS 256
#define RELAY_CALLSIGN_MAX 31   /* characters */
#define RELAY_ISSI_MAX 16777215 /* 24 bits */

typedef struct relay_callsign_conf {
    char name[RELAY_CALLSIGN_MAX + 1];
    uint32_t issi;
    int line; /* where it was configured */
} relay_callsign_conf_t;

typedef struct relay_conf {
    /* [hub] */
    char hub_host[64];
    unsigned hub_port;
    char token_file[512];
    char token[512];           /* from token_file, or MHTAS_TOKEN (relay_conf_load) */
    /* [relay] */
    char listen_host[64];
    unsigned listen_port;      /* 0: any free port (tests) */
    /* [radio] */
    char device[512];          /* empty: no radio, voice only */
    unsigned baud;
    unsigned max_part_chars;
    unsigned rate_per_minute;
    unsigned rate_burst;
    unsigned max_attempts;
    unsigned retry_base_ms;
    unsigned retry_max_ms;
    unsigned cmd_timeout_ms;
    unsigned keep_s;
    char default_borough[64];
    unsigned default_priority;
    /* [callsigns] */
    relay_callsign_conf_t callsigns[RELAY_MAX_CALLSIGNS];
    unsigned n_callsigns;
} relay_conf_t;

/* Fills *c with every default. */
void relay_conf_defaults(relay_conf_t *c);

/* Parses INI `text` (named `display` in messages) over the values already in
 * *c, then checks the whole. Returns 0, or -1 with "display:line: ..." in
 * err. Pure: reads nothing but `text`. */
int relay_conf_parse(relay_conf_t *c, const char *display, const char *text, char *err, size_t errcap);

/* relay_conf_defaults + the file at `path` + the token (token_file, relative
 * to the config file's directory, else the MHTAS_TOKEN environment
 * variable). Returns 0, or -1 with the message in err. */
int relay_conf_load(relay_conf_t *c, const char *path, char *err, size_t errcap);

/* The callsign's entry (case-insensitive), or NULL. */
const relay_callsign_conf_t *relay_conf_callsign(const relay_conf_t *c, const char *name);

/* The entry for an ISSI, or NULL. */
const relay_callsign_conf_t *relay_conf_issi(const relay_conf_t *c, uint32_t issi);

/* Writes the option reference (Markdown table rows) to f. */
void relay_conf_reference(FILE *f);

#endif
