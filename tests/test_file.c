/* File helpers (include/crew/file.h): write and read back, pread/pwrite,
 * fsync, end of file, errors, plain threads, cancellation (a call cancelled
 * before it starts never runs; close always closes), and an EINTR storm at
 * the pool threads while reads run (RELIABILITY.md row 26). */
#include "task_util.h"

#include <sys/stat.h>

#define MARK_OK ((void *)(uintptr_t)0x600D)

static void temp_path(char *buf, size_t cap)
{
    snprintf(buf, cap, "/tmp/crew-test-file-%d-XXXXXX", (int)getpid());
    int fd = mkstemp(buf);
    assert_true(fd >= 0);
    close(fd);
}

/* ---- 1. Round trip, from a task and from a plain thread --------------------- */

static void roundtrip(const char *path)
{
    static const char msg[] = "hello, crew file helpers";
    char buf[64];
    int fd = -1;
    TC_CHECK_EQ(crew_file_open(path, O_RDWR | O_TRUNC | O_CLOEXEC, 0600, &fd), 0);
    TC_CHECK(fd >= 0);
    TC_CHECK_EQ(crew_file_write(fd, msg, sizeof msg), (ssize_t)sizeof msg);
    TC_CHECK_EQ(crew_file_fsync(fd), 0);
    TC_CHECK_EQ(crew_file_pwrite(fd, "J", 1, 0), 1);
    memset(buf, 0, sizeof buf);
    TC_CHECK_EQ(crew_file_pread(fd, buf, 5, 0), 5);
    TC_CHECK(!memcmp(buf, "Jello", 5));
    /* pread/pwrite left the offset at the end: a read there is EOF. */
    TC_CHECK_EQ(crew_file_read(fd, buf, sizeof buf), 0);
    TC_CHECK_EQ(crew_file_close(fd), 0);

    TC_CHECK_EQ(crew_file_open(path, O_RDONLY | O_CLOEXEC, 0, &fd), 0);
    memset(buf, 0, sizeof buf);
    /* Short read: asks for more than the file has. */
    TC_CHECK_EQ(crew_file_read(fd, buf, sizeof buf), (ssize_t)sizeof msg);
    TC_CHECK(!memcmp(buf, "Jello, crew file helpers", sizeof msg));
    TC_CHECK_EQ(crew_file_read(fd, buf, sizeof buf), 0);
    TC_CHECK_EQ(crew_file_pread(fd, buf, sizeof buf, 1000), 0);
    TC_CHECK_EQ(crew_file_write(fd, msg, 1), -EBADF); /* Read-only. */
    TC_CHECK_EQ(crew_file_close(fd), 0);
    TC_CHECK_EQ(crew_file_read(fd, buf, 1), -EBADF);
}

static void *roundtrip_task(void *arg)
{
    roundtrip(arg);
    return MARK_OK;
}

static void test_file_roundtrip(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    char path[128];
    temp_path(path, sizeof path);
    assert_ptr_equal(tc_run(roundtrip_task, path), MARK_OK);
    tc_assert_clean();
    roundtrip(path); /* A plain thread: the calls run in it. */
    tc_assert_clean();
    unlink(path);
}

/* ---- 2. Errors ------------------------------------------------------------------ */

static void *errors_task(void *arg)
{
    int fd = 12345;
    TC_CHECK_EQ(crew_file_open("/nonexistent/crew/file", O_RDONLY, 0, &fd), -ENOENT);
    TC_CHECK_EQ(fd, 12345);
    TC_CHECK_EQ(crew_file_open(NULL, O_RDONLY, 0, &fd), -EINVAL);
    TC_CHECK_EQ(crew_file_open("/tmp", O_RDONLY, 0, NULL), -EINVAL);
    char b[4];
    TC_CHECK_EQ(crew_file_read(-1, b, sizeof b), -EBADF);
    TC_CHECK_EQ(crew_file_write(-1, b, sizeof b), -EBADF);
    TC_CHECK_EQ(crew_file_read(0, NULL, 4), -EINVAL);
    TC_CHECK_EQ(crew_file_pread(0, b, 4, -1), -EINVAL);
    TC_CHECK_EQ(crew_file_pwrite(0, b, 4, -1), -EINVAL);
    TC_CHECK_EQ(crew_file_fsync(-1), -EBADF);
    TC_CHECK_EQ(crew_file_close(-1), -EBADF);
    /* A directory: open works, read says EISDIR. */
    TC_CHECK_EQ(crew_file_open("/tmp", O_RDONLY | O_CLOEXEC, 0, &fd), 0);
    TC_CHECK_EQ(crew_file_read(fd, b, sizeof b), -EISDIR);
    TC_CHECK_EQ(crew_file_close(fd), 0);
    return MARK_OK;
}

static void test_file_errors(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    assert_ptr_equal(tc_run(errors_task, NULL), MARK_OK);
    tc_assert_clean();
}

/* ---- 3. Cancellation ---------------------------------------------------------- */

static void *cancelled_task(void *arg)
{
    const char *path = arg;
    int fd = -1;
    TC_CHECK_EQ(crew_file_open(path, O_RDONLY | O_CLOEXEC, 0, &fd), 0);
    crew_task_cancel(crew_self());
    char b[8];
    /* Never runs: the offset stays at 0. */
    TC_CHECK_EQ(crew_file_read(fd, b, 4), -ECANCELED);
    TC_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0);
    int fd2 = -1;
    TC_CHECK_EQ(crew_file_open(path, O_RDONLY, 0, &fd2), -ECANCELED);
    TC_CHECK_EQ(fd2, -1);
    /* close is not a cancellation point: it closes. */
    TC_CHECK_EQ(crew_file_close(fd), 0);
    TC_CHECK_EQ(fcntl(fd, F_GETFD), -1);
    return MARK_OK;
}

