/* http.c -- see http.h. */
#include "config.h"

#include "server/http.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include "common/hist.h"
#include "common/log.h"
#include "server/auth.h"
#include "server/engine.h"
#include "server/metrics.h"
#include "server/model.h"
#include "server/rcache.h"

extern const char report_tpl_chat_page_html[]; /* server/chat_page.html, embedded */

const char *const http_endpoint_names[EP_COUNT] = {
    "/v1/chat/completions", "/v1/completions", "/v1/models", "/tokenize", "/detokenize",
    "/healthz",             "/readyz",         "/metrics",   "/",         "other",
};

double server_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void server_opts_default(struct server_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = 8080;
    o->http_threads = 4;
    o->max_body_bytes = 1 << 20;
    o->max_connections = 1024;
    o->request_timeout_s = 300;
    o->idle_timeout_s = 30;
    o->body_timeout_s = 30;
    o->drain_timeout_s = 30;
    o->log_requests = 1;
    o->chat_template = CHAT_TEMPLATE_AUTO;
    api_limits_default(&o->limits);
}

/* ==== metrics ============================================================ */

static int metrics_declare(struct server *srv)
{
    struct server_metrics *m = &srv->m;
    static const char *const ep_status[] = {"endpoint", "status", NULL};
    static const char *const reason[] = {"reason", NULL};
    static const char *const build[] = {"version", "model", NULL};
    const double *lb = metrics_latency_bounds_s;
    const int nlb = metrics_n_latency_bounds;

    m->reg = metrics_create();
    if (m->reg == NULL)
        return -1;
#define FAM(field, name, help, type, labels, b, nb) \
    if ((m->field = metrics_family(m->reg, name, help, type, labels, b, nb)) == NULL) return -1
    FAM(requests_waiting, "llmserve_requests_waiting", "Requests queued in the engine, not yet running.",
        METRIC_GAUGE, NULL, NULL, 0);
    FAM(requests_running, "llmserve_requests_running", "Sequences in the running batch.", METRIC_GAUGE, NULL,
        NULL, 0);
    FAM(kv_usage, "llmserve_kv_cache_usage_ratio", "Fraction of KV-cache blocks in use (0..1).", METRIC_GAUGE,
        NULL, NULL, 0);
    FAM(gpu_util, "llmserve_gpu_utilization_ratio",
        "Fraction of the last 10 s the engine spent computing (0..1).", METRIC_GAUGE, NULL, NULL, 0);
    FAM(ttft_p90, "llmserve_ttft_p90_seconds", "90th percentile time to first token over the last 60 s.",
        METRIC_GAUGE, NULL, NULL, 0);
    FAM(requests_total, "llmserve_requests_total", "HTTP requests by endpoint and status.", METRIC_COUNTER,
        ep_status, NULL, 0);
    FAM(ttft, "llmserve_time_to_first_token_seconds", "Time from submission to the first generated token.",
        METRIC_HISTOGRAM, NULL, lb, nlb);
    FAM(tpot, "llmserve_time_per_output_token_seconds", "Mean time per output token after the first.",
        METRIC_HISTOGRAM, NULL, lb, nlb);
    FAM(duration, "llmserve_request_duration_seconds", "End-to-end time of generation requests.",
        METRIC_HISTOGRAM, NULL, lb, nlb);
    FAM(queue_time, "llmserve_queue_time_seconds", "Time from submission to first scheduled.", METRIC_HISTOGRAM,
        NULL, lb, nlb);
    FAM(prompt_tokens, "llmserve_prompt_tokens_total", "Prompt tokens processed.", METRIC_COUNTER, NULL, NULL, 0);
    FAM(generation_tokens, "llmserve_generation_tokens_total", "Tokens generated.", METRIC_COUNTER, NULL, NULL,
        0);
    FAM(batch_size, "llmserve_batch_size", "Sequences per engine step (sampled each 50 ms).", METRIC_HISTOGRAM,
        NULL, metrics_batch_bounds, metrics_n_batch_bounds);
    FAM(cache_hits, "llmserve_cache_hits_total", "Response cache hits.", METRIC_COUNTER, NULL, NULL, 0);
    FAM(cache_misses, "llmserve_cache_misses_total", "Response cache misses.", METRIC_COUNTER, NULL, NULL, 0);
    FAM(cache_errors, "llmserve_cache_errors_total", "Response cache backend errors (served from the model).",
        METRIC_COUNTER, NULL, NULL, 0);
    FAM(rate_limited, "llmserve_rate_limited_total", "Requests refused by a per-key rate limit.", METRIC_COUNTER,
        NULL, NULL, 0);
    FAM(rejected, "llmserve_rejected_total", "Requests refused by admission, by reason.", METRIC_COUNTER, reason,
        NULL, 0);
    FAM(ready, "llmserve_ready",
        "1 when the model is loaded, the server is not draining and the engine is not broken.", METRIC_GAUGE, NULL,
        NULL, 0);
    FAM(draining, "llmserve_draining", "1 while draining after SIGTERM.", METRIC_GAUGE, NULL, NULL, 0);
    FAM(engine_broken, "llmserve_engine_broken",
        "1 once the engine's forward pass failed several steps in a row (a device error); the process must restart.",
        METRIC_GAUGE, NULL, NULL, 0);
    if (srv->cache != NULL && rcache_redis(srv->cache) != NULL)
        FAM(redis_up, "llmserve_redis_up", "1 when the last Redis command succeeded.", METRIC_GAUGE, NULL, NULL, 0);
    FAM(build_info, "llmserve_build_info", "Build and model, always 1.", METRIC_GAUGE, build, NULL, 0);
#undef FAM
    const char *bi[] = {PACKAGE_VERSION, srv->model_id != NULL ? srv->model_id : "", NULL};
    metric_set(m->build_info, bi, 1);
    /* zero series so rates work from the first scrape */
    metric_inc(m->cache_hits, NULL, 0);
    metric_inc(m->cache_misses, NULL, 0);
    metric_inc(m->cache_errors, NULL, 0);
    metric_inc(m->rate_limited, NULL, 0);
    metric_inc(m->prompt_tokens, NULL, 0);
    metric_inc(m->generation_tokens, NULL, 0);
    static const char *const reasons[] = {"queue_full", "draining", "too_large", "not_ready", "slow_body",
                                          "engine_broken", NULL};
    for (int i = 0; reasons[i] != NULL; i++) {
        const char *v[] = {reasons[i]};
        metric_inc(m->rejected, v, 0);
    }
    return 0;
}

