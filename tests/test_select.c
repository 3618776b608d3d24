/* Select (include/crew/chan.h): argument checks, the default case
 * (NONBLOCK), exactly one operation completing when several can, fairness,
 * closed channels, waiting on mixed flavours, a select that must not match
 * its own send and receive, cancellation and deadlines while waiting, and a
 * stress over two channels with every value received exactly once. */
#include "test_chan_util.h"

static crew_select_op_t op_recv(crew_chan_t *ch, uint64_t *v)
{
    return (crew_select_op_t){ .chan = ch, .dir = CREW_SELECT_RECV, .item = v };
}

static crew_select_op_t op_send(crew_chan_t *ch, uint64_t *v)
{
    return (crew_select_op_t){ .chan = ch, .dir = CREW_SELECT_SEND, .item = v };
}

static void test_select_invalid(void **state)
{
    (void)state;
    crew_chan_t *ch = chan_new(2);
    uint64_t v = 0;
    crew_select_op_t ops[2] = { op_recv(ch, &v), op_recv(NULL, &v) };
    assert_int_equal(crew_select(NULL, 1, 0), -EINVAL);
    assert_int_equal(crew_select(ops, 0, 0), -EINVAL);
    assert_int_equal(crew_select(ops, 1, 0x40), -EINVAL);
    ops[0].dir = 7;
    assert_int_equal(crew_select(ops, 1, CREW_SELECT_NONBLOCK), -EINVAL);
    ops[0] = op_recv(ch, NULL);
    assert_int_equal(crew_select(ops, 1, CREW_SELECT_NONBLOCK), -EINVAL);
    /* Every operation disabled: nothing could ever complete. */
    assert_int_equal(crew_select(&ops[1], 1, 0), -EINVAL);
    assert_int_equal(crew_select(&ops[1], 1, CREW_SELECT_NONBLOCK), -EAGAIN);
    assert_int_equal(crew_chan_destroy(ch), 0);
}

/* The default case, and exactly one operation completing among ready ones,
 * chosen at random. */
static void test_select_nonblock_one_and_fair(void **state)
{
    (void)state;
    crew_chan_t *a = chan_new(4), *b = chan_new(CREW_CHAN_UNBOUNDED), *full = chan_new(1);
    uint64_t va = 0, vb = 0, vs = 5;
    assert_int_equal(crew_chan_try_send(full, &vs), 0);
    crew_select_op_t ops[3] = { op_recv(a, &va), op_recv(b, &vb), op_send(full, &vs) };
    assert_int_equal(crew_select(ops, 3, CREW_SELECT_NONBLOCK), -EAGAIN);
    /* Both receives ready each round: one of them completes. */
    unsigned chosen[2] = { 0, 0 };
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t x = 1000 + i, y = 2000 + i;
        assert_int_equal(crew_chan_try_send(a, &x), 0);
        assert_int_equal(crew_chan_try_send(b, &y), 0);
        int r = crew_select(ops, 3, CREW_SELECT_NONBLOCK);
        assert_true(r == 0 || r == 1);
        assert_int_equal(ops[r].status, 0);
        assert_int_equal(r == 0 ? va : vb, r == 0 ? x : y);
        chosen[r]++;
        /* The other is untouched: one item left in each that lost. */
        assert_int_equal(crew_chan_len(a) + crew_chan_len(b), 1);
        uint64_t drain;
        assert_int_equal(crew_chan_try_recv(r == 0 ? b : a, &drain), 0);
    }
    /* Random start: both chosen (the chance of either never being chosen
     * in 1000 fair rounds is 2^-999). */
    assert_true(chosen[0] > 0 && chosen[1] > 0);
    fprintf(stderr, "# chosen %u / %u\n", chosen[0], chosen[1]);
    assert_int_equal(crew_chan_destroy(a), 0);
    assert_int_equal(crew_chan_destroy(b), 0);
    assert_int_equal(crew_chan_destroy(full), 0);
}

