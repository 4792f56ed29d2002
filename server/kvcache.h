/* kvcache.h -- the paged KV cache: fixed-size blocks of token positions, a
 * free list, and per-sequence block tables.
 *
 * One block holds BLOCK_TOKENS positions of keys and values for every layer:
 * a block id indexes the same rows in each layer's K and V arrays.  Layer l's
 * K array is (n_blocks * block_tokens, kv_dim) floats, row-major, so a
 * sequence's keys for one layer are reached through kn_kv_view (block table,
 * block_size, pos_stride = kv_dim) exactly as the attention kernels read them.
 *
 * Not thread-safe: the engine thread owns the cache. */
#ifndef LLM_KVCACHE_H
#define LLM_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "kernels/kernels.h"

struct kv_cache {
    int n_layers;
    int kv_dim;          /* n_kv_heads * head_dim floats per position per layer, for K and for V */
    int block_tokens;    /* positions per block */
    int n_blocks;
    float *k;            /* n_layers x (n_blocks * block_tokens, kv_dim); NULL without host storage */
    float *v;
    int32_t *free_ids;   /* stack of free block ids; the top is free_ids[n_free - 1] */
    int n_free;
};

/* A sequence's block table: blocks[i] holds positions i*block_tokens ..
 * (i+1)*block_tokens - 1. */
struct kv_seq {
    int32_t *blocks;
    int n_blocks;
    int cap;
};

/* Bytes one block takes (K and V, all layers). */
size_t kv_cache_block_bytes(int n_layers, int kv_dim, int block_tokens);

/* Create a cache of N_BLOCKS blocks, all free.  Returns 0, or -1 with E set
 * (ERR_INPUT for a non-positive size, ERR_SYSTEM when memory runs out). */
int kv_cache_init(struct kv_cache *c, int n_layers, int kv_dim, int block_tokens, int n_blocks, struct err *e);
/* The same cache without host K/V storage (k and v NULL): only the block
 * bookkeeping, for a forward pass that keeps the keys and values elsewhere
 * in this very layout (the CUDA one, on the device).  kv_seq_k, kv_seq_v
 * and kv_seq_view must not be called on it. */
int kv_cache_init_meta(struct kv_cache *c, int n_layers, int kv_dim, int block_tokens, int n_blocks,
                       struct err *e);
void kv_cache_free(struct kv_cache *c);

/* Take a free block: its id, or -1 when none is left. */
int kv_cache_alloc_block(struct kv_cache *c);
/* Return block ID to the free list. */
void kv_cache_free_block(struct kv_cache *c, int id);
int kv_cache_n_free(const struct kv_cache *c);
/* Fraction of blocks in use, 0..1. */
double kv_cache_usage(const struct kv_cache *c);

/* Blocks needed to hold N_TOKENS positions. */
int kv_cache_blocks_for(const struct kv_cache *c, int n_tokens);

void kv_seq_init(struct kv_seq *s);
/* Grow S's table so it holds N_TOKENS positions.  All or nothing: returns 0,
 * or -1 (nothing allocated) when the free blocks do not suffice or memory
 * for the table runs out. */
int kv_seq_reserve(struct kv_cache *c, struct kv_seq *s, int n_tokens);
/* Give every block of S back and empty its table (the table's memory is kept
 * for reuse until kv_seq_free). */
void kv_seq_release(struct kv_cache *c, struct kv_seq *s);
/* Release and free the table. */
void kv_seq_free(struct kv_cache *c, struct kv_seq *s);
/* Positions S can hold without growing. */
int kv_seq_capacity(const struct kv_cache *c, const struct kv_seq *s);

/* The K and V rows (kv_dim floats each) of position POS of S in LAYER; POS
 * must be below kv_seq_capacity. */
float *kv_seq_k(struct kv_cache *c, const struct kv_seq *s, int layer, int pos);
float *kv_seq_v(struct kv_cache *c, const struct kv_seq *s, int layer, int pos);
/* The attention kernels' view of S in LAYER. */
void kv_seq_view(const struct kv_cache *c, const struct kv_seq *s, int layer, struct kn_kv_view *view);

#endif
