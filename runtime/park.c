/* Park/unpark and waiters (see park.h). */
#include "park.h"

#include "futex.h"
#include "probes.h"
#include "reactor.h"
#include "scheduler.h"

/* A won fast wake whose task had not yet left its stack ("Fast exit",
 * park.h): wait for it to say whether it switched away or stayed. */
static __attribute__((noinline)) int settle_slow(crew_task_t *t)
{
    crew__worker_t *me = crew__worker_self();
    if (me && me->current == t) {
        /* The task wakes itself, before its last look: it will see WOKEN,
         * and must not wait for an ACK from itself. */
        atomic_store_explicit(&t->off, CREW_OFF_ACK, memory_order_relaxed);
        return CREW_UNPARK_WON;
    }
    unsigned spins = 0;
    for (;;) {
        /* Acquire: pairs with the scheduler's release of AWAY (the task is
         * off its stack) or the task's release of STAYED. */
        unsigned off = atomic_load_explicit(&t->off, memory_order_acquire);
        if (off == CREW_OFF_AWAY)
            return CREW_UNPARK_SCHEDULE;
        if (off == CREW_OFF_STAYED) {
            /* Release: our last touch of t; the task goes on only after it. */
            atomic_store_explicit(&t->off, CREW_OFF_ACK, memory_order_release);
            return CREW_UNPARK_WON;
        }
        crew__pause_round(&spins);
    }
}

