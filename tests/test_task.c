/* Task API: spawn (from tasks, plain threads and other runtimes), options,
 * names, ids, states, join, detach, yield, and spawns refused at shutdown. */
#include "task_util.h"

#include <limits.h>

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t round_page(size_t n)
{
    return (n + page_size() - 1) & ~(page_size() - 1);
}

static void *return_arg(void *arg)
{
    return arg;
}

static void *add_one(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

static void *wait_flag(void *arg)
{
    atomic_int *flag = arg;
    /* Unbounded: the test sets the flag in the end; the watchdog bounds it. */
    while (!atomic_load(flag))
        crew_yield();
    return (void *)(uintptr_t)0xF1A6;
}

/* ---- Spawn and join ------------------------------------------------------ */

static void *spawn_join_main(void *arg)
{
    uintptr_t sum = 0;
    for (uintptr_t i = 0; i < 100; i++) {
        crew_task_t *t = NULL;
        int rc = crew_spawn(add_one, (void *)i, i % 2 ? NULL : &(crew_spawn_opts_t)CREW_SPAWN_OPTS_INIT,
                            &t);
        TC_CHECK_EQ(rc, 0);
        if (rc)
            continue;
        void *res = NULL;
        TC_CHECK_EQ(crew_join(t, &res), 0);
        sum += (uintptr_t)res;
    }
    /* Joining with a NULL result pointer is allowed. */
    crew_task_t *t = NULL;
    TC_CHECK_EQ(crew_spawn(add_one, NULL, NULL, &t), 0);
    TC_CHECK_EQ(crew_join(t, NULL), 0);
    return (void *)sum;
}

static void test_task_spawn_join(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    void *res = tc_run(spawn_join_main, NULL);
    tc_assert_clean();
    assert_int_equal((uintptr_t)res, 100 * 101 / 2);
}

/* ---- Errors -------------------------------------------------------------- */

static void test_task_outside_task(void **state)
{
    crew_test_watchdog(30);
    crew_task_t *t = NULL;
    assert_int_equal(crew_spawn(return_arg, NULL, NULL, &t), -EPERM);
    assert_int_equal(crew_yield(), -EPERM);
    assert_null(crew_self());
    assert_null(crew_rt_current());
    assert_int_equal(crew_worker_index(), -1);
    assert_int_equal(crew_join(NULL, NULL), -EINVAL);
    assert_int_equal(crew_detach(NULL), -EINVAL);
    assert_null(crew_task_name(NULL));
    assert_int_equal(crew_task_id(NULL), 0);
    assert_int_equal(crew_task_state(NULL), 0);
    assert_int_equal(crew_task_stack_size(NULL), 0);
    assert_int_equal(crew_rt_spawn(NULL, return_arg, NULL, NULL, &t), -EINVAL);

    /* Still true while a runtime lives: this thread is not one of its tasks. */
    crew_rt_t *rt = tc_rt_create();
    assert_int_equal(crew_spawn(return_arg, NULL, NULL, &t), -EPERM);
    assert_int_equal(crew_yield(), -EPERM);
    assert_null(crew_self());
    assert_null(crew_rt_current());
    assert_int_equal(crew_worker_index(), -1);
    assert_int_equal(crew_rt_spawn(rt, NULL, NULL, NULL, &t), -EINVAL);
    assert_int_equal(crew_rt_spawn(rt, return_arg, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(crew_rt_destroy(rt), 0);
}

/* Invalid spawn options, each paired with a description. */
struct bad_opts {
    crew_spawn_opts_t o;
    const char *what;
};

static int make_bad_opts(struct bad_opts *b)
{
    int n = 0;
    const size_t sizes[] = { 0, 1, sizeof(crew_spawn_opts_t) / 2, sizeof(crew_spawn_opts_t) - 1 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        b[n].o = (crew_spawn_opts_t)CREW_SPAWN_OPTS_INIT;
        b[n].o.size = sizes[i];
        b[n++].what = "wrong size field";
    }
    for (int i = 0; i < 4; i++) {
        b[n].o = (crew_spawn_opts_t)CREW_SPAWN_OPTS_INIT;
        b[n].o.reserved[i] = b;
        b[n++].what = "reserved not zero";
    }
    const size_t stacks[] = { 1, page_size(), CREW_MIN_STACK_SIZE - page_size(),
                              CREW_MAX_STACK_SIZE + 1, SIZE_MAX, SIZE_MAX - page_size() + 2 };
    for (size_t i = 0; i < sizeof stacks / sizeof stacks[0]; i++) {
        b[n].o = (crew_spawn_opts_t)CREW_SPAWN_OPTS_INIT;
        b[n].o.stack_size = stacks[i];
        b[n++].what = "stack size out of range";
    }
    return n;
}

struct einval_probe {
    int rc_null_fn, rc_null_out;
    int rc_bad[32];
    int rc_rt_bad[32];
    int nbad;
};

static void *einval_main(void *arg)
{
    struct einval_probe *p = arg;
    struct bad_opts bad[32];
    crew_task_t *t = NULL;
    p->nbad = make_bad_opts(bad);
    p->rc_null_fn = crew_spawn(NULL, NULL, NULL, &t);
    p->rc_null_out = crew_spawn(return_arg, NULL, NULL, NULL);
    for (int i = 0; i < p->nbad; i++) {
        p->rc_bad[i] = crew_spawn(return_arg, NULL, &bad[i].o, &t);
        if (p->rc_bad[i] == 0)
            TC_CHECK_EQ(crew_join(t, NULL), 0);
        p->rc_rt_bad[i] = crew_rt_spawn(crew_rt_current(), return_arg, NULL, &bad[i].o, &t);
        if (p->rc_rt_bad[i] == 0)
            TC_CHECK_EQ(crew_join(t, NULL), 0);
    }
    return NULL;
}

static void test_task_spawn_einval(void **state)
{
    crew_test_watchdog(30);
    struct einval_probe p = { 0 };
    tc_run(einval_main, &p);
    assert_int_equal(p.rc_null_fn, -EINVAL);
    assert_int_equal(p.rc_null_out, -EINVAL);
    struct bad_opts bad[32];
    assert_int_equal(make_bad_opts(bad), p.nbad);
    for (int i = 0; i < p.nbad; i++) {
        if (p.rc_bad[i] != -EINVAL || p.rc_rt_bad[i] != -EINVAL)
            fail_msg("spawn opts #%d (%s, size %zu, stack %zu): crew_spawn %d, crew_rt_spawn %d",
                     i, bad[i].what, bad[i].o.size, bad[i].o.stack_size, p.rc_bad[i],
                     p.rc_rt_bad[i]);
    }
    /* From a plain thread too. */
    crew_rt_t *rt = tc_rt_create();
    for (int i = 0; i < p.nbad; i++) {
        crew_task_t *t = NULL;
        int rc = crew_rt_spawn(rt, return_arg, NULL, &bad[i].o, &t);
        if (rc == 0)
            assert_int_equal(crew_join(t, NULL), 0);
        if (rc != -EINVAL)
            fail_msg("crew_rt_spawn from a thread with opts #%d (%s): %d", i, bad[i].what, rc);
    }
    assert_int_equal(crew_rt_destroy(rt), 0);
}

/* ---- Options: name and stack size ---------------------------------------- */

struct seen_self {
    char name[64];
    uint64_t id;
    size_t stack;
    crew_task_state_t state;
};

static void *record_self(void *arg)
{
    struct seen_self *s = arg;
    crew_task_t *me = crew_self();
    const char *name = crew_task_name(me);
    snprintf(s->name, sizeof s->name, "%s", name ? name : "(null)");
    s->id = crew_task_id(me);
    s->stack = crew_task_stack_size(me);
    s->state = crew_task_state(me);
    return NULL;
}

/* Uses most of a 256 KiB stack: the usable size is real. */
static __attribute__((noinline)) void use_stack(size_t bytes)
{
    volatile char big[200 * 1024];
    if (bytes > sizeof big)
        bytes = sizeof big;
    for (size_t i = 0; i < bytes; i += 1024)
        big[i] = (char)i;
    big[bytes - 1] = 1;
}

static void *big_stack_task(void *arg)
{
    use_stack(200 * 1024);
    return arg;
}

struct opts_probe {
    struct seen_self self[8];
    char handle_name[8][64];
    size_t handle_stack[8];
    uint64_t handle_id[8];
    int rc[8];
    int rc_big;
};

static void *opts_main(void *arg)
{
    struct opts_probe *p = arg;
    char buf[64];
    const char *long_name = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF"; /* 42 bytes */
    const size_t stacks[8] = { 0, CREW_MIN_STACK_SIZE, CREW_MIN_STACK_SIZE + 1, 100000,
                               128 * 1024, 0, 0, 3 * 1024 * 1024 + 5 };
    crew_task_t *t[8] = { 0 };
    for (int i = 0; i < 8; i++) {
        crew_spawn_opts_t o = CREW_SPAWN_OPTS_INIT;
        o.stack_size = stacks[i];
        if (i == 0) {
            snprintf(buf, sizeof buf, "alpha");
            o.name = buf;
        } else if (i == 5) {
            o.name = long_name;
        } else if (i == 6) {
            o.name = "";
        } else if (i != 7) {
            o.name = NULL;
        } else {
            o.name = "seven";
        }
        p->rc[i] = crew_spawn(record_self, &p->self[i], &o, &t[i]);
        if (i == 0)
            /* The name was copied: changing the caller's buffer is harmless. */
            snprintf(buf, sizeof buf, "garbage");
    }
    for (int i = 0; i < 8; i++) {
        if (p->rc[i])
            continue;
        const char *name = crew_task_name(t[i]);
        snprintf(p->handle_name[i], sizeof p->handle_name[i], "%s", name ? name : "(null)");
        p->handle_stack[i] = crew_task_stack_size(t[i]);
        p->handle_id[i] = crew_task_id(t[i]);
        TC_CHECK_EQ(crew_join(t[i], NULL), 0);
    }
    crew_spawn_opts_t o = CREW_SPAWN_OPTS_INIT;
    o.stack_size = 256 * 1024;
    crew_task_t *big = NULL;
    p->rc_big = crew_spawn(big_stack_task, p, &o, &big);
    if (p->rc_big == 0) {
        void *res = NULL;
        TC_CHECK_EQ(crew_join(big, &res), 0);
        TC_CHECK(res == p);
    }
    return NULL;
}

static void check_stack(size_t got, size_t requested)
{
    /* The doc: usable bytes, rounded up to whole pages. crew may round up
     * further (to its size classes), never below the request. */
    size_t want = round_page(requested);
    if (got < want || got > 2 * want)
        fail_msg("stack size %zu for a request of %zu (want >= %zu)", got, requested, want);
}

static void test_task_opts_name_stack(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    struct opts_probe p;
    memset(&p, 0, sizeof p);
    tc_run(opts_main, &p);
    tc_assert_clean();
    for (int i = 0; i < 8; i++) {
        assert_int_equal(p.rc[i], 0);
        assert_string_equal(p.self[i].name, p.handle_name[i]);
        assert_int_equal(p.self[i].id, p.handle_id[i]);
        assert_int_equal(p.self[i].stack, p.handle_stack[i]);
        assert_int_equal(p.self[i].state, CREW_TASK_RUNNING);
    }
    assert_string_equal(p.handle_name[0], "alpha");
    assert_string_equal(p.handle_name[1], "");
    assert_string_equal(p.handle_name[6], "");
    assert_string_equal(p.handle_name[7], "seven");
    assert_int_equal(strlen(p.handle_name[5]), CREW_TASK_NAME_MAX - 1);
    assert_memory_equal(p.handle_name[5], "0123456789abcdefghijklmnopqrstuvwxyzABCDEF",
                        CREW_TASK_NAME_MAX - 1);
    check_stack(p.handle_stack[0], CREW_DEFAULT_STACK_SIZE);
    check_stack(p.handle_stack[1], CREW_MIN_STACK_SIZE);
    check_stack(p.handle_stack[2], CREW_MIN_STACK_SIZE + 1);
    check_stack(p.handle_stack[3], 100000);
    check_stack(p.handle_stack[4], 128 * 1024);
    check_stack(p.handle_stack[7], 3 * 1024 * 1024 + 5);
    assert_int_equal(p.rc_big, 0);
}

/* The runtime's stack_size option is the default of its tasks. */
static void test_task_runtime_default_stack(void **state)
{
    crew_test_watchdog(30);
    crew_rt_opts_t o = crew_test_rt_opts();
    o.stack_size = 128 * 1024 + 1;
    crew_rt_t *rt = NULL;
    assert_int_equal(crew_rt_create(&o, &rt), 0);
    struct seen_self s = { 0 };
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, record_self, &s, NULL, &t), 0);
    size_t handle_stack = crew_task_stack_size(t);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(s.stack, handle_stack);
    check_stack(s.stack, 128 * 1024 + 1);
}

/* ---- Ids ------------------------------------------------------------------ */

enum { ID_TASKS = 2000 };

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void *id_task(void *arg)
{
    return (void *)(uintptr_t)crew_task_id(crew_self());
}

struct id_probe {
    uint64_t ids[ID_TASKS];
    int n, target;
};

/* Spawns batches of 100 and joins them until target ids are collected. */
static void *id_main(void *arg)
{
    struct id_probe *p = arg;
    crew_task_t *t[100];
    while (p->n + 100 <= p->target) {
        int k = 0;
        for (; k < 100; k++)
            if (crew_spawn(id_task, NULL, NULL, &t[k]))
                break;
        TC_CHECK_EQ(k, 100);
        for (int i = 0; i < k; i++) {
            uint64_t id = crew_task_id(t[i]);
            void *res = NULL;
            TC_CHECK_EQ(crew_join(t[i], &res), 0);
            TC_CHECK_EQ((uint64_t)(uintptr_t)res, id);
            p->ids[p->n++] = id;
        }
        if (k != 100)
            break;
    }
    return NULL;
}

/* Ids are unique in the process, across runtimes and spawn paths, never 0. */
static void test_task_ids_unique(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    static struct id_probe p;
    memset(&p, 0, sizeof p);
    crew_rt_t *rt[2] = { tc_rt_create(), tc_rt_create() };
    for (int r = 0; r < 2; r++) {
        crew_task_t *t = NULL;
        p.target = (r + 1) * ID_TASKS / 3;
        assert_int_equal(crew_rt_spawn(rt[r], id_main, &p, NULL, &t), 0);
        uint64_t id = crew_task_id(t);
        assert_int_equal(crew_join(t, NULL), 0);
        p.ids[p.n++] = id;
    }
    while (p.n < ID_TASKS) {
        crew_task_t *t = NULL;
        assert_int_equal(crew_rt_spawn(rt[p.n % 2], id_task, NULL, NULL, &t), 0);
        uint64_t id = crew_task_id(t);
        void *res = NULL;
        assert_int_equal(crew_join(t, &res), 0);
        assert_int_equal((uintptr_t)res, id);
        p.ids[p.n++] = id;
    }
    assert_int_equal(crew_rt_destroy(rt[0]), 0);
    assert_int_equal(crew_rt_destroy(rt[1]), 0);
    tc_assert_clean();
    qsort(p.ids, (size_t)p.n, sizeof p.ids[0], cmp_u64);
    assert_true(p.ids[0] >= 1);
    for (int i = 1; i < p.n; i++)
        if (p.ids[i] == p.ids[i - 1])
            fail_msg("task id %llu handed out twice", (unsigned long long)p.ids[i]);
}

/* ---- States, join of finished tasks, self-join ----------------------------- */

struct state_probe {
    crew_task_state_t self_state;
    crew_task_state_t after_spawn;
    crew_task_state_t after_finish;
    bool finished;
    void *result;
    int rc_join, rc_self_join, rc_self_join_null;
    bool only_one_worker;
};

static void *state_main(void *arg)
{
    struct state_probe *p = arg;
    p->self_state = crew_task_state(crew_self());
    crew_task_t *t = NULL;
    int rc = crew_spawn(add_one, (void *)(uintptr_t)41, NULL, &t);
    TC_CHECK_EQ(rc, 0);
    if (rc)
        return NULL;
    /* With one worker the child cannot start before this task yields. */
    p->after_spawn = crew_task_state(t);
    p->finished = TC_SPIN_UNTIL(crew_task_state(t) == CREW_TASK_DONE, 10000000);
    p->after_finish = crew_task_state(t);
    p->rc_join = crew_join(t, &p->result);
    p->rc_self_join = crew_join(crew_self(), &p->result);
    p->rc_self_join_null = crew_join(crew_self(), NULL);
    return NULL;
}

static void test_task_states(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    struct state_probe p = { 0 };
    tc_run(state_main, &p);
    tc_assert_clean();
    assert_int_equal(p.self_state, CREW_TASK_RUNNING);
    if (crew_test_workers() == 1)
        assert_int_equal(p.after_spawn, CREW_TASK_RUNNABLE);
    else
        assert_true(p.after_spawn == CREW_TASK_RUNNABLE || p.after_spawn == CREW_TASK_RUNNING ||
                    p.after_spawn == CREW_TASK_DONE);
    assert_true(p.finished);
    assert_int_equal(p.after_finish, CREW_TASK_DONE);
    assert_int_equal(p.rc_join, 0);
    assert_int_equal((uintptr_t)p.result, 42);
    assert_int_equal(p.rc_self_join, -EDEADLK);
    assert_int_equal(p.rc_self_join_null, -EDEADLK);
}

/* ---- Two joiners ------------------------------------------------------------ */

struct busy_probe {
    atomic_int flag;
    crew_task_t *target;
    void *first_result;
    int rc_first;
    int rc_second, rc_detach;
    bool first_waiting;
    crew_task_state_t target_state, joiner_state;
};

static void *first_joiner(void *arg)
{
    struct busy_probe *p = arg;
    p->rc_first = crew_join(p->target, &p->first_result);
    return NULL;
}

static void *busy_main(void *arg)
{
    struct busy_probe *p = arg;
    crew_task_t *j = NULL;
    TC_CHECK_EQ(crew_spawn(wait_flag, &p->flag, NULL, &p->target), 0);
    TC_CHECK_EQ(crew_spawn(first_joiner, p, NULL, &j), 0);
    if (!p->target || !j)
        return NULL;
    /* The first joiner is registered once it is suspended in crew_join. */
    p->first_waiting = TC_SPIN_UNTIL(crew_task_state(j) == CREW_TASK_WAITING, 10000000);
    p->joiner_state = crew_task_state(j);
    p->target_state = crew_task_state(p->target);
    if (p->first_waiting) {
        p->rc_second = crew_join(p->target, NULL);
        p->rc_detach = crew_detach(p->target);
    }
    atomic_store(&p->flag, 1);
    TC_CHECK_EQ(crew_join(j, NULL), 0);
    return NULL;
}

static void test_task_join_busy(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    struct busy_probe p = { 0 };
    tc_run(busy_main, &p);
    tc_assert_clean();
    assert_true(p.first_waiting);
    assert_int_equal(p.joiner_state, CREW_TASK_WAITING);
    assert_true(p.target_state == CREW_TASK_RUNNABLE || p.target_state == CREW_TASK_RUNNING);
    assert_int_equal(p.rc_second, -EBUSY);
    assert_int_equal(p.rc_detach, -EBUSY);
    assert_int_equal(p.rc_first, 0);
    assert_int_equal((uintptr_t)p.first_result, 0xF1A6);
}

/* ---- Detach ------------------------------------------------------------------ */

static void *bump(void *arg)
{
    crew_yield();
    atomic_fetch_add((atomic_int *)arg, 1);
    return NULL;
}

static void *detach_main(void *arg)
{
    atomic_int *count = arg;
    for (int i = 0; i < 500; i++) {
        crew_task_t *t = NULL;
        int rc = crew_spawn(bump, count, NULL, &t);
        TC_CHECK_EQ(rc, 0);
        if (rc == 0)
            TC_CHECK_EQ(crew_detach(t), 0);
    }
    TC_CHECK(TC_SPIN_UNTIL(atomic_load(count) == 500, 10000000));
    /* Detaching a task that already finished frees it too. */
    crew_task_t *t = NULL;
    TC_CHECK_EQ(crew_spawn(bump, count, NULL, &t), 0);
    if (t) {
        TC_CHECK(TC_SPIN_UNTIL(crew_task_state(t) == CREW_TASK_DONE, 10000000));
        TC_CHECK_EQ(crew_detach(t), 0);
    }
    return NULL;
}

static void test_task_detach(void **state)
{
    crew_test_watchdog(30);
    tc_reset();
    atomic_int count = 0;
    tc_run(detach_main, &count);
    tc_assert_clean();
    assert_int_equal(atomic_load(&count), 501);
}

/* ---- crew_rt_spawn from plain threads and from other runtimes --------------- */

struct ext_probe {
    crew_rt_t *rt, *other;
    atomic_long sum;
    atomic_int wrong_rt;
};

static void *ext_child(void *arg)
{
    struct ext_probe *p = arg;
    if (crew_rt_current() != p->rt)
        atomic_fetch_add(&p->wrong_rt, 1);
    return (void *)(uintptr_t)(crew_worker_index() >= 0);
}

/* A thread crew did not create: spawn and join from it. */
static void *ext_thread(void *arg)
{
    struct ext_probe *p = arg;
    for (int i = 0; i < 200; i++) {
        crew_task_t *t = NULL;
        int rc = crew_rt_spawn(p->rt, ext_child, p, NULL, &t);
        TC_CHECK_EQ(rc, 0);
        if (rc)
            break;
        void *res = NULL;
        TC_CHECK_EQ(crew_join(t, &res), 0);
        atomic_fetch_add(&p->sum, (long)(uintptr_t)res);
    }
    return NULL;
}

/* A task of another runtime: its join suspends it, and a worker of the first
 * runtime wakes it. */
static void *other_rt_task(void *arg)
{
    struct ext_probe *p = arg;
    ext_thread(p);
    if (crew_rt_current() != p->other)
        atomic_fetch_add(&p->wrong_rt, 1);
    return NULL;
}

static void test_task_rt_spawn_plain_thread(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct ext_probe p = { .rt = tc_rt_create() };
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ext_thread, &p), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(p.rt), 0);
    tc_assert_clean();
    assert_int_equal(atomic_load(&p.sum), 600);
    assert_int_equal(atomic_load(&p.wrong_rt), 0);
}

