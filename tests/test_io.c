/* fd readiness (include/crew/io.h): waits for read and write readiness, the
 * remembered edge, many waiters on one fd, crew_fd_close waking waiters with
 * -EBADF, a reused fd number never seeing the old fd's readiness, plain
 * threads, cancellation and deadlines at the wait, bad inputs, a
 * cancel-versus-readiness race that must not lose the edge, and a
 * ping-pong stress over many socket pairs. */
#include "task_util.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MARK_OK ((void *)(uintptr_t)0x600D)

static void make_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

/* Read one byte, waiting for readiness on EAGAIN; the byte or -errno. */
static int read_byte(int fd)
{
    for (;;) {
        unsigned char c;
        ssize_t n = read(fd, &c, 1);
        if (n == 1)
            return c;
        if (n == 0)
            return -EPIPE;
        if (errno != EAGAIN)
            return -errno;
        int rc = crew_fd_wait(fd, CREW_FD_READ);
        if (rc < 0)
            return rc;
    }
}

static int write_byte(int fd, unsigned char c)
{
    for (;;) {
        if (write(fd, &c, 1) == 1)
            return 0;
        if (errno != EAGAIN)
            return -errno;
        int rc = crew_fd_wait(fd, CREW_FD_WRITE);
        if (rc < 0)
            return rc;
    }
}

/* ---- A waiting task wakes when data arrives ----------------------------- */

struct pair_arg {
    int fd;
    _Atomic int rc;
};

static void *wait_read_task(void *arg)
{
    struct pair_arg *a = arg;
    atomic_store(&a->rc, crew_fd_wait(a->fd, CREW_FD_READ));
    return MARK_OK;
}

static void test_io_wait_readable(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    int p[2];
    make_pipe(p);
    struct pair_arg a = { .fd = p[0], .rc = 1000 };
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, wait_read_task, &a, NULL, &t), 0);
    TC_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(atomic_load(&a.rc), 1000);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(atomic_load(&a.rc), CREW_FD_READ);
    crew_metrics_t m;
    assert_int_equal(crew_rt_metrics(rt, &m), 0);
    assert_true(m.reactor_fd_events >= 1);
    assert_true(m.reactor_fd_polls >= 1);
    assert_int_equal(crew_rt_destroy(rt), 0);
    close(p[0]);
    close(p[1]);
}

/* ---- An edge that came while no one waited is remembered ---------------- */

struct edge_arg {
    int rfd, wfd;
};

static void *remembered_edge_task(void *arg)
{
    struct edge_arg *a = arg;
    unsigned char c;
    /* Registers the fd (nothing to read yet: times out). */
    crew_timeout_t sc;
    TC_CHECK_EQ(crew_timeout_begin(&sc, 1 * CREW_MS), 0);
    TC_CHECK_EQ(crew_fd_wait(a->rfd, CREW_FD_READ), -ETIMEDOUT);
    TC_CHECK_EQ(crew_timeout_end(&sc), 1);
    /* The edge arrives while no one waits, and before we try to read. */
    crew_metrics_t m0, m1;
    crew_rt_metrics(crew_rt_current(), &m0);
    TC_CHECK_EQ(write(a->wfd, "y", 1), 1);
    do {
        crew_yield();
        crew_rt_metrics(crew_rt_current(), &m1);
    } while (m1.reactor_fd_events == m0.reactor_fd_events);
    TC_CHECK_EQ(crew_fd_wait(a->rfd, CREW_FD_READ), CREW_FD_READ);
    TC_CHECK_EQ(read(a->rfd, &c, 1), 1);
    /* The edge was consumed: the next wait blocks until a new one. */
    TC_CHECK_EQ(crew_timeout_begin(&sc, 1 * CREW_MS), 0);
    TC_CHECK_EQ(crew_fd_wait(a->rfd, CREW_FD_READ), -ETIMEDOUT);
    crew_timeout_end(&sc);
    return MARK_OK;
}

