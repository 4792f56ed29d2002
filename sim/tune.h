/* tune.h -- `llmsim tune`: search a scenario's knobs for the cheapest
 * settings that meet its SLO (or the best SLO attainment within a budget).
 *
 * The scenario's `tune:` section names the objective, the constraints and a
 * search space of scenario keys (the paths of `--set`); every candidate is
 * the scenario with those keys overridden, simulated in process over several
 * seeds.  The search is a grid for small spaces and successive halving on
 * workload prefixes for large ones (see README.md, `llmsim tune`).  Results
 * do not depend on the number of worker threads: candidates are numbered, and
 * each simulation's seed follows from its seed number only.
 *
 * Output in opt->outdir: trials.csv, pareto.csv, sensitivity.csv, best.yaml,
 * report.html (+ charts) and manifests/ (HPA or KEDA ScaledObject, a
 * Deployment patch).  A sharded run (shard_count > 0) writes only
 * shard-I-of-N.tsv; tune_merge() joins the shards of a sweep into the same
 * outputs as one run. */
#ifndef LLM_TUNE_H
#define LLM_TUNE_H

#include <stdbool.h>

#include "common/err.h"

struct tune_options {
    const char *outdir;  /* required */
    int jobs;            /* worker threads, >= 1 */
    long budget;         /* > 0: replaces tune.budget (simulations of the whole workload) */
    int shard_index;     /* with shard_count > 0: evaluate items i with i % count == index */
    int shard_count;
    bool progress;       /* progress on stderr (callers pass isatty) */
    bool quiet;          /* print nothing on stdout */
    bool report;         /* write report.html and its charts */
    bool reread;         /* read the workload for every simulation, not once (for checking) */
};

/* Tune the scenario in PATH with the NSETS overrides in SETS applied first.
 * Returns 0, or -1 with e set (ERR_INPUT for a bad scenario or tune
 * section, naming FILE:LINE and the key). */
int tune_run(const char *path, char *const *sets, int nsets, const struct tune_options *opt, struct err *e);

/* Join the shard files found in the NDIRS directories DIRS (all shards of
 * one sweep, each once) and write the outputs into opt->outdir. */
int tune_merge(char *const *dirs, int ndirs, const struct tune_options *opt, struct err *e);

#endif
