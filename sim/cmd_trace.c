/* cmd_trace.c -- `llmsim trace`: inspect and generate traces.
 *
 *   llmsim trace stats FILE [--format F] [--interval DUR] [--json]
 *   llmsim trace gen SPEC [-o FILE] [--seed N]
 *
 * stats reads the trace as a stream (memory bounded by the number of
 * intervals and a capped set of prompt hashes, not by the number of
 * requests); gen writes the native format from a generator spec given as a
 * YAML file or an inline YAML string. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/conf.h"
#include "common/duration.h"
#include "common/err.h"
#include "common/hist.h"
#include "common/log.h"
#include "sim/command.h"
#include "workloads/trace.h"

#define STATS_MAX_INTERVALS 10000000u /* rate-over-time slots */
#define STATS_MAX_HASHES (1u << 20)   /* distinct prompt hashes counted exactly */
#define STATS_TEXT_COLUMNS 60         /* rate values shown in text output */

static void trace_usage(FILE *f)
{
    fprintf(f,
            "usage: llmsim trace stats FILE [--format F] [--interval DUR] [--json]\n"
            "       llmsim trace gen SPEC [-o FILE] [--seed N]\n"
            "\n"
            "stats  count, span, mean and peak rate, rate over time, token percentiles\n"
            "       and distinct prompt identities of a trace file (formats: auto,\n"
            "       azure, burstgpt, mooncake, native; FILE '-' reads standard input).\n"
            "       --interval is the width of the rate-over-time slots (default 60s).\n"
            "gen    write a native trace from a generator SPEC: a YAML file, or an\n"
            "       inline YAML mapping such as '{kind: poisson, rate: 5, duration: 10m}'.\n"
            "       -o FILE (default '-', standard output); --seed N (default 1).\n"
            "\n"
            "Exit status: 0 ok, 1 I/O or system error, 2 bad input or usage.\n");
}

/* --- a capped set of prompt hashes (open addressing, 0 = empty) ------------ */

struct hashset {
    uint64_t *slots;
    size_t cap;   /* a power of two */
    size_t count;
    bool capped;  /* stopped counting at STATS_MAX_HASHES */
};

/* Add h (non-zero); -1 when out of memory. */
static int hashset_add(struct hashset *s, uint64_t h)
{
    size_t i;

    if (s->capped)
        return 0;
    if ((s->count + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024, j;
        uint64_t *slots;

        if (s->count >= STATS_MAX_HASHES) {
            s->capped = true;
            free(s->slots);
            s->slots = NULL;
            return 0;
        }
        slots = calloc(cap, sizeof(*slots));
        if (slots == NULL)
            return -1;
        for (j = 0; j < s->cap; j++) {
            if (s->slots[j] == 0)
                continue;
            for (i = s->slots[j] & (cap - 1); slots[i] != 0; i = (i + 1) & (cap - 1))
                ;
            slots[i] = s->slots[j];
        }
        free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    for (i = h & (s->cap - 1); s->slots[i] != 0; i = (i + 1) & (s->cap - 1))
        if (s->slots[i] == h)
            return 0;
    s->slots[i] = h;
    s->count++;
    return 0;
}

/* --- stats ---------------------------------------------------------------- */

struct stats {
    uint64_t count;
    double first_s, last_s;
    double interval_s;
    uint64_t *slots; /* requests per interval, by floor(arrival / interval) */
    size_t nslots, slots_cap;
    struct hist *prompt, *output;
    struct hashset hashes;
};

/* Count one request; -1 with e set on failure. */
static int stats_add(struct stats *st, const struct trace_request *req, struct err *e)
{
    double slot_d = floor(req->arrival_s / st->interval_s);
    size_t slot;

    if (slot_d >= STATS_MAX_INTERVALS)
        return err_set(e, ERR_INPUT, "more than %u intervals of %g s: use a larger --interval",
                       STATS_MAX_INTERVALS, st->interval_s);
    slot = (size_t)slot_d;
    if (slot >= st->slots_cap) {
        size_t cap = st->slots_cap ? st->slots_cap : 256;
        uint64_t *grown;

        while (cap <= slot)
            cap *= 2;
        grown = realloc(st->slots, cap * sizeof(*grown));
        if (grown == NULL)
            return err_set(e, ERR_SYSTEM, "out of memory");
        memset(grown + st->slots_cap, 0, (cap - st->slots_cap) * sizeof(*grown));
        st->slots = grown;
        st->slots_cap = cap;
    }
    st->slots[slot]++;
    if (slot + 1 > st->nslots)
        st->nslots = slot + 1;
    if (st->count == 0)
        st->first_s = req->arrival_s;
    st->last_s = req->arrival_s;
    st->count++;
    hist_add(st->prompt, req->prompt_tokens);
    hist_add(st->output, req->output_tokens);
    if (req->prompt_hash != 0 && hashset_add(&st->hashes, req->prompt_hash) < 0)
        return err_set(e, ERR_SYSTEM, "out of memory");
    return 0;
}

static json_t *stats_tokens_json(const struct hist *h)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f}", "p50", round(hist_quantile(h, 0.5)), "p90",
                     round(hist_quantile(h, 0.9)), "p99", round(hist_quantile(h, 0.99)), "max", hist_max(h),
                     "mean", hist_mean(h));
}

