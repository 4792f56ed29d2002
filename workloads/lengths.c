/* lengths.c -- see lengths.h. */
#include "config.h"

#include "workloads/lengths.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hist.h"
#include "workloads/trace.h"
#include "workloads/trace_format.h"

enum lengths_kind { LENGTHS_FIXED, LENGTHS_UNIFORM, LENGTHS_LOGNORMAL, LENGTHS_EMPIRICAL };

static const char *const lengths_kinds[] = {"fixed", "uniform", "lognormal", "empirical", NULL};

struct lengths {
    enum lengths_kind kind;
    uint32_t value;         /* fixed */
    uint32_t min, max;      /* uniform; clamps for lognormal */
    double mu, sigma;       /* lognormal: log of the median, and sigma */
    size_t nbuckets;        /* empirical: */
    uint32_t *bucket_value; /*   representative length of each bucket */
    uint64_t *bucket_cum;   /*   samples in buckets 0..i */
};

/* A token count KEY of map N: a whole number in [0, TRACE_MAX_TOKENS].
 * 1 when present, 0 when absent, -1 on error. */
static int lengths_get_count(const struct conf *c, const struct conf_node *n, const char *key, uint32_t *out,
                             struct err *e)
{
    double v;
    int rc = conf_get_double(c, n, key, &v, e);

    if (rc <= 0)
        return rc;
    if (v < 0 || v > TRACE_MAX_TOKENS || v != floor(v))
        return conf_error(c, conf_get(n, key), e, "%s: expected a whole number of tokens in [0, %u], got %g",
                          key, TRACE_MAX_TOKENS, v);
    *out = (uint32_t)v;
    return 1;
}

/* Read the empirical distribution of COLUMN of trace PATH into l. */
static int lengths_load_empirical(struct lengths *l, const struct conf *c, const struct conf_node *n,
                                  struct err *e)
{
    static const char *const columns[] = {"prompt", "output", NULL};
    struct trace_options opt;
    struct trace_reader *r = NULL;
    struct trace_request req;
    struct hist *h = NULL;
    const char *path, *format = NULL;
    char full[4096];
    int column = 0, rc;
    size_t idx = 0, i;
    double value;
    uint64_t count, cum = 0;

    if (conf_get_str(c, n, "trace", &path, e) < 0 || conf_get_enum(c, n, "column", columns, &column, e) < 0 ||
        conf_get_str(c, n, "format", &format, e) < 0)
        return -1;
    if (conf_get(n, "trace") == NULL)
        return conf_error(c, n, e, "empirical: 'trace' (a trace file) is required");
    conf_path(c, conf_get(n, "trace"), path, full, sizeof(full));
    memset(&opt, 0, sizeof(opt));
    opt.format = format;
    h = hist_create();
    if (h == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        goto err;
    }
    r = trace_open_file(full, &opt, e);
    if (r == NULL)
        goto located;
    while ((rc = trace_next(r, &req, e)) == 1)
        hist_add(h, column == 0 ? req.prompt_tokens : req.output_tokens);
    if (rc < 0)
        goto located;
    trace_close(r);
    r = NULL;
    if (hist_count(h) == 0) {
        conf_error(c, conf_get(n, "trace"), e, "trace: %s has no requests", full);
        goto err;
    }
    while (hist_next_bucket(h, &idx, &value, &count))
        l->nbuckets++;
    l->bucket_value = calloc(l->nbuckets, sizeof(*l->bucket_value));
    l->bucket_cum = calloc(l->nbuckets, sizeof(*l->bucket_cum));
    if (l->bucket_value == NULL || l->bucket_cum == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        goto err;
    }
    idx = 0;
    for (i = 0; i < l->nbuckets && hist_next_bucket(h, &idx, &value, &count); i++) {
        cum += count;
        l->bucket_value[i] = (uint32_t)lround(value);
        l->bucket_cum[i] = cum;
    }
    hist_free(h);
    return 0;
located: {
    char where[600];

    conf_where(c, conf_get(n, "trace"), where, sizeof(where));
    err_prefix(e, "%s: trace", where);
}
err:
    trace_close(r);
    hist_free(h);
    return -1;
}