void server_note_ttft(struct server *srv, double ttft_s)
{
    long epoch = (long)(server_now_s() / 10.0);
    int i = (int)(epoch % 6);

    pthread_mutex_lock(&srv->ttft_lock);
    if (srv->ttft_win_epoch[i] != epoch) {
        hist_reset(srv->ttft_win[i]);
        srv->ttft_win_epoch[i] = epoch;
    }
    hist_add(srv->ttft_win[i], ttft_s);
    pthread_mutex_unlock(&srv->ttft_lock);
}

static double ttft_p90(struct server *srv)
{
    long epoch = (long)(server_now_s() / 10.0);
    struct hist *all = hist_create();
    double q;
    int i;

    if (all == NULL)
        return 0;
    pthread_mutex_lock(&srv->ttft_lock);
    for (i = 0; i < 6; i++)
        if (epoch - srv->ttft_win_epoch[i] < 6)
            hist_merge(all, srv->ttft_win[i]);
    pthread_mutex_unlock(&srv->ttft_lock);
    q = hist_quantile(all, 0.9);
    hist_free(all);
    return q;
}

/* Busy time samples, one a second, for the utilisation over the last 10 s. */
struct busy_ring {
    double t[11], busy[11];
    int n, head;
};
static struct busy_ring busy_ring;
static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;

static void busy_sample(double t, double busy)
{
    pthread_mutex_lock(&busy_lock);
    busy_ring.head = (busy_ring.head + 1) % 11;
    busy_ring.t[busy_ring.head] = t;
    busy_ring.busy[busy_ring.head] = busy;
    if (busy_ring.n < 11)
        busy_ring.n++;
    pthread_mutex_unlock(&busy_lock);
}

