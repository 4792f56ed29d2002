/* flash_bf16.cu -- flash-attention forward in bfloat16 on the tensor cores
 * (kn_cuda_flash_attention_bf16 in kn_cuda.h): contiguous (B, S, heads,
 * head_dim) tensors, grouped-query heads, causal or not, head_dim 64 or 128.
 *
 *   v0  one block per (query, head, batch) in plain float32 arithmetic on
 *       the bf16 inputs (no tensor cores): the reference point.
 *   v1  FlashAttention-2 style: a block of 4 warps takes a tile of 64
 *       queries (16 per warp) and walks the key tiles of 64 (double
 *       buffered in shared memory with cp.async); S = Q K^T and O += P V
 *       with mma.sync.m16n8k16 (bf16 in, float32 accumulate); Q fragments
 *       stay in registers for the whole walk; the online softmax runs in
 *       registers with exp2f on scores pre-scaled by log2(e)/sqrt(head_dim);
 *       P becomes the A operand of P V in registers (the accumulator layout
 *       of S is the A layout of P, converted to bf16).  Causal: key tiles
 *       above the diagonal are skipped, only the diagonal tile is masked,
 *       and the heaviest query tiles are scheduled first.
 *
 * Both normalise O by the row sum at the end and round it to bf16 (nearest
 * even).  v1 rounds P to bf16 for the P V product (as FlashAttention does);
 * the row sum uses the float32 P. */
#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>

#include "kernels/cuda/cuda_int.h"

enum {
    KN_FA_V0_THREADS = 128, /* v0: one thread per dim (head_dim <= 128), keys per tile */
    KN_FA_THREADS = 128,    /* v1: 4 warps */
    KN_FA_BM = 64,          /* v1: queries per block (16 per warp) */
    KN_FA_BN = 64,          /* v1: keys per K/V tile */
};

#define KN_FA_LOG2E 1.4426950408889634f
#define KN_FA_FULL 0xffffffffu

/* bf16 bits <-> float */
__device__ __forceinline__ float bf16_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
__device__ __forceinline__ uint16_t f32_to_bf16(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }

/* Two floats as a bf16x2 register: LO in the low half (the element with the
 * smaller column index in an mma fragment), HI in the high half. */
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi); /* .x = lo (low 16 bits), .y = hi */
    return *reinterpret_cast<uint32_t *>(&v);
}

/* ==== v0: float32 arithmetic, one block per query row ============================== */

/* Block (s, h, b): query s of head h in batch b against keys 0 .. S-1 (0 .. s
 * when causal), in tiles of 128: thread t scores key k0 + t, then thread d
 * accumulates output dim d over the tile. */
__global__ void __launch_bounds__(KN_FA_V0_THREADS)
flash_v0_kernel(uint16_t *out, const uint16_t *q, const uint16_t *k, const uint16_t *v, int S, int n_heads, int n_kv,
                int D, int causal, float scale_log2)
{
    __shared__ float qs[KN_FA_V0_THREADS];
    __shared__ float ps[KN_FA_V0_THREADS];
    __shared__ float red[KN_FA_V0_THREADS / 32];
    const int s = blockIdx.x, h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
    const int lane = tid & 31, warp = tid >> 5;
    const int hk = h / (n_heads / n_kv), n = causal ? s + 1 : S;
    const size_t qrow = (size_t)n_heads * D, kvrow = (size_t)n_kv * D;
    const uint16_t *qp = q + ((size_t)b * S + s) * qrow + (size_t)h * D;
    const uint16_t *kb = k + (size_t)b * S * kvrow + (size_t)hk * D;
    const uint16_t *vb = v + (size_t)b * S * kvrow + (size_t)hk * D;
    float m = -INFINITY, l = 0.f, acc = 0.f;

    if (tid < D)
        qs[tid] = bf16_to_f32(qp[tid]) * scale_log2;
    __syncthreads();
    for (int k0 = 0; k0 < n; k0 += KN_FA_V0_THREADS) {
        const int p = k0 + tid, cnt = min(KN_FA_V0_THREADS, n - k0);
        float sc = -INFINITY, mt, lt, e;

        if (p < n) {
            const uint16_t *kr = kb + (size_t)p * kvrow;
            float dot = 0.f;
            for (int d = 0; d < D; d++)
                dot += qs[d] * bf16_to_f32(kr[d]);
            sc = dot;
        }
        /* tile max, then the tile's sum of exponentials */
        mt = sc;
        for (int off = 16; off > 0; off /= 2)
            mt = fmaxf(mt, __shfl_xor_sync(KN_FA_FULL, mt, off));
        if (lane == 0)
            red[warp] = mt;
        __syncthreads();
        mt = fmaxf(fmaxf(red[0], red[1]), fmaxf(red[2], red[3]));
        __syncthreads();
        const float m_new = fmaxf(m, mt); /* key k0 is valid: finite */
        const float alpha = exp2f(m - m_new);
        e = exp2f(sc - m_new);
        ps[tid] = e;
        lt = e;
        for (int off = 16; off > 0; off /= 2)
            lt += __shfl_xor_sync(KN_FA_FULL, lt, off);
        if (lane == 0)
            red[warp] = lt;
        __syncthreads(); /* publishes ps too */
        lt = red[0] + red[1] + red[2] + red[3];
        l = l * alpha + lt;
        m = m_new;
        if (tid < D) {
            float a = acc * alpha;
            for (int j = 0; j < cnt; j++)
                a += ps[j] * bf16_to_f32(vb[(size_t)(k0 + j) * kvrow + tid]);
            acc = a;
        }
        __syncthreads(); /* ps and red are rewritten by the next tile */
    }
    if (tid < D)
        out[((size_t)b * S + s) * qrow + (size_t)h * D + tid] = f32_to_bf16(acc / l);
}

