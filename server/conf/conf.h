/* conf.h -- the hub's configuration: one INI file plus a users file.
 *
 * Table-driven (after redis config.c static_configs[]): one row per option
 * gives its section, key, type, bounds, default and documentation; the same
 * table parses, validates, applies --set overrides and prints the reference
 * (config/README.md is checked against it by a test). The result is an
 * immutable hub_config_t.
 *
 * Errors name the file, the line and the key, e.g.
 *   config/demo/mhtas.ini:12: [routing] offer_timeout_ms: "abc" is not a whole number
 */
#ifndef MHTAS_CONF_H
#define MHTAS_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mhtas/v1/hub.pb-c.h"

#define HUB_TOKEN_HASH_LEN 32

typedef struct hub_user {
    char *id;              /* e.g. "p.khan" */
    char *display_name;
    Mhtas__V1__Role role;
    char *provider;        /* practitioners: their NHS provider; NULL for police */
    char **skills;         /* names from [skills] */
    size_t n_skills;
    char **boroughs;       /* boroughs covered; none = every borough of the provider */
    size_t n_boroughs;
    uint32_t capacity;     /* concurrent incidents; default 3 */
    uint8_t token_hash[HUB_TOKEN_HASH_LEN]; /* BLAKE2b-256 of the bearer token */
    int index;             /* position in hub_config_t.users */
} hub_user_t;

typedef struct hub_borough {
    char *name;
    char *provider;
    char **neighbours;
    size_t n_neighbours;
} hub_borough_t;

typedef struct hub_config {
    char *path;               /* the main file */

    /* [hub] */
    char *listen_host;        /* "127.0.0.1" */
    int grpc_port;            /* 0 = ephemeral */
    int http_port;            /* WebSocket + /healthz + /metrics + console; 0 = ephemeral */
    char *log_level;          /* error|warn|info|debug|trace */
    char *users_file;         /* relative to the main file's directory */
    char *static_dir;         /* console files; relative to the main file's directory */
    char *data_dir;           /* journal directory (durable state) */
    uint32_t journal_segment_bytes; /* a journal segment is sealed past this size */

    /* [limits] */
    uint32_t max_message_bytes;      /* one gRPC message or WebSocket message */
    uint32_t max_connections;        /* per front end */
    uint32_t max_streams_per_conn;   /* HTTP/2 concurrent streams */
    uint32_t max_header_bytes;       /* HTTP/2 header block */
    uint32_t idle_timeout_ms;        /* a connection with no traffic and no stream */
    uint32_t preface_timeout_ms;     /* HTTP/2 preface / WebSocket auth frame */
    uint32_t ping_interval_ms;       /* keepalive pings */
    uint32_t max_queued_bytes;       /* per connection, unsent output; over it: closed */
    uint32_t event_history;          /* events held for Subscribe(after_seq) resume */

    /* [routing] -- see core.h core_config_t for the meaning */
    char *strategy;                  /* ringall|leastrecent|fewestcalls|rrmemory|linear|random */
    uint32_t offer_timeout_ms;
    uint32_t auto_pause_after;
    uint32_t wrap_up_ms;
    uint32_t disconnect_grace_ms;
    uint32_t widen_neighbour_ms;
    uint32_t widen_anyone_ms;
    uint32_t sla_ms[5];              /* [1..4] from sla_p1_ms .. sla_p4_ms */
    uint32_t sla_warn_percent;
    uint32_t max_open_incidents;
    uint32_t max_messages_per_incident;
    uint32_t max_text_bytes;

    /* [console] */
    char **allowed_origins;          /* WebSocket Origin values accepted */
    size_t n_allowed_origins;

    /* [cache]: the care-summary cache (Redis; docs/CACHE.md) */
    char *redis_host;                /* an IP address */
    uint32_t redis_port;             /* 0 = no cache (unless redis_socket is set) */
    char *redis_socket;              /* unix socket path; "" = TCP */
    uint32_t cache_command_timeout_ms;
    uint32_t cache_stale_after_days; /* parts older than this are flagged stale; 0 = never */
    uint32_t cache_max_reply_bytes;

    /* [skills]: which skill an incident flag needs */
    char *skill_under_18;            /* "camhs" */
    char *skill_ld_autism;           /* "ld_autism" */

    /* reference data */
    char **providers;                /* distinct providers, in order of first mention */
    size_t n_providers;
    char **skills;                   /* every skill named by a user or [skills] */
    size_t n_skills;
    hub_borough_t *boroughs;         /* [borough:NAME] sections */
    size_t n_boroughs;
    hub_user_t *users;               /* from the users file */
    size_t n_users;
} hub_config_t;

/* Loads `path` (and the users file it names), then applies `sets`, each
 * "section.key=value", in order. On error returns NULL and writes a message
 * naming the file, line and key into err. The result is freed with
 * hub_config_free. */
hub_config_t *hub_config_load(const char *path, const char *const *sets, size_t n_sets,
                              char *err, size_t errlen);
void hub_config_free(hub_config_t *cfg);

/* Writes the option reference (Markdown table: section, key, default, meaning). */
void hub_config_write_reference(FILE *out);

/* Hashes a bearer token for the users file (BLAKE2b-256, lower-case hex). */
void hub_token_hash(const char *token, size_t len, uint8_t out[HUB_TOKEN_HASH_LEN]);

/* The user whose token this is, or NULL; constant-time comparison. */
const hub_user_t *hub_config_find_token(const hub_config_t *cfg, const char *token, size_t len);

#endif
