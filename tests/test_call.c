/* Callback timers (crew_call_later / crew_call_at / crew_rt_call_at and
 * crew_timer_cancel / crew_timer_release): callbacks run as tasks, in
 * deadline order; a cancel that returns 0 means the callback never runs; a
 * cancel after firing says so; shutdown drops pending callbacks; bad inputs;
 * many pending timers cancelled; and cancel-versus-fire from other threads
 * (RELIABILITY.md row 13). */
#include "task_util.h"

struct cb_state {
    _Atomic unsigned runs;
    _Atomic int order[64];
    _Atomic unsigned next;
    _Atomic int ran_in_task;
};

struct cb_arg {
    struct cb_state *st;
    int id;
};

static void *callback(void *arg)
{
    struct cb_arg *a = arg;
    unsigned slot = atomic_fetch_add(&a->st->next, 1);
    if (slot < 64)
        atomic_store(&a->st->order[slot], a->id);
    if (crew_self())
        atomic_store(&a->st->ran_in_task, 1);
    atomic_fetch_add(&a->st->runs, 1);
    return NULL;
}

static void test_call_fires_in_order(void **state)
{
    (void)state;
    crew_rt_opts_t o = crew_test_rt_opts();
    o.workers = 1; /* One worker keeps the callbacks' start order observable. */
    crew_rt_t *rt;
    assert_int_equal(crew_rt_create(&o, &rt), 0);
    static struct cb_state st;
    memset(&st, 0, sizeof st);
    struct cb_arg a[8];
    int64_t base = crew_now() + 20 * CREW_MS;
    /* Ids 0..7 with deadlines base + (7 - i) / 2 ms: pairs share a deadline. */
    for (int i = 0; i < 8; i++) {
        a[i] = (struct cb_arg){ &st, i };
        assert_int_equal(crew_rt_call_at(rt, base + (7 - i) / 2 * CREW_MS, callback, &a[i], NULL), 0);
    }
    TC_WAIT_UNTIL(atomic_load(&st.runs) == 8);
    /* Later deadlines after earlier ones; equal deadlines in the order set. */
    int expect[8] = { 6, 7, 4, 5, 2, 3, 0, 1 };
    for (int i = 0; i < 8; i++)
        assert_int_equal(atomic_load(&st.order[i]), expect[i]);
    assert_int_equal(atomic_load(&st.ran_in_task), 1);
    assert_int_equal(crew_rt_destroy(rt), 0);
}

static void *later_main(void *arg)
{
    struct cb_state *st = arg;
    static struct cb_arg a1, a2;
    a1 = (struct cb_arg){ st, 1 };
    a2 = (struct cb_arg){ st, 2 };
    crew_timer_t *t1, *t2;
    TC_CHECK_EQ(crew_call_later(1 * CREW_MS, callback, &a1, &t1), 0);
    TC_CHECK_EQ(crew_call_later(60 * CREW_S, callback, &a2, &t2), 0);
    while (atomic_load(&st->runs) == 0)
        crew_sleep(1 * CREW_MS);
    TC_CHECK_EQ(crew_timer_cancel(t1), -EALREADY);
    TC_CHECK_EQ(crew_timer_cancel(t2), 0);
    /* Zero delay fires on the next reactor round. */
    TC_CHECK_EQ(crew_call_later(0, callback, &a1, NULL), 0);
    while (atomic_load(&st->runs) == 1)
        crew_sleep(1 * CREW_MS);
    return NULL;
}

static void test_call_later_and_cancel(void **state)
{
    (void)state;
    static struct cb_state st;
    memset(&st, 0, sizeof st);
    tc_run(later_main, &st);
    tc_assert_clean();
    assert_int_equal(atomic_load(&st.runs), 2);
    assert_int_equal(atomic_load(&st.order[0]), 1);
    assert_int_equal(atomic_load(&st.order[1]), 1);
}

static void test_call_bad_input(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    crew_timer_t *t;
    assert_int_equal(crew_rt_call_at(NULL, 0, callback, NULL, &t), -EINVAL);
    assert_int_equal(crew_rt_call_at(rt, 0, NULL, NULL, &t), -EINVAL);
    assert_int_equal(crew_rt_call_at(rt, -1, callback, NULL, &t), -EINVAL);
    assert_int_equal(crew_call_at(0, callback, NULL, &t), -EPERM);
    assert_int_equal(crew_call_later(-1, callback, NULL, &t), -EINVAL);
    assert_int_equal(crew_call_later(1, callback, NULL, &t), -EPERM);
    assert_int_equal(crew_timer_cancel(NULL), -EINVAL);
    assert_int_equal(crew_timer_release(NULL), -EINVAL);
    /* A huge deadline is accepted (and never fires); release keeps it set. */
    static struct cb_state st;
    struct cb_arg a = { &st, 0 };
    assert_int_equal(crew_rt_call_at(rt, INT64_MAX, callback, &a, &t), 0);
    assert_int_equal(crew_timer_release(t), 0);
    assert_int_equal(crew_rt_call_at(rt, INT64_MAX, callback, &a, &t), 0);
    /* Shutdown drops both pending timers; the kept handle says so. */
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(crew_timer_cancel(t), -ESHUTDOWN);
    assert_int_equal(atomic_load(&st.runs), 0);
}

