/* Time and sleeping (include/crew/time.h): the monotonic clock, sleeps from
 * tasks and from plain threads, argument errors, many timers at once, the
 * FIFO order of equal deadlines, cancellation of sleeping tasks (sticky
 * requests, shield regions, durations that would overflow), shutdown with
 * sleeping tasks, a cancel-versus-fire race, and who fires timers (the
 * workers while one is awake, the reactor as the backstop).
 *
 * Only guarantees are asserted: a sleep lasts at least what it asked for, and
 * with one worker equal deadlines wake in the order they were registered. How
 * late timers fire depends on the machine's load; it is printed as '# '
 * lines, never asserted. */
#include "task_util.h"

#include <dirent.h>

/* What a task returns when it ends normally. */
#define MARK_OK ((void *)(uintptr_t)0x600D)
/* Stored in a result slot before a join, so the test sees whether the join
 * wrote it. */
#define MARK_UNSET ((void *)(uintptr_t)0xBAD)

/* A sleep that only a cancellation ends within the test's watchdog. */
#define LONG_SLEEP (60 * CREW_S)

/* CLOCK_MONOTONIC read directly, to check crew_now against and to bound the
 * test thread's waits independently of the clock under test. */
static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * CREW_S + ts.tv_nsec;
}

/* How long the test thread waits for a task to reach a point. The bound only
 * turns a hang into a message; it is not a timing assertion. */
/* Yields a task makes while waiting for others to reach a point: enough for
 * seconds of scheduling, so that a lost wakeup fails instead of hanging. */
#define TASK_SPIN_CAP 10000000ul

static void *return_ok(void *arg)
{
    (void)arg;
    return MARK_OK;
}

/* Measured sleep: the return code and the crew_now() delta around it. */
struct timed {
    int rc;
    int64_t elapsed;
};

