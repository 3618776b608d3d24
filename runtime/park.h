/* Park/unpark: the one primitive every suspension in crew is built on.
 *
 * A waiter is a record, usually on the waiting party's stack, that a wait
 * source (a joined task, later a timer, an fd, a lock, a channel, a cancel)
 * keeps until it wakes it. The waiting party is either a crew task (which
 * parks: its worker runs other tasks) or a plain thread (which blocks on a
 * futex). The rules:
 *  1. The waiter arms itself (crew__waiter_prepare) before registering with
 *     any source.
 *  2. Any number of sources may try to wake it; each wake carries a cause.
 *     Exactly one wake wins (the first); crew__waiter_wake() tells the waker
 *     whether it won, so a source whose wake lost can hand what it was
 *     delivering (an item, a permit, a lock) to the next waiter instead.
 *  3. A wake that lands before the task has finished switching away is not
 *     lost: the task either sees it before switching or the scheduler sees
 *     it when it publishes the park, and requeues the task (a channel wait:
 *     the waker waits until the task has left its stack, "Fast exit",
 *     below).
 *  4. After crew__waiter_wait() returns, the waiter unregisters from every
 *     source whose wake did not win (under that source's lock), so no source
 *     touches the record after the waiting function returns.
 *
 * A task's park word packs (seq << 16) | (fast << 15) | (cause << 3) |
 * (nocancel << 2) | state. seq makes every wait distinct, so a late wake
 * aimed at an earlier wait fails its CAS. nocancel is set when the task armed
 * inside a shield region: a cancel's wake then fails its CAS, atomically
 * with the state it compares, so a shielded wait can never return
 * "cancelled". The state goes IDLE -> ARMED (the task) -> PARKED (its
 * scheduler, by CAS, once it is off its stack) -> WOKEN (the one waker whose
 * CAS wins, from ARMED or PARKED); a winner from PARKED schedules the task.
 *
 * Fast exit (fast = 1: channel waits, crew__waiter_prepare_as with
 * deferred). The PARKED CAS is one locked instruction per park; a channel
 * wait skips it, and says in its `off` byte instead where it is (reset to
 * NONE when it arms, before the arm's release, so whoever reads ARMED reads
 * NONE or later):
 *  - At its last look before switching (crew__sched_switch, after the next
 *    task is chosen; crew__sched_park looks once early too) a task that
 *    finds WOKEN stores STAYED and waits for the winner's ACK (the winner
 *    reads `off` after its CAS; without the ACK the task could run on, end
 *    and be freed under that read). Otherwise it switches away, and the
 *    scheduler, on the fiber it switched to, stores AWAY: a plain release
 *    store, its last touch of the task.
 *  - The winner (crew__unpark_claim) then waits for AWAY (it schedules the
 *    task) or STAYED (it stores ACK and leaves the task alone). Between its
 *    arm and that point a channel waiter runs only runtime code: its
 *    channels' registrations (whose wakers wake after unlocking), its
 *    deadline timer's insertion, the choice of the next task (timers fired
 *    with a trylock, the injection queue's and the stack pool's locks). No
 *    waker holds any of these while it waits. One near miss, kept out by
 *    who registers where: a shutdown's sweep cancels under a registry
 *    shard's lock, and the choice of the next task takes such a lock when
 *    a registered task that never started fails to start
 *    (crew__task_fail_start). Only crew_run's main task is registered
 *    before it starts, alone in the shard for tasks from outside; once it
 *    runs (the only time the sweep can wait on it) no task of that shard
 *    is left to fail to start. A new caller of crew__spawn_registered must
 *    keep it so. (Other primitives do not qualify: a condition variable,
 *    for one, takes its own lock again between the arm and the wait, and
 *    its notify wakes under that lock.
 *    They keep the PARKED CAS.)
 *  - A wake from the task's own thread cannot wait for it. Up to the last
 *    look the task is its worker's current task, and such a wake (its own
 *    cancel in crew__waiter_registered, its own timer fired while it
 *    chooses the next task) stores ACK: the last look then sees WOKEN and
 *    the task stays. No wake comes from the thread after the last look.
 *  - So every fast arm ends in a wait or in crew__park_close, which gives it
 *    up (settling a wake that won meanwhile): an arm left behind would make
 *    a later cancel wait for a switch that never comes. The select loop
 *    closes the arms it gives up; the next arm and the task's exit close a
 *    forgotten one as a safety net.
 *
 * Cancellation (task.c): the canceller sets the task's sticky flag, then reads
 * the park word and, if the task waits, tries a CANCEL wake. The task arms
 * (a seq_cst exchange) and then reads the flag. Both sides are seq_cst, so
 * either the task sees the flag and does not wait, or the canceller sees the
 * armed word and wakes it. (A channel wait arms with a plain store and
 * reads the flag after its registration's locked exchange instead:
 * crew__waiter_registered. Reading it after the switch was tried: by then a
 * waker may have run the task to its end and freed it, so nothing of the
 * task may be read there.) */
