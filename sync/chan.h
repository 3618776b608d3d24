/* Channels, internal: the channel object, the wait queues and the interface
 * between the generic part (chan.c, select.c) and the two implementations
 * (chan_ring.c: the lock-free bounded ring; chan_locked.c: rendezvous,
 * unbounded and oneshot under the channel's spin lock).
 *
 * Waiting (select.c). Every waiting operation, a plain send or receive
 * included, is a select: a context on the waiter's stack (a park.h waiter
 * plus a `selected` word) and one wait-queue node per operation, kept in the
 * operation's crew_select_op_t. A peer that makes progress for a waiter
 * claims it by CASing `selected` from WAITING to a token naming the
 * operation, so at most one operation of a select is ever claimed; the
 * waiter itself can only abort (WAITING -> ABORTED) when it stops waiting for
 * another reason (cancel, deadline, readiness seen while registering). A
 * single-operation wait (`single`) has one node in one queue: whoever
 * unlinks it under that channel's lock owns it, so the claimer just stores
 * its token and the waiter aborts by unlinking its node under the lock.
 *
 * A claim is made under the claimed node's channel lock, which also unlinks
 * the node; the claimer completes what it owes (copies the item) before it
 * unlocks, and wakes the waiter only after unlocking (crew__chan_wake). So a
 * waiter whose READY wake won knows the claimer is done with the channel and
 * with its stack: it returns without taking any lock for the claimed
 * operation (park.h rule 4 holds because the claimer unlinked it). If the
 * claimer's wake lost (the waiter woke for a cancel or a deadline first),
 * the claimer sets `released` as its very last access, and the waiter waits
 * for that before it returns. Nodes of the other operations of a select are
 * unlinked by the waiter, under their channels' locks.
 *
 * Two kinds of claim:
 *   - DONE: the claimer completed the operation (copied the item to or from
 *     the waiter's buffer, or found the channel closed, and set status); the
 *     waiter returns it even if it was cancelled at the same moment (the item
 *     is never lost: the cancellation stays pending). Every claim of the
 *     locked flavour, and the ring's hand-offs (chan_ring.c).
 *   - RETRY (chan_ring.c): the ring changed in a way that may let the
 *     operation succeed; the waiter retries it. A waiter that wakes for a
 *     cancel or a deadline instead passes the hint on to the next waiter of
 *     that queue, so a notification is never swallowed. */
#ifndef CREW_SYNC_CHAN_H
#define CREW_SYNC_CHAN_H

#include <crew/chan.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "internal.h"
#include "list.h"
#include "park.h"
#include "scheduler.h"

/* A select's waiting context (on the waiter's stack). */
typedef struct crew__sel {
    crew__waiter_t w;
    /* WAITING, ABORTED, or a claim: the address of the claimed op ORed with
     * SEL_DONE for a DONE claim. Written by CAS only: by claimers (under the
     * claimed node's channel lock) and by the waiter (abort). */
    _Atomic uintptr_t selected;
    /* Set by a claimer whose wake lost, after its last access (chan.c). */
    _Atomic uint32_t released;
    /* One operation (every plain send and receive): its node is in one
     * queue only, so unlinking it under that channel's lock is the claim,
     * and neither side needs the CAS on selected (select.c, step 4). */
    bool single;
} crew__sel_t;

#define CREW_SEL_WAITING ((uintptr_t)0)
#define CREW_SEL_ABORTED ((uintptr_t)1)
#define CREW_SEL_DONE ((uintptr_t)2)

/* A wait-queue node; lives in crew_select_op_t.internal. All fields under
 * the channel's lock, except that a claimed node's link.next chains it to
 * the claimer's list of wakes (crew__chan_wake). */
typedef struct crew__chan_node {
    crew__link_t link;
    crew__sel_t *sel;
    uintptr_t linked;
} crew__chan_node_t;

_Static_assert(sizeof(crew__chan_node_t) <= sizeof(((crew_select_op_t *)0)->internal),
               "crew__chan_node_t must fit in crew_select_op_t.internal");

static inline crew__chan_node_t *crew__op_node(crew_select_op_t *op)
{
    return (crew__chan_node_t *)(void *)op->internal;
}

static inline crew_select_op_t *crew__node_op(crew__chan_node_t *n)
{
    return (crew_select_op_t *)(void *)((char *)n - offsetof(crew_select_op_t, internal));
}

static inline crew__chan_node_t *crew__chan_node_of(crew__link_t *l)
{
    return l ? CREW_CONTAINER_OF(l, crew__chan_node_t, link) : NULL;
}

/* A FIFO of waiting operations of one direction. */
typedef struct crew__chan_q {
    crew__list_t list; /* Under the channel lock. */
    /* Nodes queued: written under the lock, read without it by the ring's
     * "anyone waiting?" checks (chan_ring.c has the ordering argument). */
    _Atomic size_t nwait;
} crew__chan_q_t;

enum crew__chan_kind {
    CREW_CHAN_RING = 1,   /* Bounded: chan_ring.c. */
    CREW_CHAN_LOCKED = 2, /* Rendezvous, unbounded, oneshot: chan_locked.c. */
};

