/* main.c -- bin/mhtas-cli: the practitioner's desktop-client actions from a
 * terminal, for scripts and tests, on the mhtas client library.
 *
 *   mhtas-cli [--host IP] --port N [--token T] [--deadline-ms MS]
 *             [--timeout-ms MS] <command> [args]
 *
 * The token may come from the environment (MHTAS_TOKEN) instead, so it does
 * not show in `ps`; the port from MHTAS_PORT.
 *
 * Output: one line per result on stdout,
 *   status=OK [key=value ...] json={...}
 *   status=INVALID_ARGUMENT code=3 message="..."
 * except that search, summary and audit (the care record, careprint.c)
 * follow their status line with readable lines: one per match, the summary
 * part by part with its STALE and RESTRICTED flags, one per audit entry.
 * plus, for watch and run-practitioner, one line per event:
 *   event seq=N kind=offer json={...}
 * Connection state changes go to stderr as "# state=... reason=...".
 * Exit status: 0 OK, 1 a gRPC error (or --timeout-ms passed), 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cli/careprint.h"
#include "cli/pbprint.h"
#include "lib/mhtas_client.h"

#define EXIT_GRPC 1
#define EXIT_USAGE 2

typedef enum {
    MODE_ONESHOT = 0, /* one unary call, then exit */
    MODE_WATCH,       /* print events until killed */
    MODE_PRACTITIONER /* scripted practitioner (run-practitioner) */
} mode_t_;

typedef enum {
    P_START = 0,  /* StartShift in flight */
    P_WAITING,    /* waiting for an offer */
    P_ACCEPTING,
    P_ADVISING,   /* PostMessage in flight */
    P_PROPOSING,
    P_PROPOSED,   /* waiting for the incident to close */
} pstate_t;

typedef struct cli {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    uv_timer_t timeout;
    mhtas_client_t *client;
    mode_t_ mode;
    int exit_code;
    bool closing;
    int64_t deadline_ms;
    const char *advice;
    const char *summary;
    pstate_t pstate;
    uint64_t incident;     /* run-practitioner: the incident held */
} cli_t;

static void usage(FILE *out)
{
    fputs("usage: mhtas-cli [--host IP] --port N [--token T] [--deadline-ms MS] [--timeout-ms MS]\n"
          "                 <command> [args]\n"
          "commands:\n"
          "  whoami                         who the token belongs to, and the hub's last seq\n"
          "  start-shift | end-shift\n"
          "  pause REASON | resume          set availability\n"
          "  accept ID | decline ID [REASON]\n"
          "  say ID TEXT                    post a message on incident ID\n"
          "  propose ID CODE[,CODE...] [SUMMARY]   e.g. REFER_CMHT,ADVICE_ONLY\n"
          "  get ID | list\n"
          "  raise BOROUGH QUESTION [PRIORITY]   (police roles) raise an incident, priority 1-4 [2]\n"
          "  agree ID | cancel ID REASON   (police roles) agree the proposed outcome / cancel\n"
          "  watch                          print events, one line each, until killed\n"
          "  run-practitioner [ADVICE]      start shift, accept the first offer, advise,\n"
          "                                 propose REFER_CMHT; exit 0 when it is CLOSED\n"
          "care record (practitioners; INCIDENT is one you hold, or 0 with --break-glass):\n"
          "  search INCIDENT FAMILY DOB [GIVEN] [--postcode P]\n"
          "                                 FAMILY may end in * (Smi*); DOB is YYYY-MM-DD or\n"
          "                                 FROM..TO; results best first, RESTRICTED flagged\n"
          "  summary INCIDENT NHS           the care summary, part by part, STALE parts and\n"
          "                                 RESTRICTED records flagged\n"
          "  share INCIDENT NHS PART[,PART] TEXT\n"
          "                                 tell the police TEXT, drawn from PARTS (IDENTITY,\n"
          "                                 LEGAL_STATUS, DIAGNOSES, CARE_TEAM, RISKS,\n"
          "                                 CRISIS_PLAN, RECENT_CONTACTS)\n"
          "  options: --basis direct|vital|safeguarding [direct]  --reason TEXT\n"
          "           [advising officers on incident INCIDENT]\n"
          "           --break-glass CODE --glass-text TEXT (search, summary; CODE: RISK_TO_LIFE,\n"
          "           SAFEGUARDING_EMERGENCY, COVERING_COLLEAGUE, NOT_YET_ROUTED,\n"
          "           RESTRICTED_RECORD, OTHER)\n"
          "  audit [--person NHS] [--user ID] [--incident N] [--action read|search|share|break-glass]\n"
          "        [--max N]                (supervisors) the audit trail the hub holds\n"
          "environment: MHTAS_TOKEN, MHTAS_PORT\n"
          "exit status: 0 OK, 1 gRPC error or timeout, 2 usage\n",
          out);
}

