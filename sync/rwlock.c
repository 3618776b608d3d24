/* crew_rwlock_t: a writer-preferring, FIFO readers-writer lock
 * (crew/sync.h).
 *
 * state = readers << 2 | WAITERS | WRITER. WAITERS (the waiter list is not
 * empty) changes only under the spin lock; while it is set every fast path
 * fails (rdlock and unlock need it clear, wrlock needs state 0), so only
 * the spin lock's holder changes state.
 *  1. rdlock: CAS readers + 1 if there is no writer and no waiter (a waiting
 *     writer blocks new readers: writer preference). wrlock: CAS 0 ->
 *     WRITER. Else, under the spin lock, take the lock on the same terms or
 *     set WAITERS (one CAS) and queue.
 *  2. unlock: CAS readers - 1, or WRITER -> 0, if no waiter. Else under the
 *     spin lock: drop the hold, then grant.
 *  3. grant: while the head of the queue can have the lock (a writer when
 *     nobody holds it, a reader when no writer does), count it in the state
 *     and wake it; a wake that lost to a cancel or deadline is counted out
 *     again and the next waiter is tried. Readers at the head are granted
 *     together, up to the first writer.
 *  4. A cancelled or timed-out waiter unlinks itself and runs grant: a
 *     writer that leaves the head may unblock the readers behind it. */
#include "waitq.h"

enum { RW_WRITER = 1, RW_WAITERS = 2, RW_READER = 4 };
#define RW_MAX_READERS (UINT32_MAX / RW_READER)

/* crew__swait_t.kind */
enum { WANT_READ, WANT_WRITE };

int crew_rwlock_init(crew_rwlock_t *l)
{
    if (!l)
        return -EINVAL;
    *l = (crew_rwlock_t)CREW_RWLOCK_INIT;
    return 0;
}

int crew_rwlock_destroy(crew_rwlock_t *l)
{
    if (!l)
        return -EINVAL;
    crew__spin_lock(CREW__A32(&l->lock));
    bool busy = atomic_load_explicit(CREW__A32(&l->state), memory_order_relaxed) != 0 ||
                !crew__waitq_empty(&l->waiters);
    crew__spin_unlock(CREW__A32(&l->lock));
    return busy ? -EBUSY : 0;
}

/* The state after kind takes the lock from s, or 0 if it cannot (ignoring
 * WAITERS, which the callers check); -EAGAIN through *rc if the reader
 * count is full. */
static uint32_t taken(unsigned kind, uint32_t s, int *rc)
{
    if (kind == WANT_WRITE)
        return (s & ~(uint32_t)RW_WAITERS) ? 0 : s | RW_WRITER;
    if (s & RW_WRITER)
        return 0;
    if (s / RW_READER == RW_MAX_READERS) {
        *rc = -EAGAIN;
        return 0;
    }
    return s + RW_READER;
}

/* The fast path and the try forms: take the lock if nobody waits. Returns
 * 0, -EBUSY or -EAGAIN. */
static int try_take(crew_rwlock_t *l, unsigned kind)
{
    _Atomic uint32_t *st = CREW__A32(&l->state);
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed), n;
    int rc = -EBUSY;
    while (!(s & RW_WAITERS) && (n = taken(kind, s, &rc))) {
        /* Acquire: pairs with the release of the unlock that freed it. */
        if (atomic_compare_exchange_weak_explicit(st, &s, n, memory_order_acquire,
                                                  memory_order_relaxed))
            return 0;
    }
    return rc;
}

/* Lock held: hand the lock to the waiters at the head that can have it.
 * Their tasks join b (a run of readers is one batch); the caller flushes it
 * after unlocking. */
