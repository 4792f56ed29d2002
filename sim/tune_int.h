/* tune_int.h -- what the parts of `llmsim tune` share: the parsed tune
 * section (tune_space.c), simulations run in parallel (tune_eval.c), the
 * search and the choice of a winner (tune_search.c), the files written
 * (tune_output.c, tune_report.c, tune_manifest.c). */
#ifndef LLM_TUNE_INT_H
#define LLM_TUNE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/conf.h"
#include "common/err.h"
#include "sim/tune.h"

struct trace_request;

#define TUNE_MAX_KNOBS 16
#define TUNE_MAX_VALUES 1000      /* per knob */
#define TUNE_MAX_CANDIDATES 10000000ULL
#define TUNE_MAX_SEEDS 100
#define TUNE_MAX_LIMITS 9
#define TUNE_KEY_MAX 256
#define TUNE_VALUE_MAX 256

/* ---- the tune section (tune_space.c) -------------------------------------- */

enum tune_objective { TUNE_MIN_COST, TUNE_MAX_ATTAINMENT };
enum tune_method { TUNE_AUTO, TUNE_GRID, TUNE_HALVING };

/* What one simulation yields, in this order in every file (tune_metric_names). */
enum tune_metric {
    TM_COST,        /* cost_usd.total */
    TM_ATTAINMENT,  /* slo.attainment */
    TM_TTFT_P50, TM_TTFT_P90, TM_TTFT_P99,
    TM_TPOT_P50, TM_TPOT_P90, TM_TPOT_P99,
    TM_E2E_P50, TM_E2E_P90, TM_E2E_P99,
    TM_FAILED,      /* (rejected + timed out) / arrived */
    TM_REPLICAS,    /* replicas.mean */
    TM_GPU_HOURS,
    TM_ARRIVED,
    TM_N
};
extern const char *const tune_metric_names[TM_N];

/* A latency constraint: the metric's mean over seeds at most max_s. */
struct tune_limit {
    enum tune_metric metric; /* one of the TTFT/TPOT/E2E percentiles */
    double max_s;
};

struct tune_knob {
    char key[TUNE_KEY_MAX];      /* a --set path */
    char **values;               /* YAML text of each value, for conf_set */
    double *numeric;             /* each value as a number (durations in seconds), NAN when not one */
    size_t nvalues;
    char baseline[TUNE_VALUE_MAX]; /* the scenario's own value */
    char where[600];             /* "FILE:LINE: tune.space[i]" */
};

struct tune_spec {
    enum tune_objective objective;
    double budget_usd;           /* TUNE_MAX_ATTAINMENT: mean cost at most this */
    double attainment;           /* TUNE_MIN_COST: mean SLO attainment at least this */
    struct tune_limit limits[TUNE_MAX_LIMITS];
    size_t nlimits;
    double max_failed;           /* mean (rejected + timed out) / arrived at most this */
    struct tune_knob knobs[TUNE_MAX_KNOBS];
    size_t nknobs;
    uint64_t ncandidates;        /* product of the knobs' value counts */
    int seeds;
    enum tune_method method;
    long budget;                 /* simulations of the whole workload */
};

/* Read the tune section of the scenario in PATH (with SETS applied) into
 * SPEC, check every key against the scenario and every value by building
 * the scenario with it.  -1 with a located error. */
int tune_spec_load(const char *path, char *const *sets, int nsets, struct tune_spec *spec, struct err *e);
void tune_spec_free(struct tune_spec *spec);

/* Candidate CAND's value index for knob K (the last knob varies fastest);
 * CAND -1 is the baseline (the scenario unchanged): returns -1. */
long tune_value_index(const struct tune_spec *spec, long cand, size_t k);
/* The candidate with IDX[k] for every knob. */
long tune_candidate(const struct tune_spec *spec, const long *idx);

/* ---- simulations (tune_eval.c) -------------------------------------------- */

/* One simulation: a candidate (-1: the baseline) on a fraction of the
 * workload with seed number seed_k. */
struct tune_job {
    long cand;
    double fidelity;  /* 1: the whole workload */
    int seed_k;
    bool ok;
    double m[TM_N];
    char error[256];
};

