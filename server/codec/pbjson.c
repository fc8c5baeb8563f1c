/* pbjson.c -- canonical proto3 JSON <-> protobuf-c, driven by descriptors.
 *
 * Decoding parses with jansson (JSON_REJECT_DUPLICATES; jansson also checks
 * UTF-8 and bounds its own nesting at JSON_PARSER_MAX_DEPTH) and then walks
 * the tree against the ProtobufCMessageDescriptor, allocating every part of
 * the message separately through the caller's allocator so that
 * protobuf_c_message_free_unpacked() can free it -- also a half-built message
 * after an error, which is how every error path cleans up.
 *
 * Encoding deliberately does not go through a jansson tree: the message is
 * written straight into one hub_realloc'ed buffer. That avoids a tree of
 * malloc'ed nodes per event (hub_event_json runs once per event), keeps every
 * allocation on the hub allocator (so the failmalloc tests cover it), and lets
 * floating point values use the shortest representation that round-trips
 * (jansson prints %.17g: 0.1 -> 0.10000000000000001).
 *
 * Field paths in error messages use the proto (snake_case) field names, the
 * form Status.field documents, e.g. "details.person.age_years".
 */
#include "codec/pbjson.h"
#include "util/utf8.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/alloc.h"

/* ================================================================ common */

#define MEMBER_PTR(msg, off) ((void *)((char *)(msg) + (off)))
#define CMEMBER_PTR(msg, off) ((const void *)((const char *)(msg) + (off)))

/* Size of one element of a repeated field's array. */
static size_t elem_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* Writes the lowerCamelCase JSON name of a proto field name (protoc's
 * ToJsonName: drop each '_' and upper-case the letter after it). */
static bool json_name_eq(const char *name, const char *key, size_t klen)
{
    size_t k = 0;
    bool up = false;
    for (const char *p = name; *p; p++) {
        if (*p == '_') {
            up = true;
            continue;
        }
        char c = *p;
        if (up && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        up = false;
        if (k >= klen || key[k] != c)
            return false;
        k++;
    }
    return k == klen;
}

/* ================================================================ encoder */

typedef struct sb {
    char *p;
    size_t len, cap;
    bool oom;
} sb_t;

static bool sb_reserve(sb_t *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->cap - b->len > extra)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = hub_realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void sb_put(sb_t *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_putc(sb_t *b, char c)
{
    if (!sb_reserve(b, 1))
        return;
    b->p[b->len++] = c;
}

static void sb_puts(sb_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string. Bytes that are not valid UTF-8 become U+FFFD so that the
 * output is always valid JSON, even for a message that was built from
 * unchecked bytes (our decoders reject such strings on input). */
static void sb_json_string(sb_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    sb_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            sb_put(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': sb_put(b, "\\n", 2); break;
            case '\r': sb_put(b, "\\r", 2); break;
            case '\t': sb_put(b, "\\t", 2); break;
            case '\b': sb_put(b, "\\b", 2); break;
            case '\f': sb_put(b, "\\f", 2); break;
            default: {
                char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
                sb_put(b, esc, 6);
            }
            }
            i++;
        } else if (c < 0x80) {
            size_t j = i + 1;
            while (j < n && u[j] >= 0x20 && u[j] < 0x80 && u[j] != '"' && u[j] != '\\')
                j++;
            sb_put(b, s + i, j - i);
            i = j;
        } else {
            size_t l = hub_utf8_decode(u + i, n - i, NULL);
            if (l == 0) {
                sb_put(b, "\xEF\xBF\xBD", 3);
                i++;
            } else {
                sb_put(b, s + i, l);
                i += l;
            }
        }
    }
    sb_putc(b, '"');
}

static void sb_base64(sb_t *b, const uint8_t *d, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sb_putc(b, '"');
    if (n > (SIZE_MAX - 8) / 4 * 3 || !sb_reserve(b, (n + 2) / 3 * 4)) {
        b->oom = true;
        return;
    }
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        char q[4] = { tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63] };
        sb_put(b, q, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)d[i] << 16;
        char q[4] = { tab[v >> 18], tab[(v >> 12) & 63], '=', '=' };
        sb_put(b, q, 4);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
        char q[4] = { tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], '=' };
        sb_put(b, q, 4);
    }
    sb_putc(b, '"');
}

