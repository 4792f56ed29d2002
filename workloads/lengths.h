/* lengths.h -- token-length distributions for generated requests.
 *
 * A distribution is read from a YAML mapping (see workloads/README.md):
 *   {kind: fixed, value: N}
 *   {kind: uniform, min: A, max: B}             integers, inclusive
 *   {kind: lognormal, median: M, sigma: S, min: A, max: B}   clamped
 *   {kind: empirical, trace: PATH, column: prompt|output, format: F}
 * or a plain number (fixed).  The empirical kind reads a trace file once
 * into a log-bucketed histogram (common/hist.h, 1% buckets), so memory is
 * bounded whatever the trace's length, and draws from it. */
#ifndef LLM_LENGTHS_H
#define LLM_LENGTHS_H

#include <stdint.h>

#include "common/conf.h"
#include "common/err.h"
#include "common/rng.h"

struct lengths;

/* Build the distribution described by node N of C (WHAT names it in
 * messages, e.g. "prompt_tokens").  N NULL means {kind: fixed, value:
 * DEFAULT_VALUE}.  A relative empirical PATH is relative to conf_dir(C).
 * NULL on error, located at the node ("FILE:LINE: KEY: ..."). */
struct lengths *lengths_open(const struct conf *c, const struct conf_node *n, const char *what,
                             uint32_t default_value, struct err *e);

/* One draw, using only R. */
uint32_t lengths_draw(const struct lengths *l, struct rng *r);

/* The distribution's kind ("fixed", "uniform", "lognormal", "empirical"). */
const char *lengths_kind(const struct lengths *l);

void lengths_free(struct lengths *l);

#endif
