/* White-box tests of the cancellation handshake of park/unpark (runtime/park.h,
 * "Cancellation"; crew_task_cancel in task.c).
 *
 * The task arms its park word (seq_cst) and then reads its cancel flag in
 * crew__waiter_prepare; the canceller stores the flag and then reads the park
 * word (seq_cst). So a cancel is either seen by prepare, or seen by the
 * canceller as an ARMED or PARKED word that it wakes with CREW_WAKE_CANCEL;
 * a wait armed in a shield region carries NOCANCEL, and then only another
 * cause may end it. A lost cancel is a task parked for ever, so every test
 * runs under the watchdog; the public-API view of cancellation is in
 * test_cancel.c, these tests drive the waiter calls the primitives use.
 *
 * The channels arm with a plain store instead (a deferred arm) and read the
 * flag in crew__waiter_registered, after their registration's locked
 * exchange: tests 5 and 6, and every other round of test 4. Their waits are
 * fast ones (park.h, "Fast exit"): a wake that wins while the task is still
 * on its stack waits for it to switch away or to stay: test 7. */
#include "task_util.h"

#include "park.h"
#include "scheduler.h"

/* What a waiting task saw, read by the test thread after the join. */
struct wait_probe {
    atomic_int armed;    /* The task has prepared and not yet waited. */
    atomic_int go;       /* The test thread is done with the armed task. */
    int cancel_rc;       /* The task's own crew_task_cancel, if it makes one. */
    int prepare_rc;
    int cause;           /* What crew__waiter_wait returned, 0 if not reached. */
    int end_rc;          /* crew_shield_end, in the shielded test. */
    int yield_rc;        /* The suspension point after the wait. */
    _Atomic(crew__waiter_t *) w; /* Shielded test: published for the waker. */
    bool deferred;       /* Arm as a channel wait does (tests 5-7). */
};

/* ---- 1. The cancel lands before the arm ------------------------------------ */

/* The canceller read an IDLE word and woke nothing: the only thing that stops
 * the wait is prepare's look at the flag. */
static void *before_arm_main(void *arg)
{
    struct wait_probe *p = arg;
    p->cancel_rc = crew_task_cancel(crew_self());
    crew__waiter_t w;
    /* No wait if prepare missed the flag: nothing would end it, and a
     * failed assertion says more than the watchdog. */
    p->prepare_rc = crew__waiter_prepare(&w);
    p->yield_rc = crew_yield();
    return CREW_TASK_CANCELED;
}

static void test_park_cancel_before_arm(void **state)
{
    (void)state;
    crew_test_watchdog(30);
    crew_rt_t *rt = tc_rt_create();
    struct wait_probe p = { 0 };
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, before_arm_main, &p, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(p.cancel_rc, 0);
    assert_int_equal(p.prepare_rc, -ECANCELED);
    assert_int_equal(p.yield_rc, -ECANCELED);
}

/* A deferred arm's registration: a channel takes its lock with a seq_cst
 * exchange between the arm and crew__waiter_registered. */
static void register_deferred(crew__waiter_t *w)
{
    _Atomic uint32_t lock = 0;
    atomic_exchange_explicit(&lock, 1, memory_order_seq_cst);
    crew__waiter_registered(w);
}

/* ---- 2. The cancel lands between the arm and the park ----------------------- */

/* The task's look at the flag is over (prepare returned 0), so the canceller,
 * on another thread, must see the ARMED word and wake it: the wait then
 * returns CANCEL at once instead of parking for ever. The task spins without
 * suspending meanwhile, so the word stays ARMED. The cancel goes through
 * crew_task_cancel: a flag stored after prepare's look with no wake at all is
 * a state the handshake excludes (such a canceller sees ARMED), and nothing
 * re-reads the flag after the park is published (park.h says why), so a
 * test of it would hang by design. */
