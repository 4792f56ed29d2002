/* report_input.c -- reading and checking what a run wrote (see report_int.h).
 *
 * summary.json is parsed with jansson and checked against sum_keys, the keys
 * the page shows in their own places (a "*" in a key stands for any one key,
 * a pool's name for instance).  timeline.csv and latency_cdf.csv are
 * read by one small CSV reader that finds the wanted columns by the header
 * line and checks every row; each file adds its own row checks.  Every error
 * names the file, and the line or key at fault. */
#include "config.h"
#include "reports/report_int.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* ---- summary.json -------------------------------------------------------- */

enum sum_type { SUM_NUMBER, SUM_NUMBER_OR_NULL, SUM_STRING, SUM_BOOL };

/* A key of summary.json that the page shows in its own place.  Every leaf
 * not listed here goes to the generic "other figures" tables.  A key with a
 * "*" segment matches every member of the object there and is optional.  A
 * lenient key is never an error: it is shown (and so known) only when its
 * value has the type, which lets the page take in keys a later llmsim adds
 * to a section it shows as a list (events). */
struct sum_key {
    const char *path; /* dotted: "latency_s.ttft.p99", "pools.*.cost_usd" */
    enum sum_type type;
    bool optional;
    bool lenient;
};

static const struct sum_key sum_keys[] = {
    {.path = "scenario.name", .type = SUM_STRING},
    {.path = "scenario.file", .type = SUM_STRING, .optional = true},
    {.path = "scenario.seed", .type = SUM_NUMBER, .optional = true},
    {.path = "requests.arrived", .type = SUM_NUMBER},
    {.path = "requests.completed", .type = SUM_NUMBER},
    {.path = "requests.rejected", .type = SUM_NUMBER},
    {.path = "requests.timed_out", .type = SUM_NUMBER},
    {.path = "requests.in_flight_at_end", .type = SUM_NUMBER},
    {.path = "latency_s.queue.mean", .type = SUM_NUMBER},
    {.path = "latency_s.queue.p50", .type = SUM_NUMBER},
    {.path = "latency_s.queue.p90", .type = SUM_NUMBER},
    {.path = "latency_s.queue.p99", .type = SUM_NUMBER},
    {.path = "latency_s.queue.max", .type = SUM_NUMBER},
    {.path = "latency_s.ttft.mean", .type = SUM_NUMBER},
    {.path = "latency_s.ttft.p50", .type = SUM_NUMBER},
    {.path = "latency_s.ttft.p90", .type = SUM_NUMBER},
    {.path = "latency_s.ttft.p99", .type = SUM_NUMBER},
    {.path = "latency_s.ttft.max", .type = SUM_NUMBER},
    {.path = "latency_s.tpot.mean", .type = SUM_NUMBER},
    {.path = "latency_s.tpot.p50", .type = SUM_NUMBER},
    {.path = "latency_s.tpot.p90", .type = SUM_NUMBER},
    {.path = "latency_s.tpot.p99", .type = SUM_NUMBER},
    {.path = "latency_s.tpot.max", .type = SUM_NUMBER},
    {.path = "latency_s.e2e.mean", .type = SUM_NUMBER},
    {.path = "latency_s.e2e.p50", .type = SUM_NUMBER},
    {.path = "latency_s.e2e.p90", .type = SUM_NUMBER},
    {.path = "latency_s.e2e.p99", .type = SUM_NUMBER},
    {.path = "latency_s.e2e.max", .type = SUM_NUMBER},
    {.path = "tokens.prompt", .type = SUM_NUMBER},
    {.path = "tokens.output", .type = SUM_NUMBER},
    {.path = "throughput.requests_per_s", .type = SUM_NUMBER},
    {.path = "throughput.output_tokens_per_s", .type = SUM_NUMBER},
    {.path = "cost_usd.total", .type = SUM_NUMBER},
    {.path = "cost_usd.per_1k_requests", .type = SUM_NUMBER},
    /* Node pools (the Cost section). */
    {.path = "cost_usd.by_pool.*", .type = SUM_NUMBER, .optional = true},
    {.path = "cost_usd.on_demand_equivalent", .type = SUM_NUMBER, .optional = true},
    {.path = "cost_usd.savings_vs_on_demand", .type = SUM_NUMBER, .optional = true},
    {.path = "pools.*.cost_usd", .type = SUM_NUMBER, .optional = true},
    {.path = "pools.*.node_hours", .type = SUM_NUMBER, .optional = true},
    {.path = "pools.*.nodes_max", .type = SUM_NUMBER, .optional = true},
    {.path = "pools.*.provisioned", .type = SUM_NUMBER, .optional = true},
    {.path = "pools.*.removed_idle", .type = SUM_NUMBER, .optional = true},
    {.path = "pools.*.preemptions", .type = SUM_NUMBER, .optional = true},
    /* Autoscaling and reliability: the documented counts, then any other. */
    {.path = "events.cold_starts", .type = SUM_NUMBER, .optional = true},
    {.path = "events.scale_ups", .type = SUM_NUMBER, .optional = true},
    {.path = "events.scale_downs", .type = SUM_NUMBER, .optional = true},
    {.path = "events.hpa_syncs", .type = SUM_NUMBER, .optional = true},
    {.path = "events.preemptions", .type = SUM_NUMBER, .optional = true},
    {.path = "events.requeued", .type = SUM_NUMBER, .optional = true},
    {.path = "events.lost_tokens", .type = SUM_NUMBER, .optional = true},
    {.path = "events.*", .type = SUM_NUMBER, .lenient = true},
    /* The response cache, present when one is configured. */
    {.path = "cache.lookups", .type = SUM_NUMBER, .optional = true},
    {.path = "cache.hits", .type = SUM_NUMBER, .optional = true},
    {.path = "cache.hit_ratio", .type = SUM_NUMBER, .optional = true},
    {.path = "cache.hit_ratio_all", .type = SUM_NUMBER, .optional = true},
    {.path = "cache.tokens_saved", .type = SUM_NUMBER, .optional = true},
    {.path = "cache.gpu_s_saved", .type = SUM_NUMBER, .optional = true},
    {.path = "cache.evictions", .type = SUM_NUMBER, .optional = true},
    {.path = "gpu_hours", .type = SUM_NUMBER},
    {.path = "slo.ttft_s", .type = SUM_NUMBER_OR_NULL},
    {.path = "slo.tpot_s", .type = SUM_NUMBER_OR_NULL},
    {.path = "slo.e2e_s", .type = SUM_NUMBER_OR_NULL},
    {.path = "slo.target", .type = SUM_NUMBER},
    {.path = "slo.attainment", .type = SUM_NUMBER},
    {.path = "slo.met", .type = SUM_BOOL},
    {.path = "replicas.min", .type = SUM_NUMBER},
    {.path = "replicas.mean", .type = SUM_NUMBER},
    {.path = "replicas.max", .type = SUM_NUMBER},
    {.path = "utilization.kv_mean", .type = SUM_NUMBER},
    {.path = "utilization.busy_mean", .type = SUM_NUMBER},
    {.path = "sim.duration_s", .type = SUM_NUMBER},
    {.path = "sim.events", .type = SUM_NUMBER},
    {.path = "sim.wall_s", .type = SUM_NUMBER},
    {.path = "sim.events_per_s", .type = SUM_NUMBER},
    {.path = "sim.seed", .type = SUM_NUMBER},
};

