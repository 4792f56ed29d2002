/* hist.h -- the one histogram type for latency percentiles.
 *
 * A log-bucketed histogram in the manner of DDSketch: bucket i holds values
 * in (g^(i-1), g^i] with g = (1+a)/(1-a), and a quantile is reported as the
 * bucket's midpoint 2 g^i / (g+1), so any quantile of positive values in
 * [HIST_MIN, HIST_MAX] is within relative error a (HIST_REL_ERR, 1%) of the
 * exact sample quantile.  Values <= HIST_MIN land in a zero bucket and are
 * reported as 0; values above HIST_MAX are clamped (and counted).  The
 * buckets are fixed, so two histograms merge by adding counts, memory does
 * not grow with the number of samples (about 17 KiB each), and the exact
 * count, sum, min and max are kept beside the buckets. */
#ifndef LLM_HIST_H
#define LLM_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_REL_ERR 0.01
#define HIST_MIN 1e-9
#define HIST_MAX 1e9

struct hist;

/* Returns NULL when out of memory. */
struct hist *hist_create(void);
void hist_free(struct hist *h);
void hist_reset(struct hist *h);

/* Record one value (NaN is ignored). */
void hist_add(struct hist *h, double v);
/* Add every sample of src into dst. */
void hist_merge(struct hist *dst, const struct hist *src);

uint64_t hist_count(const struct hist *h);
double hist_sum(const struct hist *h);
double hist_mean(const struct hist *h); /* 0 when empty */
double hist_min(const struct hist *h);  /* 0 when empty */
double hist_max(const struct hist *h);  /* 0 when empty */
/* Values above HIST_MAX that were clamped. */
uint64_t hist_clamped(const struct hist *h);

/* The q-quantile (0 <= q <= 1) by the lower-rank convention: the smallest
 * recorded value x such that at least ceil(q*n) samples are <= x (q = 0 gives
 * the minimum).  Within HIST_REL_ERR of the exact value; 0 when empty;
 * NaN for a NaN q. */
double hist_quantile(const struct hist *h, double q);

/* Fraction of samples <= v (the empirical CDF at v, up to bucket width):
 * 0 below the minimum, 1 from the maximum on, NaN for a NaN v. */
double hist_cdf_at(const struct hist *h, double v);

/* Walk the non-empty buckets in increasing order: *idx starts at 0; each call
 * returns 1 and fills the bucket's representative value and count, or 0 at
 * the end. */
int hist_next_bucket(const struct hist *h, size_t *idx, double *value, uint64_t *count);

#endif
