/* crew: time and sleeping.
 *
 * Times are nanoseconds of CLOCK_MONOTONIC (crew_now()). Each worker keeps
 * the timers its tasks set in a heap of its own (timers set from outside go
 * to the runtime's); while a worker is awake the workers fire due timers,
 * and the reactor thread (crew-reactor) fires them when all workers sleep,
 * or 1 ms late if every awake worker runs a task that never yields. Timers
 * with equal deadlines set on the same worker (with one worker: all of
 * them) fire in the order they were set; the tasks they wake then run in
 * scheduling order, which keeps that order on one worker unless more tasks
 * wake at once than one worker's queue holds (256). */
#ifndef CREW_TIME_H
#define CREW_TIME_H

#include <stdint.h>

#include <crew/export.h>
#include <crew/runtime.h>

CREW_BEGIN_DECLS

/** Nanoseconds per unit, for readable durations: crew_sleep(50 * CREW_MS). */
#define CREW_US INT64_C(1000)
#define CREW_MS INT64_C(1000000)
#define CREW_S INT64_C(1000000000)

/** The monotonic clock (CLOCK_MONOTONIC) in nanoseconds. Never fails, never
 *  suspends; callable from any thread. */
CREW_EXPORT int64_t crew_now(void);

/**
 * Suspend the calling task for at least @p ns nanoseconds.
 *
 * 0 lets other runnable tasks run first (like crew_yield) and returns.
 * Durations so long that now + @p ns would overflow are clamped to the end
 * of time (the task then sleeps until cancelled). From a plain thread (not a
 * crew task) it blocks that thread for the same time.
 *
 * @return 0 when the time has passed; -EINVAL if @p ns is negative;
 *         -ECANCELED if the calling task is cancelled before or while it
 *         sleeps, -ETIMEDOUT if a deadline scope expires first (both outside
 *         a shield region); -ENOMEM if the timer heap cannot grow.
 * Suspends; a cancellation point.
 */
CREW_EXPORT int crew_sleep(int64_t ns);

/**
 * Suspend the calling task until crew_now() >= @p deadline. A deadline in
 * the past behaves as crew_sleep(0).
 * @return 0; -EINVAL if @p deadline is negative; -ECANCELED as crew_sleep().
 * Suspends; a cancellation point. From a plain thread, blocks it.
 */
CREW_EXPORT int crew_sleep_until(int64_t deadline);

/*
 * Deadline scopes (asyncio.timeout). Between crew_timeout_begin() and the
 * matching crew_timeout_end(), every suspension point of the calling task
 * (crew_join, crew_yield, crew_sleep, and every later waiting call) returns
 * -ETIMEDOUT once the scope's deadline has passed, and a suspension that is
 * waiting when it passes is woken with -ETIMEDOUT. Scopes nest; an inner
 * scope never extends an outer one (the earliest deadline rules). Like a
 * cancellation, an expired deadline goes down crew_join (the joined task is
 * cancelled and still waited for). A shield region (task.h) holds back the
 * deadlines of scopes opened outside it, as it holds back cancellation, but a
 * scope opened inside the shield applies there (Trio's rule: cleanup code can
 * still bound its own waits, e.g. with crew_wait_for). Cancellation takes
 * precedence: a cancelled task's suspension points return -ECANCELED.
 */

/** A deadline scope: caller-allocated (usually a local variable), valid from
 *  crew_timeout_begin() to crew_timeout_end(). Its fields are private. */
typedef struct crew_timeout_s {
    int64_t deadline;             /* This scope's own deadline. */
    struct crew_timeout_s *outer; /* Enclosing scope of the same task, or NULL. */
    void *task;                   /* The task that opened it, while open. */
    unsigned shield;              /* Shield depth of the task when it was opened. */
    int expired;                  /* A suspension point returned -ETIMEDOUT for this scope. */
} crew_timeout_t;

/**
 * Open a deadline scope that expires @p ns nanoseconds from now (clamped to
 * the end of the clock) in the calling task.
 * @return 0; -EINVAL if @p scope is NULL, @p ns negative, or @p scope is
 *         already open in the calling task; -EPERM when not called from a
 *         crew task. Never suspends.
 */
