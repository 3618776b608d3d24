/* Channels: creation, destruction, closing, the public send/receive calls
 * and the wait queues shared by both implementations (see chan.h for the
 * waiting protocol, chan_ring.c and chan_locked.c for the flavours). */
#include "alloc.h"
#include "chan.h"

void crew__chan_lock_slow(crew_chan_t *ch)
{
    unsigned spins = 0;
    do
        while (atomic_load_explicit(&ch->lock, memory_order_relaxed))
            crew__pause_round(&spins);
    while (!crew__chan_trylock(ch));
}

/* ---- Wait queues (channel lock held) ---- */

void crew__chan_wake(crew__chan_node_t *list)
{
    while (list) {
        /* Read before the wake: once it wins, the node's stack may be gone. */
        crew__chan_node_t *next = crew__chan_node_of(list->link.next);
        crew__chan_wake_one(list);
        list = next;
    }
}

bool crew__chan_q_has_other(const crew__chan_q_t *q, const crew__sel_t *self)
{
    for (const crew__link_t *l = q->list.head; l; l = l->next) {
        const crew__chan_node_t *n = CREW_CONTAINER_OF(l, crew__chan_node_t, link);
        if (n->sel != self &&
            atomic_load_explicit(&n->sel->selected, memory_order_relaxed) == CREW_SEL_WAITING)
            return true;
    }
    return false;
}

/* ---- Creation and destruction ---- */

static int check_opts(const crew_chan_opts_t *o, size_t capacity)
{
    if (!o)
        return 0;
    if (o->size != sizeof *o || (o->flags & ~CREW_CHAN_ONESHOT))
        return -EINVAL;
    for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++)
        if (o->reserved[i])
            return -EINVAL;
    if ((o->flags & CREW_CHAN_ONESHOT) && capacity != 1)
        return -EINVAL;
    return 0;
}

/* Size the ring: slot stride, lap encoding, bytes. */
static int ring_geometry(crew_chan_t *ch, size_t *bytes)
{
    /* A stamp then the item, keeping the next stamp aligned. */
    ch->stride = (sizeof(size_t) + ch->elem_size + sizeof(size_t) - 1) & ~(sizeof(size_t) - 1);
    if (__builtin_mul_overflow(ch->capacity, ch->stride, bytes))
        return -EOVERFLOW;
    if (ch->capacity > CREW_CHAN_MAX_CAPACITY)
        return -EINVAL;
    /* The closed mark is the power of two above every index; the lap
     * counter starts above it. The capacity bound leaves at least a quarter
     * of the word's bits for laps, so a lap never wraps during one stalled
     * operation in any real run. */
    ch->mark_bit = 1;
    while (ch->mark_bit <= ch->capacity)
        ch->mark_bit <<= 1;
    ch->one_lap = ch->mark_bit << 1;
    return 0;
}

int crew_chan_create(size_t elem_size, size_t capacity, const crew_chan_opts_t *opts,
                     crew_chan_t **out)
{
    if (!out || elem_size == 0 || elem_size > CREW_CHAN_MAX_ELEM)
        return -EINVAL;
    int rc = check_opts(opts, capacity);
    if (rc)
        return rc;
    crew_chan_t tmpl = { .elem_size = elem_size, .capacity = capacity };
    size_t bytes = 0;
    if (opts) {
        tmpl.flags = opts->flags;
        tmpl.item_free = opts->item_free;
        tmpl.item_free_ctx = opts->item_free_ctx;
    }
    if (capacity == 0 || capacity == CREW_CHAN_UNBOUNDED || (tmpl.flags & CREW_CHAN_ONESHOT)) {
        tmpl.kind = CREW_CHAN_LOCKED;
        /* About a page of items per block, 1 .. 256 of them. */
        tmpl.blk_items = 4096 / elem_size;
        tmpl.blk_items = tmpl.blk_items < 1 ? 1 : tmpl.blk_items > 256 ? 256 : tmpl.blk_items;
    } else {
        tmpl.kind = CREW_CHAN_RING;
        rc = ring_geometry(&tmpl, &bytes);
        if (rc)
            return rc;
    }
    crew_chan_t *ch = crew__alloc(sizeof *ch, CREW_CACHELINE);
    if (!ch)
        return -ENOMEM;
    *ch = tmpl;
    if (ch->kind == CREW_CHAN_RING) {
        ch->slots = crew__alloc(bytes, CREW_CACHELINE);
        if (!ch->slots) {
            crew__free(ch, sizeof *ch, CREW_CACHELINE);
            return -ENOMEM;
        }
        for (size_t i = 0; i < capacity; i++)
            atomic_init((_Atomic size_t *)(void *)(ch->slots + i * ch->stride), i);
    }
    *out = ch;
    return 0;
}

