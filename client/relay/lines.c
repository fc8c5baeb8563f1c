/* lines.c -- see lines.h. */
#include "lines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char HELP[] =
    "RAISE <police_ref> <borough> <callsign> <priority 1-4> :<question>   raise a query for an officer\n"
    "SAY <incident> :<text>                 pass on what the officer says\n"
    "READBACK <incident> <part|all> [:note] the officer read the latest advice back: record it\n"
    "STATUS <incident>                      the incident, its latest advice and delivery per part\n"
    "LIST                                   the incidents this relay follows\n"
    "PING                                   is the relay alive (OK PONG)\n"
    "HUMAN | MACHINE                        readable output with a prompt / plain protocol lines\n"
    "HELP                                   this text\n"
    "QUIT                                   close this connection\n"
    "<incident> is the hub's incident number or its police reference; text follows ' :'.";

const char *lines_help(void)
{
    return HELP;
}

static char *next_word(char **p)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || *s == ':') {
        *p = s;
        return NULL;
    }
    char *w = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    if (*s)
        *s++ = '\0';
    *p = s;
    return w;
}

/* The free text after ':' (leading spaces removed), or NULL when the rest of
 * the line is not ":..." . */
static const char *rest_text(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int copy_word(char *dst, size_t cap, const char *w)
{
    if (strlen(w) >= cap)
        return -1;
    strcpy(dst, w);
    return 0;
}

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        snprintf(err, errcap, __VA_ARGS__);                                                                            \
        return -1;                                                                                                     \
    } while (0)

int lines_parse(char *line, line_cmd_t *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    out->text = "";
    /* strip a trailing CR (telnet, Windows terminals) and trailing blanks */
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        line[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
            FAIL("SYNTAX control characters are not allowed in a line");
    char *p = line;
    char *cmd = next_word(&p);
    if (cmd == NULL) {
        if (*p == ':')
            FAIL("SYNTAX a line starts with a command; type HELP");
        out->kind = LC_NONE;
        return 0;
    }
    if (strcasecmp(cmd, "RAISE") == 0) {
        char *ref = next_word(&p), *bor = next_word(&p), *cs = next_word(&p), *pri = next_word(&p);
        const char *q = rest_text(p);
        if (!ref || !bor || !cs || !pri || !q)
            FAIL("SYNTAX usage: RAISE <police_ref> <borough> <callsign> <priority 1-4> :<question>");
        if (copy_word(out->police_ref, sizeof out->police_ref, ref) || copy_word(out->borough, sizeof out->borough, bor) ||
            copy_word(out->callsign, sizeof out->callsign, cs))
            FAIL("BAD_ARG a reference, borough or callsign is too long");
        if (strlen(pri) != 1 || pri[0] < '1' || pri[0] > '4')
            FAIL("BAD_ARG priority must be 1 (immediate), 2 (urgent), 3 (standard) or 4 (routine), not '%.20s'", pri);
        out->priority = pri[0] - '0';
        if (*q == '\0')
            FAIL("SYNTAX RAISE needs the officer's question after ' :'");
        out->text = q;
        out->kind = LC_RAISE;
        return 0;
    }
    if (strcasecmp(cmd, "SAY") == 0) {
        char *inc = next_word(&p);
        const char *t = rest_text(p);
        if (!inc || !t || !*t)
            FAIL("SYNTAX usage: SAY <incident> :<text>  (e.g. SAY 12 :he is calmer now)");
        if (copy_word(out->incident, sizeof out->incident, inc))
            FAIL("BAD_ARG incident reference too long");
        out->text = t;
        out->kind = LC_SAY;
        return 0;
    }
    if (strcasecmp(cmd, "READBACK") == 0) {
        char *inc = next_word(&p), *part = next_word(&p);
        if (!inc || !part)
            FAIL("SYNTAX usage: READBACK <incident> <part|all> [:note]");
        if (copy_word(out->incident, sizeof out->incident, inc))
            FAIL("BAD_ARG incident reference too long");
        if (strcasecmp(part, "all") == 0)
            out->part = 0;
        else if (strlen(part) == 1 && part[0] >= '1' && part[0] <= '3')
            out->part = (unsigned)(part[0] - '0');
        else
            FAIL("BAD_ARG part must be 1, 2, 3 or all, not '%.20s'", part);
        const char *t = rest_text(p);
        if (t == NULL && *p)
            FAIL("SYNTAX a note follows ' :' (READBACK 12 all :read back correctly)");
        out->text = t ? t : "";
        out->kind = LC_READBACK;
        return 0;
    }
    if (strcasecmp(cmd, "STATUS") == 0) {
        char *inc = next_word(&p);
        if (!inc)
            FAIL("SYNTAX usage: STATUS <incident>");
        if (copy_word(out->incident, sizeof out->incident, inc))
            FAIL("BAD_ARG incident reference too long");
        out->kind = LC_STATUS;
    } else if (strcasecmp(cmd, "LIST") == 0) {
        out->kind = LC_LIST;
    } else if (strcasecmp(cmd, "PING") == 0) {
        out->kind = LC_PING;
    } else if (strcasecmp(cmd, "HUMAN") == 0) {
        out->kind = LC_HUMAN;
    } else if (strcasecmp(cmd, "MACHINE") == 0) {
        out->kind = LC_MACHINE;
    } else if (strcasecmp(cmd, "HELP") == 0 || strcmp(cmd, "?") == 0) {
        out->kind = LC_HELP;
    } else if (strcasecmp(cmd, "QUIT") == 0 || strcasecmp(cmd, "EXIT") == 0) {
        out->kind = LC_QUIT;
    } else {
        FAIL("UNKNOWN_COMMAND '%.30s' is not a command; type HELP", cmd);
    }
    if (next_word(&p) != NULL || *p)
        FAIL("SYNTAX %s takes %s", cmd, out->kind == LC_STATUS ? "one argument" : "no arguments");
    return 0;
}
