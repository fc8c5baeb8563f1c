/* core_seq.c -- see core_skip_seq in core.h. */
#include "core_internal.h"

void core_skip_seq(core_t *core, uint64_t next)
{
    if (next > 0 && core->last_seq < next - 1)
        core->last_seq = next - 1;
}
