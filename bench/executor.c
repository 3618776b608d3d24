/* Executor workloads: blocking_offload, and offload_cpu (crew only: long
 * CPU-bound calls, to check that the pool stays near the CPU count). The
 * exact rules of blocking_offload are in ../shared/peers/README.md; the Tokio
 * peer (spawn_blocking on its default pool) is the reference. Every call goes
 * to the runtime's default executor through crew_to_thread. */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <crew.h>

#include "bench.h"

static uint64_t busy_ns;
/* blocking_offload spins on the monotonic clock, as its rules say;
 * offload_cpu on the thread's CPU clock, so that a call costs busy_ns of CPU
 * however many pool threads share the CPUs. */
static clockid_t busy_clock;

static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(busy_clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spin for busy_ns on busy_clock, then return the call's index. */
static void *busy(void *arg)
{
    uint64_t end = clock_ns() + busy_ns;
    while (clock_ns() < end)
        continue;
    return arg;
}

struct lane {
    uint64_t lo, hi; /* Calls [lo, hi), one after another. */
};

static void *offload_task(void *arg)
{
    const struct lane *l = arg;
    uint64_t sum = 0;
    for (uint64_t i = l->lo; i < l->hi; i++) {
        void *r = NULL;
        if (crew_to_thread(busy, (void *)(uintptr_t)i, &r))
            return NULL; /* The sum then misses calls: verification fails. */
        sum += (uint64_t)(uintptr_t)r;
    }
    return (void *)(uintptr_t)sum;
}

/* Run size[0] calls of busy(size[2] ns on clock), size[1] in flight;
 * *threads gets how many pool threads the default executor started. Returns
 * the elapsed nanoseconds, or 0 after reporting a failure in *rc. */
static uint64_t offload(bench_t *b, clockid_t clock, uint64_t *threads, int *rc)
{
    const uint64_t n = b->size[0], inflight = b->size[1];
    busy_ns = b->size[2];
    busy_clock = clock;
    struct lane *lanes = malloc(inflight * sizeof *lanes);
    crew_task_t **h = malloc(inflight * sizeof *h);
    if (!lanes || !h) {
        free(lanes);
        free(h);
        *rc = bench_fail(b, "no memory for %llu tasks", (unsigned long long)inflight);
        return 0;
    }
    for (uint64_t w = 0; w < inflight; w++)
        lanes[w] = (struct lane){ n * w / inflight, n * (w + 1) / inflight };
    uint64_t sum = 0, spawned = 0;
    int err = 0;
    const uint64_t t0 = bench_now_ns();
    for (; spawned < inflight; spawned++)
        if ((err = crew_spawn(offload_task, &lanes[spawned], NULL, &h[spawned])) != 0)
            break;
    for (uint64_t w = 0; w < spawned; w++) {
        void *r = NULL;
        if (crew_join(h[w], &r) == 0)
            sum += (uint64_t)(uintptr_t)r;
    }
    const uint64_t ns = bench_now_ns() - t0;
    free(lanes);
    free(h);
    crew_executor_t *ex;
    crew_executor_metrics_t m = { 0 };
    if (!err)
        err = crew_rt_executor(crew_rt_current(), &ex);
    if (!err)
        err = crew_executor_metrics(ex, &m);
    *threads = m.threads_started;
    if (err)
        *rc = bench_fail(b, "crew: %s", crew_strerror(err));
    else if (sum != n * (n - 1) / 2)
        *rc = bench_fail(b, "sum %llu, want %llu", (unsigned long long)sum,
                         (unsigned long long)(n * (n - 1) / 2));
    return *rc == BENCH_OK ? ns : 0;
}

int bench_blocking_offload(bench_t *b)
{
    uint64_t threads;
    int rc = BENCH_OK;
    const uint64_t ns = offload(b, CLOCK_MONOTONIC, &threads, &rc);
    if (ns)
        BENCH_EMIT(b, { "calls_per_s", bench_rate(b->size[0], ns), 0, "calls/s" },
                   { "elapsed_ms", bench_ms(ns), 1, "ms" });
    return rc;
}

int bench_offload_cpu(bench_t *b)
{
    uint64_t threads;
    int rc = BENCH_OK;
    const uint64_t ns = offload(b, CLOCK_THREAD_CPUTIME_ID, &threads, &rc);
    if (ns)
        BENCH_EMIT(b, { "calls_per_s", bench_rate(b->size[0], ns), 0, "calls/s" },
                   { "threads_started", (double)threads, 0, "threads" },
                   { "elapsed_ms", bench_ms(ns), 1, "ms" });
    return rc;
}
