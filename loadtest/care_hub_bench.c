/* care_hub_bench.c -- bin/mhtas-care-hub-bench: care-record latency through a
 * running hub, as a practitioner sees it.
 *
 *   mhtas-care-hub-bench --port N --people FILE [--host IP] [--n 10000]
 *                        [--borough NAME] [--warmup N] [--fsync-dir DIR]
 *   tokens: MHTAS_OPERATOR_TOKEN and MHTAS_PRACTITIONER_TOKEN (or
 *           --operator-token / --practitioner-token; the environment keeps
 *           them out of `ps`)
 *
 * What one sample covers: the C client library (client/lib) over gRPC on
 * cleartext HTTP/2 -> the hub's role gate -> the access rules (practitioner,
 * lawful basis and reason, the incident they hold) -> the Redis look-up
 * (care_cache) -> the rules again -> audit records appended to the journal
 * and fdatasync'ed -> the reply, decoded by the client.
 *
 * Set-up: the operator raises one incident in BOROUGH; the practitioner
 * opens a Subscribe stream, starts a shift, and accepts the offer it gets
 * (as `mhtas-cli run-practitioner` does). Then, one call in flight at a time
 * (closed loop: latencies, not throughput; open-loop arrivals are not needed
 * for a one-in-flight probe, and the output says so):
 *   1. floor: WhoAmI           -- same client, HTTP/2, auth and role gate;
 *                                 no core, no Redis, no journal;
 *   2. floor: GetIncident      -- the same plus the core (the held incident);
 *   3. GetCareSummary          -- NHS numbers from FILE, incident_id, lawful
 *                                 basis DIRECT_CARE, a reason; one READ audit
 *                                 record per call;
 *   4. SearchPersons           -- family name + date of birth from FILE, same
 *                                 access fields; one SEARCH_RESULT audit
 *                                 record per person returned.
 * With --fsync-dir (the hub's data_dir, or any directory on the same disk),
 * a last floor: 200-byte appends + fdatasync to a scratch file there, on
 * this process's thread, one at a time (what the journal's one sync per
 * batch costs on this disk, without the hub).
 * Each phase is preceded by --warmup unrecorded calls. Prints n, p50, p90,
 * p99, p99.9 and max in microseconds per phase (exact, from the sorted
 * samples), the errors, and the 1-minute load average before each phase.
 * Every answer is checked: a read must be OK and be the person asked for, a
 * search OK and include the person. Restricted people are left out of the
 * sample (reading them needs break-glass, which also notifies supervisors).
 *
 * Never prints names, NHS numbers or record content: only counts, status
 * names and the hub's error messages (which by design name no person).
 * Exit status: 0 all checks passed, 1 a failed call or check, 2 usage.
 * tests/cache/bench.sh starts a hub and runs this after the cache bench.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "lib/mhtas_client.h"

#define DEADLINE_MS 10000
#define SETUP_TIMEOUT_MS 15000
#define MAX_PEOPLE 20000
#define MAX_OFFERS 16

typedef struct {
    char nhs[11], family[64], dob[11];
} who_t;

/* The outcome of one call, filled in by on_done. */
typedef struct {
    bool done;
    int status;
    char message[200];
    uint64_t t_end;
    const char *want_nhs;   /* GetCareSummary / SearchPersons: who must come back */
    bool match;             /* the person asked for came back */
    size_t n_matches;       /* SearchPersons */
    uint64_t incident_id;   /* RaiseIncident */
    uint64_t last_seq;      /* WhoAmI */
} result_t;

typedef struct {
    uv_loop_t loop;
    uv_timer_t timer;
    bool timed_out;
    mhtas_client_t *op, *pr;
    int closed;
    uint64_t offers[MAX_OFFERS];
    size_t n_offers;
    int stream_status;      /* the practitioner's Subscribe ended for good: its status, else -1 */
} bench_t;

static bench_t B;

/* ------------------------------------------------------------ the loop */

static void on_timer(uv_timer_t *t)
{
    ((bench_t *)t->data)->timed_out = true;
}

