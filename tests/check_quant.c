/* check_quant.c -- unit tests of kernels/quant.c: the bfloat16 and Q8
 * conversions, and kn_matmul for KN_BF16 and KN_Q8 (through kn_matmul, so
 * the dispatch is exercised, and kn_matmul_ref) against float64 references
 * computed from the original float weights and activations, for every ISA
 * and 1 and 2 threads.
 *
 * Tolerances.  With ref the float64 product of the ORIGINAL x and W, and
 * normwise error = max|out - ref| / max|ref| over the whole output:
 *
 *  - bf16: each weight is rounded to 8 significant bits, a relative error of
 *    at most u = 2^-8 (half the 2^-7 spacing).  Per element that gives the
 *    hard bound |out - ref| <= (2^-8 + k 2^-23) sum_j |x_j w_j| (the second
 *    term covers float32 accumulation), checked for every element.  The
 *    rounding errors are independent with standard deviation about u/sqrt(3)
 *    relative, so the error of a dot product is a random walk of the same
 *    length as the dot product itself: normwise about 2.3e-3.  Bound: 1e-2
 *    (4x margin; a real bug such as a wrong shift or a lost tail is O(1)).
 *
 *  - Q8: weights and activations are each quantised with error at most s/2
 *    per element (s = max|group|/127).  Hard per-element bound:
 *    sum_j (|x_j| s_w/2 + |w_j| s_x/2 + s_x s_w/4) + k 2^-23 sum_j |x~ w~|.
 *    Statistically each error is uniform on [-s/2, s/2], about 1/127/sqrt(12)
 *    /0.58 = 3.9e-3 of a typical uniform element, two such terms add to about
 *    5.6e-3 normwise.  Bound: 3e-2 (5x margin).
 *
 *  - The integer kernels are pinned down much more tightly: the test
 *    quantises x itself (kn_quantize_q8 is bit-identical across ISAs, which
 *    is tested), computes the exact integer dot product of every group, and
 *    requires every path to match sum_g dot_g sx_g sw_g to float rounding:
 *    |out - exact| <= (groups + 8) 2^-23 sum_g sx_g sw_g sum_j |xq_j wq_j|
 *    (the sum of absolute products, not |dot_g|: SIMD code may split a
 *    group's dot product into partial sums that are scaled separately). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

static const double BF16_NORMWISE_TOL = 1e-2;
static const double Q8_NORMWISE_TOL = 3e-2;

/* ==== helpers ================================================================ */

static uint64_t rng_state;
static int default_threads; /* kn_get_threads() at start, restored after each case */

static uint32_t rnd_u32(void)
{
    /* splitmix64: good enough for test data, reproducible. */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* Uniform in [-1, 1). */
static float rnd_sym(void)
{
    return (float)((double)rnd_u32() / 2147483648.0 - 1.0);
}

static float f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t bits_of_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static uint16_t to_bf16(float f)
{
    uint16_t h;
    kn_f32_to_bf16(&h, &f, 1);
    return h;
}

/* Random activations (m, k) in [-1, 1) and weights (n, k) whose rows vary in
 * magnitude by 2^-3 .. 2^3, so that group scales differ. */
static void fill_data(float *x, float *w, int m, int n, int k)
{
    for (size_t i = 0; i < (size_t)m * k; i++)
        x[i] = rnd_sym();
    for (int i = 0; i < n; i++) {
        float mag = ldexpf(1.0f, (int)(rnd_u32() % 7) - 3);
        for (int j = 0; j < k; j++)
            w[(size_t)i * k + j] = mag * rnd_sym();
    }
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ==== bfloat16 conversions ====================================================== */

/* Every finite bf16 survives bf16 -> f32 -> bf16 unchanged, and the float is
 * the bf16 bits shifted up. */
START_TEST(test_bf16_round_trip)
{
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if ((h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0)
            continue; /* NaN: see test_bf16_special */
        uint16_t in = (uint16_t)h, back;
        float f;
        kn_bf16_to_f32(&f, &in, 1);
        ck_assert_uint_eq(bits_of_f32(f), h << 16);
        kn_f32_to_bf16(&back, &f, 1);
        ck_assert_uint_eq(back, h);
    }
}
END_TEST

/* Round to nearest, ties to even; just above and below a tie. */
START_TEST(test_bf16_round_nearest_even)
{
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x3f808000u)), 0x3f80u); /* tie, down to even */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x3f818000u)), 0x3f82u); /* tie, up to even */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0xbf808000u)), 0xbf80u); /* negative tie */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0xbf818000u)), 0xbf82u);
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x3f808001u)), 0x3f81u); /* above the tie */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x3f807fffu)), 0x3f80u); /* below */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x3fffffffu)), 0x4000u); /* carry into the exponent */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x7f7fffffu)), 0x7f80u); /* FLT_MAX rounds to inf */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x7f7f7fffu)), 0x7f7fu); /* largest bf16 stays */

    /* Against float64 arithmetic: the result is the nearer neighbour. */
    for (int t = 0; t < 20000; t++) {
        float f = f32_of_bits(rnd_u32() & 0xbfffffffu); /* finite, any sign */
        uint16_t h = to_bf16(f);
        double lo = (double)f32_of_bits((uint32_t)(bits_of_f32(f) & 0xffff0000u));
        double hi = (double)f32_of_bits((uint32_t)((bits_of_f32(f) & 0xffff0000u) + 0x10000u));
        double got = (double)f32_of_bits((uint32_t)h << 16);
        double d_got = fabs(got - f), d_other = fmin(fabs(lo - f), fabs(hi - f));
        ck_assert_msg(d_got <= d_other, "bf16(%a) = %a, not the nearest", f, got);
    }
}
END_TEST

