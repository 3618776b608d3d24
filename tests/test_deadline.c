/* Deadline scopes and crew_wait_for (include/crew/time.h, "Deadline scopes",
 * with the Cancellation section of include/crew/task.h): argument and caller
 * errors, expiry of a scope and what crew_timeout_end reports, stickiness,
 * nesting (the earliest deadline rules), the deadline going down crew_join,
 * crew_wait_for's three outcomes, the precedence of cancellation, shield
 * regions holding deadlines back, and a timeout-versus-completion race.
 *
 * Only guarantees are asserted: a scope with deadline D reports -ETIMEDOUT
 * no earlier than D, and a sleep lasts at least what it asked for. How late
 * a deadline fires depends on the machine's load; it is printed as '# '
 * lines, never asserted. */
#include "task_util.h"

/* What a task returns when it ends normally. */
#define MARK_OK ((void *)(uintptr_t)0x600D)
/* Stored in a result slot before a call, so the test sees whether the call
 * wrote it. */
#define MARK_UNSET ((void *)(uintptr_t)0xBAD)

/* A deadline that expires during the test, and one that never does within
 * its watchdog (a call that waits that long hangs the test instead). */
#define SHORT_NS (20 * CREW_MS)
#define NEVER_NS (60 * CREW_S)

/* Yields a task makes while waiting for another to reach a point: seconds
 * of scheduling, so a lost wakeup fails instead of hanging. */
#define SPIN_CAP 10000000ul

/* ---- Checks recorded by a task, asserted by the test thread -------------------- */

/* A task records each check as a step; the test thread asserts them all
 * after the join that publishes them, and names the ones that failed. */
enum step_kind {
    STEP_EQ,   /* got == want. */
    STEP_GE,   /* got >= want, a duration in ns: printed with what it measured. */
    STEP_NOTE, /* Not checked (the spec leaves it open): printed. */
};

#define MAX_STEPS 64

struct steps {
    int n;
    struct step {
        const char *what;
        enum step_kind kind;
        long long got, want;
    } s[MAX_STEPS];
};

static void step(struct steps *st, enum step_kind kind, const char *what, long long got,
                 long long want)
{
    if (st->n < MAX_STEPS)
        st->s[st->n] = (struct step){ what, kind, got, want };
    st->n++;
}

#define EXPECT(st, what, got, want) step(st, STEP_EQ, what, (long long)(got), (long long)(want))
#define EXPECT_AT_LEAST(st, what, ns, min_ns) step(st, STEP_GE, what, ns, min_ns)
#define NOTE(st, what, got) step(st, STEP_NOTE, what, (long long)(got), 0)

static void steps_assert(const struct steps *st)
{
    if (st->n > MAX_STEPS)
        fail_msg("%d steps recorded, room for %d: raise MAX_STEPS", st->n, MAX_STEPS);
    int bad = 0;
    for (int i = 0; i < st->n; i++) {
        const struct step *s = &st->s[i];
        switch (s->kind) {
        case STEP_EQ:
            if (s->got != s->want) {
                print_error("step %d, %s: got %lld, want %lld\n", i, s->what, s->got, s->want);
                bad++;
            }
            break;
        case STEP_GE:
            fprintf(stderr, "# %s: %.3f ms (at least %.3f ms)\n", s->what, (double)s->got / 1e6,
                    (double)s->want / 1e6);
            if (s->got < s->want) {
                print_error("step %d, %s: %lld ns, less than %lld ns\n", i, s->what, s->got,
                            s->want);
                bad++;
            }
            break;
        case STEP_NOTE:
            fprintf(stderr, "# %s: %lld (not checked)\n", s->what, s->got);
            break;
        }
    }
    if (bad)
        fail_msg("%d of %d steps failed", bad, st->n);
}

/* What a call that returned an error left in its result slot, which the
 * spec leaves open: 1 if it holds expected, 0 if untouched, -1 else. */
static void note_result(struct steps *st, const char *what, void *res, void *expected)
{
    step(st, STEP_NOTE, what, res == expected ? 1 : res == MARK_UNSET ? 0 : -1, 0);
}

/* Run body(st) as a task of a new runtime, then assert what it recorded. */
static void run_steps(crew_fn_t body, struct steps *st)
{
    tc_run(body, st);
    steps_assert(st);
}

/* ---- Children ----------------------------------------------------------------- */

static void *return_ok(void *arg)
{
    (void)arg;
    return MARK_OK;
}

/* A child that never ends on its own: it yields (or sleeps) until a
 * suspension point reports something, records it and returns
 * CREW_TASK_CANCELED when that was a cancellation. */
struct stubborn {
    bool sleeps;      /* Wait in one long crew_sleep instead of yielding. */
    atomic_int started;
    atomic_int rc;    /* What ended its wait. */
    atomic_int done;  /* Set just before it returns. */
};

static void *stubborn_body(void *arg)
{
    struct stubborn *c = arg;
    atomic_store(&c->started, 1);
    int rc;
    if (c->sleeps)
        rc = crew_sleep(NEVER_NS);
    else
        while ((rc = crew_yield()) == 0)
            continue;
    atomic_store(&c->rc, rc);
    atomic_store(&c->done, 1);
    return rc == -ECANCELED ? CREW_TASK_CANCELED : MARK_OK;
}

/* Spawn a stubborn child and wait (outside any scope) until it runs, so the
 * caller's scope cannot expire before the child has started. NULL on error. */
static crew_task_t *spawn_stubborn(struct steps *st, struct stubborn *c)
{
    crew_task_t *t = NULL;
    int rc = crew_spawn(stubborn_body, c, NULL, &t);
    EXPECT(st, "crew_spawn of the stubborn child", rc, 0);
    if (rc)
        return NULL;
    EXPECT(st, "the stubborn child started", TC_SPIN_UNTIL(atomic_load(&c->started), SPIN_CAP), 1);
    return t;
}

/* Spawn a child that returns MARK_OK and wait until it has finished. */
static crew_task_t *spawn_finished(struct steps *st)
{
    crew_task_t *t = NULL;
    int rc = crew_spawn(return_ok, NULL, NULL, &t);
    EXPECT(st, "crew_spawn of a short child", rc, 0);
    if (rc)
        return NULL;
    EXPECT(st, "the short child finished",
           TC_SPIN_UNTIL(crew_task_state(t) == CREW_TASK_DONE, SPIN_CAP), 1);
    return t;
}

/* How many of 100 crew_yield calls did not return want. */
static int count_yields_not(int want)
{
    int bad = 0;
    for (int i = 0; i < 100; i++)
        bad += crew_yield() != want;
    return bad;
}

/* ---- 1. Errors ------------------------------------------------------------------- */

/* Ends a scope another task has open. */
static void *end_foreign(void *arg)
{
    return (void *)(intptr_t)crew_timeout_end(arg);
}

/* Yields until released; for a handle that another task is waiting on. */
struct gate {
    atomic_int release;
};

static void *gate_body(void *arg)
{
    struct gate *g = arg;
    while (!atomic_load(&g->release))
        if (crew_yield())
            return CREW_TASK_CANCELED;
    return MARK_OK;
}

struct first_waiter {
    crew_task_t *target;
    bool with_wait_for;
    int rc;
    void *res;
};

