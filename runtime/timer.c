/* Timers and sleeping: the runtime's timer heap (fired by the reactor thread),
 * crew_now / crew_sleep / crew_sleep_until, and callback timers
 * (crew_call_later / crew_call_at).
 *
 * One 4-ary min-heap per runtime, ordered by (deadline, insertion order), so
 * equal deadlines fire first-in first-out. Insert is O(log n) under one
 * mutex; removal is O(1): the slot only forgets its timer (a tombstone that
 * the fire loop skips), and when tombstones outnumber live timers the heap is
 * rebuilt without them in O(n), so removal stays amortised O(1) and memory
 * bounded. (Most timers are removed, not fired: every deadline scope that
 * ends in time removes one.) The timer record lives in the sleeper's frame,
 * so a sleep allocates nothing (unless the heap array must grow). The reactor
 * fires every due timer under the same mutex, which is what lets a sleeper
 * that woke for another reason (a cancel) unregister safely (park.h rule 4).
 * Why one heap and not per-worker wheels: docs/architecture.md, Timers. */
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "park.h"
#include "reactor.h"
#include "scheduler.h"

int64_t crew_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * CREW_S + ts.tv_nsec;
}

typedef struct crew__timer_slot slot_t;

/* A callback timer (crew_call_at). Its heap record comes first, with no
 * waiter: that is how the fire loop tells it from a sleeper's. The task that
 * runs the callback is allocated up front, so a timer that was accepted
 * always has what it needs to fire. */
enum { CALL_PENDING = 0, CALL_FIRED = 1, CALL_CANCELLED = 2, CALL_DROPPED = 3 };

struct crew_timer_s {
    crew__timer_t tm;
    crew_task_t *task;      /* Detached; started when the timer fires. */
    crew_rt_t *rt;
    crew_timer_t *next;     /* The fire loop's list of fired callbacks. */
    /* PENDING until exactly one of fire, cancel and shutdown claims it. */
    _Atomic uint32_t state;
    /* Holds: the heap's (until claimed) and the handle's (if one was given). */
    _Atomic uint32_t refs;
};

static bool claim_callback(crew_timer_t *c, uint32_t to)
{
    uint32_t pending = CALL_PENDING;
    /* acq_rel: the claimer goes on to use the task and the heap entry the
     * creator published; a loser learns the outcome. */
    return atomic_compare_exchange_strong_explicit(&c->state, &pending, to, memory_order_acq_rel,
                                                   memory_order_acquire);
}

static void call_put(crew_timer_t *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        crew__free(c, sizeof *c, _Alignof(crew_timer_t));
}

static bool before(const slot_t *a, const slot_t *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(crew__reactor_t *r, size_t i, slot_t s)
{
    r->heap[i] = s;
    if (s.timer)
        s.timer->idx = i;
}

/* The heap is 4-ary: half the depth of a binary heap, and every level a
 * sift passes writes the moved timer's idx into its record, a cold line on
 * a sleeper's stack (the reactor's largest cost in the timers benchmark:
 * 100,000 sleepers, heaps of ~50,000). The four children of a slot are
 * adjacent, so comparing them costs about one extra cache line. */
#define ARITY 4

static void sift_up(crew__reactor_t *r, size_t i)
{
    slot_t s = r->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (!before(&s, &r->heap[parent]))
            break;
        place(r, i, r->heap[parent]);
        i = parent;
    }
    place(r, i, s);
}

static void sift_down(crew__reactor_t *r, size_t i)
{
    slot_t s = r->heap[i];
    for (;;) {
        size_t first = ARITY * i + 1;
        if (first >= r->n)
            break;
        size_t end = first + ARITY < r->n ? first + ARITY : r->n, c = first;
        for (size_t k = first + 1; k < end; k++)
            if (before(&r->heap[k], &r->heap[c]))
                c = k;
        if (!before(&r->heap[c], &s))
            break;
        place(r, i, r->heap[c]);
        i = c;
    }
    place(r, i, s);
}

/* Remove the slot at index i; tlock held. */
static void heap_remove_at(crew__reactor_t *r, size_t i)
{
    if (r->heap[i].timer)
        r->heap[i].timer->idx = CREW_TIMER_NONE;
    else
        r->ndead--;
    slot_t last = r->heap[--r->n];
    if (i == r->n)
        return;
    place(r, i, last);
    if (i > 0 && before(&last, &r->heap[(i - 1) / ARITY]))
        sift_up(r, i);
    else
        sift_down(r, i);
}

