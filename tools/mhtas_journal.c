/* mhtas_journal.c -- bin/mhtas-journal: reads the hub's journal (read-only,
 * safe while the hub runs) and exports incidents, outcomes and the
 * indicators the service is judged by (DOMAIN.md, "How the service is
 * judged").
 *
 *   mhtas-journal incidents  --data DIR --config FILE [--from D] [--to D] [--format csv|ndjson] [--include-person] [-o FILE]
 *   mhtas-journal outcomes   --data DIR --config FILE [--from D] [--to D] [--format csv|ndjson] [-o FILE]
 *   mhtas-journal indicators --data DIR --config FILE [--from D] [--to D] [--format text|json|html] [-o FILE]
 *   mhtas-journal verify     --data DIR [--config FILE]
 *   mhtas-journal audit      --data DIR [--person NHS] [--user ID] [--incident N] [--from D] [--to D] [--format csv|ndjson] [-o FILE]
 *
 * How: journal_read() (server/journal/journal_read.c) feeds the snapshot and
 * records to a core built from the hub's own configuration, exactly as the
 * hub restores itself at start-up (core_restore_snapshot/_event), then
 * core_build_snapshot() gives every incident with its history, and
 * core_compute_indicators() -- the function behind the hub's GetIndicators
 * -- computes the indicators. So the tool and the hub cannot disagree.
 *
 * Health data: CSV never holds names, dates of birth, addresses, concerns,
 * questions or messages. NDJSON leaves them out too unless --include-person
 * is given (then a warning goes to stderr). Nothing of the kind is printed
 * in errors.
 *
 * Exit codes: 0 ok, 1 a data problem (journal damaged or unreadable, the
 * config does not load or does not match the journal, output not writable),
 * 2 usage. Commands live in a table.
 *
 * `audit` is different: the care-record audit trail must be complete, so it
 * reads the whole history (journal_read_history: the archived segments that
 * snapshots covered, then the live ones) rather than the snapshot, and needs
 * no config. Its rows carry NHS numbers and the practitioners' stated
 * reasons: it is the audit trail, for information governance.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "codec/pbjson.h"
#include "conf/conf.h"
#include "core/core.h"
#include "hub/hub_core_config.h"
#include "journal/journal.h"
#include "log/log.h"
#include "util/alloc.h"

#define EXIT_DATA 1
#define EXIT_USAGE 2

static const char *prog = "mhtas-journal";

/* ------------------------------------------------------------- options */

typedef struct opts {
    const char *data;
    const char *config;
    const char *format;
    const char *out;
    const char *from_s, *to_s;
    int64_t from_ms, to_ms; /* to_ms 0: until now */
    bool include_person;
    const char *person, *user, *incident_s; /* audit filters */
    char nhs[11];
    uint64_t incident;
} opts_t;

typedef struct command {
    const char *name;
    int (*run)(opts_t *o);
    const char *formats; /* allowed --format values, first is the default; NULL: none */
    bool needs_config;
    bool range;
    const char *help;
} command_t;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(try: %s help)\n", prog);
    return EXIT_USAGE;
}

static int data_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int data_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_DATA;
}

/* "YYYY-MM-DD" -> ms since the epoch at 00:00 UTC; -1 if malformed. */
static int64_t parse_date(const char *s)
{
    int y, m, d;
    char tail;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d };
    time_t t = timegm(&tm);
    struct tm back;
    if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL || back.tm_mday != d || back.tm_mon != m - 1)
        return -1; /* e.g. 2026-02-30 */
    return (int64_t)t * 1000;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ISO 8601 UTC with milliseconds, "" for 0. out holds 32 bytes. */