CREW_EXPORT int crew_timeout_begin(crew_timeout_t *scope, int64_t ns);

/** Open a deadline scope that expires at crew_now() time @p deadline.
 *  @return as crew_timeout_begin (-EINVAL for a negative deadline). */
CREW_EXPORT int crew_deadline_begin(crew_timeout_t *scope, int64_t deadline);

/**
 * Close @p scope, which must be the calling task's innermost open scope.
 * @return 1 if the scope expired (one of its suspension points returned
 *         -ETIMEDOUT because of this scope's deadline), 0 if not; -EINVAL if
 *         @p scope is NULL, not open or not the innermost scope (closing it
 *         twice included); -EPERM when not called from a crew task.
 * Never suspends.
 */
CREW_EXPORT int crew_timeout_end(crew_timeout_t *scope);

/**
 * crew_join() with a time limit (asyncio.wait_for): wait at most @p ns for
 * @p task to finish. On timeout the task is cancelled, crew_wait_for still
 * waits until it has really finished, and returns -ETIMEDOUT; the handle is
 * consumed in every case crew_join() consumes it, and on -ETIMEDOUT too. If
 * the caller itself is cancelled, the task is cancelled too (as crew_join).
 * @return as crew_join(), plus -ETIMEDOUT; -EINVAL for a negative @p ns;
 *         -EPERM from a plain thread (use crew_join there).
 * Suspends; a cancellation point.
 */
CREW_EXPORT CREW_NODISCARD int crew_wait_for(struct crew_task_s *task, int64_t ns, void **result);

/*
 * Callback timers (asyncio's call_later / call_at). The callback runs as a
 * new detached task of the runtime (its return value is ignored), so it may
 * suspend like any task. The task is allocated when the timer is set, so a
 * timer that was set always has what it needs to fire.
 */

/** A pending callback timer's handle. */
typedef struct crew_timer_s crew_timer_t;

/**
 * Run @p fn(@p arg) as a task of @p rt at crew_now() time @p deadline (at
 * once if it has passed). Callable from any thread.
 * @param out  Receives a handle to cancel the timer with; give it back
 *             exactly once with crew_timer_cancel() or crew_timer_release().
 *             NULL: no handle (the timer cannot be cancelled).
 * @return 0; -EINVAL if @p rt or @p fn is NULL or @p deadline negative;
 *         -ESHUTDOWN if @p rt is shutting down; -ENOMEM.
 * Never suspends. If the runtime shuts down before the deadline, the
 * callback never runs.
 */
CREW_EXPORT int crew_rt_call_at(crew_rt_t *rt, int64_t deadline, crew_fn_t fn, void *arg,
                                crew_timer_t **out);

/** As crew_rt_call_at() in the calling task's runtime. @return as
 *  crew_rt_call_at(), or -EPERM when not called from a crew task. */
CREW_EXPORT int crew_call_at(int64_t deadline, crew_fn_t fn, void *arg, crew_timer_t **out);

/** As crew_call_at() @p ns nanoseconds from now (clamped to the end of the
 *  clock). @return as crew_call_at(); -EINVAL if @p ns is negative. */
CREW_EXPORT int crew_call_later(int64_t ns, crew_fn_t fn, void *arg, crew_timer_t **out);

/**
 * Cancel a callback timer and give its handle back. O(1) (amortised).
 * @return 0 if the timer was cancelled in time: its callback never runs;
 *         -EALREADY if it had already fired (its task was started, and may
 *         be running or done); -ESHUTDOWN if the runtime's shutdown dropped
 *         it (it never ran); -EINVAL if @p timer is NULL. The handle is
 *         consumed in every case but -EINVAL. Callable from any thread,
 *         including after crew_rt_destroy(), but not concurrently with it.
 * Never suspends.
 */
CREW_EXPORT int crew_timer_cancel(crew_timer_t *timer);

/** Give a timer's handle back without cancelling it. @return 0, -EINVAL for NULL. */
CREW_EXPORT int crew_timer_release(crew_timer_t *timer);

CREW_END_DECLS

#endif
