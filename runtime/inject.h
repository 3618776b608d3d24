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

typedef struct crew__inject {
    pthread_mutex_t lock;
    crew_task_t *head; /* Under lock. */
    crew_task_t *tail; /* Under lock. */
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

/* Append the list first..last (n tasks linked by qnext). Returns 0, or
 * -ESHUTDOWN if the queue is closed and force is false (nothing appended). */
int crew__inject_push(crew__inject_t *q, crew_task_t *first, crew_task_t *last, uint64_t n,
                      bool force);

/* Take up to max tasks from the front; returns the list (linked by qnext,
 * last->qnext NULL) and the count in *n. NULL when empty. */
crew_task_t *crew__inject_pop(crew__inject_t *q, uint64_t max, uint64_t *n);

static inline uint64_t crew__inject_len(crew__inject_t *q)
{
    return atomic_load_explicit(&q->len, memory_order_relaxed);
}

/* Refuse every later push that is not forced. */
void crew__inject_close(crew__inject_t *q);

#endif
