/* lines.h -- the relay's dispatcher line protocol: parsing one command line
 * (pure). The protocol itself is documented in client/relay/README.md.
 *
 *   RAISE <police_ref> <borough> <callsign> <priority 1-4> :<question>
 *   SAY <incident> :<what the officer says>
 *   READBACK <incident> <part|all> [:<note>]
 *   STATUS <incident>
 *   LIST
 *   PING
 *   HUMAN | MACHINE
 *   HELP
 *   QUIT
 *
 * Words are separated by spaces or tabs; command names are case-insensitive;
 * free text follows " :" and runs to the end of the line. <incident> is the
 * hub's incident number or the police reference of an incident the relay
 * follows.
 */
#ifndef MHTAS_RELAY_LINES_H
#define MHTAS_RELAY_LINES_H

#include <stddef.h>

typedef enum {
    LC_NONE = 0,  /* an empty line */
    LC_RAISE,
    LC_SAY,
    LC_READBACK,
    LC_STATUS,
    LC_LIST,
    LC_PING,
    LC_HUMAN,
    LC_MACHINE,
    LC_HELP,
    LC_QUIT,
} line_kind_t;

typedef struct line_cmd {
    line_kind_t kind;
    char police_ref[64];
    char borough[64];
    char callsign[32];
    int priority;          /* 1..4 */
    char incident[64];     /* as typed: a number or a police reference */
    unsigned part;         /* READBACK: 1..3, 0 = all */
    const char *text;      /* points into the parsed line; "" when none */
} line_cmd_t;

/* Parses `line` (NUL-terminated, without its line end; it is modified: the
 * text is cut out of it in place). Returns 0, or -1 with a reply for the user
 * in err: "<CODE> <message>" (e.g. "SYNTAX RAISE needs ..."). */
int lines_parse(char *line, line_cmd_t *out, char *err, size_t errcap);

/* The help text, lines separated by '\n'. */
const char *lines_help(void);

#endif
