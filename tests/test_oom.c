/* Running out of memory (RELIABILITY.md matrix row 35): a spawn flood under
 * RLIMIT_AS. Either every task runs, or the ones that cannot get memory fail
 * cleanly (crew_spawn or crew_join returns -ENOMEM), and the runtime stays
 * usable. Runs in a child process (tc_run_child), because it lowers the
 * child's address-space limit. */
#include "task_util.h"

#include <sys/resource.h>

/* 1 MiB stacks, 100,000 tasks that all stay alive at once: 100 GiB of stack
 * address space, far past the limit set below. */
#define FLOOD_TASKS 100000
#define FLOOD_STACK ((size_t)1 << 20)
/* Address space granted above what the process maps when the flood starts. */
#define FLOOD_HEADROOM ((size_t)512 << 20)

static _Atomic unsigned long flood_started;
static _Atomic int flood_release;

static void *flood_task(void *arg)
{
    atomic_fetch_add(&flood_started, 1);
    while (!atomic_load(&flood_release))
        crew_yield();
    return arg;
}

static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib * 1024;
}

static crew_task_t *flood_handles[FLOOD_TASKS];

/* The main task of the child. Prints what happened; returns the exit code. */
static void *flood_main(void *arg)
{
    crew_spawn_opts_t so = CREW_SPAWN_OPTS_INIT;
    so.stack_size = FLOOD_STACK;
    unsigned long spawned = 0;
    int spawn_err = 0;
    for (; spawned < FLOOD_TASKS; spawned++) {
        spawn_err = crew_spawn(flood_task, (void *)(uintptr_t)(spawned + 1), &so,
                               &flood_handles[spawned]);
        if (spawn_err)
            break;
    }
    if (spawn_err && spawn_err != -ENOMEM) {
        fprintf(stderr, "crew_spawn: unexpected %d\n", spawn_err);
        return (void *)(uintptr_t)20;
    }
    /* Wait until every spawned task has either started (it then spins) or
     * failed to start (it then no longer counts as live): live = started + 1
     * (this task). Bounded by the child's alarm. */
    crew_metrics_t m;
    do {
        crew_yield();
        if (crew_rt_metrics(crew_rt_current(), &m))
            return (void *)(uintptr_t)21;
    } while (m.tasks_live != atomic_load(&flood_started) + 1);
    atomic_store(&flood_release, 1);

    unsigned long ok = 0, nomem = 0, bad = 0;
    for (unsigned long i = 0; i < spawned; i++) {
        void *res = NULL;
        int rc = crew_join(flood_handles[i], &res);
        if (rc == 0 && res == (void *)(uintptr_t)(i + 1))
            ok++;
        else if (rc == -ENOMEM)
            nomem++;
        else
            bad++;
    }
    unsigned long started = atomic_load(&flood_started);
    /* Still usable: memory came back with the finished tasks' stacks. */
    crew_task_t *t = NULL;
    void *res = NULL;
    int after = crew_spawn(flood_task, (void *)7, NULL, &t);
    if (after == 0)
        after = crew_join(t, &res);
    fprintf(stderr, "spawned=%lu spawn_err=%d started=%lu ok=%lu nomem=%lu bad=%lu after=%d\n",
            spawned, spawn_err, started, ok, nomem, bad, after);
    if (bad || ok != started || ok + nomem != spawned || after != 0 ||
        res != (void *)7)
        return (void *)(uintptr_t)22;
    /* The limit must actually have bitten, or the test proved nothing. */
    if (!spawn_err && !nomem)
        return (void *)(uintptr_t)23;
    return NULL;
}

static int child_main(const char *mode)
{
    (void)mode;
    crew_rt_opts_t o = CREW_RT_OPTS_INIT;
    o.workers = crew_test_workers();
    crew_rt_t *rt = NULL;
    if (crew_rt_create(&o, &rt))
        return 10;
    struct rlimit lim = { vm_size() + FLOOD_HEADROOM, vm_size() + FLOOD_HEADROOM };
    if (setrlimit(RLIMIT_AS, &lim))
        return 11;
    crew_task_t *main_task = NULL;
    void *res = NULL;
    if (crew_rt_spawn(rt, flood_main, NULL, NULL, &main_task) || crew_join(main_task, &res))
        return 12;
    if (crew_rt_destroy(rt))
        return 13;
    return (int)(uintptr_t)res;
}

TC_CHILD_DISPATCH(child_main)

static void test_oom_spawn_flood_rlimit_as(void **state)
{
    (void)state;
#if defined(CREW_ASAN) || defined(CREW_TSAN)
    /* Sanitizers reserve terabytes of shadow memory: an address-space limit
     * stops them, not crew. */
    skip();
#else
    crew_test_watchdog(120);
    char err[4096];
    int st = tc_run_child("flood", NULL, err, sizeof err);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("flood child: status %#x: %s", st, err);
    assert_non_null(strstr(err, "spawned="));
#endif
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_oom_spawn_flood_rlimit_as),
};

CREW_TEST_MAIN("oom", tests)
