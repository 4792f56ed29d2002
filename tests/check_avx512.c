/* check_avx512.c -- unit tests of the AVX-512 kernels (kernels/
 * matmul_avx512.c, quant_avx512.c) on any CPU: the same sources compiled
 * against SIMDe's portable intrinsics (tests/avx512_simde.c) are run piece by
 * piece -- the 12x32 micro-kernel, the W and x packing, the f32 GEMV kernels
 * with every k tail of 1..15, the Q8 GEMV on every partial 8-group block --
 * and through the blocked GEMM / GEMV driver (kn_matmul_f32_with), against a
 * float64 reference on awkward sizes; the Q8 GEMV also bit for bit against
 * the AVX2 kernel.  On a
 * CPU with AVX-512F the native copy runs through the same checks, and
 * through kn_matmul with kn_set_isa(KN_ISA_AVX512).  Without SIMDe it skips
 * (exit 77).
 *
 * Tolerance as tests/check_matmul.c: normwise relative error under 1e-5,
 *     max_ij |out_ij - ref64_ij| / max_ij |ref64_ij|.
 * Packing moves data, so it must be exact. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/matmul_int.h"

#ifdef HAVE_SIMDE_X86_AVX512_H

/* ---- helpers ------------------------------------------------------------------ */

/* Deterministic uniform floats in [-1, 1) (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float rand_sym(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 2685821657736338717ull;
    return (float)((double)(r >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

/* n random floats, exactly n allocated (so ASan catches any read past them),
 * 64-byte aligned. */
static float *rand_array(size_t n)
{
    void *p = NULL;
    ck_assert_int_eq(posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)), 0);
    float *a = p;
    for (size_t i = 0; i < n; i++)
        a[i] = rand_sym();
    return a;
}

/* The normwise error of out against ref over len values (see the top). */
static double norm_err(const float *out, const double *ref, size_t len)
{
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < len; i++) {
        double d = fabs((double)out[i] - ref[i]);
        if (!(d <= diff)) /* also catches NaN */
            diff = d;
        if (fabs(ref[i]) > scale)
            scale = fabs(ref[i]);
    }
    return scale > 0.0 ? diff / scale : diff;
}

/* The copies of the kernels this run checks: SIMDe's always, the CPU's own
 * when it has AVX-512F. */
struct copy {
    const char *name;
    const struct kn_gemm_impl *gemm;
    const struct kn_gemv_impl *gemv;
    kn_q8_gemv_chunk_fn *q8_gemv_chunk;
};

static int copies_available(struct copy *c)
{
    int n = 0;
    c[n++] = (struct copy){"simde", &kn_gemm_avx512_impl_simde, &kn_gemv_avx512_impl_simde,
                           kn_q8_gemv_chunk_avx512_simde};
    if (kn_set_isa(KN_ISA_AVX512) == KN_ISA_AVX512)
        c[n++] = (struct copy){"native", &kn_gemm_avx512_impl, &kn_gemv_avx512_impl, kn_q8_gemv_chunk_avx512};
    kn_set_isa(KN_ISA_AUTO);
    return n;
}

static int round_up(int x, int q)
{
    return (x + q - 1) / q * q;
}

/* ---- the tile ------------------------------------------------------------------- */

/* Both copies declare the same tile, and it fits the driver's scratch. */
START_TEST(test_tile_shape)
{
    const struct kn_gemm_impl *s = &kn_gemm_avx512_impl_simde, *n = &kn_gemm_avx512_impl;

    ck_assert_int_eq(s->mr, 12);
    ck_assert_int_eq(s->nr, 32);
    ck_assert_int_gt(s->kc, 0);
    ck_assert_int_le(s->mr, KN_GEMM_MR_MAX);
    ck_assert_int_le(s->nr, KN_GEMM_NR_MAX);
#if defined(__x86_64__) || defined(__i386__)
    ck_assert_int_eq(n->mr, s->mr);
    ck_assert_int_eq(n->nr, s->nr);
    ck_assert_int_eq(n->kc, s->kc);
#else
    (void)n;
#endif
    ck_assert_ptr_nonnull(kn_gemv_avx512_impl_simde.gemv);
    ck_assert_ptr_nonnull(kn_gemv_avx512_impl_simde.gemv2);
    ck_assert_ptr_nonnull(kn_gemv_avx512_impl_simde.gemv4);
}
END_TEST

