/* read_test.c -- journal_read(), the read-only reader for tools
 * (server/journal/journal_read.c): it reads what journal_open would replay,
 * takes no lock and writes nothing, stops quietly at an incomplete tail of
 * the last segment (reporting the bytes left), refuses damage elsewhere with
 * file and offset, and survives a snapshot/compaction that deletes files
 * while it reads. In memory (journal_io_mem) and on a real directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal/journal_io.h"
#include "journal_fixture.h"
#include "log/log.h"

/* Writes count records (ids start..) in batches of 1..7. */
static void write_records(journal_t *j, uint64_t start, int count)
{
    fx_done_t d = { 0 };
    for (int i = 0; i < count;) {
        int batch = 1 + (i * 5) % 7;
        for (int k = 0; k < batch && i < count; k++, i++) {
            uint64_t t;
            assert_int_equal(fx_append(j, start + (uint64_t)i, &t), 0);
        }
        assert_int_equal(journal_commit_sync(j, fx_done_cb, &d), 0);
    }
    assert_int_equal(d.errors, 0);
}

static journal_t *open_dir(const journal_io_t *io, const char *dir, uint64_t seg_bytes)
{
    journal_t *j = NULL;
    char err[512];
    fx_list_t l = { 0 };
    journal_opts_t o = { .segment_bytes = seg_bytes, .max_record = 4096 };
    journal_replay_t rp = fx_replay(&l);
    int rc = journal_open(&j, dir, io, &o, &rp, err, sizeof err);
    if (rc)
        fail_msg("open: %d %s", rc, err);
    fx_free(&l);
    return j;
}

/* Records ids id0.. for tickets 1..n, as a snapshot's pairs or records. */
static void expect_all(const fx_list_t *l, uint64_t n, uint64_t id0)
{
    assert_int_equal(l->bad, 0);
    assert_int_equal(l->n, n);
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(l->r[i].ticket, i + 1);
        assert_int_equal(l->r[i].id, id0 + i);
    }
}

static uint64_t writes(journal_io_mem_t *m)
{
    return journal_io_mem_calls(m, JOURNAL_IO_OP_PWRITE) + journal_io_mem_calls(m, JOURNAL_IO_OP_FTRUNCATE) +
           journal_io_mem_calls(m, JOURNAL_IO_OP_UNLINK) + journal_io_mem_calls(m, JOURNAL_IO_OP_RENAME) +
           journal_io_mem_calls(m, JOURNAL_IO_OP_LOCK) + journal_io_mem_calls(m, JOURNAL_IO_OP_FDATASYNC) +
           journal_io_mem_calls(m, JOURNAL_IO_OP_FSYNC) + journal_io_mem_calls(m, JOURNAL_IO_OP_FSYNC_DIR);
}

typedef struct seglist {
    uint64_t v[64];
    int n;
} seglist_t;