static int stats_print_json(const struct stats *st, const char *path, const char *format)
{
    double span_s = st->count > 1 ? st->last_s - st->first_s : 0;
    json_t *root, *rate = json_array();
    uint64_t peak = 0;
    size_t i;
    int rc;

    for (i = 0; i < st->nslots; i++) {
        json_array_append_new(rate, json_real((double)st->slots[i] / st->interval_s));
        if (st->slots[i] > peak)
            peak = st->slots[i];
    }
    root = json_pack("{s:s, s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:o, s:o, s:o}", "file", path, "format", format,
                     "requests", (json_int_t)st->count, "first_arrival_s", st->first_s, "span_s", span_s,
                     "mean_rate", span_s > 0 ? (double)st->count / span_s : 0.0, "peak_rate",
                     (double)peak / st->interval_s, "interval_s", st->interval_s, "rate", rate, "prompt_tokens",
                     stats_tokens_json(st->prompt), "output_tokens", stats_tokens_json(st->output));
    if (root == NULL)
        return 1;
    if (st->hashes.capped)
        json_object_set_new(root, "distinct_prompt_hashes_min", json_integer(STATS_MAX_HASHES));
    else
        json_object_set_new(root, "distinct_prompt_hashes", json_integer((json_int_t)st->hashes.count));
    rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    printf("\n");
    json_decref(root);
    return rc == 0 ? 0 : 1;
}

static void stats_print_tokens(const char *name, const struct hist *h)
{
    printf("%-14s p50 %.0f  p90 %.0f  p99 %.0f  max %.0f  mean %.1f\n", name, hist_quantile(h, 0.5),
           hist_quantile(h, 0.9), hist_quantile(h, 0.99), hist_max(h), hist_mean(h));
}

static void stats_print_text(const struct stats *st, const char *path, const char *format)
{
    double span_s = st->count > 1 ? st->last_s - st->first_s : 0;
    size_t i, j, group = 1, peak_slot = 0;
    char span_text[32], interval_text[32], shown_text[32];
    uint64_t peak = 0;

    for (i = 0; i < st->nslots; i++)
        if (st->slots[i] > peak) {
            peak = st->slots[i];
            peak_slot = i;
        }
    duration_format(span_s, span_text, sizeof(span_text));
    duration_format(st->interval_s, interval_text, sizeof(interval_text));
    printf("trace          %s (%s)\n", path, format);
    printf("requests       %" PRIu64 "\n", st->count);
    printf("span           %.3f s (%s), first arrival at %.3f s\n", span_s, span_text, st->first_s);
    printf("mean rate      %.3f req/s\n", span_s > 0 ? (double)st->count / span_s : 0.0);
    printf("peak rate      %.3f req/s (the %s interval starting at %.0f s)\n", (double)peak / st->interval_s,
           interval_text, (double)peak_slot * st->interval_s);
    if (st->nslots > STATS_TEXT_COLUMNS)
        group = (st->nslots + STATS_TEXT_COLUMNS - 1) / STATS_TEXT_COLUMNS;
    duration_format(st->interval_s * (double)group, shown_text, sizeof(shown_text));
    printf("rate (req/s per %s%s):", shown_text, group > 1 ? ", use --json for every interval" : "");
    for (i = 0; i < st->nslots; i += group) {
        uint64_t sum = 0;
        size_t n = 0;

        for (j = i; j < i + group && j < st->nslots; j++, n++)
            sum += st->slots[j];
        if ((i / group) % 12 == 0)
            printf("\n  %8.0fs ", (double)i * st->interval_s);
        printf(" %.2f", (double)sum / (st->interval_s * (double)n));
    }
    printf("\n");
    stats_print_tokens("prompt tokens", st->prompt);
    stats_print_tokens("output tokens", st->output);
    if (st->hashes.capped)
        printf("prompt hashes  more than %u distinct\n", STATS_MAX_HASHES);
    else if (st->hashes.count == 0)
        printf("prompt hashes  none\n");
    else
        printf("prompt hashes  %zu distinct\n", st->hashes.count);
}

