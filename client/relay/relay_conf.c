/* relay_conf.c -- see relay_conf.h.
 *
 * libinih is fed through our own line reader over the text in memory, as
 * the hub does for its own files (server/conf/conf_ini.c, whose helpers are
 * internal to server/conf): Debian's libinih cuts lines at 200 bytes without
 * saying so and does not pass line numbers to handlers, so the reader counts
 * lines itself and turns an over-long line into an error naming it. */
#include "relay_conf.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

/* ------------------------------------------------------------ the table */

typedef enum { OPT_STR, OPT_UINT } opt_type_t;

typedef struct opt {
    const char *section, *name;
    opt_type_t type;
    size_t off, size;      /* field and, for strings, its buffer size */
    unsigned min, max;     /* OPT_UINT bounds */
    const char *def;       /* default, as text ("" for none) */
    const char *help;
} opt_t;

#define S(sec, nm, field, def, help)                                                                                   \
    { sec, nm, OPT_STR, offsetof(relay_conf_t, field), sizeof(((relay_conf_t *)0)->field), 0, 0, def, help }
#define U(sec, nm, field, lo, hi, def, help)                                                                           \
    { sec, nm, OPT_UINT, offsetof(relay_conf_t, field), sizeof(unsigned), lo, hi, def, help }

static const opt_t OPTS[] = {
    S("hub", "host", hub_host, "127.0.0.1", "the hub's gRPC address: an IPv4 or IPv6 literal (no name look-up)"),
    U("hub", "port", hub_port, 1, 65535, "", "the hub's gRPC port (required)"),
    S("hub", "token_file", token_file, "",
      "file holding the dispatcher's bearer token (first line; relative to this file's directory); "
      "without it the MHTAS_TOKEN environment variable"),
    S("relay", "listen_host", listen_host, "127.0.0.1", "address of the dispatcher line protocol (TCP)"),
    U("relay", "listen_port", listen_port, 0, 65535, "7070", "its port; 0 picks a free one (printed at start)"),
    S("radio", "device", device, "",
      "the radio terminal's serial device (PEI), e.g. /dev/ttyUSB0; empty: no radio, advice is read by voice"),
    U("radio", "baud", baud, 9600, 115200, "115200", "serial speed: 9600, 19200, 38400, 57600 or 115200"),
    U("radio", "max_part_chars", max_part_chars, 40, 140, "140",
      "characters in one radio text, prefix included (some gateways cut at 100)"),
    U("radio", "rate_per_minute", rate_per_minute, 1, 600, "6", "texts a minute to one radio (ISSI), sustained"),
    U("radio", "rate_burst", rate_burst, 1, 20, "3", "texts to one radio at once before the rate applies"),
    U("radio", "max_attempts", max_attempts, 1, 20, "5", "temporary failures of a part before it is given up"),
    U("radio", "retry_base_ms", retry_base_ms, 10, 600000, "2000", "first retry delay; doubles each time"),
    U("radio", "retry_max_ms", retry_max_ms, 10, 3600000, "60000", "longest retry delay"),
    U("radio", "cmd_timeout_ms", cmd_timeout_ms, 100, 60000, "5000",
      "an AT command without OK/ERROR in this time failed (the terminal is initialised again)"),
    U("radio", "keep_s", keep_s, 1, 86400, "3600",
      "how long a sent part waits for its delivery reports before the relay stops tracking it"),
    S("radio", "default_borough", default_borough, "",
      "borough of incidents raised from an officer's first text (required with a device)"),
    U("radio", "default_priority", default_priority, 1, 4, "2",
      "priority of those incidents: 1 immediate, 2 urgent, 3 standard, 4 routine"),
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static int set_opt(relay_conf_t *c, const opt_t *o, const char *value, char *msg, size_t cap)
{
    char *field = (char *)c + o->off;
    if (o->type == OPT_STR) {
        if (strlen(value) >= o->size) {
            snprintf(msg, cap, "longer than %zu characters", o->size - 1);
            return -1;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (value[0] == '\0' || value[0] == '-' || *end != '\0' || errno || v < o->min || v > o->max) {
        snprintf(msg, cap, "must be a whole number %u..%u (got '%.40s')", o->min, o->max, value);
        return -1;
    }
    *(unsigned *)(void *)field = (unsigned)v;
    return 0;
}

void relay_conf_defaults(relay_conf_t *c)
{
    memset(c, 0, sizeof *c);
    char msg[128];
    for (size_t i = 0; i < N_OPTS; i++)
        if (OPTS[i].def[0])
            (void)set_opt(c, &OPTS[i], OPTS[i].def, msg, sizeof msg);
}

void relay_conf_reference(FILE *f)
{
    fputs("| section | key | default | meaning |\n| --- | --- | --- | --- |\n", f);
    for (size_t i = 0; i < N_OPTS; i++)
        fprintf(f, "| [%s] | %s | %s | %s |\n", OPTS[i].section, OPTS[i].name, OPTS[i].def[0] ? OPTS[i].def : "-",
                OPTS[i].help);
    fputs("| [callsigns] | CALLSIGN | - | the ISSI (1..16777215) of that officer's radio; one line each |\n", f);
}

/* ------------------------------------------------------------ callsigns */

const relay_callsign_conf_t *relay_conf_callsign(const relay_conf_t *c, const char *name)
{
    for (unsigned i = 0; i < c->n_callsigns; i++)
        if (strcasecmp(c->callsigns[i].name, name) == 0)
            return &c->callsigns[i];
    return NULL;
}

const relay_callsign_conf_t *relay_conf_issi(const relay_conf_t *c, uint32_t issi)
{
    for (unsigned i = 0; i < c->n_callsigns; i++)
        if (c->callsigns[i].issi == issi)
            return &c->callsigns[i];
    return NULL;
}

static int add_callsign(relay_conf_t *c, const char *name, const char *value, int line, char *msg, size_t cap)
{
    size_t n = strlen(name);
    if (n == 0 || n > RELAY_CALLSIGN_MAX) {
        snprintf(msg, cap, "a callsign is 1..%d characters", RELAY_CALLSIGN_MAX);
        return -1;
    }
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_' || *p == '/')) {
            snprintf(msg, cap, "a callsign has letters, digits, '-', '_' or '/' only");
            return -1;
        }
    char *end;
    errno = 0;
    unsigned long issi = strtoul(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end || errno || issi == 0 || issi > RELAY_ISSI_MAX) {
        snprintf(msg, cap, "an ISSI is a number 1..%d (got '%.40s')", RELAY_ISSI_MAX, value);
        return -1;
    }
    const relay_callsign_conf_t *dup = relay_conf_callsign(c, name);
    if (dup) {
        snprintf(msg, cap, "callsign listed twice (first at line %d)", dup->line);
        return -1;
    }
    if ((dup = relay_conf_issi(c, (uint32_t)issi)) != NULL) {
        snprintf(msg, cap, "ISSI %lu is already %s's (line %d): a radio has one callsign", issi, dup->name, dup->line);
        return -1;
    }
    if (c->n_callsigns == RELAY_MAX_CALLSIGNS) {
        snprintf(msg, cap, "more than %d callsigns", RELAY_MAX_CALLSIGNS);
        return -1;
    }
    relay_callsign_conf_t *cs = &c->callsigns[c->n_callsigns++];
    memcpy(cs->name, name, n + 1);
    cs->issi = (uint32_t)issi;
    cs->line = line;
    return 0;
}

/* ------------------------------------------------------------ parsing */

typedef struct parser {
    relay_conf_t *c;
    const char *display;
    const char *pos;       /* the rest of the text */
    int line;              /* physical line of the last line handed to inih */
    int err_line;          /* first error; 0 = none */
    char *err;
    size_t errcap;
} parser_t;

static void record(parser_t *p, int line, const char *section, const char *key, const char *msg)
{
    if (p->err_line)
        return;
    p->err_line = line;
    if (section && key)
        snprintf(p->err, p->errcap, "%s:%d: [%s] %s: %s", p->display, line, section, key, msg);
    else if (section)
        snprintf(p->err, p->errcap, "%s:%d: [%s]: %s", p->display, line, section, msg);
    else
        snprintf(p->err, p->errcap, "%s:%d: %s", p->display, line, msg);
}

static bool known_section(const char *s)
{
    return strcmp(s, "hub") == 0 || strcmp(s, "relay") == 0 || strcmp(s, "radio") == 0 || strcmp(s, "callsigns") == 0;
}

static char *reader(char *str, int num, void *stream)
{
    parser_t *p = stream;
    if (*p->pos == '\0')
        return NULL;
    const char *nl = strchr(p->pos, '\n');
    size_t n = nl ? (size_t)(nl - p->pos) + 1 : strlen(p->pos);
    p->line++;
    size_t content = n;
    while (content && (p->pos[content - 1] == '\n' || p->pos[content - 1] == '\r'))
        content--;
    size_t limit = num > 3 ? (size_t)num - 3 : 0; /* room for "\r\n" and the NUL */
    if (content > limit) {
        char msg[96];
        snprintf(msg, sizeof msg, "the line is %zu characters long; the limit is %zu", content, limit);
        record(p, p->line, NULL, NULL, msg);
        str[0] = '\n';
        str[1] = '\0';
    } else {
        memcpy(str, p->pos, n);
        str[n] = '\0';
        /* a section header: check it here, so that an empty unknown section is caught too */
        const char *s = str + strspn(str, " \t");
        const char *end = s[0] == '[' ? strchr(s, ']') : NULL;
        if (end) {
            char name[64];
            size_t len = (size_t)(end - s - 1);
            snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), s + 1);
            if (!known_section(name))
                record(p, p->line, name, NULL, "unknown section (hub, relay, radio or callsigns)");
        }
    }
    p->pos += n;
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parser_t *p = user;
    if (p->err_line)
        return 0;
    char msg[192];
    if (section[0] == '\0') {
        record(p, p->line, NULL, name, "a key before any [section]");
        return 0;
    }
    if (strcmp(section, "callsigns") == 0) {
        if (add_callsign(p->c, name, value ? value : "", p->line, msg, sizeof msg) < 0) {
            record(p, p->line, section, name, msg);
            return 0;
        }
        return 1;
    }
    for (size_t i = 0; i < N_OPTS; i++) {
        if (strcmp(OPTS[i].section, section) == 0 && strcmp(OPTS[i].name, name) == 0) {
            if (set_opt(p->c, &OPTS[i], value ? value : "", msg, sizeof msg) < 0) {
                record(p, p->line, section, name, msg);
                return 0;
            }
            return 1;
        }
    }
    if (known_section(section))
        record(p, p->line, section, name, "unknown key");
    return 0;
}

