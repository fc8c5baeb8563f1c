/* client_test.c -- the client library on a real libuv loop against a real
 * bin/mhtas-hub started as a child process with a generated config (STYLE.md
 * 8.33-8.34): unary calls and statuses, the Subscribe stream, a hub restart
 * in the middle (reconnect, resume, RESUME_GAP), retry policy across a lost
 * connection, deadline expiry against a stopped hub, bad credentials, and a
 * clean close (every call CANCELLED, uv_loop_close returns 0). A few tests
 * need no hub (no listener on the port).
 *
 * The hub binary is $MHTAS_HUB, else found relative to this test binary
 * (build/<kind>/tests/client/ -> build/<kind>/bin, then the repo's bin/), else
 * ./bin/mhtas-hub. Tests that need it FAIL when it is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/mhtas_client.h"

#define TOK_PRAC "tok-p.a-client-test"
#define TOK_OP "tok-op.one-client-test"

/* ------------------------------------------------------------ the hub process */

typedef struct hub_proc {
    pid_t pid;
    int port;
    char dir[PATH_MAX];
    char bin[PATH_MAX];
} hub_proc_t;

/* Hubs this process started and has not reaped: a failed assertion jumps out
 * of a test before hub_cleanup, so the per-test teardown kills these. */
static pid_t live_hubs[8];

static void live_add(pid_t pid)
{
    for (size_t i = 0; i < sizeof live_hubs / sizeof live_hubs[0]; i++)
        if (live_hubs[i] == 0) {
            live_hubs[i] = pid;
            return;
        }
}

static void live_remove(pid_t pid)
{
    for (size_t i = 0; i < sizeof live_hubs / sizeof live_hubs[0]; i++)
        if (live_hubs[i] == pid)
            live_hubs[i] = 0;
}

static int kill_live_hubs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof live_hubs / sizeof live_hubs[0]; i++)
        if (live_hubs[i] > 0) {
            int st;
            kill(live_hubs[i], SIGKILL);
            waitpid(live_hubs[i], &st, 0);
            live_hubs[i] = 0;
        }
    return 0;
}

static bool find_hub(char *out, size_t cap)
{
    const char *env = getenv("MHTAS_HUB");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return access(out, X_OK) == 0;
    }
    char self[PATH_MAX - 64]; /* room for the relative part in out */
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        const char *rel[] = { "../../bin/mhtas-hub", "../../../../bin/mhtas-hub" };
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(out, cap, "%s/%s", self, rel[i]);
            if (access(out, X_OK) == 0)
                return true;
        }
    }
    snprintf(out, cap, "bin/mhtas-hub");
    return access(out, X_OK) == 0;
}

