/* forward_cuda.cu -- the forward pass of the Llama architecture on a CUDA
 * device (see forward_cuda.h): model.c's computation, step for step, with
 * the kernels of kernels/cuda/kn_cuda.h on device memory.  Read it beside
 * model.c; only the bookkeeping of a step differs.
 *
 * Shapes, as model.c: x is (T, dim), the residual stream of the step's T
 * tokens; q and att are (T, n_heads * head_dim), k and v (T, kv_dim), hb
 * and hb2 (T, hidden_dim).  The step's tokens are ordered with the decoding
 * sequences (one token each) first, then the prefilling ones: rows 0 ..
 * n_decode - 1 of q are then exactly the query batch of one batched decode
 * attention call, and row i of the step's block-table array is the table
 * of the i-th sequence in that order (the prefill calls take its index).
 *
 * A step's host <-> device traffic: one upload of its integers (token ids,
 * positions, cache rows, sequence lengths, block tables, the rows whose
 * logits are asked for) from pinned memory, and one download of those
 * logits per FC_LOGIT_ROWS rows (the engine samples on the host). */
#include "server/forward_cuda.h" /* first: the C headers with C linkage */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/log.h"
}
#include "kernels/cuda/cuda_int.h"

/* The classifier runs on at most this many rows at a time, as in model.c
 * (its output, rows x vocab floats, is the largest buffer of a step). */
#define FC_LOGIT_ROWS 32

/* Threads per block of this file's kernels. */
#define FC_THREADS 256

/* Grid-stride kernels use at most this many blocks. */
#define FC_MAX_BLOCKS 4096

/* A layer's weights on the device: kernels.h's kn_weights, with data and
 * scales device pointers (packed unused). */
struct fc_layer {
    const float *attn_norm; /* (dim) */
    const float *ffn_norm;  /* (dim) */
    struct kn_weights wq, wk, wv, wo, w1, w2, w3;
};

/* Where each kind of integer sits in the per-step array (offsets in
 * int32s; the same layout on the host and on the device). */
struct fc_ints_layout {
    size_t tok;    /* (max_tokens) token ids */
    size_t pos;    /* (max_tokens) positions */
    size_t row;    /* (max_tokens) cache row of each token's K/V */
    size_t lens;   /* (max_seqs) positions each sequence attends to, after the step */
    size_t gather; /* (max_seqs) the step's rows whose logits are asked for */
    size_t tables; /* (max_seqs, max_blocks of the step) block tables; last, so a step uploads a prefix */
    size_t total;  /* capacity, for max_blocks = blocks_per_seq */
};

/* One step, as planned on the host. */
struct fc_step {
    int T;              /* tokens */
    int n_seqs;
    int n_decode;       /* sequences 0 .. n_decode-1 (in step order) decode one token each */
    int max_len_decode; /* the longest context among them */
    int max_blocks;     /* block-table row length of this step */
    int n_out;          /* rows whose logits are asked for */
};

struct forward_cuda {
    struct model_config cfg;
    int device;
    int max_tokens, max_seqs;
    int q_dim, kv_dim;
    int block_tokens, n_blocks;
    int blocks_per_seq; /* blocks a sequence of seq_len positions takes */

    /* device memory this object allocated, freed together */
    void **owned;
    int n_owned, cap_owned;

    /* the model, on the device */
    struct kn_weights tok_embedding; /* (vocab, dim) */
    struct kn_weights classifier;    /* (vocab, dim); the same memory as tok_embedding when shared */
    struct fc_layer *layers;         /* n_layers (host array of device pointers) */
    const float *final_norm;         /* (dim) */

    /* the KV cache: n_layers x (n_blocks * block_tokens, kv_dim) for K and for V */
    float *k_cache, *v_cache;
    size_t layer_floats;

    /* activations, max_tokens rows (last: max_seqs rows; logits: FC_LOGIT_ROWS) */
    float *x, *xb, *xb2, *q, *k, *v, *att, *hb, *hb2, *last, *logits;
    void *scratch;        /* kn_cuda_matmul's, for the largest matmul */
    size_t scratch_bytes;
    void *ws;             /* decode attention's workspace, grown as contexts grow */
    size_t ws_bytes, ws_max_bytes;

    /* per-step integers: pinned host memory and its device copy */
    struct fc_ints_layout lay;
    int32_t *ints_h, *ints_d;
    float *logits_h;      /* pinned (FC_LOGIT_ROWS, vocab): the logits on their way down */
    int *order;           /* (max_seqs) step order -> index in the caller's seqs */
    int *first;           /* (max_seqs) first row of each sequence, in step order */
    int *out_seq;         /* (max_seqs) the caller's sequence of each logits row */
};

