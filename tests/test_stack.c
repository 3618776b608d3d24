/* Task stacks (RELIABILITY.md 3.2, matrix row 10): an overflow is reported
 * with the task's name and stack size and ends the process with SIGABRT, in
 * each guard mode; stacks of every size are reused from the pool.
 *
 * Overflows run in a child process (this executable again, see
 * tc_run_child): the child dies, the test reads its stderr and status. */
#include "task_util.h"

#include <signal.h>

/* ---- What the child runs ------------------------------------------------------ */

/* Never reached: a volatile bound hides the infinite recursion from the
 * compiler, which would otherwise warn or transform it. */
static volatile unsigned long recursion_limit = ~0ul;

static __attribute__((noinline)) unsigned long recurse(unsigned long depth)
{
    volatile char pad[256];
    pad[0] = (char)depth;
    pad[sizeof pad - 1] = (char)depth;
    if (depth >= recursion_limit)
        return pad[0];
    /* Using the result after the call prevents a tail call. */
    return recurse(depth + 1) + (unsigned long)pad[depth % sizeof pad];
}

/* One frame of 1 MiB: -fstack-clash-protection (which the build adds) probes
 * it page by page from the top, so the first probe past the stack lands in
 * the guard page instead of jumping over it. */
static __attribute__((noinline)) int big_frame(void)
{
    volatile char buf[1 << 20];
    buf[sizeof buf - 1] = 1;
    buf[0] = 2;
    return buf[0] + buf[sizeof buf - 1];
}

/* Two overflowing tasks start recursing together (bounded rendezvous). */
static atomic_int twins_ready;

static void *overflow_task(void *arg)
{
    const char *how = arg;
    if (!strcmp(how, "none"))
        return NULL;
    if (!strcmp(how, "twin")) {
        atomic_fetch_add(&twins_ready, 1);
        TC_SPIN_UNTIL(atomic_load(&twins_ready) >= 2, 1000000);
    }
    if (!strcmp(how, "bigframe"))
        return (void *)(uintptr_t)big_frame();
    return (void *)recurse(0);
}

static void *nop(void *arg)
{
    return arg;
}

/* Canary mode has no guard page: the damage is found when the task next
 * switches away or exits. Walk down the stack to near its low end, then
 * overwrite the lowest bytes (below the stack pointer, so nothing live). The
 * low end is estimated from the reported size: a local of the task's first
 * frame sits a little below the top, so [near - size - 256, near - size +
 * 2112) covers the canary word whatever crew keeps above the first frame (up
 * to 2 KiB) and stays inside the unused page below the stack. Then, unless
 * at_exit, switch away for sure: yield with a task queued, and join it. */
static __attribute__((noinline)) void smash_bottom(uintptr_t near, size_t size, bool at_exit)
{
    volatile char pad[256];
    uintptr_t lo_min = near - size - 256, lo_max = near - size + 2112;
    pad[0] = 1;
    if ((uintptr_t)&pad[0] > lo_max + 4096) {
        smash_bottom(near, size, at_exit);
        pad[1] = pad[0];
        return;
    }
    for (volatile char *p = (volatile char *)lo_min; (uintptr_t)p < lo_max; p++)
        *p = (char)0x5A;
    if (at_exit)
        return;
    crew_task_t *t = NULL;
    if (crew_spawn(nop, NULL, NULL, &t) == 0) {
        crew_yield();
        if (crew_join(t, NULL))
            pad[2] = 0;
    }
}

static void *canary_task(void *arg)
{
    volatile char here = 0;
    smash_bottom((uintptr_t)&here, crew_task_stack_size(crew_self()), arg != NULL);
    return NULL;
}

/* Names and sizes of the overflowing tasks: the parent looks for them. */
#define OVF_STACK ((size_t)64 * 1024)
static const char *const names[] = { "ovf-recurse", "ovf-bigframe", "ovf-twin-a", "ovf-twin-b",
                                     "ovf-canary", "ovf-canary-exit" };

