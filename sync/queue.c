/* crew_queue_t: asyncio-style FIFO, LIFO and priority queues
 * (crew/queue.h).
 *
 * One spin lock guards the storage, the counters and three waiter lists
 * (getters, putters, joiners); every wake happens under it (waitq.h).
 *  1. put: a waiting getter takes the item straight from the putter (the
 *     storage is then empty); else it is stored if there is room; else the
 *     putter queues with its item.
 *  2. get: take the next stored item, then admit the first waiting putter
 *     whose wake wins (its item fills the slot just freed, so that never
 *     allocates); else the getter queues.
 *  3. A wake that loses to a cancel or deadline moves on: an item being
 *     handed to a getter goes to the next getter or into storage; a putter
 *     being admitted keeps its item (its put fails) and the next is tried.
 * Storage: a ring of slots (FIFO takes the oldest end, LIFO the newest) or,
 * for a priority queue, a binary min-heap ordered by (cmp, insertion
 * sequence), which is what makes equal priorities come out FIFO. It grows
 * by doubling, up to maxsize. */

#include "alloc.h"
#include "waitq.h"

#include <crew/queue.h>

typedef struct slot {
    void *item;
    uint64_t seq; /* Priority: insertion order, the tie-breaker. */
} slot_t;

struct crew_queue_s {
    _Atomic uint32_t lock;
    crew_queue_kind_t kind;
    crew_queue_cmp_t cmp;
    size_t maxsize;      /* 0: unbounded. */
    slot_t *buf;         /* Everything below: under lock. */
    size_t cap, head, n; /* Ring: n items from head; heap: buf[0..n). */
    uint64_t next_seq;
    size_t unfinished;   /* Items put and not yet marked task_done. */
    bool closed;
    struct crew__waitq getters, putters, joiners;
};

/* The smallest storage a queue gets once it holds an item. */
#define Q_MIN_CAP 16

int crew_queue_create(crew_queue_kind_t kind, size_t maxsize, crew_queue_cmp_t cmp,
                      crew_queue_t **out)
{
    if (!out || (unsigned)kind > CREW_QUEUE_PRIORITY || (kind == CREW_QUEUE_PRIORITY) != !!cmp)
        return -EINVAL;
    crew_queue_t *q = crew__zalloc(sizeof *q, _Alignof(crew_queue_t));
    if (!q)
        return -ENOMEM;
    q->kind = kind;
    q->cmp = cmp;
    q->maxsize = maxsize;
    *out = q;
    return 0;
}