/* NaN stays NaN (even one whose payload lies in the dropped bits), infinities,
 * signed zeros and denormals behave. */
START_TEST(test_bf16_special)
{
    float back;
    uint16_t h;

    uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu, 0x7f80ffffu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        h = to_bf16(f32_of_bits(nans[i]));
        kn_bf16_to_f32(&back, &h, 1);
        ck_assert_msg(isnan(back), "NaN %08x became %04x", nans[i], h);
        ck_assert_uint_eq(h >> 15, nans[i] >> 31); /* sign kept */
    }
    ck_assert_uint_eq(to_bf16(INFINITY), 0x7f80u);
    ck_assert_uint_eq(to_bf16(-INFINITY), 0xff80u);
    ck_assert_uint_eq(to_bf16(0.0f), 0x0000u);
    ck_assert_uint_eq(to_bf16(-0.0f), 0x8000u);
    h = 0x8000u;
    kn_bf16_to_f32(&back, &h, 1);
    ck_assert(back == 0.0f && signbit(back));

    /* Denormals: exact ones stay, others round like normals. */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x00010000u)), 0x0001u);
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x00000001u)), 0x0000u); /* tiny, rounds to 0 */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x80000001u)), 0x8000u); /* to -0 */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x00018000u)), 0x0002u); /* tie to even */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x00008000u)), 0x0000u); /* tie to even (0) */
    ck_assert_uint_eq(to_bf16(f32_of_bits(0x007fffffu)), 0x0080u); /* up to FLT_MIN */
}
END_TEST

/* ==== Q8 conversions ============================================================ */

/* Quantise N values with GROUP under ISA. */
static void quantize_with(enum kn_isa isa, int8_t *q, float *s, const float *x, size_t n, int group)
{
    kn_set_isa(isa);
    kn_quantize_q8(q, s, x, n, group);
    kn_set_isa(KN_ISA_AUTO);
}

/* |x - dequant(quant(x))| <= scale/2 per element, |q| <= 127 with 127
 * reached in every group, scale = max|x|/127; the portable and AVX2 versions
 * give identical bytes and scales. */
