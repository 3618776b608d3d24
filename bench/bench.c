/* crew-bench: the driver. Usage:
 *
 *   crew-bench <workload> [sizes...]   one workload, sizes in the README's order
 *   crew-bench [all]                   every workload below at its default sizes
 *
 * Each workload runs as the main task of its own runtime (crew_run), so that
 * only the worker threads run tasks, as in the Tokio peer where the workload is
 * a spawned task and the main thread only waits. Workers: 2, or
 * $CREW_BENCH_WORKERS, or else $PEERS_WORKERS (what run_all.sh sets).
 * Exit status: 0; 1 when a check failed; 2 on a usage error. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <crew.h>

#include "bench.h"

static const bench_workload_t workloads[] = {
    { "spawn_join", { "n" }, { 1000000 }, bench_spawn_join },
    { "yield_many", { "tasks", "yields" }, { 200, 10000 }, bench_yield_many },
    { "chained_spawn", { "depth" }, { 1000000 }, bench_chained_spawn },
    { "fib_parallel", { "n", "cutoff" }, { 30, 2 }, bench_fib_parallel },
    { "timers", { "tasks", "max_ms", "seed" }, { 100000, 100, 42 }, bench_timers },
    { "blocking_offload", { "calls", "inflight", "busy_ns" }, { 100000, 1000, 2000 },
      bench_blocking_offload },
    { "offload_cpu", { "calls", "inflight", "busy_ns" }, { 1000, 100, 1000000 }, bench_offload_cpu },
    { "ping_pong", { "pairs", "rounds" }, { 1000, 1000 }, bench_ping_pong },
    { "channel_mpmc", { "msgs", "producers", "consumers", "cap" }, { 10000000, 4, 4, 1024 },
      bench_channel_mpmc },
    { "mutex_contention", { "tasks", "iters" }, { 64, 100000 }, bench_mutex_contention },
    { "idle_tasks_memory", { "tasks" }, { 100000 }, bench_idle_tasks_memory },
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

/* The peers' default worker count (GOMAXPROCS=2, worker_threads(2)). */
#define BENCH_DEFAULT_WORKERS 2u

static const char *prog = "crew-bench";

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_emit(const bench_t *b, const bench_metric_t *m, size_t n)
{
    printf("%s crew", b->wl->name);
    for (size_t i = 0; i < n; i++)
        printf(" %s=%.*f %s", m[i].key, m[i].prec, m[i].value, m[i].unit);
    printf(" args=");
    for (unsigned i = 0; i < b->nsizes; i++)
        printf("%s:%llu,", b->wl->size_names[i], (unsigned long long)b->size[i]);
    printf("workers:%u\n", b->workers);
    fflush(stdout);
}

int bench_fail(const bench_t *b, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s crew: VERIFY FAILED: ", b->wl->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return BENCH_VERIFY_FAILED;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: %s [<workload> [sizes...] | all]\n"
               "workers: 2, or $CREW_BENCH_WORKERS, or $PEERS_WORKERS\n"
               "CREW_BENCH_METRICS=1: print the runtime's metrics on stderr after each run\n"
               "workloads (sizes in order, with defaults):\n", prog);
    for (size_t i = 0; i < NWORKLOADS; i++) {
        const bench_workload_t *w = &workloads[i];
        fprintf(f, "  %s", w->name);
        for (unsigned k = 0; k < BENCH_MAX_SIZES && w->size_names[k]; k++)
            fprintf(f, " %s=%llu", w->size_names[k], (unsigned long long)w->defaults[k]);
        fputc('\n', f);
    }
}

/* A positive decimal integer that fits in 63 bits; '_' separators are allowed
 * as the peers allow them (1_000_000). Returns 0 when @p s is not one. */
