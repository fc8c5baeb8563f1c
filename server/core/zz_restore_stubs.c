/* TEMPORARY weak stand-ins while the restore path is being written; the
 * real definitions (recovery.c) override them. Deleted once they land. */
#include "core.h"

__attribute__((weak)) int core_restore_snapshot(core_t *c, const Mhtas__V1__JournalSnapshot *s)
{ (void)c; (void)s; return CORE_E_STATE; }
__attribute__((weak)) int core_restore_event(core_t *c, const Mhtas__V1__Event *e)
{ (void)c; (void)e; return CORE_E_STATE; }
__attribute__((weak)) void core_restore_finish(core_t *c, int64_t now)
{ (void)c; (void)now; }
__attribute__((weak)) int core_build_snapshot(core_t *c, int64_t now, Mhtas__V1__JournalSnapshot **out)
{ (void)c; (void)now; *out = NULL; return CORE_E_STATE; }
