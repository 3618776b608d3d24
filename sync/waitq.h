/* The FIFO waiter list shared by every primitive of sync/ (crew/sync.h,
 * crew/queue.h), and the one wait routine they all use.
 *
 * A primitive keeps its waiters in a doubly linked list (runtime/list.h)
 * guarded by its spin lock. A waiter record (crew__swait_t) lives on the
 * waiting party's stack:
 *  1. Under the primitive's lock, the waiter arms and registers itself
 *     (crew__swait_enqueue: park.h rule 1), then lets go of the lock and
 *     waits (crew__swait_sleep).
 *  2. A waker pops the record under the same lock, fills in what it hands
 *     over (sw->item, sw->handoff) and tries the wake, still under the lock.
 *     If the wake lost (the waiter was woken first by a cancel or a
 *     deadline), the waker keeps what it was handing over and gives it to
 *     the next waiter (park.h rule 2): crew__waitq_wake_first does that loop.
 *  3. A waiter woken for another reason takes the lock and unlinks itself if
 *     it is still queued (park.h rule 4). If it is not, a waker popped it and
 *     lost, and has passed the hand-off on under the lock the waiter just
 *     took, so no waker touches the record after the waiter returns.
 * Because every wake happens under the lock, and a waiter whose wake won
 * never needs the lock again, a READY waiter returns without touching it.
 *
 * Wake-all in batches. A wake-all (crew__waitq_wake_all, rwlock's grant)
 * claims every task waiter under the lock (the wake is decided there, as
 * above) but does not schedule the claimed tasks one by one: they collect
 * in a crew__waitq_batch_t, and each CREW__WAITQ_CHUNK of them is made
 * runnable with one queue push and one cheap notify check
 * (crew__sched_wake_batch); the last, partial chunk is pushed by
 * crew__waitq_flush after the lock is released. A claimed task cannot run
 * before its push and its record is not touched again, so deferring the
 * push changes only when it runs. Why chunks rather than one push for the
 * whole list: with one push, other workers sat idle until the walk over
 * every waiter had finished (the walk is the serial part: a cache miss on
 * each waiter's stack and task); chunks let them start on the first tasks
 * while the walk goes on, as the per-task wakes did, at 1/256 of the pushes.
 * Thread waiters are woken one by one under the lock, as before. */
#ifndef CREW_SYNC_WAITQ_H
#define CREW_SYNC_WAITQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "list.h"
#include "park.h"

#include <crew/sync.h>

/* The primitives' public structs hold their atomic words as uint32_t (the
 * public headers stay free of <stdatomic.h>); these are the same objects
 * seen as atomics. */
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t) &&
                   _Alignof(_Atomic uint32_t) == _Alignof(uint32_t),
               "_Atomic uint32_t must have the layout of uint32_t");
#define CREW__A32(p) ((_Atomic uint32_t *)(p))

/* Likewise the public struct crew__waitq is the storage of a crew__list_t
 * (the public headers do not see runtime/list.h): same members, same
 * layout, and only ever accessed as a crew__list_t. */
_Static_assert(sizeof(struct crew__waitq) == sizeof(crew__list_t) &&
                   _Alignof(struct crew__waitq) == _Alignof(crew__list_t) &&
                   offsetof(struct crew__waitq, head) == offsetof(crew__list_t, head) &&
                   offsetof(struct crew__waitq, tail) == offsetof(crew__list_t, tail),
               "struct crew__waitq must have the layout of crew__list_t");

static inline crew__list_t *crew__waitq_list(struct crew__waitq *q)
{
    return (crew__list_t *)(void *)q;
}

typedef struct crew__swait crew__swait_t;

struct crew__swait {
    crew__waiter_t w;
    crew__link_t link; /* In the primitive's list; under the lock. */
    void *item;      /* Queue: the item a getter receives or a putter offers. */
    unsigned kind;   /* Which wait, for primitives with several (rwlock, queue). */
    bool linked;     /* In the list; under the lock. */
    bool handoff;    /* Mutex: the wake handed over the lock itself. */
    bool starving;   /* Mutex: waited past CREW_MUTEX_HANDOFF_NS. */
};

static inline bool crew__waitq_empty(struct crew__waitq *q)
{
    return crew__waitq_list(q)->head == NULL;
}

/* List operations; the primitive's lock is held. */
void crew__waitq_push(struct crew__waitq *q, crew__swait_t *sw, bool front);
/* The first waiter, still queued, or NULL. */
crew__swait_t *crew__waitq_first(struct crew__waitq *q);
crew__swait_t *crew__waitq_pop(struct crew__waitq *q);
void crew__waitq_unlink(struct crew__waitq *q, crew__swait_t *sw);

/* Arm sw for the caller and queue it (at the front if front), lock held.
 * Returns 0, or the status the caller must return without waiting (a
 * pending cancel or an expired deadline; sw is then not queued). */
int crew__swait_enqueue(crew__swait_t *sw, struct crew__waitq *q, bool front);

/* Release lock and wait until sw is woken. Returns 0 if a waker delivered
 * (cause READY) and -EPIPE if it closed the wait (cause CLOSED), without the
 * lock. Otherwise (-ECANCELED, -ETIMEDOUT) it returns with lock held and sw
 * unlinked; sw->linked then says whether sw was still queued (true) or a
 * waker had popped it and lost its wake (false), so the caller can undo its
 * registration's effects before it unlocks. */
int crew__swait_sleep(crew__swait_t *sw, _Atomic uint32_t *lock, struct crew__waitq *q);

/* Pop waiters until one's wake with cause wins, setting each one's item to
 * item first; returns that waiter (whose record the caller must not touch
 * again), or NULL if the list ran out. Lock held. */
crew__swait_t *crew__waitq_wake_first(struct crew__waitq *q, int cause, void *item);

/* Tasks claimed by wakes under a primitive's lock, made runnable a chunk at
 * a time, the rest by crew__waitq_flush after the unlock (top of file).
 * Initialise with CREW__WAITQ_BATCH_INIT. */
typedef struct crew__waitq_batch {
    crew__wake_batch_t tasks;
    crew_rt_t *rt; /* The runtime of tasks' tasks; NULL while empty. */
} crew__waitq_batch_t;
#define CREW__WAITQ_BATCH_INIT { { NULL, NULL, 0 }, NULL }

/* Wake sw (already popped) with cause, its task joining b (a full chunk is
 * pushed at once); true if the wake won (park.h rule 2). Lock held. */
bool crew__waitq_wake_into(crew__waitq_batch_t *b, crew__swait_t *sw, int cause);

/* Pop and wake every waiter with cause into b; returns how many wakes won.
 * Lock held; the caller flushes b after unlocking. */
size_t crew__waitq_wake_all(struct crew__waitq *q, int cause, crew__waitq_batch_t *b);

/* Make b's tasks runnable (one push, at most one notify) and empty b. Call
 * without the primitive's lock; b may be empty. */
void crew__waitq_flush(crew__waitq_batch_t *b);

#endif
