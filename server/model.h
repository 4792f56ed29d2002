/* model.h -- a Llama-architecture model: its shape, its weights, and the
 * loaders that fill them from checkpoint files.
 *
 * Formats (model_load picks by content, not by name):
 *   - llama2.c legacy (version 0): a header of seven int32 (dim, hidden_dim,
 *     n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative
 *     vocab_size means a separate classifier), then float32 tensors.
 *   - llama2.c version 1 ("ak42" magic, 256-byte header), float32.
 *   - llama2.c version 2 ("ak42", int8 Q8_0 weights with a group size).
 *   - GGUF version 3, architecture "llama", tensors F32, F16, BF16 or Q8_0,
 *     the tokenizer in the metadata.
 *   - "synthetic:NAME" or "synthetic:dim=..,layers=..,heads=..,kv_heads=..,
 *     hidden=..,vocab=..,seq=.." (any subset; the rest default): weights drawn
 *     from a seeded RNG, deterministic, for benchmarks and tests.
 * Files are memory-mapped; float32 tensors are used in place.  Weights of a
 * type the kernels lack (F16) are converted at load time.
 *
 * Shapes follow kernels.h: a weight matrix is (n_out, n_in), row-major. */
#ifndef LLM_MODEL_H
#define LLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "kernels/kernels.h"

struct tokenizer;

struct model_config {
    int dim;         /* model width */
    int hidden_dim;  /* SwiGLU hidden width */
    int n_layers;
    int n_heads;     /* query heads */
    int n_kv_heads;  /* key/value heads (grouped-query attention) */
    int head_dim;    /* dim / n_heads */
    int vocab_size;
    int seq_len;     /* longest context the model supports */
    float rope_theta;             /* 10000 for llama2.c checkpoints */
    /* llama2.c: interleaved.  GGUF llama: interleaved too -- llama.cpp's
     * convert_hf_to_gguf.py permutes Hugging Face's Q/K rows back to Meta's
     * order and llama.cpp applies its "normal" (adjacent-pair) RoPE to llama;
     * only Hugging Face safetensors would need KN_ROPE_HALF. */
    enum kn_rope_layout rope_layout;
    float norm_eps;               /* RMSNorm epsilon (1e-5) */
    int shared_classifier;        /* 1: the classifier is the token embedding */
};

struct model_layer {
    const float *attn_norm;         /* (dim) */
    struct kn_weights wq;           /* (n_heads*head_dim, dim) */
    struct kn_weights wk;           /* (n_kv_heads*head_dim, dim) */
    struct kn_weights wv;           /* (n_kv_heads*head_dim, dim) */
    struct kn_weights wo;           /* (dim, n_heads*head_dim) */
    const float *ffn_norm;          /* (dim) */
    struct kn_weights w1;           /* gate (hidden_dim, dim) */
    struct kn_weights w2;           /* down (dim, hidden_dim) */
    struct kn_weights w3;           /* up   (hidden_dim, dim) */
};

struct model {
    struct model_config cfg;
    char name[128];                 /* for /v1/models and logs: the file's base name or "synthetic:..." */
    struct kn_weights tok_embedding; /* (vocab_size, dim); may be Q8 or BF16: read rows with model_embed() */
    struct model_layer *layers;     /* n_layers */
    const float *final_norm;        /* (dim) */
    struct kn_weights classifier;   /* (vocab_size, dim); == tok_embedding when shared */
    struct tokenizer *tokenizer;    /* from the file's metadata (GGUF), else NULL */
    char *chat_template;            /* the file's chat template (GGUF tokenizer.chat_template), else NULL */
    size_t weight_bytes;            /* bytes of weights one token's forward pass reads */

    /* owned memory: the mapping and any buffers created at load time */
    void *map;
    size_t map_len;
    void **owned;
    int n_owned;
};

struct model_load_opts {
    int quantize_q8;   /* convert float weights to int8 (group 32) at load time; a matrix whose
                          row length is not a multiple of the group stays float */
    int q8_group;      /* 0: 32 */
};

/* Load PATH (a file or "synthetic:...") into M.  A corrupt, truncated or
 * mismatched file is refused with an ERR_INPUT error that names the file and
 * what is wrong; on failure M is left empty (model_free is still safe). */
int model_load(struct model *m, const char *path, const struct model_load_opts *opts, struct err *e);
void model_free(struct model *m);

/* Copy token TOKEN's embedding row (dim floats) into OUT, dequantising.
 * A TOKEN outside 0..vocab_size-1 gives a row of zeros. */
void model_embed(const struct model *m, int token, float *out);

#endif
