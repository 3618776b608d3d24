/* Task stacks (see stack.h).
 *
 * Guard pages. madvise(MADV_GUARD_INSTALL) (Linux >= 6.13) marks a page so
 * that any access faults, without splitting the mapping's VMA: a million
 * stacks stay a few thousand VMAs. mprotect(PROT_NONE) splits the VMA in
 * three, so each guard costs two VMAs and the default vm.max_map_count of
 * 65530 would cap a process near 32,000 stacks; crew uses it only on older
 * kernels and only within a budget of a quarter of max_map_count, shared by
 * every runtime of the process. Past the budget, stacks get a canary word at
 * their low end instead, checked whenever the task switches away and at exit:
 * it catches most overflows after the fact, not all (a frame can jump over
 * the canary). */
#include "stack.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "mutex.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* Every mapping the pool made, for crew__stack_pool_destroy. */
struct crew__stack_map {
    struct crew__stack_map *next;
    void *base;
    size_t len;
    size_t n;
    crew__stack_t stacks[]; /* One descriptor per stack of the mapping. */
};

/* Each mapping holds at least this much (or one stack), so a pool makes few
 * mappings and few VMAs. */
#define CREW_STACK_MAP_BYTES ((size_t)4 << 20)

static size_t page_size(void)
{
    static _Atomic size_t cached;
    size_t p = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!p) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&cached, p, memory_order_relaxed);
    }
    return p;
}

/* Process-wide count of mprotect guards against the VMA budget. */
static _Atomic long mprotect_guards;

static long mprotect_budget(void)
{
    static _Atomic long budget;
    long b = atomic_load_explicit(&budget, memory_order_relaxed);
    if (!b) {
        long max = 65530;
        FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
        if (f) {
            if (fscanf(f, "%ld", &max) != 1)
                max = 65530;
            fclose(f);
        }
        b = max / 4;
        atomic_store_explicit(&budget, b, memory_order_relaxed);
    }
    return b;
}

int crew__stack_class(size_t size)
{
    for (int c = 0; c < CREW_STACK_CLASSES; c++)
        if (size <= crew__stack_class_size(c))
            return c;
    return -1;
}

size_t crew__stack_class_size(int cls)
{
    return (size_t)1 << (CREW_STACK_CLASS_MIN_SHIFT + cls);
}

static crew_guard_mode_t probe_mode(void)
{
    const char *e = getenv("CREW_STACK_GUARD");
    if (e && !strcmp(e, "mprotect"))
        return CREW_GUARD_MPROTECT;
    if (e && !strcmp(e, "canary"))
        return CREW_GUARD_CANARY;
    /* Probe on a scratch page: EINVAL means the kernel predates the advice. */
    size_t pg = page_size();
    void *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return CREW_GUARD_MPROTECT;
    int ok = madvise(p, pg, MADV_GUARD_INSTALL) == 0;
    munmap(p, pg);
    return ok ? CREW_GUARD_MADVISE : CREW_GUARD_MPROTECT;
}

int crew__stack_pool_init(crew__stack_pool_t *p)
{
    memset(p, 0, sizeof *p);
    int rc = crew__mutex_init_short(&p->lock);
    if (rc)
        return -rc;
    p->mode = probe_mode();
    atomic_init(&p->last_mode, (int)p->mode);
    atomic_init(&p->canaries, false);
    return 0;
}

void crew__stack_pool_destroy(crew__stack_pool_t *p)
{
    struct crew__stack_map *m = p->maps;
    while (m) {
        struct crew__stack_map *n = m->next;
        munmap(m->base, m->len);
        crew__free(m, sizeof *m + m->n * sizeof m->stacks[0], _Alignof(struct crew__stack_map));
        m = n;
    }
    p->maps = NULL;
    pthread_mutex_destroy(&p->lock);
}

uint64_t crew__stack_mprotect_guards(void)
{
    long n = atomic_load_explicit(&mprotect_guards, memory_order_relaxed);
    long b = mprotect_budget();
    return (uint64_t)(n < b ? n : b);
}

static crew_guard_mode_t install_guard(crew__stack_pool_t *p, void *guard, size_t pg)
{
    if (p->mode == CREW_GUARD_MADVISE && madvise(guard, pg, MADV_GUARD_INSTALL) == 0)
        return CREW_GUARD_MADVISE;
    if (p->mode != CREW_GUARD_CANARY &&
        atomic_fetch_add_explicit(&mprotect_guards, 1, memory_order_relaxed) < mprotect_budget()) {
        if (mprotect(guard, pg, PROT_NONE) == 0)
            return CREW_GUARD_MPROTECT;
    }
    return CREW_GUARD_CANARY;
}

/* Push the list first..last (n stacks of class cls) onto the pool; its lock
 * held. */
static void pool_push(crew__stack_pool_t *p, int cls, crew__stack_t *first, crew__stack_t *last,
                      unsigned n)
{
    last->next = p->head[cls];
    p->head[cls] = first;
    p->count[cls] += n;
}

/* Map a new region of stacks of class cls, without the pool lock (an mmap
 * and a guard per stack: tens of microseconds that the other workers'
 * returns of stacks must not wait for). Puts all but one in the pool's list,
 * under the lock, and returns that one. */