/* Many pending timers, cancelled in a scattered order: the heap's
 * tombstones and rebuilds keep every survivor. */
static void test_call_many_cancelled(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    unsigned n = 200000 / crew_test_slowdown();
    crew_timer_t **h = calloc(n, sizeof *h);
    assert_non_null(h);
    static struct cb_state st;
    memset(&st, 0, sizeof st);
    static struct cb_arg a;
    a = (struct cb_arg){ &st, 9 };
    int64_t far = crew_now() + 3600 * CREW_S;
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(crew_rt_call_at(rt, far + i, callback, &a, &h[i]), 0);
    unsigned kept = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned j = (unsigned)(((uint64_t)i * 7919) % n);
        if (j % 100 == 0) {
            kept++;
            continue;
        }
        assert_int_equal(crew_timer_cancel(h[j]), 0);
        h[j] = NULL;
    }
    /* The survivors stay pending; a timer due now still fires past them
     * and the tombstones. */
    static struct cb_state now_st;
    memset(&now_st, 0, sizeof now_st);
    static struct cb_arg b;
    b = (struct cb_arg){ &now_st, 1 };
    assert_int_equal(crew_rt_call_at(rt, 0, callback, &b, NULL), 0);
    TC_WAIT_UNTIL(atomic_load(&now_st.runs) == 1);
    unsigned left = 0;
    for (unsigned i = 0; i < n; i++)
        if (h[i]) {
            assert_int_equal(crew_timer_cancel(h[i]), 0);
            left++;
        }
    assert_int_equal(left, kept);
    assert_int_equal(atomic_load(&st.runs), 0);
    free(h);
    assert_int_equal(crew_rt_destroy(rt), 0);
}

/* Row 13: a timer cancelled from another thread while it fires. The
 * callback runs at most once, and never when the cancel returned 0. */
struct race {
    crew_rt_t *rt;
    unsigned iters;
    uint64_t seed;
    pthread_t thread;
    unsigned long cancelled, fired;
    _Atomic unsigned runs[64];
};

static void *count_run(void *arg)
{
    atomic_fetch_add((_Atomic unsigned *)arg, 1);
    return NULL;
}

static void *race_main(void *arg)
{
    struct race *r = arg;
    for (unsigned i = 0; i < r->iters; i++) {
        _Atomic unsigned *slot = &r->runs[i % 64];
        atomic_store(slot, 0);
        crew_timer_t *t;
        int64_t delay = (int64_t)(crew_test_rand(&r->seed) % 200) * CREW_US;
        TC_CHECK_EQ(crew_rt_call_at(r->rt, crew_now() + delay, count_run, (void *)slot, &t), 0);
        for (volatile unsigned s = 0, k = (unsigned)(crew_test_rand(&r->seed) % 20000); s < k; s++)
            ;
        int rc = crew_timer_cancel(t);
        if (rc == 0) {
            r->cancelled++;
            /* Give a wrongly started callback every chance to show up. */
            for (int y = 0; y < 100; y++)
                sched_yield();
            TC_CHECK_EQ(atomic_load(slot), 0);
        } else {
            TC_CHECK_EQ(rc, -EALREADY);
            r->fired++;
            TC_CHECK(TC_THREAD_WAIT_UNTIL(atomic_load(slot) == 1));
            TC_CHECK_EQ(atomic_load(slot), 1);
        }
    }
    return NULL;
}

static void test_call_cancel_vs_fire(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    static struct race r[2];
    unsigned iters = 4000 / crew_test_slowdown();
    for (int i = 0; i < 2; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].rt = rt;
        r[i].iters = iters;
        r[i].seed = crew_test_seed() + (uint64_t)i;
        assert_int_equal(pthread_create(&r[i].thread, NULL, race_main, &r[i]), 0);
    }
    unsigned long c = 0, f = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(r[i].thread, NULL), 0);
        c += r[i].cancelled;
        f += r[i].fired;
    }
    assert_int_equal(crew_rt_destroy(rt), 0);
    fprintf(stderr, "# %u rounds: %lu cancelled in time, %lu had fired\n", 2 * iters, c, f);
    tc_assert_clean();
    assert_int_equal(c + f, 2 * iters);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_call_fires_in_order),
    cmocka_unit_test(test_call_later_and_cancel),
    cmocka_unit_test(test_call_bad_input),
    cmocka_unit_test(test_call_many_cancelled),
    cmocka_unit_test(test_call_cancel_vs_fire),
};

CREW_TEST_MAIN("call", tests)
