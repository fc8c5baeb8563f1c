/* journal_io_mem.c -- in-memory files with fault injection and a power-loss
 * model, for the journal's tests (after SQLite's src/test6.c).
 *
 * The model is described in journal_io.h. It is deliberately harsher than
 * most real file systems: unsynced writes land in any order and each may be
 * torn, and each unsynced directory change is kept or lost on its own. If the
 * journal survives this, it survives ext4 and XFS too (the exception, pages
 * of one write landing out of order, is noted in journal.h).
 *
 * One mutex guards everything, so the journal's worker thread and the test
 * thread may both call in.
 */
#include "journal/journal_io.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes_t;

enum { P_WRITE, P_TRUNC };

typedef struct pend {
    int type;
    uint64_t off; /* write offset, or truncate length */
    size_t len;
    uint8_t *data;
} pend_t;

typedef struct inode {
    bytes_t cur, dur;
    pend_t *pend;
    size_t npend, cappend;
} inode_t;

typedef struct dent {
    char *path;
    size_t ino;
} dent_t;

typedef struct dirmap {
    dent_t *e;
    size_t n, cap;
} dirmap_t;

enum { D_CREATE, D_RENAME, D_UNLINK };

typedef struct dop {
    int type;
    char *a, *b;
    size_t ino;
} dop_t;

typedef struct mfd {
    int id;
    size_t ino;
} mfd_t;

typedef struct mlock {
    int id;
    char *dir;
} mlock_t;

struct journal_io_mem {
    journal_io_t io;
    pthread_mutex_t mu;
    uint64_t rng;
    inode_t **ino;
    size_t nino, capino;
    dirmap_t cur, dur;
    dop_t *dops;
    size_t ndops, capdops;
    mfd_t *fds;
    size_t nfds, capfds;
    mlock_t *locks;
    size_t nlocks, caplocks;
    int next_id;
    uint64_t calls[JOURNAL_IO_OP_COUNT_ + 1];
    uint64_t fail_in[JOURNAL_IO_OP_COUNT_];
    uint64_t crash_in;
    bool dead;
    bool injected; /* the current operation's failure was injected */
    int64_t capacity; /* < 0: unlimited */
};

/* Growth helper for the many small arrays here; aborts on OOM because a test
 * fixture that cannot allocate has nothing useful left to test. */
static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 8;
    while (c < need)
        c *= 2;
    void *q = hub_realloc(p, c * elem);
    if (q == NULL)
        abort();
    *cap = c;
    return q;
}

static uint64_t rnd(journal_io_mem_t *m)
{
    /* xorshift64*: deterministic per seed, good enough for fates. */
    uint64_t x = m->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    m->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static char *dupstr(const char *s)
{
    char *d = hub_strdup(s);
    if (d == NULL)
        abort();
    return d;
}

static void bytes_write(bytes_t *b, uint64_t off, const uint8_t *data, size_t len)
{
    size_t end = (size_t)off + len;
    if (end > b->len) {
        b->p = grow(b->p, &b->cap, end, 1);
        memset(b->p + b->len, 0, end - b->len);
        b->len = end;
    }
    if (len)
        memcpy(b->p + off, data, len);
}

static void bytes_trunc(bytes_t *b, uint64_t len)
{
    if (len > b->len) {
        b->p = grow(b->p, &b->cap, (size_t)len, 1);
        memset(b->p + b->len, 0, (size_t)len - b->len);
    }
    b->len = (size_t)len;
}

static void bytes_copy(bytes_t *dst, const bytes_t *src)
{
    dst->p = grow(dst->p, &dst->cap, src->len ? src->len : 1, 1);
    if (src->len)
        memcpy(dst->p, src->p, src->len);
    dst->len = src->len;
}

static void pend_clear(inode_t *in)
{
    for (size_t i = 0; i < in->npend; i++)
        hub_free(in->pend[i].data);
    in->npend = 0;
}

static size_t ino_new(journal_io_mem_t *m)
{
    m->ino = grow(m->ino, &m->capino, m->nino + 1, sizeof *m->ino);
    inode_t *in = hub_calloc(1, sizeof *in);
    if (in == NULL)
        abort();
    m->ino[m->nino] = in;
    return m->nino++;
}

/* ----------------------------------------------------------- directories */

static dent_t *dm_find(dirmap_t *d, const char *path)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->e[i].path, path) == 0)
            return &d->e[i];
    return NULL;
}

