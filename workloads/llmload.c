/* llmload.c -- replay a trace against an OpenAI-compatible server, open loop.
 *
 * Each request of the trace is sent at its arrival time whatever happened to
 * the earlier ones (open loop), with a prompt of the trace's length and
 * max_tokens = the trace's output length with ignore_eos set, so the server
 * does the work the trace describes.  One thread drives every request through
 * libcurl's multi interface, so thousands can be in flight at once; the
 * measurements and the results files are llmload_results.c's.
 *
 * Prompts: in text mode (the default) llmload learns from the server how many
 * tokens a repeated word costs (a few max_tokens=1 requests before the replay,
 * read from usage.prompt_tokens) and sends that word repeated to the length
 * the trace asks for; in ids mode it sends the prompt as an array of token
 * ids, which the OpenAI API allows for /v1/completions. */
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
#include <time.h>

#include "common/duration.h"
#include "common/err.h"
#include "common/log.h"
#include "workloads/llmload.h"
#include "workloads/trace.h"

#define LOAD_MAX_BODY_BYTES (4u << 20) /* a non-streamed answer larger than this is an error */
#define LOAD_MAX_LINE_BYTES (1u << 20) /* one SSE line */
#define LOAD_MAX_PROMPT_TOKENS 10000000u /* per request: larger is a broken trace */

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

/* One request in flight. */
struct load_req {
    struct load_record rec;
    CURL *h;
    struct curl_slist *hdrs;
    char *buf;          /* the current SSE line, or the whole answer when not streaming */
    size_t len, cap;
    long chunks;        /* streamed chunks that carried a token */
    bool done_marker;   /* saw data: [DONE] */
    bool too_big;
    bool checked_status; /* looked at the status at the first byte of the body */
    bool error_body;     /* not 2xx: keep the body (the first 64 KiB) for the error */
    char *error;        /* owned copy of an error message */
    struct load_req *prev, *next; /* the requests in flight */
};

static volatile sig_atomic_t load_interrupted;

static void load_on_signal(int sig)
{
    (void)sig;
    load_interrupted = 1;
}

static double load_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double load_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
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
            "  -o, --output FILE    the summary (default results.json)\n"
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

/* --- blocking requests before the replay (model name, calibration) --------------- */

struct load_membuf {
    char *p;
    size_t len;
};