/* ---- packing -------------------------------------------------------------------- */

static const int pack_rows[] = {1, 5, 11, 12, 13, 24, 31, 32, 33, 64, 70};
static const int pack_kc[] = {1, 7, 8, 9, 15, 16, 17, 100, 192};
#define N_PACK_ROWS (int)(sizeof pack_rows / sizeof pack_rows[0])
#define N_PACK_KC (int)(sizeof pack_kc / sizeof pack_kc[0])

/* pack_w and pack_x of every copy, on a block at an offset (r0, p0) inside a
 * larger matrix: each panel of nr (mr) rows, zero past the last row, exactly
 * as struct kn_gemm_impl states; the buffer is exactly that large. */
START_TEST(test_pack)
{
    struct copy cp[2];
    int ncp = copies_available(cp);

    for (int c = 0; c < ncp; c++) {
        const struct kn_gemm_impl *g = cp[c].gemm;
        for (int a = 0; a < N_PACK_ROWS; a++) {
            for (int b = 0; b < N_PACK_KC; b++) {
                int rows = pack_rows[a], kc = pack_kc[b];
                int r0 = 3, p0 = 5, k = p0 + kc + 2, total = r0 + rows + 1;
                float *src = rand_array((size_t)total * k);
                for (int side = 0; side < 2; side++) { /* 0: W panels of nr, 1: x panels of mr */
                    int q = side == 0 ? g->nr : g->mr;
                    size_t len = (size_t)round_up(rows, q) * kc;
                    float *buf = rand_array(len);
                    if (side == 0)
                        g->pack_w(buf, src, k, r0, rows, p0, kc);
                    else
                        g->pack_x(buf, src, k, r0, rows, p0, kc);
                    for (int rp = 0; rp < rows; rp += q)
                        for (int p = 0; p < kc; p++)
                            for (int rr = 0; rr < q; rr++) {
                                float want = rp + rr < rows ? src[(size_t)(r0 + rp + rr) * k + p0 + p] : 0.0f;
                                float got = buf[(size_t)rp * kc + (size_t)p * q + rr];
                                ck_assert_msg(got == want, "%s pack_%c rows=%d kc=%d: [%d][%d][%d] %g != %g",
                                              cp[c].name, side == 0 ? 'w' : 'x', rows, kc, rp / q, p, rr,
                                              (double)got, (double)want);
                            }
                    free(buf);
                }
                free(src);
            }
        }
    }
}
END_TEST

/* ---- micro-kernel ---------------------------------------------------------------- */

static const int ukr_kc[] = {1, 2, 3, 7, 8, 15, 16, 17, 100, 192, 385};
#define N_UKR_KC (int)(sizeof ukr_kc / sizeof ukr_kc[0])

/* The micro-kernel of every copy: c (mr, nr) = (accumulate ? c : 0) + a^T b
 * with a (kc, mr) and b (kc, nr) packed, for ldc = nr and wider; the
 * columns past nr are left alone. */
START_TEST(test_ukr)
{
    struct copy cp[2];
    int ncp = copies_available(cp);

    for (int c = 0; c < ncp; c++) {
        const struct kn_gemm_impl *g = cp[c].gemm;
        int mr = g->mr, nr = g->nr;
        for (int t = 0; t < N_UKR_KC; t++) {
            for (int variant = 0; variant < 4; variant++) {
                int kc = ukr_kc[t], accumulate = variant & 1, ldc = variant & 2 ? nr + 5 : nr;
                float *a = rand_array((size_t)kc * mr), *b = rand_array((size_t)kc * nr);
                float *cm = rand_array((size_t)mr * ldc), *c0 = malloc((size_t)mr * ldc * sizeof *c0);
                double *ref = malloc((size_t)mr * nr * sizeof *ref);
                float *got = malloc((size_t)mr * nr * sizeof *got);
                ck_assert_ptr_nonnull(c0);
                ck_assert_ptr_nonnull(ref);
                ck_assert_ptr_nonnull(got);
                memcpy(c0, cm, (size_t)mr * ldc * sizeof *c0);
                for (int i = 0; i < mr; i++)
                    for (int j = 0; j < nr; j++) {
                        double s = accumulate ? c0[(size_t)i * ldc + j] : 0.0;
                        for (int p = 0; p < kc; p++)
                            s += (double)a[(size_t)p * mr + i] * b[(size_t)p * nr + j];
                        ref[(size_t)i * nr + j] = s;
                    }
                g->ukr(kc, a, b, cm, ldc, accumulate);
                for (int i = 0; i < mr; i++) {
                    memcpy(got + (size_t)i * nr, cm + (size_t)i * ldc, (size_t)nr * sizeof *got);
                    for (int j = nr; j < ldc; j++)
                        ck_assert_msg(cm[(size_t)i * ldc + j] == c0[(size_t)i * ldc + j],
                                      "%s ukr kc=%d: wrote past the tile at row %d column %d", cp[c].name, kc, i,
                                      j);
                }
                double e = norm_err(got, ref, (size_t)mr * nr);
                ck_assert_msg(e < 1e-5, "%s ukr kc=%d accumulate=%d ldc=%d: error %g", cp[c].name, kc, accumulate,
                              ldc, e);
                free(a);
                free(b);
                free(cm);
                free(c0);
                free(ref);
                free(got);
            }
        }
    }
}
END_TEST

