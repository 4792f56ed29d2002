/* quant.c -- low-precision weights: int8 (Q8, one scale per group along k)
 * and bfloat16.  The conversions, and the two matmul paths kn_matmul()
 * dispatches to for them: kn_matmul_q8 and kn_matmul_bf16.
 *
 * Each path has a portable C version and an AVX2/FMA one, picked at run time
 * with kn_get_isa() (the AVX2 functions carry target attributes, so the file
 * builds without -mavx2).  Both split the n weight rows across OpenMP threads
 * and stream every weight once per block of activation rows:
 *
 *   - GEMV (m = 1, decode) is memory bound.  A thread walks its rows (bf16:
 *     four adjacent rows at a time; Q8: chunks of 128 rows handed out
 *     dynamically, each walked as four streams a quarter of a chunk apart,
 *     reading the rows kn_pack_q8 re-laid when there are some) against the
 *     one activation row, which stays in L1.
 *   - GEMM (m > 1) takes the activation rows in chunks that fit in L2; within
 *     a chunk a tile of 2 weight rows (in L1) meets 4 activation rows at a
 *     time, so each weight load feeds 4 rows of output.
 *
 * Q8 arithmetic (the same in both versions, so they agree to float
 * rounding): x is quantised per row and group like the weights (scale =
 * max|x|/127, q = round(x/scale), half away from zero); per group the int8
 * dot product is exact in int32; it is scaled by scale_x * scale_w and
 * summed in float. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/matmul_int.h"

/* Activation rows per GEMM tile and weight rows per tile (GEMM and GEMV). */
#define KN_TILE_M 4
#define KN_TILE_N 2
#define KN_GEMV_N 4

/* Bytes of activations a chunk of GEMM rows may take (half of L2). */
#define KN_X_CHUNK_BYTES (512 * 1024)

/* Weight rows per unit of work of the Q8 GEMV (a chunk is walked as four
 * streams a quarter of it apart; 64..1024 measured alike, 128 balances two
 * threads on 4096 rows). */
#define KN_Q8_GEMV_CHUNK 128

/* 8-group blocks ahead that each stream of the Q8 GEMV prefetches (2: 576
 * bytes for group 32 packed; measured single-threaded against none, 1.15x
 * and 2304 bytes alike, medians of 11 paired runs). */
#define KN_Q8_GEMV_PREFETCH_BLOCKS 2

/* Weight-row ranges below this many weight bytes run on one thread. */
#define KN_PARALLEL_MIN_BYTES (64 * 1024)

static int kn_use_avx2(void)
{
    enum kn_isa isa = kn_get_isa();
    return isa == KN_ISA_AVX2 || isa == KN_ISA_AVX512;
}

/* Threads for a matmul over WEIGHT_BYTES of weights: 1 when too small to pay
 * for waking the team. */
static int kn_matmul_threads(size_t weight_bytes)
{
    return weight_bytes < KN_PARALLEL_MIN_BYTES ? 1 : kn_get_threads();
}

/* ==== bfloat16 ========================================================== */

/* dst[i] = src[i] rounded to bfloat16, to nearest with ties to even.  NaN
 * stays NaN (quiet, sign kept), infinities and signed zeros are kept, a
 * float above the largest bf16 rounds to infinity. */
void kn_f32_to_bf16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], sizeof u);
        if ((u & 0x7fffffffu) > 0x7f800000u) { /* NaN: truncating could make it inf */
            dst[i] = (uint16_t)((u >> 16) | 0x0040u);
            continue;
        }
        u += 0x7fffu + ((u >> 16) & 1u);
        dst[i] = (uint16_t)(u >> 16);
    }
}

/* dst[i] = src[i] widened to float (exact). */
void kn_bf16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &u, sizeof u);
    }
}

/* ==== Q8 conversions ===================================================== */

/* Quantise one group of G floats: scales[0] = max|x|/127, q = round(x/scale)
 * half away from zero, clamped to [-127, 127] (reached only when the scale is
 * a denormal).  A group whose scale is 0 gets q = 0.  x must be finite. */
