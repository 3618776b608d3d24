/* Channels (include/crew/chan.h): argument and size checks (RELIABILITY.md
 * row 34), the semantics of each flavour (bounded, unbounded, rendezvous,
 * oneshot), close with blocked senders and receivers (row 15),
 * linearizability (row 16, crossbeam's `linearizable`), destroy with items
 * inside (row 17), stress over many producers and consumers, tasks and plain
 * threads mixed (every value received exactly once), and the races of a
 * blocked operation against a cancel and against its deadline (exactly one
 * outcome; no item lost or duplicated), and runs that need every wake, with
 * no close at the end to mask a lost one. */
#include "test_chan_util.h"

/* ---- Creation: bad arguments and sizes ------------------------------------ */

static void test_chan_create_invalid(void **state)
{
    (void)state;
    crew_chan_t *ch = NULL;
    crew_chan_opts_t o = CREW_CHAN_OPTS_INIT;
    assert_int_equal(crew_chan_create(8, 4, NULL, NULL), -EINVAL);
    assert_int_equal(crew_chan_create(0, 4, NULL, &ch), -EINVAL);
    assert_int_equal(crew_chan_create(CREW_CHAN_MAX_ELEM + 1, 4, NULL, &ch), -EINVAL);
    o.size = 1;
    assert_int_equal(crew_chan_create(8, 4, &o, &ch), -EINVAL);
    o = (crew_chan_opts_t)CREW_CHAN_OPTS_INIT;
    o.reserved[2] = &o;
    assert_int_equal(crew_chan_create(8, 4, &o, &ch), -EINVAL);
    o = (crew_chan_opts_t)CREW_CHAN_OPTS_INIT;
    o.flags = 0x80;
    assert_int_equal(crew_chan_create(8, 4, &o, &ch), -EINVAL);
    o.flags = CREW_CHAN_ONESHOT;
    assert_int_equal(crew_chan_create(8, 2, &o, &ch), -EINVAL);
    assert_int_equal(crew_chan_create(8, 0, &o, &ch), -EINVAL);
    assert_null(ch);
    /* Invalid handles and items. */
    uint64_t v = 0;
    assert_int_equal(crew_chan_send(NULL, &v), -EINVAL);
    assert_int_equal(crew_chan_recv(NULL, &v), -EINVAL);
    assert_int_equal(crew_chan_try_send(NULL, &v), -EINVAL);
    assert_int_equal(crew_chan_try_recv(NULL, &v), -EINVAL);
    assert_int_equal(crew_chan_close(NULL), -EINVAL);
    assert_int_equal(crew_chan_destroy(NULL), -EINVAL);
    assert_int_equal(crew_chan_len(NULL), 0);
    ch = chan_new(4);
    assert_int_equal(crew_chan_send(ch, NULL), -EINVAL);
    assert_int_equal(crew_chan_recv(ch, NULL), -EINVAL);
    assert_int_equal(crew_chan_try_send(ch, NULL), -EINVAL);
    assert_int_equal(crew_chan_try_recv(ch, NULL), -EINVAL);
    assert_int_equal(crew_chan_destroy(ch), 0);
}

/* Row 34: capacities near SIZE_MAX never wrap into a small ring. */
static void test_chan_size_overflow(void **state)
{
    (void)state;
    crew_chan_t *ch = NULL;
    /* capacity x slot size overflows size_t. */
    assert_int_equal(crew_chan_create(8, SIZE_MAX - 1, NULL, &ch), -EOVERFLOW);
    assert_int_equal(crew_chan_create(16, SIZE_MAX / 16, NULL, &ch), -EOVERFLOW);
    assert_int_equal(crew_chan_create(CREW_CHAN_MAX_ELEM, SIZE_MAX / 1024, NULL, &ch), -EOVERFLOW);
    /* Fits in size_t, but above the ring's bound. */
    assert_int_equal(crew_chan_create(8, CREW_CHAN_MAX_CAPACITY + 1, NULL, &ch), -EINVAL);
    assert_int_equal(crew_chan_create(1, SIZE_MAX / 64, NULL, &ch), -EINVAL);
#if !defined(CREW_ASAN) && !defined(CREW_TSAN)
    /* Within every bound but far beyond memory (the sanitizers' allocators
     * abort on such a request instead of failing it). */
    assert_int_equal(crew_chan_create(CREW_CHAN_MAX_ELEM, CREW_CHAN_MAX_CAPACITY, NULL, &ch),
                     -ENOMEM);
#endif
    assert_null(ch);
    /* SIZE_MAX itself is the unbounded flavour, not an overflow. */
    assert_int_equal(crew_chan_create(CREW_CHAN_MAX_ELEM, CREW_CHAN_UNBOUNDED, NULL, &ch), 0);
    assert_int_equal(crew_chan_destroy(ch), 0);
}

/* ---- Semantics per flavour, from a plain thread ---------------------------- */

