/* Cancel and deadline racing a wake (RELIABILITY.md row 12), for the mutex,
 * the semaphore, the condition variable and both directions of a queue.
 *
 * Each round: waiter A, then waiter B queue on the primitive. A plain
 * thread (the lane) then does the releasing action (unlock, release,
 * notify, put, get) while A is cancelled by a task on another worker, or
 * while A's deadline scope expires. Exactly one outcome must result for A
 * (it got what was handed over, or it reports the interruption and got
 * nothing), and B must get through without a second action unless A took
 * the first: an interrupted A passes the hand-off on. Counts (permits,
 * items, lock state) are checked every round; a lost hand-off leaves B
 * waiting, which the round reports as a failure. */
#include "task_util.h"

enum prim { P_MUTEX, P_SEM, P_COND, P_QGET, P_QPUT, P_N };
static const char *const prim_name[P_N] = { "mutex", "sem", "cond", "queue-get", "queue-put" };

#define RACE_LANES 2
#define RACE_ROUNDS 5000 /* Per primitive and mode, over all lanes. */
/* Wall-clock budget per primitive and mode, whatever the build. */
#define RACE_BUDGET_NS (3 * CREW_S)

/* Items of the queue rounds. */
#define FILLER ((void *)(uintptr_t)0xF111)
#define ITEM_A ((void *)(uintptr_t)0xA)
#define ITEM_B ((void *)(uintptr_t)0xB)
#define ITEM_1 ((void *)(uintptr_t)0x1)
#define ITEM_2 ((void *)(uintptr_t)0x2)

struct race_totals {
    atomic_ulong a_ok, a_interrupted;
};

struct lane {
    crew_rt_t *rt;
    enum prim prim;
    bool timeout;
    uint64_t rng;
    unsigned rounds, done;
    int64_t budget_end;
    struct race_totals *tot;
    atomic_ulong *progress;
    pthread_t thread;

    crew_mutex_t m;
    crew_sem_t s;
    crew_cond_t c;
    crew_queue_t *q;
    crew_task_t *a;      /* The canceller's target. */
    unsigned cancel_spin;
    int64_t a_timeout;   /* Deadline scope of A, in timeout mode. */
    void *got[2];        /* Item each waiter got (queue-get). */
    bool ready;          /* Cond: a notification's token, under m. */
};

static void spin(unsigned n)
{
    for (volatile unsigned i = 0; i < n; i++)
        continue;
}

/* One waiter's wait; returns its status. who: 0 for A, 1 for B. */
static int wait_once(struct lane *l, int who)
{
    int rc;
    void *item = NULL;
    switch (l->prim) {
    case P_MUTEX:
        rc = crew_mutex_lock(&l->m);
        if (!rc)
            TC_CHECK_EQ(crew_mutex_unlock(&l->m), 0);
        return rc;
    case P_SEM:
        return crew_sem_acquire(&l->s);
    case P_COND:
        /* A waits once: its outcome is the race's. B waits for the token
         * with the predicate loop, as real code does: it may still be on its
         * way into the wait (blocked on the mutex that a timed-out A holds)
         * when the token is posted. */
        TC_CHECK_EQ(crew_mutex_lock(&l->m), 0);
        if (who) {
            rc = 0;
            while (!rc && !l->ready)
                rc = crew_cond_wait(&l->c, &l->m);
        } else {
            rc = crew_cond_wait(&l->c, &l->m);
        }
        /* Held again whatever happened. */
        TC_CHECK_EQ(crew_mutex_trylock(&l->m), -EBUSY);
        if (!rc) {
            TC_CHECK(l->ready);
            l->ready = false;
        }
        TC_CHECK_EQ(crew_mutex_unlock(&l->m), 0);
        return rc;
    case P_QGET:
        rc = crew_queue_get(l->q, &item);
        l->got[who] = rc ? NULL : item;
        return rc;
    case P_QPUT:
        return crew_queue_put(l->q, who ? ITEM_B : ITEM_A);
    default:
        return -EINVAL;
    }
}

static void *waiter_a(void *arg)
{
    struct lane *l = arg;
    int rc;
    if (l->timeout) {
        crew_timeout_t s;
        TC_CHECK_EQ(crew_timeout_begin(&s, l->a_timeout), 0);
        rc = wait_once(l, 0);
        TC_CHECK_EQ(crew_timeout_end(&s), rc == -ETIMEDOUT);
    } else {
        rc = wait_once(l, 0);
    }
    /* Not CREW_TASK_CANCELED: the joiner reads the status from the result. */
    return (void *)(intptr_t)(rc - 1);
}

static void *waiter_b(void *arg)
{
    return (void *)(intptr_t)(wait_once(arg, 1) - 1);
}

static void *canceller(void *arg)
{
    struct lane *l = arg;
    spin(l->cancel_spin);
    int rc = crew_task_cancel(l->a);
    TC_CHECK(rc == 0 || rc == -ESRCH);
    return NULL;
}

/* The releasing action: n is 0 for the first, 1 for the one B needs when A
 * took the first. */
