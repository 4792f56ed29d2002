/* api_chat.c -- the API endpoints: /v1/chat/completions and /v1/completions
 * (streaming or not, from the cache or the engine), /v1/models, /tokenize
 * and /detokenize.
 *
 * A generation (struct gen) is shared by the connection and the engine and
 * freed when both let go.  The engine thread only appends text under the
 * gen's lock and resumes the suspended connection; the pool threads format
 * the JSON and SSE, write the cache, and count the metrics. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "common/log.h"
#include "server/api_common.h"
#include "server/auth.h"
#include "server/engine.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/model.h"
#include "server/rcache.h"
#include "server/tokenizer.h"

struct gen {
    struct gen *next, *prev;      /* srv->gens, while the engine holds it */
    pthread_mutex_t lock;
    int refs;                     /* the connection and the engine */
    struct server *srv;
    struct MHD_Connection *conn;
    int suspended;                /* the connection waits for a resume */
    int conn_gone;
    int in_engine;                /* on srv->gens, no final event yet */
    uint64_t eng_id;              /* set under srv->gens_lock once submitted */
    int has_id;
    double deadline;              /* monotonic s: cancelled after */
    int expired;

    enum api_kind kind;
    int stream, include_usage;
    char id[64];
    long created;
    char model[128];
    int cacheable;
    char cache_key[33];

    char *text;                   /* everything generated so far */
    size_t len, cap, sent;        /* sent: streamed up to here */
    int oom;
    int finished;
    enum engine_finish finish;
    char error[256];
    enum err_code error_code;     /* ERROR: the request's fault (ERR_INPUT) or the engine's */
    int prompt_tokens, completion_tokens;
    double queue_s, ttft_s;
    double t_submit, t_first, t_last;

    /* the stream reader's pending bytes */
    char *out;
    size_t out_len, out_off;
    int role_sent, closing_done, cache_written;
};

static void gen_free(struct gen *g)
{
    pthread_mutex_destroy(&g->lock);
    free(g->text);
    free(g->out);
    free(g);
}

static void gen_release(struct gen *g)
{
    int left;

    pthread_mutex_lock(&g->lock);
    left = --g->refs;
    pthread_mutex_unlock(&g->lock);
    if (left == 0)
        gen_free(g);
}

static void gens_unlink(struct server *srv, struct gen *g)
{
    pthread_mutex_lock(&srv->gens_lock);
    if (g->in_engine) {
        if (g->prev != NULL)
            g->prev->next = g->next;
        else
            srv->gens = g->next;
        if (g->next != NULL)
            g->next->prev = g->prev;
        g->in_engine = 0;
    }
    pthread_mutex_unlock(&srv->gens_lock);
}

/* The engine's callback (engine thread): append, note times, wake the
 * connection.  Never blocks beyond two short mutexes. */
static void on_engine_event(void *ctx, const struct engine_event *ev)
{
    struct gen *g = ctx;
    int final = ev->finish != ENGINE_FINISH_NONE;
    double now = server_now_s();

    if (final)
        gens_unlink(g->srv, g);
    pthread_mutex_lock(&g->lock);
    if (ev->text_len > 0 && !g->oom) {
        if (g->len + ev->text_len + 1 > g->cap) {
            size_t cap = g->cap ? g->cap : 256;
            while (cap < g->len + ev->text_len + 1)
                cap *= 2;
            char *t = realloc(g->text, cap);
            if (t == NULL) {
                g->oom = 1;
            } else {
                g->text = t;
                g->cap = cap;
            }
        }
        if (!g->oom) {
            memcpy(g->text + g->len, ev->text, ev->text_len);
            g->len += ev->text_len;
            g->text[g->len] = '\0';
        }
    }
    g->prompt_tokens = ev->prompt_tokens;
    g->completion_tokens = ev->completion_tokens;
    if (ev->queue_s > 0)
        g->queue_s = ev->queue_s;
    if (ev->ttft_s > 0)
        g->ttft_s = ev->ttft_s;
    if (!final && g->t_first == 0)
        g->t_first = now;
    if (final) {
        g->finished = 1;
        g->finish = ev->finish;
        g->t_last = now;
        if (ev->error != NULL)
            snprintf(g->error, sizeof(g->error), "%s", ev->error);
        g->error_code = ev->error_code;
    }
    if (g->suspended && !g->conn_gone && (g->stream || final)) {
        g->suspended = 0;
        MHD_resume_connection(g->conn);
    }
    pthread_mutex_unlock(&g->lock);
    if (final)
        gen_release(g);
}

