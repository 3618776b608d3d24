/* The scheduler: how a worker picks the next task and switches to it.
 *
 * Protocol (each rule's reason in brackets; docs/architecture.md has the
 * numbers behind the choices):
 *  1. Every worker owns a 256-slot ring (runq.c) and a next-task slot. A task
 *     that is spawned or woken on a worker goes into that worker's next slot;
 *     the task it displaces goes to the back of the ring. [The newest task's
 *     data is hot in this core's cache, and fork-join code (spawn, then join)
 *     resumes the right task first. Go's runnext and Tokio's LIFO slot.]
 *  2. A yielding task goes to the back of the ring, never the next slot.
 *     [Otherwise a task spinning on yield would run again at once and starve
 *     the ring.]
 *  3. Switches are direct, task to task. A task that parks, yields or exits
 *     picks the next task itself and switches straight to it; only when the
 *     worker has nothing local does it switch to the worker's scheduler fiber
 *     (the thread's own stack), which searches, steals and sleeps. The task
 *     that left is finished by whoever resumes (crew__sched_finish): requeued,
 *     its park published, or its stack recycled. [A switch costs ~11 ns, so a
 *     round trip through a scheduler fiber would double the cost of a yield;
 *     and nothing may touch a task from another thread while it still runs on
 *     its stack, which is why the finish step runs after the switch.]
 *  4. Order of the local choice: every 61st decision takes one task from the
 *     injection queue first; then the next slot, unless it has been taken 64
 *     times in a row while the ring had work; then the ring; then the next
 *     slot; then a batch from the injection queue. [Without the 61-tick check,
 *     a worker kept busy by its own queue would never serve work spawned from
 *     outside; without the streak limit, two tasks waking each other through
 *     the next slot would starve the ring. 61 is Go's and Tokio's interval: a
 *     prime, so it does not beat against loops of round lengths. 64: a
 *     conversation keeps its stacks and channels in the cache for 32 round
 *     trips per visit, each visit's cold misses spread over them (3 -> 16:
 *     ping_pong +9 %; 16 -> 64: +4-5 % best of 15-21 runs at 2 workers);
 *     Tokio 1.24 likewise runs its LIFO chain while a coop budget of 128
 *     lasts. The ring waits at most 64 switches, a few microseconds (Go
 *     lets a runnext task inherit a whole 10 ms slice).]
 *  5. An idle worker steals half of a random victim's ring (steal-half
 *     amortises the cross-core traffic over many tasks), then tries the
 *     victims' next slots, but takes a task from a next slot only when it saw
 *     the same task there on its previous round. [The owner is about to run
 *     it, and stealing it would only move it to a cold cache; but a task left
 *     in a next slot behind a long-running task must not be stranded there.]
 *  6. Searching, spinning and sleeping are idle.c's: at most half of the
 *     awake workers search at once, a searcher spins ~50 us before it sleeps,
 *     and a sleeping worker is woken only when no worker is searching.
 *  7. Direct switches, depth first. A task that joins a child still queued on
 *     its own worker (in the next slot, or the most recent task in the ring)
 *     takes it out and switches straight to it; a task that exits while a
 *     resumed task (typically its joiner, just woken) waits in the next slot
 *     switches straight to that. [Fork-join code then runs depth first, like
 *     a call stack: the joined child runs now instead of the oldest task in
 *     the ring, which would start another large subtree while the joiner
 *     keeps its stack. Without this, fib(30) peaked at ~33,000 live stacks.]
 *     Direct switches count as scheduling decisions for rule 4's 61-tick
 *     check, so a spawn/join loop cannot keep outside work waiting.
 *  8. A task woken from outside the workers (the reactor: fd readiness,
 *     timers, signals; a pool thread finishing its call) goes to the inbox
 *     of the worker that last ran it, not to the shared injection queue.
 *     The owner moves its inbox into its ring whenever it consults the ring
 *     (what does not fit goes to the injection queue's resuming lane); a
 *     searching worker takes a victim's whole inbox, but only once it saw
 *     the same inbox on its previous round (as for next slots, rule 5). A
 *     parked owner is woken for its inbox; an awake one is not disturbed and
 *     nobody else is woken. [The task's stack and data are in that core's
 *     cache, and the two ends of a local conversation (an echo client and
 *     its server task) stay on one worker instead of being dealt out by
 *     whichever worker reaches the shared queue first; waking a parked
 *     worker costs ~13 us of CPU, so a busy owner's inbox does not cause
 *     one.]
 *  9. Timers are fired by the workers while any is awake: every 61st
 *     decision (rule 4's tick, direct switches included) a worker looks at
 *     its own timer heap, the runtime's and one other worker's in turn, and
 *     every round of an idle search at all of them, and fires what is due
 *     to the workers that last ran the tasks (timer.c rule 1). The reactor
 *     only backstops them. [The reactor is a third thread competing for
 *     the workers' cores; Tokio likewise fires its timer wheel on the
 *     workers.] */