/* Shortest %g form that reads back as the same value. */
static void sb_double(sb_t *b, double v, bool is_float)
{
    if (isnan(v)) {
        sb_puts(b, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        sb_puts(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    if (v == 0 && signbit(v)) {
        /* "-0" would read back as the integer 0 */
        sb_puts(b, "-0.0");
        return;
    }
    char tmp[40];
    int lo = is_float ? 6 : 15, hi = is_float ? 9 : 17;
    for (int prec = lo; prec <= hi; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (is_float ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
            break;
    }
    sb_puts(b, tmp);
}

static void encode_message(sb_t *b, const ProtobufCMessage *msg);

static void encode_value(sb_t *b, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        sb_printf(b, "%" PRId32, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        sb_printf(b, "%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        sb_printf(b, "\"%" PRId64 "\"", *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        sb_printf(b, "\"%" PRIu64 "\"", *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        sb_double(b, *(const float *)p, true);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        sb_double(b, *(const double *)p, false);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        sb_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        if (ev) {
            sb_putc(b, '"');
            sb_puts(b, ev->name);
            sb_putc(b, '"');
        } else {
            sb_printf(b, "%d", v); /* an open enum's unknown value */
        }
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        if (s == NULL)
            s = "";
        sb_json_string(b, s, strlen(s));
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = p;
        sb_base64(b, bd->data, bd->data ? bd->len : 0);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (sub)
            encode_message(b, sub);
        else
            sb_put(b, "{}", 2);
        break;
    }
    }
}

/* proto3: a singular field with its default value is left out. */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return *(const uint32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0 && !signbit(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0 && !signbit(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_ENUM:
        return *(const int *)p == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || *s == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    }
    return true;
}

static void sb_key(sb_t *b, const char *name, bool *first)
{
    if (!*first)
        sb_putc(b, ',');
    *first = false;
    sb_putc(b, '"');
    bool up = false;
    for (const char *p = name; *p; p++) {
        if (*p == '_') {
            up = true;
            continue;
        }
        char c = *p;
        if (up && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        up = false;
        sb_putc(b, c);
    }
    sb_put(b, "\":", 2);
}

static void encode_message(sb_t *b, const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    bool first = true;
    sb_putc(b, '{');
    for (unsigned i = 0; i < desc->n_fields && !b->oom; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        const void *p = CMEMBER_PTR(msg, f->offset);
        bool force = false;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)CMEMBER_PTR(msg, f->quantifier_offset) != f->id)
                continue;
            force = true; /* a oneof's chosen field is emitted even when 0 */
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)CMEMBER_PTR(msg, f->quantifier_offset);
            const char *arr = *(const char *const *)p;
            if (n == 0 || arr == NULL)
                continue;
            size_t es = elem_size(f->type);
            sb_key(b, f->name, &first);
            sb_putc(b, '[');
            for (size_t j = 0; j < n; j++) {
                if (j)
                    sb_putc(b, ',');
                encode_value(b, f, arr + j * es);
            }
            sb_putc(b, ']');
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_MESSAGE && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
            /* proto2-style has_ flag */
            if (!*(const protobuf_c_boolean *)CMEMBER_PTR(msg, f->quantifier_offset))
                continue;
            force = true;
        }
        if (f->label == PROTOBUF_C_LABEL_REQUIRED)
            force = true;
        if (!force && is_default(f, p))
            continue;
        sb_key(b, f->name, &first);
        encode_value(b, f, p);
    }
    sb_putc(b, '}');
}

char *pbjson_encode(const ProtobufCMessage *msg, size_t *len)
{
    sb_t b = { 0 };
    encode_message(&b, msg);
    sb_putc(&b, '\0');
    if (b.oom) {
        hub_free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len - 1;
    return b.p;
}

/* ================================================================ decoder */

#define PATH_MAX_LEN 200

typedef struct dec {
    ProtobufCAllocator *a;
    int max_depth;
    char *err;
    size_t errlen;
    bool failed;
    char path[PATH_MAX_LEN];
    size_t plen;
} dec_t;

static void fail(dec_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(dec_t *d, const char *fmt, ...)
{
    if (d->failed)
        return;
    d->failed = true;
    if (d->err == NULL || d->errlen == 0)
        return;
    size_t off = 0;
    if (d->plen > 0) {
        int n = snprintf(d->err, d->errlen, "%s: ", d->path);
        off = n < 0 ? 0 : (size_t)n;
        if (off >= d->errlen)
            return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err + off, d->errlen - off, fmt, ap);
    va_end(ap);
}

/* Without the path: it is not the input's fault. */
static void oom(dec_t *d)
{
    d->plen = 0;
    d->path[0] = '\0';
    fail(d, "out of memory");
}

/* Appends ".name" (or "name" at the top) / "[i]" to the path; returns the old
 * length to restore. A path too long to hold is cut, which only shortens an
 * error message. */
static size_t path_push(dec_t *d, const char *name)
{
    size_t old = d->plen;
    int n = snprintf(d->path + d->plen, sizeof d->path - d->plen, "%s%s", d->plen ? "." : "",
                     name);
    if (n > 0)
        d->plen = d->plen + (size_t)n < sizeof d->path ? d->plen + (size_t)n : sizeof d->path - 1;
    return old;
}

static size_t path_push_index(dec_t *d, size_t i)
{
    size_t old = d->plen;
    int n = snprintf(d->path + d->plen, sizeof d->path - d->plen, "[%zu]", i);
    if (n > 0)
        d->plen = d->plen + (size_t)n < sizeof d->path ? d->plen + (size_t)n : sizeof d->path - 1;
    return old;
}

static void path_pop(dec_t *d, size_t old)
{
    d->plen = old;
    d->path[old] = '\0';
}

/* A short printable copy of untrusted text for an error message: at most 48
 * bytes, cut on a character boundary, control characters and quotes as '?'. */
static const char *snippet(const char *s, size_t n, char out[64])
{
    size_t o = 0, i = 0;
    while (i < n && o < 48) {
        unsigned char c = (unsigned char)s[i];
        size_t l = hub_utf8_decode((const unsigned char *)s + i, n - i, NULL);
        if (l == 0 || c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + l > 48)
            break;
        memcpy(out + o, s + i, l);
        o += l;
        i += l;
    }
    if (i < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static void *dalloc(dec_t *d, size_t n)
{
    void *p = d->a->alloc(d->a->allocator_data, n ? n : 1);
    if (p == NULL)
        oom(d);
    return p;
}

/* Parses a decimal integer string: optional '-', digits, nothing else.
 * Returns 0, -1 for bad syntax, -2 when it does not fit. */
static int parse_int_string(const char *s, size_t n, bool is_signed, int64_t *sv, uint64_t *uv)
{
    if (n == 0 || strlen(s) != n)
        return -1;
    bool neg = s[0] == '-';
    size_t nd = n - (neg ? 1 : 0);
    if (nd == 0 || strspn(s + (neg ? 1 : 0), "0123456789") != nd)
        return -1;
    char *end;
    errno = 0;
    if (is_signed) {
        long long v = strtoll(s, &end, 10);
        if (errno == ERANGE)
            return -2;
        *sv = v;
    } else {
        if (neg) {
            /* "-0" is zero; anything else below zero does not fit */
            return strspn(s + 1, "0") == nd ? (*uv = 0, 0) : -2;
        }
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == ERANGE)
            return -2;
        *uv = v;
    }
    return 0;
}

/* Reads an integer field from a JSON number or a decimal string, checking
 * the range [min, max] (signed) or [0, umax] (unsigned). */
static int get_int(dec_t *d, json_t *v, bool is_signed, int64_t min, int64_t max, uint64_t umax,
                   const char *tname, int64_t *sv, uint64_t *uv)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (is_signed) {
            if (i < min || i > max)
                goto range;
            *sv = i;
        } else {
            if (i < 0 || (uint64_t)i > umax)
                goto range;
            *uv = (uint64_t)i;
        }
        return 0;
    }
    if (json_is_real(v)) {
        double r = json_real_value(v);
        if (r != floor(r)) {
            fail(d, "expected a whole number for %s", tname);
            return -1;
        }
        if (is_signed) {
            if (!(r >= (double)min && r <= (double)max && r < 9223372036854775808.0))
                goto range;
            *sv = (int64_t)r;
        } else {
            if (!(r >= 0 && r <= (double)umax && r < 18446744073709551616.0))
                goto range;
            *uv = (uint64_t)r;
        }
        return 0;
    }
    if (json_is_string(v)) {
        int64_t s = 0;
        uint64_t u = 0;
        const char *str = json_string_value(v);
        size_t n = json_string_length(v);
        int rc = parse_int_string(str, n, is_signed, &s, &u);
        if (rc == -2)
            goto range;
        if (rc < 0) {
            char sn[64];
            fail(d, "expected a number for %s, got \"%s\"", tname, snippet(str, n, sn));
            return -1;
        }
        if (is_signed) {
            if (s < min || s > max)
                goto range;
            *sv = s;
        } else {
            if (u > umax)
                goto range;
            *uv = u;
        }
        return 0;
    }
    fail(d, "expected a number for %s", tname);
    return -1;
range:
    fail(d, "number out of range for %s", tname);
    return -1;
}

static int get_double(dec_t *d, json_t *v, bool is_float, double *out)
{
    const char *tname = is_float ? "float" : "double";
    double r;
    if (json_is_integer(v)) {
        r = (double)json_integer_value(v);
    } else if (json_is_real(v)) {
        r = json_real_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (strcmp(s, "NaN") == 0 && n == 3) {
            r = NAN;
        } else if (strcmp(s, "Infinity") == 0 && n == 8) {
            r = INFINITY;
        } else if (strcmp(s, "-Infinity") == 0 && n == 9) {
            r = -INFINITY;
        } else {
            char *end;
            errno = 0;
            /* strtod also takes "inf", "nan", hex and leading spaces: refuse them */
            if (n == 0 || strlen(s) != n || strspn(s, "-+.0123456789eE") != n) {
                char sn[64];
                fail(d, "expected a number for %s, got \"%s\"", tname, snippet(s, n, sn));
                return -1;
            }
            r = strtod(s, &end);
            if (*end || end == s) {
                char sn[64];
                fail(d, "expected a number for %s, got \"%s\"", tname, snippet(s, n, sn));
                return -1;
            }
            if (errno == ERANGE && isinf(r)) {
                fail(d, "number out of range for %s", tname);
                return -1;
            }
        }
    } else {
        fail(d, "expected a number for %s", tname);
        return -1;
    }
    if (is_float && isfinite(r) && (r > FLT_MAX || r < -FLT_MAX)) {
        fail(d, "number out of range for float");
        return -1;
    }
    *out = r;
    return 0;
}

static const char *type_name(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: return "int32";
    case PROTOBUF_C_TYPE_SINT32: return "sint32";
    case PROTOBUF_C_TYPE_SFIXED32: return "sfixed32";
    case PROTOBUF_C_TYPE_UINT32: return "uint32";
    case PROTOBUF_C_TYPE_FIXED32: return "fixed32";
    case PROTOBUF_C_TYPE_INT64: return "int64";
    case PROTOBUF_C_TYPE_SINT64: return "sint64";
    case PROTOBUF_C_TYPE_SFIXED64: return "sfixed64";
    case PROTOBUF_C_TYPE_UINT64: return "uint64";
    case PROTOBUF_C_TYPE_FIXED64: return "fixed64";
    default: return "number";
    }
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Standard or URL-safe base64, padding optional. */
static int get_bytes(dec_t *d, json_t *v, ProtobufCBinaryData *out)
{
    if (!json_is_string(v)) {
        fail(d, "expected a base64 string");
        return -1;
    }
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t n = json_string_length(v);
    while (n > 0 && s[n - 1] == '=' && (json_string_length(v) - n) < 2)
        n--;
    size_t padded = json_string_length(v) - n;
    if (n % 4 == 1 || (padded && (n + padded) % 4 != 0)) {
        fail(d, "invalid base64");
        return -1;
    }
    size_t outlen = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (outlen == 0)
        return 0; /* stays empty */
    uint8_t *buf = dalloc(d, outlen);
    if (buf == NULL)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int x = b64_value(s[i]);
        if (x < 0) {
            d->a->free(d->a->allocator_data, buf);
            fail(d, "invalid base64");
            return -1;
        }
        acc = (acc << 6) | (uint32_t)x;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    out->data = buf;
    out->len = o;
    return 0;
}

static int get_enum(dec_t *d, const ProtobufCEnumDescriptor *ed, json_t *v, int *out)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        const ProtobufCEnumValue *ev = NULL;
        if (strlen(s) == n)
            ev = protobuf_c_enum_descriptor_get_value_by_name(ed, s);
        if (ev == NULL) {
            char sn[64];
            fail(d, "unknown enum value \"%s\"", snippet(s, n, sn));
            return -1;
        }
        *out = ev->value;
        return 0;
    }
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < INT_MIN || i > INT_MAX || protobuf_c_enum_descriptor_get_value(ed, (int)i) == NULL) {
            fail(d, "unknown enum value %" JSON_INTEGER_FORMAT, i);
            return -1;
        }
        *out = (int)i;
        return 0;
    }
    fail(d, "expected an enum name or number");
    return -1;
}