/* ---- errors ------------------------------------------------------------------ */

/* A failed device call WHAT (in LAYER, or -1 outside the blocks): E set
 * with kn_cuda_error(); returns -1. */
static int fc_failed(struct err *e, const char *what, int layer)
{
    if (layer >= 0)
        return err_set(e, ERR_SYSTEM, "forward pass (cuda), layer %d: %s: %s", layer, what, kn_cuda_error());
    return err_set(e, ERR_SYSTEM, "forward pass (cuda): %s: %s", what, kn_cuda_error());
}

/* Run CALL, a kn_cuda_* function or one of this file's launchers (0, or
 * -1 with kn_cuda_error() set); on failure set E naming the call and layer
 * L (a variable in scope; -1 outside the blocks) and return -1. */
#define FC_CALL(call)                                                                        \
    do {                                                                                     \
        if ((call) != 0)                                                                     \
            return fc_failed(e, #call, l);                                                   \
    } while (0)

/* ---- kernels of the forward pass (the rest are kn_cuda.h's) ------------------------- */

/* Blocks for a grid-stride loop over N items. */
static int fc_blocks(size_t n)
{
    size_t b = (n + FC_THREADS - 1) / FC_THREADS;
    return b < 1 ? 1 : b > FC_MAX_BLOCKS ? FC_MAX_BLOCKS : (int)b;
}

/* out (rows, dim): row r = the embedding of tokens[r], dequantised from
 * the table's dtype exactly as model_embed() does.  Block r, threads over
 * dim.  DATA is float, uint16_t (bf16) or int8_t (Q8, with SCALES per
 * GROUP) of (vocab, dim). */
__global__ void fc_embed_kernel(float *out, const void *data, const float *scales, int dtype, int group,
                                const int32_t *tokens, int dim)
{
    const size_t base = (size_t)tokens[blockIdx.x] * dim;
    float *o = out + (size_t)blockIdx.x * dim;

    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        const size_t i = base + j;
        float val;

        if (dtype == KN_F32)
            val = ((const float *)data)[i];
        else if (dtype == KN_BF16)
            val = __uint_as_float((uint32_t)((const uint16_t *)data)[i] << 16);
        else
            val = (float)((const int8_t *)data)[i] * scales[i / group];
        o[j] = val;
    }
}

