/* gemm_bf16.cu -- bf16 GEMM on the tensor cores: out (m, n) = x (m, k) W^T
 * with x (m, k) and W (n, k) bfloat16 row-major (as uint16_t: the top half
 * of a float32), float32 accumulation and float32 out (m, n).
 *
 * Any m, n >= 1; k a multiple of 8 and x, W 16-byte aligned, so every row
 * is whole 16-byte chunks of 8 bf16 (the unit both versions load).
 * Needs sm_80 or later (bf16 tensor cores, cp.async).
 *
 *   v0 wmma             nvcuda::wmma 16x16x16 fragments: a 64x64 block
 *                       tile, 4 warps of 32x32, tiles staged through shared
 *                       memory with guarded 16-byte loads.  Simple.
 *   v1 mma.sync         mma.sync.m16n8k16 with ldmatrix: a 128x128x32 block
 *                       tile, 4 warps of 64x64, a 4-stage cp.async pipeline,
 *                       padded shared memory (no bank conflicts), blocks
 *                       visited in groups of 8 tile rows for L2 reuse.
 * The default is v1.  There is no Hopper wgmma/TMA version yet: written
 * without a GPU to test on, its shared-memory descriptors and swizzle modes
 * could not be checked, and on an H100/H200 mma.sync reaches only part of
 * the tensor cores' peak (cuBLAS uses wgmma there). */
#include <cuda_bf16.h>
#include <mma.h>

#include "kernels/cuda/cuda_int.h"

/* The bf16 kernels exist only on sm_80+; for older targets their bodies
 * trap (the host refuses such devices before launching). */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define KN_BF16_UNSUPPORTED 1
#endif

/* ---- v0: WMMA ----------------------------------------------------------------------- */

/* Block tile 64 (m) x 64 (n), k in steps of 32; 128 threads = 4 warps in
 * 2 x 2, each warp a 32 x 32 tile = 2 x 2 wmma 16x16 accumulators.
 * Shared memory: xs[r][kk] (x rows) and ws[c][kk] (W rows), rows of 32 bf16
 * padded to 40 (80 bytes: a multiple of 16 bytes as wmma's ldm needs, and
 * fragments start 32-byte aligned).  W's rows are the columns of B = W^T,
 * so B is loaded as a col_major fragment straight from ws.
 * Loads: 64 rows x 4 chunks of 16 bytes per operand, 2 chunks per thread,
 * a chunk past m, n or k reads as zeros.  The epilogue stores each
 * accumulator to a per-warp 16x16 float buffer and the warp copies it out
 * with bounds checks. */
#define W0_BM 64
#define W0_BN 64
#define W0_BK 32
#define W0_LD (W0_BK + 8)
#define W0_THREADS 128

__global__ void __launch_bounds__(W0_THREADS)
    bgemm_v0_wmma(float *out, const uint16_t *x, const uint16_t *w, int m, int n, int k)
{
#ifdef KN_BF16_UNSUPPORTED
    __trap();
#else
    using namespace nvcuda;
    __shared__ __align__(32) __nv_bfloat16 xs[W0_BM][W0_LD];
    __shared__ __align__(32) __nv_bfloat16 ws[W0_BN][W0_LD];
    __shared__ __align__(32) float cs[W0_THREADS / 32][16 * 16];
    int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    int wm0 = (warp / 2) * 32, wn0 = (warp % 2) * 32;
    int bm = blockIdx.y * W0_BM, bn = blockIdx.x * W0_BN;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];

    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            wmma::fill_fragment(acc[i][j], 0.0f);

    for (int k0 = 0; k0 < k; k0 += W0_BK) {
        for (int i = 0; i < 2; i++) {
            int e = tid + i * W0_THREADS, r = e / 4, c = (e % 4) * 8;
            uint4 zero = make_uint4(0, 0, 0, 0);
            bool kin = k0 + c < k; /* k % 8 == 0: the chunk is wholly in or out */
            *(uint4 *)&xs[r][c] = bm + r < m && kin ? *(const uint4 *)(x + (size_t)(bm + r) * k + k0 + c) : zero;
            *(uint4 *)&ws[r][c] = bn + r < n && kin ? *(const uint4 *)(w + (size_t)(bn + r) * k + k0 + c) : zero;
        }
        __syncthreads();
        for (int kk = 0; kk < W0_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b[2];
            for (int i = 0; i < 2; i++)
                wmma::load_matrix_sync(a[i], &xs[wm0 + i * 16][kk], W0_LD);
            for (int j = 0; j < 2; j++)
                wmma::load_matrix_sync(b[j], &ws[wn0 + j * 16][kk], W0_LD);
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++)
                    wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }

    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            wmma::store_matrix_sync(cs[warp], acc[i][j], 16, wmma::mem_row_major);
            __syncwarp();
            for (int e = lane; e < 16 * 16; e += 32) {
                int row = bm + wm0 + i * 16 + e / 16, col = bn + wn0 + j * 16 + e % 16;
                if (row < m && col < n)
                    out[(size_t)row * n + col] = cs[warp][e];
            }
            __syncwarp();
        }