static ProtobufCMessage *decode_message(dec_t *d, const ProtobufCMessageDescriptor *desc,
                                        json_t *obj, int depth);

/* Decodes one value of field f into *p (a singular member or an element of
 * a repeated array). *p holds the default or zeroes beforehand; it is only
 * overwritten with a complete value, so a failure leaves something that
 * protobuf_c_message_free_unpacked can free. */
static int decode_value(dec_t *d, const ProtobufCFieldDescriptor *f, void *p, json_t *v, int depth)
{
    int64_t sv = 0;
    uint64_t uv = 0;
    double dv = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (get_int(d, v, true, INT32_MIN, INT32_MAX, 0, type_name(f->type), &sv, &uv))
            return -1;
        *(int32_t *)p = (int32_t)sv;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (get_int(d, v, false, 0, 0, UINT32_MAX, type_name(f->type), &sv, &uv))
            return -1;
        *(uint32_t *)p = (uint32_t)uv;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (get_int(d, v, true, INT64_MIN, INT64_MAX, 0, type_name(f->type), &sv, &uv))
            return -1;
        *(int64_t *)p = sv;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (get_int(d, v, false, 0, 0, UINT64_MAX, type_name(f->type), &sv, &uv))
            return -1;
        *(uint64_t *)p = uv;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (get_double(d, v, true, &dv))
            return -1;
        *(float *)p = (float)dv;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (get_double(d, v, false, &dv))
            return -1;
        *(double *)p = dv;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v)) {
            fail(d, "expected true or false");
            return -1;
        }
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return get_enum(d, f->descriptor, v, (int *)p);
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v)) {
            fail(d, "expected a string");
            return -1;
        }
        /* jansson has already checked the UTF-8 (and \u escapes) */
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (memchr(s, '\0', n) != NULL) {
            fail(d, "string contains a NUL character");
            return -1;
        }
        char *copy = dalloc(d, n + 1);
        if (copy == NULL)
            return -1;
        memcpy(copy, s, n + 1);
        *(char **)p = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return get_bytes(d, v, p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (!json_is_object(v)) {
            fail(d, "expected an object");
            return -1;
        }
        ProtobufCMessage *sub = decode_message(d, f->descriptor, v, depth + 1);
        if (sub == NULL)
            return -1;
        *(ProtobufCMessage **)p = sub;
        return 0;
    }
    }
    fail(d, "unsupported field type");
    return -1;
}

