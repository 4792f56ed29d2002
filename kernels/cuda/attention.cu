/* attention.cu -- float32 attention over the paged KV cache on the device
 * (kn_cuda.h): decode (one query per sequence, a batch of sequences) and
 * prefill (a chunk of T causal queries of one sequence), each in versions
 * side by side, as llm.c's dev kernels.
 *
 *   decode  v0  one block per (sequence, query head), the whole context in
 *               tiles of 128 positions: the simple reference point.
 *           v1  split-KV (flash-decoding): the context is cut into chunks
 *               (how many from the context and the SM count), one block per
 *               (chunk, kv head, sequence) computes every query head of the
 *               kv head's group, so K and V are read once per group; tiles of
 *               32 positions are streamed into shared memory with cp.async
 *               (double buffered), partial (m, l, acc) go to the workspace and
 *               a second kernel merges the chunks by log-sum-exp.
 *   prefill v0  one block per (query, head): v0 of decode for one query.
 *           v1  flash-attention style in float32: a block holds a tile of 64
 *               queries of one head (32 when head_dim > 128, fewer when the
 *               device's shared memory is small) in shared memory
 *               and walks the causal keys in double-buffered tiles of 32,
 *               with an online softmax per query row: no T x S matrix.
 *
 * Softmax arithmetic: q is pre-scaled by log2(e)/sqrt(head_dim) so that
 * scores are in base-2 units and exp2f() does the exponentials; the running
 * maximum m and sum l of a row are kept in those units.
 *
 * Shapes: q (rows, n_heads, head_dim); the cache as in struct
 * kn_cuda_paged_kv; query head h reads kv head h / (n_heads / n_kv_heads).
 * head_dim <= 256.  Loads are float4 when head_dim and row_stride are
 * multiples of 4 and K and V are 16-byte aligned (VEC = 4), else scalar
 * (VEC = 1): the kernels are templates over that width. */
#include <math.h>
#include <stdint.h>

#include "kernels/cuda/cuda_int.h"

enum {
    KN_ATT_MAX_HEAD_DIM = 256,
    KN_ATT_V0_THREADS = 128, /* v0: threads per block = positions per tile */
    KN_ATT_THREADS = 128,    /* v1 kernels: four warps */
    KN_ATT_WARPS = 4,
    KN_ATT_TILE = 32,        /* v1: positions per K/V tile (one per lane) */
    KN_ATT_MIN_CHUNK = 256,  /* decode v1: fewest positions a split is given (but the last) */
    KN_ATT_MAX_GROUP = 8,    /* decode v1: query heads per block at most */
};

#define KN_LOG2E 1.4426950408889634f
#define KN_FULL_MASK 0xffffffffu

/* ---- small device helpers ------------------------------------------------------ */

/* float4 or float: the unit a kernel loads (VEC floats). */
template <int VEC> struct kn_vec;
template <> struct kn_vec<4> { typedef float4 type; };
template <> struct kn_vec<1> { typedef float type; };

__device__ __forceinline__ float vdot(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }
__device__ __forceinline__ float vdot(float a, float b) { return a * b; }

/* acc = acc * s (a rescale by the online softmax's alpha). */
__device__ __forceinline__ void vscale(float4 &acc, float s)
{
    acc.x *= s;
    acc.y *= s;
    acc.z *= s;
    acc.w *= s;
}
__device__ __forceinline__ void vscale(float &acc, float s) { acc *= s; }

/* acc += p * v */
__device__ __forceinline__ void vfma(float4 &acc, float p, float4 v)
{
    acc.x += p * v.x;
    acc.y += p * v.y;
    acc.z += p * v.z;
    acc.w += p * v.w;
}
__device__ __forceinline__ void vfma(float &acc, float p, float v) { acc += p * v; }

/* Component C of a unit, and a zero unit. */
__device__ __forceinline__ float vget(float4 v, int c) { return c == 0 ? v.x : c == 1 ? v.y : c == 2 ? v.z : v.w; }
__device__ __forceinline__ float vget(float v, int c) { (void)c; return v; }
template <typename VT> __device__ __forceinline__ VT vzero();
template <> __device__ __forceinline__ float4 vzero<float4>() { return make_float4(0.f, 0.f, 0.f, 0.f); }
template <> __device__ __forceinline__ float vzero<float>() { return 0.f; }

__device__ __forceinline__ float warp_max(float v)
{
    for (int off = 16; off > 0; off /= 2)
        v = fmaxf(v, __shfl_xor_sync(KN_FULL_MASK, v, off));
    return v;
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int off = 16; off > 0; off /= 2)
        v += __shfl_xor_sync(KN_FULL_MASK, v, off);
    return v;
}

/* Asynchronous copy of one unit (16 or 4 bytes) from global to shared
 * memory (sm_80+); VALID false writes zeros and reads nothing. */
template <int VEC> __device__ __forceinline__ void cp_async_unit(float *dst, const float *src, bool valid);
template <> __device__ __forceinline__ void cp_async_unit<4>(float *dst, const float *src, bool valid)
{
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
}
template <> __device__ __forceinline__ void cp_async_unit<1>(float *dst, const float *src, bool valid)
{
    unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/* Wait until at most one committed group of this thread is in flight. */
__device__ __forceinline__ void cp_async_wait_all_but_one() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

/* Float offset of the row that holds position P of a sequence whose block
 * table row is BT (blocks of 1 << SHIFT positions). */
__device__ __forceinline__ long long kv_row_offset(const int32_t *bt, int shift, int p, int row_stride)
{
    long long row = ((long long)bt[p >> shift] << shift) | (p & ((1 << shift) - 1));
    return row * row_stride;
}

/* ---- version 0: one block per query row ------------------------------------------ */

/* Block-wide maximum / sum of V over KN_ATT_V0_THREADS threads; RED holds
 * one float per warp.  Every thread gets the result. */
__device__ float block_max_v0(float v, float *red)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float r;

    v = warp_max(v);
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    r = red[0];
    for (int w = 1; w < KN_ATT_V0_THREADS / 32; w++)
        r = fmaxf(r, red[w]);
    __syncthreads(); /* RED is free again */
    return r;
}

