/* Signals: crew_signal_add / crew_signal_remove / crew_signal_wait.
 *
 * The process-wide handler (on_signal) is async-signal-safe: it bumps the
 * signal's pending counter and writes to the owning runtime's reactor eventfd
 * (both atomics and write(2)). The reactor's kick callback then calls
 * crew__signal_dispatch, which turns the counters into wakes and callback
 * tasks. Which runtime has which signal is decided under one process-wide
 * mutex (adding and removing are rare); the handler itself takes no lock.
 *
 * Removing a signal restores the old handler, then waits until no handler
 * invocation is still running (sig_active), so none can write to the fd of
 * a runtime that is about to close it. */
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <crew/signal.h>

#include "park.h"
#include "scheduler.h"
#include "signals.h"

struct crew__sig_wait {
    crew__waiter_t w;
    const sigset_t *set;
    int got;                /* Signal delivered by the winning wake. */
    crew__sig_wait_t *next;
    bool linked;
};

/* Process-wide: under sig_mu. */
static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static crew_rt_t *sig_owner[NSIG];
static struct sigaction sig_old[NSIG];
/* Read by the handler: the owner's reactor eventfd (-1: none). */
static _Atomic int sig_fd[NSIG];
static _Atomic uint32_t sig_pending[NSIG];
/* Handler invocations in progress (see the top of the file). */
static _Atomic uint32_t sig_active;

static void on_signal(int signo)
{
    int saved = errno;
    /* seq_cst: the remover's store of fd = -1 and its read of sig_active are
     * seq_cst too, so either it sees us active or we see -1. */
    atomic_fetch_add_explicit(&sig_active, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&sig_pending[signo], 1, memory_order_relaxed);
    int fd = atomic_load_explicit(&sig_fd[signo], memory_order_seq_cst);
    if (fd >= 0) {
        uint64_t one = 1;
        (void)!write(fd, &one, sizeof one);
    }
    atomic_fetch_sub_explicit(&sig_active, 1, memory_order_release);
    errno = saved;
}

static bool takeable(int signo)
{
    if (signo <= 0 || signo >= NSIG)
        return false;
    switch (signo) {
    case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS:
    case SIGFPE: case SIGILL: case SIGTRAP: case SIGABRT:
        return false;
    }
    return true;
}

static void init_fds(void)
{
    for (int i = 0; i < NSIG; i++)
        atomic_init(&sig_fd[i], -1);
}

void crew__signal_init(crew_rt_t *rt)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_fds);
    sigemptyset(&rt->sig.owned);
    sigemptyset(&rt->sig.unclaimed);
}

static void bump_mask(crew_rt_t *rt)
{
    /* Release: the reactor reads owned (under the spin lock) after it sees
     * the new generation. */
    atomic_fetch_add_explicit(&rt->sig.mask_gen, 1, memory_order_release);
    crew__reactor_kick(&rt->reactor);
}

int crew_signal_add(crew_rt_t *rt, int signo, crew_fn_t fn, void *arg)
{
    if (!rt || !takeable(signo))
        return -EINVAL;
    if (atomic_load_explicit(&rt->shutdown, memory_order_relaxed))
        return -ESHUTDOWN;
    crew__sigstate_t *s = &rt->sig;
    pthread_mutex_lock(&sig_mu);
    if (sig_owner[signo] && sig_owner[signo] != rt) {
        pthread_mutex_unlock(&sig_mu);
        return -EBUSY;
    }
    crew__spin_lock(&s->lock);
    s->fn[signo] = fn;
    s->arg[signo] = arg;
    crew__spin_unlock(&s->lock);
    if (sig_owner[signo] == rt) {
        pthread_mutex_unlock(&sig_mu);
        return 0;
    }
    atomic_store_explicit(&sig_fd[signo], rt->reactor.kick_fd, memory_order_seq_cst);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);
    /* Interrupted syscalls of other threads restart: no one sees EINTR
     * because crew took a signal. */
    sa.sa_flags = SA_RESTART;
    if (sigaction(signo, &sa, &sig_old[signo]) < 0) {
        int rc = -errno;
        atomic_store_explicit(&sig_fd[signo], -1, memory_order_seq_cst);
        pthread_mutex_unlock(&sig_mu);
        return rc;
    }
    sig_owner[signo] = rt;
    crew__spin_lock(&s->lock);
    sigaddset(&s->owned, signo);
    crew__spin_unlock(&s->lock);
    pthread_mutex_unlock(&sig_mu);
    bump_mask(rt);
    return 0;
}

/* Wake waiters that can no longer get any signal (rt's lock held). */
static void wake_orphans(crew__sigstate_t *s)
{
    crew__sig_wait_t **pp = &s->waiters;
    while (*pp) {
        crew__sig_wait_t *wt = *pp;
        bool any = false;
        for (int i = 1; i < NSIG && !any; i++)
            any = sigismember(wt->set, i) == 1 && sigismember(&s->owned, i) == 1;
        if (any) {
            pp = &wt->next;
            continue;
        }
        *pp = wt->next;
        wt->linked = false;
        crew__waiter_wake(&wt->w, CREW_WAKE_CLOSED);
    }
}

/* Give signo back (sig_mu held, rt owns it). */
static void release_locked(crew_rt_t *rt, int signo)
{
    sigaction(signo, &sig_old[signo], NULL);
    atomic_store_explicit(&sig_fd[signo], -1, memory_order_seq_cst);
    /* A handler that read the fd before the store may still write to it. */
    while (atomic_load_explicit(&sig_active, memory_order_seq_cst))
        sched_yield();
    atomic_store_explicit(&sig_pending[signo], 0, memory_order_relaxed);
    sig_owner[signo] = NULL;
    crew__sigstate_t *s = &rt->sig;
    crew__spin_lock(&s->lock);
    sigdelset(&s->owned, signo);
    sigdelset(&s->unclaimed, signo);
    s->fn[signo] = NULL;
    wake_orphans(s);
    crew__spin_unlock(&s->lock);
}

