/* Allocation wrapper; see alloc.h. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#if defined(CREW_WITH_JEMALLOC)
#include <jemalloc/jemalloc.h>

/* MALLOCX_ALIGN calls libc's ffs() through the PLT under -std=c11 (gcc does
 * not treat ffs as a builtin there): about 1 % of a spawn-heavy profile. */
#define CREW_MALLOCX_ALIGN(a) MALLOCX_LG_ALIGN(__builtin_ctzl(a))

void *crew__alloc(size_t size, size_t align)
{
    return mallocx(size, CREW_MALLOCX_ALIGN(align));
}

void *crew__zalloc(size_t size, size_t align)
{
    return mallocx(size, CREW_MALLOCX_ALIGN(align) | MALLOCX_ZERO);
}

void crew__free(void *p, size_t size, size_t align)
{
    if (p)
        sdallocx(p, size, CREW_MALLOCX_ALIGN(align));
}

#else

void *crew__alloc(size_t size, size_t align)
{
    void *p;
    if (align < sizeof(void *))
        align = sizeof(void *);
    return posix_memalign(&p, align, size) ? NULL : p;
}

void *crew__zalloc(size_t size, size_t align)
{
    void *p = crew__alloc(size, align);
    if (p)
        memset(p, 0, size);
    return p;
}

void crew__free(void *p, size_t size, size_t align)
{
    (void)size;
    (void)align;
    free(p);
}

#endif