static crew__stack_t *map_stacks(crew__stack_pool_t *p, int cls)
{
    size_t pg = page_size();
    size_t area = crew__stack_class_size(cls);
    size_t stride = area + pg;
    size_t n = CREW_STACK_MAP_BYTES / stride;
    if (n == 0)
        n = 1;
    size_t len = n * stride;
    size_t msize = sizeof(struct crew__stack_map) + n * sizeof(crew__stack_t);
    struct crew__stack_map *m = crew__alloc(msize, _Alignof(struct crew__stack_map));
    if (!m)
        return NULL;
    /* MAP_NORESERVE: a stack commits only the pages it touches, so the
     * virtual size of a million stacks is not charged against overcommit.
     * MAP_STACK: no transparent huge pages, which would commit 2 MiB at once. */
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) {
        crew__free(m, msize, _Alignof(struct crew__stack_map));
        return NULL;
    }
    m->base = base;
    m->len = len;
    m->n = n;

    crew_guard_mode_t mode = p->mode;
    for (size_t i = 0; i < n; i++) {
        char *guard = (char *)base + i * stride;
        mode = install_guard(p, guard, pg);
        crew__stack_t *s = &m->stacks[i];
        s->lo = guard + pg;
        s->size = area;
        s->cls = (uint8_t)cls;
        s->guard = (uint8_t)mode;
        s->next = i + 1 < n ? &m->stacks[i + 1] : NULL;
        if (mode == CREW_GUARD_CANARY) {
            *(uint64_t *)s->lo = CREW_STACK_CANARY;
            atomic_store_explicit(&p->canaries, true, memory_order_relaxed);
        }
    }
    pthread_mutex_lock(&p->lock);
    m->next = p->maps;
    p->maps = m;
    if (n > 1)
        pool_push(p, cls, &m->stacks[1], &m->stacks[n - 1], (unsigned)(n - 1));
    pthread_mutex_unlock(&p->lock);
    atomic_store_explicit(&p->last_mode, (int)mode, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->stacks_mapped, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_mapped, len, memory_order_relaxed);
    return &m->stacks[0];
}

crew__stack_t *crew__stack_get(crew__stack_pool_t *p, crew__stack_cache_t *c, int cls)
{
    crew__stack_t *s = c ? c->head[cls] : NULL;
    if (s) {
        c->head[cls] = s->next;
        c->count[cls]--;
        return s;
    }
    pthread_mutex_lock(&p->lock);
    s = p->head[cls];
    if (s) {
        /* Refill half a cache at once so the next gets skip the lock. */
        p->head[cls] = s->next;
        p->count[cls]--;
        while (c && c->count[cls] < CREW_STACK_CACHE_MAX / 2 && p->head[cls]) {
            crew__stack_t *x = p->head[cls];
            p->head[cls] = x->next;
            p->count[cls]--;
            x->next = c->head[cls];
            c->head[cls] = x;
            c->count[cls]++;
        }
        pthread_mutex_unlock(&p->lock);
        return s;
    }
    pthread_mutex_unlock(&p->lock);
    return map_stacks(p, cls);
}

void crew__stack_put(crew__stack_pool_t *p, crew__stack_cache_t *c, crew__stack_t *s)
{
    int cls = s->cls;
    if (!c) {
        s->next = NULL;
        pthread_mutex_lock(&p->lock);
        pool_push(p, cls, s, s, 1);
        pthread_mutex_unlock(&p->lock);
        return;
    }
    s->next = c->head[cls];
    c->head[cls] = s;
    if (++c->count[cls] <= CREW_STACK_CACHE_MAX)
        return;
    /* Full: the older half of the cache goes to the pool in one lock
     * section, as gets refill half a cache at once (a worker that only
     * finishes tasks would otherwise take the lock for every stack). The
     * newer half, warm in this core's cache, stays. */
    crew__stack_t *keep = c->head[cls];
    for (unsigned i = 1; i < CREW_STACK_CACHE_MAX / 2; i++)
        keep = keep->next;
    crew__stack_t *first = keep->next, *last = first;
    unsigned n = 1;
    for (; last->next; last = last->next)
        n++;
    keep->next = NULL;
    c->count[cls] -= n;
    pthread_mutex_lock(&p->lock);
    pool_push(p, cls, first, last, n);
    pthread_mutex_unlock(&p->lock);
}

void crew__stack_cache_flush(crew__stack_pool_t *p, crew__stack_cache_t *c)
{
    pthread_mutex_lock(&p->lock);
    for (int cls = 0; cls < CREW_STACK_CLASSES; cls++) {
        crew__stack_t *last = c->head[cls];
        if (!last)
            continue;
        while (last->next)
            last = last->next;
        pool_push(p, cls, c->head[cls], last, c->count[cls]);
        c->head[cls] = NULL;
        c->count[cls] = 0;
    }
    pthread_mutex_unlock(&p->lock);
}

bool crew__stack_is_guard_hit(const crew__stack_t *s, const void *addr)
{
    uintptr_t a = (uintptr_t)addr, lo = (uintptr_t)s->lo;
    return a < lo + (s->guard == CREW_GUARD_CANARY ? sizeof(uint64_t) : 0) && a >= lo - page_size();
}