static void *first_waiter_body(void *arg)
{
    struct first_waiter *w = arg;
    w->res = MARK_UNSET;
    w->rc = w->with_wait_for ? crew_wait_for(w->target, NEVER_NS, &w->res)
                             : crew_join(w->target, &w->res);
    return NULL;
}

/* One waiter (crew_join or crew_wait_for) holds the target; a second one
 * of the other kind gets -EBUSY and the first still gets the result. */
static void busy_case(struct steps *st, bool first_with_wait_for)
{
    struct gate g = { 0 };
    struct first_waiter w = { .with_wait_for = first_with_wait_for };
    crew_task_t *j = NULL;
    int rc = crew_spawn(gate_body, &g, NULL, &w.target);
    EXPECT(st, "crew_spawn of the gated child", rc, 0);
    if (rc)
        return;
    rc = crew_spawn(first_waiter_body, &w, NULL, &j);
    EXPECT(st, "crew_spawn of the first waiter", rc, 0);
    if (rc) {
        atomic_store(&g.release, 1);
        EXPECT(st, "join of the gated child", crew_join(w.target, NULL), 0);
        return;
    }
    EXPECT(st, "the first waiter is suspended",
           TC_SPIN_UNTIL(crew_task_state(j) == CREW_TASK_WAITING, SPIN_CAP), 1);
    if (first_with_wait_for) {
        EXPECT(st, "crew_join while a crew_wait_for waits", crew_join(w.target, NULL), -EBUSY);
        EXPECT(st, "a second crew_wait_for", crew_wait_for(w.target, NEVER_NS, NULL), -EBUSY);
    } else {
        void *res = MARK_UNSET;
        EXPECT(st, "crew_wait_for while a crew_join waits", crew_wait_for(w.target, NEVER_NS, &res),
               -EBUSY);
        EXPECT(st, "crew_wait_for's -EBUSY leaves the result slot alone", res == MARK_UNSET, 1);
    }
    atomic_store(&g.release, 1);
    EXPECT(st, "join of the first waiter", crew_join(j, NULL), 0);
    EXPECT(st, "the first waiter's call", w.rc, 0);
    EXPECT(st, "the first waiter got the result", w.res == MARK_OK, 1);
}

static void *errors_main(void *arg)
{
    struct steps *st = arg;
    crew_timeout_t a, b, never_opened;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&never_opened, 0, sizeof never_opened);

    EXPECT(st, "crew_timeout_begin(NULL)", crew_timeout_begin(NULL, CREW_S), -EINVAL);
    EXPECT(st, "crew_timeout_begin(-1 ns)", crew_timeout_begin(&a, -1), -EINVAL);
    EXPECT(st, "crew_timeout_begin(INT64_MIN ns)", crew_timeout_begin(&a, INT64_MIN), -EINVAL);
    EXPECT(st, "crew_deadline_begin(NULL)", crew_deadline_begin(NULL, crew_now() + CREW_S),
           -EINVAL);
    EXPECT(st, "crew_deadline_begin(-1)", crew_deadline_begin(&a, -1), -EINVAL);
    EXPECT(st, "crew_timeout_end(NULL)", crew_timeout_end(NULL), -EINVAL);
    EXPECT(st, "crew_timeout_end of a zeroed scope never opened", crew_timeout_end(&never_opened),
           -EINVAL);
    EXPECT(st, "crew_timeout_end of a scope whose begin failed", crew_timeout_end(&a), -EINVAL);
    /* The failed calls opened nothing that could report a deadline. */
    EXPECT(st, "crew_yield after the failed begins", crew_yield(), 0);

    /* Two nested scopes must be closed innermost first, each once. */
    EXPECT(st, "begin outer", crew_timeout_begin(&a, NEVER_NS), 0);
    EXPECT(st, "begin inner", crew_timeout_begin(&b, NEVER_NS), 0);
    EXPECT(st, "end outer while inner is open", crew_timeout_end(&a), -EINVAL);
    EXPECT(st, "end inner", crew_timeout_end(&b), 0);
    EXPECT(st, "end inner twice", crew_timeout_end(&b), -EINVAL);
    EXPECT(st, "end outer", crew_timeout_end(&a), 0);
    EXPECT(st, "end outer twice", crew_timeout_end(&a), -EINVAL);
    EXPECT(st, "crew_yield after the scopes closed", crew_yield(), 0);

    /* A scope belongs to the task that opened it. */
    EXPECT(st, "begin a scope another task will try to end", crew_timeout_begin(&a, NEVER_NS), 0);
    crew_task_t *t = NULL;
    int rc = crew_spawn(end_foreign, &a, NULL, &t);
    EXPECT(st, "crew_spawn of the foreign ender", rc, 0);
    if (!rc) {
        void *res = MARK_UNSET;
        EXPECT(st, "join of the foreign ender", crew_join(t, &res), 0);
        EXPECT(st, "crew_timeout_end from another task", (intptr_t)res, -EINVAL);
    }
    EXPECT(st, "end by its own task", crew_timeout_end(&a), 0);

    /* crew_wait_for's arguments; on -EINVAL the handle stays the caller's. */
    void *res = MARK_UNSET;
    EXPECT(st, "crew_wait_for(NULL)", crew_wait_for(NULL, CREW_S, &res), -EINVAL);
    EXPECT(st, "crew_wait_for(NULL, -1)", crew_wait_for(NULL, -1, NULL), -EINVAL);
    EXPECT(st, "crew_wait_for(NULL) leaves the result slot alone", res == MARK_UNSET, 1);
    rc = crew_spawn(return_ok, NULL, NULL, &t);
    EXPECT(st, "crew_spawn of a child for crew_wait_for(-1)", rc, 0);
    if (!rc) {
        EXPECT(st, "crew_wait_for(child, -1 ns)", crew_wait_for(t, -1, &res), -EINVAL);
        EXPECT(st, "crew_wait_for(child, INT64_MIN ns)", crew_wait_for(t, INT64_MIN, &res),
               -EINVAL);
        EXPECT(st, "the child is still joinable after -EINVAL", crew_join(t, &res), 0);
        EXPECT(st, "its result", res == MARK_OK, 1);
    }
    res = MARK_UNSET;
    EXPECT(st, "crew_wait_for(crew_self())", crew_wait_for(crew_self(), CREW_S, &res), -EDEADLK);
    EXPECT(st, "crew_wait_for(crew_self(), NULL result)", crew_wait_for(crew_self(), CREW_S, NULL),
           -EDEADLK);

    busy_case(st, false);
    busy_case(st, true);
    EXPECT(st, "crew_yield at the end", crew_yield(), 0);
    EXPECT(st, "crew_cancelled at the end", crew_cancelled(), 0);
    return NULL;
}

/* Holds a scope open until the test thread has tried to end it. */
struct held_scope {
    crew_timeout_t scope;
    atomic_int opened, tried;
    int begin_rc, yield_rc, end_rc;
};

static void *held_scope_body(void *arg)
{
    struct held_scope *h = arg;
    h->begin_rc = crew_timeout_begin(&h->scope, NEVER_NS);
    atomic_store(&h->opened, 1);
    while (!atomic_load(&h->tried))
        sched_yield();
    h->yield_rc = crew_yield();
    h->end_rc = crew_timeout_end(&h->scope);
    return NULL;
}

