/* Timers and sleeping: the runtime's timer queues (fired by the workers,
 * with the reactor thread as the backstop), crew_now / crew_sleep /
 * crew_sleep_until, and callback timers (crew_call_later / crew_call_at).
 *
 * A timer queue is a 4-ary min-heap ordered by (deadline, insertion order),
 * under its own mutex; every worker has one for the timers its tasks add,
 * and the runtime one for timers added from elsewhere, so equal deadlines
 * added on one worker fire first-in first-out. Insert is O(log n); removal
 * is O(1): the slot only forgets its timer (a tombstone that the fire loop
 * skips), and when tombstones outnumber live timers the heap is rebuilt
 * without them in O(n), so removal stays amortised O(1) and memory bounded.
 * (Most timers are removed, not fired: every deadline scope that ends in
 * time removes one.) The timer record lives in the sleeper's frame, so a
 * sleep allocates nothing (unless the heap must grow). Due timers are
 * claimed and delivered under their queue's mutex, which is what lets a
 * sleeper that woke for another reason (a cancel) unregister safely (park.h
 * rule 4), and keeps the batches of two firers from interleaving.
 *
 * Who fires (docs/architecture.md, Timers, has the measurements):
 *  1. While any worker is awake, the workers do: at every 61st scheduling
 *     decision a worker compares the earliest deadline (next_due, one
 *     relaxed load) of its own queue, the runtime's and one other worker's
 *     (in turn) with the clock, and in every round of an idle search that of
 *     every queue; it fires up to half a ring of due timers from each, to
 *     the inboxes of the workers that last ran the tasks.
 *     [On machines with as many cores as workers the reactor is a third
 *     busy thread: firing there cost a reactor round per 50 us grid step
 *     and a cross-thread hand-over per batch, and a reactor preempted while
 *     holding the heap's mutex stalled every worker adding a timer. One
 *     queue per worker: with a shared one, adders and firers contended for
 *     its mutex.]
 *  2. The reactor is the backstop: while a worker is awake it arms its timer
 *     CREW_TIMER_BACKSTOP_NS after the earliest deadline, so timers still
 *     fire, that much late, when every awake worker runs a task that does
 *     not yield. With no worker awake it arms for the deadline itself, on
 *     the slack grid.
 *  3. The worker that parks last kicks the reactor if a timer is pending
 *     (crew__timer_idle), so that it re-arms for the deadline itself. The
 *     parker leaves the awake count, then reads every queue's next_due; an
 *     adder publishes next_due, then its kick (if any) makes the reactor
 *     read the awake count. All seq_cst: the parker sees the timer, or the
 *     reactor sees no worker awake.
 *  4. Adding a timer kicks the reactor only when the reactor must wake
 *     earlier than it is armed for (armed): for an adder on a worker, the
 *     deadline plus the backstop (rule 2); for anyone else, the deadline.
 *     The adder publishes next_due, then reads armed; the reactor publishes
 *     armed, then reads every next_due again and re-arms if one moved
 *     earlier. All seq_cst: one of them sees the other. */
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "mutex.h"
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

static void place(crew__timerq_t *q, size_t i, slot_t s)
{
    q->heap[i] = s;
    if (s.cell != CREW_TIMER_NONE)
        q->cells[s.cell].idx = (uint32_t)i;
}

static uint32_t cell_get(crew__timerq_t *q, crew__timer_t *t)
{
    uint32_t c = q->free_cell;
    if (c != CREW_TIMER_NONE)
        q->free_cell = q->cells[c].idx;
    else
        c = q->cells_used++; /* < cap: cells in use <= n < cap. */
    q->cells[c].timer = t;
    t->cell = c;
    return c;
}

static void cell_put(crew__timerq_t *q, crew__timer_t *t)
{
    q->cells[t->cell].idx = q->free_cell;
    q->free_cell = t->cell;
    t->cell = CREW_TIMER_NONE;
}

