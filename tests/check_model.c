/* check_model.c -- unit tests of the model loaders (server/model_*.c).
 *
 *  - ../shared/models/stories260K.bin (a llama2.c version 0 file) loads with
 *    its known shape, tensors in place in the mapping (skipped with a message
 *    when LLMSCALE_SHARED has no models/).
 *  - The same weights written here in the version 1 and 2 layouts of
 *    llama2.c's export.py (and v0 with a separate classifier) load to the
 *    same values (v2: within the Q8 rounding).
 *  - synthetic: shapes, determinism, seeds, overrides, errors.
 *  - --quantize q8: every matrix with k % 32 == 0 becomes Q8 within half a
 *    quantisation step; the others stay float.
 *  - Hostile files: every truncation, trailing bytes, each header field out
 *    of range, random header mutations and random bytes: refused with
 *    ERR_INPUT naming the file, never a crash (run under ASan in CI). */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "server/model.h"
#include "server/tokenizer.h"

static char shared_model[4096];

static int have_shared_model(void)
{
    const char *shared = getenv("LLMSCALE_SHARED");

    if (shared == NULL)
        shared = "../shared";
    snprintf(shared_model, sizeof shared_model, "%s/models/stories260K.bin", shared);
    if (access(shared_model, R_OK) != 0) {
        fprintf(stderr, "check_model: SKIP tests of stories260K.bin: %s not found\n", shared_model);
        return 0;
    }
    return 1;
}

/* ---- writing llama2.c files (the layouts of export.py) ------------------------------- */

struct buf {
    unsigned char *p;
    size_t n, cap;
};

