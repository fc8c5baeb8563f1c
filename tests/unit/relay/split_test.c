/* split_test.c -- the radio splitting rules (client/relay/split.c), with
 * property tests over many generated texts (seeded: SPLIT_SEED=n to vary,
 * a failure prints the text and the seed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay/split.h"

static const relay_split_opts_t OPTS = { .callsign = "MX21", .ref = "GMP-0412", .max_chars = 140, .max_parts = 3 };

/* ------------------------------------------------------------ examples */

static void test_normalise_quotes_dashes_emoji(void **state)
{
    (void)state;
    char out[256];
    const char *in = "\xE2\x80\x9CStay calm\xE2\x80\x9D \xE2\x80\x93 don\xE2\x80\x99t rush \xF0\x9F\x98\x80 "
                     "wait\xE2\x80\xA6 caf\xC3\xA9";
    long n = relay_normalise(in, strlen(in), out, sizeof out);
    assert_string_equal(out, "\"Stay calm\" - don't rush wait... caf\xC3\xA9");
    assert_int_equal(n, (long)relay_utf8_chars(out));
}

static void test_normalise_whitespace_and_breaks(void **state)
{
    (void)state;
    char out[256];
    const char *in = "  Keep distance\n\nCall ambulance.\r\n\tDo not restrain  \x01\x7f end \n";
    relay_normalise(in, strlen(in), out, sizeof out);
    assert_string_equal(out, "Keep distance. Call ambulance. Do not restrain end");
    /* no space left before punctuation by a dropped emoji or a typo */
    const char *emo = "it escalates \xF0\x9F\x99\x82. Then , wait \n; go";
    relay_normalise(emo, strlen(emo), out, sizeof out);
    assert_string_equal(out, "it escalates. Then, wait; go");
    /* invalid UTF-8 bytes are dropped, not guessed */
    const char bad[] = "a\xC3" "b\xFF" "c\xED\xA0\x80" "d";
    relay_normalise(bad, strlen(bad), out, sizeof out);
    assert_string_equal(out, "abcd");
}

static void test_short_advice_one_part(void **state)
{
    (void)state;
    relay_split_result_t r;
    assert_int_equal(relay_split("Known to CMHT. Take her to the s136 suite at Park House.", &OPTS, &r), RELAY_SPLIT_OK);
    assert_int_equal(r.n_parts, 1);
    assert_string_equal(r.parts[0], "1/1 MX21 GMP-0412: Known to CMHT. Take her to the s136 suite at Park House.");
}

static void test_instructions_kept_whole(void **state)
{
    (void)state;
    relay_split_result_t r;
    const char *t = "He is known to the crisis team and has a crisis plan that says to speak calmly and slowly. "
                    "Do not mention his brother; it escalates. "
                    "Offer him a voluntary attendance at A&E with an officer he knows, and call the crisis line on arrival.";
    assert_int_equal(relay_split(t, &OPTS, &r), RELAY_SPLIT_OK);
    assert_int_equal(r.n_parts, 2);
    assert_string_equal(r.parts[0] + r.body_off[0],
                        "He is known to the crisis team and has a crisis plan that says to speak calmly and slowly. "
                        "Do not mention his brother;");
    assert_false(r.broke_instruction);
    /* "; " ends an instruction: the next part starts after it, never mid-clause */
    assert_string_equal(r.parts[1], "2/2 MX21 GMP-0412: it escalates. Offer him a voluntary attendance at A&E with an "
                                    "officer he knows, and call the crisis line on arrival.");
}

static void test_too_long_refused_not_cut(void **state)
{
    (void)state;
    char t[1200] = "";
    for (int i = 0; i < 20; i++)
        strcat(t, "Keep talking to him calmly. ");
    relay_split_result_t r;
    assert_int_equal(relay_split(t, &OPTS, &r), RELAY_SPLIT_TOO_LONG);
    assert_int_equal(r.n_parts, 0);
    assert_string_equal(relay_split_status_str(RELAY_SPLIT_TOO_LONG), "too long for radio, use voice");
}