static int check(relay_conf_t *c, const char *display, char *err, size_t cap)
{
    if (c->hub_port == 0) {
        snprintf(err, cap, "%s: [hub] port is required", display);
        return -1;
    }
    if (c->retry_max_ms < c->retry_base_ms) {
        snprintf(err, cap, "%s: [radio] retry_max_ms (%u) is below retry_base_ms (%u)", display, c->retry_max_ms,
                 c->retry_base_ms);
        return -1;
    }
    static const unsigned bauds[] = { 9600, 19200, 38400, 57600, 115200 };
    bool baud_ok = false;
    for (size_t i = 0; i < sizeof bauds / sizeof bauds[0]; i++)
        baud_ok |= c->baud == bauds[i];
    if (!baud_ok) {
        snprintf(err, cap, "%s: [radio] baud %u is not one of 9600, 19200, 38400, 57600, 115200", display, c->baud);
        return -1;
    }
    if (c->device[0] && !c->default_borough[0]) {
        snprintf(err, cap, "%s: [radio] default_borough is required with a device (officers' texts raise incidents)",
                 display);
        return -1;
    }
    return 0;
}

int relay_conf_parse(relay_conf_t *c, const char *display, const char *text, char *err, size_t errcap)
{
    parser_t p = { .c = c, .display = display, .pos = text, .err = err, .errcap = errcap };
    err[0] = '\0';
    int rc = ini_parse_stream(reader, &p, handler, &p);
    if (rc > 0 && (p.err_line == 0 || rc < p.err_line)) {
        snprintf(err, errcap, "%s:%d: syntax error: expected [section], key = value or a comment", display, rc);
        return -1;
    }
    if (p.err_line)
        return -1;
    if (rc != 0) {
        snprintf(err, errcap, "%s: cannot be parsed", display);
        return -1;
    }
    return check(c, display, err, errcap);
}

