/* cmd_serve.c -- `llmserve serve` (and `llmserve --model M ...`): load the
 * model, start the engine and the HTTP server, serve until SIGTERM or
 * SIGINT, then drain.
 *
 * Every option can also come from an environment variable, LLMSERVE_ and
 * the option's name in capitals with '-' as '_' (--max-batch:
 * LLMSERVE_MAX_BATCH); the command line wins. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cpus.h"
#include "common/duration.h"
#include "common/err.h"
#include "common/log.h"
#include "server/auth.h"
#include "server/command.h"
#include "server/engine.h"
#include "server/forward.h"
#include "server/http.h"
#include "server/model.h"
#include "server/rcache.h"
#include "server/tokenizer.h"

enum serve_opt {
    O_MODEL = 256, O_TOKENIZER, O_QUANTIZE, O_CHAT_TEMPLATE, O_MAX_BATCH, O_MAX_QUEUE, O_KV_CACHE_MB, O_THREADS,
    O_HOST, O_PORT, O_HTTP_THREADS, O_CACHE, O_CACHE_TTL, O_CACHE_MAX_MB, O_REDIS, O_REDIS_TIMEOUT_MS,
    O_API_KEYS, O_RATE_RPM, O_RATE_TPM, O_MAX_BODY, O_MAX_PROMPT, O_MAX_TOKENS, O_DEFAULT_MAX_TOKENS,
    O_MAX_CONNECTIONS, O_REQUEST_TIMEOUT, O_IDLE_TIMEOUT, O_BODY_TIMEOUT, O_DRAIN_TIMEOUT, O_LOG_FORMAT,
    O_NO_REQUEST_LOG, O_STEP_LOG, O_BACKEND, O_ENGINE_CPUS,
    O_HELP,
};

static const struct serve_option {
    const char *name;
    int id;
    int has_arg;
    const char *arg;
    const char *help;
} serve_options[] = {
    {"model", O_MODEL, 1, "M", "model file (llama2.c .bin, GGUF) or synthetic:NAME (required)"},
    {"tokenizer", O_TOKENIZER, 1, "T", "llama2.c tokenizer.bin (default: the model's own)"},
    {"quantize", O_QUANTIZE, 1, "q8", "quantize float weights to int8 at load time"},
    {"chat-template", O_CHAT_TEMPLATE, 1, "NAME", "auto, llama2, chatml, zephyr or raw (default auto)"},
    {"max-batch", O_MAX_BATCH, 1, "N", "sequences decoded together (default 16)"},
    {"max-queue", O_MAX_QUEUE, 1, "N", "requests waiting beyond the batch; more get 429 (default 64)"},
    {"kv-cache-mb", O_KV_CACHE_MB, 1, "MB", "KV-cache size (default: max-batch full contexts)"},
    {"threads", O_THREADS, 1, "N", "kernel threads (default: all cores, or one per --engine-cpus CPU)"},
    {"engine-cpus", O_ENGINE_CPUS, 1, "LIST", "pin the engine to these CPUs (e.g. 2-7) and the HTTP threads to the rest"},
    {"backend", O_BACKEND, 1, "NAME", "auto (default: cuda when a GPU is present, else cpu), cuda, cpu or ref"},
    {"host", O_HOST, 1, "ADDR", "IPv4 address to listen on (default 127.0.0.1)"},
    {"port", O_PORT, 1, "PORT", "port (default 8080; 0: any free port, printed)"},
    {"http-threads", O_HTTP_THREADS, 1, "N", "HTTP worker threads (default 4)"},
    {"cache", O_CACHE, 1, "URL", "response cache: memory (default), redis://HOST:PORT[/DB], or off"},
    {"cache-ttl", O_CACHE_TTL, 1, "DUR", "cache entry lifetime (default 1h)"},
    {"cache-max-mb", O_CACHE_MAX_MB, 1, "MB", "memory cache size (default 64)"},
    {"redis", O_REDIS, 1, "URL", "Redis for rate limits (default: the cache's Redis)"},
    {"redis-timeout-ms", O_REDIS_TIMEOUT_MS, 1, "MS", "Redis connect/command timeout (default 50)"},
    {"api-keys", O_API_KEYS, 1, "FILE", "require keys: lines 'KEY [NAME]' (default: open)"},
    {"rate-limit-rpm", O_RATE_RPM, 1, "N", "requests per minute per key (default 0: off)"},
    {"rate-limit-tpm", O_RATE_TPM, 1, "N", "tokens (prompt + max_tokens) per minute per key (default 0: off)"},
    {"max-body-bytes", O_MAX_BODY, 1, "N", "larger bodies get 413 (default 1048576)"},
    {"max-prompt-tokens", O_MAX_PROMPT, 1, "N", "longer prompts get 400 (default: the context)"},
    {"max-tokens-limit", O_MAX_TOKENS, 1, "N", "largest max_tokens accepted (default 4096)"},
    {"default-max-tokens", O_DEFAULT_MAX_TOKENS, 1, "N", "max_tokens when a request gives none (default 256)"},
    {"max-connections", O_MAX_CONNECTIONS, 1, "N", "open connections at most (default 1024)"},
    {"request-timeout", O_REQUEST_TIMEOUT, 1, "DUR", "a generation is cancelled after this (default 5m)"},
    {"idle-timeout", O_IDLE_TIMEOUT, 1, "DUR", "close connections silent this long (default 30s)"},
    {"body-timeout", O_BODY_TIMEOUT, 1, "DUR", "close connections whose body takes longer (default 30s)"},
    {"drain-timeout", O_DRAIN_TIMEOUT, 1, "DUR", "on SIGTERM, time given to requests in flight (default 30s)"},
    {"log-format", O_LOG_FORMAT, 1, "FMT", "request log lines: plain (default) or json"},
    {"no-request-log", O_NO_REQUEST_LOG, 0, NULL, "no per-request log lines"},
    {"step-log", O_STEP_LOG, 1, "FILE", "a CSV line per engine step (its timing and batch), to check llmsim's step model"},
    {"help", O_HELP, 0, NULL, "this help"},
};
#define N_SERVE_OPTIONS ((int)(sizeof(serve_options) / sizeof(serve_options[0])))

struct serve_conf {
    const char *model, *tokenizer, *cache_url, *redis_url, *api_keys, *step_log;
    int quantize_q8;
    int pin_engine;         /* --engine-cpus given: engine_cpus holds them */
    cpu_set_t engine_cpus;
    struct engine_opts eng;
    struct server_opts srv;
    double cache_ttl_s;
    size_t cache_max_bytes;
    int redis_timeout_ms;
    struct ratelimit_opts rl;
};

