/* White-box tests of the injection queue (runtime/inject.c): exact FIFO and
 * length behaviour on one thread, then producers pushing batches against
 * consumers popping with varied maxima (every task exactly once, each
 * producer's order and each batch's contiguity preserved), and close()
 * racing with pushes (non-forced pushes refused from then on, forced ones
 * still accepted).
 *
 * Tasks are bare struct crew_task_s used as identities linked through
 * qnext. Threads record violations in a fails_t and counts in atomics; the
 * test thread asserts after the joins. */
#include "harness.h"
#include "queue_util.h"

#include "inject.h"

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>

#define MAX_THREADS 8


static unsigned scaled(unsigned n)
{
    unsigned s = n / crew_test_slowdown();
    return s ? s : 1;
}

/* Link tasks a[first..first+n-1] through qnext; the last link is left as
 * garbage on purpose, since push must terminate the list itself. */
static crew_task_t *batch(crew_task_t *a, size_t first, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        a[first + i].qnext = &a[first + i + 1];
    a[first + n - 1].qnext = &a[0];
    return &a[first];
}

/* Pop up to max and check that the list holds exactly tasks first.. in
 * order, with *n matching and the last link NULL. */
static void expect_pop(crew__inject_t *q, crew_task_t *a, uint64_t max, size_t first, size_t n)
{
    uint64_t got = 12345;
    crew_task_t *l = crew__inject_pop(q, max, &got);
    assert_int_equal(got, n);
    if (!n) {
        assert_null(l);
        return;
    }
    for (size_t i = 0; i < n; i++, l = l->qnext)
        assert_ptr_equal(l, &a[first + i]);
    assert_null(l);
}

static void test_inject_fifo(void **state)
{
    (void)state;
    crew_test_watchdog(30);
    crew_task_t *a = calloc(64, sizeof *a);
    assert_non_null(a);
    crew__inject_t q;
    assert_int_equal(crew__inject_init(&q), 0);
    assert_int_equal(crew__inject_len(&q), 0);
    expect_pop(&q, a, 10, 0, 0);
    assert_int_equal(crew__inject_push(&q, batch(a, 0, 10), &a[9], 10, false), 0);
    assert_int_equal(crew__inject_len(&q), 10);
    expect_pop(&q, a, 0, 0, 0);
    assert_int_equal(crew__inject_len(&q), 10);
    assert_int_equal(crew__inject_push(&q, batch(a, 10, 1), &a[10], 1, false), 0);
    assert_int_equal(crew__inject_push(&q, batch(a, 11, 19), &a[29], 19, false), 0);
    assert_int_equal(crew__inject_len(&q), 30);
    expect_pop(&q, a, 3, 0, 3);
    assert_int_equal(crew__inject_len(&q), 27);
    /* Exactly to the end of the first batch, then across the others. */
    expect_pop(&q, a, 7, 3, 7);
    expect_pop(&q, a, 100, 10, 20);
    assert_int_equal(crew__inject_len(&q), 0);
    expect_pop(&q, a, 100, 0, 0);
    /* Emptied: the tail must have been reset. */
    assert_int_equal(crew__inject_push(&q, batch(a, 30, 5), &a[34], 5, false), 0);
    assert_int_equal(crew__inject_push(&q, batch(a, 35, 5), &a[39], 5, false), 0);
    expect_pop(&q, a, 1, 30, 1);
    expect_pop(&q, a, 9, 31, 9);
    expect_pop(&q, a, 1, 0, 0);
    assert_int_equal(crew__inject_len(&q), 0);
    crew__inject_destroy(&q);
    free(a);
}

