/* pei.c -- see pei.h. Pure: no I/O except through the write callback. */
#include "pei.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "split.h"

static const char *const INIT_CMDS[] = { "ATE0\r", "AT+CTSP=1,3,130\r", "AT+CTSDS=12,0\r" };
#define N_INIT (int)(sizeof INIT_CMDS / sizeof INIT_CMDS[0])

static void emit(pei_t *p, pei_event_t ev)
{
    if (p->on_event)
        p->on_event(p->ctx, &ev);
}

void pei_init(pei_t *p, int (*write)(void *, const char *, size_t), void (*on_event)(void *, const pei_event_t *),
              void *ctx)
{
    memset(p, 0, sizeof *p);
    p->write = write;
    p->on_event = on_event;
    p->ctx = ctx;
    p->cmd_timeout_ms = PEI_CMD_TIMEOUT_MS;
}

static void fail_send(pei_t *p, const char *why)
{
    if (p->state != PEI_ST_SENDING)
        return;
    void *tag = p->tag;
    uint8_t ref = p->msgref;
    p->state = PEI_ST_IDLE;
    p->tag = NULL;
    emit(p, (pei_event_t){ .kind = PEI_EV_SEND_FAILED, .tag = tag, .msgref = ref, .detail = why });
}

static int put(pei_t *p, const char *s, size_t n)
{
    return p->write ? p->write(p->ctx, s, n) : -1;
}

static void init_step(pei_t *p, int64_t now)
{
    if (p->init_step >= N_INIT) {
        p->state = PEI_ST_IDLE;
        emit(p, (pei_event_t){ .kind = PEI_EV_READY });
        return;
    }
    const char *cmd = INIT_CMDS[p->init_step];
    p->cmd_at_ms = now;
    if (put(p, cmd, strlen(cmd)) < 0) {
        p->state = PEI_ST_DOWN;
        emit(p, (pei_event_t){ .kind = PEI_EV_INIT_FAILED, .detail = "write failed" });
    }
}

void pei_reset(pei_t *p, int64_t now_ms)
{
    fail_send(p, "reset");
    p->len = 0;
    p->discarding = p->expect_pdu = p->prompt = false;
    p->state = PEI_ST_INIT;
    p->init_step = 0;
    init_step(p, now_ms);
}

void pei_down(pei_t *p, const char *why)
{
    fail_send(p, why ? why : "serial line down");
    p->state = PEI_ST_DOWN;
    p->len = 0;
    p->discarding = p->expect_pdu = p->prompt = false;
}

bool pei_idle(const pei_t *p)
{
    return p->state == PEI_ST_IDLE;
}

/* ------------------------------------------------------------ PDUs */

long pei_build_transfer_hex(uint8_t msgref, const unsigned char *latin1, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char hdr[4] = { PEI_PROTO_TEXT_SDSTL, 0x0C, msgref, 0x01 };
    size_t total = 4 + n;
    if (total * 2 + 1 > cap)
        return -1;
    size_t w = 0;
    for (size_t i = 0; i < total; i++) {
        unsigned char b = i < 4 ? hdr[i] : latin1[i - 4];
        out[w++] = hex[b >> 4];
        out[w++] = hex[b & 15];
    }
    out[w] = '\0';
    return (long)(total * 8);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = toupper(c);
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex text into bytes; returns the count or -1 when it is not hex. */
static long unhex(const char *s, unsigned char *out, size_t cap)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int a = hexval((unsigned char)s[i]), b = hexval((unsigned char)s[i + 1]);
        if (a < 0 || b < 0)
            return -1;
        out[i / 2] = (unsigned char)(a << 4 | b);
    }
    return (long)(n / 2);
}

int pei_send(pei_t *p, int64_t now_ms, uint32_t issi, uint8_t msgref, const char *text, void *tag)
{
    if (p->state != PEI_ST_IDLE)
        return -1;
    if (issi == 0 || issi > 0xFFFFFF)
        return -2;
    char l1[PEI_TEXT_MAX + 1];
    long n = relay_utf8_to_latin1(text, l1, sizeof l1);
    if (n < 0)
        return -2;
    char pdu[2 * (PEI_TEXT_MAX + 4) + 1];
    long bits = pei_build_transfer_hex(msgref, (const unsigned char *)l1, (size_t)n, pdu, sizeof pdu);
    if (bits < 0)
        return -2;
    char cmd[64 + sizeof pdu];
    int len0 = snprintf(cmd, sizeof cmd, "AT+CMGS=%u,%ld\r\n%s\x1a", (unsigned)issi, bits, pdu);
    if (len0 < 0 || (size_t)len0 >= sizeof cmd)
        return -2;
    size_t len = (size_t)len0;
    p->state = PEI_ST_SENDING;
    p->tag = tag;
    p->msgref = msgref;
    p->got_cmgs = false;
    p->sds_instance = 0;
    p->cmd_at_ms = now_ms;
    if (put(p, cmd, len) < 0) {
        p->state = PEI_ST_IDLE;
        p->tag = NULL;
        return -3;
    }
    return 0;
}