#include "scheduler.h"

#include "park.h"
#include "probes.h"

/* Rule 4's constants. */
#define CREW_GLOBAL_INTERVAL 61
#define CREW_NEXT_STREAK_MAX 64

/* initial-exec: one %fs-relative load instead of a __tls_get_addr call per
 * access (libcrew is linked, not dlopen'ed, in every supported use; a
 * dlopen'ed libcrew still works while glibc's static TLS surplus has room for
 * one pointer, which it keeps for exactly this). */
/* externally_visible: x86_64's crew__worker_self names it inside an asm
 * string, which link-time optimisation cannot see; it must keep its name. */
__thread crew__worker_t *crew__tls_worker
    __attribute__((tls_model("initial-exec"), used, externally_visible));

#if !defined(__x86_64__)
__attribute__((noinline)) crew__worker_t *crew__worker_self(void)
{
    crew__worker_t *w = crew__tls_worker;
    /* Hide where w came from, so the optimiser cannot merge two calls across
     * a context switch (the thread may differ after it). */
    __asm__ __volatile__("" : "+r"(w));
    return w;
}
#endif

void crew__worker_set_self(crew__worker_t *w)
{
    crew__tls_worker = w;
}

/* Append t to w's ring; a full ring sends half of itself to the injection queue. */
static void push_local(crew__worker_t *w, crew_task_t *t)
{
    crew_task_t *first, *last;
    unsigned n = crew__runq_push(&w->runq, t, &first, &last);
    if (n) {
        crew__inject_push(&w->rt->inject, first, last, n, CREW_INJECT_FORCE);
        crew__counter_add(&w->overflows, 1);
    }
}

/* place_local when the next slot is taken: out of line, so the common
 * placement (an empty slot, after the task that filled it ran) is a leaf. */
static __attribute__((noinline)) void displace_next(crew__worker_t *w, crew_task_t *t)
{
    crew_task_t *old = atomic_exchange_explicit(&w->next, t, memory_order_acq_rel);
    if (old) {
        push_local(w, old);
        /* Stealable work appeared: wake a sleeper if nobody searches. This
         * worker is awake and will run it anyway, so the cheap, unfenced
         * check is enough (see crew__idle_notify). */
        crew__idle_notify(w->rt, false);
    }
}

/* Rule 1: t goes into the next slot; the displaced task to the ring.
 * resumed: t ran before (a wake), as opposed to a new task (a spawn). */
static inline void place_local(crew__worker_t *w, crew_task_t *t, bool resumed)
{
    w->next_resumed = resumed;
    if (crew__likely(!atomic_load_explicit(&w->next, memory_order_relaxed))) {
        /* Thieves only ever CAS the slot from a task to NULL, and only the
         * owner fills it: an empty slot stays empty until this store, so no
         * locked exchange is needed. Release: pairs with the acquire of
         * whoever takes the task. */
        atomic_store_explicit(&w->next, t, memory_order_release);
        return;
    }
    displace_next(w, t);
}

/* Push the list first..last (n tasks) from a thread that is not one of
 * rt's workers, and notify. The caller keeps rt alive meanwhile. */
static int push_outside(crew_rt_t *rt, crew_task_t *first, crew_task_t *last, uint64_t n,
                        unsigned flags)
{
    int rc = crew__inject_push(&rt->inject, first, last, n, flags);
    if (rc == 0)
        crew__idle_notify(rt, true);
    return rc;
}

