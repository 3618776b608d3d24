/* crew_mutex_t: a lock for tasks and threads with bounded barging
 * (crew/sync.h).
 *
 * state holds three bits: LOCKED, WAITERS (the waiter list is not empty)
 * and WOKEN (rule 4). WAITERS changes only under the spin lock, and while
 * LOCKED is set only the spin lock's holder (or the lock's holder freeing it
 * by CAS, rule 4) changes state, so the unlock slow path, which holds both,
 * may rewrite it.
 *  1. lock: CAS 0 -> LOCKED. Else, under the spin lock, either take a free
 *     lock or set WAITERS (one CAS, so an unlock cannot slip in between the
 *     check and the bit) and queue. No spinning first: measured with
 *     mutex_contention (docs/benchmarks.md), spinning on the lock word
 *     slowed the holder on the sibling hyperthread (2.5-23 M ops/s, against
 *     21-27 M without); a parked task frees its worker for other tasks.
 *  2. unlock: CAS LOCKED -> 0. Else (WAITERS) under the spin lock: a
 *     starving waiter at the head gets the lock handed over (LOCKED stays
 *     set); otherwise the lock is freed and the first waiter woken to try
 *     again. Either way, a wake that loses to a cancel or deadline moves on
 *     to the next waiter.
 *  3. A woken waiter that finds the lock taken again (by a barging party)
 *     requeues at the front; once it has waited CREW_MUTEX_HANDOFF_NS it is
 *     starving and gets the next unlock's hand-off.
 *  4. At most one woken waiter at a time (Go's mutexWoken): the unlock that
 *     wakes one sets WOKEN, and until that waiter has retried (taking the
 *     lock or requeueing, either way clearing WOKEN in the same CAS),
 *     unlocks just free the lock, without the spin lock and without waking
 *     anyone. Without it, under contention every unlock woke another waiter
 *     that mostly lost to a barger and went back to sleep: a context switch
 *     per lock operation (mutex_contention: 2.5-4 M ops/s).
 * Why barging: with strict hand-off every contended unlock costs a context
 * switch even when the unlocking task would lock again at once (a convoy);
 * Go's sync.Mutex bounds the same trade-off with the same 1 ms. */
#include "waitq.h"

enum { M_LOCKED = 1, M_WAITERS = 2, M_WOKEN = 4 };

int crew_mutex_init(crew_mutex_t *m)
{
    if (!m)
        return -EINVAL;
    *m = (crew_mutex_t)CREW_MUTEX_INIT;
    return 0;
}

int crew_mutex_destroy(crew_mutex_t *m)
{
    if (!m)
        return -EINVAL;
    crew__spin_lock(CREW__A32(&m->lock));
    bool busy = atomic_load_explicit(CREW__A32(&m->state), memory_order_relaxed) != 0 ||
                !crew__waitq_empty(&m->waiters);
    crew__spin_unlock(CREW__A32(&m->lock));
    return busy ? -EBUSY : 0;
}

