/* crew: synchronisation primitives (asyncio.Lock, Semaphore, BoundedSemaphore,
 * Condition, Event, Barrier, and a readers-writer lock).
 *
 * Every type here is caller-allocated (usually embedded in the data it
 * guards, or a local variable): initialise it with its _init function before
 * any other use and call its _destroy function when done; no function
 * allocates. The fields are private: never read or write them.
 *
 * Waiting suspends the calling task, not its worker: the worker runs other
 * tasks meanwhile, and the task may resume on another worker. The same
 * functions called from a plain thread (not a crew task) block that thread,
 * so tasks of any runtime and plain threads can share one primitive. A
 * primitive may be held across suspension points, which is why these exist
 * next to pthread's (a pthread mutex must never be held across one).
 *
 * Waits, uniformly:
 *   - Waiters are woken first-in first-out.
 *   - A wait is a suspension point, hence a cancellation point, but only
 *     when it has to wait: an operation that can complete at once does so
 *     without suspending and without reporting a pending cancellation (as
 *     in asyncio, where acquiring a free Lock does not yield).
 *   - A waiting task returns -ECANCELED when it is cancelled (outside a
 *     shield region) and -ETIMEDOUT when a deadline scope (time.h) expires;
 *     it has then been removed from the wait and got nothing. If what it
 *     waited for was handed to it at the same instant (a lock, a permit, a
 *     notification, an item), exactly one outcome wins: either it returns 0
 *     and owns what it got (the cancellation stays pending and is reported
 *     at its next suspension point), or it returns the error and what was
 *     being handed over goes to the next waiter. Nothing is lost or
 *     duplicated.
 *   - Plain threads wait until they get what they wait for (they have no
 *     cancellation or deadline scope); use the _try forms to poll.
 *
 * Destroying a primitive that still has waiters returns -EBUSY and leaves it
 * intact. Every function is thread-safe unless it says otherwise. */
#ifndef CREW_SYNC_H
#define CREW_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <crew/export.h>

CREW_BEGIN_DECLS

/* A link of a waiter record (on the waiting party's stack); private. */
struct crew__link;

/** Private: the FIFO list of waiters every primitive embeds (the storage of
 * the runtime's intrusive list). */
struct crew__waitq {
    struct crew__link *head;
    struct crew__link *tail;
};

/* ---- Mutex (asyncio.Lock) ------------------------------------------------ */

/**
 * A mutual-exclusion lock for tasks and threads (asyncio.Lock).
 *
 * Not recursive: a second lock by the holder waits forever (or until
 * cancelled). Any party may unlock it, not only the one that locked it (as
 * asyncio.Lock's release by another task): unlocking by a non-owner is not
 * detected. Uncontended lock and unlock are one atomic read-modify-write
 * each.
 *
 * Fairness: waiters queue first-in first-out, and an unlock wakes the first
 * one. Like Go's sync.Mutex, the lock allows bounded barging: an unlock
 * frees the lock and wakes the first waiter, and a party that arrives
 * before that waiter runs may take the lock first (so a task that unlocks
 * and locks again does not have to switch to the waiter each time). A woken
 * waiter that loses goes back to the front of the queue; once it has waited
 * more than CREW_MUTEX_HANDOFF_NS, unlocks hand the lock directly to it, so
 * no waiter starves.
 */
typedef struct crew_mutex_s {
    uint32_t state;          /* Locked and has-waiters bits (atomic). */
    uint32_t lock;           /* Spin lock guarding waiters. */
    struct crew__waitq waiters;
} crew_mutex_t;

/** How long a waiter may lose to barging parties before unlocks hand the
 *  lock to it directly (nanoseconds; Go's starvation threshold). */
#define CREW_MUTEX_HANDOFF_NS 1000000

/** Static initialiser, equivalent to crew_mutex_init(). */
#define CREW_MUTEX_INIT { 0, 0, { 0, 0 } }

/** Initialise @p m unlocked. @return 0; -EINVAL if @p m is NULL. Never suspends. */
CREW_EXPORT int crew_mutex_init(crew_mutex_t *m);

/**
 * Destroy @p m (it may be initialised again afterwards).
 * @return 0; -EINVAL if @p m is NULL; -EBUSY if it is locked or has
 *         waiters (nothing changes). Never suspends.
 */
CREW_EXPORT int crew_mutex_destroy(crew_mutex_t *m);

/**
 * Lock @p m, waiting while another party holds it.
 * @return 0 (the caller holds the lock); -EINVAL if @p m is NULL;
 *         -ECANCELED / -ETIMEDOUT if the calling task is cancelled or its
 *         deadline scope expires before it gets the lock (it does not hold
 *         it then).
 * Suspends when the lock is held (a cancellation point then); from a plain
 * thread, blocks it.
 */
