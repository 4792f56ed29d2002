/* model_llama2c.c -- llama2.c checkpoints (karpathy/llama2.c export.py).
 *
 * Version 0 (legacy): 7 int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len; vocab_size < 0: a separate classifier),
 * then float32: token_embedding (vocab, dim), rms_att (L, dim), wq (L, dim,
 * dim), wk (L, kv_dim, dim), wv (L, kv_dim, dim), wo (L, dim, dim), rms_ffn
 * (L, dim), w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim),
 * rms_final (dim), freq_cis_real and freq_cis_imag (seq_len * head_dim / 2
 * each, unused: RoPE is computed), then wcls (vocab, dim) when separate.
 *
 * Versions 1 and 2: a 256-byte header: uint32 magic "ak42", int32 version,
 * the 7 int32 (vocab_size positive), uint8 shared_classifier at byte 36, and
 * for version 2 an int32 group size at byte 37 (unaligned); zero padding.
 *   v1, float32: rms_att (L, dim), rms_ffn (L, dim), rms_final (dim),
 *      token_embedding, wq, wk, wv, wo, w1, w2, w3 (each for all layers),
 *      then wcls when not shared.
 *   v2, Q8_0: the same three norms in float32, then for token_embedding,
 *      wq.., w3 (each per layer) and wcls when not shared: the tensor's int8
 *      values followed by its float32 scales, one per GROUP values of the
 *      flattened tensor.
 * Float tensors are used in place in the mapping.  Q8 tensors are used in
 * place when the kernels take their group (32 or 64, dividing the row
 * length); otherwise they are dequantised to float32 at load. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "server/model_int.h"

#define V0_HEADER_BYTES 28
#define V12_HEADER_BYTES 256

/* The tensors of the file, in the layout of one version, walked twice:
 * once to count bytes (base NULL), once to point into the file. */
struct cursor {
    const uint8_t *base;
    uint64_t off;
};

static const uint8_t *cursor_take(struct cursor *c, uint64_t bytes)
{
    const uint8_t *p = c->base == NULL ? NULL : c->base + c->off;
    c->off += bytes;
    return p;
}

static int read_i32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

struct l2c {
    struct model *m;
    const char *path;
    int version;
    int group;   /* v2 */
    int shared;
};

/* Float32 matrix (n, k) in place. */
static void f32_matrix(struct kn_weights *w, const uint8_t *p, int n, int k)
{
    w->dtype = KN_F32;
    w->n = n;
    w->k = k;
    w->group = 0;
    w->data = p;
    w->scales = NULL;
}

/* v2: a Q8 tensor (n, k) at P: n*k int8 then n*k/group float32 scales. */
static int q8_matrix(struct l2c *f, struct kn_weights *w, const uint8_t *p, int n, int k, struct err *e)
{
    size_t numel = (size_t)n * (size_t)k, ngroups = numel / (size_t)f->group;
    const float *scales = model_floats(f->m, p + numel, ngroups);

    if (scales == NULL)
        return err_set(e, ERR_SYSTEM, "%s: out of memory", f->path);
    w->n = n;
    w->k = k;
    if ((f->group == 32 || f->group == 64) && k % f->group == 0) {
        w->dtype = KN_Q8;
        w->group = f->group;
        w->data = p;
        w->scales = scales;
        return 0;
    }
    /* A group the kernels lack: float32 it is. */
    float *x = model_alloc(f->m, numel * sizeof(float));
    if (x == NULL)
        return err_set(e, ERR_SYSTEM, "%s: out of memory", f->path);
    kn_dequantize_q8(x, (const int8_t *)p, scales, numel, f->group);
    model_release(f->m, scales);
    w->dtype = KN_F32;
    w->group = 0;
    w->data = x;
    w->scales = NULL;
    return 0;
}

/* Bytes one (n, k) matrix takes in this version. */
static uint64_t matrix_bytes(const struct l2c *f, int n, int k)
{
    uint64_t numel = (uint64_t)n * (uint64_t)k;
    return f->version == 2 ? numel + numel / (uint64_t)f->group * 4 : numel * 4;
}

