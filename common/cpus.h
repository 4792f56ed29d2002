/* cpus.h -- CPU lists ("0-3,6", as taskset -c and /sys/.../cpulist write
 * them) for pinning threads. */
#ifndef LLM_CPUS_H
#define LLM_CPUS_H

#include <sched.h>

#include "common/err.h"

/* Parse TEXT, comma-separated CPU numbers and ranges "N-M" (N <= M), into
 * SET.  No spaces, no empty items, numbers below CPU_SETSIZE.  On error
 * returns -1 and sets e (ERR_INPUT) with a message that quotes the item but
 * names no option: callers prefix one. */
int cpus_parse(const char *text, cpu_set_t *set, struct err *e);

/* The CPUs this process may run on (sched_getaffinity) into ALLOWED;
 * returns how many (0 when the kernel does not say). */
int cpus_allowed(cpu_set_t *allowed);

#endif
