/* Executors: elastic pools of plain threads for blocking calls
 * (include/crew/executor.h).
 *
 * Everything below is guarded by ex->lock, a pthread mutex: the critical
 * sections are a few list operations, and a pool thread may be preempted
 * while holding it, where a spin lock would burn the other core.
 *
 *  1. Submit. The caller's job record lives on its own stack. It arms its
 *     waiter (park.h rule 1), appends the job to the FIFO queue, and, as
 *     protocol 8 decides, hands the queue to the most recently idle thread
 *     (LIFO: its caches are warm, and the threads idle longest are the ones
 *     that retire) or starts a thread when none is idle and max_threads
 *     allows, or leaves the job to the busy threads; then it waits.
 *  2. Take. A pool thread pops the job, copies fn, arg and discard into its
 *     own record (on its own stack), marks the job RUNNING and links job and
 *     thread both ways.
 *  3. Finish. When fn returns, the thread, under the lock: if the job is
 *     still linked, stores the result, marks it DONE and claims the caller's
 *     wake (crew__unpark_claim); a task it won while parked is made runnable
 *     after the lock is dropped (it cannot run before that, so it stays
 *     valid). If the caller unlinked itself, the thread passes the result to
 *     discard. In the same lock hold it takes its next job.
 *  4. A caller woken for another reason (cancel, deadline) takes the lock
 *     and looks at its job (park.h rule 4): QUEUED: unlink it, it never runs;
 *     RUNNING: unlink it from its thread, which then never touches the record
 *     again (or, with CREW_EXEC_FINISH, wait again, shielded); DONE: the
 *     thread's wake lost the race, the result is there, take it.
 *     So the record never has to leave the caller's stack: a call allocates
 *     nothing, whichever way it ends.
 *  5. users counts callers that may still touch ex. The party whose wake of
 *     a caller wins (the pool thread, or the destroyer) uncounts it, because
 *     that caller returns without taking the lock; a caller whose wake lost
 *     uncounts itself under the lock. destroy waits for users == 0 and for
 *     every thread to have exited, so nobody touches ex after it is freed.
 *  6. Backpressure. While queued + reserved >= cap, or others already wait,
 *     a submitter waits in a FIFO of space waiters. Each slot that frees is
 *     granted to the first waiter whose wake wins (reserved++), so newcomers
 *     cannot barge and a slot is never lost to a waiter that was cancelled
 *     at the same moment (its wake lost: the slot goes to the next one).
 *  7. Idle threads sleep on a futex in their own record, at most keep_alive;
 *     a thread that times out without being handed work retires.
 *  8. How many threads run. A job is handed to a thread at once only while
 *     fewer than `eager` threads (the CPU count) are busy. Otherwise it
 *     waits in the queue for a busy thread to finish, and one idle thread,
 *     the watcher, sleeps in short steps (WATCH_NS doubling up to
 *     WATCH_MAX_NS) and takes a job itself when the pool has stalled: no
 *     thread was handed work or took a job for WATCH_NS, and fewer than
 *     `eager` busy threads can run. A busy thread can run if its CPU clock
 *     advanced by at least a quarter of the time since the watcher's last
 *     sample of it, or else if /proc says it is runnable (state R: waiting
 *     for a CPU on a loaded machine, or it just took its job); one asleep in
 *     the kernel (a blocked call) cannot. With no progress for force_ns
 *     (10 ms, doubling with each such growth up to 1 s, reset when the
 *     queue empties) the pool has stalled whatever its threads do, so that
 *     calls that spin-wait for each other still get threads, and the pool
 *     grows only logarithmically with the length of CPU-bound calls. A
 *     watcher that takes a job or
 *     finds the queue empty hands the role on (the next submit or take
 *     appoints one). Only the watcher grows the pool past `eager`: the
 *     submit path reads no clock but crew_now.
 *     [One runnable pool thread per CPU keeps the CPUs busy; dozens of them
 *     only time-slice against the workers, starve the submitters, drain the
 *     queue and then cost a futex wake and two context switches per call.
 *     So calls that compute for longer than WATCH_NS get no more threads
 *     than CPUs, while calls that block (what the pool is for) still get
 *     threads up to max_threads, one per WATCH_NS at worst, so calls that
 *     wait for each other by blocking cannot deadlock; calls that spin for
 *     each other look like computations and wait for force_ns.
 *     The CPU clock is the cheap test (one clock_gettime per busy thread per
 *     tick, none once `eager` threads ran); /proc, about 5 us a read, only
 *     settles the threads that did not run, without the lock.] */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "executor.h"
