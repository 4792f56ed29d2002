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
    size_t *where; /* kept equal to the event's index in the heap (SIZE_MAX once popped); or NULL */
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

/* Like engine_schedule, and keep *WHERE equal to the event's place in the
 * heap until it pops (then SIZE_MAX), so that engine_move can find it. */
int engine_schedule_tracked(struct engine *en, double time_s, int type, void *obj, uint64_t arg, size_t *where);

/* Move the tracked event at heap index *WHERE to TIME_S (>= now); it then
 * orders as if scheduled now.  Cheaper than leaving a stale event behind. */
void engine_move(struct engine *en, size_t *where, double time_s);

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
