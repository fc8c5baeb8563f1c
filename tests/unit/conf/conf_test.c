/* conf_test.c -- the configuration module: defaults, every kind of error
 * with its file:line:key message, --set, token hashing, path resolution,
 * allocation failures, the reference in config/README.md and the demo
 * configuration.
 *
 * Files are written to a mkdtemp directory made once for the run; each test
 * writes its own main and users files there (overwriting the last test's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "util/alloc.h"

static char tmpdir[256];
static char main_path[512];
static char users_path[512];
static char err[1024];

/* ------------------------------------------------------------------ helpers */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void hash_hex(const char *token, char out[8 + 64 + 1])
{
    uint8_t h[HUB_TOKEN_HASH_LEN];
    hub_token_hash(token, strlen(token), h);
    memcpy(out, "blake2b:", 8);
    for (int i = 0; i < HUB_TOKEN_HASH_LEN; i++)
        snprintf(out + 8 + 2 * i, 3, "%02x", h[i]);
}

/* printf into a static buffer (for expected messages and file bodies). */
static const char *fmt(const char *f, ...)
{
    static char bufs[4][8192];
    static int next;
    char *b = bufs[next++ % 4];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, sizeof bufs[0], f, ap);
    va_end(ap);
    return b;
}

/* Three boroughs, two providers: lines 1..9 of every main file below that
 * starts with BOROUGHS. */
#define BOROUGHS                                                                                         \
    "[borough:Manchester]\n"    /* 1 */                                                                  \
    "provider = gmmh\n"         /* 2 */                                                                  \
    "neighbours = Salford\n"    /* 3 */                                                                  \
    "[borough:Salford]\n"       /* 4 */                                                                  \
    "provider = gmmh\n"         /* 5 */                                                                  \
    "neighbours = Manchester\n" /* 6 */                                                                  \
    "[borough:Oldham]\n"        /* 7 */                                                                  \
    "provider = pennine\n"      /* 8 */                                                                  \
    "\n"                        /* 9 */

/* A users file of three users; `extra` is appended (it starts at line 19). */
static void write_users(const char *extra)
{
    char h1[80], h2[80], h3[80];
    hash_hex("tok-op", h1);
    hash_hex("tok-pa", h2);
    hash_hex("tok-pb", h3);
    write_file(users_path, fmt("[user:op.one]\n"              /* 1 */
                               "name = Olu Operator\n"        /* 2 */
                               "role = operator\n"            /* 3 */
                               "token_hash = %s\n"            /* 4 */
                               "\n"                           /* 5 */
                               "[user:p.a]\n"                 /* 6 */
                               "name = Asha Practitioner\n"   /* 7 */
                               "role = practitioner\n"        /* 8 */
                               "provider = gmmh\n"            /* 9 */
                               "skills = camhs, talking\n"    /* 10 */
                               "boroughs = Manchester\n"      /* 11 */
                               "token_hash = %s\n"            /* 12 */
                               "[user:p.b]\n"                 /* 13 */
                               "name = Ben Practitioner\n"    /* 14 */
                               "role = practitioner\n"        /* 15 */
                               "provider = pennine\n"         /* 16 */
                               "capacity = 5\n"               /* 17 */
                               "token_hash = %s\n"            /* 18 */
                               "%s",
                               h1, h2, h3, extra));
}

static hub_config_t *load(const char *main_text, const char *const *sets, size_t n_sets)
{
    write_file(main_path, main_text);
    err[0] = '\0';
    return hub_config_load(main_path, sets, n_sets, err, sizeof err);
}

/* Loading fails with exactly `expected`. */
static void expect_error(const char *main_text, const char *const *sets, size_t n_sets, const char *expected)
{
    hub_config_t *cfg = load(main_text, sets, n_sets);
    if (cfg != NULL) {
        hub_config_free(cfg);
        fail_msg("loaded, expected the error: %s", expected);
    }
    assert_string_equal(err, expected);
}

static int setup_users(void **state)
{
    (void)state;
    write_users("");
    return 0;
}

/* ---------------------------------------------------------------- success */

