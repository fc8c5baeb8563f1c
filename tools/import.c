/* import.c -- bin/mhtas-import: loads care summaries into Redis from NDJSON.
 *
 *   mhtas-import [--host IP] [--port N | --socket PATH] [--ttl SECONDS]
 *                [--batch N] [--progress | --no-progress] [FILE | -]
 *
 * One FHIR-UK-Core-shaped JSON document per line (docs/CACHE.md "Import
 * format"); {"nhsNumber": "...", "deleted": true} removes a person. Every
 * bad record is reported on stderr as "line N: reason" and skipped; the
 * import goes on. Each good record is one atomic server-side script call
 * (EVALSHA) that writes the summary and the search record and moves the
 * person between index sets, so the indexes stay consistent when a person
 * is updated or removed, and importing the same file twice changes nothing.
 * Calls are pipelined in batches. On a terminal, a progress bar on stderr.
 *
 * Prints "imported N, updated U, removed R, rejected B (K unchanged)" on
 * stdout. Exit status: 0 all good, 1 some record rejected, 2 cannot work
 * (bad arguments, Redis unreachable or failing).
 *
 * Uses hiredis's synchronous API: this is a batch tool, not the hub.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "cache/care_json.h"
#include "cache/care_search.h"
#include "util/alloc.h"

#define MAX_LINE (1u << 20)

/* KEYS: summary, person, index-of, then the person's index sets.
 * ARGV: nhs, summary bytes, person bytes, ttl seconds (0 = no expiry).
 * Returns 0 new, 1 updated, 2 unchanged. Index sets live as long as their
 * longest-lived member: a new set gets the TTL, an existing one is only ever
 * extended, and a member without expiry makes the set persistent. */
static const char UPSERT_LUA[] =
    "local nhs, ttl = ARGV[1], tonumber(ARGV[4])\n"
    "local old = redis.call('GET', KEYS[1])\n"
    "local status = 0\n"
    "if old then\n"
    "  if old == ARGV[2] and redis.call('GET', KEYS[2]) == ARGV[3] then status = 2 else status = 1 end\n"
    "end\n"
    "local want = {}\n"
    "for i = 4, #KEYS do want[KEYS[i]] = true end\n"
    "for _, k in ipairs(redis.call('SMEMBERS', KEYS[3])) do\n"
    "  if not want[k] then redis.call('SREM', k, nhs) end\n"
    "end\n"
    "redis.call('DEL', KEYS[3])\n"
    "if ttl > 0 then\n"
    "  redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)\n"
    "  redis.call('SET', KEYS[2], ARGV[3], 'EX', ttl)\n"
    "else\n"
    "  redis.call('SET', KEYS[1], ARGV[2])\n"
    "  redis.call('SET', KEYS[2], ARGV[3])\n"
    "end\n"
    "for i = 4, #KEYS do\n"
    "  local k = KEYS[i]\n"
    "  redis.call('SADD', k, nhs)\n"
    "  if ttl > 0 then\n"
    "    local t = redis.call('TTL', k)\n"
    "    if (t == -1 and redis.call('SCARD', k) == 1) or (t >= 0 and t < ttl) then\n"
    "      redis.call('EXPIRE', k, ttl)\n"
    "    end\n"
    "  else\n"
    "    redis.call('PERSIST', k)\n"
    "  end\n"
    "  redis.call('SADD', KEYS[3], k)\n"
    "end\n"
    "if ttl > 0 then redis.call('EXPIRE', KEYS[3], ttl) end\n"
    "return status\n";

/* KEYS: summary, person, index-of. ARGV: nhs. Returns 1 if the person was
 * held, 0 if not. */
static const char DELETE_LUA[] =
    "local existed = redis.call('EXISTS', KEYS[1])\n"
    "for _, k in ipairs(redis.call('SMEMBERS', KEYS[3])) do redis.call('SREM', k, ARGV[1]) end\n"
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])\n"
    "return existed\n";

typedef struct {
    size_t line;
    care_record_kind_t kind;
} pending_t;

typedef struct {
    redisContext *rc;
    char upsert_sha[41], delete_sha[41];
    long ttl;
    size_t batch;
    int progress;
    pending_t *pend, *prev;        /* the batch being built; the one in flight */
    size_t npend, nprev;
    unsigned long imported, updated, unchanged, removed, absent, rejected, lines;
    off_t total_bytes, read_bytes;
    double t0;
} importer_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "mhtas-import: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

