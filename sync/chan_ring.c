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
 * Hand-offs. A sender that finds a receiver waiting on an empty ring gives
 * it the item directly (a DONE claim, chan.h): no slot, no retry, and the
 * woken receiver returns at once. A receiver that frees a slot while a
 * sender waits pushes that sender's item for it (DONE; RETRY if the ring
 * filled up again meanwhile, so the sender tries itself). The direct
 * hand-off is linearizable: under the lock, head then tail are read and
 * found equal, so the ring was empty at the tail read (below), and the
 * claimed receiver was waiting then; send and receive take effect there.
 *
 * No lost wakeup. A waiter takes the channel lock (a seq_cst exchange L),
 * queues its node and counts itself in nwait (a plain store), unlocks, and
 * then looks at head/tail again with seq_cst loads P (crew__ring_register,
 * in chan.h: inlined into the wait).
 * Every successful push or pop moves tail or head with a seq_cst CAS C and
 * then looks for waiters (may_owe_wake, then waiters_after_move if the lock
 * was held or someone is counted): a seq_cst load K of the lock word,
 * waiting for it to read unlocked, then a load of nwait. In the
 * single total order S of seq_cst operations, either P comes after C, and
 * the waiter sees the item or free slot and aborts its wait; or P comes
 * before C, and then L < P < C < K in S, so K reads L's value or a later
 * one of the lock word: held (the operation waits for the unlock), or an
 * unlock that comes after L. Reading an unlock, with acquire, makes the
 * waiter's critical section (its nwait store) happen before the nwait load,
 * which then sees the waiter counted (or a later value, by another waiter
 * that is found as well, or by the claim or abort that ended its wait). So
 * either the waiter aborts, or the operation sees nwait > 0, takes the
 * lock, finds the node and claims it. The waiter pays one locked
 * instruction (the lock) and the operation none: on x86 the seq_cst CAS and
 * loads cost what relaxed ones do, and the lock word shares nwait's line.
 *
 * Linearizable "empty" and "full". A position is read with acquire (it was
 * written by a seq_cst CAS, which thereby precedes everything after the
 * read in S), the other position with a seq_cst load; head <= tail always.
 * So if head read h, then tail read h, tail was h and head at least h at the
 * tail read: the ring was empty at that point of S (and symmetrically full). */
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

/* A lost CAS on a position: another core just moved it. Retrying at once
 * pulls the line straight back and both cores stall on it; pausing, 1 to
 * 64 pauses growing with each loss, lets the winner go on with the line in
 * its cache. channel_mpmc (2 workers, both often running senders, or both
 * receivers): median 10 -> 17 M msgs/s in alternating runs. */
static __attribute__((noinline, cold)) void cas_backoff(unsigned *fails)
{
    unsigned n = 1u << (*fails < 6 ? *fails : 6);
    (*fails)++;
    for (unsigned i = 0; i < n; i++)
        crew__cpu_relax();
}

/* Another thread is between its claim and its stamp store on the slot we
 * need: spin briefly (it is a few instructions away), then let the OS run
 * it in case it was preempted. */
static __attribute__((noinline, cold)) void backoff(unsigned *spins)
{
    if (*spins < 6) {
        for (unsigned i = 0; i < (1u << *spins); i++)
            crew__cpu_relax();
        (*spins)++;
    } else {
        sched_yield();
    }
}

/* What one attempt at a position can end in besides 0, -EAGAIN and
 * CREW_CHAN_CLOSED: another party won the position's CAS (LOST), or is
 * between its claim of the slot and its stamp store (BUSY). Either way the
 * caller retries, in the out-of-line loop below. */
#define RING_LOST 1
#define RING_BUSY 2

/* One push attempt at *tail (updated to the current tail on LOST and BUSY).
 * size: ch->elem_size, or that value as a constant, for a copy without a
 * call (ring_send and ring_recv pass 8 when it is 8). */
