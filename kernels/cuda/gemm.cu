/* gemm.cu -- float32 GEMM on the CUDA cores: out (m, n) = x (m, k) W^T.
 *
 * x is (m, k) and W is (n, k), both row-major, so both operands are
 * contiguous along k ("TN" in BLAS terms); out is (m, n) row-major.  Any
 * m, n, k >= 1: every version guards the edges of the matrices.
 *
 * Four versions, each teaching one step (as llm.c's dev/cuda kernels):
 *   v0 naive            one thread per output, dot product straight from
 *                       global memory.
 *   v1 smem tiles       32x32 output tile per block, x and W tiles staged in
 *                       shared memory so each element is read from global
 *                       memory once per tile instead of once per output.
 *   v2 register tiles   128x128 block tile, each thread an 8x8 micro-tile
 *                       held in registers: 16 shared loads per 64 FMAs.
 *   v3 warp tiles       v2's block tile with a warp-level layout that makes
 *                       every shared-memory read a conflict-free float4,
 *                       float4 global loads, and double-buffered shared
 *                       memory fed from registers (one barrier per k-tile).
 * The default is v3. */
#include "kernels/cuda/cuda_int.h"

/* The largest grid.y / grid.z a launch may use. */
#define KN_GRID_YZ_MAX 65535

/* ---- v0: naive ------------------------------------------------------------------ */

/* Thread (tx, ty) of block (bx, by) computes out[row][col], row = by*8+ty,
 * col = bx*32+tx: a warp covers 32 consecutive columns, so its stores are
 * coalesced (its reads of W rows are not: that is what v1 fixes). */
__global__ void sgemm_v0_naive(float *out, const float *x, const float *w, int m, int n, int k)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    int row = blockIdx.y * blockDim.y + threadIdx.y;

    if (row >= m || col >= n)
        return;
    const float *xr = x + (size_t)row * k;
    const float *wr = w + (size_t)col * k;
    float s = 0.0f;
    for (int i = 0; i < k; i++)
        s += xr[i] * wr[i];
    out[(size_t)row * n + col] = s;
}

/* ---- v1: shared-memory tiles ------------------------------------------------------ */

/* Block (32, 32) threads, output tile 32x32, k in steps of 32.
 * Each step, thread (tx, ty) loads x[bm+ty][k0+tx] into xs[ty][tx] and
 * W[bn+ty][k0+tx] into ws[ty][tx] (coalesced along k), then accumulates
 * out[bm+ty][bn+tx] += sum_i xs[ty][i] * ws[tx][i].  xs[ty][i] is one
 * address per warp (a broadcast); ws[tx][i] walks a column, so rows are
 * padded to 33 floats to put the 32 lanes on 32 different banks. */
#define V1_TILE 32

__global__ void __launch_bounds__(V1_TILE * V1_TILE)
    sgemm_v1_smem(float *out, const float *x, const float *w, int m, int n, int k)
{
    __shared__ float xs[V1_TILE][V1_TILE + 1];
    __shared__ float ws[V1_TILE][V1_TILE + 1];
    int tx = threadIdx.x, ty = threadIdx.y;
    int row = blockIdx.y * V1_TILE + ty;  /* the output row, and the x row this thread loads */
    int col = blockIdx.x * V1_TILE + tx;  /* the output column */
    int wrow = blockIdx.x * V1_TILE + ty; /* the W row this thread loads */
    float s = 0.0f;

    for (int k0 = 0; k0 < k; k0 += V1_TILE) {
        int kk = k0 + tx;
        xs[ty][tx] = row < m && kk < k ? x[(size_t)row * k + kk] : 0.0f;
        ws[ty][tx] = wrow < n && kk < k ? w[(size_t)wrow * k + kk] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int i = 0; i < V1_TILE; i++)
            s += xs[ty][i] * ws[tx][i];
        __syncthreads();
    }
    if (row < m && col < n)
        out[(size_t)row * n + col] = s;
}

/* ---- v2: register tiles ------------------------------------------------------------ */

/* Block tile 128 (m) x 128 (n), k in steps of 8; 256 threads, thread t
 * computes the 8x8 micro-tile at rows (t/16)*8.., columns (t%16)*8.. of the
 * block tile, in 64 registers.
 * Shared memory holds the tiles transposed, k-major: as[kk][r] = x[bm+r][k0+kk],
 * bs[kk][c] = W[bn+c][k0+kk], so for each kk a thread reads its 8 x values
 * and its 8 W values as contiguous runs, then does 64 FMAs.  Rows are
 * padded to 132 floats: the transposing stores (4 rows x 8 kk per warp) then
 * land on 32 different banks, and float4 reads stay 16-byte aligned. */