static void test_defaults(void **state)
{
    (void)state;
    hub_config_t *cfg = load(BOROUGHS, NULL, 0);
    assert_non_null(cfg);
    assert_string_equal(err, "");
    assert_string_equal(cfg->path, main_path);
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->grpc_port, 7443);
    assert_int_equal(cfg->http_port, 8080);
    assert_string_equal(cfg->log_level, "info");
    assert_string_equal(cfg->users_file, users_path);
    /* ../../client/web from the file's directory; no data_dir: in memory */
    char up2[512];
    snprintf(up2, sizeof up2, "%s", tmpdir);
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(up2, '/');
        *slash = '\0';
    }
    assert_string_equal(cfg->static_dir, fmt("%s/client/web", up2));
    assert_string_equal(cfg->data_dir, "");
    assert_int_equal(cfg->max_message_bytes, 1048576);
    assert_int_equal(cfg->max_connections, 10000);
    assert_int_equal(cfg->max_streams_per_conn, 100);
    assert_int_equal(cfg->max_header_bytes, 16384);
    assert_int_equal(cfg->idle_timeout_ms, 300000);
    assert_int_equal(cfg->preface_timeout_ms, 10000);
    assert_int_equal(cfg->ping_interval_ms, 20000);
    assert_int_equal(cfg->max_queued_bytes, 8388608);
    assert_int_equal(cfg->event_history, 100000);
    assert_string_equal(cfg->strategy, "leastrecent");
    assert_int_equal(cfg->offer_timeout_ms, 30000);
    assert_int_equal(cfg->auto_pause_after, 3);
    assert_int_equal(cfg->wrap_up_ms, 60000);
    assert_int_equal(cfg->disconnect_grace_ms, 120000);
    assert_int_equal(cfg->widen_neighbour_ms, 30000);
    assert_int_equal(cfg->widen_anyone_ms, 60000);
    assert_int_equal(cfg->sla_ms[0], 0);
    assert_int_equal(cfg->sla_ms[1], 60000);
    assert_int_equal(cfg->sla_ms[2], 120000);
    assert_int_equal(cfg->sla_ms[3], 300000);
    assert_int_equal(cfg->sla_ms[4], 900000);
    assert_int_equal(cfg->sla_warn_percent, 75);
    assert_int_equal(cfg->max_open_incidents, 10000);
    assert_int_equal(cfg->max_messages_per_incident, 2000);
    assert_int_equal(cfg->max_text_bytes, 4000);
    assert_int_equal(cfg->n_allowed_origins, 2);
    assert_string_equal(cfg->allowed_origins[0], "http://127.0.0.1:8080");
    assert_string_equal(cfg->allowed_origins[1], "http://localhost:8080");
    assert_string_equal(cfg->skill_under_18, "camhs");
    assert_string_equal(cfg->skill_ld_autism, "ld_autism");

    assert_int_equal(cfg->n_boroughs, 3);
    assert_string_equal(cfg->boroughs[0].name, "Manchester");
    assert_string_equal(cfg->boroughs[0].provider, "gmmh");
    assert_int_equal(cfg->boroughs[0].n_neighbours, 1);
    assert_string_equal(cfg->boroughs[0].neighbours[0], "Salford");
    assert_int_equal(cfg->boroughs[2].n_neighbours, 0);
    assert_int_equal(cfg->n_providers, 2);
    assert_string_equal(cfg->providers[0], "gmmh");
    assert_string_equal(cfg->providers[1], "pennine");
    /* [skills] first, then users' in order of mention */
    assert_int_equal(cfg->n_skills, 3);
    assert_string_equal(cfg->skills[0], "camhs");
    assert_string_equal(cfg->skills[1], "ld_autism");
    assert_string_equal(cfg->skills[2], "talking");

    assert_int_equal(cfg->n_users, 3);
    const hub_user_t *op = &cfg->users[0], *pa = &cfg->users[1], *pb = &cfg->users[2];
    assert_string_equal(op->id, "op.one");
    assert_string_equal(op->display_name, "Olu Operator");
    assert_int_equal(op->role, MHTAS__V1__ROLE__ROLE_OPERATOR);
    assert_null(op->provider);
    assert_int_equal(op->capacity, 3);
    assert_int_equal(op->index, 0);
    assert_int_equal(pa->role, MHTAS__V1__ROLE__ROLE_PRACTITIONER);
    assert_string_equal(pa->provider, "gmmh");
    assert_int_equal(pa->n_skills, 2);
    assert_string_equal(pa->skills[1], "talking");
    assert_int_equal(pa->n_boroughs, 1);
    assert_string_equal(pa->boroughs[0], "Manchester");
    assert_int_equal(pa->index, 1);
    assert_int_equal(pb->capacity, 5);
    assert_int_equal(pb->n_boroughs, 0);
    assert_int_equal(pb->index, 2);
    hub_config_free(cfg);
}

static void test_every_key(void **state)
{
    (void)state;
    hub_config_t *cfg = load("\xEF\xBB\xBF; a comment line, after a UTF-8 byte-order mark\n"
                             "# another\n"
                             "[hub]\n"
                             "listen_host = ::1\n"
                             "grpc_port = 0\n"
                             "http_port: 65535\n" /* inih accepts ':' too */
                             "log_level = trace ; an inline comment\n"
                             "[limits]\n"
                             "max_message_bytes = 67108864\n"
                             "max_connections = 1\n"
                             "[routing]\n"
                             "strategy = rrmemory\n"
                             "offer_timeout_ms = 1000\n"
                             "sla_p3_ms = 1234\n"
                             "sla_warn_percent = 100\n"
                             "auto_pause_after = 0\n"
                             "[console]\n"
                             "allowed_origins = https://a.example ,https://b.example,\n"
                             "   https://c.example\n" /* continuation of a list */
                             "[skills]\n"
                             "under_18 = cyp\n" BOROUGHS,
                             NULL, 0);
    assert_non_null(cfg);
    assert_string_equal(cfg->listen_host, "::1");
    assert_int_equal(cfg->grpc_port, 0);
    assert_int_equal(cfg->http_port, 65535);
    assert_string_equal(cfg->log_level, "trace");
    assert_int_equal(cfg->max_message_bytes, 67108864);
    assert_int_equal(cfg->max_connections, 1);
    assert_string_equal(cfg->strategy, "rrmemory");
    assert_int_equal(cfg->offer_timeout_ms, 1000);
    assert_int_equal(cfg->sla_ms[3], 1234);
    assert_int_equal(cfg->sla_warn_percent, 100);
    assert_int_equal(cfg->auto_pause_after, 0);
    assert_int_equal(cfg->n_allowed_origins, 3);
    assert_string_equal(cfg->allowed_origins[1], "https://b.example");
    assert_string_equal(cfg->allowed_origins[2], "https://c.example");
    assert_string_equal(cfg->skill_under_18, "cyp");
    assert_string_equal(cfg->skills[0], "cyp");
    hub_config_free(cfg);
}