__device__ float block_sum_v0(float v, float *red)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float r;

    v = warp_sum(v);
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    r = red[0];
    for (int w = 1; w < KN_ATT_V0_THREADS / 32; w++)
        r += red[w];
    __syncthreads();
    return r;
}

/* out (D) = softmax(q . K[0..n) * scale) V for one query row q (D floats)
 * of one head, K and V rows at K + kv_row_offset(...) + KV_OFF.  Positions
 * go in tiles of KN_ATT_V0_THREADS: thread t scores position p0 + t with a
 * whole dot product, then thread t accumulates output dims t and t + 128
 * over the tile.  n == 0 gives zeros. */
__device__ void attend_row_v0(float *out, const float *q, const float *k, const float *v, const int32_t *bt,
                              int shift, int row_stride, int kv_off, int n, int D, float scale_log2)
{
    __shared__ float qs[KN_ATT_MAX_HEAD_DIM];
    __shared__ float ps[KN_ATT_V0_THREADS];
    __shared__ long long rows[KN_ATT_V0_THREADS];
    __shared__ float red[KN_ATT_V0_THREADS / 32];
    const int tid = threadIdx.x;
    float acc[KN_ATT_MAX_HEAD_DIM / KN_ATT_V0_THREADS] = {0.f, 0.f};
    float m = -INFINITY, l = 0.f; /* the same in every thread */

    for (int d = tid; d < D; d += KN_ATT_V0_THREADS)
        qs[d] = q[d] * scale_log2;
    __syncthreads();
    for (int p0 = 0; p0 < n; p0 += KN_ATT_V0_THREADS) {
        const int p = p0 + tid, cnt = min(KN_ATT_V0_THREADS, n - p0);
        float sc = -INFINITY;

        if (p < n) {
            const long long off = kv_row_offset(bt, shift, p, row_stride) + kv_off;
            const float *kr = k + off;
            float dot = 0.f;

            for (int d = 0; d < D; d++)
                dot += qs[d] * kr[d];
            sc = dot;
            rows[tid] = off;
        }
        /* Position p0 is valid, so the tile maximum is finite. */
        const float m_new = fmaxf(m, block_max_v0(sc, red));
        const float alpha = exp2f(m - m_new); /* 0 on the first tile */
        const float e = exp2f(sc - m_new);    /* 0 past the end */

        ps[tid] = e;
        l = l * alpha + block_sum_v0(e, red); /* its barriers publish ps and rows */
        m = m_new;
        for (int i = 0; i < KN_ATT_MAX_HEAD_DIM / KN_ATT_V0_THREADS; i++) {
            const int d = tid + i * KN_ATT_V0_THREADS;

            if (d < D) {
                float a = acc[i] * alpha;
                for (int j = 0; j < cnt; j++)
                    a += ps[j] * v[rows[j] + d];
                acc[i] = a;
            }
        }
        __syncthreads(); /* ps and rows are rewritten by the next tile */
    }
    for (int i = 0; i < KN_ATT_MAX_HEAD_DIM / KN_ATT_V0_THREADS; i++) {
        const int d = tid + i * KN_ATT_V0_THREADS;

        if (d < D)
            out[d] = n > 0 ? acc[i] / l : 0.f;
    }
}

/* Decode v0: block x = seq * n_heads + h. */
__global__ void __launch_bounds__(KN_ATT_V0_THREADS)
decode_v0_kernel(float *out, const float *q, const float *k, const float *v, const int32_t *block_tables,
                 const int32_t *seq_lens, int max_blocks, int shift, int row_stride, int n_heads, int group, int D,
                 int max_len, float scale_log2)
{
    const int seq = blockIdx.x / n_heads, h = blockIdx.x % n_heads;
    const int n = min(max(seq_lens[seq], 0), max_len);
    const size_t row = ((size_t)seq * n_heads + h) * D;

    attend_row_v0(out + row, q + row, k, v, block_tables + (size_t)seq * max_blocks, shift, row_stride,
                  (h / group) * D, n, D, scale_log2);
}

/* Prefill v0: block x = t * n_heads + h; query t sees positions 0 .. pos0+t. */
__global__ void __launch_bounds__(KN_ATT_V0_THREADS)
prefill_v0_kernel(float *out, const float *q, const float *k, const float *v, const int32_t *bt, int shift,
                  int row_stride, int n_heads, int group, int D, int pos0, float scale_log2)
{
    const int t = blockIdx.x / n_heads, h = blockIdx.x % n_heads;
    const size_t row = ((size_t)t * n_heads + h) * D;

    attend_row_v0(out + row, q + row, k, v, bt, shift, row_stride, (h / group) * D, pos0 + t + 1, D, scale_log2);
}

/* ---- version 1: tiles of 32 positions through shared memory ---------------------- */

/* Stage the K and V rows of one tile (KN_ATT_TILE positions of one kv head)
 * into shared memory: row j at KS / VS + j * SU units (SU >= DU units of
 * VEC floats per row).  Lane j of every warp holds in ROWOFF the float
 * offset of position j's row (kv head included), or -1 past the end of the
 * keys: those rows are zero-filled.  Warp w copies rows w, w + 4, ...,
 * lanes along the row (coalesced).  Asynchronous: the caller commits and
 * waits. */
template <int VEC>
__device__ __forceinline__ void stage_tile(float *ks, float *vs, const float *k, const float *v, long long rowoff,
                                           int du, int su)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

    for (int r = warp; r < KN_ATT_TILE; r += KN_ATT_WARPS) {
        const long long off = __shfl_sync(KN_FULL_MASK, rowoff, r);
        const bool valid = off >= 0;

        for (int u = lane; u < du; u += 32) {
            const long long src = valid ? off + (long long)u * VEC : 0;

            cp_async_unit<VEC>(ks + (r * su + u) * VEC, k + src, valid);
            cp_async_unit<VEC>(vs + (r * su + u) * VEC, v + src, valid);
        }
    }
}