static void test_io_remembered_edge(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    struct edge_arg a = { p[0], p[1] };
    assert_ptr_equal(tc_run(remembered_edge_task, &a), MARK_OK);
    tc_assert_clean();
    close(p[0]);
    close(p[1]);
}

/* ---- Write readiness ---------------------------------------------------- */

static void *fill_and_wait_write(void *arg)
{
    struct pair_arg *a = arg;
    char buf[4096] = { 0 };
    while (write(a->fd, buf, sizeof buf) > 0)
        ;
    TC_CHECK_EQ(errno, EAGAIN);
    atomic_store(&a->rc, crew_fd_wait(a->fd, CREW_FD_WRITE | CREW_FD_READ));
    return MARK_OK;
}

static void test_io_wait_writable(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct pair_arg a = { .fd = sv[0], .rc = 1000 };
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, fill_and_wait_write, &a, NULL, &t), 0);
    TC_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_WAITING);
    char buf[65536];
    while (read(sv[1], buf, sizeof buf) > 0)
        ;
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(atomic_load(&a.rc), CREW_FD_WRITE);
    tc_assert_clean();
    assert_int_equal(crew_rt_destroy(rt), 0);
    close(sv[0]);
    close(sv[1]);
}

/* ---- One edge wakes every waiter of its direction ------------------------ */

#define MANY 16

static void test_io_many_waiters(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    int p[2];
    make_pipe(p);
    struct pair_arg a[MANY];
    crew_task_t *t[MANY];
    for (int i = 0; i < MANY; i++) {
        a[i].fd = p[0];
        atomic_init(&a[i].rc, 1000);
        assert_int_equal(crew_rt_spawn(rt, wait_read_task, &a[i], NULL, &t[i]), 0);
    }
    for (int i = 0; i < MANY; i++)
        TC_WAIT_UNTIL(crew_task_state(t[i]) == CREW_TASK_WAITING);
    assert_int_equal(write(p[1], "z", 1), 1);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(crew_join(t[i], NULL), 0);
        assert_int_equal(atomic_load(&a[i].rc), CREW_FD_READ);
    }
    assert_int_equal(crew_rt_destroy(rt), 0);
    close(p[0]);
    close(p[1]);
}

/* ---- crew_fd_close wakes waiters; a reused number starts clean ----------- */

struct close_arg {
    int fd;
    crew_task_t *waiter;
    _Atomic int rc;
};

static void *close_main(void *arg)
{
    struct close_arg *a = arg;
    crew_task_t *w;
    struct pair_arg pa = { .fd = a->fd, .rc = 1000 };
    TC_CHECK_EQ(crew_spawn(wait_read_task, &pa, NULL, &w), 0);
    TC_SPIN_UNTIL(crew_task_state(w) == CREW_TASK_WAITING, 10000000ul);
    TC_CHECK_EQ(crew_fd_close(a->fd), 0);
    TC_CHECK_EQ(crew_join(w, NULL), 0);
    TC_CHECK_EQ(atomic_load(&pa.rc), -EBADF);
    /* The fd is gone: waiting on its number now fails at once. */
    TC_CHECK_EQ(crew_fd_wait(a->fd, CREW_FD_READ), -EBADF);
    return MARK_OK;
}

static void test_io_close_wakes_waiter(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    struct close_arg a = { .fd = p[0] };
    assert_ptr_equal(tc_run(close_main, &a), MARK_OK);
    tc_assert_clean();
    close(p[1]);
}

/* The same from a plain thread, which does not belong to the runtime: the
 * close still finds the registration and wakes the waiter. A second runtime
 * makes even a task's close look in every runtime's table. */