/* ------------------------------------------------------- main-file errors */

static void test_bad_number(void **state)
{
    (void)state;
    expect_error("[routing]\noffer_timeout_ms = abc\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [routing] offer_timeout_ms: \"abc\" is not a whole number", main_path));
    expect_error("[limits]\n\nmax_connections = -5\n" BOROUGHS, NULL, 0,
                 fmt("%s:3: [limits] max_connections: \"-5\" is not a whole number", main_path));
    expect_error("[hub]\ngrpc_port = 12a\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [hub] grpc_port: \"12a\" is not a whole number", main_path));
    expect_error("[hub]\ngrpc_port =\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [hub] grpc_port: \"\" is not a whole number", main_path));
}

static void test_out_of_range(void **state)
{
    (void)state;
    expect_error("[limits]\nmax_message_bytes = 0\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [limits] max_message_bytes: 0 is out of range (1..67108864)", main_path));
    expect_error("[limits]\nmax_message_bytes = 67108865\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [limits] max_message_bytes: 67108865 is out of range (1..67108864)", main_path));
    expect_error("[routing]\noffer_timeout_ms = 999\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [routing] offer_timeout_ms: 999 is out of range (1000..600000)", main_path));
    expect_error("[routing]\nsla_warn_percent = 101\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [routing] sla_warn_percent: 101 is out of range (1..100)", main_path));
    expect_error("[hub]\nhttp_port = 65536\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [hub] http_port: 65536 is out of range (0..65535)", main_path));
    expect_error("[routing]\nwrap_up_ms = 99999999999999999999\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [routing] wrap_up_ms: 99999999999999999999 is out of range (0..3600000)", main_path));
}

static void test_unknown_key(void **state)
{
    (void)state;
    expect_error("[routing]\nstrategy = linear\noffer_timeout = 5\n" BOROUGHS, NULL, 0,
                 fmt("%s:3: [routing] offer_timeout: unknown key", main_path));
    expect_error(BOROUGHS "[borough:Bury]\nprovider = pennine\ntrust = x\n", NULL, 0,
                 fmt("%s:12: [borough:Bury] trust: unknown key (expected provider or neighbours)", main_path));
    expect_error("grpc_port = 1\n" BOROUGHS, NULL, 0,
                 fmt("%s:1: grpc_port: the key is outside any [section]", main_path));
}

static void test_unknown_section(void **state)
{
    (void)state;
    /* Reported at the header even though no key follows it. */
    expect_error(BOROUGHS "[routeing]\n", NULL, 0,
                 fmt("%s:10: [routeing]: unknown section (expected hub, limits, routing, console, skills or "
                     "borough:NAME)",
                     main_path));
    expect_error(BOROUGHS "[borough:Bad Name]\nprovider = x\n", NULL, 0,
                 fmt("%s:10: [borough:Bad Name]: \"Bad Name\" is not a valid borough name (1 to 40 letters, "
                     "digits, '_' or '-')",
                     main_path));
    expect_error("[hub]\n" BOROUGHS "[hub]\n", NULL, 0,
                 fmt("%s:11: [hub]: the section appears twice (first at line 1)", main_path));
}

static void test_bad_enum(void **state)
{
    (void)state;
    expect_error("[routing]\nstrategy = roundrobin\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [routing] strategy: \"roundrobin\" is not one of: ringall, leastrecent, fewestcalls, "
                     "rrmemory, linear, random",
                     main_path));
    expect_error("[hub]\nlog_level = verbose\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [hub] log_level: \"verbose\" is not one of: error, warn, info, debug, trace", main_path));
    expect_error("[hub]\nlisten_host = localhost\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [hub] listen_host: \"localhost\" is not an IP address", main_path));
}

