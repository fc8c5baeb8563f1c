/* outbox_test.c -- the radio outbox (client/relay/outbox.c): order per ISSI,
 * rate limit, retries with back-off, delivery reports, pruning; with a fixed
 * clock, plus a seeded random run checking that nothing is lost and that the
 * rate limit holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay/outbox.h"

typedef struct rec {
    ob_event_t ev[64];
    char detail[64][96];
    int n;
} rec_t;

static void rec_event(void *ctx, const ob_event_t *ev)
{
    rec_t *r = ctx;
    if (r->n < 64) {
        r->ev[r->n] = *ev;
        snprintf(r->detail[r->n], sizeof r->detail[0], "%s", ev->detail ? ev->detail : "");
    }
    r->n++;
}

static const ob_config_t CFG = {
    .rate_per_minute = 6, .burst = 3, .max_attempts = 5, .retry_base_ms = 1000, .retry_max_ms = 4000, .keep_ms = 60000,
};

static void msg3(ob_msg_t *m, uint32_t issi)
{
    ob_msg_init(m, issi, NULL);
    assert_int_equal(ob_msg_add_part(m, "1/3 a"), 0);
    assert_int_equal(ob_msg_add_part(m, "2/3 b"), 0);
    assert_int_equal(ob_msg_add_part(m, "3/3 c"), 0);
    assert_int_equal(ob_msg_add_part(m, "4/3 no"), -1);
}

static void test_parts_in_order_then_reports(void **state)
{
    (void)state;
    outbox_t ob;
    rec_t r = { 0 };
    ob_init(&ob, &CFG, rec_event, &r);
    ob_msg_t m;
    msg3(&m, 1001);
    assert_int_equal(ob_add(&ob, &m, 0), 0);
    assert_int_equal(ob_add(&ob, &m, 0), -1); /* once */
    assert_int_equal(ob_pending(&ob), 3);
    uint8_t refs[3];
    for (unsigned i = 0; i < 3; i++) {
        ob_part_t *p = ob_next(&ob, 0, NULL);
        assert_non_null(p);
        assert_int_equal(p->idx, i + 1);
        assert_int_equal(p->state, OB_SENDING);
        refs[i] = p->msgref;
        ob_sent(&ob, p, 0);
        assert_int_equal(p->state, OB_SENT);
    }
    assert_true(refs[0] != refs[1] && refs[1] != refs[2] && refs[0] != refs[2]);
    assert_null(ob_next(&ob, 0, NULL));
    /* reports: unknown reference, another ISSI */
    assert_null(ob_report(&ob, 1001, (uint8_t)(refs[2] + 1), OB_REPORT_RECEIVED, NULL, 10));
    assert_null(ob_report(&ob, 1002, refs[0], OB_REPORT_RECEIVED, NULL, 10));
    for (unsigned i = 0; i < 3; i++) {
        assert_ptr_equal(ob_report(&ob, 1001, refs[i], OB_REPORT_RECEIVED, NULL, 10), &m.parts[i]);
        assert_int_equal(m.parts[i].state, OB_RECEIVED);
    }
    assert_int_equal(ob_prune(&ob, 20), 0); /* still waiting to be read */
    for (unsigned i = 0; i < 3; i++)
        ob_report(&ob, 1001, refs[i], OB_REPORT_READ, NULL, 30);
    assert_true(ob_msg_all(&m, 1u << OB_READ));
    assert_int_equal(ob_prune(&ob, 40), 1);
    assert_false(m.in_outbox);
    assert_null(ob.head);
    /* every change was announced: 3 x (SENDING, SENT, RECEIVED, READ) */
    assert_int_equal(r.n, 12);
    assert_int_equal(r.ev[0].kind, OB_EV_STATE);
    assert_int_equal(r.ev[0].from, OB_QUEUED);
}