/* ------------------------------------------------------------ input */

static void garbage(pei_t *p, const char *line)
{
    char clean[96];
    size_t w = 0;
    for (const unsigned char *s = (const unsigned char *)line; *s && w + 5 < sizeof clean; s++)
        w += (size_t)snprintf(clean + w, sizeof clean - w, (*s >= 0x20 && *s < 0x7f) ? "%c" : "\\x%02x", *s);
    p->garbage_lines++;
    emit(p, (pei_event_t){ .kind = PEI_EV_GARBAGE, .detail = clean });
}

static void command_result(pei_t *p, int64_t now, bool ok, const char *line)
{
    if (p->state == PEI_ST_INIT) {
        /* AT+CTSP is optional: some terminals route SDS-TL text anyway */
        if (ok || strncmp(INIT_CMDS[p->init_step], "AT+CTSP", 7) == 0) {
            p->init_step++;
            init_step(p, now);
        } else {
            p->errors++;
            p->state = PEI_ST_DOWN;
            char why[128];
            snprintf(why, sizeof why, "%.20s answered %.60s", INIT_CMDS[p->init_step], line);
            why[strcspn(why, "\r")] = ' ';
            emit(p, (pei_event_t){ .kind = PEI_EV_INIT_FAILED, .detail = why });
        }
    } else if (p->state == PEI_ST_SENDING) {
        if (ok) {
            void *tag = p->tag;
            p->state = PEI_ST_IDLE;
            p->tag = NULL;
            emit(p, (pei_event_t){ .kind = PEI_EV_SENT, .tag = tag, .msgref = p->msgref, .sds_instance = p->sds_instance });
        } else {
            p->errors++;
            fail_send(p, line);
        }
    } else {
        garbage(p, line); /* an answer to nothing */
    }
}

static void on_pdu(pei_t *p, const char *line)
{
    unsigned char b[PEI_TEXT_MAX + 16];
    long n = unhex(line, b, sizeof b);
    if (n < 0) {
        garbage(p, line);
        return;
    }
    /* the length in bits bounds the data, when it is shorter than the hex */
    if (p->sdsr_bits && p->sdsr_bits / 8 < (unsigned long)n)
        n = (long)(p->sdsr_bits / 8);
    char text[2 * PEI_TEXT_MAX + 1];
    if (n >= 2 && b[0] == PEI_PROTO_TEXT_SDSTL) {
        unsigned type = b[1] >> 4;
        if (type == 0 && n >= 4) { /* SDS-TRANSFER */
            size_t off = 4;
            if (b[3] & 0x80)
                off += 3; /* time stamp */
            unsigned coding = b[3] & 0x7F;
            if ((long)off > n || (coding != 1 && coding != 0)) {
                garbage(p, line);
                return;
            }
            relay_latin1_to_utf8(b + off, (size_t)(n - (long)off), text, sizeof text);
            emit(p, (pei_event_t){ .kind = PEI_EV_INCOMING, .issi = p->sdsr_calling, .msgref = b[2], .text = text });
            return;
        }
        if (type == 1 && n >= 4) { /* SDS-REPORT */
            emit(p, (pei_event_t){ .kind = PEI_EV_REPORT, .issi = p->sdsr_calling, .status = b[2], .msgref = b[3] });
            return;
        }
        if (type == 2)
            return; /* SDS-ACK: nothing to do */
    } else if (n >= 2 && b[0] == PEI_PROTO_TEXT_SIMPLE) {
        relay_latin1_to_utf8(b + 2, (size_t)(n - 2), text, sizeof text);
        emit(p, (pei_event_t){ .kind = PEI_EV_INCOMING, .issi = p->sdsr_calling, .text = text });
        return;
    }
    garbage(p, line);
}