static double busy_ratio(void)
{
    double r = 0;
    int oldest;

    pthread_mutex_lock(&busy_lock);
    if (busy_ring.n >= 2) {
        oldest = (busy_ring.head + 11 - (busy_ring.n - 1)) % 11;
        double dt = busy_ring.t[busy_ring.head] - busy_ring.t[oldest];
        if (dt > 0)
            r = (busy_ring.busy[busy_ring.head] - busy_ring.busy[oldest]) / dt;
    }
    pthread_mutex_unlock(&busy_lock);
    return r < 0 ? 0 : r > 1 ? 1 : r;
}

int server_metrics_expose(struct server *srv, char **out, size_t *len)
{
    struct server_metrics *m = &srv->m;
    struct engine_stats st;
    int ready = atomic_load(&srv->ready) && !atomic_load(&srv->draining);

    memset(&st, 0, sizeof(st));
    pthread_rwlock_rdlock(&srv->eng_lock);
    if (srv->eng != NULL)
        engine_get_stats(srv->eng, &st);
    pthread_rwlock_unlock(&srv->eng_lock);
    ready = ready && !st.broken;
    metric_set(m->requests_waiting, NULL, st.waiting);
    metric_set(m->requests_running, NULL, st.running);
    metric_set(m->kv_usage, NULL, st.kv_usage);
    metric_set(m->gpu_util, NULL, busy_ratio());
    metric_set(m->ttft_p90, NULL, ttft_p90(srv));
    metric_set(m->ready, NULL, ready);
    metric_set(m->draining, NULL, atomic_load(&srv->draining));
    metric_set(m->engine_broken, NULL, st.broken);
    if (m->redis_up != NULL)
        metric_set(m->redis_up, NULL, redis_link_up(rcache_redis(srv->cache)));
    return metrics_expose(m->reg, out, len);
}

/* ==== responses ================================================================ */

int http_respond(struct http_req *r, int status, const char *ctype, const char *body, size_t len,
                 double retry_after_s)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    char ra[32];
    int ret;

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (retry_after_s > 0) {
        snprintf(ra, sizeof(ra), "%.0f", ceil(retry_after_s));
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    r->status = status;
    ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

int http_respond_error(struct http_req *r, const struct api_error *ae, double retry_after_s)
{
    char *body = api_format_error(ae);
    int ret;

    if (body == NULL)
        return MHD_NO;
    ret = http_respond(r, ae->status, "application/json", body, strlen(body), retry_after_s);
    free(body);
    return ret;
}

static const char *reason_of(int status)
{
    switch (status) {
    case 404: return "not_found_error";
    case 405: return "invalid_request_error";
    case 413: return "invalid_request_error";
    case 503: return "service_unavailable";
    default: return "invalid_request_error";
    }
}

static int respond_simple_error(struct http_req *r, int status, const char *code, const char *fmt, const char *arg)
{
    struct api_error ae;

    api_error_set(&ae, status, reason_of(status), code, NULL, fmt, arg);
    return http_respond_error(r, &ae, status == 503 ? 5 : 0);
}

/* ==== routing ===================================================================== */

static enum http_endpoint route(const char *url)
{
    static const struct {
        const char *path;
        enum http_endpoint ep;
    } routes[] = {
        {"/v1/chat/completions", EP_CHAT}, {"/v1/completions", EP_COMPLETIONS}, {"/v1/models", EP_MODELS},
        {"/tokenize", EP_TOKENIZE},        {"/detokenize", EP_DETOKENIZE},     {"/healthz", EP_HEALTHZ},
        {"/readyz", EP_READYZ},            {"/metrics", EP_METRICS},           {"/", EP_PAGE},
        {"/index.html", EP_PAGE},
    };
    size_t i;

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(url, routes[i].path) == 0)
            return routes[i].ep;
    if (strncmp(url, "/v1/models/", 11) == 0)
        return EP_MODELS; /* one model by its id */
    return EP_OTHER;
}

static int is_api(enum http_endpoint ep)
{
    return ep == EP_CHAT || ep == EP_COMPLETIONS || ep == EP_MODELS || ep == EP_TOKENIZE || ep == EP_DETOKENIZE;
}