/* ---- GEMV kernels --------------------------------------------------------------- */

/* GEMV on W (n, k), rows i0 .. i1-1: gemv with one row of x, gemv2 with two,
 * gemv4 with four (output row stride ldo > n), against float64; outputs
 * outside rows i0 .. i1-1 stay untouched. */
static void check_gemv(const struct copy *cp, int n, int k, int i0, int i1)
{
    int ldo = n + 3;
    float *w = rand_array((size_t)n * k), *x = rand_array((size_t)4 * k);
    float *out = malloc((size_t)4 * ldo * sizeof *out), *got = malloc((size_t)4 * n * sizeof *got);
    double *ref = malloc((size_t)4 * n * sizeof *ref);
    const float sentinel = 12345.0f;

    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(ref);
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < n; i++) {
            double s = 0.0;
            if (i >= i0 && i < i1)
                for (int j = 0; j < k; j++)
                    s += (double)x[(size_t)r * k + j] * w[(size_t)i * k + j];
            ref[(size_t)r * n + i] = s;
        }

    for (int kind = 1; kind <= 4; kind *= 2) { /* 1: gemv, 2: gemv2, 4: gemv4 */
        for (size_t j = 0; j < (size_t)4 * ldo; j++)
            out[j] = sentinel;
        if (kind == 1)
            cp->gemv->gemv(out, x, w, k, i0, i1);
        else if (kind == 2)
            cp->gemv->gemv2(out, out + ldo, x, x + k, w, k, i0, i1);
        else
            cp->gemv->gemv4(out, ldo, x, k, w, k, n, i0, i1);
        for (int r = 0; r < kind; r++)
            for (int i = 0; i < n; i++) {
                float v = out[(size_t)r * ldo + i];
                if (i < i0 || i >= i1) {
                    ck_assert_msg(v == sentinel, "%s gemv%d n=%d k=%d rows %d..%d: wrote row %d of x row %d",
                                  cp->name, kind, n, k, i0, i1, i, r);
                    got[(size_t)r * n + i] = 0.0f;
                } else {
                    got[(size_t)r * n + i] = v;
                }
            }
        for (int r = 0; r < kind; r++) {
            double e = norm_err(got + (size_t)r * n, ref + (size_t)r * n, (size_t)n);
            ck_assert_msg(e < 1e-5, "%s gemv%d n=%d k=%d rows %d..%d, x row %d: error %g", cp->name, kind, n, k,
                          i0, i1, r, e);
        }
        for (int r = kind; r < 4; r++) /* rows of out the kernel was not given */
            for (int i = 0; i < ldo; i++)
                ck_assert(out[(size_t)r * ldo + i] == sentinel);
    }
    free(w);
    free(x);
    free(out);
    free(got);
    free(ref);
}

/* Every k from 1 to 50 (every tail of 1..15 after 0, 1, 2 and 3 full vectors)
 * and a few long ones, on row counts that leave each kernel's row blocks
 * (4 and 3) a remainder, whole and from an offset row. */
