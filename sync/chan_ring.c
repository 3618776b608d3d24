/* Bounded channels: a lock-free MPMC ring with per-slot stamps (Vyukov's
 * bounded queue, in the lap encoding of crossbeam-channel's array flavour).
 *
 * Positions. head (receivers) and tail (senders) hold an index below
 * capacity in their low bits and a lap counter above them: one_lap is the
 * power of two above mark_bit, and mark_bit, the power of two above the
 * capacity, is the closed flag, set only in tail. Advancing past the last
 * index goes to index 0 of the next lap.
 *
 * Slots. Each slot's stamp says whose turn it is: stamp == tail means free
 * for the sender at position tail; stamp == head + 1 means full for the
 * receiver at position head. A sender claims its position by CAS on tail,
 * copies the item in, then publishes it by storing stamp = tail + 1
 * (release); a receiver claims by CAS on head, copies out, and frees the
 * slot for the next lap by storing stamp = head + one_lap (release). So the
 * fast path takes no lock and allocates nothing.
 *
 * Waiting (chan.h, select.c). A waiter queues its node under the channel
 * lock, increments the queue's nwait, issues a seq_cst fence and then looks
 * at head/tail again (crew__ring_register). After every successful
 * operation the other side issues a seq_cst fence and reads nwait
 * (crew__ring_notify). Between two seq_cst fences one of the two sees the
 * other's write (the store-buffering pattern): either the waiter sees the
 * item or free slot and aborts its wait, or the operation sees nwait > 0,
 * takes the lock, finds the node and claims it. No wakeup is lost, and an
 * operation with nobody waiting costs one fence and one relaxed load. */
#include <sched.h>

#include "chan.h"

static inline unsigned char *slot_at(const crew_chan_t *ch, size_t pos, size_t mark_bit)
{
    return ch->slots + (pos & (mark_bit - 1)) * ch->stride;
}

static inline _Atomic size_t *stamp_of(unsigned char *slot)
{
    return (_Atomic size_t *)(void *)slot;
}

static inline unsigned char *data_of(unsigned char *slot)
{
    return slot + sizeof(size_t);
}

/* The position after pos. */
static inline size_t next_pos(const crew_chan_t *ch, size_t pos)
{
    size_t index = pos & (ch->mark_bit - 1);
    return index + 1 < ch->capacity ? pos + 1 : (pos & ~(ch->one_lap - 1)) + ch->one_lap;
}

/* Another thread is between its claim and its stamp store on the slot we
 * need: spin briefly (it is a few instructions away), then let the OS run
 * it in case it was preempted. */
static void backoff(unsigned *spins)
{
    if (*spins < 6) {
        for (unsigned i = 0; i < (1u << *spins); i++)
            crew__cpu_relax();
        (*spins)++;
    } else {
        sched_yield();
    }
}

int crew__ring_try_send(crew_chan_t *ch, const void *item)
{
    const size_t mark = ch->mark_bit, lap_len = ch->one_lap;
    size_t tail = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    unsigned spins = 0;
    for (;;) {
        if (tail & mark)
            return CREW_CHAN_CLOSED;
        unsigned char *slot = slot_at(ch, tail, mark);
        /* Acquire: pairs with the release stamp store of the receiver that
         * emptied this slot, so its copy-out precedes our copy-in. */
        size_t stamp = atomic_load_explicit(stamp_of(slot), memory_order_acquire);
        if (stamp == tail) {
            /* Relaxed: the stamp (above) and the stamp store (below) carry
             * the item; the waiters' check is ordered by the fence in
             * crew__ring_notify. */
            if (atomic_compare_exchange_weak_explicit(&ch->tail, &tail, next_pos(ch, tail),
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                crew__chan_copy(data_of(slot), item, ch->elem_size);
                /* Release: pairs with the receiver's acquire stamp load. */
                atomic_store_explicit(stamp_of(slot), tail + 1, memory_order_release);
                crew__ring_notify(ch, &ch->recvq);
                return 0;
            }
            continue;
        }
        if (stamp + lap_len == tail + 1) {
            /* The slot still holds last lap's item: full, unless head moved
             * meanwhile. seq_cst fence: head is read after the stamp, so a
             * head that moved before the stamp load is seen (linearizable
             * "full", crossbeam's argument). */
            atomic_thread_fence(memory_order_seq_cst);
            size_t head = atomic_load_explicit(&ch->head, memory_order_relaxed);
            if (head + lap_len == tail)
                return -EAGAIN;
        }
        backoff(&spins);
        tail = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    }
}

int crew__ring_try_recv(crew_chan_t *ch, void *item)
{
    const size_t mark = ch->mark_bit, lap_len = ch->one_lap;
    size_t head = atomic_load_explicit(&ch->head, memory_order_relaxed);
    unsigned spins = 0;
    for (;;) {
        unsigned char *slot = slot_at(ch, head, mark);
        /* Acquire: pairs with the sender's release stamp store (the item). */
        size_t stamp = atomic_load_explicit(stamp_of(slot), memory_order_acquire);
        if (stamp == head + 1) {
            if (atomic_compare_exchange_weak_explicit(&ch->head, &head, next_pos(ch, head),
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                crew__chan_copy(item, data_of(slot), ch->elem_size);
                /* Release: pairs with the next lap's sender's acquire load. */
                atomic_store_explicit(stamp_of(slot), head + lap_len, memory_order_release);
                crew__ring_notify(ch, &ch->sendq);
                return 0;
            }
            continue;
        }
        if (stamp == head) {
            /* Nothing published here yet: empty, unless tail moved (a
             * sender between its claim and its stamp store). */
            atomic_thread_fence(memory_order_seq_cst);
            size_t tail = atomic_load_explicit(&ch->tail, memory_order_relaxed);
            if ((tail & ~mark) == head)
                return (tail & mark) ? CREW_CHAN_CLOSED : -EAGAIN;
        }
        backoff(&spins);
        head = atomic_load_explicit(&ch->head, memory_order_relaxed);
    }
}

void crew__ring_notify(crew_chan_t *ch, crew__chan_q_t *q)
{
    /* seq_cst fence: pairs with the fence in crew__ring_register (the
     * store-buffering argument at the top of this file). */
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&q->nwait, memory_order_relaxed))
        return;
    crew__chan_lock(ch);
    crew__chan_node_t *n = crew__chan_q_claim(q, 0);
    if (n)
        crew__waiter_wake(&n->sel->w, CREW_WAKE_READY);
    crew__chan_unlock(ch);
}

