/* tune_search.c -- the search over a tune space and the choice of a winner.
 *
 * Grid: every candidate, each over all seeds, on the whole workload.
 * Halving (successive halving, eta = 3): a sample of candidates runs on a
 * short prefix of the workload with one seed; the best third goes on to a
 * prefix three times longer, and so on until the survivors run the whole
 * workload over all seeds.  Then the winner's neighbourhood is walked: every
 * value of each knob with the others kept (a coordinate pass), repeated while
 * that finds a better candidate.  This also gives the slices the sensitivity
 * table and the charts need, which the grid has anyway.
 *
 * Ranking: candidates meeting the constraints first, ordered by the
 * objective (cost, or attainment); the others by how far they miss.  Means
 * over seeds rank; the winner is called a tie when the runner-up is within
 * one standard deviation (of either) of it. */
#include "sim/tune_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/rng.h"

#define TUNE_ETA 3
#define TUNE_MAX_RUNGS 4     /* shortest prefix: 1/27 of the workload */
#define TUNE_MIN_SURVIVORS 3
#define TUNE_MAX_PASSES 4    /* coordinate passes around the winner */

double tune_violation(const struct tune_ctx *ctx, const double *m)
{
    const struct tune_spec *s = &ctx->spec;
    double v = 0;
    size_t i;

    for (i = 0; i < TM_N; i++)
        if (isnan(m[i]) && i != TM_TPOT_P50 && i != TM_TPOT_P90 && i != TM_TPOT_P99)
            return INFINITY;
    if (s->objective == TUNE_MIN_COST && m[TM_ATTAINMENT] < s->attainment)
        v += (s->attainment - m[TM_ATTAINMENT]) / fmax(s->attainment, 1e-9);
    if (s->objective == TUNE_MAX_ATTAINMENT && m[TM_COST] > s->budget_usd)
        v += (m[TM_COST] - s->budget_usd) / s->budget_usd;
    for (i = 0; i < s->nlimits; i++) {
        double x = m[s->limits[i].metric];
        if (isnan(x)) /* no request reached that measurement */
            continue;
        if (x > s->limits[i].max_s)
            v += (x - s->limits[i].max_s) / fmax(s->limits[i].max_s, 1e-9);
    }
    if (m[TM_FAILED] > s->max_failed)
        v += m[TM_FAILED] - s->max_failed;
    return v;
}

/* A better than B: feasible first; then the objective, its tie broken by
 * the other figure; infeasible ones by violation, then cost. */
static bool tune_better_m(const struct tune_ctx *ctx, const double *a, double va, const double *b, double vb)
{
    bool fa = va == 0, fb = vb == 0;

    if (fa != fb)
        return fa;
    if (!fa) {
        if (va != vb)
            return va < vb;
        return a[TM_COST] < b[TM_COST];
    }
    if (ctx->spec.objective == TUNE_MIN_COST) {
        if (a[TM_COST] != b[TM_COST])
            return a[TM_COST] < b[TM_COST];
        return a[TM_ATTAINMENT] > b[TM_ATTAINMENT];
    }
    if (a[TM_ATTAINMENT] != b[TM_ATTAINMENT])
        return a[TM_ATTAINMENT] > b[TM_ATTAINMENT];
    return a[TM_COST] < b[TM_COST];
}

bool tune_job_feasible(const struct tune_ctx *ctx, const struct tune_job *j)
{
    return j->ok && tune_violation(ctx, j->m) == 0;
}

bool tune_job_better(const struct tune_ctx *ctx, const struct tune_job *a, const struct tune_job *b)
{
    return tune_better_m(ctx, a->m, tune_violation(ctx, a->m), b->m, tune_violation(ctx, b->m));
}

bool tune_better(const struct tune_ctx *ctx, const struct tune_point *a, const struct tune_point *b)
{
    if (a->ok != b->ok)
        return a->ok;
    return tune_better_m(ctx, a->mean, a->violation, b->mean, b->violation);
}

