/* cpus.c -- CPU lists for pinning threads (see cpus.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "common/cpus.h"

/* One CPU number at *P (digits only), advancing *P; -1 when there is none or
 * it is CPU_SETSIZE or more. */
static long cpus_number(const char **p)
{
    long v = 0;

    if (!isdigit((unsigned char)**p))
        return -1;
    while (isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        if (v >= CPU_SETSIZE)
            return -1;
        (*p)++;
    }
    return v;
}

int cpus_parse(const char *text, cpu_set_t *set, struct err *e)
{
    const char *p = text;

    CPU_ZERO(set);
    if (*p == '\0')
        return err_set(e, ERR_INPUT, "empty CPU list (expected e.g. 0-3,6)");
    for (;;) {
        const char *item = p;
        long lo = cpus_number(&p), hi = lo;

        if (lo >= 0 && *p == '-') {
            p++;
            hi = cpus_number(&p);
        }
        if (lo < 0 || hi < 0 || (*p != ',' && *p != '\0')) {
            int n = 0;
            while (item[n] != '\0' && item[n] != ',' && n < 32)
                n++;
            if (item == text && item[n] == '\0')
                return err_set(e, ERR_INPUT, "'%.32s': not a CPU number or range N-M below %d", text, CPU_SETSIZE);
            return err_set(e, ERR_INPUT, "'%.*s' in '%.64s': not a CPU number or range N-M below %d", n, item, text,
                           CPU_SETSIZE);
        }
        if (hi < lo)
            return err_set(e, ERR_INPUT, "'%ld-%ld'%s%.64s%s: the range runs backwards", lo, hi,
                           item == text && *p == '\0' ? "" : " in '", item == text && *p == '\0' ? "" : text,
                           item == text && *p == '\0' ? "" : "'");
        for (long c = lo; c <= hi; c++)
            CPU_SET((int)c, set);
        if (*p == '\0')
            return 0;
        p++; /* the comma: an item must follow */
    }
}

int cpus_allowed(cpu_set_t *allowed)
{
    CPU_ZERO(allowed);
    if (sched_getaffinity(0, sizeof *allowed, allowed) != 0)
        return 0;
    return CPU_COUNT(allowed);
}
