/* attention_int.h -- internal to kernels/: what attention.c (the drivers:
 * reference, prefill, decode) and attention_avx2.c (the AVX2 + FMA inner
 * loops and the row-order decode walk) share. */
#ifndef LLM_ATTENTION_INT_H
#define LLM_ATTENTION_INT_H

#include <stddef.h>

#include "kernels/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define KN_ATT_X86 1
#endif

/* The fused driver and the copying decode walk (attention.c). */
enum {
    KN_ATT_MAX_ROWS = 16,     /* query rows (position, head) per work item */
    KN_ATT_MAX_TILE = 256,    /* keys per K/V tile */
    KN_ATT_TILE_FLOATS = 8192, /* a K tile plus a V tile: 64 KiB */
    KN_ATT_MIN_CHUNK = 256,   /* decode: fewest keys worth a split of their own */
    KN_ATT_SCRATCH = 32768,   /* decode: floats of partial results on the stack (128 KiB) */
    KN_ATT_MAX_SETS = 8,      /* decode: row sets (a kv head's query heads) per work item */
    KN_ATT_DECODE_TILE_FLOATS = 16384, /* decode: a tile's K rows, 64 KiB (and as much V) */
};

/* The row-order decode walk (attention_avx2.c). */
enum {
    KN_ATT_ROW_TILE = 512,   /* decode, row order: most keys per tile */
    KN_ATT_ROW_STREAMS = 2,  /* decode, row order: streams a tile is read as */
    KN_ATT_ROW_PREFETCH = 4, /* decode, row order: rows ahead each stream prefetches */
    KN_ATT_ROW_SC = 16384,   /* decode, row order: floats of scores per tile (64 KiB) */
    KN_ATT_ROW_HEADS = 256,  /* decode, row order: most query heads */
};

/* Row of the cache that holds position P (see struct kn_kv_view). */
static inline size_t kv_row(const struct kn_kv_view *kv, int p)
{
    if (kv->blocks == NULL)
        return (size_t)p;
    return (size_t)kv->blocks[p / kv->block_size] * (size_t)kv->block_size + (size_t)(p % kv->block_size);
}

/* K or V (BASE) of kv head G at position P; head_dim floats. */
static inline const float *kv_at(const struct kn_kv_view *kv, const float *base, int p, int g, int head_dim)
{
    return base + kv_row(kv, p) * (size_t)kv->pos_stride + (size_t)g * (size_t)head_dim;
}

/* The three inner loops of a tile, per instruction set, for a group of
 * NR <= 4 query rows (row r: q[r], acc[r], scores at sc + r*ld):
 *   scores:     sc[r][j] = (q[r] . kp[j]) * scale, j < n; all (head_dim).
 *   exp:        sc[j] = exp(sc[j] - max), j < n, for one row (every
 *               sc[j] <= max; -inf gives 0); returns their sum.
 *   accumulate: acc[r] = acc[r] * alpha[r] + sum_j p[r][j] * vp[j], j < n,
 *               with p[r] at p + r*ld; all (head_dim).
 * Each K and V row is loaded once per group, so the rows of a group share
 * every load (the cache's rows are often 4 KiB apart, which L1 cannot hold
 * many of). */
struct att_isa {
    void (*scores)(float *sc, int ld, const float *const *q, int nr, const float *const *kp, int n, int head_dim,
                   float scale);
    float (*exp)(float *sc, int n, float max);
    void (*accumulate)(float *const *acc, const float *alpha, const float *p, int ld, int nr,
                       const float *const *vp, int n, int head_dim);
};

/* The portable C loops (attention.c). */
extern const struct att_isa kn_att_isa_c;

#ifdef KN_ATT_X86
/* The AVX2 + FMA loops (attention_avx2.c); only on CPUs with AVX2 and FMA. */
extern const struct att_isa kn_att_isa_avx2;

/* Decode in row order over keys [j_begin, j_end) for every head of S
 * (head_dim % 8 == 0, n_heads <= KN_ATT_ROW_HEADS), each K and V row read
 * in place: unnormalised outputs into ACC[h], running max and sum into M
 * and L (attention_avx2.c; AVX2 and FMA only). */
void kn_att_decode_rows_avx2(float *const *acc, float *m, float *l, const float *q, const struct kn_kv_view *kv,
                             int j_begin, int j_end, const struct kn_attn_shape *s, float scale);
#endif

#endif
