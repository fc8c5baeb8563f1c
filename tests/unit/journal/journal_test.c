/* journal_test.c -- server/journal/journal.c through the in-memory io:
 * replay across rotation, torn tails, corruption refusal with file and
 * offset, snapshots, the directory lock, injected I/O errors at every file
 * operation in turn, and a full disk. The power-loss loop is in
 * crash_test.c, the real-disk libuv test in loop_test.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "journal/journal_io.h"
#include "journal_fixture.h"
#include "log/log.h"

typedef struct segs {
    uint64_t v[256];
    int n;
} segs_t;

static int seg_cb(void *ud, const char *name)
{
    segs_t *s = ud;
    uint64_t v;
    if (journal_parse_name(name, &v) == JOURNAL_KIND_SEGMENT && s->n < 256)
        s->v[s->n++] = v;
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static segs_t list_segs(journal_io_mem_t *m)
{
    segs_t s = { .n = 0 };
    const journal_io_t *io = journal_io_mem_io(m);
    io->list(io->ctx, JDIR, seg_cb, &s);
    qsort(s.v, (size_t)s.n, sizeof s.v[0], cmp64);
    return s;
}

static void seg_file(char *out, size_t n, uint64_t first)
{
    char name[JOURNAL_NAME_MAX];
    journal_seg_name(name, first);
    snprintf(out, n, JDIR "/%s", name);
}

/* Writes count records (ids start..) in batches of up to 7, commit_sync. */
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
    assert_int_equal(journal_durable(j), journal_next_ticket(j) - 1);
}

static journal_t *open_ok(journal_io_mem_t *m, uint64_t seg_bytes, fx_list_t *l)
{
    journal_t *j = NULL;
    char err[512];
    journal_opts_t o = { .segment_bytes = seg_bytes, .max_record = 4096 };
    journal_replay_t rp = fx_replay(l);
    int rc = journal_open(&j, JDIR, journal_io_mem_io(m), &o, &rp, err, sizeof err);
    if (rc)
        fail_msg("open: %d %s", rc, err);
    assert_int_equal(l->bad, 0);
    return j;
}

static int open_err(journal_io_mem_t *m, char *err, size_t errlen)
{
    journal_t *j = NULL;
    fx_list_t l = { 0 };
    journal_opts_t o = { .segment_bytes = 512, .max_record = 4096 };
    journal_replay_t rp = fx_replay(&l);
    int rc = journal_open(&j, JDIR, journal_io_mem_io(m), &o, &rp, err, errlen);
    assert_null(j);
    fx_free(&l);
    return rc;
}

/* ids id0.. with tickets 1.. */
static void expect_sequence(const fx_list_t *l, uint64_t first_ticket, uint64_t n, uint64_t id0)
{
    assert_int_equal(l->n, n);
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(l->r[i].ticket, first_ticket + i);
        assert_int_equal(l->r[i].id, id0 + i);
    }
}

static void test_round_trip_rotation(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(1);
    fx_list_t l = { 0 };
    journal_t *j = open_ok(m, 1024, &l);
    assert_int_equal(l.n, 0);
    assert_int_equal(journal_next_ticket(j), 1);
    write_records(j, 1000, 200);
    assert_int_equal(journal_close(j), 0);
    assert_true(list_segs(m).n > 10);

    j = open_ok(m, 1024, &l);
    expect_sequence(&l, 1, 200, 1000);
    write_records(j, 1200, 50); /* continue after a reopen */
    journal_close(j);
    fx_free(&l);
    j = open_ok(m, 1024, &l);
    expect_sequence(&l, 1, 250, 1000);
    journal_close(j);
    fx_free(&l);
    journal_io_mem_free(m);
}

static void test_too_big_and_failfast(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(2);
    fx_list_t l = { 0 };
    journal_t *j = open_ok(m, 0, &l);
    static uint8_t big[4097];
    uint64_t t;
    assert_int_equal(journal_append(j, big, sizeof big, &t), JOURNAL_E_TOOBIG);
    assert_int_equal(journal_append(j, big, 4096, &t), 0);
    assert_int_equal(journal_append(j, big, 0, &t), 0); /* empty payloads are fine */
    assert_int_equal(journal_commit_sync(j, NULL, NULL), 0);
    assert_int_equal(journal_durable(j), 2);
    assert_string_equal(journal_strerror(JOURNAL_E_NOSPACE), "journal disk full");
    journal_close(j);
    fx_free(&l);
    journal_io_mem_free(m);
}

