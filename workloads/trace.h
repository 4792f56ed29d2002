/* trace.h -- the workload interface: a stream of requests in arrival order.
 *
 * A trace_reader yields requests one at a time, from a trace file (Azure LLM
 * inference CSV 2023/2024, BurstGPT CSV, Mooncake JSONL, or the native CSV) or
 * from a generator (Poisson, diurnal, bursty), so memory does not grow with the
 * length of the trace.  Each format lives in its own trace_FORMAT.c and is
 * registered in one table in trace.c.  Errors in input name FILE:LINE. */
#ifndef LLM_TRACE_H
#define LLM_TRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/conf.h"
#include "common/err.h"

/* One request of a trace. */
struct trace_request {
    double arrival_s;       /* seconds since the trace's first request (after time_scale) */
    uint32_t prompt_tokens; /* prompt (context) length in tokens */
    uint32_t output_tokens; /* tokens to generate */
    uint64_t prompt_hash;   /* identity of the prompt for caching; 0 = unknown */
    uint64_t tenant;        /* hash of the tenant / API key; 0 = none */
};

/* How a trace file is read.  Zero values mean the defaults noted. */
struct trace_options {
    const char *format;   /* NULL or "auto": detect; else a format name */
    double time_scale;    /* multiply arrival times (2 = half the rate); default 1 */
    double rate_scale;    /* thin (< 1) or replicate (> 1) requests; default 1 */
    double max_duration_s; /* stop after this much (scaled) time; 0 = all */
    uint64_t limit;       /* stop after this many requests; 0 = all */
    uint64_t seed;        /* for rate_scale's random thinning */
};

struct trace_reader;

/* Open a trace file.  NULL on error (unknown format, unreadable file). */
struct trace_reader *trace_open_file(const char *path, const struct trace_options *opt, struct err *e);

/* Open a generator described by a YAML mapping (see workloads/README.md):
 * {kind: poisson|diurnal|bursty, rate, duration, ..., prompt_tokens: DIST,
 * output_tokens: DIST}.  Errors name the file and line of the spec. */
struct trace_reader *trace_open_generator(const struct conf *c, const struct conf_node *spec,
                                          uint64_t seed, struct err *e);

/* Open the `workload:` section of a scenario: {trace: PATH, format,
 * time_scale, rate_scale, duration, limit} or {generator: SPEC, ...}.
 * A relative PATH is relative to the scenario file's directory. */
struct trace_reader *workload_open(const struct conf *c, const struct conf_node *workload,
                                   uint64_t seed, struct err *e);

/* Next request: 1 and *out filled, 0 at the end, -1 on error ("FILE:LINE: ..."). */
int trace_next(struct trace_reader *r, struct trace_request *out, struct err *e);

/* Fraction of the source consumed, in [0, 1], or -1 when unknown.  For
 * progress display only. */
double trace_progress(const struct trace_reader *r);

/* The format's name ("azure", "burstgpt", "mooncake", "native", "generator"). */
const char *trace_format(const struct trace_reader *r);

void trace_close(struct trace_reader *r);

/* Whether NAME is a file format ("azure", ...; not "auto"). */
bool trace_format_known(const char *name);
/* The file formats' names, comma-separated, into buf (for messages). */
void trace_format_list(char *buf, size_t len);

/* Native-format writer (used by `llmsim trace gen`). */
struct trace_writer;
struct trace_writer *trace_writer_open(const char *path, struct err *e);
int trace_writer_put(struct trace_writer *w, const struct trace_request *req, struct err *e);
/* Flushes and closes; returns -1 if a write failed. */
int trace_writer_close(struct trace_writer *w, struct err *e);

#endif