/* Drop every tombstone and restore the heap bottom-up (O(n)); tlock held. */
static void compact(crew__reactor_t *r)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->heap[i].timer)
            r->heap[k++] = r->heap[i];
    r->n = k;
    r->ndead = 0;
    for (size_t i = 0; i < k; i++)
        r->heap[i].timer->idx = i;
    for (size_t i = k > 1 ? (k - 2) / ARITY + 1 : 0; i-- > 0;)
        sift_down(r, i);
}

int crew__timer_add(crew__reactor_t *r, crew__timer_t *t)
{
    pthread_mutex_lock(&r->tlock);
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        slot_t *h = crew__alloc(cap * sizeof *h, _Alignof(slot_t));
        if (!h) {
            pthread_mutex_unlock(&r->tlock);
            return -ENOMEM;
        }
        if (r->n)
            memcpy(h, r->heap, r->n * sizeof *h);
        if (r->heap)
            crew__free(r->heap, r->cap * sizeof *h, _Alignof(slot_t));
        r->heap = h;
        r->cap = cap;
    }
    t->seq = r->next_seq++;
    place(r, r->n++, (slot_t){ t->deadline, t->seq, t });
    sift_up(r, t->idx);
    int earliest = t->idx == 0;
    pthread_mutex_unlock(&r->tlock);
    return earliest;
}

/* Tombstones tolerated before a rebuild: half the heap, and never for tiny
 * heaps (a rebuild of a few slots costs more than the tombstones). */
#define CREW_TIMER_COMPACT_MIN 64

void crew__timer_remove(crew__reactor_t *r, crew__timer_t *t)
{
    pthread_mutex_lock(&r->tlock);
    if (t->idx != CREW_TIMER_NONE) {
        r->heap[t->idx].timer = NULL;
        t->idx = CREW_TIMER_NONE;
        if (++r->ndead > r->n / 2 && r->n >= CREW_TIMER_COMPACT_MIN)
            compact(r);
    }
    pthread_mutex_unlock(&r->tlock);
}

int64_t crew__timer_fire(crew__reactor_t *r, int64_t now)
{
    crew__wake_batch_t b = { 0 };
    crew_timer_t *calls = NULL, **calls_tail = &calls; /* FIFO: deadline order. */
    pthread_mutex_lock(&r->tlock);
    while (r->n && r->heap[0].deadline <= now) {
        crew__timer_t *t = r->heap[0].timer;
        heap_remove_at(r, 0);
        if (!t)
            continue; /* A tombstone. */
        if (!t->waiter) {
            crew_timer_t *c = (crew_timer_t *)t;
            if (claim_callback(c, CALL_FIRED)) {
                c->next = NULL;
                *calls_tail = c;
                calls_tail = &c->next;
            }
            continue;
        }
        /* Under tlock: the sleeper unregisters under it too, so its frame
         * (and t) stays valid until we let go (park.h rule 4). Sleepers are
         * always tasks (a plain thread sleeps in clock_nanosleep). */
        crew__wake_batch_claim(&b, t->waiter, t->cause);
    }
    /* Skip tombstones at the top, so the reactor does not wake for them. */
    while (r->n && !r->heap[0].timer)
        heap_remove_at(r, 0);
    int64_t next = r->n ? r->heap[0].deadline : -1;
    pthread_mutex_unlock(&r->tlock);
    /* After the lock: the wakes' hand-over is a cross-thread push and notify,
     * and so is starting each fired callback's task. */
    crew__wake_batch_flush(&b, r->rt);
    while (calls) {
        crew_timer_t *c = calls;
        calls = c->next;
        crew__task_start_detached(c->task);
        call_put(c);
    }
    return next;
}

int crew__timer_wait(crew__waiter_t *w, int64_t deadline, int cause)
{
    crew__reactor_t *r = &w->task->rt->reactor;
    crew__timer_t t = { .deadline = deadline, .idx = CREW_TIMER_NONE, .waiter = w, .cause = cause };
    int rc = crew__timer_add(r, &t);
    if (rc < 0)
        return rc;
    if (rc == 1)
        crew__reactor_kick(r);
    int got = crew__waiter_park(w);
    if (got != cause)
        crew__timer_remove(r, &t);
    return got;
}