/* A last segment cut short (mid-record) or with a zeroed tail is trimmed
 * and the journal carries on from there. */
static void test_torn_tail_trimmed(void **state)
{
    (void)state;
    for (int zero = 0; zero < 2; zero++) {
        journal_io_mem_t *m = journal_io_mem_new(3);
        fx_list_t l = { 0 };
        journal_t *j = open_ok(m, 1 << 20, &l);
        write_records(j, 0, 10);
        journal_close(j);
        char path[128];
        seg_file(path, sizeof path, 1);
        size_t len;
        uint8_t *data = journal_io_mem_get(m, path, &len);
        assert_non_null(data);
        /* cut 5 bytes into the 10th record's payload */
        size_t cut = len - (size_t)(8 + (9u * 7919u) % 300u) + 5 - 8;
        if (zero)
            memset(data + cut, 0, len - cut);
        journal_io_mem_put(m, path, data, zero ? len : cut);
        hub_free(data);

        j = open_ok(m, 1 << 20, &l);
        expect_sequence(&l, 1, 9, 0);
        size_t len2;
        data = journal_io_mem_get(m, path, &len2);
        assert_int_equal(len2, len - journal_rec_size(8 + (9u * 7919u) % 300u));
        hub_free(data);
        write_records(j, 100, 3);
        journal_close(j);
        fx_free(&l);
        j = open_ok(m, 1 << 20, &l);
        assert_int_equal(l.n, 12);
        assert_int_equal(l.r[9].id, 100);
        assert_int_equal(l.r[9].ticket, 10);
        journal_close(j);
        fx_free(&l);
        journal_io_mem_free(m);
    }
}

static void test_corruption_mid_segment_refused(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(4);
    fx_list_t l = { 0 };
    journal_t *j = open_ok(m, 1 << 20, &l);
    write_records(j, 0, 10);
    journal_close(j);
    char path[128];
    seg_file(path, sizeof path, 1);
    size_t len;
    uint8_t *data = journal_io_mem_get(m, path, &len);
    /* flip a payload byte of the 3rd record */
    size_t off3 = JOURNAL_FILE_HDR + journal_rec_size(8) + journal_rec_size(8 + 7919u % 300u);
    data[off3 + JOURNAL_REC_HDR + 3] ^= 1;
    journal_io_mem_put(m, path, data, len);
    hub_free(data);
    char err[512], want[256];
    assert_int_equal(open_err(m, err, sizeof err), JOURNAL_E_CORRUPT);
    snprintf(want, sizeof want, "journal: %s offset %zu: CRC mismatch followed by valid data", path, off3);
    assert_string_equal(err, want);
    /* the refusal changed nothing: it refuses again */
    assert_int_equal(open_err(m, err, sizeof err), JOURNAL_E_CORRUPT);
    fx_free(&l);
    journal_io_mem_free(m);
}

static void test_corruption_sealed_segment_refused(void **state)
{
    (void)state;
    for (int mode = 0; mode < 3; mode++) {
        journal_io_mem_t *m = journal_io_mem_new(5);
        fx_list_t l = { 0 };
        journal_t *j = open_ok(m, 1024, &l);
        write_records(j, 0, 60);
        journal_close(j);
        segs_t s = list_segs(m);
        assert_true(s.n >= 3);
        char path[128], err[512];
        seg_file(path, sizeof path, s.v[1]);
        size_t len;
        uint8_t *data = journal_io_mem_get(m, path, &len);
        if (mode == 0) { /* torn tail in a sealed segment: still refused */
            journal_io_mem_put(m, path, data, len - 3);
            assert_int_equal(open_err(m, err, sizeof err), JOURNAL_E_CORRUPT);
            assert_non_null(strstr(err, "in a sealed segment"));
        } else if (mode == 1) { /* last byte of the last record flipped */
            data[len - 1] ^= 0x40;
            journal_io_mem_put(m, path, data, len);
            assert_int_equal(open_err(m, err, sizeof err), JOURNAL_E_CORRUPT);
            assert_non_null(strstr(err, "sealed segment"));
        } else { /* a whole sealed segment missing */
            const journal_io_t *io = journal_io_mem_io(m);
            io->unlink(io->ctx, path);
            assert_int_equal(open_err(m, err, sizeof err), JOURNAL_E_CORRUPT);
            assert_non_null(strstr(err, "missing"));
        }
        assert_non_null(strstr(err, mode == 2 ? "seg-" : path));
        hub_free(data);
        fx_free(&l);
        journal_io_mem_free(m);
    }
}

