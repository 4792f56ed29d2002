/* forward_cuda.h -- the forward pass of forward.h on a CUDA device.
 *
 * The same computation as model.c, step for step, with every tensor on the
 * device: the weights are uploaded once (float32, bf16 or int8 as the model
 * holds them), the keys and values live in a device copy of the paged KV
 * cache with exactly the host cache's layout (the engine keeps allocating
 * block ids on the host with kvcache.c; the host cache is then created
 * without storage, kv_cache_init_meta), and a step moves only its token
 * ids, positions and block tables up and the logits asked for down.
 *
 * Errors: every failure (a device out of memory, a kernel that failed)
 * comes back as -1 with E set, naming the call and kn_cuda_error(); nothing
 * here aborts.  A device error may leave the CUDA context unusable, so the
 * steps after it are likely to fail too.
 *
 * Not thread-safe: one object belongs to one thread at a time (it may be
 * created on one thread and run on another, as the engine does).
 * Only built when configure finds CUDA (HAVE_CUDA). */
#ifndef LLM_FORWARD_CUDA_H
#define LLM_FORWARD_CUDA_H

/* The C headers go inside the extern "C" block: forward_cuda.cu, C++,
 * includes this first, so it calls err_set and friends with C linkage. */
#ifdef __cplusplus
extern "C" {
#endif

#include "common/err.h"
#include "server/forward.h"
#include "server/kvcache.h"
#include "server/model.h"

struct forward_cuda;

/* Upload model M and allocate a device KV cache shaped as KV (its layers,
 * kv_dim, block_tokens and n_blocks; its host storage is not used) and the
 * scratch for steps of up to MAX_TOKENS tokens over up to MAX_SEQS
 * sequences, on the calling thread's current device.  NULL with E set on
 * failure (ERR_INPUT for a shape the kernels cannot run, ERR_SYSTEM for the
 * device). */
struct forward_cuda *forward_cuda_create(const struct model *m, const struct kv_cache *kv, int max_tokens,
                                         int max_seqs, struct err *e);
void forward_cuda_free(struct forward_cuda *f);

/* One step, as forward_batch: SEQS[i].kv's block ids index the device
 * cache.  Returns 0 with the logits asked for filled, or -1 with E set
 * (ERR_INPUT for a step that breaks forward.h's rules -- checked here,
 * before anything runs -- ERR_SYSTEM for the device). */
int forward_cuda_batch(struct forward_cuda *f, const struct forward_seq *seqs, int n_seqs, struct err *e);

#ifdef __cplusplus
}
#endif

#endif
