/* split.c -- see split.h. Pure functions only. */
#include "split.h"

#include "util/utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ UTF-8 */

/* Decodes one code point at s[*i] (n bytes); advances *i. Returns the code
 * point, or -1 for an invalid or truncated sequence (one byte consumed). */
static long utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    uint32_t cp;
    size_t len = hub_utf8_decode(s + *i, n - *i, &cp);
    if (len == 0) {
        (*i)++;
        return -1;
    }
    *i += len;
    return (long)cp;
}

size_t relay_utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

/* ------------------------------------------------------------ normalising */

typedef struct outbuf {
    char *p;
    size_t cap, len;
    long chars;
    bool overflow;
    bool pending_space, pending_break;
    unsigned char last; /* last Latin-1 character written, 0 if none */
} outbuf_t;

static void put_raw(outbuf_t *o, unsigned cp)
{
    size_t need = cp < 0x80 ? 1 : 2;
    if (o->overflow || o->len + need + 1 > o->cap) {
        o->overflow = true;
        return;
    }
    if (cp < 0x80) {
        o->p[o->len++] = (char)cp;
    } else {
        o->p[o->len++] = (char)(0xC0 | (cp >> 6));
        o->p[o->len++] = (char)(0x80 | (cp & 0x3F));
    }
    o->p[o->len] = '\0';
    o->chars++;
    o->last = (unsigned char)cp;
}

/* A visible character: first the separator owed to earlier white space --
 * except before punctuation that closes a word (". , ; : ! ?"), where a space
 * is left over from something dropped ("escalates \U0001F642.") or a typo,
 * and a line break has nothing to end. */
static void put_char(outbuf_t *o, unsigned cp)
{
    if (o->chars > 0 && cp != 0 && cp < 0x80 && strchr(".,;:!?", (int)cp)) {
        o->pending_space = o->pending_break = false;
    } else if (o->chars > 0) {
        if (o->pending_break) {
            if (!strchr(".!?;:", o->last))
                put_raw(o, '.');
            put_raw(o, ' ');
        } else if (o->pending_space) {
            put_raw(o, ' ');
        }
    }
    o->pending_space = o->pending_break = false;
    put_raw(o, cp);
}

static void put_str(outbuf_t *o, const char *s)
{
    for (; *s; s++)
        put_char(o, (unsigned char)*s);
}

long relay_normalise(const char *in, size_t n, char *out, size_t cap)
{
    outbuf_t o = { .p = out, .cap = cap };
    if (cap == 0)
        return -1;
    out[0] = '\0';
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0;
    while (i < n) {
        long cp = utf8_next(s, n, &i);
        if (cp < 0)
            continue; /* invalid byte: dropped */
        switch (cp) {
        case '\n': case '\r': case 0x0B: case 0x0C: case 0x85: case 0x2028: case 0x2029:
            o.pending_break = true;
            continue;
        case '\t': case ' ': case 0xA0: case 0x1680: case 0x202F: case 0x205F: case 0x3000:
            o.pending_space = true;
            continue;
        case 0xAD: case 0x200B: case 0x200C: case 0x200D: case 0x2060: case 0xFEFF:
            continue; /* invisible */
        case 0x2018: case 0x2019: case 0x201A: case 0x201B: case 0x2032: case 0x2035:
            put_char(&o, '\'');
            continue;
        case 0x201C: case 0x201D: case 0x201E: case 0x201F: case 0x2033: case 0x2036:
            put_char(&o, '"');
            continue;
        case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2015: case 0x2212:
        case 0x2043: case 0xFE58: case 0xFE63: case 0xFF0D:
            put_char(&o, '-');
            continue;
        case 0x2026:
            put_str(&o, "...");
            continue;
        case 0x2022: case 0x2023: case 0x25CF: case 0x25E6: case 0x2219:
            put_char(&o, '*');
            continue;
        case 0x2039:
            put_char(&o, '<');
            continue;
        case 0x203A:
            put_char(&o, '>');
            continue;
        case 0x20AC:
            put_str(&o, "EUR");
            continue;
        case 0x2044: case 0x2215:
            put_char(&o, '/');
            continue;
        default:
            break;
        }
        if (cp >= 0x2000 && cp <= 0x200A) {
            o.pending_space = true;
            continue;
        }
        if ((cp >= 0x20 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xFF))
            put_char(&o, (unsigned)cp);
        /* everything else (controls, C1, emoji, other scripts): dropped */
    }
    return o.overflow ? -1 : o.chars;
}