/* Runs the loop until *flag is set or timeout_ms passes (0: no timeout). */
static bool run_until(bench_t *b, const bool *flag, uint64_t timeout_ms)
{
    b->timed_out = false;
    if (timeout_ms)
        uv_timer_start(&b->timer, on_timer, timeout_ms, 0);
    while (!*flag && !b->timed_out)
        uv_run(&b->loop, UV_RUN_ONCE);
    uv_timer_stop(&b->timer);
    return *flag;
}

static void on_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    result_t *r = ctx;
    r->t_end = uv_hrtime();
    r->status = status;
    snprintf(r->message, sizeof r->message, "%s", message ? message : "");
    if (status == MHTAS_GRPC_OK && resp) {
        const ProtobufCMessageDescriptor *d = resp->descriptor;
        if (d == &mhtas__v1__get_care_summary_response__descriptor) {
            const Mhtas__V1__GetCareSummaryResponse *s = (const void *)resp;
            r->match = s->summary && r->want_nhs && strcmp(s->summary->nhs_number, r->want_nhs) == 0;
        } else if (d == &mhtas__v1__search_persons_response__descriptor) {
            const Mhtas__V1__SearchPersonsResponse *s = (const void *)resp;
            r->n_matches = s->n_matches;
            for (size_t k = 0; k < s->n_matches && r->want_nhs; k++)
                r->match |= strcmp(s->matches[k]->nhs_number, r->want_nhs) == 0;
        } else if (d == &mhtas__v1__raise_incident_response__descriptor) {
            const Mhtas__V1__RaiseIncidentResponse *s = (const void *)resp;
            r->incident_id = s->incident ? s->incident->id : 0;
        } else if (d == &mhtas__v1__who_am_iresponse__descriptor) {
            r->last_seq = ((const Mhtas__V1__WhoAmIResponse *)resp)->last_seq;
        }
    }
    r->done = true;
}

/* One call, waited for. Returns the gRPC status (or -1 if it could not be
 * sent); *r holds the rest. t0 is taken just before the call is handed to
 * the library, t_end first thing in its callback. */
static int call_wait(bench_t *b, mhtas_client_t *c, const char *method, const ProtobufCMessage *req, result_t *r,
                     uint64_t *t0)
{
    r->done = false;
    r->status = -1;
    r->match = false;
    r->n_matches = 0;
    r->message[0] = '\0';
    *t0 = uv_hrtime();
    int rc = mhtas_client_call(c, method, req, DEADLINE_MS, on_done, r);
    if (rc < 0) {
        snprintf(r->message, sizeof r->message, "%s", mhtas_client_strerror(rc));
        return -1;
    }
    /* The call's own deadline bounds the wait (the callback fires exactly once). */
    run_until(b, &r->done, 0);
    return r->status;
}

/* ------------------------------------------------------------ events */

static void on_event(void *ctx, const Mhtas__V1__Event *ev)
{
    bench_t *b = ctx;
    if (ev->kind_case == MHTAS__V1__EVENT__KIND_OFFER && ev->offer && ev->offer->incident &&
        b->n_offers < MAX_OFFERS)
        b->offers[b->n_offers++] = ev->offer->incident->id;
}

static void on_stream_end(void *ctx, int status, const char *message)
{
    bench_t *b = ctx;
    if (status != MHTAS_GRPC_CANCELLED)
        fprintf(stderr, "care-hub-bench: Subscribe ended: %s %s\n", mhtas_client_status_name(status), message);
    b->stream_status = status;
}

static void on_closed(void *ctx)
{
    ((bench_t *)ctx)->closed++;
}

/* ------------------------------------------------------------ figures */

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
    return a < c ? -1 : a > c;
}