START_TEST(test_gemv)
{
    static const int ns[] = {1, 2, 3, 4, 5, 7, 13};
    static const int long_k[] = {127, 256, 1000, 1031};
    struct copy cp[2];
    int ncp = copies_available(cp);

    for (int c = 0; c < ncp; c++) {
        for (int a = 0; a < (int)(sizeof ns / sizeof ns[0]); a++) {
            int n = ns[a];
            for (int k = 1; k <= 50; k++)
                check_gemv(&cp[c], n, k, 0, n);
            for (int b = 0; b < (int)(sizeof long_k / sizeof long_k[0]); b++)
                check_gemv(&cp[c], n, long_k[b], 0, n);
            if (n > 2) {
                check_gemv(&cp[c], n, 37, 1, n);
                check_gemv(&cp[c], n, 61, 1, n - 1);
            }
        }
        check_gemv(&cp[c], 40, 300, 6, 29); /* several triples, with prefetches within n */
    }
}
END_TEST

/* ---- through the driver ----------------------------------------------------------- */

/* out (m, n) = x (m, k) W^T through kn_matmul_f32_with and the copy's
 * kernels (GEMV path for m < 24, blocked GEMM beyond), 1 and 2 threads,
 * against float64; every output written. */
static void check_driver(const struct copy *cp, int m, int n, int k)
{
    float *x = rand_array((size_t)m * k), *wd = rand_array((size_t)n * k);
    double *ref = malloc(((size_t)m * n + 1) * sizeof *ref);
    float *out = malloc(((size_t)m * n + 1) * sizeof *out);
    struct kn_weights w = {.dtype = KN_F32, .n = n, .k = k, .data = wd};

    ck_assert_ptr_nonnull(ref);
    ck_assert_ptr_nonnull(out);
    for (int r = 0; r < m; r++)
        for (int i = 0; i < n; i++) {
            double s = 0.0;
            for (int j = 0; j < k; j++)
                s += (double)x[(size_t)r * k + j] * wd[(size_t)i * k + j];
            ref[(size_t)r * n + i] = s;
        }
    for (int t = 1; t <= 2; t++) {
        kn_set_threads(t);
        for (size_t j = 0; j < (size_t)m * n; j++)
            out[j] = NAN;
        kn_matmul_f32_with(cp->gemm, cp->gemv, out, x, &w, m);
        double e = norm_err(out, ref, (size_t)m * n);
        ck_assert_msg(e < 1e-5, "%s driver threads=%d m=%d n=%d k=%d: error %g", cp->name, t, m, n, k, e);
    }
    kn_set_threads(0);
    free(x);
    free(wd);
    free(ref);
    free(out);
}

static const int drv_m[] = {1, 2, 3, 4, 5, 7, 17, 23, 24, 25, 37, 100, 133};
static const int drv_nk[] = {1, 3, 31, 33, 64, 127, 193, 1031};
#define N_DRV_M (int)(sizeof drv_m / sizeof drv_m[0])
#define N_DRV_NK (int)(sizeof drv_nk / sizeof drv_nk[0])

/* Every m against every n, k rotating through the list (k past KC = 192
 * accumulates over several packed blocks). */
START_TEST(test_driver)
{
    struct copy cp[2];
    int ncp = copies_available(cp);
    int m = drv_m[_i];

    for (int c = 0; c < ncp; c++)
        for (int a = 0; a < N_DRV_NK; a++)
            check_driver(&cp[c], m, drv_nk[a], drv_nk[(a + _i) % N_DRV_NK]);
}
END_TEST

/* Blocks the lists above miss: n past NC (2048) with a partial last block,
 * and a GEMM whose m splits across threads (n short). */
START_TEST(test_driver_blocks)
{
    struct copy cp[2];
    int ncp = copies_available(cp);

    for (int c = 0; c < ncp; c++) {
        check_driver(&cp[c], 30, 2100, 20);
        check_driver(&cp[c], 150, 40, 70);
        check_driver(&cp[c], 24, 32, 192);
    }
}
END_TEST

/* On a CPU with AVX-512F, kn_matmul picks these kernels: the same checks
 * through the public entry point. */
