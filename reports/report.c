/* report.c -- see report.h.
 *
 * Three steps: read and check what a run wrote into DIR (summary.json,
 * timeline.csv, latency_cdf.csv), draw the charts by feeding the embedded
 * gnuplot templates (reports/timeline.gp and latency.gp, turned into C
 * strings by embed.sh) to gnuplot, and write DIR/report.html.  gnuplot runs with DIR as its working
 * directory and reads the data files by their fixed relative names, so no
 * string from the inputs ever enters a gnuplot script; every such string that
 * enters the page is HTML-escaped. */
#include "config.h"
#include "reports/report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/log.h"

/* Generated into reports/templates.c by reports/embed.sh. */
extern const char report_tpl_timeline_gp[];
extern const char report_tpl_latency_gp[];
extern const char report_tpl_report_css[];

#define REPORT_PATH_MAX 4096

/* ---- summary.json -------------------------------------------------------- */

enum sum_type { SUM_NUMBER, SUM_NUMBER_OR_NULL, SUM_STRING, SUM_BOOL };

/* A key of summary.json that the page shows in its own place.  Every leaf
 * not listed here goes to the generic "other figures" tables. */
struct sum_key {
    const char *path; /* dotted: "latency_s.ttft.p99" */
    enum sum_type type;
    bool optional;
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
static json_t *summary_get(json_t *root, const char *path)
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
static double summary_num(json_t *root, const char *path)
{
    json_t *v = summary_get(root, path);

    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* "a string", "null" ...: the kind of V, for messages. */
static const char *summary_kind(const json_t *v)
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
        v = summary_get(root, prefix);
        if (v != NULL && !json_is_object(v))
            return err_at(e, file, 0, "key \"%s\" should be an object, not %s", prefix,
                          summary_kind(v));
    }
    return err_at(e, file, 0, "missing key \"%s\"", path);
}

/* Check that every required key of sum_keys is present in ROOT with its
 * type.  Returns 0, or -1 with an ERR_INPUT naming FILE and the key. */
static int summary_check(json_t *root, const char *file, struct err *e)
{
    static const char *const wanted[] = {
        [SUM_NUMBER] = "a number",
        [SUM_NUMBER_OR_NULL] = "a number or null",
        [SUM_STRING] = "a string",
        [SUM_BOOL] = "a boolean",
    };
    size_t i;

    if (!json_is_object(root))
        return err_at(e, file, 0, "the document should be an object, not %s", summary_kind(root));
    for (i = 0; i < SUM_NKEYS; i++) {
        const struct sum_key *k = &sum_keys[i];
        json_t *v = summary_get(root, k->path);
        bool ok = false;

        if (v == NULL) {
            if (k->optional)
                continue;
            return summary_missing(root, file, k->path, e);
        }
        switch (k->type) {
        case SUM_NUMBER: ok = json_is_number(v); break;
        case SUM_NUMBER_OR_NULL: ok = json_is_number(v) || json_is_null(v); break;
        case SUM_STRING: ok = json_is_string(v); break;
        case SUM_BOOL: ok = json_is_boolean(v); break;
        }
        if (!ok)
            return err_at(e, file, 0, "key \"%s\" should be %s, not %s", k->path, wanted[k->type],
                          summary_kind(v));
    }
    return 0;
}

/* Parse and check FILE.  Returns the document (the caller json_decref()s it)
 * or NULL: ERR_SYSTEM when the file cannot be opened, ERR_INPUT with the
 * line for a syntax error or naming the key that is missing or mistyped. */
static json_t *summary_load(const char *file, struct err *e)
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

/* Called for each data row with the values of the wanted columns (NAN for an
 * empty optional field).  Returns 0, or -1 with e set. */
typedef int (*csv_row_fn)(void *ctx, const struct csv *c, const struct csv_col *cols,
                          const double *vals, struct err *e);

