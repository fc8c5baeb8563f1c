/* care_internal.h -- shared between the care panel's files (care.c: the
 * panel, its calls and dialogs; care_render.c: the summary's text). */
#ifndef MHTAS_DESK_CARE_INTERNAL_H
#define MHTAS_DESK_CARE_INTERNAL_H

#include "desk/desk.h"

#define CP(x) MHTAS__V1__CARE_PART__CARE_PART_##x
#define MR(x) MHTAS__V1__MATCH_REASON__MATCH_REASON_##x

/* Index = BreakGlassReason value; NULL-terminated for a drop-down. */
extern const char *const care_glass_labels[];

/* "SELF_HARM" -> "self harm" (g_free). */
char *care_enum_words(const ProtobufCEnumDescriptor *ed, int v, const char *prefix);
/* The incident's police reference, or "" outside one. */
const char *care_ref_of(const care_panel_t *p);
/* Whole years since a YYYY-MM-DD date of birth (today, local time); -1 if not a date. */
int care_age_of(const char *dob);
/* Renders p->rec (or clears the view when NULL). */
void care_render_record(care_panel_t *p);

#endif
