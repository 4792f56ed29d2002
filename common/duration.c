/* duration.c -- see duration.h. */
#include "common/duration.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct duration_unit {
    const char *name;
    double seconds;
};

/* Longest names first so "ms" is not read as "m" followed by "s". */
static const struct duration_unit duration_units[] = {
    {"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3}, {"s", 1.0},
    {"m", 60.0},  {"h", 3600.0}, {"d", 86400.0}, {"w", 604800.0},
};

int duration_parse(const char *text, double *out_s, struct err *e)
{
    const char *p = text;
    double total = 0.0;
    int terms = 0;

    if (text == NULL || *text == '\0')
        return err_set(e, ERR_INPUT, "empty duration");
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '-')
        return err_set(e, ERR_INPUT, "negative duration '%s'", text);
    while (*p != '\0' && !isspace((unsigned char)*p)) {
        char *end;
        double v;
        size_t i, best = 0, best_len = 0;

        if (!isdigit((unsigned char)*p) && *p != '.')
            return err_set(e, ERR_INPUT, "invalid duration '%s' (expected e.g. 250ms, 30s, 5m, 1h30m, 2d)", text);
        errno = 0;
        v = strtod(p, &end);
        if (end == p || errno == ERANGE || !isfinite(v))
            return err_set(e, ERR_INPUT, "invalid duration '%s'", text);
        /* strtod also reads hexadecimal ("0x10"): not a duration. */
        if (memchr(p, 'x', (size_t)(end - p)) || memchr(p, 'X', (size_t)(end - p)))
            return err_set(e, ERR_INPUT, "invalid duration '%s'", text);
        p = end;
        for (i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
            size_t n = strlen(duration_units[i].name);
            if (strncmp(p, duration_units[i].name, n) == 0 && n > best_len) {
                best = i;
                best_len = n;
            }
        }
        if (best_len == 0) {
            /* A bare number is seconds, but only as the whole text. */
            if (terms == 0 && (*p == '\0' || isspace((unsigned char)*p))) {
                total = v;
                terms++;
                break;
            }
            return err_set(e, ERR_INPUT, "invalid duration '%s': unknown unit at '%s'", text, p);
        }
        p += best_len;
        total += v * duration_units[best].seconds;
        terms++;
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p != '\0' || terms == 0)
        return err_set(e, ERR_INPUT, "invalid duration '%s'", text);
    if (!isfinite(total))
        return err_set(e, ERR_INPUT, "duration '%s' is too large", text);
    *out_s = total;
    return 0;
}

void duration_format(double s, char *buf, size_t len)
{
    if (!isfinite(s)) {
        snprintf(buf, len, "%s", s > 0 ? "inf" : "nan");
    } else if (s < 0) {
        snprintf(buf, len, "-%gs", -s);
    } else if (s < 1e-3) {
        snprintf(buf, len, "%.3gus", s * 1e6);
    } else if (s < 1.0) {
        snprintf(buf, len, "%.3gms", s * 1e3);
    } else if (s < 60.0) {
        snprintf(buf, len, "%.3gs", s);
    } else if (s < 3600.0) {
        long sec = lround(s);
        if (sec % 60)
            snprintf(buf, len, "%ldm%lds", sec / 60, sec % 60);
        else
            snprintf(buf, len, "%ldm", sec / 60);
    } else if (s < 86400.0 * 2) {
        long min = lround(s / 60.0);
        if (min % 60)
            snprintf(buf, len, "%ldh%ldm", min / 60, min % 60);
        else
            snprintf(buf, len, "%ldh", min / 60);
    } else {
        snprintf(buf, len, "%.3gd", s / 86400.0);
    }
}