/* ------------------------------------------------------------ shutdown */

static void client_closed(void *ctx)
{
    cli_t *cli = ctx;
    mhtas_client_free(cli->client);
    cli->client = NULL;
}

static void finish(cli_t *cli, int code)
{
    if (cli->closing)
        return;
    cli->closing = true;
    cli->exit_code = code;
    fflush(stdout);
    uv_close((uv_handle_t *)&cli->sigint, NULL);
    uv_close((uv_handle_t *)&cli->sigterm, NULL);
    uv_close((uv_handle_t *)&cli->timeout, NULL);
    mhtas_client_close(cli->client, client_closed, cli);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    finish(s->data, 0);
}

static void on_timeout(uv_timer_t *t)
{
    cli_t *cli = t->data;
    printf("status=DEADLINE_EXCEEDED code=4 message=\"--timeout-ms passed\"\n");
    finish(cli, EXIT_GRPC);
}

/* ------------------------------------------------------------ printing */

static const char *enum_name(const ProtobufCEnumDescriptor *d, int v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    return ev ? ev->name : "?";
}

static void print_error(int status, const char *message)
{
    printf("status=%s code=%d message=", mhtas_client_status_name(status), status);
    cli_print_string(stdout, message);
    putchar('\n');
    fflush(stdout);
}

static void print_incident_keys(const Mhtas__V1__Incident *inc)
{
    if (inc)
        printf(" id=%" PRIu64 " state=%s", inc->id, enum_name(&mhtas__v1__incident_state__descriptor, inc->state));
}

static void print_status_keys(const Mhtas__V1__PractitionerStatus *st)
{
    if (st)
        printf(" state=%s", enum_name(&mhtas__v1__practitioner_state__descriptor, st->state));
}

/* The summary keys of a successful response, by type. */
static void print_ok(const ProtobufCMessage *resp)
{
    if (cli_print_care(stdout, resp))
        return;
    printf("status=OK");
    const ProtobufCMessageDescriptor *d = resp->descriptor;
    if (d == &mhtas__v1__who_am_iresponse__descriptor) {
        const Mhtas__V1__WhoAmIResponse *r = (const void *)resp;
        if (r->user)
            printf(" user=%s role=%s", r->user->id, enum_name(&mhtas__v1__role__descriptor, r->user->role));
        printf(" last_seq=%" PRIu64, r->last_seq);
    } else if (d == &mhtas__v1__start_shift_response__descriptor) {
        print_status_keys(((const Mhtas__V1__StartShiftResponse *)resp)->status);
    } else if (d == &mhtas__v1__end_shift_response__descriptor) {
        print_status_keys(((const Mhtas__V1__EndShiftResponse *)resp)->status);
    } else if (d == &mhtas__v1__set_availability_response__descriptor) {
        print_status_keys(((const Mhtas__V1__SetAvailabilityResponse *)resp)->status);
    } else if (d == &mhtas__v1__accept_response__descriptor) {
        print_incident_keys(((const Mhtas__V1__AcceptResponse *)resp)->incident);
    } else if (d == &mhtas__v1__get_incident_response__descriptor) {
        print_incident_keys(((const Mhtas__V1__GetIncidentResponse *)resp)->incident);
    } else if (d == &mhtas__v1__raise_incident_response__descriptor) {
        print_incident_keys(((const Mhtas__V1__RaiseIncidentResponse *)resp)->incident);
    } else if (d == &mhtas__v1__agree_outcome_response__descriptor) {
        print_incident_keys(((const Mhtas__V1__AgreeOutcomeResponse *)resp)->incident);
    } else if (d == &mhtas__v1__cancel_incident_response__descriptor) {
        print_incident_keys(((const Mhtas__V1__CancelIncidentResponse *)resp)->incident);
    } else if (d == &mhtas__v1__propose_outcome_response__descriptor) {
        print_incident_keys(((const Mhtas__V1__ProposeOutcomeResponse *)resp)->incident);
    } else if (d == &mhtas__v1__post_message_response__descriptor) {
        const Mhtas__V1__PostMessageResponse *r = (const void *)resp;
        if (r->message)
            printf(" id=%" PRIu64 " number=%u", r->message->incident_id, r->message->number);
    } else if (d == &mhtas__v1__share_with_police_response__descriptor) {
        const Mhtas__V1__ShareWithPoliceResponse *r = (const void *)resp;
        printf(" id=%" PRIu64 " disclosure=%" PRIu64, r->incident_id, r->disclosure_id);
    } else if (d == &mhtas__v1__list_incidents_response__descriptor) {
        printf(" count=%zu", ((const Mhtas__V1__ListIncidentsResponse *)resp)->n_incidents);
    }
    printf(" json=");
    cli_pb_print(stdout, resp);
    putchar('\n');
    fflush(stdout);
}