static int wants_post(enum http_endpoint ep)
{
    return ep == EP_CHAT || ep == EP_COMPLETIONS || ep == EP_TOKENIZE || ep == EP_DETOKENIZE;
}

/* 1 when the engine is broken (engine_broken), with "engine broken: WHY"
 * and a newline in MSG (N bytes); else 0. */
static int engine_broken_msg(struct server *srv, char *msg, size_t n)
{
    char why[ERR_MSG_MAX + 128];
    int broken;

    pthread_rwlock_rdlock(&srv->eng_lock);
    broken = srv->eng != NULL && engine_broken(srv->eng, why, sizeof(why));
    pthread_rwlock_unlock(&srv->eng_lock);
    if (broken)
        snprintf(msg, n, "engine broken: %s\n", why);
    return broken;
}

/* Health, readiness, metrics and the page: answered at once, no body.
 * A broken engine fails both probes: liveness restarts the pod, which is
 * the only cure for a device error that sticks. */
static int answer_open(struct http_req *r)
{
    struct server *srv = r->srv;
    char *text, broken[ERR_MSG_MAX + 160];
    size_t len;
    int ret;

    switch (r->ep) {
    case EP_HEALTHZ:
        if (engine_broken_msg(srv, broken, sizeof(broken)))
            return http_respond(r, 503, "text/plain", broken, strlen(broken), 0);
        return http_respond(r, 200, "text/plain", "ok\n", 3, 0);
    case EP_READYZ:
        if (engine_broken_msg(srv, broken, sizeof(broken)))
            return http_respond(r, 503, "text/plain", broken, strlen(broken), 0);
        if (atomic_load(&srv->draining))
            return http_respond(r, 503, "text/plain", "draining\n", 9, 0);
        if (!atomic_load(&srv->ready))
            return http_respond(r, 503, "text/plain", "loading\n", 8, 0);
        return http_respond(r, 200, "text/plain", "ready\n", 6, 0);
    case EP_METRICS:
        if (server_metrics_expose(srv, &text, &len) != 0)
            return respond_simple_error(r, 500, NULL, "metrics: %s", "out of memory");
        ret = http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, 0);
        free(text);
        return ret;
    case EP_PAGE:
        return http_respond(r, 200, "text/html; charset=utf-8", report_tpl_chat_page_html,
                            strlen(report_tpl_chat_page_html), 0);
    default:
        return respond_simple_error(r, 404, "not_found", "%s: no such endpoint", r->path);
    }
}

/* The first call for a request: route, check method, drain, auth, size.
 * Returns an MHD result, with *DONE set when a response was queued. */
