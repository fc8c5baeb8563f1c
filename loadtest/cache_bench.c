/* cache_bench.c -- bin/mhtas-cache-bench: read and search latency through
 * server/cache/care_cache.c against a loaded Redis.
 *
 *   mhtas-cache-bench --port N --people FILE [--n 20000]
 *
 * FILE is the NDJSON the people were imported from (mhtas-gen-people); the
 * bench takes NHS numbers, family and given names and dates of birth from
 * it. One look-up in flight at a time (like redis-benchmark -c 1), so the
 * figures are latencies, not throughput. Prints p50/p90/p99/max in
 * microseconds for GetCareSummary and SearchPersons (family + given + date
 * of birth, and family + date of birth), and checks every answer: a read
 * must be OK, a search must be OK and find the person.
 * tests/cache/bench.sh runs it next to redis-benchmark.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "cache/care_cache.h"

typedef struct {
    char nhs[11], family[64], given[64], dob[11];
} who_t;

typedef struct {
    uv_loop_t *loop;
    care_cache_t *cache;
    who_t *people;
    size_t npeople, n, i;
    int mode;                 /* 0 read, 1 search f+g+dob, 2 search f+dob */
    uint64_t *lat, t0;
    size_t errors, misses;
    int done;
} bench_t;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void next(bench_t *b);

static void record(bench_t *b, int ok)
{
    b->lat[b->i] = uv_hrtime() - b->t0;
    if (!ok)
        b->errors++;
    b->i++;
    next(b);
}

static void read_cb(void *ctx, const care_status_t *st, const Mhtas__V1__GetCareSummaryResponse *r)
{
    (void)r;
    record(ctx, st->code == CARE_OK);
}

static void search_cb(void *ctx, const care_status_t *st, const Mhtas__V1__SearchPersonsResponse *r)
{
    bench_t *b = ctx;
    if (st->code == CARE_OK) {
        const who_t *w = &b->people[b->i % b->npeople];
        int found = 0;
        for (size_t k = 0; k < r->n_matches; k++)
            found |= strcmp(r->matches[k]->nhs_number, w->nhs) == 0;
        if (!found)
            b->misses++;
    }
    record(b, st->code == CARE_OK);
}

static void next(bench_t *b)
{
    if (b->i == b->n) {
        b->done = 1;
        return;
    }
    const who_t *w = &b->people[b->i % b->npeople];
    b->t0 = uv_hrtime();
    if (b->mode == 0) {
        care_cache_get_summary(b->cache, w->nhs, read_cb, b);
    } else {
        Mhtas__V1__SearchPersonsRequest q = MHTAS__V1__SEARCH_PERSONS_REQUEST__INIT;
        q.family_name = (char *)w->family;
        q.given_name = b->mode == 1 ? (char *)w->given : "";
        q.date_of_birth = (char *)w->dob;
        care_cache_search(b->cache, &q, search_cb, b);
    }
}

static void report(const char *what, bench_t *b)
{
    qsort(b->lat, b->n, sizeof *b->lat, cmp_u64);
#define P(q) ((double)b->lat[(size_t)((double)(b->n - 1) * (q))] / 1000.0)
    printf("%-34s n=%zu p50=%.0fus p90=%.0fus p99=%.0fus max=%.0fus errors=%zu misses=%zu\n",
           what, b->n, P(0.50), P(0.90), P(0.99), P(1.0), b->errors, b->misses);
#undef P
}

static void closed(void *arg)
{
    *(int *)arg = 1;
}

int main(int argc, char **argv)
{
    int port = 6379;
    const char *file = NULL;
    size_t n = 20000;
    static const struct option opts[] = {{"port", required_argument, 0, 'p'},
                                         {"people", required_argument, 0, 'f'},
                                         {"n", required_argument, 0, 'n'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'p')
            port = atoi(optarg);
        else if (ch == 'f')
            file = optarg;
        else if (ch == 'n')
            n = strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    if (file == NULL || n == 0) {
        fprintf(stderr, "usage: mhtas-cache-bench --port N --people FILE [--n COUNT]\n");
        return 2;
    }
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        perror(file);
        return 2;
    }
    size_t cap = 20000, np = 0;
    who_t *people = calloc(cap, sizeof *people);
    char *line = NULL;
    size_t lcap = 0;
    /* every 5th person of the file, up to 20000 */
    for (size_t ln = 0; np < cap && getline(&line, &lcap, f) > 0; ln++) {
        if (ln % 5)
            continue;
        json_t *d = json_loads(line, 0, NULL);
        json_t *pat = json_object_get(d, "patient");
        json_t *nm = json_array_get(json_object_get(pat, "name"), 0);
        const char *nhs = json_string_value(json_object_get(d, "nhsNumber"));
        const char *fam = json_string_value(json_object_get(nm, "family"));
        const char *giv = json_string_value(json_array_get(json_object_get(nm, "given"), 0));
        const char *dob = json_string_value(json_object_get(pat, "birthDate"));
        if (nhs && fam && giv && dob) {
            snprintf(people[np].nhs, 11, "%s", nhs);
            snprintf(people[np].family, 64, "%s", fam);
            snprintf(people[np].given, 64, "%s", giv);
            snprintf(people[np].dob, 11, "%s", dob);
            np++;
        }
        json_decref(d);
    }
    free(line);
    fclose(f);
    if (np == 0) {
        fprintf(stderr, "no people in %s\n", file);
        return 2;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    care_cache_config_t cfg = {.host = "127.0.0.1", .port = port, .command_timeout_ms = 2000};
    care_cache_t *cache = care_cache_new(&loop, &cfg);
    care_cache_start(cache);
    while (care_cache_state(cache) != CARE_CACHE_CONNECTED)
        uv_run(&loop, UV_RUN_ONCE);

    static const char *const names[3] = {"GetCareSummary",
                                         "SearchPersons family+given+dob",
                                         "SearchPersons family+dob"};
    int rc = 0;
    for (int mode = 0; mode < 3; mode++) {
        bench_t b = {&loop, cache, people, np, n, 0, mode, calloc(n, sizeof(uint64_t)), 0, 0, 0, 0};
        /* warm up */
        bench_t w = b;
        w.n = n / 10 + 1;
        w.lat = calloc(w.n, sizeof(uint64_t));
        next(&w);
        while (!w.done)
            uv_run(&loop, UV_RUN_ONCE);
        free(w.lat);
        next(&b);
        while (!b.done)
            uv_run(&loop, UV_RUN_ONCE);
        report(names[mode], &b);
        if (b.errors || b.misses)
            rc = 1;
        free(b.lat);
    }
    int c = 0;
    care_cache_close(cache, closed, &c);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(people);
    return rc;
}
