/* check_cuda_ops.c -- unit tests of the CUDA elementwise, norm and sampling
 * kernels (kernels/cuda/ops.cu) against float64 references, or exactly
 * against the CPU kernels where the result is defined bit for bit
 * (conversions, embedding, argmax, add).
 *
 * Tolerances: RMSNorm, SwiGLU and softmax within 1e-5 relative of the
 * float64 value; RoPE within 1e-5 of the rotated pair's length against
 * float64 and within 2 float ulps of the pair's length against kn_rope.
 * Sizes: n = 1, 7 (below a warp), 127, 4097 (not multiples of a block),
 * 32000 (a vocabulary), several rows per call.
 *
 * Sampling checks the rule kn_cuda.h documents: temperature 0 and top_k 1
 * give the argmax; the probabilities left in the logits match a float64
 * softmax; for a coin chosen in the middle of a kept token's slice of the
 * cumulative mass the token is exactly that one (the kept set computed here
 * from those probabilities: top-k with ties kept, then the smallest
 * most-likely set reaching top_p of its mass); a sweep of coins never
 * draws a token outside the kept set (top-p cuts the tail).
 *
 * Without a CUDA device the program prints why and exits 77 (automake's
 * SKIP).  The tests run in one process (CK_NOFORK). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "kernels/cuda/kn_cuda.h"
#include "kernels/kernels.h"

#define TOL 1e-5

static const int sizes[] = {1, 7, 127, 4097, 32000};
#define NSIZES (int)(sizeof sizes / sizeof sizes[0])

/* ---- helpers ------------------------------------------------------------------ */

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

static float uniform(struct rng *r, double lo, double hi)
{
    return (float)(lo + (hi - lo) * rng_uniform(r));
}

static float *random_vec(struct rng *r, size_t n, double lo, double hi)
{
    float *v = xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = uniform(r, lo, hi);
    return v;
}

static void *dev_upload(const void *h, size_t bytes)
{
    void *d = kn_cuda_alloc(bytes);
    ck_assert_msg(d != NULL, "kn_cuda_alloc: %s", kn_cuda_error());
    ck_assert_msg(kn_cuda_upload(d, h, bytes) == 0, "upload: %s", kn_cuda_error());
    return d;
}

static void *dev_alloc(size_t bytes)
{
    void *d = kn_cuda_alloc(bytes);
    ck_assert_msg(d != NULL, "kn_cuda_alloc: %s", kn_cuda_error());
    return d;
}

static void dev_download(void *h, const void *d, size_t bytes)
{
    ck_assert_msg(kn_cuda_sync() == 0, "kernel: %s", kn_cuda_error());
    ck_assert_msg(kn_cuda_download(h, d, bytes) == 0, "download: %s", kn_cuda_error());
}

/* |got - want| <= TOL * scale (+ a floor for values that underflow). */
static void assert_close(const char *what, size_t i, double got, double want, double scale)
{
    const double tol = TOL * scale + 1e-30;

    ck_assert_msg(fabs(got - want) <= tol, "%s[%zu]: got %.9g, want %.9g (diff %.3g > tol %.3g)", what, i, got, want,
                  fabs(got - want), tol);
}

/* ==== elementwise ============================================================= */

START_TEST(test_embed)
{
    const int rows = 5, dim = 37, vocab = 11;
    const int32_t tokens[5] = {3, 0, 10, 3, 7};
    struct rng r;

    rng_init(&r, 1, RNG_STREAM_USER);
    float *table = random_vec(&r, (size_t)vocab * dim, -1, 1), *out = xmalloc((size_t)rows * dim * sizeof *out);
    float *dtable = dev_upload(table, (size_t)vocab * dim * sizeof *table);
    int32_t *dtok = dev_upload(tokens, sizeof tokens);
    float *dout = dev_alloc((size_t)rows * dim * sizeof *dout);

    ck_assert_int_eq(kn_cuda_embed(dout, dtable, dtok, rows, dim), 0);
    dev_download(out, dout, (size_t)rows * dim * sizeof *out);
    for (int i = 0; i < rows; i++)
        ck_assert_mem_eq(out + (size_t)i * dim, table + (size_t)tokens[i] * dim, dim * sizeof *out);
    kn_cuda_free(dtable);
    kn_cuda_free(dtok);
    kn_cuda_free(dout);
    free(table);
    free(out);
}
END_TEST

