/* An intrusive doubly linked list: a record embeds a crew__link_t and is
 * found back with CREW_CONTAINER_OF. No allocation, O(1) removal of any
 * record; the caller provides the locking. Used by the fd table's waiters
 * (io.c), the executor's queue, idle threads and space waiters, the wait
 * queues of the sync primitives (sync/waitq.c) and of channels (sync/chan.c),
 * and the list of fd tables. */
#ifndef CREW_RUNTIME_LIST_H
#define CREW_RUNTIME_LIST_H

#include <stddef.h>

typedef struct crew__link {
    struct crew__link *prev, *next;
} crew__link_t;

typedef struct crew__list {
    crew__link_t *head, *tail;
} crew__list_t;

#define CREW_CONTAINER_OF(p, type, member) \
    ((type *)(void *)((char *)(p) - offsetof(type, member)))

static inline void crew__list_push_back(crew__list_t *l, crew__link_t *e)
{
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
}

static inline void crew__list_push_front(crew__list_t *l, crew__link_t *e)
{
    e->prev = NULL;
    e->next = l->head;
    if (l->head)
        l->head->prev = e;
    else
        l->tail = e;
    l->head = e;
}

static inline void crew__list_remove(crew__list_t *l, crew__link_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
}

static inline crew__link_t *crew__list_pop_front(crew__list_t *l)
{
    crew__link_t *e = l->head;
    if (e)
        crew__list_remove(l, e);
    return e;
}

#endif