static void dm_set(dirmap_t *d, const char *path, size_t ino)
{
    dent_t *e = dm_find(d, path);
    if (e) {
        e->ino = ino;
        return;
    }
    d->e = grow(d->e, &d->cap, d->n + 1, sizeof *d->e);
    d->e[d->n].path = dupstr(path);
    d->e[d->n].ino = ino;
    d->n++;
}

static void dm_del(dirmap_t *d, const char *path)
{
    dent_t *e = dm_find(d, path);
    if (e == NULL)
        return;
    hub_free(e->path);
    *e = d->e[--d->n];
}

static void dm_clear(dirmap_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        hub_free(d->e[i].path);
    d->n = 0;
}

static void dm_copy(dirmap_t *dst, const dirmap_t *src)
{
    dm_clear(dst);
    for (size_t i = 0; i < src->n; i++)
        dm_set(dst, src->e[i].path, src->e[i].ino);
}

static void dop_apply(dirmap_t *d, const dop_t *op)
{
    switch (op->type) {
    case D_CREATE:
        dm_set(d, op->a, op->ino);
        break;
    case D_RENAME: {
        dent_t *e = dm_find(d, op->a);
        if (e) {
            size_t ino = e->ino;
            dm_del(d, op->a);
            dm_set(d, op->b, ino);
        }
        break;
    }
    case D_UNLINK:
        dm_del(d, op->a);
        break;
    }
}

static void dop_add(journal_io_mem_t *m, int type, const char *a, const char *b, size_t ino)
{
    m->dops = grow(m->dops, &m->capdops, m->ndops + 1, sizeof *m->dops);
    m->dops[m->ndops++] = (dop_t){ type, dupstr(a), b ? dupstr(b) : NULL, ino };
}

static void dop_free(dop_t *op)
{
    hub_free(op->a);
    hub_free(op->b);
}

/* "dir/name" -> is it directly in dir? */
static bool in_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/' && strchr(path + n + 1, '/') == NULL;
}

/* ------------------------------------------------------------ power loss */

/* Applies one pending operation to the durable image with a random fate. */
static void apply_fate(journal_io_mem_t *m, inode_t *in, const pend_t *p)
{
    uint64_t r = rnd(m) % 4;
    if (p->type == P_TRUNC) {
        if (r < 2)
            bytes_trunc(&in->dur, p->off);
        return;
    }
    if (r == 0) /* dropped */
        return;
    if (r == 1 || p->len == 0) { /* applied */
        bytes_write(&in->dur, p->off, p->data, p->len);
        return;
    }
    /* torn: a prefix lands; the rest is missing (r == 2) or zeros (r == 3),
     * as when the file size reached the disk before the data did */
    size_t keep = (size_t)(rnd(m) % p->len);
    bytes_write(&in->dur, p->off, p->data, keep);
    if (r == 3) {
        uint8_t *z = hub_calloc(1, p->len - keep);
        if (z == NULL)
            abort();
        bytes_write(&in->dur, p->off + keep, z, p->len - keep);
        hub_free(z);
    }
}

static void crash_locked(journal_io_mem_t *m)
{
    for (size_t i = 0; i < m->nino; i++) {
        inode_t *in = m->ino[i];
        /* random order: Fisher-Yates over the pending list */
        for (size_t k = in->npend; k > 1; k--) {
            size_t j = (size_t)(rnd(m) % k);
            pend_t t = in->pend[k - 1];
            in->pend[k - 1] = in->pend[j];
            in->pend[j] = t;
        }
        for (size_t k = 0; k < in->npend; k++)
            apply_fate(m, in, &in->pend[k]);
        pend_clear(in);
        bytes_copy(&in->cur, &in->dur);
    }
    for (size_t i = 0; i < m->ndops; i++) {
        if (rnd(m) % 2)
            dop_apply(&m->dur, &m->dops[i]);
        dop_free(&m->dops[i]);
    }
    m->ndops = 0;
    dm_copy(&m->cur, &m->dur);
    m->nfds = 0;
    for (size_t i = 0; i < m->nlocks; i++)
        hub_free(m->locks[i].dir);
    m->nlocks = 0;
}

