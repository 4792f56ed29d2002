/* attention.c -- scaled dot-product attention over a (paged) KV cache.
 *
 * Prefill (T causal queries) and decode (one query), each twice: a plain
 * reference (kn_*_ref, one score row per query, as llama2.c) and a fused
 * version that never forms the score matrix.  The fused versions share one
 * driver, att_rows_run(): a handful of query rows that use the same kv head
 * walk the keys in tiles small enough for L1/L2; each K/V tile is loaded once
 * and reused by every row, and each row keeps an online softmax (running max
 * m, running sum l, unnormalised output acc).  The inner loops -- dot
 * products, exponentials, weighted sums of V rows -- come in a portable C and
 * an AVX2/FMA flavour, picked at run time with kn_get_isa().
 *
 * Work split (OpenMP):
 *   prefill: items are (kv head, head block, query tile); the tiles nearest
 *            the end of the sequence see the most keys, so they go first and
 *            a dynamic schedule evens out the causal triangle.
 *   decode:  items are (block of kv heads, key chunk) (flash-decoding);
 *            the chunks' partial (m, l, acc) are combined by log-sum-exp
 *            rescaling.  The query heads of a group share every K/V row
 *            load, so each K/V byte is read from memory once per call.
 *            With AVX2 and 4 query heads per kv head, items are key chunks
 *            over all heads, walked row by row (see kn_attention_decode). */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KN_ATT_X86 1
#endif

#include "kernels/kernels.h"

enum {
    KN_ATT_MAX_ROWS = 16,     /* query rows (position, head) per work item */
    KN_ATT_MAX_TILE = 256,    /* keys per K/V tile */
    KN_ATT_TILE_FLOATS = 8192, /* a K tile plus a V tile: 64 KiB */
    KN_ATT_MIN_CHUNK = 256,   /* decode: fewest keys worth a split of their own */
    KN_ATT_SCRATCH = 32768,   /* decode: floats of partial results on the stack (128 KiB) */
    KN_ATT_MAX_SETS = 8,      /* decode: row sets (a kv head's query heads) per work item */
    KN_ATT_DECODE_TILE_FLOATS = 16384, /* decode: a tile's K rows, 64 KiB (and as much V) */
};

/* ---- the KV view -------------------------------------------------------------- */

/* Row of the cache that holds position P (see struct kn_kv_view). */
static inline size_t kv_row(const struct kn_kv_view *kv, int p)
{
    if (kv->blocks == NULL)
        return (size_t)p;
    return (size_t)kv->blocks[p / kv->block_size] * (size_t)kv->block_size + (size_t)(p % kv->block_size);
}

/* K or V (BASE) of kv head G at position P; head_dim floats. */
static inline const float *kv_at(const struct kn_kv_view *kv, const float *base, int p, int g, int head_dim)
{
    return base + kv_row(kv, p) * (size_t)kv->pos_stride + (size_t)g * (size_t)head_dim;
}

static void check_shape(const struct kn_kv_view *kv, const struct kn_attn_shape *s)
{
    (void)kv;
    (void)s;
    assert(s->n_heads > 0 && s->n_kv_heads > 0 && s->head_dim > 0);
    assert(s->n_heads % s->n_kv_heads == 0);
    assert(kv->pos_stride >= s->n_kv_heads * s->head_dim);
    assert(kv->blocks == NULL || kv->block_size > 0);
}

/* ---- reference ---------------------------------------------------------------- */

/* out (head_dim) = softmax(q . K[0..n_pos) * scale) V for kv head G, with the
 * scores materialised in ATT (n_pos floats). */
static void attend_one_ref(float *out, const float *q, const struct kn_kv_view *kv, int n_pos, int g, int head_dim,
                           float scale, float *att)
{
    float max = -INFINITY;
    for (int p = 0; p < n_pos; p++) {
        const float *k = kv_at(kv, kv->k, p, g, head_dim);
        float score = 0.0f;
        for (int i = 0; i < head_dim; i++)
            score += q[i] * k[i];
        att[p] = score * scale;
        if (att[p] > max)
            max = att[p];
    }
    float sum = 0.0f;
    for (int p = 0; p < n_pos; p++) {
        att[p] = expf(att[p] - max);
        sum += att[p];
    }
    memset(out, 0, (size_t)head_dim * sizeof *out);
    for (int p = 0; p < n_pos; p++) {
        const float *v = kv_at(kv, kv->v, p, g, head_dim);
        float a = att[p] / sum;
        for (int i = 0; i < head_dim; i++)
            out[i] += a * v[i];
    }
}

/* The plain prefill: one score row per (query, head).  Allocates that row;
 * aborts if it cannot. */
void kn_attention_prefill_ref(float *out, const float *q, const struct kn_kv_view *kv, int T, int pos0,
                              const struct kn_attn_shape *s)
{
    check_shape(kv, s);
    int hd = s->head_dim, group = s->n_heads / s->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    float *att = malloc((size_t)(pos0 + T) * sizeof *att);
    if (att == NULL)
        abort();
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < s->n_heads; h++) {
            size_t off = ((size_t)t * s->n_heads + h) * hd;
            attend_one_ref(out + off, q + off, kv, pos0 + t + 1, h / group, hd, scale, att);
        }
    }
    free(att);
}

/* The plain decode: one score row per head.  Allocates that row; aborts if it
 * cannot. */
void kn_attention_decode_ref(float *out, const float *q, const struct kn_kv_view *kv, int S,
                             const struct kn_attn_shape *s)
{
    check_shape(kv, s);
    assert(S >= 1);
    int hd = s->head_dim, group = s->n_heads / s->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    float *att = malloc((size_t)S * sizeof *att);
    if (att == NULL)
        abort();
    for (int h = 0; h < s->n_heads; h++)
        attend_one_ref(out + (size_t)h * hd, q + (size_t)h * hd, kv, S, h / group, hd, scale, att);
    free(att);
}

/* ---- inner loops: portable C ------------------------------------------------------ */

/* The three inner loops of a tile, per instruction set, for a group of
 * NR <= 4 query rows (row r: q[r], acc[r], scores at sc + r*ld):
 *   scores:     sc[r][j] = (q[r] . kp[j]) * scale, j < n; all (head_dim).
 *   exp:        sc[j] = exp(sc[j] - max), j < n, for one row (every
 *               sc[j] <= max; -inf gives 0); returns their sum.
 *   accumulate: acc[r] = acc[r] * alpha[r] + sum_j p[r][j] * vp[j], j < n,
 *               with p[r] at p + r*ld; all (head_dim).
 * Each K and V row is loaded once per group, so the rows of a group share
 * every load (the cache's rows are often 4 KiB apart, which L1 cannot hold
 * many of). */
struct att_isa {
    void (*scores)(float *sc, int ld, const float *const *q, int nr, const float *const *kp, int n, int head_dim,
                   float scale);
    float (*exp)(float *sc, int n, float max);
    void (*accumulate)(float *const *acc, const float *alpha, const float *p, int ld, int nr,
                       const float *const *vp, int n, int head_dim);
};