static void test_deadline_errors(void **state)
{
    crew_test_watchdog(60);
    crew_timeout_t s;
    memset(&s, 0, sizeof s);

    /* From a plain thread, with no runtime and then with one. */
    assert_int_equal(crew_timeout_begin(&s, CREW_S), -EPERM);
    assert_int_equal(crew_deadline_begin(&s, crew_now() + CREW_S), -EPERM);
    assert_int_equal(crew_timeout_end(&s), -EPERM);
    crew_rt_t *rt = tc_rt_create();
    assert_int_equal(crew_timeout_begin(&s, CREW_S), -EPERM);
    assert_int_equal(crew_timeout_begin(&s, 0), -EPERM);
    assert_int_equal(crew_deadline_begin(&s, crew_now() + CREW_S), -EPERM);
    assert_int_equal(crew_timeout_end(&s), -EPERM);

    /* crew_wait_for is for tasks; the handle stays the caller's. */
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, return_ok, NULL, NULL, &t), 0);
    void *res = MARK_UNSET;
    assert_int_equal(crew_wait_for(t, CREW_S, &res), -EPERM);
    assert_ptr_equal(res, MARK_UNSET);
    assert_int_equal(crew_wait_for(t, 0, NULL), -EPERM);
    assert_int_equal(crew_join(t, &res), 0);
    assert_ptr_equal(res, MARK_OK);

    /* A plain thread cannot end a scope a task has open. */
    struct held_scope h = { 0 };
    assert_int_equal(crew_rt_spawn(rt, held_scope_body, &h, NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&h.opened));
    int foreign_end = crew_timeout_end(&h.scope);
    atomic_store(&h.tried, 1);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(foreign_end, -EPERM);
    assert_int_equal(h.begin_rc, 0);
    assert_int_equal(h.yield_rc, 0);
    assert_int_equal(h.end_rc, 0);
    assert_int_equal(crew_rt_destroy(rt), 0);

    /* From a task. */
    struct steps st = { 0 };
    run_steps(errors_main, &st);
}

/* ---- 2. Expiry and what crew_timeout_end reports ------------------------------------- */

/* Busy-wait without suspending until crew_now() >= until. */
static void spin_past(int64_t until)
{
    while (crew_now() < until)
        continue;
}

static void *expiry_main(void *arg)
{
    struct steps *st = arg;
    crew_timeout_t s;
    int rc;

    /* A sleep waiting when the deadline passes is woken with -ETIMEDOUT. The
     * clock is read before begin, so the elapsed time covers the scope's. */
    int64_t t0 = crew_now();
    EXPECT(st, "begin a 20 ms scope", crew_timeout_begin(&s, SHORT_NS), 0);
    EXPECT(st, "crew_sleep(1 s) in a 20 ms scope", crew_sleep(CREW_S), -ETIMEDOUT);
    EXPECT_AT_LEAST(st, "crew_sleep(1 s) in a 20 ms scope: -ETIMEDOUT after", crew_now() - t0,
                    SHORT_NS);
    EXPECT(st, "end of the expired scope", crew_timeout_end(&s), 1);

    /* The same with an absolute deadline: the report comes at or after it. */
    int64_t deadline = crew_now() + SHORT_NS;
    EXPECT(st, "crew_deadline_begin(now + 20 ms)", crew_deadline_begin(&s, deadline), 0);
    EXPECT(st, "crew_sleep(1 s) before an absolute deadline", crew_sleep(CREW_S), -ETIMEDOUT);
    EXPECT_AT_LEAST(st, "crew_now() at that -ETIMEDOUT, past the deadline", crew_now() - deadline,
                    0);
    EXPECT(st, "end of the expired absolute scope", crew_timeout_end(&s), 1);

    /* A body that does not reach the deadline: nothing is reported. */
    EXPECT(st, "begin a 10 s scope", crew_timeout_begin(&s, 10 * CREW_S), 0);
    t0 = crew_now();
    EXPECT(st, "crew_sleep(1 ms) in a 10 s scope", crew_sleep(CREW_MS), 0);
    EXPECT_AT_LEAST(st, "crew_sleep(1 ms) in a 10 s scope lasted", crew_now() - t0, CREW_MS);
    EXPECT(st, "end of the 10 s scope", crew_timeout_end(&s), 0);

    /* A scope closed before its deadline leaves nothing behind: a later
     * sleep longer than that deadline is neither cut short nor failed. The
     * 1 ms sleep in it ends first unless the machine stalls for 20 ms; its
     * outcome is only checked against what end reports. */
    EXPECT(st, "begin a 20 ms scope", crew_timeout_begin(&s, SHORT_NS), 0);
    rc = crew_sleep(CREW_MS);
    NOTE(st, "crew_sleep(1 ms) in a 20 ms scope", rc);
    EXPECT(st, "end of it reports whether that sleep timed out", crew_timeout_end(&s),
           rc == -ETIMEDOUT);
    t0 = crew_now();
    EXPECT(st, "crew_sleep(40 ms) after the scope closed", crew_sleep(2 * SHORT_NS), 0);
    EXPECT_AT_LEAST(st, "crew_sleep(40 ms) after the scope closed lasted", crew_now() - t0,
                    2 * SHORT_NS);

    /* Expired means reported at a suspension point: a deadline that passes
     * while the body never suspends does not count. */
    EXPECT(st, "begin a 1 ms scope", crew_timeout_begin(&s, CREW_MS), 0);
    spin_past(crew_now() + 2 * CREW_MS);
    EXPECT(st, "end of a scope whose deadline passed without a suspension point",
           crew_timeout_end(&s), 0);
    EXPECT(st, "crew_yield after it", crew_yield(), 0);

    /* Zero and past deadlines are expired from the start. */
    EXPECT(st, "begin a 0 ns scope", crew_timeout_begin(&s, 0), 0);
    EXPECT(st, "crew_yield in a 0 ns scope", crew_yield(), -ETIMEDOUT);
    EXPECT(st, "end of the 0 ns scope", crew_timeout_end(&s), 1);
    EXPECT(st, "crew_deadline_begin(0)", crew_deadline_begin(&s, 0), 0);
    EXPECT(st, "crew_sleep(0) past the deadline", crew_sleep(0), -ETIMEDOUT);
    EXPECT(st, "end of the past-deadline scope", crew_timeout_end(&s), 1);

    /* Durations past the end of the clock are clamped, not wrapped. */
    EXPECT(st, "begin an INT64_MAX ns scope", crew_timeout_begin(&s, INT64_MAX), 0);
    EXPECT(st, "crew_yield in it", crew_yield(), 0);
    EXPECT(st, "crew_sleep(1 ms) in it", crew_sleep(CREW_MS), 0);
    EXPECT(st, "end of the INT64_MAX ns scope", crew_timeout_end(&s), 0);
    EXPECT(st, "crew_deadline_begin(INT64_MAX)", crew_deadline_begin(&s, INT64_MAX), 0);
    EXPECT(st, "crew_yield in it", crew_yield(), 0);
    EXPECT(st, "end of it", crew_timeout_end(&s), 0);

    /* An expired scope is not a cancellation. */
    EXPECT(st, "crew_cancelled at the end", crew_cancelled(), 0);
    return NULL;
}

static void test_deadline_expiry(void **state)
{
    crew_test_watchdog(60);
    struct steps st = { 0 };
    run_steps(expiry_main, &st);
}

