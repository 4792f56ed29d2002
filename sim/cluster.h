/* cluster.h -- the serving cluster: a gateway in front of model replicas.
 *
 * The gateway routes each arriving request to a ready replica that has room
 * (fewer than max_concurrency outstanding requests) by the scenario's policy:
 * round robin, least outstanding requests, power of two choices, or random.
 * When no replica has room, it holds the request in a FIFO queue of bounded
 * capacity (a full queue rejects); a request that has not started service
 * within the queue timeout is dropped as timed out.
 *
 * A replica runs continuous batching (iteration-level scheduling, as vLLM):
 * each step decodes one token for every running sequence and prefills new
 * prompts (in chunks, when chunked prefill is on) within max_num_seqs
 * sequences and max_batched_tokens tokens; a prompt is admitted, first come
 * first served, only when its KV cache fits, and when decoding runs out of KV
 * the newest sequence is preempted and later recomputed.  The step's duration
 * comes from the service-time profile.  With service kind exponential or
 * deterministic a replica instead serves one request at a time.
 *
 * The replica set is dynamic (cluster_add_replica / cluster_remove_replica),
 * so autoscalers can drive it. */
#ifndef LLM_CLUSTER_H
#define LLM_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "sim/engine.h"
#include "sim/metrics.h"
#include "sim/scenario.h"
#include "workloads/trace.h"

/* Event kinds the cluster schedules (the simulator's own start at 1). */
enum cluster_event {
    EV_REPLICA_STEP_START = 100, /* obj: the replica; batches what arrived up to now */
    EV_REPLICA_STEP_END = 101,   /* obj: the replica */
    EV_REPLICA_READY = 102,      /* obj: the replica; its cold start is over */
};

/* A replica's life: pending (waiting for a node: none with room yet, or its
 * node still provisioning), starting (on a ready node, not routed, for the
 * start-up delay), ready (routed), draining (not routed, finishing what it
 * holds; also on a spot node under notice), gone. */
enum replica_state { REPLICA_PENDING, REPLICA_STARTING, REPLICA_READY, REPLICA_DRAINING, REPLICA_GONE };

struct cluster;

/* Create with REPLICAS ready replicas; SEED seeds the cluster's random
 * streams (routing, service times, cache sampling, spot interruptions).
 * NULL on error. */
struct cluster *cluster_create(const struct scenario *sc, int replicas, uint64_t seed, struct engine *en,
                               struct metrics *m, struct err *e);
void cluster_free(struct cluster *c);

/* A request arrives now (en->now_s). Returns -1 when out of memory. */
int cluster_arrive(struct cluster *c, const struct trace_request *req);

/* How a request reaches the cluster from the global load balancer
 * (sim/regions.h). */
struct cluster_arrival {
    uint64_t id;
    double arrival_s;   /* when the client sent it: now, or earlier for a failover */
    double rtt_s;       /* network round trip, added to its TTFT and E2E (and a cache hit's time) */
    int client;         /* the client region, handed back by cluster_evacuate */
    bool retry;         /* failed over from another region: already counted as arrived, no cache lookup */
};
/* cluster_arrive with the balancer's view of the request.  A = NULL is
 * cluster_arrive. */
int cluster_arrive_via(struct cluster *c, const struct trace_request *req, const struct cluster_arrival *a);
/* Whether the gateway would refuse a request now for a full queue. */
bool cluster_full(struct cluster *c);

/* A request taken out of a cluster (REQ.prompt_hash: the key to cache its
 * answer under, 0 for none). */
struct cluster_evacuee {
    struct trace_request req;
    struct cluster_arrival a;
};
/* The region went down: take every request the cluster holds (gateway
 * queue, replicas' waiting lists and batches) out of it, in arrival order
 * per queue, appending them to *OUT (of *N, capacity *CAP, grown with
 * realloc).  Steps in flight are abandoned; the replicas stay, idle
 * (draining ones go).  Returns 0, or -1 when out of memory. */
int cluster_evacuate(struct cluster *c, struct cluster_evacuee **out, size_t *n, size_t *cap);
/* Handle one of the cluster's events. */
int cluster_handle(struct cluster *c, const struct event *ev);

/* Add a replica; returns its id or -1 when out of memory.  COLD: it starts
 * after the scenario's start-up delay and counts as a cold start; else it is
 * ready at once (the replicas a run starts with). */
int cluster_add_replica(struct cluster *c, bool cold);
/* Bring the replicas that are not draining to DESIRED: add cold replicas,
 * or drain the newest (starting ones first). */
int cluster_scale(struct cluster *c, int desired);
/* Replicas not draining (what a Deployment's spec.replicas counts); *ready,
 * when not NULL, gets those ready. */
int cluster_replicas(const struct cluster *c, int *ready);
/* Replicas billed now (starting, ready, draining), and arrivals so far. */
size_t cluster_size(const struct cluster *c);
unsigned long long cluster_arrivals(const struct cluster *c);
/* Requests held at the gateway. */
long cluster_gateway_waiting(struct cluster *c);

/* What a replica exports as metrics, as a scrape sees it. */
struct replica_sample {
    int id;
    enum replica_state state;
    double created_s;
    double ready_s;
    long waiting;       /* requests queued in the replica */
    long running;       /* sequences in its batch */
    double kv_usage;    /* KV cache in use, fraction */
    double busy_frac;   /* fraction of the time since the last snapshot spent in steps */
    bool has_ttft;
    double ttft_p90_s;  /* over first tokens since the last snapshot */
};
/* Fill up to MAX samples, one per billed replica, and start a new window
 * for the windowed figures.  Returns the count. */
size_t cluster_snapshot(struct cluster *c, struct replica_sample *out, size_t max);
/* Requests still in the system (queued or running). */
size_t cluster_in_flight(const struct cluster *c);

/* Close the interval ending now: fill *s (averages over the interval since
 * the previous call) and the accumulated cost. */
void cluster_sample(struct cluster *c, struct timeline_sample *s);

struct nodes;
/* The node pools, for per-pool figures. */
struct nodes *cluster_nodes(struct cluster *c);

/* Totals at the end of a run. */
struct cluster_totals {
    unsigned long long arrived;   /* requests that reached the gateway (failovers in included) */
    unsigned long long completed; /* answered here (cache hits included) */
    double replica_s;  /* integral of the replica count over time */
    double busy_s;     /* replica-seconds spent running steps */
    double kv_token_s; /* integral of KV tokens in use */
    double kv_capacity_tokens;
    double cost_usd;
    double on_demand_usd; /* the same node-seconds at on-demand prices */
    double gpu_hours;
    int replicas_min;
    int replicas_max;
    unsigned long long steps;
    unsigned long long cold_starts;
    unsigned long long preemptions; /* spot notices that hit replicas */
    unsigned long long requeued;    /* requests moved off an interrupted replica */
    double lost_tokens;             /* KV state lost with them: tokens to compute again */
    unsigned long long cache_lookups;
    unsigned long long cache_hits;
    unsigned long long cache_evictions;
    double cache_tokens_saved;
    double cache_gpu_s_saved; /* estimate: tokens saved x busy GPU-seconds per token served */
};
void cluster_totals(struct cluster *c, struct cluster_totals *t);

#endif