/* The heap is 4-ary: half the depth of a binary heap, and every level a
 * sift passes writes the moved timer's position into its cell. The four
 * children of a slot are adjacent, so comparing them costs about one extra
 * cache line. Positions live in a dense cell table, not in the timer
 * records: a record sits on a sleeping task's stack, its own cold page, and
 * the stores into records were most of the heap's cost in the timers
 * benchmark (100,000 sleepers, heaps of ~50,000). */
#define ARITY 4

static void sift_up(crew__timerq_t *q, size_t i)
{
    slot_t s = q->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (!before(&s, &q->heap[parent]))
            break;
        place(q, i, q->heap[parent]);
        i = parent;
    }
    place(q, i, s);
}

static void sift_down(crew__timerq_t *q, size_t i)
{
    slot_t s = q->heap[i];
    for (;;) {
        size_t first = ARITY * i + 1;
        if (first >= q->n)
            break;
        size_t end = first + ARITY < q->n ? first + ARITY : q->n, c = first;
        for (size_t k = first + 1; k < end; k++)
            if (before(&q->heap[k], &q->heap[c]))
                c = k;
        if (!before(&q->heap[c], &s))
            break;
        place(q, i, q->heap[c]);
        i = c;
    }
    place(q, i, s);
}

/* Remove the slot at index i (its cell, if any, is the caller's); the
 * queue's lock held. */
static void heap_remove_at(crew__timerq_t *q, size_t i)
{
    if (q->heap[i].cell == CREW_TIMER_NONE)
        q->ndead--;
    slot_t last = q->heap[--q->n];
    if (i == q->n)
        return;
    place(q, i, last);
    if (i > 0 && before(&last, &q->heap[(i - 1) / ARITY]))
        sift_up(q, i);
    else
        sift_down(q, i);
}

/* Take the earliest slot off the heap: its timer, or NULL for a tombstone;
 * the queue's lock held. */
static crew__timer_t *pop_top(crew__timerq_t *q)
{
    uint32_t cell = q->heap[0].cell;
    heap_remove_at(q, 0);
    if (cell == CREW_TIMER_NONE)
        return NULL;
    crew__timer_t *t = q->cells[cell].timer;
    cell_put(q, t);
    return t;
}

/* Drop every tombstone and restore the heap bottom-up (O(n)); the queue's
 * lock held. */
static void compact(crew__timerq_t *q)
{
    size_t k = 0;
    for (size_t i = 0; i < q->n; i++)
        if (q->heap[i].cell != CREW_TIMER_NONE)
            place(q, k++, q->heap[i]);
    q->n = (uint32_t)k;
    q->ndead = 0;
    for (size_t i = k > 1 ? (k - 2) / ARITY + 1 : 0; i-- > 0;)
        sift_down(q, i);
}

/* Timer slack: the reactor wakes on a grid of this step, so every timer due
 * in the same step fires in one round. Deadlines are in nanoseconds, so
 * without it an idle runtime pays a reactor round (epoll_wait + timerfd
 * re-arm, several microseconds) per timer. 50 us is what Linux itself adds to
 * a normal thread's sleeps (timer_slack_ns), and never makes a timer fire
 * early. */
#define CREW_TIMER_SLACK_NS (50 * CREW_US)

/* The most timers a worker fires at once (rule 1): half a ring, so the wakes
 * fit beside what it has queued and the mutex is not held for long. */
#define CREW_TIMER_POLL_MAX (CREW_RUNQ_CAP / 2)

/* The earliest deadline, for the unlocked checks; the queue's lock held.
 * seq_cst: rules 3 and 4 pair it with the parker's and the reactor's loads.
 * A stale value only costs a look under the lock or a check deferred to the
 * next poll (and the reactor's backstop covers that). */
static void publish_top(crew__timerq_t *q)
{
    atomic_store_explicit(&q->next_due, q->n ? q->heap[0].deadline : INT64_MAX,
                          memory_order_seq_cst);
}

/* When the reactor must wake for a timer due at deadline: on the slack grid,
 * plus the backstop when a worker is awake to fire it (rules 1, 2). */