static inline __attribute__((always_inline)) int push_at(crew_chan_t *ch, size_t *tail,
                                                         const void *item, size_t size)
{
    const size_t mark = ch->mark_bit, lap_len = ch->one_lap;
    size_t t = *tail;
    if (t & mark)
        return CREW_CHAN_CLOSED;
    unsigned char *slot = slot_at(ch, t, mark);
    /* Acquire: pairs with the release stamp store of the receiver that
     * emptied this slot, so its copy-out precedes our copy-in. */
    size_t stamp = atomic_load_explicit(stamp_of(slot), memory_order_acquire);
    if (stamp == t) {
        /* seq_cst: C of "No lost wakeup" (top of file). Acquire on failure:
         * the new tail is read as above. */
        if (!atomic_compare_exchange_weak_explicit(&ch->tail, tail, next_pos(ch, t),
                                                   memory_order_seq_cst, memory_order_acquire))
            return RING_LOST;
        crew__chan_copy(data_of(slot), item, size);
        /* Release: pairs with the receiver's acquire stamp load. */
        atomic_store_explicit(stamp_of(slot), t + 1, memory_order_release);
        return 0;
    }
    if (stamp + lap_len == t + 1) {
        /* The slot still holds last lap's item: full, unless head moved
         * (the seq_cst read of "Linearizable", top of file). */
        size_t head = atomic_load_explicit(&ch->head, memory_order_seq_cst);
        if (head + lap_len == t)
            return -EAGAIN;
    }
    *tail = atomic_load_explicit(&ch->tail, memory_order_acquire);
    return RING_BUSY;
}

/* One pop attempt at *head (updated to the current head on LOST and BUSY);
 * size as for push_at. */
static inline __attribute__((always_inline)) int pop_at(crew_chan_t *ch, size_t *head,
                                                        void *item, size_t size)
{
    const size_t mark = ch->mark_bit;
    size_t h = *head;
    unsigned char *slot = slot_at(ch, h, mark);
    /* Acquire: pairs with the sender's release stamp store (the item). */
    size_t stamp = atomic_load_explicit(stamp_of(slot), memory_order_acquire);
    if (stamp == h + 1) {
        /* seq_cst, acquire on failure: as in push_at. */
        if (!atomic_compare_exchange_weak_explicit(&ch->head, head, next_pos(ch, h),
                                                   memory_order_seq_cst, memory_order_acquire))
            return RING_LOST;
        crew__chan_copy(item, data_of(slot), size);
        /* Release: pairs with the next lap's sender's acquire load. */
        atomic_store_explicit(stamp_of(slot), h + ch->one_lap, memory_order_release);
        return 0;
    }
    if (stamp == h) {
        /* Nothing published here yet: empty, unless tail moved (a sender
         * between its claim and its stamp store). */
        size_t tail = atomic_load_explicit(&ch->tail, memory_order_seq_cst);
        if ((tail & ~mark) == h)
            return (tail & mark) ? CREW_CHAN_CLOSED : -EAGAIN;
    }
    *head = atomic_load_explicit(&ch->head, memory_order_acquire);
    return RING_BUSY;
}

/* The retries after a first push (push) or pop attempt at pos ended LOST or
 * BUSY (rc), with their backoffs: out of line, so the first attempt stays a
 * small leaf. item is only read for a push. */
static __attribute__((noinline)) int ring_contended(crew_chan_t *ch, size_t pos, void *item,
                                                    int rc, bool push)
{
    unsigned spins = 0, fails = 0;
    do {
        if (rc == RING_LOST)
            cas_backoff(&fails);
        else
            backoff(&spins);
        rc = push ? push_at(ch, &pos, item, ch->elem_size) : pop_at(ch, &pos, item, ch->elem_size);
    } while (rc > 0);
    return rc;
}

/* The lock-free push: 0, -EAGAIN (full) or CREW_CHAN_CLOSED; wakes nobody. */
static inline __attribute__((always_inline)) int ring_push(crew_chan_t *ch, const void *item)
{
    size_t tail = atomic_load_explicit(&ch->tail, memory_order_acquire);
    int rc = push_at(ch, &tail, item, ch->elem_size);
    /* The cast serves the shared retry loop, which only reads a push's item. */
    return crew__likely(rc <= 0) ? rc : ring_contended(ch, tail, (void *)item, rc, true);
}

/* Whether q has waiters, after a successful push or pop moved a position
 * with its seq_cst CAS ("No lost wakeup", top of file). */