bool crew__ring_register(crew_chan_t *ch, crew_select_op_t *op, crew__sel_t *sel)
{
    bool send = op->dir == CREW_SELECT_SEND;
    crew__chan_node_t *n = crew__op_node(op);
    crew__chan_lock(ch);
    crew__chan_q_push(send ? &ch->sendq : &ch->recvq, n);
    crew__chan_unlock(ch);
    /* seq_cst fence: pairs with the one in crew__ring_notify. */
    atomic_thread_fence(memory_order_seq_cst);
    size_t tail = atomic_load_explicit(&ch->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&ch->head, memory_order_relaxed);
    if (tail & ch->mark_bit)
        return true;
    return send ? head + ch->one_lap != tail : tail != head;
}

int crew__ring_close(crew_chan_t *ch)
{
    /* seq_cst: like a successful operation, the mark is ordered before the
     * waiters are looked at; here through the lock: a waiter that queues
     * after our unlock sees the mark in its check, one that queued before
     * is claimed below. */
    if (atomic_fetch_or_explicit(&ch->tail, ch->mark_bit, memory_order_seq_cst) & ch->mark_bit)
        return CREW_CHAN_CLOSED;
    crew__chan_lock(ch);
    crew__chan_node_t *n;
    while ((n = crew__chan_q_claim(&ch->sendq, 0)))
        crew__waiter_wake(&n->sel->w, CREW_WAKE_READY);
    while ((n = crew__chan_q_claim(&ch->recvq, 0)))
        crew__waiter_wake(&n->sel->w, CREW_WAKE_READY);
    crew__chan_unlock(ch);
    return 0;
}

size_t crew__ring_len(const crew_chan_t *ch)
{
    for (;;) {
        size_t tail = atomic_load_explicit(&ch->tail, memory_order_acquire);
        size_t head = atomic_load_explicit(&ch->head, memory_order_acquire);
        /* A consistent snapshot: tail did not move while head was read. */
        if (atomic_load_explicit(&ch->tail, memory_order_acquire) != tail)
            continue;
        tail &= ~ch->mark_bit;
        size_t hix = head & (ch->mark_bit - 1), tix = tail & (ch->mark_bit - 1);
        if (hix < tix)
            return tix - hix;
        if (hix > tix)
            return ch->capacity - hix + tix;
        return tail == head ? 0 : ch->capacity;
    }
}

void crew__ring_drain(crew_chan_t *ch)
{
    size_t tail = atomic_load_explicit(&ch->tail, memory_order_acquire) & ~ch->mark_bit;
    size_t head = atomic_load_explicit(&ch->head, memory_order_acquire);
    if (ch->item_free)
        for (size_t pos = head; pos != tail; pos = next_pos(ch, pos))
            ch->item_free(data_of(slot_at(ch, pos, ch->mark_bit)), ch->item_free_ctx);
}