static int64_t reactor_wake_at(int64_t deadline, bool worker_awake)
{
    const int64_t slack = CREW_TIMER_SLACK_NS, backstop = CREW_TIMER_BACKSTOP_NS;
    if (deadline > INT64_MAX - slack - backstop)
        return INT64_MAX - backstop; /* Clamped "forever": the reactor re-arms hourly. */
    deadline = (deadline + slack - 1) / slack * slack;
    return worker_awake ? deadline + backstop : deadline;
}

int crew__timer_init(crew__reactor_t *r, crew_rt_t *rt)
{
    r->rt = rt;
    r->nq = rt->nworkers + 1;
    r->qs = crew__zalloc(r->nq * sizeof *r->qs, CREW_CACHELINE);
    if (!r->qs)
        return -ENOMEM;
    for (unsigned i = 0; i < r->nq; i++) {
        crew__timerq_t *q = &r->qs[i];
        /* A plain mutex if the adaptive kind is refused: slower, never wrong. */
        if (crew__mutex_init_short(&q->lock))
            pthread_mutex_init(&q->lock, NULL);
        q->free_cell = CREW_TIMER_NONE;
        atomic_init(&q->next_due, INT64_MAX);
    }
    atomic_init(&r->armed, INT64_MAX);
    return 0;
}

void crew__timer_fini(crew__reactor_t *r)
{
    if (!r->qs)
        return;
    for (unsigned i = 0; i < r->nq; i++) {
        crew__timerq_t *q = &r->qs[i];
        CREW_ASSERT(q->n == 0);
        if (q->heap) {
            crew__free(q->heap, q->cap * sizeof *q->heap, _Alignof(slot_t));
            crew__free(q->cells, q->cap * sizeof *q->cells, _Alignof(struct crew__timer_cell));
        }
        pthread_mutex_destroy(&q->lock);
    }
    crew__free(r->qs, r->nq * sizeof *r->qs, CREW_CACHELINE);
    r->qs = NULL;
}

/* Double the heap and the cell table; its lock held. */
static int grow(crew__timerq_t *q)
{
    /* Cells are numbered in 32 bits, CREW_TIMER_NONE excepted. */
    if (q->cap > UINT32_MAX / 4)
        return -ENOMEM;
    uint32_t cap = q->cap ? 2 * q->cap : 256;
    slot_t *h = crew__alloc(cap * sizeof *h, _Alignof(slot_t));
    struct crew__timer_cell *c = crew__alloc(cap * sizeof *c, _Alignof(struct crew__timer_cell));
    if (!h || !c) {
        if (h)
            crew__free(h, cap * sizeof *h, _Alignof(slot_t));
        if (c)
            crew__free(c, cap * sizeof *c, _Alignof(struct crew__timer_cell));
        return -ENOMEM;
    }
    if (q->cap) {
        memcpy(h, q->heap, q->n * sizeof *h);
        memcpy(c, q->cells, q->cells_used * sizeof *c);
        crew__free(q->heap, q->cap * sizeof *h, _Alignof(slot_t));
        crew__free(q->cells, q->cap * sizeof *c, _Alignof(struct crew__timer_cell));
    }
    q->heap = h;
    q->cells = c;
    q->cap = cap;
    return 0;
}

int crew__timer_add(crew__reactor_t *r, crew__timer_t *t)
{
    /* Rule 1: a task's timer goes to its worker's queue. */
    crew__worker_t *w = crew__worker_self();
    bool on_worker = w && w->rt == r->rt;
    crew__timerq_t *q = &r->qs[on_worker ? w->index : r->nq - 1];
    pthread_mutex_lock(&q->lock);
    if (q->n == q->cap) {
        int rc = grow(q);
        if (rc) {
            pthread_mutex_unlock(&q->lock);
            return rc;
        }
    }
    uint32_t c = cell_get(q, t);
    place(q, q->n++, (slot_t){ t->deadline, q->next_seq++, c });
    sift_up(q, q->cells[c].idx);
    t->q = q;
    int kick = 0;
    if (q->cells[c].idx == 0) {
        publish_top(q);
        /* Rule 4. seq_cst: after the store in publish_top. */
        kick = reactor_wake_at(t->deadline, on_worker) <
               atomic_load_explicit(&r->armed, memory_order_seq_cst);
    }
    pthread_mutex_unlock(&q->lock);
    return kick;
}

