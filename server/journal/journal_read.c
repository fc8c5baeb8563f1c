/* journal_read.c -- a read-only reader of the journal, for tools that look
 * at the data of a running hub (bin/mhtas-journal). The contract is at the
 * end of journal.h.
 *
 * It applies journal_open's rules (journal.c, "replay") with three
 * differences that come from not owning the directory:
 *   - no lock, read-only opens, nothing is ever trimmed, removed or synced;
 *   - the tail of the last segment is allowed to be incomplete, because the
 *     hub may be writing it right now: torn and "still being written" look
 *     the same from here, and both are stopped at silently (and counted);
 *   - the hub may take a snapshot while we read, and that deletes the older
 *     snapshot and the segments it covers. So every file we need is opened
 *     first, and only then read: an open descriptor keeps a deleted file
 *     readable, and the set we opened is a consistent cut. If one of them
 *     is already gone when we open it, the listing is retried once (the new
 *     newest snapshot then covers what vanished). No callback runs before
 *     all files are open, so a retry is invisible to the caller.
 */
#include "journal/journal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_format.h"
#include "util/alloc.h"

typedef struct rd_names {
    uint64_t *segs;
    size_t nsegs, capsegs;
    uint64_t *archs;         /* arch- files: only collected for history */
    size_t narchs, caparchs;
    bool want_archs;
    uint64_t newest_snap;
    bool have_snap;
    int err;
} rd_names_t;

static int rd_push(rd_names_t *n, uint64_t **v, size_t *len, size_t *cap, uint64_t x)
{
    if (*len == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        uint64_t *p = hub_realloc(*v, c * sizeof *p);
        if (p == NULL) {
            n->err = -ENOMEM;
            return 1;
        }
        *v = p;
        *cap = c;
    }
    (*v)[(*len)++] = x;
    return 0;
}

static int rd_collect(void *ud, const char *name)
{
    rd_names_t *n = ud;
    uint64_t v;
    int kind = journal_parse_name(name, &v);
    if (kind == JOURNAL_KIND_SEGMENT)
        return rd_push(n, &n->segs, &n->nsegs, &n->capsegs, v);
    if (kind == JOURNAL_KIND_ARCHIVE && n->want_archs)
        return rd_push(n, &n->archs, &n->narchs, &n->caparchs, v);
    if (kind == JOURNAL_KIND_SNAPSHOT) {
        if (!n->have_snap || v > n->newest_snap)
            n->newest_snap = v;
        n->have_snap = true;
    }
    return 0;
}

static int rd_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static char *rd_join(const char *dir, const char *name)
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

/* One file we will read: its path and open descriptor. */
typedef struct rd_file {
    char *path;
    uint64_t n; /* ticket in the name */
    int fd;     /* -1: not open */
} rd_file_t;

typedef struct rd_plan {
    rd_file_t snap; /* snap.path == NULL: no snapshot */
    rd_file_t *segs;
    size_t nsegs;
} rd_plan_t;

static void plan_close(const journal_io_t *io, rd_plan_t *p)
{
    if (p->snap.fd >= 0)
        io->close(io->ctx, p->snap.fd);
    hub_free(p->snap.path);
    for (size_t i = 0; i < p->nsegs; i++) {
        if (p->segs[i].fd >= 0)
            io->close(io->ctx, p->segs[i].fd);
        hub_free(p->segs[i].path);
    }
    hub_free(p->segs);
    memset(p, 0, sizeof *p);
    p->snap.fd = -1;
}

#define ERR(code, ...)                                                                                         \
    do {                                                                                                       \
        if (errlen)                                                                                            \
            snprintf(err, errlen, __VA_ARGS__);                                                                \
        ret = (code);                                                                                          \
        goto out;                                                                                              \
    } while (0)

/* Lists dir and opens the newest snapshot and every segment after it.
 * Returns 0, 1 when a file vanished between the listing and its opening
 * (the caller may list again), or a negative JOURNAL_E_* with err set. */
