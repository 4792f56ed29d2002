/* matmul_avx512.c -- the AVX-512 f32 kernels that matmul.c drives on CPUs
 * that have them: the 12x32 GEMM micro-kernel, the packing of x and W panels
 * for it, and the GEMV kernels (one, two or four rows of x against a few rows
 * of W; the k tail of 1..15 floats through __mmask16 masked loads, so no
 * scalar loop).  Only AVX-512F instructions (and AVX2 in the packing); the
 * functions carry KN_AVX512's target attribute, so the file needs no special
 * compiler flags; callers make sure the CPU has them (kn_get_isa).
 *
 * The same source compiles a second time against SIMDe (tests/avx512_simde.c
 * defines KN_AVX512_SIMDE; see avx512_int.h): the two exported tables are then
 * named with the suffix _simde, and tests/check_avx512.c runs these kernels
 * on CPUs without AVX-512. */
#include "kernels/matmul_int.h"
#include "kernels/avx512_int.h"

#ifdef KN_AVX512_BUILD

#include <stddef.h>

/* The register tile is 12 rows of x by 32 rows of W (two zmm): 24 zmm
 * accumulators, 2 for the W panel and 1 for the x broadcast, 27 of the 32
 * registers.  Per k step 2 aligned loads of b and 12 broadcasts of a feed 24
 * FMAs: twice the FMAs per load of a 6x32 tile, and 24 independent chains,
 * three times what two FMA ports of latency 4 need.  The (KC, 32) W panel
 * that stays in L1 while the x panels pass is 24 KiB at KC = 192, the same
 * footprint as the AVX2 kernel's (384, 16) panel, which measured best on a
 * 32 KiB L1 (this kernel's speed could not be measured: no AVX-512 CPU was
 * at hand, see kernels/README.md). */
#define KN_MR 12
#define KN_NR 32
#define KN_KC 192
_Static_assert(KN_MR <= KN_GEMM_MR_MAX && KN_NR <= KN_GEMM_NR_MAX, "the tile fits the driver's scratch");

/* The lanes below r (1 <= r <= 16) of a 16-lane mask. */
static inline kn_mask16 kn_mask_first(int r)
{
    return (kn_mask16)((1u << r) - 1u);
}

/* A value the compiler must keep in a register (so it does not fold the
 * load of an x row into each of its three FMAs).  A no-op under SIMDe. */
static inline KN_AVX512 __m512 kn_pin(__m512 v)
{
#if !defined(KN_AVX512_SIMDE)
    __asm__("" : "+v"(v));
#endif
    return v;
}

/* The sum of the 16 lanes of v (AVX-512F only: no _mm512_extractf32x8_ps,
 * which is DQ). */
static inline KN_AVX512 float kn_hsum(__m512 v)
{
    __m256 lo = _mm512_castps512_ps256(v);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- GEMM --------------------------------------------------------------------- */

/* c (12, 32; row stride ldc) = (accumulate ? c : 0) + a^T b over kc; a is a
 * packed x panel (kc, 12), b a packed W panel (kc, 32), 64-byte aligned. */
static KN_AVX512 void kn_gemm_ukr_avx512(int kc, const float *a, const float *b, float *c, int ldc,
                                         int accumulate)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();
    __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();
    __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();
    __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps();
    __m512 c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
    __m512 c80 = _mm512_setzero_ps(), c81 = _mm512_setzero_ps();
    __m512 c90 = _mm512_setzero_ps(), c91 = _mm512_setzero_ps();
    __m512 ca0 = _mm512_setzero_ps(), ca1 = _mm512_setzero_ps();
    __m512 cb0 = _mm512_setzero_ps(), cb1 = _mm512_setzero_ps();

    /* The tile of out is needed only at the end: start fetching it now
     * (each row's 32 floats span two or three lines). */
    for (int i = 0; i < KN_MR; i++) {
        _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + 16), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)i * ldc + KN_NR - 1), _MM_HINT_T0);
    }

/* One row of the tile: c<i>0, c<i>1 += a[i] * (b0, b1). */
#define KN_ROW(i, r0, r1)                       \
    do {                                        \
        __m512 av = _mm512_set1_ps(a[i]);       \
        r0 = _mm512_fmadd_ps(av, b0, r0);       \
        r1 = _mm512_fmadd_ps(av, b1, r1);       \
    } while (0)

