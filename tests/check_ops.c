/* check_ops.c -- unit tests of the elementwise kernels (kernels/ops.c) and
 * of sampling (kernels/sampling.c) against float64 references written here.
 *
 * Tolerance: every float32 result is within 1e-5 relative of the float64
 * reference.  "Relative" is to the value itself for RMSNorm, SwiGLU and
 * softmax (which involve no cancellation), and to the length of the rotated
 * pair for RoPE (a rotation can bring one component near zero).  Sizes are
 * chosen awkward (1, 3, 7, 127, 4097) so that vector tails are exercised. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "kernels/kernels.h"

#define TOL 1e-5

static const int sizes[] = {1, 3, 7, 127, 4097};
#define NSIZES ((int)(sizeof(sizes) / sizeof(sizes[0])))

/* Uniform in [lo, hi). */
static float uniform(struct rng *r, double lo, double hi)
{
    return (float)(lo + (hi - lo) * rng_uniform(r));
}

static float *random_vec(struct rng *r, int n, double lo, double hi)
{
    float *v = malloc((size_t)n * sizeof(*v));
    int i;

    ck_assert_ptr_nonnull(v);
    for (i = 0; i < n; i++)
        v[i] = uniform(r, lo, hi);
    return v;
}

/* Assert |got - want| <= TOL * scale (+ a floor for values that underflow
 * float32), naming the test and element. */
static void assert_close(const char *what, int i, double got, double want, double scale)
{
    double tol = TOL * scale + 1e-30;

    ck_assert_msg(fabs(got - want) <= tol, "%s[%d]: got %.9g, want %.9g (diff %.3g > tol %.3g)",
                  what, i, got, want, fabs(got - want), tol);
}

/* ==== rmsnorm ============================================================== */

START_TEST(test_rmsnorm)
{
    struct rng r;
    int s, i;

    rng_init(&r, 1, RNG_STREAM_USER);
    for (s = 0; s < NSIZES; s++) {
        int n = sizes[s];
        float *x = random_vec(&r, n, -3, 3), *w = random_vec(&r, n, -2, 2);
        float *out = malloc((size_t)n * sizeof(*out));
        double ss = 0;

        for (i = 0; i < n; i++)
            ss += (double)x[i] * x[i];
        kn_rmsnorm(out, x, w, n, 1e-5f);
        for (i = 0; i < n; i++) {
            double want = x[i] / sqrt(ss / n + 1e-5f) * w[i];

            assert_close("rmsnorm", i, out[i], want, fabs(want));
        }
        /* out may alias x */
        kn_rmsnorm(x, x, w, n, 1e-5f);
        ck_assert_mem_eq(x, out, (size_t)n * sizeof(*x));
        free(x);
        free(w);
        free(out);
    }
}
END_TEST

/* Large and tiny inputs: the mean of squares neither overflows nor loses eps. */
START_TEST(test_rmsnorm_range)
{
    float x[7] = {3e18f, -2e18f, 1e18f, 0, 5e18f, -1e18f, 2e18f}, w[7] = {1, 1, 1, 1, 1, 1, 1};
    float out[7];
    double ss = 0;
    int i;

    for (i = 0; i < 7; i++)
        ss += (double)x[i] * x[i];
    kn_rmsnorm(out, x, w, 7, 1e-5f);
    for (i = 0; i < 7; i++) {
        double want = x[i] / sqrt(ss / 7 + 1e-5f);

        assert_close("rmsnorm big", i, out[i], want, fabs(want));
    }
    for (i = 0; i < 7; i++)
        x[i] = 0;
    kn_rmsnorm(out, x, w, 7, 1e-5f);
    for (i = 0; i < 7; i++)
        ck_assert(out[i] == 0);
}
END_TEST

/* ==== rope ================================================================= */

/* The float64 rotation of one head V (head_dim) at POS into OUT. */
static void rope_ref(double *out, const float *v, int head_dim, int pos, double theta,
                     enum kn_rope_layout layout)
{
    int half = head_dim / 2, i;

    for (i = 0; i < half; i++) {
        double a = pos * pow(theta, -2.0 * i / head_dim);
        int i0 = layout == KN_ROPE_HALF ? i : 2 * i;
        int i1 = layout == KN_ROPE_HALF ? i + half : 2 * i + 1;
        double x0 = v[i0], x1 = v[i1];

        out[i0] = x0 * cos(a) - x1 * sin(a);
        out[i1] = x0 * sin(a) + x1 * cos(a);
    }
}

