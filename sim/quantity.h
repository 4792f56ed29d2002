/* quantity.h -- Kubernetes resource quantities ("500m", "100Mi", "1k", "2",
 * "1.5", "1e3") read the way k8s.io/apimachinery/pkg/api/resource does.
 *
 * A quantity is a signed decimal number with an optional suffix: a decimal
 * SI suffix (n u m "" k M G T P E), a binary suffix (Ki Mi Gi Ti Pi Ei) or a
 * decimal exponent (e3, E-2).  The controller works on milli-units
 * (Quantity.MilliValue(), which rounds up), so that is what we keep. */
#ifndef LLM_QUANTITY_H
#define LLM_QUANTITY_H

#include <stdint.h>

#include "common/err.h"

/* Parse TEXT.  *out_milli gets the value in milli-units rounded towards
 * +infinity (as MilliValue() does); *out_value (may be NULL) gets the value
 * as a double (as AsApproximateFloat64() does).  Returns 0, or -1 with an
 * ERR_INPUT message quoting TEXT and naming no location (callers prefix
 * one) for malformed text or a value beyond +-9.2e15. */
int quantity_parse(const char *text, int64_t *out_milli, double *out_value, struct err *e);

#endif
