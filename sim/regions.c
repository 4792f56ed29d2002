/* regions.c -- see regions.h. */
#include "sim/regions.h"

#include <stdlib.h>
#include <string.h>

#include "common/rng.h"

struct region {
    int index;
    const struct region_spec *spec; /* NULL: the implicit region */
    struct engine en;               /* its own queue (unused by the implicit region) */
    struct engine *enp;             /* the queue its cluster and autoscaler use */
    struct cluster *cl;
    struct autoscaler *as;          /* NULL without an autoscaler */
    bool down;
    unsigned long long failed_over; /* requests moved out by outages */
};

struct regions {
    const struct scenario *sc;
    struct engine *en; /* the simulator's queue: arrivals, ticks, outages */
    struct metrics *m;
    struct region *r;
    size_t n;
    bool multi;        /* a regions: section: the balancer routes */
    struct rng client_rng;
    uint64_t next_id;
    /* nearest[c * n + k]: the k-th nearest region from client region c */
    int *nearest;
    struct cluster_evacuee *evac; /* scratch for failovers */
    size_t cap_evac;
    int pool_nodes[64];           /* the summed sample's nodes by pool */
};

static int regions_cmp_evacuee(const void *a, const void *b)
{
    const struct cluster_evacuee *x = a, *y = b;

    if (x->a.arrival_s != y->a.arrival_s)
        return x->a.arrival_s < y->a.arrival_s ? -1 : 1;
    return x->a.id < y->a.id ? -1 : x->a.id > y->a.id;
}

static int regions_schedule_outages(struct regions *rg, struct region *r)
{
    size_t i;

    for (i = 0; i < r->spec->noutages; i++)
        if (engine_schedule(rg->en, r->spec->outages[i].start_s, EV_REGION_DOWN, r, 0) < 0 ||
            engine_schedule(rg->en, r->spec->outages[i].end_s, EV_REGION_UP, r, 0) < 0)
            return -1;
    return 0;
}

struct regions *regions_create(const struct scenario *sc, struct engine *en, struct metrics *m, struct err *e)
{
    struct regions *rg = calloc(1, sizeof(*rg));
    size_t i, c;

    if (rg == NULL)
        goto nomem;
    rg->sc = sc;
    rg->en = en;
    rg->m = m;
    rg->multi = sc->nregions > 0;
    rg->n = rg->multi ? sc->nregions : 1;
    rng_init(&rg->client_rng, sc->seed, RNG_STREAM_REGION);
    rg->r = calloc(rg->n, sizeof(*rg->r));
    rg->nearest = calloc(rg->n * rg->n, sizeof(*rg->nearest));
    if (rg->r == NULL || rg->nearest == NULL)
        goto nomem;
    for (i = 0; i < rg->n; i++) {
        struct region *r = &rg->r[i];
        r->index = (int)i;
        r->spec = rg->multi ? &sc->regions[i] : NULL;
        engine_init(&r->en);
        r->enp = rg->multi ? &r->en : en;
    }
    for (i = 0; i < rg->n; i++) {
        struct region *r = &rg->r[i];
        /* Region i draws from seed + i: the regions' random streams differ. */
        r->cl = cluster_create(sc, r->spec ? r->spec->replicas : sc->replicas, sc->seed + i, r->enp, m, e);
        if (r->cl == NULL)
            goto fail;
        if (sc->has_hpa && (r->as = autoscaler_create(sc, r->cl, r->enp, e)) == NULL)
            goto fail;
        if (r->spec != NULL && regions_schedule_outages(rg, r) < 0)
            goto nomem;
    }
    /* Nearest first from each client region; at equal latency, the
     * scenario's order (an insertion sort: a handful of regions). */
    for (c = 0; rg->multi && c < rg->n; c++) {
        int *order = &rg->nearest[c * rg->n];
        for (i = 0; i < rg->n; i++) {
            size_t j = i;
            while (j > 0 && sc->regions[order[j - 1]].latency_s[c] > sc->regions[i].latency_s[c]) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = (int)i;
        }
    }
    return rg;
nomem:
    err_set(e, ERR_SYSTEM, "out of memory");
fail:
    regions_free(rg);
    return NULL;
}

void regions_free(struct regions *rg)
{
    size_t i;

    if (rg == NULL)
        return;
    for (i = 0; rg->r != NULL && i < rg->n; i++) {
        autoscaler_free(rg->r[i].as);
        cluster_free(rg->r[i].cl);
        engine_free(&rg->r[i].en);
    }
    free(rg->r);
    free(rg->nearest);
    free(rg->evac);
    free(rg);
}