static void on_line(pei_t *p, int64_t now, const char *line)
{
    if (p->expect_pdu) {
        p->expect_pdu = false;
        if (hexval((unsigned char)line[0]) >= 0 && strspn(line, "0123456789ABCDEFabcdef") == strlen(line)) {
            on_pdu(p, line);
            return;
        }
        garbage(p, "+CTSDSR without its PDU");
        /* and treat this line on its own */
    }
    if (strcmp(line, "OK") == 0) {
        command_result(p, now, true, line);
    } else if (strcmp(line, "ERROR") == 0 || strncmp(line, "+CME ERROR", 10) == 0 || strncmp(line, "+CMS ERROR", 10) == 0) {
        command_result(p, now, false, line);
    } else if (strncmp(line, "+CMGS:", 6) == 0) {
        if (p->state == PEI_ST_SENDING) {
            unsigned inst = 0, st = 0, ref = 0;
            int k = sscanf(line + 6, " %u , %u , %u", &inst, &st, &ref);
            if (k >= 1) {
                p->got_cmgs = true;
                p->sds_instance = inst;
            }
        } else {
            garbage(p, line);
        }
    } else if (strncmp(line, "+CTSDSR:", 8) == 0) {
        unsigned ai = 0, calling = 0, ctype = 0, called = 0, cdtype = 0, bits = 0;
        int k = sscanf(line + 8, " %u , %u , %u , %u , %u , %u", &ai, &calling, &ctype, &called, &cdtype, &bits);
        if (k < 6 || calling == 0) {
            garbage(p, line);
            return;
        }
        p->expect_pdu = true;
        p->sdsr_calling = calling;
        p->sdsr_bits = bits;
    } else if (strncasecmp(line, "AT", 2) == 0) {
        /* the terminal's echo (before ATE0 took effect) */
    } else if (line[0] == '+' || strcmp(line, "RING") == 0) {
        /* other indications (+CTXG, +CTCC, +CREG ...): not ours */
    } else {
        garbage(p, line);
    }
}

void pei_feed(pei_t *p, int64_t now_ms, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (c == '\r' || c == '\n') {
            p->prompt = false;
            if (p->discarding) {
                p->discarding = false;
                garbage(p, "(an over-long line)");
            } else if (p->len > 0) {
                p->line[p->len] = '\0';
                p->len = 0;
                on_line(p, now_ms, p->line);
            }
            continue;
        }
        if (p->discarding)
            continue;
        /* "> " (the data prompt after AT+CMGS) has no line end: drop it so
         * that it does not glue to the next line, however the bytes come */
        if (p->len == 0 && c == '>' && !p->prompt) {
            p->prompt = true;
            continue;
        }
        if (p->prompt) {
            p->prompt = false;
            if (c == ' ')
                continue;
            p->line[p->len++] = '>'; /* not a prompt after all */
        }
        if (p->len + 1 >= sizeof p->line) {
            p->discarding = true;
            p->len = 0;
            continue;
        }
        p->line[p->len++] = c;
    }
}

void pei_tick(pei_t *p, int64_t now_ms)
{
    if ((p->state == PEI_ST_INIT || p->state == PEI_ST_SENDING) && now_ms - p->cmd_at_ms >= p->cmd_timeout_ms) {
        p->timeouts++;
        if (p->state == PEI_ST_SENDING) {
            fail_send(p, "timeout");
            /* a terminal that stopped answering is initialised again */
            pei_reset(p, now_ms);
        } else {
            p->state = PEI_ST_DOWN;
            emit(p, (pei_event_t){ .kind = PEI_EV_INIT_FAILED, .detail = "timeout" });
        }
    }
}

/* ------------------------------------------------------------ delivery status */

pei_ds_class_t pei_ds_class(uint8_t s)
{
    if (s == 0x00 || s == 0x01 || s == 0x04 || s == 0x06)
        return PEI_DS_RECEIVED;
    if (s == 0x02 || s == 0x03)
        return PEI_DS_READ;
    if (s < 0x20)
        return PEI_DS_INFO;
    if (s < 0x40)
        return PEI_DS_TEMPORARY;
    if (s == 0x40 || s == 0x42 || s == 0x4A || s == 0x4C || s == 0x60)
        return PEI_DS_TEMPORARY;
    if (s < 0x60)
        return PEI_DS_PERMANENT;
    return PEI_DS_INFO;
}

const char *pei_ds_str(uint8_t s)
{
    switch (s) {
    case 0x00: return "received";
    case 0x01: return "receipt report acknowledged";
    case 0x02: return "read";
    case 0x03: return "consumed report acknowledged";
    case 0x04: return "forwarded to external network";
    case 0x06: return "concatenation part received";
    case 0x20: return "congestion, message stored";
    case 0x21: return "message stored";
    case 0x22: return "destination not reachable, message stored";
    case 0x40: return "network overload";
    case 0x41: return "service permanently not available";
    case 0x42: return "service temporarily not available";
    case 0x43: return "source not authorised for SDS";
    case 0x44: return "destination not authorised for SDS";
    case 0x45: return "unknown destination";
    case 0x46: return "unknown forward address";
    case 0x47: return "group address with individual service";
    case 0x48: return "validity period expired, not received";
    case 0x49: return "validity period expired, not read";
    case 0x4A: return "delivery failed";
    case 0x4B: return "destination not registered";
    case 0x4C: return "destination queue full";
    case 0x4D: return "message too long for destination";
    case 0x4E: return "destination does not support SDS-TL";
    case 0x4F: return "destination host not connected";
    case 0x50: return "protocol not supported";
    case 0x51: return "data coding scheme not supported";
    case 0x52: return "destination memory full, message discarded";
    case 0x53: return "destination does not accept SDS";
    case 0x60: return "destination memory full";
    default: return s >= 0x40 && s < 0x60 ? "delivery failed (other)" : "status";
    }
}