static void test_word_too_long_and_empty(void **state)
{
    (void)state;
    relay_split_result_t r;
    char t[300];
    memset(t, 'x', 200);
    t[200] = '\0';
    assert_int_equal(relay_split(t, &OPTS, &r), RELAY_SPLIT_INSTRUCTION_TOO_LONG);
    /* a sentence longer than a part with no comma in it is not cut at a word */
    char s2[400] = "";
    for (int i = 0; i < 30; i++)
        strcat(s2, "do not ");
    strcat(s2, "stop.");
    assert_int_equal(relay_split(s2, &OPTS, &r), RELAY_SPLIT_INSTRUCTION_TOO_LONG);
    assert_int_equal(r.n_parts, 0);
    assert_int_equal(relay_split(" \xF0\x9F\x98\x80 \n", &OPTS, &r), RELAY_SPLIT_EMPTY);
    relay_split_opts_t small = OPTS;
    small.max_chars = 20;
    assert_int_equal(relay_split("hello", &small, &r), RELAY_SPLIT_BAD_ARGS);
}

static void test_long_instruction_broken_at_a_clause(void **state)
{
    (void)state;
    relay_split_result_t r;
    /* one sentence longer than a part: broken after a comma, never mid-clause */
    const char *t = "If he agrees to go voluntarily take him to the health-based place of safety at Park House, "
                    "ring the suite on the number in the log before you set off, and do not use handcuffs unless "
                    "there is an immediate risk to him or to you.";
    assert_int_equal(relay_split(t, &OPTS, &r), RELAY_SPLIT_OK);
    assert_true(r.broke_instruction);
    assert_int_equal(r.n_parts, 3);
    assert_string_equal(r.parts[0], "1/3 MX21 GMP-0412: If he agrees to go voluntarily take him to the health-based place of "
                                    "safety at Park House,");
    assert_string_equal(r.parts[1], "2/3 MX21 GMP-0412: ring the suite on the number in the log before you set off,");
    /* whole sentences that would need four parts are packed by clauses into three */
    const char *t2 = "He is known to the crisis team and has a care coordinator. "
                     "Crisis plan says to speak slowly and quietly, give him space and time to answer. "
                     "He has taken an overdose before today, ask him what he has taken and when. "
                     "If he has taken anything at all, call an ambulance.";
    assert_int_equal(relay_split(t2, &OPTS, &r), RELAY_SPLIT_OK);
    assert_int_equal(r.n_parts, 3);
    assert_true(r.broke_instruction);
    assert_string_equal(r.parts[2], "3/3 MX21 GMP-0412: If he has taken anything at all, call an ambulance.");
    relay_split_opts_t o = OPTS;
    o.max_chars = 100;
    assert_int_equal(relay_split(t2, &o, &r), RELAY_SPLIT_TOO_LONG);
}

static void test_lower_limit(void **state)
{
    (void)state;
    relay_split_opts_t o = OPTS;
    o.max_chars = 100;
    relay_split_result_t r;
    const char *t = "Go to the s136 suite at Park House. Not A&E. Ring the suite first on the number in the log. "
                    "Tell them he is autistic and needs a quiet room.";
    assert_int_equal(relay_split(t, &o, &r), RELAY_SPLIT_OK);
    for (unsigned i = 0; i < r.n_parts; i++)
        assert_true(relay_utf8_chars(r.parts[i]) <= 100);
    assert_int_equal(r.n_parts, 3);
    assert_string_equal(r.parts[0], "1/3 MX21 GMP-0412: Go to the s136 suite at Park House. Not A&E.");
    assert_string_equal(r.parts[2], "3/3 MX21 GMP-0412: Tell them he is autistic and needs a quiet room.");
}

