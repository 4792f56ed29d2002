/* hist.c -- see hist.h. */
#include "common/hist.h"

#include <assert.h>
#include <pthread.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bucket index i covers (g^(i-1), g^i]; offset makes the index of HIST_MIN
 * land at 1, index 0 is the zero bucket. */
struct hist {
    uint64_t count;
    uint64_t clamped;
    double sum;
    double min;
    double max;
    size_t nbuckets;
    int offset;
    double log_gamma;
    double inv_log_gamma; /* 1 / log_gamma: hist_index multiplies */
    uint64_t buckets[];
};

static double hist_gamma(void)
{
    return (1.0 + HIST_REL_ERR) / (1.0 - HIST_REL_ERR);
}

/* The histogram itself (hist_create also makes sure the bounds exist). */
static struct hist *hist_create_buckets(void)
{
    double lg = log(hist_gamma());
    int lo = (int)ceil(log(HIST_MIN) / lg);
    int hi = (int)ceil(log(HIST_MAX) / lg);
    size_t n = (size_t)(hi - lo) + 2;
    struct hist *h = calloc(1, sizeof(*h) + n * sizeof(uint64_t));

    if (h == NULL)
        return NULL;
    h->nbuckets = n;
    h->offset = 1 - lo;
    h->log_gamma = lg;
    h->inv_log_gamma = 1.0 / lg;
    return h;
}

void hist_free(struct hist *h)
{
    free(h);
}

void hist_reset(struct hist *h)
{
    size_t n = h->nbuckets;
    int off = h->offset;
    double lg = h->log_gamma;

    memset(h, 0, sizeof(*h) + n * sizeof(uint64_t));
    h->nbuckets = n;
    h->offset = off;
    h->log_gamma = lg;
    h->inv_log_gamma = 1.0 / lg;
}

/* Upper bounds of the buckets, g^(i - offset), the same for every
 * histogram: hist_index estimates a bucket with a cheap logarithm and settles
 * it against these, exactly. */
static double *hist_bounds;
static size_t hist_nbounds;
static pthread_once_t hist_bounds_once = PTHREAD_ONCE_INIT;

static void hist_bounds_init(void)
{
    double lg = log(hist_gamma());
    int lo = (int)ceil(log(HIST_MIN) / lg);
    int hi = (int)ceil(log(HIST_MAX) / lg);
    size_t i, n = (size_t)(hi - lo) + 2;

    hist_bounds = malloc(n * sizeof(*hist_bounds));
    if (hist_bounds == NULL)
        return;
    for (i = 0; i < n; i++)
        hist_bounds[i] = exp(((double)i - (1 - lo)) * lg);
    hist_nbounds = n;
}

/* ln(v) for v > 0 to about 1e-5: the binary exponent, and
 * ln(m) = 2 atanh((m - 1) / (m + 1)) by four terms of its series for the
 * mantissa m in [1, 2). */
static inline double hist_fast_ln(double v)
{
    union {
        double d;
        uint64_t u;
    } x;
    double m, t, t2;
    int e;

    x.d = v;
    e = (int)((x.u >> 52) & 0x7ff) - 1023;
    x.u = (x.u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    m = x.d;
    t = (m - 1.0) / (m + 1.0);
    t2 = t * t;
    return e * M_LN2 + 2.0 * t * (1.0 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7))));
}

static size_t hist_index(const struct hist *h, double v)
{
    long i;

    if (v <= HIST_MIN)
        return 0;
    if (!(v < HIST_MAX) || hist_bounds == NULL) {
        i = (long)ceil(log(v) * h->inv_log_gamma) + h->offset;
    } else {
        /* The estimate is within a thousandth of a bucket: at most one step
         * to either side settles it against the exact bounds. */
        i = (long)ceil(hist_fast_ln(v) * h->inv_log_gamma) + h->offset;
        if (i >= 1 && (size_t)i < hist_nbounds) {
            if (hist_bounds[i] < v && (size_t)i + 1 < hist_nbounds)
                i++;
            else if (i > 1 && hist_bounds[i - 1] >= v)
                i--;
        }
    }
    if (i < 1)
        i = 1;
    if ((size_t)i >= h->nbuckets)
        i = (long)h->nbuckets - 1;
    return (size_t)i;
}

struct hist *hist_create(void)
{
    pthread_once(&hist_bounds_once, hist_bounds_init);
    return hist_create_buckets();
}

static double hist_value(const struct hist *h, size_t i)
{
    double g = hist_gamma();

    if (i == 0)
        return 0.0;
    return 2.0 * exp(((double)i - h->offset) * h->log_gamma) / (g + 1.0);
}

void hist_add(struct hist *h, double v)
{
    if (isnan(v))
        return;
    if (v > HIST_MAX) {
        h->clamped++;
        v = HIST_MAX;
    }
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (h->count == 0 || v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
    h->buckets[hist_index(h, v)]++;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    size_t i;

    assert(dst->nbuckets == src->nbuckets);
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (dst->count == 0 || src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    for (i = 0; i < src->nbuckets; i++)
        dst->buckets[i] += src->buckets[i];
}

uint64_t hist_count(const struct hist *h) { return h->count; }
double hist_sum(const struct hist *h) { return h->sum; }
double hist_mean(const struct hist *h) { return h->count ? h->sum / (double)h->count : 0.0; }
double hist_min(const struct hist *h) { return h->count ? h->min : 0.0; }
double hist_max(const struct hist *h) { return h->count ? h->max : 0.0; }
uint64_t hist_clamped(const struct hist *h) { return h->clamped; }

double hist_quantile(const struct hist *h, double q)
{
    uint64_t rank, seen = 0;
    size_t i;
    double v;

    if (isnan(q))
        return NAN;
    if (h->count == 0)
        return 0.0;
    if (q <= 0.0)
        return h->min;
    if (q >= 1.0)
        return h->max;
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (i = 0; i < h->nbuckets; i++) {
        seen += h->buckets[i];
        if (seen >= rank)
            break;
    }
    v = hist_value(h, i < h->nbuckets ? i : h->nbuckets - 1);
    /* The exact extremes are known: never report outside them. */
    if (v < h->min)
        v = h->min;
    if (v > h->max)
        v = h->max;
    return v;
}

double hist_cdf_at(const struct hist *h, double v)
{
    uint64_t seen = 0;
    size_t i, last;

    if (isnan(v))
        return NAN;
    if (h->count == 0 || v < h->min)
        return 0.0;
    if (v >= h->max)
        return 1.0;
    last = hist_index(h, v);
    for (i = 0; i <= last; i++)
        seen += h->buckets[i];
    return (double)seen / (double)h->count;
}

int hist_next_bucket(const struct hist *h, size_t *idx, double *value, uint64_t *count)
{
    size_t i;

    for (i = *idx; i < h->nbuckets; i++) {
        if (h->buckets[i] == 0)
            continue;
        *value = hist_value(h, i);
        if (*value < h->min)
            *value = h->min;
        if (*value > h->max)
            *value = h->max;
        *count = h->buckets[i];
        *idx = i + 1;
        return 1;
    }
    *idx = h->nbuckets;
    return 0;
}