static void kn_quantize_group(int8_t *q, float *scale, const float *x, int g)
{
    float amax = 0.0f;
    for (int j = 0; j < g; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    float s = amax / 127.0f;
    *scale = s;
    if (s == 0.0f) {
        memset(q, 0, (size_t)g);
        return;
    }
    for (int j = 0; j < g; j++) {
        float v = roundf(x[j] / s);
        v = fminf(fmaxf(v, -127.0f), 127.0f);
        q[j] = (int8_t)v;
    }
}

/* The same as kn_quantize_group for G a multiple of 32, bit for bit: the
 * division is IEEE in both, and roundf is rebuilt from truncation. */
__attribute__((target("avx2,fma"))) static void kn_quantize_group_avx2(int8_t *q, float *scale,
                                                                        const float *x, int g)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vmax = _mm256_setzero_ps();
    for (int j = 0; j < g; j += 8)
        vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + j), absmask));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    float s = _mm_cvtss_f32(m4) / 127.0f;
    *scale = s;
    if (s == 0.0f) {
        memset(q, 0, (size_t)g);
        return;
    }
    const __m256 vs = _mm256_set1_ps(s);
    const __m256 half = _mm256_set1_ps(0.5f);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 lim = _mm256_set1_ps(127.0f);
    const __m256 signmask = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int j = 0; j < g; j += 32) {
        __m256i iv[4];
        for (int c = 0; c < 4; c++) {
            __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + j + 8 * c), vs);
            __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            __m256 frac = _mm256_and_ps(_mm256_sub_ps(v, t), absmask);
            __m256 away = _mm256_or_ps(_mm256_and_ps(v, signmask), one); /* +-1 */
            t = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ), away));
            t = _mm256_min_ps(_mm256_max_ps(t, _mm256_sub_ps(_mm256_setzero_ps(), lim)), lim);
            iv[c] = _mm256_cvtps_epi32(t);
        }
        /* The packs work per 128-bit lane; the permute puts the 4-byte
         * pieces back in order. */
        __m256i p01 = _mm256_packs_epi32(iv[0], iv[1]);
        __m256i p23 = _mm256_packs_epi32(iv[2], iv[3]);
        __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), order);
        _mm256_storeu_si256((__m256i *)(q + j), b);
    }
}

/* q (n), scales (n/group) = x (n) quantised per group of GROUP, symmetric:
 * scale = max|x|/127, q = round(x/scale) (half away from zero); a group of
 * zeros gets scale 0 and q 0.  n % group == 0; x finite.  Both ISAs give
 * identical results. */
void kn_quantize_q8(int8_t *q, float *scales, const float *x, size_t n, int group)
{
    assert(group > 0 && n % (size_t)group == 0);
    int avx2 = group % 32 == 0 && kn_use_avx2();
    for (size_t i = 0; i < n; i += (size_t)group) {
        if (avx2)
            kn_quantize_group_avx2(q + i, &scales[i / (size_t)group], x + i, group);
        else
            kn_quantize_group(q + i, &scales[i / (size_t)group], x + i, group);
    }
}

/* x (n) = q (n) * scales (n/group), per group.  n % group == 0. */
void kn_dequantize_q8(float *x, const int8_t *q, const float *scales, size_t n, int group)
{
    assert(group > 0 && n % (size_t)group == 0);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)q[i] * scales[i / (size_t)group];
}

/* Bytes of one row in the kn_pack_q8 layout: k int8 and 8 scale slots
 * per block of 8 groups (the last block's unused slots are zero). */
static size_t kn_q8_packed_row_bytes(const struct kn_weights *w)
{
    const size_t blocks = ((size_t)(w->k / w->group) + 7) / 8;
    return (size_t)w->k + blocks * 8 * sizeof(float);
}

/* Bytes of the kn_pack_q8 layout of W (KN_Q8). */
size_t kn_pack_q8_bytes(const struct kn_weights *w)
{
    assert(w->dtype == KN_Q8 && w->group > 0 && w->k % w->group == 0);
    return (size_t)w->n * kn_q8_packed_row_bytes(w);
}

/* Row by row, per block of 8 groups: the block's 8 scale slots, then its
 * int8 (see kernels.h); then w->packed = dst. */
void kn_pack_q8(void *dst, struct kn_weights *w)
{
    assert(w->dtype == KN_Q8 && w->group > 0 && w->k % w->group == 0 && dst != NULL);
    const size_t k = (size_t)w->k, group = (size_t)w->group, ng = k / group;
    const int8_t *q = w->data;
    char *p = dst;
    for (size_t i = 0; i < (size_t)w->n; i++) {
        for (size_t g = 0; g < ng; g += 8) {
            size_t nb = ng - g < 8 ? ng - g : 8;
            memset(p, 0, 8 * sizeof(float));
            memcpy(p, w->scales + i * ng + g, nb * sizeof(float));
            p += 8 * sizeof(float);
            memcpy(p, q + i * k + g * group, nb * group);
            p += nb * group;
        }
    }
    w->packed = dst;
}

/* xa (n) = |xq| (n) as uint8, for xq in [-127, 127]; 32 at a time with
 * AVX2 when the CPU has it. */
__attribute__((target("avx2,fma"))) static void kn_abs_q8_avx2(uint8_t *xa, const int8_t *xq, int n)
{
    int j = 0;
    for (; j + 32 <= n; j += 32)
        _mm256_storeu_si256((__m256i *)(xa + j), _mm256_abs_epi8(_mm256_loadu_si256((const __m256i *)(xq + j))));
    for (; j < n; j++)
        xa[j] = (uint8_t)abs(xq[j]);
}