static void test_snapshot(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(6);
    const journal_io_t *io = journal_io_mem_io(m);
    fx_list_t l = { 0 }, all = { 0 };
    journal_t *j = open_ok(m, 1024, &l);
    write_records(j, 0, 100);
    for (uint64_t i = 0; i < 100; i++)
        fx_push(&all, i + 1, i);
    int segs_before = fx_count(io, JDIR).segs;
    size_t sn;
    uint8_t *sp = fx_snapshot_payload(&all, 100, &sn);
    assert_int_equal(journal_snapshot(j, sp, sn, 101), JOURNAL_E_INVAL); /* not durable */
    assert_int_equal(journal_snapshot(j, sp, sn, 100), 0);
    free(sp);
    fx_names_t c = fx_count(io, JDIR);
    assert_int_equal(c.snaps, 1);
    assert_true(c.segs < segs_before);
    assert_int_equal(c.segs, 1); /* everything before the current segment */
    write_records(j, 100, 50);
    journal_close(j);

    j = open_ok(m, 1024, &l);
    assert_int_equal(l.snap, 100);
    expect_sequence(&l, 1, 150, 0); /* 100 from the snapshot, 50 replayed */
    for (uint64_t i = 100; i < 150; i++)
        fx_push(&all, i + 1, i);
    /* a second snapshot removes the first and the segments it covers */
    sp = fx_snapshot_payload(&all, 150, &sn);
    assert_int_equal(journal_snapshot(j, sp, sn, 150), 0);
    free(sp);
    c = fx_count(io, JDIR);
    assert_int_equal(c.snaps, 1);
    write_records(j, 150, 5);
    journal_close(j);
    fx_free(&l);
    j = open_ok(m, 1024, &l);
    assert_int_equal(l.snap, 150);
    expect_sequence(&l, 1, 155, 0);
    journal_close(j);
    fx_free(&l);
    fx_free(&all);
    journal_io_mem_free(m);
}

static void test_directory_lock(void **state)
{
    (void)state;
    journal_io_mem_t *m = journal_io_mem_new(7);
    fx_list_t l = { 0 };
    journal_t *j = open_ok(m, 0, &l);
    char err[256];
    assert_int_equal(open_err(m, err, sizeof err), JOURNAL_E_LOCKED);
    assert_string_equal(err, "journal directory " JDIR " is in use by another process");
    journal_close(j);
    j = open_ok(m, 0, &l); /* released by close */
    journal_close(j);
    fx_free(&l);
    journal_io_mem_free(m);
}

/* ------------------------------------------------- injected I/O errors */

/* The workload for the fault sweep: open, batches with a rotation, a
 * snapshot, more batches. Records what was acknowledged and whether any
 * acknowledgement came after the first failure. */
typedef struct sweep {
    fx_list_t appended; /* (ticket, id) of successful appends */
    uint64_t acked;     /* highest durable ticket reported OK */
    int failed_seen; /* a batch failed (or the journal did) */
    int snap_failed; /* a snapshot failed without failing the journal */
    int ack_after_failure;
    int open_rc;
} sweep_t;

static void sweep_cb(void *ctx, const journal_result_t *r)
{
    sweep_t *s = ctx;
    if (r->status) {
        s->failed_seen = 1;
        assert_non_null(r->message);
    } else if (r->last >= r->first) {
        if (s->failed_seen)
            s->ack_after_failure = 1;
        s->acked = r->durable;
    }
}

