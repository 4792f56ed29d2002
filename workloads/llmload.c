/* llmload.c -- replay a trace against an OpenAI-compatible server, open loop.
 *
 * Each request of the trace is sent at its arrival time whatever happened to
 * the earlier ones (open loop), with a prompt of the trace's length and
 * max_tokens = the trace's output length with ignore_eos set, so the server
 * does the work the trace describes.  This file is the program: its options,
 * the run from the trace to the results files, the report on stdout.  The
 * prompts are llmload_prompt.c's, the replay through libcurl's multi
 * interface llmload_replay.c's, the measurements and the results files
 * llmload_results.c's. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "common/duration.h"
#include "common/err.h"
#include "common/log.h"
#include "common/path.h"
#include "workloads/llmload.h"
#include "workloads/llmload_int.h"
#include "workloads/trace.h"

volatile sig_atomic_t load_interrupted;

static void load_on_signal(int sig)
{
    (void)sig;
    load_interrupted = 1;
}

static void load_usage(FILE *f)
{
    fprintf(f,
            "usage: llmload --url URL --trace FILE [--format FMT] [--time-scale X] [--rate-scale X]\n"
            "               [--max-requests N] [--api-key K] [--stream] [-o results.json] [OPTIONS]\n"
            "\n"
            "Replay a trace against an OpenAI-compatible server (llmserve), open loop: each request\n"
            "is sent at its arrival time, never waiting for earlier ones, with a prompt of the\n"
            "trace's length and max_tokens = its output length (ignore_eos: true forces that many).\n"
            "Records per request the lateness of the send, time to first byte, time to first token,\n"
            "time per output token, end-to-end time and status; writes a summary with llmsim's\n"
            "summary.json keys and a per-request CSV, and says when the client was the bottleneck.\n"
            "\n"
            "  --url URL            the server (http://HOST:PORT, requests go to /v1/completions)\n"
            "                       or a full endpoint URL (.../v1/completions or .../v1/chat/completions)\n"
            "  --trace FILE         the trace (Azure, BurstGPT, Mooncake or native; see llmsim trace)\n"
            "  --format FMT         the trace's format (default: detected)\n"
            "  --time-scale X       multiply arrival times (2 = half the rate; default 1)\n"
            "  --rate-scale X       thin (< 1) or replicate (> 1) requests (default 1)\n"
            "  --max-requests N     stop after N requests of the trace\n"
            "  --duration D         stop after D of (scaled) trace time (e.g. 10m)\n"
            "  --seed S             seed for --rate-scale's thinning (default 1)\n"
            "  --api-key K          sent as 'Authorization: Bearer K' (or LLMLOAD_API_KEY)\n"
            "  --model NAME         the request's model (default: the first of GET /v1/models)\n"
            "  --stream             stream the answers (SSE): measures TTFT and time per token;\n"
            "                       without it TTFT is the whole answer's time\n"
            "  --prompt-mode MODE   text (default): a word repeated to the trace's length, calibrated\n"
            "                       against the server's token counts; ids: the prompt as token ids\n"
            "  --prompt-word W      the text mode repeats (default: the first of ' the', ' a', ' x', ...\n"
            "                       that costs one token on the server)\n"
            "  --prompt-token ID    the token id ids mode repeats (default 100)\n"
            "  --timeout D          give up on a request after D (default 10m)\n"
            "  --max-concurrency N  requests in flight at most (default 10000); arrivals beyond it wait,\n"
            "                       which is counted as the client being the bottleneck\n"
            "  -o, --output FILE    the summary (default results.json; missing directories are made)\n"
            "  --csv FILE           the per-request CSV (default: the summary's name, -requests.csv)\n"
            "  -q, --quiet          no report on stdout\n"
            "  -h, --help           this help\n"
            "\n"
            "Exit status: 0 done (whatever the server answered), 1 failure, 2 bad input or usage.\n");
}

static int load_parse_double(const char *name, const char *s, double lo, double *out, struct err *e)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v) || v <= lo)
        return err_set(e, ERR_INPUT, "%s: expected a number > %g, got '%s'", name, lo, s);
    *out = v;
    return 0;
}

static int load_parse_long(const char *name, const char *s, long lo, long hi, long *out, struct err *e)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
        return err_set(e, ERR_INPUT, "%s: expected an integer in [%ld, %ld], got '%s'", name, lo, hi, s);
    *out = v;
    return 0;
}

/* Split --url into the endpoint and the base (scheme://authority). */
static int load_set_url(struct load_opts *o, struct err *e)
{
    const char *u = o->url, *auth, *slash;
    size_t n;

    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        return err_set(e, ERR_INPUT, "--url: expected http://HOST:PORT[/v1/...], got '%s'", u);
    auth = strstr(u, "://") + 3;
    if (*auth == '\0' || *auth == '/')
        return err_set(e, ERR_INPUT, "--url: no host in '%s'", u);
    slash = strchr(auth, '/');
    n = slash ? (size_t)(slash - u) : strlen(u);
    o->base = strndup(u, n);
    if (o->base == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    if (slash == NULL || strcmp(slash, "/") == 0) {
        if (asprintf(&o->endpoint, "%s/v1/completions", o->base) < 0)
            return err_set(e, ERR_SYSTEM, "out of memory");
    } else {
        size_t ul = strlen(u);
        o->endpoint = strdup(u);
        if (o->endpoint == NULL)
            return err_set(e, ERR_SYSTEM, "out of memory");
        o->chat = ul >= 17 && strcmp(u + ul - 17, "/chat/completions") == 0;
    }
    return 0;
}

/* Raise the open-file limit to the hard limit: each stream is a socket. */
static void load_raise_nofile(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)want + 64) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)want + 64 ? (rlim_t)want + 64 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* --- the program ------------------------------------------------------------------------ */

