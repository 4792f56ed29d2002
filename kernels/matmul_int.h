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
 * versions, matmul_avx512.c the AVX-512 ones) ------------------------------- */

/* The GEMM register tile of the portable and AVX2 kernels: KN_GEMM_MR rows
 * of x by KN_GEMM_NR rows of W.  Each kn_gemm_impl names its own tile (the
 * AVX-512 one is 12 x 32); KN_GEMM_MR_MAX and KN_GEMM_NR_MAX bound them all. */
#define KN_GEMM_MR 6
#define KN_GEMM_NR 16
#define KN_GEMM_MR_MAX 12
#define KN_GEMM_NR_MAX 32

/* The kernels of one ISA that the blocked GEMM (matmul.c) calls, and the
 * shape they work in: the micro-kernel's tile, mr rows of x by nr rows of W,
 * and kc, the depth of one packed block along k.
 *  ukr:    c (mr, nr; row stride ldc) = (accumulate ? c : 0) + a^T b over
 *          kc, with a a packed x panel (kc, mr) and b a packed W panel
 *          (kc, nr), b 64-byte aligned.
 *  pack_w: W rows j0 .. j0+nc-1, columns p0 .. p0+kc-1 (W is (n, k)) into
 *          panels of nr rows, bp[q*kc*nr + p*nr + jj] = W[j0 + q*nr + jj][p0 + p],
 *          zero past the last row; bp 64-byte aligned.
 *  pack_x: x rows i0 .. i0+mc-1, columns p0 .. p0+kc-1 (x is (m, k)) into
 *          panels of mr rows, ap[q*kc*mr + p*mr + ii] = x[i0 + q*mr + ii][p0 + p],
 *          zero past the last row. */
struct kn_gemm_impl {
    int mr, nr, kc;
    void (*ukr)(int kc, const float *a, const float *b, float *c, int ldc, int accumulate);
    void (*pack_w)(float *bp, const float *w, int k, int j0, int nc, int p0, int kc);
    void (*pack_x)(float *ap, const float *x, int k, int i0, int mc, int p0, int kc);
};

/* The GEMV kernels of one ISA (W is (n, k), rows i0 <= i < i1 of out):
 *  gemv:  out[i] = dot(W[i, :], x).
 *  gemv2: the same for two rows of x, into out0 and out1 (may be NULL).
 *  gemv4: the same for four rows of x, x[r * ldx ..] for r < 4, into
 *         out[r * ldo + i]; it prefetches no W row at or past n (may be NULL). */
struct kn_gemv_impl {
    void (*gemv)(float *out, const float *x, const float *w, int k, int i0, int i1);
    void (*gemv2)(float *out0, float *out1, const float *x0, const float *x1, const float *w, int k, int i0,
                  int i1);
    void (*gemv4)(float *out, int ldo, const float *x, int ldx, const float *w, int k, int n, int i0, int i1);
};

/* out (m, n) = x (m, k) W^T for f32 weights through the given kernels: the
 * GEMV path for small m, the blocked GEMM otherwise, threaded as
 * kn_matmul_f32.  For tests that drive a kernel set the CPU's ISA would not
 * pick (matmul.c). */
void kn_matmul_f32_with(const struct kn_gemm_impl *gemm, const struct kn_gemv_impl *gemv, float *out,
                        const float *x, const struct kn_weights *w, int m);

/* The AVX-512F kernels (matmul_avx512.c): only on CPUs with AVX-512F, AVX2
 * and FMA.  The _simde copies are the same source compiled against SIMDe's
 * portable intrinsics (tests/avx512_simde.c), linked only into tests. */
extern const struct kn_gemm_impl kn_gemm_avx512_impl;
extern const struct kn_gemv_impl kn_gemv_avx512_impl;
extern const struct kn_gemm_impl kn_gemm_avx512_impl_simde;
extern const struct kn_gemv_impl kn_gemv_avx512_impl_simde;

/* c (MR, NR; row stride ldc) = (accumulate ? c : 0) + a^T b over kc, where a
 * is a packed x panel (kc, MR) and b a packed W panel (kc, NR), b 32-byte
 * aligned.  Only on CPUs with AVX2 and FMA. */
void kn_gemm_ukr_avx2(int kc, const float *a, const float *b, float *c, int ldc, int accumulate);

/* Pack W rows j0 .. j0+nc-1, columns p0 .. p0+kc-1 (W is (n, k)) into
 * panels of NR rows, bp[q*kc*NR + p*NR + jj] = W[j0 + q*NR + jj][p0 + p],
 * zero past the last row; bp 32-byte aligned.  AVX2 only. */
void kn_pack_w_avx2(float *bp, const float *w, int k, int j0, int nc, int p0, int kc);

/* Pack x rows i0 .. i0+mc-1, columns p0 .. p0+kc-1 (x is (m, k)) into
 * panels of MR rows, ap[q*kc*MR + p*MR + ii] = x[i0 + q*MR + ii][p0 + p],
 * zero past the last row.  AVX2 only. */
void kn_pack_x_avx2(float *ap, const float *x, int k, int i0, int mc, int p0, int kc);

/* out[i] = dot(W[i, :], x) for rows i0 <= i < i1 of W (n, k); x is (k).
 * Only on CPUs with AVX2 and FMA. */
void kn_gemv_avx2(float *out, const float *x, const float *w, int k, int i0, int i1);

/* The same for two rows of x at once: out0[i] = dot(W[i, :], x0) and
 * out1[i] = dot(W[i, :], x1).  AVX2 only. */
void kn_gemv2_avx2(float *out0, float *out1, const float *x0, const float *x1, const float *w, int k,
                   int i0, int i1);

/* The same for four rows of x at once, x[r * ldx ..] for r < 4, into
 * out[r * ldo + i]; W has N rows (it prefetches no further).  AVX2 only. */
void kn_gemv4_avx2(float *out, int ldo, const float *x, int ldx, const float *w, int k, int n, int i0, int i1);

/* ---- Q8 GEMV (quant.c; the AVX-512 version in quant_avx512.c) ---------------- */

/* Where the GEMV finds a weight row's int8 and scales: the quants of
 * 8-group block b of row i at q + i*row + b*blk, its 8 scales at
 * s + i*row + b*blk (bytes; the ng % 8 scales of a last, partial block
 * likewise).  Separate arrays (data, scales) and the kn_pack_q8 layout are
 * both of this form. */
struct kn_q8_layout {
    const int8_t *q;
    const char *s;
    size_t q_row, s_row; /* bytes between rows */
    size_t q_blk, s_blk; /* bytes between 8-group blocks */
};

/* The layout of W (KN_Q8): kn_pack_q8's when W has one, else data and scales. */
struct kn_q8_layout kn_q8_layout_of(const struct kn_weights *w);

/* The Q8 GEMV over weight rows i0 .. i1-1 of layout L (k, group 32 or 64):
 * out[i] = xq (k) . row i, with xa = |xq| as uint8 and xs the k/group scales
 * of x; the same arithmetic as quant.c's AVX2 kernel, so the same bits.
 * Only on CPUs with AVX-512F and AVX-512BW; the _simde copy (tests only) on
 * any CPU. */
typedef void kn_q8_gemv_chunk_fn(float *out, const int8_t *xq, const uint8_t *xa, const float *xs,
                                 const struct kn_q8_layout *L, int k, int group, int i0, int i1);
kn_q8_gemv_chunk_fn kn_q8_gemv_chunk_avx512;
kn_q8_gemv_chunk_fn kn_q8_gemv_chunk_avx512_simde;

#endif