/* ---- 3. Stickiness ----------------------------------------------------------------- */

/* Records whether it ran and whether it was cancelled by then. */
struct probe {
    atomic_int ran, saw_cancel;
};

static void *probe_body(void *arg)
{
    struct probe *p = arg;
    atomic_store(&p->ran, 1);
    int rc = crew_yield();
    atomic_store(&p->saw_cancel, rc == -ECANCELED);
    return rc == -ECANCELED ? CREW_TASK_CANCELED : MARK_OK;
}

struct sticky {
    struct steps st;
    struct probe probe;
    int probe_join_rc;
};

static void *sticky_main(void *arg)
{
    struct sticky *k = arg;
    struct steps *st = &k->st;
    /* Finished children to join inside and after the expired scope. */
    crew_task_t *finished_in = spawn_finished(st), *finished_after = spawn_finished(st);
    if (!finished_in || !finished_after)
        return NULL;
    crew_timeout_t s;
    EXPECT(st, "begin a 20 ms scope", crew_timeout_begin(&s, SHORT_NS), 0);
    EXPECT(st, "crew_sleep(60 s) in it", crew_sleep(NEVER_NS), -ETIMEDOUT);
    EXPECT(st, "crew_yield calls after the deadline that did not return -ETIMEDOUT",
           count_yields_not(-ETIMEDOUT), 0);
    EXPECT(st, "crew_sleep(0) after the deadline", crew_sleep(0), -ETIMEDOUT);
    EXPECT(st, "crew_sleep(1 ms) after the deadline", crew_sleep(CREW_MS), -ETIMEDOUT);
    EXPECT(st, "crew_sleep_until(now + 1 ms) after the deadline",
           crew_sleep_until(crew_now() + CREW_MS), -ETIMEDOUT);
    void *res = MARK_UNSET;
    /* The handle is consumed: the join waited for a task that had finished. */
    EXPECT(st, "crew_join of a finished child after the deadline", crew_join(finished_in, &res),
           -ETIMEDOUT);
    note_result(st, "that join's result slot (1: the child's result, 0: untouched)", res, MARK_OK);
    /* A child spawned in the expired scope is cancelled by the join. */
    crew_task_t *t = NULL;
    int rc = crew_spawn(probe_body, &k->probe, NULL, &t);
    EXPECT(st, "crew_spawn in the expired scope", rc, 0);
    if (!rc)
        k->probe_join_rc = crew_join(t, NULL);
    EXPECT(st, "crew_cancelled in the expired scope", crew_cancelled(), 0);
    EXPECT(st, "end of the expired scope", crew_timeout_end(&s), 1);

    EXPECT(st, "crew_yield calls after the scope that did not return 0", count_yields_not(0), 0);
    EXPECT(st, "crew_sleep(0) after the scope", crew_sleep(0), 0);
    EXPECT(st, "crew_sleep(1 ms) after the scope", crew_sleep(CREW_MS), 0);
    res = MARK_UNSET;
    EXPECT(st, "crew_join of a finished child after the scope", crew_join(finished_after, &res), 0);
    EXPECT(st, "its result", res == MARK_OK, 1);
    EXPECT(st, "crew_cancelled after the scope", crew_cancelled(), 0);
    return NULL;
}

static void test_deadline_sticky(void **state)
{
    crew_test_watchdog(60);
    struct sticky k = { 0 };
    run_steps(sticky_main, &k.st);
    assert_int_equal(k.probe_join_rc, -ETIMEDOUT);
    /* It may have run to its yield on another worker before the join; the
     * join's cancellation then reaches it there. With one worker it can only
     * run once the join suspended, so it runs cancelled or not at all. */
    if (atomic_load(&k.probe.ran))
        assert_int_equal(atomic_load(&k.probe.saw_cancel), 1);
}

/* ---- 4. Nesting ---------------------------------------------------------------------- */

static void *nesting_main(void *arg)
{
    struct steps *st = arg;
    crew_timeout_t outer, middle, inner;

    /* A longer inner scope does not extend the outer one. */
    int64_t t0 = crew_now();
    EXPECT(st, "begin outer 20 ms", crew_timeout_begin(&outer, SHORT_NS), 0);
    EXPECT(st, "begin inner 10 s", crew_timeout_begin(&inner, 10 * CREW_S), 0);
    EXPECT(st, "crew_sleep(1 s) in the 10 s inner scope", crew_sleep(CREW_S), -ETIMEDOUT);
    EXPECT_AT_LEAST(st, "outer 20 ms, inner 10 s: -ETIMEDOUT after", crew_now() - t0, SHORT_NS);
    EXPECT(st, "crew_yield still in the inner scope", crew_yield(), -ETIMEDOUT);
    EXPECT(st, "end inner (the outer's deadline expired)", crew_timeout_end(&inner), 0);
    EXPECT(st, "crew_yield in the outer scope", crew_yield(), -ETIMEDOUT);
    EXPECT(st, "end outer", crew_timeout_end(&outer), 1);
    EXPECT(st, "crew_yield after both", crew_yield(), 0);

    /* The same with the inner one given as an absolute deadline. */
    t0 = crew_now();
    EXPECT(st, "begin outer 20 ms", crew_timeout_begin(&outer, SHORT_NS), 0);
    EXPECT(st, "crew_deadline_begin inner at the end of the clock",
           crew_deadline_begin(&inner, INT64_MAX), 0);
    EXPECT(st, "crew_sleep(1 s) in the unbounded inner scope", crew_sleep(CREW_S), -ETIMEDOUT);
    EXPECT_AT_LEAST(st, "outer 20 ms, inner unbounded: -ETIMEDOUT after", crew_now() - t0,
                    SHORT_NS);
    EXPECT(st, "end unbounded inner", crew_timeout_end(&inner), 0);
    EXPECT(st, "end outer", crew_timeout_end(&outer), 1);

    /* A shorter inner scope expires alone; the outer one goes on. */
    EXPECT(st, "begin outer 10 s", crew_timeout_begin(&outer, 10 * CREW_S), 0);
    t0 = crew_now();
    EXPECT(st, "begin inner 20 ms", crew_timeout_begin(&inner, SHORT_NS), 0);
    EXPECT(st, "crew_sleep(1 s) in the 20 ms inner scope", crew_sleep(CREW_S), -ETIMEDOUT);
    EXPECT_AT_LEAST(st, "outer 10 s, inner 20 ms: -ETIMEDOUT after", crew_now() - t0, SHORT_NS);
    EXPECT(st, "end inner", crew_timeout_end(&inner), 1);
    EXPECT(st, "crew_yield in the outer scope", crew_yield(), 0);
    EXPECT(st, "crew_sleep(1 ms) in the outer scope", crew_sleep(CREW_MS), 0);
    EXPECT(st, "end outer", crew_timeout_end(&outer), 0);

    /* Three levels: the middle one is the earliest; it alone reports. */
    EXPECT(st, "begin outer 10 s", crew_timeout_begin(&outer, 10 * CREW_S), 0);
    t0 = crew_now();
    EXPECT(st, "begin middle 20 ms", crew_timeout_begin(&middle, SHORT_NS), 0);
    EXPECT(st, "begin inner 10 s", crew_timeout_begin(&inner, 10 * CREW_S), 0);
    EXPECT(st, "crew_sleep(1 s) in the innermost of three", crew_sleep(CREW_S), -ETIMEDOUT);
    EXPECT_AT_LEAST(st, "10 s / 20 ms / 10 s: -ETIMEDOUT after", crew_now() - t0, SHORT_NS);
    EXPECT(st, "end inner", crew_timeout_end(&inner), 0);
    EXPECT(st, "end middle", crew_timeout_end(&middle), 1);
    EXPECT(st, "crew_yield in the outer scope", crew_yield(), 0);
    EXPECT(st, "end outer", crew_timeout_end(&outer), 0);
    return NULL;
}

