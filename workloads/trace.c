/* trace.c -- the format table, file opening with detection, and what every
 * source shares: clamping of arrivals that go back in time, time_scale,
 * rate_scale, max_duration_s and limit.  See trace.h and trace_format.h. */
#include "config.h"

#include "workloads/trace.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/log.h"
#include "common/rng.h"
#include "workloads/trace_format.h"

/* The file formats, in detection order. */
static const struct trace_format *const trace_formats[] = {
    &trace_format_azure,
    &trace_format_burstgpt,
    &trace_format_mooncake,
    &trace_format_native,
    NULL,
};

struct trace_reader {
    const struct trace_format *fmt; /* NULL for an empty file */
    void *state;
    struct linereader *lr;          /* NULL for generators */
    struct trace_options opt;       /* with defaults filled in */
    struct rng thinning;
    bool have_last;
    double last_raw_s;              /* last arrival before scaling */
    uint64_t backwards;             /* arrivals clamped forward */
    double backwards_max_s;         /* the largest step back seen */
    struct trace_request pending;   /* a request being replicated */
    uint64_t pending_copies;
    uint64_t emitted;
    bool done;
};

int trace_options_check(const struct trace_options *opt, struct err *e)
{
    if (opt == NULL)
        return 0;
    if (!isfinite(opt->time_scale) || opt->time_scale < 0)
        return err_set(e, ERR_INPUT, "time_scale: expected a positive number, got %g", opt->time_scale);
    if (!isfinite(opt->rate_scale) || opt->rate_scale < 0 || opt->rate_scale > 1000)
        return err_set(e, ERR_INPUT, "rate_scale: expected a positive number up to 1000, got %g",
                       opt->rate_scale);
    if (!isfinite(opt->max_duration_s) || opt->max_duration_s < 0)
        return err_set(e, ERR_INPUT, "duration: expected a non-negative number of seconds, got %g",
                       opt->max_duration_s);
    return 0;
}

/* Take ownership of a source and wrap it; on error everything is released. */
struct trace_reader *trace_reader_wrap(const struct trace_format *fmt, void *state,
                                       struct linereader *lr, const struct trace_options *opt,
                                       struct err *e)
{
    struct trace_reader *r = NULL;

    if (trace_options_check(opt, e) < 0)
        goto err;
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        goto err;
    }
    r->fmt = fmt;
    r->state = state;
    r->lr = lr;
    if (opt != NULL)
        r->opt = *opt;
    if (r->opt.time_scale == 0)
        r->opt.time_scale = 1;
    if (r->opt.rate_scale == 0)
        r->opt.rate_scale = 1;
    r->opt.format = NULL; /* not owned */
    rng_init(&r->thinning, r->opt.seed, RNG_STREAM_THINNING);
    return r;
err:
    if (fmt != NULL && fmt->close != NULL && state != NULL)
        fmt->close(state);
    linereader_close(lr);
    return NULL;
}

/* The format called NAME, or NULL. */
static const struct trace_format *trace_format_lookup(const char *name)
{
    const struct trace_format *const *f;

    for (f = trace_formats; *f != NULL; f++)
        if (strcmp((*f)->name, name) == 0)
            return *f;
    return NULL;
}

bool trace_format_known(const char *name)
{
    return trace_format_lookup(name) != NULL;
}