static void *after_arm_main(void *arg)
{
    struct wait_probe *p = arg;
    crew__waiter_t w;
    p->prepare_rc = crew__waiter_prepare_as(&w, crew__task_self(), p->deferred);
    if (p->prepare_rc)
        return NULL;
    if (p->deferred)
        register_deferred(&w);
    atomic_store(&p->armed, 1);
    if (!TC_THREAD_WAIT_UNTIL(atomic_load(&p->go)))
        return NULL; /* The test thread failed; do not wait on nothing. */
    p->cause = crew__waiter_wait(&w);
    p->yield_rc = crew_yield();
    return CREW_TASK_CANCELED;
}

static void test_park_cancel_after_arm(void **state)
{
    (void)state;
    crew_test_watchdog(30);
    crew_rt_t *rt = tc_rt_create();
    struct wait_probe p = { 0 };
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, after_arm_main, &p, NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&p.armed));
    /* The handle keeps the task alive, so its word may be read here. */
    assert_int_equal(atomic_load(&t->park) & 3, CREW_PARK_ARMED);
    assert_int_equal(crew_task_cancel(t), 0);
    atomic_store(&p.go, 1);
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(p.prepare_rc, 0);
    assert_int_equal(p.cause, CREW_WAKE_CANCEL);
    /* Sticky: the wake consumed nothing. */
    assert_int_equal(p.yield_rc, -ECANCELED);
}

/* ---- 3. The same inside a shield region ------------------------------------- */

/* Cancelled before the arm and again after it: prepare must not report it,
 * and the CANCEL wake the second cancel tries must lose to NOCANCEL. The
 * test thread ends the wait with READY once the task has parked. */
static void *shielded_main(void *arg)
{
    struct wait_probe *p = arg;
    crew_task_t *self = crew__task_self();
    if (crew_shield_begin())
        return NULL; /* The join's status then fails the test. */
    crew__waiter_t w;
    p->cancel_rc = crew_task_cancel(self);
    p->prepare_rc = crew__waiter_prepare(&w);
    if (!p->prepare_rc) {
        p->cancel_rc |= crew_task_cancel(self);
        /* Release: the waker reads w's seq through this pointer. */
        atomic_store_explicit(&p->w, &w, memory_order_release);
        p->cause = crew__waiter_wait(&w);
    }
    p->end_rc = crew_shield_end();
    p->yield_rc = crew_yield();
    atomic_store(&p->go, 1);
    return CREW_TASK_CANCELED;
}

static void test_park_cancel_after_arm_shielded(void **state)
{
    (void)state;
    crew_test_watchdog(30);
    crew_rt_t *rt = tc_rt_create();
    struct wait_probe p = { 0 };
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, shielded_main, &p, NULL, &t), 0);
    /* go: a task whose wait ended early (a regression) is past w already, so
     * it must not be woken; PARKED: the wait is this one, the task's only. */
    TC_WAIT_UNTIL(atomic_load(&p.go) ||
                  (atomic_load_explicit(&p.w, memory_order_acquire) &&
                   (atomic_load(&t->park) & 3) == CREW_PARK_PARKED));
    if (!atomic_load(&p.go))
        assert_true(crew__waiter_wake(atomic_load_explicit(&p.w, memory_order_acquire),
                                      CREW_WAKE_READY));
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(p.cancel_rc, 0);
    assert_int_equal(p.prepare_rc, 0);
    assert_int_equal(p.cause, CREW_WAKE_READY);
    assert_int_equal(p.end_rc, 0);
    assert_int_equal(p.yield_rc, -ECANCELED);
}

/* ---- 4. A real race ---------------------------------------------------------- */

/* Each round a task waits on a waiter nobody else knows, so only the cancel,
 * sent after a random spin from the test thread, can end it: in prepare
 * (-ECANCELED) or as a CANCEL wake, on whichever side of the arm and of the
 * PARKED CAS the cancel falls. A lost cancel hangs the join. */
struct race_round {
    atomic_int started;
    unsigned spin; /* The task's own delay before it arms. */
    bool deferred; /* Arm as the channels do (test 5). */
    int outcome;   /* prepare's status if nonzero, else the wake's cause. */
};