START_TEST(test_native_dispatch)
{
    if (kn_set_isa(KN_ISA_AVX512) != KN_ISA_AVX512) {
        kn_set_isa(KN_ISA_AUTO);
        return; /* main says so */
    }
    static const int ms[] = {1, 5, 24, 100};
    for (int a = 0; a < 4; a++) {
        int m = ms[a], n = 133, k = 211;
        float *x = rand_array((size_t)m * k), *wd = rand_array((size_t)n * k);
        float *out = malloc((size_t)m * n * sizeof *out), *want = malloc((size_t)m * n * sizeof *want);
        struct kn_weights w = {.dtype = KN_F32, .n = n, .k = k, .data = wd};
        ck_assert_ptr_nonnull(out);
        ck_assert_ptr_nonnull(want);
        kn_set_isa(KN_ISA_AVX512);
        kn_matmul(out, x, &w, m);
        kn_matmul_f32_with(&kn_gemm_avx512_impl, &kn_gemv_avx512_impl, want, x, &w, m);
        ck_assert_msg(memcmp(out, want, (size_t)m * n * sizeof *out) == 0, "kn_matmul m=%d is not the AVX-512 path",
                      m);
        free(x);
        free(wd);
        free(out);
        free(want);
    }
    kn_set_isa(KN_ISA_AUTO);
}
END_TEST

/* ---- Q8 GEMV ------------------------------------------------------------------------ */

/* The Q8 GEMV of every copy on W (n, k) quantised with GROUP, rows i0 ..
 * i1-1, separate arrays and (packed) kn_pack_q8's layout: against float64
 * of the same quantised values (1e-5), and bit for bit against kn_matmul's
 * m = 1 on the AVX2 path when the CPU has AVX2 (the same arithmetic after
 * the exact int32 group sums).  Every array is allocated to its exact
 * length, so under ASan a read past a row's last group fails. */
static void check_q8_gemv(const struct copy *cp, int n, int k, int group, int packed, int i0, int i1)
{
    const int ng = k / group;
    float *wf = rand_array((size_t)n * k), *x = rand_array((size_t)k);
    int8_t *wq = malloc((size_t)n * k), *xq = malloc((size_t)k);
    uint8_t *xa = malloc((size_t)k);
    float *ws = malloc((size_t)n * ng * sizeof *ws), *xs = malloc((size_t)ng * sizeof *xs);
    float *out = malloc((size_t)n * sizeof *out), *want = malloc((size_t)n * sizeof *want);
    double *ref = malloc((size_t)n * sizeof *ref);
    void *pack = NULL;

    ck_assert(wq != NULL && xq != NULL && xa != NULL && ws != NULL && xs != NULL);
    ck_assert(out != NULL && want != NULL && ref != NULL);
    kn_quantize_q8(wq, ws, wf, (size_t)n * k, group);
    kn_quantize_q8(xq, xs, x, (size_t)k, group);
    for (int j = 0; j < k; j++)
        xa[j] = (uint8_t)abs(xq[j]);
    struct kn_weights w = {.dtype = KN_Q8, .n = n, .k = k, .group = group, .data = wq, .scales = ws};
    if (packed) {
        pack = malloc(kn_pack_q8_bytes(&w));
        ck_assert_ptr_nonnull(pack);
        kn_pack_q8(pack, &w);
    }
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int g = 0; g < ng; g++) {
            long dot = 0;
            for (int j = g * group; j < (g + 1) * group; j++)
                dot += (long)xq[j] * wq[(size_t)i * k + j];
            s += (double)dot * xs[g] * ws[(size_t)i * ng + g];
        }
        ref[i] = i >= i0 && i < i1 ? s : 0.0;
    }

    struct kn_q8_layout L = kn_q8_layout_of(&w);
    for (int i = 0; i < n; i++)
        out[i] = i >= i0 && i < i1 ? NAN : 0.0f;
    cp->q8_gemv_chunk(out, xq, xa, xs, &L, k, group, i0, i1);
    double e = norm_err(out, ref, (size_t)n);
    ck_assert_msg(e < 1e-5, "%s q8 gemv n=%d k=%d group=%d packed=%d rows %d..%d: error %g", cp->name, n, k,
                  group, packed, i0, i1, e);

    if (kn_set_isa(KN_ISA_AVX2) == KN_ISA_AVX2) {
        kn_matmul(want, x, &w, 1);
        for (int i = i0; i < i1; i++)
            ck_assert_msg(memcmp(&out[i], &want[i], sizeof out[i]) == 0,
                          "%s q8 gemv n=%d k=%d group=%d packed=%d: row %d is %.9g, the AVX2 kernel's %.9g",
                          cp->name, n, k, group, packed, i, (double)out[i], (double)want[i]);
    }
    kn_set_isa(KN_ISA_AUTO);
    free(wf);
    free(x);
    free(wq);
    free(xq);
    free(xa);
    free(ws);
    free(xs);
    free(out);
    free(want);
    free(ref);
    free(pack);
}