#include "futex.h"
#include "list.h"
#include "park.h"
#include "scheduler.h"

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_REMOVED };

/* Protocol 8: a pool with no progress for WATCH_NS has stalled; a watcher
 * that sees progress sleeps longer each time, up to WATCH_MAX_NS. */
#define WATCH_NS (50 * CREW_US)
#define WATCH_MAX_NS (1 * CREW_MS)
/* Protocol 8: a pool with no progress for force_ns grows whatever its
 * threads do; force_ns starts at FORCE_NS, doubles with each such growth up
 * to FORCE_MAX_NS, and starts over when the queue empties. */
#define FORCE_NS (10 * CREW_MS)
#define FORCE_MAX_NS (1 * CREW_S)

/* What a dispatch decided the caller must do after dropping the lock. */
enum { START_NONE, START_RUNNER, START_WATCHER };

/* Futex word of a pool thread: the decision (notified) is made under the
 * lock; the word only tells the notifier whether a futex wake is needed. */
enum { PT_AWAKE, PT_SLEEPING, PT_NOTIFIED };

typedef struct pool_thread pool_thread_t;

/* One call; on the caller's stack. All fields under ex->lock once queued. */
typedef struct job {
    crew__link_t link;              /* In ex->queue while QUEUED. */
    crew_fn_t fn;
    void *arg;
    crew_discard_fn_t discard;
    void *result;             /* Written with DONE. */
    pool_thread_t *runner;    /* While RUNNING. */
    crew__waiter_t waiter;
    int state;
} job_t;

/* A pool thread; on its own stack. */
struct pool_thread {
    crew__link_t link;              /* In ex->idle while idle and not notified. */
    crew__link_t busy_link;         /* In ex->busy while busy (protocol 8). */
    bool busy;
    _Atomic uint32_t futex;   /* PT_*. */
    bool notified;            /* Handed work since it went idle. */
    job_t *job;               /* The caller's record while linked, else NULL. */
    crew_fn_t fn;             /* Copies of the running job's fields. */
    void *arg;
    crew_discard_fn_t discard;
    pid_t tid;                /* For /proc/self/task/<tid>/stat. */
    bool has_clock;           /* cpu_clock is valid. */
    clockid_t cpu_clock;      /* This thread's CPU-time clock. */
    int64_t cpu_seen;         /* The watcher's last sample of it (under the lock) */
    int64_t seen_at;          /* and when it took it; 0: none since it became busy. */
};

/* A submitter waiting for room in the queue; on its stack. */
typedef struct {
    crew__link_t link;
    crew__waiter_t waiter;
    bool linked;              /* Still in ex->space. */
    bool granted;             /* A slot was reserved for it. */
} space_waiter_t;

struct crew_executor_s {
    pthread_mutex_t lock;
    pthread_cond_t drained;   /* destroy waits here for alive == users == 0. */
    crew__list_t queue;             /* job_t, FIFO. */
    crew__list_t idle;              /* pool_thread_t, most recently idle first. */
    crew__list_t space;             /* space_waiter_t, FIFO. */
    crew__list_t busy;              /* pool_thread_t between a take and a failed take. */
    unsigned nbusy;
    pool_thread_t *watcher;   /* Idle, not in ex->idle, watching the queue (protocol 8). */
    bool watcher_starting;    /* A thread is being started to become the watcher. */
    int64_t progress;         /* crew_now() when a thread was last handed work or took a job. */
    int64_t force_ns;         /* No progress for this long grows the pool anyway. */
    size_t queued, reserved, cap;
    unsigned max_threads;
    unsigned eager;           /* Busy threads beyond which jobs wait (protocol 8). */
    unsigned alive;           /* Threads started (or starting) and not yet exited. */
    unsigned nidle, running, users;
    unsigned started;         /* Threads ever started; also numbers their names. */
    int64_t keep_alive;
    bool stopping;
    uint64_t completed, cancelled, discarded;
    uint64_t stalls_blocked, stalls_forced; /* Jobs the watcher took, by reason (protocol 8). */
    char name[CREW_EXECUTOR_NAME_MAX];
};

/* The executor whose pool thread this is (crew_executor_destroy's -EBUSY). */
static _Thread_local crew_executor_t *pool_self;

static void check_drained(crew_executor_t *ex)
{
    if (ex->stopping && !ex->alive && !ex->users)
        pthread_cond_signal(&ex->drained);
}

static void user_put(crew_executor_t *ex)
{
    ex->users--;
    check_drained(ex);
}

