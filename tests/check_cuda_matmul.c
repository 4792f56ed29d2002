/* check_cuda_matmul.c -- unit tests of the CUDA matmul kernels (gemm.cu,
 * gemm_bf16.cu, gemv.cu, cublas.cu) and of the "cuda" backend table
 * (backend_cuda.cu): every version of each kernel against a float64 host
 * reference on random inputs of awkward sizes (1, 7, 33, 127, ~1000, not
 * multiples of any tile) and on big aligned ones; the error paths.
 *
 * Error metric, as check_matmul.c: normwise over the whole output,
 *     max_ij |out_ij - ref64_ij| / max_ij |ref64_ij|.
 * Outputs are filled with NaN before each call, so an output a kernel
 * forgets to write fails the test.
 *
 * bf16: the reference is computed from the bf16-rounded inputs, so the
 * only error left is the float32 accumulation (products of two bf16 are
 * exact in float32).  Q8: the reference uses the dequantised weights.
 *
 * Without a CUDA device the program prints why and exits 77 (automake's
 * SKIP).  The tests run in one process (CK_NOFORK): a CUDA context does not
 * survive fork(). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/kn_cuda.h"
#include "kernels/kernels.h"

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

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes > 0 ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

static float *rand_array(size_t n)
{
    float *a = xmalloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = rand_sym();
    return a;
}

/* A device copy of BYTES at SRC (BYTES of device memory when SRC is NULL). */
static void *dev_new(const void *src, size_t bytes)
{
    void *d = kn_cuda_alloc(bytes);
    ck_assert_msg(d != NULL, "kn_cuda_alloc(%zu): %s", bytes, kn_cuda_error());
    if (src != NULL)
        ck_assert_msg(kn_cuda_upload(d, src, bytes) == 0, "upload: %s", kn_cuda_error());
    return d;
}

/* Fill N floats of device memory with NaN (all bits set). */
static void dev_nan(float *d, size_t n)
{
    ck_assert_msg(kn_cuda_memset(d, 0xff, n * sizeof(float)) == 0, "memset: %s", kn_cuda_error());
}

/* Wait for the device, then copy N floats back. */
static void dev_get(float *dst, const float *d, size_t n)
{
    ck_assert_msg(kn_cuda_sync() == 0, "kernel failed: %s", kn_cuda_error());
    ck_assert_msg(kn_cuda_download(dst, d, n * sizeof(float)) == 0, "download: %s", kn_cuda_error());
}

/* ref (m, n) = x (m, k) W^T in float64; W given as float (n, k). */
static void matmul_ref64(double *ref, const float *x, const float *w, int m, int n, int k)
{
    for (int r = 0; r < m; r++)
        for (int i = 0; i < n; i++) {
            const float *xr = x + (size_t)r * k, *wr = w + (size_t)i * k;
            double s = 0.0;
            for (int j = 0; j < k; j++)
                s += (double)xr[j] * (double)wr[j];
            ref[(size_t)r * n + i] = s;
        }
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

/* Round A (n floats) to bf16 in B16 and write the rounded values back to A. */
static void round_bf16(float *a, uint16_t *b16, size_t n)
{
    kn_f32_to_bf16(b16, a, n);
    kn_bf16_to_f32(a, b16, n);
}

struct shape {
    int m, n, k;
};

/* ---- versions ------------------------------------------------------------------- */

START_TEST(test_versions)
{
    static const enum kn_cuda_op ops[] = {KN_CUDA_OP_SGEMM, KN_CUDA_OP_BGEMM, KN_CUDA_OP_GEMV};
    static const int counts[] = {4, 2, 2}, defaults[] = {3, 1, 1};

    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(kn_cuda_versions(ops[i]), counts[i]);
        ck_assert_int_eq(kn_cuda_default_version(ops[i]), defaults[i]);
        for (int v = 0; v < counts[i]; v++)
            ck_assert_ptr_nonnull(kn_cuda_version_name(ops[i], v));
        ck_assert_ptr_null(kn_cuda_version_name(ops[i], counts[i]));
        ck_assert_ptr_null(kn_cuda_version_name(ops[i], -1));
    }
}
END_TEST

