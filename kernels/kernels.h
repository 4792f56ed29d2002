/* kernels.h -- the compute kernels of llmscale: one interface, several
 * implementations.
 *
 * Every kernel has a plain reference implementation (kn_*_ref: simple loops,
 * kept for tests and as the baseline) beside the fast one (kn_*: cache
 * blocking, SIMD micro-kernels chosen at run time -- AVX-512, AVX2/FMA or a
 * portable C fallback -- and OpenMP threads).  A backend table lets programs
 * pick an implementation by name ("cpu", "ref"; "cuda" comes with the CUDA
 * backend).
 *
 * Conventions (as llama2.c): row-major; a weight matrix W is (n, k) -- n
 * output features of k inputs, W[i*k + j] -- and matmul computes
 * out (m, n) = x (m, k) W^T.  Sizes are ints, counts of elements.
 * The functions do not allocate unless stated, and never fail: bad shapes are
 * programming errors caught by assert() in debug builds. */
#ifndef LLM_KERNELS_H
#define LLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- threads and instruction sets ------------------------------------------ */

/* Threads the kernels use (default: all cores, as OpenMP reports). */
void kn_set_threads(int n);
int kn_get_threads(void);
/* Give OpenMP a short spin before its threads sleep (GOMP_SPINCOUNT=10000)
 * when the user set no wait policy, by executing the program again with it
 * in the environment: call first thing in main(argv).  See backend.c. */
void kn_openmp_defaults(char **argv);

enum kn_isa {
    KN_ISA_AUTO = 0,  /* the best the CPU supports */
    KN_ISA_PORTABLE,  /* plain C, no intrinsics */
    KN_ISA_AVX2,      /* AVX2 + FMA */
    KN_ISA_AVX512,    /* AVX-512F */
};
/* Force an instruction set (tests and benchmarks compare them); an ISA the
 * CPU lacks falls back to the best one below it.  Returns the ISA in use. */
enum kn_isa kn_set_isa(enum kn_isa isa);
enum kn_isa kn_get_isa(void);
const char *kn_isa_name(enum kn_isa isa);

/* ---- weights and matmul ------------------------------------------------------ */

enum kn_dtype {
    KN_F32 = 0,
    KN_BF16,  /* bfloat16 (the top 16 bits of a float32, rounded to nearest even) */
    KN_Q8,    /* int8 with one float32 scale per group of 32 or 64 along k (like Q8_0) */
};

/* A weight matrix W (n, k).
 *  KN_F32:  data is float[n*k].
 *  KN_BF16: data is uint16_t[n*k].
 *  KN_Q8:   data is int8_t[n*k], scales is float[n*k/group]; W[i][j] =
 *           data[i*k+j] * scales[(i*k+j)/group]; k % group == 0.
 *           packed, when not NULL, is the same W re-laid by kn_pack_q8. */
struct kn_weights {
    enum kn_dtype dtype;
    int n;
    int k;
    int group;           /* KN_Q8: 32 or 64 */
    const void *data;
    const float *scales; /* KN_Q8 only */
    const void *packed;  /* KN_Q8, optional (NULL: none): see kn_pack_q8 */
};

/* out (m, n) = x (m, k) W^T.  m = 1 is a GEMV (single-stream decode); larger
 * m a GEMM (prefill, batched decode).  For KN_Q8 the activations are
 * quantised on the fly to int8 with the same group size. */
void kn_matmul(float *out, const float *x, const struct kn_weights *w, int m);
void kn_matmul_ref(float *out, const float *x, const struct kn_weights *w, int m);

/* Conversions.  kn_quantize_q8: symmetric per group (scale = max|x| / 127);
 * n % group == 0. */
void kn_quantize_q8(int8_t *q, float *scales, const float *x, size_t n, int group);
void kn_dequantize_q8(float *x, const int8_t *q, const float *scales, size_t n, int group);
void kn_f32_to_bf16(uint16_t *dst, const float *src, size_t n);
void kn_bf16_to_f32(float *dst, const uint16_t *src, size_t n);

/* KN_Q8 weights re-laid for the GEMV (made once, at load time): row by row,
 * per block of 8 groups, 8 float scale slots and then the block's int8
 * (the last block of a row holds the (k/group) % 8 groups left, its unused
 * scale slots zero), so the GEMV reads one stream per row instead of two.
 * kn_pack_q8 writes kn_pack_q8_bytes(w) bytes to DST (any alignment) and
 * sets w->packed = DST; the caller owns DST and keeps it, data and scales
 * alive as long as w is used (m > 1 and the portable kernels read data and
 * scales).  The results are bit for bit those without packing. */
size_t kn_pack_q8_bytes(const struct kn_weights *w);
void kn_pack_q8(void *dst, struct kn_weights *w);

/* ---- attention ---------------------------------------------------------------------- */

/* Heads: n_heads query heads share n_kv_heads key/value heads (grouped-query
 * attention; n_heads % n_kv_heads == 0), each of head_dim.  Scores are scaled
 * by 1/sqrt(head_dim). */