int crew__rt_enter(crew_rt_t *rt)
{
    /* seq_cst on both sides of a store-load pair: rt_shutdown stores
     * shutdown, then loads outside_pushers; we add, then load shutdown.
     * Either it sees us (and waits for leave) or we see the flag. */
    atomic_fetch_add_explicit(&rt->outside_pushers, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&rt->shutdown, memory_order_seq_cst)) {
        crew__rt_leave(rt);
        return -ESHUTDOWN;
    }
    return 0;
}

void crew__rt_leave(crew_rt_t *rt)
{
    /* Release: our last touch of rt precedes the destroyer's load. */
    atomic_fetch_sub_explicit(&rt->outside_pushers, 1, memory_order_release);
}

/* Rule 8: push the tasks first..last (a list linked by qnext, newest first:
 * the inbox is a stack that its taker reverses) onto v's inbox. */
static void inbox_push(crew__worker_t *v, crew_task_t *first, crew_task_t *last)
{
    crew_task_t *old = atomic_load_explicit(&v->inbox, memory_order_relaxed);
    do
        last->qnext = old;
    /* seq_cst: the push half of the pair with a parking owner (idle.c rule
     * 6), and release for the tasks' state (the taker's exchange acquires). */
    while (!atomic_compare_exchange_weak_explicit(&v->inbox, &old, first, memory_order_seq_cst,
                                                  memory_order_relaxed));
}

/* Take w's whole inbox, oldest first; NULL if it is empty. */
static crew_task_t *inbox_take(crew__worker_t *w)
{
    if (!atomic_load_explicit(&w->inbox, memory_order_relaxed))
        return NULL;
    /* Acquire: pairs with the pushers' CAS. */
    crew_task_t *t = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire), *fifo = NULL;
    while (t) {
        crew_task_t *next = t->qnext;
        t->qnext = fifo;
        fifo = t;
        t = next;
    }
    return fifo;
}

/* Move the list (oldest first) into w's ring, as far as it has room; the rest
 * goes to the injection queue's resuming lane, ahead of unstarted tasks
 * (rule 8: pushing it through push_local would let a full ring spill it
 * behind them). */
static void queue_woken(crew__worker_t *w, crew_task_t *list)
{
    unsigned room = CREW_RUNQ_CAP - crew__runq_len(&w->runq);
    while (list && room--) {
        crew_task_t *next = list->qnext;
        push_local(w, list);
        list = next;
    }
    if (list) {
        crew_task_t *last = list;
        uint64_t n = 1;
        for (; last->qnext; last = last->qnext)
            n++;
        crew__inject_push(&w->rt->inject, list, last, n, CREW_INJECT_FORCE | CREW_INJECT_RESUME);
    }
}

void crew__sched_wake(crew_task_t *t)
{
    atomic_store_explicit(&t->obs_state, CREW_TASK_RUNNABLE, memory_order_relaxed);
    crew__worker_t *w = crew__worker_self();
    /* The common case first (a task woken by a task of its runtime), as
     * crew__sched_wake_batch places a batch of one. */
    if (crew__likely(w && w->rt == t->rt)) {
        place_local(w, t, true);
        return;
    }
    t->qnext = NULL; /* A batch of one. */
    crew__sched_wake_batch(t->rt, t, false);
}

/* Rule 8: each task of the list onto the inbox of the worker that last ran
 * it, one push per run of tasks bound for the same worker. The caller keeps
 * rt alive. */
static void wake_home(crew_rt_t *rt, crew_task_t *t)
{
    while (t) {
        /* One run of tasks bound for the same worker, reversed into the
         * inbox's newest-first order as we go. */
        unsigned wi = atomic_load_explicit(&t->last_worker, memory_order_relaxed);
        crew_task_t *run = NULL, *run_last = t;
        while (t && atomic_load_explicit(&t->last_worker, memory_order_relaxed) == wi) {
            crew_task_t *next = t->qnext;
            t->qnext = run;
            run = t;
            t = next;
        }
        crew__worker_t *v = rt->workers[wi];
        /* After the push the run's tasks may already be running: t, the
         * next run, was read before. */
        inbox_push(v, run, run_last);
        /* seq_cst: the load half of the pair with a parking owner. */
        if (atomic_load_explicit(&v->parked, memory_order_seq_cst))
            crew__idle_wake_worker(rt, v);
    }
}

