/* Runtimes: create, destroy, crew_run, and metrics.
 *
 * Shutdown (crew_rt_destroy):
 *  1. Set shutdown (spawns from tasks now fail) and close the injection
 *     queue (spawns from outside fail).
 *  2. Wait until no task is live. The count is the workers' spawn counters
 *     plus the injection queue's accepted count, minus the workers' exit
 *     counters. It is read exits first, then spawns: a task's spawn happens
 *     before its exit, so any exit read implies its spawn is read too, and the
 *     difference can only over-estimate. It reaches 0 only when no task runs,
 *     so no task can spawn again (and outside spawns are refused).
 *  3. Workers that go to sleep after shutdown was set wake the destroyer
 *     (idle.c), which re-counts; a seq_cst fence on each side orders the
 *     worker's last exit count against its read of shutdown.
 *  4. Wait for threads outside the runtime that pushed a task (a wake from
 *     another runtime's worker, a crew_rt_spawn) to finish touching it.
 *  5. Stop the workers, join them, free everything. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>

#include "alloc.h"
#include "executor.h"
#include "futex.h"
#include "park.h"
#include "scheduler.h"

#include <crew/signal.h>

void crew_rt_opts_init(crew_rt_opts_t *opts)
{
    if (opts) {
        crew_rt_opts_t d = CREW_RT_OPTS_INIT;
        *opts = d;
    }
}

static int default_workers(unsigned *out)
{
    const char *env = getenv("CREW_WORKERS");
    if (env && *env) {
        char *end;
        unsigned long n = strtoul(env, &end, 10);
        if (*end || n == 0 || n > CREW_MAX_WORKERS)
            return -EINVAL;
        *out = (unsigned)n;
        return 0;
    }
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = 1;
    *out = (unsigned)n > CREW_MAX_WORKERS ? CREW_MAX_WORKERS : (unsigned)n;
    return 0;
}

static int check_opts(const crew_rt_opts_t *o, unsigned *workers, size_t *stack)
{
    *stack = CREW_DEFAULT_STACK_SIZE;
    if (o) {
        if (o->size != sizeof *o)
            return -EINVAL;
        for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++)
            if (o->reserved[i])
                return -EINVAL;
        if (o->flags & ~(unsigned)(CREW_RT_NO_OVERFLOW_HANDLER | CREW_RT_STOP_ON_SIGNAL))
            return -EINVAL;
        if (o->workers > CREW_MAX_WORKERS)
            return -EINVAL;
        if (o->stack_size) {
            if (o->stack_size < CREW_MIN_STACK_SIZE || o->stack_size > CREW_MAX_STACK_SIZE)
                return -EINVAL;
            *stack = o->stack_size;
        }
        if (o->workers) {
            *workers = o->workers;
            return 0;
        }
    }
    return default_workers(workers);
}

static void free_workers(crew_rt_t *rt, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        crew__free(rt->workers[i], sizeof *rt->workers[i], CREW_CACHELINE);
}

static void rt_free(crew_rt_t *rt)
{
    free_workers(rt, rt->nworkers);
    crew__free(rt->workers, rt->nworkers * sizeof *rt->workers, _Alignof(crew__worker_t *));
    crew__free(rt->sleepers, rt->nworkers * sizeof *rt->sleepers, _Alignof(unsigned));
    crew__stack_pool_destroy(&rt->stacks);
    crew__registry_destroy(rt);
    crew__inject_destroy(&rt->inject);
    crew__timer_fini(&rt->reactor);
    pthread_mutex_destroy(&rt->sleep_lock);
    if (!(rt->flags & CREW_RT_NO_OVERFLOW_HANDLER))
        crew__overflow_uninstall();
    crew__free(rt, sizeof *rt, CREW_CACHELINE);
}

/* Stop and join the first n workers (all have been started). */
static void stop_workers(crew_rt_t *rt, unsigned n)
{
    atomic_store_explicit(&rt->stop, true, memory_order_release);
    crew__idle_wake_all(rt);
    for (unsigned i = 0; i < n; i++)
        pthread_join(rt->workers[i]->thread, NULL);
}

