/* model_synthetic.c -- "synthetic:..." models: deterministic random weights
 * of any Llama shape, for benchmarks and tests (no file needed).
 *
 * SPEC is an optional shape name, then key=value overrides, comma-separated:
 *   synthetic:stories110M
 *   synthetic:stories15M,seed=7
 *   synthetic:dim=128,layers=2,heads=4,kv_heads=2,hidden=256,vocab=1000,seq=64
 * Names: stories260K (the default), stories15M, stories110M.  Keys: dim,
 * layers, heads, kv_heads (default: heads, when heads is given), hidden,
 * vocab, seq, seed (default 0).
 *
 * Weights: every matrix (n, k) uniform in +-1/sqrt(k), the embedding (and
 * tied classifier) uniform in +-1/sqrt(dim), RMSNorm weights 1 +- 0.1; each
 * tensor from its own RNG stream of the seed, so a shape change in one
 * tensor does not shift another.  float32, 64-byte aligned. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "server/model_int.h"

struct synthetic_shape {
    const char *name;
    int dim, hidden, layers, heads, kv_heads, vocab, seq;
};

static const struct synthetic_shape synthetic_shapes[] = {
    {"stories260K", 64, 172, 5, 8, 4, 512, 512},
    {"stories15M", 288, 768, 6, 6, 6, 32000, 256},
    {"stories42M", 512, 1376, 8, 8, 8, 32000, 1024},
    {"stories110M", 768, 2048, 12, 12, 12, 32000, 1024},
};

/* Fill X (n) uniform in +-scale from stream STREAM of SEED. */
static void fill_uniform(float *x, size_t n, float scale, uint64_t seed, uint64_t stream)
{
    struct rng r;
    const float unit = scale / 2147483648.0f; /* int32 -> [-scale, scale) */

    rng_init(&r, seed, RNG_STREAM_USER + stream);
    for (size_t i = 0; i < n; i += 2) {
        uint64_t u = rng_u64(&r);
        x[i] = (float)(int32_t)(uint32_t)(u >> 32) * unit;
        if (i + 1 < n)
            x[i + 1] = (float)(int32_t)(uint32_t)u * unit;
    }
}

static int parse_value(const char *spec, const char *key, const char *val, long long max, long long *out,
                       struct err *e)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(val, &end, 10);
    if (errno != 0 || end == val || *end != '\0' || v < 0 || v > max)
        return err_set(e, ERR_INPUT, "synthetic:%s: %s=%s: expected an integer in 0..%lld", spec, key, val, max);
    *out = v;
    return 0;
}

