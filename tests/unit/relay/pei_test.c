/* pei_test.c -- the TETRA PEI state machine (client/relay/pei.c): bytes in,
 * commands and events out, with a fixed clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay/pei.h"

typedef struct rec {
    char out[8192];
    size_t out_len;
    bool write_fails;
    pei_event_t ev[32];
    char texts[32][600];
    char details[32][128];
    int n_ev;
} rec_t;

static int rec_write(void *ctx, const char *buf, size_t n)
{
    rec_t *r = ctx;
    if (r->write_fails)
        return -1;
    assert_true(r->out_len + n < sizeof r->out);
    memcpy(r->out + r->out_len, buf, n);
    r->out_len += n;
    r->out[r->out_len] = '\0';
    return 0;
}

static void rec_event(void *ctx, const pei_event_t *ev)
{
    rec_t *r = ctx;
    assert_true(r->n_ev < 32);
    r->ev[r->n_ev] = *ev;
    snprintf(r->texts[r->n_ev], sizeof r->texts[0], "%s", ev->text ? ev->text : "");
    snprintf(r->details[r->n_ev], sizeof r->details[0], "%s", ev->detail ? ev->detail : "");
    r->n_ev++;
}

static void feed(pei_t *p, const char *s)
{
    pei_feed(p, 1000, s, strlen(s));
}

static void take_out(rec_t *r, const char *want)
{
    assert_string_equal(r->out, want);
    r->out_len = 0;
    r->out[0] = '\0';
}

/* A machine initialised and idle. */
static void ready(pei_t *p, rec_t *r)
{
    memset(r, 0, sizeof *r);
    pei_init(p, rec_write, rec_event, r);
    pei_reset(p, 0);
    take_out(r, "ATE0\r");
    feed(p, "ATE0\r\r\nOK\r\n"); /* echo, then OK */
    take_out(r, "AT+CTSP=1,3,130\r");
    feed(p, "\r\nERROR\r\n");   /* tolerated */
    take_out(r, "AT+CTSDS=12,0\r");
    feed(p, "\r\nOK\r\n");
    assert_int_equal(r->n_ev, 1);
    assert_int_equal(r->ev[0].kind, PEI_EV_READY);
    assert_true(pei_idle(p));
    r->n_ev = 0;
}

static void test_init_and_send(void **state)
{
    (void)state;
    pei_t p;
    rec_t r;
    ready(&p, &r);
    int tag;
    assert_int_equal(pei_send(&p, 1000, 1234567, 7, "1/1 MX21: caf\xC3\xA9", &tag), 0);
    /* 4 header bytes + 14 Latin-1 bytes = 144 bits */
    take_out(&r, "AT+CMGS=1234567,144\r\n820C0701" "312F31204D5832313A20636166E9" "\x1a");
    assert_false(pei_idle(&p));
    assert_int_equal(pei_send(&p, 1000, 1234567, 8, "x", &tag), -1); /* one at a time */
    feed(&p, "\r\n+CMGS: 42,0,7\r\n");
    assert_int_equal(r.n_ev, 0);
    feed(&p, "OK\r\n");
    assert_int_equal(r.n_ev, 1);
    assert_int_equal(r.ev[0].kind, PEI_EV_SENT);
    assert_ptr_equal(r.ev[0].tag, &tag);
    assert_int_equal(r.ev[0].sds_instance, 42);
    assert_int_equal(r.ev[0].msgref, 7);
    assert_true(pei_idle(&p));
}

static void test_send_error_and_cme(void **state)
{
    (void)state;
    pei_t p;
    rec_t r;
    ready(&p, &r);
    int tag;
    assert_int_equal(pei_send(&p, 1000, 55, 1, "hello", &tag), 0);
    feed(&p, "+CME ERROR: 35\r\n");
    assert_int_equal(r.ev[0].kind, PEI_EV_SEND_FAILED);
    assert_string_equal(r.details[0], "+CME ERROR: 35");
    assert_true(pei_idle(&p));
    assert_int_equal(pei_send(&p, 1000, 55, 2, "hello", &tag), 0);
    feed(&p, "ERROR\r\n");
    assert_int_equal(r.ev[1].kind, PEI_EV_SEND_FAILED);
    assert_int_equal(pei_send(&p, 1000, 0x1000000, 2, "hello", &tag), -2);
}

