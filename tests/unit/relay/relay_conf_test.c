/* relay_conf_test.c -- the relay's configuration (client/relay/relay_conf.c):
 * values, defaults, and errors that name the file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "relay/relay_conf.h"

static relay_conf_t conf;

static int parse(const char *text, char *err)
{
    relay_conf_defaults(&conf);
    return relay_conf_parse(&conf, "relay.ini", text, err, 256);
}

static void test_full_file(void **state)
{
    (void)state;
    char err[256];
    const char *text = "; the radio desk\n"
                       "[hub]\nhost = 10.0.0.5\nport = 7443\ntoken_file = relay.token\n"
                       "[relay]\nlisten_port = 0\n"
                       "[radio]\ndevice = /dev/ttyUSB0\nmax_part_chars = 100 ; a gateway that cuts\n"
                       "rate_per_minute = 4\nrate_burst = 2\ndefault_borough = Salford\ndefault_priority = 1\n"
                       "[callsigns]\nMX21 = 2001001\nmx22 = 2001002\n";
    assert_int_equal(parse(text, err), 0);
    assert_string_equal(conf.hub_host, "10.0.0.5");
    assert_int_equal(conf.hub_port, 7443);
    assert_int_equal(conf.listen_port, 0);
    assert_string_equal(conf.listen_host, "127.0.0.1");
    assert_int_equal(conf.max_part_chars, 100);
    assert_int_equal(conf.rate_per_minute, 4);
    assert_int_equal(conf.retry_base_ms, 2000); /* default */
    assert_int_equal(conf.baud, 115200);
    assert_int_equal(conf.n_callsigns, 2);
    assert_int_equal(relay_conf_callsign(&conf, "mx21")->issi, 2001001);
    assert_string_equal(relay_conf_issi(&conf, 2001002)->name, "mx22");
    assert_int_equal(relay_conf_issi(&conf, 2001002)->line, 17);
    assert_null(relay_conf_issi(&conf, 5));
}

static void test_errors_name_file_and_line(void **state)
{
    (void)state;
    char err[256];
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "[hub]\nport = 1\n[radio]\nmax_part_chars = 300\n",
          "relay.ini:4: [radio] max_part_chars: must be a whole number 40..140 (got '300')" },
        { "[hub]\nport = 1\nprot = 2\n", "relay.ini:3: [hub] prot: unknown key" },
        { "[hub]\nport = 1\n[radoi]\n", "relay.ini:3: [radoi]: unknown section (hub, relay, radio or callsigns)" },
        { "[hub]\nport = 1\n[callsigns]\nMX21 = 12\nMX22 = 12\n",
          "relay.ini:5: [callsigns] MX22: ISSI 12 is already MX21's (line 4): a radio has one callsign" },
        { "[hub]\nport = 1\n[callsigns]\nMX21 = 12\nmx21 = 13\n",
          "relay.ini:5: [callsigns] mx21: callsign listed twice (first at line 4)" },
        { "[hub]\nport = 1\n[callsigns]\nMX 21 = 99999999\n",
          "relay.ini:4: [callsigns] MX 21: a callsign has letters, digits, '-', '_' or '/' only" },
        { "[hub]\nport = 1\n[callsigns]\nMX21 = 16777216\n",
          "relay.ini:4: [callsigns] MX21: an ISSI is a number 1..16777215 (got '16777216')" },
        { "[hub]\nport = -1\n", "relay.ini:2: [hub] port: must be a whole number 1..65535 (got '-1')" },
        { "[hub]\nport = 1\nthis is not ini\n", "relay.ini:3: syntax error: expected [section], key = value or a comment" },
        { "[relay]\nlisten_port = 1\n", "relay.ini: [hub] port is required" },
        { "[hub]\nport = 1\n[radio]\ndevice = /dev/x\n",
          "relay.ini: [radio] default_borough is required with a device (officers' texts raise incidents)" },
        { "[hub]\nport = 1\n[radio]\nbaud = 10000\n",
          "relay.ini: [radio] baud 10000 is not one of 9600, 19200, 38400, 57600, 115200" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(parse(cases[i].text, err), -1);
        assert_string_equal(err, cases[i].want);
    }
    /* a line longer than libinih's buffer is an error, not silently cut */
    char big[600];
    snprintf(big, sizeof big, "[hub]\nport = 1\nhost = %0300d\n", 1);
    assert_int_equal(parse(big, err), -1);
    assert_string_equal(err, "relay.ini:3: the line is 307 characters long; the limit is 197");
}

static void test_load_token(void **state)
{
    (void)state;
    char dir[] = "/tmp/relay-conf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char ini[128], tok[128], err[256];
    snprintf(ini, sizeof ini, "%s/relay.ini", dir);
    snprintf(tok, sizeof tok, "%s/relay.token", dir);
    FILE *f = fopen(ini, "w");
    fputs("[hub]\nport = 9\ntoken_file = relay.token\n", f);
    fclose(f);
    assert_int_equal(relay_conf_load(&conf, ini, err, sizeof err), -1);
    assert_non_null(strstr(err, "relay.token"));
    f = fopen(tok, "w");
    fputs("tok-secret\n", f);
    fclose(f);
    assert_int_equal(relay_conf_load(&conf, ini, err, sizeof err), 0);
    assert_string_equal(conf.token, "tok-secret");
    unlink(tok);
    unlink(ini);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_load_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