/* Give free slots to space waiters, first come first served (protocol 6). */
static void grant_slots(crew_executor_t *ex)
{
    while (ex->queued + ex->reserved < ex->cap) {
        crew__link_t *e = crew__list_pop_front(&ex->space);
        if (!e)
            return;
        space_waiter_t *sw = CREW_CONTAINER_OF(e, space_waiter_t, link);
        sw->linked = false;
        if (crew__waiter_wake(&sw->waiter, CREW_WAKE_READY)) {
            sw->granted = true;
            ex->reserved++;
        }
    }
}

/* Hand the queue to the most recently idle thread. Returns false if none is
 * idle; *sleeper is set to a thread that needs a futex wake after unlock. */
static bool notify_idle(crew_executor_t *ex, pool_thread_t **sleeper)
{
    crew__link_t *e = crew__list_pop_front(&ex->idle);
    pool_thread_t *pt;
    *sleeper = NULL;
    if (e) {
        pt = CREW_CONTAINER_OF(e, pool_thread_t, link);
    } else if (ex->watcher) {
        pt = ex->watcher;
        ex->watcher = NULL;
    } else {
        return false;
    }
    ex->nidle--;
    pt->notified = true;
    /* Relaxed: the decision travels in pt->notified under the lock; the
     * word only says whether the thread went to sleep on it. */
    if (atomic_exchange_explicit(&pt->futex, PT_NOTIFIED, memory_order_relaxed) == PT_SLEEPING)
        *sleeper = pt;
    return true;
}

static void wake_sleeper(pool_thread_t *pt)
{
    /* The thread may have run, gone idle and even exited since we notified
     * it: futex_wake uses the address only as a key, and every futex sleeper
     * in crew re-checks its condition, so a stray wake is harmless. */
    if (pt)
        crew__futex_wake(&pt->futex, 1);
}

