/* Runtime API: options, creation errors, crew_run, destroy, several runtimes,
 * worker threads, metrics, error strings and the version. */
#include "task_util.h"

#include <dirent.h>
#include <limits.h>

/* ---- Small task bodies --------------------------------------------------- */

static void *return_arg(void *arg)
{
    return arg;
}

static void *wait_flag(void *arg)
{
    atomic_int *flag = arg;
    /* Not bounded here: the test thread always sets the flag in the end, and
     * its watchdog bounds the whole test. */
    while (!atomic_load(flag))
        crew_yield();
    return NULL;
}

/* ---- Options ------------------------------------------------------------- */

static void check_default_opts(const crew_rt_opts_t *o)
{
    assert_int_equal(o->size, sizeof(crew_rt_opts_t));
    assert_int_equal(o->workers, 0);
    assert_int_equal(o->stack_size, 0);
    assert_int_equal(o->flags, 0);
    for (int i = 0; i < 4; i++)
        assert_null(o->reserved[i]);
}

static void test_runtime_opts_defaults(void **state)
{
    crew_rt_opts_t a = CREW_RT_OPTS_INIT;
    crew_rt_opts_t b;
    memset(&b, 0xA5, sizeof b);
    crew_rt_opts_init(&b);
    check_default_opts(&a);
    check_default_opts(&b);
}

static void expect_create_einval(const crew_rt_opts_t *o, const char *what)
{
    crew_rt_t *rt = NULL;
    int rc = crew_rt_create(o, &rt);
    if (rc == 0)
        (void)crew_rt_destroy(rt);
    if (rc != -EINVAL)
        fail_msg("crew_rt_create with %s: %d (%s), want -EINVAL", what, rc, crew_strerror(rc));
}

static void test_runtime_create_einval(void **state)
{
    crew_test_watchdog(30);
    crew_rt_opts_t o = CREW_RT_OPTS_INIT;
    assert_int_equal(crew_rt_create(NULL, NULL), -EINVAL);
    assert_int_equal(crew_rt_create(&o, NULL), -EINVAL);

    const size_t sizes[] = { 0, 1, sizeof(crew_rt_opts_t) / 2, sizeof(crew_rt_opts_t) - 1 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        crew_rt_opts_t bad = CREW_RT_OPTS_INIT;
        bad.size = sizes[i];
        expect_create_einval(&bad, "a wrong size field");
    }
    for (int i = 0; i < 4; i++) {
        crew_rt_opts_t bad = CREW_RT_OPTS_INIT;
        bad.reserved[i] = &bad;
        expect_create_einval(&bad, "a non-zero reserved field");
    }
    const unsigned workers[] = { CREW_MAX_WORKERS + 1, UINT_MAX };
    for (size_t i = 0; i < sizeof workers / sizeof workers[0]; i++) {
        crew_rt_opts_t bad = CREW_RT_OPTS_INIT;
        bad.workers = workers[i];
        expect_create_einval(&bad, "too many workers");
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    /* SIZE_MAX and its neighbours must not wrap to 0 ("default") when
     * rounded up to pages. */
    const size_t stacks[] = { 1, page, CREW_MIN_STACK_SIZE - page, CREW_MAX_STACK_SIZE + 1,
                              CREW_MAX_STACK_SIZE + page, SIZE_MAX, SIZE_MAX - page + 2 };
    for (size_t i = 0; i < sizeof stacks / sizeof stacks[0]; i++) {
        crew_rt_opts_t bad = CREW_RT_OPTS_INIT;
        bad.workers = 1;
        bad.stack_size = stacks[i];
        expect_create_einval(&bad, "a stack size out of range");
    }
}

/* The boundaries themselves are valid. */
static void test_runtime_create_limits(void **state)
{
    crew_test_watchdog(60);
    crew_rt_opts_t o = CREW_RT_OPTS_INIT;
    crew_rt_t *rt = NULL;
    o.workers = CREW_MAX_WORKERS;
    o.stack_size = CREW_MIN_STACK_SIZE;
    assert_int_equal(crew_rt_create(&o, &rt), 0);
    assert_int_equal(crew_rt_workers(rt), CREW_MAX_WORKERS);
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, return_arg, &o, NULL, &t), 0);
    void *res = NULL;
    assert_int_equal(crew_join(t, &res), 0);
    assert_ptr_equal(res, &o);
    assert_int_equal(crew_rt_destroy(rt), 0);

    /* The largest default stack: a task gets it (virtual memory only). */
    o.workers = 1;
    o.stack_size = CREW_MAX_STACK_SIZE;
    assert_int_equal(crew_rt_create(&o, &rt), 0);
    assert_int_equal(crew_rt_spawn(rt, return_arg, &o, NULL, &t), 0);
    assert_true(crew_task_stack_size(t) >= CREW_MAX_STACK_SIZE);
    assert_int_equal(crew_join(t, &res), 0);
    assert_ptr_equal(res, &o);
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(crew_rt_workers(NULL), 0);
}