static int decode_field(dec_t *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                        json_t *v, int depth)
{
    void *member = MEMBER_PTR(msg, f->offset);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!json_is_array(v)) {
            fail(d, "expected an array");
            return -1;
        }
        size_t n = json_array_size(v);
        if (n == 0)
            return 0;
        size_t es = elem_size(f->type);
        if (n > SIZE_MAX / es) {
            oom(d);
            return -1;
        }
        char *arr = dalloc(d, n * es);
        if (arr == NULL)
            return -1;
        memset(arr, 0, n * es);
        /* owned by the message from here on: free_unpacked skips NULLs */
        *(void **)member = arr;
        *(size_t *)MEMBER_PTR(msg, f->quantifier_offset) = n;
        for (size_t i = 0; i < n; i++) {
            size_t old = path_push_index(d, i);
            json_t *e = json_array_get(v, i);
            int rc;
            if (json_is_null(e)) {
                fail(d, "null is not allowed in a list");
                rc = -1;
            } else {
                rc = decode_value(d, f, arr + i * es, e, depth);
            }
            path_pop(d, old);
            if (rc)
                return -1;
        }
        return 0;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *c = MEMBER_PTR(msg, f->quantifier_offset);
        if (*c != 0) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field(msg->descriptor, (int)*c);
            fail(d, "only one of \"%s\" and \"%s\" may be set", other ? other->name : "?", f->name);
            return -1;
        }
        /* Every member of a union starts out zero (NULL); set the case first
         * so that free_unpacked frees whatever decode_value stores. */
        memset(member, 0, elem_size(f->type));
        *c = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
               f->type != PROTOBUF_C_TYPE_MESSAGE) {
        *(protobuf_c_boolean *)MEMBER_PTR(msg, f->quantifier_offset) = 1;
    }
    return decode_value(d, f, member, v, depth);
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *key, size_t klen)
{
    if (strlen(key) != klen)
        return NULL;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
    if (f)
        return f;
    for (unsigned i = 0; i < desc->n_fields; i++)
        if (json_name_eq(desc->fields[i].name, key, klen))
            return &desc->fields[i];
    return NULL;
}