/* ==== generation results ======================================================== */

static const char *finish_name(enum engine_finish f)
{
    return f == ENGINE_FINISH_LENGTH ? "length" : "stop";
}

/* Write a finished generation to the cache (a pool thread, outside g's lock). */
static void cache_store(struct server *srv, const char *key, const char *text, size_t len, const char *finish,
                        int pt, int ct)
{
    struct api_result res = {.text = (char *)text, .text_len = len, .finish_reason = finish,
                             .prompt_tokens = pt, .completion_tokens = ct};
    char *val = api_result_encode(&res);

    if (val != NULL && rcache_put(srv->cache, key, val, strlen(val)) != 0)
        metric_inc(srv->m.cache_errors, NULL, 1);
    free(val);
}

/* The error for a generation that did not end with stop or length. */
static void gen_error(const struct gen *g, struct api_error *ae)
{
    if (g->finish == ENGINE_FINISH_ERROR && g->error_code == ERR_SYSTEM)
        api_error_set(ae, 500, "server_error", "engine_error", NULL, "%s",
                      g->error[0] ? g->error : "the forward pass failed");
    else if (g->finish == ENGINE_FINISH_ERROR)
        api_error_set(ae, 400, "invalid_request_error", "context_length_exceeded",
                      g->kind == API_CHAT ? "messages" : "prompt", "%s",
                      g->error[0] ? g->error : "the request cannot run");
    else if (g->expired)
        api_error_set(ae, 504, "timeout_error", "request_timeout", NULL, "the request took longer than %.0f s",
                      g->srv->opts.request_timeout_s);
    else if (g->oom)
        api_error_set(ae, 500, "server_error", NULL, NULL, "out of memory");
    else
        api_error_set(ae, 503, "service_unavailable", "cancelled", NULL,
                      "the request was cancelled (the server is shutting down)");
}

/* ==== streaming =============================================================== */

/* Append S (a new string, consumed; NULL when its formatting ran out of
 * memory) to the reader's pending bytes.  -1 when out of memory. */
static int out_append(struct gen *g, char *s)
{
    size_t n;

    if (s == NULL)
        return -1;
    n = strlen(s);
    char *o = realloc(g->out, g->out_len + n + 1);
    if (o == NULL) {
        free(s);
        return -1;
    }
    memcpy(o + g->out_len, s, n + 1);
    g->out = o;
    g->out_len += n;
    free(s);
    return 0;
}

/* Fill g->out with the next events (g locked).  *STORE is set when the
 * caller should write the cache after unlocking. */
static void stream_refill(struct gen *g, int *store)
{
    g->out_len = g->out_off = 0;
    if (g->kind == API_CHAT && !g->role_sent) {
        out_append(g, api_format_chunk(g->kind, g->id, g->created, g->model, 1, "", 0, NULL, NULL));
        g->role_sent = 1;
    }
    if (g->sent < g->len) {
        out_append(g, api_format_chunk(g->kind, g->id, g->created, g->model, 0, g->text + g->sent, g->len - g->sent,
                                       NULL, NULL));
        g->sent = g->len;
    }
    if (g->finished && !g->closing_done && g->sent == g->len) {
        if ((g->finish == ENGINE_FINISH_STOP || g->finish == ENGINE_FINISH_LENGTH) && !g->oom) {
            struct api_result usage = {.prompt_tokens = g->prompt_tokens, .completion_tokens = g->completion_tokens};
            out_append(g, api_format_chunk(g->kind, g->id, g->created, g->model, 0, NULL, 0, finish_name(g->finish),
                                           NULL));
            if (g->include_usage)
                out_append(g, api_format_chunk(g->kind, g->id, g->created, g->model, 0, NULL, 0, NULL, &usage));
            *store = g->cacheable && !g->cache_written;
            g->cache_written = 1;
        } else {
            struct api_error ae;
            gen_error(g, &ae);
            out_append(g, api_format_error_event(&ae));
        }
        out_append(g, strdup(api_sse_done));
        g->closing_done = 1;
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct gen *g = cls;
    int store = 0;
    ssize_t n;
    (void)pos;

    pthread_mutex_lock(&g->lock);
    if (g->out_off == g->out_len)
        stream_refill(g, &store);
    if (g->out_off < g->out_len) {
        n = (ssize_t)(g->out_len - g->out_off < max ? g->out_len - g->out_off : max);
        memcpy(buf, g->out + g->out_off, (size_t)n);
        g->out_off += (size_t)n;
    } else if (g->closing_done) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* nothing yet: sleep until the engine has more */
        g->suspended = 1;
        MHD_suspend_connection(g->conn);
        n = 0;
    }
    pthread_mutex_unlock(&g->lock);
    if (store && g->srv->cache != NULL) {
        /* the text is final once finished: safe to read unlocked */
        cache_store(g->srv, g->cache_key, g->text != NULL ? g->text : "", g->len, finish_name(g->finish),
                    g->prompt_tokens, g->completion_tokens);
    }
    return n;
}