static void env_name(const char *opt, char *out, size_t cap)
{
    size_t i = 0, j = (size_t)snprintf(out, cap, "LLMSERVE_");

    for (; opt[i] != '\0' && j + 1 < cap; i++, j++)
        out[j] = opt[i] == '-' ? '_' : (char)(opt[i] >= 'a' && opt[i] <= 'z' ? opt[i] - 32 : opt[i]);
    out[j] = '\0';
}

static void serve_usage(FILE *f)
{
    char env[64], lhs[64];
    int i;

    fprintf(f, "usage: llmserve [serve] --model M [OPTIONS]\n"
               "\n"
               "Serve the OpenAI-compatible HTTP API: POST /v1/chat/completions, /v1/completions\n"
               "(streaming with \"stream\": true), GET /v1/models, POST /tokenize, /detokenize,\n"
               "GET / (a chat page), /healthz, /readyz, /metrics (Prometheus).  SIGTERM drains:\n"
               "/readyz and new requests answer 503, requests in flight finish, then exit 0.\n"
               "\n"
               "options (each also from the environment variable shown):\n");
    for (i = 0; i < N_SERVE_OPTIONS; i++) {
        snprintf(lhs, sizeof(lhs), "--%s%s%s", serve_options[i].name, serve_options[i].arg ? " " : "",
                 serve_options[i].arg ? serve_options[i].arg : "");
        fprintf(f, "  %-26s %s\n", lhs, serve_options[i].help);
        if (serve_options[i].id == O_HELP) /* serve_parse reads no LLMSERVE_HELP */
            continue;
        env_name(serve_options[i].name, env, sizeof(env));
        fprintf(f, "  %-26s   [%s]\n", "", env);
    }
    fprintf(f, "\nDurations take units: 250ms, 30s, 5m, 1h.\n");
}

