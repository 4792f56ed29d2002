/* nodes.c -- see nodes.h. */
#include "sim/nodes.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum node_state { NODE_PROVISIONING, NODE_READY, NODE_NOTICED, NODE_GONE };

struct node {
    int id;
    int pool;
    enum node_state state;
    int gpus_free;
    int pods;
    double launched_s;
    uint64_t idle_gen; /* bumped whenever the node gains a pod: stale idle checks are ignored */
};

struct pool {
    struct pool_spec spec;
    struct node **nodes; /* not gone */
    int n, cap;
    int pods;
    double unavailable_until_s;
    size_t next_listed;  /* listed interruptions scheduled so far */
    struct rng rng;
    double gone_node_s;  /* billed node-seconds of nodes gone */
    struct pool_totals t;
};

struct nodes {
    struct pool *pools;
    size_t npools;
    double billing_min_s;
    struct engine *en;
    struct node **all; /* every node ever made, freed at the end */
    size_t nall, capall;
    int next_id;
};

bool node_is_ready(const struct node *n) { return n->state == NODE_READY; }
bool node_is_leaving(const struct node *n) { return n->state == NODE_NOTICED || n->state == NODE_GONE; }
int node_pool(const struct node *n) { return n->pool; }
size_t nodes_npools(const struct nodes *ns) { return ns->npools; }
const struct pool_spec *nodes_pool_spec(const struct nodes *ns, size_t i) { return &ns->pools[i].spec; }
int nodes_count(const struct nodes *ns, size_t i) { return ns->pools[i].n; }

void nodes_free(struct nodes *ns)
{
    size_t i;

    if (ns == NULL)
        return;
    for (i = 0; i < ns->nall; i++)
        free(ns->all[i]);
    for (i = 0; i < ns->npools; i++)
        free(ns->pools[i].nodes);
    free(ns->all);
    free(ns->pools);
    free(ns);
}

/* The seconds a node is billed for, living LIFE_S. */
static double nodes_billed_s(const struct nodes *ns, double life_s)
{
    return life_s > ns->billing_min_s ? life_s : ns->billing_min_s;
}

/* Draw the next interruption of spot node N (Poisson per node-hour). */
static int nodes_arm_spot(struct nodes *ns, struct node *n)
{
    struct pool *p = &ns->pools[n->pool];
    double rate_per_s = p->spec.interruptions_per_hour / 3600.0;

    if (p->spec.pricing != PRICING_SPOT || rate_per_s <= 0)
        return 0;
    return engine_schedule(ns->en, ns->en->now_s + rng_exp(&p->rng, 1.0 / rate_per_s), EV_SPOT_NOTICE, n, 0);
}

/* Launch a node in pool P; ready after the provisioning delay (at once when
 * READY_NOW). NULL when out of memory. */
static struct node *nodes_launch(struct nodes *ns, size_t pi, bool ready_now)
{
    struct pool *p = &ns->pools[pi];
    struct node *n = calloc(1, sizeof(*n));

    if (n == NULL)
        return NULL;
    if (ns->nall == ns->capall) {
        size_t cap = ns->capall ? ns->capall * 2 : 16;
        struct node **a = realloc(ns->all, cap * sizeof(*a));
        if (a == NULL) {
            free(n);
            return NULL;
        }
        ns->all = a;
        ns->capall = cap;
    }
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 8;
        struct node **a = realloc(p->nodes, (size_t)cap * sizeof(*a));
        if (a == NULL) {
            free(n);
            return NULL;
        }
        p->nodes = a;
        p->cap = cap;
    }
    ns->all[ns->nall++] = n;
    p->nodes[p->n++] = n;
    n->id = ns->next_id++;
    n->pool = (int)pi;
    n->gpus_free = p->spec.gpus_per_node;
    n->launched_s = ns->en->now_s;
    p->t.provisioned++;
    if (p->n > p->t.nodes_max)
        p->t.nodes_max = p->n;
    if (ready_now || p->spec.provisioning_s <= 0) {
        n->state = NODE_READY;
        if (nodes_arm_spot(ns, n) < 0)
            return NULL;
    } else {
        n->state = NODE_PROVISIONING;
        if (engine_schedule(ns->en, ns->en->now_s + p->spec.provisioning_s, EV_NODE_READY, n, 0) < 0)
            return NULL;
    }
    return n;
}