static int plan_open(const char *dir, const journal_io_t *io, rd_plan_t *p, bool history, char *err,
                     size_t errlen)
{
    rd_names_t nm = { .want_archs = history };
    int ret = 0, rc;
    char name[JOURNAL_NAME_MAX];
    memset(p, 0, sizeof *p);
    p->snap.fd = -1;
    if ((rc = io->list(io->ctx, dir, rd_collect, &nm)) != 0 || nm.err)
        ERR(JOURNAL_E_IO, "journal directory %s: cannot list: %s", dir, strerror(-(nm.err ? nm.err : rc)));
    if (nm.nsegs)
        qsort(nm.segs, nm.nsegs, sizeof *nm.segs, rd_cmp_u64);
    uint64_t snap = 0;
    if (nm.have_snap && !history) {
        snap = nm.newest_snap;
        journal_snap_name(name, snap);
        if ((p->snap.path = rd_join(dir, name)) == NULL)
            ERR(JOURNAL_E_NOMEM, "journal: out of memory");
        p->snap.n = snap;
        if ((rc = io->open(io->ctx, p->snap.path, JOURNAL_IO_RDONLY, &p->snap.fd)) != 0) {
            p->snap.fd = -1;
            if (rc == -ENOENT)
                ERR(1, "journal: %s: vanished while reading (a snapshot was being taken)", p->snap.path);
            ERR(JOURNAL_E_IO, "journal: %s: cannot open: %s", p->snap.path, strerror(-rc));
        }
    }
    /* Segments wholly covered by the snapshot are not needed (journal_open
     * archives them as leftovers of an interrupted compaction). History
     * reads them all, after every archived one. */
    size_t s0 = 0;
    while (!history && s0 + 1 < nm.nsegs && nm.segs[s0 + 1] <= snap + 1)
        s0++;
    if (nm.narchs)
        qsort(nm.archs, nm.narchs, sizeof *nm.archs, rd_cmp_u64);
    size_t want = nm.narchs + nm.nsegs - s0;
    if (want && (p->segs = hub_calloc(want, sizeof *p->segs)) == NULL)
        ERR(JOURNAL_E_NOMEM, "journal: out of memory");
    for (size_t i = 0; i < want; i++) {
        bool arch = i < nm.narchs;
        uint64_t n = arch ? nm.archs[i] : nm.segs[s0 + i - nm.narchs];
        rd_file_t *f = &p->segs[p->nsegs++];
        f->fd = -1;
        f->n = n;
        if (arch)
            journal_arch_name(name, n);
        else
            journal_seg_name(name, n);
        if ((f->path = rd_join(dir, name)) == NULL)
            ERR(JOURNAL_E_NOMEM, "journal: out of memory");
        if ((rc = io->open(io->ctx, f->path, JOURNAL_IO_RDONLY, &f->fd)) != 0) {
            f->fd = -1;
            if (rc == -ENOENT)
                ERR(1, "journal: %s: vanished while reading (a snapshot was being taken)", f->path);
            ERR(JOURNAL_E_IO, "journal: %s: cannot open: %s%s", f->path, strerror(-rc),
                rc == -EMFILE ? " (too many segments open at once: raise ulimit -n)" : "");
        }
    }
out:
    hub_free(nm.segs);
    hub_free(nm.archs);
    if (ret)
        plan_close(io, p);
    return ret;
}

/* Reads an open file whole (up to what its size is now). A file that
 * shrinks while we read is read up to where it ends. */
