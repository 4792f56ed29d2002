/* matmul_avx2.c -- the AVX2 + FMA f32 kernels that matmul.c drives: the
 * 6x16 GEMM micro-kernel and the GEMV row kernel.  Each function carries
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

#else /* not x86 with GCC or clang: matmul.c never calls these */

#include <assert.h>

void kn_gemm_ukr_avx2(int kc, const float *a, const float *b, float *c, int ldc, int accumulate)
{
    assert(!"kn_gemm_ukr_avx2 needs x86 with AVX2");
}

void kn_gemv_avx2(float *out, const float *x, const float *w, int k, int i0, int i1)
{
    assert(!"kn_gemv_avx2 needs x86 with AVX2");
}

#endif