static void att_scores_c(float *sc, int ld, const float *const *q, int nr, const float *const *kp, int n,
                         int head_dim, float scale)
{
    for (int r = 0; r < nr; r++) {
        for (int j = 0; j < n; j++) {
            const float *k = kp[j];
            float dot = 0.0f;
            for (int i = 0; i < head_dim; i++)
                dot += q[r][i] * k[i];
            sc[r * ld + j] = dot * scale;
        }
    }
}

static float att_exp_c(float *sc, int n, float max)
{
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
        sc[j] = expf(sc[j] - max);
        sum += sc[j];
    }
    return sum;
}

static void att_accumulate_c(float *const *acc, const float *alpha, const float *p, int ld, int nr,
                             const float *const *vp, int n, int head_dim)
{
    for (int r = 0; r < nr; r++) {
        float *o = acc[r];
        if (alpha[r] != 1.0f)
            for (int i = 0; i < head_dim; i++)
                o[i] *= alpha[r];
        for (int j = 0; j < n; j++) {
            const float *v = vp[j];
            float pj = p[r * ld + j];
            for (int i = 0; i < head_dim; i++)
                o[i] += pj * v[i];
        }
    }
}

static const struct att_isa att_isa_c = {
    .scores = att_scores_c,
    .exp = att_exp_c,
    .accumulate = att_accumulate_c,
};

/* ---- inner loops: AVX2 + FMA ------------------------------------------------------- */

#ifdef KN_ATT_X86
/* Lanes 0 .. n-1 set (n in 0..8), for the head_dim tail. */
__attribute__((target("avx2,fma"))) static inline __m256i att_tail_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Sum of the 8 lanes. */
__attribute__((target("avx2,fma"))) static inline float att_hsum(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* exp(x) for x <= 0, relative error about 2e-7: x = n ln2 + f with
 * |f| <= ln2/2, e^f by its degree-6 Taylor polynomial, 2^n through the
 * exponent bits.  Below -87 (and for -inf) the result is 0. */
__attribute__((target("avx2,fma"))) static inline __m256 att_exp256(__m256 x)
{
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504089f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x); /* ln2, high bits */
    f = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), f);    /* ln2, low bits */
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

/* One row.  Eight keys at a time (eight independent FMA chains hide the FMA latency),
 * their dot products reduced together with a tree of hadds. */
__attribute__((target("avx2,fma"))) static void att_scores1_avx2(float *sc, const float *q, const float *const *kp,
                                                                  int n, int head_dim, float scale)
{
    int d8 = head_dim & ~7;
    __m256i mask = att_tail_mask(head_dim - d8);
    __m256 vscale = _mm256_set1_ps(scale);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        const float *k0 = kp[j], *k1 = kp[j + 1], *k2 = kp[j + 2], *k3 = kp[j + 3];
        const float *k4 = kp[j + 4], *k5 = kp[j + 5], *k6 = kp[j + 6], *k7 = kp[j + 7];
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps();
        __m256 a3 = _mm256_setzero_ps(), a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps();
        __m256 a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps();
        for (int d = 0; d < d8; d += 8) {
            __m256 qv = _mm256_loadu_ps(q + d);
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + d), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + d), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + d), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + d), a3);
            a4 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k4 + d), a4);
            a5 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k5 + d), a5);
            a6 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k6 + d), a6);
            a7 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k7 + d), a7);
        }
        if (d8 < head_dim) {
            __m256 qv = _mm256_maskload_ps(q + d8, mask);
            a0 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k0 + d8, mask), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k1 + d8, mask), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k2 + d8, mask), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k3 + d8, mask), a3);
            a4 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k4 + d8, mask), a4);
            a5 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k5 + d8, mask), a5);
            a6 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k6 + d8, mask), a6);
            a7 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k7 + d8, mask), a7);
        }
        /* hadd tree: u0 = (low halves of dots 0-3 | high halves of 0-3), u1 the same for 4-7 */
        __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
        __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
        __m256 dots = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
        _mm256_storeu_ps(sc + j, _mm256_mul_ps(dots, vscale));
    }
    for (; j < n; j++) {
        const float *k = kp[j];
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int d = 0;
        for (; d + 16 <= d8; d += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), _mm256_loadu_ps(k + d + 8), a1);
        }
        for (; d < d8; d += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), a0);
        if (d8 < head_dim)
            a1 = _mm256_fmadd_ps(_mm256_maskload_ps(q + d8, mask), _mm256_maskload_ps(k + d8, mask), a1);
        sc[j] = att_hsum(_mm256_add_ps(a0, a1)) * scale;
    }
}

__attribute__((target("avx2,fma"))) static float att_exp_avx2(float *sc, int n, float max)
{
    __m256 vmax = _mm256_set1_ps(max), vsum = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = att_exp256(_mm256_sub_ps(_mm256_loadu_ps(sc + j), vmax));
        _mm256_storeu_ps(sc + j, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float sum = att_hsum(vsum);
    for (; j < n; j++) {
        sc[j] = expf(sc[j] - max);
        sum += sc[j];
    }
    return sum;
}

/* One row.  acc in registers, 64 floats (eight FMA chains) at a time, while the keys
 * stream past; then 8 at a time; then the masked tail. */
__attribute__((target("avx2,fma"))) static void att_accumulate1_avx2(float *acc, float alpha, const float *p,
                                                                      const float *const *vp, int n, int head_dim)
{
    __m256 va = _mm256_set1_ps(alpha);
    int rescale = alpha != 1.0f;
    int d = 0;
    for (; d + 64 <= head_dim; d += 64) {
        float *o = acc + d;
        __m256 a0 = _mm256_loadu_ps(o), a1 = _mm256_loadu_ps(o + 8), a2 = _mm256_loadu_ps(o + 16);
        __m256 a3 = _mm256_loadu_ps(o + 24), a4 = _mm256_loadu_ps(o + 32), a5 = _mm256_loadu_ps(o + 40);
        __m256 a6 = _mm256_loadu_ps(o + 48), a7 = _mm256_loadu_ps(o + 56);
        if (rescale) {
            a0 = _mm256_mul_ps(a0, va), a1 = _mm256_mul_ps(a1, va), a2 = _mm256_mul_ps(a2, va);
            a3 = _mm256_mul_ps(a3, va), a4 = _mm256_mul_ps(a4, va), a5 = _mm256_mul_ps(a5, va);
            a6 = _mm256_mul_ps(a6, va), a7 = _mm256_mul_ps(a7, va);
        }
        for (int j = 0; j < n; j++) {
            __m256 pj = _mm256_broadcast_ss(p + j);
            const float *v = vp[j] + d;
            a0 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v), a0);
            a1 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 8), a1);
            a2 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 16), a2);
            a3 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 24), a3);
            a4 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 32), a4);
            a5 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 40), a5);
            a6 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 48), a6);
            a7 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 56), a7);
        }
        _mm256_storeu_ps(o, a0), _mm256_storeu_ps(o + 8, a1), _mm256_storeu_ps(o + 16, a2);
        _mm256_storeu_ps(o + 24, a3), _mm256_storeu_ps(o + 32, a4), _mm256_storeu_ps(o + 40, a5);
        _mm256_storeu_ps(o + 48, a6), _mm256_storeu_ps(o + 56, a7);
    }
    for (; d + 8 <= head_dim; d += 8) {
        __m256 a0 = _mm256_loadu_ps(acc + d), a1 = _mm256_setzero_ps();
        if (rescale)
            a0 = _mm256_mul_ps(a0, va);
        int j = 0;
        for (; j + 2 <= n; j += 2) {
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), _mm256_loadu_ps(vp[j] + d), a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j + 1), _mm256_loadu_ps(vp[j + 1] + d), a1);
        }
        if (j < n)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), _mm256_loadu_ps(vp[j] + d), a0);
        _mm256_storeu_ps(acc + d, _mm256_add_ps(a0, a1));
    }
    if (d < head_dim) {
        __m256i mask = att_tail_mask(head_dim - d);
        __m256 a0 = _mm256_maskload_ps(acc + d, mask);
        if (rescale)
            a0 = _mm256_mul_ps(a0, va);
        for (int j = 0; j < n; j++)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), _mm256_maskload_ps(vp[j] + d, mask), a0);
        _mm256_maskstore_ps(acc + d, mask, a0);
    }
}