static void test_deadline_nesting(void **state)
{
    crew_test_watchdog(60);
    struct steps st = { 0 };
    run_steps(nesting_main, &st);
}

/* ---- 5. The deadline goes down crew_join --------------------------------------------- */

struct join_down {
    struct steps st;
    struct stubborn child;
};

static void *join_down_main(void *arg)
{
    struct join_down *d = arg;
    struct steps *st = &d->st;
    crew_task_t *t = spawn_stubborn(st, &d->child);
    if (!t)
        return NULL;
    crew_timeout_t s;
    int64_t t0 = crew_now();
    EXPECT(st, "begin a 20 ms scope", crew_timeout_begin(&s, SHORT_NS), 0);
    void *res = MARK_UNSET;
    EXPECT(st, "crew_join of a child that ends only when cancelled", crew_join(t, &res),
           -ETIMEDOUT);
    int64_t elapsed = crew_now() - t0;
    EXPECT(st, "the child had finished when the join returned", atomic_load(&d->child.done), 1);
    EXPECT_AT_LEAST(st, "crew_join in a 20 ms scope: -ETIMEDOUT after", elapsed, SHORT_NS);
    note_result(st, "the join's result slot (1: CREW_TASK_CANCELED, 0: untouched)", res,
                CREW_TASK_CANCELED);
    EXPECT(st, "end of the scope", crew_timeout_end(&s), 1);
    EXPECT(st, "crew_cancelled after the scope", crew_cancelled(), 0);
    EXPECT(st, "crew_yield after the scope", crew_yield(), 0);
    return NULL;
}

static void test_deadline_join(void **state)
{
    crew_test_watchdog(60);
    /* A child that yields, then one that sleeps. */
    for (int sleeps = 0; sleeps < 2; sleeps++) {
        struct join_down d = { 0 };
        d.child.sleeps = sleeps;
        run_steps(join_down_main, &d.st);
        assert_int_equal(atomic_load(&d.child.rc), -ECANCELED);
    }
}

/* ---- 6. crew_wait_for -------------------------------------------------------------- */

struct wait_for_probe {
    struct steps st;
    struct stubborn child[4];
};

/* crew_wait_for on a stubborn child, spawned (and started) by the caller
 * before any scope it opens. Returns the time the call took. */
static int64_t wait_for_stubborn(struct steps *st, crew_task_t *t, struct stubborn *c, int64_t ns,
                                 int want, const char *what)
{
    if (!t)
        return 0;
    void *res = MARK_UNSET;
    int64_t t0 = crew_now();
    EXPECT(st, what, crew_wait_for(t, ns, &res), want);
    int64_t elapsed = crew_now() - t0;
    EXPECT(st, "the child had finished when crew_wait_for returned", atomic_load(&c->done), 1);
    note_result(st, "crew_wait_for's result slot (1: CREW_TASK_CANCELED, 0: untouched)", res,
                CREW_TASK_CANCELED);
    return elapsed;
}

static void *wait_for_main(void *arg)
{
    struct wait_for_probe *w = arg;
    struct steps *st = &w->st;

    /* A child that finishes in time: its result, with 0. */
    crew_task_t *t = NULL;
    int rc = crew_spawn(return_ok, NULL, NULL, &t);
    EXPECT(st, "crew_spawn of a short child", rc, 0);
    if (rc)
        return NULL;
    void *res = MARK_UNSET;
    EXPECT(st, "crew_wait_for(short child, 60 s)", crew_wait_for(t, NEVER_NS, &res), 0);
    EXPECT(st, "its result", res == MARK_OK, 1);
    t = spawn_finished(st);
    if (!t)
        return NULL;
    res = MARK_UNSET;
    EXPECT(st, "crew_wait_for(finished child, 60 s)", crew_wait_for(t, NEVER_NS, &res), 0);
    EXPECT(st, "its result", res == MARK_OK, 1);
    t = spawn_finished(st);
    if (!t)
        return NULL;
    EXPECT(st, "crew_wait_for(finished child, 60 s, NULL)", crew_wait_for(t, NEVER_NS, NULL), 0);

    /* Its time limit goes away with it: a later sleep longer than the limit
     * is not cut short. The call itself may time out under heavy load. */
    t = spawn_finished(st);
    if (!t)
        return NULL;
    NOTE(st, "crew_wait_for(finished child, 20 ms)", crew_wait_for(t, SHORT_NS, NULL));
    int64_t t0 = crew_now();
    EXPECT(st, "crew_sleep(40 ms) after crew_wait_for(20 ms)", crew_sleep(2 * SHORT_NS), 0);
    EXPECT_AT_LEAST(st, "crew_sleep(40 ms) after crew_wait_for(20 ms) lasted", crew_now() - t0,
                    2 * SHORT_NS);

    /* A child that never finishes on its own: cancelled and waited for. */
    t = spawn_stubborn(st, &w->child[0]);
    int64_t elapsed = wait_for_stubborn(st, t, &w->child[0], SHORT_NS, -ETIMEDOUT,
                                        "crew_wait_for(yielding child, 20 ms)");
    EXPECT_AT_LEAST(st, "crew_wait_for(yielding child, 20 ms): -ETIMEDOUT after", elapsed,
                    SHORT_NS);
    EXPECT(st, "crew_yield after crew_wait_for timed out", crew_yield(), 0);
    EXPECT(st, "crew_cancelled after crew_wait_for timed out", crew_cancelled(), 0);
    t = spawn_stubborn(st, &w->child[1]);
    elapsed = wait_for_stubborn(st, t, &w->child[1], SHORT_NS, -ETIMEDOUT,
                                "crew_wait_for(sleeping child, 20 ms)");
    EXPECT_AT_LEAST(st, "crew_wait_for(sleeping child, 20 ms): -ETIMEDOUT after", elapsed,
                    SHORT_NS);
    EXPECT(st, "crew_sleep(0) after crew_wait_for timed out", crew_sleep(0), 0);

    /* Inside a shorter scope, that scope's deadline rules and it reports. */
    crew_timeout_t s;
    t = spawn_stubborn(st, &w->child[2]);
    t0 = crew_now();
    EXPECT(st, "begin a 20 ms scope", crew_timeout_begin(&s, SHORT_NS), 0);
    wait_for_stubborn(st, t, &w->child[2], NEVER_NS, -ETIMEDOUT,
                      "crew_wait_for(yielding child, 60 s) in a 20 ms scope");
    EXPECT_AT_LEAST(st, "crew_wait_for(60 s) in a 20 ms scope: -ETIMEDOUT after", crew_now() - t0,
                    SHORT_NS);
    EXPECT(st, "crew_yield in the expired scope", crew_yield(), -ETIMEDOUT);
    EXPECT(st, "end of the 20 ms scope", crew_timeout_end(&s), 1);

    /* Inside a longer scope, crew_wait_for's own limit does not expire it. */
    t = spawn_stubborn(st, &w->child[3]);
    EXPECT(st, "begin a 10 s scope", crew_timeout_begin(&s, 10 * CREW_S), 0);
    wait_for_stubborn(st, t, &w->child[3], SHORT_NS, -ETIMEDOUT,
                      "crew_wait_for(yielding child, 20 ms) in a 10 s scope");
    EXPECT(st, "crew_yield in the 10 s scope", crew_yield(), 0);
    EXPECT(st, "end of the 10 s scope", crew_timeout_end(&s), 0);
    return NULL;
}