/* ---- sgemm --------------------------------------------------------------------- */

static const struct shape sgemm_shapes[] = {
    {1, 1, 1},     {1, 7, 33},      {7, 33, 127},    {33, 127, 7},      {127, 1, 1000}, {1, 1000, 129},
    {129, 257, 65}, {200, 130, 1001}, {256, 256, 256}, {515, 1030, 777}, {1024, 1024, 1024},
};
#define N_SGEMM_SHAPES ((int)(sizeof sgemm_shapes / sizeof sgemm_shapes[0]))

/* Every sgemm version on shape I, plus v3 on misaligned pointers (its
 * scalar load and store paths). */
START_TEST(test_sgemm)
{
    struct shape s = sgemm_shapes[_i];
    size_t mk = (size_t)s.m * s.k, nk = (size_t)s.n * s.k, mn = (size_t)s.m * s.n;
    float *x = rand_array(mk), *w = rand_array(nk), *out = xmalloc(mn * sizeof(float));
    double *ref = xmalloc(mn * sizeof(double));
    /* One float of slack in front of each, for the misaligned runs. */
    float *x_d = dev_new(NULL, (mk + 1) * sizeof(float));
    float *w_d = dev_new(NULL, (nk + 1) * sizeof(float));
    float *out_d = dev_new(NULL, (mn + 1) * sizeof(float));

    matmul_ref64(ref, x, w, s.m, s.n, s.k);
    for (int shift = 0; shift <= 1; shift++) {
        ck_assert(kn_cuda_upload(x_d + shift, x, mk * sizeof(float)) == 0);
        ck_assert(kn_cuda_upload(w_d + shift, w, nk * sizeof(float)) == 0);
        for (int v = shift ? 3 : 0; v < kn_cuda_versions(KN_CUDA_OP_SGEMM); v++) {
            dev_nan(out_d + shift, mn);
            ck_assert_msg(kn_cuda_sgemm(v, out_d + shift, x_d + shift, w_d + shift, s.m, s.n, s.k) == 0,
                          "sgemm v%d: %s", v, kn_cuda_error());
            dev_get(out, out_d + shift, mn);
            double e = norm_err(out, ref, mn);
            ck_assert_msg(e < 1e-5, "sgemm v%d m=%d n=%d k=%d%s: error %g", v, s.m, s.n, s.k,
                          shift ? " (misaligned)" : "", e);
        }
    }
    kn_cuda_free(x_d);
    kn_cuda_free(w_d);
    kn_cuda_free(out_d);
    free(x);
    free(w);
    free(out);
    free(ref);
}
END_TEST

/* ---- bgemm --------------------------------------------------------------------- */

static const struct shape bgemm_shapes[] = {
    {1, 1, 8},      {1, 7, 16},       {7, 33, 40},       {33, 127, 8},      {127, 1, 1000},
    {129, 257, 72}, {200, 130, 1000}, {130, 200, 264},   {256, 256, 256},   {515, 1030, 776},
    {1024, 1024, 1024},
};
#define N_BGEMM_SHAPES ((int)(sizeof bgemm_shapes / sizeof bgemm_shapes[0]))