static void test_chan_bounded_basic(void **state)
{
    (void)state;
    crew_chan_t *ch = chan_new(4);
    uint64_t v;
    assert_int_equal(crew_chan_try_recv(ch, &v), -EAGAIN);
    /* Several laps, so the stamps' wrap-around is exercised. */
    for (uint64_t lap = 0; lap < 5; lap++) {
        for (uint64_t i = 0; i < 4; i++) {
            v = lap * 10 + i;
            assert_int_equal(crew_chan_try_send(ch, &v), 0);
        }
        assert_int_equal(crew_chan_try_send(ch, &v), -EAGAIN);
        assert_int_equal(crew_chan_len(ch), 4);
        for (uint64_t i = 0; i < 4; i++) {
            assert_int_equal(crew_chan_recv(ch, &v), 0);
            assert_int_equal(v, lap * 10 + i);
        }
        assert_int_equal(crew_chan_len(ch), 0);
    }
    v = 7;
    assert_int_equal(crew_chan_send(ch, &v), 0);
    v = 8;
    assert_int_equal(crew_chan_send(ch, &v), 0);
    assert_int_equal(crew_chan_close(ch), 0);
    assert_int_equal(crew_chan_close(ch), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_try_send(ch, &v), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_send(ch, &v), CREW_CHAN_CLOSED);
    /* Receivers drain, then see the closed code. */
    assert_int_equal(crew_chan_recv(ch, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(crew_chan_try_recv(ch, &v), 0);
    assert_int_equal(v, 8);
    assert_int_equal(crew_chan_recv(ch, &v), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_try_recv(ch, &v), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_destroy(ch), 0);
}

/* Items of an odd size are copied whole. */
static void test_chan_elem_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = { 1, 3, 16, 24, 100, 4096 };
    static const size_t caps[] = { 3, CREW_CHAN_UNBOUNDED };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (size_t c = 0; c < 2; c++) {
            size_t n = sizes[s];
            crew_chan_t *ch = NULL;
            assert_int_equal(crew_chan_create(n, caps[c], NULL, &ch), 0);
            unsigned char *in = malloc(n), *out = malloc(n);
            for (int k = 0; k < 3; k++) {
                memset(in, 'a' + k, n);
                assert_int_equal(crew_chan_send(ch, in), 0);
            }
            for (int k = 0; k < 3; k++) {
                memset(out, 0, n);
                assert_int_equal(crew_chan_recv(ch, out), 0);
                memset(in, 'a' + k, n);
                assert_memory_equal(in, out, n);
            }
            free(in);
            free(out);
            assert_int_equal(crew_chan_destroy(ch), 0);
        }
    }
}

/* A receiver waiting on an empty ring gets the item straight from the
 * sender (the hand-off, chan_ring.c): items of every size arrive whole, the
 * 8-byte ones through the inline copy, the others through hand_over_any. */
struct sized_recv {
    crew_chan_t *ch;
    unsigned char *out;
    int rc;
};

static void *recv_sized(void *arg)
{
    struct sized_recv *r = arg;
    r->rc = crew_chan_recv(r->ch, r->out);
    return NULL;
}

static void test_chan_handoff_elem_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = { 1, 3, 8, 16, 24, 100, 4096 };
    crew_rt_t *rt = tc_rt_create();
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        unsigned char *in = malloc(n), *out = malloc(n + 1);
        assert_non_null(in);
        assert_non_null(out);
        struct sized_recv r = { .out = out };
        assert_int_equal(crew_chan_create(n, 1, NULL, &r.ch), 0);
        memset(out, 0, n + 1);
        crew_task_t *t;
        assert_int_equal(crew_rt_spawn(rt, recv_sized, &r, NULL, &t), 0);
        TC_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_WAITING);
        for (size_t k = 0; k < n; k++)
            in[k] = (unsigned char)(k * 7 + s + 1);
        assert_int_equal(crew_chan_send(r.ch, in), 0);
        assert_int_equal(crew_join(t, NULL), 0);
        assert_int_equal(r.rc, 0);
        assert_memory_equal(in, out, n);
        assert_int_equal(out[n], 0); /* Not one byte more. */
        /* The hand-off used no slot: the ring is still empty. */
        assert_int_equal(crew_chan_len(r.ch), 0);
        assert_int_equal(crew_chan_destroy(r.ch), 0);
        free(in);
        free(out);
    }
    crew_rt_destroy(rt);
}

