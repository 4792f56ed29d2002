/* model_gguf.c -- GGUF models of the "llama" architecture (llama.cpp's
 * format; the file is parsed by gguf.c).
 *
 * Shape from the metadata: llama.embedding_length (dim),
 * llama.feed_forward_length (hidden), llama.block_count,
 * llama.attention.head_count, llama.attention.head_count_kv (default: the
 * head count), llama.context_length (seq_len), llama.rope.freq_base (default
 * 10000), llama.attention.layer_norm_rms_epsilon (default 1e-5); vocab_size
 * from token_embd.weight.  llama.rope.dimension_count, when given, must be
 * head_dim (no partial rotary).
 *
 * Tensors: token_embd, output_norm, output (absent: tied to the
 * embedding), blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,
 * ffn_norm, ffn_gate, ffn_down, ffn_up}.weight.  Every shape is checked.
 * F32 and BF16 are used in place; F16 is widened to F32 at load; Q8_0
 * (blocks of a float16 scale and 32 int8) is repacked into KN_Q8 with group
 * 32 (int8 rows and float32 scales).
 *
 * RoPE: llama.cpp's converter (convert_hf_to_gguf.py) permutes the Hugging
 * Face Q and K rows back to Meta's order, and llama.cpp rotates llama models
 * with its "normal" RoPE, i.e. adjacent pairs.  So GGUF llama files use the
 * interleaved layout, the same as llama2.c: KN_ROPE_INTERLEAVED.
 *
 * Tokenizer: tokenizer.ggml.model "llama" (SentencePiece) with
 * tokenizer.ggml.tokens, .scores, .token_type, .bos_token_id, .eos_token_id
 * and .add_bos_token, or "gpt2" (byte-level BPE) with .tokens, .token_type,
 * .merges and .pre ("default", "gpt2" or "smollm"), becomes m->tokenizer;
 * another tokenizer model or pre-tokenizer (Llama 3's, Qwen's ...) is not
 * supported: the model loads without a tokenizer and a warning says so.
 * tokenizer.chat_template goes to m->chat_template. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/gguf.h"
#include "server/model_int.h"
#include "server/tokenizer.h"

/* The float32 data of T (n elements): in place when it is F32 and aligned,
 * else converted into memory owned by M. */
static const float *tensor_floats(struct model *m, const struct gguf_tensor *t)
{
    size_t n = (size_t)t->n_elements;
    float *x;

    if (t->type == GGML_TYPE_F32)
        return model_floats(m, t->data, n);
    x = model_alloc(m, n * sizeof *x);
    if (x == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, t->data + 2 * i, 2);
        if (t->type == GGML_TYPE_F16)
            x[i] = gguf_f16_to_f32(h);
        else
            kn_bf16_to_f32(&x[i], &h, 1);
    }
    return x;
}

/* Find tensor NAME with shape (NE0, NE1) (NE1 = 0: a vector of NE0) and a
 * type we read. */
static const struct gguf_tensor *need_tensor(const struct gguf *g, const char *name, uint64_t ne0, uint64_t ne1,
                                             int optional, struct err *e)
{
    const struct gguf_tensor *t = gguf_find_tensor(g, name);
    int dims = ne1 == 0 ? 1 : 2;

    if (t == NULL) {
        if (!optional)
            err_at(e, g->path, 0, "tensor %s is missing", name);
        return NULL;
    }
    if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16 && t->type != GGML_TYPE_BF16 &&
        t->type != GGML_TYPE_Q8_0) {
        err_at(e, g->path, 0, "tensor %s has type %s (%u): only F32, F16, BF16 and Q8_0 are supported", name,
               ggml_type_name(t->type), t->type);
        return NULL;
    }
    if (t->n_dims != (uint32_t)dims || t->ne[0] != ne0 || (dims == 2 && t->ne[1] != ne1)) {
        char got[96];
        if (t->n_dims == 1)
            snprintf(got, sizeof got, "[%llu]", (unsigned long long)t->ne[0]);
        else
            snprintf(got, sizeof got, "[%llu, %llu%s]", (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                     t->n_dims > 2 ? ", ..." : "");
        if (dims == 1)
            err_at(e, g->path, 0, "tensor %s has shape %s, expected [%llu]", name, got, (unsigned long long)ne0);
        else
            err_at(e, g->path, 0, "tensor %s has shape %s, expected [%llu, %llu]", name, got,
                   (unsigned long long)ne0, (unsigned long long)ne1);
        return NULL;
    }
    return t;
}

