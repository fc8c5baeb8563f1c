/* conf_users.c -- the users file, and bearer-token hashing.
 *
 *   [user:p.khan]
 *   name = Priya Khan
 *   role = practitioner
 *   provider = gmmh
 *   skills = camhs
 *   boroughs = Manchester, Salford
 *   capacity = 3
 *   token_hash = blake2b:<64 lower-case hex digits>
 *
 * The file holds only hashes of the tokens, so reading it (a backup, a
 * support ticket) does not let anyone log in.
 */
#include "conf_internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util/alloc.h"

#define UOFF(field) offsetof(hub_user_t, field)

const conf_option_t conf__user_options[] = {
    { .section = "user:ID", .key = "name", .type = CONF_STRING, .flags = CONF_F_REQUIRED,
      .offset = UOFF(display_name), .doc = "Name shown to other users." },
    { .section = "user:ID", .key = "role", .type = CONF_ROLE, .flags = CONF_F_REQUIRED, .offset = UOFF(role),
      .doc = "What the user may do." },
    { .section = "user:ID", .key = "token_hash", .type = CONF_TOKEN_HASH, .flags = CONF_F_REQUIRED,
      .offset = UOFF(token_hash),
      .doc = "`blake2b:` and the 64 hex digits printed by `mhtas-hub --hash-token TOKEN`; every user's differs." },
    { .section = "user:ID", .key = "provider", .type = CONF_STRING, .flags = CONF_F_IDENT,
      .offset = UOFF(provider),
      .doc = "NHS provider (a configured borough's provider); required for practitioners, "
             "allowed for supervisors." },
    { .section = "user:ID", .key = "skills", .type = CONF_LIST, .flags = CONF_F_IDENT, .offset = UOFF(skills),
      .count_offset = UOFF(n_skills), .doc = "Skills, e.g. camhs, ld_autism (see [skills])." },
    { .section = "user:ID", .key = "boroughs", .type = CONF_LIST, .flags = CONF_F_IDENT,
      .offset = UOFF(boroughs), .count_offset = UOFF(n_boroughs),
      .doc = "Boroughs covered (each configured); none: every borough of the provider." },
    { .section = "user:ID", .key = "capacity", .type = CONF_UINT32, .min = 1, .max = 50, .def = "3",
      .offset = UOFF(capacity), .doc = "Incidents a practitioner handles at once." },
};
const size_t conf__n_user_options = sizeof conf__user_options / sizeof conf__user_options[0];
#define N_USER (sizeof conf__user_options / sizeof conf__user_options[0])
enum { U_NAME, U_ROLE, U_TOKEN_HASH, U_PROVIDER, U_SKILLS, U_BOROUGHS, U_CAPACITY }; /* rows above */

static const char user_prefix[] = "user:";
#define USER_PREFIX_LEN (sizeof user_prefix - 1)

typedef struct user_meta {
    int line;             /* the section header */
    int key_line[N_USER]; /* 0 = not set */
} user_meta_t;

typedef struct users_load {
    hub_config_t *cfg;
    const char *display;
    user_meta_t *meta;    /* parallel to cfg->users */
} users_load_t;

void conf__free_user(hub_user_t *u)
{
    hub_free(u->id);
    u->id = NULL;
    conf__clear_all(conf__user_options, N_USER, u);
}

static int find_user(const hub_config_t *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_users; i++)
        if (strcmp(cfg->users[i].id, id) == 0)
            return (int)i;
    return -1;
}

