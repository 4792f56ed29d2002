/* attention.c -- scaled dot-product attention over a (paged) KV cache.
 *
 * Prefill (T causal queries) and decode (one query), each twice: a plain
 * reference (kn_*_ref, one score row per query, as llama2.c) and a fused
 * version that never forms the score matrix.  The fused versions share one
 * driver, att_rows_run(): a handful of query rows that use the same kv head
 * walk the keys in tiles small enough for L1/L2; each K/V tile is loaded once
 * and reused by every row, and each row keeps an online softmax (running max
 * m, running sum l, unnormalised output acc).  The inner loops -- dot
 * products, exponentials, weighted sums of V rows -- come in a portable C and
 * an AVX2/FMA flavour (attention_avx2.c, with the row-order decode walk),
 * picked at run time with kn_get_isa().
 *
 * Work split (OpenMP):
 *   prefill: items are (kv head, head block, query tile); the tiles nearest
 *            the end of the sequence see the most keys, so they go first and
 *            a dynamic schedule evens out the causal triangle.
 *   decode:  items are (block of kv heads, key chunk) (flash-decoding);
 *            the chunks' partial (m, l, acc) are combined by log-sum-exp
 *            rescaling.  The query heads of a group share every K/V row
 *            load, so each K/V byte is read from memory once per call.
 *            With AVX2 and 4 query heads per kv head, items are key chunks
 *            over all heads, walked row by row (see kn_attention_decode). */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attention_int.h"

static void check_shape(const struct kn_kv_view *kv, const struct kn_attn_shape *s)
{
    (void)kv;
    (void)s;
    assert(s->n_heads > 0 && s->n_kv_heads > 0 && s->head_dim > 0);
    assert(s->n_heads % s->n_kv_heads == 0);
    assert(kv->pos_stride >= s->n_kv_heads * s->head_dim);
    assert(kv->blocks == NULL || kv->block_size > 0);
}

/* ---- reference ---------------------------------------------------------------- */

/* out (head_dim) = softmax(q . K[0..n_pos) * scale) V for kv head G, with the
 * scores materialised in ATT (n_pos floats). */
static void attend_one_ref(float *out, const float *q, const struct kn_kv_view *kv, int n_pos, int g, int head_dim,
                           float scale, float *att)
{
    float max = -INFINITY;
    for (int p = 0; p < n_pos; p++) {
        const float *k = kv_at(kv, kv->k, p, g, head_dim);
        float score = 0.0f;
        for (int i = 0; i < head_dim; i++)
            score += q[i] * k[i];
        att[p] = score * scale;
        if (att[p] > max)
            max = att[p];
    }
    float sum = 0.0f;
    for (int p = 0; p < n_pos; p++) {
        att[p] = expf(att[p] - max);
        sum += att[p];
    }
    memset(out, 0, (size_t)head_dim * sizeof *out);
    for (int p = 0; p < n_pos; p++) {
        const float *v = kv_at(kv, kv->v, p, g, head_dim);
        float a = att[p] / sum;
        for (int i = 0; i < head_dim; i++)
            out[i] += a * v[i];
    }
}

/* The plain prefill: one score row per (query, head).  Allocates that row;
 * aborts if it cannot. */
void kn_attention_prefill_ref(float *out, const float *q, const struct kn_kv_view *kv, int T, int pos0,
                              const struct kn_attn_shape *s)
{
    check_shape(kv, s);
    int hd = s->head_dim, group = s->n_heads / s->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    float *att = malloc((size_t)(pos0 + T) * sizeof *att);
    if (att == NULL)
        abort();
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < s->n_heads; h++) {
            size_t off = ((size_t)t * s->n_heads + h) * hd;
            attend_one_ref(out + off, q + off, kv, pos0 + t + 1, h / group, hd, scale, att);
        }
    }
    free(att);
}

/* The plain decode: one score row per head.  Allocates that row; aborts if it
 * cannot. */
void kn_attention_decode_ref(float *out, const float *q, const struct kn_kv_view *kv, int S,
                             const struct kn_attn_shape *s)
{
    check_shape(kv, s);
    assert(S >= 1);
    int hd = s->head_dim, group = s->n_heads / s->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    float *att = malloc((size_t)S * sizeof *att);
    if (att == NULL)
        abort();
    for (int h = 0; h < s->n_heads; h++)
        attend_one_ref(out + (size_t)h * hd, q + (size_t)h * hd, kv, S, h / group, hd, scale, att);
    free(att);
}

