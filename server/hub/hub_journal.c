/* hub_journal.c -- persist, then acknowledge.
 *
 * Every event that changes state (an incident update, a chat message, a
 * practitioner's status) is appended to the journal as a JournalRecord as it
 * is emitted. Once per loop turn a uv_prepare hook commits the turn's records:
 * the journal writes and fdatasyncs them on a worker thread and reports back
 * here. A reply to a state-changing request is held until the journal has
 * synced every record appended before the reply was made -- its own records,
 * and any earlier one it depends on. So "acknowledged" means "on disk".
 *
 * Events are fanned out to subscribers before they are durable, so that the
 * live conversation is not slowed by the disk. A client may therefore see an
 * event that a crash then loses. To make that safe, each start jumps the
 * sequence numbers by HUB_SEQ_RESTART_GAP past the last durable one: a
 * client resuming from a number in the gap saw a lost tail, and is told to
 * reload (NOTICE_KIND_RESUME_GAP) instead of being given a stream with holes.
 *
 * If a write or sync fails, or the disk is full, the journal is "down": the
 * replies waiting on it fail with UNAVAILABLE, new state changes are refused
 * with UNAVAILABLE, nothing more is appended (the journal on disk stays an
 * exact prefix of what happened), and reads, the board and routing of what
 * is recorded go on. A restart replays what is on disk.
 *
 * Snapshots: after replay at start-up and at a clean shutdown the whole
 * state is written as one JournalSnapshot, so a restart replays only the
 * records since the last start. (A periodic snapshot off the loop thread is
 * future work: taking one blocks for a few syncs.) */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hub_internal.h"
#include "journal/journal.h"
#include "log/log.h"
#include "util/alloc.h"

#define HUB_SEQ_RESTART_GAP (1ull << 20)

/* ---------------------------------------------------------------- helpers */

bool hub_journal__changes_state(const hub_method_t *m)
{
    /* SearchPersons and GetCareSummary write audit records: they "change
     * state" in that they need the journal. */
    static const char *const reads[] = { "WhoAmI", "GetIncident", "ListIncidents", "GetBoard",
                                         "GetIndicators", "ListAudit", "Subscribe" };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        if (strcmp(m->name, reads[i]) == 0)
            return false;
    return true;
}

