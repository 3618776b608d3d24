/* The registry of live tasks (registry.c): what lets a shutdown reach every
 * task, including those parked in wait sources the runtime cannot enumerate
 * (a mutex, a channel, an event that no one will set).
 *
 * Sharded by spawning worker (plus one shard for spawns from outside), each
 * an array under a spin lock: a task is added by its spawner and removed when
 * it exits, wherever that is (swap with the last entry, so removal is O(1)).
 * Tokio keeps its OwnedTasks the same way, for the same reason. */
#ifndef CREW_RUNTIME_REGISTRY_H
#define CREW_RUNTIME_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

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
/* Remove t, before it can be freed. */
void crew__registry_remove(crew_task_t *t);
/* Cancel the registered task with this id, or every one for id 0
 * (crew_task_cancel); returns how many were cancelled. Safe whether or not
 * the task is about to end: no handle is needed. */
uint64_t crew__registry_cancel(crew_rt_t *rt, uint64_t id);

#endif