static int respond_stream(struct http_req *r, struct gen *g)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, g, NULL);
    int ret;

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    r->status = 200;
    ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ==== the answer of a finished (non-streaming) generation ============================ */

static int respond_finished(struct http_req *r, struct gen *g)
{
    struct api_error ae;
    int ret, store = 0;

    pthread_mutex_lock(&g->lock);
    if (!g->finished) {
        /* a spurious wake: wait again */
        g->suspended = 1;
        MHD_suspend_connection(g->conn);
        pthread_mutex_unlock(&g->lock);
        return MHD_YES;
    }
    pthread_mutex_unlock(&g->lock);
    /* finished: the engine no longer touches g */
    if ((g->finish == ENGINE_FINISH_STOP || g->finish == ENGINE_FINISH_LENGTH) && !g->oom) {
        struct api_result res = {.text = g->text != NULL ? g->text : "", .text_len = g->len,
                                 .finish_reason = finish_name(g->finish), .prompt_tokens = g->prompt_tokens,
                                 .completion_tokens = g->completion_tokens};
        char *body = api_format_response(g->kind, g->id, g->created, g->model, &res);
        if (body == NULL)
            return MHD_NO;
        ret = http_respond(r, 200, "application/json", body, strlen(body), 0);
        free(body);
        store = g->cacheable && g->srv->cache != NULL;
    } else {
        gen_error(g, &ae);
        ret = http_respond_error(r, &ae, 0);
    }
    if (store)
        cache_store(g->srv, g->cache_key, g->text != NULL ? g->text : "", g->len, finish_name(g->finish), g->prompt_tokens,
                    g->completion_tokens);
    return ret;
}

/* ==== cache hits ================================================================ */

/* Serve RES (from the cache) for REQ without the engine, as JSON or SSE. */
static int respond_cached(struct http_req *r, const struct api_request *req, const struct api_result *res)
{
    struct server *srv = r->srv;
    char id[64];
    long created = (long)time(NULL);
    char *body = NULL;
    int ret;

    api_new_id(req->kind, id, sizeof(id));
    r->cached = 1;
    r->prompt_tokens = res->prompt_tokens;
    r->completion_tokens = res->completion_tokens;
    if (!req->stream) {
        body = api_format_response(req->kind, id, created, srv->model_id, res);
        if (body == NULL)
            return MHD_NO;
        ret = http_respond(r, 200, "application/json", body, strlen(body), 0);
        free(body);
        return ret;
    }
    /* the same events a live stream sends, all at once */
    struct gen tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.kind = req->kind;
    snprintf(tmp.id, sizeof(tmp.id), "%s", id);
    tmp.created = created;
    snprintf(tmp.model, sizeof(tmp.model), "%s", srv->model_id);
    tmp.text = res->text;
    tmp.len = res->text_len;
    tmp.finished = 1;
    tmp.finish = strcmp(res->finish_reason, "length") == 0 ? ENGINE_FINISH_LENGTH : ENGINE_FINISH_STOP;
    tmp.prompt_tokens = res->prompt_tokens;
    tmp.completion_tokens = res->completion_tokens;
    tmp.include_usage = req->include_usage;
    int store = 0;
    stream_refill(&tmp, &store);
    if (tmp.out == NULL)
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(tmp.out_len, tmp.out, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(tmp.out);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    r->status = 200;
    ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ==== chat and completions =========================================================== */

static uint64_t fresh_seed(void)
{
    static _Atomic uint64_t n;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)ts.tv_sec << 32) ^ (n++ * 0xbf58476d1ce4e5b9ULL);
}