static void test_latin1_roundtrip(void **state)
{
    (void)state;
    char l1[64], u8[128];
    long n = relay_utf8_to_latin1("caf\xC3\xA9 \xC2\xBD", l1, sizeof l1);
    assert_int_equal(n, 6);
    assert_int_equal((unsigned char)l1[3], 0xE9);
    relay_latin1_to_utf8((const unsigned char *)l1, (size_t)n, u8, sizeof u8);
    assert_string_equal(u8, "caf\xC3\xA9 \xC2\xBD");
}

/* ------------------------------------------------------------ properties */

static uint64_t rng_state;
static uint32_t rnd(void)
{
    /* xorshift64*: seeded, so a failure is reproducible from the seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static const char *const WORDS[] = {
    "calm", "officer", "s136", "suite", "A&E", "crisis", "team", "he", "she", "is", "known", "to", "CMHT",
    "do", "not", "restrain", "ambulance", "voluntary", "assessment", "place", "of", "safety", "Park", "House",
    "brother", "knife", "talk", "slowly", "quiet", "room", "care", "coordinator", "Dr", "O'Neill", "2mg",
    "overdose", "paracetamol", "caf\xC3\xA9", "na\xC3\xAFve", "24/7", "07700900123", "wait", "risk", "high",
};
static const char *const SEPS[] = {
    " ", " ", " ", " ", " ", " ", ", ", ". ", "; ", "! ", "? ", ": ", "\n", "\r\n", "  ", "\t",
    " \xE2\x80\x93 ", "\xE2\x80\x99", " \xF0\x9F\x9A\x91 ", "\xE2\x80\x9C", "\xE2\x80\x9D ", "\xE2\x80\xA6 ",
    "\xC2\xA0", "\x01", " \xFF ",
};

static void gen_text(char *out, size_t cap, unsigned target_words)
{
    size_t w = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < target_words; i++) {
        const char *word;
        char longword[64];
        if (rnd() % 97 == 0) { /* now and then a long token (a reference, a URL) */
            unsigned len = 10 + rnd() % 40;
            for (unsigned k = 0; k < len; k++)
                longword[k] = (char)('a' + rnd() % 26);
            longword[len] = '\0';
            word = longword;
        } else {
            word = WORDS[rnd() % (sizeof WORDS / sizeof WORDS[0])];
        }
        const char *sep = SEPS[rnd() % (sizeof SEPS / sizeof SEPS[0])];
        size_t a = strlen(word), b = strlen(sep);
        if (w + a + b + 1 >= cap)
            break;
        memcpy(out + w, word, a);
        w += a;
        memcpy(out + w, sep, b);
        w += b;
        out[w] = '\0';
    }
}

/* ---- an independent reference: the fewest parts any split could use */

/* 2 after ". ! ? ; :", 1 after ",", 0 elsewhere (at a space k of L). */
static int ref_strength(const unsigned char *L, size_t N, size_t k)
{
    if (k == 0 || k >= N || L[k] != ' ')
        return 0;
    return strchr(".!?;:", L[k - 1]) ? 2 : L[k - 1] == ',' ? 1 : 0;
}

/* The fewest parts of at most `room` characters into which L can be cut at
 * breaks of at least `level` (dynamic programming over every cut, not the
 * greedy of split.c); UINT32_MAX when no cut works. */
static unsigned ref_min_parts(const unsigned char *L, size_t N, size_t room, int level)
{
    static unsigned best[4097];
    size_t starts[4097];
    size_t ns = 0;
    starts[ns++] = 0;
    for (size_t k = 1; k < N; k++)
        if (ref_strength(L, N, k) >= level)
            starts[ns++] = k + 1;
    for (size_t i = 0; i < ns; i++)
        best[i] = UINT32_MAX;
    best[0] = 0;
    unsigned answer = UINT32_MAX;
    for (size_t i = 0; i < ns; i++) {
        if (best[i] == UINT32_MAX)
            continue;
        size_t a = starts[i];
        if (N - a <= room && best[i] + 1 < answer)
            answer = best[i] + 1;
        for (size_t j = i + 1; j < ns; j++) {
            size_t end = starts[j] - 1; /* the space */
            if (end - a > room)
                break;
            if (best[i] + 1 < best[j])
                best[j] = best[i] + 1;
        }
    }
    return answer;
}