static const char *iso(int64_t ms, char out[32])
{
    out[0] = '\0';
    if (ms <= 0)
        return out;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        return out;
    char ymd[24];
    if (strftime(ymd, sizeof ymd, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return out;
    snprintf(out, 32, "%.19s.%03uZ", ymd, (unsigned)(ms % 1000));
    return out;
}

static const char *iso_date(int64_t ms, char out[32])
{
    iso(ms, out);
    if (out[0])
        out[10] = '\0';
    return out;
}

/* An enum value's name without its prefix ("OUTCOME_CODE_REFER_CMHT" ->
 * "REFER_CMHT"); the number for values this build does not know. */
static const char *enum_name(const ProtobufCEnumDescriptor *d, int v, bool full, char buf[24])
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    if (ev == NULL) {
        snprintf(buf, 24, "%d", v);
        return buf;
    }
    if (full)
        return ev->name;
    /* Every value of our enums starts with the enum's own prefix: the part
     * that UNSPECIFIED has before "UNSPECIFIED". */
    const ProtobufCEnumValue *u = protobuf_c_enum_descriptor_get_value(d, 0);
    if (u) {
        const char *us = strstr(u->name, "UNSPECIFIED");
        size_t n = us ? (size_t)(us - u->name) : 0;
        if (n && strncmp(ev->name, u->name, n) == 0)
            return ev->name + n;
    }
    return ev->name;
}

static const char *priority_name(int p, char buf[24])
{
    return enum_name(&mhtas__v1__priority__descriptor, p, false, buf);
}

/* ---------------------------------------------------- output streams */

static FILE *open_out(const opts_t *o)
{
    if (o->out == NULL || strcmp(o->out, "-") == 0)
        return stdout;
    FILE *f = fopen(o->out, "w");
    if (f == NULL)
        data_error("cannot write %s: %s", o->out, strerror(errno));
    return f;
}

static int close_out(const opts_t *o, FILE *f)
{
    int bad = ferror(f);
    if (f == stdout)
        bad |= fflush(f) != 0;
    else
        bad |= fclose(f) != 0;
    if (bad)
        return data_error("writing %s failed: %s", o->out && strcmp(o->out, "-") ? o->out : "the output",
                          strerror(errno));
    return 0;
}

/* ------------------------------------------ the hub's state, rebuilt */

typedef struct state {
    hub_config_t *cfg;
    hub_core_config_t ccfg; /* the config in the core's form, as the hub builds it */
    core_t *core;
    Mhtas__V1__JournalSnapshot *snap; /* every incident, from core_build_snapshot */
    journal_read_stats_t stats;
    char why[256]; /* why a callback refused */
    uint64_t bad_ticket;
} state_t;

static void no_emit(void *ctx, const Mhtas__V1__Event *ev, const core_audience_t *aud)
{
    (void)ctx;
    (void)ev;
    (void)aud;
}

static int on_snapshot(void *ctx, uint64_t up_to, const uint8_t *p, size_t len)
{
    state_t *s = ctx;
    Mhtas__V1__JournalSnapshot *snap = mhtas__v1__journal_snapshot__unpack(hub_pb_allocator(), len, p);
    if (snap == NULL) {
        snprintf(s->why, sizeof s->why, "the snapshot up to ticket %" PRIu64 " is not a JournalSnapshot", up_to);
        return -1;
    }
    int rc = s->core ? core_restore_snapshot(s->core, snap) : 0;
    if (rc)
        snprintf(s->why, sizeof s->why, "the snapshot up to ticket %" PRIu64 " cannot be restored: %s", up_to,
                 core_last_error(s->core));
    mhtas__v1__journal_snapshot__free_unpacked(snap, hub_pb_allocator());
    return rc;
}

static int on_record(void *ctx, uint64_t ticket, const uint8_t *p, size_t len)
{
    state_t *s = ctx;
    Mhtas__V1__JournalRecord *rec = mhtas__v1__journal_record__unpack(hub_pb_allocator(), len, p);
    if (rec == NULL || rec->event == NULL) {
        snprintf(s->why, sizeof s->why, "ticket %" PRIu64 " is not a JournalRecord with an event", ticket);
        if (rec)
            mhtas__v1__journal_record__free_unpacked(rec, hub_pb_allocator());
        return -1;
    }
    int rc = s->core ? core_restore_event(s->core, rec->event) : 0;
    if (rc)
        snprintf(s->why, sizeof s->why, "ticket %" PRIu64 " (event %" PRIu64 ") cannot be restored: %s", ticket,
                 rec->event->seq, core_last_error(s->core));
    mhtas__v1__journal_record__free_unpacked(rec, hub_pb_allocator());
    return rc;
}

static void state_free(state_t *s)
{
    if (s->snap)
        protobuf_c_message_free_unpacked(&s->snap->base, hub_pb_allocator());
    core_free(s->core);
    hub_core_config_free(&s->ccfg);
    if (s->cfg)
        hub_config_free(s->cfg);
    memset(s, 0, sizeof *s);
}

static void note_tail(const state_t *s)
{
    if (s->stats.unread_bytes)
        fprintf(stderr,
                "%s: note: the last %" PRIu64 " bytes of the newest segment were not read (%s): the hub is "
                "writing them, or a crash left them; the export covers everything up to ticket %" PRIu64 "\n",
                prog, s->stats.unread_bytes, s->stats.unread_why ? s->stats.unread_why : "incomplete",
                s->stats.last_ticket);
    if (s->stats.relisted)
        fprintf(stderr, "%s: note: the hub took a snapshot while the journal was read; it was read again\n", prog);
}

/* Loads the config (if asked), reads the journal into a core and builds the
 * snapshot of every incident. Returns 0 or an exit code. */
static int load_state(opts_t *o, state_t *s, bool with_core)
{
    char err[1024];
    memset(s, 0, sizeof *s);
    if (o->config) {
        if ((s->cfg = hub_config_load(o->config, NULL, 0, err, sizeof err)) == NULL)
            return data_error("config: %s", err);
        if (o->data == NULL) {
            if (s->cfg->data_dir == NULL || s->cfg->data_dir[0] == '\0') {
                state_free(s);
                return usage_error("--data DIR is needed (the config sets no [hub] data_dir)");
            }
            o->data = s->cfg->data_dir;
        }
    }
    if (o->data == NULL)
        return usage_error("--data DIR is needed");
    if (with_core) {
        if (hub_core_config_build(s->cfg, 1, &s->ccfg, err, sizeof err) != 0) {
            state_free(s);
            return data_error("config %s: %s", o->config, err);
        }
        if ((s->core = core_new(&s->ccfg.core, no_emit, NULL, 1)) == NULL) {
            state_free(s);
            return data_error("out of memory");
        }
    }
    journal_replay_t rp = { .snapshot = on_snapshot, .record = on_record, .ctx = s };
    int rc = journal_read(o->data, journal_io_posix(), &rp, &s->stats, err, sizeof err);
    if (rc) {
        if (rc == JOURNAL_E_REPLAY)
            data_error("%s\n  %s%s", err, s->why,
                       with_core ? "\n  (is --config the configuration this hub runs with?)" : "");
        else
            data_error("%s", err[0] ? err : journal_strerror(rc));
        state_free(s);
        return EXIT_DATA;
    }
    note_tail(s);
    if (with_core && core_build_snapshot(s->core, now_ms(), &s->snap) != 0) {
        data_error("cannot rebuild the incidents: %s", core_last_error(s->core));
        state_free(s);
        return EXIT_DATA;
    }
    return 0;
}

/* --------------------------------------------------- incident helpers */

static int64_t first_at(const Mhtas__V1__Incident *inc, Mhtas__V1__Cause cause)
{
    for (size_t i = 0; i < inc->n_history; i++)
        if (inc->history[i] && inc->history[i]->cause == cause)
            return inc->history[i]->at_ms;
    return 0;
}

static bool in_range(const opts_t *o, const Mhtas__V1__Incident *inc, int64_t to)
{
    return inc->raised_at_ms >= o->from_ms && inc->raised_at_ms < to;
}

static bool closed_with_outcome(const Mhtas__V1__Incident *inc)
{
    return inc->state == MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_CLOSED && inc->outcome != NULL;
}

static bool has_code(const Mhtas__V1__Outcome *oc, Mhtas__V1__OutcomeCode code)
{
    for (size_t i = 0; oc && i < oc->n_codes; i++)
        if (oc->codes[i] == code)
            return true;
    return false;
}

static bool s136_detained(const Mhtas__V1__Incident *inc)
{
    return closed_with_outcome(inc) && has_code(inc->outcome, MHTAS__V1__OUTCOME_CODE__OUTCOME_CODE_S136_DETENTION);
}

/* Same rule as core_compute_indicators: who and when recorded. */
static bool consultation_recorded(const Mhtas__V1__Incident *inc)
{
    const Mhtas__V1__S136Details *d = inc->outcome ? inc->outcome->s136 : NULL;
    return d && d->consulted_who && d->consulted_who[0] && d->consulted_at_ms > 0;
}

static int cmp_incident(const void *a, const void *b)
{
    const Mhtas__V1__Incident *x = *(Mhtas__V1__Incident *const *)a, *y = *(Mhtas__V1__Incident *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

static const char *str(const char *s)
{
    return s ? s : "";
}

/* RFC 4180: quoted when it holds a comma, quote, CR or LF; quotes doubled. */
static void csv_field(FILE *f, const char *s, bool last)
{
    s = str(s);
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputs(last ? "\r\n" : ",", f);
}

static void csv_u64(FILE *f, uint64_t v, bool last)
{
    char b[24];
    snprintf(b, sizeof b, "%" PRIu64, v);
    csv_field(f, b, last);
}

static const char *s136_place(const Mhtas__V1__Incident *inc, char buf[24])
{
    buf[0] = '\0';
    if (!s136_detained(inc) || inc->outcome->s136 == NULL || inc->outcome->s136->place_of_safety == 0)
        return buf;
    return enum_name(&mhtas__v1__place_of_safety__descriptor, inc->outcome->s136->place_of_safety, false, buf);
}

/* --------------------------------------------------------- incidents */

/* Takes out what is health data for the length of one encoding, and puts
 * it back (the message's memory belongs to the snapshot). */
typedef struct redacted {
    Mhtas__V1__Person *person;
    char *concerns, *question, *place, *rcrp_reason, *summary;
    size_t n_flags, n_messages;
} redacted_t;

static char empty[] = "";

static void redact(Mhtas__V1__Incident *inc, redacted_t *r)
{
    memset(r, 0, sizeof *r);
    r->n_messages = inc->n_messages;
    inc->n_messages = 0;
    if (inc->details) {
        Mhtas__V1__IncidentDetails *d = inc->details;
        r->person = d->person;
        r->concerns = d->concerns;
        r->question = d->question;
        r->place = d->place;
        r->rcrp_reason = d->rcrp_reason;
        r->n_flags = d->n_flags;
        d->person = NULL;
        d->concerns = d->question = d->place = d->rcrp_reason = empty;
        d->n_flags = 0;
    }
    if (inc->outcome) {
        r->summary = inc->outcome->summary;
        inc->outcome->summary = empty;
    }
}

static void unredact(Mhtas__V1__Incident *inc, const redacted_t *r)
{
    inc->n_messages = r->n_messages;
    if (inc->details) {
        Mhtas__V1__IncidentDetails *d = inc->details;
        d->person = r->person;
        d->concerns = r->concerns;
        d->question = r->question;
        d->place = r->place;
        d->rcrp_reason = r->rcrp_reason;
        d->n_flags = r->n_flags;
    }
    if (inc->outcome)
        inc->outcome->summary = r->summary;
}

/* The incidents in range, sorted by id (borrowed from s->snap). */
static Mhtas__V1__Incident **select_incidents(const opts_t *o, const state_t *s, size_t *n)
{
    int64_t to = o->to_ms ? o->to_ms : INT64_MAX;
    Mhtas__V1__Incident **v = hub_calloc(s->snap->n_incidents ? s->snap->n_incidents : 1, sizeof *v);
    *n = 0;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < s->snap->n_incidents; i++)
        if (s->snap->incidents[i] && in_range(o, s->snap->incidents[i], to))
            v[(*n)++] = s->snap->incidents[i];
    qsort(v, *n, sizeof *v, cmp_incident);
    return v;
}

static int cmd_incidents(opts_t *o)
{
    state_t s;
    int rc = load_state(o, &s, true);
    if (rc)
        return rc;
    size_t n;
    Mhtas__V1__Incident **v = select_incidents(o, &s, &n);
    FILE *f = v ? open_out(o) : NULL;
    if (v == NULL || f == NULL) {
        hub_free(v);
        state_free(&s);
        return v ? EXIT_DATA : data_error("out of memory");
    }
    bool csv = strcmp(o->format, "csv") == 0;
    if (!csv && o->include_person)
        fprintf(stderr,
                "%s: WARNING: --include-person: the output holds HEALTH DATA (names, dates of birth, addresses, "
                "concerns, messages). Keep it only where your information-governance rules allow, and delete it "
                "when done.\n",
                prog);
    if (csv)
        fputs("id,police_ref,priority,borough,raised_at,state,raised_by,practitioner,accepted_at,first_advice_at,"
              "outcome_agreed_at,outcome_codes,s136_place_of_safety,s136_consultation_recorded,cancel_reason\r\n",
              f);
    for (size_t i = 0; i < n && rc == 0; i++) {
        Mhtas__V1__Incident *inc = v[i];
        if (!csv) {
            redacted_t r;
            if (!o->include_person)
                redact(inc, &r);
            size_t len;
            char *json = pbjson_encode(&inc->base, &len);
            if (!o->include_person)
                unredact(inc, &r);
            if (json == NULL) {
                rc = data_error("out of memory");
                break;
            }
            fwrite(json, 1, len, f);
            fputc('\n', f);
            hub_free(json);
            continue;
        }
        char b1[32], b2[24], codes[1024] = "";
        const Mhtas__V1__IncidentDetails *d = inc->details;
        csv_u64(f, inc->id, false);
        csv_field(f, d ? d->police_ref : "", false);
        csv_field(f, d ? priority_name(d->priority, b2) : "", false);
        csv_field(f, d ? d->borough : "", false);
        csv_field(f, iso(inc->raised_at_ms, b1), false);
        csv_field(f, enum_name(&mhtas__v1__incident_state__descriptor, inc->state, false, b2), false);
        csv_field(f, inc->raised_by, false);
        csv_field(f, inc->practitioner, false);
        csv_field(f, iso(first_at(inc, MHTAS__V1__CAUSE__CAUSE_ACCEPTED), b1), false);
        csv_field(f, iso(first_at(inc, MHTAS__V1__CAUSE__CAUSE_FIRST_ADVICE), b1), false);
        csv_field(f, iso(first_at(inc, MHTAS__V1__CAUSE__CAUSE_OUTCOME_AGREED), b1), false);
        if (closed_with_outcome(inc)) {
            size_t k = 0;
            for (size_t c = 0; c < inc->outcome->n_codes; c++) {
                const char *nm = enum_name(&mhtas__v1__outcome_code__descriptor, inc->outcome->codes[c], false, b2);
                int w = snprintf(codes + k, sizeof codes - k, "%s%s", c ? ";" : "", nm);
                if (w < 0 || (size_t)w >= sizeof codes - k)
                    break;
                k += (size_t)w;
            }
        }
        csv_field(f, codes, false);
        csv_field(f, s136_place(inc, b2), false);
        csv_field(f, s136_detained(inc) ? (consultation_recorded(inc) ? "yes" : "no") : "", false);
        csv_field(f, inc->cancel_reason, true);
    }
    int crc = close_out(o, f);
    hub_free(v);
    state_free(&s);
    return rc ? rc : crc;
}

/* ---------------------------------------------------------- outcomes */

static int cmd_outcomes(opts_t *o)
{
    state_t s;
    int rc = load_state(o, &s, true);
    if (rc)
        return rc;
    size_t n;
    Mhtas__V1__Incident **v = select_incidents(o, &s, &n);
    FILE *f = v ? open_out(o) : NULL;
    if (v == NULL || f == NULL) {
        hub_free(v);
        state_free(&s);
        return v ? EXIT_DATA : data_error("out of memory");
    }
    bool csv = strcmp(o->format, "csv") == 0;
    if (csv)
        fputs("incident_id,police_ref,priority,borough,raised_at,outcome_agreed_at,agreed_by,code,"
              "s136_place_of_safety,s136_consultation_recorded\r\n",
              f);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const Mhtas__V1__Incident *inc = v[i];
        if (!closed_with_outcome(inc))
            continue;
        const Mhtas__V1__IncidentDetails *d = inc->details;
        char b1[32], b2[24], b3[24], b4[24], idb[24];
        int64_t agreed = first_at(inc, MHTAS__V1__CAUSE__CAUSE_OUTCOME_AGREED);
        snprintf(idb, sizeof idb, "%" PRIu64, inc->id);
        for (size_t c = 0; c < inc->outcome->n_codes; c++) {
            int code = inc->outcome->codes[c];
            bool s136 = code == MHTAS__V1__OUTCOME_CODE__OUTCOME_CODE_S136_DETENTION;
            const char *place = s136 ? s136_place(inc, b3) : "";
            const char *consult = s136 ? (consultation_recorded(inc) ? "yes" : "no") : "";
            if (csv) {
                csv_field(f, idb, false);
                csv_field(f, d ? d->police_ref : "", false);
                csv_field(f, d ? priority_name(d->priority, b2) : "", false);
                csv_field(f, d ? d->borough : "", false);
                csv_field(f, iso(inc->raised_at_ms, b1), false);
                csv_field(f, iso(agreed, b1), false);
                csv_field(f, inc->outcome->agreed_by, false);
                csv_field(f, enum_name(&mhtas__v1__outcome_code__descriptor, code, false, b4), false);
                csv_field(f, place, false);
                csv_field(f, consult, true);
                continue;
            }
            /* NDJSON in the proto3 JSON style of the incidents export:
             * camelCase keys, 64-bit numbers as strings, full enum names. */
            json_t *j = json_object();
            char at[32];
            snprintf(at, sizeof at, "%" PRId64, agreed);
            json_object_set_new(j, "incidentId", json_string(idb));
            json_object_set_new(j, "policeRef", json_string(d ? str(d->police_ref) : ""));
            json_object_set_new(j, "priority",
                                json_string(enum_name(&mhtas__v1__priority__descriptor, d ? d->priority : 0, true, b2)));
            json_object_set_new(j, "borough", json_string(d ? str(d->borough) : ""));
            json_object_set_new(j, "raisedAt", json_string(iso(inc->raised_at_ms, b1)));
            json_object_set_new(j, "outcomeAgreedAtMs", json_string(at));
            json_object_set_new(j, "agreedBy", json_string(str(inc->outcome->agreed_by)));
            json_object_set_new(j, "code", json_string(enum_name(&mhtas__v1__outcome_code__descriptor, code, true, b4)));
            if (s136) {
                const Mhtas__V1__S136Details *sd = inc->outcome->s136;
                json_object_set_new(
                    j, "placeOfSafety",
                    json_string(enum_name(&mhtas__v1__place_of_safety__descriptor, sd ? sd->place_of_safety : 0, true, b3)));
                json_object_set_new(j, "consultationRecorded", json_boolean(consultation_recorded(inc)));
            }
            char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(j);
            if (line == NULL) {
                rc = data_error("out of memory");
                break;
            }
            fputs(line, f);
            fputc('\n', f);
            free(line);
        }
    }
    int crc = close_out(o, f);
    hub_free(v);
    state_free(&s);
    return rc ? rc : crc;
}

/* -------------------------------------------------------- indicators */

static double pct(uint32_t a, uint32_t b)
{
    return b ? 100.0 * (double)a / (double)b : 0.0;
}

/* A duration for people: "850 ms", "42 s", "3 min 05 s", "2 h 10 min". */
static const char *dur(int64_t ms, uint32_t count, char out[32])
{
    if (count == 0)
        snprintf(out, 32, "-");
    else if (ms < 1000)
        snprintf(out, 32, "%" PRId64 " ms", ms);
    else if (ms < 60000)
        snprintf(out, 32, "%.1f s", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(out, 32, "%" PRId64 " min %02" PRId64 " s", ms / 60000, (ms / 1000) % 60);
    else
        snprintf(out, 32, "%" PRId64 " h %02" PRId64 " min", ms / 3600000, (ms / 60000) % 60);
    return out;
}

static void sla_totals(const Mhtas__V1__Indicators *x, uint32_t *within, uint32_t *applicable)
{
    *within = *applicable = 0;
    for (size_t i = 0; i < x->n_by_priority; i++) {
        *within += x->by_priority[i]->within_sla;
        *applicable += x->by_priority[i]->sla_applicable;
    }
}

static const Mhtas__V1__Percentiles zero_pct = MHTAS__V1__PERCENTILES__INIT;

static const Mhtas__V1__Percentiles *pc(const Mhtas__V1__Percentiles *p)
{
    return p ? p : &zero_pct;
}

static void range_text(const opts_t *o, const Mhtas__V1__Indicators *x, char *out, size_t len)
{
    char a[32], b[32];
    if (o->from_ms == 0 && o->to_ms == 0)
        snprintf(out, len, "all incidents raised up to %s", iso(x->to_ms, b));
    else if (o->to_ms == 0)
        snprintf(out, len, "incidents raised from %s (inclusive) up to now", iso_date(o->from_ms, a));
    else if (o->from_ms == 0)
        snprintf(out, len, "incidents raised before %s", iso_date(o->to_ms, b));
    else
        snprintf(out, len, "incidents raised from %s (inclusive) to %s (exclusive)", iso_date(o->from_ms, a),
                 iso_date(o->to_ms, b));
}

static void write_text(FILE *f, const opts_t *o, const Mhtas__V1__Indicators *x, const int64_t sla[5])
{
    char r[160], a[32], b[32], c[32], pn[24];
    range_text(o, x, r, sizeof r);
    uint32_t within, appl;
    sla_totals(x, &within, &appl);
    fprintf(f, "MHTAS indicators: %s (UTC)\n\n", r);
    fprintf(f, "  %-46s %6u\n", "Incidents raised", x->raised);
    fprintf(f, "  %-46s %6u\n", "Closed with an outcome", x->closed);
    fprintf(f, "  %-46s %6u\n", "Cancelled", x->cancelled);
    fprintf(f, "  %-46s %5.1f %%  (%u of %u)\n", "Answered within the service level", x->share_within_sla * 100.0,
            within, appl);
    fprintf(f, "  %-46s %5.1f %%  (%u of %u)\n", "s136 detentions with a recorded consultation",
            x->share_s136_with_consultation * 100.0, x->s136_with_consultation, x->s136_detentions);
    fprintf(f, "  %-46s %5.1f %%  (%u of %u closed)\n", "Diverted from police attendance", x->share_diverted * 100.0,
            x->diverted_from_police, x->closed);
    fprintf(f, "  %-46s %6u  (of %u incidents with an identified person)\n\n", "Repeat contacts within 30 days",
            x->repeat_contacts_30d, x->persons_identified);

    fprintf(f, "  Times from raise (p50 / p95, n)\n");
    fprintf(f, "  %-10s %6s  %-28s %-28s %-28s %s\n", "priority", "raised", "to accept", "to first advice",
            "to agreed outcome", "within service level");
    for (size_t i = 0; i < x->n_by_priority; i++) {
        const Mhtas__V1__PriorityIndicators *p = x->by_priority[i];
        char col[3][64], slab[64];
        const Mhtas__V1__Percentiles *ps[3] = { pc(p->to_accept), pc(p->to_first_advice), pc(p->to_outcome) };
        for (int k = 0; k < 3; k++)
            snprintf(col[k], sizeof col[k], "%s / %s (%u)", dur(ps[k]->p50_ms, ps[k]->count, a),
                     dur(ps[k]->p95_ms, ps[k]->count, b), ps[k]->count);
        int64_t s = p->priority >= 0 && p->priority < 5 ? sla[p->priority] : 0;
        if (s <= 0)
            snprintf(slab, sizeof slab, "no service level");
        else
            snprintf(slab, sizeof slab, "%u of %u (%.0f %%), level %s", p->within_sla, p->sla_applicable,
                     pct(p->within_sla, p->sla_applicable), dur(s, 1, c));
        fprintf(f, "  %-10s %6u  %-28s %-28s %-28s %s\n", priority_name(p->priority, pn), p->raised, col[0], col[1],
                col[2], slab);
    }
    fprintf(f, "\n  Outcomes agreed (an incident may have several)\n");
    if (x->n_outcomes == 0)
        fprintf(f, "    none\n");
    for (size_t i = 0; i < x->n_outcomes; i++)
        fprintf(f, "    %-28s %6u\n", enum_name(&mhtas__v1__outcome_code__descriptor, x->outcomes[i]->code, false, pn),
                x->outcomes[i]->count);
}

/* ------------------------------------------------------------- HTML */

static void html_esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* "REFER_CMHT" -> "Refer CMHT"-ish: words capitalised, known acronyms kept. */
static void human_code(const char *name, char *out, size_t len)
{
    static const char *const keep[] = { "S136", "S135", "AE", "CMHT", "GP", "AWOL" };
    size_t k = 0;
    bool first = true;
    while (*name && k + 1 < len) {
        const char *e = strchr(name, '_');
        size_t w = e ? (size_t)(e - name) : strlen(name);
        bool acr = false;
        for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
            if (strlen(keep[i]) == w && strncmp(name, keep[i], w) == 0)
                acr = true;
        if (!first && k + 1 < len)
            out[k++] = ' ';
        for (size_t i = 0; i < w && k + 1 < len; i++) {
            char ch = name[i];
            if (!acr && (i > 0 || !first) && ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            if (acr && w == 2 && strncmp(name, "AE", 2) == 0) {
                /* A&E */
                if (i == 0 && k + 3 < len) {
                    out[k++] = 'A';
                    out[k++] = '&';
                    out[k++] = 'E';
                }
                continue;
            }
            out[k++] = ch;
        }
        first = false;
        name += w;
        if (*name == '_')
            name++;
    }
    out[k] = '\0';
}

/* A rounded axis maximum for a chart: 1, 2, 5 x 10^n (ms). */
static int64_t nice_max(int64_t v)
{
    if (v <= 0)
        return 1000;
    int64_t m = 1;
    for (;;) {
        if (v <= m)
            return m;
        if (v <= 2 * m)
            return 2 * m;
        if (v <= 5 * m)
            return 5 * m;
        if (m > INT64_MAX / 10)
            return v;
        m *= 10;
    }
}

/* One chart: p50 and p95 bars per priority for one measure. */
static void svg_times(FILE *f, const char *title, const Mhtas__V1__Indicators *x, int which)
{
    const int W = 340, H = 230, L = 56, R = 10, T = 28, B = 44;
    const int pw = W - L - R, ph = H - T - B;
    int64_t maxv = 0;
    for (size_t i = 0; i < x->n_by_priority; i++) {
        const Mhtas__V1__PriorityIndicators *p = x->by_priority[i];
        const Mhtas__V1__Percentiles *q = pc(which == 0 ? p->to_accept : which == 1 ? p->to_first_advice : p->to_outcome);
        if (q->count && q->p95_ms > maxv)
            maxv = q->p95_ms;
    }
    int64_t top = nice_max(maxv);
    char a[32], pn[24];
    fprintf(f, "<figure class=\"chart\"><svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"", W,
            H, W, H);
    html_esc(f, title);
    fprintf(f, "\">\n<text x=\"%d\" y=\"16\" class=\"t\">", L);
    html_esc(f, title);
    fputs("</text>\n", f);
    for (int g = 0; g <= 4; g++) {
        int y = T + ph - ph * g / 4;
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" class=\"grid\"/>", L, L + pw, y, y);
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"end\">%s</text>\n", L - 4, y + 4,
                dur(top * g / 4, 1, a));
    }
    size_t np = x->n_by_priority ? x->n_by_priority : 1;
    int gw = pw / (int)np;
    for (size_t i = 0; i < x->n_by_priority; i++) {
        const Mhtas__V1__PriorityIndicators *p = x->by_priority[i];
        const Mhtas__V1__Percentiles *q = pc(which == 0 ? p->to_accept : which == 1 ? p->to_first_advice : p->to_outcome);
        int gx = L + gw * (int)i;
        int bw = gw / 3;
        int64_t vals[2] = { q->p50_ms, q->p95_ms };
        for (int k = 0; k < 2; k++) {
            int h = q->count ? (int)((double)vals[k] / (double)top * ph) : 0;
            if (q->count && h < 1)
                h = 1;
            int bx = gx + gw / 6 + k * bw;
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"%s\"><title>%s %s: %s</title></rect>",
                    bx, T + ph - h, bw - 2, h, k ? "p95" : "p50", priority_name(p->priority, pn), k ? "p95" : "p50",
                    dur(vals[k], q->count, a));
            if (q->count)
                fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"v\" text-anchor=\"middle\">%s</text>", bx + (bw - 2) / 2,
                        T + ph - h - 3, dur(vals[k], q->count, a));
        }
        fprintf(f, "\n<text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">%s</text>", gx + gw / 2, T + ph + 15,
                priority_name(p->priority, pn));
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">n=%u</text>\n", gx + gw / 2,
                T + ph + 29, q->count);
    }
    fputs("</svg></figure>\n", f);
}