static void test_task_rt_spawn_other_runtime(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct ext_probe p = { .rt = tc_rt_create(), .other = tc_rt_create() };
    crew_task_t *t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(crew_rt_spawn(p.other, other_rt_task, &p, NULL, &t[i]), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(p.other), 0);
    assert_int_equal(crew_rt_destroy(p.rt), 0);
    tc_assert_clean();
    assert_int_equal(atomic_load(&p.sum), 800);
    assert_int_equal(atomic_load(&p.wrong_rt), 0);
}

/* ---- Spawn during shutdown ---------------------------------------------------- */

struct shut_probe {
    atomic_long spawned, done;
    atomic_int saw_shutdown, other_error;
};

static void *shut_leaf(void *arg)
{
    struct shut_probe *p = arg;
    atomic_fetch_add(&p->done, 1);
    return NULL;
}

static void *shut_spawner(void *arg)
{
    struct shut_probe *p = arg;
    /* Bounded: without -ESHUTDOWN the cap ends the loop and the test fails. */
    for (long i = 0; i < 2000000; i++) {
        crew_task_t *t = NULL;
        int rc = crew_spawn(shut_leaf, p, NULL, &t);
        if (rc == -ESHUTDOWN) {
            atomic_store(&p->saw_shutdown, 1);
            break;
        }
        if (rc) {
            atomic_store(&p->other_error, rc);
            break;
        }
        atomic_fetch_add(&p->spawned, 1);
        (void)crew_detach(t);
        crew_yield();
    }
    return NULL;
}