static int load_vector(struct model *m, const struct gguf *g, const char *name, int n, const float **out,
                       struct err *e)
{
    const struct gguf_tensor *t = need_tensor(g, name, (uint64_t)n, 0, 0, e);

    if (t == NULL)
        return -1;
    if (t->type == GGML_TYPE_Q8_0)
        return err_at(e, g->path, 0, "tensor %s: a norm vector in Q8_0 is not supported", name);
    if ((*out = tensor_floats(m, t)) == NULL)
        return err_set(e, ERR_SYSTEM, "%s: out of memory", g->path);
    return 0;
}

/* Matrix (n_out, n_in) from tensor T (ne = {n_in, n_out}). */
static int load_matrix_from(struct model *m, const struct gguf *g, const struct gguf_tensor *t,
                            struct kn_weights *w, struct err *e)
{
    w->n = (int)t->ne[1];
    w->k = (int)t->ne[0];
    w->group = 0;
    w->scales = NULL;
    switch (t->type) {
    case GGML_TYPE_F32:
    case GGML_TYPE_F16:
        w->dtype = KN_F32;
        w->data = tensor_floats(m, t);
        break;
    case GGML_TYPE_BF16:
        w->dtype = KN_BF16;
        if ((uintptr_t)t->data % 2 == 0) {
            w->data = t->data;
        } else {
            void *copy = model_alloc(m, (size_t)t->bytes);
            if (copy != NULL)
                memcpy(copy, t->data, (size_t)t->bytes);
            w->data = copy;
        }
        break;
    case GGML_TYPE_Q8_0: {
        size_t nb = (size_t)t->n_elements / GGML_Q8_0_BLOCK;
        int8_t *q = model_alloc(m, (size_t)t->n_elements);
        float *s = model_alloc(m, nb * sizeof *s);
        if (q == NULL || s == NULL)
            return err_set(e, ERR_SYSTEM, "%s: out of memory", g->path);
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *blk = t->data + b * GGML_Q8_0_BLOCK_BYTES;
            uint16_t d;
            memcpy(&d, blk, 2);
            s[b] = gguf_f16_to_f32(d);
            if (!isfinite(s[b]))
                return err_at(e, g->path, 0, "tensor %.*s: Q8_0 block %zu has a scale that is not finite",
                              (int)t->name.len, t->name.s, b);
            memcpy(q + b * GGML_Q8_0_BLOCK, blk + 2, GGML_Q8_0_BLOCK);
        }
        w->dtype = KN_Q8;
        w->group = GGML_Q8_0_BLOCK;
        w->data = q;
        w->scales = s;
        break;
    }
    }
    if (w->data == NULL)
        return err_set(e, ERR_SYSTEM, "%s: out of memory", g->path);
    return 0;
}

static int load_matrix(struct model *m, const struct gguf *g, const char *name, int n_out, int n_in,
                       struct kn_weights *w, struct err *e)
{
    const struct gguf_tensor *t = need_tensor(g, name, (uint64_t)n_in, (uint64_t)n_out, 0, e);
    return t == NULL ? -1 : load_matrix_from(m, g, t, w, e);
}

/* An int metadata value KEY in 1..MAX; required unless DEF > 0. */
static int meta_int(const struct gguf *g, const char *key, int def, int max, int *out, struct err *e)
{
    int64_t v;
    int r = gguf_get_int(g, key, 1, max, &v, e);

    if (r < 0)
        return -1;
    if (r == 0) {
        if (def <= 0)
            return err_at(e, g->path, 0, "metadata %s is missing", key);
        *out = def;
        return 0;
    }
    *out = (int)v;
    return 0;
}