static void test_chan_unbounded_basic(void **state)
{
    (void)state;
    crew_chan_t *ch = chan_new(CREW_CHAN_UNBOUNDED);
    uint64_t v;
    assert_int_equal(crew_chan_try_recv(ch, &v), -EAGAIN);
    /* Many blocks, consumed in two rounds so that blocks are recycled. */
    for (int round = 0; round < 2; round++) {
        for (uint64_t i = 0; i < 10000; i++)
            assert_int_equal(crew_chan_try_send(ch, &i), 0);
        assert_int_equal(crew_chan_len(ch), 10000);
        for (uint64_t i = 0; i < 10000; i++) {
            assert_int_equal(crew_chan_try_recv(ch, &v), 0);
            assert_int_equal(v, i);
        }
        assert_int_equal(crew_chan_try_recv(ch, &v), -EAGAIN);
    }
    v = 5;
    assert_int_equal(crew_chan_send(ch, &v), 0);
    assert_int_equal(crew_chan_close(ch), 0);
    assert_int_equal(crew_chan_send(ch, &v), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_recv(ch, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(crew_chan_recv(ch, &v), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_destroy(ch), 0);
}

/* Receive one u64 from the channel; returns rc in the high bits' stead: the
 * value is stored in the struct. */
struct one_op {
    crew_chan_t *ch;
    uint64_t v;
    atomic_int rc;
    atomic_int done;
};

static void *recv_one(void *arg)
{
    struct one_op *o = arg;
    atomic_store(&o->rc, crew_chan_recv(o->ch, &o->v));
    atomic_store(&o->done, 1);
    return NULL;
}

static void *send_one(void *arg)
{
    struct one_op *o = arg;
    atomic_store(&o->rc, crew_chan_send(o->ch, &o->v));
    atomic_store(&o->done, 1);
    return NULL;
}

static void test_chan_rendezvous(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    crew_chan_t *ch = chan_new(0);
    uint64_t v = 1;
    /* Nobody on the other side: nothing can complete. */
    assert_int_equal(crew_chan_try_send(ch, &v), -EAGAIN);
    assert_int_equal(crew_chan_try_recv(ch, &v), -EAGAIN);
    assert_int_equal(crew_chan_len(ch), 0);

    /* A waiting receiver (a task) takes a try_send. */
    struct one_op r = { .ch = ch };
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, recv_one, &r, NULL, &t), 0);
    TC_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_WAITING);
    v = 42;
    assert_int_equal(crew_chan_try_send(ch, &v), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.v, 42);

    /* A waiting sender completes only when the item is taken. */
    struct one_op s = { .ch = ch, .v = 43 };
    assert_int_equal(crew_rt_spawn(rt, send_one, &s, NULL, &t), 0);
    TC_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(atomic_load(&s.done), 0);
    assert_int_equal(crew_chan_try_recv(ch, &v), 0);
    assert_int_equal(v, 43);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(s.rc, 0);

    /* A plain thread blocks in recv until a task sends. */
    struct one_op r2 = { .ch = ch };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, recv_one, &r2), 0);
    struct one_op s2 = { .ch = ch, .v = 44 };
    assert_int_equal(crew_rt_spawn(rt, send_one, &s2, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(s2.rc, 0);
    assert_int_equal(r2.rc, 0);
    assert_int_equal(r2.v, 44);

    assert_int_equal(crew_chan_close(ch), 0);
    assert_int_equal(crew_chan_try_recv(ch, &v), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_try_send(ch, &v), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_destroy(ch), 0);
    crew_rt_destroy(rt);
}

static void test_chan_oneshot(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    crew_chan_opts_t o = CREW_CHAN_OPTS_INIT;
    o.flags = CREW_CHAN_ONESHOT;
    crew_chan_t *ch = NULL;
    uint64_t v = 9;
    /* Send first, receive later. */
    assert_int_equal(crew_chan_create(sizeof v, 1, &o, &ch), 0);
    assert_int_equal(crew_chan_send(ch, &v), 0);
    assert_int_equal(crew_chan_send(ch, &v), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_try_send(ch, &v), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_len(ch), 1);
    v = 0;
    assert_int_equal(crew_chan_recv(ch, &v), 0);
    assert_int_equal(v, 9);
    assert_int_equal(crew_chan_recv(ch, &v), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_destroy(ch), 0);

    /* Two receivers wait first: one gets the value, the other the closed code. */
    assert_int_equal(crew_chan_create(sizeof v, 1, &o, &ch), 0);
    struct one_op r[2] = { { .ch = ch }, { .ch = ch } };
    crew_task_t *t[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(crew_rt_spawn(rt, recv_one, &r[i], NULL, &t[i]), 0);
        TC_WAIT_UNTIL(crew_task_state(t[i]) == CREW_TASK_WAITING);
    }
    v = 77;
    assert_int_equal(crew_chan_try_send(ch, &v), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    assert_true((r[0].rc == 0 && r[0].v == 77 && r[1].rc == CREW_CHAN_CLOSED) ||
                (r[1].rc == 0 && r[1].v == 77 && r[0].rc == CREW_CHAN_CLOSED));
    assert_int_equal(crew_chan_close(ch), CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_destroy(ch), 0);
    crew_rt_destroy(rt);
}

/* ---- Row 15: close with blocked senders and receivers ---------------------- */

#define CLOSE_WAITERS 4

/* Wait until the tasks among r[0..n) wait; give the threads a moment to
 * block too (if they have not yet, they find the channel closed at once:
 * the test holds either way, it only covers less). */
static void wait_blocked(runner_t *r, int n)
{
    for (int i = 0; i < n; i++)
        if (!r[i].thread)
            TC_WAIT_UNTIL(crew_task_state(r[i].task) == CREW_TASK_WAITING);
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL);
}

static void test_chan_close_wakes_all(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    for (size_t f = 0; f < NFLAVOURS; f++) {
        size_t cap = FLAVOURS[f].cap;
        /* Receivers block on an empty channel: half tasks, half threads. */
        crew_chan_t *ch = chan_new(cap);
        struct one_op r[CLOSE_WAITERS];
        runner_t rr[CLOSE_WAITERS];
        for (int i = 0; i < CLOSE_WAITERS; i++) {
            r[i] = (struct one_op){ .ch = ch };
            runner_start(&rr[i], rt, i & 1, recv_one, &r[i]);
        }
        wait_blocked(rr, CLOSE_WAITERS);
        assert_int_equal(crew_chan_close(ch), 0);
        for (int i = 0; i < CLOSE_WAITERS; i++) {
            runner_join(&rr[i]);
            assert_int_equal(r[i].rc, CREW_CHAN_CLOSED);
        }
        assert_int_equal(crew_chan_destroy(ch), 0);

        if (cap == CREW_CHAN_UNBOUNDED)
            continue; /* Senders never block there. */
        /* Senders block on a full channel; the buffered items survive. */
        ch = chan_new(cap);
        uint64_t v;
        for (v = 100; v < 100 + cap; v++)
            assert_int_equal(crew_chan_try_send(ch, &v), 0);
        struct one_op s[CLOSE_WAITERS];
        runner_t sr[CLOSE_WAITERS];
        for (int i = 0; i < CLOSE_WAITERS; i++) {
            s[i] = (struct one_op){ .ch = ch, .v = (uint64_t)i };
            runner_start(&sr[i], rt, i & 1, send_one, &s[i]);
        }
        wait_blocked(sr, CLOSE_WAITERS);
        assert_int_equal(crew_chan_close(ch), 0);
        for (int i = 0; i < CLOSE_WAITERS; i++) {
            runner_join(&sr[i]);
            assert_int_equal(s[i].rc, CREW_CHAN_CLOSED);
        }
        for (uint64_t i = 100; i < 100 + cap; i++) {
            assert_int_equal(crew_chan_recv(ch, &v), 0);
            assert_int_equal(v, i);
        }
        assert_int_equal(crew_chan_recv(ch, &v), CREW_CHAN_CLOSED);
        assert_int_equal(crew_chan_destroy(ch), 0);
    }
    crew_rt_destroy(rt);
}

/* ---- Row 16: linearizability ---------------------------------------------- */

struct linear {
    crew_chan_t *ch;
    unsigned iters;
    atomic_ulong failures;
};

static void *linear_body(void *arg)
{
    struct linear *l = arg;
    for (unsigned i = 0; i < l->iters; i++) {
        uint64_t v = i;
        if (crew_chan_send(l->ch, &v) != 0 || crew_chan_try_recv(l->ch, &v) != 0)
            atomic_fetch_add(&l->failures, 1);
    }
    return NULL;
}

static void test_chan_linearizable(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    enum { T = 6 };
    struct linear l = { .iters = 100000 / crew_test_slowdown() };
    /* Capacity T: every party's send finds room, and the item it just sent
     * (or another) is there for its try_recv. */
    l.ch = chan_new(T);
    runner_t r[T];
    for (int i = 0; i < T; i++)
        runner_start(&r[i], rt, i % 3 == 0, linear_body, &l);
    for (int i = 0; i < T; i++)
        runner_join(&r[i]);
    assert_int_equal(atomic_load(&l.failures), 0);
    assert_int_equal(crew_chan_len(l.ch), 0);
    assert_int_equal(crew_chan_destroy(l.ch), 0);
    crew_rt_destroy(rt);
}

/* ---- Row 17: destroy with items inside -------------------------------------- */

#define DTOR_MAX 4096
static unsigned dtor_calls[DTOR_MAX];

static void count_item(void *item, void *ctx)
{
    uint64_t v;
    memcpy(&v, item, sizeof v);
    *(unsigned *)ctx += 1;
    if (v < DTOR_MAX)
        dtor_calls[v]++;
}

/* Create with the counting destructor; send and at once receive [0, taken)
 * (so a ring's head moves on and later sends wrap), then send [taken, sent)
 * and destroy: the destructor must see exactly [taken, sent), once each. */
static void destroy_case(size_t cap, unsigned flags, uint64_t sent, uint64_t taken)
{
    unsigned total = 0;
    memset(dtor_calls, 0, sizeof dtor_calls);
    crew_chan_opts_t o = CREW_CHAN_OPTS_INIT;
    o.flags = flags;
    o.item_free = count_item;
    o.item_free_ctx = &total;
    crew_chan_t *ch = NULL;
    assert_int_equal(crew_chan_create(sizeof(uint64_t), cap, &o, &ch), 0);
    uint64_t v;
    for (uint64_t i = 0; i < taken; i++) {
        assert_int_equal(crew_chan_try_send(ch, &i), 0);
        assert_int_equal(crew_chan_try_recv(ch, &v), 0);
    }
    for (uint64_t i = taken; i < sent; i++)
        assert_int_equal(crew_chan_try_send(ch, &i), 0);
    assert_int_equal(crew_chan_len(ch), sent - taken);
    assert_int_equal(crew_chan_destroy(ch), 0);
    assert_int_equal(total, sent - taken);
    for (uint64_t i = 0; i < DTOR_MAX; i++)
        assert_int_equal(dtor_calls[i], (i >= taken && i < sent) ? 1 : 0);
}

static void test_chan_destroy_items(void **state)
{
    (void)state;
    destroy_case(8, 0, 11, 5);                       /* Wrapped ring: 6 inside. */
    destroy_case(8, 0, 8, 0);                        /* Full ring. */
    destroy_case(8, 0, 0, 0);                        /* Empty. */
    destroy_case(CREW_CHAN_UNBOUNDED, 0, 2000, 700); /* Across blocks. */
    destroy_case(CREW_CHAN_UNBOUNDED, 0, 0, 0);
    destroy_case(1, CREW_CHAN_ONESHOT, 1, 0);
    /* A waiter inside: -EBUSY, nothing freed; after close it can go. */
    crew_rt_t *rt = tc_rt_create();
    crew_chan_t *ch = chan_new(2);
    struct one_op r = { .ch = ch };
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, recv_one, &r, NULL, &t), 0);
    TC_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(crew_chan_destroy(ch), -EBUSY);
    assert_int_equal(crew_chan_close(ch), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(r.rc, CREW_CHAN_CLOSED);
    assert_int_equal(crew_chan_destroy(ch), 0);
    crew_rt_destroy(rt);
}

