/* loop_test.c -- the journal on a real libuv loop and the real disk: group
 * commit through the threadpool, done_cb on the loop thread, data surviving
 * a reopen, and the flock directory lock. Runs in a mkdtemp directory.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "journal_fixture.h"
#include "log/log.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s/mhtas-journal-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.') {
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    return rmdir(dir);
}

typedef struct turn {
    journal_t *j;
    uv_loop_t *loop;
    uv_timer_t timer;
    int turns, per_turn;
    uint64_t next_id;
    uint64_t last_ticket;
    fx_done_t done;
    unsigned long loop_thread;
    int wrong_thread;
    int batches_with_many;
} turn_t;

static void on_done(void *ctx, const journal_result_t *r)
{
    turn_t *t = ctx;
    if ((unsigned long)uv_thread_self() != t->loop_thread)
        t->wrong_thread++;
    if (r->last > r->first)
        t->batches_with_many++;
    fx_done_cb(&t->done, r);
}

/* One "loop turn" of the hub: append a few records, commit. Runs faster
 * than the fsyncs, so batches queue behind the one in flight. */
static void on_timer(uv_timer_t *h)
{
    turn_t *t = h->data;
    for (int i = 0; i < t->per_turn; i++)
        assert_int_equal(fx_append(t->j, t->next_id++, &t->last_ticket), 0);
    assert_int_equal(journal_commit(t->j, t->loop, on_done, t), 0);
    if (--t->turns == 0)
        uv_timer_stop(h);
}

static void test_commit_on_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char err[512];
    fx_list_t l = { 0 };
    journal_replay_t rp = fx_replay(&l);
    journal_opts_t o = { .segment_bytes = 16 << 10, .max_record = 4096 };
    turn_t t = { .loop = &loop, .turns = 40, .per_turn = 5, .loop_thread = (unsigned long)uv_thread_self() };
    assert_int_equal(journal_open(&t.j, dir, journal_io_posix(), &o, &rp, err, sizeof err), 0);

    /* a second opener of the same directory is refused (flock) */
    journal_t *j2 = NULL;
    assert_int_equal(journal_open(&j2, dir, journal_io_posix(), &o, &rp, err, sizeof err), JOURNAL_E_LOCKED);
    assert_non_null(strstr(err, "is in use by another process"));

    uv_timer_init(&loop, &t.timer);
    t.timer.data = &t;
    uv_timer_start(&t.timer, on_timer, 0, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_false(journal_in_flight(t.j));
    assert_int_equal(t.done.errors, 0);
    assert_int_equal(t.wrong_thread, 0);
    assert_true(t.done.calls > 0);
    assert_int_equal(t.done.acked_upto, 200);
    assert_int_equal(journal_durable(t.j), 200);
    print_message("loop: 200 records in %d batches (%d with several records)\n", t.done.calls,
                  t.batches_with_many);
    assert_int_equal(journal_close(t.j), 0);
    uv_close((uv_handle_t *)&t.timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* everything survives a reopen */
    journal_t *j = NULL;
    assert_int_equal(journal_open(&j, dir, journal_io_posix(), &o, &rp, err, sizeof err), 0);
    assert_int_equal(l.n, 200);
    for (size_t i = 0; i < l.n; i++) {
        assert_int_equal(l.r[i].ticket, i + 1);
        assert_int_equal(l.r[i].id, i);
    }
    assert_int_equal(l.bad, 0);
    journal_close(j);
    fx_free(&l);
}

/* close from inside done_cb is deferred until the callback returns */
static void close_in_cb(void *ctx, const journal_result_t *r)
{
    journal_t **jp = ctx;
    assert_int_equal(r->status, 0);
    assert_int_equal(journal_close(*jp), 0);
    *jp = NULL;
}

static void test_close_inside_done_cb(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    journal_t *j = NULL;
    assert_int_equal(journal_open(&j, dir, journal_io_posix(), NULL, NULL, err, sizeof err), 0);
    uint64_t t;
    assert_int_equal(fx_append(j, 1, &t), 0);
    assert_int_equal(journal_commit(j, &loop, close_in_cb, &j), 0);
    assert_int_equal(journal_close(j), JOURNAL_E_BUSY);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_null(j);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    hub_log_level = HUB_LOG_WARN;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_on_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_inside_done_cb, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