#ifndef CREW_RUNTIME_PARK_H
#define CREW_RUNTIME_PARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "scheduler.h"

/* Why a waiter woke. Values fit in 12 bits; 0 is never a cause. */
enum crew__cause {
    CREW_WAKE_READY = 1,   /* The awaited thing happened (task done, item ready, ...). */
    CREW_WAKE_CANCEL = 2,  /* The task was cancelled. */
    CREW_WAKE_TIMEOUT = 3, /* A deadline passed. */
    CREW_WAKE_CLOSED = 4,  /* The source was closed or destroyed. */
};

/* The nocancel bit of the park word. */
#define CREW_PARK_NOCANCEL 4u

/* Park word states. */
enum {
    CREW_PARK_IDLE = 0,   /* Not waiting. */
    CREW_PARK_ARMED = 1,  /* Waiting, still running (a fast wait: or switched away). */
    CREW_PARK_PARKED = 2, /* Waiting and switched away: a winning waker must schedule it. */
    CREW_PARK_WOKEN = 3,  /* A wake won; the cause field says why. */
};

/* The fast bit of the park word ("Fast exit", above). */
#define CREW_PARK_FAST ((uint64_t)1 << 15)

/* A task's `off` byte in a fast wait ("Fast exit", above). */
enum {
    CREW_OFF_NONE = 0,   /* Armed: the task still runs on its stack. */
    CREW_OFF_AWAY = 1,   /* It switched away: the winner makes it runnable. */
    CREW_OFF_STAYED = 2, /* It saw the wake before switching: the winner ACKs. */
    CREW_OFF_ACK = 3,    /* The winner is done with the task. */
};

struct crew__waiter {
    crew_task_t *task;        /* The waiting task, or NULL for a plain thread. */
    uint64_t seq;             /* Task: the wait's sequence number. */
    _Atomic uint32_t futex;   /* Thread: 0 while waiting, then the cause. */
};

/* Arm w for the calling task or thread (rule 1). Returns 0, or the status a
 * suspension point of the calling task must return without waiting
 * (crew__suspend_check): it must then register nowhere. */
int crew__waiter_prepare(crew__waiter_t *w);
/* The same for a caller that knows it is self (crew__task_self(), NULL on a
 * plain thread). deferred: the caller registers w under a lock taken with a
 * seq_cst read-modify-write and then calls crew__waiter_registered, which
 * completes the cancellation handshake (top of file): the arm is then a
 * plain store, one locked instruction less per wait, and a pending cancel
 * is reported from there (an expired deadline still from here). The wait
 * is a fast one too ("Fast exit"): the caller must end it with a wait or
 * with crew__park_close, and its path to the switch must take no lock that
 * a waker holds while waking it. (Inline, below.) */
static inline int crew__waiter_prepare_as(crew__waiter_t *w, crew_task_t *self, bool deferred);
/* Put t in the registry before its first wait (registry.h); 0 or -ENOMEM. */
int crew__waiter_register_task(crew_task_t *t);

/* Wait until a wake wins; returns its cause. A task parks (a suspension
 * point), and a deadline scope's timer may end the wait with cause TIMEOUT;
 * a plain thread blocks. (Inline, below.) */