/* A value the compiler must keep in a register: without it GCC folds each q
 * load into both of its FMAs, and the loads, not the FMAs, set the pace. */
__attribute__((target("avx2,fma"))) static inline __m256 att_pin(__m256 x)
{
    __asm__("" : "+x"(x));
    return x;
}

/* Four rows, two keys at a time: per 8 floats of head_dim, 2 K loads and 4 q
 * loads feed 8 FMAs into 8 independent chains. */
__attribute__((target("avx2,fma"))) static void att_scores4_avx2(float *sc, int ld, const float *const *q,
                                                                  const float *const *kp, int n, int head_dim,
                                                                  float scale)
{
    const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
    int d8 = head_dim & ~7;
    __m256i mask = att_tail_mask(head_dim - d8);
    __m128 vscale = _mm_set1_ps(scale);
    int j = 0;
    for (; j < n; j += 2) {
        const float *k0 = kp[j], *k1 = kp[j + 1 < n ? j + 1 : j];
        __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps(), a10 = _mm256_setzero_ps();
        __m256 a11 = _mm256_setzero_ps(), a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps();
        __m256 a30 = _mm256_setzero_ps(), a31 = _mm256_setzero_ps();
        for (int d = 0; d < d8; d += 8) {
            __m256 x0 = _mm256_loadu_ps(k0 + d), x1 = _mm256_loadu_ps(k1 + d), qv;
            qv = att_pin(_mm256_loadu_ps(q0 + d));
            a00 = _mm256_fmadd_ps(qv, x0, a00);
            a01 = _mm256_fmadd_ps(qv, x1, a01);
            qv = att_pin(_mm256_loadu_ps(q1 + d));
            a10 = _mm256_fmadd_ps(qv, x0, a10);
            a11 = _mm256_fmadd_ps(qv, x1, a11);
            qv = att_pin(_mm256_loadu_ps(q2 + d));
            a20 = _mm256_fmadd_ps(qv, x0, a20);
            a21 = _mm256_fmadd_ps(qv, x1, a21);
            qv = att_pin(_mm256_loadu_ps(q3 + d));
            a30 = _mm256_fmadd_ps(qv, x0, a30);
            a31 = _mm256_fmadd_ps(qv, x1, a31);
        }
        if (d8 < head_dim) {
            __m256 x0 = _mm256_maskload_ps(k0 + d8, mask), x1 = _mm256_maskload_ps(k1 + d8, mask), qv;
            qv = _mm256_maskload_ps(q0 + d8, mask);
            a00 = _mm256_fmadd_ps(qv, x0, a00);
            a01 = _mm256_fmadd_ps(qv, x1, a01);
            qv = _mm256_maskload_ps(q1 + d8, mask);
            a10 = _mm256_fmadd_ps(qv, x0, a10);
            a11 = _mm256_fmadd_ps(qv, x1, a11);
            qv = _mm256_maskload_ps(q2 + d8, mask);
            a20 = _mm256_fmadd_ps(qv, x0, a20);
            a21 = _mm256_fmadd_ps(qv, x1, a21);
            qv = _mm256_maskload_ps(q3 + d8, mask);
            a30 = _mm256_fmadd_ps(qv, x0, a30);
            a31 = _mm256_fmadd_ps(qv, x1, a31);
        }
        /* lanes: (r0 k0, r0 k1, r1 k0, r1 k1 | r2 k0, r2 k1, r3 k0, r3 k1) */
        __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a00, a01), _mm256_hadd_ps(a10, a11));
        __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a20, a21), _mm256_hadd_ps(a30, a31));
        __m128 d01 = _mm_mul_ps(_mm_add_ps(_mm256_castps256_ps128(u0), _mm256_extractf128_ps(u0, 1)), vscale);
        __m128 d23 = _mm_mul_ps(_mm_add_ps(_mm256_castps256_ps128(u1), _mm256_extractf128_ps(u1, 1)), vscale);
        if (j + 1 < n) {
            _mm_storel_pi((__m64 *)(sc + j), d01);
            _mm_storeh_pi((__m64 *)(sc + ld + j), d01);
            _mm_storel_pi((__m64 *)(sc + 2 * ld + j), d23);
            _mm_storeh_pi((__m64 *)(sc + 3 * ld + j), d23);
        } else {
            float t[8];
            _mm_storeu_ps(t, d01);
            _mm_storeu_ps(t + 4, d23);
            sc[j] = t[0], sc[ld + j] = t[2], sc[2 * ld + j] = t[4], sc[3 * ld + j] = t[6];
        }
    }
}

__attribute__((target("avx2,fma"))) static void att_scores_avx2(float *sc, int ld, const float *const *q, int nr,
                                                                 const float *const *kp, int n, int head_dim,
                                                                 float scale)
{
    if (nr == 4) {
        att_scores4_avx2(sc, ld, q, kp, n, head_dim, scale);
        return;
    }
    for (int r = 0; r < nr; r++)
        att_scores1_avx2(sc + r * ld, q[r], kp, n, head_dim, scale);
}

/* Four rows, 16 floats of head_dim at a time: per key, 2 V loads and 4
 * broadcasts of p feed 8 FMAs into 8 independent chains. */
