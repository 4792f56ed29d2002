/* metrics.h -- a small Prometheus registry: counters, gauges and histograms
 * with labels, and the text exposition format (version 0.0.4).
 *
 * A family is declared once with its name, help, type and label names; a
 * series is picked by label values at update time (created on first use).
 * Histograms keep their samples in the tree's one histogram type
 * (common/hist.h) and expose cumulative `_bucket{le=...}` counts at the
 * family's bucket bounds, then `_sum` and `_count`.
 *
 * Thread-safety: every function may be called from any thread (one mutex
 * per registry; updates are a lookup and an add). */
#ifndef LLM_METRICS_H
#define LLM_METRICS_H

#include <stddef.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

#define METRIC_MAX_LABELS 4

struct metrics;
struct metric_family;

/* NULL when out of memory. */
struct metrics *metrics_create(void);
void metrics_free(struct metrics *r);

/* Declare a family.  NAME must be a valid Prometheus name (a counter's ends
 * in _total); LABELS is a NULL-terminated list of label names (NULL: none);
 * BOUNDS (histograms only) are N_BOUNDS increasing upper bounds, copied.
 * Returns NULL on a bad name, too many labels, or out of memory. */
struct metric_family *metrics_family(struct metrics *r, const char *name, const char *help, enum metric_type type,
                                     const char *const *labels, const double *bounds, int n_bounds);

/* Update the series with label values VALUES (one per label name; NULL when
 * the family has none).  Counters: add V (>= 0).  Gauges: set V or add V.
 * Histograms: record V. */
void metric_inc(struct metric_family *f, const char *const *values, double v);
void metric_set(struct metric_family *f, const char *const *values, double v);
void metric_observe(struct metric_family *f, const char *const *values, double v);

/* The current value of a counter or gauge series (0 if it does not exist);
 * for a histogram, its count. */
double metric_get(struct metric_family *f, const char *const *values);

/* Write the whole registry in the text format into a new NUL-terminated
 * buffer (*OUT, *LEN; free() it).  Returns 0, or -1 when out of memory. */
int metrics_expose(struct metrics *r, char **out, size_t *len);

/* Standard bucket bounds, in seconds, for latencies and for batch sizes. */
extern const double metrics_latency_bounds_s[];
extern const int metrics_n_latency_bounds;
extern const double metrics_batch_bounds[];
extern const int metrics_n_batch_bounds;

#endif
