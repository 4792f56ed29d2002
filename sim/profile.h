/* profile.h -- service-time profiles: how long one batched iteration of a
 * model replica takes.
 *
 * An iteration runs P prompt tokens of prefill (possibly chunks of several
 * prompts) and B sequences of decode (one token each, over C tokens of context
 * in total).  A profile answers iteration_s(P, Pctx, B, C) and gives the KV
 * cache capacity in tokens.  Two kinds:
 *
 *  - table: measured (llmbench profile, or by hand) and read from JSON:
 *      {"format": "llmscale-profile-v1", "name": "...",
 *       "kv_capacity_tokens": 200000,
 *       "step_overhead_s": 0.003,                               (optional, default 0)
 *       "prefill": {"tokens": [1, 512, 4096], "time_s": [...]},
 *       "decode":  {"batch": [1, 16, 64], "context_tokens": [0, 65536],
 *                   "time_s": [[...], [...], [...]]}}       (batch x context)
 *    iteration_s = prefill(P) + decode(B, C): piecewise linear in P, bilinear
 *    in (B, C), extended linearly past the last point; a step with both pays
 *    the fixed cost of a step (step_overhead_s, in both tables) only once:
 *    minus min(step_overhead_s, prefill(P), decode(B, C)).
 *
 *  - roofline: computed from a GPU (peak FLOP/s, memory bandwidth, memory) and
 *    a model shape; see docs/ARCHITECTURE.md for the formulas:
 *      flops = 2 N (P + B) + 4 L d (Pctx + C)
 *      bytes = W + kv_bytes_per_token * (C + P)
 *      iteration_s = max(flops / (tp peak eff_c), bytes / (tp bw eff_m)) + overhead
 *    where N is the parameter count of the matmuls (layers and classifier), W the weight bytes,
 *    L the layers, d the hidden size, Pctx the sum over prefilled tokens of
 *    the positions they attend to; KV capacity is
 *    (tp mem util - W) / kv_bytes_per_token. */
#ifndef LLM_PROFILE_H
#define LLM_PROFILE_H

#include <stddef.h>

#include "common/conf.h"
#include "common/err.h"

/* A GPU of the built-in catalog (sim/catalog.c). */
struct gpu_spec {
    const char *name;
    double peak_flops;    /* dense BF16/FP16 tensor FLOP/s */
    double mem_bw_Bps;    /* HBM/GDDR bandwidth, bytes/s */
    double mem_bytes;     /* device memory */
    double hourly_usd;    /* reference on-demand price per GPU-hour */
    const char *note;     /* where the figures come from */
};

/* A model shape of the built-in catalog. */
struct model_spec {
    const char *name;
    int layers;
    int hidden;
    int heads;
    int kv_heads;
    int ffn;     /* MLP intermediate size */
    int vocab;
    int tied;    /* embeddings shared with the classifier */
    int tp;      /* default tensor-parallel degree (GPUs per replica) */
};

const struct gpu_spec *catalog_gpu(const char *name);
const struct model_spec *catalog_model(const char *name);
/* Comma-separated names, for error messages and --help. */
const char *catalog_gpu_names(void);
const char *catalog_model_names(void);

/* Parameters of a roofline profile. */
struct roofline {
    struct gpu_spec gpu;
    struct model_spec model;
    double bytes_per_weight;   /* 2 for bf16, 1 for int8 */
    double kv_bytes_per_elem;  /* 2 for bf16 KV cache */
    int tp;                    /* GPUs per replica */
    double compute_efficiency; /* fraction of peak FLOP/s reached (default 0.6) */
    double memory_efficiency;  /* fraction of bandwidth reached (default 0.8) */
    double memory_utilization; /* fraction of memory for weights + KV (default 0.9) */
    double overhead_s;         /* fixed cost per iteration (default 2 ms) */
    /* Derived. */
    double params;             /* weights used in matmuls: layers and classifier */
    double weight_bytes;       /* including embeddings and classifier */
    double kv_bytes_per_token;
};

enum profile_kind { PROFILE_TABLE, PROFILE_ROOFLINE };

struct profile {
    enum profile_kind kind;
    char name[160];
    double kv_capacity_tokens;
    /* table */
    double step_overhead_s;  /* counted in both tables; paid once by a mixed step */
    size_t n_prefill;
    double *prefill_tokens;
    double *prefill_s;
    size_t n_batch;
    size_t n_ctx;
    double *decode_batch;
    double *decode_ctx;
    double *decode_s; /* [n_batch * n_ctx], row-major by batch */
    /* roofline */
    struct roofline rf;
};

/* Load a table profile from a JSON file.  Errors name the file and, for
 * syntax errors, the line; for bad values, the key path (decode.time_s[2][1]). */
struct profile *profile_load_json(const char *path, struct err *e);

/* Build a roofline profile from a scenario mapping
 * {gpu, model, tp, bytes_per_weight, kv_bytes, compute_efficiency,
 *  memory_efficiency, memory_utilization, overhead}. */
struct profile *profile_roofline_from_conf(const struct conf *c, const struct conf_node *map,
                                           struct err *e);
/* Build a roofline profile directly (rf's derived fields are computed).
 * Fails when the model does not fit in memory. */
struct profile *profile_roofline(const struct roofline *rf, struct err *e);

void profile_free(struct profile *p);

/* Seconds for one iteration: PREFILL_TOKENS of prefill whose attention spans
 * PREFILL_CTX token pairs, and DECODE_BATCH sequences decoding over
 * DECODE_CTX tokens of context in total.  0 when the batch is empty. */
double profile_iteration_s(const struct profile *p, double prefill_tokens, double prefill_ctx,
                           double decode_batch, double decode_ctx);

#endif
