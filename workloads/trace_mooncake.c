/* trace_mooncake.c -- the Mooncake trace: one JSON object per line.
 *
 *   {"timestamp": 27482, "input_length": 6955, "output_length": 52,
 *    "hash_ids": [46, 47, 48]}
 *
 * timestamp is in milliseconds; arrivals are relative to the first line.
 * hash_ids lists the prompt's prefix blocks: prompt_hash is an xxhash over
 * the ids in order, so two requests with the same block list share an
 * identity; an absent or empty list gives 0 (unknown).  Other keys are
 * ignored.  No header line. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "workloads/trace_format.h"

struct mooncake_state {
    bool have_first;
    double first_ms;
};

static bool mooncake_detect(const char *first_line)
{
    while (*first_line == ' ' || *first_line == '\t')
        first_line++;
    return *first_line == '{';
}

static void *mooncake_open(struct linereader *lr, struct err *e)
{
    struct mooncake_state *st = calloc(1, sizeof(*st));

    if (st == NULL)
        err_set(e, ERR_SYSTEM, "out of memory");
    return st;
}

/* A required non-negative integer token count KEY of OBJ. */
static int mooncake_tokens(const struct linereader *lr, json_t *obj, const char *key, uint32_t *out,
                           struct err *e)
{
    json_t *v = json_object_get(obj, key);
    json_int_t x;

    if (v == NULL)
        return err_at(e, linereader_path(lr), linereader_lineno(lr), "%s: missing", key);
    if (!json_is_integer(v))
        return err_at(e, linereader_path(lr), linereader_lineno(lr), "%s: expected a non-negative integer",
                      key);
    x = json_integer_value(v);
    if (x < 0)
        return err_at(e, linereader_path(lr), linereader_lineno(lr),
                      "%s: expected a non-negative integer, got %lld", key, (long long)x);
    if (x > (json_int_t)TRACE_MAX_TOKENS)
        return err_at(e, linereader_path(lr), linereader_lineno(lr),
                      "%s: %lld is more than the limit of %u tokens", key, (long long)x, TRACE_MAX_TOKENS);
    *out = (uint32_t)x;
    return 0;
}

/* The timestamp in milliseconds. */
static int mooncake_timestamp(const struct linereader *lr, json_t *obj, double *out_ms, struct err *e)
{
    json_t *v = json_object_get(obj, "timestamp");
    double ms;

    if (v == NULL)
        return err_at(e, linereader_path(lr), linereader_lineno(lr), "timestamp: missing");
    if (!json_is_number(v))
        return err_at(e, linereader_path(lr), linereader_lineno(lr),
                      "timestamp: expected a non-negative number of milliseconds");
    ms = json_number_value(v);
    if (!isfinite(ms) || ms < 0 || ms > TRACE_MAX_SECONDS * 1000)
        return err_at(e, linereader_path(lr), linereader_lineno(lr),
                      "timestamp: %g is not a non-negative number of milliseconds in range", ms);
    *out_ms = ms;
    return 0;
}

/* prompt_hash from hash_ids (optional). */
static int mooncake_hash(const struct linereader *lr, json_t *obj, uint64_t *out, struct err *e)
{
    json_t *ids = json_object_get(obj, "hash_ids");
    uint64_t h = 0;
    size_t i;

    *out = 0;
    if (ids == NULL || json_is_null(ids))
        return 0;
    if (!json_is_array(ids))
        return err_at(e, linereader_path(lr), linereader_lineno(lr), "hash_ids: expected a list of integers");
    if (json_array_size(ids) == 0)
        return 0;
    for (i = 0; i < json_array_size(ids); i++) {
        json_t *v = json_array_get(ids, i);

        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return err_at(e, linereader_path(lr), linereader_lineno(lr),
                          "hash_ids[%zu]: expected a non-negative integer", i);
        h = trace_hash_id_step(h, (uint64_t)json_integer_value(v));
    }
    *out = trace_hash_final(h);
    return 0;
}

static int mooncake_next(void *state, struct linereader *lr, struct trace_request *out, struct err *e)
{
    struct mooncake_state *st = state;
    json_error_t jerr;
    json_t *obj = NULL;
    char *line;
    double ms = 0;
    int rc;

    rc = trace_next_line(lr, &line, e);
    if (rc <= 0)
        return rc;
    obj = json_loadb(line, strlen(line), JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL)
        return err_at(e, linereader_path(lr), linereader_lineno(lr), "invalid JSON: %s (column %d)", jerr.text,
                      jerr.column);
    if (!json_is_object(obj)) {
        err_at(e, linereader_path(lr), linereader_lineno(lr), "expected a JSON object");
        goto err;
    }
    memset(out, 0, sizeof(*out));
    if (mooncake_timestamp(lr, obj, &ms, e) < 0 ||
        mooncake_tokens(lr, obj, "input_length", &out->prompt_tokens, e) < 0 ||
        mooncake_tokens(lr, obj, "output_length", &out->output_tokens, e) < 0 ||
        mooncake_hash(lr, obj, &out->prompt_hash, e) < 0)
        goto err;
    json_decref(obj);
    if (!st->have_first) {
        st->have_first = true;
        st->first_ms = ms;
    }
    out->arrival_s = (ms - st->first_ms) / 1000.0;
    return 1;
err:
    json_decref(obj);
    return -1;
}

static void mooncake_close(void *state)
{
    free(state);
}

const struct trace_format trace_format_mooncake = {
    .name = "mooncake",
    .detect = mooncake_detect,
    .open = mooncake_open,
    .next = mooncake_next,
    .progress = NULL,
    .close = mooncake_close,
};