static int on_section(void *ctx, const char *section, int line, char *msg, size_t msglen)
{
    users_load_t *l = ctx;
    hub_config_t *cfg = l->cfg;
    if (strncmp(section, user_prefix, USER_PREFIX_LEN) != 0) {
        snprintf(msg, msglen, "unknown section (expected user:ID)");
        return -1;
    }
    const char *id = section + USER_PREFIX_LEN;
    if (!conf__is_name(id, true)) {
        snprintf(msg, msglen, "\"%s\" is not a valid user id (1 to %d letters, digits, '.', '_' or '-')", id,
                 CONF_MAX_NAME);
        return -1;
    }
    /* A repeated [user:ID] header is caught by conf_ini.c as a repeated
     * section; this would catch ids differing only by what inih strips. */
    if (find_user(cfg, id) >= 0) {
        snprintf(msg, msglen, "user \"%s\" appears twice", id);
        return -1;
    }
    hub_user_t *u = hub_realloc(cfg->users, (cfg->n_users + 1) * sizeof *u);
    if (u != NULL)
        cfg->users = u;
    user_meta_t *m = hub_realloc(l->meta, (cfg->n_users + 1) * sizeof *m);
    if (m != NULL)
        l->meta = m;
    char *copy = hub_strdup(id);
    if (u == NULL || m == NULL || copy == NULL) {
        hub_free(copy);
        snprintf(msg, msglen, "out of memory");
        return -1;
    }
    hub_user_t *nu = &u[cfg->n_users];
    memset(nu, 0, sizeof *nu);
    memset(&m[cfg->n_users], 0, sizeof m[0]);
    nu->id = copy;
    nu->index = (int)cfg->n_users;
    m[cfg->n_users].line = line;
    cfg->n_users++;
    for (size_t i = 0; i < N_USER; i++)
        if (conf__user_options[i].def != NULL &&
            conf__set(&conf__user_options[i], nu, conf__user_options[i].def, "/", false, msg, msglen) != 0)
            return -1;
    return 0;
}

static int on_key(void *ctx, const char *section, const char *key, const char *value, int line, bool cont,
                  char *msg, size_t msglen)
{
    users_load_t *l = ctx;
    if (section[0] == '\0') {
        snprintf(msg, msglen, "the key is outside any [user:ID] section");
        return -1;
    }
    int u = strncmp(section, user_prefix, USER_PREFIX_LEN) == 0 ? find_user(l->cfg, section + USER_PREFIX_LEN) : -1;
    if (u < 0) {
        snprintf(msg, msglen, "not a valid user section");
        return -1;
    }
    const conf_option_t *o = conf__find(conf__user_options, N_USER, "user:ID", key);
    if (o == NULL) {
        snprintf(msg, msglen, "unknown key (expected name, role, token_hash, provider, skills, boroughs or capacity)");
        return -1;
    }
    int *seen = &l->meta[u].key_line[o - conf__user_options];
    if (!cont && *seen > 0) {
        snprintf(msg, msglen, "set twice (first at line %d)", *seen);
        return -1;
    }
    if (conf__set(o, &l->cfg->users[u], value, "/", cont, msg, msglen) != 0)
        return -1;
    if (!cont)
        *seen = line;
    return 0;
}

static void list_text(char *const *arr, size_t n, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o < len; i++) {
        int k = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", arr[i]);
        if (k < 0)
            break;
        o += (size_t)k;
    }
}

