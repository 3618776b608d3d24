/* crew: tasks.
 *
 * A task is a function running on its own stack (a stackful fiber). A call that
 * suspends ("awaits") parks the task, not the thread: the worker runs other
 * tasks meanwhile, and the task may resume on another worker. Hence:
 *   - never trust errno or the address of a thread-local variable across a
 *     suspending call;
 *   - never hold a pthread mutex across a suspending call.
 *
 * Handles. crew_spawn() and crew_rt_spawn() return a handle that the caller owns
 * and must give back exactly once, with crew_join() (wait for the result) or
 * crew_detach() (let the task run on its own). The task's memory lives until it
 * has finished and its handle has been given back; the stack is recycled as soon
 * as the task finishes. */
#ifndef CREW_TASK_H
#define CREW_TASK_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <crew/export.h>
#include <crew/runtime.h>

CREW_BEGIN_DECLS

/** Spawn options. Initialise with CREW_SPAWN_OPTS_INIT; zero means "the default". */
typedef struct crew_spawn_opts_s {
    size_t size;         /**< sizeof(crew_spawn_opts_t). */
    const char *name;    /**< Task name for debugging and overflow reports; copied
                              (truncated to CREW_TASK_NAME_MAX - 1 bytes). NULL: none. */
    size_t stack_size;   /**< Usable stack bytes; 0: the runtime's default.
                              Rounded up to whole pages; CREW_MIN_STACK_SIZE .. CREW_MAX_STACK_SIZE. */
    void *reserved[4];   /**< Must be zero. */
} crew_spawn_opts_t;

#define CREW_SPAWN_OPTS_INIT { sizeof(crew_spawn_opts_t), NULL, 0, { 0, 0, 0, 0 } }
/** Size of the name buffer of a task, terminating NUL included. */
#define CREW_TASK_NAME_MAX 32

/** What a task is doing (crew_task_state()). */
typedef enum crew_task_state_e {
    CREW_TASK_RUNNABLE = 1, /**< Queued: not started yet, or woken and waiting for a worker. */
    CREW_TASK_RUNNING = 2,  /**< Running on a worker right now. */
    CREW_TASK_WAITING = 3,  /**< Suspended in a call that waits for something. */
    CREW_TASK_DONE = 4,     /**< Finished; its result is ready for crew_join(). */
} crew_task_state_t;

/**
 * Spawn a task running @p fn(@p arg) in the runtime of the calling task.
 *
 * The new task may start at once on another worker, before this call returns:
 * prepare what it reads before spawning it.
 *
 * @param opts  NULL for defaults.
 * @param out   Receives the handle (give it back with crew_join or crew_detach).
 * @return 0; -EINVAL if @p fn or @p out is NULL or @p opts is invalid; -EPERM when
 *         not called from a crew task (use crew_rt_spawn); -ENOMEM; -ESHUTDOWN if
 *         the runtime is shutting down.
 * Never suspends. Lock-free and allocation-light: one small allocation per task.
 */
CREW_EXPORT CREW_NODISCARD int crew_spawn(crew_fn_t fn, void *arg, const crew_spawn_opts_t *opts,
                                          crew_task_t **out);

/**
 * Spawn a task into @p rt from any thread: a crew task (of this or another
 * runtime), a thread crew did not create, or a signal-free context of any kind.
 * The task goes through @p rt's injection queue and wakes a worker if none is
 * awake. The returned handle can be waited on from the calling thread with
 * crew_join() (which then blocks the thread).
 *
 * @return as crew_spawn(), except -EPERM never; -EINVAL if @p rt is NULL.
 * Never suspends. Thread-safe.
 */
CREW_EXPORT CREW_NODISCARD int crew_rt_spawn(crew_rt_t *rt, crew_fn_t fn, void *arg,
                                             const crew_spawn_opts_t *opts, crew_task_t **out);

/**
 * Wait until @p task has finished and give its handle back.
 *
 * From a crew task this suspends the task (a suspension point, so a
 * cancellation point); from any other thread it blocks that thread. A
 * finished task is joined without suspending. Whenever crew_join returns
 * 0, -ECANCELED or -ENOMEM, the joined task has finished and the handle is
 * consumed: do not use @p task again.
 *
 * Cancellation goes down the join (as in asyncio, where cancelling a task
 * that awaits another cancels that one too): if the calling task is
 * cancelled before or while it joins, @p task is cancelled as well, and
 * crew_join still waits for it to finish, then returns -ECANCELED.
 *
 * @param result  Receives the task's return value (CREW_TASK_CANCELED if it
 *                ended cancelled, NULL if it never ran); may be NULL.
 * @return 0; -ECANCELED if the joined task was cancelled (it never ran, or
 *         returned CREW_TASK_CANCELED) or the caller was; -ENOMEM if the task
 *         could not get a stack and never ran; -EINVAL if @p task is NULL;
 *         -EDEADLK if a task joins itself; -EBUSY if another caller is
 *         already joining @p task (one joiner at a time). On -EINVAL,
 *         -EDEADLK and -EBUSY the handle stays owned by the caller.
 */