static int seg_cb(void *ud, const char *name)
{
    seglist_t *s = ud;
    uint64_t v;
    if (journal_parse_name(name, &v) == JOURNAL_KIND_SEGMENT && s->n < 64)
        s->v[s->n++] = v;
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static seglist_t segs_of(const journal_io_t *io, const char *dir)
{
    seglist_t s = { .n = 0 };
    io->list(io->ctx, dir, seg_cb, &s);
    qsort(s.v, (size_t)s.n, sizeof s.v[0], cmp64);
    return s;
}

static void seg_path(char *out, size_t n, const char *dir, uint64_t first)
{
    char name[JOURNAL_NAME_MAX];
    journal_seg_name(name, first);
    snprintf(out, n, "%s/%s", dir, name);
}

/* ----------------------------------------------------------- in memory */

static void test_reads_while_locked_and_writes_nothing(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(1);
    const journal_io_t *io = journal_io_mem_io(m);
    journal_t *j = open_dir(io, JDIR, 600);
    write_records(j, 100, 60);
    assert_true(segs_of(io, JDIR).n >= 3);

    /* The journal is open (and locked): the reader does not need the lock. */
    uint64_t w0 = writes(m);
    fx_list_t l = { 0 };
    journal_replay_t rp = fx_replay(&l);
    journal_read_stats_t st;
    char err[512];
    assert_int_equal(journal_read(JDIR, io, &rp, &st, err, sizeof err), 0);
    assert_int_equal(writes(m), w0);
    expect_all(&l, 60, 100);
    assert_int_equal(st.records, 60);
    assert_int_equal(st.first_ticket, 1);
    assert_int_equal(st.last_ticket, 60);
    assert_int_equal(st.snapshot, 0);
    assert_int_equal(st.unread_bytes, 0);
    assert_int_equal(st.segments, (size_t)segs_of(io, JDIR).n);
    assert_int_equal(st.relisted, 0);
    fx_free(&l);

    /* NULL replay and stats are fine. */
    assert_int_equal(journal_read(JDIR, io, NULL, NULL, err, sizeof err), 0);
    /* The journal goes on working after being read. */
    write_records(j, 160, 5);
    assert_int_equal(journal_close(j), 0);
    journal_io_mem_free(m);
}

static void test_empty_directory(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(2);
    const journal_io_t *io = journal_io_mem_io(m);
    journal_read_stats_t st;
    char err[256];
    fx_list_t l = { 0 };
    journal_replay_t rp = fx_replay(&l);
    assert_int_equal(journal_read(JDIR, io, &rp, &st, err, sizeof err), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(st.segments, 0);
    journal_io_mem_free(m);
}

/* A batch being written (or torn by a crash) at the end of the last
 * segment: read up to it, report the rest, touch nothing. */
static void test_incomplete_tail_of_last_segment(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(3);
    const journal_io_t *io = journal_io_mem_io(m);
    journal_t *j = open_dir(io, JDIR, 600);
    write_records(j, 1, 30);
    assert_int_equal(journal_close(j), 0);
    seglist_t s = segs_of(io, JDIR);
    char last[256];
    seg_path(last, sizeof last, JDIR, s.v[s.n - 1]);

    /* Cut every possible prefix of one more record onto the file. */
    uint8_t rec[600], pl[512];
    size_t pn = fx_payload(31, pl);
    journal_rec_encode(rec, 31, pl, (uint32_t)pn);
    size_t rn = journal_rec_size(pn);
    size_t len;
    uint8_t *orig = journal_io_mem_get(m, last, &len);
    uint8_t *buf = malloc(len + rn + 64);
    memcpy(buf, orig, len);
    for (size_t cut = 1; cut < rn; cut += 7) {
        memcpy(buf + len, rec, cut);
        assert_int_equal(journal_io_mem_put(m, last, buf, len + cut), 0);
        uint64_t w0 = writes(m);
        fx_list_t l = { 0 };
        journal_replay_t rp = fx_replay(&l);
        journal_read_stats_t st;
        char err[512];
        int rc = journal_read(JDIR, io, &rp, &st, err, sizeof err);
        if (rc)
            fail_msg("cut %zu: %s", cut, err);
        expect_all(&l, 30, 1);
        assert_int_equal(st.unread_bytes, cut);
        assert_non_null(st.unread_why);
        assert_int_equal(writes(m), w0);
        size_t after;
        uint8_t *now = journal_io_mem_get(m, last, &after);
        assert_int_equal(after, len + cut); /* not trimmed */
        hub_free(now);
        fx_free(&l);
    }
    /* Zeros where the write has not landed yet: the same. */
    memset(buf + len, 0, 64);
    assert_int_equal(journal_io_mem_put(m, last, buf, len + 64), 0);
    journal_read_stats_t st;
    char err[512];
    assert_int_equal(journal_read(JDIR, io, NULL, &st, err, sizeof err), 0);
    assert_int_equal(st.unread_bytes, 64);
    assert_int_equal(st.records, 30);

    /* A new segment whose header is not written yet. */
    assert_int_equal(journal_io_mem_put(m, last, orig, len), 0);
    char next[256];
    seg_path(next, sizeof next, JDIR, 31);
    assert_int_equal(journal_io_mem_put(m, next, (const uint8_t *)"MHTA", 4), 0);
    assert_int_equal(journal_read(JDIR, io, NULL, &st, err, sizeof err), 0);
    assert_int_equal(st.records, 30);
    assert_int_equal(st.unread_bytes, 4);
    hub_free(orig);
    free(buf);
    journal_io_mem_free(m);
}

static void test_corruption_refused_with_file_and_offset(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(4);
    const journal_io_t *io = journal_io_mem_io(m);
    journal_t *j = open_dir(io, JDIR, 600);
    write_records(j, 1, 40);
    assert_int_equal(journal_close(j), 0);
    seglist_t s = segs_of(io, JDIR);
    assert_true(s.n >= 3);
    char err[512];

    /* A flipped byte in a sealed segment's record. */
    char sealed[256];
    seg_path(sealed, sizeof sealed, JDIR, s.v[1]);
    size_t len;
    uint8_t *orig = journal_io_mem_get(m, sealed, &len);
    uint8_t *bad = malloc(len);
    memcpy(bad, orig, len);
    bad[JOURNAL_FILE_HDR + JOURNAL_REC_HDR + 3] ^= 0x40;
    journal_io_mem_put(m, sealed, bad, len);
    fx_list_t l = { 0 };
    journal_replay_t rp = fx_replay(&l);
    assert_int_equal(journal_read(JDIR, io, &rp, NULL, err, sizeof err), JOURNAL_E_CORRUPT);
    assert_non_null(strstr(err, sealed));
    assert_non_null(strstr(err, "offset 40"));
    fx_free(&l);

    /* A sealed segment cut short is not a torn tail. */
    journal_io_mem_put(m, sealed, orig, len - 5);
    assert_int_equal(journal_read(JDIR, io, NULL, NULL, err, sizeof err), JOURNAL_E_CORRUPT);
    assert_non_null(strstr(err, "sealed segment"));

    /* A missing segment in the middle breaks the chain. */
    journal_io_mem_put(m, sealed, orig, len);
    assert_int_equal(journal_read(JDIR, io, NULL, NULL, err, sizeof err), 0);
    io->unlink(io->ctx, sealed);
    assert_int_equal(journal_read(JDIR, io, NULL, NULL, err, sizeof err), JOURNAL_E_CORRUPT);
    assert_non_null(strstr(err, "missing"));
    journal_io_mem_put(m, sealed, orig, len);

    /* In the last segment: damage followed by valid data is corruption. */
    char last[256];
    seg_path(last, sizeof last, JDIR, s.v[s.n - 1]);
    size_t llen;
    uint8_t *lorig = journal_io_mem_get(m, last, &llen);
    uint8_t *lbad = malloc(llen);
    memcpy(lbad, lorig, llen);
    lbad[JOURNAL_FILE_HDR + 2] ^= 0x01; /* first record's length */
    journal_io_mem_put(m, last, lbad, llen);
    assert_int_equal(journal_read(JDIR, io, NULL, NULL, err, sizeof err), JOURNAL_E_CORRUPT);
    assert_non_null(strstr(err, last));

    journal_io_mem_put(m, last, lorig, llen);
    hub_free(orig);
    hub_free(lorig);
    free(bad);
    free(lbad);
    journal_io_mem_free(m);
}

static int refuse_third(void *ctx, uint64_t ticket, const uint8_t *p, size_t len)
{
    (void)ctx;
    (void)p;
    (void)len;
    return ticket == 3;
}

static void test_refused_record(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(5);
    const journal_io_t *io = journal_io_mem_io(m);
    journal_t *j = open_dir(io, JDIR, 0);
    write_records(j, 1, 5);
    assert_int_equal(journal_close(j), 0);
    journal_replay_t rp = { NULL, refuse_third, NULL };
    char err[512];
    assert_int_equal(journal_read(JDIR, io, &rp, NULL, err, sizeof err), JOURNAL_E_REPLAY);
    assert_non_null(strstr(err, "ticket 3"));
    assert_non_null(strstr(err, "offset"));
    journal_io_mem_free(m);
}

static void take_snapshot_in(journal_t *j, const journal_io_t *io, const char *dir)
{
    /* The snapshot's payload: every record so far, as fixture pairs. */
    fx_list_t all = { 0 };
    journal_replay_t rp = fx_replay(&all);
    char err[512];
    assert_int_equal(journal_read(dir, io, &rp, NULL, err, sizeof err), 0);
    size_t len;
    uint8_t *p = fx_snapshot_payload(&all, journal_durable(j), &len);
    assert_int_equal(journal_snapshot(j, p, len, journal_durable(j)), 0);
    free(p);
    fx_free(&all);
}

static void take_snapshot(journal_t *j, const journal_io_t *io)
{
    take_snapshot_in(j, io, JDIR);
}

static void test_snapshot_then_records(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(6);
    const journal_io_t *io = journal_io_mem_io(m);
    journal_t *j = open_dir(io, JDIR, 600);
    write_records(j, 1, 25);
    take_snapshot(j, io);
    write_records(j, 26, 15);
    fx_list_t l = { 0 };
    journal_replay_t rp = fx_replay(&l);
    journal_read_stats_t st;
    char err[512];
    assert_int_equal(journal_read(JDIR, io, &rp, &st, err, sizeof err), 0);
    expect_all(&l, 40, 1);
    assert_int_equal(l.snap, 25);
    assert_int_equal(st.snapshot, 25);
    assert_int_equal(st.records, 15);
    assert_int_equal(st.first_ticket, 26);
    assert_int_equal(st.last_ticket, 40);
    fx_free(&l);
    assert_int_equal(journal_close(j), 0);
    journal_io_mem_free(m);
}

/* Snapshots archive the segments they cover (seg- -> arch-, nothing is
 * deleted): journal_open and journal_read never read them, the history
 * reader reads every record ever written, in order; with the oldest
 * archive removed (retention) it starts after it and says where. */
static int arch_cb(void *ud, const char *name)
{
    uint64_t v;
    if (journal_parse_name(name, &v) == JOURNAL_KIND_ARCHIVE)
        ++*(int *)ud;
    return 0;
}

static void test_history_reads_archived_segments(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(9);
    const journal_io_t *io = journal_io_mem_io(m);
    journal_t *j = open_dir(io, JDIR, 600);
    write_records(j, 1, 40);
    take_snapshot(j, io);
    write_records(j, 41, 30);
    take_snapshot(j, io);
    write_records(j, 71, 20);
    int archs = 0;
    io->list(io->ctx, JDIR, arch_cb, &archs);
    assert_true(archs >= 2);
    assert_int_equal(journal_io_mem_calls(m, JOURNAL_IO_OP_UNLINK) > 0, 1); /* old snapshots only */

    /* The replay path: the newest snapshot and what follows it. */
    fx_list_t l = { 0 };
    journal_replay_t rp = fx_replay(&l);
    journal_read_stats_t st;
    char err[512];
    assert_int_equal(journal_read(JDIR, io, &rp, &st, err, sizeof err), 0);
    assert_int_equal(st.snapshot, 70);
    assert_int_equal(st.records, 20);
    fx_free(&l);

    /* The history: all 90 records, no snapshot. */
    fx_list_t h = { 0 };
    journal_replay_t hp = fx_replay(&h);
    if (journal_read_history(JDIR, io, &hp, &st, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(h.snap, 0);
    expect_all(&h, 90, 1);
    assert_int_equal(st.starts_after, 0);
    assert_int_equal(st.records, 90);
    fx_free(&h);

    /* A restart replays only what follows the snapshot, and keeps the archive. */
    assert_int_equal(journal_close(j), 0);
    j = open_dir(io, JDIR, 600);
    int archs2 = 0;
    io->list(io->ctx, JDIR, arch_cb, &archs2);
    assert_true(archs2 >= archs); /* open may archive a leftover the last snapshot covered */

    /* Retention removed the oldest archive: the history starts after it. */
    char name[JOURNAL_NAME_MAX], path[256];
    journal_arch_name(name, 1);
    snprintf(path, sizeof path, "%s/%s", JDIR, name);
    assert_int_equal(io->unlink(io->ctx, path), 0);
    fx_list_t r = { 0 };
    journal_replay_t rr = fx_replay(&r);
    assert_int_equal(journal_read_history(JDIR, io, &rr, &st, err, sizeof err), 0);
    assert_true(st.starts_after > 0);
    assert_int_equal(r.n, 90 - st.starts_after);
    assert_int_equal(r.r[0].ticket, st.starts_after + 1);
    fx_free(&r);

    /* A gap in the middle is damage, named: remove the second archive left. */
    uint64_t left[2];
    int nleft = 0;
    for (uint64_t t = 2; t <= 90 && nleft < 2; t++) {
        journal_arch_name(name, t);
        snprintf(path, sizeof path, "%s/%s", JDIR, name);
        int fd;
        if (io->open(io->ctx, path, JOURNAL_IO_RDONLY, &fd) == 0) {
            io->close(io->ctx, fd);
            left[nleft++] = t;
        }
    }
    assert_int_equal(nleft, 2);
    journal_arch_name(name, left[1]);
    snprintf(path, sizeof path, "%s/%s", JDIR, name);
    assert_int_equal(io->unlink(io->ctx, path), 0);
    fx_list_t g = { 0 };
    journal_replay_t gp = fx_replay(&g);
    assert_int_equal(journal_read_history(JDIR, io, &gp, &st, err, sizeof err), JOURNAL_E_CORRUPT);
    assert_non_null(strstr(err, "missing"));
    fx_free(&g);
    assert_int_equal(journal_close(j), 0);
    journal_io_mem_free(m);
}

/* ------------------------------- a snapshot taken while the tool reads */

typedef struct racer {
    journal_io_t io;           /* what the reader is given */
    const journal_io_t *inner; /* the real one */
    journal_t *j;              /* the "hub", appending to the same directory */
    int on_open;               /* take a snapshot just before the n-th open (0: never) */
    int on_fsize;              /* ... just before the n-th fsize */
    int opens, fsizes;
} racer_t;

static int r_open(void *ctx, const char *path, int flags, int *fd)
{
    racer_t *r = ctx;
    assert_int_equal(flags, JOURNAL_IO_RDONLY); /* the reader only ever reads */
    if (++r->opens == r->on_open)
        take_snapshot(r->j, r->inner);
    return r->inner->open(r->inner->ctx, path, flags, fd);
}

static int r_fsize(void *ctx, int fd, uint64_t *size)
{
    racer_t *r = ctx;
    if (++r->fsizes == r->on_fsize) {
        take_snapshot(r->j, r->inner);
        write_records(r->j, 1000, 3); /* and the hub goes on */
    }
    return r->inner->fsize(r->inner->ctx, fd, size);
}

static int r_close(void *ctx, int fd)
{
    racer_t *r = ctx;
    return r->inner->close(r->inner->ctx, fd);
}
static int64_t r_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    racer_t *r = ctx;
    return r->inner->pread(r->inner->ctx, fd, buf, len, off);
}
static int r_list(void *ctx, const char *dir, journal_io_list_cb cb, void *ud)
{
    racer_t *r = ctx;
    return r->inner->list(r->inner->ctx, dir, cb, ud);
}

static racer_t racer(const journal_io_t *inner, journal_t *j)
{
    racer_t r = { .inner = inner, .j = j };
    r.io = (journal_io_t){ .open = r_open, .close = r_close, .pread = r_pread, .fsize = r_fsize, .list = r_list };
    /* No write operation: calling one would crash the test. */
    return r;
}

static void test_compaction_between_listing_and_open(void **state)
{
    (void)state;
    for (int at = 1; at <= 4; at++) {
        journal_io_mem_t *m = journal_io_mem_new(7);
        const journal_io_t *io = journal_io_mem_io(m);
        journal_t *j = open_dir(io, JDIR, 600);
        write_records(j, 1, 50);
        take_snapshot(j, io); /* snap-10 style: an old snapshot to be deleted */
        write_records(j, 51, 40);
        assert_true(segs_of(io, JDIR).n >= 3);
        racer_t r = racer(io, j);
        r.io.ctx = &r;
        r.on_open = at; /* 1: the old snapshot; 2..: its segments */
        fx_list_t l = { 0 };
        journal_replay_t rp = fx_replay(&l);
        journal_read_stats_t st;
        char err[512];
        int rc = journal_read(JDIR, &r.io, &rp, &st, err, sizeof err);
        if (rc)
            fail_msg("open #%d: %s", at, err);
        expect_all(&l, 90, 1);
        assert_int_equal(st.relisted, 1);
        assert_int_equal(st.snapshot, 90);
        assert_int_equal(l.snap, 90);
        fx_free(&l);
        assert_int_equal(journal_close(j), 0);
        journal_io_mem_free(m);
    }
}

static void test_compaction_after_open_is_invisible(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(8);
    const journal_io_t *io = journal_io_mem_io(m);
    journal_t *j = open_dir(io, JDIR, 600);
    write_records(j, 1, 30);
    take_snapshot(j, io);
    write_records(j, 31, 40);
    racer_t r = racer(io, j);
    r.io.ctx = &r;
    r.on_fsize = 1; /* every file is open: delete them all under the reader */
    fx_list_t l = { 0 };
    journal_replay_t rp = fx_replay(&l);
    journal_read_stats_t st;
    char err[512];
    int rc = journal_read(JDIR, &r.io, &rp, &st, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    expect_all(&l, 70, 1); /* the cut it opened: snapshot 30 + 40 records */
    assert_int_equal(st.relisted, 0);
    assert_int_equal(st.snapshot, 30);
    fx_free(&l);
    assert_int_equal(journal_close(j), 0);
    journal_io_mem_free(m);
}

/* ----------------------------------------------------- a real directory */

static void test_real_directory_while_hub_writes(void **state)
{
    (void)state;
    char dir[] = "/tmp/mhtas-read-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const journal_io_t *io = journal_io_posix();
    journal_t *j = open_dir(io, dir, 700);
    write_records(j, 1, 45);
    take_snapshot_in(j, io, dir);
    assert_int_equal(journal_close(j), 0);
    /* Reopen and write more, and keep the journal open (locked) like a hub. */
    j = open_dir(io, dir, 700);
    write_records(j, 46, 30);
    seglist_t s = segs_of(io, dir);
    char last[512];
    seg_path(last, sizeof last, dir, s.v[s.n - 1]);
    /* Half a record at the end, as if a batch were being written now. */
    uint8_t rec[600], pl[512];
    size_t pn = fx_payload(999, pl);
    journal_rec_encode(rec, journal_next_ticket(j), pl, (uint32_t)pn);
    int fd = open(last, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rec, 33), 33);
    close(fd);
    struct stat before, after;
    assert_int_equal(stat(last, &before), 0);

    fx_list_t l = { 0 };
    journal_replay_t rp = fx_replay(&l);
    journal_read_stats_t st;
    char err[512];
    int rc = journal_read(dir, io, &rp, &st, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(l.bad, 0);
    assert_int_equal(st.unread_bytes, 33);
    assert_int_equal(st.last_ticket, 75);
    assert_true(st.snapshot >= 45);
    expect_all(&l, 75, 1);
    assert_int_equal(stat(last, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    fx_free(&l);

    /* A damaged sealed segment on disk: refused with its path. */
    if (s.n >= 2) {
        char sealed[512];
        seg_path(sealed, sizeof sealed, dir, s.v[0]);
        fd = open(sealed, O_RDWR);
        assert_true(fd >= 0);
        uint8_t b;
        assert_int_equal(pread(fd, &b, 1, JOURNAL_FILE_HDR + JOURNAL_REC_HDR + 1), 1);
        b ^= 0x10;
        assert_int_equal(pwrite(fd, &b, 1, JOURNAL_FILE_HDR + JOURNAL_REC_HDR + 1), 1);
        close(fd);
        assert_int_equal(journal_read(dir, io, NULL, NULL, err, sizeof err), JOURNAL_E_CORRUPT);
        assert_non_null(strstr(err, sealed));
    }
    assert_int_equal(journal_close(j), 0);
    /* No such directory: an I/O error naming it. */
    char gone[600];
    snprintf(gone, sizeof gone, "%s/nope", dir);
    assert_int_equal(journal_read(gone, io, NULL, NULL, err, sizeof err), JOURNAL_E_IO);
    assert_non_null(strstr(err, gone));
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    hub_log_level = HUB_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_while_locked_and_writes_nothing),
        cmocka_unit_test(test_empty_directory),
        cmocka_unit_test(test_incomplete_tail_of_last_segment),
        cmocka_unit_test(test_corruption_refused_with_file_and_offset),
        cmocka_unit_test(test_refused_record),
        cmocka_unit_test(test_snapshot_then_records),
        cmocka_unit_test(test_history_reads_archived_segments),
        cmocka_unit_test(test_compaction_between_listing_and_open),
        cmocka_unit_test(test_compaction_after_open_is_invisible),
        cmocka_unit_test(test_real_directory_while_hub_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
