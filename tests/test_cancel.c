/* Cancellation (include/crew/task.h, "Cancellation"): tasks cancelled before
 * they start, cancellation of a task blocked in crew_join and its propagation
 * down the join, stickiness, tasks that handle the request, shield regions,
 * the error paths of crew_task_cancel, and a cancel-versus-completion race
 * (RELIABILITY.md rows 11-12 in spirit). */
#include "task_util.h"

/* What a task returns when it ends normally, and what crew_shield's callback
 * returns. */
#define MARK_OK ((void *)(uintptr_t)0x600D)
#define MARK_SHIELD ((void *)(uintptr_t)0x5E1D)
/* Stored in a result slot before a join, so the test sees whether the join
 * wrote it. */
#define MARK_UNSET ((void *)(uintptr_t)0xBAD)

/* ---- Shared task bodies ------------------------------------------------------ */

static void *return_ok(void *arg)
{
    (void)arg;
    return MARK_OK;
}

/* Yield until a suspension point reports the cancellation (unbounded: the
 * test cancels, and the watchdog bounds it); returns that report. */
static int yield_until_cancelled(void)
{
    int rc;
    while ((rc = crew_yield()) == 0)
        continue;
    return rc;
}

/* Started, then yields until cancelled, and reports it. */
struct until_cancel {
    atomic_int started;
    atomic_int rc; /* What the last crew_yield returned. */
};

static void *until_cancel_body(void *arg)
{
    struct until_cancel *u = arg;
    atomic_store(&u->started, 1);
    atomic_store(&u->rc, yield_until_cancelled());
    return CREW_TASK_CANCELED;
}

/* Keeps its worker's thread busy without suspending (it never calls into
 * crew), so that no other task can run on that worker until released. */
struct hog {
    atomic_int started;
    atomic_int release;
};

static void *hog_body(void *arg)
{
    struct hog *h = arg;
    atomic_fetch_add(&h->started, 1);
    while (!atomic_load(&h->release))
        sched_yield();
    return NULL;
}

/* Spawn n hogs into rt and wait until each runs, so n workers are occupied. */
static void hogs_start(crew_rt_t *rt, struct hog *h, crew_task_t **t, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(crew_rt_spawn(rt, hog_body, h, NULL, &t[i]), 0);
    TC_WAIT_UNTIL((unsigned)atomic_load(&h->started) == n);
}

static void hogs_stop(struct hog *h, crew_task_t **t, unsigned n)
{
    atomic_store(&h->release, 1);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
}

/* ---- 1. Cancel before start -------------------------------------------------- */

/* A body that records whether it ran and whether it was cancelled by then. */
struct body_probe {
    atomic_int ran;
    atomic_int saw_cancel;
};

static void *probe_body(void *arg)
{
    struct body_probe *p = arg;
    atomic_store(&p->ran, 1);
    if (crew_cancelled()) {
        atomic_store(&p->saw_cancel, 1);
        return CREW_TASK_CANCELED;
    }
    return MARK_OK;
}

/* The outcome of joining a probe_body task that was cancelled once with
 * result cancel_rc (the joiner itself not cancelled). strict: it cannot have
 * started before the cancel, so it must never run. */
static void check_cancelled_probe(struct body_probe *p, int cancel_rc, int join_rc, void *res,
                                  bool strict)
{
    int ran = atomic_load(&p->ran), saw = atomic_load(&p->saw_cancel);
    if (strict)
        TC_CHECK_EQ(ran, 0);
    TC_CHECK(cancel_rc == 0 || cancel_rc == -ESRCH);
    if (!ran) {
        /* Never ran: only a cancel stops a task from running. */
        TC_CHECK_EQ(cancel_rc, 0);
        TC_CHECK_EQ(join_rc, -ECANCELED);
        TC_CHECK(res == NULL);
    } else if (saw) {
        TC_CHECK_EQ(cancel_rc, 0);
        TC_CHECK_EQ(join_rc, -ECANCELED);
        TC_CHECK(res == CREW_TASK_CANCELED);
    } else {
        /* Finished first (-ESRCH), or cancelled after its check: it ended
         * normally, and its joiner was not cancelled. */
        TC_CHECK_EQ(join_rc, 0);
        TC_CHECK(res == MARK_OK);
    }
}

#define BS_ROUNDS 60
#define BS_KIDS 4

struct before_start {
    bool strict;
    struct body_probe probe[BS_ROUNDS][BS_KIDS];
    bool detached[BS_ROUNDS][BS_KIDS];
    atomic_int done;
};

static bool all_done(crew_task_t *const *t, int n)
{
    for (int i = 0; i < n; i++)
        if (crew_task_state(t[i]) != CREW_TASK_DONE)
            return false;
    return true;
}

/* Spawn, cancel at once (no suspension in between), then give the handles
 * back three ways: join straight away (the join takes the queued child
 * itself), join after the scheduler met the cancelled tasks in its queue, or
 * detach. */
static void *before_start_main(void *arg)
{
    struct before_start *b = arg;
    for (int r = 0; r < BS_ROUNDS; r++) {
        crew_task_t *t[BS_KIDS] = { 0 };
        int crc[BS_KIDS];
        for (int i = 0; i < BS_KIDS; i++) {
            int rc = crew_spawn(probe_body, &b->probe[r][i], NULL, &t[i]);
            TC_CHECK_EQ(rc, 0);
            if (rc)
                return NULL;
        }
        for (int i = 0; i < BS_KIDS; i++)
            crc[i] = crew_task_cancel(t[i]);
        if (r % 3 == 1)
            TC_CHECK(TC_SPIN_UNTIL(all_done(t, BS_KIDS), 1000000));
        for (int i = BS_KIDS - 1; i >= 0; i--) {
            if (r % 3 == 2 && i > 0) {
                b->detached[r][i] = true;
                TC_CHECK_EQ(crew_detach(t[i]), 0);
                continue;
            }
            void *res = MARK_UNSET;
            int jrc = crew_join(t[i], &res);
            check_cancelled_probe(&b->probe[r][i], crc[i], jrc, res, b->strict);
        }
        /* The joiner was never cancelled. */
        TC_CHECK_EQ(crew_cancelled(), 0);
        TC_CHECK_EQ(crew_yield(), 0);
    }
    atomic_store(&b->done, 1);
    return NULL;
}

