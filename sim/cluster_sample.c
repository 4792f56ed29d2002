/* cluster_sample.c -- what the cluster reports (see cluster.h): a timeline
 * sample per interval (cluster_sample), the totals at the end of a run
 * (cluster_totals), and what each replica exports to a metrics scrape
 * (cluster_snapshot). */
#include "sim/cluster_int.h"

#include <string.h>

#include "common/hist.h"
#include "sim/cache.h"
#include "sim/nodes.h"

void cluster_sample(struct cluster *c, struct timeline_sample *s)
{
    double now = c->en->now_s, busy = 0, kv = 0, dt_replica;
    int i;

    cluster_integrate(c);
    cluster_expire_gateway(c);
    memset(s, 0, sizeof(*s));
    s->queue_len = c->gateway.len;
    busy = c->retired_busy_s;
    kv = c->retired_kv_token_s;
    for (i = 0; i < c->n_replicas; i++) {
        struct replica *rp = c->replicas[i];
        replica_integrate_kv(rp, now);
        s->queue_len += rp->waiting.len;
        s->running += rp->n_running;
        busy += rp->busy_s;
        kv += rp->kv_token_s;
        s->replicas_ready += rp->state == REPLICA_READY;
        s->replicas_desired += rp->state != REPLICA_DRAINING;
    }
    dt_replica = c->replica_s - c->last_replica_s;
    if (dt_replica > 0) {
        s->busy_frac = (busy - c->last_busy_s) / dt_replica;
        if (s->busy_frac > 1)
            s->busy_frac = 1;
        if (c->sc->service == SERVICE_PROFILE)
            s->kv_util = (kv - c->last_kv_token_s) / (dt_replica * c->sc->kv_capacity_tokens);
    }
    s->cost_usd = nodes_cost_usd(c->nodes);
    s->cold_starts = c->cold_starts;
    for (i = 0; i < (int)nodes_npools(c->nodes) && i < CLUSTER_MAX_POOLS; i++) {
        c->pool_nodes[i] = nodes_count(c->nodes, (size_t)i);
        s->nodes += c->pool_nodes[i];
    }
    s->pool_nodes = c->pool_nodes;
    c->last_busy_s = busy;
    c->last_kv_token_s = kv;
    c->last_replica_s = c->replica_s;
}

void cluster_totals(struct cluster *c, struct cluster_totals *t)
{
    int i;

    cluster_integrate(c);
    memset(t, 0, sizeof(*t));
    t->busy_s = c->retired_busy_s;
    t->kv_token_s = c->retired_kv_token_s;
    for (i = 0; i < c->n_replicas; i++) {
        replica_integrate_kv(c->replicas[i], c->en->now_s);
        t->busy_s += c->replicas[i]->busy_s;
        t->kv_token_s += c->replicas[i]->kv_token_s;
    }
    t->arrived = c->arrived;
    t->completed = c->completed;
    t->replica_s = c->replica_s;
    t->kv_capacity_tokens = c->sc->kv_capacity_tokens;
    for (i = 0; i < (int)nodes_npools(c->nodes); i++) {
        struct pool_totals pt;
        nodes_totals(c->nodes, (size_t)i, &pt);
        t->gpu_hours += pt.node_s / 3600.0 * nodes_pool_spec(c->nodes, (size_t)i)->gpus_per_node;
        t->cost_usd += pt.cost_usd;
        t->on_demand_usd += pt.on_demand_usd;
    }
    t->replicas_min = c->replicas_min;
    t->replicas_max = c->replicas_max;
    t->steps = c->steps;
    t->cold_starts = c->cold_starts;
    t->preemptions = c->preemptions;
    t->requeued = c->requeued;
    t->lost_tokens = c->lost_tokens;
    t->cache_lookups = c->cache_lookups;
    t->cache_hits = c->cache_hits;
    t->cache_tokens_saved = c->cache_tokens_saved;
    t->cache_evictions = c->cache ? cache_evictions(c->cache) : 0;
    /* GPU time saved: the tokens not computed, at the run's own busy
     * GPU-seconds per token served. */
    if (c->tokens_served > 0)
        t->cache_gpu_s_saved = c->cache_tokens_saved * t->busy_s * c->sc->gpus_per_replica / c->tokens_served;
}

size_t cluster_snapshot(struct cluster *c, struct replica_sample *out, size_t max)
{
    double now = c->en->now_s, window = now - c->last_snapshot_s;
    size_t n = 0;
    int i;

    for (i = 0; i < c->n_replicas && n < max; i++) {
        struct replica *rp = c->replicas[i];
        struct replica_sample *sm = &out[n++];
        double busy = rp->busy_s - rp->snap_busy_s;

        memset(sm, 0, sizeof(*sm));
        sm->id = rp->id;
        sm->state = rp->state;
        sm->created_s = rp->created_s;
        sm->ready_s = rp->ready_s;
        sm->waiting = rp->waiting.len;
        sm->running = rp->n_running;
        if (c->sc->service == SERVICE_PROFILE)
            sm->kv_usage = rp->kv_used / c->sc->kv_capacity_tokens;
        sm->busy_frac = window > 0 ? busy / window : 0;
        if (sm->busy_frac > 1)
            sm->busy_frac = 1;
        if (sm->busy_frac < 0)
            sm->busy_frac = 0;
        sm->has_ttft = hist_count(rp->snap_ttft) > 0;
        sm->ttft_p90_s = hist_quantile(rp->snap_ttft, 0.9);
        hist_reset(rp->snap_ttft);
        rp->snap_busy_s = rp->busy_s;
    }
    c->last_snapshot_s = now;
    return n;
}