/* Read PATH: locate COLS by the header line, check that every row has as many
 * fields as the header and that the wanted numeric fields are numbers, and
 * pass each row to ROW.  Other columns are ignored.  Returns 0, or -1 with e
 * set: ERR_SYSTEM when the file cannot be read, ERR_INPUT as "PATH:LINE: ..."
 * for bad content. */
static int csv_read(const char *path, struct csv_col *cols, size_t ncols, csv_row_fn row,
                    void *ctx, struct err *e)
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

/* What the charts need to know about timeline.csv. */
struct timeline {
    size_t rows;
    double first_s, second_s, last_s;
};

/* csv_row_fn for timeline.csv: times must increase row by row. */
static int timeline_row(void *ctx, const struct csv *c, const struct csv_col *cols,
                        const double *vals, struct err *e)
{
    struct timeline *t = ctx;
    double time_s = vals[0];

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
static int timeline_load(const char *path, struct timeline *t, struct err *e)
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

    memset(t, 0, sizeof(*t));
    return csv_read(path, cols, sizeof(cols) / sizeof(cols[0]), timeline_row, t, e);
}

/* The metrics of latency_cdf.csv, in the order of the latency table. */
static const char *const cdf_metrics[] = {"queue", "ttft", "tpot", "e2e"};
#define CDF_NMETRICS (sizeof(cdf_metrics) / sizeof(cdf_metrics[0]))

/* Rows of latency_cdf.csv per metric of cdf_metrics; others are ignored. */
struct cdf_counts {
    size_t rows[CDF_NMETRICS];
    size_t total;
};

/* csv_row_fn for latency_cdf.csv: latency >= 0 and cdf within [0, 1]. */
static int cdf_row(void *ctx, const struct csv *c, const struct csv_col *cols, const double *vals,
                   struct err *e)
{
    struct cdf_counts *n = ctx;
    const char *metric = c->fields[cols[0].index];
    size_t i;

    if (*metric == '\0')
        return err_at(e, c->path, c->line, "empty metric name");
    if (vals[1] < 0)
        return err_at(e, c->path, c->line, "negative latency_s %g", vals[1]);
    if (vals[2] < 0 || vals[2] > 1)
        return err_at(e, c->path, c->line, "cdf %g is outside [0, 1]", vals[2]);
    for (i = 0; i < CDF_NMETRICS; i++)
        if (strcmp(metric, cdf_metrics[i]) == 0)
            n->rows[i]++;
    n->total++;
    return 0;
}

/* Read and check PATH (latency_cdf.csv) into N.  Returns 0 or -1 (e set). */
static int cdf_load(const char *path, struct cdf_counts *n, struct err *e)
{
    struct csv_col cols[] = {
        {.name = "metric", .type = COL_TEXT},
        {.name = "latency_s"},
        {.name = "cdf"},
    };

    memset(n, 0, sizeof(*n));
    return csv_read(path, cols, sizeof(cols) / sizeof(cols[0]), cdf_row, n, e);
}

/* ---- charts --------------------------------------------------------------- */

enum chart_source { CHART_TIMELINE, CHART_LATENCY };

/* One PNG of the page; the file names are those the templates write. */
struct chart {
    const char *file;
    const char *title; /* the image's alt text */
    const char *caption;
    enum chart_source source;
};

static const struct chart report_charts[] = {
    {.file = "chart_arrivals.png",
     .title = "Arrivals and replicas over time",
     .caption = "Arrivals per second (left axis) and replicas desired by the autoscaler and "
                "ready to serve (right axis).",
     .source = CHART_TIMELINE},
    {.file = "chart_latency.png",
     .title = "Latency CDFs",
     .caption = "Cumulative distribution of queue wait, time to first token, time per output "
                "token and end-to-end latency (log scale, so zero latencies are not shown).",
     .source = CHART_LATENCY},
    {.file = "chart_queue.png",
     .title = "Queued and running requests over time",
     .caption = "Requests waiting in queues and requests running, at the end of each interval.",
     .source = CHART_TIMELINE},
    {.file = "chart_cost.png",
     .title = "Cumulative cost over time",
     .caption = "Cumulative cost of the replicas.",
     .source = CHART_TIMELINE},
};