START_TEST(test_q8_error)
{
    const int groups[] = {32, 64, 16};
    const size_t n = 64 * 40;
    float *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y);
    float *s = xmalloc(n * sizeof *s), *s2 = xmalloc(n * sizeof *s2);
    int8_t *q = xmalloc(n), *q2 = xmalloc(n);

    for (size_t i = 0; i < n; i++)
        x[i] = ldexpf(rnd_sym(), (int)(i / 64 % 40) - 20); /* 2^-20 .. 2^19 */
    for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
        int group = groups[gi];
        quantize_with(KN_ISA_PORTABLE, q, s, x, n, group);
        quantize_with(KN_ISA_AVX2, q2, s2, x, n, group);
        ck_assert_mem_eq(q, q2, n);
        ck_assert_mem_eq(s, s2, n / (size_t)group * sizeof *s);
        kn_dequantize_q8(y, q, s, n, group);
        for (size_t g = 0; g < n / (size_t)group; g++) {
            double amax = 0;
            int qmax = 0;
            for (size_t j = g * group; j < (g + 1) * group; j++) {
                amax = fmax(amax, fabs(x[j]));
                qmax = abs(q[j]) > qmax ? abs(q[j]) : qmax;
            }
            ck_assert(fabs(s[g] - amax / 127.0) <= ldexp(amax / 127.0, -24));
            ck_assert_int_eq(qmax, 127);
            for (size_t j = g * group; j < (g + 1) * group; j++)
                ck_assert_msg(fabs((double)y[j] - x[j]) <= s[g] * (0.5 + 1e-5), "group %d elem %zu: %a -> %a, scale %a",
                              group, j, x[j], y[j], s[g]);
        }
    }
    free(x), free(y), free(s), free(s2), free(q), free(q2);
}
END_TEST

/* A zero group gets scale 0 and q 0; its neighbours are unaffected. */
START_TEST(test_q8_zero_group)
{
    float x[96], y[96], s[3];
    int8_t q[96];
    enum kn_isa isas[] = {KN_ISA_PORTABLE, KN_ISA_AVX2};
    for (size_t t = 0; t < 2; t++) {
        for (int j = 0; j < 96; j++)
            x[j] = j >= 32 && j < 64 ? 0.0f : rnd_sym();
        x[40] = -0.0f;
        memset(q, 0x55, sizeof q);
        quantize_with(isas[t], q, s, x, 96, 32);
        ck_assert_float_eq(s[1], 0.0f);
        ck_assert(s[0] > 0 && s[2] > 0);
        for (int j = 32; j < 64; j++)
            ck_assert_int_eq(q[j], 0);
        kn_dequantize_q8(y, q, s, 96, 32);
        for (int j = 32; j < 64; j++)
            ck_assert_float_eq(y[j], 0.0f);
    }
}
END_TEST

/* round() is half away from zero, in both versions: with max|x| = 127 the
 * scale is exactly 1. */
START_TEST(test_q8_ties)
{
    float x[32] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 126.5f, -126.5f, 1.5f, 3.49f, -3.51f};
    const int8_t want[10] = {127, 3, -3, 1, -1, 127, -127, 2, 3, -4};
    enum kn_isa isas[] = {KN_ISA_PORTABLE, KN_ISA_AVX2};
    for (size_t t = 0; t < 2; t++) {
        int8_t q[32];
        float s;
        quantize_with(isas[t], q, &s, x, 32, 32);
        ck_assert_float_eq(s, 1.0f);
        for (int j = 0; j < 10; j++)
            ck_assert_msg(q[j] == want[j], "%s: q(%g) = %d, want %d", kn_isa_name(isas[t]), x[j], q[j], want[j]);
    }
}
END_TEST

/* ==== matmul ========================================================================== */

struct shape {
    int m, n, k;
};

/* Covers m in {1,2,3,5,17,64}, n in {1,3,31,33,257,1000}, k in {32,64,96,
 * 448,1600,4160}; m = 130 spans several activation chunks of the Q8 path. */
static const struct shape shapes[] = {
    {1, 1, 32},    {1, 257, 4160},  {1, 257, 96},  {2, 257, 96},   {2, 3, 4160},  {3, 31, 64},
    {3, 1000, 32}, {5, 3, 4160},    {5, 1000, 64}, {17, 31, 4160}, {17, 1, 32},   {64, 257, 96},
    {64, 3, 4160}, {64, 1, 64},     {130, 3, 4160},
    /* Q8 GEMV: 7, 14, 25 or 50 groups per row, so a last block of fewer
     * than the 8 groups the AVX2 kernel reduces at a time */
    {1, 1000, 448}, {1, 33, 1600},
};

