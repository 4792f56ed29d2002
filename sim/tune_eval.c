/* tune_eval.c -- simulations of tune candidates, in parallel on threads.
 *
 * Each job builds its own scenario (the file, tune's --set overrides, the
 * candidate's values, its seed and, below full fidelity, a shorter
 * workload) and runs it in process with no output files.  The simulator
 * keeps no mutable global state (its lazily built tables are initialised
 * under pthread_once), so jobs run side by side; a job's result depends on
 * the job alone, never on which thread ran it or when. */
#include "sim/tune_int.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/duration.h"
#include "sim/scenario.h"
#include "sim/sim.h"
#include "workloads/trace.h"

static double tune_wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double tune_get(json_t *sm, const char *a, const char *b, const char *c)
{
    json_t *x = json_object_get(sm, a);

    if (b)
        x = json_object_get(x, b);
    if (c)
        x = json_object_get(x, c);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static void tune_job_metrics(json_t *sm, struct tune_job *job)
{
    static const char *const lat[] = {"ttft", "tpot", "e2e"};
    static const char *const pct[] = {"p50", "p90", "p99"};
    double arrived = tune_get(sm, "requests", "arrived", NULL);
    int i, j;

    job->m[TM_COST] = tune_get(sm, "cost_usd", "total", NULL);
    job->m[TM_ATTAINMENT] = tune_get(sm, "slo", "attainment", NULL);
    for (i = 0; i < 3; i++)
        for (j = 0; j < 3; j++)
            job->m[TM_TTFT_P50 + 3 * i + j] = tune_get(sm, "latency_s", lat[i], pct[j]);
    job->m[TM_FAILED] = arrived > 0 ? (tune_get(sm, "requests", "rejected", NULL) +
                                       tune_get(sm, "requests", "timed_out", NULL)) / arrived
                                    : 0.0;
    job->m[TM_REPLICAS] = tune_get(sm, "replicas", "mean", NULL);
    job->m[TM_GPU_HOURS] = tune_get(sm, "gpu_hours", NULL, NULL);
    job->m[TM_ARRIVED] = arrived;
}

/* Run one job; its outcome goes into the job. */
static void tune_run_job(const struct tune_ctx *ctx, struct tune_job *job)
{
    struct sim_options sopt = {0};
    struct scenario *sc = NULL;
    struct err e = {0};
    char **cand = NULL, **all = NULL, seedset[64], durset[96];
    size_t n = 0, k;
    json_t *sm = NULL;

    job->ok = false;
    for (k = 0; k < TM_N; k++)
        job->m[k] = NAN;
    if (tune_candidate_sets(&ctx->spec, job->cand, &cand, &e) < 0)
        goto done;
    all = calloc((size_t)ctx->nsets + ctx->spec.nknobs + 2, sizeof(*all));
    if (all == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto done;
    }
    for (k = 0; k < (size_t)ctx->nsets; k++)
        all[n++] = ctx->sets[k];
    for (k = 0; cand != NULL && k < ctx->spec.nknobs; k++)
        all[n++] = cand[k];
    snprintf(seedset, sizeof(seedset), "seed=%llu", (unsigned long long)(ctx->base_seed + (uint64_t)job->seed_k));
    all[n++] = seedset;
    if (job->fidelity < 1.0) {
        /* A prefix of the workload: its first fidelity x span seconds. */
        snprintf(durset, sizeof(durset), "workload.duration=%.6f", job->fidelity * ctx->span_s);
        all[n++] = durset;
    }
    sc = scenario_load(ctx->real_path, all, (int)n, &e);
    if (sc == NULL)
        goto done;
    if (ctx->requests != NULL) {
        /* The prefix the reader would stop at: arrivals up to the duration
         * exactly as the override reads back. */
        size_t lo = 0, hi = ctx->nrequests;
        double dur = job->fidelity < 1.0 ? strtod(strchr(durset, '=') + 1, NULL) : INFINITY;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (ctx->requests[mid].arrival_s > dur)
                hi = mid;
            else
                lo = mid + 1;
        }
        sopt.requests = ctx->requests;
        sopt.nrequests = lo;
    }
    sm = sim_run(sc, &sopt, &e);
    if (sm == NULL)
        goto done;
    tune_job_metrics(sm, job);
    job->ok = true;
done:
    if (!job->ok)
        snprintf(job->error, sizeof(job->error), "%s", e.msg);
    json_decref(sm);
    scenario_free(sc);
    free(all);
    tune_sets_free(cand, cand ? ctx->spec.nknobs : 0);
}