static unsigned n_broke;

static void check_properties(const char *text, const relay_split_opts_t *o, unsigned *n_ok, unsigned *n_refused)
{
    static relay_split_result_t r;
    relay_split_status_t st = relay_split(text, o, &r);
    unsigned limit = o->max_chars ? o->max_chars : 140;
    unsigned max_parts = o->max_parts ? o->max_parts : 3;

    unsigned char L[4096];
    long nl = relay_utf8_to_latin1(r.normalised, (char *)L, sizeof L);
    assert_true(nl >= 0);
    unsigned by_sentence = ref_min_parts(L, (size_t)nl, r.room, 2);
    unsigned by_clause = ref_min_parts(L, (size_t)nl, r.room, 1);

    if (st != RELAY_SPLIT_OK) {
        (*n_refused)++;
        assert_int_equal(r.n_parts, 0);
        if (st != RELAY_SPLIT_EMPTY && !(st == RELAY_SPLIT_TOO_LONG || st == RELAY_SPLIT_INSTRUCTION_TOO_LONG))
            fail_msg("unexpected status %d for [%s]", st, text);
        /* refused only when no split at clause breaks fits in max_parts */
        if (st != RELAY_SPLIT_EMPTY && by_clause <= max_parts)
            fail_msg("refused (%s) but %u parts would do: [%s]", relay_split_status_str(st), by_clause, r.normalised);
        return;
    }
    (*n_ok)++;
    n_broke += r.broke_instruction;
    assert_true(r.n_parts >= 1 && r.n_parts <= max_parts);
    /* never more parts than the best split at clause breaks... */
    assert_true(by_clause <= r.n_parts);
    /* ...and whole instructions whenever whole instructions can fit */
    if (by_sentence <= max_parts) {
        if (r.broke_instruction)
            fail_msg("broke an instruction though %u parts of whole ones fit: [%s]", by_sentence, r.normalised);
    }
    char joined[8192] = "";
    size_t off = 0; /* byte offset of the current body in the normalised text */
    size_t loff = 0; /* the same in Latin-1 characters */
    for (unsigned i = 0; i < r.n_parts; i++) {
        const char *part = r.parts[i];
        /* every part within the limit, numbered, addressed and referenced */
        if (relay_utf8_chars(part) > limit) {
            fail_msg("part %u of %u has %zu chars > %u: [%s] (text [%s])", i + 1, r.n_parts, relay_utf8_chars(part), limit,
                     part, text);
        }
        char want[64];
        snprintf(want, sizeof want, "%u/%u MX21 GMP-0412: ", i + 1, r.n_parts);
        assert_memory_equal(part, want, strlen(want));
        const char *body = part + r.body_off[i];
        size_t bl = strlen(body);
        assert_true(bl > 0);
        /* only ISO-8859-1 printable characters */
        for (const unsigned char *p = (const unsigned char *)part; *p; p++) {
            if (*p < 0x80)
                assert_true(*p >= 0x20 && *p < 0x7F);
            else if (*p == 0xC2)
                assert_true(p[1] >= 0xA1 && p[1] <= 0xBF);
            else if (*p == 0xC3)
                assert_true(p[1] >= 0x80 && p[1] <= 0xBF);
            else if ((*p & 0xC0) != 0x80)
                fail_msg("byte 0x%02x is not Latin-1 radio text in [%s]", *p, part);
        }
        /* the body is the next stretch of the normalised text... */
        assert_memory_equal(r.normalised + off, body, bl);
        char nextc = r.normalised[off + bl];
        /* ...ending where the text ends or at a space: never inside a word */
        if (!(nextc == '\0' || nextc == ' '))
            fail_msg("part %u ends inside a word: [%s] next [%c]", i + 1, body, nextc);
        assert_true(body[0] != ' ' && body[bl - 1] != ' ');
        /* and never inside an instruction: at a sentence or clause end */
        size_t lend = loff + relay_utf8_chars(body);
        if (nextc == ' ') {
            int s = ref_strength(L, (size_t)nl, lend);
            if (s == 0)
                fail_msg("part %u ends inside an instruction: [%s]", i + 1, body);
            if (s == 1 && !r.broke_instruction)
                fail_msg("part %u ends at a comma but broke_instruction is not set: [%s]", i + 1, body);
        }
        if (i)
            strcat(joined, " ");
        strcat(joined, body);
        off += bl + (nextc == ' ');
        loff = lend + (nextc == ' ');
    }
    /* the parts rejoin to the normalised text */
    assert_string_equal(joined, r.normalised);
    /* and the normalised text is itself a fixed point */
    char again[4096];
    relay_normalise(r.normalised, strlen(r.normalised), again, sizeof again);
    assert_string_equal(again, r.normalised);
}

