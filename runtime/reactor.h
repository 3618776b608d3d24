/* The reactor: one thread per runtime (crew-reactor) running libevent's loop.
 * It never runs user code. It fires timers (timer.c) and delivers fd
 * readiness (io.c); both end in batches of woken tasks handed to the workers
 * through the injection queue's resuming lane.
 *
 * Workers talk to it without locks on libevent: they change the timer heap
 * under its own mutex and, when the earliest deadline moved earlier, write to
 * an eventfd that the loop watches (crew__reactor_kick); the reactor then
 * re-arms its single libevent timer for the heap's earliest deadline. fds are
 * registered by the workers themselves in an epoll set that libevent watches
 * (io.h). */
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
    uint64_t seq;          /* Insertion order: equal deadlines fire first-in first-out. */
    size_t idx;            /* Position in the heap; CREW_TIMER_NONE once popped or removed. */
    crew__waiter_t *waiter;
    int cause;             /* Wake cause when it fires: READY (a sleep), TIMEOUT (a deadline). */
} crew__timer_t;

#define CREW_TIMER_NONE ((size_t)-1)

struct crew__timer_slot {
    int64_t deadline;
    uint64_t seq;
    crew__timer_t *timer;
};

typedef struct crew__reactor {
    crew_rt_t *rt;
    struct event_base *base;  /* Reactor thread only, after start. */
    struct event *io_ev;      /* Readable when fds.epfd has events. */
    struct event *kick_ev;    /* Readable when wake_fd has been written. */
    struct event *timer_ev;   /* Armed for the heap's earliest deadline. */
    int kick_fd;              /* eventfd. */
    pthread_t thread;
    bool running;
    _Atomic bool stopping;

    /* The timer heap, under tlock. A 4-ary min-heap on (deadline, seq),
     * keys kept in the array so sifting does not touch the timer records
     * (they sit on sleeping tasks' stacks, cold in cache). */
    pthread_mutex_t tlock;
    struct crew__timer_slot *heap;
    size_t n, cap;
    uint64_t next_seq;
    size_t ndead;             /* Tombstones: slots whose timer was removed. */

    crew__fdtab_t fds;        /* Registered fds (io.c). */
} crew__reactor_t;

/* Create rt's reactor loop and start its thread (named crew-reactor). */
int crew__reactor_start(crew__reactor_t *r, crew_rt_t *rt);
/* CPU time the reactor thread has used, in ns (0 if unknown). */
uint64_t crew__reactor_cpu_ns(crew__reactor_t *r);
/* Stop the thread and free everything; no timer may be pending. */
void crew__reactor_stop(crew__reactor_t *r);
/* Make the reactor look at the timer heap again (any thread). */
void crew__reactor_kick(crew__reactor_t *r);

/* Timer heap (timer.c). add returns 1 when t became the earliest timer (the
 * caller then kicks the reactor), 0 otherwise, -ENOMEM. remove is a no-op
 * for a timer that already fired. */
int crew__timer_add(crew__reactor_t *r, crew__timer_t *t);
void crew__timer_remove(crew__reactor_t *r, crew__timer_t *t);
/* Shutdown, once no task is live: drop every callback timer still pending
 * (their callbacks never run). */
void crew__timer_drop_callbacks(crew__reactor_t *r);
/* Reactor thread: wake every timer due at now; return the earliest pending
 * deadline, or -1 when none is pending. */
int64_t crew__timer_fire(crew__reactor_t *r, int64_t now);

#endif
