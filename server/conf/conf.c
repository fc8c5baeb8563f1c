/* conf.c -- the main configuration file, --set overrides, validation and the
 * option reference.
 *
 * One table row per option (after redis config.c static_configs[]): the rows
 * parse the file, apply --set, give defaults, free the strings and print
 * config/README.md's table. Loading goes:
 *
 *   defaults -> main file -> --set (in order) -> boroughs checked ->
 *   users file (conf_users.c) -> providers and skills derived
 *
 * and every error names where the value came from: "file:line: [section]
 * key: message", or "--set section.key=value: message".
 */
#include "conf_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"

/* ------------------------------------------------------------------ tables */

static const char *const log_levels[] = { "error", "warn", "info", "debug", "trace", NULL };
static const char *const strategies[] = { "ringall", "leastrecent", "fewestcalls", "rrmemory",
                                          "linear",  "random",      NULL };

#define OFF(field) offsetof(hub_config_t, field)
#define STR(sec, k, d, field, text)                                                                       \
    { .section = sec, .key = k, .type = CONF_STRING, .def = d, .offset = OFF(field), .doc = text }
#define PATH(sec, k, d, field, text)                                                                      \
    { .section = sec, .key = k, .type = CONF_PATH, .def = d, .offset = OFF(field), .doc = text }
#define ENUM(sec, k, d, list, field, text)                                                                \
    { .section = sec, .key = k, .type = CONF_ENUM, .choices = list, .def = d, .offset = OFF(field),     \
      .doc = text }
#define PORT(sec, k, d, field, text)                                                                      \
    { .section = sec, .key = k, .type = CONF_PORT, .def = d, .offset = OFF(field), .doc = text }
#define U32(sec, k, d, lo, hi, field, text)                                                               \
    { .section = sec, .key = k, .type = CONF_UINT32, .min = lo, .max = hi, .def = d,                    \
      .offset = OFF(field), .doc = text }
#define NAME(sec, k, d, field, text)                                                                      \
    { .section = sec, .key = k, .type = CONF_STRING, .flags = CONF_F_IDENT, .def = d,                   \
      .offset = OFF(field), .doc = text }

