/* llmload_results.c -- see llmload.h. */
#include "workloads/llmload.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/hist.h"
#include "sim/metrics.h"

/* The client is called the bottleneck when it sent requests this much later
 * than scheduled (p99), or used this share of its one core. */
#define LOAD_LATE_P99_S 0.010
#define LOAD_CPU_RATIO 0.80

/* Distinct HTTP statuses counted (100..599). */
#define LOAD_NSTATUS 600

struct load_results {
    struct hist *lateness, *first_byte, *ttft, *tpot, *e2e;
    uint64_t arrived, completed, rejected, timed_out, failed, unfinished;
    uint64_t prompt_tokens, output_tokens;  /* of completed requests, as the server counted them */
    uint64_t short_outputs;   /* completed with fewer tokens than asked for */
    uint64_t prompt_mismatch; /* the server counted a different prompt length */
    uint64_t status[LOAD_NSTATUS];
    uint64_t no_status;
    FILE *csv;
    char *csv_path;
};

struct load_results *load_results_create(const char *csv_path, struct err *e)
{
    struct load_results *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        return NULL;
    }
    r->lateness = hist_create();
    r->first_byte = hist_create();
    r->ttft = hist_create();
    r->tpot = hist_create();
    r->e2e = hist_create();
    if (!r->lateness || !r->first_byte || !r->ttft || !r->tpot || !r->e2e) {
        err_set(e, ERR_SYSTEM, "out of memory");
        goto fail;
    }
    if (csv_path != NULL) {
        r->csv_path = strdup(csv_path);
        r->csv = fopen(csv_path, "w");
        if (r->csv_path == NULL || r->csv == NULL) {
            err_sys(e, errno, "%s", csv_path);
            goto fail;
        }
        fputs("id,arrival_s,prompt_tokens,output_tokens,outcome,status,lateness_s,first_byte_s,ttft_s,tpot_s,e2e_s,"
              "server_prompt_tokens,server_output_tokens,error\n",
              r->csv);
    }
    return r;
fail:
    load_results_free(r, NULL);
    return NULL;
}

static const char *load_outcome_name(enum load_outcome o)
{
    switch (o) {
    case LOAD_COMPLETED: return "completed";
    case LOAD_REJECTED: return "rejected";
    case LOAD_TIMED_OUT: return "timed_out";
    case LOAD_FAILED: break;
    }
    return "failed";
}

/* A CSV field: empty for unknown (negative) values. */
static void load_csv_time(FILE *f, double v)
{
    if (v >= 0 && isfinite(v))
        fprintf(f, "%.6f", v);
    fputc(',', f);
}

void load_results_add(struct load_results *r, const struct load_record *rec)
{
    double late = rec->send_s - rec->sched_s;
    double fb = rec->first_byte_s >= 0 ? rec->first_byte_s - rec->sched_s : -1;
    double ttft = -1, e2e = -1, tpot = -1;
    long nout = rec->server_output_tokens >= 0 ? rec->server_output_tokens : (long)rec->output_tokens;

    r->arrived++;
    if (rec->status > 0 && rec->status < LOAD_NSTATUS)
        r->status[rec->status]++;
    else
        r->no_status++;
    hist_add(r->lateness, late > 0 ? late : 0);
    if (fb >= 0)
        hist_add(r->first_byte, fb);
    switch (rec->outcome) {
    case LOAD_COMPLETED:
        r->completed++;
        ttft = rec->first_token_s - rec->sched_s;
        e2e = rec->done_s - rec->sched_s;
        hist_add(r->ttft, ttft);
        hist_add(r->e2e, e2e);
        /* Time per output token only where tokens came one by one. */
        if (rec->first_token_s < rec->done_s && nout > 1) {
            tpot = (rec->done_s - rec->first_token_s) / (double)(nout - 1);
            hist_add(r->tpot, tpot);
        }
        r->prompt_tokens += rec->server_prompt_tokens >= 0 ? (uint64_t)rec->server_prompt_tokens : rec->prompt_tokens;
        r->output_tokens += (uint64_t)nout;
        if (nout < (long)rec->output_tokens)
            r->short_outputs++;
        if (rec->server_prompt_tokens >= 0 && rec->server_prompt_tokens != (long)rec->prompt_tokens)
            r->prompt_mismatch++;
        break;
    case LOAD_REJECTED: r->rejected++; break;
    case LOAD_TIMED_OUT: r->timed_out++; break;
    case LOAD_FAILED: r->failed++; break;
    }
    if (r->csv == NULL)
        return;
    fprintf(r->csv, "%llu,%.6f,%u,%u,%s,%ld,", (unsigned long long)rec->id, rec->sched_s, rec->prompt_tokens,
            rec->output_tokens, load_outcome_name(rec->outcome), rec->status);
    load_csv_time(r->csv, late > 0 ? late : 0);
    load_csv_time(r->csv, fb);
    load_csv_time(r->csv, ttft);
    load_csv_time(r->csv, tpot);
    load_csv_time(r->csv, e2e);
    if (rec->server_prompt_tokens >= 0)
        fprintf(r->csv, "%ld", rec->server_prompt_tokens);
    fputc(',', r->csv);
    if (rec->server_output_tokens >= 0)
        fprintf(r->csv, "%ld", rec->server_output_tokens);
    fputc(',', r->csv);
    if (rec->error != NULL) {
        /* quoted, with quotes doubled and line breaks flattened */
        const char *p;
        fputc('"', r->csv);
        for (p = rec->error; *p; p++) {
            if (*p == '"')
                fputc('"', r->csv);
            fputc(*p == '\n' || *p == '\r' ? ' ' : *p, r->csv);
        }
        fputc('"', r->csv);
    }
    fputc('\n', r->csv);
}

