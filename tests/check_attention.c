/* check_attention.c -- unit tests of the attention kernels (kernels/attention.c).
 *
 * Every result is compared with a float64 reference written here (direct
 * softmax in double) by the normwise relative error
 *     max |out - ref| / max |ref|  <  1e-4        (float32 kernels)
 * over shapes (n_heads, n_kv_heads, head_dim) from 1/1/1 to 32/8/128, an
 * awkward head_dim of 7, groups of 1, 3, 4 and 6 and a wide one (40/2/8); prefill and decode lengths from 1 to 1031, with and
 * without a cached prefix (pos0 > 0); a contiguous cache and a paged one
 * (16-row blocks, shuffled block table, rows padded, NaN in every float the
 * kernels must not read); the portable and AVX2 paths; 1 and 2 threads. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "kernels/kernels.h"

#define TOL 1e-4
/* Prefill cases above this many (T * S * n_heads * head_dim) are skipped to
 * keep the suite fast (and bearable under ASan). */
#define PREFILL_BUDGET 3e7

/* groups of 1, 4, 3 and 6 query heads per kv head (the decode row walk takes
 * them four at a time: 3 and 6 leave 3 and 2 over); the last: 20 query heads
 * per kv head, more than one work item's rows */
static const struct kn_attn_shape shapes[] = {
    {1, 1, 1}, {4, 4, 16}, {8, 2, 64}, {32, 8, 128}, {6, 3, 7}, {12, 4, 24}, {12, 2, 32}, {40, 2, 8},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static const int lengths[] = {1, 2, 17, 64, 100, 257, 1031};
#define N_LENGTHS (int)(sizeof lengths / sizeof lengths[0])

static const enum kn_isa isas[] = {KN_ISA_PORTABLE, KN_ISA_AVX2};
static const int threads[] = {1, 2};

/* ---- fixtures ------------------------------------------------------------------ */

static float *alloc_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* n floats uniform in [-a, a]. */
static float *random_floats(struct rng *r, size_t n, double a)
{
    float *p = alloc_floats(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((2.0 * rng_uniform(r) - 1.0) * a);
    return p;
}

/* A KV cache holding logical K and V (S, n_kv_heads, head_dim), laid out
 * contiguously (rows exactly n_kv_heads*head_dim, nothing allocated past
 * them) or paged (block_size 16, a shuffled block table over a pool with
 * spare blocks, rows padded by 3 floats; padding and unused rows are NaN). */
struct cache {
    float *k, *v;
    int32_t *blocks;
    struct kn_kv_view view;
};

static void cache_build(struct cache *c, const float *k, const float *v, int S, int n_kv, int hd, int paged,
                        struct rng *r)
{
    int row = n_kv * hd;
    memset(c, 0, sizeof *c);
    if (!paged) {
        c->k = alloc_floats((size_t)S * row);
        c->v = alloc_floats((size_t)S * row);
        memcpy(c->k, k, (size_t)S * row * sizeof(float));
        memcpy(c->v, v, (size_t)S * row * sizeof(float));
        c->view = (struct kn_kv_view){.k = c->k, .v = c->v, .pos_stride = row};
        return;
    }
    int bs = 16, stride = row + 3;
    int n_blocks = (S + bs - 1) / bs, pool = n_blocks + 3;
    size_t n = (size_t)pool * bs * stride;
    c->k = alloc_floats(n);
    c->v = alloc_floats(n);
    for (size_t i = 0; i < n; i++)
        c->k[i] = c->v[i] = NAN;
    int32_t *perm = malloc((size_t)pool * sizeof *perm);
    ck_assert_ptr_nonnull(perm);
    for (int i = 0; i < pool; i++)
        perm[i] = i;
    for (int i = pool - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint64_t)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    c->blocks = perm;
    for (int p = 0; p < S; p++) {
        size_t at = ((size_t)perm[p / bs] * bs + p % bs) * stride;
        memcpy(c->k + at, k + (size_t)p * row, (size_t)row * sizeof(float));
        memcpy(c->v + at, v + (size_t)p * row, (size_t)row * sizeof(float));
    }
    c->view = (struct kn_kv_view){.k = c->k, .v = c->v, .pos_stride = stride, .block_size = bs, .blocks = perm};
}

static void cache_free(struct cache *c)
{
    free(c->k);
    free(c->v);
    free(c->blocks);
}

/* ---- the float64 reference --------------------------------------------------------- */

/* out (head_dim) = softmax(q . K[0..n_pos) / sqrt(head_dim)) V in double, for
 * kv head g of logical k, v (S, n_kv, head_dim). */
static void attend_double(double *out, const float *q, const float *k, const float *v, int n_pos, int g, int n_kv,
                          int hd)
{
    double *sc = malloc((size_t)n_pos * sizeof *sc);
    ck_assert_ptr_nonnull(sc);
    double max = -INFINITY, sum = 0.0;
    for (int p = 0; p < n_pos; p++) {
        const float *kp = k + ((size_t)p * n_kv + g) * hd;
        double dot = 0.0;
        for (int i = 0; i < hd; i++)
            dot += (double)q[i] * kp[i];
        sc[p] = dot / sqrt((double)hd);
        if (sc[p] > max)
            max = sc[p];
    }
    for (int p = 0; p < n_pos; p++) {
        sc[p] = exp(sc[p] - max);
        sum += sc[p];
    }
    for (int i = 0; i < hd; i++)
        out[i] = 0.0;
    for (int p = 0; p < n_pos; p++) {
        const float *vp = v + ((size_t)p * n_kv + g) * hd;
        for (int i = 0; i < hd; i++)
            out[i] += sc[p] / sum * vp[i];
    }
    free(sc);
}

/* Reference prefill: out (T, n_heads, hd) for q (T, n_heads, hd) at pos0.. */
static double *prefill_double(const float *q, const float *k, const float *v, int T, int pos0,
                              const struct kn_attn_shape *s)
{
    int hd = s->head_dim, group = s->n_heads / s->n_kv_heads;
    double *out = malloc((size_t)T * s->n_heads * hd * sizeof *out);
    ck_assert_ptr_nonnull(out);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < s->n_heads; h++) {
            size_t off = ((size_t)t * s->n_heads + h) * hd;
            attend_double(out + off, q + off, k, v, pos0 + t + 1, h / group, s->n_kv_heads, hd);
        }
    return out;
}

/* max |out - ref| / max |ref| over n; NaN in out gives infinity. */
static double rel_err(const float *out, const double *ref, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)out[i] - ref[i]);
        if (isnan(d))
            return INFINITY;
        if (d > num)
            num = d;
        if (fabs(ref[i]) > den)
            den = fabs(ref[i]);
    }
    return den > 0.0 ? num / den : num;
}

