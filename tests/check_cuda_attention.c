/* check_cuda_attention.c -- unit tests of the CUDA attention kernels
 * (kernels/cuda/attention.cu, flash_bf16.cu): every version of decode,
 * prefill and the bf16 flash attention against float64 host references.
 *
 * The paged cache: several sequences of different lengths (0, 1, lengths
 * that are not multiples of the 16-row block, long ones that take many
 * splits), blocks (of 16 rows, and of 1 and 128) handed out in a shuffled
 * order from a pool with spare blocks; row padding, unused rows and spare
 * blocks hold NaN, and unused block-table entries are -1, so a read of
 * anything outside the valid positions shows.  Shapes cover GQA ratios 1, 3, 4, 8 and 12 (more query
 * heads than one decode block takes), head_dim 64, 72, 128, 256 and 30 (not
 * a multiple of 4), and a row stride that is not a multiple of 4 (the
 * scalar path).  Outputs are filled with NaN before each call, so a row a
 * kernel forgets to write fails.
 *
 * Tolerances:
 *   float32 kernels:  |out - ref| <= 2e-5 + 1e-4 |ref| per element (the
 *                     outputs are averages of values in [-1, 1]);
 *   bf16 flash:       the reference is computed in double from the
 *                     bf16-rounded inputs; the kernels round the output to
 *                     bf16 (2^-9 relative) and v1 also P (2^-9 relative per
 *                     probability), so |out - ref| <= 4e-3 + 8e-3 |ref| per
 *                     element and the RMS error over a case <= 2e-3.
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

#include "common/rng.h"
#include "kernels/cuda/kn_cuda.h"
#include "kernels/kernels.h"

#define TOL_ABS 2e-5
#define TOL_REL 1e-4
#define BF16_TOL_ABS 4e-3
#define BF16_TOL_REL 8e-3
#define BF16_TOL_RMS 2e-3

/* ---- helpers ------------------------------------------------------------------ */

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

static float uniform(struct rng *r, double a)
{
    return (float)((2.0 * rng_uniform(r) - 1.0) * a);
}

static void *dev_alloc(size_t bytes)
{
    void *d = kn_cuda_alloc(bytes);
    ck_assert_msg(d != NULL, "kn_cuda_alloc(%zu): %s", bytes, kn_cuda_error());
    return d;
}

static void *dev_upload(const void *h, size_t bytes)
{
    void *d = dev_alloc(bytes);
    ck_assert_msg(kn_cuda_upload(d, h, bytes) == 0, "upload: %s", kn_cuda_error());
    return d;
}

static void dev_download(void *h, const void *d, size_t bytes)
{
    ck_assert_msg(kn_cuda_sync() == 0, "kernel: %s", kn_cuda_error());
    ck_assert_msg(kn_cuda_download(h, d, bytes) == 0, "download: %s", kn_cuda_error());
}

/* Every version of OP, then KN_CUDA_DEFAULT: VERSIONS[0..*n). */
static void versions_of(enum kn_cuda_op op, int *versions, int *n)
{
    int count = kn_cuda_versions(op);

    ck_assert_int_ge(count, 1);
    ck_assert_int_le(count, 15);
    for (int i = 0; i < count; i++) {
        ck_assert_ptr_nonnull(kn_cuda_version_name(op, i));
        versions[i] = i;
    }
    versions[count] = KN_CUDA_DEFAULT;
    *n = count + 1;
}

/* Compare N outputs with the reference; WHAT names the case. */
static void check_close(const char *what, int version, const float *got, const double *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const double tol = TOL_ABS + TOL_REL * fabs(want[i]);
        const double diff = fabs((double)got[i] - want[i]);

        ck_assert_msg(diff <= tol, "%s, version %d: out[%zu] = %.8g, want %.8g (diff %.3g > %.3g)", what, version, i,
                      (double)got[i], want[i], diff, tol);
    }
}

/* ---- the paged cache ------------------------------------------------------------ */

struct paged {
    int n_seqs, max_blocks, block_size, row_stride, n_rows, max_len;
    int32_t *lens, *tables; /* host: (n_seqs), (n_seqs, max_blocks) */
    float *k, *v;           /* host: n_rows * row_stride */
    void *dk, *dv, *dtables, *dlens;
    struct kn_cuda_paged_kv kv; /* the device view */
};