static int first_call(struct http_req *r, const char *method, int *done)
{
    struct server *srv = r->srv;
    const char *cl, *authz;

    *done = 1;
    if (!is_api(r->ep)) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return r->ep == EP_OTHER ? answer_open(r)
                                     : respond_simple_error(r, 405, "method_not_allowed",
                                                            "%s: method not allowed", r->path);
        return answer_open(r);
    }
    if (wants_post(r->ep) ? strcmp(method, "POST") != 0 : strcmp(method, "GET") != 0)
        return respond_simple_error(r, 405, "method_not_allowed", "%s: method not allowed", r->path);
    /* from here on the request counts as in flight until it completes */
    atomic_fetch_add(&srv->inflight, 1);
    r->counted = 1;
    if (atomic_load(&srv->draining) || !atomic_load(&srv->ready)) {
        const char *v[] = {atomic_load(&srv->draining) ? "draining" : "not_ready"};
        metric_inc(srv->m.rejected, v, 1);
        return respond_simple_error(r, 503, v[0], "server is %s; retry later",
                                    atomic_load(&srv->draining) ? "draining" : "loading the model");
    }
    if (srv->auth != NULL) {
        const char *name;
        authz = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
        name = auth_check(srv->auth, authz);
        if (name == NULL)
            return respond_simple_error(r, 401, "invalid_api_key", "%s",
                                        authz == NULL ? "missing API key (Authorization: Bearer KEY)"
                                                      : "invalid API key");
        snprintf(r->key_name, sizeof(r->key_name), "%s", name);
    } else {
        snprintf(r->key_name, sizeof(r->key_name), "anonymous");
    }
    cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl != NULL && strtoull(cl, NULL, 10) > srv->opts.max_body_bytes) {
        const char *v[] = {"too_large"};
        char msg[64];
        metric_inc(srv->m.rejected, v, 1);
        snprintf(msg, sizeof(msg), "%zu", srv->opts.max_body_bytes);
        return respond_simple_error(r, 413, "request_too_large", "request body: larger than %s bytes", msg);
    }
    *done = 0;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct server *srv = cls;
    struct http_req *r = *con_cls;
    int done;
    (void)version;

    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        r->srv = srv;
        r->conn = conn;
        r->method = method;
        r->t_start = server_now_s();
        snprintf(r->path, sizeof(r->path), "%s", url);
        r->ep = route(url);
        *con_cls = r;
        int ret = first_call(r, method, &done);
        return done ? (enum MHD_Result)ret : MHD_YES;
    }
    if (r->status != 0 && r->gen == NULL) {
        *upload_data_size = 0; /* answered already: the rest of the body is dropped */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (server_now_s() - r->t_start > srv->opts.body_timeout_s) {
            /* a body dribbled in to hold the connection: close it (no
             * answer can be queued in the middle of an upload) */
            const char *v[] = {"slow_body"};
            metric_inc(srv->m.rejected, v, 1);
            r->status = 408;
            return MHD_NO;
        }
        if (r->too_large || r->body_len + n > srv->opts.max_body_bytes) {
            /* chunked bodies have no length up front: drop the rest, answer at the end */
            r->too_large = 1;
            free(r->body);
            r->body = NULL;
            r->body_len = r->body_cap = 0;
            return MHD_YES;
        }
        if (r->body_len + n + 1 > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 4096;
            while (cap < r->body_len + n + 1)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (b == NULL)
                return MHD_NO;
            r->body = b;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, upload_data, n);
        r->body_len += n;
        r->body[r->body_len] = '\0';
        return MHD_YES;
    }
    if (r->too_large) {
        const char *v[] = {"too_large"};
        char msg[64];
        metric_inc(srv->m.rejected, v, 1);
        snprintf(msg, sizeof(msg), "%zu", srv->opts.max_body_bytes);
        return (enum MHD_Result)respond_simple_error(r, 413, "request_too_large",
                                                     "request body: larger than %s bytes", msg);
    }
    return (enum MHD_Result)api_handle(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct server *srv = cls;
    struct http_req *r = *con_cls;
    double total;
    (void)conn;

    if (r == NULL)
        return;
    *con_cls = NULL;
    api_request_done(r);
    total = server_now_s() - r->t_start;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->status == 0)
        r->status = 499; /* the client went away before an answer (nginx's convention) */
    if (r->status != 0) {
        char st[16];
        const char *v[] = {http_endpoint_names[r->ep], st};
        snprintf(st, sizeof(st), "%d", r->status);
        metric_inc(srv->m.requests_total, v, 1);
    }
    if (srv->opts.log_requests && r->ep != EP_HEALTHZ && r->ep != EP_READYZ && r->ep != EP_METRICS)
        reqlog_write(r, srv->opts.log_json, total);
    if (r->counted)
        atomic_fetch_sub(&srv->inflight, 1);
    free(r->body);
    free(r);
}

/* ==== start, run, drain ================================================================ */

/* libmicrohttpd's own messages (mostly clients that went away mid-answer)
 * at debug level, in the tree's log format. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;
    (void)cls;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_debug("http: %s", msg);
}

int server_start(struct server *srv, struct err *e)
{
    struct sockaddr_in addr;
    const union MHD_DaemonInfo *info;
    int i;

    pthread_rwlock_init(&srv->eng_lock, NULL);
    pthread_mutex_init(&srv->gens_lock, NULL);
    pthread_mutex_init(&srv->ttft_lock, NULL);
    srv->started_at = server_now_s();
    for (i = 0; i < 6; i++)
        if ((srv->ttft_win[i] = hist_create()) == NULL)
            return err_set(e, ERR_SYSTEM, "out of memory");
    if (metrics_declare(srv) != 0)
        return err_set(e, ERR_SYSTEM, "metrics: cannot declare the families");
    /* libmicrohttpd splits the limit over its threads: each needs one at least */
    if (srv->opts.max_connections < srv->opts.http_threads)
        srv->opts.max_connections = srv->opts.http_threads;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)srv->opts.port);
    if (inet_pton(AF_INET, srv->opts.host, &addr.sin_addr) != 1)
        return err_set(e, ERR_INPUT, "--host %s: expected an IPv4 address", srv->opts.host);
    srv->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)(srv->opts.http_threads > 1 ? srv->opts.http_threads : 0), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)srv->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(srv->opts.idle_timeout_s > 0 ? ceil(srv->opts.idle_timeout_s) : 0),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (srv->daemon == NULL)
        return err_set(e, ERR_SYSTEM, "cannot listen on %s:%d (in use, or not permitted)", srv->opts.host,
                       srv->opts.port);
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info != NULL ? info->port : srv->opts.port;
    return 0;
}