void crew__sched_wake_batch(crew_rt_t *rt, crew_task_t *first, bool home)
{
    crew__worker_t *w = crew__worker_self();
    if (w && w->rt == rt) {
        /* A worker of rt: rt outlives the call. */
        if (home) {
            wake_home(rt, first);
            return;
        }
        /* A wake-all by a task: a single wake goes to the next slot, as
         * crew__sched_wake; a batch goes to the back of this worker's ring,
         * where other workers can steal it, and what does not fit to the
         * injection queue's resuming lane, with one notify for all of it.
         * Not the next slot: rule 1's "woken task runs next" is for one
         * wake; a batch keeps its FIFO order behind the work already queued
         * here. */
        if (!first->qnext) {
            place_local(w, first, true);
            return;
        }
        queue_woken(w, first);
        /* This worker is awake and runs the work anyway: the cheap check. */
        crew__idle_notify(rt, false);
        return;
    }
    /* Counted in outside_pushers, which the destroyer waits out: once
     * pushed, a task may finish and let a destroyer free rt while we still
     * look at its workers. seq_cst: ordered before the push, so a destroyer
     * that has seen the task finish (which needs the push) also sees us
     * here (runtime.c). */
    atomic_fetch_add_explicit(&rt->outside_pushers, 1, memory_order_seq_cst);
    wake_home(rt, first);
    crew__rt_leave(rt);
}

int crew__sched_spawn(crew__worker_t *w, crew_rt_t *rt, crew_task_t *t)
{
    if (w) {
        place_local(w, t, false);
        return 0;
    }
    /* Not counted again: every outside spawner is inside crew__rt_enter
     * (crew_rt_spawn) or is the reactor (callback timers), which the
     * destroyer joins before it frees rt. */
    return push_outside(rt, t, t, 1, 0);
}

/* Take up to a fair share of the injection queue: one task to run, the rest
 * into the ring. */
static crew_task_t *take_global(crew__worker_t *w, uint64_t max)
{
    crew__inject_t *q = &w->rt->inject;
    uint64_t len = crew__inject_len(q);
    if (!len)
        return NULL;
    uint64_t want = len / w->rt->nworkers + 1;
    if (want > max)
        want = max;
    uint64_t n;
    crew_task_t *list = crew__inject_pop(q, want, &n);
    if (!list)
        return NULL;
    crew__counter_add(&w->global_pops, n);
    crew_task_t *t = list;
    list = list->qnext;
    while (list) {
        /* The ring had room for want - 1 when want was computed, unless we
         * came here with a non-empty ring (the 61-tick path asks for 1). */
        if (!crew__runq_push_list(&w->runq, &list, (unsigned)n)) {
            crew_task_t *last = list;
            uint64_t k = 1;
            while (last->qnext) {
                last = last->qnext;
                k++;
            }
            crew__inject_push(q, list, last, k, CREW_INJECT_FORCE);
            break;
        }
    }
    return t;
}

/* Rule 4's first look at the next slot: its task, unless the streak is
 * used up while the ring has work; NULL if it does not qualify or a thief
 * emptied it. */
static inline crew_task_t *take_next_in_streak(crew__worker_t *w)
{
    if (!atomic_load_explicit(&w->next, memory_order_relaxed) ||
        (w->next_streak >= CREW_NEXT_STREAK_MAX && crew__runq_len(&w->runq) != 0))
        return NULL;
    /* Acquire: pairs with the release of the store or exchange that placed
     * the task. */
    crew_task_t *t = atomic_exchange_explicit(&w->next, NULL, memory_order_acquire);
    if (t)
        w->next_streak++;
    return t;
}

/* crew__sched_next_local past its first look at the next slot: out of
 * line, so the common decision (the next slot, within its streak) is a leaf
 * that saves no registers. tick: the decision's tick, already counted. */