static bool before(const crew_queue_t *q, const slot_t *a, const slot_t *b)
{
    int c = q->cmp(a->item, b->item);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

static int grow(crew_queue_t *q)
{
    size_t cap = q->cap ? 2 * q->cap : Q_MIN_CAP;
    if (q->maxsize && cap > q->maxsize)
        cap = q->maxsize;
    if (cap > SIZE_MAX / sizeof(slot_t))
        return -ENOMEM;
    slot_t *b = crew__alloc(cap * sizeof *b, _Alignof(slot_t));
    if (!b)
        return -ENOMEM;
    /* Unroll the ring (a heap has head 0, so this copies it as it is). */
    for (size_t i = 0; i < q->n; i++)
        b[i] = q->buf[(q->head + i) % q->cap];
    crew__free(q->buf, q->cap * sizeof *b, _Alignof(slot_t));
    q->buf = b;
    q->cap = cap;
    q->head = 0;
    return 0;
}

/* Store item; lock held, room checked against maxsize by the caller. */
static int store(crew_queue_t *q, void *item)
{
    if (q->n == q->cap) {
        int rc = grow(q);
        if (rc)
            return rc;
    }
    if (q->kind != CREW_QUEUE_PRIORITY) {
        q->buf[(q->head + q->n++) % q->cap] = (slot_t){ item, 0 };
        return 0;
    }
    slot_t s = { item, q->next_seq++ };
    size_t i = q->n++;
    while (i > 0 && before(q, &s, &q->buf[(i - 1) / 2])) {
        q->buf[i] = q->buf[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q->buf[i] = s;
    return 0;
}

/* Take the next item; lock held, n > 0. */
static void *take(crew_queue_t *q)
{
    if (q->kind == CREW_QUEUE_FIFO) {
        void *item = q->buf[q->head].item;
        q->head = (q->head + 1) % q->cap;
        q->n--;
        return item;
    }
    if (q->kind == CREW_QUEUE_LIFO)
        return q->buf[(q->head + --q->n) % q->cap].item;
    void *item = q->buf[0].item;
    slot_t last = q->buf[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n)
            break;
        if (c + 1 < q->n && before(q, &q->buf[c + 1], &q->buf[c]))
            c++;
        if (!before(q, &q->buf[c], &last))
            break;
        q->buf[i] = q->buf[c];
        i = c;
    }
    q->buf[i] = last;
    return item;
}

static int put(crew_queue_t *q, void *item, bool wait)
{
    if (!q)
        return -EINVAL;
    crew__spin_lock(&q->lock);
    int rc = 0;
    if (q->closed) {
        rc = -EPIPE;
    } else if (crew__waitq_wake_first(&q->getters, CREW_WAKE_READY, item)) {
        q->unfinished++;
    } else if (!q->maxsize || q->n < q->maxsize) {
        rc = store(q, item);
        q->unfinished += !rc;
    } else if (!wait) {
        rc = -ENOSPC;
    } else {
        crew__swait_t sw;
        rc = crew__swait_enqueue(&sw, &q->putters, false);
        if (!rc) {
            sw.item = item;
            rc = crew__swait_sleep(&sw, &q->lock, &q->putters);
            if (rc == 0 || rc == -EPIPE)
                return rc; /* Admitted (a getter stored the item), or closed. */
        }
    }
    crew__spin_unlock(&q->lock);
    return rc;
}

/* A slot is free: admit the first waiting putter whose wake wins. Its item
 * is read before the wake, which ends the record's life. */
static void admit(crew_queue_t *q)
{
    crew__swait_t *sw;
    while ((sw = crew__waitq_pop(&q->putters))) {
        void *item = sw->item;
        if (crew__waiter_wake(&sw->w, CREW_WAKE_READY)) {
            int rc = store(q, item);
            CREW_ASSERT(rc == 0); /* Room for it: take() just freed a slot. */
            q->unfinished++;
            return;
        }
    }
}

static int get(crew_queue_t *q, void **item, bool wait)
{
    if (!q || !item)
        return -EINVAL;
    crew__spin_lock(&q->lock);
    int rc = 0;
    if (q->n) {
        *item = take(q);
        admit(q);
    } else if (q->closed) {
        rc = -EPIPE;
    } else if (!wait) {
        rc = -EAGAIN;
    } else {
        crew__swait_t sw;
        rc = crew__swait_enqueue(&sw, &q->getters, false);
        if (!rc) {
            rc = crew__swait_sleep(&sw, &q->lock, &q->getters);
            if (rc == 0)
                *item = sw.item;
            if (rc == 0 || rc == -EPIPE)
                return rc;
        }
    }
    crew__spin_unlock(&q->lock);
    return rc;
}

int crew_queue_put(crew_queue_t *q, void *item)
{
    return put(q, item, true);
}

int crew_queue_put_nowait(crew_queue_t *q, void *item)
{
    return put(q, item, false);
}

int crew_queue_get(crew_queue_t *q, void **item)
{
    return get(q, item, true);
}

int crew_queue_get_nowait(crew_queue_t *q, void **item)
{
    return get(q, item, false);
}

int crew_queue_task_done(crew_queue_t *q)
{
    if (!q)
        return -EINVAL;
    crew__waitq_batch_t b = CREW__WAITQ_BATCH_INIT;
    crew__spin_lock(&q->lock);
    int rc = 0;
    if (!q->unfinished)
        rc = -EINVAL;
    else if (--q->unfinished == 0)
        crew__waitq_wake_all(&q->joiners, CREW_WAKE_READY, &b);
    crew__spin_unlock(&q->lock);
    crew__waitq_flush(&b);
    return rc;
}

int crew_queue_join(crew_queue_t *q)
{
    if (!q)
        return -EINVAL;
    crew__spin_lock(&q->lock);
    int rc = 0;
    if (q->unfinished) {
        crew__swait_t sw;
        rc = crew__swait_enqueue(&sw, &q->joiners, false);
        if (!rc && !(rc = crew__swait_sleep(&sw, &q->lock, &q->joiners)))
            return 0;
    }
    crew__spin_unlock(&q->lock);
    return rc;
}

int crew_queue_close(crew_queue_t *q)
{
    if (!q)
        return -EINVAL;
    crew__waitq_batch_t b = CREW__WAITQ_BATCH_INIT;
    crew__spin_lock(&q->lock);
    q->closed = true;
    crew__waitq_wake_all(&q->getters, CREW_WAKE_CLOSED, &b);
    crew__waitq_wake_all(&q->putters, CREW_WAKE_CLOSED, &b);
    crew__spin_unlock(&q->lock);
    crew__waitq_flush(&b);
    return 0;
}

size_t crew_queue_qsize(crew_queue_t *q)
{
    if (!q)
        return 0;
    crew__spin_lock(&q->lock);
    size_t n = q->n;
    crew__spin_unlock(&q->lock);
    return n;
}

bool crew_queue_empty(crew_queue_t *q)
{
    return crew_queue_qsize(q) == 0;
}

bool crew_queue_full(crew_queue_t *q)
{
    return q && q->maxsize && crew_queue_qsize(q) >= q->maxsize;
}

int crew_queue_destroy(crew_queue_t *q, crew_queue_dtor_t dtor)
{
    if (!q)
        return -EINVAL;
    crew__spin_lock(&q->lock);
    bool busy = !crew__waitq_empty(&q->getters) || !crew__waitq_empty(&q->putters) ||
                !crew__waitq_empty(&q->joiners);
    crew__spin_unlock(&q->lock);
    if (busy)
        return -EBUSY;
    while (q->n) {
        void *item = take(q);
        if (dtor)
            dtor(item);
    }
    crew__free(q->buf, q->cap * sizeof(slot_t), _Alignof(slot_t));
    crew__free(q, sizeof *q, _Alignof(crew_queue_t));
    return 0;
}
