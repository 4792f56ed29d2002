/* backend_cuda.cu -- "cuda", kernels.h's backend table on the GPU, taking
 * HOST pointers like the CPU backends: each call uploads its operands,
 * runs the default version of the CUDA kernel and downloads the result.
 * That is for llmbench --backend cuda and the tests shared with the CPU
 * (the transfers dominate small calls); a forward pass on the GPU keeps its
 * tensors on the device and calls kn_cuda.h directly.
 *
 * Attention: the kn_kv_view's rows (contiguous or paged, any stride) are
 * gathered on the host into one contiguous block, uploaded, and described
 * to the CUDA kernels as a paged cache of one sequence whose block table is
 * the identity (block i holds positions 16i .. 16i+15).
 *
 * kernels.h's functions cannot fail, so a CUDA error here (out of device
 * memory, a failed launch) prints the error and aborts: wrong numbers would
 * be worse.  Device buffers are one grow-only allocation per thread, kept
 * until the process exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_int.h"

#define KN_BACKEND_BLOCK 16 /* rows per block of the gathered KV cache */

/* ---- this thread's device buffer ---------------------------------------------------- */

struct kn_devbuf {
    char *base;
    size_t cap, used;
};

static thread_local struct kn_devbuf kn_devbuf;

/* Print the last CUDA error for operation WHAT and abort. */
static void kn_backend_die(const char *what)
{
    fprintf(stderr, "kernels: cuda backend: %s: %s\n", what, kn_cuda_error());
    abort();
}

/* Make this thread's buffer hold at least BYTES (contents discarded) and
 * start carving it from the beginning. */
static void kn_devbuf_reset(size_t bytes)
{
    struct kn_devbuf *b = &kn_devbuf;

    if (bytes > b->cap) {
        kn_cuda_free(b->base);
        b->base = NULL;
        b->cap = 0;
        b->base = (char *)kn_cuda_alloc(bytes);
        if (b->base == NULL)
            kn_backend_die("device memory");
        b->cap = bytes;
    }
    b->used = 0;
}

/* Space for BYTES from this thread's buffer, 256-byte aligned.  The caller
 * sized the buffer with kn_devbuf_reset (sum of kn_devbuf_size terms). */
static void *kn_devbuf_take(size_t bytes)
{
    struct kn_devbuf *b = &kn_devbuf;
    void *p = b->base + b->used;

    b->used += (bytes + 255) / 256 * 256;
    if (b->used > b->cap) {
        fprintf(stderr, "kernels: cuda backend: device buffer overrun (%zu > %zu)\n", b->used, b->cap);
        abort();
    }
    return p;
}

/* BYTES as taken by kn_devbuf_take (rounded up to 256). */
static size_t kn_devbuf_size(size_t bytes)
{
    return (bytes + 255) / 256 * 256;
}

static void *kn_upload_new(const void *src, size_t bytes)
{
    void *d = kn_devbuf_take(bytes);

    if (kn_cuda_upload(d, src, bytes) != 0)
        kn_backend_die("upload");
    return d;
}

/* ---- matmul ----------------------------------------------------------------------------- */

/* Bytes of W's data in its dtype, and of its scales (Q8). */
static size_t kn_weight_bytes(const struct kn_weights *w, size_t *scale_bytes)
{
    size_t nk = (size_t)w->n * w->k;

    *scale_bytes = w->dtype == KN_Q8 ? nk / w->group * sizeof(float) : 0;
    return w->dtype == KN_F32 ? nk * 4 : w->dtype == KN_BF16 ? nk * 2 : nk;
}

static void kn_cuda_backend_matmul(float *out, const float *x, const struct kn_weights *w, int m)
{
    size_t sbytes, wbytes = kn_weight_bytes(w, &sbytes);
    size_t xbytes = (size_t)m * w->k * sizeof(float), obytes = (size_t)m * w->n * sizeof(float);
    struct kn_weights wd = *w;
    size_t scratch;
    void *scratch_d = NULL;
    float *x_d, *out_d;

    if (m < 1 || w->n < 1 || w->k < 1)
        return;
    /* Size the scratch for W's device copy, which is 256-byte aligned (as
     * NULL is), not for the host pointer. */
    wd.packed = NULL;
    wd.data = NULL;
    scratch = kn_cuda_matmul_scratch_bytes(&wd, m);
    kn_devbuf_reset(kn_devbuf_size(wbytes) + kn_devbuf_size(sbytes) + kn_devbuf_size(xbytes) +
                    kn_devbuf_size(obytes) + kn_devbuf_size(scratch));
    wd.data = kn_upload_new(w->data, wbytes);
    wd.scales = sbytes > 0 ? (const float *)kn_upload_new(w->scales, sbytes) : NULL;
    x_d = (float *)kn_upload_new(x, xbytes);
    out_d = (float *)kn_devbuf_take(obytes);
    if (scratch > 0)
        scratch_d = kn_devbuf_take(scratch);
    if (kn_cuda_matmul(out_d, x_d, &wd, m, scratch_d) != 0)
        kn_backend_die("matmul");
    if (kn_cuda_download(out, out_d, obytes) != 0) /* synchronous: also reports a failed kernel */
        kn_backend_die("matmul");
}

/* ---- attention ----------------------------------------------------------------------------- */