static __attribute__((noinline)) crew_task_t *next_local_slow(crew__worker_t *w, uint32_t tick)
{
    crew_task_t *t;
    if (tick % CREW_GLOBAL_INTERVAL == 0) {
        crew__timer_poll(&w->rt->reactor, w->index, &w->timer_turn); /* Rule 9. */
        if ((t = take_global(w, 1)) || (t = take_next_in_streak(w)))
            return t;
    }
    w->next_streak = 0;
    crew_task_t *woken = inbox_take(w);
    if (woken)
        queue_woken(w, woken);
    if ((t = crew__runq_pop(&w->runq)))
        return t;
    /* Acquire: pairs with the acq_rel exchange that placed the task. */
    if (atomic_load_explicit(&w->next, memory_order_relaxed) &&
        (t = atomic_exchange_explicit(&w->next, NULL, memory_order_acquire))) {
        w->next_streak = 1;
        return t;
    }
    return take_global(w, CREW_RUNQ_CAP / 2);
}

crew_task_t *crew__sched_next_local(crew__worker_t *w)
{
    uint32_t tick = ++w->tick;
    crew_task_t *t;
    if (crew__likely(tick % CREW_GLOBAL_INTERVAL != 0) && (t = take_next_in_streak(w)))
        return t;
    return next_local_slow(w, tick);
}

/* Rule 5. seen[] remembers, per victim, the next-slot task seen on the
 * previous round. */