#define REPORT_NCHARTS (sizeof(report_charts) / sizeof(report_charts[0]))

/* Copy TPL with each "@NAME@" of NAMES replaced by the matching VALUES
 * entry; other '@' characters are kept.  Returns a malloc'd string, or NULL
 * when out of memory. */
static char *tpl_fill(const char *tpl, const char *const *names, const char *const *values,
                      size_t n)
{
    char *out = NULL;
    size_t len = 0, i;
    FILE *fp = open_memstream(&out, &len);
    const char *p = tpl;

    if (fp == NULL)
        return NULL;
    while (*p != '\0') {
        bool done = false;

        if (*p == '@') {
            for (i = 0; i < n && !done; i++) {
                size_t k = strlen(names[i]);

                if (strncmp(p + 1, names[i], k) == 0 && p[1 + k] == '@') {
                    fputs(values[i], fp);
                    p += k + 2;
                    done = true;
                }
            }
        }
        if (!done)
            fputc(*p++, fp);
    }
    if (fclose(fp) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* The gnuplot to run: $GNUPLOT, else the one configure found, else PATH's. */
static const char *gnuplot_program(void)
{
    const char *env = getenv("GNUPLOT");

    if (env != NULL && *env != '\0')
        return env;
    if (GNUPLOT_PATH[0] != '\0')
        return GNUPLOT_PATH;
    return "gnuplot";
}

/* Copy the last line gnuplot wrote on stderr (held in FP) into buf. */
static void gnuplot_last_words(FILE *fp, char *buf, size_t len)
{
    char chunk[512];
    size_t n;
    char *start, *end;

    buf[0] = '\0';
    if (fseek(fp, 0, SEEK_END) != 0)
        return;
    if (ftell(fp) > (long)sizeof(chunk) - 1)
        fseek(fp, -((long)sizeof(chunk) - 1), SEEK_END);
    else
        rewind(fp);
    n = fread(chunk, 1, sizeof(chunk) - 1, fp);
    chunk[n] = '\0';
    end = chunk + n;
    while (end > chunk && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\r'))
        *--end = '\0';
    start = strrchr(chunk, '\n');
    start = start != NULL ? start + 1 : chunk;
    while (*start == ' ' || *start == '\t')
        start++;
    snprintf(buf, len, "%s", start);
}

/* Run gnuplot in DIR with SCRIPT on its standard input (from a temporary
 * file, so an early exit cannot raise SIGPIPE here) and its output captured.
 * Returns 0 when it exits with status 0; otherwise -1 with an ERR_SYSTEM
 * naming the program and quoting gnuplot's last line of complaint. */
static int gnuplot_run(const char *dir, const char *script, struct err *e)
{
    const char *prog = gnuplot_program();
    FILE *in = tmpfile(), *out = tmpfile();
    char words[256];
    int status, rc = -1;
    pid_t pid;

    if (in == NULL || out == NULL) {
        err_sys(e, errno, "temporary file for gnuplot");
        goto err;
    }
    if (fputs(script, in) == EOF || fflush(in) != 0) {
        err_sys(e, errno, "temporary file for gnuplot");
        goto err;
    }
    rewind(in);
    pid = fork();
    if (pid < 0) {
        err_sys(e, errno, "fork for %s", prog);
        goto err;
    }
    if (pid == 0) {
        char *const argv[] = {(char *)prog, NULL};

        if (chdir(dir) != 0 || dup2(fileno(in), 0) < 0 || dup2(fileno(out), 1) < 0 ||
            dup2(fileno(out), 2) < 0)
            _exit(126);
        execvp(prog, argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            err_sys(e, errno, "waiting for %s", prog);
            goto err;
        }
    }
    gnuplot_last_words(out, words, sizeof(words));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        rc = 0;
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        err_set(e, ERR_SYSTEM, "cannot run %s", prog);
    else if (WIFEXITED(status))
        err_set(e, ERR_SYSTEM, "%s exited with status %d%s%s", prog, WEXITSTATUS(status),
                words[0] != '\0' ? ": " : "", words);
    else
        err_set(e, ERR_SYSTEM, "%s was killed by signal %d", prog,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
err:
    if (in != NULL)
        fclose(in);
    if (out != NULL)
        fclose(out);
    return rc;
}

/* Whether DIR/FILE exists and starts with the PNG signature. */
static bool chart_exists(const char *dir, const char *file)
{
    static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8];
    char path[REPORT_PATH_MAX];
    FILE *fp;
    bool ok;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    fp = fopen(path, "rb");
    if (fp == NULL)
        return false;
    ok = fread(head, 1, sizeof(head), fp) == sizeof(head) && memcmp(head, magic, 8) == 0;
    fclose(fp);
    return ok;
}

/* Draw the charts of SOURCE by running SCRIPT (NULL when filling the
 * template ran out of memory) and set drawn[] for each one that came out.
 * Returns 0, or -1 after logging a warning: failing to draw is not an error
 * of the report. */
static int charts_draw(const char *dir, enum chart_source source, const char *script,
                       bool drawn[REPORT_NCHARTS])
{
    struct err e = {0};
    size_t i;

    if (script == NULL)
        err_set(&e, ERR_SYSTEM, "out of memory filling a chart template");
    if (script == NULL || gnuplot_run(dir, script, &e) != 0) {
        log_warn("%s: %s: charts left out of the report", dir, e.msg);
        return -1;
    }
    for (i = 0; i < REPORT_NCHARTS; i++)
        if (report_charts[i].source == source)
            drawn[i] = chart_exists(dir, report_charts[i].file);
    return 0;
}

/* Draw every chart the data allows; drawn[] tells which came out.  Charts of
 * an earlier report are removed first so that none is shown stale.  After a
 * failed gnuplot run no other is tried, so a missing gnuplot warns once. */
static void charts_draw_all(const char *dir, json_t *summary, const struct timeline *t,
                            const struct cdf_counts *cdf, bool drawn[REPORT_NCHARTS])
{
    static const char *const names[] = {"XSCALE", "XUNIT", "INTERVAL_S"};
    const char *values[3];
    char interval[64];
    double interval_s, span_s;
    char path[REPORT_PATH_MAX];
    char *script;
    size_t i;
    int rc;

    memset(drawn, 0, REPORT_NCHARTS * sizeof(drawn[0]));
    for (i = 0; i < REPORT_NCHARTS; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, report_charts[i].file);
        unlink(path);
    }
    if (t->rows > 0) {
        /* Rows are intervals of a fixed length; with one row, the run's
         * duration says how long it was. */
        if (t->rows >= 2)
            interval_s = t->second_s - t->first_s;
        else
            interval_s = summary_num(summary, "sim.duration_s") - t->first_s;
        if (!(interval_s > 0))
            interval_s = 1;
        span_s = t->last_s + interval_s;
        snprintf(interval, sizeof(interval), "%.17g", interval_s);
        values[0] = span_s > 2 * 3600 ? "3600" : "60";
        values[1] = span_s > 2 * 3600 ? "hours" : "minutes";
        values[2] = interval;
        script = tpl_fill(report_tpl_timeline_gp, names, values, 3);
        rc = charts_draw(dir, CHART_TIMELINE, script, drawn);
        free(script);
        if (rc != 0)
            return;
    }
    if (cdf->total > 0)
        charts_draw(dir, CHART_LATENCY, report_tpl_latency_gp, drawn);
}

/* ---- report.html ---------------------------------------------------------- */

/* Write S with the characters HTML gives meaning to escaped. */
static void html_text(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc(*s, out); break;
        }
    }
}

