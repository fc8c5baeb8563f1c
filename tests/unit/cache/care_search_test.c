/* care_search_test.c -- the pure search of server/cache/care_search.c:
 * normalisation, Soundex (with the classic reference names), dates, query
 * validation, the candidate index keys, scoring (exact, wildcard, Soundex,
 * transposed names, swapped day and month, postcode) and the ranking order,
 * and the practitioner's-view staleness check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/care_search.h"

/* ------------------------------------------------------------ helpers */

static Mhtas__V1__SearchPersonsRequest req_of(const char *family, const char *given,
                                              const char *dob)
{
    Mhtas__V1__SearchPersonsRequest r = MHTAS__V1__SEARCH_PERSONS_REQUEST__INIT;
    r.family_name = (char *)family;
    r.given_name = (char *)(given ? given : "");
    r.date_of_birth = (char *)(dob ? dob : "");
    return r;
}

static Mhtas__V1__PersonMatch person(const char *nhs, const char *family, const char *given,
                                     const char *dob, const char *postcode)
{
    Mhtas__V1__PersonMatch m = MHTAS__V1__PERSON_MATCH__INIT;
    m.nhs_number = (char *)nhs;
    m.family_name = (char *)family;
    m.given_names = (char *)given;
    m.date_of_birth = (char *)dob;
    m.postcode = (char *)postcode;
    return m;
}

#define BIT(r) (1u << MHTAS__V1__MATCH_REASON__MATCH_REASON_##r)

static care_query_t parse_ok(Mhtas__V1__SearchPersonsRequest *r)
{
    care_query_t q;
    const char *err = care_query_parse(&q, r);
    if (err)
        fail_msg("unexpected parse error: %s", err);
    return q;
}

/* ------------------------------------------------------------ text */

static void soundex_reference(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"Robert", "R163"},   {"Rupert", "R163"},  {"Rubin", "R150"},   {"Ashcraft", "A261"},
        {"Ashcroft", "A261"}, {"Tymczak", "T522"}, {"Pfister", "P236"}, {"Honeyman", "H555"},
        {"Smith", "S530"},    {"Smyth", "S530"},   {"Schmidt", "S530"}, {"Lee", "L000"},
        {"O'Brien", "O165"},  {"Thompson", "T512"}, {"Thomson", "T525"}, {"ann", "A500"},
        {"Anne", "A500"},     {"Jackson", "J250"}, {"Zoë", "Z000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sx[5];
        assert_int_equal(care_soundex(cases[i][0], sx), 0);
        if (strcmp(sx, cases[i][1]) != 0)
            fail_msg("soundex(%s) = %s, want %s", cases[i][0], sx, cases[i][1]);
    }
    char sx[5];
    assert_int_equal(care_soundex("--- ", sx), -1);
    assert_string_equal(sx, "");
}

static void name_and_postcode_normalisation(void **state)
{
    (void)state;
    char n[CARE_NAME_MAX];
    care_norm_name("O'Brien-Smith", n, sizeof n);
    assert_string_equal(n, "OBRIENSMITH");
    care_norm_name("Zoë Élise", n, sizeof n);
    assert_string_equal(n, "ZOEELISE");
    char pc[9], out[5];
    assert_int_equal(care_norm_postcode("bl1 4aa", pc, out), 0);
    assert_string_equal(pc, "BL14AA");
    assert_string_equal(out, "BL1");
    assert_int_equal(care_norm_postcode("M1 1AE", pc, out), 0);
    assert_string_equal(out, "M1");
    assert_int_equal(care_norm_postcode("OL11", pc, out), 0);
    assert_string_equal(out, "OL11");
    assert_int_equal(care_norm_postcode("BL1 4A1", pc, out), -1);
    assert_int_equal(care_norm_postcode("12345", pc, out), -1);
}