/* A cache for sequences of LENS (n_seqs) positions in blocks of BS rows,
 * kv rows of n_kv_heads * head_dim floats padded by PAD floats: K and V
 * uniform in [-1, 1] where a position lives, NaN everywhere else. */
static void paged_build(struct paged *c, const int *lens, int n_seqs, const struct kn_attn_shape *s, int pad, int bs,
                        struct rng *r)
{
    int total = 0, pool;
    int32_t *perm;
    size_t n;

    memset(c, 0, sizeof *c);
    c->n_seqs = n_seqs;
    c->block_size = bs;
    c->max_blocks = 1;
    for (int i = 0; i < n_seqs; i++) {
        int nb = (lens[i] + bs - 1) / bs;
        total += nb;
        if (nb > c->max_blocks)
            c->max_blocks = nb;
        if (lens[i] > c->max_len)
            c->max_len = lens[i];
    }
    pool = total + 3;
    c->row_stride = s->n_kv_heads * s->head_dim + pad;
    c->n_rows = pool * bs;
    n = (size_t)c->n_rows * c->row_stride;
    c->k = xmalloc(n * sizeof(float));
    c->v = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        c->k[i] = c->v[i] = NAN;

    /* A shuffled pool of blocks, dealt out to the sequences in turn. */
    perm = xmalloc((size_t)pool * sizeof *perm);
    for (int i = 0; i < pool; i++)
        perm[i] = i;
    for (int i = pool - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint64_t)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    c->lens = xmalloc((size_t)n_seqs * sizeof *c->lens);
    c->tables = xmalloc((size_t)n_seqs * c->max_blocks * sizeof *c->tables);
    for (size_t i = 0; i < (size_t)n_seqs * c->max_blocks; i++)
        c->tables[i] = -1;
    for (int i = 0, next = 0; i < n_seqs; i++) {
        c->lens[i] = lens[i];
        for (int b = 0; b < (lens[i] + bs - 1) / bs; b++)
            c->tables[(size_t)i * c->max_blocks + b] = perm[next++];
        for (int p = 0; p < lens[i]; p++) {
            size_t row = (size_t)c->tables[(size_t)i * c->max_blocks + p / bs] * bs + p % bs;
            for (int j = 0; j < s->n_kv_heads * s->head_dim; j++) {
                c->k[row * c->row_stride + j] = uniform(r, 1.0);
                c->v[row * c->row_stride + j] = uniform(r, 1.0);
            }
        }
    }
    free(perm);

    c->dk = dev_upload(c->k, n * sizeof(float));
    c->dv = dev_upload(c->v, n * sizeof(float));
    c->dtables = dev_upload(c->tables, (size_t)n_seqs * c->max_blocks * sizeof(int32_t));
    c->dlens = dev_upload(c->lens, (size_t)n_seqs * sizeof(int32_t));
    c->kv = (struct kn_cuda_paged_kv){.k = c->dk,
                                      .v = c->dv,
                                      .row_stride = c->row_stride,
                                      .block_size = bs,
                                      .block_tables = c->dtables,
                                      .max_blocks = c->max_blocks,
                                      .seq_lens = c->dlens};
}

static void paged_free(struct paged *c)
{
    kn_cuda_free(c->dk);
    kn_cuda_free(c->dv);
    kn_cuda_free(c->dtables);
    kn_cuda_free(c->dlens);
    free(c->k);
    free(c->v);
    free(c->lens);
    free(c->tables);
}

/* K or V (BASE: c->k or c->v) of sequence SEQ, position P, kv head G. */
static const float *paged_at(const struct paged *c, const float *base, int seq, int p, int g, int hd)
{
    const int bs = c->block_size;
    size_t row = (size_t)c->tables[(size_t)seq * c->max_blocks + p / bs] * bs + p % bs;
    return base + row * c->row_stride + (size_t)g * hd;
}

/* out (hd) = softmax(q . K[0..n) / sqrt(hd)) V in double, for sequence SEQ
 * and kv head G; zeros when n == 0. */