static struct timed timed_sleep(int64_t ns)
{
    int64_t before = crew_now();
    int rc = crew_sleep(ns);
    return (struct timed){ rc, crew_now() - before };
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Print how late n sleeps woke (late[] is sorted in place). */
static void print_lateness(const char *what, int64_t *late, size_t n)
{
    if (!n)
        return;
    qsort(late, n, sizeof *late, cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)late[i];
    fprintf(stderr, "# %s: %zu sleeps, lateness mean %.1f us, p50 %.1f us, p99 %.1f us, max %.1f us\n",
            what, n, sum / (double)n / 1e3, (double)late[n / 2] / 1e3,
            (double)late[(n - 1) * 99 / 100] / 1e3, (double)late[n - 1] / 1e3);
}

/* Threads of this process whose name is name (/proc/self/task/<tid>/comm). */
static int threads_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* The thread exited meanwhile. */
        if (fgets(comm, sizeof comm, f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        n += !strcmp(comm, name);
    }
    closedir(d);
    return n;
}

/* ---- 1. crew_now ------------------------------------------------------------ */

#define NOW_CALLS 1000000l

/* Every reader reads the latest value any reader published, then the clock,
 * then publishes what it read: a later read that happens after an earlier
 * one (through latest) must not be smaller, on any pair of CPUs. */
struct now_shared {
    _Atomic int64_t latest;
    atomic_ulong backwards;   /* Reads smaller than one that happened before. */
    _Atomic int64_t worst;    /* Largest step back seen, in ns. */
    long calls;               /* Per reader. */
};

static void now_reader(struct now_shared *s, bool in_task)
{
    int64_t prev = crew_now();
    for (long i = 0; i < s->calls; i++) {
        /* Seq_cst: orders this load before the clock read below, and pairs
         * with the compare-exchange of the reader that published seen. */
        int64_t seen = atomic_load(&s->latest);
        int64_t t = crew_now();
        int64_t back = (seen > prev ? seen : prev) - t;
        if (back > 0) {
            atomic_fetch_add(&s->backwards, 1);
            int64_t w = atomic_load(&s->worst);
            while (w < back && !atomic_compare_exchange_weak(&s->worst, &w, back))
                continue;
        }
        prev = t;
        while (seen < t && !atomic_compare_exchange_weak(&s->latest, &seen, t))
            continue;
        /* A task moves between workers at its yields, so prev is also
         * compared across the CPUs it ran on. */
        if (in_task && i % 64 == 0)
            TC_CHECK_EQ(crew_yield(), 0);
    }
}

static void *now_task(void *arg)
{
    now_reader(arg, true);
    return MARK_OK;
}

static void *now_thread(void *arg)
{
    now_reader(arg, false);
    return NULL;
}

static void test_time_now_monotonic(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    /* crew_now reads the clock the header names. */
    int64_t lo = mono_ns(), now = crew_now(), hi = mono_ns();
    assert_true(lo <= now && now <= hi);

    /* One thread, back to back. */
    struct now_shared one = { .calls = NOW_CALLS };
    atomic_init(&one.latest, 0);
    now_reader(&one, false);
    if (atomic_load(&one.backwards))
        fail_msg("crew_now went back %lu times in %ld calls on one thread (worst %lld ns)",
                 atomic_load(&one.backwards), NOW_CALLS, (long long)atomic_load(&one.worst));

    /* Two plain threads and two tasks per worker, NOW_CALLS calls in all. */
    crew_rt_t *rt = tc_rt_create();
    unsigned ntasks = 2 * crew_rt_workers(rt);
    struct now_shared many = { .calls = NOW_CALLS / (long)(ntasks + 2) };
    atomic_init(&many.latest, 0);
    crew_task_t *t[2 * CREW_MAX_WORKERS];
    pthread_t th[2];
    for (unsigned i = 0; i < ntasks; i++)
        assert_int_equal(crew_rt_spawn(rt, now_task, &many, NULL, &t[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, now_thread, &many), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (unsigned i = 0; i < ntasks; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    if (atomic_load(&many.backwards))
        fail_msg("crew_now went back %lu times across threads and tasks (worst %lld ns)",
                 atomic_load(&many.backwards), (long long)atomic_load(&many.worst));
}

/* ---- 2. Sleeping in a task ---------------------------------------------------- */

static const int64_t basic_ns[] = { 0, 1 * CREW_US, 1 * CREW_MS, 20 * CREW_MS };
#define BASIC_N (sizeof basic_ns / sizeof basic_ns[0])
#define BASIC_REPS 5

/* Filled by basic_body, read after its join. */
struct basic {
    struct timed sleep[BASIC_N][BASIC_REPS];
    int neg, neg_min, until_neg, until_neg_min;
    int until_past, until_zero, until_future;
    int64_t until_deadline, until_woke;
    int runs_other[2]; /* Did a runnable sibling run during sleep(0) / sleep_until(past)? */
};

static void *set_flag(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
    return MARK_OK;
}

/* Spawn a task that sets a flag, then call sleep_zero: returns whether the
 * task had run when the call returned. */
static int sibling_ran(bool until)
{
    atomic_int flag = 0;
    crew_task_t *t = NULL;
    int rc = crew_spawn(set_flag, &flag, NULL, &t);
    TC_CHECK_EQ(rc, 0);
    if (rc)
        return -1;
    TC_CHECK_EQ(until ? crew_sleep_until(crew_now() - CREW_MS) : crew_sleep(0), 0);
    int ran = atomic_load(&flag);
    TC_CHECK_EQ(crew_join(t, NULL), 0);
    return ran;
}

static void *basic_body(void *arg)
{
    struct basic *b = arg;
    for (size_t i = 0; i < BASIC_N; i++)
        for (int r = 0; r < BASIC_REPS; r++)
            b->sleep[i][r] = timed_sleep(basic_ns[i]);
    b->neg = crew_sleep(-1);
    b->neg_min = crew_sleep(INT64_MIN);
    b->until_neg = crew_sleep_until(-5);
    b->until_neg_min = crew_sleep_until(INT64_MIN);
    b->until_past = crew_sleep_until(crew_now() - 10 * CREW_MS);
    b->until_zero = crew_sleep_until(0);
    b->until_deadline = crew_now() + 5 * CREW_MS;
    b->until_future = crew_sleep_until(b->until_deadline);
    b->until_woke = crew_now();
    b->runs_other[0] = sibling_ran(false);
    b->runs_other[1] = sibling_ran(true);
    return MARK_OK;
}

static void test_time_sleep_task(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct basic b;
    memset(&b, 0, sizeof b);
    assert_ptr_equal(tc_run(basic_body, &b), MARK_OK);
    tc_assert_clean();
    for (size_t i = 0; i < BASIC_N; i++) {
        int64_t late[BASIC_REPS];
        for (int r = 0; r < BASIC_REPS; r++) {
            struct timed t = b.sleep[i][r];
            if (t.rc != 0 || t.elapsed < basic_ns[i])
                fail_msg("crew_sleep(%lld) #%d: rc %d, elapsed %lld ns", (long long)basic_ns[i], r,
                         t.rc, (long long)t.elapsed);
            late[r] = t.elapsed - basic_ns[i];
        }
        char what[64];
        snprintf(what, sizeof what, "task crew_sleep(%lld ns)", (long long)basic_ns[i]);
        print_lateness(what, late, BASIC_REPS);
    }
    assert_int_equal(b.neg, -EINVAL);
    assert_int_equal(b.neg_min, -EINVAL);
    assert_int_equal(b.until_neg, -EINVAL);
    assert_int_equal(b.until_neg_min, -EINVAL);
    assert_int_equal(b.until_past, 0);
    assert_int_equal(b.until_zero, 0);
    assert_int_equal(b.until_future, 0);
    if (b.until_woke < b.until_deadline)
        fail_msg("crew_sleep_until woke %lld ns before its deadline",
                 (long long)(b.until_deadline - b.until_woke));
    /* With one worker the sibling is the only other runnable task, so a
     * sleep of 0 (which lets runnable tasks run first) must have run it. */
    if (crew_test_workers() == 1) {
        assert_int_equal(b.runs_other[0], 1);
        assert_int_equal(b.runs_other[1], 1);
    }
}

/* Sleeping tasks hold no worker: with one 60 s sleeper per worker, a new
 * task still runs (a sleep that blocked its thread would leave the watchdog
 * or the sleepers' return codes to fail the test). */
struct hold {
    unsigned n;
    crew_task_t *t[CREW_MAX_WORKERS];
    atomic_int started;
    int rc[CREW_MAX_WORKERS];
    int child_rc, join_rc[CREW_MAX_WORKERS];
    void *child_res;
};

struct hold_slot {
    struct hold *h;
    unsigned i;
};

static void *hold_sleeper(void *arg)
{
    struct hold_slot *s = arg;
    atomic_fetch_add(&s->h->started, 1);
    s->h->rc[s->i] = crew_sleep(LONG_SLEEP);
    return s->h->rc[s->i] == -ECANCELED ? CREW_TASK_CANCELED : MARK_OK;
}

static bool all_waiting(crew_task_t *const *t, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (crew_task_state(t[i]) != CREW_TASK_WAITING)
            return false;
    return true;
}

static void *hold_main(void *arg)
{
    struct hold *h = arg;
    struct hold_slot slot[CREW_MAX_WORKERS];
    h->n = crew_rt_workers(crew_rt_current());
    for (unsigned i = 0; i < h->n; i++) {
        slot[i] = (struct hold_slot){ h, i };
        int rc = crew_spawn(hold_sleeper, &slot[i], NULL, &h->t[i]);
        TC_CHECK_EQ(rc, 0);
        if (rc)
            return NULL;
    }
    TC_CHECK(TC_SPIN_UNTIL((unsigned)atomic_load(&h->started) == h->n &&
                               all_waiting(h->t, h->n),
                           TASK_SPIN_CAP));
    crew_task_t *c = NULL;
    h->child_rc = crew_spawn(return_ok, NULL, NULL, &c);
    if (!h->child_rc)
        h->child_rc = crew_join(c, &h->child_res);
    for (unsigned i = 0; i < h->n; i++)
        TC_CHECK_EQ(crew_task_cancel(h->t[i]), 0);
    for (unsigned i = 0; i < h->n; i++)
        h->join_rc[i] = crew_join(h->t[i], NULL);
    return MARK_OK;
}

static void test_time_sleep_frees_worker(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    struct hold *h = calloc(1, sizeof *h);
    assert_non_null(h);
    assert_ptr_equal(tc_run(hold_main, h), MARK_OK);
    tc_assert_clean();
    assert_int_equal(h->child_rc, 0);
    assert_ptr_equal(h->child_res, MARK_OK);
    for (unsigned i = 0; i < h->n; i++) {
        assert_int_equal(h->rc[i], -ECANCELED);
        assert_int_equal(h->join_rc[i], -ECANCELED);
    }
    free(h);
}

/* ---- 3. Sleeping on a plain thread --------------------------------------------- */

struct thread_sleeps {
    struct timed sleep[BASIC_N];
    int neg, until_neg, until_past, until_future;
    int64_t until_deadline, until_woke;
    int cancelled;
};

static void thread_sleeps_run(struct thread_sleeps *s)
{
    for (size_t i = 0; i < BASIC_N; i++)
        s->sleep[i] = timed_sleep(basic_ns[i]);
    s->neg = crew_sleep(-1);
    s->until_neg = crew_sleep_until(-5);
    s->until_past = crew_sleep_until(crew_now() - 10 * CREW_MS);
    s->until_deadline = crew_now() + 5 * CREW_MS;
    s->until_future = crew_sleep_until(s->until_deadline);
    s->until_woke = crew_now();
    s->cancelled = crew_cancelled();
}

static void *thread_sleeps_main(void *arg)
{
    thread_sleeps_run(arg);
    return NULL;
}

static void thread_sleeps_check(const struct thread_sleeps *s, const char *who)
{
    for (size_t i = 0; i < BASIC_N; i++) {
        struct timed t = s->sleep[i];
        if (t.rc != 0 || t.elapsed < basic_ns[i])
            fail_msg("%s: crew_sleep(%lld): rc %d, elapsed %lld ns", who, (long long)basic_ns[i],
                     t.rc, (long long)t.elapsed);
        fprintf(stderr, "# %s crew_sleep(%lld ns): late by %.1f us\n", who,
                (long long)basic_ns[i], (double)(t.elapsed - basic_ns[i]) / 1e3);
    }
    assert_int_equal(s->neg, -EINVAL);
    assert_int_equal(s->until_neg, -EINVAL);
    assert_int_equal(s->until_past, 0);
    assert_int_equal(s->until_future, 0);
    if (s->until_woke < s->until_deadline)
        fail_msg("%s: crew_sleep_until woke %lld ns early", who,
                 (long long)(s->until_deadline - s->until_woke));
    assert_int_equal(s->cancelled, 0);
}

#define SLEEP_THREADS 3

/* The test thread, with and without a runtime alive, then several threads at
 * once. */
static void test_time_sleep_thread(void **state)
{
    crew_test_watchdog(60);
    struct thread_sleeps s;
    memset(&s, 0, sizeof s);
    thread_sleeps_run(&s);
    thread_sleeps_check(&s, "test thread");

    crew_rt_t *rt = tc_rt_create();
    memset(&s, 0, sizeof s);
    thread_sleeps_run(&s);
    thread_sleeps_check(&s, "test thread, runtime alive");
    assert_int_equal(crew_rt_destroy(rt), 0);

    struct thread_sleeps ts[SLEEP_THREADS];
    pthread_t th[SLEEP_THREADS];
    memset(ts, 0, sizeof ts);
    for (int i = 0; i < SLEEP_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_sleeps_main, &ts[i]), 0);
    for (int i = 0; i < SLEEP_THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        thread_sleeps_check(&ts[i], "plain thread");
    }
}

/* ---- 4. Many timers ------------------------------------------------------------ */

#define MANY_TASKS 10000u
#define MANY_MAX_MS 50

struct many_slot {
    int64_t delay;
    int64_t start;
    struct timed t;
    atomic_ulong *done;
};

static void *many_body(void *arg)
{
    struct many_slot *s = arg;
    s->start = crew_now();
    s->t = timed_sleep(s->delay);
    atomic_fetch_add(s->done, 1);
    return MARK_OK;
}

struct many {
    unsigned n;
    struct many_slot *slot;
    crew_task_t **t;
    int spawn_rc;
};

static void *many_main(void *arg)
{
    struct many *m = arg;
    crew_spawn_opts_t so = CREW_SPAWN_OPTS_INIT;
    so.stack_size = CREW_MIN_STACK_SIZE;
    unsigned spawned = 0;
    for (; spawned < m->n; spawned++) {
        m->spawn_rc = crew_spawn(many_body, &m->slot[spawned], &so, &m->t[spawned]);
        if (m->spawn_rc)
            break;
    }
    for (unsigned i = 0; i < spawned; i++)
        TC_CHECK_EQ(crew_join(m->t[i], NULL), 0);
    return MARK_OK;
}

static void test_time_many_timers(void **state)
{
    crew_test_watchdog(120);
    tc_reset();
    struct many m = { .n = MANY_TASKS / crew_test_slowdown() };
    m.slot = calloc(m.n, sizeof *m.slot);
    m.t = calloc(m.n, sizeof *m.t);
    int64_t *late = calloc(m.n, sizeof *late);
    assert_true(m.slot && m.t && late);
    uint64_t rng = crew_test_seed();
    struct tc_progress prog;
    tc_progress_start(&prog, "many timers", 10);
    for (unsigned i = 0; i < m.n; i++) {
        m.slot[i].delay = (int64_t)(1 + crew_test_rand(&rng) % MANY_MAX_MS) * CREW_MS;
        m.slot[i].done = &prog.count;
    }
    int64_t start = crew_now();
    assert_ptr_equal(tc_run(many_main, &m), MARK_OK);
    int64_t total = crew_now() - start;
    tc_progress_stop(&prog);
    tc_assert_clean();
    assert_int_equal(m.spawn_rc, 0);
    unsigned bad = 0, first_bad = 0;
    int64_t first_start = INT64_MAX, last_start = 0;
    for (unsigned i = 0; i < m.n; i++) {
        if (m.slot[i].start < first_start)
            first_start = m.slot[i].start;
        if (m.slot[i].start > last_start)
            last_start = m.slot[i].start;
        struct timed t = m.slot[i].t;
        if (t.rc != 0 || t.elapsed < m.slot[i].delay) {
            if (!bad++)
                first_bad = i;
        }
        late[i] = t.elapsed - m.slot[i].delay;
    }
    if (bad)
        fail_msg("%u of %u sleeps failed or woke early; first: task %u, delay %lld ns, rc %d, "
                 "elapsed %lld ns",
                 bad, m.n, first_bad, (long long)m.slot[first_bad].delay, m.slot[first_bad].t.rc,
                 (long long)m.slot[first_bad].t.elapsed);
    /* A woken task queues behind tasks not started yet, so lateness grows
     * with the time the tasks took to start. */
    fprintf(stderr, "# %u tasks sleeping 1..%d ms: started within %.1f ms, all done in %.1f ms\n",
            m.n, MANY_MAX_MS, (double)(last_start - first_start) / 1e6, (double)total / 1e6);
    print_lateness("many timers", late, m.n);
    free(late);
    free(m.t);
    free(m.slot);
}

/* ---- 5. Equal deadlines wake in FIFO order (one worker) ------------------------ */

#define FIFO_TASKS 100
#define FIFO_ROUNDS 3

struct fifo {
    int64_t deadline;
    atomic_int registered, woken;
    atomic_int late;        /* Tasks that reached crew_sleep_until after the deadline. */
    struct fifo_slot {
        struct fifo *f;
        int reg, wake, rc;
    } slot[FIFO_TASKS];
};

static void *fifo_body(void *arg)
{
    struct fifo_slot *s = arg;
    struct fifo *f = s->f;
    if (crew_now() >= f->deadline)
        atomic_fetch_add(&f->late, 1);
    /* Nothing suspends between this and the sleep, and one worker runs one
     * task at a time: this is the order of the timers' registration. */
    s->reg = atomic_fetch_add(&f->registered, 1);
    s->rc = crew_sleep_until(f->deadline);
    s->wake = atomic_fetch_add(&f->woken, 1);
    return MARK_OK;
}

static void *fifo_main(void *arg)
{
    struct fifo *f = arg;
    crew_task_t *t[FIFO_TASKS];
    /* Far enough ahead that every task registers before it. */
    f->deadline = crew_now() + 100 * CREW_MS * crew_test_slowdown();
    for (int i = 0; i < FIFO_TASKS; i++) {
        f->slot[i].f = f;
        int rc = crew_spawn(fifo_body, &f->slot[i], NULL, &t[i]);
        TC_CHECK_EQ(rc, 0);
        if (rc)
            return NULL;
    }
    for (int i = 0; i < FIFO_TASKS; i++)
        TC_CHECK_EQ(crew_join(t[i], NULL), 0);
    return MARK_OK;
}

static void test_time_equal_deadlines_fifo(void **state)
{
    if (crew_test_workers() != 1)
        skip();
    crew_test_watchdog(60);
    tc_reset();
    struct fifo *f = calloc(1, sizeof *f);
    assert_non_null(f);
    for (int r = 0; r < FIFO_ROUNDS; r++) {
        memset(f, 0, sizeof *f);
        assert_ptr_equal(tc_run(fifo_main, f), MARK_OK);
        tc_assert_clean();
        if (atomic_load(&f->late)) {
            fprintf(stderr, "# %d tasks registered after the deadline: machine too slow\n",
                    atomic_load(&f->late));
            free(f);
            skip();
        }
        for (int i = 0; i < FIFO_TASKS; i++) {
            struct fifo_slot *s = &f->slot[i];
            assert_int_equal(s->rc, 0);
            if (s->wake == s->reg)
                continue;
            int usurper = -1;
            for (int j = 0; j < FIFO_TASKS; j++)
                if (f->slot[j].wake == s->reg)
                    usurper = f->slot[j].reg;
            fail_msg("round %d: the timer registered #%d woke #%d; #%d woke in its place", r,
                     s->reg, s->wake, usurper);
        }
    }
    free(f);
}

/* ---- 6. Cancellation --------------------------------------------------------- */

/* A task sleeping LONG_SLEEP, cancelled while it waits. After the cancelled
 * sleep every later sleep must report the cancellation at once (sticky). */
struct sleeper {
    atomic_int sleeping;
    int rc, rc_again, rc_zero, rc_until_past, rc_until;
    int cancelled;
};

static void *sleeper_body(void *arg)
{
    struct sleeper *s = arg;
    atomic_store(&s->sleeping, 1);
    s->rc = crew_sleep(LONG_SLEEP);
    s->rc_again = crew_sleep(LONG_SLEEP);
    s->rc_zero = crew_sleep(0);
    s->rc_until_past = crew_sleep_until(0);
    s->rc_until = crew_sleep_until(crew_now() + LONG_SLEEP);
    s->cancelled = crew_cancelled();
    return s->rc == -ECANCELED ? CREW_TASK_CANCELED : MARK_OK;
}

static void check_sleeper(const struct sleeper *s)
{
    assert_int_equal(s->rc, -ECANCELED);
    assert_int_equal(s->rc_again, -ECANCELED);
    assert_int_equal(s->rc_zero, -ECANCELED);
    assert_int_equal(s->rc_until_past, -ECANCELED);
    assert_int_equal(s->rc_until, -ECANCELED);
    assert_int_equal(s->cancelled, 1);
}

/* Cancelled from the test thread. */
static void test_time_cancel_sleep_thread(void **state)
{
    crew_test_watchdog(30);
    struct sleeper s;
    memset(&s, 0, sizeof s);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, sleeper_body, &s, NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&s.sleeping) && crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(crew_task_cancel(t), 0);
    void *res = MARK_UNSET;
    assert_int_equal(crew_join(t, &res), -ECANCELED);
    assert_ptr_equal(res, CREW_TASK_CANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    check_sleeper(&s);
}

/* Cancelled by the task that spawned it. */
struct cancel_parent {
    struct sleeper s;
    int cancel_rc, join_rc;
};

static void *cancel_parent_main(void *arg)
{
    struct cancel_parent *p = arg;
    crew_task_t *t = NULL;
    int rc = crew_spawn(sleeper_body, &p->s, NULL, &t);
    TC_CHECK_EQ(rc, 0);
    if (rc)
        return NULL;
    TC_CHECK(TC_SPIN_UNTIL(atomic_load(&p->s.sleeping) && crew_task_state(t) == CREW_TASK_WAITING,
                           TASK_SPIN_CAP));
    p->cancel_rc = crew_task_cancel(t);
    p->join_rc = crew_join(t, NULL);
    return MARK_OK;
}

static void test_time_cancel_sleep_task(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    struct cancel_parent p;
    memset(&p, 0, sizeof p);
    assert_ptr_equal(tc_run(cancel_parent_main, &p), MARK_OK);
    tc_assert_clean();
    assert_int_equal(p.cancel_rc, 0);
    assert_int_equal(p.join_rc, -ECANCELED);
    check_sleeper(&p.s);
}

/* A task that cancelled itself: every sleep reports it without waiting, and
 * shielded sleeps wait normally and return 0. */
struct sticky {
    int cancel_rc;
    int rc_long, rc_zero, rc_until_past, rc_until_far;
    struct timed shielded;
    int shield_until_rc;
    int64_t shield_deadline, shield_woke;
    struct timed callback;
    int shield_end_rc, rc_after_shield;
};

static void *shielded_sleep(void *arg)
{
    struct timed *t = arg;
    *t = timed_sleep(10 * CREW_MS);
    return MARK_OK;
}

static void *sticky_body(void *arg)
{
    struct sticky *s = arg;
    s->cancel_rc = crew_task_cancel(crew_self());
    s->rc_long = crew_sleep(LONG_SLEEP);
    s->rc_zero = crew_sleep(0);
    s->rc_until_past = crew_sleep_until(0);
    s->rc_until_far = crew_sleep_until(crew_now() + LONG_SLEEP);
    TC_CHECK_EQ(crew_shield_begin(), 0);
    s->shielded = timed_sleep(10 * CREW_MS);
    s->shield_deadline = crew_now() + 2 * CREW_MS;
    s->shield_until_rc = crew_sleep_until(s->shield_deadline);
    s->shield_woke = crew_now();
    s->shield_end_rc = crew_shield_end();
    TC_CHECK(crew_shield(shielded_sleep, &s->callback) == MARK_OK);
    s->rc_after_shield = crew_sleep(LONG_SLEEP);
    return CREW_TASK_CANCELED;
}

static void test_time_cancel_sticky_and_shield(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    struct sticky s;
    memset(&s, 0, sizeof s);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, sticky_body, &s, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    assert_int_equal(s.cancel_rc, 0);
    assert_int_equal(s.rc_long, -ECANCELED);
    assert_int_equal(s.rc_zero, -ECANCELED);
    assert_int_equal(s.rc_until_past, -ECANCELED);
    assert_int_equal(s.rc_until_far, -ECANCELED);
    assert_int_equal(s.shielded.rc, 0);
    if (s.shielded.elapsed < 10 * CREW_MS)
        fail_msg("shielded crew_sleep(10 ms) lasted %lld ns", (long long)s.shielded.elapsed);
    assert_int_equal(s.shield_until_rc, 0);
    if (s.shield_woke < s.shield_deadline)
        fail_msg("shielded crew_sleep_until woke %lld ns early",
                 (long long)(s.shield_deadline - s.shield_woke));
    assert_int_equal(s.shield_end_rc, 0);
    assert_int_equal(s.callback.rc, 0);
    if (s.callback.elapsed < 10 * CREW_MS)
        fail_msg("crew_sleep(10 ms) in crew_shield lasted %lld ns", (long long)s.callback.elapsed);
    assert_int_equal(s.rc_after_shield, -ECANCELED);
}

/* A cancel that arrives during a shielded sleep does not cut it short; it is
 * delivered at the first sleep after the shield. Then, after a cancelled
 * unshielded sleep of STALE_NS, a longer shielded sleep in the same task must
 * not be woken by the cancelled sleep's timer when its time comes. */
#define SHIELDED_NS (30 * CREW_MS)
#define STALE_NS (20 * CREW_MS)
#define STALE_AFTER_NS (60 * CREW_MS)

struct shield_cancel {
    atomic_int sleeping;
    struct timed shielded;
    int rc_after;
    atomic_int stage2;
    struct timed cancelled, reshielded;
};

static void *shield_cancel_body(void *arg)
{
    struct shield_cancel *s = arg;
    TC_CHECK_EQ(crew_shield_begin(), 0);
    atomic_store(&s->sleeping, 1);
    s->shielded = timed_sleep(SHIELDED_NS);
    TC_CHECK_EQ(crew_shield_end(), 0);
    s->rc_after = crew_sleep(LONG_SLEEP);
    return CREW_TASK_CANCELED;
}

static void *stale_timer_body(void *arg)
{
    struct shield_cancel *s = arg;
    atomic_store(&s->stage2, 1);
    s->cancelled = timed_sleep(STALE_NS);
    TC_CHECK_EQ(crew_shield_begin(), 0);
    s->reshielded = timed_sleep(STALE_AFTER_NS);
    TC_CHECK_EQ(crew_shield_end(), 0);
    return CREW_TASK_CANCELED;
}

static void test_time_cancel_during_shield(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    struct shield_cancel s;
    memset(&s, 0, sizeof s);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, shield_cancel_body, &s, NULL, &t), 0);
    /* Whether the cancel lands during the shielded sleep or after it, the
     * outcome is the same; usually it lands during. */
    TC_WAIT_UNTIL(atomic_load(&s.sleeping) && crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(crew_task_cancel(t), 0);
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    tc_assert_clean();
    assert_int_equal(s.shielded.rc, 0);
    if (s.shielded.elapsed < SHIELDED_NS)
        fail_msg("shielded sleep cut short by a cancel: %lld ns", (long long)s.shielded.elapsed);
    assert_int_equal(s.rc_after, -ECANCELED);

    assert_int_equal(crew_rt_spawn(rt, stale_timer_body, &s, NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&s.stage2) && crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(crew_task_cancel(t), 0);
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    /* The cancel may land after the first sleep completed on a slow machine. */
    assert_true(s.cancelled.rc == -ECANCELED ||
                (s.cancelled.rc == 0 && s.cancelled.elapsed >= STALE_NS));
    assert_int_equal(s.reshielded.rc, 0);
    if (s.reshielded.elapsed < STALE_AFTER_NS)
        fail_msg("shielded sleep after a cancelled one woke early (%lld ns of %lld): the "
                 "cancelled sleep's timer fired into it",
                 (long long)s.reshielded.elapsed, (long long)STALE_AFTER_NS);
}

/* ---- 7. Durations that would overflow -------------------------------------------- */

/* Sleeps until cancelled: now + ns overflows, or the deadline is centuries
 * away. A short sleep queued after them must still fire. */
enum { HUGE_SLEEP, HUGE_SLEEP_M1, HUGE_SLEEP_OVER, HUGE_UNTIL, HUGE_UNTIL_M1, HUGE_HALF, HUGE_N };

struct huge {
    atomic_int started;
    int rc[HUGE_N];
};

struct huge_slot {
    struct huge *h;
    int kind;
};

static void *huge_body(void *arg)
{
    struct huge_slot *s = arg;
    struct huge *h = s->h;
    atomic_fetch_add(&h->started, 1);
    int rc;
    switch (s->kind) {
    case HUGE_SLEEP:
        rc = crew_sleep(INT64_MAX);
        break;
    case HUGE_SLEEP_M1:
        rc = crew_sleep(INT64_MAX - 1);
        break;
    case HUGE_SLEEP_OVER:
        /* The smallest duration whose deadline overflows. */
        rc = crew_sleep(INT64_MAX - crew_now() + 1);
        break;
    case HUGE_UNTIL:
        rc = crew_sleep_until(INT64_MAX);
        break;
    case HUGE_UNTIL_M1:
        rc = crew_sleep_until(INT64_MAX - 1);
        break;
    default:
        rc = crew_sleep(INT64_MAX / 2);
        break;
    }
    h->rc[s->kind] = rc;
    return rc == -ECANCELED ? CREW_TASK_CANCELED : MARK_OK;
}

static void *short_sleep(void *arg)
{
    *(struct timed *)arg = timed_sleep(5 * CREW_MS);
    return MARK_OK;
}

static void test_time_huge_durations(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    struct huge h;
    memset(&h, 0, sizeof h);
    struct huge_slot slot[HUGE_N];
    crew_task_t *t[HUGE_N], *st = NULL;
    crew_rt_t *rt = tc_rt_create();
    for (int k = 0; k < HUGE_N; k++) {
        slot[k] = (struct huge_slot){ &h, k };
        assert_int_equal(crew_rt_spawn(rt, huge_body, &slot[k], NULL, &t[k]), 0);
    }
    TC_WAIT_UNTIL(atomic_load(&h.started) == HUGE_N && all_waiting(t, HUGE_N));
    struct timed shortie = { -1, 0 };
    assert_int_equal(crew_rt_spawn(rt, short_sleep, &shortie, NULL, &st), 0);
    assert_int_equal(crew_join(st, NULL), 0);
    assert_int_equal(shortie.rc, 0);
    assert_true(shortie.elapsed >= 5 * CREW_MS);
    for (int k = 0; k < HUGE_N; k++)
        assert_int_equal(crew_task_state(t[k]), CREW_TASK_WAITING);
    for (int k = 0; k < HUGE_N; k++)
        assert_int_equal(crew_task_cancel(t[k]), 0);
    for (int k = 0; k < HUGE_N; k++)
        assert_int_equal(crew_join(t[k], NULL), -ECANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    for (int k = 0; k < HUGE_N; k++)
        if (h.rc[k] != -ECANCELED)
            fail_msg("huge sleep kind %d returned %d, want -ECANCELED", k, h.rc[k]);
}

/* ---- 8. Shutdown with sleeping tasks ------------------------------------------- */

#define SHUT_TASKS 64
#define SHUT_NS (5 * CREW_MS)

struct shut {
    atomic_int registered, done, bad, odd; /* bad: rc != 0; odd: neither 0 nor -ECANCELED. */
    _Atomic int64_t min_elapsed;
};

static void *shut_body(void *arg)
{
    struct shut *s = arg;
    atomic_fetch_add(&s->registered, 1);
    struct timed t = timed_sleep(SHUT_NS);
    if (t.rc != 0)
        atomic_fetch_add(&s->bad, 1);
    if (t.rc != 0 && t.rc != -ECANCELED)
        atomic_fetch_add(&s->odd, 1);
    int64_t m = atomic_load(&s->min_elapsed);
    while (t.elapsed < m && !atomic_compare_exchange_weak(&s->min_elapsed, &m, t.elapsed))
        continue;
    atomic_fetch_add(&s->done, 1);
    return MARK_OK;
}

static void shut_init(struct shut *s)
{
    atomic_init(&s->registered, 0);
    atomic_init(&s->done, 0);
    atomic_init(&s->bad, 0);
    atomic_init(&s->odd, 0);
    atomic_init(&s->min_elapsed, INT64_MAX);
}

static void shut_check(struct shut *s, const char *how)
{
    if (atomic_load(&s->done) != SHUT_TASKS || atomic_load(&s->bad))
        fail_msg("%s: %d of %d sleepers finished, %d sleeps failed", how, atomic_load(&s->done),
                 SHUT_TASKS, atomic_load(&s->bad));
    if (atomic_load(&s->min_elapsed) < SHUT_NS)
        fail_msg("%s: a sleep of %lld ns lasted %lld ns", how, (long long)SHUT_NS,
                 (long long)atomic_load(&s->min_elapsed));
}

static void *shut_main(void *arg)
{
    for (int i = 0; i < SHUT_TASKS; i++) {
        crew_task_t *t = NULL;
        int rc = crew_spawn(shut_body, arg, NULL, &t);
        TC_CHECK_EQ(rc, 0);
        if (rc)
            break;
        TC_CHECK_EQ(crew_detach(t), 0);
    }
    return MARK_OK;
}

static void test_time_shutdown_waits_for_sleepers(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct shut s;

    /* crew_rt_destroy with detached sleepers and handles still held; the
     * held ones stay valid after destroy and are given back then. */
    shut_init(&s);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *held[SHUT_TASKS];
    int nheld = 0;
    for (int i = 0; i < SHUT_TASKS; i++) {
        crew_task_t *t = NULL;
        assert_int_equal(crew_rt_spawn(rt, shut_body, &s, NULL, &t), 0);
        if (i % 2)
            assert_int_equal(crew_detach(t), 0);
        else
            held[nheld++] = t;
    }
    /* Most are asleep now (5 ms is long next to a spawn), though nothing
     * depends on it. */
    TC_WAIT_UNTIL(atomic_load(&s.registered) == SHUT_TASKS);
    fprintf(stderr, "# %d of %d sleepers done when crew_rt_destroy started\n",
            atomic_load(&s.done), SHUT_TASKS);
    assert_int_equal(crew_rt_destroy(rt), 0);
    shut_check(&s, "crew_rt_destroy");
    /* A joined thread can still be listed in /proc for a moment: the kernel
     * wakes pthread_join (clearing the tid) before it releases the thread. */
    TC_WAIT_UNTIL(threads_named("crew-reactor") == 0);
    for (int i = 0; i < nheld; i++) {
        assert_int_equal(crew_task_state(held[i]), CREW_TASK_DONE);
        void *res = NULL;
        assert_int_equal(crew_join(held[i], &res), 0);
        assert_ptr_equal(res, MARK_OK);
    }

    /* crew_run whose main task leaves detached sleepers behind: as with
     * asyncio.run, they are cancelled (a task that had not started never
     * runs; a sleep ends with -ECANCELED unless it had already finished) and
     * waited for: every one that started has finished. */
    shut_init(&s);
    assert_ptr_equal(tc_run(shut_main, &s), MARK_OK);
    tc_assert_clean();
    assert_int_equal(atomic_load(&s.done), atomic_load(&s.registered));
    assert_int_equal(atomic_load(&s.odd), 0);
    fprintf(stderr, "# crew_run: %d of %d leftover sleepers were cancelled\n",
            atomic_load(&s.bad), SHUT_TASKS);
    /* A joined thread can still be listed in /proc for a moment: the kernel
     * wakes pthread_join (clearing the tid) before it releases the thread. */
    TC_WAIT_UNTIL(threads_named("crew-reactor") == 0);
}

/* ---- 9. Cancel versus timer fire ------------------------------------------------ */

#define RACE_ITERS 10000u
#define RACE_MAX_NS (200 * CREW_US)
#define RACE_LANES 2

struct race_totals {
    atomic_ulong never_ran, fired, cancelled, esrch, bad_rc;
};

struct race_slot {
    atomic_int started;
    int64_t delay;
    struct timed t;
};

static void *race_body(void *arg)
{
    struct race_slot *s = arg;
    atomic_store(&s->started, 1);
    s->t = timed_sleep(s->delay);
    return s->t.rc == -ECANCELED ? CREW_TASK_CANCELED : MARK_OK;
}

struct race_lane {
    crew_rt_t *rt;
    uint64_t rng;
    unsigned iters;
    struct race_totals *tot;
    atomic_ulong *progress;
    pthread_t thread;
};

/* One round: spawn a sleeper, cancel it at a random moment (before it
 * starts, while it sleeps, around its timer's fire, after it ended), join. */
static void race_round(struct race_lane *l)
{
    struct race_slot s = { .delay = (int64_t)(crew_test_rand(&l->rng) % (RACE_MAX_NS + 1)) };
    atomic_init(&s.started, 0);
    uint64_t r = crew_test_rand(&l->rng);
    crew_task_t *t = NULL;
    int rc = crew_rt_spawn(l->rt, race_body, &s, NULL, &t);
    TC_CHECK_EQ(rc, 0);
    if (rc)
        return;
    if (r % 8) {
        TC_CHECK(TC_THREAD_WAIT_UNTIL(atomic_load(&s.started)));
        int64_t until = crew_now() + (int64_t)((r >> 8) % (RACE_MAX_NS + 50 * CREW_US));
        while (crew_now() < until)
            continue;
    }
    int crc = crew_task_cancel(t);
    void *res = MARK_UNSET;
    int jrc = crew_join(t, &res);
    TC_CHECK(crc == 0 || crc == -ESRCH);
    if (crc == -ESRCH)
        atomic_fetch_add(&l->tot->esrch, 1);
    if (!atomic_load(&s.started)) {
        /* Only a cancel keeps a task from running. */
        atomic_fetch_add(&l->tot->never_ran, 1);
        TC_CHECK_EQ(crc, 0);
        TC_CHECK_EQ(jrc, -ECANCELED);
        TC_CHECK(res == NULL);
    } else if (s.t.rc == 0) {
        atomic_fetch_add(&l->tot->fired, 1);
        if (s.t.elapsed < s.delay)
            tc_record(__FILE__, __LINE__, "elapsed >= delay", s.t.elapsed, s.delay);
        TC_CHECK_EQ(jrc, 0);
        TC_CHECK(res == MARK_OK);
    } else if (s.t.rc == -ECANCELED) {
        atomic_fetch_add(&l->tot->cancelled, 1);
        TC_CHECK_EQ(crc, 0);
        TC_CHECK_EQ(jrc, -ECANCELED);
        TC_CHECK(res == CREW_TASK_CANCELED);
    } else {
        atomic_fetch_add(&l->tot->bad_rc, 1);
        tc_record(__FILE__, __LINE__, "crew_sleep returns 0 or -ECANCELED", s.t.rc, 0);
    }
}

static void *race_lane_main(void *arg)
{
    struct race_lane *l = arg;
    for (unsigned i = 0; i < l->iters; i++) {
        race_round(l);
        atomic_fetch_add(l->progress, 1);
    }
    return NULL;
}

static void test_time_cancel_vs_fire(void **state)
{
    crew_test_watchdog(120);
    tc_reset();
    struct race_totals tot = { 0 };
    struct tc_progress prog;
    tc_progress_start(&prog, "cancel vs fire", 10);
    crew_rt_t *rt = tc_rt_create();
    struct race_lane lane[RACE_LANES];
    uint64_t seed = crew_test_seed();
    unsigned iters = RACE_ITERS / crew_test_slowdown() / RACE_LANES;
    for (int i = 0; i < RACE_LANES; i++) {
        lane[i] = (struct race_lane){ .rt = rt, .rng = seed + (uint64_t)i * 0x1000193u,
                                      .iters = iters, .tot = &tot, .progress = &prog.count };
        assert_int_equal(pthread_create(&lane[i].thread, NULL, race_lane_main, &lane[i]), 0);
    }
    for (int i = 0; i < RACE_LANES; i++)
        assert_int_equal(pthread_join(lane[i].thread, NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_progress_stop(&prog);
    fprintf(stderr, "# %u rounds: %lu fired, %lu cancelled while sleeping, %lu never ran, "
            "%lu cancels found the task done, %lu bad return codes\n",
            iters * RACE_LANES, atomic_load(&tot.fired), atomic_load(&tot.cancelled),
            atomic_load(&tot.never_ran), atomic_load(&tot.esrch), atomic_load(&tot.bad_rc));
    tc_assert_clean();
    assert_int_equal(atomic_load(&tot.fired) + atomic_load(&tot.cancelled) +
                         atomic_load(&tot.never_ran),
                     iters * RACE_LANES);
}

/* ---- 10. Who fires timers ---------------------------------------------------- */

/* While a worker is awake, the workers fire due timers themselves (timer.c
 * rule 1): a task that keeps yielding keeps one awake while another sleeps
 * in short steps. */
#define POLL_SLEEPS 50

struct poll_run {
    atomic_int stop;
    int sleep_rc;
};

static void *poll_spinner(void *arg)
{
    struct poll_run *p = arg;
    while (!atomic_load(&p->stop))
        crew_yield();
    return MARK_OK;
}

static void *poll_main(void *arg)
{
    struct poll_run *p = arg;
    crew_task_t *spin;
    TC_CHECK_EQ(crew_spawn(poll_spinner, p, NULL, &spin), 0);
    for (int i = 0; i < POLL_SLEEPS && !p->sleep_rc; i++)
        p->sleep_rc = crew_sleep(200 * CREW_US);
    atomic_store(&p->stop, 1);
    void *res = NULL;
    TC_CHECK_EQ(crew_join(spin, &res), 0);
    TC_CHECK(res == MARK_OK);
    return MARK_OK;
}

static void test_time_workers_fire_timers(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    crew_rt_t *rt = tc_rt_create();
    struct poll_run p = { 0 };
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, poll_main, &p, NULL, &t), 0);
    void *res = NULL;
    assert_int_equal(crew_join(t, &res), 0);
    assert_ptr_equal(res, MARK_OK);
    tc_assert_clean();
    assert_int_equal(p.sleep_rc, 0);
    crew_metrics_t m;
    assert_int_equal(crew_rt_metrics(rt, &m), 0);
    fprintf(stderr, "# %d sleeps beside a yielding task: %llu timers fired by workers, %llu by "
            "the reactor\n", POLL_SLEEPS, (unsigned long long)m.timers_fired_workers,
            (unsigned long long)m.timers_fired_reactor);
    /* Not all: a worker preempted for over a millisecond leaves its timers
     * to the reactor's backstop, which a loaded machine (parallel tests
     * under a sanitizer) does often. Workers that never poll fire none. */
    assert_true(m.timers_fired_workers >= POLL_SLEEPS / 10);
    /* At most one per sleep: a sleep whose deadline had passed by the time
     * it looked (a slow sanitizer run) only yields, with no timer. */
    assert_true(m.timers_fired_workers + m.timers_fired_reactor <= POLL_SLEEPS);
    assert_int_equal(crew_rt_destroy(rt), 0);
}

/* Every worker runs a task that never yields: no worker polls the timers,
 * so the reactor must fire a due one as the backstop (timer.c rule 2). The
 * callback itself runs once a worker is free again. The deadline is far
 * enough that the reactor, which competes with the busy workers for the
 * CPUs, has taken the kick before it: it must arm for the backstop. */
struct hog_run {
    atomic_int running, release, called;
};

static void *hog_body(void *arg)
{
    struct hog_run *h = arg;
    atomic_fetch_add(&h->running, 1);
    int64_t give_up = mono_ns() + 30 * CREW_S;
    while (!atomic_load(&h->release) && mono_ns() < give_up)
        ;
    return MARK_OK;
}

static void *hog_callback(void *arg)
{
    struct hog_run *h = arg;
    atomic_store(&h->called, 1);
    return NULL;
}

static void test_time_reactor_backstop(void **state)
{
    crew_test_watchdog(120);
    tc_reset();
    crew_rt_t *rt = tc_rt_create();
    unsigned nw = crew_test_workers();
    struct hog_run h = { 0 };
    crew_task_t *hog[64];
    assert_true(nw <= 64);
    for (unsigned i = 0; i < nw; i++)
        assert_int_equal(crew_rt_spawn(rt, hog_body, &h, NULL, &hog[i]), 0);
    int64_t give_up = mono_ns() + 30 * CREW_S;
    while (atomic_load(&h.running) < (int)nw && mono_ns() < give_up)
        sched_yield();
    assert_int_equal(atomic_load(&h.running), nw);
    crew_metrics_t m;
    assert_int_equal(crew_rt_metrics(rt, &m), 0);
    uint64_t before = m.timers_fired_reactor;
    assert_int_equal(crew_rt_call_at(rt, crew_now() + 50 * CREW_MS, hog_callback, &h, NULL), 0);
    do {
        sched_yield();
        assert_int_equal(crew_rt_metrics(rt, &m), 0);
    } while (m.timers_fired_reactor == before && mono_ns() < give_up);
    /* Fired while every worker was still busy. */
    assert_int_equal(atomic_load(&h.release), 0);
    assert_int_equal(m.timers_fired_reactor, before + 1);
    atomic_store(&h.release, 1);
    for (unsigned i = 0; i < nw; i++)
        assert_int_equal(crew_join(hog[i], NULL), 0);
    while (!atomic_load(&h.called) && mono_ns() < give_up + 30 * CREW_S)
        sched_yield();
    assert_int_equal(atomic_load(&h.called), 1);
    assert_int_equal(crew_rt_destroy(rt), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_time_now_monotonic),
    cmocka_unit_test(test_time_sleep_task),
    cmocka_unit_test(test_time_sleep_frees_worker),
    cmocka_unit_test(test_time_sleep_thread),
    cmocka_unit_test(test_time_many_timers),
    cmocka_unit_test(test_time_equal_deadlines_fifo),
    cmocka_unit_test(test_time_cancel_sleep_thread),
    cmocka_unit_test(test_time_cancel_sleep_task),
    cmocka_unit_test(test_time_cancel_sticky_and_shield),
    cmocka_unit_test(test_time_cancel_during_shield),
    cmocka_unit_test(test_time_huge_durations),
    cmocka_unit_test(test_time_shutdown_waits_for_sleepers),
    cmocka_unit_test(test_time_cancel_vs_fire),
    cmocka_unit_test(test_time_workers_fire_timers),
    cmocka_unit_test(test_time_reactor_backstop),
};

CREW_TEST_MAIN("time", tests)