#pragma GCC unroll 2
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(b);
        __m512 b1 = _mm512_load_ps(b + 16);
        KN_ROW(0, c00, c01);
        KN_ROW(1, c10, c11);
        KN_ROW(2, c20, c21);
        KN_ROW(3, c30, c31);
        KN_ROW(4, c40, c41);
        KN_ROW(5, c50, c51);
        KN_ROW(6, c60, c61);
        KN_ROW(7, c70, c71);
        KN_ROW(8, c80, c81);
        KN_ROW(9, c90, c91);
        KN_ROW(10, ca0, ca1);
        KN_ROW(11, cb0, cb1);
        a += KN_MR;
        b += KN_NR;
    }
#undef KN_ROW

/* Row i of out: (accumulate ? c : 0) + (r0, r1). */
#define KN_STORE(i, r0, r1)                                         \
    do {                                                            \
        float *ci = c + (size_t)(i) * ldc;                          \
        if (accumulate) {                                           \
            r0 = _mm512_add_ps(r0, _mm512_loadu_ps(ci));            \
            r1 = _mm512_add_ps(r1, _mm512_loadu_ps(ci + 16));       \
        }                                                           \
        _mm512_storeu_ps(ci, r0);                                   \
        _mm512_storeu_ps(ci + 16, r1);                              \
    } while (0)

    KN_STORE(0, c00, c01);
    KN_STORE(1, c10, c11);
    KN_STORE(2, c20, c21);
    KN_STORE(3, c30, c31);
    KN_STORE(4, c40, c41);
    KN_STORE(5, c50, c51);
    KN_STORE(6, c60, c61);
    KN_STORE(7, c70, c71);
    KN_STORE(8, c80, c81);
    KN_STORE(9, c90, c91);
    KN_STORE(10, ca0, ca1);
    KN_STORE(11, cb0, cb1);
#undef KN_STORE
}

/* The 8x8 transpose: on return r[q] holds lane q of the 8 inputs, i.e.
 * r[q][i] = in[i][q]. */
static inline KN_AVX512 void kn_transpose8(__m256 r[8])
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

/* W rows j0 .. j0+nc-1, columns p0 .. p0+kc-1 into panels of 32 rows (see
 * struct kn_gemm_impl).  Full panels go 8 columns at a time through four
 * 8x8 transposes (rows 0-7, 8-15, 16-23, 24-31); the last, partial panel and
 * the kc % 8 tail are copied one value at a time. */
static KN_AVX512 void kn_pack_w_avx512(float *bp, const float *w, int k, int j0, int nc, int p0, int kc)
{
    for (int jp = 0; jp < nc; jp += KN_NR) {
        float *panel = bp + (size_t)jp * kc;
        int rows = nc - jp < KN_NR ? nc - jp : KN_NR;
        const float *src = w + (size_t)(j0 + jp) * k + p0;
        int p = 0;
        if (rows == KN_NR) {
            for (; p + 8 <= kc; p += 8) {
                for (int g = 0; g < KN_NR / 8; g++) {
                    __m256 r[8];
                    for (int i = 0; i < 8; i++)
                        r[i] = _mm256_loadu_ps(src + (size_t)(g * 8 + i) * k + p);
                    kn_transpose8(r);
                    for (int q = 0; q < 8; q++)
                        _mm256_store_ps(panel + (size_t)(p + q) * KN_NR + g * 8, r[q]);
                }
            }
        }
        for (; p < kc; p++)
            for (int jj = 0; jj < KN_NR; jj++)
                panel[(size_t)p * KN_NR + jj] = jj < rows ? src[(size_t)jj * k + p] : 0.0f;
    }
}

/* x rows i0 .. i0+mc-1, columns p0 .. p0+kc-1 into panels of 12 rows (see
 * struct kn_gemm_impl).  Full panels go 8 columns at a time through two 8x8
 * transposes, rows 0-7 and rows 8-11 with four zero rows; each column's 12
 * values are stored as 8 + 4.  The rest one value at a time. */
static KN_AVX512 void kn_pack_x_avx512(float *ap, const float *x, int k, int i0, int mc, int p0, int kc)
{
    for (int ip = 0; ip < mc; ip += KN_MR) {
        float *panel = ap + (size_t)ip * kc;
        int rows = mc - ip < KN_MR ? mc - ip : KN_MR;
        const float *src = x + (size_t)(i0 + ip) * k + p0;
        int p = 0;
        if (rows == KN_MR) {
            for (; p + 8 <= kc; p += 8) {
                __m256 r[8], s[8];
                for (int i = 0; i < 8; i++)
                    r[i] = _mm256_loadu_ps(src + (size_t)i * k + p);
                for (int i = 0; i < 4; i++)
                    s[i] = _mm256_loadu_ps(src + (size_t)(8 + i) * k + p);
                for (int i = 4; i < 8; i++)
                    s[i] = _mm256_setzero_ps();
                kn_transpose8(r);
                kn_transpose8(s);
                for (int q = 0; q < 8; q++) {
                    float *dst = panel + (size_t)(p + q) * KN_MR;
                    _mm256_storeu_ps(dst, r[q]);
                    _mm_storeu_ps(dst + 8, _mm256_castps256_ps128(s[q]));
                }
            }
        }
        for (; p < kc; p++)
            for (int ii = 0; ii < KN_MR; ii++)
                panel[(size_t)p * KN_MR + ii] = ii < rows ? src[(size_t)ii * k + p] : 0.0f;
    }
}

