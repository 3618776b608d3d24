/* Synchronisation workloads: mutex_contention and idle_tasks_memory. The
 * exact rules are in ../shared/peers/README.md; the Tokio peer
 * (tokio/src/main.rs) is the reference. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <crew.h>

#include "bench.h"

/* ---- mutex_contention ------------------------------------------------------ */

static struct {
    crew_mutex_t m;
    uint64_t counter; /* Under m. */
    uint64_t iters;
} mc;

static void *mc_task(void *arg)
{
    for (uint64_t i = 0; i < mc.iters; i++) {
        if (crew_mutex_lock(&mc.m))
            return (void *)1;
        mc.counter++;
        crew_mutex_unlock(&mc.m);
    }
    return NULL;
}

int bench_mutex_contention(bench_t *b)
{
    const uint64_t tasks = b->size[0];
    mc.iters = b->size[1];
    mc.counter = 0;
    crew_mutex_init(&mc.m);
    crew_task_t **h = malloc(tasks * sizeof *h);
    if (!h)
        return bench_fail(b, "no memory for %llu handles", (unsigned long long)tasks);
    int err = 0, bad = 0;
    uint64_t spawned = 0;
    const uint64_t t0 = bench_now_ns();
    for (; spawned < tasks; spawned++)
        if ((err = crew_spawn(mc_task, NULL, NULL, &h[spawned])))
            break;
    for (uint64_t i = 0; i < spawned; i++) {
        void *r = NULL;
        int e = crew_join(h[i], &r);
        if (e && !err)
            err = e;
        bad += r != NULL;
    }
    const uint64_t el = bench_now_ns() - t0;
    free(h);
    if (err || bad)
        return bench_fail(b, "spawn/join/lock: %s", crew_strerror(err ? err : -EIO));
    if (mc.counter != tasks * mc.iters)
        return bench_fail(b, "counter %llu != %llu", (unsigned long long)mc.counter,
                          (unsigned long long)(tasks * mc.iters));
    BENCH_EMIT(b, { "lock_ops_per_s", bench_rate(tasks * mc.iters, el), 0, "ops/s" },
               { "elapsed_ms", bench_ms(el), 1, "ms" });
    return crew_mutex_destroy(&mc.m) ? bench_fail(b, "mutex still busy") : BENCH_OK;
}

/* ---- idle_tasks_memory ----------------------------------------------------- */

static struct {
    crew_event_t release;
    crew_event_t all_done;
    atomic_uint_fast64_t started, finished;
    uint64_t k;
} im;

/* VmRSS of this process in KiB, or 0 if unreadable. */
static uint64_t rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    uint64_t kib = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %llu", (unsigned long long *)&kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void *im_task(void *arg)
{
    atomic_fetch_add_explicit(&im.started, 1, memory_order_relaxed);
    int rc = crew_event_wait(&im.release);
    if (atomic_fetch_add_explicit(&im.finished, 1, memory_order_acq_rel) + 1 == im.k)
        crew_event_set(&im.all_done);
    return (void *)(intptr_t)rc;
}

int bench_idle_tasks_memory(bench_t *b)
{
    im.k = b->size[0];
    atomic_store(&im.started, 0);
    atomic_store(&im.finished, 0);
    crew_event_init(&im.release);
    crew_event_init(&im.all_done);
    const uint64_t before = rss_kib();
    for (uint64_t i = 0; i < im.k; i++) {
        crew_task_t *t;
        int err = crew_spawn(im_task, NULL, NULL, &t);
        if (err)
            return bench_fail(b, "crew_spawn #%llu: %s", (unsigned long long)i,
                              crew_strerror(err));
        crew_detach(t); /* Main keeps no per-task handle (it would be counted). */
    }
    while (atomic_load_explicit(&im.started, memory_order_relaxed) < im.k)
        crew_sleep(CREW_MS);
    crew_sleep(20 * CREW_MS);
    const uint64_t after = rss_kib();
    const uint64_t t0 = bench_now_ns();
    crew_event_set(&im.release);
    int rc = crew_event_wait(&im.all_done);
    const uint64_t el = bench_now_ns() - t0;
    if (rc || atomic_load(&im.finished) != im.k)
        return bench_fail(b, "finished %llu of %llu", (unsigned long long)atomic_load(&im.finished),
                          (unsigned long long)im.k);
    BENCH_EMIT(b,
               { "bytes_per_task", (double)(after - before) * 1024.0 / (double)im.k, 0, "B/task" },
               { "rss_before_kib", (double)before, 0, "KiB" },
               { "rss_after_kib", (double)after, 0, "KiB" },
               { "release_ms", bench_ms(el), 1, "ms" });
    return BENCH_OK;
}