CREW_EXPORT CREW_NODISCARD int crew_join(crew_task_t *task, void **result);

/**
 * Give the handle back without waiting: the task runs to completion on its own
 * and its memory is freed when it finishes (its result is discarded).
 * @return 0; -EINVAL if @p task is NULL; -EBUSY while another caller is joining it.
 * Never suspends. Thread-safe, except that giving one handle back from two
 * threads at the same instant (detach racing a join that has not started
 * yet, or two detaches) is a double release, as with free().
 */
CREW_EXPORT int crew_detach(crew_task_t *task);

/**
 * Let other runnable tasks run: the calling task goes to the back of its
 * worker's run queue. Returns at once when nothing else is runnable.
 * @return 0; -EPERM when not called from a crew task; -ECANCELED if the
 *         calling task has been cancelled, -ETIMEDOUT if its deadline scope
 *         has expired (both outside a shield region; it still yields).
 * Suspends (briefly); a suspension point, so a cancellation point.
 */
CREW_EXPORT int crew_yield(void);

/** The calling task, or NULL when not called from a crew task. Never suspends.
 *  The pointer is not a handle: do not join or detach it. */
CREW_EXPORT crew_task_t *crew_self(void);

/** State of @p task (a handle the caller owns, or crew_self()). 0 if @p task is NULL. */
CREW_EXPORT crew_task_state_t crew_task_state(const crew_task_t *task);

/** Name of @p task ("" if it has none, NULL if @p task is NULL). Valid as long as the handle. */
CREW_EXPORT const char *crew_task_name(const crew_task_t *task);

/** Unique id of @p task within the process (ids start at 1; 0 if @p task is NULL). */
CREW_EXPORT uint64_t crew_task_id(const crew_task_t *task);

/** Usable stack size of @p task in bytes (0 if @p task is NULL). */
CREW_EXPORT size_t crew_task_stack_size(const crew_task_t *task);

/*
 * Cancellation.
 *
 * Cancelling a task is a request: it is delivered at the task's current
 * suspension point, or its next one, as -ECANCELED. It is sticky: once
 * cancelled, every suspension point of the task (crew_join, crew_yield, and
 * every later waiting call) returns -ECANCELED until the task ends, so a task
 * that ignores one return code still stops at the next wait. Inside a shield
 * region (crew_shield_begin/crew_shield_end, or crew_shield) the task waits
 * normally, so that cleanup can suspend; the request is delivered again at the
 * first suspension point after the outermost region ends.
 *
 * A cancelled task counts as cancelled for its joiner when it never started
 * (its body never runs) or when its function returns CREW_TASK_CANCELED;
 * if it handles the cancellation and returns anything else, crew_join gives
 * that result with 0, as asyncio does for a task that suppressed
 * CancelledError.
 */

/** What a task function returns to report that it ends because it was
 *  cancelled: crew_join() then returns -ECANCELED. */
#define CREW_TASK_CANCELED ((void *)(intptr_t)-ECANCELED)

/**
 * Request cancellation of @p task (a handle the caller owns, or crew_self()).
 * Wakes the task if it is suspended outside a shield region. Does not wait
 * for the task to end (join it for that); if the task is just starting a
 * channel wait on another thread, the call spins the few hundred
 * instructions that task needs to switch away or to see the wake. The handle must stay owned for the
 * whole call: cancelling from one thread a task whose handle another thread
 * may give back (join or detach) at the same time is a use-after-free, as
 * with pthread_cancel and pthread_join.
 * @return 0; -EINVAL if @p task is NULL; -ESRCH if the task has already
 *         finished (nothing to cancel). Cancelling twice is not an error.
 * Never suspends. Callable from any thread.
 */
CREW_EXPORT int crew_task_cancel(crew_task_t *task);

/** 1 if the calling task has been cancelled (whether or not it is inside a
 *  shield region), 0 if not or when not called from a task. Never suspends. */
CREW_EXPORT int crew_cancelled(void);

/**
 * Enter a shield region: until the matching crew_shield_end(), suspension
 * points of the calling task do not report cancellation. Regions nest.
 * @return 0; -EPERM when not called from a crew task.
 */
CREW_EXPORT int crew_shield_begin(void);

/**
 * Leave the innermost shield region.
 * @return 0; -EPERM when not called from a crew task; -EINVAL when not inside
 *         a shield region.
 */
CREW_EXPORT int crew_shield_end(void);

/**
 * Run @p fn(@p arg) inside a shield region and return its result (the
 * callback form of crew_shield_begin/end). From a plain thread it just calls
 * @p fn. Suspends if @p fn does.
 */
CREW_EXPORT void *crew_shield(crew_fn_t fn, void *arg);

CREW_END_DECLS

#endif