/* ---- inner loops: portable C ------------------------------------------------------ */

/* (struct att_isa: see attention_int.h) */
static void att_scores_c(float *sc, int ld, const float *const *q, int nr, const float *const *kp, int n,
                         int head_dim, float scale)
{
    for (int r = 0; r < nr; r++) {
        for (int j = 0; j < n; j++) {
            const float *k = kp[j];
            float dot = 0.0f;
            for (int i = 0; i < head_dim; i++)
                dot += q[r][i] * k[i];
            sc[r * ld + j] = dot * scale;
        }
    }
}

static float att_exp_c(float *sc, int n, float max)
{
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
        sc[j] = expf(sc[j] - max);
        sum += sc[j];
    }
    return sum;
}

static void att_accumulate_c(float *const *acc, const float *alpha, const float *p, int ld, int nr,
                             const float *const *vp, int n, int head_dim)
{
    for (int r = 0; r < nr; r++) {
        float *o = acc[r];
        if (alpha[r] != 1.0f)
            for (int i = 0; i < head_dim; i++)
                o[i] *= alpha[r];
        for (int j = 0; j < n; j++) {
            const float *v = vp[j];
            float pj = p[r * ld + j];
            for (int i = 0; i < head_dim; i++)
                o[i] += pj * v[i];
        }
    }
}

const struct att_isa kn_att_isa_c = {
    .scores = att_scores_c,
    .exp = att_exp_c,
    .accumulate = att_accumulate_c,
};

static const struct att_isa *att_isa_pick(void)
{
#ifdef KN_ATT_X86
    if (kn_get_isa() >= KN_ISA_AVX2)
        return &kn_att_isa_avx2;
#endif
    return &kn_att_isa_c;
}

/* ---- the fused driver ------------------------------------------------------------- */

/* The query rows one work item carries through the online softmax: up to
 * KN_ATT_MAX_ROWS (position, head) pairs that all use one kv head. */
struct att_rows {
    int n;
    const float *q[KN_ATT_MAX_ROWS]; /* (head_dim) */
    float *acc[KN_ATT_MAX_ROWS];     /* (head_dim): sum of exp(score - m) * v so far */
    int last[KN_ATT_MAX_ROWS];       /* the last key position the row sees (causal) */
    float m[KN_ATT_MAX_ROWS];        /* running max of the scaled scores */
    float l[KN_ATT_MAX_ROWS];        /* running sum of exp(score - m) */
};

/* Start row I: acc zeroed, nothing seen yet. */
static void att_row_init(struct att_rows *r, int i, const float *q, float *acc, int last, int head_dim)
{
    r->q[i] = q;
    r->acc[i] = acc;
    r->last[i] = last;
    r->m[i] = -INFINITY;
    r->l[i] = 0.0f;
    memset(acc, 0, (size_t)head_dim * sizeof *acc);
}

/* Keys per tile: a K tile and a V tile of kv head together about 64 KiB. */
static int att_tile(int head_dim)
{
    int tile = KN_ATT_TILE_FLOATS / head_dim;
    if (tile > KN_ATT_MAX_TILE)
        tile = KN_ATT_MAX_TILE;
    if (tile < 8)
        tile = 8;
    return tile;
}

/* Feed keys [j_begin, j_end) of kv head G to every row of R (a row ignores
 * the keys past its r->last).  Tiles of TILE keys: the block table is looked
 * up once per key; the rows go through a tile in groups of four, so each K
 * and V row of the tile is loaded once per group.  Rows are ordered by
 * r->last, and every row must see at least one key of the first tile.
 * Causal masking costs only on the diagonal tiles: a group stops at the last
 * key its last row sees, and the scores past a row's own last key are -inf. */