/* $CREW_WORKERS: used only when opts.workers is 0; invalid values fail. */
static void test_runtime_workers_env(void **state)
{
    crew_test_watchdog(30);
    /* No runtime thread is alive between tests, so setenv races no getenv. */
    const char *bad[] = { "abc", "3x", "-1", "257", "99999999999999999999", " " };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(setenv("CREW_WORKERS", bad[i], 1), 0);
        crew_rt_opts_t o = CREW_RT_OPTS_INIT;
        crew_rt_t *rt = NULL;
        int rc = crew_rt_create(&o, &rt);
        if (rc == 0)
            (void)crew_rt_destroy(rt);
        if (rc != -EINVAL) {
            unsetenv("CREW_WORKERS");
            fail_msg("CREW_WORKERS='%s': crew_rt_create gave %d, want -EINVAL", bad[i], rc);
        }
    }

    assert_int_equal(setenv("CREW_WORKERS", "3", 1), 0);
    crew_rt_opts_t o = CREW_RT_OPTS_INIT;
    crew_rt_t *rt = NULL;
    int rc = crew_rt_create(&o, &rt);
    unsigned got = rc == 0 ? crew_rt_workers(rt) : 0;
    if (rc == 0)
        assert_int_equal(crew_rt_destroy(rt), 0);

    /* An explicit count does not consult the variable, valid or not. */
    assert_int_equal(setenv("CREW_WORKERS", "abc", 1), 0);
    o.workers = 2;
    int rc2 = crew_rt_create(&o, &rt);
    unsigned got2 = rc2 == 0 ? crew_rt_workers(rt) : 0;
    if (rc2 == 0)
        assert_int_equal(crew_rt_destroy(rt), 0);
    unsetenv("CREW_WORKERS");
    assert_int_equal(rc, 0);
    assert_int_equal(got, 3);
    assert_int_equal(rc2, 0);
    assert_int_equal(got2, 2);
}

/* Child mode "affinity:N": restrict this process to its first N allowed CPUs,
 * create a runtime with workers 0 and exit with the worker count. */
static int child_affinity(unsigned n)
{
    cpu_set_t cur, set;
    if (sched_getaffinity(0, sizeof cur, &cur))
        return 101;
    CPU_ZERO(&set);
    unsigned have = 0;
    for (int c = 0; c < CPU_SETSIZE && have < n; c++)
        if (CPU_ISSET(c, &cur)) {
            CPU_SET(c, &set);
            have++;
        }
    if (have < n || sched_setaffinity(0, sizeof set, &set))
        return 102;
    unsetenv("CREW_WORKERS");
    crew_rt_opts_t o = CREW_RT_OPTS_INIT;
    crew_rt_t *rt = NULL;
    int rc = crew_rt_create(&o, &rt);
    if (rc) {
        fprintf(stderr, "crew_rt_create: %s\n", crew_strerror(rc));
        return 103;
    }
    unsigned w = crew_rt_workers(rt);
    if (crew_rt_destroy(rt))
        return 104;
    fprintf(stderr, "workers %u with %u CPU(s) allowed\n", w, n);
    return (int)w;
}

static int child_main(const char *mode)
{
    unsigned n;
    if (sscanf(mode, "affinity:%u", &n) == 1)
        return child_affinity(n);
    fprintf(stderr, "unknown child mode %s\n", mode);
    return 100;
}

