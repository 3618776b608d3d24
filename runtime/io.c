/* fd readiness: crew_fd_wait / crew_fd_close / crew_fd_forget and the
 * reactor's delivery of epoll events (see io.h and include/crew/io.h).
 *
 * A slot's lock orders the three parties: the waiting task (checks the
 * remembered edge, else links its record), the reactor (wakes the linked
 * records of the event's directions, else remembers the edge) and the closer
 * (bumps the generation and wakes every record with CLOSED). Each holds it
 * for a few instructions, and no one takes two slot locks at once. The only
 * syscall under it is the epoll_ctl that registers an fd, once per fd: with
 * the lock held, a second waiter cannot believe the fd registered before the
 * registration has succeeded or failed. */
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <crew/io.h>

#include "alloc.h"
#include "io.h"
#include "park.h"
#include "scheduler.h"

/* A waiting task's record, on its stack. */
typedef struct crew__fd_wait {
    crew__waiter_t w;
    crew__link_t link;
    unsigned events;  /* Directions waited for. */
    unsigned got;     /* Directions delivered by the reactor's winning wake. */
    bool linked;      /* Under the slot's lock. */
} crew__fd_wait_t;

/* The most fds a table covers, whatever the rlimit says (16 M fds: a
 * 128 KiB chunk array). */
#define CREW_FD_MAX (1u << 24)
/* Epoll events fetched per epoll_wait. */
#define CREW_FD_BATCH 256

/* Every live table (all runtimes of the process): a plain thread, or a task
 * while several runtimes exist, does not know which tables hold an fd it
 * closes, so it unregisters it from each. Only this rare path takes the
 * mutex; a task of the only runtime goes straight to its own table. */
static pthread_mutex_t tables_mu = PTHREAD_MUTEX_INITIALIZER;
static crew__list_t tables;      /* Under tables_mu. */
static _Atomic unsigned ntables; /* Written under tables_mu. */

/* Add t to the list of tables (add) or take it out. */
static void tables_update(crew__fdtab_t *t, bool add)
{
    pthread_mutex_lock(&tables_mu);
    if (add)
        crew__list_push_back(&tables, &t->link);
    else
        crew__list_remove(&tables, &t->link);
    unsigned n = atomic_load_explicit(&ntables, memory_order_relaxed);
    atomic_store_explicit(&ntables, add ? n + 1 : n - 1, memory_order_relaxed);
    pthread_mutex_unlock(&tables_mu);
}

int crew__fdtab_init(crew__fdtab_t *t)
{
    struct rlimit rl;
    rlim_t max = CREW_FD_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < max)
        max = rl.rlim_max;
    if (max < CREW_FD_CHUNK)
        max = CREW_FD_CHUNK;
    t->nchunks = (size_t)((max + CREW_FD_CHUNK - 1) / CREW_FD_CHUNK);
    t->chunks = crew__zalloc(t->nchunks * sizeof *t->chunks, _Alignof(crew__fd_t *));
    if (!t->chunks)
        return -ENOMEM;
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (t->epfd < 0) {
        int rc = -errno;
        crew__free(t->chunks, t->nchunks * sizeof *t->chunks, _Alignof(crew__fd_t *));
        return rc;
    }
    atomic_init(&t->polls, 0);
    atomic_init(&t->events, 0);
    tables_update(t, true);
    return 0;
}

void crew__fdtab_destroy(crew__fdtab_t *t)
{
    tables_update(t, false);
    for (size_t i = 0; i < t->nchunks; i++) {
        crew__fd_t *c = atomic_load_explicit(&t->chunks[i], memory_order_relaxed);
        if (c)
            crew__free(c, CREW_FD_CHUNK * sizeof *c, CREW_CACHELINE);
    }
    crew__free(t->chunks, t->nchunks * sizeof *t->chunks, _Alignof(crew__fd_t *));
    close(t->epfd);
}

/* fd's slot; with create, its chunk is allocated on first use. NULL when fd
 * is beyond the table, or (without create, or out of memory) not there. */
