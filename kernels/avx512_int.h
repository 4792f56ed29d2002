/* avx512_int.h -- internal to kernels/: what the AVX-512 kernel files
 * (matmul_avx512.c, quant_avx512.c) share to compile two ways.
 *
 * Natively (x86 with GCC or clang): <immintrin.h>, and KN_AVX512 marks each
 * function target("avx512f,avx512bw,avx2,fma") so the files need no special
 * compiler flags; backend.c picks KN_ISA_AVX512 only on CPUs with all four.
 * Under KN_AVX512_SIMDE (tests/avx512_simde.c): SIMDe's portable versions of
 * the same intrinsics, no target attribute, and the exported names gain the
 * suffix _simde (KN_AVX512_FN), so both copies link into one test.  Where
 * SIMDe 0.7.4 lacks an intrinsic or differs from the instruction (an FMA
 * rounded twice, masked loads that read every lane, a misdeclared alias),
 * the replacement below follows the instruction's documented behaviour.
 * KN_AVX512_BUILD is defined when either applies. */
#ifndef LLM_AVX512_INT_H
#define LLM_AVX512_INT_H

#if defined(KN_AVX512_SIMDE)
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define KN_AVX512
#define KN_AVX512_FN(name) name##_simde
#define KN_AVX512_BUILD 1
typedef simde__mmask16 kn_mask16; /* SIMDe 0.7.4 has no alias __mmask16 */
typedef simde__mmask64 kn_mask64;
/* SIMDe 0.7.4 defines the alias _mm512_madd_epi16 with four parameters (a
 * slip: the function takes two) */
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)
/* Without FMA hardware SIMDe computes a fused multiply-add as a*b + c, two
 * roundings; the instructions round once.  So that the SIMDe copy gives the
 * hardware's bits, its FMAs go through C's fmaf, lane by lane. */
#include <math.h>
static inline simde__m512 kn_simde_fmadd512(simde__m512 a, simde__m512 b, simde__m512 c)
{
    float fa[16], fb[16], fc[16];
    simde_mm512_storeu_ps(fa, a);
    simde_mm512_storeu_ps(fb, b);
    simde_mm512_storeu_ps(fc, c);
    for (int l = 0; l < 16; l++)
        fc[l] = fmaf(fa[l], fb[l], fc[l]);
    return simde_mm512_loadu_ps(fc);
}
static inline simde__m256 kn_simde_fmadd256(simde__m256 a, simde__m256 b, simde__m256 c)
{
    float fa[8], fb[8], fc[8];
    simde_mm256_storeu_ps(fa, a);
    simde_mm256_storeu_ps(fb, b);
    simde_mm256_storeu_ps(fc, c);
    for (int l = 0; l < 8; l++)
        fc[l] = fmaf(fa[l], fb[l], fc[l]);
    return simde_mm256_loadu_ps(fc);
}
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps(a, b, c) kn_simde_fmadd512(a, b, c)
#undef _mm256_fmadd_ps
#define _mm256_fmadd_ps(a, b, c) kn_simde_fmadd256(a, b, c)
/* SIMDe's _mm256_maskload_ps reads all 8 lanes and then masks; the
 * instruction reads only the lanes whose mask sign bit is set (and does not
 * fault on the others), which the kernels rely on at the end of a row. */
static inline simde__m256 kn_simde_maskload256(const float *p, simde__m256i mask)
{
    int32_t m[8];
    float v[8];
    simde_mm256_storeu_si256((simde__m256i *)m, mask);
    for (int l = 0; l < 8; l++)
        v[l] = m[l] < 0 ? p[l] : 0.0f;
    return simde_mm256_loadu_ps(v);
}
#undef _mm256_maskload_ps
#define _mm256_maskload_ps(p, mask) kn_simde_maskload256(p, mask)
/* SIMDe 0.7.4 has no _mm512_maskz_loadu_ps: the lanes of p whose bit is
 * set in mask, zero elsewhere; masked-off lanes are not read. */
static inline simde__m512 kn_simde_maskz_loadu512(simde__mmask16 mask, const float *p)
{
    float v[16];
    for (int l = 0; l < 16; l++)
        v[l] = (mask >> l & 1u) ? p[l] : 0.0f;
    return simde_mm512_loadu_ps(v);
}
#define _mm512_maskz_loadu_ps(mask, p) kn_simde_maskz_loadu512(mask, p)
#elif (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KN_AVX512 __attribute__((target("avx512f,avx512bw,avx2,fma")))
#define KN_AVX512_FN(name) name
#define KN_AVX512_BUILD 1
typedef __mmask16 kn_mask16;
typedef __mmask64 kn_mask64;
#endif

#endif
