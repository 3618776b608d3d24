/* fd readiness (io.c): the per-runtime table of registered fds that the
 * reactor delivers epoll events into, and that tasks wait on.
 *
 * Each fd is added once, edge-triggered, for read and write, to an epoll set
 * of its own (not libevent's: workers call epoll_ctl on it directly, which the
 * kernel makes thread-safe, so registering needs no lock of the reactor's and
 * no round trip to its thread). libevent watches that epoll fd like any other
 * fd, and the reactor drains it in batches. */
#ifndef CREW_RUNTIME_IO_H
#define CREW_RUNTIME_IO_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"
#include "list.h"

/* Slots per chunk of the table. */
#define CREW_FD_CHUNK 1024

/* One fd's state. All fields under lock, except gen, which the reactor also
 * reads under lock; a slot is never freed before the runtime. */
typedef struct crew__fd {
    _Atomic uint32_t lock;
    /* Bumped by every crew_fd_close/crew_fd_forget: the registration's epoll
     * data carries the generation it was made in, so an event that was already
     * on its way when the fd was closed (and its number reused) is dropped. */
    uint32_t gen;
    uint8_t registered;
    uint8_t ready;             /* CREW_FD_* edges seen while no one waited. */
    crew__list_t waiters;      /* Waiting tasks' records (io.c), FIFO. */
} crew__fd_t;

typedef struct crew__fdtab {
    int epfd;
    size_t nchunks;                     /* Capacity: nchunks * CREW_FD_CHUNK fds. */
    _Atomic(crew__fd_t *) *chunks;      /* Allocated on first use, never moved. */
    /* Reactor-thread statistics (relaxed: read as a snapshot). */
    _Atomic uint64_t polls, events;
    /* In the list of every live table of the process, for a close from a
     * plain thread (io.c); under that list's mutex. */
    crew__link_t link;
} crew__fdtab_t;

int crew__fdtab_init(crew__fdtab_t *t);
/* Free the table; the fds themselves stay the application's. */
void crew__fdtab_destroy(crew__fdtab_t *t);
/* Reactor thread: deliver every pending epoll event (in batches of wakes). */
void crew__fdtab_poll(crew__fdtab_t *t, crew_rt_t *rt);

#endif
