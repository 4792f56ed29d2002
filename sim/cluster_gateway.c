/* cluster_gateway.c -- the gateway in front of the replicas (see
 * cluster.h): an arrival is answered by the response cache, refused when it
 * can never fit, routed to a ready replica with room by the scenario's
 * policy, or held in the FIFO queue (a full one rejects); requests that wait
 * past the queue timeout are dropped from its head. */
#include "sim/cluster_int.h"

#include <stdbool.h>
#include <string.h>

#include "common/rng.h"
#include "sim/cache.h"

static bool replica_has_room(const struct cluster *c, const struct replica *rp)
{
    return rp->state == REPLICA_READY && (c->sc->max_concurrency == 0 || rp->outstanding < c->sc->max_concurrency);
}

/* Choose a replica with room by the routing policy; NULL when none has room. */
static struct replica *cluster_route(struct cluster *c)
{
    int n = c->n_replicas, i, best = -1;

    switch (c->sc->routing) {
    case ROUTE_ROUND_ROBIN:
        for (i = 0; i < n; i++) {
            int k = (c->rr_next + i) % n;
            if (replica_has_room(c, c->replicas[k])) {
                best = k;
                break;
            }
        }
        break;
    case ROUTE_LEAST_OUTSTANDING:
        /* Scan from a rotating start so ties spread evenly. */
        for (i = 0; i < n; i++) {
            int k = (c->rr_next + i) % n;
            if (replica_has_room(c, c->replicas[k]) &&
                (best < 0 || c->replicas[k]->outstanding < c->replicas[best]->outstanding))
                best = k;
        }
        break;
    case ROUTE_POWER_OF_TWO:
    case ROUTE_RANDOM: {
        /* Sample among replicas with room: by rejection while most have
         * room, by a scan when few do. */
        int tries, picks[2] = {-1, -1}, want = c->sc->routing == ROUTE_RANDOM ? 1 : 2, got = 0;
        for (tries = 0; tries < 4 * n && got < want; tries++) {
            int k = (int)rng_below(&c->route_rng, (uint64_t)n);
            if (replica_has_room(c, c->replicas[k]) && (got == 0 || picks[0] != k))
                picks[got++] = k;
        }
        if (got == 0) {
            for (i = 0; i < n; i++)
                if (replica_has_room(c, c->replicas[i]))
                    picks[got++ > 0 ? 1 : 0] = i;
            got = got > 0;
        }
        if (got == 0)
            break;
        best = picks[0];
        if (got == 2 && c->replicas[picks[1]]->outstanding < c->replicas[best]->outstanding)
            best = picks[1];
        break;
    }
    }
    if (best < 0)
        return NULL;
    c->rr_next = (best + 1) % n;
    return c->replicas[best];
}

static int cluster_dispatch(struct cluster *c, struct replica *rp, struct creq *r)
{
    r->replica = rp->id;
    rq_push(&rp->waiting, r);
    rp->outstanding++;
    if (rp->busy && rp->run_steps > 1)
        return replica_cut_run(c, rp);
    if (rp->busy || rp->start_pending)
        return 0;
    if (c->sc->service != SERVICE_PROFILE)
        return replica_start_single(c, rp); /* nothing to batch with */
    /* Start the step after every other event of this instant, so that the
     * batch holds all the requests that arrived at the same time. */
    rp->start_pending = true;
    return engine_schedule(c->en, c->en->now_s, EV_REPLICA_STEP_START, rp, 0);
}

/* Drop timed-out requests from the head of the gateway queue.  The queue is
 * in arrival order and every request has the same timeout, so the expired
 * ones are exactly a prefix. */
void cluster_expire_gateway(struct cluster *c)
{
    struct creq *r;

    while ((r = c->gateway.head) != NULL && cluster_expired(c, r)) {
        rq_remove(&c->gateway, r);
        cluster_drop(c, r, OUTCOME_TIMED_OUT);
    }
}