/* A horizontal gauge: label, bar filled to the share, "87 % (13 of 15)". */
static void svg_share(FILE *f, const char *label, uint32_t num, uint32_t den, const char *what)
{
    const int W = 700, H = 46, BW = 300;
    double s = den ? (double)num / (double)den : 0.0;
    int fill = (int)(s * BW + 0.5);
    fprintf(f, "<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"", W, H, W, H);
    html_esc(f, label);
    fprintf(f, "\"><text x=\"0\" y=\"14\" class=\"lbl\">");
    html_esc(f, label);
    fprintf(f, "</text><rect x=\"0\" y=\"20\" width=\"%d\" height=\"18\" class=\"track\"/>", BW);
    fprintf(f, "<rect x=\"0\" y=\"20\" width=\"%d\" height=\"18\" class=\"fill\"/>", fill);
    if (den)
        fprintf(f, "<text x=\"%d\" y=\"34\" class=\"big\">%.0f %% <tspan class=\"ax\">(%u of %u %s)</tspan></text>", BW + 10,
                s * 100.0, num, den, what);
    else
        fprintf(f, "<text x=\"%d\" y=\"34\" class=\"ax\">no %s in the period</text>", BW + 10, what);
    fputs("</svg>\n", f);
}

static void svg_outcomes(FILE *f, const Mhtas__V1__Indicators *x)
{
    size_t n = x->n_outcomes;
    if (n == 0) {
        fputs("<p class=\"muted\">No outcome was agreed in the period.</p>\n", f);
        return;
    }
    /* Largest first. */
    size_t order[64];
    size_t m = n < 64 ? n : 64;
    for (size_t i = 0; i < m; i++)
        order[i] = i;
    for (size_t i = 1; i < m; i++)
        for (size_t j = i; j > 0 && x->outcomes[order[j]]->count > x->outcomes[order[j - 1]]->count; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    uint32_t maxc = x->outcomes[order[0]]->count ? x->outcomes[order[0]]->count : 1;
    const int L = 230, BW = 330, RH = 24, W = L + BW + 60;
    int H = (int)m * RH + 8;
    fprintf(f, "<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"Outcomes agreed\">\n", W,
            H, W, H);
    char b[24], h[64];
    for (size_t i = 0; i < m; i++) {
        const Mhtas__V1__OutcomeCountEntry *e = x->outcomes[order[i]];
        human_code(enum_name(&mhtas__v1__outcome_code__descriptor, e->code, false, b), h, sizeof h);
        int y = 4 + (int)i * RH;
        int w = (int)((double)e->count / maxc * BW + 0.5);
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"lbl\" text-anchor=\"end\">", L - 8, y + 15);
        html_esc(f, h);
        fprintf(f, "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"%s\"/>", L, y + 2, w > 0 ? w : 1,
                RH - 6, e->code == MHTAS__V1__OUTCOME_CODE__OUTCOME_CODE_S136_DETENTION ? "fill warn" : "fill");
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"v\">%u</text>\n", L + w + 6, y + 15, e->count);
    }
    fputs("</svg>\n", f);
}