/* ref (m, n) = x (m, k) W^T in float64 with the original floats, and
 * bound (m, n) = sum_j |x_j w_j|. */
static void matmul_f64(double *ref, double *absum, const float *x, const float *w, int m, int n, int k)
{
    for (int r = 0; r < m; r++)
        for (int i = 0; i < n; i++) {
            double s = 0, a = 0;
            for (int j = 0; j < k; j++) {
                double p = (double)x[(size_t)r * k + j] * w[(size_t)i * k + j];
                s += p;
                a += fabs(p);
            }
            ref[(size_t)r * n + i] = s;
            absum[(size_t)r * n + i] = a;
        }
}

/* Check OUT against REF: per element |out - ref| <= bound[i]; and the
 * normwise error max|out - ref| / max|ref| <= tol.  WHAT names the case. */
static void check_close(const float *out, const double *ref, const double *bound, size_t len, double tol,
                        const char *what)
{
    double maxerr = 0, maxref = 0;
    for (size_t i = 0; i < len; i++) {
        double e = fabs(out[i] - ref[i]);
        ck_assert_msg(e <= bound[i], "%s: element %zu: %.9g vs %.9g, error %.3g over bound %.3g", what, i,
                      out[i], ref[i], e, bound[i]);
        maxerr = fmax(maxerr, e);
        maxref = fmax(maxref, fabs(ref[i]));
    }
    ck_assert_msg(maxerr <= tol * maxref, "%s: normwise error %.3g over %.3g", what, maxerr / maxref, tol);
}

/* Run kn_matmul under every ISA and 1 and 2 threads, and kn_matmul_ref, on
 * W; compare each with REF/BOUND. */
static void check_all_paths(const struct kn_weights *w, const float *x, int m, const double *ref,
                            const double *bound, double tol, const char *name)
{
    const size_t len = (size_t)m * w->n;
    float *out = xmalloc(len * sizeof *out);
    const enum kn_isa isas[] = {KN_ISA_PORTABLE, KN_ISA_AVX2};
    char what[128];
    for (int t = 0; t < 2; t++)
        for (int threads = 1; threads <= 2; threads++) {
            kn_set_isa(isas[t]);
            kn_set_threads(threads);
            for (size_t i = 0; i < len; i++)
                out[i] = NAN;
            kn_matmul(out, x, w, m);
            snprintf(what, sizeof what, "%s m=%d n=%d k=%d group=%d %s threads=%d", name, m, w->n, w->k, w->group,
                     kn_isa_name(kn_get_isa()), threads);
            check_close(out, ref, bound, len, tol, what);
        }
    kn_set_isa(KN_ISA_AUTO);
    kn_set_threads(default_threads);
    kn_matmul_ref(out, x, w, m);
    snprintf(what, sizeof what, "%s m=%d n=%d k=%d ref", name, m, w->n, w->k);
    check_close(out, ref, bound, len, tol, what);
    free(out);
}

START_TEST(test_matmul_bf16)
{
    const struct shape *sh = &shapes[_i];
    const int m = sh->m, n = sh->n, k = sh->k;
    float *x = xmalloc((size_t)m * k * sizeof *x), *wf = xmalloc((size_t)n * k * sizeof *wf);
    uint16_t *wb = xmalloc((size_t)n * k * sizeof *wb);
    double *ref = xmalloc((size_t)m * n * sizeof *ref), *bound = xmalloc((size_t)m * n * sizeof *bound);

    rng_state = 1000 + (uint64_t)_i;
    fill_data(x, wf, m, n, k);
    kn_f32_to_bf16(wb, wf, (size_t)n * k);
    matmul_f64(ref, bound, x, wf, m, n, k);
    for (size_t i = 0; i < (size_t)m * n; i++)
        bound[i] *= ldexp(1.0, -8) + k * ldexp(1.0, -23);
    struct kn_weights w = {.dtype = KN_BF16, .n = n, .k = k, .data = wb};
    check_all_paths(&w, x, m, ref, bound, BF16_NORMWISE_TOL, "bf16");
    free(x), free(wf), free(wb), free(ref), free(bound);
}
END_TEST