/* A block of the locked flavour's item FIFO. */
typedef struct crew__chan_blk {
    struct crew__chan_blk *next;
    _Alignas(16) unsigned char items[];
} crew__chan_blk_t;

struct crew_chan_s {
    /* Read-only after creation. What every operation reads comes first, in
     * one cache line: a second line here was one more miss per operation
     * when many channels are in use (ping_pong's 2,000). */
    size_t elem_size;
    size_t capacity;
    unsigned kind;
    unsigned flags;
    /* Ring: slot stride, slot array, and the lap encoding (chan_ring.c). */
    size_t stride;
    unsigned char *slots;
    size_t mark_bit, one_lap;
    /* Used at creation and destruction only. */
    crew_chan_item_free_t item_free;
    void *item_free_ctx;
    /* Locked flavour: items per block. */
    size_t blk_items;

    /* Ring positions, each on its own line: head is the receivers', tail the
     * senders' (with the closed mark bit). */
    _Alignas(CREW_CACHELINE) _Atomic size_t head;
    _Alignas(CREW_CACHELINE) _Atomic size_t tail;

    /* Spin lock guarding the queues and the locked flavour's state. */
    _Alignas(CREW_CACHELINE) _Atomic uint32_t lock;
    crew__chan_q_t sendq, recvq;
    /* Locked flavour state, under lock. */
    crew__chan_blk_t *first, *last, *spare;
    size_t count;      /* Buffered items. */
    size_t rd, wr;     /* Read index in first, write index in last. */
    bool closed;       /* The ring keeps its closed flag in tail instead. */
};

_Static_assert(offsetof(struct crew_chan_s, one_lap) + sizeof(size_t) <= CREW_CACHELINE,
               "a channel's hot read-only fields must share its first cache line");

/* The channel lock. Unlike crew__spin_lock it yields (crew__pause_round).
 * Critical sections are a few dozen instructions; wakes come after the
 * unlock. */
/* One attempt: true if it took the lock. seq_cst: a waiter's lock is part
 * of the ring's no-lost-wakeup argument (chan_ring.c; the same instruction
 * as acquire on x86). Acquire: pairs with the release in crew__chan_unlock. */
static inline bool crew__chan_trylock(crew_chan_t *ch)
{
    return !atomic_exchange_explicit(&ch->lock, 1, memory_order_seq_cst);
}

/* Take the lock after a failed crew__chan_trylock. Out of line, keeping
 * its yield call out of the callers' frames. */
void crew__chan_lock_slow(crew_chan_t *ch);

static inline void crew__chan_lock(crew_chan_t *ch)
{
    if (crew__unlikely(!crew__chan_trylock(ch)))
        crew__chan_lock_slow(ch);
}

static inline void crew__chan_unlock(crew_chan_t *ch)
{
    atomic_store_explicit(&ch->lock, 0, memory_order_release);
}

/* Copy one item (sizes 8 and 16 inline: the common u64 and pointer pair). */
static inline void crew__chan_copy(void *dst, const void *src, size_t n)
{
    if (n == 8)
        memcpy(dst, src, 8);
    else if (n == 16)
        memcpy(dst, src, 16);
    else
        memcpy(dst, src, n);
}