#define V2_BM 128
#define V2_BN 128
#define V2_BK 8
#define V2_TM 8
#define V2_TN 8
#define V2_THREADS 256
#define V2_PAD 4

__global__ void __launch_bounds__(V2_THREADS)
    sgemm_v2_regtile(float *out, const float *x, const float *w, int m, int n, int k)
{
    __shared__ float as[V2_BK][V2_BM + V2_PAD];
    __shared__ float bs[V2_BK][V2_BN + V2_PAD];
    int tid = threadIdx.x;
    int tr = tid / (V2_BN / V2_TN), tc = tid % (V2_BN / V2_TN); /* 16 x 16 threads */
    int bm = blockIdx.y * V2_BM, bn = blockIdx.x * V2_BN;
    float acc[V2_TM][V2_TN];

#pragma unroll
    for (int i = 0; i < V2_TM; i++)
#pragma unroll
        for (int j = 0; j < V2_TN; j++)
            acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < k; k0 += V2_BK) {
        /* 128 x 8 elements of each operand, 4 per thread: element e is row
         * e/8, k offset e%8 (8 consecutive threads read 8 consecutive floats
         * of a row). */
#pragma unroll
        for (int i = 0; i < V2_BM * V2_BK / V2_THREADS; i++) {
            int e = tid + i * V2_THREADS;
            int r = e / V2_BK, kk = e % V2_BK, gk = k0 + kk;
            as[kk][r] = bm + r < m && gk < k ? x[(size_t)(bm + r) * k + gk] : 0.0f;
            bs[kk][r] = bn + r < n && gk < k ? w[(size_t)(bn + r) * k + gk] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < V2_BK; kk++) {
            float a[V2_TM], b[V2_TN];
#pragma unroll
            for (int i = 0; i < V2_TM; i++)
                a[i] = as[kk][tr * V2_TM + i];
#pragma unroll
            for (int j = 0; j < V2_TN; j++)
                b[j] = bs[kk][tc * V2_TN + j];
#pragma unroll
            for (int i = 0; i < V2_TM; i++)
#pragma unroll
                for (int j = 0; j < V2_TN; j++)
                    acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < V2_TM; i++) {
        int row = bm + tr * V2_TM + i;
        if (row >= m)
            break;
#pragma unroll
        for (int j = 0; j < V2_TN; j++) {
            int col = bn + tc * V2_TN + j;
            if (col < n)
                out[(size_t)row * n + col] = acc[i][j];
        }
    }
}

/* ---- v3: warp tiles, float4 loads, double-buffered shared memory --------------------- */

/* Block tile 128 (m) x 128 (n), k in steps of 16; 256 threads = 8 warps in
 * a 2 (m) x 4 (n) grid, each warp a 64 x 32 warp tile.
 *
 * Inside a warp tile the 32 lanes form 8 (m) x 4 (n); lane (lm, ln) owns an
 * 8x8 thread tile made of 2x2 sub-tiles of 4x4:
 *     rows  wm0 + sm*32 + lm*4 + {0..3},   sm in {0, 1}
 *     cols  wn0 + sn*16 + ln*4 + {0..3},   sn in {0, 1}
 * For each kk a lane reads 2 float4 of x (as[kk][..]) and 2 float4 of W
 * (bs[kk][..]) and does 64 FMAs.  The 8 distinct x float4s a warp reads are
 * 128 contiguous bytes (and the 4 W float4s 64), so every read is a single
 * conflict-free wavefront with broadcast; v2's 8 contiguous columns per
 * thread put lanes 4 apart on the same banks.
 *
 * Shared memory, as v2: k-major, as[buf][kk][r], rows padded to 132 floats
 * (16-byte aligned).  Two buffers: while the block computes on one k-tile,
 * each thread has already issued the global loads of the next into
 * registers, and stores them into the other buffer after its FMAs, so one
 * barrier per k-tile suffices and load latency hides behind the math.
 *
 * Global loads: each operand's tile is 128 rows x 16 k = 512 float4, 2 per
 * thread: float4 e is row e/4, k offset (e%4)*4 (4 threads read 64
 * contiguous bytes of a row).  VEC_LOAD (k % 4 == 0 and x, W 16-byte
 * aligned) uses float4 loads: a float4 is then wholly inside or wholly
 * past k.  Otherwise each float is loaded and guarded alone.  VEC_STORE
 * (n % 4 == 0, out 16-byte aligned) writes float4s. */
