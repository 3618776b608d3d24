/* crew: channels and select.
 *
 * A channel carries fixed-size items, copied by value (elem_size bytes: a
 * u64, a pointer, a small struct), between any mix of crew tasks and plain
 * threads. Four flavours, chosen at creation:
 *   - bounded (capacity 1 .. CREW_CHAN_MAX_CAPACITY): a lock-free ring; a send
 *     or receive that does not have to wait takes no lock and allocates
 *     nothing;
 *   - unbounded (CREW_CHAN_UNBOUNDED): sends never wait (memory is the limit,
 *     so an unbounded channel is an out-of-memory risk: prefer a bound for
 *     backpressure);
 *   - rendezvous (capacity 0): a send completes only when a receiver takes
 *     the item (Go's unbuffered channel);
 *   - oneshot (CREW_CHAN_ONESHOT): one item, one successful send, after which
 *     the channel is closed (Tokio's oneshot).
 *
 * Capacity 0 means rendezvous, as in Go; it never means "unbounded" (as
 * asyncio's maxsize=0 does): ask for CREW_CHAN_UNBOUNDED by name.
 *
 * Waiting calls (crew_chan_send, crew_chan_recv, crew_select) park the
 * calling task, or block the calling thread when it is not a crew task. They
 * are cancellation points and honour deadline scopes (time.h). Whatever a
 * waiting call returns, an item is either delivered exactly once or stays
 * with its sender: a cancelled receive never drops an item, and a send that
 * returns an error never enqueued its item.
 *
 * Closing: crew_chan_close() makes every later send, and every send waiting,
 * fail with CREW_CHAN_CLOSED (-EPIPE). Receivers first drain what is
 * buffered, then get CREW_CHAN_CLOSED too. Closing is the graceful end of a
 * producer/consumer pipeline: the producer closes, consumers run until they
 * see the closed code. */
#ifndef CREW_CHAN_H
#define CREW_CHAN_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <crew/export.h>

CREW_BEGIN_DECLS

/** A channel: opaque, heap-allocated by crew_chan_create(). */
typedef struct crew_chan_s crew_chan_t;

/** Capacity of an unbounded channel. */
#define CREW_CHAN_UNBOUNDED SIZE_MAX
/** Largest capacity of a bounded channel (2^32 - 1 on 64-bit systems). */
#define CREW_CHAN_MAX_CAPACITY (((size_t)1 << (sizeof(size_t) * 4)) - 1)
/** Largest item size in bytes. */
#define CREW_CHAN_MAX_ELEM ((size_t)65536)
/** What operations on a closed channel return. */
#define CREW_CHAN_CLOSED (-EPIPE)

/** Flag of crew_chan_opts_t: a oneshot channel (capacity must be 1). */
#define CREW_CHAN_ONESHOT 1u

/** Runs once for every item still inside a channel that is destroyed; @p
 *  item points at the item's elem_size bytes (valid during the call only). */
typedef void (*crew_chan_item_free_t)(void *item, void *ctx);

/** Channel options. Initialise with CREW_CHAN_OPTS_INIT. */
typedef struct crew_chan_opts_s {
    size_t size;                     /**< sizeof(crew_chan_opts_t). */
    unsigned flags;                  /**< 0 or CREW_CHAN_ONESHOT. */
    crew_chan_item_free_t item_free; /**< NULL: items left at destroy are just dropped. */
    void *item_free_ctx;             /**< Passed to item_free. */
    void *reserved[4];               /**< Must be zero. */
} crew_chan_opts_t;

#define CREW_CHAN_OPTS_INIT { sizeof(crew_chan_opts_t), 0, NULL, NULL, { 0, 0, 0, 0 } }

/**
 * Create a channel of items of @p elem_size bytes.
 *
 * @param capacity  0 (rendezvous), 1 .. CREW_CHAN_MAX_CAPACITY (bounded), or
 *                  CREW_CHAN_UNBOUNDED; 1 with CREW_CHAN_ONESHOT.
 * @param opts      NULL for defaults.
 * @param out       Receives the channel; the caller owns it and frees it with
 *                  crew_chan_destroy().
 * @return 0; -EINVAL if @p out is NULL, @p elem_size is 0 or above
 *         CREW_CHAN_MAX_ELEM, @p capacity is above CREW_CHAN_MAX_CAPACITY
 *         (and not CREW_CHAN_UNBOUNDED), or @p opts is invalid; -EOVERFLOW
 *         if the ring's size in bytes does not fit in size_t; -ENOMEM.
 * Never suspends. Callable from any thread. A bounded channel allocates its
 * whole ring here; sends and receives then allocate nothing (an unbounded
 * channel allocates a block every few dozen items).
 */
CREW_EXPORT CREW_NODISCARD int crew_chan_create(size_t elem_size, size_t capacity,
                                                const crew_chan_opts_t *opts, crew_chan_t **out);

/**
 * Destroy @p chan: run the item_free hook (if any) exactly once for every
 * item still inside, in order, then free the channel.
 *
 * Nobody may use the channel during or after the call. A task or thread
 * still waiting in it is a bug the call detects: close the channel and let
 * the waiters leave first.
 * @return 0; -EINVAL if @p chan is NULL; -EBUSY (nothing freed) if a task or
 *         thread still waits in it.
 * Never suspends.
 */
CREW_EXPORT int crew_chan_destroy(crew_chan_t *chan);

