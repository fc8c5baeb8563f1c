/* crash_test.c -- power loss at every point, through the in-memory crash
 * model of journal_io (after SQLite's test6.c).
 *
 * Each iteration (seeded, so a failure names its seed) runs a few "lives":
 * open, append random records in batches with commit_sync, now and then a
 * snapshot, and a power cut either at a random I/O operation (possibly in
 * the middle of a batch, a rotation, a snapshot or the open itself) or
 * between batches. After each cut the journal is reopened and must:
 *   - open without a corruption error;
 *   - replay every acknowledged record, and every record the previous open
 *     replayed, exactly once and in ticket order;
 *   - replay nothing that was never appended (no phantoms, no damaged
 *     payloads).
 * test_ack_before_sync_is_caught turns on the journal's test hook that
 * acknowledges before fdatasync, and checks that this loop notices.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "journal/journal_internal.h"
#include "journal/journal_io.h"
#include "journal_fixture.h"
#include "log/log.h"

#define ITERATIONS 3000
#define LIVES 4

/* What the loop exercised, printed so a silent no-op cannot pass. */
static struct {
    uint64_t reopens, acked_checked, crashes_mid_io, crashes_in_open, snapshots;
} stats;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

typedef struct model {
    fx_list_t truth;   /* replayed by the last open: must all survive */
    fx_list_t pending; /* appended in this life: may survive */
    uint64_t acked;    /* every pending ticket <= acked must survive */
} model_t;

static void on_done(void *ctx, const journal_result_t *r)
{
    model_t *m = ctx;
    if (r->status == 0 && r->durable > m->acked)
        m->acked = r->durable;
}

static bool in_list(const fx_list_t *l, uint64_t t, uint64_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->r[i].ticket == t)
            return l->r[i].id == id;
    return false;
}

/* Checks a replay against the model; returns NULL or what went wrong. */
static const char *check(const model_t *m, const fx_list_t *got)
{
    if (got->bad)
        return "a replayed payload is damaged";
    for (size_t i = 0; i < got->n; i++) {
        if (i && got->r[i].ticket <= got->r[i - 1].ticket)
            return "tickets out of order or repeated";
        uint64_t t = got->r[i].ticket, id = got->r[i].id;
        if (!in_list(&m->truth, t, id) && !in_list(&m->pending, t, id))
            return "phantom record (never appended)";
    }
    for (size_t i = 0; i < m->truth.n; i++)
        if (!in_list(got, m->truth.r[i].ticket, m->truth.r[i].id))
            return "a record replayed before is gone";
    for (size_t i = 0; i < m->pending.n; i++)
        if (m->pending.r[i].ticket <= m->acked) {
            if (!in_list(got, m->pending.r[i].ticket, m->pending.r[i].id))
                return "an acknowledged record is missing";
            stats.acked_checked++;
        }
    stats.reopens++;
    return NULL;
}