START_TEST(test_swiglu_add)
{
    struct rng r;
    static const size_t ns[] = {1, 7, 4097, (1u << 20) + 3};

    rng_init(&r, 2, RNG_STREAM_USER);
    for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
        const size_t n = ns[s];
        float *gate = random_vec(&r, n, -12, 12), *up = random_vec(&r, n, -3, 3), *out = xmalloc(n * sizeof *out);

        gate[0] = -100.0f; /* exp overflows: silu -> -0 */
        float *dgate = dev_upload(gate, n * sizeof *gate), *dup = dev_upload(up, n * sizeof *up);

        ck_assert_int_eq(kn_cuda_swiglu(dgate, dgate, dup, n), 0); /* out aliases gate */
        dev_download(out, dgate, n * sizeof *out);
        for (size_t i = 0; i < n; i++) {
            const double g = gate[i], want = g / (1.0 + exp(-g)) * up[i];
            assert_close("swiglu", i, out[i], want, fabs(want));
        }
        /* add: exactly the float sum */
        ck_assert_int_eq(kn_cuda_upload(dgate, gate, n * sizeof *gate), 0);
        ck_assert_int_eq(kn_cuda_add(dgate, dup, n), 0);
        dev_download(out, dgate, n * sizeof *out);
        for (size_t i = 0; i < n; i++) {
            const float want = gate[i] + up[i];
            ck_assert_msg(out[i] == want, "add[%zu]: %.9g != %.9g", i, (double)out[i], (double)want);
        }
        kn_cuda_free(dgate);
        kn_cuda_free(dup);
        free(gate);
        free(up);
        free(out);
    }
}
END_TEST

START_TEST(test_bf16_conversions)
{
    /* Every bf16 pattern to float, bit for bit as kn_bf16_to_f32. */
    const size_t n16 = 65536;
    uint16_t *h = xmalloc(n16 * sizeof *h);
    float *want = xmalloc(n16 * sizeof *want), *got = xmalloc(n16 * sizeof *got);

    for (size_t i = 0; i < n16; i++)
        h[i] = (uint16_t)i;
    kn_bf16_to_f32(want, h, n16);
    uint16_t *dh = dev_upload(h, n16 * sizeof *h);
    float *df = dev_alloc(n16 * sizeof *df);
    ck_assert_int_eq(kn_cuda_bf16_to_f32(df, dh, n16), 0);
    dev_download(got, df, n16 * sizeof *got);
    ck_assert_mem_eq(got, want, n16 * sizeof *got);

    /* Floats to bf16: specials, ties, neighbours of ties, random bits. */
    const size_t nf = 200003;
    uint32_t *bits = xmalloc(nf * sizeof *bits);
    uint16_t *b_want = xmalloc(nf * sizeof *b_want), *b_got = xmalloc(nf * sizeof *b_got);
    static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                                       0x7f800001u, 0xff800001u, 0x7fffffffu, 0x00000001u, 0x007fffffu,
                                       0x7f7fffffu, 0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u,
                                       0x7f7f8000u, 0xbf808000u, 0x0000ffffu};
    struct rng r;

    rng_init(&r, 3, RNG_STREAM_USER);
    for (size_t i = 0; i < nf; i++)
        bits[i] = i < sizeof special / sizeof special[0] ? special[i] : (uint32_t)rng_u64(&r);
    for (size_t i = 0; i < 1000; i++) /* exact ties, both parities */
        bits[100 + i] = ((uint32_t)rng_u64(&r) & 0xffff0000u) | 0x8000u;
    float *fl = xmalloc(nf * sizeof *fl);
    memcpy(fl, bits, nf * sizeof *fl);
    kn_f32_to_bf16(b_want, fl, nf);
    free(fl);
    float *dsrc = dev_upload(bits, nf * sizeof *bits);
    uint16_t *ddst = dev_alloc(nf * sizeof *ddst);
    ck_assert_int_eq(kn_cuda_f32_to_bf16(ddst, dsrc, nf), 0);
    dev_download(b_got, ddst, nf * sizeof *b_got);
    for (size_t i = 0; i < nf; i++)
        ck_assert_msg(b_got[i] == b_want[i], "f32_to_bf16(0x%08x) = 0x%04x, want 0x%04x", bits[i], b_got[i],
                      b_want[i]);
    kn_cuda_free(dh);
    kn_cuda_free(df);
    kn_cuda_free(dsrc);
    kn_cuda_free(ddst);
    free(h);
    free(want);
    free(got);
    free(bits);
    free(b_want);
    free(b_got);
}
END_TEST

