/* Scheduler workloads: spawn_join, yield_many, chained_spawn, fib_parallel.
 * The exact rules are in ../shared/peers/README.md ("Exact rules"); the Tokio
 * peer (tokio/src/main.rs) is the reference implementation they mirror. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <crew.h>

#include "bench.h"

/* Tasks return their u64 result through the void * of crew_join. */
_Static_assert(sizeof(void *) >= sizeof(uint64_t), "crew-bench needs 64-bit pointers");

#define U64_ARG(v) ((void *)(uintptr_t)(v))
#define ARG_U64(p) ((uint64_t)(uintptr_t)(p))

/* Join h[0..n) in spawn order, adding their results to *sum. Every handle is
 * given back even after an error; returns the first error or 0. */
static int join_in_order(crew_task_t **h, uint64_t n, uint64_t *sum)
{
    int first = 0;
    for (uint64_t i = 0; i < n; i++) {
        void *r = NULL;
        int err = crew_join(h[i], &r);
        if (err && !first)
            first = err;
        *sum += ARG_U64(r);
    }
    return first;
}

/* ------------------------------------------------------------ spawn_join */

static void *return_index(void *arg)
{
    return arg;
}

int bench_spawn_join(bench_t *b)
{
    const uint64_t n = b->size[0];
    uint64_t spawned = 0, sum = 0;
    int err = 0;
    /* Allocated before the clock; its pages are first touched inside the
     * region, as those of Tokio's Vec::with_capacity are. */
    crew_task_t **h = malloc(n * sizeof(*h));
    if (!h)
        return bench_fail(b, "no memory for %llu handles", (unsigned long long)n);

    const uint64_t t0 = bench_now_ns();
    for (; spawned < n; spawned++) {
        err = crew_spawn(return_index, U64_ARG(spawned), NULL, &h[spawned]);
        if (err)
            break;
    }
    int jerr = join_in_order(h, spawned, &sum);
    const uint64_t el = bench_now_ns() - t0;
    free(h);

    if (err || jerr)
        return bench_fail(b, "crew_spawn/crew_join: %s", crew_strerror(err ? err : jerr));
    if (sum != n * (n - 1) / 2)
        return bench_fail(b, "sum %llu != %llu", (unsigned long long)sum,
                          (unsigned long long)(n * (n - 1) / 2));
    BENCH_EMIT(b, { "tasks_per_s", bench_rate(n, el), 0, "tasks/s" },
               { "elapsed_ms", bench_ms(el), 1, "ms" });
    return BENCH_OK;
}

/* ------------------------------------------------------------ yield_many */

/* Yields arg times and reports how many yields succeeded. */
static void *yielder(void *arg)
{
    const uint64_t y = ARG_U64(arg);
    uint64_t k = 0;
    for (uint64_t i = 0; i < y; i++)
        k += crew_yield() == 0;
    return U64_ARG(k);
}

int bench_yield_many(bench_t *b)
{
    const uint64_t t = b->size[0], y = b->size[1];
    uint64_t spawned = 0, total = 0;
    int err = 0;
    crew_task_t **h = malloc(t * sizeof(*h));
    if (!h)
        return bench_fail(b, "no memory for %llu handles", (unsigned long long)t);

    const uint64_t t0 = bench_now_ns();
    for (; spawned < t; spawned++) {
        err = crew_spawn(yielder, U64_ARG(y), NULL, &h[spawned]);
        if (err)
            break;
    }
    int jerr = join_in_order(h, spawned, &total);
    const uint64_t el = bench_now_ns() - t0;
    free(h);

    if (err || jerr)
        return bench_fail(b, "crew_spawn/crew_join: %s", crew_strerror(err ? err : jerr));
    if (total != t * y)
        return bench_fail(b, "yields %llu != %llu", (unsigned long long)total,
                          (unsigned long long)(t * y));
    BENCH_EMIT(b, { "yields_per_s", bench_rate(t * y, el), 0, "yields/s" },
               { "elapsed_ms", bench_ms(el), 1, "ms" });
    return BENCH_OK;
}

/* ------------------------------------------------------------ chained_spawn */

/* The last task (or one whose spawn failed) sends its k on a oneshot
 * channel that the main task receives from, as the spec says. */
static struct {
    uint64_t depth;             /* written before task 1 is spawned; read-only after */
    crew_chan_t *done;          /* the oneshot; created before the clock */
    _Atomic int err;            /* first crew_spawn error of the chain, or 0 */
} chain;

static void *chain_step(void *arg)
{
    const uint64_t k = ARG_U64(arg);
    if (k < chain.depth) {
        crew_task_t *next;
        int err = crew_spawn(chain_step, U64_ARG(k + 1), NULL, &next);
        if (err == 0) {
            (void)crew_detach(next);
            return NULL;
        }
        atomic_store_explicit(&chain.err, err, memory_order_relaxed);
    }
    /* The channel's hand-off orders chain.err before the main task's read. */
    int err = crew_chan_send(chain.done, &k);
    if (err)
        atomic_store_explicit(&chain.err, err, memory_order_relaxed);
    return NULL;
}