CREW_EXPORT CREW_NODISCARD int crew_mutex_lock(crew_mutex_t *m);

/** Lock @p m if it is free, without waiting (it may take the lock ahead of
 *  waiters that have not run yet, as crew_mutex_lock may).
 *  @return 0; -EBUSY if it is held; -EINVAL if @p m is NULL. Never suspends. */
CREW_EXPORT CREW_NODISCARD int crew_mutex_trylock(crew_mutex_t *m);

/**
 * Unlock @p m and wake its first waiter, if any.
 * @return 0; -EINVAL if @p m is NULL; -EPERM if it is not locked.
 * Never suspends; callable from any thread.
 */
CREW_EXPORT int crew_mutex_unlock(crew_mutex_t *m);

/* ---- Semaphore and bounded semaphore ------------------------------------- */

/**
 * A counting semaphore (asyncio.Semaphore, and asyncio.BoundedSemaphore when
 * initialised with crew_sem_init_bounded()). Strictly FIFO: while tasks
 * wait, a release hands its permit directly to the first waiter and an
 * acquire never takes a permit ahead of a waiter. Uncontended acquire and
 * release are one atomic read-modify-write each.
 */
typedef struct crew_sem_s {
    uint32_t state;          /* Permits << 1 | has-waiters bit (atomic). */
    uint32_t lock;           /* Spin lock guarding waiters. */
    uint32_t max;            /* Bounded: the initial value; else CREW_SEM_VALUE_MAX. */
    uint32_t reserved;
    struct crew__waitq waiters;
} crew_sem_t;

/** The largest number of permits a semaphore can hold. */
#define CREW_SEM_VALUE_MAX 0x7fffffffu

/** Initialise @p s with @p value permits.
 *  @return 0; -EINVAL if @p s is NULL or @p value > CREW_SEM_VALUE_MAX. Never suspends. */
CREW_EXPORT int crew_sem_init(crew_sem_t *s, unsigned value);

/** Initialise @p s as a bounded semaphore with @p value permits: releasing
 *  while all @p value permits are already in it fails with -EOVERFLOW.
 *  @return as crew_sem_init(). Never suspends. */
CREW_EXPORT int crew_sem_init_bounded(crew_sem_t *s, unsigned value);

/** Destroy @p s. @return 0; -EINVAL if @p s is NULL; -EBUSY if tasks or
 *  threads wait on it. Never suspends. */
CREW_EXPORT int crew_sem_destroy(crew_sem_t *s);

/**
 * Take one permit, waiting until one is released if there is none (or if
 * others already wait: FIFO).
 * @return 0 (the caller holds a permit); -EINVAL if @p s is NULL;
 *         -ECANCELED / -ETIMEDOUT (no permit taken).
 * Suspends when it must wait (a cancellation point then); from a plain
 * thread, blocks it.
 */
CREW_EXPORT CREW_NODISCARD int crew_sem_acquire(crew_sem_t *s);

/** Take one permit if one is free and nobody waits.
 *  @return 0; -EAGAIN if none; -EINVAL if @p s is NULL. Never suspends. */
CREW_EXPORT CREW_NODISCARD int crew_sem_tryacquire(crew_sem_t *s);

/**
 * Give one permit back: to the first waiter if any, else to the count.
 * @return 0; -EINVAL if @p s is NULL; -EOVERFLOW if @p s is bounded and
 *         already holds its initial value, or holds CREW_SEM_VALUE_MAX
 *         (nothing changes).
 * Never suspends; callable from any thread.
 */
CREW_EXPORT int crew_sem_release(crew_sem_t *s);

/** Free permits right now (0 while anyone waits); a snapshot. 0 if @p s is NULL. */
CREW_EXPORT unsigned crew_sem_value(const crew_sem_t *s);

/* ---- Condition variable (asyncio.Condition) ------------------------------ */

/**
 * A condition variable used with a crew_mutex_t (asyncio.Condition;
 * pthread_cond_t's interface). Wake-ups may be stolen: another party can
 * change the state between a notify and the waiter re-acquiring the mutex,
 * so always wait in a loop that re-checks the predicate.
 */
typedef struct crew_cond_s {
    uint32_t lock;           /* Spin lock guarding waiters. */
    uint32_t reserved;
    struct crew__waitq waiters;
} crew_cond_t;

/** Static initialiser, equivalent to crew_cond_init(). */
#define CREW_COND_INIT { 0, 0, { 0, 0 } }

/** Initialise @p c. @return 0; -EINVAL if @p c is NULL. Never suspends. */
CREW_EXPORT int crew_cond_init(crew_cond_t *c);

