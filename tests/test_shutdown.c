/* Graceful shutdown (crew_rt_shutdown, and crew_run's cancelling of tasks the
 * main task left behind): every task is woken wherever it waits (a timer,
 * an fd, a join, a yield loop, a shield region's cleanup) and finishes;
 * tasks that end within the grace period are not cancelled; spawns racing
 * with the shutdown either run or fail with -ESHUTDOWN (RELIABILITY.md rows
 * 7 and 8). LeakSanitizer (asan preset) checks that everything is freed. */
#include "task_util.h"

#include <fcntl.h>
#include <unistd.h>

struct counts {
    _Atomic int started, cancelled, normal, cleanup, other, last_other;
};

static void note(struct counts *c, int rc)
{
    if (rc == -ECANCELED) {
        atomic_fetch_add(&c->cancelled, 1);
    } else if (rc >= 0) {
        atomic_fetch_add(&c->normal, 1);
    } else {
        atomic_fetch_add(&c->other, 1);
        atomic_store(&c->last_other, rc);
    }
}

static struct counts cnt;
static int pipe_fds[2];

static void *sleeper(void *arg)
{
    atomic_fetch_add(&cnt.started, 1);
    note(&cnt, crew_sleep(3600 * CREW_S));
    return NULL;
}

static void *fd_waiter(void *arg)
{
    atomic_fetch_add(&cnt.started, 1);
    note(&cnt, crew_fd_wait(pipe_fds[0], CREW_FD_READ));
    return NULL;
}

static void *yielder(void *arg)
{
    atomic_fetch_add(&cnt.started, 1);
    int rc;
    while ((rc = crew_yield()) == 0)
        ;
    note(&cnt, rc);
    return NULL;
}

static void *joiner(void *arg)
{
    atomic_fetch_add(&cnt.started, 1);
    crew_task_t *child;
    /* 0 when the shutdown cancelled the child first (it then ends normally
     * and wakes the join before the joiner's own cancel arrives). */
    if (crew_spawn(sleeper, NULL, NULL, &child) == 0) {
        int rc = crew_join(child, NULL);
        note(&cnt, rc == 0 ? -ECANCELED : rc);
    }
    return NULL;
}

/* Cleanup that suspends, shielded: it runs to its end during shutdown. */
static void *cleaner(void *arg)
{
    atomic_fetch_add(&cnt.started, 1);
    int rc = crew_sleep(3600 * CREW_S);
    note(&cnt, rc);
    crew_shield_begin();
    if (crew_sleep(1 * CREW_MS) == 0)
        atomic_fetch_add(&cnt.cleanup, 1);
    crew_shield_end();
    return NULL;
}

