/* matmul_avx2.c -- the AVX2 + FMA f32 kernels that matmul.c drives: the
 * 6x16 GEMM micro-kernel, the packing of x and W panels for it, and the GEMV
 * kernels (one or two rows of x against four rows of W).  Each function carries
 * target("avx2,fma"), so the file needs no special compiler flags; callers
 * make sure the CPU has AVX2 and FMA (kn_get_isa). */
#include "kernels/matmul_int.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <stddef.h>

#define KN_AVX2 __attribute__((target("avx2,fma")))

/* The sum of the 8 lanes of v. */
static inline KN_AVX2 float kn_hsum_avx2(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The register tile is 6 rows of x by 16 rows of W: 12 ymm accumulators,
 * 2 ymm for the W panel and 1 for the x broadcast.  Per k step: 2 aligned
 * loads of b, 6 broadcasts of a, 12 FMAs -- the FMA ports stay busy and the
 * 12 independent chains hide the FMA latency. */
KN_AVX2 void kn_gemm_ukr_avx2(int kc, const float *a, const float *b, float *c, int ldc, int accumulate)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

    /* The tile of out is needed only at the end: start fetching it now. */
    for (int i = 0; i < KN_GEMM_MR; i++) {
        _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + KN_GEMM_NR - 1), _MM_HINT_T0);
    }

#pragma GCC unroll 4
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(b);
        __m256 b1 = _mm256_load_ps(b + 8);
        __m256 av;

        av = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(av, b0, c10);
        c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(av, b0, c20);
        c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(av, b0, c30);
        c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(av, b0, c40);
        c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(av, b0, c50);
        c51 = _mm256_fmadd_ps(av, b1, c51);
        a += KN_GEMM_MR;
        b += KN_GEMM_NR;
    }

    float *c0 = c, *c1 = c + ldc, *c2 = c + 2 * (size_t)ldc;
    float *c3 = c + 3 * (size_t)ldc, *c4 = c + 4 * (size_t)ldc, *c5 = c + 5 * (size_t)ldc;
    if (accumulate) {
        c00 = _mm256_add_ps(c00, _mm256_loadu_ps(c0));
        c01 = _mm256_add_ps(c01, _mm256_loadu_ps(c0 + 8));
        c10 = _mm256_add_ps(c10, _mm256_loadu_ps(c1));
        c11 = _mm256_add_ps(c11, _mm256_loadu_ps(c1 + 8));
        c20 = _mm256_add_ps(c20, _mm256_loadu_ps(c2));
        c21 = _mm256_add_ps(c21, _mm256_loadu_ps(c2 + 8));
        c30 = _mm256_add_ps(c30, _mm256_loadu_ps(c3));
        c31 = _mm256_add_ps(c31, _mm256_loadu_ps(c3 + 8));
        c40 = _mm256_add_ps(c40, _mm256_loadu_ps(c4));
        c41 = _mm256_add_ps(c41, _mm256_loadu_ps(c4 + 8));
        c50 = _mm256_add_ps(c50, _mm256_loadu_ps(c5));
        c51 = _mm256_add_ps(c51, _mm256_loadu_ps(c5 + 8));
    }
    _mm256_storeu_ps(c0, c00);
    _mm256_storeu_ps(c0 + 8, c01);
    _mm256_storeu_ps(c1, c10);
    _mm256_storeu_ps(c1 + 8, c11);
    _mm256_storeu_ps(c2, c20);
    _mm256_storeu_ps(c2 + 8, c21);
    _mm256_storeu_ps(c3, c30);
    _mm256_storeu_ps(c3 + 8, c31);
    _mm256_storeu_ps(c4, c40);
    _mm256_storeu_ps(c4 + 8, c41);
    _mm256_storeu_ps(c5, c50);
    _mm256_storeu_ps(c5 + 8, c51);
}

/* The 8x8 transpose: on return r[q] holds lane q of the 8 inputs, i.e.
 * r[q][i] = in[i][q]. */