/* ---- Stress: many producers and consumers, tasks and threads mixed ---------- */

struct stress {
    crew_chan_t *ch;
    uint64_t m;
    unsigned np;
    atomic_uint next_producer;
    struct ledger ledger;
    struct tc_progress progress;
};

static void *stress_producer(void *arg)
{
    struct stress *s = arg;
    uint64_t k = atomic_fetch_add(&s->next_producer, 1);
    for (uint64_t v = s->m * k / s->np; v < s->m * (k + 1) / s->np; v++) {
        int rc = crew_chan_send(s->ch, &v);
        TC_CHECK_EQ(rc, 0);
    }
    return NULL;
}

static void *stress_consumer(void *arg)
{
    struct stress *s = arg;
    for (;;) {
        uint64_t v;
        int rc = crew_chan_recv(s->ch, &v);
        if (rc == CREW_CHAN_CLOSED)
            break;
        TC_CHECK_EQ(rc, 0);
        ledger_mark(&s->ledger, v);
        atomic_fetch_add_explicit(&s->progress.count, 1, memory_order_relaxed);
    }
    return NULL;
}

/* np producers and nc consumers (every third one a plain thread). */
static void stress_run(size_t cap, uint64_t m, unsigned np, unsigned nc)
{
    crew_rt_t *rt = tc_rt_create();
    struct stress s = { .ch = chan_new(cap), .m = m, .np = np };
    ledger_init(&s.ledger, m);
    tc_progress_start(&s.progress, "chan stress", 10);
    runner_t p[8], c[8];
    for (unsigned i = 0; i < nc; i++)
        runner_start(&c[i], rt, i % 3 == 1, stress_consumer, &s);
    for (unsigned i = 0; i < np; i++)
        runner_start(&p[i], rt, i % 3 == 2, stress_producer, &s);
    for (unsigned i = 0; i < np; i++)
        runner_join(&p[i]);
    assert_int_equal(crew_chan_close(s.ch), 0);
    for (unsigned i = 0; i < nc; i++)
        runner_join(&c[i]);
    tc_progress_stop(&s.progress);
    tc_assert_clean();
    ledger_check(&s.ledger);
    assert_int_equal(crew_chan_destroy(s.ch), 0);
    crew_rt_destroy(rt);
}

static void test_chan_stress_bounded(void **state)
{
    (void)state;
    tc_reset();
    uint64_t m = 2000000 / crew_test_slowdown();
    stress_run(64, m, 4, 4);
    /* Capacity 1: nearly every message wakes someone, and the plain threads
     * among the parties pay a futex round trip per wake. */
    stress_run(1, m / 50, 3, 5);
}

/* ---- FIFO through the hand-offs ---------------------------------------------- */

/* Values are (producer << 32) | seq. Each consumer checks that the values of
 * any one producer reach it in increasing order: a FIFO channel cannot
 * deliver a producer's later item before one it sent earlier, whether the
 * item went through the ring or straight to a waiting party (a hand-off
 * that skipped an item still in the ring would break this). */
enum { FIFO_P = 3, FIFO_C = 4 };