static int fc_embed(float *out, const struct kn_weights *w, const int32_t *tokens, int rows)
{
    fc_embed_kernel<<<rows, FC_THREADS>>>(out, w->data, w->scales, (int)w->dtype, w->group, tokens, w->k);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* The step's keys and values into the cache: row t of k and v (T, kv_dim)
 * to row rows[t] of KC and VC (one layer's arrays). */
__global__ void fc_cache_write_kernel(float *kc, float *vc, const float *k, const float *v, const int32_t *rows,
                                      int kv_dim, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const size_t t = i / kv_dim, j = i % kv_dim;
        const size_t dst = (size_t)rows[t] * kv_dim + j;

        kc[dst] = k[i];
        vc[dst] = v[i];
    }
}

static int fc_cache_write(float *kc, float *vc, const float *k, const float *v, const int32_t *rows, int T,
                          int kv_dim)
{
    const size_t n = (size_t)T * kv_dim;

    fc_cache_write_kernel<<<fc_blocks(n), FC_THREADS>>>(kc, vc, k, v, rows, kv_dim, n);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* out (n_rows, dim): row r = row rows[r] of x.  Block r, threads over dim. */
__global__ void fc_gather_kernel(float *out, const float *x, const int32_t *rows, int dim)
{
    const float *src = x + (size_t)rows[blockIdx.x] * dim;
    float *dst = out + (size_t)blockIdx.x * dim;

    for (int j = threadIdx.x; j < dim; j += blockDim.x)
        dst[j] = src[j];
}

static int fc_gather(float *out, const float *x, const int32_t *rows, int n_rows, int dim)
{
    fc_gather_kernel<<<n_rows, FC_THREADS>>>(out, x, rows, dim);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- build / free ------------------------------------------------------------- */

void forward_cuda_free(struct forward_cuda *f)
{
    if (f == NULL)
        return;
    /* the device may be another thread's current one: free on ours */
    (void)cudaSetDevice(f->device);
    for (int i = 0; i < f->n_owned; i++)
        kn_cuda_free(f->owned[i]);
    if (f->ws != NULL)
        kn_cuda_free(f->ws);
    if (f->ints_h != NULL)
        cudaFreeHost(f->ints_h);
    if (f->logits_h != NULL)
        cudaFreeHost(f->logits_h);
    (void)cudaGetLastError();
    free(f->owned);
    free(f->layers);
    free(f->order);
    free(f->first);
    free(f->out_seq);
    free(f);
}

/* BYTES of device memory owned by F (freed by forward_cuda_free), for WHAT.
 * NULL with E set. */
static void *fc_alloc(struct forward_cuda *f, size_t bytes, const char *what, struct err *e)
{
    void *p;

    if (f->n_owned == f->cap_owned) {
        int cap = f->cap_owned > 0 ? 2 * f->cap_owned : 64;
        void **o = (void **)realloc(f->owned, (size_t)cap * sizeof *o);

        if (o == NULL) {
            err_set(e, ERR_SYSTEM, "forward pass (cuda): out of host memory");
            return NULL;
        }
        f->owned = o;
        f->cap_owned = cap;
    }
    p = kn_cuda_alloc(bytes);
    if (p == NULL) {
        err_set(e, ERR_SYSTEM, "forward pass (cuda): %s (%.1f MiB): %s", what, bytes / 1048576.0, kn_cuda_error());
        return NULL;
    }
    f->owned[f->n_owned++] = p;
    return p;
}

/* A copy of the host array SRC (BYTES) on the device, owned by F.  NULL
 * with E set. */
static void *fc_upload_new(struct forward_cuda *f, const void *src, size_t bytes, const char *what, struct err *e)
{
    void *p = fc_alloc(f, bytes, what, e);

    if (p != NULL && kn_cuda_upload(p, src, bytes) != 0) {
        err_set(e, ERR_SYSTEM, "forward pass (cuda): uploading %s: %s", what, kn_cuda_error());
        return NULL;
    }
    return p;
}

/* D = the host matrix W on the device: the same dtype and shape, data (and
 * Q8 scales) uploaded.  0, or -1 with E set. */
static int fc_upload_weights(struct forward_cuda *f, struct kn_weights *d, const struct kn_weights *w,
                             const char *what, struct err *e)
{
    size_t n = (size_t)w->n * (size_t)w->k, esize;

    *d = *w;
    d->data = NULL;
    d->scales = NULL;
    d->packed = NULL; /* the CUDA kernels read data and scales */
    switch (w->dtype) {
    case KN_F32: esize = 4; break;
    case KN_BF16: esize = 2; break;
    case KN_Q8:
        if (w->group < 1 || w->k % w->group != 0 || w->scales == NULL)
            return err_set(e, ERR_INPUT, "forward pass (cuda): %s: int8 weights need a group dividing k (%d, %d)",
                           what, w->group, w->k);
        esize = 1;
        break;
    default: return err_set(e, ERR_INPUT, "forward pass (cuda): %s: unknown weight type %d", what, (int)w->dtype);
    }
    if (w->n < 1 || w->k < 1 || w->data == NULL)
        return err_set(e, ERR_INPUT, "forward pass (cuda): %s: empty matrix (%d x %d)", what, w->n, w->k);
    if ((d->data = fc_upload_new(f, w->data, n * esize, what, e)) == NULL)
        return -1;
    if (w->dtype == KN_Q8 &&
        (d->scales = (const float *)fc_upload_new(f, w->scales, n / w->group * sizeof(float), what, e)) == NULL)
        return -1;
    return 0;
}

/* The model's weights and norms onto the device.  0, or -1 with E set. */
static int fc_upload_model(struct forward_cuda *f, const struct model *m, struct err *e)
{
    const size_t norm_bytes = (size_t)m->cfg.dim * sizeof(float);
    char what[64];

    f->layers = (struct fc_layer *)calloc((size_t)m->cfg.n_layers, sizeof *f->layers);
    if (f->layers == NULL)
        return err_set(e, ERR_SYSTEM, "forward pass (cuda): out of host memory");
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const struct model_layer *L = &m->layers[l];
        struct fc_layer *D = &f->layers[l];
        const struct {
            struct kn_weights *d;
            const struct kn_weights *w;
            const char *name;
        } mats[] = {{&D->wq, &L->wq, "wq"}, {&D->wk, &L->wk, "wk"}, {&D->wv, &L->wv, "wv"}, {&D->wo, &L->wo, "wo"},
                    {&D->w1, &L->w1, "w1"}, {&D->w2, &L->w2, "w2"}, {&D->w3, &L->w3, "w3"}};

        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            snprintf(what, sizeof what, "layer %d %s", l, mats[i].name);
            if (fc_upload_weights(f, mats[i].d, mats[i].w, what, e) != 0)
                return -1;
        }
        snprintf(what, sizeof what, "layer %d norms", l);
        if ((D->attn_norm = (const float *)fc_upload_new(f, L->attn_norm, norm_bytes, what, e)) == NULL ||
            (D->ffn_norm = (const float *)fc_upload_new(f, L->ffn_norm, norm_bytes, what, e)) == NULL)
            return -1;
    }
    if ((f->final_norm = (const float *)fc_upload_new(f, m->final_norm, norm_bytes, "the final norm", e)) == NULL)
        return -1;
    if (fc_upload_weights(f, &f->tok_embedding, &m->tok_embedding, "the token embedding", e) != 0)
        return -1;
    if (m->classifier.data == m->tok_embedding.data && m->classifier.dtype == m->tok_embedding.dtype)
        f->classifier = f->tok_embedding; /* tied: one copy */
    else if (fc_upload_weights(f, &f->classifier, &m->classifier, "the classifier", e) != 0)
        return -1;
    if (f->tok_embedding.n != m->cfg.vocab_size || f->tok_embedding.k != m->cfg.dim ||
        f->classifier.n != m->cfg.vocab_size || f->classifier.k != m->cfg.dim)
        return err_set(e, ERR_INPUT, "forward pass (cuda): the embedding or classifier is not (vocab, dim)");
    return 0;
}

/* The activations, the matmul scratch and the step buffers.  0, or -1. */
static int fc_alloc_step_buffers(struct forward_cuda *f, struct err *e)
{
    const struct model_config *c = &f->cfg;
    const size_t T = (size_t)f->max_tokens, fl = sizeof(float);
    const int logit_rows = f->max_seqs < FC_LOGIT_ROWS ? f->max_seqs : FC_LOGIT_ROWS;
    struct fc_ints_layout *lay = &f->lay;
    struct kn_attn_shape shape = {c->n_heads, c->n_kv_heads, c->head_dim};
    size_t s;
    cudaError_t ce;

    if ((f->x = (float *)fc_alloc(f, T * c->dim * fl, "activations", e)) == NULL ||
        (f->xb = (float *)fc_alloc(f, T * c->dim * fl, "activations", e)) == NULL ||
        (f->xb2 = (float *)fc_alloc(f, T * c->dim * fl, "activations", e)) == NULL ||
        (f->q = (float *)fc_alloc(f, T * f->q_dim * fl, "activations", e)) == NULL ||
        (f->att = (float *)fc_alloc(f, T * f->q_dim * fl, "activations", e)) == NULL ||
        (f->k = (float *)fc_alloc(f, T * f->kv_dim * fl, "activations", e)) == NULL ||
        (f->v = (float *)fc_alloc(f, T * f->kv_dim * fl, "activations", e)) == NULL ||
        (f->hb = (float *)fc_alloc(f, T * c->hidden_dim * fl, "activations", e)) == NULL ||
        (f->hb2 = (float *)fc_alloc(f, T * c->hidden_dim * fl, "activations", e)) == NULL ||
        (f->last = (float *)fc_alloc(f, (size_t)f->max_seqs * c->dim * fl, "activations", e)) == NULL ||
        (f->logits = (float *)fc_alloc(f, (size_t)logit_rows * c->vocab_size * fl, "logits", e)) == NULL)
        return -1;

    /* kn_cuda_matmul's scratch: the most any matmul of a step asks for
     * (it grows with the rows; bf16 and Q8 weights need it above 8 rows) */
    f->scratch_bytes = kn_cuda_matmul_scratch_bytes(&f->classifier, logit_rows);
    for (int l = 0; l < c->n_layers; l++) {
        const struct fc_layer *L = &f->layers[l];
        const struct kn_weights *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w1, &L->w2, &L->w3};

        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
            s = kn_cuda_matmul_scratch_bytes(ws[i], f->max_tokens);
            if (s > f->scratch_bytes)
                f->scratch_bytes = s;
        }
    }
    if (f->scratch_bytes > 0 && (f->scratch = fc_alloc(f, f->scratch_bytes, "matmul scratch", e)) == NULL)
        return -1;
    /* decode attention's workspace: allocated by the steps that need it, at
     * most this (every sequence decoding at the full context) */
    f->ws_max_bytes = kn_cuda_decode_workspace_bytes(f->max_seqs, c->seq_len, &shape);

    /* the step's integers, pinned so that one copy moves them */
    lay->tok = 0;
    lay->pos = lay->tok + f->max_tokens;
    lay->row = lay->pos + f->max_tokens;
    lay->lens = lay->row + f->max_tokens;
    lay->gather = lay->lens + f->max_seqs;
    lay->tables = lay->gather + f->max_seqs;
    lay->total = lay->tables + (size_t)f->max_seqs * f->blocks_per_seq;
    if ((f->ints_d = (int32_t *)fc_alloc(f, lay->total * sizeof(int32_t), "step buffers", e)) == NULL)
        return -1;
    ce = cudaHostAlloc((void **)&f->ints_h, lay->total * sizeof(int32_t), cudaHostAllocDefault);
    if (ce == cudaSuccess)
        ce = cudaHostAlloc((void **)&f->logits_h, (size_t)logit_rows * c->vocab_size * fl, cudaHostAllocDefault);
    if (ce != cudaSuccess) {
        (void)cudaGetLastError();
        return err_set(e, ERR_SYSTEM, "forward pass (cuda): cudaHostAlloc: %s", cudaGetErrorString(ce));
    }
    f->order = (int *)malloc((size_t)f->max_seqs * sizeof *f->order);
    f->first = (int *)malloc((size_t)f->max_seqs * sizeof *f->first);
    f->out_seq = (int *)malloc((size_t)f->max_seqs * sizeof *f->out_seq);
    if (f->order == NULL || f->first == NULL || f->out_seq == NULL)
        return err_set(e, ERR_SYSTEM, "forward pass (cuda): out of host memory");
    return 0;
}