/* Short random delays on both sides, so the cancel falls before the arm,
 * between the arm and the PARKED CAS, and after it, in turn. */
static void spin(unsigned n)
{
    while (n--)
        crew__cpu_relax();
}

static void *race_main(void *arg)
{
    struct race_round *r = arg;
    crew__waiter_t w;
    atomic_store(&r->started, 1);
    spin(r->spin);
    r->outcome = crew__waiter_prepare_as(&w, crew__task_self(), r->deferred);
    if (!r->outcome) {
        if (r->deferred)
            register_deferred(&w);
        r->outcome = crew__waiter_wait(&w);
    }
    return CREW_TASK_CANCELED;
}

static void test_park_cancel_real_race(void **state)
{
    (void)state;
    crew_test_watchdog(90);
    crew_rt_t *rt = tc_rt_create();
    uint64_t seed = crew_test_seed();
    const int64_t budget_end = crew_now() + 3 * CREW_S;
    const unsigned rounds = 2000;
    /* Where the park word was just before each cancel: a rough picture of
     * which side of the handshake the rounds exercised, not a check. */
    unsigned n = 0, in_prepare = 0, woken = 0, seen[4] = { 0 };
    for (; n < rounds && crew_now() < budget_end; n++) {
        struct race_round r = { .spin = (unsigned)(crew_test_rand(&seed) % 256),
                                .deferred = n % 2 };
        crew_task_t *t = NULL;
        assert_int_equal(crew_rt_spawn(rt, race_main, &r, NULL, &t), 0);
        TC_WAIT_UNTIL(atomic_load(&r.started));
        spin((unsigned)(crew_test_rand(&seed) % 256));
        seen[atomic_load_explicit(&t->park, memory_order_relaxed) & 3]++;
        assert_int_equal(crew_task_cancel(t), 0);
        assert_int_equal(crew_join(t, NULL), -ECANCELED);
        if (r.outcome == -ECANCELED)
            in_prepare++;
        else if (r.outcome == CREW_WAKE_CANCEL)
            woken++;
        else
            fail_msg("round %u: the wait ended with %d, not a cancel", n, r.outcome);
    }
    assert_int_equal(crew_rt_destroy(rt), 0);
    fprintf(stderr,
            "# %u rounds: cancel seen by prepare %u, by a CANCEL wake %u; word before the "
            "cancel: idle %u, armed %u, parked %u\n",
            n, in_prepare, woken, seen[CREW_PARK_IDLE], seen[CREW_PARK_ARMED],
            seen[CREW_PARK_PARKED]);
}

/* ---- 5, 6. A deferred arm -------------------------------------------------- */

/* The flag lands after the deferred arm with no wake: what a canceller leaves
 * when its read of the park word came before the arm's plain store was
 * visible. crew__waiter_registered must see the flag and end the wait with
 * CANCEL (the wait hangs otherwise); inside a shield region it must not, and
 * the test thread ends the wait with READY once the task has parked. */
static void *deferred_main(void *arg, bool shielded)
{
    struct wait_probe *p = arg;
    crew_task_t *self = crew__task_self();
    if (shielded && crew_shield_begin())
        return NULL; /* The join's status then fails the test. */
    crew__waiter_t w;
    p->prepare_rc = crew__waiter_prepare_as(&w, self, true);
    if (!p->prepare_rc) {
        atomic_store_explicit(&self->cancelled, 1, memory_order_seq_cst);
        register_deferred(&w);
        /* Release: the waker reads w's seq through this pointer. */
        atomic_store_explicit(&p->w, &w, memory_order_release);
        p->cause = crew__waiter_wait(&w);
    }
    if (shielded)
        p->end_rc = crew_shield_end();
    p->yield_rc = crew_yield();
    atomic_store(&p->go, 1);
    return CREW_TASK_CANCELED;
}

static void *deferred_plain_main(void *arg)
{
    return deferred_main(arg, false);
}

