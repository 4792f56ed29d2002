/* check_engine.c -- unit tests of the inference engine (server/engine.c):
 * continuous batching gives every request the tokens it gets alone, with
 * requests joining at different steps, chunked prefill and preemption forced
 * by a small KV cache; stop strings, cancellation (running and queued), the
 * bounded queue, shutdown, bad requests, seeded sampling and the statistics;
 * failed forward passes, and the engine broken by failures in a row.
 *
 * "Alone" is the forward pass run here a token at a time on a fresh cache
 * (no engine, no batching, no chunking). */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/engine.h"
#include "server/forward.h"
#include "server/kvcache.h"
#include "server/model.h"
#include "server/tokenizer.h"

#define SMALL_MODEL "synthetic:dim=64,layers=2,heads=4,kv_heads=2,hidden=96,vocab=300,seq=128,seed=5"
#define MAX_IDS 512

/* ---- collecting one request's events ------------------------------------------------ */

struct collect {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ids[MAX_IDS];
    int n;
    char text[16384];
    size_t text_len;
    int n_final;
    int n_after_final;          /* events after the final one (must stay 0) */
    struct engine_event fin;
    char error[256];
    /* a hook run in the callback after token events (outside mu) */
    void (*on_token)(struct collect *c, int n);
    struct engine *eng;
    void *hook_arg;
};

static void collect_init(struct collect *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

static void collect_destroy(struct collect *c)
{
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

static void on_event(void *ctx, const struct engine_event *ev)
{
    struct collect *c = ctx;
    int n;

    pthread_mutex_lock(&c->mu);
    if (c->n_final > 0)
        c->n_after_final++;
    if (ev->text_len > 0 && c->text_len + ev->text_len < sizeof c->text) {
        memcpy(c->text + c->text_len, ev->text, ev->text_len);
        c->text_len += ev->text_len;
    }
    if (ev->finish == ENGINE_FINISH_NONE && c->n < MAX_IDS)
        c->ids[c->n++] = ev->token;
    if (ev->finish != ENGINE_FINISH_NONE) {
        c->fin = *ev;
        c->fin.text = NULL;
        c->fin.error = NULL;
        if (ev->error != NULL)
            snprintf(c->error, sizeof c->error, "%s", ev->error);
        c->n_final++;
    }
    n = c->n;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (ev->finish == ENGINE_FINISH_NONE && c->on_token != NULL)
        c->on_token(c, n);
}

/* Wait (at most 60 s) for C's final event. */
static void collect_wait(struct collect *c)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&c->mu);
    while (c->n_final == 0)
        ck_assert_msg(pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0 || c->n_final > 0,
                      "no final event within 60 s");
    pthread_mutex_unlock(&c->mu);
}

/* ---- helpers ----------------------------------------------------------------------------- */

static void load(struct model *m, const char *path)
{
    struct err e = {0};

    ck_assert_msg(model_load(m, path, NULL, &e) == 0, "%s: %s", path, e.msg);
}

static struct engine *engine_for(struct model *m, const struct engine_opts *o)
{
    struct err e = {0};
    struct engine *eng = engine_create(m, o, &e);

    ck_assert_msg(eng != NULL, "%s", e.msg);
    return eng;
}

/* Wait (at most 10 s) until the engine reports no running request: final
 * events go out during a step, the batch is tidied right after it. */