START_TEST(test_rope)
{
    static const int head_dims[] = {2, 64, 128, 6};
    static const float thetas[] = {10000.0f, 500000.0f};
    const int rows = 5, n_heads = 3;
    const int32_t pos[5] = {0, 1, 37, 4095, 100000};
    struct rng r;

    rng_init(&r, 4, RNG_STREAM_USER);
    int32_t *dpos = dev_upload(pos, sizeof pos);
    for (int hi = 0; hi < (int)(sizeof head_dims / sizeof head_dims[0]); hi++)
        for (int ti = 0; ti < 2; ti++)
            for (int layout = KN_ROPE_INTERLEAVED; layout <= KN_ROPE_HALF; layout++) {
                const int hd = head_dims[hi], half = hd / 2;
                const size_t n = (size_t)rows * n_heads * hd;
                float *x = random_vec(&r, n, -2, 2), *cpu = xmalloc(n * sizeof *cpu), *got = xmalloc(n * sizeof *got);
                float *dx = dev_upload(x, n * sizeof *x);

                memcpy(cpu, x, n * sizeof *x);
                for (int i = 0; i < rows; i++)
                    kn_rope(cpu + (size_t)i * n_heads * hd, n_heads, hd, pos[i], thetas[ti], layout);
                ck_assert_int_eq(kn_cuda_rope(dx, rows, n_heads, hd, dpos, thetas[ti], layout), 0);
                dev_download(got, dx, n * sizeof *got);
                for (int i = 0; i < rows; i++)
                    for (int h = 0; h < n_heads; h++)
                        for (int j = 0; j < half; j++) {
                            const size_t base = ((size_t)i * n_heads + h) * hd;
                            const size_t a = base + (layout == KN_ROPE_HALF ? j : 2 * j);
                            const size_t b = base + (layout == KN_ROPE_HALF ? j + half : 2 * j + 1);
                            const double ang = pos[i] * pow((double)thetas[ti], -2.0 * j / hd);
                            const double len = hypot(x[a], x[b]);
                            const double wa = x[a] * cos(ang) - x[b] * sin(ang);
                            const double wb = x[a] * sin(ang) + x[b] * cos(ang);

                            assert_close("rope", a, got[a], wa, len);
                            assert_close("rope", b, got[b], wb, len);
                            /* kn_rope, to float rounding */
                            ck_assert_msg(fabs(got[a] - cpu[a]) <= 2.4e-7 * len && fabs(got[b] - cpu[b]) <= 2.4e-7 * len,
                                          "rope vs kn_rope: pos %d pair %d: (%.9g, %.9g) vs (%.9g, %.9g)", pos[i], j,
                                          (double)got[a], (double)got[b], (double)cpu[a], (double)cpu[b]);
                        }
                kn_cuda_free(dx);
                free(x);
                free(cpu);
                free(got);
            }
    kn_cuda_free(dpos);
}
END_TEST

/* ==== rows ======================================================================= */

