/* Shared helpers for crew's cmocka tests.
 *
 * Rules every test follows (cmocka's assert_* longjmp to the test's own stack):
 *   - assert only on the thread that runs the test; tasks and worker threads
 *     record what they saw in atomics or plain memory published by a join,
 *     and the test asserts after the join;
 *   - no sleeps as synchronisation, no timing assertions;
 *   - every test is bounded: the watchdog below kills a hung test. */
#ifndef CREW_TESTS_HARNESS_H
#define CREW_TESTS_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include <crew.h>

/* Worker count for this run: $CREW_TEST_WORKERS (ctest registers 1, 2, 4). */
static inline unsigned crew_test_workers(void)
{
    const char *s = getenv("CREW_TEST_WORKERS");
    unsigned n = s ? (unsigned)strtoul(s, NULL, 10) : 2;
    return n ? n : 2;
}

/* Seed for randomised tests: $CREW_TEST_SEED or a fixed default; printed so a
 * failure can be replayed. */
static inline uint64_t crew_test_seed(void)
{
    static uint64_t seed;
    if (!seed) {
        const char *s = getenv("CREW_TEST_SEED");
        seed = s ? strtoull(s, NULL, 0) : 0x5eed1234u;
        if (!seed)
            seed = 1;
        fprintf(stderr, "# seed %#llx (CREW_TEST_SEED overrides)\n", (unsigned long long)seed);
    }
    return seed;
}

/* splitmix64: the same generator the benchmarks use. */
static inline uint64_t crew_test_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Scale for iteration budgets: sanitizer presets set
 * CREW_TEST_TIMEOUT_MULTIPLIER, and stress loops divide their work by it so the
 * suite stays inside its time budget. */
static inline unsigned crew_test_slowdown(void)
{
    const char *s = getenv("CREW_TEST_TIMEOUT_MULTIPLIER");
    unsigned n = s ? (unsigned)strtoul(s, NULL, 10) : 1;
    return n ? n : 1;
}

/* Runtime options for a test: the worker count of this run. */
static inline crew_rt_opts_t crew_test_rt_opts(void)
{
    crew_rt_opts_t o = CREW_RT_OPTS_INIT;
    o.workers = crew_test_workers();
    return o;
}

/* Abort a hung test: SIGALRM's default action kills the process, which ctest
 * reports as a failure. seconds is multiplied by the slowdown. */
static inline void crew_test_watchdog(unsigned seconds)
{
    alarm(seconds * crew_test_slowdown());
}

/* Run a cmocka group, honouring an optional test-name filter in argv[1]. */
#define CREW_TEST_MAIN(group_name, tests)                                                 \
    int main(int argc, char **argv)                                                       \
    {                                                                                     \
        if (argc > 1)                                                                     \
            cmocka_set_test_filter(argv[1]);                                              \
        fprintf(stderr, "# workers %u\n", crew_test_workers());                           \
        return cmocka_run_group_tests_name(group_name, tests, NULL, NULL);                \
    }

#endif
