/* Queues (include/crew/queue.h): FIFO, LIFO and stable priority order,
 * the non-waiting forms and their codes, waiting put and get with direct
 * hand-off, task_done/join, close and draining, cancellation and deadlines
 * while waiting (items conserved: RELIABILITY.md row 11), tasks and plain
 * threads sharing a queue, a many-producer many-consumer stress checked for
 * loss and duplication, destroy with a destructor, and bad inputs. The
 * cancel-versus-hand-off races are in test_sync_race.c. */
#include "task_util.h"

#define SPIN_CAP 10000000
#define WAIT_PARKED(t) TC_CHECK(TC_SPIN_UNTIL(crew_task_state(t) == CREW_TASK_WAITING, SPIN_CAP))
#define P(v) ((void *)(uintptr_t)(v))
#define V(p) ((uintptr_t)(p))

static crew_queue_t *qnew(crew_queue_kind_t k, size_t max, crew_queue_cmp_t cmp)
{
    crew_queue_t *q = NULL;
    assert_int_equal(crew_queue_create(k, max, cmp, &q), 0);
    return q;
}

/* Priority: the high byte; the low byte only tells equal items apart. */
static int cmp_hi(const void *a, const void *b)
{
    uintptr_t x = V(a) >> 8, y = V(b) >> 8;
    return (x > y) - (x < y);
}

static void test_queue_order(void **state)
{
    crew_queue_t *f = qnew(CREW_QUEUE_FIFO, 0, NULL), *l = qnew(CREW_QUEUE_LIFO, 0, NULL);
    crew_queue_t *p = qnew(CREW_QUEUE_PRIORITY, 0, cmp_hi);
    void *it;
    /* 100 items: past the first storage size, so the ring and heap grow. */
    for (uintptr_t i = 1; i <= 100; i++) {
        assert_int_equal(crew_queue_put_nowait(f, P(i)), 0);
        assert_int_equal(crew_queue_put(l, P(i)), 0);
        /* Priorities 3,2,1,0 repeating; the low byte is the insertion index. */
        assert_int_equal(crew_queue_put(p, P(((3 - i % 4) << 8) | i)), 0);
    }
    assert_int_equal(crew_queue_qsize(f), 100);
    for (uintptr_t i = 1; i <= 100; i++) {
        assert_int_equal(crew_queue_get_nowait(f, &it), 0);
        assert_int_equal(V(it), i);
        assert_int_equal(crew_queue_get(l, &it), 0);
        assert_int_equal(V(it), 101 - i);
    }
    uintptr_t prev = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(crew_queue_get(p, &it), 0);
        /* Ascending priority; equal priorities in insertion order. */
        assert_true(V(it) > prev);
        prev = V(it);
    }
    /* Interleave puts and gets so the FIFO ring wraps around. */
    for (uintptr_t i = 0; i < 1000; i++) {
        assert_int_equal(crew_queue_put(f, P(i)), 0);
        assert_int_equal(crew_queue_put(f, P(i + 5000)), 0);
        assert_int_equal(crew_queue_get(f, &it), 0);
    }
    assert_int_equal(crew_queue_qsize(f), 1000);
    for (uintptr_t i = 0; i < 1000; i++) {
        assert_int_equal(crew_queue_get(f, &it), 0);
        /* Put number 1000 + i: puts alternate i and i + 5000. */
        assert_int_equal(V(it), 500 + i / 2 + (i % 2 ? 5000 : 0));
    }
    assert_true(crew_queue_empty(f));
    assert_int_equal(crew_queue_destroy(f, NULL), 0);
    assert_int_equal(crew_queue_destroy(l, NULL), 0);
    assert_int_equal(crew_queue_destroy(p, NULL), 0);
}

