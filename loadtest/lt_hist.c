/* lt_hist.c -- see lt_hist.h. */
#include "lt_hist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lt_hist_init(lt_hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

uint32_t lt_hist_index(uint64_t v)
{
    if (v > LT_HIST_MAX)
        v = LT_HIST_MAX;
    if (v < LT_HIST_LINEAR)
        return (uint32_t)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);        /* >= SUB_BITS + 1 */
    unsigned shift = msb - LT_HIST_SUB_BITS;                   /* >= 1 */
    uint64_t sub = v >> shift;                                 /* [64, 128) */
    return LT_HIST_LINEAR + (shift - 1) * (1u << LT_HIST_SUB_BITS) +
           (uint32_t)(sub - (1u << LT_HIST_SUB_BITS));
}

void lt_hist_bucket_range(uint32_t i, uint64_t *lo, uint64_t *hi)
{
    if (i < LT_HIST_LINEAR) {
        *lo = *hi = i;
        return;
    }
    uint32_t j = i - LT_HIST_LINEAR;
    unsigned shift = j / (1u << LT_HIST_SUB_BITS) + 1;
    uint64_t sub = (j % (1u << LT_HIST_SUB_BITS)) + (1u << LT_HIST_SUB_BITS);
    *lo = sub << shift;
    *hi = ((sub + 1) << shift) - 1;
}

void lt_hist_record(lt_hist_t *h, uint64_t v)
{
    if (v > LT_HIST_MAX) {
        h->clamped++;
        v = LT_HIST_MAX;
    }
    h->b[lt_hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void lt_hist_merge(lt_hist_t *dst, const lt_hist_t *src)
{
    for (uint32_t i = 0; i < LT_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    dst->clamped += src->clamped;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t lt_hist_quantile(const lt_hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q <= 0)
        return h->min;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < LT_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            lt_hist_bucket_range(i, &lo, &hi);
            if (hi > h->max)
                hi = h->max;
            if (hi < h->min)
                hi = h->min;
            return hi;
        }
    }
    return h->max;
}

double lt_hist_mean(const lt_hist_t *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}

/* ------------------------------------------------------------ self-test */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "hist self-test: " __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                                   \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)

int lt_hist_self_test(void)
{
    int fails = 0;
    /* Buckets tile the value range: contiguous, each index maps back. */
    uint64_t prev_hi = 0;
    for (uint32_t i = 0; i < LT_HIST_BUCKETS; i++) {
        uint64_t lo, hi;
        lt_hist_bucket_range(i, &lo, &hi);
        CHECK(i == 0 || lo == prev_hi + 1, "bucket %u starts at %llu after %llu", i,
              (unsigned long long)lo, (unsigned long long)prev_hi);
        CHECK(lt_hist_index(lo) == i && lt_hist_index(hi) == i, "bucket %u does not map back", i);
        CHECK(lo < LT_HIST_LINEAR || (double)(hi - lo + 1) <= (double)lo / 64.0 + 1e-9,
              "bucket %u too wide", i);
        prev_hi = hi;
    }
    CHECK(prev_hi == LT_HIST_MAX, "last bucket ends at %llu", (unsigned long long)prev_hi);

    /* Empty histogram. */
    lt_hist_t *h = malloc(sizeof *h);
    lt_hist_init(h);
    CHECK(lt_hist_quantile(h, 0.5) == 0 && h->count == 0, "empty histogram");

    /* Exact below 128. */
    for (uint64_t v = 1; v <= 100; v++)
        lt_hist_record(h, v);
    CHECK(lt_hist_quantile(h, 0.5) == 50, "p50 of 1..100 is %llu",
          (unsigned long long)lt_hist_quantile(h, 0.5));
    CHECK(lt_hist_quantile(h, 0.99) == 99, "p99 of 1..100");
    CHECK(lt_hist_quantile(h, 1.0) == 100 && h->max == 100 && h->min == 1, "max/min of 1..100");

    /* A long-tailed distribution against exact order statistics. */
    enum { N = 200000 };
    uint64_t *xs = malloc(N * sizeof *xs);
    lt_hist_init(h);
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double u = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
        xs[i] = (uint64_t)(200.0 * pow(u, -0.5)); /* Pareto tail from 200 us */
        lt_hist_record(h, xs[i]);
    }
    qsort(xs, N, sizeof *xs, cmp_u64);
    const double qs[] = { 0.5, 0.9, 0.99, 0.999, 1.0 };
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        uint64_t rank = (uint64_t)ceil(qs[k] * N);
        uint64_t exact = xs[rank - 1];
        uint64_t got = lt_hist_quantile(h, qs[k]);
        CHECK(got >= exact && (double)got <= (double)exact * (1.0 + 1.0 / 64.0) + 1,
              "q=%g exact %llu got %llu", qs[k], (unsigned long long)exact,
              (unsigned long long)got);
    }

    /* Merge equals recording everything in one. */
    lt_hist_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    lt_hist_init(a);
    lt_hist_init(b);
    for (int i = 0; i < N; i++)
        lt_hist_record(i % 2 ? a : b, xs[i]);
    lt_hist_merge(a, b);
    CHECK(a->count == h->count && a->max == h->max && a->min == h->min &&
              memcmp(a->b, h->b, sizeof a->b) == 0,
          "merge differs");

    /* Clamping. */
    lt_hist_init(a);
    lt_hist_record(a, UINT64_MAX);
    CHECK(a->clamped == 1 && a->max == LT_HIST_MAX, "clamp");
    free(a);
    free(b);
    free(xs);
    free(h);
    return fails;
}