int model_load_synthetic(struct model *m, const char *spec, struct err *e)
{
    struct model_config *c = &m->cfg;
    const struct synthetic_shape *base = &synthetic_shapes[0];
    uint64_t seed = 0, stream = 0;
    int kv_given = 0, heads_given = 0;
    char *copy, *tok, *save = NULL;
    size_t n_shapes = sizeof synthetic_shapes / sizeof synthetic_shapes[0];

    c->rope_theta = 10000.0f;
    c->rope_layout = KN_ROPE_INTERLEAVED;
    c->norm_eps = 1e-5f;
    copy = strdup(spec);
    if (copy == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    /* A leading name picks the base shape. */
    tok = strtok_r(copy, ",", &save);
    if (tok != NULL && strchr(tok, '=') == NULL) {
        size_t i;
        for (i = 0; i < n_shapes; i++)
            if (strcmp(tok, synthetic_shapes[i].name) == 0)
                break;
        if (i == n_shapes) {
            err_set(e, ERR_INPUT,
                    "synthetic:%s: unknown shape '%s' (known: stories260K, stories15M, stories42M, stories110M, "
                    "or dim=,layers=,heads=,kv_heads=,hidden=,vocab=,seq=,seed=)",
                    spec, tok);
            goto fail;
        }
        base = &synthetic_shapes[i];
        tok = strtok_r(NULL, ",", &save);
    }
    c->dim = base->dim;
    c->hidden_dim = base->hidden;
    c->n_layers = base->layers;
    c->n_heads = base->heads;
    c->n_kv_heads = base->kv_heads;
    c->vocab_size = base->vocab;
    c->seq_len = base->seq;
    for (; tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        long long v;
        int *dst = NULL;

        if (eq == NULL) {
            err_set(e, ERR_INPUT, "synthetic:%s: '%s': expected key=value (a shape name comes first)", spec, tok);
            goto fail;
        }
        *eq = '\0';
        if (strcmp(tok, "seed") == 0) {
            if (parse_value(spec, tok, eq + 1, INT64_MAX, &v, e) < 0)
                goto fail;
            seed = (uint64_t)v;
            continue;
        }
        if (strcmp(tok, "dim") == 0)
            dst = &c->dim;
        else if (strcmp(tok, "layers") == 0)
            dst = &c->n_layers;
        else if (strcmp(tok, "heads") == 0)
            dst = &c->n_heads, heads_given = 1;
        else if (strcmp(tok, "kv_heads") == 0)
            dst = &c->n_kv_heads, kv_given = 1;
        else if (strcmp(tok, "hidden") == 0)
            dst = &c->hidden_dim;
        else if (strcmp(tok, "vocab") == 0)
            dst = &c->vocab_size;
        else if (strcmp(tok, "seq") == 0)
            dst = &c->seq_len;
        if (dst == NULL) {
            err_set(e, ERR_INPUT,
                    "synthetic:%s: unknown key '%s' (known: dim, layers, heads, kv_heads, hidden, vocab, seq, seed)",
                    spec, tok);
            goto fail;
        }
        if (parse_value(spec, tok, eq + 1, INT32_MAX, &v, e) < 0)
            goto fail;
        *dst = (int)v;
    }
    free(copy);
    copy = NULL;
    if (heads_given && !kv_given)
        c->n_kv_heads = c->n_heads;
    {
        char where[160];
        snprintf(where, sizeof where, "synthetic:%s", spec);
        if (model_check_config(c, where, e) < 0)
            return -1;
    }

    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (m->layers == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");

#define MATRIX(w, rows, cols, scale)                                                                           \
    do {                                                                                                       \
        size_t numel_ = (size_t)(rows) * (size_t)(cols);                                                       \
        float *x_ = model_alloc(m, numel_ * sizeof(float));                                                    \
        if (x_ == NULL)                                                                                        \
            goto oom;                                                                                          \
        fill_uniform(x_, numel_, (scale), seed, stream++);                                                     \
        (w).dtype = KN_F32;                                                                                    \
        (w).n = (rows);                                                                                        \
        (w).k = (cols);                                                                                        \
        (w).data = x_;                                                                                         \
    } while (0)
#define NORM(dst)                                                                                              \
    do {                                                                                                       \
        float *x_ = model_alloc(m, (size_t)c->dim * sizeof(float));                                            \
        if (x_ == NULL)                                                                                        \
            goto oom;                                                                                          \
        fill_uniform(x_, (size_t)c->dim, 0.1f, seed, stream++);                                                \
        for (int i_ = 0; i_ < c->dim; i_++)                                                                    \
            x_[i_] += 1.0f;                                                                                    \
        (dst) = x_;                                                                                            \
    } while (0)

    {
        int D = c->dim, H = c->hidden_dim, KV = c->n_kv_heads * c->head_dim;
        float sd = 1.0f / sqrtf((float)D), sh = 1.0f / sqrtf((float)H);

        MATRIX(m->tok_embedding, c->vocab_size, D, sd);
        m->classifier = m->tok_embedding;
        NORM(m->final_norm);
        for (int l = 0; l < c->n_layers; l++) {
            struct model_layer *L = &m->layers[l];
            NORM(L->attn_norm);
            NORM(L->ffn_norm);
            MATRIX(L->wq, D, D, sd);
            MATRIX(L->wk, KV, D, sd);
            MATRIX(L->wv, KV, D, sd);
            MATRIX(L->wo, D, D, sd);
            MATRIX(L->w1, H, D, sd);
            MATRIX(L->w2, D, H, sh);
            MATRIX(L->w3, H, D, sd);
        }
    }
#undef MATRIX
#undef NORM
    return 0;
oom:
    return err_set(e, ERR_SYSTEM, "synthetic:%s: out of memory for the weights", spec);
fail:
    free(copy);
    return -1;
}
