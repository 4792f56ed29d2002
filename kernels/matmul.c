/* matmul.c -- out (m, n) = x (m, k) W^T: the reference loops, the dispatch
 * on the weights' dtype, and the fast f32 path.
 *
 * The f32 path has two shapes:
 *  - small m (m < KN_GEMV_MAX_M: decode, small batches): memory-bound GEMV.
 *    W is streamed once, rows split across threads; each group of 4 rows of
 *    W is used for all m rows of x (two at a time) while it sits in cache.
 *  - larger m (prefill, batches): a GotoBLAS/BLIS-style cache-blocked GEMM.
 *    Loops jc (NC rows of W) > pc (KC along k) > ic (MC rows of x) > jr (NR)
 *    > ir (MR), with a W block (KC, NC) packed into panels of NR rows and an
 *    x block (MC, KC) packed into panels of MR rows.  A (KC, NR) panel of W
 *    (24 KiB) stays in L1 while the (MC, KC) x block (180 KiB) stays in L2;
 *    the (KC, NC) W block (3 MiB per thread) lives in L3.
 *    Threads each take a rectangle of out (n split, or m when n is small) and
 *    run the whole blocked loop on it with their own packing buffers.
 * The MR x NR micro-kernel is AVX-512F (matmul_avx512.c: 12 x 32, KC 192),
 * AVX2+FMA (matmul_avx2.c: 6 x 16) or portable C (6 x 16); each kernel set
 * (struct kn_gemm_impl) names its tile and KC, and the driver follows it. */
#include "kernels/matmul_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Blocking (chosen by measurement on a 2-core Zen 3: 32 KiB L1d and 512 KiB
 * L2 per core, 32 MiB L3; KC is the AVX2 and portable kernels' value, each
 * kn_gemm_impl names its own).  MC is a multiple of every MR, NC of every NR. */
#define KN_GEMM_KC 384
#define KN_GEMM_MC 120
#define KN_GEMM_NC 2048
_Static_assert(KN_GEMM_MC % KN_GEMM_MR == 0 && KN_GEMM_MC % KN_GEMM_MR_MAX == 0, "MC: a multiple of every MR");
_Static_assert(KN_GEMM_NC % KN_GEMM_NR == 0 && KN_GEMM_NC % KN_GEMM_NR_MAX == 0, "NC: a multiple of every NR");

/* Below this m the GEMV path (no packing, W streamed once) is faster:
 * measured on 4096x4096 weights (the GEMV path wins to m = 32, since
 * packing W costs as much as streaming it twice) and on 512x512 (cache
 * resident: the two are even at m = 24 and the GEMM path wins beyond). */
#define KN_GEMV_MAX_M 24

/* The GEMV path hands out rows of W in chunks of at least this many. */
#define KN_GEMV_MIN_CHUNK 64

/* Below this many multiply-adds one thread is faster than waking others. */
#define KN_MIN_PARALLEL_MACS 65536.0

/* ---- reference -------------------------------------------------------------- */

/* out (m, n) = x (m, k) W^T for any dtype, one dot product at a time,
 * summed in float (as llama2.c).  x is (m, k), W is (n, k), out is (m, n). */
void kn_matmul_ref(float *out, const float *x, const struct kn_weights *w, int m)
{
    int n = w->n, k = w->k;

    assert(out != NULL && x != NULL && w != NULL && m >= 0);
    for (int r = 0; r < m; r++) {
        for (int i = 0; i < n; i++) {
            float val = 0.0f;
            for (int j = 0; j < k; j++)
                val += x[(size_t)r * k + j] * kn_weight_at(w, (size_t)i * k + j);
            out[(size_t)r * n + i] = val;
        }
    }
}

/* ---- dispatch ----------------------------------------------------------------- */

/* out (m, n) = x (m, k) W^T with the fastest kernel for w->dtype. */
void kn_matmul(float *out, const float *x, const struct kn_weights *w, int m)
{
    assert(out != NULL && x != NULL && w != NULL && m >= 0);
    switch (w->dtype) {
    case KN_BF16:
        kn_matmul_bf16(out, x, w, m);
        break;
    case KN_Q8:
        kn_matmul_q8(out, x, w, m);
        break;
    case KN_F32:
    default:
        kn_matmul_f32(out, x, w, m);
        break;
    }
}

/* ---- portable kernels ------------------------------------------------------------ */

/* out[i] = dot(W[i, :], x) for rows i0 <= i < i1; W is (n, k), x is (k).
 * Eight partial sums so the compiler can vectorise and pipeline. */
