/* lines_test.c -- the dispatcher line protocol's parser
 * (client/relay/lines.c): every command, its errors, and a pass of random
 * bytes that must never crash or accept control characters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay/lines.h"

static int parse(const char *s, line_cmd_t *c, char *err)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", s);
    return lines_parse(buf, c, err, 256);
}

static void test_raise(void **state)
{
    (void)state;
    line_cmd_t c;
    char err[256];
    assert_int_equal(parse("raise GMP-0412 Manchester MX21 2 :Male on the bridge, known?\r", &c, err), 0);
    assert_int_equal(c.kind, LC_RAISE);
    assert_string_equal(c.police_ref, "GMP-0412");
    assert_string_equal(c.borough, "Manchester");
    assert_string_equal(c.callsign, "MX21");
    assert_int_equal(c.priority, 2);
    assert_string_equal(c.text, "Male on the bridge, known?");
    /* errors name the problem and carry a code */
    assert_int_equal(parse("RAISE GMP-0412 Manchester MX21 :no priority", &c, err), -1);
    assert_string_equal(err, "SYNTAX usage: RAISE <police_ref> <borough> <callsign> <priority 1-4> :<question>");
    assert_int_equal(parse("RAISE GMP-0412 Manchester MX21 5 :q", &c, err), -1);
    assert_true(strncmp(err, "BAD_ARG priority must be 1", 26) == 0);
    assert_int_equal(parse("RAISE GMP-0412 Manchester MX21 1 :", &c, err), -1);
    assert_true(strncmp(err, "SYNTAX RAISE needs the officer's question", 40) == 0);
    char longref[200];
    memset(longref, 'R', 100);
    longref[100] = '\0';
    char line[400];
    snprintf(line, sizeof line, "RAISE %s Manchester MX21 1 :q", longref);
    assert_int_equal(parse(line, &c, err), -1);
    assert_true(strncmp(err, "BAD_ARG", 7) == 0);
}

static void test_say_readback_status(void **state)
{
    (void)state;
    line_cmd_t c;
    char err[256];
    assert_int_equal(parse("SAY 12 :he is calmer now: sitting down", &c, err), 0);
    assert_int_equal(c.kind, LC_SAY);
    assert_string_equal(c.incident, "12");
    assert_string_equal(c.text, "he is calmer now: sitting down");
    assert_int_equal(parse("SAY 12 he is calmer", &c, err), -1);
    assert_true(strncmp(err, "SYNTAX usage: SAY", 17) == 0);
    assert_int_equal(parse("READBACK GMP-0412 all", &c, err), 0);
    assert_int_equal(c.kind, LC_READBACK);
    assert_int_equal(c.part, 0);
    assert_string_equal(c.text, "");
    assert_int_equal(parse("readback 7 2 :read back word for word", &c, err), 0);
    assert_int_equal(c.part, 2);
    assert_string_equal(c.text, "read back word for word");
    assert_int_equal(parse("READBACK 7 4", &c, err), -1);
    assert_int_equal(parse("READBACK 7 all note", &c, err), -1);
    assert_int_equal(parse("STATUS 7", &c, err), 0);
    assert_int_equal(c.kind, LC_STATUS);
    assert_int_equal(parse("STATUS", &c, err), -1);
    assert_int_equal(parse("STATUS 7 8", &c, err), -1);
    assert_string_equal(err, "SYNTAX STATUS takes one argument");
}

static void test_simple_commands(void **state)
{
    (void)state;
    line_cmd_t c;
    char err[256];
    static const struct {
        const char *in;
        line_kind_t kind;
    } ok[] = {
        { "", LC_NONE },          { "   \t ", LC_NONE }, { "LIST", LC_LIST },    { "ping", LC_PING },
        { "HUMAN", LC_HUMAN },    { "machine", LC_MACHINE }, { "HELP", LC_HELP }, { "?", LC_HELP },
        { "QUIT", LC_QUIT },      { "exit", LC_QUIT },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(parse(ok[i].in, &c, err), 0);
        assert_int_equal(c.kind, ok[i].kind);
    }
    assert_int_equal(parse("PING now", &c, err), -1);
    assert_string_equal(err, "SYNTAX PING takes no arguments");
    assert_int_equal(parse("FROB 1", &c, err), -1);
    assert_string_equal(err, "UNKNOWN_COMMAND 'FROB' is not a command; type HELP");
    assert_int_equal(parse(":hello", &c, err), -1);
    assert_int_equal(parse("SAY 1 :a\x01" "b", &c, err), -1);
    assert_string_equal(err, "SYNTAX control characters are not allowed in a line");
    assert_non_null(strstr(lines_help(), "READBACK <incident> <part|all>"));
}

static uint64_t rs = 99;
static uint32_t rnd(void)
{
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return (uint32_t)((rs * 2685821657736338717ULL) >> 32);
}

/* Random lines built from protocol-ish pieces and raw bytes: the parser
 * answers 0 or -1 with a coded error, and an accepted command's fields are
 * bounded and free of control characters. */
static void test_random_lines(void **state)
{
    (void)state;
    static const char *const PIECES[] = { "RAISE", "SAY", "READBACK", "STATUS", "LIST", "PING", " ", " ", ":",
                                          "all", "1", "2", "4", "9", "MX21", "GMP-1", "Manchester", "\t", "\xC3\xA9",
                                          "\x7f", "\x01", "\r", "x" };
    unsigned accepted = 0;
    for (int i = 0; i < 50000; i++) {
        char line[300];
        size_t w = 0;
        unsigned n = rnd() % 12;
        for (unsigned k = 0; k < n; k++) {
            const char *p = PIECES[rnd() % (sizeof PIECES / sizeof PIECES[0])];
            size_t l = strlen(p);
            if (w + l + 1 >= sizeof line)
                break;
            memcpy(line + w, p, l);
            w += l;
        }
        line[w] = '\0';
        line_cmd_t c;
        char err[256];
        int rc = lines_parse(line, &c, err, sizeof err);
        if (rc == 0) {
            accepted++;
            for (const unsigned char *t = (const unsigned char *)c.text; *t; t++)
                assert_true(*t >= 0x20 || *t == '\t');
            assert_true(c.kind != LC_RAISE || (c.priority >= 1 && c.priority <= 4));
        } else {
            assert_int_equal(rc, -1);
            assert_true(strncmp(err, "SYNTAX", 6) == 0 || strncmp(err, "BAD_ARG", 7) == 0 ||
                        strncmp(err, "UNKNOWN_COMMAND", 15) == 0);
        }
    }
    assert_true(accepted > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raise),
        cmocka_unit_test(test_say_readback_status),
        cmocka_unit_test(test_simple_commands),
        cmocka_unit_test(test_random_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