/* A JSON scalar as text: integers exactly, reals to 6 significant digits. */
static void fmt_json(const json_t *v, char *buf, size_t len)
{
    double d;

    switch (json_typeof(v)) {
    case JSON_INTEGER:
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    case JSON_REAL:
        d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 1e15)
            snprintf(buf, len, "%.0f", d);
        else
            snprintf(buf, len, "%.6g", d);
        return;
    case JSON_STRING: snprintf(buf, len, "%s", json_string_value(v)); return;
    case JSON_TRUE: snprintf(buf, len, "true"); return;
    case JSON_FALSE: snprintf(buf, len, "false"); return;
    case JSON_NULL: snprintf(buf, len, "null"); return;
    default: snprintf(buf, len, "(%s)", summary_kind(v)); return;
    }
}

/* A duration in seconds with its unit: "12.3 ms", "1.25 s", "312.4 s". */
static void fmt_seconds(double s, char *buf, size_t len)
{
    if (isnan(s))
        snprintf(buf, len, "-");
    else if (s < 1)
        snprintf(buf, len, "%.3g ms", s * 1000);
    else if (s < 60)
        snprintf(buf, len, "%.2f s", s);
    else
        snprintf(buf, len, "%.1f s", s);
}

/* One headline card; LABEL and VALUE are page text, NOTE may be NULL. */
static void html_card(FILE *out, const char *label, const char *value, const char *note)
{
    fputs("<div class=\"card\"><div class=\"label\">", out);
    html_text(out, label);
    fputs("</div><div class=\"value\">", out);
    html_text(out, value);
    fputs("</div>", out);
    if (note != NULL) {
        fputs("<div class=\"note\">", out);
        html_text(out, note);
        fputs("</div>", out);
    }
    fputs("</div>\n", out);
}