/* The first S rows of KV (K and V) gathered into one contiguous host block
 * each, uploaded, and the one-sequence paged cache describing them (block
 * table and seq_lens on the device) in *P. */
static void kn_upload_kv(struct kn_cuda_paged_kv *p, const struct kn_kv_view *kv, int S,
                         const struct kn_attn_shape *s)
{
    size_t row = (size_t)s->n_kv_heads * s->head_dim;
    int nblocks = KN_CDIV(S, KN_BACKEND_BLOCK);
    size_t rows = (size_t)nblocks * KN_BACKEND_BLOCK; /* whole blocks; the tail rows are zero */
    size_t bytes = rows * row * sizeof(float);
    float *hk = (float *)calloc(rows * row, sizeof(float));
    float *hv = (float *)calloc(rows * row, sizeof(float));
    int32_t *table = (int32_t *)malloc((size_t)nblocks * sizeof(int32_t));
    int32_t len = S;

    if (hk == NULL || hv == NULL || table == NULL) {
        fprintf(stderr, "kernels: cuda backend: out of host memory for the KV cache\n");
        abort();
    }
    for (int pos = 0; pos < S; pos++) {
        size_t r = kv->blocks == NULL ? (size_t)pos
                                      : (size_t)kv->blocks[pos / kv->block_size] * kv->block_size +
                                            pos % kv->block_size;
        memcpy(hk + pos * row, kv->k + r * kv->pos_stride, row * sizeof(float));
        memcpy(hv + pos * row, kv->v + r * kv->pos_stride, row * sizeof(float));
    }
    for (int i = 0; i < nblocks; i++)
        table[i] = i;
    p->k = (const float *)kn_upload_new(hk, bytes);
    p->v = (const float *)kn_upload_new(hv, bytes);
    p->row_stride = (int)row;
    p->block_size = KN_BACKEND_BLOCK;
    p->block_tables = (const int32_t *)kn_upload_new(table, (size_t)nblocks * sizeof(int32_t));
    p->max_blocks = nblocks;
    p->seq_lens = (const int32_t *)kn_upload_new(&len, sizeof len);
    free(hk);
    free(hv);
    free(table);
}

/* Device bytes kn_upload_kv takes for S rows. */
static size_t kn_kv_bytes(int S, const struct kn_attn_shape *s)
{
    int nblocks = KN_CDIV(S, KN_BACKEND_BLOCK);
    size_t bytes = (size_t)nblocks * KN_BACKEND_BLOCK * s->n_kv_heads * s->head_dim * sizeof(float);

    return 2 * kn_devbuf_size(bytes) + kn_devbuf_size((size_t)nblocks * sizeof(int32_t)) +
           kn_devbuf_size(sizeof(int32_t));
}

static void kn_cuda_backend_prefill(float *out, const float *q, const struct kn_kv_view *kv, int T, int pos0,
                                    const struct kn_attn_shape *s)
{
    size_t qbytes = (size_t)T * s->n_heads * s->head_dim * sizeof(float);
    struct kn_cuda_paged_kv p;
    float *q_d, *out_d;

    if (T < 1)
        return;
    kn_devbuf_reset(kn_kv_bytes(pos0 + T, s) + 2 * kn_devbuf_size(qbytes));
    kn_upload_kv(&p, kv, pos0 + T, s);
    q_d = (float *)kn_upload_new(q, qbytes);
    out_d = (float *)kn_devbuf_take(qbytes);
    if (kn_cuda_attention_prefill(KN_CUDA_DEFAULT, out_d, q_d, &p, 0, T, pos0, s) != 0)
        kn_backend_die("attention prefill");
    if (kn_cuda_download(out, out_d, qbytes) != 0)
        kn_backend_die("attention prefill");
}

static void kn_cuda_backend_decode(float *out, const float *q, const struct kn_kv_view *kv, int S,
                                   const struct kn_attn_shape *s)
{
    size_t qbytes = (size_t)s->n_heads * s->head_dim * sizeof(float);
    size_t ws = kn_cuda_decode_workspace_bytes(1, S, s);
    struct kn_cuda_paged_kv p;
    float *q_d, *out_d;
    void *ws_d = NULL;

    if (S < 1)
        return;
    kn_devbuf_reset(kn_kv_bytes(S, s) + 2 * kn_devbuf_size(qbytes) + kn_devbuf_size(ws));
    kn_upload_kv(&p, kv, S, s);
    q_d = (float *)kn_upload_new(q, qbytes);
    out_d = (float *)kn_devbuf_take(qbytes);
    if (ws > 0)
        ws_d = kn_devbuf_take(ws);
    if (kn_cuda_attention_decode(KN_CUDA_DEFAULT, out_d, q_d, &p, 1, S, s, ws_d) != 0)
        kn_backend_die("attention decode");
    if (kn_cuda_download(out, out_d, qbytes) != 0)
        kn_backend_die("attention decode");
}

/* ---- the table ------------------------------------------------------------------------------- */

static const struct kn_backend kn_backend_cuda = {
    .name = "cuda",
    .matmul = kn_cuda_backend_matmul,
    .attention_prefill = kn_cuda_backend_prefill,
    .attention_decode = kn_cuda_backend_decode,
};

extern "C" const struct kn_backend *kn_cuda_backend(void)
{
    return kn_cuda_device_count() > 0 ? &kn_backend_cuda : NULL;
}
