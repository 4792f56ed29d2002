/* model.c -- the forward pass of the Llama architecture, written to read top
 * to bottom like llama2.c's run.c, over a batch of sequences and the paged KV
 * cache (see forward.h).  The speed comes from the kernels it calls: every
 * weight matmul takes all T tokens of the step at once.
 *
 * Shapes: x is (T, dim), the residual stream of the step's T tokens, in the
 * order of the sequences and of their tokens; q is (T, n_heads, head_dim),
 * k and v are (T, n_kv_heads, head_dim), hb is (T, hidden_dim).
 *
 * Threads: the matmuls and a long sequence's attention thread themselves.
 * The per-token work (norms, RoPE, SwiGLU, residuals) of a large step and
 * the decode attention of a batch's sequences are split here over the
 * kernels' threads instead (the kernels called inside run on one thread, as
 * OpenMP does not nest by default): one parallel region per layer rather
 * than one per sequence.
 *
 * Backends: "cpu" and "ref" run this file's pass on kernels.h's kernels;
 * "cuda" hands each step to forward_cuda.cu, the same pass on the device
 * (its own KV cache there, the host cache only keeping the block ids). */
#include "config.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/forward.h"
#ifdef HAVE_CUDA
#include "kernels/cuda/kn_cuda.h"
#include "server/forward_cuda.h"
#endif

/* Per-token work is split over threads from this many tokens on. */
#define FORWARD_PAR_TOKENS 16

/* The classifier runs on at most this many sequences' last tokens at a time
 * (its output, rows x vocab floats, is the largest scratch buffer). */
#define FORWARD_LOGIT_ROWS 32

struct forward {
    const struct model *m;
    struct kv_cache *kv;
    const struct kn_backend *be;
    int max_tokens;
    /* activations, max_tokens rows each */
    float *x;      /* (T, dim) residual stream */
    float *xb;     /* (T, dim) normalised input of a sublayer */
    float *xb2;    /* (T, dim) output of a sublayer */
    float *q;      /* (T, n_heads * head_dim) */
    float *k;      /* (T, kv_dim) */
    float *v;      /* (T, kv_dim) */
    float *att;    /* (T, n_heads * head_dim) attention output */
    float *hb;     /* (T, hidden_dim) gate, then silu(gate) * up */
    float *hb2;    /* (T, hidden_dim) up */
    float *rope;   /* (T, head_dim) each token's RoPE cosines and sines (kn_rope_angles), for every layer */
    float *last;   /* (T, dim) final-normed last tokens of the sequences wanting logits */
    float *logits; /* (FORWARD_LOGIT_ROWS, vocab) */
    int *tok_seq;  /* (T) the sequence of each token of the step */
    int *tok_pos;  /* (T) its position */
    int *tok_first;/* (n_seqs) the step's first token of each sequence */
    struct forward_cuda *cuda; /* the "cuda" backend's pass (then none of the above), else NULL */
};

/* ---- build / free ------------------------------------------------------------ */

void forward_free(struct forward *f)
{
    if (f == NULL)
        return;
#ifdef HAVE_CUDA
    forward_cuda_free(f->cuda);
#endif
    free(f->x);
    free(f->xb);
    free(f->xb2);
    free(f->q);
    free(f->k);
    free(f->v);
    free(f->att);
    free(f->hb);
    free(f->hb2);
    free(f->rope);
    free(f->last);
    free(f->logits);
    free(f->tok_seq);
    free(f->tok_pos);
    free(f->tok_first);
    free(f);
}

/* An array of ROWS x COLS floats. */
static float *forward_buf(int rows, int cols)
{
    return malloc((size_t)rows * cols * sizeof(float));
}

/* The "cuda" backend: steps of up to MAX_TOKENS tokens (and so as many
 * sequences) run by forward_cuda.cu; the host scratch is not needed. */
static struct forward *forward_create_cuda(const struct model *m, struct kv_cache *kv, int max_tokens,
                                           const struct kn_backend *be, struct err *e)
{
#ifdef HAVE_CUDA
    struct forward *f = calloc(1, sizeof *f);

    if (f == NULL) {
        err_set(e, ERR_SYSTEM, "forward pass: out of memory");
        return NULL;
    }
    f->m = m;
    f->kv = kv;
    f->be = be;
    f->max_tokens = max_tokens;
    f->cuda = forward_cuda_create(m, kv, max_tokens, max_tokens, e);
    if (f->cuda == NULL) {
        free(f);
        return NULL;
    }
    return f;
#else
    (void)m, (void)kv, (void)max_tokens, (void)be;
    err_set(e, ERR_INPUT, "forward pass: backend cuda: this build has no CUDA (configure found no nvcc and cuBLAS)");
    return NULL;
#endif
}