static inline int crew__waiter_wait(crew__waiter_t *w);
/* crew__waiter_wait for a thread, or a task in a deadline scope. */
int crew__waiter_wait_slow(crew__waiter_t *w);

/* Park a task waiter with no deadline timer; returns the wake's cause.
 * (Inline, below.) */
static inline int crew__waiter_park(crew__waiter_t *w);

/* As crew__waiter_wait for a task waiter, but switch straight to next, a
 * runnable task taken off this worker's queues (scheduler.c rule 7). */
int crew__waiter_wait_switch(crew__waiter_t *w, crew_task_t *next);

/* Park a task waiter with a timer that wakes it with cause at deadline
 * (timer.c); returns the wake's cause, or -ENOMEM. */
int crew__timer_wait(crew__waiter_t *w, int64_t deadline, int cause);

/* Whether t has a cancellation it must see at a suspension point: its own or
 * the shutdown's (outside a shield region). seq_cst: pairs with
 * crew_task_cancel (above), and with the shutdown's store of cancel_all
 * (registry.h). The flags first: the usual answer, nothing cancelled, then
 * needs no look at the shield depth (only t itself changes it). */
static inline bool crew__cancel_pending(const crew_task_t *t)
{
    return (atomic_load_explicit(&t->cancelled, memory_order_seq_cst) ||
            atomic_load_explicit(&t->rt->cancel_all, memory_order_seq_cst)) &&
           !t->shield;
}

/* crew__suspend_check past its inline test: cancellation and deadlines. */
int crew__suspend_status(crew_task_t *t);

/* What a suspension point of t must return before waiting: -ECANCELED if it
 * is cancelled (outside a shield region), -ETIMEDOUT if a deadline scope that
 * applies at its shield depth has expired, else 0. Marks the expired scope.
 * Inline for the common case (every channel operation makes this check):
 * no deadline scope and nothing cancelled, which crew__suspend_needs_status
 * tells apart for callers that handle the rest out of line. */
static inline bool crew__suspend_needs_status(const crew_task_t *t)
{
    return t->scope || crew__cancel_pending(t);
}

static inline int crew__suspend_check(crew_task_t *t)
{
    if (crew__likely(!crew__suspend_needs_status(t)))
        return 0;
    return crew__suspend_status(t);
}

/* The earliest deadline of t's scopes that apply at its current shield
 * depth (time.h), or INT64_MAX. */
int64_t crew__deadline_of(const crew_task_t *t);

/* The status a suspension point returns for a wake cause: 0 for READY and
 * CLOSED (the caller interprets those), -ECANCELED, -ETIMEDOUT (marking the
 * expired scope), -ENOMEM for a negative cause. */
int crew__wake_status(crew_task_t *t, int cause);

/* Try to wake w with cause; true if this wake won (rule 2). Callable from any
 * thread, including while holding a spin lock. (Inline, below.) */
static inline bool crew__waiter_wake(crew__waiter_t *w, int cause);
/* crew__waiter_wake for a plain thread's waiter. */
bool crew__waiter_wake_thread(crew__waiter_t *w, int cause);
/* crew__waiter_wake for a waker that, when its wake loses, owes the waiter
 * a mark that it is done with it (a channel claimer's `released`,
 * sync/chan.h): it then stores 1 to *mark (release) as its last access.
 * One call with nothing to do after it, so its callers keep nothing live
 * across it, and a won task wake ends in crew__sched_wake as a tail call. */
void crew__waiter_wake_or_mark(crew__waiter_t *w, int cause, _Atomic uint32_t *mark);

/* Task side, used by crew__waiter_*: (crew__park_arm inline, below) */
bool crew__unpark(crew_task_t *t, uint64_t seq, int cause);
/* The calling task found its fast wait won before it switched away: tell
 * the winner it stayed, and wait for the winner's ACK ("Fast exit"). */
void crew__park_stayed(crew_task_t *self);
/* The calling task gives up a fast arm without waiting (its operation
 * completed after all, or it failed): every fast arm ends in a wait or
 * here, or a waker that reads the park word (a cancel) would wait for a
 * switch that never comes. A wake that won meanwhile is settled. */
