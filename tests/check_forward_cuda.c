/* check_forward_cuda.c -- llmserve's forward pass on the device
 * (server/forward_cuda.cu) against the CPU's (server/model.c).
 *
 * Both passes run the same steps over one KV cache's block tables (the CPU
 * one writes the host cache, the CUDA one its device copy): steps that
 * prefill prompts in chunks (logits asked for at a chunk's end now and
 * then, not only at the prompt's), that mix prefill chunks with decoding,
 * and batched decoding of sequences at different positions, over block
 * tables made non-identity by scrambling the cache's free list.  Models are
 * synthetic, of awkward shapes: grouped-query and multi-query heads, head
 * sizes 10 (no float4 path), 16, 64 and 128, vocabularies and hidden sizes
 * that are no multiple of a tile, and contexts past decode attention's
 * first split (256 positions); with float32, int8 (Q8, some matrices left
 * float32) and bf16 weights.  Then the engine with backend "cuda" generates
 * the greedy tokens of the CPU, with chunked prefill and preemption; and
 * the error paths.
 *
 * Error metric, as check_forward.c: normwise over a row of logits,
 *     max_i |gpu_i - cpu_i| / max_i |cpu_i|.
 * Tolerances: float32 1e-3 (the same products summed in other orders);
 * bf16 2e-2 (above 8 rows the device GEMM rounds the activations to bf16,
 * the CPU keeps them float32); Q8 5e-2 (the CPU quantises the activations
 * to int8 per group, the device does not).  Greedy tokens (float32) must
 * agree unless the CPU's two best logits are within 1e-4 of each other.
 * The device's logits are filled with NaN before each step, so a row it
 * forgets to write fails.
 *
 * Without a CUDA device the program prints why and exits 77 (automake's
 * SKIP).  The tests run in one process (CK_NOFORK): a CUDA context does not
 * survive fork(). */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cuda/kn_cuda.h"
#include "server/engine.h"
#include "server/forward.h"
#include "server/kvcache.h"
#include "server/model.h"

#define MAX_SEQS 48
#define MAX_LEN 640

/* ---- helpers ------------------------------------------------------------------ */

static double normwise_err(const float *a, const float *b, int n)
{
    double num = 0, den = 0;

    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);

        if (!(d <= num)) /* NaN too */
            num = d;
        if (fabs((double)b[i]) > den)
            den = fabs((double)b[i]);
    }
    return den > 0 ? num / den : num;
}

static int argmax(const float *x, int n)
{
    int best = 0;

    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* The device's greedy token is the CPU's, or the CPU's two candidates tie
 * within 1e-4 of its largest logit. */
static int same_greedy(const float *gpu, const float *cpu, int n)
{
    int a = argmax(cpu, n), b = argmax(gpu, n);
    double big = 0;

    for (int i = 0; i < n; i++)
        if (fabs((double)cpu[i]) > big)
            big = fabs((double)cpu[i]);
    return a == b || cpu[a] - cpu[b] <= 1e-4 * big;
}

enum wtype { W_F32, W_Q8, W_BF16 };
static const char *const wtype_name[] = {"f32", "q8", "bf16"};

/* Test-owned bf16 copies of a model's matrices (freed by model_unload). */
static void *bf16_bufs[256];
static int n_bf16_bufs;

/* W (float32) re-made as bf16 in a buffer of ours. */
static void to_bf16(struct kn_weights *w)
{
    size_t n = (size_t)w->n * w->k;
    uint16_t *b = malloc(n * sizeof *b);

    ck_assert_ptr_nonnull(b);
    ck_assert_int_lt(n_bf16_bufs, 256);
    ck_assert_int_eq(w->dtype, KN_F32);
    kn_f32_to_bf16(b, w->data, n);
    bf16_bufs[n_bf16_bufs++] = b;
    w->dtype = KN_BF16;
    w->data = b;
}

/* Load SPEC with weights of type WT (bf16: every matrix, the embedding and
 * the classifier, converted here). */
static void model_for(struct model *m, const char *spec, enum wtype wt)
{
    struct model_load_opts o = {.quantize_q8 = wt == W_Q8};
    struct err e = {0};
    int tied;

    ck_assert_msg(model_load(m, spec, &o, &e) == 0, "%s: %s", spec, e.msg);
    if (wt != W_BF16)
        return;
    tied = m->classifier.data == m->tok_embedding.data;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        struct model_layer *L = &m->layers[l];
        to_bf16(&L->wq);
        to_bf16(&L->wk);
        to_bf16(&L->wv);
        to_bf16(&L->wo);
        to_bf16(&L->w1);
        to_bf16(&L->w2);
        to_bf16(&L->w3);
    }
    to_bf16(&m->tok_embedding);
    if (tied)
        m->classifier = m->tok_embedding;
    else
        to_bf16(&m->classifier);
}