/* A task cancelled before or while it waits in crew_wait_for (or in a
 * crew_join inside a scope): the child is cancelled too. */
struct wait_cancel {
    bool self_cancel;  /* Cancel itself before the call, instead of the test thread. */
    bool join_in_scope; /* crew_join in a 60 s scope instead of crew_wait_for. */
    struct stubborn child;
    atomic_int waiting;
    struct steps st;
};

static void *wait_cancel_main(void *arg)
{
    struct wait_cancel *c = arg;
    struct steps *st = &c->st;
    crew_task_t *t = spawn_stubborn(st, &c->child);
    if (!t)
        return NULL;
    if (c->self_cancel)
        EXPECT(st, "crew_task_cancel(crew_self())", crew_task_cancel(crew_self()), 0);
    crew_timeout_t s;
    if (c->join_in_scope)
        EXPECT(st, "begin a 60 s scope", crew_timeout_begin(&s, NEVER_NS), 0);
    atomic_store(&c->waiting, 1);
    void *res = MARK_UNSET;
    int rc = c->join_in_scope ? crew_join(t, &res) : crew_wait_for(t, NEVER_NS, &res);
    EXPECT(st, c->join_in_scope ? "crew_join in a scope, cancelled" : "crew_wait_for, cancelled",
           rc, -ECANCELED);
    EXPECT(st, "the child had finished when the call returned", atomic_load(&c->child.done), 1);
    EXPECT(st, "the result slot", res == CREW_TASK_CANCELED, 1);
    if (c->join_in_scope)
        EXPECT(st, "end of the scope (it did not expire)", crew_timeout_end(&s), 0);
    EXPECT(st, "crew_yield afterwards", crew_yield(), -ECANCELED);
    return CREW_TASK_CANCELED;
}

static void wait_cancel_case(bool self_cancel, bool join_in_scope)
{
    struct wait_cancel c = { .self_cancel = self_cancel, .join_in_scope = join_in_scope };
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, wait_cancel_main, &c, NULL, &t), 0);
    if (!self_cancel) {
        /* After setting waiting the task suspends nowhere but in the call. */
        TC_WAIT_UNTIL(atomic_load(&c.waiting) && crew_task_state(t) == CREW_TASK_WAITING);
        assert_int_equal(crew_task_cancel(t), 0);
    }
    void *res = MARK_UNSET;
    assert_int_equal(crew_join(t, &res), -ECANCELED);
    assert_ptr_equal(res, CREW_TASK_CANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    steps_assert(&c.st);
    assert_int_equal(atomic_load(&c.child.rc), -ECANCELED);
}

static void test_deadline_wait_for(void **state)
{
    crew_test_watchdog(60);
    struct wait_for_probe w = { 0 };
    w.child[1].sleeps = true;
    run_steps(wait_for_main, &w.st);
    for (int i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&w.child[i].rc), -ECANCELED);
    wait_cancel_case(false, false);
    wait_cancel_case(true, false);
    wait_cancel_case(false, true);
}

/* ---- 7. Cancellation takes precedence ------------------------------------------------ */

struct precedence {
    atomic_int ready, cancelled; /* The external case's handshake. */
    struct steps st;
};

/* Cancelled by the test thread while its scope has expired unreported. */
static void *precedence_external_main(void *arg)
{
    struct precedence *p = arg;
    struct steps *st = &p->st;
    crew_timeout_t s;
    EXPECT(st, "crew_deadline_begin(now)", crew_deadline_begin(&s, crew_now()), 0);
    atomic_store(&p->ready, 1);
    while (!atomic_load(&p->cancelled))
        sched_yield();
    EXPECT(st, "crew_yield, cancelled in an expired scope", crew_yield(), -ECANCELED);
    EXPECT(st, "crew_sleep(0), cancelled in an expired scope", crew_sleep(0), -ECANCELED);
    /* In a shield region neither is reported; after it, the cancellation. */
    EXPECT(st, "crew_shield_begin", crew_shield_begin(), 0);
    EXPECT(st, "crew_yield in the shield region", crew_yield(), 0);
    EXPECT(st, "crew_shield_end", crew_shield_end(), 0);
    EXPECT(st, "crew_yield after the shield region", crew_yield(), -ECANCELED);
    /* No suspension point reported the deadline. */
    EXPECT(st, "end of the scope", crew_timeout_end(&s), 0);
    return CREW_TASK_CANCELED;
}

static void *precedence_self_main(void *arg)
{
    struct steps *st = arg;
    crew_task_t *finished = spawn_finished(st);
    if (!finished)
        return NULL;
    crew_timeout_t s;

    /* Cancelled before the deadline was ever reported. */
    EXPECT(st, "begin a 0 ns scope", crew_timeout_begin(&s, 0), 0);
    EXPECT(st, "crew_task_cancel(crew_self())", crew_task_cancel(crew_self()), 0);
    EXPECT(st, "crew_yield calls that did not return -ECANCELED", count_yields_not(-ECANCELED), 0);
    EXPECT(st, "crew_sleep(0)", crew_sleep(0), -ECANCELED);
    EXPECT(st, "crew_sleep(1 ms)", crew_sleep(CREW_MS), -ECANCELED);
    EXPECT(st, "crew_join of a finished child", crew_join(finished, NULL), -ECANCELED);
    EXPECT(st, "crew_wait_for(NULL) still checks its argument", crew_wait_for(NULL, 0, NULL),
           -EINVAL);
    EXPECT(st, "end of the scope (no -ETIMEDOUT was reported)", crew_timeout_end(&s), 0);
    return CREW_TASK_CANCELED;
}

/* The deadline was reported first; a later cancellation still wins. */
static void *precedence_after_main(void *arg)
{
    struct steps *st = arg;
    crew_timeout_t s;
    EXPECT(st, "begin a 0 ns scope", crew_timeout_begin(&s, 0), 0);
    EXPECT(st, "crew_yield in it", crew_yield(), -ETIMEDOUT);
    EXPECT(st, "crew_task_cancel(crew_self())", crew_task_cancel(crew_self()), 0);
    EXPECT(st, "crew_yield after the cancel", crew_yield(), -ECANCELED);
    EXPECT(st, "end of the scope", crew_timeout_end(&s), 1);
    EXPECT(st, "crew_yield after the scope", crew_yield(), -ECANCELED);
    return CREW_TASK_CANCELED;
}