static const int rope_dims[] = {2, 6, 64, 126, 128, 258};
static const int rope_pos[] = {1, 7, 127, 4097, 131071};
#define NDIMS ((int)(sizeof(rope_dims) / sizeof(rope_dims[0])))
#define NPOS ((int)(sizeof(rope_pos) / sizeof(rope_pos[0])))

/* Both layouts against the float64 rotation, for several heads, head sizes
 * (those above 256 take two chunks of angles), positions and thetas. */
START_TEST(test_rope_reference)
{
    static const float thetas[] = {10000.0f, 500000.0f};
    struct rng r;
    int d, p, t, l, h, i, n_heads = 3;

    rng_init(&r, 2, RNG_STREAM_USER);
    for (l = 0; l < 2; l++)
        for (t = 0; t < 2; t++)
            for (d = 0; d < NDIMS; d++)
                for (p = 0; p < NPOS; p++) {
                    int hd = rope_dims[d], half = hd / 2;
                    enum kn_rope_layout layout = l == 0 ? KN_ROPE_INTERLEAVED : KN_ROPE_HALF;
                    float *x = random_vec(&r, n_heads * hd, -2, 2);
                    float *orig = malloc((size_t)n_heads * hd * sizeof(*orig));
                    double *want = malloc((size_t)hd * sizeof(*want));

                    memcpy(orig, x, (size_t)n_heads * hd * sizeof(*x));
                    kn_rope(x, n_heads, hd, rope_pos[p], thetas[t], layout);
                    for (h = 0; h < n_heads; h++) {
                        rope_ref(want, orig + h * hd, hd, rope_pos[p], thetas[t], layout);
                        for (i = 0; i < half; i++) {
                            int i0 = layout == KN_ROPE_HALF ? i : 2 * i;
                            int i1 = layout == KN_ROPE_HALF ? i + half : 2 * i + 1;
                            double len = hypot(orig[h * hd + i0], orig[h * hd + i1]);

                            assert_close("rope", h * hd + i0, x[h * hd + i0], want[i0], len);
                            assert_close("rope", h * hd + i1, x[h * hd + i1], want[i1], len);
                        }
                    }
                    free(x);
                    free(orig);
                    free(want);
                }
}
END_TEST

/* A vector in the half-split layout, permuted to interleaved order
 * (u[2i] = v[i], u[2i+1] = v[i + half]), rotates to the same values. */
START_TEST(test_rope_layouts_agree)
{
    struct rng r;
    int d, p, h, i, n_heads = 2;

    rng_init(&r, 3, RNG_STREAM_USER);
    for (d = 0; d < NDIMS; d++)
        for (p = 0; p < NPOS; p++) {
            int hd = rope_dims[d], half = hd / 2;
            float *v = random_vec(&r, n_heads * hd, -2, 2);
            float *u = malloc((size_t)n_heads * hd * sizeof(*u));

            for (h = 0; h < n_heads; h++)
                for (i = 0; i < half; i++) {
                    u[h * hd + 2 * i] = v[h * hd + i];
                    u[h * hd + 2 * i + 1] = v[h * hd + i + half];
                }
            kn_rope(v, n_heads, hd, rope_pos[p], 10000.0f, KN_ROPE_HALF);
            kn_rope(u, n_heads, hd, rope_pos[p], 10000.0f, KN_ROPE_INTERLEAVED);
            for (h = 0; h < n_heads; h++)
                for (i = 0; i < half; i++) {
                    double len = hypot(v[h * hd + i], v[h * hd + i + half]);

                    assert_close("rope half vs interleaved", i, u[h * hd + 2 * i], v[h * hd + i], len);
                    assert_close("rope half vs interleaved", i + half, u[h * hd + 2 * i + 1],
                                 v[h * hd + i + half], len);
                }
            free(v);
            free(u);
        }
}
END_TEST

/* The forward pass's split (the angles once, kn_rope_rotate per layer and
 * head set) gives kn_rope's result bit for bit, in both layouts, for heads
 * longer than kn_rope's chunk of angles too; a table of position 0 turns
 * nothing either. */
