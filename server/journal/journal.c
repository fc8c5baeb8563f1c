/* journal.c -- segments, group commit on the libuv threadpool, replay and
 * snapshots. The contract is in journal.h; this file explains the how.
 *
 * Ownership between threads: while a batch is in flight, the worker owns
 * the "w_" fields (segment descriptor, size, segment list, failed flag) and
 * the batch; the loop thread owns everything else and touches the w_ fields
 * only when nothing is in flight. uv_queue_work's hand-over (a mutex and an
 * async wake-up inside libuv) orders the two, so no lock of our own.
 */
#include "journal/journal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_format.h"
#include "journal/journal_internal.h"
#include "log/log.h"
#include "util/alloc.h"

int journal__test_ack_before_sync;

#define DEFAULT_SEGMENT_BYTES (64ull << 20)

static const char MSG_FAILED[] = "journal: saving to disk failed; changes cannot be saved until the hub restarts";
static const char MSG_NOSPACE[] = "journal: disk full; the change was not saved";

typedef struct batch {
    uint8_t *buf;
    size_t len, cap;
    size_t count;
    uint64_t first, last;
    /* filled in by the worker */
    int status;
    const char *message;
} batch_t;

struct journal {
    char *dir;
    const journal_io_t *io;
    uint64_t segment_bytes;
    uint32_t max_record;
    int lock_handle;
    bool ack_before_sync; /* test hook, see journal_internal.h */

    /* worker-owned while a batch is in flight */
    int w_fd;               /* current segment, -1 if none */
    uint64_t w_seg_first;   /* its name */
    uint64_t w_seg_size;    /* durable end offset: everything before is synced */
    bool w_seg_records;     /* it holds at least one record */
    uint64_t w_last;        /* last ticket written and synced to a segment */
    bool w_failed;          /* a write or sync failed: never write again */
    bool w_force_rotate;    /* set by journal_snapshot */
    uint64_t *w_segs;       /* first tickets of live segments, ascending */
    size_t w_nsegs, w_capsegs;

    /* loop-owned */
    batch_t *cur;    /* being filled by journal_append */
    batch_t *flight; /* with the worker */
    batch_t *spare;  /* recycled buffer */
    uint64_t next_ticket;
    uint64_t durable;
    uint64_t snap_ticket;
    bool failed;
    uv_work_t work;
    journal_done_cb cb;
    void *cb_ctx;
    bool pend_commit; /* journal_commit called while a batch was in flight */
    uv_loop_t *pend_loop;
    journal_done_cb pend_cb;
    void *pend_ctx;
    int in_cb;           /* inside a done_cb: close is deferred */
    bool close_requested;
};

const char *journal_strerror(int code)
{
    switch (code) {
    case JOURNAL_OK: return "ok";
    case JOURNAL_E_FAILED: return "journal failed (a write or sync error); restart required";
    case JOURNAL_E_NOSPACE: return "journal disk full";
    case JOURNAL_E_TOOBIG: return "journal record too large";
    case JOURNAL_E_NOMEM: return "out of memory";
    case JOURNAL_E_BUSY: return "journal busy (a batch is in flight)";
    case JOURNAL_E_LOCKED: return "journal directory in use by another process";
    case JOURNAL_E_CORRUPT: return "journal corrupt";
    case JOURNAL_E_IO: return "journal I/O error";
    case JOURNAL_E_INVAL: return "invalid argument";
    case JOURNAL_E_REPLAY: return "journal replay refused by the hub";
    }
    return "unknown journal error";
}

/* ------------------------------------------------------------- helpers */

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = hub_malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

static char *seg_path(const journal_t *j, uint64_t first)
{
    char name[JOURNAL_NAME_MAX];
    journal_seg_name(name, first);
    return join(j->dir, name);
}

/* pwrite until done: a short write is not an error until the next call
 * says why (ENOSPC typically). */
