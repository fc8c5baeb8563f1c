/* care_json_test.c -- server/cache/care_json.c: an import record to a
 * CareSummary and its search record; the reason given for each kind of bad
 * record; no leaks on any path, including every failed allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cache/care_json.h"
#include "util/alloc.h"

static const char GOOD[] =
    "{\"nhsNumber\":\"943 476 5919\",\"restricted\":true,"
    "\"patient\":{\"source\":\"NHS Spine (PDS)\",\"asAt\":\"2026-10-01T09:00:00Z\","
    "\"name\":[{\"use\":\"official\",\"family\":\"Smith\",\"given\":[\"Ann\",\"Marie\"]}],"
    "\"birthDate\":\"1984-03-07\",\"gender\":\"female\","
    "\"address\":{\"line\":[\"12 Oak Road\"],\"city\":\"Bolton\",\"district\":\"Bolton\","
    "\"postalCode\":\"bl14aa\"}},"
    "\"legalStatus\":{\"source\":\"RiO\",\"asAt\":\"2026-10-01T09:00:00Z\",\"status\":\"section\","
    "\"section\":\"3\",\"start\":\"2026-09-01\"},"
    "\"flags\":{\"source\":\"RiO\",\"asAt\":\"2026-10-01T09:00:00+01:00\",\"items\":"
    "[{\"code\":\"weapons\",\"level\":\"high\",\"detail\":\"knife\"}]},"
    "\"carePlan\":{\"source\":\"RiO\",\"asAt\":\"2026-10-01T09:00:00Z\",\"warningSigns\":[\"x\"],"
    "\"contacts\":[{\"name\":\"Mum\",\"phone\":\"0161 496 0000\"}]}}";

static int convert(const char *text, care_record_t *rec, char *err, size_t n)
{
    json_error_t je;
    json_t *doc = json_loads(text, 0, &je);
    assert_non_null(doc);
    int rc = care_record_from_json(doc, rec, err, n);
    json_decref(doc);
    return rc;
}

static void good_record(void **state)
{
    (void)state;
    size_t live = hub_alloc_live();
    care_record_t rec;
    char err[256];
    assert_int_equal(convert(GOOD, &rec, err, sizeof err), 0);
    assert_int_equal(rec.kind, CARE_RECORD_UPSERT);
    assert_string_equal(rec.nhs, "9434765919");
    Mhtas__V1__CareSummary *s = rec.summary;
    assert_true(s->restricted);
    assert_string_equal(s->identity->names[0]->given[1], "Marie");
    assert_string_equal(s->identity->address->postal_code, "BL1 4AA");
    assert_int_equal(s->legal_status->kind, MHTAS__V1__LEGAL_STATUS_KIND__LEGAL_STATUS_KIND_SECTION);
    assert_int_equal(s->risks->flags[0]->kind, MHTAS__V1__RISK_KIND__RISK_KIND_WEAPONS);
    assert_int_equal(s->risks->meta->as_at_ms, s->legal_status->meta->as_at_ms - 3600000);
    assert_null(s->diagnoses);
    assert_string_equal(rec.person->given_names, "Ann Marie");
    assert_string_equal(rec.person->postcode, "BL1 4AA");
    assert_string_equal(rec.person->borough, "Bolton");
    assert_true(rec.person->restricted);
    /* round trip through the wire format */
    uint8_t buf[4096];
    size_t len = mhtas__v1__care_summary__pack(s, buf);
    Mhtas__V1__CareSummary *u = mhtas__v1__care_summary__unpack(NULL, len, buf);
    assert_non_null(u);
    assert_string_equal(u->crisis_plan->contacts[0]->name, "Mum");
    mhtas__v1__care_summary__free_unpacked(u, NULL);
    care_record_dispose(&rec);
    assert_int_equal(hub_alloc_live(), live);
}

static void delete_record(void **state)
{
    (void)state;
    care_record_t rec;
    char err[256];
    assert_int_equal(convert("{\"nhsNumber\":\"9434765919\",\"deleted\":true}", &rec, err, sizeof err), 0);
    assert_int_equal(rec.kind, CARE_RECORD_DELETE);
    assert_null(rec.summary);
    assert_int_equal(convert("{\"nhsNumber\":\"9434765919\",\"deleted\":true,\"patient\":{}}", &rec,
                             err, sizeof err), -1);
    assert_string_equal(err, "deleted record: unknown field \"patient\"");
}

