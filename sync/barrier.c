/* crew_barrier_t: a reusable barrier (crew/sync.h). Everything is under the
 * spin lock: arrivals are counted there, and the last arrival of a cycle
 * resets the count and wakes the whole cycle in the same critical section,
 * so a party of the next cycle can arrive at once without mixing cycles. A
 * party that leaves a cycle (cancel, deadline) while still queued is taken
 * off the count; one that the trip had already popped lost its wake to the
 * cancel and reports the cancel (the cycle completed without needing it). */
#include "waitq.h"

int crew_barrier_init(crew_barrier_t *b, unsigned parties)
{
    if (!b || parties == 0)
        return -EINVAL;
    *b = (crew_barrier_t){ .parties = parties };
    return 0;
}

int crew_barrier_destroy(crew_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    crew__spin_lock(CREW__A32(&b->lock));
    bool busy = !crew__waitq_empty(&b->waiters);
    crew__spin_unlock(CREW__A32(&b->lock));
    return busy ? -EBUSY : 0;
}

int crew_barrier_wait(crew_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    _Atomic uint32_t *lk = CREW__A32(&b->lock);
    crew__spin_lock(lk);
    int rc;
    if (b->broken) {
        rc = -EPIPE;
    } else if (b->arrived + 1 == b->parties) {
        b->arrived = 0;
        crew__waitq_batch_t wakes = CREW__WAITQ_BATCH_INIT;
        crew__waitq_wake_all(&b->waiters, CREW_WAKE_READY, &wakes);
        crew__spin_unlock(lk);
        crew__waitq_flush(&wakes);
        return CREW_BARRIER_SERIAL;
    } else {
        crew__swait_t sw;
        rc = crew__swait_enqueue(&sw, &b->waiters, false);
        if (!rc) {
            b->arrived++;
            rc = crew__swait_sleep(&sw, lk, &b->waiters);
            if (rc == 0 || rc == -EPIPE)
                return rc;
            if (sw.linked)
                b->arrived--;
        }
    }
    crew__spin_unlock(lk);
    return rc;
}

/* Wake every waiter with CLOSED (they return -EPIPE) and start over. */
static int break_cycle(crew_barrier_t *b, uint32_t broken)
{
    if (!b)
        return -EINVAL;
    crew__waitq_batch_t wakes = CREW__WAITQ_BATCH_INIT;
    crew__spin_lock(CREW__A32(&b->lock));
    b->broken = broken;
    b->arrived = 0;
    crew__waitq_wake_all(&b->waiters, CREW_WAKE_CLOSED, &wakes);
    crew__spin_unlock(CREW__A32(&b->lock));
    crew__waitq_flush(&wakes);
    return 0;
}

int crew_barrier_abort(crew_barrier_t *b)
{
    return break_cycle(b, 1);
}

int crew_barrier_reset(crew_barrier_t *b)
{
    return break_cycle(b, 0);
}