long relay_utf8_to_latin1(const char *in, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = strlen(in), i = 0, w = 0;
    while (i < n) {
        long cp = utf8_next(s, n, &i);
        if (cp < 0)
            continue;
        if (w + 2 > cap)
            return -1;
        out[w++] = (char)(cp <= 0xFF ? cp : '?');
    }
    if (cap == 0)
        return -1;
    out[w] = '\0';
    return (long)w;
}

long relay_latin1_to_utf8(const unsigned char *in, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = in[i];
        size_t need = c < 0x80 ? 1 : 2;
        if (w + need + 1 > cap)
            return -1;
        if (c < 0x80) {
            out[w++] = (char)c;
        } else {
            out[w++] = (char)(0xC0 | (c >> 6));
            out[w++] = (char)(0x80 | (c & 0x3F));
        }
    }
    if (cap == 0)
        return -1;
    out[w] = '\0';
    return (long)w;
}

/* ------------------------------------------------------------ splitting */

const char *relay_split_status_str(relay_split_status_t s)
{
    switch (s) {
    case RELAY_SPLIT_OK:
        return "ok";
    case RELAY_SPLIT_EMPTY:
        return "nothing to send after removing characters the radio cannot show";
    case RELAY_SPLIT_TOO_LONG:
        return "too long for radio, use voice";
    case RELAY_SPLIT_INSTRUCTION_TOO_LONG:
        return "too long for radio (one instruction is longer than a radio message), use voice";
    case RELAY_SPLIT_BAD_ARGS:
        return "bad radio limits (part size too small for the prefix)";
    }
    return "?";
}

/* Where a part may end: at the space after an instruction (a sentence or a
 * clause ending in . ! ? ; :) or, failing that, after a clause ending in a
 * comma. Never at any other space, so a part never ends inside a word or in
 * the middle of "do not | restrain". Returns 2, 1 or 0. */
static int break_strength(const unsigned char *L, size_t N, size_t k)
{
    if (k == 0 || k >= N || L[k] != ' ')
        return 0;
    unsigned char c = L[k - 1];
    if (c == '.' || c == '!' || c == '?' || c == ';' || c == ':')
        return 2;
    return c == ',' ? 1 : 0;
}

/* The body [a, b) of L (Latin-1 bytes) as one part. */
typedef struct span {
    size_t a, b;
} span_t;

/* Greedy packing: each part takes as many whole units as fit, where a unit
 * ends at a break of at least `level`. With level 2 a sentence longer than a
 * part on its own is broken at its clauses (level 1 breaks) and *broke is
 * set. Taking the furthest break that fits gives the fewest parts for a given
 * set of break points (next-fit on an ordered sequence is optimal).
 * Returns OK, TOO_LONG (more than max_parts) or INSTRUCTION_TOO_LONG (a
 * clause longer than a part). */
static relay_split_status_t pack(const unsigned char *L, size_t N, size_t room, int level, unsigned max_parts,
                                 span_t *parts, unsigned *np, bool *broke)
{
    *np = 0;
    *broke = false;
    size_t a = 0;
    while (a < N) {
        size_t b = 0;
        if (N - a <= room) {
            b = N;
        } else {
            size_t fallback = 0;
            for (size_t k = a + room; k > a; k--) {
                int s = break_strength(L, N, k);
                if (s >= level) {
                    b = k;
                    break;
                }
                if (s >= 1 && fallback == 0)
                    fallback = k;
            }
            if (b == 0 && fallback) {
                b = fallback;
                *broke = true;
            }
            if (b == 0)
                return RELAY_SPLIT_INSTRUCTION_TOO_LONG;
        }
        if (*np == max_parts)
            return RELAY_SPLIT_TOO_LONG;
        parts[(*np)++] = (span_t){ a, b };
        a = b < N ? b + 1 : N; /* the space at a break belongs to no part */
    }
    if (level == 1)
        for (unsigned i = 0; i + 1 < *np; i++)
            if (break_strength(L, N, parts[i].b) < 2)
                *broke = true;
    return RELAY_SPLIT_OK;
}