static void test_queue_nowait_codes(void **state)
{
    crew_queue_t *q = qnew(CREW_QUEUE_FIFO, 2, NULL);
    void *it = P(7);
    assert_true(crew_queue_empty(q));
    assert_false(crew_queue_full(q));
    assert_int_equal(crew_queue_get_nowait(q, &it), -EAGAIN);
    assert_int_equal(V(it), 7);
    assert_int_equal(crew_queue_put_nowait(q, P(1)), 0);
    assert_int_equal(crew_queue_put_nowait(q, NULL), 0); /* NULL is an item too. */
    assert_true(crew_queue_full(q));
    assert_int_equal(crew_queue_put_nowait(q, P(3)), -ENOSPC);
    assert_int_equal(crew_queue_qsize(q), 2);
    assert_int_equal(crew_queue_close(q), 0);
    assert_int_equal(crew_queue_close(q), 0);
    assert_int_equal(crew_queue_put_nowait(q, P(3)), -EPIPE);
    assert_int_equal(crew_queue_put(q, P(3)), -EPIPE);
    /* Drained after close, then -EPIPE. */
    assert_int_equal(crew_queue_get(q, &it), 0);
    assert_int_equal(V(it), 1);
    assert_int_equal(crew_queue_get_nowait(q, &it), 0);
    assert_null(it);
    assert_int_equal(crew_queue_get(q, &it), -EPIPE);
    assert_int_equal(crew_queue_get_nowait(q, &it), -EPIPE);
    /* task_done: two items were put; a third call is one too many. */
    assert_int_equal(crew_queue_task_done(q), 0);
    assert_int_equal(crew_queue_task_done(q), 0);
    assert_int_equal(crew_queue_task_done(q), -EINVAL);
    assert_int_equal(crew_queue_join(q), 0);
    assert_int_equal(crew_queue_destroy(q, NULL), 0);
}

/* ---- Waiting put/get, join, close, cancel (inside tasks) ---------------- */

struct qw {
    crew_queue_t *q;
    void *item;
    int64_t timeout;
};

static void *getter(void *arg)
{
    struct qw *w = arg;
    crew_timeout_t s;
    if (w->timeout)
        TC_CHECK_EQ(crew_timeout_begin(&s, w->timeout), 0);
    int rc = crew_queue_get(w->q, &w->item);
    if (w->timeout)
        crew_timeout_end(&s);
    return P((intptr_t)rc - 1);
}

static void *putter(void *arg)
{
    struct qw *w = arg;
    crew_timeout_t s;
    if (w->timeout)
        TC_CHECK_EQ(crew_timeout_begin(&s, w->timeout), 0);
    int rc = crew_queue_put(w->q, w->item);
    if (w->timeout)
        crew_timeout_end(&s);
    return P((intptr_t)rc - 1);
}

static void *joiner(void *arg)
{
    struct qw *w = arg;
    return P((intptr_t)crew_queue_join(w->q) - 1);
}

static crew_task_t *spawn(crew_fn_t fn, void *arg)
{
    crew_task_t *t = NULL;
    TC_CHECK_EQ(crew_spawn(fn, arg, NULL, &t), 0);
    return t;
}

static int join_rc(crew_task_t *t)
{
    void *r = NULL;
    TC_CHECK_EQ(crew_join(t, &r), 0);
    return (int)(intptr_t)r + 1;
}

