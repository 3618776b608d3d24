/* Select, and the waiting part of every channel send and receive.
 *
 * The protocol (chan.h has the claim rules):
 *  1. Fast path: try every enabled operation once, starting at a random
 *     one (fairness); the first that completes (or finds its channel
 *     closed) is the result.
 *  2. Arm the waiter (crew__waiter_prepare_as, deferred: cancellation and
 *     deadlines are checked there, and a cancel that raced with the arm is
 *     seen by crew__waiter_registered after the registrations), set
 *     selected = WAITING, and queue one node per operation. Each
 *     registration reports whether its operation looks possible now; at the
 *     first that does, stop registering and try to abort (step 4) instead
 *     of waiting (closing the arm, crew__park_close).
 *  3. Wait (crew__waiter_wait: parks a task, with its deadline timer, or
 *     blocks a thread). A READY wake only ever comes from a claim, and
 *     proves the claimer is done with us (chan.h): go to 5.
 *  4. Otherwise abort: CAS selected WAITING -> ABORTED (a single operation:
 *     unlink its node under its channel's lock, chan.h). If it succeeds no
 *     peer will touch us any more once we have unregistered; go back to 1
 *     (or return the cancellation / deadline status). If it fails, a peer
 *     claimed one operation: wait for its `released` mark, then
 *  5. unregister the other operations (under each lock, park.h rule 4; the
 *     claimer unlinked the claimed one, so a plain send or receive takes no
 *     lock here), then
 *       - DONE: the operation completed (even if we were cancelled too: the
 *         item is delivered and the cancellation stays pending);
 *       - RETRY: try that operation first, then go back to 1; but if we woke
 *         for a cancel or a deadline, pass the notification on to the next
 *         waiter of that queue and return the status. */
#include "chan.h"

/* Where a select starts trying, per thread (xorshift32). Not inlined, so no
 * caller keeps the thread-local address across a suspension point. */
static __attribute__((noinline)) size_t random_start(size_t n)
{
    static _Thread_local uint32_t state;
    uint32_t x = state;
    if (!x)
        x = (uint32_t)(uintptr_t)&state | 1u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    state = x;
    return (size_t)x % n;
}

/* The result of op i's attempt r: its index if it completed (status set),
 * -EAGAIN if it could not, or an error of the whole select. */
static int finish(crew_select_op_t *ops, size_t i, int r)
{
    if (r == 0 || r == CREW_CHAN_CLOSED) {
        ops[i].status = r;
        return (int)i;
    }
    return r;
}

/* Step 1. */
static int try_all(crew_select_op_t *ops, size_t n)
{
    size_t start = n > 1 ? random_start(n) : 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = start + k < n ? start + k : start + k - n;
        if (!ops[i].chan)
            continue;
        int r = finish(ops, i, crew__chan_try_op(&ops[i]));
        if (r != -EAGAIN)
            return r;
    }
    return -EAGAIN;
}

static inline __attribute__((always_inline)) bool register_op(crew_select_op_t *op,
                                                              crew__sel_t *sel)
{
    crew__chan_node_t *node = crew__op_node(op);
    node->sel = sel;
    node->linked = 0;
    return op->chan->kind == CREW_CHAN_RING ? crew__ring_register(op->chan, op)
                                            : crew__locked_register(op->chan, op, sel);
}

static crew__chan_q_t *queue_of(crew_select_op_t *op)
{
    return op->dir == CREW_SELECT_SEND ? &op->chan->sendq : &op->chan->recvq;
}

/* Leave the queues of ops[0..n) but claimed, which its claimer unlinked
 * (park.h rule 4). */
static void unregister_all(crew_select_op_t *ops, size_t n, const crew_select_op_t *claimed)
{
    for (size_t i = 0; i < n; i++) {
        if (!ops[i].chan || &ops[i] == claimed)
            continue;
        crew_chan_t *ch = ops[i].chan;
        crew__chan_lock(ch);
        crew__chan_node_t *node = crew__op_node(&ops[i]);
        if (node->linked)
            crew__chan_q_remove(queue_of(&ops[i]), node);
        crew__chan_unlock(ch);
    }
}

/* Stop waiting: true if no claimer won sel (the caller then unregisters),
 * false if one did. A single operation is claimed by unlinking its node, so
 * it aborts the same way, under the channel's lock (chan.h). */
static bool abort_wait(crew__sel_t *sel, crew_select_op_t *op)
{
    if (sel->single) {
        crew__chan_lock(op->chan);
        crew__chan_node_t *node = crew__op_node(op);
        /* Not queued: either a claimer unlinked it (and stored its claim
         * under this lock), or the registration found the operation
         * possible and never queued it (chan_locked.c). */
        bool aborted = node->linked || atomic_load_explicit(&sel->selected, memory_order_relaxed) ==
                                           CREW_SEL_WAITING;
        if (node->linked)
            crew__chan_q_remove(queue_of(op), node);
        crew__chan_unlock(op->chan);
        return aborted;
    }
    uintptr_t expect = CREW_SEL_WAITING;
    /* acq_rel: pairs with the claimers' CAS (crew__chan_q_claim). */
    return atomic_compare_exchange_strong_explicit(&sel->selected, &expect, CREW_SEL_ABORTED,
                                                   memory_order_acq_rel, memory_order_acquire);
}

