/* ops.cu -- the small kernels of a forward pass on the device (kn_cuda.h):
 * embedding, RMSNorm, RoPE, SwiGLU, the residual add, f32 <-> bf16,
 * softmax, argmax and sampling, so that a step never goes through the host.
 *
 * Elementwise kernels walk their arrays with a grid-stride loop.  Row
 * kernels (RMSNorm, softmax, argmax, sampling) give a row to a block and
 * reduce with warp shuffles, then across warps through shared memory, in a
 * fixed order: results do not depend on timing.  Arithmetic follows the CPU
 * kernels (kernels/ops.c, quant.c) so that the two agree to float rounding:
 * RoPE computes its angles in double exactly as kn_rope does, and the
 * conversions are bit for bit those of kn_f32_to_bf16 / kn_bf16_to_f32.
 *
 * Sampling (kn_cuda_sample) never sorts.  The kept set of top-k / top-p is
 * always {i : p_i >= tau} for a threshold tau that is one of the
 * probabilities, which keeps ties with the last token by construction; tau
 * is found by bisection on the bit pattern of a float (for non-negative
 * floats the order of the bits is the order of the values): at most 30
 * block-wide passes over the row, each counting the tokens at or above a
 * candidate and their mass.
 *   top-k:  tau_k = the largest t with count(p >= t) >= k (the k-th largest);
 *   top-p:  tau = the largest t (>= tau_k) with mass(p >= t) >= top_p * M,
 *           M = mass(p >= tau_k) (the top-k tokens' mass): the most likely
 *           tokens whose mass first reaches top_p of the candidates'.
 * The draw walks the kept tokens in index order with a block-wide prefix
 * sum: each thread takes a contiguous segment, the first index whose
 * cumulative mass exceeds coin x (kept mass) wins.  Bisection rather than a
 * radix select: 30 simple passes of a deterministic reduction, against 4
 * passes of atomic histograms whose float sums would depend on timing. */
#include <limits.h>
#include <math.h>
#include <stdint.h>

#include "kernels/cuda/cuda_int.h"

enum {
    KN_OPS_THREADS = 256,     /* elementwise kernels and RMSNorm */
    KN_OPS_ROW_THREADS = 1024, /* softmax, argmax, sampling: rows of a vocabulary */
    KN_OPS_MAX_BLOCKS = 4096, /* grid-stride loops: blocks at most */
};

#define KN_OPS_FULL 0xffffffffu

/* ---- block reductions (any blockDim.x that is a multiple of 32) ------------------ */

__device__ __forceinline__ float ops_warp_sum(float v)
{
    for (int off = 16; off > 0; off /= 2)
        v += __shfl_xor_sync(KN_OPS_FULL, v, off);
    return v;
}

__device__ __forceinline__ float ops_warp_max(float v)
{
    for (int off = 16; off > 0; off /= 2)
        v = fmaxf(v, __shfl_xor_sync(KN_OPS_FULL, v, off));
    return v;
}

/* Sum of V over the block; every thread gets it. */
__device__ float block_sum(float v)
{
    __shared__ float red[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;

    v = ops_warp_sum(v);
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = ops_warp_sum(lane < nw ? red[lane] : 0.f);
        if (lane == 0)
            red[0] = v;
    }
    __syncthreads();
    v = red[0];
    __syncthreads(); /* red is free for the next call */
    return v;
}

/* Maximum of V over the block; every thread gets it. */
__device__ float block_max(float v)
{
    __shared__ float red[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;

    v = ops_warp_max(v);
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = ops_warp_max(lane < nw ? red[lane] : -INFINITY);
        if (lane == 0)
            red[0] = v;
    }
    __syncthreads();
    v = red[0];
    __syncthreads();
    return v;
}