int bench_chained_spawn(bench_t *b)
{
    const uint64_t d = b->size[0];
    crew_task_t *first;
    uint64_t got = 0;
    crew_chan_opts_t o = CREW_CHAN_OPTS_INIT;
    o.flags = CREW_CHAN_ONESHOT;
    chain.depth = d;
    atomic_store_explicit(&chain.err, 0, memory_order_relaxed);
    int err = crew_chan_create(sizeof(uint64_t), 1, &o, &chain.done);
    if (err)
        return bench_fail(b, "crew_chan_create: %s", crew_strerror(err));

    const uint64_t t0 = bench_now_ns();
    err = crew_spawn(chain_step, U64_ARG(1), NULL, &first);
    if (err == 0) {
        (void)crew_detach(first);
        err = crew_chan_recv(chain.done, &got);
    }
    const uint64_t el = bench_now_ns() - t0;
    crew_chan_destroy(chain.done);

    if (!err)
        err = atomic_load_explicit(&chain.err, memory_order_relaxed);
    if (err)
        return bench_fail(b, "chain (task %llu): %s", (unsigned long long)got, crew_strerror(err));
    if (got != d)
        return bench_fail(b, "last task %llu != %llu", (unsigned long long)got,
                          (unsigned long long)d);
    BENCH_EMIT(b, { "spawns_per_s", bench_rate(d, el), 0, "spawns/s" },
               { "elapsed_ms", bench_ms(el), 1, "ms" });
    return BENCH_OK;
}

/* ------------------------------------------------------------ fib_parallel */

/* fib(93) is the largest that fits in a u64. */
#define FIB_MAX_N 93

static unsigned fib_cutoff;     /* set before the clock; read-only while tasks run */
static _Atomic int fib_err;     /* first crew error inside pfib, or 0 */

static uint64_t sfib(unsigned n)
{
    return n < 2 ? n : sfib(n - 1) + sfib(n - 2);
}

static uint64_t pfib(unsigned n);

static void *pfib_task(void *arg)
{
    return U64_ARG(pfib((unsigned)ARG_U64(arg)));
}

/* Spawns pfib(n-1), computes pfib(n-2) here (sfib below the cutoff), joins.
 * The cutoff is at least 2, so n - 2 never wraps. */
static uint64_t pfib(unsigned n)
{
    crew_task_t *h;
    void *r = NULL;
    if (n < fib_cutoff)
        return sfib(n);
    int err = crew_spawn(pfib_task, U64_ARG(n - 1), NULL, &h);
    if (err) {
        atomic_store_explicit(&fib_err, err, memory_order_relaxed);
        return 0;
    }
    const uint64_t b = pfib(n - 2);
    err = crew_join(h, &r);
    if (err)
        atomic_store_explicit(&fib_err, err, memory_order_relaxed);
    return ARG_U64(r) + b;
}

int bench_fib_parallel(bench_t *b)
{
    if (b->size[0] > FIB_MAX_N) {
        fprintf(stderr, "fib_parallel crew: n = %llu: fib(n) overflows a u64 above n = %d\n",
                (unsigned long long)b->size[0], FIB_MAX_N);
        return BENCH_USAGE;
    }
    /* Below 2, pfib(n - 2) would wrap; the Tokio peer clamps the same way. */
    if (b->size[1] < 2)
        b->size[1] = 2;
    const unsigned n = (unsigned)b->size[0];
    uint64_t want = 0, next = 1;
    for (unsigned i = 0; i < n; i++) {
        const uint64_t s = want + next;
        want = next;
        next = s;
    }
    /* A cutoff above n just means sfib(n); capping it keeps it in an unsigned. */
    fib_cutoff = (unsigned)(b->size[1] < n + 1 ? b->size[1] : n + 1);
    atomic_store_explicit(&fib_err, 0, memory_order_relaxed);

    const uint64_t t0 = bench_now_ns();
    const uint64_t got = pfib(n);
    const uint64_t el = bench_now_ns() - t0;

    /* Every task was joined before pfib returned, so a relaxed load sees all errors. */
    const int err = atomic_load_explicit(&fib_err, memory_order_relaxed);
    if (err)
        return bench_fail(b, "crew_spawn/crew_join: %s", crew_strerror(err));
    if (got != want)
        return bench_fail(b, "fib(%u) = %llu, want %llu", n, (unsigned long long)got,
                          (unsigned long long)want);
    BENCH_EMIT(b, { "wall_ms", bench_ms(el), 1, "ms" });
    return BENCH_OK;
}
