/* journal_bench.c -- what the journal costs on this machine's real disk.
 *
 *   mhtas-journal-bench [-n raw_syncs] [-r rate1,rate2,...] [-d seconds]
 *                       [-R replay_records] [dir-parent]
 *
 * 1. raw fdatasync latency of a 200-byte append (N = 2000): the floor under
 *    every acknowledgement;
 * 2. group commit on a libuv loop: an open-loop producer appends 200-byte
 *    records at a fixed rate and commits each loop turn; ack latency is
 *    measured from each record's INTENDED time (so a stall is not hidden by
 *    the producer slowing down: no coordinated omission);
 * 3. restart time: replaying 1,000,000 records.
 *
 * Works in a fresh directory under build/ (the disk the hub will use, not
 * /tmp, which is often tmpfs) and removes it afterwards.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "journal/journal.h"
#include "log/log.h"

#define PAYLOAD 200

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0; /* ns -> us */
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[1024];
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

static int make_dir(char *out, size_t n, const char *parent, const char *what)
{
    snprintf(out, n, "%s/journal-bench-%s-XXXXXX", parent, what);
    if (mkdtemp(out) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", out, strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------ 1. raw fdatasync */

static void bench_raw(const char *parent, int n)
{
    char dir[512], path[600];
    if (make_dir(dir, sizeof dir, parent, "raw"))
        return;
    snprintf(path, sizeof path, "%s/raw", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
    uint8_t buf[PAYLOAD];
    memset(buf, 'x', sizeof buf);
    uint64_t *lat = malloc((size_t)n * sizeof *lat);
    for (int i = 0; i < n; i++) {
        uint64_t t0 = uv_hrtime();
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fdatasync(fd) != 0) {
            perror("write/fdatasync");
            break;
        }
        lat[i] = uv_hrtime() - t0;
    }
    close(fd);
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    printf("%-34s %8d %10.1f %10.1f %10.1f %12s\n", "raw 200B append+fdatasync", n, pct(lat, (size_t)n, 0.5),
           pct(lat, (size_t)n, 0.99), (double)lat[n - 1] / 1000.0, "-");
    free(lat);
    rm_dir(dir);
}

/* ------------------------------------------------- 2. group commit on uv */

typedef struct gc {
    uv_loop_t *loop;
    journal_t *j;
    uv_timer_t timer;
    double rate;       /* records per second */
    uint64_t start_ns, end_ns;
    uint64_t produced; /* records appended so far */
    uint64_t total;
    uint64_t *intended; /* by ticket - first_ticket */
    uint64_t first_ticket;
    uint64_t *lat;
    size_t nlat;
    uint64_t acked_upto;
    uint64_t batches, errors;
    uint64_t last_ack_ns;
} gc_t;

static void gc_done(void *ctx, const journal_result_t *r)
{
    gc_t *g = ctx;
    uint64_t now = uv_hrtime();
    g->batches++;
    if (r->status) {
        g->errors++;
        return;
    }
    for (uint64_t t = g->acked_upto + 1; t <= r->durable; t++) {
        uint64_t i = t - g->first_ticket;
        if (i < g->produced)
            g->lat[g->nlat++] = now - g->intended[i];
    }
    g->acked_upto = r->durable;
    g->last_ack_ns = now;
}

/* One producer "turn": append every record whose intended time has come,
 * then commit, like the hub's per-turn hook. */
static void gc_tick(uv_timer_t *h)
{
    gc_t *g = h->data;
    uint64_t now = uv_hrtime();
    uint8_t p[PAYLOAD];
    memset(p, 'e', sizeof p);
    while (g->produced < g->total) {
        uint64_t due = g->start_ns + (uint64_t)((double)g->produced * 1e9 / g->rate);
        if (due > now)
            break;
        uint64_t t;
        if (journal_append(g->j, p, sizeof p, &t) != 0) {
            g->errors++;
            break;
        }
        if (g->produced == 0)
            g->first_ticket = t;
        g->intended[g->produced++] = due;
    }
    journal_commit(g->j, g->loop, gc_done, g);
    if (g->produced >= g->total)
        uv_timer_stop(h);
}

static void bench_group(const char *parent, double rate, double seconds)
{
    char dir[512], err[512];
    if (make_dir(dir, sizeof dir, parent, "gc"))
        return;
    uv_loop_t loop;
    uv_loop_init(&loop);
    gc_t g = { .loop = &loop, .rate = rate };
    g.total = (uint64_t)(rate * seconds);
    g.intended = malloc(g.total * sizeof *g.intended);
    g.lat = malloc(g.total * sizeof *g.lat);
    if (journal_open(&g.j, dir, journal_io_posix(), NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    uv_timer_init(&loop, &g.timer);
    g.timer.data = &g;
    g.start_ns = uv_hrtime();
    /* 1 ms turns: a hub loop woken by network traffic at least this often */
    uv_timer_start(&g.timer, gc_tick, 0, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    double wall = (double)(g.last_ack_ns - g.start_ns) / 1e9;
    journal_close(g.j);
    uv_close((uv_handle_t *)&g.timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    qsort(g.lat, g.nlat, sizeof *g.lat, cmp_u64);
    char label[64], thr[32];
    snprintf(label, sizeof label, "group commit @ %.0f rec/s", rate);
    snprintf(thr, sizeof thr, "%.0f/s", (double)g.nlat / wall);
    printf("%-34s %8zu %10.1f %10.1f %10.1f %12s  (%.1f rec/batch, %llu errors)\n", label, g.nlat,
           pct(g.lat, g.nlat, 0.5), pct(g.lat, g.nlat, 0.99), g.nlat ? (double)g.lat[g.nlat - 1] / 1000.0 : 0.0,
           thr, g.batches ? (double)g.nlat / (double)g.batches : 0.0, (unsigned long long)g.errors);
    free(g.intended);
    free(g.lat);
    rm_dir(dir);
}

/* ------------------------------------------------------------ 3. replay */

static int count_rec(void *ctx, uint64_t t, const uint8_t *p, size_t n)
{
    (void)t;
    (void)p;
    (void)n;
    (*(uint64_t *)ctx)++;
    return 0;
}

static void bench_replay(const char *parent, uint64_t n)
{
    char dir[512], err[512];
    if (make_dir(dir, sizeof dir, parent, "replay"))
        return;
    journal_t *j;
    if (journal_open(&j, dir, journal_io_posix(), NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    uint8_t p[PAYLOAD];
    memset(p, 'r', sizeof p);
    uint64_t t0 = uv_hrtime();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t;
        journal_append(j, p, sizeof p, &t);
        if (i % 10000 == 9999 || i + 1 == n)
            if (journal_commit_sync(j, NULL, NULL) != 0) {
                fprintf(stderr, "write failed\n");
                break;
            }
    }
    double write_s = (double)(uv_hrtime() - t0) / 1e9;
    journal_close(j);
    uint64_t count = 0;
    journal_replay_t rp = { NULL, count_rec, &count };
    t0 = uv_hrtime();
    if (journal_open(&j, dir, journal_io_posix(), NULL, &rp, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    double replay_s = (double)(uv_hrtime() - t0) / 1e9;
    journal_close(j);
    char label[64], thr[32];
    snprintf(label, sizeof label, "replay %llu x 200B records", (unsigned long long)count);
    snprintf(thr, sizeof thr, "%.0f/s", (double)count / replay_s);
    printf("%-34s %8llu %10s %10s %10.1f %12s  (total ms; writing them took %.2f s)\n", label,
           (unsigned long long)count, "-", "-", replay_s * 1000.0, thr, write_s);
    rm_dir(dir);
}

int main(int argc, char **argv)
{
    int raw_n = 2000;
    double seconds = 3;
    uint64_t replay_n = 1000000;
    const char *rates = "1000,10000,50000";
    int c;
    while ((c = getopt(argc, argv, "n:r:d:R:")) != -1) {
        switch (c) {
        case 'n': raw_n = atoi(optarg); break;
        case 'r': rates = optarg; break;
        case 'd': seconds = atof(optarg); break;
        case 'R': replay_n = strtoull(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: %s [-n raw_syncs] [-r rates] [-d seconds] [-R replay_records] [dir-parent]\n",
                    argv[0]);
            return 2;
        }
    }
    const char *parent = optind < argc ? argv[optind] : "build";
    mkdir(parent, 0750);
    hub_log_level = HUB_LOG_WARN;
    printf("journal bench in %s/ (latencies in microseconds)\n", parent);
    printf("%-34s %8s %10s %10s %10s %12s\n", "test", "n", "p50", "p99", "max", "throughput");
    if (raw_n > 0)
        bench_raw(parent, raw_n);
    char *list = strdup(rates);
    for (char *s = strtok(list, ","); s; s = strtok(NULL, ","))
        bench_group(parent, atof(s), seconds);
    free(list);
    if (replay_n)
        bench_replay(parent, replay_n);
    return 0;
}