static void test_file_cancel(void **state)
{
    crew_test_watchdog(60);
    tc_reset();
    char path[128];
    temp_path(path, sizeof path);
    crew_rt_t *rt = tc_rt_create();
    crew_task_t *t;
    assert_int_equal(crew_rt_spawn(rt, cancelled_task, path, NULL, &t), 0);
    void *r;
    assert_int_equal(crew_join(t, &r), 0);
    assert_ptr_equal(r, MARK_OK);
    assert_int_equal(crew_rt_destroy(rt), 0);
    tc_assert_clean();
    unlink(path);
}

/* ---- 4. EINTR storm at the pool threads (row 26) ------------------------------- */

#define STORM_POOL 4
#define STORM_CHUNKS 200

struct storm {
    pthread_t pool[STORM_POOL];
    atomic_int npool;
    atomic_int arrived;
    atomic_int stop;
    int pipe[2];
    uint64_t sum;
};

static atomic_ulong storm_signals;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&storm_signals, 1);
}

/* Runs on a pool thread: let SIGUSR1 in (pool threads block it), record the
 * thread, and hold it until STORM_POOL threads are in, so that each call
 * lands on a different thread. */
static void *storm_enlist(void *arg)
{
    struct storm *s = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    s->pool[atomic_fetch_add(&s->npool, 1)] = pthread_self();
    atomic_fetch_add(&s->arrived, 1);
    int64_t limit = crew_now() + 20 * CREW_S * (int64_t)crew_test_slowdown();
    while (atomic_load(&s->arrived) < STORM_POOL && crew_now() < limit)
        sched_yield();
    return MARK_OK;
}

static void *storm_reader(void *arg)
{
    struct storm *s = arg;
    uint64_t sum = 0;
    for (int i = 0; i < STORM_CHUNKS; i++) {
        uint32_t v = 0;
        size_t got = 0;
        while (got < sizeof v) {
            ssize_t n = crew_file_read(s->pipe[0], (char *)&v + got, sizeof v - got);
            TC_CHECK(n > 0); /* Never -EINTR, never EOF before the end. */
            if (n <= 0)
                return MARK_OK;
            got += (size_t)n;
        }
        sum += v;
    }
    s->sum = sum;
    return MARK_OK;
}

static void *storm_enlist_task(void *arg)
{
    TC_CHECK_EQ(crew_to_thread(storm_enlist, arg, NULL), 0);
    return MARK_OK;
}

static void *storm_signaller(void *arg)
{
    struct storm *s = arg;
    while (!atomic_load(&s->stop))
        for (int i = 0; i < atomic_load(&s->npool); i++)
            pthread_kill(s->pool[i], SIGUSR1);
    return NULL;
}

static void test_file_eintr_storm(void **state)
{
    crew_test_watchdog(120);
    tc_reset();
    struct sigaction sa = { .sa_handler = on_usr1 }, old;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* No SA_RESTART: blocked reads fail with EINTR. */
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    struct storm s = { 0 };
    assert_int_equal(pipe2(s.pipe, O_CLOEXEC), 0);
    crew_rt_t *rt = tc_rt_create();
    /* Make the default pool's threads (every one it will use for the
     * single reader below) take SIGUSR1. */
    crew_task_t *m;
    crew_task_t *en[STORM_POOL];
    for (int i = 0; i < STORM_POOL; i++)
        assert_int_equal(crew_rt_spawn(rt, storm_enlist_task, &s, NULL, &en[i]), 0);
    for (int i = 0; i < STORM_POOL; i++)
        assert_int_equal(crew_join(en[i], NULL), 0);
    assert_int_equal(atomic_load(&s.npool), STORM_POOL);

    pthread_t sig;
    assert_int_equal(pthread_create(&sig, NULL, storm_signaller, &s), 0);
    assert_int_equal(crew_rt_spawn(rt, storm_reader, &s, NULL, &m), 0);
    /* Write each chunk only after more signals arrived, so the reader is
     * interrupted while it waits in read(). */
    uint64_t want = 0;
    for (uint32_t i = 0; i < STORM_CHUNKS; i++) {
        unsigned long seen = atomic_load(&storm_signals);
        TC_WAIT_UNTIL(atomic_load(&storm_signals) > seen + 2);
        assert_int_equal(write(s.pipe[1], &i, sizeof i), (ssize_t)sizeof i);
        want += i;
    }
    assert_int_equal(crew_join(m, NULL), 0);
    atomic_store(&s.stop, 1);
    assert_int_equal(pthread_join(sig, NULL), 0);
    assert_int_equal(crew_rt_destroy(rt), 0);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    close(s.pipe[0]);
    close(s.pipe[1]);
    fprintf(stderr, "# %lu signals delivered to pool threads\n", atomic_load(&storm_signals));
    tc_assert_clean();
    assert_int_equal(s.sum, want);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_file_roundtrip),
    cmocka_unit_test(test_file_errors),
    cmocka_unit_test(test_file_cancel),
    cmocka_unit_test(test_file_eintr_storm),
};

CREW_TEST_MAIN("file", tests)