static int parse_long(const char *opt, const char *arg, long lo, long hi, long *out, struct err *e)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v < lo || v > hi)
        return err_set(e, ERR_INPUT, "--%s: '%s' is not an integer in [%ld, %ld]", opt, arg, lo, hi);
    *out = v;
    return 0;
}

static int parse_dur(const char *opt, const char *arg, double *out, struct err *e)
{
    if (duration_parse(arg, out, e) != 0)
        return err_prefix(e, "--%s", opt);
    return 0;
}

/* Apply option ID with ARG (NULL for flags) to C. */
static int apply(struct serve_conf *c, int id, const char *name, const char *arg, struct err *e)
{
    long v = 0;
    double d;

    switch (id) {
    case O_MODEL: c->model = arg; return 0;
    case O_TOKENIZER: c->tokenizer = arg; return 0;
    case O_QUANTIZE:
        if (strcmp(arg, "q8") != 0 && strcmp(arg, "none") != 0)
            return err_set(e, ERR_INPUT, "--quantize: '%s' (expected q8 or none)", arg);
        c->quantize_q8 = strcmp(arg, "q8") == 0;
        return 0;
    case O_CHAT_TEMPLATE:
        if (chat_template_parse(arg, &c->srv.chat_template) != 0)
            return err_set(e, ERR_INPUT, "--chat-template: '%s' (expected auto, llama2, chatml, zephyr or raw)",
                           arg);
        return 0;
    case O_HOST: c->srv.host = arg; return 0;
    case O_CACHE: c->cache_url = arg; return 0;
    case O_REDIS: c->redis_url = arg; return 0;
    case O_API_KEYS: c->api_keys = arg; return 0;
    case O_LOG_FORMAT:
        if (strcmp(arg, "plain") != 0 && strcmp(arg, "json") != 0)
            return err_set(e, ERR_INPUT, "--log-format: '%s' (expected plain or json)", arg);
        c->srv.log_json = strcmp(arg, "json") == 0;
        return 0;
    case O_NO_REQUEST_LOG: c->srv.log_requests = 0; return 0;
    case O_STEP_LOG: c->step_log = arg; return 0;
    case O_ENGINE_CPUS:
        if (cpus_parse(arg, &c->engine_cpus, e) != 0)
            return err_prefix(e, "--engine-cpus");
        c->pin_engine = 1;
        return 0;
    case O_BACKEND:
        if (strcmp(arg, "auto") != 0 && strcmp(arg, "cpu") != 0 && strcmp(arg, "cuda") != 0 &&
            strcmp(arg, "ref") != 0)
            return err_set(e, ERR_INPUT, "--backend: '%s' (expected auto, cpu, cuda or ref)", arg);
        c->eng.backend = arg;
        return 0;
    case O_CACHE_TTL:
        if (parse_dur(name, arg, &c->cache_ttl_s, e))
            return -1;
        if (c->cache_ttl_s <= 0)
            return err_set(e, ERR_INPUT, "--cache-ttl: must be positive");
        return 0;
    case O_REQUEST_TIMEOUT: return parse_dur(name, arg, &c->srv.request_timeout_s, e);
    case O_IDLE_TIMEOUT: return parse_dur(name, arg, &c->srv.idle_timeout_s, e);
    case O_BODY_TIMEOUT: return parse_dur(name, arg, &c->srv.body_timeout_s, e);
    case O_DRAIN_TIMEOUT: return parse_dur(name, arg, &c->srv.drain_timeout_s, e);
    default: break;
    }
    /* the integer options */
    if (parse_long(name, arg, id == O_PORT || id == O_THREADS || id == O_RATE_RPM || id == O_RATE_TPM ? 0 : 1,
                   id == O_PORT ? 65535 : INT_MAX, &v, e))
        return -1;
    d = (double)v;
    switch (id) {
    case O_MAX_BATCH: c->eng.max_batch = (int)v; break;
    case O_MAX_QUEUE: c->eng.max_queue = (int)v; break;
    case O_KV_CACHE_MB: c->eng.kv_cache_bytes = (size_t)v << 20; break;
    case O_THREADS: c->eng.threads = (int)v; break;
    case O_PORT: c->srv.port = (int)v; break;
    case O_HTTP_THREADS: c->srv.http_threads = (int)v; break;
    case O_CACHE_MAX_MB: c->cache_max_bytes = (size_t)v << 20; break;
    case O_REDIS_TIMEOUT_MS: c->redis_timeout_ms = (int)v; break;
    case O_RATE_RPM: c->rl.requests_per_min = d; break;
    case O_RATE_TPM: c->rl.tokens_per_min = d; break;
    case O_MAX_BODY: c->srv.max_body_bytes = (size_t)v; break;
    case O_MAX_PROMPT: c->srv.max_prompt_tokens = (int)v; break;
    case O_MAX_TOKENS: c->srv.limits.max_tokens_limit = (int)v; break;
    case O_DEFAULT_MAX_TOKENS: c->srv.limits.default_max_tokens = (int)v; break;
    case O_MAX_CONNECTIONS: c->srv.max_connections = (int)v; break;
    default: return err_set(e, ERR_INPUT, "--%s: not handled", name);
    }
    return 0;
}