static void att_rows_run(struct att_rows *r, const struct kn_kv_view *kv, int g, int head_dim, float scale,
                         int j_begin, int j_end, int tile, const struct att_isa *isa)
{
    const float *kp[KN_ATT_MAX_TILE], *vp[KN_ATT_MAX_TILE];
    float sc[KN_ATT_MAX_ROWS * KN_ATT_MAX_TILE];
    float alpha[KN_ATT_MAX_ROWS];
    int ld = tile;

    assert(tile <= KN_ATT_MAX_TILE);
    for (int j0 = j_begin; j0 < j_end; j0 += tile) {
        int n = j_end - j0 < tile ? j_end - j0 : tile;
        for (int j = 0; j < n; j++) {
            size_t off = kv_row(kv, j0 + j) * (size_t)kv->pos_stride + (size_t)g * (size_t)head_dim;
            kp[j] = kv->k + off;
            vp[j] = kv->v + off;
        }
        int first = 0; /* rows before it see none of this tile */
        while (first < r->n && r->last[first] < j0)
            first++;
        for (int i0 = first; i0 < r->n; i0 += 4) {
            int nr = r->n - i0 < 4 ? r->n - i0 : 4;
            int nq = r->last[i0 + nr - 1] - j0 + 1;
            if (nq > n)
                nq = n;
            float *s = sc + (size_t)i0 * ld;
            isa->scores(s, ld, r->q + i0, nr, kp, nq, head_dim, scale);
            for (int i = i0; i < i0 + nr; i++, s += ld) {
                for (int j = r->last[i] - j0 + 1; j < nq; j++)
                    s[j] = -INFINITY;
                float m_new = r->m[i];
                for (int j = 0; j < nq; j++)
                    if (s[j] > m_new)
                        m_new = s[j];
                /* exp(-inf) = 0 on a row's first tile, where acc is still 0 */
                alpha[i] = m_new == r->m[i] ? 1.0f : expf(r->m[i] - m_new);
                r->l[i] = r->l[i] * alpha[i] + isa->exp(s, nq, m_new);
                r->m[i] = m_new;
            }
            isa->accumulate(r->acc + i0, alpha + i0, sc + (size_t)i0 * ld, ld, nr, vp, nq, head_dim);
        }
    }
}

/* out = acc / l for every row (the softmax's denominator, applied once). */
static void att_rows_finish(struct att_rows *r, int head_dim)
{
    for (int i = 0; i < r->n; i++) {
        float inv = 1.0f / r->l[i];
        float *acc = r->acc[i];
        for (int d = 0; d < head_dim; d++)
            acc[d] *= inv;
    }
}

/* ---- prefill ------------------------------------------------------------------------ */

/* Fused causal prefill.  A work item is BQ consecutive query positions times
 * HB query heads of one kv head (BQ * HB <= 16 rows: 4 positions x 4 heads
 * for 32/8 heads), run over keys 0 .. pos0 + (its last position) in tiles of
 * att_tile() keys; out rows serve as the accumulators. */
void kn_attention_prefill(float *out, const float *q, const struct kn_kv_view *kv, int T, int pos0,
                          const struct kn_attn_shape *s)
{
    check_shape(kv, s);
    assert(T >= 0 && pos0 >= 0);
    if (T == 0)
        return;
    const struct att_isa *isa = att_isa_pick();
    int hd = s->head_dim, n_heads = s->n_heads, n_kv = s->n_kv_heads;
    int group = n_heads / n_kv;
    int hb = group < KN_ATT_MAX_ROWS ? group : KN_ATT_MAX_ROWS; /* heads per item */
    int n_hblocks = (group + hb - 1) / hb;
    int bq = KN_ATT_MAX_ROWS / hb; /* positions per item */
    int n_qtiles = (T + bq - 1) / bq;
    int per_qtile = n_kv * n_hblocks;
    int items = n_qtiles * per_qtile;
    int tile = att_tile(hd);
    float scale = 1.0f / sqrtf((float)hd);
    int nt = kn_get_threads();

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1 && items > 1)
    for (int it = 0; it < items; it++) {
        int qt = n_qtiles - 1 - it / per_qtile; /* the longest rows first */
        int g = it % per_qtile / n_hblocks;
        int h_first = g * group + it % n_hblocks * hb;
        int h_end = h_first + hb < (g + 1) * group ? h_first + hb : (g + 1) * group;
        int t_first = qt * bq;
        int t_end = t_first + bq < T ? t_first + bq : T;
        struct att_rows r;
        r.n = 0;
        for (int t = t_first; t < t_end; t++) {
            for (int h = h_first; h < h_end; h++) {
                size_t off = ((size_t)t * n_heads + h) * hd;
                att_row_init(&r, r.n++, q + off, out + off, pos0 + t, hd);
            }
        }
        att_rows_run(&r, kv, g, hd, scale, 0, pos0 + t_end, tile, isa);
        att_rows_finish(&r, hd);
    }
}

/* ---- decode ------------------------------------------------------------------------- */

/* Key chunks: about 4 work items per thread (a multiple of the threads when
 * there are enough), none shorter than KN_ATT_MIN_CHUNK keys, and their
 * partials must fit the stack scratch ((n_heads, head_dim + 2) floats per
 * chunk). */