crew_task_t *crew__sched_steal(crew__worker_t *w, crew_task_t **seen)
{
    crew_rt_t *rt = w->rt;
    unsigned n = rt->nworkers;
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    unsigned start = (unsigned)(w->rng % n);
    for (unsigned i = 0; i < n; i++) {
        crew__worker_t *v = rt->workers[(start + i) % n];
        if (v == w)
            continue;
        unsigned moved;
        crew_task_t *t = crew__runq_steal(&v->runq, &w->runq, &moved);
        if (t) {
            crew__counter_add(&w->steals, moved);
            crew__counter_add(&w->steal_ops, 1);
            CREW_PROBE3(task_steal, w->index, v->index, moved);
            return t;
        }
    }
    crew_task_t *t = take_global(w, CREW_RUNQ_CAP / 2);
    if (t)
        return t;
    for (unsigned i = 0; i < n; i++) {
        unsigned vi = (start + i) % n;
        crew__worker_t *v = rt->workers[vi];
        crew_task_t *head = atomic_load_explicit(&v->inbox, memory_order_relaxed);
        if (v == w || !head || head != seen[n + vi]) {
            seen[n + vi] = head;
            continue;
        }
        seen[n + vi] = NULL;
        if ((t = inbox_take(v))) {
            crew__counter_add(&w->steal_ops, 1);
            queue_woken(w, t->qnext);
            return t;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned vi = (start + i) % n;
        crew__worker_t *v = rt->workers[vi];
        if (v == w)
            continue;
        crew_task_t *cand = atomic_load_explicit(&v->next, memory_order_relaxed);
        if (cand && cand == seen[vi] &&
            atomic_compare_exchange_strong_explicit(&v->next, &cand, NULL, memory_order_acquire,
                                                    memory_order_relaxed)) {
            seen[vi] = NULL;
            crew__counter_add(&w->steals, 1);
            crew__counter_add(&w->steal_ops, 1);
            return cand;
        }
        seen[vi] = cand;
    }
    return NULL;
}

static void start_task(crew__worker_t *w, crew_task_t *t)
{
    crew__stack_t *s = crew__stack_get(&w->rt->stacks, &w->stacks, t->stack_cls);
    if (!s) {
        t->stack = NULL;
        return;
    }
    t->stack = s;
    crew__fiber_init(&t->fiber, s->lo, crew__stack_colored_size(s), crew__task_entry);
    atomic_store_explicit(&t->started, 1, memory_order_relaxed);
}

/* next never ran: give it a stack, or, if it was cancelled first or no
 * stack can be had, complete it without running its body (it needs no
 * stack then) and choose again. Returns the task to switch to, NULL for the
 * scheduler fiber. Out of line, like the rest of sched_switch's rare cases:
 * the switch itself then saves no registers of its own. */
static __attribute__((noinline)) crew_task_t *start_or_fail(crew__worker_t *w, crew_task_t *next)
{
    while (next && !next->stack) {
        int err = atomic_load_explicit(&next->cancelled, memory_order_relaxed) ||
                          atomic_load_explicit(&w->rt->cancel_all, memory_order_relaxed)
                      ? -ECANCELED
                      : 0;
        if (!err) {
            start_task(w, next);
            if (next->stack)
                break;
            err = -ENOMEM;
        }
        crew__task_fail_start(w, next, err);
        next = crew__sched_next_local(w);
    }
    return next;
}

/* A fast wait woken while it chose what to run next: the last look before
 * the switch ("Fast exit", park.h). Only from here on can no wake come from
 * this thread (the choice may fire the task's own timer), so a wake from
 * here is one the scheduler could not requeue. The task stays; next runs
 * after it. */
static __attribute__((noinline)) void stay_woken(crew__worker_t *w, crew_task_t *cur,
                                                 crew_task_t *next)
{
    if (next)
        place_local(w, next, atomic_load_explicit(&next->started, memory_order_relaxed));
    atomic_store_explicit(&cur->obs_state, CREW_TASK_RUNNING, memory_order_relaxed);
    crew__park_stayed(cur);
}

crew__worker_t *crew__sched_switch(crew__worker_t *w, crew_task_t *cur, crew_task_t *next)
{
    if (next && crew__unlikely(!next->stack))
        next = start_or_fail(w, next);
    /* Acquire: see the waker's writes (stay_woken). */
    if (cur && cur->post == CREW_POST_PARK &&
        crew__unlikely((atomic_load_explicit(&cur->park, memory_order_acquire) &
                        (CREW_PARK_FAST | 3)) == (CREW_PARK_FAST | CREW_PARK_WOKEN))) {
        stay_woken(w, cur, next);
        return w;
    }
    crew__fiber_t *from = cur ? &cur->fiber : &w->sched_fiber;
    crew__fiber_t *to = next ? &next->fiber : &w->sched_fiber;
    w->current = next;
    if (next) {
        atomic_store_explicit(&next->obs_state, CREW_TASK_RUNNING, memory_order_relaxed);
        atomic_store_explicit(&next->last_worker, (uint8_t)w->index, memory_order_relaxed);
        crew__counter_add(&w->polls, 1);
    }
    crew_task_t *prev = crew__fiber_switch(from, to, cur, cur && cur->post == CREW_POST_EXIT);
    w = crew__worker_self();
    crew__sched_finish(w, prev);
    return w;
}

/* crew__sched_finish past its common case. */
static __attribute__((noinline)) void finish_slow(crew__worker_t *w, crew_task_t *prev)
{
    switch (prev->post) {
    case CREW_POST_REQUEUE:
        atomic_store_explicit(&prev->obs_state, CREW_TASK_RUNNABLE, memory_order_relaxed);
        push_local(w, prev);
        /* This worker now has two runnable tasks (prev and the one it runs):
         * a sleeping worker could take one (Tokio notifies on yield too). */
        crew__idle_notify(w->rt, false);
        break;
    case CREW_POST_PARK: {
        /* Not a fast wait (crew__sched_finish took those). */
        uint64_t word = atomic_load_explicit(&prev->park, memory_order_relaxed);
        for (;;) {
            if ((word & 3) == CREW_PARK_WOKEN) {
                /* A wake won before the task had left its stack (park.h
                 * rule 3): it is runnable now. Acquire: see the waker's writes. */
                atomic_thread_fence(memory_order_acquire);
                atomic_store_explicit(&prev->obs_state, CREW_TASK_RUNNABLE, memory_order_relaxed);
                push_local(w, prev);
                break;
            }
            CREW_ASSERT((word & 3) == CREW_PARK_ARMED);
            /* Release: the task's state before parking is visible to the
             * waker that wins the PARKED word and schedules it. Nothing of
             * prev may be touched after this CAS succeeds: that waker may
             * run it to its end and free it. */
            if (atomic_compare_exchange_weak_explicit(&prev->park, &word,
                                                      (word & ~(uint64_t)3) | CREW_PARK_PARKED,
                                                      memory_order_release, memory_order_relaxed))
                break;
        }
        break;
    }
    case CREW_POST_EXIT:
        crew__task_finish_exit(w, prev);
        break;
    default:
        CREW_ASSERT(!"task left without a post action");
    }
}

void crew__sched_finish(crew__worker_t *w, crew_task_t *prev)
{
    if (!prev)
        return;
    if (crew__unlikely(!crew__stack_canary_ok(&w->rt->stacks, prev->stack)))
        crew__overflow_report(prev);
    /* The common case, every channel wait: a fast park. The word's fast bit
     * was set by prev's own arm, before its switch. */
    if (prev->post == CREW_POST_PARK &&
        (atomic_load_explicit(&prev->park, memory_order_relaxed) & CREW_PARK_FAST)) {
        /* prev is off its stack: tell its wait's winner, if one came or
         * comes ("Fast exit", park.h). Release: prev's state before the
         * switch is visible to the winner that reads AWAY and schedules it.
         * The last touch of prev here: that winner may run it to its end
         * and free it. */
        atomic_store_explicit(&prev->off, CREW_OFF_AWAY, memory_order_release);
        return;
    }
    finish_slow(w, prev);
}

/* Rule 7: may this decision skip the local choice? */
static bool direct_allowed(crew__worker_t *w)
{
    w->tick++;
    if (w->tick % CREW_GLOBAL_INTERVAL != 0)
        return true;
    crew__timer_poll(&w->rt->reactor, w->index, &w->timer_turn); /* Rule 9. */
    return crew__inject_len(&w->rt->inject) == 0 &&
           !atomic_load_explicit(&w->inbox, memory_order_relaxed);
}

crew_task_t *crew__sched_take_queued(crew__worker_t *w, crew_task_t *t)
{
    if (t->rt != w->rt || !direct_allowed(w))
        return NULL;
    crew_task_t *n = atomic_load_explicit(&w->next, memory_order_relaxed);
    /* Acquire: pairs with the release half of the exchange that placed it. */
    if (n == t && atomic_compare_exchange_strong_explicit(&w->next, &n, NULL, memory_order_acquire,
                                                          memory_order_relaxed))
        return t;
    return crew__runq_unpush(&w->runq, t) ? t : NULL;
}

crew_task_t *crew__sched_next_after_exit(crew__worker_t *w)
{
    /* next_resumed describes what this worker last placed in the slot; only
     * this worker fills the slot, so the slot holds that task or, if a thief
     * took it, nothing. */
    if (w->next_resumed && atomic_load_explicit(&w->next, memory_order_relaxed) &&
        direct_allowed(w)) {
        /* Acquire: pairs with the release half of the exchange that placed it. */
        crew_task_t *n = atomic_exchange_explicit(&w->next, NULL, memory_order_acquire);
        if (n)
            return n;
    }
    return crew__sched_next_local(w);
}

void crew__sched_park_to(crew_task_t *self, crew_task_t *next)
{
    crew__worker_t *w = crew__worker_self();
    atomic_store_explicit(&self->obs_state, CREW_TASK_WAITING, memory_order_relaxed);
    self->post = CREW_POST_PARK;
    crew__sched_switch(w, self, next);
}

void crew__sched_park(crew_task_t *self)
{
    crew__worker_t *w = crew__worker_self();
    /* Fast path: the wake already came (park.h rule 3). Acquire: see the
     * waker's writes. */
    uint64_t word = atomic_load_explicit(&self->park, memory_order_acquire);
    if ((word & 3) == CREW_PARK_WOKEN) {
        if (word & CREW_PARK_FAST)
            crew__park_stayed(self); /* Its winner waits for us ("Fast exit"). */
        return;
    }
    atomic_store_explicit(&self->obs_state, CREW_TASK_WAITING, memory_order_relaxed);
    self->post = CREW_POST_PARK;
    crew__sched_switch(w, self, crew__sched_next_local(w));
}

int crew__sched_yield(void)
{
    crew__worker_t *w = crew__worker_self();
    crew_task_t *self = w ? w->current : NULL;
    if (!self)
        return -EPERM;
    /* A cancellation point: sticky, so every yield of a cancelled task (or
     * one past its deadline) says so; it still yields, so a task that
     * ignores the code and loops does not keep its worker from others. */
    int rc = crew__suspend_check(self);
    crew_task_t *next = crew__sched_next_local(w);
    if (!next)
        return rc; /* Nothing else to run here: keep going. */
    self->post = CREW_POST_REQUEUE;
    crew__sched_switch(w, self, next);
    return rc;
}

int crew_yield(void)
{
    return crew__sched_yield();
}