static void test_io_close_from_thread_wakes_waiter(void **state)
{
    (void)state;
    crew_test_watchdog(30);
    for (int runtimes = 1; runtimes <= 2; runtimes++) {
        int p[2];
        make_pipe(p);
        crew_rt_t *rt = tc_rt_create(), *other = runtimes == 2 ? tc_rt_create() : NULL;
        struct pair_arg pa = { .fd = p[0], .rc = 1000 };
        crew_task_t *w;
        assert_int_equal(crew_rt_spawn(rt, wait_read_task, &pa, NULL, &w), 0);
        while (crew_task_state(w) != CREW_TASK_WAITING)
            sched_yield();
        assert_int_equal(crew_fd_close(p[0]), 0);
        assert_int_equal(crew_join(w, NULL), 0);
        assert_int_equal(atomic_load(&pa.rc), -EBADF);
        if (other)
            assert_int_equal(crew_rt_destroy(other), 0);
        assert_int_equal(crew_rt_destroy(rt), 0);
        close(p[1]);
    }
}

static void *reuse_main(void *arg)
{
    (void)arg;
    int p[2];
    TC_CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    /* Register, then let an edge be remembered while no one waits. */
    crew_timeout_t sc;
    crew_timeout_begin(&sc, 1 * CREW_MS);
    TC_CHECK_EQ(crew_fd_wait(p[0], CREW_FD_READ), -ETIMEDOUT);
    crew_timeout_end(&sc);
    crew_metrics_t m0, m1;
    crew_rt_metrics(crew_rt_current(), &m0);
    TC_CHECK_EQ(write(p[1], "r", 1), 1);
    do {
        crew_yield();
        crew_rt_metrics(crew_rt_current(), &m1);
    } while (m1.reactor_fd_events == m0.reactor_fd_events);
    int old = p[0];
    TC_CHECK_EQ(crew_fd_close(p[0]), 0);
    close(p[1]);
    /* The lowest free number: the old read end's. */
    int q[2];
    TC_CHECK_EQ(pipe2(q, O_NONBLOCK | O_CLOEXEC), 0);
    TC_CHECK_EQ(q[0], old);
    /* The new pipe is empty: its first wait must not see the old edge. */
    crew_timeout_begin(&sc, 20 * CREW_MS);
    TC_CHECK_EQ(crew_fd_wait(q[0], CREW_FD_READ), -ETIMEDOUT);
    crew_timeout_end(&sc);
    TC_CHECK_EQ(write(q[1], "s", 1), 1);
    TC_CHECK_EQ(read_byte(q[0]), 's');
    crew_fd_close(q[0]);
    close(q[1]);
    return MARK_OK;
}

static void test_io_reused_fd_number(void **state)
{
    (void)state;
    assert_ptr_equal(tc_run(reuse_main, NULL), MARK_OK);
    tc_assert_clean();
}

/* ---- Plain threads ------------------------------------------------------- */

static void *thread_waiter(void *arg)
{
    struct pair_arg *a = arg;
    atomic_store(&a->rc, crew_fd_wait(a->fd, CREW_FD_READ));
    return NULL;
}

static void test_io_thread_wait(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    struct pair_arg a = { .fd = p[0], .rc = 1000 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thread_waiter, &a), 0);
    assert_int_equal(write(p[1], "t", 1), 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&a.rc), CREW_FD_READ);
    /* Bad fd from a thread. */
    assert_int_equal(crew_fd_wait(1 << 30, CREW_FD_READ), -EBADF);
    assert_int_equal(crew_fd_forget(p[0]), 0);
    assert_int_equal(crew_fd_close(p[0]), 0);
    close(p[1]);
}

/* ---- Cancellation and deadlines at the wait ------------------------------ */

static void test_io_cancel_waiter(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    int p[2];
    make_pipe(p);
    struct pair_arg a = { .fd = p[0], .rc = 1000 };
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, wait_read_task, &a, NULL, &t), 0);
    TC_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(crew_task_cancel(t), 0);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(atomic_load(&a.rc), -ECANCELED);
    /* The record was unlinked: a new waiter still gets the next edge. */
    atomic_store(&a.rc, 1000);
    assert_int_equal(crew_rt_spawn(rt, wait_read_task, &a, NULL, &t), 0);
    TC_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_WAITING);
    assert_int_equal(write(p[1], "c", 1), 1);
    assert_int_equal(crew_join(t, NULL), 0);
    assert_int_equal(atomic_load(&a.rc), CREW_FD_READ);
    assert_int_equal(crew_rt_destroy(rt), 0);
    close(p[0]);
    close(p[1]);
}