/* Walk the layout of F's version from C.  With c->base NULL only counts;
 * otherwise fills the model's tensors (which must be allocated). */
static int walk(struct l2c *f, struct cursor *c, struct err *e)
{
    struct model *m = f->m;
    const struct model_config *cf = &m->cfg;
    int L = cf->n_layers, D = cf->dim, H = cf->hidden_dim, V = cf->vocab_size;
    int KV = cf->n_kv_heads * cf->head_dim;
    int counting = c->base == NULL;
    const uint8_t *p;
    /* The matrices per layer in file order, with their shapes. */
    struct {
        size_t field;
        int n, k;
    } mats[] = {
        {offsetof(struct model_layer, wq), D, D}, {offsetof(struct model_layer, wk), KV, D},
        {offsetof(struct model_layer, wv), KV, D}, {offsetof(struct model_layer, wo), D, D},
        {offsetof(struct model_layer, w1), H, D}, {offsetof(struct model_layer, w2), D, H},
        {offsetof(struct model_layer, w3), H, D},
    };
    size_t nmats = sizeof mats / sizeof mats[0];

#define MAT(l, i) ((struct kn_weights *)((char *)&m->layers[l] + mats[i].field))
#define TAKE_MATRIX(w, n, k)                                                                                   \
    do {                                                                                                       \
        p = cursor_take(c, matrix_bytes(f, n, k));                                                             \
        if (!counting) {                                                                                       \
            if (f->version == 2) {                                                                             \
                if (q8_matrix(f, (w), p, n, k, e) < 0)                                                         \
                    return -1;                                                                                 \
            } else {                                                                                           \
                f32_matrix((w), p, n, k);                                                                      \
            }                                                                                                  \
        }                                                                                                      \
    } while (0)
#define TAKE_NORM(dst)                                                                                         \
    do {                                                                                                       \
        p = cursor_take(c, (uint64_t)D * 4);                                                                   \
        if (!counting && ((dst) = model_floats(m, p, (size_t)D)) == NULL)                                      \
            return err_set(e, ERR_SYSTEM, "%s: out of memory", f->path);                                       \
    } while (0)

    if (f->version == 0) {
        TAKE_MATRIX(&m->tok_embedding, V, D);
        for (int l = 0; l < L; l++)
            TAKE_NORM(m->layers[l].attn_norm);
        for (size_t i = 0; i < 4; i++)
            for (int l = 0; l < L; l++)
                TAKE_MATRIX(MAT(l, i), mats[i].n, mats[i].k);
        for (int l = 0; l < L; l++)
            TAKE_NORM(m->layers[l].ffn_norm);
        for (size_t i = 4; i < nmats; i++)
            for (int l = 0; l < L; l++)
                TAKE_MATRIX(MAT(l, i), mats[i].n, mats[i].k);
        TAKE_NORM(m->final_norm);
        cursor_take(c, (uint64_t)cf->seq_len * (uint64_t)cf->head_dim * 4); /* freq_cis real + imag */
    } else {
        for (int l = 0; l < L; l++)
            TAKE_NORM(m->layers[l].attn_norm);
        for (int l = 0; l < L; l++)
            TAKE_NORM(m->layers[l].ffn_norm);
        TAKE_NORM(m->final_norm);
        TAKE_MATRIX(&m->tok_embedding, V, D);
        for (size_t i = 0; i < nmats; i++)
            for (int l = 0; l < L; l++)
                TAKE_MATRIX(MAT(l, i), mats[i].n, mats[i].k);
    }
    if (f->shared) {
        if (!counting)
            m->classifier = m->tok_embedding;
    } else {
        TAKE_MATRIX(&m->classifier, V, D);
    }
#undef MAT
#undef TAKE_MATRIX
#undef TAKE_NORM
    return 0;
}

