/* engine.c -- see engine.h.  A binary heap kept in one array. */
#include "sim/engine.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void engine_init(struct engine *en)
{
    memset(en, 0, sizeof(*en));
}

void engine_free(struct engine *en)
{
    free(en->heap);
    memset(en, 0, sizeof(*en));
}

static inline int engine_before(const struct event *a, const struct event *b)
{
    return a->time_s < b->time_s || (a->time_s == b->time_s && a->seq < b->seq);
}

/* Put EV at index I and tell its tracker. */
static inline void engine_place(struct engine *en, size_t i, const struct event *ev)
{
    en->heap[i] = *ev;
    if (ev->where != NULL)
        *ev->where = i;
}

/* Sift EV up from index I (a hole) to its place. */
static void engine_sift_up(struct engine *en, size_t i, const struct event *ev)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!engine_before(ev, &en->heap[parent]))
            break;
        engine_place(en, i, &en->heap[parent]);
        i = parent;
    }
    engine_place(en, i, ev);
}

/* Sift EV down from index I (a hole) in a heap of N to its place. */
static void engine_sift_down(struct engine *en, size_t i, size_t n, const struct event *ev)
{
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && engine_before(&en->heap[child + 1], &en->heap[child]))
            child++;
        if (!engine_before(&en->heap[child], ev))
            break;
        engine_place(en, i, &en->heap[child]);
        i = child;
    }
    engine_place(en, i, ev);
}

int engine_schedule_tracked(struct engine *en, double time_s, int type, void *obj, uint64_t arg, size_t *where)
{
    struct event ev;

    assert(time_s >= en->now_s);
    if (en->n == en->cap) {
        size_t cap = en->cap ? en->cap * 2 : 256;
        struct event *h = realloc(en->heap, cap * sizeof(*h));
        if (h == NULL)
            return -1;
        en->heap = h;
        en->cap = cap;
    }
    ev.time_s = time_s;
    ev.seq = en->next_seq++;
    ev.type = type;
    ev.obj = obj;
    ev.arg = arg;
    ev.where = where;
    engine_sift_up(en, en->n++, &ev);
    return 0;
}

int engine_schedule(struct engine *en, double time_s, int type, void *obj, uint64_t arg)
{
    return engine_schedule_tracked(en, time_s, type, obj, arg, NULL);
}

void engine_move(struct engine *en, size_t *where, double time_s)
{
    size_t i = *where;
    struct event ev;

    assert(i < en->n && en->heap[i].where == where && time_s >= en->now_s);
    ev = en->heap[i];
    ev.time_s = time_s;
    ev.seq = en->next_seq++;
    /* Later than before can only go down; earlier only up. */
    if (i > 0 && engine_before(&ev, &en->heap[(i - 1) / 2]))
        engine_sift_up(en, i, &ev);
    else
        engine_sift_down(en, i, en->n, &ev);
}

int engine_pop(struct engine *en, struct event *out)
{
    struct event last;

    if (en->n == 0)
        return 0;
    *out = en->heap[0];
    if (out->where != NULL)
        *out->where = SIZE_MAX;
    last = en->heap[--en->n];
    if (en->n > 0)
        engine_sift_down(en, 0, en->n, &last);
    en->now_s = out->time_s;
    en->processed++;
    return 1;
}