/* Nearest rank: the smallest sample with at least q of the samples at or below it. */
static double pct_us(const uint64_t *sorted, size_t n, double q)
{
    size_t rank = (size_t)((double)n * q + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

static double loadavg1(void)
{
    double l[3] = { 0, 0, 0 };
    uv_loadavg(l);
    return l[0];
}

typedef struct {
    const char *name;
    uint64_t *lat;
    size_t n, errors, misses, matches;
    double load_before;
    int first_status;
    char first_message[200];
    double p50;
} phase_t;

static void report(phase_t *p, bool search)
{
    qsort(p->lat, p->n, sizeof *p->lat, cmp_u64);
    p->p50 = pct_us(p->lat, p->n, 0.50);
    printf("%-28s n=%zu p50=%.0fus p90=%.0fus p99=%.0fus p99.9=%.0fus max=%.0fus errors=%zu", p->name, p->n, p->p50,
           pct_us(p->lat, p->n, 0.90), pct_us(p->lat, p->n, 0.99), pct_us(p->lat, p->n, 0.999),
           pct_us(p->lat, p->n, 1.0), p->errors);
    if (search)
        printf(" misses=%zu matches/search=%.1f", p->misses, p->n ? (double)p->matches / (double)p->n : 0.0);
    else if (p->misses)
        printf(" wrong_person=%zu", p->misses);
    printf(" load1=%.2f\n", p->load_before);
    if (p->errors)
        printf("  first error: %s \"%s\"\n", mhtas_client_status_name(p->first_status), p->first_message);
    fflush(stdout);
}

/* ------------------------------------------------------------ people */

static size_t load_people(const char *file, who_t **out, size_t *restricted)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        perror(file);
        return 0;
    }
    who_t *people = calloc(MAX_PEOPLE, sizeof *people);
    size_t np = 0;
    char *line = NULL;
    size_t lcap = 0;
    *restricted = 0;
    /* every 5th person of the file (spread over it), up to MAX_PEOPLE */
    for (size_t ln = 0; people && np < MAX_PEOPLE && getline(&line, &lcap, f) > 0; ln++) {
        if (ln % 5)
            continue;
        json_t *d = json_loads(line, 0, NULL);
        json_t *pat = json_object_get(d, "patient");
        json_t *nm = json_array_get(json_object_get(pat, "name"), 0);
        const char *nhs = json_string_value(json_object_get(d, "nhsNumber"));
        const char *fam = json_string_value(json_object_get(nm, "family"));
        const char *dob = json_string_value(json_object_get(pat, "birthDate"));
        if (json_is_true(json_object_get(d, "restricted"))) {
            (*restricted)++;
        } else if (nhs && fam && dob && strlen(nhs) == 10 && strlen(dob) == 10 && strlen(fam) < 64) {
            memcpy(people[np].nhs, nhs, 11);
            memcpy(people[np].family, fam, strlen(fam) + 1);
            memcpy(people[np].dob, dob, 11);
            np++;
        }
        json_decref(d);
    }
    free(line);
    fclose(f);
    *out = people;
    return np;
}

/* ------------------------------------------------------------ phases */

enum { PH_WHOAMI, PH_GET_INCIDENT, PH_READ, PH_SEARCH };

static void build_and_call(bench_t *b, int kind, const who_t *w, uint64_t incident, result_t *r, uint64_t *t0)
{
    static char reason[] = "benchmark: advising on the incident I hold";
    if (kind == PH_WHOAMI) {
        Mhtas__V1__WhoAmIRequest q = MHTAS__V1__WHO_AM_IREQUEST__INIT;
        call_wait(b, b->pr, "WhoAmI", &q.base, r, t0);
    } else if (kind == PH_GET_INCIDENT) {
        Mhtas__V1__GetIncidentRequest q = MHTAS__V1__GET_INCIDENT_REQUEST__INIT;
        q.incident_id = incident;
        call_wait(b, b->pr, "GetIncident", &q.base, r, t0);
    } else if (kind == PH_READ) {
        Mhtas__V1__GetCareSummaryRequest q = MHTAS__V1__GET_CARE_SUMMARY_REQUEST__INIT;
        q.nhs_number = (char *)w->nhs;
        q.incident_id = incident;
        q.lawful_basis = MHTAS__V1__LAWFUL_BASIS__LAWFUL_BASIS_DIRECT_CARE;
        q.reason = reason;
        r->want_nhs = w->nhs;
        call_wait(b, b->pr, "GetCareSummary", &q.base, r, t0);
    } else {
        Mhtas__V1__SearchPersonsRequest q = MHTAS__V1__SEARCH_PERSONS_REQUEST__INIT;
        q.family_name = (char *)w->family;
        q.date_of_birth = (char *)w->dob;
        q.incident_id = incident;
        q.lawful_basis = MHTAS__V1__LAWFUL_BASIS__LAWFUL_BASIS_DIRECT_CARE;
        q.reason = reason;
        r->want_nhs = w->nhs;
        call_wait(b, b->pr, "SearchPersons", &q.base, r, t0);
    }
}