/* Row offset of tile T's position LANE in [B, E), or -1 outside. */
__device__ __forceinline__ long long tile_rowoff(const int32_t *bt, int shift, int row_stride, int kv_off, int b,
                                                 int e, int t)
{
    const int p = b + t * KN_ATT_TILE + (threadIdx.x & 31);

    return p < e ? kv_row_offset(bt, shift, p, row_stride) + kv_off : -1;
}

/* Shared memory of the decode v1 kernel, in floats: two stages of K and V
 * tiles, q of the block's heads, the warps' partial scores and their
 * probabilities. */
static size_t decode_v1_smem_floats(int vec, int hg, int D)
{
    const int su = (D / vec) | 1;

    return (size_t)4 * KN_ATT_TILE * su * vec + (size_t)hg * D + 2 * (size_t)KN_ATT_WARPS * KN_ATT_TILE * hg;
}

/* Decode v1, one block per (split, kv head g and head chunk hc, sequence):
 * query heads h0 .. h0+nh-1 (nh <= HG, the part of g's group that chunk hc
 * holds) against positions [b, e) of the sequence, b = split * chunk.
 *
 * Per tile of 32 positions:
 *   scores  lane j scores position j against each head; warp w sums the
 *           units [w*DU/4, (w+1)*DU/4) of the dot products, the four
 *           partial sums meet in shared memory (SP);
 *   softmax every warp then holds the full scores (lane j: position j) and
 *           updates the running max m[h] and the lanes' partial sums l[h]
 *           identically; p goes to the warp's PS;
 *   P V     warp w accumulates positions 8w .. 8w+7, lane = unit of the
 *           output row (units lane, lane + 32, ...: NU per lane), into its
 *           own acc[h]; the four warps' acc are summed at the end.
 * With one split the block writes out = acc / l; with several it writes
 * (m, l, acc) of (seq, head, split) to the workspace. */
template <int VEC, int HG, int NU>
__global__ void __launch_bounds__(KN_ATT_THREADS)
decode_v1_kernel(float *out, float *ws_acc, float *ws_m, float *ws_l, const float *q, const float *k, const float *v,
                 const int32_t *block_tables, const int32_t *seq_lens, int max_blocks, int shift, int row_stride,
                 int n_heads, int group, int n_hc, int D, int max_len, int chunk, int n_splits, float scale_log2)
{
    typedef typename kn_vec<VEC>::type VT;
    extern __shared__ float4 kn_smem4[];
    float *smem = (float *)kn_smem4;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int split = blockIdx.x, g = blockIdx.y / n_hc, hc = blockIdx.y % n_hc, seq = blockIdx.z;
    const int h0 = g * group + hc * HG, nh = min(HG, group - hc * HG);
    const int len = min(max(seq_lens[seq], 0), max_len);
    const int b = split * chunk, e = min(len, b + chunk);
    const int DU = D / VEC, SU = DU | 1; /* an odd row stride: lanes hit different banks */
    const int tile_floats = KN_ATT_TILE * SU * VEC;
    float *qs = smem + 4 * tile_floats;       /* (HG, D), scaled */
    float *sp = qs + HG * D;                  /* (warps, HG, 32) partial scores */
    float *ps = sp + KN_ATT_WARPS * HG * 32;  /* (warps, 32, HG) probabilities */
    const int32_t *bt = block_tables + (size_t)seq * max_blocks;
    const int kv_off = g * D;

    if (b >= e) {
        /* No positions here: only the direct path (one split) has to
         * write, zeros for an empty sequence. */
        if (n_splits == 1)
            for (int i = tid; i < nh * D; i += KN_ATT_THREADS)
                out[((size_t)seq * n_heads + h0) * D + i] = 0.f;
        return;
    }
    for (int i = tid; i < HG * D; i += KN_ATT_THREADS) {
        const int h = i / D;
        qs[i] = h < nh ? q[((size_t)seq * n_heads + h0) * D + i] * scale_log2 : 0.f;
    }

    const int ntiles = (e - b + KN_ATT_TILE - 1) / KN_ATT_TILE;
    const VT *qv = (const VT *)qs;
    float m[HG], l[HG];
    VT acc[HG][NU];

#pragma unroll
    for (int h = 0; h < HG; h++) {
        m[h] = -INFINITY;
        l[h] = 0.f;
#pragma unroll
        for (int i = 0; i < NU; i++)
            acc[h][i] = vzero<VT>();
    }

    long long next = tile_rowoff(bt, shift, row_stride, kv_off, b, e, 0);
    stage_tile<VEC>(smem, smem + 2 * tile_floats, k, v, next, DU, SU);
    cp_async_commit();
    next = tile_rowoff(bt, shift, row_stride, kv_off, b, e, 1);

    for (int t = 0; t < ntiles; t++) {
        const int st = t & 1;

        /* Prefetch tile t+1 into the other stage (freed by the barrier at
         * the end of iteration t-1), and look up tile t+2's rows. */
        if (t + 1 < ntiles) {
            stage_tile<VEC>(smem + (st ^ 1) * tile_floats, smem + (2 + (st ^ 1)) * tile_floats, k, v, next, DU, SU);
            next = tile_rowoff(bt, shift, row_stride, kv_off, b, e, t + 2);
        }
        cp_async_commit(); /* possibly empty: keeps the count of groups regular */
        cp_async_wait_all_but_one();
        __syncthreads(); /* tile t (and, at t = 0, qs) visible to all */

        const VT *ks = (const VT *)(smem + st * tile_floats);
        const VT *vs = (const VT *)(smem + (2 + st) * tile_floats);
        float s[HG];

        /* Partial scores: lane = position, this warp's slice of units. */
#pragma unroll
        for (int h = 0; h < HG; h++)
            s[h] = 0.f;
        for (int u = warp * DU / KN_ATT_WARPS; u < (warp + 1) * DU / KN_ATT_WARPS; u++) {
            const VT kk = ks[lane * SU + u];
#pragma unroll
            for (int h = 0; h < HG; h++)
                s[h] += vdot(qv[h * DU + u], kk);
        }
#pragma unroll
        for (int h = 0; h < HG; h++)
            sp[(warp * HG + h) * 32 + lane] = s[h];
        __syncthreads();

        /* Full scores and the online softmax, the same in every warp. */
        const bool valid = b + t * KN_ATT_TILE + lane < e;
#pragma unroll
        for (int h = 0; h < HG; h++) {
            float x = sp[(0 * HG + h) * 32 + lane] + sp[(1 * HG + h) * 32 + lane] + sp[(2 * HG + h) * 32 + lane] +
                      sp[(3 * HG + h) * 32 + lane];
            x = valid ? x : -INFINITY;
            const float m_new = fmaxf(m[h], warp_max(x)); /* finite: lane 0 is valid */
            const float alpha = exp2f(m[h] - m_new);
            const float p = exp2f(x - m_new);

            l[h] = l[h] * alpha + p;
            m[h] = m_new;
            ps[(warp * 32 + lane) * HG + h] = p;
#pragma unroll
            for (int i = 0; i < NU; i++)
                vscale(acc[h][i], alpha);
        }
        __syncwarp();

        /* P V over this warp's 8 positions; lane = unit. */
        for (int jj = 0; jj < KN_ATT_TILE / KN_ATT_WARPS; jj++) {
            const int j = warp * (KN_ATT_TILE / KN_ATT_WARPS) + jj;
            float pj[HG];

#pragma unroll
            for (int h = 0; h < HG; h++)
                pj[h] = ps[(warp * 32 + j) * HG + h];
#pragma unroll
            for (int i = 0; i < NU; i++) {
                const int u = lane + 32 * i;
                if (u < DU) {
                    const VT vv = vs[j * SU + u];
#pragma unroll
                    for (int h = 0; h < HG; h++)
                        vfma(acc[h][i], pj[h], vv);
                }
            }
        }
        __syncthreads(); /* the stage, SP and PS are reused */
    }

    /* Merge the warps: l per lane -> per warp (all warps hold the same l
     * and m); acc summed over warps through the (now idle) K stages. */
    VT *red = (VT *)smem; /* (warps, HG, DU) units: 4*HG*D <= 2*tile_floats floats */
    float *lm = sp;       /* l[h], m[h] for h < HG */
#pragma unroll
    for (int h = 0; h < HG; h++) {
        const float lt = warp_sum(l[h]);
        if (warp == 0 && lane == 0) {
            lm[h] = lt;
            lm[HG + h] = m[h];
        }
#pragma unroll
        for (int i = 0; i < NU; i++) {
            const int u = lane + 32 * i;
            if (u < DU)
                red[(warp * HG + h) * DU + u] = acc[h][i];
        }
    }
    __syncthreads();

    const float *redf = smem;
    for (int i = tid; i < nh * D; i += KN_ATT_THREADS) {
        const int h = i / D;
        const float a = redf[(0 * HG + h) * D + i % D] + redf[(1 * HG + h) * D + i % D] +
                        redf[(2 * HG + h) * D + i % D] + redf[(3 * HG + h) * D + i % D];

        if (n_splits == 1) {
            out[((size_t)seq * n_heads + h0) * D + i] = a / lm[h];
        } else {
            const size_t w = ((size_t)seq * n_heads + h0 + h) * n_splits + split;

            ws_acc[w * D + i % D] = a;
            if (i % D == 0) {
                ws_l[w] = lm[h];
                ws_m[w] = lm[HG + h];
            }
        }
    }
}