static void model_unload(struct model *m)
{
    model_free(m);
    for (int i = 0; i < n_bf16_bufs; i++)
        free(bf16_bufs[i]);
    n_bf16_bufs = 0;
}

/* Hand out the cache's blocks in a scrambled order from now on: take them
 * all, give them back with a stride coprime to their count. */
static void scramble_blocks(struct kv_cache *c)
{
    int n = c->n_blocks, stride = 1, *ids = malloc((size_t)n * sizeof *ids);
    const int strides[] = {7, 5, 11, 13, 3};

    ck_assert_ptr_nonnull(ids);
    for (int i = 0; i < 5 && stride == 1; i++) {
        int a = strides[i], b = n;

        while (b != 0) { /* gcd */
            int t = a % b;
            a = b;
            b = t;
        }
        if (a == 1)
            stride = strides[i];
    }
    for (int i = 0; i < n; i++)
        ids[i] = kv_cache_alloc_block(c);
    for (int i = 0; i < n; i++)
        kv_cache_free_block(c, ids[((size_t)i * stride + 3) % n]);
    free(ids);
}

/* The CPU and the CUDA forward pass over one model and one cache. */
struct pair {
    struct model m;
    struct kv_cache c;
    struct forward *cpu, *gpu;
    const char *spec;
    enum wtype wt;
};

static void pair_init(struct pair *p, const char *spec, enum wtype wt, int block_tokens, int n_blocks,
                      int max_tokens)
{
    struct err e = {0};

    memset(p, 0, sizeof *p);
    p->spec = spec;
    p->wt = wt;
    model_for(&p->m, spec, wt);
    ck_assert_msg(kv_cache_init(&p->c, p->m.cfg.n_layers, p->m.cfg.n_kv_heads * p->m.cfg.head_dim, block_tokens,
                                n_blocks, &e) == 0, "%s", e.msg);
    scramble_blocks(&p->c);
    p->cpu = forward_create(&p->m, &p->c, max_tokens, kn_backend_find("cpu"), &e);
    ck_assert_msg(p->cpu != NULL, "%s", e.msg);
    p->gpu = forward_create(&p->m, &p->c, max_tokens, kn_cuda_backend(), &e);
    ck_assert_msg(p->gpu != NULL, "%s: %s", spec, e.msg);
}

static void pair_free(struct pair *p)
{
    forward_free(p->cpu);
    forward_free(p->gpu);
    kv_cache_free(&p->c);
    model_unload(&p->m);
}

/* ---- scripted steps ---------------------------------------------------------------- */

struct script_seq {
    int tokens[MAX_LEN];
    int n_prompt, n_tokens, n_cached, generated;
    struct kv_seq kv;
};

/* N sequences with prompts of PROMPT_LEN[i] tokens, sequence i joining at
 * step i % 3: each step every sequence still going gives its next chunk
 * (at most CHUNK prompt tokens, or its one decode token); logits are asked
 * for at a prompt's end and when decoding, and on odd steps at the end of
 * any chunk.  Both passes run each step; every row of logits asked for must
 * agree within TOL (and, with CHECK_GREEDY, the greedy tokens).  Decoding
 * feeds the CPU's greedy token to both, GEN tokens per sequence. */