static void *wait_main(void *arg)
{
    crew_queue_t *q = arg;
    /* A waiting getter takes the next put directly. */
    struct qw g1 = { q, NULL, 0 }, g2 = { q, NULL, 0 };
    crew_task_t *t1 = spawn(getter, &g1);
    WAIT_PARKED(t1);
    crew_task_t *t2 = spawn(getter, &g2);
    WAIT_PARKED(t2);
    TC_CHECK_EQ(crew_queue_put(q, P(1)), 0);
    TC_CHECK_EQ(crew_queue_put(q, P(2)), 0);
    TC_CHECK_EQ(join_rc(t1), 0);
    TC_CHECK_EQ(join_rc(t2), 0);
    TC_CHECK_EQ(V(g1.item), 1); /* FIFO among getters. */
    TC_CHECK_EQ(V(g2.item), 2);
    /* join waits for both task_done calls. */
    struct qw jw = { q, NULL, 0 };
    crew_task_t *tj = spawn(joiner, &jw);
    WAIT_PARKED(tj);
    TC_CHECK_EQ(crew_queue_task_done(q), 0);
    TC_CHECK_EQ(crew_task_state(tj), CREW_TASK_WAITING);
    TC_CHECK_EQ(crew_queue_task_done(q), 0);
    TC_CHECK_EQ(join_rc(tj), 0);
    /* Bounded (maxsize 1): a putter waits while full, FIFO among putters. */
    TC_CHECK_EQ(crew_queue_put(q, P(10)), 0);
    struct qw p1 = { q, P(11), 0 }, p2 = { q, P(12), 0 };
    crew_task_t *tp1 = spawn(putter, &p1);
    WAIT_PARKED(tp1);
    crew_task_t *tp2 = spawn(putter, &p2);
    WAIT_PARKED(tp2);
    TC_CHECK_EQ(crew_queue_destroy(q, NULL), -EBUSY);
    void *it;
    for (uintptr_t want = 10; want <= 12; want++) {
        TC_CHECK_EQ(crew_queue_get(q, &it), 0);
        TC_CHECK_EQ(V(it), want);
    }
    TC_CHECK_EQ(join_rc(tp1), 0);
    TC_CHECK_EQ(join_rc(tp2), 0);
    for (int i = 0; i < 3; i++)
        TC_CHECK_EQ(crew_queue_task_done(q), 0);
    /* Cancel a waiting getter: unlinked; the next put stays queued. */
    crew_task_t *tc = spawn(getter, &g1);
    WAIT_PARKED(tc);
    TC_CHECK_EQ(crew_task_cancel(tc), 0);
    TC_CHECK_EQ(join_rc(tc), -ECANCELED);
    TC_CHECK_EQ(crew_queue_put(q, P(20)), 0);
    TC_CHECK_EQ(crew_queue_qsize(q), 1);
    /* Cancel a waiting putter: its item is never enqueued. */
    p1.item = P(21);
    crew_task_t *tcp = spawn(putter, &p1);
    WAIT_PARKED(tcp);
    TC_CHECK_EQ(crew_task_cancel(tcp), 0);
    TC_CHECK_EQ(join_rc(tcp), -ECANCELED);
    TC_CHECK_EQ(crew_queue_get(q, &it), 0);
    TC_CHECK_EQ(V(it), 20);
    TC_CHECK_EQ(crew_queue_get_nowait(q, &it), -EAGAIN);
    /* Deadline scopes: a get on an empty queue and a put on a full one. */
    g1.timeout = CREW_MS;
    TC_CHECK_EQ(join_rc(spawn(getter, &g1)), -ETIMEDOUT);
    TC_CHECK_EQ(crew_queue_put(q, P(30)), 0);
    p1.timeout = CREW_MS;
    TC_CHECK_EQ(join_rc(spawn(putter, &p1)), -ETIMEDOUT);
    TC_CHECK_EQ(crew_queue_qsize(q), 1);
    /* A cancelled join. */
    tj = spawn(joiner, &jw);
    WAIT_PARKED(tj);
    TC_CHECK_EQ(crew_task_cancel(tj), 0);
    TC_CHECK_EQ(join_rc(tj), -ECANCELED);
    /* close wakes a waiting putter (-EPIPE), then a waiting getter after
     * the drain. */
    p1.timeout = 0;
    tp1 = spawn(putter, &p1);
    WAIT_PARKED(tp1);
    TC_CHECK_EQ(crew_queue_close(q), 0);
    TC_CHECK_EQ(join_rc(tp1), -EPIPE);
    TC_CHECK_EQ(crew_queue_get(q, &it), 0);
    TC_CHECK_EQ(V(it), 30);
    g1.timeout = 0;
    TC_CHECK_EQ(join_rc(spawn(getter, &g1)), -EPIPE);
    TC_CHECK_EQ(crew_queue_task_done(q), 0);
    TC_CHECK_EQ(crew_queue_task_done(q), 0);
    TC_CHECK_EQ(crew_queue_task_done(q), -EINVAL);
    return NULL;
}

