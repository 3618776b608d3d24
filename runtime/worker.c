/* A worker thread: its setup and its scheduler loop, which runs on the
 * thread's own stack whenever the worker has no task to run. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "scheduler.h"

/* How long a searching worker spins before it sleeps (idle.c rule 2). */
#define CREW_SPIN_NS 50000
/* Pause between two steal rounds, so a spinning thief does not keep pulling
 * the victims' queue cache lines away from their owners. */
#define CREW_SPIN_PAUSES 64

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Search (idle.c rules 1-2), then sleep; repeat until work or stop. */
static crew_task_t *find_work(crew__worker_t *w, crew_task_t **seen)
{
    crew_rt_t *rt = w->rt;
    for (;;) {
        if (atomic_load_explicit(&rt->stop, memory_order_acquire))
            return NULL;
        if (crew__idle_begin_search(w)) {
            uint64_t deadline = now_ns() + CREW_SPIN_NS;
            do {
                /* Due timers first (scheduler.c rule 9): what they wake may be ours. */
                crew_task_t *t = crew__timer_poll(&rt->reactor, w->index, NULL)
                                     ? crew__sched_next_local(w)
                                     : NULL;
                if (!t)
                    t = crew__sched_steal(w, seen);
                if (!t)
                    t = crew__sched_next_local(w);
                if (t) {
                    crew__idle_end_search(w);
                    return t;
                }
                for (int i = 0; i < CREW_SPIN_PAUSES; i++)
                    crew__cpu_relax();
            } while (now_ns() < deadline && !atomic_load_explicit(&rt->stop, memory_order_relaxed));
        }
        crew__idle_park(w);
    }
}

void *crew__worker_main(void *arg)
{
    crew__worker_t *w = arg;
    char name[16];
    snprintf(name, sizeof name, "crew-w%u", w->index);
    pthread_setname_np(pthread_self(), name);
    crew__worker_set_self(w);
    crew__fiber_init_thread(&w->sched_fiber);
    int rc = crew__overflow_thread_init(w);
    crew_task_t **seen = calloc(2 * (size_t)w->rt->nworkers, sizeof *seen);
    if (!rc && !seen)
        rc = -ENOMEM;
    /* Tell crew_rt_create how the start went; it waits for every worker, so
     * that a runtime it returns has all its threads set up, and a failure
     * here becomes its error instead of a crash later. */
    crew__worker_started(w->rt, rc);
    if (rc) {
        free(seen);
        crew__overflow_thread_fini(w);
        crew__worker_set_self(NULL);
        return NULL;
    }
    for (;;) {
        crew_task_t *t = crew__sched_next_local(w);
        if (!t)
            t = find_work(w, seen);
        if (!t)
            break;
        crew__sched_switch(w, NULL, t);
    }
    free(seen);
    crew__stack_cache_flush(&w->rt->stacks, &w->stacks);
    crew__overflow_thread_fini(w);
    crew__worker_set_self(NULL);
    return NULL;
}