static int handle_generate(struct http_req *r, enum api_kind kind)
{
    struct server *srv = r->srv;
    struct api_request req;
    struct api_error ae;
    int *ids = NULL, n_ids = 0, ret;
    struct err e;
    char key[33] = "";
    int cacheable;
    double retry;

    err_clear(&e);
    if (api_parse_request(kind, r->body != NULL ? r->body : "", r->body_len, &srv->opts.limits, &req, &ae) != 0)
        return http_respond_error(r, &ae, 0);
    if (req.model != NULL && strcmp(req.model, srv->model_id) != 0) {
        api_error_set(&ae, 404, "invalid_request_error", "model_not_found", "model",
                      "model: '%.200s' is not served here (this server serves '%.200s')", req.model, srv->model_id);
        api_request_free(&req);
        return http_respond_error(r, &ae, 0);
    }
    cacheable = srv->cache != NULL && api_request_cacheable(&req) &&
                api_request_cache_key(&req, srv->model_id, key) == 0;
    if (cacheable) {
        char *val = NULL;
        size_t len = 0;
        int rc = rcache_get(srv->cache, key, &val, &len);
        struct api_result res;

        if (rc > 0 && api_result_decode(val, len, &res) == 0) {
            free(val);
            metric_inc(srv->m.cache_hits, NULL, 1);
            if (srv->rl != NULL &&
                ratelimit_check(srv->rl, r->key_name, res.prompt_tokens + res.completion_tokens, &retry) > 0) {
                metric_inc(srv->m.rate_limited, NULL, 1);
                api_error_set(&ae, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
                              "rate limit exceeded for key '%s'; retry in %.0f s", r->key_name, ceil(retry));
                ret = http_respond_error(r, &ae, retry);
            } else {
                ret = respond_cached(r, &req, &res);
            }
            api_result_free(&res);
            api_request_free(&req);
            return ret;
        }
        free(val);
        metric_inc(rc < 0 ? srv->m.cache_errors : srv->m.cache_misses, NULL, 1);
    }

    /* the prompt's tokens */
    if (kind == API_CHAT)
        ret = chat_encode(srv->tok, srv->opts.chat_template, req.msgs, req.n_msgs, &ids, &n_ids, &e);
    else
        ret = tokenizer_encode(srv->tok, req.prompt, req.prompt_len, 1, 0, &ids, &n_ids, &e);
    if (ret != 0) {
        api_error_set(&ae, e.code == ERR_INPUT ? 400 : 500,
                      e.code == ERR_INPUT ? "invalid_request_error" : "server_error", NULL,
                      kind == API_CHAT ? "messages" : "prompt", "%s: %s", kind == API_CHAT ? "messages" : "prompt",
                      e.msg);
        api_request_free(&req);
        return http_respond_error(r, &ae, 0);
    }
    int max_prompt = srv->opts.max_prompt_tokens > 0 ? srv->opts.max_prompt_tokens : srv->model->cfg.seq_len - 1;
    if (n_ids > max_prompt || n_ids >= srv->model->cfg.seq_len) {
        const char *v[] = {"too_large"};
        metric_inc(srv->m.rejected, v, 1);
        api_error_set(&ae, 400, "invalid_request_error", "context_length_exceeded",
                      kind == API_CHAT ? "messages" : "prompt", "%s: the prompt is %d tokens; at most %d are accepted",
                      kind == API_CHAT ? "messages" : "prompt", n_ids,
                      max_prompt < srv->model->cfg.seq_len - 1 ? max_prompt : srv->model->cfg.seq_len - 1);
        free(ids);
        api_request_free(&req);
        return http_respond_error(r, &ae, 0);
    }
    r->prompt_tokens = n_ids;
    if (srv->rl != NULL && ratelimit_check(srv->rl, r->key_name, n_ids + req.max_tokens, &retry) > 0) {
        metric_inc(srv->m.rate_limited, NULL, 1);
        api_error_set(&ae, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
                      "rate limit exceeded for key '%s'; retry in %.0f s", r->key_name, ceil(retry));
        free(ids);
        api_request_free(&req);
        return http_respond_error(r, &ae, retry);
    }

    struct gen *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        free(ids);
        api_request_free(&req);
        return MHD_NO;
    }
    pthread_mutex_init(&g->lock, NULL);
    g->refs = 2; /* the connection and the engine */
    g->srv = srv;
    g->conn = r->conn;
    g->kind = kind;
    g->stream = req.stream;
    g->include_usage = req.include_usage;
    api_new_id(kind, g->id, sizeof(g->id));
    g->created = (long)time(NULL);
    snprintf(g->model, sizeof(g->model), "%s", srv->model_id);
    g->cacheable = cacheable;
    memcpy(g->cache_key, key, sizeof(key));
    g->t_submit = server_now_s();
    g->deadline = r->t_start + srv->opts.request_timeout_s;

    struct engine_params p = {
        .temperature = req.temperature,
        .top_p = req.top_p,
        .top_k = req.top_k,
        .seed = req.has_seed ? req.seed : fresh_seed(),
        .max_tokens = req.max_tokens,
        .ignore_eos = req.ignore_eos,
        .stop = (const char *const *)req.stop,
        .n_stop = req.n_stop,
    };
    /* on the list first, so a final event always finds it there */
    pthread_mutex_lock(&srv->gens_lock);
    g->in_engine = 1;
    g->next = srv->gens;
    if (srv->gens != NULL)
        srv->gens->prev = g;
    srv->gens = g;
    pthread_mutex_unlock(&srv->gens_lock);
    uint64_t eng_id = 0;
    int stopped, broken = 0;
    pthread_rwlock_rdlock(&srv->eng_lock);
    stopped = srv->eng == NULL;
    ret = !stopped ? engine_submit(srv->eng, ids, n_ids, &p, on_engine_event, g, &eng_id, &e)
                   : err_set(&e, ERR_SYSTEM, "engine: shutting down");
    if (ret != 0 && !stopped)
        broken = engine_broken(srv->eng, NULL, 0);
    pthread_rwlock_unlock(&srv->eng_lock);
    if (ret == 0) {
        /* api_expire reads the id under gens_lock */
        pthread_mutex_lock(&srv->gens_lock);
        g->eng_id = eng_id;
        g->has_id = 1;
        pthread_mutex_unlock(&srv->gens_lock);
    }
    free(ids);
    api_request_free(&req);
    if (ret != 0) {
        gens_unlink(srv, g);
        gen_free(g);
        if (e.code == ERR_INPUT) {
            api_error_set(&ae, 400, "invalid_request_error", NULL, NULL, "%s", e.msg);
            return http_respond_error(r, &ae, 0);
        }
        if (broken) {
            /* /healthz fails too: the pod is restarted, retry on another */
            const char *v[] = {"engine_broken"};
            metric_inc(srv->m.rejected, v, 1);
            api_error_set(&ae, 503, "service_unavailable", "engine_broken", NULL, "%s", e.msg);
            return http_respond_error(r, &ae, 5);
        }
        if (stopped || atomic_load(&srv->draining)) {
            const char *v[] = {"draining"};
            metric_inc(srv->m.rejected, v, 1);
            api_error_set(&ae, 503, "service_unavailable", "draining", NULL, "server is draining; retry later");
            return http_respond_error(r, &ae, 5);
        }
        const char *v[] = {"queue_full"};
        metric_inc(srv->m.rejected, v, 1);
        api_error_set(&ae, 429, "rate_limit_error", "queue_full", NULL,
                      "the server is at capacity (its queue is full); retry shortly");
        return http_respond_error(r, &ae, 1);
    }
    r->gen = g;
    if (g->stream)
        return respond_stream(r, g);
    /* wait for the final event without holding this thread */
    pthread_mutex_lock(&g->lock);
    if (!g->finished) {
        g->suspended = 1;
        MHD_suspend_connection(r->conn);
        pthread_mutex_unlock(&g->lock);
        return MHD_YES;
    }
    pthread_mutex_unlock(&g->lock);
    return respond_finished(r, g);
}

