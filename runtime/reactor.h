/* The reactor: one thread per runtime (crew-reactor) running libevent's loop.
 * It never runs user code. It delivers fd readiness (io.c) and signals, and
 * fires timers when no worker is awake to fire them (timer.c, rules 1-3);
 * woken tasks go to the inboxes of the workers that last ran them
 * (scheduler.c rule 8).
 *
 * Workers talk to it without locks on libevent: they change the timer heap
 * under its own mutex and, when the reactor must wake earlier than it is
 * armed for, write to an eventfd that the loop watches (crew__reactor_kick);
 * the reactor then re-arms its single libevent timer. fds are registered by
 * the workers themselves in an epoll set that libevent watches (io.h). */
#ifndef CREW_RUNTIME_REACTOR_H
#define CREW_RUNTIME_REACTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "io.h"

struct event_base;
struct event;

/* A pending timer: lives in the waiting party's frame (crew_sleep's), or
 * first in a callback timer (timer.c), which has no waiter. */
typedef struct crew__timer {
    int64_t deadline;      /* crew_now() time at which it fires. */
    crew__waiter_t *waiter;
    struct crew__timerq *q; /* The queue it was added to; NULL before. */
    int cause;             /* Wake cause when it fires: READY (a sleep), TIMEOUT (a deadline). */
    uint32_t cell;         /* Its cell in q's cell table; CREW_TIMER_NONE once popped or removed. */
} crew__timer_t;

#define CREW_TIMER_NONE UINT32_MAX

/* A heap slot: its key, and the cell of its timer (CREW_TIMER_NONE: a
 * tombstone, the timer was removed). */
struct crew__timer_slot {
    int64_t deadline;
    uint64_t seq;          /* Insertion order: equal deadlines fire first-in first-out. */
    uint32_t cell;
};

/* A live timer's entry in the cell table: the record, and where its slot is
 * in the heap (while the cell is free: the next free cell). */
struct crew__timer_cell {
    crew__timer_t *timer;
    uint32_t idx;
};

/* A timer queue (timer.c): every worker has one for the timers its tasks
 * add, and the runtime one for everyone else's. A 4-ary min-heap on
 * (deadline, seq) under its own lock; keys in the slots and positions in the
 * cell table, so sifting touches none of the timer records on the sleepers'
 * stacks. */
typedef struct crew__timerq {
    pthread_mutex_t lock;
    struct crew__timer_slot *heap;
    struct crew__timer_cell *cells; /* cap cells: in use, free, or never used. */
    uint32_t n, cap;
    uint32_t cells_used;      /* Cells handed out at least once: [0, cells_used). */
    uint32_t free_cell;       /* Head of the free cells (linked by idx), or CREW_TIMER_NONE. */
    uint32_t ndead;           /* Tombstones: slots whose timer was removed. */
    uint64_t next_seq;
    /* The earliest deadline (INT64_MAX: empty), written under the lock,
     * read without it by polling workers and the reactor (timer.c). Own
     * line: read at every 61st scheduling decision. */
    _Alignas(CREW_CACHELINE) _Atomic int64_t next_due;
    /* Timers fired, by whom; written under the lock, read by crew_rt_metrics. */
    _Atomic uint64_t fired_by_workers, fired_by_reactor;
} crew__timerq_t;

typedef struct crew__reactor {
    crew_rt_t *rt;
    struct event_base *base;  /* Reactor thread only, after start. */
    struct event *io_ev;      /* Readable when fds.epfd has events. */
    struct event *kick_ev;    /* Readable when wake_fd has been written. */
    struct event *timer_ev;   /* Armed for the timers' next look. */
    int kick_fd;              /* eventfd. */
    pthread_t thread;
    bool running;
    _Atomic bool stopping;

    crew__timerq_t *qs;       /* nq timer queues: one per worker, then the runtime's. */
    unsigned nq;
    _Atomic int64_t armed;    /* When the reactor's timer wakes it; INT64_MAX: not armed. */

    crew__fdtab_t fds;        /* Registered fds (io.c). */
} crew__reactor_t;

/* Set up rt's timer queues; before rt's workers start (they poll them).
 * Returns 0 or -ENOMEM. */
int crew__timer_init(crew__reactor_t *r, crew_rt_t *rt);
/* Free it, once the workers and the reactor thread are gone; no timer may be
 * pending. */
void crew__timer_fini(crew__reactor_t *r);
/* Create the reactor loop and start its thread (named crew-reactor), after
 * crew__timer_init. */
int crew__reactor_start(crew__reactor_t *r);
/* CPU time the reactor thread has used, in ns (0 if unknown). */
uint64_t crew__reactor_cpu_ns(crew__reactor_t *r);
/* Stop the thread and free its loop; after the workers stopped. */
void crew__reactor_stop(crew__reactor_t *r);
/* Make the reactor look at the timers again (any thread). */
void crew__reactor_kick(crew__reactor_t *r);

/* How late the reactor fires a timer that the awake workers have not fired
 * (timer.c rule 2): Tokio's timer resolution. */
#define CREW_TIMER_BACKSTOP_NS (1000 * 1000)

/* Timers (timer.c). add files t in the calling worker's queue (or the
 * runtime's) and returns 1 when the reactor must wake earlier than it is
 * armed for (the caller then kicks it), 0 otherwise, -ENOMEM. remove is a
 * no-op for a timer that already fired or was never added. */
int crew__timer_add(crew__reactor_t *r, crew__timer_t *t);
void crew__timer_remove(crew__timer_t *t);
/* Shutdown, once no task is live: drop every callback timer still pending
 * (their callbacks never run). */
void crew__timer_drop_callbacks(crew__reactor_t *r);
/* Reactor thread: wake every timer due at now; return when the reactor must
 * wake next (crew_now() time), or -1 when no timer is pending. */
int64_t crew__timer_fire(crew__reactor_t *r, int64_t now);
/* Worker self of r's runtime: fire some of the due timers of its own queue,
 * the runtime's, and the other workers' (all of them if turn is NULL, else
 * one, chosen by *turn, which it advances), to the workers that last ran
 * their tasks (timer.c rule 1). Cheap when none is due: a relaxed load per
 * queue looked at, and a clock read if a timer is pending. True if it fired
 * any. */
bool crew__timer_poll(crew__reactor_t *r, unsigned self, unsigned *turn);
/* Timers fired so far by the workers, or by the reactor. */
uint64_t crew__timer_fired(const crew__reactor_t *r, bool by_workers);
/* The last awake worker is about to park: if timers are pending, make the
 * reactor arm for them exactly (timer.c rule 3). */
void crew__timer_idle(crew__reactor_t *r);

#endif
