/* split.h -- advice text to TETRA SDS parts (pure: no I/O, no allocation
 * beyond the caller's buffers, no globals).
 *
 * Two steps:
 *
 * 1. relay_normalise(): any UTF-8 text (invalid bytes tolerated) becomes
 *    "radio text": UTF-8 whose every code point is representable in
 *    ISO-8859-1 and printable (U+0020..U+007E, U+00A1..U+00FF), so that it
 *    goes on the air as one Latin-1 byte per character.
 *      - typographic quotes, dashes, ellipsis, bullets, NBSP and friends map
 *        to ASCII (' " - ... * space); U+00A0 and U+00AD become space/none;
 *      - control characters and every other code point (emoji, CJK, symbols,
 *        zero-width characters, variation selectors) are dropped;
 *      - a line break ends an instruction: it becomes ". " unless the text
 *        before it already ends in . ! ? ; or : (then a space);
 *      - runs of white space collapse to one space, leading and trailing
 *        white space is removed, and no space is kept before . , ; : ! ?
 *        (what a dropped emoji leaves behind: "escalates \U0001F642." ->
 *        "escalates.").
 *    The result's length in characters is what counts against the radio's
 *    limit.
 *
 * 2. relay_split(): radio text into at most RELAY_SPLIT_MAX_PARTS parts, each
 *    "<n>/<m> <CALLSIGN> <REF>: <body>" and at most max_chars characters.
 *      - the bodies, joined with single spaces, are exactly the normalised
 *        text: nothing is cut, reordered or added;
 *      - a part never ends inside a word or inside an instruction: it ends
 *        where the text does, or at the space after a sentence or clause
 *        ending in . ! ? ; : (an "instruction"; the line breaks of step 1
 *        count), or -- the one exception -- after a clause ending in a
 *        comma, used only when whole instructions cannot be made to fit:
 *          1. parts are filled greedily with whole instructions;
 *          2. an instruction longer than a part on its own is broken at its
 *             commas (broke_instruction is then set);
 *          3. when that needs more than max_parts parts, the text is packed
 *             again by clauses (instructions and comma clauses) alike;
 *      - nothing is ever broken at a plain space between two words. When the
 *        text does not fit in max_parts parts, or one clause is longer than a
 *        part, nothing is produced and the caller is told why
 *        (RELAY_SPLIT_TOO_LONG / RELAY_SPLIT_INSTRUCTION_TOO_LONG): the advice
 *        must go by voice ("too long for radio, use voice").
 */
#ifndef MHTAS_RELAY_SPLIT_H
#define MHTAS_RELAY_SPLIT_H

#include <stdbool.h>
#include <stddef.h>

#define RELAY_SPLIT_MAX_PARTS 3
#define RELAY_SPLIT_MAX_CHARS 140       /* the practical TETRA SDS text limit */
#define RELAY_SPLIT_MIN_CHARS 40        /* below this a prefix leaves no room */
#define RELAY_SPLIT_PART_BYTES (2 * RELAY_SPLIT_MAX_CHARS + 1) /* UTF-8, <= 2 bytes a char, plus NUL */

/* Normalises `in` (n bytes, UTF-8) into `out` (cap bytes, NUL-terminated).
 * Returns the number of characters of the result, or -1 when it does not fit
 * in `cap` (out then holds a truncated, still valid string). */
long relay_normalise(const char *in, size_t n, char *out, size_t cap);

/* Characters (code points) of a UTF-8 string. */
size_t relay_utf8_chars(const char *s);

typedef enum {
    RELAY_SPLIT_OK = 0,
    RELAY_SPLIT_EMPTY,          /* nothing left after normalising */
    RELAY_SPLIT_TOO_LONG,       /* needs more than max_parts parts */
    RELAY_SPLIT_INSTRUCTION_TOO_LONG, /* one clause is longer than a part's room */
    RELAY_SPLIT_BAD_ARGS,       /* limit below RELAY_SPLIT_MIN_CHARS, prefix too long, ... */
} relay_split_status_t;

typedef struct relay_split_opts {
    const char *callsign;       /* e.g. "MX21"; normalised like the text; may be "" */
    const char *ref;            /* incident reference, e.g. "GMP-0412"; may be "" */
    unsigned max_chars;         /* per part, prefix included; 0: 140; at most 140 */
    unsigned max_parts;         /* 0: 3; at most 3 */
} relay_split_opts_t;

typedef struct relay_split_result {
    relay_split_status_t status;
    unsigned n_parts;
    char parts[RELAY_SPLIT_MAX_PARTS][RELAY_SPLIT_PART_BYTES]; /* whole parts, prefix included */
    size_t body_off[RELAY_SPLIT_MAX_PARTS];  /* where each part's body starts in parts[i] */
    unsigned normalised_chars;  /* length of the normalised text */
    unsigned room;              /* body characters a part can hold */
    bool broke_instruction;     /* an over-long instruction had to be broken */
    char normalised[4096];      /* the normalised text (truncated texts are TOO_LONG) */
} relay_split_result_t;

/* Normalises `text` and splits it. Always fills `r` (status first). */
relay_split_status_t relay_split(const char *text, const relay_split_opts_t *opts, relay_split_result_t *r);

/* "ok", "empty", "too long for radio, use voice", ... Static. */
const char *relay_split_status_str(relay_split_status_t s);

/* UTF-8 radio text to ISO-8859-1 bytes (one per character). Code points
 * above U+00FF (none after normalising) become '?'. Returns the byte count,
 * or -1 when it does not fit in cap (including the NUL). */
long relay_utf8_to_latin1(const char *in, char *out, size_t cap);

/* ISO-8859-1 bytes to UTF-8 (for texts from officers). Returns bytes
 * written, or -1 when it does not fit (including the NUL). */
long relay_latin1_to_utf8(const unsigned char *in, size_t n, char *out, size_t cap);

#endif
