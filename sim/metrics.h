/* metrics.h -- what a run measures, and the files it writes.
 *
 * Counts requests by outcome, keeps latency histograms (queue wait, time to
 * first token, time per output token, end to end) for the whole run and TTFT
 * for the current timeline interval, checks each request against the SLO,
 * and writes timeline.csv rows, latency_cdf.csv, optional requests.csv and
 * summary.json.  Memory does not grow with the number of requests. */
#ifndef LLM_METRICS_H
#define LLM_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/hist.h"

struct scenario;

/* The life of one finished request, in simulated seconds. */
struct request_times {
    uint64_t id;
    double arrival_s;
    double start_s;       /* first scheduled into a batch */
    double first_token_s;
    double finish_s;
    uint32_t prompt_tokens;
    uint32_t output_tokens;
    uint32_t preemptions;
    int replica;  /* -1: answered by the response cache */
};

/* The state of the cluster at the end of a timeline interval. */
struct timeline_sample {
    long queue_len;
    long running;
    int replicas_desired;
    int replicas_ready;
    double kv_util;   /* mean over the interval, in [0, 1] */
    double busy_frac; /* mean over the interval, in [0, 1] */
    double cost_usd;  /* accumulated since the start */
    unsigned long long cold_starts; /* replicas started cold since the start */
    int nodes;        /* nodes up (provisioning or running), all pools */
    const int *pool_nodes; /* per pool, in the scenario's order (npools entries) */
};

enum request_outcome { OUTCOME_REJECTED, OUTCOME_TIMED_OUT };

struct metrics {
    const struct scenario *sc;
    struct hist *queue;
    struct hist *ttft;
    struct hist *tpot;
    struct hist *e2e;
    struct hist *iv_ttft; /* TTFT of first tokens within the current interval */
    uint64_t arrived;
    uint64_t completed;
    uint64_t rejected;
    uint64_t timed_out;
    uint64_t slo_good;
    uint64_t preemptions; /* KV-cache preemptions (recompute) */
    uint64_t prompt_tokens;
    uint64_t output_tokens;
    uint64_t iv_arrivals;
    uint64_t iv_completed;
    uint64_t iv_rejected;
    uint64_t iv_timed_out;
    FILE *timeline;
    FILE *requests;
    unsigned long long last_cold_starts;
};

/* Create; open DIR/timeline.csv (and DIR/requests.csv when REQUESTS_CSV).
 * With DIR NULL nothing is written (a measurement-only run). */
int metrics_init(struct metrics *m, const struct scenario *sc, const char *dir, bool requests_csv,
                 struct err *e);
/* Close files; returns -1 if a write failed. */
int metrics_close(struct metrics *m, struct err *e);

void metrics_arrival(struct metrics *m, uint32_t prompt_tokens);
void metrics_first_token(struct metrics *m, double ttft_s);
void metrics_done(struct metrics *m, const struct request_times *t);
void metrics_dropped(struct metrics *m, enum request_outcome why, uint64_t id, double arrival_s, double now_s);

/* Write the timeline row for the interval starting at T_START_S and reset
 * the interval counters. */
void metrics_timeline_row(struct metrics *m, double t_start_s, const struct timeline_sample *s);

/* Fraction of arrived requests that met every SLO target (1 when none arrived). */
double metrics_slo_attainment(const struct metrics *m);

/* One latency distribution as summary.json writes it: {mean, p50, p90,
 * p99, max} in seconds (0 for an empty histogram).  Shared with llmload,
 * whose results use the same keys.  NULL when out of memory. */
json_t *metrics_latency_json(const struct hist *h);

/* Write DIR/latency_cdf.csv. */
int metrics_write_cdf(const struct metrics *m, const char *dir, struct err *e);

#endif