int regions_pop(struct regions *rg, struct event *ev, int *region)
{
    struct engine *best = rg->en;
    double t, best_t = 0;
    bool any = engine_peek(rg->en, &best_t);
    size_t i;

    *region = -1;
    for (i = 0; rg->multi && i < rg->n; i++)
        if (engine_peek(&rg->r[i].en, &t) && (!any || t < best_t)) {
            any = true;
            best_t = t;
            best = &rg->r[i].en;
            *region = (int)i;
        }
    if (!any || !engine_pop(best, ev))
        return 0;
    rg->en->now_s = ev->time_s;
    for (i = 0; rg->multi && i < rg->n; i++)
        rg->r[i].en.now_s = ev->time_s;
    return 1;
}

/* The nearest region from client region CLIENT that is up and not full, or
 * NULL. */
static struct region *regions_choose(struct regions *rg, int client)
{
    size_t k;

    for (k = 0; k < rg->n; k++) {
        struct region *r = &rg->r[rg->nearest[(size_t)client * rg->n + k]];
        if (!r->down && !cluster_full(r->cl))
            return r;
    }
    return NULL;
}

/* Send REQ (as A says, but for the round trip) to the nearest region with
 * room; reject it when there is none. */
static int regions_route(struct regions *rg, const struct trace_request *req, struct cluster_arrival *a)
{
    struct region *r = regions_choose(rg, a->client);

    if (r == NULL) {
        if (!a->retry)
            metrics_arrival(rg->m, req->prompt_tokens);
        metrics_dropped(rg->m, OUTCOME_REJECTED, a->id, a->arrival_s, rg->en->now_s);
        return 0;
    }
    a->rtt_s = r->spec->latency_s[a->client];
    return cluster_arrive_via(r->cl, req, a);
}

int regions_arrive(struct regions *rg, const struct trace_request *req)
{
    struct cluster_arrival a;
    double u;
    size_t c;

    if (!rg->multi)
        return cluster_arrive(rg->r[0].cl, req);
    /* The client region, by the shares. */
    u = rng_uniform(&rg->client_rng);
    for (c = 0; c + 1 < rg->n && u >= rg->sc->regions[c].client_share; c++)
        u -= rg->sc->regions[c].client_share;
    while (rg->sc->regions[c].client_share == 0 && c > 0)
        c--; /* rounding at the end: the last region with a share */
    memset(&a, 0, sizeof(a));
    a.id = rg->next_id++;
    a.arrival_s = rg->en->now_s;
    a.client = (int)c;
    return regions_route(rg, req, &a);
}

/* R goes down: what it holds fails over, oldest first. */
static int regions_fail_over(struct regions *rg, struct region *r)
{
    size_t i, n = 0;

    r->down = true;
    if (cluster_evacuate(r->cl, &rg->evac, &n, &rg->cap_evac) < 0)
        return -1;
    if (n > 1)
        qsort(rg->evac, n, sizeof(*rg->evac), regions_cmp_evacuee);
    r->failed_over += n;
    for (i = 0; i < n; i++)
        if (regions_route(rg, &rg->evac[i].req, &rg->evac[i].a) < 0)
            return -1;
    return 0;
}

int regions_handle(struct regions *rg, int region, const struct event *ev)
{
    struct region *r = &rg->r[region < 0 ? 0 : region];

    switch (ev->type) {
    case EV_REGION_DOWN:
        return regions_fail_over(rg, ev->obj);
    case EV_REGION_UP:
        ((struct region *)ev->obj)->down = false;
        return 0;
    case EV_SCRAPE:
    case EV_HPA_SYNC:
    case EV_KEDA_POLL:
        return autoscaler_handle(r->as, ev);
    default:
        return cluster_handle(r->cl, ev);
    }
}

size_t regions_in_flight(const struct regions *rg)
{
    size_t i, n = 0;

    for (i = 0; i < rg->n; i++)
        n += cluster_in_flight(rg->r[i].cl);
    return n;
}

bool regions_idle_forever(const struct regions *rg)
{
    size_t i;

    for (i = 0; i < rg->n; i++)
        if (!autoscaler_idle_forever(rg->r[i].as))
            return false;
    return true;
}

unsigned long long regions_events(const struct regions *rg)
{
    unsigned long long n = 0;
    size_t i;

    for (i = 0; rg->multi && i < rg->n; i++)
        n += rg->r[i].en.processed;
    return n;
}

