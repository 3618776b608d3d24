/* crew_sem_t: counting and bounded semaphores with FIFO permit hand-off
 * (crew/sync.h).
 *
 * state = permits << 1 | WAITERS. WAITERS (the waiter list is not empty)
 * changes only under the spin lock, and while it is set the permit count is
 * 0: releases go through the spin lock and hand their permit straight to
 * the first waiter, so no acquirer can take a permit ahead of a waiter.
 *  1. acquire: CAS permits - 1 if there is a permit and no waiter. Else,
 *     under the spin lock, take a permit or set WAITERS (one CAS) and queue.
 *  2. release: CAS permits + 1 if no waiter. Else, under the spin lock, wake
 *     waiters until one wake wins (it now owns the permit); if every wake
 *     lost to a cancel or deadline, the permit goes back to the count.
 *  3. A cancelled or timed-out waiter unlinks itself and clears WAITERS if
 *     it was the last; if a release had popped it and lost its wake, that
 *     release already passed the permit on. */
#include "waitq.h"

enum { S_WAITERS = 1, S_ONE = 2 };

static int sem_init(crew_sem_t *s, unsigned value, uint32_t max)
{
    if (!s || value > CREW_SEM_VALUE_MAX)
        return -EINVAL;
    *s = (crew_sem_t){ .state = (uint32_t)value * S_ONE, .max = max };
    return 0;
}

int crew_sem_init(crew_sem_t *s, unsigned value)
{
    return sem_init(s, value, CREW_SEM_VALUE_MAX);
}

int crew_sem_init_bounded(crew_sem_t *s, unsigned value)
{
    return sem_init(s, value, (uint32_t)value);
}

int crew_sem_destroy(crew_sem_t *s)
{
    if (!s)
        return -EINVAL;
    crew__spin_lock(CREW__A32(&s->lock));
    bool busy = !crew__waitq_empty(&s->waiters);
    crew__spin_unlock(CREW__A32(&s->lock));
    return busy ? -EBUSY : 0;
}

/* Take a permit if there is one and nobody waits. */
static bool try_take(_Atomic uint32_t *st)
{
    uint32_t v = atomic_load_explicit(st, memory_order_relaxed);
    while (v >= S_ONE && !(v & S_WAITERS)) {
        /* Acquire: pairs with the release that put the permit in. */
        if (atomic_compare_exchange_weak_explicit(st, &v, v - S_ONE, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

int crew_sem_tryacquire(crew_sem_t *s)
{
    if (!s)
        return -EINVAL;
    return try_take(CREW__A32(&s->state)) ? 0 : -EAGAIN;
}

int crew_sem_acquire(crew_sem_t *s)
{
    if (!s)
        return -EINVAL;
    _Atomic uint32_t *st = CREW__A32(&s->state), *lk = CREW__A32(&s->lock);
    if (crew__likely(try_take(st)))
        return 0;
    crew__spin_lock(lk);
    uint32_t v = atomic_load_explicit(st, memory_order_relaxed);
    for (;;) {
        if (v >= S_ONE) {
            /* No WAITERS when there are permits. Acquire: as in try_take. */
            if (atomic_compare_exchange_weak_explicit(st, &v, v - S_ONE, memory_order_acquire,
                                                      memory_order_relaxed)) {
                crew__spin_unlock(lk);
                return 0;
            }
        } else if ((v & S_WAITERS) ||
                   atomic_compare_exchange_weak_explicit(st, &v, v | S_WAITERS,
                                                         memory_order_relaxed,
                                                         memory_order_relaxed)) {
            break;
        }
    }
    crew__swait_t sw;
    int rc = crew__swait_enqueue(&sw, &s->waiters, false);
    if (!rc) {
        rc = crew__swait_sleep(&sw, lk, &s->waiters);
        if (!rc)
            return 0; /* The release handed its permit over with the wake. */
    }
    if (crew__waitq_empty(&s->waiters))
        atomic_fetch_and_explicit(st, ~(uint32_t)S_WAITERS, memory_order_relaxed);
    crew__spin_unlock(lk);
    return rc;
}

int crew_sem_release(crew_sem_t *s)
{
    if (!s)
        return -EINVAL;
    _Atomic uint32_t *st = CREW__A32(&s->state), *lk = CREW__A32(&s->lock);
    for (;;) {
        uint32_t v = atomic_load_explicit(st, memory_order_relaxed);
        while (!(v & S_WAITERS)) {
            if (v / S_ONE >= s->max)
                return -EOVERFLOW;
            /* Release: pairs with the acquire of the party that takes it. */
            if (atomic_compare_exchange_weak_explicit(st, &v, v + S_ONE, memory_order_release,
                                                      memory_order_relaxed))
                return 0;
        }
        crew__spin_lock(lk);
        /* With WAITERS set (0 permits), only the lock's holder changes state. */
        if (atomic_load_explicit(st, memory_order_relaxed) & S_WAITERS)
            break;
        crew__spin_unlock(lk); /* The last waiter gave up meanwhile. */
    }
    if (s->max == 0) {
        crew__spin_unlock(lk);
        return -EOVERFLOW;
    }
    if (!crew__waitq_wake_first(&s->waiters, CREW_WAKE_READY, NULL))
        /* Every wake lost: the permit goes to the count. Release: as above. */
        atomic_store_explicit(st, S_ONE, memory_order_release);
    else if (crew__waitq_empty(&s->waiters))
        atomic_store_explicit(st, 0, memory_order_relaxed);
    crew__spin_unlock(lk);
    return 0;
}

unsigned crew_sem_value(const crew_sem_t *s)
{
    if (!s)
        return 0;
    return atomic_load_explicit(CREW__A32(&((crew_sem_t *)s)->state), memory_order_relaxed) /
           S_ONE;
}