START_TEST(test_rope_table_matches)
{
    struct rng r;
    int n_heads = 3;

    rng_init(&r, 5, RNG_STREAM_USER);
    for (int d = 0; d < NDIMS; d++)
        for (int p = -1; p < NPOS; p++)
            for (int l = 0; l < 2; l++) {
                int hd = rope_dims[d], pos = p < 0 ? 0 : rope_pos[p];
                enum kn_rope_layout layout = l == 0 ? KN_ROPE_INTERLEAVED : KN_ROPE_HALF;
                float *a = random_vec(&r, n_heads * hd, -3, 3);
                float *b = malloc((size_t)n_heads * hd * sizeof(*b));
                float *cs = malloc((size_t)hd * sizeof(*cs));

                memcpy(b, a, (size_t)n_heads * hd * sizeof(*a));
                kn_rope(a, n_heads, hd, pos, 10000.0f, layout);
                kn_rope_angles(cs, hd, pos, 10000.0f);
                kn_rope_rotate(b, n_heads, hd, cs, layout);
                ck_assert_msg(memcmp(a, b, (size_t)n_heads * hd * sizeof(*a)) == 0,
                              "rope table: head_dim %d pos %d layout %d differs from kn_rope", hd, pos, l);
                free(a);
                free(b);
                free(cs);
            }
}
END_TEST

/* Position 0 turns nothing: the vector comes back bit for bit. */
START_TEST(test_rope_pos0_identity)
{
    struct rng r;
    float *x, *orig;
    int l, n = 4 * 128;

    rng_init(&r, 4, RNG_STREAM_USER);
    x = random_vec(&r, n, -5, 5);
    orig = malloc((size_t)n * sizeof(*orig));
    memcpy(orig, x, (size_t)n * sizeof(*x));
    for (l = 0; l < 2; l++) {
        kn_rope(x, 4, 128, 0, 10000.0f, l == 0 ? KN_ROPE_INTERLEAVED : KN_ROPE_HALF);
        ck_assert_mem_eq(x, orig, (size_t)n * sizeof(*x));
    }
    free(x);
    free(orig);
}
END_TEST

/* ==== swiglu =============================================================== */

START_TEST(test_swiglu)
{
    struct rng r;
    int s, i;

    rng_init(&r, 5, RNG_STREAM_USER);
    for (s = 0; s < NSIZES; s++) {
        int n = sizes[s];
        float *g = random_vec(&r, n, -12, 12), *u = random_vec(&r, n, -2, 2);
        float *out = malloc((size_t)n * sizeof(*out));

        if (n >= 3) {
            g[0] = -100; /* exp(100) overflows float: silu -> -0 */
            g[1] = 100;
            g[2] = 0;
        }
        kn_swiglu(out, g, u, n);
        for (i = 0; i < n; i++) {
            double want = g[i] / (1.0 + exp(-(double)g[i])) * u[i];

            assert_close("swiglu", i, out[i], want, fabs(want));
        }
        kn_swiglu(g, g, u, n); /* out may alias gate */
        ck_assert_mem_eq(g, out, (size_t)n * sizeof(*g));
        free(g);
        free(u);
        free(out);
    }
}
END_TEST

/* ==== softmax ============================================================== */

/* Against float64 for logits around OFFSET, spread over 30 (so the smallest
 * probability, about e^-30, stays a normal float). */
static void check_softmax(double offset, unsigned seed)
{
    struct rng r;
    int s, i;

    rng_init(&r, seed, RNG_STREAM_USER);
    for (s = 0; s < NSIZES; s++) {
        int n = sizes[s];
        float *x = random_vec(&r, n, offset - 15, offset + 15);
        double *want = malloc((size_t)n * sizeof(*want));
        double max = -INFINITY, sum = 0, got_sum = 0;
        char what[64];

        for (i = 0; i < n; i++)
            max = x[i] > max ? x[i] : max;
        for (i = 0; i < n; i++)
            sum += want[i] = exp(x[i] - max);
        kn_softmax(x, n);
        snprintf(what, sizeof(what), "softmax(n=%d, offset %g)", n, offset);
        for (i = 0; i < n; i++) {
            ck_assert_msg(isfinite(x[i]), "%s[%d] is %g", what, i, x[i]);
            assert_close(what, i, x[i], want[i] / sum, want[i] / sum);
            got_sum += x[i];
        }
        ck_assert_msg(fabs(got_sum - 1) <= TOL, "%s sums to %.9g", what, got_sum);
        free(x);
        free(want);
    }
}

START_TEST(test_softmax)
{
    check_softmax(0, 6);
}
END_TEST

/* Logits of 1e4 and -1e4 would overflow (or underflow to 0/0) without the
 * maximum subtracted. */
