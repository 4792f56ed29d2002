/* sampling.c -- drawing the next token from logits (see kernels.h).
 *
 * Built for vocabularies of 32k-128k tokens: nothing sorts the whole
 * vocabulary.  top-k selects its k tokens in linear time (quickselect) and
 * sorts only those; top-p first drops every token whose probability is below
 * (1 - top_p) / (n - 1) of the mass, as llama2.c does -- together they weigh
 * less than 1 - top_p, so the nucleus lies among the others -- and sorts only
 * what remains.  Ties are broken by the lower index everywhere, so the result
 * depends on the logits and the coin alone. */
#include "config.h"

#include <assert.h>
#include <stdlib.h>

#include "kernels/kernels.h"

/* Whether A comes before B in the order of the candidates: more likely
 * first, the lower index first among equals (a strict total order). */
static int sample_before(const struct kn_prob_index *a, const struct kn_prob_index *b)
{
    return a->prob > b->prob || (a->prob == b->prob && a->index < b->index);
}

/* qsort comparator for that order. */
static int sample_cmp(const void *pa, const void *pb)
{
    const struct kn_prob_index *a = pa, *b = pb;

    if (sample_before(a, b))
        return -1;
    return sample_before(b, a) ? 1 : 0;
}

/* Exchange *a and *b. */
static void sample_swap(struct kn_prob_index *a, struct kn_prob_index *b)
{
    struct kn_prob_index t = *a;

    *a = *b;
    *b = t;
}

/* Rearrange c[0..n) so that its first k entries (0 < k < n) are the k
 * first in the candidate order, in no particular order among themselves
 * (Hoare's quickselect with a median-of-three pivot; linear on average). */
static void sample_select(struct kn_prob_index *c, int n, int k)
{
    int lo = 0, hi = n - 1;

    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, i, store;
        struct kn_prob_index pivot;

        /* Order c[lo], c[mid], c[hi]; the median goes to hi as the pivot. */
        if (sample_before(&c[mid], &c[lo]))
            sample_swap(&c[mid], &c[lo]);
        if (sample_before(&c[hi], &c[lo]))
            sample_swap(&c[hi], &c[lo]);
        if (sample_before(&c[mid], &c[hi]))
            sample_swap(&c[mid], &c[hi]);
        pivot = c[hi];
        store = lo;
        for (i = lo; i < hi; i++)
            if (sample_before(&c[i], &pivot))
                sample_swap(&c[i], &c[store++]);
        sample_swap(&c[store], &c[hi]);
        /* c[lo..store) come before the pivot, now at store. */
        if (store == k - 1 || store == k)
            return;
        if (store < k)
            lo = store + 1;
        else
            hi = store - 1;
    }
}

/* Index drawn from probabilities p[0..n) (summing to about 1) with coin r in
 * [0, 1): the first i whose cumulative mass exceeds r.  When rounding leaves
 * r above the total, the last token with a non-zero probability. */
static int sample_all(const float *p, int n, float r)
{
    double cdf = 0;
    int i, last = 0;

    for (i = 0; i < n; i++) {
        if (p[i] > 0)
            last = i;
        cdf += p[i];
        if (r < cdf && p[i] > 0)
            return i;
    }
    return last;
}

/* Draw from the probabilities P (n) with top-k/top-p truncation; see
 * kn_sample().  top_k is in [1, n] and top_p < 1 unless k < n. */
static int sample_truncated(const float *p, int n, int k, float top_p, float coin,
                            struct kn_prob_index *c)
{
    double mass = 0, cum, r, cutoff;
    int i, m, last;

    for (i = 0; i < n; i++) {
        c[i].prob = p[i];
        c[i].index = i;
    }
    m = n;
    if (k < n) {
        sample_select(c, n, k);
        m = k;
    }
    for (i = 0; i < m; i++)
        mass += c[i].prob;
    if (top_p < 1 && m > 1) {
        /* Tokens below the cutoff weigh less than (1 - top_p) * mass in
         * all, as long as one token is not below it (when every token is,
         * all are kept). */
        int kept = 0;

        cutoff = (1.0 - top_p) * mass / (m - 1);
        for (i = 0; i < m; i++)
            kept += c[i].prob >= cutoff;
        if (kept > 0) {
            kept = 0;
            for (i = 0; i < m; i++)
                if (c[i].prob >= cutoff)
                    c[kept++] = c[i];
            m = kept;
        }
    }
    qsort(c, (size_t)m, sizeof(c[0]), sample_cmp);
    /* The nucleus: the shortest prefix whose mass reaches top_p of the kept
     * tokens' mass (all m when rounding keeps it from getting there). */
    last = m - 1;
    cum = 0;
    if (top_p < 1)
        for (i = 0; i < m; i++) {
            cum += c[i].prob;
            if (cum >= top_p * mass) {
                last = i;
                break;
            }
        }
    cum = 0;
    for (i = 0; i <= last; i++)
        cum += c[i].prob;
    r = coin * cum;
    cum = 0;
    for (i = 0; i <= last; i++) {
        cum += c[i].prob;
        if (r < cum)
            return c[i].index;
    }
    return c[last].index;
}

/* Draw a token from logits (n; overwritten with the probabilities):
 * argmax when temperature <= 0; else softmax(logits / temperature) cut to
 * the top_k most likely (top_k <= 0 or >= n: all), then to the smallest set
 * whose mass reaches top_p of theirs (top_p >= 1: all), renormalised and
 * drawn with coin in [0, 1).  scratch holds n entries.  Never returns an
 * index outside the kept set, whatever the coin. */
int kn_sample(float *logits, int n, float temperature, int top_k, float top_p, float coin,
              struct kn_prob_index *scratch)
{
    int i, k;

    assert(n > 0 && logits != NULL);
    if (!(temperature > 0))
        return kn_argmax(logits, n);
    for (i = 0; i < n; i++)
        logits[i] /= temperature;
    kn_softmax(logits, n);
    if (coin < 0)
        coin = 0;
    k = top_k <= 0 || top_k >= n ? n : top_k;
    if (k == n && !(top_p < 1))
        return sample_all(logits, n, coin);
    assert(scratch != NULL);
    return sample_truncated(logits, n, k, top_p, coin, scratch);
}
