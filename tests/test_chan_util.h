/* Helpers shared by the channel and select tests: bodies that run either as
 * a crew task or as a plain thread (channels serve both), the flavours to
 * loop over, and the conservation check of the stress tests (every value
 * received exactly once). */
#ifndef CREW_TESTS_CHAN_UTIL_H
#define CREW_TESTS_CHAN_UTIL_H

#include "task_util.h"

/* A body running as a task of rt or as a plain thread. */
typedef struct runner {
    bool thread;
    pthread_t th;
    crew_task_t *task;
} runner_t;

static inline void runner_start(runner_t *r, crew_rt_t *rt, bool thread, crew_fn_t fn, void *arg)
{
    r->thread = thread;
    if (thread)
        assert_int_equal(pthread_create(&r->th, NULL, fn, arg), 0);
    else
        assert_int_equal(crew_rt_spawn(rt, fn, arg, NULL, &r->task), 0);
}

static inline void *runner_join(runner_t *r)
{
    void *res = NULL;
    if (r->thread)
        assert_int_equal(pthread_join(r->th, &res), 0);
    else
        assert_true(crew_join(r->task, &res) == 0 || res == CREW_TASK_CANCELED);
    return res;
}

/* The flavours, by capacity (oneshot has its own tests). */
struct flavour {
    const char *name;
    size_t cap;
};

static const struct flavour FLAVOURS[] = {
    { "bounded1", 1 },
    { "bounded16", 16 },
    { "unbounded", CREW_CHAN_UNBOUNDED },
    { "rendezvous", 0 },
};
#define NFLAVOURS (sizeof FLAVOURS / sizeof FLAVOURS[0])

static inline crew_chan_t *chan_new(size_t cap)
{
    crew_chan_t *ch = NULL;
    assert_int_equal(crew_chan_create(sizeof(uint64_t), cap, NULL, &ch), 0);
    assert_non_null(ch);
    return ch;
}

/* Per-value receipt marks for m values: a value received twice, or never,
 * fails the test. */
struct ledger {
    uint64_t m;
    _Atomic uint8_t *seen;
    atomic_ulong received, dups, out_of_range;
};

static inline void ledger_init(struct ledger *l, uint64_t m)
{
    l->m = m;
    l->seen = calloc(m ? m : 1, 1);
    assert_non_null(l->seen);
    atomic_init(&l->received, 0);
    atomic_init(&l->dups, 0);
    atomic_init(&l->out_of_range, 0);
}

/* Record one received value (any thread). */
static inline void ledger_mark(struct ledger *l, uint64_t v)
{
    if (v >= l->m) {
        atomic_fetch_add(&l->out_of_range, 1);
        return;
    }
    if (atomic_exchange_explicit(&l->seen[v], 1, memory_order_relaxed))
        atomic_fetch_add(&l->dups, 1);
    atomic_fetch_add_explicit(&l->received, 1, memory_order_relaxed);
}

/* On the test thread, after every receiver is joined: all m values seen
 * exactly once. */
static inline void ledger_check(struct ledger *l)
{
    assert_int_equal(atomic_load(&l->out_of_range), 0);
    assert_int_equal(atomic_load(&l->dups), 0);
    assert_int_equal(atomic_load(&l->received), l->m);
    for (uint64_t v = 0; v < l->m; v++)
        if (!atomic_load_explicit(&l->seen[v], memory_order_relaxed))
            fail_msg("value %llu lost", (unsigned long long)v);
    free((void *)l->seen);
}

#endif
