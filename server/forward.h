/* forward.h -- the forward pass of a Llama-architecture model over a batch
 * of sequences, on the paged KV cache.
 *
 * One call runs one engine step: every sequence of the batch contributes
 * k >= 1 consecutive tokens (a chunk of its prompt, or the one token it
 * decodes), all the batch's tokens go through each weight matmul together
 * (one GEMM of T = sum k rows), and attention runs per sequence over its own
 * cache.  The keys and values of the new tokens are written into the cache;
 * the logits of a sequence's last token are computed when it asks for them.
 *
 * Not thread-safe: one forward object belongs to one thread (the engine's). */
#ifndef LLM_FORWARD_H
#define LLM_FORWARD_H

#include "common/err.h"
#include "kernels/kernels.h"
#include "server/kvcache.h"
#include "server/model.h"

/* One sequence's part of a step. */
struct forward_seq {
    const int *tokens;        /* n_tokens ids, at positions pos0 .. pos0 + n_tokens - 1 */
    int n_tokens;             /* >= 1 */
    int pos0;                 /* positions before it are in the cache already */
    const struct kv_seq *kv;  /* its block table: room for pos0 + n_tokens positions */
    float *logits;            /* vocab_size floats for the last token, or NULL: not needed */
};

struct forward;

/* The backend called NAME, for forward_create: "cpu" and "ref" (kernels.h's
 * kernels on the host), "cuda" (the whole pass on the device, forward_cuda.h:
 * only in a build with CUDA, with a device present), or "auto": "cuda" when
 * it is usable, else "cpu" (the choice and why go to the log, at info).
 * NULL: "cpu".  NULL with E set for an unknown name (ERR_INPUT) or cuda
 * unusable (ERR_INPUT in a build without CUDA, ERR_SYSTEM without a device),
 * saying why. */
const struct kn_backend *forward_backend(const char *name, struct err *e);
/* Whether BE keeps the KV cache on the device ("cuda"): the host cache is
 * then made with kv_cache_init_meta (block ids only), and the host K/V are
 * never read or written. */
int forward_backend_on_device(const struct kn_backend *be);

/* Scratch for steps of up to MAX_TOKENS tokens in all over model M and cache
 * KV (whose shape must match M), on backend BE (NULL: "cpu"; "cuda": the
 * model is uploaded and a device KV cache of KV's shape allocated here).
 * NULL with E set on failure. */
struct forward *forward_create(const struct model *m, struct kv_cache *kv, int max_tokens,
                               const struct kn_backend *be, struct err *e);
void forward_free(struct forward *f);
int forward_max_tokens(const struct forward *f);

/* Run one step over N_SEQS sequences (sum of n_tokens <= max_tokens, every
 * position below the model's seq_len, every token id in the vocabulary).
 * Returns 0, or -1 with E set when the step failed: only the cuda backend
 * fails (a device error, ERR_SYSTEM; or a step breaking the rules above,
 * ERR_INPUT, which the host backends assert instead).  After a failure the
 * logits asked for are unspecified, and so are the cache rows the step
 * wrote: the engine ends the step's requests with an error. */
int forward_batch_checked(struct forward *f, const struct forward_seq *seqs, int n_seqs, struct err *e);
/* forward_batch_checked for callers that cannot fail (tests, benchmarks):
 * a failure is logged and the logits asked for are filled with NaN. */
void forward_batch(struct forward *f, const struct forward_seq *seqs, int n_seqs);

#endif