static void futex_wait_ns(_Atomic uint32_t *addr, uint32_t val, int64_t ns)
{
    struct timespec ts = { (time_t)(ns / CREW_S), (long)(ns % CREW_S) };
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static int64_t add_sat(int64_t a, int64_t b)
{
    return b > INT64_MAX - a ? INT64_MAX : a + b;
}

/* Sleep on pt's futex until it is notified or until passes; lock dropped. */
static void sleep_until(crew_executor_t *ex, pool_thread_t *pt, int64_t until)
{
    /* Under the lock, so a notify after it is seen (notifiers exchange under
     * the lock too). */
    atomic_store_explicit(&pt->futex, PT_AWAKE, memory_order_relaxed);
    pthread_mutex_unlock(&ex->lock);
    int64_t now;
    while (atomic_load_explicit(&pt->futex, memory_order_relaxed) != PT_NOTIFIED &&
           (now = crew_now()) < until) {
        uint32_t awake = PT_AWAKE;
        atomic_compare_exchange_strong_explicit(&pt->futex, &awake, PT_SLEEPING,
                                                memory_order_relaxed, memory_order_relaxed);
        futex_wait_ns(&pt->futex, PT_SLEEPING, until - now);
    }
    pthread_mutex_lock(&ex->lock);
}

/* Lock held. Whether busy thread b ran on a CPU for at least a quarter of
 * the time since the watcher's last sample of it (none yet: no); takes a new
 * sample. A quarter, not all: a thread that runs a computation also takes
 * page faults and shares its CPU with the workers. */
static bool ran_on_cpu(pool_thread_t *b, int64_t now)
{
    struct timespec ts;
    if (!b->has_clock || clock_gettime(b->cpu_clock, &ts))
        return false;
    int64_t cpu = (int64_t)ts.tv_sec * CREW_S + ts.tv_nsec;
    bool ran = b->seen_at && (cpu - b->cpu_seen) * 4 >= now - b->seen_at;
    b->cpu_seen = cpu;
    b->seen_at = now;
    return ran;
}

/* Whether thread tid of this process is runnable now (state R: on a CPU or
 * waiting for one) rather than asleep in the kernel. Unknown (no /proc, or
 * the thread is gone): no. */
static bool thread_runnable(pid_t tid)
{
    char path[48], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* "tid (name) S ...": the name may hold anything, the fields after it
     * are numbers. */
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'R';
}

/* Lock held; the watcher pt found no progress for WATCH_NS. Returns true,
 * if pt is still the watcher of a non-empty queue that made no progress
 * meanwhile, when fewer busy threads than eager can run (protocol 8), or
 * else when there was no progress for force_ns; counts which. Drops the
 * lock while it reads /proc. */
static bool pool_stalled(crew_executor_t *ex, pool_thread_t *pt)
{
    const int64_t seen = ex->progress, now = crew_now();
    /* Busy threads not in ex->busy were just handed work or are starting:
     * they are about to run. */
    unsigned running = ex->alive - ex->nidle - ex->nbusy;
    pid_t suspects[CREW_EXECUTOR_MAX_THREADS];
    unsigned n = 0;
    for (crew__link_t *e = ex->busy.head; e && running < ex->eager; e = e->next) {
        pool_thread_t *b = CREW_CONTAINER_OF(e, pool_thread_t, busy_link);
        if (ran_on_cpu(b, now))
            running++;
        else
            suspects[n++] = b->tid;
    }
    if (n && running < ex->eager) {
        /* Off the CPU: asleep (a blocked call) or waiting for a CPU (a
         * loaded machine), which another thread would not help. */
        pthread_mutex_unlock(&ex->lock);
        for (unsigned i = 0; i < n && running < ex->eager; i++)
            running += thread_runnable(suspects[i]);
        pthread_mutex_lock(&ex->lock);
    }
    if (ex->watcher != pt || !ex->queued || ex->progress != seen)
        return false;
    if (running < ex->eager) {
        ex->stalls_blocked++;
        return true;
    }
    if (now - seen >= ex->force_ns) {
        if (ex->force_ns < FORCE_MAX_NS)
            ex->force_ns *= 2;
        ex->stalls_forced++;
        return true;
    }
    return false;
}

/* Lock held. Go idle (as the watcher if watch) until handed work; returns
 * with the lock held, true to serve the queue, false to exit (protocols 7
 * and 8). */
static bool idle_wait(crew_executor_t *ex, pool_thread_t *pt, bool watch)
{
    if (ex->stopping)
        return false;
    pt->notified = false;
    ex->nidle++;
    /* A thread started to watch may find the role already given to an idle
     * thread (the lock was dropped between pool_main and here): it must
     * not take it over, or that thread would be neither the watcher nor in
     * the idle list (and later unlinked from a list it is not in). */
    if (watch && !ex->watcher)
        ex->watcher = pt;
    else
        crew__list_push_front(&ex->idle, &pt->link);
    int64_t backoff = WATCH_NS, keep_until = 0, until;
    bool may_scan = true; /* Once per sleep: a scan drops the lock. */
    for (;;) {
        if (pt->notified)
            return true;
        if (ex->stopping) {
            /* Notified threads saw notified above; only a watcher appointed
             * before destroy emptied the queue can get here. */
            if (ex->watcher == pt)
                ex->watcher = NULL;
            else
                crew__list_remove(&ex->idle, &pt->link);
            ex->nidle--;
            return false;
        }
        int64_t now = crew_now();
        if (ex->watcher != pt) {
            if (!keep_until) {
                keep_until = add_sat(now, ex->keep_alive);
            } else if (now >= keep_until) {
                crew__list_remove(&ex->idle, &pt->link);
                ex->nidle--;
                /* Every job queued while we were idle got a thread or a
                 * watcher, but take one that still waits. */
                return ex->queued != 0;
            }
            until = keep_until;
        } else if (!ex->queued) {
            ex->watcher = NULL; /* Nothing to watch: plain idle again. */
            crew__list_push_front(&ex->idle, &pt->link);
            keep_until = add_sat(now, ex->keep_alive);
            until = keep_until;
        } else if (may_scan && now - ex->progress >= WATCH_NS) {
            if (pool_stalled(ex, pt)) {
                ex->watcher = NULL; /* Stalled: serve the queue ourselves. */
                ex->nidle--;
                return true;
            }
            may_scan = false;
            continue; /* The lock was dropped: look again. */
        } else {
            until = now + backoff;
            if (backoff < WATCH_MAX_NS)
                backoff *= 2;
        }
        sleep_until(ex, pt, until);
        may_scan = true;
    }
}

/* Lock held, the queue not empty. Make sure a thread watches the queue
 * (protocol 8): appoint the most recently idle thread, or start one. Returns
 * START_WATCHER if the caller must start a thread (ex->alive is already
 * counted), else START_NONE; *sleeper as for notify_idle. */
static int ensure_watcher(crew_executor_t *ex, pool_thread_t **sleeper)
{
    *sleeper = NULL;
    if (ex->watcher || ex->watcher_starting)
        return START_NONE;
    crew__link_t *e = crew__list_pop_front(&ex->idle);
    if (e) {
        pool_thread_t *pt = CREW_CONTAINER_OF(e, pool_thread_t, link);
        ex->watcher = pt;
        /* Relaxed: the role travels in ex->watcher under the lock. */
        if (atomic_exchange_explicit(&pt->futex, PT_NOTIFIED, memory_order_relaxed) == PT_SLEEPING)
            *sleeper = pt;
        return START_NONE;
    }
    if (ex->alive >= ex->max_threads)
        return START_NONE;
    ex->alive++;
    ex->watcher_starting = true;
    return START_WATCHER;
}

/* Lock held, a job just queued. Hand it to a thread now, or leave it to the
 * busy threads and the watcher (protocol 8). Returns which thread the
 * caller must start (ex->alive is already counted); *sleeper as for
 * notify_idle. */
static int dispatch(crew_executor_t *ex, pool_thread_t **sleeper)
{
    if (ex->alive - ex->nidle >= ex->eager)
        return ensure_watcher(ex, sleeper);
    ex->progress = crew_now();
    if (notify_idle(ex, sleeper) || ex->alive >= ex->max_threads)
        return START_NONE;
    ex->alive++;
    return START_RUNNER;
}

/* Lock held. Pop the next job and link it to pt (protocol 2); pt is busy
 * from its first take to the next take that finds the queue empty. */
static bool take_job(crew_executor_t *ex, pool_thread_t *pt)
{
    crew__link_t *e = crew__list_pop_front(&ex->queue);
    if (!e) {
        ex->force_ns = FORCE_NS;
        if (pt->busy) {
            crew__list_remove(&ex->busy, &pt->busy_link);
            ex->nbusy--;
            pt->busy = false;
        }
        return false;
    }
    if (!pt->busy) {
        crew__list_push_back(&ex->busy, &pt->busy_link);
        ex->nbusy++;
        pt->busy = true;
        pt->seen_at = 0;
    }
    job_t *j = CREW_CONTAINER_OF(e, job_t, link);
    ex->queued--;
    ex->running++;
    ex->progress = crew_now();
    j->state = JOB_RUNNING;
    j->runner = pt;
    pt->job = j;
    pt->fn = j->fn;
    pt->arg = j->arg;
    pt->discard = j->discard;
    grant_slots(ex);
    return true;
}

/* Lock held. Deliver r to pt's caller (protocol 3). Returns a task to make
 * runnable after the lock is dropped, or NULL; *discard is set when the
 * caller left and the result goes to the discard callback instead. */
static crew_task_t *finish_job(crew_executor_t *ex, pool_thread_t *pt, void *r, bool *discard)
{
    job_t *j = pt->job;
    ex->running--;
    if (!j) {
        ex->discarded++;
        *discard = pt->discard != NULL;
        return NULL;
    }
    pt->job = NULL;
    j->result = r;
    j->state = JOB_DONE;
    ex->completed++;
    crew__waiter_t *w = &j->waiter;
    if (!w->task) {
        /* A plain thread: its wait cannot end for another reason. */
        if (crew__waiter_wake(w, CREW_WAKE_READY))
            user_put(ex);
        return NULL;
    }
    crew_task_t *t = w->task;
    int claim = crew__unpark_claim(t, w->seq, CREW_WAKE_READY);
    if (claim != CREW_UNPARK_LOST)
        user_put(ex);
    return claim == CREW_UNPARK_SCHEDULE ? t : NULL;
}

static int spawn_thread(crew_executor_t *ex);

/* A pool thread starts the next watcher; on failure the role is free again
 * (the next take or submit appoints one). */
static void start_watcher(crew_executor_t *ex)
{
    if (spawn_thread(ex) == 0)
        return;
    pthread_mutex_lock(&ex->lock);
    ex->alive--;
    ex->watcher_starting = false;
    check_drained(ex);
    pthread_mutex_unlock(&ex->lock);
}

static void pool_loop(crew_executor_t *ex, pool_thread_t *pt, bool watch)
{
    /* Left over from the previous job, done outside the lock. */
    crew_task_t *wake = NULL;
    bool discard = false;
    void *r = NULL, *arg = NULL;
    crew_discard_fn_t discard_fn = NULL;

    pthread_mutex_lock(&ex->lock);
    bool serve = !watch || idle_wait(ex, pt, true);
    while (serve) {
        bool got = take_job(ex, pt);
        if (!got && !wake && !discard) {
            serve = idle_wait(ex, pt, false);
            continue;
        }
        /* Jobs still wait behind ours: someone must watch them. */
        pool_thread_t *sleeper = NULL;
        bool start = got && ex->queued && ensure_watcher(ex, &sleeper) == START_WATCHER;
        pthread_mutex_unlock(&ex->lock);
        wake_sleeper(sleeper);
        if (start)
            start_watcher(ex);
        if (wake)
            crew__sched_wake(wake);
        if (discard)
            discard_fn(r, arg);
        wake = NULL;
        discard = false;
        if (got) {
            arg = pt->arg;
            discard_fn = pt->discard;
            r = pt->fn(arg);
        }
        pthread_mutex_lock(&ex->lock);
        if (got)
            wake = finish_job(ex, pt, r, &discard);
    }
    ex->alive--;
    check_drained(ex);
    pthread_mutex_unlock(&ex->lock);
}

static void *pool_main(void *arg)
{
    crew_executor_t *ex = arg;
    pool_thread_t pt = { .job = NULL, .tid = (pid_t)syscall(SYS_gettid) };
    pt.has_clock = pthread_getcpuclockid(pthread_self(), &pt.cpu_clock) == 0;
    atomic_init(&pt.futex, PT_AWAKE);
    pool_self = ex;
    pthread_mutex_lock(&ex->lock);
    unsigned n = ++ex->started;
    /* Whichever started thread comes first takes a pending watcher role:
     * the threads are alike. */
    bool watch = ex->watcher_starting;
    ex->watcher_starting = false;
    char name[16];
    snprintf(name, sizeof name, "%s%u", ex->name, n);
    pthread_mutex_unlock(&ex->lock);
    pthread_setname_np(pthread_self(), name);
    pool_loop(ex, &pt, watch);
    return NULL;
}

/* Start a detached pool thread with every asynchronous signal blocked (as
 * the workers: signals go to threads the application controls). */
static int spawn_thread(crew_executor_t *ex)
{
    pthread_attr_t attr;
    sigset_t all, old;
    if (pthread_attr_init(&attr))
        return -EAGAIN;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all);
    static const int sync_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT };
    for (size_t i = 0; i < sizeof sync_signals / sizeof sync_signals[0]; i++)
        sigdelset(&all, sync_signals[i]);
    pthread_t th;
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&th, &attr, pool_main, ex);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc ? -EAGAIN : 0;
}