static void run_script(struct pair *p, int n, const int *prompt_len, int chunk, int gen, double tol,
                       int check_greedy)
{
    static struct script_seq sq[MAX_SEQS];
    struct forward_seq fc[MAX_SEQS], fg[MAX_SEQS];
    int idx[MAX_SEQS], V = p->m.cfg.vocab_size, steps = 0;
    float *lc = malloc((size_t)MAX_SEQS * V * sizeof *lc), *lg = malloc((size_t)MAX_SEQS * V * sizeof *lg);
    struct err e = {0};

    ck_assert(n <= MAX_SEQS);
    ck_assert_ptr_nonnull(lc);
    ck_assert_ptr_nonnull(lg);
    for (int s = 0; s < n; s++) {
        ck_assert(prompt_len[s] + gen <= MAX_LEN && prompt_len[s] + gen <= p->m.cfg.seq_len);
        memset(&sq[s], 0, sizeof sq[s]);
        for (int i = 0; i < prompt_len[s]; i++)
            sq[s].tokens[i] = (int)(((unsigned)i * 2654435761u + (unsigned)s * 40503u + 17u) % (unsigned)V);
        sq[s].n_prompt = sq[s].n_tokens = prompt_len[s];
        kv_seq_init(&sq[s].kv);
    }
    for (int step = 0;; step++) {
        int k = 0, going = 0;

        for (int s = 0; s < n; s++) {
            struct script_seq *q = &sq[s];
            int left, take, want;

            if (q->generated >= gen)
                continue;
            going++;
            if (step < s % 3)
                continue;
            left = q->n_tokens - q->n_cached;
            take = left < chunk ? left : chunk;
            want = q->n_cached + take == q->n_tokens || step % 2 == 1;
            ck_assert_int_eq(kv_seq_reserve(&p->c, &q->kv, q->n_cached + take), 0);
            fc[k] = (struct forward_seq){.tokens = q->tokens + q->n_cached, .n_tokens = take, .pos0 = q->n_cached,
                                         .kv = &q->kv, .logits = want ? lc + (size_t)k * V : NULL};
            fg[k] = fc[k];
            fg[k].logits = want ? lg + (size_t)k * V : NULL;
            idx[k++] = s;
        }
        if (going == 0)
            break;
        if (k == 0)
            continue;
        for (size_t i = 0; i < (size_t)k * V; i++)
            lg[i] = NAN;
        forward_batch(p->cpu, fc, k);
        ck_assert_msg(forward_batch_checked(p->gpu, fg, k, &e) == 0, "%s %s step %d: %s", p->spec,
                      wtype_name[p->wt], step, e.msg);
        steps++;
        for (int j = 0; j < k; j++) {
            struct script_seq *q = &sq[idx[j]];
            double err;

            q->n_cached += fc[j].n_tokens;
            if (fc[j].logits == NULL)
                continue;
            err = normwise_err(fg[j].logits, fc[j].logits, V);
            ck_assert_msg(err < tol, "%s %s step %d, sequence %d (%d tokens at %d): error %g (tolerance %g)",
                          p->spec, wtype_name[p->wt], step, idx[j], fc[j].n_tokens, fc[j].pos0, err, tol);
            if (q->n_cached < q->n_tokens)
                continue; /* mid-prompt */
            if (check_greedy)
                ck_assert_msg(same_greedy(fg[j].logits, fc[j].logits, V),
                              "%s step %d, sequence %d: greedy token %d on the device, %d on the CPU", p->spec, step,
                              idx[j], argmax(fg[j].logits, V), argmax(fc[j].logits, V));
            q->tokens[q->n_tokens++] = argmax(fc[j].logits, V);
            q->generated++;
        }
    }
    ck_assert_int_gt(steps, 0);
    for (int s = 0; s < n; s++)
        kv_seq_free(&p->c, &sq[s].kv);
    free(lc);
    free(lg);
}

