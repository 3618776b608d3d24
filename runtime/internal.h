/* Internal definitions shared by the runtime's files: the task, worker and
 * runtime structures and the helpers every file uses. Never installed. */
#ifndef CREW_RUNTIME_INTERNAL_H
#define CREW_RUNTIME_INTERNAL_H

#include <crew.h>

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "switch.h"

#define CREW_CACHELINE 64

#define crew__likely(x) __builtin_expect(!!(x), 1)
#define crew__unlikely(x) __builtin_expect(!!(x), 0)

/* Always-on assertion: a broken invariant in a scheduler corrupts memory far
 * from the bug, so crew stops at once and says where. */
#define CREW_ASSERT(cond)                                                                 \
    do {                                                                                  \
        if (crew__unlikely(!(cond)))                                                      \
            crew__panic(__FILE__, __LINE__, #cond);                                       \
    } while (0)

_Noreturn void crew__panic(const char *file, int line, const char *what);

/* Spin-wait hint for busy loops. */
static inline void crew__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* A full fence right after an atomic read-modify-write, as Linux's
 * smp_mb__after_atomic(): free on x86, where every locked instruction
 * already is a full barrier (no load passes it, no earlier store stays
 * behind it in the store buffer), and a seq_cst fence elsewhere. Used where
 * a store-load pair (a Dekker handshake) would otherwise need a locked
 * instruction of its own (park.h, crew__waiter_registered). */
static inline void crew__fence_after_rmw(void)
{
#if defined(__x86_64__) || defined(__i386__)
    atomic_signal_fence(memory_order_seq_cst);
#else
    atomic_thread_fence(memory_order_seq_cst);
#endif
}

/* One round of waiting for another party a few instructions away: spin
 * briefly, then yield the CPU. Plain threads wait like this too, and a party
 * preempted by the OS (more threads than cores) would otherwise cost every
 * spinner a whole time slice. */
static inline void crew__pause_round(unsigned *spins)
{
    if ((*spins)++ < 64)
        crew__cpu_relax();
    else
        sched_yield();
}

typedef struct crew__worker crew__worker_t;
typedef struct crew__stack crew__stack_t;
typedef struct crew__waiter crew__waiter_t;

/* A fiber: a machine context plus the stack it runs on, and the sanitizer
 * state that must follow the stack (see fiber.c). */
typedef struct crew__fiber {
    crew__ctx_t ctx;
#if defined(CREW_ASAN)
    void *stack_lo; /* Lowest usable byte: ASan must know where the next stack is. */
    size_t stack_size;
    void *asan_fake_stack;
#endif
#if defined(CREW_TSAN)
    void *tsan_fiber;
#endif
} crew__fiber_t;

/* What the context that resumes after a task left must do with that task
 * (the "finish" step of a switch, see scheduler.c). */
enum crew__post {
    CREW_POST_NONE = 0,  /* Nothing: the task is already where it belongs. */
    CREW_POST_REQUEUE,   /* Yield: append to the local run queue. */
    CREW_POST_PARK,      /* Park: publish PARKED unless a wake came first (a fast wait: AWAY). */
    CREW_POST_EXIT,      /* Finished: recycle the stack, signal the joiner. */
};

/* Join protocol states (task->join_state). */
enum {
    CREW_JOIN_RUNNING = 0, /* No joiner has registered. */
    CREW_JOIN_WAITING = 1, /* A joiner registered in task->joiner (under join_lock). */
    CREW_JOIN_DONE = 2,    /* The task finished; result is readable. */
};

_Static_assert(CREW_MAX_WORKERS <= 256, "crew_task_s.last_worker holds a worker index in 8 bits");

struct crew_task_s {
    crew__fiber_t fiber;     /* Valid from the first run until exit. */
    crew__stack_t *stack;    /* NULL until the task first runs and after exit. */
    crew_fn_t fn;
    void *arg;
    void *result;            /* Written by the task before it publishes JOIN_DONE. */
    int16_t status;          /* crew_join's return: 0, or -errno: why the task did not run. */
    /* The worker that last ran it, where a wake from outside the workers
     * sends it (scheduler.c rule 8). Relaxed: a hint, any index is safe. */
    _Atomic uint8_t last_worker;
    /* Where the task is in its current wait, for the wake that won it
     * in a fast wait (park.h, "Fast exit"): CREW_OFF_*. */
    _Atomic uint8_t off;
    uint32_t reg_idx;        /* Index in its registry shard (registry.h); under its lock. */
    crew_rt_t *rt;
    crew_task_t *qnext;      /* Link in the injection queue and in overflow batches. */

    /* Park word, see park.h: (seq << 16) | (cause << 3) | (nocancel << 2) | state. */
    _Atomic uint64_t park;
    /* crew_task_state_t, kept for observers (relaxed): the scheduler writes it
     * on every transition, crew_task_state() reads it. */
    _Atomic uint8_t obs_state;
    uint8_t post;            /* enum crew__post; written by the task just before it switches away. */
    /* Sticky cancellation request (crew_task_cancel); seq_cst, see park.h. */
    _Atomic uint8_t cancelled;
    /* Has a stack and a context. Written once (relaxed) by the worker that
     * first runs it; read (relaxed) by a worker deciding whether a queued task
     * is a resumption (scheduler.c, exit hand-off). */
    _Atomic uint8_t started;
    /* Set while a crew_join or crew_detach holds the handle, so a second
     * concurrent caller gets -EBUSY instead of a double release. */
    _Atomic uint8_t handle_busy;
    uint8_t stack_cls;          /* Stack size class (stack.h). */
    uint16_t reg_shard;         /* Its registry shard, or CREW_REG_NONE (registry.h). */
    uint32_t shield;            /* Shield region depth; only the task itself changes it. */

    /* Holds: one for the handle, one for the running task. The last put frees. */
    _Atomic uint32_t refs;
    _Atomic uint32_t join_state;
    _Atomic uint32_t join_lock; /* Spin lock guarding joiner. */
    crew__waiter_t *joiner;     /* Under join_lock. */

    crew_timeout_t *scope;      /* Innermost deadline scope (time.h); the task's own. */
    uint64_t id;
    /* NULL for an unnamed task (most tasks: a spawn then allocates nothing
     * but the task itself, which keeps it at two cache lines). */
    char *name;
};

#endif