static void kn_abs_q8(uint8_t *xa, const int8_t *xq, int n)
{
    if (kn_use_avx2()) {
        kn_abs_q8_avx2(xa, xq, n);
        return;
    }
    for (int j = 0; j < n; j++)
        xa[j] = (uint8_t)abs(xq[j]);
}

/* ==== Q8 matmul: portable =================================================== */

/* out[r*ldo + i] for r < mr, i in [i0, i1): xq (mr, k) int8 with xs (mr, ng)
 * scales against W rows i0..i1-1.  Per group: an exact int32 dot, then
 * acc += dot * (scale_x * scale_w). */
static void kn_q8_rows_portable(float *out, int ldo, const int8_t *xq, const float *xs, int mr,
                                const struct kn_weights *w, int i0, int i1)
{
    const int k = w->k, group = w->group, ng = k / group;
    const int8_t *wq = w->data;
    for (int i = i0; i < i1; i++) {
        const int8_t *wrow = wq + (size_t)i * k;
        const float *ws = w->scales + (size_t)i * ng;
        for (int r = 0; r < mr; r++) {
            const int8_t *xrow = xq + (size_t)r * k;
            const float *xsr = xs + (size_t)r * ng;
            float acc = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t dot = 0;
                for (int j = g * group; j < (g + 1) * group; j++)
                    dot += (int32_t)xrow[j] * wrow[j];
                acc += (float)dot * (xsr[g] * ws[g]);
            }
            out[(size_t)r * ldo + i] = acc;
        }
    }
}

/* ==== Q8 matmul: AVX2 ====================================================== */

/* The tile kernel: out (MR, NR) at out[r*ldo + c] = xq (MR, k) . wq (NR, k)
 * rows, with row strides k and scale strides ng.  MR, NR and GROUP are
 * constants after inlining, so the accumulators live in registers.
 * The int8 products use the sign trick: maddubs multiplies unsigned by
 * signed bytes, so feed it |x| and w * sign(x); a pair sums to at most
 * 2*127*127 < 2^15 (no saturation, as |q| <= 127); madd with ones widens to
 * int32. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
kn_q8_tile_avx2(float *out, int ldo, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                const int8_t *pf, int k, const int MR, const int NR, const int GROUP)
{
    const int ng = k / GROUP;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[KN_TILE_M][KN_GEMV_N];
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int c = 0; c < NR; c++)
            acc[r][c] = _mm256_setzero_ps();

    for (int g = 0; g < ng; g++) {
        const int j0 = g * GROUP;
#pragma GCC unroll 4
        for (int c = 0; c < NR; c++)
            _mm_prefetch((const char *)(pf + (size_t)c * k + j0), _MM_HINT_T0);
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            __m256i dot[KN_GEMV_N];
#pragma GCC unroll 2
            for (int h = 0; h < GROUP / 32; h++) {
                __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + (size_t)r * k + j0 + 32 * h));
                __m256i ax = _mm256_sign_epi8(xv, xv);
#pragma GCC unroll 4
                for (int c = 0; c < NR; c++) {
                    __m256i wv = _mm256_loadu_si256((const __m256i *)(wq + (size_t)c * k + j0 + 32 * h));
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv, xv)), ones);
                    dot[c] = h == 0 ? p : _mm256_add_epi32(dot[c], p);
                }
            }
            __m256 sx = _mm256_broadcast_ss(xs + (size_t)r * ng + g);
#pragma GCC unroll 4
            for (int c = 0; c < NR; c++) {
                __m256 s = _mm256_mul_ps(sx, _mm256_broadcast_ss(ws + (size_t)c * ng + g));
                acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[c]), s, acc[r][c]);
            }
        }
    }

#pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int c = 0; c < NR; c++) {
            __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[r][c]), _mm256_extractf128_ps(acc[r][c], 1));
            v = _mm_add_ps(v, _mm_movehl_ps(v, v));
            v = _mm_add_ss(v, _mm_movehdup_ps(v));
            out[(size_t)r * ldo + c] = _mm_cvtss_f32(v);
        }
}

/* One GEMM tile of MR x NR (sizes used: 1x1, 1x2, 4x1, 4x2) for GROUP 32 or
 * 64; each case is a separate copy of kn_q8_tile_avx2. */
