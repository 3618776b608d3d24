/* A worker's local run queue (see runq.h).
 *
 * The protocol is Go's runq (proc.go: runqput/runqget/runqgrab), plus a
 * versioned head so the owner can take its newest task back:
 *  1. head's index and tail are free-running 32-bit counters; the ring holds
 *     the tasks at positions index .. tail-1, and tail - index <= CAP always.
 *  2. Only the owner writes tail and the slots. It writes the slot, then
 *     publishes it with a release store of tail.
 *  3. Consumers (the owner popping, thieves stealing) read head with acquire,
 *     tail with acquire, read the slots they want, then claim them with one
 *     CAS on head that keeps the version. A failed CAS means someone else
 *     claimed first: retry. A successful CAS is a release: it pairs with the
 *     owner's acquire load of head in push, so the owner never overwrites a
 *     slot a consumer may still be reading.
 *  4. A thief copies the slots into its own (empty) ring before its CAS and
 *     publishes them with its own tail only after the CAS succeeded.
 *  5. Unpush (owner takes the tail task back): store tail - 1, then CAS head
 *     from (version, index) to (version + 1, index). A thief that read the
 *     old tail also read the old version, so its CAS fails; a thief that sees
 *     the new version sees the lowered tail (the owner's CAS is a release
 *     after the tail store). If the owner's CAS fails, a consumer moved head
 *     first: the owner restores tail, and the task is still in the ring
 *     unless the consumer took it, which the owner then sees in head.
 * Against Tokio's ring (a packed steal/real head pair that lets the owner
 * keep popping while a steal copies), this needs one CAS less per steal, and
 * the copy window is a few nanoseconds for <= 128 tasks. */
#include "runq.h"

#define CREW_RUNQ_MASK (CREW_RUNQ_CAP - 1)

static inline uint32_t head_index(uint64_t h)
{
    return (uint32_t)h;
}

/* The same version with the index advanced by n (wrapping within 32 bits). */
static inline uint64_t head_advance(uint64_t h, uint32_t n)
{
    return (h & 0xFFFFFFFF00000000ull) | (uint32_t)(head_index(h) + n);
}

void crew__runq_init(crew__runq_t *q, uint32_t start)
{
    atomic_init(&q->head, start);
    atomic_init(&q->tail, start);
    for (unsigned i = 0; i < CREW_RUNQ_CAP; i++)
        atomic_init(&q->slot[i], NULL);
}

/* Owner only: move the oldest half of a full ring plus t into a list.
 * Returns the count, 0 if consumers made room meanwhile (caller retries). */
static unsigned runq_offload(crew__runq_t *q, uint64_t h, crew_task_t *t, crew_task_t **first,
                             crew_task_t **last)
{
    const unsigned n = CREW_RUNQ_CAP / 2;
    crew_task_t *batch[CREW_RUNQ_CAP / 2];

    for (unsigned i = 0; i < n; i++)
        batch[i] = atomic_load_explicit(&q->slot[(head_index(h) + i) & CREW_RUNQ_MASK],
                                        memory_order_relaxed);
    /* Release: pairs with the acquire load of head in push (step 3). */
    if (!atomic_compare_exchange_strong_explicit(&q->head, &h, head_advance(h, n),
                                                 memory_order_release, memory_order_relaxed))
        return 0;
    for (unsigned i = 0; i + 1 < n; i++)
        batch[i]->qnext = batch[i + 1];
    batch[n - 1]->qnext = t;
    t->qnext = NULL;
    *first = batch[0];
    *last = t;
    return n + 1;
}

unsigned crew__runq_push(crew__runq_t *q, crew_task_t *t, crew_task_t **overflow_head,
                         crew_task_t **overflow_tail)
{
    for (;;) {
        /* Acquire: pairs with consumers' release CAS on head (step 3). */
        uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&q->tail, memory_order_relaxed); /* Our own. */
        if (tl - head_index(h) < CREW_RUNQ_CAP) {
            atomic_store_explicit(&q->slot[tl & CREW_RUNQ_MASK], t, memory_order_relaxed);
            /* Release: publishes the slot write to consumers (step 2). */
            atomic_store_explicit(&q->tail, tl + 1, memory_order_release);
            return 0;
        }
        unsigned n = runq_offload(q, h, t, overflow_head, overflow_tail);
        if (n)
            return n;
    }
}

crew_task_t *crew__runq_pop(crew__runq_t *q)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        uint32_t tl = atomic_load_explicit(&q->tail, memory_order_relaxed); /* Our own. */
        if (tl == head_index(h))
            return NULL;
        crew_task_t *t = atomic_load_explicit(&q->slot[head_index(h) & CREW_RUNQ_MASK],
                                              memory_order_relaxed);
        /* The owner rewrites this slot only in a later push, after this CAS in
         * program order, so relaxed would do for the owner itself; release
         * keeps every claim on head uniform (step 3) and costs nothing extra
         * on x86 (lock cmpxchg). On failure h is reloaded and we retry. */
        if (atomic_compare_exchange_weak_explicit(&q->head, &h, head_advance(h, 1),
                                                  memory_order_release, memory_order_acquire))
            return t;
    }
}

