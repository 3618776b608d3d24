/* Helpers shared by the white-box queue stress tests (test_runq.c,
 * test_inject.c): a recorder for the first protocol violation any thread
 * sees, asserted later on the test's own thread. */
#ifndef CREW_TESTS_QUEUE_UTIL_H
#define CREW_TESTS_QUEUE_UTIL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "harness.h"

typedef struct fails {
    _Atomic unsigned n;
    char first[256];
} fails_t;

static void __attribute__((format(printf, 2, 3))) violation(fails_t *f, const char *fmt, ...)
{
    if (atomic_fetch_add(&f->n, 1) != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->first, sizeof f->first, fmt, ap);
    va_end(ap);
}

static void assert_no_fails(fails_t *f)
{
    unsigned n = atomic_load(&f->n);
    if (n)
        print_error("%u violation(s); first: %s\n", n, f->first);
    assert_int_equal(n, 0);
}

#endif
