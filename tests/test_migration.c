/* Tasks migrating between workers (RELIABILITY.md 3.1, matrix row 9).
 *
 * Built three times, as migration_O2, migration_fpic and migration_lto
 * (-O2; -O2 -fPIC; -O2 -flto): the compiler may keep a thread-local address
 * (errno's, or crew's own worker pointer if it were inlined) in a register
 * across a yield, and each mode caches differently.
 *
 * After every yield a task checks that crew_worker_index() names the worker
 * thread that really runs it: each index maps to the kernel thread id seen
 * the first time it was returned, and the raw gettid() must match it. errno
 * is written before a yield and read after it (its value is unspecified, but
 * reading it must not crash). With two or more workers, migrations must
 * happen. Yields alone rarely move a task here (a worker steals only when it
 * has nothing else, and 2 tasks per worker keep them all busy), so every
 * 32nd yield the task also joins a task of a second runtime: the wake comes
 * from a thread of that runtime, so the task re-enters through the injection
 * queue and resumes on whichever worker takes it first. */
#include "task_util.h"

enum { MAX_WORKERS = 64 };

struct mig {
    unsigned workers;
    unsigned long min_yields;      /* Per task. */
    unsigned long max_yields;      /* Per task. */
    unsigned long want_migrations; /* In total: stop early once seen (after min_yields). */
    crew_rt_t *waker;              /* The second runtime. */
    _Atomic pid_t tid_of[MAX_WORKERS];
    atomic_ulong migrations, yields, joins;
    atomic_ulong bad_index;        /* Index out of range, or two reads disagree. */
    atomic_ulong bad_thread;       /* Index does not match the running thread. */
    atomic_ulong bad_self;         /* crew_self/crew_rt_current changed. */
    atomic_ulong bad_join;         /* The cross-runtime spawn or join failed. */
};

#if !defined(CREW_TSAN)
/* Where errno is read to after a yield (relaxed atomic: several tasks store). */
static atomic_int errno_sink;
#endif

/* Does idx name the thread running the caller? */
static void check_worker(struct mig *m, int idx)
{
    if (idx < 0 || (unsigned)idx >= m->workers) {
        atomic_fetch_add(&m->bad_index, 1);
        return;
    }
    pid_t tid = tc_gettid();
    pid_t known = 0;
    if (!atomic_compare_exchange_strong(&m->tid_of[idx], &known, tid) && known != tid)
        atomic_fetch_add(&m->bad_thread, 1);
}

static void *nop(void *arg)
{
    return arg;
}

/* Suspend in a join that a thread of the other runtime ends. */
static void join_elsewhere(struct mig *m)
{
    crew_task_t *t = NULL;
    void *res = NULL;
    if (crew_rt_spawn(m->waker, nop, m, NULL, &t) || crew_join(t, &res) || res != m)
        atomic_fetch_add(&m->bad_join, 1);
    atomic_fetch_add_explicit(&m->joins, 1, memory_order_relaxed);
}

static void *checked_task(void *arg)
{
    struct mig *m = arg;
    crew_task_t *self = crew_self();
    uint64_t id = crew_task_id(self);
    crew_rt_t *rt = crew_rt_current();
    int idx = crew_worker_index();
    check_worker(m, idx);
    unsigned long i = 0;
    for (; i < m->max_yields; i++) {
        if (i >= m->min_yields &&
            atomic_load_explicit(&m->migrations, memory_order_relaxed) >= m->want_migrations)
            break;
        errno = 123;
        if (i % 32 == 31)
            join_elsewhere(m);
        else
            crew_yield();
#if !defined(CREW_TSAN)
        /* gcc and clang keep errno's address from before the yield, so after
         * a migration this reads the previous thread's errno while another
         * task may write it there: TSan rightly calls that a race. It is the
         * reason crew never reports through errno; here it must only not crash. */
        atomic_store_explicit(&errno_sink, errno, memory_order_relaxed);
#endif
        int now = crew_worker_index();
        check_worker(m, now);
        if (crew_worker_index() != now)
            atomic_fetch_add(&m->bad_index, 1);
        if (crew_self() != self || crew_task_id(crew_self()) != id || crew_rt_current() != rt)
            atomic_fetch_add(&m->bad_self, 1);
        if (now != idx) {
            atomic_fetch_add(&m->migrations, 1);
            idx = now;
        }
    }
    atomic_fetch_add(&m->yields, i);
    return NULL;
}

static void test_migration_worker_index(void **state)
{
    crew_test_watchdog(60);
    unsigned w = crew_test_workers();
    assert_true(w <= MAX_WORKERS);
    static struct mig mig;
    struct mig *m = &mig;
    memset(m, 0, sizeof *m);
    m->workers = w;
    m->min_yields = 100000 / crew_test_slowdown();
    /* With one worker there is nothing to wait for. */
    m->max_yields = w == 1 ? m->min_yields : 1000000 / crew_test_slowdown();
    m->want_migrations = 100;
    crew_rt_opts_t wo = CREW_RT_OPTS_INIT;
    wo.workers = 1;
    assert_int_equal(crew_rt_create(&wo, &m->waker), 0);

    crew_rt_t *rt = tc_rt_create();
    const int nchecked = (int)(2 * w);
    crew_task_t *checked[2 * MAX_WORKERS];
    for (int i = 0; i < nchecked; i++)
        assert_int_equal(crew_rt_spawn(rt, checked_task, m, NULL, &checked[i]), 0);
    for (int i = 0; i < nchecked; i++)
        assert_int_equal(crew_join(checked[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(crew_rt_destroy(m->waker), 0);

    unsigned long mig_count = atomic_load(&m->migrations);
    fprintf(stderr, "# %u workers, %d tasks: %lu migrations in %lu suspensions (%lu joins)\n", w,
            nchecked, mig_count, atomic_load(&m->yields), atomic_load(&m->joins));
    assert_int_equal(atomic_load(&m->bad_join), 0);
    assert_int_equal(atomic_load(&m->bad_index), 0);
    assert_int_equal(atomic_load(&m->bad_thread), 0);
    assert_int_equal(atomic_load(&m->bad_self), 0);
    /* Distinct workers are distinct threads. */
    for (unsigned i = 0; i < w; i++)
        for (unsigned j = i + 1; j < w; j++)
            if (m->tid_of[i] && m->tid_of[i] == m->tid_of[j])
                fail_msg("workers %u and %u both run on thread %d", i, j, (int)m->tid_of[i]);
    if (w == 1)
        assert_int_equal(mig_count, 0);
    else
        assert_true(mig_count > 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_migration_worker_index),
};

CREW_TEST_MAIN("migration", tests)