static void *deadline_task(void *arg)
{
    int fd = *(int *)arg;
    crew_timeout_t sc;
    TC_CHECK_EQ(crew_timeout_begin(&sc, 5 * CREW_MS), 0);
    TC_CHECK_EQ(crew_fd_wait(fd, CREW_FD_READ), -ETIMEDOUT);
    TC_CHECK_EQ(crew_timeout_end(&sc), 1);
    /* Cancelled before the wait: it does not wait at all. */
    crew_task_cancel(crew_self());
    TC_CHECK_EQ(crew_fd_wait(fd, CREW_FD_READ), -ECANCELED);
    return MARK_OK;
}

static void test_io_deadline(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    assert_ptr_equal(tc_run(deadline_task, &p[0]), MARK_OK);
    tc_assert_clean();
    close(p[0]);
    close(p[1]);
}

/* ---- Bad inputs ------------------------------------------------------------ */

static void *bad_input_task(void *arg)
{
    (void)arg;
    int p[2];
    TC_CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    TC_CHECK_EQ(crew_fd_wait(-1, CREW_FD_READ), -EBADF);
    TC_CHECK_EQ(crew_fd_wait(p[0], 0), -EINVAL);
    TC_CHECK_EQ(crew_fd_wait(p[0], 4), -EINVAL);
    TC_CHECK_EQ(crew_fd_wait(1 << 30, CREW_FD_READ), -EBADF);
    /* A number that is not open. */
    int dead = dup(p[0]);
    close(dead);
    TC_CHECK_EQ(crew_fd_wait(dead, CREW_FD_READ), -EBADF);
    /* A regular file cannot be waited on. */
    char path[] = "/tmp/crew-io-XXXXXX";
    int f = mkstemp(path);
    TC_CHECK(f >= 0);
    unlink(path);
    TC_CHECK_EQ(crew_fd_wait(f, CREW_FD_READ), -EPERM);
    TC_CHECK_EQ(crew_fd_close(f), 0);
    TC_CHECK_EQ(crew_fd_close(-1), -EBADF);
    TC_CHECK_EQ(crew_fd_close(dead), -EBADF);
    TC_CHECK_EQ(crew_fd_forget(-1), -EBADF);
    /* forget keeps the fd open. */
    TC_CHECK_EQ(crew_fd_forget(p[0]), 0);
    TC_CHECK(fcntl(p[0], F_GETFD) >= 0);
    crew_fd_close(p[0]);
    close(p[1]);
    return MARK_OK;
}

static void test_io_bad_input(void **state)
{
    (void)state;
    assert_ptr_equal(tc_run(bad_input_task, NULL), MARK_OK);
    tc_assert_clean();
}

/* ---- A cancel racing with readiness never loses the edge ------------------ */

static void *closer_task(void *arg)
{
    TC_CHECK_EQ(crew_fd_close(*(int *)arg), 0);
    return MARK_OK;
}

struct race_lane {
    crew_rt_t *rt;
    unsigned iters;
    uint64_t seed;
    pthread_t thread;
    unsigned long ready, cancelled;
};

