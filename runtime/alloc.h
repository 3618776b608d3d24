/* crew's allocation wrapper: jemalloc's non-standard API when built with it,
 * libc otherwise (sanitizer builds, or CREW_WITH_JEMALLOC=OFF).
 *
 * mallocx/sdallocx never replace the application's malloc when crew is a
 * shared library, and sized deallocation skips jemalloc's size lookup. Memory
 * from here is never handed to users to free(). */
#ifndef CREW_RUNTIME_ALLOC_H
#define CREW_RUNTIME_ALLOC_H

#include <stddef.h>

/* Allocate size bytes aligned to align (a power of two, at most 4096). NULL on failure. */
void *crew__alloc(size_t size, size_t align);
/* Zeroed variant. */
void *crew__zalloc(size_t size, size_t align);
/* Free p, which crew__alloc/crew__zalloc returned for the same size and align. NULL is ignored. */
void crew__free(void *p, size_t size, size_t align);

#endif