static void test_long_line(void **state)
{
    (void)state;
    /* inih would cut this line at 199 bytes and parse the tail as a line of
     * its own ("x...x = b", which would even look like a key). */
    char line[300];
    memset(line, 'x', sizeof line);
    memcpy(line, "allowed_origins = a", 19);
    memcpy(line + 230, " = b\n", 6);
    expect_error(fmt("[console]\n%s[hub]\n" BOROUGHS, line), NULL, 0,
                 fmt("%s:2: the line is 234 characters long; the limit is 197", main_path));

    /* A long comment is an error too (it might hide a key), and the lines
     * after it keep their numbers. */
    memset(line, ';', 250);
    line[250] = '\n';
    line[251] = '\0';
    expect_error(fmt("[hub]\n%s%s\n" BOROUGHS, "grpc_port = 1\n", line), NULL, 0,
                 fmt("%s:3: the line is 250 characters long; the limit is 197", main_path));

    /* 197 characters is fine. */
    memset(line, ' ', 197);
    memcpy(line, "log_level = debug", 17);
    line[197] = '\n';
    line[198] = '\0';
    hub_config_t *cfg = load(fmt("[hub]\n%s" BOROUGHS, line), NULL, 0);
    assert_non_null(cfg);
    assert_string_equal(cfg->log_level, "debug");
    hub_config_free(cfg);
}

static void test_syntax_and_repeats(void **state)
{
    (void)state;
    expect_error("[hub]\ngrpc_port 7443\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: syntax error: expected [section], key = value or a comment", main_path));
    expect_error("[hub\n" BOROUGHS, NULL, 0,
                 fmt("%s:1: syntax error: expected [section], key = value or a comment", main_path));
    expect_error("[hub]\ngrpc_port = 1\n\ngrpc_port = 2\n" BOROUGHS, NULL, 0,
                 fmt("%s:4: [hub] grpc_port: set twice (first at line 2)", main_path));
    expect_error("[hub]\ngrpc_port = 1\n  2\n" BOROUGHS, NULL, 0,
                 fmt("%s:3: [hub] grpc_port: an indented line continues a value only for lists", main_path));
    expect_error("[console]\nallowed_origins = a, ,b\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [console] allowed_origins: empty item in list \"a, ,b\"", main_path));
    expect_error("[console]\nallowed_origins = ,a\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [console] allowed_origins: empty item in list \",a\"", main_path));
    expect_error("[console]\nallowed_origins = a,,\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [console] allowed_origins: empty item in list \"a,,\"", main_path));
    expect_error("[console]\nallowed_origins = a,b\n  a\n" BOROUGHS, NULL, 0,
                 fmt("%s:3: [console] allowed_origins: \"a\" is listed twice", main_path));
    expect_error("[skills]\nunder_18 = child mh\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [skills] under_18: \"child mh\" is not a valid name (1 to 40 letters, digits, '_' "
                     "or '-')",
                     main_path));
    expect_error("[hub]\nlisten_host =\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [hub] listen_host: must not be empty", main_path));
}

static void test_boroughs(void **state)
{
    (void)state;
    expect_error(BOROUGHS "[borough:Bury]\nneighbours = Manchester\n", NULL, 0,
                 fmt("%s:10: [borough:Bury]: provider is required", main_path));
    expect_error("[hub]\n", NULL, 0,
                 fmt("%s: no [borough:NAME] section; at least one borough is needed", main_path));
    expect_error(BOROUGHS "[borough:Bury]\nprovider = pennine\nneighbours = Manchester, Prestwich\n", NULL, 0,
                 fmt("%s:12: [borough:Bury] neighbours: \"Prestwich\" is not a configured borough", main_path));
    expect_error(BOROUGHS "[borough:Bury]\nprovider = pennine\nneighbours = Bury\n", NULL, 0,
                 fmt("%s:12: [borough:Bury] neighbours: a borough is not its own neighbour", main_path));
    expect_error(BOROUGHS "[borough:Salford]\nprovider = gmmh\n", NULL, 0,
                 fmt("%s:10: [borough:Salford]: the section appears twice (first at line 4)", main_path));
}

/* ------------------------------------------------------ users-file errors */

static void test_missing_users_file(void **state)
{
    (void)state;
    expect_error("[hub]\nusers_file = nobody.ini\n" BOROUGHS, NULL, 0,
                 fmt("%s/nobody.ini: cannot open: No such file or directory (the users_file of %s)", tmpdir,
                     main_path));
}

static void test_missing_main_file(void **state)
{
    (void)state;
    err[0] = '\0';
    const char *p = fmt("%s/none.ini", tmpdir);
    assert_null(hub_config_load(p, NULL, 0, err, sizeof err));
    assert_string_equal(err, fmt("%s: cannot open: No such file or directory", p));
}