__attribute__((target("avx2,fma"))) static void kn_q8_tile_avx2_any(float *out, int ldo, const int8_t *xq,
                                                                     const float *xs, const int8_t *wq,
                                                                     const float *ws, const int8_t *pf, int k,
                                                                     int mr, int nr, int group)
{
    int shape = mr * 10 + nr;
    if (group == 32) {
        switch (shape) {
        case 11: kn_q8_tile_avx2(out, ldo, xq, xs, wq, ws, pf, k, 1, 1, 32); return;
        case 12: kn_q8_tile_avx2(out, ldo, xq, xs, wq, ws, pf, k, 1, 2, 32); return;
        case 41: kn_q8_tile_avx2(out, ldo, xq, xs, wq, ws, pf, k, 4, 1, 32); return;
        case 42: kn_q8_tile_avx2(out, ldo, xq, xs, wq, ws, pf, k, 4, 2, 32); return;
        }
    } else if (group == 64) {
        switch (shape) {
        case 11: kn_q8_tile_avx2(out, ldo, xq, xs, wq, ws, pf, k, 1, 1, 64); return;
        case 12: kn_q8_tile_avx2(out, ldo, xq, xs, wq, ws, pf, k, 1, 2, 64); return;
        case 41: kn_q8_tile_avx2(out, ldo, xq, xs, wq, ws, pf, k, 4, 1, 64); return;
        case 42: kn_q8_tile_avx2(out, ldo, xq, xs, wq, ws, pf, k, 4, 2, 64); return;
        }
    }
    assert(!"kn_q8_tile_avx2_any: tile shape or group not instantiated");
}

/* lane h of the result = the sum of the 8 int32 lanes of d[h] (h < 8):
 * two rounds of hadd leave each half-sum in its 128-bit lane, one permute
 * pair adds the halves. */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256i kn_hsum8_epi32_avx2(const __m256i d[8])
{
    __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
    __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(d[4], d[5]), _mm256_hadd_epi32(d[6], d[7]));
    /* a = [lo halves of d0..d3 | hi halves of d0..d3], b the same for d4..d7 */
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

/* The exact int32 dot product of one group of GROUP (32 or 64) int8 at xq
 * and wq, as 8 partial sums: maddubs takes |x| (xa, precomputed) and
 * w * sign(x); madd with ones widens the pairs to int32. */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256i
kn_q8_group_dot_avx2(const int8_t *xq, const uint8_t *xa, const int8_t *wq, const int GROUP)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i dot = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int h = 0; h < GROUP / 32; h++) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + 32 * h));
        __m256i av = _mm256_loadu_si256((const __m256i *)(xa + 32 * h));
        __m256i wv = _mm256_loadu_si256((const __m256i *)(wq + 32 * h));
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(av, _mm256_sign_epi8(wv, xv)), ones);
        dot = h == 0 ? p : _mm256_add_epi32(dot, p);
    }
    return dot;
}

/* The layout of W (struct kn_q8_layout, matmul_int.h): packed when
 * kn_pack_q8 made it, else data and scales. */
struct kn_q8_layout kn_q8_layout_of(const struct kn_weights *w)
{
    const size_t ng = (size_t)(w->k / w->group), blk = 8 * (size_t)w->group + 8 * sizeof(float);
    if (w->packed != NULL)
        return (struct kn_q8_layout){.q = (const int8_t *)w->packed + 8 * sizeof(float),
                                     .s = w->packed,
                                     .q_row = kn_q8_packed_row_bytes(w),
                                     .s_row = kn_q8_packed_row_bytes(w),
                                     .q_blk = blk,
                                     .s_blk = blk};
    return (struct kn_q8_layout){.q = w->data,
                                 .s = (const char *)w->scales,
                                 .q_row = (size_t)w->k,
                                 .s_row = ng * sizeof(float),
                                 .q_blk = 8 * (size_t)w->group,
                                 .s_blk = 8 * sizeof(float)};
}

/* The GEMV kernel on NR (1 or 4) weight rows at once: out[r*rs] = xq (k) .
 * weight row i + r*rs of layout L (r < NR); xa = |xq| as uint8, xs the
 * scales of x.  Eight groups at a time: their int32 dots are reduced into
 * one vector (lane h = group g+h), converted once, and multiplied by the
 * eight scale products sx[g+h] * sw[g+h] with one FMA; the ng % 8 groups at
 * the end go the same way with the missing lanes zero.  The arithmetic is
 * the same for every row, whatever NR and the layout.
 * With NR = 4 the rows are RS rows apart, far enough that each is its own
 * stream in memory: one core keeps four streams of cache-line misses in
 * flight where one row at a time (or four adjacent rows) kept too few, and
 * the x block stays in L1 across the four; each stream also prefetches
 * KN_Q8_GEMV_PREFETCH_BLOCKS blocks ahead.  Measured on Zen 3 (single
 * thread, 11008x4096, median ratio to the f32 GEMV in the same run): 3.35x
 * against 2.65x for one row at a time with a software prefetch 16 KiB
 * ahead. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
kn_q8_gemv_rows_avx2(float *out, const int8_t *xq, const uint8_t *xa, const float *xs, const struct kn_q8_layout *L,
                     size_t i, size_t rs, int k, const int NR, const int GROUP)
{
    const int ng = k / GROUP;
    const int8_t *wq[4];
    const char *ws[4];
    __m256 acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        wq[r] = L->q + (i + r * rs) * L->q_row;
        ws[r] = L->s + (i + r * rs) * L->s_row;
        acc[r] = _mm256_setzero_ps();
    }

    int g = 0;
    for (; g + 8 <= ng; g += 8) {
        const int j0 = g * GROUP;
        const size_t b = (size_t)(g / 8);
        const __m256 sx = _mm256_loadu_ps(xs + g);
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            const int8_t *wr = wq[r] + b * L->q_blk;
            /* two blocks ahead in this stream (past the row's end it
             * touches the next row or nothing: prefetches never fault) */
            for (size_t l = 0; l < L->q_blk; l += 64)
                _mm_prefetch((const char *)wr + KN_Q8_GEMV_PREFETCH_BLOCKS * L->q_blk + l, _MM_HINT_T0);
            __m256i d[8];
