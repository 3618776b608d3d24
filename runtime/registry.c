/* The registry of live tasks (see registry.h). */
#include "registry.h"

#include <string.h>

#include "alloc.h"
#include "park.h"
#include "scheduler.h"

int crew__registry_init(crew_rt_t *rt)
{
    rt->registry = crew__zalloc((rt->nworkers + 1) * sizeof *rt->registry, CREW_CACHELINE);
    return rt->registry ? 0 : -ENOMEM;
}

void crew__registry_destroy(crew_rt_t *rt)
{
    if (!rt->registry)
        return;
    for (unsigned i = 0; i <= rt->nworkers; i++) {
        crew__registry_t *r = &rt->registry[i];
        CREW_ASSERT(r->n == 0);
        crew__free(r->v, r->cap * sizeof *r->v, _Alignof(crew_task_t *));
    }
    crew__free(rt->registry, (rt->nworkers + 1) * sizeof *rt->registry, CREW_CACHELINE);
}

int crew__registry_add(crew_rt_t *rt, crew_task_t *t, unsigned shard)
{
    crew__registry_t *r = &rt->registry[shard];
    crew__spin_lock(&r->lock);
    if (r->n == r->cap) {
        /* Growing under the lock is rare (amortised) and the shard's other
         * users are this worker's own spawns and remote exits. */
        uint32_t cap = r->cap ? 2 * r->cap : 256;
        crew_task_t **v = cap > r->cap ? crew__alloc(cap * sizeof *v, _Alignof(crew_task_t *)) : NULL;
        if (!v) {
            crew__spin_unlock(&r->lock);
            return -ENOMEM;
        }
        if (r->n)
            memcpy(v, r->v, r->n * sizeof *v);
        crew__free(r->v, r->cap * sizeof *r->v, _Alignof(crew_task_t *));
        r->v = v;
        r->cap = cap;
    }
    t->reg_idx = r->n;
    t->reg_shard = (uint16_t)shard;
    r->v[r->n++] = t;
    crew__spin_unlock(&r->lock);
    return 0;
}

void crew__registry_remove(crew_task_t *t)
{
    if (t->reg_shard == CREW_REG_NONE)
        return;
    crew__registry_t *r = &t->rt->registry[t->reg_shard];
    crew__spin_lock(&r->lock);
    crew_task_t *last = r->v[--r->n];
    r->v[t->reg_idx] = last;
    last->reg_idx = t->reg_idx;
    crew__spin_unlock(&r->lock);
    t->reg_shard = CREW_REG_NONE;
}

uint64_t crew__registry_cancel(crew_rt_t *rt, uint64_t id)
{
    uint64_t n = 0;
    for (unsigned i = 0; i <= rt->nworkers; i++) {
        crew__registry_t *r = &rt->registry[i];
        /* Under the lock, no task of the shard can be freed: it removes
         * itself (under this lock) before that. A cancel's wake may push
         * the task to the injection queue (a mutex, maybe a futex wake)
         * under this spin lock: acceptable, at shutdown or once per signal. */
        crew__spin_lock(&r->lock);
        for (uint32_t k = 0; k < r->n; k++)
            if (!id || r->v[k]->id == id) {
                crew_task_cancel(r->v[k]);
                n++;
            }
        crew__spin_unlock(&r->lock);
    }
    return n;
}
