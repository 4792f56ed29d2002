/* trace_azure.c -- the Azure LLM inference trace CSV (2023 and 2024).
 *
 *   TIMESTAMP,ContextTokens,GeneratedTokens
 *   2023-11-16 18:15:46.6805900,374,44
 *
 * TIMESTAMP is UTC with up to 9 fractional digits (7 in the published
 * files); an optional "Z" or "+HH:MM" offset is honoured.  Arrivals are
 * relative to the first row: the integer seconds are subtracted before
 * converting to double, so sub-microsecond precision survives. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/trace_format.h"

#define AZURE_HEADER "TIMESTAMP,ContextTokens,GeneratedTokens"

struct azure_state {
    bool have_first;
    int64_t first_s;   /* seconds since the epoch of the first row */
    int32_t first_ns;
};

static bool azure_detect(const char *first_line)
{
    return strncmp(first_line, AZURE_HEADER, strlen(AZURE_HEADER)) == 0;
}

static void *azure_open(struct linereader *lr, struct err *e)
{
    struct azure_state *st;
    char *line;
    char quoted[64];
    int rc = trace_next_line(lr, &line, e);

    if (rc < 0)
        return NULL;
    if (rc == 0 || strcmp(line, AZURE_HEADER) != 0) {
        trace_quote(rc == 0 ? "" : line, quoted, sizeof(quoted));
        err_at(e, linereader_path(lr), linereader_lineno(lr),
               "azure: expected the header '%s', got '%s'", AZURE_HEADER, quoted);
        return NULL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        err_set(e, ERR_SYSTEM, "out of memory");
    return st;
}

/* Read exactly N digits at *pp into *out; false if they are not there. */
static bool azure_digits(const char **pp, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        char ch = (*pp)[i];

        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *pp += n;
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (civil calendar). */
static int64_t azure_days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int azure_days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* Parse "YYYY-MM-DD HH:MM:SS[.f...][Z|+HH:MM|-HH:MM]" into seconds since the
 * epoch and nanoseconds; false when malformed. */
static bool azure_parse_time(const char *s, int64_t *out_s, int32_t *out_ns)
{
    int y, mo, d, h, mi, sec, ns = 0, digits = 0, oh, om;
    int64_t offset_s = 0;

    while (*s == ' ')
        s++;
    if (!azure_digits(&s, 4, &y) || *s++ != '-' || !azure_digits(&s, 2, &mo) || *s++ != '-' ||
        !azure_digits(&s, 2, &d) || (*s != ' ' && *s != 'T'))
        return false;
    s++;
    if (!azure_digits(&s, 2, &h) || *s++ != ':' || !azure_digits(&s, 2, &mi) || *s++ != ':' ||
        !azure_digits(&s, 2, &sec))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > azure_days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return false;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            if (digits < 9) {
                ns = ns * 10 + (*s - '0');
                digits++;
            }
            s++;
        }
        if (digits == 0)
            return false;
        while (digits++ < 9)
            ns *= 10;
    }
    if (*s == 'Z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s == '-' ? -1 : 1;

        s++;
        if (!azure_digits(&s, 2, &oh) || *s++ != ':' || !azure_digits(&s, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_s = sign * (int64_t)(oh * 3600 + om * 60);
    }
    while (*s == ' ')
        s++;
    if (*s != '\0')
        return false;
    *out_s = azure_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    *out_ns = ns;
    return true;
}

static int azure_next(void *state, struct linereader *lr, struct trace_request *out, struct err *e)
{
    struct azure_state *st = state;
    char *line, *fields[3];
    char quoted[64];
    int64_t t_s;
    int32_t t_ns;
    int n, rc;

    rc = trace_next_line(lr, &line, e);
    if (rc <= 0)
        return rc;
    n = trace_split_csv(line, fields, 3);
    if (n != 3)
        return trace_columns_error(lr, 3, n, AZURE_HEADER, e);
    if (fields[0][0] == '\0')
        return err_at(e, linereader_path(lr), linereader_lineno(lr), "TIMESTAMP: empty field");
    if (!azure_parse_time(fields[0], &t_s, &t_ns)) {
        trace_quote(fields[0], quoted, sizeof(quoted));
        return err_at(e, linereader_path(lr), linereader_lineno(lr),
                      "TIMESTAMP: expected 'YYYY-MM-DD HH:MM:SS.fffffff', got '%s'", quoted);
    }
    memset(out, 0, sizeof(*out));
    if (trace_parse_tokens(lr, "ContextTokens", fields[1], &out->prompt_tokens, e) < 0 ||
        trace_parse_tokens(lr, "GeneratedTokens", fields[2], &out->output_tokens, e) < 0)
        return -1;
    if (!st->have_first) {
        st->have_first = true;
        st->first_s = t_s;
        st->first_ns = t_ns;
    }
    out->arrival_s = (double)(t_s - st->first_s) + (double)(t_ns - st->first_ns) * 1e-9;
    return 1;
}

static void azure_close(void *state)
{
    free(state);
}

const struct trace_format trace_format_azure = {
    .name = "azure",
    .detect = azure_detect,
    .open = azure_open,
    .next = azure_next,
    .progress = NULL,
    .close = azure_close,
};
