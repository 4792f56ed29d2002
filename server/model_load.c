/* model_load.c -- model_load(): open a checkpoint, pick its loader by
 * content, check the shape, apply the load options, and model_free() /
 * model_embed().  The format readers are model_llama2c.c, model_gguf.c and
 * model_synthetic.c; what they share is in model_int.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "server/model.h"
#include "server/model_int.h"
#include "server/tokenizer.h"

/* ---- owned memory ------------------------------------------------------------ */

void *model_alloc(struct model *m, size_t bytes)
{
    void **owned;
    void *p;
    size_t rounded = (bytes + 63) / 64 * 64;

    if (rounded < bytes)
        return NULL;
    if (rounded == 0)
        rounded = 64;
    p = aligned_alloc(64, rounded);
    if (p == NULL)
        return NULL;
    owned = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *owned);
    if (owned == NULL) {
        free(p);
        return NULL;
    }
    memset(p, 0, rounded);
    m->owned = owned;
    m->owned[m->n_owned++] = p;
    return p;
}

void model_release(struct model *m, const void *p)
{
    for (int i = 0; i < m->n_owned; i++) {
        if (m->owned[i] == p) {
            free(m->owned[i]);
            m->owned[i] = m->owned[--m->n_owned];
            return;
        }
    }
}

const float *model_floats(struct model *m, const void *p, size_t n)
{
    float *copy;

    if ((uintptr_t)p % sizeof(float) == 0)
        return p;
    copy = model_alloc(m, n * sizeof(float));
    if (copy != NULL)
        memcpy(copy, p, n * sizeof(float));
    return copy;
}

/* ---- shape ---------------------------------------------------------------------- */

static int check_dim(int v, int max, const char *name, const char *where, struct err *e)
{
    if (v <= 0)
        return err_at(e, where, 0, "%s is %d: must be positive", name, v);
    if (v > max)
        return err_at(e, where, 0, "%s is %d: larger than the limit %d", name, v, max);
    return 0;
}

int model_check_config(struct model_config *c, const char *where, struct err *e)
{
    if (check_dim(c->dim, MODEL_MAX_DIM, "dim", where, e) < 0 ||
        check_dim(c->hidden_dim, MODEL_MAX_HIDDEN, "hidden_dim", where, e) < 0 ||
        check_dim(c->n_layers, MODEL_MAX_LAYERS, "n_layers", where, e) < 0 ||
        check_dim(c->n_heads, MODEL_MAX_HEADS, "n_heads", where, e) < 0 ||
        check_dim(c->n_kv_heads, MODEL_MAX_HEADS, "n_kv_heads", where, e) < 0 ||
        check_dim(c->vocab_size, MODEL_MAX_VOCAB, "vocab_size", where, e) < 0 ||
        check_dim(c->seq_len, MODEL_MAX_SEQ, "seq_len", where, e) < 0)
        return -1;
    if (c->dim % c->n_heads != 0)
        return err_at(e, where, 0, "dim %d is not a multiple of n_heads %d", c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads != 0)
        return err_at(e, where, 0, "n_heads %d is not a multiple of n_kv_heads %d", c->n_heads, c->n_kv_heads);
    c->head_dim = c->dim / c->n_heads;
    if (c->head_dim % 2 != 0)
        return err_at(e, where, 0, "head_dim %d (dim %d / n_heads %d) is odd: RoPE rotates pairs", c->head_dim,
                      c->dim, c->n_heads);
    if (!(c->rope_theta > 0.0f) || c->rope_theta > 1e12f)
        return err_at(e, where, 0, "rope_theta %g is not a positive finite number", (double)c->rope_theta);
    if (!(c->norm_eps > 0.0f) || c->norm_eps > 1.0f)
        return err_at(e, where, 0, "RMSNorm epsilon %g is not in (0, 1]", (double)c->norm_eps);
    return 0;
}

size_t model_weights_bytes(const struct kn_weights *w)
{
    size_t n = (size_t)w->n * (size_t)w->k;

    switch (w->dtype) {
    case KN_F32:
        return n * sizeof(float);
    case KN_BF16:
        return n * sizeof(uint16_t);
    case KN_Q8:
        return n + n / (size_t)w->group * sizeof(float);
    }
    return 0;
}

/* ---- --quantize q8 ------------------------------------------------------------ */

/* Convert W (F32 or BF16) to Q8 with GROUP along k.  A matrix whose k is not
 * a multiple of GROUP stays as it is (the kernels need whole groups per
 * row); returns 1 when converted, 0 when kept, -1 on allocation failure. */
static int quantize_weights(struct model *m, struct kn_weights *w, int group)
{
    size_t n = (size_t)w->n * (size_t)w->k;
    int8_t *q;
    float *scales, *row = NULL;

    if (w->dtype == KN_Q8 || w->k % group != 0)
        return 0;
    q = model_alloc(m, n);
    scales = model_alloc(m, n / (size_t)group * sizeof(float));
    if (q == NULL || scales == NULL)
        return -1;
    if (w->dtype == KN_BF16) {
        row = malloc((size_t)w->k * sizeof(float));
        if (row == NULL)
            return -1;
    }
    for (size_t i = 0; i < (size_t)w->n; i++) {
        size_t off = i * (size_t)w->k;
        const float *x;

        if (w->dtype == KN_BF16) {
            kn_bf16_to_f32(row, (const uint16_t *)w->data + off, (size_t)w->k);
            x = row;
        } else {
            x = (const float *)w->data + off;
        }
        kn_quantize_q8(q + off, scales + off / (size_t)group, x, (size_t)w->k, group);
    }
    free(row);
    model_release(m, w->data);
    w->dtype = KN_Q8;
    w->group = group;
    w->data = q;
    w->scales = scales;
    return 1;
}

