/* pbjson_test.c -- tests for server/codec/pbjson.c.
 *
 * The mhtas protos use only some of the scalar types, so an AllTypes message
 * with a hand-written descriptor (every scalar type, bytes, repeated, a
 * nested message and a oneof) covers the rest. Round trips are checked three
 * ways: the JSON text, re-encoding the decoded message, and comparing the
 * protobuf encodings of the original and the decoded message.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/pbjson.h"
#include "mhtas/v1/hub.pb-c.h"
#include "mhtas/v1/ws.pb-c.h"
#include "util/alloc.h"

#define DEPTH 32

/* ------------------------------------------------------ AllTypes descriptor */

typedef enum { ALL_CHOICE_NOT_SET = 0, ALL_CHOICE_O_STR = 22, ALL_CHOICE_O_I32 = 23 } all_choice_t;

typedef struct all_types {
    ProtobufCMessage base;
    int32_t i32;
    int64_t i64;
    uint32_t u32;
    uint64_t u64;
    int32_t s32;
    int64_t s64;
    uint32_t fx32;
    uint64_t fx64;
    int32_t sf32;
    int64_t sf64;
    float fl;
    double db;
    protobuf_c_boolean b;
    char *s;
    ProtobufCBinaryData by;
    int e;
    Mhtas__V1__Person *m;
    size_t n_rep_by;
    ProtobufCBinaryData *rep_by;
    size_t n_rep_db;
    double *rep_db;
    size_t n_rep_i64;
    int64_t *rep_i64;
    size_t n_rep_m;
    Mhtas__V1__Person **rep_m;
    all_choice_t choice_case;
    union {
        char *o_str;
        int32_t o_i32;
    };
} all_types_t;

#define FIELD(nm, id, lab, ty, q, member, desc, def, flags)                                       \
    { nm, id, PROTOBUF_C_LABEL_##lab, PROTOBUF_C_TYPE_##ty, q, offsetof(all_types_t, member),      \
      desc, def, flags, 0, NULL, NULL }

static const ProtobufCFieldDescriptor all_fields[] = {
    FIELD("i32", 1, NONE, INT32, 0, i32, NULL, NULL, 0),
    FIELD("i64", 2, NONE, INT64, 0, i64, NULL, NULL, 0),
    FIELD("u32", 3, NONE, UINT32, 0, u32, NULL, NULL, 0),
    FIELD("u64", 4, NONE, UINT64, 0, u64, NULL, NULL, 0),
    FIELD("s32", 5, NONE, SINT32, 0, s32, NULL, NULL, 0),
    FIELD("s64", 6, NONE, SINT64, 0, s64, NULL, NULL, 0),
    FIELD("fx32", 7, NONE, FIXED32, 0, fx32, NULL, NULL, 0),
    FIELD("fx64", 8, NONE, FIXED64, 0, fx64, NULL, NULL, 0),
    FIELD("sf32", 9, NONE, SFIXED32, 0, sf32, NULL, NULL, 0),
    FIELD("sf64", 10, NONE, SFIXED64, 0, sf64, NULL, NULL, 0),
    FIELD("fl", 11, NONE, FLOAT, 0, fl, NULL, NULL, 0),
    FIELD("db", 12, NONE, DOUBLE, 0, db, NULL, NULL, 0),
    FIELD("b", 13, NONE, BOOL, 0, b, NULL, NULL, 0),
    FIELD("s", 14, NONE, STRING, 0, s, NULL, &protobuf_c_empty_string, 0),
    FIELD("by", 15, NONE, BYTES, 0, by, NULL, NULL, 0),
    FIELD("e", 16, NONE, ENUM, 0, e, &mhtas__v1__priority__descriptor, NULL, 0),
    FIELD("m", 17, NONE, MESSAGE, 0, m, &mhtas__v1__person__descriptor, NULL, 0),
    FIELD("rep_by", 18, REPEATED, BYTES, offsetof(all_types_t, n_rep_by), rep_by, NULL, NULL, 0),
    FIELD("rep_db", 19, REPEATED, DOUBLE, offsetof(all_types_t, n_rep_db), rep_db, NULL, NULL,
          PROTOBUF_C_FIELD_FLAG_PACKED),
    FIELD("rep_i64", 20, REPEATED, INT64, offsetof(all_types_t, n_rep_i64), rep_i64, NULL, NULL,
          PROTOBUF_C_FIELD_FLAG_PACKED),
    FIELD("rep_m", 21, REPEATED, MESSAGE, offsetof(all_types_t, n_rep_m), rep_m,
          &mhtas__v1__person__descriptor, NULL, 0),
    FIELD("o_str", 22, NONE, STRING, offsetof(all_types_t, choice_case), o_str, NULL,
          &protobuf_c_empty_string, PROTOBUF_C_FIELD_FLAG_ONEOF),
    FIELD("o_i32", 23, NONE, INT32, offsetof(all_types_t, choice_case), o_i32, NULL, NULL,
          PROTOBUF_C_FIELD_FLAG_ONEOF),
};
#define N_ALL_FIELDS (sizeof all_fields / sizeof all_fields[0])

static unsigned all_by_name[N_ALL_FIELDS];
static const ProtobufCIntRange all_ranges[2] = { { 1, 0 }, { 0, N_ALL_FIELDS } };

static void all_types_init(ProtobufCMessage *m);