/* Groups per row from 1 to 17 (full 8-group blocks, partial ones with an
 * odd and an even count), and longer rows; row counts below, at and past
 * the four-stream split, whole and from an offset. */
START_TEST(test_q8_gemv)
{
    static const int ngs[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 24, 33, 128};
    static const int ns[] = {1, 3, 4, 5, 7, 13, 130};
    struct copy cp[2];
    int ncp = copies_available(cp);

    for (int c = 0; c < ncp; c++)
        for (int group = 32; group <= 64; group *= 2)
            for (int a = 0; a < (int)(sizeof ngs / sizeof ngs[0]); a++)
                for (int b = 0; b < (int)(sizeof ns / sizeof ns[0]); b++) {
                    int n = ns[b], k = ngs[a] * group;
                    if (n == 130 && ngs[a] > 17)
                        continue; /* keep the run short */
                    for (int packed = 0; packed <= 1; packed++)
                        check_q8_gemv(&cp[c], n, k, group, packed, 0, n);
                    if (n > 4)
                        check_q8_gemv(&cp[c], n, k, group, a & 1, 1, n - 1);
                }
}
END_TEST

/* On a CPU with AVX-512, kn_matmul's Q8 GEMV takes the AVX-512 kernel and
 * gives the AVX2 kernel's bits. */
START_TEST(test_q8_native_dispatch)
{
    if (kn_set_isa(KN_ISA_AVX512) != KN_ISA_AVX512) {
        kn_set_isa(KN_ISA_AUTO);
        return; /* main says so */
    }
    const int n = 300, k = 9 * 32;
    float *wf = rand_array((size_t)n * k), *x = rand_array((size_t)k);
    int8_t *wq = malloc((size_t)n * k);
    float *ws = malloc((size_t)n * (k / 32) * sizeof *ws);
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    ck_assert(wq != NULL && ws != NULL && a != NULL && b != NULL);
    kn_quantize_q8(wq, ws, wf, (size_t)n * k, 32);
    struct kn_weights w = {.dtype = KN_Q8, .n = n, .k = k, .group = 32, .data = wq, .scales = ws};
    kn_set_isa(KN_ISA_AVX512);
    kn_matmul(a, x, &w, 1);
    kn_set_isa(KN_ISA_AVX2);
    kn_matmul(b, x, &w, 1);
    kn_set_isa(KN_ISA_AUTO);
    ck_assert_msg(memcmp(a, b, (size_t)n * sizeof *a) == 0, "AVX-512 and AVX2 Q8 GEMV differ");
    free(wf);
    free(x);
    free(wq);
    free(ws);
    free(a);
    free(b);
}
END_TEST

/* ---- main -------------------------------------------------------------------------- */

static Suite *suite_avx512(void)
{
    Suite *s = suite_create("avx512");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tile_shape);
    tcase_add_test(tc, test_pack);
    tcase_add_test(tc, test_ukr);
    tcase_add_test(tc, test_gemv);
    suite_add_tcase(s, tc);

    tc = tcase_create("driver");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_driver, 0, N_DRV_M);
    tcase_add_test(tc, test_driver_blocks);
    tcase_add_test(tc, test_native_dispatch);
    suite_add_tcase(s, tc);

    tc = tcase_create("q8");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_q8_gemv);
    tcase_add_test(tc, test_q8_native_dispatch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (kn_set_isa(KN_ISA_AVX512) == KN_ISA_AVX512)
        printf("check_avx512: this CPU has AVX-512F: checking the native kernels and their SIMDe compilation\n");
    else
        printf("check_avx512: this CPU has no AVX-512F: checking the kernels' SIMDe compilation only\n");
    kn_set_isa(KN_ISA_AUTO);

    SRunner *sr = srunner_create(suite_avx512());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#else /* no SIMDe */

int main(void)
{
    printf("check_avx512: SKIP: SIMDe's simde/x86/avx512.h was not found at configure time "
           "(Debian: apt-get install libsimde-dev), so the AVX-512 kernels cannot be run on this CPU\n");
    return 77;
}

#endif