void crew__park_close(crew_task_t *self);
/* Whether t (the calling task, whose park word is word) left a fast arm
 * behind: armed, or won with its winner still waiting ("Fast exit"). A
 * finished fast wait leaves AWAY or ACK in `off`; a closed one is IDLE. */
static inline bool crew__park_forgotten(crew_task_t *t, uint64_t word)
{
    /* Relaxed: `off` was last written by this task (its arm) or for it (a
     * finished wait's AWAY or ACK, which its wake made visible). */
    return crew__unlikely(word & CREW_PARK_FAST) && (word & 3) != CREW_PARK_IDLE &&
           atomic_load_explicit(&t->off, memory_order_relaxed) == CREW_OFF_NONE;
}

/* crew__park_close for a fast waiter of the calling task or thread. */
static inline void crew__waiter_disarm(crew__waiter_t *w)
{
    if (w->task)
        crew__park_close(w->task);
}

/* The wake of crew__unpark without the scheduling, for wakers that batch:
 * LOST (another wake won, or the wait is over), WON (the task had not left
 * its stack yet: it sees the wake itself, or its scheduler requeues it),
 * SCHEDULE (the caller now owns making the task runnable: crew__sched_wake,
 * or a crew__wake_batch_t). A win of a fast wait may wait a few hundred
 * instructions for the task to reach its switch ("Fast exit"). */
enum { CREW_UNPARK_LOST = 0, CREW_UNPARK_WON = 1, CREW_UNPARK_SCHEDULE = 2 };
int crew__unpark_claim(crew_task_t *t, uint64_t seq, int cause);

/* Tasks a thread outside the runtime (the reactor) woke, made runnable
 * together after its locks are dropped: one inbox push per run of tasks for
 * the same worker and at most one wake per parked worker, instead of a
 * cross-thread wake per task (crew__sched_wake_batch). Zero-initialise. */
typedef struct crew__wake_batch {
    crew_task_t *first, *last;
    uint64_t n; /* Tasks in the batch (sync/waitq.c flushes in chunks). */
} crew__wake_batch_t;

/* Try to wake the task waiter w with cause (rule 2); true if this wake won.
 * A won task that had already parked joins b instead of being scheduled. */
bool crew__wake_batch_claim(crew__wake_batch_t *b, crew__waiter_t *w, int cause);
/* Make b's tasks runnable in rt and empty b; home: on the workers that last
 * ran them, even when the caller is a worker (crew__sched_wake_batch). */
void crew__wake_batch_flush(crew__wake_batch_t *b, crew_rt_t *rt, bool home);

static inline uint64_t crew__park_word(uint64_t seq, int cause, unsigned nocancel, unsigned state)
{
    return (seq << 16) | ((uint64_t)cause << 3) | nocancel | state;
}

static inline int crew__park_cause(uint64_t word)
{
    return (int)((word >> 3) & 0xFFF);
}

/* The cause of the wake that ended t's wait, read by t once it runs again. */
static inline int crew__task_wake_cause(crew_task_t *t)
{
    /* Acquire: pairs with the winning wake's release. The task may run on
     * another worker now; its park word is its own. */
    return crew__park_cause(atomic_load_explicit(&t->park, memory_order_acquire));
}

static inline int crew__waiter_park(crew__waiter_t *w)
{
    crew__sched_park(w->task);
    return crew__task_wake_cause(w->task);
}

/* Inline for a task outside any deadline scope: no frame of its own on the
 * parked task's stack, which every switch back to it reads. */
static inline int crew__waiter_wait(crew__waiter_t *w)
{
    if (w->task && !w->task->scope)
        return crew__waiter_park(w);
    return crew__waiter_wait_slow(w);
}

/* Arm t's park word for a new wait; returns the wait's sequence number.
 * deferred: see crew__waiter_prepare_as. */