/* ==== models, tokenize, detokenize =============================================== */

static int respond_json(struct http_req *r, int status, json_t *o)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    int ret;

    json_decref(o);
    if (s == NULL)
        return MHD_NO;
    ret = http_respond(r, status, "application/json", s, strlen(s), 0);
    free(s);
    return ret;
}

/* GET /v1/models (the list of the one model) or /v1/models/ID. */
static int handle_models(struct http_req *r)
{
    struct server *srv = r->srv;
    json_t *m = json_pack("{s:s,s:s,s:I,s:s,s:i}", "id", srv->model_id, "object", "model", "created",
                          (json_int_t)time(NULL), "owned_by", "llmscale", "max_model_len", srv->model->cfg.seq_len);
    struct api_error ae;

    if (strncmp(r->path, "/v1/models/", 11) != 0)
        return respond_json(r, 200, json_pack("{s:s,s:[o]}", "object", "list", "data", m));
    if (strcmp(r->path + 11, srv->model_id) == 0)
        return respond_json(r, 200, m);
    json_decref(m);
    api_error_set(&ae, 404, "invalid_request_error", "model_not_found", "model",
                  "model: '%.200s' is not served here (this server serves '%.200s')", r->path + 11, srv->model_id);
    return http_respond_error(r, &ae, 0);
}