START_TEST(test_bgemm)
{
    struct shape s = bgemm_shapes[_i];
    size_t mk = (size_t)s.m * s.k, nk = (size_t)s.n * s.k, mn = (size_t)s.m * s.n;
    float *x = rand_array(mk), *w = rand_array(nk), *out = xmalloc(mn * sizeof(float));
    uint16_t *xb = xmalloc(mk * 2), *wb = xmalloc(nk * 2);
    double *ref = xmalloc(mn * sizeof(double));
    uint16_t *x_d, *w_d;
    float *out_d = dev_new(NULL, mn * sizeof(float));

    round_bf16(x, xb, mk);
    round_bf16(w, wb, nk);
    matmul_ref64(ref, x, w, s.m, s.n, s.k);
    x_d = dev_new(xb, mk * 2);
    w_d = dev_new(wb, nk * 2);
    for (int v = 0; v < kn_cuda_versions(KN_CUDA_OP_BGEMM); v++) {
        dev_nan(out_d, mn);
        ck_assert_msg(kn_cuda_bgemm(v, out_d, x_d, w_d, s.m, s.n, s.k) == 0, "bgemm v%d: %s", v, kn_cuda_error());
        dev_get(out, out_d, mn);
        double e = norm_err(out, ref, mn);
        ck_assert_msg(e < 1e-4, "bgemm v%d m=%d n=%d k=%d: error %g", v, s.m, s.n, s.k, e);
    }
    kn_cuda_free(x_d);
    kn_cuda_free(w_d);
    kn_cuda_free(out_d);
    free(x);
    free(w);
    free(xb);
    free(wb);
    free(out);
    free(ref);
}
END_TEST

/* Errors: an unknown version, k not a multiple of 8, misaligned operands. */
START_TEST(test_bgemm_errors)
{
    uint16_t *a = dev_new(NULL, 4096);
    float *out = dev_new(NULL, 4096);

    ck_assert_int_eq(kn_cuda_bgemm(99, out, a, a, 4, 4, 8), -1);
    ck_assert_msg(strstr(kn_cuda_error(), "version") != NULL, "message: %s", kn_cuda_error());
    ck_assert_int_eq(kn_cuda_bgemm(KN_CUDA_DEFAULT, out, a, a, 4, 4, 12), -1);
    ck_assert_msg(strstr(kn_cuda_error(), "multiple of 8") != NULL, "message: %s", kn_cuda_error());
    ck_assert_int_eq(kn_cuda_bgemm(KN_CUDA_DEFAULT, out, a + 1, a, 4, 4, 8), -1);
    ck_assert_msg(strstr(kn_cuda_error(), "aligned") != NULL, "message: %s", kn_cuda_error());
    ck_assert_int_eq(kn_cuda_sgemm(4, out, (float *)a, (float *)a, 4, 4, 4), -1);
    ck_assert_msg(strstr(kn_cuda_error(), "version") != NULL, "message: %s", kn_cuda_error());
    ck_assert_int_eq(kn_cuda_sgemm(-2, out, (float *)a, (float *)a, 4, 4, 4), -1);
    ck_assert_int_eq(kn_cuda_sgemm(0, out, (float *)a, (float *)a, 0, 4, 4), -1);
    ck_assert(kn_cuda_sync() == 0); /* nothing was launched that failed */
    kn_cuda_free(a);
    kn_cuda_free(out);
}
END_TEST

/* ---- weights in each dtype ------------------------------------------------------------ */

/* W (n, k) of DTYPE on the host and the device, with its float values
 * (what the reference multiplies by). */
struct test_weights {
    struct kn_weights host, dev; /* host: data/scales host pointers; dev: device ones */
    float *values;               /* (n, k) as float */
    void *data_d;
    float *scales_d;
};

