/* metrics.c -- see metrics.h. */
#include "config.h"

#include "server/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hist.h"

const double metrics_latency_bounds_s[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,      2.5,   5,    10,    30,   60,  120};
const int metrics_n_latency_bounds = (int)(sizeof(metrics_latency_bounds_s) / sizeof(metrics_latency_bounds_s[0]));
const double metrics_batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
const int metrics_n_batch_bounds = (int)(sizeof(metrics_batch_bounds) / sizeof(metrics_batch_bounds[0]));

struct metric_series {
    struct metric_series *next;
    char *values[METRIC_MAX_LABELS]; /* owned copies */
    double value;                    /* counters and gauges */
    struct hist *h;                  /* histograms */
};

struct metric_family {
    struct metric_family *next;
    struct metrics *reg;
    char *name;
    char *help;
    enum metric_type type;
    int n_labels;
    char *labels[METRIC_MAX_LABELS];
    double *bounds;
    int n_bounds;
    struct metric_series *series; /* in creation order */
    struct metric_series **tail;
};

struct metrics {
    pthread_mutex_t lock;
    struct metric_family *families;
    struct metric_family **tail;
};

struct metrics *metrics_create(void)
{
    struct metrics *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->tail = &r->families;
    return r;
}

static void series_free(struct metric_series *s, int n_labels)
{
    int i;

    for (i = 0; i < n_labels; i++)
        free(s->values[i]);
    hist_free(s->h);
    free(s);
}

static void family_free(struct metric_family *f)
{
    struct metric_series *s, *next;
    int i;

    for (s = f->series; s != NULL; s = next) {
        next = s->next;
        series_free(s, f->n_labels);
    }
    for (i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f->bounds);
    free(f);
}