int crew_signal_remove(crew_rt_t *rt, int signo)
{
    if (!rt || signo <= 0 || signo >= NSIG)
        return -EINVAL;
    pthread_mutex_lock(&sig_mu);
    if (sig_owner[signo] != rt) {
        pthread_mutex_unlock(&sig_mu);
        return -ENOENT;
    }
    release_locked(rt, signo);
    pthread_mutex_unlock(&sig_mu);
    bump_mask(rt);
    return 0;
}

void crew__signal_release_all(crew_rt_t *rt)
{
    pthread_mutex_lock(&sig_mu);
    for (int i = 1; i < NSIG; i++)
        if (sig_owner[i] == rt)
            release_locked(rt, i);
    pthread_mutex_unlock(&sig_mu);
}

/* The lowest signal of set that is also in of, or 0. */
static int first_common(const sigset_t *set, const sigset_t *of)
{
    for (int i = 1; i < NSIG; i++)
        if (sigismember(set, i) == 1 && sigismember(of, i) == 1)
            return i;
    return 0;
}

int crew_signal_wait(const int *signos, size_t n, int *signo)
{
    if (!signos || !n || !signo)
        return -EINVAL;
    crew_task_t *self = crew__task_self();
    if (!self)
        return -EPERM;
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < n; i++) {
        if (signos[i] <= 0 || signos[i] >= NSIG)
            return -EINVAL;
        sigaddset(&set, signos[i]);
    }
    crew__sigstate_t *s = &self->rt->sig;
    crew__sig_wait_t wt = { .set = &set };
    int rc = crew__waiter_prepare(&wt.w);
    if (rc)
        return rc;
    crew__spin_lock(&s->lock);
    for (size_t i = 0; i < n; i++)
        if (sigismember(&s->owned, signos[i]) != 1) {
            crew__spin_unlock(&s->lock);
            return -EINVAL;
        }
    int got = first_common(&set, &s->unclaimed);
    if (got) {
        sigdelset(&s->unclaimed, got);
        crew__spin_unlock(&s->lock);
        *signo = got;
        return 0;
    }
    wt.next = s->waiters;
    s->waiters = &wt;
    wt.linked = true;
    crew__spin_unlock(&s->lock);

    int cause = crew__waiter_wait(&wt.w);
    if (cause == CREW_WAKE_READY) {
        *signo = wt.got;
        return 0;
    }
    crew__spin_lock(&s->lock);
    if (wt.linked)
        for (crew__sig_wait_t **pp = &s->waiters; *pp; pp = &(*pp)->next)
            if (*pp == &wt) {
                *pp = wt.next;
                break;
            }
    crew__spin_unlock(&s->lock);
    return cause == CREW_WAKE_CLOSED ? -ENOENT : crew__wake_status(self, cause);
}

void crew__signal_reactor_start(crew_rt_t *rt)
{
    pthread_sigmask(SIG_SETMASK, NULL, &rt->sig.base_mask);
}

/* Deliver signo to rt's waiters and callback (reactor thread). */
static void deliver(crew_rt_t *rt, int signo)
{
    crew__sigstate_t *s = &rt->sig;
    crew__wake_batch_t b = { 0 };
    bool taken = false;
    crew__spin_lock(&s->lock);
    crew__sig_wait_t **pp = &s->waiters;
    while (*pp) {
        crew__sig_wait_t *wt = *pp;
        if (sigismember(wt->set, signo) != 1) {
            pp = &wt->next;
            continue;
        }
        *pp = wt->next;
        wt->linked = false;
        wt->got = signo;
        taken |= crew__wake_batch_claim(&b, &wt->w, CREW_WAKE_READY);
    }
    crew_fn_t fn = s->fn[signo];
    void *arg = s->arg[signo];
    if (!taken && !fn)
        sigaddset(&s->unclaimed, signo);
    crew__spin_unlock(&s->lock);
    crew__wake_batch_flush(&b, rt, true);
    crew_task_t *t;
    /* Fails only when the runtime shuts down or memory runs out; a
     * coalescable signal is then dropped, as the kernel may drop it. */
    if (fn && crew_rt_spawn(rt, fn, arg, NULL, &t) == 0)
        crew_detach(t);
}

void crew__signal_dispatch(crew_rt_t *rt)
{
    crew__sigstate_t *s = &rt->sig;
    /* Acquire: pairs with bump_mask's release. */
    uint32_t gen = atomic_load_explicit(&s->mask_gen, memory_order_acquire);
    if (gen != s->applied_gen) {
        s->applied_gen = gen;
        sigset_t m = s->base_mask;
        crew__spin_lock(&s->lock);
        for (int i = 1; i < NSIG; i++)
            if (sigismember(&s->owned, i) == 1)
                sigdelset(&m, i);
        crew__spin_unlock(&s->lock);
        pthread_sigmask(SIG_SETMASK, &m, NULL);
    }
    for (int i = 1; i < NSIG; i++) {
        /* Most signals are never pending: one load each. Only the owner's
         * reactor consumes a signal's counter. */
        if (!atomic_load_explicit(&sig_pending[i], memory_order_relaxed))
            continue;
        crew__spin_lock(&s->lock);
        bool mine = sigismember(&s->owned, i) == 1;
        crew__spin_unlock(&s->lock);
        if (mine && atomic_exchange_explicit(&sig_pending[i], 0, memory_order_acquire))
            deliver(rt, i);
    }
}
