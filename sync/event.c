/* crew_event_t: asyncio.Event for tasks and threads (crew/sync.h).
 *
 * The flag is read without the lock on the fast path and written under it,
 * so a waiter that checks it under the lock and queues cannot miss a set:
 * set raises the flag and wakes every queued waiter in one critical
 * section. The wake itself is what a waiter returns on (READY), never a
 * second look at the flag, so a clear right after a set does not strand
 * the waiters that set woke. */
#include "waitq.h"

int crew_event_init(crew_event_t *e)
{
    if (!e)
        return -EINVAL;
    *e = (crew_event_t)CREW_EVENT_INIT;
    return 0;
}

int crew_event_destroy(crew_event_t *e)
{
    if (!e)
        return -EINVAL;
    crew__spin_lock(CREW__A32(&e->lock));
    bool busy = !crew__waitq_empty(&e->waiters);
    crew__spin_unlock(CREW__A32(&e->lock));
    return busy ? -EBUSY : 0;
}

int crew_event_wait(crew_event_t *e)
{
    if (!e)
        return -EINVAL;
    _Atomic uint32_t *flag = CREW__A32(&e->set), *lk = CREW__A32(&e->lock);
    /* Acquire: pairs with the release in crew_event_set. */
    if (atomic_load_explicit(flag, memory_order_acquire))
        return 0;
    crew__spin_lock(lk);
    int rc = 0;
    if (!atomic_load_explicit(flag, memory_order_relaxed)) {
        crew__swait_t sw;
        rc = crew__swait_enqueue(&sw, &e->waiters, false);
        if (!rc && !(rc = crew__swait_sleep(&sw, lk, &e->waiters)))
            return 0;
    }
    crew__spin_unlock(lk);
    return rc;
}

int crew_event_set(crew_event_t *e)
{
    if (!e)
        return -EINVAL;
    crew__waitq_batch_t b = CREW__WAITQ_BATCH_INIT;
    crew__spin_lock(CREW__A32(&e->lock));
    /* Release: pairs with the fast-path acquire in crew_event_wait. */
    atomic_store_explicit(CREW__A32(&e->set), 1, memory_order_release);
    crew__waitq_wake_all(&e->waiters, CREW_WAKE_READY, &b);
    crew__spin_unlock(CREW__A32(&e->lock));
    crew__waitq_flush(&b);
    return 0;
}

int crew_event_clear(crew_event_t *e)
{
    if (!e)
        return -EINVAL;
    atomic_store_explicit(CREW__A32(&e->set), 0, memory_order_relaxed);
    return 0;
}

bool crew_event_is_set(const crew_event_t *e)
{
    return e && atomic_load_explicit(CREW__A32(&((crew_event_t *)e)->set), memory_order_acquire);
}