static bool journalled(const Mhtas__V1__Event *e)
{
    /* Offers, queue positions and boards are derived from these and are
     * recomputed after a restart; notices carry the only record of a few
     * flags (a service level breached, nobody on shift). */
    return e->kind_case == MHTAS__V1__EVENT__KIND_INCIDENT || e->kind_case == MHTAS__V1__EVENT__KIND_MESSAGE ||
           e->kind_case == MHTAS__V1__EVENT__KIND_STATUS || e->kind_case == MHTAS__V1__EVENT__KIND_NOTICE ||
           e->kind_case == MHTAS__V1__EVENT__KIND_AUDIT; /* the care-record audit trail */
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -1;
            buf[i] = c;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- appends */

void hub_journal__record(hub_t *hub, const Mhtas__V1__Event *ev, const core_audience_t *aud)
{
    if (!journalled(ev))
        return;
    Mhtas__V1__JournalRecord rec = MHTAS__V1__JOURNAL_RECORD__INIT;
    char *users[CORE_AUDIENCE_MAX_USERS];
    rec.event = (Mhtas__V1__Event *)ev;
    rec.police = aud->police;
    rec.supervisors = aud->supervisors;
    for (int i = 0; i < aud->n_users; i++)
        if (aud->users[i] >= 0 && (size_t)aud->users[i] < hub->cfg->n_users)
            users[rec.n_users++] = hub->cfg->users[aud->users[i]].id;
    rec.users = users;

    uint8_t stackbuf[4096];
    size_t len = protobuf_c_message_get_packed_size(&rec.base);
    uint8_t *buf = len <= sizeof stackbuf ? stackbuf : hub_malloc(len);
    int rc = JOURNAL_E_NOMEM;
    uint64_t ticket = 0;
    if (buf) {
        protobuf_c_message_pack(&rec.base, buf);
        rc = journal_append(hub->journal, buf, len, &ticket);
        if (buf != stackbuf)
            hub_free(buf);
    }
    if (rc == 0) {
        hub->last_ticket = ticket;
        if (ev->kind_case == MHTAS__V1__EVENT__KIND_AUDIT)
            hub->audits_appended++;
        return;
    }
    /* The change happened in memory but cannot be recorded: stop accepting
     * changes, so that what is acknowledged stays what is on disk. */
    hub->journal_down = true;
    hub->journal_down_why = "the hub cannot record changes right now (journal append failed); "
                            "reads still work";
    hub_log(HUB_LOG_ERROR, "journal", "event=append_failed seq=%llu error=\"%s\"",
            (unsigned long long)ev->seq, journal_strerror(rc));
}

/* ------------------------------------------------------------ held replies */

static void reply_pending(hub_call_t *c, int status, const char *message)
{
    if (c->care && status == HUB_GRPC_OK && !c->cancelled) {
        hub_care__durable(c); /* its records are on disk: it goes on */
        return;
    }
    if (!c->cancelled) {
        if (status == HUB_GRPC_OK && c->resp &&
            c->resp->descriptor == &mhtas__v1__agree_outcome_response__descriptor) {
            /* The reply says what the client may rely on. */
            Mhtas__V1__AgreeOutcomeResponse *r = (Mhtas__V1__AgreeOutcomeResponse *)c->resp;
            r->durable = 1;
            if (r->incident && r->incident->outcome)
                r->incident->outcome->durable = 1;
        }
        hub_reply_t reply = { .status = status,
                              .message = message,
                              .msg = status == HUB_GRPC_OK ? c->resp : NULL };
        c->cb(c->ctx, &reply);
    }
    if (c->resp)
        protobuf_c_message_free_unpacked(c->resp, hub_pb_allocator());
    if (c->care)
        hub_care__free(c);
    hub_free(c);
}

int hub_journal__enqueue(hub_t *hub, hub_call_t *c)
{
    if (hub->journal == NULL || hub->last_ticket == 0 || hub->last_ticket <= journal_durable(hub->journal))
        return 0;
    c->ticket = hub->last_ticket;
    c->next = NULL;
    if (hub->pending_tail)
        hub->pending_tail->next = c;
    else
        hub->pending_head = c;
    hub->pending_tail = c;
    return 1;
}

int hub_journal__defer(hub_t *hub, const hub_method_t *m, ProtobufCMessage *resp, hub_reply_cb cb,
                       void *ctx, hub_call_t **out)
{
    *out = NULL;
    if (hub->last_ticket == 0 || hub->last_ticket <= journal_durable(hub->journal))
        return 0; /* everything it depends on is already on disk */
    hub_call_t *c = hub_calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    c->hub = hub;
    c->method = m;
    c->cb = cb;
    c->ctx = ctx;
    c->resp = resp;
    hub_journal__enqueue(hub, c); /* queued: something is pending (checked above) */
    *out = c;
    return 1;
}

/* Replies to every held call covered by `durable`, in order; with a failure,
 * fails every held call. */
static void release(hub_t *hub, uint64_t durable, int status, const char *message)
{
    while (hub->pending_head && (status != HUB_GRPC_OK || hub->pending_head->ticket <= durable)) {
        hub_call_t *c = hub->pending_head;
        hub->pending_head = c->next;
        if (hub->pending_head == NULL)
            hub->pending_tail = NULL;
        reply_pending(c, status, message);
    }
}

static void snapshot_and_close(hub_t *hub);

static void commit_done(void *ctx, const journal_result_t *r)
{
    hub_t *hub = ctx;
    if (r->status == 0) {
        release(hub, r->durable, HUB_GRPC_OK, NULL);
    } else {
        hub->journal_down = true;
        hub->journal_down_why = r->status == JOURNAL_E_NOSPACE
                                    ? "the hub's disk is full: changes cannot be recorded; reads still work"
                                    : "the hub cannot record changes (journal write failed); reads still work";
        hub_log(HUB_LOG_ERROR, "journal",
                "event=commit_failed first=%llu last=%llu error=\"%s\" action=refusing_state_changes",
                (unsigned long long)r->first, (unsigned long long)r->last, journal_strerror(r->status));
        release(hub, 0, HUB_GRPC_UNAVAILABLE, hub->journal_down_why);
    }
    if (hub->closing && !journal_in_flight(hub->journal))
        snapshot_and_close(hub);
    hub__settle(hub);
}

static void prepare_cb(uv_prepare_t *p)
{
    hub_t *hub = p->data;
    if (hub->journal && !hub->journal_down && hub->last_ticket >= journal_next_ticket(hub->journal) - 1 &&
        hub->last_ticket > journal_durable(hub->journal))
        journal_commit(hub->journal, hub->loop, commit_done, hub);
}

/* ----------------------------------------------------------------- replay */

static int replay_snapshot(void *ctx, uint64_t up_to, const uint8_t *payload, size_t len)
{
    hub_t *hub = ctx;
    (void)up_to;
    Mhtas__V1__JournalSnapshot *snap = mhtas__v1__journal_snapshot__unpack(hub_pb_allocator(), len, payload);
    if (snap == NULL) {
        hub_log(HUB_LOG_ERROR, "journal", "event=bad_snapshot reason=\"not a JournalSnapshot\"");
        return -1;
    }
    int rc = core_restore_snapshot(hub->core, snap);
    if (rc != 0)
        hub_log(HUB_LOG_ERROR, "journal", "event=bad_snapshot reason=\"%s\"", core_last_error(hub->core));
    else if (snap->last_seq > hub->restored_seq)
        hub->restored_seq = snap->last_seq;
    mhtas__v1__journal_snapshot__free_unpacked(snap, hub_pb_allocator());
    return rc;
}

static int replay_record(void *ctx, uint64_t ticket, const uint8_t *payload, size_t len)
{
    hub_t *hub = ctx;
    Mhtas__V1__JournalRecord *rec = mhtas__v1__journal_record__unpack(hub_pb_allocator(), len, payload);
    if (rec == NULL || rec->event == NULL) {
        hub_log(HUB_LOG_ERROR, "journal", "event=bad_record ticket=%llu reason=\"not a JournalRecord\"",
                (unsigned long long)ticket);
        if (rec)
            mhtas__v1__journal_record__free_unpacked(rec, hub_pb_allocator());
        return -1;
    }
    int rc = core_restore_event(hub->core, rec->event);
    if (rc != 0) {
        hub_log(HUB_LOG_ERROR, "journal", "event=bad_record ticket=%llu reason=\"%s\"",
                (unsigned long long)ticket, core_last_error(hub->core));
    } else {
        if (rec->event->seq > hub->restored_seq)
            hub->restored_seq = rec->event->seq;
        /* Held for resume, with its audience mapped back to user numbers. */
        core_audience_t aud = { .police = rec->police, .supervisors = rec->supervisors };
        for (size_t i = 0; i < rec->n_users && aud.n_users < CORE_AUDIENCE_MAX_USERS; i++) {
            int u = core_user_index(hub->core, rec->users[i]);
            if (u >= 0)
                aud.users[aud.n_users++] = u;
        }
        size_t elen = protobuf_c_message_get_packed_size(&rec->event->base);
        uint8_t *pb = hub_malloc(elen);
        if (pb) {
            protobuf_c_message_pack(&rec->event->base, pb);
            hub__hold_event(hub, rec->event, pb, elen, &aud);
        }
    }
    mhtas__v1__journal_record__free_unpacked(rec, hub_pb_allocator());
    return rc;
}

/* Writes the whole state as a snapshot covering every durable record. Runs
 * at start-up and shutdown only, when blocking the loop does no harm. */
static void write_snapshot(hub_t *hub)
{
    Mhtas__V1__JournalSnapshot *snap = NULL;
    if (journal_durable(hub->journal) == 0)
        return; /* an empty journal: nothing to stand for */
    if (core_build_snapshot(hub->core, hub__now_ms(hub), &snap) != 0 || snap == NULL) {
        hub_log(HUB_LOG_WARN, "journal", "event=snapshot_skipped reason=\"%s\"", core_last_error(hub->core));
        return;
    }
    size_t len = protobuf_c_message_get_packed_size(&snap->base);
    uint8_t *buf = hub_malloc(len);
    if (buf) {
        protobuf_c_message_pack(&snap->base, buf);
        uint64_t t0 = uv_hrtime();
        int rc = journal_snapshot(hub->journal, buf, len, journal_durable(hub->journal));
        hub_log(rc ? HUB_LOG_WARN : HUB_LOG_INFO, "journal",
                "event=snapshot bytes=%zu incidents=%zu up_to=%llu ms=%.1f status=\"%s\"", len,
                snap->n_incidents, (unsigned long long)journal_durable(hub->journal),
                (double)(uv_hrtime() - t0) / 1e6, rc ? journal_strerror(rc) : "ok");
        hub_free(buf);
    }
    protobuf_c_message_free_unpacked(&snap->base, hub_pb_allocator());
}

static void sync_done(void *ctx, const journal_result_t *r)
{
    commit_done(ctx, r);
}

int hub_journal__open(hub_t *hub, char *err, size_t errlen)
{
    const char *dir = hub->cfg->data_dir;
    if (mkdir_p(dir) != 0) {
        snprintf(err, errlen, "cannot create the journal directory %s: %s", dir, strerror(errno));
        return -1;
    }
    uint64_t t0 = uv_hrtime();
    journal_replay_t replay = { .snapshot = replay_snapshot, .record = replay_record, .ctx = hub };
    hub->restoring = true;
    journal_opts_t opts = { .segment_bytes = hub->cfg->journal_segment_bytes };
    int rc = journal_open(&hub->journal, dir, journal_io_posix(), &opts, &replay, err, errlen);
    hub->restoring = false;
    if (rc != 0)
        return -1;
    uv_prepare_init(hub->loop, &hub->prepare);
    hub->prepare.data = hub;
    uv_prepare_start(&hub->prepare, prepare_cb);
    hub->handles_open++;

    /* Numbers a crashed hub may have shown but not made durable are never
     * reused (see the comment at the top). */
    core_skip_seq(hub->core, hub->restored_seq + HUB_SEQ_RESTART_GAP);
    core_restore_finish(hub->core, hub__now_ms(hub));
    hub->last_ticket = journal_next_ticket(hub->journal) - 1;
    journal_commit_sync(hub->journal, sync_done, hub);
    write_snapshot(hub);
    core_stats_t cs;
    core_get_stats(hub->core, hub__now_ms(hub), &cs);
    hub_log(HUB_LOG_INFO, "journal",
            "event=recovered dir=%s last_seq=%llu open_incidents=%u queued=%u ms=%.1f", dir,
            (unsigned long long)hub->restored_seq,
            cs.incidents_by_state[2] + cs.incidents_by_state[3] + cs.incidents_by_state[4] +
                cs.incidents_by_state[5] + cs.incidents_by_state[6],
            cs.queue_depth, (double)(uv_hrtime() - t0) / 1e6);
    return 0;
}

static void snapshot_and_close(hub_t *hub)
{
    if (hub->journal == NULL)
        return;
    if (!hub->journal_down) {
        journal_commit_sync(hub->journal, sync_done, hub);
        if (!hub->journal_down)
            write_snapshot(hub);
    }
    /* Anything still held could not be made durable. */
    release(hub, 0, HUB_GRPC_UNAVAILABLE, "the hub is shutting down");
    journal_close(hub->journal);
    hub->journal = NULL;
}

void hub_journal__close(hub_t *hub)
{
    if (hub->closing)
        return;
    hub->closing = true;
    if (hub->journal == NULL)
        return;
    uv_prepare_stop(&hub->prepare);
    uv_close((uv_handle_t *)&hub->prepare, NULL);
    hub->handles_open--;
    if (!journal_in_flight(hub->journal))
        snapshot_and_close(hub);
    /* else commit_done finishes the job when the batch reports */
}

void hub_journal__free(hub_t *hub)
{
    if (hub->journal) {
        release(hub, 0, HUB_GRPC_UNAVAILABLE, "the hub is shutting down");
        journal_close(hub->journal);
        hub->journal = NULL;
    }
}