static void grant(crew_rwlock_t *l, crew__waitq_batch_t *b)
{
    _Atomic uint32_t *st = CREW__A32(&l->state);
    crew__swait_t *sw;
    int rc = 0;
    while ((sw = crew__waitq_first(&l->waiters))) {
        uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
        uint32_t n = taken(sw->kind, s, &rc);
        if (!n)
            break;
        crew__waitq_pop(&l->waiters);
        uint32_t delta = n - s;
        atomic_fetch_add_explicit(st, delta, memory_order_relaxed);
        /* The wake's release publishes the previous holders' writes. */
        if (!crew__waitq_wake_into(b, sw, CREW_WAKE_READY))
            atomic_fetch_sub_explicit(st, delta, memory_order_relaxed);
    }
    if (crew__waitq_empty(&l->waiters))
        atomic_fetch_and_explicit(st, ~(uint32_t)RW_WAITERS, memory_order_relaxed);
}

static int lock_slow(crew_rwlock_t *l, unsigned kind)
{
    _Atomic uint32_t *st = CREW__A32(&l->state), *lk = CREW__A32(&l->lock);
    crew__spin_lock(lk);
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed), n;
    int rc = 0;
    for (;;) {
        if (!(s & RW_WAITERS) && (n = taken(kind, s, &rc))) {
            /* Acquire: as in try_take. */
            if (atomic_compare_exchange_weak_explicit(st, &s, n, memory_order_acquire,
                                                      memory_order_relaxed)) {
                crew__spin_unlock(lk);
                return 0;
            }
        } else if (rc) {
            crew__spin_unlock(lk);
            return rc;
        } else if ((s & RW_WAITERS) ||
                   atomic_compare_exchange_weak_explicit(st, &s, s | RW_WAITERS,
                                                         memory_order_relaxed,
                                                         memory_order_relaxed)) {
            break;
        }
    }
    crew__swait_t sw;
    sw.kind = kind;
    rc = crew__swait_enqueue(&sw, &l->waiters, false);
    if (!rc && !(rc = crew__swait_sleep(&sw, lk, &l->waiters)))
        return 0; /* grant() counted us in before the wake. */
    crew__waitq_batch_t b = CREW__WAITQ_BATCH_INIT;
    grant(l, &b);
    crew__spin_unlock(lk);
    crew__waitq_flush(&b);
    return rc;
}

int crew_rwlock_rdlock(crew_rwlock_t *l)
{
    if (!l)
        return -EINVAL;
    int rc = try_take(l, WANT_READ);
    return rc == -EBUSY ? lock_slow(l, WANT_READ) : rc;
}

int crew_rwlock_wrlock(crew_rwlock_t *l)
{
    if (!l)
        return -EINVAL;
    uint32_t s = 0;
    /* Acquire: as in try_take. */
    if (crew__likely(atomic_compare_exchange_strong_explicit(CREW__A32(&l->state), &s, RW_WRITER,
                                                             memory_order_acquire,
                                                             memory_order_relaxed)))
        return 0;
    return lock_slow(l, WANT_WRITE);
}

int crew_rwlock_tryrdlock(crew_rwlock_t *l)
{
    return l ? try_take(l, WANT_READ) : -EINVAL;
}

int crew_rwlock_trywrlock(crew_rwlock_t *l)
{
    return l ? try_take(l, WANT_WRITE) : -EINVAL;
}

int crew_rwlock_unlock(crew_rwlock_t *l)
{
    if (!l)
        return -EINVAL;
    _Atomic uint32_t *st = CREW__A32(&l->state), *lk = CREW__A32(&l->lock);
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
    for (;;) {
        uint32_t hold = (s & RW_WRITER) ? RW_WRITER : s >= RW_READER ? RW_READER : 0;
        if (!hold)
            return -EPERM;
        if (s & RW_WAITERS) {
            crew__waitq_batch_t b = CREW__WAITQ_BATCH_INIT;
            crew__spin_lock(lk);
            /* Release: pairs with the acquire of the next holder's fast path
             * once WAITERS clears. */
            atomic_fetch_sub_explicit(st, hold, memory_order_release);
            grant(l, &b);
            crew__spin_unlock(lk);
            crew__waitq_flush(&b);
            return 0;
        }
        /* Release: pairs with the acquire of the next lock. */
        if (atomic_compare_exchange_weak_explicit(st, &s, s - hold, memory_order_release,
                                                  memory_order_relaxed))
            return 0;
    }
}
