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
 * From a crew task this suspends the task (a suspension point); from any other
 * thread it blocks that thread. A finished task is joined without suspending.
 * On success the handle is consumed: do not use @p task again.
 *
 * @param result  Receives the task's return value; may be NULL.
 * @return 0; -EINVAL if @p task is NULL; -EDEADLK if a task joins itself;
 *         -EBUSY if another caller is already joining @p task (one joiner at a
 *         time). On an error the handle stays owned by the caller.
 */
CREW_EXPORT CREW_NODISCARD int crew_join(crew_task_t *task, void **result);

/**
 * Give the handle back without waiting: the task runs to completion on its own
 * and its memory is freed when it finishes (its result is discarded).
 * @return 0; -EINVAL if @p task is NULL; -EBUSY while another caller is joining it.
 * Never suspends. Thread-safe.
 */
CREW_EXPORT int crew_detach(crew_task_t *task);

/**
 * Let other runnable tasks run: the calling task goes to the back of its
 * worker's run queue. Returns at once when nothing else is runnable.
 * @return 0; -EPERM when not called from a crew task.
 * Suspends (briefly); a suspension point.
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

CREW_END_DECLS

#endif
