/* pbcheck.c -- see pbcheck.h. A minimal wire-format walker: varint tags,
 * wire types 0 (varint), 1 (64-bit), 2 (length-delimited), 5 (32-bit);
 * groups (3, 4) are refused as proto3 never produces them. */
#include "codec/pbcheck.h"
#include "util/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int pbcheck_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0, len; i < n; i += len)
        if (s[i] == 0 || (len = hub_utf8_decode(s + i, n - i, NULL)) == 0)
            return 0;
    return 1;
}

/* Reads a varint of at most 10 bytes; returns bytes used or 0. */
static size_t get_varint(const uint8_t *p, size_t n, uint64_t *v)
{
    uint64_t r = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

typedef struct chk {
    char *err;
    size_t errlen;
    int max_depth;
    char path[200];
    size_t plen;
} chk_t;

static int fail(chk_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(chk_t *c, const char *fmt, ...)
{
    if (c->err == NULL || c->errlen == 0)
        return -1;
    size_t off = 0;
    if (c->plen) {
        int n = snprintf(c->err, c->errlen, "%s: ", c->path);
        off = n < 0 ? 0 : (size_t)n;
        if (off >= c->errlen)
            return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + off, c->errlen - off, fmt, ap);
    va_end(ap);
    return -1;
}

/* Walks one message; `depth` is its nesting level (the top is 1). */
static int walk(chk_t *c, const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n,
                int depth)
{
    if (depth > c->max_depth)
        return fail(c, "nesting deeper than %d levels", c->max_depth);
    size_t i = 0;
    while (i < n) {
        uint64_t key;
        size_t u = get_varint(p + i, n - i, &key);
        if (u == 0)
            return fail(c, "malformed protobuf");
        i += u;
        uint32_t wt = (uint32_t)(key & 7);
        uint64_t num = key >> 3;
        if (num == 0 || num > 536870911u)
            return fail(c, "malformed protobuf");
        uint64_t v;
        switch (wt) {
        case 0:
            u = get_varint(p + i, n - i, &v);
            if (u == 0)
                return fail(c, "malformed protobuf");
            i += u;
            continue;
        case 1:
            if (n - i < 8)
                return fail(c, "malformed protobuf");
            i += 8;
            continue;
        case 5:
            if (n - i < 4)
                return fail(c, "malformed protobuf");
            i += 4;
            continue;
        case 2:
            break;
        default:
            return fail(c, "malformed protobuf");
        }
        u = get_varint(p + i, n - i, &v);
        if (u == 0 || v > n - i - u)
            return fail(c, "malformed protobuf");
        i += u;
        const uint8_t *body = p + i;
        size_t blen = (size_t)v;
        i += blen;
        const ProtobufCFieldDescriptor *f =
            desc ? protobuf_c_message_descriptor_get_field(desc, (int)num) : NULL;
        if (f == NULL)
            continue; /* unknown field: protobuf-c keeps it as bytes */
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        size_t old = c->plen;
        int w = snprintf(c->path + c->plen, sizeof c->path - c->plen, "%s%s", c->plen ? "." : "",
                         f->name);
        if (w > 0)
            c->plen = c->plen + (size_t)w < sizeof c->path ? c->plen + (size_t)w
                                                           : sizeof c->path - 1;
        int rc = 0;
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            if (memchr(body, 0, blen))
                rc = fail(c, "string contains a NUL character");
            else if (!pbcheck_utf8(body, blen))
                rc = fail(c, "string is not valid UTF-8");
        } else {
            rc = walk(c, f->descriptor, body, blen, depth + 1);
        }
        c->plen = old;
        c->path[old] = '\0';
        if (rc)
            return rc;
    }
    return 0;
}

int pbcheck_wire(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                 int max_depth, char *err, size_t errlen)
{
    chk_t c = { .err = err, .errlen = errlen, .max_depth = max_depth };
    c.path[0] = '\0';
    if (err && errlen)
        err[0] = '\0';
    return walk(&c, desc, data, len, 1);
}

int pbcheck_find_bytes(const uint8_t *data, size_t len, uint32_t field_no, const uint8_t **out,
                       size_t *out_len)
{
    int found = -1;
    size_t i = 0;
    while (i < len) {
        uint64_t key, v;
        size_t u = get_varint(data + i, len - i, &key);
        if (u == 0)
            return found;
        i += u;
        switch (key & 7) {
        case 0:
            u = get_varint(data + i, len - i, &v);
            if (u == 0)
                return found;
            i += u;
            break;
        case 1:
            if (len - i < 8)
                return found;
            i += 8;
            break;
        case 5:
            if (len - i < 4)
                return found;
            i += 4;
            break;
        case 2:
            u = get_varint(data + i, len - i, &v);
            if (u == 0 || v > len - i - u)
                return found;
            i += u;
            if ((key >> 3) == field_no) {
                *out = data + i;
                *out_len = (size_t)v;
                found = 0;
            }
            i += (size_t)v;
            break;
        default:
            return found;
        }
    }
    return found;
}