/* warmup unrecorded calls, then n recorded ones. People are taken in order
 * from `start` (a different slice per phase where it matters). */
static void run_phase(bench_t *b, phase_t *p, int kind, const who_t *people, size_t np, size_t start,
                      size_t warmup, uint64_t incident)
{
    result_t r;
    memset(&r, 0, sizeof r);
    uint64_t t0;
    for (size_t i = 0; i < warmup; i++)
        build_and_call(b, kind, &people[(start + p->n + i) % np], incident, &r, &t0);
    p->load_before = loadavg1();
    for (size_t i = 0; i < p->n; i++) {
        const who_t *w = &people[(start + i) % np];
        memset(&r, 0, sizeof r);
        build_and_call(b, kind, w, incident, &r, &t0);
        p->lat[i] = r.done ? r.t_end - t0 : 0;
        if (r.status != MHTAS_GRPC_OK) {
            if (p->errors++ == 0) {
                p->first_status = r.status;
                snprintf(p->first_message, sizeof p->first_message, "%s", r.message);
            }
        } else if ((kind == PH_READ || kind == PH_SEARCH) && !r.match) {
            p->misses++;
        }
        p->matches += r.n_matches;
    }
}

/* ------------------------------------------------------------ disk */

/* n appends of 200 bytes, each followed by fdatasync, to a scratch file in
 * dir (removed afterwards). 0, or -1 with errno. */
static int fsync_phase(const char *dir, phase_t *p)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/care-hub-bench-fsync.%ld", dir, (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char rec[200];
    memset(rec, 'x', sizeof rec);
    int rc = 0;
    p->load_before = loadavg1();
    for (size_t i = 0; i < p->n && rc == 0; i++) {
        uint64_t t0 = uv_hrtime();
        if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec || fdatasync(fd) != 0)
            rc = -1;
        p->lat[i] = uv_hrtime() - t0;
    }
    int saved = errno;
    close(fd);
    unlink(path);
    errno = saved;
    return rc;
}

/* ------------------------------------------------------------ main */

static void usage(FILE *out)
{
    fputs("usage: mhtas-care-hub-bench --port N --people FILE [--host IP] [--n COUNT] [--warmup COUNT]\n"
          "                            [--borough NAME] [--fsync-dir DIR]\n"
          "                            [--operator-token T] [--practitioner-token T]\n"
          "tokens: MHTAS_OPERATOR_TOKEN, MHTAS_PRACTITIONER_TOKEN (preferred: not shown in ps)\n"
          "The practitioner must be able to take incidents raised in NAME [Manchester].\n",
          out);
}

static mhtas_client_t *client(bench_t *b, const char *host, int port, const char *token, bool events)
{
    mhtas_client_options_t o;
    memset(&o, 0, sizeof o);
    o.host = host;
    o.port = port;
    o.token = token;
    o.default_deadline_ms = DEADLINE_MS;
    if (events) {
        o.on_event = on_event;
        o.on_stream_end = on_stream_end;
    }
    o.ctx = b;
    return mhtas_client_new(&b->loop, &o);
}