static void test_queue_waiting(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    crew_queue_t *q = qnew(CREW_QUEUE_FIFO, 1, NULL);
    tc_run(wait_main, q);
    tc_assert_clean();
    assert_int_equal(crew_queue_destroy(q, NULL), 0);
}

/* A getter waiting when close comes returns -EPIPE. */
static void *close_main(void *arg)
{
    crew_queue_t *q = arg;
    struct qw g = { q, P(99), 0 };
    crew_task_t *t = spawn(getter, &g);
    WAIT_PARKED(t);
    TC_CHECK_EQ(crew_queue_close(q), 0);
    TC_CHECK_EQ(join_rc(t), -EPIPE);
    TC_CHECK_EQ(V(g.item), 99);
    return NULL;
}

static void test_queue_close_wakes_getters(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    crew_queue_t *q = qnew(CREW_QUEUE_LIFO, 0, NULL);
    tc_run(close_main, q);
    tc_assert_clean();
    assert_int_equal(crew_queue_destroy(q, NULL), 0);
}

/* ---- Stress: producers and consumers, tasks and threads ----------------- */

#define ST_PRODUCERS 4 /* The last one is a plain thread. */
#define ST_CONSUMERS 4 /* The last one is a plain thread. */
#define ST_ITEMS 20000  /* Per producer. */

struct st {
    crew_queue_t *q;
    unsigned items;
    atomic_uchar *seen;
    atomic_ulong got;
    atomic_int next_producer;
};

static void *st_producer(void *arg)
{
    struct st *s = arg;
    uintptr_t base = (uintptr_t)atomic_fetch_add(&s->next_producer, 1) * s->items;
    for (unsigned i = 0; i < s->items; i++)
        TC_CHECK_EQ(crew_queue_put(s->q, P(base + i + 1)), 0);
    return NULL;
}

static void *st_consumer(void *arg)
{
    struct st *s = arg;
    void *it;
    int rc;
    while ((rc = crew_queue_get(s->q, &it)) == 0) {
        uintptr_t v = V(it) - 1;
        TC_CHECK(v < (uintptr_t)s->items * ST_PRODUCERS);
        TC_CHECK_EQ(atomic_fetch_add(&s->seen[v], 1), 0); /* No duplicate. */
        atomic_fetch_add(&s->got, 1);
        TC_CHECK_EQ(crew_queue_task_done(s->q), 0);
    }
    TC_CHECK_EQ(rc, -EPIPE);
    return NULL;
}