static int att_decode_chunks(int S, int kv_blocks, int n_heads, int head_dim, int nt)
{
    int n = (4 * nt + kv_blocks - 1) / kv_blocks;
    int by_len = S / KN_ATT_MIN_CHUNK;
    int by_room = KN_ATT_SCRATCH / (n_heads * (head_dim + 2));
    if (n > by_len)
        n = by_len;
    if (n > by_room)
        n = by_room;
    if (n * kv_blocks > nt && n > nt)
        n -= n % nt;
    return n < 1 ? 1 : n;
}

/* Keys per decode tile: the K rows of a tile (the span of kv heads an item
 * reads) fill KN_ATT_DECODE_TILE_FLOATS (64 KiB), as do the V rows. */
static int att_decode_tile(int span_floats)
{
    int tile = KN_ATT_DECODE_TILE_FLOATS / span_floats;
    return tile < KN_ATT_MAX_TILE ? tile : KN_ATT_MAX_TILE;
}

/* Flash-decoding.  With AVX2 and head_dim a multiple of 8 (32/8/128,
 * 12/12/64 and the like, any grouping), a work item is one chunk of the
 * keys for every head, walked in row order by kn_att_decode_rows_avx2(): reading
 * each K and V row (all kv heads, 4 KiB for 8 x 128) front to back, tiles
 * of up to 512 keys as two streams each, instead of copying tiles.  The
 * row walk measured about +35% (1 thread) over the copying walk below, and
 * about 1.7x on an L3-resident cache, where the copy cost most; the long
 * two-stream tiles another +20% over 16-key tiles read as one stream
 * (single thread, minimum of 15 runs, 4096 keys).  Otherwise: a work item is one chunk of the S keys for a block of
 * consecutive kv heads (at most KN_ATT_MAX_SETS sets of query rows; a set
 * is up to 16 query heads of one kv head).  The item walks its chunk tile by
 * tile: it copies the tile's K and V rows, the span of its kv heads, into
 * stack buffers (sequential reads, which the hardware prefetchers stream
 * far better than one 4 KiB-strided head slice after another; software
 * prefetching the strided slices did not help) and runs every set over the
 * copy.  The heads of a set share
 * every K/V load: each K/V byte is read from memory once per call.  With one
 * chunk the rows accumulate straight into out; with several, each chunk
 * leaves (m, l, acc) per head in a stack scratch (chunk, n_heads, 2 +
 * head_dim) and the chunks are merged:
 *   M = max_c m_c,  out = sum_c exp(m_c - M) acc_c / sum_c exp(m_c - M) l_c.
 * Stack: the scratch (128 KiB) in the caller, the tile copies (128 KiB) in
 * each thread. */
void kn_attention_decode(float *out, const float *q, const struct kn_kv_view *kv, int S,
                         const struct kn_attn_shape *s)
{
    check_shape(kv, s);
    assert(S >= 1);
    assert(s->head_dim <= KN_ATT_DECODE_TILE_FLOATS);
    const struct att_isa *isa = att_isa_pick();
    int hd = s->head_dim, n_heads = s->n_heads, n_kv = s->n_kv_heads;
    int group = n_heads / n_kv;
    int hb = group < KN_ATT_MAX_ROWS ? group : KN_ATT_MAX_ROWS;
    int n_hblocks = (group + hb - 1) / hb;
    assert(n_hblocks <= KN_ATT_MAX_SETS);
    /* kv heads per item: whole sets, and at least 16 keys per tile */
    int kv_per_item = KN_ATT_MAX_SETS / n_hblocks;
    while (kv_per_item > 1 && kv_per_item * hd * 16 > KN_ATT_DECODE_TILE_FLOATS)
        kv_per_item /= 2;
    if (kv_per_item > n_kv)
        kv_per_item = n_kv;
    int kv_blocks = (n_kv + kv_per_item - 1) / kv_per_item;
    int nt = kn_get_threads();
    int n_chunks = att_decode_chunks(S, kv_blocks, n_heads, hd, nt);
    int items = kv_blocks * n_chunks;
    float scale = 1.0f / sqrtf((float)hd);
    size_t slot = (size_t)hd + 2; /* m, l, acc[head_dim] */
    float part[KN_ATT_SCRATCH];
#ifdef KN_ATT_X86
    if (isa == &kn_att_isa_avx2 && hd % 8 == 0 && n_heads <= KN_ATT_ROW_HEADS) {
        int nc = att_decode_chunks(S, 1, n_heads, hd, nt);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1 && nc > 1)
        for (int c = 0; c < nc; c++) {
            float *acc[KN_ATT_ROW_HEADS], m[KN_ATT_ROW_HEADS], l[KN_ATT_ROW_HEADS];
            for (int h = 0; h < n_heads; h++)
                acc[h] = nc == 1 ? out + (size_t)h * hd : part + ((size_t)c * n_heads + h) * slot + 2;
            kn_att_decode_rows_avx2(acc, m, l, q, kv, (int)((long long)S * c / nc), (int)((long long)S * (c + 1) / nc), s,
                            scale);
            for (int h = 0; h < n_heads; h++) {
                if (nc == 1) {
                    float inv = 1.0f / l[h];
                    for (int d = 0; d < hd; d++)
                        acc[h][d] *= inv;
                    continue;
                }
                acc[h][-2] = m[h];
                acc[h][-1] = l[h];
            }
        }
        n_chunks = nc;
        goto merge;
    }