struct forward_cuda *forward_cuda_create(const struct model *m, const struct kv_cache *kv, int max_tokens,
                                         int max_seqs, struct err *e)
{
    const struct model_config *c = &m->cfg;
    const int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    struct forward_cuda *f;
    size_t cache_bytes;

    if (max_tokens < 1 || max_seqs < 1) {
        err_set(e, ERR_INPUT, "forward pass (cuda): max_tokens and max_seqs must be at least 1 (got %d, %d)",
                max_tokens, max_seqs);
        return NULL;
    }
    if (kv->n_layers != c->n_layers || kv->kv_dim != kv_dim) {
        err_set(e, ERR_INPUT, "forward pass (cuda): the KV cache (%d layers x %d) does not fit the model (%d x %d)",
                kv->n_layers, kv->kv_dim, c->n_layers, kv_dim);
        return NULL;
    }
    /* what the device attention kernels take (kn_cuda.h) */
    if (kv->block_tokens < 1 || (kv->block_tokens & (kv->block_tokens - 1)) != 0) {
        err_set(e, ERR_INPUT, "forward pass (cuda): KV block size %d is not a power of two", kv->block_tokens);
        return NULL;
    }
    if (c->head_dim > 256) {
        err_set(e, ERR_INPUT, "forward pass (cuda): head_dim %d is above the attention kernels' 256", c->head_dim);
        return NULL;
    }
    if ((long long)kv->n_blocks * kv->block_tokens > INT32_MAX) {
        err_set(e, ERR_INPUT, "forward pass (cuda): %d KV blocks of %d rows exceed 2^31 rows", kv->n_blocks,
                kv->block_tokens);
        return NULL;
    }

    f = (struct forward_cuda *)calloc(1, sizeof *f);
    if (f == NULL) {
        err_set(e, ERR_SYSTEM, "forward pass (cuda): out of host memory");
        return NULL;
    }
    f->cfg = *c;
    f->max_tokens = max_tokens;
    f->max_seqs = max_seqs;
    f->q_dim = q_dim;
    f->kv_dim = kv_dim;
    f->block_tokens = kv->block_tokens;
    f->n_blocks = kv->n_blocks;
    f->blocks_per_seq = (c->seq_len + kv->block_tokens - 1) / kv->block_tokens;
    if (cudaGetDevice(&f->device) != cudaSuccess) {
        (void)cudaGetLastError();
        f->device = 0;
    }
    if (kn_cuda_init(f->device) != 0) {
        fc_failed(e, "kn_cuda_init", -1);
        goto err;
    }
    if (fc_upload_model(f, m, e) != 0)
        goto err;

    /* the KV cache, zeroed: no row the kernels read is ever uninitialised */
    f->layer_floats = (size_t)kv->n_blocks * kv->block_tokens * kv_dim;
    cache_bytes = (size_t)c->n_layers * f->layer_floats * sizeof(float);
    if ((f->k_cache = (float *)fc_alloc(f, cache_bytes, "the KV cache's keys", e)) == NULL ||
        (f->v_cache = (float *)fc_alloc(f, cache_bytes, "the KV cache's values", e)) == NULL)
        goto err;
    if (kn_cuda_memset(f->k_cache, 0, cache_bytes) != 0 || kn_cuda_memset(f->v_cache, 0, cache_bytes) != 0) {
        fc_failed(e, "zeroing the KV cache", -1);
        goto err;
    }
    if (fc_alloc_step_buffers(f, e) != 0)
        goto err;
    log_info("forward pass (cuda): %s on device %d: weights %.1f MiB, KV cache %.1f MiB (%d blocks of %d), "
             "scratch %.1f MiB, steps of %d tokens",
             m->name, f->device, m->weight_bytes / 1048576.0, 2.0 * cache_bytes / 1048576.0, kv->n_blocks,
             kv->block_tokens, f->scratch_bytes / 1048576.0, max_tokens);
    return f;
err:
    forward_cuda_free(f);
    return NULL;
}

