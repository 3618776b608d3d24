/* The scheduler: workers, their run queues, and the switches between tasks.
 * The protocol is described at the top of scheduler.c; idle.c holds the parking
 * of worker threads. */
#ifndef CREW_RUNTIME_SCHED_H
#define CREW_RUNTIME_SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fiber.h"
#include "inject.h"
#include "internal.h"
#include "reactor.h"
#include "registry.h"
#include "signals.h"
#include "runq.h"
#include "stack.h"

/* A per-worker counter: written only by the owning worker (a relaxed load and
 * a release store, no RMW), read by anyone with acquire. */
typedef _Atomic uint64_t crew__counter_t;

static inline void crew__counter_add(crew__counter_t *c, uint64_t n)
{
    /* Release: the live-task count (runtime.c) reads exits, then spawns, and
     * relies on seeing every spawn that happened before an exit it saw. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_release);
}

static inline uint64_t crew__counter_read(crew__counter_t *c)
{
    return atomic_load_explicit(c, memory_order_acquire);
}

struct crew__worker {
    crew__runq_t runq;              /* Owner pushes/pops; others steal. */
    /* Next-task slot: the task most recently spawned or woken here runs next
     * (warm caches, fork-join order). Owner sets and takes it with exchange;
     * thieves take it with CAS when the ring is empty, so it never strands a
     * task behind a long-running one. */
    _Alignas(CREW_CACHELINE) _Atomic(crew_task_t *) next;

    /* Owner-only state. */
    _Alignas(CREW_CACHELINE) crew_rt_t *rt;
    crew_task_t *current;           /* Running task; NULL on the scheduler fiber. */
    crew__fiber_t sched_fiber;      /* The worker thread's own stack. */
    unsigned index;
    uint32_t tick;                  /* Scheduling decisions made; drives the fairness rule. */
    uint32_t next_streak;           /* Consecutive runs from the next slot. */
    unsigned timer_turn;            /* Which other worker's timer heap the next poll looks at. */
    bool searching;                 /* Counted in the runtime's searching workers. */
    bool next_resumed;              /* The task last placed in `next` was a wake, not a spawn. */
    uint64_t rng;                   /* Victim choice. */
    uint64_t id_next, id_end;       /* Block of task ids handed out by this worker. */
    crew__stack_cache_t stacks;
    pthread_t thread;
    void *altstack;                 /* sigaltstack for the overflow handler. */
    size_t altstack_size;

    /* Inbox (rule 8): tasks woken from outside the workers for this one,
     * a stack pushed by CAS and taken whole by exchange (no ABA: nobody
     * pops a single task). Own line: the reactor writes it. */
    _Alignas(CREW_CACHELINE) _Atomic(crew_task_t *) inbox;

    /* Parking (idle.c): 0 while asleep, 1 once notified. */
    _Alignas(CREW_CACHELINE) _Atomic uint32_t futex;
    /* In rt->sleepers: set under sleep_lock (seq_cst: idle.c rule 6),
     * cleared by whoever takes it out. */
    _Atomic uint32_t parked;

    /* Metrics and the live-task count (see crew__counter_t). */
    _Alignas(CREW_CACHELINE) crew__counter_t spawned, exited;
    crew__counter_t polls, steals, steal_ops, global_pops, overflows, parks, wakeups;
};

struct crew_rt_s {
    /* Read-mostly: every worker reads this line all the time (the workers,
     * and cancel_all at every suspension point), so nothing that is written
     * in normal running shares it. */
    unsigned nworkers;
    unsigned flags;
    size_t default_stack;          /* Usable bytes, a class size. */
    int default_cls;
    crew__worker_t **workers;
    _Atomic bool cancel_all;       /* A shutdown's grace ended: every task is cancelled (registry.h). */

    /* Own lines: its lock is written at every push and pop. */
    _Alignas(CREW_CACHELINE) crew__inject_t inject;
    uint64_t ext_spawned;          /* Tasks injected by crew_rt_spawn; under inject.lock. */

    /* Idle protocol (idle.c): searching workers in the low 16 bits, unparked
     * (awake) workers in the high 16. Own cache line: read on every spawn. */
    _Alignas(CREW_CACHELINE) _Atomic uint32_t idle_state;
    _Alignas(CREW_CACHELINE) pthread_mutex_t sleep_lock;
    unsigned *sleepers;            /* Stack of parked worker indexes; under sleep_lock. */
    unsigned nsleepers;            /* Under sleep_lock. */

