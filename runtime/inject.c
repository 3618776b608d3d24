/* The injection queue (see inject.h). */
#include "inject.h"
#include "mutex.h"

int crew__inject_init(crew__inject_t *q)
{
    int rc = crew__mutex_init_short(&q->lock);
    if (rc)
        return rc;
    q->head[0] = q->head[1] = q->tail[0] = q->tail[1] = NULL;
    atomic_init(&q->len, 0);
    atomic_init(&q->accepted, 0);
    q->closed = false;
    return 0;
}

void crew__inject_destroy(crew__inject_t *q)
{
    pthread_mutex_destroy(&q->lock);
}

int crew__inject_push(crew__inject_t *q, crew_task_t *first, crew_task_t *last, uint64_t n,
                      unsigned flags)
{
    bool force = flags & CREW_INJECT_FORCE;
    int lane = (flags & CREW_INJECT_RESUME) ? CREW_INJECT_WAKE : CREW_INJECT_NEW;
    last->qnext = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->closed && !force) {
        pthread_mutex_unlock(&q->lock);
        return -ESHUTDOWN;
    }
    if (q->tail[lane])
        q->tail[lane]->qnext = first;
    else
        q->head[lane] = first;
    q->tail[lane] = last;
    if (!force)
        atomic_store_explicit(&q->accepted, atomic_load_explicit(&q->accepted, memory_order_relaxed) + n,
                              memory_order_relaxed);
    atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + n,
                          memory_order_relaxed);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

crew_task_t *crew__inject_pop(crew__inject_t *q, uint64_t max, uint64_t *n)
{
    *n = 0;
    if (max == 0 || crew__inject_len(q) == 0)
        return NULL;
    pthread_mutex_lock(&q->lock);
    crew_task_t *first = NULL, *last = NULL;
    uint64_t k = 0;
    for (int lane = CREW_INJECT_WAKE; lane <= CREW_INJECT_NEW && k < max; lane++) {
        crew_task_t *t = q->head[lane], *lane_last = NULL;
        if (!t)
            continue;
        crew_task_t *lane_first = t;
        while (t && k < max) {
            lane_last = t;
            t = t->qnext;
            k++;
        }
        q->head[lane] = t;
        if (!t)
            q->tail[lane] = NULL;
        lane_last->qnext = NULL;
        if (last)
            last->qnext = lane_first;
        else
            first = lane_first;
        last = lane_last;
    }
    if (k)
        atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) - k,
                              memory_order_relaxed);
    pthread_mutex_unlock(&q->lock);
    *n = k;
    return first;
}

void crew__inject_close(crew__inject_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_mutex_unlock(&q->lock);
}