static void test_property_many_texts(void **state)
{
    (void)state;
    const char *seed_env = getenv("SPLIT_SEED");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : 20261123ULL;
    rng_state = seed ? seed : 1;
    unsigned ok = 0, refused = 0;
    static const unsigned limits[] = { 140, 140, 120, 100, 60 };
    char text[2048];
    for (unsigned i = 0; i < 20000; i++) {
        gen_text(text, sizeof text, 1 + rnd() % 90);
        relay_split_opts_t o = OPTS;
        o.max_chars = limits[rnd() % 5];
        check_properties(text, &o, &ok, &refused);
    }
    print_message("split properties: seed %llu, %u split (%u at a comma), %u refused\n", (unsigned long long)seed, ok,
                  n_broke, refused);
    /* the generator must exercise both outcomes, or the test proves little */
    assert_true(ok > 5000);
    assert_true(refused > 500);
    assert_true(n_broke > 100);
}

/* Whenever every instruction fits in one part, no instruction is broken. */
static void test_property_instructions_never_broken_when_they_fit(void **state)
{
    (void)state;
    rng_state = 77;
    char text[2048];
    unsigned checked = 0;
    for (unsigned i = 0; i < 5000; i++) {
        /* short sentences only */
        text[0] = '\0';
        unsigned n = 1 + rnd() % 12;
        for (unsigned s = 0; s < n; s++) {
            unsigned words = 1 + rnd() % 12;
            for (unsigned k = 0; k < words; k++) {
                strcat(text, WORDS[rnd() % (sizeof WORDS / sizeof WORDS[0])]);
                strcat(text, k + 1 < words ? " " : "");
            }
            strcat(text, (rnd() & 1) ? ". " : "; ");
        }
        relay_split_result_t r;
        if (relay_split(text, &OPTS, &r) != RELAY_SPLIT_OK)
            continue;
        checked++;
        assert_false(r.broke_instruction);
        for (unsigned p = 0; p < r.n_parts; p++) {
            const char *body = r.parts[p] + r.body_off[p];
            char last = body[strlen(body) - 1];
            assert_true(last == '.' || last == ';');
        }
    }
    assert_true(checked > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise_quotes_dashes_emoji),
        cmocka_unit_test(test_normalise_whitespace_and_breaks),
        cmocka_unit_test(test_short_advice_one_part),
        cmocka_unit_test(test_instructions_kept_whole),
        cmocka_unit_test(test_too_long_refused_not_cut),
        cmocka_unit_test(test_word_too_long_and_empty),
        cmocka_unit_test(test_long_instruction_broken_at_a_clause),
        cmocka_unit_test(test_lower_limit),
        cmocka_unit_test(test_latin1_roundtrip),
        cmocka_unit_test(test_property_many_texts),
        cmocka_unit_test(test_property_instructions_never_broken_when_they_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
