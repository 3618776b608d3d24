/* Signals (include/crew/signal.h): waiting in tasks, callbacks as tasks, a
 * delivery kept for the next wait, bursts, removal waking waiters, one
 * runtime per signal, cancellation, bad inputs, and crew_run's
 * CREW_RT_STOP_ON_SIGNAL (RELIABILITY.md row 27). Signals are raised with
 * raise() (directed at the calling thread, whose handler has run when it
 * returns) or kill() (the process: any thread that does not block it). */
#include "task_util.h"

#include <string.h>

struct waitarg {
    int set[2];
    size_t n;
    _Atomic int rc, signo;
};

static void *wait_task(void *arg)
{
    struct waitarg *a = arg;
    int s = 0;
    atomic_store(&a->rc, crew_signal_wait(a->set, a->n, &s));
    atomic_store(&a->signo, s);
    return NULL;
}

static void waitarg_init(struct waitarg *a, int signo)
{
    a->set[0] = signo;
    a->n = 1;
    atomic_init(&a->rc, 1000);
    atomic_init(&a->signo, 0);
}

static void test_signal_wait(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    assert_int_equal(crew_signal_add(rt, SIGUSR1, NULL, NULL), 0);
    struct waitarg a;
    waitarg_init(&a, SIGUSR1);
    a.set[a.n++] = SIGUSR2; /* Two signals, one of them added. */
    assert_int_equal(crew_signal_add(rt, SIGUSR2, NULL, NULL), 0);
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, wait_task, &a, NULL, &t), 0);
    TC_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(atomic_load(&a.rc), 0);
    assert_int_equal(atomic_load(&a.signo), SIGUSR1);
    assert_int_equal(crew_rt_destroy(rt), 0);
    /* Destroy gave the signal back: the default disposition is restored. */
    struct sigaction sa;
    assert_int_equal(sigaction(SIGUSR1, NULL, &sa), 0);
    assert_ptr_equal(sa.sa_handler, SIG_DFL);
}

static _Atomic int cb_runs, cb_in_task;

static void *callback(void *arg)
{
    (void)arg;
    if (crew_self())
        atomic_store(&cb_in_task, 1);
    atomic_fetch_add(&cb_runs, 1);
    return NULL;
}

/* A delivery no one took is kept for the next wait. */
static void test_signal_callback_and_kept(void **state)
{
    (void)state;
    atomic_store(&cb_runs, 0);
    crew_rt_t *rt = tc_rt_create();
    assert_int_equal(crew_signal_add(rt, SIGUSR1, NULL, NULL), 0);
    assert_int_equal(crew_signal_add(rt, SIGUSR2, callback, NULL), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    /* The reactor handles lower signal numbers first in a round, so once the
     * callback of SIGUSR2 ran, SIGUSR1 was recorded as unclaimed. */
    TC_WAIT_UNTIL(atomic_load(&cb_runs) == 1);
    assert_int_equal(atomic_load(&cb_in_task), 1);
    struct waitarg a;
    waitarg_init(&a, SIGUSR1);
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, wait_task, &a, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(atomic_load(&a.rc), 0);
    assert_int_equal(atomic_load(&a.signo), SIGUSR1);
    assert_int_equal(crew_rt_destroy(rt), 0);
}

/* Row 27: bursts of signals; each burst is delivered at least once. */
struct burst {
    _Atomic int got;
    _Atomic int stop;
};

static void *burst_waiter(void *arg)
{
    struct burst *b = arg;
    int set[] = { SIGUSR1 }, s;
    while (!atomic_load(&b->stop)) {
        int rc = crew_signal_wait(set, 1, &s);
        if (rc == -ECANCELED)
            break;
        TC_CHECK_EQ(rc, 0);
        TC_CHECK_EQ(s, SIGUSR1);
        atomic_fetch_add(&b->got, 1);
    }
    return NULL;
}

static void test_signal_bursts(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    assert_int_equal(crew_signal_add(rt, SIGUSR1, NULL, NULL), 0);
    static struct burst b;
    atomic_store(&b.got, 0);
    atomic_store(&b.stop, 0);
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, burst_waiter, &b, NULL, &t), 0);
    unsigned bursts = 1000 / crew_test_slowdown();
    for (unsigned i = 0; i < bursts; i++) {
        int before = atomic_load(&b.got);
        for (int k = 0; k < 8; k++)
            assert_int_equal(kill(getpid(), SIGUSR1), 0);
        TC_WAIT_UNTIL(atomic_load(&b.got) > before);
    }
    atomic_store(&b.stop, 1);
    /* It may have seen stop and ended already. */
    int crc = crew_task_cancel(t);
    assert_true(crc == 0 || crc == -ESRCH);
    assert_int_equal(crew_join(t, NULL), 0);
    tc_assert_clean();
    fprintf(stderr, "# %u bursts of 8: %d deliveries\n", bursts, atomic_load(&b.got));
    assert_int_equal(crew_rt_destroy(rt), 0);
}

