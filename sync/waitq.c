/* The waiter list and wait routine of sync/ (see waitq.h). */
#include "waitq.h"

/* Tasks per push of a wake-all (waitq.h): the size of a run queue, so a
 * worker takes a chunk in one go and the push's cost is amortised. */
#define CREW__WAITQ_CHUNK 256

static crew__swait_t *swait_of(crew__link_t *l)
{
    return l ? CREW_CONTAINER_OF(l, crew__swait_t, link) : NULL;
}

void crew__waitq_push(struct crew__waitq *q, crew__swait_t *sw, bool front)
{
    sw->linked = true;
    if (front)
        crew__list_push_front(crew__waitq_list(q), &sw->link);
    else
        crew__list_push_back(crew__waitq_list(q), &sw->link);
}

void crew__waitq_unlink(struct crew__waitq *q, crew__swait_t *sw)
{
    crew__list_remove(crew__waitq_list(q), &sw->link);
    sw->linked = false;
}

crew__swait_t *crew__waitq_first(struct crew__waitq *q)
{
    return swait_of(crew__waitq_list(q)->head);
}

crew__swait_t *crew__waitq_pop(struct crew__waitq *q)
{
    crew__swait_t *sw = swait_of(crew__list_pop_front(crew__waitq_list(q)));
    if (sw)
        sw->linked = false;
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

bool crew__waitq_wake_into(crew__waitq_batch_t *b, crew__swait_t *sw, int cause)
{
    crew_task_t *t = sw->w.task;
    /* A batch serves one runtime: a task of another one (rare: a primitive
     * shared between runtimes) is woken on its own. Its runtime is read
     * before the wake, after which the task may run and be gone. */
    if (!t || (b->rt && t->rt != b->rt))
        return crew__waiter_wake(&sw->w, cause);
    b->rt = t->rt;
    bool won = crew__wake_batch_claim(&b->tasks, &sw->w, cause);
    if (b->tasks.n == CREW__WAITQ_CHUNK)
        crew__wake_batch_flush(&b->tasks, b->rt, false);
    return won;
}

size_t crew__waitq_wake_all(struct crew__waitq *q, int cause, crew__waitq_batch_t *b)
{
    size_t n = 0;
    crew__swait_t *sw;
    while ((sw = crew__waitq_pop(q)))
        n += crew__waitq_wake_into(b, sw, cause);
    return n;
}

void crew__waitq_flush(crew__waitq_batch_t *b)
{
    if (b->rt)
        crew__wake_batch_flush(&b->tasks, b->rt, false);
    b->rt = NULL;
}