__attribute__((target("avx2,fma"))) static void att_accumulate4_avx2(float *const *acc, const float *alpha,
                                                                      const float *p, int ld,
                                                                      const float *const *vp, int n, int head_dim)
{
    const float *p0 = p, *p1 = p + ld, *p2 = p + 2 * ld, *p3 = p + 3 * ld;
    float *o0 = acc[0], *o1 = acc[1], *o2 = acc[2], *o3 = acc[3];
    __m256 s0 = _mm256_set1_ps(alpha[0]), s1 = _mm256_set1_ps(alpha[1]);
    __m256 s2 = _mm256_set1_ps(alpha[2]), s3 = _mm256_set1_ps(alpha[3]);
    int d = 0;
    for (; d + 16 <= head_dim; d += 16) {
        __m256 a00 = _mm256_mul_ps(_mm256_loadu_ps(o0 + d), s0), a01 = _mm256_mul_ps(_mm256_loadu_ps(o0 + d + 8), s0);
        __m256 a10 = _mm256_mul_ps(_mm256_loadu_ps(o1 + d), s1), a11 = _mm256_mul_ps(_mm256_loadu_ps(o1 + d + 8), s1);
        __m256 a20 = _mm256_mul_ps(_mm256_loadu_ps(o2 + d), s2), a21 = _mm256_mul_ps(_mm256_loadu_ps(o2 + d + 8), s2);
        __m256 a30 = _mm256_mul_ps(_mm256_loadu_ps(o3 + d), s3), a31 = _mm256_mul_ps(_mm256_loadu_ps(o3 + d + 8), s3);
        for (int j = 0; j < n; j++) {
            __m256 x0 = _mm256_loadu_ps(vp[j] + d), x1 = _mm256_loadu_ps(vp[j] + d + 8), pj;
            pj = _mm256_broadcast_ss(p0 + j);
            a00 = _mm256_fmadd_ps(pj, x0, a00);
            a01 = _mm256_fmadd_ps(pj, x1, a01);
            pj = _mm256_broadcast_ss(p1 + j);
            a10 = _mm256_fmadd_ps(pj, x0, a10);
            a11 = _mm256_fmadd_ps(pj, x1, a11);
            pj = _mm256_broadcast_ss(p2 + j);
            a20 = _mm256_fmadd_ps(pj, x0, a20);
            a21 = _mm256_fmadd_ps(pj, x1, a21);
            pj = _mm256_broadcast_ss(p3 + j);
            a30 = _mm256_fmadd_ps(pj, x0, a30);
            a31 = _mm256_fmadd_ps(pj, x1, a31);
        }
        _mm256_storeu_ps(o0 + d, a00), _mm256_storeu_ps(o0 + d + 8, a01);
        _mm256_storeu_ps(o1 + d, a10), _mm256_storeu_ps(o1 + d + 8, a11);
        _mm256_storeu_ps(o2 + d, a20), _mm256_storeu_ps(o2 + d + 8, a21);
        _mm256_storeu_ps(o3 + d, a30), _mm256_storeu_ps(o3 + d + 8, a31);
    }
    if (d < head_dim) { /* 1 to 15 floats left: the rows one by one */
        float *rest[4] = {o0 + d, o1 + d, o2 + d, o3 + d};
        const float *vrest[KN_ATT_MAX_TILE];
        for (int j = 0; j < n; j++)
            vrest[j] = vp[j] + d;
        for (int r = 0; r < 4; r++)
            att_accumulate1_avx2(rest[r], alpha[r], p + r * ld, vrest, n, head_dim - d);
    }
}

__attribute__((target("avx2,fma"))) static void att_accumulate_avx2(float *const *acc, const float *alpha,
                                                                     const float *p, int ld, int nr,
                                                                     const float *const *vp, int n, int head_dim)
{
    if (nr == 4) {
        att_accumulate4_avx2(acc, alpha, p, ld, vp, n, head_dim);
        return;
    }
    for (int r = 0; r < nr; r++)
        att_accumulate1_avx2(acc[r], alpha[r], p + r * ld, vp, n, head_dim);
}


/* Decode, row order: acc[r] += p[r][0] * v0 + p[r][1] * v1 for the four
 * query heads r of one kv head (nk = 1: v0 only), head_dim % 8 == 0.  The
 * accumulators stay in memory (L1); per 8 floats, 2 V loads, 4 accumulator
 * loads and stores feed 8 FMAs. */
__attribute__((target("avx2,fma"))) static void att_dec_acc4_avx2(float *const *acc, const float *p, int ld,
                                                                   const float *v0, const float *v1, int nk,
                                                                   int head_dim)
{
    float *o0 = acc[0], *o1 = acc[1], *o2 = acc[2], *o3 = acc[3];
    __m256 p00 = _mm256_set1_ps(p[0]), p10 = _mm256_set1_ps(p[ld]);
    __m256 p20 = _mm256_set1_ps(p[2 * ld]), p30 = _mm256_set1_ps(p[3 * ld]);
    if (nk == 2) {
        __m256 p01 = _mm256_set1_ps(p[1]), p11 = _mm256_set1_ps(p[ld + 1]);
        __m256 p21 = _mm256_set1_ps(p[2 * ld + 1]), p31 = _mm256_set1_ps(p[3 * ld + 1]);
        for (int d = 0; d < head_dim; d += 8) {
            __m256 x0 = _mm256_loadu_ps(v0 + d), x1 = _mm256_loadu_ps(v1 + d);
            _mm256_storeu_ps(o0 + d, _mm256_fmadd_ps(p01, x1, _mm256_fmadd_ps(p00, x0, _mm256_loadu_ps(o0 + d))));
            _mm256_storeu_ps(o1 + d, _mm256_fmadd_ps(p11, x1, _mm256_fmadd_ps(p10, x0, _mm256_loadu_ps(o1 + d))));
            _mm256_storeu_ps(o2 + d, _mm256_fmadd_ps(p21, x1, _mm256_fmadd_ps(p20, x0, _mm256_loadu_ps(o2 + d))));
            _mm256_storeu_ps(o3 + d, _mm256_fmadd_ps(p31, x1, _mm256_fmadd_ps(p30, x0, _mm256_loadu_ps(o3 + d))));
        }
        return;
    }
    for (int d = 0; d < head_dim; d += 8) {
        __m256 x0 = _mm256_loadu_ps(v0 + d);
        _mm256_storeu_ps(o0 + d, _mm256_fmadd_ps(p00, x0, _mm256_loadu_ps(o0 + d)));
        _mm256_storeu_ps(o1 + d, _mm256_fmadd_ps(p10, x0, _mm256_loadu_ps(o1 + d)));
        _mm256_storeu_ps(o2 + d, _mm256_fmadd_ps(p20, x0, _mm256_loadu_ps(o2 + d)));
        _mm256_storeu_ps(o3 + d, _mm256_fmadd_ps(p30, x0, _mm256_loadu_ps(o3 + d)));
    }
}