static const char *event_kind(const Mhtas__V1__Event *ev)
{
    switch (ev->kind_case) {
    case MHTAS__V1__EVENT__KIND_OFFER:
        return "offer";
    case MHTAS__V1__EVENT__KIND_INCIDENT:
        return "incident";
    case MHTAS__V1__EVENT__KIND_MESSAGE:
        return "message";
    case MHTAS__V1__EVENT__KIND_QUEUE:
        return "queue";
    case MHTAS__V1__EVENT__KIND_BOARD:
        return "board";
    case MHTAS__V1__EVENT__KIND_NOTICE:
        return "notice";
    case MHTAS__V1__EVENT__KIND_STATUS:
        return "status";
    default:
        return "unknown";
    }
}

/* ------------------------------------------------------------ one-shot */

static void oneshot_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    cli_t *cli = ctx;
    if (status == MHTAS_GRPC_CANCELLED && cli->closing)
        return;
    if (status == MHTAS_GRPC_OK)
        print_ok(resp);
    else
        print_error(status, message);
    finish(cli, status == MHTAS_GRPC_OK ? 0 : EXIT_GRPC);
}

static int call(cli_t *cli, const char *method, const ProtobufCMessage *req, mhtas_client_call_cb cb)
{
    int rc = mhtas_client_call(cli->client, method, req, cli->deadline_ms, cb, cli);
    if (rc < 0) {
        fprintf(stderr, "mhtas-cli: %s: %s\n", method, mhtas_client_strerror(rc));
        finish(cli, EXIT_USAGE);
    }
    return rc;
}

/* ------------------------------------------------------------ run-practitioner */

static void prac_step_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp);

static void prac_accept(cli_t *cli, uint64_t id)
{
    Mhtas__V1__AcceptRequest req = MHTAS__V1__ACCEPT_REQUEST__INIT;
    req.incident_id = id;
    cli->incident = id;
    cli->pstate = P_ACCEPTING;
    call(cli, "Accept", &req.base, prac_step_done);
}