static double rel_err_f(const float *out, const float *ref, size_t n)
{
    double *r = malloc((n ? n : 1) * sizeof *r);
    ck_assert_ptr_nonnull(r);
    for (size_t i = 0; i < n; i++)
        r[i] = ref[i];
    double e = rel_err(out, r, n);
    free(r);
    return e;
}

/* ---- the cases ------------------------------------------------------------------------ */

/* Prefill of T queries after a prefix of pos0 positions, q/k/v given
 * (logical layouts); ref and fast, every layout, ISA and thread count,
 * against the double reference and each other. */
static void check_prefill(const struct kn_attn_shape *s, int T, int pos0, const float *q, const float *k,
                          const float *v, struct rng *r)
{
    int hd = s->head_dim, S = pos0 + T;
    size_t n_out = (size_t)T * s->n_heads * hd;
    double *want = prefill_double(q, k, v, T, pos0, s);
    float *ref = alloc_floats(n_out), *out = alloc_floats(n_out);

    for (int paged = 0; paged <= 1; paged++) {
        struct cache c;
        cache_build(&c, k, v, S, s->n_kv_heads, hd, paged, r);
        kn_attention_prefill_ref(ref, q, &c.view, T, pos0, s);
        double e = rel_err(ref, want, n_out);
        ck_assert_msg(e < TOL, "prefill_ref %d/%d/%d T=%d pos0=%d paged=%d: err %.3g", s->n_heads, s->n_kv_heads,
                      hd, T, pos0, paged, e);
        for (int ii = 0; ii < 2; ii++) {
            if (kn_set_isa(isas[ii]) != isas[ii])
                continue;
            for (int ti = 0; ti < 2; ti++) {
                kn_set_threads(threads[ti]);
                for (size_t i = 0; i < n_out; i++)
                    out[i] = 1e30f;
                kn_attention_prefill(out, q, &c.view, T, pos0, s);
                e = rel_err(out, want, n_out);
                double e_ref = rel_err_f(out, ref, n_out);
                ck_assert_msg(e < TOL && e_ref < TOL,
                              "prefill %d/%d/%d T=%d pos0=%d paged=%d isa=%s threads=%d: err %.3g, vs ref %.3g",
                              s->n_heads, s->n_kv_heads, hd, T, pos0, paged, kn_isa_name(isas[ii]), threads[ti], e,
                              e_ref);
            }
        }
        cache_free(&c);
    }
    free(want);
    free(ref);
    free(out);
}