/* Move queued requests to replicas that have room. */
int cluster_drain_gateway(struct cluster *c)
{
    cluster_expire_gateway(c);
    while (c->gateway.head != NULL) {
        struct replica *rp = cluster_route(c);
        struct creq *r = c->gateway.head;
        if (rp == NULL)
            break;
        rq_remove(&c->gateway, r);
        if (cluster_dispatch(c, rp, r) < 0)
            return -1;
        cluster_expire_gateway(c);
    }
    return 0;
}

int cluster_arrive(struct cluster *c, const struct trace_request *req)
{
    return cluster_arrive_via(c, req, NULL);
}

int cluster_arrive_via(struct cluster *c, const struct trace_request *req, const struct cluster_arrival *a)
{
    const struct scenario *sc = c->sc;
    struct creq *r = cluster_req_new(c);
    struct replica *rp;

    if (r == NULL)
        return -1;
    r->id = a != NULL ? a->id : c->next_id;
    c->next_id++;
    c->arrived++;
    r->arrival_s = a != NULL ? a->arrival_s : c->en->now_s;
    r->prompt = req->prompt_tokens;
    r->output = req->output_tokens > 0 ? req->output_tokens : 1;
    r->replica = -1;
    if (a != NULL) {
        r->rtt_s = a->rtt_s;
        r->client = a->client;
    }
    if (a != NULL && a->retry) {
        r->cache_key = req->prompt_hash; /* looked up where it first arrived */
    } else {
        metrics_arrival(c->m, r->prompt);
    }
    /* The response cache answers deterministic requests it has seen. */
    if (c->cache != NULL && req->prompt_hash != 0 && (a == NULL || !a->retry) &&
        (sc->cache_deterministic >= 1 || rng_uniform(&c->cache_rng) < sc->cache_deterministic)) {
        c->cache_lookups++;
        if (cache_get(c->cache, req->prompt_hash, r->arrival_s)) {
            struct request_times t;
            c->cache_hits++;
            c->cache_tokens_saved += (double)r->prompt + r->output;
            memset(&t, 0, sizeof(t));
            t.id = r->id;
            t.arrival_s = t.start_s = r->arrival_s;
            t.first_token_s = t.finish_s = r->arrival_s + sc->cache_hit_latency_s + r->rtt_s;
            t.prompt_tokens = r->prompt;
            t.output_tokens = r->output;
            t.replica = -1;
            metrics_first_token(c->m, sc->cache_hit_latency_s + r->rtt_s);
            metrics_done(c->m, &t);
            c->completed++;
            cluster_req_free(c, r);
            return 0;
        }
        r->cache_key = req->prompt_hash;
    }
    /* A prompt that can never fit in a replica's KV cache is refused at once. */
    if (sc->service == SERVICE_PROFILE && (double)r->prompt + r->output > sc->kv_capacity_tokens) {
        cluster_drop(c, r, OUTCOME_REJECTED);
        return 0;
    }
    cluster_expire_gateway(c);
    rp = c->gateway.head == NULL ? cluster_route(c) : NULL;
    if (rp != NULL)
        return cluster_dispatch(c, rp, r);
    if (sc->queue_capacity >= 0 && c->gateway.len >= sc->queue_capacity) {
        cluster_drop(c, r, OUTCOME_REJECTED);
        return 0;
    }
    rq_push(&c->gateway, r);
    return 0;
}

bool cluster_full(struct cluster *c)
{
    int i;

    cluster_expire_gateway(c);
    if (c->sc->queue_capacity < 0 || c->gateway.len < c->sc->queue_capacity)
        return false;
    if (c->gateway.head != NULL)
        return true; /* queued requests go first: a new one would wait */
    for (i = 0; i < c->n_replicas; i++)
        if (replica_has_room(c, c->replicas[i]))
            return false;
    return true;
}

long cluster_gateway_waiting(struct cluster *c)
{
    cluster_expire_gateway(c);
    return c->gateway.len;
}