#endif
}

/* ---- v1: mma.sync + ldmatrix + cp.async pipeline ------------------------------------------ */

/* Block tile 128 (m) x 128 (n), k in steps of 32; 128 threads = 4 warps in
 * 2 (m) x 2 (n), each warp a 64 x 64 tile = 4 (m16) x 8 (n8) mma tiles of
 * m16n8k16, 128 float accumulators per thread.
 *
 * Shared memory: STAGES stages, each the x tile xs[128][40] then the W tile
 * ws[128][40] in bf16: rows of BK = 32 padded to 40 elements (80 bytes).
 * ldmatrix reads 8 rows x 16 bytes per phase; at an 80-byte row stride
 * those 8 rows fall in 8 different 16-byte bank groups (5r mod 8 is a
 * permutation), so reads are conflict-free, and cp.async's 16-byte writes
 * stay aligned.  81,920 bytes of dynamic shared memory.
 *
 * Pipeline: cp.async (16 bytes, L2 only) fills stage kt % STAGES with
 * k-tile kt; STAGES-1 tiles are in flight while one is computed.  A chunk
 * past m, n or k is zero-filled (src-size 0).
 *
 * Fragments (PTX ISA, mma.m16n8k16, g = lane/4, t = lane%4):
 *   A 16x16 (row):  a0 (g, 2t..2t+1)  a1 (g+8, 2t..)  a2 (g, 2t+8..)  a3 (g+8, 2t+8..)
 *   B 16x8 (col):   b0 (k 2t..2t+1, n g)  b1 (k 2t+8.., n g)
 *   C 16x8:         c0,c1 (g, 2t..2t+1)   c2,c3 (g+8, 2t..2t+1)
 * ldmatrix.x4 gives lane l of matrix q the pair at (l/4, 2(l%4)) of that
 * 8x8 matrix, whose row addresses come from lanes 8q..8q+7.  For A the
 * four matrices are (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k
 * 8-15), (rows 8-15, k 8-15) = a0..a3.  For B, whose 8x8 matrices are read
 * from W's rows (n) with k contiguous, one ldmatrix.x4 gives b0, b1 of two
 * n8 tiles: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15). */
#define M1_BM 128
#define M1_BN 128
#define M1_BK 32
#define M1_STAGES 4
#define M1_THREADS 128
#define M1_LD (M1_BK + 8)
#define M1_STAGE_ELEMS ((M1_BM + M1_BN) * M1_LD)
#define M1_SMEM_BYTES (M1_STAGES * M1_STAGE_ELEMS * 2)
#define M1_GROUP_M 8

__device__ __forceinline__ uint32_t smem_addr(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* Copy 16 bytes global -> shared, asynchronously; SRC_BYTES 0 writes zeros
 * and reads nothing. */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(src_bytes)
                 : "memory");
}

__device__ __forceinline__ void cp_async_commit(void)
{
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

/* Wait until at most N of this thread's groups are pending. */
template <int N>
__device__ __forceinline__ void cp_async_wait(void)
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p))
                 : "memory");
}

/* c += a b for one m16n8k16 tile, bf16 in, float32 accumulate. */
__device__ __forceinline__ void mma_bf16_16816(float c[4], const uint32_t a[4], const uint32_t b[2])
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* Issue the cp.async copies of k-tile KT into the stage at S (xs then ws).
 * Each operand tile is 128 rows x 4 chunks; thread t copies chunk t%4 of
 * rows t/4 + 32i, i = 0..3. */