#endif

#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1 && items > 1)
    for (int it = 0; it < items; it++) {
        int c = it % n_chunks;
        int g_lo = it / n_chunks * kv_per_item;
        int g_hi = g_lo + kv_per_item < n_kv ? g_lo + kv_per_item : n_kv;
        int n_sets = (g_hi - g_lo) * n_hblocks;
        int j_begin = (int)((long long)S * c / n_chunks);
        int j_end = (int)((long long)S * (c + 1) / n_chunks);
        size_t span_off = (size_t)g_lo * hd, span_len = (size_t)(g_hi - g_lo) * hd;
        int tile = att_decode_tile((int)span_len);
        struct att_rows rows[KN_ATT_MAX_SETS];
        float pk[KN_ATT_DECODE_TILE_FLOATS], pv[KN_ATT_DECODE_TILE_FLOATS]; /* (tile, span) */
        struct kn_kv_view packed = {.k = pk, .v = pv, .pos_stride = (int)span_len};

        for (int set = 0; set < n_sets; set++) {
            struct att_rows *r = &rows[set];
            int g = g_lo + set / n_hblocks;
            int h_first = g * group + set % n_hblocks * hb;
            int h_end = h_first + hb < (g + 1) * group ? h_first + hb : (g + 1) * group;
            r->n = 0;
            for (int h = h_first; h < h_end; h++) {
                float *acc = n_chunks == 1 ? out + (size_t)h * hd : part + ((size_t)c * n_heads + h) * slot + 2;
                att_row_init(r, r->n++, q + (size_t)h * hd, acc, S - 1, hd);
            }
        }
        for (int j0 = j_begin; j0 < j_end; j0 += tile) {
            int n = j_end - j0 < tile ? j_end - j0 : tile;
            for (int j = 0; j < n; j++) {
                size_t row = kv_row(kv, j0 + j) * (size_t)kv->pos_stride + span_off;
                memcpy(pk + (size_t)j * span_len, kv->k + row, span_len * sizeof *pk);
                memcpy(pv + (size_t)j * span_len, kv->v + row, span_len * sizeof *pv);
            }
            for (int set = 0; set < n_sets; set++)
                att_rows_run(&rows[set], &packed, set / n_hblocks, hd, scale, 0, n, n, isa);
        }
        for (int set = 0; set < n_sets; set++) {
            struct att_rows *r = &rows[set];
            if (n_chunks == 1) {
                att_rows_finish(r, hd);
                continue;
            }
            for (int i = 0; i < r->n; i++) {
                r->acc[i][-2] = r->m[i];
                r->acc[i][-1] = r->l[i];
            }
        }
    }
#ifdef KN_ATT_X86
merge:
#endif
    if (n_chunks == 1)
        return;
    for (int h = 0; h < n_heads; h++) {
        float *o = out + (size_t)h * hd;
        float max = -INFINITY, l = 0.0f;
        for (int c = 0; c < n_chunks; c++) {
            float m = part[((size_t)c * n_heads + h) * slot];
            if (m > max)
                max = m;
        }
        memset(o, 0, (size_t)hd * sizeof *o);
        for (int c = 0; c < n_chunks; c++) {
            const float *p = part + ((size_t)c * n_heads + h) * slot;
            float w = expf(p[0] - max);
            l += w * p[1];
            for (int d = 0; d < hd; d++)
                o[d] += w * p[2 + d];
        }
        float inv = 1.0f / l;
        for (int d = 0; d < hd; d++)
            o[d] *= inv;
    }
}