static void attend_double(double *out, const float *q, const struct paged *c, int seq, int n, int g, int hd)
{
    double *sc = xmalloc((size_t)(n ? n : 1) * sizeof *sc), max = -INFINITY, sum = 0.0;

    for (int i = 0; i < hd; i++)
        out[i] = 0.0;
    for (int p = 0; p < n; p++) {
        const float *kp = paged_at(c, c->k, seq, p, g, hd);
        double dot = 0.0;
        for (int i = 0; i < hd; i++)
            dot += (double)q[i] * kp[i];
        sc[p] = dot / sqrt((double)hd);
        if (sc[p] > max)
            max = sc[p];
    }
    for (int p = 0; p < n; p++) {
        sc[p] = exp(sc[p] - max);
        sum += sc[p];
    }
    for (int p = 0; p < n; p++) {
        const float *vp = paged_at(c, c->v, seq, p, g, hd);
        for (int i = 0; i < hd; i++)
            out[i] += sc[p] / sum * vp[i];
    }
    free(sc);
}

/* ---- decode ------------------------------------------------------------------------ */

struct att_case {
    struct kn_attn_shape s;
    int pad;        /* floats of padding per cache row */
    int block_size; /* rows per cache block */
};

/* GQA ratios 1, 4, 8, 3, 12; head_dim 64, 128, 72, 256, 30; a stride that
 * is not a multiple of 4 (pad 1) forces the scalar path for 128; blocks of
 * 16 rows, and of 1 and 128. */
static const struct att_case att_cases[] = {
    {{4, 4, 64}, 4, 16},  {{8, 2, 128}, 4, 16}, {{16, 2, 128}, 0, 16}, {{8, 1, 72}, 4, 1}, {{6, 2, 30}, 2, 16},
    {{4, 4, 256}, 4, 16}, {{8, 2, 128}, 1, 128}, {{24, 2, 64}, 4, 16}, {{2, 1, 4}, 0, 16}, {{8, 8, 256}, 3, 16},
};
#define N_ATT_CASES (int)(sizeof att_cases / sizeof att_cases[0])

/* Decode every sequence of LENS against the double reference, every
 * version; MAX_LEN_EXTRA is added to the longest length for max_len. */
static void check_decode(const struct att_case *ac, const int *lens, int n_seqs, int max_len_extra, struct rng *r)
{
    const struct kn_attn_shape *s = &ac->s;
    const int hd = s->head_dim, group = s->n_heads / s->n_kv_heads;
    const size_t n_out = (size_t)n_seqs * s->n_heads * hd;
    struct paged c;
    int versions[16], nv;
    char what[160];

    paged_build(&c, lens, n_seqs, s, ac->pad, ac->block_size, r);
    const int max_len = c.max_len + max_len_extra;
    float *q = xmalloc(n_out * sizeof *q), *out = xmalloc(n_out * sizeof *out);
    double *want = xmalloc(n_out * sizeof *want);

    for (size_t i = 0; i < n_out; i++)
        q[i] = uniform(r, 2.0);
    for (int i = 0; i < n_seqs; i++)
        for (int h = 0; h < s->n_heads; h++) {
            size_t off = ((size_t)i * s->n_heads + h) * hd;
            attend_double(want + off, q + off, &c, i, lens[i], h / group, hd);
        }

    float *dq = dev_upload(q, n_out * sizeof *q), *dout = dev_alloc(n_out * sizeof *dout);
    size_t ws_bytes = kn_cuda_decode_workspace_bytes(n_seqs, max_len, s);
    void *ws = ws_bytes > 0 ? dev_alloc(ws_bytes) : NULL;

    versions_of(KN_CUDA_OP_DECODE, versions, &nv);
    for (int vi = 0; vi < nv; vi++) {
        ck_assert_int_eq(kn_cuda_memset(dout, 0xff, n_out * sizeof *dout), 0); /* NaN */
        ck_assert_msg(kn_cuda_attention_decode(versions[vi], dout, dq, &c.kv, n_seqs, max_len, s, ws) == 0,
                      "decode version %d: %s", versions[vi], kn_cuda_error());
        dev_download(out, dout, n_out * sizeof *out);
        snprintf(what, sizeof what, "decode %d/%d/%d pad %d, %d seqs (longest %d, max_len %d)", s->n_heads,
                 s->n_kv_heads, hd, ac->pad, n_seqs, c.max_len, max_len);
        check_close(what, versions[vi], out, want, n_out);
    }
    kn_cuda_free(ws);
    kn_cuda_free(dq);
    kn_cuda_free(dout);
    free(q);
    free(out);
    free(want);
    paged_free(&c);
}