static crew__fd_t *slot_of(crew__fdtab_t *t, int fd, bool create, int *err)
{
    size_t ci = (size_t)fd / CREW_FD_CHUNK;
    if (ci >= t->nchunks) {
        *err = -EBADF;
        return NULL;
    }
    /* Acquire: pairs with the release CAS that published the zeroed chunk. */
    crew__fd_t *c = atomic_load_explicit(&t->chunks[ci], memory_order_acquire);
    if (!c && create) {
        crew__fd_t *fresh = crew__zalloc(CREW_FD_CHUNK * sizeof *fresh, CREW_CACHELINE);
        if (!fresh) {
            *err = -ENOMEM;
            return NULL;
        }
        /* Two first users race to install a chunk: the loser frees its own
         * and uses the winner's (acquire on failure, as above). */
        if (atomic_compare_exchange_strong_explicit(&t->chunks[ci], &c, fresh,
                                                    memory_order_acq_rel, memory_order_acquire))
            c = fresh;
        else
            crew__free(fresh, CREW_FD_CHUNK * sizeof *fresh, CREW_CACHELINE);
    }
    *err = -EBADF;
    return c ? &c[(size_t)fd % CREW_FD_CHUNK] : NULL;
}

static void link_wait(crew__fd_t *s, crew__fd_wait_t *fw)
{
    crew__list_push_back(&s->waiters, &fw->link);
    fw->linked = true;
}

static void unlink_wait(crew__fd_t *s, crew__fd_wait_t *fw)
{
    crew__list_remove(&s->waiters, &fw->link);
    fw->linked = false;
}

#define FD_WAIT_OF(l) CREW_CONTAINER_OF(l, crew__fd_wait_t, link)