void trace_format_list(char *buf, size_t len)
{
    const struct trace_format *const *f;
    size_t used = 0;

    buf[0] = '\0';
    for (f = trace_formats; *f != NULL && used < len; f++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", f == trace_formats ? "" : ", ", (*f)->name);
}

struct trace_reader *trace_open_file(const char *path, const struct trace_options *opt, struct err *e)
{
    const struct trace_format *fmt = NULL;
    const char *want = opt != NULL ? opt->format : NULL;
    struct linereader *lr = NULL;
    void *state = NULL;
    char names[256];
    char *line;
    int rc;

    trace_format_list(names, sizeof(names));
    if (trace_options_check(opt, e) < 0)
        return NULL;
    if (want != NULL && want[0] != '\0' && strcmp(want, "auto") != 0) {
        fmt = trace_format_lookup(want);
        if (fmt == NULL) {
            err_set(e, ERR_INPUT, "unknown trace format '%s' (known: auto, %s)", want, names);
            return NULL;
        }
    }
    lr = linereader_open(path, e);
    if (lr == NULL)
        return NULL;
    rc = trace_next_line(lr, &line, e);
    if (rc < 0)
        goto err;
    if (rc == 0) /* empty file: no requests, whatever the format */
        return trace_reader_wrap(NULL, NULL, lr, opt, e);
    if (fmt == NULL) {
        const struct trace_format *const *f;
        char quoted[64];

        for (f = trace_formats; *f != NULL && fmt == NULL; f++)
            if ((*f)->detect(line))
                fmt = *f;
        if (fmt == NULL) {
            trace_quote(line, quoted, sizeof(quoted));
            err_at(e, path, linereader_lineno(lr),
                   "unknown trace format: '%s' is no known header (formats: %s; force one with format:)",
                   quoted, names);
            goto err;
        }
    }
    linereader_unread(lr);
    state = fmt->open(lr, e);
    if (state == NULL)
        goto err;
    return trace_reader_wrap(fmt, state, lr, opt, e);
err:
    linereader_close(lr);
    return NULL;
}

/* How many copies of the next request to emit: floor(rate_scale), plus one
 * more with probability frac(rate_scale).  Below 1 this is thinning. */
static uint64_t trace_copies(struct trace_reader *r)
{
    double whole = floor(r->opt.rate_scale);
    double frac = r->opt.rate_scale - whole;
    uint64_t n = (uint64_t)whole;

    if (frac > 0 && rng_uniform(&r->thinning) < frac)
        n++;
    return n;
}

int trace_next(struct trace_reader *r, struct trace_request *out, struct err *e)
{
    struct trace_request req;
    int rc;

    if (r->done || r->fmt == NULL)
        return 0;
    if (r->opt.limit > 0 && r->emitted >= r->opt.limit) {
        r->done = true;
        return 0;
    }
    if (r->pending_copies > 0) {
        r->pending_copies--;
        *out = r->pending;
        r->emitted++;
        return 1;
    }
    for (;;) {
        uint64_t copies;

        rc = r->fmt->next(r->state, r->lr, &req, e);
        if (rc <= 0) {
            if (rc == 0)
                r->done = true;
            return rc;
        }
        if (r->have_last && req.arrival_s < r->last_raw_s) {
            double back_s = r->last_raw_s - req.arrival_s;

            if (back_s > r->backwards_max_s)
                r->backwards_max_s = back_s;
            r->backwards++;
            req.arrival_s = r->last_raw_s;
        }
        r->have_last = true;
        r->last_raw_s = req.arrival_s;
        req.arrival_s *= r->opt.time_scale;
        if (r->opt.max_duration_s > 0 && req.arrival_s > r->opt.max_duration_s) {
            r->done = true;
            return 0;
        }
        copies = trace_copies(r);
        if (copies == 0)
            continue;
        r->pending = req;
        r->pending_copies = copies - 1;
        *out = req;
        r->emitted++;
        return 1;
    }
}

double trace_progress(const struct trace_reader *r)
{
    if (r->done || r->fmt == NULL)
        return 1;
    if (r->fmt->progress != NULL)
        return r->fmt->progress(r->state);
    if (r->lr != NULL && linereader_size(r->lr) > 0) {
        double p = (double)linereader_offset(r->lr) / (double)linereader_size(r->lr);
        return p > 1 ? 1 : p;
    }
    return -1;
}

const char *trace_format(const struct trace_reader *r)
{
    return r->fmt != NULL ? r->fmt->name : "empty";
}

void trace_close(struct trace_reader *r)
{
    if (r == NULL)
        return;
    if (r->backwards > 0)
        log_warn("%s: %" PRIu64 " arrivals went back in time (by up to %.6g s); clamped to the previous arrival",
                 r->lr != NULL ? linereader_path(r->lr) : trace_format(r), r->backwards, r->backwards_max_s);
    if (r->fmt != NULL && r->fmt->close != NULL)
        r->fmt->close(r->state);
    linereader_close(r->lr);
    free(r);
}

/* --- field helpers --------------------------------------------------------- */

int trace_next_line(struct linereader *lr, char **line, struct err *e)
{
    size_t len;
    int rc;

    while ((rc = linereader_next(lr, line, &len, e)) == 1) {
        const char *p = *line;

        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '\0')
            return 1;
    }
    return rc;
}