struct fifo {
    crew_chan_t *ch;
    uint64_t per_producer;
    atomic_uint next_producer;
    atomic_ulong received, disorder;
};

static void *fifo_producer(void *arg)
{
    struct fifo *f = arg;
    uint64_t k = atomic_fetch_add(&f->next_producer, 1);
    for (uint64_t i = 0; i < f->per_producer; i++) {
        uint64_t v = k << 32 | i;
        TC_CHECK_EQ(crew_chan_send(f->ch, &v), 0);
    }
    return NULL;
}

static void *fifo_consumer(void *arg)
{
    struct fifo *f = arg;
    int64_t last[FIFO_P] = { -1, -1, -1 };
    uint64_t v;
    int rc;
    while ((rc = crew_chan_recv(f->ch, &v)) == 0) {
        uint64_t k = v >> 32;
        int64_t seq = (int64_t)(v & 0xFFFFFFFFu);
        if (k >= FIFO_P || seq <= last[k])
            atomic_fetch_add(&f->disorder, 1);
        else
            last[k] = seq;
        atomic_fetch_add_explicit(&f->received, 1, memory_order_relaxed);
    }
    TC_CHECK_EQ(rc, CREW_CHAN_CLOSED);
    return NULL;
}

/* np producers (the last one a plain thread when producer_thread), nc
 * consumers (every one a plain thread when consumer_threads, else the
 * second). */
static void fifo_run(crew_rt_t *rt, size_t cap, int np, int nc, bool producer_thread,
                     bool consumer_threads)
{
    struct fifo f = { .ch = chan_new(cap), .per_producer = 100000 / crew_test_slowdown() };
    runner_t p[FIFO_P], c[FIFO_C];
    for (int i = 0; i < nc; i++)
        runner_start(&c[i], rt, consumer_threads || i == 1, fifo_consumer, &f);
    for (int i = 0; i < np; i++)
        runner_start(&p[i], rt, producer_thread && i == np - 1, fifo_producer, &f);
    for (int i = 0; i < np; i++)
        runner_join(&p[i]);
    assert_int_equal(crew_chan_close(f.ch), 0);
    for (int i = 0; i < nc; i++)
        runner_join(&c[i]);
    tc_assert_clean();
    assert_int_equal(atomic_load(&f.disorder), 0);
    assert_int_equal(atomic_load(&f.received), (uint64_t)np * f.per_producer);
    assert_int_equal(crew_chan_destroy(f.ch), 0);
}

static void test_chan_fifo_handoff(void **state)
{
    (void)state;
    tc_reset();
    crew_rt_t *rt = tc_rt_create();
    /* More consumers than items fit: receivers wait on an empty ring while
     * senders wait on a full one, so both hand-offs run. */
    for (size_t fl = 0; fl < NFLAVOURS; fl++)
        fifo_run(rt, FLAVOURS[fl].cap, FIFO_P, FIFO_C, true, false);
    /* One fast producer, slow (futex-woken) consumers: items sit in the ring
     * while other receivers still wait, the case a hand-off must not skip. */
    fifo_run(rt, 1, 1, FIFO_C, false, true);
    fifo_run(rt, 2, 1, FIFO_C, false, true);
    crew_rt_destroy(rt);
}

static void test_chan_stress_unbounded(void **state)
{
    (void)state;
    tc_reset();
    stress_run(CREW_CHAN_UNBOUNDED, 1000000 / crew_test_slowdown(), 4, 4);
}

static void test_chan_stress_rendezvous(void **state)
{
    (void)state;
    tc_reset();
    stress_run(0, 200000 / crew_test_slowdown(), 4, 3);
}

/* ---- Races: a blocked operation against a cancel or its deadline ----------- */

/* try_recv until it succeeds (a sender may still be on its way), bounded
 * so that a lost item fails instead of hanging. */
static int recv_eventually(crew_chan_t *ch, uint64_t *v)
{
    int64_t limit = crew_now() + TC_WAIT_LIMIT_NS * (int64_t)crew_test_slowdown();
    int rc;
    while ((rc = crew_chan_try_recv(ch, v)) == -EAGAIN && crew_now() < limit)
        sched_yield();
    return rc;
}

/* A receiver blocked in recv is cancelled while a sender sends: either recv
 * returns the item, or -ECANCELED and the item is still in the channel. */
static void test_chan_cancel_vs_send(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    unsigned iters = 300 / crew_test_slowdown() + 10;
    for (size_t f = 0; f < NFLAVOURS; f++) {
        unsigned got = 0, cancelled = 0;
        for (unsigned it = 0; it < iters; it++) {
            crew_chan_t *ch = chan_new(FLAVOURS[f].cap);
            struct one_op r = { .ch = ch, .v = UINT64_MAX };
            struct one_op s = { .ch = ch, .v = it };
            crew_task_t *rt_task, *st_task;
            assert_int_equal(crew_rt_spawn(rt, recv_one, &r, NULL, &rt_task), 0);
            TC_WAIT_UNTIL(crew_task_state(rt_task) == CREW_TASK_WAITING);
            assert_int_equal(crew_rt_spawn(rt, send_one, &s, NULL, &st_task), 0);
            if (it & 1)
                sched_yield();
            int crc = crew_task_cancel(rt_task);
            assert_true(crc == 0 || crc == -ESRCH);
            assert_int_equal(crew_join(rt_task, NULL), 0);
            uint64_t v = UINT64_MAX;
            if (r.rc == 0) {
                assert_int_equal(r.v, it);
                got++;
            } else {
                assert_int_equal(r.rc, -ECANCELED);
                /* Still there (for a rendezvous: its sender still waits). */
                assert_int_equal(recv_eventually(ch, &v), 0);
                assert_int_equal(v, it);
                cancelled++;
            }
            assert_int_equal(crew_join(st_task, NULL), 0);
            assert_int_equal(s.rc, 0);
            assert_int_equal(crew_chan_try_recv(ch, &v), -EAGAIN);
            assert_int_equal(crew_chan_destroy(ch), 0);
        }
        fprintf(stderr, "# %s: delivered %u, cancelled %u\n", FLAVOURS[f].name, got, cancelled);
    }
    crew_rt_destroy(rt);
}

