/* journal.h -- the hub's durable journal: append-only segment files with
 * group commit, replay on start, and snapshots.
 *
 * Life of a state change (house style point 20, "persist, then acknowledge"):
 *
 *   loop turn:   journal_append(j, event bytes, &ticket)   -- copied, framed
 *                ... more appends ...
 *   end of turn: journal_commit(j, loop, done_cb, ctx)      -- hands the batch
 *                to a libuv threadpool worker: pwrite all records, one
 *                fdatasync, then done_cb on the loop thread
 *   done_cb:     result.status == 0: every ticket <= result.durable is on
 *                disk; reply to the clients waiting on them.
 *                result.status < 0: tickets result.first..result.last are
 *                NOT acknowledged; fail their requests (UNAVAILABLE).
 *
 * Only one batch is in flight; appends made meanwhile form the next batch,
 * which starts as soon as the previous one reports. Batches therefore grow
 * under load, and the fsync cost is shared (group commit).
 *
 * Every ticket journal_append hands out is reported by exactly one done_cb
 * (success or failure), except those still unsent when journal_close runs.
 *
 * Failures:
 *   - a failed write or sync puts the journal in the FAILED state for good:
 *     the batch and everything after it fail with JOURNAL_E_FAILED, it is
 *     logged at error level, and the sync is never retried (after a failed
 *     fsync the kernel may have dropped the data while a retry would report
 *     success). Restart the hub; replay decides what is on disk.
 *   - a full disk (ENOSPC on write) fails the batch with JOURNAL_E_NOSPACE.
 *     The journal then truncates the segment back to the last durable offset
 *     and syncs that; if both succeed the journal stays usable and later
 *     batches are tried again (they succeed once space returns), otherwise
 *     it becomes FAILED. Reads are not the journal's business, so they keep
 *     working either way.
 *   - a failed ticket is "not acknowledged", which is not quite "absent":
 *     after a FAILED-state error the record may or may not be on disk after
 *     a restart (the write may have landed). After JOURNAL_E_NOSPACE with a
 *     clean truncation it is definitely absent. Idempotency keys in the
 *     payload let clients retry safely either way.
 *
 * Replay (journal_open): the newest snapshot, then every record after it in
 * order. A torn tail of the LAST segment (short or zeroed) is trimmed and
 * logged with file, offset and bytes dropped; anything else bad (a CRC
 * mismatch followed by valid data, any damage in a sealed segment, a missing
 * segment, tickets out of order) stops the open with the file and offset in
 * the error. Nothing is ever skipped silently.
 *
 * Threads: all functions are called on the loop thread. The worker thread
 * touches only the segment file and the batch it was handed.
 *
 * Known limit: the torn-tail rule assumes a crash loses a suffix of the last
 * unsynced write (shortened or zero-filled). A device that persists the
 * pages of one unsynced write out of order could leave good records after a
 * hole; that is refused as corruption (never silently trimmed), so the
 * operator must truncate the named segment by hand after checking.
 */
#ifndef MHTAS_JOURNAL_H
#define MHTAS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "journal/journal_io.h"

typedef struct journal journal_t;

enum {
    JOURNAL_OK = 0,
    JOURNAL_E_FAILED = -1,  /* a write or sync failed; permanent until restart */
    JOURNAL_E_NOSPACE = -2, /* disk full; the batch was not written */
    JOURNAL_E_TOOBIG = -3,  /* payload longer than opts.max_record */
    JOURNAL_E_NOMEM = -4,
    JOURNAL_E_BUSY = -5,    /* a batch is in flight (journal_snapshot, _close) */
    JOURNAL_E_LOCKED = -6,  /* directory in use by another journal */
    JOURNAL_E_CORRUPT = -7, /* replay found damage it must not skip */
    JOURNAL_E_IO = -8,      /* an I/O error while opening */
    JOURNAL_E_INVAL = -9,
    JOURNAL_E_REPLAY = -10, /* a replay callback refused a record */
};

/* Static text for a JOURNAL_* code. */
const char *journal_strerror(int code);

