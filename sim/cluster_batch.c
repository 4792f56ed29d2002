/* cluster_batch.c -- a replica's steps (see cluster.h): continuous batching
 * with chunked prefill, admission while the batch, the token budget and the
 * KV cache allow, preemption of the newest sequence when decoding runs out of
 * KV, runs of identical decode steps simulated as one event, and the
 * single-request service kinds (exponential, deterministic). */
#include "sim/cluster_int.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/hist.h"
#include "common/rng.h"
#include "sim/cache.h"

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
int replica_start_single(struct cluster *c, struct replica *rp)
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
int replica_cut_run(struct cluster *c, struct replica *rp)
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
int replica_start_step(struct cluster *c, struct replica *rp)
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

/* A step ended: account tokens, finish sequences, start the next step. */
int replica_end_step(struct cluster *c, struct replica *rp)
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
