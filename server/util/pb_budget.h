/* pb_budget.h -- a protobuf-c allocator with a byte budget.
 *
 * protobuf-c unpacks without any size limit, and a small message on the wire
 * can blow up many times in memory (INTEGRATION.md measured 36x). Front ends
 * decode untrusted input through one of these, so one request can never cost
 * more than `limit` bytes of heap. The budget must outlive the message.
 */
#ifndef MHTAS_UTIL_PB_BUDGET_H
#define MHTAS_UTIL_PB_BUDGET_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct pb_budget {
    ProtobufCAllocator allocator;  /* pass &b->allocator to protobuf-c */
    size_t used;
    size_t limit;
    int exceeded;                  /* set once an allocation was refused */
} pb_budget_t;

void pb_budget_init(pb_budget_t *b, size_t limit);

#endif