/* Decode, row order: the scores of NR (1 to 3) query heads Q[0..NR) of one
 * kv head against two keys K0 and K1, head_dim % 8 == 0, into sc[r * ld]
 * and sc[r * ld + 1].  Inlined with NR a constant, so the 2 NR chains stay
 * in registers. */
__attribute__((target("avx2,fma"), always_inline)) static inline void att_dec_scores_n(float *sc, int ld,
                                                                                      const float *const *q,
                                                                                      const float *k0,
                                                                                      const float *k1,
                                                                                      int head_dim, float scale,
                                                                                      const int nr)
{
    __m256 a0[3], a1[3];
    for (int r = 0; r < nr; r++)
        a0[r] = a1[r] = _mm256_setzero_ps();
    for (int d = 0; d < head_dim; d += 8) {
        __m256 x0 = _mm256_loadu_ps(k0 + d), x1 = _mm256_loadu_ps(k1 + d);
        for (int r = 0; r < nr; r++) {
            __m256 qv = att_pin(_mm256_loadu_ps(q[r] + d));
            a0[r] = _mm256_fmadd_ps(qv, x0, a0[r]);
            a1[r] = _mm256_fmadd_ps(qv, x1, a1[r]);
        }
    }
    for (int r = 0; r < nr; r++) {
        sc[r * ld] = att_hsum(a0[r]) * scale;
        sc[r * ld + 1] = att_hsum(a1[r]) * scale;
    }
}

/* The scores of NR (1 to 4) query heads against two keys KP[0], KP[1]. */
__attribute__((target("avx2,fma"))) static void att_dec_scores(float *sc, int ld, const float *const *q,
                                                                const float *const *kp, int nr, int head_dim,
                                                                float scale)
{
    switch (nr) {
    case 4:
        att_scores4_avx2(sc, ld, q, kp, 2, head_dim, scale);
        break;
    case 3:
        att_dec_scores_n(sc, ld, q, kp[0], kp[1], head_dim, scale, 3);
        break;
    case 2:
        att_dec_scores_n(sc, ld, q, kp[0], kp[1], head_dim, scale, 2);
        break;
    default:
        att_dec_scores_n(sc, ld, q, kp[0], kp[1], head_dim, scale, 1);
        break;
    }
}

/* Decode, row order: acc[r] += p[r][0] * v0 + p[r][1] * v1 for NR (1 to 3)
 * query heads, head_dim % 8 == 0; NR a constant where inlined. */
__attribute__((target("avx2,fma"), always_inline)) static inline void att_dec_acc_n(float *const *acc,
                                                                                   const float *p, int ld,
                                                                                   const float *v0,
                                                                                   const float *v1, int head_dim,
                                                                                   const int nr)
{
    __m256 p0[3], p1[3];
    for (int r = 0; r < nr; r++) {
        p0[r] = _mm256_set1_ps(p[r * ld]);
        p1[r] = _mm256_set1_ps(p[r * ld + 1]);
    }
    for (int d = 0; d < head_dim; d += 8) {
        __m256 x0 = _mm256_loadu_ps(v0 + d), x1 = _mm256_loadu_ps(v1 + d);
        for (int r = 0; r < nr; r++)
            _mm256_storeu_ps(acc[r] + d,
                             _mm256_fmadd_ps(p1[r], x1, _mm256_fmadd_ps(p0[r], x0, _mm256_loadu_ps(acc[r] + d))));
    }
}

/* acc[r] += p[r][0] * v0 + p[r][1] * v1 for NR (1 to 4) query heads. */
__attribute__((target("avx2,fma"))) static void att_dec_acc(float *const *acc, const float *p, int ld,
                                                             const float *v0, const float *v1, int nr,
                                                             int head_dim)
{
    switch (nr) {
    case 4:
        att_dec_acc4_avx2(acc, p, ld, v0, v1, 2, head_dim);
        break;
    case 3:
        att_dec_acc_n(acc, p, ld, v0, v1, head_dim, 3);
        break;
    case 2:
        att_dec_acc_n(acc, p, ld, v0, v1, head_dim, 2);
        break;
    default:
        att_dec_acc_n(acc, p, ld, v0, v1, head_dim, 1);
        break;
    }
}

static const struct att_isa att_isa_avx2 = {
    .scores = att_scores_avx2,
    .exp = att_exp_avx2,
    .accumulate = att_accumulate_avx2,
};
#endif

static const struct att_isa *att_isa_pick(void)
{
#ifdef KN_ATT_X86
    if (kn_get_isa() >= KN_ISA_AVX2)
        return &att_isa_avx2;
#endif
    return &att_isa_c;
}

/* ---- the fused driver ------------------------------------------------------------- */

/* The query rows one work item carries through the online softmax: up to
 * KN_ATT_MAX_ROWS (position, head) pairs that all use one kv head. */
struct att_rows {
    int n;
    const float *q[KN_ATT_MAX_ROWS]; /* (head_dim) */
    float *acc[KN_ATT_MAX_ROWS];     /* (head_dim): sum of exp(score - m) * v so far */
    int last[KN_ATT_MAX_ROWS];       /* the last key position the row sees (causal) */
    float m[KN_ATT_MAX_ROWS];        /* running max of the scaled scores */
    float l[KN_ATT_MAX_ROWS];        /* running sum of exp(score - m) */
};

/* Start row I: acc zeroed, nothing seen yet. */
static void att_row_init(struct att_rows *r, int i, const float *q, float *acc, int last, int head_dim)
{
    r->q[i] = q;
    r->acc[i] = acc;
    r->last[i] = last;
    r->m[i] = -INFINITY;
    r->l[i] = 0.0f;
    memset(acc, 0, (size_t)head_dim * sizeof *acc);
}

/* Keys per tile: a K tile and a V tile of kv head together about 64 KiB. */
static int att_tile(int head_dim)
{
    int tile = KN_ATT_TILE_FLOATS / head_dim;
    if (tile > KN_ATT_MAX_TILE)
        tile = KN_ATT_MAX_TILE;
    if (tile < 8)
        tile = 8;
    return tile;
}

/* Feed keys [j_begin, j_end) of kv head G to every row of R (a row ignores
 * the keys past its r->last).  Tiles of TILE keys: the block table is looked
 * up once per key; the rows go through a tile in groups of four, so each K
 * and V row of the tile is loaded once per group.  Rows are ordered by
 * r->last, and every row must see at least one key of the first tile.
 * Causal masking costs only on the diagonal tiles: a group stops at the last
 * key its last row sees, and the scores past a row's own last key are -inf. */