/* A card showing the summary value at PATH. */
static void html_card_json(FILE *out, json_t *s, const char *label, const char *path)
{
    char buf[64];

    fmt_json(summary_get(s, path), buf, sizeof(buf));
    html_card(out, label, buf, NULL);
}

/* The headline cards: requests, SLO, cost, capacity, throughput. */
static void html_headline(FILE *out, json_t *s)
{
    static const char *const slo_keys[] = {"slo.ttft_s", "slo.tpot_s", "slo.e2e_s"};
    static const char *const slo_names[] = {"TTFT", "TPOT", "E2E"};
    char value[64], note[256], num[32];
    bool met = json_is_true(summary_get(s, "slo.met"));
    size_t i, used = 0;

    fputs("<h2>Headline</h2>\n<div class=\"cards\">\n", out);
    html_card_json(out, s, "requests arrived", "requests.arrived");
    html_card_json(out, s, "completed", "requests.completed");
    html_card_json(out, s, "rejected", "requests.rejected");
    html_card_json(out, s, "timed out", "requests.timed_out");
    html_card_json(out, s, "in flight at end", "requests.in_flight_at_end");
    fputs("</div>\n<div class=\"cards\">\n", out);

    snprintf(value, sizeof(value), "%.2f%%", 100 * summary_num(s, "slo.attainment"));
    note[0] = '\0';
    for (i = 0; i < 3; i++) {
        double limit = summary_num(s, slo_keys[i]);

        if (isnan(limit))
            continue;
        fmt_seconds(limit, num, sizeof(num));
        used += (size_t)snprintf(note + used, sizeof(note) - used, "%s%s \xe2\x89\xa4 %s",
                                 used > 0 ? ", " : "", slo_names[i], num);
        if (used >= sizeof(note))
            break;
    }
    if (note[0] == '\0')
        snprintf(note, sizeof(note), "no latency objective set");
    fprintf(out, "<div class=\"card %s\"><div class=\"label\">SLO attainment</div>"
                 "<div class=\"value\">%s</div><div class=\"note\"><strong>%s</strong> "
                 "target %.4g%%<br>",
            met ? "met" : "missed", value, met ? "met" : "missed",
            100 * summary_num(s, "slo.target"));
    html_text(out, note);
    fputs("</div></div>\n", out);

    snprintf(value, sizeof(value), "$%.2f", summary_num(s, "cost_usd.total"));
    snprintf(note, sizeof(note), "$%.4g per 1k requests", summary_num(s, "cost_usd.per_1k_requests"));
    html_card(out, "cost", value, note);
    snprintf(value, sizeof(value), "%.2f", summary_num(s, "gpu_hours"));
    html_card(out, "GPU-hours", value, NULL);
    snprintf(value, sizeof(value), "%.2f", summary_num(s, "replicas.mean"));
    snprintf(note, sizeof(note), "min %g, max %g", summary_num(s, "replicas.min"),
             summary_num(s, "replicas.max"));
    html_card(out, "replicas (mean)", value, note);
    fputs("</div>\n<div class=\"cards\">\n", out);
    snprintf(value, sizeof(value), "%.3g", summary_num(s, "throughput.requests_per_s"));
    html_card(out, "requests/s", value, NULL);
    snprintf(value, sizeof(value), "%.4g", summary_num(s, "throughput.output_tokens_per_s"));
    html_card(out, "output tokens/s", value, NULL);
    html_card_json(out, s, "prompt tokens", "tokens.prompt");
    html_card_json(out, s, "output tokens", "tokens.output");
    snprintf(value, sizeof(value), "%.1f%%", 100 * summary_num(s, "utilization.kv_mean"));
    html_card(out, "KV cache use (mean)", value, NULL);
    snprintf(value, sizeof(value), "%.1f%%", 100 * summary_num(s, "utilization.busy_mean"));
    html_card(out, "busy (mean)", value, NULL);
    fputs("</div>\n", out);
}