static void load_script(importer_t *im, const char *src, char sha[41])
{
    redisReply *r = redisCommand(im->rc, "SCRIPT LOAD %s", src);
    if (r == NULL)
        die("redis: %s", im->rc->errstr);
    if (r->type != REDIS_REPLY_STRING || r->len != 40)
        die("redis refused the import script: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    memcpy(sha, r->str, 41);
    freeReplyObject(r);
}

static void progress(importer_t *im, int final)
{
    if (!im->progress)
        return;
    double el = now_s() - im->t0;
    double rate = el > 0 ? (double)im->lines / el : 0;
    if (im->total_bytes > 0) {
        int pct = (int)(100.0 * (double)im->read_bytes / (double)im->total_bytes);
        if (pct > 100)
            pct = 100;
        char bar[31];
        int fill = pct * 30 / 100;
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %3d%% %lu lines, %lu rejected, %.0f/s ", bar, pct, im->lines,
                im->rejected, rate);
    } else {
        fprintf(stderr, "\r%lu lines, %lu rejected, %.0f/s ", im->lines, im->rejected, rate);
    }
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Sends what hiredis has buffered, without waiting for replies. */
static void send_buffered(importer_t *im)
{
    int done = 0;
    while (!done)
        if (redisBufferWrite(im->rc, &done) != REDIS_OK)
            die("redis: %s", im->rc->errstr[0] ? im->rc->errstr : "connection lost");
}

/* Reads the replies of the older batch in flight, in order. Two batches are
 * in flight: while Redis runs one, the importer parses the next. */
static void read_replies(importer_t *im)
{
    for (size_t i = 0; i < im->nprev; i++) {
        redisReply *r = NULL;
        if (redisGetReply(im->rc, (void **)&r) != REDIS_OK || r == NULL)
            die("redis: %s", im->rc->errstr[0] ? im->rc->errstr : "connection lost");
        pending_t *p = &im->prev[i];
        if (r->type == REDIS_REPLY_INTEGER) {
            if (p->kind == CARE_RECORD_DELETE) {
                if (r->integer)
                    im->removed++;
                else
                    im->absent++;
            } else if (r->integer == 0) {
                im->imported++;
            } else if (r->integer == 1) {
                im->updated++;
            } else {
                im->unchanged++;
            }
        } else {
            fprintf(stderr, "%sline %zu: redis refused the record: %.80s\n", im->progress ? "\r" : "",
                    p->line, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            im->rejected++;
        }
        freeReplyObject(r);
    }
    im->nprev = 0;
    progress(im, 0);
}

/* Ends the current batch: sends it, then collects the previous one's
 * replies, and makes the current batch the one in flight. */
static void flush(importer_t *im)
{
    send_buffered(im);
    read_replies(im);
    pending_t *t = im->prev;
    im->prev = im->pend;
    im->nprev = im->npend;
    im->pend = t;
    im->npend = 0;
}

static void reject(importer_t *im, size_t line, const char *why)
{
    fprintf(stderr, "%sline %zu: %s\n", im->progress ? "\r\033[K" : "", line, why);
    im->rejected++;
}

static void queue_record(importer_t *im, size_t line, care_record_t *rec)
{
    char kcs[CARE_KEY_MAX], kpm[CARE_KEY_MAX], kix[CARE_KEY_MAX];
    care_key_summary(rec->nhs, kcs);
    care_key_person(rec->nhs, kpm);
    care_key_index_of(rec->nhs, kix);

    if (rec->kind == CARE_RECORD_DELETE) {
        const char *argv[] = {"EVALSHA", im->delete_sha, "3", kcs, kpm, kix, rec->nhs};
        redisAppendCommandArgv(im->rc, 7, argv, NULL);
    } else {
        char ix[CARE_PERSON_KEYS_MAX][CARE_KEY_MAX];
        int nix = care_person_index_keys(rec->person->family_name, rec->person->date_of_birth, ix);
        size_t slen = mhtas__v1__care_summary__get_packed_size(rec->summary);
        size_t plen = mhtas__v1__person_match__get_packed_size(rec->person);
        uint8_t *sb = hub_malloc(slen + 1), *pb = hub_malloc(plen + 1);
        if (!sb || !pb || nix < 0) {
            hub_free(sb);
            hub_free(pb);
            reject(im, line, nix < 0 ? "patient.birthDate: not a date" : "out of memory");
            return;
        }
        mhtas__v1__care_summary__pack(rec->summary, sb);
        mhtas__v1__person_match__pack(rec->person, pb);
        char nkeys[12], ttl[24];
        snprintf(nkeys, sizeof nkeys, "%d", 3 + nix);
        snprintf(ttl, sizeof ttl, "%ld", im->ttl);
        const char *argv[16];
        size_t lens[16];
        int n = 0;
#define ARG(p, l) (argv[n] = (const char *)(p), lens[n++] = (l))
        ARG("EVALSHA", 7);
        ARG(im->upsert_sha, 40);
        ARG(nkeys, strlen(nkeys));
        ARG(kcs, strlen(kcs));
        ARG(kpm, strlen(kpm));
        ARG(kix, strlen(kix));
        for (int i = 0; i < nix; i++)
            ARG(ix[i], strlen(ix[i]));
        ARG(rec->nhs, 10);
        ARG(sb, slen);
        ARG(pb, plen);
        ARG(ttl, strlen(ttl));
#undef ARG
        redisAppendCommandArgv(im->rc, n, argv, lens);
        hub_free(sb);
        hub_free(pb);
    }
    im->pend[im->npend].line = line;
    im->pend[im->npend].kind = rec->kind;
    if (++im->npend == im->batch)
        flush(im);
}

/* Removes jansson's " near '...'" tail, which would echo record content. */
static void scrub_json_error(char *text)
{
    char *near = strstr(text, " near ");
    if (near)
        *near = '\0';
}

static void usage(void)
{
    fprintf(stderr,
            "usage: mhtas-import [--host IP] [--port N | --socket PATH] [--ttl SECONDS]\n"
            "                    [--batch N] [--progress | --no-progress] [FILE | -]\n"
            "  --ttl 0 keeps records until removed; default 604800 (7 days)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    importer_t im = {0};
    const char *host = "127.0.0.1", *sock = NULL, *path = "-";
    int port = 6379, prog = -1;
    im.ttl = 604800;
    im.batch = 512;

    static const struct option opts[] = {
        {"host", required_argument, 0, 'h'}, {"port", required_argument, 0, 'p'},
        {"socket", required_argument, 0, 's'}, {"ttl", required_argument, 0, 't'},
        {"batch", required_argument, 0, 'b'}, {"progress", no_argument, 0, 'P'},
        {"no-progress", no_argument, 0, 'N'}, {"help", no_argument, 0, '?'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 's': sock = optarg; break;
        case 't': im.ttl = atol(optarg); break;
        case 'b': im.batch = (size_t)atol(optarg); break;
        case 'P': prog = 1; break;
        case 'N': prog = 0; break;
        default: usage();
        }
    }
    if (optind < argc)
        path = argv[optind++];
    if (optind < argc || im.ttl < 0 || im.batch < 1 || im.batch > 100000 || port <= 0)
        usage();
    im.progress = prog >= 0 ? prog : isatty(2);

    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (in == NULL)
        die("cannot open input: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
        im.total_bytes = st.st_size;

    struct timeval tv = {5, 0};
    im.rc = sock ? redisConnectUnixWithTimeout(sock, tv) : redisConnectWithTimeout(host, port, tv);
    if (im.rc == NULL || im.rc->err)
        die("cannot connect to redis: %s", im.rc ? im.rc->errstr : "out of memory");
    redisSetTimeout(im.rc, (struct timeval){30, 0});
    load_script(&im, UPSERT_LUA, im.upsert_sha);
    load_script(&im, DELETE_LUA, im.delete_sha);
    im.pend = calloc(im.batch, sizeof *im.pend);
    im.prev = calloc(im.batch, sizeof *im.prev);
    if (im.pend == NULL || im.prev == NULL)
        die("%s", "out of memory");

    im.t0 = now_s();
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    size_t line = 0;
    unsigned long records = 0;
    while ((len = getline(&buf, &cap, in)) >= 0) {
        line++;
        im.lines++;
        im.read_bytes += len;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = '\0';
        size_t sp = strspn(buf, " \t");
        if ((size_t)len == sp)
            continue;                      /* blank line */
        if ((size_t)len > MAX_LINE) {
            reject(&im, line, "record longer than 1 MiB");
            continue;
        }
        json_error_t jerr;
        json_t *doc = json_loadb(buf, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
        if (doc == NULL) {
            char why[200];
            scrub_json_error(jerr.text);
            snprintf(why, sizeof why, "invalid JSON at column %d: %s", jerr.column, jerr.text);
            reject(&im, line, why);
            continue;
        }
        care_record_t rec;
        char why[256];
        if (care_record_from_json(doc, &rec, why, sizeof why) != 0) {
            reject(&im, line, why);
        } else {
            records++;
            queue_record(&im, line, &rec);
            care_record_dispose(&rec);
        }
        json_decref(doc);
    }
    flush(&im);
    flush(&im);
    progress(&im, 1);
    double el = now_s() - im.t0;
    free(buf);
    free(im.pend);
    free(im.prev);
    if (in != stdin)
        fclose(in);
    redisFree(im.rc);

    fprintf(stderr, "mhtas-import: %lu records in %.2f s (%.0f records/s)%s\n", records, el,
            el > 0 ? (double)records / el : 0.0,
            im.absent ? "; some deletions named people not held" : "");
    printf("imported %lu, updated %lu, removed %lu, rejected %lu (%lu unchanged)\n", im.imported,
           im.updated, im.removed, im.rejected, im.unchanged);
    return im.rejected ? 1 : 0;
}