/* One iteration; returns NULL or the failure, with *lives_out the life. */
static const char *iteration(uint64_t seed, char *err, size_t errlen)
{
    uint64_t rs = seed * 0x9E3779B97F4A7C15ULL + 1;
    journal_io_mem_t *io = journal_io_mem_new(seed);
    journal_opts_t o = { .segment_bytes = 200 + rng_next(&rs) % 3000, .max_record = 4096 };
    model_t m = { 0 };
    uint64_t id = 0;
    const char *bad = NULL;
    for (int life = 0; life <= LIVES && !bad; life++) {
        bool last_life = life == LIVES;
        if (!last_life && rng_next(&rs) % 4) /* cut power at the k-th I/O */
            journal_io_mem_crash_at(io, 1 + rng_next(&rs) % 80);
        fx_list_t got = { 0 };
        journal_replay_t rp = fx_replay(&got);
        journal_t *j = NULL;
        int rc = journal_open(&j, JDIR, journal_io_mem_io(io), &o, &rp, err, errlen);
        if (rc == JOURNAL_E_CORRUPT || (rc && !journal_io_mem_crashed(io))) {
            fx_free(&got);
            bad = "open failed";
            break;
        }
        if (rc == 0) {
            if ((bad = check(&m, &got)) != NULL) {
                snprintf(err, errlen, "life %d: %s", life, bad);
                fx_free(&got);
                journal_close(j);
                break;
            }
            /* the replay is now the truth; this life starts afresh */
            fx_free(&m.truth);
            fx_free(&m.pending);
            m.truth = got;
            m.acked = 0;
            memset(&got, 0, sizeof got);
        } else {
            /* power was cut during open: the previous model still holds */
            stats.crashes_in_open++;
            fx_free(&got);
        }
        if (rc == 0 && !last_life) {
            int batches = 1 + (int)(rng_next(&rs) % 8);
            for (int b = 0; b < batches && !journal_failed(j); b++) {
                int n = 1 + (int)(rng_next(&rs) % 6);
                for (int k = 0; k < n; k++) {
                    uint64_t t;
                    if (fx_append(j, id, &t) == 0)
                        fx_push(&m.pending, t, id);
                    id++;
                }
                journal_commit_sync(j, on_done, &m);
                if (rng_next(&rs) % 10 == 0 && journal_durable(j) > 0 && !journal_failed(j)) {
                    /* snapshot everything durable: truth + acked pending */
                    fx_list_t all = { 0 };
                    for (size_t i = 0; i < m.truth.n; i++)
                        fx_push(&all, m.truth.r[i].ticket, m.truth.r[i].id);
                    for (size_t i = 0; i < m.pending.n; i++)
                        if (m.pending.r[i].ticket <= m.acked)
                            fx_push(&all, m.pending.r[i].ticket, m.pending.r[i].id);
                    size_t sn;
                    uint8_t *sp = fx_snapshot_payload(&all, journal_durable(j), &sn);
                    if (journal_snapshot(j, sp, sn, journal_durable(j)) == 0)
                        stats.snapshots++;
                    free(sp);
                    fx_free(&all);
                }
            }
            if (!journal_io_mem_crashed(io))
                journal_io_mem_crash(io); /* power cut between batches */
            else
                stats.crashes_mid_io++;
        }
        if (j)
            journal_close(j);
        journal_io_mem_restart(io);
    }
    fx_free(&m.truth);
    fx_free(&m.pending);
    journal_io_mem_free(io);
    return bad;
}

static void test_power_loss(void **state)
{
    (void)state;
    char err[512];
    for (uint64_t seed = 1; seed <= ITERATIONS; seed++) {
        const char *bad = iteration(seed, err, sizeof err);
        if (bad)
            fail_msg("seed %llu: %s: %s", (unsigned long long)seed, bad, err);
    }
    print_message("power loss: %d iterations, %llu reopens checked, %llu acknowledged records verified, "
                  "%llu cuts mid-I/O, %llu during open, %llu snapshots\n",
                  ITERATIONS, (unsigned long long)stats.reopens, (unsigned long long)stats.acked_checked,
                  (unsigned long long)stats.crashes_mid_io, (unsigned long long)stats.crashes_in_open,
                  (unsigned long long)stats.snapshots);
    assert_true(stats.acked_checked > 10000 && stats.crashes_mid_io > 1000 && stats.snapshots > 100);
}

/* The test hook acknowledges a batch before its fdatasync: the loop above
 * must catch it (otherwise it would be proving nothing). */
static void test_ack_before_sync_is_caught(void **state)
{
    (void)state;
    char err[512];
    int caught = 0;
    uint64_t first = 0;
    journal__test_ack_before_sync = 1;
    for (uint64_t seed = 1; seed <= 300; seed++)
        if (iteration(seed, err, sizeof err)) {
            if (!caught) {
                first = seed;
                print_message("ack-before-sync, seed %llu: %s\n", (unsigned long long)seed, err);
            }
            caught++;
        }
    journal__test_ack_before_sync = 0;
    print_message("ack-before-sync: caught in %d of 300 iterations (first: seed %llu)\n", caught,
                  (unsigned long long)first);
    assert_true(caught > 0);
}

int main(void)
{
    hub_log_level = -1; /* thousands of deliberate crashes */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_loss),
        cmocka_unit_test(test_ack_before_sync_is_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