int trace_split_csv(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;

    for (;;) {
        char *comma = strchr(p, ',');

        if (n < max)
            fields[n] = p;
        n++;
        if (comma == NULL)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

void trace_quote(const char *text, char *buf, size_t len)
{
    size_t i;
    size_t cap = len < 44 ? len : 44;

    if (len == 0)
        return;
    for (i = 0; text[i] != '\0' && i + 1 < cap; i++)
        buf[i] = isprint((unsigned char)text[i]) ? text[i] : '?';
    buf[i] = '\0';
    if (text[i] != '\0' && i >= 3) {
        buf[i - 1] = '.';
        buf[i - 2] = '.';
        buf[i - 3] = '.';
    }
}

/* Trim spaces around FIELD into BUF; NULL when it does not fit. */
static const char *trace_trim(const char *field, char *buf, size_t len)
{
    size_t n;

    while (*field == ' ' || *field == '\t')
        field++;
    n = strlen(field);
    while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\t'))
        n--;
    if (n + 1 > len)
        return NULL;
    memcpy(buf, field, n);
    buf[n] = '\0';
    return buf;
}

int trace_parse_tokens(const struct linereader *lr, const char *name, const char *field,
                       uint32_t *out, struct err *e)
{
    char buf[64], quoted[64];
    const char *s = trace_trim(field, buf, sizeof(buf));
    uint64_t v = 0;
    const char *p;

    trace_quote(field, quoted, sizeof(quoted));
    if (s != NULL && s[0] == '\0')
        return err_at(e, linereader_path(lr), linereader_lineno(lr), "%s: empty field", name);
    if (s == NULL)
        goto bad;
    for (p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > TRACE_MAX_TOKENS)
            return err_at(e, linereader_path(lr), linereader_lineno(lr),
                          "%s: '%s' is more than the limit of %u tokens", name, quoted, TRACE_MAX_TOKENS);
    }
    *out = (uint32_t)v;
    return 0;
bad:
    return err_at(e, linereader_path(lr), linereader_lineno(lr),
                  "%s: expected a non-negative integer, got '%s'", name, quoted);
}

int trace_parse_seconds(const struct linereader *lr, const char *name, const char *field,
                        double *out, struct err *e)
{
    char buf[64], quoted[64];
    const char *s = trace_trim(field, buf, sizeof(buf));
    const char *p;
    char *end;
    double v;

    trace_quote(field, quoted, sizeof(quoted));
    if (s != NULL && s[0] == '\0')
        return err_at(e, linereader_path(lr), linereader_lineno(lr), "%s: empty field", name);
    if (s == NULL)
        goto bad;
    for (p = s; *p != '\0'; p++) /* refuses nan, inf, hex floats */
        if (strchr("0123456789.eE+-", *p) == NULL)
            goto bad;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v))
        goto bad;
    if (v < 0)
        return err_at(e, linereader_path(lr), linereader_lineno(lr),
                      "%s: must not be negative, got '%s'", name, quoted);
    if (v > TRACE_MAX_SECONDS || errno == ERANGE)
        return err_at(e, linereader_path(lr), linereader_lineno(lr),
                      "%s: '%s' is out of range", name, quoted);
    *out = v;
    return 0;
bad:
    return err_at(e, linereader_path(lr), linereader_lineno(lr),
                  "%s: expected a non-negative number of seconds, got '%s'", name, quoted);
}

int trace_columns_error(const struct linereader *lr, int expected, int got, const char *header,
                        struct err *e)
{
    return err_at(e, linereader_path(lr), linereader_lineno(lr), "expected %d columns (%s), got %d",
                  expected, header, got);
}

uint64_t trace_hash_string(const char *s)
{
    uint64_t h = XXH64(s, strlen(s), 0);

    return h != 0 ? h : 1;
}

uint64_t trace_hash_id_step(uint64_t h, uint64_t id)
{
    unsigned char le[8];
    int i;

    for (i = 0; i < 8; i++)
        le[i] = (unsigned char)(id >> (8 * i));
    return XXH64(le, sizeof(le), h);
}

uint64_t trace_hash_final(uint64_t h)
{
    return h != 0 ? h : 1;
}