/* Body: {"text": STRING, "add_bos": BOOL (default true)} or {"messages":
 * [...]} (rendered by the chat template).  Answer: {"tokens": [...],
 * "count": N, "max_model_len": N}. */
static int handle_tokenize(struct http_req *r)
{
    struct server *srv = r->srv;
    json_error_t je;
    json_t *root = json_loadb(r->body != NULL ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &je), *v, *arr;
    struct api_error ae;
    struct err e;
    int *ids = NULL, n = 0, rc, i, bos = 1;

    err_clear(&e);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        api_error_set(&ae, 400, "invalid_request_error", "invalid_json", NULL, "request body: %s",
                      root == NULL ? je.text : "must be a JSON object");
        return http_respond_error(r, &ae, 0);
    }
    v = json_object_get(root, "add_bos");
    if (v != NULL && !json_is_boolean(v)) {
        json_decref(root);
        api_error_set(&ae, 400, "invalid_request_error", "invalid_value", "add_bos", "add_bos: must be true or false");
        return http_respond_error(r, &ae, 0);
    }
    if (v != NULL)
        bos = json_is_true(v);
    if (json_object_get(root, "messages") != NULL) {
        struct api_request req;
        char *body = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (body == NULL)
            return MHD_NO;
        rc = api_parse_request(API_CHAT, body, strlen(body), &srv->opts.limits, &req, &ae);
        free(body);
        if (rc != 0)
            return http_respond_error(r, &ae, 0);
        rc = chat_encode(srv->tok, srv->opts.chat_template, req.msgs, req.n_msgs, &ids, &n, &e);
        api_request_free(&req);
    } else {
        v = json_object_get(root, "text");
        if (v == NULL)
            v = json_object_get(root, "prompt");
        if (!json_is_string(v)) {
            json_decref(root);
            api_error_set(&ae, 400, "invalid_request_error", "invalid_value", "text",
                          "text: required, a string (or messages: a conversation)");
            return http_respond_error(r, &ae, 0);
        }
        rc = tokenizer_encode(srv->tok, json_string_value(v), json_string_length(v), bos, 0, &ids, &n, &e);
        json_decref(root);
    }
    if (rc != 0) {
        api_error_set(&ae, 500, "server_error", NULL, NULL, "tokenize: %s", e.msg);
        return http_respond_error(r, &ae, 0);
    }
    arr = json_array();
    for (i = 0; i < n && arr != NULL; i++)
        json_array_append_new(arr, json_integer(ids[i]));
    free(ids);
    r->prompt_tokens = n;
    return respond_json(r, 200, json_pack("{s:o,s:i,s:i}", "tokens", arr, "count", n, "max_model_len",
                                          srv->model->cfg.seq_len));
}

