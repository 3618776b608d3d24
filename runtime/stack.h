/* Task stacks: carved from large mappings, each with a guard page below it,
 * pooled per size class and reused, never unmapped before the runtime is
 * destroyed (munmap costs ~20 us once a second thread runs: TLB shootdown).
 *
 * A mapping holds n stacks, low to high addresses:
 *   [guard page][usable stack, 2^k bytes] [guard page][usable stack] ...
 * The descriptors live in an array beside the mapping's record, not on the
 * stacks: a stack's first touched page is then the one the task uses, and the
 * usable size is exactly the power of two asked for. */
#ifndef CREW_RUNTIME_STACK_H
#define CREW_RUNTIME_STACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Size classes: powers of two from 16 KiB (class 0) to 1 GiB. */
#define CREW_STACK_CLASS_MIN_SHIFT 14
#define CREW_STACK_CLASSES 17
/* Stacks a worker keeps per class before handing extras to the shared pool:
 * enough for bursts of short tasks without touching the pool's lock. */
#define CREW_STACK_CACHE_MAX 64

struct crew__stack {
    crew__stack_t *next;   /* Free-list link while pooled. */
    void *lo;              /* Lowest usable byte (just above the guard page). */
    size_t size;           /* Usable bytes from lo. */
    uint8_t cls;           /* Size class. */
    uint8_t guard;         /* crew_guard_mode_t of this stack. */
};

/* Per-worker cache (owner only, no atomics). */
typedef struct crew__stack_cache {
    crew__stack_t *head[CREW_STACK_CLASSES];
    unsigned count[CREW_STACK_CLASSES];
} crew__stack_cache_t;

/* Shared pool of a runtime. */
typedef struct crew__stack_pool {
    pthread_mutex_t lock;
    crew__stack_t *head[CREW_STACK_CLASSES]; /* Under lock. */
    unsigned count[CREW_STACK_CLASSES];      /* Under lock. */
    struct crew__stack_map *maps;            /* Under lock: every mapping, for destroy. */
    crew_guard_mode_t mode;                  /* Wanted mode (set at init). */
    _Atomic int last_mode;                   /* Mode of the most recently carved stack. */
    /* Set (relaxed, never cleared) once a canary stack is carved, before
     * it can reach a task: the pool's lock, or the carving worker running
     * it, orders it before any switch away from such a stack. */
    _Atomic bool canaries;
    _Atomic uint64_t stacks_mapped;
    _Atomic uint64_t bytes_mapped;
} crew__stack_pool_t;

/* Size class for a requested usable size (already validated), or -1. */
int crew__stack_class(size_t size);
/* Usable size of a class, as reported by crew_task_stack_size(). */
size_t crew__stack_class_size(int cls);

/* The guard mode comes from $CREW_STACK_GUARD (madvise, mprotect or canary;
 * for tests and old kernels) or, by default, the best the kernel offers. */
int crew__stack_pool_init(crew__stack_pool_t *p);
/* Unmap every mapping. No stack of the pool may be in use. */
void crew__stack_pool_destroy(crew__stack_pool_t *p);

/* Take a stack of class cls: the worker's cache first, then the pool, then a
 * new mapping. NULL when memory is exhausted. */
crew__stack_t *crew__stack_get(crew__stack_pool_t *p, crew__stack_cache_t *c, int cls);
/* Give a stack back (to the cache, or the pool when the cache is full). */
void crew__stack_put(crew__stack_pool_t *p, crew__stack_cache_t *c, crew__stack_t *s);
/* Move a worker's whole cache into the pool (worker exit). */
void crew__stack_cache_flush(crew__stack_pool_t *p, crew__stack_cache_t *c);


/* mprotect guards installed by the whole process (against the VMA budget). */
uint64_t crew__stack_mprotect_guards(void);

/* The usable bytes a task's context starts below: the stack's size less a
 * "colour" of 0-15 cache lines picked by hashing its address. Stacks sit
 * 2^k + one page apart, so their tops fall on only a few dozen L2 set
 * positions (L2 sets repeat every 128 KiB here); 2,000 ping-ponging tasks
 * kept evicting each other's top frames. Colours spread them over 16 times
 * as many sets: ping_pong with 1,000 pairs on one worker, +10-15 %. At most
 * 960 bytes, well inside the smallest class's 16 KiB. */
static inline size_t crew__stack_colored_size(const crew__stack_t *s)
{
    uint32_t h = (uint32_t)((uintptr_t)s->lo >> 12) * 0x9E3779B1u; /* Fibonacci hashing. */
    return s->size - (size_t)(h >> 28) * CREW_CACHELINE;
}

/* Canary mode: the word at the usable low end. p: the stack's pool, whose
 * flag spares the stack's record (a line of its own, on every switch) when
 * no stack has a canary. */
#define CREW_STACK_CANARY 0xC7E3D15EA5E5C0DEull
static inline bool crew__stack_canary_ok(crew__stack_pool_t *p, const crew__stack_t *s)
{
    return !atomic_load_explicit(&p->canaries, memory_order_relaxed) ||
           s->guard != CREW_GUARD_CANARY || *(const uint64_t *)s->lo == CREW_STACK_CANARY;
}

/* Is addr inside s's guard page (or the canary word in canary mode)? For the
 * overflow handler: async-signal-safe. */
bool crew__stack_is_guard_hit(const crew__stack_t *s, const void *addr);

#endif