bool crew__runq_unpush(crew__runq_t *q, crew_task_t *t)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t tl = atomic_load_explicit(&q->tail, memory_order_relaxed); /* Our own. */
    if (tl == head_index(h) ||
        atomic_load_explicit(&q->slot[(tl - 1) & CREW_RUNQ_MASK], memory_order_relaxed) != t)
        return false;
    atomic_store_explicit(&q->tail, tl - 1, memory_order_relaxed);
    /* Release: a thief whose acquire load of head reads the new version also
     * sees the lowered tail stored above (step 5). */
    uint64_t next = ((h + (1ull << 32)) & 0xFFFFFFFF00000000ull) | head_index(h);
    if (atomic_compare_exchange_strong_explicit(&q->head, &h, next, memory_order_release,
                                                memory_order_relaxed))
        return true;
    /* A consumer moved head first. If it did not take position tl - 1, the
     * task is still ours to leave in the ring: put tail back. */
    atomic_store_explicit(&q->tail, tl, memory_order_release);
    return false;
}

crew_task_t *crew__runq_steal(crew__runq_t *victim, crew__runq_t *dst, unsigned *moved)
{
    uint32_t dt = atomic_load_explicit(&dst->tail, memory_order_relaxed); /* dst is ours. */
    for (;;) {
        /* Acquire on both: head so the slots we read are not from before a
         * consumer's claim; tail so we see the slot writes it publishes. */
        uint64_t h = atomic_load_explicit(&victim->head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&victim->tail, memory_order_acquire);
        uint32_t n = tl - head_index(h);
        if (n == 0) {
            *moved = 0;
            return NULL;
        }
        /* head and tail were read at different moments (the owner popped and
         * pushed in between), or the owner is in the middle of a failing
         * unpush (tail briefly below head): report nothing to steal rather
         * than spin on a state that lasts until the owner runs again. The
         * caller's search loop comes back. */
        if (n > CREW_RUNQ_CAP) {
            *moved = 0;
            return NULL;
        }
        n -= n / 2;
        for (uint32_t i = 0; i < n; i++) {
            crew_task_t *t = atomic_load_explicit(
                &victim->slot[(head_index(h) + i) & CREW_RUNQ_MASK], memory_order_relaxed);
            atomic_store_explicit(&dst->slot[(dt + i) & CREW_RUNQ_MASK], t, memory_order_relaxed);
        }
        /* Release: pairs with the victim owner's acquire load of head in push,
         * so it does not reuse the slots before our reads above (step 3). The
         * version in h makes the CAS fail after an unpush (step 5). */
        if (!atomic_compare_exchange_weak_explicit(&victim->head, &h, head_advance(h, n),
                                                   memory_order_release, memory_order_relaxed))
            continue;
        *moved = n;
        /* Keep the newest stolen task to run now; publish the rest (step 4).
         * Release: pairs with other thieves' acquire of our tail. */
        crew_task_t *ret = atomic_load_explicit(&dst->slot[(dt + n - 1) & CREW_RUNQ_MASK],
                                                memory_order_relaxed);
        if (n > 1)
            atomic_store_explicit(&dst->tail, dt + n - 1, memory_order_release);
        return ret;
    }
}

unsigned crew__runq_push_list(crew__runq_t *q, crew_task_t **list, unsigned n)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t tl = atomic_load_explicit(&q->tail, memory_order_relaxed);
    unsigned room = CREW_RUNQ_CAP - (tl - head_index(h));
    unsigned k = 0;
    crew_task_t *t = *list;
    while (t && k < n && k < room) {
        atomic_store_explicit(&q->slot[(tl + k) & CREW_RUNQ_MASK], t, memory_order_relaxed);
        t = t->qnext;
        k++;
    }
    /* Release: publishes the slot writes (step 2). */
    if (k)
        atomic_store_explicit(&q->tail, tl + k, memory_order_release);
    *list = t;
    return k;
}

uint32_t crew__runq_len(const crew__runq_t *q)
{
    /* head first: both only grow, so a later tail read can only over-report.
     * The exception is an unpush: it lowers tail, and if it then fails (a
     * thief moved head) it restores tail, so for that moment the count can be
     * one short, even 0 with a task queued. Callers use the count to decide
     * whether to sleep; that task's owner is awake (inside the unpush) and
     * runs it, so only parallelism can be lost, never the task. */
    uint64_t h = atomic_load_explicit(&((crew__runq_t *)q)->head, memory_order_acquire);
    uint32_t tl = atomic_load_explicit(&((crew__runq_t *)q)->tail, memory_order_acquire);
    uint32_t n = tl - head_index(h);
    return n > CREW_RUNQ_CAP ? CREW_RUNQ_CAP : n;
}