static void test_rate_limit_per_issi(void **state)
{
    (void)state;
    outbox_t ob;
    ob_config_t cfg = CFG;
    cfg.burst = 2; /* 6 a minute: one token every 10 s */
    ob_init(&ob, &cfg, NULL, NULL);
    ob_msg_t a, b;
    msg3(&a, 1001);
    ob_msg_init(&b, 1002, NULL);
    ob_msg_add_part(&b, "1/1 other");
    ob_add(&ob, &a, 1000);
    ob_add(&ob, &b, 1000);
    ob_part_t *p;
    assert_non_null(p = ob_next(&ob, 1000, NULL));
    ob_sent(&ob, p, 1000);
    assert_non_null(p = ob_next(&ob, 1000, NULL));
    ob_sent(&ob, p, 1000);
    /* 1001's bucket is empty; 1002 is not held up by it */
    int64_t wake = 0;
    p = ob_next(&ob, 1000, &wake);
    assert_non_null(p);
    assert_int_equal(p->msg->issi, 1002);
    ob_sent(&ob, p, 1000);
    assert_null(ob_next(&ob, 1000, &wake));
    assert_int_equal(wake, 11000);
    assert_null(ob_next(&ob, 10999, &wake));
    assert_non_null(p = ob_next(&ob, 11000, &wake));
    assert_int_equal(p->idx, 3);
    assert_true(ob.rate_limited >= 2);
}

static void test_retry_backoff_then_give_up(void **state)
{
    (void)state;
    outbox_t ob;
    rec_t r = { 0 };
    ob_config_t cfg = CFG;
    cfg.rate_per_minute = 600000; /* no rate limit here */
    ob_init(&ob, &cfg, rec_event, &r);
    ob_msg_t m;
    ob_msg_init(&m, 77, NULL);
    ob_msg_add_part(&m, "1/1 x");
    ob_add(&ob, &m, 0);
    static const int64_t delays[] = { 1000, 2000, 4000, 4000 };
    int64_t now = 0;
    for (unsigned k = 0; k < 4; k++) {
        ob_part_t *p = ob_next(&ob, now, NULL);
        assert_non_null(p);
        ob_failed(&ob, p, now, OB_FAIL_TEMPORARY, "ERROR");
        assert_int_equal(p->state, OB_QUEUED);
        assert_int_equal(p->attempts, k + 1);
        assert_int_equal(r.ev[r.n - 1].kind, OB_EV_RETRY);
        assert_int_equal(r.ev[r.n - 1].retry_in_ms, delays[k]);
        int64_t wake;
        assert_null(ob_next(&ob, now + delays[k] - 1, &wake));
        assert_int_equal(wake, now + delays[k]);
        now += delays[k];
    }
    ob_part_t *p = ob_next(&ob, now, NULL);
    ob_failed(&ob, p, now, OB_FAIL_TEMPORARY, "+CME ERROR: 35");
    assert_int_equal(p->state, OB_FAILED);
    assert_string_equal(p->detail, "gave up after 5 attempts, last: +CME ERROR: 35");
    assert_int_equal(ob.failures, 1);
    assert_int_equal(ob.retries, 4);
    assert_int_equal(ob_prune(&ob, now), 1);
}

static void test_order_kept_across_a_retry(void **state)
{
    (void)state;
    outbox_t ob;
    ob_init(&ob, &CFG, NULL, NULL);
    ob_msg_t m, m2;
    msg3(&m, 1001);
    ob_msg_init(&m2, 1001, NULL);
    ob_msg_add_part(&m2, "1/1 later");
    ob_add(&ob, &m, 0);
    ob_add(&ob, &m2, 0);
    ob_part_t *p1 = ob_next(&ob, 0, NULL);
    assert_int_equal(p1->idx, 1);
    /* part 1 is refused for now ("try later" report) */
    ob_sent(&ob, p1, 0);
    assert_ptr_equal(ob_report(&ob, 1001, p1->msgref, OB_REPORT_TEMPORARY, "delivery failed", 5), p1);
    assert_int_equal(p1->state, OB_QUEUED);
    /* parts 2, 3 and the next message wait for it */
    int64_t wake;
    assert_null(ob_next(&ob, 5, &wake));
    assert_int_equal(wake, 1005);
    ob_part_t *p = ob_next(&ob, 1005, NULL);
    assert_ptr_equal(p, p1);
    ob_sent(&ob, p, 1005);
    /* out of tokens now (burst 3: 2 sends of part 1 + ...): refill and go on */
    p = ob_next(&ob, 1005, NULL);
    assert_non_null(p);
    assert_int_equal(p->idx, 2);
}

