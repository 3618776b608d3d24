/* Tasks: spawn, join, detach, exit, and the queries on a handle.
 *
 * Lifetime: a task holds two references, the handle's and the running
 * body's. crew_join/crew_detach drop the handle's; the body's is dropped once
 * the task has left its stack for good. The last drop frees the task.
 *
 * Join: join_state goes RUNNING -> DONE when the task finishes (an exchange,
 * which also tells the finishing task whether a joiner registered), or
 * RUNNING -> WAITING when a joiner registers first (a CAS under join_lock, so
 * that the two RMWs on one word are totally ordered and neither side misses
 * the other). The finishing task wakes a registered joiner under join_lock;
 * a joiner that stops waiting unregisters under the same lock, so the waker
 * never touches a waiter record after its owner returned (park.h rule 4). */
#include <string.h>

#include "alloc.h"
#include "park.h"
#include "probes.h"
#include "scheduler.h"

#if !defined(CREW_ASAN) && !defined(CREW_TSAN) && defined(__x86_64__)
/* Two cache lines: a million queued tasks cost 128 MB, and a spawn touches
 * two lines. Keep it so when adding fields. */
_Static_assert(sizeof(crew_task_t) <= 128, "crew_task_t grew past two cache lines");
#endif

/* Task ids are handed out in blocks so spawns on different workers do not
 * bounce one counter's cache line. */
#define CREW_ID_BLOCK 1024
static _Atomic uint64_t next_id_block = 1;

static uint64_t take_id(crew__worker_t *w)
{
    if (!w)
        return atomic_fetch_add_explicit(&next_id_block, 1, memory_order_relaxed);
    if (w->id_next == w->id_end) {
        w->id_next = atomic_fetch_add_explicit(&next_id_block, CREW_ID_BLOCK, memory_order_relaxed);
        w->id_end = w->id_next + CREW_ID_BLOCK;
    }
    return w->id_next++;
}

static int spawn_opts(crew_rt_t *rt, const crew_spawn_opts_t *o, int *cls)
{
    *cls = rt->default_cls;
    if (!o)
        return 0;
    if (o->size != sizeof *o)
        return -EINVAL;
    for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++)
        if (o->reserved[i])
            return -EINVAL;
    if (o->stack_size) {
        if (o->stack_size < CREW_MIN_STACK_SIZE || o->stack_size > CREW_MAX_STACK_SIZE)
            return -EINVAL;
        *cls = crew__stack_class(o->stack_size);
    }
    return 0;
}

static crew_task_t *task_new(crew__worker_t *w, crew_rt_t *rt, crew_fn_t fn, void *arg,
                             const crew_spawn_opts_t *o, int cls)
{
    crew_task_t *t = crew__alloc(sizeof *t, CREW_CACHELINE);
    if (!t)
        return NULL;
    t->stack = NULL;
    t->fn = fn;
    t->arg = arg;
    t->result = NULL;
    t->status = 0;
    atomic_init(&t->last_worker, 0);
    atomic_init(&t->off, 0);
    t->stack_cls = cls;
    t->rt = rt;
    t->qnext = NULL;
    atomic_init(&t->park, 0);
    atomic_init(&t->obs_state, CREW_TASK_RUNNABLE);
    t->post = CREW_POST_NONE;
    atomic_init(&t->started, 0);
    atomic_init(&t->refs, 2);
    atomic_init(&t->join_state, CREW_JOIN_RUNNING);
    atomic_init(&t->join_lock, 0);
    atomic_init(&t->handle_busy, 0);
    atomic_init(&t->cancelled, 0);
    t->shield = 0;
    t->scope = NULL;
    t->joiner = NULL;
    t->reg_shard = CREW_REG_NONE;
    t->id = take_id(w);
    t->name = NULL;
    if (o && o->name && o->name[0]) {
        t->name = crew__alloc(CREW_TASK_NAME_MAX, 1);
        if (!t->name) {
            crew__free(t, sizeof *t, CREW_CACHELINE);
            return NULL;
        }
        strncpy(t->name, o->name, CREW_TASK_NAME_MAX - 1);
        t->name[CREW_TASK_NAME_MAX - 1] = '\0';
    }
    return t;
}

static void task_free(crew_task_t *t)
{
    if (t->name)
        crew__free(t->name, CREW_TASK_NAME_MAX, 1);
    crew__free(t, sizeof *t, CREW_CACHELINE);
}

void crew__task_put(crew_task_t *t)
{
    /* A holder that sees the count at 1 is the last: no one can take a new
     * reference without one, so it frees without an RMW. The acquire (here,
     * or in the RMW's acq_rel) orders the other holder's writes before the
     * free. */
    if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1 ||
        atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        task_free(t);
}