struct forward *forward_create(const struct model *m, struct kv_cache *kv, int max_tokens,
                               const struct kn_backend *be, struct err *e)
{
    const struct model_config *c = &m->cfg;
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    struct forward *f;

    if (max_tokens < 1) {
        err_set(e, ERR_INPUT, "forward pass: max_tokens must be at least 1 (got %d)", max_tokens);
        return NULL;
    }
    if (kv->n_layers != c->n_layers || kv->kv_dim != kv_dim) {
        err_set(e, ERR_INPUT, "forward pass: the KV cache (%d layers x %d) does not fit the model (%d x %d)",
                kv->n_layers, kv->kv_dim, c->n_layers, kv_dim);
        return NULL;
    }
    if (forward_backend_on_device(be))
        return forward_create_cuda(m, kv, max_tokens, be, e);
    if (kv->k == NULL || kv->v == NULL) {
        err_set(e, ERR_INPUT, "forward pass: the KV cache has no host storage (it was made for the cuda backend)");
        return NULL;
    }
    f = calloc(1, sizeof *f);
    if (f == NULL) {
        err_set(e, ERR_SYSTEM, "forward pass: out of memory");
        return NULL;
    }
    f->m = m;
    f->kv = kv;
    f->be = be != NULL ? be : kn_backend_find("cpu");
    f->max_tokens = max_tokens;
    f->x = forward_buf(max_tokens, c->dim);
    f->xb = forward_buf(max_tokens, c->dim);
    f->xb2 = forward_buf(max_tokens, c->dim);
    f->q = forward_buf(max_tokens, q_dim);
    f->k = forward_buf(max_tokens, kv_dim);
    f->v = forward_buf(max_tokens, kv_dim);
    f->att = forward_buf(max_tokens, q_dim);
    f->hb = forward_buf(max_tokens, c->hidden_dim);
    f->hb2 = forward_buf(max_tokens, c->hidden_dim);
    f->rope = forward_buf(max_tokens, c->head_dim);
    f->last = forward_buf(max_tokens, c->dim);
    f->logits = forward_buf(max_tokens < FORWARD_LOGIT_ROWS ? max_tokens : FORWARD_LOGIT_ROWS, c->vocab_size);
    f->tok_seq = malloc((size_t)max_tokens * sizeof *f->tok_seq);
    f->tok_pos = malloc((size_t)max_tokens * sizeof *f->tok_pos);
    f->tok_first = malloc((size_t)max_tokens * sizeof *f->tok_first);
    if (f->x == NULL || f->xb == NULL || f->xb2 == NULL || f->q == NULL || f->k == NULL || f->v == NULL ||
        f->att == NULL || f->hb == NULL || f->hb2 == NULL || f->rope == NULL || f->last == NULL || f->logits == NULL ||
        f->tok_seq == NULL || f->tok_pos == NULL || f->tok_first == NULL) {
        forward_free(f);
        err_set(e, ERR_SYSTEM, "forward pass: out of memory for %d tokens of scratch", max_tokens);
        return NULL;
    }
    return f;
}

int forward_max_tokens(const struct forward *f)
{
    return f->max_tokens;
}

const struct kn_backend *forward_backend(const char *name, struct err *e)
{
    int want_cuda;

    if (name == NULL || strcmp(name, "cpu") == 0 || strcmp(name, "ref") == 0)
        return kn_backend_find(name != NULL ? name : "cpu");
    if (strcmp(name, "cuda") != 0 && strcmp(name, "auto") != 0) {
        err_set(e, ERR_INPUT, "unknown backend '%s' (auto, cpu, cuda or ref)", name);
        return NULL;
    }
    want_cuda = strcmp(name, "cuda") == 0;
#ifdef HAVE_CUDA
    {
        const struct kn_backend *be = kn_cuda_backend();
        struct kn_cuda_info info;

        if (be != NULL) {
            if (!want_cuda)
                log_info("backend auto: cuda (%s)", kn_cuda_info(&info) == 0 ? info.name : "a CUDA device");
            return be;
        }
        if (want_cuda) {
            err_set(e, ERR_SYSTEM, "backend cuda: %s", kn_cuda_error()); /* "no usable CUDA device: why" */
            return NULL;
        }
        log_info("backend auto: cpu (%s)", kn_cuda_error());
    }
#else
    if (want_cuda) {
        err_set(e, ERR_INPUT, "backend cuda: this build has no CUDA (configure found no nvcc and cuBLAS)");
        return NULL;
    }
    log_info("backend auto: cpu (this build has no CUDA)");
#endif
    return kn_backend_find("cpu");
}

int forward_backend_on_device(const struct kn_backend *be)
{
    return be != NULL && strcmp(be->name, "cuda") == 0;
}

/* ---- the pieces of a block ------------------------------------------------------------ */