static void test_inject_close(void **state)
{
    (void)state;
    crew_test_watchdog(30);
    crew_task_t *a = calloc(64, sizeof *a);
    assert_non_null(a);
    crew__inject_t q;
    assert_int_equal(crew__inject_init(&q), 0);
    assert_int_equal(crew__inject_push(&q, batch(a, 0, 5), &a[4], 5, false), 0);
    crew__inject_close(&q);
    assert_int_equal(crew__inject_push(&q, batch(a, 5, 5), &a[9], 5, false), -ESHUTDOWN);
    assert_int_equal(crew__inject_len(&q), 5);
    assert_int_equal(crew__inject_push(&q, batch(a, 5, 5), &a[9], 5, true), 0);
    assert_int_equal(crew__inject_len(&q), 10);
    crew__inject_close(&q);
    assert_int_equal(crew__inject_push(&q, batch(a, 10, 1), &a[10], 1, false), -ESHUTDOWN);
    expect_pop(&q, a, 64, 0, 10);
    assert_int_equal(crew__inject_push(&q, batch(a, 10, 1), &a[10], 1, true), 0);
    expect_pop(&q, a, 64, 10, 1);
    assert_int_equal(crew__inject_len(&q), 0);
    crew__inject_destroy(&q);
    free(a);
}

/* ---- Producers against consumers ----
 *
 * Producer p owns tasks [p*per, (p+1)*per) and pushes them in increasing
 * order in batches of consecutive tasks, marking each batch's last task in
 * batch_end before the push (published by the queue's mutex). A consumer
 * sees a producer's tasks in increasing order, and within one popped list a
 * task that does not end its batch is followed by its successor. With one
 * consumer the whole pop sequence is the queue's order, so that holds across
 * lists too. When closing is on, a closer closes the queue once half the
 * tasks are in; each producer waits for the close at three quarters, so the
 * rest of its pushes must be refused and then pushed with force. */

typedef struct mpmc mpmc_t;

typedef struct actor {
    mpmc_t *c;
    unsigned id;
    uint64_t done_items, ops, refused; /* Published by join. */
} actor_t;

struct mpmc {
    fails_t f;
    crew__inject_t q;
    crew_task_t *a;
    bool *batch_end;
    _Atomic uint32_t *seen;
    unsigned nprod, ncons, per;
    uint64_t seed; /* From crew_test_seed() on the test thread: it is not thread-safe. */
    bool closing;
    _Atomic uint64_t pushed;
    _Atomic bool producers_done, closed;
    actor_t prod[MAX_THREADS], cons[MAX_THREADS];
};

static uint64_t actor_seed(mpmc_t *c, unsigned k)
{
    return c->seed ^ (0x9E3779B97F4A7C15ull * (k + 1));
}

static void *producer(void *arg)
{
    actor_t *me = arg;
    mpmc_t *c = me->c;
    uint64_t rng = actor_seed(c, me->id);
    const size_t base = (size_t)me->id * c->per, end = base + c->per;
    const size_t wait_at = base + c->per * 3 / 4;
    bool refused = false;
    for (size_t i = base; i < end;) {
        if (c->closing && i >= wait_at) {
            unsigned spins = 0;
            while (!atomic_load_explicit(&c->closed, memory_order_acquire))
                if (++spins % 64 == 0)
                    sched_yield();
        }
        size_t n = 1 + crew_test_rand(&rng) % (crew_test_rand(&rng) % 4 ? 8 : 64);
        if (n > end - i)
            n = end - i;
        if (c->closing && i < wait_at && n > wait_at - i)
            n = wait_at - i;
        c->batch_end[i + n - 1] = true;
        crew_task_t *first = batch(c->a, i, n), *last = &c->a[i + n - 1];
        int rc = crew__inject_push(&c->q, first, last, n, false);
        if (rc == -ESHUTDOWN) {
            refused = true;
            me->refused += n;
            rc = crew__inject_push(&c->q, first, last, n, true);
            if (rc)
                violation(&c->f, "forced push returned %d", rc);
        } else if (rc) {
            violation(&c->f, "push returned %d", rc);
        } else if (refused) {
            violation(&c->f, "producer %u: push accepted after a refusal", me->id);
        } else if (c->closing && i >= wait_at) {
            violation(&c->f, "producer %u: push accepted after close", me->id);
        }
        atomic_fetch_add_explicit(&c->pushed, n, memory_order_relaxed);
        me->done_items += n;
        me->ops++;
        i += n;
    }
    return NULL;
}