/* What both spawns check and build: options, shutdown, the task itself.
 * w is the spawning worker, or NULL when spawning from outside rt. */
static int task_prepare(crew__worker_t *w, crew_rt_t *rt, crew_fn_t fn, void *arg,
                        const crew_spawn_opts_t *opts, crew_task_t **out)
{
    int cls, rc = spawn_opts(rt, opts, &cls);
    if (rc)
        return rc;
    if (atomic_load_explicit(&rt->shutdown, memory_order_relaxed))
        return -ESHUTDOWN;
    *out = task_new(w, rt, fn, arg, opts, cls);
    return *out ? 0 : -ENOMEM;
}

int crew_spawn(crew_fn_t fn, void *arg, const crew_spawn_opts_t *opts, crew_task_t **out)
{
    crew__worker_t *w = crew__worker_self();
    if (!fn || !out)
        return -EINVAL;
    if (!w || !w->current)
        return -EPERM;
    crew_task_t *t;
    int rc = task_prepare(w, w->rt, fn, arg, opts, &t);
    if (rc)
        return rc;
    /* Counted before the task can run (and exit): see live_tasks in runtime.c. */
    crew__counter_add(&w->spawned, 1);
    CREW_PROBE2(task_spawn, t->id, w->index);
    crew__sched_spawn(w, w->rt, t);
    *out = t;
    return 0;
}

/* crew_rt_spawn from outside rt; registered (registry.h) at once if reg. */
static int spawn_outside(crew_rt_t *rt, crew_fn_t fn, void *arg, const crew_spawn_opts_t *opts,
                         bool reg, crew_task_t **out)
{
    int rc = crew__rt_enter(rt);
    if (rc)
        return rc;
    crew_task_t *t;
    rc = task_prepare(NULL, rt, fn, arg, opts, &t);
    if (rc == 0 && reg && (rc = crew__registry_add(rt, t, rt->nworkers)) != 0)
        task_free(t);
    /* The injection queue counts it (inject.accepted) under its lock. */
    if (rc == 0 && (rc = crew__sched_spawn(NULL, rt, t)) != 0) {
        crew__registry_remove(t);
        task_free(t);
    }
    if (rc == 0)
        *out = t;
    crew__rt_leave(rt);
    return rc;
}

int crew_rt_spawn(crew_rt_t *rt, crew_fn_t fn, void *arg, const crew_spawn_opts_t *opts,
                  crew_task_t **out)
{
    if (!rt || !fn || !out)
        return -EINVAL;
    crew__worker_t *w = crew__worker_self();
    if (w && w->rt == rt && w->current)
        return crew_spawn(fn, arg, opts, out);
    return spawn_outside(rt, fn, arg, opts, false, out);
}

int crew__spawn_registered(crew_rt_t *rt, crew_fn_t fn, void *arg, crew_task_t **out)
{
    return spawn_outside(rt, fn, arg, NULL, true, out);
}

int crew__task_new_detached(crew_rt_t *rt, crew_fn_t fn, void *arg, crew_task_t **out)
{
    int rc = task_prepare(NULL, rt, fn, arg, NULL, out);
    if (rc)
        return rc;
    atomic_init(&(*out)->refs, 1); /* No handle: only the body's hold. */
    return 0;
}

void crew__task_discard(crew_task_t *t)
{
    task_free(t);
}

void crew__task_start_detached(crew_task_t *t)
{
    if (crew__sched_spawn(NULL, t->rt, t))
        crew__task_discard(t); /* Shutdown started: it never runs. */
}

/* Publish the outcome and wake a registered joiner. Runs on the task's own
 * stack (or, for a task that never started, on the scheduler's). */
static void task_complete(crew_task_t *t)
{
    atomic_store_explicit(&t->obs_state, CREW_TASK_DONE, memory_order_relaxed);
    /* Only the body's reference left: the handle was detached, so no one can
     * join and there is nothing to publish (saves a locked exchange on every
     * detached task). A stale 2 just takes the general path. */
    if (atomic_load_explicit(&t->refs, memory_order_relaxed) == 1)
        return;
    /* acq_rel: release publishes result/status to the joiner's acquire load. */
    if (atomic_exchange_explicit(&t->join_state, CREW_JOIN_DONE, memory_order_acq_rel) ==
        CREW_JOIN_WAITING) {
        crew__spin_lock(&t->join_lock);
        if (t->joiner)
            crew__waiter_wake(t->joiner, CREW_WAKE_READY);
        t->joiner = NULL;
        crew__spin_unlock(&t->join_lock);
    }
}

