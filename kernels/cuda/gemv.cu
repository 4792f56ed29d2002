/* gemv.cu -- decode's matmul, out (m, n) = x (m, k) W^T for 1 <= m <= 8
 * rows, and kn_cuda_matmul, the dispatcher for any m and weight dtype.
 *
 * x is float32 (m, k); W (n, k) is KN_F32, KN_BF16 or KN_Q8 laid out as
 * kernels.h says (Q8: int8 data[n*k] and float scales[n*k/group], W[i][j] =
 * data[i*k+j] * scales[(i*k+j)/group]; w->packed is not used here).  The
 * activations stay float32 (the CPU's Q8 path quantises them to int8; this
 * one does not, so its results are slightly closer to float64).
 *
 * With a handful of rows the product is bound by reading W once: 2mnk
 * FLOPs for nk weights is at most 16 FLOPs per weight.  So one warp owns
 * one output column j (a row of W), reads that row once and applies it to
 * all m rows of x, and the aim is the device's read bandwidth.
 *
 *   v0 simple       one warp per W row, lane l takes elements l, l+32, ...
 *                   (scalar loads, x straight from global memory / L1).
 *   v1 vectorised   one warp per W row, 16-byte loads of W (4 f32, 8 bf16
 *                   or 16 int8 per lane per load), 4 loads in flight per
 *                   lane, x staged in shared memory in chunks of 1024
 *                   columns (all m rows) shared by the block's 4 warps.
 *                   Needs 16-byte rows (k*sizeof(elem) % 16 == 0, data
 *                   16-byte aligned, Q8 group % 16 == 0); other shapes run
 *                   v0's kernel.
 * The default is v1. */
#include <algorithm>

#include <cuda_bf16.h>

#include "kernels/cuda/cuda_int.h"

#define GV_WARPS 4                 /* warps (W rows) per block */
#define GV_THREADS (GV_WARPS * 32)
#define GV_KC 1024                 /* v1: x columns per shared-memory chunk */
#define GV_UNROLL 4                /* v1: 16-byte loads in flight per lane (at most) */
#define GV_MAX_M 8

/* Bytes per element of W for DT. */
#define GV_ESIZE(DT) ((DT) == KN_F32 ? 4 : (DT) == KN_BF16 ? 2 : 1)

__device__ __forceinline__ float bf16_lo(uint32_t u)
{
    return __uint_as_float(u << 16);
}

__device__ __forceinline__ float bf16_hi(uint32_t u)
{
    return __uint_as_float(u & 0xffff0000u);
}

/* Byte B (0..3) of U as a signed int8, as float. */
__device__ __forceinline__ float i8_at(uint32_t u, int b)
{
    return (float)((int32_t)(u << (24 - 8 * b)) >> 24);
}

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int off = 16; off > 0; off /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

/* ---- v0: simple ------------------------------------------------------------------ */

/* W element IDX (= row*k + col) as float. */
template <int DT>
__device__ __forceinline__ float gv_weight(const void *data, const float *scales, int group, size_t idx)
{
    if (DT == KN_F32)
        return ((const float *)data)[idx];
    if (DT == KN_BF16)
        return bf16_lo(((const uint16_t *)data)[idx]);
    return (float)((const int8_t *)data)[idx] * scales[idx / group];
}

/* Block of 4 warps; warp w of block b owns W row j = 4b + w. */
template <int M, int DT>
__global__ void __launch_bounds__(GV_THREADS)
    gemv_v0(float *out, const float *x, const void *data, const float *scales, int group, int n, int k)
{
    int lane = threadIdx.x % 32, j = blockIdx.x * GV_WARPS + threadIdx.x / 32;
    float acc[M];

    if (j >= n)
        return;
#pragma unroll
    for (int r = 0; r < M; r++)
        acc[r] = 0.0f;
    for (int c = lane; c < k; c += 32) {
        float wv = gv_weight<DT>(data, scales, group, (size_t)j * k + c);
#pragma unroll
        for (int r = 0; r < M; r++)
            acc[r] += wv * x[(size_t)r * k + c];
    }
#pragma unroll
    for (int r = 0; r < M; r++) {
        float s = warp_sum(acc[r]);
        if (lane == 0)
            out[(size_t)r * n + j] = s;
    }
}

/* ---- v1: vectorised ------------------------------------------------------------------ */

