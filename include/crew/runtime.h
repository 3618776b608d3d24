/* crew: runtimes.
 *
 * A runtime owns N worker threads (crew-w0, crew-w1, ...) that run tasks, each
 * with a local run queue that the others steal from. Create one explicitly with
 * crew_rt_create() / crew_rt_destroy(), or let crew_run() do both around a main
 * task (the asyncio.run of crew). Several runtimes may live in one process;
 * crew keeps no global state outside them. */
#ifndef CREW_RUNTIME_H
#define CREW_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <crew/export.h>

CREW_BEGIN_DECLS

typedef struct crew_rt_s crew_rt_t;
typedef struct crew_task_s crew_task_t;

/** The body of a task: runs on the task's own stack, returns its result. */
typedef void *(*crew_fn_t)(void *arg);

/** Flags for crew_rt_opts_t.flags. */
enum {
    /** Do not install crew's SIGSEGV/SIGBUS handler that names the task whose
     *  stack overflowed. The guard page still stops the overflow; the process
     *  then dies of a plain SIGSEGV. */
    CREW_RT_NO_OVERFLOW_HANDLER = 1u << 0,
    /** crew_run() only: on SIGINT or SIGTERM, cancel the main task (which
     *  then shuts the runtime down, cancelling the rest) and return -EINTR.
     *  A second such signal gets the signal's previous disposition (by
     *  default it kills the process), as with asyncio.run(). */
    CREW_RT_STOP_ON_SIGNAL = 1u << 1,
};

/**
 * Runtime options. Initialise with CREW_RT_OPTS_INIT (or crew_rt_opts_init())
 * and set the fields you need; zero in a field means "the default".
 */
typedef struct crew_rt_opts_s {
    size_t size;          /**< sizeof(crew_rt_opts_t); lets later versions add fields. */
    unsigned workers;     /**< Worker threads. 0: the CPUs in the process's affinity
                               mask, or $CREW_WORKERS when set. At most CREW_MAX_WORKERS. */
    size_t stack_size;    /**< Default task stack size in bytes. 0: CREW_DEFAULT_STACK_SIZE.
                               Rounded up to whole pages; at least CREW_MIN_STACK_SIZE. */
    unsigned flags;       /**< CREW_RT_* flags. */
    void *reserved[4];    /**< Must be zero. */
} crew_rt_opts_t;

#define CREW_RT_OPTS_INIT { sizeof(crew_rt_opts_t), 0, 0, 0, { 0, 0, 0, 0 } }

/** Default usable stack of a task: 64 KiB (plus a guard page that costs no memory). */
#define CREW_DEFAULT_STACK_SIZE ((size_t)64 * 1024)
/** Smallest stack a task may ask for. */
#define CREW_MIN_STACK_SIZE ((size_t)16 * 1024)
/** Largest stack a task may ask for. */
#define CREW_MAX_STACK_SIZE ((size_t)1024 * 1024 * 1024)
/** Most worker threads one runtime may have. */
#define CREW_MAX_WORKERS 256u

/** Fill @p opts with the defaults (same as CREW_RT_OPTS_INIT). Never fails. */
CREW_EXPORT void crew_rt_opts_init(crew_rt_opts_t *opts);

/**
 * Create a runtime and start its worker threads.
 *
 * @param opts  NULL for all defaults.
 * @param out   Receives the runtime; the caller owns it and frees it with
 *              crew_rt_destroy().
 * @return 0; -EINVAL for bad options (size field wrong, reserved not zero,
 *         workers > CREW_MAX_WORKERS, stack size out of range, $CREW_WORKERS not a
 *         number in range); -ENOMEM; -EAGAIN when a thread cannot be created.
 * Never suspends; callable from any thread, including from a task of another runtime.
 */
CREW_EXPORT CREW_NODISCARD int crew_rt_create(const crew_rt_opts_t *opts, crew_rt_t **out);

/**
 * Shut a runtime down and free it. New spawns are refused with -ESHUTDOWN at
 * once; the call then blocks the calling thread until every task of the runtime
 * (joined or detached) has finished, stops the workers and the reactor and
 * frees the runtime. Task handles the caller still owns stay valid after it:
 * the tasks have finished, so crew_join returns their result at once and
 * crew_detach frees them; each handle must still be given back exactly once
 * (a handle never given back leaks its task's 128 bytes, as an unjoined
 * pthread does).
 *
 * Tasks are not cancelled: a task that never finishes makes this call wait for
 * ever. crew_rt_shutdown() cancels them after a grace period.
 *
 * @return 0; -EINVAL if @p rt is NULL; -EDEADLK if called from a task of @p rt
 *         (it would wait for itself); -EBUSY if another thread is already
 *         destroying @p rt.
 * Blocks the calling OS thread (it is not meant to run inside a task).
 */
CREW_EXPORT int crew_rt_destroy(crew_rt_t *rt);

/**
 * Graceful shutdown with a deadline: as crew_rt_destroy(), but once
 * @p grace_ns nanoseconds have passed (0: at once) every task still live is
 * cancelled (crew_task_cancel), which wakes it wherever it waits (a timer, an
 * fd, a join, a lock, a channel, an offloaded call) with -ECANCELED; the call
 * then waits for them to finish their cleanup (shield regions run to their
 * end) and frees everything. Callback timers still pending never run. A task
 * that ignores cancellation and never suspends again keeps the call waiting.
 * @return as crew_rt_destroy(); -EINVAL if @p grace_ns is negative.
 * Blocks the calling OS thread.
 */