static void run_stress(crew_queue_kind_t kind, crew_queue_cmp_t cmp)
{
    crew_test_watchdog(120);
    tc_reset();
    struct st s = { .items = ST_ITEMS / crew_test_slowdown() };
    size_t total = (size_t)s.items * ST_PRODUCERS;
    s.seen = calloc(total, sizeof *s.seen);
    assert_non_null(s.seen);
    s.q = qnew(kind, 8, cmp);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *pt[ST_PRODUCERS], *ct[ST_CONSUMERS];
    pthread_t pth, cth;
    for (int i = 0; i < ST_CONSUMERS - 1; i++)
        assert_int_equal(crew_rt_spawn(rt, st_consumer, &s, NULL, &ct[i]), 0);
    assert_int_equal(pthread_create(&cth, NULL, st_consumer, &s), 0);
    for (int i = 0; i < ST_PRODUCERS - 1; i++)
        assert_int_equal(crew_rt_spawn(rt, st_producer, &s, NULL, &pt[i]), 0);
    assert_int_equal(pthread_create(&pth, NULL, st_producer, &s), 0);
    for (int i = 0; i < ST_PRODUCERS - 1; i++)
        assert_int_equal(crew_join(pt[i], NULL), 0);
    assert_int_equal(pthread_join(pth, NULL), 0);
    assert_int_equal(crew_queue_join(s.q), 0); /* Every item processed. */
    assert_int_equal(atomic_load(&s.got), total);
    assert_int_equal(crew_queue_close(s.q), 0);
    for (int i = 0; i < ST_CONSUMERS - 1; i++)
        assert_int_equal(crew_join(ct[i], NULL), 0);
    assert_int_equal(pthread_join(cth, NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    for (size_t i = 0; i < total; i++)
        assert_int_equal(atomic_load(&s.seen[i]), 1); /* No loss. */
    assert_int_equal(crew_queue_destroy(s.q, NULL), 0);
    free(s.seen);
}

static int cmp_ptr(const void *a, const void *b)
{
    return (V(a) > V(b)) - (V(a) < V(b));
}

static void test_queue_stress_fifo(void **state)
{
    run_stress(CREW_QUEUE_FIFO, NULL);
}

static void test_queue_stress_priority(void **state)
{
    run_stress(CREW_QUEUE_PRIORITY, cmp_ptr);
}

/* ---- Destroy, bad inputs ------------------------------------------------- */

static atomic_int dtor_calls;
static atomic_uintptr_t dtor_sum;

static void count_dtor(void *item)
{
    atomic_fetch_add(&dtor_calls, 1);
    atomic_fetch_add(&dtor_sum, V(item));
}

static void test_queue_destroy_dtor(void **state)
{
    crew_queue_t *q = qnew(CREW_QUEUE_PRIORITY, 0, cmp_ptr);
    for (uintptr_t i = 1; i <= 40; i++)
        assert_int_equal(crew_queue_put(q, P(i)), 0);
    atomic_store(&dtor_calls, 0);
    atomic_store(&dtor_sum, 0);
    assert_int_equal(crew_queue_destroy(q, count_dtor), 0);
    assert_int_equal(atomic_load(&dtor_calls), 40);
    assert_int_equal(atomic_load(&dtor_sum), 40 * 41 / 2);
}

static void test_queue_bad_inputs(void **state)
{
    crew_queue_t *q = NULL;
    void *it;
    assert_int_equal(crew_queue_create(CREW_QUEUE_FIFO, 0, NULL, NULL), -EINVAL);
    assert_int_equal(crew_queue_create((crew_queue_kind_t)7, 0, NULL, &q), -EINVAL);
    assert_int_equal(crew_queue_create(CREW_QUEUE_PRIORITY, 0, NULL, &q), -EINVAL);
    assert_int_equal(crew_queue_create(CREW_QUEUE_LIFO, 0, cmp_ptr, &q), -EINVAL);
    assert_null(q);
    assert_int_equal(crew_queue_destroy(NULL, NULL), -EINVAL);
    assert_int_equal(crew_queue_put(NULL, NULL), -EINVAL);
    assert_int_equal(crew_queue_put_nowait(NULL, NULL), -EINVAL);
    assert_int_equal(crew_queue_get(NULL, &it), -EINVAL);
    assert_int_equal(crew_queue_get_nowait(NULL, &it), -EINVAL);
    assert_int_equal(crew_queue_task_done(NULL), -EINVAL);
    assert_int_equal(crew_queue_join(NULL), -EINVAL);
    assert_int_equal(crew_queue_close(NULL), -EINVAL);
    assert_int_equal(crew_queue_qsize(NULL), 0);
    assert_true(crew_queue_empty(NULL));
    assert_false(crew_queue_full(NULL));
    q = qnew(CREW_QUEUE_FIFO, 0, NULL);
    assert_int_equal(crew_queue_get(q, NULL), -EINVAL);
    assert_int_equal(crew_queue_task_done(q), -EINVAL); /* Nothing was put. */
    assert_int_equal(crew_queue_join(q), 0);            /* Nothing unfinished. */
    assert_false(crew_queue_full(q));                   /* Unbounded. */
    assert_int_equal(crew_queue_destroy(q, NULL), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_queue_order),
    cmocka_unit_test(test_queue_nowait_codes),
    cmocka_unit_test(test_queue_waiting),
    cmocka_unit_test(test_queue_close_wakes_getters),
    cmocka_unit_test(test_queue_stress_fifo),
    cmocka_unit_test(test_queue_stress_priority),
    cmocka_unit_test(test_queue_destroy_dtor),
    cmocka_unit_test(test_queue_bad_inputs),
};

CREW_TEST_MAIN("queue", tests)