/* Sums of A and B over the block at once. */
__device__ void block_sum2(float *a, float *b)
{
    __shared__ float red[2][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    float x = ops_warp_sum(*a), y = ops_warp_sum(*b);

    if (lane == 0) {
        red[0][warp] = x;
        red[1][warp] = y;
    }
    __syncthreads();
    if (warp == 0) {
        x = ops_warp_sum(lane < nw ? red[0][lane] : 0.f);
        y = ops_warp_sum(lane < nw ? red[1][lane] : 0.f);
        if (lane == 0) {
            red[0][0] = x;
            red[1][0] = y;
        }
    }
    __syncthreads();
    *a = red[0][0];
    *b = red[1][0];
    __syncthreads();
}

/* Smallest (WANT_MIN) or largest int over the block. */
__device__ int block_minmax_int(int v, bool want_min)
{
    __shared__ int red[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;

    for (int off = 16; off > 0; off /= 2) {
        const int o = __shfl_xor_sync(KN_OPS_FULL, v, off);
        v = want_min ? (o < v ? o : v) : (o > v ? o : v);
    }
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    v = red[0];
    for (int w = 1; w < nw; w++)
        v = want_min ? (red[w] < v ? red[w] : v) : (red[w] > v ? red[w] : v);
    __syncthreads();
    return v;
}

/* Whether (va, ia) wins over (vb, ib) for argmax: larger, or equal and
 * earlier.  A NaN never wins (its comparisons are false). */
__device__ __forceinline__ bool argmax_better(float va, int ia, float vb, int ib)
{
    return va > vb || (va == vb && ia < ib);
}

/* Index of the largest of x[0..n) for the whole block: the first on ties,
 * NaNs skipped, 0 when every value is NaN (as kn_argmax). */
__device__ int row_argmax(const float *x, int n)
{
    __shared__ float rv[32];
    __shared__ int ri[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    float bv = -INFINITY;
    int bi = INT_MAX;

    for (int i = threadIdx.x; i < n; i += blockDim.x)
        if (argmax_better(x[i], i, bv, bi))
            bv = x[i], bi = i;
    for (int off = 16; off > 0; off /= 2) {
        const float ov = __shfl_xor_sync(KN_OPS_FULL, bv, off);
        const int oi = __shfl_xor_sync(KN_OPS_FULL, bi, off);
        if (argmax_better(ov, oi, bv, bi))
            bv = ov, bi = oi;
    }
    if (lane == 0) {
        rv[warp] = bv;
        ri[warp] = bi;
    }
    __syncthreads();
    bv = rv[0];
    bi = ri[0];
    for (int w = 1; w < nw; w++)
        if (argmax_better(rv[w], ri[w], bv, bi))
            bv = rv[w], bi = ri[w];
    __syncthreads();
    return bi == INT_MAX ? 0 : bi;
}

/* Exclusive prefix sum of V over the threads of the block in thread order;
 * *TOTAL gets the sum of all. */
__device__ float block_exclusive_scan(float v, float *total)
{
    __shared__ float wpre[32];
    __shared__ float wtot;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    float incl = v, excl;

    for (int off = 1; off < 32; off *= 2) {
        const float y = __shfl_up_sync(KN_OPS_FULL, incl, off);
        if (lane >= off)
            incl += y;
    }
    excl = __shfl_up_sync(KN_OPS_FULL, incl, 1);
    if (lane == 0)
        excl = 0.f;
    if (lane == 31)
        wpre[warp] = incl; /* the warp's total, for now */
    __syncthreads();
    if (warp == 0) {
        const float w = lane < nw ? wpre[lane] : 0.f;
        float wi = w, we;
        for (int off = 1; off < 32; off *= 2) {
            const float y = __shfl_up_sync(KN_OPS_FULL, wi, off);
            if (lane >= off)
                wi += y;
        }
        we = __shfl_up_sync(KN_OPS_FULL, wi, 1);
        if (lane == 0)
            we = 0.f;
        if (lane < nw)
            wpre[lane] = we; /* now the sum of the warps before */
        if (lane == 31)
            wtot = wi;
    }
    __syncthreads();
    excl += wpre[warp];
    *total = wtot;
    __syncthreads();
    return excl;
}

/* Blocks for a grid-stride loop over N items. */
static int ops_blocks(size_t n)
{
    size_t b = (n + KN_OPS_THREADS - 1) / KN_OPS_THREADS;
    return b < 1 ? 1 : b > KN_OPS_MAX_BLOCKS ? KN_OPS_MAX_BLOCKS : (int)b;
}

#define KN_GRID_STRIDE(i, n)                                                                   \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* ---- elementwise ------------------------------------------------------------------ */

__global__ void embed_kernel(float *out, const float *table, const int32_t *tokens, int dim, size_t n)
{
    KN_GRID_STRIDE(i, n)
    {
        const size_t r = i / dim, c = i % dim;
        out[i] = table[(size_t)tokens[r] * dim + c];
    }
}

extern "C" int kn_cuda_embed(float *out, const float *table, const int32_t *tokens, int rows, int dim)
{
    if (rows < 0 || dim < 1)
        return kn_cuda_set_error("embed: rows %d, dim %d", rows, dim);
    if (rows == 0)
        return 0;
    const size_t n = (size_t)rows * dim;
    embed_kernel<<<ops_blocks(n), KN_OPS_THREADS>>>(out, table, tokens, dim, n);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* out = silu(gate) * up; expf (not __expf) as the CPU.  A gate below about
 * -88 makes expf(-g) infinite and silu -0, the limit. */
__global__ void swiglu_kernel(float *out, const float *gate, const float *up, size_t n)
{
    KN_GRID_STRIDE(i, n)
    {
        const float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

extern "C" int kn_cuda_swiglu(float *out, const float *gate, const float *up, size_t n)
{
    if (n == 0)
        return 0;
    swiglu_kernel<<<ops_blocks(n), KN_OPS_THREADS>>>(out, gate, up, n);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

__global__ void add_kernel(float *x, const float *y, size_t n)
{
    KN_GRID_STRIDE(i, n)
    x[i] += y[i];
}

extern "C" int kn_cuda_add(float *x, const float *y, size_t n)
{
    if (n == 0)
        return 0;
    add_kernel<<<ops_blocks(n), KN_OPS_THREADS>>>(x, y, n);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* Round to nearest even, a NaN kept a (quiet) NaN: kn_f32_to_bf16. */
__global__ void f32_to_bf16_kernel(uint16_t *dst, const float *src, size_t n)
{
    KN_GRID_STRIDE(i, n)
    {
        uint32_t u = __float_as_uint(src[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u)
            dst[i] = (uint16_t)((u >> 16) | 0x0040u);
        else
            dst[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}

__global__ void bf16_to_f32_kernel(float *dst, const uint16_t *src, size_t n)
{
    KN_GRID_STRIDE(i, n)
    dst[i] = __uint_as_float((uint32_t)src[i] << 16);
}

extern "C" int kn_cuda_f32_to_bf16(uint16_t *dst, const float *src, size_t n)
{
    if (n == 0)
        return 0;
    f32_to_bf16_kernel<<<ops_blocks(n), KN_OPS_THREADS>>>(dst, src, n);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

extern "C" int kn_cuda_bf16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    if (n == 0)
        return 0;
    bf16_to_f32_kernel<<<ops_blocks(n), KN_OPS_THREADS>>>(dst, src, n);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* RoPE: item (row r, pair i) computes pair i's angle for position pos[r]
 * once, as kn_rope does (in double, rounded to float cos and sin), and
 * turns pair i of every head of the row.  The products and sums are
 * rounded one by one (no fused multiply-add), as the CPU computes them. */
__global__ void rope_kernel(float *x, int rows, int n_heads, int head_dim, const int32_t *pos, float theta,
                            int half_layout)
{
    const int half = head_dim / 2;

    KN_GRID_STRIDE(idx, (size_t)rows * half)
    {
        const int r = (int)(idx / half), i = (int)(idx % half), p = pos[r];

        if (p == 0)
            continue; /* the identity, as kn_rope */
        const double freq = pow((double)theta, -2.0 * i / head_dim);
        const double angle = (double)p * freq;
        const float c = (float)cos(angle), s = (float)sin(angle);
        float *row = x + (size_t)r * n_heads * head_dim;
        const int a = half_layout ? i : 2 * i, b = half_layout ? i + half : 2 * i + 1;

        for (int h = 0; h < n_heads; h++) {
            float *vh = row + (size_t)h * head_dim;
            const float x0 = vh[a], x1 = vh[b];

            vh[a] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
            vh[b] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
        }
    }
}

extern "C" int kn_cuda_rope(float *x, int rows, int n_heads, int head_dim, const int32_t *pos, float theta,
                            enum kn_rope_layout layout)
{
    if (rows < 0 || n_heads < 1 || head_dim < 2 || head_dim % 2 != 0)
        return kn_cuda_set_error("rope: rows %d, %d heads, head_dim %d (even, >= 2)", rows, n_heads, head_dim);
    if (layout != KN_ROPE_INTERLEAVED && layout != KN_ROPE_HALF)
        return kn_cuda_set_error("rope: unknown layout %d", (int)layout);
    if (rows == 0)
        return 0;
    rope_kernel<<<ops_blocks((size_t)rows * (head_dim / 2)), KN_OPS_THREADS>>>(x, rows, n_heads, head_dim, pos, theta,
                                                                               layout == KN_ROPE_HALF);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- rows ------------------------------------------------------------------------- */

/* Block r: row r of N, out = x * (1 / sqrt(mean(x^2) + eps)) * w.  Each
 * thread reads its own x[i] before writing out[i], so out may alias x. */
__global__ void __launch_bounds__(KN_OPS_THREADS)
rmsnorm_kernel(float *out, const float *x, const float *w, int n, float eps)
{
    const float *xr = x + (size_t)blockIdx.x * n;
    float *orow = out + (size_t)blockIdx.x * n;
    float ss = 0.f;

    for (int i = threadIdx.x; i < n; i += blockDim.x)
        ss += xr[i] * xr[i];
    ss = block_sum(ss);
    const float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        orow[i] = xr[i] * scale * w[i];
}

extern "C" int kn_cuda_rmsnorm(float *out, const float *x, const float *w, int rows, int n, float eps)
{
    if (rows < 0 || n < 1)
        return kn_cuda_set_error("rmsnorm: rows %d, n %d", rows, n);
    if (rows == 0)
        return 0;
    rmsnorm_kernel<<<rows, KN_OPS_THREADS>>>(out, x, w, n, eps);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* Block r: row r of N, in place: e = exp(x - max), x = e / sum. */
__global__ void __launch_bounds__(KN_OPS_ROW_THREADS) softmax_kernel(float *x, int n)
{
    float *xr = x + (size_t)blockIdx.x * n;
    float mx = -INFINITY, sum = 0.f;

    for (int i = threadIdx.x; i < n; i += blockDim.x)
        mx = fmaxf(mx, xr[i]);
    mx = block_max(mx);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float e = expf(xr[i] - mx);
        xr[i] = e;
        sum += e;
    }
    sum = block_sum(sum);
    const float inv = 1.0f / sum;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        xr[i] *= inv;
}

extern "C" int kn_cuda_softmax(float *x, int rows, int n)
{
    if (rows < 0 || n < 1)
        return kn_cuda_set_error("softmax: rows %d, n %d", rows, n);
    if (rows == 0)
        return 0;
    softmax_kernel<<<rows, KN_OPS_ROW_THREADS>>>(x, n);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

__global__ void __launch_bounds__(KN_OPS_ROW_THREADS) argmax_kernel(int32_t *out, const float *x, int n)
{
    const int a = row_argmax(x + (size_t)blockIdx.x * n, n);

    if (threadIdx.x == 0)
        out[blockIdx.x] = a;
}

extern "C" int kn_cuda_argmax(int32_t *out, const float *x, int rows, int n)
{
    if (rows < 0 || n < 1)
        return kn_cuda_set_error("argmax: rows %d, n %d", rows, n);
    if (rows == 0)
        return 0;
    argmax_kernel<<<rows, KN_OPS_ROW_THREADS>>>(out, x, n);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- sampling --------------------------------------------------------------------- */

/* The largest bit pattern t in [lo, hi) such that the tokens with p >= t
 * (t read as a float) number at least NEED_COUNT and weigh at least
 * NEED_MASS; t = lo is assumed to qualify.  Both tests only get harder as t
 * grows, so bisection finds the boundary: about log2(hi - lo) passes. */
__device__ unsigned threshold_bisect(const float *p, int n, unsigned lo, unsigned hi, float need_count,
                                     float need_mass)
{
    while (hi - lo > 1u) {
        const unsigned mid = lo + (hi - lo) / 2u;
        const float t = __uint_as_float(mid);
        float count = 0.f, mass = 0.f;

        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            const float v = p[i];
            if (v >= t) {
                count += 1.f;
                mass += v;
            }
        }
        block_sum2(&count, &mass); /* the same in every thread: a uniform branch */
        if (count >= need_count && mass >= need_mass)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Mass of the tokens with p >= t. */
__device__ float mass_at(const float *p, int n, float t)
{
    float mass = 0.f;

    for (int i = threadIdx.x; i < n; i += blockDim.x)
        if (p[i] >= t)
            mass += p[i];
    return block_sum(mass);
}

/* Block r samples row r: see kn_cuda_sample and the head of this file. */
__global__ void __launch_bounds__(KN_OPS_ROW_THREADS)
sample_kernel(int32_t *out, float *logits, int n, const float *temperature, const int32_t *top_k,
              const float *top_p, const float *coin)
{
    const int r = blockIdx.x;
    float *x = logits + (size_t)r * n;
    const float temp = temperature[r];

    if (!(temp > 0.f)) {
        const int a = row_argmax(x, n);
        if (threadIdx.x == 0)
            out[r] = a;
        return;
    }

    /* p = softmax(logits / temperature), in place (as kn_sample). */
    float mx = -INFINITY, sum = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float y = x[i] / temp;
        x[i] = y;
        mx = fmaxf(mx, y);
    }
    mx = block_max(mx);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float e = expf(x[i] - mx);
        x[i] = e;
        sum += e;
    }
    sum = block_sum(sum);
    const float inv = 1.0f / sum;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        x[i] *= inv;
    __syncthreads(); /* the passes below read other threads' p */

    /* The threshold, between 0 (keep all) and 1.0f (bits 0x3f800000, no
     * probability is above it).  top-p only raises it: tau_k qualifies (its
     * tokens weigh M >= top_p * M), so the search starts there. */
    const int k = top_k[r] <= 0 || top_k[r] >= n ? n : top_k[r];
    const float tp = top_p[r];
    const unsigned end = 0x3f800001u;
    unsigned tau = 0u;

    if (k < n)
        tau = threshold_bisect(x, n, 0u, end, (float)k, 0.f);
    if (tp < 1.f) {
        const float mass = mass_at(x, n, __uint_as_float(tau));
        tau = threshold_bisect(x, n, tau, end, 1.f, tp * mass);
    }
    const float t = __uint_as_float(tau);

    /* The draw: contiguous segments, a prefix sum of their kept mass, then
     * each thread walks its own; the first index past coin x total wins.
     * A token of probability 0 never wins; when rounding leaves the coin
     * above every cumulative sum, the last kept token with p > 0 does. */
    const int seg = (n + (int)blockDim.x - 1) / (int)blockDim.x;
    const int i0 = min(n, (int)threadIdx.x * seg), i1 = min(n, i0 + seg);
    float part = 0.f, total;
    int last = -1, pick = INT_MAX;

    for (int i = i0; i < i1; i++) {
        const float v = x[i];
        if (v >= t) {
            part += v;
            if (v > 0.f)
                last = i;
        }
    }
    float cum = block_exclusive_scan(part, &total);
    const float c = coin[r];
    const float target = (c >= 0.f ? c : 0.f) * total; /* a NaN coin counts as 0 */
    for (int i = i0; i < i1; i++) {
        const float v = x[i];
        if (v >= t && v > 0.f) {
            cum += v;
            if (cum > target) {
                pick = i;
                break;
            }
        }
    }
    pick = block_minmax_int(pick, true);
    last = block_minmax_int(last, false);
    if (threadIdx.x == 0)
        out[r] = pick != INT_MAX ? pick : (last >= 0 ? last : 0);
}

extern "C" int kn_cuda_sample(int32_t *out, float *logits, int rows, int n, const float *temperature,
                              const int32_t *top_k, const float *top_p, const float *coin)
{
    if (rows < 0 || n < 1 || n >= (1 << 24))
        return kn_cuda_set_error("sample: rows %d, n %d (1 .. 2^24-1)", rows, n);
    if (rows == 0)
        return 0;
    sample_kernel<<<rows, KN_OPS_ROW_THREADS>>>(out, logits, n, temperature, top_k, top_p, coin);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}