struct kn_attn_shape {
    int n_heads;
    int n_kv_heads;
    int head_dim;
};

/* A view of one sequence's KV cache for one layer.  Position p of K is the
 * n_kv_heads*head_dim floats at k + row*pos_stride, where row = p when
 * blocks is NULL (contiguous), else blocks[p / block_size] * block_size +
 * p % block_size (a paged cache: fixed-size blocks, a block table).  The same
 * for V. */
struct kn_kv_view {
    const float *k;
    const float *v;
    int pos_stride;        /* floats between rows, >= n_kv_heads*head_dim */
    int block_size;        /* rows per block (paged only) */
    const int32_t *blocks; /* block table, NULL when contiguous */
};

/* Prefill: T queries q (T, n_heads, head_dim) at positions pos0 .. pos0+T-1
 * attend causally to KV positions 0 .. pos0+t (the cache already holds them).
 * out is (T, n_heads, head_dim).  Fused and tiled with an online softmax: no
 * T x S score matrix is formed. */
void kn_attention_prefill(float *out, const float *q, const struct kn_kv_view *kv, int T, int pos0,
                          const struct kn_attn_shape *s);
void kn_attention_prefill_ref(float *out, const float *q, const struct kn_kv_view *kv, int T, int pos0,
                              const struct kn_attn_shape *s);

/* Decode: one query q (n_heads, head_dim) attends to KV positions 0 .. S-1.
 * Long contexts are split across threads and the partial results reduced
 * (flash-decoding).  out is (n_heads, head_dim). */
void kn_attention_decode(float *out, const float *q, const struct kn_kv_view *kv, int S,
                         const struct kn_attn_shape *s);
void kn_attention_decode_ref(float *out, const float *q, const struct kn_kv_view *kv, int S,
                             const struct kn_attn_shape *s);

/* ---- elementwise and sampling -------------------------------------------------------- */

/* out = x / sqrt(mean(x^2) + eps) * w, over n (out may alias x). */
void kn_rmsnorm(float *out, const float *x, const float *w, int n, float eps);

enum kn_rope_layout {
    KN_ROPE_INTERLEAVED, /* llama2.c / Meta: rotate pairs (x[2i], x[2i+1]) */
    KN_ROPE_HALF,        /* GPT-NeoX / Hugging Face: rotate (x[i], x[i + head_dim/2]) */
};
/* Rotate n_heads vectors of head_dim in x (n_heads, head_dim) in place for
 * position pos: pair i turns by pos * theta^(-2i/head_dim). */
void kn_rope(float *x, int n_heads, int head_dim, int pos, float theta, enum kn_rope_layout layout);
/* The same in two halves, so a forward pass computes a position's angles
 * once for every layer and head: kn_rope_angles writes the cosines of the
 * head_dim/2 angles of position pos to cs[0 .. head_dim/2) and their sines
 * to cs[head_dim/2 .. head_dim); kn_rope_rotate turns x by them.  kn_rope is
 * kn_rope_angles then kn_rope_rotate, bit for bit. */
void kn_rope_angles(float *cs, int head_dim, int pos, float theta);
void kn_rope_rotate(float *x, int n_heads, int head_dim, const float *cs, enum kn_rope_layout layout);

/* out = silu(gate) * up, silu(g) = g / (1 + exp(-g)) (out may alias gate). */
void kn_swiglu(float *out, const float *gate, const float *up, int n);
/* In place, numerically stable (subtracts the maximum). */
void kn_softmax(float *x, int n);
/* Index of the largest value (the first one on ties). */
int kn_argmax(const float *x, int n);

struct kn_prob_index {
    float prob;
    int index;
};
/* Draw a token from LOGITS (n; overwritten with probabilities).
 * temperature <= 0: argmax.  Else softmax(logits / temperature), keep the
 * top_k most likely (top_k <= 0 or >= n: all), then the smallest set whose
 * mass reaches top_p (top_p >= 1: all), renormalise, and pick with COIN,
 * uniform in [0, 1).  SCRATCH holds n entries. */
int kn_sample(float *logits, int n, float temperature, int top_k, float top_p, float coin,
              struct kn_prob_index *scratch);

/* ---- backends ------------------------------------------------------------------------------ */

/* An implementation of the kernels that benchmarks and the server select by name. */
struct kn_backend {
    const char *name;
    void (*matmul)(float *out, const float *x, const struct kn_weights *w, int m);
    void (*attention_prefill)(float *out, const float *q, const struct kn_kv_view *kv, int T, int pos0,
                              const struct kn_attn_shape *s);
    void (*attention_decode)(float *out, const float *q, const struct kn_kv_view *kv, int S,
                             const struct kn_attn_shape *s);
};

/* "cpu" (the fast kernels) or "ref" (the plain references); NULL if unknown. */
const struct kn_backend *kn_backend_find(const char *name);

#endif