static void att_rows_run(struct att_rows *r, const struct kn_kv_view *kv, int g, int head_dim, float scale,
                         int j_begin, int j_end, int tile, const struct att_isa *isa)
{
    const float *kp[KN_ATT_MAX_TILE], *vp[KN_ATT_MAX_TILE];
    float sc[KN_ATT_MAX_ROWS * KN_ATT_MAX_TILE];
    float alpha[KN_ATT_MAX_ROWS];
    int ld = tile;

    assert(tile <= KN_ATT_MAX_TILE);
    for (int j0 = j_begin; j0 < j_end; j0 += tile) {
        int n = j_end - j0 < tile ? j_end - j0 : tile;
        for (int j = 0; j < n; j++) {
            size_t off = kv_row(kv, j0 + j) * (size_t)kv->pos_stride + (size_t)g * (size_t)head_dim;
            kp[j] = kv->k + off;
            vp[j] = kv->v + off;
        }
        int first = 0; /* rows before it see none of this tile */
        while (first < r->n && r->last[first] < j0)
            first++;
        for (int i0 = first; i0 < r->n; i0 += 4) {
            int nr = r->n - i0 < 4 ? r->n - i0 : 4;
            int nq = r->last[i0 + nr - 1] - j0 + 1;
            if (nq > n)
                nq = n;
            float *s = sc + (size_t)i0 * ld;
            isa->scores(s, ld, r->q + i0, nr, kp, nq, head_dim, scale);
            for (int i = i0; i < i0 + nr; i++, s += ld) {
                for (int j = r->last[i] - j0 + 1; j < nq; j++)
                    s[j] = -INFINITY;
                float m_new = r->m[i];
                for (int j = 0; j < nq; j++)
                    if (s[j] > m_new)
                        m_new = s[j];
                /* exp(-inf) = 0 on a row's first tile, where acc is still 0 */
                alpha[i] = m_new == r->m[i] ? 1.0f : expf(r->m[i] - m_new);
                r->l[i] = r->l[i] * alpha[i] + isa->exp(s, nq, m_new);
                r->m[i] = m_new;
            }
            isa->accumulate(r->acc + i0, alpha + i0, sc + (size_t)i0 * ld, ld, nr, vp, nq, head_dim);
        }
    }
}

/* out = acc / l for every row (the softmax's denominator, applied once). */
static void att_rows_finish(struct att_rows *r, int head_dim)
{
    for (int i = 0; i < r->n; i++) {
        float inv = 1.0f / r->l[i];
        float *acc = r->acc[i];
        for (int d = 0; d < head_dim; d++)
            acc[d] *= inv;
    }
}

/* ---- prefill ------------------------------------------------------------------------ */

/* Fused causal prefill.  A work item is BQ consecutive query positions times
 * HB query heads of one kv head (BQ * HB <= 16 rows: 4 positions x 4 heads
 * for 32/8 heads), run over keys 0 .. pos0 + (its last position) in tiles of
 * att_tile() keys; out rows serve as the accumulators. */
void kn_attention_prefill(float *out, const float *q, const struct kn_kv_view *kv, int T, int pos0,
                          const struct kn_attn_shape *s)
{
    check_shape(kv, s);
    assert(T >= 0 && pos0 >= 0);
    if (T == 0)
        return;
    const struct att_isa *isa = att_isa_pick();
    int hd = s->head_dim, n_heads = s->n_heads, n_kv = s->n_kv_heads;
    int group = n_heads / n_kv;
    int hb = group < KN_ATT_MAX_ROWS ? group : KN_ATT_MAX_ROWS; /* heads per item */
    int n_hblocks = (group + hb - 1) / hb;
    int bq = KN_ATT_MAX_ROWS / hb; /* positions per item */
    int n_qtiles = (T + bq - 1) / bq;
    int per_qtile = n_kv * n_hblocks;
    int items = n_qtiles * per_qtile;
    int tile = att_tile(hd);
    float scale = 1.0f / sqrtf((float)hd);
    int nt = kn_get_threads();

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1 && items > 1)
    for (int it = 0; it < items; it++) {
        int qt = n_qtiles - 1 - it / per_qtile; /* the longest rows first */
        int g = it % per_qtile / n_hblocks;
        int h_first = g * group + it % n_hblocks * hb;
        int h_end = h_first + hb < (g + 1) * group ? h_first + hb : (g + 1) * group;
        int t_first = qt * bq;
        int t_end = t_first + bq < T ? t_first + bq : T;
        struct att_rows r;
        r.n = 0;
        for (int t = t_first; t < t_end; t++) {
            for (int h = h_first; h < h_end; h++) {
                size_t off = ((size_t)t * n_heads + h) * hd;
                att_row_init(&r, r.n++, q + off, out + off, pos0 + t, hd);
            }
        }
        att_rows_run(&r, kv, g, hd, scale, 0, pos0 + t_end, tile, isa);
        att_rows_finish(&r, hd);
    }
}

/* ---- decode ------------------------------------------------------------------------- */

#ifdef KN_ATT_X86
enum {
    KN_ATT_ROW_TILE = 512,   /* decode, row order: most keys per tile */
    KN_ATT_ROW_STREAMS = 2,  /* decode, row order: streams a tile is read as */
    KN_ATT_ROW_PREFETCH = 4, /* decode, row order: rows ahead each stream prefetches */
    KN_ATT_ROW_SC = 16384,   /* decode, row order: floats of scores per tile (64 KiB) */
    KN_ATT_ROW_HEADS = 256,  /* decode, row order: most query heads */
};

/* Prefetch the SPAN floats at P into L1 (P NULL: nothing). */
__attribute__((target("avx2,fma"))) static inline void att_prefetch_row(const float *p, int span)
{
    if (p == NULL)
        return;
    for (int b = 0; b < span; b += 16)
        _mm_prefetch((const char *)(p + b), _MM_HINT_T0);
}

/* Decode, row order (AVX2, head_dim % 8 == 0, any number of query heads per
 * kv head, taken four at a time):
 * keys [j_begin, j_end) for every head, in tiles of up to KN_ATT_ROW_TILE
 * keys (evened out over the range).  Per tile, three passes:
 *   1. the scores of all heads, reading the tile's K rows (all kv heads,
 *      front to back) as two streams half a tile apart, a key of each at a
 *      time (slot 2i holds key i, slot 2i+1 key half + i);
 *   2. the online-softmax update per head (one rescale of acc per tile);
 *   3. the V rows, as the same two streams, into the accumulators (ACC[h],
 *      in L1).
 * Long tiles keep each pass on two long sequential streams (plus a
 * software prefetch KN_ATT_ROW_PREFETCH rows ahead in each), which the
 * hardware prefetchers follow; short tiles that switched between K and V
 * every 64 KiB, or one stream at a time, left the memory idle more often.
 * No copy.  Leaves the running max and sum in M and L. */