static int default_executor(crew_rt_t *rt, crew_executor_t **out)
{
    /* Acquire: pairs with the release of the CAS below, so the executor's
     * fields are initialised when we see the pointer. */
    crew_executor_t *ex = atomic_load_explicit(&rt->executor, memory_order_acquire);
    if (!ex) {
        crew_executor_opts_t o = CREW_EXECUTOR_OPTS_INIT;
        o.name = "crew-blk";
        int rc = crew_executor_create(&o, &ex);
        if (rc)
            return rc;
        crew_executor_t *seen = NULL;
        /* acq_rel: release publishes ours; acquire (also on failure) reads
         * the winner's. The loser has no thread yet: destroying it is cheap. */
        if (!atomic_compare_exchange_strong_explicit(&rt->executor, &seen, ex,
                                                     memory_order_acq_rel, memory_order_acquire)) {
            crew_executor_destroy(ex);
            ex = seen;
        }
    }
    *out = ex;
    return 0;
}

/* Lock held. Wait until the caller may queue a job (protocol 6): returns 0
 * with a slot that is the caller's until it drops the lock, or an error. */
static int wait_for_room(crew_executor_t *ex)
{
    for (;;) {
        if (!ex->space.head && ex->queued + ex->reserved < ex->cap)
            return 0;
        space_waiter_t sw = { .linked = true, .granted = false };
        int rc = crew__waiter_prepare(&sw.waiter);
        if (rc)
            return rc;
        crew__list_push_back(&ex->space, &sw.link);
        pthread_mutex_unlock(&ex->lock);
        int cause = crew__waiter_wait(&sw.waiter);
        pthread_mutex_lock(&ex->lock);
        if (sw.granted) {
            ex->reserved--;
            return 0;
        }
        if (sw.linked)
            crew__list_remove(&ex->space, &sw.link);
        if (ex->stopping)
            return -ESHUTDOWN;
        rc = sw.waiter.task ? crew__wake_status(sw.waiter.task, cause) : 0;
        if (rc)
            return rc;
    }
}

