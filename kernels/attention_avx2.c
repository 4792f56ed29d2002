/* attention_avx2.c -- the AVX2 + FMA inner loops of attention.c: scores,
 * exponentials and weighted sums of V rows for a group of up to four query
 * rows (struct att_isa), and the decode walk that reads each K and V row in
 * place (kn_att_decode_rows_avx2).  Each function carries
 * target("avx2,fma"), so the file needs no special compiler flags; callers
 * make sure the CPU has AVX2 and FMA (kn_get_isa). */
#include "kernels/attention_int.h"

#ifdef KN_ATT_X86

#include <assert.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

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

/* The scores of NR (1 to 4) query heads against two keys KP[0], KP[1].
 * Inlined (as is att_dec_acc): called for every kv head of every key pair,
 * a call each cost the MHA walk at 128 keys 5-10%. */
__attribute__((target("avx2,fma"), always_inline)) static inline void att_dec_scores(float *sc, int ld, const float *const *q,
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
__attribute__((target("avx2,fma"), always_inline)) static inline void att_dec_acc(float *const *acc, const float *p, int ld,
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

/* The four sums of the lanes of A0 .. A3, in that order. */
__attribute__((target("avx2,fma"))) static inline __m128 att_hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* Decode, row order: the scores of four query heads Q[0..4) of one kv head
 * against four keys K[0..4), head_dim % 8 == 0, into sc[r * ld + 0..3].
 * Two heads at a time: per 8 floats, 4 K loads (the second pair's from L1)
 * and 2 Q loads feed 8 FMAs into 8 chains, and each head's four dot
 * products are reduced together (3 hadds instead of four horizontal sums). */
__attribute__((target("avx2,fma"))) static void att_dec_scores4x4(float *sc, int ld, const float *const *q,
                                                                   const float *const *k, int head_dim,
                                                                   float scale)
{
    const float *k0 = k[0], *k1 = k[1], *k2 = k[2], *k3 = k[3];
    __m128 vscale = _mm_set1_ps(scale);
    for (int r = 0; r < 4; r += 2) {
        const float *qa = q[r], *qb = q[r + 1];
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps();
        __m256 a3 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
        __m256 b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
        for (int d = 0; d < head_dim; d += 8) {
            __m256 x0 = _mm256_loadu_ps(k0 + d), x1 = _mm256_loadu_ps(k1 + d);
            __m256 x2 = _mm256_loadu_ps(k2 + d), x3 = _mm256_loadu_ps(k3 + d);
            __m256 qv = _mm256_loadu_ps(qa + d);
            a0 = _mm256_fmadd_ps(qv, x0, a0);
            a1 = _mm256_fmadd_ps(qv, x1, a1);
            a2 = _mm256_fmadd_ps(qv, x2, a2);
            a3 = _mm256_fmadd_ps(qv, x3, a3);
            qv = _mm256_loadu_ps(qb + d);
            b0 = _mm256_fmadd_ps(qv, x0, b0);
            b1 = _mm256_fmadd_ps(qv, x1, b1);
            b2 = _mm256_fmadd_ps(qv, x2, b2);
            b3 = _mm256_fmadd_ps(qv, x3, b3);
        }
        _mm_storeu_ps(sc + r * ld, _mm_mul_ps(att_hsum4(a0, a1, a2, a3), vscale));
        _mm_storeu_ps(sc + (r + 1) * ld, _mm_mul_ps(att_hsum4(b0, b1, b2, b3), vscale));
    }
}

/* Decode, row order: acc[r] += sum over c of p[r * ld + c] * v[c], for four
 * query heads r and four V rows c, head_dim % 8 == 0.  Two heads at a time,
 * their 8 weights broadcast in registers: per 8 floats, 4 V loads (the
 * second pair's from L1), 2 accumulator loads and 2 stores feed 8 FMAs, so
 * each accumulator is loaded and stored once per four keys, not per two. */
__attribute__((target("avx2,fma"))) static void att_dec_acc4x4(float *const *acc, const float *p, int ld,
                                                                const float *const *v, int head_dim)
{
    const float *v0 = v[0], *v1 = v[1], *v2 = v[2], *v3 = v[3];
    for (int r = 0; r < 4; r += 2) {
        float *oa = acc[r], *ob = acc[r + 1];
        const float *pa = p + r * ld, *pb = p + (r + 1) * ld;
        __m256 a0 = _mm256_set1_ps(pa[0]), a1 = _mm256_set1_ps(pa[1]);
        __m256 a2 = _mm256_set1_ps(pa[2]), a3 = _mm256_set1_ps(pa[3]);
        __m256 b0 = _mm256_set1_ps(pb[0]), b1 = _mm256_set1_ps(pb[1]);
        __m256 b2 = _mm256_set1_ps(pb[2]), b3 = _mm256_set1_ps(pb[3]);
        for (int d = 0; d < head_dim; d += 8) {
            __m256 x0 = _mm256_loadu_ps(v0 + d), x1 = _mm256_loadu_ps(v1 + d);
            __m256 x2 = _mm256_loadu_ps(v2 + d), x3 = _mm256_loadu_ps(v3 + d);
            __m256 o = _mm256_loadu_ps(oa + d);
            o = _mm256_fmadd_ps(a0, x0, o);
            o = _mm256_fmadd_ps(a1, x1, o);
            o = _mm256_fmadd_ps(a2, x2, o);
            o = _mm256_fmadd_ps(a3, x3, o);
            _mm256_storeu_ps(oa + d, o);
            o = _mm256_loadu_ps(ob + d);
            o = _mm256_fmadd_ps(b0, x0, o);
            o = _mm256_fmadd_ps(b1, x1, o);
            o = _mm256_fmadd_ps(b2, x2, o);
            o = _mm256_fmadd_ps(b3, x3, o);
            _mm256_storeu_ps(ob + d, o);
        }
    }
}

const struct att_isa kn_att_isa_avx2 = {
    .scores = att_scores_avx2,
    .exp = att_exp_avx2,
    .accumulate = att_accumulate_avx2,
};

/* ---- decode, row order ---------------------------------------------------------------- */

/* Prefetch the SPAN floats at P into L1 (P NULL: nothing). */
__attribute__((target("avx2,fma"))) static inline void att_prefetch_row(const float *p, int span)
{
    if (p == NULL)
        return;
    for (int b = 0; b < span; b += 16)
        _mm_prefetch((const char *)(p + b), _MM_HINT_T0);
}

/* Decode, row order: the rows of slots NS i .. NS (i + NU) - 1 of the tile
 * of N keys at J0 (LEN keys a stream) in BASE (kv->k or kv->v), in slot
 * order (row[u * NS + t] is key t * LEN + i + u; an empty slot points at the
 * tile's first row, its weight is 0), and the rows KN_ATT_ROW_PREFETCH keys
 * further on in each stream (NULL past the stream's end). */
static inline __attribute__((always_inline)) void att_dec_rows(const float **row, const float **ahead, const float *base, const struct kn_kv_view *kv,
                         int j0, int n, int len, int i, int nu)
{
    for (int u = 0; u < nu; u++)
        for (int t = 0; t < KN_ATT_ROW_STREAMS; t++) {
            int j = t * len + i + u, s = u * KN_ATT_ROW_STREAMS + t;
            row[s] = base + kv_row(kv, j0 + (j < n ? j : 0)) * (size_t)kv->pos_stride;
            ahead[s] = i + u + KN_ATT_ROW_PREFETCH < len && j + KN_ATT_ROW_PREFETCH < n
                           ? base + kv_row(kv, j0 + j + KN_ATT_ROW_PREFETCH) * (size_t)kv->pos_stride
                           : NULL;
        }
}

_Static_assert(KN_ATT_ROW_STREAMS == 2, "the 4x4 decode loops take two keys of each of two streams");

/* Decode, row order (AVX2, head_dim % 8 == 0, any number of query heads per
 * kv head, taken four at a time):
 * keys [j_begin, j_end) for every head, in tiles of up to KN_ATT_ROW_TILE
 * keys (evened out over the range).  Per tile, three passes:
 *   1. the scores of all heads, reading the tile's K rows (all kv heads,
 *      front to back) as two streams half a tile apart, two keys of each
 *      at a time (slot 2i holds key i, slot 2i+1 key half + i, so slots
 *      2i .. 2i+3 are keys i and i+1 of both streams);
 *   2. the online-softmax update per head (one rescale of acc per tile);
 *   3. the V rows, as the same two streams, into the accumulators (ACC[h],
 *      in L1).
 * Four query heads of a kv head take those four keys at once
 * (att_dec_scores4x4, att_dec_acc4x4): each accumulator is loaded and
 * stored once per four keys instead of two, and each head's four dot
 * products are reduced together.  At 32/8/128 on 4096 keys and 2 threads
 * that read 20% more GB/s than two keys at a time (12 interleaved pairs,
 * 11 won; docs/BENCHMARKS.md).  The heads left over (group % 4) and an
 * odd last key per stream go two keys at a time, and groups under four
 * (MHA) one key of each stream at a time, as before.
 * Long tiles keep each pass on two long sequential streams (plus a
 * software prefetch KN_ATT_ROW_PREFETCH rows ahead in each), which the
 * hardware prefetchers follow; short tiles that switched between K and V
 * every 64 KiB, or one stream at a time, left the memory idle more often.
 * No copy.  Leaves the running max and sum in M and L. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
att_dec_walk(float *const *acc, float *m, float *l, const float *q, const struct kn_kv_view *kv, int j_begin,
             int j_end, const struct kn_attn_shape *s, float scale, const int step)
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
        for (int i = 0; i < len; i += step) {
            const int nu = i + 1 < len ? step : 1; /* keys i (and i + 1) of each stream */
            const float *kr[2 * NS];            /* in slot order: kr[u * NS + t] is slot NS (i + u) + t */
            const float *kf[2 * NS];            /* rows KN_ATT_ROW_PREFETCH ahead, or NULL */
            att_dec_rows(kr, kf, kv->k, kv, j0, n, len, i, nu);
            for (int g = 0; g < n_kv; g++) {
                for (int t = 0; t < nu * NS; t++)
                    att_prefetch_row(kf[t] == NULL ? NULL : kf[t] + (size_t)g * hd, hd);
                const float *kp[2 * NS];
                for (int t = 0; t < nu * NS; t++)
                    kp[t] = kr[t] + (size_t)g * hd;
                for (int h0 = g * group; h0 < (g + 1) * group; h0 += 4) {
                    int nr = (g + 1) * group - h0 < 4 ? (g + 1) * group - h0 : 4;
                    const float *qh[4];
                    for (int r = 0; r < 4; r++)
                        qh[r] = q + (size_t)(h0 + (r < nr ? r : 0)) * hd;
                    float *sh = sc + (size_t)h0 * ld + NS * i;
                    if (nu == 2 && nr == 4)
                        att_dec_scores4x4(sh, ld, qh, kp, hd, scale);
                    else
                        for (int t = 0; t < nu * NS; t += 2)
                            att_dec_scores(sh + t, ld, qh, kp + t, nr, hd, scale);
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
        for (int i = 0; i < len; i += step) {
            const int nu = i + 1 < len ? step : 1;
            const float *vr[2 * NS];
            const float *vf[2 * NS];
            att_dec_rows(vr, vf, kv->v, kv, j0, n, len, i, nu);
            for (int g = 0; g < n_kv; g++) {
                for (int t = 0; t < nu * NS; t++)
                    att_prefetch_row(vf[t] == NULL ? NULL : vf[t] + (size_t)g * hd, hd);
                const float *vp[2 * NS];
                for (int t = 0; t < nu * NS; t++)
                    vp[t] = vr[t] + (size_t)g * hd;
                for (int h0 = g * group; h0 < (g + 1) * group; h0 += 4) {
                    int nr = (g + 1) * group - h0 < 4 ? (g + 1) * group - h0 : 4;
                    const float *sh = sc + (size_t)h0 * ld + NS * i;
                    if (nu == 2 && nr == 4)
                        att_dec_acc4x4(acc + h0, sh, ld, vp, hd);
                    else
                        for (int t = 0; t < nu * NS; t += 2)
                            att_dec_acc(acc + h0, sh + t, ld, vp[t], vp[t + 1], nr, hd);
                }
            }
        }
    }
}

__attribute__((target("avx2,fma"))) void kn_att_decode_rows_avx2(float *const *acc, float *m, float *l,
                                                                 const float *q, const struct kn_kv_view *kv,
                                                                 int j_begin, int j_end,
                                                                 const struct kn_attn_shape *s, float scale)
{
    /* Two keys of each stream a step where four query heads share a kv
     * head.  With fewer (MHA) the compute per byte is low, and walking four
     * rows at once instead of two read 20% fewer GB/s at 12/12/64; that
     * case keeps one key a stream, in code of its own (STEP a constant). */
    if (s->n_heads / s->n_kv_heads >= 4)
        att_dec_walk(acc, m, l, q, kv, j_begin, j_end, s, scale, 2);
    else
        att_dec_walk(acc, m, l, q, kv, j_begin, j_end, s, scale, 1);
}

#endif