static void *closer(void *arg)
{
    mpmc_t *c = arg;
    uint64_t half = (uint64_t)c->nprod * c->per / 2;
    unsigned spins = 0;
    while (atomic_load_explicit(&c->pushed, memory_order_relaxed) < half)
        if (++spins % 64 == 0)
            sched_yield();
    crew__inject_close(&c->q);
    atomic_store_explicit(&c->closed, true, memory_order_release);
    return NULL;
}

static void *consumer(void *arg)
{
    actor_t *me = arg;
    mpmc_t *c = me->c;
    uint64_t rng = actor_seed(c, 100 + me->id);
    size_t next[MAX_THREADS] = {0}; /* Per producer: lowest task still expected. */
    for (unsigned p = 0; p < c->nprod; p++)
        next[p] = (size_t)p * c->per;
    crew_task_t *prev = NULL; /* Across lists only with a single consumer. */
    unsigned misses = 0;
    for (;;) {
        bool done = atomic_load_explicit(&c->producers_done, memory_order_acquire);
        uint64_t max = 1 + crew_test_rand(&rng) % (crew_test_rand(&rng) % 2 ? 8 : 200), n = 0;
        crew_task_t *l = crew__inject_pop(&c->q, max, &n);
        if (!l) {
            if (n)
                violation(&c->f, "empty pop reported %llu", (unsigned long long)n);
            if (done)
                break;
            if (++misses % 16 == 0)
                sched_yield();
            continue;
        }
        me->ops++;
        uint64_t k = 0;
        if (c->ncons > 1)
            prev = NULL;
        for (; l && k <= max; l = l->qnext, k++) {
            size_t i = (size_t)(l - c->a);
            if (i >= (size_t)c->nprod * c->per) {
                violation(&c->f, "popped %p, not a task", (void *)l);
                break;
            }
            unsigned p = (unsigned)(i / c->per);
            if (i < next[p])
                violation(&c->f, "consumer %u: task %zu after %zu", me->id, i, next[p] - 1);
            next[p] = i + 1;
            if (prev && !c->batch_end[prev - c->a] && l != prev + 1)
                violation(&c->f, "batch ending at or after %zu split by %zu", (size_t)(prev - c->a),
                          i);
            prev = l;
            atomic_fetch_add_explicit(&c->seen[i], 1, memory_order_relaxed);
        }
        if (k != n || n > max || l)
            violation(&c->f, "pop(max %llu) reported %llu, list of %llu%s", (unsigned long long)max,
                      (unsigned long long)n, (unsigned long long)k, l ? " or more" : "");
        me->done_items += k;
    }
    return NULL;
}

enum mpmc_mode {
    CONCURRENT,     /* Producers and consumers together. */
    CONSUMERS_LATE, /* Consumers start once all is pushed: len checked at rest. */
    CLOSING,        /* CONCURRENT plus the closer. */
};

static void start_consumers(mpmc_t *c, pthread_t *ct)
{
    for (unsigned i = 0; i < c->ncons; i++) {
        c->cons[i] = (actor_t){.c = c, .id = i};
        assert_int_equal(pthread_create(&ct[i], NULL, consumer, &c->cons[i]), 0);
    }
}

