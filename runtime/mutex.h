/* Mutexes for the runtime's short critical sections that several threads
 * take at high rates (the injection queue, the timer heap). */
#ifndef CREW_RUNTIME_MUTEX_H
#define CREW_RUNTIME_MUTEX_H

#include <pthread.h>

/* Initialise m as an adaptive mutex: a waiter spins briefly before it
 * sleeps. The sections it guards last a few hundred nanoseconds, so a plain
 * mutex sent most losers to the kernel (timers: ~40,000 futex calls for
 * 100,000 sleeps, with both workers and the reactor taking the heap lock);
 * unlike a spin lock it still sleeps when the holder was preempted, which
 * matters with the reactor as a third thread on two CPUs. Returns 0 or
 * -errno. */
static inline int crew__mutex_init_short(pthread_mutex_t *m)
{
    pthread_mutexattr_t ma;
    int rc = pthread_mutexattr_init(&ma);
    if (rc)
        return -rc;
    rc = pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    if (!rc)
        rc = pthread_mutex_init(m, &ma);
    pthread_mutexattr_destroy(&ma);
    return -rc;
}

#endif