static void sweep_run(journal_io_mem_t *m, sweep_t *s)
{
    journal_t *j = NULL;
    char err[512];
    fx_list_t l = { 0 };
    journal_opts_t o = { .segment_bytes = 700, .max_record = 4096 };
    journal_replay_t rp = fx_replay(&l);
    memset(s, 0, sizeof *s);
    s->open_rc = journal_open(&j, JDIR, journal_io_mem_io(m), &o, &rp, err, sizeof err);
    fx_free(&l);
    if (s->open_rc)
        return;
    uint64_t id = 0;
    for (int b = 0; b < 12; b++) {
        for (int k = 0; k < 3; k++) {
            uint64_t t;
            int rc = fx_append(j, id, &t);
            if (rc == 0)
                fx_push(&s->appended, t, id);
            else
                assert_int_equal(rc, JOURNAL_E_FAILED);
            id++;
        }
        journal_commit_sync(j, sweep_cb, s);
        if (b == 6 && !journal_failed(j) && s->acked) {
            size_t sn;
            uint8_t *sp = fx_snapshot_payload(&s->appended, s->acked, &sn);
            int rc = journal_snapshot(j, sp, sn, s->acked);
            free(sp);
            /* a failed snapshot write leaves the journal usable; a failed
             * rename or directory sync must fail it */
            if (rc == JOURNAL_E_FAILED || journal_failed(j))
                s->failed_seen = 1;
            else if (rc)
                s->snap_failed = 1;
        }
    }
    journal_close(j);
}

/* Each file operation of the workload fails in turn (n-th call of each
 * kind). Whatever fails: nothing is acknowledged after it, and after a
 * power cut the journal reopens cleanly with every acknowledged record. */
static void test_io_error_each_op(void **state)
{
    (void)state;
    int save = hub_log_level;
    hub_log_level = -1; /* the sweep fails hundreds of times on purpose */
    journal_io_mem_t *base = journal_io_mem_new(8);
    sweep_t s;
    sweep_run(base, &s);
    assert_int_equal(s.failed_seen, 0);
    uint64_t calls[JOURNAL_IO_OP_COUNT_];
    for (int op = 0; op < JOURNAL_IO_OP_COUNT_; op++)
        calls[op] = journal_io_mem_calls(base, (journal_io_op_t)op);
    fx_free(&s.appended);
    journal_io_mem_free(base);
    int runs = 0, failures = 0;
    for (int op = 0; op < JOURNAL_IO_OP_COUNT_; op++) {
        for (uint64_t n = 1; n <= calls[op]; n++) {
            journal_io_mem_t *m = journal_io_mem_new(100 + n);
            journal_io_mem_fail_op(m, (journal_io_op_t)op, n);
            sweep_run(m, &s);
            runs++;
            failures += s.failed_seen || s.open_rc || s.snap_failed;
            if (s.ack_after_failure)
                fail_msg("op %d call %llu: acknowledged after a failure", op, (unsigned long long)n);
            journal_io_mem_crash(m);
            journal_io_mem_restart(m);
            fx_list_t l = { 0 };
            journal_t *j = open_ok(m, 700, &l);
            /* every acknowledged record is there, in order, and every
             * replayed record is one that was appended */
            size_t k = 0;
            for (size_t i = 0; i < l.n; i++) {
                while (k < s.appended.n && s.appended.r[k].ticket < l.r[i].ticket)
                    k++;
                assert_true(k < s.appended.n);
                assert_int_equal(s.appended.r[k].ticket, l.r[i].ticket);
                assert_int_equal(s.appended.r[k].id, l.r[i].id);
            }
            uint64_t have = l.n ? l.r[l.n - 1].ticket : 0;
            assert_true(have >= s.acked);
            journal_close(j);
            fx_free(&l);
            fx_free(&s.appended);
            journal_io_mem_free(m);
        }
    }
    hub_log_level = save;
    print_message("io-error sweep: %d runs, %d saw the failure\n", runs, failures);
    assert_true(failures > 0);
}

/* ----------------------------------------------------------- disk full */