/* Merge the splits of decode v1: block x = seq * n_heads + h; out =
 * sum_s 2^(m_s - M) acc_s / sum_s 2^(m_s - M) l_s over the sequence's
 * non-empty splits (M their largest m); zeros for an empty sequence. */
__global__ void __launch_bounds__(KN_ATT_THREADS)
decode_reduce_kernel(float *out, const float *ws_acc, const float *ws_m, const float *ws_l, const int32_t *seq_lens,
                     int n_heads, int D, int max_len, int chunk, int n_splits)
{
    const int seq = blockIdx.x / n_heads;
    const int len = min(max(seq_lens[seq], 0), max_len);
    const int ns = (len + chunk - 1) / chunk; /* every one of them non-empty */
    const size_t base = (size_t)blockIdx.x * n_splits;
    float M = -INFINITY, den = 0.f;

    for (int s = 0; s < ns; s++)
        M = fmaxf(M, ws_m[base + s]);
    for (int s = 0; s < ns; s++)
        den += exp2f(ws_m[base + s] - M) * ws_l[base + s];
    for (int d = threadIdx.x; d < D; d += KN_ATT_THREADS) {
        float num = 0.f;

        for (int s = 0; s < ns; s++)
            num += exp2f(ws_m[base + s] - M) * ws_acc[(base + s) * D + d];
        out[(size_t)blockIdx.x * D + d] = ns > 0 ? num / den : 0.f;
    }
}

/* Shared memory of prefill v1, in floats: the query tile (BM rows), two
 * stages of K and V tiles, and the probabilities (BM x 33). */
static size_t prefill_v1_smem_floats(int vec, int rt, int D)
{
    const int su = (D / vec) | 1, bm = 16 * rt;

    return (size_t)bm * su * vec + (size_t)4 * KN_ATT_TILE * su * vec + (size_t)bm * (KN_ATT_TILE + 1);
}