void load_results_unfinished(struct load_results *r, uint64_t n)
{
    r->unfinished += n;
    r->arrived += n;
}

bool load_results_client_bound(const struct load_results *r, const struct load_run_info *info, char *why,
                               size_t len)
{
    double late99 = hist_quantile(r->lateness, 0.99);
    double cpu = info->wall_s > 0 ? info->cpu_s / info->wall_s : 0;
    size_t n = 0;

    if (len > 0)
        why[0] = '\0';
    if (late99 > LOAD_LATE_P99_S)
        n += (size_t)snprintf(why + n, n < len ? len - n : 0, "%srequests left %.1f ms late (p99)", n ? "; " : "",
                              late99 * 1e3);
    if (cpu > LOAD_CPU_RATIO && n < len)
        n += (size_t)snprintf(why + n, len - n, "%sllmload used %.0f%% of its core", n ? "; " : "", 100 * cpu);
    if (info->held > 0 && n < len)
        n += (size_t)snprintf(why + n, len - n, "%s%llu arrivals waited for --max-concurrency %ld", n ? "; " : "",
                              (unsigned long long)info->held, info->concurrency_limit);
    return n > 0;
}

static json_t *load_real(double v)
{
    return json_real(isfinite(v) ? v : 0.0);
}

json_t *load_results_summary(const struct load_results *r, const struct load_run_info *info)
{
    char why[512];
    bool bound = load_results_client_bound(r, info, why, sizeof(why));
    double span = info->duration_s;
    json_t *statuses = json_object(), *sm;
    int s;

    if (statuses == NULL)
        return NULL;
    for (s = 0; s < LOAD_NSTATUS; s++)
        if (r->status[s] > 0) {
            char key[8];
            snprintf(key, sizeof(key), "%d", s);
            json_object_set_new(statuses, key, json_integer((json_int_t)r->status[s]));
        }
    if (r->no_status > 0)
        json_object_set_new(statuses, "none", json_integer((json_int_t)r->no_status));
    sm = json_pack(
        "{s:{s:s,s:s,s:I},"
        "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
        "s:{s:o,s:o,s:o},"
        "s:{s:I,s:I},"
        "s:{s:o,s:o},"
        "s:{s:s,s:s,s:s,s:o,s:o,s:I,s:b,s:s,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:o,s:b,s:s*}}",
        "scenario", "name", "llmload", "file", info->trace, "seed", (json_int_t)info->seed,
        "requests", "arrived", (json_int_t)r->arrived, "completed", (json_int_t)r->completed, "rejected",
        (json_int_t)r->rejected, "timed_out", (json_int_t)r->timed_out, "failed", (json_int_t)r->failed,
        "in_flight_at_end", (json_int_t)r->unfinished, "short_outputs", (json_int_t)r->short_outputs,
        "latency_s", "ttft", metrics_latency_json(r->ttft), "tpot", metrics_latency_json(r->tpot), "e2e",
        metrics_latency_json(r->e2e),
        "tokens", "prompt", (json_int_t)r->prompt_tokens, "output", (json_int_t)r->output_tokens,
        "throughput", "requests_per_s", load_real(span > 0 ? r->completed / span : 0), "output_tokens_per_s",
        load_real(span > 0 ? r->output_tokens / span : 0),
        "load", "url", info->url, "trace", info->trace, "format", info->format, "time_scale",
        load_real(info->time_scale), "rate_scale", load_real(info->rate_scale), "seed", (json_int_t)info->seed,
        "stream", info->stream, "prompt_mode", info->prompt_mode, "duration_s", load_real(span), "wall_s",
        load_real(info->wall_s), "lateness_s", metrics_latency_json(r->lateness), "first_byte_s",
        metrics_latency_json(r->first_byte), "client_cpu_ratio",
        load_real(info->wall_s > 0 ? info->cpu_s / info->wall_s : 0), "max_in_flight",
        (json_int_t)info->max_in_flight, "concurrency_limit", (json_int_t)info->concurrency_limit, "held",
        (json_int_t)info->held, "prompt_tokens_mismatch", (json_int_t)r->prompt_mismatch, "clamped",
        (json_int_t)(hist_clamped(r->e2e) + hist_clamped(r->ttft)), "http_status", statuses, "client_bottleneck",
        bound, "client_bottleneck_why", bound ? why : NULL);
    return sm;
}

int load_results_free(struct load_results *r, struct err *e)
{
    int rc = 0;

    if (r == NULL)
        return 0;
    if (r->csv != NULL) {
        int bad = ferror(r->csv);
        if (fclose(r->csv) != 0 || bad)
            rc = err_set(e, ERR_SYSTEM, "%s: write failed", r->csv_path);
    }
    hist_free(r->lateness);
    hist_free(r->first_byte);
    hist_free(r->ttft);
    hist_free(r->tpot);
    hist_free(r->e2e);
    free(r->csv_path);
    free(r);
    return rc;
}
