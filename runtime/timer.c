/* Timers and sleeping: the runtime's timer heap (fired by the reactor thread)
 * and crew_now / crew_sleep / crew_sleep_until.
 *
 * One binary min-heap per runtime, ordered by (deadline, insertion order), so
 * equal deadlines fire first-in first-out. Insert and remove are O(log n)
 * under one mutex; the timer record lives in the sleeper's frame, so a sleep
 * allocates nothing (unless the heap array must grow). The reactor fires
 * every due timer under the same mutex, which is what lets a sleeper that
 * woke for another reason (a cancel) unregister safely (park.h rule 4).
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

static bool before(const slot_t *a, const slot_t *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(crew__reactor_t *r, size_t i, slot_t s)
{
    r->heap[i] = s;
    s.timer->idx = i;
}

static void sift_up(crew__reactor_t *r, size_t i)
{
    slot_t s = r->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
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
        size_t c = 2 * i + 1;
        if (c >= r->n)
            break;
        if (c + 1 < r->n && before(&r->heap[c + 1], &r->heap[c]))
            c++;
        if (!before(&r->heap[c], &s))
            break;
        place(r, i, r->heap[c]);
        i = c;
    }
    place(r, i, s);
}

/* Remove the timer at index i; tlock held. */
static void heap_remove_at(crew__reactor_t *r, size_t i)
{
    r->heap[i].timer->idx = CREW_TIMER_NONE;
    slot_t last = r->heap[--r->n];
    if (i == r->n)
        return;
    place(r, i, last);
    if (i > 0 && before(&last, &r->heap[(i - 1) / 2]))
        sift_up(r, i);
    else
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

void crew__timer_remove(crew__reactor_t *r, crew__timer_t *t)
{
    pthread_mutex_lock(&r->tlock);
    if (t->idx != CREW_TIMER_NONE)
        heap_remove_at(r, t->idx);
    pthread_mutex_unlock(&r->tlock);
}

int64_t crew__timer_fire(crew__reactor_t *r, int64_t now)
{
    crew__wake_batch_t b = { 0 };
    pthread_mutex_lock(&r->tlock);
    while (r->n && r->heap[0].deadline <= now) {
        crew__timer_t *t = r->heap[0].timer;
        heap_remove_at(r, 0);
        /* Under tlock: the sleeper unregisters under it too, so its frame
         * (and t) stays valid until we let go (park.h rule 4). Sleepers are
         * always tasks (a plain thread sleeps in clock_nanosleep). */
        crew__wake_batch_claim(&b, t->waiter, t->cause);
    }
    int64_t next = r->n ? r->heap[0].deadline : -1;
    pthread_mutex_unlock(&r->tlock);
    /* After the lock: the wakes' hand-over is a cross-thread push and notify. */
    crew__wake_batch_flush(&b, r->rt);
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