/** Destroy @p c. @return 0; -EINVAL if @p c is NULL; -EBUSY if anyone waits
 *  on it. Never suspends. */
CREW_EXPORT int crew_cond_destroy(crew_cond_t *c);

/**
 * Atomically unlock @p m (which the caller holds) and wait on @p c until
 * notified; then lock @p m again. A notify that happens after this call
 * unlocked @p m always finds the caller waiting.
 *
 * @p m is locked again before crew_cond_wait returns, whatever it returns:
 * on -ECANCELED and -ETIMEDOUT too (that re-lock runs in a shield region, so
 * it cannot be interrupted; it may still wait for the mutex).
 * @return 0 when notified; -EINVAL if @p c or @p m is NULL; -EPERM if @p m
 *         is not locked; -ECANCELED / -ETIMEDOUT if the calling task was
 *         cancelled or its deadline scope expired, before or while it waited
 *         (if that happened before it waited, @p m was never unlocked).
 * Suspends (a cancellation point); from a plain thread, blocks it.
 */
CREW_EXPORT CREW_NODISCARD int crew_cond_wait(crew_cond_t *c, crew_mutex_t *m);

/** Wake the first waiter of @p c, if any. Holding the mutex is not required.
 *  @return 0; -EINVAL if @p c is NULL. Never suspends; callable from any thread. */
CREW_EXPORT int crew_cond_notify(crew_cond_t *c);

/** Wake every waiter of @p c. @return 0; -EINVAL if @p c is NULL.
 *  Never suspends; callable from any thread. */
CREW_EXPORT int crew_cond_notify_all(crew_cond_t *c);

/* ---- Event (asyncio.Event) ------------------------------------------------ */

/**
 * A flag that tasks and threads can wait for (asyncio.Event). Setting it
 * wakes every waiter; a waiter that was woken returns 0 even if the event is
 * cleared again before it runs.
 */
typedef struct crew_event_s {
    uint32_t set;            /* The flag (atomic). */
    uint32_t lock;           /* Spin lock guarding waiters. */
    struct crew__waitq waiters;
} crew_event_t;

/** Static initialiser of a clear event, equivalent to crew_event_init(). */
#define CREW_EVENT_INIT { 0, 0, { 0, 0 } }

/** Initialise @p e clear. @return 0; -EINVAL if @p e is NULL. Never suspends. */
CREW_EXPORT int crew_event_init(crew_event_t *e);

/** Destroy @p e. @return 0; -EINVAL if @p e is NULL; -EBUSY if anyone waits.
 *  Never suspends. */
CREW_EXPORT int crew_event_destroy(crew_event_t *e);

/**
 * Wait until @p e is set; returns at once if it is set.
 * @return 0; -EINVAL if @p e is NULL; -ECANCELED / -ETIMEDOUT.
 * Suspends when the event is clear (a cancellation point then); from a plain
 * thread, blocks it.
 */
CREW_EXPORT CREW_NODISCARD int crew_event_wait(crew_event_t *e);

/** Set @p e and wake every waiter. @return 0; -EINVAL if @p e is NULL.
 *  Never suspends; callable from any thread. */
CREW_EXPORT int crew_event_set(crew_event_t *e);

/** Clear @p e: later waits wait again. @return 0; -EINVAL if @p e is NULL.
 *  Never suspends. */
CREW_EXPORT int crew_event_clear(crew_event_t *e);

/** Whether @p e is set (a snapshot); false if @p e is NULL. Never suspends. */
CREW_EXPORT bool crew_event_is_set(const crew_event_t *e);

/* ---- Barrier (asyncio.Barrier) -------------------------------------------- */

/**
 * A reusable barrier for a fixed number of parties (asyncio.Barrier,
 * pthread_barrier_t). Each of the parties calls crew_barrier_wait(); the
 * last to arrive releases them all and the barrier starts over.
 */
typedef struct crew_barrier_s {
    uint32_t lock;           /* Spin lock guarding everything below. */
    uint32_t parties;
    uint32_t arrived;        /* Waiting in the current cycle. */
    uint32_t broken;         /* Aborted (crew_barrier_abort). */
    struct crew__waitq waiters;
} crew_barrier_t;

/** What crew_barrier_wait() returns to exactly one party of each cycle (the
 *  last to arrive), like PTHREAD_BARRIER_SERIAL_THREAD. */
#define CREW_BARRIER_SERIAL 1

/** Initialise @p b for @p parties parties.
 *  @return 0; -EINVAL if @p b is NULL or @p parties is 0. Never suspends. */
CREW_EXPORT int crew_barrier_init(crew_barrier_t *b, unsigned parties);