START_TEST(test_decode_short)
{
    /* Lengths 1, 0 (zeros out), not multiples of 16, up to one split. */
    static const int lens[] = {1, 17, 0, 33, 200, 256, 5};
    struct rng r;

    rng_init(&r, 11, RNG_STREAM_USER);
    for (int i = 0; i < N_ATT_CASES; i++)
        check_decode(&att_cases[i], lens, (int)(sizeof lens / sizeof lens[0]), 0, &r);
}
END_TEST

START_TEST(test_decode_long)
{
    /* Many splits, sequences of very different lengths in one batch, and a
     * max_len above every length. */
    static const int lens[] = {1000, 1, 4097, 300, 2500};
    struct rng r;

    rng_init(&r, 12, RNG_STREAM_USER);
    for (int i = 0; i < N_ATT_CASES; i++)
        check_decode(&att_cases[i], lens, (int)(sizeof lens / sizeof lens[0]), i % 2 ? 123 : 0, &r);
}
END_TEST

START_TEST(test_decode_batch)
{
    /* A batch of 40 sequences (the block count alone fills the device). */
    int lens[40];
    struct rng r;

    rng_init(&r, 13, RNG_STREAM_USER);
    for (int i = 0; i < 40; i++)
        lens[i] = 1 + (int)rng_below(&r, 700);
    check_decode(&att_cases[1], lens, 40, 0, &r);
    check_decode(&att_cases[3], lens, 40, 0, &r);
}
END_TEST

START_TEST(test_decode_errors)
{
    struct kn_attn_shape bad = {6, 4, 64}, big = {4, 4, 320};
    struct kn_cuda_paged_kv kv = {.k = (const float *)16, .v = (const float *)16, .row_stride = 256,
                                  .block_size = 16, .block_tables = (const int32_t *)16, .max_blocks = 1,
                                  .seq_lens = (const int32_t *)16};

    ck_assert_int_eq(kn_cuda_attention_decode(0, (float *)16, (const float *)16, &kv, 1, 1, &bad, NULL), -1);
    ck_assert_int_eq(kn_cuda_attention_decode(0, (float *)16, (const float *)16, &kv, 1, 1, &big, NULL), -1);
    kv.block_size = 12;
    ck_assert_int_eq(kn_cuda_attention_decode(0, (float *)16, (const float *)16, &kv, 1, 1, &(struct kn_attn_shape){4, 4, 64}, NULL), -1);
    ck_assert_int_eq(kn_cuda_attention_decode(99, (float *)16, (const float *)16, &kv, 1, 1, &(struct kn_attn_shape){4, 4, 64}, NULL), -1);
    ck_assert_str_ne(kn_cuda_error(), "");
    /* Short contexts need no workspace. */
    ck_assert_uint_eq(kn_cuda_decode_workspace_bytes(3, 256, &(struct kn_attn_shape){4, 4, 64}), 0);
    ck_assert_uint_gt(kn_cuda_decode_workspace_bytes(3, 257, &(struct kn_attn_shape){4, 4, 64}), 0);
}
END_TEST

/* ---- prefill ------------------------------------------------------------------------ */

/* T queries at pos0 of sequence 1 of a cache whose sequence 0 is a decoy
 * of another length; every version against the double reference. */
