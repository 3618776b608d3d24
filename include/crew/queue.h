/* crew: asyncio-style queues (asyncio.Queue, LifoQueue, PriorityQueue) for
 * tasks and threads.
 *
 * A queue carries void * items (NULL included; crew never looks at them)
 * from producers to consumers, in FIFO, LIFO or priority order, optionally
 * bounded by a maximum size. put waits while a bounded queue is full and get
 * waits while it is empty; both suspend the calling task, not its worker,
 * and block a plain thread, so tasks of any runtime and plain threads can
 * share a queue. Waiting producers and consumers are served first-in
 * first-out. An item handed to a consumer that is cancelled at the same
 * instant is never lost: either the consumer's get returns 0 with it (the
 * cancellation stays pending), or the get returns -ECANCELED and the item
 * goes to the next consumer or stays queued. A producer whose put returns
 * an error did not enqueue its item.
 *
 * Waits follow crew/sync.h: a cancellation point (-ECANCELED) that honours
 * deadline scopes (-ETIMEDOUT), but only when it has to wait.
 *
 * Shutdown: crew_queue_close() makes every later put fail with -EPIPE and
 * wakes the waiting producers (-EPIPE); consumers drain the items left, then
 * get -EPIPE. task_done/join (asyncio's unfinished-tasks count) keep
 * working after close. */
#ifndef CREW_QUEUE_H
#define CREW_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include <crew/export.h>

CREW_BEGIN_DECLS

/** A queue (opaque). */
typedef struct crew_queue_s crew_queue_t;

/** The order in which items come out. */
typedef enum crew_queue_kind_e {
    CREW_QUEUE_FIFO = 0,     /**< First in, first out (asyncio.Queue). */
    CREW_QUEUE_LIFO = 1,     /**< Last in, first out (asyncio.LifoQueue). */
    CREW_QUEUE_PRIORITY = 2, /**< Smallest first by a compare function
                                  (asyncio.PriorityQueue); equal items come
                                  out in insertion order (asyncio's heap is
                                  not stable; crew's is). */
} crew_queue_kind_t;

/** Priority order: negative if @p a comes out before @p b, 0 if equal,
 *  positive if after. Called with the queue's internal lock held: it must
 *  not call into the queue and should be quick. */
typedef int (*crew_queue_cmp_t)(const void *a, const void *b);

/** Called on each item left in a queue that is destroyed. */
typedef void (*crew_queue_dtor_t)(void *item);

/**
 * Create a queue.
 * @param kind     CREW_QUEUE_FIFO, CREW_QUEUE_LIFO or CREW_QUEUE_PRIORITY.
 * @param maxsize  The most items it holds; 0 means unbounded (asyncio's
 *                 maxsize=0; beware that an unbounded queue can grow until
 *                 memory runs out).
 * @param cmp      The order of a CREW_QUEUE_PRIORITY queue; must be NULL
 *                 for the other kinds.
 * @param out      Receives the queue; the caller owns it and frees it with
 *                 crew_queue_destroy().
 * @return 0; -EINVAL if @p out is NULL, @p kind is unknown, or @p cmp is
 *         missing for a priority queue or given for another kind; -ENOMEM.
 * Never suspends; callable from any thread.
 */
CREW_EXPORT CREW_NODISCARD int crew_queue_create(crew_queue_kind_t kind, size_t maxsize,
                                                 crew_queue_cmp_t cmp, crew_queue_t **out);

/**
 * Destroy @p q, calling @p dtor (if not NULL) on every item still in it, in
 * the order get would have returned them.
 * @return 0; -EINVAL if @p q is NULL; -EBUSY if a task or thread waits on it
 *         (put, get or join); nothing is destroyed then.
 * Never suspends. Not to be called while another party may still use @p q.
 */
CREW_EXPORT int crew_queue_destroy(crew_queue_t *q, crew_queue_dtor_t dtor);

/**
 * Put @p item into @p q, waiting while it is full. Counts one unfinished
 * item (crew_queue_task_done()).
 * @return 0; -EINVAL if @p q is NULL; -EPIPE if @p q is closed, or is
 *         closed while the caller waits; -ENOMEM if the queue's storage
 *         could not grow; -ECANCELED / -ETIMEDOUT. Unless it returns 0 the
 *         item was not enqueued.
 * Suspends while a bounded queue is full (a cancellation point then); from
 * a plain thread, blocks it.
 */
CREW_EXPORT CREW_NODISCARD int crew_queue_put(crew_queue_t *q, void *item);

/** crew_queue_put() without waiting.
 *  @return 0; -ENOSPC if @p q is full; -EPIPE if closed; -EINVAL; -ENOMEM.
 *  Never suspends. */
CREW_EXPORT CREW_NODISCARD int crew_queue_put_nowait(crew_queue_t *q, void *item);

/**
 * Take the next item out of @p q into @p *item, waiting while it is empty.
 * @return 0; -EINVAL if @p q or @p item is NULL; -EPIPE if @p q is closed
 *         and empty (also when it is closed while the caller waits);
 *         -ECANCELED / -ETIMEDOUT (no item taken; @p *item unchanged).
 * Suspends while @p q is empty (a cancellation point then); from a plain
 * thread, blocks it.
 */
CREW_EXPORT CREW_NODISCARD int crew_queue_get(crew_queue_t *q, void **item);

/** crew_queue_get() without waiting.
 *  @return 0; -EAGAIN if @p q is empty (and open); -EPIPE if it is closed
 *  and empty; -EINVAL. Never suspends. */
CREW_EXPORT CREW_NODISCARD int crew_queue_get_nowait(crew_queue_t *q, void **item);

/**
 * Mark one item taken with get as processed; when every item put has been
 * marked, crew_queue_join() returns.
 * @return 0; -EINVAL if @p q is NULL or called more times than items were
 *         put (asyncio's ValueError; the count stays at 0).
 * Never suspends; callable from any thread.
 */
CREW_EXPORT int crew_queue_task_done(crew_queue_t *q);

/**
 * Wait until every item ever put into @p q has been marked with
 * crew_queue_task_done() (at once if none is unfinished).
 * @return 0; -EINVAL if @p q is NULL; -ECANCELED / -ETIMEDOUT.
 * Suspends while items are unfinished (a cancellation point then); from a
 * plain thread, blocks it.
 */
CREW_EXPORT CREW_NODISCARD int crew_queue_join(crew_queue_t *q);

/** Close @p q (see the file comment); closing twice is not an error.
 *  @return 0; -EINVAL if @p q is NULL. Never suspends; callable from any thread. */
CREW_EXPORT int crew_queue_close(crew_queue_t *q);

/** Items in @p q now (a snapshot); 0 if @p q is NULL. Never suspends. */
CREW_EXPORT size_t crew_queue_qsize(crew_queue_t *q);

/** Whether @p q holds no item now; true if @p q is NULL. Never suspends. */
CREW_EXPORT bool crew_queue_empty(crew_queue_t *q);

/** Whether @p q is bounded and holds maxsize items now; false if @p q is
 *  NULL. Never suspends. */
CREW_EXPORT bool crew_queue_full(crew_queue_t *q);

CREW_END_DECLS

#endif