static void run_mpmc(unsigned round, unsigned nprod, unsigned ncons, unsigned per,
                     enum mpmc_mode mode)
{
    const bool closing = mode == CLOSING;
    mpmc_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->seed = crew_test_seed() ^ (0xBF58476D1CE4E5B9ull * (round + 1));
    c->nprod = nprod;
    c->ncons = ncons;
    c->per = scaled(per);
    c->closing = closing;
    size_t total = (size_t)nprod * c->per;
    c->a = calloc(total, sizeof *c->a);
    c->batch_end = calloc(total, sizeof *c->batch_end);
    c->seen = calloc(total, sizeof *c->seen);
    assert_non_null(c->a);
    assert_non_null(c->batch_end);
    assert_non_null(c->seen);
    assert_int_equal(crew__inject_init(&c->q), 0);
    pthread_t pt[MAX_THREADS], ct[MAX_THREADS], cl;
    if (mode != CONSUMERS_LATE)
        start_consumers(c, ct);
    if (closing)
        assert_int_equal(pthread_create(&cl, NULL, closer, c), 0);
    for (unsigned i = 0; i < nprod; i++) {
        c->prod[i] = (actor_t){.c = c, .id = i};
        assert_int_equal(pthread_create(&pt[i], NULL, producer, &c->prod[i]), 0);
    }
    uint64_t pushes = 0, pushed = 0, refused = 0, pops = 0, popped = 0;
    for (unsigned i = 0; i < nprod; i++) {
        assert_int_equal(pthread_join(pt[i], NULL), 0);
        pushes += c->prod[i].ops;
        pushed += c->prod[i].done_items;
        refused += c->prod[i].refused;
    }
    if (closing)
        assert_int_equal(pthread_join(cl, NULL), 0);
    if (mode == CONSUMERS_LATE) {
        assert_int_equal(crew__inject_len(&c->q), total);
        start_consumers(c, ct);
    }
    atomic_store_explicit(&c->producers_done, true, memory_order_release);
    for (unsigned i = 0; i < ncons; i++) {
        assert_int_equal(pthread_join(ct[i], NULL), 0);
        pops += c->cons[i].ops;
        popped += c->cons[i].done_items;
    }
    fprintf(stderr,
            "# %u producers, %u consumers%s: %llu tasks in %llu pushes (%llu refused), "
            "%llu pops\n",
            nprod, ncons, mode == CONSUMERS_LATE ? " (late)" : "", (unsigned long long)pushed,
            (unsigned long long)pushes, (unsigned long long)refused, (unsigned long long)pops);
    assert_no_fails(&c->f);
    assert_int_equal(pushed, total);
    assert_int_equal(popped, total);
    size_t bad = 0;
    for (size_t i = 0; i < total; i++)
        bad += atomic_load(&c->seen[i]) != 1;
    assert_int_equal(bad, 0);
    assert_int_equal(crew__inject_len(&c->q), 0);
    uint64_t n = 12345;
    assert_null(crew__inject_pop(&c->q, 10, &n));
    assert_int_equal(n, 0);
    if (closing) {
        /* Each producer's last quarter came after the close. */
        assert_true(refused >= (uint64_t)nprod * (c->per - c->per * 3 / 4));
        assert_int_equal(crew__inject_push(&c->q, &c->a[0], &c->a[0], 1, false), -ESHUTDOWN);
        assert_int_equal(crew__inject_len(&c->q), 0);
        assert_int_equal(crew__inject_push(&c->q, &c->a[0], &c->a[0], 1, true), 0);
        assert_int_equal(crew__inject_len(&c->q), 1);
        assert_ptr_equal(crew__inject_pop(&c->q, 10, &n), &c->a[0]);
        assert_int_equal(n, 1);
    }
    crew__inject_destroy(&c->q);
    free(c->a);
    free(c->batch_end);
    free((void *)c->seen);
    free(c);
}

static void test_inject_mpmc(void **state)
{
    (void)state;
    crew_test_watchdog(120);
    for (unsigned r = 0; r < 12; r += 4) {
        run_mpmc(r, 3, 3, 200000, CONCURRENT);
        run_mpmc(r + 1, 1, 4, 400000, CONCURRENT);
        run_mpmc(r + 2, 4, 1, 100000, r ? CONCURRENT : CONSUMERS_LATE);
        run_mpmc(r + 3, 7, 7, 50000, r ? CONCURRENT : CONSUMERS_LATE);
    }
}

static void test_inject_close_race(void **state)
{
    (void)state;
    crew_test_watchdog(120);
    for (unsigned r = 0; r < 8; r++)
        run_mpmc(100 + r, 1 + r % 4, 1 + (r / 2) % 3, 50000, CLOSING);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_inject_fifo),
    cmocka_unit_test(test_inject_close),
    cmocka_unit_test(test_inject_mpmc),
    cmocka_unit_test(test_inject_close_race),
};

CREW_TEST_MAIN("inject", tests)