static void weights_make(struct test_weights *t, enum kn_dtype dtype, int n, int k, int group)
{
    size_t nk = (size_t)n * k;
    float *w = rand_array(nk);

    memset(t, 0, sizeof *t);
    t->host = (struct kn_weights){.dtype = dtype, .n = n, .k = k, .group = group};
    t->values = w;
    if (dtype == KN_F32) {
        t->host.data = w;
        t->data_d = dev_new(w, nk * 4);
    } else if (dtype == KN_BF16) {
        uint16_t *b = xmalloc(nk * 2);
        round_bf16(w, b, nk);
        t->host.data = b;
        t->data_d = dev_new(b, nk * 2);
    } else {
        int8_t *q = xmalloc(nk);
        float *sc = xmalloc(nk / group * sizeof(float));
        kn_quantize_q8(q, sc, w, nk, group);
        kn_dequantize_q8(w, q, sc, nk, group);
        t->host.data = q;
        t->host.scales = sc;
        t->data_d = dev_new(q, nk);
        t->scales_d = dev_new(sc, nk / group * sizeof(float));
    }
    t->dev = t->host;
    t->dev.data = t->data_d;
    t->dev.scales = t->scales_d;
}

static void weights_free(struct test_weights *t)
{
    if (t->host.data != t->values)
        free((void *)t->host.data);
    free((void *)t->host.scales);
    free(t->values);
    kn_cuda_free(t->data_d);
    kn_cuda_free(t->scales_d);
}

static const char *dtype_name(enum kn_dtype d)
{
    return d == KN_BF16 ? "bf16" : d == KN_Q8 ? "q8" : "f32";
}

/* ---- gemv --------------------------------------------------------------------------- */

/* (n, k) shapes: k below, at and above the 1024-column chunk, multiples of
 * 4/8/16 (v1's 16-byte rows) and not (v0's path); q8 takes the k that are
 * multiples of its group. */
static const struct shape gemv_shapes[] = {
    {0, 1, 1},   {0, 7, 33},    {0, 33, 127},  {0, 129, 1000}, {0, 1000, 1024},
    {0, 257, 4100}, {0, 64, 2056}, {0, 31, 64},  {0, 300, 96},   {0, 130, 4160},
};
#define N_GEMV_SHAPES ((int)(sizeof gemv_shapes / sizeof gemv_shapes[0]))

/* Both versions, m = 1..8, for shape I in each dtype (q8 with groups 32
 * and 64 where k allows). */
START_TEST(test_gemv)
{
    static const enum kn_dtype dtypes[] = {KN_F32, KN_BF16, KN_Q8, KN_Q8};
    static const int groups[] = {32, 32, 32, 64};
    int n = gemv_shapes[_i].n, k = gemv_shapes[_i].k;

    for (int d = 0; d < 4; d++) {
        struct test_weights t;
        if (dtypes[d] == KN_Q8 && k % groups[d] != 0)
            continue;
        weights_make(&t, dtypes[d], n, k, groups[d]);
        float *x = rand_array((size_t)8 * k), *out = xmalloc((size_t)8 * n * sizeof(float));
        double *ref = xmalloc((size_t)8 * n * sizeof(double));
        float *x_d = dev_new(x, (size_t)8 * k * sizeof(float)), *out_d = dev_new(NULL, (size_t)8 * n * sizeof(float));

        matmul_ref64(ref, x, t.values, 8, n, k); /* the first m rows are the reference for m rows */
        for (int v = 0; v < kn_cuda_versions(KN_CUDA_OP_GEMV); v++)
            for (int m = 1; m <= 8; m++) {
                dev_nan(out_d, (size_t)m * n);
                ck_assert_msg(kn_cuda_gemv(v, out_d, x_d, &t.dev, m) == 0, "gemv v%d: %s", v, kn_cuda_error());
                dev_get(out, out_d, (size_t)m * n);
                double e = norm_err(out, ref, (size_t)m * n);
                ck_assert_msg(e < 1e-5, "gemv v%d %s (group %d) m=%d n=%d k=%d: error %g", v,
                              dtype_name(dtypes[d]), groups[d], m, n, k, e);
            }
        kn_cuda_free(x_d);
        kn_cuda_free(out_d);
        free(x);
        free(out);
        free(ref);
        weights_free(&t);
    }
}
END_TEST

