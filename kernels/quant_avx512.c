/* quant_avx512.c -- the Q8 (int8 weights, one scale per group of 32 or 64)
 * GEMV on AVX-512BW, which kn_matmul_q8 (quant.c) uses for m = 1 on CPUs
 * with it.  It is quant.c's AVX2 GEMV (kn_q8_gemv_rows_avx2) with the int8
 * dot products done 64 bytes at a time: the sign trick becomes a mask
 * (AVX-512 has no vpsignb: w is negated where x < 0, which is what
 * _mm256_sign_epi8 did, lanes where x = 0 meeting |x| = 0), then maddubs
 * (|x| as uint8 by the signed w) and madd with ones widen to int32 as before.
 * The int32 group sums are exact, and from there on the float operations are
 * the AVX2 kernel's in the same order, so the two give the same bits.
 *
 * Compiled twice, as matmul_avx512.c (avx512_int.h): natively, and by
 * tests/avx512_simde.c against SIMDe for tests/check_avx512.c. */
#include "kernels/matmul_int.h"
#include "kernels/avx512_int.h"

#ifdef KN_AVX512_BUILD

#include <stddef.h>

/* 8-group blocks ahead that each of the four streams prefetches (as
 * quant.c's KN_Q8_GEMV_PREFETCH_BLOCKS). */
#define KN_Q8_AVX512_PREFETCH_BLOCKS 2

/* lane h of the result = the sum of the 8 int32 lanes of d[h] (h < 8), as
 * quant.c's kn_hsum8_epi32_avx2. */
static inline KN_AVX512 __m256i kn_q8_hsum8_epi32(const __m256i d[8])
{
    __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
    __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(d[4], d[5]), _mm256_hadd_epi32(d[6], d[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

/* 16 int32 partial sums of the int8 dot product of 64 bytes at xq and wq;
 * xa = |xq|.  Each int32 lane sums 4 adjacent bytes' products, so lanes
 * 0-7 cover bytes 0-31 and lanes 8-15 bytes 32-63. */
static inline KN_AVX512 __m512i kn_q8_dot64(const int8_t *xq, const uint8_t *xa, const int8_t *wq)
{
    __m512i xv = _mm512_loadu_si512((const void *)xq);
    __m512i av = _mm512_loadu_si512((const void *)xa);
    __m512i wv = _mm512_loadu_si512((const void *)wq);
    kn_mask64 neg = _mm512_movepi8_mask(xv); /* x < 0 */
    __m512i ws = _mm512_mask_sub_epi8(wv, neg, _mm512_setzero_si512(), wv);
    return _mm512_madd_epi16(_mm512_maddubs_epi16(av, ws), _mm512_set1_epi16(1));
}

/* The 8 int32 sums of groups g .. g+7 starting at byte j0 (lane h = group
 * g+h), for the first NB (<= 8) of them (lanes past are zero).  GROUP 32: a
 * 64-byte step covers two groups, its two 256-bit halves; GROUP 64: one,
 * its halves added. */
static inline KN_AVX512 __m256i kn_q8_block_dots(const int8_t *xq, const uint8_t *xa, const int8_t *wr, int nb,
                                                const int GROUP)
{
    __m256i d[8];
    if (GROUP == 32) {
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            if (2 * c < nb) {
                __m512i p = kn_q8_dot64(xq + 64 * c, xa + 64 * c, wr + 64 * c);
                d[2 * c] = _mm512_castsi512_si256(p);
                d[2 * c + 1] = 2 * c + 1 < nb ? _mm512_extracti64x4_epi64(p, 1) : _mm256_setzero_si256();
            } else {
                d[2 * c] = d[2 * c + 1] = _mm256_setzero_si256();
            }
        }
    } else {
#pragma GCC unroll 8
        for (int h = 0; h < 8; h++) {
            if (h < nb) {
                __m512i p = kn_q8_dot64(xq + 64 * h, xa + 64 * h, wr + 64 * h);
                d[h] = _mm256_add_epi32(_mm512_castsi512_si256(p), _mm512_extracti64x4_epi64(p, 1));
            } else {
                d[h] = _mm256_setzero_si256();
            }
        }
    }
    return kn_q8_hsum8_epi32(d);
}

/* The GEMV on NR (1 or 4) weight rows at once, rows i + r*rs (r < NR):
 * out[r*rs] = xq (k) . that row.  As kn_q8_gemv_rows_avx2 (quant.c): eight
 * groups at a time, their int32 dots reduced into one vector, converted
 * once and multiplied by the eight scale products with one FMA; the ng % 8
 * groups at the end the same way with the missing lanes zero.  No byte
 * past the row's last group is read: with GROUP 32 and an odd number of
 * groups in the last, partial block, the 64-byte step would take half of it
 * from past the end, so that group's 32 bytes are copied into a zeroed
 * 64-byte buffer first. */
static inline KN_AVX512 void kn_q8_gemv_rows_avx512(float *out, const int8_t *xq, const uint8_t *xa,
                                                    const float *xs, const struct kn_q8_layout *L, size_t i,
                                                    size_t rs, int k, const int NR, const int GROUP)
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
            for (size_t l = 0; l < L->q_blk; l += 64)
                _mm_prefetch((const char *)wr + KN_Q8_AVX512_PREFETCH_BLOCKS * L->q_blk + l, _MM_HINT_T0);
            __m256i dots = kn_q8_block_dots(xq + j0, xa + j0, wr, 8, GROUP);
            __m256 s = _mm256_mul_ps(sx, _mm256_loadu_ps((const float *)(ws[r] + b * L->s_blk)));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), s, acc[r]);
        }
    }
    if (g < ng) {
        const int nb = ng - g, j0 = g * GROUP;
        const size_t b = (size_t)(g / 8);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(nb), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const __m256 sx = _mm256_maskload_ps(xs + g, mask);
        for (int r = 0; r < NR; r++) {
            const int8_t *wr = wq[r] + b * L->q_blk;
            __m256i dots;
            if (GROUP == 32 && (nb & 1)) {
                /* the last group alone, from a zero-padded copy */
                int8_t last[64] = {0};
                uint8_t last_a[64] = {0};
                int8_t last_x[64] = {0};
                const int jl = (nb - 1) * 32;
                for (int t = 0; t < 32; t++) {
                    last[t] = wr[jl + t];
                    last_a[t] = xa[j0 + jl + t];
                    last_x[t] = xq[j0 + jl + t];
                }
                __m256i head = kn_q8_block_dots(xq + j0, xa + j0, wr, nb - 1, GROUP);
                __m256i tail = _mm512_castsi512_si256(kn_q8_dot64(last_x, last_a, last));
                __m256i z = _mm256_setzero_si256();
                __m256i d[8] = {z, z, z, z, z, z, z, z};
                d[nb - 1] = tail;
                dots = _mm256_add_epi32(head, kn_q8_hsum8_epi32(d));
            } else {
                dots = kn_q8_block_dots(xq + j0, xa + j0, wr, nb, GROUP);
            }
            __m256 s = _mm256_mul_ps(sx, _mm256_maskload_ps((const float *)(ws[r] + b * L->s_blk), mask));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), s, acc[r]);
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