static void kn_gemv_portable(float *out, const float *x, const float *w, int k, int i0, int i1)
{
    for (int i = i0; i < i1; i++) {
        const float *wi = w + (size_t)i * k;
        float s[8] = {0};
        int j = 0;
        for (; j + 8 <= k; j += 8)
            for (int l = 0; l < 8; l++)
                s[l] += wi[j + l] * x[j + l];
        float sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
        for (; j < k; j++)
            sum += wi[j] * x[j];
        out[i] = sum;
    }
}

/* The portable micro-kernel: c (MR, NR; row stride ldc) = (accumulate ? c :
 * 0) + a^T b, with a packed (kc, MR) and b packed (kc, NR). */
static void kn_gemm_ukr_portable(int kc, const float *a, const float *b, float *c, int ldc, int accumulate)
{
    float t[KN_GEMM_MR][KN_GEMM_NR] = {{0}};

    for (int p = 0; p < kc; p++) {
        for (int i = 0; i < KN_GEMM_MR; i++) {
            float ai = a[p * KN_GEMM_MR + i];
            for (int j = 0; j < KN_GEMM_NR; j++)
                t[i][j] += ai * b[p * KN_GEMM_NR + j];
        }
    }
    for (int i = 0; i < KN_GEMM_MR; i++)
        for (int j = 0; j < KN_GEMM_NR; j++)
            c[(size_t)i * ldc + j] = (accumulate ? c[(size_t)i * ldc + j] : 0.0f) + t[i][j];
}

/* ---- GEMV (small m) ----------------------------------------------------------------- */

/* The GEMV kernels of each ISA (struct kn_gemv_impl, matmul_int.h). */
static const struct kn_gemv_impl kn_gemv_portable_impl = {.gemv = kn_gemv_portable};
static const struct kn_gemv_impl kn_gemv_avx2_impl = {
    .gemv = kn_gemv_avx2, .gemv2 = kn_gemv2_avx2, .gemv4 = kn_gemv4_avx2};

/* Rows i0 <= i < i1 of out (m, n) = x (m, k) W^T, W (n, k): each block of
 * 6 rows of W (4 without gemv4) serves all m rows of x (four or two at a
 * time when the ISA can) before the next block is read, so W is streamed
 * from memory once, and a block (18 KiB at k = 768) stays in L1 while the
 * rows of x pass. */
static void kn_gemv_rows(const struct kn_gemv_impl *impl, float *out, const float *x, const float *w, int m,
                         int n, int k, int i0, int i1)
{
    int block = impl->gemv4 != NULL && m >= 4 ? 6 : 4;

    if (m == 1) {
        impl->gemv(out, x, w, k, i0, i1);
        return;
    }
    for (int i = i0; i < i1; i += block) {
        int ie = i + block < i1 ? i + block : i1;
        int r = 0;
        if (impl->gemv4 != NULL)
            for (; r + 4 <= m; r += 4)
                impl->gemv4(out + (size_t)r * n, n, x + (size_t)r * k, k, w, k, n, i, ie);
        if (impl->gemv2 != NULL)
            for (; r + 2 <= m; r += 2)
                impl->gemv2(out + (size_t)r * n, out + (size_t)(r + 1) * n, x + (size_t)r * k,
                            x + (size_t)(r + 1) * k, w, k, i, ie);
        for (; r < m; r++)
            impl->gemv(out + (size_t)r * n, x + (size_t)r * k, w, k, i, ie);
    }
}

/* ---- GEMM (larger m) --------------------------------------------------------------- */

/* Round x up to a multiple of q. */
static int kn_round_up(int x, int q)
{
    return (x + q - 1) / q * q;
}

/* Pack the W block rows j0 .. j0+nc-1, columns p0 .. p0+kc-1 (W is (n, k))
 * into panels of NR rows: panel q holds bp[q*kc*NR + p*NR + jj] =
 * W[j0 + q*NR + jj][p0 + p], zero past row j0+nc-1. */
static void kn_pack_w_portable(float *bp, const float *w, int k, int j0, int nc, int p0, int kc)
{
    for (int jp = 0; jp < nc; jp += KN_GEMM_NR) {
        float *panel = bp + (size_t)jp * kc;
        int rows = nc - jp < KN_GEMM_NR ? nc - jp : KN_GEMM_NR;
        const float *src = w + (size_t)(j0 + jp) * k + p0;
        for (int p = 0; p < kc; p++)
            for (int jj = 0; jj < KN_GEMM_NR; jj++)
                panel[(size_t)p * KN_GEMM_NR + jj] = jj < rows ? src[(size_t)jj * k + p] : 0.0f;
    }
}