START_TEST(test_gemv_errors)
{
    float *a = dev_new(NULL, 4096);
    struct kn_weights w = {.dtype = KN_F32, .n = 4, .k = 4, .data = a};

    ck_assert_int_eq(kn_cuda_gemv(KN_CUDA_DEFAULT, a, a, &w, 9), -1);
    ck_assert_int_eq(kn_cuda_gemv(KN_CUDA_DEFAULT, a, a, &w, 0), -1);
    ck_assert_int_eq(kn_cuda_gemv(7, a, a, &w, 1), -1);
    ck_assert_msg(strstr(kn_cuda_error(), "version") != NULL, "message: %s", kn_cuda_error());
    w.dtype = KN_Q8;
    w.group = 32;
    w.k = 48; /* not a multiple of the group */
    w.scales = a;
    ck_assert_int_eq(kn_cuda_gemv(KN_CUDA_DEFAULT, a, a, &w, 1), -1);
    ck_assert(kn_cuda_sync() == 0);
    kn_cuda_free(a);
}
END_TEST

/* ---- the dispatcher ----------------------------------------------------------------------- */

/* kn_cuda_matmul for m across the GEMV/GEMM boundary and each dtype.  Above
 * 8 rows bf16 and q8 round x to bf16, hence the looser tolerance there
 * (except bf16 with k % 8 != 0, which widens W and runs the f32 GEMM). */
START_TEST(test_matmul_dispatch)
{
    static const enum kn_dtype dtypes[] = {KN_F32, KN_BF16, KN_Q8};
    static const int ms[] = {1, 8, 9, 64, 200};
    static const struct shape shapes[] = {{0, 300, 256}, {0, 77, 1024}, {0, 130, 33}};

    for (int si = 0; si < 3; si++)
        for (int d = 0; d < 3; d++) {
            int n = shapes[si].n, k = shapes[si].k;
            struct test_weights t;
            if (dtypes[d] == KN_Q8 && k % 32 != 0)
                continue;
            weights_make(&t, dtypes[d], n, k, 32);
            for (int mi = 0; mi < 5; mi++) {
                int m = ms[mi];
                size_t mn = (size_t)m * n, scratch = kn_cuda_matmul_scratch_bytes(&t.dev, m);
                float *x = rand_array((size_t)m * k), *out = xmalloc(mn * sizeof(float));
                double *ref = xmalloc(mn * sizeof(double));
                float *x_d = dev_new(x, (size_t)m * k * sizeof(float)), *out_d = dev_new(NULL, mn * sizeof(float));
                void *scratch_d = scratch > 0 ? dev_new(NULL, scratch) : NULL;
                int rounded = m > 8 && (dtypes[d] == KN_Q8 || (dtypes[d] == KN_BF16 && k % 8 == 0));

                if (m <= 8 || dtypes[d] == KN_F32)
                    ck_assert_uint_eq(scratch, 0);
                else
                    ck_assert_uint_gt(scratch, 0);
                if (scratch > 0) { /* needed, so refused without it */
                    ck_assert_int_eq(kn_cuda_matmul(out_d, x_d, &t.dev, m, NULL), -1);
                    ck_assert_msg(strstr(kn_cuda_error(), "scratch") != NULL, "message: %s", kn_cuda_error());
                }
                matmul_ref64(ref, x, t.values, m, n, k);
                dev_nan(out_d, mn);
                ck_assert_msg(kn_cuda_matmul(out_d, x_d, &t.dev, m, scratch_d) == 0, "matmul: %s", kn_cuda_error());
                dev_get(out, out_d, mn);
                double e = norm_err(out, ref, mn);
                ck_assert_msg(e < (rounded ? 1e-2 : 1e-4), "matmul %s m=%d n=%d k=%d: error %g",
                              dtype_name(dtypes[d]), m, n, k, e);
                kn_cuda_free(x_d);
                kn_cuda_free(out_d);
                kn_cuda_free(scratch_d);
                free(x);
                free(out);
                free(ref);
            }
            weights_free(&t);
        }
}
END_TEST