/* Every operation starts here: count it, then decide whether it runs. */
static int enter(journal_io_mem_t *m, journal_io_op_t op)
{
    pthread_mutex_lock(&m->mu);
    m->calls[op]++;
    m->calls[JOURNAL_IO_OP_COUNT_]++;
    m->injected = false;
    if (m->dead)
        return -EIO;
    if (m->crash_in && --m->crash_in == 0) {
        crash_locked(m);
        m->dead = true;
        return -EIO;
    }
    if (m->fail_in[op] && --m->fail_in[op] == 0) {
        m->injected = true;
        return -EIO;
    }
    return 0;
}

static int leave(journal_io_mem_t *m, int rc)
{
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static inode_t *fd_ino(journal_io_mem_t *m, int fd)
{
    for (size_t i = 0; i < m->nfds; i++)
        if (m->fds[i].id == fd)
            return m->ino[m->fds[i].ino];
    return NULL;
}

static size_t used_bytes(journal_io_mem_t *m)
{
    /* Space is held by files with a name or an open descriptor. */
    size_t used = 0;
    for (size_t i = 0; i < m->nino; i++) {
        bool live = false;
        for (size_t k = 0; k < m->cur.n && !live; k++)
            live = m->cur.e[k].ino == i;
        for (size_t k = 0; k < m->nfds && !live; k++)
            live = m->fds[k].ino == i;
        if (live)
            used += m->ino[i]->cur.len;
    }
    return used;
}

/* ------------------------------------------------------------ operations */

static int mem_open(void *ctx, const char *path, int flags, int *fd)
{
    journal_io_mem_t *m = ctx;
    int rc = enter(m, JOURNAL_IO_OP_OPEN);
    if (rc)
        return leave(m, rc);
    dent_t *e = dm_find(&m->cur, path);
    size_t ino;
    if (e == NULL) {
        if (!(flags & JOURNAL_IO_CREAT))
            return leave(m, -ENOENT);
        ino = ino_new(m);
        dm_set(&m->cur, path, ino);
        dop_add(m, D_CREATE, path, NULL, ino);
    } else {
        if ((flags & JOURNAL_IO_CREAT) && (flags & JOURNAL_IO_EXCL))
            return leave(m, -EEXIST);
        ino = e->ino;
        if (flags & JOURNAL_IO_TRUNC) {
            inode_t *in = m->ino[ino];
            bytes_trunc(&in->cur, 0);
            in->pend = grow(in->pend, &in->cappend, in->npend + 1, sizeof *in->pend);
            in->pend[in->npend++] = (pend_t){ P_TRUNC, 0, 0, NULL };
        }
    }
    m->fds = grow(m->fds, &m->capfds, m->nfds + 1, sizeof *m->fds);
    m->fds[m->nfds] = (mfd_t){ ++m->next_id, ino };
    *fd = m->fds[m->nfds++].id;
    return leave(m, 0);
}

static int mem_close(void *ctx, int fd)
{
    journal_io_mem_t *m = ctx;
    int rc = enter(m, JOURNAL_IO_OP_CLOSE);
    /* close always releases the descriptor, even when it "fails" */
    for (size_t i = 0; i < m->nfds; i++)
        if (m->fds[i].id == fd) {
            m->fds[i] = m->fds[--m->nfds];
            return leave(m, rc);
        }
    return leave(m, rc ? rc : -EBADF);
}

static int64_t mem_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    journal_io_mem_t *m = ctx;
    int rc = enter(m, JOURNAL_IO_OP_PREAD);
    if (rc)
        return leave(m, rc);
    inode_t *in = fd_ino(m, fd);
    if (in == NULL)
        return leave(m, -EBADF);
    if (off >= in->cur.len)
        return leave(m, 0);
    size_t n = in->cur.len - (size_t)off;
    if (n > len)
        n = len;
    memcpy(buf, in->cur.p + off, n);
    pthread_mutex_unlock(&m->mu);
    return (int64_t)n;
}

