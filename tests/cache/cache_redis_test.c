/* cache_redis_test.c -- the care-summary cache against a real redis-server.
 *
 * Starts its own redis-server on a free port in a temporary directory, loads
 * it with bin/mhtas-gen-people | bin/mhtas-import plus hand-made people and
 * bad records, and then drives server/cache/care_cache.c on a libuv loop:
 * import reports and idempotency, index consistency on update and removal,
 * search (exact, wildcard, fuzzy, scoring order), summary reads (validation,
 * not found, stale parts, restricted), Redis killed and restarted while
 * look-ups run (fail fast with UNAVAILABLE, recover by themselves), a hung
 * Redis (SIGSTOP: deadline, then UNAVAILABLE, then recovery), the reply
 * budget, cancel, and close with look-ups in flight. Every test ends with
 * uv_loop_close() == 0.
 *
 *   MHTAS_BINDIR=bin build/rel/tests/cache/cache_redis_test
 *
 * Needs redis-server on PATH and the two tools in MHTAS_BINDIR (default
 * "bin"). Missing either is a FAILURE, never a skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "cache/care_cache.h"
#include "cache/care_search.h"
#include "cache/nhs_number.h"
#include "util/alloc.h"

/* ------------------------------------------------------------ fixture */

static struct {
    char dir[256];
    char bindir[256];
    int port;
    pid_t redis;
    char nhs[8][11];     /* hand-made people A..H */
    char crafted[300];   /* their NDJSON file */
} F;

enum { A, B, C, D, E, G, H_UPDATE, UNUSED };   /* see write_crafted() */

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(s);
    return ntohs(a.sin_port);
}