/* The group scale max|v|/127 of each group of G in v (len), in float64. */
static void group_scales(double *s, const float *v, size_t len, int g)
{
    for (size_t i = 0; i < len / (size_t)g; i++) {
        double amax = 0;
        for (int j = 0; j < g; j++)
            amax = fmax(amax, fabs(v[i * g + j]));
        s[i] = amax / 127.0;
    }
}

START_TEST(test_matmul_q8)
{
    const struct shape *sh = &shapes[_i];
    const int m = sh->m, n = sh->n, k = sh->k;
    const int group = k % 64 == 0 && _i % 2 == 0 ? 64 : 32, ng = k / group;
    float *x = xmalloc((size_t)m * k * sizeof *x), *wf = xmalloc((size_t)n * k * sizeof *wf);
    int8_t *wq = xmalloc((size_t)n * k);
    float *ws = xmalloc((size_t)n * ng * sizeof *ws);
    double *ref = xmalloc((size_t)m * n * sizeof *ref), *bound = xmalloc((size_t)m * n * sizeof *bound);
    double *sx = xmalloc((size_t)m * ng * sizeof *sx), *sw = xmalloc((size_t)n * ng * sizeof *sw);

    rng_state = 2000 + (uint64_t)_i;
    fill_data(x, wf, m, n, k);
    kn_quantize_q8(wq, ws, wf, (size_t)n * k, group);
    group_scales(sx, x, (size_t)m * k, group);
    group_scales(sw, wf, (size_t)n * k, group);
    for (int r = 0; r < m; r++)
        for (int i = 0; i < n; i++) {
            double s = 0, quant = 0, acc = 0;
            for (int j = 0; j < k; j++) {
                double xv = x[(size_t)r * k + j], wv = wf[(size_t)i * k + j];
                double hx = sx[(size_t)r * ng + j / group] / 2, hw = sw[(size_t)i * ng + j / group] / 2;
                s += xv * wv;
                quant += fabs(xv) * hw + fabs(wv) * hx + hx * hw;
                acc += (fabs(xv) + hx) * (fabs(wv) + hw);
            }
            ref[(size_t)r * n + i] = s;
            bound[(size_t)r * n + i] = 1.001 * quant + k * ldexp(1.0, -23) * acc;
        }
    struct kn_weights w = {.dtype = KN_Q8, .n = n, .k = k, .group = group, .data = wq, .scales = ws};
    check_all_paths(&w, x, m, ref, bound, Q8_NORMWISE_TOL, "q8");
    free(x), free(wf), free(wq), free(ws), free(ref), free(bound), free(sx), free(sw);
}
END_TEST

/* The fast paths against the exact integer arithmetic: x quantised here as
 * the kernel does, every group's int8 dot product exact, so only float
 * rounding of the scaling and the sum separates kernel and reference. */