static inline bool waiters_after_move(crew_chan_t *ch, crew__chan_q_t *q)
{
    unsigned spins = 0;
    /* seq_cst: K of "No lost wakeup"; acquire for the unlock it reads.
     * Another party's critical section is a few dozen instructions. */
    while (atomic_load_explicit(&ch->lock, memory_order_seq_cst))
        crew__pause_round(&spins);
    /* Relaxed: ordered by the acquire above. */
    return atomic_load_explicit(&q->nwait, memory_order_relaxed) != 0;
}

/* A sender waits and we just freed a slot: push its item for it. */
static __attribute__((noinline)) void take_from_sender(crew_chan_t *ch)
{
    crew__chan_node_t *wakes = NULL;
    crew__chan_lock(ch);
    crew__chan_node_t *n = crew__chan_q_claim(&ch->sendq, CREW_SEL_DONE);
    if (n) {
        crew__chan_defer(&wakes, n);
        crew_select_op_t *op = crew__node_op(n);
        int rc = ring_push(ch, op->item);
        if (rc == -EAGAIN) {
            /* Full again (a sender on the fast path took the slot): a RETRY
             * claim instead. Relaxed: the wake publishes it. */
            atomic_store_explicit(&n->sel->selected, (uintptr_t)op, memory_order_relaxed);
        } else {
            op->status = rc;
            /* This push owes the receivers the check every push makes
             * (crew__ring_try_send); the lock is already held. */
            crew__chan_node_t *r;
            if (rc == 0 && atomic_load_explicit(&ch->recvq.nwait, memory_order_relaxed) &&
                (r = crew__chan_q_claim(&ch->recvq, 0)))
                crew__chan_defer(&wakes, r);
        }
    }
    crew__chan_unlock(ch);
    crew__chan_wake(wakes);
}

/* ---- Send and receive: one attempt, then (wait) the wait ----
 *
 * Shaped so that the common outcomes (done, nobody to wake; or must wait)
 * end in a return or a tail call: the entry points then save no registers.
 * Everything that needs more (a waiter to hand to or wake, a lost race)
 * goes out of line. A plain send or receive waits by tail-calling
 * crew__chan_wait; the try-variants and select pass wait = false. */

/* After a successful push or pop: whether it may owe the other side a
 * wake. The lock word first, with seq_cst: K of "No lost wakeup" (top of
 * file); seen unlocked, it also orders the nwait read after the critical
 * section it read the unlock of. Held, the out-of-line check waits for it. */
static inline bool may_owe_wake(crew_chan_t *ch, crew__chan_q_t *q)
{
    return atomic_load_explicit(&ch->lock, memory_order_seq_cst) ||
           atomic_load_explicit(&q->nwait, memory_order_relaxed);
}

/* A push owed a wake: notify a waiting receiver. Returns the send's 0. */
static __attribute__((noinline)) int wake_after_push(crew_chan_t *ch)
{
    if (waiters_after_move(ch, &ch->recvq))
        crew__ring_notify(ch, &ch->recvq);
    return 0;
}

/* A pop owed a wake: take a waiting sender's item. Returns the receive's 0. */
static __attribute__((noinline)) int wake_after_pop(crew_chan_t *ch)
{
    if (waiters_after_move(ch, &ch->sendq))
        take_from_sender(ch);
    return 0;
}

/* The end of a send whose push ended in rc (0, -EAGAIN, CREW_CHAN_CLOSED). */
static inline __attribute__((always_inline)) int send_end(crew_chan_t *ch, const void *item,
                                                          int rc, bool wait, crew_task_t *self)
{
    if (crew__likely(rc == 0))
        return may_owe_wake(ch, &ch->recvq) ? wake_after_push(ch) : 0;
    if (rc == -EAGAIN && wait)
        /* The cast serves the shared op record; a send only reads it. */
        return crew__chan_wait(ch, CREW_SELECT_SEND, (void *)item, self);
    return rc;
}

