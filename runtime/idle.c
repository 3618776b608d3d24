/* Idle workers: searching, sleeping and waking (scheduler.c rule 6).
 *
 * State: rt->idle_state packs the number of searching workers (low 16 bits)
 * and of unparked, i.e. awake, workers (high 16 bits); rt->sleepers lists the
 * parked workers under rt->sleep_lock.
 *  1. A worker out of local work becomes a searcher, unless half of the awake
 *     workers already search [each searcher costs a core; more than half add
 *     contention on the victims' queues and find nothing more].
 *  2. A searcher steals and checks the injection queue for up to
 *     CREW_SPIN_NS before it sleeps [waking a sleeping thread costs ~13 us of
 *     CPU in the waker and ~80 us of latency on these machines; most gaps
 *     between bursts of work are shorter than the spin].
 *  3. Sleeping: under sleep_lock the worker subtracts itself from the awake
 *     (and searching) counts with a seq_cst RMW and pushes itself on the
 *     sleepers stack. If it was the last searcher, it then re-checks every
 *     queue, and if work is there it notifies (possibly waking itself).
 *  4. Notifying, after making work visible: if a worker is searching, or
 *     none sleeps, do nothing [the searcher will find it; rule 3 makes the
 *     last searcher look again before it sleeps]. Otherwise pop one sleeper,
 *     count it as awake and searching [so that the next notify does not wake
 *     a second one for the same work: no thundering herd], and wake it.
 *  5. Lost wakeups: for work pushed from outside the workers (the injection
 *     queue) the notifier issues a seq_cst fence between its push and its
 *     read of idle_state, and the last searcher's seq_cst RMW comes before its
 *     re-check: by the fences' total order one of them sees the other. Work a
 *     worker pushes into its own queues needs no fence: that worker is awake
 *     and runs it eventually; the notify only adds parallelism.
 *  6. Inboxes (scheduler.c rule 8): a pusher CASes the task onto a worker's
 *     inbox, then reads the worker's parked flag; a parking worker sets the
 *     flag (under sleep_lock, with its entry in the sleepers stack), then
 *     reads its inbox. All four seq_cst: one of them sees the other, so
 *     either the pusher wakes that very worker (crew__idle_wake_worker) or
 *     the worker sees its inbox and wakes itself.
 *  7. Timers: awake workers fire them (scheduler.c rule 9); the worker that
 *     leaves the awake count last hands them to the reactor (timer.c
 *     rule 3). */
#include <string.h>

#include "futex.h"
#include "probes.h"
#include "scheduler.h"

#define SEARCH_ONE 1u
#define AWAKE_ONE (1u << 16)
#define SEARCHING(st) CREW_IDLE_SEARCHING(st)
#define AWAKE(st) CREW_IDLE_AWAKE(st)

void crew__idle_init(crew_rt_t *rt)
{
    atomic_init(&rt->idle_state, rt->nworkers * AWAKE_ONE);
    rt->nsleepers = 0;
}

bool crew__idle_begin_search(crew__worker_t *w)
{
    if (w->searching)
        return true;
    uint32_t st = atomic_load_explicit(&w->rt->idle_state, memory_order_relaxed);
    if (2 * SEARCHING(st) >= AWAKE(st))
        return false;
    atomic_fetch_add_explicit(&w->rt->idle_state, SEARCH_ONE, memory_order_seq_cst);
    w->searching = true;
    return true;
}

void crew__idle_end_search(crew__worker_t *w)
{
    if (!w->searching)
        return;
    w->searching = false;
    uint32_t prev = atomic_fetch_sub_explicit(&w->rt->idle_state, SEARCH_ONE, memory_order_seq_cst);
    /* The last searcher found work: there may be more, so let another worker
     * take over the search (Tokio's transition_worker_from_searching). */
    if (SEARCHING(prev) == 1)
        crew__idle_notify(w->rt, false);
}

bool crew__idle_work_pending(crew_rt_t *rt)
{
    if (crew__inject_len(&rt->inject))
        return true;
    for (unsigned i = 0; i < rt->nworkers; i++) {
        crew__worker_t *v = rt->workers[i];
        if (crew__runq_len(&v->runq) || atomic_load_explicit(&v->next, memory_order_relaxed) ||
            atomic_load_explicit(&v->inbox, memory_order_relaxed))
            return true;
    }
    return false;
}

/* Take v, parked, out of the sleepers and wake it, counted awake and
 * searching (rule 4). Called with sleep_lock held; releases it. */