void crew__task_entry(void *prev)
{
    crew__fiber_entered();
    crew__worker_t *w = crew__worker_self();
    crew__sched_finish(w, prev);
    crew_task_t *t = w->current;
    t->result = t->fn(t->arg);
    /* A channel wait the body armed and gave up without closing (park.h). */
    if (crew__park_forgotten(t, atomic_load_explicit(&t->park, memory_order_relaxed)))
        crew__park_close(t);
    if (t->result == CREW_TASK_CANCELED)
        t->status = -ECANCELED;
    /* Canary mode: check before anyone can see the task finish, or a joiner
     * could act on the result of a task that wrote past its stack. */
    if (crew__unlikely(!crew__stack_canary_ok(&t->rt->stacks, t->stack)))
        crew__overflow_report(t);
    task_complete(t);
    /* The body may have migrated: ask again which worker we are on. */
    w = crew__worker_self();
    t->post = CREW_POST_EXIT;
    crew__sched_switch(w, t, crew__sched_next_after_exit(w));
    CREW_ASSERT(!"an exited task was resumed");
}

void crew__task_finish_exit(crew__worker_t *w, crew_task_t *t)
{
    crew__fiber_destroy(&t->fiber);
    crew__stack_put(&w->rt->stacks, &w->stacks, t->stack);
    t->stack = NULL;
    crew__registry_remove(t);
    crew__counter_add(&w->exited, 1);
    crew__task_put(t);
}

void crew__task_fail_start(crew__worker_t *w, crew_task_t *t, int err)
{
    t->status = (int16_t)err;
    task_complete(t);
    crew__registry_remove(t);
    crew__counter_add(&w->exited, 1);
    crew__task_put(t);
}

/* Register w as t's joiner unless t is done. Returns false if it is done. */
static bool join_register(crew_task_t *t, crew__waiter_t *w)
{
    crew__spin_lock(&t->join_lock);
    uint32_t st = CREW_JOIN_RUNNING;
    /* A failed CAS that reads WAITING means an earlier wait of this join was
     * cancelled and unregistered; registering again is fine. */
    bool wait = atomic_compare_exchange_strong_explicit(&t->join_state, &st, CREW_JOIN_WAITING,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire) ||
                st == CREW_JOIN_WAITING;
    if (wait)
        t->joiner = w;
    crew__spin_unlock(&t->join_lock);
    return wait;
}

/* The calling task stops waiting for t because it was cancelled or its
 * deadline passed (status): cancellation goes down the join, and the rest
 * of the wait is shielded, so t is still waited for. */
static int join_interrupted(crew_task_t *self, crew_task_t *t, int status)
{
    crew_task_cancel(t);
    self->shield++;
    return status;
}

/* Wait for t to finish. Returns 0, or -ECANCELED / -ETIMEDOUT if the
 * calling task was cancelled or its deadline passed before or during the
 * wait (t is then cancelled too and still waited for). */
static int join_wait(crew_task_t *t)
{
    crew_task_t *self = crew__task_self();
    /* A cancellation point even when t is already done (sticky: every
     * suspension point reports it, whether or not it would have waited). */
    int rc = self ? crew__suspend_check(self) : 0;
    if (rc)
        join_interrupted(self, t, rc);
    while (atomic_load_explicit(&t->join_state, memory_order_acquire) != CREW_JOIN_DONE) {
        crew__waiter_t w;
        int st = crew__waiter_prepare(&w);
        if (st) {
            rc = join_interrupted(self, t, st);
            continue;
        }
        if (!join_register(t, &w))
            break;
        /* Depth first (scheduler.c rule 7): if the child still waits in our
         * own queue, run it now on its own stack (not under a deadline,
         * whose timer needs the general wait). */
        crew_task_t *child = w.task && crew__deadline_of(w.task) == INT64_MAX
                                 ? crew__sched_take_queued(crew__worker_self(), t)
                                 : NULL;
        int cause = child ? crew__waiter_wait_switch(&w, child) : crew__waiter_wait(&w);
        st = w.task ? crew__wake_status(w.task, cause) : 0;
        if (st) {
            /* Unregister (park.h rule 4); the child's completion may have
             * lost its wake to ours, which the loop test then sees. */
            crew__spin_lock(&t->join_lock);
            if (t->joiner == &w)
                t->joiner = NULL;
            crew__spin_unlock(&t->join_lock);
            rc = join_interrupted(self, t, st);
        }
    }
    if (rc)
        self->shield--;
    return rc;
}

int crew_join(crew_task_t *t, void **result)
{
    if (!t)
        return -EINVAL;
    if (t == crew__task_self())
        return -EDEADLK;
    /* Acquire: a previous joiner released the handle. */
    if (atomic_exchange_explicit(&t->handle_busy, 1, memory_order_acquire))
        return -EBUSY;
    int rc = join_wait(t);
    if (result)
        *result = t->result;
    int status = rc ? rc : t->status;
    crew__task_put(t);
    return status;
}