int model_load_llama2c(struct model *m, const char *path, const uint8_t *data, size_t len, struct err *e)
{
    struct l2c f = {.m = m, .path = path};
    struct model_config *cf = &m->cfg;
    size_t header;
    uint32_t magic = 0;
    const uint8_t *h;
    struct cursor count = {NULL, 0}, fill;

    if (len >= 4)
        memcpy(&magic, data, 4);
    if (magic == MODEL_LLAMA2C_MAGIC) {
        if (len < V12_HEADER_BYTES)
            return err_at(e, path, 0, "truncated: a llama2.c header is %d bytes, the file has %zu",
                          V12_HEADER_BYTES, len);
        f.version = read_i32(data + 4);
        if (f.version != 1 && f.version != 2)
            return err_at(e, path, 0, "llama2.c checkpoint version %d: only versions 0, 1 and 2 are known",
                          f.version);
        header = V12_HEADER_BYTES;
        h = data + 8;
    } else {
        if (len < V0_HEADER_BYTES)
            return err_at(e, path, 0, "not a model: %zu bytes, too short for a GGUF or llama2.c header", len);
        f.version = 0;
        header = V0_HEADER_BYTES;
        h = data;
    }
    cf->dim = read_i32(h);
    cf->hidden_dim = read_i32(h + 4);
    cf->n_layers = read_i32(h + 8);
    cf->n_heads = read_i32(h + 12);
    cf->n_kv_heads = read_i32(h + 16);
    cf->vocab_size = read_i32(h + 20);
    cf->seq_len = read_i32(h + 24);
    cf->rope_theta = 10000.0f;
    cf->rope_layout = KN_ROPE_INTERLEAVED;
    cf->norm_eps = 1e-5f;
    if (f.version == 0) {
        /* The legacy format says "separate classifier" with a negative vocab_size. */
        f.shared = cf->vocab_size > 0;
        if (cf->vocab_size < 0 && cf->vocab_size != INT32_MIN)
            cf->vocab_size = -cf->vocab_size;
    } else {
        uint8_t flag = data[36];
        if (flag > 1)
            return err_at(e, path, 0, "llama2.c header: shared_classifier is %u, not 0 or 1", flag);
        f.shared = flag;
    }
    if (model_check_config(cf, path, e) < 0)
        return f.version == 0 ? err_prefix(e, "(read as a llama2.c version 0 checkpoint, no GGUF or ak42 magic)")
                              : -1;
    if (f.version == 2) {
        f.group = read_i32(data + 37);
        if (f.group <= 0 || f.group > 4096)
            return err_at(e, path, 0, "llama2.c v2 header: group size %d is not in 1..4096", f.group);
        /* Every tensor is quantised as a flat array in groups. */
        if ((int64_t)cf->dim * cf->dim % f.group != 0 || (int64_t)cf->dim * cf->hidden_dim % f.group != 0 ||
            (int64_t)cf->dim * cf->n_kv_heads * cf->head_dim % f.group != 0 ||
            (int64_t)cf->dim * cf->vocab_size % f.group != 0)
            return err_at(e, path, 0, "llama2.c v2: group size %d does not divide every tensor", f.group);
    }

    /* Count first, so a short file is refused before anything points into it. */
    walk(&f, &count, e);
    if (count.off > len - header)
        return err_at(e, path, 0, "truncated: expected %llu bytes of weights, file has %zu",
                      (unsigned long long)count.off, len - header);
    if (count.off < len - header)
        return err_at(e, path, 0,
                      "%zu bytes beyond the %llu bytes of weights the header describes (llama2.c version %d, "
                      "dim %d, %d layers, vocab %d, %s classifier): a different shape or format",
                      len - header - (size_t)count.off, (unsigned long long)count.off, f.version, cf->dim,
                      cf->n_layers, cf->vocab_size, f.shared ? "shared" : "separate");

    m->layers = calloc((size_t)cf->n_layers, sizeof *m->layers);
    if (m->layers == NULL)
        return err_set(e, ERR_SYSTEM, "%s: out of memory", path);
    fill.base = data + header;
    fill.off = 0;
    return walk(&f, &fill, e);
}