/* ---- GEMV --------------------------------------------------------------------- */

/* dot(w, x) over k: two accumulators of 16 lanes, then the tail of 1..15
 * lanes masked. */
static inline KN_AVX512 float kn_dot_avx512(const float *w, const float *x, int k)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int j = 0;

    for (; j + 32 <= k; j += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j + 16), _mm512_loadu_ps(x + j + 16), s1);
    }
    if (j + 16 <= k) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), s0);
        j += 16;
    }
    if (j < k) {
        kn_mask16 t = kn_mask_first(k - j);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(t, w + j), _mm512_maskz_loadu_ps(t, x + j), s1);
    }
    return kn_hsum(_mm512_add_ps(s0, s1));
}

/* out[i] = dot(W[i, :], x) for rows i0 <= i < i1.  Four rows of W at a time,
 * two accumulators each: every x load feeds 4 FMAs, so the kernel is bound by
 * the stream of W from memory.  The k tail (k % 16) is one masked step. */
static KN_AVX512 void kn_gemv_avx512(float *out, const float *x, const float *w, int k, int i0, int i1)
{
    int i = i0;

    for (; i + 4 <= i1; i += 4) {
        const float *w0 = w + (size_t)i * k;
        const float *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        __m512 s0a = _mm512_setzero_ps(), s0b = _mm512_setzero_ps();
        __m512 s1a = _mm512_setzero_ps(), s1b = _mm512_setzero_ps();
        __m512 s2a = _mm512_setzero_ps(), s2b = _mm512_setzero_ps();
        __m512 s3a = _mm512_setzero_ps(), s3b = _mm512_setzero_ps();
        int j = 0;

        for (; j + 32 <= k; j += 32) {
            __m512 xa = _mm512_loadu_ps(x + j);
            __m512 xb = _mm512_loadu_ps(x + j + 16);
            s0a = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + j), xa, s0a);
            s0b = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + j + 16), xb, s0b);
            s1a = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + j), xa, s1a);
            s1b = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + j + 16), xb, s1b);
            s2a = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + j), xa, s2a);
            s2b = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + j + 16), xb, s2b);
            s3a = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + j), xa, s3a);
            s3b = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + j + 16), xb, s3b);
        }
        if (j + 16 <= k) {
            __m512 xa = _mm512_loadu_ps(x + j);
            s0a = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + j), xa, s0a);
            s1a = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + j), xa, s1a);
            s2a = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + j), xa, s2a);
            s3a = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + j), xa, s3a);
            j += 16;
        }
        if (j < k) {
            kn_mask16 t = kn_mask_first(k - j);
            __m512 xb = _mm512_maskz_loadu_ps(t, x + j);
            s0b = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(t, w0 + j), xb, s0b);
            s1b = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(t, w1 + j), xb, s1b);
            s2b = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(t, w2 + j), xb, s2b);
            s3b = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(t, w3 + j), xb, s3b);
        }
        out[i] = kn_hsum(_mm512_add_ps(s0a, s0b));
        out[i + 1] = kn_hsum(_mm512_add_ps(s1a, s1b));
        out[i + 2] = kn_hsum(_mm512_add_ps(s2a, s2b));
        out[i + 3] = kn_hsum(_mm512_add_ps(s3a, s3b));
    }
    for (; i < i1; i++)
        out[i] = kn_dot_avx512(w + (size_t)i * k, x, k);
}

/* Two rows of x against four rows of W at a time: 8 accumulators, and per 16
 * floats of k, 2 x loads and 4 W loads feed 8 FMAs.  The k tail is one
 * masked step. */