static void wait_idle(struct engine *eng, struct engine_stats *st)
{
    for (int i = 0; i < 10000; i++) {
        engine_get_stats(eng, st);
        if (st->running == 0 && st->waiting == 0)
            return;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    ck_abort_msg("the engine stayed busy");
}


/* Greedy decoding of PROMPT alone: the forward pass a token at a time, no
 * engine.  N ids into OUT. */
static void greedy_alone(const struct model *m, const int *prompt, int n_prompt, int n, int *out)
{
    struct kv_cache c;
    struct kv_seq s;
    struct forward *f;
    struct err e = {0};
    float *logits = malloc((size_t)m->cfg.vocab_size * sizeof *logits);
    int tok = -1;

    ck_assert_int_eq(kv_cache_init(&c, m->cfg.n_layers, m->cfg.n_kv_heads * m->cfg.head_dim, 16,
                                   (n_prompt + n) / 16 + 1, &e), 0);
    f = forward_create(m, &c, 1, NULL, &e);
    ck_assert_ptr_nonnull(f);
    kv_seq_init(&s);
    for (int pos = 0; pos < n_prompt + n - 1; pos++) {
        struct forward_seq fs = {.n_tokens = 1, .pos0 = pos, .kv = &s, .logits = logits};

        fs.tokens = pos < n_prompt ? &prompt[pos] : &tok;
        ck_assert_int_eq(kv_seq_reserve(&c, &s, pos + 1), 0);
        forward_batch(f, &fs, 1);
        if (pos >= n_prompt - 1)
            tok = out[pos - n_prompt + 1] = kn_argmax(logits, m->cfg.vocab_size);
    }
    kv_seq_free(&c, &s);
    forward_free(f);
    kv_cache_free(&c);
    free(logits);
}

static void submit(struct engine *eng, const int *prompt, int n, const struct engine_params *p, struct collect *c,
                   uint64_t *id)
{
    struct err e = {0};

    ck_assert_msg(engine_submit(eng, prompt, n, p, on_event, c, id, &e) == 0, "%s", e.msg);
}

/* ---- batched equals alone ----------------------------------------------------------------- */

#define N_REQ 5
static const int req_prompt_len[N_REQ] = {3, 40, 17, 1, 60};
static const int req_max_tokens[N_REQ] = {30, 20, 40, 25, 10};
static int req_prompts[N_REQ][64];
static struct collect req_out[N_REQ];
static struct engine_params req_params[N_REQ];

/* Request 0's hook: requests 3 and 4 join when it has 5 and 12 tokens. */
static void join_late(struct collect *c, int n)
{
    if (n == 5 || n == 12) {
        int r = n == 5 ? 3 : 4;
        submit(c->eng, req_prompts[r], req_prompt_len[r], &req_params[r], &req_out[r], NULL);
    }
}

START_TEST(test_batched_equals_alone)
{
    struct model m = {0};
    struct engine *eng;
    struct engine_stats st;
    /* 14 blocks of 8 tokens: each request fits alone (70 tokens at most),
     * all of them together (246) do not: preemption */
    struct engine_opts o = {.max_batch = 4, .max_queue = 8, .kv_block_tokens = 8, .prefill_chunk = 16};
    int want[64];

    load(&m, SMALL_MODEL);
    o.kv_cache_bytes = 14 * kv_cache_block_bytes(m.cfg.n_layers, m.cfg.n_kv_heads * m.cfg.head_dim, 8);
    eng = engine_for(&m, &o);
    for (int r = 0; r < N_REQ; r++) {
        for (int i = 0; i < req_prompt_len[r]; i++)
            req_prompts[r][i] = (i * (r + 2) * 31 + r * 57 + 1) % m.cfg.vocab_size;
        req_params[r] = (struct engine_params){.temperature = 0, .top_p = 1, .max_tokens = req_max_tokens[r],
                                               .ignore_eos = 1};
        collect_init(&req_out[r]);
        req_out[r].eng = eng;
    }
    req_out[0].on_token = join_late;
    for (int r = 0; r < 3; r++)
        submit(eng, req_prompts[r], req_prompt_len[r], &req_params[r], &req_out[r], NULL);
    for (int r = 0; r < N_REQ; r++)
        collect_wait(&req_out[r]);
    wait_idle(eng, &st);
    ck_assert_msg(st.preemptions > 0, "the small cache forced no preemption");
    ck_assert_int_eq(st.running, 0);
    ck_assert(st.kv_usage == 0.0);
    ck_assert_uint_eq(st.generated_tokens, 30 + 20 + 40 + 25 + 10);
    ck_assert_uint_eq(st.prompt_tokens, 3 + 40 + 17 + 1 + 60);
    for (int r = 0; r < N_REQ; r++) {
        struct collect *c = &req_out[r];

        ck_assert_int_eq(c->n_final, 1);
        ck_assert_int_eq(c->n_after_final, 0);
        ck_assert_int_eq(c->fin.finish, ENGINE_FINISH_LENGTH);
        ck_assert_int_eq(c->n, req_max_tokens[r]);
        ck_assert_int_eq(c->fin.completion_tokens, req_max_tokens[r]);
        ck_assert_int_eq(c->fin.prompt_tokens, req_prompt_len[r]);
        greedy_alone(&m, req_prompts[r], req_prompt_len[r], req_max_tokens[r], want);
        for (int i = 0; i < req_max_tokens[r]; i++)
            ck_assert_msg(c->ids[i] == want[i], "request %d token %d: %d batched, %d alone", r, i, c->ids[i],
                          want[i]);
        collect_destroy(c);
    }
    engine_destroy(eng);
    model_free(&m);
}
END_TEST

/* The same from stories260K: greedy from BOS through the engine, 64 tokens. */
START_TEST(test_engine_greedy_stories260k)
{
    const char *dir = getenv("LLMSCALE_SHARED");
    char path[4096];
    struct model m = {0};
    struct engine *eng;
    struct engine_params p = {.temperature = 0, .top_p = 1, .max_tokens = 64, .ignore_eos = 1};
    struct collect c;
    int bos = 1, want[64];
    FILE *f;

    snprintf(path, sizeof path, "%s/models/stories260K.bin", dir != NULL && dir[0] ? dir : "../shared");
    if ((f = fopen(path, "rb")) == NULL) {
        fprintf(stderr, "SKIP: %s is absent (set LLMSCALE_SHARED)\n", path);
        return;
    }
    fclose(f);
    load(&m, path);
    eng = engine_for(&m, NULL);
    collect_init(&c);
    submit(eng, &bos, 1, &p, &c, NULL);
    collect_wait(&c);
    greedy_alone(&m, &bos, 1, 64, want);
    ck_assert_int_eq(c.n, 64);
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(c.ids[i], want[i]);
    collect_destroy(&c);
    engine_destroy(eng);
    model_free(&m);
}
END_TEST

/* ---- sampling ----------------------------------------------------------------------------- */

START_TEST(test_seeded_sampling)
{
    struct model m = {0};
    struct engine *eng;
    struct collect a, b, d;
    struct engine_params p = {.temperature = 1.0f, .top_p = 0.95f, .top_k = 50, .seed = 42, .max_tokens = 40,
                              .ignore_eos = 1};
    int prompt[3] = {1, 7, 9}, same = 1;

    load(&m, SMALL_MODEL);
    eng = engine_for(&m, NULL);
    collect_init(&a);
    collect_init(&b);
    collect_init(&d);
    submit(eng, prompt, 3, &p, &a, NULL);
    submit(eng, prompt, 3, &p, &b, NULL); /* batched with a: same seed, same tokens */
    p.seed = 43;
    submit(eng, prompt, 3, &p, &d, NULL);
    collect_wait(&a);
    collect_wait(&b);
    collect_wait(&d);
    ck_assert_int_eq(a.n, 40);
    ck_assert_int_eq(memcmp(a.ids, b.ids, 40 * sizeof(int)), 0);
    for (int i = 0; i < 40; i++)
        same &= a.ids[i] == d.ids[i];
    ck_assert_msg(!same, "seeds 42 and 43 drew the same 40 tokens");
    collect_destroy(&a);
    collect_destroy(&b);
    collect_destroy(&d);
    engine_destroy(eng);
    model_free(&m);
}
END_TEST

/* ---- stop strings --------------------------------------------------------------------------- */

START_TEST(test_stop_strings)
{
    const char *dir = getenv("LLMSCALE_SHARED");
    char path[4096];
    struct model m = {0};
    struct tokenizer *tok;
    struct engine *eng;
    struct err e = {0};
    struct collect full, cut, none;
    struct engine_params p = {.temperature = 0, .top_p = 1, .max_tokens = 40, .ignore_eos = 1};
    const char *stop[2];
    char stop_str[8];
    const char *hit;
    int bos = 1;

    snprintf(path, sizeof path, "%s/models/tokenizer.bin", dir != NULL && dir[0] ? dir : "../shared");
    load(&m, "synthetic:dim=64,layers=1,heads=2,hidden=64,vocab=32000,seq=256,seed=9");
    tok = tokenizer_load(path, 32000, &e);
    if (tok == NULL) {
        fprintf(stderr, "SKIP: %s: %s\n", path, e.msg);
        model_free(&m);
        return;
    }
    m.tokenizer = tok;
    eng = engine_for(&m, NULL);
    collect_init(&full);
    submit(eng, &bos, 1, &p, &full, NULL);
    collect_wait(&full);
    ck_assert_uint_gt(full.text_len, 20);
    full.text[full.text_len] = '\0';

    /* a stop string from the middle of that text: the text stops before its first occurrence */
    memcpy(stop_str, full.text + full.text_len / 2, 3);
    stop_str[3] = '\0';
    hit = strstr(full.text, stop_str);
    stop[0] = "\x01never";
    stop[1] = stop_str;
    p.stop = stop;
    p.n_stop = 2;
    collect_init(&cut);
    submit(eng, &bos, 1, &p, &cut, NULL);
    collect_wait(&cut);
    ck_assert_int_eq(cut.fin.finish, ENGINE_FINISH_STOP);
    ck_assert_uint_eq(cut.text_len, (size_t)(hit - full.text));
    ck_assert_int_eq(memcmp(cut.text, full.text, cut.text_len), 0);
    ck_assert_int_lt(cut.n, 40);

    /* a stop string that never occurs changes nothing */
    p.n_stop = 1;
    collect_init(&none);
    submit(eng, &bos, 1, &p, &none, NULL);
    collect_wait(&none);
    ck_assert_int_eq(none.fin.finish, ENGINE_FINISH_LENGTH);
    ck_assert_uint_eq(none.text_len, full.text_len);
    ck_assert_int_eq(memcmp(none.text, full.text, full.text_len), 0);

    collect_destroy(&full);
    collect_destroy(&cut);
    collect_destroy(&none);
    engine_destroy(eng);
    m.tokenizer = NULL;
    tokenizer_free(tok);
    model_free(&m);
}
END_TEST

/* ---- cancellation, the queue, shutdown ------------------------------------------------------------- */

/* A hook that holds the engine thread until the test lets it go. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open, gate_reached;

static void gate_reset(void)
{
    gate_open = gate_reached = 0;
}

static void gate_wait_reached(void)
{
    pthread_mutex_lock(&gate_mu);
    while (!gate_reached)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

static void gate_release(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static void gate(struct collect *c, int n)
{
    pthread_mutex_lock(&gate_mu);
    gate_reached = 1;
    pthread_cond_broadcast(&gate_cv);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

/* Cancel the request itself at its third token. */
static void cancel_self(struct collect *c, int n)
{
    if (n == 3)
        engine_cancel(c->eng, *(uint64_t *)c->hook_arg);
}

START_TEST(test_cancel)
{
    struct model m = {0};
    struct engine *eng;
    struct engine_opts o = {.max_batch = 1};
    struct collect a, b;
    struct engine_params p = {.temperature = 0, .top_p = 1, .max_tokens = 100, .ignore_eos = 1};
    uint64_t id_a, id_b;
    int prompt = 1;

    load(&m, SMALL_MODEL);
    eng = engine_for(&m, &o);
    collect_init(&a);
    collect_init(&b);
    gate_reset();
    a.on_token = gate;
    submit(eng, &prompt, 1, &p, &a, &id_a);
    gate_wait_reached();
    submit(eng, &prompt, 1, &p, &b, &id_b); /* waits: the batch holds one */
    engine_cancel(eng, id_b);
    gate_release();
    collect_wait(&b);
    ck_assert_int_eq(b.fin.finish, ENGINE_FINISH_CANCELLED);
    ck_assert_int_eq(b.n, 0);
    collect_wait(&a);
    ck_assert_int_eq(a.fin.finish, ENGINE_FINISH_LENGTH);

    /* a running request cancelled at its third token */
    collect_destroy(&a);
    collect_init(&a);
    a.eng = eng;
    a.hook_arg = &id_a;
    a.on_token = cancel_self;
    submit(eng, &prompt, 1, &p, &a, &id_a);
    collect_wait(&a);
    ck_assert_int_eq(a.fin.finish, ENGINE_FINISH_CANCELLED);
    ck_assert_int_ge(a.n, 3);
    ck_assert_int_lt(a.n, 100);
    engine_cancel(eng, id_a);  /* already gone: nothing happens */
    engine_cancel(eng, 99999); /* never existed */
    ck_assert_int_eq(a.n_final, 1);
    collect_destroy(&a);
    collect_destroy(&b);
    engine_destroy(eng);
    model_free(&m);
}
END_TEST

START_TEST(test_queue_bound_and_shutdown)
{
    struct model m = {0};
    struct engine *eng;
    struct engine_opts o = {.max_batch = 1, .max_queue = 2};
    struct engine_params p = {.temperature = 0, .top_p = 1, .max_tokens = 50, .ignore_eos = 1};
    struct engine_stats st;
    struct collect c[4];
    struct err e = {0};
    int prompt = 1;

    load(&m, SMALL_MODEL);
    eng = engine_for(&m, &o);
    for (int i = 0; i < 4; i++)
        collect_init(&c[i]);
    gate_reset();
    c[0].on_token = gate;
    submit(eng, &prompt, 1, &p, &c[0], NULL);
    gate_wait_reached();
    /* the engine thread is held inside request 0's first token: two wait, the third is refused */
    submit(eng, &prompt, 1, &p, &c[1], NULL);
    submit(eng, &prompt, 1, &p, &c[2], NULL);
    ck_assert_int_eq(engine_submit(eng, &prompt, 1, &p, on_event, &c[3], NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "queue is full"));
    engine_get_stats(eng, &st);
    ck_assert_int_eq(st.waiting, 2);
    ck_assert_int_eq(st.running, 1);
    ck_assert_int_eq(st.max_queue, 2);
    ck_assert(st.kv_usage > 0);

    /* shutdown while all three are unfinished: each gets one final event */
    gate_release();
    engine_destroy(eng);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(c[i].n_final, 1);
        ck_assert_int_eq(c[i].n_after_final, 0);
    }
    ck_assert_int_eq(c[1].fin.finish == ENGINE_FINISH_CANCELLED || c[1].fin.finish == ENGINE_FINISH_LENGTH, 1);
    ck_assert_int_eq(c[3].n_final, 0);
    for (int i = 0; i < 4; i++)
        collect_destroy(&c[i]);
    model_free(&m);
}
END_TEST

