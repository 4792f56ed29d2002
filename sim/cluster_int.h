/* cluster_int.h -- the cluster's insides, shared by the files that implement
 * cluster.h and by nothing else:
 *
 *   cluster.c           the cluster object and its request pool, the replica
 *                       lifecycle (cold starts, draining, retiring), scaling,
 *                       what node events mean for replicas, event dispatch
 *   cluster_gateway.c   arrivals (the response cache lookup), routing, the
 *                       gateway queue and its timeout
 *   cluster_batch.c     a replica's steps: continuous batching, admission,
 *                       preemption, runs of decode steps
 *   cluster_evacuate.c  taking requests back out of replicas: a node's
 *                       termination (back to the gateway queue), a region's
 *                       outage (handed to the global load balancer)
 *   cluster_sample.c    what the cluster reports: timeline samples, totals,
 *                       per-replica scrapes */
#ifndef LLM_CLUSTER_INT_H
#define LLM_CLUSTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"
#include "sim/cluster.h"

#define CLUSTER_MAX_POOLS 64

/* A request inside the cluster. */
struct creq {
    struct creq *next; /* queue link (gateway or replica waiting list) */
    struct creq *prev;
    uint64_t id;
    double arrival_s;
    double start_s;
    double first_token_s;
    uint32_t prompt;
    uint32_t output;          /* at least 1 */
    uint32_t prefill_target;  /* tokens to prefill: the prompt, or prompt + generated after preemption */
    uint32_t prefilled;
    uint32_t generated;
    uint32_t kv_tokens;       /* KV cache slots held */
    uint32_t step_chunk;      /* prefill tokens in the step in flight; 0 while decoding */
    uint32_t preemptions;
    uint64_t cache_key;       /* store the answer under this key when done; 0: not cacheable */
    double rtt_s;             /* network round trip to the client, added to its TTFT and E2E */
    int client;               /* the client region (sim/regions.c) */
    bool started;
    bool decoding;            /* in the step in flight, decodes one token */
    int replica;
};

/* A FIFO of requests. */
struct rqueue {
    struct creq *head;
    struct creq *tail;
    long len;
};

struct replica {
    int id;
    enum replica_state state;
    struct node *node;  /* NULL while pending without a node */
    double created_s;
    double ready_s;
    bool busy;          /* a step is in flight */
    bool start_pending; /* a step start is scheduled for now */
    struct rqueue waiting;
    struct creq **running;
    int n_running;
    long outstanding;   /* waiting + running */
    double kv_used;     /* tokens */
    double step_s;      /* duration of the step (or run of decode steps) in flight */
    /* A run of identical decode steps simulated as one event (see
     * replica_plan_decode_run): how many steps, from when, over what context. */
    int run_steps;
    double run_start_s;
    double run_ctx0;
    int run_seqs;
    double run_kv_extra;  /* KV token-seconds the run adds over kv_used x time */
    uint64_t step_gen;    /* the step end events carry it; a stale one is ignored */
    size_t end_pos;       /* the heap index of the pending step end (engine_move), or SIZE_MAX */
    /* Integrals over time, for utilisation. */
    double busy_s;
    double kv_token_s;
    double kv_since_s;
    /* Since the last metrics snapshot (cluster_snapshot). */
    double snap_busy_s;
    struct hist *snap_ttft;
};