/* ---- cuBLAS --------------------------------------------------------------------------------- */

START_TEST(test_cublas)
{
    static const struct shape shapes[] = {{1, 1, 8}, {7, 33, 40}, {129, 257, 72}, {300, 200, 1000}};

    for (int i = 0; i < 4; i++) {
        struct shape s = shapes[i];
        size_t mk = (size_t)s.m * s.k, nk = (size_t)s.n * s.k, mn = (size_t)s.m * s.n;
        float *x = rand_array(mk), *w = rand_array(nk), *out = xmalloc(mn * sizeof(float));
        uint16_t *xb = xmalloc(mk * 2), *wb = xmalloc(nk * 2);
        double *ref = xmalloc(mn * sizeof(double));
        float *out_d = dev_new(NULL, mn * sizeof(float));
        void *x_d, *w_d;
        double e;

        /* float32: x and W as drawn. */
        matmul_ref64(ref, x, w, s.m, s.n, s.k);
        x_d = dev_new(x, mk * 4);
        w_d = dev_new(w, nk * 4);
        dev_nan(out_d, mn);
        ck_assert_msg(kn_cublas_sgemm(out_d, x_d, w_d, s.m, s.n, s.k) == 0, "%s", kn_cuda_error());
        dev_get(out, out_d, mn);
        e = norm_err(out, ref, mn);
        ck_assert_msg(e < 1e-5, "cublas sgemm m=%d n=%d k=%d: error %g", s.m, s.n, s.k, e);
        kn_cuda_free(x_d);
        kn_cuda_free(w_d);

        /* bf16: the rounded inputs. */
        round_bf16(x, xb, mk);
        round_bf16(w, wb, nk);
        matmul_ref64(ref, x, w, s.m, s.n, s.k);
        x_d = dev_new(xb, mk * 2);
        w_d = dev_new(wb, nk * 2);
        dev_nan(out_d, mn);
        ck_assert_msg(kn_cublas_bgemm(out_d, x_d, w_d, s.m, s.n, s.k) == 0, "%s", kn_cuda_error());
        dev_get(out, out_d, mn);
        e = norm_err(out, ref, mn);
        ck_assert_msg(e < 1e-4, "cublas bgemm m=%d n=%d k=%d: error %g", s.m, s.n, s.k, e);
        kn_cuda_free(x_d);
        kn_cuda_free(w_d);

        kn_cuda_free(out_d);
        free(x);
        free(w);
        free(xb);
        free(wb);
        free(out);
        free(ref);
    }
    ck_assert_int_eq(kn_cublas_sgemm(NULL, NULL, NULL, 0, 1, 1), -1);
}
END_TEST

/* ---- the backend table (host pointers) ---------------------------------------------------------- */

START_TEST(test_backend_matmul)
{
    const struct kn_backend *be = kn_cuda_backend();
    static const enum kn_dtype dtypes[] = {KN_F32, KN_BF16, KN_Q8};
    static const int ms[] = {1, 5, 17};
    int n = 97, k = 320;

    ck_assert_ptr_nonnull(be);
    ck_assert_str_eq(be->name, "cuda");
    for (int d = 0; d < 3; d++) {
        struct test_weights t;
        weights_make(&t, dtypes[d], n, k, 64);
        for (int mi = 0; mi < 3; mi++) {
            int m = ms[mi];
            float *x = rand_array((size_t)m * k), *out = xmalloc((size_t)m * n * sizeof(float));
            double *ref = xmalloc((size_t)m * n * sizeof(double));
            matmul_ref64(ref, x, t.values, m, n, k);
            for (size_t i = 0; i < (size_t)m * n; i++)
                out[i] = NAN;
            be->matmul(out, x, &t.host, m);
            double e = norm_err(out, ref, (size_t)m * n);
            ck_assert_msg(e < (m > 8 && dtypes[d] != KN_F32 ? 1e-2 : 1e-4), "backend matmul %s m=%d: error %g",
                          dtype_name(dtypes[d]), m, e);
            free(x);
            free(out);
            free(ref);
        }
        weights_free(&t);
    }
}
END_TEST