#pragma GCC unroll 8
            for (int h = 0; h < 8; h++)
                d[h] = kn_q8_group_dot_avx2(xq + j0 + h * GROUP, xa + j0 + h * GROUP, wr + h * GROUP, GROUP);
            __m256 s = _mm256_mul_ps(sx, _mm256_loadu_ps((const float *)(ws[r] + b * L->s_blk)));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(kn_hsum8_epi32_avx2(d)), s, acc[r]);
        }
    }
    if (g < ng) {
        const int nb = ng - g, j0 = g * GROUP;
        const size_t b = (size_t)(g / 8);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(nb), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const __m256 sx = _mm256_maskload_ps(xs + g, mask);
        for (int r = 0; r < NR; r++) {
            const int8_t *wr = wq[r] + b * L->q_blk;
            __m256i d[8];
            for (int h = 0; h < 8; h++)
                d[h] = h < nb ? kn_q8_group_dot_avx2(xq + j0 + h * GROUP, xa + j0 + h * GROUP, wr + h * GROUP, GROUP)
                              : _mm256_setzero_si256();
            __m256 s = _mm256_mul_ps(sx, _mm256_maskload_ps((const float *)(ws[r] + b * L->s_blk), mask));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(kn_hsum8_epi32_avx2(d)), s, acc[r]);
        }
    }

#pragma GCC unroll 4
    for (int r = 0; r < NR; r++) {
        __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[r]), _mm256_extractf128_ps(acc[r], 1));
        v = _mm_add_ps(v, _mm_movehl_ps(v, v));
        v = _mm_add_ss(v, _mm_movehdup_ps(v));
        out[(size_t)r * rs] = _mm_cvtss_f32(v);
    }
}

/* GEMV over weight rows i0 .. i1-1 (one chunk) of layout L, out[i] for
 * each: the chunk is cut into four quarters walked side by side (four
 * streams, a quarter apart); the (i1 - i0) % 4 rows left go one at a time.
 * GROUP 32 or 64; each case is a separate copy of the kernel. */
__attribute__((target("avx2,fma"))) static void kn_q8_gemv_chunk_avx2(float *out, const int8_t *xq,
                                                                       const uint8_t *xa, const float *xs,
                                                                       const struct kn_q8_layout *L, int k,
                                                                       int group, int i0, int i1)
{
    const size_t q = (size_t)(i1 - i0) / 4;
    for (size_t i = (size_t)i0; i < (size_t)i0 + q; i++) {
        if (group == 32)
            kn_q8_gemv_rows_avx2(out + i, xq, xa, xs, L, i, q, k, 4, 32);
        else
            kn_q8_gemv_rows_avx2(out + i, xq, xa, xs, L, i, q, k, 4, 64);
    }
    for (size_t i = (size_t)i0 + 4 * q; i < (size_t)i1; i++) {
        if (group == 32)
            kn_q8_gemv_rows_avx2(out + i, xq, xa, xs, L, i, 0, k, 1, 32);
        else
            kn_q8_gemv_rows_avx2(out + i, xq, xa, xs, L, i, 0, k, 1, 64);
    }
}

/* All MR activation rows (MR > 1) against weight rows i .. i+NT-1: 4-row
 * tiles, then single rows. */
