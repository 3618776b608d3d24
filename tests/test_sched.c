/* Scheduler behaviour: no lost wakeup when work arrives from outside an idle
 * pool (RELIABILITY.md row 6), fairness towards tasks that spin on
 * crew_yield(), a large tree of spawns, and work spreading over workers. */
#include "task_util.h"

/* Sanitizers slow every spawn down by more than the timeout multiplier (TSan
 * makes a fiber per task), so the budget shrinks with its square. */
static unsigned long scaled(unsigned long n)
{
    unsigned long k = crew_test_slowdown();
    unsigned long s = n / (k * k);
    return s ? s : 1;
}

static void *add_one(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

/* ---- External spawn into an idle pool --------------------------------------- */

struct ext {
    crew_rt_t *rt;
    unsigned long iters;
    struct tc_progress *progress;
    atomic_ulong bad;
};

/* Spawn and join one task at a time: between two spawns every worker runs
 * out of work and heads for sleep, which is the window where a wakeup gets
 * lost (Tokio 7c8b887). */
static void *ext_loop(void *arg)
{
    struct ext *e = arg;
    for (unsigned long i = 0; i < e->iters; i++) {
        crew_task_t *t = NULL;
        void *res = NULL;
        if (crew_rt_spawn(e->rt, add_one, (void *)i, NULL, &t) || crew_join(t, &res) ||
            (uintptr_t)res != i + 1)
            atomic_fetch_add(&e->bad, 1);
        atomic_fetch_add_explicit(&e->progress->count, 1, memory_order_relaxed);
    }
    return NULL;
}

static void run_external(unsigned nthreads)
{
    struct tc_progress progress;
    struct ext e = { .rt = tc_rt_create(), .progress = &progress };
    unsigned long total = scaled(100000);
    e.iters = total / nthreads;
    tc_progress_start(&progress, "external spawn+join", 5);
    pthread_t th[8];
    for (unsigned i = 0; i < nthreads; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ext_loop, &e), 0);
    for (unsigned i = 0; i < nthreads; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    tc_progress_stop(&progress);
    assert_int_equal(crew_rt_destroy(e.rt), 0);
    assert_int_equal(atomic_load(&e.bad), 0);
    assert_int_equal(atomic_load(&progress.count), e.iters * nthreads);
}

static void test_sched_external_idle_pool(void **state)
{
    crew_test_watchdog(120);
    run_external(1);
}

static void test_sched_external_idle_pool_4threads(void **state)
{
    crew_test_watchdog(120);
    run_external(4);
}

/* ---- Fairness ----------------------------------------------------------------- */

/* The spinners count their yields while progress is owed to the short tasks
 * and give up at a cap, so that a starving scheduler fails the test instead
 * of hanging it. Only yields made while a short task waits are counted where
 * that can be known (the injected case): there the cap measures the
 * scheduler, not how long the OS left some thread off the CPU. */
struct fair {
    long n;                 /* Short tasks. */
    atomic_long done;       /* Short tasks finished. */
    atomic_long pending;    /* Injected case: the short task last spawned, 1-based. */
    atomic_int starved;     /* A spinner hit its cap first. */
    atomic_int started;     /* Spinners running. */
    atomic_ulong workers_seen;
    atomic_ulong max_wait;  /* Most yields one spinner made while a short task waited. */
    unsigned long cap;
    bool injected;
};

/* Spins on crew_yield() until every short task reported done. */
static void *spinner(void *arg)
{
    struct fair *f = arg;
    atomic_fetch_add(&f->started, 1);
    unsigned long waited = 0;
    while (atomic_load(&f->done) < f->n) {
        int w = crew_worker_index();
        if (w >= 0 && w < 64)
            atomic_fetch_or(&f->workers_seen, 1ul << w);
        if (!f->injected || atomic_load(&f->pending) > atomic_load(&f->done))
            waited++;
        else
            waited = 0;
        if (waited > atomic_load(&f->max_wait))
            atomic_store(&f->max_wait, waited);
        if (waited >= f->cap) {
            atomic_store(&f->starved, 1);
            break;
        }
        crew_yield();
    }
    return NULL;
}

static void *short_task(void *arg)
{
    struct fair *f = arg;
    atomic_fetch_add(&f->done, 1);
    return NULL;
}

/* Spinners first, then the short tasks, all spawned by a task: the local
 * queues must not let the spinners starve the rest. */
static void *fair_local_main(void *arg)
{
    struct fair *f = arg;
    unsigned nspin = crew_rt_workers(crew_rt_current());
    crew_task_t *spin[64], **shorts = calloc((size_t)f->n, sizeof *shorts);
    TC_CHECK(shorts != NULL);
    if (!shorts)
        return NULL;
    for (unsigned i = 0; i < nspin; i++)
        TC_CHECK_EQ(crew_spawn(spinner, f, NULL, &spin[i]), 0);
    for (long i = 0; i < f->n; i++)
        TC_CHECK_EQ(crew_spawn(short_task, f, NULL, &shorts[i]), 0);
    for (long i = 0; i < f->n; i++)
        TC_CHECK_EQ(crew_join(shorts[i], NULL), 0);
    for (unsigned i = 0; i < nspin; i++)
        TC_CHECK_EQ(crew_join(spin[i], NULL), 0);
    free(shorts);
    return NULL;
}

static void test_sched_fair_yield_local(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    /* One worker: the spinner and the 1000 queued tasks share one ring, which
     * a fair scheduler drains in about 1000 yields. More workers: a spinner
     * may sit on a worker that has none of them while the OS keeps the one
     * that has them off the CPU, so only a hang-sized cap is fair. */
    struct fair f = { .n = 1000, .cap = crew_test_workers() == 1 ? 100000 : 200000000 };
    assert_true(crew_test_workers() <= 64);
    tc_run(fair_local_main, &f);
    tc_assert_clean();
    fprintf(stderr, "# most yields of a spinner before all short tasks ran: %lu\n",
            atomic_load(&f.max_wait));
    assert_int_equal(atomic_load(&f.starved), 0);
    assert_int_equal(atomic_load(&f.done), f.n);
}

/* Two spinners per worker, then short tasks injected one at a time from this
 * thread: a worker whose local queue never empties must still take work
 * from the injection queue (every 61st decision, scheduler.c rule 4). Two:
 * with one, a yielding spinner is not in its ring when its worker picks the
 * next task, so the worker finds the ring empty and looks at the injection
 * queue anyway; the test then passed without the 61-tick rule. */
static void test_sched_fair_yield_injected(void **state)
{
    crew_test_watchdog(60);
    unsigned w = crew_test_workers();
    /* One worker: it takes an injected task within 61 decisions, so 100,000
     * yields is generous. More workers: the one that took the task may be
     * held off its CPU by the OS (4 workers on 2 CPUs: time slices of
     * milliseconds, while 100,000 yields take ~3 ms), which no scheduler can
     * help; only a hang-sized cap is fair, as in test_sched_fair_yield_local. */
    struct fair f = { .n = 200, .cap = w == 1 ? 100000 : 200000000, .injected = true };
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *spin[128];
    unsigned nspin = 2 * w;
    assert_true(nspin <= 128);
    for (unsigned i = 0; i < nspin; i++)
        assert_int_equal(crew_rt_spawn(rt, spinner, &f, NULL, &spin[i]), 0);
    /* The spinners run before the short tasks come (bounded by the watchdog:
     * a spinner that never starts is a failure too). Whether they occupy
     * every worker is test_sched_all_workers_used's business. */
    while (atomic_load(&f.started) < (int)nspin)
        sched_yield();
    fprintf(stderr, "# spinners seen on workers %#lx\n", atomic_load(&f.workers_seen));
    for (long i = 0; i < f.n; i++) {
        crew_task_t *t = NULL;
        assert_int_equal(crew_rt_spawn(rt, short_task, &f, NULL, &t), 0);
        /* Counted as pending once it is queued, not before the spawn: this
         * thread competes for the CPUs with the spinning workers, and the
         * OS may hold it off for milliseconds between the two (100,000
         * yields take ~3 ms), which the scheduler cannot help. A task that
         * already ran leaves pending == done: nothing is counted. */
        atomic_store(&f.pending, i + 1);
        assert_int_equal(crew_join(t, NULL), 0);
    }
    for (unsigned i = 0; i < nspin; i++)
        assert_int_equal(crew_join(spin[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    fprintf(stderr, "# most yields of a spinner while an injected task waited: %lu\n",
            atomic_load(&f.max_wait));
    assert_int_equal(atomic_load(&f.starved), 0);
    assert_int_equal(atomic_load(&f.done), f.n);
}

/* ---- Spawn storm ---------------------------------------------------------------- */

enum { STORM_FANOUT = 10 };

static const crew_spawn_opts_t storm_opts = { sizeof(crew_spawn_opts_t), "storm", CREW_MIN_STACK_SIZE,
                                              { 0, 0, 0, 0 } };

/* Returns the number of leaves below: FANOUT^depth. */
static void *storm_node(void *arg)
{
    uintptr_t depth = (uintptr_t)arg;
    if (depth == 0)
        return (void *)1;
    crew_task_t *t[STORM_FANOUT];
    int n = 0;
    for (; n < STORM_FANOUT; n++) {
        int rc = crew_spawn(storm_node, (void *)(depth - 1), &storm_opts, &t[n]);
        TC_CHECK_EQ(rc, 0);
        if (rc)
            break;
    }
    uintptr_t sum = 0;
    for (int i = 0; i < n; i++) {
        void *res = NULL;
        TC_CHECK_EQ(crew_join(t[i], &res), 0);
        sum += (uintptr_t)res;
    }
    return (void *)sum;
}

static void test_sched_spawn_storm(void **state)
{
    crew_test_watchdog(120);
    tc_reset();
    /* 10^6 leaves (1.1 million tasks); fewer under sanitizers. */
    uintptr_t depth = 1, want = STORM_FANOUT;
    while (want * STORM_FANOUT <= scaled(1000000)) {
        want *= STORM_FANOUT;
        depth++;
    }
    fprintf(stderr, "# storm: %lu leaves\n", (unsigned long)want);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *root = NULL;
    assert_int_equal(crew_rt_spawn(rt, storm_node, (void *)depth, &storm_opts, &root), 0);
    void *res = NULL;
    assert_int_equal(crew_join(root, &res), 0);
    crew_metrics_t m;
    assert_int_equal(crew_rt_metrics(rt, &m), 0);
    fprintf(stderr, "# storm: %llu stacks mapped, %llu MiB of stack mappings\n",
            (unsigned long long)m.stacks_mapped, (unsigned long long)(m.stack_bytes_mapped >> 20));
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    assert_int_equal((uintptr_t)res, want);
}

/* ---- Work spreads over the workers ---------------------------------------------- */

struct spread {
    unsigned workers;
    unsigned long cap;
    atomic_ulong seen;      /* Bit i: some task ran on worker i. */
    atomic_int bad_index;
};

static unsigned want_workers(const struct spread *s)
{
    return s->workers < 2 ? s->workers : 2;
}

/* CPU-bound: compute between yields until tasks were seen on two distinct
 * workers (bounded), so the test does not depend on timing. */
static void *spread_task(void *arg)
{
    struct spread *s = arg;
    volatile uint64_t x = (uintptr_t)arg;
    for (unsigned long i = 0; i < s->cap; i++) {
        int w = crew_worker_index();
        if (w < 0 || (unsigned)w >= s->workers)
            atomic_fetch_add(&s->bad_index, 1);
        else
            atomic_fetch_or(&s->seen, 1ul << w);
        if ((unsigned)__builtin_popcountl(atomic_load(&s->seen)) >= want_workers(s))
            break;
        for (int k = 0; k < 200; k++)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        crew_yield();
    }
    return NULL;
}

enum { SPREAD_TASKS = 16 };

static void *spread_main(void *arg)
{
    crew_task_t *t[SPREAD_TASKS];
    int n = 0;
    for (; n < SPREAD_TASKS; n++)
        if (crew_spawn(spread_task, arg, NULL, &t[n]))
            break;
    TC_CHECK_EQ(n, SPREAD_TASKS);
    for (int i = 0; i < n; i++)
        TC_CHECK_EQ(crew_join(t[i], NULL), 0);
    return NULL;
}

static void check_spread(struct spread *s, const char *how)
{
    unsigned long seen = atomic_load(&s->seen);
    fprintf(stderr, "# %s: workers seen %#lx\n", how, seen);
    assert_int_equal(atomic_load(&s->bad_index), 0);
    if ((unsigned)__builtin_popcountl(seen) < want_workers(s))
        fail_msg("%s: CPU-bound tasks ran only on workers %#lx of %u", how, seen, s->workers);
}

static void test_sched_work_spreads(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    unsigned w = crew_test_workers();
    assert_true(w <= 64);

    /* Spawned by one task: idle workers must be woken to steal. */
    struct spread s = { .workers = w, .cap = 1000000 };
    tc_run(spread_main, &s);
    tc_assert_clean();
    check_spread(&s, "spawned by a task");

    /* Spawned from outside through the injection queue. */
    struct spread e = { .workers = w, .cap = 1000000 };
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t[SPREAD_TASKS];
    for (int i = 0; i < SPREAD_TASKS; i++)
        assert_int_equal(crew_rt_spawn(rt, spread_task, &e, NULL, &t[i]), 0);
    for (int i = 0; i < SPREAD_TASKS; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    check_spread(&e, "spawned from outside");
}

/* ---- Every worker gets used ------------------------------------------------------ */

/* As many CPU-bound tasks as workers, each yielding until it has seen tasks
 * on every worker: a parked worker must be woken while runnable tasks wait in
 * another worker's queue (the invariant Go keeps with wakep: no idle worker
 * while work is queued). The cap counts the tasks' own yields, so a slow OS
 * does not fail the test, only a worker left asleep does. */
static void *all_task(void *arg)
{
    struct spread *s = arg;
    volatile uint64_t x = 1;
    for (unsigned long i = 0; i < s->cap; i++) {
        int w = crew_worker_index();
        if (w < 0 || (unsigned)w >= s->workers)
            atomic_fetch_add(&s->bad_index, 1);
        else
            atomic_fetch_or(&s->seen, 1ul << w);
        if ((unsigned)__builtin_popcountl(atomic_load(&s->seen)) == s->workers)
            break;
        for (int k = 0; k < 200; k++)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        crew_yield();
    }
    return NULL;
}

static void *all_main(void *arg)
{
    struct spread *s = arg;
    crew_task_t *t[64];
    unsigned n = 0;
    for (; n < s->workers; n++)
        if (crew_spawn(all_task, s, NULL, &t[n]))
            break;
    TC_CHECK_EQ(n, s->workers);
    for (unsigned i = 0; i < n; i++)
        TC_CHECK_EQ(crew_join(t[i], NULL), 0);
    return NULL;
}

static void check_all(struct spread *s, const char *how)
{
    unsigned long seen = atomic_load(&s->seen);
    fprintf(stderr, "# %s: workers seen %#lx\n", how, seen);
    assert_int_equal(atomic_load(&s->bad_index), 0);
    if ((unsigned)__builtin_popcountl(seen) != s->workers)
        fail_msg("%s: %u runnable tasks ran only on workers %#lx of %u", how, s->workers, seen,
                 s->workers);
}

static void test_sched_all_workers_used(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    unsigned w = crew_test_workers();
    assert_true(w <= 64);

    struct spread s = { .workers = w, .cap = 10000000 };
    tc_run(all_main, &s);
    tc_assert_clean();
    check_all(&s, "spawned by a task");

    struct spread e = { .workers = w, .cap = 10000000 };
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t[64];
    for (unsigned i = 0; i < w; i++)
        assert_int_equal(crew_rt_spawn(rt, all_task, &e, NULL, &t[i]), 0);
    for (unsigned i = 0; i < w; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    check_all(&e, "spawned from outside");
}

/* ---- A woken task resumes where it last ran ------------------------------------ */

/* Rule 8: a sleeper woken by the reactor goes to the inbox of the worker
 * that last ran it, while CPU-bound tasks that yield (and so keep looking at
 * the shared queues) busy every other worker. Through the injection queue
 * those busy workers took many wakes (4 workers: the sleeper moved in 129
 * of 400 rounds; with inboxes, 0). A searching worker may still take an
 * inbox it saw twice, so a few moves are allowed (a tenth). */
#define HOME_ROUNDS 400

struct home {
    atomic_int stop;
    atomic_int moved, bad;
};

static void *home_hog(void *arg)
{
    struct home *h = arg;
    volatile uint64_t x = 1;
    while (!atomic_load(&h->stop)) {
        for (int k = 0; k < 200; k++)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        crew_yield();
    }
    return NULL;
}

static void *home_sleeper(void *arg)
{
    struct home *h = arg;
    for (int i = 0; i < HOME_ROUNDS; i++) {
        int before = crew_worker_index();
        if (crew_sleep(100 * CREW_US))
            atomic_fetch_add(&h->bad, 1);
        if (crew_worker_index() != before)
            atomic_fetch_add(&h->moved, 1);
    }
    atomic_store(&h->stop, 1);
    return NULL;
}

static void *home_main(void *arg)
{
    struct home *h = arg;
    unsigned n = crew_test_workers() - 1;
    crew_task_t *t[64];
    TC_CHECK(n < 64);
    for (unsigned i = 0; i < n; i++)
        TC_CHECK_EQ(crew_spawn(home_hog, h, NULL, &t[i]), 0);
    crew_task_t *s;
    TC_CHECK_EQ(crew_spawn(home_sleeper, h, NULL, &s), 0);
    TC_CHECK_EQ(crew_join(s, NULL), 0);
    for (unsigned i = 0; i < n; i++)
        TC_CHECK_EQ(crew_join(t[i], NULL), 0);
    return NULL;
}

static void test_sched_wake_where_last_ran(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct home h = { 0 };
    tc_run(home_main, &h);
    tc_assert_clean();
    int moved = atomic_load(&h.moved);
    fprintf(stderr, "# sleeper moved in %d of %d rounds (%u workers)\n", moved, HOME_ROUNDS,
            crew_test_workers());
    assert_int_equal(atomic_load(&h.bad), 0);
    assert_in_range(moved, 0, HOME_ROUNDS / 10);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sched_external_idle_pool),
    cmocka_unit_test(test_sched_external_idle_pool_4threads),
    cmocka_unit_test(test_sched_fair_yield_local),
    cmocka_unit_test(test_sched_fair_yield_injected),
    cmocka_unit_test(test_sched_spawn_storm),
    cmocka_unit_test(test_sched_work_spreads),
    cmocka_unit_test(test_sched_all_workers_used),
    cmocka_unit_test(test_sched_wake_where_last_ran),
};

CREW_TEST_MAIN("sched", tests)
