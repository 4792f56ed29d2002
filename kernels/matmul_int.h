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

#endif