static int write_all(const journal_io_t *io, int fd, const uint8_t *p, size_t len, uint64_t off)
{
    while (len) {
        int64_t n = io->pwrite(io->ctx, fd, p, len, off);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int read_all(const journal_io_t *io, const char *path, uint8_t **out, size_t *outlen)
{
    int fd, rc = io->open(io->ctx, path, JOURNAL_IO_RDONLY, &fd);
    if (rc)
        return rc;
    uint64_t size;
    if ((rc = io->fsize(io->ctx, fd, &size)) != 0) {
        io->close(io->ctx, fd);
        return rc;
    }
    uint8_t *buf = hub_malloc((size_t)size);
    if (buf == NULL) {
        io->close(io->ctx, fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        int64_t n = io->pread(io->ctx, fd, buf + got, (size_t)size - got, got);
        if (n <= 0) {
            hub_free(buf);
            io->close(io->ctx, fd);
            return n < 0 ? (int)n : -EIO;
        }
        got += (size_t)n;
    }
    io->close(io->ctx, fd);
    *out = buf;
    *outlen = got;
    return 0;
}

static int segs_push(journal_t *j, uint64_t first)
{
    if (j->w_nsegs == j->w_capsegs) {
        size_t c = j->w_capsegs ? j->w_capsegs * 2 : 16;
        uint64_t *p = hub_realloc(j->w_segs, c * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        j->w_segs = p;
        j->w_capsegs = c;
    }
    j->w_segs[j->w_nsegs++] = first;
    return 0;
}

/* ---------------------------------------------------------- the worker */

/* Puts the journal into the FAILED state for good. Called on the worker
 * thread (or the loop thread for snapshots) the moment a write or sync
 * fails. Loud on purpose: from here on the hub refuses every state change,
 * and an operator has to look at the disk. */
static void fail(journal_t *j, batch_t *b, const char *op, int err)
{
    j->w_failed = true;
    hub_log(HUB_LOG_ERROR, "journal",
            "event=journal_failed op=%s dir=%s segment=%020" PRIu64 " offset=%" PRIu64
            " err=\"%s\" tickets=%" PRIu64 "-%" PRIu64
            " action=\"refusing all state changes; nothing after ticket %" PRIu64
            " is acknowledged; restart the hub after fixing the disk\"",
            op, j->dir, j->w_seg_first, j->w_seg_size, strerror(-err), b ? b->first : 0, b ? b->last : 0,
            j->w_last);
    if (b) {
        b->status = JOURNAL_E_FAILED;
        b->message = MSG_FAILED;
    }
}

/* Starts a new segment named after first_ticket. The previous segment's
 * last batch was fdatasync'ed, so it is sealed and complete. The new file
 * gets its header, an fdatasync and a directory fsync BEFORE any record goes
 * in: a crash can then lose the file only while it holds nothing that was
 * acknowledged, and replay never sees records in a file the directory may
 * forget. Returns 0, JOURNAL_E_NOSPACE (clean: the old segment stays
 * current) or JOURNAL_E_FAILED. */
static int rotate(journal_t *j, batch_t *b, uint64_t first_ticket)
{
    const journal_io_t *io = j->io;
    char *path = seg_path(j, first_ticket);
    if (path == NULL) {
        fail(j, b, "rotate", -ENOMEM);
        return JOURNAL_E_FAILED;
    }
    int fd, rc = io->open(io->ctx, path, JOURNAL_IO_RDWR | JOURNAL_IO_CREAT | JOURNAL_IO_EXCL, &fd);
    if (rc) {
        hub_free(path);
        fail(j, b, "create_segment", rc);
        return JOURNAL_E_FAILED;
    }
    uint8_t hdr[JOURNAL_FILE_HDR];
    journal_file_hdr_encode(hdr, &(journal_file_hdr_t){ JOURNAL_KIND_SEGMENT, first_ticket, j->w_last });
    rc = write_all(io, fd, hdr, sizeof hdr, 0);
    if (rc == -ENOSPC) {
        /* Undo the creation so the old segment stays the last one. */
        io->close(io->ctx, fd);
        if (io->unlink(io->ctx, path) == 0 && io->fsync_dir(io->ctx, j->dir) == 0) {
            hub_free(path);
            hub_log(HUB_LOG_ERROR, "journal", "event=disk_full dir=%s op=create_segment", j->dir);
            b->status = JOURNAL_E_NOSPACE;
            b->message = MSG_NOSPACE;
            return JOURNAL_E_NOSPACE;
        }
        hub_free(path);
        fail(j, b, "create_segment", rc);
        return JOURNAL_E_FAILED;
    }
    const char *op = "write_segment_header";
    if (rc == 0 && (rc = io->fdatasync(io->ctx, fd)) != 0)
        op = "fdatasync_segment_header";
    if (rc == 0 && (rc = io->fsync_dir(io->ctx, j->dir)) != 0)
        op = "fsync_dir";
    if (rc == 0 && (rc = segs_push(j, first_ticket)) != 0)
        op = "rotate";
    hub_free(path);
    if (rc) {
        io->close(io->ctx, fd);
        fail(j, b, op, rc);
        return JOURNAL_E_FAILED;
    }
    if (j->w_fd >= 0)
        io->close(io->ctx, j->w_fd); /* synced already; a close error changes nothing */
    j->w_fd = fd;
    j->w_seg_first = first_ticket;
    j->w_seg_size = JOURNAL_FILE_HDR;
    j->w_seg_records = false;
    j->w_force_rotate = false;
    return 0;
}

/* The batch work: runs on a threadpool thread (or the caller's, for
 * journal_commit_sync). One pwrite of the whole batch, one fdatasync, and
 * only then is the batch marked durable. */
static void run_batch(journal_t *j, batch_t *b)
{
    const journal_io_t *io = j->io;
    b->status = 0;
    b->message = NULL;
    if (j->w_failed) {
        b->status = JOURNAL_E_FAILED;
        b->message = MSG_FAILED;
        return;
    }
    if (b->count == 0)
        return;
    if (j->w_seg_records && (j->w_force_rotate || j->w_seg_size >= j->segment_bytes))
        if (rotate(j, b, b->first) != 0)
            return;
    int rc = write_all(io, j->w_fd, b->buf, b->len, j->w_seg_size);
    if (rc == -ENOSPC) {
        /* Cut the partial batch off again and make the cut durable, so the
         * segment ends exactly at the last acknowledged record and the
         * failed records are definitely gone. This fdatasync is not a retry
         * of a failed one: no sync has failed, only a write. */
        int trc = io->ftruncate(io->ctx, j->w_fd, j->w_seg_size);
        if (trc == 0)
            trc = io->fdatasync(io->ctx, j->w_fd);
        if (trc == 0) {
            hub_log(HUB_LOG_ERROR, "journal",
                    "event=disk_full dir=%s segment=%020" PRIu64 " offset=%" PRIu64 " tickets=%" PRIu64 "-%" PRIu64
                    " action=\"state changes refused until space is freed\"",
                    j->dir, j->w_seg_first, j->w_seg_size, b->first, b->last);
            b->status = JOURNAL_E_NOSPACE;
            b->message = MSG_NOSPACE;
            return;
        }
        fail(j, b, "truncate_after_enospc", trc);
        return;
    }
    if (rc) {
        fail(j, b, "pwrite", rc);
        return;
    }
    if (j->ack_before_sync) {
        /* THE BUG the power-loss test must catch (test hook only): the batch
         * counts as durable before the sync, whatever the sync then says. */
        j->w_seg_size += b->len;
        j->w_seg_records = true;
        j->w_last = b->last;
        (void)io->fdatasync(io->ctx, j->w_fd);
        return;
    }
    if ((rc = io->fdatasync(io->ctx, j->w_fd)) != 0) {
        /* Never retried: see journal.h. */
        fail(j, b, "fdatasync", rc);
        return;
    }
    j->w_seg_size += b->len;
    j->w_seg_records = true;
    j->w_last = b->last;
}

static void work_cb(uv_work_t *req)
{
    journal_t *j = req->data;
    run_batch(j, j->flight);
}

static void really_close(journal_t *j);
static int start(journal_t *j, uv_loop_t *loop, journal_done_cb cb, void *ctx);

/* Back on the loop thread: publish the batch's outcome, recycle its buffer,
 * tell the hub, then send the batch that accumulated meanwhile. */
static void finish(journal_t *j, batch_t *b, journal_done_cb cb, void *ctx)
{
    if (b->status == 0 && b->count)
        j->durable = b->last;
    if (b->status == JOURNAL_E_FAILED)
        j->failed = true;
    journal_result_t r = { b->status, b->first, b->last, j->durable, b->message };
    if (b->count == 0) {
        r.first = 1;
        r.last = 0;
    }
    b->len = b->count = 0;
    if (j->spare == NULL) {
        j->spare = b;
    } else {
        hub_free(b->buf);
        hub_free(b);
    }
    if (cb) {
        j->in_cb++;
        cb(ctx, &r);
        j->in_cb--;
    }
}

static void after_work_cb(uv_work_t *req, int status)
{
    journal_t *j = req->data;
    batch_t *b = j->flight;
    j->flight = NULL;
    if (status != 0 && b->status == 0) {
        /* Cancelled: the work never ran, so nothing is known durable. */
        b->status = JOURNAL_E_FAILED;
        b->message = MSG_FAILED;
    }
    finish(j, b, j->cb, j->cb_ctx);
    if (j->close_requested) {
        really_close(j);
        return;
    }
    if (j->pend_commit && j->flight == NULL) {
        j->pend_commit = false;
        if (j->cur && j->cur->count)
            start(j, j->pend_loop, j->pend_cb, j->pend_ctx);
    }
}

static int start(journal_t *j, uv_loop_t *loop, journal_done_cb cb, void *ctx)
{
    j->flight = j->cur;
    j->cur = NULL;
    j->cb = cb;
    j->cb_ctx = ctx;
    j->work.data = j;
    int rc = uv_queue_work(loop, &j->work, work_cb, after_work_cb);
    if (rc) {
        j->cur = j->flight;
        j->flight = NULL;
        hub_log(HUB_LOG_ERROR, "journal", "event=queue_work_failed err=\"%s\"", uv_strerror(rc));
        return JOURNAL_E_INVAL;
    }
    return 0;
}

/* ------------------------------------------------------------ appending */

int journal_append(journal_t *j, const void *payload, size_t len, uint64_t *ticket)
{
    if (j->failed)
        return JOURNAL_E_FAILED;
    if (len > j->max_record)
        return JOURNAL_E_TOOBIG;
    batch_t *b = j->cur;
    if (b == NULL) {
        b = j->spare ? j->spare : hub_calloc(1, sizeof *b);
        if (b == NULL)
            return JOURNAL_E_NOMEM;
        j->spare = NULL;
        j->cur = b;
    }
    size_t need = b->len + journal_rec_size(len);
    if (need > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < need)
            c *= 2;
        uint8_t *p = hub_realloc(b->buf, c);
        if (p == NULL)
            return JOURNAL_E_NOMEM;
        b->buf = p;
        b->cap = c;
    }
    uint64_t t = j->next_ticket++;
    journal_rec_encode(b->buf + b->len, t, payload, (uint32_t)len);
    b->len = need;
    if (b->count++ == 0)
        b->first = t;
    b->last = t;
    *ticket = t;
    return 0;
}

int journal_commit(journal_t *j, uv_loop_t *loop, journal_done_cb done_cb, void *ctx)
{
    int ret = j->failed ? JOURNAL_E_FAILED : 0;
    if (j->cur == NULL || j->cur->count == 0)
        return ret;
    if (j->flight) {
        j->pend_commit = true;
        j->pend_loop = loop;
        j->pend_cb = done_cb;
        j->pend_ctx = ctx;
        return ret;
    }
    /* Even a failed journal sends the batch: the worker fails it at once,
     * and the hub hears about those tickets through done_cb like any other
     * outcome. */
    int rc = start(j, loop, done_cb, ctx);
    return rc ? rc : ret;
}

int journal_commit_sync(journal_t *j, journal_done_cb done_cb, void *ctx)
{
    if (j->flight)
        return JOURNAL_E_BUSY;
    if (j->cur == NULL || j->cur->count == 0)
        return 0;
    batch_t *b = j->cur;
    j->cur = NULL;
    run_batch(j, b);
    int status = b->status;
    finish(j, b, done_cb, ctx);
    if (j->close_requested)
        really_close(j);
    return status;
}

uint64_t journal_durable(const journal_t *j) { return j->durable; }
uint64_t journal_next_ticket(const journal_t *j) { return j->next_ticket; }
int journal_in_flight(const journal_t *j) { return j->flight != NULL; }
int journal_failed(const journal_t *j) { return j->failed; }

/* ------------------------------------------------------------ snapshots */

typedef struct cleanup_ctx {
    journal_t *j;
    uint64_t keep_snap; /* delete snapshots older than this */
    int removed;
} cleanup_ctx_t;

/* Removes older snapshots and leftover snapshot temp files. Deleting is
 * safe at any point after the newer snapshot's rename is durable; if a
 * crash undoes a deletion, open just deletes it again. */
static int cleanup_entry(void *ud, const char *name)
{
    cleanup_ctx_t *c = ud;
    uint64_t n;
    bool drop = false;
    size_t len = strlen(name);
    if (strncmp(name, "snap-", 5) == 0 && len > 4 && strcmp(name + len - 4, ".tmp") == 0)
        drop = true;
    else if (journal_parse_name(name, &n) == JOURNAL_KIND_SNAPSHOT && n < c->keep_snap)
        drop = true;
    if (drop) {
        char *p = join(c->j->dir, name);
        if (p && c->j->io->unlink(c->j->io->ctx, p) == 0) {
            c->removed++;
            hub_log(HUB_LOG_INFO, "journal", "event=removed file=%s", p);
        }
        hub_free(p);
    }
    return 0;
}

/* Moves a segment a snapshot covers out of the replay path: it is renamed
 * seg-N.mj -> arch-N.mj in the same directory (one atomic rename, made
 * durable by the caller's directory fsync). Nothing is deleted: the
 * journal is the service's record (every transition, every care-record
 * audit record), and a snapshot holds only the state needed to restart.
 * Replay never reads arch- files; journal_read_history does, and what to
 * keep and for how long is the operators' retention decision
 * (docs/ARCHITECTURE.md, "Durability"). 0 or a negative errno. */
static int archive_segment(journal_t *j, uint64_t first, const char *why)
{
    char name[JOURNAL_NAME_MAX];
    journal_arch_name(name, first);
    char *from = seg_path(j, first), *to = join(j->dir, name);
    int rc = from && to ? j->io->rename(j->io->ctx, from, to) : -ENOMEM;
    if (rc == 0)
        hub_log(HUB_LOG_INFO, "journal", "event=archived file=%s reason=%s", to, why);
    else
        hub_log(HUB_LOG_WARN, "journal", "event=archive_failed file=%s err=\"%s\" effect=\"replay skips it\"",
                from ? from : "?", strerror(-rc));
    hub_free(from);
    hub_free(to);
    return rc;
}

/* Archives segments wholly covered by the snapshot at up_to: segment i
 * holds tickets below the next segment's first, so it is covered when the
 * next one starts at or before up_to + 1. The last segment is never
 * archived: it is the one we append to. */
static int drop_covered(journal_t *j, uint64_t up_to)
{
    size_t k = 0;
    int removed = 0;
    while (k + 1 < j->w_nsegs && j->w_segs[k + 1] <= up_to + 1) {
        if (archive_segment(j, j->w_segs[k], "covered_by_snapshot") == 0)
            removed++;
        k++;
    }
    memmove(j->w_segs, j->w_segs + k, (j->w_nsegs - k) * sizeof *j->w_segs);
    j->w_nsegs -= k;
    return removed;
}

int journal_snapshot(journal_t *j, const void *payload, size_t len, uint64_t up_to)
{
    if (j->flight)
        return JOURNAL_E_BUSY;
    if (j->failed)
        return JOURNAL_E_FAILED;
    if (up_to > j->durable || up_to == 0 || len > JOURNAL_MAX_SNAPSHOT)
        return JOURNAL_E_INVAL;
    const journal_io_t *io = j->io;
    char name[JOURNAL_NAME_MAX + 4];
    journal_snap_name(name, up_to);
    char *final = join(j->dir, name);
    strcat(name, ".tmp");
    char *tmp = join(j->dir, name);
    size_t total = JOURNAL_FILE_HDR + journal_rec_size(len);
    uint8_t *buf = hub_malloc(total);
    if (final == NULL || tmp == NULL || buf == NULL) {
        hub_free(final);
        hub_free(tmp);
        hub_free(buf);
        return JOURNAL_E_NOMEM;
    }
    journal_file_hdr_encode(buf, &(journal_file_hdr_t){ JOURNAL_KIND_SNAPSHOT, up_to, 0 });
    journal_rec_encode(buf + JOURNAL_FILE_HDR, up_to, payload, (uint32_t)len);

    int ret = 0, fd, rc;
    const char *op = "create_snapshot";
    if ((rc = io->open(io->ctx, tmp, JOURNAL_IO_RDWR | JOURNAL_IO_CREAT | JOURNAL_IO_TRUNC, &fd)) == 0) {
        op = "write_snapshot";
        rc = write_all(io, fd, buf, total, 0);
        if (rc == 0) {
            op = "fsync_snapshot";
            rc = io->fsync(io->ctx, fd);
        }
        io->close(io->ctx, fd);
        if (rc)
            io->unlink(io->ctx, tmp);
    }
    hub_free(buf);
    if (rc) {
        /* Only the new file is affected and it is gone: the journal and the
         * previous snapshot are intact, so this is not fatal. */
        hub_log(HUB_LOG_ERROR, "journal", "event=snapshot_failed op=%s file=%s err=\"%s\"", op, tmp,
                strerror(-rc));
        ret = rc == -ENOSPC ? JOURNAL_E_NOSPACE : JOURNAL_E_IO;
        goto out;
    }
    /* From the rename on, a failure leaves the directory in a state we
     * cannot know (and a retried directory fsync may lie), so deleting
     * segments would be unsafe: fail the journal instead. */
    if ((rc = io->rename(io->ctx, tmp, final)) != 0 || (rc = io->fsync_dir(io->ctx, j->dir)) != 0) {
        fail(j, NULL, "snapshot_rename", rc);
        j->failed = true;
        ret = JOURNAL_E_FAILED;
        goto out;
    }
    j->snap_ticket = up_to;
    hub_log(HUB_LOG_INFO, "journal", "event=snapshot file=%s up_to=%" PRIu64 " bytes=%zu", final, up_to, len);
    cleanup_ctx_t c = { j, up_to, 0 };
    io->list(io->ctx, j->dir, cleanup_entry, &c);
    c.removed += drop_covered(j, up_to);
    if (c.removed && (rc = io->fsync_dir(io->ctx, j->dir)) != 0)
        hub_log(HUB_LOG_WARN, "journal", "event=fsync_dir_failed after=cleanup err=\"%s\" effect=none", strerror(-rc));
    /* Seal the current segment at the next batch, so that the next snapshot
     * can delete the records this one covers. */
    j->w_force_rotate = true;
out:
    hub_free(final);
    hub_free(tmp);
    return ret;
}

/* -------------------------------------------------------------- replay */

typedef struct names {
    uint64_t *segs;
    size_t nsegs, capsegs;
    uint64_t newest_snap;
    bool have_snap;
    int err;
} names_t;

static int collect(void *ud, const char *name)
{
    names_t *n = ud;
    uint64_t v;
    int kind = journal_parse_name(name, &v);
    if (kind == JOURNAL_KIND_SEGMENT) {
        if (n->nsegs == n->capsegs) {
            size_t c = n->capsegs ? n->capsegs * 2 : 16;
            uint64_t *p = hub_realloc(n->segs, c * sizeof *p);
            if (p == NULL) {
                n->err = -ENOMEM;
                return 1;
            }
            n->segs = p;
            n->capsegs = c;
        }
        n->segs[n->nsegs++] = v;
    } else if (kind == JOURNAL_KIND_SNAPSHOT) {
        if (!n->have_snap || v > n->newest_snap)
            n->newest_snap = v;
        n->have_snap = true;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#define ERR(code, ...)                                                                                         \
    do {                                                                                                       \
        if (errlen)                                                                                            \
            snprintf(err, errlen, __VA_ARGS__);                                                                \
        ret = (code);                                                                                          \
        goto fail;                                                                                             \
    } while (0)

/* Loads the newest snapshot. It was renamed into place only after an
 * fsync, so any damage is real corruption, never a torn write. */
static int load_snapshot(journal_t *j, uint64_t t, const journal_replay_t *rp, char *err, size_t errlen)
{
    char name[JOURNAL_NAME_MAX];
    journal_snap_name(name, t);
    char *path = join(j->dir, name);
    uint8_t *buf = NULL;
    size_t len = 0;
    int ret = 0;
    if (path == NULL)
        ERR(JOURNAL_E_NOMEM, "journal: out of memory");
    int rc = read_all(j->io, path, &buf, &len);
    if (rc)
        ERR(JOURNAL_E_IO, "journal: %s: cannot read: %s", path, strerror(-rc));
    const uint8_t *payload;
    uint32_t plen;
    size_t off;
    const char *why;
    if (journal_snapshot_check(buf, len, t, &payload, &plen, &off, &why) != 0)
        ERR(JOURNAL_E_CORRUPT, "journal: %s offset %zu: %s (in a snapshot)", path, off, why);
    if (rp && rp->snapshot && rp->snapshot(rp->ctx, t, payload, plen) != 0)
        ERR(JOURNAL_E_REPLAY, "journal: %s: the hub refused the snapshot", path);
    hub_log(HUB_LOG_INFO, "journal", "event=snapshot_loaded file=%s up_to=%" PRIu64 " bytes=%u", path, t, plen);
fail:
    hub_free(buf);
    hub_free(path);
    return ret;
}

/* Trims a torn tail of the last segment and makes the cut durable before
 * anything is appended after it. */
static int trim(journal_t *j, const char *path, uint64_t off)
{
    const journal_io_t *io = j->io;
    int fd, rc = io->open(io->ctx, path, JOURNAL_IO_RDWR, &fd);
    if (rc)
        return rc;
    rc = io->ftruncate(io->ctx, fd, off);
    if (rc == 0)
        rc = io->fdatasync(io->ctx, fd);
    io->close(io->ctx, fd);
    return rc;
}

int journal_open(journal_t **out, const char *dir, const journal_io_t *io, const journal_opts_t *opts,
                 const journal_replay_t *rp, char *err, size_t errlen)
{
    int ret = 0, rc;
    names_t nm = { 0 };
    uint8_t *buf = NULL;
    char *path = NULL;
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    journal_t *j = hub_calloc(1, sizeof *j);
    if (j == NULL || (j->dir = hub_strdup(dir)) == NULL) {
        hub_free(j);
        if (errlen)
            snprintf(err, errlen, "journal: out of memory");
        return JOURNAL_E_NOMEM;
    }
    j->io = io;
    j->w_fd = -1;
    j->lock_handle = -1;
    j->ack_before_sync = journal__test_ack_before_sync != 0;
    j->segment_bytes = opts && opts->segment_bytes ? opts->segment_bytes : DEFAULT_SEGMENT_BYTES;
    j->max_record = opts && opts->max_record && opts->max_record < JOURNAL_MAX_RECORD ? opts->max_record
                                                                                      : JOURNAL_MAX_RECORD;

    if ((rc = io->lock(io->ctx, dir, &j->lock_handle)) != 0) {
        j->lock_handle = -1;
        if (rc == -EWOULDBLOCK)
            ERR(JOURNAL_E_LOCKED, "journal directory %s is in use by another process", dir);
        ERR(JOURNAL_E_IO, "journal directory %s: cannot lock: %s", dir, strerror(-rc));
    }
    if ((rc = io->list(io->ctx, dir, collect, &nm)) != 0 || nm.err)
        ERR(JOURNAL_E_IO, "journal directory %s: cannot list: %s", dir, strerror(-(nm.err ? nm.err : rc)));
    if (nm.nsegs)
        qsort(nm.segs, nm.nsegs, sizeof *nm.segs, cmp_u64);

    uint64_t snap = 0;
    if (nm.have_snap) {
        if ((ret = load_snapshot(j, nm.newest_snap, rp, err, errlen)) != 0)
            goto fail;
        snap = nm.newest_snap;
    }
    j->snap_ticket = snap;

    /* Segments wholly covered by the snapshot are skipped (and deleted
     * below): they are leftovers of a compaction a crash interrupted. */
    size_t s0 = 0;
    while (s0 + 1 < nm.nsegs && nm.segs[s0 + 1] <= snap + 1)
        s0++;

    uint64_t last = 0; /* last ticket in the segment chain so far */
    size_t replayed = 0;
    size_t nsegs = nm.nsegs;
    for (size_t i = s0; i < nsegs; i++) {
        bool is_last = i + 1 == nsegs;
        hub_free(path);
        hub_free(buf);
        buf = NULL;
        size_t len = 0;
        if ((path = seg_path(j, nm.segs[i])) == NULL)
            ERR(JOURNAL_E_NOMEM, "journal: out of memory");
        if ((rc = read_all(io, path, &buf, &len)) != 0)
            ERR(JOURNAL_E_IO, "journal: %s: cannot read: %s", path, strerror(-rc));
        journal_file_hdr_t h;
        const char *why;
        if (journal_file_hdr_decode(buf, len, &h, &why) != 0) {
            /* A segment is created, given its header and synced before any
             * record goes in, so a crash during creation leaves a short or
             * zeroed header and nothing else: drop that file. */
            if (is_last && (len <= JOURNAL_FILE_HDR || journal_all_zero(buf, len))) {
                hub_log(HUB_LOG_WARN, "journal",
                        "event=torn_segment_removed file=%s bytes=%zu why=\"%s\" note=\"crash while creating it; held no records\"",
                        path, len, why);
                if ((rc = io->unlink(io->ctx, path)) != 0 || (rc = io->fsync_dir(io->ctx, dir)) != 0)
                    ERR(JOURNAL_E_IO, "journal: %s: cannot remove torn segment: %s", path, strerror(-rc));
                nsegs--;
                break;
            }
            ERR(JOURNAL_E_CORRUPT, "journal: %s offset 0: %s", path, why);
        }
        if (h.kind != JOURNAL_KIND_SEGMENT || h.a != nm.segs[i])
            ERR(JOURNAL_E_CORRUPT, "journal: %s offset 0: header does not match the file name", path);
        /* Chain check: each segment names the last ticket written before
         * it, so a lost segment in the middle cannot go unnoticed. */
        char chain[JOURNAL_ERR_MAX];
        if (journal_chain_check(path, i == s0, h.b, snap, last, chain, sizeof chain) != 0)
            ERR(JOURNAL_E_CORRUPT, "%s", chain);
        last = h.b;
        size_t off = JOURNAL_FILE_HDR;
        bool has_records = false;
        for (;;) {
            journal_scan_t s;
            journal_scan(buf, len, off, j->max_record, &s);
            if (s.kind == JOURNAL_SCAN_END)
                break;
            if (s.kind == JOURNAL_SCAN_CORRUPT)
                ERR(JOURNAL_E_CORRUPT, "journal: %s offset %zu: %s", path, s.offset, s.why);
            if (s.kind == JOURNAL_SCAN_TORN) {
                if (!is_last)
                    ERR(JOURNAL_E_CORRUPT, "journal: %s offset %zu: %s in a sealed segment", path, s.offset, s.why);
                hub_log(HUB_LOG_WARN, "journal",
                        "event=torn_tail_trimmed file=%s offset=%zu bytes_dropped=%zu why=\"%s\" "
                        "note=\"unsynced (never acknowledged) data from a crash\"",
                        path, off, len - off, s.why);
                if ((rc = trim(j, path, off)) != 0)
                    ERR(JOURNAL_E_IO, "journal: %s: cannot trim torn tail at offset %zu: %s", path, off,
                        strerror(-rc));
                len = off;
                break;
            }
            if (s.ticket <= last || s.ticket < h.a)
                ERR(JOURNAL_E_CORRUPT, "journal: %s offset %zu: ticket %" PRIu64 " out of order (after %" PRIu64 ")",
                    path, off, s.ticket, last);
            last = s.ticket;
            has_records = true;
            if (s.ticket > snap) {
                if (rp && rp->record && rp->record(rp->ctx, s.ticket, s.payload, s.len) != 0)
                    ERR(JOURNAL_E_REPLAY, "journal: %s offset %zu: the hub refused ticket %" PRIu64, path, off,
                        s.ticket);
                replayed++;
            }
            off = s.next;
        }
        if ((rc = segs_push(j, nm.segs[i])) != 0)
            ERR(JOURNAL_E_NOMEM, "journal: out of memory");
        /* Kept for every segment: if the next one turns out to be a torn
         * creation and is removed, this one is where appends continue. */
        j->w_seg_first = nm.segs[i];
        j->w_seg_size = len;
        j->w_seg_records = has_records;
    }
    if (last < snap)
        last = snap;
    j->w_last = last;
    j->durable = last;
    j->next_ticket = last + 1;

    /* Open the last segment for appending, or start one. */
    if (j->w_nsegs) {
        hub_free(path);
        path = seg_path(j, j->w_segs[j->w_nsegs - 1]);
        if (path == NULL)
            ERR(JOURNAL_E_NOMEM, "journal: out of memory");
        if ((rc = io->open(io->ctx, path, JOURNAL_IO_RDWR, &j->w_fd)) != 0) {
            j->w_fd = -1;
            ERR(JOURNAL_E_IO, "journal: %s: cannot open for appending: %s", path, strerror(-rc));
        }
    } else {
        batch_t tmp = { 0 };
        if (rotate(j, &tmp, j->next_ticket) != 0)
            ERR(JOURNAL_E_IO, "journal directory %s: cannot create the first segment", dir);
    }

    /* Tidy up what a crash or an interrupted compaction left behind. */
    {
        int removed = 0;
        for (size_t i = 0; i < s0; i++)
            if (archive_segment(j, nm.segs[i], "covered_by_snapshot_at_open") == 0)
                removed++;
        cleanup_ctx_t c = { j, snap, 0 };
        io->list(io->ctx, dir, cleanup_entry, &c);
        if (removed + c.removed && (rc = io->fsync_dir(io->ctx, dir)) != 0)
            hub_log(HUB_LOG_WARN, "journal", "event=fsync_dir_failed after=cleanup err=\"%s\" effect=none",
                    strerror(-rc));
    }
    hub_log(HUB_LOG_INFO, "journal",
            "event=open dir=%s segments=%zu snapshot=%" PRIu64 " replayed=%zu next_ticket=%" PRIu64, dir, j->w_nsegs,
            snap, replayed, j->next_ticket);
    hub_free(path);
    hub_free(buf);
    hub_free(nm.segs);
    *out = j;
    return 0;

fail:
    hub_log(HUB_LOG_ERROR, "journal", "event=open_failed err=\"%s\"", errlen ? err : journal_strerror(ret));
    hub_free(path);
    hub_free(buf);
    hub_free(nm.segs);
    really_close(j);
    return ret;
}

/* -------------------------------------------------------------- closing */

static void really_close(journal_t *j)
{
    if (j->w_fd >= 0)
        j->io->close(j->io->ctx, j->w_fd);
    if (j->lock_handle >= 0)
        j->io->unlock(j->io->ctx, j->lock_handle);
    batch_t *bs[] = { j->cur, j->spare };
    for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++)
        if (bs[i]) {
            hub_free(bs[i]->buf);
            hub_free(bs[i]);
        }
    hub_free(j->w_segs);
    hub_free(j->dir);
    hub_free(j);
}

int journal_close(journal_t *j)
{
    if (j == NULL)
        return 0;
    if (j->flight)
        return JOURNAL_E_BUSY;
    if (j->in_cb) {
        j->close_requested = true;
        return 0;
    }
    really_close(j);
    return 0;
}
