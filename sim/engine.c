/* engine.c -- see engine.h.  A binary heap kept in one array. */
#include "sim/engine.h"

#include <assert.h>
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

int engine_schedule(struct engine *en, double time_s, int type, void *obj, uint64_t arg)
{
    struct event ev;
    size_t i;

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
    /* Sift up. */
    i = en->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!engine_before(&ev, &en->heap[parent]))
            break;
        en->heap[i] = en->heap[parent];
        i = parent;
    }
    en->heap[i] = ev;
    return 0;
}

int engine_pop(struct engine *en, struct event *out)
{
    struct event last;
    size_t i, n;

    if (en->n == 0)
        return 0;
    *out = en->heap[0];
    last = en->heap[--en->n];
    n = en->n;
    /* Sift the last element down from the root. */
    i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && engine_before(&en->heap[child + 1], &en->heap[child]))
            child++;
        if (!engine_before(&en->heap[child], &last))
            break;
        en->heap[i] = en->heap[child];
        i = child;
    }
    if (n > 0)
        en->heap[i] = last;
    en->now_s = out->time_s;
    en->processed++;
    return 1;
}
