/* llmload.h -- what llmload measures per request, and the results it writes.
 *
 * llmload.c replays a trace against a server and fills one load_record per
 * request; llmload_results.c keeps the latency histograms and counters
 * (memory does not grow with the trace), writes one CSV row per request, and
 * builds the summary in llmsim's summary.json shape (requests, latency_s,
 * tokens, throughput) plus a "load" section about the client itself.  All
 * times are seconds on the client's monotonic clock, relative to the replay's
 * start; latencies count from the request's scheduled arrival, so a late
 * client shows up in them (and in the lateness it reports) instead of being
 * hidden. */
#ifndef LLM_LLMLOAD_H
#define LLM_LLMLOAD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

enum load_outcome {
    LOAD_COMPLETED, /* 2xx and a complete answer */
    LOAD_REJECTED,  /* 429 or 503: the server refused it (queue full, draining, rate limit) */
    LOAD_TIMED_OUT, /* no complete answer within --timeout */
    LOAD_FAILED,    /* any other status, a transport error or a malformed answer */
};

/* One finished request.  Unknown times are negative. */
struct load_record {
    uint64_t id;
    double sched_s;        /* when the trace says it arrives */
    double send_s;         /* when llmload handed it to the transport */
    double first_byte_s;   /* first byte of the response (headers) */
    double first_token_s;  /* first generated token (streaming), or the whole answer */
    double done_s;         /* last byte */
    uint32_t prompt_tokens;  /* asked for (the trace) */
    uint32_t output_tokens;  /* asked for (the trace) */
    long server_prompt_tokens; /* usage.prompt_tokens, -1 unknown */
    long server_output_tokens; /* usage.completion_tokens (or streamed chunks), -1 unknown */
    long status;           /* HTTP status, 0 none */
    enum load_outcome outcome;
    const char *error;     /* short reason for FAILED/TIMED_OUT/REJECTED, or NULL */
};

struct load_results;

/* Create; open CSV_PATH for the per-request rows (NULL: none).  NULL on error. */
struct load_results *load_results_create(const char *csv_path, struct err *e);
/* Record a finished request (and write its CSV row). */
void load_results_add(struct load_results *r, const struct load_record *rec);
/* Note a request that was scheduled but never finished (interrupted run). */
void load_results_unfinished(struct load_results *r, uint64_t n);

/* About the run, for the "load" section. */
struct load_run_info {
    const char *url;
    const char *trace;
    const char *format;
    double time_scale, rate_scale;
    uint64_t seed;
    bool stream;
    const char *prompt_mode;
    double duration_s;     /* first scheduled arrival to last completion */
    double wall_s;
    double cpu_s;          /* llmload's own CPU time (user + system) */
    long max_in_flight;    /* most requests outstanding at once */
    long concurrency_limit;
    uint64_t held;         /* arrivals held back by --max-concurrency */
};

/* The summary: llmsim's keys (requests, latency_s, tokens, throughput) and a
 * "load" section with lateness, first-byte times, HTTP statuses and the
 * verdict on whether the client was the bottleneck.  NULL on out of memory. */
json_t *load_results_summary(const struct load_results *r, const struct load_run_info *info);

/* Whether the client, not the server, limited the run (and why, into WHY). */
bool load_results_client_bound(const struct load_results *r, const struct load_run_info *info, char *why,
                               size_t len);

/* Close the CSV and free; -1 if a CSV write failed. */
int load_results_free(struct load_results *r, struct err *e);

#endif