__attribute__((target("avx2,fma"))) static void kn_q8_block_avx2(float *out, int ldo, const int8_t *xq,
                                                                  const float *xs, int mr,
                                                                  const struct kn_weights *w, int i, int nt)
{
    const int k = w->k, group = w->group, ng = k / group;
    const int8_t *wq = (const int8_t *)w->data + (size_t)i * k;
    const float *ws = w->scales + (size_t)i * ng;
    const int8_t *pf = i + 2 * nt <= w->n ? wq + (size_t)nt * k : wq; /* the next block */
    int r = 0;
    for (; r + KN_TILE_M <= mr; r += KN_TILE_M)
        kn_q8_tile_avx2_any(out + (size_t)r * ldo + i, ldo, xq + (size_t)r * k, xs + (size_t)r * ng, wq, ws, pf,
                            k, KN_TILE_M, nt, group);
    for (; r < mr; r++)
        kn_q8_tile_avx2_any(out + (size_t)r * ldo + i, ldo, xq + (size_t)r * k, xs + (size_t)r * ng, wq, ws, pf,
                            k, 1, nt, group);
}

/* As kn_q8_rows_portable for MR > 1, with AVX2 tiles: 2 weight rows
 * against 4 activation rows; the rows left over go one at a time. */
__attribute__((target("avx2,fma"))) static void kn_q8_rows_avx2(float *out, int ldo, const int8_t *xq,
                                                                 const float *xs, int mr,
                                                                 const struct kn_weights *w, int i0, int i1)
{
    int i = i0;
    for (; i + KN_TILE_N <= i1; i += KN_TILE_N)
        kn_q8_block_avx2(out, ldo, xq, xs, mr, w, i, KN_TILE_N);
    for (; i < i1; i++)
        kn_q8_block_avx2(out, ldo, xq, xs, mr, w, i, 1);
}

/* ==== Q8 matmul: the driver ================================================= */

/* out (m, n) = x (m, k) W^T for W in Q8 (group 32 or 64).  x is quantised a
 * chunk of rows at a time into a scratch buffer (heap; a stack buffer of
 * fewer rows if the heap is out), then the weight rows are split across
 * threads, each a contiguous range.  For GEMV the buffer also holds |xq|,
 * computed once here instead of once per weight row. */
void kn_matmul_q8(float *out, const float *x, const struct kn_weights *w, int m)
{
    assert(w->dtype == KN_Q8 && (w->group == 32 || w->group == 64) && w->k % w->group == 0);
    assert(m >= 0 && w->n >= 1);
    if (m == 0)
        return;
    const int n = w->n, k = w->k, group = w->group, ng = k / group;
    const size_t row_bytes = (size_t)k * (m == 1 ? 2 : 1) + (size_t)ng * sizeof(float);
    const int avx2 = kn_use_avx2();
    /* the GEMV: AVX-512BW where the CPU has it (quant_avx512.c), same bits */
    kn_q8_gemv_chunk_fn *const gemv_chunk =
        kn_get_isa() == KN_ISA_AVX512 ? kn_q8_gemv_chunk_avx512 : kn_q8_gemv_chunk_avx2;
    const int nthreads = kn_matmul_threads((size_t)n * k);
    const int nr = m == 1 ? KN_GEMV_N : KN_TILE_N;
    const int ntiles = (n + nr - 1) / nr;
    const int nchunks = (n + KN_Q8_GEMV_CHUNK - 1) / KN_Q8_GEMV_CHUNK;
    const struct kn_q8_layout layout = kn_q8_layout_of(w);

    int mc = KN_X_CHUNK_BYTES / k;
    if (mc > KN_TILE_M)
        mc -= mc % KN_TILE_M;
    if (mc < 1)
        mc = 1;
    if (mc > m)
        mc = m;
    float stack_buf[4096]; /* scales first (float aligned), then the int8 */
    void *heap_buf = NULL;
    void *buf = stack_buf;
    if ((size_t)mc * row_bytes > sizeof stack_buf) {
        heap_buf = malloc((size_t)mc * row_bytes);
        buf = heap_buf;
        if (heap_buf == NULL) {
            mc = (int)(sizeof stack_buf / row_bytes);
            assert(mc >= 1 && "kn_matmul_q8: out of memory for one row of x");
            if (mc < 1)
                abort();
            buf = stack_buf;
        }
    }
    float *xs = buf;                            /* (mc, ng) */
    int8_t *xq = (int8_t *)(xs + (size_t)mc * ng); /* (mc, k) */
    uint8_t *xa = (uint8_t *)(xq + (size_t)mc * k); /* (k) = |xq|, GEMV only (mc = 1) */

    for (int r0 = 0; r0 < m; r0 += mc) {
        const int mr = m - r0 < mc ? m - r0 : mc;
        float *o = out + (size_t)r0 * n;
        if (m == 1) { /* GEMV: one row is too little to share, and this saves a barrier */
            kn_quantize_q8(xq, xs, x, (size_t)k, group);
            kn_abs_q8(xa, xq, k);
        }
#pragma omp parallel num_threads(nthreads)
        {
            if (m > 1) {
#pragma omp for schedule(static)
                for (int r = 0; r < mr; r++)
                    kn_quantize_q8(xq + (size_t)r * k, xs + (size_t)r * ng, x + (size_t)(r0 + r) * k, (size_t)k,
                                   group);
            }
            if (m == 1 && avx2) {
                /* Chunks handed out as threads free up: a thread that shares
                 * its core with another process takes fewer. */
#pragma omp for schedule(dynamic, 1)
                for (int c = 0; c < nchunks; c++) {
                    int i0 = c * KN_Q8_GEMV_CHUNK, i1 = i0 + KN_Q8_GEMV_CHUNK < n ? i0 + KN_Q8_GEMV_CHUNK : n;
                    gemv_chunk(o, xq, xa, xs, &layout, k, group, i0, i1);
                }
            } else {
#pragma omp for schedule(static)
                for (int t = 0; t < ntiles; t++) {
                    int i0 = t * nr, i1 = i0 + nr < n ? i0 + nr : n;
                    if (avx2)
                        kn_q8_rows_avx2(o, n, xq, xs, mr, w, i0, i1);
                    else
                        kn_q8_rows_portable(o, n, xq, xs, mr, w, i0, i1);
                }
            }
        }
    }
    free(heap_buf);
}

