/* mhc_wire.c -- gRPC framing, metadata and back-off arithmetic for the
 * client library. Pure: see mhc_wire.h. */
#include "lib/mhc_wire.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ framing */

void mhc__prefix_encode(uint8_t out[MHC_PREFIX_LEN], uint32_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

void mhc__reader_init(mhc_reader_t *r, uint32_t max_len)
{
    memset(r, 0, sizeof *r);
    r->max_len = max_len;
}

void mhc__reader_dispose(mhc_reader_t *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* Drops the message handed out by the previous next() call. Buffers are
 * small (one event or response at a time), so a memmove is cheaper than a
 * ring and keeps every message contiguous for protobuf_c_message_unpack. */
static void reader_compact(mhc_reader_t *r)
{
    if (r->skip == 0)
        return;
    r->len -= r->skip;
    if (r->len)
        memmove(r->buf, r->buf + r->skip, r->len);
    r->skip = 0;
}

int mhc__reader_feed(mhc_reader_t *r, const uint8_t *data, size_t len)
{
    reader_compact(r);
    if (len == 0)
        return 0;
    if (r->len + len > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap < r->len + len)
            cap *= 2;
        uint8_t *p = realloc(r->buf, cap);
        if (p == NULL)
            return -1;
        r->buf = p;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}

int mhc__reader_next(mhc_reader_t *r, const uint8_t **msg, size_t *len)
{
    reader_compact(r);
    if (r->len < MHC_PREFIX_LEN)
        return 0;
    const uint8_t *p = r->buf;
    /* The length is checked as soon as the prefix is in, before the body is
     * buffered (feed() only ever holds what the server sent within its flow
     * control window beyond this). */
    if (p[0] != 0)
        return -12;
    uint32_t n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (n > r->max_len)
        return -8;
    if (r->len - MHC_PREFIX_LEN < n)
        return 0;
    *msg = p + MHC_PREFIX_LEN;
    *len = n;
    r->skip = MHC_PREFIX_LEN + (size_t)n;
    return 1;
}

int mhc__reader_idle(const mhc_reader_t *r)
{
    return r->len == r->skip;
}

/* ------------------------------------------------------------ metadata */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t mhc__percent_decode(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%' && i + 2 < len && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            c = (char)(hexval(in[i + 1]) << 4 | hexval(in[i + 2]));
            i += 2;
        }
        out[o++] = c == '\0' ? '?' : c;
    }
    out[o] = '\0';
    return o;
}

int mhc__parse_status(const char *v, size_t len)
{
    if (len == 0 || len > 9)
        return -1;
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n > 16 ? 2 : n;
}

size_t mhc__format_timeout(uint64_t ms, char out[16])
{
    static const struct {
        uint64_t div;
        char unit;
    } units[] = { { 1, 'm' }, { 1000, 'S' }, { 60000, 'M' }, { 3600000, 'H' } };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        uint64_t v = ms / units[i].div + (ms % units[i].div != 0);
        if (v <= 99999999u || i + 1 == sizeof units / sizeof units[0]) {
            if (v > 99999999u)
                v = 99999999u;
            char digits[24];
            size_t n = 0;
            do {
                digits[n++] = (char)('0' + v % 10);
                v /= 10;
            } while (v);
            size_t o = 0;
            while (n)
                out[o++] = digits[--n];
            out[o++] = units[i].unit;
            out[o] = '\0';
            return o;
        }
    }
    return 0; /* not reached */
}

int mhc__http_to_grpc(int http_status)
{
    switch (http_status) {
    case 400:
        return 13; /* INTERNAL */
    case 401:
        return 16; /* UNAUTHENTICATED */
    case 403:
        return 7;  /* PERMISSION_DENIED */
    case 404:
        return 12; /* UNIMPLEMENTED */
    case 429:
    case 502:
    case 503:
    case 504:
        return 14; /* UNAVAILABLE */
    default:
        return 2;  /* UNKNOWN */
    }
}

int mhc__rst_to_grpc(uint32_t code)
{
    switch (code) {
    case 0x7: /* REFUSED_STREAM */
        return 14;
    case 0x8: /* CANCEL */
        return 1;
    case 0xb: /* ENHANCE_YOUR_CALM */
        return 8;
    case 0xc: /* INADEQUATE_SECURITY */
        return 7;
    default:
        return 13; /* INTERNAL */
    }
}

/* ------------------------------------------------------------ randomness */

uint64_t mhc__rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint64_t mhc__rng_seed(uint64_t a, uint64_t b)
{
    /* splitmix64 finaliser over both inputs */
    uint64_t z = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z ? z : 0x853C49E6748FEA9BULL;
}

uint64_t mhc__backoff_ms(uint64_t *rng, uint32_t min_ms, uint32_t max_ms, unsigned attempt)
{
    if (min_ms == 0)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    uint64_t cap = min_ms;
    for (unsigned i = 0; i < attempt && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    uint64_t d = mhc__rng_next(rng) % (cap + 1);
    return d ? d : 1;
}

void mhc__make_key(uint64_t *rng, char out[40])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = mhc__rng_next(rng), b = mhc__rng_next(rng);
    memcpy(out, "mhc-", 4);
    for (int i = 0; i < 16; i++) {
        out[4 + i] = hex[(a >> (60 - 4 * i)) & 15];
        out[20 + i] = hex[(b >> (60 - 4 * i)) & 15];
    }
    out[36] = '\0';
}

/* ------------------------------------------------------------ call policy */

static const struct {
    const char *method;
    mhc_retry_t retry;
    const char *key_field;
} policy[] = {
    { "WhoAmI", MHC_RETRY_READ, NULL },
    { "GetIncident", MHC_RETRY_READ, NULL },
    { "ListIncidents", MHC_RETRY_READ, NULL },
    { "GetBoard", MHC_RETRY_READ, NULL },
    { "GetIndicators", MHC_RETRY_READ, NULL },
    /* A resent care-summary read is another read, audited as such: safe to
     * repeat, nothing changes but the audit trail. Searches and shares are
     * never resent by the library. */
    { "GetCareSummary", MHC_RETRY_READ, NULL },
    { "ListAudit", MHC_RETRY_READ, NULL },
    { "RaiseIncident", MHC_RETRY_KEYED, "idempotency_key" },
    { "CancelIncident", MHC_RETRY_KEYED, "idempotency_key" },
    { "PostMessage", MHC_RETRY_KEYED, "client_msg_id" },
    { "AgreeOutcome", MHC_RETRY_KEYED, "idempotency_key" },
};

mhc_retry_t mhc__retry_class(const char *method)
{
    for (size_t i = 0; i < sizeof policy / sizeof policy[0]; i++)
        if (strcmp(policy[i].method, method) == 0)
            return policy[i].retry;
    return MHC_RETRY_NEVER;
}

const char *mhc__key_field(const char *method)
{
    for (size_t i = 0; i < sizeof policy / sizeof policy[0]; i++)
        if (strcmp(policy[i].method, method) == 0)
            return policy[i].key_field;
    return NULL;
}
