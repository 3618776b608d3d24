/* crew: executors (blocking pools), run_in_executor and to_thread.
 *
 * An executor is a pool of plain threads for calls that block (a database
 * driver, getaddrinfo, a long computation that must not hold a worker): the
 * calling task suspends while a pool thread runs the call, and its worker
 * runs other tasks meanwhile. Every runtime has a default executor, created
 * on first use and destroyed by crew_rt_destroy(), whose threads are named
 * crew-blk1, crew-blk2, ...; crew_executor_create() makes more, each with its
 * own size and thread names (to keep slow DNS from starving slow disk, say).
 *
 * Pools are elastic: a thread is started when a call is submitted and no
 * thread is idle, up to max_threads; a thread idle for keep_alive_ns exits.
 * While as many threads as there are CPUs are busy, a new call is left to
 * the first of them to finish, unless for 50 us no call started and fewer
 * busy threads than CPUs can run (the others sleep in a blocking call): then
 * an idle or new thread takes it (one more every 50 us to 1 ms). So
 * CPU-bound calls get one thread per CPU and do not crowd the workers out,
 * even when they compute for longer than 50 us or the machine is loaded
 * (a thread waiting for a CPU is runnable, not blocked), while calls that
 * block still get a thread each. Calls that spin-wait for each other count
 * as computing: beyond the CPU count they get another thread only after
 * 10 ms without progress (20 ms for the next, and so on), so make them
 * block instead.
 * Calls beyond what the threads can take wait in a FIFO queue of bounded
 * capacity; a submitter that finds the queue full waits for room
 * (backpressure). Pool threads block every asynchronous signal.
 *
 * Cancellation (and deadline scopes) follow Tokio's spawn_blocking: a call
 * cancelled while it waits in the queue is removed and never runs; a running
 * call is never interrupted (threads are not killed): the caller returns
 * -ECANCELED (or -ETIMEDOUT) at once and the pool thread drops the result
 * when the function returns, after passing it to the optional discard
 * callback. So the function must not use memory that the caller may free
 * once it returns (its stack included): give it heap memory, or copies.
 *
 * Thread-safety: every function here may be called from any thread. Calls
 * made from a crew task suspend the task; from a plain thread they block it. */
#ifndef CREW_EXECUTOR_H
#define CREW_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include <crew/export.h>
#include <crew/runtime.h>

CREW_BEGIN_DECLS

/** An executor (opaque, `struct crew_executor_s`). */
typedef struct crew_executor_s crew_executor_t;

/** Called on the pool thread with the result of a call whose caller stopped
 *  waiting while it ran (cancelled or timed out), so the result can be freed. */
typedef void (*crew_discard_fn_t)(void *result, void *arg);

/** Longest thread-name prefix (terminating NUL included): the prefix plus a
 *  thread number must fit Linux's 15-character thread names. */
#define CREW_EXECUTOR_NAME_MAX 12
/** Default and largest number of threads of an executor. */
#define CREW_EXECUTOR_DEFAULT_THREADS 64u
#define CREW_EXECUTOR_MAX_THREADS 1024u
/** Default bound of an executor's queue of calls waiting for a thread. */
#define CREW_EXECUTOR_DEFAULT_QUEUE 4096u
/** Default time an idle pool thread waits for work before it exits: 10 s. */
#define CREW_EXECUTOR_DEFAULT_KEEP_ALIVE (INT64_C(10) * 1000000000)

/**
 * Executor options. Initialise with CREW_EXECUTOR_OPTS_INIT; zero in a field
 * means "the default".
 */
typedef struct crew_executor_opts_s {
    size_t size;            /**< sizeof(crew_executor_opts_t). */
    const char *name;       /**< Thread-name prefix, copied; threads are named
                                 <name><n>. At most CREW_EXECUTOR_NAME_MAX - 1
                                 bytes. NULL or "": "crew-exec". */
    unsigned max_threads;   /**< Most threads at once; 0: CREW_EXECUTOR_DEFAULT_THREADS;
                                 at most CREW_EXECUTOR_MAX_THREADS. */
    size_t queue_capacity;  /**< Calls that may wait for a thread; 0: CREW_EXECUTOR_DEFAULT_QUEUE. */
    int64_t keep_alive_ns;  /**< Idle time after which a thread exits; 0: the default;
                                 negative: -EINVAL. */
    void *reserved[4];      /**< Must be zero. */
} crew_executor_opts_t;

#define CREW_EXECUTOR_OPTS_INIT { sizeof(crew_executor_opts_t), NULL, 0, 0, 0, { 0, 0, 0, 0 } }

/** What an executor is doing; read with crew_executor_metrics(). Each value is
 *  exact at the instant of the read (taken under the executor's lock). */
typedef struct crew_executor_metrics_s {
    uint64_t threads_alive;    /**< Pool threads that exist (running, idle or starting). */
    uint64_t threads_idle;     /**< Of those, threads waiting for work. */
    uint64_t threads_started;  /**< Threads started since the executor was created. */
    uint64_t jobs_queued;      /**< Calls waiting in the queue for a thread. */
    uint64_t jobs_running;     /**< Calls running on a pool thread now. */
    uint64_t jobs_completed;   /**< Calls whose result reached their caller. */
    uint64_t jobs_cancelled;   /**< Calls removed from the queue (caller cancelled,
                                    timed out or executor destroyed): they never ran. */
    uint64_t jobs_discarded;   /**< Calls that ran to the end after their caller
                                    stopped waiting: the result went to discard. */
    uint64_t stalls_blocked;   /**< Times the pool grew past one busy thread per CPU
                                    because busy threads were blocked in the kernel. */
    uint64_t stalls_forced;    /**< Times it grew because nothing progressed for the
                                    fallback interval (10 ms doubling to 1 s) although
                                    busy threads were running: calls that spin-wait
                                    for each other. */
} crew_executor_metrics_t;