/* Decode of q (n_heads, hd) over S positions, as check_prefill. */
static void check_decode(const struct kn_attn_shape *s, int S, const float *q, const float *k, const float *v,
                         struct rng *r)
{
    int hd = s->head_dim, group = s->n_heads / s->n_kv_heads;
    size_t n_out = (size_t)s->n_heads * hd;
    double *want = malloc(n_out * sizeof *want);
    ck_assert_ptr_nonnull(want);
    for (int h = 0; h < s->n_heads; h++)
        attend_double(want + (size_t)h * hd, q + (size_t)h * hd, k, v, S, h / group, s->n_kv_heads, hd);
    float *ref = alloc_floats(n_out), *out = alloc_floats(n_out);

    for (int paged = 0; paged <= 1; paged++) {
        struct cache c;
        cache_build(&c, k, v, S, s->n_kv_heads, hd, paged, r);
        kn_attention_decode_ref(ref, q, &c.view, S, s);
        double e = rel_err(ref, want, n_out);
        ck_assert_msg(e < TOL, "decode_ref %d/%d/%d S=%d paged=%d: err %.3g", s->n_heads, s->n_kv_heads, hd, S,
                      paged, e);
        for (int ii = 0; ii < 2; ii++) {
            if (kn_set_isa(isas[ii]) != isas[ii])
                continue;
            for (int ti = 0; ti < 2; ti++) {
                kn_set_threads(threads[ti]);
                for (size_t i = 0; i < n_out; i++)
                    out[i] = 1e30f;
                kn_attention_decode(out, q, &c.view, S, s);
                e = rel_err(out, want, n_out);
                double e_ref = rel_err_f(out, ref, n_out);
                ck_assert_msg(e < TOL && e_ref < TOL,
                              "decode %d/%d/%d S=%d paged=%d isa=%s threads=%d: err %.3g, vs ref %.3g", s->n_heads,
                              s->n_kv_heads, hd, S, paged, kn_isa_name(isas[ii]), threads[ti], e, e_ref);
            }
        }
        cache_free(&c);
    }
    free(want);
    free(ref);
    free(out);
}

/* ---- tests ------------------------------------------------------------------------------ */

/* Decode at every shape and length, random q, k, v in [-2, 2]. */
START_TEST(test_decode_shapes)
{
    struct rng r;
    rng_init(&r, 11, 0);
    for (int si = 0; si < N_SHAPES; si++) {
        const struct kn_attn_shape *s = &shapes[si];
        for (int li = 0; li < N_LENGTHS; li++) {
            int S = lengths[li];
            float *q = random_floats(&r, (size_t)s->n_heads * s->head_dim, 2.0);
            float *k = random_floats(&r, (size_t)S * s->n_kv_heads * s->head_dim, 2.0);
            float *v = random_floats(&r, (size_t)S * s->n_kv_heads * s->head_dim, 2.0);
            check_decode(s, S, q, k, v, &r);
            free(q);
            free(k);
            free(v);
        }
    }
}
END_TEST

/* Prefill at every shape: from an empty cache and after a prefix, T and S
 * from the lengths list, the largest ones only for the small shapes. */
START_TEST(test_prefill_shapes)
{
    static const int cases[][2] = {
        /* T, pos0 */
        {1, 0},    {2, 0},   {17, 0},   {64, 0},   {100, 0},  {257, 0},   {1031, 0},
        {1, 1030}, {2, 15},  {17, 47},  {64, 36},  {100, 157}, {17, 240}, {257, 774},
    };
    struct rng r;
    rng_init(&r, 12, 0);
    for (int si = 0; si < N_SHAPES; si++) {
        const struct kn_attn_shape *s = &shapes[si];
        int ran = 0;
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            int T = cases[ci][0], pos0 = cases[ci][1], S = T + pos0;
            if ((double)T * S * s->n_heads * s->head_dim > PREFILL_BUDGET)
                continue;
            float *q = random_floats(&r, (size_t)T * s->n_heads * s->head_dim, 2.0);
            float *k = random_floats(&r, (size_t)S * s->n_kv_heads * s->head_dim, 2.0);
            float *v = random_floats(&r, (size_t)S * s->n_kv_heads * s->head_dim, 2.0);
            check_prefill(s, T, pos0, q, k, v, &r);
            free(q);
            free(k);
            free(v);
            ran++;
        }
        ck_assert_int_ge(ran, 8);
    }
}
END_TEST