static redisContext *sync_conn(void)
{
    struct timeval tv = {1, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", F.port, tv);
    if (rc && rc->err) {
        redisFree(rc);
        return NULL;
    }
    return rc;
}

static int start_redis(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", F.port);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char log[300];
        snprintf(log, sizeof log, "%s/redis.log", F.dir);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", F.dir, "--logfile", log, (char *)NULL);
        _exit(127);
    }
    F.redis = pid;
    for (int i = 0; i < 500; i++) {
        redisContext *rc = sync_conn();
        if (rc) {
            redisReply *r = redisCommand(rc, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            redisFree(rc);
            if (ok)
                return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            F.redis = 0;
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

static void kill_redis(void)
{
    if (F.redis > 0) {
        kill(F.redis, SIGCONT);
        kill(F.redis, SIGKILL);
        waitpid(F.redis, NULL, 0);
        F.redis = 0;
    }
}

/* Runs a shell command; returns its exit status (or -1). */
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static char *slurp(const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", F.dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strdup("");
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

static int import(const char *file, char **out, char **err)
{
    int rc = sh("%s/mhtas-import --port %d --no-progress %s >%s/imp.out 2>%s/imp.err", F.bindir,
                F.port, file, F.dir, F.dir);
    *out = slurp("imp.out");
    *err = slurp("imp.err");
    return rc;
}

static void make_nhs(unsigned long prefix6, char out[11])
{
    for (;; prefix6++) {
        snprintf(out, 11, "999%06lu", prefix6 % 1000000);
        int cd = nhs_number_check_digit(out);
        if (cd >= 0) {
            out[9] = (char)('0' + cd);
            out[10] = '\0';
            return;
        }
    }
}

static void person_json(FILE *f, const char *nhs, const char *family, const char *given,
                        const char *dob, const char *postcode, int restricted, const char *flags_at)
{
    fprintf(f,
            "{\"nhsNumber\":\"%s\",\"restricted\":%s,\"patient\":{\"source\":\"NHS Spine (PDS)\","
            "\"asAt\":\"2026-10-20T09:00:00Z\",\"name\":[{\"use\":\"official\",\"family\":\"%s\","
            "\"given\":[\"%s\"]}],\"birthDate\":\"%s\",\"address\":{\"line\":[\"1 Oak Road\"],"
            "\"district\":\"Bolton\",\"postalCode\":\"%s\"}},"
            "\"legalStatus\":{\"source\":\"RiO (GMMH)\",\"asAt\":\"2026-10-20T09:00:00Z\","
            "\"status\":\"cto\"},"
            "\"flags\":{\"source\":\"RiO (GMMH)\",\"asAt\":\"%s\",\"items\":[{\"code\":\"self-harm\","
            "\"level\":\"medium\",\"detail\":\"synthetic\"}]}}\n",
            nhs, restricted ? "true" : "false", family, given, dob, postcode, flags_at);
}

/* The hand-made people (born 1931, outside the generator's 1940-2010 range,
 * so generated people never interfere with the ranking assertions):
 *   A Smith, Ann      1931-05-11 BL1 4AA   the exact match
 *   B Smyth, Anne     1931-05-11           sounds alike (restricted)
 *   C Ann, Smith      1931-05-11           names transposed
 *   D Smith, Ann      1931-11-05           day and month swapped
 *   E Smithson, Annabel 1931-06-01         only a wildcard finds her
 *   G Jones, Ann      1931-05-11           another family: never a match
 * Then bad lines, whose line numbers the test asserts. */
static void write_crafted(void)
{
    for (int i = 0; i < 8; i++)
        make_nhs(900000 + (unsigned long)i * 101, F.nhs[i]);
    snprintf(F.crafted, sizeof F.crafted, "%s/crafted.ndjson", F.dir);
    FILE *f = fopen(F.crafted, "w");
    person_json(f, F.nhs[A], "Smith", "Ann", "1931-05-11", "BL1 4AA", 0, "2024-01-01T00:00:00Z");
    person_json(f, F.nhs[B], "Smyth", "Anne", "1931-05-11", "BL1 9ZZ", 1, "2026-10-20T09:00:00Z");
    /* line 3: wrong check digit */
    char bad[11];
    memcpy(bad, F.nhs[A], 11);
    bad[9] = bad[9] == '9' ? '0' : (char)(bad[9] + 1);
    person_json(f, bad, "Smith", "Bob", "1931-05-11", "BL1 4AA", 0, "2026-10-20T09:00:00Z");
    person_json(f, F.nhs[C], "Ann", "Smith", "1931-05-11", "BL2 1AA", 0, "2026-10-20T09:00:00Z");
    fprintf(f, "{\"nhsNumber\": \"9434765919\", \"patient\": \n");          /* line 5: not JSON */
    person_json(f, F.nhs[D], "Smith", "Ann", "1931-11-05", "M1 1AE", 0, "2026-10-20T09:00:00Z");
    fprintf(f, "\n");                                                         /* line 7: blank */
    fprintf(f, "{\"nhsNumber\":\"%s\",\"patient\":{\"source\":\"x\",\"asAt\":\"2026-10-20T09:00:00Z\","
               "\"name\":[{\"family\":\"Lost\"}],\"birthDate\":\"1931-02-30\"}}\n",
            F.nhs[UNUSED]);                                                   /* line 8: bad date */
    person_json(f, F.nhs[E], "Smithson", "Annabel", "1931-06-01", "OL1 2AB", 0,
                "2026-10-20T09:00:00Z");
    person_json(f, F.nhs[G], "Jones", "Ann", "1931-05-11", "BL1 4AA", 0, "2026-10-20T09:00:00Z");
    fprintf(f, "{\"nhsNumber\":\"12345\",\"deleted\":true}\n");              /* line 11 */
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    const char *b = getenv("MHTAS_BINDIR");
    snprintf(F.bindir, sizeof F.bindir, "%s", b && *b ? b : "bin");
    snprintf(F.dir, sizeof F.dir, "/tmp/mhtas-cache-test.XXXXXX");
    if (mkdtemp(F.dir) == NULL)
        return -1;
    if ((F.port = free_port()) < 0)
        return -1;
    if (start_redis() != 0) {
        fprintf(stderr, "cannot start redis-server (is it installed?)\n");
        return -1;
    }
    write_crafted();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kill_redis();
    sh("rm -rf %s", F.dir);
    return 0;
}

/* ------------------------------------------------------------ loop helpers */

typedef struct {
    uv_loop_t loop;
    care_cache_t *cache;
    int closed;
} env_t;

static int64_t fixed_clock(void *arg)
{
    (void)arg;
    int64_t ms;
    care_parse_datetime_ms("2026-11-01T00:00:00Z", &ms);
    return ms;
}

static void on_timeout(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until *flag is set (returns 0) or ms pass (returns -1). */
static int run_until(env_t *e, int *flag, uint64_t ms)
{
    int timed_out = 0;
    uv_timer_t t;
    uv_timer_init(&e->loop, &t);
    t.data = &timed_out;
    uv_timer_start(&t, on_timeout, ms, 0);
    while (!*flag && !timed_out)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    return *flag ? 0 : -1;
}

static void wait_state(env_t *e, care_cache_state_t want, uint64_t ms)
{
    uint64_t until = uv_now(&e->loop) + ms;
    while (care_cache_state(e->cache) != want && uv_now(&e->loop) < until) {
        int dummy = 0;
        run_until(e, &dummy, 5);
    }
    assert_int_equal(care_cache_state(e->cache), want);
}

static void env_open(env_t *e, care_cache_config_t *cfg)
{
    memset(e, 0, sizeof *e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    care_cache_config_t def = {0};
    if (cfg == NULL)
        cfg = &def;
    cfg->port = F.port;
    cfg->host = "127.0.0.1";
    cfg->clock_ms = fixed_clock;
    if (cfg->stale_after_ms == 0)
        cfg->stale_after_ms = 90LL * 86400000;
    cfg->seed = 7;
    e->cache = care_cache_new(&e->loop, cfg);
    assert_non_null(e->cache);
    care_cache_start(e->cache);
    wait_state(e, CARE_CACHE_CONNECTED, 3000);
}

static void on_closed(void *arg)
{
    ((env_t *)arg)->closed = 1;
}

static void env_close(env_t *e)
{
    care_cache_close(e->cache, on_closed, e);
    assert_int_equal(run_until(e, &e->closed, 3000), 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

/* ------------------------------------------------------------ look-up helpers */

typedef struct {
    int done, calls, code;
    char message[160];
    char nhs[50][11];
    unsigned score[50];
    int exact[50];
    uint32_t reasons[50];
    size_t n;
    int restricted;
    Mhtas__V1__CarePart stale[8];
    size_t nstale;
    char family[64];
} result_t;

static void search_cb(void *ctx, const care_status_t *st, const Mhtas__V1__SearchPersonsResponse *r)
{
    result_t *res = ctx;
    res->calls++;
    res->done = 1;
    res->code = st->code;
    snprintf(res->message, sizeof res->message, "%s", st->message);
    if (st->code != CARE_OK) {
        assert_null(r);
        return;
    }
    for (size_t i = 0; i < r->n_matches && i < 50; i++) {
        snprintf(res->nhs[i], 11, "%s", r->matches[i]->nhs_number);
        res->score[i] = r->matches[i]->score;
        res->exact[i] = r->matches[i]->exact;
        res->reasons[i] = 0;
        for (size_t k = 0; k < r->matches[i]->n_reasons; k++)
            res->reasons[i] |= 1u << r->matches[i]->reasons[k];
    }
    res->n = r->n_matches;
}

static void summary_cb(void *ctx, const care_status_t *st, const Mhtas__V1__GetCareSummaryResponse *r)
{
    result_t *res = ctx;
    res->calls++;
    res->done = 1;
    res->code = st->code;
    snprintf(res->message, sizeof res->message, "%s", st->message);
    if (st->code != CARE_OK) {
        assert_null(r);
        return;
    }
    res->restricted = r->restricted;
    res->nstale = r->n_stale_parts;
    for (size_t i = 0; i < r->n_stale_parts && i < 8; i++)
        res->stale[i] = r->stale_parts[i];
    snprintf(res->family, sizeof res->family, "%s", r->summary->identity->names[0]->family);
}

static result_t search(env_t *e, const char *family, const char *given, const char *dob,
                       const char *from, const char *to, int exact_only)
{
    Mhtas__V1__SearchPersonsRequest q = MHTAS__V1__SEARCH_PERSONS_REQUEST__INIT;
    q.family_name = (char *)family;
    q.given_name = (char *)(given ? given : "");
    q.date_of_birth = (char *)(dob ? dob : "");
    q.dob_from = (char *)(from ? from : "");
    q.dob_to = (char *)(to ? to : "");
    q.exact_only = exact_only;
    result_t res;
    memset(&res, 0, sizeof res);
    assert_non_null(care_cache_search(e->cache, &q, search_cb, &res));
    assert_int_equal(res.done, 0);          /* never called back synchronously */
    assert_int_equal(run_until(e, &res.done, 2000), 0);
    assert_int_equal(res.calls, 1);
    return res;
}

static result_t get(env_t *e, const char *nhs)
{
    result_t res;
    memset(&res, 0, sizeof res);
    assert_non_null(care_cache_get_summary(e->cache, nhs, summary_cb, &res));
    assert_int_equal(res.done, 0);
    assert_int_equal(run_until(e, &res.done, 2000), 0);
    assert_int_equal(res.calls, 1);
    return res;
}

#define BIT(r) (1u << MHTAS__V1__MATCH_REASON__MATCH_REASON_##r)

/* ------------------------------------------------------------ import */

static void import_generated_and_bad(void **state)
{
    (void)state;
    char *out, *err;
    char people[300];
    snprintf(people, sizeof people, "%s/people.ndjson", F.dir);
    assert_int_equal(sh("%s/mhtas-gen-people --count 3000 --seed 42 >%s", F.bindir, people), 0);
    assert_int_equal(sh("%s/mhtas-gen-people --count 3000 --seed 42 | cmp -s - %s", F.bindir,
                        people), 0);   /* deterministic */

    assert_int_equal(import(people, &out, &err), 0);
    assert_string_equal(out, "imported 3000, updated 0, removed 0, rejected 0 (0 unchanged)\n");
    free(out);
    free(err);

    assert_int_equal(import(F.crafted, &out, &err), 1);
    assert_string_equal(out, "imported 6, updated 0, removed 0, rejected 4 (0 unchanged)\n");
    assert_non_null(strstr(err, "line 3: nhsNumber: check digit is wrong\n"));
    assert_non_null(strstr(err, "line 5: invalid JSON at column"));
    assert_non_null(strstr(err, "line 8: patient.birthDate: not a valid YYYY-MM-DD date\n"));
    assert_non_null(strstr(err, "line 11: nhsNumber: NHS number must be 10 digits\n"));
    assert_null(strstr(err, "line 7"));            /* blank lines are not records */
    assert_null(strstr(err, "Smith"));             /* reasons never echo the data */
    free(out);
    free(err);

    /* Idempotent: the same input again changes nothing. */
    assert_int_equal(import(people, &out, &err), 0);
    assert_string_equal(out, "imported 0, updated 0, removed 0, rejected 0 (3000 unchanged)\n");
    free(out);
    free(err);
}

static int ismember(redisContext *rc, const char *key, const char *nhs)
{
    redisReply *r = redisCommand(rc, "SISMEMBER %s %s", key, nhs);
    int v = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

static long long ttl_of(redisContext *rc, const char *key)
{
    redisReply *r = redisCommand(rc, "TTL %s", key);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -99;
    if (r)
        freeReplyObject(r);
    return v;
}

/* An update moves the person between index sets; a removal takes them out
 * of every set; both leave nothing behind. */
static void update_and_remove_keep_indexes(void **state)
{
    (void)state;
    char path[300], *out, *err;
    const char *nhs = F.nhs[H_UPDATE];
    snprintf(path, sizeof path, "%s/h1.ndjson", F.dir);
    FILE *f = fopen(path, "w");
    person_json(f, nhs, "Entwistle", "Kim", "1932-02-02", "BL1 1AA", 0, "2026-10-20T09:00:00Z");
    fclose(f);
    assert_int_equal(import(path, &out, &err), 0);
    assert_string_equal(out, "imported 1, updated 0, removed 0, rejected 0 (0 unchanged)\n");
    free(out);
    free(err);
    redisContext *rc = sync_conn();
    assert_non_null(rc);
    assert_int_equal(ismember(rc, "mhtas:ix:dob:1932-02-02", nhs), 1);
    assert_int_equal(ismember(rc, "mhtas:ix:fy:E532:1932", nhs), 1);
    assert_true(ttl_of(rc, "mhtas:ix:fy:E532:1932") > 600000);
    assert_true(ttl_of(rc, "mhtas:cs:" "0") == -2);

    f = fopen(path, "w");
    person_json(f, nhs, "Heywood", "Kim", "1933-03-03", "BL1 1AA", 0, "2026-10-20T09:00:00Z");
    fclose(f);
    assert_int_equal(import(path, &out, &err), 0);
    assert_string_equal(out, "imported 0, updated 1, removed 0, rejected 0 (0 unchanged)\n");
    free(out);
    free(err);
    assert_int_equal(ismember(rc, "mhtas:ix:dob:1932-02-02", nhs), 0);
    assert_int_equal(ismember(rc, "mhtas:ix:fy:E532:1932", nhs), 0);
    assert_int_equal(ismember(rc, "mhtas:ix:yob:1932", nhs), 0);
    assert_int_equal(ismember(rc, "mhtas:ix:dob:1933-03-03", nhs), 1);
    assert_int_equal(ismember(rc, "mhtas:ix:fy:H300:1933", nhs), 1);

    f = fopen(path, "w");
    fprintf(f, "{\"nhsNumber\":\"%s\",\"deleted\":true}\n", nhs);
    fclose(f);
    assert_int_equal(import(path, &out, &err), 0);
    assert_string_equal(out, "imported 0, updated 0, removed 1, rejected 0 (0 unchanged)\n");
    free(out);
    free(err);
    assert_int_equal(ismember(rc, "mhtas:ix:dob:1933-03-03", nhs), 0);
    assert_int_equal(ismember(rc, "mhtas:ix:fy:H300:1933", nhs), 0);
    char key[CARE_KEY_MAX];
    care_key_summary(nhs, key);
    assert_int_equal(ttl_of(rc, key), -2);
    care_key_person(nhs, key);
    assert_int_equal(ttl_of(rc, key), -2);
    care_key_index_of(nhs, key);
    assert_int_equal(ttl_of(rc, key), -2);
    redisFree(rc);
}

/* ------------------------------------------------------------ search */

static size_t find(const result_t *r, const char *nhs)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->nhs[i], nhs) == 0)
            return i;
    return (size_t)-1;
}

static void search_exact_fuzzy_and_order(void **state)
{
    (void)state;
    env_t e;
    env_open(&e, NULL);

    result_t r = search(&e, "Smith", "Ann", "1931-05-11", NULL, NULL, 1);
    assert_int_equal(r.code, CARE_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.nhs[0], F.nhs[A]);
    assert_int_equal(r.score[0], 100);
    assert_true(r.exact[0]);

    r = search(&e, "SMITH", "ann", "1931-05-11", NULL, NULL, 0);
    assert_int_equal(r.code, CARE_OK);
    assert_int_equal(r.n, 4);
    /* exact; then swapped date 89; transposed 87; sounds alike 73 */
    assert_string_equal(r.nhs[0], F.nhs[A]);
    assert_string_equal(r.nhs[1], F.nhs[D]);
    assert_string_equal(r.nhs[2], F.nhs[C]);
    assert_string_equal(r.nhs[3], F.nhs[B]);
    assert_int_equal(r.score[1], 89);
    assert_int_equal(r.score[2], 87);
    assert_int_equal(r.score[3], 73);
    assert_true(r.reasons[1] & BIT(DOB_DAY_MONTH_SWAPPED));
    assert_true(r.reasons[2] & BIT(NAMES_TRANSPOSED));
    assert_true(r.reasons[3] & BIT(FAMILY_SOUNDEX));
    assert_true(find(&r, F.nhs[G]) == (size_t)-1);
    assert_true(find(&r, F.nhs[E]) == (size_t)-1);
    for (size_t i = 1; i < r.n; i++)
        assert_false(r.exact[i]);

    /* Wildcards and a range: Smi* Ann* born May-June 1931. */
    r = search(&e, "Smi*", "Ann*", NULL, "1931-05-01", "1931-06-30", 0);
    assert_int_equal(r.code, CARE_OK);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.nhs[0], F.nhs[A]);     /* equal scores: Smith before Smithson */
    assert_string_equal(r.nhs[1], F.nhs[E]);
    assert_true(r.exact[0] && r.exact[1]);
    assert_int_equal(r.score[0], 93);
    assert_int_equal(r.score[1], 93);
    assert_int_equal(r.reasons[1], BIT(FAMILY_WILDCARD) | BIT(GIVEN_WILDCARD) | BIT(DOB_IN_RANGE));
    /* "Ann, Smith" answers to Smi* Ann* with the names swapped: (36+18)*4/5+30 of 90 */
    assert_string_equal(r.nhs[2], F.nhs[C]);
    assert_false(r.exact[2]);
    assert_int_equal(r.score[2], 81);
    assert_true(r.reasons[2] & BIT(NAMES_TRANSPOSED));

    /* A wide range goes through the sound-alike-by-year sets. */
    r = search(&e, "Smyth", NULL, NULL, "1925-01-01", "1935-12-31", 0);
    assert_int_equal(r.code, CARE_OK);
    assert_true(find(&r, F.nhs[B]) == 0);        /* the exact spelling first */
    assert_true(find(&r, F.nhs[A]) != (size_t)-1);
    assert_true(find(&r, F.nhs[D]) != (size_t)-1);

    /* Family name and date of birth at least. */
    r = search(&e, "", "Ann", "1931-05-11", NULL, NULL, 0);
    assert_int_equal(r.code, CARE_INVALID_ARGUMENT);
    assert_string_equal(r.message, "family name is required");
    r = search(&e, "Smith", NULL, NULL, NULL, NULL, 0);
    assert_int_equal(r.code, CARE_INVALID_ARGUMENT);

    /* Nobody: OK and empty. */
    r = search(&e, "Zzyzx", NULL, "1931-05-12", NULL, NULL, 0);
    assert_int_equal(r.code, CARE_OK);
    assert_int_equal(r.n, 0);

    /* Generated people are found too: pick one from the file. */
    char line[4096];
    char path[300];
    snprintf(path, sizeof path, "%s/people.ndjson", F.dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    char nhs[11], family[64], dob[11];
    char *p = strstr(line, "\"nhsNumber\":\"");
    memcpy(nhs, p + 13, 10);
    nhs[10] = '\0';
    p = strstr(line, "\"family\":\"");
    sscanf(p + 10, "%63[^\"]", family);
    p = strstr(line, "\"birthDate\":\"");
    memcpy(dob, p + 13, 10);
    dob[10] = '\0';
    r = search(&e, family, NULL, dob, NULL, NULL, 0);
    assert_int_equal(r.code, CARE_OK);
    assert_string_equal(r.nhs[0], nhs);
    assert_true(r.exact[0]);

    env_close(&e);
}

/* ------------------------------------------------------------ summaries */

static void summaries(void **state)
{
    (void)state;
    env_t e;
    env_open(&e, NULL);

    result_t r = get(&e, F.nhs[A]);
    assert_int_equal(r.code, CARE_OK);
    assert_string_equal(r.family, "Smith");
    assert_false(r.restricted);
    /* flags as at 2024-01-01, older than 90 days at 2026-11-01 */
    assert_int_equal(r.nstale, 1);
    assert_int_equal(r.stale[0], MHTAS__V1__CARE_PART__CARE_PART_RISKS);

    r = get(&e, F.nhs[B]);
    assert_int_equal(r.code, CARE_OK);
    assert_true(r.restricted);
    assert_int_equal(r.nstale, 0);

    char bad[13];
    nhs_number_format(F.nhs[A], bad);
    r = get(&e, bad);                  /* "999 ..." with spaces is fine */
    assert_int_equal(r.code, CARE_OK);
    bad[11] = bad[11] == '9' ? '0' : (char)(bad[11] + 1);
    r = get(&e, bad);
    assert_int_equal(r.code, CARE_INVALID_ARGUMENT);
    assert_string_equal(r.message, "check digit is wrong");
    r = get(&e, "12345");
    assert_int_equal(r.code, CARE_INVALID_ARGUMENT);
    assert_string_equal(r.message, "NHS number must be 10 digits");
    r = get(&e, F.nhs[UNUSED]);
    assert_int_equal(r.code, CARE_NOT_FOUND);

    env_close(&e);
}

/* ------------------------------------------------------------ failures */

typedef struct {
    env_t *e;
    uv_timer_t tick;
    uint64_t t0;
    int phase;                 /* 0 up, 1 killed, 2 restarted */
    uint64_t killed_at, restarted_at, first_ok_after_restart;
    unsigned issued, done, ok[3], unavailable[3], other[3];
    uint64_t worst_fail_ms[3], worst_any_ms;
    int finished;
    int import_rc;
} chaos_t;

typedef struct {
    chaos_t *c;
    uint64_t at;
    int phase;
} probe_t;

static void probe_cb(void *ctx, const care_status_t *st, const Mhtas__V1__GetCareSummaryResponse *r)
{
    (void)r;
    probe_t *p = ctx;
    chaos_t *c = p->c;
    uint64_t now = uv_now(&c->e->loop);
    int ph = c->phase;         /* the phase when the answer came */
    c->done++;
    if (st->code == CARE_OK) {
        c->ok[ph]++;
        if (ph == 2 && c->first_ok_after_restart == 0)
            c->first_ok_after_restart = now;
    } else {
        if (st->code == CARE_UNAVAILABLE)
            c->unavailable[ph]++;
        else if (!(ph == 2 && st->code == CARE_NOT_FOUND))   /* restarted, not yet re-imported */
            c->other[ph]++;
        /* fail-fast is measured once the loss is known: issued 100 ms after the kill */
        if ((ph != 1 || p->at >= c->killed_at + 100) && now - p->at > c->worst_fail_ms[ph])
            c->worst_fail_ms[ph] = now - p->at;
        if (now - p->at > c->worst_any_ms)
            c->worst_any_ms = now - p->at;
        if (st->code == CARE_UNAVAILABLE)
            assert_string_equal(st->message,
                                c->phase == 1 && now - c->killed_at > 50
                                    ? "the care record cache is unavailable; try again shortly"
                                    : st->message);
    }
    free(p);
}

static void chaos_tick(uv_timer_t *t)
{
    chaos_t *c = t->data;
    uint64_t el = uv_now(&c->e->loop) - c->t0;
    if (c->phase == 0 && el >= 300) {
        kill_redis();
        uv_update_time(&c->e->loop);
        c->phase = 1;
        c->killed_at = uv_now(&c->e->loop);
    } else if (c->phase == 1 && el >= 1300) {
        assert_int_equal(start_redis(), 0);
        uv_update_time(&c->e->loop);
        c->restarted_at = uv_now(&c->e->loop);
        c->phase = 2;
        char *out, *err;
        c->import_rc = import(F.crafted, &out, &err);
        free(out);
        free(err);
    } else if (el >= 3500) {
        uv_timer_stop(t);
        c->finished = 1;
        return;
    }
    probe_t *p = malloc(sizeof *p);
    p->c = c;
    p->at = uv_now(&c->e->loop);
    c->issued++;
    assert_non_null(care_cache_get_summary(c->e->cache, F.nhs[A], probe_cb, p));
}

static void kill_and_restart(void **state)
{
    (void)state;
    env_t e;
    care_cache_config_t cfg = {.reconnect_min_ms = 50, .reconnect_max_ms = 400,
                               .command_timeout_ms = 300};
    env_open(&e, &cfg);
    chaos_t c;
    memset(&c, 0, sizeof c);
    c.e = &e;
    c.t0 = uv_now(&e.loop);
    uv_timer_init(&e.loop, &c.tick);
    c.tick.data = &c;
    uv_timer_start(&c.tick, chaos_tick, 10, 10);
    assert_int_equal(run_until(&e, &c.finished, 10000), 0);
    int drained = 0;
    uv_close((uv_handle_t *)&c.tick, NULL);
    while (c.done < c.issued && !drained)
        drained = run_until(&e, &drained, 1000) == 0 ? 1 : 1;

    const care_cache_stats_t *st = care_cache_get_stats(e.cache);
    print_message("chaos: issued %u ok %u/%u/%u unavailable %u/%u/%u worst fail ms %llu/%llu "
                  "recovered after %llu ms, disconnects %llu connects %llu\n",
                  c.issued, c.ok[0], c.ok[1], c.ok[2], c.unavailable[0], c.unavailable[1],
                  c.unavailable[2], (unsigned long long)c.worst_fail_ms[1],
                  (unsigned long long)c.worst_fail_ms[2],
                  (unsigned long long)(c.first_ok_after_restart - c.restarted_at),
                  (unsigned long long)st->disconnects, (unsigned long long)st->connects);
    assert_int_equal(c.done, c.issued);                 /* every callback fired */
    assert_int_equal(c.import_rc, 1);                   /* the crafted file has bad lines */
    assert_true(c.ok[0] >= 20);                         /* up: all fine */
    assert_int_equal(c.unavailable[0] + c.other[0], 0);
    assert_int_equal(c.ok[1], 0);                       /* down: nothing succeeds ... */
    assert_true(c.unavailable[1] >= 50);                /* ... and fails cleanly */
    assert_int_equal(c.other[1], 0);
    assert_true(c.worst_fail_ms[1] <= 20);              /* fail fast */
    assert_true(c.worst_any_ms < 300);                  /* never waits for the deadline */
    assert_true(c.first_ok_after_restart > 0);          /* recovered by itself */
    assert_true(c.first_ok_after_restart - c.restarted_at <= 1500);
    assert_true(c.ok[2] >= 50);
    assert_int_equal(c.other[2], 0);
    assert_true(st->disconnects >= 1);
    assert_true(st->connects >= 2);
    assert_int_equal(care_cache_state(e.cache), CARE_CACHE_CONNECTED);
    env_close(&e);
}

/* A frozen Redis accepts connections but never answers: the look-up hits its
 * deadline, the connection is dropped, reconnection waits for a PING that
 * does not come, look-ups meanwhile fail fast; thawed, it recovers. */
static void hung_redis(void **state)
{
    (void)state;
    env_t e;
    care_cache_config_t cfg = {.reconnect_min_ms = 50, .reconnect_max_ms = 200,
                               .command_timeout_ms = 150, .connect_timeout_ms = 150};
    env_open(&e, &cfg);
    assert_int_equal(kill(F.redis, SIGSTOP), 0);
    uint64_t t0 = uv_now(&e.loop);
    result_t r = get(&e, F.nhs[A]);
    uint64_t took = uv_now(&e.loop) - t0;
    assert_int_equal(r.code, CARE_DEADLINE_EXCEEDED);
    assert_true(took >= 140 && took < 600);
    assert_string_equal(r.message, "the care record cache did not answer in time; try again");
    assert_int_not_equal(care_cache_state(e.cache), CARE_CACHE_CONNECTED);
    for (int i = 0; i < 5; i++) {
        t0 = uv_now(&e.loop);
        r = get(&e, F.nhs[A]);
        assert_int_equal(r.code, CARE_UNAVAILABLE);
        assert_true(uv_now(&e.loop) - t0 < 20);
        int dummy = 0;
        run_until(&e, &dummy, 100);
    }
    assert_int_equal(kill(F.redis, SIGCONT), 0);
    wait_state(&e, CARE_CACHE_CONNECTED, 3000);
    r = get(&e, F.nhs[A]);
    assert_int_equal(r.code, CARE_OK);
    env_close(&e);
}

/* A reply bigger than the budget is refused while it arrives. */
static void reply_budget(void **state)
{
    (void)state;
    env_t e;
    care_cache_config_t cfg = {.max_reply_bytes = 200, .reconnect_min_ms = 20,
                               .reconnect_max_ms = 50};
    env_open(&e, &cfg);
    result_t r = get(&e, F.nhs[A]);
    assert_int_equal(r.code, CARE_RESOURCE_EXHAUSTED);
    assert_string_equal(r.message, "the care record is too large to read");
    assert_int_equal(care_cache_get_stats(e.cache)->too_large, 1);
    wait_state(&e, CARE_CACHE_CONNECTED, 3000);    /* and the connection comes back */
    env_close(&e);

    /* Big enough for a summary, too small for a wide search. */
    care_cache_config_t cfg2 = {.max_candidates = 5};
    env_open(&e, &cfg2);
    r = search(&e, "Smi*", NULL, NULL, "1940-01-01", "1944-12-31", 0);
    assert_int_equal(r.code, CARE_RESOURCE_EXHAUSTED);
    assert_string_equal(r.message, "too many people match: add a given name or narrow the date of birth");
    env_close(&e);
}

static void never_cb(void *ctx, const care_status_t *st, const Mhtas__V1__GetCareSummaryResponse *r)
{
    (void)ctx;
    (void)st;
    (void)r;
    fail_msg("a cancelled look-up called back");
}

static void cancel_and_close(void **state)
{
    (void)state;
    env_t e;
    env_open(&e, NULL);
    size_t live = hub_alloc_live();
    /* cancelled at once, and cancelled after an immediate failure */
    care_cache_cancel(care_cache_get_summary(e.cache, F.nhs[A], never_cb, NULL));
    care_cache_cancel(care_cache_get_summary(e.cache, "123", never_cb, NULL));
    int dummy = 0;
    run_until(&e, &dummy, 200);
    assert_int_equal(care_cache_get_stats(e.cache)->cancelled, 2);
    assert_int_equal(hub_alloc_live(), live);

    /* close with look-ups in flight: each called back once, UNAVAILABLE */
    result_t rs[3];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 3; i++)
        care_cache_get_summary(e.cache, F.nhs[A], summary_cb, &rs[i]);
    care_cache_close(e.cache, on_closed, &e);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rs[i].calls, 0);       /* not from inside close */
    assert_int_equal(run_until(&e, &e.closed, 2000), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rs[i].calls, 1);
        assert_int_equal(rs[i].code, CARE_UNAVAILABLE);
        assert_string_equal(rs[i].message, "the care record cache is shutting down");
    }
    uv_run(&e.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e.loop), 0);
}

/* Redis down from the start: look-ups fail at once; the cache connects when
 * Redis appears. */
static void down_at_start(void **state)
{
    (void)state;
    kill_redis();
    env_t e;
    memset(&e, 0, sizeof e);
    uv_loop_init(&e.loop);
    care_cache_config_t cfg = {.host = "127.0.0.1", .port = F.port, .reconnect_min_ms = 20,
                               .reconnect_max_ms = 100};
    e.cache = care_cache_new(&e.loop, &cfg);
    care_cache_start(e.cache);
    int dummy = 0;
    run_until(&e, &dummy, 300);
    assert_int_equal(care_cache_state(e.cache), CARE_CACHE_CLOSED);
    result_t r = get(&e, F.nhs[A]);
    assert_int_equal(r.code, CARE_UNAVAILABLE);
    assert_true(care_cache_get_stats(e.cache)->connect_attempts >= 3);
    assert_int_equal(start_redis(), 0);
    wait_state(&e, CARE_CACHE_CONNECTED, 2000);
    r = get(&e, F.nhs[A]);
    assert_int_equal(r.code, CARE_NOT_FOUND);         /* a fresh, empty Redis */
    env_close(&e);
    /* host names are refused: no DNS on the loop */
    care_cache_config_t bad = {.host = "localhost"};
    uv_loop_t l;
    uv_loop_init(&l);
    assert_null(care_cache_new(&l, &bad));
    assert_int_equal(uv_loop_close(&l), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(import_generated_and_bad),
        cmocka_unit_test(update_and_remove_keep_indexes),
        cmocka_unit_test(search_exact_fuzzy_and_order),
        cmocka_unit_test(summaries),
        cmocka_unit_test(reply_budget),
        cmocka_unit_test(cancel_and_close),
        cmocka_unit_test(hung_redis),
        cmocka_unit_test(kill_and_restart),
        cmocka_unit_test(down_at_start),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