/** Destroy @p b. @return 0; -EINVAL if @p b is NULL; -EBUSY if anyone waits.
 *  Never suspends. */
CREW_EXPORT int crew_barrier_destroy(crew_barrier_t *b);

/**
 * Arrive at @p b and wait until all parties have arrived.
 *
 * A waiting party that is cancelled or times out leaves the cycle (it no
 * longer counts as arrived), as in asyncio.
 * @return CREW_BARRIER_SERIAL for the party whose arrival completed the
 *         cycle, 0 for the others; -EINVAL if @p b is NULL; -EPIPE if the
 *         barrier is broken (crew_barrier_abort), or becomes broken or is
 *         reset while the caller waits; -ECANCELED / -ETIMEDOUT.
 * Suspends unless the caller is the last to arrive (a cancellation point
 * when it waits); from a plain thread, blocks it.
 */
CREW_EXPORT CREW_NODISCARD int crew_barrier_wait(crew_barrier_t *b);

/** Break @p b: every waiter and every later crew_barrier_wait() returns
 *  -EPIPE until crew_barrier_reset(). @return 0; -EINVAL if @p b is NULL.
 *  Never suspends. */
CREW_EXPORT int crew_barrier_abort(crew_barrier_t *b);

/** Return @p b to its initial state: current waiters return -EPIPE (as in
 *  asyncio), and the barrier is usable again. @return 0; -EINVAL if @p b
 *  is NULL. Never suspends. */
CREW_EXPORT int crew_barrier_reset(crew_barrier_t *b);

/* ---- Readers-writer lock --------------------------------------------------- */

/**
 * A readers-writer lock: many readers or one writer. Writer-preferring: once
 * a writer waits, new readers queue behind it instead of joining the readers
 * that hold the lock, so writers cannot starve. Waiters are served in FIFO
 * order: a writer at the head of the queue gets the lock alone, and the
 * readers at the head (up to the next writer) get it together. Uncontended
 * read or write lock and unlock are one atomic read-modify-write each. Not
 * recursive; unlocking by a non-owner is not detected.
 */
typedef struct crew_rwlock_s {
    uint32_t state;          /* Readers << 2 | has-waiters | writer (atomic). */
    uint32_t lock;           /* Spin lock guarding waiters. */
    struct crew__waitq waiters;
} crew_rwlock_t;

/** Static initialiser, equivalent to crew_rwlock_init(). */
#define CREW_RWLOCK_INIT { 0, 0, { 0, 0 } }

/** Initialise @p l unlocked. @return 0; -EINVAL if @p l is NULL. Never suspends. */
CREW_EXPORT int crew_rwlock_init(crew_rwlock_t *l);

/** Destroy @p l. @return 0; -EINVAL if @p l is NULL; -EBUSY if it is held or
 *  has waiters. Never suspends. */
CREW_EXPORT int crew_rwlock_destroy(crew_rwlock_t *l);

/**
 * Lock @p l for reading (shared with other readers).
 * @return 0; -EINVAL if @p l is NULL; -EAGAIN if 2^30 - 1 readers already
 *         hold it; -ECANCELED / -ETIMEDOUT (not locked then).
 * Suspends while a writer holds or waits for it (a cancellation point then);
 * from a plain thread, blocks it.
 */
CREW_EXPORT CREW_NODISCARD int crew_rwlock_rdlock(crew_rwlock_t *l);

/**
 * Lock @p l for writing (exclusive).
 * @return 0; -EINVAL if @p l is NULL; -ECANCELED / -ETIMEDOUT (not locked).
 * Suspends while anyone holds it (a cancellation point then); from a plain
 * thread, blocks it.
 */
CREW_EXPORT CREW_NODISCARD int crew_rwlock_wrlock(crew_rwlock_t *l);

/** Lock @p l for reading if no writer holds it or waits for it.
 *  @return 0; -EBUSY; -EAGAIN (too many readers); -EINVAL. Never suspends. */
CREW_EXPORT CREW_NODISCARD int crew_rwlock_tryrdlock(crew_rwlock_t *l);

/** Lock @p l for writing if nobody holds it or waits for it.
 *  @return 0; -EBUSY; -EINVAL if @p l is NULL. Never suspends. */
CREW_EXPORT CREW_NODISCARD int crew_rwlock_trywrlock(crew_rwlock_t *l);

/**
 * Release a read lock or the write lock on @p l (whichever is held), and
 * hand the lock to the waiters at the head of the queue if it is now free.
 * @return 0; -EINVAL if @p l is NULL; -EPERM if it is not locked.
 * Never suspends; callable from any thread.
 */
CREW_EXPORT int crew_rwlock_unlock(crew_rwlock_t *l);

CREW_END_DECLS

#endif