TC_CHILD_DISPATCH(child_main)

static void test_runtime_workers_affinity(void **state)
{
    crew_test_watchdog(30);
    cpu_set_t cur;
    assert_int_equal(sched_getaffinity(0, sizeof cur, &cur), 0);
    unsigned ncpu = (unsigned)CPU_COUNT(&cur);
    char err[4096];
    for (unsigned n = 1; n <= 2 && n <= ncpu; n++) {
        char mode[32];
        snprintf(mode, sizeof mode, "affinity:%u", n);
        int st = tc_run_child(mode, NULL, err, sizeof err);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), n);
    }
}

/* ---- crew_run ------------------------------------------------------------ */

struct run_probe {
    crew_rt_t *rt;
    unsigned workers;
    int index;
    bool has_self;
    int rc_run, rc_destroy;
    atomic_int ran;
};

static void *run_main(void *arg)
{
    struct run_probe *p = arg;
    p->rt = crew_rt_current();
    p->workers = crew_rt_workers(p->rt);
    p->index = crew_worker_index();
    p->has_self = crew_self() != NULL;
    return (char *)arg + 1;
}

static void *count_run(void *arg)
{
    struct run_probe *p = arg;
    atomic_fetch_add(&p->ran, 1);
    return NULL;
}

static void test_runtime_run_result(void **state)
{
    crew_test_watchdog(30);
    struct run_probe p = { 0 };
    void *res = tc_run(run_main, &p);
    assert_ptr_equal(res, (char *)&p + 1);
    assert_non_null(p.rt);
    assert_int_equal(p.workers, crew_test_workers());
    assert_true(p.index >= 0 && p.index < (int)crew_test_workers());
    assert_true(p.has_self);

    /* NULL options: one worker per CPU of the affinity mask. */
    cpu_set_t cur;
    assert_int_equal(sched_getaffinity(0, sizeof cur, &cur), 0);
    memset(&p, 0, sizeof p);
    assert_int_equal(crew_run(run_main, &p, NULL, NULL), 0);
    assert_int_equal(p.workers, (unsigned)CPU_COUNT(&cur));

    assert_int_equal(crew_run(NULL, NULL, NULL, &res), -EINVAL);
    crew_rt_opts_t bad = CREW_RT_OPTS_INIT;
    bad.size = 0;
    memset(&p, 0, sizeof p);
    assert_int_equal(crew_run(count_run, &p, &bad, NULL), -EINVAL);
    assert_int_equal(atomic_load(&p.ran), 0);
}

/* From inside a task, crew_run and destroying the task's own runtime would
 * wait for themselves. */
static void *nested_run(void *arg)
{
    struct run_probe *p = arg;
    p->rc_run = crew_run(count_run, p, NULL, NULL);
    p->rc_destroy = crew_rt_destroy(crew_rt_current());
    return NULL;
}

static void test_runtime_edeadlk_inside_task(void **state)
{
    crew_test_watchdog(30);
    struct run_probe p = { 0 };
    tc_run(nested_run, &p);
    assert_int_equal(p.rc_run, -EDEADLK);
    assert_int_equal(p.rc_destroy, -EDEADLK);
    assert_int_equal(atomic_load(&p.ran), 0);
    assert_int_equal(crew_rt_destroy(NULL), -EINVAL);
}

/* ---- Destroy ------------------------------------------------------------- */

struct drain {
    atomic_long spawned;
    atomic_long done;
    atomic_int saw_shutdown;
    unsigned long cap;
};

static void *drain_leaf(void *arg)
{
    struct drain *d = arg;
    crew_yield();
    atomic_fetch_add(&d->done, 1);
    return NULL;
}

/* A detached task that keeps spawning detached leaves until the runtime
 * refuses with -ESHUTDOWN: it is certainly alive when destroy starts. */
