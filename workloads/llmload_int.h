/* llmload_int.h -- what llmload's files share, and nothing else includes:
 *
 *   llmload.c          the program: options, the run from start to finish, the report
 *   llmload_prompt.c   the request bodies (a prompt of the trace's length), text
 *                      mode's calibration, the blocking requests before the replay
 *   llmload_replay.c   the open-loop replay: libcurl's multi interface, the answers
 *                      parsed as they stream (SSE) and classified
 *   llmload_results.c  histograms, counters, the CSV and the summary (llmload.h) */
#ifndef LLM_LLMLOAD_INT_H
#define LLM_LLMLOAD_INT_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "workloads/llmload.h"
#include "workloads/trace.h"

#define LOAD_MAX_BODY_BYTES (4u << 20) /* a non-streamed answer larger than this is an error */
#define LOAD_MAX_LINE_BYTES (1u << 20) /* one SSE line */
#define LOAD_MAX_PROMPT_TOKENS 10000000u /* per request: larger is a broken trace */

/* The options, as llmload.c resolves them from the command line. */
struct load_opts {
    const char *url;       /* the endpoint: BASE/v1/completions or .../chat/completions */
    char *endpoint;        /* owned */
    char *base;            /* scheme://host:port, owned */
    bool chat;
    const char *trace;
    struct trace_options topt;
    const char *api_key;
    const char *model;     /* NULL: ask /v1/models */
    char *model_owned;
    bool stream;
    bool ids;              /* prompt as token ids */
    int prompt_token;      /* the id repeated in ids mode */
    const char *word;      /* the text repeated in text mode */
    double timeout_s;
    long max_concurrency;
    const char *out;
    const char *csv;
    char *csv_owned;
    bool quiet;
};

/* What text mode learned: a prompt of k words costs base + k * per tokens. */
struct load_calib {
    long base;
    long per;
};

/* llmload.c: set by SIGINT and SIGTERM; the replay then stops and abandons
 * what is still in flight. */
extern volatile sig_atomic_t load_interrupted;

/* llmload_prompt.c */
json_t *load_fetch_json(const struct load_opts *o, const char *url, const char *body, struct err *e);
char *load_body(const struct load_opts *o, const struct load_calib *cal, uint32_t prompt_tokens,
                uint32_t output_tokens, bool stream);
long load_usage_tokens(json_t *answer, const char *key);
int load_calibrate(struct load_opts *o, bool word_given, struct load_calib *cal, struct err *e);

/* llmload_replay.c: send every request of TR at its arrival time, recording
 * each into RES and the run's figures into INFO; -1 on error (E). */
int load_replay(const struct load_opts *o, const struct load_calib *cal, struct trace_reader *tr,
                struct load_results *res, struct load_run_info *info, struct err *e);

#endif
