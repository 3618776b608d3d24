/* Synchronisation primitives (include/crew/sync.h): the semantics of each,
 * FIFO wake-up order, cancellation and deadlines while waiting (waiter
 * unlinked, permits conserved: RELIABILITY.md row 11), condition waits that
 * re-acquire the mutex when interrupted, tasks and plain threads sharing one
 * mutex, a mutual-exclusion stress, and bad inputs. The cancel-versus-wake
 * races (row 12) are in test_sync_race.c. */
#include "task_util.h"

#define SPIN_CAP 10000000

/* Yield until t is suspended in a wait (inside a task). */
#define WAIT_PARKED(t) TC_CHECK(TC_SPIN_UNTIL(crew_task_state(t) == CREW_TASK_WAITING, SPIN_CAP))

static crew_task_t *spawn(crew_fn_t fn, void *arg)
{
    crew_task_t *t = NULL;
    int rc = crew_spawn(fn, arg, NULL, &t);
    TC_CHECK_EQ(rc, 0);
    return t;
}

static int join_rc(crew_task_t *t)
{
    void *r = NULL;
    int rc = crew_join(t, &r);
    /* A body returning -ECANCELED returns CREW_TASK_CANCELED: the join
     * reports it too. */
    TC_CHECK_EQ(rc, r == CREW_TASK_CANCELED ? -ECANCELED : 0);
    return (int)(intptr_t)r;
}

#define RC(x) ((void *)(intptr_t)(x))

/* ---- Mutex ---------------------------------------------------------------- */

static void *mutex_basic_main(void *arg)
{
    crew_mutex_t m;
    TC_CHECK_EQ(crew_mutex_init(&m), 0);
    TC_CHECK_EQ(crew_mutex_unlock(&m), -EPERM);
    TC_CHECK_EQ(crew_mutex_trylock(&m), 0);
    TC_CHECK_EQ(crew_mutex_trylock(&m), -EBUSY);
    TC_CHECK_EQ(crew_mutex_destroy(&m), -EBUSY);
    TC_CHECK_EQ(crew_mutex_unlock(&m), 0);
    TC_CHECK_EQ(crew_mutex_lock(&m), 0);
    TC_CHECK_EQ(crew_mutex_unlock(&m), 0);
    TC_CHECK_EQ(crew_mutex_destroy(&m), 0);
    crew_mutex_t s = CREW_MUTEX_INIT;
    TC_CHECK_EQ(crew_mutex_lock(&s), 0);
    TC_CHECK_EQ(crew_mutex_unlock(&s), 0);
    return NULL;
}

static void test_sync_mutex_basic(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    tc_run(mutex_basic_main, NULL);
    tc_assert_clean();
}

/* Waiters are served in the order they queued. */
#define FIFO_N 8

struct fifo {
    crew_mutex_t m;
    crew_sem_t s;
    crew_rwlock_t l;
    int order[FIFO_N];
    atomic_int next;
};

static void *fifo_mutex_waiter(void *arg)
{
    struct fifo *f = arg;
    if (crew_mutex_lock(&f->m))
        return RC(-1);
    f->order[atomic_fetch_add(&f->next, 1)] = (int)crew_task_id(crew_self());
    TC_CHECK_EQ(crew_mutex_unlock(&f->m), 0);
    return NULL;
}

static void *fifo_sem_waiter(void *arg)
{
    struct fifo *f = arg;
    if (crew_sem_acquire(&f->s))
        return RC(-1);
    f->order[atomic_fetch_add(&f->next, 1)] = (int)crew_task_id(crew_self());
    TC_CHECK_EQ(crew_sem_release(&f->s), 0);
    return NULL;
}

static void *fifo_wr_waiter(void *arg)
{
    struct fifo *f = arg;
    if (crew_rwlock_wrlock(&f->l))
        return RC(-1);
    f->order[atomic_fetch_add(&f->next, 1)] = (int)crew_task_id(crew_self());
    TC_CHECK_EQ(crew_rwlock_unlock(&f->l), 0);
    return NULL;
}

/* Queue FIFO_N waiters one after another behind a held primitive, release
 * it, and check the order in which they got it. */
static void fifo_run(struct fifo *f, crew_fn_t waiter, int (*release)(struct fifo *))
{
    crew_task_t *t[FIFO_N];
    int id[FIFO_N];
    atomic_store(&f->next, 0);
    for (int i = 0; i < FIFO_N; i++) {
        t[i] = spawn(waiter, f);
        id[i] = (int)crew_task_id(t[i]);
        WAIT_PARKED(t[i]);
    }
    TC_CHECK_EQ(release(f), 0);
    for (int i = 0; i < FIFO_N; i++)
        TC_CHECK_EQ(join_rc(t[i]), 0);
    TC_CHECK_EQ(atomic_load(&f->next), FIFO_N);
    for (int i = 0; i < FIFO_N; i++)
        TC_CHECK_EQ(f->order[i], id[i]);
}

static int release_mutex(struct fifo *f)
{
    return crew_mutex_unlock(&f->m);
}

static int release_sem(struct fifo *f)
{
    return crew_sem_release(&f->s);
}

static int release_rw(struct fifo *f)
{
    return crew_rwlock_unlock(&f->l);
}