/* Wait for a queued job (protocol 4). Returns 0 when job->result is the
 * function's result, or why the caller stopped waiting. */
static int wait_job(crew_executor_t *ex, job_t *job, unsigned flags)
{
    crew_task_t *self = job->waiter.task;
    bool shielded = false;
    int rc;
    for (;;) {
        int cause = crew__waiter_wait(&job->waiter);
        if (cause == CREW_WAKE_READY) {
            rc = 0; /* The pool thread uncounted us. */
            break;
        }
        if (cause == CREW_WAKE_CLOSED) {
            rc = -ESHUTDOWN; /* The destroyer removed the job and uncounted us. */
            break;
        }
        pthread_mutex_lock(&ex->lock);
        switch (job->state) {
        case JOB_DONE:
            rc = 0;
            break;
        case JOB_QUEUED:
            crew__list_remove(&ex->queue, &job->link);
            ex->queued--;
            ex->cancelled++;
            grant_slots(ex);
            rc = crew__wake_status(self, cause);
            break;
        case JOB_RUNNING:
            if (flags & CREW_EXEC_FINISH) {
                /* fn uses the caller's memory: wait for it, shielded. The
                 * re-armed waiter gets a new seq, which the pool thread
                 * reads under the lock when it finishes. */
                if (!shielded)
                    self->shield++;
                shielded = true;
                crew__waiter_prepare(&job->waiter);
                pthread_mutex_unlock(&ex->lock);
                continue;
            }
            job->runner->job = NULL;
            rc = crew__wake_status(self, cause);
            break;
        default: /* JOB_REMOVED by the destroyer, whose wake lost to ours. */
            rc = crew__wake_status(self, cause);
            break;
        }
        user_put(ex);
        pthread_mutex_unlock(&ex->lock);
        break;
    }
    if (shielded)
        self->shield--;
    return rc;
}

