/* pei_sim.c -- bin/mhtas-pei-sim: a simulated TETRA radio terminal on a
 * pseudo-terminal, answering PEI AT commands like a real one, for the relay's
 * end-to-end tests and for trying bin/mhtas-relay without a radio.
 *
 *   mhtas-pei-sim [--link PATH] [--issi N]
 *
 * It opens a pseudo-terminal, points PATH (a symlink, replaced atomically)
 * at its slave side, and prints "ready t=<us> path=/dev/pts/N link=PATH".
 * Configure the relay with device = PATH. The terminal:
 *   ATE0, AT+CTSP=..., AT+CTSDS=...      -> OK
 *   AT+CMGS=<issi>,<bits><CR><LF><hex><Ctrl-Z>
 *                                        -> +CMGS: <instance>,0,<msgref> / OK,
 *                                           then delivery reports (see "auto")
 *   anything else                        -> ERROR
 *
 * Control, one command a line on standard input:
 *   incoming <issi> <text>      an officer's text (SDS-TL, ISO-8859-1) from <issi>
 *   report <issi> <ref> <hex>   a delivery report with status <hex> for message ref <ref>
 *   auto read|received|none     reports sent after each accepted text (default read:
 *                               "received" (00) then "read" (02))
 *   fail <n> <reply...>         the next n AT+CMGS are answered <reply> (e.g. ERROR)
 *   failreport <n> <hex>        the next n accepted texts get report <hex> instead
 *   silent <n>                  the next n commands get no answer at all
 *   garbage <text>              a line of rubbish on the serial line
 *   hangup                      the device goes away: the pseudo-terminal is closed, a new
 *                               one made and the link moved to it ("ready ..." again)
 *   quit
 * Output, one event a line on standard output, each with t=<microseconds
 * since the epoch>:
 *   cmd t= :<AT command>                      every command line received
 *   cmgs t= issi= bits= ref= answer= :<text>  every AT+CMGS with its decoded text (UTF-8);
 *                                             answer: ok, silent, or the failure reply
 *                                             with '_' for spaces
 *   sent t= kind=report issi= ref= status=    every report sent
 *   ready t= path= link=
 *   error t= :<what>
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "relay/pei.h"
#include "relay/split.h"

typedef struct sim {
    int master, slave;
    char path[128];
    const char *link;
    uint32_t own_issi;
    char in[8192];
    size_t in_len;
    bool in_pdu;           /* after AT+CMGS: collecting the hex up to Ctrl-Z */
    uint32_t pdu_issi;
    unsigned pdu_bits;
    int64_t pdu_t;
    unsigned instance;
    enum { AUTO_READ, AUTO_RECEIVED, AUTO_NONE } autorep;
    unsigned fail_n;
    char fail_reply[64];
    unsigned failrep_n;
    unsigned failrep_status;
    unsigned silent_n;
    uint8_t in_ref;
} sim_t;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void put(sim_t *s, const char *str)
{
    size_t n = strlen(str);
    while (n && s->master >= 0) {
        ssize_t w = write(s->master, str, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = { .fd = s->master, .events = POLLOUT };
            poll(&p, 1, 100);
            continue;
        }
        if (w <= 0)
            return;
        str += w;
        n -= (size_t)w;
    }
}