/* ==== bf16 matmul ============================================================ */

static float kn_bf16_value(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* out[r*ldo + i] for r < mr, i in [i0, i1): x (mr, k) . W rows i0..i1-1
 * (bf16), in float. */
static void kn_bf16_rows_portable(float *out, int ldo, const float *x, int mr, const struct kn_weights *w,
                                  int i0, int i1)
{
    const int k = w->k;
    const uint16_t *wb = w->data;
    for (int i = i0; i < i1; i++) {
        const uint16_t *wrow = wb + (size_t)i * k;
        for (int r = 0; r < mr; r++) {
            const float *xrow = x + (size_t)r * k;
            float acc = 0.0f;
            for (int j = 0; j < k; j++)
                acc += xrow[j] * kn_bf16_value(wrow[j]);
            out[(size_t)r * ldo + i] = acc;
        }
    }
}

/* 8 bf16 at p as 8 floats: zero-extend to 32 bits, shift into the top half. */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 kn_bf16_load8(const uint16_t *p)
{
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* The tile kernel: out (MR, NR) at out[r*ldo + c] = x (MR, k) . wb (NR, k)
 * rows, row strides k; 8 columns per step with FMA, the k % 8 tail in scalar
 * code.  MR and NR are constants after inlining.  GEMV (MR = 1) first takes
 * 16 columns per step with a cheaper widening: unpacking 16 bf16 with zeros
 * below them gives floats directly, columns [0..3, 8..11] and [4..7, 12..15],
 * and two permutes (shared by the NR rows) put x in the same order. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
kn_bf16_tile_avx2(float *out, int ldo, const float *x, const uint16_t *wb, const uint16_t *pf, int k, const int MR,
                  const int NR)
{
    __m256 acc[KN_TILE_M][KN_GEMV_N];
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int c = 0; c < NR; c++)
            acc[r][c] = _mm256_setzero_ps();
    int j = 0;
    if (MR == 1) {
        const __m256i zero = _mm256_setzero_si256();
        __m256 acc_hi[KN_GEMV_N];
#pragma GCC unroll 4
        for (int c = 0; c < NR; c++)
            acc_hi[c] = _mm256_setzero_ps();
        for (; j + 16 <= k; j += 16) {
            __m256 xa = _mm256_loadu_ps(x + j), xb = _mm256_loadu_ps(x + j + 8);
            __m256 xlo = _mm256_permute2f128_ps(xa, xb, 0x20), xhi = _mm256_permute2f128_ps(xa, xb, 0x31);
#pragma GCC unroll 4
            for (int c = 0; c < NR; c++) {
                if (j % 32 == 0)
                    _mm_prefetch((const char *)(pf + (size_t)c * k + j), _MM_HINT_T0);
                __m256i v = _mm256_loadu_si256((const __m256i *)(wb + (size_t)c * k + j));
                acc[0][c] = _mm256_fmadd_ps(xlo, _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, v)), acc[0][c]);
                acc_hi[c] = _mm256_fmadd_ps(xhi, _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, v)), acc_hi[c]);
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < NR; c++)
            acc[0][c] = _mm256_add_ps(acc[0][c], acc_hi[c]);
    }
    for (; j + 8 <= k; j += 8) {
        __m256 wv[KN_GEMV_N];
#pragma GCC unroll 4
        for (int c = 0; c < NR; c++) {
            if (j % 32 == 0)
                _mm_prefetch((const char *)(pf + (size_t)c * k + j), _MM_HINT_T0);
            wv[c] = kn_bf16_load8(wb + (size_t)c * k + j);
        }
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)r * k + j);
#pragma GCC unroll 4
            for (int c = 0; c < NR; c++)
                acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int c = 0; c < NR; c++) {
            __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[r][c]), _mm256_extractf128_ps(acc[r][c], 1));
            v = _mm_add_ps(v, _mm_movehl_ps(v, v));
            v = _mm_add_ss(v, _mm_movehdup_ps(v));
            float s = _mm_cvtss_f32(v);
            for (int jj = j; jj < k; jj++)
                s += x[(size_t)r * k + jj] * kn_bf16_value(wb[(size_t)c * k + jj]);
            out[(size_t)r * ldo + c] = s;
        }
}

