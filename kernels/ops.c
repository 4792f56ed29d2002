/* ops.c -- the elementwise kernels: RMSNorm, RoPE, SwiGLU, softmax, argmax
 * (see kernels.h).
 *
 * These are memory-bound and cheap next to matmul and attention, so they are
 * plain C written for the vectoriser: loops over blocks of KN_OPS_LANES
 * elements with a fixed inner count (which gcc's basic-block vectoriser turns
 * into vector instructions even at -O2), reductions split over KN_OPS_LANES
 * independent partial results, a scalar loop for the tail.  Where out may
 * alias an input, a block is read into a local array before it is written,
 * so the vector code is correct for any overlap.  KN_OPS_CLONES has gcc
 * compile each hot function twice, for AVX2 and for the base ISA, and pick
 * one when the program loads.  The fast versions are the plain versions:
 * there is no separate reference here; tests/check_ops.c checks them against
 * float64. */
#include "config.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>

#include "kernels/kernels.h"

/* Partial sums or maxima kept side by side in reductions: one AVX2 register
 * of floats, two of doubles. */
#define KN_OPS_LANES 8

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define KN_OPS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KN_OPS_CLONES
#endif

/* out = x / sqrt(mean(x^2) + eps) * w over n elements; out may alias x.
 * The sum of squares is accumulated in double: exact enough that the result
 * is the correctly rounded float for any n a model uses. */
KN_OPS_CLONES void kn_rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    double acc[KN_OPS_LANES] = {0};
    float t[KN_OPS_LANES];
    double ss = 0;
    float scale;
    int i, j;

    assert(n > 0);
    for (i = 0; i + KN_OPS_LANES <= n; i += KN_OPS_LANES)
        for (j = 0; j < KN_OPS_LANES; j++)
            acc[j] += (double)x[i + j] * x[i + j];
    for (; i < n; i++)
        acc[0] += (double)x[i] * x[i];
    for (j = 0; j < KN_OPS_LANES; j++)
        ss += acc[j];
    scale = (float)(1.0 / sqrt(ss / n + eps));
    for (i = 0; i + KN_OPS_LANES <= n; i += KN_OPS_LANES) {
        for (j = 0; j < KN_OPS_LANES; j++)
            t[j] = x[i + j] * scale * w[i + j];
        for (j = 0; j < KN_OPS_LANES; j++)
            out[i + j] = t[j];
    }
    for (; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

/* Pairs of a head whose angles kn_rope() computes at a time (on the stack). */
#define KN_ROPE_CHUNK 128

/* The angles of pairs [i0, i0 + cnt) of position pos: pair i turns by
 * pos * theta^(-2i/head_dim), computed in double (a float angle loses about
 * 1e-3 rad at position 100k); c[i - i0] its cosine, s[i - i0] its sine. */
static void rope_angles(float *c, float *s, int head_dim, int pos, float theta, int i0, int cnt)
{
    for (int i = 0; i < cnt; i++) {
        double angle = (double)pos * pow((double)theta, -2.0 * (i0 + i) / head_dim);

        c[i] = (float)cos(angle);
        s[i] = (float)sin(angle);
    }
}

/* Rotate pairs [i0, i0 + cnt) of every head by the angles whose cosines
 * and sines are c[] and s[] (indexed from i0): pair i is (x[2i], x[2i+1])
 * (KN_ROPE_INTERLEAVED) or (x[i], x[i + head_dim/2]) (KN_ROPE_HALF). */
KN_OPS_CLONES static void rope_apply(float *x, int n_heads, int head_dim, int i0, int cnt, const float *c,
                                     const float *s, enum kn_rope_layout layout)
{
    int half = head_dim / 2;

    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;

        if (layout == KN_ROPE_HALF) {
            float *a = v + i0, *b = v + half + i0;

            for (int i = 0; i < cnt; i++) {
                float x0 = a[i], x1 = b[i];

                a[i] = x0 * c[i] - x1 * s[i];
                b[i] = x0 * s[i] + x1 * c[i];
            }
        } else {
            float *p = v + 2 * i0;

            for (int i = 0; i < cnt; i++) {
                float x0 = p[2 * i], x1 = p[2 * i + 1];

                p[2 * i] = x0 * c[i] - x1 * s[i];
                p[2 * i + 1] = x0 * s[i] + x1 * c[i];
            }
        }
    }
}

