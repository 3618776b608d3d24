/* Helpers shared by the runtime, task, scheduler, migration and stack tests.
 *
 *   - TC_CHECK records a failure seen on a task or a plain thread, where
 *     cmocka's assert_* must not run; the test thread calls
 *     tc_assert_clean() after the join that publishes the record.
 *   - TC_SPIN_UNTIL waits for a condition inside a task by yielding, bounded
 *     by an iteration cap so that a scheduler bug fails instead of hanging.
 *   - tc_run_child() runs this very executable again (fork + exec, so the
 *     child starts single-threaded, as TSan requires) in the mode named by
 *     $CREW_TEST_CHILD, captures its stderr and returns its wait status.
 *     TC_CHILD_DISPATCH() installs the constructor that enters that mode
 *     before cmocka's main runs. */
#ifndef CREW_TESTS_TASK_UTIL_H
#define CREW_TESTS_TASK_UTIL_H

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

/* The first failure any task or thread recorded in the current test. */
static struct {
    _Atomic int claimed;   /* First recorder wins. */
    _Atomic int published; /* Release: the fields below are written. */
    const char *file;
    int line;
    const char *expr;
    long long a, b;
} tc_failure;

static _Atomic unsigned long tc_failures;

static inline void tc_reset(void)
{
    atomic_store(&tc_failure.claimed, 0);
    atomic_store(&tc_failure.published, 0);
    atomic_store(&tc_failures, 0);
}

static inline void tc_record(const char *file, int line, const char *expr, long long a, long long b)
{
    atomic_fetch_add(&tc_failures, 1);
    if (atomic_exchange(&tc_failure.claimed, 1))
        return;
    tc_failure.file = file;
    tc_failure.line = line;
    tc_failure.expr = expr;
    tc_failure.a = a;
    tc_failure.b = b;
    atomic_store_explicit(&tc_failure.published, 1, memory_order_release);
}