/* Cross-checks one user against the boroughs, providers and earlier users. */
static int check_user(users_load_t *l, size_t i, char *err, size_t errlen)
{
    hub_config_t *cfg = l->cfg;
    hub_user_t *u = &cfg->users[i];
    user_meta_t *m = &l->meta[i];
    const char *d = l->display;
    char names[512];

    for (size_t k = 0; k < N_USER; k++)
        if (conf__user_options[k].flags & CONF_F_REQUIRED && m->key_line[k] == 0) {
            snprintf(err, errlen, "%s:%d: [user:%s]: %s is required", d, m->line, u->id, conf__user_options[k].key);
            return -1;
        }
    if (u->role == MHTAS__V1__ROLE__ROLE_PRACTITIONER && u->provider == NULL) {
        snprintf(err, errlen, "%s:%d: [user:%s]: provider is required for practitioners", d, m->line, u->id);
        return -1;
    }
    if (u->provider != NULL) {
        int pl = m->key_line[U_PROVIDER];
        if (u->role != MHTAS__V1__ROLE__ROLE_PRACTITIONER && u->role != MHTAS__V1__ROLE__ROLE_SUPERVISOR) {
            snprintf(err, errlen, "%s:%d: [user:%s] provider: only practitioners and supervisors have a provider",
                     d, pl, u->id);
            return -1;
        }
        if (conf__index(cfg->providers, cfg->n_providers, u->provider) < 0) {
            list_text(cfg->providers, cfg->n_providers, names, sizeof names);
            snprintf(err, errlen, "%s:%d: [user:%s] provider: \"%s\" is not a configured provider (%s)", d, pl,
                     u->id, u->provider, names);
            return -1;
        }
    }
    for (size_t j = 0; j < u->n_boroughs; j++) {
        bool found = false;
        for (size_t b = 0; b < cfg->n_boroughs; b++)
            if (strcmp(cfg->boroughs[b].name, u->boroughs[j]) == 0)
                found = true;
        if (!found) {
            snprintf(err, errlen, "%s:%d: [user:%s] boroughs: \"%s\" is not a configured borough", d,
                     m->key_line[U_BOROUGHS], u->id, u->boroughs[j]);
            return -1;
        }
    }
    for (size_t j = 0; j < i; j++)
        if (memcmp(cfg->users[j].token_hash, u->token_hash, HUB_TOKEN_HASH_LEN) == 0) {
            snprintf(err, errlen, "%s:%d: [user:%s] token_hash: the same token as user %s (line %d)", d,
                     m->key_line[U_TOKEN_HASH], u->id, cfg->users[j].id, l->meta[j].key_line[U_TOKEN_HASH]);
            return -1;
        }
    for (size_t j = 0; j < u->n_skills; j++)
        if (conf__add_unique(&cfg->skills, &cfg->n_skills, u->skills[j]) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    if (cfg->n_skills > CONF_MAX_SKILLS) {
        snprintf(err, errlen, "%s:%d: [user:%s] skills: more than %d different skills in the configuration", d,
                 m->key_line[U_SKILLS], u->id, CONF_MAX_SKILLS);
        return -1;
    }
    return 0;
}

int conf__load_users(hub_config_t *cfg, const char *path, char *err, size_t errlen)
{
    users_load_t l = { .cfg = cfg };
    char *display = conf__display(path);
    if (display == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l.display = display;
    int rc = conf__parse_ini(path, display, on_section, on_key, &l, err, errlen);
    if (rc == -2) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (the users_file of %s)", cfg->path);
    }
    for (size_t i = 0; rc == 0 && i < cfg->n_users; i++)
        rc = check_user(&l, i, err, errlen);
    hub_free(l.meta);
    hub_free(display);
    return rc == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ tokens */

/* Why a fast hash (BLAKE2b-256) and not a password hash (Argon2, scrypt):
 * bearer tokens are 32-byte random secrets made by the hub's own tool, not
 * words a person chose. With 256 bits of entropy nobody can guess one from
 * its hash however fast the hash is, so key stretching buys nothing, while it
 * would cost tens of milliseconds and megabytes on every connection (and
 * invite a denial of service). This is the practice for API tokens. The
 * comparison is constant time so response timing says nothing about how much
 * of a hash matched. Demo tokens are short words: demo only. */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void sodium_setup(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "mhtas: libsodium failed to initialise\n");
        abort();
    }
}

void hub_token_hash(const char *token, size_t len, uint8_t out[HUB_TOKEN_HASH_LEN])
{
    pthread_once(&sodium_once, sodium_setup);
    crypto_generichash(out, HUB_TOKEN_HASH_LEN, (const unsigned char *)token, len, NULL, 0);
}

const hub_user_t *hub_config_find_token(const hub_config_t *cfg, const char *token, size_t len)
{
    uint8_t h[HUB_TOKEN_HASH_LEN];
    hub_token_hash(token, len, h);
    const hub_user_t *found = NULL;
    /* Every user is compared, without stopping at a match. */
    for (size_t i = 0; i < cfg->n_users; i++)
        if (sodium_memcmp(cfg->users[i].token_hash, h, HUB_TOKEN_HASH_LEN) == 0)
            found = &cfg->users[i];
    sodium_memzero(h, sizeof h);
    return found;
}