/* Blocks of BT tokens that N sequences of PROMPT_LEN + GEN tokens need. */
static int blocks_needed(int n, const int *prompt_len, int gen, int bt)
{
    int b = 0;

    for (int s = 0; s < n; s++)
        b += (prompt_len[s] + gen + bt - 1) / bt;
    return b;
}

/* One shape of the tests. */
struct shape {
    const char *spec;
    int n;
    int prompt_len[4];
    int chunk, gen, block_tokens;
};

static const struct shape shapes[] = {
    /* GQA 3:1, head_dim 16, vocab and hidden no multiple of a tile */
    {"synthetic:dim=96,layers=2,heads=6,kv_heads=2,hidden=200,vocab=333,seq=160,seed=5", 4, {7, 40, 1, 23}, 16, 6,
     16},
    /* head_dim 10 (the kernels' scalar paths), blocks of 8 */
    {"synthetic:dim=60,layers=2,heads=6,kv_heads=3,hidden=130,vocab=257,seq=96,seed=2", 3, {33, 5, 12}, 7, 5, 8},
    /* head_dim 64, a context past decode's first split (256) */
    {"synthetic:dim=256,layers=2,heads=4,kv_heads=2,hidden=512,vocab=1000,seq=600,seed=4", 3, {300, 20, 1}, 128, 8,
     16},
    /* head_dim 128, multi-query, blocks of 32 */
    {"synthetic:dim=512,layers=1,heads=4,kv_heads=1,hidden=1024,vocab=515,seq=400,seed=6", 2, {270, 9}, 64, 4, 32},
};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static void run_shape(const struct shape *sh, enum wtype wt)
{
    static const double tol[] = {1e-3, 5e-2, 2e-2};
    struct pair p;
    int blocks = blocks_needed(sh->n, sh->prompt_len, sh->gen, sh->block_tokens) + 3;

    pair_init(&p, sh->spec, wt, sh->block_tokens, blocks, sh->n * sh->chunk);
    run_script(&p, sh->n, sh->prompt_len, sh->chunk, sh->gen, tol[wt], wt == W_F32);
    pair_free(&p);
}

START_TEST(test_steps_f32)
{
    run_shape(&shapes[_i], W_F32);
}
END_TEST

START_TEST(test_steps_q8)
{
    run_shape(&shapes[_i], W_Q8);
}
END_TEST

START_TEST(test_steps_bf16)
{
    run_shape(&shapes[_i], W_BF16);
}
END_TEST

/* 40 sequences, more than the classifier's rows at a time (32), some
 * asking for no logits in a step, prompts of 1 to 5 tokens. */
START_TEST(test_many_sequences)
{
    const struct shape *sh = &shapes[0];
    int lens[40];
    struct pair p;

    for (int s = 0; s < 40; s++)
        lens[s] = 1 + s % 5;
    pair_init(&p, sh->spec, W_F32, 16, blocks_needed(40, lens, 3, 16) + 1, 40 * 2);
    run_script(&p, 40, lens, 2, 3, 1e-3, 1);
    pair_free(&p);
}
END_TEST

/* ---- creation and the error paths ------------------------------------------------------- */