/* Each lane reads 16-byte vectors of VE = 16/sizeof(elem) elements of its
 * warp's W row: vector v of a chunk covers columns c0 + v*VE .. +VE-1, and
 * lane l takes v = l, l+32, ... (a warp reads 512 contiguous bytes per
 * load).  It needs the same VE columns of each x row from shared memory as
 * VE/4 float4s; stored plainly, lanes VE floats apart would hit the same
 * banks (4-way conflicts for int8), so the chunk is stored permuted: float4
 * e (0 .. VE/4-1) of vector v sits at float4 index e*(GV_KC/VE) + v of its
 * row, and for each e the 32 lanes read 32 consecutive float4s.  For f32
 * (VE = 4) that is the plain layout.
 *
 * Shared memory: xs[M][GV_KC] floats (4 KiB per row of x). */
template <int M, int DT>
__global__ void __launch_bounds__(GV_THREADS)
    gemv_v1(float *out, const float *x, const void *data, const float *scales, int group, int n, int k)
{
    constexpr int VE = 16 / GV_ESIZE(DT); /* elements per 16-byte vector */
    constexpr int NV = GV_KC / VE;        /* vectors per chunk and row */
    /* Loads in flight per lane: fewer for int8 with several rows, whose 16
     * widened weights per load are kept for all M rows (registers). */
    constexpr int U = DT == KN_Q8 && M > 4 ? 1 : DT == KN_Q8 && M > 2 ? 2 : GV_UNROLL;
    extern __shared__ __align__(16) float xs[];
    const float4 *xs4 = (const float4 *)xs;
    int tid = threadIdx.x, lane = tid % 32, j = blockIdx.x * GV_WARPS + tid / 32;
    bool active = j < n;
    /* This warp's row (row 0 for a warp past n: computed, never read). */
    const uint4 *wrow = (const uint4 *)((const char *)data + (size_t)(active ? j : 0) * k * GV_ESIZE(DT));
    float acc[M];

#pragma unroll
    for (int r = 0; r < M; r++)
        acc[r] = 0.0f;

    for (int c0 = 0; c0 < k; c0 += GV_KC) {
        int len = min(GV_KC, k - c0); /* a multiple of VE: k % VE == 0 */

        __syncthreads(); /* every warp is done with the previous chunk */
        for (int i = tid; i < M * GV_KC; i += GV_THREADS) {
            int r = i / GV_KC, c = i % GV_KC;
            int pos = ((c % VE) / 4 * NV + c / VE) * 4 + c % 4;
            xs[r * GV_KC + pos] = c < len ? x[(size_t)r * k + c0 + c] : 0.0f;
        }
        __syncthreads();
        if (!active)
            continue;

        int nvec = len / VE;
        const uint4 *wp = wrow + c0 / VE;
        for (int v0 = lane; v0 < nvec; v0 += 32 * U) {
            uint4 wv[U];
            float sc[U];
            /* All the loads first, so U of them are in flight. */
#pragma unroll
            for (int u = 0; u < U; u++) {
                int v = v0 + u * 32;
                wv[u] = v < nvec ? __ldcs(wp + v) : make_uint4(0, 0, 0, 0);
                if (DT == KN_Q8)
                    sc[u] = v < nvec ? scales[((size_t)j * k + c0 + (size_t)v * VE) / group] : 0.0f;
            }
#pragma unroll
            for (int u = 0; u < U; u++) {
                int v = v0 + u * 32;
                if (v >= nvec)
                    break;
                uint32_t q[4] = {wv[u].x, wv[u].y, wv[u].z, wv[u].w};
#pragma unroll
                for (int r = 0; r < M; r++) {
                    const float4 *xr = xs4 + r * (GV_KC / 4) + v;
                    if (DT == KN_F32) {
                        float4 a = xr[0];
                        acc[r] += __uint_as_float(q[0]) * a.x + __uint_as_float(q[1]) * a.y +
                                  __uint_as_float(q[2]) * a.z + __uint_as_float(q[3]) * a.w;
                    } else if (DT == KN_BF16) {
                        float4 a = xr[0], b = xr[NV];
                        acc[r] += bf16_lo(q[0]) * a.x + bf16_hi(q[0]) * a.y + bf16_lo(q[1]) * a.z +
                                  bf16_hi(q[1]) * a.w + bf16_lo(q[2]) * b.x + bf16_hi(q[2]) * b.y +
                                  bf16_lo(q[3]) * b.z + bf16_hi(q[3]) * b.w;
                    } else {
                        float s = 0.0f;
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            float4 a = xr[e * NV];
                            s += i8_at(q[e], 0) * a.x + i8_at(q[e], 1) * a.y + i8_at(q[e], 2) * a.z +
                                 i8_at(q[e], 3) * a.w;
                        }
                        acc[r] += sc[u] * s;
                    }
                }
            }
        }
    }
    if (!active)
        return;