static inline __attribute__((always_inline)) int recv_end(crew_chan_t *ch, void *item, int rc,
                                                          bool wait, crew_task_t *self)
{
    if (crew__likely(rc == 0))
        return may_owe_wake(ch, &ch->sendq) ? wake_after_pop(ch) : 0;
    if (rc == -EAGAIN && wait)
        return crew__chan_wait(ch, CREW_SELECT_RECV, item, self);
    return rc;
}

/* The retries of a push or pop whose first attempt at pos ended LOST or
 * BUSY (rc), then the end of the operation. */
static __attribute__((noinline)) int send_contended(crew_chan_t *ch, size_t pos, const void *item,
                                                    int rc, bool wait, crew_task_t *self)
{
    rc = ring_contended(ch, pos, (void *)item, rc, true);
    return send_end(ch, item, rc, wait, self);
}

static __attribute__((noinline)) int recv_contended(crew_chan_t *ch, size_t pos, void *item, int rc,
                                                    bool wait, crew_task_t *self)
{
    rc = ring_contended(ch, pos, item, rc, false);
    return recv_end(ch, item, rc, wait, self);
}

/* A send's push of a size-byte item and what follows it. */
static inline __attribute__((always_inline)) int send_push_sized(crew_chan_t *ch, const void *item,
                                                                 bool wait, crew_task_t *self,
                                                                 size_t size)
{
    size_t tail = atomic_load_explicit(&ch->tail, memory_order_acquire);
    int rc = push_at(ch, &tail, item, size);
    if (crew__unlikely(rc > 0))
        return send_contended(ch, tail, item, rc, wait, self);
    return send_end(ch, item, rc, wait, self);
}

/* The same for any size: out of line, as its copy may be a call with the
 * slot still to publish after it (a frame the 8-byte path does without). */
static __attribute__((noinline)) int send_push_any(crew_chan_t *ch, const void *item, bool wait,
                                                   crew_task_t *self)
{
    return send_push_sized(ch, item, wait, self, ch->elem_size);
}

/* A send's push: u64-sized items inline, the others in send_push_any. */
static inline __attribute__((always_inline)) int send_push(crew_chan_t *ch, const void *item,
                                                           bool wait, crew_task_t *self)
{
    if (crew__unlikely(ch->elem_size != 8))
        return send_push_any(ch, item, wait, self);
    return send_push_sized(ch, item, wait, self, 8);
}

/* The end of a hand-off claimed under the lock: copy the size-byte item
 * into the receiver's buffer, unlock, wake it. */
static inline __attribute__((always_inline)) int hand_over_sized(crew_chan_t *ch,
                                                                 crew__chan_node_t *n,
                                                                 const void *item, size_t size)
{
    crew_select_op_t *op = crew__node_op(n);
    crew__chan_copy(op->item, item, size);
    op->status = 0;
    crew__chan_unlock(ch);
    crew__chan_wake_one(n);
    return 0;
}

/* The same for any size, out of line (see send_push_any). */
static __attribute__((noinline)) int hand_over_any(crew_chan_t *ch, crew__chan_node_t *n,
                                                   const void *item)
{
    return hand_over_sized(ch, n, item, ch->elem_size);
}

/* A receiver was seen waiting, and we hold the lock: if the ring is empty,
 * give it the item directly (a DONE claim); else unlock and push as usual.
 * Shaped like the entry points: every path ends in a tail call, or, for
 * the common 8-byte hand-off, in a wake with nothing live after it, so the
 * caller saves no registers. */
static inline __attribute__((always_inline)) int send_locked(crew_chan_t *ch, const void *item,
                                                             bool wait, crew_task_t *self)
{
    /* Head first, then tail ("Linearizable", top of file). A closed ring
     * has the mark in tail: never equal, so the push reports it. */
    size_t head = atomic_load_explicit(&ch->head, memory_order_acquire);
    size_t tail = atomic_load_explicit(&ch->tail, memory_order_seq_cst);
    crew__chan_node_t *n = tail == head ? crew__chan_q_claim(&ch->recvq, CREW_SEL_DONE) : NULL;
    if (!n) {
        crew__chan_unlock(ch);
        return send_push(ch, item, wait, self);
    }
    if (crew__unlikely(ch->elem_size != 8))
        return hand_over_any(ch, n, item);
    return hand_over_sized(ch, n, item, 8);
}