static inline KN_AVX2 void kn_transpose8_avx2(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Full panels of 16 rows go through 8x8 transposes (two per 8 columns);
 * the last, partial panel and the kc % 8 tail are copied one at a time. */
KN_AVX2 void kn_pack_w_avx2(float *bp, const float *w, int k, int j0, int nc, int p0, int kc)
{
    for (int jp = 0; jp < nc; jp += KN_GEMM_NR) {
        float *panel = bp + (size_t)jp * kc;
        int rows = nc - jp < KN_GEMM_NR ? nc - jp : KN_GEMM_NR;
        const float *src = w + (size_t)(j0 + jp) * k + p0;
        int p = 0;
        if (rows == KN_GEMM_NR) {
            for (; p + 8 <= kc; p += 8) {
                for (int half = 0; half < 2; half++) {
                    __m256 r[8];
                    for (int i = 0; i < 8; i++)
                        r[i] = _mm256_loadu_ps(src + (size_t)(half * 8 + i) * k + p);
                    kn_transpose8_avx2(r);
                    for (int q = 0; q < 8; q++)
                        _mm256_store_ps(panel + (size_t)(p + q) * KN_GEMM_NR + half * 8, r[q]);
                }
            }
        }
        for (; p < kc; p++)
            for (int jj = 0; jj < KN_GEMM_NR; jj++)
                panel[(size_t)p * KN_GEMM_NR + jj] = jj < rows ? src[(size_t)jj * k + p] : 0.0f;
    }
}

/* Full panels of 6 rows: 8 columns at a time through an 8x8 transpose with
 * two zero rows; each column's 6 values are stored as 4 + 2. */
KN_AVX2 void kn_pack_x_avx2(float *ap, const float *x, int k, int i0, int mc, int p0, int kc)
{
    for (int ip = 0; ip < mc; ip += KN_GEMM_MR) {
        float *panel = ap + (size_t)ip * kc;
        int rows = mc - ip < KN_GEMM_MR ? mc - ip : KN_GEMM_MR;
        const float *src = x + (size_t)(i0 + ip) * k + p0;
        int p = 0;
        if (rows == KN_GEMM_MR) {
            for (; p + 8 <= kc; p += 8) {
                __m256 r[8];
                for (int i = 0; i < KN_GEMM_MR; i++)
                    r[i] = _mm256_loadu_ps(src + (size_t)i * k + p);
                r[6] = _mm256_setzero_ps();
                r[7] = _mm256_setzero_ps();
                kn_transpose8_avx2(r);
                for (int q = 0; q < 8; q++) {
                    float *dst = panel + (size_t)(p + q) * KN_GEMM_MR;
                    _mm_storeu_ps(dst, _mm256_castps256_ps128(r[q]));
                    _mm_storel_pi((__m64 *)(dst + 4), _mm256_extractf128_ps(r[q], 1));
                }
            }
        }
        for (; p < kc; p++)
            for (int ii = 0; ii < KN_GEMM_MR; ii++)
                panel[(size_t)p * KN_GEMM_MR + ii] = ii < rows ? src[(size_t)ii * k + p] : 0.0f;
    }
}

/* One row: dot(w, x) over k with 4 accumulators (32 floats a step). */
static inline KN_AVX2 float kn_dot_avx2(const float *w, const float *x, int k)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int j = 0;

    for (; j + 32 <= k; j += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j), _mm256_loadu_ps(x + j), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j + 8), _mm256_loadu_ps(x + j + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j + 16), _mm256_loadu_ps(x + j + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j + 24), _mm256_loadu_ps(x + j + 24), s3);
    }
    for (; j + 8 <= k; j += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j), _mm256_loadu_ps(x + j), s0);
    float sum = kn_hsum_avx2(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; j < k; j++)
        sum += w[j] * x[j];
    return sum;
}

/* Four rows at a time, two accumulators each: every x load feeds 4 FMAs,
 * so the loads stay well under what the cores can issue and the kernel is
 * bound by the stream of W from memory. */
KN_AVX2 void kn_gemv_avx2(float *out, const float *x, const float *w, int k, int i0, int i1)
{
    int i = i0;

    for (; i + 4 <= i1; i += 4) {
        const float *w0 = w + (size_t)i * k;
        const float *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        __m256 s0a = _mm256_setzero_ps(), s0b = _mm256_setzero_ps();
        __m256 s1a = _mm256_setzero_ps(), s1b = _mm256_setzero_ps();
        __m256 s2a = _mm256_setzero_ps(), s2b = _mm256_setzero_ps();
        __m256 s3a = _mm256_setzero_ps(), s3b = _mm256_setzero_ps();
        int j = 0;

        for (; j + 16 <= k; j += 16) {
            __m256 xa = _mm256_loadu_ps(x + j);
            __m256 xb = _mm256_loadu_ps(x + j + 8);
            s0a = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + j), xa, s0a);
            s0b = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + j + 8), xb, s0b);
            s1a = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + j), xa, s1a);
            s1b = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + j + 8), xb, s1b);
            s2a = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + j), xa, s2a);
            s2b = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + j + 8), xb, s2b);
            s3a = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + j), xa, s3a);
            s3b = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + j + 8), xb, s3b);
        }
        for (; j + 8 <= k; j += 8) {
            __m256 xa = _mm256_loadu_ps(x + j);
            s0a = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + j), xa, s0a);
            s1a = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + j), xa, s1a);
            s2a = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + j), xa, s2a);
            s3a = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + j), xa, s3a);
        }
        float r0 = kn_hsum_avx2(_mm256_add_ps(s0a, s0b));
        float r1 = kn_hsum_avx2(_mm256_add_ps(s1a, s1b));
        float r2 = kn_hsum_avx2(_mm256_add_ps(s2a, s2b));
        float r3 = kn_hsum_avx2(_mm256_add_ps(s3a, s3b));
        for (; j < k; j++) {
            r0 += w0[j] * x[j];
            r1 += w1[j] * x[j];
            r2 += w2[j] * x[j];
            r3 += w3[j] * x[j];
        }
        out[i] = r0;
        out[i + 1] = r1;
        out[i + 2] = r2;
        out[i + 3] = r3;
    }
    for (; i < i1; i++)
        out[i] = kn_dot_avx2(w + (size_t)i * k, x, k);
}