int crew_rt_create(const crew_rt_opts_t *opts, crew_rt_t **out)
{
    unsigned nw;
    size_t stack;
    if (!out)
        return -EINVAL;
    int rc = check_opts(opts, &nw, &stack);
    if (rc)
        return rc;

    crew_rt_t *rt = crew__zalloc(sizeof *rt, CREW_CACHELINE);
    if (!rt)
        return -ENOMEM;
    rt->nworkers = nw;
    rt->flags = opts ? opts->flags : 0;
    rt->default_cls = crew__stack_class(stack);
    rt->default_stack = crew__stack_class_size(rt->default_cls);
    rt->workers = crew__zalloc(nw * sizeof *rt->workers, _Alignof(crew__worker_t *));
    rt->sleepers = crew__zalloc(nw * sizeof *rt->sleepers, _Alignof(unsigned));
    if (!rt->workers || !rt->sleepers || crew__registry_init(rt)) {
        crew__registry_destroy(rt);
        crew__free(rt->workers, nw * sizeof *rt->workers, _Alignof(crew__worker_t *));
        crew__free(rt->sleepers, nw * sizeof *rt->sleepers, _Alignof(unsigned));
        crew__free(rt, sizeof *rt, CREW_CACHELINE);
        return -ENOMEM;
    }
    pthread_mutex_init(&rt->sleep_lock, NULL);
    crew__inject_init(&rt->inject);
    crew__stack_pool_init(&rt->stacks);
    crew__idle_init(rt);
    crew__signal_init(rt);
    if ((rc = crew__timer_init(&rt->reactor, rt)) != 0) {
        rt->flags |= CREW_RT_NO_OVERFLOW_HANDLER;
        rt->nworkers = 0;
        rt_free(rt);
        return rc;
    }
    if (!(rt->flags & CREW_RT_NO_OVERFLOW_HANDLER) && (rc = crew__overflow_install()) != 0) {
        rt->flags |= CREW_RT_NO_OVERFLOW_HANDLER;
        rt->nworkers = 0;
        rt_free(rt);
        return rc;
    }
    for (unsigned i = 0; i < nw; i++) {
        crew__worker_t *w = crew__zalloc(sizeof *w, CREW_CACHELINE);
        if (!w) {
            free_workers(rt, i);
            rt->nworkers = 0;
            rt_free(rt);
            return -ENOMEM;
        }
        crew__runq_init(&w->runq, 0);
        w->rt = rt;
        w->index = i;
        w->rng = 0x9E3779B97F4A7C15ull * (i + 1);
        rt->workers[i] = w;
    }

    /* Workers take only the signals the kernel raises synchronously (a fault
     * in a task must reach the overflow handler); everything else goes to
     * threads the application controls. */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGTRAP);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < nw; i++) {
        rc = pthread_create(&rt->workers[i]->thread, NULL, crew__worker_main, rt->workers[i]);
        if (rc) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            stop_workers(rt, i);
            rt_free(rt);
            return -EAGAIN;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Acquire: pairs with crew__worker_started's release. */
    uint32_t n;
    while ((n = atomic_load_explicit(&rt->started, memory_order_acquire)) < nw)
        crew__futex_wait(&rt->started, n);
    rc = atomic_load_explicit(&rt->start_error, memory_order_relaxed);
    /* After the signal mask is back: the reactor is the thread that may take
     * signals (workers block them). */
    if (!rc)
        rc = crew__reactor_start(&rt->reactor);
    if (rc) {
        stop_workers(rt, nw);
        rt_free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

void crew__worker_started(crew_rt_t *rt, int rc)
{
    if (rc) {
        int zero = 0;
        atomic_compare_exchange_strong_explicit(&rt->start_error, &zero, rc, memory_order_relaxed,
                                                memory_order_relaxed);
    }
    /* Release: publishes start_error and the worker's setup. */
    atomic_fetch_add_explicit(&rt->started, 1, memory_order_release);
    crew__futex_wake(&rt->started, INT_MAX);
}

static uint64_t live_tasks(crew_rt_t *rt)
{
    uint64_t exited = 0, spawned;
    for (unsigned i = 0; i < rt->nworkers; i++)
        exited += crew__counter_read(&rt->workers[i]->exited);
    /* The queue is closed: accepted no longer changes. The lock orders this
     * read after the last accepted push. */
    pthread_mutex_lock(&rt->inject.lock);
    spawned = atomic_load_explicit(&rt->inject.accepted, memory_order_relaxed);
    pthread_mutex_unlock(&rt->inject.lock);
    for (unsigned i = 0; i < rt->nworkers; i++)
        spawned += crew__counter_read(&rt->workers[i]->spawned);
    CREW_ASSERT(spawned >= exited);
    return spawned - exited;
}

/* How often a shutdown past its grace period cancels again: a task spawned
 * just before the shutdown flag was seen joins the registry after a sweep. */
#define CREW_SHUTDOWN_RECANCEL_NS (10 * CREW_MS)

/* Steps 1-5 of the shutdown (top of file); from cancel_at on, every live
 * task is cancelled (INT64_MAX: never). */
static int rt_shutdown(crew_rt_t *rt, int64_t cancel_at)
{
    if (!rt)
        return -EINVAL;
    crew__worker_t *self = crew__worker_self();
    if (self && self->rt == rt)
        return -EDEADLK;
    if (atomic_exchange_explicit(&rt->destroying, true, memory_order_acq_rel))
        return -EBUSY;
    atomic_store_explicit(&rt->shutdown, true, memory_order_seq_cst);
    crew__inject_close(&rt->inject);
    for (;;) {
        uint32_t seq = atomic_load_explicit(&rt->idle_seq, memory_order_acquire);
        /* Pairs with the fence in crew__idle_park (step 3). */
        atomic_thread_fence(memory_order_seq_cst);
        if (live_tasks(rt) == 0)
            break;
        int64_t now = cancel_at == INT64_MAX ? 0 : crew_now();
        if (cancel_at == INT64_MAX) {
            crew__futex_wait(&rt->idle_seq, seq);
        } else if (now < cancel_at) {
            crew__futex_wait_ns(&rt->idle_seq, seq, cancel_at - now);
        } else {
            /* seq_cst: before the sweep (registry.h). */
            atomic_store_explicit(&rt->cancel_all, true, memory_order_seq_cst);
            crew__registry_cancel(rt, 0);
            crew__futex_wait_ns(&rt->idle_seq, seq, CREW_SHUTDOWN_RECANCEL_NS);
        }
    }
    /* A thread outside the runtime may still be inside a call on it
     * (crew__rt_enter), or between its push of a task that has since
     * finished and the end of its wake (scheduler.c, crew__sched_wake_batch):
     * a few instructions, so spinning is fine. seq_cst: crew__rt_enter. */
    while (atomic_load_explicit(&rt->outside_pushers, memory_order_seq_cst))
        sched_yield();
    crew__signal_release_all(rt);
    crew__timer_drop_callbacks(&rt->reactor);
    crew__executor_rt_fini(rt);
    /* Workers before the reactor: a parking worker may still kick it
     * (timer.c rule 3). */
    stop_workers(rt, rt->nworkers);
    crew__reactor_stop(&rt->reactor);
    rt_free(rt);
    return 0;
}

int crew_rt_destroy(crew_rt_t *rt)
{
    return rt_shutdown(rt, INT64_MAX);
}

int crew_rt_shutdown(crew_rt_t *rt, int64_t grace_ns)
{
    if (grace_ns < 0)
        return -EINVAL;
    int64_t now = crew_now();
    return rt_shutdown(rt, grace_ns > INT64_MAX - 1 - now ? INT64_MAX - 1 : now + grace_ns);
}

/* crew_run's SIGINT/SIGTERM callback (CREW_RT_STOP_ON_SIGNAL), a task. */
static void *stop_on_signal(void *arg)
{
    crew_rt_t *rt = crew_rt_current();
    /* seq_cst: pairs with crew_run's store of main_id and load of the flag,
     * so a signal that comes before main_id is set is acted on by crew_run. */
    atomic_store_explicit(&rt->stopped_by_signal, true, memory_order_seq_cst);
    /* The next Ctrl-C gets the default action (kills), as asyncio.run does
     * for a second one. */
    crew_signal_remove(rt, SIGINT);
    crew_signal_remove(rt, SIGTERM);
    uint64_t id = atomic_load_explicit(&rt->main_id, memory_order_seq_cst);
    if (id)
        crew__registry_cancel(rt, id);
    return NULL;
}

int crew_run(crew_fn_t fn, void *arg, const crew_rt_opts_t *opts, void **result)
{
    if (!fn)
        return -EINVAL;
    if (crew__worker_self())
        return -EDEADLK;
    crew_rt_t *rt;
    int rc = crew_rt_create(opts, &rt);
    if (rc)
        return rc;
    /* Before the main task exists: a signal must never find SIGINT's
     * default action while main runs. */
    if (rt->flags & CREW_RT_STOP_ON_SIGNAL) {
        if ((rc = crew_signal_add(rt, SIGINT, stop_on_signal, NULL)) == 0)
            rc = crew_signal_add(rt, SIGTERM, stop_on_signal, NULL);
    }
    crew_task_t *main_task = NULL;
    if (rc == 0)
        rc = crew__spawn_registered(rt, fn, arg, &main_task);
    if (main_task) {
        atomic_store_explicit(&rt->main_id, main_task->id, memory_order_seq_cst);
        /* A signal that came before main_id was set. */
        if (atomic_load_explicit(&rt->stopped_by_signal, memory_order_seq_cst))
            crew_task_cancel(main_task);
        rc = crew_join(main_task, result);
    }
    if (atomic_load_explicit(&rt->stopped_by_signal, memory_order_relaxed))
        rc = -EINTR;
    /* As asyncio.run: tasks the main task left running are cancelled. */
    int drc = crew_rt_shutdown(rt, 0);
    return rc ? rc : drc;
}

crew_rt_t *crew_rt_current(void)
{
    crew__worker_t *w = crew__worker_self();
    return w ? w->rt : NULL;
}

unsigned crew_rt_workers(const crew_rt_t *rt)
{
    return rt ? rt->nworkers : 0;
}

int crew_worker_index(void)
{
    crew__worker_t *w = crew__worker_self();
    return w && w->current ? (int)w->index : -1;
}

int crew_rt_metrics(crew_rt_t *rt, crew_metrics_t *out)
{
    if (!rt || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    out->workers = rt->nworkers;
    out->guard_mode = (crew_guard_mode_t)atomic_load_explicit(&rt->stacks.last_mode,
                                                              memory_order_relaxed);
    uint64_t spawned = atomic_load_explicit(&rt->inject.accepted, memory_order_relaxed), exited = 0;
    for (unsigned i = 0; i < rt->nworkers; i++) {
        exited += crew__counter_read(&rt->workers[i]->exited);
        spawned += crew__counter_read(&rt->workers[i]->spawned);
    }
    out->tasks_live = spawned > exited ? spawned - exited : 0;
    out->injection_depth = crew__inject_len(&rt->inject);
    out->stacks_mapped = atomic_load_explicit(&rt->stacks.stacks_mapped, memory_order_relaxed);
    out->stack_bytes_mapped = atomic_load_explicit(&rt->stacks.bytes_mapped, memory_order_relaxed);
    out->guard_pages_mprotect = crew__stack_mprotect_guards();
    out->reactor_cpu_ns = crew__reactor_cpu_ns(&rt->reactor);
    out->reactor_fd_polls = atomic_load_explicit(&rt->reactor.fds.polls, memory_order_relaxed);
    out->reactor_fd_events = atomic_load_explicit(&rt->reactor.fds.events, memory_order_relaxed);
    out->timers_fired_workers = crew__timer_fired(&rt->reactor, true);
    out->timers_fired_reactor = crew__timer_fired(&rt->reactor, false);
    return 0;
}

int crew_rt_worker_metrics(crew_rt_t *rt, unsigned index, crew_worker_metrics_t *out)
{
    if (!rt || !out || index >= rt->nworkers)
        return -EINVAL;
    crew__worker_t *w = rt->workers[index];
    out->polls = crew__counter_read(&w->polls);
    out->spawns = crew__counter_read(&w->spawned);
    out->steals = crew__counter_read(&w->steals);
    out->steal_ops = crew__counter_read(&w->steal_ops);
    out->global_pops = crew__counter_read(&w->global_pops);
    out->overflows = crew__counter_read(&w->overflows);
    out->parks = crew__counter_read(&w->parks);
    out->wakeups = crew__counter_read(&w->wakeups);
    out->queue_depth = crew__runq_len(&w->runq) +
                       (atomic_load_explicit(&w->next, memory_order_relaxed) != NULL);
    return 0;
}

static const char *guard_name(crew_guard_mode_t m)
{
    switch (m) {
    case CREW_GUARD_MADVISE:
        return "madvise";
    case CREW_GUARD_MPROTECT:
        return "mprotect";
    case CREW_GUARD_CANARY:
        return "canary";
    }
    return "?";
}

int crew_rt_metrics_print(crew_rt_t *rt, FILE *f)
{
    crew_metrics_t m;
    if (!f || crew_rt_metrics(rt, &m))
        return -EINVAL;
    fprintf(f,
            "crew runtime: workers=%u guard=%s tasks_live=%llu injection_depth=%llu "
            "stacks_mapped=%llu stack_bytes_mapped=%llu guard_pages_mprotect=%llu "
            "reactor_cpu_ns=%llu reactor_fd_polls=%llu reactor_fd_events=%llu "
            "timers_fired_workers=%llu timers_fired_reactor=%llu\n",
            m.workers, guard_name(m.guard_mode), (unsigned long long)m.tasks_live,
            (unsigned long long)m.injection_depth, (unsigned long long)m.stacks_mapped,
            (unsigned long long)m.stack_bytes_mapped, (unsigned long long)m.guard_pages_mprotect,
            (unsigned long long)m.reactor_cpu_ns, (unsigned long long)m.reactor_fd_polls,
            (unsigned long long)m.reactor_fd_events, (unsigned long long)m.timers_fired_workers,
            (unsigned long long)m.timers_fired_reactor);
    for (unsigned i = 0; i < m.workers; i++) {
        crew_worker_metrics_t w;
        crew_rt_worker_metrics(rt, i, &w);
        fprintf(f,
                "  crew-w%u: polls=%llu spawns=%llu steals=%llu steal_ops=%llu global_pops=%llu "
                "overflows=%llu parks=%llu wakeups=%llu queue_depth=%llu\n",
                i, (unsigned long long)w.polls, (unsigned long long)w.spawns,
                (unsigned long long)w.steals, (unsigned long long)w.steal_ops,
                (unsigned long long)w.global_pops, (unsigned long long)w.overflows,
                (unsigned long long)w.parks, (unsigned long long)w.wakeups,
                (unsigned long long)w.queue_depth);
    }
    return ferror(f) ? -EIO : 0;
}
