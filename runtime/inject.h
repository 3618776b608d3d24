/* The runtime's injection queue: FIFO of tasks spawned or woken from outside
 * the workers, and the overflow of full local queues. A mutex-protected
 * intrusive list with an atomic length, so that workers can check for work
 * without taking the lock (Tokio and Go keep theirs behind a lock too: it is
 * off the hot path, which is the local ring). */
#ifndef CREW_RUNTIME_INJECT_H
#define CREW_RUNTIME_INJECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

/* Two lanes, each FIFO: tasks that are resuming (woken from outside the
 * workers, e.g. by a timer) are taken before tasks that have not started.
 * A resumed task already holds a stack and usually finishes quickly; a burst
 * of new spawns in the injection queue must not delay it, or every sleeper
 * in a large spawn wave wakes as late as the spawn backlog is long. */
enum { CREW_INJECT_WAKE = 0, CREW_INJECT_NEW = 1 };

typedef struct crew__inject {
    pthread_mutex_t lock;
    crew_task_t *head[2]; /* Under lock, per lane. */
    crew_task_t *tail[2]; /* Under lock, per lane. */
    /* Written under lock; read without it as a hint (relaxed): a stale zero only
     * delays a worker until its next check, because every push is followed by
     * the idle protocol's notify (see idle.c), which orders it with parking. */
    _Atomic uint64_t len;
    bool closed;       /* Under lock. Set when the runtime shuts down. */
    /* Tasks accepted by pushes that were not forced (new tasks from outside
     * the workers). Written under lock; final once the queue is closed, which
     * is when the runtime's live-task count reads it. */
    _Atomic uint64_t accepted;
} crew__inject_t;

int crew__inject_init(crew__inject_t *q);
void crew__inject_destroy(crew__inject_t *q);

/* Flags of crew__inject_push. */
#define CREW_INJECT_FORCE 1u  /* Accept even after close (an existing task). */
#define CREW_INJECT_RESUME 2u /* The resuming lane. */

/* Append the list first..last (n tasks linked by qnext). Returns 0, or
 * -ESHUTDOWN if the queue is closed and CREW_INJECT_FORCE is not given
 * (nothing appended). */
int crew__inject_push(crew__inject_t *q, crew_task_t *first, crew_task_t *last, uint64_t n,
                      unsigned flags);

/* Take up to max tasks, the resuming lane first, each lane from its front;
 * returns the list (linked by qnext, last->qnext NULL) and the count in *n.
 * NULL when empty. */
crew_task_t *crew__inject_pop(crew__inject_t *q, uint64_t max, uint64_t *n);

static inline uint64_t crew__inject_len(crew__inject_t *q)
{
    return atomic_load_explicit(&q->len, memory_order_relaxed);
}

/* Refuse every later push that is not forced. */
void crew__inject_close(crew__inject_t *q);

#endif
