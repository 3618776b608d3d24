/* Fibers: a context switch plus the sanitizer annotations that must surround
 * it. ASan must be told which stack it is about to run on (it tracks stack
 * bounds and fake stacks per thread), TSan which fiber's clock to use. Without
 * them both report nonsense for a stackful runtime. */
#ifndef CREW_RUNTIME_FIBER_H
#define CREW_RUNTIME_FIBER_H

#include <stdbool.h>

#include "internal.h"

/* Make f runnable: its first switch-in runs entry(arg-of-that-switch) on
 * [lo, lo + size). */
void crew__fiber_init(crew__fiber_t *f, void *lo, size_t size, void (*entry)(void *));

/* Describe the calling thread's own stack as a fiber (a worker's scheduler
 * context), so that tasks can switch back to it. */
void crew__fiber_init_thread(crew__fiber_t *f);

/* Release sanitizer state of a fiber that will never run again. Must be
 * called from another fiber. */
void crew__fiber_destroy(crew__fiber_t *f);

/* Switch from `from` (the running fiber) to `to`, passing arg; returns the
 * arg of the switch that resumes `from`. leaving_for_good tells ASan to drop
 * from's fake stack (the fiber is exiting). */
void *crew__fiber_switch(crew__fiber_t *from, crew__fiber_t *to, void *arg, bool leaving_for_good);

/* First call a fresh fiber's entry function makes (ASan bookkeeping). */
void crew__fiber_entered(void);

#endif