static void prac_step_done(void *ctx, int status, const char *message, const ProtobufCMessage *resp)
{
    cli_t *cli = ctx;
    if (cli->closing)
        return;
    if (status == MHTAS_GRPC_OK)
        print_ok(resp);
    else
        print_error(status, message);
    switch (cli->pstate) {
    case P_START:
        if (status != MHTAS_GRPC_OK) {
            finish(cli, EXIT_GRPC);
            return;
        }
        cli->pstate = P_WAITING;
        break;
    case P_ACCEPTING:
        if (status != MHTAS_GRPC_OK) {
            /* The offer went elsewhere (timed out, withdrawn): wait for another. */
            cli->pstate = P_WAITING;
            cli->incident = 0;
            break;
        }
        {
            Mhtas__V1__PostMessageRequest req = MHTAS__V1__POST_MESSAGE_REQUEST__INIT;
            req.incident_id = cli->incident;
            req.text = (char *)cli->advice;
            cli->pstate = P_ADVISING;
            call(cli, "PostMessage", &req.base, prac_step_done);
        }
        break;
    case P_ADVISING:
        if (status != MHTAS_GRPC_OK) {
            finish(cli, EXIT_GRPC);
            return;
        }
        {
            Mhtas__V1__ProposeOutcomeRequest req = MHTAS__V1__PROPOSE_OUTCOME_REQUEST__INIT;
            Mhtas__V1__Outcome out = MHTAS__V1__OUTCOME__INIT;
            Mhtas__V1__OutcomeCode codes[] = { MHTAS__V1__OUTCOME_CODE__OUTCOME_CODE_REFER_CMHT };
            out.n_codes = 1;
            out.codes = codes;
            out.summary = (char *)cli->summary;
            req.incident_id = cli->incident;
            req.outcome = &out;
            cli->pstate = P_PROPOSING;
            call(cli, "ProposeOutcome", &req.base, prac_step_done);
        }
        break;
    case P_PROPOSING:
        if (status != MHTAS_GRPC_OK) {
            finish(cli, EXIT_GRPC);
            return;
        }
        cli->pstate = P_PROPOSED;
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------ events */

static void on_event(void *ctx, const Mhtas__V1__Event *ev)
{
    cli_t *cli = ctx;
    printf("event seq=%" PRIu64 " kind=%s json=", ev->seq, event_kind(ev));
    cli_pb_print(stdout, &ev->base);
    putchar('\n');
    fflush(stdout);
    if (cli->mode != MODE_PRACTITIONER || cli->closing)
        return;
    if (ev->kind_case == MHTAS__V1__EVENT__KIND_OFFER && ev->offer && ev->offer->incident &&
        cli->pstate == P_WAITING) {
        prac_accept(cli, ev->offer->incident->id);
    } else if (ev->kind_case == MHTAS__V1__EVENT__KIND_INCIDENT && ev->incident && ev->incident->incident &&
               cli->incident && ev->incident->incident->id == cli->incident &&
               cli->pstate >= P_ADVISING) {
        Mhtas__V1__IncidentState st = ev->incident->incident->state;
        if (st == MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_CLOSED) {
            printf("status=OK closed=%" PRIu64 "\n", cli->incident);
            finish(cli, 0);
        } else if (st == MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_CANCELLED) {
            print_error(MHTAS_GRPC_ABORTED, "the incident was cancelled");
            finish(cli, EXIT_GRPC);
        }
    }
}

static void on_stream_end(void *ctx, int status, const char *message)
{
    cli_t *cli = ctx;
    if (cli->closing)
        return;
    print_error(status, message);
    finish(cli, EXIT_GRPC);
}

static void on_state(void *ctx, mhtas_client_state_t st, const char *reason, uint64_t retry_in)
{
    (void)ctx;
    static const char *const names[] = { "IDLE", "CONNECTING", "READY", "DISCONNECTED", "CLOSED" };
    fprintf(stderr, "# state=%s reason=\"%s\"", names[st], reason);
    if (st == MHTAS_CLIENT_DISCONNECTED)
        fprintf(stderr, " retry_in_ms=%" PRIu64, retry_in);
    fputc('\n', stderr);
}

/* ------------------------------------------------------------ argv */

static bool parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

/* "REFER_CMHT,ADVICE_ONLY" (with or without the OUTCOME_CODE_ prefix, or
 * numbers) into codes[]. Returns the count, or -1 on an unknown name. */
static int parse_codes(const char *list, Mhtas__V1__OutcomeCode *codes, int cap)
{
    char buf[512];
    if (strlen(list) >= sizeof buf)
        return -1;
    strcpy(buf, list);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == cap)
            return -1;
        uint64_t num;
        char name[160];
        const ProtobufCEnumValue *v = NULL;
        if (parse_u64(tok, &num)) {
            v = protobuf_c_enum_descriptor_get_value(&mhtas__v1__outcome_code__descriptor, (int)num);
        } else {
            snprintf(name, sizeof name, "%s%s", strncmp(tok, "OUTCOME_CODE_", 13) ? "OUTCOME_CODE_" : "", tok);
            v = protobuf_c_enum_descriptor_get_value_by_name(&mhtas__v1__outcome_code__descriptor, name);
        }
        if (v == NULL || v->value == 0)
            return -1;
        codes[n++] = (Mhtas__V1__OutcomeCode)v->value;
    }
    return n;
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "mhtas-cli: %s\n", msg);
    usage(stderr);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *token = getenv("MHTAS_TOKEN");
    uint64_t port = 0, deadline = 5000, timeout = 0;
    if (getenv("MHTAS_PORT") && !parse_u64(getenv("MHTAS_PORT"), &port))
        return usage_error("MHTAS_PORT is not a number");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return usage_error("an option is missing its value");
        const char *v = argv[++i];
        if (strcmp(a, "--host") == 0)
            host = v;
        else if (strcmp(a, "--port") == 0) {
            if (!parse_u64(v, &port))
                return usage_error("--port needs a number");
        } else if (strcmp(a, "--token") == 0)
            token = v;
        else if (strcmp(a, "--deadline-ms") == 0) {
            if (!parse_u64(v, &deadline) || deadline == 0 || deadline > INT32_MAX)
                return usage_error("--deadline-ms needs a positive number");
        } else if (strcmp(a, "--timeout-ms") == 0) {
            if (!parse_u64(v, &timeout))
                return usage_error("--timeout-ms needs a number");
        } else
            return usage_error("unknown option");
    }
    if (i >= argc)
        return usage_error("no command");
    if (port == 0 || port > 65535)
        return usage_error("--port (or MHTAS_PORT) is required");
    const char *cmd = argv[i++];
    int nargs = argc - i;
    char **args = argv + i;

    /* Requests are built before the loop exists so usage errors cost nothing. */
    Mhtas__V1__WhoAmIRequest whoami = MHTAS__V1__WHO_AM_IREQUEST__INIT;
    Mhtas__V1__StartShiftRequest start = MHTAS__V1__START_SHIFT_REQUEST__INIT;
    Mhtas__V1__EndShiftRequest end = MHTAS__V1__END_SHIFT_REQUEST__INIT;
    Mhtas__V1__SetAvailabilityRequest avail = MHTAS__V1__SET_AVAILABILITY_REQUEST__INIT;
    Mhtas__V1__AcceptRequest accept = MHTAS__V1__ACCEPT_REQUEST__INIT;
    Mhtas__V1__DeclineRequest decline = MHTAS__V1__DECLINE_REQUEST__INIT;
    Mhtas__V1__PostMessageRequest say = MHTAS__V1__POST_MESSAGE_REQUEST__INIT;
    Mhtas__V1__ProposeOutcomeRequest propose = MHTAS__V1__PROPOSE_OUTCOME_REQUEST__INIT;
    Mhtas__V1__Outcome outcome = MHTAS__V1__OUTCOME__INIT;
    Mhtas__V1__OutcomeCode codes[32];
    Mhtas__V1__GetIncidentRequest get = MHTAS__V1__GET_INCIDENT_REQUEST__INIT;
    Mhtas__V1__ListIncidentsRequest list = MHTAS__V1__LIST_INCIDENTS_REQUEST__INIT;
    Mhtas__V1__RaiseIncidentRequest raise = MHTAS__V1__RAISE_INCIDENT_REQUEST__INIT;
    Mhtas__V1__IncidentDetails details = MHTAS__V1__INCIDENT_DETAILS__INIT;
    Mhtas__V1__AgreeOutcomeRequest agree = MHTAS__V1__AGREE_OUTCOME_REQUEST__INIT;
    Mhtas__V1__CancelIncidentRequest cancel = MHTAS__V1__CANCEL_INCIDENT_REQUEST__INIT;
    Mhtas__V1__SearchPersonsRequest search = MHTAS__V1__SEARCH_PERSONS_REQUEST__INIT;
    Mhtas__V1__GetCareSummaryRequest summary = MHTAS__V1__GET_CARE_SUMMARY_REQUEST__INIT;
    Mhtas__V1__ShareWithPoliceRequest share = MHTAS__V1__SHARE_WITH_POLICE_REQUEST__INIT;
    Mhtas__V1__ListAuditRequest audit = MHTAS__V1__LIST_AUDIT_REQUEST__INIT;
    Mhtas__V1__CarePart parts[16];
    char police_ref[64], reason_buf[96], dob_from[16], dob_to[16];
    const char *method = NULL;
    const ProtobufCMessage *req = NULL;
    mode_t_ mode = MODE_ONESHOT;
    const char *advice = "advice: keep the person safe; the crisis team knows them; refer to the CMHT";
    uint64_t id = 0;