int crew_sleep_until(int64_t deadline)
{
    if (deadline < 0)
        return -EINVAL;
    crew_task_t *self = crew__task_self();
    if (!self) {
        struct timespec ts = { .tv_sec = deadline / CREW_S, .tv_nsec = deadline % CREW_S };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        return 0;
    }
    if (deadline <= crew_now())
        return crew_yield(); /* 0, or what the suspension point reports. */
    crew__waiter_t w;
    int rc = crew__waiter_prepare(&w);
    if (rc)
        return rc;
    /* One timer: the sleep's own deadline, or the deadline scope's if that
     * comes first (then the wake's cause is TIMEOUT). */
    int64_t scope = crew__deadline_of(self);
    int cause = scope < deadline ? crew__timer_wait(&w, scope, CREW_WAKE_TIMEOUT)
                                 : crew__timer_wait(&w, deadline, CREW_WAKE_READY);
    return crew__wake_status(self, cause);
}

int crew_sleep(int64_t ns)
{
    if (ns < 0)
        return -EINVAL;
    int64_t now = crew_now();
    /* Clamp: a duration past the end of the clock sleeps until cancelled. */
    return crew_sleep_until(ns > INT64_MAX - now ? INT64_MAX : now + ns);
}

static int call_at(crew_rt_t *rt, int64_t deadline, crew_fn_t fn, void *arg, crew_timer_t **out);

int crew_rt_call_at(crew_rt_t *rt, int64_t deadline, crew_fn_t fn, void *arg, crew_timer_t **out)
{
    if (!rt || !fn || deadline < 0)
        return -EINVAL;
    int rc = crew__rt_enter(rt);
    if (rc)
        return rc;
    rc = call_at(rt, deadline, fn, arg, out);
    crew__rt_leave(rt);
    return rc;
}

/* crew_rt_call_at inside crew__rt_enter/leave. */
static int call_at(crew_rt_t *rt, int64_t deadline, crew_fn_t fn, void *arg, crew_timer_t **out)
{
    crew_timer_t *c = crew__alloc(sizeof *c, _Alignof(crew_timer_t));
    if (!c)
        return -ENOMEM;
    int rc = crew__task_new_detached(rt, fn, arg, &c->task);
    if (rc) {
        crew__free(c, sizeof *c, _Alignof(crew_timer_t));
        return rc;
    }
    c->tm = (crew__timer_t){ .deadline = deadline, .idx = CREW_TIMER_NONE };
    c->rt = rt;
    c->next = NULL;
    atomic_init(&c->state, CALL_PENDING);
    atomic_init(&c->refs, out ? 2 : 1);
    if (out)
        *out = c;
    rc = crew__timer_add(&rt->reactor, &c->tm);
    if (rc < 0) {
        crew__task_discard(c->task);
        crew__free(c, sizeof *c, _Alignof(crew_timer_t));
        return rc;
    }
    if (rc == 1)
        crew__reactor_kick(&rt->reactor);
    return 0;
}

int crew_call_at(int64_t deadline, crew_fn_t fn, void *arg, crew_timer_t **out)
{
    crew_rt_t *rt = crew_rt_current();
    if (!rt)
        return -EPERM;
    return crew_rt_call_at(rt, deadline, fn, arg, out);
}

int crew_call_later(int64_t ns, crew_fn_t fn, void *arg, crew_timer_t **out)
{
    if (ns < 0)
        return -EINVAL;
    int64_t now = crew_now();
    return crew_call_at(ns > INT64_MAX - now ? INT64_MAX : now + ns, fn, arg, out);
}

int crew_timer_cancel(crew_timer_t *c)
{
    if (!c)
        return -EINVAL;
    int rc;
    if (claim_callback(c, CALL_CANCELLED)) {
        /* Still in the heap, and the runtime is alive: its destroy would
         * have claimed the timer first. */
        crew__timer_remove(&c->rt->reactor, &c->tm);
        crew__task_discard(c->task);
        call_put(c); /* The heap's hold. */
        rc = 0;
    } else {
        rc = atomic_load_explicit(&c->state, memory_order_acquire) == CALL_FIRED ? -EALREADY
                                                                                 : -ESHUTDOWN;
    }
    call_put(c);
    return rc;
}

int crew_timer_release(crew_timer_t *c)
{
    if (!c)
        return -EINVAL;
    call_put(c);
    return 0;
}

void crew__timer_drop_callbacks(crew__reactor_t *r)
{
    pthread_mutex_lock(&r->tlock);
    while (r->n) {
        crew__timer_t *t = r->heap[0].timer;
        heap_remove_at(r, 0);
        if (!t)
            continue;
        /* No task is live, so every timer left is a callback's. */
        CREW_ASSERT(!t->waiter);
        crew_timer_t *c = (crew_timer_t *)t;
        if (claim_callback(c, CALL_DROPPED)) {
            crew__task_discard(c->task);
            call_put(c);
        }
    }
    pthread_mutex_unlock(&r->tlock);
}