__attribute__((target("avx2,fma"))) static void att_decode_rows(float *const *acc, float *m, float *l,
                                                                 const float *q, const struct kn_kv_view *kv,
                                                                 int j_begin, int j_end,
                                                                 const struct kn_attn_shape *s, float scale)
{
    int hd = s->head_dim, n_heads = s->n_heads, n_kv = s->n_kv_heads, group = n_heads / n_kv;
    enum { NS = KN_ATT_ROW_STREAMS };
    float sc[KN_ATT_ROW_SC]; /* (n_heads, ld) */
    assert(n_heads <= KN_ATT_ROW_HEADS);
    int ld = KN_ATT_ROW_SC / n_heads;
    if (ld > KN_ATT_ROW_TILE)
        ld = KN_ATT_ROW_TILE;
    ld -= ld % NS;
    int n_tiles = (j_end - j_begin + ld - 1) / ld;
    int tile = (j_end - j_begin + n_tiles - 1) / n_tiles; /* <= ld */
    for (int h = 0; h < n_heads; h++) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
        memset(acc[h], 0, (size_t)hd * sizeof *acc[h]);
    }
    for (int j0 = j_begin; j0 < j_end; j0 += tile) {
        const int n = j_end - j0 < tile ? j_end - j0 : tile;
        const int len = (n + NS - 1) / NS, ns = NS * len; /* keys per stream; slots */
        for (int i = 0; i < len; i++) {
            const float *kr[NS];
            const float *kf[NS]; /* rows KN_ATT_ROW_PREFETCH ahead in each stream, or NULL */
            for (int t = 0; t < NS; t++) {
                int j = t * len + i;
                kr[t] = kv->k + kv_row(kv, j0 + (j < n ? j : 0)) * (size_t)kv->pos_stride;
                kf[t] = i + KN_ATT_ROW_PREFETCH < len && j + KN_ATT_ROW_PREFETCH < n
                            ? kv->k + kv_row(kv, j0 + j + KN_ATT_ROW_PREFETCH) * (size_t)kv->pos_stride
                            : NULL;
            }
            for (int g = 0; g < n_kv; g++) {
                for (int t = 0; t < NS; t++)
                    att_prefetch_row(kf[t] == NULL ? NULL : kf[t] + (size_t)g * hd, hd);
                for (int h0 = g * group; h0 < (g + 1) * group; h0 += 4) {
                    int nr = (g + 1) * group - h0 < 4 ? (g + 1) * group - h0 : 4;
                    const float *qh[4];
                    for (int r = 0; r < 4; r++)
                        qh[r] = q + (size_t)(h0 + (r < nr ? r : 0)) * hd;
                    for (int t = 0; t < NS; t += 2) {
                        const float *kp[2] = {kr[t] + (size_t)g * hd, kr[t + 1] + (size_t)g * hd};
                        att_dec_scores(sc + (size_t)h0 * ld + NS * i + t, ld, qh, kp, nr, hd, scale);
                    }
                }
            }
        }
        for (int h = 0; h < n_heads; h++) {
            float *sh = sc + (size_t)h * ld;
            for (int j = n; j < ns; j++) /* empty slots: exp gives 0 */
                sh[(j % len) * NS + j / len] = -INFINITY;
            float m_new = m[h];
            for (int j = 0; j < ns; j++)
                if (sh[j] > m_new)
                    m_new = sh[j];
            if (m_new != m[h]) {
                float alpha = expf(m[h] - m_new); /* 0 on the first tile, where acc is 0 */
                l[h] *= alpha;
                __m256 va = _mm256_set1_ps(alpha);
                for (int d = 0; d < hd; d += 8)
                    _mm256_storeu_ps(acc[h] + d, _mm256_mul_ps(_mm256_loadu_ps(acc[h] + d), va));
                m[h] = m_new;
            }
            l[h] += att_exp_avx2(sh, ns, m_new);
        }
        for (int i = 0; i < len; i++) {
            const float *vr[NS];
            const float *vf[NS];
            for (int t = 0; t < NS; t++) {
                int j = t * len + i;
                vr[t] = kv->v + kv_row(kv, j0 + (j < n ? j : 0)) * (size_t)kv->pos_stride;
                vf[t] = i + KN_ATT_ROW_PREFETCH < len && j + KN_ATT_ROW_PREFETCH < n
                            ? kv->v + kv_row(kv, j0 + j + KN_ATT_ROW_PREFETCH) * (size_t)kv->pos_stride
                            : NULL;
            }
            for (int g = 0; g < n_kv; g++) {
                for (int t = 0; t < NS; t++)
                    att_prefetch_row(vf[t] == NULL ? NULL : vf[t] + (size_t)g * hd, hd);
                for (int h0 = g * group; h0 < (g + 1) * group; h0 += 4) {
                    int nr = (g + 1) * group - h0 < 4 ? (g + 1) * group - h0 : 4;
                    for (int t = 0; t < NS; t += 2)
                        att_dec_acc(acc + h0, sc + (size_t)h0 * ld + NS * i + t, ld, vr[t] + (size_t)g * hd,
                                    vr[t + 1] + (size_t)g * hd, nr, hd);
                }
            }
        }
    }
}
#endif

/* Key chunks: about 4 work items per thread (a multiple of the threads when
 * there are enough), none shorter than KN_ATT_MIN_CHUNK keys, and their
 * partials must fit the stack scratch ((n_heads, head_dim + 2) floats per
 * chunk). */
static int att_decode_chunks(int S, int kv_blocks, int n_heads, int head_dim, int nt)
{
    int n = (4 * nt + kv_blocks - 1) / kv_blocks;
    int by_len = S / KN_ATT_MIN_CHUNK;
    int by_room = KN_ATT_SCRATCH / (n_heads * (head_dim + 2));
    if (n > by_len)
        n = by_len;
    if (n > by_room)
        n = by_room;
    if (n * kv_blocks > nt && n > nt)
        n -= n % nt;
    return n < 1 ? 1 : n;
}

/* Keys per decode tile: the K rows of a tile (the span of kv heads an item
 * reads) fill KN_ATT_DECODE_TILE_FLOATS (64 KiB), as do the V rows. */
static int att_decode_tile(int span_floats)
{
    int tile = KN_ATT_DECODE_TILE_FLOATS / span_floats;
    return tile < KN_ATT_MAX_TILE ? tile : KN_ATT_MAX_TILE;
}

/* Flash-decoding.  With AVX2 and head_dim a multiple of 8 (32/8/128,
 * 12/12/64 and the like, any grouping), a work item is one chunk of the
 * keys for every head, walked in row order by att_decode_rows(): reading
 * each K and V row (all kv heads, 4 KiB for 8 x 128) front to back, tiles
 * of up to 512 keys as two streams each, instead of copying tiles.  The
 * row walk measured about +35% (1 thread) over the copying walk below, and
 * about 1.7x on an L3-resident cache, where the copy cost most; the long
 * two-stream tiles another +20% over 16-key tiles read as one stream
 * (single thread, minimum of 15 runs, 4096 keys).  Otherwise: a work item is one chunk of the S keys for a block of
 * consecutive kv heads (at most KN_ATT_MAX_SETS sets of query rows; a set
 * is up to 16 query heads of one kv head).  The item walks its chunk tile by
 * tile: it copies the tile's K and V rows, the span of its kv heads, into
 * stack buffers (sequential reads, which the hardware prefetchers stream
 * far better than one 4 KiB-strided head slice after another; software
 * prefetching the strided slices did not help) and runs every set over the
 * copy.  The heads of a set share
 * every K/V load: each K/V byte is read from memory once per call.  With one
 * chunk the rows accumulate straight into out; with several, each chunk
 * leaves (m, l, acc) per head in a stack scratch (chunk, n_heads, 2 +
 * head_dim) and the chunks are merged:
 *   M = max_c m_c,  out = sum_c exp(m_c - M) acc_c / sum_c exp(m_c - M) l_c.
 * Stack: the scratch (128 KiB) in the caller, the tile copies (128 KiB) in
 * each thread. */