/* Attention through the backend against the CPU references, on a paged
 * view whose block table is scrambled and whose rows are padded. */
START_TEST(test_backend_attention)
{
    const struct kn_backend *be = kn_cuda_backend();
    struct kn_attn_shape s = {.n_heads = 4, .n_kv_heads = 2, .head_dim = 64};
    int S = 37, T = 5, pos0 = S - T, block = 8, nblocks = (S + block - 1) / block;
    int stride = s.n_kv_heads * s.head_dim + 3;
    int32_t blocks[8];
    size_t rows = (size_t)nblocks * block, qn = (size_t)T * s.n_heads * s.head_dim;
    float *k = rand_array(rows * stride), *v = rand_array(rows * stride), *q = rand_array(qn);
    float *out = xmalloc(qn * sizeof(float)), *ref = xmalloc(qn * sizeof(float));
    double *ref64 = xmalloc(qn * sizeof(double));

    ck_assert_ptr_nonnull(be);
    ck_assert_int_le(nblocks, 8);
    for (int i = 0; i < nblocks; i++)
        blocks[i] = nblocks - 1 - i; /* reversed */
    struct kn_kv_view kv = {.k = k, .v = v, .pos_stride = stride, .block_size = block, .blocks = blocks};

    /* decode: one query over S positions */
    kn_attention_decode_ref(ref, q, &kv, S, &s);
    for (size_t i = 0; i < (size_t)s.n_heads * s.head_dim; i++) {
        out[i] = NAN;
        ref64[i] = ref[i];
    }
    be->attention_decode(out, q, &kv, S, &s);
    double e = norm_err(out, ref64, (size_t)s.n_heads * s.head_dim);
    ck_assert_msg(e < 1e-4, "backend decode: error %g", e);

    /* prefill: T queries at pos0.. */
    kn_attention_prefill_ref(ref, q, &kv, T, pos0, &s);
    for (size_t i = 0; i < qn; i++) {
        out[i] = NAN;
        ref64[i] = ref[i];
    }
    be->attention_prefill(out, q, &kv, T, pos0, &s);
    e = norm_err(out, ref64, qn);
    ck_assert_msg(e < 1e-4, "backend prefill: error %g", e);

    free(k);
    free(v);
    free(q);
    free(out);
    free(ref);
    free(ref64);
}
END_TEST

/* ---- main ------------------------------------------------------------------------------------------ */

static Suite *suite_cuda_matmul(void)
{
    Suite *s = suite_create("cuda_matmul");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_versions);
    tcase_add_loop_test(tc, test_sgemm, 0, N_SGEMM_SHAPES);
    tcase_add_loop_test(tc, test_bgemm, 0, N_BGEMM_SHAPES);
    tcase_add_test(tc, test_bgemm_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("gemv");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_gemv, 0, N_GEMV_SHAPES);
    tcase_add_test(tc, test_gemv_errors);
    tcase_add_test(tc, test_matmul_dispatch);
    suite_add_tcase(s, tc);

    tc = tcase_create("cublas_backend");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_cublas);
    tcase_add_test(tc, test_backend_matmul);
    tcase_add_test(tc, test_backend_attention);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (kn_cuda_device_count() == 0) {
        printf("check_cuda_matmul: skipped: no CUDA device (%s)\n", kn_cuda_error());
        return 77;
    }
    if (kn_cuda_init(0) != 0) {
        printf("check_cuda_matmul: cannot use device 0: %s\n", kn_cuda_error());
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(suite_cuda_matmul());
    srunner_set_fork_status(sr, CK_NOFORK); /* a CUDA context does not survive fork() */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