static void *race_lane_main(void *arg)
{
    struct race_lane *l = arg;
    uint64_t seed = l->seed;
    for (unsigned i = 0; i < l->iters; i++) {
        int p[2];
        if (pipe2(p, O_NONBLOCK | O_CLOEXEC)) {
            TC_CHECK(!"pipe2");
            return NULL;
        }
        struct pair_arg a = { .fd = p[0], .rc = 1000 };
        crew_task_t *t;
        TC_CHECK_EQ(crew_rt_spawn(l->rt, wait_read_task, &a, NULL, &t), 0);
        /* Parked on the fd: the edge (through the reactor) and the cancel
         * now race for its wake. */
        TC_CHECK(TC_THREAD_WAIT_UNTIL(crew_task_state(t) == CREW_TASK_WAITING));
        unsigned spins = (unsigned)(crew_test_rand(&seed) % 4000);
        TC_CHECK_EQ(write(p[1], "e", 1), 1);
        for (volatile unsigned s = 0; s < spins; s++)
            ;
        crew_task_cancel(t);
        TC_CHECK_EQ(crew_join(t, NULL), 0);
        int rc = atomic_load(&a.rc);
        if (rc == CREW_FD_READ) {
            l->ready++;
        } else {
            TC_CHECK_EQ(rc, -ECANCELED);
            l->cancelled++;
            /* Not consumed by the cancelled wait: a fresh wait (the byte is
             * still unread) must return, remembered edge or new one. */
            atomic_store(&a.rc, 1000);
            TC_CHECK_EQ(crew_rt_spawn(l->rt, wait_read_task, &a, NULL, &t), 0);
            TC_CHECK_EQ(crew_join(t, NULL), 0);
            TC_CHECK_EQ(atomic_load(&a.rc), CREW_FD_READ);
        }
        /* Unregister through a task of the runtime (io.h's contract). */
        crew_task_t *c;
        TC_CHECK_EQ(crew_rt_spawn(l->rt, closer_task, &p[0], NULL, &c), 0);
        TC_CHECK_EQ(crew_join(c, NULL), 0);
        close(p[1]);
    }
    return NULL;
}

#define RACE_LANES 2

static void test_io_cancel_vs_ready(void **state)
{
    (void)state;
    crew_rt_t *rt = tc_rt_create();
    unsigned iters = 3000 / crew_test_slowdown();
    struct race_lane lane[RACE_LANES];
    for (int i = 0; i < RACE_LANES; i++) {
        lane[i] = (struct race_lane){ .rt = rt, .iters = iters, .seed = crew_test_seed() + i };
        assert_int_equal(pthread_create(&lane[i].thread, NULL, race_lane_main, &lane[i]), 0);
    }
    unsigned long ready = 0, cancelled = 0;
    for (int i = 0; i < RACE_LANES; i++) {
        assert_int_equal(pthread_join(lane[i].thread, NULL), 0);
        ready += lane[i].ready;
        cancelled += lane[i].cancelled;
    }
    assert_int_equal(crew_rt_destroy(rt), 0);
    fprintf(stderr, "# %u rounds: %lu woke ready, %lu cancelled\n", iters * RACE_LANES, ready,
            cancelled);
    tc_assert_clean();
    assert_int_equal(ready + cancelled, iters * RACE_LANES);
}

/* ---- Stress: ping-pong over many socket pairs ------------------------------ */

#define PAIRS 32

struct pp {
    int fd;
    unsigned rounds;
    int serve; /* 1: echo each byte back incremented; 0: send and check. */
};

static void *pp_task(void *arg)
{
    struct pp *a = arg;
    unsigned char v = 0;
    for (unsigned r = 0; r < a->rounds; r++) {
        if (a->serve) {
            int c = read_byte(a->fd);
            TC_CHECK(c >= 0);
            if (c < 0)
                return NULL;
            TC_CHECK_EQ(write_byte(a->fd, (unsigned char)(c + 1)), 0);
        } else {
            TC_CHECK_EQ(write_byte(a->fd, v), 0);
            int c = read_byte(a->fd);
            TC_CHECK_EQ(c, (unsigned char)(v + 1));
            if (c < 0)
                return NULL;
            v = (unsigned char)(c + 1);
        }
    }
    crew_fd_close(a->fd);
    return MARK_OK;
}

