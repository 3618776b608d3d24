/* Executors (include/crew/executor.h): results, many concurrent calls, plain
 * threads, pool saturation and the queue bound (RELIABILITY.md row 30),
 * cancelling queued and running calls (discard callback), deadline scopes,
 * elastic growth and retirement, growth past one busy thread per CPU when
 * the calls block (from tasks and plain threads) and not when they compute,
 * thread names, destroy with queued and
 * running calls, bad inputs, runtime shutdown with calls running, and a task
 * that blocks its worker (row 31).
 *
 * Calls that must stay running while the test looks are held by a gate the
 * test opens; the test waits for states (crew_task_state, metrics), never for
 * time. */
#include "task_util.h"

#include <time.h>
#include <unistd.h>

#define MARK_OK ((void *)(uintptr_t)0x600D)
#define TASK_SPIN_CAP 10000000ul
/* A return code carried as a task result: a plain -ECANCELED would read as
 * CREW_TASK_CANCELED, which crew_join turns into its own status. */
#define RC_PTR(rc) ((void *)(intptr_t)(0x10000 - (rc)))
#define PTR_RC(p) (0x10000 - (int)(intptr_t)(p))

/* ---- helpers ---------------------------------------------------------------- */

/* A gate pool threads wait at until the test opens it. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    atomic_int waiting; /* Threads inside gate_pass now. */
};

static void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
    atomic_init(&g->waiting, 0);
}