/* Prefill v1: block (query tile, head h) computes queries [t0, t0 + BM) of
 * head h, BM = 16 * RT, the heaviest (last) tiles first.  Thread (rg =
 * tid / 8, cg = tid % 8) owns query rows rg*RT .. rg*RT+RT-1 of the tile:
 *   scores  of keys cg, cg+8, cg+16, cg+24 of the K tile (RT x 4 values);
 *           the row's max and sum are reduced over the 8 threads of rg
 *           (consecutive lanes of one warp);
 *   P V     output units cg, cg+8, ... (NU of them) of its rows.
 * Query t (absolute position pos0 + t) sees keys 0 .. pos0 + t; the rows
 * past T in the last tile are computed as if they were query T-1 and not
 * written. */
template <int VEC, int RT, int NU>
__global__ void __launch_bounds__(KN_ATT_THREADS)
prefill_v1_kernel(float *out, const float *q, const float *k, const float *v, const int32_t *bt, int shift,
                  int row_stride, int n_heads, int group, int D, int T, int pos0, float scale_log2)
{
    typedef typename kn_vec<VEC>::type VT;
    enum { BM = 16 * RT, PLD = KN_ATT_TILE + 1 };
    extern __shared__ float4 kn_smem4[];
    float *smem = (float *)kn_smem4;
    const int tid = threadIdx.x, rg = tid >> 3, cg = tid & 7;
    const int t0 = (gridDim.x - 1 - blockIdx.x) * BM, h = blockIdx.y;
    const int DU = D / VEC, SU = DU | 1;
    const int tile_floats = KN_ATT_TILE * SU * VEC;
    float *qsf = smem;                       /* (BM, SU units) */
    float *kv = qsf + BM * SU * VEC;         /* K stage 0, K stage 1, V stage 0, V stage 1 */
    float *pb = kv + 4 * tile_floats;        /* (BM, PLD) probabilities */
    const int kv_off = (h / group) * D;
    const int n_keys = pos0 + min(t0 + BM, T); /* keys any row of the tile sees */
    const int ntiles = (n_keys + KN_ATT_TILE - 1) / KN_ATT_TILE;

    for (int i = tid; i < BM * D; i += KN_ATT_THREADS) {
        const int r = i / D, d = i % D;
        qsf[r * SU * VEC + d] = t0 + r < T ? q[((size_t)(t0 + r) * n_heads + h) * D + d] * scale_log2 : 0.f;
    }

    const VT *qs = (const VT *)qsf;
    float m[RT], l[RT];
    VT o[RT][NU];
    int last[RT]; /* the last key each row sees */

#pragma unroll
    for (int i = 0; i < RT; i++) {
        m[i] = -INFINITY;
        l[i] = 0.f;
        last[i] = pos0 + min(t0 + rg * RT + i, T - 1);
#pragma unroll
        for (int j = 0; j < NU; j++)
            o[i][j] = vzero<VT>();
    }

    long long next = tile_rowoff(bt, shift, row_stride, kv_off, 0, n_keys, 0);
    stage_tile<VEC>(kv, kv + 2 * tile_floats, k, v, next, DU, SU);
    cp_async_commit();
    next = tile_rowoff(bt, shift, row_stride, kv_off, 0, n_keys, 1);

    for (int t = 0; t < ntiles; t++) {
        const int st = t & 1, k0 = t * KN_ATT_TILE;

        if (t + 1 < ntiles) {
            stage_tile<VEC>(kv + (st ^ 1) * tile_floats, kv + (2 + (st ^ 1)) * tile_floats, k, v, next, DU, SU);
            next = tile_rowoff(bt, shift, row_stride, kv_off, 0, n_keys, t + 2);
        }
        cp_async_commit();
        cp_async_wait_all_but_one();
        __syncthreads();

        const VT *ks = (const VT *)(kv + st * tile_floats);
        const VT *vs = (const VT *)(kv + (2 + st) * tile_floats);
        float sc[RT][4];

#pragma unroll
        for (int i = 0; i < RT; i++)
#pragma unroll
            for (int c = 0; c < 4; c++)
                sc[i][c] = 0.f;
        for (int u = 0; u < DU; u++) {
            VT kk[4];
#pragma unroll
            for (int c = 0; c < 4; c++)
                kk[c] = ks[(cg + 8 * c) * SU + u];
#pragma unroll
            for (int i = 0; i < RT; i++) {
                const VT qq = qs[(rg * RT + i) * SU + u];
#pragma unroll
                for (int c = 0; c < 4; c++)
                    sc[i][c] += vdot(qq, kk[c]);
            }
        }

        /* Causal mask, online softmax per row over the 8 threads of rg. */
#pragma unroll
        for (int i = 0; i < RT; i++) {
            float mx = -INFINITY, sum = 0.f;

#pragma unroll
            for (int c = 0; c < 4; c++) {
                if (k0 + cg + 8 * c > last[i])
                    sc[i][c] = -INFINITY;
                mx = fmaxf(mx, sc[i][c]);
            }
            mx = fmaxf(mx, __shfl_xor_sync(KN_FULL_MASK, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(KN_FULL_MASK, mx, 2));
            mx = fmaxf(mx, __shfl_xor_sync(KN_FULL_MASK, mx, 4));
            const float m_new = fmaxf(m[i], mx);
            /* Key 0 is in the first tile and every row sees it, so m_new is
             * finite; the guard keeps a NaN out should that ever change. */
            const float m_use = m_new == -INFINITY ? 0.f : m_new;
            const float alpha = exp2f(m[i] - m_use);

#pragma unroll
            for (int c = 0; c < 4; c++) {
                const float p = exp2f(sc[i][c] - m_use);
                pb[(rg * RT + i) * PLD + cg + 8 * c] = p;
                sum += p;
            }
            l[i] = l[i] * alpha + sum;
            m[i] = m_new;
#pragma unroll
            for (int j = 0; j < NU; j++)
                vscale(o[i][j], alpha);
        }
        __syncwarp(); /* rg's rows of PB are written and read by its 8 lanes */

        for (int j = 0; j < KN_ATT_TILE; j++) {
            VT vv[NU];
#pragma unroll
            for (int n = 0; n < NU; n++) {
                const int u = cg + 8 * n;
                vv[n] = u < DU ? vs[j * SU + u] : vzero<VT>();
            }
#pragma unroll
            for (int i = 0; i < RT; i++) {
                const float p = pb[(rg * RT + i) * PLD + j];
#pragma unroll
                for (int n = 0; n < NU; n++)
                    vfma(o[i][n], p, vv[n]);
            }
        }
        __syncthreads(); /* the stage is refilled next iteration */
    }

#pragma unroll
    for (int i = 0; i < RT; i++) {
        float lt = l[i];
        lt += __shfl_xor_sync(KN_FULL_MASK, lt, 1);
        lt += __shfl_xor_sync(KN_FULL_MASK, lt, 2);
        lt += __shfl_xor_sync(KN_FULL_MASK, lt, 4);
        const int t = t0 + rg * RT + i;
        if (t < T) {
            float *orow = out + ((size_t)t * n_heads + h) * D;
            const float inv = 1.f / lt;
#pragma unroll
            for (int n = 0; n < NU; n++) {
                const int u = cg + 8 * n;
                if (u < DU)
#pragma unroll
                    for (int c = 0; c < VEC; c++)
                        orow[u * VEC + c] = vget(o[i][n], c) * inv;
            }
        }
    }
}

/* ---- host side ------------------------------------------------------------------ */

/* Check a shape and a cache; set *SHIFT = log2(block_size) and *VEC to the
 * load width K and V allow.  0, or -1 with the error set. */
static int att_check(const struct kn_cuda_paged_kv *kv, const struct kn_attn_shape *s, int *shift, int *vec)
{
    if (kv == NULL || s == NULL || kv->k == NULL || kv->v == NULL || kv->block_tables == NULL)
        return kn_cuda_set_error("attention: NULL cache or shape");
    if (s->n_heads < 1 || s->n_kv_heads < 1 || s->n_heads % s->n_kv_heads != 0)
        return kn_cuda_set_error("attention: %d heads do not split into %d kv heads", s->n_heads, s->n_kv_heads);
    if (s->head_dim < 1 || s->head_dim > KN_ATT_MAX_HEAD_DIM)
        return kn_cuda_set_error("attention: head_dim %d not in [1, %d]", s->head_dim, KN_ATT_MAX_HEAD_DIM);
    if (kv->row_stride < s->n_kv_heads * s->head_dim)
        return kn_cuda_set_error("attention: row_stride %d < n_kv_heads * head_dim %d", kv->row_stride,
                                 s->n_kv_heads * s->head_dim);
    if (kv->block_size < 1 || (kv->block_size & (kv->block_size - 1)) != 0)
        return kn_cuda_set_error("attention: block_size %d is not a power of two", kv->block_size);
    if (kv->max_blocks < 1)
        return kn_cuda_set_error("attention: max_blocks %d < 1", kv->max_blocks);
    for (*shift = 0; (1 << *shift) < kv->block_size; (*shift)++)
        ;
    *vec = s->head_dim % 4 == 0 && kv->row_stride % 4 == 0 && (uintptr_t)kv->k % 16 == 0 &&
                   (uintptr_t)kv->v % 16 == 0
               ? 4
               : 1;
    return 0;
}

/* Streaming multiprocessors of the current device (cached per device). */
static int att_sm_count(void)
{
    static int cached_dev = -1, sms = 0;
    int dev = 0;

    if (cudaGetDevice(&dev) != cudaSuccess)
        dev = 0;
    if (dev != cached_dev) {
        if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || sms < 1)
            sms = 1;
        cached_dev = dev;
    }
    return sms;
}