    /* Threads outside this runtime inside a call that touches it
     * (crew__rt_enter/leave, and crew__sched_wake/spawn for it: after their
     * push the task may finish at once): crew_rt_destroy waits for them to
     * leave before it frees what they still touch. */
    _Atomic uint32_t outside_pushers;
    _Atomic bool shutdown;         /* Refuse new spawns. */
    _Atomic bool stop;             /* Workers exit when idle. */
    _Atomic uint32_t idle_seq;     /* Futex the destroyer sleeps on while tasks remain. */
    _Atomic uint32_t started;      /* Workers done with their setup; crew_rt_create waits on it. */
    _Atomic int start_error;       /* First setup error of a worker, or 0. */
    _Atomic bool destroying;
    _Atomic bool stopped_by_signal; /* crew_run's CREW_RT_STOP_ON_SIGNAL fired. */
    _Atomic uint64_t main_id;      /* crew_run's main task, for that flag's cancel. */

    crew__stack_pool_t stacks;
    crew__registry_t *registry;    /* nworkers + 1 shards of live tasks (registry.h). */
    crew__reactor_t reactor;       /* The crew-reactor thread and the timer heap. */
    crew__sigstate_t sig;          /* Signals this runtime has (signals.h). */
    _Atomic(crew_executor_t *) executor; /* Default executor, created on first use (executor.c). */
};

/* The worker running the calling thread, or NULL. Opaque to the optimiser,
 * so that no caller can keep a thread-local address, or the value read
 * through one, across a suspension point (RELIABILITY.md 3.1): after any
 * switch, call it again.
 *
 * On x86_64 it is one volatile asm with a memory clobber: it loads the
 * variable's thread-pointer offset (the same on every thread) and reads
 * %fs-relative through it, so the thread pointer never sits in a register
 * the compiler could reuse, and the clobber keeps the asm on its side of
 * every switch (itself a call the compiler cannot see into). Inline, it
 * spares each caller a call and the register saves around it. Elsewhere a
 * non-inlined function does the same job. */
#if defined(__x86_64__)
extern __thread crew__worker_t *crew__tls_worker __attribute__((tls_model("initial-exec")));
static inline crew__worker_t *crew__worker_self(void)
{
    crew__worker_t *w;
    __asm__ __volatile__("movq crew__tls_worker@gottpoff(%%rip), %0\n\t"
                         "movq %%fs:(%0), %0"
                         : "=r"(w)
                         :
                         : "memory");
    return w;
}
#else
crew__worker_t *crew__worker_self(void);
#endif
void crew__worker_set_self(crew__worker_t *w);

/* The task running on the calling thread, or NULL. Same rules. */
static inline crew_task_t *crew__task_self(void)
{
    crew__worker_t *w = crew__worker_self();
    return w ? w->current : NULL;
}

/* A call from outside rt's workers that touches rt (crew_rt_spawn,
 * crew_rt_call_at) brackets itself with these, so a shutdown running at the
 * same time either refuses it (-ESHUTDOWN from enter) or waits for leave
 * before freeing rt. Calling after the shutdown has returned is still a
 * use-after-free, as with any freed object. */
int crew__rt_enter(crew_rt_t *rt);
void crew__rt_leave(crew_rt_t *rt);

/* Make the woken task t runnable. From a worker of t's runtime: its next
 * slot (a woken task runs next, on the waker's worker); from elsewhere: the
 * inbox of the worker that last ran it (rule 8). Accepted even after
 * shutdown started (a wake of an existing task). */
void crew__sched_wake(crew_task_t *t);
/* Make the woken tasks of the list first (linked by qnext, NULL-terminated,
 * their obs_state already RUNNABLE: crew__wake_batch_claim sets it)
 * runnable. From a worker of rt (a task's wake-all, sync/waitq.h): its ring
 * takes what fits, the injection queue the rest in one push, one notify.
 * From any other thread (the reactor, a pool thread, a plain thread's
 * wake-all), or with home set (timers a worker fired): each goes to the
 * inbox of the worker that last ran it, one push per run of tasks bound for
 * the same worker, and a parked worker is woken only when it was sent work
 * (rule 8). */
void crew__sched_wake_batch(crew_rt_t *rt, crew_task_t *first, bool home);
/* Queue a freshly spawned task: into w's next slot when the spawner is a
 * task running on w (a worker of rt), else (w NULL) through rt's injection
 * queue, from inside crew__rt_enter or from the reactor thread. Returns 0 or
 * -ESHUTDOWN. */
int crew__sched_spawn(crew__worker_t *w, crew_rt_t *rt, crew_task_t *t);

/* Suspend the calling task (whose park word is armed) until it is woken.
 * Returns with the task running again, possibly on another worker. */
void crew__sched_park(crew_task_t *self);

/* Rule 7 (scheduler.c): take t out of w's queues if it sits in the next
 * slot or at the ring's tail, to switch to it directly; NULL otherwise. */