static int child_overflow(const char *mode)
{
    crew_rt_opts_t o = CREW_RT_OPTS_INIT;
    o.workers = crew_test_workers();
    if (!strcmp(mode, "twins"))
        o.workers = 2;
    if (!strcmp(mode, "nohandler"))
        o.flags = CREW_RT_NO_OVERFLOW_HANDLER;
    crew_rt_t *rt = NULL;
    int rc = crew_rt_create(&o, &rt);
    if (rc) {
        fprintf(stderr, "crew_rt_create: %s\n", crew_strerror(rc));
        return 10;
    }
    crew_metrics_t m;
    crew_task_t *t = NULL;
    /* Map stacks first: guard_mode describes the most recently mapped ones. */
    if (crew_rt_spawn(rt, overflow_task, "none", NULL, &t) || crew_join(t, NULL) ||
        crew_rt_metrics(rt, &m))
        return 11;
    fprintf(stderr, "guard_mode=%d\n", (int)m.guard_mode);

    crew_spawn_opts_t so = CREW_SPAWN_OPTS_INIT;
    so.stack_size = OVF_STACK;
    crew_task_t *tasks[2] = { 0 };
    int n = 1;
    if (!strcmp(mode, "recurse") || !strcmp(mode, "nohandler") || !strcmp(mode, "mprotect")) {
        so.name = names[0];
        rc = crew_rt_spawn(rt, overflow_task, "recurse", &so, &tasks[0]);
    } else if (!strcmp(mode, "bigframe")) {
        so.name = names[1];
        rc = crew_rt_spawn(rt, overflow_task, "bigframe", &so, &tasks[0]);
    } else if (!strcmp(mode, "twins")) {
        so.name = names[2];
        rc = crew_rt_spawn(rt, overflow_task, "twin", &so, &tasks[0]);
        so.name = names[3];
        rc = rc ? rc : crew_rt_spawn(rt, overflow_task, "twin", &so, &tasks[1]);
        n = 2;
    } else if (!strcmp(mode, "canary")) {
        so.name = names[4];
        rc = crew_rt_spawn(rt, canary_task, NULL, &so, &tasks[0]);
    } else if (!strcmp(mode, "canary-exit")) {
        so.name = names[5];
        rc = crew_rt_spawn(rt, canary_task, "at exit", &so, &tasks[0]);
    } else {
        fprintf(stderr, "unknown child mode %s\n", mode);
        return 12;
    }
    if (rc)
        return 13;
    for (int i = 0; i < n; i++)
        if (crew_join(tasks[i], NULL))
            return 15;
    /* Reached only if the overflow went unnoticed. */
    fprintf(stderr, "child: the overflowing task returned\n");
    return 14;
}

static int child_main(const char *mode)
{
    return child_overflow(mode);
}

TC_CHILD_DISPATCH(child_main)

/* ---- Parent side ----------------------------------------------------------------- */

/* The size crew reports for a task spawned with OVF_STACK, which the
 * overflow report must mention. */
static size_t reported_stack_size(void)
{
    crew_rt_t *rt = tc_rt_create();
    crew_spawn_opts_t so = CREW_SPAWN_OPTS_INIT;
    so.stack_size = OVF_STACK;
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, overflow_task, "none", &so, &t), 0);
    size_t size = crew_task_stack_size(t);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    return size;
}

/* Does the report give the stack size, in bytes or in KiB? */
static bool mentions_size(const char *err, size_t size)
{
    char bytes[32], kib[32], kib2[32];
    snprintf(bytes, sizeof bytes, "%zu", size);
    snprintf(kib, sizeof kib, "%zu KiB", size / 1024);
    snprintf(kib2, sizeof kib2, "%zuK", size / 1024);
    return strstr(err, bytes) || strstr(err, kib) || strstr(err, kib2);
}

static char child_err[1 << 16];

static void expect_overflow_report(const char *mode, const char *const *env, int guard_mode,
                                   int nnames, const char *const *want_names)
{
    size_t size = reported_stack_size();
    int st = tc_run_child(mode, env, child_err, sizeof child_err);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
        fail_msg("child '%s': status %#x, want death by SIGABRT", mode, st);
    assert_non_null(strstr(child_err, "stack overflow"));
    bool named = false;
    for (int i = 0; i < nnames; i++)
        named = named || strstr(child_err, want_names[i]);
    if (!named)
        fail_msg("child '%s': the report names no overflowing task", mode);
    if (!mentions_size(child_err, size))
        fail_msg("child '%s': the report does not give the stack size %zu", mode, size);
    if (guard_mode) {
        char want[32];
        snprintf(want, sizeof want, "guard_mode=%d\n", guard_mode);
        if (!strstr(child_err, want))
            fail_msg("child '%s': want %s", mode, want);
    }
}

static void test_stack_overflow_recursion(void **state)
{
    crew_test_watchdog(60);
    expect_overflow_report("recurse", NULL, 0, 1, &names[0]);
}

static void test_stack_overflow_big_frame(void **state)
{
    crew_test_watchdog(60);
    expect_overflow_report("bigframe", NULL, 0, 1, &names[1]);
}

/* Two tasks overflow at once on two workers (each worker has its own
 * sigaltstack): one report is enough, but the child must not hang. */
static void test_stack_overflow_two_workers(void **state)
{
    crew_test_watchdog(60);
    expect_overflow_report("twins", NULL, 0, 2, &names[2]);
}