static inline uint64_t crew__park_arm(crew_task_t *t, bool deferred)
{
    uint64_t old = atomic_load_explicit(&t->park, memory_order_relaxed);
    /* A fast arm that was given up without crew__park_close: close it now,
     * so no waker of it can be left waiting on this one's `off`. */
    if (crew__park_forgotten(t, old)) {
        crew__park_close(t);
        old = atomic_load_explicit(&t->park, memory_order_relaxed);
    }
    uint64_t seq = (old >> 16) + 1;
    unsigned nocancel = t->shield ? CREW_PARK_NOCANCEL : 0;
    uint64_t word = crew__park_word(seq, 0, nocancel, CREW_PARK_ARMED);
    /* The waiter record that carries seq reaches other wakers through the
     * source's own synchronisation (its lock or a release/acquire pair). */
    if (deferred) {
        /* A channel wait: fast exit too (top of file). Relaxed: published
         * by the arm's release below. */
        atomic_store_explicit(&t->off, CREW_OFF_NONE, memory_order_relaxed);
        /* Release: a canceller that reads ARMED reads the reset `off`. The
         * registration's RMW, then crew__fence_after_rmw, order the store
         * before the cancel flag's read (crew__waiter_registered). */
        atomic_store_explicit(&t->park, word | CREW_PARK_FAST, memory_order_release);
    } else
        /* seq_cst: the cancellation handshake (top of file) needs this
         * store ordered before the caller's read of the cancel flag. */
        atomic_exchange_explicit(&t->park, word, memory_order_seq_cst);
    return seq;
}

static inline __attribute__((always_inline)) int crew__waiter_prepare_as(crew__waiter_t *w,
                                                                         crew_task_t *self,
                                                                         bool deferred)
{
    w->task = self;
    if (!self) {
        w->seq = 0;
        atomic_store_explicit(&w->futex, 0, memory_order_relaxed);
        return 0;
    }
    /* Before the arm (registry.h: the shutdown's sweep must find every task
     * that could miss its cancel_all flag). */
    if (crew__unlikely(self->reg_shard == CREW_REG_NONE)) {
        int rc = crew__waiter_register_task(self);
        if (rc)
            return rc;
    }
    w->seq = crew__park_arm(self, deferred);
    if (!deferred)
        return crew__suspend_check(self);
    /* A deferred wait sees a cancellation after it registers
     * (crew__waiter_registered), which is where the handshake needs the
     * check; here only the deadline scopes, which nothing else looks at
     * before the wait. */
    if (crew__likely(!self->scope))
        return 0;
    int st = crew__suspend_status(self);
    if (st)
        crew__park_close(self);
    return st;
}

/* After a deferred arm (crew__waiter_prepare_as) and the registration's
 * seq_cst RMW: the task's half of the cancellation handshake. The arm store
 * precedes the RMW, which the fence makes a full barrier before the flag's
 * read: either a canceller sees the armed word and wakes us, or we see its
 * flag here and wake ourselves with CANCEL (on our own stack, so the wait
 * then ends at once, as if the canceller had won; a claim that came first
 * keeps its win). */
static inline void crew__waiter_registered(crew__waiter_t *w)
{
    crew_task_t *t = w->task;
    crew__fence_after_rmw();
    if (t && crew__unlikely(crew__cancel_pending(t)))
        crew__unpark(t, w->seq, CREW_WAKE_CANCEL);
}

static inline bool crew__waiter_wake(crew__waiter_t *w, int cause)
{
    if (w->task)
        return crew__unpark(w->task, w->seq, cause);
    return crew__waiter_wake_thread(w, cause);
}

/* A tiny spin lock for wait sources whose critical sections are a few
 * instructions (no syscall inside, except a futex wake for thread waiters). */
static inline void crew__spin_lock(_Atomic uint32_t *l)
{
    for (;;) {
        /* Acquire: pairs with the release in crew__spin_unlock. */
        if (!atomic_exchange_explicit(l, 1, memory_order_acquire))
            return;
        while (atomic_load_explicit(l, memory_order_relaxed))
            crew__cpu_relax();
    }
}

static inline void crew__spin_unlock(_Atomic uint32_t *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

#endif