static void load_print(const json_t *sm, const struct load_opts *o, const char *csv)
{
    const json_t *rq = json_object_get(sm, "requests"), *lat = json_object_get(sm, "latency_s"),
                 *ld = json_object_get(sm, "load"), *th = json_object_get(sm, "throughput");
#define N(obj, k) json_number_value(json_object_get(obj, k))
#define I(obj, k) (long long)json_integer_value(json_object_get(obj, k))
#define Q(k, q) (1e3 * N(json_object_get(lat, k), q))
    printf("llmload: %lld requests in %.1f s: %lld completed, %lld rejected, %lld timed out, %lld failed\n",
           I(rq, "arrived"), N(ld, "duration_s"), I(rq, "completed"), I(rq, "rejected"), I(rq, "timed_out"),
           I(rq, "failed"));
    printf("  TTFT ms  p50 %.1f  p90 %.1f  p99 %.1f\n", Q("ttft", "p50"), Q("ttft", "p90"), Q("ttft", "p99"));
    printf("  TPOT ms  p50 %.2f  p90 %.2f  p99 %.2f\n", Q("tpot", "p50"), Q("tpot", "p90"), Q("tpot", "p99"));
    printf("  E2E  ms  p50 %.1f  p90 %.1f  p99 %.1f\n", Q("e2e", "p50"), Q("e2e", "p90"), Q("e2e", "p99"));
    printf("  throughput %.2f req/s, %.1f output tokens/s; send lateness p99 %.2f ms; client CPU %.0f%%\n",
           N(th, "requests_per_s"), N(th, "output_tokens_per_s"),
           1e3 * N(json_object_get(ld, "lateness_s"), "p99"), 100 * N(ld, "client_cpu_ratio"));
    printf("  results: %s, %s\n", o->out, csv);
#undef N
#undef I
#undef Q
}