#define V3_BM 128
#define V3_BN 128
#define V3_BK 16
#define V3_THREADS 256
#define V3_WM 64 /* warp tile */
#define V3_WN 32
#define V3_PAD 4
#define V3_LD (V3_BM + V3_PAD) /* = V3_BN + V3_PAD */

/* Load the 2 float4 of one operand's k-tile (rows r0.., k0..) that thread
 * TID owns into V; rows >= rows and columns >= k read as 0. */
template <bool VEC_LOAD>
__device__ __forceinline__ void sgemm_v3_load(float4 v[2], const float *a, int r0, int rows, int k0, int k,
                                              int tid)
{
    int r = r0 + tid / 4, c = k0 + (tid % 4) * 4; /* float4 e = tid; e + 256 is 64 rows below */
    const float *p = a + (size_t)r * k + c;

#pragma unroll
    for (int i = 0; i < 2; i++, r += 64, p += (size_t)64 * k) {
        if (VEC_LOAD) {
            v[i] = r < rows && c < k ? *(const float4 *)p : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        } else {
            bool ok = r < rows;
            v[i].x = ok && c + 0 < k ? p[0] : 0.0f;
            v[i].y = ok && c + 1 < k ? p[1] : 0.0f;
            v[i].z = ok && c + 2 < k ? p[2] : 0.0f;
            v[i].w = ok && c + 3 < k ? p[3] : 0.0f;
        }
    }
}

/* Store V (from sgemm_v3_load) transposed into the k-major tile S. */
__device__ __forceinline__ void sgemm_v3_store(float (*s)[V3_LD], const float4 v[2], int tid)
{
#pragma unroll
    for (int i = 0; i < 2; i++) {
        int e = tid + i * V3_THREADS;
        int r = e / 4, c = (e % 4) * 4;
        s[c + 0][r] = v[i].x;
        s[c + 1][r] = v[i].y;
        s[c + 2][r] = v[i].z;
        s[c + 3][r] = v[i].w;
    }
}