static void *drain_spawner(void *arg)
{
    struct drain *d = arg;
    for (unsigned long i = 0; i < d->cap; i++) {
        crew_task_t *t = NULL;
        int rc = crew_spawn(drain_leaf, d, NULL, &t);
        if (rc == -ESHUTDOWN) {
            atomic_fetch_add(&d->saw_shutdown, 1);
            break;
        }
        TC_CHECK_EQ(rc, 0);
        if (rc)
            break;
        atomic_fetch_add(&d->spawned, 1);
        TC_CHECK_EQ(crew_detach(t), 0);
        crew_yield();
    }
    /* Finish a few switches after shutdown began: destroy must wait. */
    for (int i = 0; i < 100; i++)
        crew_yield();
    atomic_fetch_add(&d->done, 1);
    return NULL;
}

static void test_runtime_destroy_waits_detached(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct drain d = { .cap = 1000000 };
    crew_rt_t *rt = tc_rt_create();
    const int nspawners = 8;
    for (int i = 0; i < nspawners; i++) {
        crew_task_t *t = NULL;
        assert_int_equal(crew_rt_spawn(rt, drain_spawner, &d, NULL, &t), 0);
        assert_int_equal(crew_detach(t), 0);
    }
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    assert_int_equal(atomic_load(&d.saw_shutdown), nspawners);
    assert_int_equal(atomic_load(&d.done), atomic_load(&d.spawned) + nspawners);
}

struct destroyer {
    crew_rt_t *rt;
    int rc;
};

static void *destroy_thread(void *arg)
{
    struct destroyer *d = arg;
    d->rc = crew_rt_destroy(d->rt);
    return NULL;
}

/* A second destroy while the first waits for a task gets -EBUSY; a plain
 * thread's crew_rt_spawn gets -ESHUTDOWN once destroy started. */
static void test_runtime_destroy_busy(void **state)
{
    crew_test_watchdog(60);
    atomic_int flag = 0;
    struct destroyer d = { .rt = tc_rt_create() };
    crew_task_t *gate = NULL;
    assert_int_equal(crew_rt_spawn(d.rt, wait_flag, &flag, NULL, &gate), 0);
    assert_int_equal(crew_detach(gate), 0);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, destroy_thread, &d), 0);
    int rc = 0;
    for (unsigned long i = 0; i < 100000000ul; i++) {
        crew_task_t *t = NULL;
        rc = crew_rt_spawn(d.rt, return_arg, NULL, NULL, &t);
        if (rc)
            break;
        (void)crew_detach(t);
        sched_yield();
    }
    int rc_second = rc == -ESHUTDOWN ? crew_rt_destroy(d.rt) : 0;
    atomic_store(&flag, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(rc, -ESHUTDOWN);
    assert_int_equal(rc_second, -EBUSY);
    assert_int_equal(d.rc, 0);
}

/* ---- Several runtimes ---------------------------------------------------- */

struct two_rt {
    crew_rt_t *a, *b;
    atomic_int wrong_rt;
    atomic_int cross_ok;
};

static void *check_in_b(void *arg)
{
    struct two_rt *s = arg;
    if (crew_rt_current() != s->b)
        atomic_fetch_add(&s->wrong_rt, 1);
    return s->b;
}

/* Runs in A: a task of B spawned and joined from here runs in B. */
static void *cross_spawner(void *arg)
{
    struct two_rt *s = arg;
    if (crew_rt_current() != s->a)
        atomic_fetch_add(&s->wrong_rt, 1);
    crew_task_t *t = NULL;
    int rc = crew_rt_spawn(s->b, check_in_b, s, NULL, &t);
    TC_CHECK_EQ(rc, 0);
    void *res = NULL;
    if (rc == 0)
        TC_CHECK_EQ(crew_join(t, &res), 0);
    if (res == s->b && crew_rt_current() == s->a)
        atomic_fetch_add(&s->cross_ok, 1);
    return NULL;
}