/* Detached probes are only observable once the runtime has finished them. */
static void check_detached(struct before_start *b)
{
    for (int r = 0; r < BS_ROUNDS; r++)
        for (int i = 0; i < BS_KIDS; i++)
            if (b->detached[r][i] && b->strict && atomic_load(&b->probe[r][i].ran))
                fail_msg("round %d: detached task %d ran after it was cancelled before start", r, i);
}

/* Every other worker is held by a hog, so the children can only run on the
 * spawner's worker, which does not suspend between spawn and cancel: with any
 * worker count, no child may run. */
static void test_cancel_before_start(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct before_start *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->strict = true;
    crew_rt_t *rt = tc_rt_create();
    unsigned nhogs = crew_rt_workers(rt) - 1;
    struct hog h = { 0 };
    crew_task_t *hogs[CREW_MAX_WORKERS], *t = NULL;
    hogs_start(rt, &h, hogs, nhogs);
    assert_int_equal(crew_rt_spawn(rt, before_start_main, b, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(atomic_load(&b->done), 1);
    hogs_stop(&h, hogs, nhogs);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    check_detached(b);
    free(b);
}

/* Without hogs the children may be stolen and run before the cancel with 2
 * or more workers: then only the consistency of the outcome is checked. */
static void test_cancel_before_start_racy(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct before_start *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->strict = crew_test_workers() == 1;
    tc_run(before_start_main, b);
    tc_assert_clean();
    assert_int_equal(atomic_load(&b->done), 1);
    check_detached(b);
    int ran = 0;
    for (int r = 0; r < BS_ROUNDS; r++)
        for (int i = 0; i < BS_KIDS; i++)
            ran += atomic_load(&b->probe[r][i].ran);
    fprintf(stderr, "# %d of %d cancelled children ran anyway\n", ran, BS_ROUNDS * BS_KIDS);
    free(b);
}

/* From a plain thread: the task goes through the injection queue while every
 * worker is held by a hog, is cancelled there, and must never run. */
static void test_cancel_before_start_thread(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    crew_rt_t *rt = tc_rt_create();
    unsigned nhogs = crew_rt_workers(rt);
    struct hog h = { 0 };
    crew_task_t *hogs[CREW_MAX_WORKERS];
    struct body_probe p[8] = { 0 };
    crew_task_t *t[8];
    int crc[8];
    hogs_start(rt, &h, hogs, nhogs);
    for (int i = 0; i < 8; i++)
        assert_int_equal(crew_rt_spawn(rt, probe_body, &p[i], NULL, &t[i]), 0);
    for (int i = 0; i < 8; i++) {
        crc[i] = crew_task_cancel(t[i]);
        assert_int_equal(crc[i], 0);
    }
    hogs_stop(&h, hogs, nhogs);
    for (int i = 0; i < 8; i++) {
        void *res = MARK_UNSET;
        int jrc = crew_join(t[i], &res);
        check_cancelled_probe(&p[i], crc[i], jrc, res, true);
    }
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
}

/* ---- 2. Cancel a task blocked in crew_join ------------------------------------ */

#define CHAIN_MAX 4

/* root (depth d) joins a task of depth d-1, ..., down to a leaf (depth 0)
 * that yields until released or cancelled. */
struct chain {
    atomic_int leaf_started, leaf_saw_cancel, leaf_done, release;
    atomic_int joining;      /* Levels that reached their crew_join. */
    atomic_int hold;         /* Levels spin (without suspending) while set, before joining. */
    atomic_int held;         /* Levels that spawned their child and reached the hold. */
    atomic_int leaf_hold;    /* A cancelled leaf spins (without suspending) while set. */
    struct chain_level {
        struct chain *c;
        int depth;
        /* Written by the level's task before it returns; read after the
         * join of the root, which publishes them level by level. */
        int join_rc;
        void *join_res;
        int cancelled_after, yield_after;
    } level[CHAIN_MAX];
};

static void *chain_leaf(struct chain *c)
{
    atomic_store(&c->leaf_started, 1);
    for (;;) {
        int rc = crew_yield();
        if (rc == -ECANCELED) {
            atomic_store(&c->leaf_saw_cancel, 1);
            while (atomic_load(&c->leaf_hold))
                sched_yield();
            atomic_store(&c->leaf_done, 1);
            return CREW_TASK_CANCELED;
        }
        TC_CHECK_EQ(rc, 0);
        if (atomic_load(&c->release)) {
            atomic_store(&c->leaf_done, 1);
            return MARK_OK;
        }
    }
}

static void *chain_body(void *arg)
{
    struct chain_level *l = arg;
    struct chain *c = l->c;
    if (l->depth == 0)
        return chain_leaf(c);
    crew_task_t *t = NULL;
    int rc = crew_spawn(chain_body, &c->level[l->depth - 1], NULL, &t);
    TC_CHECK_EQ(rc, 0);
    if (rc)
        return NULL;
    atomic_fetch_add(&c->held, 1);
    while (atomic_load(&c->hold))
        sched_yield();
    atomic_fetch_add(&c->joining, 1);
    l->join_res = MARK_UNSET;
    l->join_rc = crew_join(t, &l->join_res);
    l->cancelled_after = crew_cancelled();
    l->yield_after = crew_yield();
    return l->join_rc == -ECANCELED ? CREW_TASK_CANCELED : MARK_OK;
}

static void chain_init(struct chain *c)
{
    memset(c, 0, sizeof *c);
    for (int d = 0; d < CHAIN_MAX; d++) {
        c->level[d].c = c;
        c->level[d].depth = d;
    }
}

/* After the root was cancelled and joined: every level saw the cancellation
 * come down its join, and the leaf finished before its joiner returned. */
static void chain_check_cancelled(struct chain *c, int depth, bool leaf_may_not_run)
{
    assert_int_equal(atomic_load(&c->release), 0);
    bool leaf_ran = atomic_load(&c->leaf_started);
    if (!leaf_may_not_run)
        assert_true(leaf_ran);
    if (leaf_ran) {
        assert_int_equal(atomic_load(&c->leaf_saw_cancel), 1);
        assert_int_equal(atomic_load(&c->leaf_done), 1);
    }
    for (int d = 1; d <= depth; d++) {
        struct chain_level *l = &c->level[d];
        if (l->join_rc != -ECANCELED || l->cancelled_after != 1 || l->yield_after != -ECANCELED)
            fail_msg("level %d of %d: join %d (want %d), crew_cancelled %d, then crew_yield %d",
                     d, depth, l->join_rc, -ECANCELED, l->cancelled_after, l->yield_after);
        if (d == 1 && !leaf_ran)
            assert_null(l->join_res);
        else
            assert_ptr_equal(l->join_res, CREW_TASK_CANCELED);
    }
}

static void cancel_blocked_join(int depth)
{
    struct chain *c = malloc(sizeof *c);
    assert_non_null(c);
    chain_init(c);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *root = NULL;
    assert_int_equal(crew_rt_spawn(rt, chain_body, &c->level[depth], NULL, &root), 0);
    /* The root is blocked once the leaf runs and the root has suspended in its
     * join (crew_join is its only suspension point). */
    TC_WAIT_UNTIL(atomic_load(&c->leaf_started) && atomic_load(&c->joining) == depth &&
                    crew_task_state(root) == CREW_TASK_WAITING);
    assert_int_equal(crew_task_cancel(root), 0);
    void *res = MARK_UNSET;
    assert_int_equal(crew_join(root, &res), -ECANCELED);
    assert_ptr_equal(res, CREW_TASK_CANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    chain_check_cancelled(c, depth, false);
    free(c);
}

static void test_cancel_blocked_join(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    cancel_blocked_join(1);
    cancel_blocked_join(3);
}

/* Cancelled after spawning its child but before reaching crew_join: the join
 * cancels the child and still waits for it. With one worker the child has not
 * started (the parent never suspended), so it never runs. */
static void test_cancel_before_join(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct chain *c = malloc(sizeof *c);
    assert_non_null(c);
    chain_init(c);
    atomic_store(&c->hold, 1);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *root = NULL;
    assert_int_equal(crew_rt_spawn(rt, chain_body, &c->level[1], NULL, &root), 0);
    TC_WAIT_UNTIL(atomic_load(&c->held) == 1);
    assert_int_equal(crew_task_cancel(root), 0);
    atomic_store(&c->hold, 0);
    void *res = MARK_UNSET;
    assert_int_equal(crew_join(root, &res), -ECANCELED);
    assert_ptr_equal(res, CREW_TASK_CANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    chain_check_cancelled(c, 1, true);
    if (crew_test_workers() == 1)
        assert_int_equal(atomic_load(&c->leaf_started), 0);
    free(c);
}

/* ---- 3. Stickiness ------------------------------------------------------------- */

#define STICKY_REPEAT 1000

struct sticky {
    atomic_int ready;
    int first_rc;
    int bad_yield, bad_yield_rc, bad_cancelled;
    int join_finished_rc;
    void *join_finished_res;
    int join_new_rc;
    void *join_new_res;
    struct body_probe probe;
    int bad_yield_after, bad_yield_after_rc;
};

static int count_sticky_failures(int *last_rc)
{
    int bad = 0;
    for (int i = 0; i < STICKY_REPEAT; i++) {
        int rc = crew_yield();
        if (rc != -ECANCELED) {
            bad++;
            *last_rc = rc;
        }
    }
    return bad;
}

static void *sticky_main(void *arg)
{
    struct sticky *s = arg;
    /* A child that is finished, not joined, when the cancellation comes. */
    crew_task_t *finished = NULL;
    TC_CHECK_EQ(crew_spawn(return_ok, NULL, NULL, &finished), 0);
    if (!finished)
        return NULL;
    TC_CHECK(TC_SPIN_UNTIL(crew_task_state(finished) == CREW_TASK_DONE, 10000000));
    atomic_store(&s->ready, 1);
    s->first_rc = yield_until_cancelled();
    s->bad_yield = count_sticky_failures(&s->bad_yield_rc);
    for (int i = 0; i < STICKY_REPEAT; i++)
        s->bad_cancelled += crew_cancelled() != 1;
    /* crew_join is a suspension point: it reports the caller's cancellation
     * even for a task that has already finished. */
    s->join_finished_res = MARK_UNSET;
    s->join_finished_rc = crew_join(finished, &s->join_finished_res);
    /* A child spawned after the cancellation is cancelled by the join. */
    crew_task_t *t = NULL;
    TC_CHECK_EQ(crew_spawn(probe_body, &s->probe, NULL, &t), 0);
    if (t) {
        s->join_new_res = MARK_UNSET;
        s->join_new_rc = crew_join(t, &s->join_new_res);
    }
    s->bad_yield_after = count_sticky_failures(&s->bad_yield_after_rc);
    return CREW_TASK_CANCELED;
}

static void test_cancel_sticky(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct sticky s = { 0 };
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, sticky_main, &s, NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&s.ready));
    assert_int_equal(crew_task_cancel(t), 0);
    void *res = MARK_UNSET;
    assert_int_equal(crew_join(t, &res), -ECANCELED);
    assert_ptr_equal(res, CREW_TASK_CANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    assert_int_equal(s.first_rc, -ECANCELED);
    if (s.bad_yield || s.bad_yield_after)
        fail_msg("crew_yield after cancellation: %d of %d calls did not return -ECANCELED (last %d);"
                 " after the joins %d (last %d)",
                 s.bad_yield, STICKY_REPEAT, s.bad_yield_rc, s.bad_yield_after,
                 s.bad_yield_after_rc);
    assert_int_equal(s.bad_cancelled, 0);
    if (s.join_finished_rc != -ECANCELED)
        fail_msg("a cancelled task joined a finished child: %d, want -ECANCELED", s.join_finished_rc);
    assert_int_equal(s.join_new_rc, -ECANCELED);
    /* The new child may have run and finished on another worker before the
     * join cancelled it; if it never ran, its result is NULL. */
    if (atomic_load(&s.probe.ran))
        assert_ptr_equal(s.join_new_res,
                         atomic_load(&s.probe.saw_cancel) ? CREW_TASK_CANCELED : MARK_OK);
    else
        assert_null(s.join_new_res);
    if (crew_test_workers() == 1)
        assert_int_equal(atomic_load(&s.probe.ran), 0);
}

/* ---- 4. A task that handles the cancellation ------------------------------------ */

struct handler {
    atomic_int started;
    atomic_int seen_rc;
    atomic_int cancelled_after;
};

/* Sees the request, cleans up and ends normally. */
static void *handler_body(void *arg)
{
    struct handler *h = arg;
    atomic_store(&h->started, 1);
    atomic_store(&h->seen_rc, yield_until_cancelled());
    atomic_store(&h->cancelled_after, crew_cancelled());
    return MARK_OK;
}

struct handler_parent {
    struct handler h;
    int spawn_rc, started, cancel_rc, join_rc;
    void *join_res;
    int parent_cancelled, parent_yield;
};

/* A task that cancels its own child and joins it. */
static void *handler_parent_main(void *arg)
{
    struct handler_parent *p = arg;
    crew_task_t *t = NULL;
    p->spawn_rc = crew_spawn(handler_body, &p->h, NULL, &t);
    if (p->spawn_rc)
        return NULL;
    p->started = TC_SPIN_UNTIL(atomic_load(&p->h.started), 10000000);
    p->cancel_rc = crew_task_cancel(t);
    p->join_res = MARK_UNSET;
    p->join_rc = crew_join(t, &p->join_res);
    p->parent_cancelled = crew_cancelled();
    p->parent_yield = crew_yield();
    return NULL;
}

static void test_cancel_handled(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    /* Joined from a plain thread. */
    struct handler h = { 0 };
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, handler_body, &h, NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&h.started));
    assert_int_equal(crew_task_cancel(t), 0);
    void *res = MARK_UNSET;
    assert_int_equal(crew_join(t, &res), 0);
    assert_ptr_equal(res, MARK_OK);
    assert_int_equal(atomic_load(&h.seen_rc), -ECANCELED);
    assert_int_equal(atomic_load(&h.cancelled_after), 1);

    /* Joined from the task that cancelled it. */
    struct handler_parent p = { 0 };
    assert_int_equal(crew_rt_spawn(rt, handler_parent_main, &p, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    assert_int_equal(p.spawn_rc, 0);
    assert_true(p.started);
    assert_int_equal(p.cancel_rc, 0);
    assert_int_equal(p.join_rc, 0);
    assert_ptr_equal(p.join_res, MARK_OK);
    assert_int_equal(atomic_load(&p.h.seen_rc), -ECANCELED);
    assert_int_equal(p.parent_cancelled, 0);
    assert_int_equal(p.parent_yield, 0);
}

/* ---- 5. Shield regions ------------------------------------------------------------ */

/* crew_shield's callback: records what a shielded task sees. */
struct shielded {
    int calls, yield_rc, cancelled;
    int inner_yield_rc; /* shielded_outer_fn: crew_yield after the inner crew_shield. */
    int end_rc;         /* plain_fn: crew_shield_end from a plain thread. */
};

static void *shielded_fn(void *arg)
{
    struct shielded *f = arg;
    f->calls++;
    f->yield_rc = crew_yield();
    f->cancelled = crew_cancelled();
    return MARK_SHIELD;
}

/* Nested: crew_shield inside crew_shield. */
static void *shielded_outer_fn(void *arg)
{
    struct shielded *f = arg;
    void *r = crew_shield(shielded_fn, f);
    f->inner_yield_rc = crew_yield();
    return r;
}

struct shield_probe {
    atomic_int ready;
    int end_unbalanced_first;
    int begin_rc;
    int waiting_bad_yield, waiting_bad_rc;
    /* Each step's return, in order; see shield_main. */
    int step[16];
    int nsteps;
    int join_rc;
    void *join_res;
    void *shield_res[3];
    struct shielded f[3];
};

static void shield_step(struct shield_probe *s, int rc)
{
    if (s->nsteps < (int)(sizeof s->step / sizeof s->step[0]))
        s->step[s->nsteps] = rc;
    s->nsteps++;
}

/* The steps recorded by shield_main, and what each must return. */
static const struct {
    const char *what;
    int want;
} shield_steps[] = {
    { "crew_cancelled() inside the region", 1 },
    { "nested crew_shield_begin", 0 },
    { "crew_yield in the nested region", 0 },
    { "twice nested crew_shield_begin", 0 },
    { "crew_yield in the twice nested region", 0 },
    { "inner crew_shield_end", 0 },
    { "crew_yield after it", 0 },
    { "middle crew_shield_end", 0 },
    { "crew_yield in the outermost region", 0 },
    { "outermost crew_shield_end", 0 },
    { "crew_cancelled() after the region", 1 },
    { "crew_yield after the region", -ECANCELED },
    { "unbalanced crew_shield_end", -EINVAL },
    { "crew_yield after crew_shield returned", -ECANCELED },
    { "crew_cancelled() at the end", 1 },
};

static void *shield_main(void *arg)
{
    struct shield_probe *s = arg;
    s->end_unbalanced_first = crew_shield_end();
    s->begin_rc = crew_shield_begin();
    atomic_store(&s->ready, 1);
    /* Inside the region the cancellation is not reported. */
    while (!crew_cancelled()) {
        int rc = crew_yield();
        if (rc) {
            s->waiting_bad_yield++;
            s->waiting_bad_rc = rc;
        }
    }
    for (int i = 0; i < 100; i++) {
        int rc = crew_yield();
        if (rc) {
            s->waiting_bad_yield++;
            s->waiting_bad_rc = rc;
        }
    }
    shield_step(s, crew_cancelled());
    shield_step(s, crew_shield_begin());
    shield_step(s, crew_yield());
    shield_step(s, crew_shield_begin());
    shield_step(s, crew_yield());
    shield_step(s, crew_shield_end());
    shield_step(s, crew_yield());
    shield_step(s, crew_shield_end());
    shield_step(s, crew_yield());
    /* Cleanup in the region may suspend: a join waits normally. */
    crew_task_t *t = NULL;
    TC_CHECK_EQ(crew_spawn(return_ok, NULL, NULL, &t), 0);
    if (t) {
        s->join_res = MARK_UNSET;
        s->join_rc = crew_join(t, &s->join_res);
    }
    s->shield_res[0] = crew_shield(shielded_fn, &s->f[0]);
    shield_step(s, crew_shield_end());
    shield_step(s, crew_cancelled());
    shield_step(s, crew_yield());
    shield_step(s, crew_shield_end());
    /* crew_shield shields its callback again, nested or not. */
    s->shield_res[1] = crew_shield(shielded_fn, &s->f[1]);
    s->shield_res[2] = crew_shield(shielded_outer_fn, &s->f[2]);
    shield_step(s, crew_yield());
    shield_step(s, crew_cancelled());
    return CREW_TASK_CANCELED;
}

/* crew_shield from a plain thread: just calls fn. */
static void *plain_fn(void *arg)
{
    struct shielded *f = arg;
    f->calls++;
    f->yield_rc = crew_yield();
    f->cancelled = crew_cancelled();
    f->end_rc = crew_shield_end();
    return MARK_SHIELD;
}

/* A task that is not cancelled: crew_shield returns fn's result. */
static void *shield_uncancelled_main(void *arg)
{
    struct shielded *f = arg;
    TC_CHECK_EQ(crew_shield_end(), -EINVAL);
    void *r = crew_shield(shielded_fn, f);
    TC_CHECK(r == MARK_SHIELD);
    TC_CHECK_EQ(crew_shield_end(), -EINVAL);
    TC_CHECK_EQ(crew_yield(), 0);
    return r;
}

static void test_cancel_shield(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    /* Outside a task. */
    assert_int_equal(crew_shield_begin(), -EPERM);
    assert_int_equal(crew_shield_end(), -EPERM);
    assert_int_equal(crew_cancelled(), 0);
    struct shielded pf = { 0 };
    assert_ptr_equal(crew_shield(plain_fn, &pf), MARK_SHIELD);
    assert_int_equal(pf.calls, 1);
    assert_int_equal(pf.yield_rc, -EPERM);
    assert_int_equal(pf.cancelled, 0);
    assert_int_equal(pf.end_rc, -EPERM);

    crew_rt_t *rt = tc_rt_create();
    /* Still a plain thread while a runtime lives. */
    assert_int_equal(crew_shield_begin(), -EPERM);
    assert_int_equal(crew_shield_end(), -EPERM);
    assert_int_equal(crew_cancelled(), 0);

    struct shielded uf = { 0 };
    crew_task_t *t = NULL;
    void *res = MARK_UNSET;
    assert_int_equal(crew_rt_spawn(rt, shield_uncancelled_main, &uf, NULL, &t), 0);
    assert_int_equal(crew_join(t, &res), 0);
    assert_ptr_equal(res, MARK_SHIELD);
    assert_int_equal(uf.calls, 1);
    assert_int_equal(uf.yield_rc, 0);
    assert_int_equal(uf.cancelled, 0);

    struct shield_probe *s = calloc(1, sizeof *s);
    assert_non_null(s);
    assert_int_equal(crew_rt_spawn(rt, shield_main, s, NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&s->ready));
    assert_int_equal(crew_task_cancel(t), 0);
    res = MARK_UNSET;
    assert_int_equal(crew_join(t, &res), -ECANCELED);
    assert_ptr_equal(res, CREW_TASK_CANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();

    assert_int_equal(s->end_unbalanced_first, -EINVAL);
    assert_int_equal(s->begin_rc, 0);
    if (s->waiting_bad_yield)
        fail_msg("crew_yield in a shield region reported %d (%d times)", s->waiting_bad_rc,
                 s->waiting_bad_yield);
    const int nwant = (int)(sizeof shield_steps / sizeof shield_steps[0]);
    assert_int_equal(s->nsteps, nwant);
    for (int i = 0; i < nwant; i++)
        if (s->step[i] != shield_steps[i].want)
            fail_msg("step %d, %s: %d, want %d", i, shield_steps[i].what, s->step[i],
                     shield_steps[i].want);
    assert_int_equal(s->join_rc, 0);
    assert_ptr_equal(s->join_res, MARK_OK);
    for (int i = 0; i < 3; i++) {
        assert_ptr_equal(s->shield_res[i], MARK_SHIELD);
        assert_int_equal(s->f[i].calls, 1);
        if (s->f[i].yield_rc != 0)
            fail_msg("crew_shield #%d: crew_yield in the callback returned %d", i, s->f[i].yield_rc);
        assert_int_equal(s->f[i].cancelled, 1);
    }
    /* After the inner crew_shield returned, the outer one still shields. */
    assert_int_equal(s->f[2].inner_yield_rc, 0);
    free(s);
}

/* A shield entered after the cancellation: the request is held while inside
 * and delivered after. */
struct late_shield {
    int cancel_rc, begin_rc, yield_in, cancelled_in, end_rc, yield_after;
};

static void *late_shield_main(void *arg)
{
    struct late_shield *l = arg;
    l->cancel_rc = crew_task_cancel(crew_self());
    l->begin_rc = crew_shield_begin();
    l->yield_in = crew_yield();
    l->cancelled_in = crew_cancelled();
    l->end_rc = crew_shield_end();
    l->yield_after = crew_yield();
    return CREW_TASK_CANCELED;
}

static void test_cancel_shield_after_cancel(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct late_shield l = { 0 };
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, late_shield_main, &l, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(l.cancel_rc, 0);
    assert_int_equal(l.begin_rc, 0);
    assert_int_equal(l.yield_in, 0);
    assert_int_equal(l.cancelled_in, 1);
    assert_int_equal(l.end_rc, 0);
    assert_int_equal(l.yield_after, -ECANCELED);
}

/* ---- 6. A join inside a shield is not woken by the cancel ----------------------------- */

struct shield_join {
    atomic_int child_started, release, child_bad_rc, child_done, joining;
    atomic_ulong child_yields;
    int begin_rc, join_rc, cancelled_after_join, yield_in_shield, end_rc, yield_after_end;
    int child_cancelled;
    void *join_res;
};

static void *shield_join_child(void *arg)
{
    struct shield_join *s = arg;
    atomic_store(&s->child_started, 1);
    while (!atomic_load(&s->release)) {
        int rc = crew_yield();
        atomic_fetch_add(&s->child_yields, 1);
        if (rc) {
            atomic_store(&s->child_bad_rc, rc);
            return CREW_TASK_CANCELED;
        }
    }
    s->child_cancelled = crew_cancelled();
    atomic_store(&s->child_done, 1);
    return MARK_OK;
}

static void *shield_join_main(void *arg)
{
    struct shield_join *s = arg;
    s->begin_rc = crew_shield_begin();
    crew_task_t *t = NULL;
    TC_CHECK_EQ(crew_spawn(shield_join_child, s, NULL, &t), 0);
    if (!t)
        return NULL;
    atomic_store(&s->joining, 1);
    s->join_res = MARK_UNSET;
    s->join_rc = crew_join(t, &s->join_res);
    s->cancelled_after_join = crew_cancelled();
    s->yield_in_shield = crew_yield();
    s->end_rc = crew_shield_end();
    s->yield_after_end = crew_yield();
    return CREW_TASK_CANCELED;
}

static void test_cancel_shielded_join(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct shield_join s = { 0 };
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, shield_join_main, &s, NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&s.joining) && atomic_load(&s.child_started) &&
                    crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(crew_task_cancel(t), 0);
    /* Give a wrong wake time to show: let the child yield a thousand more
     * times (each yield passes through the scheduler, which would run the
     * woken joiner). */
    unsigned long y0 = atomic_load(&s.child_yields);
    TC_WAIT_UNTIL(atomic_load(&s.child_yields) >= y0 + 1000 || atomic_load(&s.child_bad_rc));
    assert_int_equal(atomic_load(&s.child_bad_rc), 0);
    assert_int_equal(crew_task_state(t), CREW_TASK_WAITING);
    atomic_store(&s.release, 1);
    void *res = MARK_UNSET;
    assert_int_equal(crew_join(t, &res), -ECANCELED);
    assert_ptr_equal(res, CREW_TASK_CANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    assert_int_equal(s.begin_rc, 0);
    assert_int_equal(s.join_rc, 0);
    assert_ptr_equal(s.join_res, MARK_OK);
    assert_int_equal(atomic_load(&s.child_done), 1);
    assert_int_equal(s.child_cancelled, 0);
    assert_int_equal(s.cancelled_after_join, 1);
    assert_int_equal(s.yield_in_shield, 0);
    assert_int_equal(s.end_rc, 0);
    assert_int_equal(s.yield_after_end, -ECANCELED);
}

/* ---- 7. crew_task_cancel: errors, callers, self ------------------------------------- */

struct finished_probe {
    int spawn_rc, done, cancel_rc, join_rc, null_rc;
    void *join_res;
};

static void *cancel_finished_main(void *arg)
{
    struct finished_probe *p = arg;
    crew_task_t *t = NULL;
    p->null_rc = crew_task_cancel(NULL);
    p->spawn_rc = crew_spawn(return_ok, NULL, NULL, &t);
    if (p->spawn_rc)
        return NULL;
    p->done = TC_SPIN_UNTIL(crew_task_state(t) == CREW_TASK_DONE, 10000000);
    p->cancel_rc = crew_task_cancel(t);
    p->join_res = MARK_UNSET;
    p->join_rc = crew_join(t, &p->join_res);
    return NULL;
}

static void test_cancel_errors(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    assert_int_equal(crew_task_cancel(NULL), -EINVAL);
    crew_rt_t *rt = tc_rt_create();
    assert_int_equal(crew_task_cancel(NULL), -EINVAL);

    /* Finished, not yet joined: nothing to cancel, and the result stands. */
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, return_ok, NULL, NULL, &t), 0);
    TC_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_DONE);
    assert_int_equal(crew_task_cancel(t), -ESRCH);
    assert_int_equal(crew_task_cancel(t), -ESRCH);
    void *res = MARK_UNSET;
    assert_int_equal(crew_join(t, &res), 0);
    assert_ptr_equal(res, MARK_OK);

    /* The same from a task. */
    struct finished_probe p = { 0 };
    assert_int_equal(crew_rt_spawn(rt, cancel_finished_main, &p, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(p.null_rc, -EINVAL);
    assert_int_equal(p.spawn_rc, 0);
    assert_true(p.done);
    assert_int_equal(p.cancel_rc, -ESRCH);
    assert_int_equal(p.join_rc, 0);
    assert_ptr_equal(p.join_res, MARK_OK);

    /* Twice on a running task (it does not suspend until both are in),
     * then twice on a task suspended in a join. */
    struct chain *c = malloc(sizeof *c);
    assert_non_null(c);
    chain_init(c);
    atomic_store(&c->hold, 1);
    assert_int_equal(crew_rt_spawn(rt, chain_body, &c->level[1], NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&c->held) == 1);
    assert_int_equal(crew_task_cancel(t), 0);
    assert_int_equal(crew_task_cancel(t), 0);
    atomic_store(&c->hold, 0);
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    tc_assert_clean();
    chain_check_cancelled(c, 1, true);

    /* The cancelled leaf holds its joiner until both cancels are in: the
     * first one wakes the joiner, and it must not finish in between. */
    chain_init(c);
    atomic_store(&c->leaf_hold, 1);
    assert_int_equal(crew_rt_spawn(rt, chain_body, &c->level[1], NULL, &t), 0);
    TC_WAIT_UNTIL(atomic_load(&c->leaf_started) && atomic_load(&c->joining) == 1 &&
                    crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(crew_task_cancel(t), 0);
    assert_int_equal(crew_task_cancel(t), 0);
    atomic_store(&c->leaf_hold, 0);
    assert_int_equal(crew_join(t, NULL), -ECANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    chain_check_cancelled(c, 1, false);
    free(c);
}

/* Cancel from a thread crew did not create, while the test thread is blocked
 * joining the target. The canceller uses a handle it does not own: the
 * target waits until crew_task_cancel has returned before it ends, because
 * its owner frees it as soon as the join returns. */
struct thread_canceller {
    crew_task_t *target;
    atomic_int started, cancel_returned, rc, seen_rc;
};

static void *thread_cancel_target(void *arg)
{
    struct thread_canceller *tc = arg;
    atomic_store(&tc->started, 1);
    atomic_store(&tc->seen_rc, yield_until_cancelled());
    while (!atomic_load(&tc->cancel_returned))
        sched_yield();
    return CREW_TASK_CANCELED;
}

static void *thread_canceller_main(void *arg)
{
    struct thread_canceller *tc = arg;
    /* Not bounded here: the test thread's watchdog is. */
    while (!atomic_load(&tc->started))
        sched_yield();
    atomic_store(&tc->rc, crew_task_cancel(tc->target));
    atomic_store(&tc->cancel_returned, 1);
    return NULL;
}

/* Cancel from a task of another runtime. */
struct remote_canceller {
    crew_task_t *target;
    int rc, null_rc;
};

static void *remote_cancel_main(void *arg)
{
    struct remote_canceller *r = arg;
    r->null_rc = crew_task_cancel(NULL);
    r->rc = crew_task_cancel(r->target);
    return NULL;
}

static void test_cancel_other_callers(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    crew_rt_t *rt = tc_rt_create();

    struct thread_canceller tc = { 0 };
    assert_int_equal(crew_rt_spawn(rt, thread_cancel_target, &tc, NULL, &tc.target), 0);
    atomic_store(&tc.rc, 1);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thread_canceller_main, &tc), 0);
    void *res = MARK_UNSET;
    int jrc = crew_join(tc.target, &res);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&tc.rc), 0);
    assert_int_equal(jrc, -ECANCELED);
    assert_ptr_equal(res, CREW_TASK_CANCELED);
    assert_int_equal(atomic_load(&tc.seen_rc), -ECANCELED);

    /* A task of another runtime cancels a task suspended in a join. */
    crew_rt_t *rt2 = tc_rt_create();
    struct chain *c = malloc(sizeof *c);
    assert_non_null(c);
    chain_init(c);
    struct remote_canceller r = { 0 };
    assert_int_equal(crew_rt_spawn(rt, chain_body, &c->level[1], NULL, &r.target), 0);
    TC_WAIT_UNTIL(atomic_load(&c->leaf_started) && atomic_load(&c->joining) == 1 &&
                    crew_task_state(r.target) == CREW_TASK_WAITING);
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt2, remote_cancel_main, &r, NULL, &t), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(r.null_rc, -EINVAL);
    assert_int_equal(r.rc, 0);
    res = MARK_UNSET;
    assert_int_equal(crew_join(r.target, &res), -ECANCELED);
    assert_ptr_equal(res, CREW_TASK_CANCELED);
    assert_int_equal(crew_rt_destroy(rt2), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    chain_check_cancelled(c, 1, false);
    free(c);
}

/* Cancelling oneself: the request is delivered at the next suspension point,
 * including a join, which cancels the joined child. */
struct self_cancel {
    int cancelled_before, cancel_rc, again_rc, cancelled_after, yield_rc, yield_again_rc;
    int join_rc;
    void *join_res;
    struct until_cancel child;
};

static void *self_cancel_main(void *arg)
{
    struct self_cancel *s = arg;
    s->cancelled_before = crew_cancelled();
    crew_task_t *t = NULL;
    /* Spawned before the cancel, so it may already run on another worker;
     * it never ends unless cancelled. */
    TC_CHECK_EQ(crew_spawn(until_cancel_body, &s->child, NULL, &t), 0);
    s->cancel_rc = crew_task_cancel(crew_self());
    s->again_rc = crew_task_cancel(crew_self());
    s->cancelled_after = crew_cancelled();
    s->yield_rc = crew_yield();
    s->yield_again_rc = crew_yield();
    if (t) {
        s->join_res = MARK_UNSET;
        s->join_rc = crew_join(t, &s->join_res);
    }
    return CREW_TASK_CANCELED;
}

static void test_cancel_self(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct self_cancel s = { 0 };
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t = NULL;
    assert_int_equal(crew_rt_spawn(rt, self_cancel_main, &s, NULL, &t), 0);
    void *res = MARK_UNSET;
    assert_int_equal(crew_join(t, &res), -ECANCELED);
    assert_ptr_equal(res, CREW_TASK_CANCELED);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    assert_int_equal(s.cancelled_before, 0);
    assert_int_equal(s.cancel_rc, 0);
    assert_int_equal(s.again_rc, 0);
    assert_int_equal(s.cancelled_after, 1);
    assert_int_equal(s.yield_rc, -ECANCELED);
    assert_int_equal(s.yield_again_rc, -ECANCELED);
    assert_int_equal(s.join_rc, -ECANCELED);
    if (atomic_load(&s.child.started)) {
        assert_ptr_equal(s.join_res, CREW_TASK_CANCELED);
        assert_int_equal(atomic_load(&s.child.rc), -ECANCELED);
    } else {
        assert_null(s.join_res);
    }
}

/* ---- 8. Race: the child finishes vs. its joiner is cancelled ------------------------- */

#define RACE_ITERS 10000
/* Bounds of the delay loop before the cancel; see test_cancel_race_join. */
#define RACE_SPIN_START 512u
#define RACE_SPIN_MIN 16u
#define RACE_SPIN_MAX (1u << 22)
/* The race's wall-clock budget, whatever the build. */
#define RACE_BUDGET_NS (10 * CREW_S)

struct race_iter {
    unsigned child_yields;  /* Yields before the child returns. */
    unsigned joiner_yields; /* Yields before the joiner spawns the child. */
    atomic_int started, go, child_done;
    int spawn_rc, join_rc, done_at_return;
    int cancelled_before_join; /* A join that starts cancelled must report it. */
    void *join_res;
};

static void *race_child(void *arg)
{
    struct race_iter *it = arg;
    void *ret = MARK_OK;
    for (unsigned i = 0; i < it->child_yields; i++)
        if (crew_yield() == -ECANCELED) {
            ret = CREW_TASK_CANCELED;
            break;
        }
    atomic_store(&it->child_done, 1);
    return ret;
}

static void *race_joiner(void *arg)
{
    struct race_iter *it = arg;
    atomic_store(&it->started, 1);
    /* Start together with the test thread's countdown to the cancel, so the
     * random delay lands across the joiner's whole run. */
    while (!atomic_load(&it->go))
        continue;
    /* The cancel may come during these: they report it, and the joiner goes
     * on to spawn and join regardless. */
    for (unsigned i = 0; i < it->joiner_yields; i++)
        (void)crew_yield();
    crew_task_t *t = NULL;
    it->spawn_rc = crew_spawn(race_child, it, NULL, &t);
    if (it->spawn_rc)
        return NULL;
    it->join_res = MARK_UNSET;
    it->cancelled_before_join = crew_cancelled();
    it->join_rc = crew_join(t, &it->join_res);
    it->done_at_return = atomic_load(&it->child_done);
    return MARK_OK;
}

enum { RACE_JOINED, RACE_CANCELLED_CHILD_RAN, RACE_CANCELLED_CHILD_STOPPED,
       RACE_CANCELLED_CHILD_NEVER_RAN, RACE_ESRCH, RACE_NCOUNTS };

static void test_cancel_race_join(void **state)
{
    crew_test_watchdog(120);
    tc_reset();
    uint64_t seed = crew_test_seed();
    unsigned iters = RACE_ITERS / crew_test_slowdown();
    unsigned long count[RACE_NCOUNTS] = { 0 };
    /* The delay before the cancel is random below spin_max, which adapts so
     * that the cancel lands anywhere in the joiner's run, however fast this
     * build is: a cancel that came after the joiner ended shortens it, one
     * that came before the child could run lengthens it. */
    unsigned spin_max = RACE_SPIN_START;
    struct tc_progress prog;
    crew_rt_t *rt = tc_rt_create();
    tc_progress_start(&prog, "cancel race", 10);
    /* Bounded in time as well as in rounds: on a loaded machine a delay
     * bound that grew large makes each round slow. */
    int64_t budget_end = crew_now() + RACE_BUDGET_NS;
    for (unsigned i = 0; i < iters; i++) {
        if (crew_now() > budget_end) {
            fprintf(stderr, "# time budget used up after %u of %u iterations\n", i, iters);
            iters = i;
            break;
        }
        uint64_t r = crew_test_rand(&seed);
        struct race_iter it = { 0 };
        it.child_yields = (unsigned)(r & 31);
        it.joiner_yields = (unsigned)((r >> 5) % 3);
        unsigned spin = (unsigned)((r >> 8) % spin_max);
        crew_task_t *j = NULL;
        assert_int_equal(crew_rt_spawn(rt, race_joiner, &it, NULL, &j), 0);
        /* Only a started joiner races with its child; a cancel before start
         * is the before-start tests' business. */
        TC_WAIT_UNTIL(atomic_load(&it.started));
        atomic_store(&it.go, 1);
        for (volatile unsigned k = 0; k < spin; k++)
            continue;
        int crc = crew_task_cancel(j);
        void *jres = MARK_UNSET;
        int jrc = crew_join(j, &jres);
        /* The joiner handles its cancellation: it always ends normally. */
        if (jrc != 0 || jres != MARK_OK || it.spawn_rc != 0)
            fail_msg("iteration %u: joiner joined with %d (result %p), its spawn %d", i, jrc,
                     jres, it.spawn_rc);
        bool ok = false;
        int kind = RACE_NCOUNTS;
        if (crc != 0 && crc != -ESRCH) {
            /* Neither outcome: reported below. */
        } else if (crc == -ESRCH) {
            /* The joiner was over before the cancel: a plain join. */
            ok = it.join_rc == 0 && it.join_res == MARK_OK && it.done_at_return &&
                 !it.cancelled_before_join;
            kind = RACE_ESRCH;
        } else if (it.join_rc == 0) {
            /* The cancel came after the join returned. */
            ok = it.join_res == MARK_OK && it.done_at_return && !it.cancelled_before_join;
            kind = RACE_JOINED;
        } else if (it.join_rc == -ECANCELED && it.join_res == NULL) {
            ok = !it.done_at_return && !atomic_load(&it.child_done);
            kind = RACE_CANCELLED_CHILD_NEVER_RAN;
        } else if (it.join_rc == -ECANCELED && it.join_res == CREW_TASK_CANCELED) {
            ok = it.done_at_return;
            kind = RACE_CANCELLED_CHILD_STOPPED;
        } else if (it.join_rc == -ECANCELED && it.join_res == MARK_OK) {
            ok = it.done_at_return;
            kind = RACE_CANCELLED_CHILD_RAN;
        }
        if (!ok)
            fail_msg("iteration %u (seed %#llx): cancel %d, child's join %d, result %p, child done "
                     "at return %d, joiner cancelled before its join %d, child yields %u, joiner "
                     "yields %u, spin %u",
                     i, (unsigned long long)crew_test_seed(), crc, it.join_rc, it.join_res,
                     it.done_at_return, it.cancelled_before_join, it.child_yields,
                     it.joiner_yields, spin);
        if (kind < RACE_NCOUNTS)
            count[kind]++;
        if (kind == RACE_ESRCH && spin_max > RACE_SPIN_MIN)
            spin_max -= spin_max / 16;
        else if (kind == RACE_CANCELLED_CHILD_NEVER_RAN && spin_max < RACE_SPIN_MAX)
            spin_max += spin_max / 16;
        atomic_fetch_add(&prog.count, 1);
    }
    tc_progress_stop(&prog);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    fprintf(stderr,
            "# %u iterations: joined %lu, cancelled (child finished normally %lu, child stopped "
            "%lu, child never ran %lu), cancel after the joiner ended %lu; delay bound %u\n",
            iters, count[RACE_JOINED], count[RACE_CANCELLED_CHILD_RAN],
            count[RACE_CANCELLED_CHILD_STOPPED], count[RACE_CANCELLED_CHILD_NEVER_RAN],
            count[RACE_ESRCH], spin_max);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cancel_before_start),
    cmocka_unit_test(test_cancel_before_start_racy),
    cmocka_unit_test(test_cancel_before_start_thread),
    cmocka_unit_test(test_cancel_blocked_join),
    cmocka_unit_test(test_cancel_before_join),
    cmocka_unit_test(test_cancel_sticky),
    cmocka_unit_test(test_cancel_handled),
    cmocka_unit_test(test_cancel_shield),
    cmocka_unit_test(test_cancel_shield_after_cancel),
    cmocka_unit_test(test_cancel_shielded_join),
    cmocka_unit_test(test_cancel_errors),
    cmocka_unit_test(test_cancel_other_callers),
    cmocka_unit_test(test_cancel_self),
    cmocka_unit_test(test_cancel_race_join),
};

CREW_TEST_MAIN("cancel", tests)