static const conf_option_t main_options[] = {
    STR("hub", "listen_host", "127.0.0.1", listen_host,
        "IP address both listeners bind to (an address, not a host name)."),
    PORT("hub", "grpc_port", "7443", grpc_port,
         "HTTP/2 gRPC port for the practitioners' desktop client and the radio relay."),
    PORT("hub", "http_port", "8080", http_port,
         "HTTP port for the web console, its WebSocket, /healthz and /metrics."),
    ENUM("hub", "log_level", "info", log_levels, log_level, "Least severe log level written to stderr."),
    PATH("hub", "users_file", "users.ini", users_file, "The users file: one [user:ID] section per user (rows at the end)."),
    PATH("hub", "static_dir", "../../client/web", static_dir, "Directory of the web console's files."),
    { .section = "hub", .key = "data_dir", .type = CONF_PATH, .def = "", .offset = OFF(data_dir),
      .flags = CONF_F_EMPTY_OK,
      .doc = "Directory of the durable journal (created if missing; locked by one hub at a time). "
             "Empty: state is kept in memory only and NOTHING survives a restart (the hub warns at start-up)." },

    U32("hub", "journal_segment_bytes", "67108864", 4096, 1073741824, journal_segment_bytes,
        "A journal segment file is sealed and a new one started once it holds this many bytes."),

    U32("limits", "max_message_bytes", "1048576", 1, 67108864, max_message_bytes,
        "Largest gRPC message or WebSocket message accepted."),
    U32("limits", "max_connections", "10000", 1, 1000000, max_connections,
        "Connections per front end; more are refused."),
    U32("limits", "max_streams_per_conn", "100", 1, 10000, max_streams_per_conn,
        "Concurrent HTTP/2 streams per connection."),
    U32("limits", "max_header_bytes", "16384", 1024, 1048576, max_header_bytes,
        "Largest HTTP/2 header block or HTTP request head."),
    U32("limits", "idle_timeout_ms", "300000", 1000, 86400000, idle_timeout_ms,
        "A connection with no traffic and no open stream is closed after this."),
    U32("limits", "preface_timeout_ms", "10000", 100, 600000, preface_timeout_ms,
        "Time allowed for the HTTP/2 preface or the WebSocket authentication frame."),
    U32("limits", "ping_interval_ms", "20000", 1000, 3600000, ping_interval_ms,
        "Keep-alive ping interval."),
    U32("limits", "max_queued_bytes", "8388608", 65536, 1073741824, max_queued_bytes,
        "Unsent output per connection; a connection over it is closed."),
    U32("limits", "event_history", "100000", 1, 10000000, event_history,
        "Events kept so a client can resume a subscription after a reconnect."),

    ENUM("routing", "strategy", "leastrecent", strategies, strategy,
         "How an incident chooses among eligible practitioners (after Asterisk's queue strategies)."),
    U32("routing", "offer_timeout_ms", "30000", 1000, 600000, offer_timeout_ms,
        "An offer not accepted in this time goes to the next practitioner."),
    U32("routing", "auto_pause_after", "3", 0, 100, auto_pause_after,
        "Missed offers in a row before a practitioner is paused; 0: never."),
    U32("routing", "wrap_up_ms", "60000", 0, 3600000, wrap_up_ms,
        "After an incident closes, time before its practitioner gets new offers."),
    U32("routing", "disconnect_grace_ms", "120000", 0, 3600000, disconnect_grace_ms,
        "A disconnected practitioner keeps accepted incidents this long."),
    U32("routing", "widen_neighbour_ms", "30000", 0, 86400000, widen_neighbour_ms,
        "Wait after which practitioners of neighbouring boroughs are eligible; 0: never."),
    U32("routing", "widen_anyone_ms", "60000", 0, 86400000, widen_anyone_ms,
        "Wait after which anyone on shift with the skills is eligible; 0: never."),
    U32("routing", "sla_p1_ms", "60000", 1000, 86400000, sla_ms[1], "Raise-to-accept service level, priority 1."),
    U32("routing", "sla_p2_ms", "120000", 1000, 86400000, sla_ms[2], "Raise-to-accept service level, priority 2."),
    U32("routing", "sla_p3_ms", "300000", 1000, 86400000, sla_ms[3], "Raise-to-accept service level, priority 3."),
    U32("routing", "sla_p4_ms", "900000", 1000, 86400000, sla_ms[4], "Raise-to-accept service level, priority 4."),
    U32("routing", "sla_warn_percent", "75", 1, 100, sla_warn_percent,
        "Supervisors are warned when this share of an incident's service level has passed."),
    U32("routing", "max_open_incidents", "10000", 1, 10000000, max_open_incidents,
        "Open incidents held at once; more are refused."),
    U32("routing", "max_messages_per_incident", "2000", 1, 1000000, max_messages_per_incident,
        "Messages kept per incident; more are refused."),
    U32("routing", "max_text_bytes", "4000", 1, 1048576, max_text_bytes, "Longest free-text field."),

    { .section = "console", .key = "allowed_origins", .type = CONF_LIST,
      .def = "http://127.0.0.1:8080,http://localhost:8080", .offset = OFF(allowed_origins),
      .count_offset = OFF(n_allowed_origins),
      .doc = "Origin header values accepted on the console's WebSocket (change it with http_port)." },

    STR("cache", "redis_host", "127.0.0.1", redis_host,
        "IP address of the Redis care-summary cache (an address: host names are not resolved on the loop)."),
    U32("cache", "redis_port", "0", 0, 65535, redis_port,
        "TCP port of the Redis care-summary cache; 0 (and no redis_socket): no cache, and care-record "
        "look-ups answer UNAVAILABLE."),
    { .section = "cache", .key = "redis_socket", .type = CONF_PATH, .def = "", .offset = OFF(redis_socket),
      .flags = CONF_F_EMPTY_OK,
      .doc = "Unix socket of the Redis cache, used instead of redis_host and redis_port. Empty: TCP." },
    U32("cache", "command_timeout_ms", "500", 10, 60000, cache_command_timeout_ms,
        "Deadline of one cache look-up; a Redis that misses it is presumed hung and reconnected."),
    U32("cache", "stale_after_days", "30", 0, 3650, cache_stale_after_days,
        "Parts of a care summary older than this are flagged stale to the practitioner; 0: never."),
    U32("cache", "max_reply_bytes", "4194304", 65536, 268435456, cache_max_reply_bytes,
        "Largest Redis reply read for one look-up; a larger record is refused (RESOURCE_EXHAUSTED)."),

    NAME("skills", "under_18", "camhs", skill_under_18,
         "Skill an incident needs when the person is under 18."),
    NAME("skills", "ld_autism", "ld_autism", skill_ld_autism,
         "Skill an incident needs when the person has a learning disability or autism."),
};
#define N_MAIN (sizeof main_options / sizeof main_options[0])