void kn_rope_angles(float *cs, int head_dim, int pos, float theta)
{
    assert(head_dim > 0 && head_dim % 2 == 0);
    rope_angles(cs, cs + head_dim / 2, head_dim, pos, theta, 0, head_dim / 2);
}

void kn_rope_rotate(float *x, int n_heads, int head_dim, const float *cs, enum kn_rope_layout layout)
{
    assert(n_heads > 0 && head_dim > 0 && head_dim % 2 == 0);
    assert(layout == KN_ROPE_INTERLEAVED || layout == KN_ROPE_HALF);
    rope_apply(x, n_heads, head_dim, 0, head_dim / 2, cs, cs + head_dim / 2, layout);
}

/* Rotate the n_heads vectors of head_dim (even) in x for position pos, the
 * angles computed once per call (KN_ROPE_CHUNK pairs at a time) and shared
 * by all heads.  Position 0 is the identity. */
void kn_rope(float *x, int n_heads, int head_dim, int pos, float theta, enum kn_rope_layout layout)
{
    float c[KN_ROPE_CHUNK], s[KN_ROPE_CHUNK];
    int half = head_dim / 2;

    assert(n_heads > 0 && head_dim > 0 && head_dim % 2 == 0);
    assert(layout == KN_ROPE_INTERLEAVED || layout == KN_ROPE_HALF);
    if (pos == 0)
        return;
    for (int i0 = 0, cnt; i0 < half; i0 += cnt) {
        cnt = half - i0 < KN_ROPE_CHUNK ? half - i0 : KN_ROPE_CHUNK;
        rope_angles(c, s, head_dim, pos, theta, i0, cnt);
        rope_apply(x, n_heads, head_dim, i0, cnt, c, s, layout);
    }
}

/* out = silu(gate) * up over n, silu(g) = g / (1 + exp(-g)); out may alias
 * gate.  A gate below about -88 gives exp(-g) = inf and so silu = -0, the
 * limit. */
void kn_swiglu(float *out, const float *gate, const float *up, int n)
{
    int i;

    assert(n >= 0);
    for (i = 0; i < n; i++) {
        float g = gate[i];

        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* The largest of x[0..n), n > 0, by KN_OPS_LANES partial maxima so that the
 * loop vectorises.  NaNs are skipped unless every value is NaN. */
static float ops_max(const float *x, int n)
{
    float m[KN_OPS_LANES];
    float best;
    int i, j;

    for (j = 0; j < KN_OPS_LANES; j++)
        m[j] = -INFINITY;
    for (i = 0; i + KN_OPS_LANES <= n; i += KN_OPS_LANES)
        for (j = 0; j < KN_OPS_LANES; j++)
            m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    for (; i < n; i++)
        m[0] = x[i] > m[0] ? x[i] : m[0];
    best = m[0];
    for (j = 1; j < KN_OPS_LANES; j++)
        best = m[j] > best ? m[j] : best;
    return best;
}

/* x = exp(x - max) / sum over n > 0, in place.  Subtracting the maximum
 * keeps exp() in range for any finite logits; the sum is kept in double. */
KN_OPS_CLONES void kn_softmax(float *x, int n)
{
    float max, inv;
    double sum = 0;
    int i, j;

    assert(n > 0);
    max = ops_max(x, n);
    for (i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    inv = (float)(1.0 / sum);
    for (i = 0; i + KN_OPS_LANES <= n; i += KN_OPS_LANES)
        for (j = 0; j < KN_OPS_LANES; j++)
            x[i + j] *= inv;
    for (; i < n; i++)
        x[i] *= inv;
}

/* Index of the largest of x[0..n), n > 0, the first one on ties: a
 * vectorised pass finds the maximum, a second finds its first occurrence
 * (both cheap next to a branchy single pass over a 128k vocabulary).
 * NaNs are never chosen unless every value is NaN, which gives 0. */
KN_OPS_CLONES int kn_argmax(const float *x, int n)
{
    float max;
    int i;

    assert(n > 0);
    max = ops_max(x, n);
    for (i = 0; i < n; i++)
        if (x[i] == max)
            return i;
    return 0;
}
