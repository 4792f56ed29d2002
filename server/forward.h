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

/* Scratch for steps of up to MAX_TOKENS tokens in all over model M and cache
 * KV (whose shape must match M), on backend BE (NULL: "cpu").  NULL with E
 * set on failure. */
struct forward *forward_create(const struct model *m, struct kv_cache *kv, int max_tokens,
                               const struct kn_backend *be, struct err *e);
void forward_free(struct forward *f);
int forward_max_tokens(const struct forward *f);

/* Run one step over N_SEQS sequences (sum of n_tokens <= max_tokens, every
 * position below the model's seq_len, every token id in the vocabulary). */
void forward_batch(struct forward *f, const struct forward_seq *seqs, int n_seqs);

#endif
