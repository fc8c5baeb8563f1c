/* alloc.h -- the one allocator of the hub.
 *
 * Every module allocates through these functions (after redis's zmalloc and
 * nghttp2's malloc_wrapper.h) so that tests can count allocations and make
 * the N-th one fail. The hooks are process-wide: allocation is the one piece
 * of global state we accept, because threading an allocator through every
 * call would cost more clarity than it buys.
 */
#ifndef MHTAS_UTIL_ALLOC_H
#define MHTAS_UTIL_ALLOC_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

/* Like malloc/calloc/realloc/free/strdup. They return NULL when the test hook
 * says so or the system is out of memory; callers must handle it. */
void *hub_malloc(size_t size);
void *hub_calloc(size_t n, size_t size);
void *hub_realloc(void *p, size_t size);
void hub_free(void *p);
char *hub_strdup(const char *s);
char *hub_strndup(const char *s, size_t n);

/* A protobuf-c allocator over hub_malloc/hub_free. Messages built with
 * hub-allocated fields (every string, repeated array and sub-message its own
 * allocation) are freed with protobuf_c_message_free_unpacked(m, hub_pb_allocator()). */
ProtobufCAllocator *hub_pb_allocator(void);
/* A deep copy of m (pack, then unpack with hub_pb_allocator()), freed like
 * the above; NULL for NULL or when out of memory. */
void *hub_pb_clone(const ProtobufCMessage *m);

/* Test hooks. hub_alloc_fail_after(n): the next n allocations succeed, then
 * every one fails until hub_alloc_fail_after(-1) turns it off. */
void hub_alloc_fail_after(long n);
size_t hub_alloc_live(void); /* allocations not yet freed */

#endif