static void *pp_main(void *arg)
{
    (void)arg;
    unsigned rounds = 2000 / crew_test_slowdown();
    struct pp a[2 * PAIRS];
    crew_task_t *t[2 * PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        int sv[2];
        TC_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        a[2 * i] = (struct pp){ sv[0], rounds, 1 };
        a[2 * i + 1] = (struct pp){ sv[1], rounds, 0 };
    }
    for (int i = 0; i < 2 * PAIRS; i++)
        TC_CHECK_EQ(crew_spawn(pp_task, &a[i], NULL, &t[i]), 0);
    void *res;
    for (int i = 0; i < 2 * PAIRS; i++) {
        TC_CHECK_EQ(crew_join(t[i], &res), 0);
        TC_CHECK(res == MARK_OK);
    }
    return MARK_OK;
}

static void test_io_ping_pong_stress(void **state)
{
    (void)state;
    assert_ptr_equal(tc_run(pp_main, NULL), MARK_OK);
    tc_assert_clean();
}

/* ---- Row 32: a task spinning on yield does not starve timers and I/O ------- */

static _Atomic int spin_stop;

static void *spinner(void *arg)
{
    (void)arg;
    while (!atomic_load(&spin_stop))
        crew_yield();
    return NULL;
}

static void *sleep_10ms(void *arg)
{
    (void)arg;
    TC_CHECK_EQ(crew_sleep(10 * CREW_MS), 0);
    return NULL;
}

static void *spin_main(void *arg)
{
    (void)arg;
    unsigned n = crew_rt_workers(crew_rt_current());
    crew_task_t *sp[4];
    for (unsigned i = 0; i < n && i < 4; i++)
        TC_CHECK_EQ(crew_spawn(spinner, NULL, NULL, &sp[i]), 0);
    /* Every worker now has a spinner; a timer and an fd edge must still get
     * their tasks run (the resuming lane of the injection queue is served
     * every 61 decisions, whatever the local queues hold). */
    crew_task_t *sl;
    TC_CHECK_EQ(crew_spawn(sleep_10ms, NULL, NULL, &sl), 0);
    TC_CHECK_EQ(crew_join(sl, NULL), 0);
    int p[2];
    TC_CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    struct pair_arg a = { .fd = p[0], .rc = 1000 };
    crew_task_t *w;
    TC_CHECK_EQ(crew_spawn(wait_read_task, &a, NULL, &w), 0);
    TC_SPIN_UNTIL(crew_task_state(w) == CREW_TASK_WAITING, 10000000ul);
    TC_CHECK_EQ(write(p[1], "s", 1), 1);
    TC_CHECK_EQ(crew_join(w, NULL), 0);
    TC_CHECK_EQ(atomic_load(&a.rc), CREW_FD_READ);
    atomic_store(&spin_stop, 1);
    for (unsigned i = 0; i < n && i < 4; i++)
        TC_CHECK_EQ(crew_join(sp[i], NULL), 0);
    crew_fd_close(p[0]);
    close(p[1]);
    return MARK_OK;
}

static void test_io_served_while_tasks_spin(void **state)
{
    (void)state;
    atomic_store(&spin_stop, 0);
    assert_ptr_equal(tc_run(spin_main, NULL), MARK_OK);
    tc_assert_clean();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_io_wait_readable),
    cmocka_unit_test(test_io_remembered_edge),
    cmocka_unit_test(test_io_wait_writable),
    cmocka_unit_test(test_io_many_waiters),
    cmocka_unit_test(test_io_close_wakes_waiter),
    cmocka_unit_test(test_io_close_from_thread_wakes_waiter),
    cmocka_unit_test(test_io_reused_fd_number),
    cmocka_unit_test(test_io_thread_wait),
    cmocka_unit_test(test_io_cancel_waiter),
    cmocka_unit_test(test_io_deadline),
    cmocka_unit_test(test_io_bad_input),
    cmocka_unit_test(test_io_cancel_vs_ready),
    cmocka_unit_test(test_io_ping_pong_stress),
    cmocka_unit_test(test_io_served_while_tasks_spin),
};

CREW_TEST_MAIN("io", tests)
