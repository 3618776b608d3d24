/* Signals (signals.c): the per-runtime part. The process-wide part (which
 * runtime has which signal, the async-signal-safe pending counters) is
 * static in signals.c. */
#ifndef CREW_RUNTIME_SIGNAL_H
#define CREW_RUNTIME_SIGNAL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

typedef struct crew__sig_wait crew__sig_wait_t;

typedef struct crew__sigstate {
    _Atomic uint32_t lock;      /* Spin lock over everything below. */
    sigset_t owned;             /* Signals this runtime has. */
    sigset_t unclaimed;         /* Delivered while no one waited or handled. */
    crew__sig_wait_t *waiters;  /* Singly linked, newest first. */
    crew_fn_t fn[NSIG];
    void *arg[NSIG];
    /* Bumped when owned changes; the reactor applies its signal mask when it
     * sees a new value (only its own thread can change its mask). */
    _Atomic uint32_t mask_gen;
    /* Reactor thread only: the mask it started with, and the generation it
     * last applied. */
    sigset_t base_mask;
    uint32_t applied_gen;
} crew__sigstate_t;

void crew__signal_init(crew_rt_t *rt);
/* Shutdown: give back every signal rt still has. */
void crew__signal_release_all(crew_rt_t *rt);
/* Reactor thread: deliver the signals recorded for rt since the last call,
 * and apply a changed signal mask. */
void crew__signal_dispatch(crew_rt_t *rt);
/* Reactor thread, at start: remember the mask it inherited. */
void crew__signal_reactor_start(crew_rt_t *rt);

#endif