static void action(struct lane *l, int n)
{
    void *item = NULL;
    switch (l->prim) {
    case P_MUTEX:
        TC_CHECK_EQ(crew_mutex_unlock(&l->m), 0);
        break;
    case P_SEM:
        TC_CHECK_EQ(crew_sem_release(&l->s), 0);
        break;
    case P_COND:
        TC_CHECK_EQ(crew_mutex_lock(&l->m), 0);
        l->ready = true;
        TC_CHECK_EQ(crew_cond_notify(&l->c), 0);
        TC_CHECK_EQ(crew_mutex_unlock(&l->m), 0);
        break;
    case P_QGET:
        TC_CHECK_EQ(crew_queue_put(l->q, n ? ITEM_2 : ITEM_1), 0);
        break;
    case P_QPUT:
        TC_CHECK_EQ(crew_queue_get(l->q, &item), 0);
        /* FIFO: the filler first, then A's item if A's put went through. */
        TC_CHECK(item == (n ? ITEM_A : FILLER));
        break;
    default:
        break;
    }
}

/* Poll until t has been seen waiting (or, if done_ok, done). A timed-out
 * waiter leaves WAITING again at any time, so this reports what it saw
 * rather than re-reading the state as TC_THREAD_WAIT_UNTIL does. */
static bool seen_waiting(crew_task_t *t, bool done_ok)
{
    int64_t limit = crew_now() + TC_WAIT_LIMIT_NS * (int64_t)crew_test_slowdown();
    do {
        crew_task_state_t st = crew_task_state(t);
        if (st == CREW_TASK_WAITING || (done_ok && st == CREW_TASK_DONE))
            return true;
        sched_yield();
    } while (crew_now() < limit);
    return false;
}

static int join_status(crew_task_t *t)
{
    void *r = NULL;
    TC_CHECK_EQ(crew_join(t, &r), 0);
    return (int)(intptr_t)r + 1;
}

static void round_setup(struct lane *l)
{
    switch (l->prim) {
    case P_MUTEX:
        TC_CHECK_EQ(crew_mutex_lock(&l->m), 0); /* The lane thread holds it. */
        break;
    case P_QPUT:
        TC_CHECK_EQ(crew_queue_put(l->q, FILLER), 0); /* Full (maxsize 1). */
        break;
    default:
        break;
    }
    l->got[0] = l->got[1] = NULL;
}

/* After both waiters returned: nothing left over, nothing missing. */
static void round_check(struct lane *l, int ra)
{
    void *item = NULL;
    switch (l->prim) {
    case P_MUTEX:
        TC_CHECK_EQ(crew_mutex_trylock(&l->m), 0); /* Free: no hand-off stuck. */
        TC_CHECK_EQ(crew_mutex_unlock(&l->m), 0);
        break;
    case P_SEM:
        TC_CHECK_EQ(crew_sem_value(&l->s), 0); /* Every permit taken by A or B. */
        break;
    case P_QGET:
        TC_CHECK_EQ(crew_queue_qsize(l->q), 0);
        TC_CHECK(l->got[0] == (ra ? NULL : ITEM_1));
        TC_CHECK(l->got[1] == (ra ? ITEM_1 : ITEM_2));
        TC_CHECK_EQ(crew_queue_task_done(l->q), 0);
        if (!ra)
            TC_CHECK_EQ(crew_queue_task_done(l->q), 0);
        break;
    case P_QPUT:
        TC_CHECK_EQ(crew_queue_qsize(l->q), 1);
        TC_CHECK_EQ(crew_queue_get_nowait(l->q, &item), 0);
        TC_CHECK(item == ITEM_B);
        while (crew_queue_task_done(l->q) == 0)
            continue;
        break;
    default:
        break;
    }
}

static void race_round(struct lane *l)
{
    round_setup(l);
    l->a_timeout = (int64_t)(crew_test_rand(&l->rng) % (40 * CREW_US));
    l->cancel_spin = (unsigned)(crew_test_rand(&l->rng) % 3000);
    unsigned lane_spin = (unsigned)(crew_test_rand(&l->rng) % 3000);
    crew_task_t *a, *b, *c = NULL;
    if (crew_rt_spawn(l->rt, waiter_a, l, NULL, &a)) {
        TC_CHECK(!"spawn");
        return;
    }
    if (!seen_waiting(a, l->timeout)) {
        fprintf(stderr, "# %s round: A never waited: state %d, mutex state %u\n",
                prim_name[l->prim], (int)crew_task_state(a), l->m.state);
        TC_CHECK(!"A never waited");
    }
    TC_CHECK_EQ(crew_rt_spawn(l->rt, waiter_b, l, NULL, &b), 0);
    TC_CHECK(seen_waiting(b, false));
    if (!l->timeout) {
        l->a = a;
        TC_CHECK_EQ(crew_rt_spawn(l->rt, canceller, l, NULL, &c), 0);
    }
    spin(lane_spin);
    action(l, 0);
    if (c)
        TC_CHECK_EQ(crew_join(c, NULL), 0);
    int ra = join_status(a);
    TC_CHECK(ra == 0 || ra == (l->timeout ? -ETIMEDOUT : -ECANCELED));
    atomic_fetch_add(ra ? &l->tot->a_interrupted : &l->tot->a_ok, 1);
    /* A took the first delivery: B needs a second one (the mutex passes
     * itself on when A unlocks). */
    if (!ra && l->prim != P_MUTEX)
        action(l, 1);
    if (!TC_THREAD_WAIT_UNTIL(crew_task_state(b) == CREW_TASK_DONE)) {
        fprintf(stderr, "# %s round: A returned %d, B state %d, mutex state %u, waiters %p\n",
                prim_name[l->prim], ra, (int)crew_task_state(b), l->m.state,
                (void *)l->m.waiters.head);
        tc_record(__FILE__, __LINE__, "B never got what A's interruption passed on", ra, 0);
        action(l, 1); /* Let the test finish. */
    }
    TC_CHECK_EQ(join_status(b), 0);
    round_check(l, ra);
}