/* The latency table: a row per metric, a column per statistic. */
static void html_latency(FILE *out, json_t *s)
{
    static const char *const labels[CDF_NMETRICS] = {
        "queue wait", "time to first token (TTFT)", "time per output token (TPOT)", "end to end"};
    static const char *const stats[] = {"mean", "p50", "p90", "p99", "max"};
    char path[64], buf[32];
    size_t i, j;

    fputs("<h2>Latency</h2>\n<table>\n<thead><tr><th>metric</th>", out);
    for (j = 0; j < 5; j++)
        fprintf(out, "<th>%s</th>", stats[j]);
    fputs("</tr></thead>\n<tbody>\n", out);
    for (i = 0; i < CDF_NMETRICS; i++) {
        fprintf(out, "<tr><td>%s</td>", labels[i]);
        for (j = 0; j < 5; j++) {
            snprintf(path, sizeof(path), "latency_s.%s.%s", cdf_metrics[i], stats[j]);
            fmt_seconds(summary_num(s, path), buf, sizeof(buf));
            fprintf(out, "<td>%s</td>", buf);
        }
        fputs("</tr>\n", out);
    }
    fputs("</tbody>\n</table>\n", out);
}

/* The charts that were drawn, or a note saying why there are none. */
static void html_charts(FILE *out, const bool drawn[REPORT_NCHARTS], const struct timeline *t,
                        const struct cdf_counts *cdf)
{
    size_t i, n = 0;

    fputs("<h2>Charts</h2>\n", out);
    for (i = 0; i < REPORT_NCHARTS; i++) {
        if (!drawn[i])
            continue;
        fprintf(out, "<figure><img src=\"%s\" alt=\"%s\">"
                     "<figcaption>%s</figcaption></figure>\n",
                report_charts[i].file, report_charts[i].title, report_charts[i].caption);
        n++;
    }
    if (t->rows == 0)
        fputs("<p class=\"nocharts\">timeline.csv has no rows: no charts over time.</p>\n", out);
    if (cdf->total == 0)
        fputs("<p class=\"nocharts\">latency_cdf.csv has no rows: no latency chart.</p>\n", out);
    if (n == 0 && (t->rows > 0 || cdf->total > 0))
        fputs("<p class=\"nocharts\">No charts: gnuplot could not draw them "
              "(see the warning printed when the report was written).</p>\n",
              out);
}