static void test_incoming_text_and_reports(void **state)
{
    (void)state;
    pei_t p;
    rec_t r;
    ready(&p, &r);
    /* an officer's text "Need advice" with a time stamp flag, Latin-1 e-acute */
    feed(&p, "\r\n+CTSDSR: 12,2001001,0,1000001,0,88\r\n8200058100000041E92062\r\n");
    assert_int_equal(r.n_ev, 1);
    assert_int_equal(r.ev[0].kind, PEI_EV_INCOMING);
    assert_int_equal(r.ev[0].issi, 2001001);
    assert_string_equal(r.texts[0], "A\xC3\xA9 b");
    /* simple text messaging */
    feed(&p, "+CTSDSR: 12,2001001,0,1000001,0,40\r\n0201486921\r\n");
    assert_int_equal(r.ev[1].kind, PEI_EV_INCOMING);
    assert_string_equal(r.texts[1], "Hi!");
    /* a delivery report: received, then read, for message reference 7 */
    feed(&p, "+CTSDSR: 12,2001001,0,1000001,0,32\r\n82100007\r\n+CTSDSR: 12,2001001,0,1000001,0,32\r\n82100207\r\n");
    assert_int_equal(r.ev[2].kind, PEI_EV_REPORT);
    assert_int_equal(r.ev[2].status, 0);
    assert_int_equal(r.ev[2].msgref, 7);
    assert_int_equal(r.ev[3].status, 2);
    assert_int_equal(pei_ds_class(0x00), PEI_DS_RECEIVED);
    assert_int_equal(pei_ds_class(0x02), PEI_DS_READ);
    assert_int_equal(pei_ds_class(0x4B), PEI_DS_PERMANENT);
    assert_int_equal(pei_ds_class(0x4D), PEI_DS_PERMANENT);
    assert_int_equal(pei_ds_class(0x42), PEI_DS_TEMPORARY);
    assert_int_equal(pei_ds_class(0x21), PEI_DS_TEMPORARY);
    assert_string_equal(pei_ds_str(0x4B), "destination not registered");
}