static int setup_fail(const char *what, const result_t *r)
{
    fprintf(stderr, "care-hub-bench: %s failed: %s \"%s\"\n", what,
            r->status < 0 ? "not sent" : mhtas_client_status_name(r->status), r->message);
    return 1;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *file = NULL, *borough = "Manchester", *fsync_dir = NULL;
    const char *op_token = getenv("MHTAS_OPERATOR_TOKEN"), *pr_token = getenv("MHTAS_PRACTITIONER_TOKEN");
    int port = 0;
    size_t n = 10000, warmup = 200;
    static const struct option opts[] = { { "host", required_argument, 0, 'h' },
                                          { "port", required_argument, 0, 'p' },
                                          { "people", required_argument, 0, 'f' },
                                          { "n", required_argument, 0, 'n' },
                                          { "warmup", required_argument, 0, 'w' },
                                          { "borough", required_argument, 0, 'b' },
                                          { "fsync-dir", required_argument, 0, 'd' },
                                          { "operator-token", required_argument, 0, 'o' },
                                          { "practitioner-token", required_argument, 0, 't' },
                                          { "help", no_argument, 0, '?' },
                                          { 0, 0, 0, 0 } };
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'f': file = optarg; break;
        case 'n': n = strtoul(optarg, NULL, 10); break;
        case 'w': warmup = strtoul(optarg, NULL, 10); break;
        case 'b': borough = optarg; break;
        case 'd': fsync_dir = optarg; break;
        case 'o': op_token = optarg; break;
        case 't': pr_token = optarg; break;
        default: usage(stderr); return 2;
        }
    }
    if (file == NULL || n == 0 || port <= 0 || port > 65535 || !op_token || !*op_token || !pr_token ||
        !*pr_token) {
        usage(stderr);
        return 2;
    }
    size_t restricted = 0;
    who_t *people = NULL;
    size_t np = load_people(file, &people, &restricted);
    if (np == 0) {
        fprintf(stderr, "care-hub-bench: no usable people in the file\n");
        free(people);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    bench_t *b = &B;
    b->stream_status = -1;
    uv_loop_init(&b->loop);
    uv_timer_init(&b->loop, &b->timer);
    b->timer.data = b;
    b->op = client(b, host, port, op_token, false);
    b->pr = client(b, host, port, pr_token, true);
    if (b->op == NULL || b->pr == NULL) {
        fprintf(stderr, "care-hub-bench: --host must be an IP address\n");
        return 2;
    }
    mhtas_client_start(b->op);
    mhtas_client_start(b->pr);

    int rc = 0;
    uint64_t t0, incident = 0;
    result_t r;
    memset(&r, 0, sizeof r);
    printf("# care records through the hub: gRPC (h2c, C client library) -> role gate -> access rules ->\n"
           "#   Redis look-up -> audit records journalled and fdatasync'ed -> reply\n"
           "# one call in flight at a time (closed loop): these are latencies, not throughput;\n"
           "#   open-loop arrivals are not needed for a one-in-flight probe\n"
           "# sample: %zu people from the file (every 5th line, %zu restricted ones left out: they need "
           "break-glass)\n",
           np, restricted);

    /* The practitioner: a live stream first (the library asks WhoAmI for
     * the hub's last seq and subscribes after it, so the offer cannot be
     * missed), then the shift. */
    mhtas_client_subscribe(b->pr, 0);
    Mhtas__V1__StartShiftRequest start = MHTAS__V1__START_SHIFT_REQUEST__INIT;
    if (call_wait(b, b->pr, "StartShift", &start.base, &r, &t0) != MHTAS_GRPC_OK) {
        rc = setup_fail("StartShift (practitioner token)", &r);
        goto out;
    }
    {
        Mhtas__V1__RaiseIncidentRequest raise = MHTAS__V1__RAISE_INCIDENT_REQUEST__INIT;
        Mhtas__V1__IncidentDetails d = MHTAS__V1__INCIDENT_DETAILS__INIT;
        char ref[64];
        snprintf(ref, sizeof ref, "BENCH-%" PRIu64, uv_hrtime());
        d.police_ref = ref;
        d.priority = MHTAS__V1__PRIORITY__PRIORITY_URGENT;
        d.borough = (char *)borough;
        d.question = "care-record latency benchmark: no real person";
        d.rcrp = MHTAS__V1__RCRP_DECISION__RCRP_DECISION_UNDER_REVIEW;
        raise.details = &d;
        if (call_wait(b, b->op, "RaiseIncident", &raise.base, &r, &t0) != MHTAS_GRPC_OK || r.incident_id == 0) {
            rc = setup_fail("RaiseIncident (operator token)", &r);
            goto out;
        }
        incident = r.incident_id;
    }
    /* Wait for the offer of that incident on the practitioner's stream. */
    {
        bool offered = false;
        uint64_t deadline = uv_now(&b->loop) + SETUP_TIMEOUT_MS;
        while (!offered && uv_now(&b->loop) < deadline && b->stream_status < 0) {
            for (size_t i = 0; i < b->n_offers; i++)
                offered |= b->offers[i] == incident;
            if (!offered)
                run_until(b, &offered, 100);
        }
        if (!offered) {
            fprintf(stderr,
                    "care-hub-bench: no offer of the incident reached the practitioner within %d ms "
                    "(is the practitioner eligible for borough %s and nobody else on shift?)\n",
                    SETUP_TIMEOUT_MS, borough);
            rc = 1;
            goto out;
        }
    }
    {
        Mhtas__V1__AcceptRequest acc = MHTAS__V1__ACCEPT_REQUEST__INIT;
        acc.incident_id = incident;
        if (call_wait(b, b->pr, "Accept", &acc.base, &r, &t0) != MHTAS_GRPC_OK) {
            rc = setup_fail("Accept", &r);
            goto out;
        }
    }
    printf("# practitioner holds the benchmark incident; %zu warm-up calls before each phase\n", warmup);

    {
        static const char *const names[] = { "floor: WhoAmI", "floor: GetIncident", "GetCareSummary",
                                             "SearchPersons family+dob" };
        phase_t ph[4];
        memset(ph, 0, sizeof ph);
        for (int k = 0; k < 4; k++) {
            ph[k].name = names[k];
            ph[k].n = n;
            ph[k].lat = calloc(n, sizeof(uint64_t));
            if (ph[k].lat == NULL) {
                fprintf(stderr, "care-hub-bench: out of memory\n");
                rc = 1;
                goto out;
            }
        }
        uint64_t t_start = uv_hrtime();
        for (int k = 0; k < 4; k++) {
            /* Reads and searches start at different people so that a search
             * does not find Redis pages the read just touched. */
            run_phase(b, &ph[k], k, people, np, k == PH_SEARCH ? np / 2 : 0, warmup, incident);
            report(&ph[k], k == PH_SEARCH);
            if (ph[k].errors || ph[k].misses)
                rc = 1;
        }
        printf("# through the hub minus floor (p50): GetCareSummary %+.0fus over WhoAmI, %+.0fus over "
               "GetIncident; SearchPersons %+.0fus over WhoAmI, %+.0fus over GetIncident\n",
               ph[PH_READ].p50 - ph[PH_WHOAMI].p50, ph[PH_READ].p50 - ph[PH_GET_INCIDENT].p50,
               ph[PH_SEARCH].p50 - ph[PH_WHOAMI].p50, ph[PH_SEARCH].p50 - ph[PH_GET_INCIDENT].p50);
        printf("# %.1f s for all phases; load average (1 min) now %.2f\n",
               (double)(uv_hrtime() - t_start) / 1e9, loadavg1());
        for (int k = 0; k < 4; k++)
            free(ph[k].lat);
    }
    if (fsync_dir) {
        phase_t fs;
        memset(&fs, 0, sizeof fs);
        fs.name = "disk: 200 B append+fdatasync";
        fs.n = n < 2000 ? n : 2000;
        fs.lat = calloc(fs.n, sizeof(uint64_t));
        if (fs.lat && fsync_phase(fsync_dir, &fs) == 0) {
            report(&fs, false);
        } else {
            fprintf(stderr, "care-hub-bench: --fsync-dir: %s\n", fs.lat ? strerror(errno) : "out of memory");
            rc = 1;
        }
        free(fs.lat);
    }

    /* Tidy up, best effort: the incident is cancelled, the shift ended. */
    {
        Mhtas__V1__CancelIncidentRequest cancel = MHTAS__V1__CANCEL_INCIDENT_REQUEST__INIT;
        cancel.incident_id = incident;
        cancel.reason = "care-record benchmark finished";
        call_wait(b, b->op, "CancelIncident", &cancel.base, &r, &t0);
        Mhtas__V1__EndShiftRequest end = MHTAS__V1__END_SHIFT_REQUEST__INIT;
        call_wait(b, b->pr, "EndShift", &end.base, &r, &t0);
    }

out:
    mhtas_client_close(b->op, on_closed, b);
    mhtas_client_close(b->pr, on_closed, b);
    uv_close((uv_handle_t *)&b->timer, NULL);
    while (b->closed < 2)
        uv_run(&b->loop, UV_RUN_ONCE);
    mhtas_client_free(b->op);
    mhtas_client_free(b->pr);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&b->loop) != 0)
        fprintf(stderr, "care-hub-bench: loop not closed cleanly\n");
    free(people);
    return rc;
}
