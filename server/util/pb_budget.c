/* pb_budget.c -- see pb_budget.h. Each block carries its size in a header so
 * that free can give the bytes back to the budget. */
#include "pb_budget.h"

#include "alloc.h"

typedef union {
    size_t size;
    max_align_t align;
} block_header_t;

static void *budget_alloc(void *data, size_t size)
{
    pb_budget_t *b = data;
    if (size > b->limit || b->used > b->limit - size) {
        b->exceeded = 1;
        return NULL;
    }
    block_header_t *h = hub_malloc(sizeof *h + size);
    if (h == NULL)
        return NULL;
    h->size = size;
    b->used += size;
    return h + 1;
}

static void budget_free(void *data, void *p)
{
    pb_budget_t *b = data;
    if (p == NULL)
        return;
    block_header_t *h = (block_header_t *)p - 1;
    b->used -= h->size;
    hub_free(h);
}

void pb_budget_init(pb_budget_t *b, size_t limit)
{
    b->allocator.alloc = budget_alloc;
    b->allocator.free = budget_free;
    b->allocator.allocator_data = b;
    b->used = 0;
    b->limit = limit;
    b->exceeded = 0;
}
