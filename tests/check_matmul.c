/* check_matmul.c -- unit tests of kernels/matmul.c and kernels/backend.c:
 * kn_matmul_ref and the f32 fast path against a float64 reference written
 * here, on awkward sizes, for every ISA the CPU has and 1 and 2 threads; the
 * bf16 and q8 reference paths; thread, ISA and backend selection.
 *
 * Error metric everywhere: normwise over the whole output,
 *     max_ij |out_ij - ref64_ij| / max_ij |ref64_ij|,
 * so a large relative error on an output that cancels to near zero does not
 * fail a correct kernel. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

/* ---- helpers ------------------------------------------------------------------ */

/* Deterministic uniform floats in [-1, 1) (xorshift64*). */
static uint64_t rng_state = 88172645463325252ull;

static float rand_sym(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 2685821657736338717ull;
    return (float)((double)(r >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

static float *rand_array(size_t n)
{
    float *a = malloc((n ? n : 1) * sizeof *a);
    ck_assert_ptr_nonnull(a);
    for (size_t i = 0; i < n; i++)
        a[i] = rand_sym();
    return a;
}

/* ref (m, n) = x (m, k) W^T in float64; W given as float (n, k). */
static void matmul_ref64(double *ref, const float *x, const float *w, int m, int n, int k)
{
    for (int r = 0; r < m; r++)
        for (int i = 0; i < n; i++) {
            double s = 0.0;
            for (int j = 0; j < k; j++)
                s += (double)x[(size_t)r * k + j] * (double)w[(size_t)i * k + j];
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

/* The ISAs this CPU can run, portable first; returns how many. */
static int isas_available(enum kn_isa *isas)
{
    int n = 0;
    isas[n++] = KN_ISA_PORTABLE;
    if (kn_set_isa(KN_ISA_AVX2) == KN_ISA_AVX2)
        isas[n++] = KN_ISA_AVX2;
    if (kn_set_isa(KN_ISA_AVX512) == KN_ISA_AVX512)
        isas[n++] = KN_ISA_AVX512;
    kn_set_isa(KN_ISA_AUTO);
    return n;
}

/* Check kn_matmul_ref (when check_ref) and kn_matmul for f32 weights of
 * (n, k) and m rows against float64, for every ISA and 1 and 2 threads. */
static void check_f32(int m, int n, int k, int check_ref)
{
    float *x = rand_array((size_t)m * k);
    float *wd = rand_array((size_t)n * k);
    double *ref = malloc(((size_t)m * n + 1) * sizeof *ref);
    float *out = malloc(((size_t)m * n + 1) * sizeof *out);
    struct kn_weights w = {.dtype = KN_F32, .n = n, .k = k, .data = wd};
    enum kn_isa isas[3];
    int nisa = isas_available(isas);

    ck_assert_ptr_nonnull(ref);
    ck_assert_ptr_nonnull(out);
    matmul_ref64(ref, x, wd, m, n, k);
    if (check_ref) {
        kn_matmul_ref(out, x, &w, m);
        double e = norm_err(out, ref, (size_t)m * n);
        ck_assert_msg(e < 1e-5, "ref m=%d n=%d k=%d: error %g", m, n, k, e);
    }
    for (int i = 0; i < nisa; i++) {
        for (int t = 1; t <= 2; t++) {
            kn_set_isa(isas[i]);
            kn_set_threads(t);
            for (size_t j = 0; j < (size_t)m * n; j++)
                out[j] = NAN; /* every output must be written */
            kn_matmul(out, x, &w, m);
            double e = norm_err(out, ref, (size_t)m * n);
            ck_assert_msg(e < 1e-5, "%s threads=%d m=%d n=%d k=%d: error %g", kn_isa_name(isas[i]), t, m, n,
                          k, e);
        }
    }
    kn_set_isa(KN_ISA_AUTO);
    kn_set_threads(0);
    free(x);
    free(wd);
    free(ref);
    free(out);
}

static const int test_m[] = {1, 2, 3, 4, 7, 17, 23, 64, 100};
static const int test_nk[] = {1, 3, 31, 64, 127, 256, 1000, 1031};
#define N_M (int)(sizeof test_m / sizeof test_m[0])
#define N_NK (int)(sizeof test_nk / sizeof test_nk[0])

/* ---- f32 --------------------------------------------------------------------- */

/* Small m (GEMV path): every (n, k) pair. */
START_TEST(test_f32_small_m)
{
    int m = test_m[_i];
    for (int a = 0; a < N_NK; a++)
        for (int b = 0; b < N_NK; b++)
            check_f32(m, test_nk[a], test_nk[b], 1);
}
END_TEST

/* Larger m (7 and 17 take the GEMV path for small batches, 64 and 100 the
 * blocked GEMM): every n, with k rotating through the list so the run stays
 * short. */
START_TEST(test_f32_large_m)
{
    int m = test_m[_i];
    for (int a = 0; a < N_NK; a++) {
        int n = test_nk[a], k = test_nk[(a + _i) % N_NK];
        check_f32(m, n, k, (double)m * n * k < 2e6);
    }
}
END_TEST

/* Shapes that cross every cache block boundary of the GEMM (several MC
 * blocks of x, several NC blocks of W, several KC steps with a remainder),
 * and both sides of the switch from GEMV to GEMM. */
START_TEST(test_f32_blocks)
{
    check_f32(300, 37, 600, 0);
    check_f32(151, 4500, 9, 0);
    check_f32(13, 4097, 3, 0);
    check_f32(4, 5, 1031, 1);
    check_f32(23, 70, 45, 1); /* the last m of the GEMV path ... */
    check_f32(24, 70, 45, 1); /* ... and the first of the GEMM path */
}
END_TEST

/* m = 0 leaves out alone; k = 0 gives zeros. */
START_TEST(test_f32_empty)
{
    float x[4] = {1, 2, 3, 4}, wd[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
    struct kn_weights w = {.dtype = KN_F32, .n = 2, .k = 4, .data = wd};

    out[0] = 42.0f;
    kn_matmul(out, x, &w, 0);
    ck_assert_float_eq(out[0], 42.0f);
    w.k = 0;
    w.n = 8;
    for (int i = 0; i < 8; i++)
        out[i] = NAN;
    kn_matmul(out, x, &w, 1);
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq(out[i], 0.0f);
}
END_TEST

/* ---- bf16 and q8 references ------------------------------------------------------- */

/* bfloat16 of f, rounded to nearest even (NaN not needed here). */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* kn_matmul_ref on bf16 weights against float64 on the unrounded weights:
 * bf16 keeps 8 bits of mantissa, so 1e-2 normwise. */
START_TEST(test_ref_bf16)
{
    static const int shapes[][3] = {{1, 64, 256}, {3, 31, 127}, {7, 100, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *x = rand_array((size_t)m * k), *wf = rand_array((size_t)n * k);
        uint16_t *wb = malloc((size_t)n * k * sizeof *wb);
        double *ref = malloc((size_t)m * n * sizeof *ref);
        float *out = malloc((size_t)m * n * sizeof *out);
        for (size_t i = 0; i < (size_t)n * k; i++)
            wb[i] = to_bf16(wf[i]);
        struct kn_weights w = {.dtype = KN_BF16, .n = n, .k = k, .data = wb};
        matmul_ref64(ref, x, wf, m, n, k);
        kn_matmul_ref(out, x, &w, m);
        double e = norm_err(out, ref, (size_t)m * n);
        ck_assert_msg(e < 1e-2, "bf16 m=%d n=%d k=%d: error %g", m, n, k, e);
        free(x);
        free(wf);
        free(wb);
        free(ref);
        free(out);
    }
}
END_TEST

/* kn_matmul_ref on q8 weights (quantised here: symmetric, scale = max|w| /
 * 127 per group) against float64 on the unquantised weights: 2e-2. */
START_TEST(test_ref_q8)
{
    static const int shapes[][4] = {{1, 64, 256, 32}, {3, 31, 128, 64}, {7, 100, 64, 32}, {2, 5, 192, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], g = shapes[s][3];
        size_t nk = (size_t)n * k;
        float *x = rand_array((size_t)m * k), *wf = rand_array(nk);
        int8_t *q = malloc(nk);
        float *scales = malloc(nk / g * sizeof *scales);
        double *ref = malloc((size_t)m * n * sizeof *ref);
        float *out = malloc((size_t)m * n * sizeof *out);
        for (size_t b = 0; b < nk / g; b++) {
            float amax = 0.0f;
            for (int j = 0; j < g; j++)
                amax = fmaxf(amax, fabsf(wf[b * g + j]));
            float scale = amax / 127.0f;
            scales[b] = scale;
            for (int j = 0; j < g; j++)
                q[b * g + j] = (int8_t)(scale > 0.0f ? lrintf(wf[b * g + j] / scale) : 0);
        }
        struct kn_weights w = {.dtype = KN_Q8, .n = n, .k = k, .group = g, .data = q, .scales = scales};
        matmul_ref64(ref, x, wf, m, n, k);
        kn_matmul_ref(out, x, &w, m);
        double e = norm_err(out, ref, (size_t)m * n);
        ck_assert_msg(e < 2e-2, "q8 m=%d n=%d k=%d group=%d: error %g", m, n, k, g, e);
        free(x);
        free(wf);
        free(q);
        free(scales);
        free(ref);
        free(out);
    }
}
END_TEST

/* ---- threads, ISAs, backends ---------------------------------------------------------- */

START_TEST(test_threads)
{
    kn_set_threads(1);
    ck_assert_int_eq(kn_get_threads(), 1);
    kn_set_threads(3);
#ifdef _OPENMP
    ck_assert_int_eq(kn_get_threads(), 3);
#else
    ck_assert_int_eq(kn_get_threads(), 1);
#endif
    kn_set_threads(0); /* back to the default */
    ck_assert_int_ge(kn_get_threads(), 1);
}
END_TEST

/* Forcing an ISA the CPU lacks gives the best one below it. */
START_TEST(test_isa)
{
    enum kn_isa best = kn_set_isa(KN_ISA_AUTO);

    ck_assert_int_ne(best, KN_ISA_AUTO);
    ck_assert_int_eq(kn_get_isa(), best);
    ck_assert_int_eq(kn_set_isa(KN_ISA_PORTABLE), KN_ISA_PORTABLE);
    ck_assert_int_eq(kn_get_isa(), KN_ISA_PORTABLE);
    enum kn_isa got = kn_set_isa(KN_ISA_AVX512);
    ck_assert_int_eq(got, best);
    ck_assert_int_eq(kn_get_isa(), got);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    ck_assert_int_eq(best, has_avx512 ? KN_ISA_AVX512 : has_avx2 ? KN_ISA_AVX2 : KN_ISA_PORTABLE);
    ck_assert_int_eq(kn_set_isa(KN_ISA_AVX2), has_avx2 ? KN_ISA_AVX2 : KN_ISA_PORTABLE);
#endif
    ck_assert_str_eq(kn_isa_name(KN_ISA_PORTABLE), "portable");
    ck_assert_str_eq(kn_isa_name(KN_ISA_AVX2), "avx2");
    ck_assert_str_eq(kn_isa_name(KN_ISA_AVX512), "avx512");
    ck_assert_str_eq(kn_isa_name(KN_ISA_AUTO), "auto");
    kn_set_isa(KN_ISA_AUTO);
}
END_TEST

START_TEST(test_backend_find)
{
    const struct kn_backend *cpu = kn_backend_find("cpu");
    const struct kn_backend *ref = kn_backend_find("ref");

    ck_assert_ptr_nonnull(cpu);
    ck_assert_ptr_nonnull(ref);
    ck_assert_str_eq(cpu->name, "cpu");
    ck_assert_str_eq(ref->name, "ref");
    ck_assert(cpu->matmul == kn_matmul);
    ck_assert(ref->matmul == kn_matmul_ref);
    ck_assert(cpu->attention_prefill == kn_attention_prefill);
    ck_assert(cpu->attention_decode == kn_attention_decode);
    ck_assert(ref->attention_prefill == kn_attention_prefill_ref);
    ck_assert(ref->attention_decode == kn_attention_decode_ref);
    ck_assert_ptr_null(kn_backend_find("no-such-backend"));
    ck_assert_ptr_null(kn_backend_find(NULL));
}
END_TEST

/* ---- main -------------------------------------------------------------------------- */

static Suite *suite_matmul(void)
{
    Suite *s = suite_create("matmul");
    TCase *tc = tcase_create("f32");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_f32_small_m, 0, 3);
    tcase_add_loop_test(tc, test_f32_large_m, 3, N_M);
    tcase_add_test(tc, test_f32_blocks);
    tcase_add_test(tc, test_f32_empty);
    suite_add_tcase(s, tc);

    tc = tcase_create("dtypes");
    tcase_add_test(tc, test_ref_bf16);
    tcase_add_test(tc, test_ref_q8);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *suite_backend(void)
{
    Suite *s = suite_create("backend");
    TCase *tc = tcase_create("select");
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_isa);
    tcase_add_test(tc, test_backend_find);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_matmul());
    srunner_add_suite(sr, suite_backend());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
