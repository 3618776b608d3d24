/* Timer workloads: timers. The exact rules are in ../shared/peers/README.md;
 * the Tokio peer (tokio/src/main.rs, fn timers) is the reference. */
#include <stdint.h>
#include <stdlib.h>

#include <crew.h>

#include "bench.h"

/* splitmix64, as the spec defines it (same sequence as every peer). */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static struct {
    const uint64_t *delay_ms; /* written before the spawns; read-only after */
    int64_t *late_ns;         /* task i writes slot i; read after its join */
} tm;

static void *timer_task(void *arg)
{
    const uint64_t i = (uint64_t)(uintptr_t)arg;
    const int64_t d = (int64_t)tm.delay_ms[i] * CREW_MS;
    const int64_t s = crew_now();
    if (crew_sleep(d))
        return NULL; /* 0 as the reported delay: verification fails. */
    tm.late_ns[i] = crew_now() - s - d;
    return (void *)(uintptr_t)tm.delay_ms[i];
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: index ceil(p/100 * n) - 1 of the sorted values. */
static int64_t percentile(const int64_t *v, uint64_t n, unsigned p)
{
    uint64_t rank = (p * n + 99) / 100;
    return v[rank ? rank - 1 : 0];
}

int bench_timers(bench_t *b)
{
    const uint64_t n = b->size[0], max_ms = b->size[1];
    uint64_t seed = b->size[2], want = 0, slept = 0;
    uint64_t *delay = malloc(n * sizeof *delay);
    int64_t *late = malloc(n * sizeof *late);
    crew_task_t **h = malloc(n * sizeof *h);
    if (!delay || !late || !h) {
        free(delay);
        free(late);
        free(h);
        return bench_fail(b, "no memory for %llu timers", (unsigned long long)n);
    }
    for (uint64_t i = 0; i < n; i++) {
        delay[i] = 1 + splitmix64(&seed) % max_ms;
        want += delay[i];
    }
    tm.delay_ms = delay;
    tm.late_ns = late;

    int err = 0, jerr = 0;
    uint64_t spawned = 0;
    const uint64_t t0 = bench_now_ns();
    for (; spawned < n; spawned++) {
        err = crew_spawn(timer_task, (void *)(uintptr_t)spawned, NULL, &h[spawned]);
        if (err)
            break;
    }
    const uint64_t spawn_el = bench_now_ns() - t0;
    for (uint64_t i = 0; i < spawned; i++) {
        void *r = NULL;
        int e = crew_join(h[i], &r);
        if (e && !jerr)
            jerr = e;
        slept += (uint64_t)(uintptr_t)r;
    }
    const uint64_t el = bench_now_ns() - t0;
    free(h);
    int rc = BENCH_OK;
    if (err || jerr) {
        rc = bench_fail(b, "crew_spawn/crew_join: %s", crew_strerror(err ? err : jerr));
    } else if (slept != want) {
        rc = bench_fail(b, "slept sum %llu != %llu", (unsigned long long)slept,
                        (unsigned long long)want);
    } else {
        double mean = 0;
        for (uint64_t i = 0; i < n; i++)
            mean += (double)late[i];
        mean /= (double)n;
        qsort(late, n, sizeof *late, cmp_i64);
        BENCH_EMIT(b, { "wall_ms", bench_ms(el), 1, "ms" },
                   { "spawn_ms", bench_ms(spawn_el), 1, "ms" },
                   { "late_mean_us", mean / 1e3, 1, "us" },
                   { "late_p50_us", (double)percentile(late, n, 50) / 1e3, 1, "us" },
                   { "late_p99_us", (double)percentile(late, n, 99) / 1e3, 1, "us" },
                   { "late_max_us", (double)late[n - 1] / 1e3, 1, "us" });
    }
    free(delay);
    free(late);
    return rc;
}