static KN_AVX512 void kn_gemv2_avx512(float *out0, float *out1, const float *x0, const float *x1,
                                      const float *w, int k, int i0, int i1)
{
    int i = i0;

    for (; i + 4 <= i1; i += 4) {
        const float *wr[4] = {w + (size_t)i * k, w + (size_t)(i + 1) * k, w + (size_t)(i + 2) * k,
                              w + (size_t)(i + 3) * k};
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
        __m512 b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
        int j = 0;

        for (; j < k; j += 16) {
            __m512 xa, xb, v0, v1, v2, v3;
            if (j + 16 <= k) {
                xa = _mm512_loadu_ps(x0 + j);
                xb = _mm512_loadu_ps(x1 + j);
                v0 = _mm512_loadu_ps(wr[0] + j);
                v1 = _mm512_loadu_ps(wr[1] + j);
                v2 = _mm512_loadu_ps(wr[2] + j);
                v3 = _mm512_loadu_ps(wr[3] + j);
            } else {
                kn_mask16 t = kn_mask_first(k - j);
                xa = _mm512_maskz_loadu_ps(t, x0 + j);
                xb = _mm512_maskz_loadu_ps(t, x1 + j);
                v0 = _mm512_maskz_loadu_ps(t, wr[0] + j);
                v1 = _mm512_maskz_loadu_ps(t, wr[1] + j);
                v2 = _mm512_maskz_loadu_ps(t, wr[2] + j);
                v3 = _mm512_maskz_loadu_ps(t, wr[3] + j);
            }
            a0 = _mm512_fmadd_ps(v0, xa, a0);
            b0 = _mm512_fmadd_ps(v0, xb, b0);
            a1 = _mm512_fmadd_ps(v1, xa, a1);
            b1 = _mm512_fmadd_ps(v1, xb, b1);
            a2 = _mm512_fmadd_ps(v2, xa, a2);
            b2 = _mm512_fmadd_ps(v2, xb, b2);
            a3 = _mm512_fmadd_ps(v3, xa, a3);
            b3 = _mm512_fmadd_ps(v3, xb, b3);
        }
        out0[i] = kn_hsum(a0);
        out0[i + 1] = kn_hsum(a1);
        out0[i + 2] = kn_hsum(a2);
        out0[i + 3] = kn_hsum(a3);
        out1[i] = kn_hsum(b0);
        out1[i + 1] = kn_hsum(b1);
        out1[i + 2] = kn_hsum(b2);
        out1[i + 3] = kn_hsum(b3);
    }
    for (; i < i1; i++) {
        out0[i] = kn_dot_avx512(w + (size_t)i * k, x0, k);
        out1[i] = kn_dot_avx512(w + (size_t)i * k, x1, k);
    }
}

/* Triples of W rows ahead that kn_gemv4_avx512 prefetches. */
#define KN_GEMV4_AHEAD 2

/* Four rows of x (x + r*ldx) against three rows of W at a time, into
 * out[r*ldo + i]: 12 accumulators, and per 16 floats of k, 3 W loads and 4 x
 * loads feed 12 FMAs.  As in kn_gemv4_avx2, the kernel prefetches the triple
 * of W KN_GEMV4_AHEAD ahead itself (one line of each row per step, rows
 * below n only), since the hardware prefetchers, retrained on every row,
 * would fetch W late at this pace.  The k tail is one masked step; W rows
 * past the last triple go one at a time. */
