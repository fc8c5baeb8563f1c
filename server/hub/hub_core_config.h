/* hub_core_config.h -- the hub's configuration translated into the core's
 * form (core_config_t: indexes and bitmasks instead of names). */
#ifndef MHTAS_HUB_CORE_CONFIG_H
#define MHTAS_HUB_CORE_CONFIG_H

#include <stdint.h>

#include "conf/conf.h"
#include "core/core.h"

typedef struct hub_core_config {
    core_config_t core;       /* points into boroughs, users and the hub_config_t */
    core_borough_t *boroughs;
    core_user_t *users;
} hub_core_config_t;

/* Fills *out from cfg (which must outlive it); rng_seed seeds the core's
 * random strategy. 0, or -1 with err set; either way release *out with
 * hub_core_config_free. */
int hub_core_config_build(const hub_config_t *cfg, uint64_t rng_seed, hub_core_config_t *out, char *err,
                          size_t errlen);
void hub_core_config_free(hub_core_config_t *c);

#endif
