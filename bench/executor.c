/* Executor workloads: blocking_offload. The exact rules are in
 * ../shared/peers/README.md; the Tokio peer (spawn_blocking on its default
 * pool) is the reference. Every call goes to the runtime's default executor
 * through crew_to_thread. */
#include <stdint.h>
#include <stdlib.h>

#include <crew.h>

#include "bench.h"

static uint64_t busy_ns;

/* Spin on the monotonic clock for busy_ns, then return the call's index. */
static void *busy(void *arg)
{
    int64_t end = crew_now() + (int64_t)busy_ns;
    while (crew_now() < end)
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

int bench_blocking_offload(bench_t *b)
{
    const uint64_t n = b->size[0], inflight = b->size[1];
    busy_ns = b->size[2];
    struct lane *lanes = malloc(inflight * sizeof *lanes);
    crew_task_t **h = malloc(inflight * sizeof *h);
    if (!lanes || !h) {
        free(lanes);
        free(h);
        return bench_fail(b, "no memory for %llu tasks", (unsigned long long)inflight);
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
    if (err)
        return bench_fail(b, "crew_spawn: %s", crew_strerror(err));
    if (sum != n * (n - 1) / 2)
        return bench_fail(b, "sum %llu, want %llu", (unsigned long long)sum,
                          (unsigned long long)(n * (n - 1) / 2));
    BENCH_EMIT(b, { "calls_per_s", bench_rate(n, ns), 0, "calls/s" },
               { "elapsed_ms", bench_ms(ns), 1, "ms" });
    return BENCH_OK;
}