/* Shared memory a block may opt in to on the current device, bytes (cached
 * per device): 227 KiB on H100, 163 KiB on A100, 99 KiB on sm_86/89. */
static size_t att_smem_optin(void)
{
    static int cached_dev = -1, bytes = 0;
    int dev = 0;

    if (cudaGetDevice(&dev) != cudaSuccess)
        dev = 0;
    if (dev != cached_dev) {
        if (cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess || bytes < 1)
            bytes = 48 * 1024;
        cached_dev = dev;
    }
    return (size_t)bytes;
}

/* Splits decode v1 may use at most for contexts up to MAX_LEN (the
 * workspace is sized for it). */
static int decode_max_splits(int max_len)
{
    return max_len <= KN_ATT_MIN_CHUNK ? 1 : (max_len + KN_ATT_MIN_CHUNK - 1) / KN_ATT_MIN_CHUNK;
}

/* Query heads per decode v1 block for a group of GROUP: a power of two up
 * to KN_ATT_MAX_GROUP. */
static int decode_heads_per_block(int group)
{
    int hg = 1;

    while (hg < group && hg < KN_ATT_MAX_GROUP)
        hg *= 2;
    return hg;
}

extern "C" size_t kn_cuda_decode_workspace_bytes(int n_seqs, int max_len, const struct kn_attn_shape *s)
{
    const int ns = decode_max_splits(max_len);

    if (ns <= 1 || n_seqs < 1 || s == NULL || s->n_heads < 1 || s->head_dim < 1)
        return 0;
    /* acc (head_dim floats), m and l per (seq, head, split) */
    return (size_t)n_seqs * s->n_heads * ns * ((size_t)s->head_dim + 2) * sizeof(float);
}