START_TEST(test_matmul_q8_integer)
{
    const struct shape *sh = &shapes[_i];
    const int m = sh->m, n = sh->n, k = sh->k;
    const int group = k % 64 == 0 && _i % 2 == 1 ? 64 : 32, ng = k / group;
    float *x = xmalloc((size_t)m * k * sizeof *x), *wf = xmalloc((size_t)n * k * sizeof *wf);
    int8_t *wq = xmalloc((size_t)n * k), *xq = xmalloc((size_t)m * k);
    float *ws = xmalloc((size_t)n * ng * sizeof *ws), *xs = xmalloc((size_t)m * ng * sizeof *xs);
    float *out = xmalloc((size_t)m * n * sizeof *out);
    double *exact = xmalloc((size_t)m * n * sizeof *exact), *bound = xmalloc((size_t)m * n * sizeof *bound);

    rng_state = 3000 + (uint64_t)_i;
    fill_data(x, wf, m, n, k);
    kn_quantize_q8(wq, ws, wf, (size_t)n * k, group);
    kn_quantize_q8(xq, xs, x, (size_t)m * k, group);
    for (int r = 0; r < m; r++)
        for (int i = 0; i < n; i++) {
            double s = 0, a = 0;
            for (int g = 0; g < ng; g++) {
                long dot = 0, absdot = 0;
                for (int j = g * group; j < (g + 1) * group; j++) {
                    long p = (long)xq[(size_t)r * k + j] * wq[(size_t)i * k + j];
                    dot += p;
                    absdot += labs(p);
                }
                double scale = (double)xs[(size_t)r * ng + g] * ws[(size_t)i * ng + g];
                s += (double)dot * scale;
                a += (double)absdot * scale;
            }
            exact[(size_t)r * n + i] = s;
            bound[(size_t)r * n + i] = (ng + 8) * ldexp(1.0, -23) * a;
        }
    struct kn_weights w = {.dtype = KN_Q8, .n = n, .k = k, .group = group, .data = wq, .scales = ws};
    /* The same weights re-laid by kn_pack_q8, in a buffer offset by one
     * byte (any alignment is allowed). */
    char *packed_buf = xmalloc(kn_pack_q8_bytes(&w) + 1);
    struct kn_weights wp = w;
    kn_pack_q8(packed_buf + 1, &wp);
    ck_assert_ptr_eq(wp.packed, packed_buf + 1);
    ck_assert_uint_eq(kn_pack_q8_bytes(&w), (size_t)n * k + (size_t)n * ((ng + 7) / 8) * 8 * sizeof(float));
    float *out_packed = xmalloc((size_t)m * n * sizeof *out_packed);
    const enum kn_isa isas[] = {KN_ISA_PORTABLE, KN_ISA_AVX2};
    for (int t = 0; t < 2; t++)
        for (int threads = 1; threads <= 2; threads++) {
            char what[128];
            kn_set_isa(isas[t]);
            kn_set_threads(threads);
            kn_matmul(out, x, &w, m);
            snprintf(what, sizeof what, "q8 integer m=%d n=%d k=%d group=%d %s threads=%d", m, n, k, group,
                     kn_isa_name(kn_get_isa()), threads);
            check_close(out, exact, bound, (size_t)m * n, 1e-5, what);
            kn_matmul(out_packed, x, &wp, m);
            for (size_t i = 0; i < (size_t)m * n; i++)
                ck_assert_msg(memcmp(&out[i], &out_packed[i], sizeof(float)) == 0,
                              "%s packed: element %zu: %.9g, unpacked %.9g", what, i, out_packed[i], out[i]);
            if (m == 1 && kn_get_isa() >= KN_ISA_AVX2) {
                /* The AVX2 GEMV reads only the packed rows: with data and
                 * scales zeroed it still gives the same outputs. */
                int8_t *zq = calloc((size_t)n * k, 1);
                float *zs = calloc((size_t)n * ng, sizeof *zs);
                ck_assert(zq != NULL && zs != NULL);
                struct kn_weights wz = wp;
                wz.data = zq;
                wz.scales = zs;
                kn_matmul(out_packed, x, &wz, m);
                for (int i = 0; i < n; i++)
                    ck_assert_msg(memcmp(&out[i], &out_packed[i], sizeof(float)) == 0,
                                  "%s packed only: element %d: %.9g, expected %.9g", what, i, out_packed[i],
                                  out[i]);
                free(zq), free(zs);
            }
        }
    kn_set_isa(KN_ISA_AUTO);
    kn_set_threads(default_threads);
    free(x), free(wf), free(wq), free(xq), free(ws), free(xs), free(out), free(exact), free(bound);
    free(packed_buf), free(out_packed);
}
END_TEST

static Suite *suite_quant(void)
{
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("conversions");
    tcase_add_test(tc, test_bf16_round_trip);
    tcase_add_test(tc, test_bf16_round_nearest_even);
    tcase_add_test(tc, test_bf16_special);
    tcase_add_test(tc, test_q8_error);
    tcase_add_test(tc, test_q8_zero_group);
    tcase_add_test(tc, test_q8_ties);
    suite_add_tcase(s, tc);

    const int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    tc = tcase_create("matmul");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_matmul_bf16, 0, nshapes);
    tcase_add_loop_test(tc, test_matmul_q8, 0, nshapes);
    tcase_add_loop_test(tc, test_matmul_q8_integer, 0, nshapes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    default_threads = kn_get_threads();
    SRunner *sr = srunner_create(suite_quant());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
