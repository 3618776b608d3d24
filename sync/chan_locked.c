/* Rendezvous, unbounded and oneshot channels: Go's channel algorithm under
 * the channel's spin lock.
 *
 * A send first looks for a waiting receiver and, if it can claim one (chan.h,
 * a DONE claim), copies the item straight into the receiver's buffer and
 * wakes it; otherwise it buffers the item if there is room (never, for a
 * rendezvous channel), else it waits in sendq. A receive takes the oldest
 * buffered item, else the item of a waiting sender it can claim. So a
 * receiver only waits while nothing is buffered, and a sender only waits on
 * a rendezvous channel (an unbounded channel always has room, and a oneshot
 * channel's one send always finds its slot).
 *
 * Why a lock and not a lock-free list: the hand-off to a parked waiter needs
 * the lock anyway (the claim and the copy into the waiter's buffer must be
 * one step against the waiter's abort), a rendezvous is a hand-off every
 * time, and the critical sections are a claim CAS and one item copy (the
 * wake comes after the unlock, chan.h). The unbounded flavour
 * buffers in blocks of several items, allocated (rarely, with one block kept
 * spare) under the lock; its hot path is a copy and two index updates. The
 * bounded flavour, which is what high-throughput pipelines use, is the
 * lock-free ring (chan_ring.c). */
#include "alloc.h"
#include "chan.h"

#define ONESHOT(ch) ((ch)->flags & CREW_CHAN_ONESHOT)

static size_t blk_bytes(const crew_chan_t *ch)
{
    return sizeof(crew__chan_blk_t) + ch->blk_items * ch->elem_size;
}

/* Room for one more buffered item at the end, or NULL on -ENOMEM. */
static void *push_slot(crew_chan_t *ch)
{
    if (!ch->last || ch->wr == ch->blk_items) {
        crew__chan_blk_t *b = ch->spare ? ch->spare : crew__alloc(blk_bytes(ch), 16);
        if (!b)
            return NULL;
        ch->spare = NULL;
        b->next = NULL;
        if (ch->last)
            ch->last->next = b;
        else
            ch->first = b;
        ch->last = b;
        ch->wr = 0;
    }
    ch->count++;
    return ch->last->items + ch->wr++ * ch->elem_size;
}

static void recycle(crew_chan_t *ch, crew__chan_blk_t *b)
{
    if (!ch->spare)
        ch->spare = b;
    else
        crew__free(b, blk_bytes(ch), 16);
}

/* Take the oldest buffered item (count > 0). */
static void pop_item(crew_chan_t *ch, void *item)
{
    crew__chan_copy(item, ch->first->items + ch->rd++ * ch->elem_size, ch->elem_size);
    if (--ch->count == 0) {
        /* Nothing left: then first == last (a later block always holds an
         * item); reuse it from the start. */
        ch->rd = ch->wr = 0;
    } else if (ch->rd == ch->blk_items) {
        crew__chan_blk_t *b = ch->first;
        ch->first = b->next;
        ch->rd = 0;
        recycle(ch, b);
    }
}

/* Claim the first waiter of q that still waits (a DONE claim), queueing its
 * wake on wakes; lock held. */
static crew_select_op_t *claim_done(crew__chan_q_t *q, crew__chan_node_t **wakes)
{
    crew__chan_node_t *n = crew__chan_q_claim(q, CREW_SEL_DONE);
    if (!n)
        return NULL;
    crew__chan_defer(wakes, n);
    return crew__node_op(n);
}

/* Close with the lock held: every waiter completes with CREW_CHAN_CLOSED
 * (receivers only wait while nothing is buffered). */
static void close_locked(crew_chan_t *ch, crew__chan_node_t **wakes)
{
    crew_select_op_t *op;
    ch->closed = true;
    while ((op = claim_done(&ch->sendq, wakes)))
        op->status = CREW_CHAN_CLOSED;
    while ((op = claim_done(&ch->recvq, wakes)))
        op->status = CREW_CHAN_CLOSED;
}

int crew__locked_try_send(crew_chan_t *ch, const void *item)
{
    int rc = 0;
    crew__chan_node_t *wakes = NULL;
    crew__chan_lock(ch);
    crew_select_op_t *op;
    if (ch->closed) {
        rc = CREW_CHAN_CLOSED;
    } else if ((op = claim_done(&ch->recvq, &wakes))) {
        crew__chan_copy(op->item, item, ch->elem_size);
        op->status = 0;
    } else if (ch->count < ch->capacity) {
        void *slot = push_slot(ch);
        if (slot)
            crew__chan_copy(slot, item, ch->elem_size);
        else
            rc = -ENOMEM;
    } else {
        rc = -EAGAIN;
    }
    /* The oneshot's one send closes it: later sends fail, and receivers
     * beyond the first get the closed code. */
    if (rc == 0 && ONESHOT(ch))
        close_locked(ch, &wakes);
    crew__chan_unlock(ch);
    crew__chan_wake(wakes);
    return rc;
}

int crew__locked_try_recv(crew_chan_t *ch, void *item)
{
    int rc = 0;
    crew__chan_node_t *wakes = NULL;
    crew__chan_lock(ch);
    crew_select_op_t *op;
    if (ch->count) {
        pop_item(ch, item);
    } else if ((op = claim_done(&ch->sendq, &wakes))) {
        crew__chan_copy(item, op->item, ch->elem_size);
        op->status = 0;
    } else {
        rc = ch->closed ? CREW_CHAN_CLOSED : -EAGAIN;
    }
    crew__chan_unlock(ch);
    crew__chan_wake(wakes);
    return rc;
}

bool crew__locked_register(crew_chan_t *ch, crew_select_op_t *op, crew__sel_t *sel)
{
    bool ready;
    crew__chan_lock(ch);
    /* Under the lock the answer is exact, except that a peer select seen
     * waiting may abort before we claim it (we then just retry). */
    if (op->dir == CREW_SELECT_SEND)
        ready = ch->closed || ch->count < ch->capacity || crew__chan_q_has_other(&ch->recvq, sel);
    else
        ready = ch->closed || ch->count || crew__chan_q_has_other(&ch->sendq, sel);
    if (!ready)
        crew__chan_q_push(op->dir == CREW_SELECT_SEND ? &ch->sendq : &ch->recvq, crew__op_node(op));
    crew__chan_unlock(ch);
    return ready;
}

int crew__locked_close(crew_chan_t *ch)
{
    int rc = 0;
    crew__chan_node_t *wakes = NULL;
    crew__chan_lock(ch);
    if (ch->closed)
        rc = CREW_CHAN_CLOSED;
    else
        close_locked(ch, &wakes);
    crew__chan_unlock(ch);
    crew__chan_wake(wakes);
    return rc;
}

void crew__locked_drain(crew_chan_t *ch)
{
    size_t rd = ch->rd;
    for (crew__chan_blk_t *b = ch->first; b && ch->count; b = b->next, rd = 0) {
        size_t end = b == ch->last ? ch->wr : ch->blk_items;
        for (; rd < end && ch->count; rd++, ch->count--)
            if (ch->item_free)
                ch->item_free(b->items + rd * ch->elem_size, ch->item_free_ctx);
    }
    crew__chan_blk_t *b = ch->first;
    while (b) {
        crew__chan_blk_t *next = b->next;
        crew__free(b, blk_bytes(ch), 16);
        b = next;
    }
    if (ch->spare)
        crew__free(ch->spare, blk_bytes(ch), 16);
}