#pragma unroll
    for (int r = 0; r < M; r++) {
        float s = warp_sum(acc[r]);
        if (lane == 0)
            out[(size_t)r * n + j] = s;
    }
}

/* ---- dispatch ------------------------------------------------------------------------ */

typedef void (*gemv_kernel)(float *, const float *, const void *, const float *, int, int, int);

/* The kernel of VERSION (0 or 1) for M rows and dtype DT. */
template <int DT>
static gemv_kernel gemv_pick(int version, int m)
{
    switch (m) {
    case 1: return version == 0 ? gemv_v0<1, DT> : gemv_v1<1, DT>;
    case 2: return version == 0 ? gemv_v0<2, DT> : gemv_v1<2, DT>;
    case 3: return version == 0 ? gemv_v0<3, DT> : gemv_v1<3, DT>;
    case 4: return version == 0 ? gemv_v0<4, DT> : gemv_v1<4, DT>;
    case 5: return version == 0 ? gemv_v0<5, DT> : gemv_v1<5, DT>;
    case 6: return version == 0 ? gemv_v0<6, DT> : gemv_v1<6, DT>;
    case 7: return version == 0 ? gemv_v0<7, DT> : gemv_v1<7, DT>;
    default: return version == 0 ? gemv_v0<8, DT> : gemv_v1<8, DT>;
    }
}

static const char *const gemv_names[] = {
    "v0 warp per row, scalar",
    "v1 warp per row, 16-byte loads, x in smem",
};

static int gemv_default(int sm_major, int sm_minor)
{
    (void)sm_major;
    (void)sm_minor;
    return 1;
}

extern "C" const struct kn_cuda_op_table kn_cuda_table_gemv = {
    .count = (int)(sizeof(gemv_names) / sizeof(gemv_names[0])),
    .names = gemv_names,
    .default_version = gemv_default,
};

/* Whether W suits v1's 16-byte loads. */
static bool gemv_vectorisable(const struct kn_weights *w)
{
    size_t esize = w->dtype == KN_F32 ? 4 : w->dtype == KN_BF16 ? 2 : 1;

    return ((uintptr_t)w->data & 15) == 0 && ((size_t)w->k * esize) % 16 == 0 &&
           (w->dtype != KN_Q8 || w->group % 16 == 0);
}