/* ---- a step -------------------------------------------------------------------- */

/* Check SEQS against forward.h's rules, and against the device cache's
 * bounds (a bad block id would have the kernels write outside it), before
 * anything runs; then lay the step out in the pinned integers: the order
 * of the sequences (the decoding ones first), each token's id, position and
 * cache row, each sequence's length and block table, and the rows whose
 * logits are asked for.  0, or -1 with E set (ERR_INPUT). */
static int fc_plan(struct forward_cuda *f, const struct forward_seq *seqs, int n_seqs, struct fc_step *st,
                   struct err *e)
{
    const struct model_config *c = &f->cfg;
    const struct fc_ints_layout *lay = &f->lay;
    const int bt = f->block_tokens;
    int32_t *ints = f->ints_h;
    int n = 0, t = 0;

    memset(st, 0, sizeof *st);
    if (n_seqs < 0 || n_seqs > f->max_seqs)
        return err_set(e, ERR_INPUT, "forward pass (cuda): %d sequences in a step (at most %d)", n_seqs,
                       f->max_seqs);
    for (int s = 0; s < n_seqs; s++) {
        const struct forward_seq *sq = &seqs[s];
        int end, nb;

        if (sq->tokens == NULL || sq->kv == NULL || sq->n_tokens < 1 || sq->pos0 < 0 ||
            sq->n_tokens > c->seq_len || sq->pos0 > c->seq_len - sq->n_tokens)
            return err_set(e, ERR_INPUT,
                           "forward pass (cuda): sequence %d: %d tokens at position %d do not fit the context of %d",
                           s, sq->n_tokens, sq->pos0, c->seq_len);
        if (sq->n_tokens > f->max_tokens - st->T)
            return err_set(e, ERR_INPUT, "forward pass (cuda): more than %d tokens in a step", f->max_tokens);
        st->T += sq->n_tokens;
        end = sq->pos0 + sq->n_tokens;
        nb = (end + bt - 1) / bt;
        if (sq->kv->n_blocks < nb)
            return err_set(e, ERR_INPUT, "forward pass (cuda): sequence %d: its blocks hold %d positions, not %d", s,
                           sq->kv->n_blocks * bt, end);
        for (int b = 0; b < nb; b++)
            if (sq->kv->blocks[b] < 0 || sq->kv->blocks[b] >= f->n_blocks)
                return err_set(e, ERR_INPUT, "forward pass (cuda): sequence %d: block id %d is outside the cache (%d)",
                               s, (int)sq->kv->blocks[b], f->n_blocks);
        for (int i = 0; i < sq->n_tokens; i++)
            if (sq->tokens[i] < 0 || sq->tokens[i] >= c->vocab_size)
                return err_set(e, ERR_INPUT,
                               "forward pass (cuda): sequence %d: token %d (at %d) is outside the vocabulary of %d", s,
                               sq->tokens[i], i, c->vocab_size);
        if (nb > st->max_blocks)
            st->max_blocks = nb;
        if (sq->n_tokens == 1 && end > st->max_len_decode)
            st->max_len_decode = end;
    }

