/* crew: time and sleeping.
 *
 * Times are nanoseconds of CLOCK_MONOTONIC (crew_now()). Sleeping tasks are
 * woken by the runtime's reactor thread (crew-reactor), which keeps every
 * pending timer of the runtime in one heap. Timers with equal deadlines fire
 * in the order they were set; the tasks they wake then run in scheduling
 * order, which keeps that order on one worker unless more tasks wake at once
 * than one worker's queue holds (256). */
#ifndef CREW_TIME_H
#define CREW_TIME_H

#include <stdint.h>

#include <crew/export.h>

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
 *         sleeps (outside a shield region).
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

CREW_END_DECLS

#endif
