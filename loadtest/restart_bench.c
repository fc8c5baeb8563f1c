/* restart_bench.c -- how long the hub takes to come back with a large journal.
 *
 *   bin/mhtas-restart-bench [RECORDS]        (default 1000000)
 *
 * A child process runs the real hub in-process (hub_new on a journal in a
 * temporary directory under build/) and drives incidents through their whole
 * life with hub_call -- raise, accept, three messages, propose, agree -- until
 * the journal holds RECORDS records, waits until every reply is durable, and
 * exits without shutting down (as a crash would: no final snapshot). The
 * parent then times, in-process:
 *   1. recovery from the journal alone (replay every record into the core,
 *      re-route, write a fresh snapshot) -- the restart after a crash;
 *   2. a second start, which finds that snapshot -- the restart after a
 *      restart.
 * Both are what `bin/mhtas-hub` does before it prints MHTAS_READY.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "conf/conf.h"
#include "hub/hub.h"
#include "log/log.h"
#include "mhtas/v1/hub.pb-c.h"

static const char *users_ini =
    "[user:p.a]\nname = Asha\nrole = practitioner\nprovider = gmmh\ncapacity = 50\ntoken_hash = %s\n\n"
    "[user:op.one]\nname = Olu\nrole = operator\ntoken_hash = %s\n";

static const char *main_ini =
    "[hub]\nlisten_host = 127.0.0.1\ngrpc_port = 0\nhttp_port = 0\nusers_file = users.ini\n"
    "static_dir = .\ndata_dir = data\nlog_level = warn\n\n"
    "[routing]\nstrategy = linear\nwrap_up_ms = 0\n\n"
    "[borough:Manchester]\nprovider = gmmh\n";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static char *hash_hex(const char *token)
{
    static char out[2][80];
    static int k;
    uint8_t h[HUB_TOKEN_HASH_LEN];
    hub_token_hash(token, strlen(token), h);
    char *o = out[k++ % 2];
    int n = sprintf(o, "blake2b:");
    for (int i = 0; i < HUB_TOKEN_HASH_LEN; i++)
        n += sprintf(o + n, "%02x", h[i]);
    return o;
}

typedef struct ctx {
    int status;
    uint64_t incident;
    int outstanding;
} ctx_t;

static void reply_cb(void *data, const hub_reply_t *r)
{
    ctx_t *c = data;
    c->outstanding--;
    if (r->status != 0) {
        fprintf(stderr, "call failed: %d %s\n", r->status, r->message ? r->message : "");
        c->status = r->status;
        return;
    }
    if (r->msg && r->msg->descriptor == &mhtas__v1__raise_incident_response__descriptor)
        c->incident = ((const Mhtas__V1__RaiseIncidentResponse *)r->msg)->incident->id;
}

static const hub_method_t *method(const char *name)
{
    char path[80];
    int n = snprintf(path, sizeof path, "/mhtas.v1.Hub/%s", name);
    return hub_method_by_path(path, (size_t)n);
}

/* One call, run until its (possibly durable, so deferred) reply arrives. */
static void call(uv_loop_t *loop, hub_t *hub, const hub_user_t *u, const char *name, ProtobufCMessage *req, ctx_t *c)
{
    c->outstanding++;
    hub_call(hub, u, method(name), req, reply_cb, c);
    while (c->outstanding > 0)
        uv_run(loop, UV_RUN_ONCE);
    if (c->status != 0)
        exit(1);
}

static void drop_event(void *ctx, hub_event_t *ev)
{
    (void)ctx;
    (void)ev;
}