static void *deferred_shielded_main(void *arg)
{
    return deferred_main(arg, true);
}

static void run_deferred(bool shielded)
{
    crew_test_watchdog(30);
    crew_rt_t *rt = tc_rt_create();
    struct wait_probe p = { 0 };
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, shielded ? deferred_shielded_main : deferred_plain_main,
                                   &p, NULL, &t), 0);
    if (shielded) {
        /* As in test 3: wake only this wait, once it has switched away (a
         * fast wait says so in `off`, park.h "Fast exit"). */
        TC_WAIT_UNTIL(atomic_load(&p.go) ||
                      (atomic_load_explicit(&p.w, memory_order_acquire) &&
                       atomic_load(&t->off) == CREW_OFF_AWAY));
        if (!atomic_load(&p.go))
            assert_true(crew__waiter_wake(atomic_load_explicit(&p.w, memory_order_acquire),
                                          CREW_WAKE_READY));
    }
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(p.prepare_rc, 0);
    assert_int_equal(p.cause, shielded ? CREW_WAKE_READY : CREW_WAKE_CANCEL);
    assert_int_equal(p.end_rc, 0);
    assert_int_equal(p.yield_rc, -ECANCELED);
}

static void test_park_deferred_arm_sees_flag(void **state)
{
    (void)state;
    run_deferred(false);
}

static void test_park_deferred_arm_shielded(void **state)
{
    (void)state;
    run_deferred(true);
}

/* ---- 7. A fast wait won before its switch ----------------------------------- */

/* The canceller's wake wins while the task is still on its stack (armed and
 * registered, spinning before its wait): crew_task_cancel must wait for the
 * task (it runs on a thread of its own), which finds the wake at its last
 * look, stays (off = STAYED) and goes on only after the canceller's ACK;
 * the wait returns CANCEL without switching. Test 2's task, armed as a
 * channel wait. */
struct fast_probe {
    struct wait_probe p;
    crew_task_t *t;
    int cancel_rc;
    atomic_int cancel_returned;
};

static void *fast_cancel_thread(void *arg)
{
    struct fast_probe *f = arg;
    f->cancel_rc = crew_task_cancel(f->t);
    atomic_store(&f->cancel_returned, 1);
    return NULL;
}

static void test_park_fast_wait_won_before_switch(void **state)
{
    (void)state;
    crew_test_watchdog(30);
    crew_rt_t *rt = tc_rt_create();
    struct fast_probe f = { .cancel_rc = -1 };
    f.p.deferred = true;
    assert_int_equal(crew_rt_spawn(rt, after_arm_main, &f.p, NULL, &f.t), 0);
    TC_WAIT_UNTIL(atomic_load(&f.p.armed));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fast_cancel_thread, &f), 0);
    /* The canceller won; the task has not looked yet, so the canceller
     * still waits for it (the handle keeps the task readable). */
    TC_WAIT_UNTIL((atomic_load(&f.t->park) & 3) == CREW_PARK_WOKEN);
    assert_int_equal(atomic_load(&f.t->off), CREW_OFF_NONE);
    assert_int_equal(atomic_load(&f.cancel_returned), 0);
    atomic_store(&f.p.go, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(f.cancel_rc, 0);
    assert_int_equal(crew_join(f.t, NULL), -ECANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(f.p.prepare_rc, 0);
    assert_int_equal(f.p.cause, CREW_WAKE_CANCEL);
    assert_int_equal(f.p.yield_rc, -ECANCELED);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_park_cancel_before_arm),
    cmocka_unit_test(test_park_cancel_after_arm),
    cmocka_unit_test(test_park_cancel_after_arm_shielded),
    cmocka_unit_test(test_park_cancel_real_race),
    cmocka_unit_test(test_park_deferred_arm_sees_flag),
    cmocka_unit_test(test_park_deferred_arm_shielded),
    cmocka_unit_test(test_park_fast_wait_won_before_switch),
};

CREW_TEST_MAIN("park", tests)
