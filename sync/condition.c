/* crew_cond_t: condition variables over crew_mutex_t (crew/sync.h).
 *
 *  1. wait: under the condition's spin lock, arm and queue (a pending
 *     cancel or expired deadline returns before anything changes), then
 *     unlock the mutex, then sleep. A notify that follows the mutex unlock
 *     finds the waiter queued: that is the atomicity the contract promises.
 *  2. notify pops waiters until one wake wins; a waiter that was woken by a
 *     cancel or deadline first has been popped and loses, so the
 *     notification goes to the next one (never lost to a leaving waiter).
 *  3. The mutex is locked again before returning, in a shield region when
 *     the wait was interrupted, so that re-locking cannot itself be
 *     interrupted (a plain thread has no shield and needs none). */
#include "waitq.h"

int crew_cond_init(crew_cond_t *c)
{
    if (!c)
        return -EINVAL;
    *c = (crew_cond_t)CREW_COND_INIT;
    return 0;
}

int crew_cond_destroy(crew_cond_t *c)
{
    if (!c)
        return -EINVAL;
    crew__spin_lock(CREW__A32(&c->lock));
    bool busy = !crew__waitq_empty(&c->waiters);
    crew__spin_unlock(CREW__A32(&c->lock));
    return busy ? -EBUSY : 0;
}

/* Lock m whatever happens: a shield region holds back cancellation and the
 * deadlines of enclosing scopes, so the lock can only succeed. */
static void relock(crew_mutex_t *m)
{
    bool shielded = crew_shield_begin() == 0;
    int rc = crew_mutex_lock(m);
    CREW_ASSERT(rc == 0);
    if (shielded)
        crew_shield_end();
}

int crew_cond_wait(crew_cond_t *c, crew_mutex_t *m)
{
    if (!c || !m)
        return -EINVAL;
    if (!(atomic_load_explicit(CREW__A32(&m->state), memory_order_relaxed) & 1u))
        return -EPERM;
    _Atomic uint32_t *lk = CREW__A32(&c->lock);
    crew__swait_t sw;
    crew__spin_lock(lk);
    int rc = crew__swait_enqueue(&sw, &c->waiters, false);
    if (rc) {
        crew__spin_unlock(lk);
        return rc; /* m was never unlocked. */
    }
    crew__spin_unlock(lk);
    crew_mutex_unlock(m);
    crew__spin_lock(lk);
    rc = crew__swait_sleep(&sw, lk, &c->waiters);
    if (rc)
        crew__spin_unlock(lk); /* Unlinked, or a notify lost to us and moved on. */
    relock(m);
    return rc;
}

int crew_cond_notify(crew_cond_t *c)
{
    if (!c)
        return -EINVAL;
    crew__spin_lock(CREW__A32(&c->lock));
    crew__waitq_wake_first(&c->waiters, CREW_WAKE_READY, NULL);
    crew__spin_unlock(CREW__A32(&c->lock));
    return 0;
}

int crew_cond_notify_all(crew_cond_t *c)
{
    if (!c)
        return -EINVAL;
    crew__waitq_batch_t b = CREW__WAITQ_BATCH_INIT;
    crew__spin_lock(CREW__A32(&c->lock));
    crew__waitq_wake_all(&c->waiters, CREW_WAKE_READY, &b);
    crew__spin_unlock(CREW__A32(&c->lock));
    crew__waitq_flush(&b);
    return 0;
}