static void test_shutdown_cancels_everything(void **state)
{
    (void)state;
    memset(&cnt, 0, sizeof cnt);
    assert_int_equal(pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
    crew_rt_t *rt = tc_rt_create();
    crew_fn_t kinds[] = { sleeper, fd_waiter, yielder, joiner, cleaner };
    int n = 0;
    for (int r = 0; r < 4; r++)
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            crew_task_t *t;
            assert_int_equal(crew_rt_spawn(rt, kinds[k], NULL, NULL, &t), 0);
            assert_int_equal(crew_detach(t), 0);
            n++;
        }
    TC_WAIT_UNTIL(atomic_load(&cnt.started) == n + 4); /* + the joiners' children */
    /* A held handle stays valid after the shutdown. */
    crew_task_t *held;
    assert_int_equal(crew_rt_spawn(rt, sleeper, NULL, NULL, &held), 0);
    TC_WAIT_UNTIL(crew_task_state(held) == CREW_TASK_WAITING);
    assert_int_equal(crew_rt_shutdown(rt, 0), 0);
    /* Every waiter was cancelled: the joiners' children too (4 more). */
    if (atomic_load(&cnt.cancelled) != n + 4 + 1)
        fail_msg("%d cancelled of %d; %d normal, %d other (last %d)", atomic_load(&cnt.cancelled),
                 n + 4 + 1, atomic_load(&cnt.normal), atomic_load(&cnt.other),
                 atomic_load(&cnt.last_other));
    assert_int_equal(atomic_load(&cnt.normal), 0);
    assert_int_equal(atomic_load(&cnt.cleanup), 4);
    assert_int_equal(crew_join(held, NULL), 0);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

static void *short_sleeper(void *arg)
{
    atomic_fetch_add(&cnt.started, 1);
    note(&cnt, crew_sleep(1 * CREW_MS));
    return NULL;
}

static void test_shutdown_grace_lets_tasks_finish(void **state)
{
    (void)state;
    memset(&cnt, 0, sizeof cnt);
    crew_rt_t *rt = tc_rt_create();
    for (int i = 0; i < 8; i++) {
        crew_task_t *t;
        assert_int_equal(crew_rt_spawn(rt, short_sleeper, NULL, NULL, &t), 0);
        assert_int_equal(crew_detach(t), 0);
    }
    /* A grace far longer than the sleeps: nothing needs cancelling. */
    assert_int_equal(crew_rt_shutdown(rt, 3600 * CREW_S), 0);
    assert_int_equal(atomic_load(&cnt.normal), 8);
    assert_int_equal(atomic_load(&cnt.cancelled), 0);
}

static void test_shutdown_bad_input(void **state)
{
    (void)state;
    assert_int_equal(crew_rt_shutdown(NULL, 0), -EINVAL);
    crew_rt_t *rt = tc_rt_create();
    assert_int_equal(crew_rt_shutdown(rt, -1), -EINVAL);
    assert_int_equal(crew_rt_shutdown(rt, 0), 0);
}

/* Row 7: spawns from other threads and from tasks race with the shutdown;
 * each spawn either runs its task or fails with -ESHUTDOWN. A thread may call
 * into a runtime while it shuts down, not after the shutdown returned: a
 * task that ignores cancellation (the holder) keeps the runtime alive until
 * the spawners have been refused and stopped. */
static _Atomic int holder_release;

static void *holder(void *arg)
{
    (void)arg;
    while (!atomic_load(&holder_release))
        (void)crew_yield(); /* -ECANCELED once cancelled: it holds on anyway. */
    return NULL;
}

struct shutdown_call {
    crew_rt_t *rt;
    int64_t grace;
    int rc;
    pthread_t thread;
};

static void *shutdown_thread(void *arg)
{
    struct shutdown_call *c = arg;
    c->rc = crew_rt_shutdown(c->rt, c->grace);
    return NULL;
}

struct spawner {
    crew_rt_t *rt;
    pthread_t thread;
    _Atomic int *ran;
    int accepted, refused;
};

static void *count_ran(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    crew_task_t *t;
    /* A task spawning while the runtime shuts down. */
    if (crew_spawn(count_ran, arg, NULL, &t) == 0)
        crew_detach(t);
    return NULL;
}

static void *spawner_main(void *arg)
{
    struct spawner *s = arg;
    for (;;) {
        crew_task_t *t;
        int rc = crew_rt_spawn(s->rt, count_ran, (void *)s->ran, NULL, &t);
        if (rc == -ESHUTDOWN) {
            s->refused++;
            return NULL;
        }
        TC_CHECK_EQ(rc, 0);
        if (rc)
            return NULL;
        s->accepted++;
        crew_detach(t);
    }
}

static void test_shutdown_vs_spawn(void **state)
{
    (void)state;
    unsigned rounds = 200 / crew_test_slowdown();
    /* Bounded in wall time too: creating runtimes is slow under TSan. */
    int64_t budget_end = crew_now() + 10 * CREW_S;
    for (unsigned r = 0; r < rounds && crew_now() < budget_end; r++) {
        crew_rt_t *rt = tc_rt_create();
        static _Atomic int ran;
        atomic_store(&ran, 0);
        atomic_store(&holder_release, 0);
        crew_task_t *h;
        assert_int_equal(crew_rt_spawn(rt, holder, NULL, NULL, &h), 0);
        assert_int_equal(crew_detach(h), 0);
        struct spawner s[2];
        for (int i = 0; i < 2; i++) {
            s[i] = (struct spawner){ .rt = rt, .ran = &ran };
            assert_int_equal(pthread_create(&s[i].thread, NULL, spawner_main, &s[i]), 0);
        }
        TC_WAIT_UNTIL(atomic_load(&ran) > 0);
        /* The spawners only stop once refused, so they keep racing until the
         * shutdown closes the runtime. */
        bool cancel = r % 2;
        struct shutdown_call sc = { .rt = rt, .grace = cancel ? 0 : 3600 * CREW_S, .rc = 1 };
        assert_int_equal(pthread_create(&sc.thread, NULL, shutdown_thread, &sc), 0);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(pthread_join(s[i].thread, NULL), 0);
            assert_int_equal(s[i].refused, 1);
        }
        atomic_store(&holder_release, 1);
        assert_int_equal(pthread_join(sc.thread, NULL), 0);
        assert_int_equal(sc.rc, 0);
        /* Without cancelling, every accepted outside spawn ran (the tasks'
         * own spawns add more); with it, queued ones may never start. */
        if (!cancel)
            assert_true(atomic_load(&ran) >= s[0].accepted + s[1].accepted);
    }
    tc_assert_clean();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_shutdown_cancels_everything),
    cmocka_unit_test(test_shutdown_grace_lets_tasks_finish),
    cmocka_unit_test(test_shutdown_bad_input),
    cmocka_unit_test(test_shutdown_vs_spawn),
};

CREW_TEST_MAIN("shutdown", tests)