/**
 * Close @p chan: later sends, and sends waiting now, fail with
 * CREW_CHAN_CLOSED; receivers drain the buffered items, then get it too.
 * Every waiting task and thread is woken.
 * @return 0; -EINVAL if @p chan is NULL; CREW_CHAN_CLOSED if it was already
 *         closed (closing twice is harmless).
 * Never suspends. Callable from any thread, concurrently with every other
 * channel operation.
 */
CREW_EXPORT int crew_chan_close(crew_chan_t *chan);

/**
 * Send the elem_size bytes at @p item, waiting while the channel is full (a
 * rendezvous send waits until a receiver has taken the item).
 *
 * @return 0 once the item is in the channel (or taken); CREW_CHAN_CLOSED if
 *         the channel is closed before the item went in; -ECANCELED if the
 *         calling task is cancelled, -ETIMEDOUT if its deadline scope
 *         expires (both outside a shield region, checked even when the send
 *         would not wait: the item then was not sent); -ENOMEM if an
 *         unbounded channel cannot grow; -EINVAL if @p chan or @p item is
 *         NULL. On every error the item was not sent.
 * Suspends; a cancellation point. From a plain thread, blocks it.
 * Thread-safe (any number of senders and receivers).
 */
CREW_EXPORT CREW_NODISCARD int crew_chan_send(crew_chan_t *chan, const void *item);

/**
 * Receive one item into the elem_size bytes at @p item, waiting while the
 * channel is empty.
 *
 * @return 0 with the item copied; CREW_CHAN_CLOSED when the channel is
 *         closed and empty; -ECANCELED / -ETIMEDOUT as crew_chan_send (no item
 *         was taken: an item handed to a receiver that is cancelled at the
 *         same moment is delivered, with 0, and the cancellation is reported
 *         at the next suspension point); -EINVAL if @p chan or @p item is NULL.
 * Suspends; a cancellation point. From a plain thread, blocks it.
 * Thread-safe.
 */
CREW_EXPORT CREW_NODISCARD int crew_chan_recv(crew_chan_t *chan, void *item);

/**
 * Send without waiting.
 * @return 0; -EAGAIN if the channel is full (a rendezvous channel: no
 *         receiver is waiting); CREW_CHAN_CLOSED; -ENOMEM (unbounded);
 *         -EINVAL if @p chan or @p item is NULL.
 * Never suspends; not a cancellation point. Lock-free on a bounded channel.
 */
CREW_EXPORT CREW_NODISCARD int crew_chan_try_send(crew_chan_t *chan, const void *item);

/**
 * Receive without waiting.
 * @return 0; -EAGAIN if the channel is empty (a rendezvous channel: no
 *         sender is waiting); CREW_CHAN_CLOSED if closed and empty; -EINVAL.
 * Never suspends; not a cancellation point. Lock-free on a bounded channel.
 */
CREW_EXPORT CREW_NODISCARD int crew_chan_try_recv(crew_chan_t *chan, void *item);

/** Items buffered in @p chan right now (a snapshot: other threads may change
 *  it at once); 0 for NULL or a rendezvous channel. Never suspends. */
CREW_EXPORT size_t crew_chan_len(const crew_chan_t *chan);

/*
 * Select: wait for the first of several channel operations (Go's select).
 */

/** Direction of a select operation. */
#define CREW_SELECT_SEND 1
#define CREW_SELECT_RECV 2
/** Flag of crew_select(): do not wait (Go's default case). */
#define CREW_SELECT_NONBLOCK 1

/** One operation of a select. The caller fills chan, dir and item; crew
 *  fills status for the operation that completed. */
typedef struct crew_select_op_s {
    crew_chan_t *chan; /**< NULL: the operation is disabled (never chosen). */
    int dir;           /**< CREW_SELECT_SEND or CREW_SELECT_RECV. */
    int status;        /**< Out: 0, or CREW_CHAN_CLOSED if the chosen op found the channel closed. */
    void *item;        /**< Send: the item to send; receive: where to copy the item. */
    void *internal[4]; /**< Private to crew (the operation's wait-list link). */
} crew_select_op_t;

/**
 * Complete exactly one of the @p n operations @p ops, waiting until one can.
 *
 * An operation can complete when its send or receive would not wait, or
 * when its channel is closed (status CREW_CHAN_CLOSED; a receive first
 * drains the buffered items). When several can, the choice is random, so
 * no operation starves. The ops array lives on the caller's side and must
 * stay valid and unchanged during the call.
 *
 * @param flags  0, or CREW_SELECT_NONBLOCK: return -EAGAIN at once if no
 *               operation can complete.
 * @return the index of the completed operation (its status says whether it
 *         transferred an item); -EAGAIN (NONBLOCK only); -ECANCELED /
 *         -ETIMEDOUT as crew_chan_send (no operation completed); -ENOMEM
 *         (a send on an unbounded channel could not grow it); -EINVAL if
 *         @p ops is NULL, @p n is 0 or every operation is disabled (without
 *         NONBLOCK), an enabled operation has a bad dir or a NULL item, or
 *         @p flags is unknown.
 * Suspends unless NONBLOCK; a cancellation point (with NONBLOCK it never
 * suspends and is not one). From a plain thread, blocks it.
 */
CREW_EXPORT CREW_NODISCARD int crew_select(crew_select_op_t *ops, size_t n, int flags);

CREW_END_DECLS

#endif