static void test_garbage_and_split_reads(void **state)
{
    (void)state;
    pei_t p;
    rec_t r;
    ready(&p, &r);
    feed(&p, "\x07\xff#@!noise\r\n");
    assert_int_equal(r.n_ev, 1);
    assert_int_equal(r.ev[0].kind, PEI_EV_GARBAGE);
    /* an over-long line */
    char big[3000];
    memset(big, 'Z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    feed(&p, big);
    feed(&p, "\r\n");
    assert_int_equal(r.ev[1].kind, PEI_EV_GARBAGE);
    /* +CTSDSR whose PDU line is not hex: reported, the machine carries on */
    feed(&p, "+CTSDSR: 12,5,0,6,0,32\r\nOK\r\n");
    assert_int_equal(r.ev[2].kind, PEI_EV_GARBAGE);
    assert_int_equal(r.ev[3].kind, PEI_EV_GARBAGE); /* OK answering nothing */
    /* byte-at-a-time delivery still parses */
    int tag;
    assert_int_equal(pei_send(&p, 1000, 9, 3, "x", &tag), 0);
    const char *ans = "\r\n+CMGS: 1\r\nOK\r\n";
    for (const char *c = ans; *c; c++)
        pei_feed(&p, 1000, c, 1);
    assert_int_equal(r.ev[4].kind, PEI_EV_SENT);
    /* unsolicited indications of other services are ignored, not garbage */
    feed(&p, "+CTXG: 1,3,0,0,0\r\nRING\r\n");
    assert_int_equal(r.n_ev, 5);
    /* a "> " data prompt, however split, does not glue to the answer */
    assert_int_equal(pei_send(&p, 1000, 9, 4, "x", &tag), 0);
    feed(&p, ">");
    feed(&p, " +CMGS: 2\r\n");
    feed(&p, "> OK\r\n");
    assert_int_equal(r.ev[5].kind, PEI_EV_SENT);
    assert_int_equal(r.ev[5].sds_instance, 2);
    assert_int_equal(r.n_ev, 6);
}

static void test_timeout_and_down(void **state)
{
    (void)state;
    pei_t p;
    rec_t r;
    ready(&p, &r);
    int tag;
    assert_int_equal(pei_send(&p, 1000, 9, 3, "x", &tag), 0);
    r.out_len = 0;
    pei_tick(&p, 1000 + PEI_CMD_TIMEOUT_MS - 1);
    assert_int_equal(r.n_ev, 0);
    pei_tick(&p, 1000 + PEI_CMD_TIMEOUT_MS);
    assert_int_equal(r.ev[0].kind, PEI_EV_SEND_FAILED);
    assert_string_equal(r.details[0], "timeout");
    /* and the terminal is initialised again */
    assert_int_equal(p.state, PEI_ST_INIT);
    assert_string_equal(r.out, "ATE0\r");
    /* init timing out */
    pei_tick(&p, 1000 + 2 * PEI_CMD_TIMEOUT_MS);
    assert_int_equal(r.ev[1].kind, PEI_EV_INIT_FAILED);
    /* a send in flight when the line goes down fails with the reason */
    ready(&p, &r);
    assert_int_equal(pei_send(&p, 1000, 9, 4, "x", &tag), 0);
    pei_down(&p, "device gone");
    assert_int_equal(r.ev[0].kind, PEI_EV_SEND_FAILED);
    assert_string_equal(r.details[0], "device gone");
    assert_false(pei_idle(&p));
    /* a write failure is reported to the caller */
    ready(&p, &r);
    r.write_fails = true;
    assert_int_equal(pei_send(&p, 1000, 9, 5, "x", &tag), -3);
    assert_true(pei_idle(&p));
    /* an init ERROR other than CTSP fails the init */
    memset(&r, 0, sizeof r);
    pei_init(&p, rec_write, rec_event, &r);
    pei_reset(&p, 0);
    feed(&p, "ERROR\r\n");
    assert_int_equal(r.ev[0].kind, PEI_EV_INIT_FAILED);
}

/* The same conversation cut in two at every byte boundary gives the same
 * events. */
static void test_every_split_point(void **state)
{
    (void)state;
    const char *script = "\r\n+CMGS: 17,0,9\r\nOK\r\n"
                         "+CTSDSR: 12,2001001,0,1000001,0,56\r\n8200090148692E\r\n"
                         "+CTSDSR: 12,2001001,0,1000001,0,32\r\n82100209\r\n"
                         "\x01garbage\r\n";
    size_t n = strlen(script);
    for (size_t cut = 0; cut <= n; cut++) {
        pei_t p;
        rec_t r;
        ready(&p, &r);
        int tag;
        assert_int_equal(pei_send(&p, 1000, 9, 9, "x", &tag), 0);
        pei_feed(&p, 1000, script, cut);
        pei_feed(&p, 1000, script + cut, n - cut);
        assert_int_equal(r.n_ev, 4);
        assert_int_equal(r.ev[0].kind, PEI_EV_SENT);
        assert_int_equal(r.ev[0].sds_instance, 17);
        assert_int_equal(r.ev[1].kind, PEI_EV_INCOMING);
        assert_string_equal(r.texts[1], "Hi.");
        assert_int_equal(r.ev[2].kind, PEI_EV_REPORT);
        assert_int_equal(r.ev[2].status, 2);
        assert_int_equal(r.ev[2].msgref, 9);
        assert_int_equal(r.ev[3].kind, PEI_EV_GARBAGE);
    }
}

static void test_build_transfer_hex(void **state)
{
    (void)state;
    char hex[64];
    assert_int_equal(pei_build_transfer_hex(0xAB, (const unsigned char *)"Hi", 2, hex, sizeof hex), 48);
    assert_string_equal(hex, "820CAB014869");
    assert_int_equal(pei_build_transfer_hex(1, (const unsigned char *)"Hi", 2, hex, 5), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_send),
        cmocka_unit_test(test_send_error_and_cme),
        cmocka_unit_test(test_incoming_text_and_reports),
        cmocka_unit_test(test_garbage_and_split_reads),
        cmocka_unit_test(test_timeout_and_down),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_build_transfer_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