__device__ __forceinline__ void bgemm_v1_load(uint16_t *s, const uint16_t *x, const uint16_t *w, int bm, int bn,
                                              int m, int n, int k, int kt, int tid)
{
    int c = (tid % 4) * 8, gk = kt * M1_BK + c;
    bool kin = gk < k; /* k % 8 == 0: the chunk is wholly in or out */

#pragma unroll
    for (int i = 0; i < 4; i++) {
        int r = tid / 4 + i * 32;
        bool ok = kin && bm + r < m;
        cp_async16(s + r * M1_LD + c, ok ? x + (size_t)(bm + r) * k + gk : x, ok ? 16 : 0);
    }
    s += M1_BM * M1_LD;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int r = tid / 4 + i * 32;
        bool ok = kin && bn + r < n;
        cp_async16(s + r * M1_LD + c, ok ? w + (size_t)(bn + r) * k + gk : w, ok ? 16 : 0);
    }
}

__global__ void __launch_bounds__(M1_THREADS)
    bgemm_v1_mma(float *out, const uint16_t *x, const uint16_t *w, int m, int n, int k, int vec_store)
{
#ifdef KN_BF16_UNSUPPORTED
    __trap();
#else
    extern __shared__ __align__(128) uint16_t smem[];
    int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    int wm0 = (warp / 2) * 64, wn0 = (warp % 2) * 64;

    /* Block -> tile: column-major within groups of M1_GROUP_M tile rows, so
     * consecutive blocks share W tiles and x tiles in L2. */
    int tiles_m = (m + M1_BM - 1) / M1_BM, tiles_n = (n + M1_BN - 1) / M1_BN;
    int per_group = M1_GROUP_M * tiles_n, pid = blockIdx.x;
    int first_m = (pid / per_group) * M1_GROUP_M;
    int group_m = min(tiles_m - first_m, M1_GROUP_M);
    int tm = first_m + (pid % per_group) % group_m, tn = (pid % per_group) / group_m;
    int bm = tm * M1_BM, bn = tn * M1_BN;
    int ktiles = (k + M1_BK - 1) / M1_BK;
    float acc[4][8][4];

#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int q = 0; q < 4; q++)
                acc[i][j][q] = 0.0f;

    /* Prologue: tiles 0 .. STAGES-2 in flight, one commit group each (empty
     * groups past the end keep the counting uniform). */
#pragma unroll
    for (int s = 0; s < M1_STAGES - 1; s++) {
        if (s < ktiles)
            bgemm_v1_load(smem + s * M1_STAGE_ELEMS, x, w, bm, bn, m, n, k, s, tid);
        cp_async_commit();
    }

    for (int kt = 0; kt < ktiles; kt++) {
        /* kt + STAGES-1 groups committed; at most STAGES-2 pending means
         * tile kt has landed (for this thread; the barrier makes it all
         * threads', and also means every warp is done with tile kt-1). */
        cp_async_wait<M1_STAGES - 2>();
        __syncthreads();
        int pf = kt + M1_STAGES - 1; /* into the stage tile kt-1 used */
        if (pf < ktiles)
            bgemm_v1_load(smem + (pf % M1_STAGES) * M1_STAGE_ELEMS, x, w, bm, bn, m, n, k, pf, tid);
        cp_async_commit();

        const uint16_t *xs = smem + (kt % M1_STAGES) * M1_STAGE_ELEMS;
        const uint16_t *ws = xs + M1_BM * M1_LD;
#pragma unroll
        for (int kk = 0; kk < M1_BK; kk += 16) {
            uint32_t af[4][4], bfr[8][2];
#pragma unroll
            for (int i = 0; i < 4; i++)
                ldmatrix_x4(af[i], xs + (wm0 + i * 16 + (lane & 15)) * M1_LD + kk + (lane >> 4) * 8);
#pragma unroll
            for (int j = 0; j < 4; j++) {
                uint32_t t[4];
                ldmatrix_x4(t, ws + (wn0 + j * 16 + (lane & 7) + (lane >> 4) * 8) * M1_LD + kk +
                                   ((lane >> 3) & 1) * 8);
                bfr[2 * j][0] = t[0];
                bfr[2 * j][1] = t[1];
                bfr[2 * j + 1][0] = t[2];
                bfr[2 * j + 1][1] = t[3];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 8; j++)
                    mma_bf16_16816(acc[i][j], af[i], bfr[j]);
        }
    }
    cp_async_wait<0>(); /* only empty groups remain; leave nothing in flight */

    /* Epilogue: c0,c1 at (g, 2t..2t+1), c2,c3 at (g+8, 2t..2t+1) of each tile. */
    int g = lane >> 2, t2 = (lane & 3) * 2;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int row = bm + wm0 + i * 16 + g + h * 8;
            if (row >= m)
                continue;
            float *o = out + (size_t)row * n;
#pragma unroll
            for (int j = 0; j < 8; j++) {
                int col = bn + wn0 + j * 8 + t2;
                float v0 = acc[i][j][2 * h], v1 = acc[i][j][2 * h + 1];
                if (vec_store) { /* n even, out 8-byte aligned: col < n means col+1 < n */
                    if (col < n)
                        *(float2 *)(o + col) = make_float2(v0, v1);
                } else {
                    if (col < n)
                        o[col] = v0;
                    if (col + 1 < n)
                        o[col + 1] = v1;
                }
            }
        }