static void put(struct buf *b, const void *s, size_t n)
{
    while (b->n + n > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_floats(struct buf *b, const float *x, size_t n)
{
    put(b, x, n * sizeof *x);
}

static void put_matrix(struct buf *b, const struct kn_weights *w, int version, int group)
{
    size_t n = (size_t)w->n * (size_t)w->k;

    ck_assert_int_eq(w->dtype, KN_F32);
    if (version < 2) {
        put_floats(b, w->data, n);
    } else {
        int8_t *q = malloc(n);
        float *s = malloc(n / (size_t)group * sizeof *s);
        kn_quantize_q8(q, s, w->data, n, group);
        put(b, q, n);
        put_floats(b, s, n / (size_t)group);
        free(q);
        free(s);
    }
}

/* The bytes of model M (float32) as a llama2.c file of VERSION. */
static struct buf llama2c_bytes(const struct model *m, int version, int shared, int group)
{
    const struct model_config *c = &m->cfg;
    struct buf b = {0};
    int L = c->n_layers;
    size_t field[] = {offsetof(struct model_layer, wq), offsetof(struct model_layer, wk),
                      offsetof(struct model_layer, wv), offsetof(struct model_layer, wo),
                      offsetof(struct model_layer, w1), offsetof(struct model_layer, w2),
                      offsetof(struct model_layer, w3)};
#define MAT(l, i) ((const struct kn_weights *)((const char *)&m->layers[l] + field[i]))

    if (version == 0) {
        int32_t h[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                        shared ? c->vocab_size : -c->vocab_size, c->seq_len};
        put(&b, h, sizeof h);
        put_matrix(&b, &m->tok_embedding, 0, 0);
        for (int l = 0; l < L; l++)
            put_floats(&b, m->layers[l].attn_norm, (size_t)c->dim);
        for (int i = 0; i < 4; i++)
            for (int l = 0; l < L; l++)
                put_matrix(&b, MAT(l, i), 0, 0);
        for (int l = 0; l < L; l++)
            put_floats(&b, m->layers[l].ffn_norm, (size_t)c->dim);
        for (int i = 4; i < 7; i++)
            for (int l = 0; l < L; l++)
                put_matrix(&b, MAT(l, i), 0, 0);
        put_floats(&b, m->final_norm, (size_t)c->dim);
        {
            size_t nf = (size_t)c->seq_len * (size_t)c->head_dim;
            float *freq = calloc(nf, sizeof *freq);
            put_floats(&b, freq, nf);
            free(freq);
        }
        if (!shared)
            put_matrix(&b, &m->classifier, 0, 0);
        return b;
    }
    {
        unsigned char header[256] = {0};
        uint32_t magic = 0x616b3432;
        int32_t h[9] = {0, version, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                        c->vocab_size, c->seq_len};
        memcpy(header, &magic, 4);
        memcpy(header + 4, h + 1, 8 * 4);
        header[36] = (unsigned char)shared;
        if (version == 2)
            memcpy(header + 37, &group, 4);
        put(&b, header, sizeof header);
    }
    for (int l = 0; l < L; l++)
        put_floats(&b, m->layers[l].attn_norm, (size_t)c->dim);
    for (int l = 0; l < L; l++)
        put_floats(&b, m->layers[l].ffn_norm, (size_t)c->dim);
    put_floats(&b, m->final_norm, (size_t)c->dim);
    put_matrix(&b, &m->tok_embedding, version, group);
    for (int i = 0; i < 7; i++)
        for (int l = 0; l < L; l++)
            put_matrix(&b, MAT(l, i), version, group);
    if (!shared)
        put_matrix(&b, &m->classifier, version, group);
#undef MAT
    return b;
}

static const char *write_temp(const void *bytes, size_t n)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof path, "/tmp/check_model_XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq((int)write(fd, bytes, n), (int)n);
    close(fd);
    return path;
}

/* Load BYTES as a file; returns the load's result, the model in M. */
static int load_bytes(struct model *m, const void *bytes, size_t n, const struct model_load_opts *o,
                      struct err *e)
{
    const char *p = write_temp(bytes, n);
    char path[64];
    int rc;

    snprintf(path, sizeof path, "%s", p);
    rc = model_load(m, path, o, e);
    if (rc < 0) {
        ck_assert_int_eq(e->code, ERR_INPUT);
        ck_assert_msg(strstr(e->msg, path) != NULL, "message does not name the file: %s", e->msg);
    }
    unlink(path);
    return rc;
}

/* ---- comparing weights ------------------------------------------------------------------- */

static void dequant(const struct kn_weights *w, float *out)
{
    size_t n = (size_t)w->n * (size_t)w->k;

    if (w->dtype == KN_F32)
        memcpy(out, w->data, n * sizeof *out);
    else if (w->dtype == KN_BF16)
        kn_bf16_to_f32(out, w->data, n);
    else
        kn_dequantize_q8(out, w->data, w->scales, n, w->group);
}

/* |a - b| per element within TOL * (max|row group| / 127) for Q8, exact for F32. */
static void expect_same_matrix(const struct kn_weights *a, const struct kn_weights *b, double tol)
{
    size_t n = (size_t)a->n * (size_t)a->k;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    double maxabs = 0, maxerr = 0;

    ck_assert_int_eq(a->n, b->n);
    ck_assert_int_eq(a->k, b->k);
    dequant(a, x);
    dequant(b, y);
    for (size_t i = 0; i < n; i++) {
        maxabs = fmax(maxabs, fabs(x[i]));
        maxerr = fmax(maxerr, fabs((double)x[i] - y[i]));
    }
    if (tol == 0)
        ck_assert_msg(maxerr == 0, "weights differ by %g", maxerr);
    else
        ck_assert_msg(maxerr <= tol * maxabs / 127.0, "weights (%d, %d) differ by %g (max %g, tolerance %g)", a->n,
                      a->k, maxerr, maxabs, tol * maxabs / 127.0);
    free(x);
    free(y);
}

static void expect_same_floats(const float *a, const float *b, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(a[i] == b[i], "float %d: %g != %g", i, a[i], b[i]);
}

static void expect_same_model(const struct model *a, const struct model *b, double tol)
{
    ck_assert_int_eq(a->cfg.dim, b->cfg.dim);
    ck_assert_int_eq(a->cfg.hidden_dim, b->cfg.hidden_dim);
    ck_assert_int_eq(a->cfg.n_layers, b->cfg.n_layers);
    ck_assert_int_eq(a->cfg.n_heads, b->cfg.n_heads);
    ck_assert_int_eq(a->cfg.n_kv_heads, b->cfg.n_kv_heads);
    ck_assert_int_eq(a->cfg.head_dim, b->cfg.head_dim);
    ck_assert_int_eq(a->cfg.vocab_size, b->cfg.vocab_size);
    ck_assert_int_eq(a->cfg.seq_len, b->cfg.seq_len);
    ck_assert(a->cfg.rope_theta == b->cfg.rope_theta);
    ck_assert_int_eq(a->cfg.rope_layout, b->cfg.rope_layout);
    expect_same_matrix(&a->tok_embedding, &b->tok_embedding, tol);
    expect_same_matrix(&a->classifier, &b->classifier, tol);
    expect_same_floats(a->final_norm, b->final_norm, a->cfg.dim);
    for (int l = 0; l < a->cfg.n_layers; l++) {
        const struct model_layer *x = &a->layers[l], *y = &b->layers[l];
        expect_same_floats(x->attn_norm, y->attn_norm, a->cfg.dim);
        expect_same_floats(x->ffn_norm, y->ffn_norm, a->cfg.dim);
        expect_same_matrix(&x->wq, &y->wq, tol);
        expect_same_matrix(&x->wk, &y->wk, tol);
        expect_same_matrix(&x->wv, &y->wv, tol);
        expect_same_matrix(&x->wo, &y->wo, tol);
        expect_same_matrix(&x->w1, &y->w1, tol);
        expect_same_matrix(&x->w2, &y->w2, tol);
        expect_same_matrix(&x->w3, &y->w3, tol);
    }
}

/* ---- tests ------------------------------------------------------------------------------ */

START_TEST(test_stories260k)
{
    struct model m;
    struct err e = {0};
    const struct model_config *c = &m.cfg;

    if (!have_shared_model())
        return;
    ck_assert_msg(model_load(&m, shared_model, NULL, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(c->dim, 64);
    ck_assert_int_eq(c->hidden_dim, 172);
    ck_assert_int_eq(c->n_layers, 5);
    ck_assert_int_eq(c->n_heads, 8);
    ck_assert_int_eq(c->n_kv_heads, 4);
    ck_assert_int_eq(c->head_dim, 8);
    ck_assert_int_eq(c->vocab_size, 512);
    ck_assert_int_eq(c->seq_len, 512);
    ck_assert_int_eq(c->shared_classifier, 1);
    ck_assert_int_eq(c->rope_layout, KN_ROPE_INTERLEAVED);
    ck_assert(c->rope_theta == 10000.0f);
    ck_assert_str_eq(m.name, "stories260K.bin");
    ck_assert(m.tokenizer == NULL);
    /* In place: the embedding right after the 28-byte header, wq of layer 0
     * after the embedding and 5 rms_att vectors. */
    ck_assert_ptr_eq(m.tok_embedding.data, (char *)m.map + 28);
    ck_assert_ptr_eq(m.layers[0].attn_norm, (float *)((char *)m.map + 28) + 512 * 64);
    ck_assert_ptr_eq(m.layers[0].wq.data, (float *)((char *)m.map + 28) + 512 * 64 + 5 * 64);
    ck_assert_ptr_eq(m.classifier.data, m.tok_embedding.data);
    ck_assert_int_eq(m.layers[4].w2.n, 64);
    ck_assert_int_eq(m.layers[4].w2.k, 172);
    ck_assert_int_eq(m.layers[4].wk.n, 32);
    /* bytes per token: 5 layers of (wq wo 64x64, wk wv 32x64, w1 w2 w3
     * 172x64) + the classifier 512x64, float32. */
    ck_assert_uint_eq(m.weight_bytes, (size_t)4 * (5 * (2 * 4096 + 2 * 2048 + 3 * 11008) + 512 * 64));
    {
        float row[64];
        model_embed(&m, 3, row);
        expect_same_floats(row, (const float *)m.tok_embedding.data + 3 * 64, 64);
    }
    model_free(&m);
    model_free(&m); /* twice is safe */
}
END_TEST

START_TEST(test_versions_agree)
{
    struct model ref, m;
    struct err e = {0};
    struct buf b;
    const char *src = "synthetic:dim=64,layers=2,heads=4,kv_heads=2,hidden=96,vocab=100,seq=32,seed=3";

    if (have_shared_model())
        src = shared_model;
    ck_assert_msg(model_load(&ref, src, NULL, &e) == 0, "%s", e.msg);
    for (int version = 0; version <= 2; version++) {
        for (int shared = 0; shared <= 1; shared++) {
            int groups[] = {32, 64, 16};
            for (int g = 0; g < (version == 2 ? 3 : 1); g++) {
                b = llama2c_bytes(&ref, version, shared, groups[g]);
                ck_assert_msg(load_bytes(&m, b.p, b.n, NULL, &e) == 0, "v%d shared %d: %s", version, shared,
                              e.msg);
                expect_same_model(&ref, &m, version == 2 ? 0.5001 : 0);
                ck_assert_int_eq(m.cfg.shared_classifier, shared);
                if (version == 2) {
                    /* Q8 in place where the kernels take the group, float otherwise. */
                    int q8 = groups[g] != 16;
                    ck_assert_int_eq(m.layers[0].wq.dtype, q8 ? KN_Q8 : KN_F32);
                    ck_assert_int_eq(m.layers[0].w2.dtype, q8 && ref.cfg.hidden_dim % groups[g] == 0 ? KN_Q8 : KN_F32);
                    ck_assert_int_eq(m.tok_embedding.dtype, q8 ? KN_Q8 : KN_F32);
                    /* Reading an embedding row dequantises it. */
                    int D = m.cfg.dim;
                    float *all = malloc((size_t)m.tok_embedding.n * (size_t)D * sizeof *all);
                    float *row = malloc((size_t)D * sizeof *row);
                    dequant(&m.tok_embedding, all);
                    model_embed(&m, 2, row);
                    expect_same_floats(row, all + 2 * D, D);
                    free(all);
                    free(row);
                }
                model_free(&m);
                free(b.p);
            }
        }
    }
    model_free(&ref);
}
END_TEST


#define TINY "synthetic:dim=16,layers=2,heads=4,kv_heads=2,hidden=24,vocab=40,seq=8,seed=5"

/* Expect loading BYTES to fail with a message containing WANT. */
static void expect_refused(const void *bytes, size_t n, const char *want)
{
    struct model m;
    struct err e = {0};

    ck_assert_msg(load_bytes(&m, bytes, n, NULL, &e) < 0, "accepted; wanted '%s'", want);
    ck_assert_msg(strstr(e.msg, want) != NULL, "message '%s' lacks '%s'", e.msg, want);
    model_free(&m);
}

START_TEST(test_truncated_and_trailing)
{
    struct model ref;
    struct err e = {0};

    ck_assert_msg(model_load(&ref, TINY, NULL, &e) == 0, "%s", e.msg);
    for (int version = 0; version <= 2; version++) {
        struct buf b = llama2c_bytes(&ref, version, version != 1, 16);
        size_t header = version == 0 ? 28 : 256;
        char want[128];
        /* Every cut inside the weights names both sizes. */
        for (size_t cut = header; cut < b.n; cut += 1 + cut % 97) {
            snprintf(want, sizeof want, "truncated: expected %zu bytes of weights, file has %zu", b.n - header,
                     cut - header);
            expect_refused(b.p, cut, want);
        }
        /* Cuts inside the header. */
        for (size_t cut = 1; cut < header; cut += 7)
            expect_refused(b.p, cut, version == 0 && cut < 28 ? "too short" : "");
        /* One byte too many. */
        put(&b, "", 1);
        expect_refused(b.p, b.n, "1 bytes beyond");
        free(b.p);
    }
    expect_refused("", 0, "empty file");
    {
        struct model m;
        ck_assert(model_load(&m, "/nonexistent/model.bin", NULL, &e) < 0);
        ck_assert_int_eq(e.code, ERR_INPUT);
        ck_assert(strstr(e.msg, "/nonexistent/model.bin") != NULL);
        ck_assert(model_load(&m, "/tmp", NULL, &e) < 0);
        ck_assert(strstr(e.msg, "not a regular file") != NULL);
    }
    model_free(&ref);
}
END_TEST

/* Set int32 field I (0..6) of the 7 shape ints of a v0 (or, with OFF 8, v1)
 * header to V and expect WANT. */
static void expect_field_refused(const struct buf *b, size_t off, int i, int32_t v, const char *want)
{
    unsigned char *p = malloc(b->n);

    memcpy(p, b->p, b->n);
    memcpy(p + off + 4 * (size_t)i, &v, 4);
    expect_refused(p, b->n, want);
    free(p);
}

START_TEST(test_bad_headers)
{
    struct model ref;
    struct err e = {0};
    struct buf b0, b1, b2;

    ck_assert_msg(model_load(&ref, TINY, NULL, &e) == 0, "%s", e.msg);
    b0 = llama2c_bytes(&ref, 0, 1, 0);
    b1 = llama2c_bytes(&ref, 1, 1, 0);
    b2 = llama2c_bytes(&ref, 2, 1, 16);
    expect_field_refused(&b0, 0, 0, 0, "dim is 0");
    expect_field_refused(&b0, 0, 0, -16, "dim is -16");
    expect_field_refused(&b0, 0, 0, 1 << 30, "larger than the limit");
    expect_field_refused(&b0, 0, 1, 0, "hidden_dim is 0");
    expect_field_refused(&b0, 0, 2, 0x7fffffff, "n_layers");
    expect_field_refused(&b0, 0, 3, 5, "not a multiple of n_heads");
    expect_field_refused(&b0, 0, 4, 3, "not a multiple of n_kv_heads");
    expect_field_refused(&b0, 0, 3, 16, "head_dim 1");
    expect_field_refused(&b0, 0, 5, INT32_MIN, "vocab_size");
    expect_field_refused(&b0, 0, 6, 0, "seq_len is 0");
    expect_field_refused(&b0, 0, 6, 9, "truncated"); /* freq_cis grows past the file */
    expect_field_refused(&b0, 0, 6, 7, "beyond");
    /* The same fields in the versioned header, 8 bytes in. */
    expect_field_refused(&b1, 8, 0, 0, "dim is 0");
    expect_field_refused(&b1, 8, 5, -40, "vocab_size is -40");
    expect_field_refused(&b1, 8, 2, 3, "truncated");
    /* Unknown versions, a bad flag, a bad group. */
    expect_field_refused(&b1, 4, 0, 3, "version 3");
    expect_field_refused(&b1, 4, 0, 0, "version 0");
    {
        unsigned char *p = malloc(b1.n);
        memcpy(p, b1.p, b1.n);
        p[36] = 7;
        expect_refused(p, b1.n, "shared_classifier is 7");
        free(p);
        p = malloc(b2.n);
        int32_t g = 0;
        memcpy(p, b2.p, b2.n);
        memcpy(p + 37, &g, 4);
        expect_refused(p, b2.n, "group size 0");
        g = 7;
        memcpy(p + 37, &g, 4);
        expect_refused(p, b2.n, "does not divide");
        g = 256; /* does not divide dim * hidden = 384 */
        memcpy(p + 37, &g, 4);
        expect_refused(p, b2.n, "does not divide");
        free(p);
    }
    free(b0.p);
    free(b1.p);
    free(b2.p);
    model_free(&ref);
}
END_TEST

START_TEST(test_fuzz_headers)
{
    struct model ref, m;
    struct err e = {0};
    unsigned seed = 12345;

    ck_assert_msg(model_load(&ref, TINY, NULL, &e) == 0, "%s", e.msg);
    for (int version = 0; version <= 2; version++) {
        struct buf b = llama2c_bytes(&ref, version, 1, 16);
        unsigned char *p = malloc(b.n);
        size_t header = version == 0 ? 28 : 41;
        for (int trial = 0; trial < 300; trial++) {
            memcpy(p, b.p, b.n);
            /* Flip a few header bytes, sometimes to extreme values. */
            for (int k = 0; k < 1 + trial % 4; k++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = (seed >> 8) % header;
                static const unsigned char extremes[] = {0x00, 0xff, 0x7f, 0x80, 0x01};
                p[at] = trial % 3 == 0 ? extremes[(seed >> 4) % 5] : (unsigned char)(seed >> 16);
            }
            if (load_bytes(&m, p, b.n, NULL, &e) == 0) {
                /* Accepted: then the shape fits the file, and reading every row is safe. */
                float *row = malloc((size_t)m.cfg.dim * sizeof *row);
                for (int t = 0; t < m.cfg.vocab_size; t++)
                    model_embed(&m, t, row);
                free(row);
            }
            model_free(&m);
        }
        free(p);
        free(b.p);
    }
    /* Random files of random lengths. */
    for (int trial = 0; trial < 200; trial++) {
        size_t n = (size_t)(trial * 37 % 3000);
        unsigned char *p = malloc(n + 1);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            p[i] = (unsigned char)(seed >> 16);
        }
        if (n >= 4 && trial % 3 == 0)
            memcpy(p, trial % 2 ? "GGUF" : "\x32\x34\x6b\x61", 4);
        if (load_bytes(&m, p, n, NULL, &e) == 0)
            model_free(&m);
        free(p);
    }
    model_free(&ref);
}
END_TEST

START_TEST(test_synthetic)
{
    struct model a, b;
    struct err e = {0};

    ck_assert_msg(model_load(&a, "synthetic:stories260K", NULL, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(a.cfg.dim, 64);
    ck_assert_int_eq(a.cfg.hidden_dim, 172);
    ck_assert_int_eq(a.cfg.n_kv_heads, 4);
    ck_assert_int_eq(a.cfg.vocab_size, 512);
    ck_assert_str_eq(a.name, "synthetic:stories260K");
    ck_assert_int_eq((int)((uintptr_t)a.layers[1].w2.data % 64), 0);
    /* Deterministic: the same spec gives the same weights; the default is stories260K, seed 0. */
    ck_assert_msg(model_load(&b, "synthetic:", NULL, &e) == 0, "%s", e.msg);
    expect_same_model(&a, &b, 0);
    model_free(&b);
    ck_assert_msg(model_load(&b, "synthetic:stories260K,seed=1", NULL, &e) == 0, "%s", e.msg);
    ck_assert(memcmp(a.layers[0].wq.data, b.layers[0].wq.data, 64 * 64 * 4) != 0);
    model_free(&b);
    /* Weights stay in +-1/sqrt(fan_in); norms in 1 +- 0.1. */
    {
        const float *w2 = a.layers[2].w2.data, *wq = a.layers[2].wq.data;
        double m2 = 0, mq = 0;
        for (int i = 0; i < 64 * 172; i++)
            m2 = fmax(m2, fabs(w2[i]));
        for (int i = 0; i < 64 * 64; i++)
            mq = fmax(mq, fabs(wq[i]));
        ck_assert(m2 <= 1 / sqrt(172.0) && m2 > 0.9 / sqrt(172.0));
        ck_assert(mq <= 1 / sqrt(64.0) && mq > 0.9 / sqrt(64.0));
        for (int i = 0; i < 64; i++)
            ck_assert(fabsf(a.layers[3].ffn_norm[i] - 1.0f) <= 0.1f);
    }
    model_free(&a);
    /* Overrides; kv_heads follows heads unless given. */
    ck_assert_msg(model_load(&a, "synthetic:stories15M,layers=1,vocab=100,heads=4", NULL, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(a.cfg.dim, 288);
    ck_assert_int_eq(a.cfg.hidden_dim, 768);
    ck_assert_int_eq(a.cfg.n_layers, 1);
    ck_assert_int_eq(a.cfg.n_heads, 4);
    ck_assert_int_eq(a.cfg.n_kv_heads, 4);
    ck_assert_int_eq(a.cfg.head_dim, 72);
    ck_assert_uint_eq(a.weight_bytes, (size_t)4 * (4 * 288 * 288 + 3 * 288 * 768 + 100 * 288));
    model_free(&a);
    /* The stories110M shape's bytes per token (the benchmark model). */
    ck_assert_msg(model_load(&a, "synthetic:stories110M,layers=1,vocab=32", NULL, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(a.cfg.dim, 768);
    ck_assert_int_eq(a.cfg.hidden_dim, 2048);
    ck_assert_int_eq(a.cfg.n_heads, 12);
    ck_assert_int_eq(a.cfg.seq_len, 1024);
    model_free(&a);
    /* Errors name the spec and the key. */
    {
        static const char *const bad[][2] = {
            {"synthetic:nosuch", "unknown shape 'nosuch'"},
            {"synthetic:dim=64,colour=3", "unknown key 'colour'"},
            {"synthetic:dim=abc", "dim=abc"},
            {"synthetic:dim=-5", "dim=-5"},
            {"synthetic:dim=99999999999", "dim=99999999999"},
            {"synthetic:dim=60", "not a multiple of n_heads"},
            {"synthetic:heads=6,kv_heads=4,dim=48", "not a multiple of n_kv_heads"},
            {"synthetic:dim=0", "dim is 0"},
            {"synthetic:stories260K,layers", "expected key=value"},
            {"synthetic:layers=4000000", "larger than the limit"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            ck_assert_msg(model_load(&a, bad[i][0], NULL, &e) < 0, "%s accepted", bad[i][0]);
            ck_assert_int_eq(e.code, ERR_INPUT);
            ck_assert_msg(strstr(e.msg, bad[i][1]) != NULL, "%s: '%s' lacks '%s'", bad[i][0], e.msg, bad[i][1]);
            model_free(&a);
        }
    }
}
END_TEST

START_TEST(test_quantize)
{
    struct model f, q;
    struct err e = {0};
    struct model_load_opts o = {.quantize_q8 = 1};
    const char *spec = "synthetic:dim=64,layers=2,heads=4,kv_heads=2,hidden=96,vocab=50,seq=16,seed=9";

    ck_assert_msg(model_load(&f, spec, NULL, &e) == 0, "%s", e.msg);
    ck_assert_msg(model_load(&q, spec, &o, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(q.layers[1].w2.dtype, KN_Q8);
    ck_assert_int_eq(q.layers[1].w2.group, 32);
    ck_assert_int_eq(q.tok_embedding.dtype, KN_Q8);
    ck_assert_ptr_eq(q.classifier.data, q.tok_embedding.data);
    ck_assert_int_eq(q.cfg.shared_classifier, 1);
    expect_same_model(&f, &q, 0.5001);
    /* int8 + one float per 32: about 1.125 bytes per weight instead of 4. */
    ck_assert_uint_eq(q.weight_bytes * 32, f.weight_bytes / 4 * 36);
    model_free(&q);
    o.q8_group = 64;
    ck_assert_msg(model_load(&q, spec, &o, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(q.layers[0].wq.group, 64);
    expect_same_model(&f, &q, 0.5001);
    model_free(&q);
    o.q8_group = 48;
    ck_assert(model_load(&q, spec, &o, &e) < 0);
    ck_assert(strstr(e.msg, "group size 48") != NULL);
    model_free(&f);
    /* hidden 172 is no multiple of 32: w2 (k = 172) stays float. */
    o.q8_group = 0;
    ck_assert_msg(model_load(&q, "synthetic:stories260K", &o, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(q.layers[0].w1.dtype, KN_Q8);
    ck_assert_int_eq(q.layers[0].w2.dtype, KN_F32);
    model_free(&q);
    /* A Q8 file quantised again stays as it is. */
    if (have_shared_model()) {
        ck_assert_msg(model_load(&q, shared_model, &o, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(q.layers[0].wq.dtype, KN_Q8);
        ck_assert_ptr_ne(q.layers[0].wq.data, NULL);
        model_free(&q);
    }
}
END_TEST


/* ---- GGUF, written by the official gguf package ------------------------------------------ */

static char gguf_dir[64];
static void gguf_cleanup(void);

/* Run tests/gguf_write.py OUT ARGS into gguf_dir; 0 ok, 77 skip, else fail. */
static int gguf_write(const char *out, const char *args)
{
    const char *py = getenv("PYTHON3"), *src = getenv("top_srcdir");
    char cmd[8192];
    int rc;

    if (py == NULL || *py == '\0') {
        fprintf(stderr, "check_model: SKIP GGUF tests: PYTHON3 is not set (run through make check)\n");
        return 77;
    }
    if (gguf_dir[0] == '\0') {
        snprintf(gguf_dir, sizeof gguf_dir, "/tmp/check_model_gguf_XXXXXX");
        ck_assert_ptr_ne(mkdtemp(gguf_dir), NULL);
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/gguf_write.py' '%s/%s' %s", py, src ? src : "..", gguf_dir, out, args);
    rc = system(cmd);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
        fprintf(stderr, "check_model: SKIP GGUF tests: the gguf Python module is missing (scripts/setup.sh)\n");
        gguf_cleanup();
        return 77;
    }
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s failed", cmd);
    return 0;
}

static void gguf_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", gguf_dir, name);
}

static void gguf_cleanup(void)
{
    char cmd[128];
    if (gguf_dir[0] != '\0') {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", gguf_dir);
        ck_assert_int_eq(system(cmd), 0);
        gguf_dir[0] = '\0';
    }
}

START_TEST(test_gguf_matches_llama2c)
{
    static const struct {
        const char *type;
        double tol; /* in units of max|w| / 127, as expect_same_matrix takes it */
        enum kn_dtype dtype;
    } types[] = {
        {"f32", 0, KN_F32},
        {"f16", 127.0 / 2048, KN_F32},  /* half precision: 2^-11 relative */
        {"bf16", 127.0 / 256, KN_BF16}, /* 2^-8 relative */
        {"q8_0", 0.5001 + 127.0 / 2048, KN_Q8}, /* half a step of max|block| / 127, and the float16 scale */
    };
    struct model ref, m;
    struct err e = {0};
    char args[5000], path[256];

    if (!have_shared_model())
        return;
    ck_assert_msg(model_load(&ref, shared_model, NULL, &e) == 0, "%s", e.msg);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "s-%s.gguf", types[i].type);
        snprintf(args, sizeof args, "--from '%s' --type %s", shared_model, types[i].type);
        if (gguf_write(name, args) == 77)
            break;
        gguf_path(path, sizeof path, name);
        ck_assert_msg(model_load(&m, path, NULL, &e) == 0, "%s: %s", name, e.msg);
        expect_same_model(&ref, &m, types[i].tol);
        ck_assert(m.cfg.norm_eps == 1e-5f);
        ck_assert_int_eq(m.cfg.shared_classifier, 1);
        ck_assert_int_eq(m.layers[2].wv.dtype, types[i].dtype);
        /* ffn_down rows (172) are not whole Q8_0 blocks: kept as F32 by the writer. */
        ck_assert_int_eq(m.layers[2].w2.dtype, types[i].dtype == KN_Q8 ? KN_F32 : types[i].dtype);
        if (i == 0) /* float32 is used in place */
            ck_assert(m.layers[1].wk.data > m.map && (const char *)m.layers[1].wk.data < (char *)m.map + m.map_len);
        ck_assert(m.tokenizer == NULL);
        ck_assert(m.chat_template == NULL);
        ck_assert_uint_eq(m.weight_bytes > 0, 1);
        model_free(&m);
        /* --quantize q8 works on GGUF input as on any other. */
        if (i == 2) {
            struct model_load_opts o = {.quantize_q8 = 1};
            ck_assert_msg(model_load(&m, path, &o, &e) == 0, "%s", e.msg);
            ck_assert_int_eq(m.layers[0].wq.dtype, KN_Q8);
            expect_same_model(&ref, &m, 0.5001 + 127.0 / 256);
            model_free(&m);
        }
    }
    /* A separate classifier. */
    snprintf(args, sizeof args, "--from '%s' --untied", shared_model);
    if (gguf_write("untied.gguf", args) == 0) {
        gguf_path(path, sizeof path, "untied.gguf");
        ck_assert_msg(model_load(&m, path, NULL, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(m.cfg.shared_classifier, 0);
        ck_assert_ptr_ne(m.classifier.data, m.tok_embedding.data);
        expect_same_model(&ref, &m, 0);
        model_free(&m);
    }
    model_free(&ref);
    gguf_cleanup();
}
END_TEST

START_TEST(test_gguf_tokenizer)
{
    const char *shared = getenv("LLMSCALE_SHARED");
    char tok[4096], args[8192], path[256];
    struct model m;
    struct err e = {0};
    struct tokenizer *bin;
    static const char *const texts[] = {
        "I believe the meaning of life is", "Simply put, the theory of relativity states that ",
        "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80", "<s> line\nbreaks\tand  spaces ",
    };

    snprintf(tok, sizeof tok, "%s/models/tokenizer.bin", shared ? shared : "../shared");
    if (access(tok, R_OK) != 0) {
        fprintf(stderr, "check_model: SKIP GGUF tokenizer test: %s not found\n", tok);
        return;
    }
    snprintf(args, sizeof args,
             "--random 16,1,2,1,32,0,64 --type q8_0 --tokenizer '%s' --chat-template "
             "\"{%% for m in messages %%}<|im_start|>{{ m.role }}{%% endfor %%}\"",
             tok);
    if (gguf_write("tok.gguf", args) == 77)
        return;
    gguf_path(path, sizeof path, "tok.gguf");
    ck_assert_msg(model_load(&m, path, NULL, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.cfg.vocab_size, 32000);
    ck_assert_int_eq(m.cfg.n_kv_heads, 1);
    ck_assert_ptr_ne(m.tokenizer, NULL);
    ck_assert_ptr_ne(m.chat_template, NULL);
    ck_assert(strstr(m.chat_template, "<|im_start|>") != NULL);
    ck_assert_int_eq(chat_template_detect(m.chat_template), CHAT_TEMPLATE_CHATML);
    bin = tokenizer_load(tok, 32000, &e);
    ck_assert_msg(bin != NULL, "%s", e.msg);
    ck_assert_int_eq(tokenizer_bos(m.tokenizer), 1);
    ck_assert_int_eq(tokenizer_eos(m.tokenizer), 2);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int *a, *b, na, nb;
        ck_assert_int_eq(tokenizer_encode(m.tokenizer, texts[i], strlen(texts[i]), 1, 0, &a, &na, &e), 0);
        ck_assert_int_eq(tokenizer_encode(bin, texts[i], strlen(texts[i]), 1, 0, &b, &nb, &e), 0);
        ck_assert_int_eq(na, nb);
        for (int k = 0; k < na; k++) {
            size_t la, lb;
            const char *pa = tokenizer_piece(m.tokenizer, k ? a[k - 1] : -1, a[k], &la);
            const char *pb = tokenizer_piece(bin, k ? b[k - 1] : -1, b[k], &lb);
            ck_assert_int_eq(a[k], b[k]);
            ck_assert(la == lb && memcmp(pa, pb, la) == 0);
        }
        free(a);
        free(b);
    }
    tokenizer_free(bin);
    model_free(&m);
    gguf_cleanup();
}
END_TEST

START_TEST(test_gguf_refused)
{
    static const struct {
        const char *args, *want;
    } bad[] = {
        {"--arch gpt2", "architecture 'gpt2' is not supported"},
        {"--drop blk.1.attn_k.weight", "tensor blk.1.attn_k.weight is missing"},
        {"--drop output_norm.weight", "tensor output_norm.weight is missing"},
        {"--reshape blk.0.ffn_up.weight", "tensor blk.0.ffn_up.weight has shape [64, 31], expected [64, 32]"},
        {"--reshape blk.0.ffn_norm.weight", "tensor blk.0.ffn_norm.weight has shape [63], expected [64]"},
        {"--q4 blk.1.attn_q.weight", "tensor blk.1.attn_q.weight has type Q4_0"},
    };
    struct model m;
    struct err e = {0};
    char args[512], path[256];
    const char *spec = "--random 64,2,4,2,32,50,16";

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "%s %s", spec, bad[i].args);
        if (gguf_write("bad.gguf", args) == 77)
            return;
        gguf_path(path, sizeof path, "bad.gguf");
        ck_assert_msg(model_load(&m, path, NULL, &e) < 0, "%s accepted", bad[i].args);
        ck_assert_int_eq(e.code, ERR_INPUT);
        ck_assert_msg(strstr(e.msg, bad[i].want) != NULL && strstr(e.msg, path) != NULL, "%s: '%s' lacks '%s'",
                      bad[i].args, e.msg, bad[i].want);
        model_free(&m);
    }
    /* A good file, then every truncation of it and random corruption of its
     * metadata and tensor infos: refused or loaded, never a crash. */
    snprintf(args, sizeof args, "%s --type q8_0 --chat-template hello --alignment 64", spec);
    ck_assert_int_eq(gguf_write("good.gguf", args), 0);
    gguf_path(path, sizeof path, "good.gguf");
    ck_assert_msg(model_load(&m, path, NULL, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(m.chat_template, "hello");
    model_free(&m);
    {
        FILE *f = fopen(path, "rb");
        unsigned char *bytes, *p;
        long n;
        unsigned seed = 99;
        size_t meta_end;
        ck_assert_ptr_ne(f, NULL);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        bytes = malloc((size_t)n);
        p = malloc((size_t)n);
        ck_assert_int_eq((long)fread(bytes, 1, (size_t)n, f), n);
        fclose(f);
        for (long cut = 0; cut < n; cut += 1 + cut / 16) {
            ck_assert_msg(load_bytes(&m, bytes, (size_t)cut, NULL, &e) < 0, "cut at %ld accepted", cut);
            model_free(&m);
        }
        /* Corrupt bytes before the tensor data (where counts, lengths,
         * types, dims and offsets live). */
        meta_end = (size_t)n;
        for (size_t i = 0; i + 4 < (size_t)n; i++)
            if (memcmp(bytes + i, "blk.1.ffn_up.weight", 19) == 0)
                meta_end = i + 64;
        for (int trial = 0; trial < 400; trial++) {
            memcpy(p, bytes, (size_t)n);
            for (int k = 0; k < 1 + trial % 3; k++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = 4 + (seed >> 8) % (meta_end - 4);
                static const unsigned char extremes[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0x09, 0x08};
                p[at] = trial % 2 ? extremes[(seed >> 3) % 7] : (unsigned char)(seed >> 16);
            }
            if (load_bytes(&m, p, (size_t)n, NULL, &e) == 0) {
                float *row = malloc((size_t)m.cfg.dim * sizeof *row);
                for (int t = 0; t < m.cfg.vocab_size; t++)
                    model_embed(&m, t, row);
                free(row);
            }
            model_free(&m);
        }
        free(bytes);
        free(p);
    }
    gguf_cleanup();
}
END_TEST


/* ---- GGUF files built byte by byte, to break one field at a time ----------------------- */

static void put_u32(struct buf *b, uint32_t v)
{
    put(b, &v, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
    put(b, &v, 8);
}

static void put_gstr(struct buf *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void kv_u32(struct buf *b, const char *key, uint32_t v)
{
    put_gstr(b, key);
    put_u32(b, 4); /* UINT32 */
    put_u32(b, v);
}

/* Byte offsets of the fields the tests patch. */
struct gguf_fields {
    size_t n_tensors, n_kv, arch_len, arr_type, arr_count, ndims, ne0, type, offset, data;
};

enum { G_DUP_KEY = 1, G_NESTED = 2, G_ALIGN3 = 4, G_DUP_TENSOR = 8, G_BAD_KV_TYPE = 16, G_TOKENIZER = 32 };

/* The tokenizer metadata G_TOKENIZER adds, and ways to break it. */
struct gguf_tok {
    const char *model;     /* tokenizer.ggml.model */
    int n_tokens;          /* strings in tokenizer.ggml.tokens */
    uint32_t scores_type;  /* element type of tokenizer.ggml.scores (6: float32) */
    int n_types;           /* entries of tokenizer.ggml.token_type */
    uint32_t bos;
    const char *chat;      /* tokenizer.chat_template, or NULL */
};
static struct gguf_tok gtok;

static void put_tokenizer(struct buf *b)
{
    static const char *const pieces[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81" "a", "b", "c"};
    put_gstr(b, "tokenizer.ggml.model");
    put_u32(b, 8);
    put_gstr(b, gtok.model);
    put_gstr(b, "tokenizer.ggml.tokens");
    put_u32(b, 9);
    put_u32(b, 8);
    put_u64(b, (uint64_t)gtok.n_tokens);
    for (int i = 0; i < gtok.n_tokens; i++)
        put_gstr(b, pieces[i]);
    put_gstr(b, "tokenizer.ggml.scores");
    put_u32(b, 9);
    put_u32(b, gtok.scores_type);
    put_u64(b, (uint64_t)gtok.n_tokens);
    for (int i = 0; i < gtok.n_tokens; i++) {
        float v = -(float)i;
        put(b, &v, 4);
    }
    put_gstr(b, "tokenizer.ggml.token_type");
    put_u32(b, 9);
    put_u32(b, 5);
    put_u64(b, (uint64_t)gtok.n_types);
    for (int i = 0; i < gtok.n_types; i++)
        put_u32(b, i == 0 ? 2 : i < 3 ? 3 : 1);
    kv_u32(b, "tokenizer.ggml.bos_token_id", gtok.bos);
    put_gstr(b, "tokenizer.chat_template");
    put_u32(b, 8);
    put_gstr(b, gtok.chat != NULL ? gtok.chat : "");
}

/* A tiny llama (dim 8, 1 layer, 2 heads, hidden 8, vocab 4, seq 4), all F32. */
static struct buf gguf_bytes(struct gguf_fields *f, int flags)
{
    static const char *const names[] = {"token_embd.weight",      "output_norm.weight",     "blk.0.attn_norm.weight",
                                        "blk.0.attn_q.weight",    "blk.0.attn_k.weight",    "blk.0.attn_v.weight",
                                        "blk.0.attn_output.weight", "blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight",
                                        "blk.0.ffn_down.weight",  "blk.0.ffn_up.weight"};
    static const uint64_t shapes[][2] = {{8, 4}, {8, 0}, {8, 0}, {8, 8}, {8, 8}, {8, 8},
                                         {8, 8}, {8, 0}, {8, 8}, {8, 8}, {8, 8}};
    int nt = 11, nkv = 9 + ((flags & G_DUP_KEY) != 0) + ((flags & G_NESTED) != 0) + ((flags & G_ALIGN3) != 0) +
                      ((flags & G_BAD_KV_TYPE) != 0) + ((flags & G_TOKENIZER) != 0) * 6;
    struct buf b = {0};
    uint64_t off = 0;

    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    f->n_tensors = b.n;
    put_u64(&b, (uint64_t)nt);
    f->n_kv = b.n;
    put_u64(&b, (uint64_t)nkv);
    f->arch_len = b.n;
    put_gstr(&b, "general.architecture");
    put_u32(&b, 8); /* STRING */
    put_gstr(&b, "llama");
    kv_u32(&b, "llama.context_length", 4);
    kv_u32(&b, "llama.embedding_length", 8);
    kv_u32(&b, "llama.block_count", 1);
    kv_u32(&b, "llama.feed_forward_length", 8);
    kv_u32(&b, "llama.attention.head_count", 2);
    kv_u32(&b, "llama.attention.head_count_kv", 2);
    put_gstr(&b, "general.tags"); /* an array of int32 */
    put_u32(&b, 9);
    f->arr_type = b.n;
    put_u32(&b, 5);
    f->arr_count = b.n;
    put_u64(&b, 2);
    put_u32(&b, 7);
    put_u32(&b, 8);
    put_gstr(&b, "general.names"); /* an array of strings */
    put_u32(&b, 9);
    put_u32(&b, 8);
    put_u64(&b, 2);
    put_gstr(&b, "a");
    put_gstr(&b, "bc");
    if (flags & G_DUP_KEY)
        kv_u32(&b, "llama.block_count", 1);
    if (flags & G_NESTED) {
        put_gstr(&b, "general.nested");
        put_u32(&b, 9);
        put_u32(&b, 9);
        put_u64(&b, 0);
    }
    if (flags & G_ALIGN3)
        kv_u32(&b, "general.alignment", 3);
    if (flags & G_BAD_KV_TYPE) {
        put_gstr(&b, "general.odd");
        put_u32(&b, 13);
        put_u32(&b, 0);
    }
    if (flags & G_TOKENIZER)
        put_tokenizer(&b);
    for (int i = 0; i < nt; i++) {
        const char *name = (flags & G_DUP_TENSOR) && i == 5 ? names[4] : names[i];
        uint64_t bytes = shapes[i][0] * (shapes[i][1] ? shapes[i][1] : 1) * 4;
        put_gstr(&b, name);
        if (i == 0)
            f->ndims = b.n;
        put_u32(&b, shapes[i][1] ? 2 : 1);
        if (i == 0)
            f->ne0 = b.n;
        put_u64(&b, shapes[i][0]);
        if (shapes[i][1])
            put_u64(&b, shapes[i][1]);
        if (i == 0)
            f->type = b.n;
        put_u32(&b, 0); /* F32 */
        if (i == 0)
            f->offset = b.n;
        put_u64(&b, off);
        off += (bytes + 31) / 32 * 32;
    }
    while (b.n % 32 != 0)
        put(&b, "", 1);
    f->data = b.n;
    for (uint64_t i = 0; i < off / 4; i++) {
        float v = 1.0f + (float)(i % 7) / 8;
        put(&b, &v, 4);
    }
    return b;
}

static void patch_u64(struct buf *b, size_t at, uint64_t v)
{
    memcpy(b->p + at, &v, 8);
}

static void patch_u32(struct buf *b, size_t at, uint32_t v)
{
    memcpy(b->p + at, &v, 4);
}

START_TEST(test_gguf_hostile_fields)
{
    struct gguf_fields f;
    struct model m;
    struct err e = {0};
    struct buf b = gguf_bytes(&f, 0);

    /* The unbroken file loads. */
    ck_assert_msg(load_bytes(&m, b.p, b.n, NULL, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.cfg.dim, 8);
    ck_assert_int_eq(m.cfg.vocab_size, 4);
    ck_assert_int_eq(m.cfg.shared_classifier, 1);
    ck_assert_ptr_eq(m.tok_embedding.data, (char *)m.map + f.data);
    model_free(&m);
    free(b.p);

#define BREAK(what, want)                                                                                      \
    do {                                                                                                       \
        b = gguf_bytes(&f, 0);                                                                                 \
        what;                                                                                                  \
        expect_refused(b.p, b.n, want);                                                                        \
        free(b.p);                                                                                             \
    } while (0)
    BREAK(patch_u32(&b, 4, 1), "GGUF version 1");
    BREAK(patch_u32(&b, 4, 4), "GGUF version 4");
    BREAK(patch_u64(&b, f.n_tensors, UINT64_MAX), "tensors cannot fit");
    BREAK(patch_u64(&b, f.n_tensors, 1ull << 40), "tensors cannot fit");
    BREAK(patch_u64(&b, f.n_kv, UINT64_MAX), "metadata entries cannot fit");
    BREAK(patch_u64(&b, f.n_kv, 3), "tensor"); /* the rest of the metadata is read as tensor infos */
    BREAK(patch_u64(&b, f.arch_len, UINT64_MAX), "truncated");
    BREAK(patch_u64(&b, f.arch_len, (uint64_t)b.n), "truncated");
    BREAK(patch_u64(&b, f.arr_count, 1ull << 62), "elements of 4 bytes");
    BREAK(patch_u32(&b, f.arr_type, 99), "unknown array element type 99");
    BREAK(patch_u32(&b, f.ndims, 0), "0 dimensions");
    BREAK(patch_u32(&b, f.ndims, 5), "5 dimensions");
    BREAK(patch_u32(&b, f.ndims, 0xffffffffu), "dimensions");
    BREAK(patch_u64(&b, f.ne0, 0), "dimension 0 is 0");
    BREAK(patch_u64(&b, f.ne0, UINT64_MAX), "absurd");
    BREAK(patch_u64(&b, f.ne0, 1ull << 39), "dimension 1");     /* the product overflows the limit */
    BREAK(patch_u64(&b, f.ne0, 1ull << 20), "ends past the file");
    BREAK(patch_u64(&b, f.ne0, 16), "shape [16, 4], expected [8, 4]");
    BREAK(patch_u32(&b, f.type, 2), "type Q4_0");
    BREAK(patch_u32(&b, f.type, 8), "Q8_0 rows of 8 values are not whole blocks");
    BREAK(patch_u32(&b, f.type, 0x7fffffff), "type unsupported");
    BREAK(patch_u64(&b, f.offset, 4), "not a multiple of the alignment 32");
    BREAK(patch_u64(&b, f.offset, UINT64_MAX - 31), "ends past the file");
    BREAK(patch_u64(&b, f.offset, (uint64_t)b.n), "ends past the file");
#undef BREAK
    {
        static const struct {
            int flags;
            const char *want;
        } cases[] = {
            {G_DUP_KEY, "metadata key 'llama.block_count' appears twice"},
            {G_NESTED, "arrays of arrays are not supported"},
            {G_ALIGN3, "general.alignment must be a uint32 power of two"},
            {G_DUP_TENSOR, "tensor 'blk.0.attn_k.weight' appears twice"},
            {G_BAD_KV_TYPE, "unknown value type 13"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            b = gguf_bytes(&f, cases[i].flags);
            expect_refused(b.p, b.n, cases[i].want);
            free(b.p);
        }
    }
    /* Metadata values of the wrong type or range. */
    {
        b = gguf_bytes(&f, 0);
        /* "llama.context_length" is the second key: its value follows arch. */
        size_t ctx_val = f.arch_len + 8 + strlen("general.architecture") + 4 + 8 + 5 + 8 +
                         strlen("llama.context_length") + 4;
        patch_u32(&b, ctx_val, 0);
        expect_refused(b.p, b.n, "metadata llama.context_length is 0: not in 1..");
        patch_u32(&b, ctx_val - 4, 6); /* FLOAT32 */
        expect_refused(b.p, b.n, "metadata llama.context_length is a float32, not an integer");
        free(b.p);
    }
    /* The tokenizer in the metadata: good, then broken one way at a time. */
    {
        static const struct gguf_tok good = {"llama", 4, 6, 4, 1, "<|im_start|>"};
        gtok = good;
        b = gguf_bytes(&f, G_TOKENIZER);
        ck_assert_msg(load_bytes(&m, b.p, b.n, NULL, &e) == 0, "%s", e.msg);
        ck_assert_ptr_ne(m.tokenizer, NULL);
        ck_assert_int_eq(tokenizer_vocab_size(m.tokenizer), 4);
        ck_assert_int_eq(tokenizer_find(m.tokenizer, " a"), 3);
        ck_assert_str_eq(m.chat_template, "<|im_start|>");
        model_free(&m);
        free(b.p);
        /* A byte-level BPE needs its merges. */
        gtok.model = "gpt2";
        b = gguf_bytes(&f, G_TOKENIZER);
        expect_refused(b.p, b.n, "tokenizer.ggml.merges (a byte-level BPE needs it) is missing");
        free(b.p);
        /* Another tokenizer model: loads, without a tokenizer. */
        gtok.model = "t5";
        b = gguf_bytes(&f, G_TOKENIZER);
        ck_assert_msg(load_bytes(&m, b.p, b.n, NULL, &e) == 0, "%s", e.msg);
        ck_assert_ptr_eq(m.tokenizer, NULL);
        model_free(&m);
        free(b.p);
        static const struct {
            struct gguf_tok tok;
            const char *want;
        } bad[] = {
            {{"llama", 6, 6, 6, 1, NULL}, "tokenizer.ggml.tokens has 6 tokens; the embedding has 4 rows"},
            {{"llama", 4, 5, 4, 1, NULL}, "tokenizer.ggml.scores is not an array of 4 floats"},
            {{"llama", 4, 6, 3, 1, NULL}, "tokenizer.ggml.token_type is not an array of 4 int32"},
            {{"llama", 4, 6, 4, 9, NULL}, "tokenizer.ggml.bos_token_id is 9: not in 0..3"},
            {{"llama", 0, 6, 0, 1, NULL}, "tokenizer.ggml.tokens has 0 tokens"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            gtok = bad[i].tok;
            b = gguf_bytes(&f, G_TOKENIZER);
            expect_refused(b.p, b.n, bad[i].want);
            free(b.p);
        }
        /* A chat template with a NUL byte in it. */
        gtok = good;
        gtok.chat = "x";
        b = gguf_bytes(&f, G_TOKENIZER);
        for (size_t i = 0; i + 9 < b.n; i++) /* the string "x": length 1, then the byte */
            if (memcmp(b.p + i, "\x01\0\0\0\0\0\0\0x", 9) == 0) {
                b.p[i + 8] = '\0';
                break;
            }
        expect_refused(b.p, b.n, "tokenizer.chat_template has a NUL byte");
        free(b.p);
    }
}
END_TEST


/* A byte-level BPE (GPT-2 style, as SmolLM's) in a GGUF file: the ids Hugging
 * Face's tokenizers library gives for a set of texts (tests/bpe_reference.py
 * trains the vocabulary and writes both). */
START_TEST(test_gguf_bpe_tokenizer)
{
    static const char *const pres[] = {"smollm", "gpt2"};
    const char *src = getenv("top_srcdir");
    struct err e = {0};

    for (size_t p = 0; p < 2; p++) {
        char path[256], txt[256], line[8192];
        struct model m;
        FILE *f;
        int lines = 0;

        /* The vocabulary and the reference ids come from tests/bpe_reference.py. */
        {
            const char *py = getenv("PYTHON3");
            char cmd[4096];
            int rc;
            if (py == NULL || *py == '\0') {
                fprintf(stderr, "check_model: SKIP BPE test: PYTHON3 is not set\n");
                return;
            }
            if (gguf_dir[0] == '\0') {
                snprintf(gguf_dir, sizeof gguf_dir, "/tmp/check_model_gguf_XXXXXX");
                ck_assert_ptr_ne(mkdtemp(gguf_dir), NULL);
            }
            gguf_path(path, sizeof path, "bpe.gguf");
            gguf_path(txt, sizeof txt, "bpe.txt");
            snprintf(cmd, sizeof cmd, "'%s' '%s/tests/bpe_reference.py' '%s' '%s' --pre %s --corpus '%s/README.md' "
                                      "'%s/docs/ARCHITECTURE.md'",
                     py, src ? src : "..", path, txt, pres[p], src ? src : "..", src ? src : "..");
            rc = system(cmd);
            if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
                fprintf(stderr, "check_model: SKIP BPE test: the tokenizers or gguf module is missing\n");
                gguf_cleanup();
                return;
            }
            ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s failed", cmd);
        }
        ck_assert_msg(model_load(&m, path, NULL, &e) == 0, "%s", e.msg);
        ck_assert_ptr_ne(m.tokenizer, NULL);
        ck_assert_int_eq(tokenizer_adds_bos(m.tokenizer), 0);
        ck_assert_int_ge(tokenizer_find(m.tokenizer, "<|im_start|>"), 0);
        f = fopen(txt, "r");
        ck_assert_ptr_ne(f, NULL);
        while (fgets(line, sizeof line, f) != NULL) {
            char *tab = strchr(line, '\t');
            json_t *js;
            json_error_t jerr;
            const char *text;
            size_t text_len;
            int want[1024], nw = 0, *ids, n;
            char *q;
            ck_assert_ptr_ne(tab, NULL);
            *tab = '\0';
            for (q = line; *q != '\0';) {
                long v = strtol(q, &q, 10);
                want[nw++] = (int)v;
                while (*q == ' ')
                    q++;
            }
            js = json_loads(tab + 1, JSON_DECODE_ANY, &jerr);
            ck_assert_ptr_ne(js, NULL);
            text = json_string_value(js);
            text_len = json_string_length(js);
            ck_assert_int_eq(tokenizer_encode(m.tokenizer, text, text_len, 1, 0, &ids, &n, &e), 0);
            if (n != nw || memcmp(ids, want, (size_t)n * sizeof *ids) != 0) {
                fprintf(stderr, "%s: '%s':\n want", pres[p], text);
                for (int i = 0; i < nw; i++)
                    fprintf(stderr, " %d", want[i]);
                fprintf(stderr, "\n got ");
                for (int i = 0; i < n; i++)
                    fprintf(stderr, " %d", ids[i]);
                fprintf(stderr, "\n");
                ck_abort_msg("%s: ids differ from Hugging Face's for %s", pres[p], tab + 1);
            }
            /* Decoding gives the text back. */
            {
                struct detok d;
                char out[4096], piece[512];
                size_t len = 0;
                detok_init(&d, m.tokenizer);
                for (int i = 0; i < n; i++) {
                    size_t k = detok_push(&d, ids[i], piece, sizeof piece);
                    memcpy(out + len, piece, k);
                    len += k;
                }
                len += detok_flush(&d, out + len, sizeof out - len);
                ck_assert_uint_eq(len, text_len);
                ck_assert(memcmp(out, text, len) == 0);
            }
            free(ids);
            json_decref(js);
            lines++;
        }
        fclose(f);
        ck_assert_int_ge(lines, 15);
        /* ChatML with the vocabulary's special tokens and no BOS. */
        {
            struct chat_message msg[] = {{"user", "hi"}};
            int *ids, n;
            ck_assert_int_eq(chat_encode(m.tokenizer, CHAT_TEMPLATE_CHATML, msg, 1, &ids, &n, &e), 0);
            ck_assert_int_eq(ids[0], tokenizer_find(m.tokenizer, "<|im_start|>"));
            free(ids);
        }
        model_free(&m);
        /* Corrupted metadata (tokens, merges, types): refused or loaded, never a crash. */
        if (p == 0) {
            FILE *g = fopen(path, "rb");
            unsigned char *bytes, *c;
            long nb;
            unsigned seed = 4242;
            ck_assert_ptr_ne(g, NULL);
            fseek(g, 0, SEEK_END);
            nb = ftell(g);
            fseek(g, 0, SEEK_SET);
            bytes = malloc((size_t)nb);
            c = malloc((size_t)nb);
            ck_assert_int_eq((long)fread(bytes, 1, (size_t)nb, g), nb);
            fclose(g);
            for (int trial = 0; trial < 150; trial++) {
                memcpy(c, bytes, (size_t)nb);
                for (int k = 0; k < 1 + trial % 4; k++) {
                    seed = seed * 1103515245u + 12345u;
                    c[24 + (seed >> 8) % (unsigned)(nb / 2)] = (unsigned char)(seed >> 20);
                }
                if (load_bytes(&m, c, (size_t)nb, NULL, &e) == 0 && m.tokenizer != NULL) {
                    const char *text = "Hello 123 wor\xC3\xA9ld\n";
                    int *ids, n;
                    ck_assert_int_eq(tokenizer_encode(m.tokenizer, text, strlen(text), 1, 1, &ids, &n, &e), 0);
                    free(ids);
                }
                model_free(&m);
            }
            free(bytes);
            free(c);
        }
        gguf_cleanup();
    }
}
END_TEST

static Suite *suite_model(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("llama2c");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_stories260k);
    tcase_add_test(tc, test_versions_agree);
    tcase_add_test(tc, test_truncated_and_trailing);
    tcase_add_test(tc, test_bad_headers);
    tcase_add_test(tc, test_fuzz_headers);
    tcase_add_test(tc, test_synthetic);
    tcase_add_test(tc, test_quantize);
    suite_add_tcase(s, tc);
    tc = tcase_create("gguf");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gguf_matches_llama2c);
    tcase_add_test(tc, test_gguf_tokenizer);
    tcase_add_test(tc, test_gguf_refused);
    tcase_add_test(tc, test_gguf_hostile_fields);
    tcase_add_test(tc, test_gguf_bpe_tokenizer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_model());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
