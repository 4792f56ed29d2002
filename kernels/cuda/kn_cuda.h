/* kn_cuda.h -- the CUDA kernels: kernels.h's operations on device memory.
 *
 * Conventions, as kernels.h: row-major; a weight matrix W is (n, k) and a
 * matmul computes out (m, n) = x (m, k) W^T.  Every pointer a kernel takes is
 * a device pointer (kn_cuda_alloc) unless its comment says otherwise.
 * Kernels are launched on the legacy default stream and return at once; a
 * launch's failure shows at the next kn_cuda_sync().  Functions that can
 * fail return 0 or -1, and kn_cuda_error() then says why.
 *
 * Where it teaches, an operation comes in versions side by side, as llm.c's
 * dev kernels: version 0 the simplest, each one after it faster; version -1
 * (KN_CUDA_DEFAULT) picks the one chosen as the default for the device.
 * kn_cuda_versions() and kn_cuda_version_name() list them, so tests check
 * every version and llmbench times every version.
 *
 * Files: device.cu (this header's device section), gemm.cu, gemm_bf16.cu,
 * gemv.cu, cublas.cu (matmul), attention.cu, flash_bf16.cu (attention),
 * ops.cu (norms, RoPE, SwiGLU, softmax, sampling), backend_cuda.cu (the
 * "cuda" entry of kernels.h's backend table, on host pointers).
 *
 * Only built when configure finds nvcc and cuBLAS (HAVE_CUDA). */
#ifndef LLM_KN_CUDA_H
#define LLM_KN_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KN_CUDA_DEFAULT (-1)

/* ---- the device (device.cu) ------------------------------------------------------ */

/* Devices usable now: 0 when there is no driver, no device, or the driver
 * is older than the runtime (kn_cuda_error() says which). */
int kn_cuda_device_count(void);

/* Make device IDX current for the calling thread.  0, or -1. */
int kn_cuda_init(int idx);

/* The last error of this thread, as text ("" when none). */
const char *kn_cuda_error(void);

struct kn_cuda_info {
    char name[256];        /* "NVIDIA H200" */
    int sm_major, sm_minor;
    int sms;               /* streaming multiprocessors */
    size_t mem_bytes;      /* global memory */
    size_t l2_bytes;
    size_t smem_optin;     /* shared memory a block may opt in to, bytes */
    double peak_gbs;       /* theoretical memory bandwidth, GB/s, from the clock and bus width
                            * (0 when the driver does not report them) */
    int driver_version, runtime_version;
};
/* Describe the current device.  0, or -1. */
int kn_cuda_info(struct kn_cuda_info *info);

/* Device memory: NULL (and kn_cuda_error()) when it cannot be had. */
void *kn_cuda_alloc(size_t bytes);
void kn_cuda_free(void *p);
/* Copies between host (H) and device (D) memory; synchronous.  0, or -1. */
int kn_cuda_upload(void *dst_d, const void *src_h, size_t bytes);
int kn_cuda_download(void *dst_h, const void *src_d, size_t bytes);
int kn_cuda_copy(void *dst_d, const void *src_d, size_t bytes);
int kn_cuda_memset(void *dst_d, int byte, size_t bytes);
/* Wait for everything launched so far; report the first error.  0, or -1. */
int kn_cuda_sync(void);

/* Time FN(ARG) on the device with CUDA events: one untimed warm-up call,
 * then REPEAT timed calls; the median in milliseconds, or -1 on an error. */
double kn_cuda_time_ms(void (*fn)(void *arg), void *arg, int repeat);

/* Streaming-read bandwidth of this device, GB/s: a kernel that reads BYTES
 * (>= 4 x L2) and reduces them, best of REPEAT.  The roofline baseline. */
double kn_cuda_read_bandwidth_gbs(size_t bytes, int repeat);

/* Versions of an operation (KN_CUDA_OP_*): how many, and each one's name
 * ("v0 naive", "v3 warp tiles, float4"); NULL for a version that does not
 * exist.  kn_cuda_default_version: what KN_CUDA_DEFAULT selects on the
 * current device. */