typedef struct journal_opts {
    /* A segment is sealed and a new one started before a batch once the
     * current one holds at least this many bytes (0: 64 MiB). A segment can
     * exceed it by one batch: batches are never split across files, so a
     * sealed segment is always completely synced. */
    uint64_t segment_bytes;
    /* Largest payload accepted (0 or more than JOURNAL_MAX_RECORD: 1 MiB). */
    uint32_t max_record;
} journal_opts_t;

/* Replay callbacks, called on the caller's thread during journal_open.
 * Buffers are borrowed for the call. Return 0 to go on, non-zero to abort
 * the open with JOURNAL_E_REPLAY. Either may be NULL. */
typedef struct journal_replay {
    int (*snapshot)(void *ctx, uint64_t up_to_ticket, const uint8_t *payload, size_t len);
    int (*record)(void *ctx, uint64_t ticket, const uint8_t *payload, size_t len);
    void *ctx;
} journal_replay_t;

typedef struct journal_result {
    int status;          /* 0 or a negative JOURNAL_E_* */
    uint64_t first;      /* tickets of this batch (first > last: empty) */
    uint64_t last;
    uint64_t durable;    /* every ticket <= durable is on disk */
    const char *message; /* static, for the client: NULL when status == 0 */
} journal_result_t;

/* Fires on the loop thread after the batch's fdatasync returned (or the
 * batch failed). r is borrowed for the call. The journal may be used from
 * inside it (append, commit, snapshot, even close). */
typedef void (*journal_done_cb)(void *ctx, const journal_result_t *r);

/* Opens (creating files in) the existing directory dir, locks it, replays
 * it and prepares to append. io is borrowed and must outlive the journal
 * (journal_io_posix() in production). opts may be NULL for defaults.
 * On failure returns a negative code, sets *out = NULL and writes a
 * one-line explanation to err (errlen bytes, may be 0), e.g.
 *   "journal directory /var/lib/mhtas is in use by another process"
 *   "journal: /var/lib/mhtas/seg-00000000000000000001.mj offset 4096: CRC
 *    mismatch followed by valid data"
 */
int journal_open(journal_t **out, const char *dir, const journal_io_t *io, const journal_opts_t *opts,
                 const journal_replay_t *replay, char *err, size_t errlen);

/* Copies payload (len bytes, borrowed) into the current batch and sets
 * *ticket to its record number (strictly increasing). Nothing is durable
 * until a done_cb reports it. Returns 0, JOURNAL_E_FAILED (journal failed),
 * JOURNAL_E_TOOBIG or JOURNAL_E_NOMEM; it fails fast, without I/O. */
int journal_append(journal_t *j, const void *payload, size_t len, uint64_t *ticket);

/* Sends the current batch to the worker thread. Call once per loop turn
 * (e.g. from a uv_prepare_t) after the turn's appends. If a batch is already
 * in flight, the current one is sent when that one reports, with the
 * done_cb/ctx of the latest call. With nothing to send it does nothing.
 * done_cb fires later, never from inside this call. Returns 0, or
 * JOURNAL_E_FAILED if the journal has failed (then the unsent records are
 * reported failed through done_cb on the next loop iteration). */
int journal_commit(journal_t *j, uv_loop_t *loop, journal_done_cb done_cb, void *ctx);

/* The same batch work done synchronously on the calling thread, then
 * done_cb before returning. For tests and tools only; never mix with an
 * in-flight journal_commit (returns JOURNAL_E_BUSY). Returns the batch
 * status (0 when there was nothing to do). */
int journal_commit_sync(journal_t *j, journal_done_cb done_cb, void *ctx);

/* Writes a snapshot that stands for every record up to and including
 * up_to_ticket (which must be durable): new file, fsync, rename into place,
 * fsync the directory, then delete older snapshots and segments it covers
 * wholly. payload is borrowed. Blocks the calling thread for a few syncs;
 * call it from a done_cb, when no batch is in flight (else JOURNAL_E_BUSY).
 * It also asks for the next batch to start a new segment, so the records it
 * covers can be deleted by the next snapshot. A failed write leaves the
 * journal usable (JOURNAL_E_IO or _NOSPACE); a failed sync or rename makes
 * it FAILED, as for records. */