static void test_stack_overflow_mprotect(void **state)
{
    crew_test_watchdog(60);
    const char *env[] = { "CREW_STACK_GUARD=mprotect", NULL };
    expect_overflow_report("mprotect", env, CREW_GUARD_MPROTECT, 1, &names[0]);
}

static void test_stack_overflow_canary(void **state)
{
    crew_test_watchdog(60);
    const char *env[] = { "CREW_STACK_GUARD=canary", NULL };
    expect_overflow_report("canary", env, CREW_GUARD_CANARY, 1, &names[4]);
}

/* A task that damages its canary and returns: the check at exit must stop
 * the process before anyone sees the task finish (its join must not return). */
static void test_stack_overflow_canary_at_exit(void **state)
{
    crew_test_watchdog(60);
    const char *env[] = { "CREW_STACK_GUARD=canary", NULL };
    expect_overflow_report("canary-exit", env, CREW_GUARD_CANARY, 1, &names[5]);
    if (strstr(child_err, "the overflowing task returned"))
        fail_msg("the join of the damaged task returned before the overflow was reported");
}

/* Without the handler the guard still stops the overflow: plain SIGSEGV. */
static void test_stack_overflow_no_handler(void **state)
{
    crew_test_watchdog(60);
    int st = tc_run_child("nohandler", NULL, child_err, sizeof child_err);
#if defined(CREW_ASAN) || defined(CREW_TSAN)
    /* The sanitizer's own SIGSEGV handler reports the fault and exits or
     * aborts, as its options say. */
    if (!WIFSIGNALED(st) && !(WIFEXITED(st) && WEXITSTATUS(st) && WEXITSTATUS(st) != 14))
        fail_msg("child: status %#x, want death by SIGSEGV or by the sanitizer", st);
#else
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSEGV)
        fail_msg("child: status %#x, want death by SIGSEGV", st);
#endif
    assert_null(strstr(child_err, "crew: stack overflow"));
}

/* ---- Pool reuse ---------------------------------------------------------------- */

/* Use nearly all of the stack crew says the task has. */
static __attribute__((noinline)) char fill_stack(size_t bytes)
{
    volatile char buf[bytes];
    for (size_t i = 0; i < bytes; i += 512)
        buf[i] = (char)i;
    buf[bytes - 1] = 1;
    return buf[0];
}

static void *stack_user(void *arg)
{
    size_t size = crew_task_stack_size(crew_self());
    return fill_stack(size - 8 * 1024) == 0 ? arg : NULL;
}

static void test_stack_pool_reuse(void **state)
{
    crew_test_watchdog(60);
    uint64_t seed = crew_test_seed();
    const size_t sizes[] = { CREW_MIN_STACK_SIZE, 24 * 1024, 32 * 1024, 64 * 1024, 100 * 1024,
                             128 * 1024, 256 * 1024 };
    const int nsizes = (int)(sizeof sizes / sizeof sizes[0]);
    enum { BATCH = 1000, ROUNDS = 20 };
    static crew_task_t *t[BATCH];
    crew_rt_t *rt = tc_rt_create();
    uint64_t first = 0, last = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BATCH; i++) {
            crew_spawn_opts_t so = CREW_SPAWN_OPTS_INIT;
            so.stack_size = sizes[crew_test_rand(&seed) % (uint64_t)nsizes];
            assert_int_equal(crew_rt_spawn(rt, stack_user, &t[i], &so, &t[i]), 0);
        }
        for (int i = 0; i < BATCH; i++) {
            void *res = NULL;
            assert_int_equal(crew_join(t[i], &res), 0);
            assert_ptr_equal(res, &t[i]);
        }
        crew_metrics_t m;
        assert_int_equal(crew_rt_metrics(rt, &m), 0);
        if (r == 0)
            first = m.stacks_mapped;
        last = m.stacks_mapped;
    }
    assert_int_equal(crew_rt_destroy(rt), 0);
    fprintf(stderr, "# stacks mapped: %llu after one batch, %llu after %d\n",
            (unsigned long long)first, (unsigned long long)last, ROUNDS);
    assert_true(first > 0);
    if (last > 2 * first)
        fail_msg("stacks are not reused: %llu mapped after one batch of %d, %llu after %d",
                 (unsigned long long)first, BATCH, (unsigned long long)last, ROUNDS);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_stack_overflow_recursion),
    cmocka_unit_test(test_stack_overflow_big_frame),
    cmocka_unit_test(test_stack_overflow_two_workers),
    cmocka_unit_test(test_stack_overflow_mprotect),
    cmocka_unit_test(test_stack_overflow_canary),
    cmocka_unit_test(test_stack_overflow_no_handler),
    cmocka_unit_test(test_stack_pool_reuse),
    cmocka_unit_test(test_stack_overflow_canary_at_exit),
};

CREW_TEST_MAIN("stack", tests)