static int64_t mem_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
    journal_io_mem_t *m = ctx;
    int rc = enter(m, JOURNAL_IO_OP_PWRITE);
    if (rc)
        return leave(m, rc);
    inode_t *in = fd_ino(m, fd);
    if (in == NULL)
        return leave(m, -EBADF);
    if (m->capacity >= 0) {
        size_t used = used_bytes(m);
        size_t end = (size_t)off + len;
        size_t growth = end > in->cur.len ? end - in->cur.len : 0;
        if (used + growth > (size_t)m->capacity) {
            size_t allowed_end = in->cur.len + ((size_t)m->capacity > used ? (size_t)m->capacity - used : 0);
            if (allowed_end <= off)
                return leave(m, -ENOSPC);
            len = allowed_end - (size_t)off;
        }
    }
    bytes_write(&in->cur, off, buf, len);
    in->pend = grow(in->pend, &in->cappend, in->npend + 1, sizeof *in->pend);
    uint8_t *copy = hub_malloc(len);
    if (copy == NULL)
        abort();
    memcpy(copy, buf, len);
    in->pend[in->npend++] = (pend_t){ P_WRITE, off, len, copy };
    pthread_mutex_unlock(&m->mu);
    return (int64_t)len;
}

static int sync_common(journal_io_mem_t *m, journal_io_op_t op, int fd)
{
    bool injected = false;
    pthread_mutex_lock(&m->mu);
    m->calls[op]++;
    m->calls[JOURNAL_IO_OP_COUNT_]++;
    if (m->dead)
        return leave(m, -EIO);
    if (m->crash_in && --m->crash_in == 0) {
        crash_locked(m);
        m->dead = true;
        return leave(m, -EIO);
    }
    if (m->fail_in[op] && --m->fail_in[op] == 0)
        injected = true;
    inode_t *in = fd_ino(m, fd);
    if (in == NULL)
        return leave(m, -EBADF);
    if (injected) {
        /* Linux after a writeback error: the dirty pages are marked clean
         * and forgotten, so they never reach the disk, and the next fsync has
         * nothing to report. */
        pend_clear(in);
        return leave(m, -EIO);
    }
    pend_clear(in);
    bytes_copy(&in->dur, &in->cur);
    return leave(m, 0);
}

static int mem_fdatasync(void *ctx, int fd)
{
    return sync_common(ctx, JOURNAL_IO_OP_FDATASYNC, fd);
}

static int mem_fsync(void *ctx, int fd)
{
    return sync_common(ctx, JOURNAL_IO_OP_FSYNC, fd);
}

static int mem_ftruncate(void *ctx, int fd, uint64_t len)
{
    journal_io_mem_t *m = ctx;
    int rc = enter(m, JOURNAL_IO_OP_FTRUNCATE);
    if (rc)
        return leave(m, rc);
    inode_t *in = fd_ino(m, fd);
    if (in == NULL)
        return leave(m, -EBADF);
    bytes_trunc(&in->cur, len);
    in->pend = grow(in->pend, &in->cappend, in->npend + 1, sizeof *in->pend);
    in->pend[in->npend++] = (pend_t){ P_TRUNC, len, 0, NULL };
    return leave(m, 0);
}

static int mem_fsize(void *ctx, int fd, uint64_t *size)
{
    journal_io_mem_t *m = ctx;
    int rc = enter(m, JOURNAL_IO_OP_FSIZE);
    if (rc)
        return leave(m, rc);
    inode_t *in = fd_ino(m, fd);
    if (in == NULL)
        return leave(m, -EBADF);
    *size = in->cur.len;
    return leave(m, 0);
}

