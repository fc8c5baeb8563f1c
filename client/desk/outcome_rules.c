/* outcome_rules.c -- see outcome_rules.h. */
#include "desk/outcome_rules.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OC(x) MHTAS__V1__OUTCOME_CODE__OUTCOME_CODE_##x

static bool set(const char *s)
{
    if (s == NULL)
        return false;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n')
            return true;
    return false;
}

bool desk_incident_is_child(const Mhtas__V1__IncidentDetails *d, int64_t now_ms)
{
    return core_details_is_child(d, now_ms); /* the hub's own rule */
}

const char *desk_outcome_check(const desk_outcome_form_t *f, bool child)
{
    int n = 0;
    for (int i = 1; i < DESK_N_CODES; i++)
        n += f->codes[i];
    if (n == 0)
        return "Choose at least one outcome.";
    if (f->codes[OC(S136_DETENTION)] && f->codes[OC(S136_CONSIDERED_NOT_USED)])
        return "Section 136 cannot be both used and considered-not-used.";
    if (!f->codes[OC(S136_DETENTION)])
        return NULL;
    if (f->place_of_safety < MHTAS__V1__PLACE_OF_SAFETY__PLACE_OF_SAFETY_HEALTH_BASED ||
        f->place_of_safety > MHTAS__V1__PLACE_OF_SAFETY__PLACE_OF_SAFETY_OTHER)
        return "Section 136: choose the place of safety.";
    if (f->place_is_persons_home)
        return "Section 136 cannot be used in a place where the person lives.";
    if (!f->consultation_not_practicable && (!set(f->consulted_who) || f->consulted_at_ms <= 0))
        return "Section 136: record who was consulted and when, or that consultation was not practicable.";
    if (f->place_of_safety == MHTAS__V1__PLACE_OF_SAFETY__PLACE_OF_SAFETY_POLICE_STATION) {
        if (child)
            return "A police station is never a place of safety for someone under 18.";
        if (!set(f->inspector))
            return "A police station as place of safety needs an inspector's authorisation: name the inspector.";
    }
    return NULL;
}

const char *desk_outcome_code_name(int code)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&mhtas__v1__outcome_code__descriptor, code);
    if (v == NULL)
        return "?";
    return strncmp(v->name, "OUTCOME_CODE_", 13) == 0 ? v->name + 13 : v->name;
}

int desk_outcome_code_parse(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    char *end;
    long num = strtol(s, &end, 10);
    if (*end == '\0')
        return num > 0 && num < DESK_N_CODES ? (int)num : 0;
    char name[96];
    snprintf(name, sizeof name, "%s%s", strncmp(s, "OUTCOME_CODE_", 13) ? "OUTCOME_CODE_" : "", s);
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(&mhtas__v1__outcome_code__descriptor, name);
    return v && v->value > 0 && v->value < DESK_N_CODES ? v->value : 0;
}

const char *desk_outcome_code_label(int code)
{
    static const char *const labels[DESK_N_CODES] = {
        "?",
        "s136 detention",
        "s136 considered, not used",
        "s135 warrant advised",
        "Voluntary attendance at A&E",
        "Voluntary assessment",
        "Ambulance requested",
        "Refer to crisis team",
        "Refer to CMHT",
        "Refer to street triage",
        "Refer to GP",
        "Refer to safe space",
        "Advice only",
        "No police attendance",
        "No further police action",
        "Arrest: criminal matter",
        "AWOL return",
        "Not known to services",
    };
    return code > 0 && code < DESK_N_CODES ? labels[code] : "?";
}
