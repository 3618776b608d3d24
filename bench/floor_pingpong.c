/* floor-pingpong: ping_pong with nothing but its unavoidable part, to show
 * how far crew's channel wait and wake path is from it.
 *
 *   taskset -c 1 build/release/bench/floor-pingpong [PAIRS ROUNDS]
 *
 * One thread, no atomics, no cancellation, no deadlines, no select: P pairs
 * of fibers on crew's own context switch (runtime/switch_*.S, 16 KiB stacks
 * coloured as crew colours them), each pair bouncing a token R times
 * (default 1,000 x 1,000) through two one-slot channels with at most one
 * waiter each; a woken fiber goes to a next slot, the one it displaces to
 * a FIFO, and the next slot yields to the FIFO after 64 runs in a row (crew's
 * streak). Prints
 *   "floor_pingpong half_ns=<ns> roundtrips_per_s=<n> pairs=P rounds=R".
 * Compare with `CREW_BENCH_WORKERS=1 taskset -c 1 crew-bench ping_pong`: the
 * difference is what crew pays for being thread-safe, cancellable, MPMC and
 * selectable (docs/benchmarks.md, eighth session). Exit status 2 on bad
 * arguments, 1 when out of memory or the token sum is wrong. Not a crew
 * program: a measuring stick for one. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "switch.h"

#define STACK_BYTES (16u * 1024u)
#define STREAK_MAX 64u

typedef struct fiber {
    crew__ctx_t ctx;
    struct fiber *qnext;
    struct pair *pair;
} fiber_t;

/* A one-slot channel: an item, or a waiting receiver and its buffer. */
typedef struct {
    uint64_t item;
    int full;
    fiber_t *waiter;
    uint64_t *dst;
} chan_t;

struct pair {
    chan_t ping, pong;
    uint64_t rounds, tok;
};

static fiber_t *current, *next_slot, *fifo_head, *fifo_tail;
static crew__ctx_t main_ctx;
static unsigned streak;

static void fifo_push(fiber_t *f)
{
    f->qnext = NULL;
    if (fifo_tail)
        fifo_tail->qnext = f;
    else
        fifo_head = f;
    fifo_tail = f;
}

static fiber_t *pick(void)
{
    fiber_t *f = next_slot;
    if (f && (streak < STREAK_MAX || !fifo_head)) {
        next_slot = NULL;
        streak++;
        return f;
    }
    streak = 0;
    if ((f = fifo_head)) {
        fifo_head = f->qnext;
        if (!fifo_head)
            fifo_tail = NULL;
    }
    return f; /* NULL: nothing runnable (an empty next slot, an empty FIFO). */
}

static void wake(fiber_t *f)
{
    if (next_slot)
        fifo_push(next_slot);
    next_slot = f;
}

/* Switch to the next runnable fiber, or back to main when none is left. */
static void block(void)
{
    fiber_t *self = current, *n = pick();
    current = n;
    crew__ctx_switch(&self->ctx, n ? &n->ctx : &main_ctx, NULL);
}

static void send(chan_t *c, uint64_t v)
{
    if (c->waiter) {
        fiber_t *w = c->waiter;
        c->waiter = NULL;
        *c->dst = v;
        wake(w);
        return;
    }
    c->item = v;
    c->full = 1;
}

static uint64_t recv(chan_t *c)
{
    uint64_t v;
    if (c->full) {
        c->full = 0;
        return c->item;
    }
    c->waiter = current;
    c->dst = &v;
    block();
    return v;
}

static void ponger(void *arg)
{
    (void)arg;
    struct pair *p = current->pair;
    for (uint64_t i = 0; i < p->rounds; i++)
        send(&p->pong, recv(&p->ping) + 1);
    block(); /* Never resumed. */
}

static void pinger(void *arg)
{
    (void)arg;
    struct pair *p = current->pair;
    uint64_t tok = 0;
    for (uint64_t i = 0; i < p->rounds; i++) {
        send(&p->ping, tok);
        tok = recv(&p->pong) + 1;
    }
    p->tok = tok;
    block();
}

static int parse(const char *s, uint64_t *v)
{
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (*s < '1' || *s > '9' || *end != '\0' || x > 100000000ull)
        return -1;
    *v = x;
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t pairs = 1000, rounds = 1000;
    if (argc != 1 && (argc != 3 || parse(argv[1], &pairs) || parse(argv[2], &rounds))) {
        fprintf(stderr, "usage: %s [PAIRS ROUNDS] (positive integers)\n", argv[0]);
        return 2;
    }
    struct pair *p = calloc(pairs, sizeof *p);
    fiber_t *f = calloc(2 * pairs, sizeof *f);
    char *stacks = mmap(NULL, 2 * pairs * STACK_BYTES, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!p || !f || stacks == MAP_FAILED) {
        fprintf(stderr, "%s: no memory for %llu pairs\n", argv[0], (unsigned long long)pairs);
        return 1;
    }
    for (uint64_t i = 0; i < 2 * pairs; i++) {
        char *lo = stacks + i * STACK_BYTES;
        /* crew__stack_colored_size's colour: 0-15 lines off the top. */
        uint32_t h = (uint32_t)((uintptr_t)lo >> 12) * 0x9E3779B1u;
        f[i].pair = &p[i / 2];
        crew__ctx_make(&f[i].ctx, lo + STACK_BYTES - (h >> 28) * 64u, i % 2 ? pinger : ponger);
        fifo_push(&f[i]);
    }
    for (uint64_t i = 0; i < pairs; i++)
        p[i].rounds = rounds;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((current = pick()))
        crew__ctx_switch(&main_ctx, &current->ctx, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    uint64_t sum = 0;
    for (uint64_t i = 0; i < pairs; i++)
        sum += p[i].tok;
    if (sum != 2 * rounds * pairs) {
        fprintf(stderr, "%s: token sum %llu != %llu\n", argv[0], (unsigned long long)sum,
                (unsigned long long)(2 * rounds * pairs));
        return 1;
    }
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double trips = (double)pairs * (double)rounds;
    printf("floor_pingpong half_ns=%.1f roundtrips_per_s=%.0f pairs=%llu rounds=%llu\n",
           s * 1e9 / (2 * trips), trips / s, (unsigned long long)pairs,
           (unsigned long long)rounds);
    return 0;
}