/* Launch decode v1 for one (VEC, HG, NU). */
template <int VEC, int HG, int NU>
static int decode_v1_launch(float *out, float *ws, const float *q, const struct kn_cuda_paged_kv *kv, int n_seqs,
                            int max_len, const struct kn_attn_shape *s, int shift, float scale_log2)
{
    const int group = s->n_heads / s->n_kv_heads, n_hc = (group + HG - 1) / HG, D = s->head_dim;
    const size_t smem = decode_v1_smem_floats(VEC, HG, D) * sizeof(float);
    const int base_blocks = n_seqs * s->n_kv_heads * n_hc;
    /* Enough blocks to fill the device about four times over, each split
     * at least KN_ATT_MIN_CHUNK positions (as the workspace assumes), a
     * whole number of tiles. */
    int want = KN_CDIV(4 * att_sm_count(), base_blocks);
    want = want < decode_max_splits(max_len) ? want : decode_max_splits(max_len);
    if (want < 1)
        want = 1;
    const int chunk = KN_CDIV(KN_CDIV(max_len > 0 ? max_len : 1, want), KN_ATT_TILE) * KN_ATT_TILE;
    const int n_splits = KN_CDIV(max_len > 0 ? max_len : 1, chunk);
    const size_t parts = (size_t)n_seqs * s->n_heads * n_splits;
    float *ws_acc = ws, *ws_m = ws + parts * D, *ws_l = ws_m + parts;

    if (n_splits > 1 && ws == NULL)
        return kn_cuda_set_error("attention decode: NULL workspace (%zu bytes needed)",
                                 kn_cuda_decode_workspace_bytes(n_seqs, max_len, s));
    if (smem > att_smem_optin())
        return kn_cuda_set_error("attention decode v1: head_dim %d needs %zu bytes of shared memory, the device "
                                 "allows %zu (use version 0)",
                                 D, smem, att_smem_optin());
    KN_CUDA_TRY(cudaFuncSetAttribute(decode_v1_kernel<VEC, HG, NU>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)smem));
    dim3 grid(n_splits, s->n_kv_heads * n_hc, n_seqs);
    decode_v1_kernel<VEC, HG, NU><<<grid, KN_ATT_THREADS, smem>>>(
        out, ws_acc, ws_m, ws_l, q, kv->k, kv->v, kv->block_tables, kv->seq_lens, kv->max_blocks, shift,
        kv->row_stride, s->n_heads, group, n_hc, D, max_len, chunk, n_splits, scale_log2);
    KN_CUDA_CHECK_LAUNCH();
    if (n_splits > 1) {
        decode_reduce_kernel<<<n_seqs * s->n_heads, KN_ATT_THREADS>>>(out, ws_acc, ws_m, ws_l, kv->seq_lens,
                                                                       s->n_heads, D, max_len, chunk, n_splits);
        KN_CUDA_CHECK_LAUNCH();
    }
    return 0;
}

/* Decode v1 for a group size: HG the power of two above it (up to 8). */
template <int VEC, int NU>
static int decode_v1_heads(float *out, float *ws, const float *q, const struct kn_cuda_paged_kv *kv, int n_seqs,
                           int max_len, const struct kn_attn_shape *s, int shift, float scale_log2)
{
    switch (decode_heads_per_block(s->n_heads / s->n_kv_heads)) {
    case 1: return decode_v1_launch<VEC, 1, NU>(out, ws, q, kv, n_seqs, max_len, s, shift, scale_log2);
    case 2: return decode_v1_launch<VEC, 2, NU>(out, ws, q, kv, n_seqs, max_len, s, shift, scale_log2);
    case 4: return decode_v1_launch<VEC, 4, NU>(out, ws, q, kv, n_seqs, max_len, s, shift, scale_log2);
    default: return decode_v1_launch<VEC, 8, NU>(out, ws, q, kv, n_seqs, max_len, s, shift, scale_log2);
    }
}

extern "C" int kn_cuda_attention_decode(int version, float *out, const float *q, const struct kn_cuda_paged_kv *kv,
                                        int n_seqs, int max_len, const struct kn_attn_shape *s, void *workspace)
{
    int ver = kn_cuda_resolve_version(KN_CUDA_OP_DECODE, version), shift, vec;

    if (ver < 0 || att_check(kv, s, &shift, &vec) != 0)
        return -1;
    if (kv->seq_lens == NULL || out == NULL || q == NULL)
        return kn_cuda_set_error("attention decode: NULL seq_lens, out or q");
    if (n_seqs < 0 || max_len < 0)
        return kn_cuda_set_error("attention decode: n_seqs %d, max_len %d", n_seqs, max_len);
    if (n_seqs == 0)
        return 0;
    const float scale_log2 = KN_LOG2E / sqrtf((float)s->head_dim);

    /* The default falls back to v0 where v1's tiles do not fit in shared
     * memory (head_dim 256 on a 99 KiB device). */
    if (version == KN_CUDA_DEFAULT &&
        decode_v1_smem_floats(vec, decode_heads_per_block(s->n_heads / s->n_kv_heads), s->head_dim) *
                sizeof(float) >
            att_smem_optin())
        ver = 0;
    if (ver == 0) {
        if ((long long)n_seqs * s->n_heads > 0x7fffffffLL)
            return kn_cuda_set_error("attention decode: %d x %d rows is too many", n_seqs, s->n_heads);
        decode_v0_kernel<<<n_seqs * s->n_heads, KN_ATT_V0_THREADS>>>(
            out, q, kv->k, kv->v, kv->block_tables, kv->seq_lens, kv->max_blocks, shift, kv->row_stride, s->n_heads,
            s->n_heads / s->n_kv_heads, s->head_dim, max_len, scale_log2);
        KN_CUDA_CHECK_LAUNCH();
        return 0;
    }
    if (n_seqs > 65535)
        return kn_cuda_set_error("attention decode v1: %d sequences > 65535", n_seqs);
    float *ws = (float *)workspace;
    if (vec == 4)
        return s->head_dim <= 128 ? decode_v1_heads<4, 1>(out, ws, q, kv, n_seqs, max_len, s, shift, scale_log2)
                                  : decode_v1_heads<4, 2>(out, ws, q, kv, n_seqs, max_len, s, shift, scale_log2);
    return decode_v1_heads<1, 8>(out, ws, q, kv, n_seqs, max_len, s, shift, scale_log2);
}