static void write_html(FILE *f, const opts_t *o, const Mhtas__V1__Indicators *x, const int64_t sla[5], int64_t now,
                       const journal_read_stats_t *st)
{
    char r[160], a[32], b[32], c[32], pn[24];
    range_text(o, x, r, sizeof r);
    uint32_t within, appl;
    sla_totals(x, &within, &appl);
    fputs("<!doctype html>\n<html lang=\"en-GB\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>MHTAS indicators</title>\n<style>\n"
          "body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,Arial,sans-serif;color:#1b1b1b;margin:24px auto;"
          "max-width:1100px;padding:0 16px;line-height:1.4}\n"
          "h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.15em;margin:28px 0 8px;border-bottom:2px solid #1f5fa8;"
          "padding-bottom:2px}\n"
          ".muted,.ax{color:#555;fill:#555;font-size:11px}.t{font-weight:600;font-size:13px;fill:#1b1b1b}\n"
          ".lbl{font-size:13px;fill:#1b1b1b}.big{font-size:16px;font-weight:700;fill:#1b1b1b}.v{font-size:10px;fill:#1b1b1b}\n"
          ".grid{stroke:#ddd;stroke-width:1}.p50{fill:#1f5fa8}.p95{fill:#9dbbe0}.track{fill:#e8e8e8}.fill{fill:#1f5fa8}"
          ".warn{fill:#b34d00}\n"
          ".charts{display:flex;flex-wrap:wrap;gap:12px}.chart{margin:0}\n"
          ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.card{border:1px solid #ccc;border-radius:6px;"
          "padding:8px 14px;min-width:130px}.card b{display:block;font-size:1.6em}\n"
          ".key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}\n"
          "table{border-collapse:collapse;width:100%;font-size:13px;margin-top:8px}th,td{border:1px solid #ccc;"
          "padding:4px 6px;text-align:right}th:first-child,td:first-child{text-align:left}th{background:#f0f4f9}\n"
          "dl{font-size:13px}dt{font-weight:600;margin-top:6px}dd{margin-left:16px}\n"
          "@media print{body{margin:0;max-width:none;font-size:11pt}h2,figure,svg,table,.cards{break-inside:avoid}"
          "@page{size:A4;margin:14mm}.card{border-color:#999}}\n"
          "</style></head><body>\n",
          f);
    fputs("<h1>Mental Health Tactical Advice Service: indicators</h1>\n<p class=\"muted\">", f);
    html_esc(f, r);
    fprintf(f, " (UTC). Report made %s from the journal (up to record %" PRIu64 ").</p>\n", iso(now, a),
            st->last_ticket);

    fputs("<div class=\"cards\">", f);
    fprintf(f, "<div class=\"card\"><b>%u</b>incidents raised</div>", x->raised);
    fprintf(f, "<div class=\"card\"><b>%u</b>closed with an outcome</div>", x->closed);
    fprintf(f, "<div class=\"card\"><b>%u</b>cancelled</div>", x->cancelled);
    fprintf(f, "<div class=\"card\"><b>%u</b>repeat contacts (30 days)</div>", x->repeat_contacts_30d);
    fputs("</div>\n", f);

    fputs("<h2>How often we met the standard</h2>\n", f);
    svg_share(f, "Answered (accepted) within the service level", within, appl, "with a service level due");
    svg_share(f, "Section 136 detentions with a recorded consultation", x->s136_with_consultation, x->s136_detentions,
              "s136 detentions");
    svg_share(f, "Diverted from police attendance", x->diverted_from_police, x->closed, "closed incidents");

    fputs("<h2>How long it took, by priority</h2>\n<p class=\"key muted\">Median (p50)<span class=\"p50\" "
          "style=\"background:#1f5fa8\"></span> and 95th percentile (p95)<span style=\"background:#9dbbe0\"></span>"
          " - 95 in 100 incidents took no longer than the light bar.</p>\n<div class=\"charts\">\n",
          f);
    svg_times(f, "Raise to accept", x, 0);
    svg_times(f, "Raise to first advice", x, 1);
    svg_times(f, "Raise to agreed outcome", x, 2);
    fputs("</div>\n", f);

    fputs("<h2>Outcomes agreed</h2>\n<p class=\"muted\">An incident may have several outcomes.</p>\n", f);
    svg_outcomes(f, x);

    fputs("<h2>The figures</h2>\n<table><thead><tr><th>Priority</th><th>Raised</th>"
          "<th>Accept p50</th><th>Accept p95</th><th>n</th><th>First advice p50</th><th>First advice p95</th><th>n</th>"
          "<th>Outcome p50</th><th>Outcome p95</th><th>n</th><th>Service level</th><th>Within</th></tr></thead><tbody>\n",
          f);
    for (size_t i = 0; i < x->n_by_priority; i++) {
        const Mhtas__V1__PriorityIndicators *p = x->by_priority[i];
        const Mhtas__V1__Percentiles *ps[3] = { pc(p->to_accept), pc(p->to_first_advice), pc(p->to_outcome) };
        fprintf(f, "<tr><td>%s</td><td>%u</td>", priority_name(p->priority, pn), p->raised);
        for (int k = 0; k < 3; k++)
            fprintf(f, "<td>%s</td><td>%s</td><td>%u</td>", dur(ps[k]->p50_ms, ps[k]->count, a),
                    dur(ps[k]->p95_ms, ps[k]->count, b), ps[k]->count);
        int64_t s = p->priority >= 0 && p->priority < 5 ? sla[p->priority] : 0;
        if (s > 0)
            fprintf(f, "<td>%s</td><td>%u of %u (%.0f %%)</td></tr>\n", dur(s, 1, c), p->within_sla, p->sla_applicable,
                    pct(p->within_sla, p->sla_applicable));
        else
            fputs("<td>none</td><td>-</td></tr>\n", f);
    }
    fprintf(f, "</tbody></table>\n<table><tbody>"
               "<tr><td>Answered within the service level</td><td>%u of %u (%.1f %%)</td></tr>"
               "<tr><td>s136 detentions with a recorded consultation</td><td>%u of %u (%.1f %%)</td></tr>"
               "<tr><td>Diverted from police attendance</td><td>%u of %u closed (%.1f %%)</td></tr>"
               "<tr><td>Repeat contacts of the same person within 30 days</td><td>%u (of %u incidents with an identified person)</td></tr>"
               "</tbody></table>\n",
            within, appl, x->share_within_sla * 100.0, x->s136_with_consultation, x->s136_detentions,
            x->share_s136_with_consultation * 100.0, x->diverted_from_police, x->closed, x->share_diverted * 100.0,
            x->repeat_contacts_30d, x->persons_identified);
    if (x->n_outcomes) {
        fputs("<table><thead><tr><th>Outcome</th><th>Incidents</th></tr></thead><tbody>\n", f);
        for (size_t i = 0; i < x->n_outcomes; i++) {
            char h[64];
            human_code(enum_name(&mhtas__v1__outcome_code__descriptor, x->outcomes[i]->code, false, pn), h, sizeof h);
            fputs("<tr><td>", f);
            html_esc(f, h);
            fprintf(f, "</td><td>%u</td></tr>\n", x->outcomes[i]->count);
        }
        fputs("</tbody></table>\n", f);
    }
    fputs("<h2>What the figures mean</h2><dl>\n"
          "<dt>Raise to accept, to first advice, to agreed outcome</dt><dd>From the moment the control room raised "
          "the query to the first time a practitioner accepted it, sent their first message, and the outcome was "
          "agreed. p50 is the median; p95 the time 95 in 100 incidents stayed within.</dd>\n"
          "<dt>Answered within the service level</dt><dd>Accepted no later than the configured time for its priority. "
          "Counted once accepted, or once the time ran out without an accept; a query cancelled before its time ran "
          "out is not counted either way.</dd>\n"
          "<dt>s136 detentions with a recorded consultation</dt><dd>Of the agreed outcomes that include a section 136 "
          "detention, those where who was consulted and when is recorded. \"Consultation not practicable\" does not "
          "count as a consultation.</dd>\n"
          "<dt>Diverted from police attendance</dt><dd>Closed incidents whose outcome includes no police attendance "
          "or no further police action, without a detention or an arrest, as a share of all closed incidents.</dd>\n"
          "<dt>Repeat contacts</dt><dd>Incidents whose person (by NHS number, or family name and date of birth) had "
          "another incident in the 30 days before.</dd>\n</dl>\n</body></html>\n",
          f);
}

static int cmd_indicators(opts_t *o)
{
    state_t s;
    int rc = load_state(o, &s, true);
    if (rc)
        return rc;
    int64_t sla[5];
    for (int p = 0; p < 5; p++)
        sla[p] = s.cfg->sla_ms[p];
    int64_t now = now_ms();
    Mhtas__V1__Indicators *x = NULL;
    /* Up to now, like GetIndicators; a --from in the future is an empty range. */
    int64_t to = o->to_ms ? o->to_ms : (now > o->from_ms ? now : o->from_ms);
    if (core_compute_indicators((const Mhtas__V1__Incident *const *)s.snap->incidents, s.snap->n_incidents, o->from_ms,
                                to, now, sla, &x) != 0 ||
        x == NULL) {
        state_free(&s);
        return data_error("cannot compute the indicators (out of memory or an empty range)");
    }
    FILE *f = open_out(o);
    if (f == NULL) {
        protobuf_c_message_free_unpacked(&x->base, hub_pb_allocator());
        state_free(&s);
        return EXIT_DATA;
    }
    if (strcmp(o->format, "json") == 0) {
        size_t len;
        char *json = pbjson_encode(&x->base, &len);
        if (json == NULL) {
            rc = data_error("out of memory");
        } else {
            fwrite(json, 1, len, f);
            fputc('\n', f);
            hub_free(json);
        }
    } else if (strcmp(o->format, "html") == 0) {
        write_html(f, o, x, sla, now, &s.stats);
    } else {
        write_text(f, o, x, sla);
    }
    int crc = close_out(o, f);
    protobuf_c_message_free_unpacked(&x->base, hub_pb_allocator());
    state_free(&s);
    return rc ? rc : crc;
}

/* ------------------------------------------------------------ verify */

static int cmd_verify(opts_t *o)
{
    state_t s;
    int rc = load_state(o, &s, o->config != NULL);
    if (rc)
        return rc;
    const journal_read_stats_t *st = &s.stats;
    FILE *f = open_out(o);
    if (f == NULL) {
        state_free(&s);
        return EXIT_DATA;
    }
    fprintf(f, "journal %s: ok\n", o->data);
    if (st->snapshot)
        fprintf(f, "  snapshot:  up to record %" PRIu64 " (%" PRIu64 " bytes)\n", st->snapshot, st->snapshot_bytes);
    else
        fprintf(f, "  snapshot:  none\n");
    fprintf(f, "  segments:  %zu read, %" PRIu64 " bytes in all files\n", st->segments, st->bytes);
    if (st->records)
        fprintf(f, "  records:   %" PRIu64 " after the snapshot (records %" PRIu64 "-%" PRIu64 "), %" PRIu64
                   " older ones covered by it\n",
                st->records, st->first_ticket, st->last_ticket, st->covered);
    else
        fprintf(f, "  records:   none after the snapshot, %" PRIu64 " older ones covered by it\n", st->covered);
    if (st->unread_bytes)
        fprintf(f, "  tail:      %" PRIu64 " bytes at the end of the newest segment not read (%s): the hub is "
                   "writing them, or a crash left them (the hub trims them at its next start)\n",
                st->unread_bytes, st->unread_why ? st->unread_why : "incomplete");
    else
        fprintf(f, "  tail:      clean\n");
    if (s.snap)
        fprintf(f, "  state:     %zu incidents rebuilt with %s\n", s.snap->n_incidents, o->config);
    int crc = close_out(o, f);
    state_free(&s);
    return crc;
}


/* ------------------------------------------------------------- audit */

typedef struct audit_ctx {
    const opts_t *o;
    FILE *f;
    bool csv;
    uint64_t matched, seen;
    int err;
} audit_ctx_t;

static void audit_row(audit_ctx_t *a, const Mhtas__V1__Event *ev)
{
    const Mhtas__V1__AuditRecord *r = ev->audit;
    char at[32], seq[24], inc[24], b1[40], b2[40], b3[48];
    char parts[200] = "";
    size_t pn = 0;
    for (size_t i = 0; i < r->n_parts && pn < sizeof parts; i++)
        pn += (size_t)snprintf(parts + pn, sizeof parts - pn, "%s%s", i ? ";" : "",
                               enum_name(&mhtas__v1__care_part__descriptor, r->parts[i], false, b3));
    snprintf(seq, sizeof seq, "%" PRIu64, ev->seq);
    snprintf(inc, sizeof inc, "%" PRIu64, r->incident_id);
    const char *action = enum_name(&mhtas__v1__audit_action__descriptor, r->action, false, b1);
    const char *basis = enum_name(&mhtas__v1__lawful_basis__descriptor, r->lawful_basis, false, b2);
    char bgr[40];
    const char *bg_reason = r->break_glass
                                ? enum_name(&mhtas__v1__break_glass_reason__descriptor, r->break_glass_reason, false, bgr)
                                : "";
    if (a->csv) {
        csv_field(a->f, seq, false);
        csv_field(a->f, iso(ev->at_ms, at), false);
        csv_field(a->f, action, false);
        csv_field(a->f, str(r->user_id), false);
        csv_field(a->f, r->incident_id ? inc : "", false);
        csv_field(a->f, str(r->nhs_number), false);
        csv_field(a->f, str(r->method), false);
        csv_field(a->f, basis, false);
        csv_field(a->f, str(r->reason), false);
        csv_field(a->f, r->break_glass ? "yes" : "no", false);
        csv_field(a->f, bg_reason, false);
        csv_field(a->f, r->break_glass ? str(r->break_glass_text) : "", false);
        csv_field(a->f, parts, false);
        csv_field(a->f, r->restricted ? "yes" : "no", true);
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "seq", json_string(seq));
    json_object_set_new(j, "at", json_string(iso(ev->at_ms, at)));
    json_object_set_new(j, "action", json_string(action));
    json_object_set_new(j, "userId", json_string(str(r->user_id)));
    json_object_set_new(j, "incidentId", json_string(inc));
    json_object_set_new(j, "nhsNumber", json_string(str(r->nhs_number)));
    json_object_set_new(j, "method", json_string(str(r->method)));
    json_object_set_new(j, "lawfulBasis", json_string(basis));
    json_object_set_new(j, "reason", json_string(str(r->reason)));
    json_object_set_new(j, "breakGlass", json_boolean(r->break_glass));
    if (r->break_glass) {
        json_object_set_new(j, "breakGlassReason", json_string(bg_reason));
        json_object_set_new(j, "breakGlassText", json_string(str(r->break_glass_text)));
    }
    json_t *pa = json_array();
    for (size_t i = 0; i < r->n_parts; i++)
        json_array_append_new(pa, json_string(enum_name(&mhtas__v1__care_part__descriptor, r->parts[i], false, b3)));
    json_object_set_new(j, "parts", pa);
    json_object_set_new(j, "restricted", json_boolean(r->restricted));
    char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (line == NULL) {
        a->err = 1;
        return;
    }
    fputs(line, a->f);
    fputc('\n', a->f);
    free(line);
}

static int on_audit_record(void *ctx, uint64_t ticket, const uint8_t *p, size_t len)
{
    audit_ctx_t *a = ctx;
    Mhtas__V1__JournalRecord *rec = mhtas__v1__journal_record__unpack(hub_pb_allocator(), len, p);
    if (rec == NULL || rec->event == NULL) {
        if (rec)
            mhtas__v1__journal_record__free_unpacked(rec, hub_pb_allocator());
        return -1; /* journal_read_history names the file and offset */
    }
    const Mhtas__V1__Event *ev = rec->event;
    const opts_t *o = a->o;
    if (ev->kind_case == MHTAS__V1__EVENT__KIND_AUDIT && ev->audit) {
        const Mhtas__V1__AuditRecord *r = ev->audit;
        a->seen++;
        bool keep = ev->at_ms >= o->from_ms && (o->to_ms == 0 || ev->at_ms < o->to_ms) &&
                    (o->nhs[0] == '\0' || strcmp(o->nhs, str(r->nhs_number)) == 0) &&
                    (o->user == NULL || strcmp(o->user, str(r->user_id)) == 0) &&
                    (o->incident == 0 || o->incident == r->incident_id);
        if (keep) {
            a->matched++;
            audit_row(a, ev);
        }
    }
    mhtas__v1__journal_record__free_unpacked(rec, hub_pb_allocator());
    (void)ticket;
    return a->err ? -1 : 0;
}

static int cmd_audit(opts_t *o)
{
    char err[1024];
    if (o->data == NULL && o->config) {
        hub_config_t *cfg = hub_config_load(o->config, NULL, 0, err, sizeof err);
        if (cfg == NULL)
            return data_error("config: %s", err);
        static char dir[4096];
        snprintf(dir, sizeof dir, "%s", cfg->data_dir ? cfg->data_dir : "");
        hub_config_free(cfg);
        if (dir[0] == '\0')
            return usage_error("--data DIR is needed (the config sets no [hub] data_dir)");
        o->data = dir;
    }
    if (o->data == NULL)
        return usage_error("--data DIR is needed");
    FILE *f = open_out(o);
    if (f == NULL)
        return EXIT_DATA;
    audit_ctx_t a = { .o = o, .f = f, .csv = strcmp(o->format, "csv") == 0 };
    if (a.csv)
        fputs("seq,at,action,user_id,incident_id,nhs_number,method,lawful_basis,reason,break_glass,"
              "break_glass_reason,break_glass_text,parts,restricted\r\n",
              f);
    journal_read_stats_t st;
    journal_replay_t rp = { .record = on_audit_record, .ctx = &a };
    int rc = journal_read_history(o->data, journal_io_posix(), &rp, &st, err, sizeof err);
    int crc = close_out(o, f);
    if (rc) {
        if (a.err)
            return data_error("out of memory");
        return data_error("%s", err[0] ? err : journal_strerror(rc));
    }
    state_t s = { .stats = st };
    note_tail(&s);
    if (st.starts_after)
        fprintf(stderr,
                "%s: note: the oldest archived segments were removed: this trail starts after ticket %" PRIu64
                " and is NOT complete before it\n",
                prog, st.starts_after);
    fprintf(stderr, "%s: %" PRIu64 " audit records matched (of %" PRIu64 " in %zu files, tickets to %" PRIu64 ")\n",
            prog, a.matched, a.seen, st.segments, st.last_ticket);
    return crc;
}

/* ---------------------------------------------------------- commands */

static const command_t commands[] = {
    { "incidents", cmd_incidents, "csv,ndjson", true, true,
      "one row per incident (CSV has no health data; NDJSON adds it only with --include-person)" },
    { "outcomes", cmd_outcomes, "csv,ndjson", true, true, "one row per agreed outcome code per incident" },
    { "indicators", cmd_indicators, "text,json,html", true, true,
      "the indicators the service is judged by (json: the Indicators message as proto3 JSON)" },
    { "verify", cmd_verify, NULL, false, false,
      "check every file of the journal; with --config also rebuild the hub's state from it" },
    { "audit", cmd_audit, "csv,ndjson", false, true,
      "the care-record audit trail (every search result, read, share and break-glass), whole history" },
};

static void help(FILE *f)
{
    fprintf(f,
            "usage: %s COMMAND [options]\n\n"
            "Reads the mhtas hub's journal (read-only; safe while the hub runs).\n\ncommands:\n",
            prog);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\noptions:\n"
               "  --data DIR        the hub's journal directory ([hub] data_dir; default: from --config)\n"
               "  --config FILE     the hub's mhtas.ini (boroughs, users, service levels)\n"
               "  --from YYYY-MM-DD incidents raised on or after this day (UTC)\n"
               "  --to YYYY-MM-DD   incidents raised before this day (UTC, exclusive)\n"
               "  --format F        incidents/outcomes/audit: csv (default) or ndjson;\n"
               "                    indicators: text (default), json or html\n"
               "  --person NHS      audit: only this person's records (NHS number)\n"
               "  --user ID         audit: only what this user did\n"
               "  --incident N      audit: only records for this incident\n"
               "  --include-person  incidents --format ndjson: include names, dates of birth, concerns and\n"
               "                    messages (HEALTH DATA; a warning is printed)\n"
               "  -o, --output FILE write there instead of stdout\n\n"
               "exit codes: 0 ok, 1 a data problem (damaged journal, config, output), 2 usage\n");
}