static void wake_sleeper(crew_rt_t *rt, crew__worker_t *v)
{
    unsigned i = rt->nsleepers;
    while (rt->sleepers[--i] != v->index)
        ;
    memmove(&rt->sleepers[i], &rt->sleepers[i + 1], (rt->nsleepers - 1 - i) * sizeof *rt->sleepers);
    rt->nsleepers--;
    atomic_store_explicit(&v->parked, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&rt->idle_state, SEARCH_ONE + AWAKE_ONE, memory_order_seq_cst);
    pthread_mutex_unlock(&rt->sleep_lock);
    /* Release: pairs with the sleeper's acquire load of its futex word. */
    atomic_store_explicit(&v->futex, 1, memory_order_release);
    crew__futex_wake(&v->futex, 1);
}

void crew__idle_notify_slow(crew_rt_t *rt, bool strict)
{
    uint32_t st;
    if (strict) {
        /* Rule 5: orders the caller's push before the read below. */
        atomic_thread_fence(memory_order_seq_cst);
        st = atomic_load_explicit(&rt->idle_state, memory_order_seq_cst);
    } else {
        st = atomic_load_explicit(&rt->idle_state, memory_order_relaxed);
    }
    if (SEARCHING(st) || AWAKE(st) >= rt->nworkers)
        return;
    pthread_mutex_lock(&rt->sleep_lock);
    st = atomic_load_explicit(&rt->idle_state, memory_order_relaxed);
    if (SEARCHING(st) || rt->nsleepers == 0) {
        pthread_mutex_unlock(&rt->sleep_lock);
        return;
    }
    wake_sleeper(rt, rt->workers[rt->sleepers[rt->nsleepers - 1]]);
}

void crew__idle_wake_worker(crew_rt_t *rt, crew__worker_t *v)
{
    pthread_mutex_lock(&rt->sleep_lock);
    /* Not parked any more: whoever woke it made it search, and a searching
     * worker's first look is its own queues, inbox included. */
    if (!atomic_load_explicit(&v->parked, memory_order_relaxed)) {
        pthread_mutex_unlock(&rt->sleep_lock);
        return;
    }
    wake_sleeper(rt, v);
}

void crew__idle_wake_all(crew_rt_t *rt)
{
    pthread_mutex_lock(&rt->sleep_lock);
    while (rt->nsleepers) {
        crew__worker_t *v = rt->workers[rt->sleepers[--rt->nsleepers]];
        atomic_store_explicit(&v->parked, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&rt->idle_state, AWAKE_ONE, memory_order_relaxed);
        atomic_store_explicit(&v->futex, 1, memory_order_release);
        crew__futex_wake(&v->futex, 1);
    }
    pthread_mutex_unlock(&rt->sleep_lock);
}

void crew__idle_park(crew__worker_t *w)
{
    crew_rt_t *rt = w->rt;
    atomic_store_explicit(&w->futex, 0, memory_order_relaxed);

    pthread_mutex_lock(&rt->sleep_lock);
    uint32_t dec = AWAKE_ONE + (w->searching ? SEARCH_ONE : 0);
    uint32_t prev = atomic_fetch_sub_explicit(&rt->idle_state, dec, memory_order_seq_cst);
    bool last_searcher = w->searching && SEARCHING(prev) == 1;
    w->searching = false;
    rt->sleepers[rt->nsleepers++] = w->index;
    /* seq_cst: the store half of rule 6. */
    atomic_store_explicit(&w->parked, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&rt->sleep_lock);
    crew__counter_add(&w->parks, 1);
    CREW_PROBE1(worker_park, w->index);

    /* Pairs with the destroyer's fence after it sets shutdown: either it sees
     * our exit counters or we see shutdown and wake it (runtime.c). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&rt->shutdown, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&rt->idle_seq, 1, memory_order_release);
        crew__futex_wake(&rt->idle_seq, INT_MAX);
    }
    if (last_searcher && crew__idle_work_pending(rt))
        crew__idle_notify(rt, true);
    /* The last awake worker: nobody polls timers any more (rule 7). */
    if (AWAKE(prev) == 1)
        crew__timer_idle(&rt->reactor);
    /* seq_cst: the load half of rule 6. */
    if (atomic_load_explicit(&w->inbox, memory_order_seq_cst))
        crew__idle_wake_worker(rt, w);

    /* Acquire: pairs with the notifier's release store. stop is checked too:
     * a destroyer whose wake_all ran before we joined the sleepers set stop
     * before it, and our sleep_lock section above ordered us after it. */
    while (atomic_load_explicit(&w->futex, memory_order_acquire) == 0 &&
           !atomic_load_explicit(&rt->stop, memory_order_relaxed))
        crew__futex_wait(&w->futex, 0);
    /* The notifier counted us as searching (rule 4). */
    w->searching = !atomic_load_explicit(&rt->stop, memory_order_relaxed);
    crew__counter_add(&w->wakeups, 1);
    CREW_PROBE1(worker_unpark, w->index);
}