static uint64_t parse_size(const char *s)
{
    uint64_t v = 0;
    int digits = 0;
    for (; *s; s++) {
        if (*s == '_')
            continue;
        if (*s < '0' || *s > '9' || v > (UINT64_MAX / 2 - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*s - '0');
        digits++;
    }
    return digits ? v : 0;
}

static int parse_workers(unsigned *out)
{
    static const char *const vars[] = { "CREW_BENCH_WORKERS", "PEERS_WORKERS" };
    *out = BENCH_DEFAULT_WORKERS;
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *s = getenv(vars[i]);
        if (!s || !*s)
            continue;
        uint64_t w = parse_size(s);
        if (w == 0 || w > CREW_MAX_WORKERS) {
            fprintf(stderr, "%s: %s=%s: want 1..%u workers\n", prog, vars[i], s, CREW_MAX_WORKERS);
            return -EINVAL;
        }
        *out = (unsigned)w;
        return 0;
    }
    return 0;
}

static const bench_workload_t *find_workload(const char *name)
{
    for (size_t i = 0; i < NWORKLOADS; i++)
        if (strcmp(workloads[i].name, name) == 0)
            return &workloads[i];
    return NULL;
}

/* Fill b's sizes from argv (the rest take their defaults). */
static int parse_sizes(bench_t *b, int argc, char **argv)
{
    const bench_workload_t *w = b->wl;
    unsigned k = 0;
    for (; k < BENCH_MAX_SIZES && w->size_names[k]; k++) {
        b->size[k] = w->defaults[k];
        if ((int)k < argc) {
            b->size[k] = parse_size(argv[k]);
            if (b->size[k] == 0) {
                fprintf(stderr, "%s crew: bad argument %u (%s): \"%s\": want a positive integer\n",
                        w->name, k + 1, w->size_names[k], argv[k]);
                return -EINVAL;
            }
        }
    }
    b->nsizes = k;
    if (argc > (int)k) {
        fprintf(stderr, "%s crew: too many arguments: %s takes %u size(s)\n", w->name, w->name, k);
        return -EINVAL;
    }
    return 0;
}

static void *main_task(void *arg)
{
    bench_t *b = arg;
    int status = b->wl->fn(b);
    /* CREW_BENCH_METRICS=1: the runtime's counters after the workload (on
     * stderr, so the result line stays the peers' format), e.g. the
     * reactor's CPU time. */
    const char *m = getenv("CREW_BENCH_METRICS");
    if (m && *m && *m != '0')
        crew_rt_metrics_print(crew_rt_current(), stderr);
    return (void *)(intptr_t)status;
}

static int run(bench_t *b)
{
    crew_rt_opts_t opts = CREW_RT_OPTS_INIT;
    void *status = NULL;
    opts.workers = b->workers;
    int err = crew_run(main_task, b, &opts, &status);
    if (err) {
        fprintf(stderr, "%s crew: crew_run: %s\n", b->wl->name, crew_strerror(err));
        return BENCH_VERIFY_FAILED;
    }
    return (int)(intptr_t)status;
}

int main(int argc, char **argv)
{
    bench_t b = { 0 };
    if (argc > 0 && argv[0])
        prog = argv[0];
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (parse_workers(&b.workers))
        return BENCH_USAGE;

    if (argc < 2 || strcmp(argv[1], "all") == 0) {
        if (argc > 2) {
            usage(stderr);
            return BENCH_USAGE;
        }
        int status = BENCH_OK;
        for (size_t i = 0; i < NWORKLOADS; i++) {
            b.wl = &workloads[i];
            (void)parse_sizes(&b, 0, NULL);
            if (run(&b) != BENCH_OK)
                status = BENCH_VERIFY_FAILED;
        }
        return status;
    }

    b.wl = find_workload(argv[1]);
    if (!b.wl) {
        fprintf(stderr, "%s: unknown workload \"%s\"\n", prog, argv[1]);
        usage(stderr);
        return BENCH_USAGE;
    }
    if (parse_sizes(&b, argc - 2, argv + 2)) {
        usage(stderr);
        return BENCH_USAGE;
    }
    return run(&b);
}
