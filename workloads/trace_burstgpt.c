/* trace_burstgpt.c -- the BurstGPT trace CSV (BurstGPT_1.csv and friends).
 *
 *   Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
 *   5,ChatGPT,472,18,490,Conversation log
 *
 * Timestamp is in seconds (integer or decimal).  Rows with Response tokens
 * 0 are requests that failed upstream (the dataset's "without_fails" files
 * drop them): they are skipped, counted, and the count logged at close, so
 * BurstGPT_1.csv and BurstGPT_without_fails_1.csv give the same requests.
 * Total tokens is not checked against the sum.  No tenant or prompt
 * identity: both are 0. */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "workloads/trace_format.h"

#define BURSTGPT_HEADER "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"
#define BURSTGPT_COLUMNS 6

struct burstgpt_state {
    char *path;
    bool have_first;
    double first_s;
    uint64_t failed; /* rows skipped for Response tokens 0 */
};

static bool burstgpt_detect(const char *first_line)
{
    return strncmp(first_line, BURSTGPT_HEADER, strlen(BURSTGPT_HEADER)) == 0;
}

static void *burstgpt_open(struct linereader *lr, struct err *e)
{
    struct burstgpt_state *st;
    char *line;
    char quoted[64];
    int rc = trace_next_line(lr, &line, e);

    if (rc < 0)
        return NULL;
    if (rc == 0 || strcmp(line, BURSTGPT_HEADER) != 0) {
        trace_quote(rc == 0 ? "" : line, quoted, sizeof(quoted));
        err_at(e, linereader_path(lr), linereader_lineno(lr),
               "burstgpt: expected the header '%s', got '%s'", BURSTGPT_HEADER, quoted);
        return NULL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL || (st->path = strdup(linereader_path(lr))) == NULL) {
        free(st);
        err_set(e, ERR_SYSTEM, "out of memory");
        return NULL;
    }
    return st;
}

static int burstgpt_next(void *state, struct linereader *lr, struct trace_request *out, struct err *e)
{
    struct burstgpt_state *st = state;
    char *line, *fields[BURSTGPT_COLUMNS];
    uint32_t total;
    double t_s;
    int n, rc;

    for (;;) {
        rc = trace_next_line(lr, &line, e);
        if (rc <= 0)
            return rc;
        n = trace_split_csv(line, fields, BURSTGPT_COLUMNS);
        if (n != BURSTGPT_COLUMNS)
            return trace_columns_error(lr, BURSTGPT_COLUMNS, n, BURSTGPT_HEADER, e);
        memset(out, 0, sizeof(*out));
        if (trace_parse_seconds(lr, "Timestamp", fields[0], &t_s, e) < 0 ||
            trace_parse_tokens(lr, "Request tokens", fields[2], &out->prompt_tokens, e) < 0 ||
            trace_parse_tokens(lr, "Response tokens", fields[3], &out->output_tokens, e) < 0 ||
            trace_parse_tokens(lr, "Total tokens", fields[4], &total, e) < 0)
            return -1;
        if (fields[1][0] == '\0')
            return err_at(e, linereader_path(lr), linereader_lineno(lr), "Model: empty field");
        if (!st->have_first) {
            st->have_first = true;
            st->first_s = t_s;
        }
        if (out->output_tokens == 0) {
            st->failed++;
            continue;
        }
        out->arrival_s = t_s - st->first_s;
        return 1;
    }
}

static void burstgpt_close(void *state)
{
    struct burstgpt_state *st = state;

    if (st == NULL)
        return;
    if (st->failed > 0)
        log_info("%s: skipped %" PRIu64 " failed requests (Response tokens 0)", st->path, st->failed);
    free(st->path);
    free(st);
}

const struct trace_format trace_format_burstgpt = {
    .name = "burstgpt",
    .detect = burstgpt_detect,
    .open = burstgpt_open,
    .next = burstgpt_next,
    .progress = NULL,
    .close = burstgpt_close,
};
