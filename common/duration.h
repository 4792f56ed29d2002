/* duration.h -- the one duration parser.
 *
 * Accepts a plain number of seconds ("90", "0.25") or a sequence of
 * number+unit terms with no sign: "250ms", "30s", "5m", "1h30m", "2d",
 * "1.5h", "100us".  Units: ns, us, ms, s, m, h, d, w.  Negative values,
 * empty strings, unknown units, repeated garbage and values that overflow
 * are refused. */
#ifndef LLM_DURATION_H
#define LLM_DURATION_H

#include <stddef.h>

#include "common/err.h"

/* Parse TEXT into seconds.  On error returns -1 and sets e (ERR_INPUT) with a
 * message that quotes TEXT but names no location: callers prefix one. */
int duration_parse(const char *text, double *out_s, struct err *e);

/* Write a short human form of SECONDS ("1h30m", "250ms", "2.5s") into buf. */
void duration_format(double seconds, char *buf, size_t len);

#endif