START_TEST(test_softmax_large_logits)
{
    float x[3] = {10000, 9999, 9998};

    check_softmax(10000, 7);
    check_softmax(-10000, 8);
    kn_softmax(x, 3);
    assert_close("softmax 1e4", 0, x[0], 1 / (1 + exp(-1) + exp(-2)), x[0]);
}
END_TEST

/* ==== argmax =============================================================== */

START_TEST(test_argmax)
{
    struct rng r;
    int s, i;

    rng_init(&r, 9, RNG_STREAM_USER);
    for (s = 0; s < NSIZES; s++) {
        int n = sizes[s], want = 0, pos;
        float *x = random_vec(&r, n, -100, -1);

        for (i = 1; i < n; i++)
            if (x[i] > x[want])
                want = i;
        ck_assert_int_eq(kn_argmax(x, n), want);
        /* a tie with a later copy of the maximum keeps the first */
        pos = (int)rng_below(&r, (uint64_t)n);
        x[pos] = 5;
        if (n > 1)
            x[n - 1] = 5;
        ck_assert_int_eq(kn_argmax(x, n), pos);
        /* the last element alone */
        x[n - 1] = 6;
        ck_assert_int_eq(kn_argmax(x, n), n - 1);
        /* all equal: the first */
        for (i = 0; i < n; i++)
            x[i] = -3;
        ck_assert_int_eq(kn_argmax(x, n), 0);
        free(x);
    }
}
END_TEST

/* ==== sampling ============================================================= */

/* The float64 truncated distribution of kn_sample(): softmax(logits / t),
 * the top_k most likely (lower index first on ties), then the shortest
 * prefix whose mass reaches top_p of theirs, renormalised.  Fills want[n]
 * (0 outside the kept set) and returns the size of the kept set. */
static int expected_dist(const float *logits, int n, double t, int top_k, double top_p,
                         double *want)
{
    int *order = malloc((size_t)n * sizeof(*order));
    double *p = malloc((size_t)n * sizeof(*p));
    double max = -INFINITY, sum = 0, mass = 0, cum = 0;
    int i, j, k, kept;

    for (i = 0; i < n; i++)
        max = logits[i] / t > max ? logits[i] / t : max;
    for (i = 0; i < n; i++)
        sum += p[i] = exp(logits[i] / t - max);
    for (i = 0; i < n; i++) {
        p[i] /= sum;
        order[i] = i;
    }
    /* insertion sort, stable (lower index first on ties): the test
     * vocabularies are small */
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && p[order[j]] > p[order[j - 1]]; j--) {
            int tmp = order[j];

            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    k = top_k <= 0 || top_k >= n ? n : top_k;
    for (i = 0; i < k; i++)
        mass += p[order[i]];
    kept = k;
    if (top_p < 1)
        for (i = 0; i < k; i++) {
            cum += p[order[i]];
            if (cum >= top_p * mass) {
                kept = i + 1;
                break;
            }
        }
    cum = 0;
    for (i = 0; i < kept; i++)
        cum += p[order[i]];
    for (i = 0; i < n; i++)
        want[i] = 0;
    for (i = 0; i < kept; i++)
        want[order[i]] = p[order[i]] / cum;
    free(order);
    free(p);
    return kept;
}

static int sample_copy(const float *logits, int n, float t, int top_k, float top_p, float coin,
                       float *buf, struct kn_prob_index *scratch)
{
    memcpy(buf, logits, (size_t)n * sizeof(*buf));
    return kn_sample(buf, n, t, top_k, top_p, coin, scratch);
}

/* temperature 0, top_k 1 and a tiny top_p all give the argmax, whatever the
 * coin; on a tie, the first index. */
START_TEST(test_sample_greedy)
{
    static const float coins[] = {0.0f, 0.3f, 0.5f, 0.99999994f};
    int n = 4097, c, want;
    struct rng r;
    float *logits, *buf = malloc((size_t)n * sizeof(*buf));
    struct kn_prob_index *scratch = malloc((size_t)n * sizeof(*scratch));

    rng_init(&r, 10, RNG_STREAM_USER);
    logits = random_vec(&r, n, -5, 5);
    logits[1234] = 7;
    logits[3000] = 7; /* a tie: 1234 comes first */
    want = 1234;
    for (c = 0; c < 4; c++) {
        ck_assert_int_eq(sample_copy(logits, n, 0, 0, 1, coins[c], buf, scratch), want);
        ck_assert_int_eq(sample_copy(logits, n, -1, 40, 0.9f, coins[c], buf, scratch), want);
        ck_assert_int_eq(sample_copy(logits, n, 1, 1, 1, coins[c], buf, scratch), want);
        ck_assert_int_eq(sample_copy(logits, n, 0.7f, 1, 0.95f, coins[c], buf, scratch), want);
        ck_assert_int_eq(sample_copy(logits, n, 1, 0, 1e-6f, coins[c], buf, scratch), want);
        ck_assert_int_eq(sample_copy(logits, n, 1.5f, 50, 0, coins[c], buf, scratch), want);
    }
    free(logits);
    free(buf);
    free(scratch);
}
END_TEST