static void test_deadline_cancel_precedence(void **state)
{
    crew_test_watchdog(60);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t = NULL;
    void *res = MARK_UNSET;

    struct precedence p = { 0 };
    assert_int_equal(crew_rt_spawn(rt, precedence_external_main, &p, NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&p.ready));
    assert_int_equal(crew_task_cancel(t), 0);
    atomic_store(&p.cancelled, 1);
    assert_int_equal(crew_join(t, &res), -ECANCELED);
    assert_ptr_equal(res, CREW_TASK_CANCELED);

    struct steps self = { 0 }, after = { 0 };
    assert_int_equal(crew_rt_spawn(rt, precedence_self_main, &self, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    assert_int_equal(crew_rt_spawn(rt, precedence_after_main, &after, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    steps_assert(&p.st);
    steps_assert(&self);
    steps_assert(&after);
}

/* ---- 8. Shield regions hold deadlines back -------------------------------------------- */

static void *shielded_sleep(void *arg)
{
    return (void *)(intptr_t)crew_sleep(*(int64_t *)arg);
}

static void *shield_main(void *arg)
{
    struct steps *st = arg;
    crew_timeout_t s;
    int64_t t0, five_ms = 5 * CREW_MS;

    /* Expired, not yet reported. */
    EXPECT(st, "crew_deadline_begin(now)", crew_deadline_begin(&s, crew_now()), 0);
    EXPECT(st, "crew_shield_begin", crew_shield_begin(), 0);
    t0 = crew_now();
    EXPECT(st, "crew_sleep(5 ms) shielded in an expired scope", crew_sleep(five_ms), 0);
    EXPECT_AT_LEAST(st, "crew_sleep(5 ms) shielded in an expired scope lasted", crew_now() - t0,
                    five_ms);
    EXPECT(st, "crew_yield shielded", crew_yield(), 0);
    crew_task_t *t = NULL;
    int rc = crew_spawn(return_ok, NULL, NULL, &t);
    EXPECT(st, "crew_spawn shielded", rc, 0);
    if (!rc) {
        void *res = MARK_UNSET;
        EXPECT(st, "crew_join shielded", crew_join(t, &res), 0);
        EXPECT(st, "its result (the child was not cancelled)", res == MARK_OK, 1);
    }
    EXPECT(st, "crew_shield_end", crew_shield_end(), 0);
    EXPECT(st, "crew_yield after the shield region", crew_yield(), -ETIMEDOUT);
    EXPECT(st, "end of the scope", crew_timeout_end(&s), 1);

    /* Already reported, then shielded: held back again, reported after. */
    EXPECT(st, "begin a 0 ns scope", crew_timeout_begin(&s, 0), 0);
    EXPECT(st, "crew_yield in it", crew_yield(), -ETIMEDOUT);
    EXPECT(st, "crew_shield_begin", crew_shield_begin(), 0);
    t0 = crew_now();
    EXPECT(st, "crew_sleep(5 ms) shielded after a report", crew_sleep(five_ms), 0);
    EXPECT_AT_LEAST(st, "crew_sleep(5 ms) shielded after a report lasted", crew_now() - t0,
                    five_ms);
    EXPECT(st, "crew_shield_end", crew_shield_end(), 0);
    EXPECT(st, "crew_sleep(0) after the shield region", crew_sleep(0), -ETIMEDOUT);
    EXPECT(st, "end of the scope", crew_timeout_end(&s), 1);

    /* The deadline passes during a shielded sleep: the sleep runs its full
     * time, and the next suspension point after the region reports it. */
    EXPECT(st, "begin a 20 ms scope", crew_timeout_begin(&s, SHORT_NS), 0);
    EXPECT(st, "crew_shield_begin", crew_shield_begin(), 0);
    t0 = crew_now();
    EXPECT(st, "crew_sleep(40 ms) shielded across a 20 ms deadline", crew_sleep(2 * SHORT_NS), 0);
    EXPECT_AT_LEAST(st, "crew_sleep(40 ms) shielded across the deadline lasted", crew_now() - t0,
                    2 * SHORT_NS);
    EXPECT(st, "crew_shield_end", crew_shield_end(), 0);
    EXPECT(st, "crew_yield after the shield region", crew_yield(), -ETIMEDOUT);
    EXPECT(st, "end of the scope", crew_timeout_end(&s), 1);

    /* Nested regions: held back until the outermost one ends. */
    EXPECT(st, "begin a 0 ns scope", crew_timeout_begin(&s, 0), 0);
    EXPECT(st, "crew_shield_begin (outer)", crew_shield_begin(), 0);
    EXPECT(st, "crew_shield_begin (inner)", crew_shield_begin(), 0);
    EXPECT(st, "crew_shield_end (inner)", crew_shield_end(), 0);
    EXPECT(st, "crew_yield still in the outer region", crew_yield(), 0);
    EXPECT(st, "crew_shield_end (outer)", crew_shield_end(), 0);
    EXPECT(st, "crew_yield after both regions", crew_yield(), -ETIMEDOUT);
    EXPECT(st, "end of the scope", crew_timeout_end(&s), 1);

    /* The callback form. */
    EXPECT(st, "begin a 0 ns scope", crew_timeout_begin(&s, 0), 0);
    t0 = crew_now();
    EXPECT(st, "crew_sleep(5 ms) in crew_shield in an expired scope",
           (intptr_t)crew_shield(shielded_sleep, &five_ms), 0);
    EXPECT_AT_LEAST(st, "crew_sleep(5 ms) in crew_shield lasted", crew_now() - t0, five_ms);
    EXPECT(st, "crew_yield after crew_shield", crew_yield(), -ETIMEDOUT);
    EXPECT(st, "end of the scope", crew_timeout_end(&s), 1);

    /* A scope opened inside a shield region: the header holds every
     * deadline back there; whether this one too is printed, not checked. */
    EXPECT(st, "crew_shield_begin", crew_shield_begin(), 0);
    EXPECT(st, "begin a 0 ns scope in the shield region", crew_timeout_begin(&s, 0), 0);
    NOTE(st, "crew_yield in a 0 ns scope opened in a shield region", crew_yield());
    NOTE(st, "end of that scope", crew_timeout_end(&s));
    EXPECT(st, "crew_shield_end", crew_shield_end(), 0);
    EXPECT(st, "crew_yield at the end", crew_yield(), 0);
    return NULL;
}

static void test_deadline_shield(void **state)
{
    crew_test_watchdog(60);
    struct steps st = { 0 };
    run_steps(shield_main, &st);
}

/* ---- 8b. Scopes opened inside a shield apply there; a scope cannot be opened twice ---- */

struct inner_shield {
    struct stubborn child;
    int wait_rc, reopen_rc, end_rc, end_again_rc, yield_after;
    int64_t waited;
};

static void *inner_shield_main(void *arg)
{
    struct inner_shield *x = arg;
    crew_task_t *t = NULL;
    if (crew_spawn(stubborn_body, &x->child, NULL, &t))
        return NULL;
    while (!atomic_load(&x->child.started))
        crew_yield();
    /* Trio's rule: the shield holds back outer deadlines, not its own. */
    crew_shield_begin();
    int64_t t0 = crew_now();
    x->wait_rc = crew_wait_for(t, 20 * CREW_MS, NULL);
    x->waited = crew_now() - t0;
    crew_shield_end();

    crew_timeout_t scope;
    crew_timeout_begin(&scope, NEVER_NS);
    x->reopen_rc = crew_timeout_begin(&scope, 0);
    x->end_rc = crew_timeout_end(&scope);
    x->end_again_rc = crew_timeout_end(&scope);
    x->yield_after = crew_yield();
    return MARK_OK;
}

static void test_deadline_inside_shield(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct inner_shield x = { .child = { .sleeps = false } };
    assert_ptr_equal(tc_run(inner_shield_main, &x), MARK_OK);
    tc_assert_clean();
    assert_int_equal(x.wait_rc, -ETIMEDOUT);
    assert_true(x.waited >= 20 * CREW_MS);
    assert_int_equal(atomic_load(&x.child.rc), -ECANCELED);
    assert_int_equal(atomic_load(&x.child.done), 1);
    assert_int_equal(x.reopen_rc, -EINVAL);
    assert_int_equal(x.end_rc, 0);
    assert_int_equal(x.end_again_rc, -EINVAL);
    assert_int_equal(x.yield_after, 0);
}

/* ---- 9. Race: the time limit vs. the child finishing ---------------------------------- */

#define RACE_ITERS 10000
#define RACE_MAX_NS (300 * CREW_US)

struct race_iter {
    int64_t sleep_ns, limit_ns;  /* Written by the test thread before the drivers start. */
    atomic_int started, done;
    atomic_int sleep_rc;
    /* Written by the driver after crew_wait_for, read after the drivers' joins. */
    int spawn_rc, rc, started_at_return, done_at_return;
    void *res;
};

/* The child's result names its iteration, so a result from the wrong child
 * shows. */
static void *race_child(void *arg)
{
    struct race_iter *it = arg;
    atomic_store(&it->started, 1);
    int rc = crew_sleep(it->sleep_ns);
    atomic_store(&it->sleep_rc, rc);
    atomic_store(&it->done, 1);
    return rc == 0 ? (void *)it : rc == -ECANCELED ? CREW_TASK_CANCELED : NULL;
}

struct race_driver {
    struct race_iter *iters;
    unsigned first, stride, n;
    struct tc_progress *prog;
};

static void *race_driver_main(void *arg)
{
    struct race_driver *d = arg;
    for (unsigned i = d->first; i < d->n; i += d->stride) {
        struct race_iter *it = &d->iters[i];
        crew_task_t *t = NULL;
        it->spawn_rc = crew_spawn(race_child, it, NULL, &t);
        if (!it->spawn_rc) {
            it->res = MARK_UNSET;
            it->rc = crew_wait_for(t, it->limit_ns, &it->res);
            it->started_at_return = atomic_load(&it->started);
            it->done_at_return = atomic_load(&it->done);
        }
        atomic_fetch_add(&d->prog->count, 1);
    }
    return NULL;
}

enum { RACE_FINISHED, RACE_TIMEOUT_NEVER_RAN, RACE_TIMEOUT_CANCELLED, RACE_TIMEOUT_FINISHED,
       RACE_KINDS };

static void test_deadline_race(void **state)
{
    crew_test_watchdog(120);
    uint64_t seed = crew_test_seed();
    unsigned n = RACE_ITERS / crew_test_slowdown();
    struct race_iter *iters = calloc(n, sizeof *iters);
    assert_non_null(iters);
    for (unsigned i = 0; i < n; i++) {
        iters[i].sleep_ns = (int64_t)(crew_test_rand(&seed) % (uint64_t)(RACE_MAX_NS + 1));
        iters[i].limit_ns = (int64_t)(crew_test_rand(&seed) % (uint64_t)(RACE_MAX_NS + 1));
    }
    /* One driver per worker, so completions, timer wakes and cancellations
     * cross workers. */
    crew_rt_t *rt = tc_rt_create();
    unsigned ndrivers = crew_rt_workers(rt);
    struct race_driver drivers[CREW_MAX_WORKERS];
    crew_task_t *t[CREW_MAX_WORKERS];
    struct tc_progress prog;
    tc_progress_start(&prog, "crew_wait_for race", 10);
    int64_t t0 = crew_now();
    for (unsigned k = 0; k < ndrivers; k++) {
        drivers[k] = (struct race_driver){ iters, k, ndrivers, n, &prog };
        assert_int_equal(crew_rt_spawn(rt, race_driver_main, &drivers[k], NULL, &t[k]), 0);
    }
    for (unsigned k = 0; k < ndrivers; k++)
        assert_int_equal(crew_join(t[k], NULL), 0);
    int64_t elapsed = crew_now() - t0;
    tc_progress_stop(&prog);
    assert_int_equal(crew_rt_destroy(rt), 0);

    unsigned long count[RACE_KINDS] = { 0 };
    for (unsigned i = 0; i < n; i++) {
        struct race_iter *it = &iters[i];
        int started = atomic_load(&it->started), done = atomic_load(&it->done);
        int sleep_rc = atomic_load(&it->sleep_rc);
        bool ok = false;
        int kind = RACE_KINDS;
        if (it->spawn_rc) {
            /* Reported below. */
        } else if (started != it->started_at_return || done != it->done_at_return) {
            /* The child ran on after crew_wait_for returned. */
        } else if (it->rc == 0) {
            ok = done && sleep_rc == 0 && it->res == (void *)it;
            kind = RACE_FINISHED;
        } else if (it->rc == -ETIMEDOUT) {
            ok = started == done;
            kind = !started                 ? RACE_TIMEOUT_NEVER_RAN
                   : sleep_rc == -ECANCELED ? RACE_TIMEOUT_CANCELLED
                                            : RACE_TIMEOUT_FINISHED;
            ok = ok && (kind != RACE_TIMEOUT_FINISHED || sleep_rc == 0);
        }
        if (!ok)
            fail_msg("iteration %u (seed %#llx): spawn %d, crew_wait_for(%lld ns) %d, result %p "
                     "(own %p), child sleep %lld ns: started %d/%d, done %d/%d (at return/at "
                     "the end), its sleep %d",
                     i, (unsigned long long)crew_test_seed(), it->spawn_rc,
                     (long long)it->limit_ns, it->rc, it->res, (void *)it,
                     (long long)it->sleep_ns, it->started_at_return, started,
                     it->done_at_return, done, sleep_rc);
        count[kind]++;
    }
    fprintf(stderr,
            "# %u iterations in %.1f ms, %u drivers: finished in time %lu; timed out: child never "
            "ran %lu, cancelled in its sleep %lu, finished its sleep anyway %lu\n",
            n, (double)elapsed / 1e6, ndrivers, count[RACE_FINISHED],
            count[RACE_TIMEOUT_NEVER_RAN], count[RACE_TIMEOUT_CANCELLED],
            count[RACE_TIMEOUT_FINISHED]);
    free(iters);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_deadline_errors),
    cmocka_unit_test(test_deadline_expiry),
    cmocka_unit_test(test_deadline_sticky),
    cmocka_unit_test(test_deadline_nesting),
    cmocka_unit_test(test_deadline_join),
    cmocka_unit_test(test_deadline_wait_for),
    cmocka_unit_test(test_deadline_cancel_precedence),
    cmocka_unit_test(test_deadline_shield),
    cmocka_unit_test(test_deadline_inside_shield),
    cmocka_unit_test(test_deadline_race),
};

CREW_TEST_MAIN("deadline", tests)