#define MAX_FIELDS_TRACKED 1024

static ProtobufCMessage *decode_message(dec_t *d, const ProtobufCMessageDescriptor *desc,
                                        json_t *obj, int depth)
{
    if (depth > d->max_depth) {
        fail(d, "nesting deeper than %d levels", d->max_depth);
        return NULL;
    }
    if (desc->n_fields > MAX_FIELDS_TRACKED) {
        fail(d, "message type %s has too many fields", desc->name);
        return NULL;
    }
    ProtobufCMessage *msg = dalloc(d, desc->sizeof_message);
    if (msg == NULL)
        return NULL;
    protobuf_c_message_init(desc, msg);

    /* both "familyName" and "family_name" may name a field: once only */
    unsigned char seen[(MAX_FIELDS_TRACKED + 7) / 8];
    memset(seen, 0, (desc->n_fields + 7) / 8);

    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        json_t *v = json_object_iter_value(it);
        const ProtobufCFieldDescriptor *f = find_field(desc, key, klen);
        if (f == NULL) {
            char sn[64];
            fail(d, "unknown field \"%s\" in %s", snippet(key, klen, sn), desc->name);
            goto fail;
        }
        unsigned idx = (unsigned)(f - desc->fields);
        if (seen[idx / 8] & (1u << (idx % 8))) {
            fail(d, "field \"%s\" given twice", f->name);
            goto fail;
        }
        seen[idx / 8] |= (unsigned char)(1u << (idx % 8));
        if (json_is_null(v))
            continue; /* null means the default */
        size_t old = path_push(d, f->name);
        int rc = decode_field(d, msg, f, v, depth);
        path_pop(d, old);
        if (rc)
            goto fail;
    }
    return msg;
fail:
    protobuf_c_message_free_unpacked(msg, d->a);
    return NULL;
}

/* Replaces anything that is not valid UTF-8 in the error text (jansson
 * quotes input bytes in its messages) so it can go back in a Status. */
static void sanitize_utf8(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t l = hub_utf8_decode((unsigned char *)s + i, n - i, NULL);
        if (l == 0 || (unsigned char)s[i] < 0x20) {
            s[i] = '?';
            l = 1;
        }
        i += l;
    }
}

ProtobufCMessage *pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                                ProtobufCAllocator *alloc, int max_depth, char *err, size_t errlen)
{
    dec_t d = { .a = alloc ? alloc : hub_pb_allocator(), .max_depth = max_depth, .err = err,
                .errlen = errlen };
    if (err && errlen)
        err[0] = '\0';
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (root == NULL) {
        fail(&d, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        if (err && errlen)
            sanitize_utf8(err);
        return NULL;
    }
    ProtobufCMessage *msg = NULL;
    if (!json_is_object(root))
        fail(&d, "expected a JSON object for %s", desc->name);
    else
        msg = decode_message(&d, desc, root, 1);
    json_decref(root);
    if (msg == NULL && err && errlen)
        sanitize_utf8(err);
    return msg;
}