/* With coins drawn uniformly, each token's frequency matches the truncated,
 * renormalised float64 distribution within 5 standard errors, and no token
 * outside the kept set is ever drawn. */
static void check_frequencies(const float *logits, int n, float t, int top_k, float top_p,
                              unsigned seed)
{
    const int draws = 100000;
    double *want = malloc((size_t)n * sizeof(*want));
    long *count = calloc((size_t)n, sizeof(*count));
    float *buf = malloc((size_t)n * sizeof(*buf));
    struct kn_prob_index *scratch = malloc((size_t)n * sizeof(*scratch));
    struct rng r;
    int d, i;

    expected_dist(logits, n, t, top_k, top_p, want);
    rng_init(&r, seed, RNG_STREAM_USER);
    for (d = 0; d < draws; d++) {
        int tok = sample_copy(logits, n, t, top_k, top_p, (float)rng_uniform(&r), buf, scratch);

        ck_assert(tok >= 0 && tok < n);
        count[tok]++;
    }
    for (i = 0; i < n; i++) {
        double f = (double)count[i] / draws, se = sqrt(want[i] * (1 - want[i]) / draws);

        if (want[i] == 0)
            ck_assert_msg(count[i] == 0, "t %g k %d p %g: token %d outside the kept set drawn %ld times",
                          t, top_k, top_p, i, count[i]);
        else
            ck_assert_msg(fabs(f - want[i]) <= 5 * se + 1e-12,
                          "t %g k %d p %g: token %d drawn %.5f, want %.5f (5 se = %.5f)", t, top_k,
                          top_p, i, f, want[i], 5 * se);
    }
    free(want);
    free(count);
    free(buf);
    free(scratch);
}

/* Probabilities chosen so that no top-p boundary sits near a cumulative sum. */
static const float freq_logits[10] = {1.0f, 2.5f, 0.2f, 2.0f, -1.0f, 1.6f, 0.5f, 3.0f, -0.3f, 1.2f};

START_TEST(test_sample_frequencies)
{
    check_frequencies(freq_logits, 10, 1.0f, 0, 1.0f, 11);     /* the full distribution */
    check_frequencies(freq_logits, 10, 0.8f, 4, 1.0f, 12);     /* top-k */
    check_frequencies(freq_logits, 10, 1.0f, 0, 0.7f, 13);     /* top-p */
    check_frequencies(freq_logits, 10, 1.3f, 6, 0.8f, 14);     /* both */
    check_frequencies(freq_logits, 10, 2.0f, 10, 0.999f, 15); /* k = n */
}
END_TEST

/* Coins at the top of [0, 1) return a token of the kept set, on small and
 * 128k vocabularies, for each kind of truncation. */
