/* The registry of tasks that have waited (registry.c): what lets a shutdown
 * reach tasks parked in wait sources the runtime cannot enumerate (a mutex, a
 * channel, an event that no one will set).
 *
 * A task registers itself before its first wait (crew__waiter_prepare), in
 * the shard of the worker it runs on (one shard per worker, plus one for
 * outside use), and is removed when it exits, wherever that is (swap with the
 * last entry: O(1)). A task that never waits (most short tasks) never
 * registers, and costs nothing here: a registration at every spawn put two
 * contended spin locks on each task's life and halved spawn_join's rate.
 * Tasks outside the registry are reached by rt->cancel_all, which every
 * suspension point and every first run checks.
 *
 * Why no task is missed: the shutdown stores cancel_all, then sweeps the
 * shards; a task registers, then arms its park word, then loads cancel_all
 * (seq_cst on both sides). Either the task sees the flag and does not wait,
 * or the sweep, which takes the shard's lock after the flag, finds it. */
#ifndef CREW_RUNTIME_REGISTRY_H
#define CREW_RUNTIME_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

/* crew_task_t.reg_shard of a task in no shard. */
#define CREW_REG_NONE 0xFFFFu

typedef struct crew__registry {
    _Alignas(CREW_CACHELINE) _Atomic uint32_t lock;
    uint32_t n, cap;
    crew_task_t **v;
} crew__registry_t;

/* Allocate rt's shards (nworkers + 1). */
int crew__registry_init(crew_rt_t *rt);
void crew__registry_destroy(crew_rt_t *rt);
/* Add t (not yet runnable) to shard (a worker index, or nworkers). -ENOMEM. */
int crew__registry_add(crew_rt_t *rt, crew_task_t *t, unsigned shard);
/* Remove t (if registered), before it can be freed. */
void crew__registry_remove(crew_task_t *t);
/* Cancel the registered task with this id, or every one for id 0
 * (crew_task_cancel); returns how many were cancelled. Safe whether or not
 * the task is about to end: no handle is needed. */
uint64_t crew__registry_cancel(crew_rt_t *rt, uint64_t id);

#endif