/* Body: {"tokens": [ids]}.  Answer: {"text": STRING}. */
static int handle_detokenize(struct http_req *r)
{
    struct server *srv = r->srv;
    json_error_t je;
    json_t *root = json_loadb(r->body != NULL ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &je), *toks, *t;
    int vocab = tokenizer_vocab_size(srv->tok);
    struct api_error ae;
    struct detok d;
    char *text = NULL;
    size_t len = 0, cap = 0, i;

    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        api_error_set(&ae, 400, "invalid_request_error", "invalid_json", NULL, "request body: %s",
                      root == NULL ? je.text : "must be a JSON object");
        return http_respond_error(r, &ae, 0);
    }
    toks = json_object_get(root, "tokens");
    if (!json_is_array(toks)) {
        json_decref(root);
        api_error_set(&ae, 400, "invalid_request_error", "invalid_value", "tokens",
                      "tokens: required, an array of token ids");
        return http_respond_error(r, &ae, 0);
    }
    json_array_foreach(toks, i, t) {
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) >= vocab) {
            json_decref(root);
            free(text);
            api_error_set(&ae, 400, "invalid_request_error", "invalid_value", "tokens",
                          "tokens[%zu]: must be an integer from 0 to %d", i, vocab - 1);
            return http_respond_error(r, &ae, 0);
        }
    }
    detok_init(&d, srv->tok);
    for (i = 0; i <= json_array_size(toks); i++) {
        char piece[64];
        size_t n = i < json_array_size(toks) ? detok_push(&d, (int)json_integer_value(json_array_get(toks, i)),
                                                           piece, sizeof(piece))
                                             : detok_flush(&d, piece, sizeof(piece));
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nt = realloc(text, cap);
            if (nt == NULL) {
                free(text);
                json_decref(root);
                return MHD_NO;
            }
            text = nt;
        }
        memcpy(text + len, piece, n);
        len += n;
        text[len] = '\0';
    }
    json_decref(root);
    int ret = respond_json(r, 200, json_pack("{s:o}", "text", api_json_text(text != NULL ? text : "", len)));
    free(text);
    return ret;
}

/* ==== entry points from http.c ======================================================= */

int api_handle(struct http_req *r)
{
    if (r->gen != NULL)
        return respond_finished(r, r->gen); /* resumed: the generation ended */
    switch (r->ep) {
    case EP_CHAT: return handle_generate(r, API_CHAT);
    case EP_COMPLETIONS: return handle_generate(r, API_COMPLETION);
    case EP_MODELS: return handle_models(r);
    case EP_TOKENIZE: return handle_tokenize(r);
    case EP_DETOKENIZE: return handle_detokenize(r);
    default: return MHD_NO;
    }
}

void api_request_done(struct http_req *r)
{
    struct server *srv = r->srv;
    struct gen *g = r->gen;
    int cancel;
    double now = server_now_s();

    if ((r->ep == EP_CHAT || r->ep == EP_COMPLETIONS) && r->status == 200)
        metric_observe(srv->m.duration, NULL, now - r->t_start);
    if (g == NULL)
        return;
    r->gen = NULL;
    pthread_mutex_lock(&g->lock);
    g->conn_gone = 1;
    cancel = !g->finished;
    r->prompt_tokens = g->prompt_tokens > 0 ? g->prompt_tokens : r->prompt_tokens;
    r->completion_tokens = g->completion_tokens;
    r->queue_s = g->queue_s;
    r->ttft_s = g->ttft_s;
    pthread_mutex_unlock(&g->lock);
    if (cancel) {
        /* the client went away mid-generation: free its batch slot */
        pthread_rwlock_rdlock(&srv->eng_lock);
        if (srv->eng != NULL)
            engine_cancel(srv->eng, g->eng_id);
        pthread_rwlock_unlock(&srv->eng_lock);
    }
    metric_inc(srv->m.prompt_tokens, NULL, r->prompt_tokens);
    metric_inc(srv->m.generation_tokens, NULL, r->completion_tokens);
    if (r->completion_tokens > 0) {
        metric_observe(srv->m.queue_time, NULL, r->queue_s);
        metric_observe(srv->m.ttft, NULL, r->ttft_s);
        server_note_ttft(srv, r->ttft_s);
        if (!cancel && r->completion_tokens > 1 && g->t_first > 0 && g->t_last > g->t_first)
            metric_observe(srv->m.tpot, NULL, (g->t_last - g->t_first) / (r->completion_tokens - 1));
    }
    gen_release(g);
}

void api_expire(struct server *srv, double now_s)
{
    uint64_t ids[64];
    int n = 0, i;
    struct gen *g;

    pthread_mutex_lock(&srv->gens_lock);
    for (g = srv->gens; g != NULL && n < 64; g = g->next) {
        if (g->has_id && now_s > g->deadline && !g->expired) {
            g->expired = 1;
            ids[n++] = g->eng_id;
        }
    }
    pthread_mutex_unlock(&srv->gens_lock);
    if (n == 0)
        return;
    pthread_rwlock_rdlock(&srv->eng_lock);
    for (i = 0; i < n && srv->eng != NULL; i++)
        engine_cancel(srv->eng, ids[i]);
    pthread_rwlock_unlock(&srv->eng_lock);
    log_warn("cancelled %d requests past --request-timeout", n);
}