struct lengths *lengths_open(const struct conf *c, const struct conf_node *n, const char *what,
                             uint32_t default_value, struct err *e)
{
    static const char *const keys_fixed[] = {"kind", "value", NULL};
    static const char *const keys_uniform[] = {"kind", "min", "max", NULL};
    static const char *const keys_lognormal[] = {"kind", "median", "sigma", "min", "max", NULL};
    static const char *const keys_empirical[] = {"kind", "trace", "column", "format", NULL};
    static const char *const *const keys[] = {keys_fixed, keys_uniform, keys_lognormal, keys_empirical};
    struct lengths *l = calloc(1, sizeof(*l));
    double median = 0, sigma = 0;
    int kind = LENGTHS_FIXED;
    char section[128];

    if (l == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        return NULL;
    }
    l->kind = LENGTHS_FIXED;
    l->value = default_value;
    if (n == NULL)
        return l;
    if (conf_is_scalar(n)) { /* a plain number: fixed */
        double v;

        if (conf_node_double(c, n, what, &v, e) < 0)
            goto err;
        if (v < 0 || v > TRACE_MAX_TOKENS || v != floor(v)) {
            conf_error(c, n, e, "%s: expected a whole number of tokens or a mapping, got %g", what, v);
            goto err;
        }
        l->value = (uint32_t)v;
        return l;
    }
    if (!conf_is_map(n)) {
        conf_error(c, n, e, "%s: expected a mapping {kind: fixed|uniform|lognormal|empirical, ...}", what);
        goto err;
    }
    if (conf_get_enum(c, n, "kind", lengths_kinds, &kind, e) < 0)
        goto err;
    if (conf_get(n, "kind") == NULL) {
        conf_error(c, n, e, "%s: 'kind' is required (fixed, uniform, lognormal or empirical)", what);
        goto err;
    }
    snprintf(section, sizeof(section), "%s (%s)", what, lengths_kinds[kind]);
    if (conf_check_keys(c, n, section, keys[kind], e) < 0)
        goto err;
    l->kind = (enum lengths_kind)kind;
    l->min = 1;
    l->max = 1048576;
    switch (l->kind) {
    case LENGTHS_FIXED:
        if (lengths_get_count(c, n, "value", &l->value, e) < 0)
            goto err;
        if (conf_get(n, "value") == NULL) {
            conf_error(c, n, e, "%s: 'value' is required", section);
            goto err;
        }
        break;
    case LENGTHS_UNIFORM:
        if (lengths_get_count(c, n, "min", &l->min, e) < 0 || lengths_get_count(c, n, "max", &l->max, e) < 0)
            goto err;
        if (conf_get(n, "min") == NULL || conf_get(n, "max") == NULL) {
            conf_error(c, n, e, "%s: 'min' and 'max' are required", section);
            goto err;
        }
        if (l->min > l->max) {
            conf_error(c, conf_get(n, "max"), e, "max: %u is less than min %u", l->max, l->min);
            goto err;
        }
        break;
    case LENGTHS_LOGNORMAL:
        if (conf_get_double(c, n, "median", &median, e) < 0 || conf_get_nonneg(c, n, "sigma", &sigma, e) < 0 ||
            lengths_get_count(c, n, "min", &l->min, e) < 0 || lengths_get_count(c, n, "max", &l->max, e) < 0)
            goto err;
        if (conf_get(n, "median") == NULL || conf_get(n, "sigma") == NULL) {
            conf_error(c, n, e, "%s: 'median' and 'sigma' are required", section);
            goto err;
        }
        if (median <= 0 || median > TRACE_MAX_TOKENS) {
            conf_error(c, conf_get(n, "median"), e, "median: expected a positive number of tokens, got %g", median);
            goto err;
        }
        if (sigma > 10) {
            conf_error(c, conf_get(n, "sigma"), e, "sigma: %g is implausibly large (at most 10)", sigma);
            goto err;
        }
        if (l->min > l->max) {
            conf_error(c, conf_get(n, "max") ? conf_get(n, "max") : n, e, "max: %u is less than min %u", l->max,
                       l->min);
            goto err;
        }
        l->mu = log(median);
        l->sigma = sigma;
        break;
    case LENGTHS_EMPIRICAL:
        if (lengths_load_empirical(l, c, n, e) < 0)
            goto err;
        break;
    }
    return l;
err:
    lengths_free(l);
    return NULL;
}

uint32_t lengths_draw(const struct lengths *l, struct rng *r)
{
    double x;
    uint64_t u;
    size_t lo, hi;

    switch (l->kind) {
    case LENGTHS_FIXED:
        return l->value;
    case LENGTHS_UNIFORM:
        return l->min + (uint32_t)rng_below(r, (uint64_t)(l->max - l->min) + 1);
    case LENGTHS_LOGNORMAL:
        x = round(rng_lognormal(r, l->mu, l->sigma));
        if (x < l->min)
            return l->min;
        if (x > l->max)
            return l->max;
        return (uint32_t)x;
    case LENGTHS_EMPIRICAL:
        u = rng_below(r, l->bucket_cum[l->nbuckets - 1]);
        lo = 0;
        hi = l->nbuckets - 1;
        while (lo < hi) { /* first bucket whose cumulative count exceeds u */
            size_t mid = lo + (hi - lo) / 2;

            if (l->bucket_cum[mid] > u)
                hi = mid;
            else
                lo = mid + 1;
        }
        return l->bucket_value[lo];
    }
    return 0;
}

const char *lengths_kind(const struct lengths *l)
{
    return lengths_kinds[l->kind];
}

void lengths_free(struct lengths *l)
{
    if (l == NULL)
        return;
    free(l->bucket_value);
    free(l->bucket_cum);
    free(l);
}
