/* outcome_rules.h -- the outcome form's rules, without GTK, so they can be
 * unit-tested (tests/desk/rules_test.c). They mirror the hub's
 * core__validate_outcome (server/core/validate.c): the form refuses what the
 * hub would refuse, and says why before the practitioner presses Propose.
 * The hub stays the authority: it enforces the same rules again. */
#ifndef DESK_OUTCOME_RULES_H
#define DESK_OUTCOME_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "mhtas/v1/hub.pb-c.h"

#define DESK_N_CODES 18 /* OutcomeCode values 0..17; 0 is UNSPECIFIED */

typedef struct desk_outcome_form {
    bool codes[DESK_N_CODES];       /* codes[MHTAS__V1__OUTCOME_CODE__...] ticked */
    int place_of_safety;            /* Mhtas__V1__PlaceOfSafety, 0 = not chosen */
    const char *consulted_who;      /* may be NULL */
    int64_t consulted_at_ms;        /* 0 = not recorded */
    bool consultation_not_practicable;
    const char *inspector;          /* may be NULL */
    bool place_is_persons_home;
} desk_outcome_form_t;

/* Under 18 by any evidence (flag, estimated age, date of birth at now_ms),
 * as the hub decides it: when in doubt the stricter rule for children. */
bool desk_incident_is_child(const Mhtas__V1__IncidentDetails *d, int64_t now_ms);

/* NULL when the form may be proposed, else a static sentence saying what
 * to fix first. */
const char *desk_outcome_check(const desk_outcome_form_t *f, bool child);

/* "REFER_CMHT" for a code, without the OUTCOME_CODE_ prefix ("?" if unknown). */
const char *desk_outcome_code_name(int code);

/* Parses "REFER_CMHT" / "OUTCOME_CODE_REFER_CMHT" / "8"; 0 if unknown. */
int desk_outcome_code_parse(const char *s);

/* A readable label: "Refer to CMHT". Static. */
const char *desk_outcome_code_label(int code);

#endif
