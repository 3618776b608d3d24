/* White-box stress tests of a worker's local run queue (runtime/runq.c).
 *
 * Ports the run-queue rows of RELIABILITY.md: the owner's pop racing a steal
 * for the last task (row 1), counters crossing 2^32 (row 3), no spurious
 * empty (row 4, Go's RunSchedLocalQueueEmptyTest) and the stampede (row 5,
 * crossbeam), plus Go's RunSchedLocalQueueStealTest amounts and Tokio's
 * chained steal (loom_multi_thread/queue.rs). Row 2 (a growing deque) does
 * not apply: the ring never resizes.
 *
 * Threads are plain pthreads. Tasks are bare struct crew_task_s used as
 * identities: the queue dereferences a task only through qnext. Every
 * consumer counts what it takes in a per-item atomic and records protocol
 * violations in a fails_t; the test thread asserts after the joins. */
#include "harness.h"
#include "queue_util.h"

#include "inject.h"
#include "runq.h"

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/mman.h>

#define CAP CREW_RUNQ_CAP
#define HALF (CREW_RUNQ_CAP / 2)

/* Starting counters: both sides of 2^32 and the points where a full ring
 * straddles it (row 3). */
static const uint32_t starts[] = {
    0, UINT32_MAX - 100, UINT32_MAX - CAP + 1, UINT32_MAX - CAP, UINT32_MAX, 0x7fffffffu};
#define NSTARTS (sizeof starts / sizeof starts[0])


/* Tasks plus, per task, how many times a consumer took it and the owner's
 * insertion count when it was last pushed (written by the owner before the
 * push publishes the task, so a thief reads it after its acquire of tail). */
typedef struct arena {
    crew_task_t *base;
    size_t n;
    _Atomic uint32_t *seen;
    uint64_t *pos;
} arena_t;