/* The last query of a prefill sees what a decode at S = pos0 + T sees. */
START_TEST(test_prefill_last_is_decode)
{
    const struct kn_attn_shape s = {8, 2, 64};
    int T = 37, pos0 = 100, S = pos0 + T, hd = s.head_dim;
    size_t row = (size_t)s.n_heads * hd;
    struct rng r;
    rng_init(&r, 13, 0);
    float *q = random_floats(&r, (size_t)T * row, 2.0);
    float *k = random_floats(&r, (size_t)S * s.n_kv_heads * hd, 2.0);
    float *v = random_floats(&r, (size_t)S * s.n_kv_heads * hd, 2.0);
    float *pre = alloc_floats((size_t)T * row), *dec = alloc_floats(row);
    for (int paged = 0; paged <= 1; paged++) {
        struct cache c;
        cache_build(&c, k, v, S, s.n_kv_heads, hd, paged, &r);
        for (int ii = 0; ii < 2; ii++) {
            if (kn_set_isa(isas[ii]) != isas[ii])
                continue;
            kn_set_threads(2);
            kn_attention_prefill(pre, q, &c.view, T, pos0, &s);
            kn_attention_decode(dec, q + (size_t)(T - 1) * row, &c.view, S, &s);
            double e = rel_err_f(pre + (size_t)(T - 1) * row, dec, row);
            ck_assert_msg(e < 1e-5, "paged=%d isa=%s: prefill's last row vs decode: %.3g", paged,
                          kn_isa_name(isas[ii]), e);
        }
        cache_free(&c);
    }
    free(q);
    free(k);
    free(v);
    free(pre);
    free(dec);
}
END_TEST

/* Scores of magnitude up to 1e5 (exp would overflow without the running
 * max).  q and k are multiples of 16 and head_dim 64, so every score is
 * exact in float and the softmax is compared at full precision.
 *   random: the maximum moves around from tile to tile;
 *   rising: score 32 p, each tile's max wipes out everything before it;
 *   falling: the first key dominates and later tiles add nothing. */
START_TEST(test_extreme_scores)
{
    const struct kn_attn_shape s = {8, 2, 64};
    int hd = s.head_dim, S = 600, T = 100, pos0 = S - T;
    size_t kv_n = (size_t)S * s.n_kv_heads * hd, q_n = (size_t)T * s.n_heads * hd;
    struct rng r;
    rng_init(&r, 14, 0);
    for (int kind = 0; kind < 3; kind++) {
        float *q = alloc_floats(q_n), *k = alloc_floats(kv_n);
        float *v = random_floats(&r, kv_n, 1.0);
        for (size_t i = 0; i < q_n; i++)
            q[i] = kind == 0 ? 16.0f * (float)((int)rng_below(&r, 17) - 8) : (i % (size_t)hd % 3 == 0 ? -16.0f : 16.0f);
        for (size_t i = 0; i < kv_n; i++) {
            int p = (int)(i / ((size_t)s.n_kv_heads * hd));
            float sign = i % (size_t)hd % 3 == 0 ? -1.0f : 1.0f;
            if (kind == 0)
                k[i] = 16.0f * (float)((int)rng_below(&r, 17) - 8);
            else
                k[i] = sign * 0.25f * (float)(kind == 1 ? p : S - p);
        }
        check_prefill(&s, T, pos0, q, k, v, &r);
        check_decode(&s, S, q + (size_t)(T - 1) * s.n_heads * hd, k, v, &r);
        free(q);
        free(k);
        free(v);
    }
}
END_TEST

static Suite *suite_attention(void)
{
    Suite *s = suite_create("attention");
    TCase *tc = tcase_create("attention");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_decode_shapes);
    tcase_add_test(tc, test_prefill_shapes);
    tcase_add_test(tc, test_prefill_last_is_decode);
    tcase_add_test(tc, test_extreme_scores);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_attention());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