/* Two rows of x against four rows of W at a time: 8 accumulators, and
 * every load (2 of x, 4 of W) feeds 2 or 4 FMAs, so small batches (m = 2 ..
 * ~16) stay bound by the stream of W rather than by loads. */
KN_AVX2 void kn_gemv2_avx2(float *out0, float *out1, const float *x0, const float *x1, const float *w, int k,
                           int i0, int i1)
{
    int i = i0;

    for (; i + 4 <= i1; i += 4) {
        const float *w0 = w + (size_t)i * k;
        const float *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
        __m256 b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
        int j = 0;

        for (; j + 8 <= k; j += 8) {
            __m256 xa = _mm256_loadu_ps(x0 + j);
            __m256 xb = _mm256_loadu_ps(x1 + j);
            __m256 v = _mm256_loadu_ps(w0 + j);
            a0 = _mm256_fmadd_ps(v, xa, a0);
            b0 = _mm256_fmadd_ps(v, xb, b0);
            v = _mm256_loadu_ps(w1 + j);
            a1 = _mm256_fmadd_ps(v, xa, a1);
            b1 = _mm256_fmadd_ps(v, xb, b1);
            v = _mm256_loadu_ps(w2 + j);
            a2 = _mm256_fmadd_ps(v, xa, a2);
            b2 = _mm256_fmadd_ps(v, xb, b2);
            v = _mm256_loadu_ps(w3 + j);
            a3 = _mm256_fmadd_ps(v, xa, a3);
            b3 = _mm256_fmadd_ps(v, xb, b3);
        }
        float ra[4] = {kn_hsum_avx2(a0), kn_hsum_avx2(a1), kn_hsum_avx2(a2), kn_hsum_avx2(a3)};
        float rb[4] = {kn_hsum_avx2(b0), kn_hsum_avx2(b1), kn_hsum_avx2(b2), kn_hsum_avx2(b3)};
        for (; j < k; j++) {
            float wv[4] = {w0[j], w1[j], w2[j], w3[j]};
            for (int q = 0; q < 4; q++) {
                ra[q] += wv[q] * x0[j];
                rb[q] += wv[q] * x1[j];
            }
        }
        for (int q = 0; q < 4; q++) {
            out0[i + q] = ra[q];
            out1[i + q] = rb[q];
        }
    }
    for (; i < i1; i++) {
        out0[i] = kn_dot_avx2(w + (size_t)i * k, x0, k);
        out1[i] = kn_dot_avx2(w + (size_t)i * k, x1, k);
    }
}

/* A value the compiler must keep in a register (so it does not fold the
 * load of an x row into each of its three FMAs, tripling the loads). */
static inline KN_AVX2 __m256 kn_pin_avx2(__m256 v)
{
    __asm__("" : "+x"(v));
    return v;
}

/* Triples of W rows ahead that kn_gemv4_avx2 prefetches. */
#define KN_GEMV4_AHEAD 2

/* Four rows of x against three rows of W at a time: 12 accumulators, and per
 * 8 floats of k, 3 W loads and 4 x loads feed 12 FMAs, so small batches
 * (m = 4 .. 23) run at the pace of the FMA units, not of the loads (the
 * two-row kernel's 8 FMAs per 6 loads).  At that pace the hardware
 * prefetchers, retrained every 3 KiB row, fetched W from memory too late
 * (half the FLOP/s of the same loop on W in the L3), so the kernel
 * prefetches the triple KN_GEMV4_AHEAD ahead itself, rows below N.  W rows
 * past the last triple go one at a time. */