START_TEST(test_rmsnorm)
{
    const int rows = 3;
    struct rng r;

    rng_init(&r, 5, RNG_STREAM_USER);
    for (int s = 0; s < NSIZES; s++) {
        const int n = sizes[s];
        const size_t nn = (size_t)rows * n;
        float *x = random_vec(&r, nn, -3, 3), *w = random_vec(&r, n, -2, 2);
        float *out = xmalloc(nn * sizeof *out), *alias = xmalloc(nn * sizeof *alias);
        float *dx = dev_upload(x, nn * sizeof *x), *dw = dev_upload(w, n * sizeof *w), *dout = dev_alloc(nn * sizeof *dout);

        ck_assert_int_eq(kn_cuda_rmsnorm(dout, dx, dw, rows, n, 1e-5f), 0);
        dev_download(out, dout, nn * sizeof *out);
        for (int i = 0; i < rows; i++) {
            double ss = 0;
            for (int j = 0; j < n; j++)
                ss += (double)x[(size_t)i * n + j] * x[(size_t)i * n + j];
            for (int j = 0; j < n; j++) {
                const size_t at = (size_t)i * n + j;
                const double want = x[at] / sqrt(ss / n + 1e-5f) * w[j];
                assert_close("rmsnorm", at, out[at], want, fabs(want));
            }
        }
        /* out may alias x: the same result */
        ck_assert_int_eq(kn_cuda_rmsnorm(dx, dx, dw, rows, n, 1e-5f), 0);
        dev_download(alias, dx, nn * sizeof *alias);
        ck_assert_mem_eq(alias, out, nn * sizeof *out);
        kn_cuda_free(dx);
        kn_cuda_free(dw);
        kn_cuda_free(dout);
        free(x);
        free(w);
        free(out);
        free(alias);
    }
}
END_TEST

/* p = softmax(x) in double. */
static void softmax_double(double *p, const float *x, int n, double temperature)
{
    double max = -INFINITY, sum = 0;

    for (int i = 0; i < n; i++)
        max = x[i] / temperature > max ? x[i] / temperature : max;
    for (int i = 0; i < n; i++) {
        p[i] = exp(x[i] / temperature - max);
        sum += p[i];
    }
    for (int i = 0; i < n; i++)
        p[i] /= sum;
}

START_TEST(test_softmax)
{
    const int rows = 3;
    struct rng r;

    rng_init(&r, 6, RNG_STREAM_USER);
    for (int s = 0; s < NSIZES; s++) {
        const int n = sizes[s];
        const size_t nn = (size_t)rows * n;
        float *x = random_vec(&r, nn, -20, 20), *got = xmalloc(nn * sizeof *got);
        double *want = xmalloc((size_t)n * sizeof *want);
        float *dx = dev_upload(x, nn * sizeof *x);

        ck_assert_int_eq(kn_cuda_softmax(dx, rows, n), 0);
        dev_download(got, dx, nn * sizeof *got);
        for (int i = 0; i < rows; i++) {
            softmax_double(want, x + (size_t)i * n, n, 1.0);
            for (int j = 0; j < n; j++)
                assert_close("softmax", (size_t)i * n + j, got[(size_t)i * n + j], want[j], want[j]);
        }
        kn_cuda_free(dx);
        free(x);
        free(got);
        free(want);
    }
}
END_TEST

START_TEST(test_argmax)
{
    struct rng r;

    rng_init(&r, 7, RNG_STREAM_USER);
    for (int s = 0; s < NSIZES; s++) {
        const int n = sizes[s], rows = 6;
        const size_t nn = (size_t)rows * n;
        float *x = random_vec(&r, nn, -5, 5);
        int32_t got[6], want[6];

        /* row 1: a tie for the maximum, the first wins; row 2: NaNs are
         * skipped; row 3: all NaN gives 0; row 4: all -inf gives 0; row 5:
         * the maximum last. */
        x[(size_t)1 * n + n / 3] = 9.0f;
        x[(size_t)1 * n + n - 1] = 9.0f;
        for (int j = 0; j < n; j += 2)
            x[(size_t)2 * n + j] = NAN;
        for (int j = 0; j < n; j++) {
            x[(size_t)3 * n + j] = NAN;
            x[(size_t)4 * n + j] = -INFINITY;
        }
        x[(size_t)5 * n + n - 1] = 7.0f;
        for (int i = 0; i < rows; i++)
            want[i] = kn_argmax(x + (size_t)i * n, n);
        float *dx = dev_upload(x, nn * sizeof *x);
        int32_t *dout = dev_alloc(sizeof got);
        ck_assert_int_eq(kn_cuda_argmax(dout, dx, rows, n), 0);
        dev_download(got, dout, sizeof got);
        for (int i = 0; i < rows; i++)
            ck_assert_msg(got[i] == want[i], "argmax n %d row %d: %d, want %d", n, i, got[i], want[i]);
        ck_assert_int_eq(got[1], n / 3);
        ck_assert_int_eq(got[3], 0);
        ck_assert_int_eq(got[4], 0);
        ck_assert_int_eq(got[5], n - 1);
        kn_cuda_free(dx);
        kn_cuda_free(dout);
        free(x);
    }
}
END_TEST

