/* kvcache.c -- the paged KV cache (see kvcache.h). */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "server/kvcache.h"

/* Floats in one layer's K (or V) array. */
static size_t kv_layer_floats(const struct kv_cache *c)
{
    return (size_t)c->n_blocks * c->block_tokens * c->kv_dim;
}

size_t kv_cache_block_bytes(int n_layers, int kv_dim, int block_tokens)
{
    return 2 * (size_t)n_layers * kv_dim * block_tokens * sizeof(float);
}

/* kv_cache_init and kv_cache_init_meta: with host K/V storage or without. */
static int kv_cache_create(struct kv_cache *c, int n_layers, int kv_dim, int block_tokens, int n_blocks,
                           int host_storage, struct err *e)
{
    size_t floats;

    memset(c, 0, sizeof *c);
    if (n_layers <= 0 || kv_dim <= 0 || block_tokens <= 0 || n_blocks <= 0)
        return err_set(e, ERR_INPUT, "KV cache: layers, width, block size and block count must be positive "
                       "(got %d, %d, %d, %d)", n_layers, kv_dim, block_tokens, n_blocks);
    c->n_layers = n_layers;
    c->kv_dim = kv_dim;
    c->block_tokens = block_tokens;
    c->n_blocks = n_blocks;
    if (host_storage) {
        floats = (size_t)n_layers * kv_layer_floats(c);
        c->k = calloc(floats, sizeof(float));
        c->v = calloc(floats, sizeof(float));
    }
    c->free_ids = malloc((size_t)n_blocks * sizeof *c->free_ids);
    if ((host_storage && (c->k == NULL || c->v == NULL)) || c->free_ids == NULL) {
        kv_cache_free(c);
        return err_set(e, ERR_SYSTEM, "KV cache: out of memory for %d blocks of %zu bytes", n_blocks,
                       kv_cache_block_bytes(n_layers, kv_dim, block_tokens));
    }
    /* Block 0 on top, so a fresh cache hands out 0, 1, 2 ... */
    for (int i = 0; i < n_blocks; i++)
        c->free_ids[i] = n_blocks - 1 - i;
    c->n_free = n_blocks;
    return 0;
}

int kv_cache_init(struct kv_cache *c, int n_layers, int kv_dim, int block_tokens, int n_blocks, struct err *e)
{
    return kv_cache_create(c, n_layers, kv_dim, block_tokens, n_blocks, 1, e);
}

int kv_cache_init_meta(struct kv_cache *c, int n_layers, int kv_dim, int block_tokens, int n_blocks,
                       struct err *e)
{
    return kv_cache_create(c, n_layers, kv_dim, block_tokens, n_blocks, 0, e);
}

void kv_cache_free(struct kv_cache *c)
{
    free(c->k);
    free(c->v);
    free(c->free_ids);
    memset(c, 0, sizeof *c);
}

int kv_cache_alloc_block(struct kv_cache *c)
{
    if (c->n_free == 0)
        return -1;
    return c->free_ids[--c->n_free];
}

void kv_cache_free_block(struct kv_cache *c, int id)
{
    assert(id >= 0 && id < c->n_blocks && c->n_free < c->n_blocks);
    c->free_ids[c->n_free++] = id;
}

int kv_cache_n_free(const struct kv_cache *c)
{
    return c->n_free;
}

double kv_cache_usage(const struct kv_cache *c)
{
    return c->n_blocks > 0 ? (double)(c->n_blocks - c->n_free) / c->n_blocks : 0.0;
}

int kv_cache_blocks_for(const struct kv_cache *c, int n_tokens)
{
    return n_tokens <= 0 ? 0 : (n_tokens + c->block_tokens - 1) / c->block_tokens;
}

void kv_seq_init(struct kv_seq *s)
{
    memset(s, 0, sizeof *s);
}

int kv_seq_reserve(struct kv_cache *c, struct kv_seq *s, int n_tokens)
{
    int need = kv_cache_blocks_for(c, n_tokens);

    if (need <= s->n_blocks)
        return 0;
    if (need - s->n_blocks > c->n_free)
        return -1;
    if (need > s->cap) {
        int cap = s->cap > 0 ? s->cap : 4;
        int32_t *b;

        while (cap < need)
            cap *= 2;
        b = realloc(s->blocks, (size_t)cap * sizeof *b);
        if (b == NULL)
            return -1;
        s->blocks = b;
        s->cap = cap;
    }
    while (s->n_blocks < need)
        s->blocks[s->n_blocks++] = kv_cache_alloc_block(c);
    return 0;
}

void kv_seq_release(struct kv_cache *c, struct kv_seq *s)
{
    /* Freed newest first, so the next allocation reuses the same ids. */
    while (s->n_blocks > 0)
        kv_cache_free_block(c, s->blocks[--s->n_blocks]);
}

void kv_seq_free(struct kv_cache *c, struct kv_seq *s)
{
    kv_seq_release(c, s);
    free(s->blocks);
    kv_seq_init(s);
}

int kv_seq_capacity(const struct kv_cache *c, const struct kv_seq *s)
{
    return s->n_blocks * c->block_tokens;
}

/* Offset in floats of position POS of S within one layer's array. */
static size_t kv_row_offset(const struct kv_cache *c, const struct kv_seq *s, int pos)
{
    assert(pos >= 0 && pos < kv_seq_capacity(c, s));
    return ((size_t)s->blocks[pos / c->block_tokens] * c->block_tokens + pos % c->block_tokens) * c->kv_dim;
}

float *kv_seq_k(struct kv_cache *c, const struct kv_seq *s, int layer, int pos)
{
    assert(c->k != NULL);
    return c->k + layer * kv_layer_floats(c) + kv_row_offset(c, s, pos);
}

float *kv_seq_v(struct kv_cache *c, const struct kv_seq *s, int layer, int pos)
{
    assert(c->v != NULL);
    return c->v + layer * kv_layer_floats(c) + kv_row_offset(c, s, pos);
}

void kv_seq_view(const struct kv_cache *c, const struct kv_seq *s, int layer, struct kn_kv_view *view)
{
    assert(c->k != NULL && c->v != NULL);
    view->k = c->k + layer * kv_layer_floats(c);
    view->v = c->v + layer * kv_layer_floats(c);
    view->pos_stride = c->kv_dim;
    view->block_size = c->block_tokens;
    view->blocks = s->blocks;
}