/* --engine-cpus: the engine thread (and so its OpenMP team) on those CPUs,
 * every other thread on the rest of this process's CPUs.  Called on the
 * main thread before the HTTP server starts: libmicrohttpd's pool inherits
 * its mask.  Kernel threads default to one per engine CPU. */
static int serve_pin(struct serve_conf *c, struct err *e)
{
    cpu_set_t allowed, rest;
    int rc;

    if (cpus_allowed(&allowed) == 0)
        return err_set(e, ERR_SYSTEM, "--engine-cpus: cannot read the CPUs this process may use");
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &c->engine_cpus) && !CPU_ISSET(cpu, &allowed))
            return err_set(e, ERR_INPUT, "--engine-cpus: CPU %d is not one this process may use (it has %d)", cpu,
                           CPU_COUNT(&allowed));
    c->eng.cpus = &c->engine_cpus;
    if (c->eng.threads == 0)
        c->eng.threads = CPU_COUNT(&c->engine_cpus);
    CPU_XOR(&rest, &allowed, &c->engine_cpus); /* engine_cpus is within allowed */
    if (CPU_COUNT(&rest) == 0) {
        log_warn("serve: --engine-cpus leaves no CPU for the HTTP threads: they share the engine's");
        return 0;
    }
    if ((rc = pthread_setaffinity_np(pthread_self(), sizeof rest, &rest)) != 0)
        return err_set(e, ERR_SYSTEM, "--engine-cpus: cannot move the HTTP threads off them: %s", strerror(rc));
    log_info("serve: the engine on %d CPU%s, the HTTP threads on the other %d", CPU_COUNT(&c->engine_cpus),
             CPU_COUNT(&c->engine_cpus) == 1 ? "" : "s", CPU_COUNT(&rest));
    return 0;
}

/* Environment first, then the command line.  0, 1 for --help, -1 with E. */
static int serve_parse(int argc, char **argv, struct serve_conf *c, struct err *e)
{
    struct option lopts[N_SERVE_OPTIONS + 1];
    char env[64];
    const char *val;
    int i, ch, idx;

    for (i = 0; i < N_SERVE_OPTIONS; i++) {
        lopts[i] = (struct option){serve_options[i].name, serve_options[i].has_arg ? required_argument : no_argument,
                                   NULL, serve_options[i].id};
        env_name(serve_options[i].name, env, sizeof(env));
        val = getenv(env);
        if (val == NULL || serve_options[i].id == O_HELP)
            continue;
        if (!serve_options[i].has_arg) {
            if (strcmp(val, "1") == 0 || strcmp(val, "true") == 0)
                apply(c, serve_options[i].id, serve_options[i].name, NULL, e);
            continue;
        }
        if (apply(c, serve_options[i].id, serve_options[i].name, val, e) != 0)
            return err_prefix(e, "%s", env);
    }
    lopts[N_SERVE_OPTIONS] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "h", lopts, &idx)) != -1) {
        if (ch == 'h' || ch == O_HELP)
            return 1;
        if (ch == '?' || ch == ':')
            return err_set(e, ERR_INPUT, "unknown or incomplete option '%s' (try --help)", argv[optind - 1]);
        for (i = 0; i < N_SERVE_OPTIONS; i++)
            if (serve_options[i].id == ch)
                break;
        if (apply(c, ch, serve_options[i].name, optarg, e) != 0)
            return -1;
    }
    if (optind < argc)
        return err_set(e, ERR_INPUT, "unexpected argument '%s' (try --help)", argv[optind]);
    if (c->model == NULL)
        return err_set(e, ERR_INPUT, "--model is required (or LLMSERVE_MODEL; try --help)");
    return 0;
}