static void check_prefill(const struct att_case *ac, int T, int pos0, struct rng *r)
{
    const struct kn_attn_shape *s = &ac->s;
    const int hd = s->head_dim, group = s->n_heads / s->n_kv_heads;
    const size_t n_out = (size_t)T * s->n_heads * hd;
    const int lens[2] = {37, pos0 + T};
    struct paged c;
    int versions[16], nv;
    char what[160];

    paged_build(&c, lens, 2, s, ac->pad, ac->block_size, r);
    float *q = xmalloc(n_out * sizeof *q), *out = xmalloc(n_out * sizeof *out);
    double *want = xmalloc(n_out * sizeof *want);

    for (size_t i = 0; i < n_out; i++)
        q[i] = uniform(r, 2.0);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < s->n_heads; h++) {
            size_t off = ((size_t)t * s->n_heads + h) * hd;
            attend_double(want + off, q + off, &c, 1, pos0 + t + 1, h / group, hd);
        }

    float *dq = dev_upload(q, n_out * sizeof *q), *dout = dev_alloc(n_out * sizeof *dout);

    versions_of(KN_CUDA_OP_PREFILL, versions, &nv);
    for (int vi = 0; vi < nv; vi++) {
        ck_assert_int_eq(kn_cuda_memset(dout, 0xff, n_out * sizeof *dout), 0);
        ck_assert_msg(kn_cuda_attention_prefill(versions[vi], dout, dq, &c.kv, 1, T, pos0, s) == 0,
                      "prefill version %d: %s", versions[vi], kn_cuda_error());
        dev_download(out, dout, n_out * sizeof *out);
        snprintf(what, sizeof what, "prefill %d/%d/%d pad %d, T %d at pos0 %d", s->n_heads, s->n_kv_heads, hd,
                 ac->pad, T, pos0);
        check_close(what, versions[vi], out, want, n_out);
    }
    kn_cuda_free(dq);
    kn_cuda_free(dout);
    free(q);
    free(out);
    free(want);
    paged_free(&c);
}

START_TEST(test_prefill)
{
    static const int cases[][2] = {{1, 0}, {1, 100}, {37, 0}, {37, 100}, {300, 0}, {300, 45}, {64, 64}, {65, 3}};
    struct rng r;

    rng_init(&r, 21, RNG_STREAM_USER);
    for (int i = 0; i < N_ATT_CASES; i++)
        for (int j = 0; j < (int)(sizeof cases / sizeof cases[0]); j++) {
            const int T = cases[j][0], pos0 = cases[j][1];
            /* Keep the double reference quick: big shapes get the short cases. */
            if ((double)T * (pos0 + T) * att_cases[i].s.n_heads * att_cases[i].s.head_dim > 2e8)
                continue;
            check_prefill(&att_cases[i], T, pos0, &r);
        }
}
END_TEST

START_TEST(test_prefill_long)
{
    struct rng r;

    rng_init(&r, 22, RNG_STREAM_USER);
    check_prefill(&att_cases[1], 300, 700, &r); /* 8/2/128: 300 queries after 700 cached */
    check_prefill(&att_cases[5], 100, 150, &r); /* 4/4/256 */
}
END_TEST

START_TEST(test_prefill_last_is_decode)
{
    /* The last prefill query and a decode of the whole sequence see the
     * same keys: the two kernels agree to float rounding. */
    const struct att_case *ac = &att_cases[1];
    const struct kn_attn_shape *s = &ac->s;
    const int T = 40, pos0 = 260, n = pos0 + T, hd = s->head_dim;
    const int lens[1] = {n};
    const size_t n_out = (size_t)T * s->n_heads * hd, row = (size_t)s->n_heads * hd;
    struct paged c;
    struct rng r;

    rng_init(&r, 23, RNG_STREAM_USER);
    paged_build(&c, lens, 1, s, ac->pad, ac->block_size, &r);
    float *q = xmalloc(n_out * sizeof *q), *pre = xmalloc(n_out * sizeof *pre), *dec = xmalloc(row * sizeof *dec);
    for (size_t i = 0; i < n_out; i++)
        q[i] = uniform(&r, 2.0);
    float *dq = dev_upload(q, n_out * sizeof *q), *dpre = dev_alloc(n_out * sizeof *dpre);
    float *ddec = dev_alloc(row * sizeof *ddec);
    void *ws = dev_alloc(kn_cuda_decode_workspace_bytes(1, n, s) + 4);

    ck_assert_int_eq(kn_cuda_attention_prefill(KN_CUDA_DEFAULT, dpre, dq, &c.kv, 0, T, pos0, s), 0);
    ck_assert_int_eq(kn_cuda_attention_decode(KN_CUDA_DEFAULT, ddec, dq + (T - 1) * row, &c.kv, 1, n, s, ws), 0);
    dev_download(pre, dpre, n_out * sizeof *pre);
    dev_download(dec, ddec, row * sizeof *dec);
    for (size_t i = 0; i < row; i++)
        ck_assert_msg(fabsf(pre[(T - 1) * row + i] - dec[i]) <= 1e-5f + 1e-4f * fabsf(dec[i]),
                      "last prefill row %zu: %.8g, decode %.8g", i, (double)pre[(T - 1) * row + i], (double)dec[i]);
    kn_cuda_free(ws);
    kn_cuda_free(dq);
    kn_cuda_free(dpre);
    kn_cuda_free(ddec);
    free(q);
    free(pre);
    free(dec);
    paged_free(&c);
}
END_TEST

