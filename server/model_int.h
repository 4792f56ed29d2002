/* model_int.h -- what the model loaders share (not for users of model.h).
 *
 * Each format has one loader (model_llama2c.c, model_gguf.c,
 * model_synthetic.c).  A loader fills m->cfg, the tensors and m->name;
 * model_load() (model_load.c) then checks the shape, converts weights the
 * options ask for (--quantize q8) and counts weight_bytes.  Loaders keep the
 * mapping in m->map / m->map_len and register every buffer they allocate
 * with model_alloc(), so model_free() releases everything on any path. */
#ifndef LLM_MODEL_INT_H
#define LLM_MODEL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "server/model.h"

/* Upper bounds that keep size arithmetic far from overflow and refuse
 * absurd headers before anything is allocated. */
#define MODEL_MAX_DIM (1 << 16)
#define MODEL_MAX_HIDDEN (1 << 18)
#define MODEL_MAX_LAYERS 1024
#define MODEL_MAX_HEADS 1024
#define MODEL_MAX_VOCAB (1 << 22)
#define MODEL_MAX_SEQ (1 << 24)

/* 64-byte aligned, zeroed memory owned by M (freed by model_free).  NULL on
 * allocation failure (or BYTES == 0 is still a valid, non-NULL buffer). */
void *model_alloc(struct model *m, size_t bytes);
/* Free a buffer that model_alloc returned, before model_free (conversions
 * drop the float copy they replaced). */
void model_release(struct model *m, const void *p);

/* Check the shape in C (dims positive, within the limits above, dim %
 * n_heads, n_heads % n_kv_heads, an even head_dim) and fill head_dim.  Errors
 * are ERR_INPUT, "WHERE: ...". */
int model_check_config(struct model_config *c, const char *where, struct err *e);

/* Bytes of the matrix W as stored (F32, BF16 or Q8 with its scales). */
size_t model_weights_bytes(const struct kn_weights *w);

/* A float32 vector of N floats at P inside the mapping: P itself when it is
 * 4-byte aligned, else a copy owned by M.  NULL on allocation failure. */
const float *model_floats(struct model *m, const void *p, size_t n);

/* Loaders, called by model_load with M zeroed.  PATH names the file in
 * messages; DATA/LEN is the whole file, already mapped into m->map. */
int model_load_llama2c(struct model *m, const char *path, const uint8_t *data, size_t len, struct err *e);
int model_load_gguf(struct model *m, const char *path, const uint8_t *data, size_t len, struct err *e);
/* SPEC is what follows "synthetic:". */
int model_load_synthetic(struct model *m, const char *spec, struct err *e);

/* The magic numbers model_load tells formats apart by. */
#define MODEL_LLAMA2C_MAGIC 0x616b3432u /* "ak42" read as a little-endian uint32 */

#endif
