/* Linux futex wrappers. The futex word is only a place to sleep: every
 * decision is made with C11 atomics on the same word, so a spurious or stale
 * wake is harmless and sanitizers see the real synchronisation. */
#ifndef CREW_RUNTIME_FUTEX_H
#define CREW_RUNTIME_FUTEX_H

#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleep while *addr == val (returns at once if it differs; may return spuriously). */
static inline void crew__futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

/* As crew__futex_wait, for at most ns nanoseconds. */
static inline void crew__futex_wait_ns(_Atomic uint32_t *addr, uint32_t val, int64_t ns)
{
    struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

/* Wake up to n sleepers on addr. */
static inline void crew__futex_wake(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

#endif
