/* crew: waiting for fd readiness (asyncio's add_reader / add_writer).
 *
 * For integrating non-blocking code crew does not own (a database driver, a
 * TLS library, a raw socket): make the fd non-blocking, try the operation,
 * and on EAGAIN wait with crew_fd_wait() for the fd to become ready, then try
 * again. The first wait registers the fd with the runtime's reactor once,
 * edge-triggered, for both directions; it stays registered until
 * crew_fd_close() or crew_fd_forget(). Readiness that arrives while no task
 * waits is remembered (one edge per direction), so an edge between the
 * failed try and the wait is never lost; in exchange a wait may return for an
 * edge the last try already consumed, and the next try then gets EAGAIN
 * again: always loop "try, wait on EAGAIN".
 *
 * An fd that a task of a runtime has waited on must be closed with
 * crew_fd_close() (or unregistered with crew_fd_forget() before close(2)),
 * from a task or from any thread:
 * that wakes the tasks still waiting on it with -EBADF and makes sure a
 * later fd with the same number never receives this one's readiness.
 * Regular files cannot be waited on (epoll refuses them); use the file
 * helpers, which run in the blocking pool. */
#ifndef CREW_IO_H
#define CREW_IO_H

#include <crew/export.h>

CREW_BEGIN_DECLS

/** Readiness directions for crew_fd_wait(). */
#define CREW_FD_READ 1u  /**< Readable, or the peer hung up, or an error is pending. */
#define CREW_FD_WRITE 2u /**< Writable, or an error is pending. */

/**
 * Wait until @p fd is ready in one of the directions in @p events.
 *
 * From a crew task this suspends the task (its worker runs other tasks);
 * from a plain thread it blocks the thread in poll(2).
 *
 * @return the directions found ready (a non-zero subset of @p events);
 *         -EBADF if @p fd is negative or not open, beyond the runtime's fd
 *         table (the hard RLIMIT_NOFILE when the runtime was created), or was
 *         closed with crew_fd_close() while the task waited; -EINVAL if
 *         @p events is 0 or has unknown bits; -EPERM if the fd cannot be
 *         waited on (a regular file or directory); -ECANCELED / -ETIMEDOUT
 *         (cancelled, or a deadline scope expired: task only); -ENOMEM.
 * Suspends; a cancellation point. Any number of tasks may wait on one fd;
 * an edge wakes every task waiting in its direction.
 */
CREW_EXPORT int crew_fd_wait(int fd, unsigned events);

/**
 * Unregister @p fd from crew's reactor (every runtime of the process that
 * registered it), wake the tasks waiting on it with -EBADF, and close(2) it.
 * Callable from a task or a plain thread. For an fd never waited on, it only
 * closes.
 * @return 0; -EBADF if @p fd is negative or not open; other errors of
 *         close(2) as -errno (the fd is closed anyway, as with close(2)).
 * Never suspends. From a task of the process's only runtime it takes no
 * process-wide lock; otherwise one short mutex section.
 */
CREW_EXPORT int crew_fd_close(int fd);

/**
 * As crew_fd_close() without closing: the fd leaves crew's reactor (its
 * waiters get -EBADF) and stays open, e.g. to hand it to another event loop.
 * Callable from a task or a plain thread.
 * @return 0; -EBADF if @p fd is negative.
 * Never suspends.
 */
CREW_EXPORT int crew_fd_forget(int fd);

CREW_END_DECLS

#endif