int tune_points_add(struct tune_ctx *ctx, struct tune_result *r, const struct tune_job *jobs, size_t njobs,
                    int nseeds, struct err *e)
{
    size_t g, ng = njobs / (size_t)nseeds;
    struct tune_point *pts = realloc(r->points, (r->npoints + ng) * sizeof(*pts));

    if (pts == NULL && r->npoints + ng > 0)
        return err_set(e, ERR_SYSTEM, "out of memory");
    r->points = pts;
    for (g = 0; g < ng; g++) {
        const struct tune_job *j = &jobs[g * (size_t)nseeds];
        struct tune_point *p = &pts[r->npoints++];
        int s, m;

        memset(p, 0, sizeof(*p));
        p->cand = j->cand;
        p->fidelity = j->fidelity;
        p->nseeds = nseeds;
        p->ok = true;
        for (s = 0; s < nseeds; s++)
            if (!j[s].ok && p->ok) {
                p->ok = false;
                snprintf(p->error, sizeof(p->error), "%s", j[s].error);
            }
        for (m = 0; m < TM_N; m++) {
            double sum = 0, ss = 0;
            int n = 0;
            for (s = 0; s < nseeds; s++)
                if (j[s].ok && !isnan(j[s].m[m])) {
                    sum += j[s].m[m];
                    n++;
                }
            p->mean[m] = n ? sum / n : NAN;
            for (s = 0; s < nseeds; s++)
                if (j[s].ok && !isnan(j[s].m[m]))
                    ss += (j[s].m[m] - p->mean[m]) * (j[s].m[m] - p->mean[m]);
            p->sd[m] = n > 1 ? sqrt(ss / (n - 1)) : (n ? 0.0 : NAN);
        }
        {
            /* On a prefix, a cost budget applies pro rata. */
            double m2[TM_N];
            memcpy(m2, p->mean, sizeof(m2));
            if (p->fidelity > 0 && p->fidelity < 1.0)
                m2[TM_COST] /= p->fidelity;
            p->violation = p->ok ? tune_violation(ctx, m2) : INFINITY;
        }
        p->feasible = p->violation == 0;
    }
    return 0;
}

static long tune_budget(const struct tune_ctx *ctx)
{
    return ctx->opt->budget > 0 ? ctx->opt->budget : ctx->spec.budget;
}

size_t tune_grid_items(const struct tune_ctx *ctx)
{
    return (size_t)ctx->spec.ncandidates + 1;
}

long tune_grid_item_cand(size_t item)
{
    return (long)item - 1;
}

enum tune_method tune_method_resolve(const struct tune_ctx *ctx)
{
    double grid = (double)tune_grid_items(ctx) * ctx->spec.seeds;

    if (ctx->spec.method != TUNE_AUTO)
        return ctx->spec.method;
    if (ctx->opt->shard_count > 0)
        return TUNE_GRID;
    return grid <= (double)tune_budget(ctx) ? TUNE_GRID : TUNE_HALVING;
}

long tune_find(const struct tune_result *r, long cand)
{
    size_t i;

    for (i = 0; i < r->npoints; i++)
        if (r->points[i].cand == cand && r->points[i].fidelity >= 1.0)
            return (long)i;
    return -1;
}