static void bad_records(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"[]", "record must be a JSON object"},
        {"{}", "nhsNumber: is required (a string of 10 digits)"},
        {"{\"nhsNumber\":\"9434765918\"}", "nhsNumber: check digit is wrong"},
        {"{\"nhsNumber\":\"943476591\"}", "nhsNumber: NHS number must be 10 digits"},
        {"{\"nhsNumber\":\"9434765919\"}", "patient: is required"},
        {"{\"nhsNumber\":\"9434765919\",\"patiant\":{}}", "record: unknown field \"patiant\""},
        {"{\"nhsNumber\":\"9434765919\",\"patient\":{\"source\":\"x\",\"asAt\":\"2026-10-01\"}}",
         "patient.asAt: not an ISO 8601 date-time with a zone (2026-11-20T10:00:00Z)"},
        {"{\"nhsNumber\":\"9434765919\",\"patient\":{\"asAt\":\"2026-10-01T00:00:00Z\"}}",
         "patient.source: is required"},
        {"{\"nhsNumber\":\"9434765919\",\"patient\":{\"source\":\"x\",\"asAt\":\"2026-10-01T00:00:00Z\","
         "\"name\":[{\"family\":\"Smith\"}],\"birthDate\":\"1984-02-30\"}}",
         "patient.birthDate: not a valid YYYY-MM-DD date"},
        {"{\"nhsNumber\":\"9434765919\",\"patient\":{\"source\":\"x\",\"asAt\":\"2026-10-01T00:00:00Z\","
         "\"name\":[{\"given\":[\"Ann\"]}],\"birthDate\":\"1984-02-03\"}}",
         "patient.name[0].family: is required"},
        {"{\"nhsNumber\":\"9434765919\",\"patient\":{\"source\":\"x\",\"asAt\":\"2026-10-01T00:00:00Z\","
         "\"name\":[{\"family\":\"Smith\"}],\"birthDate\":\"1984-02-03\"},"
         "\"legalStatus\":{\"source\":\"x\",\"asAt\":\"2026-10-01T00:00:00Z\",\"status\":\"section\"}}",
         "legalStatus.section: is required"},
        {"{\"nhsNumber\":\"9434765919\",\"patient\":{\"source\":\"x\",\"asAt\":\"2026-10-01T00:00:00Z\","
         "\"name\":[{\"family\":\"Smith\"}],\"birthDate\":\"1984-02-03\"},"
         "\"flags\":{\"source\":\"x\",\"asAt\":\"2026-10-01T00:00:00Z\",\"items\":[{\"code\":\"knives\"}]}}",
         "flags.items[0].code: not one of the allowed values"},
        {"{\"nhsNumber\":\"9434765919\",\"patient\":{\"source\":\"x\",\"asAt\":\"2026-10-01T00:00:00Z\","
         "\"name\":[{\"family\":\"Sm\\u0000ith\"}],\"birthDate\":\"1984-02-03\"}}",
         "patient.name[0].family: contains a NUL character"},
        {"{\"nhsNumber\":\"9434765919\",\"patient\":{\"source\":\"x\",\"asAt\":\"2026-10-01T00:00:00Z\","
         "\"name\":[{\"family\":\"Smith\"}],\"birthDate\":\"1984-02-03\","
         "\"address\":{\"postalCode\":\"BL1\"}}}",
         "patient.address.postalCode: not a valid UK postcode"},
    };
    size_t live = hub_alloc_live();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        care_record_t rec;
        char err[256];
        json_error_t je;
        json_t *doc = json_loads(cases[i][0], JSON_ALLOW_NUL, &je);
        if (doc == NULL)
            fail_msg("case %zu is not JSON: %s", i, je.text);
        assert_int_equal(care_record_from_json(doc, &rec, err, sizeof err), -1);
        json_decref(doc);
        if (strcmp(err, cases[i][1]) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i][1]);
        assert_null(rec.summary);
    }
    assert_int_equal(hub_alloc_live(), live);
}

/* Every allocation failing in turn: an error, never a crash or a leak. */
static void failmalloc(void **state)
{
    (void)state;
    json_error_t je;
    json_t *doc = json_loads(GOOD, 0, &je);
    size_t live = hub_alloc_live();
    int ok = 0;
    for (long n = 0; n < 2000 && !ok; n++) {
        care_record_t rec;
        char err[256];
        hub_alloc_fail_after(n);
        int rc = care_record_from_json(doc, &rec, err, sizeof err);
        hub_alloc_fail_after(-1);
        if (rc == 0) {
            ok = 1;
            care_record_dispose(&rec);
        }
        assert_int_equal(hub_alloc_live(), live);
    }
    assert_true(ok);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_record),
        cmocka_unit_test(delete_record),
        cmocka_unit_test(bad_records),
        cmocka_unit_test(failmalloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