static int open_pty(sim_t *s)
{
    s->master = posix_openpt(O_RDWR | O_NOCTTY);
    if (s->master < 0 || grantpt(s->master) < 0 || unlockpt(s->master) < 0)
        return -1;
    const char *name = ptsname(s->master);
    if (name == NULL)
        return -1;
    snprintf(s->path, sizeof s->path, "%s", name);
    /* Hold the slave open ourselves: reads on the master then never fail
     * while the relay has it closed, and the line is raw before anyone
     * writes to it (no echo, no line editing). */
    s->slave = open(s->path, O_RDWR | O_NOCTTY);
    if (s->slave < 0)
        return -1;
    struct termios tio;
    if (tcgetattr(s->slave, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(s->slave, TCSANOW, &tio);
    }
    fcntl(s->master, F_SETFL, fcntl(s->master, F_GETFL) | O_NONBLOCK);
    if (s->link) {
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp%d", s->link, (int)getpid());
        unlink(tmp);
        if (symlink(s->path, tmp) < 0 || rename(tmp, s->link) < 0)
            return -1;
    }
    s->in_len = 0;
    s->in_pdu = false;
    out("ready t=%lld path=%s link=%s", (long long)now_us(), s->path, s->link ? s->link : "-");
    return 0;
}

static void close_pty(sim_t *s)
{
    if (s->slave >= 0)
        close(s->slave);
    if (s->master >= 0)
        close(s->master);
    s->slave = s->master = -1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static void send_sds(sim_t *s, uint32_t from, const unsigned char *pdu, size_t n)
{
    char buf[2200];
    int w = snprintf(buf, sizeof buf, "\r\n+CTSDSR: 12,%u,0,%u,0,%zu\r\n", from, s->own_issi, n * 8);
    for (size_t i = 0; i < n && (size_t)w + 3 < sizeof buf; i++)
        w += snprintf(buf + w, sizeof buf - (size_t)w, "%02X", pdu[i]);
    snprintf(buf + w, sizeof buf - (size_t)w, "\r\n");
    put(s, buf);
}

static void send_report(sim_t *s, uint32_t from, unsigned ref, unsigned status)
{
    unsigned char pdu[4] = { 0x82, 0x10, (unsigned char)status, (unsigned char)ref };
    send_sds(s, from, pdu, 4);
    out("sent t=%lld kind=report issi=%u ref=%u status=%02X", (long long)now_us(), from, ref, status);
}

/* The PDU of an AT+CMGS arrived (hex text up to Ctrl-Z). */
static void on_pdu(sim_t *s, const char *hex)
{
    unsigned char b[1100];
    size_t n = 0;
    for (size_t i = 0; hex[i] && hex[i + 1] && n < sizeof b; i += 2) {
        int a = hexval((unsigned char)hex[i]), c = hexval((unsigned char)hex[i + 1]);
        if (a < 0 || c < 0)
            break;
        b[n++] = (unsigned char)(a << 4 | c);
    }
    char text[2300] = "";
    unsigned ref = 0;
    bool ok = n >= 4 && b[0] == 0x82 && (b[1] >> 4) == 0 && (b[3] & 0x7F) == 1 && s->pdu_bits == n * 8;
    if (ok) {
        ref = b[2];
        relay_latin1_to_utf8(b + 4, n - 4, text, sizeof text);
    }
    /* the answer, as one word for the output line */
    char answer[64];
    snprintf(answer, sizeof answer, "%s", !ok ? "ERROR" : s->silent_n ? "silent" : s->fail_n ? s->fail_reply : "ok");
    for (char *p = answer; *p; p++)
        if (*p == ' ')
            *p = '_';
    out("cmgs t=%lld issi=%u bits=%u ref=%u answer=%s :%s", (long long)s->pdu_t, s->pdu_issi, s->pdu_bits, ref, answer,
        text);
    if (!ok) {
        put(s, "\r\nERROR\r\n");
        return;
    }
    if (s->silent_n) {
        s->silent_n--;
        return;
    }
    if (s->fail_n) {
        s->fail_n--;
        char buf[96];
        snprintf(buf, sizeof buf, "\r\n%s\r\n", s->fail_reply);
        put(s, buf);
        return;
    }
    char buf[96];
    snprintf(buf, sizeof buf, "\r\n+CMGS: %u,0,%u\r\n\r\nOK\r\n", ++s->instance, ref);
    put(s, buf);
    if (s->failrep_n) {
        s->failrep_n--;
        send_report(s, s->pdu_issi, ref, s->failrep_status);
        return;
    }
    if (s->autorep != AUTO_NONE)
        send_report(s, s->pdu_issi, ref, 0x00);
    if (s->autorep == AUTO_READ)
        send_report(s, s->pdu_issi, ref, 0x02);
}

static void on_command(sim_t *s, const char *cmd)
{
    out("cmd t=%lld :%s", (long long)now_us(), cmd);
    if (strncasecmp(cmd, "AT+CMGS=", 8) == 0) {
        unsigned issi = 0, bits = 0;
        if (sscanf(cmd + 8, "%u,%u", &issi, &bits) != 2) {
            put(s, "\r\nERROR\r\n");
            return;
        }
        s->in_pdu = true;
        s->pdu_issi = issi;
        s->pdu_bits = bits;
        s->pdu_t = now_us();
        put(s, "\r\n> "); /* the data prompt, as some terminals give it */
        return;
    }
    if (s->silent_n) {
        s->silent_n--;
        return;
    }
    if (strcasecmp(cmd, "ATE0") == 0 || strcasecmp(cmd, "AT") == 0 || strncasecmp(cmd, "AT+CTSP=", 8) == 0 ||
        strncasecmp(cmd, "AT+CTSDS=", 9) == 0)
        put(s, "\r\nOK\r\n");
    else
        put(s, "\r\nERROR\r\n");
}

/* Bytes from the relay: command lines end in CR; after AT+CMGS the PDU runs
 * to Ctrl-Z. */
static void on_serial(sim_t *s, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (s->in_pdu) {
            if (c == 0x1a) {
                s->in[s->in_len] = '\0';
                s->in_pdu = false;
                s->in_len = 0;
                on_pdu(s, s->in);
            } else if (c != '\r' && c != '\n' && s->in_len + 1 < sizeof s->in) {
                s->in[s->in_len++] = c;
            }
            continue;
        }
        if (c == '\r' || c == '\n') {
            if (s->in_len) {
                s->in[s->in_len] = '\0';
                s->in_len = 0;
                on_command(s, s->in);
            }
            continue;
        }
        if (s->in_len + 1 < sizeof s->in)
            s->in[s->in_len++] = c;
    }
}

static int on_control(sim_t *s, char *line)
{
    line[strcspn(line, "\r\n")] = '\0';
    char *arg = strchr(line, ' ');
    if (arg)
        *arg++ = '\0';
    else
        arg = line + strlen(line);
    if (strcmp(line, "incoming") == 0) {
        char *text = strchr(arg, ' ');
        if (text == NULL) {
            out("error t=%lld :incoming <issi> <text>", (long long)now_us());
            return 0;
        }
        *text++ = '\0';
        unsigned char pdu[700] = { 0x82, 0x00, ++s->in_ref, 0x01 };
        long l = relay_utf8_to_latin1(text, (char *)pdu + 4, sizeof pdu - 4);
        if (l < 0)
            l = 0;
        send_sds(s, (uint32_t)strtoul(arg, NULL, 10), pdu, 4 + (size_t)l);
        out("sent t=%lld kind=text issi=%s bytes=%ld", (long long)now_us(), arg, l);
    } else if (strcmp(line, "report") == 0) {
        unsigned issi = 0, ref = 0, st = 0;
        if (sscanf(arg, "%u %u %x", &issi, &ref, &st) == 3)
            send_report(s, issi, ref, st);
    } else if (strcmp(line, "auto") == 0) {
        s->autorep = strcmp(arg, "none") == 0 ? AUTO_NONE : strcmp(arg, "received") == 0 ? AUTO_RECEIVED : AUTO_READ;
    } else if (strcmp(line, "fail") == 0) {
        char *reply = strchr(arg, ' ');
        s->fail_n = (unsigned)strtoul(arg, NULL, 10);
        snprintf(s->fail_reply, sizeof s->fail_reply, "%s", reply ? reply + 1 : "ERROR");
    } else if (strcmp(line, "failreport") == 0) {
        if (sscanf(arg, "%u %x", &s->failrep_n, &s->failrep_status) != 2)
            s->failrep_n = 0;
    } else if (strcmp(line, "silent") == 0) {
        s->silent_n = (unsigned)strtoul(arg, NULL, 10);
    } else if (strcmp(line, "garbage") == 0) {
        char buf[600];
        snprintf(buf, sizeof buf, "\r\n%s\r\n", arg);
        put(s, buf);
    } else if (strcmp(line, "hangup") == 0) {
        close_pty(s);
        if (open_pty(s) < 0) {
            out("error t=%lld :cannot open a new pseudo-terminal: %s", (long long)now_us(), strerror(errno));
            return -1;
        }
    } else if (strcmp(line, "quit") == 0) {
        return -1;
    } else if (line[0]) {
        out("error t=%lld :unknown control command '%s'", (long long)now_us(), line);
    }
    return 0;
}

int main(int argc, char **argv)
{
    sim_t s = { .master = -1, .slave = -1, .own_issi = 1000001 };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--link") == 0 && i + 1 < argc) {
            s.link = argv[++i];
        } else if (strcmp(argv[i], "--issi") == 0 && i + 1 < argc) {
            s.own_issi = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: mhtas-pei-sim [--link PATH] [--issi N]   (control commands on stdin: see the source)\n");
            return 2;
        }
    }
    if (open_pty(&s) < 0) {
        fprintf(stderr, "mhtas-pei-sim: cannot set up a pseudo-terminal: %s\n", strerror(errno));
        return 1;
    }
    char ctl[4096];
    size_t ctl_len = 0;
    for (;;) {
        struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = s.master, .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        /* Control commands first: a test writes one before it makes the
         * relay send, and expects it to apply to that send. */
        if (p[0].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(0, ctl + ctl_len, sizeof ctl - 1 - ctl_len);
            if (n <= 0)
                break; /* the controller went away */
            ctl_len += (size_t)n;
            char *nl;
            bool stop = false;
            while (!stop && (nl = memchr(ctl, '\n', ctl_len)) != NULL) {
                *nl = '\0';
                if (on_control(&s, ctl) < 0)
                    stop = true;
                size_t used = (size_t)(nl - ctl) + 1;
                memmove(ctl, ctl + used, ctl_len - used);
                ctl_len -= used;
            }
            if (stop)
                break;
            if (ctl_len == sizeof ctl - 1)
                ctl_len = 0;
        }
        if ((p[1].revents & POLLIN) && s.master >= 0) {
            char buf[4096];
            ssize_t n = read(s.master, buf, sizeof buf);
            if (n > 0)
                on_serial(&s, buf, (size_t)n);
        }
    }
    close_pty(&s);
    if (s.link)
        unlink(s.link);
    return 0;
}
