/* Fibers with sanitizer annotations (see fiber.h). */
#include "fiber.h"

#include <pthread.h>

#if defined(CREW_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(CREW_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

void crew__fiber_init(crew__fiber_t *f, void *lo, size_t size, void (*entry)(void *))
{
    crew__ctx_make(&f->ctx, (char *)lo + size, entry);
#if defined(CREW_ASAN)
    f->stack_lo = lo;
    f->stack_size = size;
    f->asan_fake_stack = NULL;
#endif
#if defined(CREW_TSAN)
    f->tsan_fiber = __tsan_create_fiber(0);
#endif
}

void crew__fiber_init_thread(crew__fiber_t *f)
{
    pthread_attr_t attr;
    void *lo = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &lo, &size);
        pthread_attr_destroy(&attr);
    }
    f->ctx.sp = NULL;
#if defined(CREW_ASAN)
    f->stack_lo = lo;
    f->stack_size = size;
    f->asan_fake_stack = NULL;
#else
    (void)lo;
    (void)size;
#endif
#if defined(CREW_TSAN)
    f->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void crew__fiber_destroy(crew__fiber_t *f)
{
#if defined(CREW_TSAN)
    __tsan_destroy_fiber(f->tsan_fiber);
    f->tsan_fiber = NULL;
#endif
    (void)f;
}

void *crew__fiber_switch(crew__fiber_t *from, crew__fiber_t *to, void *arg, bool leaving_for_good)
{
#if defined(CREW_ASAN)
    __sanitizer_start_switch_fiber(leaving_for_good ? NULL : &from->asan_fake_stack, to->stack_lo,
                                   to->stack_size);
#endif
#if defined(CREW_TSAN)
    /* Immediately before the switch, as TSan requires. Flag 0: the switch is a
     * synchronisation point, like handing a fiber between threads is. */
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    (void)leaving_for_good;
    void *ret = crew__ctx_switch(&from->ctx, &to->ctx, arg);
#if defined(CREW_ASAN)
    __sanitizer_finish_switch_fiber(from->asan_fake_stack, NULL, NULL);
#endif
    return ret;
}

void crew__fiber_entered(void)
{
#if defined(CREW_ASAN)
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}