/* ==== v1: tensor cores ============================================================= */

/* mma.sync.m16n8k16 with bf16 A and B and float32 C/D.  Fragments (PTX ISA,
 * "Matrix Fragments for mma.m16n8k16"), with g = lane / 4 and t = lane % 4;
 * a bf16x2 register holds its lower-column (or lower-row for B) element in
 * the low 16 bits:
 *   A (16 x 16, row-major), 4 registers:
 *     a0 = A[g    ][2t, 2t+1]     a1 = A[g + 8][2t, 2t+1]
 *     a2 = A[g    ][2t+8, 2t+9]   a3 = A[g + 8][2t+8, 2t+9]
 *   B (16 x 8, k x n, "col"), 2 registers:
 *     b0 = B[2t, 2t+1][g]         b1 = B[2t+8, 2t+9][g]
 *   C, D (16 x 8) float, 4 registers:
 *     c0 = C[g][2t]  c1 = C[g][2t+1]  c2 = C[g+8][2t]  c3 = C[g+8][2t+1]
 * So the C fragments of two adjacent n-tiles (columns 16kk .. 16kk+15) are,
 * packed pairwise to bf16, exactly the A fragment of k-step kk:
 *   a0 = (c0, c1) of n-tile 2kk, a1 = (c2, c3) of 2kk, a2 = (c0, c1) of
 *   2kk+1, a3 = (c2, c3) of 2kk+1. */
