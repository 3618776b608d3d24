/* crew-bench: shared declarations of the benchmark driver and its workloads.
 *
 * Every workload follows ../shared/peers/README.md exactly (what is timed,
 * what is verified, which metrics are printed in which order). The driver
 * (bench.c) parses the sizes, creates a runtime and calls the workload's
 * function inside the runtime's main task; the workload measures its own
 * region, verifies, and prints its one result line with bench_emit().
 *
 * Adding a workload: write `int bench_<name>(bench_t *b)` in a source file of
 * this folder, declare it below, and add one row to the table in bench.c. */
#ifndef CREW_BENCH_H
#define CREW_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* The most positional sizes any workload takes (mixed has five). */
#define BENCH_MAX_SIZES 6

/* Return values of a workload function and exit statuses of crew-bench. */
enum {
    BENCH_OK = 0,
    BENCH_VERIFY_FAILED = 1, /* the peers' exit status for a failed check */
    BENCH_USAGE = 2,         /* the peers' exit status for a usage error */
};

typedef struct bench_s bench_t;
typedef int (*bench_fn_t)(bench_t *b);

/* One row of the workload table. A default of 0 means "chosen by the workload
 * at run time" (mixed's hogs = 2 x workers): the function then stores the
 * value it uses into b->size[] so that `args=` shows it. */
typedef struct bench_workload_s {
    const char *name;
    const char *size_names[BENCH_MAX_SIZES]; /* NULL-terminated when shorter */
    uint64_t defaults[BENCH_MAX_SIZES];
    bench_fn_t fn;
} bench_workload_t;

struct bench_s {
    const bench_workload_t *wl;
    uint64_t size[BENCH_MAX_SIZES]; /* in the order of wl->size_names */
    unsigned nsizes;
    unsigned workers;
};

/* One `key=value unit` pair of a result line; prec is the number of decimals. */
typedef struct bench_metric_s {
    const char *key;
    double value;
    int prec;
    const char *unit;
} bench_metric_t;

/* Print the result line `<workload> crew <metrics> args=<sizes>,workers:N`. */
void bench_emit(const bench_t *b, const bench_metric_t *m, size_t n);
#define BENCH_EMIT(b, ...)                                                                    \
    bench_emit((b), (const bench_metric_t[]){ __VA_ARGS__ },                                 \
               sizeof((const bench_metric_t[]){ __VA_ARGS__ }) / sizeof(bench_metric_t))

/* Print `<workload> crew: VERIFY FAILED: <message>` on stderr; returns
 * BENCH_VERIFY_FAILED so that a workload can `return bench_fail(...)`. */
int bench_fail(const bench_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Monotonic clock (CLOCK_MONOTONIC) in nanoseconds. */
uint64_t bench_now_ns(void);

/* Elapsed nanoseconds as the peers print them: milliseconds, and a rate in
 * operations per second. */
static inline double bench_ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static inline double bench_rate(uint64_t ops, uint64_t ns)
{
    return (double)ops * 1e9 / (double)ns;
}

/* Scheduler workloads (sched.c). */
int bench_spawn_join(bench_t *b);
int bench_yield_many(bench_t *b);
int bench_chained_spawn(bench_t *b);
int bench_fib_parallel(bench_t *b);

/* Timer workloads (time.c). */
int bench_timers(bench_t *b);

/* Executor workloads (executor.c). */
int bench_blocking_offload(bench_t *b);
int bench_offload_cpu(bench_t *b);
/* Channel workloads (chan.c). */
int bench_ping_pong(bench_t *b);
int bench_channel_mpmc(bench_t *b);
/* Synchronisation workloads (sync.c). */
int bench_mutex_contention(bench_t *b);
int bench_idle_tasks_memory(bench_t *b);

#endif