#define TC_CHECK(cond)                                                                    \
    do {                                                                                  \
        if (!(cond))                                                                      \
            tc_record(__FILE__, __LINE__, #cond, 0, 0);                                   \
    } while (0)

/* Records both values, which the report prints. */
#define TC_CHECK_EQ(x, y)                                                                 \
    do {                                                                                  \
        long long tc_x_ = (long long)(x), tc_y_ = (long long)(y);                        \
        if (tc_x_ != tc_y_)                                                               \
            tc_record(__FILE__, __LINE__, #x " == " #y, tc_x_, tc_y_);                    \
    } while (0)

/* On the test thread, after every task and thread that may record has been
 * joined: fail the test with the first recorded failure. */
static inline void tc_assert_clean(void)
{
    if (!atomic_load(&tc_failures))
        return;
    if (atomic_load_explicit(&tc_failure.published, memory_order_acquire))
        print_error("%s:%d: check failed on a task/thread: %s (%lld vs %lld); %lu failure(s)\n",
                    tc_failure.file, tc_failure.line, tc_failure.expr, tc_failure.a, tc_failure.b,
                    atomic_load(&tc_failures));
    fail_msg("%lu check(s) failed on tasks or threads", atomic_load(&tc_failures));
}

/* Yield until cond holds or cap yields have passed; evaluates to cond. Only
 * inside a task. */
#define TC_SPIN_UNTIL(cond, cap)                                                          \
    ({                                                                                    \
        unsigned long tc_i_ = 0;                                                          \
        while (!(cond) && tc_i_++ < (unsigned long)(cap))                                 \
            crew_yield();                                                                 \
        (cond);                                                                           \
    })

static inline pid_t tc_gettid(void)
{
    /* The raw syscall: nothing cached per thread, so it names the thread that
     * really runs the caller. */
    return (pid_t)syscall(SYS_gettid);
}

/* Create a runtime with this run's worker count (asserts on failure). */
static inline crew_rt_t *tc_rt_create(void)
{
    crew_rt_opts_t o = crew_test_rt_opts();
    crew_rt_t *rt = NULL;
    assert_int_equal(crew_rt_create(&o, &rt), 0);
    assert_non_null(rt);
    return rt;
}

/* Run fn(arg) as a task of a new runtime with this run's worker count and
 * return its result. */
static inline void *tc_run(crew_fn_t fn, void *arg)
{
    crew_rt_opts_t o = crew_test_rt_opts();
    void *res = NULL;
    assert_int_equal(crew_run(fn, arg, &o, &res), 0);
    return res;
}

/* ---- Progress watchdog -------------------------------------------------- */

/* Aborts the process when count stops moving for limit_s seconds (times the
 * slowdown): a lost wakeup shows up as a stall, not as a slow test. */
struct tc_progress {
    atomic_ulong count;
    const char *what;
    unsigned limit_s;
    bool stop;            /* Under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
};

static void *tc_progress_main(void *arg)
{
    struct tc_progress *p = arg;
    unsigned long last = atomic_load(&p->count);
    unsigned stalled = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        if (p->stop)
            break;
        unsigned long now = atomic_load(&p->count);
        stalled = now == last ? stalled + 1 : 0;
        last = now;
        if (stalled >= p->limit_s * crew_test_slowdown()) {
            fprintf(stderr, "%s: no progress for %u s (stuck at %lu): lost wakeup or hang\n",
                    p->what, stalled, now);
            abort();
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static inline void tc_progress_start(struct tc_progress *p, const char *what, unsigned limit_s)
{
    atomic_init(&p->count, 0);
    p->what = what;
    p->limit_s = limit_s;
    p->stop = false;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->mu, NULL);
    assert_int_equal(pthread_create(&p->thread, NULL, tc_progress_main, p), 0);
}

static inline void tc_progress_stop(struct tc_progress *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    assert_int_equal(pthread_join(p->thread, NULL), 0);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

/* ---- Waiting on the test thread ------------------------------------------ */

/* A plain thread (usually the test's own) polls until a task reaches a
 * point. The limit only turns a hang into a failure (a lost wakeup must fail,
 * not block); it is not a timing assertion. */
#define TC_WAIT_LIMIT_NS (20 * CREW_S)

/* Poll cond, yielding the CPU; evaluates to whether it held within the limit. */
#define TC_THREAD_WAIT_UNTIL(cond)                                                        \
    ({                                                                                    \
        int64_t tw_limit_ = crew_now() + TC_WAIT_LIMIT_NS * (int64_t)crew_test_slowdown();  \
        while (!(cond) && crew_now() < tw_limit_)                                         \
            sched_yield();                                                                \
        (cond);                                                                           \
    })

/* On the test thread: poll cond, fail the test if it never holds. */
#define TC_WAIT_UNTIL(cond)                                                               \
    do {                                                                                  \
        if (!TC_THREAD_WAIT_UNTIL(cond))                                                  \
            fail_msg("%s:%d: still waiting for %s: hang or lost wakeup", __FILE__,         \
                     __LINE__, #cond);                                                    \
    } while (0)

/* ---- Child processes ---------------------------------------------------- */

#define TC_CHILD_ENV "CREW_TEST_CHILD"

/* Run this executable with $CREW_TEST_CHILD=mode plus the extra "NAME=value"
 * strings in env (NULL-terminated, may be NULL). Its stderr goes to err
 * (NUL-terminated, truncated to cap - 1 bytes). Returns the wait status. */
static inline int tc_run_child(const char *mode, const char *const *env, char *err, size_t cap)
{
    /* Build everything before fork: the child of a multi-threaded parent may
     * only make async-signal-safe calls before exec. */
    size_t n = 0, extra = 0;
    while (environ[n])
        n++;
    while (env && env[extra])
        extra++;
    char **envp = calloc(n + extra + 2, sizeof *envp);
    char *mode_var = malloc(strlen(TC_CHILD_ENV) + strlen(mode) + 2);
    assert_non_null(envp);
    assert_non_null(mode_var);
    sprintf(mode_var, "%s=%s", TC_CHILD_ENV, mode);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool overridden = !strncmp(environ[i], TC_CHILD_ENV "=", strlen(TC_CHILD_ENV) + 1);
        for (size_t j = 0; j < extra && !overridden; j++) {
            size_t len = strcspn(env[j], "=") + 1;
            overridden = !strncmp(environ[i], env[j], len);
        }
        if (!overridden)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < extra; j++)
        envp[k++] = (char *)env[j];
    envp[k++] = mode_var;
    envp[k] = NULL;
    char *argv[] = { "crew-test-child", NULL };

    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        execve("/proc/self/exe", argv, envp);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    for (;;) {
        char buf[4096];
        ssize_t r = read(fds[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r;
        if (take > cap - 1 - len)
            take = cap - 1 - len;
        memcpy(err + len, buf, take);
        len += take;
    }
    err[len] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    free(mode_var);
    free(envp);
    /* Relay the child's output: a failing test then shows what it said. */
    fprintf(stderr, "# child '%s' said:\n%s# child status %#x\n", mode, err, status);
    return status;
}

/* Define `static int child_main(const char *mode)` (exit code of the child)
 * and use this once per file. */
#define TC_CHILD_DISPATCH(child_main)                                                     \
    __attribute__((constructor)) static void tc_child_dispatch(void)                      \
    {                                                                                     \
        const char *mode = getenv(TC_CHILD_ENV);                                          \
        if (!mode)                                                                        \
            return;                                                                       \
        /* A child that hangs must die rather than hold its parent forever. */           \
        alarm(30 * crew_test_slowdown());                                                 \
        int rc = child_main(mode);                                                        \
        fflush(NULL);                                                                     \
        _exit(rc);                                                                        \
    }

#endif