START_TEST(test_sample_coin_edge)
{
    static const float coins[] = {0.99999994f, 0.9999999f, 0.999f, 0.0f};
    static const int ks[] = {0, 1, 3, 40, 1000};
    static const float ps[] = {1.0f, 0.9f, 0.5f, 0.01f};
    int n = 131072, c, k, p, tok;
    struct rng r;
    float *logits, *buf = malloc((size_t)n * sizeof(*buf));
    struct kn_prob_index *scratch = malloc((size_t)n * sizeof(*scratch));
    double *want = malloc((size_t)n * sizeof(*want));

    rng_init(&r, 16, RNG_STREAM_USER);
    /* small vocabulary: compare with the float64 kept set */
    for (k = 0; k < 5; k++)
        for (p = 0; p < 4; p++) {
            expected_dist(freq_logits, 10, 1.0, ks[k], ps[p], want);
            for (c = 0; c < 4; c++) {
                tok = sample_copy(freq_logits, 10, 1.0f, ks[k], ps[p], coins[c], buf, scratch);
                ck_assert_msg(tok >= 0 && tok < 10 && want[tok] > 0,
                              "k %d p %g coin %.9g: token %d outside the kept set", ks[k], ps[p],
                              coins[c], tok);
            }
        }
    /* 128k vocabulary with a heavy head: top-k membership by rank */
    logits = random_vec(&r, n, -4, 4);
    for (k = 0; k < 200; k++)
        logits[rng_below(&r, (uint64_t)n)] = uniform(&r, 4, 12);
    for (k = 1; k < 5; k++)
        for (p = 0; p < 4; p++)
            for (c = 0; c < 4; c++) {
                int above = 0, i;

                tok = sample_copy(logits, n, 1.0f, ks[k], ps[p], coins[c], buf, scratch);
                ck_assert(tok >= 0 && tok < n);
                for (i = 0; i < n; i++)
                    above += logits[i] > logits[tok] || (logits[i] == logits[tok] && i < tok);
                ck_assert_msg(above < ks[k], "k %d p %g coin %.9g: token %d has rank %d", ks[k],
                              ps[p], coins[c], tok, above);
            }
    for (c = 0; c < 4; c++) {
        tok = sample_copy(logits, n, 0.9f, 0, 1.0f, coins[c], buf, scratch);
        ck_assert(tok >= 0 && tok < n);
    }
    free(logits);
    free(buf);
    free(scratch);
    free(want);
}
END_TEST

/* On a 32k vocabulary whose head (200 tokens, logits 10 .. 19.95) holds
 * nearly all the mass, top_p 0.5 draws only from the float64 nucleus, with
 * the nucleus's frequencies. */
START_TEST(test_sample_large_nucleus)
{
    const int n = 32768, head = 200, stride = 150, draws = 4000;
    struct rng r;
    float *logits, *buf = malloc((size_t)n * sizeof(*buf));
    struct kn_prob_index *scratch = malloc((size_t)n * sizeof(*scratch));
    double *p = malloc((size_t)n * sizeof(*p));
    long count[200] = {0};
    double max = 0, sum = 0, cum = 0, nucleus = 0;
    int d, i, first = head - 1;

    rng_init(&r, 17, RNG_STREAM_USER);
    logits = random_vec(&r, n, -4, 0);
    for (i = 0; i < head; i++)
        logits[i * stride] = 10 + (float)i / 20;
    for (i = 0; i < n; i++)
        max = logits[i] > max ? logits[i] : max;
    for (i = 0; i < n; i++)
        sum += p[i] = exp(logits[i] - max);
    /* head token i is the (head - i)-th most likely: walk down from the top */
    for (i = head - 1; i >= 0; i--) {
        cum += p[i * stride] / sum;
        first = i;
        if (cum >= 0.5)
            break;
    }
    nucleus = cum;
    for (d = 0; d < draws; d++) {
        int tok = sample_copy(logits, n, 1.0f, 0, 0.5f, (float)rng_uniform(&r), buf, scratch);

        ck_assert_msg(tok % stride == 0 && tok / stride >= first && tok / stride < head,
                      "token %d outside the nucleus (head tokens %d..%d)", tok, first, head - 1);
        count[tok / stride]++;
    }
    for (i = first; i < head; i++) {
        double want = p[i * stride] / sum / nucleus, f = (double)count[i] / draws;

        ck_assert_msg(fabs(f - want) <= 5 * sqrt(want * (1 - want) / draws),
                      "head token %d drawn %.5f, want %.5f", i, f, want);
    }
    free(logits);
    free(buf);
    free(scratch);
    free(p);
}
END_TEST

static Suite *suite_ops(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rmsnorm);
    tcase_add_test(tc, test_rmsnorm_range);
    tcase_add_test(tc, test_rope_reference);
    tcase_add_test(tc, test_rope_layouts_agree);
    tcase_add_test(tc, test_rope_pos0_identity);
    tcase_add_test(tc, test_rope_table_matches);
    tcase_add_test(tc, test_swiglu);
    tcase_add_test(tc, test_softmax);
    tcase_add_test(tc, test_softmax_large_logits);
    tcase_add_test(tc, test_argmax);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *suite_sampling(void)
{
    Suite *s = suite_create("sampling");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sample_greedy);
    tcase_add_test(tc, test_sample_frequencies);
    tcase_add_test(tc, test_sample_coin_edge);
    tcase_add_test(tc, test_sample_large_nucleus);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_ops());
    int failed;

    srunner_add_suite(sr, suite_sampling());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