static KN_AVX512 void kn_gemv4_avx512(float *out, int ldo, const float *x, int ldx, const float *w, int k,
                                      int n, int i0, int i1)
{
    const float *x0 = x, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    int i = i0;

    for (; i + 3 <= i1; i += 3) {
        const float *w0 = w + (size_t)i * k, *w1 = w0 + k, *w2 = w1 + k;
        const char *pf =
            i + 3 * KN_GEMV4_AHEAD + 3 <= n ? (const char *)(w0 + (size_t)(3 * KN_GEMV4_AHEAD) * k) : NULL;
        size_t pf_row = (size_t)k * sizeof(float);
        __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c02 = _mm512_setzero_ps();
        __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps(), c12 = _mm512_setzero_ps();
        __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c22 = _mm512_setzero_ps();
        __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps(), c32 = _mm512_setzero_ps();
        int j = 0;

        for (; j < k; j += 16) {
            __m512 a0, a1, a2, b0, b1, b2, b3;
            if (j + 16 <= k) {
                a0 = _mm512_loadu_ps(w0 + j);
                a1 = _mm512_loadu_ps(w1 + j);
                a2 = _mm512_loadu_ps(w2 + j);
                b0 = kn_pin(_mm512_loadu_ps(x0 + j));
                b1 = kn_pin(_mm512_loadu_ps(x1 + j));
                b2 = kn_pin(_mm512_loadu_ps(x2 + j));
                b3 = kn_pin(_mm512_loadu_ps(x3 + j));
                if (pf != NULL) { /* a line of each row of the triple ahead */
                    _mm_prefetch(pf + 4 * (size_t)j, _MM_HINT_T0);
                    _mm_prefetch(pf + pf_row + 4 * (size_t)j, _MM_HINT_T0);
                    _mm_prefetch(pf + 2 * pf_row + 4 * (size_t)j, _MM_HINT_T0);
                }
            } else {
                kn_mask16 t = kn_mask_first(k - j);
                a0 = _mm512_maskz_loadu_ps(t, w0 + j);
                a1 = _mm512_maskz_loadu_ps(t, w1 + j);
                a2 = _mm512_maskz_loadu_ps(t, w2 + j);
                b0 = _mm512_maskz_loadu_ps(t, x0 + j);
                b1 = _mm512_maskz_loadu_ps(t, x1 + j);
                b2 = _mm512_maskz_loadu_ps(t, x2 + j);
                b3 = _mm512_maskz_loadu_ps(t, x3 + j);
            }
            c00 = _mm512_fmadd_ps(a0, b0, c00);
            c01 = _mm512_fmadd_ps(a1, b0, c01);
            c02 = _mm512_fmadd_ps(a2, b0, c02);
            c10 = _mm512_fmadd_ps(a0, b1, c10);
            c11 = _mm512_fmadd_ps(a1, b1, c11);
            c12 = _mm512_fmadd_ps(a2, b1, c12);
            c20 = _mm512_fmadd_ps(a0, b2, c20);
            c21 = _mm512_fmadd_ps(a1, b2, c21);
            c22 = _mm512_fmadd_ps(a2, b2, c22);
            c30 = _mm512_fmadd_ps(a0, b3, c30);
            c31 = _mm512_fmadd_ps(a1, b3, c31);
            c32 = _mm512_fmadd_ps(a2, b3, c32);
        }
        float *o0 = out + i, *o1 = o0 + ldo, *o2 = o1 + ldo, *o3 = o2 + ldo;
        o0[0] = kn_hsum(c00);
        o0[1] = kn_hsum(c01);
        o0[2] = kn_hsum(c02);
        o1[0] = kn_hsum(c10);
        o1[1] = kn_hsum(c11);
        o1[2] = kn_hsum(c12);
        o2[0] = kn_hsum(c20);
        o2[1] = kn_hsum(c21);
        o2[2] = kn_hsum(c22);
        o3[0] = kn_hsum(c30);
        o3[1] = kn_hsum(c31);
        o3[2] = kn_hsum(c32);
    }
    for (; i < i1; i++) {
        const float *wi = w + (size_t)i * k;
        out[i] = kn_dot_avx512(wi, x0, k);
        out[(size_t)ldo + i] = kn_dot_avx512(wi, x1, k);
        out[2 * (size_t)ldo + i] = kn_dot_avx512(wi, x2, k);
        out[3 * (size_t)ldo + i] = kn_dot_avx512(wi, x3, k);
    }
}

const struct kn_gemm_impl KN_AVX512_FN(kn_gemm_avx512_impl) = {
    .mr = KN_MR,
    .nr = KN_NR,
    .kc = KN_KC,
    .ukr = kn_gemm_ukr_avx512,
    .pack_w = kn_pack_w_avx512,
    .pack_x = kn_pack_x_avx512,
};

const struct kn_gemv_impl KN_AVX512_FN(kn_gemv_avx512_impl) = {
    .gemv = kn_gemv_avx512,
    .gemv2 = kn_gemv2_avx512,
    .gemv4 = kn_gemv4_avx512,
};

#else /* not x86 with GCC or clang: kn_get_isa never picks AVX-512 here */

#include <assert.h>

static void kn_gemm_ukr_none(int kc, const float *a, const float *b, float *c, int ldc, int accumulate)
{
    assert(!"the AVX-512 kernels need x86 with GCC or clang");
}

static void kn_pack_none(float *p, const float *src, int k, int r0, int rows, int p0, int kc)
{
    assert(!"the AVX-512 kernels need x86 with GCC or clang");
}

static void kn_gemv_none(float *out, const float *x, const float *w, int k, int i0, int i1)
{
    assert(!"the AVX-512 kernels need x86 with GCC or clang");
}

const struct kn_gemm_impl kn_gemm_avx512_impl = {
    .mr = KN_GEMM_MR,
    .nr = KN_GEMM_NR,
    .kc = 192,
    .ukr = kn_gemm_ukr_none,
    .pack_w = kn_pack_none,
    .pack_x = kn_pack_none,
};

const struct kn_gemv_impl kn_gemv_avx512_impl = {.gemv = kn_gemv_none};

#endif