/* ---- Wait queues; the channel lock is held. ---- */
/* Queue n. */
static inline void crew__chan_q_push(crew__chan_q_t *q, crew__chan_node_t *n)
{
    crew__list_push_back(&q->list, &n->link);
    n->linked = 1;
    /* Relaxed: the ring's readers outside the lock order it through the
     * lock word (chan_ring.c, "No lost wakeup"). */
    atomic_store_explicit(&q->nwait, atomic_load_explicit(&q->nwait, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline void crew__chan_q_remove(crew__chan_q_t *q, crew__chan_node_t *n)
{
    crew__list_remove(&q->list, &n->link);
    n->linked = 0;
    atomic_store_explicit(&q->nwait, atomic_load_explicit(&q->nwait, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}
/* Pop nodes until one's select is claimed with token (| the op address);
 * returns that node, or NULL when the queue ran out. Nodes whose claim
 * failed belong to selects that stopped waiting; they are dropped. A
 * claimed node must reach crew__chan_wake (after the unlock) exactly once.
 * Inline: every hand-off and notification makes one. */
static inline crew__chan_node_t *crew__chan_q_claim(crew__chan_q_t *q, uintptr_t flag)
{
    crew__chan_node_t *n;
    while ((n = crew__chan_node_of(q->list.head))) {
        crew__chan_q_remove(q, n);
        if (n->sel->single) {
            /* Unlinking it was the claim (chan.h). Relaxed: the waiter reads
             * it after our wake (its acquire) or after taking this lock. */
            atomic_store_explicit(&n->sel->selected, (uintptr_t)crew__node_op(n) | flag,
                                  memory_order_relaxed);
            return n;
        }
        uintptr_t expect = CREW_SEL_WAITING;
        /* acq_rel: one total order with the waiter's abort CAS decides who
         * owns the select; what the claimer then copies reaches the waiter
         * through the wake (or `released`), both released after the copy. */
        if (atomic_compare_exchange_strong_explicit(&n->sel->selected, &expect,
                                                    (uintptr_t)crew__node_op(n) | flag,
                                                    memory_order_acq_rel, memory_order_relaxed))
            return n;
    }
    return NULL;
}

/* Add a claimed node to a list of wakes (lock held). */
static inline void crew__chan_defer(crew__chan_node_t **list, crew__chan_node_t *n)
{
    n->link.next = *list ? &(*list)->link : NULL;
    *list = n;
}

/* Wake the waiter of one claimed node; call it after unlocking, and touch
 * neither the channel nor the node afterwards. If the wake loses (the
 * waiter woke for a cancel or a deadline first), `released` is set as the
 * last access instead (top of file). */
static inline void crew__chan_wake_one(crew__chan_node_t *n)
{
    crew__sel_t *sel = n->sel;
    crew__waiter_wake_or_mark(&sel->w, CREW_WAKE_READY, &sel->released);
}
/* The same for a list of claimed nodes (crew__chan_defer). */
void crew__chan_wake(crew__chan_node_t *list);
/* Whether q holds a node whose select still waits and is not self. */
bool crew__chan_q_has_other(const crew__chan_q_t *q, const crew__sel_t *self);

/* ---- Per-flavour operations (chan_ring.c, chan_locked.c). ---- */
/* Complete a send/receive without waiting: 0, -EAGAIN, CREW_CHAN_CLOSED,
 * -ENOMEM. */
int crew__ring_try_send(crew_chan_t *ch, const void *item);
int crew__ring_try_recv(crew_chan_t *ch, void *item);
int crew__locked_try_send(crew_chan_t *ch, const void *item);
int crew__locked_try_recv(crew_chan_t *ch, void *item);
/* Queue op's node (op->chan == ch) for its select; returns true if the
 * operation may be able to complete now (then the caller aborts its wait
 * and retries). */
bool crew__locked_register(crew_chan_t *ch, crew_select_op_t *op, crew__sel_t *sel);
/* The ring's registration: the waiter's half of chan_ring.c's "No lost
 * wakeup" (the lock's seq_cst exchange, then seq_cst loads of the
 * positions). Here, inline, because every ring wait makes it. */
static inline bool crew__ring_register(crew_chan_t *ch, crew_select_op_t *op)
{
    bool send = op->dir == CREW_SELECT_SEND;
    crew__chan_lock(ch);
    crew__chan_q_push(send ? &ch->sendq : &ch->recvq, crew__op_node(op));
    crew__chan_unlock(ch);
    size_t tail = atomic_load_explicit(&ch->tail, memory_order_seq_cst);
    size_t head = atomic_load_explicit(&ch->head, memory_order_seq_cst);
    if (tail & ch->mark_bit)
        return true;
    return send ? head + ch->one_lap != tail : tail != head;
}
/* Wake one waiter of q, if any, with a RETRY claim (the ring's
 * notification); takes the lock. */
void crew__ring_notify(crew_chan_t *ch, crew__chan_q_t *q);
/* Close: 0, or CREW_CHAN_CLOSED if it already was. */
int crew__ring_close(crew_chan_t *ch);
int crew__locked_close(crew_chan_t *ch);
size_t crew__ring_len(const crew_chan_t *ch);
/* Destroy helpers: run item_free over what is buffered, free the storage. */
void crew__ring_drain(crew_chan_t *ch);
void crew__locked_drain(crew_chan_t *ch);

/* The waiting part of a plain send or receive by self (NULL: a plain
 * thread), as a one-operation select (select.c); arguments already
 * validated, the fast path already failed once. Returns the status the call
 * returns. Out of line, with the operation's record in its own frame: the
 * fast path keeps a small frame, and a parked task a shallow stack. */
int crew__chan_wait(crew_chan_t *ch, int dir, void *item, crew_task_t *self);

/* The check every waiting channel call makes first, even when it need not
 * wait (as crew_join does): -ECANCELED, -ETIMEDOUT or 0; 0 on a plain thread. */
static inline int crew__chan_suspend_check(crew_task_t *self)
{
    return self ? crew__suspend_check(self) : 0;
}

/* A plain send or receive on a ring by self (NULL: a plain thread), after
 * the argument and suspension checks: the attempt and, if it must, the wait
 * (crew__chan_wait). Returns what crew_chan_send / crew_chan_recv return. */
int crew__ring_send(crew_chan_t *ch, const void *item, crew_task_t *self);
int crew__ring_recv(crew_chan_t *ch, void *item, crew_task_t *self);

/* Try a send or receive without waiting. */
static inline int crew__chan_try(crew_chan_t *ch, int dir, void *item)
{
    if (dir == CREW_SELECT_SEND)
        return ch->kind == CREW_CHAN_RING ? crew__ring_try_send(ch, item)
                                          : crew__locked_try_send(ch, item);
    return ch->kind == CREW_CHAN_RING ? crew__ring_try_recv(ch, item)
                                      : crew__locked_try_recv(ch, item);
}

static inline int crew__chan_try_op(crew_select_op_t *op)
{
    return crew__chan_try(op->chan, op->dir, op->item);
}

#endif