/* ---- bad requests --------------------------------------------------------------------------------------- */

START_TEST(test_bad_requests)
{
    struct model m = {0};
    struct engine *eng;
    struct engine_params p = {.temperature = 0, .top_p = 1, .max_tokens = 5};
    struct engine_opts bad = {.backend = "nonesuch"};
    struct collect c;
    struct err e = {0};
    int prompt[200], bad_tok = 300;

    load(&m, SMALL_MODEL);
    ck_assert_ptr_null(engine_create(&m, &bad, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "nonesuch"));
    bad = (struct engine_opts){.kv_cache_bytes = 16};
    ck_assert_ptr_null(engine_create(&m, &bad, &e));
    eng = engine_for(&m, NULL);
    for (int i = 0; i < 200; i++)
        prompt[i] = i % 300;
    ck_assert_int_eq(engine_submit(eng, prompt, 0, &p, on_event, &c, NULL, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_int_eq(engine_submit(eng, &bad_tok, 1, &p, on_event, &c, NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "vocabulary"));
    p.max_tokens = 0;
    ck_assert_int_eq(engine_submit(eng, prompt, 3, &p, on_event, &c, NULL, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "max_tokens"));
    p.max_tokens = 5;

    /* longer than the context: an error event */
    collect_init(&c);
    submit(eng, prompt, 200, &p, &c, NULL);
    collect_wait(&c);
    ck_assert_int_eq(c.fin.finish, ENGINE_FINISH_ERROR);
    ck_assert_int_eq(c.fin.error_code, ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(c.error, "context"));
    collect_destroy(&c);

    /* a prompt that nearly fills the context ends with LENGTH at the context */
    collect_init(&c);
    p.max_tokens = 1000;
    p.ignore_eos = 1;
    submit(eng, prompt, 125, &p, &c, NULL);
    collect_wait(&c);
    ck_assert_int_eq(c.fin.finish, ENGINE_FINISH_LENGTH);
    ck_assert_int_eq(c.n, 128 - 125);
    collect_destroy(&c);
    engine_destroy(eng);
    model_free(&m);
}
END_TEST

/* ---- a failed forward pass -------------------------------------------------------------------------------- */

/* A step whose forward pass fails (the cuda backend's device errors;
 * injected here) ends its requests with ERROR and the error's text, frees
 * their blocks, and the engine goes on: the next request gets its tokens. */
START_TEST(test_failed_step)
{
    struct model m = {0};
    struct engine *eng;
    struct engine_stats st;
    struct engine_params p = {.temperature = 0, .top_p = 1, .max_tokens = 8, .ignore_eos = 1};
    struct collect a, b;
    int prompt[5] = {1, 5, 9, 33, 7}, want[8];

    load(&m, SMALL_MODEL);
    eng = engine_for(&m, NULL);
    engine_fail_next_steps(eng, 1, "device on fire");
    collect_init(&a);
    submit(eng, prompt, 5, &p, &a, NULL);
    collect_wait(&a);
    ck_assert_int_eq(a.fin.finish, ENGINE_FINISH_ERROR);
    ck_assert_int_eq(a.fin.error_code, ERR_SYSTEM);
    ck_assert_msg(strstr(a.error, "the forward pass failed: device on fire") != NULL, "error '%s'", a.error);
    ck_assert_int_eq(a.n, 0);
    wait_idle(eng, &st);
    ck_assert_int_eq(a.n_final, 1);
    ck_assert_int_eq(a.n_after_final, 0);
    ck_assert(st.kv_usage == 0.0);

    collect_init(&b);
    submit(eng, prompt, 5, &p, &b, NULL);
    collect_wait(&b);
    ck_assert_int_eq(b.fin.finish, ENGINE_FINISH_LENGTH);
    greedy_alone(&m, prompt, 5, 8, want);
    ck_assert_int_eq(b.n, 8);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(b.ids[i], want[i]);
    ck_assert_uint_eq(st.failed_steps, 1);
    ck_assert_int_eq(st.broken, 0);
    collect_destroy(&a);
    collect_destroy(&b);
    engine_destroy(eng);
    model_free(&m);
}
END_TEST

/* Submit PROMPT into C and wait for its final event; returns its finish. */
static enum engine_finish run_one(struct engine *eng, const int *prompt, int n, const struct engine_params *p,
                                  struct collect *c)
{
    collect_init(c);
    submit(eng, prompt, n, p, c, NULL);
    collect_wait(c);
    return c->fin.finish;
}

/* ENGINE_BROKEN_STEPS failed steps in a row break the engine for good (a
 * device error that sticks); fewer do not, and a step that succeeds starts
 * the count again.  Broken: the requests still waiting end with the error,
 * new ones are refused, and engine_broken says why. */
START_TEST(test_broken_after_failed_steps)
{
    struct model m = {0};
    struct engine *eng;
    struct engine_opts o = {.max_batch = 1, .max_queue = 8};
    struct engine_stats st;
    struct engine_params p = {.temperature = 0, .top_p = 1, .max_tokens = 4, .ignore_eos = 1};
    struct collect c[8], blocker;
    struct err e = {0};
    char why[512];
    int prompt[3] = {7, 11, 13};

    load(&m, SMALL_MODEL);
    eng = engine_for(&m, &o);

    /* two failures, a success, two failures, a success: never broken (with
     * no reset the fourth failure would break it) */
    for (int round = 0; round < 2; round++) {
        engine_fail_next_steps(eng, ENGINE_BROKEN_STEPS - 1, "device hiccup");
        for (int i = 0; i < ENGINE_BROKEN_STEPS - 1; i++) {
            ck_assert_int_eq(run_one(eng, prompt, 3, &p, &c[i]), ENGINE_FINISH_ERROR);
            ck_assert_ptr_nonnull(strstr(c[i].error, "device hiccup"));
            collect_destroy(&c[i]);
        }
        ck_assert_int_eq(engine_broken(eng, why, sizeof why), 0);
        ck_assert_int_eq(run_one(eng, prompt, 3, &p, &c[0]), ENGINE_FINISH_LENGTH);
        ck_assert_int_eq(c[0].n, 4);
        collect_destroy(&c[0]);
    }
    wait_idle(eng, &st);
    ck_assert_uint_eq(st.failed_steps, 2 * (ENGINE_BROKEN_STEPS - 1));
    ck_assert_int_eq(st.broken, 0);

    /* hold the engine in a step while eight requests queue behind the batch
     * of one; then three steps fail in a row: the first three requests end
     * with the step's error, the other five with the engine's */
    collect_init(&blocker);
    gate_reset();
    blocker.on_token = gate;
    p.max_tokens = 1;
    submit(eng, prompt, 3, &p, &blocker, NULL);
    gate_wait_reached();
    p.max_tokens = 4;
    for (int i = 0; i < 8; i++) {
        collect_init(&c[i]);
        submit(eng, prompt, 3, &p, &c[i], NULL);
    }
    engine_fail_next_steps(eng, ENGINE_BROKEN_STEPS, "illegal memory access");
    gate_release();
    collect_wait(&blocker);
    ck_assert_int_eq(blocker.fin.finish, ENGINE_FINISH_LENGTH);
    for (int i = 0; i < 8; i++) {
        collect_wait(&c[i]);
        ck_assert_int_eq(c[i].n_final, 1);
        ck_assert_int_eq(c[i].n, 0);
        ck_assert_int_eq(c[i].fin.finish, ENGINE_FINISH_ERROR);
        ck_assert_int_eq(c[i].fin.error_code, ERR_SYSTEM);
        ck_assert_msg(strstr(c[i].error, "illegal memory access") != NULL, "request %d: '%s'", i, c[i].error);
        if (i < ENGINE_BROKEN_STEPS)
            ck_assert_msg(strncmp(c[i].error, "the forward pass failed", 23) == 0, "request %d: '%s'", i,
                          c[i].error);
        else
            ck_assert_msg(strncmp(c[i].error, "engine broken: ", 15) == 0, "request %d: '%s'", i, c[i].error);
    }

    ck_assert_int_eq(engine_broken(eng, why, sizeof why), 1);
    ck_assert_msg(strcmp(why, "the forward pass failed: illegal memory access (3 steps in a row)") == 0, "why '%s'",
                  why);
    ck_assert_int_eq(engine_broken(eng, NULL, 0), 1);
    wait_idle(eng, &st);
    ck_assert_int_eq(st.broken, 1);
    ck_assert_uint_eq(st.failed_steps, 2 * (ENGINE_BROKEN_STEPS - 1) + ENGINE_BROKEN_STEPS);
    ck_assert(st.kv_usage == 0.0);

    /* refused from now on, with the reason; it stays broken */
    ck_assert_int_eq(engine_submit(eng, prompt, 3, &p, on_event, &c[0], NULL, &e), -1);
    ck_assert_int_eq(e.code, ERR_SYSTEM);
    ck_assert_msg(strstr(e.msg, "engine broken: the forward pass failed: illegal memory access") != NULL, "'%s'",
                  e.msg);
    nanosleep(&(struct timespec){0, 20000000}, NULL);
    ck_assert_int_eq(engine_broken(eng, NULL, 0), 1);
    for (int i = 0; i < 8; i++)
        collect_destroy(&c[i]);
    collect_destroy(&blocker);
    engine_destroy(eng);
    model_free(&m);
}
END_TEST

/* ---- chunked prefill beside decoding ------------------------------------------------------------------ */

static uint64_t stall_steps[MAX_IDS];
static int stall_prompt[100];
static struct collect stall_b;
static uint64_t stall_b_first;

/* Request B's hook: the step of its first token. */
static void stall_b_hook(struct collect *c, int n)
{
    struct engine_stats st;

    engine_get_stats(c->eng, &st);
    if (n == 1)
        stall_b_first = st.steps;
}

/* Request A's hook: note the step of each token; B's long prompt joins at
 * A's third token. */
static void stall_hook(struct collect *c, int n)
{
    struct engine_stats st;
    struct engine_params p = {.temperature = 0, .top_p = 1, .max_tokens = 2, .ignore_eos = 1};

    engine_get_stats(c->eng, &st);
    stall_steps[n - 1] = st.steps;
    if (n == 3)
        submit(c->eng, stall_prompt, 100, &p, &stall_b, NULL);
}

START_TEST(test_decode_never_stalls)
{
    struct model m = {0};
    struct engine *eng;
    struct engine_opts o = {.max_batch = 4, .prefill_chunk = 16};
    struct engine_params p = {.temperature = 0, .top_p = 1, .max_tokens = 30, .ignore_eos = 1};
    struct collect a;
    int prompt = 1;

    load(&m, SMALL_MODEL);
    eng = engine_for(&m, &o);
    for (int i = 0; i < 100; i++)
        stall_prompt[i] = (i * 29 + 3) % 300;
    collect_init(&a);
    collect_init(&stall_b);
    stall_b.eng = eng;
    stall_b.on_token = stall_b_hook;
    a.eng = eng;
    a.on_token = stall_hook;
    submit(eng, &prompt, 1, &p, &a, NULL);
    collect_wait(&a);
    collect_wait(&stall_b);
    ck_assert_int_eq(a.n, 30);
    ck_assert_int_eq(stall_b.n, 2);
    /* one token of A in every step, while B's 100 prompt tokens went in 16 at a time */
    for (int i = 1; i < 30; i++)
        ck_assert_msg(stall_steps[i] == stall_steps[i - 1] + 1, "A's token %d came %llu steps after the one before",
                      i, (unsigned long long)(stall_steps[i] - stall_steps[i - 1]));
    /* B joined in the step after A's third token; its prompt took 7 steps of 16 */
    ck_assert_msg(stall_b_first - stall_steps[2] >= 7, "B's first token %llu steps after it joined",
                  (unsigned long long)(stall_b_first - stall_steps[2]));
    collect_destroy(&a);
    collect_destroy(&stall_b);
    engine_destroy(eng);
    model_free(&m);
}
END_TEST

/* ---- many threads at once ------------------------------------------------------------------------------ */

#define STRESS_THREADS 4
#define STRESS_REQS 12

struct stress_arg {
    struct engine *eng;
    int seed;
    int refused;
    struct collect out[STRESS_REQS];
    int max_tokens[STRESS_REQS];
    int submitted[STRESS_REQS];
};

/* Submit requests of assorted lengths, cancelling some at once, some
 * later, from one of several threads. */
static void *stress_thread(void *p)
{
    struct stress_arg *a = p;
    uint64_t ids[STRESS_REQS];
    int prompt[40];

    for (int i = 0; i < STRESS_REQS; i++) {
        struct engine_params par = {.temperature = 0.7f, .top_p = 0.9f, .seed = (uint64_t)(a->seed * 100 + i),
                                    .max_tokens = 1 + (a->seed * 7 + i * 5) % 30, .ignore_eos = i % 2};
        int n = 1 + (a->seed * 11 + i * 13) % 40;
        struct err e = {0};

        for (int j = 0; j < n; j++)
            prompt[j] = (j * 17 + i + a->seed) % 300;
        collect_init(&a->out[i]);
        a->max_tokens[i] = par.max_tokens;
        if (engine_submit(a->eng, prompt, n, &par, on_event, &a->out[i], &ids[i], &e) == 0) {
            a->submitted[i] = 1;
            if (i % 4 == 1)
                engine_cancel(a->eng, ids[i]);
        } else {
            a->refused++;
        }
        if (i % 4 == 3 && a->submitted[i - 2]) {
            nanosleep(&(struct timespec){0, 200000}, NULL);
            engine_cancel(a->eng, ids[i - 2]);
        }
    }
    for (int i = 0; i < STRESS_REQS; i++)
        if (a->submitted[i])
            collect_wait(&a->out[i]);
    return NULL;
}

START_TEST(test_concurrent_submitters)
{
    struct model m = {0};
    struct engine *eng;
    struct engine_opts o = {.max_batch = 6, .max_queue = 16, .kv_block_tokens = 8, .prefill_chunk = 8};
    struct engine_stats st;
    static struct stress_arg args[STRESS_THREADS];
    pthread_t th[STRESS_THREADS];
    uint64_t completion = 0;

    load(&m, SMALL_MODEL);
    o.kv_cache_bytes = 20 * kv_cache_block_bytes(m.cfg.n_layers, m.cfg.n_kv_heads * m.cfg.head_dim, 8);
    eng = engine_for(&m, &o);
    for (int t = 0; t < STRESS_THREADS; t++) {
        memset(&args[t], 0, sizeof args[t]);
        args[t].eng = eng;
        args[t].seed = t + 1;
        ck_assert_int_eq(pthread_create(&th[t], NULL, stress_thread, &args[t]), 0);
    }
    for (int t = 0; t < STRESS_THREADS; t++)
        pthread_join(th[t], NULL);
    wait_idle(eng, &st);
    for (int t = 0; t < STRESS_THREADS; t++) {
        for (int i = 0; i < STRESS_REQS; i++) {
            struct collect *c = &args[t].out[i];

            if (args[t].submitted[i]) {
                ck_assert_int_eq(c->n_final, 1);
                ck_assert_int_eq(c->n_after_final, 0);
                ck_assert_int_le(c->n, args[t].max_tokens[i]);
                ck_assert_int_eq(c->fin.completion_tokens, c->n);
                if (c->fin.finish == ENGINE_FINISH_LENGTH)
                    ck_assert_int_eq(c->n, args[t].max_tokens[i]);
                if (c->fin.finish != ENGINE_FINISH_CANCELLED)
                    completion += (uint64_t)c->n;
            }
            collect_destroy(c);
        }
    }
    ck_assert(st.kv_usage == 0.0);
    ck_assert_uint_ge(st.generated_tokens, completion);
    engine_destroy(eng);
    model_free(&m);
}
END_TEST

static Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("engine");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_batched_equals_alone);
    tcase_add_test(tc, test_engine_greedy_stories260k);
    tcase_add_test(tc, test_seeded_sampling);
    tcase_add_test(tc, test_stop_strings);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_queue_bound_and_shutdown);
    tcase_add_test(tc, test_bad_requests);
    tcase_add_test(tc, test_concurrent_submitters);
    tcase_add_test(tc, test_decode_never_stalls);
    tcase_add_test(tc, test_failed_step);
    tcase_add_test(tc, test_broken_after_failed_steps);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(engine_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
