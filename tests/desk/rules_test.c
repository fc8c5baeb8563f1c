/* rules_test.c -- the desk's outcome-form rules (client/desk/outcome_rules.c),
 * which mirror the hub's section 136 checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "desk/outcome_rules.h"

#define OC(x) MHTAS__V1__OUTCOME_CODE__OUTCOME_CODE_##x
#define PLACE(x) MHTAS__V1__PLACE_OF_SAFETY__PLACE_OF_SAFETY_##x
#define NOW_MS 1795000000000LL /* 2026-11-18 */

static desk_outcome_form_t s136(int place)
{
    desk_outcome_form_t f;
    memset(&f, 0, sizeof f);
    f.codes[OC(S136_DETENTION)] = true;
    f.place_of_safety = place;
    f.consulted_who = "Dr Khan";
    f.consulted_at_ms = NOW_MS - 60000;
    return f;
}

static void needs_a_code(void **state)
{
    (void)state;
    desk_outcome_form_t f;
    memset(&f, 0, sizeof f);
    assert_non_null(desk_outcome_check(&f, false));
    f.codes[OC(REFER_CMHT)] = f.codes[OC(NO_POLICE_ATTENDANCE)] = true;
    assert_null(desk_outcome_check(&f, false));
}

static void s136_both_ways_refused(void **state)
{
    (void)state;
    desk_outcome_form_t f = s136(PLACE(HEALTH_BASED));
    f.codes[OC(S136_CONSIDERED_NOT_USED)] = true;
    assert_non_null(strstr(desk_outcome_check(&f, false), "both"));
}

static void s136_needs_place_and_consultation(void **state)
{
    (void)state;
    desk_outcome_form_t f = s136(0);
    assert_non_null(strstr(desk_outcome_check(&f, false), "place of safety"));
    f = s136(PLACE(HEALTH_BASED));
    assert_null(desk_outcome_check(&f, false));
    f.consulted_who = "  ";
    assert_non_null(strstr(desk_outcome_check(&f, false), "consulted"));
    f.consulted_who = "Dr Khan";
    f.consulted_at_ms = 0;
    assert_non_null(strstr(desk_outcome_check(&f, false), "consulted"));
    f.consultation_not_practicable = true;
    assert_null(desk_outcome_check(&f, false));
}

static void s136_not_at_home(void **state)
{
    (void)state;
    desk_outcome_form_t f = s136(PLACE(EMERGENCY_DEPARTMENT));
    f.place_is_persons_home = true;
    assert_non_null(strstr(desk_outcome_check(&f, false), "lives"));
}

static void police_station_rules(void **state)
{
    (void)state;
    desk_outcome_form_t f = s136(PLACE(POLICE_STATION));
    assert_non_null(strstr(desk_outcome_check(&f, false), "inspector"));
    f.inspector = "Insp Jones";
    assert_null(desk_outcome_check(&f, false));
    /* never for under-18s, whatever the inspector says */
    assert_non_null(strstr(desk_outcome_check(&f, true), "under 18"));
}

static void child_by_any_evidence(void **state)
{
    (void)state;
    Mhtas__V1__IncidentDetails d = MHTAS__V1__INCIDENT_DETAILS__INIT;
    Mhtas__V1__Person p = MHTAS__V1__PERSON__INIT;
    assert_false(desk_incident_is_child(&d, NOW_MS));
    d.person = &p;
    p.age_years = 16;
    assert_true(desk_incident_is_child(&d, NOW_MS));
    p.age_years = 0;
    p.date_of_birth = "2010-01-01";
    assert_true(desk_incident_is_child(&d, NOW_MS));
    p.date_of_birth = "1990-01-01";
    assert_false(desk_incident_is_child(&d, NOW_MS));
    Mhtas__V1__ConcernFlag flags[] = { MHTAS__V1__CONCERN_FLAG__CONCERN_FLAG_UNDER_18 };
    d.flags = flags;
    d.n_flags = 1;
    assert_true(desk_incident_is_child(&d, NOW_MS));
}

static void code_names(void **state)
{
    (void)state;
    assert_int_equal(desk_outcome_code_parse("REFER_CMHT"), OC(REFER_CMHT));
    assert_int_equal(desk_outcome_code_parse("OUTCOME_CODE_ADVICE_ONLY"), OC(ADVICE_ONLY));
    assert_int_equal(desk_outcome_code_parse("1"), OC(S136_DETENTION));
    assert_int_equal(desk_outcome_code_parse("NOPE"), 0);
    assert_string_equal(desk_outcome_code_name(OC(REFER_GP)), "REFER_GP");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(needs_a_code),          cmocka_unit_test(s136_both_ways_refused),
        cmocka_unit_test(s136_needs_place_and_consultation), cmocka_unit_test(s136_not_at_home),
        cmocka_unit_test(police_station_rules),  cmocka_unit_test(child_by_any_evidence),
        cmocka_unit_test(code_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