static void test_bad_role(void **state)
{
    (void)state;
    write_users("[user:x]\nname = X\nrole = officer\n");
    expect_error(BOROUGHS, NULL, 0,
                 fmt("%s:21: [user:x] role: \"officer\" is not one of: operator, dispatcher, practitioner, "
                     "supervisor",
                     users_path));
    write_users("[user:x]\nname = X\nrole = operator\n");
    expect_error(BOROUGHS, NULL, 0, fmt("%s:19: [user:x]: token_hash is required", users_path));
    write_users("[user:x]\nrole = operator\n");
    expect_error(BOROUGHS, NULL, 0, fmt("%s:19: [user:x]: name is required", users_path));
    write_users("[user:x]\nname = X\nrole = operator\ntoken_hash = blake2b:00\n");
    expect_error(BOROUGHS, NULL, 0,
                 fmt("%s:22: [user:x] token_hash: expected \"blake2b:\" and 64 lower-case hex digits (print one "
                     "with mhtas-hub --hash-token TOKEN)",
                     users_path));
    write_users("[user:x]\nname = X\nrole = practitioner\ncapacity = 51\n");
    expect_error(BOROUGHS, NULL, 0, fmt("%s:22: [user:x] capacity: 51 is out of range (1..50)", users_path));
    write_users("[user:x]\nname = X\nrole = operator\ncolour = blue\n");
    expect_error(BOROUGHS, NULL, 0,
                 fmt("%s:22: [user:x] colour: unknown key (expected name, role, token_hash, provider, skills, "
                     "boroughs or capacity)",
                     users_path));
    write_users("[user:a1234567890123456789012345678901234567890]\n");
    expect_error(BOROUGHS, NULL, 0,
                 fmt("%s:19: [user:a1234567890123456789012345678901234567890]: \"a1234567890123456789012345678901234567890\" "
                     "is not a valid user id (1 to 40 letters, digits, '.', '_' or '-')",
                     users_path));
    write_users("[user:a12345678901234567890123456789012345678901234567890]\n");
    expect_error(BOROUGHS, NULL, 0, fmt("%s:19: the section name is longer than 49 characters", users_path));
    write_users("[users]\n");
    expect_error(BOROUGHS, NULL, 0, fmt("%s:19: [users]: unknown section (expected user:ID)", users_path));
}

static void test_user_provider(void **state)
{
    (void)state;
    char h[80];
    hash_hex("tok-x", h);
    write_users(fmt("[user:x]\nname = X\nrole = practitioner\ntoken_hash = %s\n", h));
    expect_error(BOROUGHS, NULL, 0, fmt("%s:19: [user:x]: provider is required for practitioners", users_path));
    write_users(fmt("[user:x]\nname = X\nrole = practitioner\ntoken_hash = %s\nprovider = nwbh\n", h));
    expect_error(BOROUGHS, NULL, 0,
                 fmt("%s:23: [user:x] provider: \"nwbh\" is not a configured provider (gmmh, pennine)", users_path));
    write_users(fmt("[user:x]\nname = X\nrole = dispatcher\nprovider = gmmh\ntoken_hash = %s\n", h));
    expect_error(BOROUGHS, NULL, 0,
                 fmt("%s:22: [user:x] provider: only practitioners and supervisors have a provider", users_path));
    write_users(fmt("[user:x]\nname = X\nrole = supervisor\nprovider = gmmh\ntoken_hash = %s\n", h));
    hub_config_t *cfg = load(BOROUGHS, NULL, 0);
    assert_non_null(cfg);
    assert_string_equal(cfg->users[3].provider, "gmmh");
    hub_config_free(cfg);
}

static void test_user_unknown_borough(void **state)
{
    (void)state;
    char h[80];
    hash_hex("tok-x", h);
    write_users(fmt("[user:x]\nname = X\nrole = practitioner\nprovider = gmmh\nboroughs = Salford, Wigan\n"
                    "token_hash = %s\n",
                    h));
    expect_error(BOROUGHS, NULL, 0, fmt("%s:23: [user:x] boroughs: \"Wigan\" is not a configured borough", users_path));
}

static void test_duplicate_user(void **state)
{
    (void)state;
    char h[80];
    hash_hex("tok-x", h);
    write_users(fmt("[user:p.a]\nname = Again\nrole = operator\ntoken_hash = %s\n", h));
    expect_error(BOROUGHS, NULL, 0, fmt("%s:19: [user:p.a]: the section appears twice (first at line 6)", users_path));
    write_users("[user:x]\nname = X\nname = Y\n");
    expect_error(BOROUGHS, NULL, 0, fmt("%s:21: [user:x] name: set twice (first at line 20)", users_path));
}

static void test_duplicate_token(void **state)
{
    (void)state;
    char h[80];
    hash_hex("tok-pa", h); /* p.a's token */
    write_users(fmt("[user:x]\nname = X\nrole = operator\ntoken_hash = %s\n", h));
    expect_error(BOROUGHS, NULL, 0,
                 fmt("%s:22: [user:x] token_hash: the same token as user p.a (line 12)", users_path));
}

/* ------------------------------------------------------------------- --set */

/* [cache]: off by default (port 0), overridable, an IP address only. */
static void test_cache_section(void **state)
{
    (void)state;
    hub_config_t *cfg = load(BOROUGHS, NULL, 0);
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(cfg->redis_port, 0);
    assert_string_equal(cfg->redis_host, "127.0.0.1");
    assert_string_equal(cfg->redis_socket, "");
    assert_int_equal(cfg->cache_command_timeout_ms, 500);
    assert_int_equal(cfg->cache_stale_after_days, 30);
    assert_int_equal(cfg->cache_max_reply_bytes, 4194304);
    hub_config_free(cfg);

    const char *sets[] = { "cache.redis_port=6380", "cache.stale_after_days=7" };
    cfg = load("[cache]\nredis_host = 10.0.0.5\ncommand_timeout_ms = 250\n" BOROUGHS, sets, 2);
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(cfg->redis_port, 6380);
    assert_string_equal(cfg->redis_host, "10.0.0.5");
    assert_int_equal(cfg->cache_command_timeout_ms, 250);
    assert_int_equal(cfg->cache_stale_after_days, 7);
    hub_config_free(cfg);

    expect_error("[cache]\nredis_host = redis.local\n" BOROUGHS, NULL, 0,
                 fmt("%s:2: [cache] redis_host: \"redis.local\" is not an IP address", main_path));
    const char *bad[] = { "cache.redis_port=70000" };
    cfg = load(BOROUGHS, bad, 1);
    if (cfg != NULL) {
        hub_config_free(cfg);
        fail_msg("redis_port 70000 was accepted");
    }
}