static int load_tokenizer(struct model *m, const struct gguf *g, struct err *e)
{
    const struct gguf_kv *tok = gguf_find(g, "tokenizer.ggml.tokens");
    const struct gguf_kv *sc = gguf_find(g, "tokenizer.ggml.scores");
    const struct gguf_kv *ty = gguf_find(g, "tokenizer.ggml.token_type");
    const struct gguf_kv *kind = gguf_find(g, "tokenizer.ggml.model");
    const struct gguf_kv *mg = gguf_find(g, "tokenizer.ggml.merges");
    const struct gguf_kv *abos = gguf_find(g, "tokenizer.ggml.add_bos_token");
    int64_t bos = 1, eos = 2;
    const char **pieces = NULL, **merges = NULL;
    size_t *lens = NULL, *merge_lens = NULL;
    float *scores = NULL;
    int *types = NULL;
    int n, rc = -1, bpe = 0, add_bos;
    char *pre = NULL;

    if (tok == NULL) {
        log_info("%s: no tokenizer in the file (tokenizer.ggml.tokens): give --tokenizer for text", g->path);
        return 0;
    }
    bpe = kind != NULL && kind->type == GGUF_TYPE_STRING && gguf_str_eq(&kind->v.str, "gpt2");
    if (kind != NULL && !bpe && (kind->type != GGUF_TYPE_STRING || !gguf_str_eq(&kind->v.str, "llama"))) {
        if (kind->type == GGUF_TYPE_STRING)
            log_warn("%s: tokenizer.ggml.model '%.*s' is not supported (SentencePiece 'llama' and byte-level BPE "
                     "'gpt2' are): the model loads without a tokenizer; use token ids",
                     g->path, (int)(kind->v.str.len > 64 ? 64 : kind->v.str.len), kind->v.str.s);
        else
            log_warn("%s: tokenizer.ggml.model is not a string: the model loads without a tokenizer", g->path);
        return 0;
    }
    if (tok->type != GGUF_TYPE_ARRAY || tok->elem_type != GGUF_TYPE_STRING)
        return err_at(e, g->path, 0, "metadata tokenizer.ggml.tokens is not an array of strings");
    if (tok->n == 0 || tok->n > (uint64_t)m->cfg.vocab_size)
        return err_at(e, g->path, 0, "tokenizer.ggml.tokens has %llu tokens; the embedding has %d rows",
                      (unsigned long long)tok->n, m->cfg.vocab_size);
    n = (int)tok->n;
    if (sc != NULL && (sc->type != GGUF_TYPE_ARRAY || (sc->elem_type != GGUF_TYPE_FLOAT32 &&
                                                       sc->elem_type != GGUF_TYPE_FLOAT64) || sc->n != tok->n))
        return err_at(e, g->path, 0, "metadata tokenizer.ggml.scores is not an array of %d floats", n);
    if (ty != NULL && (ty->type != GGUF_TYPE_ARRAY || (ty->elem_type != GGUF_TYPE_INT32 &&
                                                       ty->elem_type != GGUF_TYPE_UINT32) || ty->n != tok->n))
        return err_at(e, g->path, 0, "metadata tokenizer.ggml.token_type is not an array of %d int32", n);
    if (gguf_get_int(g, "tokenizer.ggml.bos_token_id", 0, n - 1, &bos, e) < 0 ||
        gguf_get_int(g, "tokenizer.ggml.eos_token_id", 0, n - 1, &eos, e) < 0)
        return -1;
    if (bos >= n || eos >= n)
        return err_at(e, g->path, 0, "the default BOS 1 / EOS 2 are not tokens of a %d-token vocabulary", n);
    if (abos != NULL && abos->type != GGUF_TYPE_BOOL)
        return err_at(e, g->path, 0, "metadata tokenizer.ggml.add_bos_token is a %s, not a bool",
                      gguf_type_name(abos->type));
    add_bos = abos != NULL ? abos->v.u != 0 : !bpe;
    if (bpe) {
        if (mg == NULL || mg->type != GGUF_TYPE_ARRAY || mg->elem_type != GGUF_TYPE_STRING || mg->n > (1u << 24))
            return err_at(e, g->path, 0, "metadata tokenizer.ggml.merges (a byte-level BPE needs it) is missing or "
                                         "not an array of strings");
        if (gguf_get_string(g, "tokenizer.ggml.pre", &pre, e) < 0)
            return -1;
        if (pre != NULL && strcmp(pre, "default") != 0 && strcmp(pre, "gpt2") != 0 && strcmp(pre, "gpt-2") != 0 &&
            strcmp(pre, "smollm") != 0) {
            log_warn("%s: tokenizer.ggml.pre '%.64s' is not supported (default, gpt2, smollm): the model loads "
                     "without a tokenizer; use token ids",
                     g->path, pre);
            free(pre);
            return 0;
        }
        merges = malloc((size_t)(mg->n > 0 ? mg->n : 1) * sizeof *merges);
        merge_lens = malloc((size_t)(mg->n > 0 ? mg->n : 1) * sizeof *merge_lens);
        if (merges == NULL || merge_lens == NULL) {
            err_set(e, ERR_SYSTEM, "%s: out of memory", g->path);
            goto out;
        }
        for (uint64_t i = 0; i < mg->n; i++) {
            merges[i] = mg->strs[i].s;
            merge_lens[i] = (size_t)mg->strs[i].len;
        }
    }
    pieces = malloc((size_t)n * sizeof *pieces);
    lens = malloc((size_t)n * sizeof *lens);
    if (sc != NULL)
        scores = malloc((size_t)n * sizeof *scores);
    if (ty != NULL)
        types = malloc((size_t)n * sizeof *types);
    if (pieces == NULL || lens == NULL || (sc != NULL && scores == NULL) || (ty != NULL && types == NULL)) {
        err_set(e, ERR_SYSTEM, "%s: out of memory", g->path);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        pieces[i] = tok->strs[i].s;
        lens[i] = (size_t)tok->strs[i].len;
        if (scores != NULL)
            scores[i] = (float)gguf_arr_float(sc, (uint64_t)i);
        if (types != NULL) {
            int64_t v = gguf_arr_int(ty, (uint64_t)i);
            types[i] = v < 0 || v > 100 ? 0 : (int)v;
        }
    }
    if (bpe)
        m->tokenizer = tokenizer_from_bpe(n, pieces, lens, types, (int)mg->n, merges, merge_lens, pre, (int)bos,
                                          (int)eos, add_bos, e);
    else
        m->tokenizer = tokenizer_from_arrays(n, pieces, lens, scores, types, (int)bos, (int)eos, e);
    if (m->tokenizer == NULL) {
        err_prefix(e, "%s", g->path);
        goto out;
    }
    if (!bpe)
        tokenizer_set_add_bos(m->tokenizer, add_bos);
    rc = 0;
out:
    free(pre);
    free(merges);
    free(merge_lens);
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    return rc;
}

