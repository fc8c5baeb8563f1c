/* journal_io_posix.c -- the journal's file operations on a real file system.
 *
 * Thin wrappers: the interesting decisions (when to sync, what to do after a
 * failure) live in journal.c so the in-memory crash model exercises them.
 */
#include "journal/journal_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int neg(void) { return errno ? -errno : -EIO; }

static int px_open(void *ctx, const char *path, int flags, int *fd)
{
    (void)ctx;
    int f = O_CLOEXEC | ((flags & JOURNAL_IO_RDWR) ? O_RDWR : O_RDONLY);
    if (flags & JOURNAL_IO_CREAT)
        f |= O_CREAT;
    if (flags & JOURNAL_IO_EXCL)
        f |= O_EXCL;
    if (flags & JOURNAL_IO_TRUNC)
        f |= O_TRUNC;
    int r;
    do
        r = open(path, f, 0640);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return neg();
    *fd = r;
    return 0;
}

static int px_close(void *ctx, int fd)
{
    (void)ctx;
    /* No EINTR retry: on Linux the descriptor is gone either way. */
    return close(fd) < 0 ? neg() : 0;
}

static int64_t px_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
    (void)ctx;
    ssize_t r;
    do
        r = pread(fd, buf, len, (off_t)off);
    while (r < 0 && errno == EINTR);
    return r < 0 ? neg() : (int64_t)r;
}

static int64_t px_pwrite(void *ctx, int fd, const void *buf, size_t len, uint64_t off)
{
    (void)ctx;
    ssize_t r;
    do
        r = pwrite(fd, buf, len, (off_t)off);
    while (r < 0 && errno == EINTR);
    return r < 0 ? neg() : (int64_t)r;
}

/* fdatasync and fsync are NOT retried on EINTR-free errors by design: after
 * a failed sync Linux may have dropped the dirty pages, so a second call can
 * report success for lost data. The caller treats any failure as final. */
static int px_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    int r;
    do
        r = fdatasync(fd);
    while (r < 0 && errno == EINTR);
    return r < 0 ? neg() : 0;
}

static int px_fsync(void *ctx, int fd)
{
    (void)ctx;
    int r;
    do
        r = fsync(fd);
    while (r < 0 && errno == EINTR);
    return r < 0 ? neg() : 0;
}

static int px_ftruncate(void *ctx, int fd, uint64_t len)
{
    (void)ctx;
    return ftruncate(fd, (off_t)len) < 0 ? neg() : 0;
}

static int px_fsize(void *ctx, int fd, uint64_t *size)
{
    (void)ctx;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return neg();
    *size = (uint64_t)st.st_size;
    return 0;
}

static int px_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return rename(from, to) < 0 ? neg() : 0;
}

static int px_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path) < 0 ? neg() : 0;
}

static int px_list(void *ctx, const char *dir, journal_io_list_cb cb, void *ud)
{
    (void)ctx;
    DIR *d = opendir(dir);
    if (d == NULL)
        return neg();
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno)
                rc = neg();
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((rc = cb(ud, e->d_name)) != 0)
            break;
    }
    closedir(d);
    return rc;
}

static int px_fsync_dir(void *ctx, const char *dir)
{
    (void)ctx;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return neg();
    int r = fsync(fd) < 0 ? neg() : 0;
    close(fd);
    return r;
}

/* flock rather than fcntl locks: flock belongs to the open file description,
 * so a second journal_open in the same process conflicts too (fcntl locks
 * are per process and would let it through), and it is released by the
 * kernel when the process dies, so a crash never leaves a stale lock. */
static int px_lock(void *ctx, const char *dir, int *handle)
{
    (void)ctx;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/LOCK", dir) >= sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return neg();
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno == EWOULDBLOCK ? -EWOULDBLOCK : neg();
        close(fd);
        return e;
    }
    *handle = fd;
    return 0;
}

static int px_unlock(void *ctx, int handle)
{
    (void)ctx;
    return close(handle) < 0 ? neg() : 0;
}

static const journal_io_t posix_io = {
    .ctx = NULL,
    .open = px_open,
    .close = px_close,
    .pread = px_pread,
    .pwrite = px_pwrite,
    .fdatasync = px_fdatasync,
    .fsync = px_fsync,
    .ftruncate = px_ftruncate,
    .fsize = px_fsize,
    .rename = px_rename,
    .unlink = px_unlink,
    .list = px_list,
    .fsync_dir = px_fsync_dir,
    .lock = px_lock,
    .unlock = px_unlock,
};

const journal_io_t *journal_io_posix(void)
{
    return &posix_io;
}