int crew__executor_call(crew_executor_t *ex, crew_fn_t fn, void *arg, crew_discard_fn_t discard,
                        unsigned flags, void **result)
{
    if (!fn)
        return -EINVAL;
    if (!ex) {
        crew_task_t *self = crew__task_self();
        if (!self)
            return -EPERM;
        int rc = default_executor(self->rt, &ex);
        if (rc)
            return rc;
    }
    job_t job = { .fn = fn, .arg = arg, .discard = discard, .state = JOB_QUEUED };
    pthread_mutex_lock(&ex->lock);
    if (ex->stopping) {
        pthread_mutex_unlock(&ex->lock);
        return -ESHUTDOWN;
    }
    ex->users++;
    int rc = wait_for_room(ex);
    if (!rc && ex->stopping)
        rc = -ESHUTDOWN;
    if (!rc)
        rc = crew__waiter_prepare(&job.waiter);
    if (rc) {
        grant_slots(ex); /* The slot we may hold goes to the next waiter. */
        user_put(ex);
        pthread_mutex_unlock(&ex->lock);
        return rc;
    }
    crew__list_push_back(&ex->queue, &job.link);
    ex->queued++;
    pool_thread_t *sleeper;
    int start = dispatch(ex, &sleeper);
    pthread_mutex_unlock(&ex->lock);
    wake_sleeper(sleeper);
    if (start != START_NONE && (rc = spawn_thread(ex)) != 0) {
        pthread_mutex_lock(&ex->lock);
        ex->alive--;
        if (start == START_WATCHER)
            ex->watcher_starting = false;
        /* Nobody will run the job: fail it rather than hang. */
        bool orphan = ex->alive == 0 && job.state == JOB_QUEUED;
        if (orphan) {
            crew__list_remove(&ex->queue, &job.link);
            ex->queued--;
            ex->cancelled++;
            grant_slots(ex);
            user_put(ex);
        }
        check_drained(ex);
        pthread_mutex_unlock(&ex->lock);
        if (orphan)
            return rc;
    }
    rc = wait_job(ex, &job, flags);
    if (!rc && result)
        *result = job.result;
    return rc;
}

int crew_run_in_executor_ex(crew_executor_t *ex, crew_fn_t fn, void *arg, crew_discard_fn_t discard,
                            void **result)
{
    return crew__executor_call(ex, fn, arg, discard, 0, result);
}

int crew_run_in_executor(crew_executor_t *ex, crew_fn_t fn, void *arg, void **result)
{
    return crew__executor_call(ex, fn, arg, NULL, 0, result);
}

int crew_to_thread(crew_fn_t fn, void *arg, void **result)
{
    return crew__executor_call(NULL, fn, arg, NULL, 0, result);
}

