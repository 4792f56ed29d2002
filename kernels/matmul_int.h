/* matmul_int.h -- internal to kernels/: the per-dtype matmul paths that
 * kn_matmul() dispatches to, and helpers shared by the kernel files. */
#ifndef LLM_MATMUL_INT_H
#define LLM_MATMUL_INT_H

#include "kernels/kernels.h"

/* out (m, n) = x (m, k) W^T for one dtype; called by kn_matmul (matmul.c). */
void kn_matmul_f32(float *out, const float *x, const struct kn_weights *w, int m);  /* matmul.c */
void kn_matmul_bf16(float *out, const float *x, const struct kn_weights *w, int m); /* quant.c */
void kn_matmul_q8(float *out, const float *x, const struct kn_weights *w, int m);   /* quant.c */

/* One weight element as float, for reference loops of any dtype. */
static inline float kn_weight_at(const struct kn_weights *w, size_t i)
{
    switch (w->dtype) {
    case KN_BF16: {
        union {
            uint32_t u;
            float f;
        } v;
        v.u = (uint32_t)((const uint16_t *)w->data)[i] << 16;
        return v.f;
    }
    case KN_Q8:
        return ((const int8_t *)w->data)[i] * w->scales[i / (size_t)w->group];
    case KN_F32:
    default:
        return ((const float *)w->data)[i];
    }
}

/* ---- f32 micro-kernels (matmul.c drives them; matmul_avx2.c holds the AVX2
 * versions) ----------------------------------------------------------------- */

/* The GEMM register tile: KN_GEMM_MR rows of x by KN_GEMM_NR rows of W. */
#define KN_GEMM_MR 6
#define KN_GEMM_NR 16

/* c (MR, NR; row stride ldc) = (accumulate ? c : 0) + a^T b over kc, where a
 * is a packed x panel (kc, MR) and b a packed W panel (kc, NR), b 32-byte
 * aligned.  Only on CPUs with AVX2 and FMA. */
void kn_gemm_ukr_avx2(int kc, const float *a, const float *b, float *c, int ldc, int accumulate);

/* out[i] = dot(W[i, :], x) for rows i0 <= i < i1 of W (n, k); x is (k).
 * Only on CPUs with AVX2 and FMA. */
void kn_gemv_avx2(float *out, const float *x, const float *w, int k, int i0, int i1);

#endif