/* ---- flash attention, bf16 ------------------------------------------------------------ */

static double bf16_value(uint16_t h)
{
    float f;
    kn_bf16_to_f32(&f, &h, 1);
    return f;
}

/* Whether row T of S is checked: all of them for short sequences, a sample
 * of the long ones (the first, the last, every 13th). */
static int row_checked(int t, int S)
{
    return S <= 256 || t < 3 || t >= S - 3 || t % 13 == 0;
}

/* B sequences of S, shape s, causal or not: every version against the
 * double reference computed from the bf16 inputs (QF, KF, VF: their values
 * as floats, exact). */
static void check_flash(int B, int S, const struct kn_attn_shape *s, int causal, struct rng *r)
{
    const int hd = s->head_dim, group = s->n_heads / s->n_kv_heads;
    const size_t nq = (size_t)B * S * s->n_heads * hd, nkv = (size_t)B * S * s->n_kv_heads * hd;
    float *qf = xmalloc(nq * sizeof *qf), *kf = xmalloc(nkv * sizeof *kf), *vf = xmalloc(nkv * sizeof *vf);
    uint16_t *q = xmalloc(nq * 2), *k = xmalloc(nkv * 2), *v = xmalloc(nkv * 2), *out = xmalloc(nq * 2);
    double *want = xmalloc(nq * sizeof *want), *sc = xmalloc((size_t)S * sizeof *sc);
    int versions[16], nv;

    for (size_t i = 0; i < nq; i++)
        qf[i] = uniform(r, 2.0);
    for (size_t i = 0; i < nkv; i++) {
        kf[i] = uniform(r, 1.0);
        vf[i] = uniform(r, 1.0);
    }
    kn_f32_to_bf16(q, qf, nq);
    kn_f32_to_bf16(k, kf, nkv);
    kn_f32_to_bf16(v, vf, nkv);
    kn_bf16_to_f32(qf, q, nq);
    kn_bf16_to_f32(kf, k, nkv);
    kn_bf16_to_f32(vf, v, nkv);

    for (int b = 0; b < B; b++)
        for (int t = 0; t < S; t++) {
            if (!row_checked(t, S))
                continue;
            for (int h = 0; h < s->n_heads; h++) {
                const float *qr = qf + (((size_t)b * S + t) * s->n_heads + h) * hd;
                const int g = h / group, n = causal ? t + 1 : S;
                double max = -INFINITY, sum = 0;
                double *o = want + (((size_t)b * S + t) * s->n_heads + h) * hd;

                for (int p = 0; p < n; p++) {
                    const float *kr = kf + (((size_t)b * S + p) * s->n_kv_heads + g) * hd;
                    double dot = 0;
                    for (int d = 0; d < hd; d++)
                        dot += (double)qr[d] * kr[d];
                    sc[p] = dot / sqrt((double)hd);
                    max = sc[p] > max ? sc[p] : max;
                }
                for (int p = 0; p < n; p++) {
                    sc[p] = exp(sc[p] - max);
                    sum += sc[p];
                }
                for (int d = 0; d < hd; d++)
                    o[d] = 0;
                for (int p = 0; p < n; p++) {
                    const float *vr = vf + (((size_t)b * S + p) * s->n_kv_heads + g) * hd;
                    for (int d = 0; d < hd; d++)
                        o[d] += sc[p] / sum * vr[d];
                }
            }
        }

    uint16_t *dq = dev_upload(q, nq * 2), *dk = dev_upload(k, nkv * 2), *dv = dev_upload(v, nkv * 2);
    uint16_t *dout = dev_alloc(nq * 2);

    versions_of(KN_CUDA_OP_FLASH_BF16, versions, &nv);
    for (int vi = 0; vi < nv; vi++) {
        double sq = 0;
        size_t count = 0;

        ck_assert_int_eq(kn_cuda_memset(dout, 0xff, nq * 2), 0); /* bf16 NaN */
        ck_assert_msg(kn_cuda_flash_attention_bf16(versions[vi], dout, dq, dk, dv, B, S, s, causal) == 0,
                      "flash version %d: %s", versions[vi], kn_cuda_error());
        dev_download(out, dout, nq * 2);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < S; t++) {
                if (!row_checked(t, S))
                    continue;
                for (size_t i = 0; i < (size_t)s->n_heads * hd; i++) {
                    const size_t at = ((size_t)b * S + t) * s->n_heads * hd + i;
                    const double got = bf16_value(out[at]), diff = fabs(got - want[at]);
                    const double tol = BF16_TOL_ABS + BF16_TOL_REL * fabs(want[at]);

                    ck_assert_msg(diff <= tol,
                                  "flash version %d, B %d S %d %d/%d/%d %s: batch %d row %d [%zu] = %.6g, want "
                                  "%.6g (diff %.3g > %.3g)",
                                  versions[vi], B, S, s->n_heads, s->n_kv_heads, hd, causal ? "causal" : "full", b,
                                  t, i, got, want[at], diff, tol);
                    sq += diff * diff;
                    count++;
                }
            }
        ck_assert_msg(sqrt(sq / count) <= BF16_TOL_RMS, "flash version %d, B %d S %d %d/%d/%d %s: RMS error %.3g",
                      versions[vi], B, S, s->n_heads, s->n_kv_heads, hd, causal ? "causal" : "full",
                      sqrt(sq / count));
    }
    kn_cuda_free(dq);
    kn_cuda_free(dk);
    kn_cuda_free(dv);
    kn_cuda_free(dout);
    free(qf);
    free(kf);
    free(vf);
    free(q);
    free(k);
    free(v);
    free(out);
    free(want);
    free(sc);
}