/* Inlined into crew__unpark, the hot wake of every primitive. */
static inline __attribute__((always_inline)) int unpark_claim(crew_task_t *t, uint64_t seq,
                                                              int cause)
{
    /* Read before the CAS, for the probe: once a wake wins, the task may
     * go on and be freed (unless it left its stack, below). */
    uint64_t id = t->id;
    uint64_t word = atomic_load_explicit(&t->park, memory_order_relaxed);
    unsigned st;
    for (;;) {
        st = (unsigned)(word & 3);
        if ((word >> 16) != seq || (st != CREW_PARK_ARMED && st != CREW_PARK_PARKED))
            return CREW_UNPARK_LOST;
        if (cause == CREW_WAKE_CANCEL && (word & CREW_PARK_NOCANCEL))
            return CREW_UNPARK_LOST; /* Armed inside a shield region. */
        /* Release: what the waker did before the wake (published a result,
         * handed over an item) is visible to the task when it sees WOKEN.
         * Acquire (on success from PARKED): pairs with the scheduler's
         * release when it published PARKED, so the task is fully off its
         * stack; (from a fast ARMED) with the arm's release, so the `off`
         * read below sees this wait's reset or later. */
        uint64_t keep = word & (CREW_PARK_NOCANCEL | CREW_PARK_FAST);
        if (atomic_compare_exchange_weak_explicit(&t->park, &word,
                                                  crew__park_word(seq, cause, 0, CREW_PARK_WOKEN) | keep,
                                                  memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    CREW_PROBE2(task_wake, id, cause);
    if (!(word & CREW_PARK_FAST))
        return st == CREW_PARK_PARKED ? CREW_UNPARK_SCHEDULE : CREW_UNPARK_WON;
    /* A fast wait ("Fast exit", park.h); the common case: the task parked
     * long ago. Acquire: as in settle_slow. */
    if (crew__likely(atomic_load_explicit(&t->off, memory_order_acquire) == CREW_OFF_AWAY))
        return CREW_UNPARK_SCHEDULE;
    return settle_slow(t);
}

void crew__park_close(crew_task_t *self)
{
    uint64_t word = atomic_load_explicit(&self->park, memory_order_relaxed);
    while ((word & 3) == CREW_PARK_ARMED)
        /* Relaxed: the word only says "not waiting" to wakers, which then
         * touch nothing. A wake that won instead is settled below. */
        if (atomic_compare_exchange_weak_explicit(&self->park, &word,
                                                  crew__park_word(word >> 16, 0, 0, CREW_PARK_IDLE),
                                                  memory_order_relaxed, memory_order_relaxed))
            return;
    /* Won (WOKEN, fast, `off` still NONE): its winner waits for us. A
     * finished wait leaves AWAY or ACK there. */
    if (crew__park_forgotten(self, word))
        crew__park_stayed(self);
}

void crew__park_stayed(crew_task_t *self)
{
    /* ACK already: the task woke itself (settle_slow), nobody reads `off`. */
    if (atomic_load_explicit(&self->off, memory_order_relaxed) == CREW_OFF_ACK)
        return;
    atomic_store_explicit(&self->off, CREW_OFF_STAYED, memory_order_release);
    unsigned spins = 0;
    /* Acquire: pairs with the winner's release of ACK, its last touch of us. */
    while (atomic_load_explicit(&self->off, memory_order_acquire) != CREW_OFF_ACK)
        crew__pause_round(&spins);
}

int crew__unpark_claim(crew_task_t *t, uint64_t seq, int cause)
{
    return unpark_claim(t, seq, cause);
}

bool crew__unpark(crew_task_t *t, uint64_t seq, int cause)
{
    int r = unpark_claim(t, seq, cause);
    if (r == CREW_UNPARK_SCHEDULE)
        crew__sched_wake(t);
    return r != CREW_UNPARK_LOST;
}

void crew__waiter_wake_or_mark(crew__waiter_t *w, int cause, _Atomic uint32_t *mark)
{
    crew_task_t *t = w->task;
    if (!t) {
        if (!crew__waiter_wake_thread(w, cause))
            atomic_store_explicit(mark, 1, memory_order_release);
        return;
    }
    int r = unpark_claim(t, w->seq, cause);
    if (r == CREW_UNPARK_SCHEDULE) {
        crew__sched_wake(t);
        return;
    }
    if (r == CREW_UNPARK_LOST)
        /* Release: everything the waker did to the waiter's buffers and
         * source precedes the waiter's return, which waits for the mark. */
        atomic_store_explicit(mark, 1, memory_order_release);
}

bool crew__wake_batch_claim(crew__wake_batch_t *b, crew__waiter_t *w, int cause)
{
    CREW_ASSERT(w->task);
    crew_task_t *t = w->task;
    int r = unpark_claim(t, w->seq, cause);
    if (r == CREW_UNPARK_SCHEDULE) {
        /* Here rather than in the flush, which would walk the batch once
         * more: t's lines are hot now, and nobody runs t before the flush. */
        atomic_store_explicit(&t->obs_state, CREW_TASK_RUNNABLE, memory_order_relaxed);
        t->qnext = NULL;
        if (b->last)
            b->last->qnext = t;
        else
            b->first = t;
        b->last = t;
        b->n++;
    }
    return r != CREW_UNPARK_LOST;
}

void crew__wake_batch_flush(crew__wake_batch_t *b, crew_rt_t *rt, bool home)
{
    if (b->first)
        crew__sched_wake_batch(rt, b->first, home);
    b->first = b->last = NULL;
    b->n = 0;
}

int crew__waiter_prepare(crew__waiter_t *w)
{
    return crew__waiter_prepare_as(w, crew__task_self(), false);
}

int crew__waiter_register_task(crew_task_t *t)
{
    return crew__registry_add(t->rt, t, crew__worker_self()->index);
}

/* Scopes that apply at t's current shield depth: those opened inside the
 * innermost shield region (or all, outside any region). Inner scopes come
 * first in the chain and were opened at the same or a deeper shield depth,
 * so the walk stops at the first scope opened outside. */
#define FOR_APPLICABLE_SCOPES(s, t) \
    for (crew_timeout_t *s = (t)->scope; s && s->shield >= (t)->shield; s = s->outer)

int64_t crew__deadline_of(const crew_task_t *t)
{
    int64_t d = INT64_MAX;
    FOR_APPLICABLE_SCOPES(s, t)
        if (s->deadline < d)
            d = s->deadline;
    return d;
}

/* Mark the scope whose deadline expired: the outermost applicable one with
 * the earliest deadline (an inner scope never extends an outer one, so on a
 * tie the outer one is the cause). */
static void mark_expired(crew_task_t *t)
{
    int64_t d = crew__deadline_of(t);
    crew_timeout_t *owner = NULL;
    FOR_APPLICABLE_SCOPES(s, t)
        if (s->deadline == d)
            owner = s;
    if (owner)
        owner->expired = 1;
}

int crew__suspend_status(crew_task_t *t)
{
    if (crew__cancel_pending(t))
        return -ECANCELED;
    if (t->scope) {
        int64_t d = crew__deadline_of(t);
        if (d != INT64_MAX && crew_now() >= d) {
            mark_expired(t);
            return -ETIMEDOUT;
        }
    }
    return 0;
}

int crew__wake_status(crew_task_t *t, int cause)
{
    if (cause < 0)
        return cause;
    if (cause == CREW_WAKE_CANCEL)
        return -ECANCELED;
    if (cause == CREW_WAKE_TIMEOUT) {
        mark_expired(t);
        return -ETIMEDOUT;
    }
    return 0;
}

int crew__waiter_wait_slow(crew__waiter_t *w)
{
    if (w->task) {
        int64_t deadline = crew__deadline_of(w->task);
        int cause = deadline == INT64_MAX ? -ENOMEM
                                          : crew__timer_wait(w, deadline, CREW_WAKE_TIMEOUT);
        /* No deadline, or no memory for the timer heap to grow: then the
         * wait goes on without the deadline rather than failing a wait the
         * caller cannot undo. */
        return cause == -ENOMEM ? crew__waiter_park(w) : cause;
    }
    uint32_t v;
    /* Acquire: pairs with the waker's release CAS. */
    while ((v = atomic_load_explicit(&w->futex, memory_order_acquire)) == 0)
        crew__futex_wait(&w->futex, 0);
    return (int)v;
}

int crew__waiter_wait_switch(crew__waiter_t *w, crew_task_t *next)
{
    crew__sched_park_to(w->task, next);
    return crew__task_wake_cause(w->task);
}

bool crew__waiter_wake_thread(crew__waiter_t *w, int cause)
{
    uint32_t zero = 0;
    /* Release: pairs with the waiting thread's acquire load. */
    if (!atomic_compare_exchange_strong_explicit(&w->futex, &zero, (uint32_t)cause,
                                                 memory_order_release, memory_order_relaxed))
        return false;
    /* The record may be gone once the thread saw the cause; the futex call
     * only uses its address as a key, and a stray wake is harmless. */
    crew__futex_wake(&w->futex, 1);
    return true;
}