template <bool VEC_LOAD, bool VEC_STORE>
__global__ void __launch_bounds__(V3_THREADS, 2)
    sgemm_v3_warptile(float *out, const float *x, const float *w, int m, int n, int k)
{
    __shared__ __align__(16) float as[2][V3_BK][V3_LD];
    __shared__ __align__(16) float bs[2][V3_BK][V3_LD];
    int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    int wm0 = (warp / (V3_BN / V3_WN)) * V3_WM; /* warp tile origin in the block tile */
    int wn0 = (warp % (V3_BN / V3_WN)) * V3_WN;
    int lm = lane / 4, ln = lane % 4;
    int bm = blockIdx.y * V3_BM, bn = blockIdx.x * V3_BN;
    int ktiles = (k + V3_BK - 1) / V3_BK;
    float acc[8][8]; /* [sm*4 + i][sn*4 + j] */
    float4 xv[2], wv[2];

#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 8; j++)
            acc[i][j] = 0.0f;

    sgemm_v3_load<VEC_LOAD>(xv, x, bm, m, 0, k, tid);
    sgemm_v3_load<VEC_LOAD>(wv, w, bn, n, 0, k, tid);
    sgemm_v3_store(as[0], xv, tid);
    sgemm_v3_store(bs[0], wv, tid);
    __syncthreads();

    for (int t = 0; t < ktiles; t++) {
        int cur = t & 1;
        bool more = t + 1 < ktiles;

        if (more) { /* the next tile's global loads, in flight during the FMAs */
            sgemm_v3_load<VEC_LOAD>(xv, x, bm, m, (t + 1) * V3_BK, k, tid);
            sgemm_v3_load<VEC_LOAD>(wv, w, bn, n, (t + 1) * V3_BK, k, tid);
        }
#pragma unroll
        for (int kk = 0; kk < V3_BK; kk++) {
            float a[8], b[8];
#pragma unroll
            for (int s = 0; s < 2; s++) {
                float4 av = *(const float4 *)&as[cur][kk][wm0 + s * 32 + lm * 4];
                float4 bv = *(const float4 *)&bs[cur][kk][wn0 + s * 16 + ln * 4];
                a[s * 4 + 0] = av.x, a[s * 4 + 1] = av.y, a[s * 4 + 2] = av.z, a[s * 4 + 3] = av.w;
                b[s * 4 + 0] = bv.x, b[s * 4 + 1] = bv.y, b[s * 4 + 2] = bv.z, b[s * 4 + 3] = bv.w;
            }
#pragma unroll
            for (int i = 0; i < 8; i++)
#pragma unroll
                for (int j = 0; j < 8; j++)
                    acc[i][j] += a[i] * b[j];
        }
        /* The other buffer was last read in iteration t-1, before the
         * barrier that ended it: safe to overwrite now. */
        if (more) {
            sgemm_v3_store(as[cur ^ 1], xv, tid);
            sgemm_v3_store(bs[cur ^ 1], wv, tid);
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 8; i++) {
        int row = bm + wm0 + (i / 4) * 32 + lm * 4 + i % 4;
        if (row >= m)
            continue;
        float *o = out + (size_t)row * n;
#pragma unroll
        for (int s = 0; s < 2; s++) {
            int col = bn + wn0 + s * 16 + ln * 4;
            const float *v = &acc[i][s * 4];
            if (VEC_STORE) {
                if (col < n)
                    *(float4 *)(o + col) = make_float4(v[0], v[1], v[2], v[3]);
            } else {
#pragma unroll
                for (int j = 0; j < 4; j++)
                    if (col + j < n)
                        o[col + j] = v[j];
            }
        }
    }
}

/* ---- dispatch ------------------------------------------------------------------------- */

static const char *const sgemm_names[] = {
    "v0 naive",
    "v1 smem tiles 32x32",
    "v2 register tiles 128x128, 8x8/thread",
    "v3 warp tiles, float4, double-buffered",
};

static int sgemm_default(int sm_major, int sm_minor)
{
    (void)sm_major;
    (void)sm_minor;
    return 3;
}

extern "C" const struct kn_cuda_op_table kn_cuda_table_sgemm = {
    .count = (int)(sizeof(sgemm_names) / sizeof(sgemm_names[0])),
    .names = sgemm_names,
    .default_version = sgemm_default,
};

static bool aligned16(const void *p)
{
    return ((uintptr_t)p & 15) == 0;
}

extern "C" int kn_cuda_sgemm(int version, float *out, const float *x, const float *w, int m, int n, int k)
{
    int v = kn_cuda_resolve_version(KN_CUDA_OP_SGEMM, version);
    int rows_per_block = v == 0 ? 8 : v == 1 ? V1_TILE : V2_BM; /* V2_BM == V3_BM */

    if (v < 0)
        return -1;
    if (m < 1 || n < 1 || k < 1)
        return kn_cuda_set_error("kn_cuda_sgemm: bad shape m=%d n=%d k=%d", m, n, k);
    if (KN_CDIV(m, rows_per_block) > KN_GRID_YZ_MAX)
        return kn_cuda_set_error("kn_cuda_sgemm v%d: m=%d is above the %d rows one grid covers", v, m,
                                 KN_GRID_YZ_MAX * rows_per_block);
    switch (v) {
    case 0:
        sgemm_v0_naive<<<dim3(KN_CDIV(n, 32), KN_CDIV(m, 8)), dim3(32, 8)>>>(out, x, w, m, n, k);
        break;
    case 1:
        sgemm_v1_smem<<<dim3(KN_CDIV(n, V1_TILE), KN_CDIV(m, V1_TILE)), dim3(V1_TILE, V1_TILE)>>>(out, x, w, m,
                                                                                                 n, k);
        break;
    case 2:
        sgemm_v2_regtile<<<dim3(KN_CDIV(n, V2_BN), KN_CDIV(m, V2_BM)), V2_THREADS>>>(out, x, w, m, n, k);
        break;
    default: {
        dim3 grid(KN_CDIV(n, V3_BN), KN_CDIV(m, V3_BM));
        bool vl = k % 4 == 0 && aligned16(x) && aligned16(w);
        bool vs = n % 4 == 0 && aligned16(out);
        if (vl && vs)
            sgemm_v3_warptile<true, true><<<grid, V3_THREADS>>>(out, x, w, m, n, k);
        else if (vl)
            sgemm_v3_warptile<true, false><<<grid, V3_THREADS>>>(out, x, w, m, n, k);
        else if (vs)
            sgemm_v3_warptile<false, true><<<grid, V3_THREADS>>>(out, x, w, m, n, k);
        else
            sgemm_v3_warptile<false, false><<<grid, V3_THREADS>>>(out, x, w, m, n, k);
        break;
    }
    }
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}
