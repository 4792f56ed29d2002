/* cluster_evacuate.c -- taking requests back out of replicas (see
 * cluster.h): when a spot node is terminated its replicas' requests go back
 * to the head of the gateway queue, to be recomputed elsewhere
 * (cluster_evict); when a region goes down every request the cluster holds
 * is handed to the global load balancer (cluster_evacuate, sim/regions.c). */
#include "sim/cluster_int.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* RP's node is gone: its sequences lose their KV cache and go back to the
 * head of the gateway queue (recomputed elsewhere, as after a preemption),
 * its waiting requests after them; then it goes. */
int cluster_evict(struct cluster *c, struct replica *rp)
{
    struct creq *r;
    int i;

    while ((r = rp->waiting.tail) != NULL) {
        rq_remove(&rp->waiting, r);
        rq_push_front(&c->gateway, r);
        c->requeued++;
    }
    for (i = rp->n_running - 1; i >= 0; i--) {
        r = rp->running[i];
        c->lost_tokens += r->kv_tokens;
        r->kv_tokens = 0;
        r->prefilled = 0;
        r->prefill_target = r->prompt + r->generated;
        r->step_chunk = 0;
        r->decoding = false;
        rq_push_front(&c->gateway, r);
        c->requeued++;
    }
    replica_integrate_kv(rp, c->en->now_s);
    rp->n_running = 0;
    rp->outstanding = 0;
    rp->kv_used = 0;
    rp->busy = false;          /* the step in flight is lost: its end is ignored */
    rp->start_pending = false;
    return cluster_retire(c, rp);
}

/* Move R out of the cluster into the evacuee list. */
static int cluster_evacuee_push(struct cluster *c, struct creq *r, struct cluster_evacuee **out, size_t *n,
                                size_t *cap)
{
    struct cluster_evacuee *v;

    if (*n == *cap) {
        size_t newcap = *cap ? *cap * 2 : 64;
        struct cluster_evacuee *b = realloc(*out, newcap * sizeof(*b));
        if (b == NULL)
            return -1;
        *out = b;
        *cap = newcap;
    }
    v = &(*out)[(*n)++];
    memset(v, 0, sizeof(*v));
    v->req.arrival_s = r->arrival_s;
    v->req.prompt_tokens = r->prompt;
    v->req.output_tokens = r->output;
    v->req.prompt_hash = r->cache_key;
    v->a.id = r->id;
    v->a.arrival_s = r->arrival_s;
    v->a.rtt_s = r->rtt_s;
    v->a.client = r->client;
    v->a.retry = true;
    cluster_req_free(c, r);
    return 0;
}

int cluster_evacuate(struct cluster *c, struct cluster_evacuee **out, size_t *n, size_t *cap)
{
    struct creq *r;
    int i, j;

    while ((r = c->gateway.head) != NULL) {
        rq_remove(&c->gateway, r);
        if (cluster_evacuee_push(c, r, out, n, cap) < 0)
            return -1;
    }
    for (i = 0; i < c->n_replicas; i++) {
        struct replica *rp = c->replicas[i];
        for (j = 0; j < rp->n_running; j++)
            if (cluster_evacuee_push(c, rp->running[j], out, n, cap) < 0)
                return -1;
        while ((r = rp->waiting.head) != NULL) {
            rq_remove(&rp->waiting, r);
            if (cluster_evacuee_push(c, r, out, n, cap) < 0)
                return -1;
        }
        replica_integrate_kv(rp, c->en->now_s);
        rp->n_running = 0;
        rp->outstanding = 0;
        rp->kv_used = 0;
        rp->busy = false;    /* the step in flight is abandoned: its end is ignored */
        rp->step_gen++;
        rp->start_pending = false;
    }
    for (i = c->n_replicas - 1; i >= 0; i--)
        if (c->replicas[i]->state == REPLICA_DRAINING && cluster_retire(c, c->replicas[i]) < 0)
            return -1;
    return 0;
}