static void hash_token(const char *bin, const char *token, char *out, size_t cap)
{
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "'%s' --hash-token '%s'", bin, token);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, (int)cap, p));
    pclose(p);
    out[strcspn(out, "\r\n")] = '\0';
    assert_int_equal(strncmp(out, "blake2b:", 8), 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Writes the config into a fresh temp dir. */
static void hub_prepare(hub_proc_t *h)
{
    memset(h, 0, sizeof *h);
    char found[PATH_MAX];
    if (!find_hub(found, sizeof found))
        fail_msg("hub binary not found (%s): run make, or set MHTAS_HUB", found);
    /* absolute: the hub runs in its temp dir */
    if (realpath(found, h->bin) == NULL)
        fail_msg("realpath(%s): %s", found, strerror(errno));
    snprintf(h->dir, sizeof h->dir, "/tmp/mhtas-client-test-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    write_file(h->dir, "mhtas.ini",
               "[hub]\nlisten_host = 127.0.0.1\ngrpc_port = 0\nhttp_port = 0\nusers_file = users.ini\n"
               "static_dir = .\ndata_dir = data\nlog_level = warn\n"
               "[routing]\nstrategy = linear\noffer_timeout_ms = 10000\n"
               "[borough:Salford]\nprovider = GMMH\nneighbours = Manchester\n"
               "[borough:Manchester]\nprovider = GMMH\nneighbours = Salford\n");
    char hp[128], ho[128], users[1024];
    hash_token(h->bin, TOK_PRAC, hp, sizeof hp);
    hash_token(h->bin, TOK_OP, ho, sizeof ho);
    snprintf(users, sizeof users,
             "[user:p.a]\nname = Asha Practitioner\nrole = practitioner\ntoken_hash = %s\n"
             "provider = GMMH\ncapacity = 3\n\n"
             "[user:op.one]\nname = Olu Operator\nrole = operator\ntoken_hash = %s\n",
             hp, ho);
    write_file(h->dir, "users.ini", users);
    char data[PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data", h->dir);
    assert_int_equal(mkdir(data, 0700), 0);
    snprintf(data, sizeof data, "%s/data2", h->dir);
    assert_int_equal(mkdir(data, 0700), 0);
}

/* Starts the hub on `port` (0: any) and waits for MHTAS_READY. `extra` is
 * one more --set, or NULL. */
static void hub_spawn_with(hub_proc_t *h, int port, const char *extra)
{
    char out[PATH_MAX + 16], err[PATH_MAX + 16], set[64];
    snprintf(out, sizeof out, "%s/out.txt", h->dir);
    snprintf(err, sizeof err, "%s/err.txt", h->dir);
    snprintf(set, sizeof set, "hub.grpc_port=%d", port);
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(err, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_true(fo >= 0 && fe >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(h->dir) != 0)
            _exit(127);
        dup2(fo, 1);
        dup2(fe, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        if (extra)
            execl(h->bin, h->bin, "--config", "mhtas.ini", "--set", set, "--set", "hub.http_port=0", "--set",
                  extra, (char *)NULL);
        else
            execl(h->bin, h->bin, "--config", "mhtas.ini", "--set", set, "--set", "hub.http_port=0",
                  (char *)NULL);
        _exit(127);
    }
    close(fo);
    close(fe);
    h->pid = pid;
    live_add(pid);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(out, "r");
        char line[256];
        int gp = 0;
        if (f) {
            while (fgets(line, sizeof line, f))
                if (sscanf(line, "MHTAS_READY grpc_port=%d", &gp) == 1)
                    break;
            fclose(f);
        }
        if (gp > 0) {
            h->port = gp;
            return;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            live_remove(pid);
            h->pid = 0;
            fail_msg("hub exited before MHTAS_READY (see %s)", err);
        }
        usleep(20000);
    }
    fail_msg("hub did not print MHTAS_READY in 10 s (see %s)", err);
}

static void hub_spawn(hub_proc_t *h, int port)
{
    hub_spawn_with(h, port, NULL);
}

static void hub_kill(hub_proc_t *h, int sig)
{
    if (h->pid <= 0)
        return;
    if (sig != SIGKILL)
        kill(h->pid, SIGCONT); /* a stopped hub cannot handle SIGTERM */
    kill(h->pid, sig);
    int st;
    waitpid(h->pid, &st, 0);
    live_remove(h->pid);
    h->pid = 0;
}

static void hub_cleanup(hub_proc_t *h)
{
    hub_kill(h, SIGKILL);
    if (h->dir[0] && getenv("MHTAS_KEEP_TEST_DIRS") == NULL) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", h->dir);
    }
}

/* A port with nothing listening: bind an ephemeral port, then let it go. */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------------------ a client on a loop */

typedef struct tc {
    uv_loop_t *loop;
    uv_timer_t guard;        /* keeps uv_run(ONCE) ticking while we wait */
    mhtas_client_t *c;
    int state_count[5];
    int events;
    uint64_t seqs[512];
    int n_seqs;
    int gaps;
    int offers;
    uint64_t last_offer_id;
    uint64_t last_offer_seq;
    bool stream_ended;
    int stream_end_status;
    bool closed;
} tc_t;

typedef struct res {
    bool done;
    int status;
    char msg[256];
    uint64_t id;         /* incident id, when the response has an incident */
    int state;           /* incident state */
    uint64_t last_seq;   /* WhoAmI */
    char user[64];       /* WhoAmI */
    uint64_t at_ms;      /* loop time of completion */
} res_t;

static void noop_timer(uv_timer_t *t)
{
    (void)t;
}

#define RUN_UNTIL(t, cond, ms)                                                                     \
    do {                                                                                           \
        uint64_t end_ = uv_now((t)->loop) + (ms);                                                  \
        while (!(cond) && uv_now((t)->loop) < end_)                                                \
            uv_run((t)->loop, UV_RUN_ONCE);                                                        \
    } while (0)

static void on_state(void *ctx, mhtas_client_state_t st, const char *reason, uint64_t retry_in)
{
    (void)reason;
    (void)retry_in;
    tc_t *t = ctx;
    t->state_count[st]++;
}

static void on_event(void *ctx, const Mhtas__V1__Event *ev)
{
    tc_t *t = ctx;
    t->events++;
    if (t->n_seqs < (int)(sizeof t->seqs / sizeof t->seqs[0]))
        t->seqs[t->n_seqs++] = ev->seq;
    if (ev->kind_case == MHTAS__V1__EVENT__KIND_NOTICE && ev->notice &&
        ev->notice->kind == MHTAS__V1__NOTICE_KIND__NOTICE_KIND_RESUME_GAP)
        t->gaps++;
    if (ev->kind_case == MHTAS__V1__EVENT__KIND_OFFER && ev->offer && ev->offer->incident) {
        t->offers++;
        t->last_offer_id = ev->offer->incident->id;
        t->last_offer_seq = ev->seq;
    }
}

static void on_stream_end(void *ctx, int status, const char *message)
{
    (void)message;
    tc_t *t = ctx;
    t->stream_ended = true;
    t->stream_end_status = status;
}

static tc_t *tc_new(uv_loop_t *loop, int port, const char *token, bool fail_fast)
{
    tc_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->loop = loop;
    uv_timer_init(loop, &t->guard);
    uv_timer_start(&t->guard, noop_timer, 10, 10);
    mhtas_client_options_t o;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.port = port;
    o.token = token;
    o.backoff_min_ms = 50;
    o.backoff_max_ms = 300;
    o.fail_fast = fail_fast;
    o.on_state = on_state;
    o.on_event = on_event;
    o.on_stream_end = on_stream_end;
    o.ctx = t;
    t->c = mhtas_client_new(loop, &o);
    assert_non_null(t->c);
    assert_int_equal(mhtas_client_start(t->c), 0);
    assert_int_equal(mhtas_client_start(t->c), MHTAS_CLIENT_ESTATE);
    return t;
}

static void tc_closed(void *ctx)
{
    tc_t *t = ctx;
    t->closed = true;
}

static void tc_free(tc_t *t)
{
    mhtas_client_close(t->c, tc_closed, t);
    mhtas_client_close(t->c, tc_closed, t); /* a second close is a no-op */
    RUN_UNTIL(t, t->closed, 5000);
    assert_true(t->closed);
    mhtas_client_free(t->c);
    uv_close((uv_handle_t *)&t->guard, NULL);
    uv_run(t->loop, UV_RUN_NOWAIT); /* the guard's close; other clients may live on */
    free(t);
}

static void loop_done(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void res_cb(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    res_t *r = ctx;
    assert_false(r->done); /* exactly once */
    assert_non_null(message);
    r->done = true;
    r->status = status;
    snprintf(r->msg, sizeof r->msg, "%s", message);
    if (status == MHTAS_GRPC_OK)
        assert_non_null(resp);
    else
        assert_null(resp);
    if (resp == NULL)
        return;
    const Mhtas__V1__Incident *inc = NULL;
    const ProtobufCMessageDescriptor *d = resp->descriptor;
    if (d == &mhtas__v1__who_am_iresponse__descriptor) {
        const Mhtas__V1__WhoAmIResponse *w = (const void *)resp;
        r->last_seq = w->last_seq;
        if (w->user)
            snprintf(r->user, sizeof r->user, "%s", w->user->id);
    } else if (d == &mhtas__v1__raise_incident_response__descriptor) {
        inc = ((const Mhtas__V1__RaiseIncidentResponse *)resp)->incident;
    } else if (d == &mhtas__v1__accept_response__descriptor) {
        inc = ((const Mhtas__V1__AcceptResponse *)resp)->incident;
    } else if (d == &mhtas__v1__get_incident_response__descriptor) {
        inc = ((const Mhtas__V1__GetIncidentResponse *)resp)->incident;
    }
    if (inc) {
        r->id = inc->id;
        r->state = inc->state;
    }
}

static void call_ok(tc_t *t, const char *method, const ProtobufCMessage *req, int64_t deadline, res_t *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(mhtas_client_call(t->c, method, req, deadline, res_cb, r), 0);
}

static void wait_res(tc_t *t, res_t *r, int ms)
{
    RUN_UNTIL(t, r->done, ms);
    assert_true(r->done);
    r->at_ms = uv_now(t->loop);
}

static void whoami(tc_t *t, res_t *r, int64_t deadline)
{
    Mhtas__V1__WhoAmIRequest req = MHTAS__V1__WHO_AM_IREQUEST__INIT;
    call_ok(t, "WhoAmI", &req.base, deadline, r);
}

static void raise_incident(tc_t *t, res_t *r, const char *key)
{
    Mhtas__V1__RaiseIncidentRequest req = MHTAS__V1__RAISE_INCIDENT_REQUEST__INIT;
    Mhtas__V1__IncidentDetails d = MHTAS__V1__INCIDENT_DETAILS__INIT;
    d.police_ref = "GMP-TEST-0001";
    d.priority = MHTAS__V1__PRIORITY__PRIORITY_URGENT;
    d.borough = "Salford";
    d.question = "Is he known to services?";
    d.rcrp = MHTAS__V1__RCRP_DECISION__RCRP_DECISION_UNDER_REVIEW;
    req.details = &d;
    req.idempotency_key = (char *)(key ? key : "");
    call_ok(t, "RaiseIncident", &req.base, 5000, r);
}

static void start_shift(tc_t *t)
{
    res_t r;
    Mhtas__V1__StartShiftRequest req = MHTAS__V1__START_SHIFT_REQUEST__INIT;
    call_ok(t, "StartShift", &req.base, 5000, &r);
    wait_res(t, &r, 6000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);
}

static void assert_seqs_increasing(const tc_t *t, int from)
{
    for (int i = from + 1; i < t->n_seqs; i++)
        assert_true(t->seqs[i] > t->seqs[i - 1]);
}

/* ------------------------------------------------------------ tests: no hub */

static void test_invalid_arguments(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    mhtas_client_options_t o;
    memset(&o, 0, sizeof o);
    o.host = "not-an-ip";
    o.port = 1;
    assert_null(mhtas_client_new(&loop, &o));
    o.host = "127.0.0.1";
    o.port = 0;
    assert_null(mhtas_client_new(&loop, &o));

    tc_t *t = tc_new(&loop, dead_port(), TOK_PRAC, false);
    Mhtas__V1__WhoAmIRequest w = MHTAS__V1__WHO_AM_IREQUEST__INIT;
    Mhtas__V1__SubscribeRequest s = MHTAS__V1__SUBSCRIBE_REQUEST__INIT;
    res_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(mhtas_client_call(t->c, "NoSuchMethod", &w.base, 0, res_cb, &r), MHTAS_CLIENT_EINVAL);
    assert_int_equal(mhtas_client_call(t->c, "GetIncident", &w.base, 0, res_cb, &r), MHTAS_CLIENT_EINVAL);
    assert_int_equal(mhtas_client_call(t->c, "Subscribe", &s.base, 0, res_cb, &r), MHTAS_CLIENT_EINVAL);
    assert_int_equal(mhtas_client_call(t->c, "WhoAmI", &w.base, 0, NULL, &r), MHTAS_CLIENT_EINVAL);
    assert_false(r.done);
    tc_free(t);
    loop_done(&loop);
}

/* No hub: a waiting call ends with DEADLINE_EXCEEDED at its deadline, while
 * the client keeps trying to connect with back-off. */
static void test_deadline_while_disconnected(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    tc_t *t = tc_new(&loop, dead_port(), TOK_PRAC, false);
    res_t r;
    uint64_t t0 = uv_now(&loop);
    whoami(t, &r, 300);
    wait_res(t, &r, 3000);
    assert_int_equal(r.status, MHTAS_GRPC_DEADLINE_EXCEEDED);
    assert_true(r.at_ms - t0 >= 290 && r.at_ms - t0 < 1500);
    assert_true(t->state_count[MHTAS_CLIENT_DISCONNECTED] >= 1);
    assert_int_equal(t->state_count[MHTAS_CLIENT_READY], 0);
    tc_free(t);
    loop_done(&loop);
}

static void test_fail_fast(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    tc_t *t = tc_new(&loop, dead_port(), TOK_PRAC, true);
    res_t r;
    whoami(t, &r, 5000);
    assert_true(r.done); /* before mhtas_client_call returned */
    assert_int_equal(r.status, MHTAS_GRPC_UNAVAILABLE);
    tc_free(t);
    loop_done(&loop);
}

/* Close with calls outstanding: each completes with CANCELLED, once, inside
 * mhtas_client_close; calls after close are refused. */
static void test_close_cancels(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    tc_t *t = tc_new(&loop, dead_port(), TOK_PRAC, false);
    res_t r[3];
    for (int i = 0; i < 3; i++)
        whoami(t, &r[i], i == 2 ? MHTAS_CLIENT_NO_DEADLINE : 5000);
    assert_int_equal(mhtas_client_subscribe(t->c, 0), 0);
    assert_int_equal(mhtas_client_subscribe(t->c, 0), MHTAS_CLIENT_ESTATE);
    RUN_UNTIL(t, t->state_count[MHTAS_CLIENT_DISCONNECTED] >= 1, 2000);
    mhtas_client_close(t->c, tc_closed, t);
    for (int i = 0; i < 3; i++) {
        assert_true(r[i].done);
        assert_int_equal(r[i].status, MHTAS_GRPC_CANCELLED);
    }
    assert_true(t->stream_ended);
    assert_int_equal(t->stream_end_status, MHTAS_GRPC_CANCELLED);
    Mhtas__V1__WhoAmIRequest w = MHTAS__V1__WHO_AM_IREQUEST__INIT;
    assert_int_equal(mhtas_client_call(t->c, "WhoAmI", &w.base, 0, res_cb, &r[0]), MHTAS_CLIENT_ECLOSED);
    assert_int_equal(mhtas_client_state(t->c), MHTAS_CLIENT_CLOSED);
    tc_free(t);
    loop_done(&loop);
}

/* ------------------------------------------------------------ tests: real hub */

static void test_unary_calls(void **state)
{
    (void)state;
    hub_proc_t h;
    hub_prepare(&h);
    hub_spawn(&h, 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    tc_t *p = tc_new(&loop, h.port, TOK_PRAC, false);
    tc_t *op = tc_new(&loop, h.port, TOK_OP, false);
    res_t r;

    whoami(p, &r, 0);
    wait_res(p, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);
    assert_string_equal(r.user, "p.a");
    assert_true(p->state_count[MHTAS_CLIENT_READY] == 1);

    Mhtas__V1__GetIncidentRequest g = MHTAS__V1__GET_INCIDENT_REQUEST__INIT;
    g.incident_id = 999;
    call_ok(p, "GetIncident", &g.base, 2000, &r);
    wait_res(p, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_NOT_FOUND);
    assert_true(strlen(r.msg) > 0);

    /* A practitioner may not raise: the hub's status comes through. */
    raise_incident(p, &r, NULL);
    wait_res(p, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_PERMISSION_DENIED);

    /* Validation errors carry the hub's message, percent-decoded. */
    Mhtas__V1__RaiseIncidentRequest bad = MHTAS__V1__RAISE_INCIDENT_REQUEST__INIT;
    call_ok(op, "RaiseIncident", &bad.base, 2000, &r);
    wait_res(op, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_INVALID_ARGUMENT);
    assert_non_null(strstr(r.msg, "details"));

    /* The same idempotency key twice raises one incident. */
    res_t a, b;
    raise_incident(op, &a, "client-test-key-1");
    wait_res(op, &a, 5000);
    assert_int_equal(a.status, MHTAS_GRPC_OK);
    raise_incident(op, &b, "client-test-key-1");
    wait_res(op, &b, 5000);
    assert_int_equal(b.status, MHTAS_GRPC_OK);
    assert_int_equal(a.id, b.id);
    /* Without a key, the library generates a fresh one per call. */
    raise_incident(op, &b, NULL);
    wait_res(op, &b, 5000);
    assert_int_equal(b.status, MHTAS_GRPC_OK);
    assert_true(b.id != a.id);

    /* Many calls in flight on one connection. */
    res_t many[40];
    for (int i = 0; i < 40; i++)
        whoami(p, &many[i], 5000);
    for (int i = 0; i < 40; i++) {
        wait_res(p, &many[i], 5000);
        assert_int_equal(many[i].status, MHTAS_GRPC_OK);
    }
    mhtas_client_stats_t st;
    mhtas_client_get_stats(p->c, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.calls_retried, 0);

    tc_free(p);
    tc_free(op);
    loop_done(&loop);
    hub_cleanup(&h);
}

static void test_bad_credentials(void **state)
{
    (void)state;
    hub_proc_t h;
    hub_prepare(&h);
    hub_spawn(&h, 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    tc_t *t = tc_new(&loop, h.port, "not-a-valid-token", false);
    res_t r;
    whoami(t, &r, 3000);
    wait_res(t, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_UNAUTHENTICATED);
    assert_true(strlen(r.msg) > 0);
    /* the stream ends for good, reported once */
    assert_int_equal(mhtas_client_subscribe(t->c, 0), 0);
    RUN_UNTIL(t, t->stream_ended, 5000);
    assert_true(t->stream_ended);
    assert_int_equal(t->stream_end_status, MHTAS_GRPC_UNAUTHENTICATED);
    tc_t *none = tc_new(&loop, h.port, NULL, false); /* no token at all */
    whoami(none, &r, 3000);
    wait_res(none, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_UNAUTHENTICATED);
    tc_free(none);
    tc_free(t);
    loop_done(&loop);
    hub_cleanup(&h);
}

static void test_stream(void **state)
{
    (void)state;
    hub_proc_t h;
    hub_prepare(&h);
    hub_spawn(&h, 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    tc_t *p = tc_new(&loop, h.port, TOK_PRAC, false);
    tc_t *op = tc_new(&loop, h.port, TOK_OP, false);
    assert_int_equal(mhtas_client_subscribe(p->c, 0), 0);
    start_shift(p);
    res_t r;
    raise_incident(op, &r, NULL);
    wait_res(op, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);
    RUN_UNTIL(p, p->offers >= 1, 5000);
    assert_int_equal(p->offers, 1);
    assert_int_equal(p->last_offer_id, r.id);
    assert_int_equal(mhtas_client_last_seq(p->c), p->seqs[p->n_seqs - 1]);

    Mhtas__V1__AcceptRequest acc = MHTAS__V1__ACCEPT_REQUEST__INIT;
    acc.incident_id = r.id;
    call_ok(p, "Accept", &acc.base, 5000, &r);
    wait_res(p, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);
    assert_int_equal(r.state, MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_ACCEPTED);
    /* a message with a library-made client_msg_id comes back as an event */
    int before = p->events;
    Mhtas__V1__PostMessageRequest pm = MHTAS__V1__POST_MESSAGE_REQUEST__INIT;
    pm.incident_id = acc.incident_id;
    pm.text = "advice: stay with him";
    call_ok(p, "PostMessage", &pm.base, 5000, &r);
    wait_res(p, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);
    RUN_UNTIL(p, p->events > before, 3000);
    assert_true(p->events > before);
    assert_int_equal(p->gaps, 0);
    assert_seqs_increasing(p, 0);
    mhtas_client_stats_t st;
    mhtas_client_get_stats(p->c, &st);
    assert_int_equal(st.subscribes, 1);
    assert_int_equal(st.events_duplicate, 0);
    tc_free(p);
    tc_free(op);
    loop_done(&loop);
    hub_cleanup(&h);
}

/* Kill the hub mid-stream and start a new one on the same port, with the
 * same data directory: both clients reconnect by themselves, a call made
 * while the hub was down completes, and the stream resumes from the last seq
 * delivered -- the hub's journal kept it, so there is no RESUME_GAP, the
 * incident is still there, and new events arrive once, in order. */
static void test_hub_restart(void **state)
{
    (void)state;
    hub_proc_t h;
    hub_prepare(&h);
    hub_spawn(&h, 0);
    int port = h.port;
    uv_loop_t loop;
    uv_loop_init(&loop);
    tc_t *p = tc_new(&loop, port, TOK_PRAC, false);
    tc_t *op = tc_new(&loop, port, TOK_OP, false);
    assert_int_equal(mhtas_client_subscribe(p->c, 0), 0);
    start_shift(p);
    res_t r;
    raise_incident(op, &r, NULL);
    wait_res(op, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);
    uint64_t first_id = r.id;
    RUN_UNTIL(p, p->offers >= 1, 5000);
    assert_int_equal(p->offers, 1);
    uint64_t seq_before = mhtas_client_last_seq(p->c);
    assert_true(seq_before > 0);
    int n_before = p->n_seqs;

    hub_kill(&h, SIGKILL);
    RUN_UNTIL(p, p->state_count[MHTAS_CLIENT_DISCONNECTED] >= 1 && op->state_count[MHTAS_CLIENT_DISCONNECTED] >= 1,
              3000);
    assert_true(p->state_count[MHTAS_CLIENT_DISCONNECTED] >= 1);
    /* Issued while the hub is down: waits for the connection. */
    res_t who;
    whoami(op, &who, 10000);
    RUN_UNTIL(p, false, 300); /* a few failed reconnects */
    assert_false(who.done);
    hub_spawn(&h, port);
    assert_int_equal(h.port, port);

    wait_res(op, &who, 10000);
    assert_int_equal(who.status, MHTAS_GRPC_OK);
    RUN_UNTIL(p, p->state_count[MHTAS_CLIENT_READY] >= 2, 5000);
    assert_true(p->state_count[MHTAS_CLIENT_READY] >= 2);

    Mhtas__V1__GetIncidentRequest g = MHTAS__V1__GET_INCIDENT_REQUEST__INIT;
    g.incident_id = first_id;
    call_ok(op, "GetIncident", &g.base, 5000, &r);
    wait_res(op, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);

    /* New events reach the resumed stream. */
    int ev_before = p->events;
    Mhtas__V1__SetAvailabilityRequest pause = MHTAS__V1__SET_AVAILABILITY_REQUEST__INIT;
    pause.paused = 1;
    pause.reason = "restart test";
    call_ok(p, "SetAvailability", &pause.base, 5000, &r);
    wait_res(p, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);
    RUN_UNTIL(p, p->events > ev_before, 5000);
    assert_true(p->events > ev_before);
    assert_int_equal(p->gaps, 0);
    assert_true(mhtas_client_last_seq(p->c) > seq_before);
    assert_int_equal(mhtas_client_last_seq(p->c), p->seqs[p->n_seqs - 1]);
    assert_true(p->n_seqs > n_before);
    assert_seqs_increasing(p, 0);
    mhtas_client_stats_t st;
    mhtas_client_get_stats(p->c, &st);
    assert_true(st.connects >= 2);
    assert_true(st.subscribes >= 2);
    tc_free(p);
    tc_free(op);
    loop_done(&loop);
    hub_cleanup(&h);
}

/* A restart that lost the hub's state (a fresh data directory): the new hub
 * numbers events below what the client saw, so it sends RESUME_GAP; the
 * library follows the seqs down, and the new hub's events are delivered
 * rather than dropped as duplicates. */
static void test_hub_restart_lost_state(void **state)
{
    (void)state;
    hub_proc_t h;
    hub_prepare(&h);
    hub_spawn(&h, 0);
    int port = h.port;
    uv_loop_t loop;
    uv_loop_init(&loop);
    tc_t *p = tc_new(&loop, port, TOK_PRAC, false);
    tc_t *op = tc_new(&loop, port, TOK_OP, false);
    assert_int_equal(mhtas_client_subscribe(p->c, 0), 0);
    start_shift(p);
    res_t r;
    for (int i = 0; i < 2; i++) { /* a few events, so the old seqs are above the new hub's */
        raise_incident(op, &r, NULL);
        wait_res(op, &r, 5000);
        assert_int_equal(r.status, MHTAS_GRPC_OK);
    }
    RUN_UNTIL(p, p->offers >= 1, 5000);
    assert_true(p->offers >= 1);
    int offers_before = p->offers;
    uint64_t seq_before = mhtas_client_last_seq(p->c);
    int n_before = p->n_seqs;

    hub_kill(&h, SIGKILL);
    RUN_UNTIL(p, p->state_count[MHTAS_CLIENT_DISCONNECTED] >= 1, 3000);
    hub_spawn_with(&h, port, "hub.data_dir=data2");
    RUN_UNTIL(p, p->state_count[MHTAS_CLIENT_READY] >= 2 && p->gaps >= 1, 8000);
    assert_true(p->state_count[MHTAS_CLIENT_READY] >= 2);
    assert_int_equal(p->gaps, 1);

    /* The new hub knows nothing: shift again, raise again, get the offer. */
    start_shift(p);
    raise_incident(op, &r, NULL);
    wait_res(op, &r, 10000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);
    RUN_UNTIL(p, p->offers > offers_before, 5000);
    assert_true(p->offers > offers_before);
    assert_true(p->last_offer_seq < seq_before); /* numbered below what we had seen */
    assert_int_equal(mhtas_client_last_seq(p->c), p->seqs[p->n_seqs - 1]);
    /* from the gap notice on: strictly increasing, no repeats */
    int gap_at = n_before;
    assert_seqs_increasing(p, gap_at);
    tc_free(p);
    tc_free(op);
    loop_done(&loop);
    hub_cleanup(&h);
}

/* SIGSTOP the hub: a call with a 200 ms deadline ends with DEADLINE_EXCEEDED
 * on time (RST_STREAM sent), and after SIGCONT the same connection works. */
static void test_deadline_stopped_hub(void **state)
{
    (void)state;
    hub_proc_t h;
    hub_prepare(&h);
    hub_spawn(&h, 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    tc_t *t = tc_new(&loop, h.port, TOK_PRAC, false);
    res_t r;
    whoami(t, &r, 3000);
    wait_res(t, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);

    kill(h.pid, SIGSTOP);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    whoami(t, &r, 200);
    wait_res(t, &r, 3000);
    kill(h.pid, SIGCONT);
    assert_int_equal(r.status, MHTAS_GRPC_DEADLINE_EXCEEDED);
    assert_true(r.at_ms - t0 >= 195);
    assert_true(r.at_ms - t0 < 1000);

    whoami(t, &r, 3000);
    wait_res(t, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);
    mhtas_client_stats_t st;
    mhtas_client_get_stats(t->c, &st);
    assert_int_equal(st.connects, 1);
    tc_free(t);
    loop_done(&loop);
    hub_cleanup(&h);
}

/* The retry policy across a lost connection: with the hub stopped, a read
 * (WhoAmI) and a keyed change (RaiseIncident) are in flight, and so is a
 * change without a key (Accept). The hub dies and a new one starts: the
 * first two are resent and succeed, Accept fails with UNAVAILABLE. */
static void test_retry_policy(void **state)
{
    (void)state;
    hub_proc_t h;
    hub_prepare(&h);
    hub_spawn(&h, 0);
    int port = h.port;
    uv_loop_t loop;
    uv_loop_init(&loop);
    tc_t *op = tc_new(&loop, port, TOK_OP, false);
    tc_t *p = tc_new(&loop, port, TOK_PRAC, false);
    res_t r;
    whoami(op, &r, 3000);
    wait_res(op, &r, 5000);
    whoami(p, &r, 3000);
    wait_res(p, &r, 5000);
    assert_int_equal(r.status, MHTAS_GRPC_OK);

    kill(h.pid, SIGSTOP);
    res_t who, raise, acc;
    whoami(op, &who, 10000);
    raise_incident(op, &raise, NULL);
    Mhtas__V1__AcceptRequest a = MHTAS__V1__ACCEPT_REQUEST__INIT;
    a.incident_id = 1;
    call_ok(p, "Accept", &a.base, 10000, &acc);
    RUN_UNTIL(op, false, 100); /* the requests reach the (stopped) hub's socket */
    hub_kill(&h, SIGKILL);
    RUN_UNTIL(p, acc.done, 3000);
    assert_true(acc.done);
    assert_int_equal(acc.status, MHTAS_GRPC_UNAVAILABLE);
    assert_false(who.done);
    assert_false(raise.done);
    hub_spawn(&h, port);
    wait_res(op, &who, 10000);
    wait_res(op, &raise, 10000);
    assert_int_equal(who.status, MHTAS_GRPC_OK);
    assert_int_equal(raise.status, MHTAS_GRPC_OK);
    mhtas_client_stats_t st;
    mhtas_client_get_stats(op->c, &st);
    assert_int_equal(st.calls_retried, 2);
    tc_free(p);
    tc_free(op);
    loop_done(&loop);
    hub_cleanup(&h);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_invalid_arguments, kill_live_hubs),
        cmocka_unit_test_teardown(test_deadline_while_disconnected, kill_live_hubs),
        cmocka_unit_test_teardown(test_fail_fast, kill_live_hubs),
        cmocka_unit_test_teardown(test_close_cancels, kill_live_hubs),
        cmocka_unit_test_teardown(test_unary_calls, kill_live_hubs),
        cmocka_unit_test_teardown(test_bad_credentials, kill_live_hubs),
        cmocka_unit_test_teardown(test_stream, kill_live_hubs),
        cmocka_unit_test_teardown(test_hub_restart, kill_live_hubs),
        cmocka_unit_test_teardown(test_hub_restart_lost_state, kill_live_hubs),
        cmocka_unit_test_teardown(test_deadline_stopped_hub, kill_live_hubs),
        cmocka_unit_test_teardown(test_retry_policy, kill_live_hubs),
    };
    return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