#define NEED(lo, hi)                                                                               \
    do {                                                                                           \
        if (nargs < (lo) || nargs > (hi))                                                          \
            return usage_error("wrong number of arguments");                                       \
    } while (0)
#define NEED_ID()                                                                                  \
    do {                                                                                           \
        if (!parse_u64(args[0], &id) || id == 0)                                                   \
            return usage_error("ID must be a positive number");                                    \
    } while (0)

    /* The care-record commands take options after the command name. */
    const char *o_basis = NULL, *o_reason = NULL, *o_glass = NULL, *o_glass_text = NULL, *o_postcode = NULL;
    const char *o_person = NULL, *o_user = NULL, *o_incident = NULL, *o_action = NULL, *o_max = NULL;
    bool care_cmd = strcmp(cmd, "search") == 0 || strcmp(cmd, "summary") == 0 || strcmp(cmd, "share") == 0 ||
                    strcmp(cmd, "audit") == 0;
    char *pos[8];
    if (care_cmd) {
        int npos = 0;
        for (int k = 0; k < nargs; k++) {
            const char *a = args[k];
            if (strncmp(a, "--", 2) != 0) {
                if (npos == (int)(sizeof pos / sizeof pos[0]))
                    return usage_error("too many arguments");
                pos[npos++] = args[k];
                continue;
            }
            if (k + 1 >= nargs)
                return usage_error("an option is missing its value");
            const char *v = args[++k];
            const char **slot = strcmp(a, "--basis") == 0        ? &o_basis
                                : strcmp(a, "--reason") == 0     ? &o_reason
                                : strcmp(a, "--break-glass") == 0 ? &o_glass
                                : strcmp(a, "--glass-text") == 0 ? &o_glass_text
                                : strcmp(a, "--postcode") == 0   ? &o_postcode
                                : strcmp(a, "--person") == 0     ? &o_person
                                : strcmp(a, "--user") == 0       ? &o_user
                                : strcmp(a, "--incident") == 0   ? &o_incident
                                : strcmp(a, "--action") == 0     ? &o_action
                                : strcmp(a, "--max") == 0        ? &o_max
                                                                 : NULL;
            if (slot == NULL)
                return usage_error("unknown option");
            *slot = v;
        }
        nargs = npos;
        args = pos;
        bool is_audit = strcmp(cmd, "audit") == 0;
        if (is_audit && (o_basis || o_reason || o_glass || o_glass_text || o_postcode))
            return usage_error("audit takes --person, --user, --incident, --action and --max");
        if (!is_audit && (o_person || o_user || o_incident || o_action || o_max))
            return usage_error("--person, --user, --incident, --action and --max are for audit");
        if (o_postcode && strcmp(cmd, "search") != 0)
            return usage_error("--postcode is for search");
        if ((o_glass || o_glass_text) && strcmp(cmd, "share") == 0)
            return usage_error("share is for an incident you hold: no break-glass");
        if ((o_glass == NULL) != (o_glass_text == NULL))
            return usage_error("--break-glass CODE and --glass-text TEXT go together");
    }
    int basis = o_basis ? cli_parse_basis(o_basis) : MHTAS__V1__LAWFUL_BASIS__LAWFUL_BASIS_DIRECT_CARE;
    int glass = o_glass ? cli_parse_glass_reason(o_glass) : 0;
    if (basis == 0)
        return usage_error("--basis must be direct, vital or safeguarding");
    if (o_glass && glass == 0)
        return usage_error("unknown --break-glass reason (e.g. RISK_TO_LIFE, RESTRICTED_RECORD)");