/* See matmul_int.h.  As quant.c's kn_q8_gemv_chunk_avx2: the chunk cut into
 * four quarters walked side by side (four streams, a quarter apart); the
 * (i1 - i0) % 4 rows left go one at a time.  GROUP 32 or 64, each a
 * separate copy of the kernel. */
KN_AVX512 void KN_AVX512_FN(kn_q8_gemv_chunk_avx512)(float *out, const int8_t *xq, const uint8_t *xa,
                                                     const float *xs, const struct kn_q8_layout *L, int k,
                                                     int group, int i0, int i1)
{
    const size_t q = (size_t)(i1 - i0) / 4;
    for (size_t i = (size_t)i0; i < (size_t)i0 + q; i++) {
        if (group == 32)
            kn_q8_gemv_rows_avx512(out + i, xq, xa, xs, L, i, q, k, 4, 32);
        else
            kn_q8_gemv_rows_avx512(out + i, xq, xa, xs, L, i, q, k, 4, 64);
    }
    for (size_t i = (size_t)i0 + 4 * q; i < (size_t)i1; i++) {
        if (group == 32)
            kn_q8_gemv_rows_avx512(out + i, xq, xa, xs, L, i, 0, k, 1, 32);
        else
            kn_q8_gemv_rows_avx512(out + i, xq, xa, xs, L, i, 0, k, 1, 64);
    }
}

#else /* not x86 with GCC or clang: kn_get_isa never picks AVX-512 here */

#include <assert.h>

void kn_q8_gemv_chunk_avx512(float *out, const int8_t *xq, const uint8_t *xa, const float *xs,
                             const struct kn_q8_layout *L, int k, int group, int i0, int i1)
{
    assert(!"kn_q8_gemv_chunk_avx512 needs x86 with GCC or clang");
}

#endif