/* Pack the x block rows i0 .. i0+mc-1, columns p0 .. p0+kc-1 (x is (m, k))
 * into panels of MR rows: ap[q*kc*MR + p*MR + ii] = x[i0 + q*MR + ii][p0 + p],
 * zero past row i0+mc-1. */
static void kn_pack_x_portable(float *ap, const float *x, int k, int i0, int mc, int p0, int kc)
{
    for (int ip = 0; ip < mc; ip += KN_GEMM_MR) {
        float *panel = ap + (size_t)ip * kc;
        int rows = mc - ip < KN_GEMM_MR ? mc - ip : KN_GEMM_MR;
        const float *src = x + (size_t)(i0 + ip) * k + p0;
        for (int p = 0; p < kc; p++)
            for (int ii = 0; ii < KN_GEMM_MR; ii++)
                panel[(size_t)p * KN_GEMM_MR + ii] = ii < rows ? src[(size_t)ii * k + p] : 0.0f;
    }
}

/* The GEMM kernels of each ISA (struct kn_gemm_impl, matmul_int.h). */
static const struct kn_gemm_impl kn_gemm_portable = {
    .mr = KN_GEMM_MR,
    .nr = KN_GEMM_NR,
    .kc = KN_GEMM_KC,
    .ukr = kn_gemm_ukr_portable,
    .pack_w = kn_pack_w_portable,
    .pack_x = kn_pack_x_portable,
};

static const struct kn_gemm_impl kn_gemm_avx2 = {
    .mr = KN_GEMM_MR,
    .nr = KN_GEMM_NR,
    .kc = KN_GEMM_KC,
    .ukr = kn_gemm_ukr_avx2,
    .pack_w = kn_pack_w_avx2,
    .pack_x = kn_pack_x_avx2,
};

/* One micro-tile of out at c (row stride ldc): mr <= impl->mr valid rows
 * and nr <= impl->nr valid columns.  Full tiles go straight to the
 * micro-kernel; edge tiles through a scratch tile so nothing outside out is
 * touched. */
static void kn_gemm_tile(const struct kn_gemm_impl *impl, int kc, const float *a, const float *b, float *c,
                         int ldc, int mr, int nr, int accumulate)
{
    if (mr == impl->mr && nr == impl->nr) {
        impl->ukr(kc, a, b, c, ldc, accumulate);
        return;
    }
    float t[KN_GEMM_MR_MAX * KN_GEMM_NR_MAX];
    impl->ukr(kc, a, b, t, impl->nr, 0);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            c[(size_t)i * ldc + j] = (accumulate ? c[(size_t)i * ldc + j] : 0.0f) + t[i * impl->nr + j];
}

/* The blocked GEMM on the rectangle rows m0 .. m1-1, columns n0 .. n1-1 of
 * out (m, n) = x (m, k) W^T.  ap and bp are 64-byte aligned packing
 * buffers of at least MC*kc and kc*NC floats (kc = impl->kc). */
static void kn_gemm_block(const struct kn_gemm_impl *impl, float *out, const float *x, const float *w, int n,
                          int k, int m0, int m1, int n0, int n1, float *ap, float *bp)
{
    const int MR = impl->mr, NR = impl->nr, KC = impl->kc;

    for (int jc = n0; jc < n1; jc += KN_GEMM_NC) {
        int nc = n1 - jc < KN_GEMM_NC ? n1 - jc : KN_GEMM_NC;
        for (int pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? k - pc : KC;
            impl->pack_w(bp, w, k, jc, nc, pc, kc);
            for (int ic = m0; ic < m1; ic += KN_GEMM_MC) {
                int mc = m1 - ic < KN_GEMM_MC ? m1 - ic : KN_GEMM_MC;
                impl->pack_x(ap, x, k, ic, mc, pc, kc);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        kn_gemm_tile(impl, kc, ap + (size_t)ir * kc, bp + (size_t)jr * kc,
                                     out + (size_t)(ic + ir) * n + jc + jr, n, mr, nr, pc > 0);
                    }
                }
            }
        }
    }
}