static int load_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},          {"trace", required_argument, NULL, 't'},
        {"format", required_argument, NULL, 'f'},       {"time-scale", required_argument, NULL, 'T'},
        {"rate-scale", required_argument, NULL, 'R'},   {"max-requests", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'd'},     {"seed", required_argument, NULL, 'S'},
        {"api-key", required_argument, NULL, 'k'},      {"model", required_argument, NULL, 'm'},
        {"stream", no_argument, NULL, 's'},             {"prompt-mode", required_argument, NULL, 'P'},
        {"prompt-word", required_argument, NULL, 'W'},  {"prompt-token", required_argument, NULL, 'I'},
        {"timeout", required_argument, NULL, 'O'},      {"max-concurrency", required_argument, NULL, 'C'},
        {"output", required_argument, NULL, 'o'},       {"csv", required_argument, NULL, 'c'},
        {"quiet", no_argument, NULL, 'q'},              {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct load_opts o = {.max_concurrency = 10000, .timeout_s = 600, .word = " the", .prompt_token = 100,
                          .out = "results.json"};
    struct load_calib cal = {0, 1};
    struct load_run_info info = {0};
    struct load_results *res = NULL;
    struct trace_reader *tr = NULL;
    struct err e = {0};
    json_t *summary = NULL;
    long v;
    int ch, status = 0;
    bool word_given = false;

    o.topt.time_scale = 1;
    o.topt.rate_scale = 1;
    o.topt.seed = 1;
    o.api_key = getenv("LLMLOAD_API_KEY");
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u': o.url = optarg; break;
        case 't': o.trace = optarg; break;
        case 'f':
            if (strcmp(optarg, "auto") != 0 && !trace_format_known(optarg)) {
                char list[256];
                trace_format_list(list, sizeof(list));
                err_set(&e, ERR_INPUT, "--format: unknown format '%s' (known: %s)", optarg, list);
                goto fail;
            }
            o.topt.format = optarg;
            break;
        case 'T':
            if (load_parse_double("--time-scale", optarg, 0, &o.topt.time_scale, &e) < 0)
                goto fail;
            break;
        case 'R':
            if (load_parse_double("--rate-scale", optarg, 0, &o.topt.rate_scale, &e) < 0)
                goto fail;
            break;
        case 'n':
            if (load_parse_long("--max-requests", optarg, 1, 1000000000L, &v, &e) < 0)
                goto fail;
            o.topt.limit = (uint64_t)v;
            break;
        case 'd':
            if (duration_parse(optarg, &o.topt.max_duration_s, &e) < 0 || o.topt.max_duration_s <= 0) {
                err_set(&e, ERR_INPUT, "--duration: expected a positive duration such as 10m, got '%s'", optarg);
                goto fail;
            }
            break;
        case 'S':
            if (load_parse_long("--seed", optarg, 0, 2147483647L, &v, &e) < 0)
                goto fail;
            o.topt.seed = (uint64_t)v;
            break;
        case 'k': o.api_key = optarg; break;
        case 'm': o.model = optarg; break;
        case 's': o.stream = true; break;
        case 'P':
            if (strcmp(optarg, "text") != 0 && strcmp(optarg, "ids") != 0) {
                err_set(&e, ERR_INPUT, "--prompt-mode: expected text or ids, got '%s'", optarg);
                goto fail;
            }
            o.ids = strcmp(optarg, "ids") == 0;
            break;
        case 'W':
            if (*optarg == '\0') {
                err_set(&e, ERR_INPUT, "--prompt-word: must not be empty");
                goto fail;
            }
            o.word = optarg;
            word_given = true;
            break;
        case 'I':
            if (load_parse_long("--prompt-token", optarg, 0, 1000000000L, &v, &e) < 0)
                goto fail;
            o.prompt_token = (int)v;
            break;
        case 'O':
            if (duration_parse(optarg, &o.timeout_s, &e) < 0 || o.timeout_s < 0.001) {
                err_set(&e, ERR_INPUT, "--timeout: expected a positive duration such as 30s, got '%s'", optarg);
                goto fail;
            }
            break;
        case 'C':
            if (load_parse_long("--max-concurrency", optarg, 1, 1000000L, &o.max_concurrency, &e) < 0)
                goto fail;
            break;
        case 'o': o.out = optarg; break;
        case 'c': o.csv = optarg; break;
        case 'q': o.quiet = true; break;
        case 'h': load_usage(stdout); return 0;
        default:
            err_set(&e, ERR_INPUT, "unknown or incomplete option '%s' (try 'llmload --help')", argv[optind - 1]);
            goto fail;
        }
    }
    if (optind != argc || o.url == NULL || o.trace == NULL) {
        load_usage(stderr);
        return 2;
    }
    if (load_set_url(&o, &e) < 0)
        goto fail;
    if (o.csv == NULL) {
        size_t n = strlen(o.out);
        if (n > 5 && strcmp(o.out + n - 5, ".json") == 0)
            n -= 5;
        if (asprintf(&o.csv_owned, "%.*s-requests.csv", (int)n, o.out) < 0) {
            err_set(&e, ERR_SYSTEM, "out of memory");
            goto fail;
        }
        o.csv = o.csv_owned;
    }
    /* the directories of the outputs, before the replay rather than after */
    if (path_mkdirs_for(o.out, &e) < 0 || path_mkdirs_for(o.csv, &e) < 0)
        goto fail;
    {
        /* Never write the results over the trace being read. */
        struct stat st_t, st_o;
        if (stat(o.trace, &st_t) == 0 &&
            ((stat(o.csv, &st_o) == 0 && st_t.st_dev == st_o.st_dev && st_t.st_ino == st_o.st_ino) ||
             (stat(o.out, &st_o) == 0 && st_t.st_dev == st_o.st_dev && st_t.st_ino == st_o.st_ino))) {
            err_set(&e, ERR_INPUT, "%s: the trace is also an output file (-o %s, --csv %s)", o.trace, o.out, o.csv);
            goto fail;
        }
    }
    tr = trace_open_file(o.trace, &o.topt, &e);
    if (tr == NULL)
        goto fail;
    res = load_results_create(o.csv, &e);
    if (res == NULL)
        goto fail;
    if (o.model == NULL) {
        char *url;
        json_t *models;
        if (asprintf(&url, "%s/v1/models", o.base) < 0) {
            err_set(&e, ERR_SYSTEM, "out of memory");
            goto fail;
        }
        models = load_fetch_json(&o, url, NULL, &e);
        free(url);
        if (models == NULL)
            goto fail;
        o.model_owned = json_string_value(json_object_get(json_array_get(json_object_get(models, "data"), 0), "id"))
                            ? strdup(json_string_value(
                                  json_object_get(json_array_get(json_object_get(models, "data"), 0), "id")))
                            : NULL;
        json_decref(models);
        o.model = o.model_owned;
    }
    if (!o.ids && load_calibrate(&o, word_given, &cal, &e) < 0)
        goto fail;
    load_raise_nofile(o.max_concurrency);
    signal(SIGINT, load_on_signal);
    signal(SIGTERM, load_on_signal);
    info.url = o.endpoint;
    info.trace = o.trace;
    info.format = trace_format(tr);
    info.time_scale = o.topt.time_scale;
    info.rate_scale = o.topt.rate_scale;
    info.seed = o.topt.seed;
    info.stream = o.stream;
    info.prompt_mode = o.ids ? "ids" : "text";
    info.concurrency_limit = o.max_concurrency;
    if (load_replay(&o, &cal, tr, res, &info, &e) < 0)
        goto fail;
    if (load_interrupted)
        log_warn("interrupted: results cover the requests finished so far");
    summary = load_results_summary(res, &info);
    if (summary == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto fail;
    }
    if (json_dump_file(summary, o.out, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0) {
        err_sys(&e, errno, "%s", o.out);
        goto fail;
    }
    {
        char why[512];
        if (load_results_client_bound(res, &info, why, sizeof(why)))
            log_warn("the client was the bottleneck: %s; the latencies include its delay", why);
    }
    if (!o.quiet)
        load_print(summary, &o, o.csv);
    goto done;
fail:
    log_error("%s", e.msg);
    status = err_exit_status(&e);
    if (status == 0)
        status = 1;
done:
    if (load_results_free(res, status == 0 ? &e : NULL) < 0 && status == 0) {
        log_error("%s", e.msg);
        status = 1;
    }
    json_decref(summary);
    trace_close(tr);
    free(o.endpoint);
    free(o.base);
    free(o.model_owned);
    free(o.csv_owned);
    return status;
}

int main(int argc, char **argv)
{
    int status;

    log_init("llmload");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("curl_global_init failed");
        return 1;
    }
    status = load_main(argc, argv);
    curl_global_cleanup();
    return status;
}