/* Take the lock if it is free (WAITERS or not). */
static bool try_take(_Atomic uint32_t *st)
{
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
    while (!(s & M_LOCKED)) {
        /* Acquire: pairs with the release of the unlock that freed it. */
        if (atomic_compare_exchange_weak_explicit(st, &s, s | M_LOCKED, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

/* Under the spin lock: take the lock if it is free, else set WAITERS. The
 * woken waiter (rule 4) also gives up WOKEN, in the same CAS that saw the
 * lock free or taken: were it cleared apart, an unlock in between could
 * leave the lock free with everyone asleep. */
static bool take_or_flag(_Atomic uint32_t *st, bool woken)
{
    uint32_t drop = woken ? M_WOKEN : 0;
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
    for (;;) {
        if (!(s & M_LOCKED)) {
            /* Acquire: as in try_take. */
            if (atomic_compare_exchange_weak_explicit(st, &s, (s | M_LOCKED) & ~drop,
                                                      memory_order_acquire, memory_order_relaxed))
                return true;
        } else {
            uint32_t want = (s | M_WAITERS) & ~drop;
            if (want == s || atomic_compare_exchange_weak_explicit(st, &s, want,
                                                                   memory_order_relaxed,
                                                                   memory_order_relaxed))
                return false;
        }
    }
}

static void clear_waiters_if_empty(crew_mutex_t *m)
{
    if (crew__waitq_empty(&m->waiters))
        atomic_fetch_and_explicit(CREW__A32(&m->state), ~(uint32_t)M_WAITERS,
                                  memory_order_relaxed);
}

static int lock_slow(crew_mutex_t *m)
{
    _Atomic uint32_t *st = CREW__A32(&m->state), *lk = CREW__A32(&m->lock);
    crew__swait_t sw;
    sw.starving = false;
    bool retry = false;
    int64_t since = 0;
    for (;;) {
        crew__spin_lock(lk);
        if (take_or_flag(st, retry)) {
            crew__spin_unlock(lk);
            return 0;
        }
        if (!retry)
            since = crew_now();
        else if (!sw.starving && crew_now() - since >= CREW_MUTEX_HANDOFF_NS)
            sw.starving = true;
        int rc = crew__swait_enqueue(&sw, &m->waiters, retry);
        if (!rc) {
            rc = crew__swait_sleep(&sw, lk, &m->waiters);
            if (!rc) {
                if (sw.handoff)
                    return 0;
                retry = true;
                continue;
            }
        }
        clear_waiters_if_empty(m);
        crew__spin_unlock(lk);
        return rc;
    }
}

int crew_mutex_lock(crew_mutex_t *m)
{
    if (!m)
        return -EINVAL;
    uint32_t s = 0;
    /* Acquire: pairs with the release of the unlock that freed the lock. */
    if (crew__likely(atomic_compare_exchange_strong_explicit(CREW__A32(&m->state), &s, M_LOCKED,
                                                             memory_order_acquire,
                                                             memory_order_relaxed)))
        return 0;
    /* Free but with waiters (one of them woken and on its way): barge. */
    if (!(s & M_LOCKED) && try_take(CREW__A32(&m->state)))
        return 0;
    return lock_slow(m);
}

int crew_mutex_trylock(crew_mutex_t *m)
{
    if (!m)
        return -EINVAL;
    return try_take(CREW__A32(&m->state)) ? 0 : -EBUSY;
}

static void unlock_slow(crew_mutex_t *m)
{
    _Atomic uint32_t *st = CREW__A32(&m->state), *lk = CREW__A32(&m->lock);
    /* A woken waiter has yet to retry: just free the lock (rule 4). It
     * will compete for it, and wake the next waiter's turn by requeueing. */
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
    while (s & M_WOKEN)
        /* Release: pairs with the acquire of whoever takes it next. */
        if (atomic_compare_exchange_weak_explicit(st, &s, s & ~(uint32_t)M_LOCKED,
                                                  memory_order_release, memory_order_relaxed))
            return;
    crew__spin_lock(lk);
    /* Hand the lock, still LOCKED, to starving waiters; the wake's release
     * publishes the critical section to the new holder. */
    crew__swait_t *sw;
    while ((sw = crew__waitq_first(&m->waiters)) && sw->starving) {
        crew__waitq_pop(&m->waiters);
        sw->handoff = true;
        clear_waiters_if_empty(m);
        if (crew__waiter_wake(&sw->w, CREW_WAKE_READY)) {
            crew__spin_unlock(lk);
            return;
        }
    }
    /* Wake the first waiter to compete for the lock, then free it (the
     * woken waiter needs the spin lock before it can look). Release: pairs
     * with the acquire of whoever takes it next. */
    bool woke = crew__waitq_wake_first(&m->waiters, CREW_WAKE_READY, NULL) != NULL;
    atomic_store_explicit(st, (crew__waitq_empty(&m->waiters) ? 0 : M_WAITERS) | (woke ? M_WOKEN : 0),
                          memory_order_release);
    crew__spin_unlock(lk);
}

int crew_mutex_unlock(crew_mutex_t *m)
{
    if (!m)
        return -EINVAL;
    uint32_t s = M_LOCKED;
    /* Release: pairs with the acquire of the next lock. */
    if (crew__likely(atomic_compare_exchange_strong_explicit(CREW__A32(&m->state), &s, 0,
                                                             memory_order_release,
                                                             memory_order_relaxed)))
        return 0;
    if (!(s & M_LOCKED))
        return -EPERM;
    unlock_slow(m);
    return 0;
}