START_TEST(test_flash_bf16)
{
    static const int lengths[] = {1, 17, 200, 1024};
    static const struct kn_attn_shape shapes[] = {{4, 4, 64}, {8, 2, 128}, {8, 1, 64}, {4, 4, 128}};
    struct rng r;

    rng_init(&r, 31, RNG_STREAM_USER);
    for (int si = 0; si < (int)(sizeof shapes / sizeof shapes[0]); si++)
        for (int li = 0; li < (int)(sizeof lengths / sizeof lengths[0]); li++)
            for (int causal = 0; causal <= 1; causal++)
                check_flash(lengths[li] > 256 ? 1 : 2, lengths[li], &shapes[si], causal, &r);
}
END_TEST

START_TEST(test_flash_bf16_errors)
{
    struct kn_attn_shape odd = {4, 4, 96};
    uint16_t *p = (uint16_t *)256;

    ck_assert_int_eq(kn_cuda_flash_attention_bf16(0, p, p, p, p, 1, 16, &odd, 1), -1);
    ck_assert_int_eq(kn_cuda_flash_attention_bf16(42, p, p, p, p, 1, 16, &(struct kn_attn_shape){4, 4, 64}, 1), -1);
    ck_assert_int_eq(kn_cuda_flash_attention_bf16(0, p, p, p, p, 1, 16, &(struct kn_attn_shape){6, 4, 64}, 1), -1);
    ck_assert_int_eq(kn_cuda_flash_attention_bf16(0, p, p, p, p, 0, 16, &(struct kn_attn_shape){4, 4, 64}, 1), 0);
}
END_TEST

static Suite *suite_cuda_attention(void)
{
    Suite *s = suite_create("cuda_attention");
    TCase *tc = tcase_create("cuda_attention");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_decode_short);
    tcase_add_test(tc, test_decode_long);
    tcase_add_test(tc, test_decode_batch);
    tcase_add_test(tc, test_decode_errors);
    tcase_add_test(tc, test_prefill);
    tcase_add_test(tc, test_prefill_long);
    tcase_add_test(tc, test_prefill_last_is_decode);
    tcase_add_test(tc, test_flash_bf16);
    tcase_add_test(tc, test_flash_bf16_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (kn_cuda_device_count() == 0) {
        printf("check_cuda_attention: skipped: no CUDA device (%s)\n", kn_cuda_error());
        return 77;
    }
    if (kn_cuda_init(0) != 0) {
        printf("check_cuda_attention: cannot use device 0: %s\n", kn_cuda_error());
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(suite_cuda_attention());
    srunner_set_fork_status(sr, CK_NOFORK); /* a CUDA context does not survive fork() */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
