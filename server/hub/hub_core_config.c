/* hub_core_config.c -- the configuration (names, as in the INI files) in the
 * core's form (indexes and bitmasks). One translation, used by the hub and
 * by the tools that rebuild the hub's state from its journal
 * (bin/mhtas-journal), so that both restore exactly the same core. */
#include <stdio.h>
#include <string.h>

#include "hub/hub_core_config.h"
#include "util/alloc.h"

static int index_of(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n && name; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

static int parse_strategy(const char *s, core_strategy_t *out)
{
    static const char *const names[] = { "ringall", "leastrecent", "fewestcalls", "rrmemory", "linear", "random" };
    for (int i = 0; i < 6; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (core_strategy_t)i;
            return 0;
        }
    return -1;
}

/* Translates the configuration into the core's index-and-bitmask form. */
int hub_core_config_build(const hub_config_t *cfg, uint64_t rng_seed, hub_core_config_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    core_config_t *c = &out->core;
    if (cfg->n_boroughs > CORE_MAX_BOROUGHS || cfg->n_skills > CORE_MAX_SKILLS) {
        snprintf(err, errlen, "at most %d boroughs and %d skills are supported", CORE_MAX_BOROUGHS,
                 CORE_MAX_SKILLS);
        return -1;
    }
    out->boroughs = hub_calloc(cfg->n_boroughs ? cfg->n_boroughs : 1, sizeof *out->boroughs);
    out->users = hub_calloc(cfg->n_users ? cfg->n_users : 1, sizeof *out->users);
    if (out->boroughs == NULL || out->users == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char **bnames = hub_calloc(cfg->n_boroughs ? cfg->n_boroughs : 1, sizeof *bnames);
    if (bnames == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_boroughs; i++)
        bnames[i] = cfg->boroughs[i].name;
    for (size_t i = 0; i < cfg->n_boroughs; i++) {
        const hub_borough_t *b = &cfg->boroughs[i];
        core_borough_t *cb = &out->boroughs[i];
        cb->name = b->name;
        cb->provider = index_of(cfg->providers, cfg->n_providers, b->provider);
        for (size_t j = 0; j < b->n_neighbours; j++) {
            int k = index_of(bnames, cfg->n_boroughs, b->neighbours[j]);
            if (k >= 0)
                cb->neighbours |= 1ull << k;
        }
    }
    for (size_t i = 0; i < cfg->n_users; i++) {
        const hub_user_t *u = &cfg->users[i];
        core_user_t *cu = &out->users[i];
        cu->id = u->id;
        cu->display_name = u->display_name;
        cu->role = u->role;
        cu->provider = index_of(cfg->providers, cfg->n_providers, u->provider);
        for (size_t j = 0; j < u->n_skills; j++) {
            int k = index_of(cfg->skills, cfg->n_skills, u->skills[j]);
            if (k >= 0)
                cu->skills |= 1u << k;
        }
        for (size_t j = 0; j < u->n_boroughs; j++) {
            int k = index_of(bnames, cfg->n_boroughs, u->boroughs[j]);
            if (k >= 0)
                cu->boroughs |= 1ull << k;
        }
        cu->capacity = u->capacity;
    }
    hub_free(bnames);

    c->providers = (const char *const *)cfg->providers;
    c->n_providers = cfg->n_providers;
    c->boroughs = out->boroughs;
    c->n_boroughs = cfg->n_boroughs;
    c->skills = (const char *const *)cfg->skills;
    c->n_skills = cfg->n_skills;
    c->users = out->users;
    c->n_users = cfg->n_users;
    int k = index_of(cfg->skills, cfg->n_skills, cfg->skill_under_18);
    if (k >= 0)
        c->flag_skills[MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_UNDER_18] = 1u << k;
    k = index_of(cfg->skills, cfg->n_skills, cfg->skill_ld_autism);
    if (k >= 0)
        c->flag_skills[MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_LD_AUTISM] = 1u << k;
    if (parse_strategy(cfg->strategy, &c->strategy) != 0) {
        snprintf(err, errlen, "unknown routing strategy \"%s\"", cfg->strategy);
        return -1;
    }
    c->offer_timeout_ms = cfg->offer_timeout_ms;
    c->auto_pause_after = cfg->auto_pause_after;
    c->wrap_up_ms = cfg->wrap_up_ms;
    c->disconnect_grace_ms = cfg->disconnect_grace_ms;
    c->widen_neighbour_ms = cfg->widen_neighbour_ms;
    c->widen_anyone_ms = cfg->widen_anyone_ms;
    for (int p = 0; p < 5; p++)
        c->sla_ms[p] = cfg->sla_ms[p];
    c->sla_warn_percent = cfg->sla_warn_percent;
    c->max_open_incidents = cfg->max_open_incidents;
    c->max_messages_per_incident = cfg->max_messages_per_incident;
    c->max_text_bytes = cfg->max_text_bytes;
    c->rng_seed = rng_seed;
    return 0;
}

void hub_core_config_free(hub_core_config_t *c)
{
    hub_free(c->boroughs);
    hub_free(c->users);
    memset(c, 0, sizeof *c);
}