    /* the order: decoding sequences first, then the prefilling ones */
    for (int s = 0; s < n_seqs; s++)
        if (seqs[s].n_tokens == 1)
            f->order[n++] = s;
    st->n_decode = n;
    for (int s = 0; s < n_seqs; s++)
        if (seqs[s].n_tokens > 1)
            f->order[n++] = s;
    st->n_seqs = n_seqs;

    /* the integers, sequence by sequence in that order */
    for (int i = 0; i < n_seqs; i++) {
        const struct forward_seq *sq = &seqs[f->order[i]];
        const int32_t *blocks = sq->kv->blocks;
        const int end = sq->pos0 + sq->n_tokens, nb = (end + bt - 1) / bt;
        int32_t *table = ints + lay->tables + (size_t)i * st->max_blocks;

        f->first[i] = t;
        for (int j = 0; j < sq->n_tokens; j++, t++) {
            const int p = sq->pos0 + j;

            ints[lay->tok + t] = sq->tokens[j];
            ints[lay->pos + t] = p;
            ints[lay->row + t] = blocks[p / bt] * bt + p % bt; /* < n_blocks * bt <= INT32_MAX */
        }
        ints[lay->lens + i] = end;
        for (int b = 0; b < st->max_blocks; b++)
            table[b] = b < nb ? blocks[b] : 0; /* padding: never read (past the length) */
        if (sq->logits != NULL) {
            ints[lay->gather + st->n_out] = t - 1;
            f->out_seq[st->n_out++] = f->order[i];
        }
    }
    return 0;
}