/* The scenario and what every simulation shares. */
struct tune_ctx {
    const char *path;          /* the scenario file as given */
    char real_path[4096];      /* its absolute name (shard files, merge) */
    char **sets;               /* --set overrides given to tune, applied first */
    int nsets;
    struct tune_spec spec;
    char name[128];
    uint64_t base_seed;        /* the scenario's seed: seed number k runs with base_seed + k */
    double span_s;             /* the workload's length (last arrival) */
    uint64_t fingerprint;      /* of the file, the sets and the tune section */
    const struct tune_options *opt;
    struct trace_request *requests; /* the workload read once, when every run reads the same */
    size_t nrequests;
    long simulations;          /* run so far */
    double sim_units;          /* fidelity-weighted */
};

/* Run the NJOBS jobs on opt->jobs threads (results in the jobs).  A job
 * whose scenario does not build or whose run fails is marked !ok with its
 * error; only a system failure (threads, memory) returns -1. */
int tune_eval(struct tune_ctx *ctx, struct tune_job *jobs, size_t njobs, struct err *e);

/* ---- the search and the winner (tune_search.c) ---------------------------- */

/* A candidate at one fidelity, over its seeds. */
struct tune_point {
    long cand;               /* -1: the baseline */
    double fidelity;
    int nseeds;
    bool ok;                 /* every seed ran */
    bool feasible;           /* meets the constraints (means over seeds) */
    double violation;        /* how far from feasible (0 when feasible) */
    double mean[TM_N];
    double sd[TM_N];         /* sample standard deviation over seeds (0 with one) */
    char error[256];
};

struct tune_result {
    struct tune_point *points; /* in evaluation order; rungs before the final full runs */
    size_t npoints;
    const char *method;        /* "grid" or "halving" */
    long best;                 /* index into points of the winner, -1: none feasible */
    long runner_up;            /* -1: none */
    bool tie;                  /* the runner-up is within the spread of the winner */
    long baseline;             /* index of the baseline point */
};

/* Aggregate jobs (NSEEDS consecutive ones per point) into points. */
int tune_points_add(struct tune_ctx *ctx, struct tune_result *r, const struct tune_job *jobs, size_t njobs,
                    int nseeds, struct err *e);
/* The method METHOD resolves to for this space and budget. */
enum tune_method tune_method_resolve(const struct tune_ctx *ctx);
/* The grid's items: baseline first, then every candidate. */
size_t tune_grid_items(const struct tune_ctx *ctx);
long tune_grid_item_cand(size_t item);
/* Run the search; fills R. */
int tune_search(struct tune_ctx *ctx, struct tune_result *r, struct err *e);
/* Choose the winner, the runner-up and the tie among full-fidelity points. */
void tune_pick(const struct tune_ctx *ctx, struct tune_result *r);
/* The full-fidelity point of candidate CAND, or -1. */
long tune_find(const struct tune_result *r, long cand);
/* How far metrics M are from meeting the constraints: 0 when they do. */
double tune_violation(const struct tune_ctx *ctx, const double *m);
/* One simulation's view of the same, for the progress line. */
bool tune_job_feasible(const struct tune_ctx *ctx, const struct tune_job *j);
bool tune_job_better(const struct tune_ctx *ctx, const struct tune_job *a, const struct tune_job *b);
/* Whether point A is better than B under the objective (feasible first). */
bool tune_better(const struct tune_ctx *ctx, const struct tune_point *a, const struct tune_point *b);
void tune_result_free(struct tune_result *r);

/* ---- output (tune_output.c, tune_report.c, tune_manifest.c) --------------- */

/* The text of knob K's value in candidate CAND (the baseline's own for -1). */
const char *tune_value_text(const struct tune_spec *spec, long cand, size_t k);
/* Write "KEY=VALUE" overrides for candidate CAND into SETS (strings owned
 * by the caller, freed with tune_sets_free). */
int tune_candidate_sets(const struct tune_spec *spec, long cand, char ***sets, struct err *e);
void tune_sets_free(char **sets, size_t n);

/* The full run of the winner with knob K moved STEP values (-1 down, +1
 * up), or NULL when there is no such value or it was not run. */
const struct tune_point *tune_neighbour(const struct tune_ctx *ctx, const struct tune_result *r, size_t k, int step);

int tune_write_outputs(struct tune_ctx *ctx, struct tune_result *r, struct err *e);
int tune_write_report(struct tune_ctx *ctx, const struct tune_result *r, struct err *e);
/* Write DIR/manifests/ for the winner's scenario SC_PATH-with-SETS. */
int tune_write_manifests(struct tune_ctx *ctx, const struct tune_result *r, struct err *e);

/* Shard files: write the jobs of this shard; read them back for a merge. */
int tune_shard_write(const struct tune_ctx *ctx, const struct tune_job *jobs, size_t njobs, struct err *e);

#endif