static const ProtobufCMessageDescriptor all_desc = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    "test.AllTypes",
    "AllTypes",
    "AllTypes",
    "test",
    sizeof(all_types_t),
    N_ALL_FIELDS,
    all_fields,
    all_by_name,
    1,
    all_ranges,
    (ProtobufCMessageInit)all_types_init,
    NULL,
    NULL,
    NULL,
};

static void all_types_init(ProtobufCMessage *m)
{
    all_types_t *a = (all_types_t *)m;
    memset(a, 0, sizeof *a);
    a->base.descriptor = &all_desc;
    a->s = (char *)protobuf_c_empty_string;
}

static int cmp_by_name(const void *x, const void *y)
{
    return strcmp(all_fields[*(const unsigned *)x].name, all_fields[*(const unsigned *)y].name);
}

static int setup_all(void **state)
{
    (void)state;
    for (unsigned i = 0; i < N_ALL_FIELDS; i++)
        all_by_name[i] = i;
    qsort(all_by_name, N_ALL_FIELDS, sizeof all_by_name[0], cmp_by_name);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static char errbuf[512];

static ProtobufCMessage *dec(const ProtobufCMessageDescriptor *d, const char *json)
{
    errbuf[0] = '\0';
    return pbjson_decode(d, json, strlen(json), hub_pb_allocator(), DEPTH, errbuf, sizeof errbuf);
}

static void dfree(ProtobufCMessage *m)
{
    protobuf_c_message_free_unpacked(m, hub_pb_allocator());
}

/* Decoding must fail with exactly this message, leaving nothing allocated. */
static void expect_error(const ProtobufCMessageDescriptor *d, const char *json, const char *msg)
{
    size_t live = hub_alloc_live();
    ProtobufCMessage *m = dec(d, json);
    if (m != NULL) {
        dfree(m);
        fail_msg("decoded %s, expected error %s", json, msg);
    }
    assert_string_equal(errbuf, msg);
    assert_int_equal(hub_alloc_live(), live);
}

/* ... or with a message that starts with `prefix`. */
static void expect_error_prefix(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                                const char *prefix)
{
    size_t live = hub_alloc_live();
    errbuf[0] = '\0';
    ProtobufCMessage *m =
        pbjson_decode(d, json, len, hub_pb_allocator(), DEPTH, errbuf, sizeof errbuf);
    if (m != NULL) {
        dfree(m);
        fail_msg("decoded, expected error %s", prefix);
    }
    if (strncmp(errbuf, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", errbuf, prefix);
    assert_int_equal(hub_alloc_live(), live);
}

static void expect_json(const ProtobufCMessage *m, const char *json)
{
    size_t len = 0;
    char *out = pbjson_encode(m, &len);
    assert_non_null(out);
    assert_string_equal(out, json);
    assert_int_equal(len, strlen(json));
    hub_free(out);
}

/* Packs both messages and compares the bytes. */
static void expect_same_pb(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la = protobuf_c_message_get_packed_size(a);
    size_t lb = protobuf_c_message_get_packed_size(b);
    assert_int_equal(la, lb);
    uint8_t *ba = malloc(la + 1), *bb = malloc(lb + 1);
    protobuf_c_message_pack(a, ba);
    protobuf_c_message_pack(b, bb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

/* JSON(m) -> decode -> same protobuf bytes, same JSON again. Returns the JSON. */
static char *round_trip(const ProtobufCMessage *m)
{
    size_t live = hub_alloc_live();
    size_t len;
    char *j = pbjson_encode(m, &len);
    assert_non_null(j);
    ProtobufCMessage *back = pbjson_decode(m->descriptor, j, len, hub_pb_allocator(), DEPTH,
                                           errbuf, sizeof errbuf);
    if (back == NULL)
        fail_msg("decode of %s failed: %s", j, errbuf);
    expect_same_pb(m, back);
    expect_json(back, j);
    dfree(back);
    assert_int_equal(hub_alloc_live(), live + 1);
    return j;
}

/* ------------------------------------------------------------------ data */

static Mhtas__V1__Person person(const char *family)
{
    Mhtas__V1__Person p = MHTAS__V1__PERSON__INIT;
    p.family_name = (char *)family;
    p.given_names = "Sam Q";
    p.date_of_birth = "1990-01-31";
    p.age_years = 36;
    p.address = "1 \"Quoted\" Road\\Flat\n2";
    p.postcode = "M1 1AA";
    p.nhs_number = "9434765919";
    return p;
}

/* --------------------------------------------------------------- the tests */

static void test_empty_message(void **state)
{
    (void)state;
    Mhtas__V1__Person p = MHTAS__V1__PERSON__INIT;
    expect_json(&p.base, "{}");
    ProtobufCMessage *m = dec(&mhtas__v1__person__descriptor, "{}");
    assert_non_null(m);
    Mhtas__V1__Person *q = (Mhtas__V1__Person *)m;
    assert_ptr_equal(q->family_name, protobuf_c_empty_string);
    assert_int_equal(q->age_years, 0);
    dfree(m);
    m = dec(&mhtas__v1__person__descriptor, "  {\n}\t ");
    assert_non_null(m);
    dfree(m);
}

static void test_person_round_trip(void **state)
{
    (void)state;
    Mhtas__V1__Person p = person("O'Brien-Śmith 李");
    char *j = round_trip(&p.base);
    assert_string_equal(j, "{\"familyName\":\"O'Brien-Śmith 李\",\"givenNames\":\"Sam Q\","
                           "\"dateOfBirth\":\"1990-01-31\",\"ageYears\":36,"
                           "\"address\":\"1 \\\"Quoted\\\" Road\\\\Flat\\n2\","
                           "\"postcode\":\"M1 1AA\",\"nhsNumber\":\"9434765919\"}");
    hub_free(j);
}

static void test_snake_case_accepted(void **state)
{
    (void)state;
    ProtobufCMessage *m = dec(&mhtas__v1__person__descriptor,
                              "{\"family_name\":\"A\",\"givenNames\":\"B\",\"age_years\":7}");
    assert_non_null(m);
    Mhtas__V1__Person *p = (Mhtas__V1__Person *)m;
    assert_string_equal(p->family_name, "A");
    assert_string_equal(p->given_names, "B");
    assert_int_equal(p->age_years, 7);
    dfree(m);
    expect_error(&mhtas__v1__person__descriptor, "{\"family_name\":\"A\",\"familyName\":\"B\"}",
                 "field \"family_name\" given twice");
}

static void test_full_incident(void **state)
{
    (void)state;
    Mhtas__V1__Person per = person("Jones");
    Mhtas__V1__IncidentDetails det = MHTAS__V1__INCIDENT_DETAILS__INIT;
    Mhtas__V1__ConcernFlag flags[] = { MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_WEAPON,
                                       MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_UNDER_18 };
    char *calls[] = { "MIKE-21", "", "ALPHA 3" };
    det.police_ref = "GMP-20261123-0412";
    det.priority = MHTAS__V1__PRIORITY__PRIORITY_URGENT;
    det.borough = "Salford";
    det.place = "Bridge";
    det.person = &per;
    det.concerns = "line1\r\nline2\ttab \x01";
    det.n_flags = 2;
    det.flags = flags;
    det.question = "s136?";
    det.n_callsigns = 3;
    det.callsigns = calls;
    det.rcrp = MHTAS__V1__RCRP_DECISION__RCRP_DECISION_UNDER_REVIEW;
    det.rcrp_reason = "r";

    Mhtas__V1__Transition t1 = MHTAS__V1__TRANSITION__INIT, t2 = MHTAS__V1__TRANSITION__INIT;
    t1.seq = 1;
    t1.at_ms = 1763890000123;
    t1.to = MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_NEW;
    t1.cause = MHTAS__V1__CAUSE__CAUSE_RAISED;
    t1.actor = "o.smith";
    t2.seq = UINT64_MAX;
    t2.at_ms = -5;
    t2.from = MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_NEW;
    t2.to = MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_QUEUED;
    t2.cause = MHTAS__V1__CAUSE__CAUSE_QUEUED;
    t2.actor = "hub";
    Mhtas__V1__Transition *hist[] = { &t1, &t2 };

    Mhtas__V1__ChatMessage cm = MHTAS__V1__CHAT_MESSAGE__INIT;
    cm.incident_id = 42;
    cm.number = 1;
    cm.from_user = "p.khan";
    cm.from_role = MHTAS__V1__ROLE__ROLE_PRACTITIONER;
    cm.text = "Consider s136 – 😀";
    cm.at_ms = INT64_MIN;
    Mhtas__V1__ChatMessage *msgs[] = { &cm };

    Mhtas__V1__S136Details s136 = MHTAS__V1__S136_DETAILS__INIT;
    s136.place_of_safety = MHTAS__V1__PLACE_OF_SAFETY__PLACE_OF_SAFETY_HEALTH_BASED;
    s136.consultation_not_practicable = 1;
    Mhtas__V1__OutcomeCode codes[] = { MHTAS__V1__OUTCOME_CODE__OUTCOME_CODE_S136_DETENTION };
    Mhtas__V1__Outcome out = MHTAS__V1__OUTCOME__INIT;
    out.n_codes = 1;
    out.codes = codes;
    out.s136 = &s136;
    out.durable = 1;

    Mhtas__V1__Incident inc = MHTAS__V1__INCIDENT__INIT;
    inc.id = 18446744073709551615ULL;
    inc.details = &det;
    inc.state = MHTAS__V1__INCIDENT_STATE__INCIDENT_STATE_OUTCOME_PROPOSED;
    inc.raised_by = "o.smith";
    inc.raised_at_ms = INT64_MAX;
    inc.n_history = 2;
    inc.history = hist;
    inc.n_messages = 1;
    inc.messages = msgs;
    inc.outcome = &out;
    inc.queue_position = UINT32_MAX;
    inc.sla_breached = 1;

    char *j = round_trip(&inc.base);
    assert_non_null(strstr(j, "\"id\":\"18446744073709551615\""));
    assert_non_null(strstr(j, "\"priority\":\"PRIORITY_URGENT\""));
    assert_non_null(strstr(j, "\"flags\":[\"CONCERN_FLAG_WEAPON\",\"CONCERN_FLAG_UNDER_18\"]"));
    assert_non_null(strstr(j, "\"callsigns\":[\"MIKE-21\",\"\",\"ALPHA 3\"]"));
    assert_non_null(strstr(j, "\"concerns\":\"line1\\r\\nline2\\ttab \\u0001\""));
    assert_non_null(strstr(j, "\"atMs\":\"-9223372036854775808\""));
    assert_non_null(strstr(j, "\"raisedAtMs\":\"9223372036854775807\""));
    assert_non_null(strstr(j, "\"queuePosition\":4294967295"));
    assert_non_null(strstr(j, "\"slaBreached\":true"));
    assert_non_null(strstr(j, "\"consultationNotPracticable\":true"));
    assert_non_null(strstr(j, "\"s136\":{"));
    /* defaults left out */
    assert_null(strstr(j, "\"practitioner\""));
    assert_null(strstr(j, "\"from\":\"INCIDENT_STATE_UNSPECIFIED\""));
    assert_null(strstr(j, "expectedWaitMs"));
    hub_free(j);
}

static void test_client_frame_oneof(void **state)
{
    (void)state;
    const char *json = "{\"requestId\":\"r1\",\"raiseIncident\":{\"details\":{\"priority\":"
                       "\"PRIORITY_IMMEDIATE\",\"borough\":\"Salford\",\"flags\":[1,"
                       "\"CONCERN_FLAG_SELF_HARM\"]},\"idempotencyKey\":\"k\"}}";
    ProtobufCMessage *m = dec(&mhtas__v1__client_frame__descriptor, json);
    assert_non_null(m);
    Mhtas__V1__ClientFrame *cf = (Mhtas__V1__ClientFrame *)m;
    assert_string_equal(cf->request_id, "r1");
    assert_int_equal(cf->body_case, MHTAS__V1__CLIENT_FRAME__BODY_RAISE_INCIDENT);
    assert_int_equal(cf->raise_incident->details->priority, 1);
    assert_int_equal(cf->raise_incident->details->n_flags, 2);
    assert_int_equal(cf->raise_incident->details->flags[0], 1);
    assert_int_equal(cf->raise_incident->details->flags[1], 2);
    expect_json(m, "{\"requestId\":\"r1\",\"raiseIncident\":{\"details\":{\"priority\":"
                   "\"PRIORITY_IMMEDIATE\",\"borough\":\"Salford\",\"flags\":["
                   "\"CONCERN_FLAG_WEAPON\",\"CONCERN_FLAG_SELF_HARM\"]},"
                   "\"idempotencyKey\":\"k\"}}");
    dfree(m);

    /* an empty request in a oneof is still emitted */
    m = dec(&mhtas__v1__client_frame__descriptor, "{\"who_am_i\":{}}");
    assert_non_null(m);
    assert_int_equal(((Mhtas__V1__ClientFrame *)m)->body_case,
                     MHTAS__V1__CLIENT_FRAME__BODY_WHO_AM_I);
    expect_json(m, "{\"whoAmI\":{}}");
    dfree(m);

    /* null means unset, also in a oneof */
    m = dec(&mhtas__v1__client_frame__descriptor, "{\"auth\":null,\"whoAmI\":{}}");
    assert_non_null(m);
    assert_int_equal(((Mhtas__V1__ClientFrame *)m)->body_case,
                     MHTAS__V1__CLIENT_FRAME__BODY_WHO_AM_I);
    dfree(m);

    expect_error(&mhtas__v1__client_frame__descriptor,
                 "{\"auth\":{\"token\":\"t\"},\"whoAmI\":{}}",
                 "who_am_i: only one of \"auth\" and \"who_am_i\" may be set");
}

static void test_server_frame_event(void **state)
{
    (void)state;
    Mhtas__V1__Incident inc = MHTAS__V1__INCIDENT__INIT;
    inc.id = 7;
    Mhtas__V1__Offer offer = MHTAS__V1__OFFER__INIT;
    offer.incident = &inc;
    offer.deadline_ms = 1000;
    Mhtas__V1__Event ev = MHTAS__V1__EVENT__INIT;
    ev.seq = 99;
    ev.kind_case = MHTAS__V1__EVENT__KIND_OFFER;
    ev.offer = &offer;
    Mhtas__V1__ServerFrame sf = MHTAS__V1__SERVER_FRAME__INIT;
    sf.body_case = MHTAS__V1__SERVER_FRAME__BODY_EVENT;
    sf.event = &ev;
    char *j = round_trip(&sf.base);
    assert_string_equal(j, "{\"event\":{\"seq\":\"99\",\"offer\":{\"incident\":{\"id\":\"7\"},"
                           "\"deadlineMs\":\"1000\"}}}");
    hub_free(j);

    Mhtas__V1__Status st = MHTAS__V1__STATUS__INIT;
    st.code = 3;
    st.message = "bad";
    Mhtas__V1__SubscribeAck ack = MHTAS__V1__SUBSCRIBE_ACK__INIT;
    Mhtas__V1__ServerFrame sf2 = MHTAS__V1__SERVER_FRAME__INIT;
    sf2.request_id = "x";
    sf2.error = &st;
    sf2.body_case = MHTAS__V1__SERVER_FRAME__BODY_SUBSCRIBE;
    sf2.subscribe = &ack;
    j = round_trip(&sf2.base);
    assert_string_equal(j, "{\"requestId\":\"x\",\"error\":{\"code\":3,\"message\":\"bad\"},"
                           "\"subscribe\":{}}");
    hub_free(j);
}

static void test_all_types_round_trip(void **state)
{
    (void)state;
    Mhtas__V1__Person p1 = person("A"), p2 = MHTAS__V1__PERSON__INIT;
    Mhtas__V1__Person *reps[] = { &p1, &p2 };
    uint8_t raw[] = { 0, 1, 2, 0xfb, 0xff, 0xfe, 0x80 };
    ProtobufCBinaryData rb[] = { { 1, raw }, { 2, raw }, { 3, raw }, { 0, NULL }, { 7, raw } };
    double dbs[] = { 0.1, -0.0, 1e300, 5e-324, INFINITY, -INFINITY, 3 };
    int64_t i64s[] = { INT64_MIN, 0, INT64_MAX };
    all_types_t a;
    all_types_init(&a.base);
    a.i32 = INT32_MIN;
    a.i64 = INT64_MIN;
    a.u32 = UINT32_MAX;
    a.u64 = UINT64_MAX;
    a.s32 = -1;
    a.s64 = -2;
    a.fx32 = 3;
    a.fx64 = 4;
    a.sf32 = -5;
    a.sf64 = -6;
    a.fl = 0.1f;
    a.db = 2.5e-7;
    a.b = 1;
    a.s = "str";
    a.by.len = sizeof raw;
    a.by.data = raw;
    a.e = MHTAS__V1__PRIORITY__PRIORITY_ROUTINE;
    a.m = &p2;
    a.n_rep_by = 5;
    a.rep_by = rb;
    a.n_rep_db = 7;
    a.rep_db = dbs;
    a.n_rep_i64 = 3;
    a.rep_i64 = i64s;
    a.n_rep_m = 2;
    a.rep_m = reps;
    a.choice_case = ALL_CHOICE_O_I32;
    a.o_i32 = 0;
    char *j = round_trip(&a.base);
    assert_string_equal(
        j, "{\"i32\":-2147483648,\"i64\":\"-9223372036854775808\",\"u32\":4294967295,"
           "\"u64\":\"18446744073709551615\",\"s32\":-1,\"s64\":\"-2\",\"fx32\":3,\"fx64\":\"4\","
           "\"sf32\":-5,\"sf64\":\"-6\",\"fl\":0.1,\"db\":2.5e-07,\"b\":true,\"s\":\"str\","
           "\"by\":\"AAEC+//+gA==\",\"e\":\"PRIORITY_ROUTINE\",\"m\":{},"
           "\"repBy\":[\"AA==\",\"AAE=\",\"AAEC\",\"\",\"AAEC+//+gA==\"],"
           "\"repDb\":[0.1,-0.0,1e+300,4.94065645841247e-324,\"Infinity\",\"-Infinity\",3],"
           "\"repI64\":[\"-9223372036854775808\",\"0\",\"9223372036854775807\"],"
           "\"repM\":[{\"familyName\":\"A\",\"givenNames\":\"Sam Q\",\"dateOfBirth\":"
           "\"1990-01-31\",\"ageYears\":36,\"address\":\"1 \\\"Quoted\\\" Road\\\\Flat\\n2\","
           "\"postcode\":\"M1 1AA\",\"nhsNumber\":\"9434765919\"},{}],\"oI32\":0}");
    hub_free(j);

    /* NaN round-trips as "NaN" (bytes compare equal too) */
    all_types_t n;
    all_types_init(&n.base);
    n.db = NAN;
    n.choice_case = ALL_CHOICE_O_STR;
    n.o_str = "";
    j = round_trip(&n.base);
    assert_string_equal(j, "{\"db\":\"NaN\",\"oStr\":\"\"}");
    hub_free(j);
}

static void test_all_types_inputs(void **state)
{
    (void)state;
    /* numbers as strings, 64-bit as numbers, exponents, url-safe base64 */
    ProtobufCMessage *m =
        dec(&all_desc, "{\"i32\":\"-12\",\"i64\":123,\"u32\":1e2,\"u64\":\"18446744073709551615\","
                       "\"s64\":-9007199254740993,\"fx64\":9223372036854775807,\"fl\":\"1.5\","
                       "\"db\":\"-Infinity\",\"by\":\"-_8\",\"e\":4,\"sf32\":-0,"
                       "\"repDb\":[1,2.5,\"NaN\"],\"o_str\":\"x\"}");
    if (m == NULL)
        fail_msg("%s", errbuf);
    all_types_t *a = (all_types_t *)m;
    assert_int_equal(a->i32, -12);
    assert_int_equal(a->i64, 123);
    assert_int_equal(a->u32, 100);
    assert_true(a->u64 == UINT64_MAX);
    assert_true(a->s64 == -9007199254740993LL);
    assert_true(a->fx64 == INT64_MAX);
    assert_true(a->fl == 1.5f);
    assert_true(isinf(a->db) && a->db < 0);
    assert_int_equal(a->by.len, 2);
    assert_int_equal(a->by.data[0], 0xfb);
    assert_int_equal(a->by.data[1], 0xff);
    assert_int_equal(a->e, 4);
    assert_int_equal(a->n_rep_db, 3);
    assert_true(isnan(a->rep_db[2]));
    assert_int_equal(a->choice_case, ALL_CHOICE_O_STR);
    assert_string_equal(a->o_str, "x");
    dfree(m);

    /* nulls are defaults */
    m = dec(&all_desc, "{\"i32\":null,\"s\":null,\"m\":null,\"repM\":null,\"by\":null}");
    assert_non_null(m);
    a = (all_types_t *)m;
    assert_ptr_equal(a->s, protobuf_c_empty_string);
    assert_null(a->m);
    dfree(m);
}

static void test_type_errors(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *cf = &mhtas__v1__client_frame__descriptor;
    expect_error(cf, "{\"raiseIncident\":{\"details\":{\"priority\":true}}}",
                 "raise_incident.details.priority: expected an enum name or number");
    expect_error(cf, "{\"raiseIncident\":{\"details\":{\"priority\":\"PRIORITY_HIGH\"}}}",
                 "raise_incident.details.priority: unknown enum value \"PRIORITY_HIGH\"");
    expect_error(cf, "{\"raiseIncident\":{\"details\":{\"priority\":17}}}",
                 "raise_incident.details.priority: unknown enum value 17");
    expect_error(cf, "{\"raiseIncident\":{\"details\":{\"flags\":[1,\"NOPE\"]}}}",
                 "raise_incident.details.flags[1]: unknown enum value \"NOPE\"");
    expect_error(cf, "{\"raiseIncident\":{\"details\":{\"flags\":1}}}",
                 "raise_incident.details.flags: expected an array");
    expect_error(cf, "{\"raiseIncident\":{\"details\":{\"callsigns\":[\"a\",null]}}}",
                 "raise_incident.details.callsigns[1]: null is not allowed in a list");
    expect_error(cf, "{\"raiseIncident\":{\"details\":\"x\"}}",
                 "raise_incident.details: expected an object");
    expect_error(cf, "{\"requestId\":5}", "request_id: expected a string");
    expect_error(cf, "{\"raiseIncident\":{\"details\":{\"person\":{\"age\":1}}}}",
                 "raise_incident.details.person: unknown field \"age\" in mhtas.v1.Person");
    expect_error(&mhtas__v1__person__descriptor, "{\"x\":1}",
                 "unknown field \"x\" in mhtas.v1.Person");
    expect_error(&mhtas__v1__person__descriptor, "{\"FamilyName\":\"a\"}",
                 "unknown field \"FamilyName\" in mhtas.v1.Person");
    expect_error(&mhtas__v1__set_availability_request__descriptor, "{\"paused\":1}",
                 "paused: expected true or false");
    expect_error(&mhtas__v1__set_availability_request__descriptor, "{\"paused\":\"true\"}",
                 "paused: expected true or false");
    expect_error(&mhtas__v1__person__descriptor, "[]",
                 "expected a JSON object for mhtas.v1.Person");
    expect_error(&mhtas__v1__person__descriptor, "\"x\"",
                 "expected a JSON object for mhtas.v1.Person");
    expect_error(&all_desc, "{\"by\":\"abc!\"}", "by: invalid base64");
    expect_error(&all_desc, "{\"by\":\"a\"}", "by: invalid base64");
    expect_error(&all_desc, "{\"by\":\"AA=\"}", "by: invalid base64");
    expect_error(&all_desc, "{\"by\":5}", "by: expected a base64 string");
    expect_error(&all_desc, "{\"db\":\"inf\"}", "db: expected a number for double, got \"inf\"");
    expect_error(&all_desc, "{\"db\":\" 1\"}", "db: expected a number for double, got \" 1\"");
    expect_error(&all_desc, "{\"db\":\"1e999\"}", "db: number out of range for double");
    expect_error(&all_desc, "{\"fl\":1e39}", "fl: number out of range for float");
    expect_error(&all_desc, "{\"fl\":{}}", "fl: expected a number for float");
    expect_error(&all_desc, "{\"oStr\":\"a\",\"oI32\":1}",
                 "o_i32: only one of \"o_str\" and \"o_i32\" may be set");
    /* a failure after earlier fields were allocated frees them */
    expect_error(&all_desc, "{\"s\":\"abc\",\"repM\":[{\"familyName\":\"x\"},{\"bad\":1}]}",
                 "rep_m[1]: unknown field \"bad\" in mhtas.v1.Person");
    /* an unknown key is shown safely */
    expect_error(&mhtas__v1__person__descriptor, "{\"a\\\"b\\nc\":1}",
                 "unknown field \"a?b?c\" in mhtas.v1.Person");
}

static void test_number_ranges(void **state)
{
    (void)state;
    expect_error(&all_desc, "{\"u32\":4294967296}", "u32: number out of range for uint32");
    expect_error(&all_desc, "{\"u32\":-1}", "u32: number out of range for uint32");
    expect_error(&all_desc, "{\"u32\":\"-1\"}", "u32: number out of range for uint32");
    expect_error(&all_desc, "{\"i32\":2147483648}", "i32: number out of range for int32");
    expect_error(&all_desc, "{\"i32\":-2147483649}", "i32: number out of range for int32");
    expect_error(&all_desc, "{\"sf32\":\"3000000000\"}", "sf32: number out of range for sfixed32");
    expect_error(&all_desc, "{\"u64\":\"18446744073709551616\"}",
                 "u64: number out of range for uint64");
    expect_error(&all_desc, "{\"u64\":\"99999999999999999999999999999999\"}",
                 "u64: number out of range for uint64");
    expect_error(&all_desc, "{\"i64\":\"9223372036854775808\"}",
                 "i64: number out of range for int64");
    expect_error(&all_desc, "{\"i64\":1e19}", "i64: number out of range for int64");
    expect_error(&all_desc, "{\"u64\":-1}", "u64: number out of range for uint64");
    expect_error(&all_desc, "{\"u64\":1.5}", "u64: expected a whole number for uint64");
    expect_error(&all_desc, "{\"u64\":\"1.5\"}", "u64: expected a number for uint64, got \"1.5\"");
    expect_error(&all_desc, "{\"u64\":\"+1\"}", "u64: expected a number for uint64, got \"+1\"");
    expect_error(&all_desc, "{\"u64\":\"\"}", "u64: expected a number for uint64, got \"\"");
    expect_error(&all_desc, "{\"i64\":\"-\"}", "i64: expected a number for int64, got \"-\"");
    expect_error(&all_desc, "{\"i64\":\" 1\"}", "i64: expected a number for int64, got \" 1\"");
    expect_error(&all_desc, "{\"i64\":true}", "i64: expected a number for int64");
    expect_error(&all_desc, "{\"e\":4294967296}", "e: unknown enum value 4294967296");
    /* a JSON number too big for any integer type is a JSON error (jansson) */
    expect_error_prefix(&all_desc, "{\"u64\":18446744073709551615}", 28, "invalid JSON at line 1");
    expect_error_prefix(&all_desc, "{\"db\":1e400}", 12, "invalid JSON at line 1");
    ProtobufCMessage *m = dec(&all_desc, "{\"u64\":\"-0\",\"i64\":\"-0\",\"u32\":4294967295.0}");
    assert_non_null(m);
    assert_int_equal(((all_types_t *)m)->u32, UINT32_MAX);
    dfree(m);
}

static void test_malformed_json(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *p = &mhtas__v1__person__descriptor;
    const char *bad[] = { "", "{", "{\"familyName\":}", "{\"familyName\":\"a\"} x", "{} {}",
                          "{'a':1}", "{\"familyName\":\"a\",}", "nul", "{\"a\":1,\"a\":2}",
                          "{\"familyName\":\"\\ud800\"}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error_prefix(p, bad[i], strlen(bad[i]), "invalid JSON at line ");
    /* the length is honoured: no NUL terminator needed, trailing bytes ignored */
    const char buf[] = "{\"familyName\":\"a\"}GARBAGE";
    ProtobufCMessage *m = pbjson_decode(p, buf, 18, hub_pb_allocator(), DEPTH, errbuf, 64);
    assert_non_null(m);
    dfree(m);
    /* a small err buffer is cut, not overrun */
    char small[8];
    memset(small, 'x', sizeof small);
    assert_null(pbjson_decode(p, "{\"zzzzzzzzzz\":1}", 16, hub_pb_allocator(), DEPTH, small, 8));
    assert_int_equal(strlen(small), 7);
    /* err may be NULL */
    assert_null(pbjson_decode(p, "{", 1, hub_pb_allocator(), DEPTH, NULL, 0));
}

static void test_bad_utf8_and_nul(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *p = &mhtas__v1__person__descriptor;
    const char *bad[] = { "{\"familyName\":\"\xff\"}", "{\"familyName\":\"\xc3\"}",
                          "{\"familyName\":\"\xc0\xaf\"}",          /* overlong */
                          "{\"familyName\":\"\xed\xa0\x80\"}",      /* surrogate */
                          "{\"familyName\":\"\xf4\x90\x80\x80\"}",  /* > U+10FFFF */
                          "{\"\xfe\":1}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_error_prefix(p, bad[i], strlen(bad[i]), "invalid JSON at line 1");
        /* the error text itself is valid UTF-8 */
        for (const unsigned char *c = (const unsigned char *)errbuf; *c; c++)
            assert_true(*c < 0x80);
    }
    expect_error(p, "{\"familyName\":\"a\\u0000b\"}", "family_name: string contains a NUL character");
    const char *nulkey = "{\"family_name\\u0000x\":\"a\"}"; /* jansson refuses it */
    expect_error_prefix(p, nulkey, strlen(nulkey), "invalid JSON at line 1");
    expect_error(&mhtas__v1__incident_details__descriptor, "{\"priority\":\"PRIORITY_URGENT\\u0000\"}",
                 "priority: unknown enum value \"PRIORITY_URGENT?\"");
    expect_error(&all_desc, "{\"i64\":\"1\\u00002\"}", "i64: expected a number for int64, got \"1?2\"");
    /* embedded NUL in raw input */
    expect_error_prefix(p, "{\"familyName\":\"a\0b\"}", 20, "invalid JSON");

    /* escapes and non-BMP characters decode */
    ProtobufCMessage *m = dec(p, "{\"familyName\":\"\\u00e9\\ud83d\\ude00\\/\"}");
    assert_non_null(m);
    assert_string_equal(((Mhtas__V1__Person *)m)->family_name, "é😀/");
    dfree(m);

    /* invalid UTF-8 in a message being encoded becomes U+FFFD */
    Mhtas__V1__Person q = MHTAS__V1__PERSON__INIT;
    q.family_name = "a\xff" "b\xe2\x82";
    expect_json(&q.base, "{\"familyName\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd\"}");
}

static void test_long_values_in_errors(void **state)
{
    (void)state;
    char json[400];
    snprintf(json, sizeof json, "{\"priority\":\"%0300d\"}", 1);
    expect_error(&mhtas__v1__incident_details__descriptor, json,
                 "priority: unknown enum value "
                 "\"000000000000000000000000000000000000000000000000...\"");
}

static void test_depth(void **state)
{
    (void)state;
    /* a JSON depth bomb is refused by the parser, without deep recursion */
    size_t n = 200000;
    char *bomb = malloc(2 * n + 32);
    size_t o = 0;
    o += (size_t)sprintf(bomb, "{\"familyName\":");
    for (size_t i = 0; i < n; i++)
        bomb[o++] = '[';
    for (size_t i = 0; i < n; i++)
        bomb[o++] = ']';
    bomb[o++] = '}';
    expect_error_prefix(&mhtas__v1__person__descriptor, bomb, o, "invalid JSON");
    free(bomb);

    /* message nesting beyond max_depth */
    const char *j = "{\"raiseIncident\":{\"details\":{\"person\":{}}}}";
    ProtobufCMessage *m = pbjson_decode(&mhtas__v1__client_frame__descriptor, j, strlen(j),
                                        hub_pb_allocator(), 4, errbuf, sizeof errbuf);
    assert_non_null(m);
    dfree(m);
    size_t live = hub_alloc_live();
    m = pbjson_decode(&mhtas__v1__client_frame__descriptor, j, strlen(j), hub_pb_allocator(), 3,
                      errbuf, sizeof errbuf);
    assert_null(m);
    assert_string_equal(errbuf, "raise_incident.details.person: nesting deeper than 3 levels");
    assert_int_equal(hub_alloc_live(), live);
}

/* Every allocation in turn fails: decoding reports "out of memory" and frees
 * everything; encoding returns NULL and frees its buffer. */
static void test_failmalloc(void **state)
{
    (void)state;
    const char *json =
        "{\"requestId\":\"r\",\"raiseIncident\":{\"details\":{\"policeRef\":\"p\",\"priority\":1,"
        "\"person\":{\"familyName\":\"f\",\"givenNames\":\"g\"},\"flags\":[1,2],\"callsigns\":"
        "[\"a\",\"b\",\"c\"]},\"idempotencyKey\":\"k\"}}";
    size_t live = hub_alloc_live();
    int ok_at = -1;
    for (long n = 0; n < 100; n++) {
        hub_alloc_fail_after(n);
        ProtobufCMessage *m = pbjson_decode(&mhtas__v1__client_frame__descriptor, json,
                                            strlen(json), hub_pb_allocator(), DEPTH, errbuf,
                                            sizeof errbuf);
        hub_alloc_fail_after(-1);
        if (m) {
            char *again = pbjson_encode(m, NULL);
            assert_non_null(again);
            hub_free(again);
            dfree(m);
            ok_at = (int)n;
            assert_int_equal(hub_alloc_live(), live);
            break;
        }
        assert_string_equal(errbuf, "out of memory");
        assert_int_equal(hub_alloc_live(), live);
    }
    assert_true(ok_at > 5);

    /* the bytes/repeated paths of AllTypes too */
    const char *all = "{\"s\":\"x\",\"by\":\"AAEC\",\"repBy\":[\"AA==\",\"AQ==\"],\"repM\":[{},"
                      "{\"familyName\":\"z\"}],\"oStr\":\"o\",\"m\":{\"address\":\"a\"}}";
    for (long n = 0; n < 100; n++) {
        hub_alloc_fail_after(n);
        ProtobufCMessage *m =
            pbjson_decode(&all_desc, all, strlen(all), hub_pb_allocator(), DEPTH, errbuf,
                          sizeof errbuf);
        hub_alloc_fail_after(-1);
        if (m) {
            dfree(m);
            break;
        }
        assert_int_equal(hub_alloc_live(), live);
    }
    assert_int_equal(hub_alloc_live(), live);

    /* encoder: make a big enough message that the buffer grows */
    Mhtas__V1__Person p = person("a-long-family-name-to-need-more-than-one-buffer-growth-step-"
                                 "a-long-family-name-to-need-more-than-one-buffer-growth-step-"
                                 "a-long-family-name-to-need-more-than-one-buffer-growth-step-"
                                 "a-long-family-name-to-need-more-than-one-buffer-growth-step-");
    for (long n = 0; n < 10; n++) {
        hub_alloc_fail_after(n);
        char *out = pbjson_encode(&p.base, NULL);
        hub_alloc_fail_after(-1);
        if (out) {
            assert_true(n >= 1);
            hub_free(out);
            break;
        }
        assert_int_equal(hub_alloc_live(), live);
    }
    assert_int_equal(hub_alloc_live(), live);
}

/* Decoding through a byte-budgeted or any other allocator uses only it. */
static int other_allocs;
static void *counting_alloc(void *data, size_t n)
{
    (void)data;
    other_allocs++;
    return malloc(n);
}
static void counting_free(void *data, void *p)
{
    (void)data;
    if (p)
        other_allocs--;
    free(p);
}

static void test_custom_allocator(void **state)
{
    (void)state;
    ProtobufCAllocator a = { counting_alloc, counting_free, NULL };
    size_t live = hub_alloc_live();
    const char *j = "{\"raiseIncident\":{\"details\":{\"callsigns\":[\"a\",\"b\"],\"person\":"
                    "{\"familyName\":\"x\"}}}}";
    ProtobufCMessage *m = pbjson_decode(&mhtas__v1__client_frame__descriptor, j, strlen(j), &a,
                                        DEPTH, errbuf, sizeof errbuf);
    assert_non_null(m);
    assert_int_equal(other_allocs, 8); /* frame, request, details, array, "a", "b", person, "x" */
    assert_int_equal(hub_alloc_live(), live);
    protobuf_c_message_free_unpacked(m, &a);
    assert_int_equal(other_allocs, 0);
}

static void test_encode_len_optional(void **state)
{
    (void)state;
    Mhtas__V1__Status st = MHTAS__V1__STATUS__INIT;
    st.code = -3;
    char *j = pbjson_encode(&st.base, NULL);
    assert_string_equal(j, "{\"code\":-3}");
    hub_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_person_round_trip),
        cmocka_unit_test(test_snake_case_accepted),
        cmocka_unit_test(test_full_incident),
        cmocka_unit_test(test_client_frame_oneof),
        cmocka_unit_test(test_server_frame_event),
        cmocka_unit_test(test_all_types_round_trip),
        cmocka_unit_test(test_all_types_inputs),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_number_ranges),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_bad_utf8_and_nul),
        cmocka_unit_test(test_long_values_in_errors),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_failmalloc),
        cmocka_unit_test(test_custom_allocator),
        cmocka_unit_test(test_encode_len_optional),
    };
    return cmocka_run_group_tests(tests, setup_all, NULL);
}