/* Decode attention's workspace for step ST: grown when too small (doubling,
 * as contexts grow a token a step, but never past what the largest step
 * needs).  0, or -1 with kn_cuda_error() set. */
static int fc_workspace(struct forward_cuda *f, const struct fc_step *st)
{
    const struct kn_attn_shape shape = {f->cfg.n_heads, f->cfg.n_kv_heads, f->cfg.head_dim};
    size_t need, want;

    if (st->n_decode == 0)
        return 0;
    need = kn_cuda_decode_workspace_bytes(st->n_decode, st->max_len_decode, &shape);
    if (need <= f->ws_bytes)
        return 0;
    want = 2 * f->ws_bytes > need ? 2 * f->ws_bytes : need;
    if (want > f->ws_max_bytes)
        want = f->ws_max_bytes > need ? f->ws_max_bytes : need;
    kn_cuda_free(f->ws);
    f->ws_bytes = 0;
    if ((f->ws = kn_cuda_alloc(want)) == NULL)
        return -1;
    f->ws_bytes = want;
    return 0;
}

/* Attention of every sequence of step ST over its cache in one layer (KC,
 * VC): the decoding ones in one batched call (their queries are rows 0 ..
 * n_decode-1), then each prefill chunk causally.  att (T, q_dim).  0, or -1
 * with kn_cuda_error() set. */
static int fc_attention(struct forward_cuda *f, const struct fc_step *st, const float *kc, const float *vc)
{
    const struct kn_attn_shape shape = {f->cfg.n_heads, f->cfg.n_kv_heads, f->cfg.head_dim};
    struct kn_cuda_paged_kv kv;

    kv.k = kc;
    kv.v = vc;
    kv.row_stride = f->kv_dim;
    kv.block_size = f->block_tokens;
    kv.block_tables = f->ints_d + f->lay.tables;
    kv.max_blocks = st->max_blocks;
    kv.seq_lens = f->ints_d + f->lay.lens;
    if (st->n_decode > 0 && kn_cuda_attention_decode(KN_CUDA_DEFAULT, f->att, f->q, &kv, st->n_decode,
                                                     st->max_len_decode, &shape, f->ws) != 0)
        return -1;
    for (int i = st->n_decode; i < st->n_seqs; i++) {
        const size_t off = (size_t)f->first[i] * f->q_dim;
        const int n = (i + 1 < st->n_seqs ? f->first[i + 1] : st->T) - f->first[i];
        const int pos0 = f->ints_h[f->lay.lens + i] - n;

        if (kn_cuda_attention_prefill(KN_CUDA_DEFAULT, f->att + off, f->q + off, &kv, i, n, pos0, &shape) != 0)
            return -1;
    }
    return 0;
}

/* Block L of step ST: x += attention, then x += feed-forward, as model.c.
 * 0, or -1 with E set. */