/* A claimer won sel: wait until it is done with us (chan.h) and return its
 * claim. cause: how our wait ended, or 0 if we did not wait (then the
 * claimer's wake is still ours to take). */
static inline __attribute__((always_inline)) uintptr_t claimed(crew__sel_t *sel, int *cause)
{
    if (!*cause)
        *cause = crew__waiter_wait(&sel->w);
    if (*cause != CREW_WAKE_READY) {
        /* Its wake lost to ours: it sets released after its last access,
         * a few instructions away. Acquire: pairs with that release store. */
        unsigned spins = 0;
        while (!atomic_load_explicit(&sel->released, memory_order_acquire))
            crew__pause_round(&spins);
    }
    /* Relaxed: the READY wake (its release, our acquire in
     * crew__waiter_wait) or released published it. */
    return atomic_load_explicit(&sel->selected, memory_order_relaxed);
}

/* The waiting loop. Always inlined: a plain send or receive calls it with
 * n == 1, a constant, so its copy has no loops and no select bookkeeping.
 * self: the calling task, NULL on a plain thread. */
static inline __attribute__((always_inline)) int select_wait(crew_select_op_t *ops, size_t n,
                                                              crew_task_t *self)
{
    for (;;) {
        crew__sel_t sel;
        /* Deferred arm: every registration takes its channel's lock with a
         * seq_cst exchange (crew__chan_lock), which plays the arm's part in
         * the cancellation handshake (crew__waiter_registered, below). */
        int st = crew__waiter_prepare_as(&sel.w, self, true);
        if (st)
            return st;
        atomic_store_explicit(&sel.selected, CREW_SEL_WAITING, memory_order_relaxed);
        atomic_store_explicit(&sel.released, 0, memory_order_relaxed);
        sel.single = n == 1;
        size_t reg = 0;
        bool ready = false;
        while (reg < n && !ready) {
            /* A single operation always has its channel (callers check). */
            if (n == 1 || ops[reg].chan)
                ready = register_op(&ops[reg], &sel);
            reg++;
        }
        /* A READY wake only ever comes from a claim: then there is nothing
         * to abort. The wake's cause becomes a status only once we know no
         * claim completed an operation: crew__wake_status marks an expired
         * deadline scope, which must not happen for a select that returns
         * success (its next suspension point reports the deadline). */
        if (!ready)
            crew__waiter_registered(&sel.w);
        int cause = ready ? 0 : crew__waiter_wait(&sel.w);
        if (cause != CREW_WAKE_READY && abort_wait(&sel, ops)) {
            if (!cause)
                crew__waiter_disarm(&sel.w); /* Never waited (park.h). */
            if (!sel.single)
                unregister_all(ops, reg, NULL);
            st = cause && self ? crew__wake_status(self, cause) : 0;
            if (st)
                return st;
        } else {
            uintptr_t claim = claimed(&sel, &cause);
            crew_select_op_t *op = n == 1 ? ops : (crew_select_op_t *)(claim & ~CREW_SEL_DONE);
            if (n > 1)
                unregister_all(ops, reg, op);
            size_t i = (size_t)(op - ops);
            if (claim & CREW_SEL_DONE)
                return (int)i;
            st = self ? crew__wake_status(self, cause) : 0;
            if (st) {
                crew__ring_notify(op->chan, queue_of(op));
                return st;
            }
            int r = finish(ops, i, crew__chan_try_op(op));
            if (r != -EAGAIN)
                return r;
        }
        int r = try_all(ops, n);
        if (r != -EAGAIN)
            return r;
    }
}

int crew__chan_wait(crew_chan_t *ch, int dir, void *item, crew_task_t *self)
{
    /* Not zero-initialised: the node is set up by register_op, and status
     * by whoever completes the operation, before either is read. */
    crew_select_op_t op;
    op.chan = ch;
    op.dir = dir;
    op.item = item;
    int rc = select_wait(&op, 1, self);
    return rc < 0 ? rc : op.status;
}

int crew_select(crew_select_op_t *ops, size_t n, int flags)
{
    if (!ops || n == 0 || n > INT32_MAX || (flags & ~CREW_SELECT_NONBLOCK))
        return -EINVAL;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (!ops[i].chan)
            continue;
        if ((ops[i].dir != CREW_SELECT_SEND && ops[i].dir != CREW_SELECT_RECV) || !ops[i].item)
            return -EINVAL;
        any = true;
    }
    bool nonblock = flags & CREW_SELECT_NONBLOCK;
    if (!any)
        return nonblock ? -EAGAIN : -EINVAL;
    crew_task_t *self = crew__task_self();
    if (!nonblock) {
        int st = crew__chan_suspend_check(self);
        if (st)
            return st;
    }
    int r = try_all(ops, n);
    if (r != -EAGAIN || nonblock)
        return r;
    return select_wait(ops, n, self);
}