/* ==== sampling ================================================================= */

/* One row's sampling parameters. */
struct sample_row {
    float temperature;
    int top_k;
    float top_p;
};

/* Run kn_cuda_sample on ROWS rows of LOGITS (n each) with PARAMS and COINS;
 * TOKENS gets the draws, PROBS (when not NULL) what is left in the logits. */
static void sample_run(int32_t *tokens, float *probs, const float *logits, int rows, int n,
                       const struct sample_row *params, const float *coins)
{
    float *temp = xmalloc((size_t)rows * sizeof *temp), *tp = xmalloc((size_t)rows * sizeof *tp);
    int32_t *tk = xmalloc((size_t)rows * sizeof *tk);

    for (int i = 0; i < rows; i++) {
        temp[i] = params[i].temperature;
        tk[i] = params[i].top_k;
        tp[i] = params[i].top_p;
    }
    float *dl = dev_upload(logits, (size_t)rows * n * sizeof *logits);
    float *dtemp = dev_upload(temp, (size_t)rows * sizeof *temp), *dtp = dev_upload(tp, (size_t)rows * sizeof *tp);
    int32_t *dtk = dev_upload(tk, (size_t)rows * sizeof *tk), *dout = dev_alloc((size_t)rows * sizeof *dout);
    float *dcoin = dev_upload(coins, (size_t)rows * sizeof *coins);

    ck_assert_msg(kn_cuda_sample(dout, dl, rows, n, dtemp, dtk, dtp, dcoin) == 0, "sample: %s", kn_cuda_error());
    dev_download(tokens, dout, (size_t)rows * sizeof *tokens);
    if (probs != NULL)
        dev_download(probs, dl, (size_t)rows * n * sizeof *probs);
    kn_cuda_free(dl);
    kn_cuda_free(dtemp);
    kn_cuda_free(dtp);
    kn_cuda_free(dtk);
    kn_cuda_free(dout);
    kn_cuda_free(dcoin);
    free(temp);
    free(tp);
    free(tk);
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x > y ? -1 : x < y ? 1 : 0;
}

/* The documented kept set for probabilities P (n): KEPT[i] = 1 or 0;
 * returns the kept mass (double). */
