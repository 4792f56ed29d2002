/* cluster.c -- see cluster.h.  Requests live in a pool of structs reused
 * after they finish, so memory follows the number in flight, not the trace. */
#include "sim/cluster.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/hist.h"
#include "common/rng.h"
#include "sim/cache.h"
#include "sim/nodes.h"

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

/* ---- queues and the request pool --------------------------------------------------- */

static void rq_push(struct rqueue *q, struct creq *r)
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

static void rq_push_front(struct rqueue *q, struct creq *r)
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

static void rq_remove(struct rqueue *q, struct creq *r)
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

static struct creq *cluster_req_new(struct cluster *c)
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

static void cluster_req_free(struct cluster *c, struct creq *r)
{
    r->next = c->free_list;
    c->free_list = r;
    c->in_flight--;
}

/* ---- time integrals ------------------------------------------------------------------- */

/* Bring the replica-count integral up to now. */
static void cluster_integrate(struct cluster *c)
{
    double now = c->en->now_s;

    c->replica_s += c->n_replicas * (now - c->integral_since_s);
    c->integral_since_s = now;
}

/* Bring a replica's KV integral up to now (call before kv_used changes). */
static void replica_integrate_kv(struct replica *rp, double now)
{
    rp->kv_token_s += rp->kv_used * (now - rp->kv_since_s);
    rp->kv_since_s = now;
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

static int cluster_drain_gateway(struct cluster *c);

/* Take RP out of the billed set (it has no work left). */
static int cluster_retire(struct cluster *c, struct replica *rp)
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

/* ---- replicas ---------------------------------------------------------------------------- */

static bool cluster_expired(const struct cluster *c, const struct creq *r)
{
    return c->sc->queue_timeout_s > 0 && !r->started && c->en->now_s - r->arrival_s > c->sc->queue_timeout_s;
}

static void cluster_drop(struct cluster *c, struct creq *r, enum request_outcome why)
{
    metrics_dropped(c->m, why, r->id, r->arrival_s, c->en->now_s);
    cluster_req_free(c, r);
}

static void replica_mark_started(struct cluster *c, struct creq *r)
{
    if (!r->started) {
        r->started = true;
        r->start_s = c->en->now_s;
    }
}

static void cluster_finish(struct cluster *c, struct replica *rp, struct creq *r)
{
    struct request_times t;

    t.id = r->id;
    t.arrival_s = r->arrival_s;
    t.start_s = r->start_s;
    t.first_token_s = r->first_token_s + r->rtt_s;
    t.finish_s = c->en->now_s + r->rtt_s;
    t.prompt_tokens = r->prompt;
    t.output_tokens = r->output;
    t.preemptions = r->preemptions;
    t.replica = rp->id;
    metrics_done(c->m, &t);
    c->completed++;
    c->tokens_served += (double)r->prompt + r->output;
    if (r->cache_key != 0)
        cache_put(c->cache, r->cache_key, c->en->now_s + c->sc->cache_ttl_s);
    rp->outstanding--;
    cluster_req_free(c, r);
}

/* One at a time (service kind exponential or deterministic). */
static int replica_start_single(struct cluster *c, struct replica *rp)
{
    struct creq *r;
    double service_s;

    while ((r = rp->waiting.head) != NULL && cluster_expired(c, r)) {
        rq_remove(&rp->waiting, r);
        rp->outstanding--;
        cluster_drop(c, r, OUTCOME_TIMED_OUT);
    }
    if (r == NULL)
        return 0;
    rq_remove(&rp->waiting, r);
    replica_mark_started(c, r);
    rp->running[0] = r;
    rp->n_running = 1;
    if (c->sc->service == SERVICE_EXPONENTIAL)
        service_s = rng_exp(&c->service_rng, c->sc->service_mean_s);
    else
        service_s = c->sc->service_mean_s;
    rp->busy = true;
    rp->step_s = service_s;
    c->steps++;
    return engine_schedule_tracked(c->en, c->en->now_s + service_s, EV_REPLICA_STEP_END, rp, ++rp->step_gen,
                                   &rp->end_pos);
}

/* Preempt the newest running sequence: free its KV and put it back at the
 * head of the waiting list to be recomputed (prompt + tokens so far). */
static void replica_preempt_newest(struct cluster *c, struct replica *rp)
{
    struct creq *r = rp->running[--rp->n_running];

    rp->kv_used -= r->kv_tokens;
    r->kv_tokens = 0;
    r->prefilled = 0;
    r->prefill_target = r->prompt + r->generated;
    r->preemptions++;
    c->m->preemptions++;
    rq_push_front(&rp->waiting, r);
}

/* Walk the steps of RP's decode run (N sequences over CTX0 tokens, growing by
 * N a step) until MAX_STEPS steps or until they last UNTIL_S: returns their
 * duration, the steps walked in *steps and the KV token-seconds the growth
 * adds in *kv_extra. */
static double replica_run_prefix(const struct cluster *c, const struct replica *rp, int max_steps, double until_s,
                                 int *steps, double *kv_extra)
{
    double t = 0, extra = 0;
    int j = 0;

    while (j < max_steps && t < until_s) {
        double dt = profile_iteration_s(c->sc->profile, 0, 0, rp->run_seqs, rp->run_ctx0 + (double)j * rp->run_seqs);
        extra += (double)j * rp->run_seqs * dt;
        t += dt;
        j++;
    }
    *steps = j;
    *kv_extra = extra;
    return t;
}

/* The batch is all decode: until a sequence finishes, the KV cache fills or a
 * request arrives, every step is the same but for the context growing by one
 * token a sequence.  Simulate that run as one event (cut short by
 * replica_cut_run when a request arrives).  Returns the number of steps
 * planned; sets step_s. */
static int replica_plan_decode_run(struct cluster *c, struct replica *rp, int n, double ctx0)
{
    int i, k = 4096;
    double room;

    for (i = 0; i < rp->n_running; i++) {
        const struct creq *r = rp->running[i];
        int left = (int)(r->output - r->generated);
        if (left < k)
            k = left;
    }
    room = (c->sc->kv_capacity_tokens - rp->kv_used) / n;
    if (room < k)
        k = (int)room;
    if (k <= 1)
        return 1;
    rp->run_steps = k;
    rp->run_start_s = c->en->now_s;
    rp->run_ctx0 = ctx0;
    rp->run_seqs = n;
    rp->step_s = replica_run_prefix(c, rp, k, INFINITY, &k, &rp->run_kv_extra);
    return k;
}

/* A request reached RP during a decode run: end the run at the first step
 * boundary from now, so the next step can take it in. */
static int replica_cut_run(struct cluster *c, struct replica *rp)
{
    double extra, t;
    int m;

    /* The first boundary at or after now: at least one step. */
    t = replica_run_prefix(c, rp, rp->run_steps, c->en->now_s - rp->run_start_s, &m, &extra);
    if (m == 0)
        t = replica_run_prefix(c, rp, 1, INFINITY, &m, &extra);
    if (m >= rp->run_steps)
        return 0; /* the run ends at that boundary anyway */
    c->steps -= (unsigned long long)(rp->run_steps - m);
    rp->run_steps = m;
    rp->run_kv_extra = extra;
    rp->step_s = t;
    /* Move the pending end rather than leave a stale one in the heap. */
    engine_move(c->en, &rp->end_pos, rp->run_start_s + t);
    return 0;
}

/* Form and launch the next batch (continuous batching). */
static int replica_start_step(struct cluster *c, struct replica *rp)
{
    const struct scenario *sc = c->sc;
    double now = c->en->now_s;
    long budget = sc->max_batched_tokens;
    double prefill = 0, prefill_ctx = 0, decode = 0, decode_ctx = 0;
    int i, n_decode = 0;
    struct creq *r;

    if (sc->service != SERVICE_PROFILE)
        return replica_start_single(c, rp);
    replica_integrate_kv(rp, now);
    /* Decoding sequences each need one more KV slot: preempt the newest
     * until they fit (never the last one). */
    for (i = 0; i < rp->n_running; i++)
        n_decode += rp->running[i]->prefilled == rp->running[i]->prefill_target;
    while (rp->n_running > 1 && rp->kv_used + n_decode > sc->kv_capacity_tokens) {
        struct creq *victim = rp->running[rp->n_running - 1];
        n_decode -= victim->prefilled == victim->prefill_target;
        replica_preempt_newest(c, rp);
    }
    /* Running sequences first: one token each for decode, then prefill
     * chunks for prompts still being prefilled. */
    for (i = 0; i < rp->n_running; i++) {
        r = rp->running[i];
        r->step_chunk = 0;
        r->decoding = false;
        if (r->prefilled == r->prefill_target) {
            r->decoding = true;
            decode += 1;
            decode_ctx += r->prompt + r->generated;
            budget -= 1;
        }
    }
    for (i = 0; i < rp->n_running && budget > 0 && decode < rp->n_running; i++) {
        uint32_t left, chunk;
        r = rp->running[i];
        if (r->decoding)
            continue;
        left = r->prefill_target - r->prefilled;
        chunk = (long)left < budget ? left : (uint32_t)budget;
        if (!sc->chunked_prefill && chunk < left)
            break;
        r->step_chunk = chunk;
        prefill += chunk;
        prefill_ctx += (double)chunk * r->prefilled + (double)chunk * (chunk + 1) / 2.0;
        budget -= chunk;
    }
    /* Admit waiting requests, first come first served, while the batch, the
     * token budget and the KV cache allow. */
    while ((r = rp->waiting.head) != NULL && rp->n_running < sc->max_num_seqs && budget > 0) {
        uint32_t need, chunk;
        if (cluster_expired(c, r)) {
            rq_remove(&rp->waiting, r);
            rp->outstanding--;
            cluster_drop(c, r, OUTCOME_TIMED_OUT);
            continue;
        }
        if (r->prefill_target == 0)
            r->prefill_target = r->prompt;
        need = r->prefill_target;
        if (rp->kv_used + need + n_decode > sc->kv_capacity_tokens)
            break;
        chunk = (long)need < budget ? need : (uint32_t)budget;
        if (!sc->chunked_prefill && chunk < need && (prefill > 0 || decode > 0))
            break;
        if (!sc->chunked_prefill)
            chunk = need; /* a prompt longer than the budget runs alone */
        rq_remove(&rp->waiting, r);
        replica_mark_started(c, r);
        r->kv_tokens = need;
        rp->kv_used += need;
        r->decoding = false;
        r->step_chunk = chunk;
        rp->running[rp->n_running++] = r;
        prefill += chunk;
        prefill_ctx += (double)chunk * (chunk + 1) / 2.0;
        budget -= chunk;
    }
    if (prefill == 0 && decode == 0)
        return 0; /* nothing to do: idle until work arrives */
    rp->busy = true;
    rp->run_steps = 1;
    rp->run_kv_extra = 0;
    if (prefill == 0 && replica_plan_decode_run(c, rp, (int)decode, decode_ctx) > 1) {
        c->steps += (unsigned long long)rp->run_steps;
    } else {
        rp->step_s = profile_iteration_s(sc->profile, prefill, prefill_ctx, decode, decode_ctx);
        c->steps++;
    }
    rp->step_gen++;
    return engine_schedule_tracked(c->en, now + rp->step_s, EV_REPLICA_STEP_END, rp, rp->step_gen, &rp->end_pos);
}

/* ---- the gateway ------------------------------------------------------------------------ */

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
static void cluster_expire_gateway(struct cluster *c)
{
    struct creq *r;

    while ((r = c->gateway.head) != NULL && cluster_expired(c, r)) {
        rq_remove(&c->gateway, r);
        cluster_drop(c, r, OUTCOME_TIMED_OUT);
    }
}

/* Move queued requests to replicas that have room. */
static int cluster_drain_gateway(struct cluster *c)
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

/* A step ended: account tokens, finish sequences, start the next step. */
static int replica_end_step(struct cluster *c, struct replica *rp)
{
    double now = c->en->now_s;
    int i, kept = 0;

    rp->busy = false;
    rp->busy_s += rp->step_s;
    replica_integrate_kv(rp, now);
    rp->kv_token_s += rp->run_kv_extra;
    for (i = 0; i < rp->n_running; i++) {
        struct creq *r = rp->running[i];

        if (c->sc->service != SERVICE_PROFILE) {
            /* Served whole: the response arrives at once. */
            r->first_token_s = now;
            r->generated = r->output;
            metrics_first_token(c->m, now - r->arrival_s + r->rtt_s);
            if (c->track_replica_ttft)
                hist_add(rp->snap_ttft, now - r->arrival_s);
        } else if (r->decoding) {
            r->generated += (uint32_t)rp->run_steps;
            r->kv_tokens += (uint32_t)rp->run_steps;
            rp->kv_used += rp->run_steps;
        } else if (r->step_chunk > 0) {
            r->prefilled += r->step_chunk;
            r->step_chunk = 0;
            if (r->prefilled == r->prefill_target) {
                /* The step that completes a prefill also samples a token. */
                if (r->generated == 0) {
                    r->first_token_s = now;
                    metrics_first_token(c->m, now - r->arrival_s + r->rtt_s);
                    if (c->track_replica_ttft)
                        hist_add(rp->snap_ttft, now - r->arrival_s);
                }
                r->generated++;
            }
        }
        r->decoding = false;
        if (r->generated >= r->output) {
            rp->kv_used -= r->kv_tokens;
            cluster_finish(c, rp, r);
        } else {
            rp->running[kept++] = r;
        }
    }
    rp->n_running = kept;
    if (rp->kv_used < 0.5)
        rp->kv_used = 0;
    if (cluster_drain_gateway(c) < 0)
        return -1;
    if (!rp->busy && (rp->n_running > 0 || rp->waiting.head != NULL))
        return replica_start_step(c, rp);
    if (rp->state == REPLICA_DRAINING && rp->outstanding == 0 && !rp->busy && !rp->start_pending)
        return cluster_retire(c, rp);
    return 0;
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

/* RP's node is gone: its sequences lose their KV cache and go back to the
 * head of the gateway queue (recomputed elsewhere, as after a preemption),
 * its waiting requests after them; then it goes. */
static int cluster_evict(struct cluster *c, struct replica *rp)
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

/* ---- sampling ------------------------------------------------------------------------------ */

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

long cluster_gateway_waiting(struct cluster *c)
{
    cluster_expire_gateway(c);
    return c->gateway.len;
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