int model_load_gguf(struct model *m, const char *path, const uint8_t *data, size_t len, struct err *e)
{
    struct gguf g;
    struct model_config *c = &m->cfg;
    const struct gguf_tensor *emb, *out;
    double v;
    int rc = -1, r;
    char name[96];

    if (gguf_open(&g, path, data, len, e) < 0)
        return -1;
    {
        const struct gguf_kv *arch = gguf_find(&g, "general.architecture");
        if (arch == NULL) {
            err_at(e, path, 0, "metadata general.architecture is missing");
            goto out;
        }
        if (arch->type != GGUF_TYPE_STRING || !gguf_str_eq(&arch->v.str, "llama")) {
            if (arch->type == GGUF_TYPE_STRING)
                err_at(e, path, 0, "architecture '%.*s' is not supported (only 'llama')",
                       (int)(arch->v.str.len > 64 ? 64 : arch->v.str.len), arch->v.str.s);
            else
                err_at(e, path, 0, "metadata general.architecture is not a string");
            goto out;
        }
    }
    if (meta_int(&g, "llama.embedding_length", 0, MODEL_MAX_DIM, &c->dim, e) < 0 ||
        meta_int(&g, "llama.feed_forward_length", 0, MODEL_MAX_HIDDEN, &c->hidden_dim, e) < 0 ||
        meta_int(&g, "llama.block_count", 0, MODEL_MAX_LAYERS, &c->n_layers, e) < 0 ||
        meta_int(&g, "llama.attention.head_count", 0, MODEL_MAX_HEADS, &c->n_heads, e) < 0 ||
        meta_int(&g, "llama.attention.head_count_kv", c->n_heads, MODEL_MAX_HEADS, &c->n_kv_heads, e) < 0 ||
        meta_int(&g, "llama.context_length", 0, MODEL_MAX_SEQ, &c->seq_len, e) < 0)
        goto out;
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    c->rope_layout = KN_ROPE_INTERLEAVED;
    if ((r = gguf_get_float(&g, "llama.rope.freq_base", &v, e)) < 0)
        goto out;
    if (r > 0)
        c->rope_theta = (float)v;
    if ((r = gguf_get_float(&g, "llama.attention.layer_norm_rms_epsilon", &v, e)) < 0)
        goto out;
    if (r > 0)
        c->norm_eps = (float)v;
    emb = gguf_find_tensor(&g, "token_embd.weight");
    if (emb == NULL) {
        err_at(e, path, 0, "tensor token_embd.weight is missing");
        goto out;
    }
    if (emb->n_dims != 2 || emb->ne[1] > MODEL_MAX_VOCAB) {
        err_at(e, path, 0, "tensor token_embd.weight is not a (vocab, dim) matrix of at most %d rows", MODEL_MAX_VOCAB);
        goto out;
    }
    c->vocab_size = (int)emb->ne[1];
    if (model_check_config(c, path, e) < 0)
        goto out;
    {
        int64_t rot;
        if ((r = gguf_get_int(&g, "llama.rope.dimension_count", 0, INT32_MAX, &rot, e)) < 0)
            goto out;
        if (r > 0 && rot != c->head_dim) {
            err_at(e, path, 0, "llama.rope.dimension_count %lld differs from head_dim %d: partial RoPE is not supported",
                   (long long)rot, c->head_dim);
            goto out;
        }
    }
    {
        int64_t vs;
        if ((r = gguf_get_int(&g, "llama.vocab_size", 1, MODEL_MAX_VOCAB, &vs, e)) < 0)
            goto out;
        if (r > 0 && vs != c->vocab_size) {
            err_at(e, path, 0, "llama.vocab_size %lld differs from token_embd.weight's %d rows", (long long)vs,
                   c->vocab_size);
            goto out;
        }
    }

    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (m->layers == NULL) {
        err_set(e, ERR_SYSTEM, "%s: out of memory", path);
        goto out;
    }
    if (need_tensor(&g, "token_embd.weight", (uint64_t)c->dim, (uint64_t)c->vocab_size, 0, e) == NULL ||
        load_matrix_from(m, &g, emb, &m->tok_embedding, e) < 0 ||
        load_vector(m, &g, "output_norm.weight", c->dim, &m->final_norm, e) < 0)
        goto out;
    out = need_tensor(&g, "output.weight", (uint64_t)c->dim, (uint64_t)c->vocab_size, 1, e);
    if (out == NULL && gguf_find_tensor(&g, "output.weight") != NULL)
        goto out; /* there, but wrong */
    if (out == NULL)
        m->classifier = m->tok_embedding;
    else if (load_matrix_from(m, &g, out, &m->classifier, e) < 0)
        goto out;
    {
        int D = c->dim, H = c->hidden_dim, KV = c->n_kv_heads * c->head_dim, Q = c->n_heads * c->head_dim;
        for (int l = 0; l < c->n_layers; l++) {
            struct model_layer *L = &m->layers[l];
#define BLK(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, l), name)
            if (load_vector(m, &g, BLK("attn_norm.weight"), D, &L->attn_norm, e) < 0 ||
                load_matrix(m, &g, BLK("attn_q.weight"), Q, D, &L->wq, e) < 0 ||
                load_matrix(m, &g, BLK("attn_k.weight"), KV, D, &L->wk, e) < 0 ||
                load_matrix(m, &g, BLK("attn_v.weight"), KV, D, &L->wv, e) < 0 ||
                load_matrix(m, &g, BLK("attn_output.weight"), D, Q, &L->wo, e) < 0 ||
                load_vector(m, &g, BLK("ffn_norm.weight"), D, &L->ffn_norm, e) < 0 ||
                load_matrix(m, &g, BLK("ffn_gate.weight"), H, D, &L->w1, e) < 0 ||
                load_matrix(m, &g, BLK("ffn_down.weight"), D, H, &L->w2, e) < 0 ||
                load_matrix(m, &g, BLK("ffn_up.weight"), H, D, &L->w3, e) < 0)
                goto out;
#undef BLK
        }
    }
    if (load_tokenizer(m, &g, e) < 0)
        goto out;
    if (gguf_get_string(&g, "tokenizer.chat_template", &m->chat_template, e) < 0)
        goto out;
    rc = 0;
out:
    gguf_close(&g);
    return rc;
}