static double kept_set(char *kept, const float *p, int n, int top_k, float top_p)
{
    float *sorted = xmalloc((size_t)n * sizeof *sorted), tau;
    int k = top_k <= 0 || top_k >= n ? n : top_k;
    double mass = 0, cum = 0, kept_mass = 0;

    memcpy(sorted, p, (size_t)n * sizeof *p);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_desc);
    tau = sorted[k - 1]; /* ties with the k-th are kept */
    for (int i = 0; i < n; i++)
        if (p[i] >= tau)
            mass += p[i];
    if (top_p < 1) {
        /* The most likely first: the value at which the mass of the
         * candidates at or above it first reaches top_p * mass. */
        for (int i = 0; i < n && sorted[i] >= tau; i++) {
            cum += sorted[i];
            if (cum >= (double)top_p * mass) {
                tau = sorted[i];
                break;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        kept[i] = p[i] >= tau;
        kept_mass += kept[i] ? p[i] : 0;
    }
    free(sorted);
    return kept_mass;
}

START_TEST(test_sample_argmax)
{
    /* temperature 0 and top_k 1 draw the argmax whatever the coin. */
    struct rng r;

    rng_init(&r, 8, RNG_STREAM_USER);
    for (int s = 0; s < NSIZES; s++) {
        const int n = sizes[s], rows = 4;
        float *x = random_vec(&r, (size_t)rows * n, -4, 4);
        const struct sample_row params[4] = {{0.0f, 0, 1.0f}, {-1.0f, 5, 0.5f}, {0.8f, 1, 1.0f}, {1.5f, 1, 0.9f}};
        const float coins[4] = {0.3f, 0.99f, 0.999f, 0.0f};
        int32_t got[4];

        x[n - 1] = 4.5f; /* row 0: the last */
        x[(size_t)1 * n] = 4.5f;
        if (n > 1)
            x[(size_t)1 * n + 1] = 4.5f; /* row 1: a tie, the first wins */
        sample_run(got, NULL, x, rows, n, params, coins);
        for (int i = 0; i < rows; i++)
            ck_assert_msg(got[i] == kn_argmax(x + (size_t)i * n, n), "n %d row %d: %d, argmax %d", n, i, got[i],
                          kn_argmax(x + (size_t)i * n, n));
        free(x);
    }
}
END_TEST

START_TEST(test_sample_rule)
{
    static const struct sample_row params[] = {
        {1.0f, 0, 1.0f}, {0.7f, 40, 1.0f}, {1.0f, 0, 0.9f}, {1.3f, 50, 0.8f}, {1.0f, 3, 0.5f}, {0.9f, 0, 0.0f},
    };
    const int rows = (int)(sizeof params / sizeof params[0]);
    struct rng r;

    rng_init(&r, 9, RNG_STREAM_USER);
    for (int s = 0; s < NSIZES; s++) {
        const int n = sizes[s];
        const size_t nn = (size_t)rows * n;
        float *x = xmalloc(nn * sizeof *x), *probs = xmalloc(nn * sizeof *probs), coins[16];
        double *want = xmalloc((size_t)n * sizeof *want);
        char *kept = xmalloc((size_t)n);
        int32_t got[16];

        for (size_t i = 0; i < nn; i++)
            x[i] = (float)(2.5 * rng_normal(&r));
        for (int i = 0; i < rows; i++)
            coins[i] = 0.5f;
        sample_run(got, probs, x, rows, n, params, coins);

        for (int i = 0; i < rows; i++) {
            const float *p = probs + (size_t)i * n;
            double W, cum = 0;

            /* the probabilities left in the logits */
            softmax_double(want, x + (size_t)i * n, n, params[i].temperature);
            for (int j = 0; j < n; j++)
                assert_close("sample probabilities", (size_t)j, p[j], want[j], want[j]);

            /* Coins in the middle of each well-sized kept slice draw
             * exactly that token. */
            W = kept_set(kept, p, n, params[i].top_k, params[i].top_p);
            ck_assert_msg(kept[got[i]], "n %d row %d: token %d is not kept", n, i, got[i]);
            for (int j = 0, tried = 0; j < n && tried < 12; j++) {
                if (!kept[j])
                    continue;
                if (p[j] / W > 1e-3) {
                    const float c = (float)((cum + p[j] / 2) / W);
                    int32_t tok;

                    sample_run(&tok, NULL, x + (size_t)i * n, 1, n, &params[i], &c);
                    ck_assert_msg(tok == j, "n %d row %d: coin %.9g should draw %d (p %.3g of %.3g), got %d", n, i,
                                  (double)c, j, (double)p[j], W, tok);
                    tried++;
                }
                cum += p[j];
            }
        }
        free(x);
        free(probs);
        free(want);
        free(kept);
    }
}
END_TEST

START_TEST(test_sample_sweep)
{
    /* 64 rows of the same logits, coins spread over [0, 1): every draw is
     * kept, top-p cuts the tail, the draws are in index order of the coin
     * (the walk is in index order), and the extreme coins reach the first
     * and the last kept tokens. */
    const int n = 32000, rows = 64;
    struct rng r;

    rng_init(&r, 10, RNG_STREAM_USER);
    float *x1 = xmalloc((size_t)n * sizeof *x1), *x = xmalloc((size_t)rows * n * sizeof *x);
    float *probs = xmalloc((size_t)rows * n * sizeof *probs), coins[64];
    char *kept = xmalloc((size_t)n);
    struct sample_row params[64];
    int32_t got[64];

    for (int i = 0; i < n; i++)
        x1[i] = (float)(3.0 * rng_normal(&r));
    for (int m = 0; m < rows; m++) {
        memcpy(x + (size_t)m * n, x1, (size_t)n * sizeof *x1);
        params[m] = (struct sample_row){1.0f, 0, 0.7f};
        coins[m] = (float)m / rows;
    }
    coins[rows - 1] = 0.99999994f; /* the largest float below 1 */
    sample_run(got, probs, x, rows, n, params, coins);
    kept_set(kept, probs, n, 0, 0.7f);
    int first = -1, last = -1, count = 0;
    for (int i = 0; i < n; i++)
        if (kept[i]) {
            first = first < 0 ? i : first;
            last = i;
            count++;
        }
    ck_assert_int_lt(count, n / 2); /* the tail is cut */
    for (int m = 0; m < rows; m++) {
        ck_assert_msg(kept[got[m]], "coin %.6g drew %d, not kept", (double)coins[m], got[m]);
        if (m > 0)
            ck_assert_msg(got[m] >= got[m - 1], "coin %.6g drew %d before coin %.6g's %d", (double)coins[m], got[m],
                          (double)coins[m - 1], got[m - 1]);
    }
    ck_assert_int_eq(got[0], first);
    ck_assert_int_eq(got[rows - 1], last);
    free(x1);
    free(x);
    free(probs);
    free(kept);
}
END_TEST

START_TEST(test_sample_ties)
{
    /* top_k 2 over logits with three tied for the top: all three are kept
     * (ties with the last kept token), the 2.0 never drawn. */
    const float logits[7] = {1.0f, 3.0f, 3.0f, 2.0f, 3.0f, 0.0f, -1.0f};
    const struct sample_row par = {1.0f, 2, 1.0f};
    int seen[7] = {0};

    for (int m = 0; m < 30; m++) {
        const float coin = (m + 0.5f) / 30;
        int32_t tok;

        sample_run(&tok, NULL, logits, 1, 7, &par, &coin);
        ck_assert_msg(tok == 1 || tok == 2 || tok == 4, "coin %.3g drew %d", (double)coin, tok);
        seen[tok]++;
    }
    ck_assert_int_eq(seen[1], 10);
    ck_assert_int_eq(seen[2], 10);
    ck_assert_int_eq(seen[4], 10);
}
END_TEST

static Suite *suite_cuda_ops(void)
{
    Suite *s = suite_create("cuda_ops");
    TCase *tc = tcase_create("cuda_ops");

    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_embed);
    tcase_add_test(tc, test_swiglu_add);
    tcase_add_test(tc, test_bf16_conversions);
    tcase_add_test(tc, test_rope);
    tcase_add_test(tc, test_rmsnorm);
    tcase_add_test(tc, test_softmax);
    tcase_add_test(tc, test_argmax);
    tcase_add_test(tc, test_sample_argmax);
    tcase_add_test(tc, test_sample_rule);
    tcase_add_test(tc, test_sample_sweep);
    tcase_add_test(tc, test_sample_ties);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (kn_cuda_device_count() == 0) {
        printf("check_cuda_ops: skipped: no CUDA device (%s)\n", kn_cuda_error());
        return 77;
    }
    if (kn_cuda_init(0) != 0) {
        printf("check_cuda_ops: cannot use device 0: %s\n", kn_cuda_error());
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(suite_cuda_ops());
    srunner_set_fork_status(sr, CK_NOFORK); /* a CUDA context does not survive fork() */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