/* send_to_waiter when the lock was held: wait for it, then the same. */
static __attribute__((noinline)) int send_to_waiter_contended(crew_chan_t *ch, const void *item,
                                                              bool wait, crew_task_t *self)
{
    crew__chan_lock_slow(ch);
    return send_locked(ch, item, wait, self);
}

/* A receiver was seen waiting: hand it the item, or else push as usual. */
static __attribute__((noinline)) int send_to_waiter(crew_chan_t *ch, const void *item, bool wait,
                                                    crew_task_t *self)
{
    if (crew__unlikely(!crew__chan_trylock(ch)))
        return send_to_waiter_contended(ch, item, wait, self);
    return send_locked(ch, item, wait, self);
}

static inline __attribute__((always_inline)) int ring_send(crew_chan_t *ch, const void *item,
                                                           bool wait, crew_task_t *self)
{
    /* Relaxed: a hint only. A receiver queued unseen here is found by
     * the seq_cst check after the push. */
    if (atomic_load_explicit(&ch->recvq.nwait, memory_order_relaxed))
        return send_to_waiter(ch, item, wait, self);
    return send_push(ch, item, wait, self);
}

/* A receive's pop of a size-byte item and what follows it. */
static inline __attribute__((always_inline)) int ring_recv_sized(crew_chan_t *ch, void *item,
                                                                 bool wait, crew_task_t *self,
                                                                 size_t size)
{
    size_t head = atomic_load_explicit(&ch->head, memory_order_acquire);
    int rc = pop_at(ch, &head, item, size);
    if (crew__unlikely(rc > 0))
        return recv_contended(ch, head, item, rc, wait, self);
    return recv_end(ch, item, rc, wait, self);
}

/* The same for any size, out of line (see send_push_any). */
static __attribute__((noinline)) int ring_recv_any(crew_chan_t *ch, void *item, bool wait,
                                                   crew_task_t *self)
{
    return ring_recv_sized(ch, item, wait, self, ch->elem_size);
}

static inline __attribute__((always_inline)) int ring_recv(crew_chan_t *ch, void *item, bool wait,
                                                           crew_task_t *self)
{
    if (crew__unlikely(ch->elem_size != 8))
        return ring_recv_any(ch, item, wait, self);
    return ring_recv_sized(ch, item, wait, self, 8);
}

int crew__ring_try_send(crew_chan_t *ch, const void *item)
{
    return ring_send(ch, item, false, NULL);
}

int crew__ring_try_recv(crew_chan_t *ch, void *item)
{
    return ring_recv(ch, item, false, NULL);
}

int crew__ring_send(crew_chan_t *ch, const void *item, crew_task_t *self)
{
    return ring_send(ch, item, true, self);
}

int crew__ring_recv(crew_chan_t *ch, void *item, crew_task_t *self)
{
    return ring_recv(ch, item, true, self);
}

void crew__ring_notify(crew_chan_t *ch, crew__chan_q_t *q)
{
    crew__chan_node_t *wakes = NULL;
    crew__chan_lock(ch);
    crew__chan_node_t *n = crew__chan_q_claim(q, 0);
    if (n)
        crew__chan_defer(&wakes, n);
    crew__chan_unlock(ch);
    crew__chan_wake(wakes);
}

int crew__ring_close(crew_chan_t *ch)
{
    /* seq_cst: like a successful operation, the mark is ordered before the
     * waiters are looked at; here through the lock: a waiter that queues
     * after our unlock sees the mark in its check, one that queued before
     * is claimed below. */
    if (atomic_fetch_or_explicit(&ch->tail, ch->mark_bit, memory_order_seq_cst) & ch->mark_bit)
        return CREW_CHAN_CLOSED;
    crew__chan_node_t *wakes = NULL, *n;
    crew__chan_lock(ch);
    while ((n = crew__chan_q_claim(&ch->sendq, 0)))
        crew__chan_defer(&wakes, n);
    while ((n = crew__chan_q_claim(&ch->recvq, 0)))
        crew__chan_defer(&wakes, n);
    crew__chan_unlock(ch);
    crew__chan_wake(wakes);
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