static size_t waiting(crew_chan_t *ch)
{
    crew__chan_lock(ch);
    size_t n = atomic_load_explicit(&ch->sendq.nwait, memory_order_relaxed) +
               atomic_load_explicit(&ch->recvq.nwait, memory_order_relaxed);
    crew__chan_unlock(ch);
    return n;
}

int crew_chan_destroy(crew_chan_t *ch)
{
    if (!ch)
        return -EINVAL;
    if (waiting(ch))
        return -EBUSY;
    if (ch->kind == CREW_CHAN_RING) {
        crew__ring_drain(ch);
        crew__free(ch->slots, ch->capacity * ch->stride, CREW_CACHELINE);
    } else {
        crew__locked_drain(ch);
    }
    crew__free(ch, sizeof *ch, CREW_CACHELINE);
    return 0;
}

int crew_chan_close(crew_chan_t *ch)
{
    if (!ch)
        return -EINVAL;
    return ch->kind == CREW_CHAN_RING ? crew__ring_close(ch) : crew__locked_close(ch);
}

size_t crew_chan_len(const crew_chan_t *ch)
{
    if (!ch)
        return 0;
    if (ch->kind == CREW_CHAN_RING)
        return crew__ring_len(ch);
    crew_chan_t *m = (crew_chan_t *)ch; /* The lock is not part of the value. */
    crew__chan_lock(m);
    size_t n = m->count;
    crew__chan_unlock(m);
    return n;
}

/* ---- Send and receive ---- */

/* A send or receive on the locked flavour: the attempt, then the wait. */
static __attribute__((noinline)) int locked_op(crew_chan_t *ch, int dir, void *item,
                                               crew_task_t *self)
{
    int rc = crew__chan_try(ch, dir, item);
    if (rc != -EAGAIN)
        return rc;
    return crew__chan_wait(ch, dir, item, self);
}

/* The operation proper, after the suspension check. */
static inline __attribute__((always_inline)) int chan_op_checked(crew_chan_t *ch, int dir,
                                                                 void *item, crew_task_t *self)
{
    if (ch->kind != CREW_CHAN_RING)
        return locked_op(ch, dir, item, self);
    return dir == CREW_SELECT_SEND ? crew__ring_send(ch, item, self) : crew__ring_recv(ch, item, self);
}

/* A task in a deadline scope or with a cancellation pending: the full
 * suspension check (crew__suspend_status), then the operation. */
static __attribute__((noinline)) int chan_op_scoped(crew_chan_t *ch, int dir, void *item,
                                                    crew_task_t *self)
{
    int rc = crew__suspend_status(self);
    return rc ? rc : chan_op_checked(ch, dir, item, self);
}

/* One send or receive: the fast path, then the common wait (a one-op
 * select), behind tail calls only, so that the entry saves no registers:
 * crew__suspend_check's slow part runs in chan_op_scoped. */
static inline __attribute__((always_inline)) int chan_op(crew_chan_t *ch, int dir, void *item)
{
    if (!ch || !item)
        return -EINVAL;
    crew_task_t *self = crew__task_self();
    if (self && crew__unlikely(crew__suspend_needs_status(self)))
        return chan_op_scoped(ch, dir, item, self);
    return chan_op_checked(ch, dir, item, self);
}

int crew_chan_send(crew_chan_t *ch, const void *item)
{
    /* The item is only read: the cast serves the shared op record. */
    return chan_op(ch, CREW_SELECT_SEND, (void *)item);
}

int crew_chan_recv(crew_chan_t *ch, void *item)
{
    return chan_op(ch, CREW_SELECT_RECV, item);
}

int crew_chan_try_send(crew_chan_t *ch, const void *item)
{
    if (!ch || !item)
        return -EINVAL;
    return ch->kind == CREW_CHAN_RING ? crew__ring_try_send(ch, item)
                                      : crew__locked_try_send(ch, item);
}

int crew_chan_try_recv(crew_chan_t *ch, void *item)
{
    if (!ch || !item)
        return -EINVAL;
    return ch->kind == CREW_CHAN_RING ? crew__ring_try_recv(ch, item)
                                      : crew__locked_try_recv(ch, item);
}