#define SUM_NKEYS (sizeof(sum_keys) / sizeof(sum_keys[0]))

/* The value at dotted PATH under ROOT, or NULL when a key along the path is
 * missing or a value along it is not an object. */
json_t *report_summary_get(json_t *root, const char *path)
{
    json_t *node = root;
    const char *p = path;
    char key[128];

    while (node != NULL && *p != '\0') {
        const char *dot = strchr(p, '.');
        size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);

        if (!json_is_object(node) || n >= sizeof(key))
            return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        node = json_object_get(node, key);
        p = dot != NULL ? dot + 1 : p + n;
    }
    return node;
}

/* The number at PATH, or NAN when it is absent or not a number. */
double report_summary_num(json_t *root, const char *path)
{
    json_t *v = report_summary_get(root, path);

    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* "a string", "null" ...: the kind of V, for messages. */
const char *report_summary_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

/* Report the required key PATH as absent from ROOT: either a value along the
 * path is not an object, or the key is missing.  Always returns -1. */
static int summary_missing(json_t *root, const char *file, const char *path, struct err *e)
{
    char prefix[128];
    const char *dot;

    for (dot = strchr(path, '.'); dot != NULL; dot = strchr(dot + 1, '.')) {
        size_t n = (size_t)(dot - path);
        json_t *v;

        if (n >= sizeof(prefix))
            break;
        memcpy(prefix, path, n);
        prefix[n] = '\0';
        v = report_summary_get(root, prefix);
        if (v != NULL && !json_is_object(v))
            return err_at(e, file, 0, "key \"%s\" should be an object, not %s", prefix,
                          report_summary_kind(v));
    }
    return err_at(e, file, 0, "missing key \"%s\"", path);
}

static const char *const sum_type_names[] = {
    [SUM_NUMBER] = "a number",
    [SUM_NUMBER_OR_NULL] = "a number or null",
    [SUM_STRING] = "a string",
    [SUM_BOOL] = "a boolean",
};

/* Whether V has TYPE. */
static bool sum_type_ok(const json_t *v, enum sum_type type)
{
    switch (type) {
    case SUM_NUMBER: return json_is_number(v);
    case SUM_NUMBER_OR_NULL: return json_is_number(v) || json_is_null(v);
    case SUM_STRING: return json_is_string(v);
    case SUM_BOOL: return json_is_boolean(v);
    }
    return false;
}

/* Check the values under NODE (at dotted PATH, path[0..len) of cap bytes)
 * that the rest of K's pattern, PAT, names: a "*" segment stands for every
 * member of an object.  A value along the way that is not an object counts
 * as absent, as for report_summary_get().  Returns 0, or -1 with an
 * ERR_INPUT naming FILE and the mistyped key. */
static int summary_check_pattern(json_t *node, const char *pat, char *path, size_t len,
                                 size_t cap, const struct sum_key *k, const char *file,
                                 struct err *e)
{
    const char *dot = strchr(pat, '.');
    size_t n = dot != NULL ? (size_t)(dot - pat) : strlen(pat), used;
    const char *key;
    char seg[128];
    json_t *v;

    if (!json_is_object(node) || n >= sizeof(seg))
        return 0;
    memcpy(seg, pat, n);
    seg[n] = '\0';
    json_object_foreach(node, key, v) {
        if (strcmp(seg, "*") != 0 && strcmp(seg, key) != 0)
            continue;
        used = (size_t)snprintf(path + len, cap - len, ".%s", key);
        if (used >= cap - len)
            used = cap - len - 1; /* a name too long for messages: cut */
        if (dot != NULL) {
            if (summary_check_pattern(v, dot + 1, path, len + used, cap, k, file, e) != 0)
                return -1;
        } else if (!k->lenient && !sum_type_ok(v, k->type)) {
            return err_at(e, file, 0, "key \"%s\" should be %s, not %s", path + 1,
                          sum_type_names[k->type], report_summary_kind(v));
        }
        path[len] = '\0';
    }
    return 0;
}

/* Check that every required key of sum_keys is present in ROOT with its
 * type, and every optional one present has it.  Returns 0, or -1 with an
 * ERR_INPUT naming FILE and the key. */
static int summary_check(json_t *root, const char *file, struct err *e)
{
    char path[512];
    size_t i;

    if (!json_is_object(root))
        return err_at(e, file, 0, "the document should be an object, not %s",
                      report_summary_kind(root));
    for (i = 0; i < SUM_NKEYS; i++) {
        const struct sum_key *k = &sum_keys[i];
        json_t *v;

        if (strchr(k->path, '*') != NULL) {
            path[0] = '\0';
            if (summary_check_pattern(root, k->path, path, 0, sizeof(path), k, file, e) != 0)
                return -1;
            continue;
        }
        v = report_summary_get(root, k->path);
        if (v == NULL) {
            if (k->optional)
                continue;
            return summary_missing(root, file, k->path, e);
        }
        if (!sum_type_ok(v, k->type))
            return err_at(e, file, 0, "key \"%s\" should be %s, not %s", k->path,
                          sum_type_names[k->type], report_summary_kind(v));
    }
    return 0;
}

/* Parse and check FILE.  Returns the document (the caller json_decref()s it)
 * or NULL: ERR_SYSTEM when the file cannot be opened, ERR_INPUT with the
 * line for a syntax error or naming the key that is missing or mistyped. */
json_t *report_summary_load(const char *file, struct err *e)
{
    json_error_t jerr;
    json_t *root;
    FILE *fp = fopen(file, "r");

    if (fp == NULL) {
        err_sys(e, errno, "%s", file);
        return NULL;
    }
    root = json_loadf(fp, 0, &jerr);
    fclose(fp);
    if (root == NULL) {
        err_at(e, file, jerr.line, "invalid JSON: %s", jerr.text);
        return NULL;
    }
    if (summary_check(root, file, e) != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* Whether dotted PATH matches PATTERN, where a "*" segment matches any one
 * non-empty segment. */
static bool path_matches(const char *pattern, const char *path)
{
    while (*pattern != '\0' && *path != '\0') {
        size_t pn = strcspn(pattern, "."), n = strcspn(path, ".");

        if (!(pn == 1 && *pattern == '*') && (pn != n || strncmp(pattern, path, n) != 0))
            return false;
        if (n == 0)
            return false;
        pattern += pn;
        path += n;
        if ((*pattern == '.') != (*path == '.'))
            return false;
        if (*pattern == '.') {
            pattern++;
            path++;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

/* Whether dotted PATH, holding V, is a key the page shows in its own place. */
bool report_summary_known(const char *path, const json_t *v)
{
    size_t i;

    for (i = 0; i < SUM_NKEYS; i++)
        if (path_matches(sum_keys[i].path, path) &&
            (!sum_keys[i].lenient || sum_type_ok(v, sum_keys[i].type)))
            return true;
    return false;
}

/* ---- CSV files ------------------------------------------------------------ */

enum col_type { COL_NUMBER, COL_NUMBER_OR_EMPTY, COL_TEXT };

/* A column a reader needs, found by its header name; index is filled in. */
struct csv_col {
    const char *name;
    enum col_type type;
    size_t index;
};

/* One CSV file being read: the current line split in place at commas (the
 * files llmsim writes hold numbers and plain names, never quoted fields). */
struct csv {
    FILE *fp;
    const char *path;
    long line;
    char *buf;
    size_t cap;
    char **fields;
    size_t nfields, fields_cap;
};

/* Read the next non-empty line into c->fields.  Returns 1 for a line, 0 at
 * the end of the file, -1 on a read error or when out of memory (e set). */
static int csv_next(struct csv *c, struct err *e)
{
    ssize_t n;
    char *p;

    for (;;) {
        errno = 0;
        n = getline(&c->buf, &c->cap, c->fp);
        if (n < 0) {
            if (ferror(c->fp) || errno == ENOMEM)
                return err_sys(e, errno != 0 ? errno : EIO, "%s", c->path);
            return 0;
        }
        c->line++;
        while (n > 0 && (c->buf[n - 1] == '\n' || c->buf[n - 1] == '\r'))
            c->buf[--n] = '\0';
        if (n > 0)
            break;
    }
    c->nfields = 0;
    for (p = c->buf;; p++) {
        char *comma = strchr(p, ',');

        if (c->nfields == c->fields_cap) {
            size_t cap = c->fields_cap != 0 ? 2 * c->fields_cap : 32;
            char **f = realloc(c->fields, cap * sizeof(*f));

            if (f == NULL)
                return err_sys(e, ENOMEM, "%s", c->path);
            c->fields = f;
            c->fields_cap = cap;
        }
        c->fields[c->nfields++] = p;
        if (comma == NULL)
            break;
        *comma = '\0';
        p = comma;
    }
    return 1;
}

/* Parse TEXT as a finite number.  Returns 0, or -1 when it is not one. */
static int csv_number(const char *text, double *out)
{
    char *end;
    double v;

    if (*text == '\0')
        return -1;
    errno = 0;
    v = strtod(text, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Called with the header line, after the wanted columns were found, to note
 * further columns by their names.  Returns 0, or -1 with e set. */
typedef int (*csv_header_fn)(void *ctx, const struct csv *c, struct err *e);

/* Called for each data row with the values of the wanted columns (NAN for an
 * empty optional field).  Returns 0, or -1 with e set. */
typedef int (*csv_row_fn)(void *ctx, const struct csv *c, const struct csv_col *cols,
                          const double *vals, struct err *e);

/* Read PATH: locate COLS by the header line (then pass it to HEADER, when
 * not NULL), check that every row has as many fields as the header and that
 * the wanted numeric fields are numbers, and pass each row to ROW.  Other
 * columns are ignored.  Returns 0, or -1 with e set: ERR_SYSTEM when the
 * file cannot be read, ERR_INPUT as "PATH:LINE: ..." for bad content. */
static int csv_read(const char *path, struct csv_col *cols, size_t ncols, csv_header_fn header,
                    csv_row_fn row, void *ctx, struct err *e)
{
    struct csv c = {.path = path};
    double vals[16];
    size_t header_n, i, j;
    int rc = -1, got;

    if (ncols > sizeof(vals) / sizeof(vals[0]))
        return err_set(e, ERR_SYSTEM, "%s: too many columns wanted", path);
    c.fp = fopen(path, "r");
    if (c.fp == NULL)
        return err_sys(e, errno, "%s", path);
    got = csv_next(&c, e);
    if (got < 0)
        goto err;
    if (got == 0) {
        err_at(e, path, 0, "empty file: expected a header line");
        goto err;
    }
    header_n = c.nfields;
    for (i = 0; i < ncols; i++) {
        for (j = 0; j < header_n && strcmp(c.fields[j], cols[i].name) != 0; j++)
            ;
        if (j == header_n) {
            err_at(e, path, c.line, "missing column \"%s\" in the header", cols[i].name);
            goto err;
        }
        cols[i].index = j;
    }
    if (header != NULL && header(ctx, &c, e) != 0)
        goto err;
    while ((got = csv_next(&c, e)) == 1) {
        if (c.nfields != header_n) {
            err_at(e, path, c.line, "%zu fields, but the header has %zu", c.nfields, header_n);
            goto err;
        }
        for (i = 0; i < ncols; i++) {
            const char *text = c.fields[cols[i].index];

            vals[i] = NAN;
            if (cols[i].type == COL_TEXT || (cols[i].type == COL_NUMBER_OR_EMPTY && *text == '\0'))
                continue;
            if (csv_number(text, &vals[i]) != 0) {
                err_at(e, path, c.line, "column %s: \"%.40s\" is not a number", cols[i].name, text);
                goto err;
            }
        }
        if (row(ctx, &c, cols, vals, e) != 0)
            goto err;
    }
    if (got < 0)
        goto err;
    rc = 0;
err:
    free(c.buf);
    free(c.fields);
    fclose(c.fp);
    return rc;
}

/* Reading timeline.csv: the result, and the names of its node columns
 * (t->pool_cols[i] is pool_names[i]), for messages. */
struct timeline_read {
    struct report_timeline *t;
    char pool_names[REPORT_MAX_POOL_COLUMNS][64];
};

/* csv_header_fn for timeline.csv: note the "nodes" and "nodes_POOL"
 * columns, those of runs with node pools. */
static int timeline_header(void *ctx, const struct csv *c, struct err *e)
{
    struct timeline_read *r = ctx;
    struct report_timeline *t = r->t;
    size_t j;

    (void)e;
    for (j = 0; j < c->nfields; j++) {
        const char *name = c->fields[j];

        if (strcmp(name, "nodes") == 0) {
            t->nodes_col = (int)j + 1;
        } else if (strncmp(name, "nodes_", 6) == 0 && name[6] != '\0' &&
                   t->npool_cols < REPORT_MAX_POOL_COLUMNS) {
            snprintf(r->pool_names[t->npool_cols], sizeof(r->pool_names[0]), "%s", name);
            t->pool_cols[t->npool_cols++] = (int)j + 1;
        }
    }
    return 0;
}

/* Check that field COL (numbered from 1) of the row in C is a number. */
static int timeline_node_field(const struct csv *c, int col, const char *name, struct err *e)
{
    const char *text = c->fields[col - 1];
    double v;

    if (csv_number(text, &v) != 0)
        return err_at(e, c->path, c->line, "column %s: \"%.40s\" is not a number", name, text);
    return 0;
}

/* csv_row_fn for timeline.csv: times must increase row by row; node counts,
 * when there are any, must be numbers. */
static int timeline_row(void *ctx, const struct csv *c, const struct csv_col *cols,
                        const double *vals, struct err *e)
{
    struct timeline_read *r = ctx;
    struct report_timeline *t = r->t;
    double time_s = vals[0];
    size_t i;

    if (t->nodes_col > 0 && timeline_node_field(c, t->nodes_col, "nodes", e) != 0)
        return -1;
    for (i = 0; i < t->npool_cols; i++)
        if (timeline_node_field(c, t->pool_cols[i], r->pool_names[i], e) != 0)
            return -1;
    if (t->rows > 0 && !(time_s > t->last_s))
        return err_at(e, c->path, c->line, "time_s %g does not follow the previous row's %g", time_s,
                      t->last_s);
    if (t->rows == 0)
        t->first_s = time_s;
    else if (t->rows == 1)
        t->second_s = time_s;
    t->last_s = time_s;
    t->rows++;
    return 0;
}

/* Read and check PATH (timeline.csv) into T.  Returns 0 or -1 (e set). */
int report_timeline_load(const char *path, struct report_timeline *t, struct err *e)
{
    struct csv_col cols[] = {
        {.name = "time_s"}, /* first: timeline_row reads vals[0] */
        {.name = "arrivals"},
        {.name = "completed"},
        {.name = "rejected"},
        {.name = "timed_out"},
        {.name = "queue_len"},
        {.name = "running"},
        {.name = "replicas_desired"},
        {.name = "replicas_ready"},
        {.name = "kv_util"},
        {.name = "busy_frac"},
        {.name = "cost_usd"},
        {.name = "ttft_p50_s", .type = COL_NUMBER_OR_EMPTY},
        {.name = "ttft_p99_s", .type = COL_NUMBER_OR_EMPTY},
    };
    struct timeline_read r = {.t = t};

    memset(t, 0, sizeof(*t));
    return csv_read(path, cols, sizeof(cols) / sizeof(cols[0]), timeline_header, timeline_row,
                    &r, e);
}

/* The metrics of latency_cdf.csv, in the order of the latency table. */
const char *const report_cdf_metrics[] = {"queue", "ttft", "tpot", "e2e"};
_Static_assert(sizeof(report_cdf_metrics) / sizeof(report_cdf_metrics[0]) == REPORT_CDF_NMETRICS,
               "REPORT_CDF_NMETRICS is the number of report_cdf_metrics");

/* csv_row_fn for latency_cdf.csv: latency >= 0 and cdf within [0, 1]. */
static int cdf_row(void *ctx, const struct csv *c, const struct csv_col *cols, const double *vals,
                   struct err *e)
{
    struct report_cdf_counts *n = ctx;
    const char *metric = c->fields[cols[0].index];
    size_t i;

    if (*metric == '\0')
        return err_at(e, c->path, c->line, "empty metric name");
    if (vals[1] < 0)
        return err_at(e, c->path, c->line, "negative latency_s %g", vals[1]);
    if (vals[2] < 0 || vals[2] > 1)
        return err_at(e, c->path, c->line, "cdf %g is outside [0, 1]", vals[2]);
    for (i = 0; i < REPORT_CDF_NMETRICS; i++)
        if (strcmp(metric, report_cdf_metrics[i]) == 0)
            n->rows[i]++;
    n->total++;
    return 0;
}

/* Read and check PATH (latency_cdf.csv) into N.  Returns 0 or -1 (e set). */
int report_cdf_load(const char *path, struct report_cdf_counts *n, struct err *e)
{
    struct csv_col cols[] = {
        {.name = "metric", .type = COL_TEXT},
        {.name = "latency_s"},
        {.name = "cdf"},
    };

    memset(n, 0, sizeof(*n));
    return csv_read(path, cols, sizeof(cols) / sizeof(cols[0]), NULL, cdf_row, n, e);
}