static void test_permanent_line_down_and_unsend(void **state)
{
    (void)state;
    outbox_t ob;
    rec_t r = { 0 };
    ob_init(&ob, &CFG, rec_event, &r);
    ob_msg_t m;
    msg3(&m, 5);
    ob_add(&ob, &m, 0);
    ob_part_t *p = ob_next(&ob, 0, NULL);
    /* the write failed: nothing went out, the token comes back */
    ob_unsend(&ob, p, 0);
    assert_int_equal(p->state, OB_QUEUED);
    assert_int_equal(p->attempts, 0);
    /* the line went down with the command in flight: queued again, not counted */
    p = ob_next(&ob, 0, NULL);
    ob_failed(&ob, p, 0, OB_FAIL_LINE_DOWN, "serial line down");
    assert_int_equal(p->state, OB_QUEUED);
    assert_int_equal(p->attempts, 0);
    /* three tokens: unsend gave one back, the line-down send used one */
    assert_non_null(p = ob_next(&ob, 0, NULL));
    ob_sent(&ob, p, 0);
    ob_report(&ob, 5, p->msgref, OB_REPORT_PERMANENT, "destination not registered", 1);
    assert_int_equal(p->state, OB_FAILED);
    assert_string_equal(p->detail, "destination not registered");
    assert_string_equal(r.detail[r.n - 1], "destination not registered");
    /* a report that arrives before the OK is kept */
    ob_part_t *q = ob_next(&ob, 1, NULL);
    assert_non_null(q);
    ob_report(&ob, 5, q->msgref, OB_REPORT_RECEIVED, NULL, 2);
    ob_sent(&ob, q, 2);
    assert_int_equal(q->state, OB_RECEIVED);
    assert_int_equal(ob_pending(&ob), 1);
}

static void test_prune_after_keep_without_reports(void **state)
{
    (void)state;
    outbox_t ob;
    ob_init(&ob, &CFG, NULL, NULL);
    ob_msg_t m;
    ob_msg_init(&m, 9, NULL);
    ob_msg_add_part(&m, "1/1 x");
    ob_add(&ob, &m, 0);
    ob_part_t *p = ob_next(&ob, 0, NULL);
    assert_int_equal(ob_prune(&ob, 100000), 0); /* SENDING never leaves */
    ob_sent(&ob, p, 100);
    assert_int_equal(ob_prune(&ob, 100 + CFG.keep_ms - 1), 0);
    assert_int_equal(ob_prune(&ob, 100 + CFG.keep_ms), 1);
    assert_int_equal(p->state, OB_SENT);
}

static void test_message_references_not_reused_while_waiting(void **state)
{
    (void)state;
    outbox_t ob;
    ob_config_t cfg = CFG;
    cfg.burst = 1000;
    cfg.keep_ms = INT64_MAX / 4;
    ob_init(&ob, &cfg, NULL, NULL);
    static ob_msg_t ms[300];
    bool seen[256] = { false };
    for (int i = 0; i < 254; i++) {
        ob_msg_init(&ms[i], 42, NULL);
        ob_msg_add_part(&ms[i], "x");
        ob_add(&ob, &ms[i], 0);
        ob_part_t *p = ob_next(&ob, 0, NULL);
        assert_non_null(p);
        assert_true(p->msgref >= 1);
        assert_false(seen[p->msgref]);
        seen[p->msgref] = true;
        ob_sent(&ob, p, 0);
    }
    /* one reference left for ISSI 42; another ISSI may reuse any */
    ob_report(&ob, 42, ms[10].parts[0].msgref, OB_REPORT_READ, NULL, 1);
    ob_msg_init(&ms[260], 42, NULL);
    ob_msg_add_part(&ms[260], "y");
    ob_add(&ob, &ms[260], 1);
    ob_part_t *p = ob_next(&ob, 1, NULL);
    assert_true(p->msgref == 255 || p->msgref == ms[10].parts[0].msgref);
}

/* ------------------------------------------------------------ random runs */

static uint64_t rs;
static uint32_t rnd(void)
{
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return (uint32_t)((rs * 2685821657736338717ULL) >> 32);
}

/* A terminal that answers at random, many messages to a few ISSIs: every
 * message ends READ/FAILED or still in the outbox (never lost), a part is
 * never on the air twice at once, and no ISSI gets more sends in any window
 * than the bucket allows. */
