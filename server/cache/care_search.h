/* care_search.h -- the pure half of the care-summary cache (no I/O, no
 * allocation, no clock): Redis key naming, name and postcode normalisation,
 * Soundex, dates, demographic search queries, candidate index keys, scoring
 * and ranking, and the practitioner's-view staleness check.
 *
 * The cache (care_cache.c), the importer (tools/import.c) and the tests all
 * use these, so the key schema and the index a person is put in are defined
 * exactly once. See docs/CACHE.md for the schema.
 */
#ifndef MHTAS_CACHE_CARE_SEARCH_H
#define MHTAS_CACHE_CARE_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "mhtas/v1/care.pb-c.h"

/* ------------------------------------------------------------ keys */

#define CARE_KEY_MAX 48            /* every key fits, with its NUL */
#define CARE_PERSON_KEYS_MAX 3     /* index sets one person is in */
#define CARE_QUERY_KEYS_MAX 256    /* index sets one query reads */

/* "mhtas:cs:{nhs}": the packed CareSummary. */
void care_key_summary(const char *nhs, char out[CARE_KEY_MAX]);
/* "mhtas:pm:{nhs}": the packed PersonMatch used for scoring. */
void care_key_person(const char *nhs, char out[CARE_KEY_MAX]);
/* "mhtas:ixof:{nhs}": the set of index keys this person is in. */
void care_key_index_of(const char *nhs, char out[CARE_KEY_MAX]);

/* The index sets a person belongs in, from the official family name and the
 * date of birth (YYYY-MM-DD):
 *   mhtas:ix:dob:{YYYY-MM-DD}
 *   mhtas:ix:yob:{YYYY}
 *   mhtas:ix:fy:{SOUNDEX(family)}:{YYYY}   (omitted if the name has no letters)
 * Returns the number of keys written to keys[], or -1 if dob is not a date. */
int care_person_index_keys(const char *family, const char *dob,
                           char keys[CARE_PERSON_KEYS_MAX][CARE_KEY_MAX]);

/* ------------------------------------------------------------ text */

#define CARE_NAME_MAX 64

/* Normalises a name for matching: letters only, upper case ASCII; Latin-1
 * accented letters in UTF-8 lose their accent ("Zoë" -> "ZOE"); spaces,
 * hyphens, apostrophes and everything else are dropped ("O'Brien-Smith" ->
 * "OBRIENSMITH"). Truncates to out_len - 1. Returns the length. */
size_t care_norm_name(const char *in, char *out, size_t out_len);

/* American Soundex of a name (normalised first): letter + 3 digits, e.g.
 * Robert/Rupert "R163", Ashcraft "A261", Tymczak "T522", Pfister "P236".
 * Returns 0, or -1 (and "") when the name has no letters. */
int care_soundex(const char *name, char out[5]);

/* Postcode without spaces, upper case ("bl1 4aa" -> "BL14AA"); the outward
 * code is everything but the last three characters of a full postcode, or
 * the whole of a 2-4 character outward code. Returns 0, or -1 if it does not
 * look like a UK postcode or outward code. */
int care_norm_postcode(const char *in, char norm[9], char outward[5]);

/* ------------------------------------------------------------ dates */

/* Days since 1970-01-01 of a strict "YYYY-MM-DD" (years 1880..2200, real
 * calendar dates). Returns 0 and sets *days, or -1. */
int care_parse_date(const char *s, int32_t *days);
/* The inverse: writes "YYYY-MM-DD" to out[11]. */
void care_format_date(int32_t days, char out[11]);
/* "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)" to ms since the epoch.
 * Returns 0, or -1. */
int care_parse_datetime_ms(const char *s, int64_t *ms);

/* ------------------------------------------------------------ search */

typedef struct care_query {
    char family[CARE_NAME_MAX];    /* normalised, without the '*' */
    int family_wild;               /* prefix match */
    char family_sx[5];             /* "" when wild */
    char given[CARE_NAME_MAX];     /* "" when not given */
    int given_wild;
    char given_sx[5];
    int32_t dob_from, dob_to;      /* inclusive, days since the epoch */
    int dob_exact;                 /* a single date_of_birth was given */
    char postcode[9];              /* normalised, "" when not given */
    char outward[5];
    int exact_only;
    unsigned max_results;          /* 1..CARE_SEARCH_MAX_RESULTS */
} care_query_t;

#define CARE_SEARCH_MAX_RESULTS 50
#define CARE_SEARCH_MIN_SCORE 30   /* fuzzy candidates below this are dropped */

/* Validates and normalises a request into *q. Returns NULL, or a static
 * reason for INVALID_ARGUMENT ("family name is required", "date of birth
 * is not a valid YYYY-MM-DD date", ...). */
const char *care_query_parse(care_query_t *q, const Mhtas__V1__SearchPersonsRequest *req);

/* The index sets whose union is the candidate set of the query (see
 * docs/CACHE.md "Search"). Returns the number written (>= 1). */
int care_query_keys(const care_query_t *q, char keys[CARE_QUERY_KEYS_MAX][CARE_KEY_MAX]);

/* Reasons as a bit set: bit n is MHTAS__V1__MATCH_REASON__... value n. */
typedef struct care_score {
    unsigned score;                /* 0..100; 0 = not a match */
    uint32_t reasons;
    int exact;
} care_score_t;

/* Scores one candidate (its stored PersonMatch) against the query. A
 * candidate matches only if some name evidence and some date-of-birth
 * evidence agree and, for fuzzy ones, the score reaches
 * CARE_SEARCH_MIN_SCORE; otherwise score is 0. With exact_only, fuzzy
 * candidates score 0 too. */
care_score_t care_score(const care_query_t *q, const Mhtas__V1__PersonMatch *c);

/* qsort comparator for an array of PersonMatch pointers with score/exact
 * filled: exact first, then score, then family, given, date of birth and
 * NHS number (so equal scores come out in a stable, explainable order). */
int care_match_cmp(const void *a, const void *b);

/* Fills m->reasons (caller's array of at least 16) from a bit set. */
size_t care_reasons_unpack(uint32_t bits, Mhtas__V1__MatchReason *out);

/* ------------------------------------------------------------ view */

#define CARE_PARTS 7

/* The parts of `s` whose as_at_ms is older than max_age_ms at now_ms, or that
 * are present without an as-at time. Absent parts are not stale (they are
 * absent). max_age_ms 0 disables the check. Writes at most CARE_PARTS values
 * to out and returns how many. */
size_t care_stale_parts(const Mhtas__V1__CareSummary *s, int64_t now_ms, int64_t max_age_ms,
                        Mhtas__V1__CarePart out[CARE_PARTS]);

#endif