/* Take node N out of its pool and stop billing it. */
static void nodes_remove(struct nodes *ns, struct node *n)
{
    struct pool *p = &ns->pools[n->pool];
    int i;

    for (i = 0; i < p->n; i++)
        if (p->nodes[i] == n)
            break;
    assert(i < p->n);
    memmove(&p->nodes[i], &p->nodes[i + 1], (size_t)(p->n - i - 1) * sizeof(*p->nodes));
    p->n--;
    p->gone_node_s += nodes_billed_s(ns, ns->en->now_s - n->launched_s);
    n->state = NODE_GONE;
}

struct nodes *nodes_create(const struct pool_spec *pools, size_t npools, double billing_minimum_s,
                           struct engine *en, uint64_t seed, struct err *e)
{
    struct nodes *ns = calloc(1, sizeof(*ns));
    size_t i;
    int k;

    if (ns == NULL || (ns->pools = calloc(npools, sizeof(*ns->pools))) == NULL)
        goto nomem;
    ns->npools = npools;
    ns->en = en;
    ns->billing_min_s = billing_minimum_s;
    for (i = 0; i < npools; i++) {
        struct pool *p = &ns->pools[i];
        p->spec = pools[i];
        rng_init(&p->rng, seed, RNG_STREAM_USER + 1 + i);
        for (k = 0; k < p->spec.min_nodes; k++)
            if (nodes_launch(ns, i, true) == NULL)
                goto nomem;
        /* Listed interruptions: one node each, at the given times. */
        for (p->next_listed = 0; p->next_listed < p->spec.n_interruption_times; p->next_listed++)
            if (engine_schedule(en, p->spec.interruption_times_s[p->next_listed], EV_SPOT_NOTICE, NULL, i) < 0)
                goto nomem;
    }
    return ns;
nomem:
    nodes_free(ns);
    err_set(e, ERR_SYSTEM, "out of memory");
    return NULL;
}

/* A node of pool PI with room for GPUS, launching one if allowed; NULL if none. */
static struct node *nodes_try_pool(struct nodes *ns, size_t pi, int gpus, bool warm)
{
    struct pool *p = &ns->pools[pi];
    int i;

    if (gpus > p->spec.gpus_per_node)
        return NULL;
    for (i = 0; i < p->n; i++) {
        struct node *n = p->nodes[i];
        if ((n->state == NODE_READY || n->state == NODE_PROVISIONING) && n->gpus_free >= gpus)
            return n;
    }
    if (p->n >= p->spec.max_nodes || ns->en->now_s < p->unavailable_until_s)
        return NULL;
    return nodes_launch(ns, pi, warm);
}

struct node *nodes_place(struct nodes *ns, int gpus, bool warm)
{
    double share_sum = 0, best_gap = -INFINITY;
    int total = 0, best = -1, hops;
    size_t i;
    struct node *n = NULL;

    for (i = 0; i < ns->npools; i++) {
        share_sum += ns->pools[i].spec.share;
        total += ns->pools[i].pods;
    }
    /* The pool furthest below its share of the pods after this one. */
    for (i = 0; i < ns->npools; i++) {
        const struct pool *p = &ns->pools[i];
        double want = share_sum > 0 ? p->spec.share / share_sum : 1.0 / ns->npools;
        double gap = want * (total + 1) - p->pods;
        if (p->spec.share <= 0 && share_sum > 0)
            continue;
        if (gap > best_gap) {
            best_gap = gap;
            best = (int)i;
        }
    }
    /* Then its fallbacks, then any pool. */
    for (hops = 0; best >= 0 && hops < (int)ns->npools && n == NULL; hops++) {
        n = nodes_try_pool(ns, (size_t)best, gpus, warm);
        if (n == NULL)
            best = ns->pools[best].spec.fallback;
    }
    for (i = 0; i < ns->npools && n == NULL; i++)
        if (ns->pools[i].spec.share > 0 || share_sum == 0)
            n = nodes_try_pool(ns, i, gpus, warm);
    if (n == NULL)
        return NULL;
    n->gpus_free -= gpus;
    n->pods++;
    n->idle_gen++;
    ns->pools[n->pool].pods++;
    return n;
}

/* Node N is ready and empty: the cluster autoscaler removes it after the
 * pool's idle timeout, unless a pod comes first. */
