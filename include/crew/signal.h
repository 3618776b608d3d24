/* crew: POSIX signals (asyncio's add_signal_handler / remove_signal_handler).
 *
 * A runtime takes a signal with crew_signal_add(): crew then installs a
 * process-wide handler for it (restoring the previous one at
 * crew_signal_remove() or when the runtime is destroyed). The handler only
 * records the signal and wakes the runtime's reactor thread; the reactor then
 * wakes the tasks waiting for it in crew_signal_wait() and starts the
 * callback given to crew_signal_add() as a new task. Workers and blocking-pool
 * threads block signals; the reactor unblocks the signals its runtime took.
 *
 * Signals coalesce, as in the kernel: a burst may be delivered once. Each
 * signal can belong to one runtime at a time (the handler is process-wide). */
#ifndef CREW_SIGNAL_H
#define CREW_SIGNAL_H

#include <stddef.h>

#include <crew/export.h>
#include <crew/runtime.h>

CREW_BEGIN_DECLS

/**
 * Make @p rt receive @p signo. On each delivery, tasks waiting for it in
 * crew_signal_wait() wake, and if @p fn is not NULL, @p fn(@p arg) runs as a
 * new detached task of @p rt. Adding a signal @p rt already has replaces its
 * callback. A delivery that finds no waiter and no callback is kept (once)
 * for the next crew_signal_wait().
 * @return 0; -EINVAL for a bad @p rt or @p signo, or a signal crew cannot
 *         take (SIGKILL, SIGSTOP, and the synchronous fault signals SIGSEGV,
 *         SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT); -EBUSY if another runtime
 *         has @p signo; -ESHUTDOWN if @p rt is shutting down; other
 *         sigaction(2) errors as -errno.
 * Never suspends. Thread-safe.
 */
CREW_EXPORT int crew_signal_add(crew_rt_t *rt, int signo, crew_fn_t fn, void *arg);

/**
 * Give @p signo back: the handler that was installed before crew_signal_add()
 * is restored, and tasks waiting only for signals @p rt no longer has are
 * woken with -ENOENT.
 * @return 0; -EINVAL for a bad @p rt or @p signo; -ENOENT if @p rt does not
 *         have @p signo. Never suspends. Thread-safe.
 */
CREW_EXPORT int crew_signal_remove(crew_rt_t *rt, int signo);

/**
 * Wait until one of the @p n signals in @p signos is delivered to the calling
 * task's runtime, and store its number in @p signo. Every one must have been
 * added to the runtime. A signal that arrived while no task waited and no
 * callback took it is returned at once (and consumed).
 * @return 0; -EINVAL if @p signos or @p signo is NULL, @p n is 0, or a
 *         signal is out of range or not the runtime's; -EPERM when not called
 *         from a crew task; -ENOENT if the signals were removed while
 *         waiting; -ECANCELED, -ETIMEDOUT.
 * Suspends; a cancellation point.
 */
CREW_EXPORT int crew_signal_wait(const int *signos, size_t n, int *signo);

CREW_END_DECLS

#endif