/* Two receivers wait on a ring; the first is cancelled just before an item
 * arrives. The send's notification may go to the cancelled one: it must
 * pass it on, or the second receiver sleeps next to an item. */
static void test_chan_cancel_passes_wakeup_on(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    unsigned iters = 300 / crew_test_slowdown() + 10, first_got = 0;
    for (unsigned it = 0; it < iters; it++) {
        crew_chan_t *ch = chan_new(1);
        struct one_op r1 = { .ch = ch }, r2 = { .ch = ch };
        crew_task_t *t1, *t2;
        assert_int_equal(crew_rt_spawn(rt, recv_one, &r1, NULL, &t1), 0);
        TC_WAIT_UNTIL(crew_task_state(t1) == CREW_TASK_WAITING);
        assert_int_equal(crew_rt_spawn(rt, recv_one, &r2, NULL, &t2), 0);
        TC_WAIT_UNTIL(crew_task_state(t2) == CREW_TASK_WAITING);
        uint64_t v = 1;
        assert_int_equal(crew_task_cancel(t1), 0);
        assert_int_equal(crew_chan_try_send(ch, &v), 0);
        assert_int_equal(crew_join(t1, NULL), 0);
        if (r1.rc == 0) {
            /* The first took it: give the second one too. */
            first_got++;
            assert_int_equal(crew_chan_try_send(ch, &v), 0);
        } else {
            assert_int_equal(r1.rc, -ECANCELED);
        }
        /* A lost notification shows up here as a receiver that never wakes. */
        TC_WAIT_UNTIL(atomic_load(&r2.done));
        assert_int_equal(crew_join(t2, NULL), 0);
        assert_int_equal(r2.rc, 0);
        assert_int_equal(crew_chan_destroy(ch), 0);
    }
    fprintf(stderr, "# first receiver got the item %u of %u times\n", first_got, iters);
    crew_rt_destroy(rt);
}

/* A sender blocked on a full channel is cancelled while a receiver makes
 * room: either send returns 0 and its item arrives, or -ECANCELED and it
 * never does. */
static void test_chan_cancel_blocked_sender(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    unsigned iters = 300 / crew_test_slowdown() + 10;
    static const size_t caps[] = { 1, 0 };
    for (size_t f = 0; f < 2; f++) {
        for (unsigned it = 0; it < iters; it++) {
            crew_chan_t *ch = chan_new(caps[f]);
            uint64_t first = 1000;
            if (caps[f])
                assert_int_equal(crew_chan_try_send(ch, &first), 0);
            struct one_op s = { .ch = ch, .v = 2000 };
            struct one_op r = { .ch = ch };
            crew_task_t *st_task, *rt_task;
            assert_int_equal(crew_rt_spawn(rt, send_one, &s, NULL, &st_task), 0);
            TC_WAIT_UNTIL(crew_task_state(st_task) == CREW_TASK_WAITING);
            assert_int_equal(crew_rt_spawn(rt, recv_one, &r, NULL, &rt_task), 0);
            if (it & 1)
                sched_yield();
            int crc = crew_task_cancel(st_task);
            assert_true(crc == 0 || crc == -ESRCH);
            assert_int_equal(crew_join(st_task, NULL), 0);
            /* Collect everything that arrived. */
            assert_int_equal(crew_chan_close(ch), 0);
            assert_int_equal(crew_join(rt_task, NULL), 0);
            uint64_t seen_first = 0, seen_second = 0, v;
            if (r.rc == 0) {
                seen_first += r.v == 1000;
                seen_second += r.v == 2000;
            }
            while (crew_chan_try_recv(ch, &v) == 0) {
                seen_first += v == 1000;
                seen_second += v == 2000;
            }
            if (caps[f])
                assert_int_equal(seen_first, 1);
            if (s.rc == 0) {
                assert_int_equal(seen_second, 1);
            } else {
                assert_true(s.rc == -ECANCELED || s.rc == CREW_CHAN_CLOSED);
                assert_int_equal(seen_second, 0);
            }
            assert_int_equal(crew_chan_destroy(ch), 0);
        }
    }
    crew_rt_destroy(rt);
}

/* A receiver in a deadline scope races its deadline against a send. */
struct timed_recv {
    crew_chan_t *ch;
    int64_t ns;
    uint64_t v;
    int rc;
};

static void *timed_recv_body(void *arg)
{
    struct timed_recv *t = arg;
    crew_timeout_t sc;
    int rc = crew_timeout_begin(&sc, t->ns);
    TC_CHECK_EQ(rc, 0);
    t->rc = crew_chan_recv(t->ch, &t->v);
    int expired = crew_timeout_end(&sc);
    TC_CHECK_EQ(expired, t->rc == -ETIMEDOUT);
    return NULL;
}

static void test_chan_timeout_vs_send(void **state)
{
    (void)state;
    tc_reset();
    crew_rt_t *rt = tc_rt_create();
    uint64_t seed = crew_test_seed();
    unsigned iters = 300 / crew_test_slowdown() + 10;
    for (size_t f = 0; f < NFLAVOURS; f++) {
        unsigned got = 0, timed_out = 0;
        for (unsigned it = 0; it < iters; it++) {
            crew_chan_t *ch = chan_new(FLAVOURS[f].cap);
            struct timed_recv t = { .ch = ch, .ns = (int64_t)(crew_test_rand(&seed) % 100) * CREW_US,
                                    .v = UINT64_MAX };
            crew_task_t *task;
            assert_int_equal(crew_rt_spawn(rt, timed_recv_body, &t, NULL, &task), 0);
            struct one_op s = { .ch = ch, .v = it };
            crew_task_t *st_task;
            /* The send may land before, during or after the wait. */
            if (crew_test_rand(&seed) & 1)
                crew_sleep((int64_t)(crew_test_rand(&seed) % 100) * CREW_US);
            assert_int_equal(crew_rt_spawn(rt, send_one, &s, NULL, &st_task), 0);
            assert_int_equal(crew_join(task, NULL), 0);
            uint64_t v = UINT64_MAX;
            if (t.rc == 0) {
                assert_int_equal(t.v, it);
                got++;
            } else {
                assert_int_equal(t.rc, -ETIMEDOUT);
                assert_int_equal(recv_eventually(ch, &v), 0);
                assert_int_equal(v, it);
                timed_out++;
            }
            assert_int_equal(crew_join(st_task, NULL), 0);
            assert_int_equal(s.rc, 0);
            assert_int_equal(crew_chan_try_recv(ch, &v), -EAGAIN);
            assert_int_equal(crew_chan_destroy(ch), 0);
        }
        fprintf(stderr, "# %s: delivered %u, timed out %u\n", FLAVOURS[f].name, got, timed_out);
    }
    crew_rt_destroy(rt);
    tc_assert_clean();
}

