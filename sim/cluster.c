/* cluster.c -- see cluster.h: the cluster object and the replica lifecycle.
 * Requests live in a pool of structs reused after they finish, so memory
 * follows the number in flight, not the trace.  The gateway, a replica's
 * steps, evacuation and the figures the cluster reports are in the other
 * cluster_*.c files (cluster_int.h lists them). */
#include "sim/cluster_int.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/hist.h"
#include "common/rng.h"
#include "sim/cache.h"
#include "sim/nodes.h"

/* ---- the request pool ---------------------------------------------------------------- */

struct creq *cluster_req_new(struct cluster *c)
{
    struct creq *r = c->free_list;

    if (r != NULL)
        c->free_list = r->next;
    else if ((r = malloc(sizeof(*r))) == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    c->in_flight++;
    return r;
}

void cluster_req_free(struct cluster *c, struct creq *r)
{
    r->next = c->free_list;
    c->free_list = r;
    c->in_flight--;
}

void cluster_drop(struct cluster *c, struct creq *r, enum request_outcome why)
{
    metrics_dropped(c->m, why, r->id, r->arrival_s, c->en->now_s);
    cluster_req_free(c, r);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

/* Append RP to an array of replica pointers, growing it. */
static int cluster_push(struct replica ***a, int *n, int *cap, struct replica *rp)
{
    if (*n == *cap) {
        int newcap = *cap ? *cap * 2 : 8;
        struct replica **b = realloc(*a, (size_t)newcap * sizeof(*b));
        if (b == NULL)
            return -1;
        *a = b;
        *cap = newcap;
    }
    (*a)[(*n)++] = rp;
    return 0;
}

static void replica_free(struct replica *rp)
{
    int j;

    if (rp == NULL)
        return;
    for (j = 0; j < rp->n_running; j++)
        free(rp->running[j]);
    free(rp->running);
    hist_free(rp->snap_ttft);
    free(rp);
}

/* Take RP out of the billed set (it has no work left). */
int cluster_retire(struct cluster *c, struct replica *rp)
{
    int i;

    assert(rp->outstanding == 0 && !rp->busy && !rp->start_pending);
    cluster_integrate(c);
    replica_integrate_kv(rp, c->en->now_s);
    for (i = 0; i < c->n_replicas; i++)
        if (c->replicas[i] == rp)
            break;
    assert(i < c->n_replicas);
    memmove(&c->replicas[i], &c->replicas[i + 1], (size_t)(c->n_replicas - i - 1) * sizeof(*c->replicas));
    c->n_replicas--;
    if (c->rr_next >= c->n_replicas)
        c->rr_next = 0;
    if (c->n_replicas < c->replicas_min)
        c->replicas_min = c->n_replicas;
    c->retired_busy_s += rp->busy_s;
    c->retired_kv_token_s += rp->kv_token_s;
    rp->state = REPLICA_GONE;
    if (rp->node != NULL && nodes_release(c->nodes, rp->node, c->sc->gpus_per_replica) < 0)
        return -1;
    rp->node = NULL;
    return cluster_push(&c->retired, &c->n_retired, &c->cap_retired, rp);
}

/* RP has a ready node: start it (a cold start: image pull, model load and
 * readiness, then routed) or, warm, make it ready at once. */
static int replica_start(struct cluster *c, struct replica *rp, bool cold)
{
    if (cold && c->sc->startup_s > 0) {
        rp->state = REPLICA_STARTING;
        return engine_schedule(c->en, c->en->now_s + c->sc->startup_s, EV_REPLICA_READY, rp, 0);
    }
    rp->state = REPLICA_READY;
    rp->ready_s = c->en->now_s;
    return cluster_drain_gateway(c);
}

int cluster_add_replica(struct cluster *c, bool cold)
{
    struct replica *rp;

    if (c->n_replicas == c->cap_replicas) {
        int cap = c->cap_replicas ? c->cap_replicas * 2 : 8;
        struct replica **a = realloc(c->replicas, (size_t)cap * sizeof(*a));
        if (a == NULL)
            return -1;
        c->replicas = a;
        c->cap_replicas = cap;
    }
    rp = calloc(1, sizeof(*rp));
    if (rp == NULL)
        return -1;
    rp->running = calloc((size_t)c->sc->max_num_seqs, sizeof(*rp->running));
    rp->snap_ttft = hist_create();
    if (rp->running == NULL || rp->snap_ttft == NULL) {
        replica_free(rp);
        return -1;
    }
    cluster_integrate(c);
    rp->id = c->next_replica_id++;
    rp->created_s = c->en->now_s;
    rp->kv_since_s = c->en->now_s;
    rp->end_pos = SIZE_MAX;
    c->replicas[c->n_replicas++] = rp;
    if (c->n_replicas > c->replicas_max)
        c->replicas_max = c->n_replicas;
    rp->state = REPLICA_PENDING;
    if (cold)
        c->cold_starts++;
    rp->node = nodes_place(c->nodes, c->sc->gpus_per_replica, !cold);
    if (rp->node != NULL && node_is_ready(rp->node) && replica_start(c, rp, cold) < 0)
        return -1;
    return rp->id;
}

struct cluster *cluster_create(const struct scenario *sc, int replicas, uint64_t seed, struct engine *en,
                               struct metrics *m, struct err *e)
{
    struct cluster *c = calloc(1, sizeof(*c));
    int i;

    if (c == NULL)
        goto nomem;
    c->sc = sc;
    c->en = en;
    c->m = m;
    /* Per-replica TTFT windows cost a logarithm per request: keep them only
     * when an autoscaler may read ttft_p90_seconds. */
    c->track_replica_ttft = sc->has_keda;
    for (i = 0; sc->has_hpa && i < (int)sc->hpa.nmetrics; i++)
        if (strstr(sc->hpa.metrics[i].name, "ttft") != NULL)
            c->track_replica_ttft = true;
    rng_init(&c->route_rng, seed, RNG_STREAM_ROUTING);
    rng_init(&c->service_rng, seed, RNG_STREAM_SERVICE);
    rng_init(&c->cache_rng, seed, RNG_STREAM_CACHE);
    c->nodes = nodes_create(sc->pools, sc->npools, sc->billing_minimum_s, en, seed, e);
    if (c->nodes == NULL)
        goto fail;
    if (sc->has_cache && (c->cache = cache_create((size_t)sc->cache_capacity)) == NULL)
        goto nomem;
    for (i = 0; i < replicas; i++)
        if (cluster_add_replica(c, false) < 0)
            goto nomem;
    c->replicas_min = c->n_replicas;
    return c;
nomem:
    err_set(e, ERR_SYSTEM, "out of memory");
fail:
    cluster_free(c);
    return NULL;
}

static void cluster_free_queue(struct rqueue *q)
{
    struct creq *r = q->head;

    while (r != NULL) {
        struct creq *next = r->next;
        free(r);
        r = next;
    }
}

void cluster_free(struct cluster *c)
{
    int i;

    if (c == NULL)
        return;
    for (i = 0; i < c->n_replicas; i++) {
        cluster_free_queue(&c->replicas[i]->waiting);
        replica_free(c->replicas[i]);
    }
    for (i = 0; i < c->n_retired; i++)
        replica_free(c->retired[i]);
    free(c->replicas);
    free(c->retired);
    cache_free(c->cache);
    nodes_free(c->nodes);
    cluster_free_queue(&c->gateway);
    while (c->free_list) {
        struct creq *r = c->free_list;
        c->free_list = r->next;
        free(r);
    }
    free(c);
}

size_t cluster_in_flight(const struct cluster *c)
{
    return c->in_flight;
}

/* ---- scaling ---------------------------------------------------------------------------- */

int cluster_replicas(const struct cluster *c, int *ready)
{
    int i, desired = 0, n_ready = 0;

    for (i = 0; i < c->n_replicas; i++) {
        desired += c->replicas[i]->state != REPLICA_DRAINING;
        n_ready += c->replicas[i]->state == REPLICA_READY;
    }
    if (ready != NULL)
        *ready = n_ready;
    return desired;
}

/* Scale-down victim: a starting replica before a ready one, the newest first
 * (as a ReplicaSet ranks pods for deletion: not ready before ready, then the
 * shortest time ready). */
static struct replica *cluster_victim(struct cluster *c)
{
    struct replica *best = NULL;
    int i;

    for (i = 0; i < c->n_replicas; i++) {
        struct replica *rp = c->replicas[i];
        if (rp->state == REPLICA_DRAINING)
            continue;
        /* REPLICA_PENDING < STARTING < READY in the enum: lower goes first. */
        if (best == NULL || rp->state < best->state || (rp->state == best->state && rp->id > best->id))
            best = rp;
    }
    return best;
}

/* Give pending replicas without a node a place, now that there may be room. */
static int cluster_place_pending(struct cluster *c)
{
    int i, n = c->n_replicas;

    for (i = 0; i < n; i++) {
        struct replica *rp = c->replicas[i];
        if (rp->state != REPLICA_PENDING || rp->node != NULL)
            continue;
        rp->node = nodes_place(c->nodes, c->sc->gpus_per_replica, false);
        if (rp->node != NULL && node_is_ready(rp->node) && replica_start(c, rp, true) < 0)
            return -1;
    }
    return 0;
}

int cluster_scale(struct cluster *c, int desired)
{
    int now_desired = cluster_replicas(c, NULL);

    while (now_desired < desired) {
        if (cluster_add_replica(c, true) < 0)
            return -1;
        now_desired++;
    }
    while (now_desired > desired) {
        struct replica *rp = cluster_victim(c);
        if (rp == NULL)
            break;
        now_desired--;
        /* Stop routing to it; it finishes what it holds, then goes. */
        rp->state = REPLICA_DRAINING;
        if (rp->outstanding == 0 && !rp->busy && !rp->start_pending && cluster_retire(c, rp) < 0)
            return -1;
    }
    return cluster_place_pending(c);
}

/* ---- events ----------------------------------------------------------------------------- */

/* Act on what a node event means for the replicas on that node. */
static int cluster_node_event(struct cluster *c, const struct event *ev)
{
    enum nodes_action act;
    struct node *n;
    int i, n0 = c->n_replicas;

    if (nodes_handle(c->nodes, ev, &act, &n) < 0)
        return -1;
    switch (act) {
    case NODES_NODE_READY:
        for (i = 0; i < n0; i++)
            if (c->replicas[i]->node == n && c->replicas[i]->state == REPLICA_PENDING &&
                replica_start(c, c->replicas[i], true) < 0)
                return -1;
        return 0;
    case NODES_CAPACITY:
        return cluster_place_pending(c);
    case NODES_NOTICE:
        /* Stop routing to its replicas; replace each one elsewhere now (a
         * terminating pod no longer counts for its ReplicaSet). */
        for (i = 0; i < n0; i++) {
            struct replica *rp = c->replicas[i];
            if (rp->node != n || rp->state == REPLICA_GONE)
                continue;
            c->preemptions++;
            if (rp->state != REPLICA_DRAINING && cluster_add_replica(c, true) < 0)
                return -1;
            rp->state = REPLICA_DRAINING;
        }
        /* Those with nothing to finish go at once. */
        for (i = c->n_replicas - 1; i >= 0; i--) {
            struct replica *rp = c->replicas[i];
            if (rp->node == n && rp->outstanding == 0 && !rp->busy && !rp->start_pending &&
                cluster_retire(c, rp) < 0)
                return -1;
        }
        return 0;
    case NODES_TERMINATED:
        for (i = c->n_replicas - 1; i >= 0; i--)
            if (c->replicas[i]->node == n && cluster_evict(c, c->replicas[i]) < 0)
                return -1;
        return cluster_drain_gateway(c);
    case NODES_NOTHING:
    default:
        return 0;
    }
}

int cluster_handle(struct cluster *c, const struct event *ev)
{
    switch (ev->type) {
    case EV_REPLICA_STEP_START: {
        struct replica *rp = ev->obj;
        if (rp->state == REPLICA_GONE)
            return 0; /* its node was taken away */
        rp->start_pending = false;
        return rp->busy ? 0 : replica_start_step(c, rp);
    }
    case EV_REPLICA_STEP_END: {
        struct replica *rp = ev->obj;
        if (rp->state == REPLICA_GONE || ev->arg != rp->step_gen)
            return 0; /* its node was taken away, or the run was cut short */
        return replica_end_step(c, rp);
    }
    case EV_NODE_READY:
    case EV_NODE_IDLE:
    case EV_SPOT_NOTICE:
    case EV_SPOT_TERMINATE:
        return cluster_node_event(c, ev);
    case EV_REPLICA_READY: {
        struct replica *rp = ev->obj;
        if (rp->state != REPLICA_STARTING)
            return 0; /* scaled away before it came up */
        rp->state = REPLICA_READY;
        rp->ready_s = c->en->now_s;
        return cluster_drain_gateway(c);
    }
    default:
        assert(!"unknown cluster event");
        return 0;
    }
}

struct nodes *cluster_nodes(struct cluster *c)
{
    return c->nodes;
}

size_t cluster_size(const struct cluster *c)
{
    return (size_t)c->n_replicas;
}

unsigned long long cluster_arrivals(const struct cluster *c)
{
    return c->arrived;
}