static void *lane_main(void *arg)
{
    struct lane *l = arg;
    /* Rounds, or the wall-clock budget on a slow build, whichever ends first. */
    for (l->done = 0; l->done < l->rounds && crew_now() < l->budget_end; l->done++) {
        race_round(l);
        atomic_fetch_add(l->progress, 1);
    }
    return NULL;
}

static void run_race(enum prim p, bool timeout)
{
    crew_test_watchdog(240);
    tc_reset();
    struct race_totals tot = { 0 };
    struct tc_progress prog;
    tc_progress_start(&prog, prim_name[p], 10);
    crew_rt_t *rt = tc_rt_create();
    static struct lane lane[RACE_LANES];
    uint64_t seed = crew_test_seed();
    unsigned rounds = RACE_ROUNDS / crew_test_slowdown() / RACE_LANES;
    int64_t budget_end = crew_now() + RACE_BUDGET_NS;
    for (int i = 0; i < RACE_LANES; i++) {
        struct lane *l = &lane[i];
        memset(l, 0, sizeof *l);
        *l = (struct lane){ .rt = rt, .prim = p, .timeout = timeout,
                            .rng = seed + (uint64_t)i * 0x9E37u + p, .rounds = rounds,
                            .budget_end = budget_end, .tot = &tot, .progress = &prog.count };
        assert_int_equal(crew_mutex_init(&l->m), 0);
        assert_int_equal(crew_sem_init(&l->s, 0), 0);
        assert_int_equal(crew_cond_init(&l->c), 0);
        assert_int_equal(crew_queue_create(CREW_QUEUE_FIFO, p == P_QPUT ? 1 : 0, NULL, &l->q), 0);
        assert_int_equal(pthread_create(&l->thread, NULL, lane_main, l), 0);
    }
    unsigned done = 0;
    for (int i = 0; i < RACE_LANES; i++) {
        assert_int_equal(pthread_join(lane[i].thread, NULL), 0);
        done += lane[i].done;
    }
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_progress_stop(&prog);
    fprintf(stderr, "# %s, %s: %u rounds: A got it %lu times, A interrupted %lu times\n",
            prim_name[p], timeout ? "deadline" : "cancel", done,
            atomic_load(&tot.a_ok), atomic_load(&tot.a_interrupted));
    tc_assert_clean();
    assert_int_equal(atomic_load(&tot.a_ok) + atomic_load(&tot.a_interrupted), done);
    for (int i = 0; i < RACE_LANES; i++) {
        assert_int_equal(crew_mutex_destroy(&lane[i].m), 0);
        assert_int_equal(crew_sem_destroy(&lane[i].s), 0);
        assert_int_equal(crew_cond_destroy(&lane[i].c), 0);
        assert_int_equal(crew_queue_destroy(lane[i].q, NULL), 0);
    }
}

#define RACE_TEST(p, name)                                                                \
    static void test_sync_race_##name##_cancel(void **state) { run_race(p, false); }     \
    static void test_sync_race_##name##_deadline(void **state) { run_race(p, true); }

RACE_TEST(P_MUTEX, mutex)
RACE_TEST(P_SEM, sem)
RACE_TEST(P_COND, cond)
RACE_TEST(P_QGET, queue_get)
RACE_TEST(P_QPUT, queue_put)

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sync_race_mutex_cancel),
    cmocka_unit_test(test_sync_race_mutex_deadline),
    cmocka_unit_test(test_sync_race_sem_cancel),
    cmocka_unit_test(test_sync_race_sem_deadline),
    cmocka_unit_test(test_sync_race_cond_cancel),
    cmocka_unit_test(test_sync_race_cond_deadline),
    cmocka_unit_test(test_sync_race_queue_get_cancel),
    cmocka_unit_test(test_sync_race_queue_get_deadline),
    cmocka_unit_test(test_sync_race_queue_put_cancel),
    cmocka_unit_test(test_sync_race_queue_put_deadline),
};

CREW_TEST_MAIN("sync_race", tests)