static void test_signal_remove_and_cancel(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    assert_int_equal(crew_signal_add(rt, SIGUSR1, NULL, NULL), 0);
    assert_int_equal(crew_signal_add(rt, SIGUSR2, NULL, NULL), 0);
    struct waitarg a, c;
    waitarg_init(&a, SIGUSR1);
    waitarg_init(&c, SIGUSR2);
    crew_task_t *ta, *tc;
    assert_int_equal(crew_rt_spawn(rt, wait_task, &a, NULL, &ta), 0);
    assert_int_equal(crew_rt_spawn(rt, wait_task, &c, NULL, &tc), 0);
    TC_WAIT_UNTIL(crew_task_state(ta) == CREW_TASK_WAITING);
    TC_WAIT_UNTIL(crew_task_state(tc) == CREW_TASK_WAITING);
    assert_int_equal(crew_signal_remove(rt, SIGUSR1), 0);
    assert_int_equal(crew_join(ta, NULL), 0);
    assert_int_equal(atomic_load(&a.rc), -ENOENT);
    assert_int_equal(crew_task_cancel(tc), 0);
    assert_int_equal(crew_join(tc, NULL), 0);
    assert_int_equal(atomic_load(&c.rc), -ECANCELED);
    /* A wait for a signal the runtime does not have. */
    waitarg_init(&a, SIGUSR1);
    assert_int_equal(crew_rt_spawn(rt, wait_task, &a, NULL, &ta), 0);
    assert_int_equal(crew_join(ta, NULL), 0);
    assert_int_equal(atomic_load(&a.rc), -EINVAL);
    assert_int_equal(crew_signal_remove(rt, SIGUSR1), -ENOENT);
    assert_int_equal(crew_rt_destroy(rt), 0);
}

static void test_signal_one_runtime_per_signal(void **state)
{
    (void)state;
    crew_rt_t *a = tc_rt_create(), *b = tc_rt_create();
    assert_int_equal(crew_signal_add(a, SIGUSR1, NULL, NULL), 0);
    assert_int_equal(crew_signal_add(b, SIGUSR1, NULL, NULL), -EBUSY);
    /* Adding again in the same runtime replaces the callback. */
    assert_int_equal(crew_signal_add(a, SIGUSR1, callback, NULL), 0);
    assert_int_equal(crew_signal_remove(b, SIGUSR1), -ENOENT);
    assert_int_equal(crew_signal_remove(a, SIGUSR1), 0);
    assert_int_equal(crew_signal_add(b, SIGUSR1, NULL, NULL), 0);
    assert_int_equal(crew_rt_destroy(a), 0);
    assert_int_equal(crew_rt_destroy(b), 0);
}

static void *bad_wait_task(void *arg)
{
    (void)arg;
    int set[] = { SIGUSR1 }, bad[] = { 0 }, big[] = { NSIG }, s;
    TC_CHECK_EQ(crew_signal_wait(NULL, 1, &s), -EINVAL);
    TC_CHECK_EQ(crew_signal_wait(set, 1, NULL), -EINVAL);
    TC_CHECK_EQ(crew_signal_wait(set, 0, &s), -EINVAL);
    TC_CHECK_EQ(crew_signal_wait(bad, 1, &s), -EINVAL);
    TC_CHECK_EQ(crew_signal_wait(big, 1, &s), -EINVAL);
    /* Not added to this runtime. */
    TC_CHECK_EQ(crew_signal_wait(set, 1, &s), -EINVAL);
    return NULL;
}

static void test_signal_bad_input(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    int bad[] = { 0, -1, NSIG, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(crew_signal_add(rt, bad[i], NULL, NULL), -EINVAL);
    assert_int_equal(crew_signal_add(NULL, SIGUSR1, NULL, NULL), -EINVAL);
    assert_int_equal(crew_signal_remove(NULL, SIGUSR1), -EINVAL);
    assert_int_equal(crew_signal_remove(rt, 0), -EINVAL);
    int set[] = { SIGUSR1 }, s;
    assert_int_equal(crew_signal_wait(set, 1, &s), -EPERM);
    tc_run(bad_wait_task, NULL);
    tc_assert_clean();
    assert_int_equal(crew_rt_destroy(rt), 0);
}

/* crew_run with CREW_RT_STOP_ON_SIGNAL: SIGINT cancels the main task, the
 * runtime shuts down, crew_run returns -EINTR, and SIGINT's previous
 * disposition is back. */
static _Atomic int main_running;

static void *forever_main(void *arg)
{
    (void)arg;
    atomic_store(&main_running, 1);
    while (crew_sleep(3600 * CREW_S) == 0)
        ;
    return CREW_TASK_CANCELED;
}

static void *interrupter(void *arg)
{
    (void)arg;
    /* Not to this thread, which is about to exit: under TSan a handler
     * deferred to a thread that exits never runs. The reactor (which unblocks
     * the runtime's signals) or the test thread takes it. */
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGINT);
    pthread_sigmask(SIG_BLOCK, &one, NULL);
    while (!atomic_load(&main_running))
        sched_yield();
    kill(getpid(), SIGINT);
    return NULL;
}

static void test_signal_crew_run_stops(void **state)
{
    (void)state;
    atomic_store(&main_running, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, interrupter, NULL), 0);
    crew_rt_opts_t o = crew_test_rt_opts();
    o.flags |= CREW_RT_STOP_ON_SIGNAL;
    /* This thread blocks SIGINT too, so only the reactor (which unblocks
     * the signals its runtime took) can receive it: the design under test.
     * (Under TSan a handler due on a thread blocked in a raw futex call
     * would also never run.) */
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, SIGINT);
    pthread_sigmask(SIG_BLOCK, &one, &old);
    int rc = crew_run(forever_main, NULL, &o, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    assert_int_equal(rc, -EINTR);
    assert_int_equal(pthread_join(th, NULL), 0);
    struct sigaction sa;
    assert_int_equal(sigaction(SIGINT, NULL, &sa), 0);
    assert_ptr_equal(sa.sa_handler, SIG_DFL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_signal_wait),
    cmocka_unit_test(test_signal_callback_and_kept),
    cmocka_unit_test(test_signal_bursts),
    cmocka_unit_test(test_signal_remove_and_cancel),
    cmocka_unit_test(test_signal_one_runtime_per_signal),
    cmocka_unit_test(test_signal_bad_input),
    cmocka_unit_test(test_signal_crew_run_stops),
};

CREW_TEST_MAIN("signal", tests)