static bool format_ok(const char *list, const char *fmt)
{
    size_t n = strlen(fmt);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t w = e ? (size_t)(e - p) : strlen(p);
        if (w == n && strncmp(p, fmt, n) == 0)
            return true;
        p += w + (e != NULL);
    }
    return false;
}

int main(int argc, char **argv)
{
    hub_log_level = HUB_LOG_ERROR;
    if (argc < 2)
        return usage_error("no command given");
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        help(stdout);
        return 0;
    }
    const command_t *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    if (cmd == NULL) {
        return usage_error("unknown command \"%s\"", name);
    }
    opts_t o = { 0 };
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        char key[32];
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq) {
            size_t kl = (size_t)(eq - a);
            if (kl >= sizeof key)
                return usage_error("unknown option %s", a);
            memcpy(key, a, kl);
            key[kl] = '\0';
            val = eq + 1;
        } else {
            snprintf(key, sizeof key, "%s", a);
        }
        if (strcmp(key, "-h") == 0 || strcmp(key, "--help") == 0) {
            help(stdout);
            return 0;
        }
        if (strcmp(key, "--include-person") == 0) {
            if (val)
                return usage_error("--include-person takes no value");
            o.include_person = true;
            continue;
        }
        const char **slot = strcmp(key, "--data") == 0                                 ? &o.data
                            : strcmp(key, "--config") == 0                             ? &o.config
                            : strcmp(key, "--format") == 0                             ? &o.format
                            : strcmp(key, "-o") == 0 || strcmp(key, "--output") == 0 ? &o.out
                            : strcmp(key, "--from") == 0                               ? &o.from_s
                            : strcmp(key, "--to") == 0                                 ? &o.to_s
                            : strcmp(key, "--person") == 0                             ? &o.person
                            : strcmp(key, "--user") == 0                               ? &o.user
                            : strcmp(key, "--incident") == 0                           ? &o.incident_s
                                                                                       : NULL;
        if (slot == NULL)
            return usage_error("%s: unknown option %s", cmd->name, a);
        if (val == NULL) {
            if (i + 1 >= argc)
                return usage_error("%s needs a value", key);
            val = argv[++i];
        }
        if (*val == '\0')
            return usage_error("%s needs a value", key);
        *slot = val;
    }
    if (cmd->needs_config && o.config == NULL)
        return usage_error("%s: --config FILE is needed (the hub's mhtas.ini: boroughs, users, service levels)",
                           cmd->name);
    if (cmd->formats == NULL && o.format)
        return usage_error("%s takes no --format", cmd->name);
    if (cmd->formats) {
        static char def[16];
        if (o.format == NULL) {
            const char *e = strchr(cmd->formats, ',');
            size_t w = e ? (size_t)(e - cmd->formats) : strlen(cmd->formats);
            snprintf(def, sizeof def, "%.*s", (int)w, cmd->formats);
            o.format = def;
        } else if (!format_ok(cmd->formats, o.format)) {
            return usage_error("%s: --format must be one of %s", cmd->name, cmd->formats);
        }
    }
    if (o.include_person && (strcmp(cmd->name, "incidents") != 0 || strcmp(o.format, "ndjson") != 0))
        return usage_error("--include-person is only for: incidents --format ndjson (CSV never holds health data)");
    if ((o.person || o.user || o.incident_s) && strcmp(cmd->name, "audit") != 0)
        return usage_error("--person, --user and --incident are for: audit");
    if (o.person) {
        size_t n = 0;
        for (const char *p = o.person; *p; p++) {
            if (*p == ' ' || *p == '-')
                continue;
            if (*p < '0' || *p > '9' || n == 10)
                return usage_error("--person: expected an NHS number (10 digits)");
            o.nhs[n++] = *p;
        }
        if (n != 10)
            return usage_error("--person: expected an NHS number (10 digits)");
        o.nhs[n] = '\0';
    }
    if (o.incident_s) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(o.incident_s, &end, 10);
        if (errno || *end || v == 0 || o.incident_s[0] == '-')
            return usage_error("--incident: expected an incident number");
        o.incident = v;
    }
    if (!cmd->range && (o.from_s || o.to_s))
        return usage_error("%s takes no --from/--to", cmd->name);
    if (o.from_s && (o.from_ms = parse_date(o.from_s)) < 0)
        return usage_error("--from %s: expected a date YYYY-MM-DD", o.from_s);
    if (o.to_s && (o.to_ms = parse_date(o.to_s)) < 0)
        return usage_error("--to %s: expected a date YYYY-MM-DD", o.to_s);
    if (o.to_s && o.to_ms <= o.from_ms)
        return usage_error("--to must be after --from (--from is inclusive, --to exclusive)");
    return cmd->run(&o);
}
