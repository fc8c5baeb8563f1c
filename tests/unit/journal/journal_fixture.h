/* journal_fixture.h -- helpers shared by the journal tests (header-only:
 * each *_test.c is its own program). */
#ifndef MHTAS_TESTS_JOURNAL_FIXTURE_H
#define MHTAS_TESTS_JOURNAL_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"
#include "journal/journal_format.h"
#include "util/alloc.h"

#define JDIR "/j"

/* A record's payload is derived from an id: 8 bytes of id, then a filler
 * whose length and bytes depend on the id, so a replayed payload proves
 * which append it came from and that it is whole. */
static inline size_t fx_payload(uint64_t id, uint8_t *out)
{
    size_t n = 8 + (size_t)((id * 7919u) % 300u);
    memcpy(out, &id, 8);
    for (size_t k = 8; k < n; k++)
        out[k] = (uint8_t)(id * 31u + k);
    return n;
}

/* Returns the id, or UINT64_MAX if the payload is not one fx_payload made. */
static inline uint64_t fx_check(const uint8_t *p, size_t len)
{
    uint8_t want[512];
    uint64_t id;
    if (len < 8)
        return UINT64_MAX;
    memcpy(&id, p, 8);
    if (fx_payload(id, want) != len || memcmp(want, p, len) != 0)
        return UINT64_MAX;
    return id;
}

typedef struct fx_rec {
    uint64_t ticket, id;
} fx_rec_t;

typedef struct fx_list {
    fx_rec_t *r;
    size_t n, cap;
    uint64_t snap; /* snapshot ticket seen, 0 if none */
    int bad;       /* a payload that fx_check rejected */
} fx_list_t;

static inline void fx_push(fx_list_t *l, uint64_t ticket, uint64_t id)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->r = realloc(l->r, l->cap * sizeof *l->r);
        if (l->r == NULL)
            abort();
    }
    l->r[l->n++] = (fx_rec_t){ ticket, id };
}

static inline void fx_free(fx_list_t *l)
{
    free(l->r);
    memset(l, 0, sizeof *l);
}

/* Replay callbacks: collect (ticket, id). A snapshot's payload is a list of
 * (ticket, id) pairs, as fx_snapshot_payload writes it. */
static inline int fx_on_record(void *ctx, uint64_t ticket, const uint8_t *p, size_t len)
{
    fx_list_t *l = ctx;
    uint64_t id = fx_check(p, len);
    if (id == UINT64_MAX)
        l->bad++;
    fx_push(l, ticket, id);
    return 0;
}

static inline int fx_on_snapshot(void *ctx, uint64_t up_to, const uint8_t *p, size_t len)
{
    fx_list_t *l = ctx;
    l->snap = up_to;
    for (size_t i = 0; i + 16 <= len; i += 16) {
        uint64_t t, id;
        memcpy(&t, p + i, 8);
        memcpy(&id, p + i + 8, 8);
        fx_push(l, t, id);
    }
    return 0;
}

static inline journal_replay_t fx_replay(fx_list_t *l)
{
    return (journal_replay_t){ fx_on_snapshot, fx_on_record, l };
}

/* Snapshot payload for every record in l with ticket <= up_to; caller frees. */
static inline uint8_t *fx_snapshot_payload(const fx_list_t *l, uint64_t up_to, size_t *len)
{
    uint8_t *p = malloc(l->n * 16 + 1);
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->r[i].ticket <= up_to) {
            memcpy(p + n, &l->r[i].ticket, 8);
            memcpy(p + n + 8, &l->r[i].id, 8);
            n += 16;
        }
    *len = n;
    return p;
}

/* done_cb that records the last result. */
typedef struct fx_done {
    int calls;
    journal_result_t last;
    uint64_t acked_upto; /* highest durable reported with status 0 */
    int errors;
} fx_done_t;

static inline void fx_done_cb(void *ctx, const journal_result_t *r)
{
    fx_done_t *d = ctx;
    d->calls++;
    d->last = *r;
    if (r->status == 0)
        d->acked_upto = r->durable;
    else
        d->errors++;
}

/* Appends one record with payload id; returns the journal_append code. */
static inline int fx_append(journal_t *j, uint64_t id, uint64_t *ticket)
{
    uint8_t p[512];
    size_t n = fx_payload(id, p);
    return journal_append(j, p, n, ticket);
}

typedef struct fx_names {
    int segs, snaps, other;
} fx_names_t;

static inline int fx_count_cb(void *ud, const char *name)
{
    fx_names_t *c = ud;
    uint64_t v;
    int k = journal_parse_name(name, &v);
    if (k == JOURNAL_KIND_SEGMENT)
        c->segs++;
    else if (k == JOURNAL_KIND_SNAPSHOT)
        c->snaps++;
    else
        c->other++;
    return 0;
}

static inline fx_names_t fx_count(const journal_io_t *io, const char *dir)
{
    fx_names_t c = { 0, 0, 0 };
    io->list(io->ctx, dir, fx_count_cb, &c);
    return c;
}

#endif