/* Jobs for candidates CANDS at FIDELITY over NSEEDS seeds, run and added. */
static int tune_run_points(struct tune_ctx *ctx, struct tune_result *r, const long *cands, size_t n,
                           double fidelity, int nseeds, struct err *e)
{
    struct tune_job *jobs = calloc(n * (size_t)nseeds + 1, sizeof(*jobs));
    size_t i;
    int s, rc;

    if (jobs == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    for (i = 0; i < n; i++)
        for (s = 0; s < nseeds; s++) {
            struct tune_job *j = &jobs[i * (size_t)nseeds + (size_t)s];
            j->cand = cands[i];
            j->fidelity = fidelity;
            j->seed_k = s;
        }
    rc = tune_eval(ctx, jobs, n * (size_t)nseeds, e);
    if (rc == 0)
        rc = tune_points_add(ctx, r, jobs, n * (size_t)nseeds, nseeds, e);
    free(jobs);
    return rc;
}

static int tune_grid(struct tune_ctx *ctx, struct tune_result *r, struct err *e)
{
    size_t n = tune_grid_items(ctx), i;
    long *cands = malloc(n * sizeof(*cands));
    int rc;

    if ((double)n * ctx->spec.seeds > (double)tune_budget(ctx)) {
        free(cands);
        return err_set(e, ERR_INPUT, "%s: tune: the grid needs %.0f simulations (%zu candidates with the baseline, "
                       "%d seeds), over the budget of %ld (raise tune.budget or --budget, or use method: halving)",
                       ctx->path, (double)n * ctx->spec.seeds, n, ctx->spec.seeds, tune_budget(ctx));
    }
    if (cands == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    for (i = 0; i < n; i++)
        cands[i] = tune_grid_item_cand(i);
    r->method = "grid";
    rc = tune_run_points(ctx, r, cands, n, 1.0, ctx->spec.seeds, e);
    free(cands);
    return rc;
}

/* Simulations (fidelity-weighted) of R rungs starting from N candidates. */
static double tune_halving_cost(long n, int rungs, int seeds, long *survivors)
{
    double cost = 0, keep = (double)n;
    int r;

    for (r = 0; r < rungs; r++) {
        long nr = (long)ceil(keep);
        if (nr < TUNE_MIN_SURVIVORS)
            nr = n < TUNE_MIN_SURVIVORS ? n : TUNE_MIN_SURVIVORS;
        if (survivors)
            survivors[r] = nr;
        cost += (double)nr * pow(TUNE_ETA, -(double)(rungs - 1 - r)) * (r == rungs - 1 ? seeds : 1);
        keep /= TUNE_ETA;
    }
    return cost;
}

static int tune_cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* N distinct candidates out of all: all of them when N covers the space,
 * else a uniform sample drawn from the scenario's seed, in index order. */
static long *tune_sample(const struct tune_ctx *ctx, long n)
{
    long total = (long)ctx->spec.ncandidates, *c = malloc((size_t)n * sizeof(*c)), have = 0, i;
    struct rng rng;

    if (c == NULL)
        return NULL;
    if (n >= total) {
        for (i = 0; i < total; i++)
            c[i] = i;
        return c;
    }
    rng_init(&rng, ctx->base_seed, RNG_STREAM_TUNE);
    while (have < n) {
        long w = 0;
        for (i = have; i < n; i++)
            c[i] = (long)rng_below(&rng, (uint64_t)total);
        qsort(c, (size_t)n, sizeof(*c), tune_cmp_long);
        for (i = 0; i < n; i++)
            if (w == 0 || c[i] != c[w - 1])
                c[w++] = c[i];
        have = w;
    }
    return c;
}

static const struct tune_ctx *tune_sort_ctx;
static const struct tune_point *tune_sort_points;

/* Order point indices best first; equal ones by candidate index. */
static int tune_cmp_points(const void *a, const void *b)
{
    const struct tune_point *p = &tune_sort_points[*(const long *)a], *q = &tune_sort_points[*(const long *)b];

    if (tune_better(tune_sort_ctx, p, q))
        return -1;
    if (tune_better(tune_sort_ctx, q, p))
        return 1;
    return (p->cand > q->cand) - (p->cand < q->cand);
}

static void tune_rank(const struct tune_ctx *ctx, const struct tune_result *r, long *idx, size_t n)
{
    /* qsort has no context argument; the search runs on one thread. */
    tune_sort_ctx = ctx;
    tune_sort_points = r->points;
    qsort(idx, n, sizeof(*idx), tune_cmp_points);
}

static int tune_halving(struct tune_ctx *ctx, struct tune_result *r, struct err *e)
{
    const struct tune_spec *s = &ctx->spec;
    long budget = tune_budget(ctx), reserve = 0, n = (long)s->ncandidates, surv[TUNE_MAX_RUNGS];
    double avail;
    int rungs = 2, rung;
    long *cands;
    size_t k;

    for (k = 0; k < s->nknobs; k++)
        reserve += (long)s->knobs[k].nvalues * s->seeds;
    avail = (double)budget - reserve;
    if (avail < TUNE_MIN_SURVIVORS * s->seeds)
        avail = TUNE_MIN_SURVIVORS * s->seeds;
    while (rungs < TUNE_MAX_RUNGS && tune_halving_cost(n, rungs, s->seeds, NULL) > avail)
        rungs++;
    while (n > TUNE_MIN_SURVIVORS && tune_halving_cost(n, rungs, s->seeds, NULL) > avail)
        n = (long)floor(n * 0.95 < n - 1 ? n * 0.95 : n - 1);
    tune_halving_cost(n, rungs, s->seeds, surv);
    log_info("tune: successive halving over %ld of %llu candidates, %d rungs (prefixes 1/%.0f..1 of the workload)",
             n, (unsigned long long)s->ncandidates, rungs, pow(TUNE_ETA, rungs - 1));
    cands = tune_sample(ctx, n);
    if (cands == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    r->method = "halving";
    for (rung = 0; rung < rungs; rung++) {
        double fid = pow(TUNE_ETA, -(double)(rungs - 1 - rung));
        size_t first = r->npoints, i;
        long *idx;
        int seeds = rung == rungs - 1 ? s->seeds : 1;

        if (rung == rungs - 1)
            fid = 1.0;
        if (tune_run_points(ctx, r, cands, (size_t)surv[rung], fid, seeds, e) < 0) {
            free(cands);
            return -1;
        }
        if (rung == rungs - 1)
            break;
        idx = malloc((size_t)surv[rung] * sizeof(*idx));
        if (idx == NULL) {
            free(cands);
            return err_set(e, ERR_SYSTEM, "out of memory");
        }
        for (i = 0; i < (size_t)surv[rung]; i++)
            idx[i] = (long)(first + i);
        tune_rank(ctx, r, idx, (size_t)surv[rung]);
        for (i = 0; i < (size_t)surv[rung + 1]; i++)
            cands[i] = r->points[idx[i]].cand;
        qsort(cands, (size_t)surv[rung + 1], sizeof(*cands), tune_cmp_long);
        free(idx);
    }
    free(cands);
    return 0;
}

/* Evaluate, on the whole workload, every value of each knob with the others
 * at the winner's; again while that moves the winner. */
static int tune_slices(struct tune_ctx *ctx, struct tune_result *r, struct err *e)
{
    const struct tune_spec *s = &ctx->spec;
    int pass;

    for (pass = 0; pass < TUNE_MAX_PASSES && r->best >= 0; pass++) {
        long best = r->points[r->best].cand, idx[TUNE_MAX_KNOBS], *todo;
        size_t k, n = 0, total = 0;
        int rc;

        for (k = 0; k < s->nknobs; k++)
            total += s->knobs[k].nvalues;
        todo = malloc(total * sizeof(*todo));
        if (todo == NULL)
            return err_set(e, ERR_SYSTEM, "out of memory");
        for (k = 0; k < s->nknobs; k++) {
            size_t v, j;
            for (j = 0; j < s->nknobs; j++)
                idx[j] = tune_value_index(s, best, j);
            for (v = 0; v < s->knobs[k].nvalues; v++) {
                long c;
                idx[k] = (long)v;
                c = tune_candidate(s, idx);
                if (tune_find(r, c) < 0) {
                    size_t m;
                    for (m = 0; m < n && todo[m] != c; m++)
                        ;
                    if (m == n)
                        todo[n++] = c;
                }
            }
        }
        qsort(todo, n, sizeof(*todo), tune_cmp_long);
        rc = n ? tune_run_points(ctx, r, todo, n, 1.0, s->seeds, e) : 0;
        free(todo);
        if (rc < 0)
            return -1;
        tune_pick(ctx, r);
        if (r->points[r->best].cand == best)
            break;
    }
    return 0;
}

int tune_search(struct tune_ctx *ctx, struct tune_result *r, struct err *e)
{
    long base = -1;

    memset(r, 0, sizeof(*r));
    r->best = r->runner_up = r->baseline = -1;
    if (tune_method_resolve(ctx) == TUNE_GRID) {
        if (tune_grid(ctx, r, e) < 0)
            return -1;
        tune_pick(ctx, r);
        return 0;
    }
    if (tune_run_points(ctx, r, &base, 1, 1.0, ctx->spec.seeds, e) < 0 || tune_halving(ctx, r, e) < 0)
        return -1;
    tune_pick(ctx, r);
    return tune_slices(ctx, r, e);
}

void tune_pick(const struct tune_ctx *ctx, struct tune_result *r)
{
    size_t i;
    const struct tune_point *b, *u;

    r->best = r->runner_up = -1;
    r->tie = false;
    r->baseline = tune_find(r, -1);
    for (i = 0; i < r->npoints; i++) {
        const struct tune_point *p = &r->points[i];
        if (p->fidelity < 1.0 || p->cand < 0)
            continue;
        if (r->best < 0 || tune_better(ctx, p, &r->points[r->best])) {
            r->runner_up = r->best;
            r->best = (long)i;
        } else if (r->runner_up < 0 || tune_better(ctx, p, &r->points[r->runner_up])) {
            r->runner_up = (long)i;
        }
    }
    if (r->best < 0 || r->runner_up < 0)
        return;
    b = &r->points[r->best];
    u = &r->points[r->runner_up];
    if (!b->feasible || !u->feasible)
        return;
    {
        enum tune_metric m = ctx->spec.objective == TUNE_MIN_COST ? TM_COST : TM_ATTAINMENT;
        double gap = fabs(b->mean[m] - u->mean[m]);
        r->tie = gap == 0 || gap <= fmax(b->sd[m], u->sd[m]);
    }
}

void tune_result_free(struct tune_result *r)
{
    free(r->points);
    memset(r, 0, sizeof(*r));
}
