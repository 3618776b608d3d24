/* File helpers (include/crew/file.h): each system call runs on the default
 * executor with CREW_EXEC_FINISH, because it reads or writes the caller's
 * buffer: a cancelled caller waits for a running call instead of leaving it
 * with a pointer into memory that may be gone. The call's description lives
 * on the caller's stack, which is safe for the same reason. */
#include <fcntl.h>
#include <unistd.h>

#include "executor.h"
#include "scheduler.h"

enum { OP_OPEN, OP_READ, OP_WRITE, OP_PREAD, OP_PWRITE, OP_FSYNC, OP_CLOSE };

typedef struct {
    int op;
    int fd;
    int flags;
    mode_t mode;
    const char *path;
    void *buf;
    size_t n;
    off_t off;
} file_op_t;

static ssize_t file_syscall(const file_op_t *c)
{
    switch (c->op) {
    case OP_OPEN:
        return open(c->path, c->flags, c->mode);
    case OP_READ:
        return read(c->fd, c->buf, c->n);
    case OP_WRITE:
        return write(c->fd, c->buf, c->n);
    case OP_PREAD:
        return pread(c->fd, c->buf, c->n, c->off);
    case OP_PWRITE:
        return pwrite(c->fd, c->buf, c->n, c->off);
    case OP_FSYNC:
        return fsync(c->fd);
    default:
        return close(c->fd);
    }
}

/* Runs on the pool thread (or a plain caller's thread). errno is read on the
 * thread that made the call, before anything can switch. */
static void *file_run(void *arg)
{
    const file_op_t *c = arg;
    ssize_t r;
    for (;;) {
        r = file_syscall(c);
        if (r >= 0)
            break;
        r = -errno;
        if (r != -EINTR)
            break;
        /* Linux releases the descriptor even when close reports EINTR:
         * retrying could close a descriptor another thread just opened. */
        if (c->op == OP_CLOSE) {
            r = 0;
            break;
        }
    }
    return (void *)(intptr_t)r;
}

static ssize_t file_call(file_op_t *c)
{
    crew_task_t *self = crew__task_self();
    if (!self)
        return (ssize_t)(intptr_t)file_run(c);
    void *r;
    int rc = crew__executor_call(NULL, file_run, c, NULL, CREW_EXEC_FINISH, &r);
    /* A close must happen: if the executor cannot take it (no memory, no
     * thread, shutting down), the worker makes the call itself. */
    if (rc && c->op == OP_CLOSE)
        return (ssize_t)(intptr_t)file_run(c);
    return rc ? rc : (ssize_t)(intptr_t)r;
}

int crew_file_open(const char *path, int flags, mode_t mode, int *fd_out)
{
    if (!path || !fd_out)
        return -EINVAL;
    file_op_t c = { .op = OP_OPEN, .path = path, .flags = flags, .mode = mode };
    ssize_t r = file_call(&c);
    if (r < 0)
        return (int)r;
    *fd_out = (int)r;
    return 0;
}

static ssize_t file_io(int op, int fd, void *buf, size_t n, off_t off)
{
    if ((!buf && n) || off < 0)
        return -EINVAL;
    file_op_t c = { .op = op, .fd = fd, .buf = buf, .n = n, .off = off };
    return file_call(&c);
}

ssize_t crew_file_read(int fd, void *buf, size_t n)
{
    return file_io(OP_READ, fd, buf, n, 0);
}

ssize_t crew_file_write(int fd, const void *buf, size_t n)
{
    return file_io(OP_WRITE, fd, (void *)buf, n, 0);
}

ssize_t crew_file_pread(int fd, void *buf, size_t n, off_t offset)
{
    return file_io(OP_PREAD, fd, buf, n, offset);
}

ssize_t crew_file_pwrite(int fd, const void *buf, size_t n, off_t offset)
{
    return file_io(OP_PWRITE, fd, (void *)buf, n, offset);
}

int crew_file_fsync(int fd)
{
    file_op_t c = { .op = OP_FSYNC, .fd = fd };
    return (int)file_call(&c);
}

int crew_file_close(int fd)
{
    file_op_t c = { .op = OP_CLOSE, .fd = fd };
    crew_task_t *self = crew__task_self();
    if (self)
        self->shield++;
    int rc = (int)file_call(&c);
    /* The task may have migrated; it is the same task. */
    if (self)
        self->shield--;
    return rc;
}