/* Tombstones tolerated before a rebuild: half the heap, and never for tiny
 * heaps (a rebuild of a few slots costs more than the tombstones). */
#define CREW_TIMER_COMPACT_MIN 64

void crew__timer_remove(crew__timer_t *t)
{
    crew__timerq_t *q = t->q;
    if (!q)
        return; /* Never added. */
    pthread_mutex_lock(&q->lock);
    if (t->cell != CREW_TIMER_NONE) {
        q->heap[q->cells[t->cell].idx].cell = CREW_TIMER_NONE;
        cell_put(q, t);
        if (++q->ndead > q->n / 2 && q->n >= CREW_TIMER_COMPACT_MIN) {
            compact(q);
            publish_top(q);
        }
    }
    pthread_mutex_unlock(&q->lock);
}

/* Due timers taken off a queue, then delivered, under its lock. */
typedef struct {
    crew__wake_batch_t wakes;
    crew_timer_t *calls, **calls_tail; /* FIFO: deadline order. */
    uint64_t n;
} due_t;

/* Take up to max timers due at now off the heap into d; its lock held. */
static void take_due(crew__timerq_t *q, int64_t now, uint64_t max, due_t *d)
{
    *d = (due_t){ .calls_tail = &d->calls };
    while (q->n && q->heap[0].deadline <= now && d->n < max) {
        crew__timer_t *t = pop_top(q);
        if (!t)
            continue; /* A tombstone. */
        d->n++;
        if (!t->waiter) {
            crew_timer_t *c = (crew_timer_t *)t;
            if (claim_callback(c, CALL_FIRED)) {
                c->next = NULL;
                *d->calls_tail = c;
                d->calls_tail = &c->next;
            }
            continue;
        }
        /* Under the lock: the sleeper unregisters under it too, so its frame
         * (and t) stays valid until we let go (park.h rule 4). Sleepers are
         * always tasks (a plain thread sleeps in clock_nanosleep). */
        crew__wake_batch_claim(&d->wakes, t->waiter, t->cause);
    }
    /* Skip tombstones at the top, so nobody wakes for them. */
    while (q->n && q->heap[0].cell == CREW_TIMER_NONE)
        heap_remove_at(q, 0);
    publish_top(q);
}

/* Make d's tasks runnable and start its callbacks; the queue's lock held.
 * Under it because the workers and the reactor fire the same queue: two
 * firers delivering at once could interleave their batches, and a timer
 * taken later could then start before one taken earlier (seen under TSan:
 * callbacks out of deadline order with one worker). A delivery is a few
 * inbox and injection-queue pushes, and a futex wake at most per worker. */
static void deliver(crew__reactor_t *r, due_t *d)
{
    crew__wake_batch_flush(&d->wakes, r->rt, true);
    while (d->calls) {
        crew_timer_t *c = d->calls;
        d->calls = c->next;
        crew__task_start_detached(c->task);
        call_put(c);
    }
}

