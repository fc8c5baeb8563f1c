/* journal_io.h -- the file operations the journal uses, as a vtable.
 *
 * Every byte the journal reads or writes goes through one of these, so tests
 * can swap the real POSIX implementation for an in-memory one that injects
 * faults and simulates power loss (after SQLite's src/test6.c). The set is
 * deliberately small: exactly what the journal needs.
 *
 * Conventions: every operation returns 0 (or a byte count) on success and a
 * negative errno on failure (-EIO, -ENOSPC, -EWOULDBLOCK...). Paths are full
 * paths ("dir/name"). File descriptors are small non-negative ints private
 * to the implementation. Operations may be called from the journal's worker
 * thread; an implementation must allow calls from one thread at a time at
 * least (both here are safe from several).
 */
#ifndef MHTAS_JOURNAL_IO_H
#define MHTAS_JOURNAL_IO_H

#include <stddef.h>
#include <stdint.h>

enum {
    JOURNAL_IO_RDONLY = 0,
    JOURNAL_IO_RDWR = 1,
    JOURNAL_IO_CREAT = 2, /* create if missing */
    JOURNAL_IO_EXCL = 4,  /* with CREAT: fail with -EEXIST if it exists */
    JOURNAL_IO_TRUNC = 8,
};

/* Operation kinds, for the fault injector's counters. */
typedef enum {
    JOURNAL_IO_OP_OPEN = 0,
    JOURNAL_IO_OP_CLOSE,
    JOURNAL_IO_OP_PREAD,
    JOURNAL_IO_OP_PWRITE,
    JOURNAL_IO_OP_FDATASYNC,
    JOURNAL_IO_OP_FSYNC,
    JOURNAL_IO_OP_FTRUNCATE,
    JOURNAL_IO_OP_FSIZE,
    JOURNAL_IO_OP_RENAME,
    JOURNAL_IO_OP_UNLINK,
    JOURNAL_IO_OP_LIST,
    JOURNAL_IO_OP_FSYNC_DIR,
    JOURNAL_IO_OP_LOCK,
    JOURNAL_IO_OP_COUNT_
} journal_io_op_t;

/* Called once per directory entry by list(); name is borrowed for the call.
 * Return non-zero to stop listing (list then returns that value). */
typedef int (*journal_io_list_cb)(void *ud, const char *name);

typedef struct journal_io {
    void *ctx;
    /* Opens path; on success *fd is set. */
    int (*open)(void *ctx, const char *path, int flags, int *fd);
    int (*close)(void *ctx, int fd);
    /* Byte counts (may be short) or a negative errno. */
    int64_t (*pread)(void *ctx, int fd, void *buf, size_t len, uint64_t off);
    int64_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, uint64_t off);
    int (*fdatasync)(void *ctx, int fd);
    int (*fsync)(void *ctx, int fd);
    int (*ftruncate)(void *ctx, int fd, uint64_t len);
    int (*fsize)(void *ctx, int fd, uint64_t *size);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    /* Calls cb for each entry of dir except "." and "..". */
    int (*list)(void *ctx, const char *dir, journal_io_list_cb cb, void *ud);
    /* Makes creations, renames and unlinks in dir durable. */
    int (*fsync_dir)(void *ctx, const char *dir);
    /* Takes an exclusive, non-blocking lock on dir (posix: flock on
     * dir/LOCK); -EWOULDBLOCK if another holder has it. *handle is passed to
     * unlock. */
    int (*lock)(void *ctx, const char *dir, int *handle);
    int (*unlock)(void *ctx, int handle);
} journal_io_t;

/* The real thing: open(2), pwrite(2), fdatasync(2), flock(2)... A static
 * object; do not free. */
const journal_io_t *journal_io_posix(void);

/* ------------------------------------------------- in-memory crash model
 *
 * Files live in memory as inodes with two images: what reads see now, and
 * what would survive a power cut ("durable"). Every pwrite/ftruncate is also
 * kept on the inode's pending list until fdatasync/fsync of that inode
 * applies it to the durable image. Directory changes (create, rename,
 * unlink) likewise stay pending until fsync_dir.
 *
 * crash() simulates power loss: for each inode, each pending operation, in
 * a random (seeded) order, is dropped, applied, or (writes only) torn: a
 * prefix lands and the rest is either missing or reads as zeros. Each
 * pending directory change is independently kept or lost. Then all file
 * descriptors and locks become invalid (-EBADF) and the durable images
 * become the current ones.
 *
 * A failed fdatasync behaves like Linux: the pending writes are discarded
 * from the pending list without reaching the durable image, so a retried
 * fdatasync reports success for data a crash will lose. A journal that
 * retries an fsync fails the power-loss test.
 */
typedef struct journal_io_mem journal_io_mem_t;

journal_io_mem_t *journal_io_mem_new(uint64_t seed);
void journal_io_mem_free(journal_io_mem_t *m);
/* The vtable to pass to journal_open; valid until journal_io_mem_free. */
const journal_io_t *journal_io_mem_io(journal_io_mem_t *m);

/* Power loss now (see above). */
void journal_io_mem_crash(journal_io_mem_t *m);
/* Power loss at the n-th (1-based) next operation of any kind: that
 * operation does not happen and it and every later one fail with -EIO (the
 * process is "dead") until journal_io_mem_restart(). 0 disables. */
void journal_io_mem_crash_at(journal_io_mem_t *m, uint64_t n);
int journal_io_mem_crashed(const journal_io_mem_t *m);
/* Ends the "dead" state after crash_at fired, like rebooting. */
void journal_io_mem_restart(journal_io_mem_t *m);
/* The n-th (1-based) next call of op fails with -EIO (nothing done);
 * 0 disables. One pending failure per kind. */
void journal_io_mem_fail_op(journal_io_mem_t *m, journal_io_op_t op, uint64_t n);
/* The disk is full after bytes more bytes of file growth: a write that would
 * pass the limit writes what fits (short count), then fails with -ENOSPC.
 * Truncation frees space. bytes < 0 removes the limit. */
void journal_io_mem_enospc_after(journal_io_mem_t *m, int64_t bytes);
/* Calls of op so far (all kinds if op == JOURNAL_IO_OP_COUNT_). */
uint64_t journal_io_mem_calls(const journal_io_mem_t *m, journal_io_op_t op);

/* Test helpers: read/replace a file's current content directly (e.g. to flip
 * a byte). get returns a hub_malloc'd copy (caller frees) or NULL if absent.
 * put replaces content and makes it durable. */
uint8_t *journal_io_mem_get(journal_io_mem_t *m, const char *path, size_t *len);
int journal_io_mem_put(journal_io_mem_t *m, const char *path, const uint8_t *data, size_t len);

#endif