/* out (T, n) = rmsnorm of each row of x (T, n) with weight w. */
static void forward_rmsnorm_rows(float *out, const float *x, const float *w, int T, int n, float eps)
{
#pragma omp parallel for num_threads(kn_get_threads()) if (T >= FORWARD_PAR_TOKENS)
    for (int t = 0; t < T; t++)
        kn_rmsnorm(out + (size_t)t * n, x + (size_t)t * n, w, n, eps);
}

/* x (T, n) += y (T, n). */
static void forward_residual(float *x, const float *y, int T, int n)
{
#pragma omp parallel for num_threads(kn_get_threads()) if (T >= FORWARD_PAR_TOKENS)
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++)
            x[(size_t)t * n + i] += y[(size_t)t * n + i];
}

/* hb (T, n) = silu(hb) * hb2. */
static void forward_swiglu_rows(float *hb, const float *hb2, int T, int n)
{
#pragma omp parallel for num_threads(kn_get_threads()) if (T >= FORWARD_PAR_TOKENS)
    for (int t = 0; t < T; t++)
        kn_swiglu(hb + (size_t)t * n, hb + (size_t)t * n, hb2 + (size_t)t * n, n);
}

/* RoPE on the step's queries and keys (by the angles forward_batch_host
 * computed once for the step), then their keys and values into layer L of
 * the cache, each token at its own sequence's position. */
static void forward_rope_and_cache(struct forward *f, const struct forward_seq *seqs, int T, int l)
{
    const struct model_config *c = &f->m->cfg;
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;

#pragma omp parallel for num_threads(kn_get_threads()) if (T >= FORWARD_PAR_TOKENS)
    for (int t = 0; t < T; t++) {
        const struct kv_seq *kv = seqs[f->tok_seq[t]].kv;
        int pos = f->tok_pos[t];
        float *q = f->q + (size_t)t * q_dim, *k = f->k + (size_t)t * kv_dim;
        const float *cs = f->rope + (size_t)t * c->head_dim;

        kn_rope_rotate(q, c->n_heads, c->head_dim, cs, c->rope_layout);
        kn_rope_rotate(k, c->n_kv_heads, c->head_dim, cs, c->rope_layout);
        memcpy(kv_seq_k(f->kv, kv, l, pos), k, (size_t)kv_dim * sizeof(float));
        memcpy(kv_seq_v(f->kv, kv, l, pos), f->v + (size_t)t * kv_dim, (size_t)kv_dim * sizeof(float));
    }
}

/* Attention of one sequence's new tokens over its cache in layer L: one
 * decode query, or a causal prefill chunk. */
static void forward_attention_seq(struct forward *f, const struct forward_seq *sq, int t, int l)
{
    const struct model_config *c = &f->m->cfg;
    struct kn_attn_shape shape = {.n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim};
    int q_dim = c->n_heads * c->head_dim;
    struct kn_kv_view view;
    float *out = f->att + (size_t)t * q_dim;
    const float *q = f->q + (size_t)t * q_dim;

    kv_seq_view(f->kv, sq->kv, l, &view);
    if (sq->n_tokens == 1)
        f->be->attention_decode(out, q, &view, sq->pos0 + 1, &shape);
    else
        f->be->attention_prefill(out, q, &view, sq->n_tokens, sq->pos0, &shape);
}

/* Attention of every sequence in layer L: the decoding ones side by side
 * over the threads, then each prefill chunk threaded by its kernel. */
static void forward_attention(struct forward *f, const struct forward_seq *seqs, int n_seqs, int l)
{
    int n_decode = 0;

    for (int s = 0; s < n_seqs; s++)
        n_decode += seqs[s].n_tokens == 1;
    /* Not one loop with `if (n_decode > 1)`: a lone sequence's kernel
     * splits long contexts over the threads itself, and inside even an
     * inactive parallel region its region ran nested, libgomp building a
     * nested team every layer (decode at 900 tokens 20-70% slower). */
    if (n_decode > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(kn_get_threads())
        for (int s = 0; s < n_seqs; s++)
            if (seqs[s].n_tokens == 1)
                forward_attention_seq(f, &seqs[s], f->tok_first[s], l);
    } else {
        for (int s = 0; s < n_seqs; s++)
            if (seqs[s].n_tokens == 1)
                forward_attention_seq(f, &seqs[s], f->tok_first[s], l);
    }
    for (int s = 0; s < n_seqs; s++)
        if (seqs[s].n_tokens > 1)
            forward_attention_seq(f, &seqs[s], f->tok_first[s], l);
}

/* ---- the forward pass ------------------------------------------------------------------ */