struct tune_pool {
    struct tune_ctx *ctx;
    struct tune_job *jobs;
    size_t njobs;
    size_t next; /* the next job to hand out */
    size_t done;
    const struct tune_job *best; /* the best finished full run meeting the constraints */
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void *tune_worker(void *arg)
{
    struct tune_pool *p = arg;

    for (;;) {
        struct tune_job *j;
        size_t i;

        pthread_mutex_lock(&p->lock);
        i = p->next < p->njobs ? p->next++ : p->njobs;
        pthread_mutex_unlock(&p->lock);
        if (i == p->njobs)
            return NULL;
        j = &p->jobs[i];
        tune_run_job(p->ctx, j);
        pthread_mutex_lock(&p->lock);
        p->done++;
        if (j->ok && j->fidelity >= 1.0 && tune_job_feasible(p->ctx, j) &&
            (p->best == NULL || tune_job_better(p->ctx, j, p->best)))
            p->best = j;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
    }
}

/* The progress line: simulations done, the best full run meeting the
 * constraints so far, the time left at the pace so far.  Called with the
 * pool locked (best is only read then). */
static void tune_progress(const struct tune_pool *p, double start_s)
{
    double now = tune_wall_s();
    char left[32], bests[160] = "none meets the constraints yet";
    const struct tune_job *b = p->best;

    if (b != NULL && b->cand < 0)
        snprintf(bests, sizeof(bests), "best so far $%.2f at %.2f%% SLO (the baseline)", b->m[TM_COST],
                 100 * b->m[TM_ATTAINMENT]);
    else if (b != NULL)
        snprintf(bests, sizeof(bests), "best so far $%.2f at %.2f%% SLO (candidate %ld)", b->m[TM_COST],
                 100 * b->m[TM_ATTAINMENT], b->cand);
    if (p->done > 0)
        duration_format((now - start_s) / (double)p->done * (double)(p->njobs - p->done), left, sizeof(left));
    else
        snprintf(left, sizeof(left), "?");
    fprintf(stderr, "\r\033[K  tune: %zu/%zu simulations, %s, about %s left", p->done, p->njobs, bests, left);
}

int tune_eval(struct tune_ctx *ctx, struct tune_job *jobs, size_t njobs, struct err *e)
{
    struct tune_pool p;
    pthread_t *th;
    int nth = ctx->opt->jobs > 0 ? ctx->opt->jobs : 1, started = 0, i;
    double start = tune_wall_s(), shown = 0;

    if (njobs == 0)
        return 0;
    if ((size_t)nth > njobs)
        nth = (int)njobs;
    memset(&p, 0, sizeof(p));
    p.ctx = ctx;
    p.jobs = jobs;
    p.njobs = njobs;
    if (pthread_mutex_init(&p.lock, NULL) != 0)
        return err_set(e, ERR_SYSTEM, "cannot create a mutex");
    if (pthread_cond_init(&p.cond, NULL) != 0) {
        pthread_mutex_destroy(&p.lock);
        return err_set(e, ERR_SYSTEM, "cannot create a condition variable");
    }
    th = calloc((size_t)nth, sizeof(*th));
    for (i = 0; th != NULL && i < nth; i++, started++)
        if (pthread_create(&th[i], NULL, tune_worker, &p) != 0)
            break;
    if (started == 0) {
        /* No thread to spare: run them here. */
        tune_worker(&p);
    } else {
        pthread_mutex_lock(&p.lock);
        while (p.done < njobs) {
            struct timespec ts;

            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 250000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p.cond, &p.lock, &ts);
            if (ctx->opt->progress && p.done < njobs && tune_wall_s() - shown >= 0.25) {
                tune_progress(&p, start);
                shown = tune_wall_s();
            }
        }
        pthread_mutex_unlock(&p.lock);
        for (i = 0; i < started; i++)
            pthread_join(th[i], NULL);
    }
    if (ctx->opt->progress)
        fputs("\r\033[K", stderr);
    free(th);
    pthread_cond_destroy(&p.cond);
    pthread_mutex_destroy(&p.lock);
    ctx->simulations += (long)njobs;
    for (size_t j = 0; j < njobs; j++)
        ctx->sim_units += jobs[j].fidelity;
    return 0;
}