KN_AVX2 void kn_gemv4_avx2(float *out, int ldo, const float *x, int ldx, const float *w, int k, int n, int i0,
                           int i1)
{
    const float *x0 = x, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    int i = i0;

    for (; i + 3 <= i1; i += 3) {
        const float *w0 = w + (size_t)i * k, *w1 = w0 + k, *w2 = w1 + k;
        /* the triple two ahead (or this one again near the end of W) */
        const char *pf = i + 3 * KN_GEMV4_AHEAD + 3 <= n ? (const char *)(w0 + (size_t)(3 * KN_GEMV4_AHEAD) * k) : NULL;
        size_t pf_row = (size_t)k * sizeof(float);
        __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps();
        __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps();
        __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps();
        __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c32 = _mm256_setzero_ps();
        int j = 0;

        for (; j + 8 <= k; j += 8) {
            __m256 a0 = _mm256_loadu_ps(w0 + j), a1 = _mm256_loadu_ps(w1 + j), a2 = _mm256_loadu_ps(w2 + j), b;
            if ((j & 15) == 0 && pf != NULL) { /* a line of each row of the triple ahead */
                _mm_prefetch(pf + 4 * (size_t)j, _MM_HINT_T0);
                _mm_prefetch(pf + pf_row + 4 * (size_t)j, _MM_HINT_T0);
                _mm_prefetch(pf + 2 * pf_row + 4 * (size_t)j, _MM_HINT_T0);
            }
            b = kn_pin_avx2(_mm256_loadu_ps(x0 + j));
            c00 = _mm256_fmadd_ps(a0, b, c00);
            c01 = _mm256_fmadd_ps(a1, b, c01);
            c02 = _mm256_fmadd_ps(a2, b, c02);
            b = kn_pin_avx2(_mm256_loadu_ps(x1 + j));
            c10 = _mm256_fmadd_ps(a0, b, c10);
            c11 = _mm256_fmadd_ps(a1, b, c11);
            c12 = _mm256_fmadd_ps(a2, b, c12);
            b = kn_pin_avx2(_mm256_loadu_ps(x2 + j));
            c20 = _mm256_fmadd_ps(a0, b, c20);
            c21 = _mm256_fmadd_ps(a1, b, c21);
            c22 = _mm256_fmadd_ps(a2, b, c22);
            b = kn_pin_avx2(_mm256_loadu_ps(x3 + j));
            c30 = _mm256_fmadd_ps(a0, b, c30);
            c31 = _mm256_fmadd_ps(a1, b, c31);
            c32 = _mm256_fmadd_ps(a2, b, c32);
        }
        float r[4][3] = {
            {kn_hsum_avx2(c00), kn_hsum_avx2(c01), kn_hsum_avx2(c02)},
            {kn_hsum_avx2(c10), kn_hsum_avx2(c11), kn_hsum_avx2(c12)},
            {kn_hsum_avx2(c20), kn_hsum_avx2(c21), kn_hsum_avx2(c22)},
            {kn_hsum_avx2(c30), kn_hsum_avx2(c31), kn_hsum_avx2(c32)},
        };
        for (; j < k; j++) {
            float xv[4] = {x0[j], x1[j], x2[j], x3[j]}, wv[3] = {w0[j], w1[j], w2[j]};
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 3; b++)
                    r[a][b] += wv[b] * xv[a];
        }
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 3; b++)
                out[(size_t)a * ldo + i + b] = r[a][b];
    }
    for (; i < i1; i++) {
        const float *wi = w + (size_t)i * k;
        out[i] = kn_dot_avx2(wi, x0, k);
        out[(size_t)ldo + i] = kn_dot_avx2(wi, x1, k);
        out[2 * (size_t)ldo + i] = kn_dot_avx2(wi, x2, k);
        out[3 * (size_t)ldo + i] = kn_dot_avx2(wi, x3, k);
    }
}

#else /* not x86 with GCC or clang: matmul.c never calls these */

#include <assert.h>

void kn_pack_w_avx2(float *bp, const float *w, int k, int j0, int nc, int p0, int kc)
{
    assert(!"kn_pack_w_avx2 needs x86 with AVX2");
}

void kn_pack_x_avx2(float *ap, const float *x, int k, int i0, int mc, int p0, int kc)
{
    assert(!"kn_pack_x_avx2 needs x86 with AVX2");
}

void kn_gemm_ukr_avx2(int kc, const float *a, const float *b, float *c, int ldc, int accumulate)
{
    assert(!"kn_gemm_ukr_avx2 needs x86 with AVX2");
}

void kn_gemv_avx2(float *out, const float *x, const float *w, int k, int i0, int i1)
{
    assert(!"kn_gemv_avx2 needs x86 with AVX2");
}

void kn_gemv2_avx2(float *out0, float *out1, const float *x0, const float *x1, const float *w, int k,
                   int i0, int i1)
{
    assert(!"kn_gemv2_avx2 needs x86 with AVX2");
}

void kn_gemv4_avx2(float *out, int ldo, const float *x, int ldx, const float *w, int k, int n, int i0, int i1)
{
    assert(!"kn_gemv4_avx2 needs x86 with AVX2");
}

#endif