/* The pass on the host (backends "cpu" and "ref"). */
static void forward_batch_host(struct forward *f, const struct forward_seq *seqs, int n_seqs)
{
    const struct model *m = f->m;
    const struct model_config *c = &m->cfg;
    const struct kn_backend *be = f->be;
    int dim = c->dim, hidden = c->hidden_dim;
    int T = 0, t, n_out;

    for (int s = 0; s < n_seqs; s++) {
        assert(seqs[s].n_tokens >= 1 && seqs[s].pos0 >= 0 && seqs[s].pos0 + seqs[s].n_tokens <= c->seq_len);
        assert(kv_seq_capacity(f->kv, seqs[s].kv) >= seqs[s].pos0 + seqs[s].n_tokens);
        T += seqs[s].n_tokens;
    }
    assert(T <= f->max_tokens);
    if (T == 0)
        return;

    /* where each token belongs, and the token embeddings */
    t = 0;
    for (int s = 0; s < n_seqs; s++) {
        f->tok_first[s] = t;
        for (int i = 0; i < seqs[s].n_tokens; i++, t++) {
            assert(seqs[s].tokens[i] >= 0 && seqs[s].tokens[i] < c->vocab_size);
            f->tok_seq[t] = s;
            f->tok_pos[t] = seqs[s].pos0 + i;
            model_embed(m, seqs[s].tokens[i], f->x + (size_t)t * dim);
        }
    }

    /* each token's rotary angles, once for all layers */
#pragma omp parallel for num_threads(kn_get_threads()) if (T >= FORWARD_PAR_TOKENS)
    for (int i = 0; i < T; i++)
        kn_rope_angles(f->rope + (size_t)i * c->head_dim, c->head_dim, f->tok_pos[i], c->rope_theta);

    /* the blocks */
    for (int l = 0; l < c->n_layers; l++) {
        const struct model_layer *L = &m->layers[l];

        /* attention: x += wo attention(rope(wq xb), rope(wk xb), wv xb), where xb = rmsnorm(x) */
        forward_rmsnorm_rows(f->xb, f->x, L->attn_norm, T, dim, c->norm_eps);
        be->matmul(f->q, f->xb, &L->wq, T);
        be->matmul(f->k, f->xb, &L->wk, T);
        be->matmul(f->v, f->xb, &L->wv, T);
        forward_rope_and_cache(f, seqs, T, l);
        forward_attention(f, seqs, n_seqs, l);
        be->matmul(f->xb2, f->att, &L->wo, T);
        forward_residual(f->x, f->xb2, T, dim);

        /* feed-forward: x += w2 (silu(w1 xb) * w3 xb), where xb = rmsnorm(x) */
        forward_rmsnorm_rows(f->xb, f->x, L->ffn_norm, T, dim, c->norm_eps);
        be->matmul(f->hb, f->xb, &L->w1, T);
        be->matmul(f->hb2, f->xb, &L->w3, T);
        forward_swiglu_rows(f->hb, f->hb2, T, hidden);
        be->matmul(f->xb2, f->hb, &L->w2, T);
        forward_residual(f->x, f->xb2, T, dim);
    }

    /* the final norm and the classifier, only for the last token of the
     * sequences that want logits */
    n_out = 0;
    t = 0;
    for (int s = 0; s < n_seqs; s++) {
        t += seqs[s].n_tokens;
        if (seqs[s].logits != NULL)
            kn_rmsnorm(f->last + (size_t)n_out++ * dim, f->x + (size_t)(t - 1) * dim, m->final_norm, dim,
                       c->norm_eps);
    }
    for (int r0 = 0, s = 0; r0 < n_out; r0 += FORWARD_LOGIT_ROWS) {
        int rows = n_out - r0 < FORWARD_LOGIT_ROWS ? n_out - r0 : FORWARD_LOGIT_ROWS;

        be->matmul(f->logits, f->last + (size_t)r0 * dim, &m->classifier, rows);
        for (int r = 0; r < rows; s++)
            if (seqs[s].logits != NULL)
                memcpy(seqs[s].logits, f->logits + (size_t)r++ * c->vocab_size, (size_t)c->vocab_size * sizeof(float));
    }
}

int forward_batch_checked(struct forward *f, const struct forward_seq *seqs, int n_seqs, struct err *e)
{
#ifdef HAVE_CUDA
    if (f->cuda != NULL)
        return forward_cuda_batch(f->cuda, seqs, n_seqs, e);
#else
    (void)e;
#endif
    forward_batch_host(f, seqs, n_seqs);
    return 0;
}

void forward_batch(struct forward *f, const struct forward_seq *seqs, int n_seqs)
{
    struct err e = {0};

    if (forward_batch_checked(f, seqs, n_seqs, &e) == 0)
        return;
    log_error("%s", e.msg);
    for (int s = 0; s < n_seqs; s++)
        if (seqs[s].logits != NULL)
            for (int i = 0; i < f->m->cfg.vocab_size; i++)
                seqs[s].logits[i] = NAN;
}