/* A plain thread waits in poll(2): it has no reactor. */
static int thread_wait(int fd, unsigned events)
{
    struct pollfd p = { .fd = fd, .events = (short)(((events & CREW_FD_READ) ? POLLIN : 0) |
                                                   ((events & CREW_FD_WRITE) ? POLLOUT : 0)) };
    for (;;) {
        int n = poll(&p, 1, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (p.revents & POLLNVAL)
            return -EBADF;
        unsigned got = 0;
        if (p.revents & (POLLIN | POLLHUP | POLLERR))
            got |= CREW_FD_READ;
        if (p.revents & (POLLOUT | POLLERR))
            got |= CREW_FD_WRITE;
        if (got & events)
            return (int)(got & events);
    }
}

/* Register fd once (slot lock held). */
static int ensure_registered(crew__fdtab_t *t, crew__fd_t *s, int fd)
{
    if (s->registered)
        return 0;
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = ((uint64_t)s->gen << 32) | (uint32_t)fd,
    };
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        /* EEXIST: a registration made before the fd was closed with plain
         * close(2) while a dup kept it alive; take it over. */
        if (errno != EEXIST || epoll_ctl(t->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
            return errno == EBADF ? -EBADF : errno == ENOMEM || errno == ENOSPC ? -ENOMEM : -EPERM;
    }
    s->registered = 1;
    return 0;
}

int crew_fd_wait(int fd, unsigned events)
{
    if (fd < 0)
        return -EBADF;
    if (!events || (events & ~(CREW_FD_READ | CREW_FD_WRITE)))
        return -EINVAL;
    crew_task_t *self = crew__task_self();
    if (!self)
        return thread_wait(fd, events);
    crew__fdtab_t *t = &self->rt->reactor.fds;
    int rc;
    crew__fd_t *s = slot_of(t, fd, true, &rc);
    if (!s)
        return rc;
    crew__fd_wait_t fw = { .events = events };
    rc = crew__waiter_prepare(&fw.w);
    if (rc)
        return rc;
    crew__spin_lock(&s->lock);
    rc = ensure_registered(t, s, fd);
    unsigned ready = s->ready & events;
    if (rc || ready) {
        /* Consume the remembered edge: the caller tries its syscall again. */
        s->ready &= (uint8_t)~ready;
        crew__spin_unlock(&s->lock);
        return rc ? rc : (int)ready;
    }
    link_wait(s, &fw);
    crew__spin_unlock(&s->lock);

    int cause = crew__waiter_wait(&fw.w);
    if (cause != CREW_WAKE_READY) {
        /* Woken by a cancel, a deadline or the closer (which unlinked us);
         * unlink if still linked (park.h rule 4). */
        crew__spin_lock(&s->lock);
        if (fw.linked)
            unlink_wait(s, &fw);
        crew__spin_unlock(&s->lock);
        if (cause == CREW_WAKE_CLOSED)
            return -EBADF;
        return crew__wake_status(self, cause);
    }
    return (int)fw.got;
}

/* Wake every waiter of s with CLOSED and forget the registration (lock held). */
static void drop_slot(crew__fd_t *s)
{
    s->gen++;
    s->registered = 0;
    s->ready = 0;
    crew__link_t *l;
    while ((l = crew__list_pop_front(&s->waiters)) != NULL) {
        crew__fd_wait_t *fw = FD_WAIT_OF(l);
        fw->linked = false;
        crew__waiter_wake(&fw->w, CREW_WAKE_CLOSED);
    }
}

/* Unregister fd from table t, waking its waiters with CLOSED. */
static void forget_in(crew__fdtab_t *t, int fd)
{
    int err;
    crew__fd_t *s = slot_of(t, fd, false, &err);
    if (!s)
        return;
    crew__spin_lock(&s->lock);
    bool was = s->registered;
    if (was || s->waiters.head)
        drop_slot(s);
    crew__spin_unlock(&s->lock);
    /* Outside the lock: the generation already makes the reactor drop any
     * event of the old registration. */
    if (was)
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* Unregister fd from every runtime that may hold it. */
static void forget(int fd)
{
    crew_task_t *self = crew__task_self();
    /* Relaxed: a runtime created concurrently by another thread cannot have
     * registered an fd this thread is closing (a wait on it would race the
     * close, as it does with close(2) itself). */
    if (self && atomic_load_explicit(&ntables, memory_order_relaxed) == 1) {
        forget_in(&self->rt->reactor.fds, fd);
        return;
    }
    /* The mutex keeps every listed table alive: a destroy unlinks its table
     * under it before freeing it. */
    pthread_mutex_lock(&tables_mu);
    for (crew__link_t *l = tables.head; l; l = l->next)
        forget_in(CREW_CONTAINER_OF(l, crew__fdtab_t, link), fd);
    pthread_mutex_unlock(&tables_mu);
}

int crew_fd_forget(int fd)
{
    if (fd < 0)
        return -EBADF;
    forget(fd);
    return 0;
}

int crew_fd_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    forget(fd);
    /* Linux releases the fd even when close(2) fails (EINTR included), so
     * it is never retried. */
    return close(fd) < 0 ? -errno : 0;
}

/* Deliver one epoll event into its slot (reactor thread). */
static void deliver(crew__fdtab_t *t, const struct epoll_event *ev, crew__wake_batch_t *b)
{
    int fd = (int)(uint32_t)ev->data.u64;
    uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
    int err;
    crew__fd_t *s = slot_of(t, fd, false, &err);
    if (!s)
        return;
    unsigned bits = 0;
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        bits |= CREW_FD_READ;
    if (ev->events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        bits |= CREW_FD_WRITE;
    crew__spin_lock(&s->lock);
    if (s->gen != gen || !s->registered) {
        crew__spin_unlock(&s->lock);
        return; /* A stale event of a closed fd whose number was reused. */
    }
    unsigned taken = 0;
    for (crew__link_t *l = s->waiters.head, *nx; l; l = nx) {
        nx = l->next;
        crew__fd_wait_t *fw = FD_WAIT_OF(l);
        unsigned mine = fw->events & bits;
        if (!mine)
            continue;
        unlink_wait(s, fw);
        fw->got = mine;
        /* Only a winning wake consumes the edge; a record whose task already
         * woke for another reason leaves it for the next wait. */
        if (crew__wake_batch_claim(b, &fw->w, CREW_WAKE_READY))
            taken |= mine;
    }
    s->ready |= (uint8_t)(bits & ~taken);
    crew__spin_unlock(&s->lock);
}

void crew__fdtab_poll(crew__fdtab_t *t, crew_rt_t *rt)
{
    struct epoll_event evs[CREW_FD_BATCH];
    crew__wake_batch_t b = { 0 };
    int n;
    do {
        n = epoll_wait(t->epfd, evs, CREW_FD_BATCH, 0);
        for (int i = 0; i < n; i++)
            deliver(t, &evs[i], &b);
        if (n > 0)
            atomic_store_explicit(&t->events,
                                  atomic_load_explicit(&t->events, memory_order_relaxed) +
                                      (uint64_t)n,
                                  memory_order_relaxed);
    } while (n == CREW_FD_BATCH);
    atomic_store_explicit(&t->polls, atomic_load_explicit(&t->polls, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* One hand-over for everything this round woke. */
    crew__wake_batch_flush(&b, rt, true);
}