static size_t load_membuf_write(char *data, size_t size, size_t n, void *ctx)
{
    struct load_membuf *b = ctx;
    size_t add = size * n;
    char *p;

    if (b->len + add > LOAD_MAX_BODY_BYTES)
        return 0;
    p = realloc(b->p, b->len + add + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* GET or POST (BODY non-NULL) URL; returns the parsed JSON answer of a 2xx,
 * or NULL with E saying what went wrong. */
static json_t *load_fetch_json(const struct load_opts *o, const char *url, const char *body, struct err *e)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    struct load_membuf b = {0};
    char auth[1024];
    long status = 0;
    CURLcode cc;
    json_t *j = NULL;
    json_error_t je;

    if (h == NULL) {
        err_set(e, ERR_SYSTEM, "curl_easy_init failed");
        return NULL;
    }
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (o->api_key != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->api_key);
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(o->timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, load_membuf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK)
        err_set(e, ERR_SYSTEM, "%s: %s", url, curl_easy_strerror(cc));
    else if (status < 200 || status > 299)
        err_set(e, ERR_SYSTEM, "%s: HTTP %ld: %.300s", url, status, b.p ? b.p : "");
    else if ((j = json_loadb(b.p ? b.p : "", b.len, JSON_ALLOW_NUL, &je)) == NULL)
        err_set(e, ERR_SYSTEM, "%s: the answer is not JSON: %s", url, je.text);
    free(b.p);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return j;
}

/* The text of K repeated words (caller frees). */
static char *load_words(const char *word, long k)
{
    size_t wl = strlen(word), i;
    char *s = malloc(wl * (size_t)k + 1);

    if (s == NULL)
        return NULL;
    for (i = 0; i < (size_t)k; i++)
        memcpy(s + i * wl, word, wl);
    s[wl * (size_t)k] = '\0';
    return s;
}

/* The JSON body of one request: PROMPT_TOKENS of prompt, OUTPUT_TOKENS to
 * generate.  NULL when out of memory. */
static char *load_body(const struct load_opts *o, const struct load_calib *cal, uint32_t prompt_tokens,
                       uint32_t output_tokens, bool stream)
{
    json_t *req = json_object(), *prompt;
    char *body = NULL;

    if (req == NULL)
        return NULL;
    if (o->ids) {
        uint32_t i;
        prompt = json_array();
        for (i = 0; prompt != NULL && i < prompt_tokens; i++)
            json_array_append_new(prompt, json_integer(o->prompt_token));
    } else {
        long k = cal->per > 0 ? ((long)prompt_tokens - cal->base) / cal->per : 0;
        char *text = load_words(o->word, k < 1 ? 1 : k);
        prompt = text ? json_string(text) : NULL;
        free(text);
    }
    if (prompt == NULL)
        goto done;
    if (o->chat)
        json_object_set_new(req, "messages", json_pack("[{s:s,s:o}]", "role", "user", "content", prompt));
    else
        json_object_set_new(req, "prompt", prompt);
    if (o->model != NULL)
        json_object_set_new(req, "model", json_string(o->model));
    json_object_set_new(req, "max_tokens", json_integer(output_tokens > 0 ? output_tokens : 1));
    json_object_set_new(req, "ignore_eos", json_true());
    /* Sampled, not greedy: a response cache must not answer a load test. */
    json_object_set_new(req, "temperature", json_real(1.0));
    if (stream) {
        json_object_set_new(req, "stream", json_true());
        json_object_set_new(req, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    body = json_dumps(req, JSON_COMPACT);
done:
    json_decref(req);
    return body;
}

/* usage.prompt_tokens of a non-streamed answer, or -1. */
static long load_usage_tokens(json_t *answer, const char *key)
{
    json_t *v = json_object_get(json_object_get(answer, "usage"), key);
    return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

/* The cost in tokens of WORD repeated 1, 9 and 33 times (text mode): 0 and
 * CAL filled when it is a fixed number per repetition, 1 when not, -1 when
 * the server could not be asked. */
static int load_calibrate_word(struct load_opts *o, const char *word, struct load_calib *cal, long got[3],
                               struct err *e)
{
    static const long ks[] = {1, 9, 33};
    size_t i;

    o->word = word;
    for (i = 0; i < 3; i++) {
        struct load_calib probe = {.base = 0, .per = 1};
        char *body = load_body(o, &probe, (uint32_t)ks[i], 1, false);
        json_t *ans;
        if (body == NULL)
            return err_set(e, ERR_SYSTEM, "out of memory");
        ans = load_fetch_json(o, o->endpoint, body, e);
        free(body);
        if (ans == NULL)
            return err_prefix(e, "calibrating prompt lengths");
        got[i] = load_usage_tokens(ans, "prompt_tokens");
        json_decref(ans);
        if (got[i] < 0)
            return err_set(e, ERR_SYSTEM, "calibrating prompt lengths: %s answered without usage.prompt_tokens "
                                          "(try --prompt-mode ids)", o->endpoint);
    }
    cal->per = (got[1] - got[0]) / (ks[1] - ks[0]);
    cal->base = got[0] - cal->per * ks[0];
    if (cal->per < 1 || got[1] - got[0] != cal->per * (ks[1] - ks[0]) || got[2] != cal->base + cal->per * ks[2])
        return 1;
    return 0;
}

/* Learn from the server what text makes a prompt of a given length (text
 * mode): the --prompt-word, or the first of a few candidates that costs one
 * token a repetition (else the first that costs a fixed number, and prompt
 * lengths are rounded down to its multiples). */
static int load_calibrate(struct load_opts *o, bool word_given, struct load_calib *cal, struct err *e)
{
    static const char *const candidates[] = {" the", " a", " x", "x", "a", " and", NULL};
    const char *const given[] = {o->word, NULL};
    const char *const *w = word_given ? given : candidates;
    const char *fallback = NULL;
    struct load_calib fb = {0, 0};
    long got[3];
    int rc;

    for (; *w != NULL; w++) {
        rc = load_calibrate_word(o, *w, cal, got, e);
        if (rc < 0)
            return -1;
        if (rc == 0 && cal->per == 1)
            goto found;
        if (rc == 0 && fallback == NULL) {
            fallback = *w;
            fb = *cal;
        }
        if (rc > 0 && word_given)
            return err_set(e, ERR_INPUT,
                           "--prompt-word: '%s' repeated 1, 9, 33 times costs %ld, %ld, %ld tokens, not a fixed "
                           "number per repetition (choose another, or --prompt-mode ids)", *w, got[0], got[1], got[2]);
    }
    if (fallback == NULL)
        return err_set(e, ERR_SYSTEM, "calibrating prompt lengths: no candidate word costs a fixed number of "
                                      "tokens on this server (give --prompt-word, or --prompt-mode ids)");
    o->word = fallback;
    *cal = fb;
    log_warn("no word costs one token here; '%s' costs %ld, so prompt lengths are rounded down to its multiples",
             o->word, cal->per);
    return 0;
found:
    log_info("prompt: '%s' costs %ld token(s), plus %ld for the template", o->word, cal->per, cal->base);
    return 0;
}

/* --- the replay ---------------------------------------------------------------------- */

static void load_req_free(struct load_req *r)
{
    if (r == NULL)
        return;
    if (r->h != NULL)
        curl_easy_cleanup(r->h);
    curl_slist_free_all(r->hdrs);
    free(r->buf);
    free(r->error);
    free(r);
}

static void load_req_error(struct load_req *r, const char *fmt, const char *arg)
{
    char msg[512];
    if (r->error != NULL)
        return;
    snprintf(msg, sizeof(msg), fmt, arg);
    r->error = strdup(msg);
}

/* One complete SSE line (without its newline). */
static void load_sse_line(struct load_req *r, char *line, size_t len)
{
    json_t *ev, *choices, *usage;
    json_error_t je;

    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (len < 5 || strncmp(line, "data:", 5) != 0)
        return; /* comments, event names, blank separators */
    line += 5;
    len -= 5;
    while (len > 0 && *line == ' ') {
        line++;
        len--;
    }
    if (len == 6 && memcmp(line, "[DONE]", 6) == 0) {
        r->done_marker = true;
        return;
    }
    ev = json_loadb(line, len, JSON_ALLOW_NUL, &je); /* generated text may hold U+0000 */
    if (ev == NULL) {
        load_req_error(r, "a streamed chunk is not JSON: %s", je.text);
        return;
    }
    if (json_object_get(ev, "error") != NULL)
        load_req_error(r, "error in the stream: %.300s", json_string_value(json_object_get(
                                                              json_object_get(ev, "error"), "message")));
    choices = json_object_get(ev, "choices");
    if (json_array_size(choices) > 0) {
        json_t *c = json_array_get(choices, 0), *delta = json_object_get(c, "delta");
        /* A token: completions chunks carry "text"; chat chunks a delta with
         * "content" (the first chat delta, with only the role, is not one). */
        bool token = (json_object_get(c, "text") != NULL || json_object_get(delta, "content") != NULL) &&
                     !json_is_string(json_object_get(c, "finish_reason"));
        const char *text = json_string_value(json_object_get(c, "text"));
        if (!text)
            text = json_string_value(json_object_get(delta, "content"));
        if (token || (text && *text)) {
            r->chunks++;
            if (r->rec.first_token_s < 0)
                r->rec.first_token_s = load_now();
        }
    }
    usage = json_object_get(ev, "usage");
    if (json_is_object(usage)) {
        long p = load_usage_tokens(ev, "prompt_tokens"), c = load_usage_tokens(ev, "completion_tokens");
        if (p >= 0)
            r->rec.server_prompt_tokens = p;
        if (c >= 0)
            r->rec.server_output_tokens = c;
    }
    json_decref(ev);
}

static size_t load_write(char *data, size_t size, size_t n, void *ctx)
{
    struct load_req *r = ctx;
    size_t add = size * n, i;
    bool stream = r->rec.first_token_s != -2; /* -2 marks a non-streamed request */

    if (!r->checked_status) {
        long status = 0;
        r->checked_status = true;
        curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
        r->error_body = status < 200 || status > 299;
    }
    if (r->error_body) {
        /* An error answer: keep its start for the message, not parsed as SSE. */
        stream = false;
        if (r->len + add > 65536)
            add = r->len < 65536 ? 65536 - r->len : 0;
    } else if (!stream && r->len + add > LOAD_MAX_BODY_BYTES) {
        r->too_big = true;
        return 0;
    }
    for (i = 0; i < add; i++) {
        if (stream && data[i] == '\n') {
            if (r->buf != NULL) {
                r->buf[r->len] = '\0';
                load_sse_line(r, r->buf, r->len);
            }
            r->len = 0;
            continue;
        }
        if (r->len + 2 > r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 512;
            char *p;
            if (cap > LOAD_MAX_BODY_BYTES + 2 || (stream && cap > LOAD_MAX_LINE_BYTES)) {
                r->too_big = true;
                return 0;
            }
            p = realloc(r->buf, cap);
            if (p == NULL)
                return 0;
            r->buf = p;
            r->cap = cap;
        }
        r->buf[r->len++] = data[i];
    }
    return size * n;
}

/* Start request REQ of the trace now. */
static struct load_req *load_start(CURLM *m, const struct load_opts *o, const struct load_calib *cal,
                                   const struct trace_request *tr, uint64_t id, double t0, struct err *e)
{
    struct load_req *r = calloc(1, sizeof(*r));
    char *body = NULL, auth[1024];

    if (r == NULL)
        goto oom;
    if (tr->prompt_tokens > LOAD_MAX_PROMPT_TOKENS || tr->output_tokens > LOAD_MAX_PROMPT_TOKENS) {
        err_set(e, ERR_INPUT, "request %llu of the trace: %u prompt and %u output tokens, beyond llmload's %u",
                (unsigned long long)id, tr->prompt_tokens, tr->output_tokens, LOAD_MAX_PROMPT_TOKENS);
        free(r);
        return NULL;
    }
    r->rec.id = id;
    r->rec.sched_s = tr->arrival_s;
    r->rec.first_byte_s = -1;
    r->rec.first_token_s = o->stream ? -1 : -2;
    r->rec.done_s = -1;
    r->rec.prompt_tokens = tr->prompt_tokens;
    r->rec.output_tokens = tr->output_tokens;
    r->rec.server_prompt_tokens = -1;
    r->rec.server_output_tokens = -1;
    r->rec.outcome = LOAD_COMPLETED; /* until the answer says otherwise */
    body = load_body(o, cal, tr->prompt_tokens, tr->output_tokens, o->stream);
    r->h = curl_easy_init();
    r->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (body == NULL || r->h == NULL || r->hdrs == NULL)
        goto oom;
    if (o->stream)
        r->hdrs = curl_slist_append(r->hdrs, "Accept: text/event-stream");
    if (o->api_key != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->api_key);
        r->hdrs = curl_slist_append(r->hdrs, auth);
    }
    curl_easy_setopt(r->h, CURLOPT_URL, o->endpoint);
    curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(r->h, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, (long)(o->timeout_s * 1000));
    curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, load_write);
    curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
    free(body);
    body = NULL;
    r->rec.send_s = load_now() - t0;
    if (curl_multi_add_handle(m, r->h) != CURLM_OK) {
        err_set(e, ERR_SYSTEM, "curl_multi_add_handle failed");
        load_req_free(r);
        return NULL;
    }
    return r;
oom:
    free(body);
    load_req_free(r);
    err_set(e, ERR_SYSTEM, "out of memory");
    return NULL;
}

/* A transfer ended: classify it and record it. */
static void load_finish(struct load_req *r, CURLcode cc, double t0, struct load_results *res)
{
    curl_off_t fb_us = -1;
    double done = load_now();

    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->rec.status);
    if (curl_easy_getinfo(r->h, CURLINFO_STARTTRANSFER_TIME_T, &fb_us) == CURLE_OK && fb_us > 0)
        r->rec.first_byte_s = r->rec.send_s + fb_us * 1e-6;
    r->rec.done_s = done - t0;
    if (r->rec.first_token_s >= 0)
        r->rec.first_token_s -= t0;
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        r->rec.outcome = LOAD_TIMED_OUT;
        load_req_error(r, "%s", curl_easy_strerror(cc));
    } else if (r->too_big) {
        r->rec.outcome = LOAD_FAILED;
        load_req_error(r, "%s", "the answer is too large");
    } else if (cc != CURLE_OK) {
        r->rec.outcome = LOAD_FAILED;
        load_req_error(r, "%s", curl_easy_strerror(cc));
    } else if (r->rec.status == 429 || r->rec.status == 503) {
        r->rec.outcome = LOAD_REJECTED;
    } else if (r->rec.status < 200 || r->rec.status > 299) {
        r->rec.outcome = LOAD_FAILED;
        if (r->buf != NULL) {
            r->buf[r->len] = '\0';
            load_req_error(r, "%.300s", r->buf);
        }
    } else if (r->rec.first_token_s == -2) {
        /* Not streamed: the whole answer at once. */
        json_error_t je;
        json_t *ans = json_loadb(r->buf ? r->buf : "", r->len, JSON_ALLOW_NUL, &je);
        if (ans == NULL) {
            r->rec.outcome = LOAD_FAILED;
            load_req_error(r, "the answer is not JSON: %s", je.text);
        } else {
            r->rec.server_prompt_tokens = load_usage_tokens(ans, "prompt_tokens");
            r->rec.server_output_tokens = load_usage_tokens(ans, "completion_tokens");
            json_decref(ans);
        }
        r->rec.first_token_s = r->rec.done_s;
    } else {
        if (r->len > 0 && r->buf != NULL) { /* a last line without its newline */
            r->buf[r->len] = '\0';
            load_sse_line(r, r->buf, r->len);
        }
        if (r->error != NULL || !r->done_marker || r->rec.first_token_s < 0) {
            r->rec.outcome = LOAD_FAILED;
            load_req_error(r, "%s", r->rec.first_token_s < 0 ? "the stream carried no token"
                                                             : "the stream ended without [DONE]");
        }
        if (r->rec.server_output_tokens < 0)
            r->rec.server_output_tokens = r->chunks;
    }
    r->rec.error = r->error;
    load_results_add(res, &r->rec);
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

static int load_replay(const struct load_opts *o, const struct load_calib *cal, struct trace_reader *tr,
                       struct load_results *res, struct load_run_info *info, struct err *e)
{
    CURLM *m = curl_multi_init();
    struct load_req *flying = NULL; /* the requests in flight */
    struct trace_request next;
    bool have_next;
    uint64_t id = 0;
    long in_flight = 0;
    double t0, first_s = -1, last_done_s = 0, cpu0 = load_cpu_s(), wall0;
    int rc = 0, got;

    if (m == NULL)
        return err_set(e, ERR_SYSTEM, "curl_multi_init failed");
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, o->max_concurrency);
    got = trace_next(tr, &next, e);
    if (got < 0) {
        curl_multi_cleanup(m);
        return -1;
    }
    have_next = got == 1;
    wall0 = load_now();
    /* Start the clock so the first request leaves at its own arrival time. */
    t0 = wall0 - (have_next ? next.arrival_s : 0);
    while ((have_next || in_flight > 0) && !load_interrupted) {
        double now = load_now() - t0;
        int running, msgs, timeout_ms;
        CURLMsg *msg;

        while (have_next && next.arrival_s <= now && !load_interrupted) {
            struct load_req *r;
            if (in_flight >= o->max_concurrency) {
                info->held++;
                break;
            }
            r = load_start(m, o, cal, &next, id++, t0, e);
            if (r == NULL) {
                rc = -1;
                goto out;
            }
            r->next = flying;
            if (flying != NULL)
                flying->prev = r;
            flying = r;
            if (first_s < 0)
                first_s = next.arrival_s;
            if (++in_flight > info->max_in_flight)
                info->max_in_flight = in_flight;
            got = trace_next(tr, &next, e);
            if (got < 0) {
                rc = -1;
                goto out;
            }
            have_next = got == 1;
        }
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &msgs)) != NULL) {
            struct load_req *r = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            curl_multi_remove_handle(m, msg->easy_handle);
            if (r->prev != NULL)
                r->prev->next = r->next;
            else
                flying = r->next;
            if (r->next != NULL)
                r->next->prev = r->prev;
            load_finish(r, msg->data.result, t0, res);
            if (r->rec.done_s > last_done_s)
                last_done_s = r->rec.done_s;
            load_req_free(r);
            in_flight--;
        }
        /* Sleep until the next arrival or socket activity. */
        timeout_ms = 100;
        if (have_next && in_flight < o->max_concurrency) {
            double wait = next.arrival_s - (load_now() - t0);
            timeout_ms = wait <= 0 ? 0 : wait < 0.1 ? (int)(wait * 1000) : 100;
        }
        if (timeout_ms > 0)
            curl_multi_poll(m, NULL, 0, timeout_ms, NULL);
    }
out:
    if (in_flight > 0) {
        /* Interrupted (or an error): what is still outstanding is abandoned. */
        while (flying != NULL) {
            struct load_req *r = flying;
            flying = r->next;
            curl_multi_remove_handle(m, r->h);
            load_req_free(r);
        }
        load_results_unfinished(res, (uint64_t)in_flight);
    }
    curl_multi_cleanup(m);
    info->duration_s = first_s >= 0 ? last_done_s - first_s : 0;
    info->wall_s = load_now() - wall0;
    info->cpu_s = load_cpu_s() - cpu0;
    return rc;
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
