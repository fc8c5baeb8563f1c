/* pbprint.h -- renders any protobuf-c message as one line of JSON-ish text
 * for bin/mhtas-cli: proto field names, enum value names, fields at their
 * proto3 default left out, 64-bit integers as plain numbers. */
#ifndef MHTAS_CLI_PBPRINT_H
#define MHTAS_CLI_PBPRINT_H

#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

/* Writes `m` (borrowed) to `out` as a JSON object, without a newline. */
void cli_pb_print(FILE *out, const ProtobufCMessage *m);

/* Writes `s` as a JSON string literal (quotes included). */
void cli_print_string(FILE *out, const char *s);

#endif