extern "C" int kn_cuda_gemv(int version, float *out, const float *x, const struct kn_weights *w, int m)
{
    int v = kn_cuda_resolve_version(KN_CUDA_OP_GEMV, version);
    gemv_kernel kern;
    size_t smem = 0;

    if (v < 0)
        return -1;
    if (m < 1 || m > GV_MAX_M)
        return kn_cuda_set_error("kn_cuda_gemv: m=%d is not in 1..%d", m, GV_MAX_M);
    if (w->n < 1 || w->k < 1)
        return kn_cuda_set_error("kn_cuda_gemv: bad shape n=%d k=%d", w->n, w->k);
    if (w->dtype == KN_Q8 && (w->group < 1 || w->k % w->group != 0 || w->scales == NULL))
        return kn_cuda_set_error("kn_cuda_gemv: q8 needs scales and k (%d) a multiple of the group (%d)", w->k,
                                 w->group);
    if (v == 1 && !gemv_vectorisable(w))
        v = 0; /* v1 needs 16-byte rows: v0 handles the rest */
    switch (w->dtype) {
    case KN_F32: kern = gemv_pick<KN_F32>(v, m); break;
    case KN_BF16: kern = gemv_pick<KN_BF16>(v, m); break;
    case KN_Q8: kern = gemv_pick<KN_Q8>(v, m); break;
    default: return kn_cuda_set_error("kn_cuda_gemv: unknown dtype %d", (int)w->dtype);
    }
    if (v == 1)
        smem = (size_t)m * GV_KC * sizeof(float); /* at most 32 KiB: no opt-in needed */
    kern<<<KN_CDIV(w->n, GV_WARPS), GV_THREADS, smem>>>(out, x, w->data, w->scales, w->group, w->n, w->k);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- kn_cuda_matmul: any m ---------------------------------------------------------------- */

/* Above 8 rows the GEMMs take over:
 *   KN_F32   kn_cuda_sgemm (default version), no scratch.
 *   KN_BF16  x converted to bf16 in SCRATCH, then kn_cuda_bgemm; when k % 8
 *            != 0 or W is not 16-byte aligned (bgemm's conditions), W is
 *            instead widened to float32 in SCRATCH and kn_cuda_sgemm runs.
 *   KN_Q8    W dequantised to bf16 in SCRATCH (whole, n*k*2 bytes: simple,
 *            and the bgemm then runs at full speed; a tile-dequantising
 *            GEMM would save that memory) and x converted to bf16 after it,
 *            then kn_cuda_bgemm.
 * So for m > 8, bf16 and Q8 weights see x rounded to bf16 (relative error
 * about 2^-9 per element). */

static size_t round256(size_t b)
{
    return (b + 255) / 256 * 256;
}

static bool matmul_bf16_direct(const struct kn_weights *w)
{
    return w->k % 8 == 0 && ((uintptr_t)w->data & 15) == 0;
}

extern "C" size_t kn_cuda_matmul_scratch_bytes(const struct kn_weights *w, int m)
{
    size_t nk = (size_t)w->n * w->k, mk = (size_t)(m > 0 ? m : 0) * w->k;

    if (m <= GV_MAX_M || w->dtype == KN_F32)
        return 0;
    if (w->dtype == KN_BF16)
        return matmul_bf16_direct(w) ? round256(mk * 2) : round256(nk * 4);
    return round256(nk * 2) + round256(mk * 2); /* KN_Q8 */
}

/* W (Q8) dequantised: dst[i] = bf16(data[i] * scales[i / group]), rounded to
 * nearest even, over N elements. */
__global__ void q8_to_bf16(__nv_bfloat16 *dst, const int8_t *data, const float *scales, int group, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn((float)data[i] * scales[i / group]);
}

extern "C" int kn_cuda_matmul(float *out, const float *x, const struct kn_weights *w, int m, void *scratch)
{
    size_t nk = (size_t)w->n * w->k, mk = (size_t)m * w->k;

    if (m < 1 || w->n < 1 || w->k < 1)
        return kn_cuda_set_error("kn_cuda_matmul: bad shape m=%d n=%d k=%d", m, w->n, w->k);
    if (m <= GV_MAX_M)
        return kn_cuda_gemv(KN_CUDA_DEFAULT, out, x, w, m);
    if (w->dtype == KN_F32)
        return kn_cuda_sgemm(KN_CUDA_DEFAULT, out, x, (const float *)w->data, m, w->n, w->k);
    if (w->dtype != KN_BF16 && w->dtype != KN_Q8)
        return kn_cuda_set_error("kn_cuda_matmul: unknown dtype %d", (int)w->dtype);
    if (scratch == NULL)
        return kn_cuda_set_error("kn_cuda_matmul: m=%d with %s weights needs %zu bytes of scratch", m,
                                 w->dtype == KN_BF16 ? "bf16" : "q8", kn_cuda_matmul_scratch_bytes(w, m));

    if (w->dtype == KN_BF16) {
        if (matmul_bf16_direct(w)) {
            uint16_t *xb = (uint16_t *)scratch;
            if (kn_cuda_f32_to_bf16(xb, x, mk) != 0)
                return -1;
            return kn_cuda_bgemm(KN_CUDA_DEFAULT, out, xb, (const uint16_t *)w->data, m, w->n, w->k);
        }
        float *wf = (float *)scratch;
        if (kn_cuda_bf16_to_f32(wf, (const uint16_t *)w->data, nk) != 0)
            return -1;
        return kn_cuda_sgemm(KN_CUDA_DEFAULT, out, x, wf, m, w->n, w->k);
    }

    /* KN_Q8 */
    if (w->group < 1 || w->k % w->group != 0 || w->scales == NULL)
        return kn_cuda_set_error("kn_cuda_matmul: q8 needs scales and k (%d) a multiple of the group (%d)", w->k,
                                 w->group);
    uint16_t *wb = (uint16_t *)scratch;
    uint16_t *xb = (uint16_t *)((char *)scratch + round256(nk * 2));
    q8_to_bf16<<<(unsigned)std::min<size_t>(KN_CDIV(nk, 256), 65536), 256>>>((__nv_bfloat16 *)wb,
                                                                             (const int8_t *)w->data, w->scales,
                                                                             w->group, nk);
    KN_CUDA_CHECK_LAUNCH();
    if (kn_cuda_f32_to_bf16(xb, x, mk) != 0)
        return -1;
    return kn_cuda_bgemm(KN_CUDA_DEFAULT, out, xb, wb, m, w->n, w->k);
}
