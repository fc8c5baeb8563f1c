/* practitioner.c -- the Hub methods of a practitioner's day (StartShift,
 * EndShift, SetAvailability) and the supervisor's board.
 *
 * Their effects on routing are indirect: a practitioner coming on shift or
 * resuming becomes eligible, and core__finish() routes the queue to them;
 * one leaving or pausing has their outstanding offers withdrawn first, so
 * that nothing waits on someone who is not there.
 */
#include <string.h>

#include "core/core_internal.h"

static int need_practitioner(core_t *c, int user, const char *method)
{
    core__ok(c);
    if (user < 0 || (size_t)user >= c->cfg.n_users)
        return core__fail(c, CORE_E_PERM, "unknown user");
    if (c->cfg.users[user].role != ROLE(PRACTITIONER))
        return core__fail(c, CORE_E_PERM, "%s is for practitioners", method);
    return CORE_OK;
}

static void unpause(pract_t *pr)
{
    pr->paused = false;
    hub_free(pr->pause_reason);
    pr->pause_reason = NULL;
}

/* The three methods answer with the same thing: the caller's status. */
#define RESPOND_STATUS(type, initfn)                                                               \
    do {                                                                                           \
        type *r_ = hub_malloc(sizeof(type));                                                       \
        if (r_ == NULL)                                                                            \
            return core__fail(c, CORE_E_NOMEM, "out of memory");                                   \
        initfn(r_);                                                                                \
        if ((r_->status = core__snap_status(c, user, now)) == NULL) {                              \
            core__pb_free(r_);                                                                     \
            return core__fail(c, CORE_E_NOMEM, "out of memory");                                   \
        }                                                                                          \
        *resp = r_;                                                                                \
        return CORE_OK;                                                                            \
    } while (0)

int core_start_shift(core_t *c, int64_t now, int user, const Mhtas__V1__StartShiftRequest *req,
                     Mhtas__V1__StartShiftResponse **resp)
{
    (void)req;
    *resp = NULL;
    int rc = need_practitioner(c, user, "StartShift");
    if (rc)
        return rc;
    pract_t *pr = &c->pr[user];
    /* Starting a shift twice (a client retrying) changes nothing. */
    if (!pr->on_shift) {
        pr->on_shift = true;
        pr->on_shift_since = now;
        pr->accepts = 0;
        pr->missed = 0;
        unpause(pr);
        core__finish(c, now);
    }
    RESPOND_STATUS(Mhtas__V1__StartShiftResponse, mhtas__v1__start_shift_response__init);
}

int core_end_shift(core_t *c, int64_t now, int user, const Mhtas__V1__EndShiftRequest *req,
                   Mhtas__V1__EndShiftResponse **resp)
{
    (void)req;
    *resp = NULL;
    int rc = need_practitioner(c, user, "EndShift");
    if (rc)
        return rc;
    pract_t *pr = &c->pr[user];
    if (pr->on_shift) {
        /* Nobody walks away from a live incident: it must be handed over
         * (a supervisor reassigns it) or closed first. */
        if (pr->n_held)
            return core__fail(c, CORE_E_STATE, "hand over or close your %u incident%s first", pr->n_held,
                              pr->n_held == 1 ? "" : "s");
        core__withdraw_offers_of(c, user, now);
        pr->on_shift = false;
        unpause(pr);
        core__finish(c, now);
    }
    RESPOND_STATUS(Mhtas__V1__EndShiftResponse, mhtas__v1__end_shift_response__init);
}

int core_set_availability(core_t *c, int64_t now, int user, const Mhtas__V1__SetAvailabilityRequest *req,
                          Mhtas__V1__SetAvailabilityResponse **resp)
{
    *resp = NULL;
    int rc = need_practitioner(c, user, "SetAvailability");
    if (rc)
        return rc;
    pract_t *pr = &c->pr[user];
    if (!pr->on_shift)
        return core__fail(c, CORE_E_STATE, "you are not on shift: start your shift first");
    if (req->paused) {
        if (req->reason == NULL || req->reason[0] == '\0')
            return core__fail(c, CORE_E_INVALID, "reason is required when pausing");
        if (strlen(req->reason) > c->cfg.max_text_bytes)
            return core__fail(c, CORE_E_INVALID, "reason is longer than %u bytes", c->cfg.max_text_bytes);
        char *reason = hub_strdup(req->reason);
        if (reason == NULL)
            return core__fail(c, CORE_E_NOMEM, "out of memory");
        /* A new reason while already paused changes no state the status
         * sync compares, but the journal must record it: send it anyway. */
        if (pr->paused && (pr->pause_reason == NULL || strcmp(pr->pause_reason, reason) != 0))
            pr->sent = false;
        hub_free(pr->pause_reason);
        pr->pause_reason = reason;
        pr->paused = true;
        core__withdraw_offers_of(c, user, now);
    } else {
        unpause(pr);
        pr->missed = 0;
    }
    core__finish(c, now);
    RESPOND_STATUS(Mhtas__V1__SetAvailabilityResponse, mhtas__v1__set_availability_response__init);
}

int core_get_board(core_t *c, int64_t now, int user, const Mhtas__V1__GetBoardRequest *req,
                   Mhtas__V1__GetBoardResponse **resp)
{
    (void)req;
    *resp = NULL;
    core__ok(c);
    if (user < 0 || (size_t)user >= c->cfg.n_users)
        return core__fail(c, CORE_E_PERM, "unknown user");
    if (c->cfg.users[user].role != ROLE(SUPERVISOR))
        return core__fail(c, CORE_E_PERM, "GetBoard is for supervisors");
    Mhtas__V1__GetBoardResponse *r = hub_malloc(sizeof(*r));
    if (r == NULL)
        return core__fail(c, CORE_E_NOMEM, "out of memory");
    mhtas__v1__get_board_response__init(r);
    if ((r->board = core__snap_board(c, now)) == NULL) {
        core__pb_free(r);
        return core__fail(c, CORE_E_NOMEM, "out of memory");
    }
    *resp = r;
    return CORE_OK;
}