static void test_set_overrides(void **state)
{
    (void)state;
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    const char *sets[] = {
        "routing.offer_timeout_ms=5000",
        "hub.log_level = debug",
        "console.allowed_origins=https://x.example,https://y.example",
        "borough:Oldham.neighbours=Manchester",
        "borough:Bury.provider=pennine",
        "hub.data_dir=rel/data",
        "routing.offer_timeout_ms=6000", /* later wins */
    };
    hub_config_t *cfg = load("[routing]\noffer_timeout_ms = 2000\n" BOROUGHS, sets, 7);
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(cfg->offer_timeout_ms, 6000);
    assert_string_equal(cfg->log_level, "debug");
    assert_int_equal(cfg->n_allowed_origins, 2);
    assert_string_equal(cfg->allowed_origins[1], "https://y.example");
    assert_int_equal(cfg->boroughs[2].n_neighbours, 1);
    assert_string_equal(cfg->boroughs[2].neighbours[0], "Manchester");
    assert_int_equal(cfg->n_boroughs, 4);
    assert_string_equal(cfg->boroughs[3].name, "Bury");
    assert_int_equal(cfg->n_providers, 2);
    /* relative paths in --set are relative to the current directory */
    assert_string_equal(cfg->data_dir, fmt("%s/rel/data", strcmp(cwd, "/") ? cwd : ""));
    hub_config_free(cfg);
}

static void test_set_errors(void **state)
{
    (void)state;
    const char *s1[] = { "routing.offer_timeout_ms=abc" };
    expect_error(BOROUGHS, s1, 1, "--set routing.offer_timeout_ms=abc: \"abc\" is not a whole number");
    const char *s2[] = { "routing.offer_timeout_ms=5" };
    expect_error(BOROUGHS, s2, 1, "--set routing.offer_timeout_ms=5: 5 is out of range (1000..600000)");
    const char *s3[] = { "offer_timeout_ms=5000" };
    expect_error(BOROUGHS, s3, 1, "--set offer_timeout_ms=5000: expected section.key=value");
    const char *s4[] = { "routing.offer_timeout_ms" };
    expect_error(BOROUGHS, s4, 1, "--set routing.offer_timeout_ms: expected section.key=value");
    const char *s5[] = { "routing.nokey=1" };
    expect_error(BOROUGHS, s5, 1, "--set routing.nokey=1: unknown key");
    const char *s6[] = { "nosuch.redis_port=6379" };
    expect_error(BOROUGHS, s6, 1, "--set nosuch.redis_port=6379: unknown section");
    const char *s7[] = { "hub.grpc_port=1", "routing.strategy=fifo" };
    expect_error(BOROUGHS, s7, 2,
                 "--set routing.strategy=fifo: \"fifo\" is not one of: ringall, leastrecent, fewestcalls, "
                 "rrmemory, linear, random");
    /* Cross-checks name the --set a value came from. */
    const char *s8[] = { "borough:Oldham.neighbours=Leeds" };
    expect_error(BOROUGHS, s8, 1,
                 "--set borough:Oldham.neighbours=Leeds: [borough:Oldham] neighbours: \"Leeds\" is not a "
                 "configured borough");
    const char *s9[] = { "borough:Bury.neighbours=Oldham" };
    expect_error(BOROUGHS, s9, 1, "--set borough:Bury.neighbours=Oldham: [borough:Bury]: provider is required");
    const char *s10[] = { "hub.users_file=/nonexistent/u.ini" };
    expect_error(BOROUGHS, s10, 1,
                 fmt("/nonexistent/u.ini: cannot open: No such file or directory (the users_file of %s)", main_path));
}

/* ----------------------------------------------------------------- tokens */