static void arena_init(arena_t *a, size_t n)
{
    /* Reserved, not committed: only tasks that pass through a list are
     * written, so a million-task arena costs a few pages. */
    void *p = mmap(NULL, n * sizeof(crew_task_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(p != MAP_FAILED);
    a->base = p;
    a->n = n;
    a->seen = calloc(n, sizeof *a->seen);
    a->pos = calloc(n, sizeof *a->pos);
    assert_non_null(a->seen);
    assert_non_null(a->pos);
}

static void arena_fini(arena_t *a)
{
    munmap(a->base, a->n * sizeof(crew_task_t));
    free(a->seen);
    free(a->pos);
}

static inline crew_task_t *T(arena_t *a, size_t i)
{
    return a->base + i;
}

static inline size_t ix(arena_t *a, crew_task_t *t)
{
    return (size_t)(t - a->base);
}

static inline bool in_arena(arena_t *a, crew_task_t *t)
{
    return t >= a->base && t < a->base + a->n;
}

/* A consumer took t. A second take is recorded at once, not only in the
 * final count, so that threads watching f->n can stop early. */
static void take(arena_t *a, fails_t *f, crew_task_t *t)
{
    if (!in_arena(a, t)) {
        violation(f, "consumer got %p, not a task", (void *)t);
        return;
    }
    if (atomic_fetch_add_explicit(&a->seen[ix(a, t)], 1, memory_order_relaxed))
        violation(f, "task %zu taken twice", ix(a, t));
}

/* Every task below used was taken exactly once, none above it at all. */
static void assert_seen_once(arena_t *a, size_t used)
{
    size_t bad = 0;
    for (size_t i = 0; i < a->n; i++) {
        uint32_t s = atomic_load(&a->seen[i]);
        if (s != (i < used ? 1u : 0u)) {
            if (bad < 5)
                print_error("task %zu taken %u times\n", i, s);
            bad++;
        }
    }
    if (bad)
        print_error("%zu of %zu tasks not taken exactly once\n", bad, used);
    assert_int_equal(bad, 0);
}

/* Generator stream k derived from base. Bases come from crew_test_seed()
 * on the test thread: it initialises itself lazily, unsafe on threads. */
static uint64_t stream(uint64_t base, unsigned k)
{
    return base ^ (0x9E3779B97F4A7C15ull * (k + 1));
}

static unsigned scaled(unsigned n)
{
    unsigned s = n / crew_test_slowdown();
    return s ? s : 1;
}

static void start_thread(pthread_t *th, void *(*fn)(void *), void *arg)
{
    assert_int_equal(pthread_create(th, NULL, fn, arg), 0);
}

static void join_thread(pthread_t th)
{
    assert_int_equal(pthread_join(th, NULL), 0);
}

/* Back off after finding nothing: on 2 shared cores with up to 8 threads a
 * pure spin would starve the owner that produces the work. */
static void idle_backoff(unsigned *misses)
{
    if (++*misses % 16 == 0)
        sched_yield();
    else
        crew__cpu_relax();
}

/* ---- Single-threaded: exact behaviour ---- */

/* Filling the ring and pushing once more moves the oldest half and the new
 * task out, in FIFO order; the rest stays and pops in order. */
static void test_runq_fifo_overflow(void **state)
{
    (void)state;
    crew_test_watchdog(60);
    arena_t a;
    arena_init(&a, CAP + 1);
    for (size_t s = 0; s < NSTARTS; s++) {
        crew__runq_t q;
        crew__runq_init(&q, starts[s]);
        crew_task_t *oh = NULL, *ot = NULL;
        assert_null(crew__runq_pop(&q));
        assert_int_equal(crew__runq_len(&q), 0);
        for (unsigned i = 0; i < CAP; i++) {
            assert_int_equal(crew__runq_push(&q, T(&a, i), &oh, &ot), 0);
            assert_int_equal(crew__runq_len(&q), i + 1);
        }
        assert_null(oh);
        assert_int_equal(crew__runq_push(&q, T(&a, CAP), &oh, &ot), HALF + 1);
        crew_task_t *t = oh;
        for (unsigned i = 0; i < HALF; i++, t = t->qnext)
            assert_ptr_equal(t, T(&a, i));
        assert_ptr_equal(t, T(&a, CAP));
        assert_ptr_equal(ot, T(&a, CAP));
        assert_null(t->qnext);
        assert_int_equal(crew__runq_len(&q), CAP - HALF);
        for (unsigned i = HALF; i < CAP; i++)
            assert_ptr_equal(crew__runq_pop(&q), T(&a, i));
        assert_null(crew__runq_pop(&q));
        assert_int_equal(crew__runq_len(&q), 0);
    }
    arena_fini(&a);
}

/* Go's RunSchedLocalQueueStealTest made exact: with k tasks queued a steal
 * takes ceil(k/2), returns the newest of them, leaves the others in dst in
 * FIFO order, and leaves the victim's rest in order. dst is reused without
 * re-initialisation so its counters also cross 2^32. */
static void test_runq_steal_amount(void **state)
{
    (void)state;
    crew_test_watchdog(60);
    arena_t a;
    arena_init(&a, CAP);
    for (size_t s = 0; s < NSTARTS; s++) {
        crew__runq_t victim, dst;
        crew__runq_init(&dst, starts[s] - 3000);
        for (unsigned k = 0; k <= CAP; k++) {
            crew__runq_init(&victim, starts[s]);
            crew_task_t *oh = NULL, *ot = NULL;
            for (unsigned i = 0; i < k; i++)
                assert_int_equal(crew__runq_push(&victim, T(&a, i), &oh, &ot), 0);
            unsigned moved = 12345;
            crew_task_t *r = crew__runq_steal(&victim, &dst, &moved);
            if (k == 0) {
                assert_null(r);
                assert_int_equal(moved, 0);
                assert_int_equal(crew__runq_len(&dst), 0);
                continue;
            }
            assert_int_equal(moved, k - k / 2);
            assert_ptr_equal(r, T(&a, moved - 1));
            assert_int_equal(crew__runq_len(&dst), moved - 1);
            assert_int_equal(crew__runq_len(&victim), k - moved);
            for (unsigned i = 0; i + 1 < moved; i++)
                assert_ptr_equal(crew__runq_pop(&dst), T(&a, i));
            assert_null(crew__runq_pop(&dst));
            for (unsigned i = moved; i < k; i++)
                assert_ptr_equal(crew__runq_pop(&victim), T(&a, i));
            assert_null(crew__runq_pop(&victim));
            moved = 12345;
            assert_null(crew__runq_steal(&victim, &dst, &moved));
            assert_int_equal(moved, 0);
        }
    }
    arena_fini(&a);
}

/* Link tasks first..first+n-1 through qnext. */
static crew_task_t *make_list(arena_t *a, size_t first, size_t n)
{
    for (size_t i = 0; i < n; i++)
        T(a, first + i)->qnext = i + 1 < n ? T(a, first + i + 1) : NULL;
    return n ? T(a, first) : NULL;
}

/* push_list takes min(n, room, list length), advances the list by exactly
 * that, and appends in list order. */
static void test_runq_push_list(void **state)
{
    (void)state;
    crew_test_watchdog(60);
    arena_t a;
    arena_init(&a, 300);
    for (size_t s = 0; s < NSTARTS; s++) {
        crew__runq_t q;
        crew__runq_init(&q, starts[s]);
        crew_task_t *l = make_list(&a, 0, 300), *none = NULL;
        assert_int_equal(crew__runq_push_list(&q, &none, 5), 0);
        assert_null(none);
        assert_int_equal(crew__runq_push_list(&q, &l, 0), 0);
        assert_ptr_equal(l, T(&a, 0));
        assert_int_equal(crew__runq_push_list(&q, &l, 10), 10);
        assert_ptr_equal(l, T(&a, 10));
        assert_int_equal(crew__runq_push_list(&q, &l, 1000), CAP - 10);
        assert_ptr_equal(l, T(&a, CAP));
        assert_int_equal(crew__runq_len(&q), CAP);
        assert_int_equal(crew__runq_push_list(&q, &l, 1000), 0);
        assert_ptr_equal(l, T(&a, CAP));
        for (unsigned i = 0; i < 100; i++)
            assert_ptr_equal(crew__runq_pop(&q), T(&a, i));
        assert_int_equal(crew__runq_push_list(&q, &l, 30), 30);
        assert_ptr_equal(l, T(&a, CAP + 30));
        assert_int_equal(crew__runq_push_list(&q, &l, 1000), 300 - CAP - 30);
        assert_null(l);
        assert_int_equal(crew__runq_len(&q), 200);
        for (unsigned i = 100; i < 300; i++)
            assert_ptr_equal(crew__runq_pop(&q), T(&a, i));
        assert_null(crew__runq_pop(&q));
    }
    arena_fini(&a);
}

/* ---- Unpush: the owner takes its newest task back ---- */

static void push_range(crew__runq_t *q, arena_t *a, size_t first, size_t n)
{
    crew_task_t *oh = NULL, *ot = NULL;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(crew__runq_push(q, T(a, first + i), &oh, &ot), 0);
}

static void pop_range(crew__runq_t *q, arena_t *a, size_t first, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(crew__runq_pop(q), T(a, first + i));
}

/* Unpush succeeds exactly for the task at tail - 1, leaves everything else
 * in place, and fails once a consumer took that task. */
static void test_runq_unpush(void **state)
{
    (void)state;
    crew_test_watchdog(60);
    arena_t a;
    arena_init(&a, CAP + 2);
    for (size_t s = 0; s < NSTARTS; s++) {
        crew__runq_t q, dst;
        crew__runq_init(&q, starts[s]);
        crew__runq_init(&dst, starts[s] + 1000);
        crew_task_t *oh = NULL, *ot = NULL;
        unsigned moved;

        /* Empty, then only the newest of five. */
        assert_false(crew__runq_unpush(&q, T(&a, 0)));
        assert_int_equal(crew__runq_len(&q), 0);
        push_range(&q, &a, 0, 5);
        assert_false(crew__runq_unpush(&q, T(&a, 0)));
        assert_false(crew__runq_unpush(&q, T(&a, 2)));
        assert_false(crew__runq_unpush(&q, T(&a, 5)));
        assert_int_equal(crew__runq_len(&q), 5);
        assert_true(crew__runq_unpush(&q, T(&a, 4)));
        assert_int_equal(crew__runq_len(&q), 4);
        assert_false(crew__runq_unpush(&q, T(&a, 4)));
        assert_true(crew__runq_unpush(&q, T(&a, 3)));
        assert_int_equal(crew__runq_len(&q), 3);
        /* The freed slot is reused, and the new task is the newest. */
        push_range(&q, &a, 5, 1);
        assert_false(crew__runq_unpush(&q, T(&a, 2)));
        assert_true(crew__runq_unpush(&q, T(&a, 5)));
        push_range(&q, &a, 6, 1);
        pop_range(&q, &a, 0, 3);
        assert_ptr_equal(crew__runq_pop(&q), T(&a, 6));
        assert_null(crew__runq_pop(&q));
        /* Popped: its slot still holds it, but it is not queued. */
        assert_false(crew__runq_unpush(&q, T(&a, 6)));
        push_range(&q, &a, 7, 2);
        pop_range(&q, &a, 7, 2);
        assert_false(crew__runq_unpush(&q, T(&a, 8)));
        assert_int_equal(crew__runq_len(&q), 0);

        /* Stolen. A steal after an unpush sees the new version and the
         * lowered tail. */
        push_range(&q, &a, 0, 1);
        assert_ptr_equal(crew__runq_steal(&q, &dst, &moved), T(&a, 0));
        assert_int_equal(moved, 1);
        assert_false(crew__runq_unpush(&q, T(&a, 0)));
        push_range(&q, &a, 0, 5);
        assert_ptr_equal(crew__runq_steal(&q, &dst, &moved), T(&a, 2));
        assert_int_equal(moved, 3);
        pop_range(&dst, &a, 0, 2);
        assert_false(crew__runq_unpush(&q, T(&a, 2)));
        assert_true(crew__runq_unpush(&q, T(&a, 4)));
        assert_ptr_equal(crew__runq_steal(&q, &dst, &moved), T(&a, 3));
        assert_int_equal(moved, 1);
        assert_false(crew__runq_unpush(&q, T(&a, 3)));
        assert_null(crew__runq_steal(&q, &dst, &moved));
        assert_int_equal(crew__runq_len(&q), 0);
        assert_int_equal(crew__runq_len(&dst), 0);

        /* Full ring: an unpush makes room for one push without overflow;
         * after an overflow the newest queued task is the one before t. */
        push_range(&q, &a, 0, CAP);
        assert_true(crew__runq_unpush(&q, T(&a, CAP - 1)));
        push_range(&q, &a, CAP, 1);
        assert_int_equal(crew__runq_len(&q), CAP);
        assert_int_equal(crew__runq_push(&q, T(&a, CAP + 1), &oh, &ot), HALF + 1);
        assert_ptr_equal(oh, T(&a, 0));
        assert_ptr_equal(ot, T(&a, CAP + 1));
        assert_false(crew__runq_unpush(&q, T(&a, CAP + 1)));
        assert_true(crew__runq_unpush(&q, T(&a, CAP)));
        for (unsigned i = CAP - 2; i >= HALF; i--) {
            if (i > HALF)
                assert_false(crew__runq_unpush(&q, T(&a, HALF)));
            assert_true(crew__runq_unpush(&q, T(&a, i)));
            assert_int_equal(crew__runq_len(&q), i - HALF);
        }
        assert_false(crew__runq_unpush(&q, T(&a, HALF)));
        assert_null(crew__runq_pop(&q));

        /* Every successful unpush changes head's version and keeps its
         * index; a version about to wrap wraps without carrying into the
         * index. */
        push_range(&q, &a, 0, 2);
        uint64_t h0 = atomic_load(&q.head);
        assert_true(crew__runq_unpush(&q, T(&a, 1)));
        uint64_t h1 = atomic_load(&q.head);
        assert_int_equal((uint32_t)h1, (uint32_t)h0);
        assert_true(h1 != h0);
        atomic_store(&q.head, (uint64_t)UINT32_MAX << 32 | (uint32_t)h1);
        push_range(&q, &a, 1, 2);
        assert_true(crew__runq_unpush(&q, T(&a, 2)));
        assert_int_equal((uint32_t)atomic_load(&q.head), (uint32_t)h0);
        assert_int_equal(crew__runq_len(&q), 2);
        assert_ptr_equal(crew__runq_steal(&q, &dst, &moved), T(&a, 0));
        assert_int_equal(moved, 1);
        assert_true(crew__runq_unpush(&q, T(&a, 1)));
        assert_int_equal(crew__runq_len(&q), 0);
        assert_null(crew__runq_pop(&q));
    }
    arena_fini(&a);
}

/* ---- Single-threaded model check across the wrap (row 3) ---- */

#define MODEL_POOL 1024u
#define MODEL_LIST_MAX 300u

typedef struct model {
    arena_t *a;
    crew__runq_t q, dst;
    uint32_t ring[2 * CAP]; /* Expected queue content, task indices. */
    uint64_t h, t;
    uint32_t free[MODEL_POOL]; /* Tasks not in the queue. */
    unsigned nfree;
} model_t;

static uint32_t model_size(model_t *m)
{
    return (uint32_t)(m->t - m->h);
}

static uint32_t model_at(model_t *m, uint32_t i)
{
    return m->ring[(m->h + i) % (2 * CAP)];
}

static crew_task_t *model_alloc(model_t *m)
{
    return T(m->a, m->free[--m->nfree]);
}

static void model_release(model_t *m, crew_task_t *t)
{
    m->free[m->nfree++] = (uint32_t)ix(m->a, t);
}

static void model_push(model_t *m)
{
    crew_task_t *t = model_alloc(m), *oh = NULL, *ot = NULL;
    unsigned n = crew__runq_push(&m->q, t, &oh, &ot);
    if (model_size(m) < CAP) {
        assert_int_equal(n, 0);
        m->ring[m->t++ % (2 * CAP)] = (uint32_t)ix(m->a, t);
        return;
    }
    assert_int_equal(n, HALF + 1);
    crew_task_t *x = oh;
    for (unsigned i = 0; i < HALF; i++, x = x->qnext) {
        assert_ptr_equal(x, T(m->a, model_at(m, i)));
        model_release(m, x);
    }
    assert_ptr_equal(x, t);
    assert_ptr_equal(ot, t);
    assert_null(x->qnext);
    model_release(m, t);
    m->h += HALF;
}

static void model_pop(model_t *m)
{
    crew_task_t *t = crew__runq_pop(&m->q);
    if (!model_size(m)) {
        assert_null(t);
        return;
    }
    assert_ptr_equal(t, T(m->a, model_at(m, 0)));
    model_release(m, t);
    m->h++;
}

static void model_steal(model_t *m)
{
    unsigned moved = 12345;
    crew_task_t *r = crew__runq_steal(&m->q, &m->dst, &moved);
    uint32_t k = model_size(m);
    if (!k) {
        assert_null(r);
        assert_int_equal(moved, 0);
        return;
    }
    assert_int_equal(moved, k - k / 2);
    assert_ptr_equal(r, T(m->a, model_at(m, moved - 1)));
    for (unsigned i = 0; i + 1 < moved; i++) {
        crew_task_t *t = crew__runq_pop(&m->dst);
        assert_ptr_equal(t, T(m->a, model_at(m, i)));
        model_release(m, t);
    }
    assert_null(crew__runq_pop(&m->dst));
    model_release(m, r);
    m->h += moved;
}

static void model_push_list(model_t *m, uint64_t *rng)
{
    unsigned len =
        (unsigned)(crew_test_rand(rng) % (crew_test_rand(rng) % 4 ? 40 : MODEL_LIST_MAX));
    unsigned n = (unsigned)(crew_test_rand(rng) % (len + 5));
    crew_task_t *nodes[MODEL_LIST_MAX];
    for (unsigned i = 0; i < len; i++) {
        nodes[i] = model_alloc(m);
        if (i)
            nodes[i - 1]->qnext = nodes[i];
    }
    if (len)
        nodes[len - 1]->qnext = NULL;
    crew_task_t *l = len ? nodes[0] : NULL;
    unsigned want = n < len ? n : len;
    if (want > CAP - model_size(m))
        want = CAP - model_size(m);
    assert_int_equal(crew__runq_push_list(&m->q, &l, n), want);
    assert_ptr_equal(l, want < len ? nodes[want] : NULL);
    for (unsigned i = 0; i < want; i++)
        m->ring[m->t++ % (2 * CAP)] = (uint32_t)ix(m->a, nodes[i]);
    for (unsigned i = want; i < len; i++)
        model_release(m, nodes[i]);
}

/* Unpush the newest queued task most of the time, otherwise another queued
 * one, or the task that last left the queue or was never queued (the top of
 * the free stack). The model: it succeeds iff t is the newest queued task. */
static void model_unpush(model_t *m, uint64_t *rng)
{
    uint32_t k = model_size(m);
    unsigned c = (unsigned)(crew_test_rand(rng) % 8);
    crew_task_t *t;
    if (k && c < 5)
        t = T(m->a, model_at(m, k - 1));
    else if (k && c < 7)
        t = T(m->a, model_at(m, (uint32_t)(crew_test_rand(rng) % k)));
    else
        t = T(m->a, m->free[m->nfree - 1]);
    bool newest = k && t == T(m->a, model_at(m, k - 1));
    assert_int_equal(crew__runq_unpush(&m->q, t), newest);
    if (!newest)
        return;
    model_release(m, t);
    m->t--;
}

/* Random push/pop/steal/push_list/unpush against a model, checking exact content
 * and length after every step, from each start in starts[]. Phases bias
 * towards pushing (to reach full and overflow) or consuming. */
static void test_runq_wrap_model(void **state)
{
    (void)state;
    crew_test_watchdog(60);
    arena_t a;
    arena_init(&a, MODEL_POOL);
    model_t *m = malloc(sizeof *m);
    assert_non_null(m);
    uint64_t rng = stream(crew_test_seed(), 0);
    const unsigned ops = scaled(200000);
    for (size_t s = 0; s < NSTARTS; s++) {
        m->a = &a;
        crew__runq_init(&m->q, starts[s]);
        crew__runq_init(&m->dst, starts[s] + 77);
        m->h = m->t = 0;
        m->nfree = 0;
        for (uint32_t i = 0; i < MODEL_POOL; i++)
            m->free[m->nfree++] = i;
        for (unsigned op = 0; op < ops; op++) {
            unsigned push_weight = (op / 1500) % 2 ? 80 : 30;
            unsigned r = (unsigned)(crew_test_rand(&rng) % 100);
            if (r < push_weight)
                model_push(m);
            else if (r < push_weight + (100 - push_weight) / 2)
                model_pop(m);
            else if (r % 4 == 0)
                model_steal(m);
            else if (r % 4 == 1)
                model_unpush(m, &rng);
            else
                model_push_list(m, &rng);
            assert_int_equal(crew__runq_len(&m->q), model_size(m));
            assert_int_equal(crew__runq_len(&m->dst), 0);
        }
        while (model_size(m))
            model_pop(m);
        assert_null(crew__runq_pop(&m->q));
        assert_int_equal(m->nfree, MODEL_POOL);
    }
    free(m);
    arena_fini(&a);
}

/* ---- Row 1: the owner's pop and a steal race for the only task ---- */

typedef struct race {
    arena_t a;
    fails_t f;
    crew__runq_t q, dst;
    _Atomic bool done;
    unsigned rounds;
    uint64_t seed;
    uint64_t owner_got, thief_got, thief_empty; /* Published by join. */
} race_t;

static void *race_owner(void *arg)
{
    race_t *c = arg;
    uint64_t rng = stream(c->seed, 1);
    crew_task_t *oh = NULL, *ot = NULL;
    for (unsigned i = 0; i < c->rounds; i++) {
        crew_task_t *t = T(&c->a, i);
        if (crew__runq_push(&c->q, t, &oh, &ot))
            violation(&c->f, "round %u: push of a single task overflowed", i);
        /* A varying gap before the pop moves the collision point across the
         * thief's load-copy-CAS sequence. */
        for (unsigned k = crew_test_rand(&rng) % 8; k; k--)
            crew__cpu_relax();
        crew_task_t *r = crew__runq_pop(&c->q);
        if (r && r != t)
            violation(&c->f, "round %u: pop returned task %zu", i, ix(&c->a, r));
        if (r) {
            take(&c->a, &c->f, r);
            c->owner_got++;
        }
    }
    atomic_store_explicit(&c->done, true, memory_order_release);
    return NULL;
}

static void *race_thief(void *arg)
{
    race_t *c = arg;
    for (;;) {
        bool done = atomic_load_explicit(&c->done, memory_order_acquire);
        unsigned moved = 12345;
        crew_task_t *r = crew__runq_steal(&c->q, &c->dst, &moved);
        if (r) {
            if (moved != 1 || crew__runq_len(&c->dst) != 0)
                violation(&c->f, "steal of the only task moved %u, left %u in dst", moved,
                          crew__runq_len(&c->dst));
            take(&c->a, &c->f, r);
            c->thief_got++;
            continue;
        }
        if (moved != 0)
            violation(&c->f, "empty steal reported moved=%u", moved);
        if (done)
            break;
        c->thief_empty++;
        crew__cpu_relax();
    }
    return NULL;
}

static void test_runq_last_item_race(void **state)
{
    (void)state;
    crew_test_watchdog(60);
    race_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->rounds = scaled(4000000);
    c->seed = crew_test_seed();
    arena_init(&c->a, c->rounds);
    crew__runq_init(&c->q, UINT32_MAX - 1000);
    crew__runq_init(&c->dst, 0);
    pthread_t o, t;
    start_thread(&t, race_thief, c);
    start_thread(&o, race_owner, c);
    join_thread(o);
    join_thread(t);
    fprintf(stderr, "# %u rounds: owner popped %llu, thief stole %llu (%llu empty steals)\n",
            c->rounds, (unsigned long long)c->owner_got, (unsigned long long)c->thief_got,
            (unsigned long long)c->thief_empty);
    assert_no_fails(&c->f);
    assert_int_equal(c->owner_got + c->thief_got, c->rounds);
    assert_seen_once(&c->a, c->rounds);
    assert_int_equal(crew__runq_len(&c->q), 0);
    arena_fini(&c->a);
    free(c);
}

/* ---- Row 4: never a spurious empty ---- */

typedef struct nonempty {
    arena_t a;
    fails_t f;
    crew__runq_t q;
    _Atomic bool done;
    unsigned rounds;
    uint64_t checks, zeros; /* Published by join. */
} nonempty_t;

/* Push the next task before popping the previous one, so the queue holds
 * one or two tasks at every instant. The first task is queued before the
 * threads start and the last stays queued until the checker is joined. */
static void *nonempty_owner(void *arg)
{
    nonempty_t *c = arg;
    crew_task_t *oh = NULL, *ot = NULL;
    for (unsigned i = 1; i < c->rounds; i++) {
        if (crew__runq_push(&c->q, T(&c->a, i % c->a.n), &oh, &ot))
            violation(&c->f, "round %u: push overflowed", i);
        crew_task_t *r = crew__runq_pop(&c->q);
        if (r != T(&c->a, (i - 1) % c->a.n))
            violation(&c->f, "round %u: pop returned %p", i, (void *)r);
    }
    atomic_store_explicit(&c->done, true, memory_order_release);
    return NULL;
}

static void *nonempty_checker(void *arg)
{
    nonempty_t *c = arg;
    while (!atomic_load_explicit(&c->done, memory_order_acquire)) {
        uint32_t n = crew__runq_len(&c->q);
        if (n == 0)
            c->zeros++;
        if (n > CAP)
            violation(&c->f, "len reported %u", n);
        c->checks++;
    }
    return NULL;
}

static void test_runq_no_false_empty(void **state)
{
    (void)state;
    crew_test_watchdog(60);
    nonempty_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->rounds = scaled(8000000);
    arena_init(&c->a, 4);
    /* Crosses 2^32 after a thousand rounds. */
    crew__runq_init(&c->q, UINT32_MAX - 1000);
    crew_task_t *oh = NULL, *ot = NULL;
    assert_int_equal(crew__runq_push(&c->q, T(&c->a, 0), &oh, &ot), 0);
    pthread_t o, k;
    start_thread(&k, nonempty_checker, c);
    start_thread(&o, nonempty_owner, c);
    join_thread(o);
    join_thread(k);
    fprintf(stderr, "# %u rounds, %llu len checks, %llu zeros\n", c->rounds,
            (unsigned long long)c->checks, (unsigned long long)c->zeros);
    assert_no_fails(&c->f);
    assert_int_equal(c->zeros, 0);
    assert_ptr_equal(crew__runq_pop(&c->q), T(&c->a, (c->rounds - 1) % c->a.n));
    assert_null(crew__runq_pop(&c->q));
    arena_fini(&c->a);
    free(c);
}

/* ---- Row 5: stampede ----
 *
 * One owner pushes bursts (overflowing into an injection queue), pops some,
 * and refills from the injection queue with push_list. Thieves steal from
 * the owner into their own queue and drain it; when the owner has nothing
 * they take batches from the injection queue. The owner's insertion count
 * at each push (arena.pos) names the ring position, so every steal must be
 * a run of consecutive positions after the thief's previous one, and the
 * owner's pops must increase. */

#define MAX_THIEVES 8

typedef struct stampede stampede_t;

typedef struct thief {
    stampede_t *c;
    unsigned id;
    crew__runq_t dst;
    uint64_t stolen, steals, injected; /* Published by join. */
} thief_t;

struct stampede {
    arena_t a;
    fails_t f;
    crew__runq_t q;
    crew__inject_t inj;
    _Atomic bool done;
    unsigned items, nthieves;
    uint64_t seed;
    uint64_t owner_popped, owner_refilled, overflows; /* Published by join. */
    thief_t th[MAX_THIEVES];
};

static void owner_take(stampede_t *c, crew_task_t *t, uint64_t *next_pos)
{
    uint64_t p = c->a.pos[ix(&c->a, t)];
    if (p < *next_pos)
        violation(&c->f, "owner popped position %llu after %llu", (unsigned long long)p,
                  (unsigned long long)*next_pos - 1);
    *next_pos = p + 1;
    take(&c->a, &c->f, t);
    c->owner_popped++;
}

/* Move what fits from the injection queue into the ring. room is a lower
 * bound (len over-reports only), so push_list must take the whole batch. */
static void owner_refill(stampede_t *c, uint64_t *ins)
{
    unsigned room = CAP - crew__runq_len(&c->q);
    uint64_t n;
    crew_task_t *l = crew__inject_pop(&c->inj, room, &n);
    if (!l)
        return;
    unsigned k = 0;
    for (crew_task_t *t = l; t; t = t->qnext)
        c->a.pos[ix(&c->a, t)] = *ins + k++;
    if (k != n)
        violation(&c->f, "inject_pop returned %u tasks, reported %llu", k, (unsigned long long)n);
    unsigned got = crew__runq_push_list(&c->q, &l, (unsigned)n);
    if (got != n || l)
        violation(&c->f, "push_list took %u of %llu with room %u", got, (unsigned long long)n,
                  room);
    *ins += got;
    c->owner_refilled += got;
}

static void owner_push(stampede_t *c, crew_task_t *t, uint64_t *ins, uint64_t next_pos)
{
    crew_task_t *oh = NULL, *ot = NULL;
    c->a.pos[ix(&c->a, t)] = *ins;
    unsigned n = crew__runq_push(&c->q, t, &oh, &ot);
    if (!n) {
        ++*ins;
        return;
    }
    c->overflows++;
    /* The oldest half, at consecutive positions past everything popped,
     * then t. */
    unsigned k = 0;
    crew_task_t *x = oh;
    uint64_t p0 = c->a.pos[ix(&c->a, oh)];
    if (p0 < next_pos)
        violation(&c->f, "overflow took position %llu, already popped", (unsigned long long)p0);
    for (; x != t && k < n; x = x->qnext, k++)
        if (c->a.pos[ix(&c->a, x)] != p0 + k)
            violation(&c->f, "overflow list not consecutive at %u", k);
    if (n != HALF + 1 || k != HALF || x != t || ot != t || t->qnext)
        violation(&c->f, "overflow returned %u, list of %u then %p", n, k, (void *)x);
    if (crew__inject_push(&c->inj, oh, ot, n, false))
        violation(&c->f, "inject_push failed on an open queue");
}

static void *stampede_owner(void *arg)
{
    stampede_t *c = arg;
    uint64_t rng = stream(c->seed, 100);
    uint64_t ins = 0, next_pos = 0;
    unsigned next = 0;
    while (next < c->items) {
        /* Mostly short bursts that thieves keep up with, sometimes a long
         * one that fills the ring and overflows. */
        unsigned burst =
            1 + (unsigned)(crew_test_rand(&rng) % (crew_test_rand(&rng) % 4 ? 64 : 1024));
        for (; burst && next < c->items; burst--)
            owner_push(c, T(&c->a, next++), &ins, next_pos);
        for (unsigned k = (unsigned)(crew_test_rand(&rng) % 300); k; k--) {
            crew_task_t *t = crew__runq_pop(&c->q);
            if (!t)
                break;
            owner_take(c, t, &next_pos);
            /* "Run" the task, leaving thieves time to steal. */
            for (unsigned w = crew_test_rand(&rng) % 8; w; w--)
                crew__cpu_relax();
        }
        if (crew_test_rand(&rng) % 4 == 0)
            owner_refill(c, &ins);
    }
    /* Only the owner pushes to the injection queue, so once both are seen
     * empty here they stay empty. */
    for (;;) {
        crew_task_t *t;
        while ((t = crew__runq_pop(&c->q)))
            owner_take(c, t, &next_pos);
        if (!crew__inject_len(&c->inj))
            break;
        owner_refill(c, &ins);
    }
    atomic_store_explicit(&c->done, true, memory_order_release);
    return NULL;
}

static bool thief_steal(thief_t *th, uint64_t *next_pos)
{
    stampede_t *c = th->c;
    unsigned moved = 12345;
    crew_task_t *r = crew__runq_steal(&c->q, &th->dst, &moved);
    if (!r) {
        if (moved)
            violation(&c->f, "empty steal reported moved=%u", moved);
        return false;
    }
    if (moved < 1 || moved > HALF) {
        violation(&c->f, "steal moved %u", moved);
        return true;
    }
    /* dst pops give the batch's first moved-1 positions, r the last. */
    uint64_t p0 = 0;
    unsigned k = 0;
    crew_task_t *t;
    while ((t = crew__runq_pop(&th->dst))) {
        uint64_t p = c->a.pos[ix(&c->a, t)];
        if (k == 0)
            p0 = p;
        else if (p != p0 + k)
            violation(&c->f, "thief %u: batch not consecutive at %u", th->id, k);
        take(&c->a, &c->f, t);
        k++;
    }
    uint64_t pr = c->a.pos[ix(&c->a, r)];
    if (k == 0)
        p0 = pr;
    if (k != moved - 1 || pr != p0 + k || p0 < *next_pos)
        violation(&c->f, "thief %u: moved %u, popped %u, positions %llu..%llu after %llu", th->id,
                  moved, k, (unsigned long long)p0, (unsigned long long)pr,
                  (unsigned long long)*next_pos);
    *next_pos = pr + 1;
    take(&c->a, &c->f, r);
    th->stolen += moved;
    th->steals++;
    return true;
}

static bool thief_inject(thief_t *th, uint64_t *rng)
{
    stampede_t *c = th->c;
    uint64_t n;
    crew_task_t *l = crew__inject_pop(&c->inj, 1 + crew_test_rand(rng) % 16, &n);
    uint64_t k = 0;
    for (; l; l = l->qnext, k++)
        take(&c->a, &c->f, l);
    if (k != n)
        violation(&c->f, "inject_pop list of %llu, reported %llu", (unsigned long long)k,
                  (unsigned long long)n);
    th->injected += k;
    return k != 0;
}

static void *stampede_thief(void *arg)
{
    thief_t *th = arg;
    uint64_t rng = stream(th->c->seed, 200 + th->id), next_pos = 0;
    unsigned misses = 0;
    for (;;) {
        bool done = atomic_load_explicit(&th->c->done, memory_order_acquire);
        if (thief_steal(th, &next_pos) || thief_inject(th, &rng))
            continue;
        if (done)
            break;
        idle_backoff(&misses);
    }
    return NULL;
}

static void run_stampede(unsigned round, unsigned nthieves, unsigned items, uint32_t start)
{
    stampede_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->items = scaled(items);
    c->nthieves = nthieves;
    c->seed = stream(crew_test_seed(), 1000 * round);
    arena_init(&c->a, c->items);
    crew__runq_init(&c->q, start);
    assert_int_equal(crew__inject_init(&c->inj), 0);
    pthread_t o, t[MAX_THIEVES];
    for (unsigned i = 0; i < nthieves; i++) {
        c->th[i].c = c;
        c->th[i].id = i;
        crew__runq_init(&c->th[i].dst, start + 50 * i);
        start_thread(&t[i], stampede_thief, &c->th[i]);
    }
    start_thread(&o, stampede_owner, c);
    join_thread(o);
    uint64_t steals = 0, stolen = 0, injected = 0;
    for (unsigned i = 0; i < nthieves; i++) {
        join_thread(t[i]);
        steals += c->th[i].steals;
        stolen += c->th[i].stolen;
        injected += c->th[i].injected;
    }
    fprintf(stderr,
            "# %u tasks from %#x: owner popped %llu, refilled %llu, %llu overflows; "
            "%u thieves: %llu steals took %llu, %llu from injection\n",
            c->items, start, (unsigned long long)c->owner_popped,
            (unsigned long long)c->owner_refilled, (unsigned long long)c->overflows, nthieves,
            (unsigned long long)steals, (unsigned long long)stolen, (unsigned long long)injected);
    uint64_t total = c->owner_popped + stolen + injected;
    assert_no_fails(&c->f);
    assert_int_equal(total, c->items);
    assert_seen_once(&c->a, c->items);
    assert_int_equal(crew__runq_len(&c->q), 0);
    assert_int_equal(crew__inject_len(&c->inj), 0);
    crew__inject_destroy(&c->inj);
    arena_fini(&c->a);
    free(c);
}

/* Rounds start with fresh threads, so the start-up interleavings vary too. */
#define STAMPEDE_ROUNDS 16

static void test_runq_stampede_3(void **state)
{
    (void)state;
    crew_test_watchdog(120);
    for (unsigned r = 0; r < STAMPEDE_ROUNDS; r++)
        run_stampede(r, 3, 1000000, r << 28);
}

/* Oversubscribed: 8 threads on the machine's 2 cores, so threads are
 * preempted inside the steal's load-copy-CAS window. */
static void test_runq_stampede_7(void **state)
{
    (void)state;
    crew_test_watchdog(120);
    for (unsigned r = 0; r < STAMPEDE_ROUNDS; r++)
        run_stampede(r, 7, 500000, r << 28);
}

/* Row 3 under concurrency: every queue's counters cross 2^32 early, from a
 * different start each round. */
static void test_runq_stampede_wrap(void **state)
{
    (void)state;
    crew_test_watchdog(120);
    for (unsigned r = 0; r < STAMPEDE_ROUNDS; r++)
        run_stampede(r, 3, 300000, UINT32_MAX - 100 - 37 * r);
}

/* ---- Chained steal (Tokio loom queue.rs chained_steal, multi_stealer) ----
 *
 * Thieves steal from the owner and from each other: a thief's queue is
 * stolen from while it pops its own batch and while it is being stolen
 * into again. Thieves refill from the injection queue with push_list. Each
 * task "runs" a random few spins so batches stay exposed. Only the count
 * is checked: the thieves stop when all tasks are taken (a lost task hangs
 * the test until the watchdog kills it). */

typedef struct chain chain_t;

typedef struct worker {
    chain_t *c;
    unsigned id;
    crew__runq_t q;
    uint64_t ran, stolen_from_owner, stolen_from_thief; /* Published by join. */
} worker_t;

struct chain {
    arena_t a;
    fails_t f;
    crew__runq_t q;
    crew__inject_t inj;
    _Atomic uint64_t taken;
    unsigned items, nthieves;
    uint64_t seed;
    uint64_t owner_ran; /* Published by join. */
    worker_t w[MAX_THIEVES];
};

static void chain_run(chain_t *c, crew_task_t *t, uint64_t *rng, uint64_t *ran)
{
    take(&c->a, &c->f, t);
    atomic_fetch_add_explicit(&c->taken, 1, memory_order_relaxed);
    ++*ran;
    for (unsigned k = crew_test_rand(rng) % 32; k; k--)
        crew__cpu_relax();
}

static void *chain_owner(void *arg)
{
    chain_t *c = arg;
    uint64_t rng = stream(c->seed, 300);
    unsigned next = 0;
    while (next < c->items) {
        for (unsigned b = 1 + (unsigned)(crew_test_rand(&rng) % 300); b && next < c->items; b--) {
            crew_task_t *oh = NULL, *ot = NULL;
            unsigned n = crew__runq_push(&c->q, T(&c->a, next++), &oh, &ot);
            if (n && crew__inject_push(&c->inj, oh, ot, n, false))
                violation(&c->f, "inject_push failed on an open queue");
        }
        for (unsigned k = (unsigned)(crew_test_rand(&rng) % 64); k; k--) {
            crew_task_t *t = crew__runq_pop(&c->q);
            if (!t)
                break;
            chain_run(c, t, &rng, &c->owner_ran);
        }
    }
    crew_task_t *t;
    while ((t = crew__runq_pop(&c->q)))
        chain_run(c, t, &rng, &c->owner_ran);
    return NULL;
}

static bool chain_refill(worker_t *w)
{
    chain_t *c = w->c;
    uint64_t n;
    crew_task_t *l = crew__inject_pop(&c->inj, 32, &n);
    if (!l)
        return false;
    unsigned got = crew__runq_push_list(&w->q, &l, (unsigned)n);
    /* Our queue was empty and only we push to it: all of it fits. */
    if (got != n || l)
        violation(&c->f, "worker %u: push_list took %u of %llu", w->id, got, (unsigned long long)n);
    return true;
}

static void *chain_thief(void *arg)
{
    worker_t *w = arg;
    chain_t *c = w->c;
    uint64_t rng = stream(c->seed, 400 + w->id);
    unsigned misses = 0;
    while (atomic_load_explicit(&c->taken, memory_order_relaxed) < c->items) {
        crew_task_t *t = crew__runq_pop(&w->q);
        if (t) {
            chain_run(c, t, &rng, &w->ran);
            continue;
        }
        /* The owner with probability 2/(n+1), each other thief 1/(n+1). */
        unsigned v = (unsigned)(crew_test_rand(&rng) % (c->nthieves + 1));
        crew__runq_t *victim = v == w->id || v == c->nthieves ? &c->q : &c->w[v].q;
        unsigned moved = 12345;
        t = crew__runq_steal(victim, &w->q, &moved);
        if (t) {
            if (moved < 1 || moved > HALF)
                violation(&c->f, "worker %u: steal moved %u", w->id, moved);
            if (victim == &c->q)
                w->stolen_from_owner += moved;
            else
                w->stolen_from_thief += moved;
            chain_run(c, t, &rng, &w->ran);
            continue;
        }
        if (moved)
            violation(&c->f, "worker %u: empty steal reported moved=%u", w->id, moved);
        if (chain_refill(w))
            continue;
        idle_backoff(&misses);
    }
    return NULL;
}

static void run_chain(unsigned round, unsigned nthieves, unsigned items)
{
    chain_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->items = scaled(items);
    c->nthieves = nthieves;
    c->seed = stream(crew_test_seed(), 1000 * round);
    arena_init(&c->a, c->items);
    crew__runq_init(&c->q, UINT32_MAX - 500);
    assert_int_equal(crew__inject_init(&c->inj), 0);
    pthread_t o, t[MAX_THIEVES];
    for (unsigned i = 0; i < nthieves; i++) {
        c->w[i].c = c;
        c->w[i].id = i;
        crew__runq_init(&c->w[i].q, UINT32_MAX - 100 * i);
    }
    for (unsigned i = 0; i < nthieves; i++)
        start_thread(&t[i], chain_thief, &c->w[i]);
    start_thread(&o, chain_owner, c);
    join_thread(o);
    uint64_t total = c->owner_ran, from_owner = 0, from_thief = 0;
    for (unsigned i = 0; i < nthieves; i++) {
        join_thread(t[i]);
        worker_t *w = &c->w[i];
        total += w->ran;
        from_owner += w->stolen_from_owner;
        from_thief += w->stolen_from_thief;
        assert_int_equal(crew__runq_len(&w->q), 0);
    }
    fprintf(stderr,
            "# %u tasks: owner ran %llu; %u thieves stole %llu from the owner, "
            "%llu from each other\n",
            c->items, (unsigned long long)c->owner_ran, nthieves, (unsigned long long)from_owner,
            (unsigned long long)from_thief);
    assert_no_fails(&c->f);
    assert_int_equal(total, c->items);
    assert_seen_once(&c->a, c->items);
    assert_int_equal(crew__inject_len(&c->inj), 0);
    crew__inject_destroy(&c->inj);
    arena_fini(&c->a);
    free(c);
}

static void test_runq_chained_steal(void **state)
{
    (void)state;
    crew_test_watchdog(120);
    for (unsigned r = 0; r < 6; r++)
        run_chain(r, r % 2 ? 5 : 3, 500000);
}

/* ---- Unpush against thieves: every task obtained exactly once ----
 *
 * The owner pushes a batch of 1..8 tasks, then takes them back newest first
 * with unpush until one fails (sometimes it stops early and leaves the rest
 * queued), and sometimes pops. Thieves steal half into their own queue and
 * drain it. The race that matters: a thief reads head and tail and copies
 * slots, the owner unpushes tasks down into the copied range (and may push
 * new ones over them), then the thief's CAS. The version in head must make
 * that CAS fail, or the owner and the thief both get a task. A failed unpush
 * must leave the task queued unless a consumer took it. */

typedef struct unpush_run unpush_run_t;

typedef struct unpush_thief {
    unpush_run_t *c;
    unsigned id;
    int cpu;
    crew__runq_t dst;
    uint64_t stolen, steals; /* Published by join. */
} unpush_thief_t;

struct unpush_run {
    arena_t a;
    fails_t f;
    crew__runq_t q;
    _Atomic bool done;
    unsigned items, nthieves;
    /* Thieves never back off: several sharing a core are preempted between
     * their loads of head and tail and their CAS, which stretches that
     * window from nanoseconds to a time slice. */
    bool spin;
    int owner_cpu;
    _Atomic unsigned started;
    uint64_t seed;
    /* Published by join. */
    uint64_t unpushed, unpush_failed, retried, popped, overflowed;
    unpush_thief_t th[MAX_THIEVES];
};

/* The CPUs this process may run on, at most n of them; returns the count. */
static unsigned allowed_cpus(int *cpus, unsigned n)
{
    cpu_set_t set;
    unsigned k = 0;
    if (sched_getaffinity(0, sizeof set, &set))
        return 0;
    for (int i = 0; i < CPU_SETSIZE && k < n; i++)
        if (CPU_ISSET(i, &set))
            cpus[k++] = i;
    return k;
}

/* Best effort: a failure only makes the run less likely to find a race. */
static void pin_self(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static bool unpush_stop(unpush_run_t *c)
{
    return atomic_load_explicit(&c->f.n, memory_order_relaxed) != 0;
}

/* Take back batch[nb-1], batch[nb-2], ... while unpush succeeds, mostly all
 * of them. After a failure one retry may still succeed: the consumer that
 * moved head may have left our task queued. */
static void unpush_batch(unpush_run_t *c, crew_task_t **batch, unsigned nb, uint64_t *rng)
{
    unsigned want = crew_test_rand(rng) % 4 ? nb : (unsigned)(crew_test_rand(rng) % (nb + 1));
    while (want) {
        crew_task_t *t = batch[nb - 1];
        bool ok = crew__runq_unpush(&c->q, t);
        if (!ok) {
            c->unpush_failed++;
            if (crew_test_rand(rng) % 2 || !crew__runq_unpush(&c->q, t))
                break;
            c->retried++;
        }
        take(&c->a, &c->f, t);
        c->unpushed++;
        nb--;
        want--;
        for (unsigned w = crew_test_rand(rng) % 4; w; w--)
            crew__cpu_relax();
    }
}

/* Push t; false if the ring was full and t left with the oldest half, which
 * the owner then takes. */
static bool unpush_push(unpush_run_t *c, crew_task_t *t)
{
    crew_task_t *oh = NULL, *ot = NULL;
    unsigned n = crew__runq_push(&c->q, t, &oh, &ot);
    if (!n)
        return true;
    for (crew_task_t *x = oh; x; x = x->qnext)
        take(&c->a, &c->f, x);
    c->overflowed += n;
    return false;
}

static void *unpush_owner(void *arg)
{
    unpush_run_t *c = arg;
    uint64_t rng = stream(c->seed, 500);
    unsigned next = 0;
    pin_self(c->owner_cpu);
    /* Start once every thief is looking, so that short runs overlap. */
    while (atomic_load_explicit(&c->started, memory_order_relaxed) < c->nthieves)
        sched_yield();
    while (next < c->items && !unpush_stop(c)) {
        /* Now and then a burst that fills the ring, so that unpushes also
         * meet a full ring and overflows. */
        if (crew_test_rand(&rng) % 512 == 0)
            for (unsigned k = CAP + 44; k && next < c->items; k--)
                unpush_push(c, T(&c->a, next++));
        /* An overflow moves the oldest half, never this batch's earlier
         * tasks (they are among the newest); the task that overflowed is
         * not queued, so it is no candidate for unpush. */
        crew_task_t *batch[8];
        unsigned nb = 0;
        for (unsigned k = 1 + (unsigned)(crew_test_rand(&rng) % 8); k && next < c->items; k--) {
            crew_task_t *t = T(&c->a, next++);
            if (unpush_push(c, t))
                batch[nb++] = t;
        }
        unpush_batch(c, batch, nb, &rng);
        if (crew_test_rand(&rng) % 4 == 0) {
            for (unsigned k = 1 + (unsigned)(crew_test_rand(&rng) % 4); k; k--) {
                crew_task_t *t = crew__runq_pop(&c->q);
                if (!t)
                    break;
                take(&c->a, &c->f, t);
                c->popped++;
            }
        }
    }
    /* Bounded: a queue corrupted by a lost version would pop forever. */
    crew_task_t *t;
    for (unsigned i = 0; i <= CAP && (t = crew__runq_pop(&c->q)); i++) {
        take(&c->a, &c->f, t);
        c->popped++;
    }
    atomic_store_explicit(&c->done, true, memory_order_release);
    return NULL;
}

static void *unpush_thief(void *arg)
{
    unpush_thief_t *th = arg;
    unpush_run_t *c = th->c;
    unsigned misses = 0;
    pin_self(th->cpu);
    atomic_fetch_add_explicit(&c->started, 1, memory_order_relaxed);
    for (;;) {
        bool done = atomic_load_explicit(&c->done, memory_order_acquire);
        unsigned moved = 12345;
        crew_task_t *r = crew__runq_steal(&c->q, &th->dst, &moved);
        if (r) {
            if (moved < 1 || moved > HALF)
                violation(&c->f, "thief %u: steal moved %u", th->id, moved);
            unsigned k = 0;
            crew_task_t *t;
            while ((t = crew__runq_pop(&th->dst))) {
                take(&c->a, &c->f, t);
                k++;
            }
            if (k + 1 != moved)
                violation(&c->f, "thief %u: moved %u, then popped %u", th->id, moved, k);
            take(&c->a, &c->f, r);
            th->stolen += moved;
            th->steals++;
            continue;
        }
        if (moved)
            violation(&c->f, "thief %u: empty steal reported moved=%u", th->id, moved);
        if (done || unpush_stop(c))
            break;
        if (!c->spin)
            idle_backoff(&misses);
    }
    return NULL;
}

static void run_unpush(unsigned round, unsigned nthieves, unsigned items, bool spin)
{
    unpush_run_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->items = scaled(items);
    c->nthieves = nthieves;
    c->spin = spin;
    c->seed = stream(crew_test_seed(), 1000 * round + 7);
    /* Odd rounds cross 2^32 early. */
    uint32_t start = round % 2 ? UINT32_MAX - 37 * round : round << 28;
    arena_init(&c->a, c->items);
    crew__runq_init(&c->q, start);
    /* The owner gets a CPU to itself and the thieves share the others:
     * left to the scheduler on a loaded machine, owner and thief often share
     * one core and then only meet at preemptions, where the owner has long
     * moved head. */
    int cpus[MAX_THIEVES + 1];
    unsigned ncpus = allowed_cpus(cpus, MAX_THIEVES + 1);
    c->owner_cpu = ncpus >= 2 ? cpus[0] : -1;
    pthread_t o, t[MAX_THIEVES];
    for (unsigned i = 0; i < nthieves; i++) {
        c->th[i].c = c;
        c->th[i].id = i;
        c->th[i].cpu = ncpus >= 2 ? cpus[1 + i % (ncpus - 1)] : -1;
        crew__runq_init(&c->th[i].dst, start + 50 * i);
        start_thread(&t[i], unpush_thief, &c->th[i]);
    }
    start_thread(&o, unpush_owner, c);
    join_thread(o);
    /* A version that fails to stop a stale CAS can leave head past tail,
     * where steal retries forever: report before joining the thieves (on
     * failure they are left running and c is leaked). */
    assert_no_fails(&c->f);
    uint64_t steals = 0, stolen = 0;
    for (unsigned i = 0; i < nthieves; i++) {
        join_thread(t[i]);
        steals += c->th[i].steals;
        stolen += c->th[i].stolen;
    }
    fprintf(stderr,
            "# %u tasks from %#x: owner unpushed %llu (%llu failed, %llu on retry), popped %llu, "
            "%llu overflowed; %u thieves: %llu steals took %llu\n",
            c->items, start, (unsigned long long)c->unpushed, (unsigned long long)c->unpush_failed,
            (unsigned long long)c->retried, (unsigned long long)c->popped,
            (unsigned long long)c->overflowed, nthieves, (unsigned long long)steals,
            (unsigned long long)stolen);
    assert_no_fails(&c->f);
    assert_int_equal(c->unpushed + c->popped + c->overflowed + stolen, c->items);
    assert_seen_once(&c->a, c->items);
    assert_int_equal(crew__runq_len(&c->q), 0);
    arena_fini(&c->a);
    free(c);
}

#define UNPUSH_ROUNDS 8

static void test_runq_unpush_race_1(void **state)
{
    (void)state;
    crew_test_watchdog(60);
    for (unsigned r = 0; r < UNPUSH_ROUNDS; r++)
        run_unpush(r, 1, 1000000, false);
}

static void test_runq_unpush_race_3(void **state)
{
    (void)state;
    crew_test_watchdog(60);
    for (unsigned r = 0; r < UNPUSH_ROUNDS; r++)
        run_unpush(r, 3, 1000000, false);
}

static void test_runq_unpush_race_7(void **state)
{
    (void)state;
    crew_test_watchdog(60);
    for (unsigned r = 0; r < UNPUSH_ROUNDS; r++)
        run_unpush(r, 7, 1000000, false);
}

/* Seven thieves call steal in a tight loop, sharing one core (on a 2-core
 * machine) while the owner runs on the other. */
static void test_runq_unpush_preempted(void **state)
{
    (void)state;
    crew_test_watchdog(60);
    for (unsigned r = 0; r < UNPUSH_ROUNDS; r++)
        run_unpush(r, 7, 1000000, true);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_runq_fifo_overflow),
    cmocka_unit_test(test_runq_steal_amount),
    cmocka_unit_test(test_runq_push_list),
    cmocka_unit_test(test_runq_unpush),
    cmocka_unit_test(test_runq_wrap_model),
    cmocka_unit_test(test_runq_last_item_race),
    cmocka_unit_test(test_runq_no_false_empty),
    cmocka_unit_test(test_runq_stampede_3),
    cmocka_unit_test(test_runq_stampede_7),
    cmocka_unit_test(test_runq_stampede_wrap),
    cmocka_unit_test(test_runq_chained_steal),
    cmocka_unit_test(test_runq_unpush_race_1),
    cmocka_unit_test(test_runq_unpush_race_3),
    cmocka_unit_test(test_runq_unpush_race_7),
    cmocka_unit_test(test_runq_unpush_preempted),
};

CREW_TEST_MAIN("runq", tests)
