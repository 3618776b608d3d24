/* Allocation wrapper; see alloc.h. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#if defined(CREW_WITH_JEMALLOC)
#include <jemalloc/jemalloc.h>

void *crew__alloc(size_t size, size_t align)
{
    return mallocx(size, MALLOCX_ALIGN(align));
}

void *crew__zalloc(size_t size, size_t align)
{
    return mallocx(size, MALLOCX_ALIGN(align) | MALLOCX_ZERO);
}

void crew__free(void *p, size_t size, size_t align)
{
    if (p)
        sdallocx(p, size, MALLOCX_ALIGN(align));
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