static void test_token_hash(void **state)
{
    (void)state;
    char h[80];
    hash_hex("", h); /* BLAKE2b-256 of the empty string (RFC 7693 parameters, no key) */
    assert_string_equal(h, "blake2b:0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    hash_hex("demo-operator-1", h); /* python3: hashlib.blake2b(b"demo-operator-1", digest_size=32) */
    assert_string_equal(h, "blake2b:235f7a6c9d3a6ed8903b9f71cac55585af729f8d22cd40de74b3056531d385df");

    hub_config_t *cfg = load(BOROUGHS, NULL, 0);
    assert_non_null(cfg);
    const hub_user_t *u = hub_config_find_token(cfg, "tok-pa", 6);
    assert_non_null(u);
    assert_string_equal(u->id, "p.a");
    assert_ptr_equal(hub_config_find_token(cfg, "tok-pb", 6), &cfg->users[2]);
    assert_ptr_equal(hub_config_find_token(cfg, "tok-op", 6), &cfg->users[0]);
    assert_null(hub_config_find_token(cfg, "tok-p", 5));
    assert_null(hub_config_find_token(cfg, "tok-pa", 5));
    assert_null(hub_config_find_token(cfg, "tok-pax", 7));
    assert_null(hub_config_find_token(cfg, "", 0));
    /* The length counts, not a NUL. */
    assert_null(hub_config_find_token(cfg, "tok-pa\0", 7));
    hub_config_free(cfg);
}

/* -------------------------------------------------------------------- paths */

static void test_relative_paths(void **state)
{
    (void)state;
    char sub[600], etc[700], udir[700];
    snprintf(sub, sizeof sub, "%s/srv", tmpdir);
    snprintf(etc, sizeof etc, "%s/srv/etc", tmpdir);
    snprintf(udir, sizeof udir, "%s/srv/people", tmpdir);
    mkdir(sub, 0700);
    mkdir(etc, 0700);
    mkdir(udir, 0700);
    char h[80];
    hash_hex("tok-rel", h);
    write_file(fmt("%s/u.ini", udir), fmt("[user:r]\nname = R\nrole = operator\ntoken_hash = %s\n", h));
    const char *p = fmt("%s/hub.ini", etc);
    write_file(p, "[hub]\n"
                  "users_file = ../people/./u.ini\n"
                  "static_dir = ../www/\n"
                  "data_dir = /var/lib/x/../mhtas//data\n" BOROUGHS);
    /* Loaded by a path with "." and ".." in it: the directory is made real. */
    const char *q = fmt("%s/srv/etc/../etc/./hub.ini", tmpdir);
    hub_config_t *cfg = hub_config_load(q, NULL, 0, err, sizeof err);
    assert_non_null(cfg);
    assert_string_equal(cfg->path, q);
    assert_string_equal(cfg->users_file, fmt("%s/srv/people/u.ini", tmpdir));
    assert_string_equal(cfg->static_dir, fmt("%s/srv/www", tmpdir));
    assert_string_equal(cfg->data_dir, "/var/lib/mhtas/data");
    assert_int_equal(cfg->n_users, 1);
    hub_config_free(cfg);
    unlink(p);
    unlink(fmt("%s/u.ini", udir));
    rmdir(udir);
    rmdir(etc);
    rmdir(sub);
}

/* ----------------------------------------------------- allocation failures */

static void test_failmalloc(void **state)
{
    (void)state;
    write_file(main_path, "[routing]\nstrategy = linear\n[console]\nallowed_origins = a,b\n  c\n" BOROUGHS);
    const char *sets[] = { "borough:Bury.provider=pennine", "hub.static_dir=www" };
    size_t base = hub_alloc_live();
    long n;
    for (n = 0; n < 100000; n++) {
        hub_alloc_fail_after(n);
        err[0] = '\0';
        hub_config_t *cfg = hub_config_load(main_path, sets, 2, err, sizeof err);
        hub_alloc_fail_after(-1);
        if (cfg != NULL) {
            hub_config_free(cfg);
            assert_int_equal(hub_alloc_live(), base);
            break;
        }
        if (strstr(err, "out of memory") == NULL)
            fail_msg("allocation %ld failed: the error was \"%s\"", n, err);
        if (hub_alloc_live() != base)
            fail_msg("allocation %ld failed: %zu blocks leaked", n, hub_alloc_live() - base);
    }
    assert_true(n > 50); /* the loop went through many allocations */
}

/* ---------------------------------------------------------------- reference */

static char *read_all(FILE *f)
{
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)len, f), (size_t)len);
    s[len] = '\0';
    return s;
}

static void test_reference(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    hub_config_write_reference(f);
    char *ref = read_all(f);
    fclose(f);
    assert_non_null(strstr(ref, "| section | key | default | meaning |\n| --- | --- | --- | --- |\n"));
    assert_non_null(strstr(ref, "| `[routing]` | `offer_timeout_ms` | `30000` | "));
    assert_non_null(strstr(ref, "| `[limits]` | `max_message_bytes` | `1048576` | "));
    assert_non_null(strstr(ref, "Whole number, 1..67108864."));
    assert_non_null(strstr(ref, "| `[borough:NAME]` | `provider` | (required) | "));
    assert_non_null(strstr(ref, "| `[user:ID]` | `capacity` | `3` | "));

    /* config/README.md carries the table verbatim (tests run from the
     * repository root; elsewhere this part is skipped). */
    FILE *md = fopen("config/README.md", "r");
    if (md != NULL) {
        char *doc = read_all(md);
        fclose(md);
        bool found = strstr(doc, ref) != NULL;
        free(doc);
        if (!found) {
            free(ref);
            fail_msg("config/README.md does not contain the current option reference: regenerate it with "
                     "bin/mhtas-hub --config-reference");
        }
    }
    free(ref);
}

/* ------------------------------------------------------------ demo config */