static int fc_block(struct forward_cuda *f, const struct fc_step *st, int l, struct err *e)
{
    const struct model_config *c = &f->cfg;
    const struct fc_layer *L = &f->layers[l];
    const int T = st->T, dim = c->dim;
    const int32_t *pos = f->ints_d + f->lay.pos, *rows = f->ints_d + f->lay.row;
    float *kc = f->k_cache + (size_t)l * f->layer_floats, *vc = f->v_cache + (size_t)l * f->layer_floats;

    /* attention: x += wo attention(rope(wq xb), rope(wk xb), wv xb), where xb = rmsnorm(x) */
    FC_CALL(kn_cuda_rmsnorm(f->xb, f->x, L->attn_norm, T, dim, c->norm_eps));
    FC_CALL(kn_cuda_matmul(f->q, f->xb, &L->wq, T, f->scratch));
    FC_CALL(kn_cuda_matmul(f->k, f->xb, &L->wk, T, f->scratch));
    FC_CALL(kn_cuda_matmul(f->v, f->xb, &L->wv, T, f->scratch));
    FC_CALL(kn_cuda_rope(f->q, T, c->n_heads, c->head_dim, pos, c->rope_theta, c->rope_layout));
    FC_CALL(kn_cuda_rope(f->k, T, c->n_kv_heads, c->head_dim, pos, c->rope_theta, c->rope_layout));
    FC_CALL(fc_cache_write(kc, vc, f->k, f->v, rows, T, f->kv_dim));
    FC_CALL(fc_attention(f, st, kc, vc));
    FC_CALL(kn_cuda_matmul(f->xb2, f->att, &L->wo, T, f->scratch));
    FC_CALL(kn_cuda_add(f->x, f->xb2, (size_t)T * dim));

    /* feed-forward: x += w2 (silu(w1 xb) * w3 xb), where xb = rmsnorm(x) */
    FC_CALL(kn_cuda_rmsnorm(f->xb, f->x, L->ffn_norm, T, dim, c->norm_eps));
    FC_CALL(kn_cuda_matmul(f->hb, f->xb, &L->w1, T, f->scratch));
    FC_CALL(kn_cuda_matmul(f->hb2, f->xb, &L->w3, T, f->scratch));
    FC_CALL(kn_cuda_swiglu(f->hb, f->hb, f->hb2, (size_t)T * c->hidden_dim));
    FC_CALL(kn_cuda_matmul(f->xb2, f->hb, &L->w2, T, f->scratch));
    FC_CALL(kn_cuda_add(f->x, f->xb2, (size_t)T * dim));
    return 0;
}

int forward_cuda_batch(struct forward_cuda *f, const struct forward_seq *seqs, int n_seqs, struct err *e)
{
    const struct model_config *c = &f->cfg;
    const int32_t *ints = f->ints_d;
    struct fc_step st;
    cudaError_t ce;
    int l = -1;

    if (fc_plan(f, seqs, n_seqs, &st, e) != 0)
        return -1;
    if (st.T == 0)
        return 0;
    /* the engine runs steps on its own thread: make the device current there */
    if ((ce = cudaSetDevice(f->device)) != cudaSuccess) {
        (void)cudaGetLastError();
        return err_set(e, ERR_SYSTEM, "forward pass (cuda): cudaSetDevice(%d): %s", f->device, cudaGetErrorString(ce));
    }
    FC_CALL(fc_workspace(f, &st));
    FC_CALL(kn_cuda_upload(f->ints_d, f->ints_h, (f->lay.tables + (size_t)st.n_seqs * st.max_blocks) * sizeof(int32_t)));

    /* the token embeddings */
    FC_CALL(fc_embed(f->x, &f->tok_embedding, ints + f->lay.tok, st.T));

    /* the blocks */
    for (l = 0; l < c->n_layers; l++)
        if (fc_block(f, &st, l, e) != 0)
            return -1;
    l = -1;

    /* the final norm and the classifier, only for the last token of the
     * sequences that want logits; the download waits for the step, and
     * reports a kernel's failure */
    if (st.n_out == 0) {
        FC_CALL(kn_cuda_sync()); /* this step's errors in this step */
        return 0;
    }
    FC_CALL(fc_gather(f->last, f->x, ints + f->lay.gather, st.n_out, c->dim));
    FC_CALL(kn_cuda_rmsnorm(f->last, f->last, f->final_norm, st.n_out, c->dim, c->norm_eps));
    for (int r0 = 0; r0 < st.n_out; r0 += FC_LOGIT_ROWS) {
        const int rows = st.n_out - r0 < FC_LOGIT_ROWS ? st.n_out - r0 : FC_LOGIT_ROWS;
        const size_t vocab = (size_t)c->vocab_size;

        FC_CALL(kn_cuda_matmul(f->logits, f->last + (size_t)r0 * c->dim, &f->classifier, rows, f->scratch));
        FC_CALL(kn_cuda_download(f->logits_h, f->logits, (size_t)rows * vocab * sizeof(float)));
        for (int r = 0; r < rows; r++)
            memcpy(seqs[f->out_seq[r0 + r]].logits, f->logits_h + (size_t)r * vocab, vocab * sizeof(float));
    }
    return 0;
}
