/* lt_hist.h -- a log-linear latency histogram (after HdrHistogram).
 *
 * Values are unsigned integers (the load test records microseconds). Values
 * below 128 have a bucket each; above that, every power of two [2^k, 2^k+1)
 * is split into 64 equal sub-buckets, so a bucket is at most 1/64 of its
 * value wide and a reported percentile is within 1.6% of the true value
 * (always at or above it: queries return the bucket's highest value, capped
 * at the largest value recorded). Values above LT_HIST_MAX are clamped to it
 * and counted in `clamped`. Fixed size, no allocation: embed it anywhere.
 */
#ifndef LT_HIST_H
#define LT_HIST_H

#include <stdbool.h>
#include <stdint.h>

#define LT_HIST_SUB_BITS 6                       /* 64 sub-buckets per power of two */
#define LT_HIST_LINEAR (1u << (LT_HIST_SUB_BITS + 1)) /* 128 exact values */
#define LT_HIST_MAX_BITS 40                      /* values up to 2^40 - 1 (12.7 days in us) */
#define LT_HIST_MAX ((UINT64_C(1) << LT_HIST_MAX_BITS) - 1)
#define LT_HIST_BUCKETS \
    (LT_HIST_LINEAR + (LT_HIST_MAX_BITS - LT_HIST_SUB_BITS - 1) * (1u << LT_HIST_SUB_BITS))

typedef struct lt_hist {
    uint64_t count;
    uint64_t min, max;   /* exact; min is UINT64_MAX while empty */
    double sum;
    uint64_t clamped;    /* values above LT_HIST_MAX */
    uint64_t b[LT_HIST_BUCKETS];
} lt_hist_t;

void lt_hist_init(lt_hist_t *h);
void lt_hist_record(lt_hist_t *h, uint64_t v);
/* Adds every count of `src` into `dst`. */
void lt_hist_merge(lt_hist_t *dst, const lt_hist_t *src);
/* The value at quantile q (0..1): the highest value of the bucket holding
 * the ceil(q * count)-th smallest value, capped at max. 0 when empty. */
uint64_t lt_hist_quantile(const lt_hist_t *h, double q);
double lt_hist_mean(const lt_hist_t *h);

/* Bucket index of a value and the bucket's [lo, hi] range (for tests). */
uint32_t lt_hist_index(uint64_t v);
void lt_hist_bucket_range(uint32_t i, uint64_t *lo, uint64_t *hi);

/* Checks the histogram against exact percentiles of known data; prints what
 * fails to stderr. Returns the number of failed checks. */
int lt_hist_self_test(void);

#endif
