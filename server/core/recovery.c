/* recovery.c -- placeholder until the restore path lands (being written). */
#include "core.h"

int core_get_indicators(core_t *c, int64_t now, int user, const Mhtas__V1__GetIndicatorsRequest *req,
                        Mhtas__V1__GetIndicatorsResponse **resp)
{
    (void)c; (void)now; (void)user; (void)req;
    *resp = NULL;
    return CORE_E_STATE;
}