START_TEST(test_create_and_errors)
{
    const struct kn_backend *cuda = kn_cuda_backend();
    struct model m = {0};
    struct kv_cache meta, odd;
    struct kv_seq s;
    struct forward *f;
    struct err e = {0};
    float *logits;
    int tok = 3, bad = 333, V;
    int32_t block;

    ck_assert_ptr_nonnull(cuda);
    ck_assert_str_eq(cuda->name, "cuda");
    ck_assert(forward_backend_on_device(cuda));
    ck_assert_ptr_eq(forward_backend("cuda", &e), cuda);
    ck_assert_ptr_eq(forward_backend("auto", &e), cuda);
    model_for(&m, shapes[0].spec, W_F32);
    V = m.cfg.vocab_size;
    logits = malloc((size_t)V * sizeof *logits);

    /* a cache without host storage serves the device pass only */
    ck_assert_int_eq(kv_cache_init_meta(&meta, m.cfg.n_layers, m.cfg.n_kv_heads * m.cfg.head_dim, 16, 4, &e), 0);
    ck_assert_ptr_null(meta.k);
    ck_assert_ptr_null(forward_create(&m, &meta, 8, kn_backend_find("cpu"), &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "no host storage"));
    /* blocks the attention kernels cannot page */
    ck_assert_int_eq(kv_cache_init_meta(&odd, m.cfg.n_layers, m.cfg.n_kv_heads * m.cfg.head_dim, 12, 4, &e), 0);
    ck_assert_ptr_null(forward_create(&m, &odd, 8, cuda, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "power of two"));
    kv_cache_free(&odd);

    f = forward_create(&m, &meta, 8, cuda, &e);
    ck_assert_msg(f != NULL, "%s", e.msg);
    kv_seq_init(&s);
    ck_assert_int_eq(kv_seq_reserve(&meta, &s, 2), 0);
    {
        struct forward_seq fs = {.tokens = &bad, .n_tokens = 1, .pos0 = 0, .kv = &s, .logits = logits};

        /* refused before anything runs: the next step still works */
        ck_assert_int_eq(forward_batch_checked(f, &fs, 1, &e), -1);
        ck_assert_int_eq(e.code, ERR_INPUT);
        ck_assert_ptr_nonnull(strstr(e.msg, "vocabulary"));
        fs.tokens = &tok;
        fs.pos0 = 16; /* past the sequence's one block */
        ck_assert_int_eq(forward_batch_checked(f, &fs, 1, &e), -1);
        ck_assert_ptr_nonnull(strstr(e.msg, "blocks hold"));
        fs.pos0 = 0;
        block = s.blocks[0];
        s.blocks[0] = 99; /* not a block of this cache */
        ck_assert_int_eq(forward_batch_checked(f, &fs, 1, &e), -1);
        ck_assert_ptr_nonnull(strstr(e.msg, "outside the cache"));
        s.blocks[0] = block;
        logits[0] = NAN;
        ck_assert_msg(forward_batch_checked(f, &fs, 1, &e) == 0, "%s", e.msg);
        ck_assert(isfinite(logits[0]));
    }
    kv_seq_free(&meta, &s);
    forward_free(f);
    kv_cache_free(&meta);
    free(logits);
    model_unload(&m);
}
END_TEST

/* ---- the engine ---------------------------------------------------------------------------- */

#define ENG_REQ 4
struct gen_out {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ids[64];
    int n, done;
    enum engine_finish finish;
    char error[256];
};

static void on_event(void *ctx, const struct engine_event *ev)
{
    struct gen_out *o = ctx;

    pthread_mutex_lock(&o->mu);
    if (ev->finish == ENGINE_FINISH_NONE && o->n < 64)
        o->ids[o->n++] = ev->token;
    if (ev->finish != ENGINE_FINISH_NONE) {
        o->finish = ev->finish;
        if (ev->error != NULL)
            snprintf(o->error, sizeof o->error, "%s", ev->error);
        o->done = 1;
        pthread_cond_broadcast(&o->cv);
    }
    pthread_mutex_unlock(&o->mu);
}

/* Run ENG_REQ greedy requests at once through an engine on BACKEND with a
 * KV cache of KV_BLOCKS blocks of 8 (0: the default); their ids into OUT. */