/* Thread t of nt's share [*lo, *hi) of 0 .. len, in whole units of q. */
static void kn_split(int len, int q, int t, int nt, int *lo, int *hi)
{
    int units = (len + q - 1) / q;
    int per = units / nt, extra = units % nt;
    int u0 = t * per + (t < extra ? t : extra);
    int u1 = u0 + per + (t < extra ? 1 : 0);

    *lo = u0 * q < len ? u0 * q : len;
    *hi = u1 * q < len ? u1 * q : len;
}

/* Threads for a problem of m*n*k multiply-adds (at least 1). */
static int kn_matmul_threads(int m, int n, int k)
{
    int nt = kn_get_threads();

    if ((double)m * n * k < KN_MIN_PARALLEL_MACS)
        return 1;
    return nt > 1 ? nt : 1;
}

/* out (m, n) = x (m, k) W^T for f32 weights through the kernels GEMM and
 * GEMV: GEMV for small m, blocked GEMM otherwise.  Aborts only if the packing
 * buffers cannot be allocated. */
void kn_matmul_f32_with(const struct kn_gemm_impl *impl, const struct kn_gemv_impl *gimpl, float *out,
                        const float *x, const struct kn_weights *w, int m)
{
    const float *wd = w->data;
    int n = w->n, k = w->k;
    int nt = kn_matmul_threads(m, n, k);

    assert(impl != NULL && gimpl != NULL && impl->mr <= KN_GEMM_MR_MAX && impl->nr <= KN_GEMM_NR_MAX);
    assert(w->dtype == KN_F32 && m >= 0 && n >= 0 && k >= 0);
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        memset(out, 0, (size_t)m * n * sizeof *out);
        return;
    }

    if (m < KN_GEMV_MAX_M) {
        /* Rows of W in chunks handed out as threads become free: a thread
         * slowed by another process on its core does less of the stream. */
        int chunk = kn_round_up(n / (8 * nt) > KN_GEMV_MIN_CHUNK ? n / (8 * nt) : KN_GEMV_MIN_CHUNK, 4);
        int nchunks = (n + chunk - 1) / chunk;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1)
#endif
        for (int c = 0; c < nchunks; c++) {
            int lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
            kn_gemv_rows(gimpl, out, x, wd, m, n, k, lo, hi);
        }
        return;
    }

    /* Threads split n (each packs only its own rows of W) unless n is too
     * short to give every thread a few panels; then they split m. */
    int split_n = n >= nt * 4 * impl->nr || n >= m;
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
#endif
    {
        int t = 0, tn = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        tn = omp_get_num_threads();
#endif
        int m0 = 0, m1 = m, n0 = 0, n1 = n;
        if (split_n)
            kn_split(n, impl->nr, t, tn, &n0, &n1);
        else
            kn_split(m, impl->mr, t, tn, &m0, &m1);
        if (m0 < m1 && n0 < n1) {
            int kc = k < impl->kc ? k : impl->kc;
            int mc = kn_round_up(m1 - m0 < KN_GEMM_MC ? m1 - m0 : KN_GEMM_MC, impl->mr);
            int nc = kn_round_up(n1 - n0 < KN_GEMM_NC ? n1 - n0 : KN_GEMM_NC, impl->nr);
            void *ap = NULL, *bp = NULL;
            if (posix_memalign(&ap, 64, (size_t)mc * kc * sizeof(float)) != 0 ||
                posix_memalign(&bp, 64, (size_t)nc * kc * sizeof(float)) != 0)
                failed = 1;
            else
                kn_gemm_block(impl, out, x, wd, n, k, m0, m1, n0, n1, ap, bp);
            free(ap);
            free(bp);
        }
    }
    if (failed)
        abort(); /* out of memory for a few MiB of packing buffers */
}

/* out (m, n) = x (m, k) W^T for f32 weights with the kernels of the ISA in
 * use (kn_get_isa). */
void kn_matmul_f32(float *out, const float *x, const struct kn_weights *w, int m)
{
    switch (kn_get_isa()) {
    case KN_ISA_AVX512:
        kn_matmul_f32_with(&kn_gemm_avx512_impl, &kn_gemv_avx512_impl, out, x, w, m);
        break;
    case KN_ISA_AVX2:
        kn_matmul_f32_with(&kn_gemm_avx2, &kn_gemv_avx2_impl, out, x, w, m);
        break;
    case KN_ISA_AUTO:
    case KN_ISA_PORTABLE:
    default:
        kn_matmul_f32_with(&kn_gemm_portable, &kn_gemv_portable_impl, out, x, w, m);
        break;
    }
}