__device__ __forceinline__ void mma_bf16_16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* ldmatrix.x4: four 8x8 b16 matrices from shared memory; lane i gives the
 * address of row i % 8 of matrix i / 8 (16 contiguous bytes), and receives
 * in r[j] row lane/4, columns 2(lane%4), 2(lane%4)+1 of matrix j.  With
 * .trans it receives instead rows 2(lane%4), 2(lane%4)+1 of column lane/4
 * (the matrix transposed), low half the lower row. */
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *smem)
{
    unsigned a = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *smem)
{
    unsigned a = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* 16 bytes global -> shared, asynchronously (sm_80+); VALID false writes
 * zeros and reads nothing. */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid)
{
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all_but_one() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

/* Copy ROWS rows of D bf16 (row r at SRC + r * STRIDE elements, rows at or
 * past NVALID zero-filled) into shared DST with row pitch LD elements, 16
 * bytes per cp.async, spread over the block. */
template <int D, int LD>
__device__ __forceinline__ void fa_stage_rows(uint16_t *dst, const uint16_t *src, size_t stride, int rows, int nvalid)
{
    enum { CH = D / 8 }; /* 16-byte chunks per row */

    for (int i = threadIdx.x; i < rows * CH; i += KN_FA_THREADS) {
        const int r = i / CH, c = i % CH;
        const bool valid = r < nvalid;

        cp_async16(dst + r * LD + c * 8, src + (valid ? (size_t)r * stride + c * 8 : 0), valid);
    }
}

/* Block (query tile, head h, batch b); warp w owns query rows q0 + 16w ..
 * q0 + 16w + 15; lane (g, t) holds rows g and g + 8 of them (r0, r1).
 *
 * Shared memory: Q (BM x LD), K and V in two stages (BN x LD each); LD =
 * D + 8 elements pads each row by 16 bytes, so the 8 row addresses of an
 * ldmatrix fall in 8 different groups of 4 banks (row pitch 2D + 16 bytes
 * = 4 banks mod 32 for D = 64, 128). */
template <int D>
__global__ void __launch_bounds__(KN_FA_THREADS)
flash_v1_kernel(uint16_t *out, const uint16_t *q, const uint16_t *k, const uint16_t *v, int S, int n_heads, int n_kv,
                int causal, float scale_log2)
{
    enum { BM = KN_FA_BM, BN = KN_FA_BN, LD = D + 8, KSTEPS = D / 16, DTILES = D / 8, NTILES = BN / 8 };
    extern __shared__ float4 kn_fa_smem4[];
    uint16_t *qs = (uint16_t *)kn_fa_smem4;
    uint16_t *ks = qs + BM * LD; /* stage st at ks + st * BN * LD */
    uint16_t *vs = ks + 2 * BN * LD;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int qt = causal ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int q0 = qt * BM, h = blockIdx.y, b = blockIdx.z, hk = h / (n_heads / n_kv);
    const size_t qrow = (size_t)n_heads * D, kvrow = (size_t)n_kv * D; /* elements between positions */
    const uint16_t *qb = q + ((size_t)b * S + q0) * qrow + (size_t)h * D;
    const uint16_t *kb = k + (size_t)b * S * kvrow + (size_t)hk * D;
    const uint16_t *vb = v + (size_t)b * S * kvrow + (size_t)hk * D;
    const int kv_end = causal ? min(S, q0 + BM) : S; /* keys any row of the tile sees */
    const int ntiles = (kv_end + BN - 1) / BN;
    const int r0 = q0 + warp * 16 + g, r1 = r0 + 8;

    fa_stage_rows<D, LD>(qs, qb, qrow, BM, S - q0);
    fa_stage_rows<D, LD>(ks, kb, kvrow, BN, S);
    fa_stage_rows<D, LD>(vs, vb, kvrow, BN, S);
    cp_async_commit();

    uint32_t qf[KSTEPS][4]; /* A fragments of this warp's 16 query rows */
    float o[DTILES][4];     /* O accumulators: d-tile j holds dims 8j .. 8j+7 */
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f; /* rows r0, r1 (l: this thread's columns) */

#pragma unroll
    for (int j = 0; j < DTILES; j++)
        o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;

    for (int it = 0; it < ntiles; it++) {
        const int st = it & 1, n0 = it * BN;

        /* Prefetch the next tile into the other stage (its readers passed
         * the barrier at the end of the previous iteration). */
        if (it + 1 < ntiles) {
            const int n1 = n0 + BN;
            fa_stage_rows<D, LD>(ks + (st ^ 1) * BN * LD, kb + (size_t)n1 * kvrow, kvrow, BN, S - n1);
            fa_stage_rows<D, LD>(vs + (st ^ 1) * BN * LD, vb + (size_t)n1 * kvrow, kvrow, BN, S - n1);
        }
        cp_async_commit();
        cp_async_wait_all_but_one();
        __syncthreads();

        if (it == 0) {
            /* A fragments of Q: matrices (rows 0-7, cols 0-7), (rows 8-15,
             * cols 0-7), (rows 0-7, cols 8-15), (rows 8-15, cols 8-15) of
             * the k-step = a0, a1, a2, a3; lane i addresses row i % 16,
             * column half i / 16. */
#pragma unroll
            for (int kk = 0; kk < KSTEPS; kk++)
                ldmatrix_x4(qf[kk], qs + (warp * 16 + (lane & 15)) * LD + kk * 16 + (lane >> 4) * 8);
        }

        const uint16_t *kt = ks + st * BN * LD, *vt = vs + st * BN * LD;
        float sc[NTILES][4]; /* S: n-tile j holds keys n0 + 8j .. n0 + 8j + 7 */

#pragma unroll
        for (int j = 0; j < NTILES; j++)
            sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.f;

        /* S = Q K^T.  B[k = dim][n = key] = K[key][dim]: K's rows in shared
         * memory are B's columns, so plain ldmatrix gives B fragments.  For
         * keys 16np .. 16np+15 and dims 16kk .. 16kk+15 the four matrices
         * are (keys 0-7, dims 0-7) = b0 and (keys 0-7, dims 8-15) = b1 of
         * n-tile 2np, then the same for keys 8-15 = n-tile 2np+1; lane i
         * addresses key (i % 8) + 8 (i / 16), dim half (i / 8) % 2. */
#pragma unroll
        for (int kk = 0; kk < KSTEPS; kk++) {
#pragma unroll
            for (int np = 0; np < NTILES / 2; np++) {
                uint32_t bf[4];
                ldmatrix_x4(bf, kt + (np * 16 + (lane & 7) + ((lane >> 4) << 3)) * LD + kk * 16 +
                                    ((lane >> 3) & 1) * 8);
                mma_bf16_16816(sc[2 * np], qf[kk], bf[0], bf[1]);
                mma_bf16_16816(sc[2 * np + 1], qf[kk], bf[2], bf[3]);
            }
        }

        /* Scale to base-2 units; mask keys past S and, on the diagonal
         * tile, keys after the query (sc[j][e]: row e < 2 ? r0 : r1, key
         * n0 + 8j + 2t + e % 2). */
        const bool mask = n0 + BN > S || (causal && n0 + BN - 1 > q0);
#pragma unroll
        for (int j = 0; j < NTILES; j++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float x = sc[j][e] * scale_log2;
                if (mask) {
                    const int key = n0 + 8 * j + 2 * t4 + (e & 1), row = e < 2 ? r0 : r1;
                    if (key >= S || (causal && key > row))
                        x = -INFINITY;
                }
                sc[j][e] = x;
            }
        }

        /* Online softmax for rows r0, r1: the max over this thread's 16
         * columns, then over the 4 lanes of the quad (same g). */
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int j = 0; j < NTILES; j++) {
            mx0 = fmaxf(mx0, fmaxf(sc[j][0], sc[j][1]));
            mx1 = fmaxf(mx1, fmaxf(sc[j][2], sc[j][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(KN_FA_FULL, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(KN_FA_FULL, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(KN_FA_FULL, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(KN_FA_FULL, mx1, 2));
        const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        /* Every row sees key 0 in the first tile, so mn is finite; the
         * guard keeps (-inf) - (-inf) out should a row ever see none. */
        const float mu0 = mn0 == -INFINITY ? 0.f : mn0, mu1 = mn1 == -INFINITY ? 0.f : mn1;
        const float alpha0 = exp2f(m0 - mu0), alpha1 = exp2f(m1 - mu1);
        float sum0 = 0.f, sum1 = 0.f;

#pragma unroll
        for (int j = 0; j < NTILES; j++) {
            sc[j][0] = exp2f(sc[j][0] - mu0);
            sc[j][1] = exp2f(sc[j][1] - mu0);
            sc[j][2] = exp2f(sc[j][2] - mu1);
            sc[j][3] = exp2f(sc[j][3] - mu1);
            sum0 += sc[j][0] + sc[j][1];
            sum1 += sc[j][2] + sc[j][3];
        }
        l0 = l0 * alpha0 + sum0;
        l1 = l1 * alpha1 + sum1;
        m0 = mn0;
        m1 = mn1;
#pragma unroll
        for (int j = 0; j < DTILES; j++) {
            o[j][0] *= alpha0;
            o[j][1] *= alpha0;
            o[j][2] *= alpha1;
            o[j][3] *= alpha1;
        }

        /* O += P V.  P's A fragments come from sc (see mma_bf16_16816).
         * B[k = key][n = dim] = V[key][dim]: V's rows are B's rows, so
         * ldmatrix.trans gives B fragments.  For keys 16kk .. 16kk+15 and
         * dims 16dp .. 16dp+15 the four matrices are (keys 0-7, dims 0-7)
         * = b0 and (keys 8-15, dims 0-7) = b1 of d-tile 2dp, then the same
         * for dims 8-15 = d-tile 2dp+1; lane i addresses key i % 16, dim
         * half i / 16. */
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            uint32_t pa[4];
            pa[0] = pack_bf16x2(sc[2 * kk][0], sc[2 * kk][1]);
            pa[1] = pack_bf16x2(sc[2 * kk][2], sc[2 * kk][3]);
            pa[2] = pack_bf16x2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
            pa[3] = pack_bf16x2(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
#pragma unroll
            for (int dp = 0; dp < DTILES / 2; dp++) {
                uint32_t bf[4];
                ldmatrix_x4_trans(bf, vt + (kk * 16 + (lane & 15)) * LD + dp * 16 + (lane >> 4) * 8);
                mma_bf16_16816(o[2 * dp], pa, bf[0], bf[1]);
                mma_bf16_16816(o[2 * dp + 1], pa, bf[2], bf[3]);
            }
        }
        __syncthreads(); /* this stage is refilled by the next iteration's prefetch */
    }

    /* Row sums over the quad, normalise, round to bf16 and store:
     * o[j] holds (r0 or r1, dims 8j + 2t, 8j + 2t + 1). */
    l0 += __shfl_xor_sync(KN_FA_FULL, l0, 1);
    l0 += __shfl_xor_sync(KN_FA_FULL, l0, 2);
    l1 += __shfl_xor_sync(KN_FA_FULL, l1, 1);
    l1 += __shfl_xor_sync(KN_FA_FULL, l1, 2);
    const float inv0 = 1.f / l0, inv1 = 1.f / l1;
    uint16_t *ob = out + (size_t)b * S * qrow + (size_t)h * D + 2 * t4;

#pragma unroll
    for (int j = 0; j < DTILES; j++) {
        if (r0 < S)
            *reinterpret_cast<uint32_t *>(ob + (size_t)r0 * qrow + 8 * j) = pack_bf16x2(o[j][0] * inv0, o[j][1] * inv0);
        if (r1 < S)
            *reinterpret_cast<uint32_t *>(ob + (size_t)r1 * qrow + 8 * j) = pack_bf16x2(o[j][2] * inv1, o[j][3] * inv1);
    }
}

/* Shared memory of v1: Q and two stages of K and V, rows padded to D + 8. */
static size_t flash_v1_smem_bytes(int D)
{
    return (size_t)(KN_FA_BM + 4 * KN_FA_BN) * (D + 8) * sizeof(uint16_t);
}

template <int D>
static int flash_v1_launch(uint16_t *out, const uint16_t *q, const uint16_t *k, const uint16_t *v, int B, int S,
                           const struct kn_attn_shape *s, int causal, float scale_log2)
{
    const size_t smem = flash_v1_smem_bytes(D);

    KN_CUDA_TRY(cudaFuncSetAttribute(flash_v1_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    dim3 grid(KN_CDIV(S, KN_FA_BM), s->n_heads, B);
    flash_v1_kernel<D><<<grid, KN_FA_THREADS, smem>>>(out, q, k, v, S, s->n_heads, s->n_kv_heads, causal != 0,
                                                      scale_log2);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* v1 needs 16-byte aligned tensors (cp.async of 16 bytes); others run v0. */
extern "C" int kn_cuda_flash_attention_bf16(int version, uint16_t *out, const uint16_t *q, const uint16_t *k,
                                            const uint16_t *v, int B, int S, const struct kn_attn_shape *s, int causal)
{
    int ver = kn_cuda_resolve_version(KN_CUDA_OP_FLASH_BF16, version);

    if (ver < 0)
        return -1;
    if (s == NULL || out == NULL || q == NULL || k == NULL || v == NULL)
        return kn_cuda_set_error("flash attention: NULL argument");
    if (s->n_heads < 1 || s->n_kv_heads < 1 || s->n_heads % s->n_kv_heads != 0)
        return kn_cuda_set_error("flash attention: %d heads do not split into %d kv heads", s->n_heads, s->n_kv_heads);
    if (s->head_dim != 64 && s->head_dim != 128)
        return kn_cuda_set_error("flash attention: head_dim %d (64 or 128 supported)", s->head_dim);
    if (B < 0 || S < 0 || B > 65535 || s->n_heads > 65535)
        return kn_cuda_set_error("flash attention: B %d, S %d, %d heads out of range", B, S, s->n_heads);
    if (B == 0 || S == 0)
        return 0;
    const float scale_log2 = KN_FA_LOG2E / sqrtf((float)s->head_dim);
    const bool aligned = ((uintptr_t)out | (uintptr_t)q | (uintptr_t)k | (uintptr_t)v) % 16 == 0;

    if (ver == 1 && aligned)
        return s->head_dim == 64 ? flash_v1_launch<64>(out, q, k, v, B, S, s, causal, scale_log2)
                                 : flash_v1_launch<128>(out, q, k, v, B, S, s, causal, scale_log2);
    dim3 grid(S, s->n_heads, B);
    flash_v0_kernel<<<grid, KN_FA_V0_THREADS>>>(out, q, k, v, S, s->n_heads, s->n_kv_heads, s->head_dim, causal != 0,
                                                scale_log2);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

static const char *const flash_names[] = {
    "v0 float32 arithmetic, block per query",
    "v1 mma.sync m16n8k16, cp.async double buffer (FlashAttention-2)",
};

/* mma.sync with bf16 and cp.async need sm_80. */
static int flash_default(int sm_major, int sm_minor)
{
    (void)sm_minor;
    return sm_major >= 8 ? 1 : 0;
}

extern "C" const struct kn_cuda_op_table kn_cuda_table_flash_bf16 = {2, flash_names, flash_default};