static void dates(void **state)
{
    (void)state;
    int32_t d;
    char s[11];
    assert_int_equal(care_parse_date("1970-01-01", &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(care_parse_date("2000-02-29", &d), 0);
    care_format_date(d, s);
    assert_string_equal(s, "2000-02-29");
    assert_int_equal(care_parse_date("1900-02-29", &d), -1);
    assert_int_equal(care_parse_date("1984-13-01", &d), -1);
    assert_int_equal(care_parse_date("1984-3-07", &d), -1);
    int64_t ms;
    assert_int_equal(care_parse_datetime_ms("1970-01-02T00:00:01Z", &ms), 0);
    assert_int_equal(ms, 86401000);
    assert_int_equal(care_parse_datetime_ms("1970-01-02T01:00:01.5+01:00", &ms), 0);
    assert_int_equal(ms, 86401500);
    assert_int_equal(care_parse_datetime_ms("1970-01-02T00:00:01", &ms), -1);
}

/* ------------------------------------------------------------ queries */

static void query_validation(void **state)
{
    (void)state;
    care_query_t q;
    Mhtas__V1__SearchPersonsRequest r = req_of("", NULL, "1984-03-07");
    assert_string_equal(care_query_parse(&q, &r), "family name is required");
    r = req_of("Smith", NULL, NULL);
    assert_string_equal(care_query_parse(&q, &r),
                        "date of birth (or a date-of-birth range) is required");
    r = req_of("Smith", NULL, "1984-02-30");
    assert_string_equal(care_query_parse(&q, &r), "date of birth is not a valid YYYY-MM-DD date");
    r = req_of("S*", NULL, "1984-03-07");
    assert_string_equal(care_query_parse(&q, &r),
                        "a wildcard family name needs at least 2 letters before '*'");
    r = req_of("*ith", NULL, "1984-03-07");
    assert_string_equal(care_query_parse(&q, &r), "a wildcard '*' may only end a name");
    r = req_of("Smith", NULL, NULL);
    r.dob_from = "1990-01-01";
    r.dob_to = "1980-01-01";
    assert_string_equal(care_query_parse(&q, &r), "dob_to is before dob_from");
    r.dob_to = "";
    assert_string_equal(care_query_parse(&q, &r),
                        "a date-of-birth range needs both dob_from and dob_to");
    r = req_of("Smith", NULL, "1984-03-07");
    r.postcode = "not a postcode";
    assert_string_equal(care_query_parse(&q, &r),
                        "postcode is not a valid UK postcode or outward code");
    r = req_of("Smith", "Ann*", "1984-03-07");
    r.max_results = 500;
    q = parse_ok(&r);
    assert_int_equal(q.max_results, 50);
    assert_true(q.given_wild);
    assert_string_equal(q.given, "ANN");
    assert_string_equal(q.family_sx, "S530");
}

static int has_key(char keys[][CARE_KEY_MAX], int n, const char *k)
{
    for (int i = 0; i < n; i++)
        if (strcmp(keys[i], k) == 0)
            return 1;
    return 0;
}

static void candidate_keys(void **state)
{
    (void)state;
    static char keys[CARE_QUERY_KEYS_MAX][CARE_KEY_MAX];
    Mhtas__V1__SearchPersonsRequest r = req_of("Smith", "Ann", "1984-03-07");
    care_query_t q = parse_ok(&r);
    int n = care_query_keys(&q, keys);
    assert_int_equal(n, 4);
    assert_true(has_key(keys, n, "mhtas:ix:dob:1984-03-07"));
    assert_true(has_key(keys, n, "mhtas:ix:dob:1984-07-03"));   /* day and month swapped */
    assert_true(has_key(keys, n, "mhtas:ix:fy:S530:1984"));     /* sounds alike, same year */
    assert_true(has_key(keys, n, "mhtas:ix:fy:A500:1984"));     /* transposed names */

    r = req_of("Smith", NULL, NULL);
    r.dob_from = "1984-03-01";
    r.dob_to = "1984-03-31";
    q = parse_ok(&r);
    n = care_query_keys(&q, keys);
    assert_int_equal(n, 31);
    assert_string_equal(keys[0], "mhtas:ix:dob:1984-03-01");
    assert_string_equal(keys[30], "mhtas:ix:dob:1984-03-31");

    r.dob_to = "1986-12-31";
    q = parse_ok(&r);
    n = care_query_keys(&q, keys);
    assert_int_equal(n, 3);
    assert_string_equal(keys[2], "mhtas:ix:fy:S530:1986");

    r.family_name = "Smi*";
    q = parse_ok(&r);
    n = care_query_keys(&q, keys);
    assert_int_equal(n, 3);
    assert_string_equal(keys[0], "mhtas:ix:yob:1984");

    char pk[CARE_PERSON_KEYS_MAX][CARE_KEY_MAX];
    assert_int_equal(care_person_index_keys("Smyth", "1984-03-07", pk), 3);
    assert_string_equal(pk[0], "mhtas:ix:dob:1984-03-07");
    assert_string_equal(pk[1], "mhtas:ix:yob:1984");
    assert_string_equal(pk[2], "mhtas:ix:fy:S530:1984");
    assert_int_equal(care_person_index_keys("Smyth", "07/03/1984", pk), -1);
    char k[CARE_KEY_MAX];
    care_key_summary("9434765919", k);
    assert_string_equal(k, "mhtas:cs:9434765919");
    care_key_person("9434765919", k);
    assert_string_equal(k, "mhtas:pm:9434765919");
    care_key_index_of("9434765919", k);
    assert_string_equal(k, "mhtas:ixof:9434765919");
}

/* ------------------------------------------------------------ scoring */

static void scoring(void **state)
{
    (void)state;
    Mhtas__V1__SearchPersonsRequest r = req_of("Smith", "Ann", "1984-03-07");
    r.postcode = "BL1 4AA";
    care_query_t q = parse_ok(&r);

    Mhtas__V1__PersonMatch exact = person("1", "Smith", "Ann Marie", "1984-03-07", "BL1 4AA");
    care_score_t s = care_score(&q, &exact);
    assert_int_equal(s.score, 100);
    assert_true(s.exact);
    assert_int_equal(s.reasons, BIT(FAMILY_EXACT) | BIT(GIVEN_EXACT) | BIT(DOB_EXACT) |
                                    BIT(POSTCODE_EXACT));

    Mhtas__V1__PersonMatch sx = person("2", "Smyth", "Anne", "1984-03-07", "BL1 9ZZ");
    s = care_score(&q, &sx);
    assert_false(s.exact);
    assert_int_equal(s.reasons, BIT(FAMILY_SOUNDEX) | BIT(GIVEN_SOUNDEX) | BIT(DOB_EXACT) |
                                    BIT(POSTCODE_DISTRICT));
    /* (24 + 12 + 30 + 6) / 100 */
    assert_int_equal(s.score, 72);

    Mhtas__V1__PersonMatch tr = person("3", "Ann", "Smith", "1984-03-07", "");
    s = care_score(&q, &tr);
    assert_false(s.exact);
    assert_true(s.reasons & BIT(NAMES_TRANSPOSED));
    /* (40 + 20) * 4/5 + 30 = 78 of 100 */
    assert_int_equal(s.score, 78);

    Mhtas__V1__PersonMatch sw = person("4", "Smith", "Ann", "1984-07-03", "");
    s = care_score(&q, &sw);
    assert_true(s.reasons & BIT(DOB_DAY_MONTH_SWAPPED));
    assert_int_equal(s.score, 80);   /* 40 + 20 + 20 */

    Mhtas__V1__PersonMatch yr = person("5", "Smith", "Ann", "1984-11-20", "");
    s = care_score(&q, &yr);
    assert_int_equal(s.reasons, BIT(FAMILY_EXACT) | BIT(GIVEN_EXACT) | BIT(DOB_SAME_YEAR));
    assert_int_equal(s.score, 68);

    Mhtas__V1__PersonMatch other = person("6", "Jones", "Ann", "1984-03-07", "BL1 4AA");
    assert_int_equal(care_score(&q, &other).score, 0);   /* no family-name evidence */
    Mhtas__V1__PersonMatch olddob = person("7", "Smith", "Ann", "1985-03-07", "BL1 4AA");
    assert_int_equal(care_score(&q, &olddob).score, 0);  /* no date-of-birth evidence */

    r.exact_only = 1;
    q = parse_ok(&r);
    assert_int_equal(care_score(&q, &sx).score, 0);
    assert_int_equal(care_score(&q, &exact).score, 100);
}

static void wildcards_and_ranges(void **state)
{
    (void)state;
    Mhtas__V1__SearchPersonsRequest r = req_of("Smi*", "Ann*", NULL);
    r.dob_from = "1984-01-01";
    r.dob_to = "1984-12-31";
    care_query_t q = parse_ok(&r);
    Mhtas__V1__PersonMatch a = person("1", "Smithson", "Annabel", "1984-06-01", "");
    care_score_t s = care_score(&q, &a);
    assert_true(s.exact);
    assert_int_equal(s.reasons, BIT(FAMILY_WILDCARD) | BIT(GIVEN_WILDCARD) | BIT(DOB_IN_RANGE));
    assert_int_equal(s.score, 93);   /* (36 + 18 + 30) / 90 */
    Mhtas__V1__PersonMatch b = person("2", "Smyth", "Annabel", "1984-06-01", "");
    assert_int_equal(care_score(&q, &b).score, 0);   /* wildcard means prefix, not sound */
    Mhtas__V1__PersonMatch c = person("3", "Smith", "Ann", "1985-01-01", "");
    assert_int_equal(care_score(&q, &c).score, 0);   /* outside the range */
}

static void ranking_order(void **state)
{
    (void)state;
    Mhtas__V1__PersonMatch p[5] = {
        person("9990000005", "Smyth", "Ann", "1984-03-07", ""),
        person("9990000004", "Smith", "Ann", "1984-03-07", ""),
        person("9990000003", "Smith", "Ann", "1984-07-03", ""),
        person("9990000002", "Smith", "Ann", "1984-03-07", ""),
        person("9990000001", "Smith", "Anne", "1984-03-07", ""),
    };
    Mhtas__V1__SearchPersonsRequest r = req_of("Smith", "Ann", "1984-03-07");
    care_query_t q = parse_ok(&r);
    Mhtas__V1__PersonMatch *v[5];
    for (int i = 0; i < 5; i++) {
        care_score_t s = care_score(&q, &p[i]);
        p[i].score = s.score;
        p[i].exact = s.exact;
        v[i] = &p[i];
    }
    qsort(v, 5, sizeof v[0], care_match_cmp);
    /* exact ones first, equal ones by NHS number; then by score */
    assert_string_equal(v[0]->nhs_number, "9990000002");
    assert_string_equal(v[1]->nhs_number, "9990000004");
    assert_true(v[0]->exact && v[1]->exact && !v[2]->exact);
    for (int i = 2; i < 4; i++)
        assert_true(v[i]->score >= v[i + 1]->score);
    /* of 90: Anne (40+12+30) 91, swapped date (40+20+20) 89, Smyth (24+20+30) 82 */
    assert_string_equal(v[2]->nhs_number, "9990000001");
    assert_int_equal(v[2]->score, 91);
    assert_string_equal(v[3]->nhs_number, "9990000003");
    assert_int_equal(v[3]->score, 89);
    assert_string_equal(v[4]->nhs_number, "9990000005");
    assert_int_equal(v[4]->score, 82);
}

static void stale_parts(void **state)
{
    (void)state;
    Mhtas__V1__CareSummary s = MHTAS__V1__CARE_SUMMARY__INIT;
    Mhtas__V1__Identity id = MHTAS__V1__IDENTITY__INIT;
    Mhtas__V1__Risks risks = MHTAS__V1__RISKS__INIT;
    Mhtas__V1__CrisisPlan plan = MHTAS__V1__CRISIS_PLAN__INIT;
    Mhtas__V1__PartMeta fresh = MHTAS__V1__PART_META__INIT, old = MHTAS__V1__PART_META__INIT;
    fresh.as_at_ms = 1000000;
    old.as_at_ms = 10;
    id.meta = &fresh;
    risks.meta = &old;
    plan.meta = NULL;         /* present without an as-at time: stale */
    s.identity = &id;
    s.risks = &risks;
    s.crisis_plan = &plan;
    Mhtas__V1__CarePart out[CARE_PARTS];
    size_t n = care_stale_parts(&s, 1000500, 1000, out);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], MHTAS__V1__CARE_PART__CARE_PART_RISKS);
    assert_int_equal(out[1], MHTAS__V1__CARE_PART__CARE_PART_CRISIS_PLAN);
    assert_int_equal(care_stale_parts(&s, 1000500, 0, out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(soundex_reference),
        cmocka_unit_test(name_and_postcode_normalisation),
        cmocka_unit_test(dates),
        cmocka_unit_test(query_validation),
        cmocka_unit_test(candidate_keys),
        cmocka_unit_test(scoring),
        cmocka_unit_test(wildcards_and_ranges),
        cmocka_unit_test(ranking_order),
        cmocka_unit_test(stale_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