#endif
}

/* ---- dispatch ------------------------------------------------------------------------- */

static const char *const bgemm_names[] = {
    "v0 wmma 64x64",
    "v1 mma.sync+ldmatrix 128x128x32, 4-stage cp.async",
};

static int bgemm_default(int sm_major, int sm_minor)
{
    (void)sm_major;
    (void)sm_minor;
    return 1;
}

extern "C" const struct kn_cuda_op_table kn_cuda_table_bgemm = {
    .count = (int)(sizeof(bgemm_names) / sizeof(bgemm_names[0])),
    .names = bgemm_names,
    .default_version = bgemm_default,
};

extern "C" int kn_cuda_bgemm(int version, float *out, const uint16_t *x, const uint16_t *w, int m, int n, int k)
{
    int v = kn_cuda_resolve_version(KN_CUDA_OP_BGEMM, version);
    int major, minor;

    if (v < 0)
        return -1;
    if (m < 1 || n < 1 || k < 1)
        return kn_cuda_set_error("kn_cuda_bgemm: bad shape m=%d n=%d k=%d", m, n, k);
    if (k % 8 != 0)
        return kn_cuda_set_error("kn_cuda_bgemm: k=%d is not a multiple of 8", k);
    if (((uintptr_t)x & 15) != 0 || ((uintptr_t)w & 15) != 0)
        return kn_cuda_set_error("kn_cuda_bgemm: x and W must be 16-byte aligned");
    kn_cuda_capability(&major, &minor);
    if (major < 8)
        return kn_cuda_set_error("kn_cuda_bgemm: needs sm_80 or later (the device is sm_%d%d)", major, minor);

    if (v == 0) {
        if (KN_CDIV(m, W0_BM) > 65535)
            return kn_cuda_set_error("kn_cuda_bgemm v0: m=%d is too large for one grid", m);
        bgemm_v0_wmma<<<dim3(KN_CDIV(n, W0_BN), KN_CDIV(m, W0_BM)), W0_THREADS>>>(out, x, w, m, n, k);
    } else {
        long long blocks = (long long)KN_CDIV(m, M1_BM) * KN_CDIV(n, M1_BN);
        int vec_store = n % 2 == 0 && ((uintptr_t)out & 7) == 0;
        if (blocks > 0x7fffffffLL)
            return kn_cuda_set_error("kn_cuda_bgemm v1: %lld blocks is too many for one grid", blocks);
        KN_CUDA_TRY(cudaFuncSetAttribute(bgemm_v1_mma, cudaFuncAttributeMaxDynamicSharedMemorySize, M1_SMEM_BYTES));
        bgemm_v1_mma<<<(unsigned)blocks, M1_THREADS, M1_SMEM_BYTES>>>(out, x, w, m, n, k, vec_store);
    }
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}
