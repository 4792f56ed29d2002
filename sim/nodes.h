/* nodes.h -- node pools, the cluster autoscaler and spot interruptions.
 *
 * Replicas (pods) run on nodes; a node belongs to a pool, which fixes its
 * instance type (GPUs per node), its pricing (on-demand, spot, reserved) and
 * its limits.  A pod is placed on a node of the pool furthest below its
 * target share of pods, first fit by free GPUs; when no node has room the
 * cluster autoscaler provisions one (after the pool's provisioning delay, up
 * to max_nodes), falling back to another pool when this one cannot (at
 * max_nodes, or spot capacity unavailable after an interruption).  A node
 * left empty for idle_timeout is removed (down to min_nodes).
 *
 * Spot nodes are interrupted (a Poisson process per node-hour, or listed
 * times): the provider's notice comes first (AWS 120 s, GCP and Azure 30 s),
 * then the node goes.  Nodes are billed per second from their launch until
 * they go, with an optional minimum; reserved pools are billed for at least
 * min_nodes all the time (the commitment).
 *
 * Without `cluster.pools` every replica has a node of its own in an implicit
 * pool priced at gpus_per_replica x gpu_hourly_usd, provisioned at once. */
#ifndef LLM_NODES_H
#define LLM_NODES_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/rng.h"
#include "sim/engine.h"

enum pool_pricing { PRICING_ON_DEMAND, PRICING_SPOT, PRICING_RESERVED };

#define POOL_NAME_MAX 64
#define POOL_MAX_TIMES 1024

/* A pool as the scenario describes it. */
struct pool_spec {
    char name[POOL_NAME_MAX];
    char instance[POOL_NAME_MAX];
    int gpus_per_node;
    enum pool_pricing pricing;
    double hourly_usd;           /* per node-hour at this pool's pricing */
    double on_demand_hourly_usd; /* per node-hour on demand, for the savings figure */
    int min_nodes;
    int max_nodes;
    double provisioning_s;
    double idle_timeout_s;
    double share;                /* target fraction of pods placed here (normalised over pools) */
    int fallback;                /* index of the pool to use when this one cannot, or -1 */
    /* spot */
    double interruptions_per_hour; /* per node */
    double interruption_times_s[POOL_MAX_TIMES]; /* listed interruptions (one node each, oldest first) */
    size_t n_interruption_times;
    double notice_s;
    double unavailable_s;        /* after an interruption, no new node here for this long */
};

struct node;
struct nodes;

/* Event kinds the node layer schedules. */
enum nodes_event {
    EV_NODE_READY = 300,     /* obj: node */
    EV_NODE_IDLE = 301,      /* obj: node, arg: its idle generation */
    EV_SPOT_NOTICE = 302,    /* obj: node (or NULL for a listed time: arg = pool) */
    EV_SPOT_TERMINATE = 303, /* obj: node */
};

/* What a handled event means for the pods on a node. */
enum nodes_action { NODES_NOTHING, NODES_NODE_READY, NODES_NOTICE, NODES_TERMINATED, NODES_CAPACITY };

struct nodes *nodes_create(const struct pool_spec *pools, size_t npools, double billing_minimum_s,
                           struct engine *en, uint64_t seed, struct err *e);
void nodes_free(struct nodes *ns);

/* Place a pod needing GPUS: returns its node (ready or still provisioning)
 * or NULL when no pool can take it now (retry on NODES_CAPACITY).  WARM: a
 * node launched for it is up at once (the cluster a run starts with). */
struct node *nodes_place(struct nodes *ns, int gpus, bool warm);
/* A pod leaves node N (its GPUS are freed). */
int nodes_release(struct nodes *ns, struct node *n, int gpus);
/* Handle a node event; *out_node gets the node it concerns. */
int nodes_handle(struct nodes *ns, const struct event *ev, enum nodes_action *action, struct node **out_node);

bool node_is_ready(const struct node *n);
bool node_is_leaving(const struct node *n); /* interrupted: noticed or gone */
int node_pool(const struct node *n);

size_t nodes_npools(const struct nodes *ns);
const struct pool_spec *nodes_pool_spec(const struct nodes *ns, size_t i);
/* Nodes up (provisioning or running, not gone) in pool I now. */
int nodes_count(const struct nodes *ns, size_t i);

struct pool_totals {
    double node_s;         /* node-seconds billed (with minimums and commitments) */
    double cost_usd;
    double on_demand_usd;  /* the same node-seconds at on-demand prices */
    unsigned long long provisioned;
    unsigned long long removed_idle;
    unsigned long long preemptions;
    int nodes_max;
};
/* Totals of pool I up to now. */
void nodes_totals(struct nodes *ns, size_t i, struct pool_totals *t);
/* Cost of all pools up to now. */
double nodes_cost_usd(struct nodes *ns);

#endif