int journal_snapshot(journal_t *j, const void *payload, size_t len, uint64_t up_to_ticket);

/* Highest ticket known durable; the next ticket journal_append will give. */
uint64_t journal_durable(const journal_t *j);
uint64_t journal_next_ticket(const journal_t *j);
/* Non-zero while a batch is with the worker. */
int journal_in_flight(const journal_t *j);
/* Non-zero once the journal has failed for good. */
int journal_failed(const journal_t *j);

/* Closes files, releases the directory lock and frees j. Records appended
 * but not yet committed are dropped unreported. A batch must not be in
 * flight: run the loop until its done_cb has fired (returns JOURNAL_E_BUSY
 * and does nothing otherwise). NULL is a no-op. */
int journal_close(journal_t *j);

#endif

/* ===================================================================
 * Read-only reader (journal_read.c) -- for tools such as mhtas-journal.
 * Added for the journal export tool; everything above is the hub's.
 * =================================================================== */
#ifndef MHTAS_JOURNAL_READ_DECLS
#define MHTAS_JOURNAL_READ_DECLS

typedef struct journal_read_stats {
    uint64_t snapshot;       /* up_to ticket of the snapshot read; 0: none */
    uint64_t snapshot_bytes; /* its payload length */
    size_t segments;         /* segment files read */
    uint64_t records;        /* records passed to replay->record */
    uint64_t covered;        /* records skipped because the snapshot covers them */
    uint64_t first_ticket;   /* first record passed (0: none) */
    uint64_t last_ticket;    /* last ticket read (record or snapshot; 0: empty) */
    uint64_t bytes;          /* bytes read, file headers included */
    uint64_t unread_bytes;   /* bytes at the end of the LAST segment that were
                                not read: a torn tail, or a batch the hub is
                                still writing (0: the journal ended cleanly) */
    const char *unread_why;  /* static text when unread_bytes > 0, else NULL */
    int relisted;            /* 1 if files vanished under us (a concurrent
                                snapshot/compaction) and the listing was retried */
    uint64_t starts_after;   /* journal_read_history: the oldest file read
                                follows this ticket (older archives were
                                removed); 0: the history is complete */
} journal_read_stats_t;

/* Reads the journal in dir exactly as journal_open would replay it -- the
 * newest snapshot, then every record after it, in order -- but read-only:
 * it takes no lock (a running hub holds it), opens files read-only and never
 * writes, trims or deletes anything.
 *
 * While the hub runs:
 *   - the end of the LAST segment may be torn or mid-write: reading stops
 *     there without error and stats->unread_bytes says how much was left;
 *     a segment whose header is short or zero (being created) is the same;
 *   - a snapshot may delete files between the listing and their opening:
 *     every needed file is opened (and so pinned) before any callback runs;
 *     if one is gone, the listing is retried once from the newest snapshot.
 *     Callbacks therefore never see a partial first attempt.
 * Damage anywhere else (a sealed segment, a snapshot, a broken chain, a CRC
 * mismatch followed by data) fails with JOURNAL_E_CORRUPT and the file and
 * offset in err, like journal_open. A directory with no journal files is an
 * empty journal (0). replay and stats may be NULL. Returns 0 or a negative
 * JOURNAL_E_* (JOURNAL_E_REPLAY when a callback returned non-zero). */
int journal_read(const char *dir, const journal_io_t *io, const journal_replay_t *replay,
                 journal_read_stats_t *stats, char *err, size_t errlen);

/* The whole history: every record of every archived segment (arch-*.mj, the
 * segments snapshots covered) and then of every live segment, in ticket
 * order; snapshots are not read (replay->snapshot is never called). Same
 * guarantees as journal_read otherwise. If the oldest archives were removed
 * (retention), the history starts at the oldest one left and
 * stats->starts_after says where; a gap anywhere else is corruption. For the
 * audit trail (mhtas-journal audit). */
int journal_read_history(const char *dir, const journal_io_t *io, const journal_replay_t *replay,
                         journal_read_stats_t *stats, char *err, size_t errlen);

#endif /* MHTAS_JOURNAL_READ_DECLS */
/* ============================ end of the reader ==================== */