/* ------------------------------------------------------------ files */

static char *slurp(const char *path, size_t max, char *err, size_t cap, const char *what)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, cap, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    bool bad = ferror(f) != 0;
    fclose(f);
    if (buf == NULL || bad || n > max) {
        snprintf(err, cap, "%s %s: %s", what, path, buf == NULL ? "out of memory" : bad ? "read error" : "too large");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        snprintf(err, cap, "%s %s: contains a NUL byte", what, path);
        free(buf);
        return NULL;
    }
    return buf;
}

int relay_conf_load(relay_conf_t *c, const char *path, char *err, size_t errcap)
{
    relay_conf_defaults(c);
    char *text = slurp(path, 1 << 20, err, errcap, "config");
    if (text == NULL)
        return -1;
    int rc = relay_conf_parse(c, path, text, err, errcap);
    free(text);
    if (rc < 0)
        return -1;
    if (c->token_file[0]) {
        char tpath[1100];
        const char *slash = strrchr(path, '/');
        if (c->token_file[0] == '/' || slash == NULL)
            snprintf(tpath, sizeof tpath, "%s", c->token_file);
        else
            snprintf(tpath, sizeof tpath, "%.*s/%s", (int)(slash - path), path, c->token_file);
        char *tok = slurp(tpath, 4096, err, errcap, "[hub] token_file");
        if (tok == NULL)
            return -1;
        tok[strcspn(tok, "\r\n")] = '\0';
        if (strlen(tok) >= sizeof c->token || tok[0] == '\0') {
            snprintf(err, errcap, "[hub] token_file %s: %s", tpath, tok[0] ? "token too long" : "empty");
            free(tok);
            return -1;
        }
        strcpy(c->token, tok);
        free(tok);
    } else {
        const char *env = getenv("MHTAS_TOKEN");
        if (env == NULL || env[0] == '\0' || strlen(env) >= sizeof c->token) {
            snprintf(err, errcap, "%s: no token: set [hub] token_file or the MHTAS_TOKEN environment variable", path);
            return -1;
        }
        strcpy(c->token, env);
    }
    return 0;
}