static const conf_option_t borough_options[] = {
    { .section = "borough:NAME", .key = "provider", .type = CONF_STRING, .flags = CONF_F_REQUIRED | CONF_F_IDENT,
      .offset = offsetof(hub_borough_t, provider),
      .doc = "NHS mental-health provider serving the borough; providers are the distinct values of this key." },
    { .section = "borough:NAME", .key = "neighbours", .type = CONF_LIST, .flags = CONF_F_IDENT,
      .offset = offsetof(hub_borough_t, neighbours), .count_offset = offsetof(hub_borough_t, n_neighbours),
      .doc = "Neighbouring boroughs (each a configured borough), eligible after widen_neighbour_ms." },
};
#define N_BOROUGH (sizeof borough_options / sizeof borough_options[0])
enum { BOROUGH_PROVIDER, BOROUGH_NEIGHBOURS }; /* rows of borough_options */

static const char *const fixed_sections[] = { "hub", "limits", "routing", "console", "cache", "skills", NULL };
static const char borough_prefix[] = "borough:";
#define BOROUGH_PREFIX_LEN (sizeof borough_prefix - 1)

/* ------------------------------------------------------------ load context */

/* Where a value came from: > 0 a line of the main file, < 0 --set number
 * -(n + 1), 0 the default. */
typedef struct borough_meta {
    int line;               /* the section header */
    int key_line[N_BOROUGH];
} borough_meta_t;

typedef struct load {
    hub_config_t *cfg;
    const char *display;    /* the main file as given */
    char *dir;              /* its absolute directory */
    char *cwd;              /* base of relative paths in --set */
    const char *const *sets;
    int opt_line[N_MAIN];
    borough_meta_t *bmeta;  /* parallel to cfg->boroughs */
} load_t;

static void where(const load_t *l, int line, char *out, size_t len)
{
    if (line > 0)
        snprintf(out, len, "%s:%d", l->display, line);
    else if (line < 0)
        snprintf(out, len, "--set %s", l->sets[-line - 1]);
    else
        snprintf(out, len, "%s", l->display);
}

static bool is_fixed_section(const char *s)
{
    for (int i = 0; fixed_sections[i] != NULL; i++)
        if (strcmp(fixed_sections[i], s) == 0)
            return true;
    return false;
}