static void engine_run(struct model *m, const char *backend, int kv_blocks, struct gen_out *out)
{
    static const int lens[ENG_REQ] = {3, 40, 17, 1}, max_tokens[ENG_REQ] = {20, 12, 16, 10};
    struct engine_opts o = {.max_batch = 4, .max_queue = 8, .kv_block_tokens = 8, .prefill_chunk = 16,
                            .backend = backend};
    struct err e = {0};
    struct engine *eng;

    if (kv_blocks > 0)
        o.kv_cache_bytes = (size_t)kv_blocks * kv_cache_block_bytes(m->cfg.n_layers,
                                                                    m->cfg.n_kv_heads * m->cfg.head_dim, 8);
    eng = engine_create(m, &o, &e);
    ck_assert_msg(eng != NULL, "%s: %s", backend, e.msg);
    for (int r = 0; r < ENG_REQ; r++) {
        struct engine_params p = {.temperature = 0, .top_p = 1, .max_tokens = max_tokens[r], .ignore_eos = 1};
        int prompt[64];

        for (int i = 0; i < lens[r]; i++)
            prompt[i] = (i * (r + 2) * 31 + r * 57 + 1) % m->cfg.vocab_size;
        memset(&out[r], 0, sizeof out[r]);
        pthread_mutex_init(&out[r].mu, NULL);
        pthread_cond_init(&out[r].cv, NULL);
        ck_assert_msg(engine_submit(eng, prompt, lens[r], &p, on_event, &out[r], NULL, &e) == 0, "%s", e.msg);
    }
    for (int r = 0; r < ENG_REQ; r++) {
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 60;
        pthread_mutex_lock(&out[r].mu);
        while (!out[r].done)
            ck_assert_msg(pthread_cond_timedwait(&out[r].cv, &out[r].mu, &until) == 0 || out[r].done,
                          "%s: no final event within 60 s", backend);
        pthread_mutex_unlock(&out[r].mu);
        ck_assert_msg(out[r].finish == ENGINE_FINISH_LENGTH, "%s: request %d ended with %d (%s)", backend, r,
                      (int)out[r].finish, out[r].error);
    }
    engine_destroy(eng);
    for (int r = 0; r < ENG_REQ; r++) {
        pthread_mutex_destroy(&out[r].mu);
        pthread_cond_destroy(&out[r].cv);
    }
}

/* Greedy tokens through the engine: "cuda" gives what "cpu" gives, with a
 * roomy cache and with one small enough to force preemption. */
START_TEST(test_engine_cuda_equals_cpu)
{
    struct model m = {0};
    struct gen_out cpu[ENG_REQ], gpu[ENG_REQ];
    const int kv_blocks[2] = {0, 12};

    model_for(&m, shapes[0].spec, W_F32);
    engine_run(&m, "cpu", 0, cpu);
    for (int k = 0; k < 2; k++) {
        engine_run(&m, "cuda", kv_blocks[k], gpu);
        for (int r = 0; r < ENG_REQ; r++) {
            ck_assert_int_eq(gpu[r].n, cpu[r].n);
            for (int i = 0; i < cpu[r].n; i++)
                ck_assert_msg(gpu[r].ids[i] == cpu[r].ids[i], "cache %d blocks, request %d token %d: %d cuda, %d cpu",
                              kv_blocks[k], r, i, gpu[r].ids[i], cpu[r].ids[i]);
        }
    }
    model_unload(&m);
}
END_TEST

/* ---- main -------------------------------------------------------------------------------------- */

static Suite *suite_forward_cuda(void)
{
    Suite *s = suite_create("forward_cuda");
    TCase *tc = tcase_create("forward_cuda");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_create_and_errors);
    tcase_add_loop_test(tc, test_steps_f32, 0, N_SHAPES);
    tcase_add_loop_test(tc, test_steps_q8, 0, N_SHAPES);
    tcase_add_loop_test(tc, test_steps_bf16, 0, N_SHAPES);
    tcase_add_test(tc, test_many_sequences);
    tcase_add_test(tc, test_engine_cuda_equals_cpu);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (kn_cuda_device_count() == 0) {
        printf("check_forward_cuda: skipped: no CUDA device (%s)\n", kn_cuda_error());
        return 77;
    }
    if (kn_cuda_init(0) != 0) {
        printf("check_forward_cuda: cannot use device 0: %s\n", kn_cuda_error());
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(suite_forward_cuda());
    srunner_set_fork_status(sr, CK_NOFORK); /* a CUDA context does not survive fork() */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