static void test_demo_config(void **state)
{
    (void)state;
    if (access("config/demo/mhtas.ini", R_OK) != 0) {
        skip();
        return;
    }
    hub_config_t *cfg = hub_config_load("config/demo/mhtas.ini", NULL, 0, err, sizeof err);
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(cfg->n_boroughs, 10);
    assert_int_equal(cfg->n_providers, 2);
    /* Neighbours are symmetric. */
    for (size_t i = 0; i < cfg->n_boroughs; i++) {
        const hub_borough_t *b = &cfg->boroughs[i];
        for (size_t j = 0; j < b->n_neighbours; j++) {
            const hub_borough_t *o = NULL;
            for (size_t k = 0; k < cfg->n_boroughs; k++)
                if (strcmp(cfg->boroughs[k].name, b->neighbours[j]) == 0)
                    o = &cfg->boroughs[k];
            assert_non_null(o);
            bool back = false;
            for (size_t k = 0; k < o->n_neighbours; k++)
                if (strcmp(o->neighbours[k], b->name) == 0)
                    back = true;
            if (!back)
                fail_msg("%s lists %s as a neighbour but not the other way round", b->name, o->name);
        }
    }
    /* The documented demo tokens log in as the documented users. */
    static const struct {
        const char *token, *id;
        Mhtas__V1__Role role;
    } demo[] = {
        { "demo-operator-1", "op.hughes", MHTAS__V1__ROLE__ROLE_OPERATOR },
        { "demo-operator-2", "op.ahmed", MHTAS__V1__ROLE__ROLE_OPERATOR },
        { "demo-dispatcher-1", "disp.walsh", MHTAS__V1__ROLE__ROLE_DISPATCHER },
        { "demo-supervisor-1", "sup.oconnor", MHTAS__V1__ROLE__ROLE_SUPERVISOR },
        { "demo-practitioner-1", "p.khan", MHTAS__V1__ROLE__ROLE_PRACTITIONER },
        { "demo-practitioner-2", "p.jones", MHTAS__V1__ROLE__ROLE_PRACTITIONER },
        { "demo-practitioner-3", "p.okafor", MHTAS__V1__ROLE__ROLE_PRACTITIONER },
        { "demo-practitioner-4", "p.taylor", MHTAS__V1__ROLE__ROLE_PRACTITIONER },
        { "demo-practitioner-5", "p.nowak", MHTAS__V1__ROLE__ROLE_PRACTITIONER },
        { "demo-practitioner-6", "p.brennan", MHTAS__V1__ROLE__ROLE_PRACTITIONER },
    };
    assert_int_equal(cfg->n_users, sizeof demo / sizeof demo[0]);
    for (size_t i = 0; i < sizeof demo / sizeof demo[0]; i++) {
        const hub_user_t *u = hub_config_find_token(cfg, demo[i].token, strlen(demo[i].token));
        if (u == NULL)
            fail_msg("demo token %s finds no user", demo[i].token);
        assert_string_equal(u->id, demo[i].id);
        assert_int_equal(u->role, demo[i].role);
    }
    hub_config_free(cfg);
}

/* -------------------------------------------------------------------- main */

static int group_setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mhtas-conf-XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    /* The directory's real path, so resolved paths compare equal. */
    char *real = realpath(tmpdir, NULL);
    if (real == NULL)
        return -1;
    snprintf(tmpdir, sizeof tmpdir, "%s", real);
    free(real);
    snprintf(main_path, sizeof main_path, "%s/mhtas.ini", tmpdir);
    snprintf(users_path, sizeof users_path, "%s/users.ini", tmpdir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(main_path);
    unlink(users_path);
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup_users),
        cmocka_unit_test_setup(test_every_key, setup_users),
        cmocka_unit_test_setup(test_bad_number, setup_users),
        cmocka_unit_test_setup(test_out_of_range, setup_users),
        cmocka_unit_test_setup(test_unknown_key, setup_users),
        cmocka_unit_test_setup(test_unknown_section, setup_users),
        cmocka_unit_test_setup(test_bad_enum, setup_users),
        cmocka_unit_test_setup(test_long_line, setup_users),
        cmocka_unit_test_setup(test_syntax_and_repeats, setup_users),
        cmocka_unit_test_setup(test_boroughs, setup_users),
        cmocka_unit_test_setup(test_missing_users_file, setup_users),
        cmocka_unit_test(test_missing_main_file),
        cmocka_unit_test(test_bad_role),
        cmocka_unit_test(test_user_provider),
        cmocka_unit_test(test_user_unknown_borough),
        cmocka_unit_test(test_duplicate_user),
        cmocka_unit_test(test_duplicate_token),
        cmocka_unit_test_setup(test_set_overrides, setup_users),
        cmocka_unit_test_setup(test_set_errors, setup_users),
        cmocka_unit_test_setup(test_token_hash, setup_users),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test_setup(test_failmalloc, setup_users),
        cmocka_unit_test(test_reference),
        cmocka_unit_test_setup(test_cache_section, setup_users),
        cmocka_unit_test(test_demo_config),
    };
    return cmocka_run_group_tests_name("conf", tests, group_setup, group_teardown);
}