/* Whether dotted PATH is a key the page shows in its own place. */
static bool summary_known(const char *path)
{
    size_t i;

    for (i = 0; i < SUM_NKEYS; i++)
        if (strcmp(sum_keys[i].path, path) == 0)
            return true;
    return false;
}

/* Visit every leaf under NODE, whose dotted path is path[0..len), that the
 * page does not already show; write it as a table row to OUT (when not NULL)
 * named by the path after its first SKIP characters.  Returns the number of
 * such leaves.  Paths longer than the buffer are left out. */
static size_t html_extra_leaves(FILE *out, json_t *node, char *path, size_t len, size_t cap,
                                size_t skip)
{
    size_t n = 0, i, k;
    const char *key;
    json_t *v;
    char buf[256];

    path[len] = '\0';
    if (json_is_object(node)) {
        json_object_foreach(node, key, v) {
            k = (size_t)snprintf(path + len, cap - len, "%s%s", len > 0 ? "." : "", key);
            if (k < cap - len)
                n += html_extra_leaves(out, v, path, len + k, cap, skip);
            path[len] = '\0';
        }
        return n;
    }
    if (json_is_array(node)) {
        json_array_foreach(node, i, v) {
            k = (size_t)snprintf(path + len, cap - len, "[%zu]", i);
            if (k < cap - len)
                n += html_extra_leaves(out, v, path, len + k, cap, skip);
            path[len] = '\0';
        }
        return n;
    }
    if (summary_known(path))
        return 0;
    if (out != NULL) {
        fmt_json(node, buf, sizeof(buf));
        fputs("<tr><td>", out);
        html_text(out, len > skip ? path + skip : path);
        fputs("</td><td>", out);
        html_text(out, buf);
        fputs("</td></tr>\n", out);
    }
    return 1;
}

/* A table per top-level section holding figures the page does not show
 * elsewhere: sections added by later versions of llmsim, or new keys inside
 * known sections. */
static void html_extras(FILE *out, json_t *s)
{
    char path[512];
    const char *key;
    json_t *v;
    size_t len;
    bool any = false;

    json_object_foreach(s, key, v) {
        len = (size_t)snprintf(path, sizeof(path), "%s", key);
        if (len >= sizeof(path) || html_extra_leaves(NULL, v, path, len, sizeof(path), 0) == 0)
            continue;
        if (!any)
            fputs("<h2>Other figures</h2>\n", out);
        any = true;
        fputs("<h3>", out);
        html_text(out, key);
        fputs("</h3>\n<table>\n<tbody>\n", out);
        html_extra_leaves(out, v, path, len, sizeof(path), len + 1);
        fputs("</tbody>\n</table>\n", out);
    }
}

/* The simulator's own statistics and links to the data files. */
static void html_footer(FILE *out, json_t *s)
{
    char events[64], seed[64], dur[64];

    fmt_json(summary_get(s, "sim.events"), events, sizeof(events));
    fmt_json(summary_get(s, "sim.seed"), seed, sizeof(seed));
    duration_format(summary_num(s, "sim.duration_s"), dur, sizeof(dur));
    fputs("<h2>Simulation</h2>\n<table>\n<tbody>\n", out);
    fprintf(out, "<tr><td>simulated time</td><td>%s</td></tr>\n", dur);
    fprintf(out, "<tr><td>events</td><td>%s</td></tr>\n", events);
    fprintf(out, "<tr><td>wall time</td><td>%.3f s</td></tr>\n", summary_num(s, "sim.wall_s"));
    fprintf(out, "<tr><td>events per second</td><td>%.0f</td></tr>\n",
            summary_num(s, "sim.events_per_s"));
    fprintf(out, "<tr><td>seed</td><td>%s</td></tr>\n", seed);
    fputs("</tbody>\n</table>\n", out);
    fputs("<footer>Data: <a href=\"summary.json\">summary.json</a>, "
          "<a href=\"timeline.csv\">timeline.csv</a>, "
          "<a href=\"latency_cdf.csv\">latency_cdf.csv</a>.</footer>\n",
          out);
}