static void test_task_spawn_after_shutdown(void **state)
{
    crew_test_watchdog(60);
    struct shut_probe p = { 0 };
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, shut_spawner, &p, NULL, &t), 0);
    assert_int_equal(crew_detach(t), 0);
    /* Let it spawn for a while, so that destroy starts with work queued. */
    for (int i = 0; i < 1000000 && atomic_load(&p.spawned) < 1000; i++)
        sched_yield();
    assert_int_equal(crew_rt_destroy(rt), 0);
    fprintf(stderr, "# %ld spawns before shutdown\n", atomic_load(&p.spawned));
    assert_int_equal(atomic_load(&p.other_error), 0);
    assert_int_equal(atomic_load(&p.saw_shutdown), 1);
    assert_int_equal(atomic_load(&p.done), atomic_load(&p.spawned));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_task_spawn_join),
    cmocka_unit_test(test_task_outside_task),
    cmocka_unit_test(test_task_spawn_einval),
    cmocka_unit_test(test_task_opts_name_stack),
    cmocka_unit_test(test_task_runtime_default_stack),
    cmocka_unit_test(test_task_ids_unique),
    cmocka_unit_test(test_task_states),
    cmocka_unit_test(test_task_join_busy),
    cmocka_unit_test(test_task_detach),
    cmocka_unit_test(test_task_rt_spawn_plain_thread),
    cmocka_unit_test(test_task_rt_spawn_other_runtime),
    cmocka_unit_test(test_task_spawn_after_shutdown),
};

CREW_TEST_MAIN("task", tests)