struct cluster {
    const struct scenario *sc;
    struct engine *en;
    struct metrics *m;
    struct rng route_rng;
    struct rng service_rng;
    struct replica **replicas; /* starting, ready and draining: the billed set */
    int n_replicas;
    int cap_replicas;
    struct replica **retired;  /* kept until cluster_free: events may still name them */
    int n_retired;
    int cap_retired;
    int next_replica_id;
    double retired_busy_s;     /* integrals of retired replicas */
    double retired_kv_token_s;
    double last_snapshot_s;
    unsigned long long cold_starts;
    int rr_next;
    struct rqueue gateway;
    struct creq *free_list;
    size_t in_flight;
    uint64_t next_id;
    unsigned long long arrived;   /* requests that reached the gateway */
    unsigned long long completed; /* answered here */
    /* Integrals since the start, and their values at the last sample. */
    double replica_s;
    double integral_since_s;
    double last_busy_s;
    double last_kv_token_s;
    double last_replica_s;
    int replicas_min;
    int replicas_max;
    unsigned long long steps;
    struct nodes *nodes;       /* pools, nodes, spot: billing */
    bool track_replica_ttft;
    int pool_nodes[CLUSTER_MAX_POOLS]; /* the last sample's node counts */
    unsigned long long preemptions;
    unsigned long long requeued;
    double lost_tokens;
    /* The response cache (NULL without one). */
    struct cache *cache;
    struct rng cache_rng;
    unsigned long long cache_lookups;
    unsigned long long cache_hits;
    double cache_tokens_saved;
    double tokens_served;  /* prompt + output tokens of requests the replicas completed */
};

/* ---- queues -------------------------------------------------------------------------- */

static inline void rq_push(struct rqueue *q, struct creq *r)
{
    r->next = NULL;
    r->prev = q->tail;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->len++;
}

static inline void rq_push_front(struct rqueue *q, struct creq *r)
{
    r->prev = NULL;
    r->next = q->head;
    if (q->head)
        q->head->prev = r;
    else
        q->tail = r;
    q->head = r;
    q->len++;
}

static inline void rq_remove(struct rqueue *q, struct creq *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        q->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        q->tail = r->prev;
    r->next = r->prev = NULL;
    q->len--;
}

/* ---- time integrals ------------------------------------------------------------------- */

/* Bring the replica-count integral up to now. */
static inline void cluster_integrate(struct cluster *c)
{
    double now = c->en->now_s;

    c->replica_s += c->n_replicas * (now - c->integral_since_s);
    c->integral_since_s = now;
}

/* Bring a replica's KV integral up to now (call before kv_used changes). */
static inline void replica_integrate_kv(struct replica *rp, double now)
{
    rp->kv_token_s += rp->kv_used * (now - rp->kv_since_s);
    rp->kv_since_s = now;
}

/* Whether R, not started yet, has waited longer than the queue timeout. */
static inline bool cluster_expired(const struct cluster *c, const struct creq *r)
{
    return c->sc->queue_timeout_s > 0 && !r->started && c->en->now_s - r->arrival_s > c->sc->queue_timeout_s;
}

/* ---- across the cluster's files --------------------------------------------------------- */

/* cluster.c: a request from the pool (NULL when out of memory), back to
 * it, or dropped (counted under WHY, then back to the pool). */
struct creq *cluster_req_new(struct cluster *c);
void cluster_req_free(struct cluster *c, struct creq *r);
void cluster_drop(struct cluster *c, struct creq *r, enum request_outcome why);
/* cluster.c: take RP, which holds no work, out of the billed set. */
int cluster_retire(struct cluster *c, struct replica *rp);

/* cluster_gateway.c: drop the timed-out head of the gateway queue; move
 * queued requests to replicas with room. */
void cluster_expire_gateway(struct cluster *c);
int cluster_drain_gateway(struct cluster *c);

/* cluster_batch.c: start RP's next step (a batch, or one request for the
 * single-request service kinds); end the step in flight; cut a run of decode
 * steps short at the next step boundary. */
int replica_start_step(struct cluster *c, struct replica *rp);
int replica_start_single(struct cluster *c, struct replica *rp);
int replica_end_step(struct cluster *c, struct replica *rp);
int replica_cut_run(struct cluster *c, struct replica *rp);

/* cluster_evacuate.c: RP's node is gone; requeue what it holds, retire it. */
int cluster_evict(struct cluster *c, struct replica *rp);

#endif
