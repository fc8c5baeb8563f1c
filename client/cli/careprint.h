/* careprint.h -- bin/mhtas-cli's care-record commands: parsing their
 * names (lawful bases, break-glass reasons, care parts, audit actions) and
 * printing the hub's answers readably (search results, a care summary with
 * its stale and restricted flags, audit entries). */
#ifndef MHTAS_CLI_CAREPRINT_H
#define MHTAS_CLI_CAREPRINT_H

#include <stdbool.h>
#include <stdio.h>

#include "lib/mhtas_client.h"

/* "direct", "vital", "safeguarding" (or the enum names); 0 when unknown. */
int cli_parse_basis(const char *s);
/* "RISK_TO_LIFE", "risk-to-life", "BREAK_GLASS_REASON_RISK_TO_LIFE" or a number; 0 when unknown. */
int cli_parse_glass_reason(const char *s);
/* "RISKS,CRISIS_PLAN" (or "risks,crisis-plan") into parts[]: the count, or -1. */
int cli_parse_parts(const char *list, Mhtas__V1__CarePart *parts, int cap);
/* "read", "search", "share", "break-glass" (or the enum names); 0 when unknown. */
int cli_parse_audit_action(const char *s);

/* Writes the answer of SearchPersons, GetCareSummary or ListAudit
 * (status line first). Returns false for any other message. */
bool cli_print_care(FILE *out, const ProtobufCMessage *resp);

#endif