static int trace_stats(int argc, char **argv)
{
    struct trace_options opt;
    struct trace_reader *r = NULL;
    struct trace_request req;
    struct stats st;
    struct err e;
    const char *path = NULL;
    bool json = false;
    int i, rc, status = 0;

    memset(&opt, 0, sizeof(opt));
    memset(&st, 0, sizeof(st));
    err_clear(&e);
    st.interval_s = 60;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            trace_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            opt.format = argv[++i];
        } else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            if (duration_parse(argv[++i], &st.interval_s, &e) < 0 || st.interval_s <= 0) {
                log_error("--interval: %s", e.code != ERR_OK ? e.msg : "must be positive");
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            log_error("trace stats: unknown or incomplete option '%s' (try 'llmsim trace --help')", argv[i]);
            return 2;
        } else if (path == NULL) {
            path = argv[i];
        } else {
            log_error("trace stats: one FILE expected, got '%s' too", argv[i]);
            return 2;
        }
    }
    if (path == NULL) {
        trace_usage(stderr);
        return 2;
    }
    st.prompt = hist_create();
    st.output = hist_create();
    if (st.prompt == NULL || st.output == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto err;
    }
    r = trace_open_file(path, &opt, &e);
    if (r == NULL)
        goto err;
    while ((rc = trace_next(r, &req, &e)) == 1)
        if (stats_add(&st, &req, &e) < 0)
            goto err;
    if (rc < 0)
        goto err;
    if (json)
        status = stats_print_json(&st, path, trace_format(r));
    else
        stats_print_text(&st, path, trace_format(r));
    if (fflush(stdout) != 0)
        status = 1;
    goto done;
err:
    log_error("%s", e.msg);
    status = err_exit_status(&e);
done:
    trace_close(r);
    hist_free(st.prompt);
    hist_free(st.output);
    free(st.slots);
    free(st.hashes.slots);
    return status;
}

/* --- gen ------------------------------------------------------------------ */

/* Parse a seed: a decimal unsigned 64-bit integer. */
static bool trace_parse_seed(const char *s, uint64_t *out)
{
    char *end;

    if (s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return *end == '\0' && errno == 0;
}

static int trace_gen(int argc, char **argv)
{
    struct trace_reader *r = NULL;
    struct trace_writer *w = NULL;
    struct trace_request req;
    struct conf *c = NULL;
    struct err e;
    struct stat sb;
    const char *spec = NULL, *out_path = "-";
    uint64_t seed = 1, n = 0;
    int i, rc, status;

    err_clear(&e);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            trace_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            if (!trace_parse_seed(argv[++i], &seed)) {
                log_error("--seed: expected a non-negative integer, got '%s'", argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            log_error("trace gen: unknown or incomplete option '%s' (try 'llmsim trace --help')", argv[i]);
            return 2;
        } else if (spec == NULL) {
            spec = argv[i];
        } else {
            log_error("trace gen: one SPEC expected, got '%s' too", argv[i]);
            return 2;
        }
    }
    if (spec == NULL) {
        trace_usage(stderr);
        return 2;
    }
    if (stat(spec, &sb) == 0 && S_ISREG(sb.st_mode))
        c = conf_load_file(spec, &e);
    else
        c = conf_load_string(spec, "<spec>", &e);
    if (c == NULL)
        goto err;
    r = trace_open_generator(c, conf_root(c), seed, &e);
    if (r == NULL)
        goto err;
    w = trace_writer_open(out_path, &e);
    if (w == NULL)
        goto err;
    while ((rc = trace_next(r, &req, &e)) == 1) {
        if (trace_writer_put(w, &req, &e) < 0)
            goto err;
        n++;
    }
    if (rc < 0)
        goto err;
    rc = trace_writer_close(w, &e);
    w = NULL;
    if (rc < 0)
        goto err;
    log_info("wrote %" PRIu64 " requests to %s", n, out_path);
    status = 0;
    goto done;
err:
    log_error("%s", e.msg);
    status = err_exit_status(&e);
    if (w != NULL) {
        trace_writer_close(w, NULL);
        if (strcmp(out_path, "-") != 0)
            unlink(out_path);
    }
done:
    trace_close(r);
    conf_free(c);
    return status;
}

static int trace_exec(int argc, char **argv)
{
    if (argc < 2) {
        trace_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        trace_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "stats") == 0)
        return trace_stats(argc - 1, argv + 1);
    if (strcmp(argv[1], "gen") == 0)
        return trace_gen(argc - 1, argv + 1);
    log_error("trace: unknown subcommand '%s' (stats or gen; try 'llmsim trace --help')", argv[1]);
    return 2;
}

const struct command cmd_trace_entry = {
    .name = "trace",
    .summary = "inspect a trace file (stats) or generate one (gen)",
    .exec = trace_exec,
};
