/* sim.h -- one simulation run: a scenario's workload replayed through the
 * cluster model on the event engine, measured, and summarised. */
#ifndef LLM_SIM_H
#define LLM_SIM_H

#include <jansson.h>
#include <stdbool.h>

#include "common/err.h"
#include "sim/scenario.h"

struct trace_request;

struct sim_options {
    const char *outdir;  /* write timeline.csv, latency_cdf.csv, summary.json here; NULL: nothing */
    bool requests_csv;   /* also requests.csv (one row per request) */
    bool reproducible;   /* write 0 for wall-clock figures so summary.json is byte-identical */
    bool progress;       /* show progress on stderr when it is a terminal */
    /* When set, these NREQUESTS requests (in arrival order) are the workload
     * instead of reading the scenario's: llmsim tune reads a trace once for
     * all its runs.  They must be what the workload section yields. */
    const struct trace_request *requests;
    size_t nrequests;
};

/* Run SC.  Returns the summary (the content of summary.json; the caller
 * json_decref()s it) or NULL on error (a malformed trace line, an I/O
 * failure). */
json_t *sim_run(const struct scenario *sc, const struct sim_options *opt, struct err *e);

#endif