/* Cancellation is checked even when the operation would not wait, and a
 * shield region lets the operation through. */
struct sticky {
    crew_chan_t *ch;
    int send_rc, recv_rc, try_rc, shielded_rc;
};

static void *sticky_body(void *arg)
{
    struct sticky *s = arg;
    crew_task_cancel(crew_self());
    uint64_t v = 5;
    s->send_rc = crew_chan_send(s->ch, &v);
    s->try_rc = crew_chan_try_send(s->ch, &v);
    s->recv_rc = crew_chan_recv(s->ch, &v);
    crew_shield_begin();
    s->shielded_rc = crew_chan_recv(s->ch, &v);
    crew_shield_end();
    return NULL;
}

static void test_chan_cancel_sticky(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    struct sticky s = { .ch = chan_new(4) };
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, sticky_body, &s, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(s.send_rc, -ECANCELED);
    assert_int_equal(s.try_rc, 0);
    assert_int_equal(s.recv_rc, -ECANCELED);
    assert_int_equal(s.shielded_rc, 0);
    assert_int_equal(crew_chan_len(s.ch), 0);
    assert_int_equal(crew_chan_destroy(s.ch), 0);
    crew_rt_destroy(rt);
}

/* ---- Every wake counts: no close at the end to mask a lost one --------------- */

/* The stress tests close their channel when the producers are done, and a
 * close wakes every waiter: a receiver whose item-wake was lost then takes
 * the item anyway, and the test passes. Here nothing is ever closed while
 * the test runs: each round needs every wake it makes (a strict ping-pong,
 * or a barrier after each round of items), so one lost wake stalls the
 * round. The run is bounded by a time budget (not a timing assertion: only
 * the number of rounds depends on it); a stall of STALL_S seconds fails the
 * test, after closing the channels to let the stuck parties go. These catch
 * a missing store-load fence between a waiter's registration and its
 * re-check of the ring (chan_ring.c), and a send that skips the wake of a
 * receiver that is already queued. */
#define STALL_S 5

struct every {
    crew_chan_t *ping, *pong;
    crew_barrier_t round;
    int64_t deadline;
    atomic_ulong progress;
    atomic_uint done;
    atomic_bool quit; /* Set on a stall, for parties that spin. */
    unsigned receivers;
};

static void every_init(struct every *e, unsigned receivers)
{
    *e = (struct every){ .ping = chan_new(1), .pong = chan_new(1), .receivers = receivers };
    assert_int_equal(crew_barrier_init(&e->round, receivers + 1), 0);
    e->deadline = crew_now() + 2 * CREW_S / crew_test_slowdown();
}

/* Poll (this thread is not a party) until want parties are done; false if
 * progress stopped for STALL_S seconds first. */