int crew_executor_create(const crew_executor_opts_t *o, crew_executor_t **out)
{
    if (!out)
        return -EINVAL;
    crew_executor_opts_t d = CREW_EXECUTOR_OPTS_INIT;
    if (!o)
        o = &d;
    if (o->size != sizeof *o || o->max_threads > CREW_EXECUTOR_MAX_THREADS || o->keep_alive_ns < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++)
        if (o->reserved[i])
            return -EINVAL;
    const char *name = o->name && o->name[0] ? o->name : "crew-exec";
    size_t len = strlen(name);
    if (len >= CREW_EXECUTOR_NAME_MAX)
        return -EINVAL;
    crew_executor_t *ex = crew__zalloc(sizeof *ex, CREW_CACHELINE);
    if (!ex)
        return -ENOMEM;
    pthread_mutex_init(&ex->lock, NULL);
    pthread_cond_init(&ex->drained, NULL);
    memcpy(ex->name, name, len + 1);
    ex->max_threads = o->max_threads ? o->max_threads : CREW_EXECUTOR_DEFAULT_THREADS;
    ex->cap = o->queue_capacity ? o->queue_capacity : CREW_EXECUTOR_DEFAULT_QUEUE;
    ex->keep_alive = o->keep_alive_ns ? o->keep_alive_ns : CREW_EXECUTOR_DEFAULT_KEEP_ALIVE;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ex->eager = cpus < 1 ? 1 : cpus > (long)ex->max_threads ? ex->max_threads : (unsigned)cpus;
    ex->progress = crew_now();
    ex->force_ns = FORCE_NS;
    *out = ex;
    return 0;
}

int crew_executor_destroy(crew_executor_t *ex)
{
    if (!ex)
        return -EINVAL;
    if (pool_self == ex)
        return -EBUSY;
    pthread_mutex_lock(&ex->lock);
    if (ex->stopping) {
        pthread_mutex_unlock(&ex->lock);
        return -EBUSY;
    }
    ex->stopping = true;
    crew__link_t *e;
    while ((e = crew__list_pop_front(&ex->queue))) {
        job_t *j = CREW_CONTAINER_OF(e, job_t, link);
        ex->queued--;
        ex->cancelled++;
        j->state = JOB_REMOVED;
        if (crew__waiter_wake(&j->waiter, CREW_WAKE_CLOSED))
            ex->users--;
    }
    while ((e = crew__list_pop_front(&ex->space))) {
        space_waiter_t *sw = CREW_CONTAINER_OF(e, space_waiter_t, link);
        sw->linked = false;
        crew__waiter_wake(&sw->waiter, CREW_WAKE_CLOSED);
    }
    pool_thread_t *sleeper;
    while (notify_idle(ex, &sleeper))
        wake_sleeper(sleeper);
    while (ex->alive || ex->users)
        pthread_cond_wait(&ex->drained, &ex->lock);
    pthread_mutex_unlock(&ex->lock);
    pthread_cond_destroy(&ex->drained);
    pthread_mutex_destroy(&ex->lock);
    crew__free(ex, sizeof *ex, CREW_CACHELINE);
    return 0;
}

int crew_rt_executor(crew_rt_t *rt, crew_executor_t **out)
{
    if (!rt || !out)
        return -EINVAL;
    crew_task_t *self = crew__task_self();
    /* After shutdown only the runtime's own tasks may still create it:
     * crew_rt_destroy stops it once they have all finished. */
    if (atomic_load_explicit(&rt->shutdown, memory_order_acquire) &&
        !atomic_load_explicit(&rt->executor, memory_order_acquire) && (!self || self->rt != rt))
        return -ESHUTDOWN;
    return default_executor(rt, out);
}

int crew_executor_metrics(crew_executor_t *ex, crew_executor_metrics_t *out)
{
    if (!ex || !out)
        return -EINVAL;
    pthread_mutex_lock(&ex->lock);
    *out = (crew_executor_metrics_t){
        .threads_alive = ex->alive,
        .threads_idle = ex->nidle,
        .threads_started = ex->started,
        .jobs_queued = ex->queued,
        .jobs_running = ex->running,
        .jobs_completed = ex->completed,
        .jobs_cancelled = ex->cancelled,
        .jobs_discarded = ex->discarded,
        .stalls_blocked = ex->stalls_blocked,
        .stalls_forced = ex->stalls_forced,
    };
    pthread_mutex_unlock(&ex->lock);
    return 0;
}

void crew__executor_rt_fini(crew_rt_t *rt)
{
    /* Acquire: pairs with the creator's release CAS. */
    crew_executor_t *ex = atomic_load_explicit(&rt->executor, memory_order_acquire);
    if (ex)
        crew_executor_destroy(ex);
}