enum kn_cuda_op {
    KN_CUDA_OP_SGEMM,        /* kn_cuda_sgemm */
    KN_CUDA_OP_BGEMM,        /* kn_cuda_bgemm */
    KN_CUDA_OP_GEMV,         /* kn_cuda_gemv */
    KN_CUDA_OP_DECODE,       /* kn_cuda_attention_decode */
    KN_CUDA_OP_PREFILL,      /* kn_cuda_attention_prefill */
    KN_CUDA_OP_FLASH_BF16,   /* kn_cuda_flash_attention_bf16 */
    KN_CUDA_OP_COUNT
};
int kn_cuda_versions(enum kn_cuda_op op);
const char *kn_cuda_version_name(enum kn_cuda_op op, int version);
int kn_cuda_default_version(enum kn_cuda_op op);

/* ---- matmul (gemm.cu, gemm_bf16.cu, gemv.cu, cublas.cu) ----------------------------- */

/* float32: out (m, n) = x (m, k) W^T, W (n, k).  Any m, n, k >= 1.
 * 0, or -1 for an unknown version. */
int kn_cuda_sgemm(int version, float *out, const float *x, const float *w, int m, int n, int k);

/* bfloat16 inputs, float32 accumulation and output, on the tensor cores
 * (sm_80+): out (m, n) = x (m, k) W^T.  Any m, n >= 1; k a multiple of 8. */
int kn_cuda_bgemm(int version, float *out, const uint16_t *x, const uint16_t *w, int m, int n, int k);

/* Decode's matmul: out (m, n) = x (m, k) W^T for a few rows (1 <= m <= 8),
 * one pass over W, for W's dtype: KN_F32, KN_BF16 or KN_Q8 (w->data and
 * w->scales device pointers; w->packed ignored).  x is float32. */
int kn_cuda_gemv(int version, float *out, const float *x, const struct kn_weights *w, int m);

/* Any m and dtype: the GEMV below 9 rows, else the default GEMM (bf16 and
 * Q8 weights: x converted to bf16 / W dequantised in tiles).  SCRATCH:
 * kn_cuda_matmul_scratch_bytes(w, m) bytes of device memory (or NULL when
 * that is 0). */
size_t kn_cuda_matmul_scratch_bytes(const struct kn_weights *w, int m);
int kn_cuda_matmul(float *out, const float *x, const struct kn_weights *w, int m, void *scratch);

/* cuBLAS, the baseline: cublasSgemm, and cublasGemmEx with bf16 inputs and
 * float32 accumulation and output, for the same out = x W^T.  0, or -1. */
int kn_cublas_sgemm(float *out, const float *x, const float *w, int m, int n, int k);
int kn_cublas_bgemm(float *out, const uint16_t *x, const uint16_t *w, int m, int n, int k);

/* ---- attention (attention.cu, flash_bf16.cu) ---------------------------------------- */

/* A paged KV cache for many sequences, float32, on the device (what the
 * server pages).  Row r of K is the n_kv_heads*head_dim floats at
 * k + r * row_stride; sequence i's position p is row
 * block_tables[i * max_blocks + p / block_size] * block_size + p % block_size.
 * seq_lens[i] positions of sequence i are valid. */
struct kn_cuda_paged_kv {
    const float *k;
    const float *v;
    int row_stride;              /* floats, >= n_kv_heads * head_dim */
    int block_size;              /* rows per block, a power of two (16 by default) */
    const int32_t *block_tables; /* (n_seqs, max_blocks) */
    int max_blocks;
    const int32_t *seq_lens;     /* (n_seqs) */
};

/* Decode, batched: sequence i's query q[i] (n_heads, head_dim) attends to its
 * positions 0 .. seq_lens[i]-1; out (n_seqs, n_heads, head_dim).  Long
 * contexts are split across blocks of threads and the partial results
 * reduced by log-sum-exp (split-KV).  WORKSPACE: at least
 * kn_cuda_decode_workspace_bytes(n_seqs, max_len, s) device bytes, max_len
 * >= every seq_lens[i].  head_dim <= 256.  0, or -1. */
