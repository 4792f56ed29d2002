/* http.h -- llmserve's HTTP server: libmicrohttpd plumbing, routing,
 * limits, health, metrics, drain; the API handlers (api_chat.c) and the
 * request log (reqlog.c) plug into it.
 *
 * Threads: libmicrohttpd's pool threads (epoll) parse requests and answer
 * health, metrics, cache hits and errors themselves; a generation is handed
 * to the engine, whose thread only appends text to the request's buffer and
 * wakes the connection (suspend/resume), so no pool thread ever waits on
 * inference and /healthz answers while the engine is saturated.  The thread
 * that calls server_run keeps the clock: per-second gauges, request
 * deadlines, and the drain. */
#ifndef LLM_HTTP_H
#define LLM_HTTP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "server/api_common.h"
#include "server/tokenizer.h"

struct engine;
struct model;
struct rcache;
struct auth;
struct ratelimit;
struct metrics;
struct metric_family;
struct hist;
struct MHD_Daemon;
struct MHD_Connection;
struct gen;

struct server_opts {
    const char *host;           /* listen address (default 127.0.0.1) */
    int port;                   /* 0: any free port (see server_port) */
    int http_threads;           /* libmicrohttpd pool size */
    size_t max_body_bytes;      /* 413 beyond */
    int max_prompt_tokens;      /* 400 beyond (0: the model's context) */
    int max_connections;        /* libmicrohttpd refuses connections beyond */
    double request_timeout_s;   /* a generation is cancelled after this long */
    double idle_timeout_s;      /* a connection silent this long is closed (slow clients) */
    double body_timeout_s;      /* a request body must arrive whole within this (slow bodies) */
    double drain_timeout_s;     /* SIGTERM: how long in-flight requests may take */
    int log_json;               /* request log lines as JSON */
    int log_requests;           /* 0: no request log */
    enum chat_template chat_template;
    struct api_limits limits;
};

void server_opts_default(struct server_opts *o);

/* Labels of llmserve_requests_total{endpoint}: a fixed set, so the series
 * stay bounded whatever paths clients send. */
enum http_endpoint {
    EP_CHAT, EP_COMPLETIONS, EP_MODELS, EP_TOKENIZE, EP_DETOKENIZE,
    EP_HEALTHZ, EP_READYZ, EP_METRICS, EP_PAGE, EP_OTHER, EP_COUNT
};
extern const char *const http_endpoint_names[EP_COUNT];

/* The metric families llmserve exports (see README, "llmserve"). */
struct server_metrics {
    struct metrics *reg;
    struct metric_family *requests_waiting, *requests_running, *kv_usage, *gpu_util, *ttft_p90;
    struct metric_family *requests_total, *ttft, *tpot, *duration, *queue_time;
    struct metric_family *prompt_tokens, *generation_tokens, *batch_size;
    struct metric_family *cache_hits, *cache_misses, *cache_errors;
    struct metric_family *rate_limited, *rejected, *ready, *draining, *engine_broken, *redis_up, *build_info;
};

struct server {
    struct server_opts opts;
    /* the parts it serves (owned by the caller) */
    struct engine *eng;
    const struct model *model;
    const struct tokenizer *tok;
    struct rcache *cache;       /* NULL: no response cache */
    struct auth *auth;          /* NULL: no keys required */
    struct ratelimit *rl;       /* NULL: no rate limits */
    const char *model_id;       /* the name /v1/models lists */

    struct server_metrics m;
    struct MHD_Daemon *daemon;
    int port;                   /* the port bound */
    atomic_int ready;           /* the model is loaded */
    atomic_int draining;
    atomic_int inflight;        /* API requests accepted and not yet finished */
    pthread_rwlock_t eng_lock;  /* read: submitting; write: destroying the engine */
    pthread_mutex_t gens_lock;  /* the generations running (deadlines, drain) */
    struct gen *gens;
    pthread_mutex_t ttft_lock;  /* TTFTs of the last 60 s in six 10-s windows */
    struct hist *ttft_win[6];
    long ttft_win_epoch[6];
    double started_at;
};

/* Bind and start serving (ready is set by the caller when the model is up).
 * SRV's parts and opts are filled by the caller.  0, or -1 with E. */
int server_start(struct server *srv, struct err *e);
/* Run the clock until *STOP (set from a signal handler) becomes nonzero,
 * then drain: /readyz and new requests answer 503, requests in flight get
 * up to drain_timeout_s, then the engine is destroyed (cancelling the rest)
 * and the daemon stopped.  Returns 0 when everything finished in time, 1
 * when requests had to be cut. */
int server_run(struct server *srv, volatile int *stop);
/* Free what server_start made (after server_run, or on a failed start). */
void server_free(struct server *srv);
/* Destroy the engine under the write lock (server_run calls it). */
void server_stop_engine(struct server *srv);

double server_now_s(void);
/* Record a TTFT into the 60-s window behind llmserve_ttft_p90_seconds. */
void server_note_ttft(struct server *srv, double ttft_s);
/* Refresh the gauges from the engine and cache and write the exposition. */
int server_metrics_expose(struct server *srv, char **out, size_t *len);

/* ---- per-request state shared by http.c and api_chat.c ------------------------ */

struct http_req {
    struct server *srv;
    struct MHD_Connection *conn;
    enum http_endpoint ep;
    const char *method;         /* libmicrohttpd's strings, valid for the request */
    char path[128];
    double t_start;
    char *body;
    size_t body_len, body_cap;
    int too_large;
    int counted;                /* holds one of srv->inflight */
    char key_name[64];          /* for logs: the key's name, "anonymous" or "" */
    int status;
    int cached;
    int prompt_tokens, completion_tokens;
    double queue_s, ttft_s;
    struct gen *gen;            /* a generation in progress */
};

/* Queue a response (BODY copied) with STATUS and content type; adds the
 * Retry-After header when RETRY_AFTER_S > 0.  Records the status. */
int http_respond(struct http_req *r, int status, const char *ctype, const char *body, size_t len,
                 double retry_after_s);
/* Queue an OpenAI-shaped error. */
int http_respond_error(struct http_req *r, const struct api_error *ae, double retry_after_s);

/* ---- api_chat.c --------------------------------------------------------------- */

/* The body of R is complete: answer it (or start a generation and suspend).
 * Called again after a resume; returns an MHD result. */
int api_handle(struct http_req *r);
/* The connection is gone (normally or not): release the generation. */
void api_request_done(struct http_req *r);
/* Cancel generations past their deadline (called by server_run). */
void api_expire(struct server *srv, double now_s);

/* ---- reqlog.c ------------------------------------------------------------------- */

/* One line per request on stderr: method, path, status, key name, tokens,
 * latencies; plain "key=value" words or one JSON object. */
void reqlog_write(const struct http_req *r, int json, double total_s);

#endif