void server_stop_engine(struct server *srv)
{
    struct engine *eng;

    pthread_rwlock_wrlock(&srv->eng_lock);
    eng = srv->eng;
    srv->eng = NULL;
    pthread_rwlock_unlock(&srv->eng_lock);
    /* outside the lock: its final CANCELLED events resume the connections */
    if (eng != NULL)
        engine_destroy(eng);
}

/* Sample the engine: utilisation ring (each second) and batch sizes (each tick). */
static void sample_engine(struct server *srv, double now, double *last_busy_sample, uint64_t *last_steps)
{
    struct engine_stats st;
    uint64_t n;

    pthread_rwlock_rdlock(&srv->eng_lock);
    if (srv->eng == NULL) {
        pthread_rwlock_unlock(&srv->eng_lock);
        return;
    }
    engine_get_stats(srv->eng, &st);
    pthread_rwlock_unlock(&srv->eng_lock);
    if (now - *last_busy_sample >= 1.0) {
        busy_sample(now, st.busy_s);
        *last_busy_sample = now;
    }
    /* one observation per step since the last tick, at the last batch size
     * (the engine reports only the latest step) */
    for (n = st.steps - *last_steps; n > 0 && n <= 10000; n--)
        metric_observe(srv->m.batch_size, NULL, st.last_batch);
    *last_steps = st.steps;
}

int server_run(struct server *srv, volatile int *stop)
{
    double last_busy = 0, deadline;
    uint64_t last_steps = 0;
    int cut = 0;

    while (!*stop) {
        double now = server_now_s();
        sample_engine(srv, now, &last_busy, &last_steps);
        api_expire(srv, now);
        usleep(50 * 1000);
    }
    log_info("draining: %d requests in flight, up to %.1fs", atomic_load(&srv->inflight), srv->opts.drain_timeout_s);
    atomic_store(&srv->draining, 1);
    deadline = server_now_s() + srv->opts.drain_timeout_s;
    while (atomic_load(&srv->inflight) > 0 && server_now_s() < deadline) {
        api_expire(srv, server_now_s());
        usleep(20 * 1000);
    }
    if (atomic_load(&srv->inflight) > 0) {
        log_warn("drain timeout: cancelling %d requests still in flight", atomic_load(&srv->inflight));
        cut = 1;
    }
    server_stop_engine(srv);
    /* let the cancelled streams send their last event and close */
    deadline = server_now_s() + 2.0;
    while (atomic_load(&srv->inflight) > 0 && server_now_s() < deadline)
        usleep(10 * 1000);
    if (srv->daemon != NULL) {
        MHD_stop_daemon(srv->daemon);
        srv->daemon = NULL;
    }
    log_info("drained; exiting");
    return cut;
}

void server_free(struct server *srv)
{
    int i;

    if (srv->daemon != NULL) {
        MHD_stop_daemon(srv->daemon);
        srv->daemon = NULL;
    }
    for (i = 0; i < 6; i++) {
        hist_free(srv->ttft_win[i]);
        srv->ttft_win[i] = NULL;
    }
    metrics_free(srv->m.reg);
    srv->m.reg = NULL;
    pthread_rwlock_destroy(&srv->eng_lock);
    pthread_mutex_destroy(&srv->gens_lock);
    pthread_mutex_destroy(&srv->ttft_lock);
}
