/* The waiter list and wait routine of sync/ (see waitq.h). */
#include "waitq.h"

void crew__waitq_push(struct crew__waitq *q, crew__swait_t *sw, bool front)
{
    sw->linked = true;
    if (front) {
        sw->prev = NULL;
        sw->next = q->head;
        if (q->head)
            q->head->prev = sw;
        else
            q->tail = sw;
        q->head = sw;
    } else {
        sw->next = NULL;
        sw->prev = q->tail;
        if (q->tail)
            q->tail->next = sw;
        else
            q->head = sw;
        q->tail = sw;
    }
}

void crew__waitq_unlink(struct crew__waitq *q, crew__swait_t *sw)
{
    if (sw->prev)
        sw->prev->next = sw->next;
    else
        q->head = sw->next;
    if (sw->next)
        sw->next->prev = sw->prev;
    else
        q->tail = sw->prev;
    sw->linked = false;
}

crew__swait_t *crew__waitq_pop(struct crew__waitq *q)
{
    crew__swait_t *sw = q->head;
    if (sw)
        crew__waitq_unlink(q, sw);
    return sw;
}

int crew__swait_enqueue(crew__swait_t *sw, struct crew__waitq *q, bool front)
{
    int rc = crew__waiter_prepare(&sw->w);
    if (rc)
        return rc;
    sw->item = NULL;
    sw->handoff = false;
    crew__waitq_push(q, sw, front);
    return 0;
}

int crew__swait_sleep(crew__swait_t *sw, _Atomic uint32_t *lock, struct crew__waitq *q)
{
    crew__spin_unlock(lock);
    int cause = crew__waiter_wait(&sw->w);
    /* A winning waker popped sw and filled it in before its wake, whose
     * release the wait's acquire pairs with. */
    if (cause == CREW_WAKE_READY)
        return 0;
    if (cause == CREW_WAKE_CLOSED)
        return -EPIPE;
    /* Woken by a cancel or a deadline (only tasks are): unregister. */
    crew__spin_lock(lock);
    bool queued = sw->linked;
    if (queued)
        crew__waitq_unlink(q, sw);
    sw->linked = queued;
    return crew__wake_status(sw->w.task, cause);
}

crew__swait_t *crew__waitq_wake_first(struct crew__waitq *q, int cause, void *item)
{
    crew__swait_t *sw;
    while ((sw = crew__waitq_pop(q))) {
        sw->item = item;
        if (crew__waiter_wake(&sw->w, cause))
            return sw;
    }
    return NULL;
}

size_t crew__waitq_wake_all(struct crew__waitq *q, int cause)
{
    size_t n = 0;
    crew__swait_t *sw;
    while ((sw = crew__waitq_pop(q)))
        n += crew__waiter_wake(&sw->w, cause);
    return n;
}