void kn_attention_decode(float *out, const float *q, const struct kn_kv_view *kv, int S,
                         const struct kn_attn_shape *s)
{
    check_shape(kv, s);
    assert(S >= 1);
    assert(s->head_dim <= KN_ATT_DECODE_TILE_FLOATS);
    const struct att_isa *isa = att_isa_pick();
    int hd = s->head_dim, n_heads = s->n_heads, n_kv = s->n_kv_heads;
    int group = n_heads / n_kv;
    int hb = group < KN_ATT_MAX_ROWS ? group : KN_ATT_MAX_ROWS;
    int n_hblocks = (group + hb - 1) / hb;
    assert(n_hblocks <= KN_ATT_MAX_SETS);
    /* kv heads per item: whole sets, and at least 16 keys per tile */
    int kv_per_item = KN_ATT_MAX_SETS / n_hblocks;
    while (kv_per_item > 1 && kv_per_item * hd * 16 > KN_ATT_DECODE_TILE_FLOATS)
        kv_per_item /= 2;
    if (kv_per_item > n_kv)
        kv_per_item = n_kv;
    int kv_blocks = (n_kv + kv_per_item - 1) / kv_per_item;
    int nt = kn_get_threads();
    int n_chunks = att_decode_chunks(S, kv_blocks, n_heads, hd, nt);
    int items = kv_blocks * n_chunks;
    float scale = 1.0f / sqrtf((float)hd);
    size_t slot = (size_t)hd + 2; /* m, l, acc[head_dim] */
    float part[KN_ATT_SCRATCH];
#ifdef KN_ATT_X86
    if (isa == &att_isa_avx2 && hd % 8 == 0 && n_heads <= KN_ATT_ROW_HEADS) {
        int nc = att_decode_chunks(S, 1, n_heads, hd, nt);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1 && nc > 1)
        for (int c = 0; c < nc; c++) {
            float *acc[KN_ATT_ROW_HEADS], m[KN_ATT_ROW_HEADS], l[KN_ATT_ROW_HEADS];
            for (int h = 0; h < n_heads; h++)
                acc[h] = nc == 1 ? out + (size_t)h * hd : part + ((size_t)c * n_heads + h) * slot + 2;
            att_decode_rows(acc, m, l, q, kv, (int)((long long)S * c / nc), (int)((long long)S * (c + 1) / nc), s,
                            scale);
            for (int h = 0; h < n_heads; h++) {
                if (nc == 1) {
                    float inv = 1.0f / l[h];
                    for (int d = 0; d < hd; d++)
                        acc[h][d] *= inv;
                    continue;
                }
                acc[h][-2] = m[h];
                acc[h][-1] = l[h];
            }
        }
        n_chunks = nc;
        goto merge;
    }
#endif

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1 && items > 1)
    for (int it = 0; it < items; it++) {
        int c = it % n_chunks;
        int g_lo = it / n_chunks * kv_per_item;
        int g_hi = g_lo + kv_per_item < n_kv ? g_lo + kv_per_item : n_kv;
        int n_sets = (g_hi - g_lo) * n_hblocks;
        int j_begin = (int)((long long)S * c / n_chunks);
        int j_end = (int)((long long)S * (c + 1) / n_chunks);
        size_t span_off = (size_t)g_lo * hd, span_len = (size_t)(g_hi - g_lo) * hd;
        int tile = att_decode_tile((int)span_len);
        struct att_rows rows[KN_ATT_MAX_SETS];
        float pk[KN_ATT_DECODE_TILE_FLOATS], pv[KN_ATT_DECODE_TILE_FLOATS]; /* (tile, span) */
        struct kn_kv_view packed = {.k = pk, .v = pv, .pos_stride = (int)span_len};

        for (int set = 0; set < n_sets; set++) {
            struct att_rows *r = &rows[set];
            int g = g_lo + set / n_hblocks;
            int h_first = g * group + set % n_hblocks * hb;
            int h_end = h_first + hb < (g + 1) * group ? h_first + hb : (g + 1) * group;
            r->n = 0;
            for (int h = h_first; h < h_end; h++) {
                float *acc = n_chunks == 1 ? out + (size_t)h * hd : part + ((size_t)c * n_heads + h) * slot + 2;
                att_row_init(r, r->n++, q + (size_t)h * hd, acc, S - 1, hd);
            }
        }
        for (int j0 = j_begin; j0 < j_end; j0 += tile) {
            int n = j_end - j0 < tile ? j_end - j0 : tile;
            for (int j = 0; j < n; j++) {
                size_t row = kv_row(kv, j0 + j) * (size_t)kv->pos_stride + span_off;
                memcpy(pk + (size_t)j * span_len, kv->k + row, span_len * sizeof *pk);
                memcpy(pv + (size_t)j * span_len, kv->v + row, span_len * sizeof *pv);
            }
            for (int set = 0; set < n_sets; set++)
                att_rows_run(&rows[set], &packed, set / n_hblocks, hd, scale, 0, n, n, isa);
        }
        for (int set = 0; set < n_sets; set++) {
            struct att_rows *r = &rows[set];
            if (n_chunks == 1) {
                att_rows_finish(r, hd);
                continue;
            }
            for (int i = 0; i < r->n; i++) {
                r->acc[i][-2] = r->m[i];
                r->acc[i][-1] = r->l[i];
            }
        }
    }
#ifdef KN_ATT_X86
merge:
#endif
    if (n_chunks == 1)
        return;
    for (int h = 0; h < n_heads; h++) {
        float *o = out + (size_t)h * hd;
        float max = -INFINITY, l = 0.0f;
        for (int c = 0; c < n_chunks; c++) {
            float m = part[((size_t)c * n_heads + h) * slot];
            if (m > max)
                max = m;
        }
        memset(o, 0, (size_t)hd * sizeof *o);
        for (int c = 0; c < n_chunks; c++) {
            const float *p = part + ((size_t)c * n_heads + h) * slot;
            float w = expf(p[0] - max);
            l += w * p[1];
            for (int d = 0; d < hd; d++)
                o[d] += w * p[2 + d];
        }
        float inv = 1.0f / l;
        for (int d = 0; d < hd; d++)
            o[d] *= inv;
    }
}