static void test_runtime_two_at_once(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct two_rt s = { .a = tc_rt_create(), .b = tc_rt_create() };
    assert_ptr_not_equal(s.a, s.b);
    enum { N = 64 };
    crew_task_t *ta[N], *tb[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(crew_rt_spawn(s.a, cross_spawner, &s, NULL, &ta[i]), 0);
        assert_int_equal(crew_rt_spawn(s.b, check_in_b, &s, NULL, &tb[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(crew_join(ta[i], NULL), 0);
        void *res = NULL;
        assert_int_equal(crew_join(tb[i], &res), 0);
        assert_ptr_equal(res, s.b);
    }
    assert_int_equal(crew_rt_destroy(s.a), 0);
    assert_int_equal(crew_rt_destroy(s.b), 0);
    tc_assert_clean();
    assert_int_equal(atomic_load(&s.wrong_rt), 0);
    assert_int_equal(atomic_load(&s.cross_ok), N);
}

/* ---- Worker threads ------------------------------------------------------- */

/* Count this process's threads named crew-w<i>, i < n, into seen[i]; returns
 * the number of crew-w threads with an index out of range. */
static unsigned scan_worker_names(unsigned n, unsigned *seen)
{
    unsigned stray = 0;
    memset(seen, 0, n * sizeof *seen);
    DIR *dir = opendir("/proc/self/task");
    assert_non_null(dir);
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue; /* The thread exited meanwhile. */
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
        unsigned idx;
        char end;
        if (sscanf(comm, "crew-w%u%c", &idx, &end) == 2 && end == '\n') {
            if (idx < n)
                seen[idx]++;
            else
                stray++;
        }
    }
    closedir(dir);
    return stray;
}

static void test_runtime_thread_names(void **state)
{
    crew_test_watchdog(30);
    unsigned n = crew_test_workers();
    unsigned seen[64];
    assert_true(n <= 64);
    crew_rt_t *rt = tc_rt_create();
    /* A worker may name itself once it runs: poll, bounded. */
    bool all = false;
    unsigned stray = 0;
    for (int tries = 0; tries < 100000 && !all; tries++) {
        stray = scan_worker_names(n, seen);
        all = true;
        for (unsigned i = 0; i < n; i++)
            all = all && seen[i] == 1;
        if (!all)
            sched_yield();
    }
    assert_int_equal(crew_rt_destroy(rt), 0);
    for (unsigned i = 0; i < n; i++)
        if (seen[i] != 1)
            fail_msg("%u thread(s) named crew-w%u, want 1", seen[i], i);
    assert_int_equal(stray, 0);
    /* Destroy joined them all. A joined thread can stay listed for a moment
     * (the kernel wakes the joiner before it reaps the thread): poll. */
    bool gone = false;
    for (int tries = 0; tries < 100000 && !gone; tries++) {
        gone = scan_worker_names(n, seen) == 0;
        for (unsigned i = 0; i < n; i++)
            gone = gone && seen[i] == 0;
        if (!gone)
            sched_yield();
    }
    assert_true(gone);
}

/* ---- Metrics ------------------------------------------------------------- */

enum { METRIC_CHILDREN = 200 };

static void *metrics_parent(void *arg)
{
    crew_task_t *t[METRIC_CHILDREN];
    int n = 0;
    for (int i = 0; i < METRIC_CHILDREN; i++) {
        int rc = crew_spawn(return_arg, arg, NULL, &t[n]);
        TC_CHECK_EQ(rc, 0);
        if (rc == 0)
            n++;
        crew_yield();
    }
    for (int i = 0; i < n; i++)
        TC_CHECK_EQ(crew_join(t[i], NULL), 0);
    return NULL;
}

static void test_runtime_metrics(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    crew_rt_t *rt = tc_rt_create();
    unsigned n = crew_rt_workers(rt);
    crew_metrics_t m;
    crew_worker_metrics_t wm;
    assert_int_equal(crew_rt_metrics(NULL, &m), -EINVAL);
    assert_int_equal(crew_rt_metrics(rt, NULL), -EINVAL);
    assert_int_equal(crew_rt_worker_metrics(NULL, 0, &wm), -EINVAL);
    assert_int_equal(crew_rt_worker_metrics(rt, 0, NULL), -EINVAL);
    assert_int_equal(crew_rt_worker_metrics(rt, n, &wm), -EINVAL);
    assert_int_equal(crew_rt_worker_metrics(rt, UINT_MAX, &wm), -EINVAL);
    assert_int_equal(crew_rt_metrics_print(NULL, stderr), -EINVAL);
    assert_int_equal(crew_rt_metrics_print(rt, NULL), -EINVAL);

    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, metrics_parent, NULL, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    tc_assert_clean();

    /* The live count drops once the finished tasks are retired, which may
     * lag the join a little. */
    bool drained = false;
    for (int tries = 0; tries < 1000000 && !drained; tries++) {
        assert_int_equal(crew_rt_metrics(rt, &m), 0);
        drained = m.tasks_live == 0;
        if (!drained)
            sched_yield();
    }
    assert_true(drained);
    assert_int_equal(m.workers, n);
    assert_true(m.guard_mode == CREW_GUARD_MADVISE || m.guard_mode == CREW_GUARD_MPROTECT ||
                m.guard_mode == CREW_GUARD_CANARY);
    if (m.guard_mode == CREW_GUARD_MPROTECT)
        assert_true(m.guard_pages_mprotect > 0);
    assert_true(m.stacks_mapped >= 1);
    assert_true(m.stack_bytes_mapped >= m.stacks_mapped * CREW_DEFAULT_STACK_SIZE);

    uint64_t polls = 0, spawns = 0, global_pops = 0;
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(crew_rt_worker_metrics(rt, i, &wm), 0);
        polls += wm.polls;
        spawns += wm.spawns;
        global_pops += wm.global_pops;
    }
    /* Every task started at least once; the parent also resumed after its
     * yields and joins. */
    assert_true(polls >= METRIC_CHILDREN + 1);
    assert_true(spawns >= METRIC_CHILDREN);
    /* The parent came from outside, through the injection queue. */
    assert_true(global_pops >= 1);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(crew_rt_metrics_print(rt, f), 0);
    assert_int_equal(fclose(f), 0);
    assert_true(len > 0);
    free(text);

    f = fopen("/dev/full", "we");
    assert_non_null(f);
    setvbuf(f, NULL, _IONBF, 0);
    int rc = crew_rt_metrics_print(rt, f);
    fclose(f);
    assert_int_equal(rc, -EIO);
    assert_int_equal(crew_rt_destroy(rt), 0);
}

/* ---- Errors and version -------------------------------------------------- */

static void test_runtime_strerror(void **state)
{
    const int known[] = { 0, -EINVAL, -ESHUTDOWN, -ENOMEM, -EDEADLK, -EBUSY, -EPERM };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *s = crew_strerror(known[i]);
        assert_non_null(s);
        assert_true(s[0] != '\0');
        if (!strcmp(s, "unknown error"))
            fail_msg("crew_strerror(%d) is \"unknown error\"", known[i]);
    }
    assert_string_not_equal(crew_strerror(-EINVAL), crew_strerror(-ESHUTDOWN));
    assert_string_not_equal(crew_strerror(0), crew_strerror(-EINVAL));
    const int unknown[] = { -(CREW_ERRNO_BASE + 999), INT_MIN, 1 << 20, -1000000 };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_string_equal(crew_strerror(unknown[i]), "unknown error");
}

static void test_runtime_version(void **state)
{
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", CREW_VERSION_MAJOR, CREW_VERSION_MINOR,
             CREW_VERSION_PATCH);
    assert_string_equal(crew_version_string(), want);
    assert_int_equal(crew_version_hex(), CREW_VERSION_HEX);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_runtime_opts_defaults),
    cmocka_unit_test(test_runtime_create_einval),
    cmocka_unit_test(test_runtime_create_limits),
    cmocka_unit_test(test_runtime_workers_env),
    cmocka_unit_test(test_runtime_workers_affinity),
    cmocka_unit_test(test_runtime_run_result),
    cmocka_unit_test(test_runtime_edeadlk_inside_task),
    cmocka_unit_test(test_runtime_destroy_waits_detached),
    cmocka_unit_test(test_runtime_destroy_busy),
    cmocka_unit_test(test_runtime_two_at_once),
    cmocka_unit_test(test_runtime_thread_names),
    cmocka_unit_test(test_runtime_metrics),
    cmocka_unit_test(test_runtime_strerror),
    cmocka_unit_test(test_runtime_version),
};

CREW_TEST_MAIN("runtime", tests)