static int rd_read_fd(const journal_io_t *io, int fd, uint8_t **out, size_t *outlen)
{
    uint64_t size;
    int rc = io->fsize(io->ctx, fd, &size);
    *out = NULL;
    *outlen = 0;
    if (rc)
        return rc;
    if (size > (uint64_t)SIZE_MAX - 1)
        return -EFBIG;
    uint8_t *buf = hub_malloc(size ? (size_t)size : 1);
    if (buf == NULL)
        return -ENOMEM;
    size_t got = 0;
    while (got < size) {
        int64_t n = io->pread(io->ctx, fd, buf + got, (size_t)size - got, got);
        if (n < 0) {
            hub_free(buf);
            return (int)n;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *out = buf;
    *outlen = got;
    return 0;
}

static int read_plan(rd_plan_t *p, const journal_io_t *io, const journal_replay_t *rp, journal_read_stats_t *st,
                     bool history, char *err, size_t errlen)
{
    int ret = 0, rc;
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t snap = 0;
    journal_file_hdr_t h;
    const char *why;

    if (p->snap.path) {
        const char *path = p->snap.path;
        uint64_t t = p->snap.n;
        if ((rc = rd_read_fd(io, p->snap.fd, &buf, &len)) != 0)
            ERR(JOURNAL_E_IO, "journal: %s: cannot read: %s", path, strerror(-rc));
        st->bytes += len;
        const uint8_t *payload;
        uint32_t plen;
        size_t off;
        if (journal_snapshot_check(buf, len, t, &payload, &plen, &off, &why) != 0)
            ERR(JOURNAL_E_CORRUPT, "journal: %s offset %zu: %s (in a snapshot)", path, off, why);
        if (rp && rp->snapshot && rp->snapshot(rp->ctx, t, payload, plen) != 0)
            ERR(JOURNAL_E_REPLAY, "journal: %s: the snapshot was refused (not a valid snapshot payload)", path);
        snap = t;
        st->snapshot = t;
        st->snapshot_bytes = plen;
        st->last_ticket = t;
        hub_free(buf);
        buf = NULL;
    }

    uint64_t last = 0;
    for (size_t i = 0; i < p->nsegs; i++) {
        const char *path = p->segs[i].path;
        bool is_last = i + 1 == p->nsegs;
        hub_free(buf);
        buf = NULL;
        if ((rc = rd_read_fd(io, p->segs[i].fd, &buf, &len)) != 0)
            ERR(JOURNAL_E_IO, "journal: %s: cannot read: %s", path, strerror(-rc));
        st->bytes += len;
        st->segments++;
        if (journal_file_hdr_decode(buf, len, &h, &why) != 0) {
            /* The hub is creating it (header not written or not yet
             * visible), or a crash did: it holds no records either way. */
            if (is_last && (len <= JOURNAL_FILE_HDR || journal_all_zero(buf, len))) {
                st->unread_bytes = len;
                st->unread_why = len ? why : NULL;
                break;
            }
            ERR(JOURNAL_E_CORRUPT, "journal: %s offset 0: %s", path, why);
        }
        if (h.kind != JOURNAL_KIND_SEGMENT || h.a != p->segs[i].n)
            ERR(JOURNAL_E_CORRUPT, "journal: %s offset 0: header does not match the file name", path);
        if (i == 0 && history) {
            /* Archives older than this one were removed (retention): the
             * history starts here, and says so. */
            st->starts_after = h.b;
            last = h.b;
        } else {
            char chain[JOURNAL_ERR_MAX];
            if (journal_chain_check(path, i == 0, h.b, snap, last, chain, sizeof chain) != 0)
                ERR(JOURNAL_E_CORRUPT, "%s", chain);
            last = h.b;
        }
        size_t off = JOURNAL_FILE_HDR;
        for (;;) {
            journal_scan_t s;
            journal_scan(buf, len, off, JOURNAL_MAX_RECORD, &s);
            if (s.kind == JOURNAL_SCAN_END)
                break;
            if (s.kind == JOURNAL_SCAN_CORRUPT)
                ERR(JOURNAL_E_CORRUPT, "journal: %s offset %zu: %s", path, s.offset, s.why);
            if (s.kind == JOURNAL_SCAN_TORN) {
                if (!is_last)
                    ERR(JOURNAL_E_CORRUPT, "journal: %s offset %zu: %s in a sealed segment", path, s.offset, s.why);
                st->unread_bytes = len - off;
                st->unread_why = s.why;
                break;
            }
            if (s.ticket <= last || s.ticket < h.a)
                ERR(JOURNAL_E_CORRUPT, "journal: %s offset %zu: ticket %" PRIu64 " out of order (after %" PRIu64 ")",
                    path, off, s.ticket, last);
            last = s.ticket;
            if (s.ticket > snap) {
                if (rp && rp->record && rp->record(rp->ctx, s.ticket, s.payload, s.len) != 0)
                    ERR(JOURNAL_E_REPLAY, "journal: %s offset %zu: ticket %" PRIu64 " was refused (not a valid record)",
                        path, off, s.ticket);
                if (st->records++ == 0)
                    st->first_ticket = s.ticket;
                st->last_ticket = s.ticket;
            } else {
                st->covered++;
            }
            off = s.next;
        }
    }
out:
    hub_free(buf);
    return ret;
}

static int read_dir(const char *dir, const journal_io_t *io, const journal_replay_t *rp, journal_read_stats_t *stats,
                    bool history, char *err, size_t errlen)
{
    journal_read_stats_t local;
    journal_read_stats_t *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (errlen)
        err[0] = '\0';
    if (dir == NULL || io == NULL) {
        if (errlen)
            snprintf(err, errlen, "journal: no directory given");
        return JOURNAL_E_INVAL;
    }
    rd_plan_t plan;
    int rc = plan_open(dir, io, &plan, history, err, errlen);
    if (rc == 1) {
        /* A snapshot moved what we listed: list again. A second vanishing
         * in a row means something else is deleting files: report it. */
        st->relisted = 1;
        rc = plan_open(dir, io, &plan, history, err, errlen);
        if (rc == 1)
            return JOURNAL_E_IO;
    }
    if (rc)
        return rc;
    rc = read_plan(&plan, io, rp, st, history, err, errlen);
    plan_close(io, &plan);
    return rc;
}

int journal_read(const char *dir, const journal_io_t *io, const journal_replay_t *rp, journal_read_stats_t *stats,
                 char *err, size_t errlen)
{
    return read_dir(dir, io, rp, stats, false, err, errlen);
}

int journal_read_history(const char *dir, const journal_io_t *io, const journal_replay_t *rp,
                         journal_read_stats_t *stats, char *err, size_t errlen)
{
    return read_dir(dir, io, rp, stats, true, err, errlen);
}