static void test_random_runs(void **state)
{
    (void)state;
    const char *seed_env = getenv("OUTBOX_SEED");
    rs = seed_env ? strtoull(seed_env, NULL, 10) : 4242;
    if (rs == 0)
        rs = 1;
    enum { NM = 200, NI = 4 };
    static ob_msg_t ms[NM];
    static int64_t sends_at[NI][2000];
    static unsigned n_sends[NI];
    outbox_t ob;
    ob_config_t cfg = { .rate_per_minute = 12, .burst = 3, .max_attempts = 4, .retry_base_ms = 500, .retry_max_ms = 8000,
                        .keep_ms = 120000 };
    ob_init(&ob, &cfg, NULL, NULL);
    memset(n_sends, 0, sizeof n_sends);
    int64_t now = 0;
    unsigned added = 0;
    ob_part_t *in_flight = NULL;
    for (int step = 0; step < 20000; step++) {
        now += rnd() % 700;
        if (added < NM && rnd() % 8 == 0) {
            ob_msg_t *m = &ms[added++];
            ob_msg_init(m, 100 + rnd() % NI, NULL);
            unsigned np = 1 + rnd() % 3;
            for (unsigned i = 0; i < np; i++)
                ob_msg_add_part(m, "part");
            assert_int_equal(ob_add(&ob, m, now), 0);
        }
        if (in_flight == NULL) {
            in_flight = ob_next(&ob, now, NULL);
            if (in_flight) {
                unsigned k = in_flight->msg->issi - 100;
                sends_at[k][n_sends[k]++] = now;
            }
        } else {
            switch (rnd() % 5) {
            case 0: ob_failed(&ob, in_flight, now, OB_FAIL_TEMPORARY, "ERROR"); break;
            case 1: ob_failed(&ob, in_flight, now, OB_FAIL_LINE_DOWN, "down"); break;
            default: ob_sent(&ob, in_flight, now); break;
            }
            in_flight = NULL;
        }
        /* a report for a random waiting part */
        if (rnd() % 3 == 0 && added) {
            ob_msg_t *m = &ms[rnd() % added];
            ob_part_t *p = &m->parts[rnd() % m->n_parts];
            if (m->in_outbox && p != in_flight && (p->state == OB_SENT || p->state == OB_RECEIVED)) {
                static const ob_report_t cls[] = { OB_REPORT_RECEIVED, OB_REPORT_READ, OB_REPORT_READ,
                                                   OB_REPORT_TEMPORARY, OB_REPORT_PERMANENT, OB_REPORT_INFO };
                assert_ptr_equal(ob_report(&ob, m->issi, p->msgref, cls[rnd() % 6], "r", now), p);
            }
        }
        if (rnd() % 50 == 0)
            ob_prune(&ob, now);
        /* at most one part SENDING */
        unsigned sending = 0;
        for (ob_msg_t *m = ob.head; m; m = m->next)
            for (unsigned i = 0; i < m->n_parts; i++)
                sending += m->parts[i].state == OB_SENDING;
        assert_true(sending <= 1);
    }
    /* nothing lost */
    unsigned finished = 0;
    for (unsigned i = 0; i < added; i++) {
        ob_msg_t *m = &ms[i];
        if (!m->in_outbox) {
            for (unsigned k = 0; k < m->n_parts; k++)
                assert_true(m->parts[k].state != OB_QUEUED && m->parts[k].state != OB_SENDING);
            finished++;
        }
    }
    assert_true(finished > added / 2);
    /* the rate limit: in any window of w ms, at most burst + w * rate / 60000 sends */
    for (unsigned k = 0; k < NI; k++) {
        for (unsigned a = 0; a < n_sends[k]; a++)
            for (unsigned b = a; b < n_sends[k]; b++) {
                int64_t w = sends_at[k][b] - sends_at[k][a];
                int64_t allowed = cfg.burst + w * cfg.rate_per_minute / 60000;
                if ((int64_t)(b - a + 1) > allowed)
                    fail_msg("ISSI %u: %u sends in %lld ms (allowed %lld)", k, b - a + 1, (long long)w, (long long)allowed);
            }
    }
    print_message("outbox random run: seed %s, %u messages, %u finished, %llu sends, %llu retries, %llu rate-limited\n",
                  seed_env ? seed_env : "4242", added, finished, (unsigned long long)ob.sends,
                  (unsigned long long)ob.retries, (unsigned long long)ob.rate_limited);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts_in_order_then_reports),
        cmocka_unit_test(test_rate_limit_per_issi),
        cmocka_unit_test(test_retry_backoff_then_give_up),
        cmocka_unit_test(test_order_kept_across_a_retry),
        cmocka_unit_test(test_permanent_line_down_and_unsend),
        cmocka_unit_test(test_prune_after_keep_without_reports),
        cmocka_unit_test(test_message_references_not_reused_while_waiting),
        cmocka_unit_test(test_random_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
