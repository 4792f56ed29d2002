/* engine.h -- the discrete-event engine: a priority queue of timestamped
 * events.
 *
 * Time is simulated seconds (double), independent of wall time.  Events pop
 * in order of (time, insertion sequence), so two events at the same instant
 * come out in the order they were scheduled: a run is a pure function of its
 * inputs and seed.  The engine knows nothing about what an event means; the
 * simulator dispatches on `type`. */
#ifndef LLM_ENGINE_H
#define LLM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

struct event {
    double time_s;
    uint64_t seq;  /* insertion order, the tie-breaker */
    int type;      /* the simulator's event kind */
    void *obj;     /* what the event is about (a replica, a request) */
    uint64_t arg;  /* a small payload, e.g. a generation counter */
};

struct engine {
    struct event *heap; /* binary min-heap on (time_s, seq) */
    size_t n;
    size_t cap;
    uint64_t next_seq;
    double now_s;       /* time of the last popped event */
    uint64_t processed; /* events popped so far */
};

void engine_init(struct engine *en);
void engine_free(struct engine *en);

/* Schedule an event at TIME_S (>= now).  Returns -1 when out of memory. */
int engine_schedule(struct engine *en, double time_s, int type, void *obj, uint64_t arg);

/* Pop the earliest event into *out and advance now.  Returns 0 when empty. */
int engine_pop(struct engine *en, struct event *out);

static inline size_t engine_pending(const struct engine *en)
{
    return en->n;
}

/* The time of the earliest event into *TIME_S; returns 0 when empty. */
static inline int engine_peek(const struct engine *en, double *time_s)
{
    if (en->n == 0)
        return 0;
    *time_s = en->heap[0].time_s;
    return 1;
}

#endif