CREW_EXPORT int crew_rt_shutdown(crew_rt_t *rt, int64_t grace_ns);

/**
 * Run @p fn(@p arg) as the main task of a new runtime, wait for it, shut the
 * runtime down and return. As with asyncio.run(), tasks the main task left
 * running are cancelled and waited for (crew_rt_shutdown() with no grace).
 *
 * @param opts    NULL for all defaults.
 * @param result  Receives the main task's return value; may be NULL.
 * @return 0 or the main task's join status (crew_join()); the errors of
 *         crew_rt_create(); -EINVAL if @p fn is NULL; -EDEADLK if called
 *         from inside a crew task (use crew_spawn there); -EINTR if
 *         CREW_RT_STOP_ON_SIGNAL was set and SIGINT/SIGTERM stopped it;
 *         the errors of crew_signal_add() for that flag (-EBUSY when
 *         another runtime has SIGINT or SIGTERM).
 * Blocks the calling OS thread.
 */
CREW_EXPORT CREW_NODISCARD int crew_run(crew_fn_t fn, void *arg, const crew_rt_opts_t *opts,
                                        void **result);

/** The runtime of the calling task, or NULL when not called from a crew task. Never suspends. */
CREW_EXPORT crew_rt_t *crew_rt_current(void);

/** Number of worker threads of @p rt (0 if @p rt is NULL). */
CREW_EXPORT unsigned crew_rt_workers(const crew_rt_t *rt);

/**
 * Index (0 .. workers-1) of the worker thread running the calling task, or -1
 * when the caller is not a crew task. A task may run on another worker after
 * any suspension, so the value is only good until the next suspending call.
 */
CREW_EXPORT int crew_worker_index(void);

/** How task stacks are protected (crew_metrics_t.guard_mode). */
typedef enum crew_guard_mode_e {
    /** madvise(MADV_GUARD_INSTALL) guard page: no extra VMA per stack (Linux >= 6.13). */
    CREW_GUARD_MADVISE = 1,
    /** mprotect(PROT_NONE) guard page: two VMAs per stack; used within a budget. */
    CREW_GUARD_MPROTECT = 2,
    /** No guard page: a canary word at the stack's low end, checked at every switch
     *  and at task exit. Detects most overflows after the fact, not all. */
    CREW_GUARD_CANARY = 3,
} crew_guard_mode_t;

/** Counters of one worker. Each is read without stopping the worker, so a
 *  snapshot of several counters is not atomic as a whole. */
typedef struct crew_worker_metrics_s {
    uint64_t polls;          /**< Task activations (a start or a resume) run by this worker. */
    uint64_t spawns;         /**< Tasks spawned by tasks running on this worker. */
    uint64_t steals;         /**< Tasks this worker took from other workers' queues. */
    uint64_t steal_ops;      /**< Successful steal operations (each takes up to half a queue). */
    uint64_t global_pops;    /**< Tasks taken from the runtime's injection queue. */
    uint64_t overflows;      /**< Times the local queue was full and moved half to the injection queue. */
    uint64_t parks;          /**< Times the worker thread went to sleep for lack of work. */
    uint64_t wakeups;        /**< Times another thread woke this worker. */
    uint64_t queue_depth;    /**< Tasks in the local run queue (plus its next-task slot) at read time. */
} crew_worker_metrics_t;

/** Runtime-wide counters. */
typedef struct crew_metrics_s {
    unsigned workers;             /**< Number of workers; index range of crew_rt_worker_metrics(). */
    crew_guard_mode_t guard_mode; /**< How the most recently mapped stacks are guarded. */
    uint64_t tasks_live;          /**< Tasks spawned and not yet finished. A task counts as
                                       finished once it has left its stack, which can be a
                                       moment after crew_join() of it returned. */
    uint64_t injection_depth;     /**< Tasks in the injection queue at read time. */
    uint64_t stacks_mapped;       /**< Stacks carved from mappings so far (never unmapped before destroy). */
    uint64_t stack_bytes_mapped;  /**< Virtual bytes of all stack mappings, guards included. */
    uint64_t guard_pages_mprotect;/**< Guard pages installed with mprotect by the whole process
                                       (every runtime; each costs two VMAs). */
    uint64_t reactor_cpu_ns;      /**< CPU time used by the crew-reactor thread so far. */
    uint64_t reactor_fd_polls;    /**< Rounds in which the reactor drained fd readiness. */
    uint64_t reactor_fd_events;   /**< fd readiness events the reactor delivered. */
    uint64_t timers_fired_workers;/**< Timers fired by workers (the normal case while any is awake). */
    uint64_t timers_fired_reactor;/**< Timers fired by the reactor: when every worker slept, or as the
                                       backstop when the awake workers ran tasks that did not yield. */
} crew_metrics_t;

/** Read @p rt's runtime-wide counters. @return 0, or -EINVAL if an argument is NULL. Thread-safe. */
CREW_EXPORT int crew_rt_metrics(crew_rt_t *rt, crew_metrics_t *out);

/** Read worker @p index's counters. @return 0; -EINVAL for NULL or index >= workers. Thread-safe. */
CREW_EXPORT int crew_rt_worker_metrics(crew_rt_t *rt, unsigned index, crew_worker_metrics_t *out);

/** Print all metrics of @p rt as readable text to @p f. @return 0, -EINVAL for NULL, -EIO on a write error.
 *  Uses stdio: call it from a plain thread or accept that the task's worker blocks in write(). */
CREW_EXPORT int crew_rt_metrics_print(crew_rt_t *rt, FILE *f);

CREW_END_DECLS

#endif