static int model_quantize(struct model *m, int group, struct err *e)
{
    int kept = 0, r;
    int shared = m->classifier.data == m->tok_embedding.data;

    for (int l = 0; l < m->cfg.n_layers; l++) {
        struct kn_weights *ws[] = {&m->layers[l].wq, &m->layers[l].wk, &m->layers[l].wv, &m->layers[l].wo,
                                   &m->layers[l].w1, &m->layers[l].w2, &m->layers[l].w3};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
            if ((r = quantize_weights(m, ws[i], group)) < 0)
                goto oom;
            kept += r == 0 && ws[i]->dtype != KN_Q8;
        }
    }
    if ((r = quantize_weights(m, &m->tok_embedding, group)) < 0)
        goto oom;
    if (shared)
        m->classifier = m->tok_embedding;
    else if ((r = quantize_weights(m, &m->classifier, group)) < 0)
        goto oom;
    if (kept > 0)
        log_info("%s: --quantize q8: %d matrices keep their float weights (k not a multiple of %d)", m->name,
                 kept, group);
    return 0;
oom:
    return err_set(e, ERR_SYSTEM, "%s: out of memory quantising the weights", m->name);
}

/* ---- load and free -------------------------------------------------------------- */

static size_t model_count_weight_bytes(const struct model *m)
{
    size_t total = 0;

    for (int l = 0; l < m->cfg.n_layers; l++) {
        const struct model_layer *L = &m->layers[l];
        total += model_weights_bytes(&L->wq) + model_weights_bytes(&L->wk) + model_weights_bytes(&L->wv) +
                 model_weights_bytes(&L->wo) + model_weights_bytes(&L->w1) + model_weights_bytes(&L->w2) +
                 model_weights_bytes(&L->w3);
    }
    return total + model_weights_bytes(&m->classifier);
}

static int model_map_file(struct model *m, const char *path, struct err *e)
{
    struct stat st;
    void *p;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return err_at(e, path, 0, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) < 0) {
        int saved = errno;
        close(fd);
        return err_sys(e, saved, "%s: stat", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_at(e, path, 0, "not a regular file");
    }
    if (st.st_size == 0) {
        close(fd);
        return err_at(e, path, 0, "empty file: not a model");
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return err_sys(e, errno, "%s: mmap", path);
    m->map = p;
    m->map_len = (size_t)st.st_size;
    return 0;
}

static void model_set_name(struct model *m, const char *path)
{
    const char *base = path;

    if (strncmp(path, "synthetic:", 10) != 0) {
        const char *slash = strrchr(path, '/');
        if (slash != NULL && slash[1] != '\0')
            base = slash + 1;
    }
    snprintf(m->name, sizeof m->name, "%s", base);
}

int model_load(struct model *m, const char *path, const struct model_load_opts *opts, struct err *e)
{
    int group = 32;
    int rc;

    memset(m, 0, sizeof *m);
    if (opts != NULL && opts->q8_group != 0) {
        if (opts->q8_group != 32 && opts->q8_group != 64)
            return err_set(e, ERR_INPUT, "--quantize q8: group size %d: must be 32 or 64", opts->q8_group);
        group = opts->q8_group;
    }
    model_set_name(m, path);
    if (strncmp(path, "synthetic:", 10) == 0) {
        rc = model_load_synthetic(m, path + 10, e);
    } else {
        rc = model_map_file(m, path, e);
        if (rc == 0) {
            const uint8_t *d = m->map;
            uint32_t magic = 0;
            if (m->map_len >= 4)
                memcpy(&magic, d, 4);
            if (m->map_len >= 4 && memcmp(d, "GGUF", 4) == 0)
                rc = model_load_gguf(m, path, d, m->map_len, e);
            else
                rc = model_load_llama2c(m, path, d, m->map_len, e);
        }
    }
    if (rc == 0 && opts != NULL && opts->quantize_q8)
        rc = model_quantize(m, group, e);
    if (rc < 0) {
        model_free(m);
        return -1;
    }
    m->cfg.shared_classifier = m->classifier.data == m->tok_embedding.data;
    m->weight_bytes = model_count_weight_bytes(m);
    return 0;
}

void model_free(struct model *m)
{
    if (m == NULL)
        return;
    if (m->map != NULL)
        munmap(m->map, m->map_len);
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    tokenizer_free(m->tokenizer);
    free(m->chat_template);
    memset(m, 0, sizeof *m);
}

void model_embed(const struct model *m, int token, float *out)
{
    const struct kn_weights *w = &m->tok_embedding;
    size_t k = (size_t)w->k, off = (size_t)token * k;

    if (token < 0 || token >= w->n) {
        memset(out, 0, k * sizeof *out);
        return;
    }
    switch (w->dtype) {
    case KN_F32:
        memcpy(out, (const float *)w->data + off, k * sizeof *out);
        break;
    case KN_BF16:
        kn_bf16_to_f32(out, (const uint16_t *)w->data + off, k);
        break;
    case KN_Q8:
        kn_dequantize_q8(out, (const int8_t *)w->data + off, w->scales + off / (size_t)w->group, k, w->group);
        break;
    }
}
