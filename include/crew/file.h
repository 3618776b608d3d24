/* crew: file I/O that does not block workers (the aiofiles pattern).
 *
 * Each call runs its system call on a thread of the calling task's runtime's
 * default executor (executor.h) and suspends the task until it returns, so
 * a slow disk never holds a worker. Called from a plain thread (not a crew
 * task), the system call simply runs in the calling thread.
 *
 * Results are what the system call returns: bytes transferred (ssize_t) or
 * 0, or a negative errno (-ENOENT, -EBADF, -EISDIR, ...). An interrupted
 * system call (EINTR) is restarted; callers never see -EINTR. Reads and
 * writes may be short, as read(2) and write(2): a read returns fewer bytes
 * than asked near the end of the file (and 0 at the end), a write to a full
 * disk or a pipe may write fewer; loop if you need all of it.
 *
 * Cancellation and deadline scopes: every call except crew_file_close is a
 * cancellation point. A call cancelled (or timed out) before its system call
 * started never performs it and returns -ECANCELED (or -ETIMEDOUT). A system
 * call that already runs is never abandoned, because it uses the caller's
 * buffer: the call waits for it (shielded) and returns its result, and the
 * cancellation is reported by the next suspension point. So no data read or
 * written is ever lost, and no opened descriptor leaks. crew_file_close
 * always closes.
 *
 * These calls are meant for regular files, whose system calls end in bounded
 * time. A read on a pipe or a terminal could wait for ever, and a running
 * call is not interrupted by cancellation: wait for fd readiness instead. */
#ifndef CREW_FILE_H
#define CREW_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include <crew/export.h>

CREW_BEGIN_DECLS

/**
 * open(2) @p path with @p flags and @p mode (used with O_CREAT/O_TMPFILE).
 * @param fd_out  Receives the new descriptor; the caller owns it (close it
 *                with crew_file_close() or close(2)).
 * @return 0; -EINVAL if @p path or @p fd_out is NULL; open's errors
 *         (-ENOENT, -EACCES, ...); -ECANCELED/-ETIMEDOUT before the open
 *         started; the executor's errors (-ENOMEM, -EAGAIN).
 * Suspends; a cancellation point. Plain threads: runs in the thread.
 */
CREW_EXPORT CREW_NODISCARD int crew_file_open(const char *path, int flags, mode_t mode, int *fd_out);

/** read(2) up to @p n bytes at the current offset. @return bytes read (0 at
 *  end of file; may be short), or a negative errno; -EINVAL if @p buf is
 *  NULL and @p n > 0. Suspends; a cancellation point. */
CREW_EXPORT CREW_NODISCARD ssize_t crew_file_read(int fd, void *buf, size_t n);

/** write(2) up to @p n bytes at the current offset. @return bytes written
 *  (may be short), or a negative errno; -EINVAL if @p buf is NULL and
 *  @p n > 0. Suspends; a cancellation point. */
CREW_EXPORT CREW_NODISCARD ssize_t crew_file_write(int fd, const void *buf, size_t n);

/** pread(2): read at @p offset without moving the file offset. @return as
 *  crew_file_read(); -EINVAL for a negative offset. Suspends; a cancellation point. */
CREW_EXPORT CREW_NODISCARD ssize_t crew_file_pread(int fd, void *buf, size_t n, off_t offset);

/** pwrite(2): write at @p offset without moving the file offset. @return as
 *  crew_file_write(); -EINVAL for a negative offset. Suspends; a cancellation point. */
CREW_EXPORT CREW_NODISCARD ssize_t crew_file_pwrite(int fd, const void *buf, size_t n, off_t offset);

/** fsync(2): flush @p fd's data and metadata to the disk. @return 0 or a
 *  negative errno (-EBADF, -EIO, -EINVAL for a descriptor that cannot be
 *  synced). Suspends; a cancellation point. */
CREW_EXPORT CREW_NODISCARD int crew_file_fsync(int fd);

/**
 * close(2) @p fd. Always closes: not a cancellation point (cancellation and
 * deadlines are held back while it waits), and EINTR is not retried because
 * Linux has released the descriptor by then (it is reported as 0).
 * @return 0 or a negative errno (-EBADF, -EIO).
 * Suspends (the task waits for the close, e.g. the last close of a file
 * whose data the filesystem flushes).
 */
CREW_EXPORT int crew_file_close(int fd);

CREW_END_DECLS

#endif
