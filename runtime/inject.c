/* The injection queue (see inject.h). */
#include "inject.h"

int crew__inject_init(crew__inject_t *q)
{
    int rc = pthread_mutex_init(&q->lock, NULL);
    if (rc)
        return -rc;
    q->head = q->tail = NULL;
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
                      bool force)
{
    last->qnext = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->closed && !force) {
        pthread_mutex_unlock(&q->lock);
        return -ESHUTDOWN;
    }
    if (q->tail)
        q->tail->qnext = first;
    else
        q->head = first;
    q->tail = last;
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
    crew_task_t *first = q->head, *t = first, *last = NULL;
    uint64_t k = 0;
    while (t && k < max) {
        last = t;
        t = t->qnext;
        k++;
    }
    if (last) {
        q->head = t;
        if (!t)
            q->tail = NULL;
        last->qnext = NULL;
        atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) - k,
                              memory_order_relaxed);
    }
    pthread_mutex_unlock(&q->lock);
    *n = k;
    return last ? first : NULL;
}

void crew__inject_close(crew__inject_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_mutex_unlock(&q->lock);
}