static void gate_pass(struct gate *g)
{
    atomic_fetch_add(&g->waiting, 1);
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    atomic_fetch_sub(&g->waiting, 1);
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(struct gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static crew_executor_t *make_executor(const char *name, unsigned threads, size_t cap, int64_t keep)
{
    crew_executor_opts_t o = CREW_EXECUTOR_OPTS_INIT;
    o.name = name;
    o.max_threads = threads;
    o.queue_capacity = cap;
    o.keep_alive_ns = keep;
    crew_executor_t *ex = NULL;
    assert_int_equal(crew_executor_create(&o, &ex), 0);
    assert_non_null(ex);
    return ex;
}

static crew_executor_metrics_t metrics(crew_executor_t *ex)
{
    crew_executor_metrics_t m;
    assert_int_equal(crew_executor_metrics(ex, &m), 0);
    return m;
}

static uint64_t queued_of(crew_executor_t *ex)
{
    crew_executor_metrics_t m;
    crew_executor_metrics(ex, &m);
    return m.jobs_queued;
}

/* Calls submitted so far (queued, running or done), read at one instant;
 * for tests that cancel nothing. */
static uint64_t submitted(crew_executor_t *ex)
{
    crew_executor_metrics_t m;
    crew_executor_metrics(ex, &m);
    return m.jobs_queued + m.jobs_running + m.jobs_completed;
}

static void *add_one(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

/* ---- 1. Results, thread names, where the call runs ------------------------ */

struct where {
    char name[16];
    int worker_index;  /* crew_worker_index() on the pool thread: -1. */
    pid_t tid;
};

static void *record_where(void *arg)
{
    struct where *w = arg;
    pthread_getname_np(pthread_self(), w->name, sizeof w->name);
    w->worker_index = crew_worker_index();
    w->tid = tc_gettid();
    return MARK_OK;
}

struct basic {
    struct where def, user, thread;
    crew_executor_t *user_ex;
    pid_t task_tid;
};

static void *basic_body(void *arg)
{
    struct basic *b = arg;
    void *r = NULL;
    TC_CHECK_EQ(crew_run_in_executor(NULL, add_one, (void *)41, &r), 0);
    TC_CHECK_EQ((uintptr_t)r, 42);
    r = NULL;
    TC_CHECK_EQ(crew_to_thread(add_one, (void *)1, &r), 0);
    TC_CHECK_EQ((uintptr_t)r, 2);
    TC_CHECK_EQ(crew_to_thread(add_one, (void *)1, NULL), 0);
    b->task_tid = tc_gettid();
    TC_CHECK_EQ(crew_to_thread(record_where, &b->def, &r), 0);
    TC_CHECK(r == MARK_OK);
    TC_CHECK_EQ(crew_run_in_executor(b->user_ex, record_where, &b->user, &r), 0);
    crew_executor_t *d = NULL;
    TC_CHECK_EQ(crew_rt_executor(crew_rt_current(), &d), 0);
    TC_CHECK_EQ(crew_run_in_executor_ex(d, add_one, (void *)9, NULL, &r), 0);
    TC_CHECK_EQ((uintptr_t)r, 10);
    return MARK_OK;
}

static void test_executor_result_and_names(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct basic b = { .user_ex = make_executor("dbpool-", 2, 0, 0) };
    assert_ptr_equal(tc_run(basic_body, &b), MARK_OK);
    tc_assert_clean();
    assert_true(!strncmp(b.def.name, "crew-blk", 8));
    assert_true(b.def.name[8] >= '1' && b.def.name[8] <= '9');
    assert_int_equal(b.def.worker_index, -1);
    assert_true(b.def.tid != b.task_tid);
    assert_true(!strncmp(b.user.name, "dbpool-", 7));
    assert_int_equal(b.user.worker_index, -1);

    /* A plain thread uses a user executor and a runtime's default one. */
    void *r = NULL;
    assert_int_equal(crew_run_in_executor(b.user_ex, add_one, (void *)1, &r), 0);
    assert_int_equal((uintptr_t)r, 2);
    assert_int_equal(crew_run_in_executor(b.user_ex, record_where, &b.thread, NULL), 0);
    assert_true(b.thread.tid != tc_gettid());
    assert_int_equal(crew_run_in_executor(NULL, add_one, NULL, &r), -EPERM);
    assert_int_equal(crew_to_thread(add_one, NULL, &r), -EPERM);
    crew_rt_t *rt = tc_rt_create();
    crew_executor_t *d = NULL, *d2 = NULL;
    assert_int_equal(crew_rt_executor(rt, &d), 0);
    assert_int_equal(crew_rt_executor(rt, &d2), 0);
    assert_ptr_equal(d, d2);
    assert_int_equal(crew_run_in_executor(d, add_one, (void *)7, &r), 0);
    assert_int_equal((uintptr_t)r, 8);
    assert_int_equal(crew_rt_destroy(rt), 0);

    crew_executor_metrics_t m = metrics(b.user_ex);
    assert_int_equal(m.jobs_completed, 3);
    assert_int_equal(m.jobs_running, 0);
    assert_int_equal(m.jobs_queued, 0);
    assert_int_equal(crew_executor_destroy(b.user_ex), 0);
}

/* ---- 2. Many concurrent calls ---------------------------------------------- */

#define MANY_TASKS 200
#define MANY_CALLS 50

static void *many_body(void *arg)
{
    uintptr_t base = (uintptr_t)arg, sum = 0;
    for (uintptr_t i = 0; i < MANY_CALLS; i++) {
        void *r = NULL;
        TC_CHECK_EQ(crew_to_thread(add_one, (void *)(base + i), &r), 0);
        sum += (uintptr_t)r;
    }
    return (void *)sum;
}

static void *many_main(void *arg)
{
    crew_task_t *t[MANY_TASKS];
    for (uintptr_t k = 0; k < MANY_TASKS; k++)
        TC_CHECK_EQ(crew_spawn(many_body, (void *)(k * MANY_CALLS), NULL, &t[k]), 0);
    uintptr_t sum = 0;
    for (int k = 0; k < MANY_TASKS; k++) {
        void *r = NULL;
        TC_CHECK_EQ(crew_join(t[k], &r), 0);
        sum += (uintptr_t)r;
    }
    return (void *)sum;
}

static void test_executor_many_concurrent(void **state)
{
    crew_test_watchdog(120);
    tc_reset();
    uintptr_t n = (uintptr_t)MANY_TASKS * MANY_CALLS;
    uintptr_t sum = (uintptr_t)tc_run(many_main, NULL);
    tc_assert_clean();
    /* Each call returns its index + 1. */
    assert_int_equal(sum, n * (n - 1) / 2 + n);
}

/* ---- 3. Saturation: more jobs than threads (row 30) -------------------------- */

#define SAT_JOBS 50

struct sat {
    crew_executor_t *ex;
    atomic_int now, max, ran;
};

static void *sat_job(void *arg)
{
    struct sat *s = arg;
    int n = atomic_fetch_add(&s->now, 1) + 1;
    int m = atomic_load(&s->max);
    while (m < n && !atomic_compare_exchange_weak(&s->max, &m, n))
        continue;
    /* Stay a little, so jobs overlap when the pool lets them. */
    for (int i = 0; i < 200; i++)
        sched_yield();
    atomic_fetch_add(&s->ran, 1);
    atomic_fetch_sub(&s->now, 1);
    return MARK_OK;
}

static void *sat_task(void *arg)
{
    struct sat *s = arg;
    void *r = NULL;
    TC_CHECK_EQ(crew_run_in_executor(s->ex, sat_job, s, &r), 0);
    TC_CHECK(r == MARK_OK);
    return MARK_OK;
}

static void test_executor_saturation(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct sat s = { .ex = make_executor("sat", 2, 0, 0) };
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t[SAT_JOBS];
    for (int i = 0; i < SAT_JOBS; i++)
        assert_int_equal(crew_rt_spawn(rt, sat_task, &s, NULL, &t[i]), 0);
    for (int i = 0; i < SAT_JOBS; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    crew_executor_metrics_t m = metrics(s.ex);
    fprintf(stderr, "# %d jobs, at most %d at once, %llu threads started\n", SAT_JOBS,
            atomic_load(&s.max), (unsigned long long)m.threads_started);
    assert_int_equal(atomic_load(&s.ran), SAT_JOBS);
    assert_true(atomic_load(&s.max) >= 1 && atomic_load(&s.max) <= 2);
    assert_true(m.threads_started <= 2);
    assert_int_equal(m.jobs_completed, SAT_JOBS);
    assert_int_equal(m.jobs_cancelled, 0);
    assert_int_equal(crew_executor_destroy(s.ex), 0);
}

/* ---- 4. The queue bound: submitters wait for room ------------------------- */

#define BOUND_CAP 4
#define BOUND_TASKS 20

struct bound {
    crew_executor_t *ex;
    struct gate gate;
    atomic_int ran;
};

static void *bound_job(void *arg)
{
    struct bound *b = arg;
    gate_pass(&b->gate);
    atomic_fetch_add(&b->ran, 1);
    return MARK_OK;
}

static void *bound_task(void *arg)
{
    struct bound *b = arg;
    TC_CHECK_EQ(crew_run_in_executor(b->ex, bound_job, b, NULL), 0);
    return MARK_OK;
}

static void test_executor_queue_bound(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct bound b = { .ex = make_executor("bound", 1, BOUND_CAP, 0) };
    gate_init(&b.gate);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t[BOUND_TASKS];
    for (int i = 0; i < BOUND_TASKS; i++)
        assert_int_equal(crew_rt_spawn(rt, bound_task, &b, NULL, &t[i]), 0);
    /* One job runs (held at the gate), BOUND_CAP wait in the queue, and the
     * other submitters wait for room. */
    TC_WAIT_UNTIL(queued_of(b.ex) == BOUND_CAP && atomic_load(&b.gate.waiting) == 1);
    for (int i = 0; i < BOUND_TASKS; i++)
        TC_WAIT_UNTIL(crew_task_state(t[i]) == CREW_TASK_WAITING);
    crew_executor_metrics_t m = metrics(b.ex);
    assert_int_equal(m.jobs_queued, BOUND_CAP);
    assert_int_equal(m.jobs_running, 1);
    gate_open(&b.gate);
    /* Sample while they drain: the queue never holds more than its bound. */
    while (atomic_load(&b.ran) < BOUND_TASKS)
        assert_true(queued_of(b.ex) <= BOUND_CAP);
    for (int i = 0; i < BOUND_TASKS; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    assert_int_equal(metrics(b.ex).jobs_completed, BOUND_TASKS);
    assert_int_equal(crew_executor_destroy(b.ex), 0);
    gate_destroy(&b.gate);
}

/* ---- 5. Cancel a queued call and a running call ----------------------------- */

struct cancel {
    crew_executor_t *ex;
    struct gate gate;
    atomic_int ran_blocker, ran_victim, finished, discards;
    void *discarded_result;
    int victim_rc;
};

static void *cancel_blocker(void *arg)
{
    struct cancel *c = arg;
    atomic_fetch_add(&c->ran_blocker, 1);
    gate_pass(&c->gate);
    atomic_fetch_add(&c->finished, 1);
    /* A heap result: only the discard callback can free it (ASan checks). */
    return malloc(64);
}

static void *cancel_victim(void *arg)
{
    struct cancel *c = arg;
    atomic_fetch_add(&c->ran_victim, 1);
    return MARK_OK;
}

static void cancel_discard(void *result, void *arg)
{
    struct cancel *c = arg;
    atomic_fetch_add(&c->discards, 1);
    c->discarded_result = result;
    free(result);
}

static void *blocker_task(void *arg)
{
    struct cancel *c = arg;
    void *r = MARK_OK;
    int rc = crew_run_in_executor_ex(c->ex, cancel_blocker, c, cancel_discard, &r);
    TC_CHECK(r == MARK_OK); /* Not written on failure. */
    return RC_PTR(rc);
}

static void *victim_task(void *arg)
{
    struct cancel *c = arg;
    return RC_PTR(crew_run_in_executor(c->ex, cancel_victim, c, NULL));
}

static void test_executor_cancel(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct cancel c = { .ex = make_executor("cancel", 1, 0, 0) };
    gate_init(&c.gate);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *blocker, *victim;
    assert_int_equal(crew_rt_spawn(rt, blocker_task, &c, NULL, &blocker), 0);
    TC_WAIT_UNTIL(atomic_load(&c.gate.waiting) == 1);
    assert_int_equal(crew_rt_spawn(rt, victim_task, &c, NULL, &victim), 0);
    TC_WAIT_UNTIL(queued_of(c.ex) == 1 && crew_task_state(victim) == CREW_TASK_WAITING);

    /* Queued: removed at once, never runs. */
    void *r;
    assert_int_equal(crew_task_cancel(victim), 0);
    assert_int_equal(crew_join(victim, &r), 0);
    assert_int_equal(PTR_RC(r), -ECANCELED);
    crew_executor_metrics_t m = metrics(c.ex);
    assert_int_equal(m.jobs_cancelled, 1);
    assert_int_equal(m.jobs_queued, 0);

    /* Running: the task returns at once while the job is still held. */
    assert_int_equal(crew_task_cancel(blocker), 0);
    assert_int_equal(crew_join(blocker, &r), 0);
    assert_int_equal(PTR_RC(r), -ECANCELED);
    assert_int_equal(atomic_load(&c.finished), 0);
    assert_int_equal(atomic_load(&c.discards), 0);
    assert_int_equal(metrics(c.ex).jobs_running, 1);
    gate_open(&c.gate);
    TC_WAIT_UNTIL(metrics(c.ex).jobs_discarded == 1);
    /* destroy waits for the pool thread, so discard has returned. */
    assert_int_equal(crew_executor_destroy(c.ex), 0);
    assert_int_equal(atomic_load(&c.discards), 1);
    assert_non_null(c.discarded_result);
    assert_int_equal(atomic_load(&c.ran_victim), 0);
    assert_int_equal(atomic_load(&c.ran_blocker), 1);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    gate_destroy(&c.gate);
}

/* A task already cancelled never submits; a shielded one waits normally. */
static void *precancel_task(void *arg)
{
    struct cancel *c = arg;
    crew_task_cancel(crew_self());
    TC_CHECK_EQ(crew_run_in_executor(c->ex, cancel_victim, c, NULL), -ECANCELED);
    TC_CHECK_EQ(crew_shield_begin(), 0);
    void *r = NULL;
    TC_CHECK_EQ(crew_run_in_executor(c->ex, add_one, (void *)1, &r), 0);
    TC_CHECK_EQ((uintptr_t)r, 2);
    TC_CHECK_EQ(crew_shield_end(), 0);
    return MARK_OK;
}

static void test_executor_cancel_before_submit(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct cancel c = { .ex = make_executor(NULL, 1, 0, 0) };
    assert_ptr_equal(tc_run(precancel_task, &c), MARK_OK);
    tc_assert_clean();
    assert_int_equal(atomic_load(&c.ran_victim), 0);
    assert_int_equal(metrics(c.ex).jobs_completed, 1);
    assert_int_equal(crew_executor_destroy(c.ex), 0);
}

/* ---- 6. Deadline scopes ------------------------------------------------------ */

struct dl {
    crew_executor_t *ex;
    struct gate gate;
    atomic_int victim_ran;
};

static void *dl_block(void *arg)
{
    gate_pass(&((struct dl *)arg)->gate);
    return MARK_OK;
}

static void *dl_victim(void *arg)
{
    atomic_fetch_add(&((struct dl *)arg)->victim_ran, 1);
    return MARK_OK;
}

static void *dl_body(void *arg)
{
    struct dl *d = arg;
    crew_timeout_t s;
    /* Running call: the scope expires while the job is held at the gate. */
    TC_CHECK_EQ(crew_timeout_begin(&s, 20 * CREW_MS), 0);
    TC_CHECK_EQ(crew_run_in_executor(d->ex, dl_block, d, NULL), -ETIMEDOUT);
    TC_CHECK_EQ(crew_timeout_end(&s), 1);
    /* Queued call (the one thread is still held): removed, never runs. */
    TC_CHECK_EQ(crew_timeout_begin(&s, 20 * CREW_MS), 0);
    TC_CHECK_EQ(crew_run_in_executor(d->ex, dl_victim, d, NULL), -ETIMEDOUT);
    TC_CHECK_EQ(crew_timeout_end(&s), 1);
    /* A scope that does not expire. */
    TC_CHECK_EQ(crew_timeout_begin(&s, 60 * CREW_S), 0);
    gate_open(&d->gate);
    void *r = NULL;
    TC_CHECK_EQ(crew_run_in_executor(d->ex, add_one, (void *)3, &r), 0);
    TC_CHECK_EQ((uintptr_t)r, 4);
    TC_CHECK_EQ(crew_timeout_end(&s), 0);
    return MARK_OK;
}

static void test_executor_deadline(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct dl d = { .ex = make_executor("dl", 1, 0, 0) };
    gate_init(&d.gate);
    assert_ptr_equal(tc_run(dl_body, &d), MARK_OK);
    tc_assert_clean();
    assert_int_equal(crew_executor_destroy(d.ex), 0);
    assert_int_equal(atomic_load(&d.victim_ran), 0);
    gate_destroy(&d.gate);
}

/* ---- 7. Elastic growth and retirement ------------------------------------- */

/* Calls that block (sleep in the kernel, not spin) until `want` of them run
 * at once: only a pool that grew to that many threads lets them all in. The
 * wait is bounded, so a pool that does not grow makes the call return fewer
 * than `want` (checked by the caller) instead of hanging. */
struct meet {
    crew_executor_t *ex;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inside, want;
};

static void meet_init(struct meet *m, crew_executor_t *ex, int want)
{
    *m = (struct meet){ .ex = ex, .want = want };
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
}

static void meet_destroy(struct meet *m)
{
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
}

static void *meet_job(void *arg)
{
    struct meet *m = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10 * (time_t)crew_test_slowdown();
    pthread_mutex_lock(&m->mu);
    if (++m->inside == m->want)
        pthread_cond_broadcast(&m->cv);
    int rc = 0;
    while (m->inside < m->want && rc == 0)
        rc = pthread_cond_timedwait(&m->cv, &m->mu, &until);
    int seen = m->inside;
    pthread_mutex_unlock(&m->mu);
    return (void *)(intptr_t)seen;
}

static void *meet_task(void *arg)
{
    struct meet *m = arg;
    void *r = NULL;
    TC_CHECK_EQ(crew_run_in_executor(m->ex, meet_job, m, &r), 0);
    TC_CHECK_EQ((intptr_t)r, m->want);
    return MARK_OK;
}

/* One round: m->want tasks each make one meet_job call. */
static void meet_round(crew_rt_t *rt, struct meet *m)
{
    crew_task_t *t[40];
    assert_true(m->want <= 40);
    m->inside = 0;
    for (int i = 0; i < m->want; i++)
        assert_int_equal(crew_rt_spawn(rt, meet_task, m, NULL, &t[i]), 0);
    for (int i = 0; i < m->want; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    tc_assert_clean();
}

#define ELASTIC_THREADS 4

static void test_executor_elastic(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct meet m;
    meet_init(&m, make_executor("el", ELASTIC_THREADS, 0, 20 * CREW_MS), ELASTIC_THREADS);
    crew_rt_t *rt = tc_rt_create();
    for (int round = 0; round < 2; round++) {
        meet_round(rt, &m);
        assert_true(metrics(m.ex).threads_alive <= ELASTIC_THREADS);
        /* Idle threads retire after keep_alive. */
        TC_WAIT_UNTIL(metrics(m.ex).threads_alive == 0);
        crew_executor_metrics_t mt = metrics(m.ex);
        assert_int_equal(mt.threads_idle, 0);
        assert_int_equal(mt.threads_started, (uint64_t)ELASTIC_THREADS * (round + 1));
    }
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(crew_executor_destroy(m.ex), 0);
    meet_destroy(&m);
}

/* ---- 7b. More blocked calls than CPUs ------------------------------------- */

static int cpu_count(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return (int)(cpus < 1 ? 1 : cpus > 32 ? 32 : cpus);
}

/* The pool hands work at once only to one thread per CPU; beyond that only
 * the watcher grows it, when it sees the busy threads asleep, one watcher
 * after another, with no further submit to prompt it: a pool that never
 * appoints or starts a watcher deadlocks here (until meet_job's bound).
 * Round 1 starts every thread; round 2 finds them all idle and appoints
 * watchers from them. */
static void test_executor_blocked_beyond_cpus(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    int want = cpu_count() + 3;
    struct meet m;
    meet_init(&m, make_executor("blk", (unsigned)want, 0, 60 * CREW_S), want);
    crew_rt_t *rt = tc_rt_create();
    for (int round = 0; round < 2; round++) {
        meet_round(rt, &m);
        crew_executor_metrics_t mt = metrics(m.ex);
        assert_int_equal(mt.threads_started, (uint64_t)want);
        assert_int_equal(mt.jobs_completed, (uint64_t)want * (round + 1));
    }
    /* Each call past the CPU count got its thread from a watcher's stall
     * (3 per round where the pool hands out 2 at once; more when a thread
     * of round 1 was still finishing as round 2 began, which TSan's pace
     * makes likely). They were found blocked, not merely late: only a
     * machine so loaded that a thread that took its call could not reach
     * its wait for 10 ms makes one a forced growth, never all of them. */
    crew_executor_metrics_t mt = metrics(m.ex);
    fprintf(stderr, "# stalls: %llu blocked, %llu forced\n",
            (unsigned long long)mt.stalls_blocked, (unsigned long long)mt.stalls_forced);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int eager = cpus < 1 ? 1 : cpus > want ? want : (int)cpus;
    assert_true(mt.stalls_blocked + mt.stalls_forced >= (uint64_t)(want - eager) * 2);
    assert_true(mt.stalls_blocked >= (want > eager));
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(crew_executor_destroy(m.ex), 0);
    meet_destroy(&m);
}

/* The same from plain threads, each submitting once the previous call is
 * running: every submit after the first CPU-count finds the busy threads
 * asleep, so only the watcher can give it a thread. */
struct plain_meet {
    struct meet *m;
    int rc;
    void *r;
};

static void *plain_meet_thread(void *arg)
{
    struct plain_meet *p = arg;
    p->rc = crew_run_in_executor(p->m->ex, meet_job, p->m, &p->r);
    return NULL;
}

static void test_executor_blocked_plain_threads(void **state)
{
    crew_test_watchdog(60);
    int want = cpu_count() + 3;
    struct meet m;
    meet_init(&m, make_executor("pblk", (unsigned)want, 0, 0), want);
    pthread_t th[40];
    struct plain_meet p[40];
    for (int i = 0; i < want; i++) {
        p[i] = (struct plain_meet){ .m = &m, .rc = -1 };
        assert_int_equal(pthread_create(&th[i], NULL, plain_meet_thread, &p[i]), 0);
        TC_WAIT_UNTIL(submitted(m.ex) == (uint64_t)i + 1);
    }
    for (int i = 0; i < want; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(p[i].rc, 0);
        assert_int_equal((intptr_t)p[i].r, want);
    }
    assert_int_equal(metrics(m.ex).threads_started, (uint64_t)want);
    assert_int_equal(crew_executor_destroy(m.ex), 0);
    meet_destroy(&m);
}

/* ---- 7c. CPU-bound calls do not grow the pool ----------------------------- */

/* Calls that compute (spin on their thread's CPU clock) for CPU_CALL_NS,
 * CPU_INFLIGHT at a time, with room for CPU_INFLIGHT threads: one thread per
 * CPU keeps the CPUs busy, so the pool must not grow much past the CPU
 * count. Threads of a loaded machine that wait for a CPU are runnable, not
 * asleep, so this holds under load too; the slack covers the watcher, a
 * busy thread caught asleep in a page fault or on the executor's lock, and
 * the growth after 10 ms, 20 ms, ... without progress that a heavily loaded
 * machine can cause. Growth on time alone (no progress for 50 us), or on
 * the CPU clock alone under load, starts about CPU_INFLIGHT threads here. */
#define CPU_INFLIGHT 16
#define CPU_CALLS 4
#define CPU_CALL_NS (2 * CREW_MS)
#define CPU_SLACK 4

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * CREW_S + ts.tv_nsec;
}

static void *cpu_job(void *arg)
{
    int64_t end = thread_cpu_ns() + CPU_CALL_NS;
    while (thread_cpu_ns() < end)
        continue;
    return arg;
}

static void *cpu_task(void *arg)
{
    for (int i = 0; i < CPU_CALLS; i++) {
        void *r = NULL;
        TC_CHECK_EQ(crew_run_in_executor(arg, cpu_job, MARK_OK, &r), 0);
        TC_CHECK(r == MARK_OK);
    }
    return MARK_OK;
}

static void test_executor_cpu_bound_stays_small(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    crew_executor_t *ex = make_executor("cpu", CPU_INFLIGHT, 0, 0);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t[CPU_INFLIGHT];
    for (int i = 0; i < CPU_INFLIGHT; i++)
        assert_int_equal(crew_rt_spawn(rt, cpu_task, ex, NULL, &t[i]), 0);
    for (int i = 0; i < CPU_INFLIGHT; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    crew_executor_metrics_t m = metrics(ex);
    fprintf(stderr, "# %d CPU-bound calls, %d CPUs, %llu threads started\n",
            CPU_INFLIGHT * CPU_CALLS, cpu_count(), (unsigned long long)m.threads_started);
    assert_int_equal(m.jobs_completed, CPU_INFLIGHT * CPU_CALLS);
    assert_true(m.threads_started <= (uint64_t)cpu_count() + CPU_SLACK);
    assert_int_equal(crew_executor_destroy(ex), 0);
}

/* ---- 8. Destroying an executor with queued and running calls ---------------- */

struct dq {
    crew_executor_t *ex;
    struct gate gate;
    atomic_int victims_ran;
    atomic_int destroyed;
    int destroy_rc;
};

static void *dq_block(void *arg)
{
    gate_pass(&((struct dq *)arg)->gate);
    return MARK_OK;
}

static void *dq_victim(void *arg)
{
    atomic_fetch_add(&((struct dq *)arg)->victims_ran, 1);
    return MARK_OK;
}

static void *dq_blocker_task(void *arg)
{
    struct dq *d = arg;
    void *r = NULL;
    int rc = crew_run_in_executor(d->ex, dq_block, d, &r);
    TC_CHECK(r == MARK_OK);
    return RC_PTR(rc);
}

static void *dq_victim_task(void *arg)
{
    struct dq *d = arg;
    return RC_PTR(crew_run_in_executor(d->ex, dq_victim, d, NULL));
}

static void *dq_destroyer(void *arg)
{
    struct dq *d = arg;
    d->destroy_rc = crew_executor_destroy(d->ex);
    atomic_store(&d->destroyed, 1);
    return NULL;
}

static void test_executor_destroy_with_queued(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    /* Capacity 2: two victims queue, the third waits for room. */
    struct dq d = { .ex = make_executor("dq", 1, 2, 0) };
    gate_init(&d.gate);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *blocker, *victim[3];
    assert_int_equal(crew_rt_spawn(rt, dq_blocker_task, &d, NULL, &blocker), 0);
    TC_WAIT_UNTIL(atomic_load(&d.gate.waiting) == 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(crew_rt_spawn(rt, dq_victim_task, &d, NULL, &victim[i]), 0);
    TC_WAIT_UNTIL(queued_of(d.ex) == 2);
    for (int i = 0; i < 3; i++)
        TC_WAIT_UNTIL(crew_task_state(victim[i]) == CREW_TASK_WAITING);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, dq_destroyer, &d), 0);
    /* Queued calls and the submitter waiting for room end with -ESHUTDOWN
     * while the running call still holds the destroyer. */
    void *r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(crew_join(victim[i], &r), 0);
        assert_int_equal(PTR_RC(r), -ESHUTDOWN);
    }
    assert_int_equal(atomic_load(&d.destroyed), 0);
    gate_open(&d.gate);
    assert_int_equal(crew_join(blocker, &r), 0);
    assert_int_equal(PTR_RC(r), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(d.destroy_rc, 0);
    assert_int_equal(atomic_load(&d.victims_ran), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    gate_destroy(&d.gate);
}

/* ---- 9. Bad inputs ------------------------------------------------------------- */

static void *destroy_self(void *arg)
{
    return (void *)(intptr_t)crew_executor_destroy(arg);
}

static void test_executor_bad_inputs(void **state)
{
    crew_test_watchdog(60);
    crew_executor_t *ex = NULL;
    crew_executor_opts_t o = CREW_EXECUTOR_OPTS_INIT;
    assert_int_equal(crew_executor_create(&o, NULL), -EINVAL);
    o.size = 1;
    assert_int_equal(crew_executor_create(&o, &ex), -EINVAL);
    o = (crew_executor_opts_t)CREW_EXECUTOR_OPTS_INIT;
    o.reserved[2] = &o;
    assert_int_equal(crew_executor_create(&o, &ex), -EINVAL);
    o = (crew_executor_opts_t)CREW_EXECUTOR_OPTS_INIT;
    o.name = "twelve-chars";
    assert_int_equal(crew_executor_create(&o, &ex), -EINVAL);
    o = (crew_executor_opts_t)CREW_EXECUTOR_OPTS_INIT;
    o.max_threads = CREW_EXECUTOR_MAX_THREADS + 1;
    assert_int_equal(crew_executor_create(&o, &ex), -EINVAL);
    o = (crew_executor_opts_t)CREW_EXECUTOR_OPTS_INIT;
    o.keep_alive_ns = -1;
    assert_int_equal(crew_executor_create(&o, &ex), -EINVAL);
    assert_null(ex);
    assert_int_equal(crew_executor_destroy(NULL), -EINVAL);
    assert_int_equal(crew_executor_metrics(NULL, NULL), -EINVAL);
    assert_int_equal(crew_rt_executor(NULL, &ex), -EINVAL);

    assert_int_equal(crew_executor_create(NULL, &ex), 0);
    crew_executor_metrics_t m;
    assert_int_equal(crew_executor_metrics(ex, NULL), -EINVAL);
    assert_int_equal(crew_executor_metrics(ex, &m), 0);
    assert_int_equal(m.threads_alive, 0); /* No thread before the first call. */
    assert_int_equal(crew_run_in_executor(ex, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(crew_run_in_executor_ex(ex, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(crew_to_thread(NULL, NULL, NULL), -EINVAL);
    void *r = NULL;
    assert_int_equal(crew_run_in_executor(ex, destroy_self, ex, &r), 0);
    assert_int_equal((intptr_t)r, -EBUSY);
    assert_int_equal(crew_executor_destroy(ex), 0);
}

/* ---- 10. Runtime shutdown with a call still running ------------------------- */

struct rtd {
    struct gate gate;
    atomic_int finished, destroyed;
    crew_rt_t *rt;
};

static void *rtd_job(void *arg)
{
    struct rtd *d = arg;
    gate_pass(&d->gate);
    atomic_fetch_add(&d->finished, 1);
    return malloc(32);
}

static void rtd_discard(void *result, void *arg)
{
    free(result);
}

static void *rtd_task(void *arg)
{
    /* Cancelled while its job runs: the task ends, the job goes on. */
    return RC_PTR(crew_run_in_executor_ex(NULL, rtd_job, arg, rtd_discard, NULL));
}

static void *rtd_destroyer(void *arg)
{
    struct rtd *d = arg;
    TC_CHECK_EQ(crew_rt_destroy(d->rt), 0);
    atomic_store(&d->destroyed, 1);
    return NULL;
}

static void test_executor_rt_destroy_waits(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct rtd d = { 0 };
    gate_init(&d.gate);
    d.rt = tc_rt_create();
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(d.rt, rtd_task, &d, NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&d.gate.waiting) == 1);
    assert_int_equal(crew_task_cancel(t), 0);
    void *r;
    assert_int_equal(crew_join(t, &r), 0);
    assert_int_equal(PTR_RC(r), -ECANCELED);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, rtd_destroyer, &d), 0);
    /* The job is still held: destroy cannot have finished. */
    assert_int_equal(atomic_load(&d.finished), 0);
    assert_int_equal(atomic_load(&d.destroyed), 0);
    gate_open(&d.gate);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&d.finished), 1);
    tc_assert_clean();
    gate_destroy(&d.gate);
}

/* ---- 11. A task that blocks its worker (row 31) ------------------------------ */

struct blockw {
    atomic_ulong ticks;
    atomic_int stop, blocker_started;
    unsigned long during;
};

static void *ticker(void *arg)
{
    struct blockw *b = arg;
    while (!atomic_load(&b->stop)) {
        atomic_fetch_add(&b->ticks, 1);
        crew_yield();
    }
    return MARK_OK;
}

static void *blocker(void *arg)
{
    struct blockw *b = arg;
    atomic_store(&b->blocker_started, 1);
    unsigned long before = atomic_load(&b->ticks);
    /* A plain blocking call on the worker: no crew call, no yield. */
    struct timespec ts = { 0, 200 * 1000 * 1000 };
    while (nanosleep(&ts, &ts) && errno == EINTR)
        continue;
    b->during = atomic_load(&b->ticks) - before;
    return MARK_OK;
}

static void *blockw_main(void *arg)
{
    struct blockw *b = arg;
    crew_task_t *tk, *bl;
    TC_CHECK_EQ(crew_spawn(ticker, b, NULL, &tk), 0);
    TC_SPIN_UNTIL(atomic_load(&b->ticks) > 0, TASK_SPIN_CAP);
    TC_CHECK_EQ(crew_spawn(blocker, b, NULL, &bl), 0);
    TC_CHECK_EQ(crew_join(bl, NULL), 0);
    atomic_store(&b->stop, 1);
    TC_CHECK_EQ(crew_join(tk, NULL), 0);
    return MARK_OK;
}

static void test_executor_blocked_worker(void **state)
{
    if (crew_test_workers() < 2)
        skip();
    crew_test_watchdog(60);
    tc_reset();
    struct blockw b = { 0 };
    assert_ptr_equal(tc_run(blockw_main, &b), MARK_OK);
    tc_assert_clean();
    fprintf(stderr, "# ticker ran %lu times while a worker was blocked\n", b.during);
    assert_true(b.during > 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_executor_result_and_names),
    cmocka_unit_test(test_executor_many_concurrent),
    cmocka_unit_test(test_executor_saturation),
    cmocka_unit_test(test_executor_queue_bound),
    cmocka_unit_test(test_executor_cancel),
    cmocka_unit_test(test_executor_cancel_before_submit),
    cmocka_unit_test(test_executor_deadline),
    cmocka_unit_test(test_executor_elastic),
    cmocka_unit_test(test_executor_blocked_beyond_cpus),
    cmocka_unit_test(test_executor_blocked_plain_threads),
    cmocka_unit_test(test_executor_cpu_bound_stays_small),
    cmocka_unit_test(test_executor_destroy_with_queued),
    cmocka_unit_test(test_executor_bad_inputs),
    cmocka_unit_test(test_executor_rt_destroy_waits),
    cmocka_unit_test(test_executor_blocked_worker),
};

CREW_TEST_MAIN("executor", tests)