static int find_borough(const hub_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_boroughs; i++)
        if (strcmp(cfg->boroughs[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Adds borough `name` (from a header at `line`); its index, or -1. */
static int add_borough(load_t *l, const char *name, int line, char *msg, size_t msglen)
{
    hub_config_t *cfg = l->cfg;
    if (!conf__is_name(name, false)) {
        snprintf(msg, msglen, "\"%s\" is not a valid borough name (1 to %d letters, digits, '_' or '-')", name,
                 CONF_MAX_NAME);
        return -1;
    }
    if (cfg->n_boroughs == CONF_MAX_BOROUGHS) {
        snprintf(msg, msglen, "more than %d boroughs", CONF_MAX_BOROUGHS);
        return -1;
    }
    hub_borough_t *b = hub_realloc(cfg->boroughs, (cfg->n_boroughs + 1) * sizeof *b);
    if (b != NULL)
        cfg->boroughs = b;
    borough_meta_t *m = hub_realloc(l->bmeta, (cfg->n_boroughs + 1) * sizeof *m);
    if (m != NULL)
        l->bmeta = m;
    char *copy = hub_strdup(name);
    if (b == NULL || m == NULL || copy == NULL) {
        hub_free(copy);
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    memset(&b[cfg->n_boroughs], 0, sizeof *b);
    memset(&m[cfg->n_boroughs], 0, sizeof *m);
    b[cfg->n_boroughs].name = copy;
    m[cfg->n_boroughs].line = line;
    return (int)cfg->n_boroughs++;
}

static int on_section(void *ctx, const char *section, int line, char *msg, size_t msglen)
{
    load_t *l = ctx;
    if (is_fixed_section(section))
        return 0;
    if (strncmp(section, borough_prefix, BOROUGH_PREFIX_LEN) == 0)
        return add_borough(l, section + BOROUGH_PREFIX_LEN, line, msg, msglen) < 0 ? -1 : 0;
    snprintf(msg, msglen, "unknown section (expected hub, limits, routing, console, skills or borough:NAME)");
    return -1;
}

/* Applies one value from the file (line > 0) or --set (line < 0). */
static int apply(load_t *l, const char *section, const char *key, const char *value, int line, bool cont,
                 const char *dir, char *msg, size_t msglen)
{
    const conf_option_t *o;
    void *base;
    int *seen;
    if (is_fixed_section(section)) {
        o = conf__find(main_options, N_MAIN, section, key);
        if (o == NULL) {
            snprintf(msg, msglen, "unknown key");
            return -1;
        }
        base = l->cfg;
        seen = &l->opt_line[o - main_options];
    } else if (strncmp(section, borough_prefix, BOROUGH_PREFIX_LEN) == 0) {
        o = conf__find(borough_options, N_BOROUGH, "borough:NAME", key);
        if (o == NULL) {
            snprintf(msg, msglen, "unknown key (expected provider or neighbours)");
            return -1;
        }
        int b = find_borough(l->cfg, section + BOROUGH_PREFIX_LEN);
        if (b < 0 && line < 0)
            b = add_borough(l, section + BOROUGH_PREFIX_LEN, line, msg, msglen);
        if (b < 0) {
            if (line > 0) /* the header's error was reported already */
                snprintf(msg, msglen, "not a valid borough section");
            return -1;
        }
        base = &l->cfg->boroughs[b];
        seen = &l->bmeta[b].key_line[o - borough_options];
    } else if (section[0] == '\0') {
        snprintf(msg, msglen, "the key is outside any [section]");
        return -1;
    } else {
        snprintf(msg, msglen, "unknown section");
        return -1;
    }
    if (line > 0 && !cont && *seen > 0) {
        snprintf(msg, msglen, "set twice (first at line %d)", *seen);
        return -1;
    }
    if (conf__set(o, base, value, dir, cont, msg, msglen) != 0)
        return -1;
    if (!cont)
        *seen = line;
    return 0;
}

static int on_key(void *ctx, const char *section, const char *key, const char *value, int line, bool cont,
                  char *msg, size_t msglen)
{
    load_t *l = ctx;
    return apply(l, section, key, value, line, cont, l->dir, msg, msglen);
}

static char *trimmed(const char *s, const char *e)
{
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return hub_strndup(s, (size_t)(e - s));
}

/* "section.key=value" -> apply. The key is after the last '.' before '='
 * (borough names have no dots). */
static int apply_set(load_t *l, int i, char *err, size_t errlen)
{
    const char *s = l->sets[i];
    const char *eq = strchr(s, '=');
    const char *dot = NULL;
    for (const char *p = s; eq != NULL && p < eq; p++)
        if (*p == '.')
            dot = p;
    char msg[384];
    if (eq == NULL || dot == NULL || dot == s || dot + 1 == eq) {
        snprintf(err, errlen, "--set %s: expected section.key=value", s);
        return -1;
    }
    /* Whitespace around the section, key and value is dropped, as inih does. */
    char *section = trimmed(s, dot);
    char *key = trimmed(dot + 1, eq);
    char *value = trimmed(eq + 1, eq + strlen(eq));
    int rc = -1;
    if (section == NULL || key == NULL || value == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (apply(l, section, key, value, -(i + 1), false, l->cwd, msg, sizeof msg) != 0) {
        snprintf(err, errlen, "--set %s: %s", s, msg);
        goto out;
    }
    rc = 0;
out:
    hub_free(section);
    hub_free(key);
    hub_free(value);
    return rc;
}

/* --------------------------------------------------------------- validate */

static int validate(load_t *l, char *err, size_t errlen)
{
    hub_config_t *cfg = l->cfg;
    char at[PATH_MAX + 64];

    int host_line = l->opt_line[conf__find(main_options, N_MAIN, "hub", "listen_host") - main_options];
    unsigned char addr[16];
    if (inet_pton(AF_INET, cfg->listen_host, addr) != 1 && inet_pton(AF_INET6, cfg->listen_host, addr) != 1) {
        where(l, host_line, at, sizeof at);
        snprintf(err, errlen, "%s: [hub] listen_host: \"%s\" is not an IP address", at, cfg->listen_host);
        return -1;
    }

    int rhost_line = l->opt_line[conf__find(main_options, N_MAIN, "cache", "redis_host") - main_options];
    if (inet_pton(AF_INET, cfg->redis_host, addr) != 1 && inet_pton(AF_INET6, cfg->redis_host, addr) != 1) {
        where(l, rhost_line, at, sizeof at);
        snprintf(err, errlen, "%s: [cache] redis_host: \"%s\" is not an IP address", at, cfg->redis_host);
        return -1;
    }

    if (cfg->n_boroughs == 0) {
        snprintf(err, errlen, "%s: no [borough:NAME] section; at least one borough is needed", l->display);
        return -1;
    }
    for (size_t i = 0; i < cfg->n_boroughs; i++) {
        hub_borough_t *b = &cfg->boroughs[i];
        borough_meta_t *m = &l->bmeta[i];
        if (b->provider == NULL) {
            where(l, m->line, at, sizeof at);
            snprintf(err, errlen, "%s: [borough:%s]: provider is required", at, b->name);
            return -1;
        }
        for (size_t j = 0; j < b->n_neighbours; j++) {
            const char *nb = b->neighbours[j];
            where(l, m->key_line[BOROUGH_NEIGHBOURS], at, sizeof at);
            if (strcmp(nb, b->name) == 0) {
                snprintf(err, errlen, "%s: [borough:%s] neighbours: a borough is not its own neighbour", at,
                         b->name);
                return -1;
            }
            if (find_borough(cfg, nb) < 0) {
                snprintf(err, errlen, "%s: [borough:%s] neighbours: \"%s\" is not a configured borough", at,
                         b->name, nb);
                return -1;
            }
        }
        if (conf__add_unique(&cfg->providers, &cfg->n_providers, b->provider) != 0)
            goto nomem;
    }
    if (conf__add_unique(&cfg->skills, &cfg->n_skills, cfg->skill_under_18) != 0 ||
        conf__add_unique(&cfg->skills, &cfg->n_skills, cfg->skill_ld_autism) != 0)
        goto nomem;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* ------------------------------------------------------------------ public */

hub_config_t *hub_config_load(const char *path, const char *const *sets, size_t n_sets, char *err, size_t errlen)
{
    load_t l;
    memset(&l, 0, sizeof l);
    l.display = path;
    l.sets = sets;
    char msg[384];

    hub_config_t *cfg = hub_calloc(1, sizeof *cfg);
    if (cfg == NULL)
        goto nomem;
    l.cfg = cfg;
    cfg->path = hub_strdup(path);
    if (cfg->path == NULL)
        goto nomem;
    l.dir = conf__dir_of(path);
    if (l.dir == NULL) {
        if (errno == ENOMEM)
            goto nomem;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    char cwd[PATH_MAX];
    l.cwd = hub_strdup(getcwd(cwd, sizeof cwd) != NULL ? cwd : l.dir);
    if (l.cwd == NULL)
        goto nomem;

    for (size_t i = 0; i < N_MAIN; i++) {
        if (conf__set(&main_options[i], cfg, main_options[i].def, l.dir, false, msg, sizeof msg) != 0) {
            /* Defaults are tested to be valid; only memory can fail here. */
            snprintf(err, errlen, "default of [%s] %s: %s", main_options[i].section, main_options[i].key, msg);
            goto fail;
        }
    }
    if (conf__parse_ini(path, path, on_section, on_key, &l, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < n_sets; i++)
        if (apply_set(&l, (int)i, err, errlen) != 0)
            goto fail;
    if (validate(&l, err, errlen) != 0)
        goto fail;
    if (conf__load_users(cfg, cfg->users_file, err, errlen) != 0)
        goto fail;

    hub_free(l.dir);
    hub_free(l.cwd);
    hub_free(l.bmeta);
    return cfg;

nomem:
    snprintf(err, errlen, "out of memory");
fail:
    hub_free(l.dir);
    hub_free(l.cwd);
    hub_free(l.bmeta);
    hub_config_free(cfg);
    return NULL;
}

static void free_strings(char **arr, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hub_free(arr[i]);
    hub_free(arr);
}

void hub_config_free(hub_config_t *cfg)
{
    if (cfg == NULL)
        return;
    conf__clear_all(main_options, N_MAIN, cfg);
    for (size_t i = 0; i < cfg->n_boroughs; i++) {
        hub_free(cfg->boroughs[i].name);
        conf__clear_all(borough_options, N_BOROUGH, &cfg->boroughs[i]);
    }
    hub_free(cfg->boroughs);
    for (size_t i = 0; i < cfg->n_users; i++)
        conf__free_user(&cfg->users[i]);
    hub_free(cfg->users);
    free_strings(cfg->providers, cfg->n_providers);
    free_strings(cfg->skills, cfg->n_skills);
    hub_free(cfg->path);
    hub_free(cfg);
}

void hub_config_write_reference(FILE *out)
{
    fprintf(out, "| section | key | default | meaning |\n");
    fprintf(out, "| --- | --- | --- | --- |\n");
    conf__write_rows(out, main_options, N_MAIN);
    conf__write_rows(out, borough_options, N_BOROUGH);
    conf__write_rows(out, conf__user_options, conf__n_user_options);
}