static volatile int serve_stop;

static void on_signal(int sig)
{
    (void)sig;
    serve_stop = 1;
}

/* --step-log: one CSV line per engine step, written on the engine thread
 * (line-buffered: a few microseconds a step).  Times are seconds since the
 * server started.  `llmbench calibrate` reads it. */
struct step_log {
    FILE *f;
    double t0;
};

static void step_log_write(void *ctx, const struct engine_step *st)
{
    struct step_log *sl = ctx;

    fprintf(sl->f, "%.6f,%.6f,%.6f,%.6f,%d,%d,%d,%ld,%d,%ld,%d\n", st->t_start - sl->t0, st->t_forward - sl->t0,
            st->t_sample - sl->t0, st->t_end - sl->t0, st->seqs, st->prefill_seqs, st->prefill_tokens, st->prefill_ctx, st->decode_seqs,
            st->decode_ctx, st->generated);
}

static double serve_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int serve_exec(int argc, char **argv)
{
    struct step_log sl = {NULL, 0};
    struct serve_conf c;
    struct model m;
    struct model_load_opts lo = {0};
    struct tokenizer *own_tok = NULL;
    struct server srv;
    struct err e;
    struct rcache_opts co;
    struct redis_link *rl_link = NULL;
    int rc = 1, r, started = 0, backend_auto;

    memset(&c, 0, sizeof(c));
    memset(&m, 0, sizeof(m));
    memset(&srv, 0, sizeof(srv));
    err_clear(&e);
    server_opts_default(&c.srv);
    c.cache_url = "memory";
    c.redis_timeout_ms = 50;
    c.eng.backend = "auto";
    r = serve_parse(argc, argv, &c, &e);
    if (r == 1) {
        serve_usage(stdout);
        return 0;
    }
    if (r < 0) {
        log_error("serve: %s", e.msg);
        return err_exit_status(&e);
    }
    srv.opts = c.srv;

    /* the backend: cuda without a device fails here, before anything starts
     * (and auto says in the log what it chose) */
    backend_auto = strcmp(c.eng.backend, "auto") == 0;
    {
        const struct kn_backend *be = forward_backend(c.eng.backend, &e);

        if (be == NULL)
            goto fail;
        c.eng.backend = be->name;
    }

    if (c.step_log != NULL) {
        if ((sl.f = fopen(c.step_log, "w")) == NULL) {
            err_set(&e, ERR_SYSTEM, "--step-log: cannot open %s: %s", c.step_log, strerror(errno));
            goto fail;
        }
        setvbuf(sl.f, NULL, _IOLBF, 0); /* whole lines, at once: readers follow it live */
        sl.t0 = serve_now_s();
        fprintf(sl.f, "t_start,t_forward,t_sample,t_end,seqs,prefill_seqs,prefill_tokens,prefill_ctx,decode_seqs,"
                      "decode_ctx,generated\n");
        c.eng.on_step = step_log_write;
        c.eng.on_step_ctx = &sl;
    }

    /* the gateway parts first: bad flags fail before the model loads */
    if (c.api_keys != NULL && (srv.auth = auth_load(c.api_keys, &e)) == NULL) {
        err_prefix(&e, "--api-keys");
        goto fail;
    }
    if (strcmp(c.cache_url, "off") != 0) {
        co = (struct rcache_opts){.url = c.cache_url, .ttl_s = c.cache_ttl_s, .max_bytes = c.cache_max_bytes,
                                  .timeout_ms = c.redis_timeout_ms};
        if ((srv.cache = rcache_create(&co, &e)) == NULL)
            goto fail;
    }
    if (c.rl.requests_per_min > 0 || c.rl.tokens_per_min > 0) {
        struct redis_link *link = srv.cache != NULL ? rcache_redis(srv.cache) : NULL;
        if (c.redis_url != NULL) {
            if ((rl_link = redis_link_create(c.redis_url, c.redis_timeout_ms, &e)) == NULL) {
                err_prefix(&e, "--redis");
                goto fail;
            }
            link = rl_link;
        }
        if ((srv.rl = ratelimit_create(&c.rl, link)) == NULL) {
            err_set(&e, ERR_SYSTEM, "out of memory");
            goto fail;
        }
    }

    if (c.pin_engine && serve_pin(&c, &e) != 0)
        goto fail;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    /* listen first: /healthz answers and /readyz says 503 while the model loads */
    lo.quantize_q8 = c.quantize_q8;
    srv.model = &m;
    snprintf(m.name, sizeof(m.name), "%s", c.model);
    srv.model_id = m.name;
    if (server_start(&srv, &e) != 0)
        goto fail;
    started = 1;
    printf("llmserve: listening on http://%s:%d\n", srv.opts.host, srv.port);
    fflush(stdout);
    if (model_load(&m, c.model, &lo, &e) < 0)
        goto fail;
    if (c.tokenizer != NULL) {
        if ((own_tok = tokenizer_load(c.tokenizer, m.cfg.vocab_size, &e)) == NULL)
            goto fail;
        srv.tok = own_tok;
    } else {
        srv.tok = m.tokenizer;
    }
    if (srv.tok == NULL) {
        err_set(&e, ERR_INPUT, "%s has no tokenizer: give --tokenizer T", c.model);
        goto fail;
    }
    if (srv.opts.chat_template == CHAT_TEMPLATE_AUTO)
        srv.opts.chat_template = chat_template_detect(m.chat_template);
    /* the engine reads the tokenizer from the model (text and stop strings) */
    struct tokenizer *model_tok = m.tokenizer;
    m.tokenizer = (struct tokenizer *)srv.tok;
    struct engine *eng = engine_create(&m, &c.eng, &e);
    if (eng == NULL && backend_auto && strcmp(c.eng.backend, "cuda") == 0) {
        /* the device is there but cannot hold the model (its memory): the CPU can */
        log_warn("serve: backend auto: cuda failed (%s); falling back to cpu", e.msg);
        c.eng.backend = "cpu";
        err_clear(&e);
        eng = engine_create(&m, &c.eng, &e);
    }
    if (eng == NULL) {
        m.tokenizer = model_tok;
        goto fail;
    }
    pthread_rwlock_wrlock(&srv.eng_lock);
    srv.eng = eng;
    pthread_rwlock_unlock(&srv.eng_lock);
    atomic_store(&srv.ready, 1);
    log_info("serving %s (%d layers, dim %d, context %d; template %s; cache %s; keys %s)", m.name, m.cfg.n_layers,
             m.cfg.dim, m.cfg.seq_len, chat_template_name(srv.opts.chat_template), c.cache_url,
             srv.auth != NULL ? "required" : "off");

    rc = server_run(&srv, &serve_stop) == 0 ? 0 : 1;
    m.tokenizer = model_tok;
    goto out;
fail:
    log_error("serve: %s", e.msg);
    rc = err_exit_status(&e);
    if (started) {
        server_stop_engine(&srv);
    }
out:
    server_free(&srv);
    tokenizer_free(own_tok);
    model_free(&m);
    rcache_free(srv.cache);
    ratelimit_free(srv.rl);
    redis_link_free(rl_link);
    auth_free(srv.auth);
    if (sl.f != NULL && fclose(sl.f) != 0) {
        log_error("serve: --step-log %s: %s", c.step_log, strerror(errno));
        rc = 1;
    }
    return rc;
}

const struct serve_command cmd_serve_entry = {
    .name = "serve",
    .summary = "serve the OpenAI-compatible HTTP API",
    .exec = serve_exec,
};
