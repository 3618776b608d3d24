/* core-latency: how long a cache line takes to go from one CPU to another
 * and back, between two threads pinned to two CPUs (default 0 and 1).
 *
 *   build/release/bench/core-latency [CPU_A CPU_B]
 *
 * Prints "core_latency round_trip_ns=<ns> cpus=A,B". On the shared VMs the
 * host can move the vCPUs: the seventh session saw 52-62 ns and 322-349 ns
 * on the same machine minutes apart, and channel_mpmc and cross-worker wakes
 * follow it. Run it before and after a comparison, and compare only runs
 * taken at the same latency (docs/benchmarks.md). Exit status 2 on bad
 * arguments, 1 if a thread cannot be pinned or started. Not a crew program:
 * it measures the machine the benchmarks run on. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUND_TRIPS 2000000L

/* The one line the two threads pass back and forth: odd values are the
 * first thread's turn to be answered, even values the second's. */
static _Alignas(64) _Atomic long turn;
/* The answering thread's start: 1 pinned, -1 could not pin. */
static _Alignas(64) _Atomic int started;

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *answer(void *arg)
{
    int failed = pin(*(int *)arg) != 0;
    atomic_store_explicit(&started, failed ? -1 : 1, memory_order_release);
    if (failed)
        return NULL;
    for (long i = 0; i < ROUND_TRIPS; i++) {
        /* Acquire/release: the value itself is the message. */
        while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * i + 1)
            ;
        atomic_store_explicit(&turn, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

static int parse_cpu(const char *s, int *cpu)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v >= CPU_SETSIZE)
        return -1;
    *cpu = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    int a = 0, b = 1;
    if (argc != 1 && (argc != 3 || parse_cpu(argv[1], &a) || parse_cpu(argv[2], &b) || a == b)) {
        fprintf(stderr, "usage: %s [CPU_A CPU_B] (two different CPU numbers)\n", argv[0]);
        return 2;
    }
    pthread_t t;
    if (pin(a) || pthread_create(&t, NULL, answer, &b)) {
        fprintf(stderr, "core-latency: cannot pin to CPU %d or start a thread\n", a);
        return 1;
    }
    int s;
    while (!(s = atomic_load_explicit(&started, memory_order_acquire)))
        sched_yield();
    if (s < 0) {
        pthread_join(t, NULL);
        fprintf(stderr, "core-latency: cannot pin to CPU %d\n", b);
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < ROUND_TRIPS; i++) {
        atomic_store_explicit(&turn, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * i + 2)
            ;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(t, NULL);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("core_latency round_trip_ns=%.1f cpus=%d,%d\n", ns / ROUND_TRIPS, a, b);
    return 0;
}