static int fill(const char *cfgpath, long target)
{
    char err[512];
    hub_config_t *cfg = hub_config_load(cfgpath, NULL, 0, err, sizeof err);
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    hub_t *hub = hub_new(&loop, cfg, err, sizeof err);
    if (hub == NULL) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    const hub_user_t *pa = &cfg->users[0], *op = &cfg->users[1];
    ctx_t c = { 0 };
    /* A practitioner is offered incidents only while they have a live event
     * stream: subscribe, and drop the events. */
    hub_subscribe(hub, pa, 0, drop_event, NULL);
    Mhtas__V1__StartShiftRequest ss = MHTAS__V1__START_SHIFT_REQUEST__INIT;
    call(&loop, hub, pa, "StartShift", &ss.base, &c);
    long records = 0;
    char ref[64], key[64], text[200];
    memset(text, 'a', 160);
    text[160] = '\0';
    for (long i = 0; records < target; i++) {
        Mhtas__V1__Person person = MHTAS__V1__PERSON__INIT;
        person.family_name = "Benchperson";
        person.given_names = "Sam";
        person.date_of_birth = "1980-02-29";
        Mhtas__V1__IncidentDetails d = MHTAS__V1__INCIDENT_DETAILS__INIT;
        snprintf(ref, sizeof ref, "GMP-BENCH-%ld", i);
        d.police_ref = ref;
        d.priority = MHTAS__V1__PRIORITY__PRIORITY_URGENT;
        d.borough = "Manchester";
        d.place = "Piccadilly Gardens";
        d.person = &person;
        d.concerns = "Distressed, says they want to end their life; no weapon seen";
        d.question = "Known to services? Crisis plan?";
        d.rcrp = MHTAS__V1__RCRP_DECISION__RCRP_DECISION_UNDER_REVIEW;
        Mhtas__V1__RaiseIncidentRequest raise = MHTAS__V1__RAISE_INCIDENT_REQUEST__INIT;
        raise.details = &d;
        snprintf(key, sizeof key, "k-%ld", i);
        raise.idempotency_key = key;
        call(&loop, hub, op, "RaiseIncident", &raise.base, &c);
        uint64_t id = c.incident;
        Mhtas__V1__AcceptRequest acc = MHTAS__V1__ACCEPT_REQUEST__INIT;
        acc.incident_id = id;
        call(&loop, hub, pa, "Accept", &acc.base, &c);
        for (int m = 0; m < 3; m++) {
            Mhtas__V1__PostMessageRequest pm = MHTAS__V1__POST_MESSAGE_REQUEST__INIT;
            pm.incident_id = id;
            pm.text = text;
            call(&loop, hub, m == 1 ? op : pa, "PostMessage", &pm.base, &c);
        }
        Mhtas__V1__OutcomeCode codes[] = { MHTAS__V1__OUTCOME_CODE__OUTCOME_CODE_REFER_CMHT };
        Mhtas__V1__Outcome o = MHTAS__V1__OUTCOME__INIT;
        o.codes = codes;
        o.n_codes = 1;
        o.summary = "CMHT visit today";
        Mhtas__V1__ProposeOutcomeRequest pr = MHTAS__V1__PROPOSE_OUTCOME_REQUEST__INIT;
        pr.incident_id = id;
        pr.outcome = &o;
        call(&loop, hub, pa, "ProposeOutcome", &pr.base, &c);
        Mhtas__V1__AgreeOutcomeRequest ag = MHTAS__V1__AGREE_OUTCOME_REQUEST__INIT;
        ag.incident_id = id;
        ag.agree = 1;
        call(&loop, hub, op, "AgreeOutcome", &ag.base, &c);
        /* raised, queued, offered, accepted, 3 messages (+ first advice),
         * proposed, closed, and the practitioner's status changes */
        records = (long)hub_last_seq(hub) - (1l << 20);
        if (i % 10000 == 0)
            fprintf(stderr, "  %ld incidents, about %ld records\n", i, records);
    }
    /* Everything is durable (every reply came back); leave as a crash would. */
    fprintf(stderr, "  filled: about %ld records\n", records);
    _exit(0);
}

static double start_once(const char *cfgpath, size_t *incidents)
{
    char err[512];
    hub_config_t *cfg = hub_config_load(cfgpath, NULL, 0, err, sizeof err);
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    uint64_t t0 = uv_hrtime();
    hub_t *hub = hub_new(&loop, cfg, err, sizeof err);
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    if (hub == NULL) {
        fprintf(stderr, "start failed: %s\n", err);
        exit(1);
    }
    *incidents = 0;
    (void)incidents;
    hub_close(hub);
    uv_run(&loop, UV_RUN_DEFAULT);
    hub_destroy(hub);
    uv_loop_close(&loop);
    hub_config_free(cfg);
    return ms;
}

int main(int argc, char **argv)
{
    long target = argc > 1 ? atol(argv[1]) : 1000000;
    hub_log_level = HUB_LOG_WARN;
    char dir[] = "build/restart-bench-XXXXXX";
    mkdir("build", 0755);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    char path[512], users[1024];
    snprintf(path, sizeof path, "%s/users.ini", dir);
    snprintf(users, sizeof users, users_ini, hash_hex("p"), hash_hex("o"));
    write_file(path, users);
    snprintf(path, sizeof path, "%s/mhtas.ini", dir);
    write_file(path, main_ini);

    fprintf(stderr, "filling a journal with %ld records in %s ...\n", target, dir);
    pid_t pid = fork();
    if (pid == 0)
        return fill(path, target);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "fill failed\n");
        return 1;
    }
    char du[600];
    snprintf(du, sizeof du, "du -sh %s/data", dir);
    fflush(stdout);
    if (system(du) != 0)
        fprintf(stderr, "du failed\n");
    size_t n;
    double crash_ms = start_once(path, &n);
    double again_ms = start_once(path, &n);
    printf("restart with %ld journalled records, replayed from the segments: %.0f ms\n", target, crash_ms);
    printf("restart after that (from the snapshot written at start-up):     %.0f ms\n", again_ms);
    return 0;
}