void regions_sample(struct regions *rg, struct timeline_sample *s)
{
    double weight = 0, busy = 0, kv = 0;
    size_t i, p;

    if (!rg->multi) {
        cluster_sample(rg->r[0].cl, s);
        return;
    }
    memset(s, 0, sizeof(*s));
    memset(rg->pool_nodes, 0, sizeof(rg->pool_nodes));
    for (i = 0; i < rg->n; i++) {
        struct timeline_sample one;
        double w = (double)cluster_size(rg->r[i].cl);
        cluster_sample(rg->r[i].cl, &one);
        s->queue_len += one.queue_len;
        s->running += one.running;
        s->replicas_desired += one.replicas_desired;
        s->replicas_ready += one.replicas_ready;
        s->cost_usd += one.cost_usd;
        s->nodes += one.nodes;
        s->cold_starts += one.cold_starts;
        for (p = 0; p < rg->sc->npools && p < 64; p++)
            rg->pool_nodes[p] += one.pool_nodes[p];
        busy += w * one.busy_frac;
        kv += w * one.kv_util;
        weight += w;
    }
    s->busy_frac = weight > 0 ? busy / weight : 0;
    s->kv_util = weight > 0 ? kv / weight : 0;
    s->pool_nodes = rg->pool_nodes;
}

void regions_totals(struct regions *rg, struct cluster_totals *t)
{
    size_t i;

    cluster_totals(rg->r[0].cl, t);
    for (i = 1; i < rg->n; i++) {
        struct cluster_totals o;
        cluster_totals(rg->r[i].cl, &o);
        t->arrived += o.arrived;
        t->completed += o.completed;
        t->replica_s += o.replica_s;
        t->busy_s += o.busy_s;
        t->kv_token_s += o.kv_token_s;
        t->cost_usd += o.cost_usd;
        t->on_demand_usd += o.on_demand_usd;
        t->gpu_hours += o.gpu_hours;
        t->replicas_min += o.replicas_min;
        t->replicas_max += o.replicas_max;
        t->steps += o.steps;
        t->cold_starts += o.cold_starts;
        t->preemptions += o.preemptions;
        t->requeued += o.requeued;
        t->lost_tokens += o.lost_tokens;
        t->cache_lookups += o.cache_lookups;
        t->cache_hits += o.cache_hits;
        t->cache_evictions += o.cache_evictions;
        t->cache_tokens_saved += o.cache_tokens_saved;
        t->cache_gpu_s_saved += o.cache_gpu_s_saved;
    }
}

void regions_autoscaler_totals(const struct regions *rg, struct autoscaler_totals *t)
{
    size_t i;

    autoscaler_totals(rg->r[0].as, t);
    for (i = 1; i < rg->n; i++) {
        struct autoscaler_totals o;
        autoscaler_totals(rg->r[i].as, &o);
        t->syncs += o.syncs;
        t->scale_ups += o.scale_ups;
        t->scale_downs += o.scale_downs;
        t->keda_polls += o.keda_polls;
        t->activations += o.activations;
        t->scale_to_zero += o.scale_to_zero;
    }
}

void regions_pool_totals(struct regions *rg, size_t pool, struct pool_totals *t)
{
    size_t i;

    nodes_totals(cluster_nodes(rg->r[0].cl), pool, t);
    for (i = 1; i < rg->n; i++) {
        struct pool_totals o;
        nodes_totals(cluster_nodes(rg->r[i].cl), pool, &o);
        t->node_s += o.node_s;
        t->cost_usd += o.cost_usd;
        t->on_demand_usd += o.on_demand_usd;
        t->provisioned += o.provisioned;
        t->removed_idle += o.removed_idle;
        t->preemptions += o.preemptions;
        t->nodes_max += o.nodes_max;
    }
}

unsigned long long regions_failed_over(const struct regions *rg)
{
    unsigned long long n = 0;
    size_t i;

    for (i = 0; i < rg->n; i++)
        n += rg->r[i].failed_over;
    return n;
}

json_t *regions_summary(struct regions *rg, double span_s)
{
    json_t *out;
    size_t i;

    if (!rg->multi || (out = json_object()) == NULL)
        return NULL;
    for (i = 0; i < rg->n; i++) {
        struct region *r = &rg->r[i];
        struct cluster_totals t;
        json_t *one;
        cluster_totals(r->cl, &t);
        one = json_pack("{s:I,s:I,s:I,s:f,s:f}", "arrived", (json_int_t)t.arrived, "completed",
                        (json_int_t)t.completed, "failed_over", (json_int_t)r->failed_over, "cost_usd", t.cost_usd,
                        "replicas_mean", span_s > 0 ? t.replica_s / span_s : 0.0);
        if (one == NULL || json_object_set_new(out, r->spec->name, one) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