#define ACCESS(r)                                                                                  \
    do {                                                                                           \
        if (!parse_u64(args[0], &id))                                                              \
            return usage_error("INCIDENT must be a number (0 only with --break-glass)");           \
        snprintf(reason_buf, sizeof reason_buf, id ? "advising officers on incident %llu" : "break-glass look-up", \
                 (unsigned long long)id);                                                          \
        (r).incident_id = id;                                                                      \
        (r).lawful_basis = (Mhtas__V1__LawfulBasis)basis;                                          \
        (r).reason = (char *)(o_reason ? o_reason : reason_buf);                                   \
        if (glass) {                                                                               \
            (r).break_glass = 1;                                                                   \
            (r).break_glass_reason = (Mhtas__V1__BreakGlassReason)glass;                           \
            (r).break_glass_text = (char *)o_glass_text;                                           \
        }                                                                                          \
    } while (0)

    if (strcmp(cmd, "search") == 0) {
        NEED(3, 4);
        ACCESS(search);
        search.family_name = args[1];
        const char *range = strstr(args[2], "..");
        if (range) {
            size_t n = (size_t)(range - args[2]);
            if (n >= sizeof dob_from || strlen(range + 2) >= sizeof dob_to)
                return usage_error("DOB range is YYYY-MM-DD..YYYY-MM-DD");
            memcpy(dob_from, args[2], n);
            dob_from[n] = '\0';
            strcpy(dob_to, range + 2);
            search.dob_from = dob_from;
            search.dob_to = dob_to;
        } else {
            search.date_of_birth = args[2];
        }
        if (nargs > 3)
            search.given_name = args[3];
        if (o_postcode)
            search.postcode = (char *)o_postcode;
        method = "SearchPersons", req = &search.base;
    } else if (strcmp(cmd, "summary") == 0) {
        NEED(2, 2);
        ACCESS(summary);
        summary.nhs_number = args[1];
        method = "GetCareSummary", req = &summary.base;
    } else if (strcmp(cmd, "share") == 0) {
        NEED(4, 4);
        NEED_ID();
        int n = cli_parse_parts(args[2], parts, (int)(sizeof parts / sizeof parts[0]));
        if (n <= 0)
            return usage_error("unknown care part (e.g. RISKS,CRISIS_PLAN)");
        snprintf(reason_buf, sizeof reason_buf, "officers need to know, on incident %llu", (unsigned long long)id);
        share.incident_id = id;
        share.nhs_number = args[1];
        share.n_parts = (size_t)n;
        share.parts = parts;
        share.summary = args[3];
        share.lawful_basis = (Mhtas__V1__LawfulBasis)basis;
        share.reason = (char *)(o_reason ? o_reason : reason_buf);
        method = "ShareWithPolice", req = &share.base;
    } else if (strcmp(cmd, "audit") == 0) {
        NEED(0, 0);
        uint64_t v;
        if (o_incident) {
            if (!parse_u64(o_incident, &v))
                return usage_error("--incident needs a number");
            audit.incident_id = v;
        }
        if (o_max) {
            if (!parse_u64(o_max, &v) || v > UINT32_MAX)
                return usage_error("--max needs a number");
            audit.max_results = (uint32_t)v;
        }
        if (o_action && (audit.action = (Mhtas__V1__AuditAction)cli_parse_audit_action(o_action)) == 0)
            return usage_error("--action is read, search, share or break-glass");
        audit.nhs_number = (char *)(o_person ? o_person : "");
        audit.user_id = (char *)(o_user ? o_user : "");
        method = "ListAudit", req = &audit.base;
    } else if (strcmp(cmd, "whoami") == 0) {
        NEED(0, 0);
        method = "WhoAmI", req = &whoami.base;
    } else if (strcmp(cmd, "start-shift") == 0) {
        NEED(0, 0);
        method = "StartShift", req = &start.base;
    } else if (strcmp(cmd, "end-shift") == 0) {
        NEED(0, 0);
        method = "EndShift", req = &end.base;
    } else if (strcmp(cmd, "pause") == 0) {
        NEED(1, 1);
        avail.paused = 1;
        avail.reason = args[0];
        method = "SetAvailability", req = &avail.base;
    } else if (strcmp(cmd, "resume") == 0) {
        NEED(0, 0);
        method = "SetAvailability", req = &avail.base;
    } else if (strcmp(cmd, "accept") == 0) {
        NEED(1, 1);
        NEED_ID();
        accept.incident_id = id;
        method = "Accept", req = &accept.base;
    } else if (strcmp(cmd, "decline") == 0) {
        NEED(1, 2);
        NEED_ID();
        decline.incident_id = id;
        decline.reason = nargs > 1 ? args[1] : (char *)"";
        method = "Decline", req = &decline.base;
    } else if (strcmp(cmd, "say") == 0) {
        NEED(2, 2);
        NEED_ID();
        say.incident_id = id;
        say.text = args[1];
        method = "PostMessage", req = &say.base;
    } else if (strcmp(cmd, "propose") == 0) {
        NEED(2, 3);
        NEED_ID();
        int n = parse_codes(args[1], codes, (int)(sizeof codes / sizeof codes[0]));
        if (n <= 0)
            return usage_error("unknown outcome code (e.g. REFER_CMHT,ADVICE_ONLY)");
        outcome.n_codes = (size_t)n;
        outcome.codes = codes;
        outcome.summary = nargs > 2 ? args[2] : (char *)"";
        propose.incident_id = id;
        propose.outcome = &outcome;
        method = "ProposeOutcome", req = &propose.base;
    } else if (strcmp(cmd, "get") == 0) {
        NEED(1, 1);
        NEED_ID();
        get.incident_id = id;
        method = "GetIncident", req = &get.base;
    } else if (strcmp(cmd, "list") == 0) {
        NEED(0, 0);
        method = "ListIncidents", req = &list.base;
    } else if (strcmp(cmd, "raise") == 0) {
        NEED(2, 3);
        uint64_t prio = 2;
        if (nargs > 2 && (!parse_u64(args[2], &prio) || prio < 1 || prio > 4))
            return usage_error("PRIORITY must be 1 to 4");
        snprintf(police_ref, sizeof police_ref, "CLI-%llu", (unsigned long long)uv_hrtime());
        details.police_ref = police_ref;
        details.priority = (Mhtas__V1__Priority)prio;
        details.borough = args[0];
        details.question = args[1];
        details.rcrp = MHTAS__V1__RCRP_DECISION__RCRP_DECISION_UNDER_REVIEW;
        raise.details = &details;
        method = "RaiseIncident", req = &raise.base;
    } else if (strcmp(cmd, "agree") == 0) {
        NEED(1, 1);
        NEED_ID();
        agree.incident_id = id;
        agree.agree = 1;
        method = "AgreeOutcome", req = &agree.base;
    } else if (strcmp(cmd, "cancel") == 0) {
        NEED(2, 2);
        NEED_ID();
        cancel.incident_id = id;
        cancel.reason = args[1];
        method = "CancelIncident", req = &cancel.base;
    } else if (strcmp(cmd, "watch") == 0) {
        NEED(0, 0);
        mode = MODE_WATCH;
    } else if (strcmp(cmd, "run-practitioner") == 0) {
        NEED(0, 1);
        if (nargs == 1)
            advice = args[0];
        mode = MODE_PRACTITIONER;
        method = "StartShift", req = &start.base;
    } else {
        return usage_error("unknown command");
    }