static void test_disk_full(void **state)
{
    (void)state;
    int save = hub_log_level;
    hub_log_level = -1;
    journal_io_mem_t *m = journal_io_mem_new(9);
    fx_list_t l = { 0 };
    journal_t *j = open_ok(m, 1 << 20, &l);
    write_records(j, 0, 10);
    journal_io_mem_enospc_after(m, 100); /* room for a fraction of a batch */
    fx_done_t d = { 0 };
    uint64_t t, first_failed = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(fx_append(j, 10 + (uint64_t)i, &t), 0);
    first_failed = t - 4;
    assert_int_equal(journal_commit_sync(j, fx_done_cb, &d), JOURNAL_E_NOSPACE);
    assert_int_equal(d.last.status, JOURNAL_E_NOSPACE);
    assert_string_equal(d.last.message, "journal: disk full; the change was not saved");
    assert_int_equal(d.last.first, first_failed);
    assert_int_equal(d.last.durable, 10);
    assert_false(journal_failed(j));
    /* still full: fails again, cleanly */
    assert_int_equal(fx_append(j, 15, &t), 0);
    assert_int_equal(journal_commit_sync(j, fx_done_cb, &d), JOURNAL_E_NOSPACE);
    /* space returns: appends work again */
    journal_io_mem_enospc_after(m, -1);
    assert_int_equal(fx_append(j, 16, &t), 0);
    assert_int_equal(journal_commit_sync(j, fx_done_cb, &d), 0);
    assert_int_equal(d.last.durable, t);
    journal_close(j);
    /* nothing that failed is on disk, even after a power cut */
    journal_io_mem_crash(m);
    fx_free(&l);
    j = open_ok(m, 1 << 20, &l);
    assert_int_equal(l.n, 11);
    assert_int_equal(l.r[10].id, 16);
    assert_int_equal(l.r[10].ticket, t);
    journal_close(j);
    fx_free(&l);

    /* a full disk while starting a new segment */
    j = open_ok(m, 64, &l); /* tiny segments: the next batch rotates */
    journal_io_mem_enospc_after(m, 10);
    assert_int_equal(fx_append(j, 17, &t), 0);
    assert_int_equal(journal_commit_sync(j, fx_done_cb, &d), JOURNAL_E_NOSPACE);
    assert_false(journal_failed(j));
    journal_io_mem_enospc_after(m, -1);
    assert_int_equal(fx_append(j, 18, &t), 0);
    assert_int_equal(journal_commit_sync(j, fx_done_cb, &d), 0);
    journal_close(j);
    fx_free(&l);
    j = open_ok(m, 64, &l);
    assert_int_equal(l.n, 12);
    assert_int_equal(l.r[11].id, 18);
    journal_close(j);
    fx_free(&l);
    journal_io_mem_free(m);
    hub_log_level = save;
}

/* A failed sync is final: later appends fail fast, nothing is retried. */
static void test_fsync_failure_is_final(void **state)
{
    (void)state;
    int save = hub_log_level;
    hub_log_level = -1;
    journal_io_mem_t *m = journal_io_mem_new(10);
    fx_list_t l = { 0 };
    journal_t *j = open_ok(m, 1 << 20, &l);
    write_records(j, 0, 3);
    journal_io_mem_fail_op(m, JOURNAL_IO_OP_FDATASYNC, 1);
    fx_done_t d = { 0 };
    uint64_t t;
    assert_int_equal(fx_append(j, 3, &t), 0);
    assert_int_equal(journal_commit_sync(j, fx_done_cb, &d), JOURNAL_E_FAILED);
    assert_true(journal_failed(j));
    assert_int_equal(fx_append(j, 4, &t), JOURNAL_E_FAILED);
    uint64_t syncs = journal_io_mem_calls(m, JOURNAL_IO_OP_FDATASYNC);
    assert_int_equal(journal_commit_sync(j, fx_done_cb, &d), 0); /* nothing to send */
    assert_int_equal(journal_io_mem_calls(m, JOURNAL_IO_OP_FDATASYNC), syncs);
    assert_int_equal(journal_snapshot(j, "x", 1, 3), JOURNAL_E_FAILED);
    journal_close(j);
    fx_free(&l);
    journal_io_mem_free(m);
    hub_log_level = save;
}

int main(void)
{
    hub_log_level = HUB_LOG_WARN;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_rotation),
        cmocka_unit_test(test_too_big_and_failfast),
        cmocka_unit_test(test_torn_tail_trimmed),
        cmocka_unit_test(test_corruption_mid_segment_refused),
        cmocka_unit_test(test_corruption_sealed_segment_refused),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_directory_lock),
        cmocka_unit_test(test_io_error_each_op),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_fsync_failure_is_final),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