static bool every_wait(struct every *e, unsigned want)
{
    unsigned long last = atomic_load(&e->progress);
    int64_t since = crew_now();
    while (atomic_load(&e->done) < want) {
        unsigned long now = atomic_load(&e->progress);
        if (now != last) {
            last = now;
            since = crew_now();
        } else if (crew_now() - since > STALL_S * CREW_S * (int64_t)crew_test_slowdown()) {
            return false;
        }
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    return true;
}

/* Join the parties; on a stall, first close the channels and abort the
 * barrier so that they return, then fail with the count. */
static void every_finish(struct every *e, runner_t *r, unsigned n)
{
    bool ok = every_wait(e, n);
    unsigned long rounds = atomic_load(&e->progress);
    if (!ok) {
        atomic_store(&e->quit, true);
        crew_chan_close(e->ping);
        crew_chan_close(e->pong);
        crew_barrier_abort(&e->round);
    }
    for (unsigned i = 0; i < n; i++)
        runner_join(&r[i]);
    if (!ok)
        fail_msg("stalled after %lu operations with no close: a wake was lost", rounds);
    tc_assert_clean();
    assert_int_equal(crew_chan_len(e->ping), 0);
    assert_int_equal(crew_chan_len(e->pong), 0);
    assert_int_equal(crew_chan_destroy(e->ping), 0);
    assert_int_equal(crew_chan_destroy(e->pong), 0);
    assert_int_equal(crew_barrier_destroy(&e->round), 0);
}

/* Ping-pong on two capacity-1 rings: each side mostly finds the ring empty
 * and queues just as the other side sends, the race the fence decides. */
static void *pinger(void *arg)
{
    struct every *e = arg;
    uint64_t v = 0, stop = UINT64_MAX;
    for (;;) {
        bool last = crew_now() >= e->deadline;
        uint64_t out = last ? stop : v;
        if (crew_chan_send(e->ping, &out) || crew_chan_recv(e->pong, &v))
            break; /* Closed after a stall. */
        atomic_fetch_add_explicit(&e->progress, 1, memory_order_relaxed);
        if (last) {
            TC_CHECK_EQ(v, stop);
            break;
        }
        TC_CHECK_EQ(v, out + 1);
    }
    atomic_fetch_add(&e->done, 1);
    return NULL;
}

static void *ponger(void *arg)
{
    struct every *e = arg;
    uint64_t v;
    while (crew_chan_recv(e->ping, &v) == 0) {
        uint64_t out = v == UINT64_MAX ? v : v + 1;
        if (crew_chan_send(e->pong, &out) || v == UINT64_MAX)
            break;
        atomic_fetch_add_explicit(&e->progress, 1, memory_order_relaxed);
    }
    atomic_fetch_add(&e->done, 1);
    return NULL;
}

static void test_chan_pingpong_no_close(void **state)
{
    (void)state;
    tc_reset();
    crew_rt_t *rt = tc_rt_create();
    /* Two tasks (on two workers when there are), then a task and a thread. */
    for (int thread = 0; thread < 2; thread++) {
        struct every e;
        every_init(&e, 1);
        runner_t r[2];
        runner_start(&r[0], rt, false, pinger, &e);
        runner_start(&r[1], rt, thread, ponger, &e);
        every_finish(&e, r, 2);
    }
    crew_rt_destroy(rt);
}

/* Two plain threads, so the race does not depend on the scheduler placing
 * two tasks on two workers: the receiver takes an item and at once waits
 * for the next, finding the ring empty and registering; the sender waits
 * until the item was taken and then sends the next one after a random
 * pause of up to a few hundred cycles, so that its push lands at every
 * point of the registration, including between the queueing and the
 * re-check of the ring: the store-load window the fence closes. */
static void *register_receiver(void *arg)
{
    struct every *e = arg;
    uint64_t v;
    while (crew_chan_recv(e->ping, &v) == 0 && v != UINT64_MAX)
        atomic_fetch_add_explicit(&e->progress, 1, memory_order_relaxed);
    atomic_fetch_add(&e->done, 1);
    return NULL;
}

static void *register_sender(void *arg)
{
    struct every *e = arg;
    uint64_t seed = crew_test_seed();
    for (uint64_t i = 0;; i++) {
        while (atomic_load_explicit(&e->progress, memory_order_relaxed) != i)
            if (atomic_load_explicit(&e->quit, memory_order_relaxed))
                goto out;
        for (unsigned d = crew_test_rand(&seed) % 256; d; d--)
            atomic_signal_fence(memory_order_seq_cst); /* A delay the compiler keeps. */
        uint64_t v = crew_now() >= e->deadline ? UINT64_MAX : i;
        if (crew_chan_send(e->ping, &v) || v == UINT64_MAX)
            break;
    }
out:
    atomic_fetch_add(&e->done, 1);
    return NULL;
}

static void test_chan_register_race(void **state)
{
    (void)state;
    tc_reset();
    struct every e;
    every_init(&e, 1);
    runner_t r[2];
    runner_start(&r[0], NULL, true, register_receiver, &e);
    runner_start(&r[1], NULL, true, register_sender, &e);
    every_finish(&e, r, 2);
}

/* Receivers park on an empty ring; a sender sends one item per receiver,
 * then all meet at a barrier, round after round: every receiver must get
 * its item by a wake, since no close ever comes to wake it otherwise. */
enum { EVERY_R = 4 };

static void *round_sender(void *arg)
{
    struct every *e = arg;
    for (uint64_t round = 0;; round++) {
        bool last = crew_now() >= e->deadline;
        /* Each receiver takes one item a round: the last round's items
         * tell every receiver to stop after it. */
        uint64_t v = last ? UINT64_MAX : round;
        bool failed = false;
        for (unsigned i = 0; i < e->receivers && !failed; i++)
            failed = crew_chan_send(e->ping, &v) != 0;
        int rc = failed ? -EPIPE : crew_barrier_wait(&e->round);
        if (rc < 0 && rc != CREW_BARRIER_SERIAL)
            break; /* Closed or aborted after a stall. */
        if (last)
            break;
    }
    atomic_fetch_add(&e->done, 1);
    return NULL;
}

static void *round_receiver(void *arg)
{
    struct every *e = arg;
    uint64_t v;
    while (crew_chan_recv(e->ping, &v) == 0) {
        atomic_fetch_add_explicit(&e->progress, 1, memory_order_relaxed);
        int rc = crew_barrier_wait(&e->round);
        if ((rc < 0 && rc != CREW_BARRIER_SERIAL) || v == UINT64_MAX)
            break;
    }
    atomic_fetch_add(&e->done, 1);
    return NULL;
}

static void test_chan_recv_wakes_without_close(void **state)
{
    (void)state;
    tc_reset();
    crew_rt_t *rt = tc_rt_create();
    struct every e;
    every_init(&e, EVERY_R);
    runner_t r[EVERY_R + 1];
    /* Half the receivers are plain threads (futex waiters on the same
     * queue), which race the tasks in parallel whatever the worker count. */
    for (unsigned i = 0; i < EVERY_R; i++)
        runner_start(&r[i], rt, i % 2, round_receiver, &e);
    runner_start(&r[EVERY_R], rt, false, round_sender, &e);
    every_finish(&e, r, EVERY_R + 1);
    crew_rt_destroy(rt);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chan_create_invalid),
        cmocka_unit_test(test_chan_size_overflow),
        cmocka_unit_test(test_chan_bounded_basic),
        cmocka_unit_test(test_chan_elem_sizes),
        cmocka_unit_test(test_chan_handoff_elem_sizes),
        cmocka_unit_test(test_chan_unbounded_basic),
        cmocka_unit_test(test_chan_rendezvous),
        cmocka_unit_test(test_chan_oneshot),
        cmocka_unit_test(test_chan_close_wakes_all),
        cmocka_unit_test(test_chan_linearizable),
        cmocka_unit_test(test_chan_destroy_items),
        cmocka_unit_test(test_chan_stress_bounded),
        cmocka_unit_test(test_chan_stress_unbounded),
        cmocka_unit_test(test_chan_stress_rendezvous),
        cmocka_unit_test(test_chan_fifo_handoff),
        cmocka_unit_test(test_chan_cancel_vs_send),
        cmocka_unit_test(test_chan_cancel_passes_wakeup_on),
        cmocka_unit_test(test_chan_cancel_blocked_sender),
        cmocka_unit_test(test_chan_timeout_vs_send),
        cmocka_unit_test(test_chan_cancel_sticky),
        cmocka_unit_test(test_chan_pingpong_no_close),
        cmocka_unit_test(test_chan_recv_wakes_without_close),
        cmocka_unit_test(test_chan_register_race),
    };
    crew_test_watchdog(240);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    fprintf(stderr, "# workers %u\n", crew_test_workers());
    return cmocka_run_group_tests_name("chan", tests, NULL, NULL);
}