/* One tile of MR x NR (sizes used: 1x1, 1x2, 1x4, 4x1, 4x2). */
__attribute__((target("avx2,fma"))) static void kn_bf16_tile_avx2_any(float *out, int ldo, const float *x,
                                                                       const uint16_t *wb, const uint16_t *pf, int k,
                                                                       int mr, int nr)
{
    switch (mr * 10 + nr) {
    case 11: kn_bf16_tile_avx2(out, ldo, x, wb, pf, k, 1, 1); return;
    case 12: kn_bf16_tile_avx2(out, ldo, x, wb, pf, k, 1, 2); return;
    case 14: kn_bf16_tile_avx2(out, ldo, x, wb, pf, k, 1, 4); return;
    case 41: kn_bf16_tile_avx2(out, ldo, x, wb, pf, k, 4, 1); return;
    case 42: kn_bf16_tile_avx2(out, ldo, x, wb, pf, k, 4, 2); return;
    }
    assert(!"kn_bf16_tile_avx2_any: tile shape not instantiated");
}

/* All MR activation rows against weight rows i .. i+NT-1: 4-row tiles, then
 * single rows. */
__attribute__((target("avx2,fma"))) static void kn_bf16_block_avx2(float *out, int ldo, const float *x, int mr,
                                                                    const struct kn_weights *w, int i, int nt)
{
    const int k = w->k;
    const uint16_t *wb = (const uint16_t *)w->data + (size_t)i * k;
    const uint16_t *pf = i + 2 * nt <= w->n ? wb + (size_t)nt * k : wb; /* the next block */
    int r = 0;
    for (; r + KN_TILE_M <= mr; r += KN_TILE_M)
        kn_bf16_tile_avx2_any(out + (size_t)r * ldo + i, ldo, x + (size_t)r * k, wb, pf, k, KN_TILE_M, nt);
    for (; r < mr; r++)
        kn_bf16_tile_avx2_any(out + (size_t)r * ldo + i, ldo, x + (size_t)r * k, wb, pf, k, 1, nt);
}

/* As kn_bf16_rows_portable, with AVX2 tiles (the same blocking as Q8). */
__attribute__((target("avx2,fma"))) static void kn_bf16_rows_avx2(float *out, int ldo, const float *x, int mr,
                                                                   const struct kn_weights *w, int i0, int i1)
{
    const int nr = mr == 1 ? KN_GEMV_N : KN_TILE_N;
    int i = i0;
    for (; i + nr <= i1; i += nr)
        kn_bf16_block_avx2(out, ldo, x, mr, w, i, nr);
    for (; i < i1; i++)
        kn_bf16_block_avx2(out, ldo, x, mr, w, i, 1);
}

/* out (m, n) = x (m, k) W^T for W in bf16; float accumulation.  Activation
 * rows go in chunks that fit in L2, the weight rows split across threads. */
void kn_matmul_bf16(float *out, const float *x, const struct kn_weights *w, int m)
{
    assert(w->dtype == KN_BF16 && m >= 0 && w->n >= 1 && w->k >= 1);
    if (m == 0)
        return;
    const int n = w->n, k = w->k;
    const int avx2 = kn_use_avx2();
    const int nthreads = kn_matmul_threads((size_t)n * k * sizeof(uint16_t));
    const int nr = m == 1 ? KN_GEMV_N : KN_TILE_N;
    const int ntiles = (n + nr - 1) / nr;
    int mc = (int)(KN_X_CHUNK_BYTES / ((size_t)k * sizeof(float)));
    if (mc > KN_TILE_M)
        mc -= mc % KN_TILE_M;
    if (mc < 1)
        mc = 1;

    for (int r0 = 0; r0 < m; r0 += mc) {
        const int mr = m - r0 < mc ? m - r0 : mc;
        const float *xc = x + (size_t)r0 * k;
        float *o = out + (size_t)r0 * n;
#pragma omp parallel for num_threads(nthreads) schedule(static)
        for (int t = 0; t < ntiles; t++) {
            int i0 = t * nr, i1 = i0 + nr < n ? i0 + nr : n;
            if (avx2)
                kn_bf16_rows_avx2(o, n, xc, mr, w, i0, i1);
            else
                kn_bf16_rows_portable(o, n, xc, mr, w, i0, i1);
        }
    }
}