/* Write the whole page to OUT. */
static void html_page(FILE *out, json_t *s, const bool drawn[REPORT_NCHARTS],
                      const struct timeline *t, const struct cdf_counts *cdf)
{
    const char *name = json_string_value(summary_get(s, "scenario.name"));
    json_t *file = summary_get(s, "scenario.file");
    char dur[64], seed[64];

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          out);
    html_text(out, name);
    fputs(" \xe2\x80\x94 llmsim report</title>\n<style>\n", out);
    fputs(report_tpl_report_css, out);
    fputs("</style>\n</head>\n<body>\n<h1>", out);
    html_text(out, name);
    fputs("</h1>\n<p class=\"meta\">llmsim report", out);
    if (json_is_string(file)) {
        fputs(" for <code>", out);
        html_text(out, json_string_value(file));
        fputs("</code>", out);
    }
    duration_format(summary_num(s, "sim.duration_s"), dur, sizeof(dur));
    fmt_json(summary_get(s, "sim.seed"), seed, sizeof(seed));
    fprintf(out, ": %s of simulated time, seed %s.</p>\n", dur, seed);
    html_headline(out, s);
    html_latency(out, s);
    html_charts(out, drawn, t, cdf);
    html_extras(out, s);
    html_footer(out, s);
    fputs("</body>\n</html>\n", out);
}

/* Write the page to DIR/report.html through a temporary file renamed into
 * place.  Returns 0, or -1 with an ERR_SYSTEM naming the file. */
static int html_write(const char *dir, json_t *s, const bool drawn[REPORT_NCHARTS],
                      const struct timeline *t, const struct cdf_counts *cdf, struct err *e)
{
    char path[REPORT_PATH_MAX], tmp[REPORT_PATH_MAX + 8];
    FILE *out;
    int failed;

    snprintf(path, sizeof(path), "%s/report.html", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    out = fopen(tmp, "w");
    if (out == NULL)
        return err_sys(e, errno, "%s", tmp);
    html_page(out, s, drawn, t, cdf);
    failed = ferror(out);
    if (fclose(out) != 0 || failed) {
        err_sys(e, errno != 0 ? errno : EIO, "writing %s", tmp);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        err_sys(e, errno, "renaming %s to %s", tmp, path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- the entry point ----------------------------------------------------- */

int report_write(const char *dir, struct err *e)
{
    char summary_path[REPORT_PATH_MAX], timeline_path[REPORT_PATH_MAX], cdf_path[REPORT_PATH_MAX];
    bool drawn[REPORT_NCHARTS];
    struct timeline t;
    struct cdf_counts cdf;
    json_t *summary = NULL;
    int rc = -1;

    if (dir == NULL || *dir == '\0')
        return err_set(e, ERR_INPUT, "report: no output directory given");
    if ((size_t)snprintf(cdf_path, sizeof(cdf_path), "%s/latency_cdf.csv", dir) >= sizeof(cdf_path))
        return err_set(e, ERR_INPUT, "report: directory name too long: %.100s...", dir);
    snprintf(summary_path, sizeof(summary_path), "%s/summary.json", dir);
    snprintf(timeline_path, sizeof(timeline_path), "%s/timeline.csv", dir);

    summary = summary_load(summary_path, e);
    if (summary == NULL)
        goto err;
    if (timeline_load(timeline_path, &t, e) != 0 || cdf_load(cdf_path, &cdf, e) != 0)
        goto err;
    charts_draw_all(dir, summary, &t, &cdf, drawn);
    if (html_write(dir, summary, drawn, &t, &cdf, e) != 0)
        goto err;
    rc = 0;
err:
    json_decref(summary);
    return rc;
}