relay_split_status_t relay_split(const char *text, const relay_split_opts_t *opts, relay_split_result_t *r)
{
    memset(r, 0, sizeof *r);
    unsigned max_chars = opts->max_chars ? opts->max_chars : RELAY_SPLIT_MAX_CHARS;
    unsigned max_parts = opts->max_parts ? opts->max_parts : RELAY_SPLIT_MAX_PARTS;
    if (max_chars > RELAY_SPLIT_MAX_CHARS || max_chars < RELAY_SPLIT_MIN_CHARS || max_parts > RELAY_SPLIT_MAX_PARTS)
        return r->status = RELAY_SPLIT_BAD_ARGS;

    long nchars = relay_normalise(text, strlen(text), r->normalised, sizeof r->normalised);
    if (nchars < 0)
        return r->status = RELAY_SPLIT_TOO_LONG; /* far beyond three parts anyway */
    r->normalised_chars = (unsigned)nchars;
    if (nchars == 0)
        return r->status = RELAY_SPLIT_EMPTY;

    /* The prefix: "n/m CALLSIGN REF: " (single digits: same length for any n, m). */
    char cs[64], ref[96], head[192];
    const char *c_in = opts->callsign ? opts->callsign : "", *r_in = opts->ref ? opts->ref : "";
    if (relay_normalise(c_in, strlen(c_in), cs, sizeof cs) < 0 || relay_normalise(r_in, strlen(r_in), ref, sizeof ref) < 0)
        return r->status = RELAY_SPLIT_BAD_ARGS;
    if (cs[0] && ref[0])
        snprintf(head, sizeof head, "%s %s: ", cs, ref);
    else if (cs[0] || ref[0])
        snprintf(head, sizeof head, "%s: ", cs[0] ? cs : ref);
    else
        head[0] = '\0';
    size_t prefix_chars = 4 + relay_utf8_chars(head); /* "1/3 " */
    if (prefix_chars + 10 > max_chars)
        return r->status = RELAY_SPLIT_BAD_ARGS;
    size_t room = max_chars - prefix_chars;
    r->room = (unsigned)room;

    /* Work on Latin-1 bytes: one byte per character. */
    unsigned char L[sizeof r->normalised];
    long nl = relay_utf8_to_latin1(r->normalised, (char *)L, sizeof L);
    if (nl < 0)
        return r->status = RELAY_SPLIT_TOO_LONG;
    size_t N = (size_t)nl;

    /* Whole sentences first; only when they need more parts than allowed,
     * whole clauses. Never smaller than a clause. */
    span_t parts[RELAY_SPLIT_MAX_PARTS];
    unsigned np = 0;
    bool broke = false;
    relay_split_status_t st = pack(L, N, room, 2, max_parts, parts, &np, &broke);
    if (st == RELAY_SPLIT_TOO_LONG)
        st = pack(L, N, room, 1, max_parts, parts, &np, &broke);
    if (st != RELAY_SPLIT_OK)
        return r->status = st;
    r->broke_instruction = broke;

    for (unsigned k = 0; k < np; k++) {
        char pre[256];
        int pn = snprintf(pre, sizeof pre, "%u/%u %s", k + 1, np, head);
        if (pn < 0 || (size_t)pn >= sizeof pre)
            return r->status = RELAY_SPLIT_BAD_ARGS;
        char *dst = r->parts[k];
        size_t w = (size_t)pn;
        memcpy(dst, pre, w);
        r->body_off[k] = w;
        long bn = relay_latin1_to_utf8(L + parts[k].a, parts[k].b - parts[k].a, dst + w, RELAY_SPLIT_PART_BYTES - w);
        if (bn < 0)
            return r->status = RELAY_SPLIT_BAD_ARGS;
    }
    r->n_parts = np;
    return r->status = RELAY_SPLIT_OK;
}