static void *fifo_main(void *arg)
{
    struct fifo *f = arg;
    crew_mutex_init(&f->m);
    crew_sem_init(&f->s, 0);
    crew_rwlock_init(&f->l);
    TC_CHECK_EQ(crew_mutex_lock(&f->m), 0);
    fifo_run(f, fifo_mutex_waiter, release_mutex);
    fifo_run(f, fifo_sem_waiter, release_sem);
    TC_CHECK_EQ(crew_rwlock_rdlock(&f->l), 0);
    fifo_run(f, fifo_wr_waiter, release_rw);
    TC_CHECK_EQ(crew_mutex_destroy(&f->m), 0);
    TC_CHECK_EQ(crew_sem_value(&f->s), 1);
    TC_CHECK_EQ(crew_sem_destroy(&f->s), 0);
    TC_CHECK_EQ(crew_rwlock_destroy(&f->l), 0);
    return NULL;
}

static void test_sync_fifo_order(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct fifo f;
    tc_run(fifo_main, &f);
    tc_assert_clean();
}

/* Mutual exclusion: tasks and plain threads increment a plain counter. */
#define MX_TASKS 16
#define MX_THREADS 2
#define MX_ITERS 20000

struct mx {
    crew_mutex_t m;
    unsigned long counter; /* Under m only: a race is a lost increment, and TSan's report. */
    unsigned iters;
    atomic_int inside;
};

static void mx_body(struct mx *x)
{
    for (unsigned i = 0; i < x->iters; i++) {
        if (crew_mutex_lock(&x->m)) {
            TC_CHECK(!"lock failed");
            return;
        }
        TC_CHECK_EQ(atomic_fetch_add_explicit(&x->inside, 1, memory_order_relaxed), 0);
        x->counter++;
        atomic_fetch_sub_explicit(&x->inside, 1, memory_order_relaxed);
        if (i % 64 == 0)
            crew_yield(); /* Hold it across a suspension point now and then. */
        TC_CHECK_EQ(crew_mutex_unlock(&x->m), 0);
    }
}

static void *mx_task(void *arg)
{
    mx_body(arg);
    return NULL;
}

static void *mx_thread(void *arg)
{
    mx_body(arg);
    return NULL;
}