/* Launch prefill v1 for one (VEC, RT, NU). */
template <int VEC, int RT, int NU>
static int prefill_v1_launch(float *out, const float *q, const struct kn_cuda_paged_kv *kv, const int32_t *bt,
                             int shift, int T, int pos0, const struct kn_attn_shape *s, float scale_log2)
{
    const size_t smem = prefill_v1_smem_floats(VEC, RT, s->head_dim) * sizeof(float);

    KN_CUDA_TRY(cudaFuncSetAttribute(prefill_v1_kernel<VEC, RT, NU>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)smem));
    dim3 grid(KN_CDIV(T, 16 * RT), s->n_heads);
    prefill_v1_kernel<VEC, RT, NU><<<grid, KN_ATT_THREADS, smem>>>(out, q, kv->k, kv->v, bt, shift, kv->row_stride,
                                                                   s->n_heads, s->n_heads / s->n_kv_heads,
                                                                   s->head_dim, T, pos0, scale_log2);
    KN_CUDA_CHECK_LAUNCH();
    return 0;
}

/* Prefill v1 with the most rows per thread, up to MAX_RT, whose shared
 * memory the device allows (the query tile shrinks with RT). */
template <int VEC, int MAX_RT, int NU>
static int prefill_v1_fit(float *out, const float *q, const struct kn_cuda_paged_kv *kv, const int32_t *bt, int shift,
                          int T, int pos0, const struct kn_attn_shape *s, float scale_log2)
{
    const size_t optin = att_smem_optin(), per_float = sizeof(float);

    if constexpr (MAX_RT >= 4)
        if (prefill_v1_smem_floats(VEC, 4, s->head_dim) * per_float <= optin)
            return prefill_v1_launch<VEC, 4, NU>(out, q, kv, bt, shift, T, pos0, s, scale_log2);
    if constexpr (MAX_RT >= 2)
        if (prefill_v1_smem_floats(VEC, 2, s->head_dim) * per_float <= optin)
            return prefill_v1_launch<VEC, 2, NU>(out, q, kv, bt, shift, T, pos0, s, scale_log2);
    if (prefill_v1_smem_floats(VEC, 1, s->head_dim) * per_float <= optin)
        return prefill_v1_launch<VEC, 1, NU>(out, q, kv, bt, shift, T, pos0, s, scale_log2);
    return kn_cuda_set_error("attention prefill v1: head_dim %d needs %zu bytes of shared memory, the device allows "
                             "%zu (use version 0)",
                             s->head_dim, prefill_v1_smem_floats(VEC, 1, s->head_dim) * per_float, optin);
}

extern "C" int kn_cuda_attention_prefill(int version, float *out, const float *q, const struct kn_cuda_paged_kv *kv,
                                         int seq, int T, int pos0, const struct kn_attn_shape *s)
{
    int ver = kn_cuda_resolve_version(KN_CUDA_OP_PREFILL, version), shift, vec;

    if (ver < 0 || att_check(kv, s, &shift, &vec) != 0)
        return -1;
    if (out == NULL || q == NULL)
        return kn_cuda_set_error("attention prefill: NULL out or q");
    if (seq < 0 || T < 0 || pos0 < 0 || (long long)pos0 + T > 0x7fffffffLL)
        return kn_cuda_set_error("attention prefill: seq %d, T %d, pos0 %d", seq, T, pos0);
    if (T == 0)
        return 0;
    if (s->n_heads > 65535)
        return kn_cuda_set_error("attention prefill: %d heads > 65535", s->n_heads);
    const int32_t *bt = kv->block_tables + (size_t)seq * kv->max_blocks;
    const float scale_log2 = KN_LOG2E / sqrtf((float)s->head_dim);
    const int D = s->head_dim;

    if (version == KN_CUDA_DEFAULT && prefill_v1_smem_floats(vec, 1, D) * sizeof(float) > att_smem_optin())
        ver = 0; /* as decode */
    if (ver == 0) {
        if ((long long)T * s->n_heads > 0x7fffffffLL)
            return kn_cuda_set_error("attention prefill: %d x %d rows is too many", T, s->n_heads);
        prefill_v0_kernel<<<T * s->n_heads, KN_ATT_V0_THREADS>>>(out, q, kv->k, kv->v, bt, shift, kv->row_stride,
                                                                 s->n_heads, s->n_heads / s->n_kv_heads, D, pos0,
                                                                 scale_log2);
        KN_CUDA_CHECK_LAUNCH();
        return 0;
    }
    /* Units per thread row NU = ceil(D / VEC / 8); rows per thread RT so
     * that RT * NU * VEC (the output registers) stays at 64 or less, and
     * the shared memory within the device's limit. */
    if (vec == 4) {
        if (D <= 64)
            return prefill_v1_fit<4, 4, 2>(out, q, kv, bt, shift, T, pos0, s, scale_log2);
        if (D <= 128)
            return prefill_v1_fit<4, 4, 4>(out, q, kv, bt, shift, T, pos0, s, scale_log2);
        return prefill_v1_fit<4, 2, 8>(out, q, kv, bt, shift, T, pos0, s, scale_log2);
    }
    if (D <= 128)
        return prefill_v1_fit<1, 4, 16>(out, q, kv, bt, shift, T, pos0, s, scale_log2);
    return prefill_v1_fit<1, 2, 32>(out, q, kv, bt, shift, T, pos0, s, scale_log2);
}

/* ---- version tables ------------------------------------------------------------ */

static const char *const decode_names[] = {
    "v0 block per head, whole context",
    "v1 split-KV, GQA groups, cp.async tiles",
};

/* cp.async needs sm_80, which every architecture built for has. */
static int decode_default(int sm_major, int sm_minor)
{
    (void)sm_minor;
    return sm_major >= 8 ? 1 : 0;
}

extern "C" const struct kn_cuda_op_table kn_cuda_table_decode = {2, decode_names, decode_default};

static const char *const prefill_names[] = {
    "v0 block per query row",
    "v1 query tiles, K/V tiles in shared memory, online softmax",
};

static int prefill_default(int sm_major, int sm_minor)
{
    (void)sm_minor;
    return sm_major >= 8 ? 1 : 0;
}

extern "C" const struct kn_cuda_op_table kn_cuda_table_prefill = {2, prefill_names, prefill_default};