size_t kn_cuda_decode_workspace_bytes(int n_seqs, int max_len, const struct kn_attn_shape *s);
int kn_cuda_attention_decode(int version, float *out, const float *q, const struct kn_cuda_paged_kv *kv,
                             int n_seqs, int max_len, const struct kn_attn_shape *s, void *workspace);

/* Prefill of one sequence SEQ of KV (the server's chunked prefill): T
 * queries q (T, n_heads, head_dim) at positions pos0 .. pos0+T-1 attend
 * causally to positions 0 .. pos0+t, all already in the cache; out (T,
 * n_heads, head_dim).  Tiles of queries against K/V tiles in shared memory,
 * online softmax, no T x S score matrix.  head_dim <= 256.  0, or -1. */
int kn_cuda_attention_prefill(int version, float *out, const float *q, const struct kn_cuda_paged_kv *kv,
                              int seq, int T, int pos0, const struct kn_attn_shape *s);

/* Flash-attention forward in bfloat16 on the tensor cores, contiguous
 * (B, S, heads, head_dim) tensors: q and out with n_heads, k and v with
 * n_kv_heads (grouped-query).  CAUSAL: query t sees keys 0 .. t.  float32
 * softmax and accumulation, bf16 out.  head_dim 64 or 128.  0, or -1. */
int kn_cuda_flash_attention_bf16(int version, uint16_t *out, const uint16_t *q, const uint16_t *k,
                                 const uint16_t *v, int B, int S, const struct kn_attn_shape *s, int causal);

/* ---- elementwise, norms, sampling (ops.cu) --------------------------------------------- */

/* out[i] = table[tokens[i]] for ROWS rows of DIM floats. */
int kn_cuda_embed(float *out, const float *table, const int32_t *tokens, int rows, int dim);
/* ROWS rows of N: out = x / sqrt(mean(x^2) + eps) * w (out may alias x). */
int kn_cuda_rmsnorm(float *out, const float *x, const float *w, int rows, int n, float eps);
/* ROWS rows of (n_heads, head_dim), row r at position pos[r]: RoPE in place
 * as kn_rope. */
int kn_cuda_rope(float *x, int rows, int n_heads, int head_dim, const int32_t *pos, float theta,
                 enum kn_rope_layout layout);
/* out = silu(gate) * up over N (out may alias gate). */
int kn_cuda_swiglu(float *out, const float *gate, const float *up, size_t n);
/* x += y over N (the residual). */
int kn_cuda_add(float *x, const float *y, size_t n);
/* Conversions (round to nearest even). */
int kn_cuda_f32_to_bf16(uint16_t *dst, const float *src, size_t n);
int kn_cuda_bf16_to_f32(float *dst, const uint16_t *src, size_t n);
/* ROWS rows of N, in place, numerically stable. */
int kn_cuda_softmax(float *x, int rows, int n);
/* out[r] = index of row r's largest value (the first on ties). */
int kn_cuda_argmax(int32_t *out, const float *x, int rows, int n);

/* Sampling per row, on the device: row r's LOGITS (n; overwritten) with
 * its own temperature[r], top_k[r], top_p[r] and coin[r] in [0, 1) (device
 * arrays of ROWS).  temperature <= 0: the argmax.  Else p = softmax(logits /
 * temperature); keep the top_k most likely (top_k <= 0 or >= n: all), then of
 * those the smallest most-likely set whose mass reaches top_p (top_p >= 1:
 * all); tokens tied with the last one kept are kept too.  Draw: walking the
 * kept tokens in index order, the first whose cumulative mass exceeds
 * coin x the kept mass.  (For a given coin the token can differ from
 * kn_sample's, which walks in probability order; the distribution is the
 * same.)  out[r] is the token.  0, or -1. */
int kn_cuda_sample(int32_t *out, float *logits, int rows, int n, const float *temperature,
                   const int32_t *top_k, const float *top_p, const float *coin);

/* ---- the backend table entry (backend_cuda.cu) ---------------------------------------- */

/* "cuda": kernels.h's backend on host pointers (each call uploads, runs the
 * default version and downloads), for llmbench --backend cuda and the
 * tests shared with the CPU; NULL when there is no device. */
const struct kn_backend *kn_cuda_backend(void);

#ifdef __cplusplus
}
#endif

#endif