static int mem_rename(void *ctx, const char *from, const char *to)
{
    journal_io_mem_t *m = ctx;
    int rc = enter(m, JOURNAL_IO_OP_RENAME);
    if (rc)
        return leave(m, rc);
    dop_t op = { D_RENAME, (char *)from, (char *)to, 0 };
    if (dm_find(&m->cur, from) == NULL)
        return leave(m, -ENOENT);
    dop_apply(&m->cur, &op);
    dop_add(m, D_RENAME, from, to, 0);
    return leave(m, 0);
}

static int mem_unlink(void *ctx, const char *path)
{
    journal_io_mem_t *m = ctx;
    int rc = enter(m, JOURNAL_IO_OP_UNLINK);
    if (rc)
        return leave(m, rc);
    if (dm_find(&m->cur, path) == NULL)
        return leave(m, -ENOENT);
    dm_del(&m->cur, path);
    dop_add(m, D_UNLINK, path, NULL, 0);
    return leave(m, 0);
}

static int mem_list(void *ctx, const char *dir, journal_io_list_cb cb, void *ud)
{
    journal_io_mem_t *m = ctx;
    int rc = enter(m, JOURNAL_IO_OP_LIST);
    if (rc)
        return leave(m, rc);
    /* Copy the names first: cb may call back into the io. */
    size_t n = 0;
    char **names = hub_calloc(m->cur.n + 1, sizeof *names);
    if (names == NULL)
        abort();
    for (size_t i = 0; i < m->cur.n; i++)
        if (in_dir(m->cur.e[i].path, dir))
            names[n++] = dupstr(m->cur.e[i].path + strlen(dir) + 1);
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = cb(ud, names[i]);
        hub_free(names[i]);
    }
    hub_free(names);
    return rc;
}

static int mem_fsync_dir(void *ctx, const char *dir)
{
    journal_io_mem_t *m = ctx;
    int rc = enter(m, JOURNAL_IO_OP_FSYNC_DIR);
    if (rc && !m->injected)
        return leave(m, rc);
    /* On an injected failure, as with files: the changes are no longer
     * pending but not durable either, so a retry "succeeds" without making
     * them so. */
    size_t k = 0;
    for (size_t i = 0; i < m->ndops; i++) {
        if (in_dir(m->dops[i].a, dir)) {
            if (!rc)
                dop_apply(&m->dur, &m->dops[i]);
            dop_free(&m->dops[i]);
        } else {
            m->dops[k++] = m->dops[i];
        }
    }
    m->ndops = k;
    return leave(m, rc);
}

static int mem_lock(void *ctx, const char *dir, int *handle)
{
    journal_io_mem_t *m = ctx;
    int rc = enter(m, JOURNAL_IO_OP_LOCK);
    if (rc)
        return leave(m, rc);
    for (size_t i = 0; i < m->nlocks; i++)
        if (strcmp(m->locks[i].dir, dir) == 0)
            return leave(m, -EWOULDBLOCK);
    m->locks = grow(m->locks, &m->caplocks, m->nlocks + 1, sizeof *m->locks);
    m->locks[m->nlocks] = (mlock_t){ ++m->next_id, dupstr(dir) };
    *handle = m->locks[m->nlocks++].id;
    return leave(m, 0);
}

static int mem_unlock(void *ctx, int handle)
{
    journal_io_mem_t *m = ctx;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nlocks; i++)
        if (m->locks[i].id == handle) {
            hub_free(m->locks[i].dir);
            m->locks[i] = m->locks[--m->nlocks];
            return leave(m, 0);
        }
    return leave(m, -EBADF);
}

/* -------------------------------------------------------- public control */

journal_io_mem_t *journal_io_mem_new(uint64_t seed)
{
    journal_io_mem_t *m = hub_calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->rng = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
    if (m->rng == 0)
        m->rng = 1;
    m->capacity = -1;
    m->io = (journal_io_t){
        .ctx = m,
        .open = mem_open,
        .close = mem_close,
        .pread = mem_pread,
        .pwrite = mem_pwrite,
        .fdatasync = mem_fdatasync,
        .fsync = mem_fsync,
        .ftruncate = mem_ftruncate,
        .fsize = mem_fsize,
        .rename = mem_rename,
        .unlink = mem_unlink,
        .list = mem_list,
        .fsync_dir = mem_fsync_dir,
        .lock = mem_lock,
        .unlock = mem_unlock,
    };
    return m;
}