/* Add n to a counter written only under its queue's lock. */
static void count_fired(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* The earliest deadline of every queue, or INT64_MAX. seq_cst loads: rules 3
 * and 4. */
static int64_t earliest(const crew__reactor_t *r)
{
    int64_t next = INT64_MAX;
    for (unsigned i = 0; i < r->nq; i++) {
        int64_t d = atomic_load_explicit(&r->qs[i].next_due, memory_order_seq_cst);
        if (d < next)
            next = d;
    }
    return next;
}

int64_t crew__timer_fire(crew__reactor_t *r, int64_t now)
{
    for (unsigned i = 0; i < r->nq; i++) {
        crew__timerq_t *q = &r->qs[i];
        if (atomic_load_explicit(&q->next_due, memory_order_relaxed) > now)
            continue;
        due_t d;
        pthread_mutex_lock(&q->lock);
        take_due(q, now, UINT64_MAX, &d);
        count_fired(&q->fired_by_reactor, d.n);
        deliver(r, &d);
        pthread_mutex_unlock(&q->lock);
    }
    /* Rule 4: publish when we wake, then look at the queues again; an adder
     * publishes its timer, then reads armed. One of us sees the other. The
     * awake count is read after the kick that brought us here (rule 3). */
    int64_t next = earliest(r), at;
    for (;;) {
        bool awake = CREW_IDLE_AWAKE(atomic_load_explicit(&r->rt->idle_state, memory_order_seq_cst));
        at = next == INT64_MAX ? INT64_MAX : reactor_wake_at(next, awake);
        atomic_store_explicit(&r->armed, at, memory_order_seq_cst);
        int64_t again = earliest(r);
        if (again >= next)
            break;
        next = again;
    }
    return at == INT64_MAX ? -1 : at;
}

/* Fire what is due in q, as a worker (rule 1); true if anything fired. now:
 * the clock, read on the first due queue (0: not yet). */
static bool poll_queue(crew__reactor_t *r, crew__timerq_t *q, int64_t *now)
{
    int64_t due = atomic_load_explicit(&q->next_due, memory_order_relaxed);
    if (due == INT64_MAX)
        return false;
    if (!*now)
        *now = crew_now();
    /* trylock: the holder is adding a timer or firing them; the next poll
     * (or the holder) gets the due ones. */
    if (due > *now || pthread_mutex_trylock(&q->lock))
        return false;
    due_t d;
    take_due(q, *now, CREW_TIMER_POLL_MAX, &d);
    count_fired(&q->fired_by_workers, d.n);
    deliver(r, &d);
    pthread_mutex_unlock(&q->lock);
    return d.n > 0;
}

bool crew__timer_poll(crew__reactor_t *r, unsigned self, unsigned *turn)
{
    int64_t now = 0;
    /* Its own queue first, then the runtime's; then the other workers',
     * whose owners may be asleep (waking one for its timers costs more than
     * running them here) or busy in a task that does not yield: all of them
     * when searching (turn NULL), else one per call in turn, so that a busy
     * worker's poll costs a bounded number of loads of other cores' lines
     * however many workers there are. */
    bool fired = poll_queue(r, &r->qs[self], &now);
    fired |= poll_queue(r, &r->qs[r->nq - 1], &now);
    unsigned others = r->nq - 2; /* Workers but self. */
    if (!others)
        return fired;
    unsigned from = turn ? (*turn)++ % others : 0, count = turn ? 1 : others;
    for (unsigned k = 0; k < count; k++) {
        unsigned i = (from + k) % others;
        fired |= poll_queue(r, &r->qs[i < self ? i : i + 1], &now);
    }
    return fired;
}

uint64_t crew__timer_fired(const crew__reactor_t *r, bool by_workers)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < r->nq; i++)
        n += atomic_load_explicit(by_workers ? &r->qs[i].fired_by_workers
                                             : &r->qs[i].fired_by_reactor,
                                  memory_order_relaxed);
    return n;
}

void crew__timer_idle(crew__reactor_t *r)
{
    /* After the parker's seq_cst exit from the awake count (rule 3). The
     * reactor outlives every worker (crew_rt_destroy stops them first). */
    if (earliest(r) != INT64_MAX)
        crew__reactor_kick(r);
}

int crew__timer_wait(crew__waiter_t *w, int64_t deadline, int cause)
{
    crew__reactor_t *r = &w->task->rt->reactor;
    crew__timer_t t = { .deadline = deadline, .waiter = w, .cause = cause, .cell = CREW_TIMER_NONE };
    int rc = crew__timer_add(r, &t);
    if (rc < 0)
        return rc;
    if (rc == 1)
        crew__reactor_kick(r);
    int got = crew__waiter_park(w);
    if (got != cause)
        crew__timer_remove(&t);
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
    c->tm = (crew__timer_t){ .deadline = deadline, .cell = CREW_TIMER_NONE };
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
        crew__timer_remove(&c->tm);
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
    for (unsigned i = 0; i < r->nq; i++) {
        crew__timerq_t *q = &r->qs[i];
        pthread_mutex_lock(&q->lock);
        while (q->n) {
            crew__timer_t *t = pop_top(q);
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
        publish_top(q);
        pthread_mutex_unlock(&q->lock);
    }
}
