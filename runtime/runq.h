/* A worker's local run queue: a bounded ring that only its owner pushes to,
 * that the owner pops from the head (FIFO), and that other workers steal half
 * of, also from the head. Lock-free; see runq.c for the protocol. */
#ifndef CREW_RUNTIME_RUNQ_H
#define CREW_RUNTIME_RUNQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

/* 256 slots: Go's and Tokio's size. A power of two so that index & mask maps the
 * free-running 32-bit counters onto slots; the counters wrap, and t - h is
 * computed modulo 2^32, so wrap-around needs no special case. */
#define CREW_RUNQ_CAP 256u

typedef struct crew__runq {
    /* Low 32 bits: next slot to take. Advanced by CAS by the owner (pop) and
     * by thieves (steal); every successful CAS is a release that pairs with
     * the owner's acquire load in push, so a slot is never overwritten while a
     * consumer that claimed it may still read it. High 32 bits: a version the
     * owner bumps when it takes a task back from the tail (crew__runq_unpush),
     * so that a thief whose copy predates that fails its CAS. */
    _Alignas(64) _Atomic uint64_t head;
    /* Next slot to fill. Written only by the owner (store-release after the
     * slot write), read by thieves with acquire. */
    _Alignas(64) _Atomic uint32_t tail;
    /* Slots are atomics (accessed relaxed) because a thief that lost its CAS
     * may have read a slot the owner was rewriting; the value it read is then
     * discarded. */
    _Atomic(crew_task_t *) slot[CREW_RUNQ_CAP];
} crew__runq_t;

/* Empty queue whose counters start at start (tests start near 2^32 to cross
 * the wrap). */
void crew__runq_init(crew__runq_t *q, uint32_t start);

/* Owner only. Append t. When the ring is full, move t and half of the ring
 * (the oldest) to *overflow as a linked list (through task->qnext) and return
 * the number of tasks moved; otherwise return 0. */
unsigned crew__runq_push(crew__runq_t *q, crew_task_t *t, crew_task_t **overflow_head,
                         crew_task_t **overflow_tail);

/* Owner only. Take the oldest task, or NULL when empty. */
crew_task_t *crew__runq_pop(crew__runq_t *q);

/* Any thread but q's owner; dst's owner only (the thief). Move half (rounded
 * up) of victim's tasks into dst, which must be empty, keeping one out to
 * return to the caller. Returns NULL when victim was empty. *moved receives
 * the number of tasks taken, the returned one included. */
crew_task_t *crew__runq_steal(crew__runq_t *victim, crew__runq_t *dst, unsigned *moved);

/* Owner only. Append up to n tasks from the list at *list (linked through
 * qnext) while there is room; *list advances past what was taken. Returns the
 * number appended. Used to move a batch from the injection queue. */
unsigned crew__runq_push_list(crew__runq_t *q, crew_task_t **list, unsigned n);

/* Owner only. Take t back if it is the most recently pushed task still in
 * the ring (a join that wants to run its child depth-first). Returns false
 * if t is not at the tail or a thief got it first. */
bool crew__runq_unpush(crew__runq_t *q, crew_task_t *t);

/* Any thread. Number of queued tasks; may over-report, and never reports 0
 * while a pushed task is queued, except during a failing crew__runq_unpush
 * on its own worker, whose owner is awake and runs that task (runq.c). */
uint32_t crew__runq_len(const crew__runq_t *q);

#endif