void journal_io_mem_free(journal_io_mem_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nino; i++) {
        pend_clear(m->ino[i]);
        hub_free(m->ino[i]->pend);
        hub_free(m->ino[i]->cur.p);
        hub_free(m->ino[i]->dur.p);
        hub_free(m->ino[i]);
    }
    hub_free(m->ino);
    dm_clear(&m->cur);
    dm_clear(&m->dur);
    hub_free(m->cur.e);
    hub_free(m->dur.e);
    for (size_t i = 0; i < m->ndops; i++)
        dop_free(&m->dops[i]);
    hub_free(m->dops);
    hub_free(m->fds);
    for (size_t i = 0; i < m->nlocks; i++)
        hub_free(m->locks[i].dir);
    hub_free(m->locks);
    pthread_mutex_destroy(&m->mu);
    hub_free(m);
}

const journal_io_t *journal_io_mem_io(journal_io_mem_t *m)
{
    return &m->io;
}

void journal_io_mem_crash(journal_io_mem_t *m)
{
    pthread_mutex_lock(&m->mu);
    crash_locked(m);
    pthread_mutex_unlock(&m->mu);
}

void journal_io_mem_crash_at(journal_io_mem_t *m, uint64_t n)
{
    pthread_mutex_lock(&m->mu);
    m->crash_in = n;
    pthread_mutex_unlock(&m->mu);
}

int journal_io_mem_crashed(const journal_io_mem_t *m)
{
    return m->dead;
}

void journal_io_mem_restart(journal_io_mem_t *m)
{
    pthread_mutex_lock(&m->mu);
    m->dead = false;
    m->crash_in = 0;
    memset(m->fail_in, 0, sizeof m->fail_in);
    pthread_mutex_unlock(&m->mu);
}

void journal_io_mem_fail_op(journal_io_mem_t *m, journal_io_op_t op, uint64_t n)
{
    pthread_mutex_lock(&m->mu);
    m->fail_in[op] = n;
    pthread_mutex_unlock(&m->mu);
}

void journal_io_mem_enospc_after(journal_io_mem_t *m, int64_t bytes)
{
    pthread_mutex_lock(&m->mu);
    m->capacity = bytes < 0 ? -1 : (int64_t)used_bytes(m) + bytes;
    pthread_mutex_unlock(&m->mu);
}

uint64_t journal_io_mem_calls(const journal_io_mem_t *m, journal_io_op_t op)
{
    return m->calls[op];
}

uint8_t *journal_io_mem_get(journal_io_mem_t *m, const char *path, size_t *len)
{
    pthread_mutex_lock(&m->mu);
    dent_t *e = dm_find(&m->cur, path);
    uint8_t *copy = NULL;
    if (e) {
        inode_t *in = m->ino[e->ino];
        copy = hub_malloc(in->cur.len);
        if (copy) {
            if (in->cur.len)
                memcpy(copy, in->cur.p, in->cur.len);
            *len = in->cur.len;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return copy;
}

int journal_io_mem_put(journal_io_mem_t *m, const char *path, const uint8_t *data, size_t len)
{
    pthread_mutex_lock(&m->mu);
    dent_t *e = dm_find(&m->cur, path);
    size_t ino;
    if (e) {
        ino = e->ino;
    } else {
        ino = ino_new(m);
        dm_set(&m->cur, path, ino);
    }
    dm_set(&m->dur, path, ino);
    inode_t *in = m->ino[ino];
    pend_clear(in);
    in->cur.len = 0;
    bytes_write(&in->cur, 0, data, len);
    bytes_copy(&in->dur, &in->cur);
    pthread_mutex_unlock(&m->mu);
    return 0;
}
