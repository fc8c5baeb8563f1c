/* care_json.h -- one NDJSON import record (FHIR-UK-Core-shaped JSON, see
 * docs/CACHE.md "Import format") to a CareSummary, with validation.
 *
 * No I/O. Used by the importer (tools/import.c) and its tests; the hub never
 * parses these records.
 */
#ifndef MHTAS_CACHE_CARE_JSON_H
#define MHTAS_CACHE_CARE_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "mhtas/v1/care.pb-c.h"

typedef enum {
    CARE_RECORD_UPSERT = 1,     /* a person to create or replace */
    CARE_RECORD_DELETE = 2,     /* {"nhsNumber": "...", "deleted": true} */
} care_record_kind_t;

typedef struct care_record {
    care_record_kind_t kind;
    char nhs[11];
    Mhtas__V1__CareSummary *summary;   /* UPSERT: hub-allocated, see care_record_dispose */
    Mhtas__V1__PersonMatch *person;    /* UPSERT: the compact search record */
} care_record_t;

/* Converts and validates one record. Returns 0 and fills *rec, or -1 and
 * writes the first reason to err ("patient.birthDate: not a valid YYYY-MM-DD
 * date"). Reasons name fields, never their values (no health data). */
int care_record_from_json(json_t *doc, care_record_t *rec, char *err, size_t errlen);

/* Frees what care_record_from_json allocated (safe on a zeroed record). */
void care_record_dispose(care_record_t *rec);

#endif