/* Closed channels complete at once with the closed status. */
static void test_select_all_closed(void **state)
{
    (void)state;
    crew_chan_t *a = chan_new(2), *b = chan_new(0);
    uint64_t va, vb = 1;
    assert_int_equal(crew_chan_close(a), 0);
    assert_int_equal(crew_chan_close(b), 0);
    crew_select_op_t ops[2] = { op_recv(a, &va), op_send(b, &vb) };
    for (int k = 0; k < 2; k++) {
        int r = crew_select(ops, 2, k ? CREW_SELECT_NONBLOCK : 0);
        assert_true(r == 0 || r == 1);
        assert_int_equal(ops[r].status, CREW_CHAN_CLOSED);
    }
    assert_int_equal(crew_chan_destroy(a), 0);
    assert_int_equal(crew_chan_destroy(b), 0);
}

/* A task (or thread) waits in a select over four flavours; a send on one of
 * them completes exactly that operation. */
struct waiter {
    crew_chan_t *ch[4];
    uint64_t v[4];
    crew_select_op_t ops[4];
    int r;
    atomic_int done;
};

static void *select_body(void *arg)
{
    struct waiter *w = arg;
    for (int i = 0; i < 4; i++)
        w->ops[i] = op_recv(w->ch[i], &w->v[i]);
    w->r = crew_select(w->ops, 4, 0);
    atomic_store(&w->done, 1);
    return NULL;
}

static void test_select_wakes_on_each_flavour(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    crew_chan_opts_t o = CREW_CHAN_OPTS_INIT;
    o.flags = CREW_CHAN_ONESHOT;
    for (int thread = 0; thread < 2; thread++) {
        for (int target = 0; target < 4; target++) {
            struct waiter w = { .r = -1 };
            w.ch[0] = chan_new(3);
            w.ch[1] = chan_new(CREW_CHAN_UNBOUNDED);
            w.ch[2] = chan_new(0);
            assert_int_equal(crew_chan_create(sizeof(uint64_t), 1, &o, &w.ch[3]), 0);
            runner_t r;
            runner_start(&r, rt, thread, select_body, &w);
            if (!thread)
                TC_WAIT_UNTIL(crew_task_state(r.task) == CREW_TASK_WAITING);
            uint64_t v = 500 + (uint64_t)target;
            /* A rendezvous send needs the receiver queued: a blocking send
             * from this thread waits for it. */
            assert_int_equal(crew_chan_send(w.ch[target], &v), 0);
            runner_join(&r);
            assert_int_equal(w.r, target);
            assert_int_equal(w.ops[target].status, 0);
            assert_int_equal(w.v[target], v);
            for (int i = 0; i < 4; i++) {
                assert_int_equal(crew_chan_len(w.ch[i]), 0);
                assert_int_equal(crew_chan_destroy(w.ch[i]), 0);
            }
        }
    }
    crew_rt_destroy(rt);
}

/* A select that sends and receives on the same rendezvous channel must not
 * pair with itself. */
static void *self_pair_body(void *arg)
{
    crew_chan_t *ch = arg;
    uint64_t out = 1, in = 0;
    crew_select_op_t ops[2] = { op_send(ch, &out), op_recv(ch, &in) };
    crew_timeout_t sc;
    crew_timeout_begin(&sc, 20 * CREW_MS);
    int r = crew_select(ops, 2, 0);
    crew_timeout_end(&sc);
    return (void *)(intptr_t)r;
}

static void test_select_no_self_pairing(void **state)
{
    (void)state;
    crew_chan_t *ch = chan_new(0);
    uint64_t out = 1, in = 0;
    crew_select_op_t ops[2] = { op_send(ch, &out), op_recv(ch, &in) };
    assert_int_equal(crew_select(ops, 2, CREW_SELECT_NONBLOCK), -EAGAIN);
    void *res = tc_run(self_pair_body, ch);
    assert_int_equal((intptr_t)res, -ETIMEDOUT);
    assert_int_equal(crew_chan_destroy(ch), 0);
}

/* Cancelled while waiting in select: -ECANCELED, and no operation
 * completed (a later send is still there for someone else). */
