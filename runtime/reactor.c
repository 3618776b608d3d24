/* The reactor thread (see reactor.h). */
#include "reactor.h"

#include "alloc.h"
#include "scheduler.h"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <crew/time.h>

/* The longest the libevent timer is armed for at once: a far deadline (a
 * clamped "forever") is re-armed hourly instead of overflowing anything. */
#define CREW_REACTOR_MAX_ARM_NS (3600 * CREW_S)

/* Arm the libevent timer for crew_now() time at (-1: disarm). */
static void rearm(crew__reactor_t *r, int64_t at)
{
    if (at < 0) {
        evtimer_del(r->timer_ev);
        return;
    }
    int64_t delta = at - crew_now();
    if (delta < 0)
        delta = 0;
    if (delta > CREW_REACTOR_MAX_ARM_NS)
        delta = CREW_REACTOR_MAX_ARM_NS;
    struct timeval tv = { .tv_sec = (time_t)(delta / CREW_S),
                          .tv_usec = (suseconds_t)((delta % CREW_S) / CREW_US) };
    evtimer_add(r->timer_ev, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    crew__reactor_t *r = arg;
    rearm(r, crew__timer_fire(r, crew_now()));
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    crew__reactor_t *r = arg;
    uint64_t v;
    while (read(r->kick_fd, &v, sizeof v) > 0)
        ;
    if (atomic_load_explicit(&r->stopping, memory_order_acquire)) {
        event_base_loopbreak(r->base);
        return;
    }
    /* A signal handler or crew_signal_add may have kicked. */
    crew__signal_dispatch(r->rt);
    /* Something changed the heap's earliest deadline: fire what is due and
     * re-arm for the rest. */
    rearm(r, crew__timer_fire(r, crew_now()));
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    crew__reactor_t *r = arg;
    crew__fdtab_poll(&r->fds, r->rt);
}

static void *reactor_main(void *arg)
{
    crew__reactor_t *r = arg;
    pthread_setname_np(pthread_self(), "crew-reactor");
    crew__signal_reactor_start(r->rt);
    event_base_loop(r->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int crew__reactor_start(crew__reactor_t *r)
{
    /* The timer heap was set up before the workers (crew__timer_init). */
    int rc = crew__fdtab_init(&r->fds);
    if (rc)
        return rc;
    r->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->kick_fd < 0) {
        rc = -errno;
        goto fail_fds;
    }
    /* Precise timers: libevent uses a timerfd with epoll, so a timer fires
     * within microseconds of its deadline instead of epoll's milliseconds. */
    struct event_config *cfg = event_config_new();
    if (!cfg) {
        rc = -ENOMEM;
        goto fail_fd;
    }
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER | EVENT_BASE_FLAG_NOLOCK);
    r->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!r->base) {
        rc = -ENOMEM;
        goto fail_fd;
    }
    r->kick_ev = event_new(r->base, r->kick_fd, EV_READ | EV_PERSIST, on_kick, r);
    r->timer_ev = evtimer_new(r->base, on_timer, r);
    /* Level-triggered: on_io drains the set in bounded batches, and libevent
     * calls it again while events remain. */
    r->io_ev = event_new(r->base, r->fds.epfd, EV_READ | EV_PERSIST, on_io, r);
    if (!r->kick_ev || !r->timer_ev || !r->io_ev || event_add(r->kick_ev, NULL) ||
        event_add(r->io_ev, NULL)) {
        rc = -ENOMEM;
        goto fail_events;
    }
    rc = pthread_create(&r->thread, NULL, reactor_main, r);
    if (rc) {
        rc = -rc;
        goto fail_events;
    }
    r->running = true;
    return 0;

fail_events:
    if (r->kick_ev)
        event_free(r->kick_ev);
    if (r->timer_ev)
        event_free(r->timer_ev);
    if (r->io_ev)
        event_free(r->io_ev);
    event_base_free(r->base);
fail_fd:
    close(r->kick_fd);
fail_fds:
    crew__fdtab_destroy(&r->fds);
    return rc;
}

uint64_t crew__reactor_cpu_ns(crew__reactor_t *r)
{
    clockid_t cid;
    struct timespec ts;
    if (!r->running || pthread_getcpuclockid(r->thread, &cid) || clock_gettime(cid, &ts))
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void crew__reactor_kick(crew__reactor_t *r)
{
    uint64_t one = 1;
    /* EAGAIN only when the counter is saturated: the reactor has a kick
     * pending anyway. */
    (void)!write(r->kick_fd, &one, sizeof one);
}

void crew__reactor_stop(crew__reactor_t *r)
{
    if (!r->running)
        return;
    /* Release: pairs with on_kick's acquire. */
    atomic_store_explicit(&r->stopping, true, memory_order_release);
    crew__reactor_kick(r);
    pthread_join(r->thread, NULL);
    event_free(r->kick_ev);
    event_free(r->timer_ev);
    event_free(r->io_ev);
    event_base_free(r->base);
    close(r->kick_fd);
    crew__fdtab_destroy(&r->fds);
    r->running = false;
}