void metrics_free(struct metrics *r)
{
    struct metric_family *f, *next;

    if (r == NULL)
        return;
    for (f = r->families; f != NULL; f = next) {
        next = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; label names without ':'. */
static int valid_name(const char *s, int colon_ok)
{
    const char *p;

    if (s == NULL || *s == '\0')
        return 0;
    for (p = s; *p != '\0'; p++) {
        int c = (unsigned char)*p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':') ||
                 (p != s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

struct metric_family *metrics_family(struct metrics *r, const char *name, const char *help, enum metric_type type,
                                     const char *const *labels, const double *bounds, int n_bounds)
{
    struct metric_family *f;
    size_t nl = strlen(name);
    int i;

    if (!valid_name(name, 1))
        return NULL;
    if (type == METRIC_COUNTER && (nl < 6 || strcmp(name + nl - 6, "_total") != 0))
        return NULL;
    if (type == METRIC_HISTOGRAM && (bounds == NULL || n_bounds <= 0))
        return NULL;
    for (i = 1; type == METRIC_HISTOGRAM && i < n_bounds; i++)
        if (!(bounds[i] > bounds[i - 1]))
            return NULL;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->reg = r;
    f->type = type;
    f->tail = &f->series;
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    if (f->name == NULL || f->help == NULL)
        goto err;
    for (i = 0; labels != NULL && labels[i] != NULL; i++) {
        if (i >= METRIC_MAX_LABELS || !valid_name(labels[i], 0) || strcmp(labels[i], "le") == 0)
            goto err;
        f->labels[i] = strdup(labels[i]);
        if (f->labels[i] == NULL)
            goto err;
        f->n_labels = i + 1;
    }
    if (type == METRIC_HISTOGRAM) {
        f->bounds = malloc(sizeof(double) * (size_t)n_bounds);
        if (f->bounds == NULL)
            goto err;
        memcpy(f->bounds, bounds, sizeof(double) * (size_t)n_bounds);
        f->n_bounds = n_bounds;
    }
    pthread_mutex_lock(&r->lock);
    *r->tail = f;
    r->tail = &f->next;
    pthread_mutex_unlock(&r->lock);
    return f;
err:
    family_free(f);
    return NULL;
}

/* The series with VALUES, created when CREATE; NULL when absent or out of
 * memory.  Called with the registry locked. */
static struct metric_series *series_find(struct metric_family *f, const char *const *values, int create)
{
    struct metric_series *s;
    int i;

    for (s = f->series; s != NULL; s = s->next) {
        for (i = 0; i < f->n_labels; i++)
            if (strcmp(s->values[i], values[i] != NULL ? values[i] : "") != 0)
                break;
        if (i == f->n_labels)
            return s;
    }
    if (!create)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    for (i = 0; i < f->n_labels; i++) {
        s->values[i] = strdup(values[i] != NULL ? values[i] : "");
        if (s->values[i] == NULL) {
            series_free(s, i);
            return NULL;
        }
    }
    if (f->type == METRIC_HISTOGRAM && (s->h = hist_create()) == NULL) {
        series_free(s, f->n_labels);
        return NULL;
    }
    *f->tail = s;
    f->tail = &s->next;
    return s;
}

void metric_inc(struct metric_family *f, const char *const *values, double v)
{
    struct metric_series *s;

    if (f == NULL || f->type == METRIC_HISTOGRAM || isnan(v) || (f->type == METRIC_COUNTER && v < 0))
        return;
    pthread_mutex_lock(&f->reg->lock);
    if ((s = series_find(f, values, 1)) != NULL)
        s->value += v;
    pthread_mutex_unlock(&f->reg->lock);
}

void metric_set(struct metric_family *f, const char *const *values, double v)
{
    struct metric_series *s;

    if (f == NULL || f->type != METRIC_GAUGE)
        return;
    pthread_mutex_lock(&f->reg->lock);
    if ((s = series_find(f, values, 1)) != NULL)
        s->value = v;
    pthread_mutex_unlock(&f->reg->lock);
}

void metric_observe(struct metric_family *f, const char *const *values, double v)
{
    struct metric_series *s;

    if (f == NULL || f->type != METRIC_HISTOGRAM || isnan(v))
        return;
    pthread_mutex_lock(&f->reg->lock);
    if ((s = series_find(f, values, 1)) != NULL)
        hist_add(s->h, v < 0 ? 0 : v);
    pthread_mutex_unlock(&f->reg->lock);
}

double metric_get(struct metric_family *f, const char *const *values)
{
    struct metric_series *s;
    double v = 0;

    if (f == NULL)
        return 0;
    pthread_mutex_lock(&f->reg->lock);
    if ((s = series_find(f, values, 0)) != NULL)
        v = f->type == METRIC_HISTOGRAM ? (double)hist_count(s->h) : s->value;
    pthread_mutex_unlock(&f->reg->lock);
    return v;
}

/* A label value with \, " and newline escaped. */
static void put_label_value(FILE *o, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\')
            fputs("\\\\", o);
        else if (*v == '"')
            fputs("\\\"", o);
        else if (*v == '\n')
            fputs("\\n", o);
        else
            fputc(*v, o);
    }
}

/* HELP text with \ and newline escaped. */
static void put_help(FILE *o, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\')
            fputs("\\\\", o);
        else if (*v == '\n')
            fputs("\\n", o);
        else
            fputc(*v, o);
    }
}

/* A float as Prometheus reads it: integers plainly, +Inf/-Inf/NaN by name. */
static void put_value(FILE *o, double v)
{
    if (isnan(v))
        fputs("NaN", o);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", o);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(o, "%.0f", v);
    else
        fprintf(o, "%.9g", v);
}

/* "{a="x",b="y"" without the closing brace (EXTRA adds le), or nothing. */
static void put_labels(FILE *o, const struct metric_family *f, const struct metric_series *s, const char *le)
{
    int i;

    if (f->n_labels == 0 && le == NULL)
        return;
    fputc('{', o);
    for (i = 0; i < f->n_labels; i++) {
        fprintf(o, "%s%s=\"", i > 0 ? "," : "", f->labels[i]);
        put_label_value(o, s->values[i]);
        fputc('"', o);
    }
    if (le != NULL)
        fprintf(o, "%sle=\"%s\"", f->n_labels > 0 ? "," : "", le);
    fputc('}', o);
}

static void expose_family(FILE *o, const struct metric_family *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    const struct metric_series *s;
    char le[64];
    int i;

    fprintf(o, "# HELP %s ", f->name);
    put_help(o, f->help);
    fprintf(o, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    for (s = f->series; s != NULL; s = s->next) {
        if (f->type != METRIC_HISTOGRAM) {
            fputs(f->name, o);
            put_labels(o, f, s, NULL);
            fputc(' ', o);
            put_value(o, s->value);
            fputc('\n', o);
            continue;
        }
        uint64_t n = hist_count(s->h);
        /* Cumulative counts at each bound from the sketch's CDF (within its
         * 1% bucket width), rounded, so they never decrease. */
        for (i = 0; i < f->n_bounds; i++) {
            double c = n > 0 ? floor(hist_cdf_at(s->h, f->bounds[i]) * (double)n + 0.5) : 0;
            snprintf(le, sizeof(le), "%.9g", f->bounds[i]);
            fprintf(o, "%s_bucket", f->name);
            put_labels(o, f, s, le);
            fputc(' ', o);
            put_value(o, c);
            fputc('\n', o);
        }
        fprintf(o, "%s_bucket", f->name);
        put_labels(o, f, s, "+Inf");
        fprintf(o, " %llu\n%s_sum", (unsigned long long)n, f->name);
        put_labels(o, f, s, NULL);
        fputc(' ', o);
        put_value(o, hist_sum(s->h));
        fprintf(o, "\n%s_count", f->name);
        put_labels(o, f, s, NULL);
        fprintf(o, " %llu\n", (unsigned long long)n);
    }
}

int metrics_expose(struct metrics *r, char **out, size_t *len)
{
    const struct metric_family *f;
    FILE *o;

    *out = NULL;
    *len = 0;
    o = open_memstream(out, len);
    if (o == NULL)
        return -1;
    pthread_mutex_lock(&r->lock);
    for (f = r->families; f != NULL; f = f->next)
        expose_family(o, f);
    pthread_mutex_unlock(&r->lock);
    if (fclose(o) != 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}