static void test_select_cancelled(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    struct waiter w = { .r = 1 };
    w.ch[0] = chan_new(1);
    w.ch[1] = chan_new(CREW_CHAN_UNBOUNDED);
    w.ch[2] = chan_new(0);
    w.ch[3] = chan_new(4);
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, select_body, &w, NULL, &t), 0);
    TC_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(crew_task_cancel(t), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(w.r, -ECANCELED);
    /* Nobody is registered any more: each channel can be destroyed. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(crew_chan_destroy(w.ch[i]), 0);
    crew_rt_destroy(rt);
}

/* Two channels; producers send through selects over both, consumers
 * receive through selects over both. Every value arrives exactly once. */
struct sstress {
    crew_chan_t *ch[2];
    uint64_t m;
    unsigned np;
    atomic_uint next;
    atomic_uint producers_left;
    struct ledger ledger;
    struct tc_progress progress;
};

static void *sstress_producer(void *arg)
{
    struct sstress *s = arg;
    uint64_t k = atomic_fetch_add(&s->next, 1);
    for (uint64_t v = s->m * k / s->np; v < s->m * (k + 1) / s->np; v++) {
        uint64_t a = v, b = v;
        crew_select_op_t ops[2] = { op_send(s->ch[0], &a), op_send(s->ch[1], &b) };
        int r = crew_select(ops, 2, 0);
        TC_CHECK(r == 0 || r == 1);
        if (r >= 0)
            TC_CHECK_EQ(ops[r].status, 0);
    }
    /* The last producer closes both channels. */
    if (atomic_fetch_sub(&s->producers_left, 1) == 1) {
        crew_chan_close(s->ch[0]);
        crew_chan_close(s->ch[1]);
    }
    return NULL;
}

static void *sstress_consumer(void *arg)
{
    struct sstress *s = arg;
    crew_select_op_t ops[2];
    uint64_t v[2];
    ops[0] = op_recv(s->ch[0], &v[0]);
    ops[1] = op_recv(s->ch[1], &v[1]);
    while (ops[0].chan || ops[1].chan) {
        int r = crew_select(ops, 2, 0);
        TC_CHECK(r == 0 || r == 1);
        if (r < 0)
            break;
        if (ops[r].status == CREW_CHAN_CLOSED) {
            ops[r].chan = NULL; /* Drained: stop selecting on it. */
            continue;
        }
        TC_CHECK_EQ(ops[r].status, 0);
        ledger_mark(&s->ledger, v[r]);
        atomic_fetch_add_explicit(&s->progress.count, 1, memory_order_relaxed);
    }
    return NULL;
}

static void sstress_run(size_t cap0, size_t cap1, uint64_t m)
{
    crew_rt_t *rt = tc_rt_create();
    enum { NP = 3, NC = 3 };
    struct sstress s = { .ch = { chan_new(cap0), chan_new(cap1) }, .m = m, .np = NP };
    atomic_init(&s.producers_left, NP);
    ledger_init(&s.ledger, m);
    tc_progress_start(&s.progress, "select stress", 10);
    runner_t p[NP], c[NC];
    for (unsigned i = 0; i < NC; i++)
        runner_start(&c[i], rt, i == 1, sstress_consumer, &s);
    for (unsigned i = 0; i < NP; i++)
        runner_start(&p[i], rt, i == 2, sstress_producer, &s);
    for (unsigned i = 0; i < NP; i++)
        runner_join(&p[i]);
    for (unsigned i = 0; i < NC; i++)
        runner_join(&c[i]);
    tc_progress_stop(&s.progress);
    tc_assert_clean();
    ledger_check(&s.ledger);
    assert_int_equal(crew_chan_destroy(s.ch[0]), 0);
    assert_int_equal(crew_chan_destroy(s.ch[1]), 0);
    crew_rt_destroy(rt);
}

static void test_select_stress(void **state)
{
    (void)state;
    tc_reset();
    uint64_t m = 300000 / crew_test_slowdown();
    sstress_run(8, 8, m);                   /* Two rings. */
    sstress_run(4, 0, m / 4);               /* A ring and a rendezvous. */
    sstress_run(0, CREW_CHAN_UNBOUNDED, m / 4); /* Rendezvous and unbounded. */
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_invalid),
        cmocka_unit_test(test_select_nonblock_one_and_fair),
        cmocka_unit_test(test_select_all_closed),
        cmocka_unit_test(test_select_wakes_on_each_flavour),
        cmocka_unit_test(test_select_no_self_pairing),
        cmocka_unit_test(test_select_cancelled),
        cmocka_unit_test(test_select_stress),
    };
    crew_test_watchdog(240);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    fprintf(stderr, "# workers %u\n", crew_test_workers());
    return cmocka_run_group_tests_name("select", tests, NULL, NULL);
}