crew_task_t *crew__sched_take_queued(crew__worker_t *w, crew_task_t *t);
/* Park self (armed) and switch straight to next, a task taken off the queues. */
void crew__sched_park_to(crew_task_t *self, crew_task_t *next);
/* What an exiting task switches to (rule 7, then the local choice). */
crew_task_t *crew__sched_next_after_exit(crew__worker_t *w);

/* Yield the calling task; returns 0, or -EPERM outside a task. */
int crew__sched_yield(void);

/* Entry of a worker thread. */
void *crew__worker_main(void *arg);
/* A worker reports the end of its setup (0 or -errno) to crew_rt_create. */
void crew__worker_started(crew_rt_t *rt, int rc);

/* Idle protocol (idle.c). */
void crew__idle_init(crew_rt_t *rt);
bool crew__idle_begin_search(crew__worker_t *w);
void crew__idle_end_search(crew__worker_t *w);
/* Park the worker thread until notified or stopped. */
void crew__idle_park(crew__worker_t *w);
/* Work became available: wake a parked worker if none is awake to take it.
 * strict: the caller is not a running worker, so it must not rely on its own
 * thread to run the work later (full fence, see idle.c). */
void crew__idle_notify_slow(crew_rt_t *rt, bool strict);

/* Fields of rt->idle_state (idle.c). */
#define CREW_IDLE_SEARCHING(st) ((st) & 0xFFFFu)
#define CREW_IDLE_AWAKE(st) ((st) >> 16)

static inline void crew__idle_notify(crew_rt_t *rt, bool strict)
{
    /* A running worker's check is one relaxed load of a line that only
     * changes when workers start or stop searching or sleeping; the common
     * answer, "someone searches or nobody sleeps", needs nothing more. */
    uint32_t st = atomic_load_explicit(&rt->idle_state, memory_order_relaxed);
    if (strict || (CREW_IDLE_SEARCHING(st) == 0 && CREW_IDLE_AWAKE(st) < rt->nworkers))
        crew__idle_notify_slow(rt, strict);
}
/* Wake v if it is parked; it was sent work (rule 8). */
void crew__idle_wake_worker(crew_rt_t *rt, crew__worker_t *v);
/* Wake every parked worker (shutdown). */
void crew__idle_wake_all(crew_rt_t *rt);
/* Is there queued work anywhere (used before sleeping)? */
bool crew__idle_work_pending(crew_rt_t *rt);

/* Tasks (task.c). */
void crew__task_put(crew_task_t *t);
/* Body of a task's fiber after its first switch-in. */
void crew__task_entry(void *prev);
/* The scheduler's part of a task's exit: runs on another fiber. */
void crew__task_finish_exit(crew__worker_t *w, crew_task_t *t);

/* Switch from the running fiber (the task cur, or the scheduler when cur is
 * NULL) to the task next, and finish the transition of whatever task left
 * when this fiber is resumed. Returns the worker the caller now runs on. */
crew__worker_t *crew__sched_switch(crew__worker_t *w, crew_task_t *cur, crew_task_t *next);
/* Finish the transition of prev (its post field), on the fiber that resumed. */
void crew__sched_finish(crew__worker_t *w, crew_task_t *prev);
/* The next task for w to run, or NULL (local queues and injection only; no steal). */
crew_task_t *crew__sched_next_local(crew__worker_t *w);
/* One round of stealing (scheduler.c rule 5); seen has two entries per
 * worker (its next slot, its inbox). */
crew_task_t *crew__sched_steal(crew__worker_t *w, crew_task_t **seen);

/* crew_rt_spawn from outside rt, registered at once (registry.h) so that
 * crew__registry_cancel finds it by id before its first wait (crew_run's
 * main task). At most one such task per runtime may exist before it starts:
 * park.h's fast exit relies on it ("one near miss"). */
int crew__spawn_registered(crew_rt_t *rt, crew_fn_t fn, void *arg, crew_task_t **out);

/* Callback timers (timer.c): a detached task built now and started later
 * from any thread (-ESHUTDOWN then drops it), or dropped without running. */
int crew__task_new_detached(crew_rt_t *rt, crew_fn_t fn, void *arg, crew_task_t **out);
void crew__task_start_detached(crew_task_t *t);
void crew__task_discard(crew_task_t *t);

/* A task that could not start (no stack) completes with err without running. */
void crew__task_fail_start(crew__worker_t *w, crew_task_t *t, int err);

/* Report a stack overflow of t on stderr and abort (overflow.c). */
_Noreturn void crew__overflow_report(const crew_task_t *t);
/* Install / remove the process's SIGSEGV/SIGBUS handler (refcounted). */
int crew__overflow_install(void);
void crew__overflow_uninstall(void);
/* Give the calling worker thread its alternate signal stack. */
int crew__overflow_thread_init(crew__worker_t *w);
void crew__overflow_thread_fini(crew__worker_t *w);

#endif