int crew_detach(crew_task_t *t)
{
    if (!t)
        return -EINVAL;
    /* A plain load, not an exchange: detach does not wait, so nothing can
     * start on this handle after it; it only has to see a join that is
     * already in progress (which set handle_busy with its exchange). Two
     * threads giving back one handle at the same instant is a double
     * release, as the header says. Saves a locked RMW per detached spawn. */
    if (atomic_load_explicit(&t->handle_busy, memory_order_acquire))
        return -EBUSY;
    crew__task_put(t);
    return 0;
}

crew_task_t *crew_self(void)
{
    return crew__task_self();
}

crew_task_state_t crew_task_state(const crew_task_t *t)
{
    return t ? (crew_task_state_t)atomic_load_explicit(&((crew_task_t *)t)->obs_state,
                                                       memory_order_relaxed)
             : 0;
}

const char *crew_task_name(const crew_task_t *t)
{
    return t ? (t->name ? t->name : "") : NULL;
}

uint64_t crew_task_id(const crew_task_t *t)
{
    return t ? t->id : 0;
}

size_t crew_task_stack_size(const crew_task_t *t)
{
    return t ? crew__stack_class_size(t->stack_cls) : 0;
}

int crew_task_cancel(crew_task_t *t)
{
    if (!t)
        return -EINVAL;
    /* obs_state turns DONE first, so a task crew_task_state() already shows
     * as done is reported done here too. */
    if (atomic_load_explicit(&t->obs_state, memory_order_relaxed) == CREW_TASK_DONE ||
        atomic_load_explicit(&t->join_state, memory_order_acquire) == CREW_JOIN_DONE)
        return -ESRCH;
    /* seq_cst on both: the handshake with crew__waiter_prepare (park.h). */
    atomic_store_explicit(&t->cancelled, 1, memory_order_seq_cst);
    uint64_t word = atomic_load_explicit(&t->park, memory_order_seq_cst);
    unsigned st = (unsigned)(word & 3);
    if (st == CREW_PARK_ARMED || st == CREW_PARK_PARKED)
        crew__unpark(t, word >> 16, CREW_WAKE_CANCEL);
    return 0;
}

int crew_cancelled(void)
{
    crew_task_t *self = crew__task_self();
    return self && (atomic_load_explicit(&self->cancelled, memory_order_relaxed) ||
                    atomic_load_explicit(&self->rt->cancel_all, memory_order_relaxed));
}

int crew_shield_begin(void)
{
    crew_task_t *self = crew__task_self();
    if (!self)
        return -EPERM;
    self->shield++;
    return 0;
}

int crew_shield_end(void)
{
    crew_task_t *self = crew__task_self();
    if (!self)
        return -EPERM;
    if (!self->shield)
        return -EINVAL;
    self->shield--;
    return 0;
}

void *crew_shield(crew_fn_t fn, void *arg)
{
    crew_task_t *self = crew__task_self();
    if (self)
        self->shield++;
    void *r = fn(arg);
    /* fn may have migrated the task, but the task is the same. */
    if (self)
        self->shield--;
    return r;
}

int crew_deadline_begin(crew_timeout_t *scope, int64_t deadline)
{
    if (!scope || deadline < 0)
        return -EINVAL;
    crew_task_t *self = crew__task_self();
    if (!self)
        return -EPERM;
    for (crew_timeout_t *s = self->scope; s; s = s->outer)
        if (s == scope)
            return -EINVAL; /* Already open: linking it again would make a loop. */
    scope->deadline = deadline;
    scope->outer = self->scope;
    scope->task = self;
    scope->shield = self->shield;
    scope->expired = 0;
    self->scope = scope;
    return 0;
}

int crew_timeout_begin(crew_timeout_t *scope, int64_t ns)
{
    if (ns < 0)
        return -EINVAL;
    int64_t now = crew_now();
    return crew_deadline_begin(scope, ns > INT64_MAX - now ? INT64_MAX : now + ns);
}

int crew_timeout_end(crew_timeout_t *scope)
{
    crew_task_t *self = crew__task_self();
    if (!self)
        return -EPERM;
    if (!scope || self->scope != scope)
        return -EINVAL;
    self->scope = scope->outer;
    scope->task = NULL;
    return scope->expired;
}

int crew_wait_for(crew_task_t *t, int64_t ns, void **result)
{
    if (!t || ns < 0)
        return -EINVAL;
    if (!crew__task_self())
        return -EPERM;
    crew_timeout_t scope;
    int rc = crew_timeout_begin(&scope, ns);
    if (rc)
        return rc;
    rc = crew_join(t, result);
    crew_timeout_end(&scope);
    return rc;
}