#undef NEED
#undef NEED_ID
#undef ACCESS

    static cli_t cli_storage; /* main's frame would do; static keeps it off a small stack */
    cli_t *cli = &cli_storage;
    memset(cli, 0, sizeof *cli);
    cli->mode = mode;
    cli->deadline_ms = (int64_t)deadline;
    cli->advice = advice;
    cli->summary = "Known to services; no immediate risk to life. Refer to the community mental health team.";
    if (uv_loop_init(&cli->loop) != 0) {
        fprintf(stderr, "mhtas-cli: cannot create the event loop\n");
        return EXIT_GRPC;
    }
    signal(SIGPIPE, SIG_IGN);
    mhtas_client_options_t o;
    memset(&o, 0, sizeof o);
    o.host = host;
    o.port = (int)port;
    o.token = token;
    o.on_state = getenv("MHTAS_CLI_QUIET") ? NULL : on_state;
    o.on_event = on_event;
    o.on_stream_end = on_stream_end;
    o.ctx = cli;
    cli->client = mhtas_client_new(&cli->loop, &o);
    if (cli->client == NULL) {
        uv_loop_close(&cli->loop);
        return usage_error("--host must be an IP address");
    }
    uv_signal_init(&cli->loop, &cli->sigint);
    uv_signal_init(&cli->loop, &cli->sigterm);
    cli->sigint.data = cli->sigterm.data = cli;
    uv_signal_start(&cli->sigint, on_signal, SIGINT);
    uv_signal_start(&cli->sigterm, on_signal, SIGTERM);
    uv_timer_init(&cli->loop, &cli->timeout);
    cli->timeout.data = cli;
    if (timeout)
        uv_timer_start(&cli->timeout, on_timeout, timeout, 0);

    mhtas_client_start(cli->client);
    if (mode != MODE_ONESHOT) {
        int rc = mhtas_client_subscribe(cli->client, 0);
        if (rc < 0) {
            fprintf(stderr, "mhtas-cli: subscribe: %s\n", mhtas_client_strerror(rc));
            finish(cli, EXIT_GRPC);
        }
    }
    if (method && !cli->closing)
        call(cli, method, req, mode == MODE_PRACTITIONER ? prac_step_done : oneshot_done);

    uv_run(&cli->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&cli->loop);
    if (rc != 0)
        fprintf(stderr, "mhtas-cli: loop not closed cleanly: %s\n", uv_strerror(rc));
    return cli->exit_code;
}