static void test_sync_mutex_stress(void **state)
{
    crew_test_watchdog(120);
    tc_reset();
    struct mx x = { .iters = MX_ITERS / crew_test_slowdown() };
    assert_int_equal(crew_mutex_init(&x.m), 0);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t[MX_TASKS];
    pthread_t th[MX_THREADS];
    for (int i = 0; i < MX_TASKS; i++)
        assert_int_equal(crew_rt_spawn(rt, mx_task, &x, NULL, &t[i]), 0);
    for (int i = 0; i < MX_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, mx_thread, &x), 0);
    for (int i = 0; i < MX_TASKS; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    for (int i = 0; i < MX_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    assert_int_equal(x.counter, (unsigned long)(MX_TASKS + MX_THREADS) * x.iters);
    assert_int_equal(crew_mutex_destroy(&x.m), 0);
}

/* A task waiting for a mutex is cancelled: lock returns -ECANCELED, the
 * waiter is unlinked (destroy is no longer busy because of it), and the
 * next waiter still gets the lock. Same with a deadline scope. */
struct cw {
    crew_mutex_t m;
    crew_sem_t s;
    crew_cond_t c;
    crew_event_t e;
    crew_rwlock_t l;
    crew_barrier_t b;
    int64_t timeout;  /* > 0: wait inside a deadline scope of this length. */
    atomic_int got;
};

/* Run op inside a timeout scope when c->timeout is set. */
static int scoped(struct cw *c, int (*op)(struct cw *))
{
    if (!c->timeout)
        return op(c);
    crew_timeout_t s;
    TC_CHECK_EQ(crew_timeout_begin(&s, c->timeout), 0);
    int rc = op(c);
    int exp = crew_timeout_end(&s);
    TC_CHECK_EQ(exp, rc == -ETIMEDOUT);
    return rc;
}

static int op_lock(struct cw *c)
{
    int rc = crew_mutex_lock(&c->m);
    if (!rc) {
        atomic_fetch_add(&c->got, 1);
        TC_CHECK_EQ(crew_mutex_unlock(&c->m), 0);
    }
    return rc;
}

static int op_acquire(struct cw *c)
{
    int rc = crew_sem_acquire(&c->s);
    if (!rc)
        atomic_fetch_add(&c->got, 1);
    return rc;
}

/* Wait on the condition; whatever the outcome the mutex must be held after. */
static int op_cond(struct cw *c)
{
    TC_CHECK_EQ(crew_mutex_lock(&c->m), 0);
    int rc = crew_cond_wait(&c->c, &c->m);
    TC_CHECK_EQ(crew_mutex_trylock(&c->m), -EBUSY);
    if (!rc)
        atomic_fetch_add(&c->got, 1);
    TC_CHECK_EQ(crew_mutex_unlock(&c->m), 0);
    return rc;
}

static int op_event(struct cw *c)
{
    int rc = crew_event_wait(&c->e);
    if (!rc)
        atomic_fetch_add(&c->got, 1);
    return rc;
}

static int op_wrlock(struct cw *c)
{
    int rc = crew_rwlock_wrlock(&c->l);
    if (!rc) {
        atomic_fetch_add(&c->got, 1);
        TC_CHECK_EQ(crew_rwlock_unlock(&c->l), 0);
    }
    return rc;
}

static int op_rdlock(struct cw *c)
{
    int rc = crew_rwlock_rdlock(&c->l);
    if (!rc) {
        atomic_fetch_add(&c->got, 1);
        TC_CHECK_EQ(crew_rwlock_unlock(&c->l), 0);
    }
    return rc;
}

static int op_barrier(struct cw *c)
{
    int rc = crew_barrier_wait(&c->b);
    if (rc >= 0)
        atomic_fetch_add(&c->got, 1);
    return rc < 0 ? rc : 0;
}

static int (*const wait_ops[])(struct cw *) = { op_lock, op_acquire, op_cond, op_event,
                                                  op_wrlock, op_barrier };
enum { W_LOCK, W_ACQUIRE, W_COND, W_EVENT, W_WRLOCK, W_BARRIER, W_N };

struct cw_arg {
    struct cw *c;
    int op;
};

static void *cw_waiter(void *arg)
{
    struct cw_arg *a = arg;
    return RC(scoped(a->c, wait_ops[a->op]));
}

/* Hold what op waits for. */
static void cw_hold(struct cw *c, int op)
{
    if (op == W_LOCK)
        TC_CHECK_EQ(crew_mutex_lock(&c->m), 0);
    if (op == W_WRLOCK)
        TC_CHECK_EQ(crew_rwlock_rdlock(&c->l), 0);
}

/* Let the second waiter through. */
static void cw_release(struct cw *c, int op)
{
    switch (op) {
    case W_LOCK: TC_CHECK_EQ(crew_mutex_unlock(&c->m), 0); break;
    case W_ACQUIRE: TC_CHECK_EQ(crew_sem_release(&c->s), 0); break;
    case W_COND: TC_CHECK_EQ(crew_cond_notify(&c->c), 0); break;
    case W_EVENT: TC_CHECK_EQ(crew_event_set(&c->e), 0); break;
    case W_WRLOCK: TC_CHECK_EQ(crew_rwlock_unlock(&c->l), 0); break;
    case W_BARRIER: TC_CHECK_EQ(crew_barrier_wait(&c->b), CREW_BARRIER_SERIAL); break;
    }
}

static int cw_destroy_all(struct cw *c)
{
    int rc = crew_mutex_destroy(&c->m);
    rc = rc ? rc : crew_sem_destroy(&c->s);
    rc = rc ? rc : crew_cond_destroy(&c->c);
    rc = rc ? rc : crew_event_destroy(&c->e);
    rc = rc ? rc : crew_rwlock_destroy(&c->l);
    return rc ? rc : crew_barrier_destroy(&c->b);
}

/* For each primitive: waiter A is interrupted (cancel, or its deadline),
 * waiter B behind it still gets through, nothing stays registered. */
static void *cancel_main(void *arg)
{
    const int64_t *timeout = arg;
    for (int op = 0; op < W_N; op++) {
        struct cw c = { .timeout = *timeout };
        crew_mutex_init(&c.m);
        crew_sem_init(&c.s, 0);
        crew_cond_init(&c.c);
        crew_event_init(&c.e);
        crew_rwlock_init(&c.l);
        crew_barrier_init(&c.b, 2);
        cw_hold(&c, op);
        struct cw_arg a = { &c, op };
        crew_task_t *ta = spawn(cw_waiter, &a);
        if (!*timeout) {
            WAIT_PARKED(ta);
            TC_CHECK_EQ(crew_task_state(ta), CREW_TASK_WAITING);
            /* Registered: destroy must refuse. */
            TC_CHECK_EQ(cw_destroy_all(&c), -EBUSY);
            TC_CHECK_EQ(crew_task_cancel(ta), 0);
            TC_CHECK_EQ(join_rc(ta), -ECANCELED);
        } else {
            TC_CHECK_EQ(join_rc(ta), -ETIMEDOUT);
        }
        TC_CHECK_EQ(atomic_load(&c.got), 0);
        c.timeout = 0;
        crew_task_t *tb = spawn(cw_waiter, &a);
        WAIT_PARKED(tb);
        cw_release(&c, op);
        TC_CHECK_EQ(join_rc(tb), 0);
        TC_CHECK_EQ(atomic_load(&c.got), 1);
        if (op == W_ACQUIRE)
            TC_CHECK_EQ(crew_sem_value(&c.s), 0); /* The one permit went to B. */
        if (op == W_WRLOCK) {
            TC_CHECK_EQ(crew_rwlock_trywrlock(&c.l), 0);
            TC_CHECK_EQ(crew_rwlock_unlock(&c.l), 0);
        }
        TC_CHECK_EQ(cw_destroy_all(&c), 0);
    }
    return NULL;
}

static void test_sync_cancel_waiting(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    int64_t timeout = 0;
    tc_run(cancel_main, &timeout);
    tc_assert_clean();
}

static void test_sync_deadline_waiting(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    int64_t timeout = 2 * CREW_MS;
    tc_run(cancel_main, &timeout);
    tc_assert_clean();
}

/* A cancelled task's later waits report the cancel (sticky) without
 * waiting; inside a shield region they wait normally. */
static void *sticky_body(void *arg)
{
    struct cw *c = arg;
    crew_task_cancel(crew_self());
    TC_CHECK_EQ(crew_mutex_lock(&c->m), -ECANCELED);
    TC_CHECK_EQ(crew_sem_acquire(&c->s), -ECANCELED);
    TC_CHECK_EQ(crew_event_wait(&c->e), -ECANCELED);
    TC_CHECK_EQ(crew_shield_begin(), 0);
    TC_CHECK_EQ(crew_sem_acquire(&c->s), 0); /* Waits until the test releases. */
    TC_CHECK_EQ(crew_shield_end(), 0);
    return NULL;
}

static void *sticky_main(void *arg)
{
    struct cw c;
    crew_mutex_init(&c.m);
    crew_sem_init(&c.s, 0);
    crew_event_init(&c.e);
    TC_CHECK_EQ(crew_mutex_lock(&c.m), 0);
    crew_task_t *t = spawn(sticky_body, &c);
    WAIT_PARKED(t);
    TC_CHECK_EQ(crew_mutex_unlock(&c.m), 0);
    TC_CHECK_EQ(crew_sem_release(&c.s), 0);
    TC_CHECK_EQ(crew_join(t, NULL), 0);
    return NULL;
}

static void test_sync_cancel_sticky_shield(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    tc_run(sticky_main, NULL);
    tc_assert_clean();
}

/* ---- Semaphore ------------------------------------------------------------ */

static void test_sync_sem_basic(void **state)
{
    crew_sem_t s;
    assert_int_equal(crew_sem_init(&s, CREW_SEM_VALUE_MAX + 1u), -EINVAL);
    assert_int_equal(crew_sem_init(&s, 2), 0);
    assert_int_equal(crew_sem_value(&s), 2);
    assert_int_equal(crew_sem_tryacquire(&s), 0);
    assert_int_equal(crew_sem_acquire(&s), 0); /* Plain thread, a permit is free. */
    assert_int_equal(crew_sem_tryacquire(&s), -EAGAIN);
    assert_int_equal(crew_sem_release(&s), 0);
    assert_int_equal(crew_sem_release(&s), 0);
    assert_int_equal(crew_sem_release(&s), 0); /* Unbounded: beyond the start. */
    assert_int_equal(crew_sem_value(&s), 3);
    assert_int_equal(crew_sem_destroy(&s), 0);

    /* Bounded: releasing past the initial value fails and changes nothing. */
    assert_int_equal(crew_sem_init_bounded(&s, 2), 0);
    assert_int_equal(crew_sem_release(&s), -EOVERFLOW);
    assert_int_equal(crew_sem_acquire(&s), 0);
    assert_int_equal(crew_sem_release(&s), 0);
    assert_int_equal(crew_sem_release(&s), -EOVERFLOW);
    assert_int_equal(crew_sem_value(&s), 2);
    assert_int_equal(crew_sem_init_bounded(&s, 0), 0);
    assert_int_equal(crew_sem_release(&s), -EOVERFLOW);
    assert_int_equal(crew_sem_init(&s, CREW_SEM_VALUE_MAX), 0);
    assert_int_equal(crew_sem_release(&s), -EOVERFLOW);
}

/* Many waiters, half of them cancelled: the releases go to the others and
 * the count is conserved. */
#define SC_N 16

struct sc {
    crew_sem_t s;
    atomic_int got;
};

static void *sc_waiter(void *arg)
{
    struct sc *c = arg;
    int rc = crew_sem_acquire(&c->s);
    if (!rc)
        atomic_fetch_add(&c->got, 1);
    return RC(rc);
}

static void *sem_cancel_main(void *arg)
{
    struct sc c = { 0 };
    TC_CHECK_EQ(crew_sem_init(&c.s, 0), 0);
    crew_task_t *t[SC_N];
    for (int i = 0; i < SC_N; i++) {
        t[i] = spawn(sc_waiter, &c);
        WAIT_PARKED(t[i]);
    }
    for (int i = 0; i < SC_N; i += 2)
        TC_CHECK_EQ(crew_task_cancel(t[i]), 0);
    for (int i = 0; i < SC_N; i++)
        TC_CHECK_EQ(crew_sem_release(&c.s), 0);
    for (int i = 0; i < SC_N; i++)
        TC_CHECK_EQ(join_rc(t[i]), i % 2 ? 0 : -ECANCELED);
    TC_CHECK_EQ(atomic_load(&c.got), SC_N / 2);
    TC_CHECK_EQ(crew_sem_value(&c.s), SC_N / 2);
    TC_CHECK_EQ(crew_sem_destroy(&c.s), 0);
    return NULL;
}

static void test_sync_sem_cancel_conserves(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    tc_run(sem_cancel_main, NULL);
    tc_assert_clean();
}

/* ---- Condition ------------------------------------------------------------ */

/* Producer/consumer with the predicate loop, tasks and a plain thread. */
#define PC_ITEMS 2000

struct pc {
    crew_mutex_t m;
    crew_cond_t nonempty, nonfull;
    int buf[4];
    unsigned n, head;
    unsigned long sum;
    unsigned items;
};

static void pc_produce(struct pc *p, int base)
{
    for (unsigned i = 0; i < p->items; i++) {
        TC_CHECK_EQ(crew_mutex_lock(&p->m), 0);
        while (p->n == 4)
            TC_CHECK_EQ(crew_cond_wait(&p->nonfull, &p->m), 0);
        p->buf[(p->head + p->n++) % 4] = base + (int)i;
        TC_CHECK_EQ(crew_cond_notify(&p->nonempty), 0);
        TC_CHECK_EQ(crew_mutex_unlock(&p->m), 0);
    }
}

static void *pc_producer_thread(void *arg)
{
    pc_produce(arg, 1000000);
    return NULL;
}

static void *pc_producer_task(void *arg)
{
    pc_produce(arg, 0);
    return NULL;
}

static void *pc_consumer(void *arg)
{
    struct pc *p = arg;
    for (unsigned i = 0; i < p->items; i++) {
        TC_CHECK_EQ(crew_mutex_lock(&p->m), 0);
        while (p->n == 0)
            TC_CHECK_EQ(crew_cond_wait(&p->nonempty, &p->m), 0);
        p->sum += (unsigned long)p->buf[p->head];
        p->head = (p->head + 1) % 4;
        p->n--;
        TC_CHECK_EQ(crew_cond_notify_all(&p->nonfull), 0);
        TC_CHECK_EQ(crew_mutex_unlock(&p->m), 0);
    }
    return NULL;
}

static void test_sync_cond_producer_consumer(void **state)
{
    crew_test_watchdog(120);
    tc_reset();
    struct pc p = { .items = PC_ITEMS / crew_test_slowdown() };
    assert_int_equal(crew_mutex_init(&p.m), 0);
    assert_int_equal(crew_cond_init(&p.nonempty), 0);
    assert_int_equal(crew_cond_init(&p.nonfull), 0);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *prod, *cons[2];
    pthread_t th;
    assert_int_equal(crew_rt_spawn(rt, pc_producer_task, &p, NULL, &prod), 0);
    assert_int_equal(pthread_create(&th, NULL, pc_producer_thread, &p), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(crew_rt_spawn(rt, pc_consumer, &p, NULL, &cons[i]), 0);
    assert_int_equal(crew_join(prod, NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(crew_join(cons[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    unsigned long n = p.items;
    assert_int_equal(p.sum, n * (n - 1) + 1000000ul * n);
    assert_int_equal(crew_cond_destroy(&p.nonempty), 0);
    assert_int_equal(crew_cond_destroy(&p.nonfull), 0);
}

static void *cond_errors_main(void *arg)
{
    crew_cond_t c = CREW_COND_INIT;
    crew_mutex_t m = CREW_MUTEX_INIT;
    TC_CHECK_EQ(crew_cond_wait(&c, &m), -EPERM); /* m not locked. */
    TC_CHECK_EQ(crew_cond_notify(&c), 0);        /* Nobody waits: no-op. */
    TC_CHECK_EQ(crew_cond_notify_all(&c), 0);
    /* A notify before the wait is not remembered: the wait times out. */
    TC_CHECK_EQ(crew_mutex_lock(&m), 0);
    crew_timeout_t s;
    TC_CHECK_EQ(crew_timeout_begin(&s, CREW_MS), 0);
    TC_CHECK_EQ(crew_cond_wait(&c, &m), -ETIMEDOUT);
    TC_CHECK_EQ(crew_timeout_end(&s), 1);
    TC_CHECK_EQ(crew_mutex_unlock(&m), 0);
    TC_CHECK_EQ(crew_cond_destroy(&c), 0);
    return NULL;
}

static void test_sync_cond_errors(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    tc_run(cond_errors_main, NULL);
    tc_assert_clean();
}

/* ---- Event ----------------------------------------------------------------- */

#define EV_N 8

static void *ev_main(void *arg)
{
    struct cw c = { 0 };
    crew_event_init(&c.e);
    TC_CHECK(!crew_event_is_set(&c.e));
    struct cw_arg a = { &c, W_EVENT };
    crew_task_t *t[EV_N];
    for (int i = 0; i < EV_N; i++) {
        t[i] = spawn(cw_waiter, &a);
        WAIT_PARKED(t[i]);
    }
    /* Set, then clear at once: every waiter was woken by the set. */
    TC_CHECK_EQ(crew_event_set(&c.e), 0);
    TC_CHECK_EQ(crew_event_clear(&c.e), 0);
    for (int i = 0; i < EV_N; i++)
        TC_CHECK_EQ(join_rc(t[i]), 0);
    TC_CHECK_EQ(atomic_load(&c.got), EV_N);
    TC_CHECK(!crew_event_is_set(&c.e));
    TC_CHECK_EQ(crew_event_set(&c.e), 0);
    TC_CHECK(crew_event_is_set(&c.e));
    TC_CHECK_EQ(crew_event_wait(&c.e), 0); /* Set: no wait. */
    TC_CHECK_EQ(crew_event_destroy(&c.e), 0);
    return NULL;
}

static void test_sync_event(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    tc_run(ev_main, NULL);
    tc_assert_clean();
}

/* A plain thread waits for an event a task sets, and for a semaphore. */
static void *ev_setter(void *arg)
{
    struct cw *c = arg;
    TC_CHECK_EQ(crew_event_set(&c->e), 0);
    TC_CHECK_EQ(crew_sem_release(&c->s), 0);
    return NULL;
}

static void test_sync_thread_waiters(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    struct cw c = { 0 };
    crew_event_init(&c.e);
    crew_sem_init(&c.s, 0);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, ev_setter, &c, NULL, &t), 0);
    assert_int_equal(crew_event_wait(&c.e), 0);
    assert_int_equal(crew_sem_acquire(&c.s), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
}

/* ---- Barrier --------------------------------------------------------------- */

#define BR_PARTIES 5
#define BR_CYCLES 50

struct br {
    crew_barrier_t b;
    atomic_int serial[BR_CYCLES];
    atomic_int passed[BR_CYCLES];
};

static void *br_party(void *arg)
{
    struct br *b = arg;
    for (int k = 0; k < BR_CYCLES; k++) {
        atomic_fetch_add(&b->passed[k], 1);
        int rc = crew_barrier_wait(&b->b);
        TC_CHECK(rc == 0 || rc == CREW_BARRIER_SERIAL);
        /* Nobody passes cycle k before every party reached it. */
        TC_CHECK_EQ(atomic_load(&b->passed[k]), BR_PARTIES);
        atomic_fetch_add(&b->serial[k], rc == CREW_BARRIER_SERIAL);
    }
    return NULL;
}

static void test_sync_barrier_cycles(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    static struct br b;
    memset(&b, 0, sizeof b);
    assert_int_equal(crew_barrier_init(&b.b, BR_PARTIES), 0);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t[BR_PARTIES - 1];
    for (int i = 0; i < BR_PARTIES - 1; i++)
        assert_int_equal(crew_rt_spawn(rt, br_party, &b, NULL, &t[i]), 0);
    br_party(&b); /* One party is this plain thread. */
    for (int i = 0; i < BR_PARTIES - 1; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    for (int k = 0; k < BR_CYCLES; k++)
        assert_int_equal(atomic_load(&b.serial[k]), 1);
    assert_int_equal(crew_barrier_destroy(&b.b), 0);
}

static void *br_abort_main(void *arg)
{
    struct cw c = { 0 };
    TC_CHECK_EQ(crew_barrier_init(&c.b, 0), -EINVAL);
    TC_CHECK_EQ(crew_barrier_init(&c.b, 3), 0);
    struct cw_arg a = { &c, W_BARRIER };
    crew_task_t *t = spawn(cw_waiter, &a);
    WAIT_PARKED(t);
    TC_CHECK_EQ(crew_barrier_destroy(&c.b), -EBUSY);
    TC_CHECK_EQ(crew_barrier_abort(&c.b), 0);
    TC_CHECK_EQ(join_rc(t), -EPIPE);
    TC_CHECK_EQ(crew_barrier_wait(&c.b), -EPIPE);
    TC_CHECK_EQ(crew_barrier_reset(&c.b), 0);
    /* Usable again; a reset wakes waiters with -EPIPE too. */
    t = spawn(cw_waiter, &a);
    WAIT_PARKED(t);
    TC_CHECK_EQ(crew_barrier_reset(&c.b), 0);
    TC_CHECK_EQ(join_rc(t), -EPIPE);
    /* Cancelled party leaves the cycle: two more complete it. */
    t = spawn(cw_waiter, &a);
    WAIT_PARKED(t);
    crew_task_cancel(t);
    TC_CHECK_EQ(join_rc(t), -ECANCELED);
    crew_task_t *u = spawn(cw_waiter, &a);
    WAIT_PARKED(u);
    crew_task_t *v = spawn(cw_waiter, &a);
    WAIT_PARKED(v);
    TC_CHECK_EQ(crew_barrier_wait(&c.b), CREW_BARRIER_SERIAL);
    TC_CHECK_EQ(join_rc(u), 0);
    TC_CHECK_EQ(join_rc(v), 0);
    TC_CHECK_EQ(crew_barrier_destroy(&c.b), 0);
    return NULL;
}

static void test_sync_barrier_abort_reset_cancel(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    tc_run(br_abort_main, NULL);
    tc_assert_clean();
}

/* ---- Readers-writer lock -------------------------------------------------- */

static int (*const rw_ops[])(struct cw *) = { op_rdlock, op_wrlock };

struct rw_arg {
    struct cw *c;
    int writer;
};

static void *rw_waiter(void *arg)
{
    struct rw_arg *a = arg;
    return RC(rw_ops[a->writer](a->c));
}

static void *rw_pref_main(void *arg)
{
    struct cw c = { 0 };
    crew_rwlock_init(&c.l);
    TC_CHECK_EQ(crew_rwlock_unlock(&c.l), -EPERM);
    TC_CHECK_EQ(crew_rwlock_rdlock(&c.l), 0);
    TC_CHECK_EQ(crew_rwlock_tryrdlock(&c.l), 0);
    TC_CHECK_EQ(crew_rwlock_trywrlock(&c.l), -EBUSY);
    TC_CHECK_EQ(crew_rwlock_destroy(&c.l), -EBUSY);
    struct rw_arg wa = { &c, 1 }, ra = { &c, 0 };
    crew_task_t *w1 = spawn(rw_waiter, &wa);
    WAIT_PARKED(w1);
    TC_CHECK_EQ(crew_rwlock_tryrdlock(&c.l), -EBUSY);
    crew_task_t *r1 = spawn(rw_waiter, &ra);
    WAIT_PARKED(r1);
    crew_task_t *r2 = spawn(rw_waiter, &ra);
    WAIT_PARKED(r2);
    crew_task_t *w2 = spawn(rw_waiter, &wa);
    WAIT_PARKED(w2);
    /* Cancel the writer at the head while readers hold the lock: the two
     * readers behind it join the holders at once; w2 still waits. */
    crew_task_cancel(w1);
    TC_CHECK_EQ(join_rc(w1), -ECANCELED);
    TC_CHECK_EQ(join_rc(r1), 0);
    TC_CHECK_EQ(join_rc(r2), 0);
    TC_CHECK_EQ(atomic_load(&c.got), 2);
    TC_CHECK_EQ(crew_task_state(w2), CREW_TASK_WAITING);
    TC_CHECK_EQ(crew_rwlock_unlock(&c.l), 0);
    TC_CHECK_EQ(crew_task_state(w2), CREW_TASK_WAITING); /* One read hold left. */
    TC_CHECK_EQ(crew_rwlock_unlock(&c.l), 0);
    TC_CHECK_EQ(join_rc(w2), 0);
    TC_CHECK_EQ(atomic_load(&c.got), 3);
    TC_CHECK_EQ(crew_rwlock_trywrlock(&c.l), 0);
    TC_CHECK_EQ(crew_rwlock_tryrdlock(&c.l), -EBUSY);
    TC_CHECK_EQ(crew_rwlock_unlock(&c.l), 0);
    TC_CHECK_EQ(crew_rwlock_unlock(&c.l), -EPERM);
    TC_CHECK_EQ(crew_rwlock_destroy(&c.l), 0);
    return NULL;
}

static void test_sync_rwlock_preference(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    tc_run(rw_pref_main, NULL);
    tc_assert_clean();
}

/* Stress: writers and readers check the invariant "a writer is alone". */
#define RWS_TASKS 12
#define RWS_ITERS 5000

struct rws {
    crew_rwlock_t l;
    atomic_int readers, writers;
    unsigned long value; /* Written under the write lock only. */
    unsigned iters;
};

static void *rws_body(void *arg)
{
    struct rws *s = arg;
    bool writer = crew_task_id(crew_self()) % 3 == 0;
    for (unsigned i = 0; i < s->iters; i++) {
        if (writer || i % 7 == 0) {
            TC_CHECK_EQ(crew_rwlock_wrlock(&s->l), 0);
            TC_CHECK_EQ(atomic_fetch_add(&s->writers, 1), 0);
            TC_CHECK_EQ(atomic_load(&s->readers), 0);
            s->value++;
            atomic_fetch_sub(&s->writers, 1);
        } else {
            TC_CHECK_EQ(crew_rwlock_rdlock(&s->l), 0);
            atomic_fetch_add(&s->readers, 1);
            TC_CHECK_EQ(atomic_load(&s->writers), 0);
            (void)*(volatile unsigned long *)&s->value;
            atomic_fetch_sub(&s->readers, 1);
        }
        if (i % 32 == 0)
            crew_yield();
        TC_CHECK_EQ(crew_rwlock_unlock(&s->l), 0);
    }
    return NULL;
}

static void test_sync_rwlock_stress(void **state)
{
    crew_test_watchdog(120);
    tc_reset();
    struct rws s = { .iters = RWS_ITERS / crew_test_slowdown() };
    crew_rwlock_init(&s.l);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t[RWS_TASKS];
    for (int i = 0; i < RWS_TASKS; i++)
        assert_int_equal(crew_rt_spawn(rt, rws_body, &s, NULL, &t[i]), 0);
    for (int i = 0; i < RWS_TASKS; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    assert_int_equal(crew_rwlock_destroy(&s.l), 0);
}

/* ---- Bad inputs ----------------------------------------------------------- */

static void test_sync_bad_inputs(void **state)
{
    assert_int_equal(crew_mutex_init(NULL), -EINVAL);
    assert_int_equal(crew_mutex_destroy(NULL), -EINVAL);
    assert_int_equal(crew_mutex_lock(NULL), -EINVAL);
    assert_int_equal(crew_mutex_trylock(NULL), -EINVAL);
    assert_int_equal(crew_mutex_unlock(NULL), -EINVAL);
    assert_int_equal(crew_sem_init(NULL, 1), -EINVAL);
    assert_int_equal(crew_sem_init_bounded(NULL, 1), -EINVAL);
    assert_int_equal(crew_sem_destroy(NULL), -EINVAL);
    assert_int_equal(crew_sem_acquire(NULL), -EINVAL);
    assert_int_equal(crew_sem_tryacquire(NULL), -EINVAL);
    assert_int_equal(crew_sem_release(NULL), -EINVAL);
    assert_int_equal(crew_sem_value(NULL), 0);
    crew_mutex_t m = CREW_MUTEX_INIT;
    crew_cond_t c = CREW_COND_INIT;
    assert_int_equal(crew_cond_init(NULL), -EINVAL);
    assert_int_equal(crew_cond_destroy(NULL), -EINVAL);
    assert_int_equal(crew_cond_wait(NULL, &m), -EINVAL);
    assert_int_equal(crew_cond_wait(&c, NULL), -EINVAL);
    assert_int_equal(crew_cond_wait(&c, &m), -EPERM);
    assert_int_equal(crew_cond_notify(NULL), -EINVAL);
    assert_int_equal(crew_cond_notify_all(NULL), -EINVAL);
    assert_int_equal(crew_event_init(NULL), -EINVAL);
    assert_int_equal(crew_event_destroy(NULL), -EINVAL);
    assert_int_equal(crew_event_wait(NULL), -EINVAL);
    assert_int_equal(crew_event_set(NULL), -EINVAL);
    assert_int_equal(crew_event_clear(NULL), -EINVAL);
    assert_false(crew_event_is_set(NULL));
    assert_int_equal(crew_barrier_init(NULL, 1), -EINVAL);
    assert_int_equal(crew_barrier_destroy(NULL), -EINVAL);
    assert_int_equal(crew_barrier_wait(NULL), -EINVAL);
    assert_int_equal(crew_barrier_abort(NULL), -EINVAL);
    assert_int_equal(crew_barrier_reset(NULL), -EINVAL);
    assert_int_equal(crew_rwlock_init(NULL), -EINVAL);
    assert_int_equal(crew_rwlock_destroy(NULL), -EINVAL);
    assert_int_equal(crew_rwlock_rdlock(NULL), -EINVAL);
    assert_int_equal(crew_rwlock_wrlock(NULL), -EINVAL);
    assert_int_equal(crew_rwlock_tryrdlock(NULL), -EINVAL);
    assert_int_equal(crew_rwlock_trywrlock(NULL), -EINVAL);
    assert_int_equal(crew_rwlock_unlock(NULL), -EINVAL);
    /* A barrier of one party never waits. */
    crew_barrier_t b;
    assert_int_equal(crew_barrier_init(&b, 1), 0);
    assert_int_equal(crew_barrier_wait(&b), CREW_BARRIER_SERIAL);
}

/* ---- Wake-all across runtimes and in chunks ------------------------------ */

/* A wake-all batches the tasks it claims per runtime (sync/waitq.h): an
 * event shared by two runtimes, set by a task of one, must wake every
 * waiter of both, each back on its own runtime; more waiters than one chunk
 * (256), so full chunks, the partial one and a plain-thread waiter are all
 * exercised. */
enum { XRT_TASKS = 300 };

struct xrt {
    crew_event_t e;
    crew_rt_t *rt[2];
    atomic_uint woke, wrong_rt;
};

static void *xrt_waiter(void *arg)
{
    struct xrt *x = arg;
    crew_rt_t *before = crew_rt_current();
    TC_CHECK_EQ(crew_event_wait(&x->e), 0);
    if (crew_rt_current() != before)
        atomic_fetch_add(&x->wrong_rt, 1);
    atomic_fetch_add(&x->woke, 1);
    return NULL;
}

static void *xrt_setter(void *arg)
{
    struct xrt *x = arg;
    TC_CHECK_EQ(crew_event_set(&x->e), 0);
    return NULL;
}

static void test_sync_event_set_two_runtimes(void **state)
{
    (void)state;
    tc_reset();
    struct xrt x;
    crew_event_init(&x.e);
    atomic_init(&x.woke, 0);
    atomic_init(&x.wrong_rt, 0);
    x.rt[0] = tc_rt_create();
    x.rt[1] = tc_rt_create();
    crew_task_t *t[2 * XRT_TASKS];
    for (unsigned i = 0; i < 2 * XRT_TASKS; i++)
        assert_int_equal(crew_rt_spawn(x.rt[i % 2], xrt_waiter, &x, NULL, &t[i]), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, xrt_waiter, &x), 0);
    for (unsigned i = 0; i < 2 * XRT_TASKS; i++)
        TC_WAIT_UNTIL(crew_task_state(t[i]) == CREW_TASK_WAITING);
    crew_task_t *setter;
    assert_int_equal(crew_rt_spawn(x.rt[0], xrt_setter, &x, NULL, &setter), 0);
    assert_int_equal(crew_join(setter, NULL), 0);
    for (unsigned i = 0; i < 2 * XRT_TASKS; i++)
        assert_int_equal(crew_join(t[i], NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    tc_assert_clean();
    assert_int_equal(atomic_load(&x.woke), 2 * XRT_TASKS + 1);
    assert_int_equal(atomic_load(&x.wrong_rt), 0);
    assert_int_equal(crew_event_destroy(&x.e), 0);
    crew_rt_destroy(x.rt[0]);
    crew_rt_destroy(x.rt[1]);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sync_mutex_basic),
    cmocka_unit_test(test_sync_fifo_order),
    cmocka_unit_test(test_sync_mutex_stress),
    cmocka_unit_test(test_sync_cancel_waiting),
    cmocka_unit_test(test_sync_deadline_waiting),
    cmocka_unit_test(test_sync_cancel_sticky_shield),
    cmocka_unit_test(test_sync_sem_basic),
    cmocka_unit_test(test_sync_sem_cancel_conserves),
    cmocka_unit_test(test_sync_cond_producer_consumer),
    cmocka_unit_test(test_sync_cond_errors),
    cmocka_unit_test(test_sync_event),
    cmocka_unit_test(test_sync_thread_waiters),
    cmocka_unit_test(test_sync_barrier_cycles),
    cmocka_unit_test(test_sync_barrier_abort_reset_cancel),
    cmocka_unit_test(test_sync_rwlock_preference),
    cmocka_unit_test(test_sync_rwlock_stress),
    cmocka_unit_test(test_sync_bad_inputs),
    cmocka_unit_test(test_sync_event_set_two_runtimes),
};

CREW_TEST_MAIN("sync", tests)
