/* alloc.c -- counting allocator with a fail-the-N-th-call test hook. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Counters are atomic because the journal's worker thread (libuv threadpool)
 * allocates too. */
static atomic_long fail_after = -1;
static atomic_size_t live;

static int should_fail(void)
{
    long n = atomic_load(&fail_after);
    if (n < 0)
        return 0;
    if (n == 0)
        return 1;
    atomic_fetch_sub(&fail_after, 1);
    return 0;
}

void *hub_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    void *p = malloc(size ? size : 1);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *hub_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *hub_realloc(void *p, size_t size)
{
    if (p == NULL)
        return hub_malloc(size);
    if (should_fail())
        return NULL;
    return realloc(p, size ? size : 1);
}

void hub_free(void *p)
{
    if (p == NULL)
        return;
    atomic_fetch_sub(&live, 1);
    free(p);
}

char *hub_strndup(const char *s, size_t n)
{
    char *d = hub_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *hub_strdup(const char *s)
{
    return hub_strndup(s, strlen(s));
}

static void *pb_alloc(void *data, size_t size)
{
    (void)data;
    return hub_malloc(size);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    hub_free(p);
}

static ProtobufCAllocator pb_allocator = { pb_alloc, pb_free, NULL };

ProtobufCAllocator *hub_pb_allocator(void)
{
    return &pb_allocator;
}

void *hub_pb_clone(const ProtobufCMessage *m)
{
    if (m == NULL)
        return NULL;
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = hub_malloc(n ? n : 1);
    if (buf == NULL)
        return NULL;
    protobuf_c_message_pack(m, buf);
    ProtobufCMessage *r = protobuf_c_message_unpack(m->descriptor, hub_pb_allocator(), n, buf);
    hub_free(buf);
    return r;
}

void hub_alloc_fail_after(long n)
{
    atomic_store(&fail_after, n);
}

size_t hub_alloc_live(void)
{
    return atomic_load(&live);
}