/**
 * Create an executor. No thread starts until the first call.
 *
 * @param opts  NULL for all defaults.
 * @param out   Receives the executor; the caller owns it and frees it with
 *              crew_executor_destroy().
 * @return 0; -EINVAL if @p out is NULL or @p opts is invalid (size field
 *         wrong, reserved not zero, name too long, max_threads too large,
 *         negative keep_alive_ns); -ENOMEM.
 * Never suspends; thread-safe.
 */
CREW_EXPORT CREW_NODISCARD int crew_executor_create(const crew_executor_opts_t *opts,
                                                    crew_executor_t **out);

/**
 * Shut @p ex down and free it. New calls are refused with -ESHUTDOWN; calls
 * still waiting in the queue are removed without running and their callers
 * get -ESHUTDOWN; submitters waiting for room in the queue get -ESHUTDOWN
 * too. Then it blocks until every running call has returned (its caller gets
 * the result as usual, or its discard callback runs), every caller has left
 * and every pool thread has exited. No new call may start on @p ex once this
 * has been called (the handle is freed when it returns).
 *
 * @return 0; -EINVAL if @p ex is NULL; -EBUSY if called from one of @p ex's
 *         own threads (it would wait for itself) or while another thread
 *         destroys it.
 * Blocks the calling OS thread (from a task: its worker) until running calls
 * have finished; not a cancellation point. Do not destroy the default
 * executor of a runtime (crew_rt_executor()): crew_rt_destroy() does.
 */
CREW_EXPORT int crew_executor_destroy(crew_executor_t *ex);

/**
 * The default executor of @p rt (threads crew-blk<n>, the default options),
 * created on first use. Lets a plain thread call crew_run_in_executor() with
 * the same pool the runtime's tasks use. Valid until crew_rt_destroy(rt),
 * which stops it after every task has finished (waiting for running calls).
 *
 * @return 0; -EINVAL if an argument is NULL; -ESHUTDOWN if @p rt is shutting
 *         down and the caller is not one of its tasks; -ENOMEM.
 * Never suspends; thread-safe (the pool is created once).
 */
CREW_EXPORT CREW_NODISCARD int crew_rt_executor(crew_rt_t *rt, crew_executor_t **out);

/**
 * Run @p fn(@p arg) on a thread of @p ex and wait for it: loop.run_in_executor.
 *
 * @param ex      NULL: the default executor of the calling task's runtime
 *                (from a plain thread, NULL gives -EPERM: pass crew_rt_executor()).
 * @param result  Receives fn's return value; may be NULL.
 * @return 0 when fn has run and returned; -EINVAL if @p fn is NULL;
 *         -EPERM for a NULL @p ex outside a task; -ESHUTDOWN if @p ex is
 *         being destroyed (fn did not run); -EAGAIN if no pool thread exists
 *         and none could be started (fn did not run); -ENOMEM;
 *         -ECANCELED if the calling task is cancelled, -ETIMEDOUT if one of
 *         its deadline scopes expires (outside a shield region), before the
 *         call was queued, while it waited for room or in the queue (fn
 *         never runs), or while fn runs (fn goes on; its result is dropped).
 *         When the cancellation races with fn's return and the result was
 *         already delivered, the call returns 0 with the result (nothing is
 *         lost) and the next suspension point reports the cancellation.
 * Suspends; a cancellation point. From a plain thread, blocks it (and is
 * never cancelled). Thread-safe. Allocates nothing: the call's record lives
 * on the caller's stack and the pool thread stops touching it before the
 * caller returns.
 */
CREW_EXPORT CREW_NODISCARD int crew_run_in_executor(crew_executor_t *ex, crew_fn_t fn, void *arg,
                                                    void **result);

/**
 * crew_run_in_executor() with a discard callback: if the caller stops
 * waiting (cancelled, timed out) while fn runs, @p discard(result, arg) runs
 * on the pool thread once fn returns, exactly once, so that the result (and
 * arg) can be freed. It never runs for a call that was removed before it ran
 * or whose result reached its caller. NULL: results are simply dropped.
 * @return as crew_run_in_executor().
 */
CREW_EXPORT CREW_NODISCARD int crew_run_in_executor_ex(crew_executor_t *ex, crew_fn_t fn, void *arg,
                                                       crew_discard_fn_t discard, void **result);

/**
 * asyncio.to_thread: crew_run_in_executor() on the default executor of the
 * calling task's runtime.
 * @return as crew_run_in_executor(); -EPERM from a plain thread.
 * Suspends; a cancellation point.
 */
CREW_EXPORT CREW_NODISCARD int crew_to_thread(crew_fn_t fn, void *arg, void **result);

/** Read @p ex's counters. @return 0, or -EINVAL if an argument is NULL.
 *  Never suspends; thread-safe. */
CREW_EXPORT int crew_executor_metrics(crew_executor_t *ex, crew_executor_metrics_t *out);

CREW_END_DECLS

#endif