static int nodes_idle(struct nodes *ns, struct node *n)
{
    struct pool *p = &ns->pools[n->pool];

    n->idle_gen++;
    if (p->spec.idle_timeout_s <= 0) {
        if (p->n > p->spec.min_nodes) {
            nodes_remove(ns, n);
            p->t.removed_idle++;
        }
        return 0;
    }
    return engine_schedule(ns->en, ns->en->now_s + p->spec.idle_timeout_s, EV_NODE_IDLE, n, n->idle_gen);
}

int nodes_release(struct nodes *ns, struct node *n, int gpus)
{
    n->gpus_free += gpus;
    n->pods--;
    ns->pools[n->pool].pods--;
    if (n->pods > 0 || n->state != NODE_READY)
        return 0;
    return nodes_idle(ns, n);
}

/* Interrupt node N: the notice now, the node gone after the notice period. */
static int nodes_interrupt(struct nodes *ns, struct node *n)
{
    struct pool *p = &ns->pools[n->pool];

    n->state = NODE_NOTICED;
    p->t.preemptions++;
    if (p->spec.unavailable_s > 0) {
        p->unavailable_until_s = ns->en->now_s + p->spec.unavailable_s;
        /* Tell the cluster when capacity may come back. */
        if (engine_schedule(ns->en, p->unavailable_until_s, EV_NODE_READY, NULL, (uint64_t)n->pool) < 0)
            return -1;
    }
    return engine_schedule(ns->en, ns->en->now_s + p->spec.notice_s, EV_SPOT_TERMINATE, n, 0);
}

int nodes_handle(struct nodes *ns, const struct event *ev, enum nodes_action *action, struct node **out_node)
{
    struct node *n = ev->obj;

    *action = NODES_NOTHING;
    *out_node = n;
    switch (ev->type) {
    case EV_NODE_READY:
        if (n == NULL) { /* spot capacity is back */
            *action = NODES_CAPACITY;
            return 0;
        }
        if (n->state != NODE_PROVISIONING)
            return 0;
        n->state = NODE_READY;
        *action = NODES_NODE_READY;
        if (n->pods == 0 && nodes_idle(ns, n) < 0) /* nobody waits for it any more */
            return -1;
        return nodes_arm_spot(ns, n);
    case EV_NODE_IDLE: {
        struct pool *p = &ns->pools[n->pool];
        if (n->state != NODE_READY || n->pods > 0 || ev->arg != n->idle_gen || p->n <= p->spec.min_nodes)
            return 0;
        nodes_remove(ns, n);
        p->t.removed_idle++;
        *action = NODES_CAPACITY;
        return 0;
    }
    case EV_SPOT_NOTICE:
        if (n == NULL) {
            /* A listed interruption: the oldest ready node of the pool. */
            struct pool *p = &ns->pools[ev->arg];
            int i;
            for (i = 0; i < p->n && n == NULL; i++)
                if (p->nodes[i]->state == NODE_READY)
                    n = p->nodes[i];
            *out_node = n;
            if (n == NULL)
                return 0;
        } else if (n->state != NODE_READY) {
            return 0; /* already gone */
        }
        *action = NODES_NOTICE;
        return nodes_interrupt(ns, n);
    case EV_SPOT_TERMINATE:
        if (n->state != NODE_NOTICED)
            return 0;
        nodes_remove(ns, n);
        *action = NODES_TERMINATED;
        return 0;
    default:
        assert(!"unknown node event");
        return 0;
    }
}

void nodes_totals(struct nodes *ns, size_t i, struct pool_totals *t)
{
    struct pool *p = &ns->pools[i];
    double node_s = p->gone_node_s;
    int k;

    for (k = 0; k < p->n; k++)
        node_s += nodes_billed_s(ns, ns->en->now_s - p->nodes[k]->launched_s);
    *t = p->t;
    t->node_s = node_s;
    t->cost_usd = node_s / 3600.0 * p->spec.hourly_usd;
    t->on_demand_usd = node_s / 3600.0 * p->spec.on_demand_hourly_usd;
}

double nodes_cost_usd(struct nodes *ns)
{
    struct pool_totals t;
    double sum = 0;
    size_t i;

    for (i = 0; i < ns->npools; i++) {
        nodes_totals(ns, i, &t);
        sum += t.cost_usd;
    }
    return sum;
}
